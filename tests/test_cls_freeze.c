// tests/test_cls_freeze.c — the methods that train the model's own weights (adapt/unfreeze.h, train/cls_tune.c):
// for each freezing rule (last-k, gradual, BitFit, full) on a tiny decoder and a tiny encoder, exactly the intended
// tensors are copied, receive gradients and optimizer state (counted, and the counts written out by hand), the
// frozen ones get neither, and the file's weights stay bit-identical; the gradients of the copies against finite
// differences; gradual unfreezing opens the blocks from the top; BitFit refuses a model without biases; a trained
// run saved and loaded predicts the same; a broken weights file is refused with a message naming the tensor.
#include "adapt/cls_head.h"
#include "adapt/unfreeze.h"
#include "io/safetensors.h"
#include "train/classify.h"
#include "train/cls_objective.h"
#include "train/optim.h"
#include "cls_test.h"
#include "test.h"

#include <math.h>
#include <string.h>
#include <unistd.h>

extern const hn_cls_method hn_cls_last_k, hn_cls_gradual, hn_cls_bitfit, hn_cls_full;

// Every slot reads a file tensor with no gradient (nothing left attached).
static void slot_is_file(void *user, const hn_tensor **slot, int layer, hn_wrole role) {
    const hn_model *m = user;
    bool ok = !(*slot)->grad && *slot >= m->gguf.tensors && *slot < m->gguf.tensors + m->gguf.n_tensors;
    CHECK(ok, "slot of %s (layer %d, role %d) does not read the file's tensor", (*slot)->name, layer, (int)role);
}

static int params_with(const hn_param_list *l, const hn_adamw *opt) {
    int n = 0;
    for (int i = 0; i < l->n; i++) {
        const float *v = opt ? opt->m + opt->off[i] : l->items[i]->grad;
        bool any = false;
        for (int64_t j = 0; j < l->items[i]->n && !any; j++) any = v[j] != 0;
        n += any;
    }
    return n;
}

// Trainable copies by a rule, a fresh head, and the objective over both.
typedef struct {
    hn_unfreeze *u;
    hn_seq_head *hd;
    hn_cls_objective o;
} rig;

static hn_status rig_new(rig *g, hn_model *m, hn_unfreeze_rule r, uint64_t seed) {
    memset(g, 0, sizeof *g);
    hn_status s = hn_unfreeze_new(&g->u, m, &r);
    if (!s) s = hn_cls_head_new(&g->hd, m, 2, seed);
    if (!s) s = hn_cls_objective_init(&g->o, m, g->hd, hn_unfreeze_params(g->u));
    return s;
}

static void rig_free(rig *g) {
    hn_cls_objective_deinit(&g->o);
    hn_cls_head_destroy(g->hd);
    hn_unfreeze_destroy(g->u);
}

// A fixed batch of 4 rows from token ids (no tokenizer needed).
typedef struct {
    int32_t ids[4 * 6], lens[4], labels[4];
    hn_cls_batch b;
} batch4;

static void make_batch(batch4 *bt, int n_vocab) {
    for (int i = 0; i < 4 * 6; i++) bt->ids[i] = (int32_t)((7 * i + 3) % n_vocab);
    const int32_t lens[4] = {6, 4, 5, 3}, labels[4] = {0, 1, 1, 0};
    memcpy(bt->lens, lens, sizeof lens), memcpy(bt->labels, labels, sizeof labels);
    bt->b = (hn_cls_batch){.B = 4, .T = 6, .ids = bt->ids, .lens = bt->lens, .labels = bt->labels};
}

// The rule's copies get gradients and optimizer state, the rest nothing; the file is untouched after detaching.
// expect: the tensors the rule must choose, counted by hand for the model.
static void check_rule(hn_model *m, const char *what, hn_unfreeze_rule r, int expect, int64_t expect_values) {
    uint64_t before = model_hash(m);
    CHECK(hn_unfreeze_count(m, &r) == expect, "%s: the rule chooses %d tensors, expected %d", what,
          hn_unfreeze_count(m, &r), expect);
    rig g;
    hn_status s = rig_new(&g, m, r, 3);
    hn_unfreeze *u = g.u;
    hn_seq_head *hd = g.hd;
    hn_cls_objective *o = &g.o;
    CHECK(!s, "%s: %s", what, hn_errmsg());
    if (s) goto out;
    hn_param_list *pl = hn_unfreeze_params(u);
    CHECK(pl->n == expect && hn_param_count(pl) == expect_values && hn_unfreeze_n_trainable(u) == expect_values,
          "%s: %d copies of %lld values, expected %d of %lld", what, pl->n, (long long)hn_param_count(pl), expect,
          (long long)expect_values);
    batch4 bt;
    make_batch(&bt, m->hp.n_vocab);
    hn_adamw opt;
    hn_adamw_params ap = hn_adamw_default_params();
    CHECK(hn_adamw_init(&opt, &o->params, &ap) == HN_OK, "%s", hn_errmsg());
    CHECK(opt.n_total == hn_param_count(&o->params), "%s: optimizer state for %lld of %lld values", what,
          (long long)opt.n_total, (long long)hn_param_count(&o->params));
    for (int step = 0; step < 2; step++) {
        hn_param_zero_grads(&o->params);
        double loss = 0;
        CHECK(hn_cls_objective_loss_grad(o, &bt.b, 0.25f, &loss, NULL) == HN_OK, "%s: %s", what, hn_errmsg());
        if (step == 0) // every chosen tensor and the head's get a gradient
            CHECK(params_with(&o->params, NULL) == o->params.n && o->params.n == expect + hd->params.n,
                  "%s: %d of %d params have a gradient", what, params_with(&o->params, NULL), o->params.n);
        hn_adamw_step(&opt, 1e-3);
    }
    CHECK(params_with(&o->params, &opt) == o->params.n, "%s: %d of %d params have optimizer state", what,
          params_with(&o->params, &opt), o->params.n);
    hn_adamw_deinit(&opt);
out:
    rig_free(&g);
    CHECK(model_hash(m) == before, "%s: the file's weights changed", what);
    hn_model_weights(m, slot_is_file, m);
}

// The loss of the fixed batch (the objective's forward, no tape).
static double batch_loss(hn_cls_objective *o, batch4 *bt) {
    float probs[4 * 2];
    if (hn_cls_objective_probs(o, &bt->b, probs)) return NAN;
    double l = 0;
    for (int b = 0; b < 4; b++) l -= log(probs[b * 2 + bt->labels[b]]);
    return l;
}

// d loss / d w for a few values of each role's copies against central differences (the exact fp32 path).
static void check_fd(hn_model *m, const char *what, unsigned roles) {
    rig g;
    hn_status s = rig_new(&g, m, (hn_unfreeze_rule){.from_layer = -1, .roles = roles}, 5);
    hn_unfreeze *u = g.u;
    hn_cls_objective *o = &g.o;
    CHECK(!s, "%s: %s", what, hn_errmsg());
    if (!s) {
        batch4 bt;
        make_batch(&bt, m->hp.n_vocab);
        hn_param_zero_grads(&o->params);
        double loss = 0;
        CHECK(hn_cls_objective_loss_grad(o, &bt.b, 1.0f, &loss, NULL) == HN_OK, "%s", hn_errmsg());
        hn_param_list *pl = hn_unfreeze_params(u);
        double worst = 0;
        int checked = 0;
        for (int i = 0; i < pl->n; i++) {
            hn_param *p = pl->items[i];
            // the largest gradient of the tensor (a value the batch reaches: embedding rows of its ids)
            int64_t j = 0;
            for (int64_t k = 1; k < p->n; k++)
                if (fabsf(p->grad[k]) > fabsf(p->grad[j])) j = k;
            if (fabsf(p->grad[j]) < 1e-4f) continue; // a key bias: softmax ignores it
            const float h = 1e-2f, keep = p->data[j];
            p->data[j] = keep + h;
            double up = batch_loss(o, &bt);
            p->data[j] = keep - h;
            double down = batch_loss(o, &bt);
            p->data[j] = keep;
            double num = (up - down) / (2 * h), rel = fabs(num - p->grad[j]) / fmax(fabs(num), 1e-2);
            if (rel > worst) worst = rel;
            CHECK(rel < 2e-2, "%s: %s[%lld]: gradient %g, finite differences %g", what, p->name, (long long)j,
                  (double)p->grad[j], num);
            checked++;
        }
        CHECK(checked >= pl->n - m->hp.n_layer, "%s: only %d of %d tensors checked", what, checked, pl->n);
        printf("%s: %d tensors, worst relative gradient error %.2e\n", what, checked, worst);
    }
    rig_free(&g);
}

// Gradual: with blocks from L-1 open, the lower blocks' copies get no gradient, no optimizer state and keep their
// values; opening the rest gives every copy a gradient.
static void check_gradual(hn_model *m) {
    const int L = m->hp.n_layer;
    rig g;
    hn_status s = rig_new(&g, m, (hn_unfreeze_rule){.from_layer = 0, .roles = HN_UNFREEZE_BLOCK}, 3);
    hn_unfreeze *u = g.u;
    hn_seq_head *hd = g.hd;
    hn_cls_objective *o = &g.o;
    CHECK(!s, "gradual: %s", hn_errmsg());
    if (s) goto out;
    hn_param_list *pl = hn_unfreeze_params(u);
    hn_unfreeze_set_from(u, L - 1);
    int top = 0, below = 0; // copies of the top block (+ final norm) and of the others
    int64_t top_values = 0;
    for (int i = 0; i < pl->n; i++) {
        bool is_top = pl->items[i]->frozen == false;
        top += is_top, below += !is_top;
        top_values += is_top ? pl->items[i]->n : 0;
    }
    CHECK(top > 0 && below > 0 && hn_unfreeze_n_trainable(u) == top_values, "gradual: %d open, %d frozen", top, below);
    float *keep = malloc(sizeof(float) * (size_t)hn_param_count(pl)), *k = keep;
    for (int i = 0; i < pl->n; i++, k += pl->items[i - 1]->n)
        memcpy(k, pl->items[i]->data, sizeof(float) * (size_t)pl->items[i]->n);
    batch4 bt;
    make_batch(&bt, m->hp.n_vocab);
    hn_adamw opt;
    hn_adamw_params ap = hn_adamw_default_params();
    hn_adamw_init(&opt, &o->params, &ap);
    hn_param_zero_grads(&o->params);
    double loss = 0;
    CHECK(hn_cls_objective_loss_grad(o, &bt.b, 0.25f, &loss, NULL) == HN_OK, "%s", hn_errmsg());
    hn_adamw_step(&opt, 1e-2);
    int head = hd->params.n;
    CHECK(params_with(&o->params, NULL) == head + top && params_with(&o->params, &opt) == head + top,
          "gradual: %d gradients, %d with optimizer state, expected %d", params_with(&o->params, NULL),
          params_with(&o->params, &opt), head + top);
    k = keep;
    int unchanged = 0;
    for (int i = 0; i < pl->n; k += pl->items[i]->n, i++)
        unchanged += !memcmp(k, pl->items[i]->data, sizeof(float) * (size_t)pl->items[i]->n);
    CHECK(unchanged == below, "gradual: %d copies kept their values, expected the %d frozen", unchanged, below);
    hn_unfreeze_set_from(u, 0);
    hn_param_zero_grads(&o->params);
    CHECK(hn_cls_objective_loss_grad(o, &bt.b, 0.25f, &loss, NULL) == HN_OK, "%s", hn_errmsg());
    CHECK(params_with(&o->params, NULL) == o->params.n, "gradual, all open: %d of %d params have a gradient",
          params_with(&o->params, NULL), o->params.n);
    hn_adamw_deinit(&opt);
    free(keep);
out:
    rig_free(&g);
}

// ---- through the method table: train, save, load, predict; broken files ----

static const char *const texts[] = {"red the a of",   "cat is it",  "blue on to was", "dog he she",
                                    "green and in",   "fish a the", "red it is on",   "cat was of",
                                    "blue the she",   "dog and in", "green on a",     "fish to he"};

static void toy(hn_cls_data *d) {
    memset(d, 0, sizeof *d);
    d->n = 12, d->n_classes = 2;
    d->texts = calloc(12, sizeof *d->texts), d->labels = calloc(12, sizeof *d->labels);
    d->classes = calloc(2, sizeof *d->classes);
    d->classes[0] = strdup("colour"), d->classes[1] = strdup("animal"), d->source = strdup("toy");
    for (int i = 0; i < 12; i++) d->texts[i] = strdup(texts[i]), d->labels[i] = i % 2;
}

static void check_roundtrip(hn_model *m, const hn_cls_method *me, const char *dir) {
    hn_cls_data d;
    toy(&d);
    hn_cls_options o = hn_cls_default_options();
    o.epochs = 2, o.batch = 4, o.max_len = 16, o.last_k = 1, o.unfreeze_every = 2, o.threads = 2;
    hn_cls_resolve_options(me, &o);
    void *st = NULL, *st2 = NULL;
    float p1[12 * 2], p2[12 * 2];
    uint64_t before = model_hash(m);
    hn_status s = me->train(m, &d, NULL, &o, &st);
    if (!s) s = me->save(m, st, dir);
    if (!s) s = me->predict(m, st, (const char *const *)d.texts, 12, p1);
    CHECK(!s, "%s: %s", me->name, hn_errmsg());
    CHECK(!st || me->n_trainable(st) > 0, "%s: no trainable values", me->name);
    if (st) me->free(st);
    hn_model_weights(m, slot_is_file, m); // freeing the state put the file's weights back
    if (!s) s = me->load(m, dir, &st2);
    if (!s) s = me->predict(m, st2, (const char *const *)d.texts, 12, p2);
    CHECK(!s, "%s load: %s", me->name, hn_errmsg());
    CHECK(!s && !memcmp(p1, p2, sizeof p1), "%s: probabilities after save -> load differ", me->name);
    if (st2) me->free(st2);
    CHECK(model_hash(m) == before, "%s: the file's weights changed", me->name);
    hn_cls_data_deinit(&d);
}

static void write_weights(const char *path, const char *name, int64_t n0, int64_t n1) {
    float *v = calloc((size_t)(n0 * n1), sizeof *v);
    hn_safetensors_writer *w = hn_safetensors_writer_create();
    const int64_t ne[2] = {n0, n1};
    hn_safetensors_writer_add(w, name, HN_F32, n1 > 1 ? 2 : 1, ne, v);
    hn_safetensors_writer_write(w, path);
    hn_safetensors_writer_destroy(w);
    free(v);
}

static void check_bad_files(hn_model *m, const char *dir) {
    char path[512];
    snprintf(path, sizeof path, "%s/bad.safetensors", dir);
    hn_unfreeze *u = NULL;
    write_weights(path, "blk.99.attn_q.weight", 4, 4);
    CHECK(hn_unfreeze_load(&u, m, path) == HN_ERR_FORMAT &&
              strstr(hn_errmsg(), "'blk.99.attn_q.weight' is not a weight"),
          "%s", hn_errmsg());
    write_weights(path, "blk.0.attn_q.weight", 3, 5);
    CHECK(hn_unfreeze_load(&u, m, path) == HN_ERR_FORMAT && strstr(hn_errmsg(), "blk.0.attn_q.weight") &&
              strstr(hn_errmsg(), "expected F32"),
          "%s", hn_errmsg());
    snprintf(path, sizeof path, "%s/absent.safetensors", dir);
    CHECK(hn_unfreeze_load(&u, m, path) != HN_OK && strstr(hn_errmsg(), "absent.safetensors"), "%s", hn_errmsg());
    CHECK(!u, "a failed load left a state");
    hn_model_weights(m, slot_is_file, m);
}

int main(void) {
    hn_model_params mp = hn_model_default_params();
    mp.mm_mode = HN_MM_EXACT;
    hn_model *gpt2 = NULL, *bert = NULL, *llama = NULL;
    if (hn_model_load(&gpt2, "tests/data/tiny_gpt2", &mp) || hn_model_load(&bert, "tests/data/tiny_bert", &mp)) {
        fprintf(stderr, "%s\n", hn_errmsg());
        return 1;
    }
    mp.allow_no_tokenizer = true;
    if (hn_model_load(&llama, "tests/data/tiny_llama", &mp)) {
        fprintf(stderr, "%s\n", hn_errmsg());
        return 1;
    }
    // The counts by hand: per block llama 7 linear weights + 2 norms; GPT-2 4 linear weights (qkv, o, up, down)
    // + 4 biases + 2 LayerNorms (weight, bias); BERT 6 weights + 6 biases + 2 LayerNorms.
    const int Ll = llama->hp.n_layer, Lg = gpt2->hp.n_layer, Lb = bert->hp.n_layer;
    const int64_t Cl = llama->hp.n_embd, Fl = llama->hp.n_ff, Vl = llama->hp.n_vocab;
    const int64_t kv = (int64_t)llama->hp.n_head_kv * llama->hp.head_dim;
    const int64_t llama_block = 2 * Cl + 2 * Cl * Cl + 2 * Cl * kv + 3 * Cl * Fl;
    check_rule(llama, "llama last-1", (hn_unfreeze_rule){Ll - 1, HN_UNFREEZE_BLOCK}, 9 + 1, llama_block + Cl);
    check_rule(llama, "llama full", (hn_unfreeze_rule){-1, HN_UNFREEZE_BLOCK | HN_UNFREEZE_ROLE(HN_W_EMBED)},
               1 + 9 * Ll + 1, Vl * Cl + Ll * llama_block + Cl);
    const int64_t Cg = gpt2->hp.n_embd, Fg = gpt2->hp.n_ff;
    check_rule(gpt2, "gpt2 bitfit", (hn_unfreeze_rule){-1, HN_UNFREEZE_BIASES}, 6 * Lg + 1,
               Lg * (3 * Cg + Cg + Fg + Cg + 2 * Cg) + Cg);
    const int64_t Cb = bert->hp.n_embd, Fb = bert->hp.n_ff;
    // The tiny BERT is a plain BERT with a pooler (C -> C, weight and bias), which its head reads.
    check_rule(bert, "bert bitfit", (hn_unfreeze_rule){-1, HN_UNFREEZE_BIASES}, 8 * Lb + 1 + 1,
               Lb * (4 * Cb + Fb + Cb + 2 * Cb) + Cb + Cb);
    check_rule(bert, "bert last-1", (hn_unfreeze_rule){Lb - 1, HN_UNFREEZE_BLOCK}, 16 + 2,
               4 * Cb * Cb + 2 * Cb * Fb + 4 * Cb + Fb + Cb + 4 * Cb + Cb * Cb + Cb);
    check_rule(bert, "bert last-1 but the pooler",
               (hn_unfreeze_rule){Lb - 1, HN_UNFREEZE_BLOCK, {bert->pooler.w, bert->pooler.b}}, 16,
               4 * Cb * Cb + 2 * Cb * Fb + 4 * Cb + Fb + Cb + 4 * Cb);
    // GPT-2 full: token and position embeddings, per block 2 LayerNorms (weight, bias) and 4 linear layers (weight,
    // bias), the final LayerNorm; the output head is tied to the token embedding (one copy for both slots).
    const int64_t Vg = gpt2->hp.n_vocab, Pg = gpt2->hp.n_ctx_train;
    check_rule(gpt2, "gpt2 full", (hn_unfreeze_rule){-1, HN_UNFREEZE_BLOCK | HN_UNFREEZE_ROLE(HN_W_EMBED)},
               2 + 12 * Lg + 2,
               (Vg + Pg) * Cg + Lg * (4 * Cg + 3 * Cg * Cg + 3 * Cg + Cg * Cg + Cg + 2 * Cg * Fg + Fg + Cg) + 2 * Cg);
    check_fd(llama, "llama", HN_UNFREEZE_BLOCK | HN_UNFREEZE_ROLE(HN_W_EMBED));
    check_fd(bert, "bert", HN_UNFREEZE_BLOCK | HN_UNFREEZE_ROLE(HN_W_EMBED));
    check_gradual(llama);
    check_gradual(bert);
    // BitFit refuses a model without biases; the others apply.
    CHECK(hn_cls_bitfit.applies(llama) == HN_ERR_UNSUPPORTED && strstr(hn_errmsg(), "biases"), "%s", hn_errmsg());
    CHECK(hn_cls_bitfit.applies(bert) == HN_OK && hn_cls_last_k.applies(llama) == HN_OK, "%s", hn_errmsg());
    char dir[] = "/tmp/hone-freeze-XXXXXX";
    if (!mkdtemp(dir)) return 1;
    const hn_cls_method *ms[] = {&hn_cls_last_k, &hn_cls_gradual, &hn_cls_bitfit, &hn_cls_full};
    hn_model *models[] = {gpt2, gpt2, bert, bert};
    for (int i = 0; i < 4; i++) check_roundtrip(models[i], ms[i], dir);
    check_bad_files(bert, dir);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd)) fprintf(stderr, "could not remove %s\n", dir);
    hn_model_destroy(gpt2), hn_model_destroy(bert), hn_model_destroy(llama);
    return test_done();
}
