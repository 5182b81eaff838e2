// cli/cmd_generate.c — placeholder until the command is written.
#include "cli/cli.h"

int cmd_generate(int argc, char **argv) { return cli_usage_error("generate: not written yet"); }
