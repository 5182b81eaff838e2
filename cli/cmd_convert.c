// cli/cmd_convert.c — `hone convert HF_DIR -o OUT.gguf [--type T]`: a Hugging Face model directory written as a
// GGUF file that llama.cpp and hone load.
//
// The directory is opened as a GGUF view that also carries its tokenizer's tokenizer.ggml.* keys (io/hf.h,
// hn_hf_open_ex), and `hone quantize` writes that view as it writes any GGUF: the same types, the same streaming
// writer (one tensor in memory at a time), the same summary. The chat template, special tokens, general.name and
// general.license travel as metadata keys.
#include "cli/cli.h"
#include "io/hf.h"
#include "model/registry.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void help(void) {
    printf("usage: hone convert HF_DIR -o OUT.gguf [--type f32|f16|q8_0|q4_0|q4_1] [--threads N]\n\n"
           "Writes the Hugging Face model directory HF_DIR (config.json; model.safetensors, its shards with\n"
           "model.safetensors.index.json, or pytorch_model.bin; tokenizer.json or vocab.txt; tokenizer_config.json)\n"
           "as the GGUF file OUT. Architectures: llama, gpt2, bert, distilbert. Tensors get llama.cpp's names and\n"
           "layouts, 2-D weights the type T (default f16; 1-D tensors f32), and the tokenizer, chat template,\n"
           "special tokens, name and licence become metadata. `hone quantize` takes the same types.\n");
}

int cmd_convert(int argc, char **argv) {
    if (cli_wants_help(argc, argv)) {
        help();
        return 0;
    }
    const char *in = NULL, *out = NULL, *type = "f16";
    bool err = false;
    for (int i = 1; i < argc; i++) {
        if (cli_flag_threads(argc, argv, &i, &err) || cli_flag_str(argc, argv, &i, "-o", "--out", &out, &err) ||
            cli_flag_str(argc, argv, &i, "-t", "--type", &type, &err)) {
            if (err) return 2;
        } else if (argv[i][0] == '-' && argv[i][1])
            return cli_usage_error("convert: unknown option '%s' (hone convert --help)", argv[i]);
        else if (in)
            return cli_usage_error("convert: one input directory at a time, got '%s' and '%s'", in, argv[i]);
        else
            in = argv[i];
    }
    if (!in || !out) return cli_usage_error("convert: expected HF_DIR and -o OUT.gguf (hone convert --help)");
    char *path;
    if (hn_model_resolve(in, &path)) return cli_fail();
    bool dir = hn_hf_is_dir(path);
    free(path);
    if (!dir)
        return cli_usage_error("convert: '%s' is not a directory: expected a Hugging Face model directory (a GGUF "
                               "is rewritten with hone quantize)", in);
    char *qargv[] = {"quantize", (char *)in, "-o", (char *)out, "--type", (char *)type, NULL};
    return cmd_quantize(6, qargv);
}
