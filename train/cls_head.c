// train/cls_head.c — what the classification methods that train through the model share (train/cls_impl.h), and
// the head method: the body frozen, only the head (adapt/cls_head.h) trains. The body's pooled states never change,
// so they are computed once and the head is trained on them (the same gradients as through the whole graph).
// The loop: AdamW (train/optim.h) over batches of a seeded shuffle for o->epochs at o->lr with transformers' default
// schedule (linear decay, no warmup) and gradient clipping at 1.0; deterministic for a seed and a thread count.
// Not train/trainer.c's loop: its batches are the LM's (token masks, no labels).
//
// The head method's file in the run directory: head.safetensors: "score.weight" (n_classes, n_embd) —
// "classifier.weight" + ".bias" for BERT — the names of transformers' *ForSequenceClassification head.
#define _GNU_SOURCE
#include "train/cls_impl.h"
#include "model/embed.h"
#include "train/optim.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define PRED_BATCH 16

void hn_cls_tokens_free(hn_cls_tokens *ts) {
    for (int i = 0; ts->ids && i < ts->n; i++) free(ts->ids[i]);
    free(ts->ids);
    free(ts->lens);
    memset(ts, 0, sizeof *ts);
}

// Texts framed as the model reads a sequence: [CLS] text [SEP] for BERT (cut keeping [SEP]), BOS + text for a
// decoder that wants one (cut at the end); at most max_len tokens (and the model's positions).
hn_status hn_cls_tokenize(const hn_model *m, const char *const *texts, int n, int max_len, hn_cls_tokens *ts) {
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
        hn_cls_tokens_free(ts);
        return HN_ERR_NOMEM;
    }
    ts->n = n;
    for (int i = 0; i < n; i++) {
        int32_t *t;
        int64_t len;
        hn_status s = hn_tokenizer_encode(m->tok, texts[i], -1, enc ? 0 : HN_TOK_ADD_BOS, &t, &len);
        if (s) {
            hn_cls_tokens_free(ts);
            return s;
        }
        int64_t keep = enc ? (len + 2 < max ? len + 2 : max) : (len < max ? len : max);
        if (keep == 0) {
            free(t);
            hn_cls_tokens_free(ts);
            return hn_fail(HN_ERR_ARG, "classification: text %d (\"%.40s\") gives no tokens", i, texts[i]);
        }
        ts->ids[i] = hn_calloc((size_t)keep, sizeof *t, "tokens");
        if (!ts->ids[i]) {
            free(t);
            hn_cls_tokens_free(ts);
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
hn_cls_batch hn_cls_make_batch(const hn_cls_tokens *ts, const int *idx, int B, const int32_t *all_labels, int32_t *buf,
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
int *hn_cls_length_order(const hn_cls_tokens *ts) {
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

void hn_cls_state_free(void *state) {
    hn_cls_state *st = state;
    if (!st) return;
    hn_cls_objective_deinit(&st->obj);
    if (st->body && st->body_free) st->body_free(st->body);
    hn_cls_head_destroy(st->head);
    free(st);
}

hn_status hn_cls_state_new(hn_cls_state **out, hn_model *m, int n_classes, uint64_t seed, int max_len) {
    *out = NULL;
    hn_cls_state *st = hn_calloc(1, sizeof *st, "classification state");
    if (!st) return HN_ERR_NOMEM;
    st->m = m, st->max_len = max_len;
    hn_status s = n_classes > 0 ? hn_cls_head_new(&st->head, m, n_classes, seed) : HN_OK; // 0: read_head makes it
    if (s) {
        hn_cls_state_free(st);
        return s;
    }
    *out = st;
    return HN_OK;
}

hn_status hn_cls_state_ready(hn_cls_state *st) {
    return hn_cls_objective_init(&st->obj, st->m, st->head, st->body_params);
}

hn_status hn_cls_check_data(const hn_cls_data *d, const hn_cls_options *o) {
    if (!d || d->n < 1) return hn_fail(HN_ERR_ARG, "classification: no training examples");
    if (d->n_classes < 2)
        return hn_fail(HN_ERR_ARG, "%s: one class only, nothing to classify", d->source ? d->source : "data");
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

static hn_status predict_tokens(hn_cls_state *st, const hn_cls_tokens *ts, float *probs);

// The training loop shared by both methods. Head only: features once, then the head on them.
// The body's pooled states of every example (no tape), in batches of similar lengths; progress in texts.
static hn_status pool_all(hn_cls_state *st, const hn_cls_tokens *ts, float *feats, const hn_cls_options *o) {
    const int n = ts->n, C = st->m->hp.n_embd;
    float *xb = hn_calloc((size_t)PRED_BATCH * C, sizeof *xb, "pooled batch");
    int *by_len = xb ? hn_cls_length_order(ts) : NULL;
    int32_t *fb = by_len ? hn_calloc((size_t)PRED_BATCH * ts->max_T, sizeof *fb, "batch") : NULL;
    hn_status s = fb ? HN_OK : HN_ERR_NOMEM;
    for (int b0 = 0; b0 < n && !s; b0 += PRED_BATCH) {
        int B = n - b0 < PRED_BATCH ? n - b0 : PRED_BATCH;
        int32_t fl[PRED_BATCH];
        hn_cls_batch cb = hn_cls_make_batch(ts, by_len + b0, B, NULL, fb, fl, NULL);
        s = hn_cls_objective_pooled(&st->obj, &cb, xb);
        for (int b = 0; b < B && !s; b++)
            memcpy(feats + (size_t)by_len[b0 + b] * C, xb + (size_t)b * C, (size_t)C * sizeof *xb);
        if (!s) hn_cls_progress(o, b0 + B, n); // texts pooled, before the optimizer's steps
    }
    free(fb), free(by_len), free(xb);
    return s;
}

// One phase of training: AdamW over params for `epochs` at peak lr (linear decay over the phase's steps), batches
// of a shuffle seeded with `seed`. feats non-NULL: the head alone on those pooled states; else the whole model on
// the tokens. main: the phase whose steps the method's on_step and the progress count.
typedef struct {
    const hn_param_list *params;
    const float *feats;
    int epochs;
    float lr;
    uint64_t seed;
    bool main;
} phase;

static hn_status run_phase(hn_cls_state *st, const hn_cls_data *d, const hn_cls_tokens *ts, const phase *ph,
                           const hn_cls_options *o) {
    const int n = d->n, C = st->m->hp.n_embd, bs = o->batch < n ? o->batch : n;
    int *order = hn_calloc((size_t)n, sizeof *order, "order");
    int32_t *buf = hn_calloc((size_t)bs * ts->max_T, sizeof *buf, "batch");
    int32_t *blens = hn_calloc((size_t)bs, sizeof *blens, "batch");
    int32_t *blabels = hn_calloc((size_t)bs, sizeof *blabels, "batch");
    float *xb = ph->feats ? hn_calloc((size_t)bs * C, sizeof *xb, "pooled batch") : NULL;
    hn_adamw opt = {0};
    hn_status s = order && buf && blens && blabels && (xb || !ph->feats) ? HN_OK : HN_ERR_NOMEM;
    hn_adamw_params ap = hn_adamw_default_params();
    ap.weight_decay = o->weight_decay;
    if (!s) s = hn_adamw_init(&opt, ph->params, &ap);
    int64_t per_epoch = (n + bs - 1) / bs;
    hn_lr_schedule sch = {.kind = HN_SCHED_LINEAR, .peak = ph->lr, .warmup = 0, .total = per_epoch * ph->epochs};
    hn_rng rng;
    hn_rng_seed(&rng, ph->seed);
    for (int i = 0; i < n; i++) order[i] = i;
    int64_t step = 0;
    for (int ep = 0; ep < ph->epochs && !s; ep++) {
        for (int i = n - 1; i > 0; i--) { // Fisher-Yates
            int j = (int)(hn_rng_u64(&rng) % (uint64_t)(i + 1)), t = order[i];
            order[i] = order[j], order[j] = t;
        }
        double loss = 0;
        int correct = 0;
        for (int b0 = 0; b0 < n && !s; b0 += bs, step++) {
            int B = n - b0 < bs ? n - b0 : bs;
            hn_param_zero_grads(ph->params);
            if (ph->feats) {
                for (int b = 0; b < B; b++) {
                    memcpy(xb + (size_t)b * C, ph->feats + (size_t)order[b0 + b] * C, (size_t)C * sizeof *xb);
                    blabels[b] = d->labels[order[b0 + b]];
                }
                s = hn_cls_objective_head_grad(&st->obj, xb, blabels, B, 1.0f / B, &loss, &correct, NULL);
            } else {
                hn_cls_batch cb = hn_cls_make_batch(ts, order + b0, B, d->labels, buf, blens, blabels);
                s = hn_cls_objective_loss_grad(&st->obj, &cb, 1.0f / B, &loss, &correct);
            }
            if (s) break;
            double norm = hn_grad_clip(ph->params, 1.0);
            if (!isfinite(norm)) {
                s = hn_fail(HN_ERR_RANGE, "classification: the gradient is not finite at step %lld (lr %g too high?)",
                            (long long)step + 1, (double)ph->lr);
                break;
            }
            hn_adamw_step(&opt, hn_lr_at(&sch, step));
            if (ph->main && st->on_step) st->on_step(st, step + 1, o);
            if (ph->main) hn_cls_progress(o, step + 1, sch.total);
        }
        if (!s)
            hn_info("%sepoch %d/%d: loss %.4f, train accuracy %.3f", ph->main ? "" : "head first: ", ep + 1,
                    ph->epochs, loss / n, (double)correct / n);
    }
    hn_adamw_deinit(&opt);
    free(order), free(buf), free(blens), free(blabels), free(xb);
    return s;
}

// The validation accuracy, for the log.
static hn_status log_validation(hn_cls_state *st, const hn_cls_data *val, int K) {
    hn_cls_tokens vs;
    float *p = NULL;
    hn_status s = hn_cls_tokenize(st->m, (const char *const *)val->texts, val->n, st->max_len, &vs);
    if (s) return s;
    p = hn_calloc((size_t)val->n * K, sizeof *p, "probabilities");
    s = p ? predict_tokens(st, &vs, p) : HN_ERR_NOMEM;
    int hit = 0;
    for (int i = 0; i < val->n && !s; i++) {
        int arg = 0;
        for (int k = 1; k < K; k++)
            if (p[(size_t)i * K + k] > p[(size_t)i * K + arg]) arg = k;
        hit += arg == val->labels[i];
    }
    if (!s) hn_info("validation accuracy %.3f (%d of %d)", (double)hit / val->n, hit, val->n);
    hn_cls_tokens_free(&vs);
    free(p);
    return s;
}

hn_status hn_cls_train_loop(hn_cls_state *st, const hn_cls_data *d, const hn_cls_data *val, const hn_cls_options *o) {
    hn_cls_tokens ts;
    hn_status s = hn_cls_tokenize(st->m, (const char *const *)d->texts, d->n, st->max_len, &ts);
    if (s) return s;
    bool frozen = !st->body_params, head_first = !frozen && !o->no_head_first;
    float *feats = NULL;
    if (frozen || head_first) { // the body's pooled states, once (the body is still the base model's)
        feats = hn_calloc((size_t)d->n * st->m->hp.n_embd, sizeof *feats, "pooled states");
        s = feats ? pool_all(st, &ts, feats, o) : HN_ERR_NOMEM;
    }
    const uint64_t seed = o->seed ^ 0x636c73ULL; // the shuffle's stream, apart from the head's initialisation
    if (!s && frozen) s = run_phase(st, d, &ts, &(phase){&st->obj.params, feats, o->epochs, o->lr, seed, true}, o);
    if (!s && head_first) // the head fitted on the frozen model first, as the head method fits it
        s = run_phase(st, d, &ts,
                      &(phase){hn_cls_head_params(st->head), feats, HN_CLS_HEAD_EPOCHS, HN_CLS_HEAD_LR,
                               seed ^ 0x6c70ULL, false}, o);
    if (!s && !frozen) s = run_phase(st, d, &ts, &(phase){&st->obj.params, NULL, o->epochs, o->lr, seed, true}, o);
    if (!s && val && val->n > 0) s = log_validation(st, val, d->n_classes);
    free(feats);
    hn_cls_tokens_free(&ts);
    return s;
}

static hn_status predict_tokens(hn_cls_state *st, const hn_cls_tokens *ts, float *probs) {
    const int K = st->head->n_classes;
    int32_t *buf = hn_calloc((size_t)PRED_BATCH * (ts->max_T ? ts->max_T : 1), sizeof *buf, "batch");
    int *by_len = buf ? hn_cls_length_order(ts) : NULL;
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
        hn_cls_batch cb = hn_cls_make_batch(ts, by_len + b0, B, NULL, buf, lens, NULL);
        s = hn_cls_objective_probs(&st->obj, &cb, tmp);
        for (int b = 0; b < B && !s; b++)
            memcpy(probs + (size_t)by_len[b0 + b] * K, tmp + (size_t)b * K, (size_t)K * sizeof *tmp);
    }
    if (tmp != pb) free(tmp);
    free(buf);
    free(by_len);
    return s;
}

hn_status hn_cls_state_predict(hn_model *m, void *state, const char *const *texts, int n, float *probs) {
    hn_cls_state *st = state;
    if (st->m != m) return hn_fail(HN_ERR_ARG, "classification: predict with another model than the one trained");
    hn_cls_tokens ts;
    hn_status s = hn_cls_tokenize(m, texts, n, st->max_len, &ts);
    if (!s) s = predict_tokens(st, &ts, probs);
    hn_cls_tokens_free(&ts);
    return s;
}

int64_t hn_cls_state_n_trainable(void *state) {
    hn_cls_state *st = state;
    int64_t n = hn_cls_head_n_params(st->head);
    for (int i = 0; st->body_params && i < st->body_params->n; i++)
        n += st->body_params->items[i]->frozen ? 0 : st->body_params->items[i]->n;
    return n;
}

// ---- head ----

hn_status hn_cls_head_applies(const hn_model *m) {
    hn_pool p = hn_model_default_pool(m);
    if (p == HN_POOL_MAX)
        return hn_fail(HN_ERR_UNSUPPORTED, "%s pools by max; a trained head needs mean, cls or last", m->path);
    return HN_OK;
}

static hn_status head_train(hn_model *m, const hn_cls_data *train, const hn_cls_data *val, const hn_cls_options *o,
                            void **state) {
    *state = NULL;
    hn_status s = hn_cls_check_data(train, o);
    hn_cls_state *st = NULL;
    if (!s) s = hn_cls_state_new(&st, m, train->n_classes, o->seed, o->max_len);
    if (!s) s = hn_cls_state_ready(st);
    if (!s) s = hn_cls_train_loop(st, train, val, o);
    if (s) hn_cls_state_free(st);
    else *state = st;
    return s;
}

// Adds the head's tensors to w under prefix ("" or PEFT's "base_model.model."), and the token limit the texts were
// cut at (prediction after a load cuts them alike).
hn_status hn_cls_add_head(hn_safetensors_writer *w, const hn_cls_state *st, const char *prefix) {
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

hn_status hn_cls_head_save(const hn_model *m, void *state, const char *dir) {
    (void)m;
    hn_cls_state *st = state;
    hn_status s = hn_mkdir_p(dir);
    if (s) return s;
    hn_safetensors_writer *w = hn_safetensors_writer_create();
    if (!w) return HN_ERR_NOMEM;
    char path[4096];
    snprintf(path, sizeof path, "%s/head.safetensors", dir);
    s = hn_cls_add_head(w, st, "");
    if (!s) s = hn_safetensors_writer_set_meta(w, "format", "pt");
    if (!s) s = hn_safetensors_writer_write(w, path);
    hn_safetensors_writer_destroy(w);
    return s;
}

// Reads the head's tensors (prefix + "score.weight", ...) from an open file into a fresh head of st.
hn_status hn_cls_read_head(hn_cls_state *st, const hn_safetensors *f, const char *path, const char *prefix) {
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
    if (ml && (*end || v < 0 || v > 1 << 24))
        return hn_fail(HN_ERR_FORMAT, "%s: metadata hone.max_len '%.20s': expected a token count", path, ml);
    st->max_len = (int)v;
    hn_status s = hn_cls_head_new(&st->head, m, (int)w->ne[1], 0);
    if (s) return s;
    memcpy(st->head->W.data, w->data, (size_t)st->head->W.n * sizeof(float));
    if (b) memcpy(st->head->b.data, b->data, (size_t)st->head->b.n * sizeof(float));
    return HN_OK;
}

hn_status hn_cls_head_load(hn_cls_state *st, const char *dir) {
    char path[4096];
    snprintf(path, sizeof path, "%s/head.safetensors", dir);
    hn_safetensors f;
    hn_status s = hn_safetensors_open(&f, path);
    if (s) return s;
    s = hn_cls_read_head(st, &f, path, "");
    hn_safetensors_close(&f);
    return s;
}

static hn_status head_load(hn_model *m, const char *dir, void **state) {
    *state = NULL;
    hn_cls_state *st = NULL;
    hn_status s = hn_cls_state_new(&st, m, 0, 0, 0);
    if (!s) s = hn_cls_head_load(st, dir);
    if (!s) s = hn_cls_state_ready(st);
    if (s) hn_cls_state_free(st);
    else *state = st;
    return s;
}

const hn_cls_method hn_cls_head = {
    .name = "head",
    .about = "train a new classification head on the frozen model's pooled hidden states",
    .applies = hn_cls_head_applies,
    .train = head_train,
    .predict = hn_cls_state_predict,
    .save = hn_cls_head_save,
    .load = head_load,
    .free = hn_cls_state_free,
    .n_trainable = hn_cls_state_n_trainable,
    .default_epochs = HN_CLS_HEAD_EPOCHS, // epochs on pooled states computed once are nearly free; 3 under-trained
};

