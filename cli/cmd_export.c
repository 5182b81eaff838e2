// cli/cmd_export.c — `hone export MODEL -o HF_DIR`: a model (a GGUF, a pulled name, a Hugging Face directory, or a
// merged fine-tune) written as a Hugging Face directory that transformers loads: config.json + model.safetensors
// (io/hf.h hn_hf_export) and tokenizer.json + tokenizer_config.json (hn_tokenizer_to_hf_dir, which carries the
// special tokens and the chat template).
#include "cli/cli.h"
#include "io/hf.h"
#include "io/tokenizer.h"
#include "model/registry.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static void help(void) {
    printf("usage: hone export MODEL -o HF_DIR [--threads N]\n\n"
           "Writes MODEL (a GGUF path, a pulled name or a Hugging Face directory; llama, gpt2 or bert) into the\n"
           "directory HF_DIR (created if absent) as config.json, model.safetensors (fp32), tokenizer.json,\n"
           "tokenizer_config.json (special tokens, chat template) and README.md (licence), for transformers.\n");
}

int cmd_export(int argc, char **argv) {
    if (cli_wants_help(argc, argv)) {
        help();
        return 0;
    }
    const char *in = NULL, *out = NULL;
    bool err = false;
    for (int i = 1; i < argc; i++) {
        if (cli_flag_threads(argc, argv, &i, &err) || cli_flag_str(argc, argv, &i, "-o", "--out", &out, &err) ||
            cli_flag_str(argc, argv, &i, "-m", "--model", &in, &err)) {
            if (err) return 2;
        } else if (argv[i][0] == '-' && argv[i][1])
            return cli_usage_error("export: unknown option '%s' (hone export --help)", argv[i]);
        else if (in)
            return cli_usage_error("export: one model at a time, got '%s' and '%s'", in, argv[i]);
        else
            in = argv[i];
    }
    if (!in || !out) return cli_usage_error("export: expected MODEL and -o HF_DIR (hone export --help)");
    if (mkdir(out, 0755) && errno != EEXIST) {
        hn_fail(HN_ERR_IO, "%s: cannot create the directory: %s", out, strerror(errno));
        return cli_fail();
    }
    if (!hn_hf_is_dir(out)) {
        hn_fail(HN_ERR_IO, "%s: exists and is not a directory", out);
        return cli_fail();
    }
    char *path;
    if (hn_model_resolve(in, &path)) return cli_fail();
    hn_gguf g;
    hn_tokenizer *tk = NULL;
    bool hf = hn_hf_is_dir(path);
    hn_status s = hf ? hn_hf_open(&g, path) : hn_gguf_open(&g, path);
    free(path);
    if (s) return cli_fail();
    if (hf && hn_hf_has_tokenizer(g.path)) s = hn_tokenizer_from_hf_dir(&tk, g.path);
    else if (!hf && hn_gguf_find(&g, "tokenizer.ggml.tokens")) s = hn_tokenizer_from_gguf(&tk, &g);
    if (!s) s = hn_hf_export(&g, out);
    if (!s && tk) s = hn_tokenizer_to_hf_dir(tk, out);
    else if (!s) hn_warn("%s: the model has no tokenizer; %s gets none", g.path, out);
    if (!s) fprintf(stderr, "export: %s -> %s\n", g.path, out);
    if (tk) hn_tokenizer_destroy(tk);
    hn_gguf_close(&g);
    return s ? cli_fail() : 0;
}
