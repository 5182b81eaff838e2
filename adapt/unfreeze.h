// adapt/unfreeze.h — training the model's own weights: the last k blocks, gradual unfreezing, BitFit (Ben Zaken et
// al. 2022: the biases only), full fine-tuning. The chosen weights get trainable fp32 copies (dequantized from the
// file) that take the file's tensors' places in the model's slots (hn_model_weights); a copy carries its gradient
// buffer (hn_tensor.grad), so the model's own forward trains it without knowing why. The file's weights are never
// written; hn_unfreeze_destroy puts them back.
//
//   hn_unfreeze_rule r = {.from_layer = m->hp.n_layer - 2, .roles = HN_UNFREEZE_BLOCK};   // the last two blocks
//   hn_unfreeze *u;
//   if (hn_unfreeze_new(&u, m, &r)) ...;
//   ... train hn_unfreeze_params(u) (the copies, named as the model's tensors) ...
//   hn_unfreeze_save(u, "run/weights.safetensors");   // the trained tensors under the model's names
//   hn_unfreeze_destroy(u);                           // the model reads the file's weights again
//
// Gradual unfreezing (Howard & Ruder 2018) copies every block it will train at the start and holds the lower ones
// still (hn_param.frozen, and no gradient buffer in the model) until hn_unfreeze_set_from opens them.
#ifndef HN_UNFREEZE_H
#define HN_UNFREEZE_H

#include "model/model.h"
#include "tensor/param.h"

#define HN_UNFREEZE_ROLE(r) (1u << (r))
// A block's weights and norms (not embeddings, not the language-model head).
#define HN_UNFREEZE_BLOCK                                                                                              \
    (HN_UNFREEZE_ROLE(HN_W_LINEAR) | HN_UNFREEZE_ROLE(HN_W_BIAS) | HN_UNFREEZE_ROLE(HN_W_NORM) |                      \
     HN_UNFREEZE_ROLE(HN_W_NORM_BIAS))
#define HN_UNFREEZE_BIASES (HN_UNFREEZE_ROLE(HN_W_BIAS) | HN_UNFREEZE_ROLE(HN_W_NORM_BIAS))

// Which weights train: those acting at layer >= from_layer (hn_model_weights' layers: -1 the embeddings side,
// n_layer the final norm, the pooler and the head) whose role is in roles, but for the tensors in except (weights
// nothing reads in this use: a BERT's pooler under a head that pools by mean).
typedef struct {
    int from_layer;
    unsigned roles; // HN_UNFREEZE_ROLE bits
    const hn_tensor *except[4];
} hn_unfreeze_rule;

typedef struct hn_unfreeze hn_unfreeze;

// How many of m's weights the rule chooses (a tensor in two slots counts once).
int hn_unfreeze_count(hn_model *m, const hn_unfreeze_rule *r);
// Trainable copies of the chosen weights in the model's slots. HN_ERR_ARG when the rule chooses nothing.
hn_status hn_unfreeze_new(hn_unfreeze **out, hn_model *m, const hn_unfreeze_rule *r);
// The trained weights saved by hn_unfreeze_save, put in the model's slots for prediction (no gradient buffers).
// Errors name the file and the tensor: a name the model does not have, a shape that differs.
hn_status hn_unfreeze_load(hn_unfreeze **out, hn_model *m, const char *path);
void hn_unfreeze_destroy(hn_unfreeze *u); // puts the file's weights back in the model's slots

hn_param_list *hn_unfreeze_params(hn_unfreeze *u);
// Holds the copies of blocks below layer still (frozen, no gradient), lets those from layer on train. The weights
// outside the blocks follow their layer (-1 below every block, n_layer above).
void hn_unfreeze_set_from(hn_unfreeze *u, int layer);
// The values of the copies that are trainable now.
int64_t hn_unfreeze_n_trainable(const hn_unfreeze *u);
// Every copy that has trained (was unfrozen at some point) as F32 under the model's tensor names.
hn_status hn_unfreeze_save(const hn_unfreeze *u, const char *path);

#endif
