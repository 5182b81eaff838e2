// io/adapter.h — a LoRA adapter in memory, independent of its file layout, and its two layouts on disk: a PEFT
// directory (adapter_config.json + adapter_model.safetensors, FORMATS.md 5.1-5.3) and a llama.cpp LoRA GGUF
// (FORMATS.md section 4).
//
// Every adapted linear layer of a Llama block has A (r, in) and B (out, r) in fp32, row-major, as PEFT stores
// lora_A.weight and lora_B.weight; the layer computes y = W x + scale * B (A x). B's rows are in GGUF order: for
// q_proj and k_proj, GGUF permutes the output features for its rotary layout (FORMATS.md section 3), so the PEFT
// reader permutes B's rows on the way in and the writer un-permutes them on the way out (A is never permuted).
// The llama.cpp layout already has GGUF's order.
//
// An adapter records its base (name, architecture, a content hash; the shapes are the modules' in/out), and
// hn_adapter_check_base refuses a model that is not that base.
//
//   hn_adapter *a;
//   if (hn_peft_read(&a, "run/adapter", m->hp.n_head, m->hp.n_head_kv)) return fail(hn_errmsg());
//   if (hn_adapter_check_base(a, &m->gguf, false)) return fail(hn_errmsg());
//   const hn_lora_module *q0 = hn_adapter_find(a, 0, HN_PROJ_Q);   // NULL if layer 0's q_proj is not adapted
//   float s = hn_adapter_scale(a);                                   // alpha / r (alpha / sqrt(r) with rsLoRA)
//   hn_lora_gguf_write(a, "run/adapter.gguf");
//   hn_adapter_destroy(a);
#ifndef HN_ADAPTER_H
#define HN_ADAPTER_H

#include "io/gguf.h"

// HN_PROJ_QKV is GPT-2's fused q|k|v (c_attn, GGUF attn_qkv); GPT-2's attn.c_proj is HN_PROJ_O, mlp.c_fc
// HN_PROJ_UP and mlp.c_proj HN_PROJ_DOWN.
typedef enum {
    HN_PROJ_Q, HN_PROJ_K, HN_PROJ_V, HN_PROJ_O, HN_PROJ_GATE, HN_PROJ_UP, HN_PROJ_DOWN, HN_PROJ_QKV, HN_PROJ_COUNT
} hn_proj;

const char *hn_proj_hf_name(hn_proj p);   // "q_proj", ..., "down_proj", "c_attn"
const char *hn_proj_gguf_name(hn_proj p); // "attn_q", ..., "ffn_down"
bool hn_proj_parse(const char *name, hn_proj *out); // either spelling

typedef struct {
    int layer;
    hn_proj proj;
    int64_t in, out; // the base weight's ne = {in, out}
    float *a;        // (r, in)
    float *b;        // (out, r), rows in GGUF order
} hn_lora_module;

typedef struct {
    // Config (PEFT's LoraConfig names).
    int r;
    float alpha;
    bool use_rslora;
    float dropout;
    char **targets; // target_modules as written (e.g. "q_proj" ..., "all-linear", or full module paths)
    int n_targets;
    // The base it was trained on: general.name / base_model_name_or_path, general.architecture, and
    // hn_adapter_base_hash (0 = unknown, e.g. an adapter made by PEFT). Owned strings, NULL if unknown.
    char *base_name, *base_arch;
    uint64_t base_hash;
    hn_lora_module *modules; // sorted by (layer, proj)
    int n_modules;
} hn_adapter;

// An empty adapter (no modules); targets may be NULL.
hn_status hn_adapter_create(hn_adapter **out, int r, float alpha, bool use_rslora, float dropout,
                            const char *const *targets, int n_targets);
void hn_adapter_destroy(hn_adapter *a);
// Adds a module with zeroed A (r, in) and B (out, r); refuses a duplicate (layer, proj). Module pointers (from add
// or find) stay valid until the next add.
hn_status hn_adapter_add(hn_adapter *a, int layer, hn_proj proj, int64_t in, int64_t out, hn_lora_module **mod);
hn_lora_module *hn_adapter_find(const hn_adapter *a, int layer, hn_proj proj);
float hn_adapter_scale(const hn_adapter *a);

// The base's identity: FNV-1a 64 over the architecture and, for every tensor in name order, its name, shape and
// the fp32 values of its first and last rows (dequantized). A GGUF file and its f32 copy hash alike; a different
// model, or the same model quantized differently, does not.
hn_status hn_adapter_base_hash(const hn_gguf *base, uint64_t *out);
// Records base's name, architecture and hash in a.
hn_status hn_adapter_set_base(hn_adapter *a, const hn_gguf *base);
// HN_ERR_ARG with a message naming both sides when base is not a's: another architecture, a missing tensor or a
// shape that differs from a module's in/out, or (when both are known) another content hash. allow_other_weights
// turns a hash mismatch alone into a warning (e.g. an adapter trained on Q4_1 applied to the f16 model).
hn_status hn_adapter_check_base(const hn_adapter *a, const hn_gguf *base, bool allow_other_weights);

// PEFT directory. n_head / n_head_kv: the base's head counts, for the q/k row permutation of B. The reader refuses
// what hone cannot apply (DoRA, fan_in_fan_out, biases, rank or alpha patterns, modules_to_save, embeddings) with
// a message naming the key or tensor. The writer creates dir if needed and writes both files atomically; hone's
// base record goes into the safetensors __metadata__ (hone.base_name, hone.base_architecture, hone.base_hash).
hn_status hn_peft_read(hn_adapter **out, const char *dir, int n_head, int n_head_kv);
hn_status hn_peft_write(const hn_adapter *a, const char *dir, int n_head, int n_head_kv);
// DIR/adapter_config.json alone (atomically; dir must exist), for a caller that writes the tensors itself (a
// classification adapter: task_type "SEQ_CLS", modules_to_save its head; n_mts 0 writes null).
hn_status hn_peft_write_config(const hn_adapter *a, const char *dir, const char *task_type,
                               const char *const *modules_to_save, int n_mts);

// llama.cpp LoRA GGUF: general.type = adapter, adapter.type = lora, adapter.lora.alpha (alpha * sqrt(r) for rsLoRA,
// so that llama.cpp's alpha / r gives the same scale), tensors blk.N.<proj>.weight.lora_a (ne {in, r}) and
// .lora_b (ne {r, out}), F32. hone's own keys (adapter.hone.*) keep the exact config and the base record.
hn_status hn_lora_gguf_read(hn_adapter **out, const char *path);
hn_status hn_lora_gguf_write(const hn_adapter *a, const char *path);

#endif
