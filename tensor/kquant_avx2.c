// tensor/kquant_avx2.c — AVX2 + FMA + F16C kernels for the K-quants (Q2_K ... Q6_K), Q5_0 and Q5_1 with fp32
// activations: dequantize, the dot product and the decode kernel (kernels.h, hn_mv_fn). This file is compiled with
// those flags; they are entries of tensor/dot_avx2.c's kernel set, called only when the CPU has AVX2.
//
// Every kernel walks a block as 8 groups of 32 consecutive elements (a Q4_K/Q5_K sub-block; a quarter of a Q6_K
// half; two Q2_K/Q3_K sub-blocks), each group 4 vectors of 8: w = q * s + c by one FMA, where s is the group's (or
// half-group's) scale times the f16 super-scale and c minus its min (Q2_K, Q4_K, Q5_K) or -0 (Q3_K, Q6_K, Q5_0;
// Q5_1: its m). q * s is exact in fp32 (kquant.c), so the one rounding gives the reference's values bit for bit
// (and -0 keeps the sign of a zero product).
#include "tensor/kernels.h"

#include <immintrin.h>
#include <string.h>

static inline float h2f(hn_f16 h) { return _cvtsh_ss(h); }

static inline float hsum8(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

// 8 bytes -> 8 int32
static inline __m256i u8x8(const uint8_t *p) { return _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)p)); }

// A block's per-group constants: scale of the group's first and last 16 values, and the added constant.
typedef struct {
    float s[8][2];
    float c[8][2];
} kq_consts;

// The 8 six-bit scales and mins of Q4_K/Q5_K, unpacked four at a time in 32-bit words (FORMATS.md 2.5: bytes 0-3
// hold scales 0-3 and the top bits of scales 4-7, bytes 4-7 the same for the mins, bytes 8-11 the low nibbles of
// scales and mins 4-7), then converted and scaled 8 at a time.
static inline void consts_k4(const uint8_t *scales, float d, float dmin, kq_consts *k) {
    uint32_t a[3];
    memcpy(a, scales, 12);
    uint32_t sc_lo = a[0] & 0x3f3f3f3fu, m_lo = a[1] & 0x3f3f3f3fu;
    uint32_t sc_hi = (a[2] & 0x0f0f0f0fu) | (((a[0] >> 6) & 0x03030303u) << 4);
    uint32_t m_hi = ((a[2] >> 4) & 0x0f0f0f0fu) | (((a[1] >> 6) & 0x03030303u) << 4);
    float s[8], c[8];
    __m256 fs = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_setr_epi32((int)sc_lo, (int)sc_hi, 0, 0)));
    __m256 fm = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_setr_epi32((int)m_lo, (int)m_hi, 0, 0)));
    _mm256_storeu_ps(s, _mm256_mul_ps(fs, _mm256_set1_ps(d)));
    _mm256_storeu_ps(c, _mm256_mul_ps(fm, _mm256_set1_ps(-dmin))); // m * -dmin = -(dmin * m) exactly
    #pragma GCC unroll 8
    for (int j = 0; j < 8; j++) {
        k->s[j][0] = k->s[j][1] = s[j];
        k->c[j][0] = k->c[j][1] = c[j];
    }
}

static inline void block_consts(const int type, const uint8_t *blk, kq_consts *k) {
    if (type == HN_Q4_K) {
        const hn_block_q4_k *b = (const hn_block_q4_k *)blk;
        consts_k4(b->scales, h2f(b->d), h2f(b->dmin), k);
    } else if (type == HN_Q5_K) {
        const hn_block_q5_k *b = (const hn_block_q5_k *)blk;
        consts_k4(b->scales, h2f(b->d), h2f(b->dmin), k);
    } else if (type == HN_Q6_K) { // group 4h + q covers elements 128h + 32q + l, scales 8h + 2q and 8h + 2q + 1
        const hn_block_q6_k *b = (const hn_block_q6_k *)blk;
        float d = h2f(b->d);
        #pragma GCC unroll 8
        for (int g = 0; g < 8; g++) {
            k->s[g][0] = d * (float)b->scales[2 * g];
            k->s[g][1] = d * (float)b->scales[2 * g + 1];
            k->c[g][0] = k->c[g][1] = -0.0f;
        }
    } else if (type == HN_Q2_K) { // sub-block i (16 elements): 4-bit scale and min in scales[i]
        const hn_block_q2_k *b = (const hn_block_q2_k *)blk;
        float d = h2f(b->d), dmin = h2f(b->dmin);
        for (int i = 0; i < 16; i++) {
            k->s[i / 2][i % 2] = d * (float)(b->scales[i] & 0x0f);
            k->c[i / 2][i % 2] = -(dmin * (float)(b->scales[i] >> 4));
        }
    } else { // Q3_K: 16 six-bit signed scales (FORMATS.md 2.9)
        const hn_block_q3_k *b = (const hn_block_q3_k *)blk;
        float d = h2f(b->d);
        for (int i = 0; i < 16; i++) {
            int low4 = i < 8 ? b->scales[i] & 0x0f : b->scales[i - 8] >> 4;
            int high2 = (b->scales[8 + i % 4] >> (2 * (i / 4))) & 3;
            k->s[i / 2][i % 2] = d * (float)((low4 | high2 << 4) - 32);
            k->c[i / 2][i % 2] = -0.0f;
        }
    }
}

// Group g of a K-quant block as 4 vectors of 8 fp32 values.
static inline __attribute__((always_inline)) void group_w(const int type, const uint8_t *blk, int g,
                                                          const kq_consts *k, __m256 w[4]) {
    __m256i q[4];
    const __m256i low = _mm256_set1_epi32(0x0f);
    if (type == HN_Q4_K || type == HN_Q5_K) {
        // Sub-block g: chunk g/2 of 32 bytes, low nibbles for even g, high for odd.
        const uint8_t *qs = type == HN_Q4_K ? ((const hn_block_q4_k *)blk)->qs : ((const hn_block_q5_k *)blk)->qs;
        qs += 32 * (g / 2);
        #pragma GCC unroll 8
        for (int v = 0; v < 4; v++) {
            __m256i b = u8x8(qs + 8 * v);
            q[v] = g & 1 ? _mm256_srli_epi32(b, 4) : _mm256_and_si256(b, low);
        }
        if (type == HN_Q5_K) { // fifth bit of element 32g + l: bit g of qh[l]
            const uint8_t *qh = ((const hn_block_q5_k *)blk)->qh;
            #pragma GCC unroll 8
            for (int v = 0; v < 4; v++) {
                __m256i hb = _mm256_and_si256(_mm256_srli_epi32(u8x8(qh + 8 * v), g), _mm256_set1_epi32(1));
                q[v] = _mm256_or_si256(q[v], _mm256_slli_epi32(hb, 4));
            }
        }
    } else if (type == HN_Q2_K || type == HN_Q3_K) {
        // Element 32g + l = 128h + 32j + l: bits 2j of qs[32h + l]; Q3_K: minus 4 unless bit g of hmask[l] is set.
        int h = g / 4, j = g % 4;
        const uint8_t *qs = type == HN_Q2_K ? ((const hn_block_q2_k *)blk)->qs : ((const hn_block_q3_k *)blk)->qs;
        qs += 32 * h;
        #pragma GCC unroll 8
        for (int v = 0; v < 4; v++) {
            q[v] = _mm256_and_si256(_mm256_srli_epi32(u8x8(qs + 8 * v), 2 * j), _mm256_set1_epi32(3));
            if (type == HN_Q3_K) {
                __m256i hb = _mm256_and_si256(_mm256_srli_epi32(u8x8(((const hn_block_q3_k *)blk)->hmask + 8 * v), g),
                                              _mm256_set1_epi32(1));
                q[v] = _mm256_sub_epi32(q[v], _mm256_slli_epi32(_mm256_xor_si256(hb, _mm256_set1_epi32(1)), 2));
            }
        }
    } else { // Q6_K, half h = g/4, quarter r = g%4: low 4 bits from ql, high 2 from qh, minus 32
        const hn_block_q6_k *b = (const hn_block_q6_k *)blk;
        int h = g / 4, r = g % 4;
        const uint8_t *ql = b->ql + 64 * h + 32 * (r & 1), *qh = b->qh + 32 * h;
        #pragma GCC unroll 8
        for (int v = 0; v < 4; v++) {
            __m256i lo = u8x8(ql + 8 * v);
            lo = r >= 2 ? _mm256_srli_epi32(lo, 4) : _mm256_and_si256(lo, low);
            __m256i hi = _mm256_and_si256(_mm256_srli_epi32(u8x8(qh + 8 * v), 2 * r), _mm256_set1_epi32(3));
            q[v] = _mm256_sub_epi32(_mm256_or_si256(lo, _mm256_slli_epi32(hi, 4)), _mm256_set1_epi32(32));
        }
    }
    __m256 s0 = _mm256_set1_ps(k->s[g][0]), s1 = _mm256_set1_ps(k->s[g][1]);
    __m256 c0 = _mm256_set1_ps(k->c[g][0]), c1 = _mm256_set1_ps(k->c[g][1]);
    w[0] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(q[0]), s0, c0);
    w[1] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(q[1]), s0, c0);
    w[2] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(q[2]), s1, c1);
    w[3] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(q[3]), s1, c1);
}

// Q5_0 / Q5_1 block as 4 vectors: (q - 16) * d or q * d + m, the fifth bit of element j in bit j of qh.
static inline __attribute__((always_inline)) void q5_w(const int type, const uint8_t *blk, __m256 w[4]) {
    const uint8_t *qh8, *qs;
    __m256 d, m = _mm256_setzero_ps();
    if (type == HN_Q5_0) {
        const hn_block_q5_0 *b = (const hn_block_q5_0 *)blk;
        qh8 = b->qh, qs = b->qs, d = _mm256_set1_ps(h2f(b->d));
    } else {
        const hn_block_q5_1 *b = (const hn_block_q5_1 *)blk;
        qh8 = b->qh, qs = b->qs, d = _mm256_set1_ps(h2f(b->d)), m = _mm256_set1_ps(h2f(b->m));
    }
    uint32_t qh = (uint32_t)qh8[0] | (uint32_t)qh8[1] << 8 | (uint32_t)qh8[2] << 16 | (uint32_t)qh8[3] << 24;
    const __m256i low = _mm256_set1_epi32(0x0f), lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    __m256i v0 = u8x8(qs), v1 = u8x8(qs + 8), hv = _mm256_set1_epi32((int)qh);
    __m256i lo[4] = {_mm256_and_si256(v0, low), _mm256_and_si256(v1, low), _mm256_srli_epi32(v0, 4),
                     _mm256_srli_epi32(v1, 4)};
    #pragma GCC unroll 8
    for (int v = 0; v < 4; v++) {
        __m256i bit = _mm256_and_si256(_mm256_srlv_epi32(hv, _mm256_add_epi32(lane, _mm256_set1_epi32(8 * v))),
                                       _mm256_set1_epi32(1));
        __m256i q = _mm256_or_si256(lo[v], _mm256_slli_epi32(bit, 4));
        if (type == HN_Q5_0) w[v] = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_sub_epi32(q, _mm256_set1_epi32(16))), d);
        else w[v] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(q), d, m);
    }
}

// ---- dequantize ----

static inline __attribute__((always_inline)) void k_to_f32(const int type, const size_t bs, const void *src,
                                                           float *dst, int64_t n) {
    for (int64_t i = 0; i < n / HN_QK_K; i++) {
        const uint8_t *blk = (const uint8_t *)src + (size_t)i * bs;
        kq_consts k;
        block_consts(type, blk, &k);
        #pragma GCC unroll 8
        for (int g = 0; g < 8; g++) {
            __m256 w[4];
            group_w(type, blk, g, &k, w);
            #pragma GCC unroll 8
            for (int v = 0; v < 4; v++) _mm256_storeu_ps(dst + i * HN_QK_K + 32 * g + 8 * v, w[v]);
        }
    }
}

void hn_q4_k_to_f32_avx2(const void *src, float *dst, int64_t n) {
    k_to_f32(HN_Q4_K, sizeof(hn_block_q4_k), src, dst, n);
}
void hn_q5_k_to_f32_avx2(const void *src, float *dst, int64_t n) {
    k_to_f32(HN_Q5_K, sizeof(hn_block_q5_k), src, dst, n);
}
void hn_q2_k_to_f32_avx2(const void *src, float *dst, int64_t n) {
    k_to_f32(HN_Q2_K, sizeof(hn_block_q2_k), src, dst, n);
}
void hn_q3_k_to_f32_avx2(const void *src, float *dst, int64_t n) {
    k_to_f32(HN_Q3_K, sizeof(hn_block_q3_k), src, dst, n);
}
void hn_q6_k_to_f32_avx2(const void *src, float *dst, int64_t n) {
    k_to_f32(HN_Q6_K, sizeof(hn_block_q6_k), src, dst, n);
}

static inline __attribute__((always_inline)) void q5_to_f32(const int type, const size_t bs, const void *src,
                                                            float *dst, int64_t n) {
    for (int64_t i = 0; i < n / HN_QK; i++) {
        __m256 w[4];
        q5_w(type, (const uint8_t *)src + (size_t)i * bs, w);
        #pragma GCC unroll 8
        for (int v = 0; v < 4; v++) _mm256_storeu_ps(dst + i * HN_QK + 8 * v, w[v]);
    }
}

void hn_q5_0_to_f32_avx2(const void *src, float *dst, int64_t n) {
    q5_to_f32(HN_Q5_0, sizeof(hn_block_q5_0), src, dst, n);
}
void hn_q5_1_to_f32_avx2(const void *src, float *dst, int64_t n) {
    q5_to_f32(HN_Q5_1, sizeof(hn_block_q5_1), src, dst, n);
}

// ---- decode kernels and dot products ----

// One weight row x TT tokens over all of K, four accumulators per token (one per eighth of a group), so every
// output is summed the same way whatever TT; one row at a time, so the weight is read as one sequential stream.
static inline __attribute__((always_inline)) void mv_tile(const int type, const size_t bs, const int TT, int64_t K,
                                                          const uint8_t *w, const float *x, float *y, int64_t ldy) {
    __m256 acc[2][4];
    #pragma GCC unroll 8
    for (int t = 0; t < TT; t++)
        #pragma GCC unroll 8
        for (int v = 0; v < 4; v++) acc[t][v] = _mm256_setzero_ps();
    if (type == HN_Q5_0 || type == HN_Q5_1) {
        for (int64_t b = 0; b < K / HN_QK; b++) {
            __m256 wv[4];
            q5_w(type, w + (size_t)b * bs, wv);
            #pragma GCC unroll 8
            for (int t = 0; t < TT; t++) {
                const float *xb = x + t * K + b * HN_QK;
                #pragma GCC unroll 8
                for (int v = 0; v < 4; v++) acc[t][v] = _mm256_fmadd_ps(wv[v], _mm256_loadu_ps(xb + 8 * v), acc[t][v]);
            }
        }
    } else {
        for (int64_t b = 0; b < K / HN_QK_K; b++) {
            const uint8_t *blk = w + (size_t)b * bs;
            kq_consts k;
            block_consts(type, blk, &k);
            #pragma GCC unroll 8
            for (int g = 0; g < 8; g++) {
                __m256 wv[4];
                group_w(type, blk, g, &k, wv);
                #pragma GCC unroll 8
                for (int t = 0; t < TT; t++) {
                    const float *xb = x + t * K + b * HN_QK_K + 32 * g;
                    #pragma GCC unroll 8
                    for (int v = 0; v < 4; v++)
                        acc[t][v] = _mm256_fmadd_ps(wv[v], _mm256_loadu_ps(xb + 8 * v), acc[t][v]);
                }
            }
        }
    }
    #pragma GCC unroll 8
    for (int t = 0; t < TT; t++)
        y[t * ldy] = hsum8(_mm256_add_ps(_mm256_add_ps(acc[t][0], acc[t][1]), _mm256_add_ps(acc[t][2], acc[t][3])));
}

// Tokens 2 at a time: 8 accumulators, 4 weight vectors and the constants fit the 16 registers.
static inline __attribute__((always_inline)) void mv_type(const int type, const size_t bs, int64_t K, const void *w,
                                                          size_t rb, int64_t nr, const float *x, int64_t T, float *y,
                                                          int64_t ldy) {
    for (int64_t r = 0; r < nr; r++) {
        const uint8_t *wr = (const uint8_t *)w + (size_t)r * rb;
        int64_t t = 0;
        for (; t + 2 <= T; t += 2) mv_tile(type, bs, 2, K, wr, x + t * K, y + t * ldy + r, ldy);
        if (t < T) mv_tile(type, bs, 1, K, wr, x + t * K, y + t * ldy + r, ldy);
    }
}

#define KQ_MV(name, TYPE, block)                                                                                     \
    void hn_mv_##name##_avx2(int64_t K, const void *w, size_t rb, int64_t nr, const float *x, int64_t T, float *y,   \
                             int64_t ldy) {                                                                          \
        mv_type(TYPE, sizeof(block), K, w, rb, nr, x, T, y, ldy);                                                    \
    }                                                                                                                \
    float hn_dot_##name##_avx2(int64_t n, const void *w, const void *x) {                                            \
        float y;                                                                                                     \
        mv_tile(TYPE, sizeof(block), 1, n, w, x, &y, 1);                                                             \
        return y;                                                                                                    \
    }
KQ_MV(q2_k, HN_Q2_K, hn_block_q2_k)
KQ_MV(q3_k, HN_Q3_K, hn_block_q3_k)
KQ_MV(q4_k, HN_Q4_K, hn_block_q4_k)
KQ_MV(q5_k, HN_Q5_K, hn_block_q5_k)
KQ_MV(q6_k, HN_Q6_K, hn_block_q6_k)
KQ_MV(q5_0, HN_Q5_0, hn_block_q5_0)
KQ_MV(q5_1, HN_Q5_1, hn_block_q5_1)
