// tests/test_grad.c — every op's backward against central finite differences, and the pieces around them (tape,
// arena reuse, checkpointing, the dx kernel through quantized weights).
//
// Method: for an op y = f(inputs), the loss L = sum(y * R) for a fixed random R; the tape's gradients (with y's
// gradient set to R) are compared with (L(p + h) - L(p - h)) / 2h for every element p of every input, L summed in
// double. The forward is fp32, so the difference carries about 1e-7 * |L| / h of rounding: with h = 4e-3 on
// values of order 1, a tolerance of 3e-3 x max(1, max |gradient|) (max abs diff) separates a right backward from
// a wrong one (a wrong factor or a missed term is off by O(1)).
#include "tensor/grad.h"
#include "tensor/kernels.h"
#include "tensor/nn.h"
#include "tests/test.h"

#include <math.h>
#include <string.h>

#define H_FD 4e-3
#define TOL_FD 3e-3

typedef struct fd fd;
struct fd {
    const char *name;
    int n_in;
    float *in[4];   // values: var inputs (copied into a fresh var per run) or trainable arrays (used in place)
    int64_t rows[4], cols[4];
    bool is_var[4];
    float *gw[4];   // gradient arrays of trainable inputs
    hn_var *v[4];   // this run's vars
    hn_var *(*f)(hn_ctx *c, fd *t);
    void *u;        // op parameters
};

static hn_arena g_arena, g_scratch;
static hn_rng g_rng;
static hn_mm_mode g_mm = HN_MM_EXACT; // the mode fd_run gives the ops

// Runs f; with grad, sets y's gradient to R and replays the tape. Returns L = sum(y * R).
static double fd_run(fd *t, const float *R, bool grad) {
    hn_arena_reset(&g_arena, (hn_arena_mark){0});
    hn_tape tape = {0};
    hn_ctx c = {.arena = &g_arena, .scratch = NULL, .tape = grad ? &tape : NULL, .mm = g_mm, .rng = &g_rng,
                .training = true};
    c.scratch = &g_scratch;
    hn_rng_seed(&g_rng, 99);
    for (int i = 0; i < t->n_in; i++) {
        if (!t->is_var[i]) continue;
        t->v[i] = hn_var_new(&c, t->rows[i], t->cols[i]);
        memcpy(t->v[i]->d, t->in[i], (size_t)(t->rows[i] * t->cols[i]) * sizeof(float));
        t->v[i]->rg = true;
    }
    hn_var *y = t->f(&c, t);
    if (!y) {
        fprintf(stderr, "%s: op failed: %s\n", t->name, hn_errmsg());
        return NAN;
    }
    double L = 0;
    for (int64_t i = 0; i < y->rows * y->cols; i++) L += (double)y->d[i] * R[i];
    if (grad) {
        float *g = hn_var_grad(&c, y);
        memcpy(g, R, (size_t)(y->rows * y->cols) * sizeof(float));
        CHECK(hn_backward(&c) == HN_OK, "%s: backward", t->name);
    }
    return L;
}

static void fill(float *x, int64_t n, float scale, uint64_t seed) {
    hn_rng r;
    hn_rng_seed(&r, seed);
    for (int64_t i = 0; i < n; i++) x[i] = (2 * hn_rng_f32(&r) - 1) * scale;
}

// Compares the tape's gradient of every input with finite differences.
static void fd_check(fd *t, int64_t out_n) {
    float *R = malloc((size_t)out_n * sizeof *R);
    fill(R, out_n, 1.0f, 7);
    for (int i = 0; i < t->n_in; i++)
        if (t->gw[i]) memset(t->gw[i], 0, (size_t)(t->rows[i] * t->cols[i]) * sizeof(float));
    fd_run(t, R, true);
    float *ana[4] = {0};
    for (int i = 0; i < t->n_in; i++) {
        int64_t n = t->rows[i] * t->cols[i];
        ana[i] = calloc((size_t)n, sizeof(float));
        const float *src = t->is_var[i] ? t->v[i]->g : t->gw[i];
        if (src) memcpy(ana[i], src, (size_t)n * sizeof(float));
    }
    for (int i = 0; i < t->n_in; i++) {
        int64_t n = t->rows[i] * t->cols[i];
        double maxdiff = 0, maxg = 0;
        for (int64_t j = 0; j < n; j++) {
            float keep = t->in[i][j];
            t->in[i][j] = keep + (float)H_FD;
            double lp = fd_run(t, R, false);
            t->in[i][j] = keep - (float)H_FD;
            double lm = fd_run(t, R, false);
            t->in[i][j] = keep;
            double num = (lp - lm) / (2 * H_FD);
            double d = fabs(num - ana[i][j]);
            if (!(d <= maxdiff)) maxdiff = d;
            if (fabs(num) > maxg) maxg = fabs(num);
        }
        double tol = TOL_FD * (maxg > 1 ? maxg : 1);
        CHECK(maxdiff <= tol && maxg > 0, "%s: input %d: max |analytic - numeric| %.3g (tolerance %.3g, max |grad| "
              "%.3g)", t->name, i, maxdiff, tol, maxg);
        printf("  %-28s input %d (%lld values): max diff %.2e, max |grad| %.2e\n", t->name, i, (long long)n, maxdiff,
               maxg);
        free(ana[i]);
    }
    free(R);
}

// ---- op wrappers ----

static hn_tensor g_w;     // a frozen weight for linear / embedding / cross-entropy tests
static int32_t g_ids[16];

static hn_var *f_embed(hn_ctx *c, fd *t) {
    hn_tensor tab = {.type = HN_F32, .ndim = 2, .ne = {t->cols[0], t->rows[0], 1, 1}, .data = t->in[0]};
    tab.nbytes = (size_t)(t->rows[0] * t->cols[0]) * 4;
    return hn_op_embed(c, &tab, t->gw[0], g_ids, 6);
}
static hn_var *f_rmsnorm(hn_ctx *c, fd *t) { return hn_op_rmsnorm(c, t->v[0], t->in[1], t->gw[1], 1e-5f); }
static float g_cs[64 * 8];
static hn_var *f_rope(hn_ctx *c, fd *t) { return hn_op_rope(c, t->v[0], 2, 8, g_cs, 3, 2, false); }
static hn_var *f_rope_neox(hn_ctx *c, fd *t) { return hn_op_rope(c, t->v[0], 2, 8, g_cs, 3, 2, true); }
static hn_var *f_linear(hn_ctx *c, fd *t) { return hn_op_linear(c, t->v[0], &g_w, t->u); }
static hn_var *f_matmul(hn_ctx *c, fd *t) { return hn_op_matmul_f32(c, t->v[0], t->in[1], t->gw[1], t->rows[1]); }
static hn_var *f_matmul_acc(hn_ctx *c, fd *t) { // y = 2 x0, then y += -0.7 x1 W^T in place
    return hn_op_matmul_f32_acc(c, hn_op_add(c, t->v[0], t->v[0]), t->v[1], t->in[2], t->gw[2], -0.7f);
}
static hn_var *f_add(hn_ctx *c, fd *t) { return hn_op_add(c, t->v[0], t->v[1]); }
static hn_var *f_add_scaled(hn_ctx *c, fd *t) {
    hn_var *y = hn_op_add(c, t->v[0], t->v[0]); // x used twice: gradients accumulate
    return hn_op_add_bias(c, hn_op_add_scaled(c, y, t->v[1], -0.7f), t->in[2], t->gw[2]);
}
static hn_var *f_swiglu(hn_ctx *c, fd *t) { return hn_op_swiglu(c, t->v[0], t->v[1]); }
static hn_var *f_dropout(hn_ctx *c, fd *t) { return hn_op_dropout(c, t->v[0], 0.3f); }
static hn_var *f_attention(hn_ctx *c, fd *t) {
    return hn_op_attention(c, t->v[0], t->v[1], t->v[2], 2, 5, 4, 2, 8, NULL, 0);
}
// Rows longer than one query block of the kernel (64): later blocks see earlier blocks' keys.
static hn_var *f_attention_long(hn_ctx *c, fd *t) {
    return hn_op_attention(c, t->v[0], t->v[1], t->v[2], 2, 70, 2, 1, 4, NULL, 0);
}

// A small block: rmsnorm -> trainable matmul -> swiglu with itself -> residual.
static hn_var *block(hn_ctx *c, void *u, hn_var *x) {
    fd *t = u;
    hn_var *h = hn_op_rmsnorm(c, x, t->in[2], t->gw[2], 1e-5f);
    hn_var *a = hn_op_dropout(c, hn_op_matmul_f32(c, h, t->in[1], t->gw[1], 8), 0.25f);
    return hn_op_add(c, x, hn_op_swiglu(c, a, a));
}
static hn_var *f_block(hn_ctx *c, fd *t) { return block(c, t, t->v[0]); }
static hn_var *f_ckpt(hn_ctx *c, fd *t) { return hn_op_checkpoint(c, block, t, hn_op_checkpoint(c, block, t, t->v[0])); }
static hn_var *f_scope(hn_ctx *c, fd *t) { return hn_op_scope(c, block, t, hn_op_scope(c, block, t, t->v[0])); }

static void *g_allocs[256];
static int g_n_allocs;
static void *keep(void *p) {
    if (g_n_allocs < 256) g_allocs[g_n_allocs++] = p;
    return p;
}
static void free_all(void) {
    while (g_n_allocs) free(g_allocs[--g_n_allocs]);
}

static float *vec(int64_t n, float scale, uint64_t seed) {
    float *x = keep(malloc((size_t)n * sizeof *x));
    fill(x, n, scale, seed);
    return x;
}

static void quant_weight(hn_tensor *w, hn_dtype type, int64_t in, int64_t out, uint64_t seed) {
    float *f = vec(in * out, 1.0f, seed);
    size_t rb;
    hn_row_bytes(type, in, &rb);
    *w = (hn_tensor){.type = type, .ndim = 2, .ne = {in, out, 1, 1}, .nbytes = rb * out};
    w->data = malloc(w->nbytes);
    for (int64_t r = 0; r < out; r++) hn_type_traits_of(type)->from_f32(f + r * in, (uint8_t *)w->data + r * rb, in);
}

static void test_ops(void) {
    for (int i = 0; i < 16; i++) g_ids[i] = (i * 5 + 1) % 7;
    hn_rope_table(g_cs, 64, 8, 10000.0f);

    fd t;
    // embedding (trainable F32 table of 7 rows of 5); ids repeat, so rows accumulate
    t = (fd){"embed", 1, {vec(35, 1, 1)}, {7}, {5}, {false}, .f = f_embed};
    t.gw[0] = keep(calloc(35, 4));
    fd_check(&t, 6 * 5);

    t = (fd){"rmsnorm", 2, {vec(4 * 12, 2, 2), vec(12, 1, 3)}, {4, 1}, {12, 12}, {true, false}, .f = f_rmsnorm};
    t.gw[1] = keep(calloc(12, 4));
    fd_check(&t, 4 * 12);

    t = (fd){"rope (2 rows of 3, pos0 2)", 1, {vec(6 * 16, 1, 4)}, {6}, {16}, {true}, .f = f_rope};
    fd_check(&t, 6 * 16);
    t.f = f_rope_neox;
    t.name = "rope neox (2 rows of 3, pos0 2)";
    fd_check(&t, 6 * 16);

    hn_dtype types[] = {HN_F32, HN_F16, HN_Q8_0, HN_Q4_1, HN_Q4_0};
    for (size_t k = 0; k < sizeof types / sizeof types[0]; k++) {
        quant_weight(&g_w, types[k], 64, 40, 10 + k);
        char name[64];
        snprintf(name, sizeof name, "linear %s", hn_dtype_name(types[k]));
        hn_tensor bias = {.type = HN_F32, .ndim = 1, .ne = {40, 1, 1, 1}, .data = vec(40, 1, 5), .nbytes = 160};
        t = (fd){"", 1, {vec(3 * 64, 1, 6)}, {3}, {64}, {true}, .f = f_linear, .u = k == 0 ? &bias : NULL};
        t.name = name;
        fd_check(&t, 3 * 40);
        
        // dx against a dense double reference on the dequantized weight, larger T (several panels, threads), in
        // the EXACT mode (own kernel) and FAST (OpenBLAS, or its fallback)
        int64_t T = 37, K = 64, N = 40;
        float *dy = vec(T * N, 1, 20), *dx = vec(T * K, 1, 21), *deq = malloc((size_t)(K * N) * 4);
        for (int64_t n = 0; n < N; n++) hn_get_row(&g_w, n, deq + n * K);
        float *dx0 = malloc((size_t)(T * K) * 4);
        memcpy(dx0, dx, (size_t)(T * K) * 4);
        for (int fast = 0; fast < 2; fast++) {
            memcpy(dx, dx0, (size_t)(T * K) * 4);
            CHECK(hn_matmul_dx_mm(dx, dy, &g_w, T, true, fast ? HN_MM_FAST : HN_MM_EXACT) == HN_OK, "matmul_dx");
            double md = 0;
            for (int64_t i = 0; i < T; i++)
                for (int64_t j = 0; j < K; j++) {
                    double s = dx0[i * K + j];
                    for (int64_t n = 0; n < N; n++) s += (double)dy[i * N + n] * deq[n * K + j];
                    md = fmax(md, fabs(s - dx[i * K + j]));
                }
            CHECK(md < 1e-4, "matmul_dx %s %s vs dequantized reference: %g", name, fast ? "FAST" : "EXACT", md);
            printf("  matmul_dx %-18s %-5s vs dequantized-weight reference: max diff %.2e\n", hn_dtype_name(types[k]),
                   fast ? "FAST" : "EXACT", md);
        }
        free(deq), free(dx0), free(g_w.data);
    }

    t = (fd){"matmul_f32 (trainable)", 2, {vec(5 * 24, 1, 7), vec(9 * 24, 1, 8)}, {5, 9}, {24, 24}, {true, false},
             .f = f_matmul};
    t.gw[1] = keep(calloc(9 * 24, 4));
    fd_check(&t, 5 * 9);
    // The FAST mode's products (OpenBLAS): the same op, through sgemm forward and backward.
    g_mm = HN_MM_FAST;
    t = (fd){"matmul_f32 (trainable, FAST)", 2, {vec(37 * 24, 1, 7), vec(9 * 24, 1, 8)}, {37, 9}, {24, 24},
             {true, false}, .f = f_matmul};
    t.gw[1] = keep(calloc(9 * 24, 4));
    fd_check(&t, 37 * 9);
    g_mm = HN_MM_EXACT;
    for (int fast = 0; fast < 2; fast++) {
        g_mm = fast ? HN_MM_FAST : HN_MM_EXACT;
        t = (fd){fast ? "matmul_f32_acc (FAST)" : "matmul_f32_acc", 3,
                 {vec(6 * 9, 1, 25), vec(6 * 24, 1, 26), vec(9 * 24, 1, 8)}, {6, 6, 9}, {9, 24, 24},
                 {true, true, false}, .f = f_matmul_acc};
        t.gw[2] = keep(calloc(9 * 24, 4));
        fd_check(&t, 6 * 9);
    }
    g_mm = HN_MM_EXACT;

    t = (fd){"add", 2, {vec(30, 1, 9), vec(30, 1, 10)}, {3, 3}, {10, 10}, {true, true}, .f = f_add};
    fd_check(&t, 30);
    t = (fd){"add_scaled + bias", 3, {vec(30, 1, 11), vec(30, 1, 12), vec(10, 1, 13)}, {3, 3, 1}, {10, 10, 10},
             {true, true, false}, .f = f_add_scaled};
    t.gw[2] = keep(calloc(10, 4));
    fd_check(&t, 30);
    t = (fd){"swiglu", 2, {vec(40, 3, 14), vec(40, 1, 15)}, {4, 4}, {10, 10}, {true, true}, .f = f_swiglu};
    fd_check(&t, 40);
    t = (fd){"dropout 0.3", 1, {vec(40, 1, 16)}, {4}, {10}, {true}, .f = f_dropout};
    fd_check(&t, 40);
    t = (fd){"attention (B2 T5 H4 KV2)", 3, {vec(10 * 32, 1, 17), vec(10 * 16, 1, 18), vec(10 * 16, 1, 19)},
             {10, 10, 10}, {32, 16, 16}, {true, true, true}, .f = f_attention};
    fd_check(&t, 10 * 32);
    t = (fd){"attention (B2 T70 H2 KV1)", 3, {vec(140 * 8, 1, 27), vec(140 * 4, 1, 28), vec(140 * 4, 1, 29)},
             {140, 140, 140}, {8, 4, 4}, {true, true, true}, .f = f_attention_long};
    fd_check(&t, 140 * 8);

    // checkpointed blocks: the same gradients as the plain chain, and finite differences
    t = (fd){"block", 3, {vec(5 * 8, 1, 22), vec(8 * 8, 0.5f, 23), vec(8, 1, 24)}, {5, 8, 1}, {8, 8, 8},
             {true, false, false}, .f = f_block};
    t.gw[1] = keep(calloc(64, 4));
    t.gw[2] = keep(calloc(8, 4));
    fd_check(&t, 40);
    t.f = f_ckpt;
    t.name = "checkpoint(block(block))";
    fd_check(&t, 40);
    // scoped blocks: gradients made in the scratch arena and dropped when each block's backward ends
    t.f = f_scope;
    t.name = "scope(block(block))";
    fd_check(&t, 40);
    hn_arena_mark mk = hn_arena_get_mark(&g_scratch);
    CHECK(mk.cur == 0 && mk.used == 0 && hn_arena_size(&g_scratch) > 0,
          "scope: the scratch arena is used during the backward and empty after it (chunk %d, %zu bytes used)",
          mk.cur, mk.used);
}

// Attention with a cache (inference) equals the training path's rows.
static void test_attention_cache(void) {
    hn_arena a = {0};
    hn_ctx c = {.arena = &a, .mm = HN_MM_EXACT};
    int64_t T = 6, H = 4, KVH = 2, hd = 8, S = 10;
    hn_var *q = hn_var_wrap(&c, vec(T * H * hd, 1, 30), T, H * hd, false);
    hn_var *k = hn_var_wrap(&c, vec(T * KVH * hd, 1, 31), T, KVH * hd, false);
    hn_var *v = hn_var_wrap(&c, vec(T * KVH * hd, 1, 32), T, KVH * hd, false);
    hn_var *y0 = hn_op_attention(&c, q, k, v, 1, T, H, KVH, hd, NULL, 0);
    float *kc = calloc(KVH * S * hd, 4), *vc = calloc(KVH * S * hd, 4), *scr = calloc(4 * S, 4);
    hn_kv_slot slot = {kc, vc, S, scr, 4};
    // two steps: 4 tokens, then 2
    hn_var q1 = {q->d, NULL, 4, H * hd}, k1 = {k->d, NULL, 4, KVH * hd}, v1 = {v->d, NULL, 4, KVH * hd};
    hn_var q2 = {q->d + 4 * H * hd, NULL, 2, H * hd}, k2 = {k->d + 4 * KVH * hd, NULL, 2, KVH * hd},
           v2 = {v->d + 4 * KVH * hd, NULL, 2, KVH * hd};
    hn_var *ya = hn_op_attention(&c, &q1, &k1, &v1, 1, 4, H, KVH, hd, &slot, 0);
    hn_var *yb = hn_op_attention(&c, &q2, &k2, &v2, 1, 2, H, KVH, hd, &slot, 4);
    CHECK(y0 && ya && yb, "attention ran: %s", hn_errmsg());
    double md = 0;
    for (int64_t i = 0; i < 4 * H * hd; i++) md = fmax(md, fabs(ya->d[i] - y0->d[i]));
    for (int64_t i = 0; i < 2 * H * hd; i++) md = fmax(md, fabs(yb->d[i] - y0->d[4 * H * hd + i]));
    CHECK(md < 1e-5, "cached attention vs training attention: %g", md);
    free(kc), free(vc), free(scr);
    hn_arena_deinit(&a);
}

// Fused cross-entropy: loss and dx against a dense reference, with a mask, over several chunks.
static void test_cross_entropy(hn_dtype type) {
    int64_t N = 150, C = 32, V = 50;
    quant_weight(&g_w, type, C, V, 40);
    float *x = vec(N * C, 1, 41);
    int32_t *tg = malloc(N * sizeof *tg);
    int64_t n_in = 0;
    for (int64_t i = 0; i < N; i++) {
        tg[i] = i % 3 == 1 ? -1 : (int32_t)((i * 7) % V);
        n_in += tg[i] >= 0;
    }
    float scale = 1.0f / (float)n_in;
    hn_arena a = {0};
    hn_tape tape = {0};
    hn_ctx c = {.arena = &a, .tape = &tape, .mm = HN_MM_EXACT};
    hn_var *xv = hn_var_wrap(&c, x, N, C, true);
    double loss = 0;
    int64_t n = 0;
    CHECK(hn_op_cross_entropy(&c, xv, &g_w, tg, scale, &loss, &n) == HN_OK, "cross_entropy: %s", hn_errmsg());
    // reference in double on the dequantized head
    float *deq = malloc(C * V * 4);
    for (int64_t v = 0; v < V; v++) hn_get_row(&g_w, v, deq + v * C);
    double ref = 0, mg = 0;
    for (int64_t i = 0; i < N; i++) {
        double lg[64], mx = -1e30, s = 0;
        for (int64_t v = 0; v < V; v++) {
            lg[v] = 0;
            for (int64_t k = 0; k < C; k++) lg[v] += (double)x[i * C + k] * deq[v * C + k];
            mx = fmax(mx, lg[v]);
        }
        for (int64_t v = 0; v < V; v++) s += exp(lg[v] - mx);
        for (int64_t k = 0; k < C; k++) {
            double g = 0;
            if (tg[i] >= 0)
                for (int64_t v = 0; v < V; v++) g += (exp(lg[v] - mx) / s - (v == tg[i])) * scale * deq[v * C + k];
            mg = fmax(mg, fabs(g - xv->g[i * C + k]));
        }
        if (tg[i] >= 0) ref += log(s) + mx - lg[tg[i]];
    }
    CHECK(n == n_in, "loss rows %lld, expected %lld", (long long)n, (long long)n_in);
    CHECK(fabs(loss - ref) <= 1e-5 * fabs(ref), "cross-entropy %s: loss %.9g vs %.9g", hn_dtype_name(type), loss, ref);
    CHECK(mg < 1e-6, "cross-entropy %s: dx max diff %g", hn_dtype_name(type), mg);
    printf("  cross_entropy %-6s (N %lld, %lld in the loss): loss rel diff %.2e, dx max diff %.2e\n",
           hn_dtype_name(type), (long long)N, (long long)n_in, fabs(loss - ref) / ref, mg);
    free(deq), free(tg), free(g_w.data);
    hn_arena_deinit(&a);
}

// Cross-entropy by finite differences on its input (F32 head), with a mask.
static int32_t g_tg[9] = {3, -1, 0, 7, -1, 2, 9, 1, -1};
static hn_var *f_ce(hn_ctx *c, fd *t) {
    // the loss as a 1x1 output, so that the harness's R scales it
    double loss = 0;
    int64_t n = 0;
    hn_var *x = t->v[0];
    if (hn_op_cross_entropy(c, x, &g_w, g_tg, c->tape ? 0.37f : 1.0f, &loss, &n)) return NULL;
    hn_var *y = hn_var_new(c, 1, 1);
    y->d[0] = (float)(loss * 0.37);
    return y;
}

static void test_ce_fd(void) {
    quant_weight(&g_w, HN_F32, 32, 10, 50);
    fd t = {"cross_entropy (masked)", 1, {vec(9 * 32, 1, 51)}, {9}, {32}, {true}, .f = f_ce};
    // R = 1: with a tape the op already put d(0.37 * loss)/dx into x's gradient; the 1x1 output is a leaf
    float one = 1;
    hn_rng_seed(&g_rng, 1);
    fd_run(&t, &one, true);
    float *ana = malloc(9 * 32 * 4);
    memcpy(ana, t.v[0]->g, 9 * 32 * 4);
    double md = 0, mg = 0;
    for (int j = 0; j < 9 * 32; j++) {
        float keep = t.in[0][j];
        t.in[0][j] = keep + (float)H_FD;
        double lp = fd_run(&t, &one, false);
        t.in[0][j] = keep - (float)H_FD;
        double lm = fd_run(&t, &one, false);
        t.in[0][j] = keep;
        double num = (lp - lm) / (2 * H_FD);
        md = fmax(md, fabs(num - ana[j]));
        mg = fmax(mg, fabs(num));
    }
    CHECK(md <= TOL_FD * fmax(1, mg) && mg > 0, "cross_entropy fd: %g", md);
    printf("  %-28s input 0 (288 values): max diff %.2e, max |grad| %.2e\n", t.name, md, mg);
    free(ana), free(g_w.data);
}

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    hn_threads_set(2);
    test_ops();
    test_attention_cache();
    test_cross_entropy(HN_F32);
    test_cross_entropy(HN_Q8_0);
    test_cross_entropy(HN_Q4_1);
    test_ce_fd();
    hn_arena_deinit(&g_arena);
    hn_arena_deinit(&g_scratch);
    free_all();
    return test_done();
}
