// tensor/nf4.h — QLoRA's 4-bit NormalFloat (NF4) weights, built in memory from a weight of any dtype, with the
// values bitsandbytes gives (FORMATS.md section 6): blocks of 64 elements over the flattened tensor, each with its
// absmax; the absmax values double-quantized (their mean subtracted, then 8-bit codes of the signed dynamic map in
// groups of 256 blocks, one fp32 scale per group).
//
// Layout. An HN_NF4 tensor's data is bitsandbytes' packed `weight` exactly: two codes a byte, the even element in
// the high nibble, rows of ne[0] elements one after another. So row r starts at data + r * ne[0] / 2, and any
// stretch of whole bytes can be dequantized by the type traits' to_f32 (the traits' block is 32 codes, 16 bytes,
// so that matmul_dx's 32-column panels are whole blocks). The statistics (8-bit absmax codes, one per 64-block;
// the fp32 group scales; the tensor's fp32 offset) sit beside the codes in the same allocation, and to_f32 finds
// them from the address it is given through a registry of live NF4 tensors (tensor/nf4.c): nothing about NF4
// passes through the callers. Groups of 256 blocks run over the flattened tensor as in bitsandbytes, so they do
// not start at rows: the group of element e is e / (64 * 256) whatever the row.
//
// NF4 exists only in memory (HN_NF4 is above the GGUF numbers; the reader and the writer refuse it). An NF4 tensor
// must come from hn_nf4_quantize and be released with hn_nf4_free: a copy of the hn_tensor struct is fine, a copy
// of its bytes is not (to_f32 gives NaN for codes it cannot place).
//
//   hn_tensor q;
//   if (hn_nf4_quantize(&q, w)) ...;          // w: {K, N} of any dtype with to_f32, K % 64 == 0
//   hn_matmul(y, x, &q, T, HN_MM_FAST);        // like any other weight
//   hn_nf4_free(&q);
#ifndef HN_NF4_H
#define HN_NF4_H

#include "tensor/tensor.h"

#define HN_NF4_BLOCK 64  // elements per absmax (bitsandbytes' blocksize)
#define HN_NF4_GROUP 256 // absmax values per fp32 scale of the double quantization (nested blocksize)

// The 16 NF4 values, index = code (ascending; code 7 is 0), and the 256-entry signed dynamic 8-bit map of the
// double quantization (ascending, from -0.99296875 to 1; entry 127 is 0).
extern const float hn_nf4_values[16];
const float *hn_nf4_dynamic_map(void);

// dst becomes a new NF4 tensor with src's name and shape (src: any dtype with to_f32, ne[0] a multiple of 64).
hn_status hn_nf4_quantize(hn_tensor *dst, const hn_tensor *src);
// Releases what hn_nf4_quantize made (no-op for other tensors) and zeroes t.
void hn_nf4_free(hn_tensor *t);

// What hn_nf4_quantize stored, as bitsandbytes names it (for tests and reports). False if t is not a live NF4
// tensor.
typedef struct {
    int64_t n, nblocks, ngroups; // elements, 64-blocks, 256-groups
    const uint8_t *codes;        // n / 2 bytes: `weight`
    const uint8_t *qabsmax;      // nblocks: `absmax` (uint8 codes into the dynamic map)
    const float *absmax2;        // ngroups: `nested_absmax`
    float offset;                // `nested_offset`: the mean of the absmax values
    size_t bytes;                // memory the tensor holds, all of it
} hn_nf4_state;
bool hn_nf4_state_of(const hn_tensor *t, hn_nf4_state *out);
// The absmax of 64-block b as dequantization uses it: dynamic[qabsmax[b]] * absmax2[b / 256] + offset, in fp32.
float hn_nf4_absmax(const hn_nf4_state *st, int64_t b);

// The type-traits kernels (tensor/dtype.c): dequantize n elements starting at src (a whole byte of an NF4
// tensor's data), and the dot product of such a stretch with fp32 activations.
void hn_nf4_to_f32(const void *src, float *dst, int64_t n);
float hn_nf4_dot_f32(int64_t n, const void *w, const void *x);
// Their AVX2 cores (nf4_avx2.c, called by the two above where the CPU has AVX2): nblocks whole 64-blocks of codes
// q, block b scaled by scale[b] (its absmax).
void hn_nf4_dequant_avx2(const uint8_t *q, const float *scale, int64_t nblocks, float *dst);
float hn_nf4_dot_avx2(const uint8_t *q, const float *scale, int64_t nblocks, const float *x);
// The codes of one 64-block x, scaled by inv: for each x[j] * inv, how many of the 15 bounds mid[] lie below it.
void hn_nf4_codes_avx2(const float *x, float inv, const float *mid, uint8_t *out);

#endif
