// adapt/ia3.c — IA3 (Liu et al. 2022, "Few-Shot Parameter-Efficient Fine-Tuning is Better and Cheaper than In-Context
// Learning", section 3.3: "(IA)^3") as PEFT 0.21 implements it (peft/tuners/ia3/layer.py, model.py, config.py): a
// learned vector l per targeted linear layer that rescales its output, y = (x · W^T + b) ⊙ l (PEFT's defaults: keys
// and values), or, for PEFT's feedforward_modules, its input, y = (x ⊙ l) · W^T + b (the hn_linear_ext pre hook).
// The vectors start at ones (PEFT's init_ia3_weights), so a fresh adapter changes nothing.
//
//   hn_method_config cfg = hn_method_default_config(); // ia3_targets 0: PEFT's defaults for m's architecture
//   hn_method *me;
//   if (hn_method_ia3.attach_new(&me, m, &cfg)) ...;   // or hn_method_find("ia3")
//   ... train hn_method_params(me) ...
//   hn_method_save(me, "run/adapter");                  // PEFT's IA3 directory; hn_method_load reads it back
//
// Configuration (hn_method_config): ia3_targets 0 takes PEFT's TRANSFORMERS_MODELS_TO_IA3_TARGET_MODULES_MAPPING and
// ..._FEEDFORWARD_MODULES_MAPPING (peft/utils/constants.py) for the architecture: Llama (and Mistral) k_proj, v_proj,
// down_proj with down_proj feed-forward; Qwen2 q_proj, v_proj, down_proj, down_proj feed-forward; GPT-2 c_attn and
// mlp.c_proj, mlp.c_proj feed-forward; BERT key, value, output.dense with output.dense feed-forward (PEFT's suffix
// match makes both attention.output.dense and output.dense targets and feed-forward). DistilBERT has no entry in
// PEFT's tables and needs explicit targets. With ia3_targets set, ia3_feedforward is taken as given (0: none), and
// must be a subset of the targets (IA3Config.__post_init__ refuses otherwise).
//
// Files: PEFT's names, base_model.model.<module>.ia3_l, shaped (out, 1) for output scaling and (1, in) for feed-
// forward modules (IA3Layer.update_layer), fp32, the base record in the metadata. <module> is the path in the model
// class PEFT wraps: LlamaForCausalLM's model.layers.N.self_attn.k_proj, GPT2LMHeadModel's transformer.h.N.attn.c_attn,
// and for encoders, whose adapter_config.json says FEATURE_EXTRACTION (hn_method_peft_config), the bare BertModel's
// encoder.layer.N.attention.self.key (DistilBertModel's transformer.layer.N.attention.k_lin). Reading also takes the
// task models' bert. / distilbert. prefixed names. Llama's q_proj / k_proj rows are permuted in GGUF for rotary
// embedding (FORMATS.md section 3, io/hf.h); a vector that scales their outputs is kept in that order in memory (the
// param's values and gradient) and permuted on reading and back on writing; Qwen2, GPT-2 and BERT keep HF's order.
#include "adapt/method.h"
#include "io/hf.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern const hn_method_ops hn_method_ia3;

#define P(x) (1u << HN_PROJ_##x)

typedef struct {
    hn_linear_ext ext;
    hn_linear *lin;
    int layer;
    hn_proj proj;
    bool ff;      // scales the input (feedforward_modules): n = in; else the output: n = out
    int heads;    // > 0: the vector is in GGUF's rotary row order in memory, HF's in files (Llama q/k)
    hn_param v;   // (n): PEFT's ia3_l, (out, 1) or (1, in)
} ia3_mod;

typedef struct {
    hn_method base;
    ia3_mod *mods; // (n_mods), in layer then hn_proj order
    int n_mods;
    hn_param_list params;
} ia3;

// ---- the op: y (N, C) = x (N, C) ⊙ s (C) on every row, s trainable when gs is non-NULL

typedef struct {
    hn_tape_rec rec;
    hn_var *x, *y;
    const float *s;
    float *gs;
} scale_rec;

static void scale_backward(hn_ctx *c, hn_tape_rec *rec) {
    scale_rec *r = (scale_rec *)rec;
    if (!r->y->g) return;
    const int64_t N = r->x->rows, C = r->x->cols;
    const float *dy = r->y->g, *x = r->x->d, *s = r->s;
    float *dx = r->x->rg ? hn_var_grad(c, r->x) : NULL;
    if (r->x->rg && !dx) return;
    if (dx) { // dx += dy ⊙ s
#pragma omp parallel for num_threads(N * C > (1 << 16) ? hn_threads_get() : 1)
        for (int64_t i = 0; i < N; i++)
            for (int64_t j = 0; j < C; j++) dx[i * C + j] += dy[i * C + j] * s[j];
    }
    if (r->gs) // gs += sum over rows of dy ⊙ x, in row order (the same sums for any thread count)
        for (int64_t i = 0; i < N; i++)
            for (int64_t j = 0; j < C; j++) r->gs[j] += dy[i * C + j] * x[i * C + j];
}

// A new var, not x scaled in place: the backward needs x for s's gradient, and x may be read elsewhere (a layer's
// input is the pre hooks' output and other attachments' input).
static hn_var *scale_cols(hn_ctx *c, hn_var *x, const float *s, float *gs, int64_t n) {
    if (!x || c->err) return NULL;
    if (x->cols != n)
        return hn_op_fail(c, hn_fail(HN_ERR_ARG, "IA3: a vector of %lld values scales rows of %lld", (long long)n,
                                     (long long)x->cols));
    hn_var *y = hn_var_new(c, x->rows, x->cols);
    if (!y) return NULL;
    const int64_t N = x->rows, C = x->cols;
#pragma omp parallel for num_threads(N * C > (1 << 16) ? hn_threads_get() : 1)
    for (int64_t i = 0; i < N; i++)
        for (int64_t j = 0; j < C; j++) y->d[i * C + j] = x->d[i * C + j] * s[j];
    y->rg = x->rg || gs;
    if (hn_grad_on(c, y->rg)) {
        scale_rec *r = hn_tape_push(c, scale_backward, sizeof *r);
        if (!r) return NULL;
        r->x = x, r->y = y, r->s = s, r->gs = gs;
    }
    return y;
}

static float *grad_of(ia3_mod *md) { return md->v.frozen ? NULL : md->v.grad; }

static hn_var *ia3_pre(hn_ctx *c, const hn_linear *l, void *state, hn_var *x) {
    (void)l;
    ia3_mod *md = state;
    return scale_cols(c, x, md->v.data, grad_of(md), md->v.n);
}

static hn_var *ia3_apply(hn_ctx *c, const hn_linear *l, void *state, hn_var *x, hn_var *y) {
    (void)l, (void)x;
    ia3_mod *md = state;
    return scale_cols(c, y, md->v.data, grad_of(md), md->v.n);
}

// ---- modules: where they are and what PEFT calls them

// PEFT's module key (the path in the model it wraps). Encoders are saved as FEATURE_EXTRACTION adapters, which wrap
// the bare BertModel / DistilBertModel: their paths lack the task model's first component (bert., distilbert.).
static void peft_key(char *dst, size_t n, const hn_model *m, int layer, hn_proj p) {
    char path[160];
    hn_method_module_path(path, sizeof path, m, layer, p);
    const char *dot = strchr(path, '.');
    snprintf(dst, n, "%s", m->hp.arch == HN_ARCH_BERT && dot ? dot + 1 : path);
}

static bool is_distilbert(const hn_model *m) { return m->hp.arch == HN_ARCH_BERT && !m->type_embd; }

// PEFT's IA3 defaults for m's architecture (see the top of this file); HN_ERR_UNSUPPORTED where PEFT has none.
static hn_status default_targets(const hn_model *m, unsigned *targets, unsigned *ff) {
    switch (m->hp.arch) {
    case HN_ARCH_LLAMA: *targets = P(K) | P(V) | P(DOWN), *ff = P(DOWN); return HN_OK;
    case HN_ARCH_QWEN2: *targets = P(Q) | P(V) | P(DOWN), *ff = P(DOWN); return HN_OK;
    case HN_ARCH_GPT2: *targets = P(QKV) | P(DOWN), *ff = P(DOWN); return HN_OK;
    case HN_ARCH_BERT:
        if (is_distilbert(m)) break;
        *targets = P(K) | P(V) | P(O) | P(DOWN), *ff = P(O) | P(DOWN);
        return HN_OK;
    default: break;
    }
    return hn_fail(HN_ERR_UNSUPPORTED, "%s: IA3: PEFT has no default target_modules for this architecture "
                   "(DistilBERT); name the targets (e.g. k_lin, v_lin, lin2) and the feed-forward modules (lin2)",
                   m->path);
}

// A linear layer PEFT could wrap: a block's projection, or (layer -1) BERT's pooler, which hone keeps frozen but
// PEFT's name matching can reach ("dense", all-linear).
typedef struct {
    int layer;
    hn_proj proj;
    char key[160];
} site;

// Every site of m into s (room for n_layer * HN_PROJ_COUNT + 1); returns the count.
static int list_sites(hn_model *m, site *s) {
    int n = 0;
    for (int l = 0; l < m->hp.n_layer; l++)
        for (int p = 0; p < HN_PROJ_COUNT; p++)
            if (hn_method_linear(m, l, (hn_proj)p)) {
                s[n] = (site){.layer = l, .proj = (hn_proj)p};
                peft_key(s[n].key, sizeof s[n].key, m, l, (hn_proj)p);
                n++;
            }
    if (m->hp.arch == HN_ARCH_BERT && m->pooler.w) s[n++] = (site){.layer = -1, .key = "pooler.dense"};
    return n;
}

static bool ends_with(const char *s, const char *suffix) {
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && !strcmp(s + a - b, suffix);
}

// PEFT's matching of a key against one name of a list: target_modules and exclude_modules match the key itself or a
// suffix after a dot (tuners_utils.check_target_module_exists); feedforward_modules any suffix
// (IA3Model._check_target_module_feedforward).
static bool name_matches(const char *key, const char *name, bool dot) {
    if (!dot) return ends_with(key, name);
    size_t a = strlen(key), b = strlen(name);
    return !strcmp(key, name) || (a > b && key[a - b - 1] == '.' && !strcmp(key + a - b, name));
}

static bool list_matches(const json_t *list, const char *key, bool dot) {
    for (size_t i = 0; i < json_array_size(list); i++)
        if (name_matches(key, json_string_value(json_array_get(list, i)), dot)) return true;
    return false;
}

static void add_name(json_t *list, const char *name) {
    for (size_t i = 0; i < json_array_size(list); i++)
        if (!strcmp(json_string_value(json_array_get(list, i)), name)) return;
    json_array_append_new(list, json_string(name));
}

static bool in_set(const unsigned *sel, const site *s) { return s->layer >= 0 && sel[s->layer] & (1u << s->proj); }

// Names that select, under PEFT's rule (dot or not), exactly projection p's sites in sel: the shortest suffix of its
// path within a block that reaches no site outside sel ("k_proj", "output.dense", "mlp.c_proj"), or else the full
// key of each selected site (BERT's output.dense without attention.output.dense, some layers only).
static void name_sites(json_t *out, const site *sites, int n_sites, const unsigned *sel, hn_proj p, bool dot) {
    const site *first = NULL;
    bool all = true;
    for (int i = 0; i < n_sites; i++)
        if (sites[i].layer >= 0 && sites[i].proj == p) {
            if (!first && in_set(sel, &sites[i])) first = &sites[i];
            all &= in_set(sel, &sites[i]);
        }
    if (!first) return;
    const char *rest = first->key; // after the block index: "model.layers.0.self_attn.k_proj" -> "self_attn.k_proj"
    for (const char *q = first->key; *q; q++)
        if (q[0] == '.' && q[1] >= '0' && q[1] <= '9') {
            const char *r = q + 1;
            while (*r >= '0' && *r <= '9') r++;
            if (*r == '.') {
                rest = r + 1;
                break;
            }
        }
    for (const char *cand = rest + strlen(rest); all && cand > rest;) {
        do cand--;
        while (cand > rest && cand[-1] != '.');
        bool ok = true;
        for (int i = 0; i < n_sites && ok; i++) ok = !name_matches(sites[i].key, cand, dot) || in_set(sel, &sites[i]);
        if (ok) {
            add_name(out, cand);
            return;
        }
    }
    for (int i = 0; i < n_sites; i++)
        if (sites[i].layer >= 0 && sites[i].proj == p && in_set(sel, &sites[i])) add_name(out, sites[i].key);
}

// ---- creating, destroying

static hn_status create(ia3 **out, hn_model *m, const unsigned *sel, const unsigned *ff) {
    *out = NULL;
    int n = 0;
    for (int l = 0; l < m->hp.n_layer; l++)
        for (int p = 0; p < HN_PROJ_COUNT; p++) n += (sel[l] >> p) & 1;
    if (!n) return hn_fail(HN_ERR_ARG, "%s: IA3: none of the target modules is a linear layer of this model", m->path);
    ia3 *me = hn_calloc(1, sizeof *me, "IA3");
    if (!me || !(me->mods = hn_calloc((size_t)n, sizeof *me->mods, "IA3 modules"))) {
        free(me);
        return HN_ERR_NOMEM;
    }
    me->base = (hn_method){&hn_method_ia3, m};
    hn_status s = HN_OK;
    for (int l = 0; l < m->hp.n_layer && !s; l++)
        for (int p = 0; p < HN_PROJ_COUNT && !s; p++) {
            if (!(sel[l] & (1u << p))) continue;
            ia3_mod *md = &me->mods[me->n_mods++];
            md->lin = hn_method_linear(m, l, (hn_proj)p);
            md->layer = l, md->proj = (hn_proj)p, md->ff = ff[l] & (1u << p);
            md->heads = md->ff ? 0 : hn_method_permuted_heads(m, (hn_proj)p);
            int64_t in = md->lin->w->ne[0], o = md->lin->w->ne[1], len = md->ff ? in : o;
            if (md->heads && o % (2 * md->heads)) {
                s = hn_fail(HN_ERR_ARG, "%s: layer %d %s has %lld outputs, not a multiple of 2 x %d heads", m->path, l,
                            hn_proj_hf_name((hn_proj)p), (long long)o, md->heads);
                break;
            }
            hn_param *v = &md->v;
            char key[160];
            peft_key(key, sizeof key, m, l, (hn_proj)p);
            snprintf(v->name, sizeof v->name, "base_model.model.%.100s.ia3_l", key);
            v->n = len, v->ndim = 2;
            v->ne[0] = md->ff ? len : 1, v->ne[1] = md->ff ? 1 : len; // PyTorch (1, in) or (out, 1)
            // Not no_decay: transformers' Trainer decays every parameter but biases and norms, ia3_l included.
            v->data = hn_alloc((size_t)len * sizeof(float), "IA3 vector");
            v->grad = hn_calloc((size_t)len, sizeof(float), "IA3 gradient");
            if (!v->data || !v->grad) {
                s = HN_ERR_NOMEM;
                break;
            }
            for (int64_t i = 0; i < len; i++) v->data[i] = 1.0f; // init_ia3_weights: ones
            s = hn_param_list_add(&me->params, v);
        }
    if (s) {
        hn_method_ia3.destroy(&me->base);
        return s;
    }
    for (int i = 0; i < me->n_mods; i++) {
        ia3_mod *md = &me->mods[i];
        md->ext = (hn_linear_ext){.method = "ia3", .state = md};
        if (md->ff) md->ext.pre = ia3_pre;
        else md->ext.apply = ia3_apply;
        hn_linear_attach(md->lin, &md->ext);
    }
    *out = me;
    return HN_OK;
}

static void ia3_destroy(hn_method *base) {
    ia3 *me = (ia3 *)base;
    for (int i = 0; i < me->n_mods; i++) {
        ia3_mod *md = &me->mods[i];
        if (md->ext.pre || md->ext.apply) hn_linear_detach(md->lin, &md->ext);
        free(md->v.data), free(md->v.grad);
    }
    hn_param_list_deinit(&me->params);
    free(me->mods);
    free(me);
}

static hn_status ia3_attach_new(hn_method **out, hn_model *m, const hn_method_config *cfg) {
    *out = NULL;
    unsigned t = cfg->ia3_targets, f = cfg->ia3_feedforward;
    hn_status s = t ? HN_OK : default_targets(m, &t, &f);
    if (s) return s;
    if (f & ~t)
        return hn_fail(HN_ERR_ARG, "IA3: feedforward modules must be among the target modules (PEFT's IA3Config "
                       "requires it); %s is not a target", hn_proj_hf_name((hn_proj)__builtin_ctz(f & ~t)));
    int L = m->hp.n_layer;
    unsigned *sel = hn_calloc((size_t)L * 2 + 1, sizeof *sel, "IA3 modules"), *ff = sel + L;
    if (!sel) return HN_ERR_NOMEM;
    for (int l = 0; l < L; l++)
        for (int p = 0; p < HN_PROJ_COUNT; p++) // the targeted projections this architecture has
            if (t & (1u << p) && hn_method_linear(m, l, (hn_proj)p)) sel[l] |= 1u << p, ff[l] |= f & (1u << p);
    ia3 *me;
    s = create(&me, m, sel, ff);
    free(sel);
    if (!s) *out = &me->base;
    return s;
}

static hn_param_list *ia3_params(hn_method *base) { return &((ia3 *)base)->params; }

static void ia3_set_enabled(hn_method *base, bool on) {
    ia3 *me = (ia3 *)base;
    for (int i = 0; i < me->n_mods; i++) me->mods[i].ext.off = !on;
}

static const ia3_mod *find(const ia3 *me, int layer, hn_proj proj) {
    for (int i = 0; i < me->n_mods; i++)
        if (me->mods[i].layer == layer && me->mods[i].proj == proj) return &me->mods[i];
    return NULL;
}

// ---- merging (IA3's Linear.merge): output scaling multiplies W's rows and the bias, input scaling W's columns

static hn_status ia3_merge(const hn_method *base, int layer, hn_proj proj, float *dense) {
    const ia3_mod *md = find((const ia3 *)base, layer, proj);
    if (!md) return HN_OK;
    const int64_t in = md->lin->w->ne[0], out = md->lin->w->ne[1];
    const float *s = md->v.data;
#pragma omp parallel for num_threads(hn_threads_get())
    for (int64_t o = 0; o < out; o++)
        for (int64_t i = 0; i < in; i++) dense[o * in + i] *= md->ff ? s[i] : s[o];
    return HN_OK;
}

static hn_status ia3_merge_bias(const hn_method *base, int layer, hn_proj proj, float *bias) {
    const ia3_mod *md = find((const ia3 *)base, layer, proj);
    if (!md || md->ff) return HN_OK; // the input's scale is already in W's columns
    for (int64_t o = 0; o < md->v.n; o++) bias[o] *= md->v.data[o];
    return HN_OK;
}

// ---- saving

static hn_status write_config(const ia3 *me, const char *dir) {
    hn_model *m = me->base.m;
    int L = m->hp.n_layer;
    site *sites = hn_calloc((size_t)L * HN_PROJ_COUNT + 1, sizeof *sites, "IA3 modules");
    unsigned *sel = hn_calloc((size_t)L * 2 + 1, sizeof *sel, "IA3 modules"), *ff = sel ? sel + L : NULL;
    if (!sites || !sel) {
        free(sites), free(sel);
        return HN_ERR_NOMEM;
    }
    int n_sites = list_sites(m, sites);
    for (int i = 0; i < me->n_mods; i++) {
        const ia3_mod *md = &me->mods[i];
        sel[md->layer] |= 1u << md->proj;
        if (md->ff) ff[md->layer] |= 1u << md->proj;
    }
    // Feed-forward names first: each must also be a target name (IA3Config checks the sets), and a name chosen to
    // reach only feed-forward sites without PEFT's dot reaches only those with it.
    json_t *tm = json_array(), *fm = json_array();
    for (int p = 0; p < HN_PROJ_COUNT; p++) name_sites(fm, sites, n_sites, ff, (hn_proj)p, false);
    for (size_t i = 0; i < json_array_size(fm); i++) add_name(tm, json_string_value(json_array_get(fm, i)));
    unsigned out_only = 0; // projections with a site scaled at its output
    for (int l = 0; l < L; l++) out_only |= sel[l] & ~ff[l];
    for (int p = 0; p < HN_PROJ_COUNT; p++)
        if (out_only & (1u << p)) name_sites(tm, sites, n_sites, sel, (hn_proj)p, true);
    free(sites), free(sel);
    json_t *c = hn_method_peft_config(m, "IA3");
    json_object_set_new(c, "target_modules", tm);
    json_object_set_new(c, "feedforward_modules", fm);
    json_object_set_new(c, "exclude_modules", json_null());
    json_object_set_new(c, "modules_to_save", json_null());
    json_object_set_new(c, "fan_in_fan_out", json_boolean(m->hp.arch == HN_ARCH_GPT2)); // PEFT sets it for Conv1D
    json_object_set_new(c, "init_ia3_weights", json_true());
    json_object_set_new(c, "auto_mapping", json_null());
    return hn_method_write_config(c, dir);
}

static hn_status ia3_save(const hn_method *base, const char *dir) {
    const ia3 *me = (const ia3 *)base;
    hn_status s = hn_mkdir_p(dir);
    if (s) return s;
    hn_safetensors_writer *w = hn_safetensors_writer_create();
    if (!w) return HN_ERR_NOMEM;
    float **hf = hn_calloc((size_t)me->n_mods, sizeof *hf, "IA3 vectors"); // HF-ordered copies of permuted vectors
    if (!hf) s = HN_ERR_NOMEM;
    for (int i = 0; i < me->n_mods && !s; i++) {
        const ia3_mod *md = &me->mods[i];
        const float *d = md->v.data;
        if (md->heads) {
            if (!(hf[i] = hn_alloc((size_t)md->v.n * sizeof(float), "IA3 vector"))) {
                s = HN_ERR_NOMEM;
                break;
            }
            hn_hf_permute_rows(hf[i], d, md->v.n, 1, md->heads, false);
            d = hf[i];
        }
        s = hn_safetensors_writer_add(w, md->v.name, HN_F32, 2, md->v.ne, d);
    }
    if (!s) s = hn_safetensors_writer_set_meta(w, "format", "pt");
    if (!s) s = hn_method_write_base(w, base->m);
    char path[4096];
    snprintf(path, sizeof path, "%s/adapter_model.safetensors", dir);
    if (!s) s = hn_safetensors_writer_write(w, path);
    hn_safetensors_writer_destroy(w);
    for (int i = 0; hf && i < me->n_mods; i++) free(hf[i]);
    free(hf);
    return s ? s : write_config(me, dir);
}

// ---- loading

// IA3Config's keys as PEFT 0.21 writes them (config.py and PeftConfigMixin).
static const char *const config_keys[] = {
    "auto_mapping", "base_model_name_or_path", "exclude_modules", "fan_in_fan_out", "feedforward_modules",
    "inference_mode", "init_ia3_weights", "modules_to_save", "peft_type", "peft_version", "revision",
    "target_modules", "task_type"};

static bool string_list(const json_t *v) {
    if (!json_is_array(v)) return false;
    for (size_t i = 0; i < json_array_size(v); i++)
        if (!json_is_string(json_array_get(v, i))) return false;
    return true;
}

// Checks adapter_config.json and marks the sites it selects (sel) and those scaled at their input (ff).
static hn_status read_config(hn_model *m, const json_t *c, const char *path, unsigned *sel, unsigned *ff) {
    const char *key;
    const json_t *v;
    json_object_foreach((json_t *)c, key, v) {
        bool known = false;
        for (size_t i = 0; i < sizeof config_keys / sizeof *config_keys; i++) known |= !strcmp(key, config_keys[i]);
        if (!known)
            return hn_fail(HN_ERR_UNSUPPORTED, "%s: '%.60s': not a key of PEFT's IA3Config that hone reads", path, key);
    }
    const json_t *tt = json_object_get(c, "task_type"), *tm = json_object_get(c, "target_modules"),
                 *fm = json_object_get(c, "feedforward_modules"), *ex = json_object_get(c, "exclude_modules"),
                 *mts = json_object_get(c, "modules_to_save");
    if (tt && !json_is_null(tt) &&
        (!json_is_string(tt) || (strcmp(json_string_value(tt), "CAUSAL_LM") &&
                                 strcmp(json_string_value(tt), "FEATURE_EXTRACTION"))))
        return hn_fail(HN_ERR_UNSUPPORTED, "%s: 'task_type': expected \"CAUSAL_LM\", \"FEATURE_EXTRACTION\" or null "
                       "(hone's IA3 has no task heads)", path);
    static const char *const bools[] = {"fan_in_fan_out", "inference_mode", "init_ia3_weights"};
    for (int i = 0; i < 3; i++) {
        const json_t *b = json_object_get(c, bools[i]);
        if (b && !json_is_boolean(b)) return hn_fail(HN_ERR_FORMAT, "%s: '%s': expected true or false", path, bools[i]);
    }
    if (mts && !json_is_null(mts) && !(json_is_array(mts) && !json_array_size(mts)))
        return hn_fail(HN_ERR_UNSUPPORTED, "%s: 'modules_to_save': expected null (hone's IA3 saves no other modules)",
                       path);
    bool all_linear = json_is_string(tm) && !strcmp(json_string_value(tm), "all-linear");
    if (!all_linear && !string_list(tm))
        return hn_fail(json_is_string(tm) ? HN_ERR_UNSUPPORTED : HN_ERR_FORMAT, "%s: 'target_modules': expected a "
                       "list of module names or \"all-linear\"%s", path,
                       json_is_string(tm) ? " (regular expressions are not supported)" : "");
    if (fm && !json_is_null(fm) && !string_list(fm))
        return hn_fail(json_is_string(fm) ? HN_ERR_UNSUPPORTED : HN_ERR_FORMAT, "%s: 'feedforward_modules': expected "
                       "a list of module names or null%s", path,
                       json_is_string(fm) ? " (regular expressions are not supported)" : "");
    if (ex && !json_is_null(ex) && !string_list(ex))
        return hn_fail(HN_ERR_UNSUPPORTED, "%s: 'exclude_modules': expected a list of module names or null", path);
    for (size_t i = 0; json_is_array(fm) && !all_linear && i < json_array_size(fm); i++) {
        const json_t *name = json_array_get(fm, i);
        bool found = false;
        for (size_t k = 0; k < json_array_size(tm); k++) found |= json_equal(name, json_array_get(tm, k));
        if (!found)
            return hn_fail(HN_ERR_FORMAT, "%s: 'feedforward_modules': '%.60s' is not in target_modules (IA3Config "
                           "requires a subset)", path, json_string_value(name));
    }
    unsigned dt = 0, dff = 0; // PEFT fills a missing feedforward_modules from its table for the architecture
    if ((!fm || json_is_null(fm)) && default_targets(m, &dt, &dff))
        return hn_fail(HN_ERR_FORMAT, "%s: 'feedforward_modules': expected a list (PEFT has no default for %s)", path,
                       m->path);
    int L = m->hp.n_layer;
    site *sites = hn_calloc((size_t)L * HN_PROJ_COUNT + 1, sizeof *sites, "IA3 modules");
    if (!sites) return HN_ERR_NOMEM;
    int n = list_sites(m, sites);
    hn_status s = HN_OK;
    for (int i = 0; i < n && !s; i++) {
        const site *st = &sites[i];
        bool target = (all_linear || list_matches(tm, st->key, true)) && !(ex && list_matches(ex, st->key, true));
        if (!target) continue;
        if (st->layer < 0) {
            s = hn_fail(HN_ERR_UNSUPPORTED, "%s: 'target_modules' selects %s, BERT's pooler, which hone keeps frozen",
                        path, st->key);
            break;
        }
        sel[st->layer] |= 1u << st->proj;
        if (json_is_array(fm) ? list_matches(fm, st->key, false) : (dff >> st->proj) & 1)
            ff[st->layer] |= 1u << st->proj;
    }
    free(sites);
    bool any = false;
    for (int l = 0; l < L; l++) any |= sel[l] != 0;
    if (!s && !any)
        s = hn_fail(HN_ERR_FORMAT, "%s: 'target_modules': selects no linear layer of %s", path, m->path);
    return s;
}

// The module a tensor name belongs to: base_model.model.<key>.ia3_l, <key> PEFT's (bare encoder) or the task
// model's (bert., distilbert.).
static ia3_mod *tensor_module(ia3 *me, const char *name) {
    static const char pre[] = "base_model.model.", suf[] = ".ia3_l";
    size_t n = strlen(name), lp = sizeof pre - 1, ls = sizeof suf - 1;
    if (n <= lp + ls || strncmp(name, pre, lp) || strcmp(name + n - ls, suf)) return NULL;
    for (int i = 0; i < me->n_mods; i++) {
        char key[160], path[160];
        peft_key(key, sizeof key, me->base.m, me->mods[i].layer, me->mods[i].proj);
        hn_method_module_path(path, sizeof path, me->base.m, me->mods[i].layer, me->mods[i].proj);
        for (int k = 0; k < 2; k++) {
            const char *want = k ? path : key;
            if (strlen(want) == n - lp - ls && !strncmp(name + lp, want, n - lp - ls)) return &me->mods[i];
        }
    }
    return NULL;
}

static hn_status read_tensors(ia3 *me, const hn_safetensors *st) {
    const char *path = st->path;
    bool *seen = hn_calloc((size_t)me->n_mods, sizeof *seen, "IA3 modules");
    if (!seen) return HN_ERR_NOMEM;
    hn_status s = HN_OK;
    for (size_t i = 0; i < st->n_tensors && !s; i++) {
        const char *name = st->names[i];
        const hn_tensor *t = &st->tensors[i];
        ia3_mod *md = tensor_module(me, name);
        if (!md) {
            s = hn_fail(HN_ERR_FORMAT, "%s: tensor '%.200s': expected base_model.model.<module>.ia3_l for a module "
                        "that adapter_config.json's target_modules selects", path, name);
            break;
        }
        int64_t len = md->v.n;
        if (seen[md - me->mods]) {
            s = hn_fail(HN_ERR_FORMAT, "%s: tensor '%.200s': a second vector for the same module", path, name);
            break;
        }
        seen[md - me->mods] = true;
        if (t->ndim != 2 || t->ne[0] != md->v.ne[0] || t->ne[1] != md->v.ne[1]) {
            s = hn_fail(HN_ERR_FORMAT, "%s: tensor '%.200s' has shape [%lld, %lld], expected [%lld, %lld] (%s)", path,
                        name, (long long)(t->ndim == 2 ? t->ne[1] : t->ne[t->ndim - 1]),
                        (long long)(t->ndim == 2 ? t->ne[0] : -1), (long long)md->v.ne[1], (long long)md->v.ne[0],
                        md->ff ? "a feed-forward module: scales its input" : "scales its output");
            break;
        }
        float *dst = md->v.data, *tmp = NULL;
        if (md->heads && !(dst = tmp = hn_alloc((size_t)len * sizeof(float), "IA3 vector"))) {
            s = HN_ERR_NOMEM;
            break;
        }
        hn_type_traits_of(t->type)->to_f32(t->data, dst, len); // the reader exposes F32, F16 and BF16 only
        if (tmp) hn_hf_permute_rows(md->v.data, tmp, len, 1, md->heads, true);
        free(tmp);
        for (int64_t k = 0; k < len && !s; k++)
            if (!isfinite(md->v.data[k]))
                s = hn_fail(HN_ERR_FORMAT, "%s: tensor '%.200s': value %lld is not finite", path, name, (long long)k);
    }
    for (int i = 0; i < me->n_mods && !s; i++)
        if (!seen[i])
            s = hn_fail(HN_ERR_FORMAT, "%s: no tensor '%s' (adapter_config.json's target_modules selects the module)",
                        path, me->mods[i].v.name);
    free(seen);
    return s;
}

static hn_status ia3_load(hn_method **out, hn_model *m, const char *dir) {
    *out = NULL;
    json_t *cfg;
    hn_status s = hn_method_read_config(dir, "IA3", &cfg);
    if (s) return s;
    char path[4096];
    snprintf(path, sizeof path, "%s/adapter_config.json", dir);
    int L = m->hp.n_layer;
    unsigned *sel = hn_calloc((size_t)L * 2 + 1, sizeof *sel, "IA3 modules"), *ff = sel ? sel + L : NULL;
    s = sel ? read_config(m, cfg, path, sel, ff) : HN_ERR_NOMEM;
    json_decref(cfg);
    ia3 *me = NULL;
    if (!s) s = create(&me, m, sel, ff);
    free(sel);
    if (s) return s;
    snprintf(path, sizeof path, "%s/adapter_model.safetensors", dir);
    hn_safetensors st;
    if (!(s = hn_safetensors_open(&st, path))) {
        if (!(s = hn_method_check_base(&st, m))) s = read_tensors(me, &st);
        hn_safetensors_close(&st);
    }
    if (s) ia3_destroy(&me->base);
    else *out = &me->base;
    return s;
}

const hn_method_ops hn_method_ia3 = {
    .name = "ia3",
    .peft_type = "IA3",
    .attach_new = ia3_attach_new,
    .load = ia3_load,
    .save = ia3_save,
    .merge = ia3_merge,
    .merge_bias = ia3_merge_bias,
    .params = ia3_params,
    .set_enabled = ia3_set_enabled,
    .destroy = ia3_destroy,
};
