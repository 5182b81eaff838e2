// tensor/dot_avx2.c — AVX2 + FMA + F16C kernels (this file is compiled with those flags; dtype.c calls them only
// when the CPU has them). One 32-element block per 256-bit register.
//
// 8-bit products use maddubs (unsigned x signed bytes -> int16 pairs) then madd with ones (-> int32). maddubs
// needs its first operand unsigned, so signed weights go in as |w| and the activation takes w's sign.
#include "tensor/kernels.h"

#include <immintrin.h>
#include <math.h>

static inline float hsum8(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

static inline float h2f(hn_f16 h) { return _cvtsh_ss(h); }

// 16 packed nibbles -> 32 bytes: element j (low nibble of qs[j]) then element j+16 (high nibble).
static inline __m256i nibbles32(const uint8_t *qs) {
    __m128i q = _mm_loadu_si128((const __m128i *)qs);
    __m256i b = _mm256_insertf128_si256(_mm256_castsi128_si256(q), _mm_srli_epi16(q, 4), 1);
    return _mm256_and_si256(b, _mm256_set1_epi8(0x0f));
}

// Sum of u8 x s8 products, as 8 floats.
static inline __m256 dot_us8(__m256i u, __m256i s) {
    __m256i p16 = _mm256_maddubs_epi16(u, s);
    return _mm256_cvtepi32_ps(_mm256_madd_epi16(p16, _mm256_set1_epi16(1)));
}

static inline __m256 dot_ss8(__m256i a, __m256i b) { return dot_us8(_mm256_sign_epi8(a, a), _mm256_sign_epi8(b, a)); }

static float dot_f32(int64_t n, const void *w, const void *x) {
    const float *a = w, *b = x;
    __m256 s0 = _mm256_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
        s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), s1);
        s2 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 16), _mm256_loadu_ps(b + i + 16), s2);
        s3 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 24), _mm256_loadu_ps(b + i + 24), s3);
    }
    for (; i + 8 <= n; i += 8) s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
    float sum = hsum8(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
    for (; i < n; i++) sum += a[i] * b[i];
    return sum;
}

static inline __m256 load_f16x8(const hn_f16 *p) { return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p)); }
static inline __m256 load_bf16x8(const hn_bf16 *p) {
    __m256i u = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)p));
    return _mm256_castsi256_ps(_mm256_slli_epi32(u, 16));
}

static float dot_f16(int64_t n, const void *w, const void *x) {
    const hn_f16 *a = w;
    const float *b = x;
    __m256 s0 = _mm256_setzero_ps(), s1 = s0;
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        s0 = _mm256_fmadd_ps(load_f16x8(a + i), _mm256_loadu_ps(b + i), s0);
        s1 = _mm256_fmadd_ps(load_f16x8(a + i + 8), _mm256_loadu_ps(b + i + 8), s1);
    }
    float sum = hsum8(_mm256_add_ps(s0, s1));
    for (; i < n; i++) sum += h2f(a[i]) * b[i];
    return sum;
}

static float dot_bf16(int64_t n, const void *w, const void *x) {
    const hn_bf16 *a = w;
    const float *b = x;
    __m256 s0 = _mm256_setzero_ps(), s1 = s0;
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        s0 = _mm256_fmadd_ps(load_bf16x8(a + i), _mm256_loadu_ps(b + i), s0);
        s1 = _mm256_fmadd_ps(load_bf16x8(a + i + 8), _mm256_loadu_ps(b + i + 8), s1);
    }
    float sum = hsum8(_mm256_add_ps(s0, s1));
    for (; i < n; i++) sum += hn_bf16_to_f32(a[i]) * b[i];
    return sum;
}

static float dot_q4_0(int64_t n, const void *w, const void *x) {
    const hn_block_q4_0 *a = w;
    const hn_block_q8_0 *b = x;
    __m256 acc = _mm256_setzero_ps();
    for (int64_t i = 0; i < n / HN_QK; i++) {
        __m256i q = _mm256_sub_epi8(nibbles32(a[i].qs), _mm256_set1_epi8(8));
        __m256 p = dot_ss8(q, _mm256_loadu_si256((const __m256i *)b[i].qs));
        acc = _mm256_fmadd_ps(_mm256_set1_ps(h2f(a[i].d) * h2f(b[i].d)), p, acc);
    }
    return hsum8(acc);
}

static float dot_q4_1(int64_t n, const void *w, const void *x) {
    const hn_block_q4_1 *a = w;
    const hn_block_q8_1 *b = x;
    __m256 acc = _mm256_setzero_ps();
    float mins = 0.0f;
    for (int64_t i = 0; i < n / HN_QK; i++) {
        __m256 p = dot_us8(nibbles32(a[i].qs), _mm256_loadu_si256((const __m256i *)b[i].qs));
        acc = _mm256_fmadd_ps(_mm256_set1_ps(h2f(a[i].d) * h2f(b[i].d)), p, acc);
        mins += h2f(a[i].m) * h2f(b[i].s);
    }
    return hsum8(acc) + mins;
}

static float dot_q8_0(int64_t n, const void *w, const void *x) {
    const hn_block_q8_0 *a = w, *b = x;
    __m256 acc = _mm256_setzero_ps();
    for (int64_t i = 0; i < n / HN_QK; i++) {
        __m256 p = dot_ss8(_mm256_loadu_si256((const __m256i *)a[i].qs), _mm256_loadu_si256((const __m256i *)b[i].qs));
        acc = _mm256_fmadd_ps(_mm256_set1_ps(h2f(a[i].d) * h2f(b[i].d)), p, acc);
    }
    return hsum8(acc);
}

static void f16_to_f32(const void *src, float *dst, int64_t n) {
    const hn_f16 *s = src;
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(dst + i, load_f16x8(s + i));
    for (; i < n; i++) dst[i] = h2f(s[i]);
}

static void bf16_to_f32(const void *src, float *dst, int64_t n) {
    const hn_bf16 *s = src;
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(dst + i, load_bf16x8(s + i));
    for (; i < n; i++) dst[i] = hn_bf16_to_f32(s[i]);
}

// 32 bytes -> 32 floats as b * d (+ m): a multiply then an add, never fused, so that the floats are bit-identical
// to the scalar reference's (and gguf-py's).
__attribute__((optimize("fp-contract=off"))) static inline void store_block(float *dst, __m256i b, bool is_signed,
                                                                            __m256 d, const __m256 *m) {
    for (int k = 0; k < 4; k++) {
        __m128i part = k < 2 ? _mm256_castsi256_si128(b) : _mm256_extracti128_si256(b, 1);
        if (k & 1) part = _mm_srli_si128(part, 8);
        __m256i wide = is_signed ? _mm256_cvtepi8_epi32(part) : _mm256_cvtepu8_epi32(part);
        __m256 v = _mm256_mul_ps(_mm256_cvtepi32_ps(wide), d);
        _mm256_storeu_ps(dst + 8 * k, m ? _mm256_add_ps(v, *m) : v);
    }
}

__attribute__((optimize("fp-contract=off"))) static void q4_0_to_f32(const void *src, float *dst, int64_t n) {
    const hn_block_q4_0 *b = src;
    for (int64_t i = 0; i < n / HN_QK; i++) {
        __m256i q = _mm256_sub_epi8(nibbles32(b[i].qs), _mm256_set1_epi8(8));
        store_block(dst + i * HN_QK, q, true, _mm256_set1_ps(h2f(b[i].d)), NULL);
    }
}

__attribute__((optimize("fp-contract=off"))) static void q4_1_to_f32(const void *src, float *dst, int64_t n) {
    const hn_block_q4_1 *b = src;
    for (int64_t i = 0; i < n / HN_QK; i++) {
        __m256 m = _mm256_set1_ps(h2f(b[i].m));
        store_block(dst + i * HN_QK, nibbles32(b[i].qs), false, _mm256_set1_ps(h2f(b[i].d)), &m);
    }
}

__attribute__((optimize("fp-contract=off"))) static void q8_0_to_f32(const void *src, float *dst, int64_t n) {
    const hn_block_q8_0 *b = src;
    for (int64_t i = 0; i < n / HN_QK; i++)
        store_block(dst + i * HN_QK, _mm256_loadu_si256((const __m256i *)b[i].qs), true, _mm256_set1_ps(h2f(b[i].d)),
                    NULL);
}

// roundf (half away from zero), as the reference quantizers round: truncate, then step away from zero when the
// dropped part is at least one half. (Rounding to nearest even would differ on exact ties.)
static inline __m256 roundf8(__m256 v) {
    __m256 t = _mm256_round_ps(v, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
    __m256 absmask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
    __m256 up = _mm256_cmp_ps(_mm256_and_ps(_mm256_sub_ps(v, t), absmask), _mm256_set1_ps(0.5f), _CMP_GE_OQ);
    __m256 one = _mm256_or_ps(_mm256_set1_ps(1.0f), _mm256_andnot_ps(absmask, v)); // +-1 with v's sign
    return _mm256_add_ps(t, _mm256_and_ps(up, one));
}

// One block of 32 floats to 32 int8 with the reference's d = amax / 127; returns d and (through sum) sum(q).
static inline float quant_block8(const float *x, int8_t *qs, int *sum) {
    __m256 v[4], absmask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
    __m256 amax = _mm256_setzero_ps();
    for (int k = 0; k < 4; k++) {
        v[k] = _mm256_loadu_ps(x + 8 * k);
        amax = _mm256_max_ps(amax, _mm256_and_ps(v[k], absmask));
    }
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(amax), _mm256_extractf128_ps(amax, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    m = _mm_max_ss(m, _mm_movehdup_ps(m));
    float d = _mm_cvtss_f32(m) / 127, id = d ? 1.0f / d : 0.0f;
    __m256i q[4];
    for (int k = 0; k < 4; k++) q[k] = _mm256_cvtps_epi32(roundf8(_mm256_mul_ps(v[k], _mm256_set1_ps(id))));
    __m256i s = _mm256_add_epi32(_mm256_add_epi32(q[0], q[1]), _mm256_add_epi32(q[2], q[3]));
    __m128i s4 = _mm_add_epi32(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
    s4 = _mm_hadd_epi32(s4, s4);
    s4 = _mm_hadd_epi32(s4, s4);
    *sum = _mm_cvtsi128_si32(s4);
    // packs work within 128-bit lanes: the permute puts the four groups of 8 back in order.
    __m256i p16a = _mm256_packs_epi32(q[0], q[1]), p16b = _mm256_packs_epi32(q[2], q[3]);
    __m256i p8 = _mm256_packs_epi16(p16a, p16b);
    p8 = _mm256_permutevar8x32_epi32(p8, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
    _mm256_storeu_si256((__m256i *)qs, p8);
    return d;
}

static void quant_q8_0(const float *src, void *dst, int64_t n) {
    hn_block_q8_0 *b = dst;
    int sum;
    for (int64_t i = 0; i < n / HN_QK; i++) b[i].d = hn_f32_to_f16(quant_block8(src + i * HN_QK, b[i].qs, &sum));
}

static void quant_q8_1(const float *src, void *dst, int64_t n) {
    hn_block_q8_1 *b = dst;
    int sum;
    for (int64_t i = 0; i < n / HN_QK; i++) {
        float d = quant_block8(src + i * HN_QK, b[i].qs, &sum);
        b[i].d = hn_f32_to_f16(d);
        b[i].s = hn_f32_to_f16((float)sum * d);
    }
}

// MT tokens x 32 rows of the panel product (see kernels.h); 4*MT accumulators in the 16 ymm registers.
static inline __attribute__((always_inline)) void gemm_tokens(const int MT, int64_t K, const float *x,
                                                              const float *pack, float *y, int64_t ldy, int nr) {
    __m256 acc[3][4];
    for (int t = 0; t < MT; t++)
        for (int j = 0; j < 4; j++) acc[t][j] = _mm256_setzero_ps();
    for (int64_t k = 0; k < K; k++) {
        __m256 w[4];
        for (int j = 0; j < 4; j++) w[j] = _mm256_loadu_ps(pack + k * HN_PANEL + 8 * j);
        for (int t = 0; t < MT; t++) {
            __m256 xb = _mm256_broadcast_ss(x + t * K + k);
            for (int j = 0; j < 4; j++) acc[t][j] = _mm256_fmadd_ps(w[j], xb, acc[t][j]);
        }
    }
    for (int t = 0; t < MT; t++) {
        if (nr == HN_PANEL) {
            for (int j = 0; j < 4; j++) _mm256_storeu_ps(y + t * ldy + 8 * j, acc[t][j]);
        } else {
            float tmp[HN_PANEL];
            for (int j = 0; j < 4; j++) _mm256_storeu_ps(tmp + 8 * j, acc[t][j]);
            for (int r = 0; r < nr; r++) y[t * ldy + r] = tmp[r];
        }
    }
}

static void gemm_panel(int64_t T, int64_t K, const float *x, const float *pack, float *y, int64_t ldy, int nr) {
    int64_t t = 0;
    for (; t + 3 <= T; t += 3) gemm_tokens(3, K, x + t * K, pack, y + t * ldy, ldy, nr);
    if (T - t == 2) gemm_tokens(2, K, x + t * K, pack, y + t * ldy, ldy, nr);
    else if (T - t == 1) gemm_tokens(1, K, x + t * K, pack, y + t * ldy, ldy, nr);
}

// ---- The batch kernel of FAST mode (kernels.h, hn_gemm_rows_fn) ----
//
// 3 rows x up to 4 tokens of accumulators, k in the lanes: 12 accumulators, 3 weight vectors and one activation
// vector fill the 16 ymm registers; per 8 elements of k, 7 loads feed 12 FMAs. Each accumulator is summed across
// its lanes by hsum8 at the end, whichever tile it sat in.
static inline __attribute__((always_inline)) void rows_tile(const int RN, const int TN, int64_t K, const float *w,
                                                            const float *x, float *y, int64_t ldy) {
    __m256 acc[3][4];
#pragma GCC unroll 4
    for (int r = 0; r < RN; r++)
#pragma GCC unroll 4
        for (int t = 0; t < TN; t++) acc[r][t] = _mm256_setzero_ps();
    int64_t k = 0;
    for (; k + 8 <= K; k += 8) {
        __m256 wv[3];
#pragma GCC unroll 4
        for (int r = 0; r < RN; r++) wv[r] = _mm256_loadu_ps(w + r * K + k);
#pragma GCC unroll 4
        for (int t = 0; t < TN; t++) {
            __m256 xv = _mm256_loadu_ps(x + t * K + k);
#pragma GCC unroll 4
            for (int r = 0; r < RN; r++) acc[r][t] = _mm256_fmadd_ps(wv[r], xv, acc[r][t]);
        }
    }
    if (k < K) { // F16 / BF16 rows of any width: the tail as one masked step, zeros past K
        const __m256i m =
            _mm256_cmpgt_epi32(_mm256_set1_epi32((int)(K - k)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
        __m256 wv[3];
#pragma GCC unroll 4
        for (int r = 0; r < RN; r++) wv[r] = _mm256_maskload_ps(w + r * K + k, m);
#pragma GCC unroll 4
        for (int t = 0; t < TN; t++) {
            __m256 xv = _mm256_maskload_ps(x + t * K + k, m);
#pragma GCC unroll 4
            for (int r = 0; r < RN; r++) acc[r][t] = _mm256_fmadd_ps(wv[r], xv, acc[r][t]);
        }
    }
#pragma GCC unroll 4
    for (int t = 0; t < TN; t++)
#pragma GCC unroll 4
        for (int r = 0; r < RN; r++) y[t * ldy + r] = hsum8(acc[r][t]);
}

#define ROWS_TILE_T(RN, TN, ...)                                                                                     \
    switch (TN) {                                                                                                    \
    case 4: rows_tile(RN, 4, __VA_ARGS__); break;                                                                    \
    case 3: rows_tile(RN, 3, __VA_ARGS__); break;                                                                    \
    case 2: rows_tile(RN, 2, __VA_ARGS__); break;                                                                    \
    default: rows_tile(RN, 1, __VA_ARGS__); break;                                                                   \
    }

// Tokens in tiles of nearly equal size, rows 3 at a time, the last 1-2 one at a time.
static void gemm_rows(int64_t T, int64_t K, const float *x, const float *w, int64_t nr, float *y, int64_t ldy) {
    const int64_t ntiles = (T + 3) / 4;
    for (int64_t i = 0, t0 = 0; i < ntiles; i++) {
        const int tn = (int)(T / ntiles + (i < T % ntiles));
        const float *xt = x + t0 * K;
        float *yt = y + t0 * ldy;
        int64_t r = 0;
        for (; r + 3 <= nr; r += 3) ROWS_TILE_T(3, tn, K, w + r * K, xt, yt + r, ldy)
        for (; r < nr; r++) ROWS_TILE_T(1, tn, K, w + r * K, xt, yt + r, ldy)
        t0 += tn;
    }
}

// ---- Decode kernels with fp32 activations (kernels.h, hn_mv_fn) ----
//
// A block is dequantized to 4 vectors of 8 floats, w = q * d + c with c = m (Q4_1), -8d (Q4_0) or 0 (Q8_0) by one
// FMA: q * d is exact in fp32 (d is an f16), so the single rounding gives to_f32's values bit for bit.

static inline __attribute__((always_inline)) void mv_deq(const int type, const uint8_t *blk, __m256 w[4]) {
    __m256 d = _mm256_set1_ps(h2f(((const hn_f16 *)blk)[0]));
    if (type == HN_Q8_0) {
        const int8_t *qs = (const int8_t *)(blk + 2);
        for (int j = 0; j < 4; j++)
            w[j] = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(qs + 8 * j)))),
                                 d);
        return;
    }
    __m256 c = type == HN_Q4_1 ? _mm256_set1_ps(h2f(((const hn_f16 *)blk)[1])) : _mm256_mul_ps(d, _mm256_set1_ps(-8.0f));
    const uint8_t *qs = blk + (type == HN_Q4_1 ? 4 : 2);
    const __m256i low = _mm256_set1_epi32(0x0f);
    __m256i v0 = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)qs));
    __m256i v1 = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(qs + 8)));
    w[0] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_and_si256(v0, low)), d, c);
    w[1] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_and_si256(v1, low)), d, c);
    w[2] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_srli_epi32(v0, 4)), d, c);
    w[3] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_srli_epi32(v1, 4)), d, c);
}

// One weight row x TT tokens over all of K, four accumulators per token (one per eighth of a block), so every
// output is summed the same way whatever TT; one row at a time, so the weight is read as one sequential stream.
static inline __attribute__((always_inline)) void mv_tile(const int type, const size_t bs, const int TT, int64_t K,
                                                          const uint8_t *w, const float *x, float *y, int64_t ldy) {
    __m256 acc[2][4];
    for (int t = 0; t < TT; t++)
        for (int j = 0; j < 4; j++) acc[t][j] = _mm256_setzero_ps();
    const int64_t nb = K / HN_QK;
    for (int64_t b = 0; b < nb; b++) {
        __m256 wv[4];
        mv_deq(type, w + (size_t)b * bs, wv);
        for (int t = 0; t < TT; t++) {
            const float *xb = x + t * K + b * HN_QK;
            for (int j = 0; j < 4; j++) acc[t][j] = _mm256_fmadd_ps(wv[j], _mm256_loadu_ps(xb + 8 * j), acc[t][j]);
        }
    }
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

static void mv_q4_0(int64_t K, const void *w, size_t rb, int64_t nr, const float *x, int64_t T, float *y, int64_t ldy) {
    mv_type(HN_Q4_0, sizeof(hn_block_q4_0), K, w, rb, nr, x, T, y, ldy);
}
static void mv_q4_1(int64_t K, const void *w, size_t rb, int64_t nr, const float *x, int64_t T, float *y, int64_t ldy) {
    mv_type(HN_Q4_1, sizeof(hn_block_q4_1), K, w, rb, nr, x, T, y, ldy);
}
static void mv_q8_0(int64_t K, const void *w, size_t rb, int64_t nr, const float *x, int64_t T, float *y, int64_t ldy) {
    mv_type(HN_Q8_0, sizeof(hn_block_q8_0), K, w, rb, nr, x, T, y, ldy);
}

const hn_kernel_set hn_kernels_avx2 = {
    .mv = {[HN_Q4_0] = mv_q4_0, [HN_Q4_1] = mv_q4_1, [HN_Q8_0] = mv_q8_0, [HN_Q4_K] = hn_mv_q4_k_avx2,
           [HN_Q5_K] = hn_mv_q5_k_avx2, [HN_Q6_K] = hn_mv_q6_k_avx2, [HN_Q5_0] = hn_mv_q5_0_avx2,
           [HN_Q5_1] = hn_mv_q5_1_avx2,
           [HN_Q2_K] = hn_mv_q2_k_avx2, [HN_Q3_K] = hn_mv_q3_k_avx2},
    .gemm_panel = gemm_panel,
    .dot = {[HN_F32] = dot_f32, [HN_F16] = dot_f16, [HN_BF16] = dot_bf16, [HN_Q4_0] = dot_q4_0,
            [HN_Q4_1] = dot_q4_1, [HN_Q8_0] = dot_q8_0, [HN_Q4_K] = hn_dot_q4_k_avx2, [HN_Q5_K] = hn_dot_q5_k_avx2,
            [HN_Q6_K] = hn_dot_q6_k_avx2, [HN_Q5_0] = hn_dot_q5_0_avx2,
            [HN_Q5_1] = hn_dot_q5_1_avx2,
            [HN_Q2_K] = hn_dot_q2_k_avx2, [HN_Q3_K] = hn_dot_q3_k_avx2},
    .to_f32 = {[HN_F16] = f16_to_f32, [HN_BF16] = bf16_to_f32, [HN_Q4_0] = q4_0_to_f32, [HN_Q4_1] = q4_1_to_f32,
               [HN_Q8_0] = q8_0_to_f32, [HN_Q4_K] = hn_q4_k_to_f32_avx2, [HN_Q5_K] = hn_q5_k_to_f32_avx2,
               [HN_Q6_K] = hn_q6_k_to_f32_avx2, [HN_Q5_0] = hn_q5_0_to_f32_avx2,
               [HN_Q5_1] = hn_q5_1_to_f32_avx2,
               [HN_Q2_K] = hn_q2_k_to_f32_avx2, [HN_Q3_K] = hn_q3_k_to_f32_avx2},
    .quantize_act = {[HN_Q8_0] = quant_q8_0, [HN_Q8_1] = quant_q8_1},
    .gemm_rows = gemm_rows,
};
