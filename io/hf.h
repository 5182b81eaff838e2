// io/hf.h — a Hugging Face Llama checkpoint directory (config.json + model.safetensors, or shards listed in
// model.safetensors.index.json) presented as a GGUF view, so the model loader runs on it unchanged.
//
// config.json keys become llama.* metadata; tensor names go through one table (model.layers.N.self_attn.q_proj.weight
// -> blk.N.attn_q.weight, ...); q_proj and k_proj rows are permuted into GGUF's rotary layout (FORMATS.md section 3)
// as owned fp32 copies, 1-D tensors (norms, biases) become owned fp32, every other weight stays mapped in its file
// dtype (F32, F16 or BF16). No tokenizer is read (tokenizer.json is not supported yet).
//
//   hn_gguf g;
//   if (hn_hf_is_dir(path) && hn_hf_open(&g, path)) return fail(hn_errmsg());
//   const hn_tensor *q = hn_gguf_tensor(&g, "blk.0.attn_q.weight");   // GGUF row order
//   hn_gguf_close(&g);
#ifndef HN_HF_H
#define HN_HF_H

#include "io/gguf.h"

bool hn_hf_is_dir(const char *path); // true if path is a directory
hn_status hn_hf_open(hn_gguf *g, const char *dir);

// The one name table, both ways. A module kind is the last part of an HF linear layer's path ("q_proj") or the
// middle of a GGUF name ("attn_q"); NULL if unknown. hone knows q, k, v, o, gate, up, down.
const char *hn_hf_kind_to_gguf(const char *hf_kind);
const char *hn_hf_kind_from_gguf(const char *gguf_kind);
// Full tensor names: "model.layers.3.mlp.up_proj.weight" <-> "blk.3.ffn_up.weight". false if not in the table or
// the result does not fit in cap bytes.
bool hn_hf_name_to_gguf(const char *hf, char *out, size_t cap);
bool hn_hf_name_from_gguf(const char *gguf, char *out, size_t cap);

// Rows of a q_proj / k_proj matrix (or of a LoRA B, whose rows are the same output features) between HF order and
// GGUF order: rows = n_head * head_dim (head_dim even), each row `cols` floats. dst and src must not overlap.
void hn_hf_permute_rows(float *dst, const float *src, int64_t rows, int64_t cols, int n_head, bool to_gguf);

#endif
