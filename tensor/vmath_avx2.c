// tensor/vmath_avx2.c — the vector-math set (exp, erf, exact GELU, softmax rows) 8 lanes at a time, the formulas of
// kernels.h with FMA; a row's last partial vector goes through masked loads and stores. Call only when the CPU has
// AVX2 and FMA (hn_vmath_of checks the level).
#include "tensor/kernels.h"

#include <immintrin.h>
#include <math.h>

static inline __m256 exp8(__m256 x) {
    // max/min return their second operand when either is NaN: a NaN x stays NaN.
    x = _mm256_min_ps(_mm256_set1_ps(88.0f), _mm256_max_ps(_mm256_set1_ps(-87.3f), x));
    const __m256 shift = _mm256_set1_ps(12582912.0f);
    __m256 t = _mm256_fmadd_ps(x, _mm256_set1_ps(1.44269504088896341f), shift);
    __m256 n = _mm256_sub_ps(t, shift);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693145751953125f), x);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(1.42860682030941723212e-6f), r);
    __m256 p = _mm256_set1_ps(1.0f / 720);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 120));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 24));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 6));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(0.5f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
    __m256i bits = _mm256_slli_epi32(_mm256_sub_epi32(_mm256_castps_si256(t), _mm256_set1_epi32(0x4B400000)), 23);
    bits = _mm256_add_epi32(bits, _mm256_set1_epi32(0x3F800000));
    return _mm256_mul_ps(p, _mm256_castsi256_ps(bits));
}

static inline __m256 erf8(__m256 x) {
    const __m256 sign = _mm256_set1_ps(-0.0f), one = _mm256_set1_ps(1.0f);
    __m256 a = _mm256_min_ps(_mm256_set1_ps(4.0f), _mm256_andnot_ps(sign, x)); // a NaN stays NaN
    __m256 smallv = _mm256_cmp_ps(a, one, _CMP_LT_OQ);
    int small = _mm256_movemask_ps(smallv);
    __m256 u = _mm256_mul_ps(a, a), r = _mm256_setzero_ps();
    if (small) {
        __m256 p = _mm256_set1_ps(hn_erf_a[HN_ERF_A_DEG]);
        for (int k = HN_ERF_A_DEG - 1; k >= 0; k--) p = _mm256_fmadd_ps(p, u, _mm256_set1_ps(hn_erf_a[k]));
        r = _mm256_fmadd_ps(a, p, a);
    }
    if (small != 0xFF) {
        __m256 w = _mm256_sub_ps(a, _mm256_set1_ps(HN_ERF_B_MID)), p = _mm256_set1_ps(hn_erf_b[HN_ERF_B_DEG]);
        for (int k = HN_ERF_B_DEG - 1; k >= 0; k--) p = _mm256_fmadd_ps(p, w, _mm256_set1_ps(hn_erf_b[k]));
        __m256 rb = _mm256_fnmadd_ps(exp8(_mm256_xor_ps(u, sign)), p, one);
        r = _mm256_blendv_ps(rb, r, smallv);
    }
    return _mm256_or_ps(r, _mm256_and_ps(x, sign));
}

static inline __m256 gelu8(__m256 x) {
    __m256 e = erf8(_mm256_mul_ps(x, _mm256_set1_ps((float)M_SQRT1_2)));
    return _mm256_mul_ps(_mm256_mul_ps(_mm256_set1_ps(0.5f), x), _mm256_add_ps(_mm256_set1_ps(1.0f), e));
}

static inline __m256 gelu_grad8(__m256 x) {
    __m256 cdf = erf8(_mm256_mul_ps(x, _mm256_set1_ps((float)M_SQRT1_2)));
    cdf = _mm256_mul_ps(_mm256_set1_ps(0.5f), _mm256_add_ps(_mm256_set1_ps(1.0f), cdf));
    __m256 pdf = exp8(_mm256_mul_ps(_mm256_set1_ps(-0.5f), _mm256_mul_ps(x, x)));
    return _mm256_fmadd_ps(_mm256_mul_ps(x, _mm256_set1_ps(HN_INV_SQRT_2PI)), pdf, cdf);
}

// The lanes below m (1..7) of a partial vector.
static inline __m256i tail(int64_t m) {
    static const int32_t ones[16] = {-1, -1, -1, -1, -1, -1, -1, -1};
    return _mm256_loadu_si256((const __m256i *)(ones + 8 - m));
}

static inline float hmax8(__m256 v) {
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    m = _mm_max_ss(m, _mm_movehdup_ps(m));
    return _mm_cvtss_f32(m);
}

static inline float hsum8(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

#define MAP8(name, f)                                                                                                \
    static void name(float *y, const float *x, int64_t n) {                                                          \
        int64_t i = 0;                                                                                               \
        for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, f(_mm256_loadu_ps(x + i)));                               \
        if (i < n) {                                                                                                 \
            __m256i k = tail(n - i);                                                                                 \
            _mm256_maskstore_ps(y + i, k, f(_mm256_maskload_ps(x + i, k)));                                          \
        }                                                                                                            \
    }
MAP8(exp_avx2, exp8)
MAP8(erf_avx2, erf8)
MAP8(gelu_erf_avx2, gelu8)

static void gelu_erf_grad_avx2(float *gx, const float *x, const float *dy, int64_t n) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 g = _mm256_mul_ps(_mm256_loadu_ps(dy + i), gelu_grad8(_mm256_loadu_ps(x + i)));
        _mm256_storeu_ps(gx + i, _mm256_add_ps(_mm256_loadu_ps(gx + i), g));
    }
    if (i < n) {
        __m256i k = tail(n - i);
        __m256 g = _mm256_mul_ps(_mm256_maskload_ps(dy + i, k), gelu_grad8(_mm256_maskload_ps(x + i, k)));
        _mm256_maskstore_ps(gx + i, k, _mm256_add_ps(_mm256_maskload_ps(gx + i, k), g));
    }
}

static float softmax_avx2(float *p, int64_t n) {
    const __m256 ninf = _mm256_set1_ps(-INFINITY);
    __m256 vmax = ninf;
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) vmax = _mm256_max_ps(vmax, _mm256_loadu_ps(p + i));
    if (i < n) {
        __m256i k = tail(n - i);
        vmax = _mm256_max_ps(vmax, _mm256_blendv_ps(ninf, _mm256_maskload_ps(p + i, k), _mm256_castsi256_ps(k)));
    }
    float mx = hmax8(vmax);
    __m256 vm = _mm256_set1_ps(mx), vs = _mm256_setzero_ps();
    for (i = 0; i + 8 <= n; i += 8) {
        __m256 e = exp8(_mm256_sub_ps(_mm256_loadu_ps(p + i), vm));
        _mm256_storeu_ps(p + i, e);
        vs = _mm256_add_ps(vs, e);
    }
    if (i < n) {
        __m256i k = tail(n - i);
        __m256 e = _mm256_and_ps(exp8(_mm256_sub_ps(_mm256_maskload_ps(p + i, k), vm)), _mm256_castsi256_ps(k));
        _mm256_maskstore_ps(p + i, k, e);
        vs = _mm256_add_ps(vs, e);
    }
    float sum = hsum8(vs);
    __m256 inv = _mm256_set1_ps(1.0f / sum);
    for (i = 0; i + 8 <= n; i += 8) _mm256_storeu_ps(p + i, _mm256_mul_ps(_mm256_loadu_ps(p + i), inv));
    if (i < n) {
        __m256i k = tail(n - i);
        _mm256_maskstore_ps(p + i, k, _mm256_mul_ps(_mm256_maskload_ps(p + i, k), inv));
    }
    return mx + logf(sum);
}

static void exp_sub_avx2(float *p, int64_t n, float c) {
    __m256 vc = _mm256_set1_ps(c);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(p + i, exp8(_mm256_sub_ps(_mm256_loadu_ps(p + i), vc)));
    if (i < n) {
        __m256i k = tail(n - i);
        _mm256_maskstore_ps(p + i, k, exp8(_mm256_sub_ps(_mm256_maskload_ps(p + i, k), vc)));
    }
}

const hn_vmath_set hn_vmath_avx2 = {exp_avx2, erf_avx2, gelu_erf_avx2, gelu_erf_grad_avx2, softmax_avx2, exp_sub_avx2};
