// cli/cli.h — the `hone` program: one function per command, shared argument helpers. Only the CLI prints and exits.
#ifndef HN_CLI_H
#define HN_CLI_H

#include "base/base.h"
#include "tensor/tensor.h"

// Each command gets argv with argv[0] = the command name; it returns the process exit code.
int cmd_pull(int argc, char **argv);
int cmd_info(int argc, char **argv);
int cmd_tokenize(int argc, char **argv);
int cmd_generate(int argc, char **argv);
int cmd_chat(int argc, char **argv);
int cmd_score(int argc, char **argv);
int cmd_embed(int argc, char **argv);
int cmd_quantize(int argc, char **argv);
int cmd_train(int argc, char **argv);
int cmd_merge(int argc, char **argv);
int cmd_convert(int argc, char **argv);
int cmd_export(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_classify(int argc, char **argv);
int cmd_bakeoff(int argc, char **argv);
int cmd_serve(int argc, char **argv);
int cmd_vote(int argc, char **argv);
int cmd_index(int argc, char **argv);
int cmd_ask(int argc, char **argv);

// Prints "hone: MESSAGE" (the library's last message) on stderr and returns 1.
int cli_fail(void);
// Prints "hone: " + printf-style message on stderr and returns 2 (usage errors).
int cli_usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

// Flag parsing shared by every command: `--flag VALUE` and `--flag=VALUE`. Each returns true and advances *i when
// argv[*i] is that flag; a missing or malformed value prints a usage error and sets *err.
bool cli_flag_str(int argc, char **argv, int *i, const char *shrt, const char *lng, const char **out, bool *err);
bool cli_flag_int(int argc, char **argv, int *i, const char *shrt, const char *lng, int *out, bool *err);
bool cli_flag_float(int argc, char **argv, int *i, const char *shrt, const char *lng, float *out, bool *err);
bool cli_flag_u64(int argc, char **argv, int *i, const char *shrt, const char *lng, uint64_t *out, bool *err);
bool cli_flag_bool(char **argv, int i, const char *shrt, const char *lng); // a flag without a value
// --quantize nf4|none (commands that load a model): the load-time re-quantization of hn_model_params.quantize.
bool cli_flag_quantize(int argc, char **argv, int *i, hn_dtype *out, bool *err);
#define CLI_QUANTIZE_USAGE \
    "      --quantize nf4      re-quantize the linear weights to 4-bit NormalFloat at load (QLoRA's NF4)\n"
// --threads N (every command accepts it): sets hn_threads_set.
bool cli_flag_threads(int argc, char **argv, int *i, bool *err);
bool cli_wants_help(int argc, char **argv); // -h or --help anywhere

#endif
