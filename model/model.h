// model/model.h — a loaded model: hyper-parameters, weights, tokenizer, chat template; and its forward pass with a
// KV cache. Architectures are written once against tensor/ops.h; this header is what the rest of hone sees.
//
//   hn_model *m;
//   if (hn_model_load(&m, "smollm2-135m-instruct", NULL)) ...;     // a path or a pulled name
//   hn_kv_cache *kv = hn_kv_cache_create(m, 2048);
//   float *logits;                                                  // (T, n_vocab), borrowed until the next call
//   hn_model_forward(m, kv, ids, T, HN_LOGITS_LAST, &logits);        // appends T tokens at kv's position
#ifndef HN_MODEL_H
#define HN_MODEL_H

#include "io/chat.h"
#include "io/gguf.h"
#include "io/tokenizer.h"
#include "model/registry.h"
#include "tensor/grad.h"
#include "tensor/ops.h"

typedef enum { HN_ARCH_LLAMA, HN_ARCH_GPT2, HN_ARCH_BERT, HN_ARCH_QWEN2, HN_ARCH_COUNT } hn_arch;

typedef struct {
    hn_arch arch;
    int n_vocab, n_embd, n_layer, n_head, n_head_kv, head_dim, n_ff, n_ctx_train;
    float rope_theta, norm_eps;
    // Rotary embedding beyond theta: the pairs rotated (false: adjacent, llama.cpp's Llama layout; true: halves,
    // GPT-NeoX / Qwen2), linear position scaling (1: none) and per-pair frequency factors (Llama 3's rope_freqs,
    // hd/2 floats from the file; NULL: none). hn_model_rope_table builds the table from them.
    bool rope_neox;
    float rope_linear;
    const float *rope_freqs;
} hn_hparams;

// A linear layer: the one place methods (LoRA, IA3, ...) attach (DESIGN.md section 10). Model code calls
// hn_linear_forward and never knows what is attached.
typedef struct hn_linear hn_linear;
typedef struct hn_linear_ext hn_linear_ext;
struct hn_linear_ext {
    const char *method; // "lora", ...
    // Before the base weight (may be NULL): given the layer's input x (N, in), returns the input the weight sees
    // (IA3's scaling of a feed-forward input). Every attachment's pre runs, in list order, before the weight.
    hn_var *(*pre)(hn_ctx *c, const hn_linear *l, void *state, hn_var *x);
    // After it (may be NULL): given the layer's input x (N, in) (as the pre hooks left it) and its output so far y
    // (N, out), returns the output with the method's change, computed through c's ops (so that it records its own
    // backward). state is the method's.
    hn_var *(*apply)(hn_ctx *c, const hn_linear *l, void *state, hn_var *x, hn_var *y);
    void *state;
    bool off;            // skipped (an adapter loaded but not in use for this call: --use)
    // The adapter it belongs to, for per-request serving: with row groups in the context (hn_ctx.groups) it
    // applies to its owner's rows only. NULL: to every row.
    const void *owner;
    hn_linear_ext *next; // applied in list order
};
struct hn_linear {
    const hn_tensor *w;  // ne = {in, out}, any dtype; borrowed from the file
    const hn_tensor *b;  // optional bias (ne = {out}), NULL if none
    hn_linear_ext *ext;  // attached methods (owned by them), NULL if none
};

// y (N, out) = x' · W^T + b, x' the input after every attached pre hook; then every attached apply in order.
hn_var *hn_linear_forward(hn_ctx *c, const hn_linear *l, hn_var *x);
// Appends / removes an attachment (the caller owns e).
void hn_linear_attach(hn_linear *l, hn_linear_ext *e);
void hn_linear_detach(hn_linear *l, hn_linear_ext *e);

typedef struct {
    const hn_tensor *attn_norm, *ffn_norm; // F32 (n_embd)
    const hn_tensor *attn_norm_b, *ffn_norm_b; // LayerNorm biases, F32 (n_embd); NULL for RMSNorm
    hn_linear q, k, v, o, gate, up, down;
    hn_linear qkv; // fused q|k|v (GPT-2's c_attn, ne = {n_embd, 3 n_embd}); q, k, v unused then
} hn_layer;

// The places before and beside the blocks (DESIGN.md section 10) where a method puts positions of its own before
// the input: virtual tokens (prompt tuning, P-tuning: embeddings that run through every block at positions
// 0..n_virtual-1) or per-layer key/value prefixes (prefix tuning, P-tuning v2: taken as already-cached keys and
// values, without rotary embedding). Either way the input's tokens sit at positions n_virtual, n_virtual + 1, ...,
// hidden states come back for the input's tokens only, and with a KV cache the virtual positions are the first
// n_virtual entries of the cache (filled when a forward starts at position 0). At most one attachment of this kind
// is active (not off) at a time.
typedef struct hn_model hn_model;
typedef struct hn_model_ext hn_model_ext;
struct hn_model_ext {
    const char *method;
    int n_virtual; // positions before the input (>= 1)
    // Exactly one of the two (the other NULL). embed: the virtual tokens' embeddings (n_virtual, n_embd), put
    // before every row's token embeddings (before position embeddings are added). attn_kv: layer l's key and value
    // prefixes, (n_virtual, n_head_kv * head_dim) each, keys as attention multiplies them (GGUF's rotary layout).
    // Both through c's ops, so that they record their own backward when c has a tape.
    hn_var *(*embed)(hn_ctx *c, const hn_model *m, void *state);
    bool (*attn_kv)(hn_ctx *c, const hn_model *m, void *state, int l, hn_var **k, hn_var **v);
    void *state;
    bool off;
    const void *owner; // as hn_linear_ext.owner: serving puts a sequence's virtual positions for its own adapter
    hn_model_ext *next;
};

typedef struct hn_model {
    char *path;
    hn_gguf gguf;
    hn_hparams hp;
    const hn_tensor *tok_embd; // (n_vocab, n_embd)
    const hn_tensor *out_norm;
    const hn_tensor *out_norm_b; // LayerNorm bias of the final norm, NULL for RMSNorm
    const hn_tensor *pos_embd;   // learned positions (n_ctx_train, n_embd), NULL with rotary embedding
    const hn_tensor *type_embd;  // BERT token types (n_types, n_embd), NULL if none
    const hn_tensor *embd_norm, *embd_norm_b; // BERT's LayerNorm of the summed embeddings, NULL if none
    int pooling;                 // the model's own sentence pooling (bert.pooling_type, llama.cpp's enum: 1 mean,
                                 // 2 cls, 3 last; 0 none or unknown)
    hn_linear output;          // tied to tok_embd when the file has no output.weight
    hn_linear pooler;          // BERT's pooler dense, C -> C (cls.weight/bias): BertForSequenceClassification
                               // classifies from tanh(pooler(h[CLS])) (adapt/cls_head.h); w NULL if the file has none
    hn_layer *layers;
    hn_tokenizer *tok;
    hn_chat_template chat;     // ChatML when the file has no template (has_chat false)
    bool has_chat;             // the file has a chat template (tokenizer.chat_template) that hone recognised
    char *default_system;      // the template's default system prompt, or NULL
    hn_mm_mode mm_mode;        // HN_MM_FAST by default; HN_MM_EXACT for the fp32 reference path
    hn_model_ext *ext;         // virtual positions' attachments (see hn_model_ext), NULL if none
} hn_model;

// Appends / removes a virtual-position attachment (the caller owns e).
void hn_model_attach(hn_model *m, hn_model_ext *e);
void hn_model_detach(hn_model *m, hn_model_ext *e);
// The active one (first not off), or NULL; HN_ERR_ARG (and *out NULL) when more than one is active.
hn_status hn_model_active_ext(const hn_model *m, const hn_model_ext **out);
// Positions the active attachment puts before the input (0 if none).
int hn_model_n_virtual(const hn_model *m);

typedef struct {
    hn_mm_mode mm_mode;
    // A model without a tokenizer (a Hugging Face directory without tokenizer.json or vocab.txt, a GGUF without
    // tokenizer.ggml.tokens): true loads it anyway with m->tok = NULL (tests that feed token ids); false refuses it.
    bool allow_no_tokenizer;
    // 0 (HN_F32): weights as stored. HN_NF4: every linear weight inside the blocks is re-quantized at load into
    // owned NF4 memory (QLoRA; tensor/nf4.h), embeddings, norms and the output head stay as stored.
    hn_dtype quantize;
} hn_model_params;
hn_model_params hn_model_default_params(void);

// MODEL is a GGUF file, a Hugging Face Llama directory (config.json + safetensors, io/hf.h), or a pulled name (see
// hn_model_resolve in model/registry.h). params may be NULL (defaults).
hn_status hn_model_load(hn_model **out, const char *model, const hn_model_params *params);
void hn_model_destroy(hn_model *m);


// The weights model code reads, each through a slot (the pointer it follows) that a method may point at a
// trainable copy (adapt/unfreeze.h). layer is where the weight acts: -1 before the blocks (embeddings and their
// norm), 0..n_layer-1 in a block, n_layer after them (the final norm, BERT's pooler and the output head; the pooler
// is a linear layer, the head has its own role). A tensor in two slots
// (an output head tied to the embedding) is visited in both.
typedef enum {
    HN_W_LINEAR,    // a linear layer's weight
    HN_W_BIAS,      // a linear layer's bias
    HN_W_NORM,      // a norm's scale
    HN_W_NORM_BIAS, // a LayerNorm's bias
    HN_W_EMBED,     // an embedding table (tokens, positions, token types)
    HN_W_HEAD,      // the language-model output head (weight and bias)
    HN_W_ROLES
} hn_wrole;
typedef void (*hn_weight_fn)(void *user, const hn_tensor **slot, int layer, hn_wrole role);
void hn_model_weights(hn_model *m, hn_weight_fn fn, void *user);

// The rotary table (cos/sin, n_pos * head_dim floats) for positions [0, n_pos) with the model's theta and scaling.
void hn_model_rope_table(const hn_model *m, float *cs, int n_pos);

// KV cache for one sequence of up to n_ctx tokens.
typedef struct hn_kv_cache hn_kv_cache;
// Positions count the caller's tokens only: the virtual positions of an attachment (hn_model_ext) are kept in
// entries of their own, set aside at creation for the attachment active then, and filled when a sequence starts.
hn_kv_cache *hn_kv_cache_create(const hn_model *m, int n_ctx); // NULL + hn_errmsg on failure
void hn_kv_cache_destroy(hn_kv_cache *kv);
int hn_kv_cache_pos(const hn_kv_cache *kv);  // tokens stored so far
int hn_kv_cache_size(const hn_kv_cache *kv); // tokens it holds at most
void hn_kv_cache_truncate(hn_kv_cache *kv, int pos); // forget tokens from pos on (0: everything)
// Layer l's cached keys and values of the caller's tokens [0, pos) into k and v (pos, n_head_kv * head_dim) each,
// keys as attention multiplies them (rotary applied, GGUF's layout).
hn_status hn_kv_cache_read(const hn_kv_cache *kv, int l, float *k, float *v);

typedef enum {
    HN_LOGITS_LAST, // logits of the last token only: (1, n_vocab)
    HN_LOGITS_ALL,  // logits of every token: (T, n_vocab)
} hn_logits_mode;

// Runs T tokens through the model, appending them to kv. *logits is owned by kv and valid until the next call.
// A sequence that would pass the cache size gives HN_ERR_RANGE with a message naming both lengths.
hn_status hn_model_forward(hn_model *m, hn_kv_cache *kv, const int32_t *ids, int T, hn_logits_mode mode,
                           float **logits);

// The training / evaluation forward, through the same per-block code as hn_model_forward but without a KV cache:
// ids are B rows of T tokens, each row at positions 0..T-1 (rope: a table from hn_rope_table covering T
// positions). Returns the final normed hidden state (B*T, n_embd) as a var of c (NULL with c->err set on
// failure); with c->tape set, every op records its backward. checkpoint: each block keeps only its input and is
// recomputed during the backward (needs c->scratch).
hn_var *hn_model_hidden(hn_ctx *c, const hn_model *m, const int32_t *ids, int B, int T, const float *rope,
                        bool checkpoint);
// The same for a right-padded batch: row b's first lens[b] tokens are valid (encoders mask the rest as keys; a
// causal model's valid positions never see them). lens NULL: all T.
hn_var *hn_model_hidden_ex(hn_ctx *c, const hn_model *m, const int32_t *ids, const int32_t *lens, int B, int T,
                           const float *rope, bool checkpoint);

// ---- many sequences at once over a paged KV store (serving; serve/engine.h drives it)

// The pool the keys and values live in: blocks of 2^block_shift positions, owned by the caller (serve/kv_pool.h).
typedef struct {
    float *k, *v;      // (n_layer, n_blocks, n_head_kv, 2^block_shift, head_dim) each
    int64_t n_blocks;
    int block_shift;
} hn_kv_pool_view;

// One step's tokens, from any number of sequences: token t at position pos[t] of its sequence, whose block table is
// tables[t] (block ids covering positions [0, pos[t]]). A sequence's tokens in a step are consecutive positions in
// order, so each sees its own earlier tokens of the step. Keys and values of every token go into the pool; logits
// come back for the rows listed in logit_rows.
typedef struct {
    int n;
    const int32_t *ids, *pos;     // (n)
    const int32_t *const *tables; // (n)
    // Virtual tokens (prompt tuning, P-tuning): virt[t] >= 0 makes token t virtual token virt[t] of the virtual-
    // position attachment whose owner is virt_owner[t] (its embedding replaces ids[t]'s). NULL: none.
    const int32_t *virt;
    const void *const *virt_owner;
    const hn_row_group *groups;   // rows by adapter (hn_linear_ext.owner), NULL: one group, no owned attachment
    int n_groups;
    const int32_t *logit_rows;    // (n_logits) rows whose logits to compute
    int n_logits;
} hn_step_batch;

// The buffers of batched steps: arenas, the rotary table, attention scratch and logits.
typedef struct hn_batch_runner hn_batch_runner;
// For steps of up to max_tokens tokens at positions below max_ctx. NULL + hn_errmsg on failure.
hn_batch_runner *hn_batch_runner_create(const hn_model *m, int max_tokens, int max_ctx);
void hn_batch_runner_destroy(hn_batch_runner *r);
// Runs b's tokens through m, writing their keys and values into pool; *logits (n_logits, n_vocab) is the runner's,
// valid until the next call. Each row's result equals the single-sequence forward's (hn_model_forward) in
// HN_MM_EXACT mode bit for bit: the batched matmul, norms and the paged attention compute every row alone.
hn_status hn_model_forward_batch(hn_model *m, hn_batch_runner *r, const hn_kv_pool_view *pool, const hn_step_batch *b,
                                 float **logits);
// The keys and values a virtual-position attachment puts before a sequence (prefix tuning): layer l's (n_virtual,
// n_head_kv * head_dim) each into the pool at positions [0, n_virtual) of table. Virtual tokens (prompt tuning) run
// as tokens instead (hn_step_batch.virt).
hn_status hn_model_fill_prefix_paged(hn_model *m, hn_batch_runner *r, const hn_model_ext *e,
                                     const hn_kv_pool_view *pool, const int32_t *table);

#endif
