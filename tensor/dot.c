// tensor/dot.c — scalar reference dot products, one per (weight type, vec_dot_type) pair. The SIMD kernels of
// dot_avx2.c / dot_avx512.c are tested against these. Integer parts are exact; the float sum runs block by block
// in order, so the SIMD kernels differ from these only by float summation order.
#include "tensor/kernels.h"

float hn_dot_f32_f32_ref(int64_t n, const void *w, const void *x) {
    const float *a = w, *b = x;
    float sum = 0.0f;
    for (int64_t i = 0; i < n; i++) sum += a[i] * b[i];
    return sum;
}

float hn_dot_f16_f32_ref(int64_t n, const void *w, const void *x) {
    const hn_f16 *a = w;
    const float *b = x;
    float sum = 0.0f;
    for (int64_t i = 0; i < n; i++) sum += hn_f16_to_f32(a[i]) * b[i];
    return sum;
}

float hn_dot_bf16_f32_ref(int64_t n, const void *w, const void *x) {
    const hn_bf16 *a = w;
    const float *b = x;
    float sum = 0.0f;
    for (int64_t i = 0; i < n; i++) sum += hn_bf16_to_f32(a[i]) * b[i];
    return sum;
}

// sum_j d_w (q_j - 8) * d_x x_j
float hn_dot_q4_0_q8_0_ref(int64_t n, const void *w, const void *x) {
    const hn_block_q4_0 *a = w;
    const hn_block_q8_0 *b = x;
    float sum = 0.0f;
    for (int64_t i = 0; i < n / HN_QK; i++) {
        int isum = 0;
        for (int j = 0; j < HN_QK / 2; j++) {
            isum += ((a[i].qs[j] & 0x0f) - 8) * b[i].qs[j];
            isum += ((a[i].qs[j] >> 4) - 8) * b[i].qs[j + HN_QK / 2];
        }
        sum += (float)isum * (hn_f16_to_f32(a[i].d) * hn_f16_to_f32(b[i].d));
    }
    return sum;
}

// sum_j (d_w q_j + m_w) * d_x x_j = d_w d_x sum(q_j x_j) + m_w * s_x, with s_x = d_x sum(x_j) stored in the block.
float hn_dot_q4_1_q8_1_ref(int64_t n, const void *w, const void *x) {
    const hn_block_q4_1 *a = w;
    const hn_block_q8_1 *b = x;
    float sum = 0.0f;
    for (int64_t i = 0; i < n / HN_QK; i++) {
        int isum = 0;
        for (int j = 0; j < HN_QK / 2; j++) {
            isum += (a[i].qs[j] & 0x0f) * b[i].qs[j];
            isum += (a[i].qs[j] >> 4) * b[i].qs[j + HN_QK / 2];
        }
        sum += (float)isum * (hn_f16_to_f32(a[i].d) * hn_f16_to_f32(b[i].d)) +
               hn_f16_to_f32(a[i].m) * hn_f16_to_f32(b[i].s);
    }
    return sum;
}

float hn_dot_q8_0_q8_0_ref(int64_t n, const void *w, const void *x) {
    const hn_block_q8_0 *a = w, *b = x;
    float sum = 0.0f;
    for (int64_t i = 0; i < n / HN_QK; i++) {
        int isum = 0;
        for (int j = 0; j < HN_QK; j++) isum += a[i].qs[j] * b[i].qs[j];
        sum += (float)isum * (hn_f16_to_f32(a[i].d) * hn_f16_to_f32(b[i].d));
    }
    return sum;
}

void hn_gemm_panel_ref(int64_t T, int64_t K, const float *x, const float *pack, float *y, int64_t ldy, int nr) {
    for (int64_t t = 0; t < T; t++) {
        for (int r = 0; r < nr; r++) {
            float sum = 0.0f;
            for (int64_t k = 0; k < K; k++) sum += pack[k * HN_PANEL + r] * x[t * K + k];
            y[t * ldy + r] = sum;
        }
    }
}

float hn_dot_blocks_ref(hn_to_f32_fn to_f32, int block, size_t block_bytes, int64_t n, const void *w, const float *x) {
    float deq[HN_QK_K], sum = 0.0f;
    for (int64_t b = 0; b < n / block; b++) {
        to_f32((const uint8_t *)w + (size_t)b * block_bytes, deq, block);
        for (int j = 0; j < block; j++) sum += deq[j] * x[b * block + j];
    }
    return sum;
}

// Each block dequantized once for up to 16 tokens at a time.
void hn_mv_blocks_ref(hn_to_f32_fn to_f32, int block, size_t block_bytes, int64_t K, const void *w, size_t row_bytes,
                      int64_t nr, const float *x, int64_t T, float *y, int64_t ldy) {
    float deq[HN_QK_K], sum[16];
    for (int64_t r = 0; r < nr; r++) {
        const uint8_t *wr = (const uint8_t *)w + (size_t)r * row_bytes;
        for (int64_t t0 = 0; t0 < T; t0 += 16) {
            int tn = T - t0 < 16 ? (int)(T - t0) : 16;
            for (int t = 0; t < tn; t++) sum[t] = 0.0f;
            for (int64_t b = 0; b < K / block; b++) {
                to_f32(wr + (size_t)b * block_bytes, deq, block);
                for (int t = 0; t < tn; t++) {
                    const float *xb = x + (t0 + t) * K + b * block;
                    for (int j = 0; j < block; j++) sum[t] += deq[j] * xb[j];
                }
            }
            for (int t = 0; t < tn; t++) y[(t0 + t) * ldy + r] = sum[t];
        }
    }
}

void hn_mv_q4_0_ref(int64_t K, const void *w, size_t row_bytes, int64_t nr, const float *x, int64_t T, float *y,
                    int64_t ldy) {
    hn_mv_blocks_ref(hn_q4_0_to_f32_ref, HN_QK, sizeof(hn_block_q4_0), K, w, row_bytes, nr, x, T, y, ldy);
}

void hn_mv_q4_1_ref(int64_t K, const void *w, size_t row_bytes, int64_t nr, const float *x, int64_t T, float *y,
                    int64_t ldy) {
    hn_mv_blocks_ref(hn_q4_1_to_f32_ref, HN_QK, sizeof(hn_block_q4_1), K, w, row_bytes, nr, x, T, y, ldy);
}

void hn_mv_q8_0_ref(int64_t K, const void *w, size_t row_bytes, int64_t nr, const float *x, int64_t T, float *y,
                    int64_t ldy) {
    hn_mv_blocks_ref(hn_q8_0_to_f32_ref, HN_QK, sizeof(hn_block_q8_0), K, w, row_bytes, nr, x, T, y, ldy);
}
