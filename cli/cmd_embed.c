// cli/cmd_embed.c — `hone embed`: one vector per line of a text file, pooled from the model's hidden states
// (model/embed.h), written as a NumPy .npy array (float32, shape (lines, dim)) or as JSON lines.
#include "cli/cli.h"
#include "model/embed.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *embed_usage =
    "usage: hone embed -m MODEL --data FILE [--pool cls|mean|max|last] [--normalize | --no-normalize] -o OUT\n"
    "                  [--json] [--exact] [--threads N]\n\n"
    "  -m, --model MODEL  GGUF file, Hugging Face directory or pulled model name (e.g. all-minilm-l6-v2)\n"
    "      --data FILE    one text per line (UTF-8; a final newline ends the last line)\n"
    "      --pool P       how token vectors become one: cls (the first token), mean or max over the tokens, last\n"
    "                     (the last token). Default: the model's own (sentence-transformers' 1_Pooling/config.json\n"
    "                     or bert.pooling_type; mean for encoders, last for decoders)\n"
    "      --normalize    divide each vector by its L2 norm (default: where the model's modules.json has a\n"
    "                     Normalize module); --no-normalize never\n"
    "  -o, --output OUT   .npy file (float32, shape (lines, dim)); with --json, JSON lines (one array per line;\n"
    "                     stdout when -o is absent)\n"
    "      --exact        fp32 reference path (dequantized weights, fp32 activations)\n"
    "      --threads N    threads (default: physical cores)\n";

// Texts per call of hn_model_embed_texts (which pads them into batches of its own).
#define EMBED_CHUNK 64

// Reads FILE into lines (pointers into *buf, NUL-terminated, "\r\n" and "\n" both end a line). An empty file, a
// NUL byte or a line that is not UTF-8 is an error naming the file and line.
static hn_status read_lines(const char *path, char **buf, char ***lines, int *n) {
    *buf = NULL, *lines = NULL, *n = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return hn_fail(HN_ERR_IO, "%s: cannot open the data file", path);
    size_t cap = 1 << 16, len = 0;
    char *b = malloc(cap);
    while (b) {
        len += fread(b + len, 1, cap - len - 1, f);
        if (len < cap - 1) break;
        char *nb = realloc(b, cap *= 2);
        if (!nb) free(b);
        b = nb;
    }
    bool err = ferror(f);
    fclose(f);
    if (!b || err) {
        free(b);
        return b ? hn_fail(HN_ERR_IO, "%s: cannot read the data file", path) : HN_ERR_NOMEM;
    }
    b[len] = 0;
    *buf = b;
    if (len == 0) return hn_fail(HN_ERR_FORMAT, "%s: the data file is empty; expected one text per line", path);
    if (memchr(b, 0, len)) return hn_fail(HN_ERR_FORMAT, "%s: contains a NUL byte; expected text", path);
    int count = 0;
    for (size_t i = 0; i < len; i++) count += b[i] == '\n';
    count += b[len - 1] != '\n';
    char **ls = hn_calloc((size_t)count, sizeof *ls, "lines");
    if (!ls) return HN_ERR_NOMEM;
    *lines = ls;
    char *p = b;
    for (int i = 0; i < count; i++) {
        char *e = strchr(p, '\n');
        if (e) *e = 0;
        size_t l = strlen(p);
        if (l && p[l - 1] == '\r') p[--l] = 0;
        if (hn_utf8_check(p, l) != l)
            return hn_fail(HN_ERR_FORMAT, "%s:%d: the line is not valid UTF-8", path, i + 1);
        ls[i] = p;
        p = e ? e + 1 : p + l;
    }
    *n = count;
    return HN_OK;
}

// NumPy format 1.0: magic, version, header length (u16 LE), a Python dict literal padded with spaces to a multiple
// of 64 bytes and ended by '\n', then the data (little-endian float32, C order).
static bool write_npy(FILE *f, const float *v, int rows, int cols) {
    char dict[128];
    int dl = snprintf(dict, sizeof dict, "{'descr': '<f4', 'fortran_order': False, 'shape': (%d, %d), }", rows, cols);
    int total = 10 + dl + 1, pad = (64 - total % 64) % 64;
    unsigned hl = (unsigned)(dl + pad + 1);
    unsigned char pre[10] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, (unsigned char)(hl & 0xFF), (unsigned char)(hl >> 8)};
    fwrite(pre, 1, 10, f);
    fwrite(dict, 1, (size_t)dl, f);
    for (int i = 0; i < pad; i++) fputc(' ', f);
    fputc('\n', f);
    fwrite(v, sizeof *v, (size_t)rows * cols, f);
    return !ferror(f);
}

static bool write_jsonl(FILE *f, const float *v, int rows, int cols) {
    for (int r = 0; r < rows; r++) {
        fputc('[', f);
        for (int j = 0; j < cols; j++) fprintf(f, j ? ", %.9g" : "%.9g", (double)v[(int64_t)r * cols + j]);
        fputs("]\n", f);
    }
    return !ferror(f);
}

int cmd_embed(int argc, char **argv) {
    if (cli_wants_help(argc, argv)) {
        fputs(embed_usage, stdout);
        return 0;
    }
    const char *model = NULL, *data = NULL, *out = NULL, *pool_name = NULL;
    bool json = false, exact = false;
    int normalize = -1, rc = -1; // -1: the model's own
    for (int i = 1; i < argc && rc < 0; i++) {
        bool err = false;
        if (cli_flag_str(argc, argv, &i, "-m", "--model", &model, &err) ||
            cli_flag_str(argc, argv, &i, NULL, "--data", &data, &err) ||
            cli_flag_str(argc, argv, &i, "-o", "--output", &out, &err) ||
            cli_flag_str(argc, argv, &i, NULL, "--pool", &pool_name, &err) || cli_flag_threads(argc, argv, &i, &err)) {
            if (err) rc = 2;
        } else if (cli_flag_bool(argv, i, NULL, "--json")) json = true;
        else if (cli_flag_bool(argv, i, NULL, "--exact")) exact = true;
        else if (cli_flag_bool(argv, i, NULL, "--normalize")) normalize = 1;
        else if (cli_flag_bool(argv, i, NULL, "--no-normalize")) normalize = 0;
        else rc = cli_usage_error("embed: unknown argument '%s' (hone embed --help)", argv[i]);
    }
    hn_pool pool = HN_POOL_MODEL;
    if (rc < 0 && !model) rc = cli_usage_error("embed: -m MODEL is required (hone embed --help)");
    if (rc < 0 && !data) rc = cli_usage_error("embed: --data FILE is required (hone embed --help)");
    if (rc < 0 && !out && !json) rc = cli_usage_error("embed: -o OUT.npy is required (or --json for stdout)");
    if (rc < 0 && pool_name && (pool = hn_pool_parse(pool_name)) == HN_POOL_NONE)
        rc = cli_usage_error("embed: --pool '%s', expected cls, mean, max or last", pool_name);
    if (rc >= 0) return rc;

    rc = 1;
    char *buf = NULL, **lines = NULL;
    int n = 0;
    hn_model *m = NULL;
    float *vec = NULL;
    FILE *f = NULL;
    if (read_lines(data, &buf, &lines, &n)) goto fail;
    hn_model_params mp = hn_model_default_params();
    mp.mm_mode = exact ? HN_MM_EXACT : HN_MM_FAST;
    if (hn_model_load(&m, model, &mp)) goto fail;
    if (pool == HN_POOL_MODEL) pool = hn_model_default_pool(m);
    bool norm = normalize < 0 ? hn_model_default_normalize(m) : normalize;
    int C = m->hp.n_embd;
    if (!(vec = hn_calloc((size_t)n * C, sizeof *vec, "embeddings"))) goto fail;
    for (int i = 0; i < n; i += EMBED_CHUNK) {
        int k = n - i < EMBED_CHUNK ? n - i : EMBED_CHUNK;
        if (hn_model_embed_texts(m, (const char *const *)lines + i, k, pool, norm, vec + (int64_t)i * C)) goto fail;
    }
    f = out ? fopen(out, json ? "w" : "wb") : stdout;
    if (!f) {
        hn_fail(HN_ERR_IO, "%s: cannot create the output file", out);
        goto fail;
    }
    bool ok = json ? write_jsonl(f, vec, n, C) : write_npy(f, vec, n, C);
    if ((f != stdout ? fclose(f) : fflush(f)) != 0 || !ok) {
        hn_fail(HN_ERR_IO, "%s: cannot write the embeddings", out ? out : "stdout");
        goto fail;
    }
    fprintf(stderr, "hone: %d embeddings of %d dimensions (pool %s%s) -> %s\n", n, C, hn_pool_name(pool),
            norm ? ", L2-normalised" : "", out ? out : "stdout");
    rc = 0;
    goto out;
fail:
    rc = cli_fail();
out:
    free(vec);
    free(lines);
    free(buf);
    hn_model_destroy(m);
    return rc;
}
