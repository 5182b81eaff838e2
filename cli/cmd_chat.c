// cli/cmd_chat.c — placeholder until the command is written.
#include "cli/cli.h"

int cmd_chat(int argc, char **argv) { return cli_usage_error("chat: not written yet"); }
