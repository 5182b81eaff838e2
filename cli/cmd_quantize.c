// cli/cmd_quantize.c — placeholder until the command is written.
#include "cli/cli.h"

int cmd_quantize(int argc, char **argv) { return cli_usage_error("quantize: not written yet"); }
