// tensor/grad_rows.c — ops that move whole rows or columns, forward beside backward: putting n rows before every one
// of B sequences (virtual tokens, key/value prefixes) and dropping them again; taking a (permuted) column slice.
#include "tensor/grad.h"

#include <string.h>

typedef struct {
    hn_tape_rec rec;
    hn_var *p, *x, *y;
    int64_t B, T, n;
} rows_rec;

// y (B*(n+T), W) = for every sequence b: p (n, W), then x's rows b*T .. b*T+T-1.
static void prepend_backward(hn_ctx *c, hn_tape_rec *rec) {
    rows_rec *r = (rows_rec *)rec;
    if (!r->y->g) return;
    int64_t W = r->y->cols, n = r->n, T = r->T;
    float *gp = r->p && r->p->rg ? hn_var_grad(c, r->p) : NULL, *gx = r->x->rg ? hn_var_grad(c, r->x) : NULL;
    for (int64_t b = 0; b < r->B; b++) {
        const float *gy = r->y->g + b * (n + T) * W;
        if (gp)
            for (int64_t i = 0; i < n * W; i++) gp[i] += gy[i];
        if (gx)
            for (int64_t i = 0; i < T * W; i++) gx[b * T * W + i] += gy[n * W + i];
    }
}

hn_var *hn_op_prepend_rows(hn_ctx *c, hn_var *p, int64_t n, hn_var *x, int64_t B, int64_t T) {
    if (!x || c->err) return NULL;
    if (n < 1 || B < 1 || T < 1 || x->rows != B * T || (p && (p->rows != n || p->cols != x->cols)))
        return hn_op_fail(c, hn_fail(HN_ERR_ARG, "prepend_rows: %lld rows of %lld before %lld sequences of %lld "
                                     "(x %lld x %lld, p %lld x %lld)", (long long)n, (long long)x->cols,
                                     (long long)B, (long long)T, (long long)x->rows, (long long)x->cols,
                                     (long long)(p ? p->rows : n), (long long)(p ? p->cols : x->cols)));
    int64_t W = x->cols;
    hn_var *y = hn_var_new(c, B * (n + T), W);
    if (!y) return NULL;
    for (int64_t b = 0; b < B; b++) {
        float *dst = y->d + b * (n + T) * W;
        if (p) memcpy(dst, p->d, (size_t)(n * W) * sizeof(float));
        else memset(dst, 0, (size_t)(n * W) * sizeof(float));
        memcpy(dst + n * W, x->d + b * T * W, (size_t)(T * W) * sizeof(float));
    }
    y->rg = x->rg || (p && p->rg);
    if (hn_grad_on(c, y->rg)) {
        rows_rec *r = hn_tape_push(c, prepend_backward, sizeof *r);
        if (!r) return NULL;
        *r = (rows_rec){.rec = r->rec, .p = p, .x = x, .y = y, .B = B, .T = T, .n = n};
    }
    return y;
}

static void drop_backward(hn_ctx *c, hn_tape_rec *rec) {
    rows_rec *r = (rows_rec *)rec;
    if (!r->y->g || !hn_var_grad(c, r->x)) return;
    int64_t W = r->y->cols, n = r->n, T = r->T; // T: the kept rows per sequence
    for (int64_t b = 0; b < r->B; b++)
        for (int64_t i = 0; i < T * W; i++) r->x->g[(b * (n + T) + n) * W + i] += r->y->g[b * T * W + i];
}

hn_var *hn_op_drop_rows(hn_ctx *c, hn_var *x, int64_t B, int64_t T, int64_t n) {
    if (!x || c->err) return NULL;
    if (n < 0 || n >= T || B < 1 || x->rows != B * T)
        return hn_op_fail(c, hn_fail(HN_ERR_ARG, "drop_rows: the first %lld of %lld sequences of %lld rows (x has "
                                     "%lld)", (long long)n, (long long)B, (long long)T, (long long)x->rows));
    if (!n) return x;
    int64_t W = x->cols, K = T - n;
    hn_var *y = hn_var_new(c, B * K, W);
    if (!y) return NULL;
    for (int64_t b = 0; b < B; b++)
        memcpy(y->d + b * K * W, x->d + (b * T + n) * W, (size_t)(K * W) * sizeof(float));
    y->rg = x->rg;
    if (hn_grad_on(c, y->rg)) {
        rows_rec *r = hn_tape_push(c, drop_backward, sizeof *r);
        if (!r) return NULL;
        *r = (rows_rec){.rec = r->rec, .x = x, .y = y, .B = B, .T = K, .n = n};
    }
    return y;
}

// Columns: y (N, n) = x's columns col0 + perm[j] (perm NULL: col0 + j); the backward adds dy back to them.
typedef struct {
    hn_tape_rec rec;
    hn_var *x, *y;
    int64_t col0;
    const int32_t *perm;
} cols_rec;

static void cols_backward(hn_ctx *c, hn_tape_rec *rec) {
    cols_rec *r = (cols_rec *)rec;
    if (!r->y->g || !hn_var_grad(c, r->x)) return;
    int64_t n = r->y->cols, W = r->x->cols;
    for (int64_t i = 0; i < r->y->rows; i++) {
        float *gx = r->x->g + i * W + r->col0;
        const float *gy = r->y->g + i * n;
        for (int64_t j = 0; j < n; j++) gx[r->perm ? r->perm[j] : j] += gy[j];
    }
}

hn_var *hn_op_cols(hn_ctx *c, hn_var *x, int64_t col0, int64_t n, const int32_t *perm) {
    if (!x || c->err) return NULL;
    bool ok = col0 >= 0 && n >= 1 && col0 + n <= x->cols;
    for (int64_t j = 0; ok && perm && j < n; j++) ok = perm[j] >= 0 && perm[j] < n;
    if (!ok)
        return hn_op_fail(c, hn_fail(HN_ERR_ARG, "cols: %lld columns from %lld of a %lld-column var (or a permutation "
                                     "entry outside them)", (long long)n, (long long)col0, (long long)x->cols));
    hn_var *y = hn_var_new(c, x->rows, n);
    if (!y) return NULL;
    for (int64_t i = 0; i < x->rows; i++) {
        const float *src = x->d + i * x->cols + col0;
        float *dst = y->d + i * n;
        for (int64_t j = 0; j < n; j++) dst[j] = src[perm ? perm[j] : j];
    }
    y->rg = x->rg;
    if (hn_grad_on(c, y->rg)) {
        cols_rec *r = hn_tape_push(c, cols_backward, sizeof *r);
        if (!r) return NULL;
        *r = (cols_rec){.rec = r->rec, .x = x, .y = y, .col0 = col0, .perm = perm};
    }
    return y;
}
