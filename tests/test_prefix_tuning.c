// tests/test_prefix_tuning.c — prefix tuning / P-tuning v2 (adapt/prefix_tuning.c) against PEFT's PrefixTuningConfig
// (tools/reference/prefix_peft_ref.py, tests/data/prefix/CASE):
// - on the tiny Llama (grouped-query attention: the keys go through GGUF's rotary permutation) and the tiny BERT,
//   with and without the reparameterisation MLP, from PEFT's initial tensors: the trainable count equals PEFT's
//   print_trainable_parameters(); the loss and the gradient of every trainable tensor meet DESIGN.md section 7 (loss
//   relative 1e-5, gradients 1e-4 x max(1, max |ref|)), also with per-block checkpointing; the logits (Llama, through
//   the KV cache) and the hidden states (BERT) within 1e-4 of PEFT's;
// - hone's save writes PEFT's prompt_embeddings (the MLP's output when it trains one) and loads back, and PEFT's
//   saved directory loads, both to PEFT's from_pretrained outputs;
// - the KV cache: greedy generation token by token through the cache equals recomputing the whole sequence on a
//   fresh cache at every step (tokens equal, logits within 1e-4), with the prefix attached; off / on switching;
// - broken adapters (prompt_embeddings of the wrong shape or missing, num_layers or token_dim wrong, a bad value)
//   give one-line errors naming the file and the key; hn_op_cols' backward against finite differences.
// `test_prefix_tuning --check DIR` also writes DIR/llama and DIR/bert (hone's saved adapters with hone.bin, the
// inputs and hone's outputs) for `prefix_peft_ref.py --check DIR`.
#include "adapt/method.h"
#include "io/safetensors.h"
#include "tests/test.h"
#include "tests/tiny_golden.h"
#include "train/lm_objective.h"

#include <jansson.h>
#include <math.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

extern const hn_method_ops hn_method_prefix_tuning;

#define PREFIX_DIR "tests/data/prefix"
#define BERT_DIR "tests/data/tiny_bert"

static bool is_bert(const hn_model *m) { return m->hp.arch == HN_ARCH_BERT; }

// Llama: the logits of each row's valid tokens, one row at a time through a fresh KV cache (the virtual positions
// filled by hn_model_forward), into out (B, T, V) (padded positions left 0). BERT: the hidden states (B, T, C) of
// the padded batch through hn_model_hidden_ex.
static bool outputs(hn_model *m, const int32_t *ids, const int32_t *lens, int B, int T, float *out) {
    if (is_bert(m)) {
        hn_arena a = {0}, scratch = {0};
        hn_ctx c = {.arena = &a, .scratch = &scratch, .mm = HN_MM_EXACT};
        hn_var *h = hn_model_hidden_ex(&c, m, ids, lens, B, T, NULL, false);
        if (h) memcpy(out, h->d, (size_t)B * T * m->hp.n_embd * sizeof(float));
        hn_arena_deinit(&a), hn_arena_deinit(&scratch);
        return h != NULL;
    }
    const int64_t V = m->hp.n_vocab;
    memset(out, 0, (size_t)(B * T * V) * sizeof(float));
    hn_kv_cache *kv = hn_kv_cache_create(m, 64);
    bool ok = kv != NULL;
    for (int b = 0; ok && b < B; b++) {
        hn_kv_cache_truncate(kv, 0);
        float *lg;
        ok = hn_model_forward(m, kv, ids + b * T, lens[b], HN_LOGITS_ALL, &lg) == HN_OK;
        if (ok) memcpy(out + (int64_t)b * T * V, lg, (size_t)(lens[b] * V) * sizeof(float));
    }
    hn_kv_cache_destroy(kv);
    return ok;
}

// The largest difference over valid tokens between out and the golden array (B, T, W).
static double valid_diff(const float *out, const tg_array *want, const int32_t *lens) {
    const int64_t B = want->dims[0], T = want->dims[1], W = want->dims[2];
    double d = 0;
    for (int64_t b = 0; b < B; b++) d = fmax(d, max_diff(out + b * T * W, want->f + b * T * W, lens[b] * W));
    return d;
}

static bool check_outputs(hn_model *m, const tg_file *g, const char *what, const char *label) {
    const tg_array *ids = tg_get(g, "input_ids"), *lens = tg_get(g, "lens"), *want = tg_get(g, what);
    if (!ids || !lens || !want) return false;
    float *out = malloc((size_t)want->n * sizeof *out);
    bool ok = out && outputs(m, ids->i, lens->i, (int)ids->dims[0], (int)ids->dims[1], out);
    CHECK(ok, "%s: forward: %s", label, hn_errmsg());
    double d = ok ? valid_diff(out, want, lens->i) : 1e9;
    CHECK(d <= 1e-4, "%s: %s differ from PEFT's by %.3g", label, what, d);
    printf("%s: %s within %.2e of PEFT's\n", label, what, d);
    free(out);
    return ok;
}

// One training step's loss and gradients from the golden's batch (params' grads zeroed first).
static bool step(hn_model *m, hn_method *me, const tg_file *g, bool checkpoint, double *loss) {
    hn_param_zero_grads(hn_method_params(me));
    if (!is_bert(m)) {
        int32_t ids[256];
        uint8_t mask[256];
        hn_batch b;
        if (!tg_batch(g, &b, ids, mask, 256)) return false;
        hn_lm_params lp = hn_lm_default_params();
        lp.checkpoint = checkpoint, lp.mm = HN_MM_EXACT;
        hn_objective obj;
        if (hn_lm_objective_init(&obj, m, hn_method_params(me), &lp)) return false;
        if (obj.set_training) obj.set_training(obj.user, false);
        double sum = 0;
        int64_t n = 0;
        hn_status s = obj.loss_grad(obj.user, &b, 1.0f / (float)b.n_loss, &sum, &n);
        hn_lm_objective_deinit(&obj);
        *loss = sum / (double)n;
        return s == HN_OK;
    }
    // BERT: loss = sum over valid tokens of hidden * probe, so d loss / d hidden = probe there.
    const tg_array *ids = tg_get(g, "input_ids"), *lens = tg_get(g, "lens"), *probe = tg_get(g, "probe");
    if (!ids || !lens || !probe) return false;
    const int B = (int)ids->dims[0], T = (int)ids->dims[1], C = m->hp.n_embd;
    hn_arena a = {0}, scratch = {0};
    hn_tape tape = {0};
    hn_ctx c = {.arena = &a, .scratch = &scratch, .tape = &tape, .mm = HN_MM_EXACT};
    hn_var *h = hn_model_hidden_ex(&c, m, ids->i, lens->i, B, T, NULL, checkpoint);
    float *gh = h ? hn_var_grad(&c, h) : NULL;
    *loss = 0;
    for (int b = 0; gh && b < B; b++)
        for (int64_t i = 0; i < (int64_t)lens->i[b] * C; i++) {
            int64_t at = (int64_t)b * T * C + i;
            gh[at] = probe->f[at];
            *loss += (double)h->d[at] * probe->f[at];
        }
    bool ok = gh && hn_backward(&c) == HN_OK;
    hn_arena_deinit(&a), hn_arena_deinit(&scratch);
    return ok;
}

static void check_step(hn_model *m, hn_method *me, const tg_file *g, bool checkpoint, const char *label) {
    double loss = 0, ref = tg_get(g, "loss")->f[0];
    CHECK(step(m, me, g, checkpoint, &loss), "%s: step: %s", label, hn_errmsg());
    CHECK(fabs(loss - ref) <= 1e-5 * fabs(ref), "%s: loss %.8f vs PEFT %.8f", label, loss, ref);
    double worst = 0;
    hn_param_list *l = hn_method_params(me);
    for (int i = 0; i < l->n; i++) {
        char name[160];
        snprintf(name, sizeof name, "grad.%s", l->items[i]->name);
        const tg_array *ga = tg_get(g, name);
        CHECK(ga && ga->n == l->items[i]->n, "%s: %s missing or of another size", label, name);
        if (!ga || ga->n != l->items[i]->n) continue;
        double d = max_diff(l->items[i]->grad, ga->f, ga->n), tol = 1e-4 * fmax(1.0, max_abs(ga->f, ga->n));
        CHECK(d <= tol, "%s: %s differs by %.3g (tolerance %.3g)", label, name, d, tol);
        worst = fmax(worst, d / tol);
    }
    printf("%s%s: loss %.7f vs PEFT %.7f (rel %.1e), %d gradients within %.3f of the tolerance\n", label,
           checkpoint ? " (checkpointed)" : "", loss, ref, fabs(loss - ref) / fabs(ref), l->n, worst);
}

// A fresh adapter shaped as the golden case, with PEFT's initial tensors.
static hn_method *attach_golden(hn_model *m, const tg_file *g, const char *label) {
    const tg_array *e = tg_get(g, "init.prompt_encoder.embedding.weight"),
                   *w1 = tg_get(g, "init.prompt_encoder.transform.0.weight");
    if (!e) return NULL;
    hn_method_config cfg = hn_method_default_config();
    cfg.num_virtual_tokens = (int)e->dims[0];
    cfg.prefix_projection = w1 != NULL;
    cfg.encoder_hidden_size = w1 ? (int)w1->dims[0] : 0;
    hn_method *me = NULL;
    CHECK(hn_method_prefix_tuning.attach_new(&me, m, &cfg) == HN_OK, "%s: attach: %s", label, hn_errmsg());
    if (!me) return NULL;
    int64_t count = hn_param_count(hn_method_params(me));
    CHECK(count == tg_get(g, "trainable")->i[0], "%s: %lld trainable values, PEFT has %d", label, (long long)count,
          tg_get(g, "trainable")->i[0]);
    printf("%s: %lld trainable values (PEFT's print_trainable_parameters: %d)\n", label, (long long)count,
           tg_get(g, "trainable")->i[0]);
    hn_param_list *l = hn_method_params(me);
    for (int i = 0; i < l->n; i++) {
        char name[160];
        snprintf(name, sizeof name, "init.%s", l->items[i]->name);
        const tg_array *a = tg_get(g, name);
        CHECK(a && a->n == l->items[i]->n, "%s: %s missing or of another size", label, name);
        if (a && a->n == l->items[i]->n) memcpy(l->items[i]->data, a->f, (size_t)a->n * sizeof(float));
    }
    return me;
}

static void test_case(hn_model *m, const char *name) {
    char dir[256], path[300];
    snprintf(dir, sizeof dir, PREFIX_DIR "/%s", name);
    snprintf(path, sizeof path, "%s/golden.bin", dir);
    tg_file g;
    if (!tg_load(&g, path)) {
        CHECK(0, "cannot read %s", path);
        return;
    }
    const char *what = is_bert(m) ? "hidden" : "logits";
    char loaded[32];
    snprintf(loaded, sizeof loaded, "%s.loaded", what);
    hn_method *me = attach_golden(m, &g, name);
    if (me) {
        check_step(m, me, &g, false, name);
        check_step(m, me, &g, true, name);
        check_outputs(m, &g, what, name);
        // Saved: PEFT's prompt_embeddings (the MLP's output), loading back to PEFT's loaded outputs.
        char tmp[] = "/tmp/hone_prefix_XXXXXX";
        CHECK(mkdtemp(tmp) != NULL, "mkdtemp");
        CHECK(hn_method_save(me, tmp) == HN_OK, "%s: save: %s", name, hn_errmsg());
        hn_method_destroy(me);
        CHECK(hn_model_n_virtual(m) == 0, "%s: destroy detaches", name);
        hn_safetensors st;
        snprintf(path, sizeof path, "%s/adapter_model.safetensors", tmp);
        const tg_array *pe = tg_get(&g, "prompt_embeddings");
        if (hn_safetensors_open(&st, path) == HN_OK) {
            const hn_tensor *t = hn_safetensors_tensor(&st, "prompt_embeddings");
            CHECK(t && t->type == HN_F32 && t->ne[1] == pe->dims[0] && t->ne[0] == pe->dims[1] &&
                      max_diff(t->data, pe->f, pe->n) <= 1e-5,
                  "%s: saved prompt_embeddings differ from PEFT's (%.3g)", name,
                  t && hn_nelem(t) == pe->n ? max_diff(t->data, pe->f, pe->n) : -1.0);
            hn_safetensors_close(&st);
        } else CHECK(0, "%s: %s", path, hn_errmsg());
        me = NULL;
        CHECK(hn_method_load(&me, m, tmp) == HN_OK && me && me->ops == &hn_method_prefix_tuning,
              "%s: load hone's save: %s", name, hn_errmsg());
        if (me) {
            char label[96];
            snprintf(label, sizeof label, "%s saved and loaded", name);
            check_outputs(m, &g, loaded, label);
            CHECK(hn_param_count(hn_method_params(me)) == pe->n, "%s: a loaded adapter trains the table", name);
            hn_method_destroy(me);
        }
        snprintf(path, sizeof path, "rm -rf '%s'", tmp);
        CHECK(system(path) == 0, "rm");
    }
    me = NULL;
    CHECK(hn_method_load(&me, m, dir) == HN_OK, "%s: load PEFT's directory: %s", name, hn_errmsg());
    if (me) {
        char label[96];
        snprintf(label, sizeof label, "%s PEFT's save", name);
        check_outputs(m, &g, loaded, label);
        hn_method_destroy(me);
    }
    tg_free(&g);
}

// ---- the KV cache ----

static int argmax(const float *x, int n) {
    int a = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[a]) a = i;
    return a;
}

// me attached to m (destroyed here); label names the model.
static void test_cache(hn_model *m, hn_method *me, const char *label) {
    if (!me) return;
    const int nv = hn_model_n_virtual(m);
    const int V = m->hp.n_vocab, P = 5, N = 12;
    int32_t seq[P + N];
    for (int i = 0; i < P; i++) seq[i] = 7 + 31 * i % 200;
    hn_kv_cache *kv = hn_kv_cache_create(m, 64), *fresh = hn_kv_cache_create(m, 64);
    float *lg, *a = malloc((size_t)V * sizeof *a);
    CHECK(kv && fresh && a, "caches");
    bool ok = kv && fresh && a && hn_model_forward(m, kv, seq, P, HN_LOGITS_LAST, &lg) == HN_OK;
    CHECK(ok, "prompt: %s", hn_errmsg());
    CHECK(!ok || hn_kv_cache_pos(kv) == P, "%s: the cache counts the caller's tokens, not the %d virtual positions "
          "(pos %d)", label, nv, ok ? hn_kv_cache_pos(kv) : -1);
    double worst = 0;
    int same = 0;
    for (int t = P; ok && t < P + N; t++) {
        memcpy(a, lg, (size_t)V * sizeof *a);
        seq[t] = argmax(a, V);
        // Recompute the whole sequence so far on a fresh cache: the last logits must be the cached ones.
        hn_kv_cache_truncate(fresh, 0);
        float *lf;
        ok = hn_model_forward(m, fresh, seq, t, HN_LOGITS_LAST, &lf) == HN_OK;
        CHECK(ok, "recompute %d: %s", t, hn_errmsg());
        if (!ok) break;
        worst = fmax(worst, max_diff(a, lf, V));
        same += argmax(lf, V) == seq[t];
        ok = hn_model_forward(m, kv, seq + t, 1, HN_LOGITS_LAST, &lg) == HN_OK;
        CHECK(ok, "decode %d: %s", t, hn_errmsg());
    }
    CHECK(same == N && worst <= 1e-4, "%s: cached vs recomputed: %d of %d tokens equal, logits within %.3g", label,
          same, N, worst);
    printf("%s KV cache: %d greedy tokens equal to recomputing, logits within %.2e\n", label, same, worst);
    // Off: the model as without it; a cache begun under the prefix refuses to go on without it; on again: the same.
    float *with = malloc((size_t)V * sizeof *with), *base = malloc((size_t)V * sizeof *base);
    hn_kv_cache_truncate(fresh, 0);
    ok = with && base && hn_model_forward(m, fresh, seq, P, HN_LOGITS_LAST, &lg) == HN_OK;
    if (ok) memcpy(with, lg, (size_t)V * sizeof *with);
    hn_method_set_enabled(me, false);
    CHECK(hn_model_n_virtual(m) == 0, "off: no virtual positions");
    CHECK(ok && hn_model_forward(m, fresh, seq + P, 1, HN_LOGITS_LAST, &lg) == HN_ERR_ARG,
          "a cache begun under the prefix goes on without it");
    hn_kv_cache_truncate(fresh, 0);
    ok = ok && hn_model_forward(m, fresh, seq, P, HN_LOGITS_LAST, &lg) == HN_OK;
    if (ok) memcpy(base, lg, (size_t)V * sizeof *base);
    hn_method_set_enabled(me, true);
    hn_kv_cache_truncate(fresh, 0);
    ok = ok && hn_model_forward(m, fresh, seq, P, HN_LOGITS_LAST, &lg) == HN_OK;
    CHECK(ok && max_diff(lg, with, V) == 0 && max_diff(base, with, V) > 1e-3,
          "%s: off gives the base model's logits, on the prefix's again", label);
    hn_method_destroy(me);
    CHECK(hn_model_n_virtual(m) == 0 && m->ext == NULL, "%s: destroy detaches", label);
    free(with), free(base), free(a);
    hn_kv_cache_destroy(kv), hn_kv_cache_destroy(fresh);
}

// ---- broken adapters ----

static bool copy_file(const char *from, const char *to) {
    FILE *f = fopen(from, "rb"), *t = fopen(to, "wb");
    char buf[4096];
    size_t n;
    bool ok = f && t;
    while (ok && (n = fread(buf, 1, sizeof buf, f)) > 0) ok = fwrite(buf, 1, n, t) == n;
    if (f) fclose(f);
    if (t) ok = fclose(t) == 0 && ok;
    return ok;
}

// dir := PEFT's llama_plain with key set to value in the config (value NULL: unchanged) and, when tensor_name is
// given, adapter_model.safetensors holding one zero tensor of that name and shape (rows, cols).
static void broken(const char *dir, const char *key, json_t *value, const char *tensor_name, int64_t rows,
                   int64_t cols) {
    char p[512];
    json_t *c = json_load_file(PREFIX_DIR "/llama_plain/adapter_config.json", 0, NULL);
    if (key) json_object_set_new(c, key, value);
    snprintf(p, sizeof p, "%s/adapter_config.json", dir);
    json_dump_file(c, p, JSON_INDENT(2));
    json_decref(c);
    snprintf(p, sizeof p, "%s/adapter_model.safetensors", dir);
    if (!tensor_name) {
        copy_file(PREFIX_DIR "/llama_plain/adapter_model.safetensors", p);
        return;
    }
    float *z = calloc((size_t)(rows * cols), sizeof *z);
    hn_safetensors_writer *w = hn_safetensors_writer_create();
    int64_t ne[2] = {cols, rows};
    hn_safetensors_writer_add(w, tensor_name, HN_F32, 2, ne, z);
    hn_safetensors_writer_write(w, p);
    hn_safetensors_writer_destroy(w);
    free(z);
}

static void expect_error(hn_model *m, const char *dir, const char *label, const char *want1, const char *want2) {
    hn_method *me = NULL;
    hn_status s = hn_method_load(&me, m, dir);
    const char *msg = hn_errmsg();
    CHECK(s != HN_OK && !me && !strchr(msg, '\n') && strstr(msg, want1) && strstr(msg, want2),
          "%s: status %d, message '%s' (expected one line naming '%s' and '%s')", label, (int)s, msg, want1, want2);
    printf("%s: %s\n", label, msg);
    hn_method_destroy(me);
}

static void test_broken(hn_model *m) {
    char dir[] = "/tmp/hone_prefix_bad_XXXXXX";
    CHECK(mkdtemp(dir) != NULL, "mkdtemp");
    const int64_t flat = 2 * 2 * 32;
    broken(dir, NULL, NULL, "prompt_embeddings", 4, flat - 2);
    expect_error(m, dir, "wrong shape", "adapter_model.safetensors", "prompt_embeddings");
    broken(dir, NULL, NULL, "prompt_embeddings", 5, flat);
    expect_error(m, dir, "wrong number of rows", "adapter_model.safetensors", "[5, 128]");
    broken(dir, NULL, NULL, "embedding.weight", 4, flat);
    expect_error(m, dir, "missing tensor", "adapter_model.safetensors", "prompt_embeddings");
    broken(dir, "num_layers", json_integer(3), NULL, 0, 0);
    expect_error(m, dir, "num_layers 3", "adapter_config.json", "num_layers");
    broken(dir, "num_layers", json_string("two"), NULL, 0, 0);
    expect_error(m, dir, "num_layers a string", "adapter_config.json", "num_layers");
    broken(dir, "token_dim", json_integer(64), NULL, 0, 0);
    expect_error(m, dir, "token_dim of all heads", "adapter_config.json", "token_dim");
    broken(dir, "num_virtual_tokens", json_integer(0), NULL, 0, 0);
    expect_error(m, dir, "num_virtual_tokens 0", "adapter_config.json", "num_virtual_tokens");
    broken(dir, "num_transformer_submodules", json_integer(2), NULL, 0, 0);
    expect_error(m, dir, "two submodules", "adapter_config.json", "num_transformer_submodules");
    broken(dir, "prefix_projection", json_string("yes"), NULL, 0, 0);
    expect_error(m, dir, "prefix_projection a string", "adapter_config.json", "prefix_projection");
    // Through the method itself: a config of another method.
    broken(dir, "peft_type", json_string("PROMPT_TUNING"), NULL, 0, 0);
    hn_method *me = NULL;
    hn_status s = hn_method_prefix_tuning.load(&me, m, dir);
    CHECK(s != HN_OK && !me && strstr(hn_errmsg(), "peft_type"), "another peft_type: %s", hn_errmsg());
    hn_method_config cfg = hn_method_default_config();
    cfg.num_virtual_tokens = 0;
    CHECK(hn_method_prefix_tuning.attach_new(&me, m, &cfg) == HN_ERR_ARG && !me && strstr(hn_errmsg(),
          "num_virtual_tokens"), "num_virtual_tokens 0 refused: %s", hn_errmsg());
    CHECK(m->ext == NULL, "nothing stays attached after the failures");
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    CHECK(system(cmd) == 0, "rm");
}

// ---- hn_op_cols ----

static void test_cols_grad(void) {
    hn_arena a = {0};
    hn_tape tape = {0};
    hn_ctx c = {.arena = &a, .tape = &tape, .mm = HN_MM_EXACT};
    float x[3 * 7], r[3 * 4], gx[3 * 7] = {0};
    const int32_t perm[4] = {2, 0, 3, 1};
    for (int i = 0; i < 21; i++) x[i] = sinf(1.3f * i);
    for (int i = 0; i < 12; i++) r[i] = cosf(0.7f * i + 0.2f);
    hn_var *xv = hn_var_wrap(&c, x, 3, 7, true);
    xv->g = gx;
    hn_var *y = hn_op_cols(&c, xv, 2, 4, perm);
    CHECK(y && y->d[0] == x[4] && y->d[5] == x[7 + 2], "cols forward");
    if (y) {
        memcpy(hn_var_grad(&c, y), r, sizeof r);
        hn_backward(&c);
    }
    double worst = 0; // loss = sum(y * r): a central difference of each input against its gradient
    for (int i = 0; i < 21; i++) {
        float keep = x[i];
        double l[2];
        for (int k = 0; k < 2; k++) {
            x[i] = keep + (k ? 1e-2f : -1e-2f);
            hn_ctx c2 = {.arena = &a, .mm = HN_MM_EXACT};
            hn_var *y2 = hn_op_cols(&c2, hn_var_wrap(&c2, x, 3, 7, false), 2, 4, perm);
            l[k] = 0;
            for (int j = 0; y2 && j < 12; j++) l[k] += (double)y2->d[j] * r[j];
        }
        x[i] = keep;
        worst = fmax(worst, fabs((l[1] - l[0]) / 2e-2 - gx[i]));
    }
    CHECK(worst < 1e-4, "hn_op_cols: gradient vs finite differences %.3g", worst);
    hn_ctx c3 = {.arena = &a};
    const int32_t bad[2] = {0, 2};
    CHECK(!hn_op_cols(&c3, hn_var_wrap(&c3, x, 3, 7, false), 6, 2, NULL) && c3.err, "cols past the end refused");
    c3.err = HN_OK;
    CHECK(!hn_op_cols(&c3, hn_var_wrap(&c3, x, 3, 7, false), 0, 2, bad) && c3.err, "a bad permutation refused");
    hn_arena_deinit(&a);
}

// ---- --check: hone's saved adapters and outputs for the reference script ----

static void put(FILE *f, const char *name, int dt, int nd, const int64_t *dims, const void *data) {
    uint32_t v = (uint32_t)strlen(name), n = 1;
    fwrite(&v, 4, 1, f), fwrite(name, 1, v, f);
    v = (uint32_t)dt, fwrite(&v, 4, 1, f);
    v = (uint32_t)nd, fwrite(&v, 4, 1, f);
    for (int i = 0; i < nd; i++) v = (uint32_t)dims[i], fwrite(&v, 4, 1, f), n *= v;
    fwrite(data, 4, n, f);
}

// From the projected golden case after three gradient steps (the MLP in memory, its output saved), hone's save and
// outputs into out/kind.
static void write_check(hn_model *m, const char *case_name, const char *out, const char *kind) {
    char path[512];
    snprintf(path, sizeof path, PREFIX_DIR "/%s/golden.bin", case_name);
    tg_file g;
    if (!tg_load(&g, path)) {
        CHECK(0, "cannot read %s", path);
        return;
    }
    hn_method *me = attach_golden(m, &g, case_name);
    // A few plain gradient steps, so that what PEFT loads is what hone trained (through the MLP).
    hn_param_list *l = me ? hn_method_params(me) : NULL;
    double loss = 0;
    for (int it = 0; l && it < 3; it++) {
        CHECK(step(m, me, &g, false, &loss), "%s: step: %s", case_name, hn_errmsg());
        for (int i = 0; i < l->n; i++)
            for (int64_t j = 0; j < l->items[i]->n; j++) l->items[i]->data[j] -= 0.5f * l->items[i]->grad[j];
    }
    const tg_array *ids = tg_get(&g, "input_ids"), *lens = tg_get(&g, "lens");
    const int B = (int)ids->dims[0], T = (int)ids->dims[1];
    const int64_t W = is_bert(m) ? m->hp.n_embd : m->hp.n_vocab;
    float *y = calloc((size_t)(B * T * W), sizeof *y);
    snprintf(path, sizeof path, "%s/%s", out, kind);
    CHECK(me && y && outputs(m, ids->i, lens->i, B, T, y) && hn_method_save(me, path) == HN_OK, "%s: %s", path,
          hn_errmsg());
    snprintf(path, sizeof path, "%s/%s/hone.bin", out, kind);
    FILE *f = fopen(path, "wb");
    CHECK(f != NULL, "cannot write %s", path);
    if (f) {
        uint32_t hdr[2] = {1, 3};
        int64_t d2[2] = {B, T}, d1[1] = {B}, d3[3] = {B, T, W};
        fwrite("HNGT", 1, 4, f), fwrite(hdr, 4, 2, f);
        put(f, "input_ids", 1, 2, d2, ids->i), put(f, "lens", 1, 1, d1, lens->i);
        put(f, is_bert(m) ? "hidden" : "logits", 0, 3, d3, y);
        fclose(f);
        printf("wrote %s/%s\n", out, kind);
    }
    free(y);
    hn_method_destroy(me);
    tg_free(&g);
}

// init_text (Li & Liang's init from real activations) on a real Llama with a tokenizer, SmolLM2 when it has been
// pulled: the model with the fresh prefix computes, on an input, what the bare model computes on the text's tokens
// followed by that input (last position's logits), and the text's ids go in repeated to n; BERT is refused.
static void test_init_text(hn_model *bert) {
    char *path = NULL;
    hn_model_params mp = hn_model_default_params();
    mp.mm_mode = HN_MM_EXACT;
    hn_model *m = NULL;
    if (hn_model_resolve("smollm2-135m-instruct", &path) || hn_model_load(&m, path, &mp)) {
        printf("init_text: smollm2-135m-instruct is not pulled; skipped\n");
        free(path);
        return;
    }
    free(path);
    const char *text = "Read the review.";
    int32_t *tids = NULL;
    int64_t k = 0;
    CHECK(!hn_tokenizer_encode(m->tok, text, -1, HN_TOK_SPECIAL | HN_TOK_ADD_SPECIAL, &tids, &k) && k > 0, "tokens");
    const int n = (int)k + 2, T = 5, V = m->hp.n_vocab; // n > k: the ids repeat
    int32_t seq[64];
    for (int i = 0; i < n; i++) seq[i] = tids[i % k];
    for (int t = 0; t < T; t++) seq[n + t] = 1000 + 37 * t;
    float *want = malloc((size_t)V * sizeof *want), *lg;
    hn_kv_cache *kv = hn_kv_cache_create(m, n + T);
    CHECK(kv && want && !hn_model_forward(m, kv, seq, n + T, HN_LOGITS_LAST, &lg), "base: %s", hn_errmsg());
    if (kv && want) memcpy(want, lg, (size_t)V * sizeof *want);
    hn_kv_cache_destroy(kv);
    hn_method_config cfg = hn_method_default_config();
    cfg.num_virtual_tokens = n, cfg.init_text = text;
    hn_method *me = NULL;
    CHECK(hn_method_prefix_tuning.attach_new(&me, m, &cfg) == HN_OK, "init_text: %s", hn_errmsg());
    kv = hn_kv_cache_create(m, T);
    bool ok = me && kv && !hn_model_forward(m, kv, seq + n, T, HN_LOGITS_LAST, &lg);
    double d = ok ? max_diff(lg, want, V) : -1;
    CHECK(ok && d <= 1e-3, "init_text: the prefix acts as the text written before the input: logits within %.3g", d);
    printf("init_text: prefix from \"%s\" (%d positions) = the text before the input, logits within %.2e\n", text, n,
           d);
    hn_kv_cache_destroy(kv);
    hn_method_destroy(me);
    cfg.prefix_projection = true;
    CHECK(hn_method_prefix_tuning.attach_new(&me, m, &cfg) == HN_ERR_ARG && strstr(hn_errmsg(), "prefix_projection"),
          "init_text with the projection refused: %s", hn_errmsg());
    cfg.prefix_projection = false;
    CHECK(!bert || hn_method_prefix_tuning.attach_new(&me, bert, &cfg) != HN_OK, "init_text on BERT refused");
    free(tids), free(want);
    hn_model_destroy(m);
}

int main(int argc, char **argv) {
    const char *check_dir = argc == 3 && !strcmp(argv[1], "--check") ? argv[2] : NULL;
    test_cols_grad();
    hn_model_params mp = hn_model_default_params();
    mp.mm_mode = HN_MM_EXACT;
    mp.allow_no_tokenizer = true;
    hn_model *llama = NULL, *bert = NULL;
    CHECK(hn_model_load(&llama, TINY_DIR, &mp) == HN_OK, "load %s: %s", TINY_DIR, hn_errmsg());
    CHECK(hn_model_load(&bert, BERT_DIR, &mp) == HN_OK, "load %s: %s", BERT_DIR, hn_errmsg());
    if (llama) {
        test_case(llama, "llama_plain");
        test_case(llama, "llama_proj");
        hn_method *me = NULL;
        CHECK(hn_method_load(&me, llama, PREFIX_DIR "/llama_plain") == HN_OK, "load: %s", hn_errmsg());
        test_cache(llama, me, "Llama (PEFT's llama_plain)");
        test_broken(llama);
    }
    if (bert) {
        test_case(bert, "bert_plain");
        test_case(bert, "bert_proj");
    }
    if (check_dir && llama && bert) {
        mkdir(check_dir, 0755);
        write_check(llama, "llama_proj", check_dir, "llama");
        write_check(bert, "bert_proj", check_dir, "bert");
    }
    // GPT-2 (fused q|k|v, learned positions) and Qwen2 (neox rotary: keys in HF's order): fresh adapters, the cache.
    const char *more[2][2] = {{"tests/data/tiny_gpt2", "GPT-2"}, {"tests/data/tiny_family/qwen2.gguf", "Qwen2"}};
    for (int i = 0; i < 2; i++) {
        hn_model *m = NULL;
        CHECK(hn_model_load(&m, more[i][0], &mp) == HN_OK, "load %s: %s", more[i][0], hn_errmsg());
        if (!m) continue;
        hn_method_config cfg = hn_method_default_config();
        cfg.num_virtual_tokens = 3 + i, cfg.prefix_projection = i == 1, cfg.seed = 5;
        hn_method *me = NULL;
        CHECK(hn_method_prefix_tuning.attach_new(&me, m, &cfg) == HN_OK, "%s: attach: %s", more[i][1], hn_errmsg());
        test_cache(m, me, more[i][1]);
        hn_model_destroy(m);
    }
    test_init_text(bert);
    hn_model_destroy(llama);
    hn_model_destroy(bert);
    return test_done();
}
