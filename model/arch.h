// model/arch.h — private to model/: what an architecture file provides, and the KV cache with the step's
// activation buffers that every architecture shares. Not part of the public API (model/model.h is).
#ifndef HN_ARCH_H
#define HN_ARCH_H

#include "model/model.h"

struct hn_kv_cache {
    const hn_model *m;
    int n_ctx, pos;
    float *k, *v;   // (n_layer, n_head_kv, n_ctx, hd): one head's keys contiguous for attention
    // The attachment whose virtual positions are the cache's first n_virt entries (NULL, 0: none): a forward
    // under another one refuses to go on from this cache.
    const hn_model_ext *virt;
    int n_virt;
    int reserve; // entries set aside at creation for the virtual positions of the attachment active then
    float *rope;    // (n_ctx, hd/2, 2) cos/sin table
    // Step activations live in the arenas (reset every call; blocks run in `blocks`, their outputs in `arena`);
    // inputs longer than n_batch tokens run in chunks of n_batch.
    int n_batch;
    hn_arena arena, blocks;
    float *logits;  // (logits_rows, n_vocab); grows only when a call asks for more rows than before
    int64_t logits_rows;
    float *scratch; // (n_scratch, n_ctx) attention probabilities, one row per thread
    int n_scratch;
};

// How the tokens of a forward are laid out: B rows of T tokens, token t of a row at position pos0 + t.
typedef struct {
    int B, T, pos0;
    const float *rope;  // cos/sin table covering positions [0, pos0 + T)
    hn_kv_cache *kv;    // inference: the step's keys and values go into kv (B = 1); NULL: attention within rows
    bool checkpoint;    // run blocks through hn_op_checkpoint (always done without a tape, to bound memory)
    const int32_t *lens; // valid tokens of each row (a right-padded batch; encoders mask the rest), NULL: all T
    // Virtual positions (model.h's hn_model_ext): the first n_virt tokens of each row are virtual tokens that
    // hn_arch_blocks drops from its output; prefix (no cache) is the attachment whose key/value prefixes every
    // block's attention puts before the row's own keys and values (the row then starts at pos0 = its n_virtual).
    int n_virt;
    const hn_model_ext *prefix;
    // A batch of many sequences over a paged pool (hn_model_forward_batch): B = 1, T = batch->n tokens, each at its
    // own position batch->pos[t] (rope: a table of T rows, row t for that position); attention reads and writes the
    // pool.
    const hn_step_batch *batch;
    const hn_kv_pool_view *pool;
    float *att_scratch;   // (n_scratch, scratch_stride) for the paged attention
    int64_t scratch_stride;
    int n_scratch;
} hn_seq;

typedef struct {
    const char *name; // general.architecture
    // Reads hyper-parameters and binds weight tensors of m->gguf (already open) into m.
    hn_status (*load)(hn_model *m);
    // Token ids (s->B * s->T) to the final normed hidden state (B*T, n_embd), through c's ops: the one body
    // that inference (hn_model_forward: with the KV cache, then m->output) and training (hn_model_hidden) share.
    hn_var *(*hidden)(hn_ctx *c, const hn_model *m, const int32_t *ids, const hn_seq *s);
    // An encoder (BERT): no language-model head and no KV cache, so hn_model_forward refuses it.
    bool encoder;
} hn_arch_impl;

// What each block of an architecture receives (as hn_block_fn's user pointer): the model, the step's layout, the
// layer.
typedef struct {
    const hn_model *m;
    const hn_seq *s;
    int l;
} hn_block_args;
// Runs blocks 0 .. n_layer-1 of fn over x. Without a tape each block's intermediates are dropped when it ends (the
// checkpoint op without a tape); with one, a block keeps its activations (or recomputes them when s->checkpoint)
// and its gradients live only while its own backward runs (hn_op_scope). The arguments (and a copy of s) live in
// c's arena, because a checkpointed block runs again during the backward.
hn_var *hn_arch_blocks(hn_ctx *c, const hn_model *m, const hn_seq *s, hn_block_fn fn, hn_var *x);
// The input-embedding place (DESIGN.md section 10), called on the token embeddings x (B*T, C) before positions are
// added: at the start of a sequence (pos0 0) with an active attachment that puts virtual tokens, returns x with
// their embeddings before every row and *out the longer layout (T + n, lens + n, n_virt n); otherwise x and
// *out = *s. Architectures then add positions, run hn_arch_blocks and norm with *out.
hn_var *hn_arch_embed(hn_ctx *c, const hn_model *m, const hn_seq *s, hn_var *x, hn_seq *out);
// A block's attention, whatever the step: over the KV cache (inference), within rows (training; causal or not, the
// padded keys masked), and with the attention place's key/value prefixes before each row's own when s->prefix.
hn_var *hn_arch_attention(hn_ctx *c, const hn_block_args *a, hn_var *q, hn_var *k, hn_var *v, bool causal);

const hn_arch_impl *hn_arch_of(const hn_model *m); // m's architecture
// Layer l's key/value prefix of a virtual-position attachment (prefix tuning), (n_virtual, n_head_kv * head_dim)
// each, its shape checked.
hn_status hn_arch_prefix_kv(hn_ctx *c, const hn_model *m, const hn_model_ext *e, int l, hn_var **k, hn_var **v);
// One position's key and value rows (n_head_kv * head_dim each) into layer l of a paged pool, at position p of the
// sequence whose block table is table.
void hn_arch_pool_put(const hn_model *m, const hn_kv_pool_view *pool, int l, const int32_t *table, int p,
                      const float *k, const float *v);
// n floats, 64-byte aligned (free()), or NULL with a message naming who wanted what.
float *hn_arch_floats(const char *who, const char *what, int64_t n);

extern const hn_arch_impl hn_arch_llama;
extern const hn_arch_impl hn_arch_qwen2;
extern const hn_arch_impl hn_arch_gpt2;
extern const hn_arch_impl hn_arch_bert;

// Helpers for architecture loaders: a required key / tensor that is absent gives HN_ERR_FORMAT naming it and the file.
hn_status hn_model_req_u32(const hn_model *m, const char *key, uint32_t *out);
hn_status hn_model_opt_u32(const hn_model *m, const char *key, uint32_t *out); // absent: leaves *out
hn_status hn_model_req_f32(const hn_model *m, const char *key, float *out);
hn_status hn_model_opt_f32(const hn_model *m, const char *key, float *out);
// A tensor of the given shape (ne[0] = in, ne[1] = out; out = 0 for a vector) and a supported dtype;
// required = false gives *out = NULL when absent.
hn_status hn_model_tensor(const hn_model *m, const char *name, int64_t in, int64_t out, bool required,
                          const hn_tensor **t);

#endif
