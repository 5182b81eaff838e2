// tests/test_bert.c — the BERT encoder (model/bert.c) and pooling (model/embed.c) against transformers on the tiny
// random BertModel of tools/reference/tiny_bert_ref.py (tests/data/tiny_bert), loaded from llama.cpp's GGUF and
// from the HF directory: the hidden states of a padded batch (rows of 12, 7 and 3 valid tokens; DESIGN.md section
// 7's tiny-model row, max abs diff <= 1e-4 on valid rows), each pooling and the L2 normalisation, five texts through
// the model's own WordPiece tokenizer; a DistilBERT directory's hidden states; a row alone equals the same row
// padded; and broken GGUF files (a missing tensor or key, a wrong shape, a causal BERT) give one-line errors.
#include "model/arch.h"
#include "model/embed.h"
#include "tests/test.h"
#include "tests/tiny_golden.h"

#include <math.h>
#include <string.h>

#define BERT_DIR "tests/data/tiny_bert"
#define TOL 1e-4

static double maxdiff(const float *a, const float *b, int64_t n) {
    double md = 0;
    for (int64_t i = 0; i < n; i++) md = fmax(md, fabs((double)a[i] - b[i]));
    return md;
}

// The golden batch through the model at `path` (the GGUF or the HF directory of the same weights).
static void test_golden(const char *path) {
    tg_file g;
    if (!tg_load(&g, BERT_DIR "/golden.bin")) {
        CHECK(false, "cannot read " BERT_DIR "/golden.bin");
        return;
    }
    const tg_array *ids = tg_get(&g, "input_ids"), *lens = tg_get(&g, "lens"), *hid = tg_get(&g, "hidden");
    CHECK(ids && lens && hid, "golden arrays present");
    if (!ids || !lens || !hid) return tg_free(&g);
    int B = (int)ids->dims[0], T = (int)ids->dims[1];
    hn_model_params p = hn_model_default_params();
    p.mm_mode = HN_MM_EXACT;
    hn_model *m;
    hn_status s = hn_model_load(&m, path, &p);
    CHECK(s == HN_OK, "load %s: %s", path, hn_errmsg());
    if (s) return tg_free(&g);
    int C = m->hp.n_embd;
    CHECK(m->hp.arch == HN_ARCH_BERT && C == 64 && m->hp.n_layer == 2 && m->hp.n_head == 4 && m->hp.n_ff == 128,
          "%s: hyper-parameters: arch %d, n_embd %d, n_layer %d", path, m->hp.arch, C, m->hp.n_layer);
    CHECK(hn_model_default_pool(m) == HN_POOL_MEAN, "default pooling is the file's (mean)");

    // hidden states of the padded batch, valid rows only
    hn_arena a = {0}, sc = {0};
    hn_ctx c = {.arena = &a, .scratch = &sc, .mm = HN_MM_EXACT};
    hn_var *h = hn_model_hidden_ex(&c, m, ids->i, lens->i, B, T, NULL, false);
    CHECK(h != NULL, "hidden: %s", hn_errmsg());
    if (h) {
        double md = 0;
        for (int b = 0; b < B; b++)
            md = fmax(md, maxdiff(h->d + (int64_t)b * T * C, hid->f + (int64_t)b * T * C, (int64_t)lens->i[b] * C));
        CHECK(md <= TOL, "hidden states vs transformers: max abs diff %.3g (tolerance %g)", md, TOL);
        printf("  %s: hidden states (B %d, T %d, lens %d %d %d) vs transformers: max abs diff %.2e\n", path, B, T,
               lens->i[0], lens->i[1], lens->i[2], md);
    }
    hn_arena_deinit(&a);
    hn_arena_deinit(&sc);

    // pooling and normalisation
    float *out = malloc((size_t)B * C * sizeof *out);
    struct {
        const char *golden;
        hn_pool pool;
        bool norm;
    } pools[] = {{"pool.mean", HN_POOL_MEAN, false}, {"pool.cls", HN_POOL_CLS, false}, {"pool.max", HN_POOL_MAX, false},
                 {"pool.last", HN_POOL_LAST, false}, {"pool.mean_norm", HN_POOL_MODEL, true}};
    for (size_t i = 0; i < sizeof pools / sizeof pools[0]; i++) {
        const tg_array *ref = tg_get(&g, pools[i].golden);
        s = hn_model_embed_ids(m, ids->i, lens->i, B, T, pools[i].pool, pools[i].norm, out);
        CHECK(s == HN_OK && ref, "embed %s: %s", pools[i].golden, hn_errmsg());
        if (s || !ref) continue;
        double md = maxdiff(out, ref->f, (int64_t)B * C);
        CHECK(md <= TOL, "%s vs reference: max abs diff %.3g", pools[i].golden, md);
        printf("  %-16s vs reference: max abs diff %.2e\n", pools[i].golden, md);
    }
    // Texts: the model's own tokenizer and framing, a padded batch, mean pooling.
    const tg_array *tref = tg_get(&g, "text.pool.mean");
    char *texts[8], buf[1024];
    int nt = 0;
    FILE *tf = fopen(BERT_DIR "/texts.txt", "r");
    while (tf && nt < 8 && fgets(buf, sizeof buf, tf)) {
        buf[strcspn(buf, "\n")] = 0;
        texts[nt++] = strdup(buf);
    }
    if (tf) fclose(tf);
    float *tout = malloc((size_t)(nt ? nt : 1) * C * sizeof *tout);
    s = tref && nt == tref->dims[0] ? hn_model_embed_texts(m, (const char *const *)texts, nt, HN_POOL_MEAN, false, tout)
                                    : HN_ERR_FORMAT;
    CHECK(s == HN_OK, "%s: embed texts.txt (%d lines): %s", path, nt, hn_errmsg());
    if (!s) {
        double md = maxdiff(tout, tref->f, (int64_t)nt * C);
        CHECK(md <= TOL, "%s: text embeddings vs transformers: max abs diff %.3g", path, md);
        printf("  %s: %d texts (tokenizer + model + mean) vs transformers: max abs diff %.2e\n", path, nt, md);
    }
    for (int i = 0; i < nt; i++) free(texts[i]);
    free(tout);
    // Row 2 alone (T = its 3 tokens) equals row 2 of the padded batch: padding changes nothing.
    float *one = malloc((size_t)C * sizeof *one);
    int32_t len2 = lens->i[2];
    s = hn_model_embed_ids(m, ids->i + 2 * T, &len2, 1, len2, HN_POOL_MEAN, false, one);
    double md = s ? 1 : 1e9;
    if (!s && !hn_model_embed_ids(m, ids->i, lens->i, B, T, HN_POOL_MEAN, false, out))
        md = maxdiff(one, out + 2 * C, C);
    CHECK(md <= 1e-5, "a row alone vs the same row padded in a batch: max abs diff %.3g", md);

    // bad arguments: a length of 0, a token id outside the vocabulary, pooling none
    int32_t bad_lens[3] = {12, 0, 3};
    CHECK(hn_model_embed_ids(m, ids->i, bad_lens, B, T, HN_POOL_MEAN, false, out) == HN_ERR_ARG &&
              strstr(hn_errmsg(), "valid tokens"), "length 0 refused: %s", hn_errmsg());
    int32_t bad_id[2] = {2, 9999}, two = 2;
    CHECK(hn_model_embed_ids(m, bad_id, &two, 1, 2, HN_POOL_MEAN, false, out) == HN_ERR_RANGE &&
              strstr(hn_errmsg(), "9999"), "id outside the vocabulary refused: %s", hn_errmsg());
    CHECK(hn_model_embed_ids(m, ids->i, lens->i, B, T, HN_POOL_NONE, false, out) == HN_ERR_ARG,
          "pooling none refused: %s", hn_errmsg());
    // longer than the positions
    int32_t *longids = calloc(40, sizeof *longids), forty = 40;
    CHECK(hn_model_embed_ids(m, longids, &forty, 1, 40, HN_POOL_MEAN, false, out) == HN_ERR_RANGE &&
              strstr(hn_errmsg(), "32 positions"), "40 tokens for 32 positions refused: %s", hn_errmsg());
    free(longids);
    free(one);
    free(out);
    hn_model_destroy(m);
    tg_free(&g);
}

// The DistilBERT twin (HF directory: no token types, q_lin/sa_layer_norm names) on the same padded batch.
static void test_distilbert(void) {
    tg_file g;
    if (!tg_load(&g, BERT_DIR "/distilbert/golden.bin")) {
        CHECK(false, "cannot read " BERT_DIR "/distilbert/golden.bin");
        return;
    }
    const tg_array *ids = tg_get(&g, "input_ids"), *lens = tg_get(&g, "lens"), *hid = tg_get(&g, "hidden");
    hn_model_params p = hn_model_default_params();
    p.mm_mode = HN_MM_EXACT;
    hn_model *m = NULL;
    hn_status s = ids && lens && hid ? hn_model_load(&m, BERT_DIR "/distilbert", &p) : HN_ERR_FORMAT;
    CHECK(s == HN_OK, "load the DistilBERT directory: %s", hn_errmsg());
    if (!s) {
        int B = (int)ids->dims[0], T = (int)ids->dims[1], C = m->hp.n_embd;
        CHECK(m->hp.arch == HN_ARCH_BERT && !m->type_embd && C == 64, "DistilBERT: a BERT without token types");
        hn_arena a = {0}, sc = {0};
        hn_ctx c = {.arena = &a, .scratch = &sc, .mm = HN_MM_EXACT};
        hn_var *h = hn_model_hidden_ex(&c, m, ids->i, lens->i, B, T, NULL, false);
        CHECK(h != NULL, "DistilBERT hidden: %s", hn_errmsg());
        double md = 0;
        for (int b = 0; h && b < B; b++)
            md = fmax(md, maxdiff(h->d + (int64_t)b * T * C, hid->f + (int64_t)b * T * C, (int64_t)lens->i[b] * C));
        CHECK(h && md <= TOL, "DistilBERT hidden states vs transformers: max abs diff %.3g", md);
        printf("  DistilBERT directory: hidden states vs transformers: max abs diff %.2e\n", md);
        hn_arena_deinit(&a);
        hn_arena_deinit(&sc);
    }
    hn_model_destroy(m);
    tg_free(&g);
}

// A copy of the tiny GGUF with one change made by `edit` (on the raw bytes) must fail to load with a one-line
// message containing `want`.
static void expect_load_error(const char *what, const char *find, size_t flen, const char *repl, const char *want) {
    FILE *f = fopen(BERT_DIR "/tiny_bert.gguf", "rb");
    CHECK(f != NULL, "open tiny_bert.gguf");
    if (!f) return;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n);
    bool ok = fread(buf, 1, (size_t)n, f) == (size_t)n;
    fclose(f);
    char *at = NULL;
    for (long i = 0; ok && i + (long)flen <= n && !at; i++)
        if (!memcmp(buf + i, find, flen)) at = buf + i;
    CHECK(at != NULL, "%s: '%s' found in the file", what, find);
    if (!at) return free(buf);
    memcpy(at, repl, flen); // same length: the file stays well-formed
    char path[] = "/tmp/hone_test_bert_XXXXXX.gguf";
    int fd = mkstemps(path, 5);
    FILE *o = fd >= 0 ? fdopen(fd, "wb") : NULL;
    if (o) fwrite(buf, 1, (size_t)n, o), fclose(o);
    free(buf);
    hn_model *m = NULL;
    hn_status s = hn_model_load(&m, path, NULL);
    CHECK(s != HN_OK && strstr(hn_errmsg(), want) && !strchr(hn_errmsg(), '\n'), "%s: refused with '%s': %s", what,
          want, hn_errmsg());
    printf("  %-28s -> %s\n", what, hn_errmsg());
    hn_model_destroy(m);
    remove(path);
}

int main(void) {
    test_golden(BERT_DIR "/tiny_bert.gguf");
    test_golden(BERT_DIR); // config.json + model.safetensors (F16) + tokenizer.json, through io/hf.c
    test_distilbert();
    // Renaming a tensor in the file's index makes it missing; renaming a key does the same to the metadata.
#define S(lit) lit, sizeof lit - 1
    expect_load_error("missing tensor", S("blk.1.ffn_up.weight"), "blk.1.ffn_uq.weight", "blk.1.ffn_up.weight");
    expect_load_error("missing key", S("bert.feed_forward_length"), "bert.feed_forward_lengtX", "feed_forward_length");
    // The tensor index entry of blk.0.attn_q.bias: name, 1 dimension, 64 -> 32 (less data: still inside the file).
    expect_load_error("wrong shape", S("blk.0.attn_q.bias\x01\x00\x00\x00\x40"),
                      "blk.0.attn_q.bias\x01\x00\x00\x00\x20", "expected {64}");
    expect_load_error("causal BERT", S("bert.attention.causal\x07\x00\x00\x00\x00"),
                      "bert.attention.causal\x07\x00\x00\x00\x01", "causal");
    return test_done();
}
