// tests/test_matmul.c — hn_matmul against a naive double-precision loop, FAST against EXACT, odd shapes, thread
// counts, bad arguments, hn_get_row.
//
// Tolerances:
//   EXACT vs double: each output is an fp32 sum of K products, so |y - exact| <= gamma(K+1) * sum |w x|,
//     gamma(m) = m u / (1 - m u), u = 2^-24; checked as (K + 2) * u * sum |w x|.
//   FAST (fp32 activations: decode kernels below 4 tokens, the batch kernel (hn_gemm_rows_fn) to 128, slabs above)
//     vs double: the EXACT bound above. The batch kernel sums each output lane-wise (K/16 or K/8 terms a lane) and
//     then across the lanes by a fixed tree, so its error is within gamma(K/8 + 4) * sum |w x|: inside that bound.
//   decode kernel (hn_mv_fn) at a SIMD level vs the scalar reference: the dequantized weights are bit-identical (one
//     rounding of q * d (+ m) either way), so the two differ only by the order of two fp32 sums of the same K
//     products, each within gamma(K) * sum |w x| of the exact sum: checked as 2 (K + 2) u sum |w x|.
//   FAST_Q8 vs EXACT: x is rounded to 8-bit blocks with step d = amax/127 (d itself an f16), so each x_k moves by at
//     most d/2 + 127 * f16err(d); the output moves by at most sum_k |w_k| * that, plus Q4_1's m * s term (s an f16)
//     and the fp32 summation of both paths; checked as that bound.
#include "tensor/kernels.h"
#include "tensor/ops.h"
#include "tests/test.h"

#include <math.h>
#include <string.h>

static void fill(hn_rng *r, float *x, int64_t n, float scale) {
    for (int64_t i = 0; i < n; i++) x[i] = (hn_rng_f32(r) * 2 - 1) * scale;
}

static float f16err(float s) { return fmaxf(fabsf(s) * 0x1p-11f, 0x1p-25f); }

typedef struct {
    hn_tensor t;
    float *deq; // (N, K) the weight as hn_get_row gives it
} weight;

static weight make_weight(hn_rng *r, hn_dtype type, int64_t K, int64_t N) {
    weight w = {0};
    size_t rb;
    hn_row_bytes(type, K, &rb);
    float *src = malloc(sizeof(float) * (size_t)(K * N));
    fill(r, src, K * N, 0.5f);
    w.t = (hn_tensor){.type = type, .ndim = 2, .ne = {K, N, 1, 1}, .nbytes = rb * (size_t)N};
    snprintf(w.t.name, sizeof w.t.name, "test.%s", hn_dtype_name(type));
    w.t.data = malloc(w.t.nbytes);
    hn_type_traits_of(type)->from_f32(src, w.t.data, K * N);
    w.deq = src; // reuse: overwrite with the dequantized rows
    for (int64_t n = 0; n < N; n++) hn_get_row(&w.t, n, w.deq + n * K);
    return w;
}

static void free_weight(weight *w) {
    free(w->t.data);
    free(w->deq);
}

static void check_exact(const weight *w, const float *x, int64_t T, const float *y, const char *what) {
    const int64_t K = w->t.ne[0], N = w->t.ne[1];
    int bad = 0;
    double worst = 0;
    for (int64_t t = 0; t < T; t++) {
        for (int64_t n = 0; n < N; n++) {
            double s = 0, sa = 0;
            for (int64_t k = 0; k < K; k++) {
                double p = (double)w->deq[n * K + k] * x[t * K + k];
                s += p;
                sa += fabs(p);
            }
            double e = fabs(y[t * N + n] - s), tol = (double)(K + 2) * 0x1p-24 * sa;
            if (!(e <= tol)) bad++;
            if (e > worst) worst = e;
        }
    }
    CHECK(bad == 0, "%s %s K=%lld N=%lld T=%lld: %d outputs off the double reference (worst %.3g)", what,
          hn_dtype_name(w->t.type), (long long)K, (long long)N, (long long)T, bad, worst);
}

// The FAST bound of the header comment, from the quantized activations the reference quantizer produces.
static void check_fast(const weight *w, const float *x, int64_t T, const float *yf, const float *ye) {
    const int64_t K = w->t.ne[0], N = w->t.ne[1];
    const hn_type_traits *tt = hn_type_traits_of(w->t.type);
    if (tt->vec_dot_type == HN_F32) {
        check_exact(w, x, T, yf, "FAST");
        return;
    }
    int bad = 0;
    double worst = 0;
    for (int64_t t = 0; t < T; t++) {
        const float *xt = x + t * K;
        for (int64_t n = 0; n < N; n++) {
            const float *wr = w->deq + n * K;
            double bound = 0, sa = 0;
            for (int64_t b = 0; b < K / 32; b++) {
                float amax = 0, d, sw = 0, sx = 0;
                for (int j = 0; j < 32; j++) {
                    amax = fmaxf(amax, fabsf(xt[32 * b + j]));
                    sw += fabsf(wr[32 * b + j]);
                    sx += fabsf(xt[32 * b + j]);
                    sa += fabs((double)wr[32 * b + j] * xt[32 * b + j]);
                }
                d = amax / 127;
                bound += sw * (0.5 * d + 127 * f16err(d));
                if (w->t.type == HN_Q4_1) bound += 2 * 0x1p-11 * 2 * sx * sw / 32; // |m| * |s| rounding, generously
            }
            bound += 2 * (double)(K + 2) * 0x1p-24 * sa;
            double e = fabs((double)yf[t * N + n] - ye[t * N + n]);
            if (!(e <= bound)) bad++;
            if (e > worst) worst = e;
        }
    }
    CHECK(bad == 0, "FAST vs EXACT %s K=%lld N=%lld T=%lld: %d outputs past the bound (worst %.3g)",
          hn_dtype_name(w->t.type), (long long)K, (long long)N, (long long)T, bad, worst);
}

static void test_types(void) {
    const hn_dtype types[] = {HN_F32, HN_F16, HN_BF16, HN_Q4_0, HN_Q4_1, HN_Q8_0};
    const int64_t shapes[][3] = {{64, 33, 1}, {96, 100, 3}, {576, 70, 7}, {160, 65, 20}, {64, 5, 40},
                                 {96, 37, 8}, {64, 10, 16}, {128, 23, 33}, {96, 41, 64}, {64, 6, 130}};
    hn_rng r;
    hn_rng_seed(&r, 5);
    for (size_t k = 0; k < sizeof types / sizeof types[0]; k++) {
        for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
            int64_t K = shapes[s][0], N = shapes[s][1], T = shapes[s][2];
            weight w = make_weight(&r, types[k], K, N);
            float *x = malloc(sizeof(float) * (size_t)(T * K));
            float *ye = malloc(sizeof(float) * (size_t)(T * N)), *ye2 = malloc(sizeof(float) * (size_t)(T * N));
            float *yf = malloc(sizeof(float) * (size_t)(T * N)), *yf2 = malloc(sizeof(float) * (size_t)(T * N));
            float *y1 = malloc(sizeof(float) * (size_t)N);
            fill(&r, x, T * K, 2.0f);
            hn_threads_set(1);
            CHECK(hn_matmul(ye, x, &w.t, T, HN_MM_EXACT) == HN_OK, "EXACT: %s", hn_errmsg());
            CHECK(hn_matmul(yf, x, &w.t, T, HN_MM_FAST) == HN_OK, "FAST: %s", hn_errmsg());
            check_exact(&w, x, T, ye, "EXACT");
            check_exact(&w, x, T, yf, "FAST");
            CHECK(hn_matmul(yf, x, &w.t, T, HN_MM_FAST_Q8) == HN_OK, "FAST_Q8: %s", hn_errmsg());
            check_fast(&w, x, T, yf, ye);
            hn_matmul(yf, x, &w.t, T, HN_MM_FAST);
            // Two threads: bit-identical (each output is computed the same way by whichever thread owns it).
            hn_threads_set(2);
            hn_matmul(ye2, x, &w.t, T, HN_MM_EXACT);
            hn_matmul(yf2, x, &w.t, T, HN_MM_FAST);
            CHECK(!memcmp(ye, ye2, sizeof(float) * (size_t)(T * N)), "%s EXACT 1 vs 2 threads differ (T=%lld)",
                  hn_dtype_name(types[k]), (long long)T);
            // (FAST F32, and FAST from 16 tokens, are OpenBLAS, whose sums depend on how the product is split over
            // threads: there, two runs at the same thread count are compared instead.)
            const bool blas = types[k] == HN_F32 || T >= 16;
            if (blas) hn_matmul(yf, x, &w.t, T, HN_MM_FAST);
            CHECK(!memcmp(yf, yf2, sizeof(float) * (size_t)(T * N)), "%s FAST %s differ (T=%lld)",
                  hn_dtype_name(types[k]), blas ? "two runs at 2 threads" : "1 vs 2 threads", (long long)T);
            hn_threads_set(blas ? 2 : 1);
            hn_matmul(yf, x, &w.t, T, HN_MM_FAST_Q8);
            hn_threads_set(2);
            hn_matmul(yf2, x, &w.t, T, HN_MM_FAST_Q8);
            CHECK(!memcmp(yf, yf2, sizeof(float) * (size_t)(T * N)), "%s FAST_Q8 %s differ (T=%lld)",
                  hn_dtype_name(types[k]), blas ? "two runs at 2 threads" : "1 vs 2 threads", (long long)T);
            // EXACT is batch-invariant: a token's row is the same whatever T.
            {
                int same = 1;
                for (int64_t t = 0; t < T; t++) {
                    hn_matmul(y1, x + t * K, &w.t, 1, HN_MM_EXACT);
                    same &= !memcmp(y1, ye + t * N, sizeof(float) * (size_t)N);
                }
                CHECK(same, "%s EXACT row of T=%lld differs from the same token alone", hn_dtype_name(types[k]),
                      (long long)T);
            }
            // Every FAST path (fp32 decode kernels, 8-bit dots, fp32 panels) meets its bound whatever T picks.
            hn_matmul_path(yf, x, &w.t, T, HN_MM_PATH_DOT);
            check_fast(&w, x, T, yf, ye);
            hn_matmul_path(yf, x, &w.t, T, HN_MM_PATH_MV);
            check_exact(&w, x, T, yf, "mv");
            hn_matmul_path(yf, x, &w.t, T, HN_MM_PATH_TILES);
            check_exact(&w, x, T, yf, "panels");
            hn_matmul_path(yf, x, &w.t, T, HN_MM_PATH_ROWS);
            check_exact(&w, x, T, yf, "rows");
            hn_matmul_path(yf, x, &w.t, T, HN_MM_PATH_SLAB);
            check_exact(&w, x, T, yf, "slabs");
            free(x);
            free(ye);
            free(ye2);
            free(yf);
            free(yf2);
            free(y1);
            free_weight(&w);
        }
    }
    hn_threads_set(0);
}

// FAST on every SIMD level against the scalar kernels (the matmul level, not only the kernels).
static void test_levels(void) {
    hn_rng r;
    hn_rng_seed(&r, 9);
    weight w = make_weight(&r, HN_Q4_1, 576, 200);
    float x[576 * 2], y[400];
    fill(&r, x, 576 * 2, 1.0f);
    CHECK(hn_matmul(y, x, &w.t, 2, HN_MM_FAST) == HN_OK, "fast");
    float ye[400];
    hn_matmul(ye, x, &w.t, 2, HN_MM_EXACT);
    check_fast(&w, x, 2, y, ye);
    free_weight(&w);
}

// The fp32-activation decode kernels of every SIMD level this CPU has against the scalar reference (the summation
// order bound of the header), on odd shapes; rows split at odd places and tokens one at a time give the same bits.
static void test_mv(void) {
    const hn_dtype types[] = {HN_Q4_0, HN_Q4_1, HN_Q8_0};
    const int64_t shapes[][3] = {{32, 1, 1}, {64, 7, 2}, {96, 5, 3}, {160, 33, 5}, {576, 70, 1}, {1536, 9, 4},
                                 {224, 13, 15}, {64, 3, 20}};
    hn_rng r;
    hn_rng_seed(&r, 11);
    for (size_t k = 0; k < sizeof types / sizeof types[0]; k++) {
        CHECK(hn_mv_fn_of(HN_SIMD_SCALAR, types[k]) != NULL, "%s has a scalar decode kernel", hn_dtype_name(types[k]));
        for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
            int64_t K = shapes[s][0], N = shapes[s][1], T = shapes[s][2];
            weight w = make_weight(&r, types[k], K, N);
            size_t rb;
            hn_row_bytes(types[k], K, &rb);
            float *x = malloc(sizeof(float) * (size_t)(T * K)), *yr = malloc(sizeof(float) * (size_t)(T * N));
            float *y = malloc(sizeof(float) * (size_t)(T * N)), *y2 = malloc(sizeof(float) * (size_t)(T * N));
            fill(&r, x, T * K, 2.0f);
            // A few large activations, as SmolLM2's outlier dimensions.
            for (int64_t i = 0; i < T * K; i += 37) x[i] *= 25.0f;
            hn_mv_fn_of(HN_SIMD_SCALAR, types[k])(K, w.t.data, rb, N, x, T, yr, N);
            check_exact(&w, x, T, yr, "mv scalar");
            for (int lv = HN_SIMD_AVX2; lv <= (int)hn_simd_cpu(); lv++) {
                hn_mv_fn mv = hn_mv_fn_of((hn_simd)lv, types[k]);
                mv(K, w.t.data, rb, N, x, T, y, N);
                int bad = 0;
                double worst = 0;
                for (int64_t t = 0; t < T; t++) {
                    for (int64_t n = 0; n < N; n++) {
                        double sa = 0;
                        for (int64_t j = 0; j < K; j++) sa += fabs((double)w.deq[n * K + j] * x[t * K + j]);
                        double e = fabs((double)y[t * N + n] - yr[t * N + n]);
                        if (!(e <= 2.0 * (double)(K + 2) * 0x1p-24 * sa)) bad++;
                        if (e > worst) worst = e;
                    }
                }
                CHECK(bad == 0, "mv level %d %s K=%lld N=%lld T=%lld: %d outputs past the order bound (worst %.3g)",
                      lv, hn_dtype_name(types[k]), (long long)K, (long long)N, (long long)T, bad, worst);
                // Rows in two uneven parts, tokens one by one: bit-identical.
                int64_t cut = N / 3;
                mv(K, w.t.data, rb, cut, x, T, y2, N);
                mv(K, (const uint8_t *)w.t.data + (size_t)cut * rb, rb, N - cut, x, T, y2 + cut, N);
                CHECK(!memcmp(y, y2, sizeof(float) * (size_t)(T * N)), "mv level %d %s: split rows differ", lv,
                      hn_dtype_name(types[k]));
                for (int64_t t = 0; t < T; t++) mv(K, w.t.data, rb, N, x + t * K, 1, y2 + t * N, N);
                CHECK(!memcmp(y, y2, sizeof(float) * (size_t)(T * N)), "mv level %d %s: T=%lld vs one by one differ",
                      lv, hn_dtype_name(types[k]), (long long)T);
            }
            free(x), free(yr), free(y), free(y2);
            free_weight(&w);
        }
    }
    CHECK(hn_mv_fn_of(HN_SIMD_SCALAR, HN_F16) == NULL, "f16 has no decode kernel (vec_dot takes fp32 already)");
}

// The batch kernels (hn_gemm_rows_fn) of every SIMD level this CPU has, on fp32 rows: within the fp32 summation
// bound of the double product, and each output the same bits whatever T, the tile it falls in or a split of the
// rows (so FAST does not depend on the thread count, and a sequence's logits do not depend on which other
// sequences share its step). Widths that are not a multiple of the vector (F16 / BF16 rows) included.
static void test_rows(void) {
    const int64_t shapes[][3] = {{16, 4, 1}, {37, 5, 3}, {64, 9, 8}, {100, 7, 13}, {576, 21, 16}, {1536, 6, 9},
                                 {96, 17, 33}, {48, 13, 64}};
    hn_rng r;
    hn_rng_seed(&r, 13);
    CHECK(hn_gemm_rows_fn_of(HN_SIMD_SCALAR) == NULL, "no scalar batch kernel (FAST keeps mv / slabs there)");
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        const int64_t K = shapes[s][0], N = shapes[s][1], T = shapes[s][2];
        float *w = malloc(sizeof(float) * (size_t)(N * K)), *x = malloc(sizeof(float) * (size_t)(T * K));
        float *y = malloc(sizeof(float) * (size_t)(T * N)), *y2 = malloc(sizeof(float) * (size_t)(T * N));
        fill(&r, w, N * K, 0.5f);
        fill(&r, x, T * K, 2.0f);
        for (int64_t i = 0; i < T * K; i += 37) x[i] *= 25.0f; // outlier activations, as SmolLM2's
        for (int lv = HN_SIMD_AVX2; lv <= (int)hn_simd_cpu(); lv++) {
            hn_gemm_rows_fn g = hn_gemm_rows_fn_of((hn_simd)lv);
            CHECK(g != NULL, "level %d has a batch kernel", lv);
            if (!g) continue;
            g(T, K, x, w, N, y, N);
            int bad = 0;
            double worst = 0;
            for (int64_t t = 0; t < T; t++) {
                for (int64_t n = 0; n < N; n++) {
                    double e = 0, sa = 0;
                    for (int64_t k = 0; k < K; k++) {
                        double p = (double)w[n * K + k] * x[t * K + k];
                        e += p;
                        sa += fabs(p);
                    }
                    double d = fabs(y[t * N + n] - e);
                    if (!(d <= (double)(K + 2) * 0x1p-24 * sa)) bad++;
                    if (d > worst) worst = d;
                }
            }
            CHECK(bad == 0, "rows level %d K=%lld N=%lld T=%lld: %d outputs off the double product (worst %.3g)", lv,
                  (long long)K, (long long)N, (long long)T, bad, worst);
            int64_t cut = N / 3 + 1; // rows split at an odd place, as threads may split them
            g(T, K, x, w, cut, y2, N);
            g(T, K, x, w + cut * K, N - cut, y2 + cut, N);
            CHECK(!memcmp(y, y2, sizeof(float) * (size_t)(T * N)), "rows level %d K=%lld T=%lld: split rows differ",
                  lv, (long long)K, (long long)T);
            for (int64_t t = 0; t < T; t++) g(1, K, x + t * K, w, N, y2 + t * N, N);
            CHECK(!memcmp(y, y2, sizeof(float) * (size_t)(T * N)), "rows level %d K=%lld T=%lld vs one by one differ",
                  lv, (long long)K, (long long)T);
            if (T > 2) {
                g(T - 2, K, x + 2 * K, w, N, y2 + 2 * N, N); // the same tokens in other tiles
                CHECK(!memcmp(y + 2 * N, y2 + 2 * N, sizeof(float) * (size_t)((T - 2) * N)),
                      "rows level %d K=%lld T=%lld: shifted tiles differ", lv, (long long)K, (long long)T);
            }
        }
        free(w), free(x), free(y), free(y2);
    }
    // Through hn_matmul: F16 and BF16 rows of 37 at batch sizes, and FAST's batch rows 1 vs 2 threads.
    const hn_dtype types[] = {HN_F16, HN_BF16, HN_Q4_1};
    for (size_t k = 0; k < sizeof types / sizeof types[0]; k++) {
        const int64_t K = types[k] == HN_Q4_1 ? 576 : 37, N = 75, T = 24;
        weight w = make_weight(&r, types[k], K, N);
        float *x = malloc(sizeof(float) * (size_t)(T * K)), *y = malloc(sizeof(float) * (size_t)(T * N));
        float *y2 = malloc(sizeof(float) * (size_t)(T * N));
        fill(&r, x, T * K, 2.0f);
        hn_threads_set(1);
        CHECK(hn_matmul_path(y, x, &w.t, T, HN_MM_PATH_ROWS) == HN_OK, "rows: %s", hn_errmsg());
        check_exact(&w, x, T, y, "rows");
        if (!hn_gemm_rows_fn_of(hn_simd_active())) goto next; // scalar: FAST is mv and slabs
        hn_matmul(y, x, &w.t, T, HN_MM_FAST);
        hn_threads_set(2);
        hn_matmul(y2, x, &w.t, T, HN_MM_FAST);
        CHECK(!memcmp(y, y2, sizeof(float) * (size_t)(T * N)), "%s FAST T=%lld 1 vs 2 threads differ",
              hn_dtype_name(types[k]), (long long)T);
        for (int64_t t = 0; t < 8; t++) hn_matmul(y2 + t * N, x + t * K, &w.t, 8 - t + 3, HN_MM_FAST);
        CHECK(!memcmp(y, y2, sizeof(float) * (size_t)(8 * N)), "%s FAST: a token's row depends on the batch (4..11)",
              hn_dtype_name(types[k]));
    next:
        free(x), free(y), free(y2);
        free_weight(&w);
    }
    hn_threads_set(0);
}

static void test_errors(void) {
    hn_rng r;
    hn_rng_seed(&r, 1);
    weight w = make_weight(&r, HN_Q8_0, 64, 4);
    float x[64 * 2], y[8];
    fill(&r, x, 128, 1.0f);
    hn_tensor bad = w.t;
    bad.type = HN_I32;
    bad.ne[0] = 16; // 16 x 4 i32 = 256 bytes, fits
    CHECK(hn_matmul(y, x, &bad, 1, HN_MM_EXACT) == HN_ERR_UNSUPPORTED && strstr(hn_errmsg(), "i32"), "i32: %s",
          hn_errmsg());
    bad = w.t;
    bad.ne[0] = 48; // not a whole number of blocks
    CHECK(hn_matmul(y, x, &bad, 1, HN_MM_FAST) == HN_ERR_ARG && strstr(hn_errmsg(), "blocks"), "48: %s", hn_errmsg());
    bad = w.t;
    bad.nbytes -= 1;
    CHECK(hn_matmul(y, x, &bad, 1, HN_MM_EXACT) == HN_ERR_ARG && strstr(hn_errmsg(), "bytes"), "short: %s",
          hn_errmsg());
    bad = w.t;
    bad.ne[2] = 2;
    CHECK(hn_matmul(y, x, &bad, 1, HN_MM_EXACT) == HN_ERR_ARG && strstr(hn_errmsg(), "2-D"), "3-D: %s", hn_errmsg());
    bad = w.t;
    bad.type = (hn_dtype)16; // iq2_xxs: a GGUF type hone does not support
    CHECK(hn_matmul(y, x, &bad, 1, HN_MM_EXACT) == HN_ERR_UNSUPPORTED, "iq2_xxs: %s", hn_errmsg());
    CHECK(hn_matmul(y, x, &w.t, -1, HN_MM_EXACT) == HN_ERR_ARG, "negative T");
    CHECK(hn_matmul(y, x, &w.t, 0, HN_MM_EXACT) == HN_OK, "T = 0 is a no-op");
    free_weight(&w);
}

static void test_get_row(void) {
    hn_rng r;
    hn_rng_seed(&r, 2);
    weight w = make_weight(&r, HN_Q4_1, 96, 10);
    float row[96], ref[96];
    size_t rb;
    hn_row_bytes(HN_Q4_1, 96, &rb);
    hn_get_row(&w.t, 7, row);
    hn_q4_1_to_f32_ref((const uint8_t *)w.t.data + 7 * rb, ref, 96);
    CHECK(!memcmp(row, ref, sizeof row), "get_row = reference dequantize of that row");
    free_weight(&w);
}

int main(void) {
    test_types();
    test_levels();
    test_mv();
    test_rows();
    test_errors();
    test_get_row();
    return test_done();
}
