// tensor/dtype.c — the type-traits table, dtype names, row sizes, fp16/bf16 conversion and the run-time choice
// of SIMD level.
#include "tensor/kernels.h"
#include "tensor/nf4.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

// Filled once (hn_tensor_init): vec_dot and to_f32 are replaced by the active SIMD level's kernels.
static hn_type_traits g_traits[HN_TYPE_COUNT] = {
    [HN_F32] = {"f32", 1, 4, false, hn_f32_to_f32_ref, hn_f32_from_f32_ref, hn_dot_f32_f32_ref, hn_dot_f32_f32_ref,
                HN_F32},
    [HN_F16] = {"f16", 1, 2, false, hn_f16_to_f32_ref, hn_f16_from_f32_ref, hn_dot_f16_f32_ref, hn_dot_f16_f32_ref,
                HN_F32},
    [HN_BF16] = {"bf16", 1, 2, false, hn_bf16_to_f32_ref, hn_bf16_from_f32_ref, hn_dot_bf16_f32_ref,
                 hn_dot_bf16_f32_ref, HN_F32},
    [HN_Q4_0] = {"q4_0", HN_QK, sizeof(hn_block_q4_0), true, hn_q4_0_to_f32_ref, hn_q4_0_from_f32_ref,
                 hn_dot_q4_0_q8_0_ref, hn_dot_q4_0_q8_0_ref, HN_Q8_0},
    [HN_Q4_1] = {"q4_1", HN_QK, sizeof(hn_block_q4_1), true, hn_q4_1_to_f32_ref, hn_q4_1_from_f32_ref,
                 hn_dot_q4_1_q8_1_ref, hn_dot_q4_1_q8_1_ref, HN_Q8_1},
    [HN_Q8_0] = {"q8_0", HN_QK, sizeof(hn_block_q8_0), true, hn_q8_0_to_f32_ref, hn_q8_0_from_f32_ref,
                 hn_dot_q8_0_q8_0_ref, hn_dot_q8_0_q8_0_ref, HN_Q8_0},
    // Q8_1 exists only as the activation side of Q4_1's dot product: no dot of its own.
    [HN_Q8_1] = {"q8_1", HN_QK, sizeof(hn_block_q8_1), true, hn_q8_1_to_f32_ref, hn_q8_1_from_f32_ref, NULL, NULL,
                 HN_Q8_1},
    // Q5_0 / Q5_1 (quant5.c) and the K-quants (kquant.c): dot products take the fp32 activation row as it is.
    [HN_Q5_0] = {"q5_0", HN_QK, sizeof(hn_block_q5_0), true, hn_q5_0_to_f32_ref, hn_q5_0_from_f32_ref,
                 hn_dot_q5_0_f32_ref, hn_dot_q5_0_f32_ref, HN_F32},
    [HN_Q5_1] = {"q5_1", HN_QK, sizeof(hn_block_q5_1), true, hn_q5_1_to_f32_ref, hn_q5_1_from_f32_ref,
                 hn_dot_q5_1_f32_ref, hn_dot_q5_1_f32_ref, HN_F32},
    [HN_Q2_K] = {"q2_k", HN_QK_K, sizeof(hn_block_q2_k), true, hn_q2_k_to_f32_ref, hn_q2_k_from_f32_ref,
                 hn_dot_q2_k_f32_ref, hn_dot_q2_k_f32_ref, HN_F32},
    [HN_Q3_K] = {"q3_k", HN_QK_K, sizeof(hn_block_q3_k), true, hn_q3_k_to_f32_ref, hn_q3_k_from_f32_ref,
                 hn_dot_q3_k_f32_ref, hn_dot_q3_k_f32_ref, HN_F32},
    [HN_Q4_K] = {"q4_k", HN_QK_K, sizeof(hn_block_q4_k), true, hn_q4_k_to_f32_ref, hn_q4_k_from_f32_ref,
                 hn_dot_q4_k_f32_ref, hn_dot_q4_k_f32_ref, HN_F32},
    [HN_Q5_K] = {"q5_k", HN_QK_K, sizeof(hn_block_q5_k), true, hn_q5_k_to_f32_ref, hn_q5_k_from_f32_ref,
                 hn_dot_q5_k_f32_ref, hn_dot_q5_k_f32_ref, HN_F32},
    [HN_Q6_K] = {"q6_k", HN_QK_K, sizeof(hn_block_q6_k), true, hn_q6_k_to_f32_ref, hn_q6_k_from_f32_ref,
                 hn_dot_q6_k_f32_ref, hn_dot_q6_k_f32_ref, HN_F32},
    // Integer tensors (e.g. token ids) are stored, never multiplied: no dequantize, no dot.
    [HN_I32] = {"i32", 1, 4, false, NULL, hn_i32_from_f32_ref, NULL, NULL, HN_I32},
    // NF4 (nf4.c) is made whole-tensor by hn_nf4_quantize, never row by row: no from_f32. Its block here is 32
    // codes (16 bytes), so that matmul_dx's 32-column panels start on whole bytes; the 64-element absmax blocks
    // are found by to_f32 itself.
    [HN_NF4] = {"nf4", 32, 16, true, hn_nf4_to_f32, NULL, hn_nf4_dot_f32, hn_nf4_dot_f32, HN_F32},
};
_Static_assert(sizeof g_traits / sizeof g_traits[0] == HN_TYPE_COUNT, "traits table sized by HN_TYPE_COUNT");
_Static_assert(HN_BF16 < HN_TYPE_COUNT && HN_I32 < HN_TYPE_COUNT, "every supported dtype has a row");

static const char *g_level_names[HN_SIMD_COUNT] = {"scalar", "avx2", "avx512"};
_Static_assert(sizeof g_level_names / sizeof g_level_names[0] == HN_SIMD_COUNT, "a name for every SIMD level");

static hn_simd g_cpu, g_active;
static hn_quantize_fn g_quant_act[HN_TYPE_COUNT];
static hn_gemm_panel_fn g_gemm_panel = hn_gemm_panel_ref;
static pthread_once_t g_once = PTHREAD_ONCE_INIT;

static hn_simd detect_cpu(void) {
    __builtin_cpu_init();
    // __builtin_cpu_supports also checks that the OS saves the wide registers (XCR0).
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") &&
        __builtin_cpu_supports("avx512vnni") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c"))
        return HN_SIMD_AVX512;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c"))
        return HN_SIMD_AVX2;
    return HN_SIMD_SCALAR;
}

static void tensor_init(void) {
    g_cpu = detect_cpu();
    g_active = g_cpu;
    const char *cap = getenv("HONE_SIMD");
    if (cap && *cap) {
        hn_simd want = HN_SIMD_COUNT;
        for (int i = 0; i < HN_SIMD_COUNT; i++)
            if (!strcasecmp(cap, g_level_names[i])) want = (hn_simd)i;
        if (want == HN_SIMD_COUNT) hn_warn("HONE_SIMD=%s: expected scalar, avx2 or avx512; ignored", cap);
        else if (want < g_active) g_active = want;
    }
    for (int t = 0; t < HN_TYPE_COUNT; t++) g_quant_act[t] = g_traits[t].from_f32;
    // Levels build on each other: apply avx2's kernels, then avx512's over them.
    for (int level = HN_SIMD_AVX2; level <= (int)g_active; level++) {
        const hn_kernel_set *ks = hn_kernels_of((hn_simd)level);
        for (int t = 0; t < HN_TYPE_COUNT; t++) {
            if (ks->dot[t]) g_traits[t].vec_dot = ks->dot[t];
            if (ks->to_f32[t]) g_traits[t].to_f32 = ks->to_f32[t];
            if (ks->quantize_act[t]) g_quant_act[t] = ks->quantize_act[t];
        }
        if (ks->gemm_panel) g_gemm_panel = ks->gemm_panel;
    }
}

static inline void ensure_init(void) { pthread_once(&g_once, tensor_init); }

const hn_kernel_set *hn_kernels_of(hn_simd level) {
    switch (level) {
    case HN_SIMD_AVX2: return &hn_kernels_avx2;
    case HN_SIMD_AVX512: return &hn_kernels_avx512;
    default: return NULL;
    }
}

hn_simd hn_simd_cpu(void) {
    ensure_init();
    return g_cpu;
}

hn_simd hn_simd_active(void) {
    ensure_init();
    return g_active;
}

const char *hn_simd_level(void) { return g_level_names[hn_simd_active()]; }

hn_quantize_fn hn_quantize_act_fn(hn_dtype t) {
    ensure_init();
    return (unsigned)t < HN_TYPE_COUNT ? g_quant_act[t] : NULL;
}

hn_gemm_panel_fn hn_gemm_panel_fn_active(void) {
    ensure_init();
    return g_gemm_panel;
}

const hn_type_traits *hn_type_traits_of(hn_dtype t) {
    if ((unsigned)t >= HN_TYPE_COUNT || !g_traits[t].name) return NULL;
    ensure_init();
    return &g_traits[t];
}

const char *hn_dtype_name(hn_dtype t) {
    return (unsigned)t < HN_TYPE_COUNT && g_traits[t].name ? g_traits[t].name : "unknown";
}

bool hn_dtype_parse(const char *name, hn_dtype *out) {
    if (!name) return false;
    for (int t = 0; t < HN_TYPE_COUNT; t++) {
        if (g_traits[t].name && !strcasecmp(name, g_traits[t].name)) {
            *out = (hn_dtype)t;
            return true;
        }
    }
    return false;
}

bool hn_row_bytes(hn_dtype t, int64_t n, size_t *out) {
    if ((unsigned)t >= HN_TYPE_COUNT || !g_traits[t].name || n < 0) return false;
    const hn_type_traits *tt = &g_traits[t];
    if (n % tt->block) return false;
    return hn_mul_ok((size_t)(n / tt->block), tt->block_bytes, out);
}

// ---- fp16 / bf16 ----

static inline uint32_t f32_bits(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

static inline float bits_f32(uint32_t u) {
    float f;
    memcpy(&f, &u, 4);
    return f;
}

float hn_f16_to_f32(hn_f16 h) {
    uint32_t sign = (uint32_t)(h >> 15) << 31, e = (h >> 10) & 0x1f, m = h & 0x3ff;
    if (e == 0x1f) return bits_f32(sign | 0x7f800000u | (m << 13)); // inf, nan (payload kept)
    if (e == 0) {
        if (m == 0) return bits_f32(sign);
        // Subnormal half: m * 2^-24. Shift the leading one up to bit 10, lowering the exponent as we go.
        int ex = 1;
        while (!(m & 0x400)) {
            m <<= 1;
            ex--;
        }
        return bits_f32(sign | (uint32_t)(ex + 112) << 23 | (m & 0x3ff) << 13);
    }
    return bits_f32(sign | (e + 112) << 23 | m << 13);
}

hn_f16 hn_f32_to_f16(float f) {
    uint32_t u = f32_bits(f), sign = (u >> 16) & 0x8000, a = u & 0x7fffffffu;
    if (a > 0x7f800000u) return (hn_f16)(sign | 0x7e00 | ((a >> 13) & 0x3ff)); // nan stays a (quiet) nan
    if (a >= 0x477ff000u) return (hn_f16)(sign | 0x7c00); // >= 65520 rounds to inf (65504 is odd, ties go up)
    if (a < 0x38800000u) {                                  // below 2^-14: a half subnormal (or zero)
        if (a <= 0x33000000u) return (hn_f16)sign;         // <= 2^-25 rounds to zero (2^-25 is a tie to even 0)
        uint32_t mant = (a & 0x7fffff) | 0x800000, shift = 126 - (a >> 23);
        uint32_t r = mant >> shift, rem = mant & ((1u << shift) - 1), half = 1u << (shift - 1);
        if (rem > half || (rem == half && (r & 1))) r++; // r may reach 0x400: the smallest normal, encoded right
        return (hn_f16)(sign | r);
    }
    uint32_t h = (a >> 13) - (112u << 10), rem = a & 0x1fff;
    if (rem > 0x1000 || (rem == 0x1000 && (h & 1))) h++; // a carry into the exponent is the right answer
    return (hn_f16)(sign | h);
}

float hn_bf16_to_f32(hn_bf16 h) { return bits_f32((uint32_t)h << 16); }

hn_bf16 hn_f32_to_bf16(float f) {
    uint32_t u = f32_bits(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (hn_bf16)((u >> 16) | 64); // quiet nan, as ggml does
    return (hn_bf16)((u + 0x7fff + ((u >> 16) & 1)) >> 16);
}
