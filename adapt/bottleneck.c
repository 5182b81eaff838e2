// adapt/bottleneck.c — bottleneck adapters (Houlsby et al. 2019, "Parameter-Efficient Transfer Learning for NLP";
// Pfeiffer et al. 2020, "AdapterFusion") on the output of a block's sublayers, through the linear-layer attachment
// (DESIGN.md section 10). Every adapted sublayer output z (N, C) becomes
//     z' = z + up(f(down(z)))        down: C -> b with bias, f the non-linearity, up: b -> C with bias
// as AdapterHub's `adapters` library computes it (Adapter.forward in src/adapters/methods/modeling.py: adapter_down
// = Linear + activation, adapter_up = Linear, scaling 1.0, then the residual around the adapter).
//
// Where it sits. AdapterHub (source read at adapter-hub/adapters 88f18eb: methods/modeling.py pre_forward / forward /
// post_forward, configuration/adapter_config.py, models/bert and models/llama) calls its adapter layer with the
// sublayer's output h (BERT: BertSelfOutput.dense / BertOutput.dense after dropout; Llama: self_attn's output and
// the mlp's), the block's residual input r, and the block's LayerNorm (post-norm BERT) or None (pre-norm Llama,
// whose norms sit at the sublayers' inputs). hone attaches to the attention output projection `o` and the
// feed-forward output `down` of every block: their outputs, bias included and before the residual add, are h for
// every architecture hone has (Llama / Qwen2 o_proj and down_proj, GPT-2's attn.c_proj and mlp.c_proj, BERT's
// attention.output.dense and output.dense, DistilBERT's out_lin and lin2).
// - adapter-houlsby = DoubleSeqBnConfig (mh_adapter and output_adapter, original_ln_before False, original_ln_after
//   True, residual_before_ln True, no ln_before / ln_after): the adapter takes h and its residual is h, and the block
//   goes on as before: LN(r + h') on BERT, r + h' on Llama. hone's hook computes exactly this, for post-norm and
//   pre-norm alike. One difference: DoubleSeqBnConfig's non_linearity is "swish"; hone's default is relu (give
//   adapter_act "silu" for AdapterHub's).
// - adapter-pfeiffer = after the feed-forward only. AdapterHub's SeqBnConfig differs in the adapter's input: with
//   original_ln_before True it first adds the residual (and on BERT applies the block's LayerNorm), s = r + h
//   (Llama) or s = LN(r + h) (BERT), runs the adapter on s with h as the adapter's residual (residual_before_ln
//   True), then adds r again (and on BERT applies the same LayerNorm again): BERT's block output is
//   LN(r + h + up(f(down(LN(r + h))))), Llama's r + h + up(f(down(r + h))). The linear-layer hook sees h but not r,
//   so hone's adapter-pfeiffer is the adapter on h: AdapterHub's BnConfig(mh_adapter=False, output_adapter=True,
//   reduction_factor=16, non_linearity="relu") with its defaults (original_ln_before False), i.e. SeqBnConfig
//   without original_ln_before. The exact SeqBnConfig needs the block-output place of DESIGN.md section 10, which
//   model code does not have yet.
//   Checked in AdapterHub itself (tools/reference/bottleneck_ref.py --adapterhub, adapters 1.3.0): with the same
//   weights, DoubleSeqBnConfig and BnConfig(mh_adapter=False, output_adapter=True) give bitwise the outputs of the
//   hand-written adapters hone is tested against; SeqBnConfig moves the tiny Llama's logits by up to 5.3 and the
//   tiny BERT's hidden states by up to 0.58.
// - Layer norms inside the adapter: none. Both AdapterHub configs have ln_before = ln_after = False.
//
// Initialisation. AdapterHub's default init_weights "bert" (init_bert_weights) draws every adapter Linear's weight
// from N(0, 0.02^2) — the up-projection too, so its adapters do not start as the identity — with zero biases;
// "mam_adapter" zeroes the up-projection; "houlsby" draws both from a normal of std 1e-2 truncated at 2 std. hone
// draws the down-projection as "bert" does (N(0, 0.02^2), bias 0) and the up-projection from
// N(0, adapter_init_scale^2) with bias 0: the default adapter_init_scale 0 makes it zero (as mam_adapter), so a fresh
// adapter leaves the model's outputs exactly unchanged; adapter_init_scale 0.02 is AdapterHub's "bert" init. All
// down-projections are drawn before all up-projections, so the scale changes only the up-projections.
// Bottleneck width b: adapter_size, or C / adapter_reduction (AdapterHub's int(hidden_size // reduction_factor)),
// at least 1.
//
// Saved format (hone's own; PEFT has no bottleneck adapters), in a directory:
//   hone_adapter.json   {"format": "hone-adapter", "version": 1, "method": "adapter-houlsby" | "adapter-pfeiffer",
//                        "bottleneck": b, "non_linearity": "relu" | "gelu" | "silu" | "tanh",
//                        "placement": ["attention_output", "ffn_output"] (houlsby) | ["ffn_output"] (pfeiffer),
//                        "base_model_name_or_path": the base's general.name or null}
//                       Every key but base_model_name_or_path is required, no other key is allowed, placement must
//                       be the method's. A newer version is refused (written by a newer hone), as is any other.
//                       hn_method_load reads "method" to pick the method.
//   adapter_model.safetensors   per adapted module M (hn_method_module_path: model.layers.N.self_attn.o_proj and
//                       model.layers.N.mlp.down_proj for Llama, bert.encoder.layer.N.attention.output.dense and
//                       bert.encoder.layer.N.output.dense for BERT, ...), shapes in PyTorch order:
//                         base_model.model.M.adapter_down.weight (b, C)   .adapter_down.bias (b)
//                         base_model.model.M.adapter_up.weight   (C, b)   .adapter_up.bias   (C)
//                       F32 when written (F16 and BF16 are read too); metadata "format": "pt" and the base record
//                       (hone.base_name, hone.base_architecture, hone.base_hash: hn_method_write_base). Every
//                       tensor must be there with its shape, and no other.
// Not mergeable (merge NULL: the non-linearity between the projections is no change of an existing weight).
// Attached after whatever is already on o / down: a LoRA attached before the adapter is inside it (the adapter sees
// the layer's output with LoRA's term, as AdapterHub composes them), one attached after adds its term outside.
#include "adapt/bottleneck.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

// ---- the non-linearity: an op with its backward (gelu is the op set's own, erf form as transformers' "gelu")

typedef enum { ACT_RELU, ACT_GELU, ACT_SILU, ACT_TANH, ACT_COUNT } bn_act;
static const char *const act_names[ACT_COUNT] = {"relu", "gelu", "silu", "tanh"};

static bool parse_act(const char *s, bn_act *out) {
    if (!strcmp(s, "swish")) s = "silu"; // AdapterHub's name for it (transformers' ACT2FN has both)
    for (int i = 0; i < ACT_COUNT; i++)
        if (!strcmp(s, act_names[i])) return *out = (bn_act)i, true;
    return false;
}

typedef struct {
    hn_tape_rec rec;
    hn_var *x, *y;
    bn_act act;
} act_rec;

static float act_fwd(bn_act a, float x) {
    switch (a) {
    case ACT_RELU: return x > 0 ? x : 0.0f;
    case ACT_SILU: return x / (1.0f + expf(-x));
    default: return tanhf(x);
    }
}

// d f / d x from the input and the output.
static float act_dx(bn_act a, float x, float y) {
    switch (a) {
    case ACT_RELU: return x > 0 ? 1.0f : 0.0f; // 0 at 0, as PyTorch's threshold_backward
    case ACT_SILU: {
        float s = 1.0f / (1.0f + expf(-x));
        return s * (1.0f + x * (1.0f - s));
    }
    default: return 1.0f - y * y;
    }
}

static void act_backward(hn_ctx *c, hn_tape_rec *rec) {
    act_rec *r = (act_rec *)rec;
    if (!r->y->g || !r->x->rg) return;
    float *gx = hn_var_grad(c, r->x);
    if (!gx) return;
    for (int64_t i = 0; i < r->y->rows * r->y->cols; i++) gx[i] += r->y->g[i] * act_dx(r->act, r->x->d[i], r->y->d[i]);
}

static hn_var *op_act(hn_ctx *c, hn_var *x, bn_act a) {
    if (a == ACT_GELU) return hn_op_gelu(c, x, false);
    if (!x || c->err) return NULL;
    hn_var *y = hn_var_new(c, x->rows, x->cols);
    if (!y) return NULL;
    for (int64_t i = 0; i < x->rows * x->cols; i++) y->d[i] = act_fwd(a, x->d[i]);
    y->rg = x->rg;
    if (hn_grad_on(c, y->rg)) {
        act_rec *r = hn_tape_push(c, act_backward, sizeof *r);
        if (!r) return hn_op_fail(c, HN_ERR_NOMEM);
        r->x = x, r->y = y, r->act = a;
    }
    return y;
}

// ---- the adapter

// The linear layers each method adapts, and how hone_adapter.json's placement names them.
static unsigned method_sites(const hn_method_ops *ops) {
    return ops == &hn_method_adapter_houlsby ? (1u << HN_PROJ_O) | (1u << HN_PROJ_DOWN) : 1u << HN_PROJ_DOWN;
}
static const char *site_name(hn_proj p) { return p == HN_PROJ_O ? "attention_output" : "ffn_output"; }

typedef struct bn bn;
typedef struct {
    hn_linear_ext ext;
    bn *owner;
    hn_linear *lin;
    int layer;
    hn_proj proj;
    hn_param down_w, down_b, up_w, up_b; // (b, C), (b), (C, b), (C)
} bn_site;

struct bn {
    hn_method base; // first: what hn_method_* see
    int width, bottleneck;
    bn_act act;
    bn_site *sites; // (n_sites), by layer, then o before down
    int n_sites;
    hn_param_list params;
};

static hn_var *bn_apply(hn_ctx *c, const hn_linear *l, void *state, hn_var *x, hn_var *y) {
    bn_site *s = state;
    const bn *a = s->owner;
    hn_var *h = hn_op_matmul_f32(c, y, s->down_w.data, s->down_w.grad, a->bottleneck); // (N, b)
    h = op_act(c, hn_op_add_bias(c, h, s->down_b.data, s->down_b.grad), a->act);
    hn_var *u = hn_op_matmul_f32(c, h, s->up_w.data, s->up_w.grad, a->width); // (N, C)
    u = hn_op_add_bias(c, u, s->up_b.data, s->up_b.grad);
    // y + the adapter's term, summed into u: y itself stays as it is, the down-projection's backward reads it
    return hn_op_add_scaled(c, u, y, 1.0f);
}

// A weight (rows, cols) or, with rows 0, a bias (cols).
static hn_status init_param(hn_param *p, const char *path, const char *what, int64_t rows, int64_t cols) {
    snprintf(p->name, sizeof p->name, "base_model.model.%s.%s", path, what);
    p->ndim = rows ? 2 : 1;
    p->ne[0] = cols, p->ne[1] = rows ? rows : 1;
    p->n = p->ne[0] * p->ne[1];
    p->no_decay = !rows; // biases: no weight decay, as transformers' Trainer (which AdapterHub trains with)
    p->data = hn_calloc((size_t)p->n, sizeof(float), "bottleneck adapter weights");
    p->grad = hn_calloc((size_t)p->n, sizeof(float), "bottleneck adapter gradients");
    return p->data && p->grad ? HN_OK : HN_ERR_NOMEM;
}

static void bn_destroy(hn_method *me) {
    bn *a = (bn *)me;
    if (!a) return;
    for (int i = 0; i < a->n_sites; i++) {
        bn_site *s = &a->sites[i];
        if (s->ext.apply) hn_linear_detach(s->lin, &s->ext);
        hn_param *ps[4] = {&s->down_w, &s->down_b, &s->up_w, &s->up_b};
        for (int k = 0; k < 4; k++) free(ps[k]->data), free(ps[k]->grad);
    }
    hn_param_list_deinit(&a->params);
    free(a->sites);
    free(a);
}

// An adapter of bottleneck b on every site of the method, weights zero, attached.
static hn_status bn_create(bn **out, const hn_method_ops *ops, hn_model *m, int b, bn_act act) {
    *out = NULL;
    const unsigned sites = method_sites(ops);
    const int C = m->hp.n_embd;
    for (int l = 0; l < m->hp.n_layer; l++)
        for (int p = 0; p < HN_PROJ_COUNT; p++) {
            if (!(sites & (1u << p))) continue;
            const hn_linear *lin = hn_method_linear(m, l, (hn_proj)p);
            if (!lin)
                return hn_fail(HN_ERR_UNSUPPORTED, "%s: %s has no %s projection in block %d to attach to", ops->name,
                               m->path, p == HN_PROJ_O ? "attention output" : "feed-forward output", l);
            if (lin->w->ne[1] != C)
                return hn_fail(HN_ERR_UNSUPPORTED, "%s: %s's '%s' has %lld outputs, expected the model's width %d",
                               ops->name, m->path, lin->w->name, (long long)lin->w->ne[1], C);
        }
    bn *a = hn_calloc(1, sizeof *a, "bottleneck adapter");
    if (!a) return HN_ERR_NOMEM;
    a->base = (hn_method){.ops = ops, .m = m};
    a->width = C, a->bottleneck = b, a->act = act;
    a->sites = hn_calloc((size_t)m->hp.n_layer * 2, sizeof *a->sites, "bottleneck adapter sites");
    hn_status s = a->sites ? HN_OK : HN_ERR_NOMEM;
    for (int l = 0; l < m->hp.n_layer && !s; l++)
        for (int p = 0; p < HN_PROJ_COUNT && !s; p++) {
            if (!(sites & (1u << p))) continue;
            bn_site *st = &a->sites[a->n_sites++];
            st->owner = a, st->layer = l, st->proj = (hn_proj)p, st->lin = hn_method_linear(m, l, (hn_proj)p);
            char path[160];
            hn_method_module_path(path, sizeof path, m, l, (hn_proj)p);
            hn_param *ps[4] = {&st->down_w, &st->down_b, &st->up_w, &st->up_b};
            if ((s = init_param(&st->down_w, path, "adapter_down.weight", b, C)) ||
                (s = init_param(&st->down_b, path, "adapter_down.bias", 0, b)) ||
                (s = init_param(&st->up_w, path, "adapter_up.weight", C, b)) ||
                (s = init_param(&st->up_b, path, "adapter_up.bias", 0, C)))
                break;
            for (int k = 0; k < 4 && !s; k++) s = hn_param_list_add(&a->params, ps[k]);
        }
    if (s) {
        bn_destroy(&a->base);
        return s;
    }
    for (int i = 0; i < a->n_sites; i++) {
        bn_site *st = &a->sites[i];
        st->ext = (hn_linear_ext){.method = ops->name, .apply = bn_apply, .state = st};
        hn_linear_attach(st->lin, &st->ext);
    }
    *out = a;
    return HN_OK;
}

// A standard normal draw (Box-Muller; the cosine of the pair only, so the stream is a plain function of the seed).
static float std_normal(hn_rng *r) {
    float u = hn_rng_f32(r), v = hn_rng_f32(r);
    return sqrtf(-2.0f * logf(1.0f - u)) * cosf(6.28318530717958647692f * v);
}

static hn_status bn_attach_new(const hn_method_ops *ops, hn_method **out, hn_model *m, const hn_method_config *cfg) {
    *out = NULL;
    bn_act act;
    const char *an = cfg->adapter_act ? cfg->adapter_act : "relu";
    if (!parse_act(an, &act))
        return hn_fail(HN_ERR_ARG, "%s: non_linearity '%s': expected relu, gelu, silu (swish) or tanh", ops->name, an);
    if (cfg->adapter_size < 0 || cfg->adapter_size > 65536 || (!cfg->adapter_size && cfg->adapter_reduction < 1))
        return hn_fail(HN_ERR_ARG, "%s: bottleneck size %d / reduction factor %d: expected a size in 1..65536, or 0 "
                       "and a reduction factor >= 1", ops->name, cfg->adapter_size, cfg->adapter_reduction);
    if (!isfinite(cfg->adapter_init_scale) || cfg->adapter_init_scale < 0)
        return hn_fail(HN_ERR_ARG, "%s: init scale %g: expected a finite value >= 0", ops->name,
                       (double)cfg->adapter_init_scale);
    int b = cfg->adapter_size ? cfg->adapter_size : m->hp.n_embd / cfg->adapter_reduction;
    bn *a;
    hn_status s = bn_create(&a, ops, m, b < 1 ? 1 : b, act);
    if (s) return s;
    hn_rng rng;
    hn_rng_seed(&rng, cfg->seed);
    for (int i = 0; i < a->n_sites; i++)
        for (int64_t j = 0; j < a->sites[i].down_w.n; j++) a->sites[i].down_w.data[j] = 0.02f * std_normal(&rng);
    for (int i = 0; i < a->n_sites && cfg->adapter_init_scale > 0; i++)
        for (int64_t j = 0; j < a->sites[i].up_w.n; j++)
            a->sites[i].up_w.data[j] = cfg->adapter_init_scale * std_normal(&rng);
    *out = &a->base;
    return HN_OK;
}

// ---- saving and loading

static hn_status write_text(const char *path, const char *text) {
    hn_afile f;
    hn_status s = hn_afile_open(&f, path);
    if (s) return s;
    if (!(s = hn_afile_write(&f, text, strlen(text))) && !(s = hn_afile_write(&f, "\n", 1))) return hn_afile_commit(&f);
    hn_afile_abort(&f);
    return s;
}

static hn_status bn_save(const hn_method *me, const char *dir) {
    const bn *a = (const bn *)me;
    hn_status s = hn_mkdir_p(dir);
    if (s) return s;
    char path[4096];
    hn_safetensors_writer *w = hn_safetensors_writer_create();
    if (!w) return HN_ERR_NOMEM;
    for (int i = 0; i < a->params.n && !s; i++) {
        const hn_param *p = a->params.items[i];
        s = hn_safetensors_writer_add(w, p->name, HN_F32, p->ndim, p->ne, p->data);
    }
    if (!s) s = hn_safetensors_writer_set_meta(w, "format", "pt");
    if (!s) s = hn_method_write_base(w, me->m);
    snprintf(path, sizeof path, "%s/adapter_model.safetensors", dir);
    if (!s) s = hn_safetensors_writer_write(w, path);
    hn_safetensors_writer_destroy(w);
    if (s) return s;
    // the config last: a directory whose hone_adapter.json is new has its tensors
    json_t *cfg = json_object(), *pl = json_array();
    char name[256] = "";
    hn_gguf_str v;
    if (hn_gguf_find(&me->m->gguf, "general.name") && !hn_gguf_get_str(&me->m->gguf, "general.name", &v))
        snprintf(name, sizeof name, "%.*s", (int)(v.len > 255 ? 255 : v.len), v.str);
    for (int p = 0; p < HN_PROJ_COUNT; p++)
        if (method_sites(me->ops) & (1u << p)) json_array_append_new(pl, json_string(site_name((hn_proj)p)));
    json_object_set_new(cfg, "format", json_string("hone-adapter"));
    json_object_set_new(cfg, "version", json_integer(HN_BOTTLENECK_VERSION));
    json_object_set_new(cfg, "method", json_string(me->ops->name));
    json_object_set_new(cfg, "bottleneck", json_integer(a->bottleneck));
    json_object_set_new(cfg, "non_linearity", json_string(act_names[a->act]));
    json_object_set_new(cfg, "placement", pl);
    json_object_set_new(cfg, "base_model_name_or_path", *name ? json_string(name) : json_null());
    char *text = json_dumps(cfg, JSON_INDENT(2));
    json_decref(cfg);
    snprintf(path, sizeof path, "%s/hone_adapter.json", dir);
    if (!text) return hn_fail(HN_ERR_ARG, "%s: cannot encode (a base name that is not UTF-8?)", path);
    s = write_text(path, text);
    free(text);
    return s;
}

// hone_adapter.json checked against ops: the bottleneck width and non-linearity it gives.
static hn_status read_config(const hn_method_ops *ops, const char *dir, int *b, bn_act *act) {
    char path[4096];
    snprintf(path, sizeof path, "%s/hone_adapter.json", dir);
    json_error_t err;
    json_t *c = json_load_file(path, JSON_REJECT_DUPLICATES, &err);
    if (!c) return hn_fail(HN_ERR_FORMAT, "%s: line %d: %s", path, err.line, err.text);
    hn_status s = HN_OK;
    json_t *f = json_object_get(c, "format"), *ver = json_object_get(c, "version"), *mt = json_object_get(c, "method"),
           *bt = json_object_get(c, "bottleneck"), *nl = json_object_get(c, "non_linearity"),
           *pl = json_object_get(c, "placement"), *base = json_object_get(c, "base_model_name_or_path");
    if (!json_is_object(c)) s = hn_fail(HN_ERR_FORMAT, "%s: expected a JSON object", path);
    else if (!json_is_string(f) || strcmp(json_string_value(f), "hone-adapter"))
        s = hn_fail(HN_ERR_FORMAT, "%s: 'format': expected \"hone-adapter\"", path);
    else if (json_is_integer(ver) && json_integer_value(ver) > HN_BOTTLENECK_VERSION)
        s = hn_fail(HN_ERR_UNSUPPORTED, "%s: 'version' %lld: written by a newer hone; this one reads version %d", path,
                    (long long)json_integer_value(ver), HN_BOTTLENECK_VERSION);
    else if (!json_is_integer(ver) || json_integer_value(ver) != HN_BOTTLENECK_VERSION)
        s = hn_fail(HN_ERR_FORMAT, "%s: 'version': expected %d", path, HN_BOTTLENECK_VERSION);
    else if (!json_is_string(mt) || strcmp(json_string_value(mt), ops->name))
        s = hn_fail(HN_ERR_FORMAT, "%s: 'method': expected \"%s\"", path, ops->name);
    else if (!json_is_integer(bt) || json_integer_value(bt) < 1 || json_integer_value(bt) > 65536)
        s = hn_fail(HN_ERR_FORMAT, "%s: 'bottleneck': expected an integer in 1..65536", path);
    else if (!json_is_string(nl) || !parse_act(json_string_value(nl), act))
        s = hn_fail(HN_ERR_FORMAT, "%s: 'non_linearity': expected \"relu\", \"gelu\", \"silu\" or \"tanh\"", path);
    else if (base && !json_is_string(base) && !json_is_null(base))
        s = hn_fail(HN_ERR_FORMAT, "%s: 'base_model_name_or_path': expected a string or null", path);
    if (!s) { // placement: the method's sites, each once
        unsigned want = method_sites(ops), got = 0;
        bool ok = json_is_array(pl);
        for (size_t i = 0; ok && i < json_array_size(pl); i++) {
            json_t *e = json_array_get(pl, i);
            unsigned bit = 0;
            for (int p = 0; p < HN_PROJ_COUNT; p++)
                if ((want & (1u << p)) && json_is_string(e) && !strcmp(json_string_value(e), site_name((hn_proj)p)))
                    bit = 1u << p;
            ok = bit && !(got & bit);
            got |= bit;
        }
        if (!ok || got != want)
            s = hn_fail(HN_ERR_FORMAT, "%s: 'placement': expected %s for %s", path,
                        want & (1u << HN_PROJ_O) ? "[\"attention_output\", \"ffn_output\"]" : "[\"ffn_output\"]",
                        ops->name);
    }
    const char *key;
    json_t *val;
    static const char *const known[] = {"format", "version", "method", "bottleneck", "non_linearity", "placement",
                                        "base_model_name_or_path"};
    if (!s) {
        json_object_foreach(c, key, val) {
            bool ok = false;
            for (size_t i = 0; i < sizeof known / sizeof known[0]; i++) ok |= !strcmp(key, known[i]);
            if (!ok) {
                s = hn_fail(HN_ERR_FORMAT, "%s: unknown key '%.64s' (version %d has format, version, method, "
                            "bottleneck, non_linearity, placement, base_model_name_or_path)", path, key,
                            HN_BOTTLENECK_VERSION);
                break;
            }
        }
    }
    if (!s) *b = (int)json_integer_value(bt);
    json_decref(c);
    return s;
}

// The tensor for p, checked for shape, into p->data.
static hn_status read_param(const hn_safetensors *st, hn_param *p) {
    const hn_tensor *t = hn_safetensors_tensor(st, p->name);
    if (!t) return hn_fail(HN_ERR_FORMAT, "%s: missing tensor '%s'", st->path, p->name);
    if (t->ndim != p->ndim || t->ne[0] != p->ne[0] || t->ne[1] != p->ne[1]) {
        char want[64], got[64] = "";
        if (p->ndim == 2) snprintf(want, sizeof want, "[%lld, %lld]", (long long)p->ne[1], (long long)p->ne[0]);
        else snprintf(want, sizeof want, "[%lld]", (long long)p->ne[0]);
        for (int d = t->ndim - 1; d >= 0; d--)
            snprintf(got + strlen(got), sizeof got - strlen(got), "%s%lld", d == t->ndim - 1 ? "" : ", ",
                     (long long)t->ne[d]);
        return hn_fail(HN_ERR_FORMAT, "%s: tensor '%s' has shape [%s], expected %s", st->path, p->name, got, want);
    }
    for (int64_t r = 0; r < p->ne[1]; r++) hn_get_row(t, r, p->data + r * p->ne[0]);
    return HN_OK;
}

static hn_status bn_load(const hn_method_ops *ops, hn_method **out, hn_model *m, const char *dir) {
    *out = NULL;
    int b = 0;
    bn_act act = ACT_RELU;
    hn_status s = read_config(ops, dir, &b, &act);
    if (s) return s;
    char path[4096];
    snprintf(path, sizeof path, "%s/adapter_model.safetensors", dir);
    hn_safetensors st;
    if ((s = hn_safetensors_open(&st, path))) return s;
    bn *a = NULL;
    if (!(s = hn_method_check_base(&st, m)) && !(s = bn_create(&a, ops, m, b, act)))
        for (int i = 0; i < a->params.n && !s; i++) s = read_param(&st, a->params.items[i]);
    for (size_t i = 0; i < st.n_tensors && !s; i++) { // nothing the adapter would not use
        bool used = false;
        for (int k = 0; k < a->params.n && !used; k++) used = !strcmp(st.names[i], a->params.items[k]->name);
        if (!used)
            s = hn_fail(HN_ERR_FORMAT, "%s: unexpected tensor '%.120s' (%s adapts %s of every block, nothing else)",
                        path, st.names[i], ops->name,
                        method_sites(ops) & (1u << HN_PROJ_O) ? "the attention and feed-forward outputs"
                                                                : "the feed-forward output");
    }
    hn_safetensors_close(&st);
    if (s) {
        if (a) bn_destroy(&a->base);
        return s;
    }
    *out = &a->base;
    return HN_OK;
}

// ---- the ops

static hn_param_list *bn_params(hn_method *me) { return &((bn *)me)->params; }

static void bn_set_enabled(hn_method *me, bool on) {
    bn *a = (bn *)me;
    for (int i = 0; i < a->n_sites; i++) a->sites[i].ext.off = !on;
}

static hn_status houlsby_attach_new(hn_method **out, hn_model *m, const hn_method_config *cfg) {
    return bn_attach_new(&hn_method_adapter_houlsby, out, m, cfg);
}
static hn_status pfeiffer_attach_new(hn_method **out, hn_model *m, const hn_method_config *cfg) {
    return bn_attach_new(&hn_method_adapter_pfeiffer, out, m, cfg);
}
static hn_status houlsby_load(hn_method **out, hn_model *m, const char *dir) {
    return bn_load(&hn_method_adapter_houlsby, out, m, dir);
}
static hn_status pfeiffer_load(hn_method **out, hn_model *m, const char *dir) {
    return bn_load(&hn_method_adapter_pfeiffer, out, m, dir);
}

const hn_method_ops hn_method_adapter_houlsby = {
    .name = "adapter-houlsby", .peft_type = NULL, .attach_new = houlsby_attach_new, .load = houlsby_load,
    .save = bn_save, .merge = NULL, .set_scale = NULL, .params = bn_params, .set_enabled = bn_set_enabled,
    .destroy = bn_destroy};
const hn_method_ops hn_method_adapter_pfeiffer = {
    .name = "adapter-pfeiffer", .peft_type = NULL, .attach_new = pfeiffer_attach_new, .load = pfeiffer_load,
    .save = bn_save, .merge = NULL, .set_scale = NULL, .params = bn_params, .set_enabled = bn_set_enabled,
    .destroy = bn_destroy};
