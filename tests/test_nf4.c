// tests/test_nf4.c — NF4 against bitsandbytes' own output (tests/data/nf4_*.bin, written by
// tools/reference/nf4_ref.py): the code tables, the packed codes, the double-quantized absmax (codes, group scales,
// offset) and the dequantized weights, on random and real (SmolLM2) weights; then NF4 through every matmul path
// against an fp32 copy of its dequantized values, the registry with several tensors, and the refusals; and QLoRA
// on the tiny random Llama (tests/data/tiny_llama): hn_model_params.quantize replaces exactly the blocks' linear
// weights, the model still predicts like the fp32 one, and LoRA over it learns the golden batch.
//
// Tolerances. Codes must be equal. The offset is a mean: hone sums in double and rounds once, torch sums in float,
// so it may differ in the last bits (relative 1e-6 allowed); the dequantized values follow it within the same.
#define _GNU_SOURCE // memmem, mkdtemp
#include "adapt/lora.h"
#include "io/gguf.h"
#include "tensor/kernels.h"
#include "tensor/nf4.h"
#include "tensor/grad.h"
#include "tensor/ops.h"
#include "test.h"
#include "tiny_golden.h"
#include "train/lm_objective.h"
#include "train/optim.h"

#include <math.h>
#include <string.h>
#include <unistd.h>

static uint32_t bits(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

typedef struct {
    uint32_t K, N, nblocks, ngroups;
    float offset;
    const float *code, *dyn, *input, *absmax2, *dequant;
    const uint8_t *codes, *qabsmax;
} golden;

static bool read_golden(const hn_map *m, golden *g) {
    const uint8_t *p = m->data;
    uint32_t h[5];
    if (m->size < 28 || memcmp(p, "HNF4", 4)) return false;
    memcpy(h, p + 4, 20);
    memcpy(&g->offset, p + 24, 4);
    if (h[0] != 1) return false;
    g->K = h[1], g->N = h[2], g->nblocks = h[3], g->ngroups = h[4];
    size_t n = (size_t)g->K * g->N, need = 28 + 64 + 1024 + n * 4 + n / 2 + g->nblocks + g->ngroups * 4 + n * 4;
    if (m->size != need) return false;
    p += 28;
    g->code = (const float *)p, p += 64;
    g->dyn = (const float *)p, p += 1024;
    g->input = (const float *)p, p += n * 4;
    g->codes = p, p += n / 2;
    g->qabsmax = p, p += g->nblocks;
    g->absmax2 = (const float *)p, p += g->ngroups * 4; // 4-aligned: every part before it is a multiple of 4
    g->dequant = (const float *)p;
    return true;
}

static hn_tensor f32_tensor(const char *name, float *data, int64_t K, int64_t N) {
    hn_tensor t = {.type = HN_F32, .ndim = 2, .ne = {K, N, 1, 1}, .data = data, .nbytes = (size_t)(K * N) * 4};
    snprintf(t.name, sizeof t.name, "%s", name);
    return t;
}

static void test_golden(const char *path) {
    hn_map m;
    golden g;
    if (hn_map_open(&m, path)) {
        CHECK(0, "cannot open %s: %s", path, hn_errmsg());
        return;
    }
    if (!read_golden(&m, &g)) {
        CHECK(0, "%s: not a version-1 HNF4 file of the expected size", path);
        hn_map_close(&m);
        return;
    }
    const int64_t K = g.K, N = g.N, n = K * N;
    CHECK(!memcmp(g.code, hn_nf4_values, sizeof hn_nf4_values), "%s: NF4 values equal bitsandbytes' state.code", path);
    const float *dyn = hn_nf4_dynamic_map();
    int dyn_bad = 0;
    for (int i = 0; i < 256; i++) dyn_bad += bits(dyn[i]) != bits(g.dyn[i]);
    CHECK(dyn_bad == 0, "%s: %d of 256 dynamic-map entries differ from bitsandbytes'", path, dyn_bad);

    float *in = malloc((size_t)n * 4);
    memcpy(in, g.input, (size_t)n * 4);
    hn_tensor src = f32_tensor("golden", in, K, N), q;
    CHECK(!hn_nf4_quantize(&q, &src), "quantize: %s", hn_errmsg());
    hn_nf4_state st;
    CHECK(hn_nf4_state_of(&q, &st), "state of a fresh NF4 tensor");
    CHECK(q.type == HN_NF4 && q.ne[0] == K && q.ne[1] == N && q.nbytes == (size_t)n / 2 && q.data == st.codes,
          "shape and data of the NF4 tensor");
    CHECK(st.n == n && st.nblocks == g.nblocks && st.ngroups == g.ngroups, "%s: %lld blocks, %lld groups", path,
          (long long)st.nblocks, (long long)st.ngroups);

    int bad_codes = 0, bad_q8 = 0, bad_deq = 0, inexact = 0;
    for (int64_t i = 0; i < n / 2; i++) bad_codes += st.codes[i] != g.codes[i];
    for (uint32_t b = 0; b < g.nblocks; b++) bad_q8 += st.qabsmax[b] != g.qabsmax[b];
    CHECK(bad_codes == 0, "%s: %d of %lld code bytes differ from bitsandbytes'", path, bad_codes, (long long)n / 2);
    CHECK(bad_q8 == 0, "%s: %d of %u absmax codes differ from bitsandbytes'", path, bad_q8, g.nblocks);
    CHECK(fabsf(st.offset - g.offset) <= 1e-6f * fabsf(g.offset), "%s: offset %.9g, bitsandbytes %.9g", path,
          st.offset, g.offset);
    for (uint32_t j = 0; j < g.ngroups; j++)
        CHECK(fabsf(st.absmax2[j] - g.absmax2[j]) <= 1e-6f * fabsf(g.absmax2[j]), "%s: group %u scale %.9g vs %.9g",
              path, j, st.absmax2[j], g.absmax2[j]);

    // Dequantized through the type traits a row at a time (as the slab path does) and at the 32-element pieces
    // matmul_dx's panels ask for.
    const hn_type_traits *tt = hn_type_traits_of(HN_NF4);
    CHECK(tt && tt->to_f32 && !tt->from_f32 && tt->block == 32 && tt->block_bytes == 16, "nf4 traits");
    size_t rb = 0;
    CHECK(hn_row_bytes(HN_NF4, K, &rb) && rb == (size_t)K / 2, "row bytes %zu", rb);
    float *out = malloc((size_t)n * 4), piece[32];
    for (int64_t r = 0; r < N; r++) tt->to_f32((const uint8_t *)q.data + r * rb, out + r * K, K);
    for (int64_t i = 0; i < n; i++) {
        float am = hn_nf4_absmax(&st, i / 64);
        inexact += bits(out[i]) != bits(g.dequant[i]);
        bad_deq += !(fabsf(out[i] - g.dequant[i]) <= 1e-6f * fabsf(am) + 1e-30f);
    }
    CHECK(bad_deq == 0, "%s: %d of %lld dequantized values off bitsandbytes' by more than rounding", path, bad_deq,
          (long long)n);
    if (inexact)
        printf("%s: %d of %lld dequantized values differ in the last bits (offset)\n", path, inexact, (long long)n);
    // The scalar formula (the kernel without AVX2) gives the same bits as the active kernel.
    int bad_formula = 0;
    for (int64_t i = 0; i < n; i++) {
        int code = i & 1 ? st.codes[i / 2] & 15 : st.codes[i / 2] >> 4;
        bad_formula += bits(hn_nf4_values[code] * hn_nf4_absmax(&st, i / 64)) != bits(out[i]);
    }
    CHECK(bad_formula == 0, "%s: %d values differ from NF4[code] * absmax (%s)", path, bad_formula, hn_simd_level());
    int bad_piece = 0;
    for (int64_t r = 0; r < N; r += 7)
        for (int64_t j0 = 0; j0 < K; j0 += 32) {
            tt->to_f32((const uint8_t *)q.data + r * rb + j0 / 2, piece, 32);
            bad_piece += memcmp(piece, out + r * K + j0, sizeof piece) != 0;
        }
    CHECK(bad_piece == 0, "%s: %d 32-element pieces differ from whole rows", path, bad_piece);
    // The quantization error is NF4's: within half the widest gap between codes (0.304 of the absmax), plus what
    // the double quantization moved the absmax by.
    int big = 0;
    for (int64_t b = 0; b < (int64_t)g.nblocks; b++) {
        float am = 0, dq = hn_nf4_absmax(&st, b);
        for (int j = 0; j < 64; j++) am = fmaxf(am, fabsf(g.input[b * 64 + j]));
        for (int j = 0; j < 64; j++)
            big += fabsf(out[b * 64 + j] - g.input[b * 64 + j]) > 0.153f * am + fabsf(dq - am) + 1e-6f;
    }
    CHECK(big == 0, "%s: %d values further from the input than half a code step", path, big);

    hn_nf4_free(&q);
    CHECK(q.data == NULL && !hn_nf4_state_of(&q, &st), "freed");
    free(out);
    free(in);
    hn_map_close(&m);
}

// NF4 through hn_matmul's and hn_matmul_dx_mm's paths, against an F32 weight holding its dequantized values.
static void test_matmul(void) {
    const int64_t K = 256, N = 96;
    hn_rng rng;
    hn_rng_seed(&rng, 46);
    float *w = malloc(K * N * 4), *wd = malloc(K * N * 4);
    for (int64_t i = 0; i < K * N; i++) w[i] = (hn_rng_f32(&rng) - 0.5f) * 0.1f;
    hn_tensor src = f32_tensor("w", w, K, N), q;
    CHECK(!hn_nf4_quantize(&q, &src), "%s", hn_errmsg());
    for (int64_t r = 0; r < N; r++) hn_get_row(&q, r, wd + r * K);
    hn_tensor f = f32_tensor("wd", wd, K, N);
    const int64_t Ts[] = {1, 3, 40};
    for (size_t ti = 0; ti < sizeof Ts / sizeof Ts[0]; ti++) {
        int64_t T = Ts[ti];
        float *x = malloc(T * K * 4), *y0 = malloc(T * N * 4), *y1 = malloc(T * N * 4), *dy = malloc(T * N * 4),
              *dx0 = malloc(T * K * 4), *dx1 = malloc(T * K * 4);
        for (int64_t i = 0; i < T * K; i++) x[i] = hn_rng_f32(&rng) - 0.5f;
        for (int64_t i = 0; i < T * N; i++) dy[i] = hn_rng_f32(&rng) - 0.5f;
        // EXACT: the same fp32 weights through the same panel kernel: bit for bit.
        CHECK(!hn_matmul(y0, x, &f, T, HN_MM_EXACT) && !hn_matmul(y1, x, &q, T, HN_MM_EXACT), "%s", hn_errmsg());
        CHECK(!memcmp(y0, y1, T * N * 4), "T=%lld: EXACT matmul over NF4 equals its dequantized fp32", (long long)T);
        CHECK(!hn_matmul_dx_mm(dx0, dy, &f, T, false, HN_MM_EXACT) &&
                  !hn_matmul_dx_mm(dx1, dy, &q, T, false, HN_MM_EXACT),
              "%s", hn_errmsg());
        CHECK(!memcmp(dx0, dx1, T * K * 4), "T=%lld: EXACT dx over NF4 equals its dequantized fp32", (long long)T);
        // FAST (dot path for short inputs, slabs for long ones) and its dx: other summation orders.
        CHECK(!hn_matmul(y1, x, &q, T, HN_MM_FAST), "%s", hn_errmsg());
        CHECK(!hn_matmul_dx_mm(dx1, dy, &q, T, false, HN_MM_FAST), "%s", hn_errmsg());
        double ey = 0, ex = 0;
        for (int64_t i = 0; i < T * N; i++) ey = fmax(ey, fabs(y1[i] - y0[i]));
        for (int64_t i = 0; i < T * K; i++) ex = fmax(ex, fabs(dx1[i] - dx0[i]));
        CHECK(ey < 1e-5 && ex < 1e-5, "T=%lld: FAST over NF4 off by %g (y) and %g (dx)", (long long)T, ey, ex);
        free(x), free(y0), free(y1), free(dy), free(dx0), free(dx1);
    }
    hn_nf4_free(&q);
    free(w), free(wd);
}

// Several live tensors: each finds its own statistics, before and after another is freed.
static void test_registry(void) {
    enum { NT = 4 };
    const int64_t K = 128, N = 8;
    float *w[NT], row[128], ref[NT][128];
    hn_tensor q[NT];
    for (int t = 0; t < NT; t++) {
        w[t] = malloc(K * N * 4);
        for (int64_t i = 0; i < K * N; i++) w[t][i] = (float)((i * 37 + t * 11) % 101 - 50) * (float)(t + 1);
        hn_tensor src = f32_tensor("r", w[t], K, N);
        CHECK(!hn_nf4_quantize(&q[t], &src), "%s", hn_errmsg());
        hn_get_row(&q[t], N - 1, ref[t]);
    }
    hn_nf4_free(&q[1]);
    hn_nf4_free(&q[1]); // a second free is harmless
    for (int t = 0; t < NT; t++) {
        if (t == 1) continue;
        hn_get_row(&q[t], N - 1, row);
        CHECK(!memcmp(row, ref[t], sizeof row), "tensor %d unchanged after another was freed", t);
        float err = 0;
        for (int64_t k = 0; k < K; k++) err = fmaxf(err, fabsf(row[k] - w[t][(N - 1) * K + k]));
        CHECK(err <= 0.16f * 50 * (t + 1), "tensor %d dequantizes near its input (%g)", t, err);
    }
    // Bytes that are not an NF4 tensor's codes dequantize to NaN instead of stray reads.
    uint8_t stray[16] = {0};
    float out[32];
    hn_type_traits_of(HN_NF4)->to_f32(stray, out, 32);
    CHECK(isnan(out[0]) && isnan(out[31]), "stray bytes give NaN");
    for (int t = 0; t < NT; t++) hn_nf4_free(&q[t]), free(w[t]);
}

static void test_refusals(void) {
    float w[96 * 2] = {0};
    hn_tensor src = f32_tensor("blk.0.odd", w, 96, 2), q;
    CHECK(hn_nf4_quantize(&q, &src) == HN_ERR_UNSUPPORTED && strstr(hn_errmsg(), "blk.0.odd") &&
              strstr(hn_errmsg(), "multiple of 64"),
          "ne[0] = 96 refused: %s", hn_errmsg());
    int32_t ids[64] = {0};
    hn_tensor it = {.type = HN_I32, .ndim = 1, .ne = {64, 1, 1, 1}, .data = ids, .nbytes = sizeof ids};
    snprintf(it.name, sizeof it.name, "ids");
    CHECK(hn_nf4_quantize(&q, &it) == HN_ERR_UNSUPPORTED && strstr(hn_errmsg(), "i32"), "i32 refused: %s",
          hn_errmsg());
    // NF4 never goes into a GGUF file, and a file cannot claim it.
    float z[64] = {0};
    hn_tensor zs = f32_tensor("z", z, 64, 1);
    CHECK(!hn_nf4_quantize(&q, &zs), "%s", hn_errmsg());
    hn_gguf_writer *gw = hn_gguf_writer_create();
    CHECK(hn_gguf_writer_add_tensor(gw, "z", HN_NF4, 1, q.ne, q.data) == HN_ERR_ARG &&
              strstr(hn_errmsg(), "only in memory"),
          "GGUF writer refuses NF4: %s", hn_errmsg());
    hn_gguf_writer_destroy(gw);
    // A file whose tensor claims type 64 (NF4's in-memory number): refused like any number GGUF does not define.
    char dir[] = "/tmp/hone-test-nf4-XXXXXX", path[64];
    CHECK(mkdtemp(dir) != NULL, "temp dir");
    snprintf(path, sizeof path, "%s/t.gguf", dir);
    gw = hn_gguf_writer_create();
    int64_t ne64[1] = {64};
    CHECK(!hn_gguf_writer_add_tensor(gw, "w", HN_F32, 1, ne64, z) && !hn_gguf_writer_write(gw, path), "%s",
          hn_errmsg());
    hn_gguf_writer_destroy(gw);
    hn_map fm;
    CHECK(!hn_map_open(&fm, path), "%s", hn_errmsg());
    uint8_t *bytes = malloc(fm.size);
    memcpy(bytes, fm.data, fm.size);
    size_t size = fm.size;
    hn_map_close(&fm);
    // The tensor info: name length 1, "w", n_dims 1, ne[0] 64, then the type.
    static const uint8_t info[] = {1, 0, 0, 0, 0, 0, 0, 0, 'w', 1, 0, 0, 0, 64, 0, 0, 0, 0, 0, 0, 0};
    uint8_t *at = memmem(bytes, size, info, sizeof info);
    CHECK(at != NULL, "tensor info found");
    if (at) {
        at[sizeof info] = 64;
        FILE *fp = fopen(path, "wb");
        fwrite(bytes, 1, size, fp);
        fclose(fp);
        hn_gguf g;
        CHECK(hn_gguf_open(&g, path) == HN_ERR_FORMAT && strstr(hn_errmsg(), "got 64"), "type 64 in a file: %s",
              hn_errmsg());
    }
    free(bytes);
    remove(path);
    rmdir(dir);
    hn_nf4_state st;
    CHECK(hn_nf4_state_of(&q, &st) && st.offset == 0.0f, "all-zero tensor: offset 0");
    float out[64];
    hn_get_row(&q, 0, out);
    bool zeros = true;
    for (int i = 0; i < 64; i++) zeros &= out[i] == 0.0f;
    CHECK(zeros, "all-zero tensor dequantizes to zeros");
    hn_nf4_free(&q);
    hn_dtype t;
    CHECK(hn_dtype_parse("NF4", &t) && t == HN_NF4 && !strcmp(hn_dtype_name(HN_NF4), "nf4"), "the name nf4");
}

static void tiny_logits(hn_model *m, const int32_t *ids, int T, float *out) {
    hn_kv_cache *kv = hn_kv_cache_create(m, T);
    float *lg = NULL;
    CHECK(kv && !hn_model_forward(m, kv, ids, T, HN_LOGITS_ALL, &lg), "forward: %s", hn_errmsg());
    if (lg) memcpy(out, lg, (size_t)T * m->hp.n_vocab * sizeof(float));
    hn_kv_cache_destroy(kv);
}

static void test_tiny_qlora(void) {
    hn_model_params p = hn_model_default_params();
    p.allow_no_tokenizer = true;
    p.mm_mode = HN_MM_EXACT;
    hn_model *m0 = NULL, *m = NULL;
    CHECK(!hn_model_load(&m0, TINY_DIR, &p), "load: %s", hn_errmsg());
    p.quantize = HN_Q8_0;
    CHECK(hn_model_load(&m, TINY_DIR, &p) == HN_ERR_UNSUPPORTED && strstr(hn_errmsg(), "expected nf4"),
          "quantize q8_0 refused: %s", hn_errmsg());
    p.quantize = HN_NF4;
    CHECK(!hn_model_load(&m, TINY_DIR, &p), "load nf4: %s", hn_errmsg());
    if (!m0 || !m) {
        hn_model_destroy(m0);
        hn_model_destroy(m);
        return;
    }
    // Exactly the linear weights inside the blocks, each as hn_nf4_quantize makes it from the stored one.
    int n_nf4 = 0, bad = 0;
    for (uint64_t i = 0; i < m->gguf.n_tensors; i++) {
        const hn_tensor *t = &m->gguf.tensors[i], *t0 = hn_gguf_tensor(&m0->gguf, t->name);
        bool linear = !strncmp(t->name, "blk.", 4) && t->ne[1] > 1;
        n_nf4 += t->type == HN_NF4;
        if (!t0 || (t->type == HN_NF4) != linear || (!linear && memcmp(t->data, t0->data, t->nbytes))) bad++;
        if (t->type != HN_NF4 || !t0) continue;
        hn_tensor q;
        float *a = malloc(t->ne[0] * 4), *b = malloc(t->ne[0] * 4);
        CHECK(!hn_nf4_quantize(&q, t0), "%s", hn_errmsg());
        for (int64_t r = 0; r < t->ne[1]; r++) {
            hn_get_row(t, r, a);
            hn_get_row(&q, r, b);
            bad += memcmp(a, b, t->ne[0] * 4) != 0;
        }
        hn_nf4_free(&q);
        free(a), free(b);
    }
    CHECK(n_nf4 == 7 * m->hp.n_layer && bad == 0, "%d NF4 tensors, %d wrong", n_nf4, bad);
    CHECK(m->layers[0].q.w->type == HN_NF4 && m->layers[1].down.w->type == HN_NF4 && m->tok_embd->type == HN_F32 &&
              m->output.w->type == HN_F32 && m->out_norm->type == HN_F32,
          "the layers see NF4; embeddings, head and norms as stored");

    tg_file g;
    CHECK(tg_load(&g, TINY_DIR "/golden.bin"), "golden.bin");
    int32_t ids[64];
    uint8_t mask[64];
    hn_batch b;
    if (!tg_batch(&g, &b, ids, mask, 64)) {
        CHECK(0, "golden batch");
        tg_free(&g);
        hn_model_destroy(m0);
        hn_model_destroy(m);
        return;
    }
    // Near the same predictions: the logits' relative distance to the fp32 model's is NF4's noise (about 0.1 of
    // each weight, compounded over the random model's 14 products: 0.40 measured), nowhere near unrelated (~1.4).
    const int T = b.T, V = m->hp.n_vocab;
    float *l0 = calloc((size_t)T * V, 4), *l1 = calloc((size_t)T * V, 4);
    tiny_logits(m0, ids, T, l0);
    tiny_logits(m, ids, T, l1);
    double d2 = 0, n2 = 0;
    for (int64_t i = 0; i < (int64_t)T * V; i++)
        d2 += (double)(l1[i] - l0[i]) * (l1[i] - l0[i]), n2 += (double)l0[i] * l0[i];
    printf("tiny Llama over NF4: logits at relative distance %.3f from the fp32 model's\n", sqrt(d2 / n2));
    CHECK(n2 > 0 && sqrt(d2 / n2) < 0.6, "logits at relative distance %.3f", sqrt(d2 / n2));
    free(l0), free(l1);

    // QLoRA: LoRA on every linear layer over the NF4 weights, AdamW on the golden batch: the loss falls.
    hn_lora_config cfg = hn_lora_default_config();
    cfg.r = 8, cfg.alpha = 16, cfg.seed = 3, cfg.targets = HN_LORA_ALL_LINEAR;
    hn_lora *lo = NULL;
    hn_objective obj;
    hn_adamw opt;
    hn_lm_params lp = hn_lm_default_params();
    lp.mm = HN_MM_FAST;
    hn_adamw_params ap = hn_adamw_default_params();
    CHECK(!hn_lora_attach_new(&lo, m, &cfg) && !hn_lm_objective_init(&obj, m, hn_lora_params(lo), &lp) &&
              !hn_adamw_init(&opt, obj.params, &ap),
          "QLoRA setup: %s", hn_errmsg());
    double first = 0, last = 0;
    for (int step = 0; step < 12; step++) {
        double sum = 0;
        int64_t n = 0;
        hn_param_zero_grads(obj.params);
        CHECK(!obj.loss_grad(obj.user, &b, 1.0f / (float)b.n_loss, &sum, &n), "step %d: %s", step, hn_errmsg());
        hn_adamw_step(&opt, 1e-2);
        if (step == 0) first = sum / (double)n;
        last = sum / (double)n;
    }
    printf("QLoRA on the tiny Llama: loss %.4f -> %.4f in 12 steps\n", first, last);
    CHECK(isfinite(first) && last < 0.5 * first, "QLoRA loss %.4f -> %.4f", first, last);
    hn_adamw_deinit(&opt);
    hn_lm_objective_deinit(&obj);
    hn_lora_destroy(lo);
    tg_free(&g);
    hn_model_destroy(m0);
    hn_model_destroy(m);
}

int main(void) {
    test_golden("tests/data/nf4_random.bin");
    test_golden("tests/data/nf4_smollm2.bin");
    test_matmul();
    test_registry();
    test_refusals();
    test_tiny_qlora();
    return test_done();
}
