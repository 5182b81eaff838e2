// tensor/vmath_avx512.c — the vector-math set (exp, erf, exact GELU, softmax rows) 16 lanes at a time, the formulas
// of kernels.h with FMA; a row's last partial vector goes through masked loads and stores. Call only when the CPU
// has AVX-512 (hn_vmath_of checks the level).
#include "tensor/kernels.h"

#include <immintrin.h>
#include <math.h>

static inline __m512 exp16(__m512 x) {
    // max/min return their second operand when either is NaN: a NaN x stays NaN.
    x = _mm512_min_ps(_mm512_set1_ps(88.0f), _mm512_max_ps(_mm512_set1_ps(-87.3f), x));
    const __m512 shift = _mm512_set1_ps(12582912.0f);
    __m512 t = _mm512_fmadd_ps(x, _mm512_set1_ps(1.44269504088896341f), shift);
    __m512 n = _mm512_sub_ps(t, shift);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693145751953125f), x);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(1.42860682030941723212e-6f), r);
    __m512 p = _mm512_set1_ps(1.0f / 720);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 120));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 24));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 6));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.5f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    __m512i bits = _mm512_slli_epi32(_mm512_sub_epi32(_mm512_castps_si512(t), _mm512_set1_epi32(0x4B400000)), 23);
    bits = _mm512_add_epi32(bits, _mm512_set1_epi32(0x3F800000));
    return _mm512_mul_ps(p, _mm512_castsi512_ps(bits));
}

static inline __m512 erf16(__m512 x) {
    const __m512 sign = _mm512_set1_ps(-0.0f), one = _mm512_set1_ps(1.0f);
    __m512 a = _mm512_min_ps(_mm512_set1_ps(4.0f), _mm512_andnot_ps(sign, x)); // a NaN stays NaN
    __mmask16 small = _mm512_cmp_ps_mask(a, one, _CMP_LT_OQ);
    __m512 u = _mm512_mul_ps(a, a), r = _mm512_setzero_ps();
    if (small) {
        __m512 p = _mm512_set1_ps(hn_erf_a[HN_ERF_A_DEG]);
        for (int k = HN_ERF_A_DEG - 1; k >= 0; k--) p = _mm512_fmadd_ps(p, u, _mm512_set1_ps(hn_erf_a[k]));
        r = _mm512_fmadd_ps(a, p, a);
    }
    if (small != 0xFFFF) {
        __m512 w = _mm512_sub_ps(a, _mm512_set1_ps(HN_ERF_B_MID)), p = _mm512_set1_ps(hn_erf_b[HN_ERF_B_DEG]);
        for (int k = HN_ERF_B_DEG - 1; k >= 0; k--) p = _mm512_fmadd_ps(p, w, _mm512_set1_ps(hn_erf_b[k]));
        __m512 rb = _mm512_fnmadd_ps(exp16(_mm512_xor_ps(u, sign)), p, one);
        r = _mm512_mask_blend_ps(small, rb, r);
    }
    return _mm512_or_ps(r, _mm512_and_ps(x, sign));
}

static inline __m512 gelu16(__m512 x) {
    __m512 e = erf16(_mm512_mul_ps(x, _mm512_set1_ps((float)M_SQRT1_2)));
    return _mm512_mul_ps(_mm512_mul_ps(_mm512_set1_ps(0.5f), x), _mm512_add_ps(_mm512_set1_ps(1.0f), e));
}

static inline __m512 gelu_grad16(__m512 x) {
    __m512 cdf = erf16(_mm512_mul_ps(x, _mm512_set1_ps((float)M_SQRT1_2)));
    cdf = _mm512_mul_ps(_mm512_set1_ps(0.5f), _mm512_add_ps(_mm512_set1_ps(1.0f), cdf));
    __m512 pdf = exp16(_mm512_mul_ps(_mm512_set1_ps(-0.5f), _mm512_mul_ps(x, x)));
    return _mm512_fmadd_ps(_mm512_mul_ps(x, _mm512_set1_ps(HN_INV_SQRT_2PI)), pdf, cdf);
}

static inline __mmask16 tail(int64_t n) { return (__mmask16)((1u << n) - 1); }

#define MAP16(name, f)                                                                                               \
    static void name(float *y, const float *x, int64_t n) {                                                          \
        int64_t i = 0;                                                                                               \
        for (; i + 16 <= n; i += 16) _mm512_storeu_ps(y + i, f(_mm512_loadu_ps(x + i)));                             \
        if (i < n) {                                                                                                 \
            __mmask16 k = tail(n - i);                                                                               \
            _mm512_mask_storeu_ps(y + i, k, f(_mm512_maskz_loadu_ps(k, x + i)));                                     \
        }                                                                                                            \
    }
MAP16(exp_avx512, exp16)
MAP16(erf_avx512, erf16)
MAP16(gelu_erf_avx512, gelu16)

static void gelu_erf_grad_avx512(float *gx, const float *x, const float *dy, int64_t n) {
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m512 g = _mm512_mul_ps(_mm512_loadu_ps(dy + i), gelu_grad16(_mm512_loadu_ps(x + i)));
        _mm512_storeu_ps(gx + i, _mm512_add_ps(_mm512_loadu_ps(gx + i), g));
    }
    if (i < n) {
        __mmask16 k = tail(n - i);
        __m512 g = _mm512_mul_ps(_mm512_maskz_loadu_ps(k, dy + i), gelu_grad16(_mm512_maskz_loadu_ps(k, x + i)));
        _mm512_mask_storeu_ps(gx + i, k, _mm512_add_ps(_mm512_maskz_loadu_ps(k, gx + i), g));
    }
}

static float softmax_avx512(float *p, int64_t n) {
    __m512 vmax = _mm512_set1_ps(-INFINITY);
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) vmax = _mm512_max_ps(vmax, _mm512_loadu_ps(p + i));
    if (i < n) {
        __mmask16 k = tail(n - i);
        vmax = _mm512_mask_max_ps(vmax, k, vmax, _mm512_maskz_loadu_ps(k, p + i));
    }
    float mx = _mm512_reduce_max_ps(vmax);
    __m512 vm = _mm512_set1_ps(mx), vs = _mm512_setzero_ps();
    for (i = 0; i + 16 <= n; i += 16) {
        __m512 e = exp16(_mm512_sub_ps(_mm512_loadu_ps(p + i), vm));
        _mm512_storeu_ps(p + i, e);
        vs = _mm512_add_ps(vs, e);
    }
    if (i < n) {
        __mmask16 k = tail(n - i);
        __m512 e = exp16(_mm512_sub_ps(_mm512_maskz_loadu_ps(k, p + i), vm));
        _mm512_mask_storeu_ps(p + i, k, e);
        vs = _mm512_mask_add_ps(vs, k, vs, e);
    }
    float sum = _mm512_reduce_add_ps(vs);
    __m512 inv = _mm512_set1_ps(1.0f / sum);
    for (i = 0; i + 16 <= n; i += 16) _mm512_storeu_ps(p + i, _mm512_mul_ps(_mm512_loadu_ps(p + i), inv));
    if (i < n) {
        __mmask16 k = tail(n - i);
        _mm512_mask_storeu_ps(p + i, k, _mm512_mul_ps(_mm512_maskz_loadu_ps(k, p + i), inv));
    }
    return mx + logf(sum);
}

static void exp_sub_avx512(float *p, int64_t n, float c) {
    __m512 vc = _mm512_set1_ps(c);
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) _mm512_storeu_ps(p + i, exp16(_mm512_sub_ps(_mm512_loadu_ps(p + i), vc)));
    if (i < n) {
        __mmask16 k = tail(n - i);
        _mm512_mask_storeu_ps(p + i, k, exp16(_mm512_sub_ps(_mm512_maskz_loadu_ps(k, p + i), vc)));
    }
}

const hn_vmath_set hn_vmath_avx512 = {exp_avx512, erf_avx512, gelu_erf_avx512, gelu_erf_grad_avx512,
                                      softmax_avx512, exp_sub_avx512};
