// adapt/prompt_tuning.h — prompt tuning (Lester et al. 2021; PEFT's PromptTuningConfig) as the method
// "prompt-tuning" (hn_method_prompt_tuning, adapt/method.h): n trainable virtual tokens (n, n_embd) put before every
// input at the input-embedding place (model.h's hn_model_ext), initialised as PEFT does: RANDOM keeps
// torch.nn.Embedding's N(0, 1); TEXT (hn_method_config.init_text) copies the embedding rows of the text's tokens,
// repeated or cut to n. The one trainable tensor is named prompt_encoder.embedding.weight (PEFT's parameter without
// the adapter name); saved as PEFT saves it: adapter_config.json + adapter_model.safetensors with the one tensor
// prompt_embeddings (n, n_embd). Cannot be merged.
//
// What P-tuning (adapt/p_tuning.c) shares with it, declared below: the prompt-learning config keys, and the saved
// directory of prompt_embeddings that both write and read (a P-tuning adapter saves its encoder's output).
#ifndef HN_PROMPT_TUNING_H
#define HN_PROMPT_TUNING_H

#include "adapt/method.h"

extern const hn_method_ops hn_method_prompt_tuning;

// Checks a virtual-token count for m: 1..4096, and short of a learned-position model's n_ctx_train.
hn_status hn_prompt_check_n(const hn_model *m, const char *method, int n);

// hn_method_peft_config's keys and PEFT's prompt-learning keys (PromptLearningConfig, with the values PEFT's
// _prepare_prompt_learning_config fills in): num_virtual_tokens n, token_dim n_embd, num_transformer_submodules 1,
// num_attention_heads, num_layers; modules_to_save null.
struct json_t *hn_prompt_peft_config(const hn_model *m, const char *peft_type, int n);

// Writes dir: cfg (consumed) as adapter_config.json and adapter_model.safetensors holding prompt (n, n_embd) as
// prompt_embeddings (F32) with the base record in its metadata.
hn_status hn_prompt_save(const hn_model *m, struct json_t *cfg, const float *prompt, int n, const char *dir);

// Reads a directory that hn_prompt_save (or PEFT) wrote for peft_type: the config checked (num_virtual_tokens,
// token_dim, num_transformer_submodules, task_type, peft_version) and returned in *cfg for the method's own keys;
// *prompt (n, n_embd), malloc'd, from prompt_embeddings (F32, F16 or BF16). One-line errors naming the file and
// the key or tensor.
hn_status hn_prompt_read(const hn_model *m, const char *dir, const char *peft_type, struct json_t **cfg,
                         float **prompt, int *n);

// x[0..n) ~ N(0, 1) (Box-Muller over r): torch.nn.Embedding's default init.
void hn_prompt_randn(hn_rng *r, float *x, int64_t n);

#endif
