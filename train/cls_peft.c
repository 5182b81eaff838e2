// train/cls_peft.c — classification by any parameter-efficient method of adapt/method.h that LoRA's file does not
// already cover (DoRA, IA3, prompt tuning, P-tuning, prefix tuning, Houlsby and Pfeiffer bottleneck adapters) + a
// classification head trained fully, by train/cls_head.c's loop (the head first on the frozen model, then both).
//
// The run directory holds the method's adapter as the method saves it (DIR/adapter/: PEFT's directory where PEFT has
// the method, hone's own format for bottleneck adapters; loadable with --adapter) and the head as head.safetensors
// (transformers' *ForSequenceClassification names). The pooled token is the input's own (BERT's [CLS], a decoder's
// last token), never a virtual token: methods that put positions before the input leave the pooling as it was.
#include "adapt/method.h"
#include "train/cls_impl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static hn_method_config method_config(const hn_cls_options *o) {
    hn_method_config c = hn_method_default_config();
    c.seed = o->seed + 1; // apart from the head's draw
    c.lora.r = o->lora_r > 0 ? o->lora_r : c.lora.r;
    c.lora.alpha = o->lora_alpha > 0 ? o->lora_alpha : 2.0f * (float)c.lora.r;
    c.lora.seed = c.seed;
    c.lora.targets = HN_LORA_ALL_LINEAR; // as the lora classification method
    return c;
}

#define HN_CLS_PREFIX_TEXT "Classify the following text."

static void free_method(void *me) { hn_method_destroy(me); }

// The init text where it applies: prefix tuning on a decoder with a tokenizer starts from a real text's keys and
// values (Li & Liang's init from activations): PEFT's random N(0, 1) prefixes scramble the pooled states the head is
// first fitted on (SmolLM2 on SST-2: 0.56, the majority class, against the head alone's 0.74). An encoder keeps
// PEFT's init.
static const char *for_method(const char *name, const hn_model *m) {
    return !strcmp(name, "prefix-tuning") && m->hp.arch != HN_ARCH_BERT && m->tok ? HN_CLS_PREFIX_TEXT : NULL;
}

static hn_status applies(const char *name, const hn_model *cm) {
    hn_status s = hn_cls_head_applies(cm);
    const hn_method_ops *ops = hn_method_find(name);
    if (!s && !ops) s = hn_fail(HN_ERR_UNSUPPORTED, "%s is not in this build", name);
    if (s) return s;
    // Whether the method attaches to this model: attach a fresh one and take it off again (adapters are small).
    hn_method_config c = method_config(&(hn_cls_options){.lora_r = 8}); // no init_text: attaching is the question
    hn_method *me;
    if ((s = ops->attach_new(&me, (hn_model *)cm, &c))) return s;
    hn_method_destroy(me);
    return HN_OK;
}

static hn_status train(const char *name, hn_model *m, const hn_cls_data *d, const hn_cls_data *val,
                       const hn_cls_options *o, void **state) {
    *state = NULL;
    const hn_method_ops *ops = hn_method_find(name);
    hn_status s = ops ? hn_cls_head_applies(m) : hn_fail(HN_ERR_UNSUPPORTED, "%s is not in this build", name);
    if (!s) s = hn_cls_check_data(d, o);
    hn_cls_state *st = NULL;
    hn_method *me = NULL;
    hn_method_config c = method_config(o);
    c.init_text = for_method(name, m);
    if (!s) s = hn_cls_state_new(&st, m, d->n_classes, o->seed, o->max_len);
    if (!s && !(s = ops->attach_new(&me, m, &c)))
        st->body = me, st->body_params = hn_method_params(me), st->body_free = free_method;
    if (!s) s = hn_cls_state_ready(st);
    if (!s) s = hn_cls_train_loop(st, d, val, o);
    if (s) hn_cls_state_free(st);
    else *state = st;
    return s;
}

static hn_status save(const hn_model *m, void *state, const char *dir) {
    hn_cls_state *st = state;
    char path[4096];
    snprintf(path, sizeof path, "%s/adapter", dir);
    hn_status s = hn_method_save(st->body, path);
    return s ? s : hn_cls_head_save(m, state, dir);
}

static hn_status load(hn_model *m, const char *dir, void **state) {
    *state = NULL;
    char path[4096];
    snprintf(path, sizeof path, "%s/adapter", dir);
    hn_cls_state *st = NULL;
    hn_method *me = NULL;
    hn_status s = hn_cls_state_new(&st, m, 0, 0, 0);
    if (!s) s = hn_cls_head_load(st, dir);
    if (!s && !(s = hn_method_load(&me, m, path)))
        st->body = me, st->body_free = free_method; // loaded for prediction: nothing trains
    if (!s) s = hn_cls_state_ready(st);
    if (s) hn_cls_state_free(st);
    else *state = st;
    return s;
}

// lr: the method's usual rate on top of a head already fitted (PEFT's examples and the papers: prompt tuning
// trains a few embeddings and wants a large one, the methods that change every layer a small one).
#define PEFT_METHOD(sym, label, text, lr)                                                                             \
    static hn_status sym##_applies(const hn_model *m) { return applies(label, m); }                                    \
    static hn_status sym##_train(hn_model *m, const hn_cls_data *d, const hn_cls_data *v, const hn_cls_options *o,    \
                                 void **st) {                                                                          \
        return train(label, m, d, v, o, st);                                                                           \
    }                                                                                                                  \
    const hn_cls_method hn_cls_##sym = {.name = label, .about = text, .applies = sym##_applies,                       \
                                        .train = sym##_train, .predict = hn_cls_state_predict, .save = save,           \
                                        .load = load, .free = hn_cls_state_free,                                       \
                                        .n_trainable = hn_cls_state_n_trainable, .default_lr = lr};

PEFT_METHOD(dora, "dora", "DoRA: LoRA with a learned magnitude on every linear layer + a head", 1e-3f)
PEFT_METHOD(ia3, "ia3", "IA3: learned scales on keys, values and the feed-forward input + a head", 3e-3f)
PEFT_METHOD(prompt_tuning, "prompt-tuning", "prompt tuning: 20 trained virtual tokens before the input + a head", 3e-2f)
PEFT_METHOD(p_tuning, "p-tuning", "P-tuning: virtual tokens from a trained prompt encoder + a head", 1e-3f)
PEFT_METHOD(prefix_tuning, "prefix-tuning", "prefix tuning: trained key/value prefixes in every layer + a head", 1e-2f)
PEFT_METHOD(adapter_houlsby, "adapter-houlsby", "Houlsby bottleneck adapters after attention and feed-forward + a "
            "head", 1e-3f)
PEFT_METHOD(adapter_pfeiffer, "adapter-pfeiffer", "Pfeiffer bottleneck adapters after the feed-forward + a head", 1e-3f)
