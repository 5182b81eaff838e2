// tensor/grad_ce.c — the fused language-model head + cross-entropy, forward and backward in one pass: for a chunk
// of the rows that are in the loss, logits (rows, V) = x · W^T; per row the log-sum-exp gives the loss, and
// softmax - onehot (times scale) is the logits' gradient, multiplied back through W into dx. The chunk's logits
// are then dropped: memory is one (CHUNK, V) block whatever the batch.
#include "tensor/grad.h"
#include "tensor/nn.h"

#include <math.h>
#include <string.h>

#define CE_CHUNK 256

hn_status hn_op_cross_entropy(hn_ctx *c, hn_var *x, const hn_tensor *w, const int32_t *targets, float scale,
                              double *loss_sum, int64_t *n_loss) {
    if (!x || c->err) return c->err ? c->err : hn_fail(HN_ERR_ARG, "cross_entropy: no input");
    const int64_t N = x->rows, C = x->cols, V = w->ne[1];
    if (C != w->ne[0]) {
        hn_op_fail(c, hn_fail(HN_ERR_ARG, "cross_entropy: input has %lld columns, the head %s takes %lld",
                              (long long)C, w->name, (long long)w->ne[0]));
        return c->err;
    }
    bool grad = hn_grad_on(c, x->rg);
    float *gx = grad ? hn_var_grad(c, x) : NULL;
    hn_arena_mark mk = hn_arena_get_mark(c->arena);
    int64_t *rows = hn_arena_alloc(c->arena, (size_t)(N ? N : 1) * sizeof *rows);
    float *xc = hn_arena_alloc(c->arena, (size_t)CE_CHUNK * C * sizeof(float));
    float *lg = hn_arena_alloc(c->arena, (size_t)CE_CHUNK * V * sizeof(float)); // (chunk, V)
    float *dxc = hn_arena_alloc(c->arena, (size_t)CE_CHUNK * C * sizeof(float));
    if ((grad && !gx) || !rows || !xc || !lg || !dxc) {
        hn_op_fail(c, HN_ERR_NOMEM);
        return c->err;
    }
    int64_t n = 0;
    for (int64_t i = 0; i < N; i++) {
        if (targets[i] < 0) continue;
        if (targets[i] >= V) {
            hn_op_fail(c, hn_fail(HN_ERR_RANGE, "cross_entropy: target %d at row %lld is outside [0, %lld)",
                                  (int)targets[i], (long long)i, (long long)V));
            return c->err;
        }
        rows[n++] = i;
    }
    double total = 0;
    for (int64_t c0 = 0; c0 < n; c0 += CE_CHUNK) {
        int64_t m = n - c0 < CE_CHUNK ? n - c0 : CE_CHUNK;
        for (int64_t j = 0; j < m; j++) memcpy(xc + j * C, x->d + rows[c0 + j] * C, (size_t)C * sizeof(float));
        hn_status s = hn_matmul(lg, xc, w, m, c->mm);
        if (s) {
            hn_op_fail(c, s);
            return s;
        }
        double part[CE_CHUNK];
#pragma omp parallel for num_threads(m > 1 ? hn_threads_get() : 1)
        for (int64_t j = 0; j < m; j++) {
            float *l = lg + j * V;
            int32_t tgt = targets[rows[c0 + j]];
            float mx = -INFINITY;
            for (int64_t v = 0; v < V; v++) mx = l[v] > mx ? l[v] : mx;
            float lt = l[tgt];
            for (int64_t v = 0; v < V; v++) l[v] -= mx;
            hn_exp_inplace(l, V);
            double sum = 0;
            for (int64_t v = 0; v < V; v++) sum += l[v];
            part[j] = log(sum) + mx - lt;
            if (gx) {
                float inv = (float)(scale / sum);
                for (int64_t v = 0; v < V; v++) l[v] *= inv;
                l[tgt] -= scale;
            }
        }
        for (int64_t j = 0; j < m; j++) total += part[j];
        if (gx) {
            if ((s = hn_matmul_dx_mm(dxc, lg, w, m, false, c->mm))) {
                hn_op_fail(c, s);
                return s;
            }
            for (int64_t j = 0; j < m; j++) {
                float *g = gx + rows[c0 + j] * C;
                for (int64_t k = 0; k < C; k++) g[k] += dxc[j * C + k];
            }
        }
    }
    hn_arena_reset(c->arena, mk);
    *loss_sum += total;
    *n_loss += n;
    return HN_OK;
}
