// tensor/grad_ops.c — the element-wise and per-row ops, each forward beside its backward: a trainable param as a
// var, embedding lookup, RMSNorm, rotary embedding, residual add, scaled add, bias, SwiGLU, dropout.
#include "tensor/grad.h"
#include "tensor/nn.h"

#include <math.h>
#include <string.h>

#define PAR_MIN 65536 // elements below which a loop stays on one thread

static int nthreads(int64_t work) { return work >= PAR_MIN ? hn_threads_get() : 1; }

// ---- a trainable fp32 tensor as a var (a method's param that enters as an activation) ----

typedef struct {
    hn_tape_rec rec;
    hn_var *y;
    float *grad;
} param_rec;

static void param_backward(hn_ctx *c, hn_tape_rec *rec) {
    (void)c;
    param_rec *r = (param_rec *)rec;
    if (!r->y->g) return;
    for (int64_t i = 0; i < r->y->rows * r->y->cols; i++) r->grad[i] += r->y->g[i];
}

hn_var *hn_op_param(hn_ctx *c, const float *data, float *grad, int64_t rows, int64_t cols) {
    if (c->err) return NULL;
    hn_var *y = hn_var_new(c, rows, cols); // a copy: later ops may work in place on their input
    if (!y) return NULL;
    memcpy(y->d, data, (size_t)(rows * cols) * sizeof(float));
    y->rg = grad != NULL;
    if (hn_grad_on(c, y->rg)) {
        param_rec *r = hn_tape_push(c, param_backward, sizeof *r);
        if (!r) return NULL;
        r->y = y, r->grad = grad;
    }
    return y;
}

// ---- embedding ----

typedef struct {
    hn_tape_rec rec;
    hn_var *y;
    float *gtable;
    const int32_t *ids;
} embed_rec;

static void embed_backward(hn_ctx *c, hn_tape_rec *rec) {
    embed_rec *r = (embed_rec *)rec;
    if (!r->y->g) return;
    int64_t C = r->y->cols;
    for (int64_t i = 0; i < r->y->rows; i++) { // serial: two rows may share an id
        float *gt = r->gtable + (int64_t)r->ids[i] * C;
        const float *gy = r->y->g + i * C;
        for (int64_t j = 0; j < C; j++) gt[j] += gy[j];
    }
}

hn_var *hn_op_embed(hn_ctx *c, const hn_tensor *table, float *gtable, const int32_t *ids, int64_t n) {
    if (c->err) return NULL;
    int64_t C = table->ne[0], V = table->ne[1];
    for (int64_t i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= V)
            return hn_op_fail(c, hn_fail(HN_ERR_RANGE, "embedding: token id %d at %lld is outside [0, %lld)",
                                         (int)ids[i], (long long)i, (long long)V));
    if (gtable && table->type != HN_F32)
        return hn_op_fail(c, hn_fail(HN_ERR_UNSUPPORTED, "embedding %s: a trainable table must be f32, not %s",
                                     table->name, hn_dtype_name(table->type)));
    hn_var *y = hn_var_new(c, n, C);
    if (!y) return NULL;
    for (int64_t i = 0; i < n; i++) hn_get_row(table, ids[i], y->d + i * C);
    y->rg = gtable != NULL;
    if (hn_grad_on(c, y->rg)) {
        embed_rec *r = hn_tape_push(c, embed_backward, sizeof *r);
        int32_t *idc = r ? hn_arena_alloc(c->arena, (size_t)(n ? n : 1) * sizeof *idc) : NULL;
        if (!idc) return hn_op_fail(c, HN_ERR_NOMEM);
        memcpy(idc, ids, (size_t)n * sizeof *idc);
        r->y = y, r->gtable = gtable, r->ids = idc;
    }
    return y;
}

// ---- RMSNorm: y = x * s * w, s = (mean(x^2) + eps)^-1/2 ----

typedef struct {
    hn_tape_rec rec;
    hn_var *x, *y;
    const float *w;
    float *gw;
    float eps;
} rmsnorm_rec;

static float rms_scale(const float *x, int64_t C, float eps) {
    double ss = 0; // the backward's reference; the forward kernel (nn.c) sums in float lanes
    for (int64_t j = 0; j < C; j++) ss += (double)x[j] * x[j];
    return (float)(1.0 / sqrt(ss / (double)C + eps));
}

// dx = s * (dy*w) - x * s^3 / C * sum(dy * w * x); dw += dy * x * s.
static void rmsnorm_backward(hn_ctx *c, hn_tape_rec *rec) {
    rmsnorm_rec *r = (rmsnorm_rec *)rec;
    hn_var *x = r->x, *y = r->y;
    if (!y->g) return;
    int64_t N = x->rows, C = x->cols;
    const float *w = r->w;
    float *gx = x->rg ? hn_var_grad(c, x) : NULL;
    if (x->rg && !gx) return;
    if (gx) {
#pragma omp parallel for num_threads(nthreads(N * C))
        for (int64_t i = 0; i < N; i++) {
            const float *xi = x->d + i * C, *gy = y->g + i * C;
            float s = rms_scale(xi, C, r->eps);
            float dot = 0;
            for (int64_t j = 0; j < C; j++) dot += gy[j] * w[j] * xi[j];
            float k = dot * s * s * s / (float)C;
            float *gxi = gx + i * C;
            for (int64_t j = 0; j < C; j++) gxi[j] += s * gy[j] * w[j] - k * xi[j];
        }
    }
    if (r->gw)
        for (int64_t i = 0; i < N; i++) {
            const float *xi = x->d + i * C, *gy = y->g + i * C;
            float s = rms_scale(xi, C, r->eps);
            for (int64_t j = 0; j < C; j++) r->gw[j] += gy[j] * xi[j] * s;
        }
}

hn_var *hn_op_rmsnorm(hn_ctx *c, hn_var *x, const float *w, float *gw, float eps) {
    if (!x || c->err) return NULL;
    hn_var *y = hn_var_new(c, x->rows, x->cols);
    if (!y) return NULL;
    hn_rmsnorm(y->d, x->d, w, x->rows, x->cols, eps);
    y->rg = x->rg || gw;
    if (hn_grad_on(c, y->rg)) {
        rmsnorm_rec *r = hn_tape_push(c, rmsnorm_backward, sizeof *r);
        if (!r) return NULL;
        r->x = x, r->y = y, r->w = w, r->gw = gw, r->eps = eps;
    }
    return y;
}

// ---- rotary embedding (in place): the backward rotates the gradient back by the same angle ----

typedef struct {
    hn_tape_rec rec;
    hn_var *x;
    const float *cs;
    int n_head, hd, pos0;
    int64_t T;
    bool neox;
} rope_rec;

static void rope_backward(hn_ctx *c, hn_tape_rec *rec) {
    rope_rec *r = (rope_rec *)rec;
    float *g = r->x->g; // dy in, dx out: the same array, as the op is in place
    if (!g) return;
    int half = r->hd / 2, step = r->neox ? 1 : 2, off = r->neox ? half : 1; // the pairs of hn_rope
    int64_t N = r->x->rows, W = r->x->cols;
#pragma omp parallel for num_threads(nthreads(N * W))
    for (int64_t i = 0; i < N; i++) {
        const float *cs = r->cs + (r->pos0 + i % r->T) * (int64_t)r->hd;
        for (int h = 0; h < r->n_head; h++) {
            float *v = g + i * W + (int64_t)h * r->hd;
            for (int k = 0; k < half; k++) {
                float a = v[k * step], b = v[k * step + off], co = cs[2 * k], si = cs[2 * k + 1];
                v[k * step] = a * co + b * si;
                v[k * step + off] = -a * si + b * co;
            }
        }
    }
}

hn_var *hn_op_rope(hn_ctx *c, hn_var *x, int n_head, int head_dim, const float *cs, int64_t T, int pos0,
                   bool neox) {
    if (!x || c->err) return NULL;
    if (x->cols != (int64_t)n_head * head_dim || T <= 0 || x->rows % T)
        return hn_op_fail(c, hn_fail(HN_ERR_ARG, "rope: %lld x %lld input does not hold rows of %lld tokens of %d "
                                     "heads of %d", (long long)x->rows, (long long)x->cols, (long long)T, n_head,
                                     head_dim));
    for (int64_t b = 0; b < x->rows / T; b++) hn_rope(x->d + b * T * x->cols, T, n_head, head_dim, cs, pos0, neox);
    if (hn_grad_on(c, x->rg)) {
        rope_rec *r = hn_tape_push(c, rope_backward, sizeof *r);
        if (!r) return NULL;
        r->x = x, r->cs = cs, r->n_head = n_head, r->hd = head_dim, r->pos0 = pos0, r->T = T, r->neox = neox;
    }
    return x;
}

// ---- residual add, scaled add, bias ----

typedef struct {
    hn_tape_rec rec;
    hn_var *a, *b, *y;
    float s;
} add_rec;

static void acc(float *dst, const float *src, float s, int64_t n) {
#pragma omp parallel for num_threads(nthreads(n))
    for (int64_t i = 0; i < n; i++) dst[i] += s * src[i];
}

static void add_backward(hn_ctx *c, hn_tape_rec *rec) {
    add_rec *r = (add_rec *)rec;
    if (!r->y->g) return;
    int64_t n = r->y->rows * r->y->cols;
    hn_var *in[2] = {r->a, r->b};
    for (int k = 0; k < 2; k++)
        if (in[k]->rg && hn_var_grad(c, in[k])) acc(in[k]->g, r->y->g, 1.0f, n);
}

static bool same_shape(hn_ctx *c, const char *op, const hn_var *a, const hn_var *b) {
    if (a->rows == b->rows && a->cols == b->cols) return true;
    hn_op_fail(c, hn_fail(HN_ERR_ARG, "%s: shapes %lld x %lld and %lld x %lld differ", op, (long long)a->rows,
                          (long long)a->cols, (long long)b->rows, (long long)b->cols));
    return false;
}

hn_var *hn_op_add(hn_ctx *c, hn_var *a, hn_var *b) {
    if (!a || !b || c->err || !same_shape(c, "add", a, b)) return NULL;
    hn_var *y = hn_var_new(c, a->rows, a->cols);
    if (!y) return NULL;
    int64_t n = a->rows * a->cols;
#pragma omp parallel for num_threads(nthreads(n))
    for (int64_t i = 0; i < n; i++) y->d[i] = a->d[i] + b->d[i];
    y->rg = a->rg || b->rg;
    if (hn_grad_on(c, y->rg)) {
        add_rec *r = hn_tape_push(c, add_backward, sizeof *r);
        if (!r) return NULL;
        r->a = a, r->b = b, r->y = y;
    }
    return y;
}

static void add_scaled_backward(hn_ctx *c, hn_tape_rec *rec) {
    add_rec *r = (add_rec *)rec; // a unused: y is updated in place and its gradient passes through unchanged
    if (r->y->g && hn_var_grad(c, r->b)) acc(r->b->g, r->y->g, r->s, r->y->rows * r->y->cols);
}

hn_var *hn_op_add_scaled(hn_ctx *c, hn_var *y, hn_var *z, float s) {
    if (!y || !z || c->err || !same_shape(c, "add_scaled", y, z)) return NULL;
    acc(y->d, z->d, s, y->rows * y->cols);
    y->rg = y->rg || z->rg;
    if (hn_grad_on(c, z->rg)) {
        add_rec *r = hn_tape_push(c, add_scaled_backward, sizeof *r);
        if (!r) return NULL;
        r->b = z, r->y = y, r->s = s;
    }
    return y;
}

typedef struct {
    hn_tape_rec rec;
    hn_var *y;
    float *gb;
} bias_rec;

static void bias_backward(hn_ctx *c, hn_tape_rec *rec) {
    bias_rec *r = (bias_rec *)rec;
    if (!r->y->g) return;
    for (int64_t i = 0; i < r->y->rows; i++)
        for (int64_t j = 0; j < r->y->cols; j++) r->gb[j] += r->y->g[i * r->y->cols + j];
}

hn_var *hn_op_add_bias(hn_ctx *c, hn_var *y, const float *b, float *gb) {
    if (!y || c->err) return NULL;
    for (int64_t i = 0; i < y->rows; i++)
        for (int64_t j = 0; j < y->cols; j++) y->d[i * y->cols + j] += b[j];
    y->rg = y->rg || gb;
    if (hn_grad_on(c, gb != NULL)) {
        bias_rec *r = hn_tape_push(c, bias_backward, sizeof *r);
        if (!r) return NULL;
        r->y = y, r->gb = gb;
    }
    return y;
}

// ---- SwiGLU: y = g * sigmoid(g) * u ----

typedef struct {
    hn_tape_rec rec;
    hn_var *g, *u, *y;
} swiglu_rec;

static void swiglu_backward(hn_ctx *c, hn_tape_rec *rec) {
    swiglu_rec *r = (swiglu_rec *)rec;
    if (!r->y->g) return;
    float *gg = r->g->rg ? hn_var_grad(c, r->g) : NULL, *gu = r->u->rg ? hn_var_grad(c, r->u) : NULL;
    if ((r->g->rg && !gg) || (r->u->rg && !gu)) return;
    int64_t n = r->y->rows * r->y->cols;
    const float *g = r->g->d, *u = r->u->d, *dy = r->y->g;
#pragma omp parallel for num_threads(nthreads(n))
    for (int64_t i = 0; i < n; i++) {
        float sg = 1.0f / (1.0f + expf(-g[i]));
        if (gg) gg[i] += dy[i] * u[i] * sg * (1.0f + g[i] * (1.0f - sg));
        if (gu) gu[i] += dy[i] * g[i] * sg;
    }
}

hn_var *hn_op_swiglu(hn_ctx *c, hn_var *g, hn_var *u) {
    if (!g || !u || c->err || !same_shape(c, "swiglu", g, u)) return NULL;
    hn_var *y = hn_var_new(c, g->rows, g->cols);
    if (!y) return NULL;
    hn_swiglu(y->d, g->d, u->d, g->rows * g->cols);
    y->rg = g->rg || u->rg;
    if (hn_grad_on(c, y->rg)) {
        swiglu_rec *r = hn_tape_push(c, swiglu_backward, sizeof *r);
        if (!r) return NULL;
        r->g = g, r->u = u, r->y = y;
    }
    return y;
}

// ---- inverted dropout: y = x * m / (1 - p), m ~ Bernoulli(1 - p); the mask is y itself (zero where dropped) ----

typedef struct {
    hn_tape_rec rec;
    hn_var *x, *y;
    float keep_scale;
} dropout_rec;

static void dropout_backward(hn_ctx *c, hn_tape_rec *rec) {
    dropout_rec *r = (dropout_rec *)rec;
    if (!r->y->g || !hn_var_grad(c, r->x)) return;
    uint8_t *m = (uint8_t *)(r + 1);
    int64_t n = r->x->rows * r->x->cols;
    for (int64_t i = 0; i < n; i++)
        if (m[i]) r->x->g[i] += r->y->g[i] * r->keep_scale;
}

hn_var *hn_op_dropout(hn_ctx *c, hn_var *x, float p) {
    if (!x || c->err) return NULL;
    if (!c->training || p <= 0) return x;
    if (!c->rng || p >= 1) return hn_op_fail(c, hn_fail(HN_ERR_ARG, "dropout %g needs an rng and p < 1", (double)p));
    hn_var *y = hn_var_new(c, x->rows, x->cols);
    if (!y) return NULL;
    int64_t n = x->rows * x->cols;
    y->rg = x->rg;
    uint8_t *m = NULL;
    dropout_rec *r = NULL;
    if (hn_grad_on(c, x->rg)) {
        if (!(r = hn_tape_push(c, dropout_backward, sizeof *r + (size_t)n))) return NULL;
        r->x = x, r->y = y, r->keep_scale = 1.0f / (1.0f - p);
        m = (uint8_t *)(r + 1);
    }
    float ks = 1.0f / (1.0f - p);
    for (int64_t i = 0; i < n; i++) { // serial: the mask is one draw sequence, whatever the thread count
        bool keep = hn_rng_f32(c->rng) >= p;
        y->d[i] = keep ? x->d[i] * ks : 0.0f;
        if (m) m[i] = keep;
    }
    return y;
}
