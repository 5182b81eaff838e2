// tests/test_cls_bert.c — LoRA classification on BERT-family encoders (train/cls_lora.c over adapt/lora.c, with the
// head of adapt/cls_head.c reading BERT's pooler):
// - PEFT's own SEQ_CLS adapter on tests/data/tiny_bert (tools/reference/cls_bert_peft_ref.py: BertForSequenceClassification,
//   LoRA on query/key/value/attention.output.dense/intermediate.dense/output.dense, the classifier in
//   modules_to_save) loads into hone, and on the same padded batch hone's loss and the gradient of every LoRA A/B and
//   of the classifier meet DESIGN.md section 7 (loss: relative diff <= 1e-5; gradients: max abs diff <= 1e-4 x
//   max(1, max |reference|)); the probabilities equal PEFT's after its load, from the ids and from the texts;
// - the pooler rule (a plain BERT with a pooler classifies through it; a GGUF without one, a mean-pooling sentence
//   encoder do not) and the pooler's tanh against finite differences;
// - hone's save is PEFT's layout (names, task_type, modules_to_save, target_modules) and loads back to the same
//   probabilities, for BERT and for DistilBERT's own module names; a toy task is learnt;
// - broken adapters (a missing classifier tensor, a wrong shape, a wrong task_type, LoRA on the pooler) give one-line
//   errors.
#include "adapt/cls_head.h"
#include "adapt/lora.h"
#include "io/safetensors.h"
#include "tests/cls_test.h"
#include "tests/test.h"
#include "tests/tiny_golden.h"
#include "train/cls_impl.h"

#include <jansson.h>
#include <math.h>
#include <string.h>
#include <unistd.h>

extern const hn_cls_method hn_cls_lora;

#define BERT_DIR "tests/data/tiny_bert"
#define GOLDEN_DIR BERT_DIR "/peft_seq_cls"

// ---- PEFT's adapter: loss, gradients, probabilities ----

static void test_golden(hn_model *m) {
    tg_file g;
    if (!tg_load(&g, GOLDEN_DIR "/golden.bin")) {
        CHECK(0, "cannot read " GOLDEN_DIR "/golden.bin");
        return;
    }
    const tg_array *ids = tg_get(&g, "input_ids"), *lens = tg_get(&g, "lens"), *labels = tg_get(&g, "labels"),
                   *loss = tg_get(&g, "loss"), *probs = tg_get(&g, "probs.loaded");
    void *state = NULL;
    CHECK(ids && lens && labels && loss && probs, "golden arrays");
    CHECK(hn_cls_lora.load(m, GOLDEN_DIR, &state) == HN_OK, "load PEFT's adapter: %s", hn_errmsg());
    if (!state || !ids || !lens || !labels || !loss || !probs) goto out;
    hn_cls_state *st = state;
    CHECK(st->head->pooler && st->head->n_classes == 3 && st->head->has_bias, "BertForSequenceClassification's head");
    const int B = (int)ids->dims[0], T = (int)ids->dims[1], K = 3;
    hn_cls_batch cb = {.B = B, .T = T, .ids = ids->i, .lens = lens->i, .labels = labels->i};
    hn_param_zero_grads(&st->obj.params);
    double loss_sum = 0;
    CHECK(hn_cls_objective_loss_grad(&st->obj, &cb, 1.0f / B, &loss_sum, NULL) == HN_OK, "%s", hn_errmsg());
    double rel = fabs(loss_sum / B - loss->f[0]) / fabs(loss->f[0]);
    CHECK(rel <= 1e-5, "loss %.7f vs PEFT's %.7f: relative diff %.3g", loss_sum / B, (double)loss->f[0], rel);
    // every trainable tensor of PEFT's has hone's gradient under the same name, and no other trains
    int n_ref = 0, n_match = 0;
    double worst_abs = 0, worst_ratio = 0;
    for (int i = 0; i < g.n; i++) {
        if (strncmp(g.a[i].name, "grad.", 5)) continue;
        n_ref++;
        const char *name = g.a[i].name + 5;
        for (int k = 0; k < st->obj.params.n; k++) {
            hn_param *p = st->obj.params.items[k];
            char full[192];
            snprintf(full, sizeof full, "%s%s", strncmp(p->name, HN_PEFT_PREFIX, strlen(HN_PEFT_PREFIX)) ?
                     HN_PEFT_PREFIX : "", p->name);
            if (strcmp(full, name)) continue;
            if (p->n != g.a[i].n) break;
            n_match++;
            double d = max_diff(p->grad, g.a[i].f, p->n), tol = 1e-4 * fmax(1, max_abs(g.a[i].f, p->n));
            CHECK(d <= tol, "gradient of %s: max abs diff %.3g, tolerance %.3g", name, d, tol);
            worst_abs = fmax(worst_abs, d), worst_ratio = fmax(worst_ratio, d / tol);
        }
    }
    CHECK(n_ref == 26 && n_match == n_ref && st->obj.params.n == n_ref, "%d reference gradients, %d matched, %d params",
          n_ref, n_match, st->obj.params.n);
    printf("PEFT SEQ_CLS LoRA on tiny_bert (B %d, T %d): loss %.7f vs %.7f (rel %.2g); %d gradients, max abs diff "
           "%.2g (%.2f of the tolerance)\n", B, T, loss_sum / B, (double)loss->f[0], rel, n_match, worst_abs,
           worst_ratio);
    float p[64];
    CHECK(hn_cls_objective_probs(&st->obj, &cb, p) == HN_OK, "%s", hn_errmsg());
    double dp = max_diff(p, probs->f, (int64_t)B * K);
    CHECK(dp <= 1e-5, "probabilities from the ids vs PEFT's load: %.3g", dp);
    // the same texts through hone's tokenizer and predict
    char *texts[8];
    FILE *f = fopen(GOLDEN_DIR "/texts.txt", "r");
    int n = 0;
    char line[256];
    while (f && n < 8 && fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = 0;
        texts[n++] = sdup(strchr(line, '\t') + 1);
    }
    if (f) fclose(f);
    CHECK(n == B, "%d texts", n);
    if (n == B) {
        CHECK(hn_cls_lora.predict(m, state, (const char *const *)texts, n, p) == HN_OK, "%s", hn_errmsg());
        dp = max_diff(p, probs->f, (int64_t)B * K);
        CHECK(dp <= 1e-5, "probabilities from the texts vs PEFT's load: %.3g", dp);
        printf("  probabilities vs PEFT's load: max abs diff %.2g\n", dp);
    }
    for (int i = 0; i < n; i++) free(texts[i]);
out:
    if (state) hn_cls_lora.free(state);
    tg_free(&g);
}

// ---- the pooler ----

static void test_tanh_grad(void) {
    enum { N = 3, C = 4 };
    float x[N * C], r[N * C];
    hn_rng rng;
    hn_rng_seed(&rng, 5);
    for (int i = 0; i < N * C; i++) x[i] = 4 * hn_rng_f32(&rng) - 2, r[i] = 2 * hn_rng_f32(&rng) - 1;
    hn_arena a = {0};
    hn_tape tape = {0};
    hn_ctx c = {.arena = &a, .tape = &tape};
    hn_var *xv = hn_var_wrap(&c, x, N, C, true), *y = hn_cls_op_tanh(&c, xv);
    CHECK(y && y->rg, "tanh");
    if (!y) return;
    memcpy(hn_var_grad(&c, y), r, sizeof r);
    CHECK(hn_backward(&c) == HN_OK, "%s", hn_errmsg());
    double worst = 0;
    for (int i = 0; i < N * C; i++) {
        double h = 1e-3, num = (tanh(x[i] + h) - tanh(x[i] - h)) / (2 * h) * r[i];
        worst = fmax(worst, fabs(num - xv->g[i]));
    }
    CHECK(worst < 1e-5, "tanh's backward off by %g", worst);
    hn_arena_deinit(&a);
}

static void test_pooler_rule(hn_model *dir) {
    CHECK(dir->pooler.w && hn_cls_head_uses_pooler(dir), "a plain BERT with a pooler classifies through it");
    hn_model *gguf = NULL;
    CHECK(hn_model_load(&gguf, BERT_DIR "/tiny_bert.gguf", NULL) == HN_OK, "%s", hn_errmsg());
    if (gguf) CHECK(!gguf->pooler.w && !hn_cls_head_uses_pooler(gguf), "no pooler in the GGUF (llama.cpp drops it)");
    hn_model_destroy(gguf);
    // the same checkpoint as a sentence-transformers encoder pooling by mean: the mean, not the pooler
    char *tmp = tmpdir_for("bert_pool");
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "mkdir -p %s/1_Pooling && for f in config.json model.safetensors tokenizer.json "
             "tokenizer_config.json vocab.txt; do ln -s \"$PWD\"/" BERT_DIR "/$f %s/; done && echo "
             "'{\"pooling_mode_mean_tokens\": true}' > %s/1_Pooling/config.json", tmp, tmp, tmp);
    CHECK(tmp && system(cmd) == 0, "setup");
    hn_model *st = NULL;
    CHECK(hn_model_load(&st, tmp, NULL) == HN_OK, "%s", hn_errmsg());
    if (st) {
        hn_seq_head *hd = NULL;
        CHECK(st->pooler.w && !hn_cls_head_uses_pooler(st) && hn_cls_head_new(&hd, st, 2, 1) == HN_OK && !hd->pooler &&
              hd->pool == HN_GPOOL_MEAN, "mean pooling stated: the head reads the mean");
        hn_cls_head_destroy(hd);
    }
    hn_model_destroy(st);
    snprintf(cmd, sizeof cmd, "echo '{\"pooling_mode_cls_token\": true}' > %s/1_Pooling/config.json", tmp);
    CHECK(system(cmd) == 0, "cls pooling");
    CHECK(hn_model_load(&st, tmp, NULL) == HN_OK, "%s", hn_errmsg());
    if (st) CHECK(hn_cls_head_uses_pooler(st), "[CLS] pooling stated: the pooler, as transformers");
    hn_model_destroy(st);
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmp);
    CHECK(system(cmd) == 0, "cleanup");
    free(tmp);
}

// ---- training, save, load ----

static void toy_data(hn_cls_data *d, int n) {
    static const char *const first[2][2] = {{"cat", "dog"}, {"hello", "world"}};
    static const char *const filler[] = {"the", "sat", "on", "mat", "run", "token", "embed", "a", "b"};
    char *texts[64];
    int labels[64];
    hn_rng rng;
    hn_rng_seed(&rng, 17);
    for (int i = 0; i < n; i++) {
        char buf[128];
        int len = snprintf(buf, sizeof buf, "%s", first[i % 2][hn_rng_u64(&rng) % 2]);
        for (int w = 0, nw = 2 + (int)(hn_rng_u64(&rng) % 4); w < nw; w++)
            len += snprintf(buf + len, sizeof buf - len, " %s", filler[hn_rng_u64(&rng) % 9]);
        texts[i] = sdup(buf), labels[i] = i % 2;
    }
    static const char *const classes[] = {"animal", "greeting"};
    data_init(d, (const char *const *)texts, labels, n, classes, 2);
    d->source = sdup("toy");
    for (int i = 0; i < n; i++) free(texts[i]);
}

static json_t *read_config(const char *dir) {
    char path[512];
    snprintf(path, sizeof path, "%s/adapter_config.json", dir);
    return json_load_file(path, 0, NULL);
}

static bool has_string(json_t *arr, const char *s) {
    for (size_t i = 0; i < json_array_size(arr); i++)
        if (!strcmp(json_string_value(json_array_get(arr, i)), s)) return true;
    return false;
}

// Trains LoRA + head on the toy task, saves, checks the PEFT layout (a LoRA tensor name `lora_name`, the classifier,
// the config), loads back and compares the probabilities (bit-identical).
static void test_train_save_load(hn_model *m, const char *what, int epochs, const char *lora_name,
                                 const char *target, double min_acc) {
    hn_cls_data d;
    toy_data(&d, 24);
    hn_cls_options o = hn_cls_default_options();
    o.seed = 3, o.max_len = 32, o.epochs = epochs, o.batch = 8, o.lr = 1e-2f, o.weight_decay = 0, o.lora_r = 4;
    o.lora_alpha = 8;
    void *st = NULL;
    float *p1 = calloc((size_t)d.n * 2, sizeof *p1), *p2 = calloc((size_t)d.n * 2, sizeof *p2);
    char *dir = tmpdir_for("bert_lora");
    CHECK(hn_cls_lora.applies(m) == HN_OK && hn_cls_lora.train(m, &d, NULL, &o, &st) == HN_OK, "%s: train: %s", what,
          hn_errmsg());
    if (!st || !dir) goto out;
    CHECK(hn_cls_lora.predict(m, st, (const char *const *)d.texts, d.n, p1) == HN_OK, "%s", hn_errmsg());
    int hit = 0;
    for (int i = 0; i < d.n; i++) hit += (p1[2 * i + 1] > p1[2 * i]) == (d.labels[i] == 1);
    printf("%s: train accuracy %.3f after %d epochs, %lld trainable\n", what, (double)hit / d.n, epochs,
           (long long)hn_cls_lora.n_trainable(st));
    CHECK((double)hit / d.n >= min_acc, "%s: train accuracy %.3f", what, (double)hit / d.n);
    CHECK(hn_cls_lora.save(m, st, dir) == HN_OK, "%s: save: %s", what, hn_errmsg());
    hn_cls_lora.free(st);
    st = NULL;
    json_t *c = read_config(dir);
    json_t *tm = json_object_get(c, "target_modules"), *mts = json_object_get(c, "modules_to_save");
    CHECK(c && !strcmp(json_string_value(json_object_get(c, "task_type")), "SEQ_CLS") && has_string(mts, "classifier")
          && has_string(mts, "score") && has_string(tm, target) && json_array_size(tm) == 6 &&
          json_is_false(json_object_get(c, "fan_in_fan_out")), "%s: adapter_config.json", what);
    json_decref(c);
    char path[512];
    snprintf(path, sizeof path, "%s/adapter_model.safetensors", dir);
    hn_safetensors f;
    if (!hn_safetensors_open(&f, path)) {
        const hn_tensor *w = hn_safetensors_tensor(&f, "base_model.model.classifier.weight"),
                        *b = hn_safetensors_tensor(&f, "base_model.model.classifier.bias");
        CHECK(w && b && w->ne[0] == m->hp.n_embd && w->ne[1] == 2 && b->ne[0] == 2, "%s: the classifier in PEFT's "
              "names", what);
        CHECK(hn_safetensors_tensor(&f, lora_name) != NULL, "%s: '%s' in the file", what, lora_name);
        CHECK(f.n_tensors == (size_t)(2 + 12 * m->hp.n_layer), "%s: %zu tensors", what, f.n_tensors);
        hn_safetensors_close(&f);
    } else CHECK(0, "%s", hn_errmsg());
    CHECK(hn_cls_lora.load(m, dir, &st) == HN_OK, "%s: load: %s", what, hn_errmsg());
    if (st) {
        CHECK(hn_cls_lora.predict(m, st, (const char *const *)d.texts, d.n, p2) == HN_OK, "%s", hn_errmsg());
        CHECK(!memcmp(p1, p2, (size_t)d.n * 2 * sizeof *p1), "%s: probabilities differ after save -> load", what);
    }
out:
    if (st) hn_cls_lora.free(st);
    if (dir) {
        char cmd[600];
        snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
        CHECK(system(cmd) == 0, "cleanup");
    }
    free(dir), free(p1), free(p2);
    hn_cls_data_deinit(&d);
}

// ---- broken adapters ----

// A copy of the golden adapter in dir: the config with `from` replaced by `to` (NULL: as it is), the tensors without
// `drop` and with `reshape` cut to one row or one value (NULL: none).
static void broken_copy(const char *dir, const char *from, const char *to, const char *drop, const char *reshape) {
    char path[512];
    FILE *f = fopen(GOLDEN_DIR "/adapter_config.json", "r");
    char cfg[8192];
    size_t n = f ? fread(cfg, 1, sizeof cfg - 1, f) : 0;
    if (f) fclose(f);
    cfg[n] = 0;
    char *at = from ? strstr(cfg, from) : NULL;
    snprintf(path, sizeof path, "%s/adapter_config.json", dir);
    FILE *o = fopen(path, "w");
    if (at) fprintf(o, "%.*s%s%s", (int)(at - cfg), cfg, to, at + strlen(from));
    else fputs(cfg, o);
    fclose(o);
    hn_safetensors st;
    if (hn_safetensors_open(&st, GOLDEN_DIR "/adapter_model.safetensors")) return;
    hn_safetensors_writer *w = hn_safetensors_writer_create();
    for (size_t i = 0; i < st.n_tensors; i++) {
        const hn_tensor *t = &st.tensors[i];
        if (drop && !strcmp(st.names[i], drop)) continue;
        int64_t ne[4] = {t->ne[0], t->ne[1], t->ne[2], t->ne[3]};
        if (reshape && !strcmp(st.names[i], reshape)) ne[t->ndim == 1 ? 0 : 1] = 1;
        hn_safetensors_writer_add(w, st.names[i], t->type, t->ndim, ne, t->data);
    }
    snprintf(path, sizeof path, "%s/adapter_model.safetensors", dir);
    CHECK(hn_safetensors_writer_write(w, path) == HN_OK, "%s", hn_errmsg());
    hn_safetensors_writer_destroy(w);
    hn_safetensors_close(&st);
}

static void expect_error(hn_model *m, const char *dir, const char *want, const char *what) {
    void *st = NULL;
    hn_status s = hn_cls_lora.load(m, dir, &st);
    const char *msg = hn_errmsg();
    CHECK(s != HN_OK && !st && strstr(msg, want) && !strchr(msg, '\n'), "%s: got '%s' (%d), expected '%s'", what, msg,
          (int)s, want);
    if (st) hn_cls_lora.free(st);
}

static void test_broken(hn_model *m) {
    char *dir = tmpdir_for("bert_broken");
    if (!dir) return;
    broken_copy(dir, NULL, NULL, "base_model.model.classifier.weight", NULL);
    expect_error(m, dir, "no tensor 'base_model.model.classifier.weight'", "missing classifier");
    broken_copy(dir, NULL, NULL, NULL, "base_model.model.bert.encoder.layer.1.attention.self.value.lora_A.weight");
    expect_error(m, dir, "'base_model.model.bert.encoder.layer.1.attention.self.value.lora_A.weight' is not F32 [4, 64]",
                 "wrong shape");
    broken_copy(dir, NULL, NULL, NULL, "base_model.model.classifier.bias");
    expect_error(m, dir, "'base_model.model.classifier.bias' is not F32 [3]", "wrong bias shape");
    broken_copy(dir, "\"SEQ_CLS\"", "\"CAUSAL_LM\"", NULL, NULL);
    expect_error(m, dir, "adapter_config.json: 'task_type': expected \"SEQ_CLS\"", "wrong task_type");
    broken_copy(dir, "\"key\",", "\"key\", \"bert.pooler.dense\",", NULL, NULL);
    expect_error(m, dir, "hone does not adapt BERT's pooler", "LoRA on the pooler");
    broken_copy(dir, "\"use_dora\": false", "\"use_dora\": true", NULL, NULL);
    expect_error(m, dir, "'use_dora' is set", "DoRA");
    broken_copy(dir, "\"query\"", "\"qurey\"", NULL, NULL);
    expect_error(m, dir, "LoRA target 'qurey' is not a linear layer", "unknown target");
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    CHECK(system(cmd) == 0, "cleanup");
    free(dir);
}

static void test_targets(void) {
    unsigned m;
    const char *dense[] = {"dense"}, *bert[] = {"query", "value"}, *out[] = {"output.dense"},
               *path[] = {"bert.encoder.layer.3.output.dense", "distilbert.transformer.layer.0.attention.q_lin"},
               *distil[] = {"q_lin", "lin2"}, *pool[] = {"bert.pooler.dense"};
    CHECK(!hn_lora_parse_targets(dense, 1, &m) && m == (1u << HN_PROJ_O | 1u << HN_PROJ_UP | 1u << HN_PROJ_DOWN),
          "dense: %x", m);
    CHECK(!hn_lora_parse_targets(bert, 2, &m) && m == (1u << HN_PROJ_Q | 1u << HN_PROJ_V), "query, value: %x", m);
    CHECK(!hn_lora_parse_targets(out, 1, &m) && m == (1u << HN_PROJ_O | 1u << HN_PROJ_DOWN), "output.dense: %x", m);
    CHECK(!hn_lora_parse_targets(path, 2, &m) && m == (1u << HN_PROJ_DOWN | 1u << HN_PROJ_Q), "paths: %x", m);
    CHECK(!hn_lora_parse_targets(distil, 2, &m) && m == (1u << HN_PROJ_Q | 1u << HN_PROJ_DOWN), "distilbert: %x", m);
    CHECK(hn_lora_parse_targets(pool, 1, &m) == HN_ERR_UNSUPPORTED && strstr(hn_errmsg(), "pooler"), "%s",
          hn_errmsg());
}

int main(void) {
    (void)read_lines; // tests/cls_test.h's, unused here
    bool sanitized = getenv("HONE_SANITIZED") != NULL;
    hn_threads_set(1);
    test_tanh_grad();
    test_targets();
    hn_model_params p = hn_model_default_params();
    p.mm_mode = HN_MM_EXACT;
    hn_model *bert = NULL, *distil = NULL;
    if (hn_model_load(&bert, BERT_DIR, &p) || hn_model_load(&distil, BERT_DIR "/distilbert", &p)) {
        CHECK(0, "%s", hn_errmsg());
        return test_done();
    }
    test_golden(bert);
    test_pooler_rule(bert);
    test_broken(bert);
    test_train_save_load(bert, "tiny_bert lora", sanitized ? 3 : 20,
                         "base_model.model.bert.encoder.layer.1.output.dense.lora_B.weight", "attention.output.dense",
                         sanitized ? 0 : 1.0);
    test_train_save_load(distil, "tiny distilbert lora", 3,
                         "base_model.model.distilbert.transformer.layer.0.attention.q_lin.lora_A.weight", "lin2", 0);
    hn_model_destroy(bert);
    hn_model_destroy(distil);
    return test_done();
}
