// adapt/cls_head.c — the sequence-classification head (see cls_head.h).
#include "adapt/cls_head.h"
#include "model/embed.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *hn_cls_head_module(const hn_model *m) { return m->hp.arch == HN_ARCH_BERT ? "classifier" : "score"; }

// A pooling the model states: bert.pooling_type (llama.cpp's converter and io/hf_arch.c write it only from a
// sentence-transformers 1_Pooling/config.json). Without one, hn_model_default_pool falls back to mean for
// embeddings, while transformers classifies a plain BERT through its pooler.
bool hn_cls_head_uses_pooler(const hn_model *m) {
    if (m->hp.arch != HN_ARCH_BERT || !m->pooler.w) return false;
    hn_pool p = hn_model_default_pool(m);
    return p == HN_POOL_CLS || (p == HN_POOL_MEAN && !hn_gguf_find(&m->gguf, "bert.pooling_type"));
}

static hn_status init_param(hn_param *p, const char *name, int ndim, int64_t ne0, int64_t ne1, bool no_decay) {
    snprintf(p->name, sizeof p->name, "%s", name);
    p->ndim = ndim, p->ne[0] = ne0, p->ne[1] = ndim == 2 ? ne1 : 1;
    p->n = ne0 * p->ne[1];
    p->no_decay = no_decay;
    p->data = hn_calloc((size_t)p->n, sizeof(float), "classification head");
    p->grad = hn_calloc((size_t)p->n, sizeof(float), "classification head gradient");
    return p->data && p->grad ? HN_OK : HN_ERR_NOMEM;
}

// A standard normal draw (Box-Muller on the seeded generator; one of the pair is used, so the sequence is a
// simple function of the seed).
static float normal(hn_rng *r) {
    float u1 = hn_rng_f32(r), u2 = hn_rng_f32(r);
    return sqrtf(-2.0f * logf(1.0f - u1)) * cosf(6.28318530717958647692f * u2);
}

hn_status hn_cls_head_new(hn_seq_head **out, const hn_model *m, int n_classes, uint64_t seed) {
    *out = NULL;
    if (n_classes < 2) return hn_fail(HN_ERR_ARG, "classification head: %d classes, expected at least 2", n_classes);
    hn_pool pool = hn_model_default_pool(m);
    if (pool != HN_POOL_MEAN && pool != HN_POOL_CLS && pool != HN_POOL_LAST)
        return hn_fail(HN_ERR_UNSUPPORTED, "%s: the model pools by %s; a trained head needs mean, cls or last",
                       m->path, hn_pool_name(pool));
    hn_seq_head *hd = hn_calloc(1, sizeof *hd, "classification head");
    if (!hd) return HN_ERR_NOMEM;
    hd->n_classes = n_classes, hd->n_embd = m->hp.n_embd;
    hd->has_bias = m->hp.arch == HN_ARCH_BERT;
    hd->pool = pool == HN_POOL_MEAN ? HN_GPOOL_MEAN : pool == HN_POOL_CLS ? HN_GPOOL_FIRST : HN_GPOOL_LAST;
    if (hn_cls_head_uses_pooler(m)) hd->pool = HN_GPOOL_FIRST, hd->pooler = &m->pooler;
    const char *mod = hn_cls_head_module(m);
    char name[128];
    snprintf(name, sizeof name, "%s.weight", mod);
    hn_status s = init_param(&hd->W, name, 2, hd->n_embd, n_classes, false);
    if (!s) s = hn_param_list_add(&hd->params, &hd->W);
    if (!s && hd->has_bias) {
        snprintf(name, sizeof name, "%s.bias", mod);
        s = init_param(&hd->b, name, 1, n_classes, 1, true);
        if (!s) s = hn_param_list_add(&hd->params, &hd->b);
    }
    if (s) {
        hn_cls_head_destroy(hd);
        return s;
    }
    // transformers' _init_weights for a Linear: normal(0, initializer_range = 0.02), bias zero
    hn_rng rng;
    hn_rng_seed(&rng, seed);
    for (int64_t i = 0; i < hd->W.n; i++) hd->W.data[i] = 0.02f * normal(&rng);
    *out = hd;
    return HN_OK;
}

void hn_cls_head_destroy(hn_seq_head *hd) {
    if (!hd) return;
    free(hd->W.data), free(hd->W.grad), free(hd->b.data), free(hd->b.grad);
    hn_param_list_deinit(&hd->params);
    free(hd);
}

hn_param_list *hn_cls_head_params(hn_seq_head *hd) { return &hd->params; }
int64_t hn_cls_head_n_params(const hn_seq_head *hd) { return hd->W.n + (hd->has_bias ? hd->b.n : 0); }

hn_var *hn_cls_head_logits(hn_ctx *c, hn_seq_head *hd, hn_var *x) {
    if (x && x->cols != hd->n_embd)
        return hn_op_fail(c, hn_fail(HN_ERR_ARG, "classification head: input width %lld, expected %d",
                                     (long long)x->cols, hd->n_embd));
    hn_var *y = hn_op_matmul_f32(c, x, hd->W.data, hd->W.grad, hd->n_classes);
    return hd->has_bias ? hn_op_add_bias(c, y, hd->b.data, hd->b.grad) : y;
}

// ---- tanh: y = tanh(x), dx += dy * (1 - y^2) ----

typedef struct {
    hn_tape_rec rec;
    hn_var *x, *y;
} tanh_rec;

static void tanh_backward(hn_ctx *c, hn_tape_rec *rec) {
    tanh_rec *r = (tanh_rec *)rec;
    if (!r->y->g) return;
    float *gx = hn_var_grad(c, r->x);
    if (!gx) return;
    for (int64_t i = 0; i < r->y->rows * r->y->cols; i++) gx[i] += r->y->g[i] * (1.0f - r->y->d[i] * r->y->d[i]);
}

hn_var *hn_cls_op_tanh(hn_ctx *c, hn_var *x) {
    if (c->err || !x) return NULL;
    hn_var *y = hn_var_new(c, x->rows, x->cols);
    if (!y) return NULL;
    for (int64_t i = 0; i < x->rows * x->cols; i++) y->d[i] = tanhf(x->d[i]);
    y->rg = x->rg;
    if (hn_grad_on(c, y->rg)) {
        tanh_rec *r = hn_tape_push(c, tanh_backward, sizeof *r);
        if (!r) return hn_op_fail(c, HN_ERR_NOMEM);
        r->x = x, r->y = y;
    }
    return y;
}

hn_var *hn_cls_head_pool(hn_ctx *c, hn_seq_head *hd, hn_var *h, int64_t B, int64_t T, const int32_t *lens) {
    hn_var *x = hn_op_pool(c, h, B, T, lens, hd->pool); // (B, C)
    return hd->pooler ? hn_cls_op_tanh(c, hn_linear_forward(c, hd->pooler, x)) : x;
}

hn_var *hn_cls_head_forward(hn_ctx *c, hn_seq_head *hd, hn_var *h, int64_t B, int64_t T, const int32_t *lens) {
    return hn_cls_head_logits(c, hd, hn_cls_head_pool(c, hd, h, B, T, lens));
}

hn_status hn_cls_softmax_ce(hn_ctx *c, hn_var *logits, const int32_t *labels, float scale, double *loss_sum,
                            int *correct, float *probs) {
    if (!logits) return c->err ? c->err : hn_fail(HN_ERR_ARG, "classification loss: no logits");
    const int64_t B = logits->rows, K = logits->cols;
    for (int64_t b = 0; labels && b < B; b++)
        if (labels[b] < 0 || labels[b] >= K)
            return hn_fail(HN_ERR_ARG, "classification loss: label %d of row %lld outside [0, %lld)", (int)labels[b],
                           (long long)b, (long long)K);
    float *g = c->tape && logits->rg && labels ? hn_var_grad(c, logits) : NULL;
    if (c->tape && logits->rg && labels && !g) return c->err ? c->err : HN_ERR_NOMEM;
    for (int64_t b = 0; b < B; b++) {
        const float *z = logits->d + b * K;
        int64_t arg = 0;
        for (int64_t k = 1; k < K; k++)
            if (z[k] > z[arg]) arg = k;
        double sum = 0; // log-sum-exp around the largest logit
        for (int64_t k = 0; k < K; k++) sum += exp((double)z[k] - z[arg]);
        double lse = z[arg] + log(sum);
        for (int64_t k = 0; k < K; k++) {
            double p = exp((double)z[k] - lse);
            if (probs) probs[b * K + k] = (float)p;
            if (g) g[b * K + k] += scale * (float)(p - (labels[b] == k));
        }
        if (!labels) continue;
        if (loss_sum) *loss_sum += lse - z[labels[b]];
        if (correct) *correct += arg == labels[b];
    }
    return HN_OK;
}
