// adapt/cls_head.h — a sequence-classification head on a model's pooled hidden states: logits (B, n_classes) =
// pool(h) · W^T (+ b), the head transformers puts on a base model (LlamaForSequenceClassification's `score`: no
// bias, on the last valid token; BertForSequenceClassification's `classifier`: with a bias). W and b are trainable hn_params; the forward is built from tensor/grad.h's ops, so gradients reach W, b,
// and through the pooling whatever is trainable in the body (LoRA, ...).
//
// What an encoder's head reads (hn_cls_head_uses_pooler):
// - a BERT with a pooler (pooler.dense, the model's `cls` tensors; frozen, part of the base) whose pooling is
//   [CLS] or not stated (a plain BERT: no sentence-transformers 1_Pooling, no bert.pooling_type): the pooler's
//   output tanh(dense(h[CLS])), as BertForSequenceClassification computes logits = classifier(tanh(dense(h[CLS]))),
//   so that a PEFT SEQ_CLS adapter gives transformers' logits;
// - otherwise the model's own sentence pooling (mean or [CLS], no pooler): a sentence-transformers encoder that pools
//   by mean (all-MiniLM-L6-v2, whose checkpoint keeps a pooler it never used) is classified from the embedding it was
//   trained to give. Such a head is not what transformers' BertForSequenceClassification computes over the same
//   base (it would read the pooler); nor is a DistilBERT's (DistilBertForSequenceClassification has a
//   pre_classifier + ReLU that a base checkpoint lacks).
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
    const hn_linear *pooler; // BERT's pooler (the model's, frozen) applied after the pooling, then tanh; NULL: none
    hn_param W, b;       // W (n_classes, n_embd) named "<prefix>.weight"; b (n_classes) "<prefix>.bias" if has_bias
    hn_param_list params;
} hn_seq_head;

// The module's name in transformers' *ForSequenceClassification: "classifier" for BERT, "score" otherwise.
const char *hn_cls_head_module(const hn_model *m);
// A fresh head for m: W ~ N(0, 0.02) drawn from seed (transformers' initializer_range), b = 0; the pooling is the
// model's (hn_model_default_pool: last token for decoders, mean or [CLS] for encoders), or [CLS] through BERT's
// pooler (hn_cls_head_uses_pooler). HN_ERR_UNSUPPORTED for a pooling with no backward (max).
hn_status hn_cls_head_new(hn_seq_head **out, const hn_model *m, int n_classes, uint64_t seed);
void hn_cls_head_destroy(hn_seq_head *hd);
hn_param_list *hn_cls_head_params(hn_seq_head *hd);
int64_t hn_cls_head_n_params(const hn_seq_head *hd);

// Whether m's head reads BERT's pooler (the rule above).
bool hn_cls_head_uses_pooler(const hn_model *m);

// logits (B, n_classes) from pooled rows x (B, n_embd).
hn_var *hn_cls_head_logits(hn_ctx *c, hn_seq_head *hd, hn_var *x);
// The head's input (B, n_embd) from the hidden states h (B*T, n_embd) of a right-padded batch: the pooling, then
// the pooler and tanh where the head has one.
hn_var *hn_cls_head_pool(hn_ctx *c, hn_seq_head *hd, hn_var *h, int64_t B, int64_t T, const int32_t *lens);
// hn_cls_head_pool then logits.
hn_var *hn_cls_head_forward(hn_ctx *c, hn_seq_head *hd, hn_var *h, int64_t B, int64_t T, const int32_t *lens);
// y = tanh(x) with backward dx += dy * (1 - y^2) (the pooler's activation).
hn_var *hn_cls_op_tanh(hn_ctx *c, hn_var *x);

// Mean softmax cross-entropy of logits (B, K) against labels (B): *loss_sum += the sum of -log p[label], *correct
// += rows whose argmax is the label. With a tape, logits' gradient += scale * (softmax - onehot) (then
// hn_backward). probs (B, K) non-NULL receives the softmax.
hn_status hn_cls_softmax_ce(hn_ctx *c, hn_var *logits, const int32_t *labels, float scale, double *loss_sum,
                            int *correct, float *probs);

#endif
