// train/cls_objective.c — classification loss and gradients through the model and its head (see cls_objective.h).
#include "train/cls_objective.h"

#include <stdlib.h>
#include <string.h>

hn_status hn_cls_objective_init(hn_cls_objective *o, hn_model *m, hn_seq_head *head, const hn_param_list *extra) {
    memset(o, 0, sizeof *o);
    o->m = m, o->head = head;
    hn_status s = HN_OK;
    for (int i = 0; i < head->params.n && !s; i++) s = hn_param_list_add(&o->params, head->params.items[i]);
    for (int i = 0; extra && i < extra->n && !s; i++) s = hn_param_list_add(&o->params, extra->items[i]);
    if (s) hn_cls_objective_deinit(o);
    return s;
}

void hn_cls_objective_deinit(hn_cls_objective *o) {
    hn_arena_deinit(&o->arena);
    hn_arena_deinit(&o->scratch);
    hn_param_list_deinit(&o->params);
    free(o->rope);
    free(o->safe);
    memset(o, 0, sizeof *o);
}

// Checks the batch, grows the rope table and the id buffer, and clears the last step's memory.
static hn_status prepare(hn_cls_objective *o, const hn_cls_batch *b) {
    const hn_model *m = o->m;
    if (b->B <= 0 || b->T <= 0) return hn_fail(HN_ERR_ARG, "classification batch of %d x %d tokens", b->B, b->T);
    for (int r = 0; r < b->B; r++) {
        if (b->lens[r] < 1 || b->lens[r] > b->T)
            return hn_fail(HN_ERR_ARG, "classification batch: row %d has %d tokens, expected 1..%d", r, (int)b->lens[r],
                           b->T);
        for (int t = 0; t < b->lens[r]; t++)
            if (b->ids[(int64_t)r * b->T + t] < 0 || b->ids[(int64_t)r * b->T + t] >= m->hp.n_vocab)
                return hn_fail(HN_ERR_RANGE, "classification batch: token id %d (row %d, index %d) outside [0, %d)",
                               (int)b->ids[(int64_t)r * b->T + t], r, t, m->hp.n_vocab);
    }
    if (m->hp.arch != HN_ARCH_BERT && b->T > o->rope_T) {
        float *r = hn_alloc((size_t)b->T * m->hp.head_dim * sizeof *r, "rope table");
        if (!r) return HN_ERR_NOMEM;
        free(o->rope);
        o->rope = r, o->rope_T = b->T;
        hn_model_rope_table(m, r, b->T);
    }
    size_t n = (size_t)b->B * b->T;
    if (n > o->cap) {
        int32_t *p = realloc(o->safe, n * sizeof *p);
        if (!p) return hn_fail(HN_ERR_NOMEM, "classification batch: out of memory for %zu ids", n);
        o->safe = p, o->cap = n;
    }
    // Padding positions get the row's first id: a valid token that the masks keep out of every valid row's result.
    for (int r = 0; r < b->B; r++)
        for (int t = 0; t < b->T; t++)
            o->safe[(size_t)r * b->T + t] = b->ids[(size_t)r * b->T + (t < b->lens[r] ? t : 0)];
    hn_arena_reset(&o->arena, (hn_arena_mark){0});
    hn_arena_reset(&o->scratch, (hn_arena_mark){0});
    hn_tape_reset(&o->tape);
    return HN_OK;
}

static hn_status run(hn_cls_objective *o, const hn_cls_batch *b, bool grad, float scale, double *loss_sum,
                     int *correct, float *probs) {
    hn_status s = prepare(o, b);
    if (s) return s;
    hn_ctx c = {.arena = &o->arena, .scratch = &o->scratch, .tape = grad ? &o->tape : NULL, .mm = o->m->mm_mode};
    hn_var *h = hn_model_hidden_ex(&c, o->m, o->safe, b->lens, b->B, b->T, o->rope, false);
    hn_var *logits = hn_cls_head_forward(&c, o->head, h, b->B, b->T, b->lens);
    if (!logits) return c.err ? c.err : hn_fail(HN_ERR_ARG, "classification: the model's forward failed");
    if ((s = hn_cls_softmax_ce(&c, logits, b->labels, scale, loss_sum, correct, probs))) return s;
    return grad ? hn_backward(&c) : HN_OK;
}

hn_status hn_cls_objective_loss_grad(hn_cls_objective *o, const hn_cls_batch *b, float scale, double *loss_sum,
                                     int *correct) {
    if (!b->labels) return hn_fail(HN_ERR_ARG, "classification loss: a batch without labels");
    return run(o, b, true, scale, loss_sum, correct, NULL);
}

hn_status hn_cls_objective_probs(hn_cls_objective *o, const hn_cls_batch *b, float *probs) {
    hn_cls_batch nb = *b;
    nb.labels = NULL;
    return run(o, &nb, false, 0, NULL, NULL, probs);
}

hn_status hn_cls_objective_pooled(hn_cls_objective *o, const hn_cls_batch *b, float *out) {
    hn_status s = prepare(o, b);
    if (s) return s;
    hn_ctx c = {.arena = &o->arena, .scratch = &o->scratch, .mm = o->m->mm_mode};
    hn_var *h = hn_model_hidden_ex(&c, o->m, o->safe, b->lens, b->B, b->T, o->rope, false);
    hn_var *x = hn_cls_head_pool(&c, o->head, h, b->B, b->T, b->lens);
    if (!x) return c.err ? c.err : hn_fail(HN_ERR_ARG, "classification: the model's forward failed");
    memcpy(out, x->d, (size_t)b->B * o->head->n_embd * sizeof *out);
    return HN_OK;
}

hn_status hn_cls_objective_head_grad(hn_cls_objective *o, const float *x, const int32_t *labels, int B, float scale,
                                     double *loss_sum, int *correct, float *probs) {
    hn_arena_reset(&o->arena, (hn_arena_mark){0});
    hn_tape_reset(&o->tape);
    hn_ctx c = {.arena = &o->arena, .tape = labels ? &o->tape : NULL, .mm = o->m->mm_mode};
    hn_var *xv = hn_var_new(&c, B, o->head->n_embd);
    if (!xv) return c.err;
    memcpy(xv->d, x, (size_t)B * o->head->n_embd * sizeof *x);
    hn_var *logits = hn_cls_head_logits(&c, o->head, xv);
    hn_status s = hn_cls_softmax_ce(&c, logits, labels, scale, loss_sum, correct, probs);
    if (s) return s;
    return labels ? hn_backward(&c) : HN_OK;
}
