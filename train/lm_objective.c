// train/lm_objective.c — next-token cross-entropy over a batch (see lm_objective.h).
#include "train/lm_objective.h"
#include "tensor/nn.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
    hn_model *m;
    hn_lm_params p;
    hn_arena arena, scratch;
    hn_tape tape;
    hn_rng rng;
    bool training;
    float *rope;       // (rope_T, hd) cos/sin
    int rope_T;
    int32_t *targets;  // (cap) next token where it is in the loss, else -1
    size_t cap;
} lm_state;

hn_lm_params hn_lm_default_params(void) { return (hn_lm_params){.mm = HN_MM_FAST}; }

static hn_status prepare(lm_state *st, const hn_batch *b) {
    const int B = b->B, T = b->T;
    if (B <= 0 || T <= 0) return hn_fail(HN_ERR_ARG, "LM objective: empty batch (%d x %d)", B, T);
    if (T > st->rope_T) {
        float *r = hn_alloc_aligned((size_t)T * st->m->hp.head_dim * sizeof(float), "rope table");
        if (!r) return HN_ERR_NOMEM;
        free(st->rope);
        st->rope = r, st->rope_T = T;
        hn_model_rope_table(st->m, r, T);
    }
    size_t n = (size_t)B * T;
    if (n > st->cap) {
        int32_t *t = realloc(st->targets, n * sizeof *t);
        if (!t) return hn_fail(HN_ERR_NOMEM, "LM objective: out of memory for %zu targets", n);
        st->targets = t, st->cap = n;
    }
    // Row position t predicts ids[t + 1] when mask[t + 1] says that token is in the loss.
    for (int r = 0; r < B; r++)
        for (int t = 0; t < T; t++) {
            size_t i = (size_t)r * T + t;
            st->targets[i] = t + 1 < T && b->mask[i + 1] ? b->ids[i + 1] : -1;
        }
    hn_arena_reset(&st->arena, (hn_arena_mark){0});
    hn_arena_reset(&st->scratch, (hn_arena_mark){0});
    hn_tape_reset(&st->tape);
    if (st->m->output.ext)
        return hn_fail(HN_ERR_UNSUPPORTED, "LM objective: a method attached to the output head is not supported yet");
    return HN_OK;
}

static hn_status run(lm_state *st, const hn_batch *b, bool grad, float scale, double *loss_sum, int64_t *n_loss) {
    *loss_sum = 0;
    *n_loss = 0;
    hn_status s = prepare(st, b);
    if (s) return s;
    hn_ctx c = {.arena = &st->arena, .scratch = &st->scratch, .tape = grad ? &st->tape : NULL, .mm = st->p.mm,
                .rng = &st->rng, .training = grad && st->training};
    hn_var *h = hn_model_hidden(&c, st->m, b->ids, b->B, b->T, st->rope, st->p.checkpoint); // (B*T, C)
    if (!h) return c.err;
    if ((s = hn_op_cross_entropy(&c, h, st->m->output.w, st->targets, scale, loss_sum, n_loss))) return s;
    return grad ? hn_backward(&c) : HN_OK;
}

static hn_status lm_loss_grad(void *user, const hn_batch *b, float scale, double *loss_sum, int64_t *n_loss) {
    return run(user, b, true, scale, loss_sum, n_loss);
}

static hn_status lm_loss(void *user, const hn_batch *b, double *loss_sum, int64_t *n_loss) {
    return run(user, b, false, 0.0f, loss_sum, n_loss);
}

static void lm_set_training(void *user, bool training) { ((lm_state *)user)->training = training; }

hn_status hn_lm_objective_init(hn_objective *obj, hn_model *m, hn_param_list *params, const hn_lm_params *p) {
    memset(obj, 0, sizeof *obj);
    lm_state *st = hn_calloc(1, sizeof *st, "LM objective");
    if (!st) return HN_ERR_NOMEM;
    st->m = m;
    st->p = p ? *p : hn_lm_default_params();
    st->training = true;
    hn_rng_seed(&st->rng, st->p.seed);
    *obj = (hn_objective){.user = st, .params = params, .loss_grad = lm_loss_grad, .loss = lm_loss,
                          .set_training = lm_set_training};
    return HN_OK;
}

void hn_lm_objective_deinit(hn_objective *obj) {
    lm_state *st = obj->user;
    if (st) {
        hn_arena_deinit(&st->arena);
        hn_arena_deinit(&st->scratch);
        free(st->rope);
        free(st->targets);
        free(st);
    }
    memset(obj, 0, sizeof *obj);
}

size_t hn_lm_objective_arena_bytes(const hn_objective *obj) {
    const lm_state *st = obj->user;
    return hn_arena_size(&st->arena) + hn_arena_size(&st->scratch);
}

hn_rng *hn_lm_objective_rng(hn_objective *obj) { return &((lm_state *)obj->user)->rng; }
