// adapt/lora.h — LoRA (Hu et al. 2021) and rsLoRA (Kalajdzievski 2023) attached to a model's linear layers through
// the hn_linear attachment list (DESIGN.md section 10): for every targeted layer,
//     y = base(x) + scale * (dropout(x) · A^T) · B^T,   A (r, in), B (out, r), scale = alpha / r (alpha / sqrt(r))
// B's rows are in GGUF order, as in io/adapter.h (the model computes in that order). The trainable tensors are
// hn_params named as PEFT saves them over transformers' model classes: base_model.model.model.layers.N.self_attn.
// q_proj.lora_A.weight (Llama), ...transformer.h.N.attn.c_attn... (GPT-2), ...bert.encoder.layer.N.attention.self.
// query... (BertForSequenceClassification), ...distilbert.transformer.layer.N.attention.q_lin... (DistilBERT).
//
//   hn_lora_config cfg = hn_lora_default_config();
//   cfg.r = 16; cfg.alpha = 32; cfg.targets = HN_LORA_ALL_LINEAR;
//   hn_lora *lo;
//   if (hn_lora_attach_new(&lo, m, &cfg)) ...;         // PEFT's init: A Kaiming-uniform, B zero
//   ... train on hn_lora_params(lo) ...
//   hn_adapter *a;
//   hn_lora_export(lo, &a); hn_peft_write(a, "run/adapter", m->hp.n_head, m->hp.n_head_kv); hn_adapter_destroy(a);
//   hn_lora_destroy(lo);                                  // detaches from the model
#ifndef HN_LORA_H
#define HN_LORA_H

#include "io/adapter.h"
#include "model/model.h"
#include "tensor/param.h"

#define HN_LORA_ALL_LINEAR ((1u << HN_PROJ_COUNT) - 1)

typedef struct {
    int r;              // rank; default 8
    float alpha;        // default 16
    bool use_rslora;    // scale alpha / sqrt(r); default false
    float dropout;      // on the layer's input, training only; default 0
    unsigned targets;   // bit (1 << hn_proj) per targeted projection; default all linear layers
    uint64_t seed;      // A's initialisation; default 0
} hn_lora_config;

hn_lora_config hn_lora_default_config(void);
// Target names as PEFT's target_modules spells them to a mask: "q_proj", ... (GGUF's "attn_q", ... too), GPT-2's
// "c_attn", "c_proj", "c_fc", BERT's "query", "key", "value", "dense", "attention.output.dense",
// "intermediate.dense", "output.dense", DistilBERT's "q_lin", ..., "lin2", "all-linear", or full module paths (PEFT
// saves "all-linear" as the paths it found). A name selects what PEFT's suffix match selects ("dense": the three
// dense layers of a BERT block). HN_ERR_ARG naming an unknown name and the known ones; HN_ERR_UNSUPPORTED for BERT's
// pooler (bert.pooler.dense: hone keeps it frozen).
hn_status hn_lora_parse_targets(const char *const *names, int n, unsigned *mask);

typedef struct hn_lora hn_lora;

// Fresh LoRA on every targeted linear layer of every block: A ~ U(-1/sqrt(in), 1/sqrt(in)) (PEFT's
// kaiming_uniform_(a=sqrt(5))) drawn from cfg->seed, B = 0.
hn_status hn_lora_attach_new(hn_lora **out, hn_model *m, const hn_lora_config *cfg);
// LoRA from a loaded adapter (copied): checks that its modules fit the model's shapes.
hn_status hn_lora_attach(hn_lora **out, hn_model *m, const hn_adapter *a);
// Detaches from the model and frees everything.
void hn_lora_destroy(hn_lora *l);

// The trainable tensors (A and B of every module), borrowed until hn_lora_destroy.
hn_param_list *hn_lora_params(hn_lora *l);
// A module's tensors; false if (layer, proj) is not adapted.
bool hn_lora_module_params(hn_lora *l, int layer, hn_proj proj, hn_param **A, hn_param **B);
float hn_lora_scale(const hn_lora *l);
// false: the adapted layers compute the base alone until turned back on (dropout follows the context's
// training flag, not this).
void hn_lora_set_enabled(hn_lora *l, bool enabled);

// The current weights as an adapter (for hn_peft_write / hn_lora_gguf_write), with m's base record.
hn_status hn_lora_export(const hn_lora *l, hn_adapter **out);
// dense (out, in): the dequantized base weight on entry, W + scale * B · A on return; HN_ERR_ARG if (layer, proj)
// is not adapted.
hn_status hn_lora_merge(const hn_lora *l, int layer, hn_proj proj, float *dense);

#endif
