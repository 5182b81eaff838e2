// train/cls_tune.c — the classification methods that train the model's own weights beside a new head, through
// adapt/unfreeze.h (trainable fp32 copies in the model's slots) and train/cls_head.c's loop:
//   last-k   the last k blocks (weights, biases, norms), the final norm and BERT's pooler where the head reads it
//   gradual  gradual unfreezing (ULMFiT, Howard & Ruder 2018): the last block and the final norm first, one more
//            block below every o->unfreeze_every optimizer steps, down to the first; the embeddings stay frozen
//   bitfit   every bias (linear layers' and LayerNorms'; Ben Zaken et al. 2022); refused for a model without any
//   full     everything the classifier reads: embeddings, every block, the final norm, BERT's pooler where the
//            head reads it (not the unused LM head)
// Every one trains the head too (the bakeoff counts it in the trainable parameters).
//
// Saved in the run directory: head.safetensors (as the head method's) + weights.safetensors, the trained weights
// as F32 under the model's own tensor names (what differs from the base; the base record in classify.json says
// which base they belong to).
#include "adapt/cls_head.h"
#include "adapt/unfreeze.h"
#include "train/cls_impl.h"

#include <stdio.h>
#include <string.h>

typedef enum { TUNE_LAST_K, TUNE_GRADUAL, TUNE_BITFIT, TUNE_FULL } tune_kind;

// The weights each method trains; BERT's pooler with them when the head reads it (a plain BERT), as transformers
// trains it.
static hn_unfreeze_rule rule(tune_kind k, const hn_model *m, const hn_cls_options *o) {
    const int L = m->hp.n_layer;
    hn_unfreeze_rule r = {.from_layer = -1, .roles = HN_UNFREEZE_BLOCK | HN_UNFREEZE_ROLE(HN_W_EMBED)}; // full
    if (k == TUNE_LAST_K) r = (hn_unfreeze_rule){.from_layer = L - (o && o->last_k < L ? o->last_k : L),
                                                 .roles = HN_UNFREEZE_BLOCK};
    if (k == TUNE_GRADUAL) r = (hn_unfreeze_rule){.from_layer = 0, .roles = HN_UNFREEZE_BLOCK};
    if (k == TUNE_BITFIT) r = (hn_unfreeze_rule){.from_layer = -1, .roles = HN_UNFREEZE_BIASES};
    if (!hn_cls_head_uses_pooler(m)) r.except[0] = m->pooler.w, r.except[1] = m->pooler.b;
    return r;
}

static hn_status applies(tune_kind k, const hn_model *m) {
    hn_status s = hn_cls_head_applies(m);
    if (s) return s;
    hn_unfreeze_rule r = rule(k, m, NULL);
    if (hn_unfreeze_count((hn_model *)m, &r) == 0)
        return hn_fail(HN_ERR_UNSUPPORTED, "%s has no %s to train (%s)", m->path,
                       k == TUNE_BITFIT ? "biases" : "weights", k == TUNE_BITFIT
                           ? "BitFit trains biases only; a Llama-family model has none: use lora or last-k"
                           : "the rule chooses none");
    return HN_OK;
}

static void free_unfreeze(void *u) { hn_unfreeze_destroy(u); }

// gradual: after `step` updates, blocks from L - 1 - step / every on train (never below 0).
static void gradual_step(hn_cls_state *st, int64_t step, const hn_cls_options *o) {
    const int L = st->m->hp.n_layer;
    int64_t open = 1 + step / (o->unfreeze_every > 0 ? o->unfreeze_every : 1);
    int from = open >= L ? 0 : L - (int)open;
    hn_unfreeze_set_from(st->body, from);
}

static hn_status train(tune_kind k, hn_model *m, const hn_cls_data *d, const hn_cls_data *val,
                       const hn_cls_options *o, void **state) {
    *state = NULL;
    hn_status s = applies(k, m);
    if (!s) s = hn_cls_check_data(d, o);
    if (!s && k == TUNE_LAST_K && o->last_k < 1) s = hn_fail(HN_ERR_ARG, "last-k: k = %d, expected 1 or more", o->last_k);
    if (!s && k == TUNE_GRADUAL && o->unfreeze_every < 1)
        s = hn_fail(HN_ERR_ARG, "gradual: unfreeze_every = %d steps, expected 1 or more", o->unfreeze_every);
    hn_cls_state *st = NULL;
    if (!s) s = hn_cls_state_new(&st, m, d->n_classes, o->seed, o->max_len);
    hn_unfreeze_rule r = rule(k, m, o);
    hn_unfreeze *u = NULL;
    if (!s) s = hn_unfreeze_new(&u, m, &r);
    if (!s) {
        st->body = u, st->body_params = hn_unfreeze_params(u), st->body_free = free_unfreeze;
        if (k == TUNE_GRADUAL) {
            st->on_step = gradual_step;
            gradual_step(st, 0, o);
        }
        s = hn_cls_state_ready(st);
    }
    if (!s) s = hn_cls_train_loop(st, d, val, o);
    if (s) hn_cls_state_free(st);
    else *state = st;
    return s;
}

static hn_status save(const hn_model *m, void *state, const char *dir) {
    hn_cls_state *st = state;
    hn_status s = hn_cls_head_save(m, state, dir);
    char path[4096];
    snprintf(path, sizeof path, "%s/weights.safetensors", dir);
    return s ? s : hn_unfreeze_save(st->body, path);
}

static hn_status load(hn_model *m, const char *dir, void **state) {
    *state = NULL;
    char path[4096];
    snprintf(path, sizeof path, "%s/weights.safetensors", dir);
    hn_cls_state *st = NULL;
    hn_unfreeze *u = NULL;
    hn_status s = hn_cls_state_new(&st, m, 0, 0, 0);
    if (!s) s = hn_cls_head_load(st, dir);
    if (!s) s = hn_unfreeze_load(&u, m, path);
    if (!s) {
        st->body = u, st->body_free = free_unfreeze; // loaded for prediction: nothing trains
        s = hn_cls_state_ready(st);
    }
    if (s) hn_cls_state_free(st);
    else *state = st;
    return s;
}

#define TUNE_METHOD(sym, kind, label, text, lr)                                                                        \
    static hn_status sym##_applies(const hn_model *m) { return applies(kind, m); }                                     \
    static hn_status sym##_train(hn_model *m, const hn_cls_data *d, const hn_cls_data *v, const hn_cls_options *o,    \
                                 void **st) {                                                                          \
        return train(kind, m, d, v, o, st);                                                                            \
    }                                                                                                                  \
    const hn_cls_method hn_cls_##sym = {.name = label, .about = text, .applies = sym##_applies,                       \
                                        .train = sym##_train, .predict = hn_cls_state_predict, .save = save,           \
                                        .load = load, .free = hn_cls_state_free,                                       \
                                        .n_trainable = hn_cls_state_n_trainable, .default_lr = lr};

TUNE_METHOD(last_k, TUNE_LAST_K, "last-k", "the last k blocks (--last-k, default 2) + the final norm + a new head", 1e-4f)
TUNE_METHOD(gradual, TUNE_GRADUAL, "gradual",
            "gradual unfreezing: one more block from the top every --unfreeze-every steps + a new head", 1e-4f)
TUNE_METHOD(bitfit, TUNE_BITFIT, "bitfit", "BitFit: every bias + a new head (models with biases: BERT, GPT-2, Qwen2)",
            1e-3f)
TUNE_METHOD(full, TUNE_FULL, "full", "full fine-tuning: every weight the classifier reads + a new head", 5e-5f)
