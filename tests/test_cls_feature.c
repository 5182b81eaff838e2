// tests/test_cls_feature.c — feature-based classification (train/cls_feature.c): on the tiny random BERT of
// tests/data/tiny_bert, a separable toy task is learned, probabilities sum to 1, save/load predicts the same, the
// weights found are the minimum of the stated objective (its gradient, recomputed here from the cached embeddings,
// is zero), the embedding cache is reused by a rerun and ignored when the texts change, a broken feature.safetensors
// is refused; and all-MiniLM-L6-v2 on rt-polarity (400 sentences to train, 200 held out; ../shared/data, skipped
// when the model or the data is absent) beats 0.65 accuracy.
#include "cls_test.h"
#include "test.h"
#include "io/safetensors.h"
#include "train/classify.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

extern const hn_cls_method hn_cls_feature;

#define BERT "tests/data/tiny_bert/tiny_bert.gguf"

static void rmrun(const char *dir) {
    char p[512];
    snprintf(p, sizeof p, "%s/feature.safetensors", dir), unlink(p);
    snprintf(p, sizeof p, "%s/feature_embeddings.safetensors", dir), unlink(p);
    rmdir(dir);
}

// The toy task: two-word texts from one set of words against two-word texts from another; trained on the pairs in
// one order ("cat sat"), checked on the others ("sat cat"), which the model (positions) embeds differently.
static const char *const set_a[] = {"cat", "sat", "mat", "on"}, *const set_b[] = {"dog", "run", "hello", "world"};
enum { N_TOY = 12 };

// reversed: the pairs (j, i) instead of (i, j), i < j.
static void toy_texts(bool reversed, char buf[N_TOY][32], const char **texts, int *labels) {
    int n = 0;
    for (int c = 0; c < 2; c++)
        for (int i = 0; i < 4; i++)
            for (int j = i + 1; j < 4; j++) {
                const char *const *w = c ? set_b : set_a;
                snprintf(buf[n], 32, "%s %s", w[reversed ? j : i], w[reversed ? i : j]);
                texts[n] = buf[n], labels[n++] = c;
            }
}

// The gradient of the objective at the saved weights, from the cached (raw) embeddings: its largest component
// relative to the number of examples.
static double objective_gradient(const char *dir, const int32_t *labels, int n) {
    char p[512];
    hn_safetensors w, e;
    snprintf(p, sizeof p, "%s/feature.safetensors", dir);
    if (hn_safetensors_open(&w, p)) return INFINITY;
    snprintf(p, sizeof p, "%s/feature_embeddings.safetensors", dir);
    if (hn_safetensors_open(&e, p)) return hn_safetensors_close(&w), INFINITY;
    const hn_tensor *W = hn_safetensors_tensor(&w, "weight"), *b = hn_safetensors_tensor(&w, "bias");
    const hn_tensor *mu = hn_safetensors_tensor(&w, "mean"), *sc = hn_safetensors_tensor(&w, "scale");
    const hn_tensor *X = hn_safetensors_tensor(&e, "embeddings");
    int d = (int)W->ne[0], k = (int)W->ne[1];
    const float *wd = W->data, *bd = b->data, *md = mu->data, *sd = sc->data, *xd = X->data;
    double *g = calloc((size_t)k * d + k, sizeof *g), *x = calloc(d, sizeof *x), *z = calloc(k, sizeof *z);
    for (int i = 0; i < n; i++) {
        for (int j = 0; j < d; j++) x[j] = (xd[(size_t)i * d + j] - md[j]) * sd[j];
        double mx = -INFINITY, sum = 0;
        for (int c = 0; c < k; c++) {
            z[c] = bd[c];
            for (int j = 0; j < d; j++) z[c] += wd[(size_t)c * d + j] * x[j];
            mx = z[c] > mx ? z[c] : mx;
        }
        for (int c = 0; c < k; c++) sum += exp(z[c] - mx);
        for (int c = 0; c < k; c++) {
            double r = exp(z[c] - mx) / sum - (c == labels[i]);
            for (int j = 0; j < d; j++) g[(size_t)c * d + j] += r * x[j];
            g[(size_t)k * d + c] += r;
        }
    }
    double gmax = 0;
    for (size_t j = 0; j < (size_t)k * d + k; j++) {
        double v = g[j] + (j < (size_t)k * d ? wd[j] : 0); // + the L2 term (C = 1)
        gmax = fabs(v) > gmax ? fabs(v) : gmax;
    }
    free(g), free(x), free(z);
    hn_safetensors_close(&w), hn_safetensors_close(&e);
    return gmax / n;
}

static void test_tiny(void) {
    hn_model *m = NULL;
    hn_status s = hn_model_load(&m, BERT, NULL);
    CHECK(s == HN_OK, "load %s: %s", BERT, hn_errmsg());
    if (s) return;
    CHECK(hn_cls_feature.applies(m) == HN_OK, "feature applies to BERT");
    hn_cls_data d;
    char buf[N_TOY][32], tbuf[N_TOY][32];
    const char *texts[N_TOY], *toy_test[N_TOY];
    int labels[N_TOY], toy_test_labels[N_TOY];
    toy_texts(false, buf, texts, labels);
    toy_texts(true, tbuf, toy_test, toy_test_labels);
    data_init(&d, texts, labels, N_TOY, (const char *const[]){"a", "b"}, 2);
    char *dir = tmpdir_for("feature");
    hn_cls_options o;
    memset(&o, 0, sizeof o);
    o.run_dir = dir;
    void *st = NULL, *st2 = NULL;
    float probs[2 * N_TOY], again[2 * N_TOY];
    s = hn_cls_feature.train(m, &d, NULL, &o, &st);
    CHECK(s == HN_OK, "train: %s", hn_errmsg());
    if (s) goto out;
    CHECK(hn_cls_feature.n_trainable(st) == 2 * m->hp.n_embd + 2, "trainable: %lld",
          (long long)hn_cls_feature.n_trainable(st));
    // The training texts are all classified right; the held-out order mostly (the tiny model is random: its
    // embeddings of "sat cat" and "cat sat" differ much; 9 of 12 is what it gives, deterministically).
    s = hn_cls_feature.predict(m, st, texts, N_TOY, probs);
    int right = 0;
    for (int i = 0; !s && i < N_TOY; i++) right += (probs[2 * i + 1] > probs[2 * i]) == labels[i];
    CHECK(s == HN_OK && right == N_TOY, "the toy task is learned: %d of %d training texts right", right, N_TOY);
    s = hn_cls_feature.predict(m, st, toy_test, N_TOY, probs);
    CHECK(s == HN_OK, "predict: %s", hn_errmsg());
    right = 0;
    for (int i = 0; i < N_TOY; i++) {
        CHECK(fabsf(probs[2 * i] + probs[2 * i + 1] - 1) < 1e-5f, "text %d: probabilities sum to 1", i);
        right += (probs[2 * i + 1] > probs[2 * i]) == toy_test_labels[i];
    }
    CHECK(right >= 9, "held out: %d of %d texts right", right, N_TOY);
    CHECK(hn_cls_feature.save(m, st, dir) == HN_OK, "save: %s", hn_errmsg());
    s = hn_cls_feature.load(m, dir, &st2);
    CHECK(s == HN_OK, "load: %s", hn_errmsg());
    if (!s) {
        CHECK(hn_cls_feature.predict(m, st2, toy_test, N_TOY, again) == HN_OK && !memcmp(probs, again, sizeof again),
              "the loaded classifier predicts the same");
        hn_cls_feature.free(st2), st2 = NULL;
    }
    double gmax = objective_gradient(dir, d.labels, d.n);
    CHECK(gmax < 1e-4, "the weights are the objective's minimum: largest gradient component / n = %g", gmax);

    // The cache: a rerun reads it (zeroed embeddings under the same key make every feature constant, so the
    // classifier learns only the class balance), and different texts ignore it.
    char cpath[512];
    snprintf(cpath, sizeof cpath, "%s/feature_embeddings.safetensors", dir);
    hn_safetensors cache;
    if (hn_safetensors_open(&cache, cpath) == HN_OK) {
        hn_safetensors_writer *w = hn_safetensors_writer_create();
        const hn_tensor *t = hn_safetensors_tensor(&cache, "embeddings");
        float *zero = calloc((size_t)t->ne[0] * t->ne[1], sizeof *zero);
        int64_t ne[2] = {t->ne[0], t->ne[1]};
        hn_safetensors_writer_add(w, "embeddings", HN_F32, 2, ne, zero);
        for (size_t i = 0; i < cache.n_meta; i++) hn_safetensors_writer_set_meta(w, cache.meta_keys[i], cache.meta_vals[i]);
        hn_safetensors_close(&cache);
        CHECK(hn_safetensors_writer_write(w, cpath) == HN_OK, "rewrite the cache: %s", hn_errmsg());
        hn_safetensors_writer_destroy(w);
        free(zero);
        hn_cls_feature.free(st), st = NULL;
        CHECK(hn_cls_feature.train(m, &d, NULL, &o, &st) == HN_OK, "rerun: %s", hn_errmsg());
        if (st) CHECK(hn_cls_feature.predict(m, st, toy_test, N_TOY, again) == HN_OK, "predict");
        CHECK(fabsf(again[0] - 0.5f) < 1e-5f && fabsf(again[2 * N_TOY - 1] - 0.5f) < 1e-5f,
              "the rerun used the (zeroed) cache: %g %g", again[0], again[2 * N_TOY - 1]);
        hn_cls_feature.free(st), st = NULL;
        free(d.texts[0]), d.texts[0] = sdup("the cat sat on the mat");
        CHECK(hn_cls_feature.train(m, &d, NULL, &o, &st) == HN_OK, "other texts: %s", hn_errmsg());
        if (st) CHECK(hn_cls_feature.predict(m, st, toy_test, N_TOY, again) == HN_OK, "predict");
        CHECK(again[2] > 0.5f && again[2 * N_TOY - 2] < 0.5f, "other texts recompute the embeddings: %g %g",
              again[2], again[2 * N_TOY - 2]);
    } else {
        CHECK(0, "no cache written in %s", dir);
    }

    // A broken feature.safetensors.
    char wpath[512];
    snprintf(wpath, sizeof wpath, "%s/feature.safetensors", dir);
    static const char *const what[] = {"bias", "weight", "scale", "hone.pool"};
    for (int k = 0; k < 4; k++) {
        hn_safetensors_writer *w = hn_safetensors_writer_create();
        float buf[1024] = {0};
        int64_t ne_b[1] = {k == 0 ? 1 : 2}, ne_w[2] = {k == 1 ? 3 : m->hp.n_embd, 2}, ne_d[1] = {m->hp.n_embd};
        int64_t ne_s[1] = {k == 2 ? 5 : m->hp.n_embd};
        hn_safetensors_writer_add(w, "bias", HN_F32, 1, ne_b, buf);
        hn_safetensors_writer_add(w, "weight", HN_F32, 2, ne_w, buf);
        hn_safetensors_writer_add(w, "mean", HN_F32, 1, ne_d, buf);
        hn_safetensors_writer_add(w, "scale", HN_F32, 1, ne_s, buf);
        hn_safetensors_writer_set_meta(w, "hone.pool", k == 3 ? "median" : "mean");
        hn_safetensors_writer_set_meta(w, "hone.normalize", "false");
        hn_safetensors_writer_write(w, wpath);
        hn_safetensors_writer_destroy(w);
        st2 = NULL;
        s = hn_cls_feature.load(m, dir, &st2);
        CHECK(s == HN_ERR_FORMAT && st2 == NULL && strstr(hn_errmsg(), what[k]), "broken file %d: %s", k,
              hn_errmsg());
    }
out:
    hn_cls_feature.free(st);
    rmrun(dir);
    free(dir);
    hn_cls_data_deinit(&d);
    hn_model_destroy(m);
}

static void test_minilm(void) {
    char *path = NULL;
    if (hn_model_resolve("all-minilm-l6-v2", &path) || access(RT "pos", R_OK)) {
        printf("skipped: all-MiniLM-L6-v2 or ../shared/data/rt-polarity absent\n");
        free(path);
        return;
    }
    hn_model *m = NULL;
    hn_status s = hn_model_load(&m, path, NULL);
    free(path);
    CHECK(s == HN_OK, "load all-MiniLM-L6-v2: %s", hn_errmsg());
    if (s) return;
    bool sanitized = getenv("HONE_SANITIZED") != NULL; // the sanitizers' build: a few sentences, no threshold
    enum { NTMAX = 200, NVMAX = 100 };                 // per class: 400 to train, 200 held out
    int NT = sanitized ? 10 : NTMAX, NV = sanitized ? 5 : NVMAX;
    char *pos[NTMAX + NVMAX], *neg[NTMAX + NVMAX];
    int np = read_lines(RT "pos", 0, NT + NV, pos), nn = read_lines(RT "neg", 0, NT + NV, neg);
    CHECK(np == NT + NV && nn == NT + NV, "read rt-polarity");
    const char *tr[2 * NTMAX], *va[2 * NVMAX];
    int trl[2 * NTMAX], val[2 * NVMAX];
    for (int i = 0; i < NT; i++) tr[2 * i] = neg[i], trl[2 * i] = 0, tr[2 * i + 1] = pos[i], trl[2 * i + 1] = 1;
    for (int i = 0; i < NV; i++)
        va[2 * i] = neg[NT + i], val[2 * i] = 0, va[2 * i + 1] = pos[NT + i], val[2 * i + 1] = 1;
    hn_cls_data d;
    data_init(&d, tr, trl, 2 * NT, (const char *const[]){"neg", "pos"}, 2);
    hn_cls_options o;
    memset(&o, 0, sizeof o);
    void *st = NULL;
    float *probs = calloc(2 * NV * 2, sizeof *probs);
    double t0 = hn_now();
    s = hn_cls_feature.train(m, &d, NULL, &o, &st);
    if (!s) s = hn_cls_feature.predict(m, st, va, 2 * NV, probs);
    CHECK(s == HN_OK, "MiniLM feature-based: %s", hn_errmsg());
    int right = 0;
    for (int i = 0; i < 2 * NV; i++) right += (probs[2 * i + 1] > probs[2 * i]) == (val[i] == 1);
    double acc = (double)right / (2 * NV);
    printf("all-MiniLM-L6-v2 feature-based, %d rt-polarity sentences to train, %d held out: accuracy %.3f (%.1f s)\n",
           2 * NT, 2 * NV, acc, hn_now() - t0);
    CHECK(sanitized || acc > 0.65, "accuracy %.3f, want > 0.65", acc);
    hn_cls_feature.free(st);
    free(probs);
    hn_cls_data_deinit(&d);
    for (int i = 0; i < NT + NV; i++) free(pos[i]), free(neg[i]);
    hn_model_destroy(m);
}

int main(void) {
    test_tiny();
    test_minilm();
    return test_done();
}
