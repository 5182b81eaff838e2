// tests/test_bottleneck.c — bottleneck adapters (adapt/bottleneck.c: adapter-houlsby, adapter-pfeiffer) on the tiny
// Llama (tests/data/tiny_llama) and the tiny BERT (tests/data/tiny_bert):
// - PyTorch's hand-written adapters (tools/reference/bottleneck_ref.py: forward hooks on o_proj / down_proj and on
//   BertSelfOutput.dense / BertOutput.dense, random weights, one case per non-linearity) load from the hone-format
//   directories the script wrote, and hone meets DESIGN.md section 7: loss relative diff <= 1e-5, every adapter
//   gradient max abs diff <= 1e-4 x max(1, max |ref|), Llama's logits (inference path, KV cache) and BERT's hidden
//   states max abs diff <= 1e-4; Llama also per-block checkpointed, and in the FAST (OpenBLAS) mode within 1e-4 / 1e-3;
// - the same gradients against central finite differences, for a few entries of every tensor;
// - a fresh adapter is the identity (up-projection zero: logits bitwise unchanged; init scale s > 0: a change that
//   grows with s); off / on / destroy; the trainable count against n_sites x (2 b C + b + C);
// - save -> load gives bitwise the same tensors and logits; hone_adapter.json's keys;
// - broken directories (newer or bad version, unknown method, wrong method, wrong shape, missing or extra tensor,
//   unknown key, bad non-linearity, another architecture's adapter, not JSON) give one-line errors and attach nothing;
// - GPT-2's and DistilBERT's module names.
#include "adapt/bottleneck.h"
#include "io/safetensors.h"
#include "tests/test.h"
#include "tests/tiny_golden.h"
#include "train/lm_objective.h"

#include <jansson.h>
#include <math.h>
#include <string.h>
#include <unistd.h>

#define BERT_DIR "tests/data/tiny_bert"
#define GOLDEN "tests/data/bottleneck"

static hn_model *load_model(const char *dir) {
    hn_model_params mp = hn_model_default_params();
    mp.mm_mode = HN_MM_EXACT;
    mp.allow_no_tokenizer = true;
    hn_model *m = NULL;
    if (hn_model_load(&m, dir, &mp)) fprintf(stderr, "%s: %s\n", dir, hn_errmsg());
    return m;
}

// The model's output on a case's batch: Llama's logits (B, T, V) through the inference path (a KV cache per row),
// BERT's hidden states (B, T, C); out has room for them.
static bool outputs(hn_model *m, const tg_file *g, bool bert, float *out) {
    const tg_array *in = tg_get(g, "input_ids");
    const int B = (int)in->dims[0], T = (int)in->dims[1];
    if (bert) {
        hn_arena ar = {0}, scratch = {0};
        hn_ctx c = {.arena = &ar, .scratch = &scratch, .mm = m->mm_mode};
        hn_var *h = hn_model_hidden_ex(&c, m, in->i, tg_get(g, "lens")->i, B, T, NULL, false);
        if (h) memcpy(out, h->d, (size_t)B * T * m->hp.n_embd * sizeof(float));
        hn_arena_deinit(&ar);
        hn_arena_deinit(&scratch);
        return h != NULL;
    }
    const int V = m->hp.n_vocab;
    bool ok = true;
    for (int r = 0; r < B && ok; r++) {
        hn_kv_cache *kv = hn_kv_cache_create(m, T);
        float *lg;
        ok = kv && hn_model_forward(m, kv, in->i + r * T, T, HN_LOGITS_ALL, &lg) == HN_OK;
        if (ok) memcpy(out + (size_t)r * T * V, lg, (size_t)T * V * sizeof(float));
        hn_kv_cache_destroy(kv);
    }
    return ok;
}

static int64_t n_outputs(const hn_model *m, const tg_file *g, bool bert) {
    const tg_array *in = tg_get(g, "input_ids");
    return in->n * (bert ? m->hp.n_embd : m->hp.n_vocab);
}

// The case's loss (Llama: the mean next-token cross-entropy through train/lm_objective; BERT: sum(hidden * probe));
// with grad, params' gradients are zeroed and set to d loss / d param.
static bool loss_of(hn_model *m, const tg_file *g, bool bert, hn_param_list *params, bool grad, hn_mm_mode mm,
                    bool checkpoint, double *loss) {
    if (grad) hn_param_zero_grads(params);
    if (!bert) {
        int32_t ids[64];
        uint8_t mask[64];
        hn_batch b;
        if (!tg_batch(g, &b, ids, mask, 64)) return false;
        hn_lm_params lp = hn_lm_default_params();
        lp.mm = mm, lp.checkpoint = checkpoint;
        hn_objective obj;
        if (hn_lm_objective_init(&obj, m, params, &lp)) return false;
        double sum = 0;
        int64_t n = 0;
        hn_status s = grad ? obj.loss_grad(obj.user, &b, 1.0f / (float)b.n_loss, &sum, &n)
                           : obj.loss(obj.user, &b, &sum, &n);
        hn_lm_objective_deinit(&obj);
        *loss = sum / (double)n;
        return s == HN_OK;
    }
    const tg_array *in = tg_get(g, "input_ids"), *probe = tg_get(g, "probe");
    const int B = (int)in->dims[0], T = (int)in->dims[1];
    hn_arena ar = {0}, scratch = {0};
    hn_tape tape = {0};
    hn_ctx c = {.arena = &ar, .scratch = &scratch, .tape = grad ? &tape : NULL, .mm = mm};
    hn_var *h = hn_model_hidden_ex(&c, m, in->i, tg_get(g, "lens")->i, B, T, NULL, false);
    bool ok = h != NULL;
    double sum = 0;
    for (int64_t i = 0; ok && i < probe->n; i++) sum += (double)h->d[i] * probe->f[i];
    if (ok && grad && h->rg) {
        float *gh = hn_var_grad(&c, h);
        ok = gh && (memcpy(gh, probe->f, (size_t)probe->n * sizeof(float)), hn_backward(&c) == HN_OK);
    }
    hn_arena_deinit(&ar);
    hn_arena_deinit(&scratch);
    *loss = sum;
    return ok;
}

static int64_t expected_count(const hn_model *m, const hn_method_ops *ops, int64_t b) {
    int64_t C = m->hp.n_embd, sites = (int64_t)m->hp.n_layer * (ops == &hn_method_adapter_houlsby ? 2 : 1);
    return sites * (2 * b * C + b + C);
}

// ---- PyTorch's adapters: loss, gradients, outputs; finite differences

// fd_h: the finite-difference step (small for relu, whose kinks a larger step would cross).
static void test_reference(hn_model *m, const char *name, bool bert, int bottleneck, float fd_h) {
    char dir[256], path[300];
    snprintf(dir, sizeof dir, GOLDEN "/%s", name);
    snprintf(path, sizeof path, "%s/golden.bin", dir);
    tg_file g;
    if (!tg_load(&g, path)) {
        CHECK(0, "cannot read %s", path);
        return;
    }
    hn_method *me = NULL;
    CHECK(hn_method_load(&me, m, dir) == HN_OK, "%s: %s", dir, hn_errmsg());
    if (!me) goto out;
    hn_param_list *ps = hn_method_params(me);
    CHECK(hn_param_count(ps) == expected_count(m, me->ops, bottleneck), "%s: %lld trainable, expected %lld", name,
          (long long)hn_param_count(ps), (long long)expected_count(m, me->ops, bottleneck));
    const double ref = tg_get(&g, "loss")->f[0];
    struct {
        hn_mm_mode mm;
        bool ckpt;
        double loss_tol, grad_tol;
        const char *label;
    } modes[] = {{HN_MM_EXACT, false, 1e-5, 1e-4, "EXACT"},
                 {HN_MM_EXACT, true, 1e-5, 1e-4, "EXACT checkpointed"},
                 {HN_MM_FAST, false, 1e-4, 1e-3, "FAST"}};
    for (int k = 0; k < 3; k++) {
        if (bert && modes[k].ckpt) continue; // checkpointing is the LM objective's
        double loss;
        CHECK(loss_of(m, &g, bert, ps, true, modes[k].mm, modes[k].ckpt, &loss), "%s: %s", name, hn_errmsg());
        double rel = fabs(loss - ref) / fabs(ref), worst = 0;
        CHECK(rel <= modes[k].loss_tol, "%s %s: loss %.8f vs PyTorch %.8f (rel %.3g)", name, modes[k].label, loss, ref,
              rel);
        int matched = 0, n_ref = 0;
        for (int i = 0; i < g.n; i++) {
            if (strncmp(g.a[i].name, "grad.", 5)) continue;
            n_ref++;
            for (int j = 0; j < ps->n; j++) {
                hn_param *p = ps->items[j];
                if (strcmp(p->name, g.a[i].name + 5) || p->n != g.a[i].n) continue;
                matched++;
                double d = max_diff(p->grad, g.a[i].f, p->n), scale = fmax(1, max_abs(g.a[i].f, p->n));
                CHECK(d <= modes[k].grad_tol * scale, "%s %s: gradient of %s off by %.3g (tolerance %.3g)", name,
                      modes[k].label, p->name, d, modes[k].grad_tol * scale);
                worst = fmax(worst, d / scale);
            }
        }
        CHECK(matched == n_ref && n_ref == ps->n, "%s: %d reference gradients, %d matched, %d params", name, n_ref,
              matched, ps->n);
        printf("%s %s: loss %.7f vs PyTorch %.7f (rel %.2e); %d gradients, worst max abs diff / max(1, max |ref|) "
               "%.2e\n", name, modes[k].label, loss, ref, rel, matched, worst);
    }
    // outputs
    const tg_array *want = tg_get(&g, bert ? "hidden" : "logits");
    int64_t n = n_outputs(m, &g, bert);
    float *got = malloc((size_t)n * sizeof(float));
    CHECK(got && want && want->n == n && outputs(m, &g, bert, got), "%s: outputs: %s", name, hn_errmsg());
    if (got && want && want->n == n) {
        double d = 0;
        if (bert) { // valid positions only: a padded row's outputs mean nothing
            const tg_array *lens = tg_get(&g, "lens"), *in = tg_get(&g, "input_ids");
            const int64_t T = in->dims[1], C = m->hp.n_embd;
            for (int64_t b = 0; b < in->dims[0]; b++)
                d = fmax(d, max_diff(got + b * T * C, want->f + b * T * C, lens->i[b] * C));
        } else {
            d = max_diff(got, want->f, n);
        }
        CHECK(d <= 1e-4, "%s: %s max abs diff %.3g", name, bert ? "hidden states" : "logits", d);
        printf("%s: %s max abs diff vs PyTorch %.2e\n", name, bert ? "hidden states" : "logits (KV-cache path)", d);
    }
    free(got);
    // central differences on a few entries of every tensor (the largest gradient and two drawn ones), within 1% of
    // the tensor's largest gradient: the fp32 forward's rounding (~1e-7 of the loss, over a step of 2 fd_h) and, for
    // relu, the kinks a step may cross are what is left (EXACT mode: the same numbers on every run)
    double loss0;
    CHECK(loss_of(m, &g, bert, ps, true, HN_MM_EXACT, false, &loss0), "%s", hn_errmsg());
    hn_rng rng;
    hn_rng_seed(&rng, 99);
    double worst = 0;
    int checked = 0;
    for (int j = 0; j < ps->n; j++) {
        hn_param *p = ps->items[j];
        int64_t at[3] = {0, (int64_t)(hn_rng_u64(&rng) % (uint64_t)p->n), (int64_t)(hn_rng_u64(&rng) % (uint64_t)p->n)};
        for (int64_t i = 1; i < p->n; i++)
            if (fabsf(p->grad[i]) > fabsf(p->grad[at[0]])) at[0] = i;
        double gmax = fabs(p->grad[at[0]]);
        for (int k = 0; k < 3; k++) {
            const float h = fd_h, v = p->data[at[k]], an = p->grad[at[k]];
            double lp = 0, lm = 0;
            p->data[at[k]] = v + h;
            bool ok = loss_of(m, &g, bert, ps, false, HN_MM_EXACT, false, &lp);
            p->data[at[k]] = v - h;
            ok = ok && loss_of(m, &g, bert, ps, false, HN_MM_EXACT, false, &lm);
            p->data[at[k]] = v;
            double fd = (lp - lm) / (2.0 * h), err = fabs(fd - an) / fmax(gmax, 1e-3);
            CHECK(ok && err <= 1e-2, "%s: %s[%lld]: finite difference %.6g, backward %.6g", name, p->name,
                  (long long)at[k], fd, (double)an);
            worst = fmax(worst, err);
            checked++;
        }
    }
    printf("%s: %d finite differences over %d tensors, worst |fd - grad| / max |grad of the tensor| %.2e\n", name,
           checked, ps->n, worst);
out:
    hn_method_destroy(me);
    tg_free(&g);
}

// ---- a fresh adapter: identity, init scale, off / on / destroy, trainable count

static bool detached(const hn_model *m) {
    for (int l = 0; l < m->hp.n_layer; l++)
        if (m->layers[l].o.ext || m->layers[l].down.ext) return false;
    return true;
}

static void test_fresh(hn_model *m, const char *case_name, bool bert) {
    char path[300];
    snprintf(path, sizeof path, GOLDEN "/%s/golden.bin", case_name);
    tg_file g;
    if (!tg_load(&g, path)) {
        CHECK(0, "cannot read %s", path);
        return;
    }
    int64_t n = n_outputs(m, &g, bert);
    float *base = malloc((size_t)n * sizeof(float)), *with = malloc((size_t)n * sizeof(float));
    CHECK(base && with && outputs(m, &g, bert, base), "%s", hn_errmsg());
    const hn_method_ops *all[2] = {&hn_method_adapter_houlsby, &hn_method_adapter_pfeiffer};
    for (int k = 0; k < 2 && base && with; k++) {
        const hn_method_ops *ops = all[k];
        hn_method_config cfg = hn_method_default_config();
        cfg.seed = 3;
        hn_method *me = NULL;
        CHECK(ops->attach_new(&me, m, &cfg) == HN_OK, "%s: %s", ops->name, hn_errmsg());
        if (!me) continue;
        hn_param_list *ps = hn_method_params(me);
        const int64_t b = m->hp.n_embd / 16;
        CHECK(hn_param_count(ps) == expected_count(m, ops, b) && ps->n == 4 * m->hp.n_layer * (k ? 1 : 2),
              "%s: %lld trainable in %d tensors, expected %lld", ops->name, (long long)hn_param_count(ps), ps->n,
              (long long)expected_count(m, ops, b));
        // AdapterHub's "bert" init for down (std 0.02), zero up and biases
        double sd = 0, up = 0, bias = 0;
        int64_t nd = 0;
        for (int j = 0; j < ps->n; j++) {
            hn_param *p = ps->items[j];
            if (strstr(p->name, "adapter_down.weight")) {
                for (int64_t i = 0; i < p->n; i++) sd += (double)p->data[i] * p->data[i];
                nd += p->n;
            } else if (strstr(p->name, ".bias")) {
                bias += max_abs(p->data, p->n);
            } else {
                up += max_abs(p->data, p->n);
            }
        }
        sd = sqrt(sd / (double)nd);
        CHECK(sd > 0.017 && sd < 0.023 && up == 0 && bias == 0, "%s init: down std %.4f, up %g, biases %g", ops->name,
              sd, up, bias);
        CHECK(outputs(m, &g, bert, with) && !memcmp(base, with, (size_t)n * sizeof(float)),
              "%s: a fresh adapter changes the outputs (max %.3g)", ops->name, max_diff(base, with, n));
        // at the start only up trains: down's gradient is exactly zero, up's is not
        double loss, gd = 0, gu = 0;
        CHECK(loss_of(m, &g, bert, ps, true, HN_MM_EXACT, false, &loss), "%s", hn_errmsg());
        for (int j = 0; j < ps->n; j++) {
            double gm = max_abs(ps->items[j]->grad, ps->items[j]->n);
            if (strstr(ps->items[j]->name, "adapter_down")) gd += gm;
            else gu += gm;
        }
        CHECK(gd == 0 && gu > 0, "%s at init: down gradient %g, up gradient %g", ops->name, gd, gu);
        hn_method_set_enabled(me, false);
        hn_param *up0 = ps->items[2];
        up0->data[0] = 1.0f; // would change the outputs if the adapter ran
        CHECK(outputs(m, &g, bert, with) && !memcmp(base, with, (size_t)n * sizeof(float)), "%s: off", ops->name);
        hn_method_set_enabled(me, true);
        CHECK(outputs(m, &g, bert, with) && max_diff(base, with, n) > 0, "%s: on again", ops->name);
        CHECK(hn_method_merge(me, 0, HN_PROJ_DOWN, NULL) == HN_ERR_UNSUPPORTED && strstr(hn_errmsg(), ops->name),
              "merge refused: %s", hn_errmsg());
        CHECK(hn_method_set_scale(me, 2.0f) == HN_ERR_UNSUPPORTED, "no scale");
        hn_method_destroy(me);
        CHECK(detached(m) && outputs(m, &g, bert, with) && !memcmp(base, with, (size_t)n * sizeof(float)),
              "%s: destroy detaches", ops->name);
    }
    // init scale s: the up-projection drawn N(0, s^2); the change grows with s (about linearly while small)
    double d[2];
    const float scales[2] = {1e-4f, 1e-3f};
    for (int k = 0; k < 2 && base && with; k++) {
        hn_method_config cfg = hn_method_default_config();
        cfg.seed = 3, cfg.adapter_init_scale = scales[k];
        hn_method *me = NULL;
        CHECK(hn_method_adapter_houlsby.attach_new(&me, m, &cfg) == HN_OK, "%s", hn_errmsg());
        d[k] = me && outputs(m, &g, bert, with) ? max_diff(base, with, n) : -1;
        hn_method_destroy(me);
    }
    CHECK(d[0] > 0 && d[0] < 1e-3 && d[1] / d[0] > 5 && d[1] / d[0] < 20,
          "init scale 1e-4: max change %.3g; 1e-3: %.3g", d[0], d[1]);
    printf("%s: fresh adapters leave the outputs bitwise unchanged; init scale 1e-4 / 1e-3 move them by %.2e / %.2e\n",
           bert ? "BERT" : "Llama", d[0], d[1]);
    free(base), free(with);
    tg_free(&g);
}

// ---- save and load

static char *tmpdir(void) {
    static char d[64];
    snprintf(d, sizeof d, "/tmp/hone_bottleneck_XXXXXX");
    return mkdtemp(d);
}

static bool rm_rf(const char *dir) {
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd) == 0;
}

// A trained-looking adapter (every tensor non-zero) saved to dir; its outputs in out.
static bool save_one(hn_model *m, const hn_method_ops *ops, const tg_file *g, const char *dir, float *out) {
    hn_method_config cfg = hn_method_default_config();
    cfg.seed = 11, cfg.adapter_init_scale = 0.05f, cfg.adapter_size = 5, cfg.adapter_act = "swish";
    hn_method *me = NULL;
    if (ops->attach_new(&me, m, &cfg)) return false;
    hn_param_list *ps = hn_method_params(me);
    for (int j = 0; j < ps->n; j++)
        for (int64_t i = 0; i < ps->items[j]->n; i++) ps->items[j]->data[i] += 0.01f * (float)((i * 7 + j) % 5 - 2);
    bool ok = outputs(m, g, false, out) && hn_method_save(me, dir) == HN_OK;
    hn_method_destroy(me);
    return ok;
}

static void test_roundtrip(hn_model *m) {
    tg_file g;
    if (!tg_load(&g, GOLDEN "/llama_houlsby/golden.bin")) {
        CHECK(0, "golden");
        return;
    }
    char *dir = tmpdir();
    int64_t n = n_outputs(m, &g, false);
    float *a = malloc((size_t)n * sizeof(float)), *b = malloc((size_t)n * sizeof(float));
    const hn_method_ops *all[2] = {&hn_method_adapter_houlsby, &hn_method_adapter_pfeiffer};
    for (int k = 0; k < 2 && dir && a && b; k++) {
        CHECK(save_one(m, all[k], &g, dir, a), "%s: save: %s", all[k]->name, hn_errmsg());
        char path[300];
        snprintf(path, sizeof path, "%s/hone_adapter.json", dir);
        json_error_t err;
        json_t *j = json_load_file(path, 0, &err);
        CHECK(j && !strcmp(json_string_value(json_object_get(j, "format")), "hone-adapter") &&
                  json_integer_value(json_object_get(j, "version")) == 1 &&
                  !strcmp(json_string_value(json_object_get(j, "method")), all[k]->name) &&
                  json_integer_value(json_object_get(j, "bottleneck")) == 5 &&
                  !strcmp(json_string_value(json_object_get(j, "non_linearity")), "silu") &&
                  json_array_size(json_object_get(j, "placement")) == (size_t)(k ? 1 : 2),
              "%s: hone_adapter.json", all[k]->name);
        json_decref(j);
        snprintf(path, sizeof path, "%s/adapter_model.safetensors", dir);
        hn_safetensors st;
        CHECK(hn_safetensors_open(&st, path) == HN_OK, "%s", hn_errmsg());
        CHECK(hn_safetensors_meta(&st, "hone.base_hash") && hn_safetensors_meta(&st, "hone.base_architecture") &&
                  hn_safetensors_tensor(&st, "base_model.model.model.layers.1.mlp.down_proj.adapter_up.bias"),
              "%s: base record and names", all[k]->name);
        hn_method *me = NULL;
        CHECK(hn_method_load(&me, m, dir) == HN_OK && me && me->ops == all[k], "%s: load: %s", all[k]->name,
              hn_errmsg());
        if (me) {
            hn_param_list *ps = hn_method_params(me);
            bool same = true;
            for (int j = 0; j < ps->n; j++) {
                const hn_tensor *t = hn_safetensors_tensor(&st, ps->items[j]->name);
                same = same && t && t->type == HN_F32 &&
                       !memcmp(t->data, ps->items[j]->data, (size_t)ps->items[j]->n * sizeof(float));
            }
            CHECK(same && ps->n == (int)st.n_tensors, "%s: loaded tensors equal the saved ones", all[k]->name);
            CHECK(outputs(m, &g, false, b) && !memcmp(a, b, (size_t)n * sizeof(float)),
                  "%s: logits after save -> load differ by %.3g", all[k]->name, max_diff(a, b, n));
        }
        hn_safetensors_close(&st);
        hn_method_destroy(me);
    }
    printf("save -> load: tensors and logits bitwise identical (houlsby, pfeiffer)\n");
    free(a), free(b);
    if (dir) rm_rf(dir);
    tg_free(&g);
}

// ---- broken directories

// dir's hone_adapter.json with key set to val (NULL: removed) written into dst, the tensors copied.
static bool variant(const char *src, const char *dst, const char *key, json_t *val) {
    char a[300], b[300], cmd[700];
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && mkdir -p '%s' && cp '%s/adapter_model.safetensors' '%s/'", dst, dst, src,
             dst);
    if (system(cmd)) return false;
    snprintf(a, sizeof a, "%s/hone_adapter.json", src);
    snprintf(b, sizeof b, "%s/hone_adapter.json", dst);
    json_error_t err;
    json_t *j = json_load_file(a, 0, &err);
    if (!j) return false;
    if (val) json_object_set_new(j, key, val);
    else json_object_del(j, key);
    int r = json_dump_file(j, b, JSON_INDENT(2));
    json_decref(j);
    return r == 0;
}

static void expect_fail(hn_model *m, const hn_method_ops *ops, const char *dir, const char *want, const char *what) {
    hn_method *me = (hn_method *)1;
    hn_status s = ops ? ops->load(&me, m, dir) : hn_method_load(&me, m, dir);
    const char *msg = hn_errmsg();
    CHECK(s != HN_OK && !me && msg && strstr(msg, want) && !strchr(msg, '\n') && detached(m),
          "%s: status %d, message '%s' (expected one line with '%s')", what, s, msg ? msg : "", want);
    if (s != HN_OK) printf("  %s: %s\n", what, msg);
    if (s == HN_OK && me) hn_method_destroy(me);
}

static void test_broken(hn_model *m, hn_model *bert) {
    tg_file g;
    if (!tg_load(&g, GOLDEN "/llama_houlsby/golden.bin")) return;
    char *root = tmpdir();
    float *a = malloc((size_t)n_outputs(m, &g, false) * sizeof(float));
    char good[128], bad[128], path[300], cmd[700];
    if (!root || !a) goto out;
    snprintf(good, sizeof good, "%s/good", root);
    snprintf(bad, sizeof bad, "%s/bad", root);
    CHECK(save_one(m, &hn_method_adapter_houlsby, &g, good, a), "save: %s", hn_errmsg());
    printf("broken adapters:\n");
    CHECK(variant(good, bad, "version", json_integer(2)), "variant");
    expect_fail(m, NULL, bad, "newer hone", "version 2");
    CHECK(variant(good, bad, "version", json_string("1")), "variant");
    expect_fail(m, NULL, bad, "'version': expected 1", "version as a string");
    CHECK(variant(good, bad, "format", json_string("peft")), "variant");
    expect_fail(m, NULL, bad, "'format'", "another format");
    CHECK(variant(good, bad, "method", json_string("adapter-foo")), "variant");
    expect_fail(m, NULL, bad, "'adapter-foo' is not one hone can load", "unknown method");
    CHECK(variant(good, bad, "method", json_string("adapter-pfeiffer")), "variant");
    expect_fail(m, &hn_method_adapter_houlsby, bad, "'method': expected \"adapter-houlsby\"", "another method's file");
    expect_fail(m, NULL, bad, "'placement'", "pfeiffer with houlsby's placement");
    CHECK(variant(good, bad, "bottleneck", json_integer(4)), "variant");
    expect_fail(m, NULL, bad, "has shape [5, 64], expected [4, 64]", "wrong shape");
    CHECK(variant(good, bad, "bottleneck", NULL), "variant");
    expect_fail(m, NULL, bad, "'bottleneck'", "no bottleneck");
    CHECK(variant(good, bad, "non_linearity", json_string("softplus")), "variant");
    expect_fail(m, NULL, bad, "'non_linearity'", "unknown non-linearity");
    CHECK(variant(good, bad, "scaling", json_real(2.0)), "variant");
    expect_fail(m, NULL, bad, "unknown key 'scaling'", "unknown key");
    // pfeiffer's config over houlsby's tensors: the attention ones are left over
    json_t *pl = json_array();
    json_array_append_new(pl, json_string("ffn_output"));
    CHECK(variant(good, bad, "placement", pl), "variant");
    snprintf(path, sizeof path, "%s/hone_adapter.json", bad);
    snprintf(cmd, sizeof cmd, "sed -i 's/adapter-houlsby/adapter-pfeiffer/' '%s'", path);
    CHECK(system(cmd) == 0, "sed");
    expect_fail(m, NULL, bad, "unexpected tensor 'base_model.model.model.layers.0.self_attn.o_proj.adapter_",
                "extra tensors");
    // a tensor missing: the file rewritten without the last one
    CHECK(variant(good, bad, "format", json_string("hone-adapter")), "variant");
    {
        hn_safetensors st;
        snprintf(path, sizeof path, "%s/adapter_model.safetensors", good);
        CHECK(hn_safetensors_open(&st, path) == HN_OK, "%s", hn_errmsg());
        hn_safetensors_writer *w = hn_safetensors_writer_create();
        for (size_t i = 0; i + 1 < st.n_tensors; i++)
            hn_safetensors_writer_add(w, st.names[i], st.tensors[i].type, st.tensors[i].ndim, st.tensors[i].ne,
                                      st.tensors[i].data);
        snprintf(path, sizeof path, "%s/adapter_model.safetensors", bad);
        CHECK(hn_safetensors_writer_write(w, path) == HN_OK, "%s", hn_errmsg());
        hn_safetensors_writer_destroy(w);
        char want[200];
        snprintf(want, sizeof want, "missing tensor '%s'", st.names[st.n_tensors - 1]);
        expect_fail(m, NULL, bad, want, "missing tensor");
        hn_safetensors_close(&st);
    }
    snprintf(path, sizeof path, "%s/hone_adapter.json", bad);
    FILE *f = fopen(path, "w");
    if (f) fputs("{\"format\": \"hone-adapter\",", f), fclose(f);
    expect_fail(m, NULL, bad, "hone_adapter.json: line", "not JSON");
    expect_fail(bert, NULL, good, "architecture llama", "a Llama adapter on BERT");
out:
    free(a);
    if (root) rm_rf(root);
    tg_free(&g);
}

// ---- other architectures' names

static void test_names(void) {
    struct {
        const char *dir, *o, *down;
    } cases[] = {
        {"tests/data/tiny_gpt2", "base_model.model.transformer.h.0.attn.c_proj.adapter_down.weight",
         "base_model.model.transformer.h.0.mlp.c_proj.adapter_down.weight"},
        {BERT_DIR "/distilbert",
         "base_model.model.distilbert.transformer.layer.0.attention.out_lin.adapter_down.weight",
         "base_model.model.distilbert.transformer.layer.0.ffn.lin2.adapter_down.weight"},
    };
    for (int k = 0; k < 2; k++) {
        hn_model *m = load_model(cases[k].dir);
        if (!m) {
            CHECK(0, "load %s", cases[k].dir);
            continue;
        }
        hn_method_config cfg = hn_method_default_config();
        hn_method *me = NULL;
        CHECK(hn_method_adapter_houlsby.attach_new(&me, m, &cfg) == HN_OK, "%s: %s", cases[k].dir, hn_errmsg());
        if (me) {
            hn_param_list *ps = hn_method_params(me);
            CHECK(!strcmp(ps->items[0]->name, cases[k].o) && !strcmp(ps->items[4]->name, cases[k].down),
                  "%s: names %s, %s", cases[k].dir, ps->items[0]->name, ps->items[4]->name);
        }
        hn_method_destroy(me);
        hn_model_destroy(m);
    }
}

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    hn_model *llama = load_model(TINY_DIR), *bert = load_model(BERT_DIR);
    if (!llama || !bert) {
        hn_model_destroy(llama), hn_model_destroy(bert);
        return 1;
    }
    CHECK(hn_method_find("adapter-houlsby") == &hn_method_adapter_houlsby &&
              hn_method_find("adapter-pfeiffer") == &hn_method_adapter_pfeiffer &&
              !hn_method_adapter_houlsby.peft_type && !hn_method_adapter_pfeiffer.peft_type,
          "the methods' table");
    test_reference(llama, "llama_houlsby", false, 4, 1e-3f);
    test_reference(llama, "llama_pfeiffer", false, 8, 1e-2f);
    test_reference(bert, "bert_houlsby", true, 4, 1e-2f);
    test_reference(bert, "bert_pfeiffer", true, 6, 1e-2f);
    test_fresh(llama, "llama_houlsby", false);
    test_fresh(bert, "bert_houlsby", true);
    test_roundtrip(llama);
    test_broken(llama, bert);
    test_names();
    hn_model_destroy(llama);
    hn_model_destroy(bert);
    return test_done();
}
