// tests/test_vmath.c — the vector-math sets (tensor/vmath*.c) at every SIMD level this CPU has, against double
// precision: erf over |x| <= 10 (a dense grid, tiny values, the cut at 1, +-inf, NaN, -0 as erff), the exact GELU,
// exp, softmax rows with their log-sum-exp, exp(p - c); every row length 1..70 so that the partial vectors are
// covered, and no element past n written.
#include "tensor/kernels.h"
#include "test.h"

#include <string.h>

#define ERF_TOL 1e-7    // erf, absolute (an ulp of 1); the approximation itself is within 4e-9 (kernels.h)
#define GELU_TOL 1.5e-7 // GELU per unit of max(1, |x|): erf's error plus the roundings of x / sqrt 2 and the product
#define EXP_TOL 2.5e-7  // exp, relative
#define SM_TOL 4e-7     // softmax probabilities, relative to the largest; log-sum-exp absolute (per unit of its size)
#define GUARD 12345.0f  // in the slots past n: must survive

static double gelu_d(double x) { return 0.5 * x * (1.0 + erf(x / sqrt(2.0))); }

static void check_erf(const char *lv, const hn_vmath_set *vm) {
    enum { N = 400001 };
    static float x[N], y[N];
    for (int i = 0; i < N; i++) x[i] = -10.0f + 20.0f * (float)i / (N - 1);
    vm->erf(y, x, N);
    double worst = 0, worst_libm = 0, at = 0;
    for (int i = 0; i < N; i++) {
        double d = fabs((double)y[i] - erf((double)x[i]));
        if (!(d <= worst)) worst = d, at = x[i];
        double dl = fabs((double)y[i] - erff(x[i]));
        if (!(dl <= worst_libm)) worst_libm = dl;
    }
    CHECK(worst <= ERF_TOL, "%s: erf max abs error %.3g at x = %.7g", lv, worst, at);
    CHECK(worst_libm <= ERF_TOL, "%s: erf vs erff max abs difference %.3g", lv, worst_libm);
    printf("%s: erf max abs error %.3g (at %.6g), vs erff %.3g\n", lv, worst, at, worst_libm);
    // Tiny and near the cut between the two pieces, relative to erf's size there.
    float t[64], ty[64];
    int n = 0;
    for (float v = 1e-30f; v < 1e-2f; v *= 37.0f) t[n++] = v, t[n++] = -v;
    for (int k = -8; k <= 8; k++) t[n++] = nextafterf(1.0f, k < 0 ? 0.0f : 2.0f) + (float)k * 1e-7f;
    vm->erf(ty, t, n);
    for (int i = 0; i < n; i++) {
        double e = erf((double)t[i]);
        CHECK(fabs(ty[i] - e) <= ERF_TOL * fmax(fabs(e), 1e-30) + (fabs(t[i]) < 1e-2 ? 0 : ERF_TOL),
              "%s: erf(%.9g) = %.9g, expected %.9g", lv, t[i], ty[i], e);
    }
    float sp[6] = {INFINITY, -INFINITY, NAN, -0.0f, 0.0f, 3.99f}, sy[6];
    vm->erf(sy, sp, 6);
    CHECK(sy[0] == 1.0f && sy[1] == -1.0f, "%s: erf(+-inf) = %g, %g, expected +-1", lv, sy[0], sy[1]);
    CHECK(isnan(sy[2]), "%s: erf(NaN) = %g, expected NaN", lv, sy[2]);
    CHECK(sy[3] == 0.0f && signbit(sy[3]) && sy[4] == 0.0f && !signbit(sy[4]), "%s: erf(-0), erf(0) = %g, %g", lv,
          sy[3], sy[4]);
    CHECK(sy[5] == erff(3.99f), "%s: erf(3.99) = %.9g, erff %.9g", lv, sy[5], erff(3.99f));
}

static void check_gelu_exp(const char *lv, const hn_vmath_set *vm) {
    enum { N = 200001 };
    static float x[N], y[N];
    for (int i = 0; i < N; i++) x[i] = -14.0f + 28.0f * (float)i / (N - 1);
    vm->gelu_erf(y, x, N);
    double worst = 0, worst_libm = 0;
    for (int i = 0; i < N; i++) {
        double d = fabs(y[i] - gelu_d(x[i])) / fmax(1.0, fabs(x[i]));
        if (!(d <= worst)) worst = d;
        float yl = 0.5f * x[i] * (1.0f + erff(x[i] * (float)M_SQRT1_2)); // the former kernel, for the record
        worst_libm = fmax(worst_libm, fabs(yl - gelu_d(x[i])) / fmax(1.0, fabs(x[i])));
    }
    CHECK(worst <= GELU_TOL, "%s: gelu max error %.3g (per unit of |x|)", lv, worst);
    printf("%s: gelu max error %.3g per unit of max(1, |x|) (with erff: %.3g)\n", lv, worst, worst_libm);
    // The backward, gx += dy * GELU'(x), with dy = 1 and gx = 0.5 first; GELU' is within [-0.17, 1.13].
    static float g[N];
    for (int i = 0; i < N; i++) g[i] = 0.5f, y[i] = 1.0f;
    vm->gelu_erf_grad(g, x, y, N);
    worst = 0;
    for (int i = 0; i < N; i++) {
        double xd = x[i], d = 0.5 * (1 + erf(xd / sqrt(2.0))) + xd * exp(-0.5 * xd * xd) / sqrt(2 * M_PI);
        worst = fmax(worst, fabs(g[i] - (0.5 + d)));
    }
    CHECK(worst <= 2 * GELU_TOL, "%s: gelu backward max abs error %.3g", lv, worst);
    float sp[3] = {INFINITY, -INFINITY, NAN}, sy[3];
    vm->gelu_erf(sy, sp, 3);
    CHECK(sy[0] == INFINITY && isnan(sy[1]) && isnan(sy[2]), "%s: gelu(inf, -inf, NaN) = %g %g %g, as erff's form",
          lv, sy[0], sy[1], sy[2]);
    for (int i = 0; i < N; i++) x[i] = -87.0f + 175.0f * (float)i / (N - 1);
    vm->exp(y, x, N);
    worst = 0;
    for (int i = 0; i < N; i++) {
        double d = fabs(y[i] - exp((double)x[i])) / exp((double)x[i]);
        if (!(d <= worst)) worst = d;
    }
    CHECK(worst <= EXP_TOL, "%s: exp max relative error %.3g", lv, worst);
}

// Every length 1..70: each kernel on a row with guard slots after it, against double and the scalar set.
static void check_rows(const char *lv, const hn_vmath_set *vm) {
    float x[80], y[80], p[80];
    uint32_t s = 12345;
    for (int n = 1; n <= 70; n++) {
        for (int i = 0; i < 80; i++) {
            s = s * 1664525u + 1013904223u;
            x[i] = (float)((s >> 8) * (1.0 / 16777216.0) * 24.0 - 12.0);
        }
        // erf / gelu / exp through the partial vector
        void (*maps[3])(float *, const float *, int64_t) = {vm->erf, vm->gelu_erf, vm->exp};
        void (*refs[3])(float *, const float *, int64_t) = {hn_vmath_ref.erf, hn_vmath_ref.gelu_erf,
                                                            hn_vmath_ref.exp};
        for (int f = 0; f < 3; f++) {
            float r[80];
            for (int i = 0; i < 80; i++) y[i] = GUARD;
            maps[f](y, x, n);
            refs[f](r, x, n);
            bool ok = y[n] == GUARD && y[79] == GUARD;
            for (int i = 0; i < n; i++) ok = ok && fabs(y[i] - r[i]) <= 4e-7 * fmax(1.0, fabs(r[i]));
            CHECK(ok, "%s: map %d over %d values differs from the scalar set or writes past n", lv, f, n);
        }
        // the GELU backward through the partial vector: gx += dy * GELU'(x)
        float dy[80], g[80], gr[80];
        for (int i = 0; i < 80; i++) dy[i] = 0.25f * x[79 - i], g[i] = gr[i] = i < n ? x[(i + 7) % 80] : GUARD;
        vm->gelu_erf_grad(g, x, dy, n);
        hn_vmath_ref.gelu_erf_grad(gr, x, dy, n);
        bool gok = g[n] == GUARD && g[79] == GUARD;
        for (int i = 0; i < n; i++) gok = gok && fabs(g[i] - gr[i]) <= 1e-6 * fmax(1.0, fabs(gr[i]));
        CHECK(gok, "%s: gelu backward over %d values differs from the scalar set or writes past n", lv, n);
        // softmax and its log-sum-exp against double
        memcpy(p, x, sizeof p);
        for (int i = n; i < 80; i++) p[i] = GUARD;
        float lse = vm->softmax(p, n);
        double mx = -INFINITY, sum = 0;
        for (int i = 0; i < n; i++) mx = fmax(mx, x[i]);
        for (int i = 0; i < n; i++) sum += exp((double)x[i] - mx);
        double worst = 0;
        for (int i = 0; i < n; i++) worst = fmax(worst, fabs(p[i] - exp((double)x[i] - mx) / sum));
        CHECK(worst <= SM_TOL && p[n] == GUARD && p[79] == GUARD, "%s: softmax of %d: max error %.3g, guard %g", lv,
              n, worst, p[n]);
        CHECK(fabs(lse - (mx + log(sum))) <= SM_TOL * fmax(1.0, fabs(mx)), "%s: softmax of %d: lse %.9g vs %.9g", lv,
              n, lse, mx + log(sum));
        // exp(p - c) with c = the log-sum-exp gives the softmax again
        memcpy(p, x, sizeof p);
        for (int i = n; i < 80; i++) p[i] = GUARD;
        vm->exp_sub(p, n, lse);
        worst = 0;
        for (int i = 0; i < n; i++) worst = fmax(worst, fabs(p[i] - exp((double)x[i] - mx) / sum));
        CHECK(worst <= 2 * SM_TOL && p[n] == GUARD, "%s: exp_sub of %d: max error %.3g", lv, n, worst);
    }
}

int main(void) {
    static const char *names[HN_SIMD_COUNT] = {"scalar", "avx2", "avx512"};
    for (int l = HN_SIMD_SCALAR; l <= (int)hn_simd_cpu(); l++) {
        const hn_vmath_set *vm = hn_vmath_of((hn_simd)l);
        check_erf(names[l], vm);
        check_gelu_exp(names[l], vm);
        check_rows(names[l], vm);
    }
    CHECK(hn_vmath_active() == hn_vmath_of(hn_simd_active()), "the active set is the active level's");
    return test_done();
}
