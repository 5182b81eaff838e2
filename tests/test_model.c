// tests/test_model.c — the Llama forward pass on SmolLM2-135M-Instruct (Q4_1) against golden logits from Hugging Face
// transformers (tests/data/smollm2_logits.bin, written by tools/reference/logits_ref.py), the fast path against the
// exact one (DESIGN.md section 7), the KV cache (one pass == token by token == split passes), and load errors on
// small broken files made with the GGUF writer.
#include "model/model.h"
#include "test.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

// Observed on the committed data: max abs diff 6.5e-5 (logits of magnitude ~20, 1-2 threads, AVX-512 machine); the
// bound leaves room for other summation orders (thread counts, SIMD levels) while a real error (a wrong rope pair,
// a misread block) moves logits by far more than 1e-1.
#define EXACT_TOP20_BOUND 1e-3

typedef struct {
    char *text;
    int n;
    int32_t *ids;    // (n)
    int32_t *top_i;  // (n, K)
    float *top_v;    // (n, K)
    float *lse;      // (n)
} ref_prompt;

typedef struct {
    int n_prompts, n_vocab, K;
    ref_prompt *p;
} ref_data;

static bool rd(FILE *f, void *dst, size_t n) { return fread(dst, 1, n, f) == n; }

static bool load_ref(const char *path, ref_data *r) {
    FILE *f = fopen(path, "rb");
    if (!f) return false;
    char magic[4];
    uint32_t hdr[4];
    bool ok = rd(f, magic, 4) && !memcmp(magic, "HNLG", 4) && rd(f, hdr, sizeof hdr) && hdr[0] == 1 &&
              hdr[1] > 0 && hdr[1] < 64 && hdr[3] > 0 && hdr[3] <= 64;
    if (ok) {
        r->n_prompts = hdr[1], r->n_vocab = hdr[2], r->K = hdr[3];
        r->p = calloc(r->n_prompts, sizeof *r->p);
    }
    for (int i = 0; ok && i < r->n_prompts; i++) {
        ref_prompt *p = &r->p[i];
        uint32_t len, n;
        ok = rd(f, &len, 4) && len < (1 << 20) && (p->text = calloc(len + 1, 1)) && rd(f, p->text, len) &&
             rd(f, &n, 4) && n > 0 && n < 4096;
        if (!ok) break;
        p->n = n;
        p->ids = malloc(n * 4), p->top_i = malloc((size_t)n * r->K * 4), p->top_v = malloc((size_t)n * r->K * 4);
        p->lse = malloc(n * 4);
        ok = rd(f, p->ids, n * 4);
        for (uint32_t t = 0; ok && t < n; t++)
            ok = rd(f, p->top_i + t * r->K, r->K * 4) && rd(f, p->top_v + t * r->K, r->K * 4) && rd(f, p->lse + t, 4);
    }
    fclose(f);
    return ok;
}

static void free_ref(ref_data *r) {
    for (int i = 0; r->p && i < r->n_prompts; i++) {
        free(r->p[i].text), free(r->p[i].ids), free(r->p[i].top_i), free(r->p[i].top_v), free(r->p[i].lse);
    }
    free(r->p);
}

static int argmax(const float *x, int n) {
    int b = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[b]) b = i;
    return b;
}

// All-token logits (T, V) of ids in a fresh cache, copied out (the cache owns its buffer).
static float *run_all(hn_model *m, const int32_t *ids, int T) {
    hn_kv_cache *kv = hn_kv_cache_create(m, T);
    float *lg = NULL, *out = NULL;
    if (kv && !hn_model_forward(m, kv, ids, T, HN_LOGITS_ALL, &lg)) {
        out = malloc((size_t)T * m->hp.n_vocab * sizeof *out);
        memcpy(out, lg, (size_t)T * m->hp.n_vocab * sizeof *out);
    } else
        fprintf(stderr, "forward failed: %s\n", hn_errmsg());
    hn_kv_cache_destroy(kv);
    return out;
}

// The same logits (T, V), one token at a time: the decode path, where FAST mode runs its fp32-activation decode
// kernels and FAST_Q8 its 8-bit dot products (longer batches go through the same fp32 tiles as EXACT).
static float *run_steps(hn_model *m, const int32_t *ids, int T) {
    hn_kv_cache *kv = hn_kv_cache_create(m, T);
    float *lg = NULL, *out = malloc((size_t)T * m->hp.n_vocab * sizeof *out);
    for (int t = 0; kv && out && t < T; t++) {
        if (hn_model_forward(m, kv, ids + t, 1, HN_LOGITS_LAST, &lg)) {
            fprintf(stderr, "forward failed: %s\n", hn_errmsg());
            free(out);
            out = NULL;
            break;
        }
        memcpy(out + (size_t)t * m->hp.n_vocab, lg, m->hp.n_vocab * sizeof *out);
    }
    hn_kv_cache_destroy(kv);
    return out;
}

// KL(p || q) of the softmaxes of two logit rows.
static double kl_div(const float *a, const float *b, int n) {
    double ma = a[argmax(a, n)], mb = b[argmax(b, n)], sa = 0, sb = 0;
    for (int i = 0; i < n; i++) sa += exp(a[i] - ma), sb += exp(b[i] - mb);
    double la = log(sa) + ma, lb = log(sb) + mb, kl = 0;
    for (int i = 0; i < n; i++) {
        double lpa = a[i] - la, lpb = b[i] - lb;
        kl += exp(lpa) * (lpa - lpb);
    }
    return kl;
}

typedef struct {
    int agree, n;
    double kl_sum;
} fast_stats;

static void fast_compare(const float *ex, const float *fa, int T, int V, fast_stats *st) {
    for (int t = 0; t < T; t++) {
        const float *row = ex + (size_t)t * V, *frow = fa + (size_t)t * V;
        int am = argmax(row, V);
        st->agree += argmax(frow, V) == am;
        double klv = kl_div(row, frow, V);
        st->kl_sum += klv;
        if (getenv("XKL")) printf("KL %d %.5f %s\n", t, klv, argmax(frow, V) == am ? "" : "FLIP");
        st->n++;
    }
}

static void test_golden(hn_model *m, const ref_data *ref, bool sanitized) {
    const int V = m->hp.n_vocab, K = ref->K;
    CHECK(ref->n_vocab == V, "reference vocabulary %d, model %d", ref->n_vocab, V);
    double max_diff = 0;
    int n_pos = 0, n_agree = 0;
    fast_stats fs = {0}, qs = {0};
    for (int pi = 0; pi < ref->n_prompts; pi++) {
        const ref_prompt *p = &ref->p[pi];
        int32_t *ids;
        int64_t n;
        CHECK(!hn_tokenizer_encode(m->tok, p->text, -1, HN_TOK_SPECIAL, &ids, &n), "encode: %s", hn_errmsg());
        bool same = n == p->n && !memcmp(ids, p->ids, n * sizeof *ids);
        CHECK(same, "prompt %d: hone's tokenizer gives %lld ids, the reference %d (or they differ)", pi, (long long)n,
              p->n);
        free(ids);
        // Under the sanitizers (slow, unoptimised kernels) two prompts of 8 tokens cover the same code.
        if (sanitized && pi != 1 && pi != 2) continue;
        int T = sanitized ? (p->n < 8 ? p->n : 8) : p->n;
        m->mm_mode = HN_MM_EXACT;
        float *ex = run_all(m, p->ids, T);
        m->mm_mode = HN_MM_FAST;
        float *fa = run_steps(m, p->ids, T);
        m->mm_mode = HN_MM_FAST_Q8;
        float *fq = run_steps(m, p->ids, T);
        CHECK(ex && fa && fq, "forward of prompt %d", pi);
        if (!ex || !fa || !fq) {
            free(ex), free(fa), free(fq);
            continue;
        }
        double pmax = 0;
        for (int t = 0; t < T; t++) {
            const float *row = ex + (size_t)t * V;
            int am = argmax(row, V);
            // A near-tie in the reference may flip by rounding; count it only when the top two are apart.
            float gap = p->top_v[t * K] - p->top_v[t * K + 1];
            bool agree = am == p->top_i[t * K] || (gap < 1e-3f && am == p->top_i[t * K + 1]);
            CHECK(agree, "prompt %d position %d: exact argmax %d, reference %d", pi, t, am, p->top_i[t * K]);
            n_agree += agree;
            for (int k = 0; k < K; k++) {
                double d = fabs(row[p->top_i[t * K + k]] - p->top_v[t * K + k]);
                pmax = d > pmax ? d : pmax;
            }
            n_pos++;
        }
        fast_compare(ex, fa, T, V, &fs);
        fast_compare(ex, fq, T, V, &qs);
        printf("prompt %d (%d positions): exact vs transformers max abs diff on top-%d logits %.3g\n", pi, T, K, pmax);
        max_diff = pmax > max_diff ? pmax : max_diff;
        free(ex), free(fa), free(fq);
    }
    int np = n_pos ? n_pos : 1;
    double f_frac = (double)fs.agree / np, f_kl = fs.kl_sum / np, q_frac = (double)qs.agree / np, q_kl = qs.kl_sum / np;
    printf("exact vs transformers: argmax agrees at %d/%d positions, max abs diff %.3g (bound %g)\n", n_agree, n_pos,
           max_diff, EXACT_TOP20_BOUND);
    printf("fast (decode, fp32 activations) vs exact: argmax agrees at %.2f%% of %d positions, mean KL %.3g\n",
           100 * f_frac, n_pos, f_kl);
    printf("fast_q8 (decode, 8-bit activations) vs exact: argmax agrees at %.2f%% of %d positions, mean KL %.3g\n",
           100 * q_frac, n_pos, q_kl);
    CHECK(max_diff <= EXACT_TOP20_BOUND, "exact path max abs diff %g > %g", max_diff, EXACT_TOP20_BOUND);
    // FAST: DESIGN.md section 7's row (>= 99% same argmax, mean KL <= 1e-3). Observed: 100%, KL ~3e-11 (the decode
    // kernels differ from EXACT only by summation order), so this also holds on the sanitizers' short inputs.
    CHECK(f_frac >= 0.99, "fast path argmax agreement %.4f < 0.99", f_frac);
    CHECK(f_kl <= 1e-3, "fast path mean KL %g > 1e-3", f_kl);
    // FAST_Q8 (the 8-bit activation scheme, an option: HN_MM_FAST_Q8 or HONE_FAST_ACT=q8) has its own, looser bound:
    // it misses DESIGN.md 7's row on SmolLM2 by the scheme itself (outlier dimensions up to ~25x the typical value
    // after RMSNorm make a 32-block's 8-bit step coarse). Simulated with the reference quantizers it gives 97.4% and
    // KL 3.4e-3; the SIMD kernels 97.0-97.8% and KL 2.9e-3-3.0e-3 (the flips are near-ties). Bounds: those with a
    // margin; a broken kernel gives KL > 1e-1.
    if (!sanitized) {
        CHECK(q_frac >= 0.95, "fast_q8 path argmax agreement %.4f < 0.95", q_frac);
        CHECK(q_kl <= 5e-3, "fast_q8 path mean KL %g > 5e-3", q_kl);
    } else
        CHECK(q_kl <= 2e-2, "fast_q8 path mean KL %g > 2e-2 (short inputs)", q_kl);
}

// One pass over the prompt, token-by-token decoding and two split passes must give the same last logits.
static void test_kv_cache(hn_model *m, const int32_t *ids, int T) {
    const int V = m->hp.n_vocab;
    m->mm_mode = HN_MM_EXACT;
    hn_kv_cache *kv = hn_kv_cache_create(m, T + 4);
    float *lg, *one = malloc(V * sizeof *one);
    CHECK(!hn_model_forward(m, kv, ids, T, HN_LOGITS_LAST, &lg), "%s", hn_errmsg());
    memcpy(one, lg, V * sizeof *one);
    CHECK(hn_kv_cache_pos(kv) == T, "pos %d after %d tokens", hn_kv_cache_pos(kv), T);

    hn_kv_cache_truncate(kv, 0);
    double d_step = 0, d_split = 0;
    for (int t = 0; t < T; t++) CHECK(!hn_model_forward(m, kv, ids + t, 1, HN_LOGITS_LAST, &lg), "%s", hn_errmsg());
    for (int i = 0; i < V; i++) d_step = fmax(d_step, fabs(lg[i] - one[i]));

    hn_kv_cache_truncate(kv, T / 3);
    CHECK(!hn_model_forward(m, kv, ids + T / 3, T - T / 3, HN_LOGITS_LAST, &lg), "%s", hn_errmsg());
    for (int i = 0; i < V; i++) d_split = fmax(d_split, fabs(lg[i] - one[i]));
    printf("KV cache: token by token vs one pass %.3g, split vs one pass %.3g\n", d_step, d_split);
    CHECK(d_step < 1e-3 && d_split < 1e-3, "cache paths disagree: %g, %g", d_step, d_split);

    // Past the context: HN_ERR_RANGE naming both lengths; the cache keeps what it had.
    int pos = hn_kv_cache_pos(kv);
    hn_status s = hn_model_forward(m, kv, ids, 5, HN_LOGITS_LAST, &lg);
    CHECK(s == HN_ERR_RANGE, "overflow gave %s", hn_status_name(s));
    char want[64];
    snprintf(want, sizeof want, "%d", T + 4);
    CHECK(strstr(hn_errmsg(), "5 tokens") && strstr(hn_errmsg(), want), "message: %s", hn_errmsg());
    CHECK(hn_kv_cache_pos(kv) == pos, "pos moved to %d", hn_kv_cache_pos(kv));
    int32_t bad = m->hp.n_vocab;
    CHECK(hn_model_forward(m, kv, &bad, 1, HN_LOGITS_LAST, &lg) == HN_ERR_RANGE, "id out of range accepted");
    free(one);
    hn_kv_cache_destroy(kv);
}

// Writes a copy of the real model's metadata (tokenizer included) with a tiny random 1-layer llama, leaving out
// `skip_key` / `skip_tensor` and giving token_embd `emb_rows` rows. Returns the path written.
static const char *write_tiny(const hn_gguf *src, const char *path, const char *skip_key, const char *skip_tensor,
                              int emb_rows) {
    hn_gguf_writer *w = hn_gguf_writer_create();
    const char *sizes[] = {"llama.block_count", "llama.embedding_length", "llama.feed_forward_length",
                           "llama.attention.head_count", "llama.attention.head_count_kv", "llama.rope.dimension_count",
                           "llama.vocab_size"};
    for (uint64_t i = 0; i < src->n_kv; i++) {
        const hn_gguf_kv *kv = &src->kv[i];
        bool drop = false;
        for (size_t j = 0; j < sizeof sizes / sizeof sizes[0]; j++)
            drop |= kv->key.len == strlen(sizes[j]) && !memcmp(kv->key.str, sizes[j], kv->key.len);
        if (!drop) hn_gguf_writer_copy_kv(w, kv);
    }
    const uint32_t vals[] = {1, 32, 64, 2, 1, 16};
    for (size_t j = 0; j < 6; j++)
        if (!skip_key || strcmp(skip_key, sizes[j])) hn_gguf_writer_set_u32(w, sizes[j], vals[j]);
    float *data = calloc((size_t)emb_rows * 32, sizeof *data);
    hn_rng r;
    hn_rng_seed(&r, 1);
    for (size_t i = 0; i < (size_t)emb_rows * 32; i++) data[i] = hn_rng_f32(&r) - 0.5f;
    struct {
        const char *name;
        int64_t ne0, ne1;
    } t[] = {{"token_embd.weight", 32, emb_rows},   {"output_norm.weight", 32, 1},   {"blk.0.attn_norm.weight", 32, 1},
             {"blk.0.ffn_norm.weight", 32, 1},       {"blk.0.attn_q.weight", 32, 32}, {"blk.0.attn_k.weight", 32, 16},
             {"blk.0.attn_v.weight", 32, 16},        {"blk.0.attn_output.weight", 32, 32},
             {"blk.0.ffn_gate.weight", 32, 64},      {"blk.0.ffn_up.weight", 32, 64}, {"blk.0.ffn_down.weight", 64, 32}};
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        if (skip_tensor && !strcmp(skip_tensor, t[i].name)) continue;
        int64_t ne[2] = {t[i].ne0, t[i].ne1};
        hn_gguf_writer_add_tensor(w, t[i].name, HN_F32, t[i].ne1 > 1 ? 2 : 1, ne, data);
    }
    hn_status s = hn_gguf_writer_write(w, path);
    CHECK(!s, "writing %s: %s", path, hn_errmsg());
    hn_gguf_writer_destroy(w);
    free(data);
    return path;
}

static void test_load_errors(const hn_model *real) {
    const char *path = "/tmp/hone_test_model_tiny.gguf";
    int V = real->hp.n_vocab;
    hn_model *m = NULL;
    hn_status s = hn_model_load(&m, write_tiny(&real->gguf, path, NULL, NULL, V), NULL);
    CHECK(!s, "tiny model loads: %s", hn_errmsg());
    if (m) { // a random model still runs, and its logits are finite
        hn_kv_cache *kv = hn_kv_cache_create(m, 8);
        int32_t ids[3] = {1, 2, 3};
        float *lg;
        CHECK(!hn_model_forward(m, kv, ids, 3, HN_LOGITS_ALL, &lg), "%s", hn_errmsg());
        bool finite = true;
        for (int i = 0; i < 3 * V; i++) finite &= isfinite(lg[i]);
        CHECK(finite, "tiny model logits not finite");
        hn_kv_cache_destroy(kv);
        hn_model_destroy(m);
    }
    s = hn_model_load(&m, write_tiny(&real->gguf, path, "llama.block_count", NULL, V), NULL);
    CHECK(s == HN_ERR_FORMAT && strstr(hn_errmsg(), "llama.block_count") && strstr(hn_errmsg(), path),
          "missing key: %s %s", hn_status_name(s), hn_errmsg());
    s = hn_model_load(&m, write_tiny(&real->gguf, path, NULL, "blk.0.ffn_down.weight", V), NULL);
    CHECK(s == HN_ERR_FORMAT && strstr(hn_errmsg(), "blk.0.ffn_down.weight") && strstr(hn_errmsg(), path),
          "missing tensor: %s %s", hn_status_name(s), hn_errmsg());
    s = hn_model_load(&m, write_tiny(&real->gguf, path, NULL, NULL, V - 1), NULL);
    CHECK(s == HN_ERR_FORMAT && strstr(hn_errmsg(), "token_embd") && strstr(hn_errmsg(), path),
          "vocabulary vs embedding: %s %s", hn_status_name(s), hn_errmsg());
    s = hn_model_load(&m, "/nonexistent/model.gguf", NULL);
    CHECK(s != HN_OK && m == NULL, "missing file loads");
    remove(path);
}

int main(void) {
    char *path;
    if (hn_model_resolve("smollm2-135m-instruct", &path)) return test_skip(hn_errmsg());
    bool sanitized = getenv("HONE_SANITIZED") != NULL;
    ref_data ref = {0};
    CHECK(load_ref("tests/data/smollm2_logits.bin", &ref), "tests/data/smollm2_logits.bin unreadable or malformed");
    hn_model *m;
    hn_status s = hn_model_load(&m, path, NULL);
    CHECK(!s, "load %s: %s", path, hn_errmsg());
    if (!s) {
        CHECK(m->hp.n_layer == 30 && m->hp.n_embd == 576 && m->hp.n_head == 9 && m->hp.n_head_kv == 3 &&
                  m->hp.n_ff == 1536 && m->hp.n_vocab == 49152 && m->hp.head_dim == 64,
              "hyper-parameters");
        CHECK(m->output.w == m->tok_embd, "the head is tied to token_embd");
        CHECK(fabsf(m->hp.rope_theta - 100000) < 1 && fabsf(m->hp.norm_eps - 1e-5f) < 1e-9f, "theta/eps");
        if (ref.p) test_golden(m, &ref, sanitized);
        if (ref.p) test_kv_cache(m, ref.p[0].ids, sanitized ? 6 : ref.p[0].n);
        test_load_errors(m);
        hn_model_destroy(m);
    }
    free_ref(&ref);
    free(path);
    return test_done();
}
