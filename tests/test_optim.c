// tests/test_optim.c — AdamW against torch's formulas (weight decay, bias correction, no_decay) evaluated here in
// double precision and against numbers torch printed; schedules against transformers; global-norm clipping.
#include "tests/test.h"
#include "train/optim.h"

#include <math.h>
#include <string.h>

static bool close_rel(double a, double b, double rel) { return fabs(a - b) <= rel * fmax(fabs(b), 1e-30); }

static hn_param make_param(const char *name, float *data, float *grad, int64_t n, bool no_decay) {
    hn_param p = {.data = data, .grad = grad, .n = n, .ndim = 1, .ne = {n, 1}, .no_decay = no_decay};
    snprintf(p.name, sizeof p.name, "%s", name);
    return p;
}

// One AdamW update in double, written from torch/optim/adamw.py's single-tensor path.
static void ref_adamw(double *x, double *m, double *v, const double *g, int n, int t, double lr, double b1, double b2,
                      double eps, double wd) {
    double bc1 = 1 - pow(b1, t), bc2 = 1 - pow(b2, t);
    for (int j = 0; j < n; j++) {
        x[j] *= 1 - lr * wd;
        m[j] = b1 * m[j] + (1 - b1) * g[j];
        v[j] = b2 * v[j] + (1 - b2) * g[j] * g[j];
        x[j] -= lr / bc1 * m[j] / (sqrt(v[j]) / sqrt(bc2) + eps);
    }
}

static void test_adamw(void) {
    // Two 3-element params, the second without weight decay; four steps with varying lr and grads.
    float px[3] = {0.5f, -1.25f, 2.0f}, pg[3], qx[3] = {0.3f, -0.7f, 1e-3f}, qg[3];
    hn_param p = make_param("p", px, pg, 3, false), q = make_param("q", qx, qg, 3, true);
    hn_param_list l = {0};
    CHECK(hn_param_list_add(&l, &p) == HN_OK && hn_param_list_add(&l, &q) == HN_OK, "add");
    CHECK(hn_param_list_add(&l, &p) == HN_ERR_ARG, "a name twice is refused");
    hn_adamw o;
    hn_adamw_params ap = {.beta1 = 0.8, .beta2 = 0.95, .eps = 1e-6, .weight_decay = 0.1};
    CHECK(hn_adamw_init(&o, &l, &ap) == HN_OK, "init");
    CHECK(o.n_total == 6 && o.off[1] == 3, "layout");
    double rx[3] = {0.5, -1.25, 2.0}, rm[3] = {0}, rv[3] = {0}, sx[3] = {0.3, -0.7, 1e-3}, sm[3] = {0}, sv[3] = {0};
    const double gs[4][3] = {{0.1, -0.2, 0.3}, {1.5, 0.0, -2.5}, {-0.01, 0.02, 1e-4}, {3.0, -3.0, 0.5}};
    const double lrs[4] = {0.05, 0.04, 0.03, 0.02};
    for (int t = 0; t < 4; t++) {
        double hg[3];
        for (int j = 0; j < 3; j++) pg[j] = (float)gs[t][j], qg[j] = (float)(gs[t][j] * 0.5), hg[j] = gs[t][j] * 0.5;
        hn_adamw_step(&o, lrs[t]);
        ref_adamw(rx, rm, rv, gs[t], 3, t + 1, lrs[t], 0.8, 0.95, 1e-6, 0.1);
        ref_adamw(sx, sm, sv, hg, 3, t + 1, lrs[t], 0.8, 0.95, 1e-6, 0.0);
        for (int j = 0; j < 3; j++) {
            CHECK(close_rel(px[j], rx[j], 2e-6), "step %d p[%d]: %.9g vs %.9g", t + 1, j, px[j], rx[j]);
            CHECK(close_rel(qx[j], sx[j], 2e-6), "step %d q[%d]: %.9g vs %.9g", t + 1, j, qx[j], sx[j]);
            CHECK(close_rel(o.m[j], rm[j], 2e-6) && close_rel(o.v[j], rv[j], 2e-6), "moments step %d", t + 1);
        }
    }
    CHECK(o.t == 4, "step count %lld", (long long)o.t);
    // The same four steps in torch 2.15.0 (torch.optim.AdamW, two param groups, weight_decay 0 on the second).
    const float tp[3] = {0.3775692880153656f, -1.1325799226760864f, 1.9706411361694336f};
    const float tq[3] = {0.1838873326778412f, -0.5993925333023071f, -0.0007793735712766647f};
    for (int j = 0; j < 3; j++) {
        // fp32 against fp32 in another order: a few ulps of the values that were added (~0.05 lr steps)
        CHECK(fabs(px[j] - tp[j]) <= 1e-7 + 1e-6 * fabsf(tp[j]), "torch p[%d]: %.9g vs %.9g", j, px[j], tp[j]);
        CHECK(fabs(qx[j] - tq[j]) <= 1e-7 + 1e-6 * fabsf(tq[j]), "torch q[%d]: %.9g vs %.9g", j, qx[j], tq[j]);
    }
    hn_adamw_deinit(&o);

    // Zero gradient, zero state: only the decay moves a weight (m = v = 0, so the Adam term is 0 / eps = 0).
    float zx[2] = {1.0f, -2.0f}, zg[2] = {0, 0};
    hn_param z = make_param("z", zx, zg, 2, false);
    hn_param_list lz = {0};
    hn_param_list_add(&lz, &z);
    ap.weight_decay = 0.5;
    hn_adamw_init(&o, &lz, &ap);
    hn_adamw_step(&o, 0.1);
    CHECK(zx[0] == 0.95f && zx[1] == -1.9f, "pure decay: %g %g", zx[0], zx[1]);
    hn_adamw_deinit(&o);
    hn_param_list_deinit(&lz);

    // A large param (the threaded path) gives the same bits as element-by-element updates of a small one.
    enum { N = 100003 };
    float *bx = malloc(N * sizeof(float)), *bg = malloc(N * sizeof(float));
    for (int j = 0; j < N; j++) bx[j] = sinf((float)j), bg[j] = cosf((float)j * 0.7f);
    float cx[3] = {bx[N - 3], bx[N - 2], bx[N - 1]}, cg[3] = {bg[N - 3], bg[N - 2], bg[N - 1]};
    hn_param big = make_param("big", bx, bg, N, false), small = make_param("small", cx, cg, 3, false);
    hn_param_list lb = {0}, ls = {0};
    hn_param_list_add(&lb, &big);
    hn_param_list_add(&ls, &small);
    hn_adamw ob, os;
    hn_adamw_init(&ob, &lb, &ap);
    hn_adamw_init(&os, &ls, &ap);
    for (int t = 0; t < 3; t++) hn_adamw_step(&ob, 1e-3), hn_adamw_step(&os, 1e-3);
    CHECK(!memcmp(cx, bx + N - 3, sizeof cx), "threaded update equals the serial one");
    hn_adamw_deinit(&ob);
    hn_adamw_deinit(&os);
    hn_param_list_deinit(&lb);
    hn_param_list_deinit(&ls);
    free(bx);
    free(bg);
    hn_param_list_deinit(&l);
    hn_adamw_params d = hn_adamw_default_params();
    CHECK(d.beta1 == 0.9 && d.beta2 == 0.999 && d.eps == 1e-8 && d.weight_decay == 0.01, "torch's defaults");
}

static void test_schedules(void) {
    // transformers 5.24.0: get_{cosine,linear,constant}_schedule_with_warmup(opt, 7, 50) with lr 3e-4, the lr
    // before optimizer steps 0, 1, 3, 6, 7, 8, 20, 28, 49, 50, 51.
    const int64_t at[11] = {0, 1, 3, 6, 7, 8, 20, 28, 49, 50, 51};
    const double cosv[11] = {0.0, 4.285714285714285e-05, 0.00012857142857142855, 0.0002571428571428571, 0.0003,
                             0.0002995998425495327, 0.00023727883733369292, 0.00015547830345864885,
                             4.0015745046725336e-07, 0.0, 4.0015745046725336e-07};
    const double linv[11] = {0.0, 4.285714285714285e-05, 0.00012857142857142855, 0.0002571428571428571, 0.0003,
                             0.00029302325581395347, 0.00020930232558139534, 0.00015348837209302324,
                             6.976744186046511e-06, 0.0, 0.0};
    hn_lr_schedule c = {HN_SCHED_COSINE, 3e-4, 7, 50}, li = {HN_SCHED_LINEAR, 3e-4, 7, 50},
                   k = {HN_SCHED_CONSTANT, 3e-4, 7, 50};
    for (int i = 0; i < 11; i++) {
        double a = hn_lr_at(&c, at[i]), b = hn_lr_at(&li, at[i]), e = hn_lr_at(&k, at[i]);
        CHECK(fabs(a - cosv[i]) <= 1e-15, "cosine at %lld: %.17g vs %.17g", (long long)at[i], a, cosv[i]);
        CHECK(fabs(b - linv[i]) <= 1e-15, "linear at %lld: %.17g vs %.17g", (long long)at[i], b, linv[i]);
        double ke = at[i] < 7 ? linv[i] : 3e-4;
        CHECK(fabs(e - ke) <= 1e-15, "constant at %lld: %.17g", (long long)at[i], e);
    }
    hn_lr_schedule nw = {HN_SCHED_COSINE, 1.0, 0, 10};
    CHECK(hn_lr_at(&nw, 0) == 1.0 && fabs(hn_lr_at(&nw, 5) - 0.5) < 1e-15, "no warmup starts at the peak");
    CHECK(hn_warmup_steps(5, 0, 100) == 5 && hn_warmup_steps(0, 0.1, 95) == 10 && hn_warmup_steps(0, 0, 9) == 0,
          "warmup steps from a ratio (ceil)");
}

static void test_clip(void) {
    float ax[2] = {0}, ag[2] = {3.0f, 0.0f}, bx[1] = {0}, bg[1] = {4.0f};
    hn_param a = make_param("a", ax, ag, 2, false), b = make_param("b", bx, bg, 1, false);
    hn_param_list l = {0};
    hn_param_list_add(&l, &a);
    hn_param_list_add(&l, &b);
    CHECK(hn_grad_clip(&l, 0) == 5.0 && ag[0] == 3.0f && bg[0] == 4.0f, "0: no clipping, the norm reported");
    CHECK(hn_grad_clip(&l, 10) == 5.0 && ag[0] == 3.0f, "under the limit: unchanged");
    double n = hn_grad_clip(&l, 1.0);
    double c = 1.0 / (5.0 + 1e-6);
    CHECK(n == 5.0 && ag[0] == (float)3.0f * (float)c && bg[0] == 4.0f * (float)c, "clipped to 1: %g %g", ag[0], bg[0]);
    double after = hn_grad_clip(&l, 0);
    CHECK(fabs(after - 1.0) < 1e-6, "norm after clipping %.9g", after);
    bg[0] = NAN;
    CHECK(isnan(hn_grad_clip(&l, 1.0)) && ag[0] == (float)(3.0 * c), "a NaN grad: norm NaN, nothing scaled");
    bg[0] = INFINITY;
    CHECK(isinf(hn_grad_clip(&l, 1.0)), "inf grad: inf norm");
    hn_param_list_deinit(&l);

    // Many blocks: the threaded sum equals a plain double sum in block order, whatever the thread count.
    enum { N = 300001 };
    float *g = malloc(N * sizeof(float)), *x = calloc(N, sizeof(float));
    double ref = 0;
    for (int j = 0; j < N; j++) g[j] = (float)((j % 17) - 8) * 0.125f;
    for (int b = 0; b < N; b += 4096) {
        double s = 0;
        for (int j = b; j < N && j < b + 4096; j++) s += (double)g[j] * g[j];
        ref += s;
    }
    hn_param big = make_param("big", x, g, N, false);
    hn_param_list lb = {0};
    hn_param_list_add(&lb, &big);
    int th = hn_threads_get();
    hn_threads_set(1);
    double n1 = hn_grad_clip(&lb, 0);
    hn_threads_set(2);
    double n2 = hn_grad_clip(&lb, 0);
    hn_threads_set(th);
    CHECK(n1 == sqrt(ref) && n2 == n1, "block sums: %.17g %.17g %.17g", n1, n2, sqrt(ref));
    hn_param_list_deinit(&lb);
    free(g);
    free(x);
}

int main(void) {
    test_adamw();
    test_schedules();
    test_clip();
    return test_done();
}
