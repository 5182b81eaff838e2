// train/lm_objective.h — the causal language-model objective (supervised fine-tuning): next-token cross-entropy
// over the tokens a batch's mask puts in the loss, through the model's shared forward (hn_model_hidden) and the
// fused chunked head + cross-entropy (hn_op_cross_entropy). It trains whatever params it is given (an attached
// method's, e.g. hn_lora_params); everything else is frozen.
//
//   hn_lora *lo; hn_lora_attach_new(&lo, m, &cfg);
//   hn_lm_params lp = hn_lm_default_params();
//   hn_objective obj;
//   if (hn_lm_objective_init(&obj, m, hn_lora_params(lo), &lp)) ...;
//   obj.loss_grad(obj.user, &batch, 1.0f / batch.n_loss, &sum, &n);  // grads += d(scale * sum)/dθ
//   hn_lm_objective_deinit(&obj);
#ifndef HN_LM_OBJECTIVE_H
#define HN_LM_OBJECTIVE_H

#include "model/model.h"
#include "train/objective.h"

typedef struct {
    bool checkpoint;  // recompute each block's forward during the backward (less memory); default false
    hn_mm_mode mm;    // how the step's products run; default HN_MM_FAST (OpenBLAS: ~2-4x faster, bitwise repeatable
                      // for a given thread count); HN_MM_EXACT is the thread-invariant fp32 reference (golden tests)
    uint64_t seed;    // dropout's rng; default 0
} hn_lm_params;

hn_lm_params hn_lm_default_params(void);

// params: the trainable tensors (borrowed; may be empty for evaluation only). Starts in training mode.
// Memory: the step's activations live in arenas kept between steps (hn_lm_objective_peak tells their size).
hn_status hn_lm_objective_init(hn_objective *obj, hn_model *m, hn_param_list *params, const hn_lm_params *p);
void hn_lm_objective_deinit(hn_objective *obj);
// Bytes the step arenas reserve (activations and their gradients).
size_t hn_lm_objective_arena_bytes(const hn_objective *obj);
// The dropout rng, for checkpoints (saved and restored by the trainer so that a resumed run draws the same masks).
hn_rng *hn_lm_objective_rng(hn_objective *obj);

#endif
