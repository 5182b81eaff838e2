// train/cls_feature.c — feature-based classification (issue 6): the model stays frozen and gives each text one
// vector (model/embed.h: the model's own pooling and normalisation), and a multinomial logistic regression on those
// vectors is the classifier.
//
// The regression. Features are standardised (each dimension to mean 0 and standard deviation 1 over the training
// set): L2-normalised sentence embeddings spread their variance unevenly and thinly over the dimensions, so without
// it one penalty would mean very different things per model, and the problem would be badly conditioned. Then
// weights W (K, d) and biases b (K) minimise sklearn's LogisticRegression objective with its default C = 1:
//     sum over examples of the cross-entropy of softmax(W x + b)  +  1/2 ||W||^2   (b is not penalised),
// by full-batch L-BFGS (10 pairs, backtracking line search with Armijo's condition) in double precision, from
// zero, so that a run is a deterministic function of the data. It stops when the largest gradient component falls
// below 1e-5 times the number of examples, or after 500 iterations.
//
// The cache. Embedding the training texts is the whole cost of this method, so train() keeps them in
// RUN_DIR/feature_embeddings.safetensors ("embeddings": (n, d)) with metadata hone.texts_hash (FNV-1a 64 over the
// texts), hone.base_hash (io/adapter.h's content hash of the model), hone.pool and hone.normalize; a rerun into
// the same directory with the same texts and model reads them back instead.
//
// Run directory: DIR/feature.safetensors: "weight" (K, d), "bias" (K), "mean" (d), "scale" (d) (x' = (x - mean)
// * scale), metadata hone.pool and hone.normalize.
#include "io/adapter.h"
#include "io/safetensors.h"
#include "model/embed.h"
#include "train/classify.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define FEAT_FILE "feature.safetensors"
#define FEAT_CACHE "feature_embeddings.safetensors"
#define LBFGS_M 10
#define LBFGS_ITERS 500

typedef struct {
    int n_classes, dim;
    float *w, *b, *mean, *scale; // (K, d), (K), (d), (d)
    hn_pool pool;
    bool normalize;
} feat_state;

static void feat_free(void *p) {
    feat_state *st = p;
    if (!st) return;
    free(st->w), free(st->b), free(st->mean), free(st->scale);
    free(st);
}

static hn_status feat_applies(const hn_model *m) {
    if (!m->tok) return hn_fail(HN_ERR_UNSUPPORTED, "%s: feature-based needs the model's tokenizer", m->path);
    return HN_OK;
}

static char *join(const char *dir, const char *name) {
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = hn_alloc(n, "path");
    if (p) snprintf(p, n, "%s/%s", dir, name);
    return p;
}

static uint64_t texts_hash(const hn_cls_data *d) {
    uint64_t h = 1469598103934665603ull;
    for (int i = 0; i < d->n; i++)
        for (const unsigned char *p = (const unsigned char *)d->texts[i];; p++) {
            h = (h ^ *p) * 1099511628211ull; // the NUL too: it separates the texts
            if (!*p) break;
        }
    return h;
}

// Reads the cached embeddings into x (n, d) if the cache matches; false otherwise (absent, stale or damaged).
static bool cache_read(const char *path, const char *th, const char *bh, const char *pool, const char *norm, int n,
                       int d, float *x) {
    hn_safetensors sf;
    if (hn_safetensors_open(&sf, path)) return false;
    const hn_tensor *t = hn_safetensors_tensor(&sf, "embeddings");
    const char *a = hn_safetensors_meta(&sf, "hone.texts_hash"), *b = hn_safetensors_meta(&sf, "hone.base_hash");
    const char *c = hn_safetensors_meta(&sf, "hone.pool"), *e = hn_safetensors_meta(&sf, "hone.normalize");
    bool ok = t && t->type == HN_F32 && t->ne[0] == d && t->ne[1] == n && a && b && c && e && !strcmp(a, th) &&
              !strcmp(b, bh) && !strcmp(c, pool) && !strcmp(e, norm);
    if (ok) memcpy(x, t->data, (size_t)n * d * sizeof *x);
    hn_safetensors_close(&sf);
    return ok;
}

static hn_status cache_write(const char *dir, const char *path, const char *th, const char *bh, const char *pool,
                             const char *norm, int n, int d, const float *x) {
    hn_status s0 = hn_mkdir_p(dir);
    if (s0) return s0;
    hn_safetensors_writer *w = hn_safetensors_writer_create();
    if (!w) return HN_ERR_NOMEM;
    int64_t ne[2] = {d, n};
    hn_status s = hn_safetensors_writer_add(w, "embeddings", HN_F32, 2, ne, x);
    if (!s) s = hn_safetensors_writer_set_meta(w, "hone.texts_hash", th);
    if (!s) s = hn_safetensors_writer_set_meta(w, "hone.base_hash", bh);
    if (!s) s = hn_safetensors_writer_set_meta(w, "hone.pool", pool);
    if (!s) s = hn_safetensors_writer_set_meta(w, "hone.normalize", norm);
    if (!s) s = hn_safetensors_writer_write(w, path);
    hn_safetensors_writer_destroy(w);
    return s;
}

// x (n, d) in about 20 parts, each reported to o->progress (the bake-off's display); a part is large enough that
// its batches still group texts of similar lengths.
static hn_status embed_parts(hn_model *m, const hn_cls_data *d, const hn_cls_options *o, hn_pool pool, bool norm,
                             float *x) {
    int part = d->n / 20 > 64 ? d->n / 20 : 64;
    hn_status s = HN_OK;
    for (int i = 0; i < d->n && !s; i += part) {
        int k = d->n - i < part ? d->n - i : part;
        s = hn_model_embed_texts(m, (const char *const *)d->texts + i, k, pool, norm, x + (size_t)i * m->hp.n_embd);
        if (!s) hn_cls_progress(o, i + k, d->n);
    }
    return s;
}

// The training texts' embeddings x (n, d), from the run directory's cache when it holds them.
static hn_status train_embeddings(hn_model *m, const hn_cls_data *d, const hn_cls_options *o, hn_pool pool,
                                  bool norm, float *x) {
    const char *dir = o->run_dir;
    if (!dir) return embed_parts(m, d, o, pool, norm, x);
    uint64_t bh = 0;
    hn_status s = hn_adapter_base_hash(&m->gguf, &bh);
    if (s) return s;
    char th_s[32], bh_s[32];
    snprintf(th_s, sizeof th_s, "%016llx", (unsigned long long)texts_hash(d));
    snprintf(bh_s, sizeof bh_s, "%016llx", (unsigned long long)bh);
    char *path = join(dir, FEAT_CACHE);
    if (!path) return HN_ERR_NOMEM;
    const char *pn = hn_pool_name(pool), *ns = norm ? "true" : "false";
    if (cache_read(path, th_s, bh_s, pn, ns, d->n, m->hp.n_embd, x)) {
        hn_info("feature: %d embeddings from %s", d->n, path);
    } else if (!(s = embed_parts(m, d, o, pool, norm, x))) {
        // A cache that cannot be written costs a rerun its time, not this run its result.
        if (cache_write(dir, path, th_s, bh_s, pn, ns, d->n, m->hp.n_embd, x))
            hn_warn("feature: embeddings not cached: %s", hn_errmsg());
    }
    free(path);
    return s;
}

// ---- multinomial logistic regression

typedef struct {
    const float *x; // (n, d), standardised
    const int32_t *y;
    int n, d, k;
    double *z; // (k) scratch
} lr_problem;

// f(theta) and its gradient g; theta = W (k, d) row-major, then b (k).
static double lr_eval(const lr_problem *p, const double *th, double *g) {
    int n = p->n, d = p->d, k = p->k;
    const double *W = th, *b = th + (size_t)k * d;
    double f = 0;
    memset(g, 0, ((size_t)k * d + k) * sizeof *g);
    for (int i = 0; i < n; i++) {
        const float *xi = p->x + (size_t)i * d;
        double mx = -INFINITY, sum = 0;
        for (int c = 0; c < k; c++) {
            double z = b[c];
            const double *wc = W + (size_t)c * d;
            for (int j = 0; j < d; j++) z += wc[j] * xi[j];
            p->z[c] = z;
            mx = z > mx ? z : mx;
        }
        for (int c = 0; c < k; c++) sum += exp(p->z[c] - mx);
        double lse = mx + log(sum);
        f += lse - p->z[p->y[i]];
        for (int c = 0; c < k; c++) {
            double r = exp(p->z[c] - lse) - (c == p->y[i]); // p - onehot
            double *gc = g + (size_t)c * d;
            for (int j = 0; j < d; j++) gc[j] += r * xi[j];
            g[(size_t)k * d + c] += r;
        }
    }
    for (size_t j = 0; j < (size_t)k * d; j++) f += 0.5 * W[j] * W[j], g[j] += W[j];
    return f;
}

static double dotd(const double *a, const double *b, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++) s += a[i] * b[i];
    return s;
}

// Minimises lr_eval from th = 0 by L-BFGS; th (k d + k) receives the result.
static hn_status lbfgs(const lr_problem *p, double *th) {
    size_t n = (size_t)p->k * p->d + p->k;
    double *g = hn_calloc(n, sizeof *g, "l-bfgs"), *dir = hn_calloc(n, sizeof *dir, "l-bfgs");
    double *th2 = hn_calloc(n, sizeof *th2, "l-bfgs"), *g2 = hn_calloc(n, sizeof *g2, "l-bfgs");
    double *S = hn_calloc(n * LBFGS_M, sizeof *S, "l-bfgs"), *Y = hn_calloc(n * LBFGS_M, sizeof *Y, "l-bfgs");
    double rho[LBFGS_M], alpha[LBFGS_M];
    if (!g || !dir || !th2 || !g2 || !S || !Y) {
        free(g), free(dir), free(th2), free(g2), free(S), free(Y);
        return HN_ERR_NOMEM;
    }
    memset(th, 0, n * sizeof *th);
    double f = lr_eval(p, th, g), tol = 1e-5 * p->n;
    int have = 0, next = 0;
    for (int it = 0; it < LBFGS_ITERS; it++) {
        double gmax = 0;
        for (size_t j = 0; j < n; j++) gmax = fabs(g[j]) > gmax ? fabs(g[j]) : gmax;
        if (gmax < tol) break;
        // Two-loop recursion: dir = -H g.
        for (size_t j = 0; j < n; j++) dir[j] = -g[j];
        for (int h = 0; h < have; h++) {
            int i = (next - 1 - h + LBFGS_M) % LBFGS_M;
            alpha[i] = rho[i] * dotd(S + i * n, dir, n);
            for (size_t j = 0; j < n; j++) dir[j] -= alpha[i] * Y[i * n + j];
        }
        double gamma = 1.0;
        if (have) {
            int i = (next - 1 + LBFGS_M) % LBFGS_M;
            gamma = dotd(S + i * n, Y + i * n, n) / dotd(Y + i * n, Y + i * n, n);
        } else {
            gamma = 1.0 / sqrt(dotd(g, g, n)); // first step: unit length
        }
        for (size_t j = 0; j < n; j++) dir[j] *= gamma;
        for (int h = have - 1; h >= 0; h--) {
            int i = (next - 1 - h + LBFGS_M) % LBFGS_M;
            double beta = rho[i] * dotd(Y + i * n, dir, n);
            for (size_t j = 0; j < n; j++) dir[j] += (alpha[i] - beta) * S[i * n + j];
        }
        double slope = dotd(g, dir, n);
        if (slope >= 0) { // not a descent direction (curvature lost): restart from steepest descent
            for (size_t j = 0; j < n; j++) dir[j] = -g[j] / sqrt(dotd(g, g, n));
            slope = dotd(g, dir, n);
            have = 0;
        }
        double step = 1, f2 = f;
        int tries = 0;
        for (; tries < 40; tries++, step *= 0.5) {
            for (size_t j = 0; j < n; j++) th2[j] = th[j] + step * dir[j];
            f2 = lr_eval(p, th2, g2);
            if (f2 <= f + 1e-4 * step * slope) break;
        }
        if (tries == 40) break; // no decrease left at double precision
        double *s = S + next * n, *y = Y + next * n;
        for (size_t j = 0; j < n; j++) s[j] = th2[j] - th[j], y[j] = g2[j] - g[j];
        double sy = dotd(s, y, n);
        if (sy > 1e-12) {
            rho[next] = 1 / sy;
            next = (next + 1) % LBFGS_M;
            if (have < LBFGS_M) have++;
        }
        bool flat = f - f2 < 1e-12 * (fabs(f) + 1);
        memcpy(th, th2, n * sizeof *th), memcpy(g, g2, n * sizeof *g);
        f = f2;
        if (flat) break;
    }
    free(g), free(dir), free(th2), free(g2), free(S), free(Y);
    return HN_OK;
}

static void standardise(const feat_state *st, float *x, int n) {
    for (int i = 0; i < n; i++)
        for (int j = 0; j < st->dim; j++) {
            float *v = x + (size_t)i * st->dim + j;
            *v = (*v - st->mean[j]) * st->scale[j];
        }
}

static hn_status feat_train(hn_model *m, const hn_cls_data *train, const hn_cls_data *val, const hn_cls_options *o,
                            void **state) {
    (void)val;
    *state = NULL;
    hn_status s = feat_applies(m);
    if (s) return s;
    if (train->n < 1 || train->n_classes < 2)
        return hn_fail(HN_ERR_ARG, "feature: %d examples of %d classes: nothing to learn", train->n, train->n_classes);
    int n = train->n, d = m->hp.n_embd, k = train->n_classes;
    feat_state *st = hn_calloc(1, sizeof *st, "feature state");
    float *x = hn_calloc((size_t)n * d, sizeof *x, "feature embeddings");
    double *th = hn_calloc((size_t)k * d + k, sizeof *th, "feature weights"), *z = hn_calloc(k, sizeof *z, "scratch");
    if (st) {
        st->n_classes = k, st->dim = d;
        st->pool = hn_model_default_pool(m), st->normalize = hn_model_default_normalize(m);
        st->w = hn_calloc((size_t)k * d, sizeof *st->w, "feature weights");
        st->b = hn_calloc(k, sizeof *st->b, "feature biases");
        st->mean = hn_calloc(d, sizeof *st->mean, "feature mean");
        st->scale = hn_calloc(d, sizeof *st->scale, "feature scale");
    }
    if (!st || !x || !th || !z || !st->w || !st->b || !st->mean || !st->scale) s = HN_ERR_NOMEM;
    if (!s) s = train_embeddings(m, train, o, st->pool, st->normalize, x);
    if (!s) {
        for (int j = 0; j < d; j++) {
            double sum = 0, sq = 0;
            for (int i = 0; i < n; i++) sum += x[(size_t)i * d + j];
            double mu = sum / n;
            for (int i = 0; i < n; i++) sq += (x[(size_t)i * d + j] - mu) * (x[(size_t)i * d + j] - mu);
            double sd = sqrt(sq / n);
            st->mean[j] = (float)mu, st->scale[j] = sd > 1e-12 ? (float)(1 / sd) : 0.0f; // a constant: ignored
        }
        standardise(st, x, n);
        lr_problem p = {x, train->labels, n, d, k, z};
        s = lbfgs(&p, th);
    }
    if (!s) {
        for (size_t j = 0; j < (size_t)k * d; j++) st->w[j] = (float)th[j];
        for (int c = 0; c < k; c++) st->b[c] = (float)th[(size_t)k * d + c];
    }
    free(x), free(th), free(z);
    if (s) return feat_free(st), s;
    *state = st;
    return HN_OK;
}

static hn_status feat_predict(hn_model *m, void *state, const char *const *texts, int n, float *probs) {
    feat_state *st = state;
    if (st->dim != m->hp.n_embd)
        return hn_fail(HN_ERR_ARG, "feature: the classifier takes %d-dimensional embeddings, the model gives %d",
                       st->dim, m->hp.n_embd);
    if (n <= 0) return HN_OK;
    int d = st->dim, k = st->n_classes;
    float *x = hn_calloc((size_t)n * d, sizeof *x, "feature embeddings");
    if (!x) return HN_ERR_NOMEM;
    hn_status s = hn_model_embed_texts(m, texts, n, st->pool, st->normalize, x);
    if (!s) {
        standardise(st, x, n);
        for (int i = 0; i < n; i++) {
            float *pi = probs + (size_t)i * k;
            double mx = -INFINITY, z = 0;
            for (int c = 0; c < k; c++) {
                double v = st->b[c];
                for (int j = 0; j < d; j++) v += (double)st->w[(size_t)c * d + j] * x[(size_t)i * d + j];
                pi[c] = (float)v;
                mx = v > mx ? v : mx;
            }
            for (int c = 0; c < k; c++) z += exp(pi[c] - mx);
            for (int c = 0; c < k; c++) pi[c] = (float)(exp(pi[c] - mx) / z);
        }
    }
    free(x);
    return s;
}

static hn_status feat_save(const hn_model *m, void *state, const char *dir) {
    (void)m;
    feat_state *st = state;
    hn_safetensors_writer *w = hn_safetensors_writer_create();
    if (!w) return HN_ERR_NOMEM;
    int64_t ne_w[2] = {st->dim, st->n_classes}, ne_b[1] = {st->n_classes}, ne_d[1] = {st->dim};
    hn_status s = hn_safetensors_writer_add(w, "weight", HN_F32, 2, ne_w, st->w);
    if (!s) s = hn_safetensors_writer_add(w, "bias", HN_F32, 1, ne_b, st->b);
    if (!s) s = hn_safetensors_writer_add(w, "mean", HN_F32, 1, ne_d, st->mean);
    if (!s) s = hn_safetensors_writer_add(w, "scale", HN_F32, 1, ne_d, st->scale);
    if (!s) s = hn_safetensors_writer_set_meta(w, "hone.pool", hn_pool_name(st->pool));
    if (!s) s = hn_safetensors_writer_set_meta(w, "hone.normalize", st->normalize ? "true" : "false");
    char *path = s ? NULL : join(dir, FEAT_FILE);
    if (!s && !path) s = HN_ERR_NOMEM;
    if (!s) s = hn_safetensors_writer_write(w, path);
    free(path);
    hn_safetensors_writer_destroy(w);
    return s;
}

static hn_status feat_load(hn_model *m, const char *dir, void **state) {
    *state = NULL;
    char *path = join(dir, FEAT_FILE);
    if (!path) return HN_ERR_NOMEM;
    hn_safetensors sf;
    hn_status s = hn_safetensors_open(&sf, path);
    if (s) return free(path), s;
    const hn_tensor *w = hn_safetensors_tensor(&sf, "weight"), *b = hn_safetensors_tensor(&sf, "bias");
    const hn_tensor *mu = hn_safetensors_tensor(&sf, "mean"), *sc = hn_safetensors_tensor(&sf, "scale");
    const char *pn = hn_safetensors_meta(&sf, "hone.pool"), *ns = hn_safetensors_meta(&sf, "hone.normalize");
    int d = m->hp.n_embd, k = b && b->type == HN_F32 ? (int)b->ne[0] : 0;
    feat_state *st = NULL;
    if (k < 2 || b->ne[1] != 1) s = hn_fail(HN_ERR_FORMAT, "%s: \"bias\": expected F32 (n_classes >= 2)", path);
    else if (!w || w->type != HN_F32 || w->ne[0] != d || w->ne[1] != k)
        s = hn_fail(HN_ERR_FORMAT, "%s: \"weight\": expected F32 (%d, %d) (classes, the model's n_embd)", path, k, d);
    else if (!mu || mu->type != HN_F32 || mu->ne[0] != d || mu->ne[1] != 1)
        s = hn_fail(HN_ERR_FORMAT, "%s: \"mean\": expected F32 (%d)", path, d);
    else if (!sc || sc->type != HN_F32 || sc->ne[0] != d || sc->ne[1] != 1)
        s = hn_fail(HN_ERR_FORMAT, "%s: \"scale\": expected F32 (%d)", path, d);
    else if (!pn || hn_pool_parse(pn) == HN_POOL_NONE)
        s = hn_fail(HN_ERR_FORMAT, "%s: metadata \"hone.pool\": expected mean, cls, max or last", path);
    else if (!ns || (strcmp(ns, "true") && strcmp(ns, "false")))
        s = hn_fail(HN_ERR_FORMAT, "%s: metadata \"hone.normalize\": expected true or false", path);
    else if (!(st = hn_calloc(1, sizeof *st, "feature state")))
        s = HN_ERR_NOMEM;
    if (!s) {
        st->n_classes = k, st->dim = d, st->pool = hn_pool_parse(pn), st->normalize = !strcmp(ns, "true");
        st->w = hn_alloc((size_t)k * d * sizeof(float), "feature weights");
        st->b = hn_alloc((size_t)k * sizeof(float), "feature biases");
        st->mean = hn_alloc((size_t)d * sizeof(float), "feature mean");
        st->scale = hn_alloc((size_t)d * sizeof(float), "feature scale");
        if (!st->w || !st->b || !st->mean || !st->scale) s = HN_ERR_NOMEM;
        else {
            memcpy(st->w, w->data, (size_t)k * d * sizeof(float)), memcpy(st->b, b->data, (size_t)k * sizeof(float));
            memcpy(st->mean, mu->data, (size_t)d * sizeof(float));
            memcpy(st->scale, sc->data, (size_t)d * sizeof(float));
        }
    }
    hn_safetensors_close(&sf);
    free(path);
    if (s) return feat_free(st), s;
    *state = st;
    return HN_OK;
}

static int64_t feat_n_trainable(void *state) {
    const feat_state *st = state;
    return (int64_t)st->n_classes * st->dim + st->n_classes;
}

const hn_cls_method hn_cls_feature = {
    .name = "feature",
    .about = "frozen embeddings (the model's pooling) + L2 logistic regression by L-BFGS; embeddings cached",
    .applies = feat_applies,
    .train = feat_train,
    .predict = feat_predict,
    .save = feat_save,
    .load = feat_load,
    .free = feat_free,
    .n_trainable = feat_n_trainable,
};
