// tests/test_cls_icl.c — in-context learning as a classification method (train/cls_icl.c): on the tiny random GPT-2
// of tests/data/tiny_gpt2, the mechanics (probabilities sum to 1, several label words per class combine as the sum
// of their probabilities, the KV cache's shared prefix gives the scores of a fresh run, save/load predicts the same,
// nearest shots, bad label words and a broken icl.json are refused, an encoder is refused); and zero-shot
// SmolLM2-135M-Instruct on 100 rt-polarity sentences (../shared/data; skipped when the model or the data is absent).
#include "cls_test.h"
#include "test.h"
#include "train/classify.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

extern const hn_cls_method hn_cls_icl;

#define GPT2 "tests/data/tiny_gpt2/tiny_gpt2.gguf"
#define BERT "tests/data/tiny_bert/tiny_bert.gguf"

static hn_cls_options opts(int shots, bool nearest) {
    hn_cls_options o;
    memset(&o, 0, sizeof o);
    o.seed = 7, o.shots = shots, o.nearest = nearest, o.max_len = 16;
    return o;
}

static const char *const train_texts[] = {"good film", "bad film", "fine movie", "awful plot",
                                          "great cast", "dull story", "nice end", "poor acting"};
static const int train_labels[] = {1, 0, 1, 0, 1, 0, 1, 0};
static const char *const classes[] = {"neg", "pos"};
static const char *const queries[] = {"a good one", "so bad", "fine"};

static void check_probs(const float *p, int n, int nc, const char *what) {
    for (int i = 0; i < n; i++) {
        double sum = 0;
        bool in = true;
        for (int c = 0; c < nc; c++) sum += p[i * nc + c], in = in && p[i * nc + c] >= 0 && p[i * nc + c] <= 1;
        CHECK(in && fabs(sum - 1) < 1e-5, "%s: text %d: probabilities sum to %g", what, i, sum);
    }
}

static void rmrun(const char *dir) {
    char p[512];
    snprintf(p, sizeof p, "%s/icl.json", dir), unlink(p);
    snprintf(p, sizeof p, "%s/icl_embeddings.safetensors", dir), unlink(p);
    rmdir(dir);
}

// Trains with o, predicts queries, saves, loads, predicts again: the loaded state gives the same probabilities.
static void roundtrip(hn_model *m, const hn_cls_data *d, hn_cls_options o, const char *what, float *probs) {
    void *st = NULL, *st2 = NULL;
    hn_status s = hn_cls_icl.train(m, d, NULL, &o, &st);
    CHECK(s == HN_OK, "%s: train: %s", what, hn_errmsg());
    if (s) return;
    s = hn_cls_icl.predict(m, st, queries, 3, probs);
    CHECK(s == HN_OK, "%s: predict: %s", what, hn_errmsg());
    check_probs(probs, 3, 2, what);
    char *dir = tmpdir_for("icl");
    s = hn_cls_icl.save(m, st, dir);
    CHECK(s == HN_OK, "%s: save: %s", what, hn_errmsg());
    s = hn_cls_icl.load(m, dir, &st2);
    CHECK(s == HN_OK, "%s: load: %s", what, hn_errmsg());
    float again[6] = {0};
    if (!s) s = hn_cls_icl.predict(m, st2, queries, 3, again);
    // (the same up to rounding: the cache splits the prompts' tokens into runs differently)
    bool same = s == HN_OK;
    for (int i = 0; i < 6; i++) same = same && fabsf(probs[i] - again[i]) < 1e-5f;
    CHECK(same, "%s: the loaded run predicts the same (%g vs %g)", what, probs[0], again[0]);
    CHECK(hn_cls_icl.n_trainable(st) == 0, "%s: icl trains nothing", what);
    hn_cls_icl.free(st), hn_cls_icl.free(st2);
    rmrun(dir);
    free(dir);
}

static void test_tiny(void) {
    hn_model *m = NULL;
    hn_status s = hn_model_load(&m, GPT2, NULL);
    CHECK(s == HN_OK, "load %s: %s", GPT2, hn_errmsg());
    if (s) return;
    CHECK(hn_cls_icl.applies(m) == HN_OK, "icl applies to GPT-2");
    hn_cls_data d;
    data_init(&d, train_texts, train_labels, 8, classes, 2);

    float zero[6], two[6], near[6];
    roundtrip(m, &d, opts(0, false), "zero-shot", zero);
    // (the tiny model has 64 positions: one shot fits)
    roundtrip(m, &d, opts(1, false), "1 random shot", two);
    roundtrip(m, &d, opts(1, true), "1 nearest shot", near);
    CHECK(memcmp(zero, two, sizeof zero) != 0, "shots change the prompt's scores");

    // Calibration: the probabilities are the raw ones divided by the prior measured at training (then
    // renormalised), so the odds of calibrated to raw are the same for every text.
    {
        hn_cls_options oc = opts(1, false);
        void *sc = NULL, *sr = NULL;
        float cal3[6], raw3[6];
        hn_status s1 = hn_cls_icl.train(m, &d, NULL, &oc, &sc);
        oc.no_calibrate = true;
        hn_status s2 = hn_cls_icl.train(m, &d, NULL, &oc, &sr);
        if (!s1 && !s2) {
            CHECK(hn_cls_icl.predict(m, sc, queries, 3, cal3) == HN_OK &&
                      hn_cls_icl.predict(m, sr, queries, 3, raw3) == HN_OK, "predict: %s", hn_errmsg());
            double r0 = (cal3[0] / cal3[1]) / (raw3[0] / raw3[1]);
            CHECK(fabs(r0 - 1) > 1e-3, "the calibration changes the odds (%g)", r0);
            for (int i = 1; i < 3; i++) {
                double r = (cal3[2 * i] / cal3[2 * i + 1]) / (raw3[2 * i] / raw3[2 * i + 1]);
                CHECK(fabs(r - r0) < 1e-4 * r0, "text %d: calibrated / raw odds %g, text 0's %g", i, r, r0);
            }
        }
        CHECK(!s1 && !s2, "train: %s", hn_errmsg());
        hn_cls_icl.free(sc), hn_cls_icl.free(sr);
    }

    // The cache's shared prefix: a text predicted alone scores as it does after other texts.
    hn_cls_options o = opts(1, false);
    const char *const words[] = {"neg=no|bad", "pos=yes"};
    o.label_words = words, o.n_label_words = 2;
    void *st = NULL;
    float alone[2], batch[6];
    if (!hn_cls_icl.train(m, &d, NULL, &o, &st)) {
        CHECK(hn_cls_icl.predict(m, st, queries + 2, 1, alone) == HN_OK, "predict alone: %s", hn_errmsg());
        CHECK(hn_cls_icl.predict(m, st, queries, 3, batch) == HN_OK, "predict batch: %s", hn_errmsg());
        CHECK(fabsf(alone[0] - batch[4]) < 1e-5f, "alone %g, after two other texts %g", alone[0], batch[4]);
        // One text a call (the cache and its prompt are kept between calls) gives the batch's probabilities.
        float one[6];
        for (int i = 0; i < 3; i++) CHECK(hn_cls_icl.predict(m, st, queries + i, 1, one + 2 * i) == HN_OK, "one");
        for (int i = 0; i < 6; i++) CHECK(fabsf(one[i] - batch[i]) < 1e-5f, "one a call: %g, batch %g", one[i], batch[i]);
    }
    hn_cls_icl.free(st);

    // A prompt past the model's positions is refused with both lengths.
    o = opts(4, false), st = NULL;
    s = hn_cls_icl.train(m, &d, NULL, &o, &st);
    if (!s) s = hn_cls_icl.predict(m, st, queries, 3, batch);
    CHECK(s == HN_ERR_RANGE && strstr(hn_errmsg(), "context of 64"), "4 shots do not fit: %s", hn_errmsg());
    hn_cls_icl.free(st);

    // Several words: a class's probability is the sum of its words' (log-sum-exp of their log-likelihoods), so the
    // odds of {no, bad} against yes are the odds of no plus the odds of bad.
    const char *const w_no[] = {"neg=no", "pos=yes"}, *const w_bad[] = {"neg=bad", "pos=yes"};
    float p_no[6], p_bad[6], p_both[6];
    const char *const *sets[] = {w_no, w_bad, words};
    float *outs[] = {p_no, p_bad, p_both};
    for (int k = 0; k < 3; k++) {
        o = opts(0, false), o.label_words = sets[k], o.n_label_words = 2;
        o.no_calibrate = true; // the raw likelihoods' odds
        st = NULL;
        s = hn_cls_icl.train(m, &d, NULL, &o, &st);
        if (!s) s = hn_cls_icl.predict(m, st, queries, 3, outs[k]);
        CHECK(s == HN_OK, "label words set %d: %s", k, hn_errmsg());
        hn_cls_icl.free(st);
    }
    for (int i = 0; i < 3; i++) {
        double want = p_no[2 * i] / p_no[2 * i + 1] + p_bad[2 * i] / p_bad[2 * i + 1];
        double got = p_both[2 * i] / p_both[2 * i + 1];
        CHECK(fabs(got - want) < 1e-4 * want, "text %d: odds of {no, bad} %g, want %g", i, got, want);
    }

    // Bad label words.
    const char *const bad1[] = {"maybe=x"}, *const bad2[] = {"pos"}, *const bad3[] = {"pos=a||b"},
                      *const bad4[] = {"pos=a", "pos=b"};
    const char *const *bads[] = {bad1, bad2, bad3, bad4};
    int nb[] = {1, 1, 1, 2};
    for (int k = 0; k < 4; k++) {
        o = opts(0, false), o.label_words = bads[k], o.n_label_words = nb[k];
        st = NULL;
        s = hn_cls_icl.train(m, &d, NULL, &o, &st);
        CHECK(s == HN_ERR_ARG && st == NULL && strstr(hn_errmsg(), "label words"), "bad label words %d: %s", k,
              hn_errmsg());
    }

    // A broken or missing icl.json.
    char *dir = tmpdir_for("icl"), path[512];
    snprintf(path, sizeof path, "%s/icl.json", dir);
    st = NULL;
    CHECK(hn_cls_icl.load(m, dir, &st) != HN_OK && st == NULL, "a run without icl.json is refused");
    static const char *const broken[] = {
        "{\"classes\": [\"a\", \"b\"], \"shots\": 1, \"nearest\": false, \"label_words\": [[\"a\"]], \"examples\": []}",
        "{\"classes\": [\"a\", \"b\"], \"shots\": 1, \"nearest\": false, \"label_words\": [[\"a\"], [\"b\"]], "
        "\"examples\": [{\"text\": \"x\", \"label\": 2}]}",
        "{\"classes\": [\"a\", \"b\"], \"shots\": -1, \"nearest\": false, \"label_words\": [[\"a\"], [\"b\"]], "
        "\"examples\": []}",
        "{\"classes\": [\"a\", \"b\"], \"shots\": 1, \"nearest\": true, \"label_words\": [[\"a\"], [\"b\"]], "
        "\"examples\": []}",
        "{\"classes\": [\"a\"",
    };
    static const char *const field[] = {"label_words", "examples", "shots", "icl_embeddings", "line"};
    for (int k = 0; k < 5; k++) {
        FILE *f = fopen(path, "w");
        fputs(broken[k], f), fclose(f);
        st = NULL;
        s = hn_cls_icl.load(m, dir, &st);
        CHECK(s != HN_OK && st == NULL && strstr(hn_errmsg(), field[k]), "broken icl.json %d: %s", k, hn_errmsg());
    }
    rmrun(dir);
    free(dir);
    hn_cls_data_deinit(&d);
    hn_model_destroy(m);

    s = hn_model_load(&m, BERT, NULL);
    CHECK(s == HN_OK, "load %s: %s", BERT, hn_errmsg());
    if (!s) {
        s = hn_cls_icl.applies(m);
        CHECK(s == HN_ERR_UNSUPPORTED && strstr(hn_errmsg(), "encoder"), "an encoder is refused: %s", hn_errmsg());
        hn_model_destroy(m);
    }
}

static void test_smollm2(void) {
    char *path = NULL;
    if (hn_model_resolve("smollm2-135m-instruct", &path) || access(RT "pos", R_OK)) {
        printf("skipped: SmolLM2-135M-Instruct or ../shared/data/rt-polarity absent\n");
        free(path);
        return;
    }
    hn_model *m = NULL;
    hn_status s = hn_model_load(&m, path, NULL);
    free(path);
    CHECK(s == HN_OK, "load SmolLM2: %s", hn_errmsg());
    if (s) return;
    bool sanitized = getenv("HONE_SANITIZED") != NULL; // the sanitizers' build: a few sentences, no threshold
    enum { NMAX = 50 };
    int N = sanitized ? 3 : NMAX;
    char *pos[NMAX], *neg[NMAX];
    int np = read_lines(RT "pos", 1000, N, pos), nn = read_lines(RT "neg", 1000, N, neg);
    CHECK(np == N && nn == N, "read rt-polarity");
    const char *texts[2 * NMAX];
    int labels[2 * NMAX];
    for (int i = 0; i < N; i++) texts[2 * i] = neg[i], labels[2 * i] = 0, texts[2 * i + 1] = pos[i], labels[2 * i + 1] = 1;
    hn_cls_data d;
    data_init(&d, texts, labels, 2 * N, (const char *const[]){"neg", "pos"}, 2);
    hn_cls_options o = opts(0, false);
    o.max_len = 48;
    const char *const words[] = {"neg=negative", "pos=positive"};
    o.label_words = words, o.n_label_words = 2;
    void *st = NULL;
    float *probs = calloc(2 * N * 2, sizeof *probs);
    double t0 = hn_now();
    s = hn_cls_icl.train(m, &d, NULL, &o, &st);
    if (!s) s = hn_cls_icl.predict(m, st, texts, 2 * N, probs);
    CHECK(s == HN_OK, "SmolLM2 zero-shot: %s", hn_errmsg());
    int right = 0;
    for (int i = 0; i < 2 * N; i++) right += (probs[2 * i + 1] > probs[2 * i]) == (labels[i] == 1);
    double acc = (double)right / (2 * N);
    printf("SmolLM2-135M-Instruct zero-shot icl on %d rt-polarity sentences: accuracy %.3f (%.1f s)\n", 2 * N, acc,
           hn_now() - t0);
    CHECK(sanitized || acc > 0.5, "zero-shot accuracy %.3f, want > 0.5", acc);
    hn_cls_icl.free(st);
    free(probs);
    hn_cls_data_deinit(&d);
    for (int i = 0; i < N; i++) free(pos[i]), free(neg[i]);
    hn_model_destroy(m);
}

int main(void) {
    test_tiny();
    test_smollm2();
    return test_done();
}
