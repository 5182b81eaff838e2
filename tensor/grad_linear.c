// tensor/grad_linear.c — linear layers, forward beside backward: through a frozen weight of any dtype (the input
// gradient dx = dy · W, with W dequantized 32 columns at a time: exactly one quant block of every row), and
// through a trainable fp32 weight (the adapters' A and B).
//
// HN_MM_EXACT runs hone's own fp32 panel kernel, every sum in order whatever the thread count (the golden tests).
// The FAST modes run the products through OpenBLAS (tensor/blas.h): ~2-4x faster on AVX-512, bitwise repeatable
// for a given thread count, but not across counts.
#include "tensor/blas.h"
#include "tensor/grad.h"
#include "tensor/kernels.h"

#include <stdlib.h>
#include <string.h>
#include <omp.h>

#define DX_MAX_THREADS 256
#define DX_MAX_BLOCK 256 // the widest block a panel can be cut from (K-quants)

typedef struct {
    float *pack; // (N, HN_PANEL): column block j0 of every weight row
    size_t pack_cap;
    float *tmp;  // (T, HN_PANEL) the block's dx before it is added
    size_t tmp_cap;
} dx_scratch;

static _Thread_local dx_scratch g_dx[DX_MAX_THREADS];

static bool grow(float **p, size_t *cap, size_t n) {
    if (n <= *cap) return true;
    free(*p);
    *cap = 0;
    *p = hn_alloc_aligned(n * sizeof(float), "matmul_dx scratch");
    if (!*p) return false;
    *cap = n;
    return true;
}

// FAST dx: dx (T, K) (+)= dy (T, N) · W, W taken a slab of rows (output features) at a time as fp32
// (tensor/kernels.h), each slab one sgemm over the team that adds dy[:, slab] · slab into dx.
static hn_status matmul_dx_fast(float *dx, const float *dy, const hn_tensor *w, int64_t T, bool accumulate) {
    const int64_t K = w->ne[0], N = w->ne[1], step = hn_slab_rows(w);
    for (int64_t n0 = 0; n0 < N; n0 += step) {
        int64_t nr = N - n0 < step ? N - n0 : step;
        const float *slab = hn_slab_f32(w, n0, nr);
        if (!slab) return HN_ERR_NOMEM;
        hn_sgemm(false, false, T, K, nr, 1.0f, dy + n0, N, slab, K, accumulate || n0 ? 1.0f : 0.0f, dx, K);
    }
    return HN_OK;
}

hn_status hn_matmul_dx(float *dx, const float *dy, const hn_tensor *w, int64_t T, bool accumulate) {
    return hn_matmul_dx_mm(dx, dy, w, T, accumulate, HN_MM_EXACT);
}

hn_status hn_matmul_dx_mm(float *dx, const float *dy, const hn_tensor *w, int64_t T, bool accumulate,
                          hn_mm_mode mode) {
    const hn_type_traits *tt = hn_type_traits_of(w->type);
    size_t row_bytes;
    // A panel of columns is whole blocks (block <= HN_PANEL) or a whole part of one (K-quants' 256).
    if (!tt || !tt->to_f32 || !hn_row_bytes(w->type, w->ne[0], &row_bytes) ||
        (HN_PANEL % tt->block && tt->block % HN_PANEL) || tt->block > DX_MAX_BLOCK)
        return hn_fail(HN_ERR_UNSUPPORTED, "matmul_dx: weight %s of dtype %s", w->name, hn_dtype_name(w->type));
    const int64_t K = w->ne[0], N = w->ne[1], npanels = (K + HN_PANEL - 1) / HN_PANEL;
    if (T <= 0) return HN_OK;
    if (mode != HN_MM_EXACT) return matmul_dx_fast(dx, dy, w, T, accumulate);
    const hn_gemm_panel_fn gemm = hn_gemm_panel_fn_active();
    const uint8_t *wd = w->data;
    dx_scratch *scr = g_dx; // the calling thread's array, indexed by team member
    int nth = hn_threads_get() < npanels ? hn_threads_get() : (int)npanels;
    if (nth > DX_MAX_THREADS) nth = DX_MAX_THREADS;
    bool failed = false;
#pragma omp parallel num_threads(nth)
    {
        int ith = omp_get_thread_num(), nt = omp_get_num_threads();
        dx_scratch *s = &scr[ith];
        if (!grow(&s->pack, &s->pack_cap, (size_t)N * HN_PANEL) ||
            !grow(&s->tmp, &s->tmp_cap, (size_t)T * HN_PANEL)) {
#pragma omp atomic write
            failed = true;
        } else {
            for (int64_t p = ith; p < npanels; p += nt) {
                int64_t j0 = p * HN_PANEL;
                int nr = K - j0 < HN_PANEL ? (int)(K - j0) : HN_PANEL;
                // pack[n][r] = W[n][j0 + r]: the row's block(s) covering these columns, dequantized in place; a
                // block wider than the panel is dequantized whole and the panel's columns copied out (in EXACT
                // mode only: the FAST path dequantizes whole rows).
                size_t off = (size_t)(j0 / tt->block) * tt->block_bytes;
                float wide[DX_MAX_BLOCK];
                for (int64_t n = 0; n < N; n++) {
                    float *pk = s->pack + n * HN_PANEL;
                    if (tt->block > HN_PANEL) {
                        tt->to_f32(wd + (size_t)n * row_bytes + off, wide, tt->block);
                        memcpy(pk, wide + j0 % tt->block, (size_t)nr * sizeof(float));
                    } else {
                        tt->to_f32(wd + (size_t)n * row_bytes + off, pk, nr);
                    }
                    for (int r = nr; r < HN_PANEL; r++) pk[r] = 0.0f;
                }
                if (!accumulate) {
                    gemm(T, N, dy, s->pack, dx + j0, K, nr);
                } else {
                    gemm(T, N, dy, s->pack, s->tmp, HN_PANEL, nr);
                    for (int64_t t = 0; t < T; t++)
                        for (int r = 0; r < nr; r++) dx[t * K + j0 + r] += s->tmp[t * HN_PANEL + r];
                }
            }
        }
    }
    return failed ? hn_fail(HN_ERR_NOMEM, "matmul_dx: out of memory for scratch") : HN_OK;
}

// ---- linear through a frozen weight ----

typedef struct {
    hn_tape_rec rec;
    hn_var *x, *y;
    const hn_tensor *w;
} linear_rec;

static void linear_backward(hn_ctx *c, hn_tape_rec *rec) {
    linear_rec *r = (linear_rec *)rec;
    if (!r->y->g || !hn_var_grad(c, r->x)) return;
    hn_status s = hn_matmul_dx_mm(r->x->g, r->y->g, r->w, r->x->rows, true, c->mm);
    if (s) hn_op_fail(c, s);
}

hn_var *hn_op_linear(hn_ctx *c, hn_var *x, const hn_tensor *w, const hn_tensor *b) {
    if (!x || c->err) return NULL;
    if (x->cols != w->ne[0])
        return hn_op_fail(c, hn_fail(HN_ERR_ARG, "linear %s: input has %lld columns, the weight takes %lld", w->name,
                                     (long long)x->cols, (long long)w->ne[0]));
    if (w->grad || (b && b->grad)) { // a trainable weight or bias (tensor.h): the fp32 ops that record their backward
        if (w->grad && w->type != HN_F32)
            return hn_op_fail(c, hn_fail(HN_ERR_UNSUPPORTED, "linear %s: a trainable weight must be f32, not %s",
                                         w->name, hn_dtype_name(w->type)));
        hn_var *y = w->grad ? hn_op_matmul_f32(c, x, w->data, w->grad, w->ne[1]) : hn_op_linear(c, x, w, NULL);
        return b ? hn_op_add_bias(c, y, b->data, b->grad) : y;
    }
    hn_var *y = hn_var_new(c, x->rows, w->ne[1]);
    if (!y) return NULL;
    hn_status s = hn_matmul(y->d, x->d, w, x->rows, c->mm);
    if (s) return hn_op_fail(c, s);
    if (b) {
        const float *bd = b->data;
        for (int64_t i = 0; i < y->rows; i++)
            for (int64_t j = 0; j < y->cols; j++) y->d[i * y->cols + j] += bd[j];
    }
    y->rg = x->rg;
    if (hn_grad_on(c, x->rg)) {
        linear_rec *r = hn_tape_push(c, linear_backward, sizeof *r);
        if (!r) return NULL;
        r->x = x, r->y = y, r->w = w;
    }
    return y;
}

// ---- linear through an fp32 weight that may be trainable ----

#define HN_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))

HN_CLONES static void axpy(float *restrict y, float a, const float *restrict x, int64_t n) {
    int64_t i = 0; // blocks of 16: a fixed trip count that -O2's cheap vectoriser accepts
    for (; i + 16 <= n; i += 16)
        for (int j = 0; j < 16; j++) y[i + j] += a * x[i + j];
    for (; i < n; i++) y[i] += a * x[i];
}

typedef struct {
    hn_tape_rec rec;
    hn_var *x, *y;
    const float *w;
    float *gw;
    float s; // y (+)= s · x · W^T
    hn_mm_mode mm;
} matmul_rec;

static hn_tensor f32_view(const float *w, int64_t in, int64_t out) {
    hn_tensor t = {.type = HN_F32, .ndim = 2, .ne = {in, out, 1, 1}, .data = (void *)w};
    t.nbytes = (size_t)(in * out) * sizeof(float);
    return t;
}

static void matmul_backward(hn_ctx *c, hn_tape_rec *rec) {
    matmul_rec *r = (matmul_rec *)rec;
    const hn_var *y = r->y;
    if (!y->g) return;
    const int64_t N = r->x->rows, in = r->x->cols, out = y->cols;
    const float *dy = y->g;
    if (r->s != 1.0f) { // the products below take s · dy (a temporary of the backward)
        float *sdy = hn_arena_alloc(c->arena, (size_t)(N * out) * sizeof(float));
        if (!sdy) {
            hn_op_fail(c, HN_ERR_NOMEM);
            return;
        }
        for (int64_t i = 0; i < N * out; i++) sdy[i] = r->s * y->g[i];
        dy = sdy;
    }
    if (r->x->rg) {
        hn_tensor wt = f32_view(r->w, in, out);
        if (!hn_var_grad(c, r->x)) return;
        hn_status s = hn_matmul_dx_mm(r->x->g, dy, &wt, N, true, r->mm);
        if (s) {
            hn_op_fail(c, s);
            return;
        }
    }
    if (r->gw && r->mm != HN_MM_EXACT) {
        hn_sgemm(true, false, out, in, N, 1.0f, dy, out, r->x->d, in, 1.0f, r->gw, in); // (out, in) += dy^T · x
    } else if (r->gw) {
        // gw (out, in) += dy^T · x, each thread owning a range of output rows and walking the tokens in order, so
        // that the sum is the same for any thread count.
        const float *x = r->x->d;
        float *gw = r->gw;
        int nt = out * in * N >= 65536 ? hn_threads_get() : 1;
#pragma omp parallel num_threads(nt)
        {
            int ith = omp_get_thread_num(), n = omp_get_num_threads();
            int64_t per = (out + n - 1) / n, o0 = ith * per, o1 = o0 + per < out ? o0 + per : out;
            for (int64_t t = 0; t < N; t++) {
                const float *xt = x + t * in;
                for (int64_t o = o0; o < o1; o++) {
                    float a = dy[t * out + o];
                    if (a == 0.0f) continue;
                    axpy(gw + o * in, a, xt, in);
                }
            }
        }
    }
}

// y (+)= s · x · W^T: into a fresh y (acc false, s 1) or added to an existing one.
static hn_var *matmul_f32(hn_ctx *c, hn_var *y, hn_var *x, const float *w, float *gw, int64_t out, float s,
                          bool acc) {
    hn_tensor wt = f32_view(w, x->cols, out);
    if (c->mm != HN_MM_EXACT) {
        hn_sgemm(false, true, x->rows, out, x->cols, s, x->d, x->cols, w, x->cols, acc ? 1.0f : 0.0f, y->d, out);
    } else if (!acc) {
        hn_status st = hn_matmul(y->d, x->d, &wt, x->rows, HN_MM_EXACT);
        if (st) return hn_op_fail(c, st);
    } else { // the product in a temporary, then added in order
        hn_arena_mark mk = hn_arena_get_mark(c->arena);
        float *z = hn_arena_alloc(c->arena, (size_t)(x->rows * out) * sizeof(float));
        if (!z) return hn_op_fail(c, HN_ERR_NOMEM);
        hn_status st = hn_matmul(z, x->d, &wt, x->rows, HN_MM_EXACT);
        if (st) return hn_op_fail(c, st);
        for (int64_t i = 0; i < x->rows * out; i++) y->d[i] += s * z[i];
        hn_arena_reset(c->arena, mk);
    }
    y->rg = y->rg || x->rg || gw;
    if (hn_grad_on(c, x->rg || gw)) {
        matmul_rec *r = hn_tape_push(c, matmul_backward, sizeof *r);
        if (!r) return NULL;
        r->x = x, r->y = y, r->w = w, r->gw = gw, r->s = s, r->mm = c->mm;
    }
    return y;
}

hn_var *hn_op_matmul_f32(hn_ctx *c, hn_var *x, const float *w, float *gw, int64_t out) {
    if (!x || c->err) return NULL;
    hn_var *y = hn_var_new(c, x->rows, out);
    return y ? matmul_f32(c, y, x, w, gw, out, 1.0f, false) : NULL;
}

hn_var *hn_op_matmul_f32_acc(hn_ctx *c, hn_var *y, hn_var *x, const float *w, float *gw, float s) {
    if (!y || !x || c->err) return NULL;
    if (x->rows != y->rows)
        return hn_op_fail(c, hn_fail(HN_ERR_ARG, "matmul_f32_acc: %lld input rows for %lld output rows",
                                     (long long)x->rows, (long long)y->rows));
    return matmul_f32(c, y, x, w, gw, y->cols, s, true);
}
