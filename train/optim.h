// train/optim.h — the optimizer side of a training step: AdamW, the learning-rate schedule, global-norm clipping.
//
//   hn_adamw opt;
//   hn_adamw_params ap = hn_adamw_default_params();      // torch.optim.AdamW's defaults; lr set per step
//   hn_adamw_init(&opt, obj.params, &ap);
//   hn_lr_schedule sch = {.kind = HN_SCHED_COSINE, .peak = 2e-4, .warmup = 10, .total = 100};
//   for (int64_t step = 0; step < sch.total; step++) {
//       hn_param_zero_grads(obj.params);
//       ... loss_grad on the step's micro-batches ...
//       double norm = hn_grad_clip(obj.params, 1.0);      // the norm before clipping
//       hn_adamw_step(&opt, hn_lr_at(&sch, step));
//   }
//   hn_adamw_deinit(&opt);
//
// AdamW is torch.optim.AdamW (single-tensor path, amsgrad off), step by step in fp32 as torch computes it:
//   t += 1;  p *= 1 - lr * wd;  m += (1 - b1) (g - m);  v = b2 v + (1 - b2) g^2;
//   p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
// (Loshchilov & Hutter, "Decoupled Weight Decay Regularization", algorithm 2 with torch's placement of eps.)
// A param with no_decay gets no weight decay; a frozen one is skipped (its moments kept). Every element is updated
// on its own, so the result does not depend on the thread count.
#ifndef HN_OPTIM_H
#define HN_OPTIM_H

#include "train/config.h"
#include "train/objective.h"

typedef struct {
    double beta1, beta2, eps, weight_decay;
} hn_adamw_params;

hn_adamw_params hn_adamw_default_params(void); // 0.9, 0.999, 1e-8, 0.01 (torch's)

typedef struct {
    hn_adamw_params p;
    const hn_param_list *params; // borrowed; the list must not change while the optimizer lives
    float *m, *v;                // (n_total) first and second moments, params laid end to end in list order
    int64_t *off;                // (params->n + 1) where each param starts in m and v
    int64_t n_total;
    int64_t t;                   // updates done (bias correction)
} hn_adamw;

hn_status hn_adamw_init(hn_adamw *o, const hn_param_list *params, const hn_adamw_params *p);
void hn_adamw_deinit(hn_adamw *o);
// One update of every param from its grad, with learning rate lr.
void hn_adamw_step(hn_adamw *o, double lr);

// The global L2 norm of all grads (a double sum in fixed-size blocks, so it does not depend on the thread count).
// With max_norm > 0 and a norm above it, every grad is scaled by max_norm / (norm + 1e-6) (torch's
// clip_grad_norm_). Returns the norm before clipping (inf or nan when a grad is not finite; then nothing is scaled).
double hn_grad_clip(const hn_param_list *params, double max_norm);

// Learning-rate schedules as transformers' get_{cosine,linear,constant}_schedule_with_warmup: the lr of the update
// made after `step` earlier updates (0-based) is peak * f(step) with
//   step < warmup:  f = step / max(1, warmup)                         (so the first update of a warmup has lr 0)
//   after:          cosine    max(0, 0.5 (1 + cos(pi * q)))  q = (step - warmup) / max(1, total - warmup)
//                   linear    max(0, (total - step) / max(1, total - warmup))
//                   constant  1
typedef struct {
    hn_lr_sched kind;
    double peak;
    int64_t warmup, total;
} hn_lr_schedule;

double hn_lr_at(const hn_lr_schedule *s, int64_t step);
// warmup_steps when > 0, else ceil(warmup_ratio * total) (transformers' TrainingArguments.get_warmup_steps).
int64_t hn_warmup_steps(int warmup_steps, double warmup_ratio, int64_t total);

#endif
