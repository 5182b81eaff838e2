// tensor/param.h — trainable tensors: fp32 values with their gradient, and lists of them. Methods in adapt/ own
// their params; the trainer (train/objective.h) and the optimizer see only the list.
#ifndef HN_PARAM_H
#define HN_PARAM_H

#include "base/base.h"

// A trainable tensor: fp32 values and their gradient, same shape. Owned by whoever created it (a method in adapt/,
// or the model for full fine-tuning); the optimizer keeps its own state per param, matched by position and name.
typedef struct {
    char name[128];  // PEFT-style or GGUF-style name, unique within a list; checkpoints match params by it
    float *data;     // (n)
    float *grad;     // (n), accumulated by loss_grad, zeroed by the trainer
    int64_t n;
    int ndim;
    int64_t ne[2];   // ne[0] innermost
    bool no_decay;   // excluded from weight decay (norms, biases)
    bool frozen;     // held still for now (gradual unfreezing): no gradient reaches it, the optimizer skips it
} hn_param;

typedef struct {
    hn_param **items; // borrowed pointers
    int n, cap;
} hn_param_list;

hn_status hn_param_list_add(hn_param_list *l, hn_param *p);
void hn_param_list_deinit(hn_param_list *l);
void hn_param_zero_grads(const hn_param_list *l);
int64_t hn_param_count(const hn_param_list *l); // total elements

#endif
