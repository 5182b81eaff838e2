// model/batch.c — the forward pass of many sequences at once over a paged KV pool (serving). The step's tokens form
// one matrix, so every weight is multiplied once for the whole batch; only attention looks up each token's own
// sequence (its block table). The architectures' bodies run unchanged: the step is one row of n tokens whose
// positions come from the batch (hn_seq.batch).
#include "model/arch.h"

#include <omp.h>
#include <stdlib.h>
#include <string.h>

struct hn_batch_runner {
    const hn_model *m;
    int max_tokens, max_ctx;
    hn_arena arena, blocks;
    float *rope;        // (max_ctx, hd) the whole table
    float *rope_rows;   // (max_tokens, hd) the step's tokens' rows of it
    float *scratch;     // (n_scratch, max_ctx) attention probabilities, one row per thread
    int n_scratch;
    float *logits;      // (logit_rows, n_vocab)
    int logit_rows;
};

static float *alloc_floats(int64_t n, const char *what) { return hn_arch_floats("batch", what, n); }

hn_batch_runner *hn_batch_runner_create(const hn_model *m, int max_tokens, int max_ctx) {
    if (max_tokens < 1 || max_ctx < 1 || max_ctx > (1 << 24)) {
        hn_fail(HN_ERR_ARG, "batch: %d tokens per step and a context of %d, expected >= 1 and <= %d", max_tokens,
                max_ctx, 1 << 24);
        return NULL;
    }
    hn_batch_runner *r = hn_calloc(1, sizeof *r, "batch runner");
    if (!r) return NULL;
    const int hd = m->hp.head_dim;
    r->m = m, r->max_tokens = max_tokens, r->max_ctx = max_ctx;
    r->n_scratch = omp_get_max_threads() > hn_threads_get() ? omp_get_max_threads() : hn_threads_get();
    if (!(r->rope = alloc_floats((int64_t)max_ctx * hd, "rope table")) ||
        !(r->rope_rows = alloc_floats((int64_t)max_tokens * hd, "rope rows")) ||
        !(r->scratch = alloc_floats((int64_t)r->n_scratch * max_ctx, "attention scratch"))) {
        hn_batch_runner_destroy(r);
        return NULL;
    }
    hn_model_rope_table(m, r->rope, max_ctx);
    return r;
}

void hn_batch_runner_destroy(hn_batch_runner *r) {
    if (!r) return;
    hn_arena_deinit(&r->arena);
    hn_arena_deinit(&r->blocks);
    free(r->rope);
    free(r->rope_rows);
    free(r->scratch);
    free(r->logits);
    free(r);
}

static hn_ctx step_ctx(hn_batch_runner *r, const hn_model *m) {
    hn_arena_reset(&r->arena, (hn_arena_mark){0});
    hn_arena_reset(&r->blocks, (hn_arena_mark){0});
    return (hn_ctx){.arena = &r->arena, .scratch = &r->blocks, .mm = m->mm_mode};
}

static hn_status check_batch(const hn_model *m, const hn_batch_runner *r, const hn_kv_pool_view *pool,
                             const hn_step_batch *b) {
    if (r->m != m) return hn_fail(HN_ERR_ARG, "batch: the runner belongs to another model");
    if (b->n < 1 || b->n > r->max_tokens)
        return hn_fail(HN_ERR_ARG, "batch: %d tokens, expected 1 to %d", b->n, r->max_tokens);
    if (b->n_logits < 0 || b->n_logits > b->n) return hn_fail(HN_ERR_ARG, "batch: %d logit rows", b->n_logits);
    for (int t = 0; t < b->n; t++) {
        if (b->ids[t] < 0 || b->ids[t] >= m->hp.n_vocab)
            return hn_fail(HN_ERR_RANGE, "batch: token id %d at row %d is outside the vocabulary [0, %d)",
                           (int)b->ids[t], t, m->hp.n_vocab);
        if (b->pos[t] < 0 || b->pos[t] >= r->max_ctx)
            return hn_fail(HN_ERR_RANGE, "batch: position %d at row %d, expected 0 to %d", (int)b->pos[t], t,
                           r->max_ctx - 1);
        int32_t blk = b->tables[t][b->pos[t] >> pool->block_shift];
        if (blk < 0 || blk >= pool->n_blocks)
            return hn_fail(HN_ERR_RANGE, "batch: row %d's position %d is in block %d of %lld", t, (int)b->pos[t],
                           (int)blk, (long long)pool->n_blocks);
    }
    for (int i = 0; i < b->n_logits; i++)
        if (b->logit_rows[i] < 0 || b->logit_rows[i] >= b->n)
            return hn_fail(HN_ERR_ARG, "batch: logit row %d of %d", (int)b->logit_rows[i], b->n);
    return HN_OK;
}

hn_status hn_model_forward_batch(hn_model *m, hn_batch_runner *r, const hn_kv_pool_view *pool, const hn_step_batch *b,
                                 float **logits) {
    *logits = NULL;
    hn_status st = check_batch(m, r, pool, b);
    if (st) return st;
    const hn_arch_impl *impl = hn_arch_of(m);
    if (impl->encoder) return hn_fail(HN_ERR_UNSUPPORTED, "%s: batched generation needs a decoder", m->path);
    const int64_t V = m->hp.n_vocab, C = m->hp.n_embd;
    const int hd = m->hp.head_dim;
    if (b->n_logits > r->logit_rows) {
        float *nl = alloc_floats((int64_t)b->n_logits * V, "logits");
        if (!nl) return HN_ERR_NOMEM;
        free(r->logits);
        r->logits = nl, r->logit_rows = b->n_logits;
    }
    for (int t = 0; t < b->n; t++) memcpy(r->rope_rows + (int64_t)t * hd, r->rope + (int64_t)b->pos[t] * hd,
                                          (size_t)hd * sizeof(float));
    hn_ctx c = step_ctx(r, m);
    c.groups = b->groups, c.n_groups = b->groups ? b->n_groups : 0;
    hn_seq s = {.B = 1, .T = b->n, .pos0 = 0, .rope = r->rope_rows, .batch = b, .pool = pool,
                .att_scratch = r->scratch, .scratch_stride = r->max_ctx, .n_scratch = r->n_scratch};
    hn_var *h = impl->hidden(&c, m, b->ids, &s); // (n, C)
    if (!h) return c.err ? c.err : HN_ERR_ARG;
    if (!b->n_logits) return HN_OK;
    hn_var *rows = hn_var_new(&c, b->n_logits, C);
    if (!rows) return c.err;
    for (int i = 0; i < b->n_logits; i++)
        memcpy(rows->d + i * C, h->d + (int64_t)b->logit_rows[i] * C, (size_t)C * sizeof(float));
    c.groups = NULL, c.n_groups = 0; // the head's rows are not the step's
    hn_var *y = hn_linear_forward(&c, &m->output, rows); // (n_logits, V)
    if (!y) return c.err;
    memcpy(r->logits, y->d, (size_t)(y->rows * y->cols) * sizeof(float));
    *logits = r->logits;
    return HN_OK;
}

hn_status hn_model_fill_prefix_paged(hn_model *m, hn_batch_runner *r, const hn_model_ext *e,
                                     const hn_kv_pool_view *pool, const int32_t *table) {
    const int64_t KW = (int64_t)m->hp.n_head_kv * m->hp.head_dim;
    for (int l = 0; l < m->hp.n_layer; l++) {
        hn_ctx c = step_ctx(r, m);
        hn_var *k, *v;
        hn_status st = hn_arch_prefix_kv(&c, m, e, l, &k, &v);
        if (st) return st;
        for (int t = 0; t < e->n_virtual; t++) hn_arch_pool_put(m, pool, l, table, t, k->d + t * KW, v->d + t * KW);
    }
    return HN_OK;
}
