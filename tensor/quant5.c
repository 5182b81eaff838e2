// tensor/quant5.c — Q5_0 and Q5_1 (FORMATS.md 2.3): 5-bit blocks of 32, the types llama.cpp falls back to when a
// tensor's rows are not a whole number of 256-wide K-quant blocks (Q4_K -> Q5_0, Q5_K -> Q5_1). Dequantize,
// quantize (rounding exactly as ggml's quantize_row_q5_*_ref, so gguf-py's quantizer gives the same bytes), and the
// fp32-activation dot product and decode kernel (their vec_dot_type is F32).
#include "tensor/kernels.h"

#include <float.h>
#include <math.h>
#include <string.h>

#define MIN(a, b) ((a) < (b) ? (a) : (b))

static inline uint32_t load_qh(const uint8_t qh[4]) {
    return (uint32_t)qh[0] | (uint32_t)qh[1] << 8 | (uint32_t)qh[2] << 16 | (uint32_t)qh[3] << 24;
}

static inline void store_qh(uint8_t qh[4], uint32_t v) {
    for (int k = 0; k < 4; k++) qh[k] = (uint8_t)(v >> (8 * k));
}

// Quant j (0..31): low nibble of qs[j] (j < 16) or high nibble of qs[j - 16], fifth bit from qh.
static inline int quant5(const uint8_t *qs, uint32_t qh, int j) {
    int low = j < HN_QK / 2 ? qs[j] & 0x0f : qs[j - HN_QK / 2] >> 4;
    return low | (int)((qh >> j) & 1) << 4;
}

// ---- Q5_0: x = d * (q - 16) ----

void hn_q5_0_to_f32_ref(const void *src, float *dst, int64_t n) {
    const hn_block_q5_0 *b = src;
    for (int64_t i = 0; i < n / HN_QK; i++, dst += HN_QK) {
        float d = hn_f16_to_f32(b[i].d);
        uint32_t qh = load_qh(b[i].qh);
        for (int j = 0; j < HN_QK; j++) dst[j] = (float)(quant5(b[i].qs, qh, j) - 16) * d;
    }
}

// Pack 32 quants (0..31) into the low nibbles, high nibbles and qh.
static void pack5(const uint8_t *q, uint8_t *qs, uint8_t qh_out[4]) {
    uint32_t qh = 0;
    for (int j = 0; j < HN_QK / 2; j++) {
        qs[j] = (uint8_t)((q[j] & 0x0f) | (q[j + HN_QK / 2] & 0x0f) << 4);
        qh |= (uint32_t)(q[j] >> 4) << j | (uint32_t)(q[j + HN_QK / 2] >> 4) << (j + HN_QK / 2);
    }
    store_qh(qh_out, qh);
}

void hn_q5_0_from_f32_ref(const float *src, void *dst, int64_t n) {
    hn_block_q5_0 *b = dst;
    for (int64_t i = 0; i < n / HN_QK; i++, src += HN_QK) {
        // The signed value of largest magnitude maps to -16: the full range [-16, 15] on its side.
        float amax = 0.0f, max = 0.0f;
        for (int j = 0; j < HN_QK; j++) {
            if (amax < fabsf(src[j])) {
                amax = fabsf(src[j]);
                max = src[j];
            }
        }
        float d = max / -16, id = d ? 1.0f / d : 0.0f;
        b[i].d = hn_f32_to_f16(d);
        uint8_t q[HN_QK];
        for (int j = 0; j < HN_QK; j++) q[j] = (uint8_t)MIN(31, (int8_t)(src[j] * id + 16.5f)); // truncation, as ggml
        pack5(q, b[i].qs, b[i].qh);
    }
}

// ---- Q5_1: x = d * q + m ----

void hn_q5_1_to_f32_ref(const void *src, float *dst, int64_t n) {
    const hn_block_q5_1 *b = src;
    for (int64_t i = 0; i < n / HN_QK; i++, dst += HN_QK) {
        float d = hn_f16_to_f32(b[i].d), m = hn_f16_to_f32(b[i].m);
        uint32_t qh = load_qh(b[i].qh);
        for (int j = 0; j < HN_QK; j++) dst[j] = (float)quant5(b[i].qs, qh, j) * d + m;
    }
}

void hn_q5_1_from_f32_ref(const float *src, void *dst, int64_t n) {
    hn_block_q5_1 *b = dst;
    for (int64_t i = 0; i < n / HN_QK; i++, src += HN_QK) {
        float min = FLT_MAX, max = -FLT_MAX;
        for (int j = 0; j < HN_QK; j++) {
            if (src[j] < min) min = src[j];
            if (src[j] > max) max = src[j];
        }
        float d = (max - min) / 31, id = d ? 1.0f / d : 0.0f;
        b[i].d = hn_f32_to_f16(d);
        b[i].m = hn_f32_to_f16(min);
        uint8_t q[HN_QK];
        for (int j = 0; j < HN_QK; j++) q[j] = (uint8_t)MIN(31, (int8_t)((src[j] - min) * id + 0.5f));
        pack5(q, b[i].qs, b[i].qh);
    }
}

// ---- dot products with fp32 activations and decode kernels: each block dequantized, summed in order of k ----

float hn_dot_q5_0_f32_ref(int64_t n, const void *w, const void *x) {
    return hn_dot_blocks_ref(hn_q5_0_to_f32_ref, HN_QK, sizeof(hn_block_q5_0), n, w, x);
}

float hn_dot_q5_1_f32_ref(int64_t n, const void *w, const void *x) {
    return hn_dot_blocks_ref(hn_q5_1_to_f32_ref, HN_QK, sizeof(hn_block_q5_1), n, w, x);
}

void hn_mv_q5_0_ref(int64_t K, const void *w, size_t row_bytes, int64_t nr, const float *x, int64_t T, float *y,
                    int64_t ldy) {
    hn_mv_blocks_ref(hn_q5_0_to_f32_ref, HN_QK, sizeof(hn_block_q5_0), K, w, row_bytes, nr, x, T, y, ldy);
}

void hn_mv_q5_1_ref(int64_t K, const void *w, size_t row_bytes, int64_t nr, const float *x, int64_t T, float *y,
                    int64_t ldy) {
    hn_mv_blocks_ref(hn_q5_1_to_f32_ref, HN_QK, sizeof(hn_block_q5_1), K, w, row_bytes, nr, x, T, y, ldy);
}
