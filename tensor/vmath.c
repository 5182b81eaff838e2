// tensor/vmath.c — the scalar vector-math set (exp, erf, exact GELU, softmax rows; formulas in kernels.h) and the
// choice of set by SIMD level. The SIMD sets (vmath_avx2.c, vmath_avx512.c) compute the same formulas 8 or 16 lanes
// at a time; this one serves CPUs without AVX2 and HONE_SIMD=scalar, and is what tests compare them with.
#include "tensor/kernels.h"

#include <math.h>
#include <string.h>

static inline float erf_one(float x) {
    float a = fabsf(x);
    a = a > 4.0f ? 4.0f : a; // a NaN stays NaN
    float r;
    if (a < 1.0f) {
        float u = a * a, p = hn_erf_a[HN_ERF_A_DEG];
        for (int k = HN_ERF_A_DEG - 1; k >= 0; k--) p = p * u + hn_erf_a[k];
        r = a + a * p;
    } else {
        float w = a - HN_ERF_B_MID, p = hn_erf_b[HN_ERF_B_DEG];
        for (int k = HN_ERF_B_DEG - 1; k >= 0; k--) p = p * w + hn_erf_b[k];
        r = 1.0f - hn_exp1(-(a * a)) * p;
    }
    return copysignf(r, x);
}

static void exp_ref(float *y, const float *x, int64_t n) {
    for (int64_t i = 0; i < n; i++) y[i] = hn_exp1(x[i]);
}

static void erf_ref(float *y, const float *x, int64_t n) {
    for (int64_t i = 0; i < n; i++) y[i] = erf_one(x[i]);
}

static void gelu_erf_ref(float *y, const float *x, int64_t n) {
    for (int64_t i = 0; i < n; i++) y[i] = 0.5f * x[i] * (1.0f + erf_one(x[i] * (float)M_SQRT1_2));
}

static void gelu_erf_grad_ref(float *gx, const float *x, const float *dy, int64_t n) {
    for (int64_t i = 0; i < n; i++) {
        float cdf = 0.5f * (1.0f + erf_one(x[i] * (float)M_SQRT1_2));
        gx[i] += dy[i] * (cdf + x[i] * HN_INV_SQRT_2PI * hn_exp1(-0.5f * x[i] * x[i]));
    }
}

static float softmax_ref(float *p, int64_t n) {
    float mx = p[0];
    for (int64_t i = 1; i < n; i++) mx = p[i] > mx ? p[i] : mx;
    float sum = 0;
    for (int64_t i = 0; i < n; i++) sum += p[i] = hn_exp1(p[i] - mx);
    float inv = 1.0f / sum;
    for (int64_t i = 0; i < n; i++) p[i] *= inv;
    return mx + logf(sum);
}

static void exp_sub_ref(float *p, int64_t n, float c) {
    for (int64_t i = 0; i < n; i++) p[i] = hn_exp1(p[i] - c);
}

const hn_vmath_set hn_vmath_ref = {exp_ref, erf_ref, gelu_erf_ref, gelu_erf_grad_ref, softmax_ref, exp_sub_ref};

const hn_vmath_set *hn_vmath_of(hn_simd level) {
    return level >= HN_SIMD_AVX512 ? &hn_vmath_avx512 : level >= HN_SIMD_AVX2 ? &hn_vmath_avx2 : &hn_vmath_ref;
}

const hn_vmath_set *hn_vmath_active(void) { return hn_vmath_of(hn_simd_active()); }
