// cli/cmd_score.c — `hone score`: the log-probability of every token of a text given the ones before it, and the
// perplexity exp(-mean logprob) over the tokens that have a prediction (all but the first).
#include "cli/adapters.h"
#include "cli/cli.h"
#include "model/model.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *score_usage =
    "usage: hone score -m MODEL [--data FILE | TEXT] [--adapter P]... [--json] [--exact] [--ctx N] [--threads N]\n\n"
    "  -m, --model MODEL  GGUF file or pulled model name\n"
    "      --data FILE    score the contents of FILE (otherwise TEXT)\n"
    "      --json         one object per token {\"id\", \"piece\", \"logprob\"} (the first token's logprob is null),\n"
    "                     then {\"perplexity\": P, \"tokens\": N}\n"
    "      --exact        fp32 reference path (dequantized weights, fp32 activations)\n"
    "      --quantize nf4 re-quantize the linear weights to 4-bit NormalFloat at load (QLoRA's NF4)\n"
    "      --ctx N        context size in tokens (default: the text's length, at most the model's)\n"
    "      --threads N    threads (default: physical cores)\n";

// Rows of logits scored per forward call: bounds the logits buffer at SCORE_CHUNK * n_vocab floats.
#define SCORE_CHUNK 256

static char *read_file(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        hn_fail(HN_ERR_IO, "%s: cannot open the data file", path);
        return NULL;
    }
    size_t cap = 1 << 16, len = 0;
    char *buf = malloc(cap);
    while (buf) {
        len += fread(buf + len, 1, cap - len - 1, f);
        if (len < cap - 1) break;
        char *nb = realloc(buf, cap *= 2);
        if (!nb) free(buf);
        buf = nb;
    }
    bool err = ferror(f);
    fclose(f);
    if (!buf || err) {
        free(buf);
        hn_fail(HN_ERR_IO, "%s: cannot read the data file", path);
        return NULL;
    }
    buf[len] = 0;
    return buf;
}

// Writes s as the contents of a JSON string: escapes as RFC 8259 requires; bytes that are not valid UTF-8 (a token
// can hold part of a character) become U+FFFD.
static void json_str(FILE *f, const unsigned char *s, int n) {
    for (int i = 0; i < n;) {
        unsigned c = s[i];
        if (c == '"' || c == '\\') fprintf(f, "\\%c", c), i++;
        else if (c == '\n') fputs("\\n", f), i++;
        else if (c == '\r') fputs("\\r", f), i++;
        else if (c == '\t') fputs("\\t", f), i++;
        else if (c < 0x20 || c == 0x7F) fprintf(f, "\\u%04x", c), i++;
        else if (c < 0x80) fputc(c, f), i++;
        else {
            int len = c >= 0xF0 && c < 0xF5 ? 4 : c >= 0xE0 && c < 0xF0 ? 3 : c >= 0xC2 && c < 0xE0 ? 2 : 0;
            bool ok = len && i + len <= n;
            for (int k = 1; ok && k < len; k++) ok = (s[i + k] & 0xC0) == 0x80;
            // Overlong 3/4-byte forms, surrogates and code points past U+10FFFF are not valid either.
            if (ok && len == 3) ok = !(c == 0xE0 && s[i + 1] < 0xA0) && !(c == 0xED && s[i + 1] >= 0xA0);
            if (ok && len == 4) ok = !(c == 0xF0 && s[i + 1] < 0x90) && !(c == 0xF4 && s[i + 1] >= 0x90);
            if (ok) fwrite(s + i, 1, len, f), i += len;
            else fputs("\\ufffd", f), i++;
        }
    }
}

int cmd_score(int argc, char **argv) {
    if (cli_wants_help(argc, argv)) {
        fputs(score_usage, stdout);
        fputs(cli_adapters_usage, stdout);
        return 0;
    }
    const char *model = NULL, *data = NULL, *text = NULL;
    bool json = false, exact = false;
    hn_dtype quantize = 0;
    int n_ctx = 0, rc = -1;
    cli_adapters ca = {0};
    for (int i = 1; i < argc && rc < 0; i++) {
        bool err = false;
        if (cli_flag_str(argc, argv, &i, "-m", "--model", &model, &err) ||
            cli_flag_str(argc, argv, &i, NULL, "--data", &data, &err) ||
            cli_flag_int(argc, argv, &i, NULL, "--ctx", &n_ctx, &err) || cli_flag_threads(argc, argv, &i, &err) ||
            cli_adapters_flag(&ca, argc, argv, &i, &err) || cli_flag_quantize(argc, argv, &i, &quantize, &err)) {
            if (err) rc = 2;
        } else if (cli_flag_bool(argv, i, NULL, "--json")) json = true;
        else if (cli_flag_bool(argv, i, NULL, "--exact")) exact = true;
        else if (argv[i][0] == '-' && argv[i][1]) rc = cli_usage_error("score: unknown flag '%s' (hone score --help)", argv[i]);
        else if (text) rc = cli_usage_error("score: one TEXT only (got '%s' too); quote it", argv[i]);
        else text = argv[i];
    }
    if (rc < 0 && !model) rc = cli_usage_error("score: -m MODEL is required (hone score --help)");
    if (rc < 0 && !data == !text) rc = cli_usage_error("score: give either --data FILE or TEXT (hone score --help)");
    if (rc < 0 && n_ctx < 0) rc = cli_usage_error("--ctx expects a positive count, got %d", n_ctx);
    if (rc >= 0) {
        cli_adapters_deinit(&ca);
        return rc;
    }

    rc = 1;
    char *buf = NULL;
    int32_t *ids = NULL;
    int64_t n = 0;
    hn_model *m = NULL;
    hn_kv_cache *kv = NULL;
    double *lp = NULL;
    if (data && !(buf = read_file(data))) goto fail;
    hn_model_params mp = hn_model_default_params();
    mp.mm_mode = exact ? HN_MM_EXACT : HN_MM_FAST;
    mp.quantize = quantize;
    if (hn_model_load(&m, model, &mp) || cli_adapters_attach(&ca, m)) goto fail;
    if (hn_tokenizer_encode(m->tok, data ? buf : text, -1, HN_TOK_SPECIAL | HN_TOK_ADD_BOS, &ids, &n)) goto fail;
    if (n < 2) {
        rc = cli_usage_error("score: the text has %lld token(s); at least 2 are needed", (long long)n);
        goto out;
    }
    if (!n_ctx) n_ctx = n < m->hp.n_ctx_train || m->hp.n_ctx_train <= 0 ? (int)(n < INT32_MAX ? n : INT32_MAX)
                                                                        : m->hp.n_ctx_train;
    if (n > n_ctx) {
        hn_fail(HN_ERR_RANGE, "text of %lld tokens is longer than the context of %d tokens", (long long)n, n_ctx);
        goto fail;
    }
    if (!(kv = hn_kv_cache_create(m, n_ctx)) || !(lp = hn_calloc(n, sizeof *lp, "log-probabilities"))) goto fail;
    const int64_t V = m->hp.n_vocab;
    for (int64_t t0 = 0; t0 < n; t0 += SCORE_CHUNK) {
        int c = n - t0 < SCORE_CHUNK ? (int)(n - t0) : SCORE_CHUNK;
        float *logits; // (c, V)
        if (hn_model_forward(m, kv, ids + t0, c, HN_LOGITS_ALL, &logits)) goto fail;
        for (int r = 0; r < c && t0 + r + 1 < n; r++) {
            const float *row = logits + r * V;
            float mx = row[0];
            for (int64_t j = 1; j < V; j++) mx = row[j] > mx ? row[j] : mx;
            double sum = 0;
            for (int64_t j = 0; j < V; j++) sum += exp((double)row[j] - mx);
            lp[t0 + r + 1] = (double)row[ids[t0 + r + 1]] - mx - log(sum);
        }
    }
    double total = 0;
    for (int64_t t = 1; t < n; t++) total += lp[t];
    double ppl = exp(-total / (double)(n - 1));
    if (!json) printf("%6s %7s %10s  %s\n", "pos", "id", "logprob", "piece");
    for (int64_t t = 0; t < n; t++) {
        char piece[256];
        int nb = hn_tokenizer_token_bytes(m->tok, ids[t], piece, sizeof piece);
        nb = nb < 0 ? 0 : nb > (int)sizeof piece ? (int)sizeof piece : nb;
        if (json) {
            printf("{\"id\": %d, \"piece\": \"", (int)ids[t]);
            json_str(stdout, (const unsigned char *)piece, nb);
            if (t == 0) printf("\", \"logprob\": null}\n");
            else printf("\", \"logprob\": %.9g}\n", lp[t]);
        } else {
            if (t == 0) printf("%6lld %7d %10s  ", (long long)t, (int)ids[t], "-");
            else printf("%6lld %7d %10.4f  ", (long long)t, (int)ids[t], lp[t]);
            json_str(stdout, (const unsigned char *)piece, nb); // escaped, so newlines keep the table readable
            putchar('\n');
        }
    }
    if (json) printf("{\"perplexity\": %.9g, \"tokens\": %lld}\n", ppl, (long long)n);
    else printf("perplexity: %.4f over %lld tokens\n", ppl, (long long)n);
    rc = 0;
    goto out;
fail:
    rc = cli_fail();
out:
    free(lp);
    free(buf);
    free(ids);
    hn_kv_cache_destroy(kv);
    cli_adapters_deinit(&ca);
    hn_model_destroy(m);
    return rc;
}
