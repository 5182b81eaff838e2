// tests/test_ia3.c — IA3 (adapt/ia3.c) against PEFT 0.21's IA3 on the tiny random Llama, GPT-2, BERT and Qwen2
// with PEFT's defaults, the Llama with q_proj and up_proj too, DistilBERT (tools/reference/ia3_peft_ref.py wrote
// tests/data/ia3/NAME: PEFT's saved adapter with every ia3_l drawn near 1, and golden.bin). For each:
// - PEFT's directory loads through hn_method_load (its peft_type); on the golden batch hone's loss (causal-LM
//   loss, or the mean squared distance of BERT's hidden states to a fixed target) and the gradient of every ia3_l
//   meet DESIGN.md section 7 (loss: relative diff <= 1e-5; gradients: max abs diff <= 1e-4 x max(1, max |ref|)),
//   the same with per-block checkpointing; the logits (hidden states) equal PEFT's after its own load within 1e-4;
// - a fresh adapter (the same targets, ones) leaves the outputs bit-identical, has PEFT's trainable-parameter count
//   (print_trainable_parameters) and PEFT's names and shapes; switched off, the outputs are the base's;
// - save -> load gives the same vectors bit for bit, and the same outputs;
// - every adapted layer merged (W's rows / columns and the bias scaled) equals the attached layer within 1e-4;
// - target and feed-forward names that PEFT's suffix matching cannot say in short (BERT's output.dense without
//   attention.output.dense) survive a save -> load; DistilBERT (no defaults in PEFT) needs targets and keeps its
//   own names (k_lin, v_lin, lin2);
// - broken directories (wrong shape, missing tensor, stray tensor, bad peft_type, unknown config key, regular
//   expression, feed-forward outside the targets, a task head, no target) give one-line errors naming the file.
// `test_ia3 --write DIR` also writes DIR/NAME (hone's saved adapter with vectors of its own, and hone_out.bin, its
// outputs) for `ia3_peft_ref.py --check NAME DIR/NAME`; DIR/bert-odd is the odd-names adapter.
#include "adapt/method.h"
#include "io/hf.h"
#include "tests/test.h"
#include "tests/tiny_golden.h"
#include "train/lm_objective.h"

#include <jansson.h>
#include <math.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

extern const hn_method_ops hn_method_ia3; // adapt/ia3.c

typedef struct {
    const char *name, *dir; // tests/data/ia3/NAME, the base's directory
    bool encoder;
    unsigned targets, ff;   // the reference's explicit target_modules / feedforward_modules; 0: PEFT's defaults
} base;

#define P(x) (1u << HN_PROJ_##x)
static const base BASES[] = {
    {"llama", "tests/data/tiny_llama", false, 0, 0},
    {"gpt2", "tests/data/tiny_gpt2", false, 0, 0},
    {"bert", "tests/data/tiny_bert", true, 0, 0},
    {"qwen2", "tests/data/hf_family/qwen2", false, 0, 0},
    {"llama-q", "tests/data/tiny_llama", false, P(Q) | P(K) | P(V) | P(UP) | P(DOWN), P(UP) | P(DOWN)},
    {"distilbert", "tests/data/tiny_bert/distilbert", true, P(K) | P(V) | P(DOWN), P(DOWN)},
};
#undef P

static char tmp_root[256];

static bool one_line(const char *msg) { return msg && *msg && !strchr(msg, '\n'); }

// ---- outputs: logits of every row through the KV-cache path, or BERT's hidden states (valid rows)

typedef struct {
    const tg_array *ids, *lens;
    int B, T, W; // W: vocabulary (logits) or width (hidden states)
} batch;

static float *outputs(hn_model *m, const batch *b, bool encoder) {
    float *out = calloc((size_t)b->B * b->T * b->W, sizeof *out);
    if (encoder) {
        hn_arena ar = {0}, sc = {0};
        hn_ctx c = {.arena = &ar, .scratch = &sc, .mm = HN_MM_EXACT};
        hn_var *h = hn_model_hidden_ex(&c, m, b->ids->i, b->lens->i, b->B, b->T, NULL, false);
        CHECK(h != NULL, "hidden: %s", hn_errmsg());
        for (int r = 0; h && r < b->B; r++) // padded rows mean nothing: leave them zero
            memcpy(out + (size_t)r * b->T * b->W, h->d + (size_t)r * b->T * b->W,
                   (size_t)b->lens->i[r] * b->W * sizeof *out);
        hn_arena_deinit(&ar), hn_arena_deinit(&sc);
        return out;
    }
    for (int r = 0; r < b->B; r++) {
        hn_kv_cache *kv = hn_kv_cache_create(m, b->T);
        float *lg;
        CHECK(kv && hn_model_forward(m, kv, b->ids->i + r * b->T, b->T, HN_LOGITS_ALL, &lg) == HN_OK, "forward: %s",
              hn_errmsg());
        if (kv) memcpy(out + (size_t)r * b->T * b->W, lg, (size_t)b->T * b->W * sizeof *out);
        hn_kv_cache_destroy(kv);
    }
    return out;
}

static double out_diff(const batch *b, const float *got, const float *ref, bool encoder) {
    double md = 0;
    for (int r = 0; r < b->B; r++)
        md = fmax(md, max_diff(got + (size_t)r * b->T * b->W, ref + (size_t)r * b->T * b->W,
                               (int64_t)(encoder ? b->lens->i[r] : b->T) * b->W));
    return md;
}

// ---- loss and gradients of the golden batch

static double loss_grad(hn_model *m, hn_param_list *params, const tg_file *g, bool encoder, bool checkpoint) {
    hn_param_zero_grads(params);
    if (!encoder) {
        int32_t ids[256];
        uint8_t mask[256];
        hn_batch b;
        CHECK(tg_batch(g, &b, ids, mask, 256), "golden batch");
        hn_lm_params lp = hn_lm_default_params();
        lp.mm = HN_MM_EXACT;
        lp.checkpoint = checkpoint;
        hn_objective obj;
        CHECK(hn_lm_objective_init(&obj, m, params, &lp) == HN_OK, "objective: %s", hn_errmsg());
        double sum = 0;
        int64_t n = 0;
        CHECK(obj.loss_grad(obj.user, &b, 1.0f / (float)b.n_loss, &sum, &n) == HN_OK, "loss_grad: %s", hn_errmsg());
        hn_lm_objective_deinit(&obj);
        return n ? sum / (double)n : NAN;
    }
    // BERT: loss = the mean over valid (b, t) and k of (hidden[b, t, k] - probe[b, t, k])^2
    const tg_array *ids = tg_get(g, "input_ids"), *lens = tg_get(g, "lens"), *probe = tg_get(g, "probe");
    int B = (int)ids->dims[0], T = (int)ids->dims[1], C = m->hp.n_embd, n_valid = 0;
    for (int r = 0; r < B; r++) n_valid += lens->i[r];
    hn_arena ar = {0}, sc = {0};
    hn_tape tape = {0};
    hn_ctx c = {.arena = &ar, .scratch = &sc, .tape = &tape, .mm = HN_MM_EXACT};
    hn_var *h = hn_model_hidden_ex(&c, m, ids->i, lens->i, B, T, NULL, false);
    double loss = 0;
    float *dh = h ? hn_var_grad(&c, h) : NULL;
    CHECK(dh != NULL, "hidden: %s", hn_errmsg());
    for (int r = 0; dh && r < B; r++)
        for (int t = 0; t < lens->i[r]; t++)
            for (int k = 0; k < C; k++) {
                size_t i = ((size_t)r * T + t) * C + k;
                double e = (double)h->d[i] - probe->f[i];
                loss += e * e;
                dh[i] = (float)(2 * e / ((double)n_valid * C));
            }
    CHECK(dh && hn_backward(&c) == HN_OK, "backward: %s", hn_errmsg());
    hn_arena_deinit(&ar), hn_arena_deinit(&sc);
    return loss / ((double)n_valid * C);
}

// A param's values or gradient in the file's (HF's) row order: Llama's q/k output vectors are in GGUF's in memory.
static void hf_order(const hn_model *m, const hn_param *p, const float *src, float *dst) {
    int heads = m->hp.arch == HN_ARCH_LLAMA && p->ne[0] == 1 ?
                (strstr(p->name, ".k_proj.") ? m->hp.n_head_kv : strstr(p->name, ".q_proj.") ? m->hp.n_head : 0) : 0;
    if (heads) hn_hf_permute_rows(dst, src, p->n, 1, heads, false);
    else memcpy(dst, src, (size_t)p->n * sizeof *dst);
}

static void test_golden(hn_model *m, const base *bs, const tg_file *g, const batch *b, float *ref_base) {
    char dir[256];
    snprintf(dir, sizeof dir, "tests/data/ia3/%s", bs->name);
    hn_method *me;
    CHECK(hn_method_load(&me, m, dir) == HN_OK, "%s: load PEFT's adapter: %s", bs->name, hn_errmsg());
    if (!me) return;
    CHECK(me->ops == &hn_method_ia3, "%s: loaded as %s", bs->name, me->ops->name);
    hn_param_list *ps = hn_method_params(me);
    const tg_array *nt = tg_get(g, "n_trainable"), *loss = tg_get(g, "loss"), *ref = tg_get(g, "out.loaded");
    CHECK(nt && hn_param_count(ps) == nt->i[0], "%s: %lld trainable, PEFT %d", bs->name,
          (long long)hn_param_count(ps), nt ? nt->i[0] : -1);
    if (!bs->encoder) { // per-block checkpointing runs the hooks again in the backward: the same gradients
        double lc = loss_grad(m, ps, g, false, true);
        float *gc = malloc((size_t)hn_param_count(ps) * sizeof *gc);
        for (int k = 0, off = 0; k < ps->n; off += (int)ps->items[k]->n, k++)
            memcpy(gc + off, ps->items[k]->grad, (size_t)ps->items[k]->n * sizeof *gc);
        double l = loss_grad(m, ps, g, false, false), md = 0;
        for (int k = 0, off = 0; k < ps->n; off += (int)ps->items[k]->n, k++)
            md = fmax(md, max_diff(gc + off, ps->items[k]->grad, ps->items[k]->n));
        CHECK(fabs(lc - l) <= 1e-6 * fabs(l) && md <= 1e-6, "%s: checkpointed: loss %.8f vs %.8f, gradients %.3g",
              bs->name, lc, l, md);
        free(gc);
    }
    double l = loss_grad(m, ps, g, bs->encoder, false), rel = fabs(l - loss->f[0]) / fabs(loss->f[0]);
    CHECK(rel <= 1e-5, "%s: loss %.8f vs PEFT %.8f (rel %.3g)", bs->name, l, (double)loss->f[0], rel);
    int n_ref = 0, n_match = 0;
    double worst = 0;
    for (int i = 0; i < g->n; i++) {
        if (strncmp(g->a[i].name, "grad.", 5)) continue;
        n_ref++;
        for (int k = 0; k < ps->n; k++) {
            hn_param *p = ps->items[k];
            if (strcmp(p->name, g->a[i].name + 5)) continue;
            bool shape = g->a[i].ndim == 2 && g->a[i].dims[0] == p->ne[1] && g->a[i].dims[1] == p->ne[0];
            CHECK(shape, "%s: %s: PEFT's shape [%lld, %lld], hone's [%lld, %lld]", bs->name, p->name,
                  (long long)g->a[i].dims[0], (long long)g->a[i].dims[1], (long long)p->ne[1], (long long)p->ne[0]);
            if (!shape) break;
            float *gr = malloc((size_t)p->n * sizeof *gr);
            hf_order(m, p, p->grad, gr);
            double mr = 0, md = max_diff(gr, g->a[i].f, p->n);
            for (int64_t j = 0; j < p->n; j++) mr = fmax(mr, fabs(g->a[i].f[j]));
            free(gr);
            CHECK(md <= 1e-4 * fmax(1, mr), "%s: %s: gradient max abs diff %.3g (max |ref| %.3g)", bs->name, p->name,
                  md, mr);
            worst = fmax(worst, md / fmax(1, mr));
            n_match++;
        }
    }
    CHECK(n_ref == ps->n && n_match == n_ref, "%s: %d of PEFT's %d gradients matched, hone has %d", bs->name, n_match,
          n_ref, ps->n);
    float *got = outputs(m, b, bs->encoder);
    double od = out_diff(b, got, ref->f, bs->encoder);
    CHECK(od <= 1e-4, "%s: outputs vs PEFT's load: max abs diff %.3g", bs->name, od);
    // off: the base's outputs, bit for bit
    hn_method_set_enabled(me, false);
    float *off = outputs(m, b, bs->encoder);
    CHECK(out_diff(b, off, ref_base, bs->encoder) == 0, "%s: switched off, outputs differ from the base's", bs->name);
    hn_method_set_enabled(me, true);
    printf("  %s: loss rel diff %.2e, %d ia3_l gradients worst max abs diff / max(1, max |ref|) %.2e, %s vs PEFT's "
           "load %.2e, %lld trainable (PEFT %d)\n", bs->name, rel, n_match, worst,
           bs->encoder ? "hidden states" : "logits", od, (long long)hn_param_count(ps), nt->i[0]);
    free(got), free(off);
    hn_method_destroy(me);
}

// ---- a fresh adapter: identity, PEFT's count, names and shapes

static void test_fresh(hn_model *m, const base *bs, const tg_file *g, const batch *b, const float *ref_base) {
    hn_method_config cfg = hn_method_default_config();
    cfg.ia3_targets = bs->targets, cfg.ia3_feedforward = bs->ff;
    hn_method *me;
    CHECK(hn_method_ia3.attach_new(&me, m, &cfg) == HN_OK, "%s: attach_new: %s", bs->name, hn_errmsg());
    if (!me) return;
    hn_param_list *ps = hn_method_params(me);
    const tg_array *nt = tg_get(g, "n_trainable");
    CHECK(hn_param_count(ps) == nt->i[0], "%s: fresh: %lld trainable, PEFT %d", bs->name,
          (long long)hn_param_count(ps), nt->i[0]);
    for (int k = 0; k < ps->n; k++) {
        char name[160];
        snprintf(name, sizeof name, "grad.%s", ps->items[k]->name);
        const tg_array *a = tg_get(g, name);
        CHECK(a && a->n == ps->items[k]->n && a->dims[0] == ps->items[k]->ne[1], "%s: fresh param %s not PEFT's",
              bs->name, ps->items[k]->name);
        bool ones = true;
        for (int64_t i = 0; i < ps->items[k]->n; i++) ones &= ps->items[k]->data[i] == 1.0f;
        CHECK(ones, "%s: %s does not start at ones", bs->name, ps->items[k]->name);
    }
    float *got = outputs(m, b, bs->encoder);
    double d = out_diff(b, got, ref_base, bs->encoder);
    CHECK(d == 0, "%s: ones change the outputs by %.3g", bs->name, d);
    printf("  %s: fresh adapter: %d vectors, %lld trainable (PEFT %d), outputs identical to the base's\n", bs->name,
           ps->n, (long long)hn_param_count(ps), nt->i[0]);
    free(got);
    hn_method_destroy(me);
}

// ---- save -> load, merge

// The vectors of me, moved off PEFT's values so that a save that dropped or reordered them shows.
static void perturb(hn_method *me) {
    hn_param_list *ps = hn_method_params(me);
    for (int k = 0; k < ps->n; k++)
        for (int64_t i = 0; i < ps->items[k]->n; i++) ps->items[k]->data[i] *= 1.0f + 0.1f * sinf((float)(i + 7 * k));
}

static void test_roundtrip(hn_model *m, const base *bs, const batch *b) {
    char src[256], dst[300];
    snprintf(src, sizeof src, "tests/data/ia3/%s", bs->name);
    snprintf(dst, sizeof dst, "%s/rt-%s", tmp_root, bs->name);
    hn_method *a, *c;
    CHECK(hn_method_load(&a, m, src) == HN_OK, "%s: %s", bs->name, hn_errmsg());
    if (!a) return;
    perturb(a);
    float *out_a = outputs(m, b, bs->encoder);
    CHECK(hn_method_save(a, dst) == HN_OK, "%s: save: %s", bs->name, hn_errmsg());
    hn_param_list *pa = hn_method_params(a);
    int n = pa->n;
    float **vals = calloc((size_t)n, sizeof *vals);
    int64_t *lens = calloc((size_t)n, sizeof *lens);
    for (int k = 0; k < n; k++) {
        lens[k] = pa->items[k]->n;
        vals[k] = malloc((size_t)lens[k] * sizeof(float));
        memcpy(vals[k], pa->items[k]->data, (size_t)lens[k] * sizeof(float));
    }
    hn_method_destroy(a);
    CHECK(hn_method_load(&c, m, dst) == HN_OK, "%s: load hone's save: %s", bs->name, hn_errmsg());
    if (c) {
        hn_param_list *pc = hn_method_params(c);
        bool same = pc->n == n;
        for (int k = 0; same && k < n; k++)
            same = pc->items[k]->n == lens[k] && !memcmp(pc->items[k]->data, vals[k], (size_t)pc->items[k]->n * 4);
        CHECK(same, "%s: save -> load changed the vectors", bs->name);
        float *out_c = outputs(m, b, bs->encoder);
        CHECK(out_diff(b, out_c, out_a, bs->encoder) == 0, "%s: save -> load changed the outputs", bs->name);
        free(out_c);
        // the config PEFT reads: its keys, the task type, fan_in_fan_out for GPT-2's Conv1D layers
        char path[400];
        snprintf(path, sizeof path, "%s/adapter_config.json", dst);
        json_t *cfg = json_load_file(path, 0, NULL);
        CHECK(cfg && !strcmp(json_string_value(json_object_get(cfg, "peft_type")), "IA3") &&
              json_is_array(json_object_get(cfg, "target_modules")) &&
              json_is_array(json_object_get(cfg, "feedforward_modules")) &&
              json_is_true(json_object_get(cfg, "fan_in_fan_out")) == !strcmp(bs->name, "gpt2"),
              "%s: saved adapter_config.json", bs->name);
        json_decref(cfg);
        printf("  %s: save -> load: vectors and outputs bit-identical\n", bs->name);
        hn_method_destroy(c);
    }
    for (int k = 0; k < n; k++) free(vals[k]);
    free(vals), free(lens), free(out_a);
}

static void test_merge(hn_model *m, const base *bs) {
    char src[256];
    snprintf(src, sizeof src, "tests/data/ia3/%s", bs->name);
    hn_method *me;
    CHECK(hn_method_load(&me, m, src) == HN_OK, "%s: %s", bs->name, hn_errmsg());
    if (!me) return;
    double worst = 0;
    int n_layers = 0;
    for (int l = 0; l < m->hp.n_layer; l++)
        for (int p = 0; p < HN_PROJ_COUNT; p++) {
            hn_linear *lin = hn_method_linear(m, l, (hn_proj)p);
            if (!lin || !lin->ext) continue; // not adapted
            int64_t in = lin->w->ne[0], out = lin->w->ne[1], N = 3;
            float *w = malloc((size_t)(in * out) * 4), *bias = calloc((size_t)out, 4);
            float *x = malloc((size_t)(N * in) * 4);
            for (int64_t r = 0; r < out; r++) hn_get_row(lin->w, r, w + r * in);
            if (lin->b) memcpy(bias, lin->b->data, (size_t)out * 4);
            CHECK(hn_method_merge(me, l, (hn_proj)p, w) == HN_OK &&
                  hn_method_merge_bias(me, l, (hn_proj)p, bias) == HN_OK, "merge: %s", hn_errmsg());
            for (int64_t i = 0; i < N * in; i++) x[i] = sinf(0.37f * (float)i);
            hn_arena ar = {0};
            hn_ctx c = {.arena = &ar, .mm = HN_MM_EXACT};
            hn_var *y = hn_linear_forward(&c, lin, hn_var_wrap(&c, x, N, in, false));
            for (int64_t t = 0; y && t < N; t++)
                for (int64_t o = 0; o < out; o++) {
                    double s = bias[o];
                    for (int64_t i = 0; i < in; i++) s += (double)x[t * in + i] * w[o * in + i];
                    worst = fmax(worst, fabs(s - y->d[t * out + o]));
                }
            CHECK(y != NULL, "forward: %s", hn_errmsg());
            hn_arena_deinit(&ar);
            free(w), free(bias), free(x);
            n_layers++;
        }
    CHECK(n_layers == hn_method_params(me)->n && worst <= 1e-4, "%s: merge: %d layers, max abs diff %.3g", bs->name,
          n_layers, worst);
    printf("  %s: merge: %d layers, merged vs attached max abs diff %.2e\n", bs->name, n_layers, worst);
    hn_method_destroy(me);
}

// ---- names PEFT's suffix matching cannot say in short

static void write_hngt(const char *path, const batch *b, const float *out, bool encoder);

static void test_odd_names(hn_model *bert, const batch *b, const char *write_dir) {
    hn_method_config cfg = hn_method_default_config();
    cfg.ia3_targets = (1u << HN_PROJ_Q) | (1u << HN_PROJ_O) | (1u << HN_PROJ_DOWN);
    cfg.ia3_feedforward = 1u << HN_PROJ_DOWN; // output.dense's input, not attention.output.dense's
    hn_method *me, *back;
    CHECK(hn_method_ia3.attach_new(&me, bert, &cfg) == HN_OK, "odd: %s", hn_errmsg());
    if (!me) return;
    perturb(me);
    char dir[300];
    snprintf(dir, sizeof dir, "%s/bert-odd", write_dir ? write_dir : tmp_root);
    CHECK(hn_method_save(me, dir) == HN_OK, "odd: save: %s", hn_errmsg());
    char path[400];
    snprintf(path, sizeof path, "%s/adapter_config.json", dir);
    json_t *c = json_load_file(path, 0, NULL);
    char *tm = c ? json_dumps(json_object_get(c, "target_modules"), JSON_COMPACT) : NULL;
    char *fm = c ? json_dumps(json_object_get(c, "feedforward_modules"), JSON_COMPACT) : NULL;
    // output.dense's full paths (the short name would reach attention.output.dense too), in both lists
    CHECK(tm && fm && !strcmp(fm, "[\"encoder.layer.0.output.dense\",\"encoder.layer.1.output.dense\"]") &&
          !strcmp(tm, "[\"encoder.layer.0.output.dense\",\"encoder.layer.1.output.dense\",\"query\","
                      "\"output.dense\"]"), "odd names: target_modules %s, feedforward_modules %s",
          tm ? tm : "?", fm ? fm : "?");
    printf("  bert: targets q, attention.output.dense, output.dense (feed-forward): target_modules %s, "
           "feedforward_modules %s\n", tm ? tm : "?", fm ? fm : "?");
    free(tm), free(fm);
    json_decref(c);
    hn_param_list *pm = hn_method_params(me);
    float *want = calloc(4096, sizeof *want);
    int64_t off = 0;
    for (int k = 0; k < pm->n && off + pm->items[k]->n <= 4096; off += pm->items[k]->n, k++)
        memcpy(want + off, pm->items[k]->data, (size_t)pm->items[k]->n * 4);
    hn_method_destroy(me);
    CHECK(hn_method_load(&back, bert, dir) == HN_OK, "odd: load: %s", hn_errmsg());
    if (back) {
        hn_param_list *pb = hn_method_params(back);
        bool same = pb->n == 3 * bert->hp.n_layer;
        off = 0;
        for (int k = 0; same && k < pb->n; off += pb->items[k]->n, k++) {
            bool ff = strstr(pb->items[k]->name, "layer.0.output") || strstr(pb->items[k]->name, "layer.1.output");
            same = (ff ? pb->items[k]->ne[1] == 1 : pb->items[k]->ne[0] == 1) &&
                   !memcmp(pb->items[k]->data, want + off, (size_t)pb->items[k]->n * 4);
        }
        CHECK(same, "odd: save -> load changed the modules or their vectors");
        if (write_dir) { // for ia3_peft_ref.py --check bert DIR/bert-odd
            float *out = outputs(bert, b, true);
            snprintf(path, sizeof path, "%s/hone_out.bin", dir);
            write_hngt(path, b, out, true);
            free(out);
        }
        hn_method_destroy(back);
    }
    free(want);
}

// ---- broken directories

// dir: PEFT's Llama adapter with the config edited by edit (NULL: as is) and the tensors rewritten: drop one (its
// name), reshape one, add one.
typedef struct {
    const char *drop, *reshape, *add;
    void (*edit)(json_t *cfg);
} breakage;

static void make_broken(const char *dir, const breakage *bk) {
    mkdir(dir, 0755);
    char path[400];
    snprintf(path, sizeof path, "%s/adapter_config.json", dir);
    json_t *cfg = json_load_file("tests/data/ia3/llama/adapter_config.json", 0, NULL);
    if (bk->edit) bk->edit(cfg);
    json_dump_file(cfg, path, JSON_INDENT(2));
    json_decref(cfg);
    hn_safetensors st;
    if (hn_safetensors_open(&st, "tests/data/ia3/llama/adapter_model.safetensors")) return;
    hn_safetensors_writer *w = hn_safetensors_writer_create();
    float extra[8] = {1, 1, 1, 1, 1, 1, 1, 1};
    for (size_t i = 0; i < st.n_tensors; i++) {
        const hn_tensor *t = &st.tensors[i];
        if (bk->drop && !strcmp(st.names[i], bk->drop)) continue;
        int64_t ne[2] = {t->ne[0], t->ne[1]};
        if (bk->reshape && !strcmp(st.names[i], bk->reshape)) ne[0] = t->ne[1], ne[1] = t->ne[0];
        hn_safetensors_writer_add(w, st.names[i], t->type, 2, ne, t->data);
    }
    if (bk->add) hn_safetensors_writer_add(w, bk->add, HN_F32, 2, (int64_t[]){1, 8}, extra);
    snprintf(path, sizeof path, "%s/adapter_model.safetensors", dir);
    hn_safetensors_writer_write(w, path);
    hn_safetensors_writer_destroy(w);
    hn_safetensors_close(&st);
}

static void edit_peft_type(json_t *c) { json_object_set_new(c, "peft_type", json_string("LORA")); }
static void edit_unknown_key(json_t *c) { json_object_set_new(c, "ia3_rank", json_integer(4)); }
static void edit_regex(json_t *c) { json_object_set_new(c, "target_modules", json_string(".*k_proj")); }
static void edit_ff(json_t *c) {
    json_t *ff = json_array();
    json_array_append_new(ff, json_string("up_proj"));
    json_object_set_new(c, "feedforward_modules", ff);
}
static void edit_task(json_t *c) { json_object_set_new(c, "task_type", json_string("SEQ_CLS")); }
static void edit_none(json_t *c) {
    json_t *t = json_array();
    json_array_append_new(t, json_string("lm_head"));
    json_object_set_new(c, "target_modules", t);
    json_object_set_new(c, "feedforward_modules", json_array());
}

static void test_broken(hn_model *m) {
    static const struct {
        const char *what;
        breakage bk;
        const char *expect; // in the message
    } cases[] = {
        {"wrong shape", {.reshape = "base_model.model.model.layers.1.self_attn.k_proj.ia3_l"}, "expected [32, 1]"},
        {"missing tensor", {.drop = "base_model.model.model.layers.0.mlp.down_proj.ia3_l"}, "no tensor"},
        {"stray tensor", {.add = "base_model.model.lm_head.ia3_l"}, "lm_head"},
        {"bad peft_type", {.edit = edit_peft_type}, "'peft_type': expected \"IA3\""},
        {"unknown config key", {.edit = edit_unknown_key}, "'ia3_rank'"},
        {"regular expression", {.edit = edit_regex}, "regular expressions"},
        {"feed-forward not a target", {.edit = edit_ff}, "'up_proj' is not in target_modules"},
        {"task type", {.edit = edit_task}, "'task_type'"},
        {"no target", {.edit = edit_none}, "selects no linear layer"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char dir[300];
        snprintf(dir, sizeof dir, "%s/broken%zu", tmp_root, i);
        make_broken(dir, &cases[i].bk);
        hn_method *me = (hn_method *)1;
        hn_status s = hn_method_ia3.load(&me, m, dir);
        const char *msg = hn_errmsg();
        CHECK(s != HN_OK && me == NULL && one_line(msg) && strstr(msg, dir) && strstr(msg, cases[i].expect),
              "%s: status %d, message: %s", cases[i].what, s, msg);
        printf("  broken (%s): %s\n", cases[i].what, msg);
    }
    // no adapter there at all
    char dir[300];
    snprintf(dir, sizeof dir, "%s/missing-dir", tmp_root);
    hn_method *me;
    CHECK(hn_method_load(&me, m, dir) != HN_OK && one_line(hn_errmsg()), "missing dir: %s", hn_errmsg());
    CHECK(m->layers[0].k.ext == NULL && m->layers[1].down.ext == NULL, "a failed load left attachments behind");
}

// ---- DistilBERT: no PEFT defaults; its own module names

static void test_distilbert(hn_model *m) {
    hn_method_config cfg = hn_method_default_config();
    hn_method *me = NULL, *back = NULL;
    CHECK(hn_method_ia3.attach_new(&me, m, &cfg) == HN_ERR_UNSUPPORTED && !me && one_line(hn_errmsg()) &&
          strstr(hn_errmsg(), "k_lin"), "DistilBERT without targets: %s", hn_errmsg());
    cfg.ia3_targets = (1u << HN_PROJ_K) | (1u << HN_PROJ_V) | (1u << HN_PROJ_DOWN);
    cfg.ia3_feedforward = 1u << HN_PROJ_UP;
    CHECK(hn_method_ia3.attach_new(&me, m, &cfg) == HN_ERR_ARG && !me && strstr(hn_errmsg(), "up_proj"),
          "feed-forward outside the targets: %s", hn_errmsg());
    cfg.ia3_feedforward = 1u << HN_PROJ_DOWN;
    CHECK(hn_method_ia3.attach_new(&me, m, &cfg) == HN_OK, "DistilBERT: %s", hn_errmsg());
    if (!me) return;
    perturb(me);
    char dir[300], path[400];
    snprintf(dir, sizeof dir, "%s/distilbert", tmp_root);
    CHECK(hn_method_save(me, dir) == HN_OK, "DistilBERT save: %s", hn_errmsg());
    snprintf(path, sizeof path, "%s/adapter_config.json", dir);
    json_t *c = json_load_file(path, 0, NULL);
    char *tm = c ? json_dumps(json_object_get(c, "target_modules"), JSON_COMPACT) : NULL;
    char *fm = c ? json_dumps(json_object_get(c, "feedforward_modules"), JSON_COMPACT) : NULL;
    CHECK(tm && fm && !strcmp(tm, "[\"lin2\",\"k_lin\",\"v_lin\"]") && !strcmp(fm, "[\"lin2\"]"),
          "DistilBERT names: %s, %s", tm ? tm : "?", fm ? fm : "?");
    hn_param_list *pm = hn_method_params(me);
    CHECK(!strcmp(pm->items[0]->name, "base_model.model.transformer.layer.0.attention.k_lin.ia3_l"), "name %s",
          pm->items[0]->name);
    float first = pm->items[0]->data[3];
    hn_method_destroy(me);
    CHECK(hn_method_load(&back, m, dir) == HN_OK && hn_method_params(back)->n == 3 * m->hp.n_layer &&
          hn_method_params(back)->items[0]->data[3] == first, "DistilBERT load: %s", hn_errmsg());
    printf("  distilbert: no defaults (refused in one line); k_lin, v_lin, lin2 (feed-forward) saved as "
           "target_modules %s, feedforward_modules %s, loaded back\n", tm ? tm : "?", fm ? fm : "?");
    free(tm), free(fm);
    json_decref(c);
    hn_method_destroy(back);
}

// ---- --write DIR: hone's adapters and outputs for ia3_peft_ref.py --check

static void write_hngt(const char *path, const batch *b, const float *out, bool encoder) {
    FILE *f = fopen(path, "wb");
    if (!f) return;
    uint32_t n = encoder ? 3 : 2;
    fwrite("HNGT", 1, 4, f);
    fwrite((uint32_t[]){1, n}, 4, 2, f);
    const struct {
        const char *name;
        uint32_t dtype, ndim, dims[3];
        const void *data;
    } arr[3] = {{"input_ids", 1, 2, {b->B, b->T}, b->ids->i},
                {"out", 0, 3, {b->B, b->T, b->W}, out},
                {"lens", 1, 1, {b->B}, encoder ? b->lens->i : NULL}};
    for (uint32_t k = 0; k < n; k++) {
        uint32_t len = (uint32_t)strlen(arr[k].name), count = 1;
        fwrite(&len, 4, 1, f), fwrite(arr[k].name, 1, len, f);
        fwrite(&arr[k].dtype, 4, 1, f), fwrite(&arr[k].ndim, 4, 1, f), fwrite(arr[k].dims, 4, arr[k].ndim, f);
        for (uint32_t d = 0; d < arr[k].ndim; d++) count *= arr[k].dims[d];
        fwrite(arr[k].data, 4, count, f);
    }
    fclose(f);
}

static void write_for_check(hn_model *m, const base *bs, const batch *b, const char *root) {
    char src[256], dst[400];
    snprintf(src, sizeof src, "tests/data/ia3/%s", bs->name);
    snprintf(dst, sizeof dst, "%s/%s", root, bs->name);
    hn_method *me;
    if (hn_method_load(&me, m, src)) return;
    perturb(me);
    CHECK(hn_method_save(me, dst) == HN_OK, "write: %s", hn_errmsg());
    float *out = outputs(m, b, bs->encoder);
    snprintf(dst, sizeof dst, "%s/%s/hone_out.bin", root, bs->name);
    write_hngt(dst, b, out, bs->encoder);
    free(out);
    hn_method_destroy(me);
    printf("  wrote %s/%s\n", root, bs->name);
}

int main(int argc, char **argv) {
    const char *write_dir = argc > 2 && !strcmp(argv[1], "--write") ? argv[2] : NULL;
    snprintf(tmp_root, sizeof tmp_root, "/tmp/hone-test-ia3-XXXXXX");
    if (!mkdtemp(tmp_root)) return test_skip("no temporary directory");
    if (write_dir) mkdir(write_dir, 0755);
    for (size_t i = 0; i < sizeof BASES / sizeof *BASES; i++) {
        const base *bs = &BASES[i];
        char path[256];
        snprintf(path, sizeof path, "tests/data/ia3/%s/golden.bin", bs->name);
        tg_file g;
        if (!tg_load(&g, path)) {
            CHECK(0, "cannot read %s", path);
            continue;
        }
        hn_model_params mp = hn_model_default_params();
        mp.mm_mode = HN_MM_EXACT;
        mp.allow_no_tokenizer = true;
        hn_model *m;
        if (hn_model_load(&m, bs->dir, &mp)) {
            CHECK(0, "load %s: %s", bs->dir, hn_errmsg());
            tg_free(&g);
            continue;
        }
        const tg_array *ids = tg_get(&g, "input_ids"), *out = tg_get(&g, "out");
        batch b = {.ids = ids, .lens = tg_get(&g, "lens"), .B = (int)ids->dims[0], .T = (int)ids->dims[1],
                   .W = (int)out->dims[2]};
        printf("%s (%s):\n", bs->name, bs->dir);
        float *ref_base = outputs(m, &b, bs->encoder);
        test_golden(m, bs, &g, &b, ref_base);
        test_fresh(m, bs, &g, &b, ref_base);
        test_roundtrip(m, bs, &b);
        test_merge(m, bs);
        if (!strcmp(bs->name, "bert")) test_odd_names(m, &b, write_dir);
        if (!strcmp(bs->name, "distilbert")) test_distilbert(m);
        if (!strcmp(bs->name, "llama")) test_broken(m);
        if (write_dir) write_for_check(m, bs, &b, write_dir);
        CHECK(m->layers[0].k.ext == NULL && m->layers[0].down.ext == NULL, "%s: attachments left behind", bs->name);
        free(ref_base);
        hn_model_destroy(m);
        tg_free(&g);
    }
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp_root);
    if (system(cmd)) fprintf(stderr, "could not remove %s\n", tmp_root);
    return test_done();
}
