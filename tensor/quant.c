// tensor/quant.c — reference quantize / dequantize for every dtype (FORMATS.md section 2).
//
// The quantizers round exactly as ggml's quantize_row_*_ref do (same operations in the same order, in float), so
// that a file hone writes is byte-identical to llama.cpp's and gguf-py's for the same input.
#include "tensor/kernels.h"

#include <float.h>
#include <math.h>
#include <string.h>

#define MIN(a, b) ((a) < (b) ? (a) : (b))

void hn_f32_to_f32_ref(const void *src, float *dst, int64_t n) { memcpy(dst, src, (size_t)n * sizeof(float)); }
void hn_f32_from_f32_ref(const float *src, void *dst, int64_t n) { memcpy(dst, src, (size_t)n * sizeof(float)); }

void hn_f16_to_f32_ref(const void *src, float *dst, int64_t n) {
    const hn_f16 *s = src;
    for (int64_t i = 0; i < n; i++) dst[i] = hn_f16_to_f32(s[i]);
}

void hn_f16_from_f32_ref(const float *src, void *dst, int64_t n) {
    hn_f16 *d = dst;
    for (int64_t i = 0; i < n; i++) d[i] = hn_f32_to_f16(src[i]);
}

void hn_bf16_to_f32_ref(const void *src, float *dst, int64_t n) {
    const hn_bf16 *s = src;
    for (int64_t i = 0; i < n; i++) dst[i] = hn_bf16_to_f32(s[i]);
}

void hn_bf16_from_f32_ref(const float *src, void *dst, int64_t n) {
    hn_bf16 *d = dst;
    for (int64_t i = 0; i < n; i++) d[i] = hn_f32_to_bf16(src[i]);
}

// Token ids and other integers: a plain conversion (the float is taken to hold an integer value).
void hn_i32_from_f32_ref(const float *src, void *dst, int64_t n) {
    int32_t *d = dst;
    for (int64_t i = 0; i < n; i++) d[i] = (int32_t)lrintf(src[i]);
}

// ---- Q4_0: x = d * (q - 8); element j in the low nibble of qs[j], element j+16 in the high nibble ----

void hn_q4_0_to_f32_ref(const void *src, float *dst, int64_t n) {
    const hn_block_q4_0 *b = src;
    for (int64_t i = 0; i < n / HN_QK; i++, dst += HN_QK) {
        float d = hn_f16_to_f32(b[i].d);
        for (int j = 0; j < HN_QK / 2; j++) {
            dst[j] = (float)((b[i].qs[j] & 0x0f) - 8) * d;
            dst[j + HN_QK / 2] = (float)((b[i].qs[j] >> 4) - 8) * d;
        }
    }
}

void hn_q4_0_from_f32_ref(const float *src, void *dst, int64_t n) {
    hn_block_q4_0 *b = dst;
    for (int64_t i = 0; i < n / HN_QK; i++, src += HN_QK) {
        // The signed value of largest magnitude maps to -8, so the full range [-8, 7] is used on its side.
        float amax = 0.0f, max = 0.0f;
        for (int j = 0; j < HN_QK; j++) {
            if (amax < fabsf(src[j])) {
                amax = fabsf(src[j]);
                max = src[j];
            }
        }
        float d = max / -8, id = d ? 1.0f / d : 0.0f;
        b[i].d = hn_f32_to_f16(d);
        for (int j = 0; j < HN_QK / 2; j++) {
            uint8_t q0 = (uint8_t)MIN(15, (int8_t)(src[j] * id + 8.5f));
            uint8_t q1 = (uint8_t)MIN(15, (int8_t)(src[j + HN_QK / 2] * id + 8.5f));
            b[i].qs[j] = (uint8_t)(q0 | q1 << 4);
        }
    }
}

// ---- Q4_1: x = d * q + m ----

void hn_q4_1_to_f32_ref(const void *src, float *dst, int64_t n) {
    const hn_block_q4_1 *b = src;
    for (int64_t i = 0; i < n / HN_QK; i++, dst += HN_QK) {
        float d = hn_f16_to_f32(b[i].d), m = hn_f16_to_f32(b[i].m);
        for (int j = 0; j < HN_QK / 2; j++) {
            dst[j] = (float)(b[i].qs[j] & 0x0f) * d + m;
            dst[j + HN_QK / 2] = (float)(b[i].qs[j] >> 4) * d + m;
        }
    }
}

void hn_q4_1_from_f32_ref(const float *src, void *dst, int64_t n) {
    hn_block_q4_1 *b = dst;
    for (int64_t i = 0; i < n / HN_QK; i++, src += HN_QK) {
        float min = FLT_MAX, max = -FLT_MAX;
        for (int j = 0; j < HN_QK; j++) {
            if (src[j] < min) min = src[j];
            if (src[j] > max) max = src[j];
        }
        float d = (max - min) / 15, id = d ? 1.0f / d : 0.0f;
        b[i].d = hn_f32_to_f16(d);
        b[i].m = hn_f32_to_f16(min);
        for (int j = 0; j < HN_QK / 2; j++) {
            uint8_t q0 = (uint8_t)MIN(15, (int8_t)((src[j] - min) * id + 0.5f));
            uint8_t q1 = (uint8_t)MIN(15, (int8_t)((src[j + HN_QK / 2] - min) * id + 0.5f));
            b[i].qs[j] = (uint8_t)(q0 | q1 << 4);
        }
    }
}

// ---- Q8_0: x = d * q ----

void hn_q8_0_to_f32_ref(const void *src, float *dst, int64_t n) {
    const hn_block_q8_0 *b = src;
    for (int64_t i = 0; i < n / HN_QK; i++, dst += HN_QK) {
        float d = hn_f16_to_f32(b[i].d);
        for (int j = 0; j < HN_QK; j++) dst[j] = (float)b[i].qs[j] * d;
    }
}

void hn_q8_0_from_f32_ref(const float *src, void *dst, int64_t n) {
    hn_block_q8_0 *b = dst;
    for (int64_t i = 0; i < n / HN_QK; i++, src += HN_QK) {
        float amax = 0.0f;
        for (int j = 0; j < HN_QK; j++) amax = fmaxf(amax, fabsf(src[j]));
        float d = amax / 127, id = d ? 1.0f / d : 0.0f;
        b[i].d = hn_f32_to_f16(d);
        for (int j = 0; j < HN_QK; j++) b[i].qs[j] = (int8_t)roundf(src[j] * id);
    }
}

// ---- Q8_1: x = d * q, and s = d * sum(q) so that Q4_1's min term costs one multiply per block ----

void hn_q8_1_to_f32_ref(const void *src, float *dst, int64_t n) {
    const hn_block_q8_1 *b = src;
    for (int64_t i = 0; i < n / HN_QK; i++, dst += HN_QK) {
        float d = hn_f16_to_f32(b[i].d);
        for (int j = 0; j < HN_QK; j++) dst[j] = (float)b[i].qs[j] * d;
    }
}

void hn_q8_1_from_f32_ref(const float *src, void *dst, int64_t n) {
    hn_block_q8_1 *b = dst;
    for (int64_t i = 0; i < n / HN_QK; i++, src += HN_QK) {
        float amax = 0.0f;
        for (int j = 0; j < HN_QK; j++) amax = fmaxf(amax, fabsf(src[j]));
        float d = amax / 127, id = d ? 1.0f / d : 0.0f;
        b[i].d = hn_f32_to_f16(d);
        int sum = 0;
        for (int j = 0; j < HN_QK / 2; j++) {
            b[i].qs[j] = (int8_t)roundf(src[j] * id);
            b[i].qs[j + HN_QK / 2] = (int8_t)roundf(src[j + HN_QK / 2] * id);
            sum += b[i].qs[j] + b[i].qs[j + HN_QK / 2];
        }
        b[i].s = hn_f32_to_f16((float)sum * d);
    }
}
