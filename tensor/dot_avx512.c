// tensor/dot_avx512.c — AVX-512 (F, BW, VL, DQ) + VNNI dot products. Two 32-element blocks per 512-bit register;
// vpdpbusd multiplies unsigned by signed bytes and sums each four into an int32 lane in one instruction. A block
// left over at the end goes through the 256-bit form of the same instruction. Dequantize and activation quantizers
// come from the AVX2 set (dtype.c applies the levels in turn).
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

static float dot_f32(int64_t n, const void *w, const void *x) {
    const float *a = w, *b = x;
    __m512 s0 = _mm512_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
    int64_t i = 0;
    for (; i + 64 <= n; i += 64) {
        s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), s0);
        s1 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 16), _mm512_loadu_ps(b + i + 16), s1);
        s2 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 32), _mm512_loadu_ps(b + i + 32), s2);
        s3 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 48), _mm512_loadu_ps(b + i + 48), s3);
    }
    for (; i + 16 <= n; i += 16) s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), s0);
    float sum = _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3)));
    for (; i < n; i++) sum += a[i] * b[i];
    return sum;
}

static inline __m512 load_f16x16(const hn_f16 *p) { return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)p)); }
static inline __m512 load_bf16x16(const hn_bf16 *p) {
    __m512i u = _mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)p));
    return _mm512_castsi512_ps(_mm512_slli_epi32(u, 16));
}

static float dot_f16(int64_t n, const void *w, const void *x) {
    const hn_f16 *a = w;
    const float *b = x;
    __m512 s0 = _mm512_setzero_ps(), s1 = s0;
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        s0 = _mm512_fmadd_ps(load_f16x16(a + i), _mm512_loadu_ps(b + i), s0);
        s1 = _mm512_fmadd_ps(load_f16x16(a + i + 16), _mm512_loadu_ps(b + i + 16), s1);
    }
    float sum = _mm512_reduce_add_ps(_mm512_add_ps(s0, s1));
    for (; i < n; i++) sum += h2f(a[i]) * b[i];
    return sum;
}

static float dot_bf16(int64_t n, const void *w, const void *x) {
    const hn_bf16 *a = w;
    const float *b = x;
    __m512 s0 = _mm512_setzero_ps(), s1 = s0;
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        s0 = _mm512_fmadd_ps(load_bf16x16(a + i), _mm512_loadu_ps(b + i), s0);
        s1 = _mm512_fmadd_ps(load_bf16x16(a + i + 16), _mm512_loadu_ps(b + i + 16), s1);
    }
    float sum = _mm512_reduce_add_ps(_mm512_add_ps(s0, s1));
    for (; i < n; i++) sum += hn_bf16_to_f32(a[i]) * b[i];
    return sum;
}

// Two blocks' nibbles: [A 0-15 | B 0-15 | A 16-31 | B 16-31] (one shift serves both blocks).
static inline __m512i nibbles_pair(const uint8_t *qa, const uint8_t *qb) {
    __m256i q = _mm256_inserti128_si256(_mm256_castsi128_si256(_mm_loadu_si128((const __m128i *)qa)),
                                        _mm_loadu_si128((const __m128i *)qb), 1);
    __m512i w = _mm512_inserti64x4(_mm512_castsi256_si512(q), _mm256_srli_epi16(q, 4), 1);
    return _mm512_and_si512(w, _mm512_set1_epi8(0x0f));
}

// Two activation blocks in the order nibbles_pair produces.
static inline __m512i bytes_pair_split(const int8_t *xa, const int8_t *xb) {
    __m512i a = _mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)xa));
    __m512i b = _mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)xb));
    return _mm512_permutex2var_epi64(a, _mm512_setr_epi64(0, 1, 8, 9, 2, 3, 10, 11), b);
}

// The leading 4 bytes of 4 blocks (stride apart) as 8 floats: [d0, m0, d1, m1, ...] for Q4_1/Q8_1 (d, m or d, s);
// for Q4_0/Q8_0 the odd lanes hold the first quants read as halves and are never used.
static inline __m256 head4(const void *base, size_t stride) {
    const uint8_t *p = base;
    uint32_t v0, v1, v2, v3;
    memcpy(&v0, p, 4);
    memcpy(&v1, p + stride, 4);
    memcpy(&v2, p + 2 * stride, 4);
    memcpy(&v3, p + 3 * stride, 4);
    return _mm256_cvtph_ps(_mm_setr_epi32((int)v0, (int)v1, (int)v2, (int)v3));
}

// Lane patterns that spread the scale products of head4 (lanes 0, 2, 4, 6) over a pair's dpbusd sums.
#define SPLIT_IDX(a, b) _mm512_setr_epi32(a, a, a, a, b, b, b, b, a, a, a, a, b, b, b, b)
#define HALVES_IDX(a, b) _mm512_setr_epi32(a, a, a, a, a, a, a, a, b, b, b, b, b, b, b, b)

static inline __m256i nibbles32(const uint8_t *qs) {
    __m128i q = _mm_loadu_si128((const __m128i *)qs);
    __m256i b = _mm256_inserti128_si256(_mm256_castsi128_si256(q), _mm_srli_epi16(q, 4), 1);
    return _mm256_and_si256(b, _mm256_set1_epi8(0x0f));
}

static inline __m256 dpbusd8(__m256i u, __m256i s) {
    return _mm256_cvtepi32_ps(_mm256_dpbusd_epi32(_mm256_setzero_si256(), u, s));
}

static float dot_q4_1(int64_t n, const void *w, const void *x) {
    const hn_block_q4_1 *a = w;
    const hn_block_q8_1 *b = x;
    const int64_t nb = n / HN_QK;
    __m512 acc0 = _mm512_setzero_ps(), acc1 = acc0;
    __m256 macc = _mm256_setzero_ps();
    float mins;
    int64_t i = 0;
    for (; i + 4 <= nb; i += 4) {
        __m512i p0 = _mm512_dpbusd_epi32(_mm512_setzero_si512(), nibbles_pair(a[i].qs, a[i + 1].qs),
                                         bytes_pair_split(b[i].qs, b[i + 1].qs));
        __m512i p1 = _mm512_dpbusd_epi32(_mm512_setzero_si512(), nibbles_pair(a[i + 2].qs, a[i + 3].qs),
                                         bytes_pair_split(b[i + 2].qs, b[i + 3].qs));
        // [d0 dx0, m0 s0, d1 dx1, m1 s1, ...]: even lanes scale the sums, odd lanes are the min terms.
        __m256 sc = _mm256_mul_ps(head4(&a[i], sizeof *a), head4(&b[i], sizeof *b));
        macc = _mm256_add_ps(macc, sc);
        __m512 sc5 = _mm512_castps256_ps512(sc);
        acc0 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(p0), _mm512_permutexvar_ps(SPLIT_IDX(0, 2), sc5), acc0);
        acc1 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(p1), _mm512_permutexvar_ps(SPLIT_IDX(4, 6), sc5), acc1);
    }
    mins = hsum8(_mm256_and_ps(macc, _mm256_castsi256_ps(_mm256_setr_epi32(0, -1, 0, -1, 0, -1, 0, -1))));
    float sum = _mm512_reduce_add_ps(_mm512_add_ps(acc0, acc1));
    __m256 acc = _mm256_setzero_ps();
    for (; i < nb; i++) {
        __m256 p = dpbusd8(nibbles32(a[i].qs), _mm256_loadu_si256((const __m256i *)b[i].qs));
        acc = _mm256_fmadd_ps(_mm256_set1_ps(h2f(a[i].d) * h2f(b[i].d)), p, acc);
        mins += h2f(a[i].m) * h2f(b[i].s);
    }
    return sum + hsum8(acc) + mins;
}

// sum (q - 8) x = sum q x - 8 sum x: both sums with vpdpbusd, since q is unsigned.
static float dot_q4_0(int64_t n, const void *w, const void *x) {
    const hn_block_q4_0 *a = w;
    const hn_block_q8_0 *b = x;
    const int64_t nb = n / HN_QK;
    const __m512i eights = _mm512_set1_epi8(8);
    __m512 acc0 = _mm512_setzero_ps(), acc1 = acc0;
    int64_t i = 0;
    for (; i + 4 <= nb; i += 4) {
        __m512i x0 = bytes_pair_split(b[i].qs, b[i + 1].qs), x1 = bytes_pair_split(b[i + 2].qs, b[i + 3].qs);
        __m512i p0 = _mm512_dpbusd_epi32(_mm512_setzero_si512(), nibbles_pair(a[i].qs, a[i + 1].qs), x0);
        __m512i p1 = _mm512_dpbusd_epi32(_mm512_setzero_si512(), nibbles_pair(a[i + 2].qs, a[i + 3].qs), x1);
        p0 = _mm512_sub_epi32(p0, _mm512_dpbusd_epi32(_mm512_setzero_si512(), eights, x0));
        p1 = _mm512_sub_epi32(p1, _mm512_dpbusd_epi32(_mm512_setzero_si512(), eights, x1));
        __m512 sc = _mm512_castps256_ps512(_mm256_mul_ps(head4(&a[i], sizeof *a), head4(&b[i], sizeof *b)));
        acc0 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(p0), _mm512_permutexvar_ps(SPLIT_IDX(0, 2), sc), acc0);
        acc1 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(p1), _mm512_permutexvar_ps(SPLIT_IDX(4, 6), sc), acc1);
    }
    float sum = _mm512_reduce_add_ps(_mm512_add_ps(acc0, acc1));
    __m256 acc = _mm256_setzero_ps();
    for (; i < nb; i++) {
        __m256i xv = _mm256_loadu_si256((const __m256i *)b[i].qs);
        __m256i p = _mm256_dpbusd_epi32(_mm256_setzero_si256(), nibbles32(a[i].qs), xv);
        p = _mm256_sub_epi32(p, _mm256_dpbusd_epi32(_mm256_setzero_si256(), _mm256_set1_epi8(8), xv));
        acc = _mm256_fmadd_ps(_mm256_set1_ps(h2f(a[i].d) * h2f(b[i].d)), _mm256_cvtepi32_ps(p), acc);
    }
    return sum + hsum8(acc);
}

// Signed x signed: |w| goes in as the unsigned operand and x takes w's sign.
static inline __m512i dot_ss_pair(__m512i wv, __m512i xv) {
    __m512i sx = _mm512_mask_sub_epi8(xv, _mm512_movepi8_mask(wv), _mm512_setzero_si512(), xv);
    return _mm512_dpbusd_epi32(_mm512_setzero_si512(), _mm512_abs_epi8(wv), sx);
}

static inline __m512i load_pair(const int8_t *qa, const int8_t *qb) {
    return _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)qa)),
                              _mm256_loadu_si256((const __m256i *)qb), 1);
}

static float dot_q8_0(int64_t n, const void *w, const void *x) {
    const hn_block_q8_0 *a = w, *b = x;
    const int64_t nb = n / HN_QK;
    __m512 acc0 = _mm512_setzero_ps(), acc1 = acc0;
    int64_t i = 0;
    for (; i + 4 <= nb; i += 4) {
        __m512i p0 = dot_ss_pair(load_pair(a[i].qs, a[i + 1].qs), load_pair(b[i].qs, b[i + 1].qs));
        __m512i p1 = dot_ss_pair(load_pair(a[i + 2].qs, a[i + 3].qs), load_pair(b[i + 2].qs, b[i + 3].qs));
        __m512 sc = _mm512_castps256_ps512(_mm256_mul_ps(head4(&a[i], sizeof *a), head4(&b[i], sizeof *b)));
        acc0 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(p0), _mm512_permutexvar_ps(HALVES_IDX(0, 2), sc), acc0);
        acc1 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(p1), _mm512_permutexvar_ps(HALVES_IDX(4, 6), sc), acc1);
    }
    float sum = _mm512_reduce_add_ps(_mm512_add_ps(acc0, acc1));
    __m256 acc = _mm256_setzero_ps();
    for (; i < nb; i++) {
        __m256i wv = _mm256_loadu_si256((const __m256i *)a[i].qs), xv = _mm256_loadu_si256((const __m256i *)b[i].qs);
        __m256 p = dpbusd8(_mm256_sign_epi8(wv, wv), _mm256_sign_epi8(xv, wv));
        acc = _mm256_fmadd_ps(_mm256_set1_ps(h2f(a[i].d) * h2f(b[i].d)), p, acc);
    }
    return sum + hsum8(acc);
}

// MT tokens x 32 rows of the panel product: 2*MT accumulators stay in registers for the whole k loop, and each
// step costs 2 loads of the panel and MT broadcasts of x.
static inline __attribute__((always_inline)) void gemm_tokens(const int MT, int64_t K, const float *x,
                                                              const float *pack, float *y, int64_t ldy, int nr) {
    __m512 acc[6][2];
    for (int t = 0; t < MT; t++) acc[t][0] = acc[t][1] = _mm512_setzero_ps();
    for (int64_t k = 0; k < K; k++) {
        __m512 w0 = _mm512_loadu_ps(pack + k * HN_PANEL), w1 = _mm512_loadu_ps(pack + k * HN_PANEL + 16);
        for (int t = 0; t < MT; t++) {
            __m512 xb = _mm512_set1_ps(x[t * K + k]);
            acc[t][0] = _mm512_fmadd_ps(w0, xb, acc[t][0]);
            acc[t][1] = _mm512_fmadd_ps(w1, xb, acc[t][1]);
        }
    }
    __mmask16 m0 = nr >= 16 ? 0xffff : (__mmask16)((1u << nr) - 1);
    __mmask16 m1 = nr >= 32 ? 0xffff : nr > 16 ? (__mmask16)((1u << (nr - 16)) - 1) : 0;
    for (int t = 0; t < MT; t++) {
        _mm512_mask_storeu_ps(y + t * ldy, m0, acc[t][0]);
        _mm512_mask_storeu_ps(y + t * ldy + 16, m1, acc[t][1]);
    }
}

static void gemm_panel(int64_t T, int64_t K, const float *x, const float *pack, float *y, int64_t ldy, int nr) {
    int64_t t = 0;
    for (; t + 6 <= T; t += 6) gemm_tokens(6, K, x + t * K, pack, y + t * ldy, ldy, nr);
    switch (T - t) {
    case 5: gemm_tokens(5, K, x + t * K, pack, y + t * ldy, ldy, nr); break;
    case 4: gemm_tokens(4, K, x + t * K, pack, y + t * ldy, ldy, nr); break;
    case 3: gemm_tokens(3, K, x + t * K, pack, y + t * ldy, ldy, nr); break;
    case 2: gemm_tokens(2, K, x + t * K, pack, y + t * ldy, ldy, nr); break;
    case 1: gemm_tokens(1, K, x + t * K, pack, y + t * ldy, ldy, nr); break;
    default: break;
    }
}

// ---- Decode kernels with fp32 activations (kernels.h, hn_mv_fn) ----
//
// A Q4 block becomes floats by one table lookup per 16 elements: vpermps reads only the low 4 bits of each index
// lane, so the 16 bytes of nibbles zero-extended to 16 int32 index the table {i * d + m} (Q4_1) or {(i - 8) * d}
// (Q4_0) for elements 0-15 as they are, and after a shift by 4 for elements 16-31. i * d is exact in fp32 (d is
// an f16: 11 significant bits, i 4), so the one rounding of the FMA gives to_f32's values bit for bit.

static inline __attribute__((always_inline)) void mv_deq(const int type, const uint8_t *blk, __m512 *w0, __m512 *w1) {
    const __m512 iota = _mm512_setr_ps(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    uint32_t head;
    memcpy(&head, blk, 4);
    // [d, m, d, m, ...] (Q4_0 / Q8_0: m is the first quants, unused): a broadcast load and one conversion, then
    // in-lane duplicates, where per-lane broadcasts of a converted scalar took twice the shuffle port.
    __m512 dm = _mm512_cvtph_ps(_mm256_set1_epi32((int)head));
    __m512 d = _mm512_moveldup_ps(dm);
    if (type == HN_Q8_0) {
        const int8_t *qs = (const int8_t *)(blk + 2);
        *w0 = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)qs))), d);
        *w1 = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(qs + 16)))), d);
        return;
    }
    __m512 table;
    const uint8_t *qs;
    if (type == HN_Q4_1) {
        table = _mm512_fmadd_ps(iota, d, _mm512_movehdup_ps(dm));
        qs = blk + 4;
    } else {
        // (i - 8) * d, exact, as to_f32 computes it (i * d - 8d would give +0 where to_f32 gives -0 for d < 0).
        table = _mm512_mul_ps(_mm512_sub_ps(iota, _mm512_set1_ps(8.0f)), d);
        qs = blk + 2;
    }
    __m512i q = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)qs));
    *w0 = _mm512_permutexvar_ps(q, table);
    *w1 = _mm512_permutexvar_ps(_mm512_srli_epi32(q, 4), table);
}

// Dequantize with the same table lookup: the values are to_f32's bit for bit (see above), at half the AVX2 cost per
// element, which matters where FAST dequantizes every weight once per call (mm_rows, a serving step).
static inline __attribute__((always_inline)) void deq_rows(const int type, const size_t bs, const void *src,
                                                           float *dst, int64_t n) {
    const uint8_t *b = src;
    for (int64_t i = 0; i < n / HN_QK; i++) {
        __m512 w0, w1;
        mv_deq(type, b + (size_t)i * bs, &w0, &w1);
        _mm512_storeu_ps(dst + i * HN_QK, w0);
        _mm512_storeu_ps(dst + i * HN_QK + 16, w1);
    }
}
static void q4_0_to_f32(const void *src, float *dst, int64_t n) {
    deq_rows(HN_Q4_0, sizeof(hn_block_q4_0), src, dst, n);
}
static void q4_1_to_f32(const void *src, float *dst, int64_t n) {
    deq_rows(HN_Q4_1, sizeof(hn_block_q4_1), src, dst, n);
}
static void q8_0_to_f32(const void *src, float *dst, int64_t n) {
    deq_rows(HN_Q8_0, sizeof(hn_block_q8_0), src, dst, n);
}

// One weight row x TT tokens over all of K. Four accumulators per token (elements 0-15 and 16-31 of even and of
// odd blocks) keep 4 FMA chains going for one token; every output is summed the same way whatever TT. One row at a
// time, so the weight is read as one sequential stream (measured: 4 rows side by side, 4 streams, ran ~1.7x slower
// on the 1536-wide rows of ffn down).
static inline __attribute__((always_inline)) void mv_tile(const int type, const size_t bs, const int TT, int64_t K,
                                                          const uint8_t *w, const float *x, float *y, int64_t ldy) {
    __m512 acc[4][4];
    for (int t = 0; t < TT; t++) acc[t][0] = acc[t][1] = acc[t][2] = acc[t][3] = _mm512_setzero_ps();
    const int64_t nb = K / HN_QK;
    int64_t b = 0;
    for (; b + 2 <= nb; b += 2) {
        __m512 w0, w1, w2, w3;
        mv_deq(type, w + (size_t)b * bs, &w0, &w1);
        mv_deq(type, w + (size_t)(b + 1) * bs, &w2, &w3);
        for (int t = 0; t < TT; t++) {
            const float *xb = x + t * K + b * HN_QK;
            acc[t][0] = _mm512_fmadd_ps(w0, _mm512_loadu_ps(xb), acc[t][0]);
            acc[t][1] = _mm512_fmadd_ps(w1, _mm512_loadu_ps(xb + 16), acc[t][1]);
            acc[t][2] = _mm512_fmadd_ps(w2, _mm512_loadu_ps(xb + 32), acc[t][2]);
            acc[t][3] = _mm512_fmadd_ps(w3, _mm512_loadu_ps(xb + 48), acc[t][3]);
        }
    }
    if (b < nb) {
        __m512 w0, w1;
        mv_deq(type, w + (size_t)b * bs, &w0, &w1);
        for (int t = 0; t < TT; t++) {
            const float *xb = x + t * K + b * HN_QK;
            acc[t][0] = _mm512_fmadd_ps(w0, _mm512_loadu_ps(xb), acc[t][0]);
            acc[t][1] = _mm512_fmadd_ps(w1, _mm512_loadu_ps(xb + 16), acc[t][1]);
        }
    }
    for (int t = 0; t < TT; t++)
        y[t * ldy] = _mm512_reduce_add_ps(
            _mm512_add_ps(_mm512_add_ps(acc[t][0], acc[t][1]), _mm512_add_ps(acc[t][2], acc[t][3])));
}

// Tokens 4 at a time, so a dequantized block serves 4 tokens (16 accumulators, 4 weight and 4 activation vectors).
// Many tokens (a batch of sequences decoding together) go MV_TOKENS at a time over all the rows, so that their
// activations stay in L1 while the rows stream past (16 tokens of a 1536-wide input are 96 KiB: over L1, and a
// step of 16 ran 2x slower per token than one of 8). Each output is still one row x one token summed in one order.
#define MV_TOKENS 8
static inline __attribute__((always_inline)) void mv_type(const int type, const size_t bs, int64_t K, const void *w,
                                                          size_t rb, int64_t nr, const float *x, int64_t T, float *y,
                                                          int64_t ldy) {
    for (int64_t t0 = 0; t0 < T; t0 += MV_TOKENS) {
        const int64_t tn = T - t0 < MV_TOKENS ? T - t0 : MV_TOKENS;
        const float *xt = x + t0 * K;
        float *yt = y + t0 * ldy;
        for (int64_t r = 0; r < nr; r++) {
            const uint8_t *wr = (const uint8_t *)w + (size_t)r * rb;
            int64_t t = 0;
            for (; t + 4 <= tn; t += 4) mv_tile(type, bs, 4, K, wr, xt + t * K, yt + t * ldy + r, ldy);
            switch (tn - t) {
            case 3: mv_tile(type, bs, 3, K, wr, xt + t * K, yt + t * ldy + r, ldy); break;
            case 2: mv_tile(type, bs, 2, K, wr, xt + t * K, yt + t * ldy + r, ldy); break;
            case 1: mv_tile(type, bs, 1, K, wr, xt + t * K, yt + t * ldy + r, ldy); break;
            default: break;
            }
        }
    }
}

static void mv_q4_0(int64_t K, const void *w, size_t rb, int64_t nr, const float *x, int64_t T, float *y, int64_t ldy) {
    mv_type(HN_Q4_0, sizeof(hn_block_q4_0), K, w, rb, nr, x, T, y, ldy);
}
static void mv_q4_1(int64_t K, const void *w, size_t rb, int64_t nr, const float *x, int64_t T, float *y, int64_t ldy) {
    mv_type(HN_Q4_1, sizeof(hn_block_q4_1), K, w, rb, nr, x, T, y, ldy);
}
static void mv_q8_0(int64_t K, const void *w, size_t rb, int64_t nr, const float *x, int64_t T, float *y, int64_t ldy) {
    mv_type(HN_Q8_0, sizeof(hn_block_q8_0), K, w, rb, nr, x, T, y, ldy);
}

// ---- The batch kernel of FAST mode (kernels.h, hn_gemm_rows_fn) ----
//
// 4 rows x up to 6 tokens of accumulators (24 of the 32 registers), k in the lanes: per 16 elements of k, 4 weight
// loads and 6 activation loads feed 24 FMAs, so the FMA ports, not the loads, set the pace. At the end each
// accumulator is summed across its lanes by one fixed tree (rows_reduce4), whichever tile it sat in.

// [sum a, sum b, sum c, sum d]: 128-bit quarters added pairwise (q0 + q2, q1 + q3, then those two), then the four
// lanes of what is left ((l0 + l1) + (l2 + l3)). Every input vector goes through the same adds in the same order.
static inline __attribute__((always_inline)) __m128 rows_reduce4(__m512 a, __m512 b, __m512 c, __m512 d) {
    __m512 ab = _mm512_add_ps(_mm512_shuffle_f32x4(a, b, _MM_SHUFFLE(1, 0, 1, 0)),
                              _mm512_shuffle_f32x4(a, b, _MM_SHUFFLE(3, 2, 3, 2))); // [a0+a2, a1+a3, b0+b2, b1+b3]
    __m512 cd = _mm512_add_ps(_mm512_shuffle_f32x4(c, d, _MM_SHUFFLE(1, 0, 1, 0)),
                              _mm512_shuffle_f32x4(c, d, _MM_SHUFFLE(3, 2, 3, 2)));
    __m512 q = _mm512_add_ps(_mm512_shuffle_f32x4(ab, cd, _MM_SHUFFLE(2, 0, 2, 0)),
                             _mm512_shuffle_f32x4(ab, cd, _MM_SHUFFLE(3, 1, 3, 1))); // [a, b, c, d] as 4 lanes each
    q = _mm512_add_ps(q, _mm512_permute_ps(q, _MM_SHUFFLE(2, 3, 0, 1)));                // l0+l1, l2+l3
    q = _mm512_add_ps(q, _mm512_permute_ps(q, _MM_SHUFFLE(1, 0, 3, 2)));                // (l0+l1)+(l2+l3)
    return _mm512_castps512_ps128(_mm512_permutexvar_ps(_mm512_setr_epi32(0, 4, 8, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                                                                          0, 0, 0), q));
}

static inline __attribute__((always_inline)) void rows_tile(const int RN, const int TN, int64_t K, const float *w,
                                                            const float *x, float *y, int64_t ldy) {
    __m512 acc[4][6];
#pragma GCC unroll 6
    for (int r = 0; r < RN; r++)
#pragma GCC unroll 6
        for (int t = 0; t < TN; t++) acc[r][t] = _mm512_setzero_ps();
    int64_t k = 0;
    for (; k + 16 <= K; k += 16) {
        __m512 wv[4];
#pragma GCC unroll 6
        for (int r = 0; r < RN; r++) wv[r] = _mm512_loadu_ps(w + r * K + k);
#pragma GCC unroll 6
        for (int t = 0; t < TN; t++) {
            __m512 xv = _mm512_loadu_ps(x + t * K + k);
#pragma GCC unroll 6
            for (int r = 0; r < RN; r++) acc[r][t] = _mm512_fmadd_ps(wv[r], xv, acc[r][t]);
        }
    }
    if (k < K) { // F16 / BF16 rows of any width: the tail as one masked step, zeros past K
        __mmask16 m = (__mmask16)((1u << (K - k)) - 1);
        __m512 wv[4];
#pragma GCC unroll 6
        for (int r = 0; r < RN; r++) wv[r] = _mm512_maskz_loadu_ps(m, w + r * K + k);
#pragma GCC unroll 6
        for (int t = 0; t < TN; t++) {
            __m512 xv = _mm512_maskz_loadu_ps(m, x + t * K + k);
#pragma GCC unroll 6
            for (int r = 0; r < RN; r++) acc[r][t] = _mm512_fmadd_ps(wv[r], xv, acc[r][t]);
        }
    }
#pragma GCC unroll 6
    for (int t = 0; t < TN; t++) {
        if (RN == 4) {
            _mm_storeu_ps(y + t * ldy, rows_reduce4(acc[0][t], acc[1][t], acc[2][t], acc[3][t]));
        } else {
#pragma GCC unroll 6
            for (int r = 0; r < RN; r++)
                y[t * ldy + r] = _mm_cvtss_f32(rows_reduce4(acc[r][t], acc[r][t], acc[r][t], acc[r][t]));
        }
    }
}

#define ROWS_TILE_T(RN, TN, ...)                                                                                     \
    switch (TN) {                                                                                                    \
    case 6: rows_tile(RN, 6, __VA_ARGS__); break;                                                                    \
    case 5: rows_tile(RN, 5, __VA_ARGS__); break;                                                                    \
    case 4: rows_tile(RN, 4, __VA_ARGS__); break;                                                                    \
    case 3: rows_tile(RN, 3, __VA_ARGS__); break;                                                                    \
    case 2: rows_tile(RN, 2, __VA_ARGS__); break;                                                                    \
    default: rows_tile(RN, 1, __VA_ARGS__); break;                                                                   \
    }

// Tokens in tiles of nearly equal size (8 tokens: 4 + 4 rather than 6 + 2), each tile's activations kept in L1
// while the rows pass under them; rows 4 at a time, the last 1-3 one at a time.
static void gemm_rows(int64_t T, int64_t K, const float *x, const float *w, int64_t nr, float *y, int64_t ldy) {
    const int64_t ntiles = (T + 5) / 6;
    for (int64_t i = 0, t0 = 0; i < ntiles; i++) {
        const int tn = (int)(T / ntiles + (i < T % ntiles));
        const float *xt = x + t0 * K;
        float *yt = y + t0 * ldy;
        int64_t r = 0;
        for (; r + 4 <= nr; r += 4) ROWS_TILE_T(4, tn, K, w + r * K, xt, yt + r, ldy)
        for (; r < nr; r++) ROWS_TILE_T(1, tn, K, w + r * K, xt, yt + r, ldy)
        t0 += tn;
    }
}

const hn_kernel_set hn_kernels_avx512 = {
    .mv = {[HN_Q4_0] = mv_q4_0, [HN_Q4_1] = mv_q4_1, [HN_Q8_0] = mv_q8_0, [HN_Q4_K] = hn_mv_q4_k_avx512,
           [HN_Q5_K] = hn_mv_q5_k_avx512, [HN_Q6_K] = hn_mv_q6_k_avx512, [HN_Q5_0] = hn_mv_q5_0_avx512,
           [HN_Q5_1] = hn_mv_q5_1_avx512,
           [HN_Q2_K] = hn_mv_q2_k_avx512, [HN_Q3_K] = hn_mv_q3_k_avx512},
    .gemm_panel = gemm_panel,
    .gemm_rows = gemm_rows,
    .dot = {[HN_F32] = dot_f32, [HN_F16] = dot_f16, [HN_BF16] = dot_bf16, [HN_Q4_0] = dot_q4_0,
            [HN_Q4_1] = dot_q4_1, [HN_Q8_0] = dot_q8_0, [HN_Q4_K] = hn_dot_q4_k_avx512, [HN_Q5_K] = hn_dot_q5_k_avx512,
            [HN_Q6_K] = hn_dot_q6_k_avx512, [HN_Q5_0] = hn_dot_q5_0_avx512,
            [HN_Q5_1] = hn_dot_q5_1_avx512,
            [HN_Q2_K] = hn_dot_q2_k_avx512, [HN_Q3_K] = hn_dot_q3_k_avx512},
    .to_f32 = {[HN_Q4_0] = q4_0_to_f32, [HN_Q4_1] = q4_1_to_f32, [HN_Q8_0] = q8_0_to_f32,
               [HN_Q4_K] = hn_q4_k_to_f32_avx512, [HN_Q5_K] = hn_q5_k_to_f32_avx512,
               [HN_Q6_K] = hn_q6_k_to_f32_avx512, [HN_Q5_0] = hn_q5_0_to_f32_avx512,
               [HN_Q5_1] = hn_q5_1_to_f32_avx512,
               [HN_Q2_K] = hn_q2_k_to_f32_avx512, [HN_Q3_K] = hn_q3_k_to_f32_avx512},
};
