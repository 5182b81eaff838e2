// train/cls_head.c — the classification methods that train a head on the model's pooled hidden states:
//   head  the body frozen, only the head (adapt/cls_head.h) trains. The body's pooled states never change, so they
//         are computed once and the head is trained on them (the same gradients as through the whole graph).
//   lora  LoRA (adapt/lora.h) on every linear layer + the head trained fully, as PEFT's task_type SEQ_CLS does it
//         (the head is in modules_to_save).
// Both: AdamW (train/optim.h) over batches of a seeded shuffle for o->epochs at o->lr with transformers' default
// schedule (linear decay, no warmup) and gradient clipping at 1.0; deterministic for a seed and a thread count.
// Not train/trainer.c's loop: its batches are the LM's (token masks, no labels).
//
// Saved files in the run directory:
//   head  head.safetensors: "score.weight" (n_classes, n_embd) — "classifier.weight" + ".bias" for BERT — the names
//         of transformers' *ForSequenceClassification head
//   lora  adapter_config.json + adapter_model.safetensors as PEFT 0.21 saves a SEQ_CLS LoRA: task_type "SEQ_CLS",
//         modules_to_save ["classifier", "score"], the LoRA tensors under base_model.model.model.layers.N..., and the
//         head as base_model.model.score.weight (PEFT's in-memory name base_model.model.score.modules_to_save.
//         default.weight loses "modules_to_save.default." when saved; checked against peft 0.21.2's save_pretrained).
#define _GNU_SOURCE
#include "adapt/cls_head.h"
#include "adapt/lora.h"
#include "io/hf.h"
#include "io/safetensors.h"
#include "model/embed.h"
#include "train/classify.h"
#include "train/cls_objective.h"
#include "train/optim.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define PRED_BATCH 16
#define PEFT_PREFIX "base_model.model."

typedef struct {
    hn_model *m;
    hn_seq_head *head;
    hn_lora *lora; // NULL: the head method
    hn_cls_objective obj;
    int max_len;
} cls_state;

typedef struct {
    int32_t **ids;
    int32_t *lens;
    int n, max_T;
} tok_set;

static void tok_set_free(tok_set *ts) {
    for (int i = 0; ts->ids && i < ts->n; i++) free(ts->ids[i]);
    free(ts->ids);
    free(ts->lens);
    memset(ts, 0, sizeof *ts);
}

// Texts framed as the model reads a sequence: [CLS] text [SEP] for BERT (cut keeping [SEP]), BOS + text for a
// decoder that wants one (cut at the end); at most max_len tokens (and the model's positions).
static hn_status tokenize(const hn_model *m, const char *const *texts, int n, int max_len, tok_set *ts) {
    memset(ts, 0, sizeof *ts);
    if (!m->tok) return hn_fail(HN_ERR_UNSUPPORTED, "%s: the model has no tokenizer to classify text with", m->path);
    int max = max_len > 0 ? max_len : 512;
    if (m->hp.n_ctx_train > 0 && m->hp.n_ctx_train < max) max = m->hp.n_ctx_train;
    bool enc = m->hp.arch == HN_ARCH_BERT;
    int32_t cls = enc ? hn_tokenizer_find(m->tok, "[CLS]") : -1, sep = enc ? hn_tokenizer_find(m->tok, "[SEP]") : -1;
    if (enc && (cls < 0 || sep < 0))
        return hn_fail(HN_ERR_FORMAT, "%s: the encoder's vocabulary has no [CLS] or [SEP] token", m->path);
    if (enc && max < 3) return hn_fail(HN_ERR_ARG, "max_len %d leaves no room for text between [CLS] and [SEP]", max);
    ts->ids = hn_calloc(n ? (size_t)n : 1, sizeof *ts->ids, "tokens");
    ts->lens = hn_calloc(n ? (size_t)n : 1, sizeof *ts->lens, "token counts");
    if (!ts->ids || !ts->lens) {
        tok_set_free(ts);
        return HN_ERR_NOMEM;
    }
    ts->n = n;
    for (int i = 0; i < n; i++) {
        int32_t *t;
        int64_t len;
        hn_status s = hn_tokenizer_encode(m->tok, texts[i], -1, enc ? 0 : HN_TOK_ADD_BOS, &t, &len);
        if (s) {
            tok_set_free(ts);
            return s;
        }
        int64_t keep = enc ? (len + 2 < max ? len + 2 : max) : (len < max ? len : max);
        if (keep == 0) {
            free(t);
            tok_set_free(ts);
            return hn_fail(HN_ERR_ARG, "classification: text %d (\"%.40s\") gives no tokens", i, texts[i]);
        }
        ts->ids[i] = hn_calloc((size_t)keep, sizeof *t, "tokens");
        if (!ts->ids[i]) {
            free(t);
            tok_set_free(ts);
            return HN_ERR_NOMEM;
        }
        if (enc) {
            ts->ids[i][0] = cls;
            memcpy(ts->ids[i] + 1, t, (size_t)(keep - 2) * sizeof *t);
            ts->ids[i][keep - 1] = sep;
        } else {
            memcpy(ts->ids[i], t, (size_t)keep * sizeof *t);
        }
        free(t);
        ts->lens[i] = (int32_t)keep;
        if (keep > ts->max_T) ts->max_T = (int)keep;
    }
    return HN_OK;
}

// The batch of examples idx[0..B) right-padded to the longest; buf holds B * ts->max_T ids.
static hn_cls_batch make_batch(const tok_set *ts, const int *idx, int B, const int32_t *all_labels, int32_t *buf,
                               int32_t *lens, int32_t *labels) {
    int T = 1;
    for (int b = 0; b < B; b++)
        if (ts->lens[idx[b]] > T) T = ts->lens[idx[b]];
    memset(buf, 0, (size_t)B * T * sizeof *buf);
    for (int b = 0; b < B; b++) {
        lens[b] = ts->lens[idx[b]];
        memcpy(buf + (size_t)b * T, ts->ids[idx[b]], (size_t)lens[b] * sizeof *buf);
        if (all_labels) labels[b] = all_labels[idx[b]];
    }
    return (hn_cls_batch){.B = B, .T = T, .ids = buf, .lens = lens, .labels = all_labels ? labels : NULL};
}

// The examples in order of length (stable), so that a batch of neighbours pads little. malloc'd; NULL on failure.
static int *length_order(const tok_set *ts) {
    int *o = hn_calloc(ts->n ? (size_t)ts->n : 1, sizeof *o, "order");
    if (!o) return NULL;
    for (int i = 0; i < ts->n; i++) o[i] = i;
    // counting sort on the length: n can be large (a whole training set)
    int *count = hn_calloc((size_t)ts->max_T + 2, sizeof *count, "order");
    int *tmp = count ? hn_calloc(ts->n ? (size_t)ts->n : 1, sizeof *tmp, "order") : NULL;
    if (!tmp) {
        free(count), free(o);
        return NULL;
    }
    for (int i = 0; i < ts->n; i++) count[ts->lens[i] + 1]++;
    for (int t = 1; t <= ts->max_T + 1; t++) count[t] += count[t - 1];
    for (int i = 0; i < ts->n; i++) tmp[count[ts->lens[i]]++] = i;
    memcpy(o, tmp, (size_t)ts->n * sizeof *o);
    free(count), free(tmp);
    return o;
}

static void state_free(void *p) {
    cls_state *st = p;
    if (!st) return;
    hn_cls_objective_deinit(&st->obj);
    hn_lora_destroy(st->lora);
    hn_cls_head_destroy(st->head);
    free(st);
}

// A head (and LoRA when lora_r > 0) on m, with the objective over their params.
static hn_status state_new(cls_state **out, hn_model *m, int n_classes, uint64_t seed, const hn_lora_config *lc,
                           int max_len) {
    cls_state *st = hn_calloc(1, sizeof *st, "classification state");
    if (!st) return HN_ERR_NOMEM;
    st->m = m, st->max_len = max_len;
    hn_status s = hn_cls_head_new(&st->head, m, n_classes, seed);
    if (!s && lc) s = hn_lora_attach_new(&st->lora, m, lc);
    if (!s) s = hn_cls_objective_init(&st->obj, m, st->head, st->lora ? hn_lora_params(st->lora) : NULL);
    if (s) {
        state_free(st);
        return s;
    }
    *out = st;
    return HN_OK;
}

static hn_status check_data(const hn_cls_data *d, const hn_cls_options *o) {
    if (!d || d->n < 1) return hn_fail(HN_ERR_ARG, "classification: no training examples");
    if (d->n_classes < 2) return hn_fail(HN_ERR_ARG, "%s: one class only, nothing to classify", d->source ? d->source : "data");
    for (int i = 0; i < d->n; i++)
        if (d->labels[i] < 0 || d->labels[i] >= d->n_classes)
            return hn_fail(HN_ERR_ARG, "%s: example %d has label %d, expected 0..%d", d->source ? d->source : "data", i,
                           (int)d->labels[i], d->n_classes - 1);
    if (o->epochs < 1 || o->batch < 1 || !(o->lr > 0) || !(o->weight_decay >= 0))
        return hn_fail(HN_ERR_ARG, "classification: epochs %d, batch %d, lr %g, weight decay %g: expected epochs >= 1, "
                       "batch >= 1, lr > 0, weight decay >= 0", o->epochs, o->batch, (double)o->lr,
                       (double)o->weight_decay);
    return HN_OK;
}

static hn_status predict_ts(cls_state *st, const tok_set *ts, float *probs);

// The training loop shared by both methods. Head only: features once, then the head on them.
static hn_status train_loop(cls_state *st, const hn_cls_data *d, const hn_cls_data *val, const hn_cls_options *o) {
    const int n = d->n, C = st->m->hp.n_embd, bs = o->batch < n ? o->batch : n;
    tok_set ts;
    hn_status s = tokenize(st->m, (const char *const *)d->texts, n, st->max_len, &ts);
    if (s) return s;
    int *order = hn_calloc((size_t)n, sizeof *order, "order");
    int32_t *buf = hn_calloc((size_t)bs * ts.max_T, sizeof *buf, "batch");
    int32_t *blens = hn_calloc((size_t)bs, sizeof *blens, "batch"), *blabels = hn_calloc((size_t)bs, sizeof *blabels, "batch");
    float *feats = NULL, *xb = NULL;
    hn_adamw opt = {0};
    s = order && buf && blens && blabels ? HN_OK : HN_ERR_NOMEM;
    bool frozen = !st->lora;
    if (!s && frozen) { // the body's pooled states, once, in batches of similar lengths
        feats = hn_calloc((size_t)n * C, sizeof *feats, "pooled states");
        xb = hn_calloc((size_t)(bs > PRED_BATCH ? bs : PRED_BATCH) * C, sizeof *xb, "pooled batch");
        int *by_len = feats && xb ? length_order(&ts) : NULL;
        int32_t *fb = by_len ? hn_calloc((size_t)PRED_BATCH * ts.max_T, sizeof *fb, "batch") : NULL;
        s = fb ? HN_OK : HN_ERR_NOMEM;
        for (int b0 = 0; b0 < n && !s; b0 += PRED_BATCH) {
            int B = n - b0 < PRED_BATCH ? n - b0 : PRED_BATCH;
            int32_t fl[PRED_BATCH];
            hn_cls_batch cb = make_batch(&ts, by_len + b0, B, NULL, fb, fl, NULL);
            s = hn_cls_objective_pooled(&st->obj, &cb, xb);
            for (int b = 0; b < B && !s; b++)
                memcpy(feats + (size_t)by_len[b0 + b] * C, xb + (size_t)b * C, (size_t)C * sizeof *xb);
        }
        free(fb);
        free(by_len);
    }
    hn_adamw_params ap = hn_adamw_default_params();
    ap.weight_decay = o->weight_decay;
    if (!s) s = hn_adamw_init(&opt, &st->obj.params, &ap);
    int64_t per_epoch = (n + bs - 1) / bs;
    hn_lr_schedule sch = {.kind = HN_SCHED_LINEAR, .peak = o->lr, .warmup = 0, .total = per_epoch * o->epochs};
    hn_rng rng;
    hn_rng_seed(&rng, o->seed ^ 0x636c73ULL); // the shuffle's stream, apart from the head's initialisation
    for (int i = 0; i < n; i++) order[i] = i;
    int64_t step = 0;
    for (int ep = 0; ep < o->epochs && !s; ep++) {
        for (int i = n - 1; i > 0; i--) { // Fisher-Yates
            int j = (int)(hn_rng_u64(&rng) % (uint64_t)(i + 1)), t = order[i];
            order[i] = order[j], order[j] = t;
        }
        double loss = 0;
        int correct = 0;
        for (int b0 = 0; b0 < n && !s; b0 += bs, step++) {
            int B = n - b0 < bs ? n - b0 : bs;
            hn_param_zero_grads(&st->obj.params);
            if (frozen) {
                for (int b = 0; b < B; b++) {
                    memcpy(xb + (size_t)b * C, feats + (size_t)order[b0 + b] * C, (size_t)C * sizeof *xb);
                    blabels[b] = d->labels[order[b0 + b]];
                }
                s = hn_cls_objective_head_grad(&st->obj, xb, blabels, B, 1.0f / B, &loss, &correct, NULL);
            } else {
                hn_cls_batch cb = make_batch(&ts, order + b0, B, d->labels, buf, blens, blabels);
                s = hn_cls_objective_loss_grad(&st->obj, &cb, 1.0f / B, &loss, &correct);
            }
            if (s) break;
            double norm = hn_grad_clip(&st->obj.params, 1.0);
            if (!isfinite(norm)) {
                s = hn_fail(HN_ERR_RANGE, "classification: the gradient is not finite at step %lld (lr %g too high?)",
                            (long long)step + 1, (double)o->lr);
                break;
            }
            hn_adamw_step(&opt, hn_lr_at(&sch, step));
            hn_cls_progress(o, step + 1, sch.total);
        }
        if (!s) hn_info("epoch %d/%d: loss %.4f, train accuracy %.3f", ep + 1, o->epochs, loss / n, (double)correct / n);
    }
    if (!s && val && val->n > 0) { // the validation accuracy, for the log
        tok_set vs;
        float *p = NULL;
        if (!(s = tokenize(st->m, (const char *const *)val->texts, val->n, st->max_len, &vs))) {
            p = hn_calloc((size_t)val->n * d->n_classes, sizeof *p, "probabilities");
            s = p ? predict_ts(st, &vs, p) : HN_ERR_NOMEM;
            int hit = 0;
            for (int i = 0; i < val->n && !s; i++) {
                int arg = 0;
                for (int k = 1; k < d->n_classes; k++)
                    if (p[(size_t)i * d->n_classes + k] > p[(size_t)i * d->n_classes + arg]) arg = k;
                hit += arg == val->labels[i];
            }
            if (!s) hn_info("validation accuracy %.3f (%d of %d)", (double)hit / val->n, hit, val->n);
            tok_set_free(&vs);
        }
        free(p);
    }
    hn_adamw_deinit(&opt);
    free(order), free(buf), free(blens), free(blabels), free(feats), free(xb);
    tok_set_free(&ts);
    return s;
}

static hn_status predict_ts(cls_state *st, const tok_set *ts, float *probs) {
    const int K = st->head->n_classes;
    int32_t *buf = hn_calloc((size_t)PRED_BATCH * (ts->max_T ? ts->max_T : 1), sizeof *buf, "batch");
    int *by_len = buf ? length_order(ts) : NULL;
    if (!by_len) {
        free(buf);
        return HN_ERR_NOMEM;
    }
    hn_status s = HN_OK;
    float pb[PRED_BATCH * 64];
    float *tmp = K <= 64 ? pb : hn_calloc((size_t)PRED_BATCH * K, sizeof *tmp, "probabilities");
    if (!tmp) s = HN_ERR_NOMEM;
    for (int b0 = 0; b0 < ts->n && !s; b0 += PRED_BATCH) {
        int B = ts->n - b0 < PRED_BATCH ? ts->n - b0 : PRED_BATCH;
        int32_t lens[PRED_BATCH];
        hn_cls_batch cb = make_batch(ts, by_len + b0, B, NULL, buf, lens, NULL);
        s = hn_cls_objective_probs(&st->obj, &cb, tmp);
        for (int b = 0; b < B && !s; b++)
            memcpy(probs + (size_t)by_len[b0 + b] * K, tmp + (size_t)b * K, (size_t)K * sizeof *tmp);
    }
    if (tmp != pb) free(tmp);
    free(buf);
    free(by_len);
    return s;
}

static hn_status cls_predict(hn_model *m, void *state, const char *const *texts, int n, float *probs) {
    cls_state *st = state;
    if (st->m != m) return hn_fail(HN_ERR_ARG, "classification: predict with another model than the one trained");
    tok_set ts;
    hn_status s = tokenize(m, texts, n, st->max_len, &ts);
    if (!s) s = predict_ts(st, &ts, probs);
    tok_set_free(&ts);
    return s;
}

static int64_t cls_n_trainable(void *state) {
    cls_state *st = state;
    return hn_cls_head_n_params(st->head) + (st->lora ? hn_param_count(hn_lora_params(st->lora)) : 0);
}

// ---- head ----

static hn_status head_applies(const hn_model *m) {
    hn_pool p = hn_model_default_pool(m);
    if (p == HN_POOL_MAX)
        return hn_fail(HN_ERR_UNSUPPORTED, "%s pools by max; a trained head needs mean, cls or last", m->path);
    return HN_OK;
}

static hn_status head_train(hn_model *m, const hn_cls_data *train, const hn_cls_data *val, const hn_cls_options *o,
                            void **state) {
    *state = NULL;
    hn_status s = check_data(train, o);
    cls_state *st = NULL;
    if (!s) s = state_new(&st, m, train->n_classes, o->seed, NULL, o->max_len);
    if (!s) s = train_loop(st, train, val, o);
    if (s) state_free(st);
    else *state = st;
    return s;
}

static hn_status make_dir(const char *dir) {
    if (mkdir(dir, 0777) != 0 && errno != EEXIST) return hn_fail(HN_ERR_IO, "%s: cannot create: %s", dir, strerror(errno));
    return HN_OK;
}

// Adds the head's tensors to w under prefix ("" or PEFT's "base_model.model."), and the token limit the texts were
// cut at (prediction after a load cuts them alike).
static hn_status add_head(hn_safetensors_writer *w, const cls_state *st, const char *prefix) {
    const hn_seq_head *hd = st->head;
    char name[256], ml[16];
    snprintf(ml, sizeof ml, "%d", st->max_len);
    hn_status s0 = hn_safetensors_writer_set_meta(w, "hone.max_len", ml);
    if (s0) return s0;
    snprintf(name, sizeof name, "%s%s", prefix, hd->W.name);
    hn_status s = hn_safetensors_writer_add(w, name, HN_F32, 2, hd->W.ne, hd->W.data);
    if (!s && hd->has_bias) {
        snprintf(name, sizeof name, "%s%s", prefix, hd->b.name);
        s = hn_safetensors_writer_add(w, name, HN_F32, 1, hd->b.ne, hd->b.data);
    }
    return s;
}

static hn_status head_save(const hn_model *m, void *state, const char *dir) {
    (void)m;
    cls_state *st = state;
    hn_status s = make_dir(dir);
    if (s) return s;
    hn_safetensors_writer *w = hn_safetensors_writer_create();
    if (!w) return HN_ERR_NOMEM;
    char path[4096];
    snprintf(path, sizeof path, "%s/head.safetensors", dir);
    s = add_head(w, st, "");
    if (!s) s = hn_safetensors_writer_set_meta(w, "format", "pt");
    if (!s) s = hn_safetensors_writer_write(w, path);
    hn_safetensors_writer_destroy(w);
    return s;
}

// Reads the head's tensors (prefix + "score.weight", ...) from an open file into a fresh head of st.
static hn_status read_head(cls_state *st, const hn_safetensors *f, const char *path, const char *prefix,
                           uint64_t seed) {
    const hn_model *m = st->m;
    char wname[256], bname[256];
    snprintf(wname, sizeof wname, "%s%s.weight", prefix, hn_cls_head_module(m));
    snprintf(bname, sizeof bname, "%s%s.bias", prefix, hn_cls_head_module(m));
    const hn_tensor *w = hn_safetensors_tensor(f, wname), *b = hn_safetensors_tensor(f, bname);
    if (!w) return hn_fail(HN_ERR_FORMAT, "%s: no tensor '%s' (the classification head)", path, wname);
    if (w->type != HN_F32 || w->ndim != 2 || w->ne[0] != m->hp.n_embd || w->ne[1] < 2)
        return hn_fail(HN_ERR_FORMAT, "%s: '%s' is not F32 [n_classes >= 2, %d]", path, wname, m->hp.n_embd);
    bool want_b = m->hp.arch == HN_ARCH_BERT;
    if (want_b != (b != NULL))
        return hn_fail(HN_ERR_FORMAT, "%s: '%s' %s, but a %s head %s one", path, bname, b ? "is present" : "is missing",
                       want_b ? "BERT" : "decoder's", want_b ? "has" : "has no");
    if (b && (b->type != HN_F32 || b->ndim != 1 || b->ne[0] != w->ne[1]))
        return hn_fail(HN_ERR_FORMAT, "%s: '%s' is not F32 [%lld]", path, bname, (long long)w->ne[1]);
    const char *ml = hn_safetensors_meta(f, "hone.max_len");
    char *end = NULL;
    long v = ml ? strtol(ml, &end, 10) : 0;
    if (ml && (*end || v < 0 || v > 1 << 24)) return hn_fail(HN_ERR_FORMAT, "%s: metadata hone.max_len '%.20s': expected a token count", path, ml);
    st->max_len = (int)v;
    hn_status s = hn_cls_head_new(&st->head, m, (int)w->ne[1], seed);
    if (s) return s;
    memcpy(st->head->W.data, w->data, (size_t)st->head->W.n * sizeof(float));
    if (b) memcpy(st->head->b.data, b->data, (size_t)st->head->b.n * sizeof(float));
    return HN_OK;
}

static hn_status head_load(hn_model *m, const char *dir, void **state) {
    *state = NULL;
    char path[4096];
    snprintf(path, sizeof path, "%s/head.safetensors", dir);
    hn_safetensors f;
    hn_status s = hn_safetensors_open(&f, path);
    if (s) return s;
    cls_state *st = hn_calloc(1, sizeof *st, "classification state");
    if (!st) s = HN_ERR_NOMEM;
    else st->m = m;
    if (!s) s = read_head(st, &f, path, "", 0);
    if (!s) s = hn_cls_objective_init(&st->obj, m, st->head, NULL);
    hn_safetensors_close(&f);
    if (s) state_free(st);
    else *state = st;
    return s;
}

const hn_cls_method hn_cls_head = {
    .name = "head",
    .about = "train a new classification head on the frozen model's pooled hidden states",
    .applies = head_applies,
    .train = head_train,
    .predict = cls_predict,
    .save = head_save,
    .load = head_load,
    .free = state_free,
    .n_trainable = cls_n_trainable,
    .default_epochs = 40, // epochs on cached pooled states are nearly free; 3 left the head under-trained
};

// ---- lora ----

static hn_status lora_applies(const hn_model *m) {
    if (m->hp.arch == HN_ARCH_BERT)
        return hn_fail(HN_ERR_UNSUPPORTED, "%s: LoRA classification on BERT is not written yet (PEFT names BERT's "
                       "modules bert.encoder.layer.N.attention.self.query, ...); use head or feature", m->path);
    return head_applies(m);
}

static hn_lora_config lora_config(const hn_cls_options *o) {
    hn_lora_config lc = hn_lora_default_config();
    if (o->lora_r > 0) lc.r = o->lora_r;
    lc.alpha = o->lora_alpha > 0 ? o->lora_alpha : 2.0f * (float)lc.r;
    lc.seed = o->seed + 1; // apart from the head's draw
    return lc;
}

static hn_status lora_train(hn_model *m, const hn_cls_data *train, const hn_cls_data *val, const hn_cls_options *o,
                            void **state) {
    *state = NULL;
    hn_status s = lora_applies(m);
    if (!s) s = check_data(train, o);
    hn_lora_config lc = lora_config(o);
    cls_state *st = NULL;
    if (!s) s = state_new(&st, m, train->n_classes, o->seed, &lc, o->max_len);
    if (!s) s = train_loop(st, train, val, o);
    if (s) state_free(st);
    else *state = st;
    return s;
}

// Rewrites adapter_config.json as PEFT writes a SEQ_CLS adapter.
static hn_status seq_cls_config(const char *dir) {
    char path[4096];
    snprintf(path, sizeof path, "%s/adapter_config.json", dir);
    json_error_t err;
    json_t *c = json_load_file(path, 0, &err);
    if (!c) return hn_fail(HN_ERR_FORMAT, "%s: %s (line %d)", path, err.text, err.line);
    json_object_set_new(c, "task_type", json_string("SEQ_CLS"));
    json_t *mts = json_array(); // PEFT's SEQ_CLS default: both names transformers gives a classification head
    json_array_append_new(mts, json_string("classifier"));
    json_array_append_new(mts, json_string("score"));
    json_object_set_new(c, "modules_to_save", mts);
    char *text = json_dumps(c, JSON_INDENT(2) | JSON_SORT_KEYS);
    json_decref(c);
    if (!text) return hn_fail(HN_ERR_NOMEM, "%s: cannot encode", path);
    hn_afile f;
    hn_status s = hn_afile_open(&f, path);
    if (!s) s = hn_afile_write(&f, text, strlen(text));
    if (!s) s = hn_afile_write(&f, "\n", 1);
    if (!s) s = hn_afile_commit(&f);
    else hn_afile_abort(&f);
    free(text);
    return s;
}

static hn_status lora_save(const hn_model *m, void *state, const char *dir) {
    cls_state *st = state;
    hn_adapter *a;
    hn_status s = hn_lora_export(st->lora, &a);
    if (s) return s;
    s = hn_peft_write(a, dir, m->hp.n_head, m->hp.n_head_kv); // the LoRA tensors, B rows back in HF order
    hn_adapter_destroy(a);
    if (s) return s;
    // The same file with the head added under PEFT's saved name.
    char path[4096];
    snprintf(path, sizeof path, "%s/adapter_model.safetensors", dir);
    hn_safetensors f;
    if ((s = hn_safetensors_open(&f, path))) return s;
    hn_safetensors_writer *w = hn_safetensors_writer_create();
    s = w ? HN_OK : HN_ERR_NOMEM;
    for (size_t i = 0; i < f.n_tensors && !s; i++)
        s = hn_safetensors_writer_add(w, f.names[i], f.tensors[i].type, f.tensors[i].ndim, f.tensors[i].ne,
                                      f.tensors[i].data);
    for (size_t i = 0; i < f.n_meta && !s; i++) s = hn_safetensors_writer_set_meta(w, f.meta_keys[i], f.meta_vals[i]);
    if (!s) s = add_head(w, st, PEFT_PREFIX);
    if (!s) s = hn_safetensors_writer_write(w, path);
    hn_safetensors_writer_destroy(w);
    hn_safetensors_close(&f);
    if (!s) s = seq_cls_config(dir);
    return s;
}

// LoRA's config from adapter_config.json (what lora_save wrote: r, lora_alpha, use_rslora, target_modules).
static hn_status read_lora_config(const char *dir, hn_lora_config *lc) {
    char path[4096];
    snprintf(path, sizeof path, "%s/adapter_config.json", dir);
    json_error_t err;
    json_t *c = json_load_file(path, 0, &err);
    if (!c) return hn_fail(HN_ERR_FORMAT, "%s: %s (line %d)", path, err.text, err.line);
    *lc = hn_lora_default_config();
    hn_status s = HN_OK;
    json_t *tt = json_object_get(c, "task_type"), *r = json_object_get(c, "r"), *al = json_object_get(c, "lora_alpha");
    json_t *rs = json_object_get(c, "use_rslora"), *tm = json_object_get(c, "target_modules");
    if (!json_is_string(tt) || strcmp(json_string_value(tt), "SEQ_CLS"))
        s = hn_fail(HN_ERR_FORMAT, "%s: 'task_type': expected \"SEQ_CLS\"", path);
    else if (!json_is_integer(r) || json_integer_value(r) < 1)
        s = hn_fail(HN_ERR_FORMAT, "%s: 'r': expected a positive integer", path);
    else if (!json_is_number(al))
        s = hn_fail(HN_ERR_FORMAT, "%s: 'lora_alpha': expected a number", path);
    else if (!json_is_array(tm) || !json_array_size(tm) || json_array_size(tm) > 16)
        s = hn_fail(HN_ERR_FORMAT, "%s: 'target_modules': expected a list of 1 to 16 module names", path);
    if (!s) {
        lc->r = (int)json_integer_value(r);
        lc->alpha = (float)json_number_value(al);
        lc->use_rslora = json_is_true(rs);
        const char *names[16];
        for (size_t i = 0; i < json_array_size(tm) && !s; i++)
            if (!(names[i] = json_string_value(json_array_get(tm, i))))
                s = hn_fail(HN_ERR_FORMAT, "%s: 'target_modules' item %zu: expected a string", path, i);
        if (!s && (s = hn_lora_parse_targets(names, (int)json_array_size(tm), &lc->targets))) {
            char msg[512];
            snprintf(msg, sizeof msg, "%s", hn_errmsg());
            s = hn_fail(s, "%s: %s", path, msg);
        }
    }
    json_decref(c);
    return s;
}

// Copies LoRA's A and B (B of q/k permuted back to GGUF's row order) from the file into the attached modules.
static hn_status read_lora_tensors(cls_state *st, const hn_safetensors *f, const char *path) {
    const hn_model *m = st->m;
    int n_lora = 0;
    for (size_t i = 0; i < f->n_tensors; i++) n_lora += strstr(f->names[i], ".lora_A.") || strstr(f->names[i], ".lora_B.");
    hn_param_list *pl = hn_lora_params(st->lora);
    if (n_lora != pl->n)
        return hn_fail(HN_ERR_FORMAT, "%s: %d LoRA tensors, expected %d for the model and adapter_config.json", path,
                       n_lora, pl->n);
    for (int layer = 0; layer < m->hp.n_layer; layer++)
        for (int p = 0; p < HN_PROJ_COUNT; p++) {
            hn_param *A, *B;
            if (!hn_lora_module_params(st->lora, layer, (hn_proj)p, &A, &B)) continue;
            hn_param *ab[2] = {A, B};
            for (int k = 0; k < 2; k++) {
                const hn_tensor *t = hn_safetensors_tensor(f, ab[k]->name);
                if (!t) return hn_fail(HN_ERR_FORMAT, "%s: no tensor '%s'", path, ab[k]->name);
                if (t->type != HN_F32 || t->ndim != 2 || t->ne[0] != ab[k]->ne[0] || t->ne[1] != ab[k]->ne[1])
                    return hn_fail(HN_ERR_FORMAT, "%s: '%s' is not F32 [%lld, %lld]", path, ab[k]->name,
                                   (long long)ab[k]->ne[1], (long long)ab[k]->ne[0]);
                int heads = k == 1 ? (p == HN_PROJ_Q ? m->hp.n_head : p == HN_PROJ_K ? m->hp.n_head_kv : 0) : 0;
                if (heads) hn_hf_permute_rows(ab[k]->data, t->data, ab[k]->ne[1], ab[k]->ne[0], heads, true);
                else memcpy(ab[k]->data, t->data, (size_t)ab[k]->n * sizeof(float));
            }
        }
    return HN_OK;
}

static hn_status lora_load(hn_model *m, const char *dir, void **state) {
    *state = NULL;
    hn_status s = lora_applies(m);
    hn_lora_config lc;
    if (!s) s = read_lora_config(dir, &lc);
    if (s) return s;
    char path[4096];
    snprintf(path, sizeof path, "%s/adapter_model.safetensors", dir);
    hn_safetensors f;
    if ((s = hn_safetensors_open(&f, path))) return s;
    cls_state *st = hn_calloc(1, sizeof *st, "classification state");
    if (!st) s = HN_ERR_NOMEM;
    else st->m = m;
    if (!s) s = read_head(st, &f, path, PEFT_PREFIX, 0);
    if (!s) s = hn_lora_attach_new(&st->lora, m, &lc);
    if (!s) s = read_lora_tensors(st, &f, path);
    if (!s) s = hn_cls_objective_init(&st->obj, m, st->head, hn_lora_params(st->lora));
    hn_safetensors_close(&f);
    if (s) state_free(st);
    else *state = st;
    return s;
}

const hn_cls_method hn_cls_lora = {
    .name = "lora",
    .about = "LoRA on every linear layer + a classification head trained fully (PEFT's SEQ_CLS layout)",
    .applies = lora_applies,
    .train = lora_train,
    .predict = cls_predict,
    .save = lora_save,
    .load = lora_load,
    .free = state_free,
    .n_trainable = cls_n_trainable,
};
