// tensor/kquant_avx512.c — AVX-512 kernels for the K-quants (Q2_K ... Q6_K), Q5_0 and Q5_1 with fp32 activations:
// dequantize, the dot product and the decode kernel (kernels.h, hn_mv_fn). Compiled with AVX-512 flags; entries of
// tensor/dot_avx512.c's kernel set, called only when the CPU has them.
//
// The kernels walk the weights 64 elements at a time (a Q4_K/Q5_K chunk of two sub-blocks, two Q6_K quarters, four
// Q2_K/Q3_K sub-blocks, two Q5_0/Q5_1 blocks), as 4 vectors of 16 floats:
//   - Q4_K, Q5_K, Q5_0, Q5_1: one table lookup per 16 elements. vpermps / vpermt2ps read only the low 4 / 5 bits
//     of each index lane, so zero-extended quants index a table {i * s + c} (i = 0..15, or 0..31 over two
//     registers) built by one FMA per register; i * s is exact in fp32 (kquant.c), so each entry is the
//     reference's value bit for bit.
//   - Q6_K, Q2_K, Q3_K: quants converted and multiplied by the scale (exact), plus Q2_K's min by the same FMA.
#include "tensor/kernels.h"

#include <immintrin.h>
#include <string.h>

static inline float h2f(hn_f16 h) { return _cvtsh_ss(h); }

// 16 bytes -> 16 int32
static inline __m512i u8x16(const uint8_t *p) { return _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)p)); }

static inline __m512 iota16(void) { return _mm512_setr_ps(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15); }

// A block's scales, unpacked once: the scale of each sub-block (Q4_K/Q5_K: 8 of 32 elements; Q6_K: 16 of 16) and
// the added constant of each (Q4_K/Q5_K). -(dmin * m) = m * -dmin exactly.
typedef struct {
    // Q4_K/Q5_K: s[j] = d * sc[j], s[8 + j] = -(dmin * m[j]); Q6_K, Q3_K: s[i] = d * scale[i];
    // Q2_K: s[i] = d * sc[i], s[16 + i] = -(dmin * m[i]). Held in registers: s[i] is lane i % 16 of v[i / 16].
    __m512 v[2];
} kq_scales;

// s[i] broadcast to all lanes (a register permute, no store and reload).
static inline __m512 kq_s(const kq_scales *k, int i) {
    return _mm512_permutexvar_ps(_mm512_set1_epi32(i & 15), k->v[i >> 4]);
}

static inline __attribute__((always_inline)) void block_scales(const int type, const uint8_t *blk, kq_scales *k) {
    if (type == HN_Q2_K) {
        const hn_block_q2_k *b = (const hn_block_q2_k *)blk;
        __m512i sc = u8x16(b->scales);
        __m512 lo = _mm512_cvtepi32_ps(_mm512_and_si512(sc, _mm512_set1_epi32(0x0f)));
        __m512 hi = _mm512_cvtepi32_ps(_mm512_srli_epi32(sc, 4));
        k->v[0] = _mm512_mul_ps(lo, _mm512_set1_ps(h2f(b->d)));
        k->v[1] = _mm512_mul_ps(hi, _mm512_set1_ps(-h2f(b->dmin)));
        return;
    }
    if (type == HN_Q3_K) {
        const hn_block_q3_k *b = (const hn_block_q3_k *)blk;
        float d = h2f(b->d), s[16];
        for (int i = 0; i < 16; i++) {
            int low4 = i < 8 ? b->scales[i] & 0x0f : b->scales[i - 8] >> 4;
            int high2 = (b->scales[8 + i % 4] >> (2 * (i / 4))) & 3;
            s[i] = d * (float)((low4 | high2 << 4) - 32);
        }
        k->v[0] = _mm512_loadu_ps(s);
        return;
    }
    if (type == HN_Q6_K) {
        const hn_block_q6_k *b = (const hn_block_q6_k *)blk;
        __m512 sc = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)b->scales)));
        k->v[0] = _mm512_mul_ps(sc, _mm512_set1_ps(h2f(b->d)));
        return;
    }
    // Q4_K and Q5_K start alike: d, dmin, scales[12]. The 6-bit fields unpacked four at a time in 32-bit words
    // (FORMATS.md 2.5: bytes 0-3 scales 0-3 and the top bits of scales 4-7, bytes 4-7 the same for the mins, bytes
    // 8-11 the low nibbles of scales and mins 4-7), then all 16 converted and scaled in one vector.
    const hn_block_q4_k *b = (const hn_block_q4_k *)blk;
    uint32_t a[3];
    memcpy(a, b->scales, 12);
    uint32_t sc_lo = a[0] & 0x3f3f3f3fu, m_lo = a[1] & 0x3f3f3f3fu;
    uint32_t sc_hi = (a[2] & 0x0f0f0f0fu) | (((a[0] >> 6) & 0x03030303u) << 4);
    uint32_t m_hi = ((a[2] >> 4) & 0x0f0f0f0fu) | (((a[1] >> 6) & 0x03030303u) << 4);
    __m128i bytes = _mm_setr_epi32((int)sc_lo, (int)sc_hi, (int)m_lo, (int)m_hi);
    __m512 f = _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(bytes));
    __m512 dd = _mm512_mask_blend_ps(0xff00, _mm512_set1_ps(h2f(b->d)), _mm512_set1_ps(-h2f(b->dmin)));
    k->v[0] = _mm512_mul_ps(f, dd); // s[0..7] = d * sc, s[8..15] = -dmin * m
}

// Elements 64p .. 64p + 63 of a K-quant block (p = 0..3) as w[0..3].
static inline __attribute__((always_inline)) void pair_w(const int type, const uint8_t *blk, int p,
                                                         const kq_scales *k, __m512 w[4]) {
    if (type == HN_Q4_K || type == HN_Q5_K) {
        const uint8_t *qs = type == HN_Q4_K ? ((const hn_block_q4_k *)blk)->qs : ((const hn_block_q5_k *)blk)->qs;
        qs += 32 * p;
        __m512i a = u8x16(qs), b = u8x16(qs + 16); // sub-block 2p in the low nibbles, 2p + 1 in the high ones
        __m512i idx[4] = {a, b, _mm512_srli_epi32(a, 4), _mm512_srli_epi32(b, 4)};
        __m512 ss[2] = {kq_s(k, 2 * p), kq_s(k, 2 * p + 1)}, cc[2] = {kq_s(k, 8 + 2 * p), kq_s(k, 9 + 2 * p)};
        if (type == HN_Q4_K) {
            __m512 t[2] = {_mm512_fmadd_ps(iota16(), ss[0], cc[0]), _mm512_fmadd_ps(iota16(), ss[1], cc[1])};
            #pragma GCC unroll 8
            for (int v = 0; v < 4; v++) w[v] = _mm512_permutexvar_ps(idx[v], t[v / 2]);
        } else {
            // Fifth bit of element 32j + l: bit j of qh[l]. Set bit 4 of the index where it is set.
            const uint8_t *qh = ((const hn_block_q5_k *)blk)->qh;
            __m512i h0 = u8x16(qh), h1 = u8x16(qh + 16);
            #pragma GCC unroll 8
            for (int v = 0; v < 4; v++) {
                int j = 2 * p + v / 2;
                __m512i lo = _mm512_and_si512(idx[v], _mm512_set1_epi32(0x0f));
                __mmask16 bit = _mm512_test_epi32_mask(v & 1 ? h1 : h0, _mm512_set1_epi32(1 << j));
                lo = _mm512_mask_or_epi32(lo, bit, lo, _mm512_set1_epi32(16));
                __m512 t0 = _mm512_fmadd_ps(iota16(), ss[v / 2], cc[v / 2]);
                __m512 t1 = _mm512_fmadd_ps(_mm512_add_ps(iota16(), _mm512_set1_ps(16)), ss[v / 2], cc[v / 2]);
                w[v] = _mm512_permutex2var_ps(t0, lo, t1);
            }
        }
    } else if (type == HN_Q2_K || type == HN_Q3_K) {
        // Element 128h + 32j + l: bits 2j of qs[32h + l]; Q3_K: minus 4 unless bit 4h + j of hmask[l] is set. Pair p
        // is h = p / 2, j = 2 (p % 2) + v / 2 for vector v, whose 16 elements are sub-block 4p + v.
        int h = p / 2;
        const uint8_t *qs = type == HN_Q2_K ? ((const hn_block_q2_k *)blk)->qs : ((const hn_block_q3_k *)blk)->qs;
        qs += 32 * h;
        #pragma GCC unroll 8
        for (int v = 0; v < 4; v++) {
            int j = 2 * (p % 2) + v / 2;
            __m512i q = _mm512_and_si512(_mm512_srli_epi32(u8x16(qs + 16 * (v % 2)), 2 * j), _mm512_set1_epi32(3));
            if (type == HN_Q2_K) {
                w[v] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(q), kq_s(k, 4 * p + v), kq_s(k, 16 + 4 * p + v));
            } else {
                const uint8_t *hm = ((const hn_block_q3_k *)blk)->hmask + 16 * (v % 2);
                __mmask16 set = _mm512_test_epi32_mask(u8x16(hm), _mm512_set1_epi32(1 << (4 * h + j)));
                q = _mm512_mask_sub_epi32(q, (__mmask16)~set, q, _mm512_set1_epi32(4));
                w[v] = _mm512_mul_ps(_mm512_cvtepi32_ps(q), kq_s(k, 4 * p + v));
            }
        }
    } else {
        // Q6_K: quarters r0 = 2 (p % 2) and r0 + 1 of half h = p / 2, elements 128h + 32r + l. The pair's 64 quants
        // are built as bytes: low nibbles of ql[64h .. 64h + 63] (high nibbles for r0 = 2), bits 2r of qh[32h + l]
        // (qh loaded twice, shifted by 2r0 for the first 32 bytes and 2r0 + 2 for the last), minus 32; then 16 at a
        // time widened, converted and scaled.
        const hn_block_q6_k *b = (const hn_block_q6_k *)blk;
        int h = p / 2, r0 = 2 * (p % 2);
        __m512i ql = _mm512_loadu_si512((const void *)(b->ql + 64 * h));
        __m512i lo = _mm512_and_si512(r0 ? _mm512_srli_epi16(ql, 4) : ql, _mm512_set1_epi8(0x0f));
        __m512i qh = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)(b->qh + 32 * h)));
        __m512i cnt = _mm512_inserti64x4(_mm512_set1_epi16((short)(2 * r0)), _mm256_set1_epi16((short)(2 * r0 + 2)), 1);
        __m512i hi = _mm512_and_si512(_mm512_srlv_epi16(qh, cnt), _mm512_set1_epi8(3));
        __m512i q = _mm512_sub_epi8(_mm512_or_si512(lo, _mm512_slli_epi16(hi, 4)), _mm512_set1_epi8(32));
        __m128i part[4] = {_mm512_castsi512_si128(q), _mm512_extracti32x4_epi32(q, 1), _mm512_extracti32x4_epi32(q, 2),
                           _mm512_extracti32x4_epi32(q, 3)};
        #pragma GCC unroll 8
        for (int v = 0; v < 4; v++) {
            int r = r0 + v / 2, half = v % 2; // half: l < 16 or l >= 16
            __m512i qv = _mm512_cvtepi8_epi32(part[v]);
            w[v] = _mm512_mul_ps(_mm512_cvtepi32_ps(qv), kq_s(k, 8 * h + 2 * r + half));
        }
    }
}

// One Q5_0 / Q5_1 block as 2 vectors: table {(i - 16) * d} (Q5_0) or {i * d + m} (Q5_1) over two registers,
// index = nibble | fifth bit << 4.
static inline __attribute__((always_inline)) void q5_w(const int type, const uint8_t *blk, __m512 *w0, __m512 *w1) {
    const uint8_t *qh8, *qs;
    __m512 t0, t1, d;
    if (type == HN_Q5_0) {
        const hn_block_q5_0 *b = (const hn_block_q5_0 *)blk;
        qh8 = b->qh, qs = b->qs, d = _mm512_set1_ps(h2f(b->d));
        t0 = _mm512_mul_ps(_mm512_sub_ps(iota16(), _mm512_set1_ps(16)), d);
        t1 = _mm512_mul_ps(iota16(), d);
    } else {
        const hn_block_q5_1 *b = (const hn_block_q5_1 *)blk;
        __m512 m = _mm512_set1_ps(h2f(b->m));
        qh8 = b->qh, qs = b->qs, d = _mm512_set1_ps(h2f(b->d));
        t0 = _mm512_fmadd_ps(iota16(), d, m);
        t1 = _mm512_fmadd_ps(_mm512_add_ps(iota16(), _mm512_set1_ps(16)), d, m);
    }
    uint32_t qh = (uint32_t)qh8[0] | (uint32_t)qh8[1] << 8 | (uint32_t)qh8[2] << 16 | (uint32_t)qh8[3] << 24;
    __m512i q = u8x16(qs), sixteen = _mm512_set1_epi32(16);
    __m512i i0 = _mm512_and_si512(q, _mm512_set1_epi32(0x0f)), i1 = _mm512_srli_epi32(q, 4);
    i0 = _mm512_mask_or_epi32(i0, (__mmask16)(qh & 0xffff), i0, sixteen);
    i1 = _mm512_mask_or_epi32(i1, (__mmask16)(qh >> 16), i1, sixteen);
    *w0 = _mm512_permutex2var_ps(t0, i0, t1);
    *w1 = _mm512_permutex2var_ps(t0, i1, t1);
}

// Elements 64p .. 64p + 63 of a row of Q5_0 / Q5_1 blocks (two blocks of bs bytes).
static inline __attribute__((always_inline)) void q5_pair(const int type, const size_t bs, const uint8_t *row,
                                                          int64_t p, __m512 w[4]) {
    q5_w(type, row + (size_t)(2 * p) * bs, &w[0], &w[1]);
    q5_w(type, row + (size_t)(2 * p + 1) * bs, &w[2], &w[3]);
}

// ---- dequantize ----

static inline __attribute__((always_inline)) void k_to_f32(const int type, const size_t bs, const void *src,
                                                           float *dst, int64_t n) {
    for (int64_t i = 0; i < n / HN_QK_K; i++) {
        const uint8_t *blk = (const uint8_t *)src + (size_t)i * bs;
        kq_scales k;
        block_scales(type, blk, &k);
        #pragma GCC unroll 8
        for (int p = 0; p < 4; p++) {
            __m512 w[4];
            pair_w(type, blk, p, &k, w);
            #pragma GCC unroll 8
            for (int v = 0; v < 4; v++) _mm512_storeu_ps(dst + i * HN_QK_K + 64 * p + 16 * v, w[v]);
        }
    }
}

void hn_q4_k_to_f32_avx512(const void *src, float *dst, int64_t n) {
    k_to_f32(HN_Q4_K, sizeof(hn_block_q4_k), src, dst, n);
}
void hn_q5_k_to_f32_avx512(const void *src, float *dst, int64_t n) {
    k_to_f32(HN_Q5_K, sizeof(hn_block_q5_k), src, dst, n);
}
void hn_q2_k_to_f32_avx512(const void *src, float *dst, int64_t n) {
    k_to_f32(HN_Q2_K, sizeof(hn_block_q2_k), src, dst, n);
}
void hn_q3_k_to_f32_avx512(const void *src, float *dst, int64_t n) {
    k_to_f32(HN_Q3_K, sizeof(hn_block_q3_k), src, dst, n);
}
void hn_q6_k_to_f32_avx512(const void *src, float *dst, int64_t n) {
    k_to_f32(HN_Q6_K, sizeof(hn_block_q6_k), src, dst, n);
}

static inline __attribute__((always_inline)) void q5_to_f32(const int type, const size_t bs, const void *src,
                                                            float *dst, int64_t n) {
    for (int64_t i = 0; i < n / HN_QK; i++) {
        __m512 w0, w1;
        q5_w(type, (const uint8_t *)src + (size_t)i * bs, &w0, &w1);
        _mm512_storeu_ps(dst + i * HN_QK, w0);
        _mm512_storeu_ps(dst + i * HN_QK + 16, w1);
    }
}

void hn_q5_0_to_f32_avx512(const void *src, float *dst, int64_t n) {
    q5_to_f32(HN_Q5_0, sizeof(hn_block_q5_0), src, dst, n);
}
void hn_q5_1_to_f32_avx512(const void *src, float *dst, int64_t n) {
    q5_to_f32(HN_Q5_1, sizeof(hn_block_q5_1), src, dst, n);
}

// ---- decode kernels and dot products ----

// One weight row x TT tokens over all of K, 64 elements at a time into four accumulators per token (one per 16 of
// the 64), so every output is summed the same way whatever TT; one row at a time (one sequential weight stream).
static inline __attribute__((always_inline)) void mv_tile(const int type, const size_t bs, const int TT, int64_t K,
                                                          const uint8_t *w, const float *x, float *y, int64_t ldy) {
    __m512 acc[4][4];
    #pragma GCC unroll 8
    for (int t = 0; t < TT; t++) acc[t][0] = acc[t][1] = acc[t][2] = acc[t][3] = _mm512_setzero_ps();
    const int64_t np = K / 64;
    if (type == HN_Q5_0 || type == HN_Q5_1) {
        for (int64_t p = 0; p < np; p++) {
            __m512 wv[4];
            q5_pair(type, bs, w, p, wv);
            #pragma GCC unroll 8
            for (int t = 0; t < TT; t++) {
                const float *xb = x + t * K + p * 64;
                #pragma GCC unroll 8
                for (int v = 0; v < 4; v++)
                    acc[t][v] = _mm512_fmadd_ps(wv[v], _mm512_loadu_ps(xb + 16 * v), acc[t][v]);
            }
        }
    } else {
        for (int64_t b = 0; b < K / HN_QK_K; b++) {
            const uint8_t *blk = w + (size_t)b * bs;
            kq_scales k;
            block_scales(type, blk, &k);
            #pragma GCC unroll 8
            for (int p = 0; p < 4; p++) {
                __m512 wv[4];
                pair_w(type, blk, p, &k, wv);
                #pragma GCC unroll 8
                for (int t = 0; t < TT; t++) {
                    const float *xb = x + t * K + b * HN_QK_K + p * 64;
                    #pragma GCC unroll 8
                    for (int v = 0; v < 4; v++)
                        acc[t][v] = _mm512_fmadd_ps(wv[v], _mm512_loadu_ps(xb + 16 * v), acc[t][v]);
                }
            }
        }
    }
    if ((type == HN_Q5_0 || type == HN_Q5_1) && K % 64) { // an odd block at the end
        __m512 w0, w1;
        q5_w(type, w + (size_t)(K / HN_QK - 1) * bs, &w0, &w1);
        #pragma GCC unroll 8
        for (int t = 0; t < TT; t++) {
            const float *xb = x + t * K + np * 64;
            acc[t][0] = _mm512_fmadd_ps(w0, _mm512_loadu_ps(xb), acc[t][0]);
            acc[t][1] = _mm512_fmadd_ps(w1, _mm512_loadu_ps(xb + 16), acc[t][1]);
        }
    }
    #pragma GCC unroll 8
    for (int t = 0; t < TT; t++)
        y[t * ldy] = _mm512_reduce_add_ps(
            _mm512_add_ps(_mm512_add_ps(acc[t][0], acc[t][1]), _mm512_add_ps(acc[t][2], acc[t][3])));
}

// Tokens 4 at a time, so a dequantized chunk serves 4 tokens (16 accumulators, 4 weight and 4 activation vectors).
static inline __attribute__((always_inline)) void mv_type(const int type, const size_t bs, int64_t K, const void *w,
                                                          size_t rb, int64_t nr, const float *x, int64_t T, float *y,
                                                          int64_t ldy) {
    for (int64_t r = 0; r < nr; r++) {
        const uint8_t *wr = (const uint8_t *)w + (size_t)r * rb;
        int64_t t = 0;
        for (; t + 4 <= T; t += 4) mv_tile(type, bs, 4, K, wr, x + t * K, y + t * ldy + r, ldy);
        switch (T - t) {
        case 3: mv_tile(type, bs, 3, K, wr, x + t * K, y + t * ldy + r, ldy); break;
        case 2: mv_tile(type, bs, 2, K, wr, x + t * K, y + t * ldy + r, ldy); break;
        case 1: mv_tile(type, bs, 1, K, wr, x + t * K, y + t * ldy + r, ldy); break;
        default: break;
        }
    }
}

#define KQ_MV(name, TYPE, block)                                                                                     \
    void hn_mv_##name##_avx512(int64_t K, const void *w, size_t rb, int64_t nr, const float *x, int64_t T, float *y, \
                               int64_t ldy) {                                                                        \
        mv_type(TYPE, sizeof(block), K, w, rb, nr, x, T, y, ldy);                                                    \
    }                                                                                                                \
    float hn_dot_##name##_avx512(int64_t n, const void *w, const void *x) {                                          \
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
