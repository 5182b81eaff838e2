// cli/cmd_info.c — placeholder until the command is written.
#include "cli/cli.h"

int cmd_info(int argc, char **argv) { return cli_usage_error("info: not written yet"); }
