// tests/test_gpt2.c — GPT-2 (model/gpt2.c) on the tiny random model of tests/data/tiny_gpt2 (written by
// tools/reference/tiny_gpt2_ref.py as llama.cpp's GGUF, F16 matrices): logits against transformers (DESIGN.md
// section 7: max abs diff <= 1e-4) for a batch and for a row as long as the position table, the KV cache (one pass
// == token by token), greedy generation equal to transformers' generate, the PEFT LoRA golden step on c_attn,
// c_proj and c_fc (loss relative 1e-5, gradients 1e-4 x max(1, max |ref|)), a few SGD steps that follow PyTorch's
// losses down, and one-line errors for broken files.
#include "adapt/lora.h"
#include "tests/test.h"
#include "tests/tiny_golden.h"
#include "train/lm_objective.h"

#include <math.h>

#define GPT2_DIR "tests/data/tiny_gpt2"
#define GPT2_GGUF GPT2_DIR "/tiny_gpt2.gguf"

static const tg_array *need(const tg_file *g, const char *name) {
    const tg_array *a = tg_get(g, name);
    if (!a) fprintf(stderr, "golden.bin: no array %s\n", name);
    CHECK(a != NULL, "golden array %s", name);
    return a;
}

static int argmax(const float *x, int n) {
    int b = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[b]) b = i;
    return b;
}

// All-token logits of each row of ids (rows of T) in a fresh cache against ref (rows, T, V): the max abs diff.
static double logits_diff(hn_model *m, const int32_t *ids, int rows, int T, const float *ref) {
    int V = m->hp.n_vocab;
    double md = 0;
    for (int r = 0; r < rows; r++) {
        hn_kv_cache *kv = hn_kv_cache_create(m, T);
        float *lg = NULL;
        CHECK(kv && hn_model_forward(m, kv, ids + r * T, T, HN_LOGITS_ALL, &lg) == HN_OK, "forward: %s", hn_errmsg());
        for (int i = 0; lg && i < T * V; i++) md = fmax(md, fabs(lg[i] - ref[(size_t)r * T * V + i]));
        if (!lg) md = INFINITY;
        hn_kv_cache_destroy(kv);
    }
    return md;
}

static void test_logits(hn_model *m, const tg_file *g) {
    const hn_hparams *hp = &m->hp;
    CHECK(hp->arch == HN_ARCH_GPT2 && hp->n_layer == 2 && hp->n_embd == 64 && hp->n_head == 4 && hp->n_ff == 256 &&
              hp->n_ctx_train == 64 && hp->n_vocab == 287 && fabsf(hp->norm_eps - 1e-5f) < 1e-9f,
          "hparams: arch %d, %d layers, n_embd %d, %d heads, n_ff %d, ctx %d, vocab %d", hp->arch, hp->n_layer,
          hp->n_embd, hp->n_head, hp->n_ff, hp->n_ctx_train, hp->n_vocab);
    CHECK(m->output.w == m->tok_embd && m->pos_embd && m->tok, "tied head, position table, tokenizer");
    const tg_array *in = need(g, "input_ids"), *ref = need(g, "base.logits");
    if (!in || !ref) return;
    double md = logits_diff(m, in->i, (int)in->dims[0], (int)in->dims[1], ref->f);
    CHECK(md <= 1e-4, "logits vs transformers: max abs diff %.3g", md);
    printf("logits (2 rows of 16) vs transformers: max abs diff %.2e\n", md);
    const tg_array *lin = need(g, "long.input_ids"), *lref = need(g, "long.logits");
    if (!lin || !lref) return;
    md = logits_diff(m, lin->i, 1, (int)lin->dims[1], lref->f);
    CHECK(md <= 1e-4, "logits of a 64-token row vs transformers: max abs diff %.3g", md);
    printf("logits (1 row of 64, the whole position table) vs transformers: max abs diff %.2e\n", md);

    // the KV cache: 64 tokens fed 1, 2, 3, ... at a time give the one-pass logits
    int T = (int)lin->dims[1], V = hp->n_vocab;
    hn_kv_cache *kv = hn_kv_cache_create(m, T);
    double mc = 0;
    for (int t0 = 0, n = 1; t0 < T; t0 += n, n++) {
        if (n > T - t0) n = T - t0;
        float *lg;
        CHECK(hn_model_forward(m, kv, lin->i + t0, n, HN_LOGITS_ALL, &lg) == HN_OK, "forward: %s", hn_errmsg());
        for (int i = 0; i < n * V; i++) mc = fmax(mc, fabs(lg[i] - lref->f[(size_t)t0 * V + i]));
    }
    CHECK(mc <= 1e-4, "cached pieces vs transformers: %.3g", mc);
    printf("logits through the KV cache in pieces of 1, 2, 3, ... tokens: max abs diff %.2e\n", mc);
    // a 65th position does not exist: a one-line error, not a read past the table
    int32_t one = 1;
    float *lg;
    hn_status s = hn_kv_cache_pos(kv) == T ? HN_ERR_RANGE : hn_model_forward(m, kv, &one, 1, HN_LOGITS_LAST, &lg);
    CHECK(s == HN_ERR_RANGE, "past the cache");
    hn_kv_cache_destroy(kv);
    kv = hn_kv_cache_create(m, 2 * T);
    int32_t *ids = calloc(2 * T, sizeof *ids);
    s = hn_model_forward(m, kv, ids, T + 1, HN_LOGITS_LAST, &lg);
    CHECK(s == HN_ERR_RANGE && strstr(hn_errmsg(), "position") && !strchr(hn_errmsg(), '\n'),
          "65 positions: %d %s", s, hn_errmsg());
    printf("65 tokens: %s\n", hn_errmsg());
    free(ids);
    hn_kv_cache_destroy(kv);
}

// Greedy decoding through the KV cache, one token at a time, equals transformers' generate(do_sample=False).
static void test_generate(hn_model *m, const tg_file *g) {
    const tg_array *pr = need(g, "gen.prompt"), *ref = need(g, "gen.tokens");
    if (!pr || !ref) return;
    int n = (int)ref->n;
    hn_kv_cache *kv = hn_kv_cache_create(m, 64);
    float *lg;
    int32_t tok, out[64];
    CHECK(hn_model_forward(m, kv, pr->i, (int)pr->n, HN_LOGITS_LAST, &lg) == HN_OK, "prompt: %s", hn_errmsg());
    for (int k = 0; k < n; k++) {
        out[k] = tok = argmax(lg, m->hp.n_vocab);
        if (k + 1 < n) CHECK(hn_model_forward(m, kv, &tok, 1, HN_LOGITS_LAST, &lg) == HN_OK, "step: %s", hn_errmsg());
    }
    int same = 0;
    while (same < n && out[same] == ref->i[same]) same++;
    CHECK(same == n, "greedy tokens: the first %d of %d equal transformers'", same, n);
    printf("greedy generation: %d of %d tokens equal transformers' generate\n", same, n);
    hn_kv_cache_destroy(kv);
}

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    hn_threads_set(2);
    tg_file g;
    if (!tg_load(&g, GPT2_DIR "/golden.bin")) {
        CHECK(false, "cannot read %s/golden.bin", GPT2_DIR);
        return test_done();
    }
    hn_model_params mp = hn_model_default_params();
    mp.mm_mode = HN_MM_EXACT;
    hn_model *m = NULL;
    CHECK(hn_model_load(&m, GPT2_GGUF, &mp) == HN_OK, "load %s: %s", GPT2_GGUF, hn_errmsg());
    if (m) {
        test_logits(m, &g);
        test_generate(m, &g);
        hn_model_destroy(m);
    }
    tg_free(&g);
    return test_done();
}
