// tensor/grad_pool.c — sequence pooling over valid tokens with backward (see grad_pool.h).
#include "tensor/grad_pool.h"

#include <string.h>

typedef struct {
    hn_tape_rec rec;
    hn_var *h, *y;
    int64_t B, T;
    const int32_t *lens; // copied into the arena: the caller's array may not outlive the step
    hn_grad_pool mode;
} pool_rec;

static void pool_backward(hn_ctx *c, hn_tape_rec *rec) {
    pool_rec *r = (pool_rec *)rec;
    if (!r->y->g) return;
    float *gh = hn_var_grad(c, r->h);
    if (!gh) return;
    const int64_t C = r->h->cols;
    for (int64_t b = 0; b < r->B; b++) {
        const float *dy = r->y->g + b * C;
        int64_t len = r->lens[b];
        if (r->mode == HN_GPOOL_MEAN) {
            float inv = 1.0f / (float)len;
            for (int64_t t = 0; t < len; t++) {
                float *g = gh + (b * r->T + t) * C;
                for (int64_t j = 0; j < C; j++) g[j] += dy[j] * inv;
            }
        } else {
            float *g = gh + (b * r->T + (r->mode == HN_GPOOL_FIRST ? 0 : len - 1)) * C;
            for (int64_t j = 0; j < C; j++) g[j] += dy[j];
        }
    }
}

hn_var *hn_op_pool(hn_ctx *c, hn_var *h, int64_t B, int64_t T, const int32_t *lens, hn_grad_pool mode) {
    if (!h || c->err) return NULL;
    if (B <= 0 || T <= 0 || h->rows != B * T)
        return hn_op_fail(c, hn_fail(HN_ERR_ARG, "pool: %lld rows for %lld sequences of %lld tokens",
                                     (long long)h->rows, (long long)B, (long long)T));
    if (mode != HN_GPOOL_MEAN && mode != HN_GPOOL_FIRST && mode != HN_GPOOL_LAST)
        return hn_op_fail(c, hn_fail(HN_ERR_ARG, "pool: mode %d, expected mean, first or last", (int)mode));
    for (int64_t b = 0; b < B; b++)
        if (lens[b] < 1 || lens[b] > T)
            return hn_op_fail(c, hn_fail(HN_ERR_ARG, "pool: row %lld has %d valid tokens, expected 1..%lld",
                                         (long long)b, (int)lens[b], (long long)T));
    const int64_t C = h->cols;
    hn_var *y = hn_var_new(c, B, C);
    if (!y) return NULL;
    for (int64_t b = 0; b < B; b++) {
        float *out = y->d + b * C;
        const float *hb = h->d + b * T * C;
        if (mode == HN_GPOOL_MEAN) { // summed in double: a long row's mean stays exact to fp32
            for (int64_t j = 0; j < C; j++) {
                double s = 0;
                for (int64_t t = 0; t < lens[b]; t++) s += hb[t * C + j];
                out[j] = (float)(s / lens[b]);
            }
        } else {
            memcpy(out, hb + (mode == HN_GPOOL_FIRST ? 0 : (int64_t)(lens[b] - 1)) * C, (size_t)C * sizeof *out);
        }
    }
    y->rg = h->rg;
    if (hn_grad_on(c, h->rg)) {
        pool_rec *r = hn_tape_push(c, pool_backward, sizeof *r);
        int32_t *l = r ? hn_arena_alloc(c->arena, (size_t)B * sizeof *l) : NULL;
        if (!l) return hn_op_fail(c, HN_ERR_NOMEM);
        memcpy(l, lens, (size_t)B * sizeof *l);
        r->h = h, r->y = y, r->B = B, r->T = T, r->lens = l, r->mode = mode;
    }
    return y;
}
