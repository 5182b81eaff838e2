// cli/cmd_tokenize.c — placeholder until the command is written.
#include "cli/cli.h"

int cmd_tokenize(int argc, char **argv) { return cli_usage_error("tokenize: not written yet"); }
