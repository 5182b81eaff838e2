// tensor/kernels.h — the kernels behind the type-traits table: scalar references (quant.c, dot.c) and the SIMD
// sets (dot_avx2.c, dot_avx512.c). Internal to tensor/ and its tests; the rest of hone goes through hn_type_traits.
//
// A SIMD set may leave an entry NULL: the scalar kernel is used for that type at that level.
#ifndef HN_KERNELS_H
#define HN_KERNELS_H

#include "tensor/tensor.h"

#include <string.h>

typedef enum { HN_SIMD_SCALAR = 0, HN_SIMD_AVX2 = 1, HN_SIMD_AVX512 = 2, HN_SIMD_COUNT } hn_simd;

// The fp32 tile product of the EXACT path. A panel holds HN_PANEL weight rows transposed: pack[k * HN_PANEL + r] is
// element k of row r (rows past nr are zero). y[t * ldy + r] = sum over k of pack[k][r] * x[t * K + k] for t < T,
// r < nr, summed in order of k, so every output is the same whatever T, the tile or the thread count.
#define HN_PANEL 32
typedef void (*hn_gemm_panel_fn)(int64_t T, int64_t K, const float *x, const float *pack, float *y, int64_t ldy,
                                 int nr);

// The decode product of FAST mode with fp32 activations (T < 16 tokens): y[t * ldy + r] = sum over k of W_r[k] *
// x[t * K + k] for r < nr, t < T, where row r of the weight starts at w + r * row_bytes. Each weight block is
// dequantized in registers (exactly: every q * d (+ m) of Q4_0/Q4_1/Q8_0 is one fp32 rounding, as in to_f32), once
// for several tokens, and multiplied with x by FMA into per-(row, token) vector accumulators that are reduced once
// at the end. Every output's sum runs the same way whatever nr, T or the caller's split of the rows, so the result
// does not depend on the thread count or on T.
typedef void (*hn_mv_fn)(int64_t K, const void *w, size_t row_bytes, int64_t nr, const float *x, int64_t T, float *y,
                         int64_t ldy);

// The batch product of FAST mode (8..64 tokens, a serving step): y[t * ldy + r] = sum over k of w[r * K + k] *
// x[t * K + k] for r < nr, t < T, with w already fp32 (a few rows the caller dequantized, row-major). Register tiles
// of a few rows x a few tokens, k in the vector lanes: each loaded weight vector feeds several tokens and each
// activation vector several rows. Every output is summed the same way (lane-wise in order of k, then one fixed
// tree across the lanes) whatever T, nr or its place in the tile, so the result does not depend on the thread
// count or on T; the order is not the EXACT path's, nor the decode kernel's.
typedef void (*hn_gemm_rows_fn)(int64_t T, int64_t K, const float *x, const float *w, int64_t nr, float *y,
                                int64_t ldy);

// The references behind the fp32-activation kernels of a block type: w's blocks of `block` elements (block_bytes
// bytes each, block <= HN_QK_K) dequantized by to_f32 one at a time, each output one in-order float sum over k, so
// that mv and dot agree bit for bit. hn_mv_blocks_ref takes the decode kernel's arguments after the type's.
typedef void (*hn_to_f32_fn)(const void *src, float *dst, int64_t n);
float hn_dot_blocks_ref(hn_to_f32_fn to_f32, int block, size_t block_bytes, int64_t n, const void *w, const float *x);
void hn_mv_blocks_ref(hn_to_f32_fn to_f32, int block, size_t block_bytes, int64_t K, const void *w, size_t row_bytes,
                      int64_t nr, const float *x, int64_t T, float *y, int64_t ldy);

typedef struct {
    hn_mv_fn mv[HN_TYPE_COUNT];                                  // weight type -> fp32-activation decode kernel
    hn_vec_dot_fn dot[HN_TYPE_COUNT];                            // weight type -> dot with its vec_dot_type row
    void (*to_f32[HN_TYPE_COUNT])(const void *src, float *dst, int64_t n); // faster dequantize
    void (*quantize_act[HN_TYPE_COUNT])(const float *src, void *dst, int64_t n); // activation rows (FAST mode)
    hn_gemm_panel_fn gemm_panel;
    hn_gemm_rows_fn gemm_rows; // NULL: FAST keeps the decode kernel / slab path for batches
} hn_kernel_set;

extern const hn_kernel_set hn_kernels_avx2;   // needs AVX2 + FMA + F16C
extern const hn_kernel_set hn_kernels_avx512; // needs AVX-512 F/BW/VL/DQ + VNNI

// What this CPU can run (ignores HONE_SIMD), and what the kernels use (HONE_SIMD applied).
hn_simd hn_simd_cpu(void);
hn_simd hn_simd_active(void);
// The set of a level (NULL for scalar). Tests compare every level the CPU has against the scalar kernels.
const hn_kernel_set *hn_kernels_of(hn_simd level);

// Activation quantizer FAST mode uses for type t (the active level's, else the reference from_f32).
typedef void (*hn_quantize_fn)(const float *src, void *dst, int64_t n);
hn_quantize_fn hn_quantize_act_fn(hn_dtype t);

// Scalar reference kernels (quant.c).
void hn_f32_to_f32_ref(const void *src, float *dst, int64_t n);
void hn_f32_from_f32_ref(const float *src, void *dst, int64_t n);
void hn_f16_to_f32_ref(const void *src, float *dst, int64_t n);
void hn_f16_from_f32_ref(const float *src, void *dst, int64_t n);
void hn_bf16_to_f32_ref(const void *src, float *dst, int64_t n);
void hn_bf16_from_f32_ref(const float *src, void *dst, int64_t n);
void hn_q4_0_to_f32_ref(const void *src, float *dst, int64_t n);
void hn_q4_0_from_f32_ref(const float *src, void *dst, int64_t n);
void hn_q4_1_to_f32_ref(const void *src, float *dst, int64_t n);
void hn_q4_1_from_f32_ref(const float *src, void *dst, int64_t n);
void hn_q8_0_to_f32_ref(const void *src, float *dst, int64_t n);
void hn_q8_0_from_f32_ref(const float *src, void *dst, int64_t n);
void hn_q8_1_to_f32_ref(const void *src, float *dst, int64_t n);
void hn_q8_1_from_f32_ref(const float *src, void *dst, int64_t n);
void hn_i32_from_f32_ref(const float *src, void *dst, int64_t n);

// K-quants (kquant.c) and Q5_0 / Q5_1 (quant5.c): reference dequantize / quantize, the dot product with an fp32
// activation row (their vec_dot_type is F32) and the decode kernel.
#define HN_KQ_DECL(name)                                                                                             \
    void hn_##name##_to_f32_ref(const void *src, float *dst, int64_t n);                                             \
    void hn_##name##_from_f32_ref(const float *src, void *dst, int64_t n);                                           \
    float hn_dot_##name##_f32_ref(int64_t n, const void *w, const void *x);                                          \
    void hn_mv_##name##_ref(int64_t K, const void *w, size_t row_bytes, int64_t nr, const float *x, int64_t T,       \
                            float *y, int64_t ldy);
HN_KQ_DECL(q2_k)
HN_KQ_DECL(q3_k)
HN_KQ_DECL(q4_k)
HN_KQ_DECL(q5_k)
HN_KQ_DECL(q6_k)
HN_KQ_DECL(q5_0)
HN_KQ_DECL(q5_1)
// Their AVX2 kernels (kquant_avx2.c), entries of hn_kernels_avx2: call only when the CPU has AVX2 + FMA + F16C.
#define HN_KQ_DECL_AVX2(name)                                                                                        \
    void hn_##name##_to_f32_avx2(const void *src, float *dst, int64_t n);                                            \
    float hn_dot_##name##_avx2(int64_t n, const void *w, const void *x);                                             \
    void hn_mv_##name##_avx2(int64_t K, const void *w, size_t row_bytes, int64_t nr, const float *x, int64_t T,      \
                             float *y, int64_t ldy);
HN_KQ_DECL_AVX2(q2_k)
HN_KQ_DECL_AVX2(q3_k)
HN_KQ_DECL_AVX2(q4_k)
HN_KQ_DECL_AVX2(q5_k)
HN_KQ_DECL_AVX2(q6_k)
HN_KQ_DECL_AVX2(q5_0)
HN_KQ_DECL_AVX2(q5_1)
// And their AVX-512 kernels (kquant_avx512.c), entries of hn_kernels_avx512.
#define HN_KQ_DECL_AVX512(name)                                                                                      \
    void hn_##name##_to_f32_avx512(const void *src, float *dst, int64_t n);                                          \
    float hn_dot_##name##_avx512(int64_t n, const void *w, const void *x);                                           \
    void hn_mv_##name##_avx512(int64_t K, const void *w, size_t row_bytes, int64_t nr, const float *x, int64_t T,    \
                               float *y, int64_t ldy);
HN_KQ_DECL_AVX512(q2_k)
HN_KQ_DECL_AVX512(q3_k)
HN_KQ_DECL_AVX512(q4_k)
HN_KQ_DECL_AVX512(q5_k)
HN_KQ_DECL_AVX512(q6_k)
HN_KQ_DECL_AVX512(q5_0)
HN_KQ_DECL_AVX512(q5_1)

// Scalar reference dot products (dot.c). Weight first, activation second.
float hn_dot_f32_f32_ref(int64_t n, const void *w, const void *x);
float hn_dot_f16_f32_ref(int64_t n, const void *w, const void *x);
float hn_dot_bf16_f32_ref(int64_t n, const void *w, const void *x);
float hn_dot_q4_0_q8_0_ref(int64_t n, const void *w, const void *x);
float hn_dot_q4_1_q8_1_ref(int64_t n, const void *w, const void *x);
float hn_dot_q8_0_q8_0_ref(int64_t n, const void *w, const void *x);
void hn_gemm_panel_ref(int64_t T, int64_t K, const float *x, const float *pack, float *y, int64_t ldy, int nr);
hn_gemm_panel_fn hn_gemm_panel_fn_active(void);
// Scalar reference decode kernels (dot.c): each block dequantized by the reference to_f32, summed in order of k.
void hn_mv_q4_0_ref(int64_t K, const void *w, size_t row_bytes, int64_t nr, const float *x, int64_t T, float *y,
                    int64_t ldy);
void hn_mv_q4_1_ref(int64_t K, const void *w, size_t row_bytes, int64_t nr, const float *x, int64_t T, float *y,
                    int64_t ldy);
void hn_mv_q8_0_ref(int64_t K, const void *w, size_t row_bytes, int64_t nr, const float *x, int64_t T, float *y,
                    int64_t ldy);
// The decode kernel of a weight type at a SIMD level (the scalar reference at HN_SIMD_SCALAR or where the level has
// none; NULL for a type without one: F32/F16/BF16 take vec_dot with fp32 activations already). hn_mv_fn_active
// applies HONE_SIMD.
hn_mv_fn hn_mv_fn_of(hn_simd level, hn_dtype t);
hn_mv_fn hn_mv_fn_active(hn_dtype t);
// The batch kernel of a SIMD level (the highest at or below it that has one; NULL for scalar).
hn_gemm_rows_fn hn_gemm_rows_fn_of(hn_simd level);

// How hn_matmul computes a quantized product (bench and tests pick one; hn_matmul picks by mode and T).
typedef enum {
    HN_MM_PATH_AUTO,  // what hn_matmul does
    HN_MM_PATH_DOT,   // activations converted to vec_dot_type, one vec_dot per (row, token) (8-bit for quantized)
    HN_MM_PATH_MV,    // fp32 activations, the hn_mv_fn kernel (falls back to DOT for types without one)
    HN_MM_PATH_TILES, // tiles of weight rows dequantized to fp32, then sgemm (the EXACT path)
    HN_MM_PATH_ROWS,  // a few weight rows dequantized to fp32 at a time, the hn_gemm_rows_fn kernel (falls back to MV)
    HN_MM_PATH_SLAB,  // slabs of weight rows dequantized to fp32, then OpenBLAS sgemm (FAST for long inputs)
} hn_mm_path;
hn_status hn_matmul_path(float *y, const float *x, const hn_tensor *w, int64_t T, hn_mm_path path);

// The FAST long-input paths' weight slabs: rows [r0, r0 + nr) of w (ne = {K, N}) as fp32 (nr, K), dequantized by
// the team into the calling thread's buffer (F32 weights: w's own memory), valid until the thread's next call;
// NULL + hn_fail on failure. hn_slab_rows(w) is how many rows fit the slab budget (16 MiB).
const float *hn_slab_f32(const hn_tensor *w, int64_t r0, int64_t nr);
int64_t hn_slab_rows(const hn_tensor *w);

// ---- Vector math of the fp32 ops (vmath.c; its SIMD sets vmath_avx2.c, vmath_avx512.c) ----
// Every level computes the same formulas (below), so levels differ only by float rounding and summation order.
//
// exp(x): x clamped to [-87.3, 88] (2^n stays a normal float), n = round(x / ln2), r = x - n ln2 (ln2 in two
// parts), e^r by its degree-6 Taylor polynomial (|r| <= ln2/2: error < 1.2e-7 relative), times 2^n built in the
// exponent field: hn_exp1 below, which the scalar loops use.
//
// erf(x), odd, on a = |x| clamped to 4 (erf(4) rounds to 1.0f: erfc(4) = 1.5e-8 is under half an ulp of 1):
//   a < 1:  a + a * A(a^2), A of degree 6 in u = a^2 (erf(a)/a - 1: the correction to a, whose rounding is small);
//   a >= 1: 1 - exp(-a^2) * B(a - 2.5), B of degree 11 approximating erfcx(a) = erfc(a) e^(a^2) on [1, 4].
// A and B are Chebyshev interpolants (near-minimax) of erf(sqrt u)/sqrt u - 1 on u in [0, 1] and of erfcx on [1, 4],
// derived for hone in double precision from the C library's erf / erfc: their own errors are 1.3e-9 and, after the
// factor exp(-a^2) <= e^-1, 3.6e-9 in erf. Evaluated in float, erf's error is below 1e-7 absolute, about an ulp of
// 1 as erff's (tests/test_vmath.c measures it against double erf: 7.7e-8 scalar, 6.7e-8 with FMA). NaN gives NaN,
// +-inf gives +-1, -0 gives -0, as erff.
#define HN_ERF_A_DEG 6
#define HN_ERF_B_DEG 11
#define HN_ERF_B_MID 2.5f
#define HN_INV_SQRT_2PI 0.3989422804014327f
static const float hn_erf_a[HN_ERF_A_DEG + 1] = {
    1.28379165848e-01f, -3.76126266667e-01f, 1.12835947152e-01f, -2.68542120103e-02f,
    5.18908742278e-03f, -8.01686428182e-04f, 7.87587504679e-05f,
};
static const float hn_erf_b[HN_ERF_B_DEG + 1] = {
    2.10806357743e-01f, -7.43473452915e-02f, 2.49381989142e-02f, -8.00161724826e-03f,
    2.46599963427e-03f, -7.33344875114e-04f, 2.12950469184e-04f, -5.93273034283e-05f,
    1.43646823704e-05f, -3.83463217371e-06f, 1.66983675974e-06f, -4.12314282658e-07f,
};

typedef struct {
    void (*exp)(float *y, const float *x, int64_t n);      // y = exp(x) (y may be x)
    void (*erf)(float *y, const float *x, int64_t n);      // y = erf(x) (y may be x)
    void (*gelu_erf)(float *y, const float *x, int64_t n); // y = 0.5 x (1 + erf(x / sqrt 2)) (y may be x)
    // Its backward: gx += dy * (Phi(x) + x phi(x)), Phi(x) = 0.5 (1 + erf(x / sqrt 2)),
    // phi(x) = e^(-x^2 / 2) / sqrt(2 pi)
    void (*gelu_erf_grad)(float *gx, const float *x, const float *dy, int64_t n);
    // p = softmax(p) over n >= 1 finite values: m = max, e = exp(p - m), p = e / sum(e); returns m + log(sum(e)).
    float (*softmax)(float *p, int64_t n);
    void (*exp_sub)(float *p, int64_t n, float c); // p = exp(p - c)
} hn_vmath_set;

// exp of one float by the formula above; branch-free, so that loops over it vectorise where GCC can.
static inline float hn_exp1(float x) {
    x = x < -87.3f ? -87.3f : x > 88.0f ? 88.0f : x; // keeps 2^n a normal float
    const float shift = 12582912.0f; // 1.5 * 2^23: adding it rounds to an integer in the low mantissa bits
    float t = x * 1.44269504088896341f + shift;
    int32_t ti;
    memcpy(&ti, &t, 4);
    float n = t - shift;
    float r = x - n * 0.693145751953125f - n * 1.42860682030941723212e-6f;
    float p = 1.0f + r * (1.0f + r * (0.5f + r * (1.0f / 6 + r * (1.0f / 24 + r * (1.0f / 120 + r * (1.0f / 720))))));
    // 2^n: exponent field n + 127; unsigned, as a NaN x gives any ti (p is NaN then anyway)
    uint32_t bits = (((uint32_t)ti - 0x4B400000u) << 23) + 0x3F800000u;
    float scale;
    memcpy(&scale, &bits, 4);
    return p * scale;
}

extern const hn_vmath_set hn_vmath_ref;    // scalar, any x86-64
extern const hn_vmath_set hn_vmath_avx2;   // needs AVX2 + FMA
extern const hn_vmath_set hn_vmath_avx512; // needs AVX-512 F/DQ
// The set of a level (the scalar one for HN_SIMD_SCALAR), and the active level's (HONE_SIMD applied).
const hn_vmath_set *hn_vmath_of(hn_simd level);
const hn_vmath_set *hn_vmath_active(void);

#endif
