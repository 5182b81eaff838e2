// io/hf.h — a Hugging Face checkpoint directory (config.json + model.safetensors, shards listed in
// model.safetensors.index.json, or pytorch_model.bin (+ .index.json) read by io/torch_bin.h) presented as a GGUF
// view, so the model loader runs on it unchanged. Architectures: llama, gpt2, bert, distilbert (config.json's
// model_type), each with one name table and config reader in io/hf_arch.c.
//
// config.json keys become <arch>.* metadata under llama.cpp's names; tensor names go through the architecture's
// table (model.layers.N.self_attn.q_proj.weight -> blk.N.attn_q.weight, h.N.attn.c_attn.weight ->
// blk.N.attn_qkv.weight, encoder.layer.N.attention.self.query.weight -> blk.N.attn_q.weight, ...). Llama q_proj and
// k_proj rows are permuted into GGUF's rotary layout (FORMATS.md section 3) as owned fp32 copies, GPT-2's Conv1D
// weights are transposed into (out, in) rows, 1-D tensors (norms, biases) become owned fp32, every other weight
// stays mapped in its file dtype (F32, F16 or BF16). The tokenizer is not part of the view (model/model.c reads it),
// but tokenizer_config.json's chat_template becomes tokenizer.chat_template and README.md's front-matter licence
// general.license.
//
//   hn_gguf g;
//   if (hn_hf_is_dir(path) && hn_hf_open(&g, path)) return fail(hn_errmsg());
//   const hn_tensor *q = hn_gguf_tensor(&g, "blk.0.attn_q.weight");   // GGUF row order
//   hn_gguf_close(&g);
#ifndef HN_HF_H
#define HN_HF_H

#include "io/gguf.h"

bool hn_hf_is_dir(const char *path); // true if path is a directory
bool hn_hf_has_tokenizer(const char *dir); // dir holds tokenizer.json or vocab.txt (io/tokenizer.h reads them)
hn_status hn_hf_open(hn_gguf *g, const char *dir);
// with_tokenizer: the view also carries the directory's tokenizer as tokenizer.ggml.* keys (hn_tokenizer_to_gguf),
// for writing the view out as a GGUF (hone convert). A directory without a tokenizer gives a warning, no keys.
hn_status hn_hf_open_ex(hn_gguf *g, const char *dir, bool with_tokenizer);

// Writes the model g (a GGUF file or a view) into the existing directory dir as Hugging Face lays it out:
// config.json (from the <arch>.* metadata; llama, gpt2 or bert), model.safetensors (fp32, the architecture's HF
// names, q/k rows un-permuted and Conv1D weights transposed back), README.md (licence front matter). The tokenizer
// files are hn_tokenizer_to_hf_dir's. All tensors are held in fp32 until the file is written.
hn_status hn_hf_export(const hn_gguf *g, const char *dir);

// The Llama name table, both ways. A module kind is the last part of an HF linear layer's path ("q_proj") or the
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
