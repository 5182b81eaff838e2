// tests/test_kquant.c — the K-quants (Q2_K ... Q6_K): dequantization against gguf-py's on random and real blocks
// (tests/data/kquant_golden.bin, tools/reference/kquant_ref.py), hone's quantizers within each format's error
// bound, ordered by bits and byte-identical to ggml's own (its quantize_row_*_ref output is in the golden file), SIMD kernels against the scalar ones, and every matmul / matmul_dx path through a
// K-quant weight against the fp32 product on its dequantized values.
//
// Tolerances.
//   Dequantize: bit for bit (every scale product is exact in fp32; only the min's subtraction rounds, once, in
//     hone, gguf-py and ggml alike).
//   Quantize, per sub-block with range [lo, hi] (lo = min(x, 0); Q3_K/Q6_K: amax), nmax quant steps, super-scales
//     d (and dmin): the search may clip up to one step of the sub-block's own fit, and the stored sub-block scale
//     is off by at most d/2 (times q <= nmax) and the stored min by dmin/2; so |x - deq| <= range/nmax + nmax d/2
//     + dmin/2, plus f16 rounding of the super-scales (relative 2^-11 of the block's largest value; absolute 2^-25
//     times the largest scale and quant where the super-scale is an f16 subnormal).
//   SIMD vs scalar dot / decode kernel: the same dequantized values, two fp32 sums of the same K products in
//     different orders: 2 (K + 2) u sum |w x|, u = 2^-24.
//   matmul EXACT / panels: bit-identical to the F32 weight holding the dequantized values (same panel sums).
//   Other paths vs double: (K + 2) u sum |w x| (one in-order or blocked fp32 sum), OpenBLAS the same.
#include "tensor/grad.h"
#include "tensor/kernels.h"
#include "tensor/ops.h"
#include "tests/test.h"

#include <math.h>
#include <string.h>

static const hn_dtype KTYPES[] = {HN_Q2_K, HN_Q3_K, HN_Q4_K, HN_Q5_K, HN_Q6_K};
#define NK 5

static uint32_t bits(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

static void (*ref_to_f32(hn_dtype t))(const void *, float *, int64_t) {
    switch (t) {
    case HN_Q2_K: return hn_q2_k_to_f32_ref;
    case HN_Q3_K: return hn_q3_k_to_f32_ref;
    case HN_Q4_K: return hn_q4_k_to_f32_ref;
    case HN_Q5_K: return hn_q5_k_to_f32_ref;
    case HN_Q5_0: return hn_q5_0_to_f32_ref;
    case HN_Q5_1: return hn_q5_1_to_f32_ref;
    default: return hn_q6_k_to_f32_ref;
    }
}

static void test_table(void) {
    const size_t bytes[NK] = {84, 110, 144, 176, 210};
    const char *names[NK] = {"q2_k", "q3_k", "q4_k", "q5_k", "q6_k"};
    for (int i = 0; i < NK; i++) {
        const hn_type_traits *tt = hn_type_traits_of(KTYPES[i]);
        CHECK(tt && tt->block == 256 && tt->block_bytes == bytes[i] && tt->quantized, "traits of %s", names[i]);
        if (!tt) continue;
        hn_dtype back;
        CHECK(!strcmp(tt->name, names[i]) && hn_dtype_parse(names[i], &back) && back == KTYPES[i], "%s", names[i]);
        CHECK(tt->to_f32 && tt->from_f32 && tt->vec_dot && tt->vec_dot_ref && tt->vec_dot_type == HN_F32, "%s kernels",
              names[i]);
        CHECK(hn_mv_fn_active(KTYPES[i]) != NULL, "%s has a decode kernel", names[i]);
    }
    const hn_type_traits *t50 = hn_type_traits_of(HN_Q5_0), *t51 = hn_type_traits_of(HN_Q5_1);
    CHECK(t50 && t50->block == 32 && t50->block_bytes == 22 && !strcmp(t50->name, "q5_0"), "q5_0 traits");
    CHECK(t51 && t51->block == 32 && t51->block_bytes == 24 && !strcmp(t51->name, "q5_1"), "q5_1 traits");
    size_t rb;
    CHECK(hn_row_bytes(HN_Q4_K, 1536, &rb) && rb == 6 * 144, "q4_k row of 1536");
    CHECK(hn_row_bytes(HN_Q5_0, 576, &rb) && rb == 18 * 22, "q5_0 row of 576");
    CHECK(!hn_row_bytes(HN_Q4_K, 576, &rb), "576 is not a whole number of 256-blocks");
    CHECK(hn_dtype_parse("Q6_K", &(hn_dtype){0}), "parse is case-insensitive");
}

// ---- golden data from gguf-py ----

// Per sub-block bound of the quantizers (see the header).
static int count_outside(hn_dtype t, const float *x, const void *q, const float *y, int64_t n) {
    int bad = 0;
    int sub = t == HN_Q4_K || t == HN_Q5_K ? 32 : 16;
    int nmax = t == HN_Q2_K ? 3 : t == HN_Q3_K ? 4 : t == HN_Q4_K ? 15 : t == HN_Q5_K ? 31 : 32;
    bool sym = t == HN_Q3_K || t == HN_Q6_K;
    // Largest stored sub-block scale: an f16 super-scale's absolute rounding (2^-25 among the subnormals) times it
    // and the largest quant (and the min's) is the error that no choice of quants can remove.
    float levels = t == HN_Q2_K ? 15 : t == HN_Q3_K ? 32 : t == HN_Q6_K ? 128 : 63;
    for (int64_t b = 0; b < n / 256; b++) {
        float d = 0, dmin = 0;
        const uint8_t *blk = (const uint8_t *)q + (size_t)b * hn_type_traits_of(t)->block_bytes;
        hn_f16 h[2];
        switch (t) {
        case HN_Q2_K: memcpy(h, blk + 80, 4); d = hn_f16_to_f32(h[0]); dmin = hn_f16_to_f32(h[1]); break;
        case HN_Q3_K: memcpy(h, blk + 108, 2); d = hn_f16_to_f32(h[0]); break;
        case HN_Q6_K: memcpy(h, blk + 208, 2); d = hn_f16_to_f32(h[0]); break;
        default: memcpy(h, blk, 4); d = hn_f16_to_f32(h[0]); dmin = hn_f16_to_f32(h[1]); break;
        }
        for (int s = 0; s < 256 / sub; s++) {
            const float *xs = x + b * 256 + s * sub;
            float lo = 0, hi = 0, amax = 0, bamax = 0;
            for (int j = 0; j < sub; j++) {
                lo = fminf(lo, xs[j]);
                hi = fmaxf(hi, xs[j]);
                amax = fmaxf(amax, fabsf(xs[j]));
            }
            for (int j = 0; j < 256; j++) bamax = fmaxf(bamax, fabsf(x[b * 256 + j]));
            float range = sym ? amax : hi - lo;
            float bound = range / nmax + nmax * fabsf(d) / 2 + fabsf(dmin) / 2 + bamax * 0x1p-10f +
                          0x1p-25f * levels * (nmax + 1);
            for (int j = 0; j < sub; j++) bad += !(fabsf(y[b * 256 + s * sub + j] - xs[j]) <= bound);
        }
    }
    return bad;
}

static void test_golden(void) {
    hn_map m;
    if (hn_map_open(&m, "tests/data/kquant_golden.bin")) {
        CHECK(0, "cannot open golden data: %s", hn_errmsg());
        return;
    }
    const uint8_t *p = m.data, *end = m.data + m.size;
    uint32_t hdr[3];
    CHECK(m.size >= 12 && !memcmp(p, "HNQG", 4), "golden magic");
    memcpy(hdr, p, 12);
    p += 12;
    int records = 0, deq_types = 0, quant_types = 0, ggml_types = 0;
    for (uint32_t i = 0; i < hdr[2] && p + 16 <= end; i++) {
        uint32_t r[4]; // kind, type, n, nbytes
        memcpy(r, p, 16);
        p += 16;
        if (p + r[3] + (size_t)r[2] * 4 > end) break;
        const uint8_t *blocks = p;
        float *vals = malloc((size_t)r[2] * 4), *out = malloc((size_t)r[2] * 4);
        memcpy(vals, p + r[3], (size_t)r[2] * 4);
        p += r[3] + (size_t)r[2] * 4;
        if (r[0] == 0) {
            const hn_type_traits *tt = hn_type_traits_of((hn_dtype)r[1]);
            size_t rb;
            CHECK(tt && hn_row_bytes((hn_dtype)r[1], r[2], &rb) && rb == r[3], "record %u: type %u", i, r[1]);
            if (tt) {
                int bad_ref = 0, bad_fast = 0;
                ref_to_f32((hn_dtype)r[1])(blocks, out, r[2]);
                for (uint32_t j = 0; j < r[2]; j++) bad_ref += bits(out[j]) != bits(vals[j]);
                tt->to_f32(blocks, out, r[2]);
                for (uint32_t j = 0; j < r[2]; j++) bad_fast += bits(out[j]) != bits(vals[j]);
                CHECK(bad_ref == 0 && bad_fast == 0, "dequantize %s (record %u): %d (ref) / %d (%s) of %u differ",
                      tt->name, i, bad_ref, bad_fast, hn_simd_level(), r[2]);
                deq_types++;
            }
        } else if (r[0] == 1) {
            // Q5_0 / Q5_1 quantize exactly as ggml (and gguf-py).
            const hn_type_traits *tt = hn_type_traits_of((hn_dtype)r[1]);
            uint8_t *q = malloc(r[3]);
            size_t rb;
            CHECK(tt && hn_row_bytes((hn_dtype)r[1], r[2], &rb) && rb == r[3], "record %u: type %u", i, r[1]);
            if (tt) {
                tt->from_f32(vals, q, r[2]);
                int bad = 0;
                for (uint32_t j = 0; j < r[3]; j++) bad += q[j] != blocks[j];
                CHECK(bad == 0, "quantize %s: %d of %u bytes differ from gguf-py", tt->name, bad, r[3]);
                quant_types++;
            }
            free(q);
        } else if (r[0] == 3) {
            // ggml's K-quantizer on the same rows: hone's quantizers take the same steps in the same float
            // operations, so the blocks are byte-identical (and the error the same).
            const hn_type_traits *tt = hn_type_traits_of((hn_dtype)r[1]);
            uint8_t *q = malloc(r[3]);
            float *mine = malloc((size_t)r[2] * 4);
            if (tt) {
                tt->from_f32(vals, q, r[2]);
                tt->to_f32(q, mine, r[2]);
                tt->to_f32(blocks, out, r[2]);
                double em = 0, eg = 0;
                for (uint32_t j = 0; j < r[2]; j++) {
                    em += (double)(mine[j] - vals[j]) * (mine[j] - vals[j]);
                    eg += (double)(out[j] - vals[j]) * (out[j] - vals[j]);
                }
                int same = 0, nb = (int)(r[2] / 256);
                for (int b = 0; b < nb; b++)
                    same += !memcmp(q + (size_t)b * tt->block_bytes, blocks + (size_t)b * tt->block_bytes,
                                    tt->block_bytes);
                printf("%s vs ggml: rms error %.5g vs %.5g, %d of %d blocks byte-identical\n", tt->name, sqrt(em / r[2]),
                       sqrt(eg / r[2]), same, nb);
                CHECK(same == nb, "%s: %d of %d blocks byte-identical to ggml's (rms error %.5g, ggml's %.5g)",
                      tt->name, same, nb, sqrt(em / r[2]), sqrt(eg / r[2]));
                ggml_types++;
            }
            free(q);
            free(mine);
        } else if (r[0] == 2) {
            // Real rows through hone's quantizers: within the bound, and more bits give less error.
            double prev = INFINITY;
            void *q = malloc((size_t)r[2] * 4);
            for (int k = 0; k < NK; k++) {
                const hn_type_traits *tt = hn_type_traits_of(KTYPES[k]);
                tt->from_f32(vals, q, r[2]);
                tt->to_f32(q, out, r[2]);
                int bad = count_outside(KTYPES[k], vals, q, out, r[2]);
                double se = 0, s2 = 0;
                for (uint32_t j = 0; j < r[2]; j++) {
                    se += (double)(out[j] - vals[j]) * (out[j] - vals[j]);
                    s2 += (double)vals[j] * vals[j];
                }
                double rel = sqrt(se / s2);
                CHECK(bad == 0, "real rows through %s: %d values outside the bound", tt->name, bad);
                CHECK(rel < prev, "real rows: %s relative rms error %.4f not below the type with fewer bits (%.4f)",
                      tt->name, rel, prev);
                printf("real rows: %s relative rms error %.4f\n", tt->name, rel);
                prev = rel;
            }
            free(q);
        }
        records++;
        free(vals);
        free(out);
    }
    CHECK(records == (int)hdr[2] && records == 18 && deq_types == 10 && quant_types == 2 && ggml_types == 5,
          "read %d golden records", records);
    hn_map_close(&m);
}

// ---- quantize -> dequantize on synthetic data ----

static void fill(hn_rng *r, float *x, int64_t n, float scale) {
    for (int64_t i = 0; i < n; i++) x[i] = (hn_rng_f32(r) * 2 - 1) * scale;
}

static float gauss(hn_rng *r) {
    float u = hn_rng_f32(r) + 1e-7f, v = hn_rng_f32(r);
    return sqrtf(-2 * logf(u)) * cosf(6.2831853f * v);
}

static void test_roundtrip(void) {
    enum { N = 256 * 12 };
    static float x[N], y[N], y41[N];
    static uint8_t q[N * 4];
    hn_rng r;
    hn_rng_seed(&r, 5);
    for (int i = 0; i < N; i++) x[i] = gauss(&r) * 0.02f;
    for (int i = 0; i < 256; i++) x[256 + i] = 0.0f;                    // zero block
    for (int i = 0; i < 256; i++) x[512 + i] = 0.37f;                   // constant positive block
    for (int i = 0; i < 256; i++) x[768 + i] = -1.5f;                   // constant negative block
    x[1024 + 77] = 30.0f;                                                // an outlier in a block of small values
    for (int i = 0; i < 256; i++) x[1280 + i] *= 1e-5f;                 // f16-subnormal super-scales
    for (int i = 0; i < 32; i++) x[1536 + i] = 0.0f;                    // a zero sub-block among others
    fill(&r, x + 1792, 256, 3.0f);                                       // uniform
    for (int i = 0; i < 256; i++) x[2048 + i] = fabsf(x[2048 + i]) + 1; // all positive: min 0 stays representable
    // Q4_1 on the same Gaussian values as a yardstick: Q4_K (4.5 bits) should do at least as well.
    hn_type_traits_of(HN_Q4_1)->from_f32(x, q, N);
    hn_type_traits_of(HN_Q4_1)->to_f32(q, y41, N);
    double e41 = 0, prev = INFINITY;
    for (int i = 2304; i < N; i++) e41 += (double)(y41[i] - x[i]) * (y41[i] - x[i]);
    for (int k = 0; k < NK; k++) {
        const hn_type_traits *tt = hn_type_traits_of(KTYPES[k]);
        memset(q, 0xa5, sizeof q);
        tt->from_f32(x, q, N);
        tt->to_f32(q, y, N);
        int bad = count_outside(KTYPES[k], x, q, y, N), nonfinite = 0;
        for (int i = 0; i < N; i++) nonfinite += !isfinite(y[i]);
        CHECK(bad == 0 && nonfinite == 0, "%s: %d values outside the bound, %d not finite", tt->name, bad, nonfinite);
        bool zeros = true;
        for (int i = 256; i < 512; i++) zeros &= y[i] == 0.0f;
        CHECK(zeros, "%s: a zero block dequantizes to zeros", tt->name);
        double e = 0;
        for (int i = 2304; i < N; i++) e += (double)(y[i] - x[i]) * (y[i] - x[i]);
        CHECK(e < prev, "%s: Gaussian error %.3g not below the type with fewer bits (%.3g)", tt->name, e, prev);
        if (KTYPES[k] == HN_Q4_K) CHECK(e < e41, "q4_k error %.3g, q4_1 error %.3g", e, e41);
        prev = e;
    }
}

// ---- SIMD vs scalar ----

static double abs_sum(const float *w, const float *x, int64_t n) {
    double s = 0;
    for (int64_t i = 0; i < n; i++) s += fabs((double)w[i] * x[i]);
    return s;
}

static void test_simd(void) {
    enum { K = 1536, NR = 9, T = 7 }; // the decode kernels take tokens 2 (AVX2) or 4 (AVX-512) at a time
    static float w[NR * K], wd[NR * K], x[T * K], ya[T * NR], yb[T * NR];
    static uint8_t wq[NR * K];
    hn_rng r;
    hn_rng_seed(&r, 17);
    fill(&r, w, NR * K, 1.0f);
    fill(&r, x, T * K, 2.0f);
    int levels = 0;
    for (int lv = HN_SIMD_AVX2; lv <= (int)hn_simd_cpu(); lv++) {
        levels++;
        const hn_kernel_set *ks = hn_kernels_of((hn_simd)lv);
        const hn_dtype types[] = {HN_Q2_K, HN_Q3_K, HN_Q4_K, HN_Q5_K, HN_Q6_K, HN_Q5_0, HN_Q5_1};
        for (size_t k = 0; k < sizeof types / sizeof types[0]; k++) {
            hn_dtype t = types[k];
            const hn_type_traits *tt = hn_type_traits_of(t);
            size_t rb;
            hn_row_bytes(t, K, &rb);
            tt->from_f32(w, wq, NR * K);
            ref_to_f32(t)(wq, wd, NR * K);
            if (ks->to_f32[t]) {
                float *o = malloc(sizeof(float) * NR * K);
                ks->to_f32[t](wq, o, NR * K);
                CHECK(!memcmp(o, wd, sizeof(float) * NR * K), "level %d %s dequantize differs", lv, tt->name);
                free(o);
            }
            const int64_t ns[] = {96, 256, 1536}; // three Q5 blocks (an odd count), one K-quant block, six
            for (int ni = 0; ni < 3; ni++) {
                int64_t n = ns[ni];
                if (n % tt->block) continue;
                hn_vec_dot_fn dot = hn_kernels_of((hn_simd)lv)->dot[t];
                if (!dot && lv == HN_SIMD_AVX512) dot = hn_kernels_of(HN_SIMD_AVX2)->dot[t];
                if (!dot) continue;
                float a = tt->vec_dot_ref(n, wq, x), b = dot(n, wq, x);
                double tol = 2 * (n + 2) * 0x1p-24 * abs_sum(wd, x, n);
                CHECK(fabs(a - b) <= tol, "level %d %s dot n=%lld: %.9g vs %.9g", lv, tt->name, (long long)n, b, a);
            }
            hn_mv_fn mv = hn_mv_fn_of((hn_simd)lv, t), mref = hn_mv_fn_of(HN_SIMD_SCALAR, t);
            mref(K, wq, rb, NR, x, T, ya, NR);
            mv(K, wq, rb, NR, x, T, yb, NR);
            int bad = 0;
            for (int tt2 = 0; tt2 < T; tt2++)
                for (int n = 0; n < NR; n++) {
                    double tol = 2 * (K + 2) * 0x1p-24 * abs_sum(wd + n * K, x + tt2 * K, K);
                    bad += !(fabs(ya[tt2 * NR + n] - yb[tt2 * NR + n]) <= tol);
                }
            CHECK(bad == 0, "level %d %s decode kernel: %d outputs differ from scalar", lv, tt->name, bad);
        }
    }
    printf("compared %d SIMD level(s) against scalar (cpu: %s)\n", levels, hn_simd_level());
}

// ---- matmul and matmul_dx through a K-quant (or Q5_0 / Q5_1) weight ----

static void test_matmul(void) {
    enum { K = 512, N = 40, TMAX = 20 };
    static float src[N * K], deq[N * K], x[TMAX * K], y[TMAX * N], yf[TMAX * N], dy[TMAX * N], dx[TMAX * K],
        dxf[TMAX * K];
    hn_rng r;
    hn_rng_seed(&r, 23);
    fill(&r, src, N * K, 0.5f);
    fill(&r, x, TMAX * K, 1.0f);
    fill(&r, dy, TMAX * N, 1.0f);
    const hn_dtype types[] = {HN_Q2_K, HN_Q3_K, HN_Q4_K, HN_Q5_K, HN_Q6_K, HN_Q5_0, HN_Q5_1};
    for (size_t k = 0; k < sizeof types / sizeof types[0]; k++) {
        hn_dtype type = types[k];
        size_t rb;
        hn_row_bytes(type, K, &rb);
        hn_tensor w = {.type = type, .ndim = 2, .ne = {K, N, 1, 1}, .nbytes = rb * N};
        snprintf(w.name, sizeof w.name, "test.%s", hn_dtype_name(type));
        w.data = malloc(w.nbytes);
        hn_type_traits_of(type)->from_f32(src, w.data, N * K);
        for (int n = 0; n < N; n++) hn_get_row(&w, n, deq + n * K);
        hn_tensor wf = {.type = HN_F32, .ndim = 2, .ne = {K, N, 1, 1}, .data = deq, .nbytes = sizeof deq};
        snprintf(wf.name, sizeof wf.name, "test.f32");
        // EXACT: the same panels as the F32 weight of the dequantized values, bit for bit.
        for (int T = 1; T <= TMAX; T += 19) {
            hn_matmul(y, x, &w, T, HN_MM_EXACT);
            hn_matmul(yf, x, &wf, T, HN_MM_EXACT);
            CHECK(!memcmp(y, yf, sizeof(float) * T * N), "%s EXACT matmul T=%d equals f32's", w.name, T);
            hn_status s = hn_matmul_dx(dx, dy, &w, T, false);
            hn_matmul_dx(dxf, dy, &wf, T, false);
            CHECK(!s && !memcmp(dx, dxf, sizeof(float) * T * K), "%s EXACT dx T=%d equals f32's", w.name, T);
            // accumulate adds onto what is there
            for (int i = 0; i < T * K; i++) dx[i] = 1.0f;
            hn_matmul_dx(dx, dy, &w, T, true);
            int bad = 0;
            for (int i = 0; i < T * K; i++) bad += fabsf(dx[i] - (dxf[i] + 1.0f)) > 1e-5f * (1 + fabsf(dxf[i]));
            CHECK(bad == 0, "%s EXACT dx accumulate T=%d: %d off", w.name, T, bad);
        }
        // Every other path against double.
        const hn_mm_path paths[] = {HN_MM_PATH_DOT, HN_MM_PATH_MV, HN_MM_PATH_TILES, HN_MM_PATH_AUTO};
        for (size_t pi = 0; pi < 4; pi++) {
            for (int T = 1; T <= TMAX; T += 6) {
                hn_status s = hn_matmul_path(y, x, &w, T, paths[pi]);
                int bad = 0;
                for (int t = 0; t < T; t++)
                    for (int n = 0; n < N; n++) {
                        double e = 0;
                        for (int kk = 0; kk < K; kk++) e += (double)deq[n * K + kk] * x[t * K + kk];
                        bad += !(fabs(y[t * N + n] - e) <= (K + 2) * 0x1p-24 * abs_sum(deq + n * K, x + t * K, K));
                    }
                CHECK(!s && bad == 0, "%s path %zu T=%d: %d outputs off", w.name, pi, T, bad);
            }
        }
        // FAST dx (slabs through OpenBLAS) against double.
        int T = 7;
        hn_status s = hn_matmul_dx_mm(dx, dy, &w, T, false, HN_MM_FAST);
        int bad = 0;
        for (int t = 0; t < T; t++)
            for (int kk = 0; kk < K; kk++) {
                double e = 0, sa = 0;
                for (int n = 0; n < N; n++) {
                    e += (double)dy[t * N + n] * deq[n * K + kk];
                    sa += fabs((double)dy[t * N + n] * deq[n * K + kk]);
                }
                bad += !(fabs(dx[t * K + kk] - e) <= (N + 2) * 0x1p-24 * sa);
            }
        CHECK(!s && bad == 0, "%s FAST dx: %d off", w.name, bad);
        free(w.data);
    }
}

int main(void) {
    test_table();
    test_golden();
    test_roundtrip();
    test_simd();
    test_matmul();
    return test_done();
}
