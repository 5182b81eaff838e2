// cli/cmd_score.c — placeholder until the command is written.
#include "cli/cli.h"

int cmd_score(int argc, char **argv) { return cli_usage_error("score: not written yet"); }
