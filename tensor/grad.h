// tensor/grad.h — the op set with forward and backward, the autograd tape, and the step arena.
//
// An op takes vars (fp32 row-major matrices living in the context's arena) and returns a new var. When the context
// has a tape and an input requires a gradient (or the op has a trainable weight), the op pushes a record whose
// backward adds the input gradients; hn_backward replays the records in reverse. Frozen tensors (weights of any
// dtype) never get a gradient. Trainable tensors are plain fp32 arrays with a gradient array beside them; the op
// ADDS to that gradient.
//
// Errors are sticky: an op that fails (out of memory, bad shape) sets c->err and returns NULL, and every op given
// a NULL input returns NULL, so model code runs its ops and checks c->err once at the end.
//
// Letters: N rows (tokens of the whole batch, B rows of T), C width, H / KVH heads, hd head size, V vocabulary.
//
//   hn_arena arena = {0};
//   hn_tape tape = {0};
//   hn_ctx c = {.arena = &arena, .tape = &tape, .mm = HN_MM_EXACT};
//   hn_var *x = hn_op_embed(&c, tok_embd, NULL, ids, N);                   // (N, C)
//   hn_var *h = hn_op_rmsnorm(&c, x, norm_w, NULL, 1e-5f);                 // (N, C)
//   hn_var *y = hn_op_linear(&c, h, w_q, NULL);                            // (N, out)
//   ...
//   hn_op_cross_entropy(&c, h_final, head, targets, 1.0f / n, &loss, &n_loss); // forward + dx, chunked over V
//   hn_backward(&c);                                                       // trainable grads += d(scale*loss)
//   hn_arena_reset(&arena, 0); hn_tape_reset(&tape);                       // next step reuses the memory
#ifndef HN_GRAD_H
#define HN_GRAD_H

#include "tensor/ops.h"

// A bump allocator in chunks that are kept for the next step: after the first step of a given shape, a step
// allocates nothing from the system.
typedef struct {
    struct hn_arena_chunk *chunks; // (n_chunks)
    int n_chunks, cap_chunks;
    int cur;       // chunk being filled
    size_t used;   // bytes used in chunks[cur]
    size_t peak;   // most bytes ever held at once (all chunks in use)
} hn_arena;

typedef struct {
    int cur;
    size_t used;
} hn_arena_mark;

void *hn_arena_alloc(hn_arena *a, size_t bytes); // 64-byte aligned; NULL + hn_fail on failure
hn_arena_mark hn_arena_get_mark(const hn_arena *a);
void hn_arena_reset(hn_arena *a, hn_arena_mark m); // frees everything allocated after m ((hn_arena_mark){0}: all)
size_t hn_arena_size(const hn_arena *a);           // bytes reserved from the system
void hn_arena_deinit(hn_arena *a);

typedef struct {
    float *d;           // (rows, cols) values
    float *g;           // (rows, cols) gradient; NULL until a backward adds to it
    int64_t rows, cols;
    bool rg;            // requires a gradient
} hn_var;

typedef struct hn_tape_rec hn_tape_rec;
typedef struct {
    hn_tape_rec *last; // records form a list backwards through the arena
    int64_t n;
} hn_tape;

// Rows [r0, r0 + n) of a step that belong to one owner (serving: the requests that use one adapter). A linear
// layer's attachment that has an owner applies to its owner's rows only (model/model.h, hn_linear_ext.owner).
typedef struct {
    const void *owner;
    int64_t r0, n;
} hn_row_group;

typedef struct hn_ctx {
    hn_arena *arena;   // activations and their gradients
    hn_arena *scratch; // recomputed blocks of hn_op_checkpoint (required only when it is used)
    hn_tape *tape;     // NULL: no gradients (inference, evaluation)
    hn_mm_mode mm;     // how frozen weights are multiplied
    hn_rng *rng;       // dropout (required only when training with dropout)
    bool training;     // dropout on
    hn_status err;     // first failure; ops return NULL once it is set
    // The step's rows by owner (inference only: no tape), NULL: every attachment applies to every row.
    const hn_row_group *groups;
    int n_groups;
} hn_ctx;

void hn_tape_reset(hn_tape *t);
// Replays c->tape in reverse. The gradients of the graph's outputs must already be set (hn_op_cross_entropy sets
// its input's gradient in the forward pass).
hn_status hn_backward(hn_ctx *c);
// The gradient array of v, zero-filled on first use.
float *hn_var_grad(hn_ctx *c, hn_var *v);

// A new var of uninitialised values; rg false.
hn_var *hn_var_new(hn_ctx *c, int64_t rows, int64_t cols);
// A var over caller memory (borrowed, e.g. a test input); rg as given.
hn_var *hn_var_wrap(hn_ctx *c, float *d, int64_t rows, int64_t cols, bool rg);

// ---- ops (each: forward + backward side by side in tensor/grad_*.c) ----

// y (rows, cols) = a copy of the fp32 values data; grad non-NULL: they are trainable (grad += dy). For a method's
// param that enters the model as an activation (virtual tokens, key/value prefixes).
hn_var *hn_op_param(hn_ctx *c, const float *data, float *grad, int64_t rows, int64_t cols);
// y (n, C) = rows ids[i] of table (V, C) (any dtype). grad: when gtable is non-NULL (table F32 and trainable),
// gtable (V, C) += dy rows.
hn_var *hn_op_embed(hn_ctx *c, const hn_tensor *table, float *gtable, const int32_t *ids, int64_t n);
// y (N, C) = x / rms(x) * w. gw (C) non-NULL: w is trainable.
hn_var *hn_op_rmsnorm(hn_ctx *c, hn_var *x, const float *w, float *gw, float eps);
// y (N, C) = LayerNorm(x) * w + b over each row (biased variance, as PyTorch). w and b (C) frozen F32, or trainable
// when gw / gb are non-NULL; b may be NULL (no bias). tensor/grad_norm.c.
hn_var *hn_op_layernorm(hn_ctx *c, hn_var *x, const float *w, const float *b, float *gw, float *gb, float eps);
// y = gelu(x): the tanh approximation (GPT-2's gelu_new) when tanh_approx, else the exact erf form (BERT).
hn_var *hn_op_gelu(hn_ctx *c, hn_var *x, bool tanh_approx);
// Rotary embedding IN PLACE on x (N, H*hd) (adjacent pairs, or the halves' pairs with neox; see tensor/nn.h):
// row i is at position pos0 + i % T (B rows of T tokens). cs covers positions [0, pos0 + T). Returns x.
hn_var *hn_op_rope(hn_ctx *c, hn_var *x, int n_head, int head_dim, const float *cs, int64_t T, int pos0,
                   bool neox);
// y (N, out) = x (N, in) · W^T (+ b) for a frozen W of any dtype (ne = {in, out}) and an optional frozen F32 bias.
// dx = dy · W by hn_matmul_dx (W dequantized a block at a time, never whole).
hn_var *hn_op_linear(hn_ctx *c, hn_var *x, const hn_tensor *w, const hn_tensor *b);
// y (N, out) = x (N, in) · W^T for an fp32 W (out, in); gw non-NULL: W is trainable (gw += dy^T · x).
hn_var *hn_op_matmul_f32(hn_ctx *c, hn_var *x, const float *w, float *gw, int64_t out);
// y (N, out) += s · x (N, in) · W^T in place (an adapter's low-rank term added to a layer's output without a
// (N, out) temporary kept for the backward); gw as above. Returns y.
hn_var *hn_op_matmul_f32_acc(hn_ctx *c, hn_var *y, hn_var *x, const float *w, float *gw, float s);
// y (N, C) += b (C) in place, b trainable when gb is non-NULL. Returns y.
hn_var *hn_op_add_bias(hn_ctx *c, hn_var *y, const float *b, float *gb);
// y = a + b (same shape), a new var (the residual connection).
hn_var *hn_op_add(hn_ctx *c, hn_var *a, hn_var *b);
// y += s * z in place (an adapter's term added to a layer's output). Returns y.
hn_var *hn_op_add_scaled(hn_ctx *c, hn_var *y, hn_var *z, float s);
// y = silu(g) * u.
hn_var *hn_op_swiglu(hn_ctx *c, hn_var *g, hn_var *u);
// y (B*(n+T), W): before each of the B sequences of T rows in x (B*T, W), the n rows of p (n, W), shared by every
// sequence (p's gradient is the sum over them); p NULL puts zeros (no gradient). tensor/grad_rows.c.
hn_var *hn_op_prepend_rows(hn_ctx *c, hn_var *p, int64_t n, hn_var *x, int64_t B, int64_t T);
// y (B*(T-n), W): x (B*T, W) without the first n rows of each of its B sequences of T (n 0: x itself).
hn_var *hn_op_drop_rows(hn_ctx *c, hn_var *x, int64_t B, int64_t T, int64_t n);
// y (N, n): columns col0 + perm[j] of x (N, W) (perm NULL: columns col0 .. col0 + n - 1; else a permutation of
// 0..n-1, borrowed until the backward has run): a slice of a wider var, reordered (prefix tuning's per-layer keys
// and values out of one flat row, keys into GGUF's rotary layout). tensor/grad_rows.c.
hn_var *hn_op_cols(hn_ctx *c, hn_var *x, int64_t col0, int64_t n, const int32_t *perm);
// Inverted dropout with probability p when c->training (mask drawn from c->rng); otherwise returns x itself.
hn_var *hn_op_dropout(hn_ctx *c, hn_var *x, float p);

// One layer's KV cache for inference: this step's keys and values are stored at positions [pos0, pos0 + T) and
// attention reads the cache (no backward).
typedef struct {
    float *k, *v;        // (KVH, stride, hd)
    int64_t stride;
    float *scratch;      // (n_scratch, stride)
    int n_scratch;
} hn_kv_slot;
// Causal grouped-query attention. q (N, H*hd), k and v (N, KVH*hd), N = B*T; y (N, H*hd). Without a cache, each
// row of T tokens attends within itself (positions 0..T-1) and the backward recomputes the probabilities from the
// saved log-sum-exp. With a cache (B = 1), queries see positions [0, pos0 + t].
hn_var *hn_op_attention(hn_ctx *c, hn_var *q, hn_var *k, hn_var *v, int64_t B, int64_t T, int n_head,
                        int n_head_kv, int head_dim, const hn_kv_slot *cache, int pos0);
// Attention with options (no cache), same layouts: causal or not, and per-row valid lengths (keys at positions
// >= lens[b] are masked for every query of row b; lens NULL = all T valid; each 1..T). The outputs of padded
// query rows (t >= lens[b]) are computed like the others (finite) and mean nothing.
hn_var *hn_op_attention_ex(hn_ctx *c, hn_var *q, hn_var *k, hn_var *v, int64_t B, int64_t T, int n_head,
                           int n_head_kv, int head_dim, bool causal, const int32_t *lens);

// Fused language-model head and cross-entropy: for every row i of x (N, C) with targets[i] >= 0, the loss
// -log softmax(x_i · W^T)[targets[i]] over the vocabulary W (ne = {C, V}, frozen, any dtype). Rows are taken in
// chunks: a chunk's logits are computed, turned into softmax - onehot, multiplied back into dx, and dropped; no
// (N, V) matrix exists. Adds the sum to *loss_sum and the count to *n_loss. With a tape and x->rg, x's gradient
// += d(scale * sum)/dx, in this call.
hn_status hn_op_cross_entropy(hn_ctx *c, hn_var *x, const hn_tensor *w, const int32_t *targets, float scale,
                              double *loss_sum, int64_t *n_loss);

// Gradient checkpointing: y = fn(c, user, x), run without a tape, its intermediates in c->scratch and dropped;
// the backward runs fn again with a tape (same rng state) and replays it. fn must be a pure function of x, the
// rng and frozen/trainable tensors.
typedef hn_var *(*hn_block_fn)(hn_ctx *c, void *user, hn_var *x);
hn_var *hn_op_checkpoint(hn_ctx *c, hn_block_fn fn, void *user, hn_var *x);
// A gradient scope: y = fn(c, user, x) runs and is recorded as usual (its activations stay in c->arena for the
// backward), but during the backward every gradient and scratch array of the block's records comes from
// c->scratch and is dropped when the block's backward ends; only x's gradient (in c->arena) outlives it. A chain
// of scoped blocks holds their activations and one block's gradients, not every block's.
hn_var *hn_op_scope(hn_ctx *c, hn_block_fn fn, void *user, hn_var *x);

// ---- kernels behind the ops ----

// dx (T, K) (+)= dy (T, N) · W for a weight W of any dtype with ne = {K, N}: W is read a block of 32 columns at a
// time, dequantized into per-thread scratch. accumulate false overwrites dx.
hn_status hn_matmul_dx(float *dx, const float *dy, const hn_tensor *w, int64_t T, bool accumulate);
// The same in a given mode: HN_MM_EXACT is hn_matmul_dx; the FAST modes dequantize wider column blocks and
// multiply them by OpenBLAS (tensor/blas.h): faster, repeatable for a given thread count only.
hn_status hn_matmul_dx_mm(float *dx, const float *dy, const hn_tensor *w, int64_t T, bool accumulate,
                          hn_mm_mode mode);

// For ops written elsewhere (adapt/): pushes a record of `size` bytes whose first member is an hn_tape_rec and
// returns it, or NULL (c->err set). fn receives the record.
struct hn_tape_rec {
    hn_tape_rec *prev;
    void (*backward)(hn_ctx *c, hn_tape_rec *r);
};
void *hn_tape_push(hn_ctx *c, void (*backward)(hn_ctx *c, hn_tape_rec *r), size_t size);
// Records are pushed when c has a tape and any of the flags is true.
static inline bool hn_grad_on(const hn_ctx *c, bool any) { return c->tape && any; }
// Sets c->err (if unset) from an hn_fail status and returns NULL: for ops' failure paths.
hn_var *hn_op_fail(hn_ctx *c, hn_status s);

#endif
