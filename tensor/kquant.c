// tensor/kquant.c — the K-quants (Q2_K, Q3_K, Q4_K, Q5_K, Q6_K; FORMATS.md 2.5-2.9): reference dequantize,
// quantize from fp32, and the fp32-activation dot product and decode kernel the type traits point at.
//
// Dequantization is exact arithmetic up to the last step: every f16 super-scale times a sub-block scale of at most
// 8 bits, times a quant of at most 6 bits, fits in fp32's 24-bit significand, so the only rounding is the final
// subtraction of the min (Q2_K, Q4_K, Q5_K). An FMA gives the same bits, and so does gguf-py's NumPy dequantizer.
//
// The quantizers take the steps of llama.cpp's quantize_row_*_ref (written here from its description, FORMATS.md
// 2.5-2.9 and the search outlines below): per sub-block a weighted least-squares search over candidate scales (with
// a min for the asymmetric types), then the sub-block scales are themselves quantized against the block's largest
// (6 bits; 4 for Q2_K, 8 for Q6_K), and every value is rounded again against the scale actually stored. With the
// same float operations in the same order, the blocks come out byte-identical to ggml's (tests/test_kquant.c
// checks that against ggml's output, and each type's error bound).
#include "tensor/kernels.h"

#include <math.h>
#include <string.h>

#define MIN(a, b) ((a) < (b) ? (a) : (b))
#define MAX(a, b) ((a) > (b) ? (a) : (b))

// Round to nearest, ties to even, as ggml's nearest_int: adding 1.5 * 2^23 leaves the rounded integer in the low
// mantissa bits (no libm call in the searches' inner loops). Beyond +-2^22, far outside every quant range, the
// result only needs to be clamped the right way.
static inline int nearest(float x) {
    if (!(fabsf(x) < 4194303.0f)) return x > 0 ? 1 << 22 : -(1 << 22);
    float v = x + 12582912.0f;
    int32_t i;
    memcpy(&i, &v, 4);
    return (i & 0x007fffff) - 0x00400000;
}

// ---- Q4_K / Q5_K scale packing: 8 six-bit scales and 8 six-bit mins in 12 bytes (FORMATS.md 2.5) ----

static inline void scale_min_k4(int j, const uint8_t *s, int *sc, int *m) {
    if (j < 4) {
        *sc = s[j] & 63;
        *m = s[j + 4] & 63;
    } else {
        *sc = (s[j + 4] & 0x0f) | ((s[j - 4] >> 6) << 4);
        *m = (s[j + 4] >> 4) | ((s[j] >> 6) << 4);
    }
}

static void pack_scale_min_k4(uint8_t *s, const int *ls, const int *lm) {
    memset(s, 0, 12);
    for (int j = 0; j < 8; j++) {
        if (j < 4) {
            s[j] = (uint8_t)ls[j];
            s[j + 4] = (uint8_t)lm[j];
        } else {
            s[j + 4] = (uint8_t)((ls[j] & 0x0f) | ((lm[j] & 0x0f) << 4));
            s[j - 4] |= (uint8_t)((ls[j] >> 4) << 6);
            s[j] |= (uint8_t)((lm[j] >> 4) << 6);
        }
    }
}

// ---- Q3_K scale packing: 16 six-bit scales stored +32; low nibbles in bytes 0..7, high 2 bits in 8..11 ----

static inline int scale_q3_k(int k, const uint8_t *s) {
    int low4 = k < 8 ? s[k] & 0x0f : s[k - 8] >> 4;
    int high2 = (s[8 + k % 4] >> (2 * (k / 4))) & 3;
    return (low4 | high2 << 4) - 32;
}

// ---- dequantize ----

void hn_q4_k_to_f32_ref(const void *src, float *dst, int64_t n) {
    const hn_block_q4_k *b = src;
    for (int64_t i = 0; i < n / HN_QK_K; i++, dst += HN_QK_K) {
        float d = hn_f16_to_f32(b[i].d), dmin = hn_f16_to_f32(b[i].dmin);
        for (int j = 0; j < 8; j++) {
            int sc, m;
            scale_min_k4(j, b[i].scales, &sc, &m);
            float d1 = d * (float)sc, m1 = dmin * (float)m;
            const uint8_t *qs = b[i].qs + 32 * (j / 2);
            int shift = 4 * (j & 1); // sub-block 2c in the low nibbles of chunk c, 2c+1 in the high ones
            for (int l = 0; l < 32; l++) dst[32 * j + l] = d1 * (float)((qs[l] >> shift) & 0x0f) - m1;
        }
    }
}

void hn_q5_k_to_f32_ref(const void *src, float *dst, int64_t n) {
    const hn_block_q5_k *b = src;
    for (int64_t i = 0; i < n / HN_QK_K; i++, dst += HN_QK_K) {
        float d = hn_f16_to_f32(b[i].d), dmin = hn_f16_to_f32(b[i].dmin);
        for (int j = 0; j < 8; j++) {
            int sc, m;
            scale_min_k4(j, b[i].scales, &sc, &m);
            float d1 = d * (float)sc, m1 = dmin * (float)m;
            const uint8_t *qs = b[i].qs + 32 * (j / 2);
            int shift = 4 * (j & 1);
            for (int l = 0; l < 32; l++) {
                int q = ((qs[l] >> shift) & 0x0f) | (((b[i].qh[l] >> j) & 1) << 4); // 5th bit: bit j of qh[l]
                dst[32 * j + l] = d1 * (float)q - m1;
            }
        }
    }
}

void hn_q6_k_to_f32_ref(const void *src, float *dst, int64_t n) {
    const hn_block_q6_k *b = src;
    for (int64_t i = 0; i < n / HN_QK_K; i++, dst += HN_QK_K) {
        float d = hn_f16_to_f32(b[i].d);
        for (int h = 0; h < 2; h++) { // two halves of 128, each from 64 ql bytes, 32 qh bytes and 8 scales
            const uint8_t *ql = b[i].ql + 64 * h, *qh = b[i].qh + 32 * h;
            const int8_t *sc = b[i].scales + 8 * h;
            float *y = dst + 128 * h;
            for (int l = 0; l < 32; l++) {
                int is = l / 16;
                int q1 = ((ql[l] & 0x0f) | ((qh[l] >> 0) & 3) << 4) - 32;
                int q2 = ((ql[l + 32] & 0x0f) | ((qh[l] >> 2) & 3) << 4) - 32;
                int q3 = ((ql[l] >> 4) | ((qh[l] >> 4) & 3) << 4) - 32;
                int q4 = ((ql[l + 32] >> 4) | ((qh[l] >> 6) & 3) << 4) - 32;
                y[l] = d * (float)sc[is] * (float)q1;
                y[l + 32] = d * (float)sc[is + 2] * (float)q2;
                y[l + 64] = d * (float)sc[is + 4] * (float)q3;
                y[l + 96] = d * (float)sc[is + 6] * (float)q4;
            }
        }
    }
}

void hn_q2_k_to_f32_ref(const void *src, float *dst, int64_t n) {
    const hn_block_q2_k *b = src;
    for (int64_t i = 0; i < n / HN_QK_K; i++, dst += HN_QK_K) {
        float d = hn_f16_to_f32(b[i].d), dmin = hn_f16_to_f32(b[i].dmin);
        for (int e = 0; e < HN_QK_K; e++) {
            int h = e / 128, j = (e % 128) / 32, l = e % 32, s = b[i].scales[e / 16];
            int q = (b[i].qs[32 * h + l] >> (2 * j)) & 3;
            dst[e] = d * (float)(s & 0x0f) * (float)q - dmin * (float)(s >> 4);
        }
    }
}

void hn_q3_k_to_f32_ref(const void *src, float *dst, int64_t n) {
    const hn_block_q3_k *b = src;
    for (int64_t i = 0; i < n / HN_QK_K; i++, dst += HN_QK_K) {
        float d = hn_f16_to_f32(b[i].d);
        for (int e = 0; e < HN_QK_K; e++) {
            int h = e / 128, j = (e % 128) / 32, l = e % 32;
            int low = (b[i].qs[32 * h + l] >> (2 * j)) & 3, hbit = (b[i].hmask[l] >> (4 * h + j)) & 1;
            int q = low - (hbit ? 0 : 4); // a set hmask bit means "no offset"
            dst[e] = d * (float)scale_q3_k(e / 16, b[i].scales) * (float)q;
        }
    }
}

// ---- quantize: scale searches ----

// Asymmetric fit of n values to x ~ scale * L - min with L in [0, nmax] (scale >= 0, min >= 0 returned): start from
// the full range, then try nstep + 1 stretched grids (nmax + rmin + rdelta * k levels from the current origin to the
// largest value) and keep the one whose weighted least-squares (scale, min) has the smallest weighted error
// (absolute when mad). As in ggml's make_qkx2_quants, a better fit moves the origin the later grids start from to
// its min. Zero stays representable (the range always includes 0).
static float fit_scale_min(int n, int nmax, const float *x, const float *w, float *min_out, float rmin, float rdelta,
                           int nstep, bool mad) {
    float lo = x[0], hi = x[0], sw = 0, sx = 0;
    for (int i = 0; i < n; i++) {
        lo = fminf(lo, x[i]);
        hi = fmaxf(hi, x[i]);
        sw += w[i];
        sx += w[i] * x[i];
    }
    if (lo > 0) lo = 0;
    if (hi == lo) {
        *min_out = -lo;
        return 0.0f;
    }
    float iscale0 = (float)nmax / (hi - lo), scale = 1 / iscale0, best = 0;
    for (int i = 0; i < n; i++) {
        int l = MAX(0, MIN(nmax, nearest(iscale0 * (x[i] - lo))));
        float diff = scale * (float)l + lo - x[i];
        best += w[i] * (mad ? fabsf(diff) : diff * diff);
    }
    uint8_t L[32];
    for (int k = 0; k <= nstep; k++) {
        float iscale = (rmin + rdelta * (float)k + (float)nmax) / (hi - lo); // lo: the best fit's min so far
        float sl = 0, sl2 = 0, sxl = 0;
        for (int i = 0; i < n; i++) {
            int l = MAX(0, MIN(nmax, nearest(iscale * (x[i] - lo))));
            L[i] = (uint8_t)l;
            sl += w[i] * (float)l;
            sl2 += w[i] * (float)l * (float)l;
            sxl += w[i] * (float)l * x[i];
        }
        float det = sw * sl2 - sl * sl;
        if (det <= 0) continue;
        float s = (sw * sxl - sx * sl) / det, m = (sl2 * sx - sl * sxl) / det;
        if (m > 0) { // the min must stay <= 0 (it is stored as a positive number and subtracted)
            m = 0;
            s = sxl / sl2;
        }
        float err = 0;
        for (int i = 0; i < n; i++) {
            float diff = s * (float)L[i] + m - x[i];
            err += w[i] * (mad ? fabsf(diff) : diff * diff);
        }
        if (err < best) {
            best = err;
            scale = s;
            lo = m;
        }
    }
    *min_out = -lo;
    return scale;
}

// Symmetric fit of n values to x ~ scale * L with L in [-nmax, nmax - 1], weighted by x^2 (large values matter
// most): the value of largest magnitude maps to -nmax (its sign picks the scale's), then 18 nearby grids are tried
// and the least-squares scale of the best kept. Returns the signed scale (0 for an all-zero group).
static float fit_scale_signed(int n, int nmax, const float *x) {
    float amax = 0, max = 0;
    for (int i = 0; i < n; i++) {
        if (fabsf(x[i]) > amax) {
            amax = fabsf(x[i]);
            max = x[i];
        }
    }
    if (amax < 1e-15f) return 0.0f;
    float scale = 0, best = -1;
    for (int k = 0; k <= 18; k++) {
        float iscale = -((float)nmax + 0.1f * (float)(k == 0 ? 0 : k <= 9 ? k - 10 : k - 9)) / max;
        float sxl = 0, sl2 = 0;
        for (int i = 0; i < n; i++) {
            int l = MAX(-nmax, MIN(nmax - 1, nearest(iscale * x[i])));
            float w = x[i] * x[i];
            sxl += w * x[i] * (float)l;
            sl2 += w * (float)l * (float)l;
        }
        // The least-squares scale sxl / sl2 leaves error sum(w x^2) - sxl^2 / sl2: keep the largest sxl^2 / sl2.
        if (sl2 > 0 && (best < 0 || sxl * sxl > best * sl2)) {
            scale = sxl / sl2;
            best = scale * sxl;
        }
    }
    return scale;
}

// Q4_K and Q5_K share everything but the quant width: 8 sub-blocks of 32, each (scale, min) fitted, then both
// quantized to 6 bits against the largest (d = max_scale / 63, dmin = max_min / 63).
static void quantize_k4(const float *x, hn_f16 *d_out, hn_f16 *dmin_out, uint8_t *scales, uint8_t *L, int nmax,
                        float rmin, int nstep) {
    float sc[8], mn[8], w[32], max_scale = 0, max_min = 0;
    for (int j = 0; j < 8; j++) {
        const float *xj = x + 32 * j;
        float s2 = 0;
        for (int l = 0; l < 32; l++) s2 += xj[l] * xj[l];
        float av = sqrtf(s2 / 32); // weights: every value counts, larger ones more
        for (int l = 0; l < 32; l++) w[l] = av + fabsf(xj[l]);
        sc[j] = fit_scale_min(32, nmax, xj, w, &mn[j], rmin, 0.1f, nstep, false);
        max_scale = fmaxf(max_scale, sc[j]);
        max_min = fmaxf(max_min, mn[j]);
    }
    float is = max_scale > 0 ? 63.0f / max_scale : 0, im = max_min > 0 ? 63.0f / max_min : 0;
    int ls[8], lm[8];
    for (int j = 0; j < 8; j++) {
        ls[j] = MIN(63, nearest(is * sc[j]));
        lm[j] = MIN(63, nearest(im * mn[j]));
    }
    pack_scale_min_k4(scales, ls, lm);
    *d_out = hn_f32_to_f16(max_scale / 63.0f);
    *dmin_out = hn_f32_to_f16(max_min / 63.0f);
    // Round again against what is stored, so the quants fit the scales a reader will use.
    float d = hn_f16_to_f32(*d_out), dmin = hn_f16_to_f32(*dmin_out);
    for (int j = 0; j < 8; j++) {
        float d1 = d * (float)ls[j], m1 = dmin * (float)lm[j];
        for (int l = 0; l < 32; l++)
            L[32 * j + l] = d1 == 0 ? 0 : (uint8_t)MAX(0, MIN(nmax, nearest((x[32 * j + l] + m1) / d1)));
    }
}

void hn_q4_k_from_f32_ref(const float *src, void *dst, int64_t n) {
    hn_block_q4_k *b = dst;
    uint8_t L[HN_QK_K];
    for (int64_t i = 0; i < n / HN_QK_K; i++, src += HN_QK_K) {
        quantize_k4(src, &b[i].d, &b[i].dmin, b[i].scales, L, 15, -1.0f, 20);
        for (int c = 0; c < 4; c++)
            for (int l = 0; l < 32; l++) b[i].qs[32 * c + l] = (uint8_t)(L[64 * c + l] | L[64 * c + 32 + l] << 4);
    }
}

void hn_q5_k_from_f32_ref(const float *src, void *dst, int64_t n) {
    hn_block_q5_k *b = dst;
    uint8_t L[HN_QK_K];
    for (int64_t i = 0; i < n / HN_QK_K; i++, src += HN_QK_K) {
        quantize_k4(src, &b[i].d, &b[i].dmin, b[i].scales, L, 31, -0.5f, 15);
        memset(b[i].qh, 0, sizeof b[i].qh);
        for (int e = 0; e < HN_QK_K; e++) b[i].qh[e % 32] |= (uint8_t)((L[e] >> 4) << (e / 32));
        for (int c = 0; c < 4; c++)
            for (int l = 0; l < 32; l++)
                b[i].qs[32 * c + l] = (uint8_t)((L[64 * c + l] & 0x0f) | (L[64 * c + 32 + l] & 0x0f) << 4);
    }
}

void hn_q6_k_from_f32_ref(const float *src, void *dst, int64_t n) {
    hn_block_q6_k *b = dst;
    for (int64_t i = 0; i < n / HN_QK_K; i++, src += HN_QK_K) {
        float sc[16], max_scale = 0, amax = 0;
        for (int j = 0; j < 16; j++) {
            sc[j] = fit_scale_signed(16, 32, src + 16 * j);
            if (fabsf(sc[j]) > amax) {
                amax = fabsf(sc[j]);
                max_scale = sc[j];
            }
        }
        memset(&b[i], 0, sizeof b[i]);
        if (amax < 1e-15f) continue; // all zero: d = 0
        // The sub-block scale of largest magnitude maps to -128 (int8); the others get their sign relative to it.
        float iscale = -128.0f / max_scale;
        b[i].d = hn_f32_to_f16(1.0f / iscale);
        for (int j = 0; j < 16; j++) b[i].scales[j] = (int8_t)MIN(127, nearest(iscale * sc[j]));
        float d = hn_f16_to_f32(b[i].d);
        uint8_t L[HN_QK_K];
        for (int j = 0; j < 16; j++) {
            float d1 = d * (float)b[i].scales[j];
            for (int l = 0; l < 16; l++)
                L[16 * j + l] = (uint8_t)(d1 == 0 ? 32 : MAX(-32, MIN(31, nearest(src[16 * j + l] / d1))) + 32);
        }
        for (int h = 0; h < 2; h++) {
            const uint8_t *Lh = L + 128 * h;
            uint8_t *ql = b[i].ql + 64 * h, *qh = b[i].qh + 32 * h;
            for (int l = 0; l < 32; l++) {
                ql[l] = (uint8_t)((Lh[l] & 0x0f) | (Lh[l + 64] & 0x0f) << 4);
                ql[l + 32] = (uint8_t)((Lh[l + 32] & 0x0f) | (Lh[l + 96] & 0x0f) << 4);
                qh[l] = (uint8_t)((Lh[l] >> 4) | (Lh[l + 32] >> 4) << 2 | (Lh[l + 64] >> 4) << 4 | (Lh[l + 96] >> 4) << 6);
            }
        }
    }
}

// The 2-bit quants of Q2_K and Q3_K: element e = 128h + 32j + l in bits 2j of qs[32h + l].
static void pack_2bit(uint8_t *qs, const uint8_t *L) {
    for (int h = 0; h < 2; h++)
        for (int l = 0; l < 32; l++) {
            const uint8_t *Lh = L + 128 * h;
            qs[32 * h + l] = (uint8_t)(Lh[l] | Lh[l + 32] << 2 | Lh[l + 64] << 4 | Lh[l + 96] << 6);
        }
}

void hn_q2_k_from_f32_ref(const float *src, void *dst, int64_t n) {
    hn_block_q2_k *b = dst;
    for (int64_t i = 0; i < n / HN_QK_K; i++, src += HN_QK_K) {
        float sc[16], mn[16], w[16], max_scale = 0, max_min = 0;
        for (int j = 0; j < 16; j++) {
            for (int l = 0; l < 16; l++) w[l] = fabsf(src[16 * j + l]);
            sc[j] = fit_scale_min(16, 3, src + 16 * j, w, &mn[j], -0.5f, 0.1f, 15, true);
            max_scale = fmaxf(max_scale, sc[j]);
            max_min = fmaxf(max_min, mn[j]);
        }
        // 4-bit scale in the low nibble, 4-bit min in the high one, against d = max_scale / 15, dmin = max_min / 15.
        float is = max_scale > 0 ? 15.0f / max_scale : 0, im = max_min > 0 ? 15.0f / max_min : 0;
        for (int j = 0; j < 16; j++)
            b[i].scales[j] = (uint8_t)(MIN(15, nearest(is * sc[j])) | MIN(15, nearest(im * mn[j])) << 4);
        b[i].d = hn_f32_to_f16(max_scale / 15.0f);
        b[i].dmin = hn_f32_to_f16(max_min / 15.0f);
        float d = hn_f16_to_f32(b[i].d), dmin = hn_f16_to_f32(b[i].dmin);
        uint8_t L[HN_QK_K];
        for (int j = 0; j < 16; j++) {
            float d1 = d * (float)(b[i].scales[j] & 0x0f), m1 = dmin * (float)(b[i].scales[j] >> 4);
            for (int l = 0; l < 16; l++)
                L[16 * j + l] = d1 == 0 ? 0 : (uint8_t)MAX(0, MIN(3, nearest((src[16 * j + l] + m1) / d1)));
        }
        pack_2bit(b[i].qs, L);
    }
}

// Q3_K's fit of 16 values to x ~ scale * L, L in [-nmax, nmax - 1] (as ggml's make_q3_quants): the largest
// magnitude maps to -nmax, then up to 5 passes of coordinate descent move each L to the level that, with the
// least-squares scale of the others, most reduces the x^2-weighted error. L returned offset by +nmax (0 when all
// values are ~0); returns the scale.
static float fit_scale_q3(int n, int nmax, const float *x, int8_t *L) {
    float amax = 0, max = 0;
    for (int i = 0; i < n; i++) {
        if (fabsf(x[i]) > amax) {
            amax = fabsf(x[i]);
            max = x[i];
        }
    }
    if (amax < 1e-15f) {
        memset(L, 0, (size_t)n);
        return 0.0f;
    }
    float iscale = -(float)nmax / max, sumlx = 0, suml2 = 0;
    for (int i = 0; i < n; i++) {
        int l = MAX(-nmax, MIN(nmax - 1, nearest(iscale * x[i])));
        L[i] = (int8_t)l;
        float w = x[i] * x[i];
        sumlx += w * x[i] * (float)l;
        suml2 += w * (float)l * (float)l;
    }
    for (int pass = 0; pass < 5; pass++) {
        int changed = 0;
        for (int i = 0; i < n; i++) {
            float w = x[i] * x[i], slx = sumlx - w * x[i] * (float)L[i];
            if (slx <= 0) continue;
            float sl2 = suml2 - w * (float)L[i] * (float)L[i];
            int nl = MAX(-nmax, MIN(nmax - 1, nearest(x[i] * sl2 / slx)));
            if (nl == L[i]) continue;
            slx += w * x[i] * (float)nl;
            sl2 += w * (float)nl * (float)nl;
            // Keep the move when it raises sumlx^2 / suml2 (the error is sum w x^2 minus that).
            if (sl2 > 0 && slx * slx * suml2 > sumlx * sumlx * sl2) {
                L[i] = (int8_t)nl;
                sumlx = slx;
                suml2 = sl2;
                changed++;
            }
        }
        if (!changed) break;
    }
    for (int i = 0; i < n; i++) L[i] = (int8_t)(L[i] + nmax);
    return suml2 > 0 ? sumlx / suml2 : 0.0f;
}

void hn_q3_k_from_f32_ref(const float *src, void *dst, int64_t n) {
    hn_block_q3_k *b = dst;
    for (int64_t i = 0; i < n / HN_QK_K; i++, src += HN_QK_K) {
        float sc[16], max_scale = 0, amax = 0;
        int8_t L[HN_QK_K]; // quant + 4, in 0..7
        for (int j = 0; j < 16; j++) {
            sc[j] = fit_scale_q3(16, 4, src + 16 * j, L + 16 * j);
            if (fabsf(sc[j]) > amax) {
                amax = fabsf(sc[j]);
                max_scale = sc[j];
            }
        }
        memset(&b[i], 0, sizeof b[i]);
        int ls[16] = {0};
        if (max_scale != 0) {
            // Six-bit signed scales: the largest maps to -32.
            float iscale = -32.0f / max_scale;
            for (int j = 0; j < 16; j++) {
                ls[j] = MAX(-32, MIN(31, nearest(iscale * sc[j])));
                int u = ls[j] + 32;
                b[i].scales[j % 8] |= (uint8_t)((u & 0x0f) << (j < 8 ? 0 : 4));
                b[i].scales[8 + j % 4] |= (uint8_t)((u >> 4) << (2 * (j / 4)));
            }
            b[i].d = hn_f32_to_f16(1.0f / iscale);
        }
        // Round again against the stored scales; a sub-block whose scale is 0 keeps the fit's quants (they
        // dequantize to 0 anyway; kept as ggml keeps them, so the bytes agree).
        float d = hn_f16_to_f32(b[i].d);
        uint8_t low[HN_QK_K];
        for (int e = 0; e < HN_QK_K; e++) {
            float d1 = d * (float)ls[e / 16];
            if (d1 != 0) L[e] = (int8_t)(MAX(-4, MIN(3, nearest(src[e] / d1))) + 4);
            // L in 0..7: its bit 2 goes to hmask (set = no offset), the low two bits to qs.
            int h = e / 128, j = (e % 128) / 32, l = e % 32;
            if (L[e] > 3) b[i].hmask[l] |= (uint8_t)(1 << (4 * h + j));
            low[e] = (uint8_t)(L[e] & 3);
        }
        pack_2bit(b[i].qs, low);
    }
}

// ---- dot products with fp32 activations, and the decode kernels ----

// The reference kernels: hn_dot_blocks_ref / hn_mv_blocks_ref over super-blocks of HN_QK_K.
#define K_KERNELS(name, block)                                                                                       \
    float hn_dot_##name##_f32_ref(int64_t n, const void *w, const void *x) {                                         \
        return hn_dot_blocks_ref(hn_##name##_to_f32_ref, HN_QK_K, sizeof(block), n, w, x);                           \
    }                                                                                                                \
    void hn_mv_##name##_ref(int64_t K, const void *w, size_t row_bytes, int64_t nr, const float *x, int64_t T,       \
                            float *y, int64_t ldy) {                                                                 \
        hn_mv_blocks_ref(hn_##name##_to_f32_ref, HN_QK_K, sizeof(block), K, w, row_bytes, nr, x, T, y, ldy);         \
    }
K_KERNELS(q2_k, hn_block_q2_k)
K_KERNELS(q3_k, hn_block_q3_k)
K_KERNELS(q4_k, hn_block_q4_k)
K_KERNELS(q5_k, hn_block_q5_k)
K_KERNELS(q6_k, hn_block_q6_k)
