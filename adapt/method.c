// adapt/method.c — the table of methods, loading any saved adapter by what its config says it is, and what the
// methods' files share: where a module sits and what it is called, the base record, PEFT's adapter_config.json.
#include "adapt/method.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

// Each method's file defines its ops. Weak: a program that links libhone without one of them (a test of another
// method) still links, and that method is then not found.
#define METHODS(X)                                                                                                  \
    X(lora) X(dora) X(ia3) X(prompt_tuning) X(p_tuning) X(prefix_tuning) X(adapter_houlsby) X(adapter_pfeiffer)
#define DECLARE(n) extern const hn_method_ops hn_method_##n __attribute__((weak));
METHODS(DECLARE)
#define ENTRY(n) &hn_method_##n,
static const hn_method_ops *const table[] = {METHODS(ENTRY)};
enum { N_METHODS = sizeof table / sizeof table[0] };

hn_method_config hn_method_default_config(void) {
    return (hn_method_config){.num_virtual_tokens = 20, .adapter_reduction = 16, .adapter_act = "relu",
                              .lora = hn_lora_default_config()};
}

const hn_method_ops *hn_method_find(const char *name) {
    for (int i = 0; i < N_METHODS; i++)
        if (table[i] && !strcmp(table[i]->name, name)) return table[i];
    return NULL;
}

const char *hn_method_names(void) {
    static char buf[256];
    if (!*buf)
        for (int i = 0; i < N_METHODS; i++)
            if (table[i])
                snprintf(buf + strlen(buf), sizeof buf - strlen(buf), "%s%s", *buf ? ", " : "", table[i]->name);
    return buf;
}

hn_status hn_method_load(hn_method **out, hn_model *m, const char *dir) {
    *out = NULL;
    char path[4096];
    struct stat st;
    // hone's own formats say which method wrote them; PEFT's say their peft_type (LoRA with use_dora is DoRA).
    snprintf(path, sizeof path, "%s/hone_adapter.json", dir);
    const char *name = NULL;
    char own[64];
    json_t *cfg = NULL;
    json_error_t err;
    if (stat(path, &st) == 0) {
        if (!(cfg = json_load_file(path, JSON_REJECT_DUPLICATES, &err)))
            return hn_fail(HN_ERR_FORMAT, "%s: line %d: %s", path, err.line, err.text);
        json_t *mt = json_object_get(cfg, "method");
        if (!json_is_string(mt) || json_string_length(mt) >= sizeof own) {
            json_decref(cfg);
            return hn_fail(HN_ERR_FORMAT, "%s: 'method': expected the method's name as a string", path);
        }
        snprintf(own, sizeof own, "%s", json_string_value(mt));
        name = own;
    } else {
        snprintf(path, sizeof path, "%s/adapter_config.json", dir);
        if (!(cfg = json_load_file(path, JSON_REJECT_DUPLICATES, &err))) {
            if (stat(path, &st) != 0)
                return hn_fail(HN_ERR_NOTFOUND, "%s: not an adapter directory (no adapter_config.json or "
                               "hone_adapter.json)", dir);
            return hn_fail(HN_ERR_FORMAT, "%s: line %d: %s", path, err.line, err.text);
        }
        json_t *pt = json_object_get(cfg, "peft_type");
        if (!json_is_string(pt)) {
            json_decref(cfg);
            return hn_fail(HN_ERR_FORMAT, "%s: 'peft_type': expected a string", path);
        }
        for (int i = 0; i < N_METHODS && !name; i++)
            if (table[i] && table[i]->peft_type && !strcmp(table[i]->peft_type, json_string_value(pt))) {
                name = table[i]->name;
                if (!strcmp(name, "lora") && json_is_true(json_object_get(cfg, "use_dora"))) name = "dora";
            }
        if (!name) {
            hn_fail(HN_ERR_UNSUPPORTED, "%s: peft_type '%.40s': hone reads %s", path, json_string_value(pt),
                    hn_method_names());
            json_decref(cfg);
            return HN_ERR_UNSUPPORTED;
        }
    }
    const hn_method_ops *ops = hn_method_find(name);
    json_decref(cfg);
    if (!ops || !ops->load)
        return hn_fail(HN_ERR_UNSUPPORTED, "%s: method '%s' is not one hone can load (it has %s)", path, name,
                       hn_method_names());
    return ops->load(out, m, dir);
}

hn_status hn_method_merge(const hn_method *me, int layer, hn_proj proj, float *dense) {
    if (!me->ops->merge)
        return hn_fail(HN_ERR_UNSUPPORTED, "%s cannot be merged into the base weights: it adds computation that no "
                       "change of the existing weights reproduces; load it with --adapter instead", me->ops->name);
    return me->ops->merge(me, layer, proj, dense);
}

hn_status hn_method_merge_bias(const hn_method *me, int layer, hn_proj proj, float *bias) {
    return me->ops->merge && me->ops->merge_bias ? me->ops->merge_bias(me, layer, proj, bias) : HN_OK;
}

hn_status hn_method_set_scale(hn_method *me, float scale) {
    if (me->ops->set_scale) {
        me->ops->set_scale(me, scale);
        return HN_OK;
    }
    if (scale == 1.0f) return HN_OK;
    return hn_fail(HN_ERR_UNSUPPORTED, "%s has no scale to set (PATH:SCALE is for LoRA-family adapters)",
                   me->ops->name);
}

void hn_method_destroy(hn_method *me) {
    if (me) me->ops->destroy(me);
}

// ---- modules

hn_linear *hn_method_linear(hn_model *m, int layer, hn_proj p) {
    if (layer < 0 || layer >= m->hp.n_layer || (unsigned)p >= HN_PROJ_COUNT) return NULL;
    hn_layer *L = &m->layers[layer];
    hn_linear *t[HN_PROJ_COUNT] = {&L->q, &L->k, &L->v, &L->o, &L->gate, &L->up, &L->down, &L->qkv};
    return t[p]->w ? t[p] : NULL;
}

// BERT-family checkpoints name their modules two ways. DistilBERT is the one without token-type embeddings
// (DistilBertEmbeddings has none; BertEmbeddings always has, and hone exports a DistilBERT as a BertModel with them).
static bool is_distilbert(const hn_model *m) { return m->hp.arch == HN_ARCH_BERT && !m->type_embd; }

static const char *const bert_paths[HN_PROJ_COUNT] = {
    "attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense", NULL,
    "intermediate.dense", "output.dense", NULL};
static const char *const distilbert_paths[HN_PROJ_COUNT] = {
    "attention.q_lin", "attention.k_lin", "attention.v_lin", "attention.out_lin", NULL, "ffn.lin1", "ffn.lin2", NULL};

const char *hn_method_target_name(const hn_model *m, hn_proj p) {
    if (m->hp.arch == HN_ARCH_GPT2) return p == HN_PROJ_QKV ? "c_attn" : p == HN_PROJ_UP ? "c_fc" : "c_proj";
    if (m->hp.arch != HN_ARCH_BERT) return hn_proj_hf_name(p);
    const char *path = (is_distilbert(m) ? distilbert_paths : bert_paths)[p]; // NULL: BERT has no such layer
    return path && (is_distilbert(m) || p <= HN_PROJ_V) ? strrchr(path, '.') + 1 : path;
}

void hn_method_module_path(char *dst, size_t n, const hn_model *m, int layer, hn_proj p) {
    if (m->hp.arch == HN_ARCH_GPT2)
        snprintf(dst, n, "transformer.h.%d.%s.%s", layer, p == HN_PROJ_QKV || p == HN_PROJ_O ? "attn" : "mlp",
                 p == HN_PROJ_QKV ? "c_attn" : p == HN_PROJ_UP ? "c_fc" : "c_proj");
    else if (is_distilbert(m))
        snprintf(dst, n, "distilbert.transformer.layer.%d.%s", layer, distilbert_paths[p]);
    else if (m->hp.arch == HN_ARCH_BERT)
        snprintf(dst, n, "bert.encoder.layer.%d.%s", layer, bert_paths[p]);
    else
        snprintf(dst, n, "model.layers.%d.%s.%s", layer, p <= HN_PROJ_O ? "self_attn" : "mlp", hn_proj_hf_name(p));
}

int hn_method_permuted_heads(const hn_model *m, hn_proj p) {
    if (m->hp.arch != HN_ARCH_LLAMA || m->hp.rope_neox) return 0;
    return p == HN_PROJ_Q ? m->hp.n_head : p == HN_PROJ_K ? m->hp.n_head_kv : 0;
}

bool hn_method_parse_module(const hn_model *m, const char *name, const char *suffix, int *layer, hn_proj *proj) {
    static const char pre[] = "base_model.model.";
    size_t ln = strlen(name), ls = strlen(suffix), lp = sizeof pre - 1;
    if (ln <= lp + ls || strncmp(name, pre, lp) || strcmp(name + ln - ls, suffix)) return false;
    char path[160];
    for (int l = 0; l < m->hp.n_layer; l++)
        for (int p = 0; p < HN_PROJ_COUNT; p++) {
            if (!hn_method_linear((hn_model *)m, l, (hn_proj)p)) continue;
            hn_method_module_path(path, sizeof path, m, l, (hn_proj)p);
            if (strlen(path) == ln - lp - ls && !strncmp(name + lp, path, ln - lp - ls)) {
                *layer = l, *proj = (hn_proj)p;
                return true;
            }
        }
    return false;
}

// ---- base record

// The file's string under key into buf ("" when absent).
static const char *meta_str(const hn_model *m, const char *key, char buf[256]) {
    hn_gguf_str v;
    *buf = 0;
    if (hn_gguf_find(&m->gguf, key) && !hn_gguf_get_str(&m->gguf, key, &v))
        snprintf(buf, 256, "%.*s", (int)(v.len > 255 ? 255 : v.len), v.str);
    return buf;
}

hn_status hn_method_write_base(hn_safetensors_writer *w, const hn_model *m) {
    uint64_t h;
    hn_status s = hn_adapter_base_hash(&m->gguf, &h);
    char hex[32], name[256];
    snprintf(hex, sizeof hex, "%016llx", (unsigned long long)h);
    if (!s && *meta_str(m, "general.name", name)) s = hn_safetensors_writer_set_meta(w, "hone.base_name", name);
    if (!s && *meta_str(m, "general.architecture", name))
        s = hn_safetensors_writer_set_meta(w, "hone.base_architecture", name);
    if (!s) s = hn_safetensors_writer_set_meta(w, "hone.base_hash", hex);
    return s;
}

hn_status hn_method_check_base(const hn_safetensors *st, const hn_model *m) {
    const char *arch = hn_safetensors_meta(st, "hone.base_architecture"), *hash = hn_safetensors_meta(st, "hone.base_hash");
    const char *name = hn_safetensors_meta(st, "hone.base_name");
    hn_gguf_str a = {"", 0};
    if (hn_gguf_find(&m->gguf, "general.architecture")) hn_gguf_get_str(&m->gguf, "general.architecture", &a);
    if (arch && (strlen(arch) != a.len || memcmp(arch, a.str, a.len)))
        return hn_fail(HN_ERR_ARG, "%s: the adapter was trained on %s (architecture %s) but %s is architecture "
                       "'%.*s'", st->path, name ? name : "an unnamed model", arch, m->path, (int)(a.len > 64 ? 64 : a.len),
                       a.str);
    if (!hash) return HN_OK;
    uint64_t h;
    hn_status s = hn_adapter_base_hash(&m->gguf, &h);
    if (s) return s;
    char hex[32];
    snprintf(hex, sizeof hex, "%016llx", (unsigned long long)h);
    if (strcmp(hex, hash))
        hn_warn("%s: the adapter was trained on %s (weights %s) and %s has other weights (%s); applying it anyway",
                st->path, name ? name : "an unnamed model", hash, m->path, hex);
    return HN_OK;
}

// ---- adapter_config.json

json_t *hn_method_peft_config(const hn_model *m, const char *peft_type) {
    json_t *c = json_object();
    char name[256];
    meta_str(m, "general.name", name);
    json_object_set_new(c, "peft_type", json_string(peft_type));
    json_object_set_new(c, "task_type", json_string(m->hp.arch == HN_ARCH_BERT ? "FEATURE_EXTRACTION" : "CAUSAL_LM"));
    json_object_set_new(c, "base_model_name_or_path", *name ? json_string(name) : json_null());
    json_object_set_new(c, "inference_mode", json_true());
    json_object_set_new(c, "revision", json_null());
    return c;
}

hn_status hn_method_write_config(json_t *cfg, const char *dir) {
    hn_status s = hn_mkdir_p(dir);
    char *text = s ? NULL : json_dumps(cfg, JSON_INDENT(2) | JSON_SORT_KEYS);
    json_decref(cfg);
    if (s) return s;
    char path[4096];
    snprintf(path, sizeof path, "%s/adapter_config.json", dir);
    if (!text) return hn_fail(HN_ERR_ARG, "%s: cannot encode (a name that is not UTF-8?)", path);
    hn_afile f;
    if (!(s = hn_afile_open(&f, path))) {
        if (!(s = hn_afile_write(&f, text, strlen(text))) && !(s = hn_afile_write(&f, "\n", 1))) s = hn_afile_commit(&f);
        else hn_afile_abort(&f);
    }
    free(text);
    return s;
}

hn_status hn_method_read_config(const char *dir, const char *peft_type, json_t **out) {
    *out = NULL;
    char path[4096];
    snprintf(path, sizeof path, "%s/adapter_config.json", dir);
    json_error_t err;
    json_t *c = json_load_file(path, JSON_REJECT_DUPLICATES, &err);
    if (!c) {
        struct stat st;
        if (stat(path, &st) != 0) return hn_fail(HN_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
        return hn_fail(HN_ERR_FORMAT, "%s: line %d: %s", path, err.line, err.text);
    }
    json_t *pt = json_object_get(c, "peft_type");
    if (!json_is_object(c) || !json_is_string(pt) || strcmp(json_string_value(pt), peft_type)) {
        json_decref(c);
        return hn_fail(HN_ERR_FORMAT, "%s: 'peft_type': expected \"%s\"", path, peft_type);
    }
    *out = c;
    return HN_OK;
}
