// tensor/tensor.h — dtypes and their block layouts, the tensor struct, and the type-traits table that every
// dtype-dependent path (dequantize, quantize, dot product) goes through: a new dtype is a new row, never a branch.
//
// Shapes follow GGUF: ne[0] is the innermost (contiguous) dimension. A weight of a linear layer with `in` inputs
// and `out` outputs has ne = {in, out}: `out` rows of `in` elements, each row a whole number of blocks.
//
//   const hn_type_traits *tt = hn_type_traits_of(HN_Q4_1);
//   tt->to_f32(row_bytes, out_f32, n);   // n a multiple of tt->block
#ifndef HN_TENSOR_H
#define HN_TENSOR_H

#include "base/base.h"

// Values are GGUF's ggml_type numbers, so a file's type field is used as it is (FORMATS.md 1.7).
typedef enum {
    HN_F32 = 0,
    HN_F16 = 1,
    HN_Q4_0 = 2,
    HN_Q4_1 = 3,
    HN_Q5_0 = 6, // tensor/quant5.c: llama.cpp's fallbacks for K-quant tensors whose rows are not 256-wide
    HN_Q5_1 = 7,
    HN_Q8_0 = 8,
    HN_Q8_1 = 9, // activations only: the partner of Q4_1 in the fast dot product
    HN_Q2_K = 10, // K-quants: 256-element super-blocks (tensor/kquant.c)
    HN_Q3_K = 11,
    HN_Q4_K = 12,
    HN_Q5_K = 13,
    HN_Q6_K = 14,
    HN_I32 = 26,
    HN_BF16 = 30,
    // GGUF's numbers stay below this (ggml has 43 today). From here on the types are hone's own and live only in
    // memory: the GGUF reader refuses them in a file and the writer refuses to write them.
    HN_TYPE_FILE_END = 64,
    HN_NF4 = 64, // QLoRA's 4-bit NormalFloat, built at load time (tensor/nf4.h); never in a file
    HN_TYPE_COUNT = 65 // size of tables indexed by type; rows of unsupported types are empty
} hn_dtype;

#define HN_QK 32 // elements per block of Q4_0, Q4_1, Q8_0, Q8_1

typedef uint16_t hn_f16;
typedef uint16_t hn_bf16;

// Block layouts exactly as GGUF stores them (little-endian, packed; see FORMATS.md section 2).
typedef struct { hn_f16 d; uint8_t qs[HN_QK / 2]; } hn_block_q4_0;           // 18 bytes
typedef struct { hn_f16 d, m; uint8_t qs[HN_QK / 2]; } hn_block_q4_1;        // 20 bytes
typedef struct { hn_f16 d; int8_t qs[HN_QK]; } hn_block_q8_0;                // 34 bytes
typedef struct { hn_f16 d, s; int8_t qs[HN_QK]; } hn_block_q8_1;             // 36 bytes: s = d * sum(qs)
_Static_assert(sizeof(hn_block_q4_0) == 18, "q4_0 block");
_Static_assert(sizeof(hn_block_q4_1) == 20, "q4_1 block");
_Static_assert(sizeof(hn_block_q8_0) == 34, "q8_0 block");
_Static_assert(sizeof(hn_block_q8_1) == 36, "q8_1 block");
// Q5_0 / Q5_1: the fifth bit of element j in bit j of qh (read as a little-endian uint32).
typedef struct { hn_f16 d; uint8_t qh[4]; uint8_t qs[HN_QK / 2]; } hn_block_q5_0;    // 22 bytes
typedef struct { hn_f16 d, m; uint8_t qh[4]; uint8_t qs[HN_QK / 2]; } hn_block_q5_1; // 24 bytes
_Static_assert(sizeof(hn_block_q5_0) == 22 && sizeof(hn_block_q5_1) == 24, "q5_0 / q5_1 blocks");

// K-quants (FORMATS.md 2.5-2.9): super-blocks of HN_QK_K elements in sub-blocks of 16 or 32, each sub-block with
// its own 4/6/8-bit scale (and min) under one or two f16 super-scales.
#define HN_QK_K 256
typedef struct { uint8_t scales[16]; uint8_t qs[64]; hn_f16 d, dmin; } hn_block_q2_k;              // 84 bytes
typedef struct { uint8_t hmask[32]; uint8_t qs[64]; uint8_t scales[12]; hn_f16 d; } hn_block_q3_k; // 110 bytes
typedef struct { hn_f16 d, dmin; uint8_t scales[12]; uint8_t qs[128]; } hn_block_q4_k;             // 144 bytes
typedef struct { hn_f16 d, dmin; uint8_t scales[12]; uint8_t qh[32]; uint8_t qs[128]; } hn_block_q5_k; // 176
typedef struct { uint8_t ql[128]; uint8_t qh[64]; int8_t scales[16]; hn_f16 d; } hn_block_q6_k;    // 210 bytes
_Static_assert(sizeof(hn_block_q2_k) == 84 && sizeof(hn_block_q3_k) == 110, "q2_k / q3_k blocks");
_Static_assert(sizeof(hn_block_q4_k) == 144 && sizeof(hn_block_q5_k) == 176, "q4_k / q5_k blocks");
_Static_assert(sizeof(hn_block_q6_k) == 210, "q6_k block");

// Dot product of one weight row (type T, n elements) with one activation row already converted to T's
// `vec_dot_type`. n is a multiple of the block size.
typedef float (*hn_vec_dot_fn)(int64_t n, const void *w, const void *x);

typedef struct {
    const char *name;     // as GGUF/llama.cpp spell it: "f32", "q4_1", ...
    int block;            // elements per block (1 for plain types)
    size_t block_bytes;   // bytes per block
    bool quantized;
    void (*to_f32)(const void *src, float *dst, int64_t n);        // dequantize n elements
    void (*from_f32)(const float *src, void *dst, int64_t n);      // quantize n elements (reference rounding)
    hn_vec_dot_fn vec_dot;   // fastest kernel this CPU has (chosen at start-up)
    hn_vec_dot_fn vec_dot_ref; // scalar reference kernel
    hn_dtype vec_dot_type;   // what the activation row must be converted to for vec_dot
} hn_type_traits;

// NULL for a type hone does not support.
const hn_type_traits *hn_type_traits_of(hn_dtype t);
const char *hn_dtype_name(hn_dtype t); // "unknown" for unsupported
bool hn_dtype_parse(const char *name, hn_dtype *out); // "q4_1" -> HN_Q4_1 (case-insensitive)
// Bytes for n elements of type t; false if t is unsupported, n not a multiple of the block, or it overflows.
bool hn_row_bytes(hn_dtype t, int64_t n, size_t *out);

// Which SIMD level the kernels use: "avx512", "avx2" or "scalar". HONE_SIMD=scalar|avx2|avx512 in the environment
// caps it (used by tests to compare kernels).
const char *hn_simd_level(void);

float hn_f16_to_f32(hn_f16 h);
hn_f16 hn_f32_to_f16(float f);   // round to nearest even
float hn_bf16_to_f32(hn_bf16 h);
hn_bf16 hn_f32_to_bf16(float f); // round to nearest even

#define HN_MAX_DIMS 4

typedef struct hn_tensor {
    char name[96];
    hn_dtype type;
    int ndim;
    int64_t ne[HN_MAX_DIMS]; // ne[0] innermost; unused dims are 1
    void *data;              // borrowed (e.g. from a mapped file) unless `owned`
    size_t nbytes;
    bool owned;
    // The gradient (same shape, fp32) of a trainable fp32 tensor: a method that trains the model's own weights
    // (adapt/unfreeze.h) puts such copies in the model's place; NULL for the file's tensors. Model code hands it to
    // every op beside the data, so gradients reach it without the model knowing which method is in use.
    float *grad;
} hn_tensor;

static inline int64_t hn_nelem(const hn_tensor *t) { return t->ne[0] * t->ne[1] * t->ne[2] * t->ne[3]; }

#endif
