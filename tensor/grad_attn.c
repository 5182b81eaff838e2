// tensor/grad_attn.c — grouped-query attention, forward beside backward. Training (no cache): each of the B
// rows of T tokens attends within itself, causally (decoders) or to every key (encoders), and a row may have
// fewer valid tokens than T (a padded batch): its keys from lens[b] on are masked for every query. Queries are taken a block of ATT_BQ at a time, so that every product is
// a GEMM (tensor/blas.h) over one (row, head, query block): S = Q K^T, P = softmax(S), Y = P V. The forward keeps
// only the log-sum-exp of every (row, head, query), and the backward recomputes P from it (as FlashAttention's
// backward does), so no (T, T) matrix outlives a block. Each block runs on one thread, so results do not depend
// on the thread count. Inference (a KV cache): the step's keys and values go into the cache and tensor/nn.c's
// kernel attends over it.
#include "tensor/blas.h"
#include "tensor/grad.h"
#include "tensor/kernels.h"
#include "tensor/nn.h"

#include <math.h>
#include <omp.h>
#include <string.h>

#define ATT_BQ 64 // queries per block

typedef struct {
    hn_tape_rec rec;
    hn_var *q, *k, *v, *y;
    float *lse;     // (B, H, T)
    int32_t *lens;  // (B) valid keys per row, in the arena (the caller's array need not outlive the step)
    int64_t B, T;
    int H, KVH, hd;
    bool causal;
} attn_rec;

#define HN_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))

// Where one (row b, head h) starts in q / y (row stride QW) and in k / v (row stride KW).
typedef struct {
    int64_t T, QW, KW;
    int H, KVH, hd;
    float scale;
} attn_shape;

static attn_shape shape_of(int64_t T, int H, int KVH, int hd) {
    return (attn_shape){T, (int64_t)H * hd, (int64_t)KVH * hd, H, KVH, hd, 1.0f / sqrtf((float)hd)};
}
static inline int64_t q_at(const attn_shape *s, int64_t b, int64_t t, int h) { return (b * s->T + t) * s->QW + h * s->hd; }
static inline int64_t k_at(const attn_shape *s, int64_t b, int h) { return b * s->T * s->KW + (int64_t)(h / (s->H / s->KVH)) * s->hd; }

// The keys a query block t0..t0+m-1 of row b multiplies: the valid ones (L = lens[b]), and causally none past the
// block's last query. At least one, as lens >= 1.
static inline int64_t block_keys(int64_t t0, int64_t m, int64_t L, bool causal) {
    return causal && t0 + m < L ? t0 + m : L;
}

// P (m, n) = exp(S - lse) for the queries t0..t0+m-1 of a block whose keys are 0..n-1 (n from block_keys): row i
// keeps keys 0..t0+i when causal, all n otherwise, and zeroes the rest. With lse NULL the row's own log-sum-exp is
// computed, P normalised, and the lse returned in out_lse. The exponentials go through the vector-math set
// (kernels.h): with head_dim 32 to 128 they cost as much as the two products around them.
static void block_softmax(const hn_vmath_set *vm, float *P, int64_t m, int64_t n, int64_t t0, bool causal,
                          const float *lse, float *out_lse) {
    for (int64_t i = 0; i < m; i++) {
        float *p = P + i * n;
        int64_t len = causal && t0 + i + 1 < n ? t0 + i + 1 : n;
        if (lse) {
            vm->exp_sub(p, len, lse[i]);
        } else {
            float l = vm->softmax(p, len);
            if (out_lse) out_lse[i] = l;
        }
        memset(p + len, 0, (size_t)(n - len) * sizeof *p);
    }
}

// dS (m, n) = P ∘ (dP - D), D_i = dy_i · y_i, in place over dP.
HN_CLONES static void block_ds(float *dP, const float *P, int64_t m, int64_t n, const float *dy, const float *y,
                               int64_t ld, int hd) {
    for (int64_t i = 0; i < m; i++) {
        float D = 0;
        for (int j = 0; j < hd; j++) D += dy[i * ld + j] * y[i * ld + j];
        float *d = dP + i * n;
        const float *p = P + i * n;
        for (int64_t s = 0; s < n; s++) d[s] = p[s] * (d[s] - D);
    }
}

// The backward of one (row b, kv head kh): every query head of the group, every query block, with P recomputed:
//   dP = dY V^T,  dS = P ∘ (dP - D),  dQ += scale dS K,  dK += scale dS^T Q,  dV += P^T dY
// A (b, kv head) pair owns its keys' and values' gradients, so pairs run in parallel without conflicts.
static void attn_backward_pair(const attn_rec *r, int64_t b, int kh, float *P, float *dP, float *gq, float *gk,
                               float *gv) {
    const attn_shape s = shape_of(r->T, r->H, r->KVH, r->hd);
    const int group = s.H / s.KVH, hd = s.hd;
    const float *q = r->q->d, *y = r->y->d, *dy = r->y->g;
    const int64_t kv0 = k_at(&s, b, kh * group);
    const float *K = r->k->d + kv0, *V = r->v->d + kv0;
    const hn_vmath_set *vm = hn_vmath_active();
    for (int h = kh * group; h < (kh + 1) * group; h++)
        for (int64_t t0 = 0; t0 < s.T; t0 += ATT_BQ) {
            int64_t m = s.T - t0 < ATT_BQ ? s.T - t0 : ATT_BQ, qi = q_at(&s, b, t0, h);
            int64_t n = block_keys(t0, m, r->lens ? r->lens[b] : s.T, r->causal);
            hn_sgemm(false, true, m, n, hd, s.scale, q + qi, s.QW, K, s.KW, 0.0f, P, n);
            block_softmax(vm, P, m, n, t0, r->causal, r->lse + (b * s.H + h) * s.T + t0, NULL);
            hn_sgemm(false, true, m, n, hd, 1.0f, dy + qi, s.QW, V, s.KW, 0.0f, dP, n);
            block_ds(dP, P, m, n, dy + qi, y + qi, s.QW, hd);
            if (gq) hn_sgemm(false, false, m, hd, n, s.scale, dP, n, K, s.KW, 1.0f, gq + qi, s.QW);
            if (gk) hn_sgemm(true, false, n, hd, m, s.scale, dP, n, q + qi, s.QW, 1.0f, gk + kv0, s.KW);
            if (gv) hn_sgemm(true, false, n, hd, m, 1.0f, P, n, dy + qi, s.QW, 1.0f, gv + kv0, s.KW);
        }
}

static void attn_backward(hn_ctx *c, hn_tape_rec *rec) {
    attn_rec *r = (attn_rec *)rec;
    if (!r->y->g) return;
    const int64_t B = r->B, T = r->T;
    const int KVH = r->KVH;
    float *gq = r->q->rg ? hn_var_grad(c, r->q) : NULL, *gk = r->k->rg ? hn_var_grad(c, r->k) : NULL;
    float *gv = r->v->rg ? hn_var_grad(c, r->v) : NULL;
    if (c->err) return;
    int nt = hn_threads_get();
    int64_t per = (int64_t)2 * ATT_BQ * T;
    float *scratch = hn_arena_alloc(c->arena, (size_t)(nt * per) * sizeof(float));
    if (!scratch) {
        hn_op_fail(c, HN_ERR_NOMEM);
        return;
    }
#pragma omp parallel for num_threads(nt) schedule(dynamic, 1)
    for (int64_t pair = 0; pair < B * KVH; pair++) {
        float *P = scratch + (int64_t)omp_get_thread_num() * per;
        attn_backward_pair(r, pair / KVH, (int)(pair % KVH), P, P + ATT_BQ * T, gq, gk, gv);
    }
}

// Stores this step's keys and values in the cache and attends over it (inference only).
static hn_var *attention_cached(hn_ctx *c, hn_var *q, hn_var *k, hn_var *v, hn_var *y, int64_t T, int n_head,
                                int n_head_kv, int head_dim, const hn_kv_slot *cache, int pos0) {
    const int64_t KW = (int64_t)n_head_kv * head_dim;
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

static hn_var *attention(hn_ctx *c, hn_var *q, hn_var *k, hn_var *v, int64_t B, int64_t T, int n_head,
                         int n_head_kv, int head_dim, const hn_kv_slot *cache, int pos0, bool causal,
                         const int32_t *lens) {
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
    if (cache) return attention_cached(c, q, k, v, y, T, n_head, n_head_kv, head_dim, cache, pos0);
    for (int64_t b = 0; lens && b < B; b++)
        if (lens[b] < 1 || lens[b] > T)
            return hn_op_fail(c, hn_fail(HN_ERR_ARG, "attention: row %lld has %d valid tokens, expected 1..%lld",
                                         (long long)b, (int)lens[b], (long long)T));
    bool grad = hn_grad_on(c, y->rg);
    attn_rec *r = grad ? hn_tape_push(c, attn_backward, sizeof *r) : NULL;
    float *lse = grad && r ? hn_arena_alloc(c->arena, (size_t)(B * n_head * T) * sizeof(float)) : NULL;
    int32_t *rlens = grad && r && lens ? hn_arena_alloc(c->arena, (size_t)B * sizeof *rlens) : NULL;
    if (grad && lens && !rlens) return hn_op_fail(c, HN_ERR_NOMEM);
    if (rlens) memcpy(rlens, lens, (size_t)B * sizeof *rlens);
    int nt = hn_threads_get();
    const int64_t per = (int64_t)ATT_BQ * T, nq = (T + ATT_BQ - 1) / ATT_BQ;
    float *scratch = hn_arena_alloc(c->arena, (size_t)(nt * per) * sizeof(float));
    if ((grad && !lse) || !scratch) return hn_op_fail(c, HN_ERR_NOMEM);
    const attn_shape s = shape_of(T, n_head, n_head_kv, head_dim);
    const hn_vmath_set *vm = hn_vmath_active();
    // Units (b, h, query block): later blocks attend further (causally), so they are handed out dynamically, last
    // first.
#pragma omp parallel for num_threads(nt) schedule(dynamic, 1)
    for (int64_t u = 0; u < B * n_head * nq; u++) {
        int64_t qb = nq - 1 - u % nq, bh = u / nq, b = bh / n_head;
        int h = (int)(bh % n_head);
        int64_t t0 = qb * ATT_BQ, m = T - t0 < ATT_BQ ? T - t0 : ATT_BQ, qi = q_at(&s, b, t0, h);
        int64_t n = block_keys(t0, m, lens ? lens[b] : T, causal), kv0 = k_at(&s, b, h);
        float *P = scratch + (int64_t)omp_get_thread_num() * per;
        hn_sgemm(false, true, m, n, head_dim, s.scale, q->d + qi, QW, k->d + kv0, KW, 0.0f, P, n);
        block_softmax(vm, P, m, n, t0, causal, NULL, lse ? lse + (b * n_head + h) * T + t0 : NULL);
        hn_sgemm(false, false, m, head_dim, n, 1.0f, P, n, v->d + kv0, KW, 0.0f, y->d + qi, QW);
    }
    if (r) r->q = q, r->k = k, r->v = v, r->y = y, r->lse = lse, r->B = B, r->T = T, r->H = n_head,
           r->KVH = n_head_kv, r->hd = head_dim, r->causal = causal, r->lens = rlens;
    return y;
}

hn_var *hn_op_attention(hn_ctx *c, hn_var *q, hn_var *k, hn_var *v, int64_t B, int64_t T, int n_head,
                        int n_head_kv, int head_dim, const hn_kv_slot *cache, int pos0) {
    return attention(c, q, k, v, B, T, n_head, n_head_kv, head_dim, cache, pos0, true, NULL);
}

hn_var *hn_op_attention_ex(hn_ctx *c, hn_var *q, hn_var *k, hn_var *v, int64_t B, int64_t T, int n_head,
                           int n_head_kv, int head_dim, bool causal, const int32_t *lens) {
    return attention(c, q, k, v, B, T, n_head, n_head_kv, head_dim, NULL, 0, causal, lens);
}
