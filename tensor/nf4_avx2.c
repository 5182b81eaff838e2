// tensor/nf4_avx2.c — NF4 dequantization and fp32 dot products over whole 64-element blocks with AVX2 (nf4.c
// calls them when the CPU has AVX2 and HONE_SIMD allows it). The 16-value table is looked up with two 8-lane
// permutes and a blend on the code's bit 3. Dequantized values are NF4[code] * scale, one fp32 product as in the
// scalar kernel, so to_f32 is the same bit for bit; the dot product sums in another order.
#include "tensor/nf4.h"

#include <immintrin.h>
#include <string.h>

// Eight codes of four bytes in element order (high nibble first) as 32-bit lanes.
static inline __m256i codes8(const uint8_t *q) {
    uint32_t w;
    memcpy(&w, q, 4);
    __m128i b = _mm_shuffle_epi8(_mm_cvtsi32_si128((int)w), _mm_setr_epi8(0, 0, 1, 1, 2, 2, 3, 3, -1, -1, -1, -1,
                                                                            -1, -1, -1, -1));
    __m256i v = _mm256_cvtepu8_epi32(b);
    v = _mm256_srlv_epi32(v, _mm256_setr_epi32(4, 0, 4, 0, 4, 0, 4, 0));
    return _mm256_and_si256(v, _mm256_set1_epi32(15));
}

static inline __m256 lookup(__m256i idx, __m256 lo, __m256 hi) {
    __m256 a = _mm256_permutevar8x32_ps(lo, idx), b = _mm256_permutevar8x32_ps(hi, idx);
    return _mm256_blendv_ps(a, b, _mm256_castsi256_ps(_mm256_slli_epi32(idx, 28))); // bit 3 -> sign
}

void hn_nf4_dequant_avx2(const uint8_t *q, const float *scale, int64_t nblocks, float *dst) {
    const __m256 lo = _mm256_loadu_ps(hn_nf4_values), hi = _mm256_loadu_ps(hn_nf4_values + 8);
    for (int64_t b = 0; b < nblocks; b++, q += HN_NF4_BLOCK / 2, dst += HN_NF4_BLOCK) {
        const __m256 s = _mm256_set1_ps(scale[b]);
        for (int j = 0; j < HN_NF4_BLOCK; j += 8)
            _mm256_storeu_ps(dst + j, _mm256_mul_ps(lookup(codes8(q + j / 2), lo, hi), s));
    }
}

float hn_nf4_dot_avx2(const uint8_t *q, const float *scale, int64_t nblocks, const float *x) {
    const __m256 lo = _mm256_loadu_ps(hn_nf4_values), hi = _mm256_loadu_ps(hn_nf4_values + 8);
    __m256 acc = _mm256_setzero_ps();
    for (int64_t b = 0; b < nblocks; b++, q += HN_NF4_BLOCK / 2, x += HN_NF4_BLOCK) {
        __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
        for (int j = 0; j < HN_NF4_BLOCK; j += 16) {
            s0 = _mm256_fmadd_ps(lookup(codes8(q + j / 2), lo, hi), _mm256_loadu_ps(x + j), s0);
            s1 = _mm256_fmadd_ps(lookup(codes8(q + j / 2 + 4), lo, hi), _mm256_loadu_ps(x + j + 8), s1);
        }
        acc = _mm256_fmadd_ps(_mm256_add_ps(s0, s1), _mm256_set1_ps(scale[b]), acc);
    }
    __m128 h = _mm_add_ps(_mm256_castps256_ps128(acc), _mm256_extractf128_ps(acc, 1));
    h = _mm_add_ps(h, _mm_movehl_ps(h, h));
    h = _mm_add_ss(h, _mm_movehdup_ps(h));
    return _mm_cvtss_f32(h);
}

void hn_nf4_codes_avx2(const float *x, float inv, const float *mid, uint8_t *out) {
    const __m256 vi = _mm256_set1_ps(inv);
    for (int j = 0; j < HN_NF4_BLOCK; j += 8) {
        __m256 s = _mm256_mul_ps(_mm256_loadu_ps(x + j), vi);
        __m256i q = _mm256_setzero_si256();
        for (int i = 0; i < 15; i++) // each bound strictly below s adds one (a true compare is -1)
            q = _mm256_sub_epi32(q, _mm256_castps_si256(_mm256_cmp_ps(s, _mm256_set1_ps(mid[i]), _CMP_GT_OQ)));
        int32_t c[8];
        _mm256_storeu_si256((__m256i *)c, q);
        for (int k = 0; k < 8; k += 2) out[(j + k) / 2] = (uint8_t)(c[k] << 4 | c[k + 1]);
    }
}
