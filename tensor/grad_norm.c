// tensor/grad_norm.c — LayerNorm and GELU, the per-row and element-wise ops of GPT-2 and BERT, each forward beside
// its backward. Loops keep 16 partial sums (as tensor/nn.c does) so that the compiler vectorises them without
// reassociating floats, and are cloned per ISA; rows are spread over OpenMP threads when there are enough of them.
#include "tensor/grad.h"
#include "tensor/kernels.h"
#include "tensor/nn.h"

#include <math.h>
#include <string.h>

#define HN_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#define LANES 16
#define PAR_MIN 65536 // elements below which a loop stays on one thread
#define CHUNK 256     // GELU works on a row this many elements at a time (a stack buffer for the exponentials)

static int nthreads(int64_t work) { return work >= PAR_MIN ? hn_threads_get() : 1; }

static inline float sum_lanes(const float *acc) {
    float s = 0;
    for (int j = 0; j < LANES; j++) s += acc[j];
    return s;
}

// ---- LayerNorm: y = (x - mean) * r * w + b, r = (var(x) + eps)^-1/2 (biased variance, as PyTorch) ----

typedef struct {
    hn_tape_rec rec;
    hn_var *x, *y;
    const float *w;
    float *gw, *gb;
    float *stat; // (N, 2) mean and r of each row, saved by the forward
} layernorm_rec;

// Two passes (mean, then the squared deviations) rather than E[x^2] - mean^2, which cancels badly when the mean
// is large against the spread (residual streams often are).
HN_CLONES static void layernorm_row(float *restrict y, const float *restrict x, const float *restrict w,
                                    const float *restrict b, int64_t C, float eps, float *stat) {
    float acc[LANES] = {0};
    int64_t i = 0;
    for (; i + LANES <= C; i += LANES)
        for (int j = 0; j < LANES; j++) acc[j] += x[i + j];
    float s = sum_lanes(acc);
    for (; i < C; i++) s += x[i];
    float mean = s / (float)C;
    memset(acc, 0, sizeof acc);
    for (i = 0; i + LANES <= C; i += LANES)
        for (int j = 0; j < LANES; j++) acc[j] += (x[i + j] - mean) * (x[i + j] - mean);
    float ss = sum_lanes(acc);
    for (; i < C; i++) ss += (x[i] - mean) * (x[i] - mean);
    float r = 1.0f / sqrtf(ss / (float)C + eps);
    // One loop per case, LANES at a time: GCC's -O2 cost model vectorises neither a loop with (w ? w[i] : 1) in it
    // nor one whose trip count is unknown, and that scalar loop cost as much as the whole GELU.
    for (i = 0; i + LANES <= C; i += LANES)
        for (int j = 0; j < LANES; j++) y[i + j] = (x[i + j] - mean) * r;
    for (; i < C; i++) y[i] = (x[i] - mean) * r;
    if (w) {
        for (i = 0; i + LANES <= C; i += LANES)
            for (int j = 0; j < LANES; j++) y[i + j] *= w[i + j];
        for (; i < C; i++) y[i] *= w[i];
    }
    if (b) {
        for (i = 0; i + LANES <= C; i += LANES)
            for (int j = 0; j < LANES; j++) y[i + j] += b[i + j];
        for (; i < C; i++) y[i] += b[i];
    }
    if (stat) stat[0] = mean, stat[1] = r;
}

// With xh = (x - mean) * r and g = dy * w: dx = r * (g - mean(g) - xh * mean(g * xh)).
HN_CLONES static void layernorm_row_dx(float *gx, const float *x, const float *dy, const float *w, int64_t C,
                                       float mean, float r) {
    float a1[LANES] = {0}, a2[LANES] = {0};
    int64_t i = 0;
    for (; i + LANES <= C; i += LANES)
        for (int j = 0; j < LANES; j++) {
            float g = dy[i + j] * (w ? w[i + j] : 1.0f), xh = (x[i + j] - mean) * r;
            a1[j] += g, a2[j] += g * xh;
        }
    float sg = sum_lanes(a1), sgx = sum_lanes(a2);
    for (; i < C; i++) {
        float g = dy[i] * (w ? w[i] : 1.0f), xh = (x[i] - mean) * r;
        sg += g, sgx += g * xh;
    }
    float mg = sg / (float)C, mgx = sgx / (float)C;
    for (i = 0; i < C; i++) {
        float g = dy[i] * (w ? w[i] : 1.0f), xh = (x[i] - mean) * r;
        gx[i] += r * (g - mg - xh * mgx);
    }
}

static void layernorm_backward(hn_ctx *c, hn_tape_rec *rec) {
    layernorm_rec *r = (layernorm_rec *)rec;
    hn_var *x = r->x, *y = r->y;
    if (!y->g) return;
    int64_t N = x->rows, C = x->cols;
    float *gx = x->rg ? hn_var_grad(c, x) : NULL;
    if (x->rg && !gx) return;
    if (gx) {
#pragma omp parallel for num_threads(nthreads(N * C))
        for (int64_t i = 0; i < N; i++)
            layernorm_row_dx(gx + i * C, x->d + i * C, y->g + i * C, r->w, C, r->stat[2 * i], r->stat[2 * i + 1]);
    }
    // w and b: sums over rows, serial over rows (they all add to the same C values), vectorised along the row
    if (r->gw || r->gb)
        for (int64_t i = 0; i < N; i++) {
            const float *xi = x->d + i * C, *gy = y->g + i * C;
            float mean = r->stat[2 * i], rs = r->stat[2 * i + 1];
            if (r->gw)
                for (int64_t j = 0; j < C; j++) r->gw[j] += gy[j] * (xi[j] - mean) * rs;
            if (r->gb)
                for (int64_t j = 0; j < C; j++) r->gb[j] += gy[j];
        }
}

hn_var *hn_op_layernorm(hn_ctx *c, hn_var *x, const float *w, const float *b, float *gw, float *gb, float eps) {
    if (!x || c->err) return NULL;
    if ((gw && !w) || (gb && !b))
        return hn_op_fail(c, hn_fail(HN_ERR_ARG, "layernorm: a trainable weight or bias needs its values"));
    int64_t N = x->rows, C = x->cols;
    hn_var *y = hn_var_new(c, N, C);
    if (!y) return NULL;
    y->rg = x->rg || gw || gb;
    float *stat = NULL;
    if (hn_grad_on(c, y->rg)) {
        layernorm_rec *r = hn_tape_push(c, layernorm_backward, sizeof *r);
        if (!r || !(stat = hn_arena_alloc(c->arena, (size_t)(N ? N : 1) * 2 * sizeof *stat)))
            return hn_op_fail(c, HN_ERR_NOMEM);
        r->x = x, r->y = y, r->w = w, r->gw = gw, r->gb = gb, r->stat = stat;
    }
#pragma omp parallel for num_threads(nthreads(N * C))
    for (int64_t i = 0; i < N; i++)
        layernorm_row(y->d + i * C, x->d + i * C, w, b, C, eps, stat ? stat + 2 * i : NULL);
    return y;
}

// ---- GELU ----
// tanh form (GPT-2's gelu_new): 0.5 x (1 + tanh(z)), z = sqrt(2/pi) (x + 0.044715 x^3), computed as x * sigmoid(2z)
// (the same function) so that the exponential goes through the vector-math set's exp (kernels.h).
// exact form (BERT): 0.5 x (1 + erf(x / sqrt 2)), by the vector-math set's erf (kernels.h: within 1e-7 of erf, as
// erff, but 8 or 16 lanes at a time; erff was a sixth of a BERT forward's time).

#define GELU_K 0.7978845608028654f // sqrt(2 / pi)
#define GELU_A 0.044715f

typedef struct {
    hn_tape_rec rec;
    hn_var *x, *y;
    bool tanh_approx;
} gelu_rec;

// s[i] = sigmoid(2 z(x[i])) for n <= CHUNK values.
HN_CLONES static void gelu_sigmoid(float *s, const float *x, int64_t n) {
    for (int64_t i = 0; i < n; i++) s[i] = -2.0f * GELU_K * (x[i] + GELU_A * x[i] * x[i] * x[i]);
    hn_vmath_active()->exp(s, s, n);
    for (int64_t i = 0; i < n; i++) s[i] = 1.0f / (1.0f + s[i]);
}

HN_CLONES static void gelu_tanh_fwd(float *y, const float *x, int64_t n) {
    float s[CHUNK];
    gelu_sigmoid(s, x, n);
    for (int64_t i = 0; i < n; i++) y[i] = x[i] * s[i];
}

// d/dx [x s] = s + x s (1 - s) 2 z', z' = sqrt(2/pi) (1 + 3 * 0.044715 x^2).
HN_CLONES static void gelu_tanh_bwd(float *gx, const float *x, const float *dy, int64_t n) {
    float s[CHUNK];
    gelu_sigmoid(s, x, n);
    for (int64_t i = 0; i < n; i++) {
        float dz = 2.0f * GELU_K * (1.0f + 3.0f * GELU_A * x[i] * x[i]);
        gx[i] += dy[i] * (s[i] + x[i] * s[i] * (1.0f - s[i]) * dz);
    }
}

static void gelu_backward(hn_ctx *c, hn_tape_rec *rec) {
    gelu_rec *r = (gelu_rec *)rec;
    if (!r->y->g || !hn_var_grad(c, r->x)) return;
    int64_t n = r->x->rows * r->x->cols, nc = (n + CHUNK - 1) / CHUNK;
    const float *x = r->x->d, *dy = r->y->g;
    float *gx = r->x->g;
    const hn_vmath_set *vm = hn_vmath_active();
#pragma omp parallel for num_threads(nthreads(n))
    for (int64_t k = 0; k < nc; k++) {
        int64_t o = k * CHUNK, m = n - o < CHUNK ? n - o : CHUNK;
        if (r->tanh_approx) gelu_tanh_bwd(gx + o, x + o, dy + o, m);
        else vm->gelu_erf_grad(gx + o, x + o, dy + o, m); // d/dx = Phi(x) + x phi(x)
    }
}

hn_var *hn_op_gelu(hn_ctx *c, hn_var *x, bool tanh_approx) {
    if (!x || c->err) return NULL;
    hn_var *y = hn_var_new(c, x->rows, x->cols);
    if (!y) return NULL;
    int64_t n = x->rows * x->cols, nc = (n + CHUNK - 1) / CHUNK;
    const hn_vmath_set *vm = hn_vmath_active();
#pragma omp parallel for num_threads(nthreads(n))
    for (int64_t k = 0; k < nc; k++) {
        int64_t o = k * CHUNK, m = n - o < CHUNK ? n - o : CHUNK;
        if (tanh_approx) gelu_tanh_fwd(y->d + o, x->d + o, m);
        else vm->gelu_erf(y->d + o, x->d + o, m);
    }
    y->rg = x->rg;
    if (hn_grad_on(c, y->rg)) {
        gelu_rec *r = hn_tape_push(c, gelu_backward, sizeof *r);
        if (!r) return NULL;
        r->x = x, r->y = y, r->tanh_approx = tanh_approx;
    }
    return y;
}
