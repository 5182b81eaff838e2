// tensor/ops.h — the compute kernels of the forward pass on plain fp32 rows, and the matmul that takes a weight
// of any dtype. Every kernel here has a scalar reference that the faster paths are tested against.
//
// Row-major activations: x is (T, K) means T rows of K floats.
#ifndef HN_OPS_H
#define HN_OPS_H

#include "tensor/tensor.h"

// How a matmul treats a quantized weight.
typedef enum {
    HN_MM_EXACT, // fp32 reference: weight rows dequantized block by block, fp32 activations, fp32 accumulate
    HN_MM_FAST,  // decode (T < 16): fp32 activations, quantized weight blocks dequantized in registers, FMA;
                 // longer inputs: the EXACT path's fp32 panels; F32 weights use BLAS. HONE_FAST_ACT=q8 in the
                 // environment makes it HN_MM_FAST_Q8 (to compare the two; read once per process).
    HN_MM_FAST_Q8, // as FAST, but decode quantizes activations to 8-bit blocks (Q8_0/Q8_1, llama.cpp's scheme) and
                   // takes integer SIMD dots: faster per element, less accurate (SmolLM2's outlier dimensions make
                   // the blocks coarse: ~97% argmax agreement with EXACT instead of >= 99%, tests/test_model.c)
} hn_mm_mode;

// y (T, N) = x (T, K) · W^T, where W is a tensor with ne = {K, N} of any supported dtype.
// Never dequantizes the whole of W: at most a tile of rows at a time, in per-thread scratch.
// Parallel over OpenMP threads (hn_threads_get()).
hn_status hn_matmul(float *y, const float *x, const hn_tensor *w, int64_t T, hn_mm_mode mode);
// Frees the calling thread's matmul buffers (they only grow and live as long as the thread): a thread that ran
// forward passes calls it before it ends (the serving engine's step thread).
void hn_matmul_thread_free(void);

// Dequantize row r of a 2-D tensor into dst (ne[0] floats).
void hn_get_row(const hn_tensor *w, int64_t r, float *dst);

#endif
