// tests/test_cls_head.c — the trained-head classification methods (train/cls_head.c) and what they are built from:
// the pooling op and the head's softmax cross-entropy against finite differences; the freezing rules (exactly the
// head's params, or the head's + LoRA's, get gradients and optimizer state, and the model's weights stay
// bit-identical); a tiny decoder (tests/data/tiny_gpt2) and a tiny encoder (tests/data/tiny_bert) learn a separable
// toy task; save -> load gives the same probabilities (head.safetensors; PEFT's SEQ_CLS layout for LoRA); PEFT's own
// SEQ_CLS adapter (tests/data/tiny_gpt2/peft_seq_cls, tools/reference/cls_peft_ref.py) gives transformers'
// probabilities; and a short
// head-only run on SmolLM2-135M with rt-polarity beats the majority class (skipped when either is absent).
#include "adapt/cls_head.h"
#include "adapt/lora.h"
#include "io/safetensors.h"
#include "train/classify.h"
#include "train/cls_objective.h"
#include "train/optim.h"
#include "cls_test.h"
#include "test.h"

#include <jansson.h>
#include <math.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

extern const hn_cls_method hn_cls_head, hn_cls_lora;

static bool sanitized;

// ---- ops against finite differences ----

// f(h) = sum(pool(h) * r); pooling is linear, so central differences are exact up to rounding.
static void test_pool_grad(void) {
    enum { B = 3, T = 4, C = 5 };
    const int32_t lens[B] = {2, 4, 1};
    hn_rng rng;
    hn_rng_seed(&rng, 7);
    float h[B * T * C], r[B * C];
    for (int i = 0; i < B * T * C; i++) h[i] = 2 * hn_rng_f32(&rng) - 1;
    for (int i = 0; i < B * C; i++) r[i] = 2 * hn_rng_f32(&rng) - 1;
    for (int mode = HN_GPOOL_MEAN; mode <= HN_GPOOL_LAST; mode++) {
        hn_arena a = {0};
        hn_tape tape = {0};
        hn_ctx c = {.arena = &a, .tape = &tape};
        hn_var *hv = hn_var_wrap(&c, h, B * T, C, true);
        hn_var *y = hn_op_pool(&c, hv, B, T, lens, (hn_grad_pool)mode);
        CHECK(y && y->rows == B && y->cols == C, "pool mode %d", mode);
        if (!y) continue;
        memcpy(hn_var_grad(&c, y), r, sizeof r);
        CHECK(hn_backward(&c) == HN_OK, "%s", hn_errmsg());
        double worst = 0;
        for (int i = 0; i < B * T * C; i++) {
            double f[2];
            for (int sgn = 0; sgn < 2; sgn++) {
                float keep = h[i];
                h[i] += sgn ? -1e-2f : 1e-2f;
                hn_arena a2 = {0};
                hn_ctx c2 = {.arena = &a2};
                hn_var *y2 = hn_op_pool(&c2, hn_var_wrap(&c2, h, B * T, C, false), B, T, lens, (hn_grad_pool)mode);
                f[sgn] = 0;
                for (int j = 0; j < B * C; j++) f[sgn] += (double)y2->d[j] * r[j];
                hn_arena_deinit(&a2);
                h[i] = keep;
            }
            double num = (f[0] - f[1]) / 2e-2, an = hv->g ? hv->g[i] : 0;
            if (fabs(num - an) > worst) worst = fabs(num - an);
        }
        CHECK(worst < 1e-4, "pool mode %d: gradient off by %g", mode, worst);
        // padding rows get no gradient: row 0 (len 2) at t = 2, 3; row 2 (len 1) at t >= 1
        CHECK(hv->g && hv->g[(0 * T + 3) * C] == 0 && hv->g[(2 * T + 1) * C] == 0, "padding got a gradient");
        hn_arena_deinit(&a);
    }
    // bad lengths: an error, not a read past the row
    hn_arena a = {0};
    hn_ctx c = {.arena = &a};
    const int32_t bad[B] = {2, 5, 1};
    CHECK(!hn_op_pool(&c, hn_var_wrap(&c, h, B * T, C, false), B, T, bad, HN_GPOOL_LAST) && c.err == HN_ERR_ARG &&
              strstr(hn_errmsg(), "row 1 has 5 valid tokens"), "%s", hn_errmsg());
    hn_arena_deinit(&a);
}

// The head's loss against finite differences in W and b (a BERT-style head, with a bias).
static void test_head_grad(const hn_model *bert) {
    hn_seq_head *hd;
    if (hn_cls_head_new(&hd, bert, 3, 5)) {
        CHECK(0, "%s", hn_errmsg());
        return;
    }
    CHECK(hd->has_bias && hd->params.n == 2 && !strcmp(hd->W.name, "classifier.weight") &&
              !strcmp(hd->b.name, "classifier.bias"), "BERT head: %d params, %s", hd->params.n, hd->W.name);
    const int B = 4, C = hd->n_embd;
    float *x = calloc((size_t)B * C, sizeof *x);
    const int32_t labels[4] = {0, 2, 1, 2};
    hn_rng rng;
    hn_rng_seed(&rng, 3);
    for (int i = 0; i < B * C; i++) x[i] = 2 * hn_rng_f32(&rng) - 1;
    for (int k = 0; k < 3; k++) hd->b.data[k] = 0.1f * (float)k;
    double w_std = 0;
    for (int64_t i = 0; i < hd->W.n; i++) w_std += (double)hd->W.data[i] * hd->W.data[i];
    w_std = sqrt(w_std / (double)hd->W.n);
    CHECK(w_std > 0.015 && w_std < 0.025, "W's initial std %g, expected about 0.02", w_std);
    for (int i = 0; i < hd->W.n; i++) hd->W.data[i] *= 20; // logits large enough that the loss is not flat
    hn_param_zero_grads(&hd->params);
    hn_arena a = {0};
    hn_tape tape = {0};
    hn_ctx c = {.arena = &a, .tape = &tape};
    double loss = 0;
    int correct = 0;
    hn_var *logits = hn_cls_head_logits(&c, hd, hn_var_wrap(&c, x, B, C, false));
    CHECK(hn_cls_softmax_ce(&c, logits, labels, 1.0f / B, &loss, &correct, NULL) == HN_OK && hn_backward(&c) == HN_OK,
          "%s", hn_errmsg());
    double worst = 0;
    hn_param *ps[2] = {&hd->W, &hd->b};
    for (int p = 0; p < 2; p++)
        for (int64_t i = 0; i < ps[p]->n; i += p ? 1 : 7) {
            double f[2];
            for (int sgn = 0; sgn < 2; sgn++) {
                float keep = ps[p]->data[i];
                ps[p]->data[i] += sgn ? -1e-2f : 1e-2f;
                hn_arena a2 = {0};
                hn_ctx c2 = {.arena = &a2};
                f[sgn] = 0;
                hn_cls_softmax_ce(&c2, hn_cls_head_logits(&c2, hd, hn_var_wrap(&c2, x, B, C, false)), labels, 0, &f[sgn],
                                  NULL, NULL);
                hn_arena_deinit(&a2);
                ps[p]->data[i] = keep;
            }
            double num = (f[0] - f[1]) / 2e-2 / B;
            if (fabs(num - ps[p]->grad[i]) > worst) worst = fabs(num - ps[p]->grad[i]);
        }
    CHECK(worst < 2e-3, "head gradient off by %g", worst);
    // a label outside the classes: an error naming it
    hn_arena_reset(&a, (hn_arena_mark){0});
    hn_tape_reset(&tape);
    const int32_t bad[4] = {0, 3, 1, 2};
    logits = hn_cls_head_logits(&c, hd, hn_var_wrap(&c, x, B, C, false));
    CHECK(hn_cls_softmax_ce(&c, logits, bad, 1.0f, &loss, NULL, NULL) == HN_ERR_ARG &&
              strstr(hn_errmsg(), "label 3 of row 1"), "%s", hn_errmsg());
    hn_arena_deinit(&a);
    free(x);
    hn_cls_head_destroy(hd);
}

// ---- toy data: the class is told by the first word ----

static const char *const class_words[2][3] = {{"red", "blue", "green"}, {"cat", "dog", "fish"}};
static const char *const filler[] = {"the", "a", "of", "and", "is", "it", "in", "on", "to", "was", "he", "she"};

static void toy_data(hn_cls_data *d, int n, uint64_t seed) {
    memset(d, 0, sizeof *d);
    hn_rng rng;
    hn_rng_seed(&rng, seed);
    d->n = n, d->n_classes = 2;
    d->texts = calloc((size_t)n, sizeof *d->texts);
    d->labels = calloc((size_t)n, sizeof *d->labels);
    d->classes = calloc(2, sizeof *d->classes);
    d->classes[0] = strdup("colour"), d->classes[1] = strdup("animal");
    d->source = strdup("toy");
    for (int i = 0; i < n; i++) {
        char buf[256];
        int k = i % 2, len = 0;
        len += snprintf(buf + len, sizeof buf - len, "%s", class_words[k][hn_rng_u64(&rng) % 3]);
        int words = 2 + (int)(hn_rng_u64(&rng) % 5);
        for (int w = 0; w < words; w++)
            len += snprintf(buf + len, sizeof buf - len, " %s", filler[hn_rng_u64(&rng) % 12]);
        d->texts[i] = strdup(buf);
        d->labels[i] = k;
    }
}

static hn_cls_options toy_options(void) {
    return (hn_cls_options){.seed = 11, .threads = 2, .max_len = 32, .epochs = 30, .batch = 8, .lr = 5e-3f,
                            .weight_decay = 0.0f, .lora_r = 4, .lora_alpha = 8};
}

static double accuracy(const float *probs, const int32_t *labels, int n, int K) {
    int hit = 0;
    for (int i = 0; i < n; i++) {
        int arg = 0;
        for (int k = 1; k < K; k++)
            if (probs[(size_t)i * K + k] > probs[(size_t)i * K + arg]) arg = k;
        hit += arg == labels[i];
    }
    return (double)hit / n;
}

// ---- freezing rules ----

static int nonzero_params(const hn_param_list *l, const float *(*pick)(const hn_param *, const void *),
                          const void *u) {
    int n = 0;
    for (int i = 0; i < l->n; i++) {
        const float *v = pick(l->items[i], u);
        bool any = false;
        for (int64_t j = 0; j < l->items[i]->n && !any; j++) any = v[j] != 0;
        n += any;
    }
    return n;
}
static const float *pick_grad(const hn_param *p, const void *u) { (void)u; return p->grad; }
static const float *pick_m(const hn_param *p, const void *u) {
    const hn_adamw *o = u;
    for (int i = 0; i < o->params->n; i++)
        if (o->params->items[i] == p) return o->m + o->off[i];
    return NULL;
}

// A few AdamW steps through the objective: the params with a gradient and with optimizer state are exactly the
// head's (lora false) or the head's + every LoRA A and B (lora true), and nothing else of the model changes.
static void test_freezing(hn_model *m, bool lora) {
    uint64_t before = model_hash(m);
    hn_cls_data d;
    toy_data(&d, 12, 1);
    hn_seq_head *hd = NULL;
    hn_lora *lo = NULL;
    hn_lora_config lc = hn_lora_default_config();
    lc.r = 4, lc.alpha = 8;
    hn_status s = hn_cls_head_new(&hd, m, 2, 1);
    if (!s && lora) s = hn_lora_attach_new(&lo, m, &lc);
    hn_cls_objective o = {0};
    if (!s) s = hn_cls_objective_init(&o, m, hd, lo ? hn_lora_params(lo) : NULL);
    CHECK(!s, "%s", hn_errmsg());
    if (s) goto out;
    int expect = hd->params.n + (lo ? hn_lora_params(lo)->n : 0);
    int n_lin = 0; // linear layers of the model with LoRA attached
    for (int l = 0; l < m->hp.n_layer; l++) {
        hn_linear *ls[] = {&m->layers[l].q,  &m->layers[l].k,    &m->layers[l].v,    &m->layers[l].o,
                           &m->layers[l].gate, &m->layers[l].up, &m->layers[l].down, &m->layers[l].qkv};
        for (size_t k = 0; k < sizeof ls / sizeof ls[0]; k++) n_lin += ls[k]->w && ls[k]->ext;
    }
    int head_n = hd->has_bias ? 2 : 1; // W (+ b for an encoder)
    CHECK(o.params.n == expect && expect == head_n + (lora ? 2 * n_lin : 0) && (!lora || n_lin == 4 * m->hp.n_layer),
          "%s: %d params in the objective, %d expected, %d adapted linear layers", lora ? "lora" : "head", o.params.n,
          expect, n_lin);
    hn_adamw opt;
    hn_adamw_params ap = hn_adamw_default_params();
    CHECK(hn_adamw_init(&opt, &o.params, &ap) == HN_OK, "%s", hn_errmsg());
    CHECK(opt.n_total == hn_param_count(&o.params), "optimizer state for %lld of %lld values",
          (long long)opt.n_total, (long long)hn_param_count(&o.params));
    int32_t ids[4 * 8] = {0}, lens[4], labels[4];
    for (int step = 0; step < 3; step++) {
        for (int b = 0; b < 4; b++) { // token ids straight from the toy texts
            int32_t *t;
            int64_t n;
            hn_tokenizer_encode(m->tok, d.texts[step * 4 + b], -1, 0, &t, &n);
            lens[b] = (int32_t)(n < 8 ? n : 8);
            memcpy(ids + b * 8, t, (size_t)lens[b] * sizeof *t);
            free(t);
            labels[b] = d.labels[step * 4 + b];
        }
        hn_cls_batch cb = {.B = 4, .T = 8, .ids = ids, .lens = lens, .labels = labels};
        hn_param_zero_grads(&o.params);
        double loss = 0;
        CHECK(hn_cls_objective_loss_grad(&o, &cb, 0.25f, &loss, NULL) == HN_OK, "%s", hn_errmsg());
        if (step == 2) // LoRA's A gets its first gradient once B is non-zero (after the first update)
            CHECK(nonzero_params(&o.params, pick_grad, NULL) == expect, "%d of %d params have a gradient",
                  nonzero_params(&o.params, pick_grad, NULL), expect);
        hn_adamw_step(&opt, 1e-2);
    }
    CHECK(nonzero_params(&o.params, pick_m, &opt) == expect, "%d of %d params have optimizer state",
          nonzero_params(&o.params, pick_m, &opt), expect);
    CHECK(model_hash(m) == before, "the model's weights changed");
    hn_adamw_deinit(&opt);
out:
    hn_cls_objective_deinit(&o);
    hn_lora_destroy(lo);
    hn_cls_head_destroy(hd);
    hn_cls_data_deinit(&d);
}

// A right-padded batch gives each row what the row alone gives: probabilities, and (with LoRA's B made non-zero)
// the gradients of every trainable param, summed over the rows. Padding must not leak through attention or pooling.
static void test_padding(hn_model *m, bool lora) {
    hn_seq_head *hd = NULL;
    hn_lora *lo = NULL;
    hn_lora_config lc = hn_lora_default_config();
    lc.r = 2, lc.alpha = 4;
    hn_status s = hn_cls_head_new(&hd, m, 3, 4);
    if (!s && lora) s = hn_lora_attach_new(&lo, m, &lc);
    hn_cls_objective o = {0};
    if (!s) s = hn_cls_objective_init(&o, m, hd, lo ? hn_lora_params(lo) : NULL);
    CHECK(!s, "%s", hn_errmsg());
    if (s) goto out;
    hn_rng rng;
    hn_rng_seed(&rng, 9);
    for (int i = 0; i < o.params.n; i++)
        for (int64_t j = 0; j < o.params.items[i]->n; j++) o.params.items[i]->data[j] = 0.2f * (hn_rng_f32(&rng) - 0.5f);
    enum { B = 3, T = 7 };
    const int32_t lens[B] = {7, 3, 5}, labels[B] = {2, 0, 1};
    int32_t ids[B * T];
    for (int i = 0; i < B * T; i++) ids[i] = 1 + (int32_t)(hn_rng_u64(&rng) % (uint64_t)(m->hp.n_vocab - 1));
    float pb[B * 3], p1[3];
    hn_cls_batch cb = {.B = B, .T = T, .ids = ids, .lens = lens, .labels = labels};
    CHECK(hn_cls_objective_probs(&o, &cb, pb) == HN_OK, "%s", hn_errmsg());
    int64_t n_all = hn_param_count(&o.params);
    float *g_batch = calloc((size_t)n_all, sizeof *g_batch), *g_rows = calloc((size_t)n_all, sizeof *g_rows);
    hn_param_zero_grads(&o.params);
    double loss_b = 0, loss_r = 0;
    CHECK(hn_cls_objective_loss_grad(&o, &cb, 1.0f, &loss_b, NULL) == HN_OK, "%s", hn_errmsg());
    for (int i = 0, k = 0; i < o.params.n; k += (int)o.params.items[i]->n, i++)
        memcpy(g_batch + k, o.params.items[i]->grad, (size_t)o.params.items[i]->n * sizeof(float));
    hn_param_zero_grads(&o.params);
    double worst_p = 0;
    for (int b = 0; b < B; b++) { // each row alone, unpadded; gradients add up over the calls
        hn_cls_batch one = {.B = 1, .T = lens[b], .ids = ids + b * T, .lens = lens + b, .labels = labels + b};
        CHECK(hn_cls_objective_probs(&o, &one, p1) == HN_OK, "%s", hn_errmsg());
        for (int k = 0; k < 3; k++)
            if (fabs(p1[k] - pb[b * 3 + k]) > worst_p) worst_p = fabs(p1[k] - pb[b * 3 + k]);
        CHECK(hn_cls_objective_loss_grad(&o, &one, 1.0f, &loss_r, NULL) == HN_OK, "%s", hn_errmsg());
    }
    for (int i = 0, k = 0; i < o.params.n; k += (int)o.params.items[i]->n, i++)
        memcpy(g_rows + k, o.params.items[i]->grad, (size_t)o.params.items[i]->n * sizeof(float));
    double worst_g = 0, scale = 0;
    for (int64_t i = 0; i < n_all; i++) {
        if (fabs(g_batch[i] - g_rows[i]) > worst_g) worst_g = fabs(g_batch[i] - g_rows[i]);
        if (fabs(g_rows[i]) > scale) scale = fabs(g_rows[i]);
    }
    CHECK(worst_p < 1e-5 && fabs(loss_b - loss_r) < 1e-5 * (1 + loss_r) && worst_g < 1e-4 * (1 + scale),
          "%s%s: padded batch vs rows alone: probs %g, loss %g vs %g, gradients %g (largest %g)",
          m->hp.arch == HN_ARCH_BERT ? "bert" : "gpt2", lora ? " + lora" : "", worst_p, loss_b, loss_r, worst_g, scale);
    free(g_batch), free(g_rows);
out:
    hn_cls_objective_deinit(&o);
    hn_lora_destroy(lo);
    hn_cls_head_destroy(hd);
}

// ---- training, save, load ----

static void test_learn(hn_model *m, const hn_cls_method *me, const char *what) {
    if (me->applies(m)) {
        CHECK(0, "%s: %s", what, hn_errmsg());
        return;
    }
    uint64_t before = model_hash(m);
    hn_cls_data d;
    toy_data(&d, 24, 2);
    hn_cls_options o = toy_options();
    if (me == &hn_cls_head) o.lr = 3e-2f, o.epochs = 60; // a head on fixed features: cheap epochs
    void *st = NULL;
    float *p1 = calloc((size_t)d.n * 2, sizeof *p1), *p2 = calloc((size_t)d.n * 2, sizeof *p2);
    hn_status s = me->train(m, &d, NULL, &o, &st);
    CHECK(!s, "%s: train: %s", what, hn_errmsg());
    if (s) goto out;
    CHECK(me->predict(m, st, (const char *const *)d.texts, d.n, p1) == HN_OK, "%s", hn_errmsg());
    double acc = accuracy(p1, d.labels, d.n, 2);
    printf("%s: train accuracy %.3f, %lld trainable\n", what, acc, (long long)me->n_trainable(st));
    CHECK(acc == 1.0, "%s: train accuracy %.3f on a separable toy task", what, acc);
    CHECK(model_hash(m) == before, "%s: the model's weights changed", what);
    char dir[] = "/tmp/hone_cls_head_XXXXXX";
    CHECK(mkdtemp(dir) != NULL, "mkdtemp");
    CHECK(me->save(m, st, dir) == HN_OK, "%s: save: %s", what, hn_errmsg());
    me->free(st); // detaches LoRA before the load attaches its own
    st = NULL;
    CHECK(me->load(m, dir, &st) == HN_OK, "%s: load: %s", what, hn_errmsg());
    if (st) {
        CHECK(me->predict(m, st, (const char *const *)d.texts, d.n, p2) == HN_OK, "%s", hn_errmsg());
        CHECK(!memcmp(p1, p2, (size_t)d.n * 2 * sizeof *p1), "%s: probabilities differ after save -> load", what);
    }
    char path[512];
    if (me == &hn_cls_lora) { // PEFT's SEQ_CLS layout
        snprintf(path, sizeof path, "%s/adapter_config.json", dir);
        json_t *j = json_load_file(path, 0, NULL);
        json_t *mts = json_object_get(j, "modules_to_save");
        CHECK(j && !strcmp(json_string_value(json_object_get(j, "task_type")), "SEQ_CLS") && json_array_size(mts) == 2 &&
                  !strcmp(json_string_value(json_array_get(mts, 1)), "score"), "%s: adapter_config.json", what);
        json_decref(j);
        snprintf(path, sizeof path, "%s/adapter_model.safetensors", dir);
        hn_safetensors f;
        if (!hn_safetensors_open(&f, path)) {
            const hn_tensor *w = hn_safetensors_tensor(&f, "base_model.model.score.weight");
            CHECK(w && w->ne[0] == m->hp.n_embd && w->ne[1] == 2, "%s: the head in PEFT's name", what);
            CHECK(hn_safetensors_tensor(&f, "base_model.model.transformer.h.0.attn.c_attn.lora_A.weight") != NULL,
                  "%s: LoRA tensors in PEFT's names", what);
            hn_safetensors_close(&f);
        } else CHECK(0, "%s", hn_errmsg());
        unlink(path);
        snprintf(path, sizeof path, "%s/adapter_config.json", dir);
        unlink(path);
        // a broken config: a clear error naming the file and the key
        FILE *fp = fopen(path, "w");
        fputs("{\"task_type\": \"CAUSAL_LM\", \"r\": 4}\n", fp);
        fclose(fp);
        if (st) me->free(st);
        st = NULL;
        CHECK(me->load(m, dir, &st) == HN_ERR_FORMAT && strstr(hn_errmsg(), "adapter_config.json: 'task_type'"),
              "%s", hn_errmsg());
        unlink(path);
    } else {
        snprintf(path, sizeof path, "%s/head.safetensors", dir);
        unlink(path);
        if (st) me->free(st);
        st = NULL;
        CHECK(me->load(m, dir, &st) != HN_OK && strstr(hn_errmsg(), "head.safetensors"), "%s", hn_errmsg());
    }
    rmdir(dir);
out:
    if (st) me->free(st);
    free(p1), free(p2);
    hn_cls_data_deinit(&d);
}

// PEFT's own SEQ_CLS adapter (tools/reference/cls_peft_ref.py): hone's lora method loads it and gives
// transformers' probabilities.
static void test_peft_golden(hn_model *m) {
    const char *dir = "tests/data/tiny_gpt2/peft_seq_cls";
    char path[256];
    snprintf(path, sizeof path, "%s/probs.json", dir);
    json_t *j = json_load_file(path, 0, NULL);
    json_t *texts = json_object_get(j, "texts"), *probs = json_object_get(j, "probs");
    int n = (int)json_array_size(texts);
    CHECK(j && n == 5 && json_array_size(probs) == (size_t)n, "%s", path);
    void *st = NULL;
    CHECK(hn_cls_lora.load(m, dir, &st) == HN_OK, "%s", hn_errmsg());
    if (st && n == 5) {
        const char *tx[5];
        float p[10];
        for (int i = 0; i < n; i++) tx[i] = json_string_value(json_array_get(texts, i));
        CHECK(hn_cls_lora.predict(m, st, tx, n, p) == HN_OK, "%s", hn_errmsg());
        double worst = 0;
        for (int i = 0; i < n; i++)
            for (int k = 0; k < 2; k++) {
                double want = json_real_value(json_array_get(json_array_get(probs, i), k));
                if (fabs(want - p[i * 2 + k]) > worst) worst = fabs(want - p[i * 2 + k]);
            }
        CHECK(worst < 1e-4, "PEFT's SEQ_CLS adapter: probabilities off by %g", worst);
        printf("PEFT SEQ_CLS adapter on tiny_gpt2: probabilities within %.2g of transformers'\n", worst);
    }
    if (st) hn_cls_lora.free(st);
    json_decref(j);
}

static void test_bad_input(hn_model *m) {
    hn_cls_data d;
    toy_data(&d, 6, 3);
    hn_cls_options o = toy_options();
    void *st = NULL;
    d.labels[2] = 5;
    CHECK(hn_cls_head.train(m, &d, NULL, &o, &st) == HN_ERR_ARG && strstr(hn_errmsg(), "toy: example 2 has label 5"),
          "%s", hn_errmsg());
    d.labels[2] = 0;
    o.epochs = 0;
    CHECK(hn_cls_head.train(m, &d, NULL, &o, &st) == HN_ERR_ARG && strstr(hn_errmsg(), "epochs 0"), "%s", hn_errmsg());
    o = toy_options();
    d.n_classes = 1;
    CHECK(hn_cls_head.train(m, &d, NULL, &o, &st) == HN_ERR_ARG && strstr(hn_errmsg(), "one class only"), "%s",
          hn_errmsg());
    d.n_classes = 2;
    CHECK(st == NULL, "state left after a failure");
    hn_cls_data_deinit(&d);
}

// ---- a short real run: SmolLM2-135M, head only, rt-polarity ----

// Up to n ASCII lines of path, from line `skip` on.
static int read_ascii_lines(const char *path, int skip, int n, char **out) {
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    char buf[2048];
    int k = 0, line = 0;
    while (k < n && fgets(buf, sizeof buf, f)) {
        if (line++ < skip) continue;
        bool ascii = true;
        for (char *p = buf; *p; p++) ascii &= (unsigned char)*p < 128;
        buf[strcspn(buf, "\r\n")] = 0;
        if (ascii && *buf) out[k++] = strdup(buf);
    }
    fclose(f);
    return k;
}

static void rt_data(hn_cls_data *d, const char *dir, int skip, int per_class) {
    memset(d, 0, sizeof *d);
    d->texts = calloc((size_t)per_class * 2, sizeof *d->texts);
    d->labels = calloc((size_t)per_class * 2, sizeof *d->labels);
    d->classes = calloc(2, sizeof *d->classes);
    d->classes[0] = strdup("neg"), d->classes[1] = strdup("pos");
    d->n_classes = 2;
    d->source = strdup("rt-polarity");
    char p[600];
    char **neg = calloc((size_t)per_class, sizeof *neg), **pos = calloc((size_t)per_class, sizeof *pos);
    snprintf(p, sizeof p, "%s/rt-polarity/rt-polarity.neg", dir);
    int nn = read_ascii_lines(p, skip, per_class, neg);
    snprintf(p, sizeof p, "%s/rt-polarity/rt-polarity.pos", dir);
    int np = read_ascii_lines(p, skip, per_class, pos);
    for (int i = 0; i < nn || i < np; i++) { // interleaved
        if (i < nn) d->texts[d->n] = neg[i], d->labels[d->n++] = 0;
        if (i < np) d->texts[d->n] = pos[i], d->labels[d->n++] = 1;
    }
    free(neg), free(pos);
}

static void test_real(void) {
    const char *dir = getenv("HONE_SHARED_DATA") ? getenv("HONE_SHARED_DATA") : "../shared/data";
    char p[600];
    struct stat sb;
    snprintf(p, sizeof p, "%s/rt-polarity/rt-polarity.pos", dir);
    char *path;
    if (stat(p, &sb) != 0) {
        printf("skipped the SmolLM2 run: no %s (set HONE_SHARED_DATA)\n", p);
        return;
    }
    if (hn_model_resolve("smollm2-135m-instruct", &path)) {
        printf("skipped the SmolLM2 run: %s\n", hn_errmsg());
        return;
    }
    hn_model *m;
    if (hn_model_load(&m, path, NULL)) {
        CHECK(0, "%s", hn_errmsg());
        free(path);
        return;
    }
    free(path);
    hn_cls_data tr, te;
    rt_data(&tr, dir, 0, sanitized ? 20 : 100);  // lines 0.. of each file
    rt_data(&te, dir, 2000, sanitized ? 10 : 50); // held out: lines 2000.. of each
    // Head only: the body's pooled states once, then many cheap epochs of the head on them.
    hn_cls_options o = {.seed = 1, .threads = 2, .max_len = 48, .epochs = 40, .batch = 16, .lr = 1e-3f,
                        .weight_decay = 0.01f};
    void *st = NULL;
    hn_status s = hn_cls_head.train(m, &tr, NULL, &o, &st);
    CHECK(!s, "%s", hn_errmsg());
    if (!s) {
        float *pr = calloc((size_t)te.n * 2, sizeof *pr);
        CHECK(hn_cls_head.predict(m, st, (const char *const *)te.texts, te.n, pr) == HN_OK, "%s", hn_errmsg());
        double acc = accuracy(pr, te.labels, te.n, 2);
        printf("SmolLM2-135M head-only on rt-polarity: %d train, held-out accuracy %.3f on %d (majority 0.5)\n", tr.n,
               acc, te.n);
        if (!sanitized) CHECK(acc >= 0.6, "held-out accuracy %.3f does not beat the majority class (0.5)", acc);
        free(pr);
        hn_cls_head.free(st);
    }
    hn_cls_data_deinit(&tr);
    hn_cls_data_deinit(&te);
    hn_model_destroy(m);
}

int main(void) {
    sanitized = getenv("HONE_SANITIZED") != NULL;
    hn_threads_set(1); // a test beside others on 2 cores: OpenMP threads that wait spin
    test_pool_grad();
    hn_model *gpt2 = NULL, *bert = NULL;
    if (hn_model_load(&gpt2, "tests/data/tiny_gpt2", NULL) || hn_model_load(&bert, "tests/data/tiny_bert", NULL)) {
        CHECK(0, "%s", hn_errmsg());
        return test_done();
    }
    test_head_grad(bert);
    test_freezing(gpt2, false);
    test_freezing(gpt2, true);
    test_freezing(bert, false);
    test_padding(gpt2, true);
    test_padding(bert, false);
    test_learn(gpt2, &hn_cls_head, "tiny_gpt2 head");
    test_learn(gpt2, &hn_cls_lora, "tiny_gpt2 lora");
    test_learn(bert, &hn_cls_head, "tiny_bert head");
    CHECK(hn_cls_lora.applies(bert) == HN_OK, "%s", hn_errmsg()); // BERT's LoRA: tests/test_cls_bert.c
    test_peft_golden(gpt2);
    test_bad_input(gpt2);
    hn_model_destroy(gpt2);
    hn_model_destroy(bert);
    test_real();
    return test_done();
}
