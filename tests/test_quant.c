// tests/test_quant.c — dtype table, fp16/bf16 conversion, quantize/dequantize against gguf-py's golden data, the
// error bound of each format, and every SIMD kernel against the scalar one.
//
// Tolerances. Integer parts of the quantized dot products are exact, so SIMD and scalar differ only in the order
// of float additions: with m terms of magnitude sum S = sum |term|, two orders differ by at most 2 * gamma(m) * S,
// gamma(m) = m u / (1 - m u), u = 2^-24. The check below uses 2 * (m + 2) * u * S (two more roundings per term for
// the scale products). Dequantize and the activation quantizers must match the scalar reference bit for bit.
#include "tensor/kernels.h"
#include "tests/test.h"

#include <immintrin.h>
#include <math.h>
#include <string.h>

static uint32_t bits(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

static float from_bits(uint32_t u) {
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static void test_table(void) {
    const hn_dtype all[] = {HN_F32, HN_F16, HN_BF16, HN_Q4_0, HN_Q4_1, HN_Q8_0, HN_Q8_1, HN_I32};
    const size_t bytes[] = {4, 2, 2, 18, 20, 34, 36, 4};
    const int block[] = {1, 1, 1, 32, 32, 32, 32, 1};
    for (int i = 0; i < 8; i++) {
        const hn_type_traits *tt = hn_type_traits_of(all[i]);
        CHECK(tt && tt->block_bytes == bytes[i] && tt->block == block[i], "traits of %d", all[i]);
        hn_dtype back;
        CHECK(hn_dtype_parse(hn_dtype_name(all[i]), &back) && back == all[i], "parse(name(%d))", all[i]);
        CHECK(tt->from_f32 != NULL, "%s quantizes", tt->name);
        if (all[i] != HN_I32) CHECK(tt->to_f32 != NULL, "%s dequantizes", tt->name);
        bool has_dot = all[i] != HN_Q8_1 && all[i] != HN_I32;
        CHECK((tt->vec_dot != NULL) == has_dot && (tt->vec_dot_ref != NULL) == has_dot, "%s dot", tt->name);
    }
    hn_dtype t;
    CHECK(hn_dtype_parse("Q4_1", &t) && t == HN_Q4_1, "parse is case-insensitive");
    CHECK(!hn_dtype_parse("q4_2", &t) && !hn_dtype_parse("", &t), "unknown names refused");
    CHECK(hn_type_traits_of((hn_dtype)4) == NULL && hn_type_traits_of((hn_dtype)16) == NULL, "unsupported types");
    CHECK(hn_type_traits_of((hn_dtype)-1) == NULL && hn_type_traits_of(HN_TYPE_COUNT) == NULL, "out of range");
    CHECK(!strcmp(hn_dtype_name((hn_dtype)17), "unknown"), "name of unsupported");
    size_t rb;
    CHECK(hn_row_bytes(HN_Q4_1, 576, &rb) && rb == 360, "q4_1 row of 576: %zu", rb);
    CHECK(hn_row_bytes(HN_F16, 7, &rb) && rb == 14, "f16 row of 7");
    CHECK(!hn_row_bytes(HN_Q8_0, 33, &rb), "not a whole block");
    CHECK(!hn_row_bytes(HN_Q8_0, -32, &rb), "negative");
    CHECK(!hn_row_bytes(HN_F32, INT64_MAX, &rb), "overflow");
    CHECK(!hn_row_bytes((hn_dtype)16, 256, &rb), "unsupported");
    const char *lvl = hn_simd_level();
    CHECK(!strcmp(lvl, "scalar") || !strcmp(lvl, "avx2") || !strcmp(lvl, "avx512"), "level %s", lvl);
}

__attribute__((target("f16c"))) static uint16_t hw_f32_to_f16(float f) { return _cvtss_sh(f, 0); }
__attribute__((target("f16c"))) static float hw_f16_to_f32(uint16_t h) { return _cvtsh_ss(h); }

static void test_f16(void) {
    struct {
        float f;
        uint16_t h;
    } cases[] = {
        {0.0f, 0x0000},          {-0.0f, 0x8000},         {1.0f, 0x3c00},          {-2.0f, 0xc000},
        {65504.0f, 0x7bff},      {65519.99f, 0x7bff},     {65520.0f, 0x7c00},      {1e10f, 0x7c00},
        {-INFINITY, 0xfc00},     {0x1p-24f, 0x0001},      {0x1p-25f, 0x0000},      {0x1.8p-25f, 0x0001},
        {0x1.8p-24f, 0x0002},    {0x1.4p-24f, 0x0001},    {0x1p-14f, 0x0400},      {0x1.ffcp-15f, 0x0400},
        {1.0f + 0x1p-11f, 0x3c00}, {1.0f + 0x3p-11f, 0x3c02}, {1.0f + 0x1.8p-11f, 0x3c01}, {0x1p-26f, 0x0000},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint16_t h = hn_f32_to_f16(cases[i].f);
        CHECK(h == cases[i].h, "f32_to_f16(%a) = %04x, expected %04x", cases[i].f, h, cases[i].h);
    }
    CHECK(isnan(hn_f16_to_f32(hn_f32_to_f16(NAN))), "nan stays nan");
    CHECK((hn_f32_to_f16(from_bits(0x7f800001)) & 0x7fff) > 0x7c00, "signalling nan stays nan");
    CHECK(isinf(hn_f16_to_f32(0x7c00)) && hn_f16_to_f32(0xfc00) < 0, "inf");
    CHECK(hn_f16_to_f32(0x0001) == 0x1p-24f && hn_f16_to_f32(0x03ff) == 0x3ffp-24f, "subnormals");
    // Every non-nan half survives the round trip.
    int bad = 0;
    for (uint32_t h = 0; h < 65536; h++) {
        if ((h & 0x7c00) == 0x7c00 && (h & 0x3ff)) continue;
        bad += hn_f32_to_f16(hn_f16_to_f32((uint16_t)h)) != h;
    }
    CHECK(bad == 0, "%d halves do not round-trip", bad);
    // Against the hardware conversion (round to nearest even) when the CPU has it.
    if (__builtin_cpu_supports("f16c")) {
        hn_rng r;
        hn_rng_seed(&r, 7);
        int diff = 0;
        for (int i = 0; i < 1000000; i++) {
            float f = from_bits((uint32_t)hn_rng_u64(&r));
            if (isnan(f)) continue;
            diff += hw_f32_to_f16(f) != hn_f32_to_f16(f);
        }
        for (uint32_t h = 0; h < 65536; h++) {
            if ((h & 0x7c00) == 0x7c00 && (h & 0x3ff)) continue;
            diff += bits(hw_f16_to_f32((uint16_t)h)) != bits(hn_f16_to_f32((uint16_t)h));
        }
        CHECK(diff == 0, "%d conversions differ from F16C", diff);
    }
    // bf16: round to nearest even on the dropped 16 bits, nan forced quiet.
    CHECK(hn_f32_to_bf16(1.0f) == 0x3f80 && hn_f32_to_bf16(1.0f + 0x1p-8f) == 0x3f80, "bf16 tie to even (down)");
    CHECK(hn_f32_to_bf16(1.0f + 0x3p-8f) == 0x3f82, "bf16 tie to even (up)");
    CHECK(hn_f32_to_bf16(1.0f + 0x1.8p-8f) == 0x3f81, "bf16 above the tie");
    CHECK(hn_f32_to_bf16(INFINITY) == 0x7f80 && hn_f32_to_bf16(-INFINITY) == 0xff80, "bf16 inf");
    CHECK(hn_f32_to_bf16(from_bits(0x7f800001)) == 0x7fc0, "bf16 nan quiet: %04x", hn_f32_to_bf16(from_bits(0x7f800001)));
    CHECK(hn_f32_to_bf16(0x1p-130f) == 0x0008 && hn_bf16_to_f32(0x0008) == 0x1p-130f, "bf16 subnormal");
    CHECK(hn_f32_to_bf16(from_bits(0x7f7fffff)) == 0x7f80, "bf16 rounds past the max to inf");
}

// ---- golden data from gguf-py ----

static void test_golden(void) {
    hn_map m;
    if (hn_map_open(&m, "tests/data/quant_golden.bin")) {
        CHECK(0, "cannot open golden data: %s", hn_errmsg());
        return;
    }
    const uint8_t *p = m.data, *end = m.data + m.size;
    uint32_t hdr[3];
    CHECK(m.size >= 12, "golden header");
    memcpy(hdr, p, 12);
    CHECK(!memcmp(p, "HNQG", 4) && hdr[1] == 1, "golden magic/version");
    p += 12;
    int records = 0;
    for (uint32_t i = 0; i < hdr[2] && p + 16 <= end; i++) {
        uint32_t r[4]; // kind, type, n, nbytes
        memcpy(r, p, 16);
        p += 16;
        if (p + r[3] + (size_t)r[2] * 4 > end) break;
        const uint8_t *blocks = p;
        float *vals = malloc((size_t)r[2] * 4), *out = malloc((size_t)r[2] * 4);
        uint8_t *q = malloc(r[3]);
        memcpy(vals, p + r[3], (size_t)r[2] * 4);
        p += r[3] + (size_t)r[2] * 4;
        const hn_type_traits *tt = hn_type_traits_of((hn_dtype)r[1]);
        size_t rb;
        CHECK(tt && hn_row_bytes((hn_dtype)r[1], r[2], &rb) && rb == r[3], "record %u: type %u, %u bytes", i, r[1],
              r[3]);
        if (!tt) continue;
        if (r[0] == 0) {
            // Dequantize: reference and active kernel both bit-identical to gguf-py.
            int bad_ref = 0, bad_fast = 0;
            void (*ref_to_f32)(const void *, float *, int64_t) =
                r[1] == HN_F16 ? hn_f16_to_f32_ref : r[1] == HN_BF16 ? hn_bf16_to_f32_ref
                : r[1] == HN_Q4_0 ? hn_q4_0_to_f32_ref : r[1] == HN_Q4_1 ? hn_q4_1_to_f32_ref : hn_q8_0_to_f32_ref;
            ref_to_f32(blocks, out, r[2]);
            for (uint32_t j = 0; j < r[2]; j++) bad_ref += bits(out[j]) != bits(vals[j]);
            tt->to_f32(blocks, out, r[2]);
            for (uint32_t j = 0; j < r[2]; j++) bad_fast += bits(out[j]) != bits(vals[j]);
            CHECK(bad_ref == 0 && bad_fast == 0, "dequantize %s: %d (ref) / %d (%s) of %u values differ from gguf-py",
                  tt->name, bad_ref, bad_fast, hn_simd_level(), r[2]);
        } else {
            tt->from_f32(vals, q, r[2]);
            int bad = 0;
            for (uint32_t j = 0; j < r[3]; j++) bad += q[j] != blocks[j];
            CHECK(bad == 0, "quantize %s: %d of %u bytes differ from gguf-py", tt->name, bad, r[3]);
        }
        records++;
        free(vals);
        free(out);
        free(q);
    }
    CHECK(records == (int)hdr[2] && records == 10, "read %d golden records", records);
    hn_map_close(&m);
}

// ---- quantize -> dequantize error ----

static void fill(hn_rng *r, float *x, int64_t n, float scale) {
    for (int64_t i = 0; i < n; i++) x[i] = (hn_rng_f32(r) * 2 - 1) * scale;
}

static void test_roundtrip(void) {
    enum { N = 32 * 64 };
    hn_rng r;
    hn_rng_seed(&r, 3);
    float x[N], y[N];
    uint8_t q[N * 4];
    fill(&r, x, N, 1.0f);
    for (int i = 0; i < 32; i++) x[5 * 32 + i] = 0.0f;         // zero block
    for (int i = 0; i < 32; i++) x[6 * 32 + i] = 0.37f;        // constant block
    x[7 * 32 + 3] = 100.0f;                                    // outlier
    for (int i = 0; i < 32; i++) x[8 * 32 + i] *= 1e-6f;       // tiny values: f16 subnormal scales
    const hn_dtype types[] = {HN_F16, HN_BF16, HN_Q4_0, HN_Q4_1, HN_Q8_0, HN_Q8_1};
    for (size_t k = 0; k < sizeof types / sizeof types[0]; k++) {
        const hn_type_traits *tt = hn_type_traits_of(types[k]);
        tt->from_f32(x, q, N);
        tt->to_f32(q, y, N);
        int bad = 0;
        for (int b = 0; b < N / 32; b++) {
            const float *xb = x + 32 * b;
            float amax = 0, mn = xb[0], mx = xb[0];
            for (int j = 0; j < 32; j++) {
                amax = fmaxf(amax, fabsf(xb[j]));
                mn = fminf(mn, xb[j]);
                mx = fmaxf(mx, xb[j]);
            }
            for (int j = 0; j < 32; j++) {
                float e = fabsf(y[32 * b + j] - xb[j]), bound;
                // An f16 scale s is off by at most half an ulp: s * 2^-11, or 2^-25 among the subnormals.
#define F16ERR(s) fmaxf(fabsf(s) * 0x1p-11f, 0x1p-25f)
                switch (types[k]) {
                case HN_F16: bound = F16ERR(xb[j]); break;
                case HN_BF16: bound = fabsf(xb[j]) * 0x1p-8f; break;
                // Q4_0: steps of d = amax/8; the side opposite the max saturates at +7d, so up to one step off.
                case HN_Q4_0: bound = amax / 8 + 8 * F16ERR(amax / 8) + 1e-7f; break;
                // Q4_1: half a step of d = (max-min)/15, plus f16 rounding of d (times q <= 15) and of m.
                case HN_Q4_1: bound = (mx - mn) / 15 * 0.5f + 15 * F16ERR((mx - mn) / 15) + F16ERR(mn) + 1e-7f; break;
                // Q8: half a step of d = amax/127, plus f16 rounding of d times |q| <= 127.
                default: bound = amax / 127 * 0.5f + 127 * F16ERR(amax / 127) + 1e-7f; break;
                }
                if (!(e <= bound)) bad++;
            }
        }
        CHECK(bad == 0, "%s: %d values outside the format's error bound", tt->name, bad);
        // Q8_1's s is d times the sum of its quants.
        if (types[k] == HN_Q8_1) {
            const hn_block_q8_1 *b = (const hn_block_q8_1 *)q;
            int sum = 0;
            for (int j = 0; j < 32; j++) sum += b[1].qs[j];
            float s_expect = (float)sum * hn_f16_to_f32(b[1].d), s_got = hn_f16_to_f32(b[1].s);
            CHECK(fabsf(s_got - s_expect) <= fabsf(s_expect) * 0x1p-10f, "q8_1 s = %g, d * sum(q) = %g", s_got, s_expect);
        }
    }
}

// ---- SIMD vs scalar ----

static double dot_terms_abs(hn_dtype t, int64_t n, const void *w, const void *x) {
    // Sum of |term| over the float additions the kernels make (per block for the quantized types).
    const hn_type_traits *tt = hn_type_traits_of(t);
    float *wf = malloc(sizeof(float) * n), *xf = malloc(sizeof(float) * n);
    tt->to_f32(w, wf, n);
    hn_type_traits_of(tt->vec_dot_type)->to_f32(x, xf, n);
    double s = 0;
    for (int64_t i = 0; i < n; i++) s += fabs((double)wf[i] * xf[i]);
    if (t == HN_Q4_1) {
        const hn_block_q4_1 *a = w;
        const hn_block_q8_1 *b = x;
        for (int64_t i = 0; i < n / 32; i++) s += fabs(hn_f16_to_f32(a[i].m) * hn_f16_to_f32(b[i].s));
    }
    free(wf);
    free(xf);
    return s;
}

static void test_simd(void) {
    const hn_dtype types[] = {HN_F32, HN_F16, HN_BF16, HN_Q4_0, HN_Q4_1, HN_Q8_0};
    const int64_t lens[] = {32, 64, 96, 160, 576, 1536, 37, 100, 1000};
    hn_rng r;
    hn_rng_seed(&r, 11);
    enum { MAXN = 1536 };
    float w[MAXN], x[MAXN], y0[MAXN], y1[MAXN];
    uint8_t wq[MAXN * 4], xq[MAXN * 4], xq2[MAXN * 4];
    int levels = 0;
    for (int lv = HN_SIMD_AVX2; lv <= (int)hn_simd_cpu(); lv++) {
        levels++;
        // A level's set may lean on the one below for entries it leaves empty.
        const hn_kernel_set *ks = hn_kernels_of((hn_simd)lv), *below = hn_kernels_of((hn_simd)(lv - 1));
        for (size_t k = 0; k < sizeof types / sizeof types[0]; k++) {
            const hn_type_traits *tt = hn_type_traits_of(types[k]);
            const hn_type_traits *vt = hn_type_traits_of(tt->vec_dot_type);
            for (size_t li = 0; li < sizeof lens / sizeof lens[0]; li++) {
                int64_t n = lens[li];
                if (n % tt->block) continue;
                fill(&r, w, n, 1.0f);
                fill(&r, x, n, 3.0f);
                tt->from_f32(w, wq, n);
                vt->from_f32(x, xq, n);
                hn_vec_dot_fn dot = ks->dot[types[k]] ? ks->dot[types[k]] : below ? below->dot[types[k]] : NULL;
                if (dot) {
                    float ref = tt->vec_dot_ref(n, wq, xq), got = dot(n, wq, xq);
                    double terms = n / tt->block + 2;
                    if (!tt->quantized) terms = n + 2;
                    double tol = 2 * terms * 0x1p-24 * dot_terms_abs(types[k], n, wq, xq) + 1e-30;
                    CHECK(fabs(got - ref) <= tol, "level %d %s n=%lld: %.9g vs scalar %.9g (tol %.3g)", lv, tt->name,
                          (long long)n, got, ref, tol);
                }
                void (*deq)(const void *, float *, int64_t) = ks->to_f32[types[k]];
                if (deq) {
                    void (*ref)(const void *, float *, int64_t) =
                        types[k] == HN_F16 ? hn_f16_to_f32_ref : types[k] == HN_BF16 ? hn_bf16_to_f32_ref
                        : types[k] == HN_Q4_0 ? hn_q4_0_to_f32_ref : types[k] == HN_Q4_1 ? hn_q4_1_to_f32_ref
                        : types[k] == HN_Q8_0 ? hn_q8_0_to_f32_ref : hn_f32_to_f32_ref;
                    ref(wq, y0, n);
                    deq(wq, y1, n);
                    CHECK(!memcmp(y0, y1, sizeof(float) * n), "level %d %s dequantize n=%lld differs", lv, tt->name,
                          (long long)n);
                }
            }
        }
        // Activation quantizers: bit-identical to the reference (same d, same roundf), ties included.
        for (int a = 0; a < 2; a++) {
            hn_dtype t = a ? HN_Q8_1 : HN_Q8_0;
            void (*qf)(const float *, void *, int64_t) = ks->quantize_act[t] ? ks->quantize_act[t]
                                                         : below ? below->quantize_act[t] : NULL;
            if (!qf) continue;
            fill(&r, x, 576, 2.0f);
            for (int j = 0; j < 32; j++) x[j] = (float)j - 15.5f; // exact .5 ties after scaling
            x[32] = 127.0f;
            for (int j = 33; j < 64; j++) x[j] = (float)(j - 48) + 0.5f;
            for (int j = 64; j < 96; j++) x[j] = 0.0f;
            hn_type_traits_of(t)->from_f32(x, xq, 576);
            qf(x, xq2, 576);
            size_t rb;
            hn_row_bytes(t, 576, &rb);
            CHECK(!memcmp(xq, xq2, rb), "level %d %s activation quantizer differs from the reference", lv,
                  hn_dtype_name(t));
        }
        // fp32 panel product.
        hn_gemm_panel_fn gp = ks->gemm_panel ? ks->gemm_panel : below ? below->gemm_panel : NULL;
        if (gp) {
            enum { K = 96, T = 7 };
            float pack[K * HN_PANEL], xs[T * K], ya[T * 40], yb[T * 40];
            fill(&r, pack, K * HN_PANEL, 1.0f);
            fill(&r, xs, T * K, 1.0f);
            for (int nr = 1; nr <= HN_PANEL; nr += 7) {
                for (int i = 0; i < T * 40; i++) ya[i] = yb[i] = -99.0f;
                hn_gemm_panel_ref(T, K, xs, pack, ya, 40, nr);
                gp(T, K, xs, pack, yb, 40, nr);
                int bad = 0;
                for (int t = 0; t < T; t++) {
                    for (int c = 0; c < 40; c++) {
                        double s = 0;
                        for (int kk = 0; kk < K; kk++) s += fabs(pack[kk * HN_PANEL + c % HN_PANEL] * xs[t * K + kk]);
                        float a = ya[t * 40 + c], b = yb[t * 40 + c];
                        if (c >= nr) bad += a != -99.0f || b != -99.0f; // nothing written past nr
                        else bad += !(fabs(a - b) <= 2 * (K + 2) * 0x1p-24 * s);
                    }
                }
                CHECK(bad == 0, "level %d panel product nr=%d: %d outputs differ", lv, nr, bad);
            }
        }
    }
    printf("compared %d SIMD level(s) against scalar (cpu: %s)\n", levels, hn_simd_level());
}

int main(void) {
    test_table();
    test_f16();
    test_golden();
    test_roundtrip();
    test_simd();
    return test_done();
}
