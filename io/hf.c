// io/hf.c — a Hugging Face Llama directory as a GGUF view (see io/hf.h).
//
// The view's metadata is encoded exactly as a GGUF file encodes it (so hn_gguf_get_* work unchanged) in one blob
// the owner keeps; tensors point into the safetensors mappings except q/k (permuted copies) and 1-D tensors (fp32
// copies, because the forward pass reads norms as fp32).
#define _GNU_SOURCE
#include "io/hf.h"
#include "io/safetensors.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

// ---- the one name table ----

static const struct {
    const char *hf, *gguf;
} kinds[] = {
    {"q_proj", "attn_q"},       {"k_proj", "attn_k"}, {"v_proj", "attn_v"},    {"o_proj", "attn_output"},
    {"gate_proj", "ffn_gate"}, {"up_proj", "ffn_up"}, {"down_proj", "ffn_down"},
};

// Per-layer tensors: HF path after "model.layers.N." and GGUF name after "blk.N.".
static const struct {
    const char *hf, *gguf;
} layer_names[] = {
    {"input_layernorm.weight", "attn_norm.weight"}, {"post_attention_layernorm.weight", "ffn_norm.weight"},
    {"self_attn.q_proj.weight", "attn_q.weight"},   {"self_attn.k_proj.weight", "attn_k.weight"},
    {"self_attn.v_proj.weight", "attn_v.weight"},   {"self_attn.o_proj.weight", "attn_output.weight"},
    {"self_attn.q_proj.bias", "attn_q.bias"},       {"self_attn.k_proj.bias", "attn_k.bias"},
    {"self_attn.v_proj.bias", "attn_v.bias"},       {"mlp.gate_proj.weight", "ffn_gate.weight"},
    {"mlp.up_proj.weight", "ffn_up.weight"},        {"mlp.down_proj.weight", "ffn_down.weight"},
};

static const struct {
    const char *hf, *gguf;
} global_names[] = {
    {"model.embed_tokens.weight", "token_embd.weight"},
    {"model.norm.weight", "output_norm.weight"},
    {"lm_head.weight", "output.weight"},
};

const char *hn_hf_kind_to_gguf(const char *hf_kind) {
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
        if (!strcmp(kinds[i].hf, hf_kind)) return kinds[i].gguf;
    return NULL;
}

const char *hn_hf_kind_from_gguf(const char *gguf_kind) {
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
        if (!strcmp(kinds[i].gguf, gguf_kind)) return kinds[i].hf;
    return NULL;
}

// "<prefix><N>.<rest>" with N a decimal layer index: *layer = N, returns rest (NULL if the shape differs).
static const char *layer_rest(const char *name, const char *prefix, int *layer) {
    size_t n = strlen(prefix);
    if (strncmp(name, prefix, n)) return NULL;
    const char *p = name + n;
    if (*p < '0' || *p > '9') return NULL;
    long v = 0;
    while (*p >= '0' && *p <= '9' && v < 1000000) v = v * 10 + (*p++ - '0');
    if (*p != '.' || v >= 1000000) return NULL;
    *layer = (int)v;
    return p + 1;
}

static bool map_name(const char *in, char *out, size_t cap, bool to_gguf) {
    for (size_t i = 0; i < sizeof global_names / sizeof global_names[0]; i++)
        if (!strcmp(in, to_gguf ? global_names[i].hf : global_names[i].gguf)) {
            const char *o = to_gguf ? global_names[i].gguf : global_names[i].hf;
            return (size_t)snprintf(out, cap, "%s", o) < cap;
        }
    int layer;
    const char *rest = layer_rest(in, to_gguf ? "model.layers." : "blk.", &layer);
    if (!rest) return false;
    for (size_t i = 0; i < sizeof layer_names / sizeof layer_names[0]; i++)
        if (!strcmp(rest, to_gguf ? layer_names[i].hf : layer_names[i].gguf))
            return (size_t)snprintf(out, cap, to_gguf ? "blk.%d.%s" : "model.layers.%d.%s", layer,
                                    to_gguf ? layer_names[i].gguf : layer_names[i].hf) < cap;
    return false;
}

bool hn_hf_name_to_gguf(const char *hf, char *out, size_t cap) { return map_name(hf, out, cap, true); }
bool hn_hf_name_from_gguf(const char *gguf, char *out, size_t cap) { return map_name(gguf, out, cap, false); }

void hn_hf_permute_rows(float *dst, const float *src, int64_t rows, int64_t cols, int n_head, bool to_gguf) {
    int64_t hd = rows / n_head, half = hd / 2;
    // GGUF row h*hd + 2i + j holds HF row h*hd + j*half + i (FORMATS.md 3.2).
    for (int64_t h = 0; h < n_head; h++)
        for (int64_t i = 0; i < half; i++)
            for (int64_t j = 0; j < 2; j++) {
                int64_t g = h * hd + 2 * i + j, f = h * hd + j * half + i;
                memcpy(dst + (to_gguf ? g : f) * cols, src + (to_gguf ? f : g) * cols, (size_t)cols * sizeof *dst);
            }
}

bool hn_hf_is_dir(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

// ---- the view ----

typedef struct {
    hn_safetensors *shards;
    int n_shards;
    uint8_t *blob; // encoded metadata
    float **owned;
    size_t n_owned;
} hf_owner;

static void owner_release(void *p) {
    hf_owner *o = p;
    if (!o) return;
    for (int i = 0; i < o->n_shards; i++) hn_safetensors_close(&o->shards[i]);
    for (size_t i = 0; i < o->n_owned; i++) free(o->owned[i]);
    free(o->shards);
    free(o->owned);
    free(o->blob);
    free(o);
}

// Metadata is collected as (key, type, value) and encoded once at the end, when the blob no longer moves.
typedef struct {
    char key[64];
    hn_gguf_type type;
    uint32_t u32;
    float f32;
    char *str;
} meta;

enum { MAX_META = 24 };

typedef struct {
    const char *dir;
    char base[256]; // the directory's last component: the model's name when config.json has none
    json_t *cfg;
    meta m[MAX_META];
    int n_meta;
} loader;

static void put_u32(loader *L, const char *key, uint32_t v) {
    meta *m = &L->m[L->n_meta++];
    snprintf(m->key, sizeof m->key, "%s", key), m->type = HN_GGUF_U32, m->u32 = v;
}

static void put_f32(loader *L, const char *key, float v) {
    meta *m = &L->m[L->n_meta++];
    snprintf(m->key, sizeof m->key, "%s", key), m->type = HN_GGUF_F32, m->f32 = v;
}

static void put_str(loader *L, const char *key, const char *v) {
    meta *m = &L->m[L->n_meta++];
    snprintf(m->key, sizeof m->key, "%s", key), m->type = HN_GGUF_STRING, m->str = (char *)v;
}

// A config integer (required unless def >= 0, which is then the default) in [1, 2^31).
static hn_status cfg_int(loader *L, const char *key, long long def, uint32_t *out) {
    json_t *v = json_object_get(L->cfg, key);
    if (!v || json_is_null(v)) {
        if (def < 0) return hn_fail(HN_ERR_FORMAT, "%s/config.json: required key '%s' is missing", L->dir, key);
        *out = (uint32_t)def;
        return HN_OK;
    }
    if (!json_is_integer(v) || json_integer_value(v) < 1 || json_integer_value(v) > INT32_MAX)
        return hn_fail(HN_ERR_FORMAT, "%s/config.json: '%s' must be a positive integer", L->dir, key);
    *out = (uint32_t)json_integer_value(v);
    return HN_OK;
}

static hn_status cfg_num(loader *L, json_t *obj, const char *key, double def, double *out) {
    json_t *v = json_object_get(obj, key);
    if (!v || json_is_null(v)) {
        if (def < 0) return hn_fail(HN_ERR_FORMAT, "%s/config.json: required key '%s' is missing", L->dir, key);
        *out = def;
        return HN_OK;
    }
    if (!json_is_number(v) || !(json_number_value(v) > 0))
        return hn_fail(HN_ERR_FORMAT, "%s/config.json: '%s' must be a positive number", L->dir, key);
    *out = json_number_value(v);
    return HN_OK;
}

static hn_status read_config(loader *L, bool *tied, uint32_t *n_head, uint32_t *n_head_kv) {
    json_t *c = L->cfg;
    json_t *mt = json_object_get(c, "model_type");
    if (!json_is_string(mt))
        return hn_fail(HN_ERR_FORMAT, "%s/config.json: expected a string 'model_type'", L->dir);
    if (strcmp(json_string_value(mt), "llama"))
        return hn_fail(HN_ERR_UNSUPPORTED, "%s/config.json: model_type '%.40s' is not supported (hone reads llama)",
                       L->dir, json_string_value(mt));
    json_t *act = json_object_get(c, "hidden_act");
    if (act && (!json_is_string(act) || strcmp(json_string_value(act), "silu")))
        return hn_fail(HN_ERR_UNSUPPORTED, "%s/config.json: hidden_act must be \"silu\"", L->dir);
    if (json_is_true(json_object_get(c, "mlp_bias")))
        return hn_fail(HN_ERR_UNSUPPORTED, "%s/config.json: mlp_bias is not supported", L->dir);
    uint32_t n_embd, n_ff, n_layer, vocab, n_ctx, head_dim;
    hn_status s;
    if ((s = cfg_int(L, "hidden_size", -1, &n_embd)) || (s = cfg_int(L, "intermediate_size", -1, &n_ff)) ||
        (s = cfg_int(L, "num_hidden_layers", -1, &n_layer)) || (s = cfg_int(L, "num_attention_heads", -1, n_head)) ||
        (s = cfg_int(L, "vocab_size", -1, &vocab)) || (s = cfg_int(L, "num_key_value_heads", *n_head, n_head_kv)) ||
        (s = cfg_int(L, "max_position_embeddings", 2048, &n_ctx)) ||
        (s = cfg_int(L, "head_dim", n_embd / *n_head, &head_dim)))
        return s;
    if (head_dim * *n_head != n_embd)
        return hn_fail(HN_ERR_UNSUPPORTED, "%s/config.json: head_dim %u x %u heads differs from hidden_size %u",
                       L->dir, head_dim, *n_head, n_embd);
    if (head_dim % 2 || *n_head_kv > *n_head || *n_head % *n_head_kv)
        return hn_fail(HN_ERR_FORMAT, "%s/config.json: %u heads of size %u with %u key/value heads: expected an "
                       "even head size and a divisor of the heads", L->dir, *n_head, head_dim, *n_head_kv);
    // rope_theta sits at the top level (transformers 4) or in rope_parameters (transformers 5); rope_scaling or a
    // rope_type other than "default" changes the frequencies, which hone does not do yet.
    json_t *rp = json_object_get(c, "rope_parameters"), *rs = json_object_get(c, "rope_scaling");
    if (rp && !json_is_object(rp) && !json_is_null(rp))
        return hn_fail(HN_ERR_FORMAT, "%s/config.json: rope_parameters must be an object", L->dir);
    json_t *rtype = json_is_object(rp) ? json_object_get(rp, "rope_type") : NULL;
    if ((rs && !json_is_null(rs)) || (rtype && (!json_is_string(rtype) || strcmp(json_string_value(rtype), "default"))))
        return hn_fail(HN_ERR_UNSUPPORTED, "%s/config.json: rope scaling is not supported", L->dir);
    double eps, theta;
    if ((s = cfg_num(L, c, "rms_norm_eps", -1, &eps)) ||
        (s = cfg_num(L, json_is_object(rp) && json_object_get(rp, "rope_theta") ? rp : c, "rope_theta", 10000,
                     &theta)))
        return s;
    json_t *tie = json_object_get(c, "tie_word_embeddings");
    if (tie && !json_is_boolean(tie))
        return hn_fail(HN_ERR_FORMAT, "%s/config.json: tie_word_embeddings must be true or false", L->dir);
    *tied = tie && json_is_true(tie); // LlamaConfig's default is false
    json_t *name = json_object_get(c, "_name_or_path");
    size_t end = strlen(L->dir), start;
    while (end > 1 && L->dir[end - 1] == '/') end--;
    for (start = end; start > 0 && L->dir[start - 1] != '/'; start--) {}
    snprintf(L->base, sizeof L->base, "%.*s", (int)(end - start), L->dir + start);
    put_str(L, "general.architecture", "llama");
    put_str(L, "general.name", json_is_string(name) && *json_string_value(name) ? json_string_value(name) : L->base);
    put_u32(L, "llama.block_count", n_layer);
    put_u32(L, "llama.embedding_length", n_embd);
    put_u32(L, "llama.feed_forward_length", n_ff);
    put_u32(L, "llama.attention.head_count", *n_head);
    put_u32(L, "llama.attention.head_count_kv", *n_head_kv);
    put_u32(L, "llama.context_length", n_ctx);
    put_u32(L, "llama.vocab_size", vocab);
    put_u32(L, "llama.rope.dimension_count", head_dim);
    put_f32(L, "llama.attention.layer_norm_rms_epsilon", (float)eps);
    put_f32(L, "llama.rope.freq_base", (float)theta);
    return HN_OK;
}

static json_t *load_json(const char *path, hn_status *s) {
    json_error_t err;
    json_t *j = json_load_file(path, JSON_REJECT_DUPLICATES, &err);
    if (!j) *s = hn_fail(HN_ERR_FORMAT, "%s: line %d: %s", path, err.line, err.text);
    else if (!json_is_object(j)) {
        *s = hn_fail(HN_ERR_FORMAT, "%s: expected a JSON object", path);
        json_decref(j);
        j = NULL;
    }
    return j;
}

// Opens model.safetensors, or the shards named by model.safetensors.index.json (each file once).
static hn_status open_shards(loader *L, hf_owner *o) {
    char path[4096];
    snprintf(path, sizeof path, "%s/model.safetensors.index.json", L->dir);
    struct stat st;
    const char **files = NULL;
    size_t n_files = 0;
    json_t *idx = NULL;
    hn_status s = HN_OK;
    if (stat(path, &st) == 0) {
        if (!(idx = load_json(path, &s))) return s;
        json_t *wm = json_object_get(idx, "weight_map");
        if (!json_is_object(wm) || !json_object_size(wm)) {
            json_decref(idx);
            return hn_fail(HN_ERR_FORMAT, "%s: expected a non-empty object 'weight_map'", path);
        }
        files = calloc(json_object_size(wm), sizeof *files);
        const char *k;
        json_t *v;
        json_object_foreach(wm, k, v) {
            if (!json_is_string(v) || !*json_string_value(v) || strchr(json_string_value(v), '/')) {
                s = hn_fail(HN_ERR_FORMAT, "%s: weight_map['%s']: expected a file name in the directory", path, k);
                break;
            }
            size_t j = 0;
            while (j < n_files && strcmp(files[j], json_string_value(v))) j++;
            if (j == n_files) files[n_files++] = json_string_value(v);
        }
    } else {
        static const char *single = "model.safetensors";
        files = calloc(1, sizeof *files);
        if (files) files[n_files++] = single;
    }
    if (!s && !files) s = hn_fail(HN_ERR_NOMEM, "%s: out of memory", L->dir);
    if (!s && !(o->shards = hn_calloc(n_files, sizeof *o->shards, "safetensors shards"))) s = HN_ERR_NOMEM;
    for (size_t i = 0; !s && i < n_files; i++) {
        snprintf(path, sizeof path, "%s/%s", L->dir, files[i]);
        if (!(s = hn_safetensors_open(&o->shards[i], path))) o->n_shards = (int)i + 1;
    }
    free(files);
    json_decref(idx);
    return s;
}

static hn_status keep(hf_owner *o, float *p) {
    float **n = realloc(o->owned, (o->n_owned + 1) * sizeof *n);
    if (!n) {
        free(p);
        return hn_fail(HN_ERR_NOMEM, "out of memory");
    }
    o->owned = n;
    o->owned[o->n_owned++] = p;
    return HN_OK;
}

// The GGUF-view tensor for one HF tensor: mapped as it is, or an owned fp32 copy (1-D, or q/k rows permuted).
static hn_status view_tensor(loader *L, hf_owner *o, const hn_tensor *src, const char *hf_name, const char *gguf_name,
                             uint32_t n_head, uint32_t n_head_kv, hn_tensor *dst) {
    *dst = *src;
    snprintf(dst->name, sizeof dst->name, "%s", gguf_name);
    dst->owned = false; // the owner frees copies, not hn_gguf_close
    int permute = strstr(gguf_name, ".attn_q.") ? (int)n_head : strstr(gguf_name, ".attn_k.") ? (int)n_head_kv : 0;
    if (!permute && src->ndim > 1) return HN_OK;
    if (src->ndim > 2 || (permute && src->ne[src->ndim - 1] % (2 * permute)))
        return hn_fail(HN_ERR_FORMAT, "%s: tensor '%s' has %lld rows, expected a multiple of 2 x %d heads", L->dir,
                       hf_name, (long long)src->ne[src->ndim - 1], permute);
    int64_t n = hn_nelem(src), cols = src->ndim == 2 ? src->ne[0] : 1, rows = n / (cols ? cols : 1);
    size_t bytes;
    if (!hn_mul_ok((size_t)n, sizeof(float), &bytes)) return hn_fail(HN_ERR_FORMAT, "%s: too large", hf_name);
    float *f = hn_alloc_aligned(bytes ? bytes : 4, "fp32 copy"), *tmp = NULL;
    if (!f) return HN_ERR_NOMEM;
    hn_status s = keep(o, f);
    if (s) return s;
    const hn_type_traits *tt = hn_type_traits_of(src->type);
    if (permute && !(tmp = hn_alloc(bytes, "permutation buffer"))) return HN_ERR_NOMEM;
    tt->to_f32(src->data, permute ? tmp : f, n);
    if (permute) hn_hf_permute_rows(f, tmp, rows, cols, permute, true);
    free(tmp);
    dst->type = HN_F32;
    dst->data = f;
    dst->nbytes = bytes;
    return HN_OK;
}

static hn_status build_tensors(loader *L, hf_owner *o, hn_gguf *g, bool tied, uint32_t n_head, uint32_t n_head_kv) {
    size_t total = 0;
    for (int i = 0; i < o->n_shards; i++) total += o->shards[i].n_tensors;
    if (!(g->tensors = hn_calloc(total ? total : 1, sizeof *g->tensors, "view tensors"))) return HN_ERR_NOMEM;
    bool have_head = false;
    for (int i = 0; i < o->n_shards; i++) {
        const hn_safetensors *st = &o->shards[i];
        for (size_t k = 0; k < st->n_tensors; k++) {
            const char *name = st->names[k];
            char gname[96];
            if (!hn_hf_name_to_gguf(name, gname, sizeof gname)) {
                if (!strstr(name, "rotary_emb.inv_freq")) // a buffer older checkpoints saved; recomputed by hone
                    hn_warn("%s: tensor '%s' is not part of a Llama model hone knows; ignored", st->path, name);
                continue;
            }
            if (!strcmp(gname, "output.weight")) have_head = true;
            hn_status s = view_tensor(L, o, &st->tensors[k], name, gname, n_head, n_head_kv, &g->tensors[g->n_tensors]);
            if (s) return s;
            g->n_tensors++;
        }
    }
    if (!tied && !have_head)
        return hn_fail(HN_ERR_FORMAT, "%s: config.json says tie_word_embeddings is false but there is no lm_head.weight",
                       L->dir);
    if (tied && have_head) // transformers ties them at load time: the file's copy is not used
        for (uint64_t i = 0; i < g->n_tensors; i++)
            if (!strcmp(g->tensors[i].name, "output.weight")) g->tensors[i] = g->tensors[--g->n_tensors];
    return HN_OK;
}

// Encodes the collected metadata as GGUF does (u64 length + bytes for strings) into one blob.
static hn_status encode_meta(loader *L, hf_owner *o, hn_gguf *g) {
    size_t size = 0;
    for (int i = 0; i < L->n_meta; i++)
        size += strlen(L->m[i].key) + 16 + (L->m[i].type == HN_GGUF_STRING ? strlen(L->m[i].str) : 0);
    if (!(o->blob = hn_alloc(size, "metadata")) || !(g->kv = hn_calloc(L->n_meta, sizeof *g->kv, "metadata")))
        return HN_ERR_NOMEM;
    uint8_t *p = o->blob;
    for (int i = 0; i < L->n_meta; i++) {
        const meta *m = &L->m[i];
        hn_gguf_kv *kv = &g->kv[i];
        size_t kl = strlen(m->key);
        memcpy(p, m->key, kl);
        kv->key = (hn_gguf_str){(const char *)p, kl};
        p += kl;
        kv->type = m->type;
        kv->val = p;
        if (m->type == HN_GGUF_STRING) {
            uint64_t n = strlen(m->str);
            memcpy(p, &n, 8), memcpy(p + 8, m->str, n);
            p += 8 + n;
        } else {
            memcpy(p, m->type == HN_GGUF_U32 ? (const void *)&m->u32 : (const void *)&m->f32, 4);
            p += 4;
        }
    }
    g->n_kv = (uint64_t)L->n_meta;
    return HN_OK;
}

hn_status hn_hf_open(hn_gguf *g, const char *dir) {
    memset(g, 0, sizeof *g);
    loader L = {.dir = dir};
    hf_owner *o = hn_calloc(1, sizeof *o, "model directory");
    if (!o) return HN_ERR_NOMEM;
    g->owner = o;
    g->release = owner_release;
    hn_status s = HN_OK;
    if (!(g->path = strdup(dir))) s = hn_fail(HN_ERR_NOMEM, "out of memory");
    char path[4096];
    snprintf(path, sizeof path, "%s/config.json", dir);
    if (!s && !(L.cfg = load_json(path, &s)) && !s) s = HN_ERR_FORMAT;
    bool tied = false;
    uint32_t n_head = 0, n_head_kv = 0;
    if (!s) s = read_config(&L, &tied, &n_head, &n_head_kv);
    if (!s) s = open_shards(&L, o);
    if (!s) s = build_tensors(&L, o, g, tied, n_head, n_head_kv);
    if (!s) s = encode_meta(&L, o, g);
    json_decref(L.cfg); // after encode_meta: string values point into it
    if (s) {
        hn_gguf_close(g);
        return s;
    }
    return hn_gguf_view_init(g);
}
