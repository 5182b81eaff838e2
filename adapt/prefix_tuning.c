// adapt/prefix_tuning.c — prefix tuning (Li & Liang 2021), which is also P-tuning v2 (Liu et al. 2022: the same
// trainable key/value prefixes in every layer, without a reparameterisation by default), as PEFT's
// PrefixTuningConfig does both (peft/tuners/prefix_tuning/). The method ops are hn_method_prefix_tuning ("prefix-
// tuning", PEFT's PREFIX_TUNING); adapt/method.h is the interface, e.g.
//
//   hn_method_config cfg = hn_method_default_config();
//   cfg.num_virtual_tokens = 20, cfg.prefix_projection = true;    // P-tuning v2: leave prefix_projection false
//   hn_method *me;
//   if (hn_method_prefix_tuning.attach_new(&me, m, &cfg)) ...;
//
// What attention sees: layer l gets n keys and n values (n_virtual rows of n_head_kv * head_dim) before the input's
// own, as if they were already in the KV cache (PEFT passes them as past_key_values): no rotary embedding is applied
// to them and the input's positions start at n (model/model.c does both; with a KV cache they are its first n
// entries). They come from one flat matrix P (n, num_layers * 2 * token_dim), token_dim = n_head_kv * head_dim
// (PEFT's _prepare_prompt_learning_config sets token_dim and num_attention_heads from num_key_value_heads, #1901):
// PEFT's get_prompt views a row as (num_layers * 2, n_head_kv, head_dim) and splits it into layer 0's keys, layer
// 0's values, layer 1's keys, ..., each head's head_dim values together. P is
//   - without the projection (PEFT's default, and every loaded adapter): a trainable table, P = E (n, L*2*td),
//     drawn as PEFT does (N(0, 1)) or, with init_text, the keys and values of a real text (init_from_text);
//   - with prefix_projection while training: P = tanh(E W1^T + b1) W2^T + b2, E (n, td), W1 (enc, td), W2
//     (L*2*td, enc): PEFT's PrefixEncoder.transform. save_pretrained stores the projected P as prompt_embeddings
//     and the MLP is gone; a loaded adapter is the table.
// The trainable tensors keep PEFT's layout (HF's feature order) so that saving and loading copy them unchanged. Llama
// GGUF rows of k_proj are permuted per head for adjacent-pair rotary (FORMATS.md section 3), so keys that attention
// multiplies with hone's queries must be in that order too: attn_kv takes each layer's key columns through the same
// permutation (hn_op_cols with perm). A dot product is the same in either order, so attention computes what PEFT's
// does. Qwen2 (neox rotary), GPT-2 and BERT keep HF's order.
#include "adapt/cls_head.h"
#include "adapt/method.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern const hn_method_ops hn_method_prefix_tuning;

typedef struct {
    hn_method base;
    hn_model_ext ext;
    int n, L, td, enc;      // virtual tokens, layers, token_dim (n_head_kv * head_dim), encoder_hidden_size
    bool proj;              // the MLP computes P (a fresh adapter with prefix_projection)
    bool proj_cfg;          // prefix_projection as configured (kept in the saved config)
    hn_param emb;           // E: (n, L*2*td), or (n, td) with the MLP
    hn_param w1, b1, w2, b2; // the MLP: (enc, td), (enc), (L*2*td, enc), (L*2*td)
    hn_param_list params;
    int32_t *kperm;         // (td) the key columns in hone's order, NULL: HF's order
} prefix;

static bool prefix_kv(hn_ctx *c, const hn_model *m, void *state, int l, hn_var **k, hn_var **v) {
    (void)m;
    prefix *p = state;
    const int64_t td = p->td;
    hn_var *x;
    int64_t col0;
    if (p->proj) { // only layer l's 2*td rows of W2 and b2 (contiguous in PEFT's layout)
        hn_var *e = hn_op_param(c, p->emb.data, p->emb.grad, p->n, td); // (n, td)
        hn_var *h = hn_op_matmul_f32(c, e, p->w1.data, p->w1.grad, p->enc);
        h = hn_cls_op_tanh(c, hn_op_add_bias(c, h, p->b1.data, p->b1.grad)); // (n, enc)
        int64_t r0 = 2 * l * td;
        x = hn_op_matmul_f32(c, h, p->w2.data + r0 * p->enc, p->w2.grad + r0 * p->enc, 2 * td);
        x = hn_op_add_bias(c, x, p->b2.data + r0, p->b2.grad + r0); // (n, 2*td)
        col0 = 0;
    } else {
        x = hn_op_param(c, p->emb.data, p->emb.grad, p->n, (int64_t)p->L * 2 * td);
        col0 = 2 * l * td;
    }
    *k = hn_op_cols(c, x, col0, td, p->kperm);
    *v = hn_op_cols(c, x, col0 + td, td, NULL);
    return *k && *v;
}

// A zero trainable tensor named as PEFT's named_parameters() names it (without the adapter's name): rows 0 is a
// vector (a bias).
static hn_status param_init(prefix *p, hn_param *t, const char *name, int64_t rows, int64_t cols) {
    snprintf(t->name, sizeof t->name, "prompt_encoder.%s", name);
    t->n = (rows ? rows : 1) * cols;
    t->ndim = rows ? 2 : 1;
    t->ne[0] = cols, t->ne[1] = rows ? rows : 1;
    t->no_decay = !rows;
    t->data = hn_calloc((size_t)t->n, sizeof(float), "prefix tuning weights");
    t->grad = hn_calloc((size_t)t->n, sizeof(float), "prefix tuning gradients");
    if (!t->data || !t->grad) return HN_ERR_NOMEM;
    return hn_param_list_add(&p->params, t);
}

static void prefix_free(prefix *p) {
    if (!p) return;
    hn_param *ts[] = {&p->emb, &p->w1, &p->b1, &p->w2, &p->b2};
    for (int i = 0; i < 5; i++) free(ts[i]->data), free(ts[i]->grad);
    hn_param_list_deinit(&p->params);
    free(p->kperm);
    free(p);
}

// A prefix of n virtual tokens for m, zero, with the MLP when proj, not yet attached.
static hn_status prefix_new(prefix **out, hn_model *m, int n, bool proj, bool proj_cfg, int enc) {
    *out = NULL;
    const hn_hparams *hp = &m->hp;
    const int td = hp->n_head_kv * hp->head_dim;
    if (n < 1 || n > 65536)
        return hn_fail(HN_ERR_ARG, "prefix-tuning: num_virtual_tokens %d, expected 1 to 65536", n);
    if (enc < 1 || enc > (1 << 20))
        return hn_fail(HN_ERR_ARG, "prefix-tuning: encoder_hidden_size %d, expected 1 to %d", enc, 1 << 20);
    prefix *p = hn_calloc(1, sizeof *p, "prefix tuning");
    if (!p) return HN_ERR_NOMEM;
    p->base = (hn_method){&hn_method_prefix_tuning, m};
    p->n = n, p->L = hp->n_layer, p->td = td, p->enc = enc, p->proj = proj, p->proj_cfg = proj_cfg;
    const int64_t flat = (int64_t)p->L * 2 * td;
    hn_status s = param_init(p, &p->emb, "embedding.weight", n, proj ? td : flat);
    if (!s && proj && !(s = param_init(p, &p->w1, "transform.0.weight", enc, td)) &&
        !(s = param_init(p, &p->b1, "transform.0.bias", 0, enc)) &&
        !(s = param_init(p, &p->w2, "transform.2.weight", flat, enc)))
        s = param_init(p, &p->b2, "transform.2.bias", 0, flat);
    if (!s && hn_method_permuted_heads(m, HN_PROJ_K)) { // GGUF column h*hd + 2i + j holds HF column h*hd + j*hd/2 + i
        const int hd = hp->head_dim, half = hd / 2;
        if (!(p->kperm = hn_calloc((size_t)td, sizeof *p->kperm, "prefix key order"))) s = HN_ERR_NOMEM;
        for (int h = 0; !s && h < hp->n_head_kv; h++)
            for (int i = 0; i < half; i++)
                for (int j = 0; j < 2; j++) p->kperm[h * hd + 2 * i + j] = h * hd + j * half + i;
    }
    if (s) {
        prefix_free(p);
        return s;
    }
    p->ext = (hn_model_ext){.method = "prefix-tuning", .n_virtual = n, .attn_kv = prefix_kv, .state = p};
    *out = p;
    return HN_OK;
}

static hn_method *prefix_attach(prefix *p) {
    hn_model_attach(p->base.m, &p->ext);
    return &p->base;
}

static float normal(hn_rng *r) { // Box-Muller
    float u = hn_rng_f32(r), v = hn_rng_f32(r);
    return sqrtf(-2.0f * logf(1.0f - u)) * cosf(6.2831853f * v);
}

static void uniform(hn_rng *r, hn_param *t, float bound) {
    for (int64_t i = 0; i < t->n; i++) t->data[i] = bound * (2.0f * hn_rng_f32(r) - 1.0f);
}

// Li & Liang's initialisation from real activations (their section 7.2, which found it much better than random
// for small data): the prefix is what the text's tokens (PEFT's TEXT init for prompt tuning: the tokenizer's ids
// with special tokens, repeated or cut to n) leave in a KV cache of the model without this adapter: keys with
// their rotary embedding at positions 0..n-1, values. The input then starts at position n, so at the start the
// model computes exactly as if the text were written before every input. The table only (no projection); decoders
// only (an encoder has no KV cache).
static hn_status init_from_text(prefix *p, const char *text) {
    hn_model *m = p->base.m;
    if (p->proj) return hn_fail(HN_ERR_ARG, "prefix-tuning: init_text sets the prefix table itself; it cannot go "
                                "with prefix_projection");
    if (!m->tok) return hn_fail(HN_ERR_ARG, "prefix-tuning: init_text needs the model's tokenizer, and %s has none",
                                m->path);
    if (m->hp.arch == HN_ARCH_BERT)
        return hn_fail(HN_ERR_UNSUPPORTED, "prefix-tuning: init_text runs the text through a KV cache, which an "
                       "encoder (%s) has not; leave init_text unset", m->path);
    if (hn_model_n_virtual(m))
        return hn_fail(HN_ERR_ARG, "prefix-tuning: init_text runs the text through the model, and another adapter "
                       "with virtual positions is active on it; switch it off first");
    int32_t *ids = NULL, *seq = hn_alloc((size_t)p->n * sizeof *seq, "prefix text");
    int64_t k = 0;
    hn_status s = seq ? hn_tokenizer_encode(m->tok, text, -1, HN_TOK_SPECIAL | HN_TOK_ADD_SPECIAL, &ids, &k)
                      : HN_ERR_NOMEM;
    if (!s && !k) s = hn_fail(HN_ERR_ARG, "prefix-tuning: init_text \"%.40s\" has no tokens", text);
    for (int i = 0; !s && i < p->n; i++) seq[i] = ids[i % k];
    const int64_t td = p->td, flat = (int64_t)p->L * 2 * td;
    hn_kv_cache *kv = s ? NULL : hn_kv_cache_create(m, p->n);
    float *lg, *kk = s ? NULL : hn_alloc((size_t)(2 * p->n * td) * sizeof *kk, "prefix text"), *vv = NULL;
    if (!s && (!kv || !kk)) s = HN_ERR_NOMEM;
    if (!s) vv = kk + p->n * td;
    if (!s) s = hn_model_forward(m, kv, seq, p->n, HN_LOGITS_LAST, &lg);
    for (int l = 0; !s && l < p->L; l++) {
        if ((s = hn_kv_cache_read(kv, l, kk, vv))) break;
        for (int t = 0; t < p->n; t++) { // into PEFT's layout: hone's key column j is HF's kperm[j]
            float *row = p->emb.data + t * flat + 2 * l * td;
            for (int64_t j = 0; j < td; j++) row[p->kperm ? p->kperm[j] : j] = kk[t * td + j];
            memcpy(row + td, vv + t * td, (size_t)td * sizeof(float));
        }
    }
    hn_kv_cache_destroy(kv);
    free(kk), free(ids), free(seq);
    return s;
}

static hn_status pt_attach_new(hn_method **out, hn_model *m, const hn_method_config *cfg) {
    *out = NULL;
    const int td = m->hp.n_head_kv * m->hp.head_dim;
    if (cfg->encoder_hidden_size < 0)
        return hn_fail(HN_ERR_ARG, "prefix-tuning: encoder_hidden_size %d, expected >= 1 (0: token_dim %d)",
                       cfg->encoder_hidden_size, td);
    int enc = cfg->encoder_hidden_size ? cfg->encoder_hidden_size : td; // PEFT: None -> token_dim
    prefix *p;
    hn_status s = prefix_new(&p, m, cfg->num_virtual_tokens, cfg->prefix_projection, cfg->prefix_projection, enc);
    if (s) return s;
    // PEFT's init (init_weights None): nn.Embedding's N(0, 1); nn.Linear's kaiming_uniform(a = sqrt(5)) weight and
    // bias, both U(-1/sqrt(in), 1/sqrt(in)).
    hn_rng r;
    hn_rng_seed(&r, cfg->seed);
    for (int64_t i = 0; i < p->emb.n; i++) p->emb.data[i] = normal(&r);
    if (p->proj) {
        float b1 = 1.0f / sqrtf((float)td), b2 = 1.0f / sqrtf((float)enc);
        uniform(&r, &p->w1, b1), uniform(&r, &p->b1, b1), uniform(&r, &p->w2, b2), uniform(&r, &p->b2, b2);
    }
    if (cfg->init_text && (s = init_from_text(p, cfg->init_text))) {
        prefix_free(p);
        return s;
    }
    *out = prefix_attach(p);
    return HN_OK;
}

// P (n, L*2*td) as saved: the table, or the MLP's output.
static void flat_prefix(const prefix *p, float *dst) {
    const int64_t flat = (int64_t)p->L * 2 * p->td;
    if (!p->proj) {
        memcpy(dst, p->emb.data, (size_t)(p->n * flat) * sizeof(float));
        return;
    }
    float *h = malloc((size_t)p->enc * sizeof *h);
    for (int t = 0; h && t < p->n; t++) {
        const float *e = p->emb.data + (int64_t)t * p->td;
        for (int i = 0; i < p->enc; i++) {
            double a = p->b1.data[i];
            for (int j = 0; j < p->td; j++) a += (double)p->w1.data[(int64_t)i * p->td + j] * e[j];
            h[i] = tanhf((float)a);
        }
        for (int64_t o = 0; o < flat; o++) {
            double a = p->b2.data[o];
            for (int i = 0; i < p->enc; i++) a += (double)p->w2.data[o * p->enc + i] * h[i];
            dst[(int64_t)t * flat + o] = (float)a;
        }
    }
    free(h);
}

static hn_status pt_save(const hn_method *me, const char *dir) {
    const prefix *p = (const prefix *)me;
    const hn_model *m = me->m;
    json_t *c = hn_method_peft_config(m, "PREFIX_TUNING");
    // The keys PEFT 0.21's save_pretrained writes for PrefixTuningConfig (prompt learning's and the method's own).
    json_object_set_new(c, "num_virtual_tokens", json_integer(p->n));
    json_object_set_new(c, "token_dim", json_integer(p->td));
    json_object_set_new(c, "num_transformer_submodules", json_integer(1));
    json_object_set_new(c, "num_attention_heads", json_integer(m->hp.n_head_kv));
    json_object_set_new(c, "num_layers", json_integer(p->L));
    json_object_set_new(c, "encoder_hidden_size", json_integer(p->enc));
    json_object_set_new(c, "prefix_projection", json_boolean(p->proj_cfg));
    json_object_set_new(c, "init_weights", json_null());
    json_object_set_new(c, "modules_to_save", json_null());
    json_object_set_new(c, "auto_mapping", json_null());
    hn_status s = hn_method_write_config(c, dir);
    if (s) return s;
    const int64_t flat = (int64_t)p->L * 2 * p->td;
    float *P = hn_calloc((size_t)(p->n * flat), sizeof *P, "prompt_embeddings");
    if (!P) return HN_ERR_NOMEM;
    flat_prefix(p, P);
    hn_safetensors_writer *w = hn_safetensors_writer_create();
    if (!w) {
        free(P);
        return HN_ERR_NOMEM;
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/adapter_model.safetensors", dir);
    int64_t ne[2] = {flat, p->n};
    if (!(s = hn_safetensors_writer_add(w, "prompt_embeddings", HN_F32, 2, ne, P)) &&
        !(s = hn_safetensors_writer_set_meta(w, "format", "pt")) && !(s = hn_method_write_base(w, m)))
        s = hn_safetensors_writer_write(w, path);
    hn_safetensors_writer_destroy(w);
    free(P);
    return s;
}

// An integer key of the config in [lo, hi]; absent or null: *v unchanged when optional.
static hn_status cfg_int(const json_t *c, const char *path, const char *key, bool optional, int lo, int hi, int *v) {
    json_t *x = json_object_get(c, key);
    if ((!x || json_is_null(x)) && optional) return HN_OK;
    if (!json_is_integer(x) || json_integer_value(x) < lo || json_integer_value(x) > hi)
        return hn_fail(HN_ERR_FORMAT, "%s: '%s': expected an integer from %d to %d", path, key, lo, hi);
    *v = (int)json_integer_value(x);
    return HN_OK;
}

static hn_status read_config(const char *dir, const hn_model *m, int *n, bool *proj, int *enc) {
    json_t *c;
    hn_status s = hn_method_read_config(dir, "PREFIX_TUNING", &c);
    if (s) return s;
    char path[4096];
    snprintf(path, sizeof path, "%s/adapter_config.json", dir);
    const hn_hparams *hp = &m->hp;
    int td = hp->n_head_kv * hp->head_dim, L = 0, heads = hp->n_head_kv, tdc = 0, sub = 1;
    *enc = td;
    if (!(s = cfg_int(c, path, "num_virtual_tokens", false, 1, 65536, n)) &&
        !(s = cfg_int(c, path, "num_layers", false, 1, 1 << 16, &L)) &&
        !(s = cfg_int(c, path, "token_dim", false, 1, 1 << 24, &tdc)) &&
        !(s = cfg_int(c, path, "num_attention_heads", true, 1, 1 << 16, &heads)) &&
        !(s = cfg_int(c, path, "num_transformer_submodules", true, 1, 2, &sub)) &&
        !(s = cfg_int(c, path, "encoder_hidden_size", true, 1, 1 << 20, enc))) {
        json_t *pp = json_object_get(c, "prefix_projection");
        if (pp && !json_is_null(pp) && !json_is_boolean(pp))
            s = hn_fail(HN_ERR_FORMAT, "%s: 'prefix_projection': expected true or false", path);
        else if (L != hp->n_layer)
            s = hn_fail(HN_ERR_FORMAT, "%s: 'num_layers' is %d but %s has %d layers", path, L, m->path, hp->n_layer);
        else if (tdc != td || heads != hp->n_head_kv)
            s = hn_fail(HN_ERR_FORMAT, "%s: 'token_dim' %d with 'num_attention_heads' %d; expected %d with %d (the "
                        "model's key/value heads x head size, as PEFT >= 0.12 writes for grouped-query attention)",
                        path, tdc, heads, td, hp->n_head_kv);
        else if (sub != 1)
            s = hn_fail(HN_ERR_UNSUPPORTED, "%s: 'num_transformer_submodules' %d: hone's models are decoder-only or "
                        "encoder-only (expected 1)", path, sub);
        *proj = json_is_true(pp);
    }
    json_decref(c);
    return s;
}

static hn_status pt_load(hn_method **out, hn_model *m, const char *dir) {
    *out = NULL;
    int n = 0, enc = 0;
    bool proj = false;
    hn_status s = read_config(dir, m, &n, &proj, &enc);
    if (s) return s;
    char path[4096];
    snprintf(path, sizeof path, "%s/adapter_model.safetensors", dir);
    hn_safetensors st;
    if ((s = hn_safetensors_open(&st, path))) return s;
    prefix *p = NULL;
    const hn_tensor *t = hn_safetensors_tensor(&st, "prompt_embeddings");
    const int64_t flat = (int64_t)m->hp.n_layer * 2 * m->hp.n_head_kv * m->hp.head_dim;
    if ((s = hn_method_check_base(&st, m))) goto done;
    if (!t) {
        s = hn_fail(HN_ERR_FORMAT, "%s: no tensor 'prompt_embeddings'", path);
        goto done;
    }
    if (st.n_tensors != 1) {
        s = hn_fail(HN_ERR_UNSUPPORTED, "%s: %zu tensors; a prefix-tuning adapter holds only 'prompt_embeddings' "
                    "(modules_to_save is not supported)", path, st.n_tensors);
        goto done;
    }
    if (t->ndim != 2 || t->ne[0] != flat || t->ne[1] != n || t->ne[2] != 1 || t->ne[3] != 1) {
        s = hn_fail(HN_ERR_FORMAT, "%s: 'prompt_embeddings' has shape [%lld, %lld]; expected [%d, %lld] "
                    "(num_virtual_tokens, num_layers x 2 x token_dim)", path, (long long)t->ne[1],
                    (long long)t->ne[0], n, (long long)flat);
        goto done;
    }
    const hn_type_traits *tt = hn_type_traits_of(t->type);
    if (!tt || !tt->to_f32 || (t->type != HN_F32 && t->type != HN_F16 && t->type != HN_BF16)) {
        s = hn_fail(HN_ERR_FORMAT, "%s: 'prompt_embeddings' is %s; expected F32, F16 or BF16", path,
                    hn_dtype_name(t->type));
        goto done;
    }
    if ((s = prefix_new(&p, m, n, false, proj, enc))) goto done;
    tt->to_f32(t->data, p->emb.data, p->emb.n);
    for (int64_t i = 0; i < p->emb.n; i++)
        if (!isfinite(p->emb.data[i])) {
            s = hn_fail(HN_ERR_FORMAT, "%s: 'prompt_embeddings' holds a non-finite value at %lld", path, (long long)i);
            goto done;
        }
    *out = prefix_attach(p);
    p = NULL;
done:
    prefix_free(p);
    hn_safetensors_close(&st);
    return s;
}

static hn_param_list *pt_params(hn_method *me) { return &((prefix *)me)->params; }
static void pt_set_enabled(hn_method *me, bool on) { ((prefix *)me)->ext.off = !on; }

static void pt_destroy(hn_method *me) {
    prefix *p = (prefix *)me;
    hn_model_detach(me->m, &p->ext);
    prefix_free(p);
}

const hn_method_ops hn_method_prefix_tuning = {.name = "prefix-tuning", .peft_type = "PREFIX_TUNING",
                                               .attach_new = pt_attach_new, .load = pt_load, .save = pt_save,
                                               .merge = NULL, .params = pt_params, .set_enabled = pt_set_enabled,
                                               .destroy = pt_destroy};
