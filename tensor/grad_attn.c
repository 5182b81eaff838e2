// tensor/grad_attn.c — causal grouped-query attention, forward beside backward. Training (no cache): each of the B
// rows of T tokens attends within itself; the forward keeps only the log-sum-exp of every (row, head, query), and
// the backward recomputes the probabilities from it (as FlashAttention's backward does), so no (T, T) matrix is
// kept per head. Inference (a KV cache): the step's keys and values go into the cache and tensor/nn.c's kernel
// attends over it.
#include "tensor/grad.h"
#include "tensor/nn.h"

#include <math.h>
#include <omp.h>
#include <string.h>

typedef struct {
    hn_tape_rec rec;
    hn_var *q, *k, *v, *y;
    float *lse; // (B, H, T)
    int64_t B, T;
    int H, KVH, hd;
} attn_rec;

#define HN_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#define LANES 16

// 16 independent partial sums, so that the compiler vectorises the loop without reassociating (as tensor/nn.c).
static inline float dotf(const float *a, const float *b, int n) {
    float acc[LANES] = {0};
    int i = 0;
    for (; i + LANES <= n; i += LANES)
        for (int j = 0; j < LANES; j++) acc[j] += a[i + j] * b[i + j];
    float s = 0;
    for (int j = 0; j < LANES; j++) s += acc[j];
    for (; i < n; i++) s += a[i] * b[i];
    return s;
}

// y += a * x; restrict lets the compiler vectorise it.
static inline void axpy(float *restrict y, float a, const float *restrict x, int n) {
    int i = 0; // blocks of 16: a fixed trip count that -O2's cheap vectoriser accepts
    for (; i + 16 <= n; i += 16)
        for (int j = 0; j < 16; j++) y[i + j] += a * x[i + j];
    for (; i < n; i++) y[i] += a * x[i];
}

// One query: y (hd) = softmax(q·K[0..n)^T * scale) V, K and V rows `ld` apart; returns the log-sum-exp.
HN_CLONES static float attend(float *y, const float *q, const float *k, const float *v, int64_t n, int64_t ld, int hd,
                    float scale, float *p) {
    float mx = -INFINITY;
    for (int64_t s = 0; s < n; s++) {
        p[s] = dotf(q, k + s * ld, hd) * scale;
        mx = p[s] > mx ? p[s] : mx;
    }
    for (int64_t s = 0; s < n; s++) p[s] -= mx;
    hn_exp_inplace(p, n);
    float sum = 0;
    for (int64_t s = 0; s < n; s++) sum += p[s];
    float inv = 1.0f / sum;
    memset(y, 0, (size_t)hd * sizeof *y);
    for (int64_t s = 0; s < n; s++) {
        float w = p[s] * inv;
        axpy(y, w, v + s * ld, hd);
    }
    return mx + logf(sum);
}

// The backward of one (row b, kv head kh): every query head of the group, every query t.
HN_CLONES static void attn_backward_pair(const attn_rec *r, int64_t b, int kh, float *p, float *ds, float *gq,
                                         float *gk, float *gv) {
    const int64_t T = r->T;
    const int H = r->H, KVH = r->KVH, hd = r->hd, group = H / KVH;
    const int64_t QW = (int64_t)H * hd, KW = (int64_t)KVH * hd;
    const float scale = 1.0f / sqrtf((float)hd);
    const float *q = r->q->d, *k = r->k->d, *v = r->v->d, *y = r->y->d, *dy = r->y->g;
    const float *kb = k + b * T * KW + (int64_t)kh * hd, *vb = v + b * T * KW + (int64_t)kh * hd;
    for (int h = kh * group; h < (kh + 1) * group; h++)
        for (int64_t t = 0; t < T; t++) {
            int64_t qi = (b * T + t) * QW + (int64_t)h * hd;
            const float *qt = q + qi, *dyt = dy + qi;
            float lse = r->lse[(b * H + h) * T + t];
            float D = dotf(dyt, y + qi, hd);
            for (int64_t s = 0; s <= t; s++) p[s] = dotf(qt, kb + s * KW, hd) * scale - lse;
            hn_exp_inplace(p, t + 1);
            for (int64_t s = 0; s <= t; s++) ds[s] = p[s] * (dotf(dyt, vb + s * KW, hd) - D);
            if (gq) {
                float *g = gq + qi;
                for (int64_t s = 0; s <= t; s++) axpy(g, scale * ds[s], kb + s * KW, hd);
            }
            for (int64_t s = 0; s <= t; s++) {
                int64_t ki = (b * T + s) * KW + (int64_t)kh * hd;
                if (gk) axpy(gk + ki, scale * ds[s], qt, hd);
                if (gv) axpy(gv + ki, p[s], dyt, hd);
            }
        }
}

// Per (row b, kv head): for each query head of the group and each query t, with P recomputed from the lse:
//   dP_s = dy_t · v_s,  D = dy_t · y_t,  dS_s = P_s (dP_s - D)
//   dq_t += scale * sum_s dS_s k_s,  dk_s += scale * dS_s q_t,  dv_s += P_s dy_t
// A (b, kv head) pair owns its keys' and values' gradients, so pairs run in parallel without conflicts.
static void attn_backward(hn_ctx *c, hn_tape_rec *rec) {
    attn_rec *r = (attn_rec *)rec;
    if (!r->y->g) return;
    const int64_t B = r->B, T = r->T;
    const int KVH = r->KVH;
    float *gq = r->q->rg ? hn_var_grad(c, r->q) : NULL, *gk = r->k->rg ? hn_var_grad(c, r->k) : NULL;
    float *gv = r->v->rg ? hn_var_grad(c, r->v) : NULL;
    if (c->err) return;
    int nt = hn_threads_get();
    float *scratch = hn_arena_alloc(c->arena, (size_t)nt * 2 * T * sizeof(float));
    if (!scratch) {
        hn_op_fail(c, HN_ERR_NOMEM);
        return;
    }
#pragma omp parallel for num_threads(nt) schedule(dynamic, 1)
    for (int64_t pair = 0; pair < B * KVH; pair++) {
        int64_t b = pair / KVH;
        int kh = (int)(pair % KVH);
        float *p = scratch + (int64_t)omp_get_thread_num() * 2 * T, *ds = p + T;
        attn_backward_pair(r, b, kh, p, ds, gq, gk, gv);
    }
}

hn_var *hn_op_attention(hn_ctx *c, hn_var *q, hn_var *k, hn_var *v, int64_t B, int64_t T, int n_head,
                        int n_head_kv, int head_dim, const hn_kv_slot *cache, int pos0) {
    if (!q || !k || !v || c->err) return NULL;
    const int64_t QW = (int64_t)n_head * head_dim, KW = (int64_t)n_head_kv * head_dim, N = B * T;
    if (n_head % n_head_kv || q->rows != N || k->rows != N || v->rows != N || q->cols != QW || k->cols != KW ||
        v->cols != KW || (cache && B != 1))
        return hn_op_fail(c, hn_fail(HN_ERR_ARG, "attention: shapes q %lld x %lld, k %lld x %lld, v %lld x %lld do "
                                     "not fit %lld rows of %lld tokens, %d heads, %d kv heads of %d%s",
                                     (long long)q->rows, (long long)q->cols, (long long)k->rows, (long long)k->cols,
                                     (long long)v->rows, (long long)v->cols, (long long)B, (long long)T, n_head,
                                     n_head_kv, head_dim, cache ? " (one row with a cache)" : ""));
    hn_var *y = hn_var_new(c, N, QW);
    if (!y) return NULL;
    y->rg = q->rg || k->rg || v->rg;
    if (cache) {
        if (hn_grad_on(c, y->rg))
            return hn_op_fail(c, hn_fail(HN_ERR_UNSUPPORTED, "attention over a KV cache has no backward"));
        for (int64_t t = 0; t < T; t++)
            for (int h = 0; h < n_head_kv; h++) {
                size_t at = ((size_t)h * cache->stride + pos0 + t) * head_dim;
                memcpy(cache->k + at, k->d + t * KW + h * head_dim, head_dim * sizeof(float));
                memcpy(cache->v + at, v->d + t * KW + h * head_dim, head_dim * sizeof(float));
            }
        hn_attention(y->d, q->d, cache->k, cache->v, T, pos0, n_head, n_head_kv, head_dim, cache->stride,
                     cache->scratch, cache->n_scratch);
        return y;
    }
    bool grad = hn_grad_on(c, y->rg);
    attn_rec *r = grad ? hn_tape_push(c, attn_backward, sizeof *r) : NULL;
    float *lse = grad && r ? hn_arena_alloc(c->arena, (size_t)(B * n_head * T) * sizeof(float)) : NULL;
    int nt = hn_threads_get();
    float *scratch = hn_arena_alloc(c->arena, (size_t)nt * T * sizeof(float));
    if ((grad && !lse) || !scratch) return hn_op_fail(c, HN_ERR_NOMEM);
    const int group = n_head / n_head_kv;
    const float scale = 1.0f / sqrtf((float)head_dim);
    // Rows (b, h, t): later queries attend further, so they are handed out dynamically.
#pragma omp parallel for num_threads(nt) schedule(dynamic, 4)
    for (int64_t i = 0; i < N * n_head; i++) {
        int64_t bt = i / n_head, b = bt / T, t = bt % T;
        int h = (int)(i % n_head), kh = h / group;
        float *p = scratch + (int64_t)omp_get_thread_num() * T;
        float l = attend(y->d + bt * QW + (int64_t)h * head_dim, q->d + bt * QW + (int64_t)h * head_dim,
                         k->d + b * T * KW + (int64_t)kh * head_dim, v->d + b * T * KW + (int64_t)kh * head_dim,
                         t + 1, KW, head_dim, scale, p);
        if (lse) lse[(b * n_head + h) * T + t] = l;
    }
    if (r) r->q = q, r->k = k, r->v = v, r->y = y, r->lse = lse, r->B = B, r->T = T, r->H = n_head,
           r->KVH = n_head_kv, r->hd = head_dim;
    return y;
}
