// tensor/nn.h — the fp32 kernels of a transformer block around the matmuls: RMSNorm, rotary embedding, softmax,
// causal grouped-query attention over a KV cache, SwiGLU. Plain C that the compiler vectorises (each hot kernel is
// cloned for AVX2/AVX-512 and picked at load time); parallel over OpenMP threads (hn_threads_get()) where it pays.
//
// Letters: T tokens in this step, C model width, hd head dimension, S positions in the cache.
//
//   hn_rmsnorm(y, x, w, T, C, 1e-5f);                    // y (T, C) = x / rms(x) * w
//   hn_rope_table(cs, n_ctx, hd, 100000.0f);             // once per cache
//   hn_rope(q, T, n_head, hd, cs, pos0, false);          // rotates adjacent pairs (x[2i], x[2i+1]) in place
#ifndef HN_NN_H
#define HN_NN_H

#include "base/base.h"

// y (T, C) = x (T, C) * rsqrt(mean(x^2) + eps) * w (C). y may equal x.
void hn_rmsnorm(float *y, const float *x, const float *w, int64_t T, int64_t C, float eps);

// cos/sin table for positions [0, n_pos): cs[(p * hd/2 + i) * 2 + {0, 1}] = {cos, sin}(p * theta^(-2i/hd)).
// cs holds n_pos * hd floats.
void hn_rope_table(float *cs, int n_pos, int head_dim, float theta);
// The same with rotary scaling: angle = (p / linear) * theta^(-2i/hd) / freq_factors[i]. linear 1 = no linear
// scaling (GGUF rope.scaling.factor for type linear); freq_factors (hd/2 floats, GGUF's rope_freqs.weight, how
// llama.cpp's converter stores Llama 3's scaling) may be NULL.
typedef struct {
    float theta, linear;
    const float *freq_factors;
} hn_rope_params;
void hn_rope_table_ex(float *cs, int n_pos, int head_dim, const hn_rope_params *p);
// Rotary embedding in place on x (T, n_head, hd), token t at position pos0 + t. neox false rotates ADJACENT pairs
// (x[2i], x[2i+1]) — llama.cpp's "normal" mode, which GGUF's permuted Llama Q/K weights expect; neox true rotates
// the halves' pairs (x[i], x[i + hd/2]) — GPT-NeoX's and Hugging Face's layout, which Qwen2's GGUF keeps.
void hn_rope(float *x, int64_t T, int n_head, int head_dim, const float *cs, int pos0, bool neox);

// In place: x (n) = exp(x - max) / sum.
void hn_softmax(float *x, int64_t n);

// y (n) = silu(g) * u; y may equal g or u.
void hn_swiglu(float *y, const float *g, const float *u, int64_t n);

// exp(x) for float arrays, vectorisable, within 2 ulp of expf on [-87, 88]; inputs outside
// are clamped to that range (so exp(-inf) gives about 1e-38, not 0).
void hn_exp_inplace(float *x, int64_t n);

// Causal grouped-query attention of T new queries against a cache that holds positions [0, pos0 + T):
//   out (T, n_head, hd) = softmax(q·K^T / sqrt(hd)) · V, query t seeing positions [0, pos0 + t].
// q (T, n_head, hd); k and v are the cache of one layer, laid out (n_head_kv, kv_stride, hd) so that one head's
// keys are contiguous; query head h reads kv head h / (n_head / n_head_kv). scratch holds n_scratch rows of
// kv_stride floats (one per thread); the kernel uses at most n_scratch threads.
void hn_attention(float *out, const float *q, const float *k, const float *v, int64_t T, int pos0, int n_head,
                  int n_head_kv, int head_dim, int64_t kv_stride, float *scratch, int n_scratch);
// The same over a paged cache (serving: many sequences, each token its own): n queries, query t at position pos[t] of
// a sequence whose keys and values sit in blocks of 2^block_shift positions, listed by tables[t] (block ids; position
// s in block tables[t][s >> block_shift]), attending causally to positions [0, pos[t]]. k and v are one layer's pool, laid out
// (n_blocks, n_head_kv, 2^block_shift, hd). Each (query, head) row computes exactly as hn_attention's does, so the
// result equals the contiguous cache's bit for bit. scratch: n_scratch rows of scratch_stride > max pos floats.
void hn_attention_paged(float *out, const float *q, int64_t n, const int32_t *pos, const int32_t *const *tables,
                        const float *k, const float *v, int block_shift, int n_head, int n_head_kv, int head_dim,
                        float *scratch, int64_t scratch_stride, int n_scratch);

#endif
