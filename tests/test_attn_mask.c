// tests/test_attn_mask.c — hn_op_attention_ex: non-causal attention (encoders) and per-row valid lengths (padded
// batches). The forward against a direct double-precision reference, the backward against central finite
// differences (the method of tests/test_grad.c: L = sum(y * R), h = 4e-3, tolerance 3e-3 x max(1, max |grad|)),
// padded keys shown to change nothing in valid rows, the causal form without lengths equal to hn_op_attention, and
// bad lengths refused.
#include "tensor/grad.h"
#include "tensor/kernels.h"
#include "tests/test.h"

#include <math.h>
#include <string.h>

#define H_FD 4e-3
#define TOL_FD 3e-3

typedef struct {
    const char *name;
    int64_t B, T;
    int H, KVH, hd;
    bool causal;
    const int32_t *lens;
    float *in[3]; // q, k, v
} case_t;

static hn_arena g_arena;

static void fill(float *x, int64_t n, uint64_t seed) {
    hn_rng r;
    hn_rng_seed(&r, seed);
    for (int64_t i = 0; i < n; i++) x[i] = 2 * hn_rng_f32(&r) - 1;
}

static int64_t width(const case_t *t, int i) { return (int64_t)(i == 0 ? t->H : t->KVH) * t->hd; }

// Runs the op on copies of t->in; with grad, sets y's gradient to R, runs the backward and copies the input
// gradients into g[3]. Returns L = sum(y * R), or NAN when the op failed; y (N, H*hd) copied into yout if given.
static double run(const case_t *t, const float *R, float *g[3], float *yout) {
    hn_arena_reset(&g_arena, (hn_arena_mark){0});
    hn_tape tape = {0};
    hn_ctx c = {.arena = &g_arena, .tape = g ? &tape : NULL, .mm = HN_MM_EXACT};
    int64_t N = t->B * t->T;
    hn_var *v[3];
    for (int i = 0; i < 3; i++) {
        v[i] = hn_var_new(&c, N, width(t, i));
        memcpy(v[i]->d, t->in[i], (size_t)(N * width(t, i)) * sizeof(float));
        v[i]->rg = true;
    }
    hn_var *y = hn_op_attention_ex(&c, v[0], v[1], v[2], t->B, t->T, t->H, t->KVH, t->hd, t->causal, t->lens);
    if (!y) return NAN;
    double L = 0;
    for (int64_t i = 0; i < y->rows * y->cols; i++) L += (double)y->d[i] * R[i];
    if (yout) memcpy(yout, y->d, (size_t)(y->rows * y->cols) * sizeof(float));
    if (g) {
        memcpy(hn_var_grad(&c, y), R, (size_t)(y->rows * y->cols) * sizeof(float));
        CHECK(hn_backward(&c) == HN_OK, "%s: backward", t->name);
        for (int i = 0; i < 3; i++) memcpy(g[i], hn_var_grad(&c, v[i]), (size_t)(N * width(t, i)) * sizeof(float));
    }
    return L;
}

// y by the definition, in double: query t of row b sees keys s < lens[b] (and s <= t when causal).
static double reference_maxdiff(const case_t *t, const float *y) {
    int64_t QW = width(t, 0), KW = width(t, 1);
    double md = 0;
    for (int64_t b = 0; b < t->B; b++) {
        int64_t L = t->lens ? t->lens[b] : t->T;
        for (int h = 0; h < t->H; h++) {
            int kh = h / (t->H / t->KVH);
            for (int64_t i = 0; i < t->T; i++) {
                const float *q = t->in[0] + (b * t->T + i) * QW + h * t->hd;
                double w[256], mx = -1e300, sum = 0;
                int64_t n = t->causal && i + 1 < L ? i + 1 : L;
                for (int64_t s = 0; s < n; s++) {
                    const float *k = t->in[1] + (b * t->T + s) * KW + kh * t->hd;
                    double d = 0;
                    for (int j = 0; j < t->hd; j++) d += (double)q[j] * k[j];
                    w[s] = d / sqrt((double)t->hd);
                    mx = fmax(mx, w[s]);
                }
                for (int64_t s = 0; s < n; s++) sum += w[s] = exp(w[s] - mx);
                for (int j = 0; j < t->hd; j++) {
                    double o = 0;
                    for (int64_t s = 0; s < n; s++) o += w[s] / sum * t->in[2][(b * t->T + s) * KW + kh * t->hd + j];
                    md = fmax(md, fabs(o - y[(b * t->T + i) * QW + h * t->hd + j]));
                }
            }
        }
    }
    return md;
}

static void check_case(case_t *t, uint64_t seed) {
    int64_t N = t->B * t->T, ny = N * width(t, 0);
    for (int i = 0; i < 3; i++) {
        t->in[i] = malloc((size_t)(N * width(t, i)) * sizeof(float));
        fill(t->in[i], N * width(t, i), seed + i);
    }
    float *R = malloc((size_t)ny * sizeof *R), *y = malloc((size_t)ny * sizeof *y), *g[3];
    fill(R, ny, 7);
    for (int i = 0; i < 3; i++) g[i] = malloc((size_t)(N * width(t, i)) * sizeof(float));
    run(t, R, g, y);
    double md = reference_maxdiff(t, y);
    CHECK(md < 1e-5, "%s: forward vs double reference: max diff %.3g", t->name, md);
    printf("  %-40s forward vs reference: max diff %.2e\n", t->name, md);
    for (int i = 0; i < 3; i++) {
        int64_t n = N * width(t, i);
        double maxdiff = 0, maxg = 0;
        for (int64_t j = 0; j < n; j++) {
            float keep = t->in[i][j];
            t->in[i][j] = keep + (float)H_FD;
            double lp = run(t, R, NULL, NULL);
            t->in[i][j] = keep - (float)H_FD;
            double lm = run(t, R, NULL, NULL);
            t->in[i][j] = keep;
            double num = (lp - lm) / (2 * H_FD), d = fabs(num - g[i][j]);
            if (!(d <= maxdiff)) maxdiff = d;
            maxg = fmax(maxg, fabs(num));
        }
        double tol = TOL_FD * (maxg > 1 ? maxg : 1);
        CHECK(maxdiff <= tol && maxg > 0, "%s: input %d: max |analytic - numeric| %.3g (tolerance %.3g)", t->name, i,
              maxdiff, tol);
        printf("  %-40s input %d (%lld values): max diff %.2e, max |grad| %.2e\n", t->name, i, (long long)n,
               maxdiff, maxg);
    }
    // Padded keys and values (positions >= lens[b]) changed: the valid queries' outputs stay bit for bit, and the
    // gradients of the padded keys and values are zero.
    if (t->lens) {
        float *y2 = malloc((size_t)ny * sizeof *y2);
        for (int i = 1; i < 3; i++)
            for (int64_t b = 0; b < t->B; b++)
                for (int64_t s = t->lens[b]; s < t->T; s++)
                    for (int64_t j = 0; j < width(t, i); j++) t->in[i][(b * t->T + s) * width(t, i) + j] += 3.0f;
        run(t, R, NULL, y2);
        int64_t changed = 0, gnz = 0;
        for (int64_t b = 0; b < t->B; b++)
            for (int64_t s = 0; s < t->T; s++) {
                bool valid = s < t->lens[b];
                for (int64_t j = 0; j < width(t, 0); j++) {
                    int64_t at = (b * t->T + s) * width(t, 0) + j;
                    changed += valid && y[at] != y2[at];
                }
                for (int i = 1; i < 3; i++)
                    for (int64_t j = 0; j < width(t, i); j++)
                        gnz += !valid && g[i][(b * t->T + s) * width(t, i) + j] != 0;
            }
        for (int64_t i = 0; i < ny; i++) changed += !isfinite(y2[i]);
        CHECK(changed == 0, "%s: %lld valid outputs changed (or non-finite) when padded keys changed", t->name,
              (long long)changed);
        CHECK(gnz == 0, "%s: %lld non-zero gradients of padded keys / values", t->name, (long long)gnz);
        free(y2);
    }
    for (int i = 0; i < 3; i++) free(t->in[i]), free(g[i]);
    free(R), free(y);
}

// The causal form without lengths is hn_op_attention itself.
static void test_same_as_causal(void) {
    hn_ctx c = {.arena = &g_arena, .mm = HN_MM_EXACT};
    hn_arena_reset(&g_arena, (hn_arena_mark){0});
    int64_t B = 2, T = 9, N = B * T;
    float *in[3];
    for (int i = 0; i < 3; i++) in[i] = malloc((size_t)(N * 16) * sizeof(float)), fill(in[i], N * 16, 50 + i);
    hn_var *q = hn_var_wrap(&c, in[0], N, 16, false), *k = hn_var_wrap(&c, in[1], N, 16, false),
           *v = hn_var_wrap(&c, in[2], N, 16, false);
    hn_var *y0 = hn_op_attention(&c, q, k, v, B, T, 2, 2, 8, NULL, 0);
    hn_var *y1 = hn_op_attention_ex(&c, q, k, v, B, T, 2, 2, 8, true, NULL);
    CHECK(y0 && y1 && memcmp(y0->d, y1->d, (size_t)(N * 16) * sizeof(float)) == 0,
          "attention_ex(causal, no lengths) equals hn_op_attention");
    int32_t bad[2][2] = {{0, 9}, {9, 10}};
    for (int i = 0; i < 2; i++) {
        hn_ctx c2 = {.arena = &g_arena, .mm = HN_MM_EXACT};
        hn_var *y = hn_op_attention_ex(&c2, q, k, v, B, T, 2, 2, 8, false, bad[i]);
        CHECK(!y && c2.err == HN_ERR_ARG && strstr(hn_errmsg(), "valid tokens"),
              "lengths {%d, %d} refused: %s", bad[i][0], bad[i][1], hn_errmsg());
    }
    for (int i = 0; i < 3; i++) free(in[i]);
}

int main(void) {
    static const int32_t lens_a[3] = {5, 2, 1}, lens_b[2] = {70, 23};
    case_t cases[] = {
        {"non-causal (B2 T5 H4 KV2)", 2, 5, 4, 2, 8, false, NULL, {0}},
        {"non-causal, lens 5 2 1 (B3 T5 H2 KV1)", 3, 5, 2, 1, 8, false, lens_a, {0}},
        {"causal, lens 5 2 1 (B3 T5 H4 KV2)", 3, 5, 4, 2, 4, true, lens_a, {0}},
        // rows longer than one query block of the kernel (64)
        {"non-causal, lens 70 23 (B2 T70 H2 KV1)", 2, 70, 2, 1, 4, false, lens_b, {0}},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) check_case(&cases[i], 10 + 5 * i);
    test_same_as_causal();
    hn_arena_deinit(&g_arena);
    return test_done();
}
