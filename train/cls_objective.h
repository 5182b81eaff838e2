// train/cls_objective.h — the classification loss of a model with a head (adapt/cls_head.h): a right-padded batch
// of token ids through hn_model_hidden_ex with the tape, pooled, the head's logits, softmax cross-entropy over the
// classes; the backward reaches the head and whatever method is attached to the model (LoRA). The trainable list is
// the head's params followed by the extra ones given (the method's).
//
// Not an hn_objective of train/objective.h: its loss_grad takes the LM's hn_batch (token masks, no labels), so the
// classification methods (train/cls_head.c) run their own small AdamW loop over hn_cls_batch.
//
//   hn_cls_objective o;
//   hn_cls_objective_init(&o, m, head, hn_lora_params(lora));     // extra may be NULL (body frozen)
//   hn_param_zero_grads(&o.params);
//   hn_cls_batch b = {.B = 8, .T = 20, .ids = ids, .lens = lens, .labels = labels};
//   hn_cls_objective_loss_grad(&o, &b, 1.0f / b.B, &loss_sum, &correct);   // grads += d(scale * loss_sum)
//   hn_adamw_step(...);
#ifndef HN_CLS_OBJECTIVE_H
#define HN_CLS_OBJECTIVE_H

#include "adapt/cls_head.h"

typedef struct {
    int B, T;
    const int32_t *ids;    // (B, T); padding positions may hold anything
    const int32_t *lens;   // (B) valid tokens of each row, 1..T
    const int32_t *labels; // (B) in [0, n_classes); NULL for prediction
} hn_cls_batch;

typedef struct {
    hn_model *m;
    hn_seq_head *head;     // borrowed
    hn_param_list params;  // head's + extra (borrowed pointers)
    hn_arena arena, scratch;
    hn_tape tape;
    float *rope;           // (rope_T, head_dim), NULL for BERT
    int rope_T;
    int32_t *safe;         // (cap) ids with padding replaced by a valid id
    size_t cap;
} hn_cls_objective;

hn_status hn_cls_objective_init(hn_cls_objective *o, hn_model *m, hn_seq_head *head, const hn_param_list *extra);
void hn_cls_objective_deinit(hn_cls_objective *o);
// Forward + backward: *loss_sum += sum of -log p(label), *correct += argmax hits; grads += d(scale * loss_sum).
hn_status hn_cls_objective_loss_grad(hn_cls_objective *o, const hn_cls_batch *b, float scale, double *loss_sum,
                                     int *correct);
// Forward only: probs (B, n_classes).
hn_status hn_cls_objective_probs(hn_cls_objective *o, const hn_cls_batch *b, float *probs);
// The pooled hidden states (B, n_embd) without a tape: with a frozen body they never change, so a head-only run
// computes them once and trains the head on them (hn_cls_objective_head_grad).
hn_status hn_cls_objective_pooled(hn_cls_objective *o, const hn_cls_batch *b, float *out);
// The head alone on pooled rows x (B, n_embd): as loss_grad (probs non-NULL: the softmax too).
hn_status hn_cls_objective_head_grad(hn_cls_objective *o, const float *x, const int32_t *labels, int B, float scale,
                                     double *loss_sum, int *correct, float *probs);

#endif
