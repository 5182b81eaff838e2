// tests/test_grad_norm.c — LayerNorm and GELU (tensor/grad_norm.c): forward against a double-precision reference,
// backward against central finite differences (the method of tests/test_grad.c: L = sum(y * R) for a fixed random
// R, the tape's gradients against (L(p + h) - L(p - h)) / 2h with L summed in double; h = 4e-3, tolerance 3e-3 x
// max(1, max |gradient|)), including the trainable weight and bias of LayerNorm and rows wide and many enough to
// take the threaded and the chunked paths.
#include "tensor/grad.h"
#include "tests/test.h"

#include <math.h>
#include <string.h>

#define H_FD 4e-3
#define TOL_FD 3e-3

typedef struct fd fd;
struct fd {
    const char *name;
    int n_in;
    float *in[3];   // values: in[0] the var input, the others trainable arrays (used in place)
    int64_t n[3];   // element counts; in[0] is (rows, cols)
    int64_t rows, cols;
    float *gw[3];   // gradient arrays of trainable inputs (NULL: frozen)
    hn_var *x;      // this run's var
    hn_var *(*f)(hn_ctx *c, fd *t);
};

static hn_arena g_arena;

static double fd_run(fd *t, const float *R, bool grad) {
    hn_arena_reset(&g_arena, (hn_arena_mark){0});
    hn_tape tape = {0};
    hn_ctx c = {.arena = &g_arena, .tape = grad ? &tape : NULL, .mm = HN_MM_EXACT};
    t->x = hn_var_new(&c, t->rows, t->cols);
    memcpy(t->x->d, t->in[0], (size_t)t->n[0] * sizeof(float));
    t->x->rg = true;
    hn_var *y = t->f(&c, t);
    if (!y) {
        fprintf(stderr, "%s: op failed: %s\n", t->name, hn_errmsg());
        return NAN;
    }
    double L = 0;
    for (int64_t i = 0; i < y->rows * y->cols; i++) L += (double)y->d[i] * R[i];
    if (grad) {
        memcpy(hn_var_grad(&c, y), R, (size_t)(y->rows * y->cols) * sizeof(float));
        CHECK(hn_backward(&c) == HN_OK, "%s: backward", t->name);
    }
    return L;
}

static void fill(float *x, int64_t n, float scale, float offset, uint64_t seed) {
    hn_rng r;
    hn_rng_seed(&r, seed);
    for (int64_t i = 0; i < n; i++) x[i] = (2 * hn_rng_f32(&r) - 1) * scale + offset;
}

// The tape's gradient of every input against finite differences (of at most max_fd elements of each input,
// spread evenly, to keep the wide cases quick).
static void fd_check(fd *t, int64_t max_fd) {
    int64_t out_n = t->rows * t->cols;
    float *R = malloc((size_t)out_n * sizeof *R);
    fill(R, out_n, 1.0f, 0, 7);
    for (int i = 1; i < t->n_in; i++)
        if (t->gw[i]) memset(t->gw[i], 0, (size_t)t->n[i] * sizeof(float));
    fd_run(t, R, true);
    float *ana[3] = {0};
    for (int i = 0; i < t->n_in; i++) {
        const float *src = i == 0 ? t->x->g : t->gw[i];
        if (!src) continue;
        ana[i] = malloc((size_t)t->n[i] * sizeof(float));
        memcpy(ana[i], src, (size_t)t->n[i] * sizeof(float));
    }
    for (int i = 0; i < t->n_in; i++) {
        if (!ana[i]) continue;
        int64_t n = t->n[i], step = n > max_fd ? n / max_fd : 1;
        double maxdiff = 0, maxg = 0;
        for (int64_t j = 0; j < n; j += step) {
            float keep = t->in[i][j];
            t->in[i][j] = keep + (float)H_FD;
            double lp = fd_run(t, R, false);
            t->in[i][j] = keep - (float)H_FD;
            double lm = fd_run(t, R, false);
            t->in[i][j] = keep;
            double num = (lp - lm) / (2 * H_FD);
            double d = fabs(num - ana[i][j]);
            if (!(d <= maxdiff)) maxdiff = d;
            if (fabs(num) > maxg) maxg = fabs(num);
        }
        double tol = TOL_FD * (maxg > 1 ? maxg : 1);
        CHECK(maxdiff <= tol && maxg > 0, "%s: input %d: max |analytic - numeric| %.3g (tolerance %.3g, max |grad| "
              "%.3g)", t->name, i, maxdiff, tol, maxg);
        printf("  %-34s input %d (%lld values): max diff %.2e, max |grad| %.2e\n", t->name, i, (long long)n, maxdiff,
               maxg);
        free(ana[i]);
    }
    free(R);
}

static hn_var *f_ln(hn_ctx *c, fd *t) {
    return hn_op_layernorm(c, t->x, t->in[1], t->in[2], t->gw[1], t->gw[2], 1e-5f);
}
static hn_var *f_ln_nobias(hn_ctx *c, fd *t) { return hn_op_layernorm(c, t->x, t->in[1], NULL, t->gw[1], NULL, 1e-5f); }
static hn_var *f_gelu_tanh(hn_ctx *c, fd *t) { return hn_op_gelu(c, t->x, true); }
static hn_var *f_gelu_erf(hn_ctx *c, fd *t) { return hn_op_gelu(c, t->x, false); }
// LayerNorm then GELU then a plain LayerNorm (no weight, no bias): gradients chain through both ops.
static hn_var *f_chain(hn_ctx *c, fd *t) {
    hn_var *h = hn_op_gelu(c, hn_op_layernorm(c, t->x, t->in[1], t->in[2], t->gw[1], t->gw[2], 1e-5f), true);
    return hn_op_layernorm(c, h, NULL, NULL, NULL, NULL, 1e-6f);
}

static float *vec(int64_t n, float scale, float offset, uint64_t seed) {
    float *x = malloc((size_t)n * sizeof *x);
    fill(x, n, scale, offset, seed);
    return x;
}

static void free_fd(fd *t) {
    for (int i = 0; i < t->n_in; i++) free(t->in[i]), free(t->gw[i]);
}

static void test_fd(void) {
    // small rows (C not a multiple of the 16 lanes), a mean far from 0 (the two-pass variance)
    fd t = {"layernorm (w, b trainable)", 3, {vec(5 * 19, 2, 3, 1), vec(19, 1, 0.5f, 2), vec(19, 1, 0, 3)},
            {5 * 19, 19, 19}, 5, 19, .f = f_ln};
    t.gw[1] = calloc(19, 4), t.gw[2] = calloc(19, 4);
    fd_check(&t, 1 << 20);
    free_fd(&t);
    t = (fd){"layernorm (no bias, w trainable)", 2, {vec(4 * 40, 1, -1, 4), vec(40, 1, 1, 5)}, {4 * 40, 40}, 4, 40,
             .f = f_ln_nobias};
    t.gw[1] = calloc(40, 4);
    fd_check(&t, 1 << 20);
    free_fd(&t);
    t = (fd){"layernorm (w, b frozen)", 3, {vec(3 * 33, 1, 0, 6), vec(33, 1, 0, 7), vec(33, 1, 0, 8)},
             {3 * 33, 33, 33}, 3, 33, .f = f_ln};
    fd_check(&t, 1 << 20);
    free_fd(&t);
    // rows enough to be spread over threads (N * C >= 65536); a sample of the elements by finite differences
    t = (fd){"layernorm (threaded, 96 x 768)", 3, {vec(96 * 768, 1, 0.2f, 9), vec(768, 1, 1, 10), vec(768, 1, 0, 11)},
             {96 * 768, 768, 768}, 96, 768, .f = f_ln};
    t.gw[1] = calloc(768, 4), t.gw[2] = calloc(768, 4);
    fd_check(&t, 40);
    free_fd(&t);
    // GELU over [-6, 6] (both tails), a length that leaves a partial chunk
    t = (fd){"gelu tanh", 1, {vec(3 * 101, 6, 0, 12)}, {3 * 101}, 3, 101, .f = f_gelu_tanh};
    fd_check(&t, 1 << 20);
    free_fd(&t);
    t = (fd){"gelu erf", 1, {vec(3 * 101, 6, 0, 13)}, {3 * 101}, 3, 101, .f = f_gelu_erf};
    fd_check(&t, 1 << 20);
    free_fd(&t);
    t = (fd){"gelu tanh (threaded, 70000)", 1, {vec(70 * 1000, 4, 0, 14)}, {70 * 1000}, 70, 1000, .f = f_gelu_tanh};
    fd_check(&t, 60);
    free_fd(&t);
    t = (fd){"gelu erf (threaded, 70000)", 1, {vec(70 * 1000, 4, 0, 15)}, {70 * 1000}, 70, 1000, .f = f_gelu_erf};
    fd_check(&t, 60);
    free_fd(&t);
    t = (fd){"layernorm -> gelu -> layernorm", 3, {vec(4 * 24, 1, 0, 16), vec(24, 1, 1, 17), vec(24, 1, 0, 18)},
             {4 * 24, 24, 24}, 4, 24, .f = f_chain};
    t.gw[1] = calloc(24, 4), t.gw[2] = calloc(24, 4);
    fd_check(&t, 1 << 20);
    free_fd(&t);
}

// Forward values against double-precision formulas (PyTorch's definitions), and errors.
static void test_forward(void) {
    hn_arena a = {0};
    hn_ctx c = {.arena = &a, .mm = HN_MM_EXACT};
    int64_t N = 7, C = 45;
    float *x = vec(N * C, 3, 100, 20), *w = vec(C, 1, 1, 21), *b = vec(C, 1, 0, 22);
    hn_var *xv = hn_var_wrap(&c, x, N, C, false);
    hn_var *y = hn_op_layernorm(&c, xv, w, b, NULL, NULL, 1e-5f);
    CHECK(y != NULL, "layernorm: %s", hn_errmsg());
    double md = 0;
    for (int64_t i = 0; y && i < N; i++) {
        double m = 0, v = 0;
        for (int64_t j = 0; j < C; j++) m += x[i * C + j];
        m /= C;
        for (int64_t j = 0; j < C; j++) v += (x[i * C + j] - m) * (x[i * C + j] - m);
        v /= C;
        for (int64_t j = 0; j < C; j++) {
            double r = (x[i * C + j] - m) / sqrt(v + 1e-5) * w[j] + b[j];
            md = fmax(md, fabs(r - y->d[i * C + j]));
        }
    }
    // float rows of mean 100 carry about 100 * 6e-8 of rounding in the mean; divided by a spread of ~1.7, times w
    CHECK(md < 5e-5, "layernorm (rows of mean 100) vs double reference: %g", md);
    printf("  layernorm forward (mean 100, spread 3) vs double: max diff %.2e\n", md);

    float *g = vec(N * C, 8, 0, 23);
    hn_var *gv = hn_var_wrap(&c, g, N, C, false);
    hn_var *yt = hn_op_gelu(&c, gv, true), *ye = hn_op_gelu(&c, gv, false);
    CHECK(yt && ye, "gelu: %s", hn_errmsg());
    double mt = 0, me = 0;
    for (int64_t i = 0; yt && ye && i < N * C; i++) {
        double v = g[i];
        double rt = 0.5 * v * (1 + tanh(sqrt(2 / M_PI) * (v + 0.044715 * v * v * v)));
        double re = 0.5 * v * (1 + erf(v / sqrt(2)));
        mt = fmax(mt, fabs(rt - yt->d[i]) / fmax(1, fabs(rt)));
        me = fmax(me, fabs(re - ye->d[i]) / fmax(1, fabs(re)));
    }
    CHECK(mt < 1e-6 && me < 1e-6, "gelu vs double: tanh %g, erf %g", mt, me);
    printf("  gelu forward on [-8, 8] vs double: tanh %.2e, erf %.2e\n", mt, me);

    float gb[4];
    hn_tape tape = {0};
    hn_ctx ct = {.arena = &a, .tape = &tape, .mm = HN_MM_EXACT};
    CHECK(hn_op_layernorm(&ct, xv, w, NULL, NULL, gb, 1e-5f) == NULL && ct.err == HN_ERR_ARG,
          "a trainable bias without values is refused");
    CHECK(hn_op_gelu(&ct, xv, true) == NULL, "ops after an error return NULL");
    free(x), free(w), free(b), free(g);
    hn_arena_deinit(&a);
}

// Rows are independent and each is summed in a fixed order: 1 thread and 2 give the same bits (the EXACT path's
// thread invariance), forward and backward, on sizes that take the threaded loops.
static void test_threads(void) {
    int64_t N = 96, C = 768;
    float *x = vec(N * C, 1, 0.3f, 30), *w = vec(C, 1, 1, 31), *b = vec(C, 1, 0, 32), *R = vec(N * C, 1, 0, 33);
    float *out[2][4] = {{0}};
    for (int k = 0; k < 2; k++) {
        hn_threads_set(k + 1);
        hn_arena a = {0};
        hn_tape tape = {0};
        hn_ctx c = {.arena = &a, .tape = &tape, .mm = HN_MM_EXACT};
        float *gw = calloc(C, 4), *gb = calloc(C, 4);
        hn_var *xv = hn_var_wrap(&c, x, N, C, true);
        hn_var *y = hn_op_gelu(&c, hn_op_layernorm(&c, xv, w, b, gw, gb, 1e-5f), true);
        hn_var *y2 = hn_op_gelu(&c, y, false);
        if (!y2) break;
        memcpy(hn_var_grad(&c, y2), R, (size_t)(N * C) * 4);
        CHECK(hn_backward(&c) == HN_OK, "backward");
        out[k][0] = malloc((size_t)(N * C) * 4), out[k][1] = malloc((size_t)(N * C) * 4);
        memcpy(out[k][0], y2->d, (size_t)(N * C) * 4);
        memcpy(out[k][1], xv->g, (size_t)(N * C) * 4);
        out[k][2] = gw, out[k][3] = gb;
        hn_arena_deinit(&a);
    }
    hn_threads_set(2);
    bool same = out[1][0];
    for (int i = 0; same && i < 4; i++) same = !memcmp(out[0][i], out[1][i], (size_t)(i < 2 ? N * C : C) * 4);
    CHECK(same, "1 and 2 threads give the same bits (y, dx, dw, db)");
    printf("  layernorm + gelu forward and backward: 1 thread and 2 give identical bits: %s\n", same ? "yes" : "no");
    for (int k = 0; k < 2; k++)
        for (int i = 0; i < 4; i++) free(out[k][i]);
    free(x), free(w), free(b), free(R);
}

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    hn_threads_set(2);
    test_forward();
    test_fd();
    test_threads();
    hn_arena_deinit(&g_arena);
    return test_done();
}
