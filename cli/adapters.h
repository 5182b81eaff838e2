// cli/adapters.h — `--adapter [NAME=]PATH[:SCALE]` (alias --lora, repeatable), `--use NAME` and
// `--allow-other-base` for the commands that run a model (generate, chat, score, merge): parsing, reading each
// adapter from whatever PATH is (a PEFT directory, a llama.cpp LoRA GGUF, or a `hone train` run directory), checking
// its base record against the model, and attaching it as LoRA.
//
//   cli_adapters ca = {0};
//   for (...) if (cli_adapters_flag(&ca, argc, argv, &i, &err)) { if (err) return 2; continue; }
//   ... load the model m ...
//   if (cli_adapters_attach(&ca, m)) return cli_fail();   // prints one line per adapter on stderr
//   ... run m ...
//   cli_adapters_deinit(&ca);                             // detaches, before hn_model_destroy
#ifndef HN_CLI_ADAPTERS_H
#define HN_CLI_ADAPTERS_H

#include "adapt/method.h"
#include "cli/cli.h"

typedef struct {
    char *name;      // NAME, or the path's last component
    char *path;      // PATH as given
    float scale;     // SCALE: multiplies the adapter's own alpha / r (1 if not given)
    hn_adapter *ad;  // a LoRA adapter as read (PEFT LoRA directory or LoRA GGUF), NULL for the other methods
    hn_method *me;   // attached (off for the ones --use leaves out)
    bool on;         // applies (not left out by --use)
} cli_adapter;

typedef struct {
    cli_adapter *items;
    int n;
    const char *use;       // --use NAME: only that adapter applies
    bool allow_other_base; // --allow-other-base: a base with other weights is a warning, not an error
} cli_adapters;

// The help lines of the three flags, for a command's usage text.
extern const char *const cli_adapters_usage;

// Takes argv[*i] if it is --adapter/--lora (with its value), --use or --allow-other-base; a malformed spec is a
// usage error (printed, *err set).
bool cli_adapters_flag(cli_adapters *ca, int argc, char **argv, int *i, bool *err);
// Splits `[NAME=]PATH[:SCALE]`. A spec that names an existing file or directory as a whole is PATH alone; NAME is
// the text before the first '=' when it holds no '/'; SCALE the number after the last ':'. HN_ERR_ARG on an empty
// PATH or NAME, or a SCALE that is not a finite number.
hn_status cli_adapter_parse(const char *spec, cli_adapter *out);
// Reads an adapter from path: a PEFT directory (adapter_config.json), a run directory (its adapter/ or
// adapter.gguf), a file inside a PEFT directory, or a LoRA GGUF. n_head / n_head_kv: the base's (q/k rows).
hn_status cli_adapter_read(const char *path, int n_head, int n_head_kv, hn_adapter **out);
// Reads every adapter, checks each against m's base record, and attaches them (all on, or only --use NAME's).
hn_status cli_adapters_attach(cli_adapters *ca, hn_model *m);
void cli_adapters_deinit(cli_adapters *ca);

#endif
