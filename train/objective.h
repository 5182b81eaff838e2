// train/objective.h — what the trainer trains, seen from the trainer: a list of trainable tensors and a function
// that turns a batch into a loss and gradients. The trainer (optimizer, schedule, accumulation, clipping,
// checkpoints, metrics) never knows which model or method produced them (DESIGN.md section 10).
//
//   hn_objective obj = ...;                      // e.g. from hn_lm_objective_init (model + attached methods)
//   hn_param_zero_grads(obj.params);
//   double sum; int64_t n;
//   obj.loss_grad(obj.user, &batch, 1.0f / batch.n_loss, &sum, &n);   // grads += d(scale * sum)/dθ
#ifndef HN_OBJECTIVE_H
#define HN_OBJECTIVE_H

#include "tensor/param.h"
#include "train/data.h"

typedef struct {
    void *user;
    hn_param_list *params;
    // Forward + backward on batch b: returns in *loss_sum the sum of per-token cross-entropies over tokens with
    // mask == 1 and in *n_loss their count, and ADDS d(scale * loss_sum)/d(param) to every param's grad. The
    // trainer passes scale = 1 / (loss tokens of the whole accumulated step), so accumulation is exact.
    hn_status (*loss_grad)(void *user, const hn_batch *b, float scale, double *loss_sum, int64_t *n_loss);
    // Forward only (validation): same sums, no gradients, no tape.
    hn_status (*loss)(void *user, const hn_batch *b, double *loss_sum, int64_t *n_loss);
    // Train / eval mode (dropout on or off). May be NULL.
    void (*set_training)(void *user, bool training);
    // The randomness loss_grad draws (dropout), owned by the objective; the trainer saves and restores it in
    // checkpoints so that a resumed run draws what an uninterrupted one would. NULL: it draws none.
    hn_rng *rng;
} hn_objective;

#endif
