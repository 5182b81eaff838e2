// adapt/lora.c — LoRA / rsLoRA on linear layers (see lora.h). The adapter term is built from the op set
// (dropout, two trainable fp32 matmuls, a scaled add), so its backward comes from the ops' own.
#include "adapt/lora.h"
#include "adapt/method.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    hn_linear_ext ext;
    hn_lora *owner;
    hn_linear *lin;
    int layer;
    hn_proj proj;
    int64_t in, out;
    hn_param A, B; // A (r, in), B (out, r)
} lora_mod;

struct hn_lora {
    hn_model *m;
    int r;
    float alpha, scale, dropout;
    bool use_rslora, enabled;
    unsigned targets;
    lora_mod *mods; // (n_mods)
    int n_mods;
    hn_param_list params;
};

hn_lora_config hn_lora_default_config(void) {
    return (hn_lora_config){.r = 8, .alpha = 16, .targets = HN_LORA_ALL_LINEAR};
}

#define P(x) (1u << HN_PROJ_##x)

// Target names beyond hn_proj_parse's, as PEFT matches them: a name selects every module whose path ends with
// "." name, so GPT-2's c_proj is both attn.c_proj and mlp.c_proj, BERT's "dense" is attention.output.dense,
// intermediate.dense and output.dense (and the pooler's, which hone does not adapt), and "output.dense" both
// attention.output.dense and output.dense.
static const struct {
    const char *name;
    unsigned mask;
} suffix_targets[] = {
    {"c_proj", P(O) | P(DOWN)}, {"c_fc", P(UP)},                                                 // GPT-2
    {"query", P(Q)}, {"key", P(K)}, {"value", P(V)}, {"dense", P(O) | P(UP) | P(DOWN)},         // BERT
    {"attention.output.dense", P(O)}, {"intermediate.dense", P(UP)}, {"output.dense", P(O) | P(DOWN)},
    {"q_lin", P(Q)}, {"k_lin", P(K)}, {"v_lin", P(V)}, {"out_lin", P(O)}, {"lin1", P(UP)}, {"lin2", P(DOWN)}, // DistilBERT
    {"ffn.lin1", P(UP)}, {"ffn.lin2", P(DOWN)},
};
#undef P

// A module's path within a block ("self_attn.q_proj", "attention.self.query", ...), one projection each: what
// follows "layers.N." / "layer.N." / "h.N." in a full module path (PEFT writes "all-linear" out as the paths).
static const struct {
    const char *rest;
    hn_proj proj;
} block_paths[] = {
    {"attn.c_attn", HN_PROJ_QKV}, {"attn.c_proj", HN_PROJ_O}, {"mlp.c_fc", HN_PROJ_UP}, {"mlp.c_proj", HN_PROJ_DOWN},
    {"attention.self.query", HN_PROJ_Q}, {"attention.self.key", HN_PROJ_K}, {"attention.self.value", HN_PROJ_V},
    {"attention.output.dense", HN_PROJ_O}, {"intermediate.dense", HN_PROJ_UP}, {"output.dense", HN_PROJ_DOWN},
    {"attention.q_lin", HN_PROJ_Q}, {"attention.k_lin", HN_PROJ_K}, {"attention.v_lin", HN_PROJ_V},
    {"attention.out_lin", HN_PROJ_O}, {"ffn.lin1", HN_PROJ_UP}, {"ffn.lin2", HN_PROJ_DOWN},
};

// The projections one target name selects; 0 if none hone knows.
static unsigned target_mask(const char *name) {
    hn_proj p;
    if (!strcmp(name, "all-linear")) return HN_LORA_ALL_LINEAR;
    for (size_t i = 0; i < sizeof suffix_targets / sizeof suffix_targets[0]; i++)
        if (!strcmp(name, suffix_targets[i].name)) return suffix_targets[i].mask;
    if (hn_proj_parse(name, &p)) return 1u << p;
    // a full path: model.layers.N.self_attn.q_proj, bert.encoder.layer.N.attention.self.query, transformer.h.N...
    static const char *const blocks[] = {"layers.", "layer.", "h."};
    for (size_t b = 0; b < sizeof blocks / sizeof blocks[0]; b++) {
        const char *at = strstr(name, blocks[b]);
        if (!at || (at != name && at[-1] != '.')) continue;
        const char *rest = at + strlen(blocks[b]);
        if (*rest < '0' || *rest > '9') continue;
        while (*rest >= '0' && *rest <= '9') rest++;
        if (*rest++ != '.') continue;
        for (size_t i = 0; i < sizeof block_paths / sizeof block_paths[0]; i++)
            if (!strcmp(rest, block_paths[i].rest)) return 1u << block_paths[i].proj;
        const char *last = strrchr(rest, '.');
        if (hn_proj_parse(last ? last + 1 : rest, &p) && p != HN_PROJ_QKV) return 1u << p;
    }
    return 0;
}

hn_status hn_lora_parse_targets(const char *const *names, int n, unsigned *mask) {
    *mask = 0;
    for (int i = 0; i < n; i++) {
        unsigned m = target_mask(names[i]);
        if (!m && strstr(names[i], "pooler"))
            return hn_fail(HN_ERR_UNSUPPORTED, "LoRA target '%s': hone does not adapt BERT's pooler (it stays frozen, "
                           "part of the base); target the blocks' layers (query, key, value, attention.output.dense, "
                           "intermediate.dense, output.dense)", names[i]);
        if (!m)
            return hn_fail(HN_ERR_ARG, "LoRA target '%s' is not a linear layer hone knows (q_proj, k_proj, v_proj, "
                           "o_proj, gate_proj, up_proj, down_proj; GPT-2's c_attn, c_proj, c_fc; BERT's query, key, "
                           "value, dense, attention.output.dense, intermediate.dense, output.dense; DistilBERT's "
                           "q_lin, k_lin, v_lin, out_lin, lin1, lin2; all-linear)", names[i]);
        *mask |= m;
    }
    if (!*mask) return hn_fail(HN_ERR_ARG, "LoRA: no target modules");
    return HN_OK;
}

static hn_var *lora_apply(hn_ctx *c, const hn_linear *l, void *state, hn_var *x, hn_var *y) {
    lora_mod *md = state;
    hn_lora *lo = md->owner;
    if (!lo->enabled) return y;
    hn_var *h = hn_op_matmul_f32(c, hn_op_dropout(c, x, lo->dropout), md->A.data, md->A.grad, lo->r); // (N, r)
    return hn_op_matmul_f32_acc(c, y, h, md->B.data, md->B.grad, lo->scale); // y += scale · h B^T
}

static hn_status init_param(hn_param *p, const char *name, int64_t rows, int64_t cols) {
    snprintf(p->name, sizeof p->name, "%s", name);
    p->n = rows * cols;
    p->ndim = 2;
    p->ne[0] = cols, p->ne[1] = rows;
    p->data = hn_calloc((size_t)p->n, sizeof(float), "LoRA weights");
    p->grad = hn_calloc((size_t)p->n, sizeof(float), "LoRA gradients");
    return p->data && p->grad ? HN_OK : HN_ERR_NOMEM;
}

// Creates the module list for the (layer, proj) pairs in keys; A and B zero.
static hn_status lora_create(hn_lora **out, hn_model *m, int r, float alpha, bool rs, float dropout,
                             const int (*keys)[2], int n) {
    *out = NULL;
    if (r < 1 || r > 65536 || !isfinite(alpha) || !(dropout >= 0 && dropout < 1))
        return hn_fail(HN_ERR_ARG, "LoRA: rank %d, alpha %g, dropout %g out of range (rank >= 1, dropout in [0, 1))",
                       r, (double)alpha, (double)dropout);
    hn_lora *l = hn_calloc(1, sizeof *l, "LoRA");
    if (!l) return HN_ERR_NOMEM;
    l->m = m, l->r = r, l->alpha = alpha, l->use_rslora = rs, l->dropout = dropout, l->enabled = true;
    l->scale = rs ? alpha / sqrtf((float)r) : alpha / (float)r;
    l->mods = hn_calloc(n ? n : 1, sizeof *l->mods, "LoRA modules");
    if (!l->mods) {
        free(l);
        return HN_ERR_NOMEM;
    }
    hn_status s = HN_OK;
    for (int i = 0; i < n && !s; i++) {
        int layer = keys[i][0];
        hn_proj p = (hn_proj)keys[i][1];
        lora_mod *md = &l->mods[l->n_mods++];
        md->owner = l, md->layer = layer, md->proj = p;
        md->lin = hn_method_linear(m, layer, p);
        md->in = md->lin->w->ne[0], md->out = md->lin->w->ne[1];
        char path[80], name[128];
        hn_method_module_path(path, sizeof path, m, layer, p);
        snprintf(name, sizeof name, "base_model.model.%s.lora_A.weight", path);
        if ((s = init_param(&md->A, name, r, md->in))) break;
        snprintf(name, sizeof name, "base_model.model.%s.lora_B.weight", path);
        if ((s = init_param(&md->B, name, md->out, r))) break;
        l->targets |= 1u << p;
        md->A.no_decay = md->B.no_decay = false;
        if ((s = hn_param_list_add(&l->params, &md->A)) || (s = hn_param_list_add(&l->params, &md->B))) break;
    }
    if (s) {
        hn_lora_destroy(l);
        return s;
    }
    for (int i = 0; i < l->n_mods; i++) {
        lora_mod *md = &l->mods[i];
        md->ext = (hn_linear_ext){.method = "lora", .apply = lora_apply, .state = md};
        hn_linear_attach(md->lin, &md->ext);
    }
    *out = l;
    return HN_OK;
}

hn_status hn_lora_attach_new(hn_lora **out, hn_model *m, const hn_lora_config *cfg) {
    *out = NULL;
    int n_layer = m->hp.n_layer, n = 0;
    int(*keys)[2] = hn_calloc((size_t)n_layer * HN_PROJ_COUNT, sizeof *keys, "LoRA modules");
    if (!keys) return HN_ERR_NOMEM;
    for (int l = 0; l < n_layer; l++)
        for (int p = 0; p < HN_PROJ_COUNT; p++) // the targeted projections that this architecture has
            if (cfg->targets & (1u << p) && hn_method_linear(m, l, (hn_proj)p))
                keys[n][0] = l, keys[n][1] = p, n++;
    hn_status s = n ? lora_create(out, m, cfg->r, cfg->alpha, cfg->use_rslora, cfg->dropout, (const int(*)[2])keys, n)
                    : hn_fail(HN_ERR_ARG, "LoRA: none of the target modules is a linear layer of %s", m->path);
    free(keys);
    if (s) return s;
    hn_lora *l = *out;
    hn_rng rng;
    hn_rng_seed(&rng, cfg->seed);
    for (int i = 0; i < l->n_mods; i++) {
        lora_mod *md = &l->mods[i];
        float bound = 1.0f / sqrtf((float)md->in); // kaiming_uniform_(a=sqrt(5)): gain sqrt(1/3) * sqrt(3 / in)
        for (int64_t j = 0; j < md->A.n; j++) md->A.data[j] = (2.0f * hn_rng_f32(&rng) - 1.0f) * bound;
    }
    return HN_OK;
}

hn_status hn_lora_attach(hn_lora **out, hn_model *m, const hn_adapter *a) {
    *out = NULL;
    int(*keys)[2] = hn_calloc(a->n_modules ? a->n_modules : 1, sizeof *keys, "LoRA modules");
    if (!keys) return HN_ERR_NOMEM;
    for (int i = 0; i < a->n_modules; i++) {
        const hn_lora_module *am = &a->modules[i];
        if (am->layer < 0 || am->layer >= m->hp.n_layer || (unsigned)am->proj >= HN_PROJ_COUNT) {
            free(keys);
            return hn_fail(HN_ERR_ARG, "LoRA adapter: module layer %d %s does not exist in %s (%d layers)",
                           am->layer, hn_proj_hf_name(am->proj), m->path, m->hp.n_layer);
        }
        const hn_linear *lin = hn_method_linear(m, am->layer, am->proj);
        const hn_tensor *w = lin ? lin->w : NULL;
        if (!w) {
            free(keys);
            return hn_fail(HN_ERR_ARG, "LoRA adapter: layer %d %s does not exist in %s", am->layer,
                           hn_proj_hf_name(am->proj), m->path);
        }
        if (w->ne[0] != am->in || w->ne[1] != am->out) {
            free(keys);
            return hn_fail(HN_ERR_ARG, "LoRA adapter: layer %d %s is %lld -> %lld, but %s has %lld -> %lld",
                           am->layer, hn_proj_hf_name(am->proj), (long long)am->in, (long long)am->out, w->name,
                           (long long)w->ne[0], (long long)w->ne[1]);
        }
        keys[i][0] = am->layer, keys[i][1] = am->proj;
    }
    hn_status s = lora_create(out, m, a->r, a->alpha, a->use_rslora, a->dropout, (const int(*)[2])keys,
                              a->n_modules);
    free(keys);
    if (s) return s;
    hn_lora *l = *out;
    for (int i = 0; i < a->n_modules; i++) {
        lora_mod *md = &l->mods[i];
        memcpy(md->A.data, a->modules[i].a, (size_t)md->A.n * sizeof(float));
        memcpy(md->B.data, a->modules[i].b, (size_t)md->B.n * sizeof(float));
    }
    return HN_OK;
}

void hn_lora_destroy(hn_lora *l) {
    if (!l) return;
    for (int i = 0; i < l->n_mods; i++) {
        lora_mod *md = &l->mods[i];
        if (md->ext.apply) hn_linear_detach(md->lin, &md->ext);
        free(md->A.data), free(md->A.grad), free(md->B.data), free(md->B.grad);
    }
    hn_param_list_deinit(&l->params);
    free(l->mods);
    free(l);
}

hn_param_list *hn_lora_params(hn_lora *l) { return &l->params; }
float hn_lora_scale(const hn_lora *l) { return l->scale; }
void hn_lora_set_enabled(hn_lora *l, bool enabled) { l->enabled = enabled; }

static const lora_mod *find(const hn_lora *l, int layer, hn_proj proj) {
    for (int i = 0; i < l->n_mods; i++)
        if (l->mods[i].layer == layer && l->mods[i].proj == proj) return &l->mods[i];
    return NULL;
}

bool hn_lora_module_params(hn_lora *l, int layer, hn_proj proj, hn_param **A, hn_param **B) {
    lora_mod *md = (lora_mod *)find(l, layer, proj);
    if (!md) return false;
    *A = &md->A, *B = &md->B;
    return true;
}

hn_status hn_lora_export(const hn_lora *l, hn_adapter **out) {
    *out = NULL;
    const char *names[HN_PROJ_COUNT];
    int n = 0;
    for (int p = 0; p < HN_PROJ_COUNT; p++) {
        const char *t = l->targets & (1u << p) ? hn_method_target_name(l->m, (hn_proj)p) : NULL;
        bool seen = false; // GPT-2's c_proj names two projections
        for (int k = 0; t && k < n; k++) seen |= !strcmp(names[k], t);
        if (t && !seen) names[n++] = t;
    }
    hn_adapter *a;
    hn_status s = hn_adapter_create(&a, l->r, l->alpha, l->use_rslora, l->dropout, names, n);
    if (s) return s;
    for (int i = 0; i < l->n_mods && !s; i++) {
        const lora_mod *md = &l->mods[i];
        hn_lora_module *am;
        if (!(s = hn_adapter_add(a, md->layer, md->proj, md->in, md->out, &am))) {
            memcpy(am->a, md->A.data, (size_t)md->A.n * sizeof(float));
            memcpy(am->b, md->B.data, (size_t)md->B.n * sizeof(float));
        }
    }
    if (!s) s = hn_adapter_set_base(a, &l->m->gguf);
    if (s) {
        hn_adapter_destroy(a);
        return s;
    }
    *out = a;
    return HN_OK;
}

hn_status hn_lora_merge(const hn_lora *l, int layer, hn_proj proj, float *dense) {
    const lora_mod *md = find(l, layer, proj);
    if (!md) return hn_fail(HN_ERR_ARG, "LoRA merge: layer %d %s is not adapted", layer, hn_proj_hf_name(proj));
    const int r = l->r;
#pragma omp parallel for num_threads(hn_threads_get())
    for (int64_t o = 0; o < md->out; o++) {
        float *w = dense + o * md->in;
        for (int k = 0; k < r; k++) {
            float b = l->scale * md->B.data[o * r + k];
            const float *a = md->A.data + (int64_t)k * md->in;
            for (int64_t i = 0; i < md->in; i++) w[i] += b * a[i];
        }
    }
    return HN_OK;
}

// ---- LoRA as an hn_method (adapt/method.h): a PEFT directory through io/peft.c

extern const hn_method_ops hn_method_lora;

typedef struct {
    hn_method base;
    hn_lora *lo;
    float base_scale; // alpha / r as trained; set_scale multiplies it
} lora_method;

static hn_status lm_wrap(hn_method **out, hn_model *m, hn_lora *lo) {
    lora_method *me = hn_calloc(1, sizeof *me, "LoRA");
    if (!me) {
        hn_lora_destroy(lo);
        return HN_ERR_NOMEM;
    }
    me->base = (hn_method){&hn_method_lora, m};
    me->lo = lo, me->base_scale = lo->scale;
    *out = &me->base;
    return HN_OK;
}

static hn_status lm_attach_new(hn_method **out, hn_model *m, const hn_method_config *cfg) {
    hn_lora *lo;
    hn_status s = hn_lora_attach_new(&lo, m, &cfg->lora);
    return s ? s : lm_wrap(out, m, lo);
}

hn_status hn_method_lora_from(hn_method **out, hn_model *m, const hn_adapter *a) {
    *out = NULL;
    hn_lora *lo;
    hn_status s = hn_lora_attach(&lo, m, a);
    return s ? s : lm_wrap(out, m, lo);
}

static hn_status lm_load(hn_method **out, hn_model *m, const char *dir) {
    *out = NULL;
    hn_adapter *a;
    hn_status s = hn_peft_read(&a, dir, m->hp.n_head, m->hp.n_head_kv);
    if (!s && !(s = hn_adapter_check_base(a, &m->gguf, false))) s = hn_method_lora_from(out, m, a);
    hn_adapter_destroy(a);
    return s;
}

static hn_status lm_save(const hn_method *me, const char *dir) {
    const lora_method *lm = (const lora_method *)me;
    hn_adapter *a;
    hn_status s = hn_lora_export(lm->lo, &a);
    if (s) return s;
    s = hn_peft_write(a, dir, me->m->hp.n_head, me->m->hp.n_head_kv);
    hn_adapter_destroy(a);
    return s;
}

static hn_status lm_merge(const hn_method *me, int layer, hn_proj proj, float *dense) {
    const lora_method *lm = (const lora_method *)me;
    return find(lm->lo, layer, proj) ? hn_lora_merge(lm->lo, layer, proj, dense) : HN_OK;
}

static void lm_set_scale(hn_method *me, float scale) {
    lora_method *lm = (lora_method *)me;
    lm->lo->scale = lm->base_scale * scale;
}

static hn_param_list *lm_params(hn_method *me) { return &((lora_method *)me)->lo->params; }
static void lm_set_enabled(hn_method *me, bool on) { ((lora_method *)me)->lo->enabled = on; }

static void lm_destroy(hn_method *me) {
    hn_lora_destroy(((lora_method *)me)->lo);
    free(me);
}

hn_lora *hn_method_as_lora(hn_method *me) { return me && me->ops == &hn_method_lora ? ((lora_method *)me)->lo : NULL; }

const hn_method_ops hn_method_lora = {.name = "lora", .peft_type = "LORA", .attach_new = lm_attach_new,
                                      .load = lm_load, .save = lm_save, .merge = lm_merge,
                                      .set_scale = lm_set_scale, .params = lm_params,
                                      .set_enabled = lm_set_enabled, .destroy = lm_destroy};
