// adapt/cls_head.h — a sequence-classification head on a model's pooled hidden states: logits (B, n_classes) =
// pool(h) · W^T (+ b), the head transformers puts on a base model (LlamaForSequenceClassification's `score`: no
// bias, pooled on the last valid token; BertForSequenceClassification's `classifier`: with a bias, here on the
// model's own pooling: mean or [CLS]). W and b are trainable hn_params; the forward is built from tensor/grad.h's
// ops, so gradients reach W, b, and through the pooling whatever is trainable in the body (LoRA, ...).
// Unlike BertForSequenceClassification, an encoder's head reads the sentence embedding (the model's pooling) and
// not BERT's pooler (tanh(dense([CLS]))), which hone does not load: a head saved for BERT is not transformers'.
//
//   hn_seq_head *hd;
//   hn_cls_head_new(&hd, m, n_classes, seed);              // W ~ N(0, 0.02), b = 0 (transformers' _init_weights)
//   hn_var *h = hn_model_hidden_ex(&c, m, ids, lens, B, T, rope, false);
//   hn_var *logits = hn_cls_head_forward(&c, hd, h, B, T, lens);   // (B, n_classes)
//   ... hn_cls_head_params(hd) to the optimizer ...
//   hn_cls_head_destroy(hd);
#ifndef HN_CLS_HEAD_H
#define HN_CLS_HEAD_H

#include "model/model.h"
#include "tensor/grad_pool.h"
#include "tensor/param.h"

typedef struct {
    int n_classes, n_embd;
    bool has_bias;       // encoders (BERT's classifier has one); decoders' score has none
    hn_grad_pool pool;   // how a padded row becomes one vector
    hn_param W, b;       // W (n_classes, n_embd) named "<prefix>.weight"; b (n_classes) "<prefix>.bias" if has_bias
    hn_param_list params;
} hn_seq_head;

// The module's name in transformers' *ForSequenceClassification: "classifier" for BERT, "score" otherwise.
const char *hn_cls_head_module(const hn_model *m);
// A fresh head for m: W ~ N(0, 0.02) drawn from seed (transformers' initializer_range), b = 0; the pooling is the
// model's (hn_model_default_pool: last token for decoders, mean or [CLS] for encoders). HN_ERR_UNSUPPORTED for a
// pooling with no backward (max).
hn_status hn_cls_head_new(hn_seq_head **out, const hn_model *m, int n_classes, uint64_t seed);
void hn_cls_head_destroy(hn_seq_head *hd);
hn_param_list *hn_cls_head_params(hn_seq_head *hd);
int64_t hn_cls_head_n_params(const hn_seq_head *hd);

// logits (B, n_classes) from pooled rows x (B, n_embd).
hn_var *hn_cls_head_logits(hn_ctx *c, hn_seq_head *hd, hn_var *x);
// Pooling then logits, from the hidden states h (B*T, n_embd) of a right-padded batch.
hn_var *hn_cls_head_forward(hn_ctx *c, hn_seq_head *hd, hn_var *h, int64_t B, int64_t T, const int32_t *lens);

// Mean softmax cross-entropy of logits (B, K) against labels (B): *loss_sum += the sum of -log p[label], *correct
// += rows whose argmax is the label. With a tape, logits' gradient += scale * (softmax - onehot) (then
// hn_backward). probs (B, K) non-NULL receives the softmax.
hn_status hn_cls_softmax_ce(hn_ctx *c, hn_var *logits, const int32_t *labels, float scale, double *loss_sum,
                            int *correct, float *probs);

#endif
