// adapt/prompt_tuning.c — prompt tuning (see prompt_tuning.h): trainable virtual tokens at the input-embedding
// place, and the prompt-learning directory (config keys, prompt_embeddings) that P-tuning shares. Followed: PEFT
// 0.21.2 tuners/prompt_tuning/model.py (PromptEmbedding: init), tuners/tuners_utils.py (BasePromptEncoder's
// saved state: {"prompt_embeddings": embedding.weight}), utils/other.py (_prepare_prompt_learning_config).
#include "adapt/prompt_tuning.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    hn_method base;
    hn_model_ext ext;
    int n, C;
    char *init_text; // TEXT init's text (kept for the config), NULL for RANDOM
    hn_param emb;    // (n, C)
    hn_param_list params;
} prompt_tuning;

void hn_prompt_randn(hn_rng *r, float *x, int64_t n) {
    for (int64_t i = 0; i < n; i += 2) {
        double u1 = 1.0 - (double)hn_rng_f32(r), u2 = hn_rng_f32(r); // u1 in (0, 1]: log finite
        double rad = sqrt(-2.0 * log(u1)), th = 2.0 * M_PI * u2;
        x[i] = (float)(rad * cos(th));
        if (i + 1 < n) x[i + 1] = (float)(rad * sin(th));
    }
}

hn_status hn_prompt_check_n(const hn_model *m, const char *method, int n) {
    if (n < 1 || n > 4096)
        return hn_fail(HN_ERR_ARG, "%s: num_virtual_tokens %d, expected 1 to 4096", method, n);
    if (m->pos_embd && n >= m->hp.n_ctx_train)
        return hn_fail(HN_ERR_ARG, "%s: %d virtual tokens leave no room for input in %s's %d learned positions",
                       method, n, m->path, m->hp.n_ctx_train);
    return HN_OK;
}

// ---- the prompt-learning directory (shared with P-tuning)

json_t *hn_prompt_peft_config(const hn_model *m, const char *peft_type, int n) {
    json_t *c = hn_method_peft_config(m, peft_type);
    json_object_set_new(c, "num_virtual_tokens", json_integer(n));
    json_object_set_new(c, "token_dim", json_integer(m->hp.n_embd));
    json_object_set_new(c, "num_transformer_submodules", json_integer(1));
    json_object_set_new(c, "num_attention_heads", json_integer(m->hp.n_head));
    json_object_set_new(c, "num_layers", json_integer(m->hp.n_layer));
    json_object_set_new(c, "modules_to_save", json_null());
    return c;
}

hn_status hn_prompt_save(const hn_model *m, json_t *cfg, const float *prompt, int n, const char *dir) {
    hn_status s = hn_mkdir_p(dir);
    hn_safetensors_writer *w = s ? NULL : hn_safetensors_writer_create();
    if (!s && !w) s = HN_ERR_NOMEM;
    char path[4096];
    snprintf(path, sizeof path, "%s/adapter_model.safetensors", dir);
    int64_t ne[2] = {m->hp.n_embd, n};
    if (!s) s = hn_safetensors_writer_add(w, "prompt_embeddings", HN_F32, 2, ne, prompt);
    if (!s) s = hn_safetensors_writer_set_meta(w, "format", "pt");
    if (!s) s = hn_method_write_base(w, m);
    if (!s) s = hn_safetensors_writer_write(w, path);
    hn_safetensors_writer_destroy(w);
    if (s) {
        json_decref(cfg);
        return s;
    }
    return hn_method_write_config(cfg, dir); // last: a directory with a config is a whole adapter
}

// An optional integer key: *v unchanged when absent or null; false when present with another type.
static bool opt_int(json_t *cfg, const char *key, json_int_t *v) {
    json_t *j = json_object_get(cfg, key);
    if (!j || json_is_null(j)) return true;
    if (!json_is_integer(j)) return false;
    *v = json_integer_value(j);
    return true;
}

hn_status hn_prompt_read(const hn_model *m, const char *dir, const char *peft_type, json_t **cfg_out,
                         float **prompt, int *n_out) {
    *cfg_out = NULL, *prompt = NULL, *n_out = 0;
    json_t *cfg;
    hn_status s = hn_method_read_config(dir, peft_type, &cfg);
    if (s) return s;
    char path[4096];
    snprintf(path, sizeof path, "%s/adapter_config.json", dir);
    json_int_t n = -1, dim = m->hp.n_embd, subm = 1;
    json_t *tt = json_object_get(cfg, "task_type"), *ver = json_object_get(cfg, "peft_version");
    const char *task = json_is_string(tt) ? json_string_value(tt) : NULL;
    const char *want_task = m->hp.arch == HN_ARCH_BERT ? "FEATURE_EXTRACTION" : "CAUSAL_LM";
    if (!opt_int(cfg, "num_virtual_tokens", &n) || n < 1 || n > 4096)
        s = hn_fail(HN_ERR_FORMAT, "%s: 'num_virtual_tokens': expected an integer from 1 to 4096", path);
    else if (!opt_int(cfg, "token_dim", &dim) || dim != m->hp.n_embd)
        s = hn_fail(HN_ERR_ARG, "%s: 'token_dim': expected %d, the width of %s", path, m->hp.n_embd, m->path);
    else if (!opt_int(cfg, "num_transformer_submodules", &subm) || subm != 1)
        s = hn_fail(HN_ERR_UNSUPPORTED, "%s: 'num_transformer_submodules': expected 1 (an encoder-decoder's 2 is "
                    "not a model hone runs)", path);
    else if (tt && !json_is_null(tt) && (!task || strcmp(task, want_task)))
        // PEFT's SEQ_CLS would pool a virtual token's output; SEQ_2_SEQ_LM is an encoder-decoder
        s = hn_fail(HN_ERR_UNSUPPORTED, "%s: 'task_type': expected \"%s\" for %s (hone attaches %s as virtual tokens "
                    "of a %s)", path, want_task, m->path, peft_type,
                    m->hp.arch == HN_ARCH_BERT ? "feature-extraction encoder" : "causal language model");
    else if (ver && !json_is_null(ver) && (!json_is_string(ver) || strncmp(json_string_value(ver), "0.", 2)))
        s = hn_fail(HN_ERR_UNSUPPORTED, "%s: 'peft_version': expected PEFT 0.x's version string (hone reads the "
                    "layout of PEFT 0.x, written by 0.21.2)", path);
    else s = hn_prompt_check_n(m, peft_type, (int)n);
    if (s) {
        json_decref(cfg);
        return s;
    }
    snprintf(path, sizeof path, "%s/adapter_model.safetensors", dir);
    hn_safetensors st;
    if ((s = hn_safetensors_open(&st, path))) {
        json_decref(cfg);
        return s;
    }
    const hn_tensor *t = hn_safetensors_tensor(&st, "prompt_embeddings");
    const int64_t C = m->hp.n_embd;
    float *p = NULL;
    if (!t) s = hn_fail(HN_ERR_FORMAT, "%s: no tensor 'prompt_embeddings'", path);
    else if (t->ndim != 2 || t->ne[0] != C || t->ne[1] != n)
        s = hn_fail(HN_ERR_FORMAT, "%s: 'prompt_embeddings' has shape [%lld, %lld], expected [%lld, %lld] "
                    "(num_virtual_tokens, token_dim)", path, (long long)t->ne[1], (long long)t->ne[0], (long long)n,
                    (long long)C);
    else if (!(s = hn_method_check_base(&st, m)) && !(p = hn_calloc((size_t)(n * C), sizeof *p, "prompt")))
        s = HN_ERR_NOMEM;
    for (int64_t r = 0; !s && r < n; r++) hn_get_row(t, r, p + r * C);
    for (int64_t i = 0; !s && i < n * C; i++)
        if (!isfinite(p[i])) s = hn_fail(HN_ERR_FORMAT, "%s: 'prompt_embeddings' holds a value that is not finite "
                                         "(row %lld)", path, (long long)(i / C));
    hn_safetensors_close(&st);
    if (s) {
        free(p);
        json_decref(cfg);
        return s;
    }
    *cfg_out = cfg, *prompt = p, *n_out = (int)n;
    return HN_OK;
}

// ---- the method

static hn_var *pt_embed(hn_ctx *c, const hn_model *m, void *state) {
    (void)m;
    prompt_tuning *p = state;
    return hn_op_param(c, p->emb.data, p->emb.frozen ? NULL : p->emb.grad, p->n, p->C); // (n, C)
}

static void pt_destroy(hn_method *me) {
    prompt_tuning *p = (prompt_tuning *)me;
    if (p->ext.embed) hn_model_detach(me->m, &p->ext);
    free(p->emb.data), free(p->emb.grad), free(p->init_text);
    hn_param_list_deinit(&p->params);
    free(p);
}

// A detached instance with room for n tokens (values zero).
static hn_status pt_new(prompt_tuning **out, hn_model *m, int n) {
    *out = NULL;
    hn_status s = hn_prompt_check_n(m, "prompt tuning", n);
    if (s) return s;
    prompt_tuning *p = hn_calloc(1, sizeof *p, "prompt tuning");
    if (!p) return HN_ERR_NOMEM;
    p->base = (hn_method){&hn_method_prompt_tuning, m};
    p->n = n, p->C = m->hp.n_embd;
    hn_param *e = &p->emb;
    snprintf(e->name, sizeof e->name, "prompt_encoder.embedding.weight");
    e->n = (int64_t)n * p->C, e->ndim = 2, e->ne[0] = p->C, e->ne[1] = n;
    e->data = hn_calloc((size_t)e->n, sizeof(float), "virtual tokens");
    e->grad = hn_calloc((size_t)e->n, sizeof(float), "virtual tokens' gradient");
    if (!e->data || !e->grad || (s = hn_param_list_add(&p->params, e))) {
        pt_destroy(&p->base);
        return s ? s : HN_ERR_NOMEM;
    }
    *out = p;
    return HN_OK;
}

static void pt_attach(prompt_tuning *p) {
    p->ext = (hn_model_ext){.method = "prompt-tuning", .n_virtual = p->n, .embed = pt_embed, .state = p};
    hn_model_attach(p->base.m, &p->ext);
}

// PEFT's TEXT init: tokenizer(text)["input_ids"] (special tokens added, as a tokenizer call does by default),
// repeated whole until there are n, then cut to n; each virtual token is the embedding row of its id.
static hn_status init_from_text(prompt_tuning *p, const char *text) {
    hn_model *m = p->base.m;
    if (!m->tok)
        return hn_fail(HN_ERR_ARG, "prompt tuning: init_text needs the model's tokenizer, and %s has none", m->path);
    int32_t *ids;
    int64_t k;
    hn_status s = hn_tokenizer_encode(m->tok, text, -1, HN_TOK_SPECIAL | HN_TOK_ADD_SPECIAL, &ids, &k);
    if (s) return s;
    if (!k) s = hn_fail(HN_ERR_ARG, "prompt tuning: init_text \"%.40s\" has no tokens", text);
    for (int i = 0; !s && i < p->n; i++) hn_get_row(m->tok_embd, ids[i % k], p->emb.data + (int64_t)i * p->C);
    free(ids);
    if (!s && !(p->init_text = strdup(text))) s = hn_fail(HN_ERR_NOMEM, "out of memory");
    return s;
}

static hn_status pt_attach_new(hn_method **out, hn_model *m, const hn_method_config *cfg) {
    *out = NULL;
    prompt_tuning *p;
    hn_status s = pt_new(&p, m, cfg->num_virtual_tokens);
    if (s) return s;
    if (cfg->init_text) s = init_from_text(p, cfg->init_text);
    else { // RANDOM: PEFT leaves torch.nn.Embedding's own init, N(0, 1)
        hn_rng r;
        hn_rng_seed(&r, cfg->seed);
        hn_prompt_randn(&r, p->emb.data, p->emb.n);
    }
    if (s) {
        pt_destroy(&p->base);
        return s;
    }
    pt_attach(p);
    *out = &p->base;
    return HN_OK;
}

static hn_status pt_load(hn_method **out, hn_model *m, const char *dir) {
    *out = NULL;
    json_t *cfg;
    float *prompt;
    int n;
    hn_status s = hn_prompt_read(m, dir, "PROMPT_TUNING", &cfg, &prompt, &n);
    if (s) return s;
    json_t *init = json_object_get(cfg, "prompt_tuning_init"), *text = json_object_get(cfg, "prompt_tuning_init_text");
    static const char *const inits[] = {"TEXT", "SAMPLE_VOCAB", "RANDOM"};
    bool known = !init || json_is_null(init);
    for (int i = 0; i < 3 && !known; i++) known = json_is_string(init) && !strcmp(json_string_value(init), inits[i]);
    prompt_tuning *p = NULL;
    if (!known)
        s = hn_fail(HN_ERR_FORMAT, "%s/adapter_config.json: 'prompt_tuning_init': expected \"TEXT\", "
                    "\"SAMPLE_VOCAB\" or \"RANDOM\"", dir);
    else if (!(s = pt_new(&p, m, n))) {
        memcpy(p->emb.data, prompt, (size_t)p->emb.n * sizeof(float));
        if (json_is_string(text) && !(p->init_text = strdup(json_string_value(text))))
            s = hn_fail(HN_ERR_NOMEM, "out of memory");
    }
    free(prompt);
    json_decref(cfg);
    if (s) {
        if (p) pt_destroy(&p->base);
        return s;
    }
    pt_attach(p);
    *out = &p->base;
    return HN_OK;
}

static hn_status pt_save(const hn_method *me, const char *dir) {
    const prompt_tuning *p = (const prompt_tuning *)me;
    json_t *c = hn_prompt_peft_config(me->m, "PROMPT_TUNING", p->n);
    json_object_set_new(c, "prompt_tuning_init", json_string(p->init_text ? "TEXT" : "RANDOM"));
    json_object_set_new(c, "prompt_tuning_init_text", p->init_text ? json_string(p->init_text) : json_null());
    // PEFT's config refuses TEXT without a tokenizer (it loads one only to initialise, never in inference mode):
    // name the base's.
    json_t *base = json_object_get(c, "base_model_name_or_path");
    json_object_set_new(c, "tokenizer_name_or_path",
                        !p->init_text ? json_null() : json_is_string(base) ? json_copy(base) : json_string(me->m->path));
    json_object_set_new(c, "tokenizer_kwargs", json_null());
    return hn_prompt_save(me->m, c, p->emb.data, p->n, dir);
}

static hn_param_list *pt_params(hn_method *me) { return &((prompt_tuning *)me)->params; }
static void pt_set_enabled(hn_method *me, bool on) { ((prompt_tuning *)me)->ext.off = !on; }

const hn_method_ops hn_method_prompt_tuning = {
    .name = "prompt-tuning", .peft_type = "PROMPT_TUNING", .attach_new = pt_attach_new, .load = pt_load,
    .save = pt_save, .merge = NULL, .set_scale = NULL, .params = pt_params, .set_enabled = pt_set_enabled,
    .destroy = pt_destroy};
