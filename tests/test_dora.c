// tests/test_dora.c — DoRA (adapt/dora.c) against PEFT 0.21.2's use_dora adapters (tools/reference/dora_peft_ref.py,
// tests/data/dora/{llama,bert}): PEFT's directory loads through hn_method_load; on the golden batch hone's loss,
// every lora_A / lora_B / lora_magnitude_vector gradient and the logits (Llama) or hidden states (BERT) meet
// DESIGN.md section 7's rows; the trainable count is PEFT's; a fresh DoRA (B = 0, m = ||W||) leaves the logits
// unchanged (also over an NF4 base); save -> load gives the same tensors and outputs; merge equals the attached layer
// within 1e-4; off is the base; finite differences agree with the backward with and without dropout; broken
// directories give one-line errors.
//
//   build/test_dora              the checks
//   build/test_dora --save DIR   also writes DIR/llama and DIR/bert: hone's adapters (PEFT's moved by one SGD step)
//                                and hone.bin with their outputs, for `dora_peft_ref.py --check DIR`
#include "adapt/method.h"
#include "io/hf.h"
#include "tests/test.h"
#include "tests/tiny_golden.h"
#include "train/lm_objective.h"

#include <math.h>
#include <sys/stat.h>
#include <unistd.h>

extern const hn_method_ops hn_method_dora;

#define DORA_DIR "tests/data/dora"
#define BERT_DIR "tests/data/tiny_bert"

static const tg_array *need(const tg_file *g, const char *name) {
    const tg_array *a = tg_get(g, name);
    if (!a) fprintf(stderr, "golden.bin: no array %s\n", name);
    return a;
}

static hn_model *load_model(const char *path, hn_dtype quantize) {
    hn_model_params mp = hn_model_default_params();
    mp.mm_mode = HN_MM_EXACT, mp.quantize = quantize;
    mp.allow_no_tokenizer = true;
    hn_model *m = NULL;
    if (hn_model_load(&m, path, &mp)) fprintf(stderr, "load %s: %s\n", path, hn_errmsg());
    return m;
}

// The rows a param's file layout has in another order: B and the magnitude of a Llama q/k projection.
static int heads_of(const hn_model *m, const hn_param *p) {
    if (m->hp.arch != HN_ARCH_LLAMA || strstr(p->name, "lora_A")) return 0;
    return strstr(p->name, ".q_proj.") ? m->hp.n_head : strstr(p->name, ".k_proj.") ? m->hp.n_head_kv : 0;
}

static void param_shape(const hn_param *p, int64_t *rows, int64_t *cols) {
    *rows = p->ndim == 1 ? p->ne[0] : p->ne[1], *cols = p->ndim == 1 ? 1 : p->ne[0];
}

// Every param's gradient against grad.NAME (HF row order), DESIGN.md 7's gradient row. Returns how many matched.
static int check_grads(const hn_model *m, hn_param_list *pl, const tg_file *g, const char *label) {
    double worst = 0;
    int n = 0;
    for (int i = 0; i < pl->n; i++) {
        hn_param *p = pl->items[i];
        char name[160];
        snprintf(name, sizeof name, "grad.%s", p->name);
        const tg_array *ga = need(g, name);
        if (!ga || ga->n != p->n) {
            CHECK(false, "%s: %s missing or %lld values, hone has %lld", label, name, ga ? (long long)ga->n : 0LL,
                  (long long)p->n);
            continue;
        }
        float *hf = malloc((size_t)p->n * sizeof *hf);
        int heads = heads_of(m, p);
        int64_t rows, cols;
        param_shape(p, &rows, &cols);
        if (heads) hn_hf_permute_rows(hf, p->grad, rows, cols, heads, false);
        else memcpy(hf, p->grad, (size_t)p->n * sizeof *hf);
        double md = 0, mr = 0;
        for (int64_t k = 0; k < p->n; k++) md = fmax(md, fabs(hf[k] - ga->f[k])), mr = fmax(mr, fabs(ga->f[k]));
        free(hf);
        CHECK(md <= 1e-4 * fmax(1, mr), "%s: %s max abs diff %.3g (max |ref| %.3g)", label, p->name, md, mr);
        CHECK(mr > 0, "%s: %s: PEFT's gradient is zero (the golden should exercise it)", label, name);
        worst = fmax(worst, md / fmax(1, mr));
        n++;
    }
    printf("%s: %d gradients, worst max abs diff / max(1, max |ref|) = %.2e (tolerance 1e-4)\n", label, n, worst);
    return n;
}

// Logits (B, T, V) of the inference path with whatever is attached.
static float *llama_logits(hn_model *m, const int32_t *ids, int B, int T) {
    int V = m->hp.n_vocab;
    float *out = malloc((size_t)B * T * V * sizeof *out);
    for (int r = 0; r < B; r++) {
        hn_kv_cache *kv = hn_kv_cache_create(m, T);
        float *lg;
        CHECK(kv && hn_model_forward(m, kv, ids + r * T, T, HN_LOGITS_ALL, &lg) == HN_OK, "forward: %s", hn_errmsg());
        memcpy(out + (size_t)r * T * V, lg, (size_t)T * V * sizeof *out);
        hn_kv_cache_destroy(kv);
    }
    return out;
}

// BERT's hidden states (B*T, C) for a padded batch; with a tape and dh != NULL, the backward of <h, dh> too.
static float *bert_hidden(hn_model *m, const int32_t *ids, const int32_t *lens, int B, int T, const float *dh,
                          double *loss) {
    hn_arena ar = {0}, scratch = {0};
    hn_tape tape = {0};
    hn_ctx c = {.arena = &ar, .scratch = &scratch, .tape = dh ? &tape : NULL, .mm = HN_MM_EXACT};
    hn_var *h = hn_model_hidden_ex(&c, m, ids, lens, B, T, NULL, false);
    CHECK(h && !c.err, "BERT hidden: %s", hn_errmsg());
    if (!h) {
        hn_arena_deinit(&ar), hn_arena_deinit(&scratch);
        return NULL;
    }
    int64_t n = h->rows * h->cols;
    float *out = malloc((size_t)n * sizeof *out);
    memcpy(out, h->d, (size_t)n * sizeof *out);
    if (dh) {
        double l = 0;
        for (int64_t i = 0; i < n; i++) l += (double)h->d[i] * dh[i];
        *loss = l;
        float *g = hn_var_grad(&c, h);
        memcpy(g, dh, (size_t)n * sizeof *g);
        CHECK(hn_backward(&c) == HN_OK, "backward: %s", hn_errmsg());
    }
    hn_arena_deinit(&ar), hn_arena_deinit(&scratch);
    return out;
}

static hn_param *find_param(hn_param_list *pl, const char *suffix) {
    for (int i = 0; i < pl->n; i++) {
        size_t n = strlen(pl->items[i]->name), k = strlen(suffix);
        if (n >= k && !strcmp(pl->items[i]->name + n - k, suffix)) return pl->items[i];
    }
    return NULL;
}

// One SGD step (p -= lr * grad), so that a saved adapter is hone's own and not PEFT's bytes.
static void sgd(hn_param_list *pl, float lr) {
    for (int i = 0; i < pl->n; i++)
        for (int64_t k = 0; k < pl->items[i]->n; k++) pl->items[i]->data[k] -= lr * pl->items[i]->grad[k];
}

// ---- HNGT writer for --save (tests/tiny_golden.h's layout)

typedef struct {
    const char *name;
    int dtype, ndim;
    uint32_t dims[3];
    const void *data;
} hngt_array;

static bool write_hngt(const char *path, const hngt_array *a, int n) {
    FILE *f = fopen(path, "wb");
    if (!f) return false;
    uint32_t hdr[2] = {1, (uint32_t)n};
    bool ok = fwrite("HNGT", 1, 4, f) == 4 && fwrite(hdr, 4, 2, f) == 2;
    for (int i = 0; ok && i < n; i++) {
        uint32_t len = (uint32_t)strlen(a[i].name), dt = (uint32_t)a[i].dtype, nd = (uint32_t)a[i].ndim;
        size_t cnt = 1;
        for (int d = 0; d < a[i].ndim; d++) cnt *= a[i].dims[d];
        ok = fwrite(&len, 4, 1, f) == 1 && fwrite(a[i].name, 1, len, f) == len && fwrite(&dt, 4, 1, f) == 1 &&
             fwrite(&nd, 4, 1, f) == 1 && fwrite(a[i].dims, 4, nd, f) == nd && fwrite(a[i].data, 4, cnt, f) == cnt;
    }
    return fclose(f) == 0 && ok;
}

// ---- Llama

static void check_llama_golden(hn_model *m, const tg_file *g, const char *save_dir) {
    hn_method *me;
    CHECK(hn_method_load(&me, m, DORA_DIR "/llama") == HN_OK, "load PEFT's DoRA: %s", hn_errmsg());
    if (!me) return;
    CHECK(me->ops == &hn_method_dora && hn_method_find("dora") == &hn_method_dora, "use_dora loads as dora");
    hn_param_list *pl = hn_method_params(me);
    const tg_array *tr = need(g, "trainable");
    CHECK(tr && hn_param_count(pl) == tr->i[0], "trainable %lld, PEFT's print_trainable_parameters %d",
          (long long)hn_param_count(pl), tr ? tr->i[0] : -1);
    printf("Llama DoRA: %d tensors, %lld trainable (PEFT: %d)\n", pl->n, (long long)hn_param_count(pl),
           tr ? tr->i[0] : -1);
    const tg_array *in = need(g, "input_ids"), *ref = need(g, "out"), *refl = need(g, "out.loaded");
    int B = (int)in->dims[0], T = (int)in->dims[1];
    float *lg = llama_logits(m, in->i, B, T);
    double d = max_diff(lg, ref->f, ref->n), dl = max_diff(lg, refl->f, refl->n);
    CHECK(d <= 1e-4 && dl <= 1e-4, "logits: max abs diff %.3g (loaded: %.3g)", d, dl);
    printf("Llama DoRA logits (inference path): max abs diff vs PEFT %.2e, vs PEFT's reload %.2e\n", d, dl);
    free(lg);

    int32_t ids[64];
    uint8_t mask[64];
    hn_batch b;
    CHECK(tg_batch(g, &b, ids, mask, 64), "golden batch");
    for (int ck = 0; ck < 2; ck++) {
        hn_lm_params lp = hn_lm_default_params();
        lp.mm = HN_MM_EXACT, lp.checkpoint = ck;
        hn_objective obj;
        CHECK(hn_lm_objective_init(&obj, m, pl, &lp) == HN_OK, "objective: %s", hn_errmsg());
        hn_param_zero_grads(pl);
        double sum = 0;
        int64_t n = 0;
        CHECK(obj.loss_grad(obj.user, &b, 1.0f / (float)b.n_loss, &sum, &n) == HN_OK, "loss_grad: %s", hn_errmsg());
        double loss = sum / (double)n, r = need(g, "loss")->f[0];
        const char *label = ck ? "Llama DoRA checkpointed" : "Llama DoRA";
        CHECK(fabs(loss - r) <= 1e-5 * fabs(r), "%s: loss %.8f vs PEFT %.8f", label, loss, r);
        printf("%s: loss %.7f vs PEFT %.7f (rel diff %.2e)\n", label, loss, r, fabs(loss - r) / fabs(r));
        CHECK(check_grads(m, pl, g, label) == 42, "42 gradients (14 modules x A, B, m)");
        hn_lm_objective_deinit(&obj);
    }

    // save -> load: the same tensors, bit for bit, and the same logits
    sgd(pl, 0.5f);
    float *before = llama_logits(m, in->i, B, T);
    char tmp[] = "/tmp/hone_dora_XXXXXX";
    CHECK(mkdtemp(tmp) != NULL, "mkdtemp");
    char dir[512];
    snprintf(dir, sizeof dir, "%s/adapter", tmp);
    CHECK(hn_method_save(me, dir) == HN_OK, "save: %s", hn_errmsg());
    hn_method *back;
    CHECK(hn_method_load(&back, m, dir) == HN_OK, "load back: %s", hn_errmsg());
    hn_method_set_enabled(me, false);
    if (back) {
        hn_param_list *bl = hn_method_params(back);
        bool same = bl->n == pl->n;
        for (int i = 0; same && i < pl->n; i++)
            same = !strcmp(bl->items[i]->name, pl->items[i]->name) && bl->items[i]->n == pl->items[i]->n &&
                   !memcmp(bl->items[i]->data, pl->items[i]->data, (size_t)pl->items[i]->n * sizeof(float));
        CHECK(same, "save -> load: tensors differ");
        float *after = llama_logits(m, in->i, B, T);
        double dd = max_diff(before, after, ref->n);
        CHECK(dd == 0, "save -> load: logits differ by %.3g", dd);
        printf("save -> load: %d tensors bit-equal, logits max abs diff %.2e\n", pl->n, dd);
        free(after);
        hn_method_destroy(back);
    }
    hn_method_set_enabled(me, true);
    if (save_dir) {
        char out[512], path[600];
        snprintf(out, sizeof out, "%s/llama", save_dir);
        CHECK(hn_method_save(me, out) == HN_OK, "save %s: %s", out, hn_errmsg());
        snprintf(path, sizeof path, "%s/hone.bin", out);
        hngt_array a[2] = {{"input_ids", 1, 2, {(uint32_t)B, (uint32_t)T}, in->i},
                           {"out", 0, 3, {(uint32_t)B, (uint32_t)T, (uint32_t)m->hp.n_vocab}, before}};
        CHECK(write_hngt(path, a, 2), "write %s", path);
        printf("wrote %s (hone's DoRA after one SGD step, and its logits)\n", out);
    }
    free(before);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
    CHECK(system(cmd) == 0, "rm");
    hn_method_destroy(me);
    CHECK(!m->layers[0].q.ext && !m->layers[1].down.ext, "destroy detaches");
}

// merge(W) equals the attached layer: x (W' )^T + b vs hn_linear_forward, every adapted module, scale mult too.
static void check_merge(hn_model *m, hn_method *me, const char *label) {
    double worst = 0;
    int n = 0;
    for (int l = 0; l < m->hp.n_layer; l++)
        for (int p = 0; p < HN_PROJ_COUNT; p++) {
            hn_linear *lin = hn_method_linear(m, l, (hn_proj)p);
            if (!lin || !lin->ext) continue;
            int64_t in = lin->w->ne[0], out = lin->w->ne[1];
            float *dense = malloc((size_t)(in * out) * 4), *x = malloc((size_t)in * 3 * 4);
            for (int64_t r = 0; r < out; r++) hn_get_row(lin->w, r, dense + r * in);
            CHECK(hn_method_merge(me, l, (hn_proj)p, dense) == HN_OK, "merge: %s", hn_errmsg());
            for (int64_t i = 0; i < 3 * in; i++) x[i] = sinf(0.7f * (float)i + (float)p);
            hn_arena ar = {0};
            hn_ctx c = {.arena = &ar, .mm = HN_MM_EXACT};
            hn_var *y = hn_linear_forward(&c, lin, hn_var_wrap(&c, x, 3, in, false));
            double md = 0;
            for (int64_t t = 0; y && t < 3; t++)
                for (int64_t o = 0; o < out; o++) {
                    double s = lin->b ? ((const float *)lin->b->data)[o] : 0;
                    for (int64_t i = 0; i < in; i++) s += (double)x[t * in + i] * dense[o * in + i];
                    md = fmax(md, fabs(s - y->d[t * out + o]));
                }
            CHECK(y && md <= 1e-4, "%s: layer %d %s merged vs attached: %.3g", label, l, hn_proj_hf_name((hn_proj)p), md);
            worst = fmax(worst, md);
            n++;
            hn_arena_deinit(&ar);
            free(dense), free(x);
        }
    // a module DoRA does not adapt keeps its weight
    printf("%s: merged == attached for %d modules, max abs diff %.2e\n", label, n, worst);
    CHECK(n > 0, "no module checked");
}

// A fresh DoRA: A in LoRA's bound, B = 0, m = ||W||_row, the logits the base's; off gives the base bitwise; merge
// matches (also at another scale); PEFT's trainable count.
static void check_fresh(hn_model *m, const tg_file *g, const char *label) {
    const tg_array *in = need(g, "input_ids");
    int B = (int)in->dims[0], T = (int)in->dims[1];
    int64_t n = (int64_t)B * T * m->hp.n_vocab;
    float *base = llama_logits(m, in->i, B, T);
    hn_method_config cfg = hn_method_default_config();
    cfg.lora.r = 4, cfg.lora.alpha = 8, cfg.lora.seed = 3;
    hn_method *me;
    CHECK(hn_method_dora.attach_new(&me, m, &cfg) == HN_OK, "attach_new: %s", hn_errmsg());
    if (!me) return;
    hn_param_list *pl = hn_method_params(me);
    CHECK(hn_param_count(pl) == need(g, "trainable")->i[0], "fresh: trainable %lld", (long long)hn_param_count(pl));
    hn_param *A = find_param(pl, "layers.1.mlp.down_proj.lora_A.weight"),
             *Bp = find_param(pl, "layers.1.mlp.down_proj.lora_B.weight"),
             *M = find_param(pl, "layers.1.mlp.down_proj.lora_magnitude_vector");
    CHECK(A && Bp && M && M->ndim == 1 && M->ne[0] == 64, "param names and shapes");
    if (A && Bp && M) {
        double amax = 0, bmax = 0, mdiff = 0, bound = 1 / sqrt((double)A->ne[0]);
        for (int64_t i = 0; i < A->n; i++) amax = fmax(amax, fabs(A->data[i]));
        for (int64_t i = 0; i < Bp->n; i++) bmax = fmax(bmax, fabs(Bp->data[i]));
        float *row = malloc((size_t)A->ne[0] * 4);
        for (int64_t o = 0; o < M->n; o++) {
            hn_get_row(m->layers[1].down.w, o, row);
            double s = 0;
            for (int64_t i = 0; i < A->ne[0]; i++) s += (double)row[i] * row[i];
            mdiff = fmax(mdiff, fabs(sqrt(s) - M->data[o]) / sqrt(s));
        }
        free(row);
        CHECK(amax <= bound && amax > 0.8 * bound && bmax == 0 && mdiff < 1e-6,
              "init: max |A| %g (bound %g), max |B| %g, m vs ||W|| rel %g", amax, bound, bmax, mdiff);
    }
    float *lg = llama_logits(m, in->i, B, T);
    double d = max_diff(lg, base, n);
    CHECK(d <= 1e-5, "%sidentity at init: logits moved by %.3g", label, d);
    printf("%sfresh DoRA (B = 0, m = ||W||): logits within %.2e of the base's\n", label, d);
    free(lg);
    // B and m moved: off is the base again, bit for bit
    for (int i = 0; i < pl->n; i++)
        for (int64_t k = 0; k < pl->items[i]->n; k++)
            if (!strstr(pl->items[i]->name, "lora_A"))
                pl->items[i]->data[k] += strstr(pl->items[i]->name, "magnitude") ? 0.3f * sinf((float)k)
                                                                                  : 0.05f * cosf((float)(k * 3 + i));
    hn_method_set_enabled(me, false);
    lg = llama_logits(m, in->i, B, T);
    CHECK(max_diff(lg, base, n) == 0, "off: logits differ from the base's by %.3g", max_diff(lg, base, n));
    free(lg);
    hn_method_set_enabled(me, true);
    lg = llama_logits(m, in->i, B, T);
    CHECK(max_diff(lg, base, n) > 1e-2, "on: B and m should move the logits");
    free(lg);
    char what[64];
    snprintf(what, sizeof what, "%sLlama merge", label);
    check_merge(m, me, what);
    CHECK(hn_method_set_scale(me, 0.5f) == HN_OK, "set_scale");
    snprintf(what, sizeof what, "%sLlama merge at scale 0.5", label);
    check_merge(m, me, what);
    hn_method_destroy(me);
    free(base);
}

// ---- broken directories

static void copy_file(const char *from, const char *to) {
    FILE *a = fopen(from, "rb"), *b = fopen(to, "wb");
    char buf[4096];
    size_t k;
    while (a && b && (k = fread(buf, 1, sizeof buf, a)) > 0) fwrite(buf, 1, k, b);
    if (a) fclose(a);
    if (b) fclose(b);
}

// dst gets src's adapter_config.json (or cfg_text) and its tensors with `drop` left out and `reshape` given
// shape [n+1] (both names may be NULL; extra: one more tensor of that name).
static void rewrite(const char *src, const char *dst, const char *drop, const char *reshape, const char *extra,
                    const char *cfg_text) {
    char a[600], b[600];
    mkdir(dst, 0755);
    snprintf(b, sizeof b, "%s/adapter_config.json", dst);
    if (cfg_text) {
        FILE *f = fopen(b, "w");
        fputs(cfg_text, f);
        fclose(f);
    } else {
        snprintf(a, sizeof a, "%s/adapter_config.json", src);
        copy_file(a, b);
    }
    snprintf(a, sizeof a, "%s/adapter_model.safetensors", src);
    hn_safetensors st;
    CHECK(hn_safetensors_open(&st, a) == HN_OK, "open %s: %s", a, hn_errmsg());
    hn_safetensors_writer *w = hn_safetensors_writer_create();
    static float zeros[4096];
    for (size_t i = 0; i < st.n_tensors; i++) {
        const hn_tensor *t = &st.tensors[i];
        if (drop && !strcmp(st.names[i], drop)) continue;
        if (reshape && !strcmp(st.names[i], reshape))
            hn_safetensors_writer_add(w, st.names[i], HN_F32, 1, (int64_t[]){t->ne[0] + 1}, zeros);
        else hn_safetensors_writer_add(w, st.names[i], t->type, t->ndim, t->ne, t->data);
    }
    if (extra) hn_safetensors_writer_add(w, extra, HN_F32, 1, (int64_t[]){4}, zeros);
    snprintf(b, sizeof b, "%s/adapter_model.safetensors", dst);
    CHECK(hn_safetensors_writer_write(w, b) == HN_OK, "write %s: %s", b, hn_errmsg());
    hn_safetensors_writer_destroy(w);
    hn_safetensors_close(&st);
}

static void expect_error(hn_model *m, const char *dir, const char *what, const char *must_contain) {
    hn_method *me = (hn_method *)1;
    hn_status s = hn_method_dora.load(&me, m, dir);
    const char *msg = hn_errmsg();
    CHECK(s != HN_OK && me == NULL && !strchr(msg, '\n') && strstr(msg, must_contain), "%s: status %d, message '%s'",
          what, s, msg);
    printf("  %-28s -> %s\n", what, msg);
    if (!s) hn_method_destroy(me);
}

static void check_broken(hn_model *m) {
    char tmp[] = "/tmp/hone_dora_bad_XXXXXX";
    CHECK(mkdtemp(tmp) != NULL, "mkdtemp");
    char d[600];
    const char *mag = "base_model.model.model.layers.0.self_attn.k_proj.lora_magnitude_vector";
    printf("broken adapters:\n");
    snprintf(d, sizeof d, "%s/shape", tmp);
    rewrite(DORA_DIR "/llama", d, NULL, mag, NULL, NULL);
    expect_error(m, d, "wrong magnitude shape", "expected [32]");
    snprintf(d, sizeof d, "%s/missing", tmp);
    rewrite(DORA_DIR "/llama", d, mag, NULL, NULL, NULL);
    expect_error(m, d, "missing magnitude", "lora_magnitude_vector");
    snprintf(d, sizeof d, "%s/missing_b", tmp);
    rewrite(DORA_DIR "/llama", d, "base_model.model.model.layers.1.mlp.up_proj.lora_B.weight", NULL, NULL, NULL);
    expect_error(m, d, "missing lora_B", "up_proj.lora_B.weight");
    snprintf(d, sizeof d, "%s/extra", tmp);
    rewrite(DORA_DIR "/llama", d, NULL, NULL, "base_model.model.model.layers.0.self_attn.q_proj.lora_magnitude_vector.weight",
            NULL);
    expect_error(m, d, "unknown tensor", "lora_magnitude_vector.weight");
    snprintf(d, sizeof d, "%s/not_dora", tmp);
    rewrite(DORA_DIR "/llama", d, NULL, NULL, NULL, "{\"peft_type\": \"LORA\", \"r\": 4, \"lora_alpha\": 8}");
    expect_error(m, d, "use_dora missing", "'use_dora'");
    snprintf(d, sizeof d, "%s/bad_r", tmp);
    rewrite(DORA_DIR "/llama", d, NULL, NULL, NULL, "{\"peft_type\": \"LORA\", \"use_dora\": true, \"r\": \"four\"}");
    expect_error(m, d, "r not an integer", "'r'");
    snprintf(d, sizeof d, "%s/wrong_r", tmp);
    rewrite(DORA_DIR "/llama", d, NULL, NULL, NULL, "{\"peft_type\": \"LORA\", \"use_dora\": true, \"r\": 8}");
    expect_error(m, d, "r disagrees with lora_A", "r = 8");
    snprintf(d, sizeof d, "%s/pattern", tmp);
    rewrite(DORA_DIR "/llama", d, NULL, NULL, NULL,
            "{\"peft_type\": \"LORA\", \"use_dora\": true, \"r\": 4, \"rank_pattern\": {\"q_proj\": 2}}");
    expect_error(m, d, "rank_pattern", "'rank_pattern'");
    snprintf(d, sizeof d, "%s/nothing", tmp);
    expect_error(m, d, "no directory", "adapter_config.json");
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
    CHECK(system(cmd) == 0, "rm");
}

// ---- BERT

// Finite differences through one adapted layer with a bias (BERT's attention output), with and without dropout
// (PEFT's two paths: base(x) - bias, or the weight again on the dropped input): f = <R, y> is linear in x and in m
// (the norm does not depend on them; the dropout mask is the same for a reseeded rng), so central differences
// are exact up to rounding.
static double fd_f(hn_linear *lin, float *x, int64_t N, const float *R, bool tape, float p_drop,
                   hn_param *M, float *gx) {
    hn_arena ar = {0};
    hn_tape tp = {0};
    hn_rng rng;
    hn_rng_seed(&rng, 11);
    hn_ctx c = {.arena = &ar, .tape = tape ? &tp : NULL, .mm = HN_MM_EXACT, .rng = &rng, .training = p_drop > 0};
    hn_var *xv = hn_var_wrap(&c, x, N, lin->w->ne[0], tape);
    hn_var *y = hn_linear_forward(&c, lin, xv);
    double f = 0;
    int64_t n = y ? y->rows * y->cols : 0;
    for (int64_t i = 0; i < n; i++) f += (double)R[i] * y->d[i];
    if (tape && y) {
        memcpy(hn_var_grad(&c, y), R, (size_t)n * sizeof *R);
        if (M) memset(M->grad, 0, (size_t)M->n * sizeof(float));
        CHECK(hn_backward(&c) == HN_OK, "backward: %s", hn_errmsg());
        memcpy(gx, xv->g, (size_t)xv->rows * xv->cols * sizeof *gx);
    }
    CHECK(y && !c.err, "fd forward: %s", hn_errmsg());
    hn_arena_deinit(&ar);
    return f;
}

static void check_fd(hn_model *m) {
    for (int k = 0; k < 2; k++) {
        float p_drop = k ? 0.3f : 0.0f;
        hn_method_config cfg = hn_method_default_config();
        cfg.lora.r = 4, cfg.lora.alpha = 8, cfg.lora.dropout = p_drop, cfg.lora.targets = 1u << HN_PROJ_O;
        hn_method *me;
        CHECK(hn_method_dora.attach_new(&me, m, &cfg) == HN_OK, "attach_new: %s", hn_errmsg());
        if (!me) return;
        hn_param_list *pl = hn_method_params(me);
        hn_param *M = find_param(pl, "layer.0.attention.output.dense.lora_magnitude_vector"),
                 *Bp = find_param(pl, "layer.0.attention.output.dense.lora_B.weight");
        for (int64_t i = 0; i < Bp->n; i++) Bp->data[i] = 0.1f * sinf((float)i);
        for (int64_t i = 0; i < M->n; i++) M->data[i] *= 1.0f + 0.2f * cosf((float)i);
        hn_linear *lin = &m->layers[0].o;
        const int64_t N = 3, in = lin->w->ne[0], out = lin->w->ne[1];
        float *x = malloc((size_t)(N * in) * 4), *R = malloc((size_t)(N * out) * 4), *gx = malloc((size_t)(N * in) * 4);
        for (int64_t i = 0; i < N * in; i++) x[i] = sinf(0.37f * (float)i);
        for (int64_t i = 0; i < N * out; i++) R[i] = cosf(0.91f * (float)i);
        fd_f(lin, x, N, R, true, p_drop, M, gx);
        float *gm = malloc((size_t)M->n * 4);
        memcpy(gm, M->grad, (size_t)M->n * 4);
        double wx = 0, wm = 0;
        const float eps = 1e-2f;
        for (int64_t i = 0; i < N * in; i += 7) {
            float v = x[i];
            x[i] = v + eps;
            double fp = fd_f(lin, x, N, R, false, p_drop, NULL, NULL);
            x[i] = v - eps;
            double fm = fd_f(lin, x, N, R, false, p_drop, NULL, NULL);
            x[i] = v;
            wx = fmax(wx, fabs((fp - fm) / (2 * eps) - gx[i]) / fmax(1, fabs(gx[i])));
        }
        for (int64_t i = 0; i < M->n; i += 3) {
            float v = M->data[i];
            M->data[i] = v + eps;
            double fp = fd_f(lin, x, N, R, false, p_drop, NULL, NULL);
            M->data[i] = v - eps;
            double fm = fd_f(lin, x, N, R, false, p_drop, NULL, NULL);
            M->data[i] = v;
            wm = fmax(wm, fabs((fp - fm) / (2 * eps) - gm[i]) / fmax(1, fabs(gm[i])));
        }
        CHECK(wx < 1e-3 && wm < 1e-3, "dropout %g: finite differences vs backward: x %.3g, m %.3g", p_drop, wx, wm);
        printf("finite differences, dropout %.1f: d/dx rel err %.2e, d/dm rel err %.2e\n", p_drop, wx, wm);
        free(x), free(R), free(gx), free(gm);
        hn_method_destroy(me);
    }
}

static void check_bert(const char *save_dir) {
    tg_file g;
    if (!tg_load(&g, DORA_DIR "/bert/golden.bin")) {
        CHECK(false, "tests/data/dora/bert/golden.bin not readable");
        return;
    }
    hn_model *m = load_model(BERT_DIR, HN_F32);
    CHECK(m != NULL, "load tiny BERT");
    hn_method *me = NULL;
    if (m) CHECK(hn_method_load(&me, m, DORA_DIR "/bert") == HN_OK, "load PEFT's BERT DoRA: %s", hn_errmsg());
    if (!me) {
        hn_model_destroy(m);
        tg_free(&g);
        return;
    }
    hn_param_list *pl = hn_method_params(me);
    const tg_array *in = need(&g, "input_ids"), *lens = need(&g, "lens"), *R = need(&g, "R"), *ref = need(&g, "out");
    int B = (int)in->dims[0], T = (int)in->dims[1], C = m->hp.n_embd, nv = 0;
    CHECK(hn_param_count(pl) == need(&g, "trainable")->i[0], "BERT trainable %lld vs PEFT %d",
          (long long)hn_param_count(pl), need(&g, "trainable")->i[0]);
    printf("BERT DoRA: %d tensors, %lld trainable (PEFT: %d)\n", pl->n, (long long)hn_param_count(pl),
           need(&g, "trainable")->i[0]);
    for (int b = 0; b < B; b++) nv += lens->i[b];
    float *dh = malloc((size_t)B * T * C * sizeof *dh);
    for (int64_t i = 0; i < (int64_t)B * T * C; i++) dh[i] = R->f[i] / (float)nv;
    hn_param_zero_grads(pl);
    double loss = 0, r = need(&g, "loss")->f[0];
    float *h = bert_hidden(m, in->i, lens->i, B, T, dh, &loss);
    CHECK(fabs(loss - r) <= 1e-5 * fabs(r), "BERT loss %.8f vs PEFT %.8f", loss, r);
    printf("BERT DoRA: loss %.7f vs PEFT %.7f (rel diff %.2e)\n", loss, r, fabs(loss - r) / fabs(r));
    CHECK(check_grads(m, pl, &g, "BERT DoRA") == 36, "36 gradients (12 modules x A, B, m)");
    double md = 0;
    for (int b = 0; h && b < B; b++)
        md = fmax(md, max_diff(h + (int64_t)b * T * C, ref->f + (int64_t)b * T * C, (int64_t)lens->i[b] * C));
    CHECK(h && md <= 1e-4, "BERT hidden states: max abs diff %.3g", md);
    printf("BERT DoRA hidden states (valid tokens): max abs diff vs PEFT %.2e\n", md);
    free(h);
    check_merge(m, me, "BERT merge (biases)");
    if (save_dir) {
        sgd(pl, 0.5f);
        char out[512], path[600];
        snprintf(out, sizeof out, "%s/bert", save_dir);
        CHECK(hn_method_save(me, out) == HN_OK, "save %s: %s", out, hn_errmsg());
        float *hs = bert_hidden(m, in->i, lens->i, B, T, NULL, NULL);
        snprintf(path, sizeof path, "%s/hone.bin", out);
        hngt_array a[3] = {{"input_ids", 1, 2, {(uint32_t)B, (uint32_t)T}, in->i},
                           {"lens", 1, 1, {(uint32_t)B}, lens->i},
                           {"out", 0, 3, {(uint32_t)B, (uint32_t)T, (uint32_t)C}, hs}};
        CHECK(hs && write_hngt(path, a, 3), "write %s", path);
        printf("wrote %s (hone's DoRA after one SGD step, and its hidden states)\n", out);
        free(hs);
    }
    free(dh);
    hn_method_destroy(me);
    check_fd(m);
    hn_model_destroy(m);
    tg_free(&g);
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    const char *save_dir = argc == 3 && !strcmp(argv[1], "--save") ? argv[2] : NULL;
    if (argc > 1 && !save_dir) {
        fprintf(stderr, "usage: %s [--save DIR]\n", argv[0]);
        return 2;
    }
    if (save_dir) mkdir(save_dir, 0755);
    tg_file g;
    if (!tg_load(&g, DORA_DIR "/llama/golden.bin")) return test_skip("tests/data/dora/llama/golden.bin not readable");
    hn_model *m = load_model(TINY_DIR, HN_F32);
    if (!m) {
        tg_free(&g);
        return 1;
    }
    check_llama_golden(m, &g, save_dir);
    check_fresh(m, &g, "");
    check_broken(m);
    hn_model_destroy(m);
    // a quantized base (QLoRA's NF4): the norms come from dequantized rows, the weight is never dense
    if ((m = load_model(TINY_DIR, HN_NF4))) check_fresh(m, &g, "NF4 base: ");
    CHECK(m != NULL, "NF4 load");
    hn_model_destroy(m);
    tg_free(&g);
    check_bert(save_dir);
    return test_done();
}
