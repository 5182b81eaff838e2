// io/hf.c — a Hugging Face model directory as a GGUF view (see io/hf.h); the per-architecture tables and
// config.json readers are in io/hf_arch.c.
//
// The view's metadata is encoded exactly as a GGUF file encodes it (so hn_gguf_get_* work unchanged) in one blob
// the owner keeps; tensors point into the safetensors / torch.save mappings except q/k (permuted copies), Conv1D
// weights (transposed copies) and 1-D tensors (fp32 copies, because the forward pass reads norms as fp32).
#define _GNU_SOURCE
#include "io/hf_impl.h"
#include "io/safetensors.h"
#include "io/tokenizer.h"
#include "io/torch_bin.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

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

// One weights file: safetensors or a torch.save archive.
typedef struct {
    bool torch;
    hn_safetensors st;
    hn_torch_bin tb;
} shard;

static const char *shard_path(const shard *f) { return f->torch ? f->tb.path : f->st.path; }
static size_t shard_n(const shard *f) { return f->torch ? f->tb.n_tensors : f->st.n_tensors; }
static const hn_tensor *shard_tensor(const shard *f, size_t i) { return f->torch ? &f->tb.tensors[i] : &f->st.tensors[i]; }
static const char *shard_name(const shard *f, size_t i) { return f->torch ? f->tb.names[i] : f->st.names[i]; }

typedef struct {
    shard *shards;
    int n_shards;
    hn_gguf tok; // the tokenizer's GGUF keys (hn_hf_open_ex with_tokenizer): its kv strings are the view's
    uint8_t *blob; // encoded metadata
    void **owned;
    size_t n_owned;
} hf_owner;

static void owner_release(void *p) {
    hf_owner *o = p;
    if (!o) return;
    for (int i = 0; i < o->n_shards; i++) {
        if (o->shards[i].torch) hn_torch_bin_close(&o->shards[i].tb);
        else hn_safetensors_close(&o->shards[i].st);
    }
    for (size_t i = 0; i < o->n_owned; i++) free(o->owned[i]);
    hn_gguf_close(&o->tok);
    free(o->shards);
    free(o->owned);
    free(o->blob);
    free(o);
}

// Metadata is collected as (key, type, value) and encoded once at the end, when the blob no longer moves.
static hf_meta *put(hf_loader *L, const char *key, hn_gguf_type type) {
    static hf_meta spare; // past HF_MAX_META (a programming error): written and dropped
    if (L->n_meta >= HF_MAX_META) return &spare;
    hf_meta *m = &L->m[L->n_meta++];
    snprintf(m->key, sizeof m->key, "%s", key), m->type = type;
    return m;
}

void hf_put_u32(hf_loader *L, const char *key, uint32_t v) { put(L, key, HN_GGUF_U32)->u32 = v; }
void hf_put_f32(hf_loader *L, const char *key, float v) { put(L, key, HN_GGUF_F32)->f32 = v; }
void hf_put_bool(hf_loader *L, const char *key, bool v) { put(L, key, HN_GGUF_BOOL)->b = v; }
void hf_put_str(hf_loader *L, const char *key, const char *v) { put(L, key, HN_GGUF_STRING)->str = (char *)v; }

hn_status hf_cfg_int(hf_loader *L, const char *key, long long def, uint32_t *out) {
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

hn_status hf_cfg_num(hf_loader *L, json_t *obj, const char *key, double def, double *out) {
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

hn_status hf_cfg_choice(hf_loader *L, const char *key, const char *const *allowed, const char *def,
                        const char **out) {
    json_t *v = json_object_get(L->cfg, key);
    *out = def;
    if (!v || json_is_null(v)) return HN_OK;
    if (json_is_string(v))
        for (const char *const *a = allowed; *a; a++)
            if (!strcmp(*a, json_string_value(v))) {
                *out = *a;
                return HN_OK;
            }
    char list[160] = "";
    for (const char *const *a = allowed; *a; a++)
        snprintf(list + strlen(list), sizeof list - strlen(list), "%s\"%s\"", a == allowed ? "" : " or ", *a);
    return hn_fail(HN_ERR_UNSUPPORTED, "%s/config.json: '%s' must be %s", L->dir, key, list);
}

void hf_put_name(hf_loader *L) {
    json_t *name = json_object_get(L->cfg, "_name_or_path");
    size_t end = strlen(L->dir), start;
    while (end > 1 && L->dir[end - 1] == '/') end--;
    for (start = end; start > 0 && L->dir[start - 1] != '/'; start--) {}
    snprintf(L->base, sizeof L->base, "%.*s", (int)(end - start), L->dir + start);
    hf_put_str(L, "general.name", json_is_string(name) && *json_string_value(name) ? json_string_value(name) : L->base);
}

static json_t *load_json(const char *path, hn_status *s) {
    json_error_t err;
    json_t *j = json_load_file(path, JSON_REJECT_DUPLICATES, &err);
    if (!j && err.line < 0) *s = hn_fail(HN_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    else if (!j) *s = hn_fail(HN_ERR_FORMAT, "%s: line %d: %s", path, err.line, err.text);
    else if (!json_is_object(j)) {
        *s = hn_fail(HN_ERR_FORMAT, "%s: expected a JSON object", path);
        json_decref(j);
        j = NULL;
    }
    return j;
}

// tokenizer_config.json's chat_template (a string, or a list of {"name", "template"} where "default" is the one
// transformers uses) as tokenizer.chat_template, so that io/chat.c recognises it and conversion carries it.
static hn_status read_chat_template(hf_loader *L) {
    char path[4096];
    snprintf(path, sizeof path, "%s/tokenizer_config.json", L->dir);
    struct stat st;
    if (stat(path, &st)) return HN_OK;
    hn_status s = HN_OK;
    if (!(L->extra = load_json(path, &s))) return s;
    json_t *t = json_object_get(L->extra, "chat_template");
    if (!t || json_is_null(t)) return HN_OK;
    if (json_is_array(t)) {
        json_t *pick = NULL, *e;
        size_t i;
        json_array_foreach(t, i, e) {
            json_t *name = json_object_get(e, "name"), *tpl = json_object_get(e, "template");
            if (!json_is_string(name) || !json_is_string(tpl))
                return hn_fail(HN_ERR_FORMAT, "%s: chat_template[%zu]: expected {\"name\": string, \"template\": "
                               "string}", path, i);
            if (!pick || !strcmp(json_string_value(name), "default")) pick = tpl;
        }
        t = pick;
    }
    if (t && !json_is_string(t))
        return hn_fail(HN_ERR_FORMAT, "%s: chat_template: expected a string or a list of named templates", path);
    if (t) hf_put_str(L, "tokenizer.chat_template", json_string_value(t));
    return HN_OK;
}

// The licence from the model card's front matter (README.md: "---\nlicense: apache-2.0\n...---"), where present.
static void read_license(hf_loader *L) {
    char path[4096], line[256];
    snprintf(path, sizeof path, "%s/README.md", L->dir);
    FILE *f = fopen(path, "r");
    if (!f) return;
    bool front = fgets(line, sizeof line, f) && !strncmp(line, "---", 3);
    while (front && fgets(line, sizeof line, f) && strncmp(line, "---", 3)) {
        if (strncmp(line, "license:", 8)) continue;
        char *v = line + 8;
        while (*v == ' ' || *v == '"' || *v == '\'') v++;
        size_t n = strcspn(v, "\"'\r\n");
        while (n && v[n - 1] == ' ') n--;
        if (n) snprintf(L->license, sizeof L->license, "%.*s", (int)n, v), hf_put_str(L, "general.license", L->license);
        break;
    }
    fclose(f);
}

bool hn_hf_has_tokenizer(const char *dir) {
    char path[4096];
    struct stat st;
    snprintf(path, sizeof path, "%s/tokenizer.json", dir);
    if (!stat(path, &st)) return true;
    snprintf(path, sizeof path, "%s/vocab.txt", dir);
    if (!stat(path, &st)) return true;
    snprintf(path, sizeof path, "%s/vocab.json", dir); // GPT-2's older pair: vocab.json + merges.txt
    if (stat(path, &st)) return false;
    snprintf(path, sizeof path, "%s/merges.txt", dir);
    return !stat(path, &st);
}

static hn_status read_config(hf_loader *L) {
    json_t *mt = json_object_get(L->cfg, "model_type");
    if (!json_is_string(mt))
        return hn_fail(HN_ERR_FORMAT, "%s/config.json: expected a string 'model_type'", L->dir);
    if (!(L->arch = hf_arch_by_model_type(json_string_value(mt))))
        return hn_fail(HN_ERR_UNSUPPORTED, "%s/config.json: model_type '%.40s' is not supported (hone reads %s)",
                       L->dir, json_string_value(mt), hf_arch_known());
    hf_put_str(L, "general.architecture", L->arch->name);
    hf_put_name(L);
    read_license(L);
    hn_status s = read_chat_template(L);
    return s ? s : L->arch->config(L);
}


// The weights: model.safetensors, or the shards named by model.safetensors.index.json, or the same two for
// pytorch_model.bin (torch.save archives), in that order of preference; each file opened once.
static hn_status open_shards(hf_loader *L, hf_owner *o) {
    static const char *const singles[] = {"model.safetensors", "pytorch_model.bin"};
    char path[4096];
    struct stat st;
    const char **files = NULL;
    size_t n_files = 0;
    json_t *idx = NULL;
    hn_status s = HN_OK;
    bool torch = false;
    for (int k = 0; k < 2 && !n_files && !s; k++) {
        torch = k == 1;
        snprintf(path, sizeof path, "%s/%s", L->dir, singles[k]);
        if (stat(path, &st) == 0) {
            if ((files = calloc(1, sizeof *files))) files[n_files++] = singles[k];
            else s = hn_fail(HN_ERR_NOMEM, "%s: out of memory", L->dir);
            break;
        }
        snprintf(path, sizeof path, "%s/%s.index.json", L->dir, singles[k]);
        if (stat(path, &st)) continue;
        if (!(idx = load_json(path, &s))) break;
        json_t *wm = json_object_get(idx, "weight_map");
        if (!json_is_object(wm) || !json_object_size(wm)) {
            s = hn_fail(HN_ERR_FORMAT, "%s: expected a non-empty object 'weight_map'", path);
            break;
        }
        if (!(files = calloc(json_object_size(wm), sizeof *files))) {
            s = hn_fail(HN_ERR_NOMEM, "%s: out of memory", L->dir);
            break;
        }
        const char *key;
        json_t *v;
        json_object_foreach(wm, key, v) {
            if (!json_is_string(v) || !*json_string_value(v) || strchr(json_string_value(v), '/')) {
                s = hn_fail(HN_ERR_FORMAT, "%s: weight_map['%s']: expected a file name in the directory", path, key);
                break;
            }
            size_t j = 0;
            while (j < n_files && strcmp(files[j], json_string_value(v))) j++;
            if (j == n_files) files[n_files++] = json_string_value(v);
        }
    }
    if (!s && !n_files)
        s = hn_fail(HN_ERR_NOTFOUND, "%s: no weights: expected model.safetensors, model.safetensors.index.json, "
                    "pytorch_model.bin or pytorch_model.bin.index.json", L->dir);
    if (!s && !(o->shards = hn_calloc(n_files, sizeof *o->shards, "weight shards"))) s = HN_ERR_NOMEM;
    for (size_t i = 0; !s && i < n_files; i++) {
        snprintf(path, sizeof path, "%s/%s", L->dir, files[i]);
        o->shards[i].torch = torch;
        s = torch ? hn_torch_bin_open(&o->shards[i].tb, path) : hn_safetensors_open(&o->shards[i].st, path);
        if (!s) o->n_shards = (int)i + 1;
    }
    free(files);
    json_decref(idx);
    return s;
}

static hn_status keep(hf_owner *o, void *p) {
    void **n = realloc(o->owned, (o->n_owned + 1) * sizeof *n);
    if (!n) {
        free(p);
        return hn_fail(HN_ERR_NOMEM, "out of memory");
    }
    o->owned = n;
    o->owned[o->n_owned++] = p;
    return HN_OK;
}

// The GGUF-view tensor for one HF tensor: mapped as it is, or an owned copy: fp32 for 1-D tensors (norms and biases,
// which the forward reads as fp32) and permuted q/k, the file's dtype for transposed Conv1D weights.
static hn_status view_tensor(hf_loader *L, hf_owner *o, const hn_tensor *src, const char *path, const char *hf_name,
                             const char *gguf_name, hf_transform tr, hn_tensor *dst) {
    *dst = *src;
    snprintf(dst->name, sizeof dst->name, "%s", gguf_name);
    dst->owned = false; // the owner frees copies, not hn_gguf_close
    int permute = tr == HF_PERMUTE_Q ? (int)L->n_head : tr == HF_PERMUTE_K ? (int)L->n_head_kv : 0;
    if (src->ndim > 2)
        return hn_fail(HN_ERR_FORMAT, "%s: tensor '%s' has %d dimensions, expected 1 or 2", path, hf_name, src->ndim);
    if (tr == HF_TRANSPOSE && src->ndim == 2) { // (in, out) rows -> (out, in) rows, same dtype
        size_t es = src->type == HN_F32 ? 4 : 2;
        int64_t in = src->ne[1], out = src->ne[0];
        uint8_t *t = hn_alloc_aligned(src->nbytes ? src->nbytes : 4, "transposed weight");
        if (!t) return HN_ERR_NOMEM;
        hn_status s = keep(o, t);
        if (s) return s;
        const uint8_t *from = src->data;
        for (int64_t r = 0; r < out; r++)
            for (int64_t c = 0; c < in; c++) memcpy(t + (r * in + c) * es, from + (c * out + r) * es, es);
        dst->ne[0] = in, dst->ne[1] = out, dst->data = t;
        return HN_OK;
    }
    if (!permute && src->ndim > 1) return HN_OK;
    if (permute && src->ne[src->ndim - 1] % (2 * permute))
        return hn_fail(HN_ERR_FORMAT, "%s: tensor '%s' has %lld rows, expected a multiple of 2 x %d heads", path,
                       hf_name, (long long)src->ne[src->ndim - 1], permute);
    int64_t n = hn_nelem(src), cols = src->ndim == 2 ? src->ne[0] : 1, rows = n / (cols ? cols : 1);
    size_t bytes;
    if (!hn_mul_ok((size_t)n, sizeof(float), &bytes)) return hn_fail(HN_ERR_FORMAT, "%s: too large", hf_name);
    float *f = hn_alloc_aligned(bytes ? bytes : 4, "fp32 copy"), *tmp = NULL;
    if (!f) return HN_ERR_NOMEM;
    hn_status s = keep(o, f);
    if (s) return s;
    const hn_type_traits *tt = hn_type_traits_of(src->type);
    if (permute && !(tmp = hn_alloc(bytes ? bytes : 4, "permutation buffer"))) return HN_ERR_NOMEM;
    tt->to_f32(src->data, permute ? tmp : f, n);
    if (permute) hn_hf_permute_rows(f, tmp, rows, cols, permute, true);
    free(tmp);
    dst->type = HN_F32;
    dst->data = f;
    dst->nbytes = bytes;
    return HN_OK;
}

static hn_status build_tensors(hf_loader *L, hf_owner *o, hn_gguf *g) {
    size_t total = 0;
    for (int i = 0; i < o->n_shards; i++) total += shard_n(&o->shards[i]);
    if (!(g->tensors = hn_calloc(total + 1, sizeof *g->tensors, "view tensors"))) return HN_ERR_NOMEM;
    if (L->rope_freqs) { // computed from config.json (Llama 3 rotary scaling), as llama.cpp's converter adds it
        hn_tensor *t = &g->tensors[g->n_tensors++];
        snprintf(t->name, sizeof t->name, "rope_freqs.weight");
        t->type = HN_F32, t->ndim = 1, t->ne[0] = L->n_rope_freqs, t->ne[1] = t->ne[2] = t->ne[3] = 1;
        t->data = L->rope_freqs, t->nbytes = (size_t)L->n_rope_freqs * sizeof(float);
        hn_status s = keep(o, L->rope_freqs);
        L->rope_freqs = NULL;
        if (s) return s;
    }
    const char *head_from = NULL, *embd_from = NULL, *embd_path = NULL;
    for (int i = 0; i < o->n_shards; i++) {
        const shard *f = &o->shards[i];
        for (size_t k = 0; k < shard_n(f); k++) {
            const char *name = shard_name(f, k);
            char gname[96];
            hf_transform tr;
            int r = hf_map_to_gguf(L->arch, name, gname, sizeof gname, &tr);
            if (r <= 0) {
                if (r == 0)
                    hn_warn("%s: tensor '%s' is not part of a %s model hone knows; ignored", shard_path(f), name,
                            L->arch->name);
                continue;
            }
            if (!strcmp(gname, "output.weight")) head_from = name;
            if (!strcmp(gname, "token_embd.weight")) embd_from = name, embd_path = shard_path(f);
            hn_status s = view_tensor(L, o, shard_tensor(f, k), shard_path(f), name, gname, tr,
                                      &g->tensors[g->n_tensors]);
            if (s) return s;
            g->n_tensors++;
        }
    }
    if (embd_from) { // config.json's vocabulary must be the embedding's rows
        const hn_tensor *e = NULL;
        for (uint64_t i = 0; i < g->n_tensors; i++)
            if (!strcmp(g->tensors[i].name, "token_embd.weight")) e = &g->tensors[i];
        if (e->ndim != 2 || e->ne[1] != (int64_t)L->n_vocab)
            return hn_fail(HN_ERR_FORMAT, "%s/config.json: vocab_size is %u but %s: '%s' has %lld rows", L->dir,
                           L->n_vocab, embd_path, embd_from, (long long)e->ne[e->ndim - 1]);
    }
    if (L->arch->has_head && !L->tied && !head_from)
        return hn_fail(HN_ERR_FORMAT, "%s: config.json says tie_word_embeddings is false but there is no lm_head.weight",
                       L->dir);
    if ((L->tied || !L->arch->has_head) && head_from) // transformers ties them at load time: the file's copy is unused
        for (uint64_t i = 0; i < g->n_tensors; i++)
            if (!strcmp(g->tensors[i].name, "output.weight")) g->tensors[i] = g->tensors[--g->n_tensors];
    return HN_OK;
}

// Encodes the collected metadata as GGUF does (u64 length + bytes for strings) into one blob.
static hn_status encode_meta(hf_loader *L, hf_owner *o, hn_gguf *g) {
    size_t size = 0;
    for (int i = 0; i < L->n_meta; i++)
        size += strlen(L->m[i].key) + 16 + (L->m[i].type == HN_GGUF_STRING ? strlen(L->m[i].str) : 0);
    if (!(o->blob = hn_alloc(size ? size : 1, "metadata")) ||
        !(g->kv = hn_calloc(L->n_meta ? L->n_meta : 1, sizeof *g->kv, "metadata")))
        return HN_ERR_NOMEM;
    uint8_t *p = o->blob;
    for (int i = 0; i < L->n_meta; i++) {
        const hf_meta *m = &L->m[i];
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
        } else if (m->type == HN_GGUF_BOOL) {
            *p++ = m->b;
        } else {
            memcpy(p, m->type == HN_GGUF_U32 ? (const void *)&m->u32 : (const void *)&m->f32, 4);
            p += 4;
        }
    }
    g->n_kv = (uint64_t)L->n_meta;
    return HN_OK;
}

// A vocabulary shorter than the embedding (checkpoints pad vocab_size to a round number) padded as llama.cpp's
// converter pads it: tokens "[PAD<id>]" of type UNUSED (5), score -1000, so that a GGUF has one token per row.
// Rewrites the temporary tokenizer GGUF at tmp (open in o->tok) with the longer arrays.
static hn_status pad_vocab(hf_loader *L, hf_owner *o, const char *tmp) {
    const hn_gguf_kv *tk = hn_gguf_find(&o->tok, "tokenizer.ggml.tokens");
    uint64_t n = tk ? tk->arr_n : 0, V = L->n_vocab;
    if (!tk || n == V) return HN_OK;
    if (n > V)
        return hn_fail(HN_ERR_FORMAT, "%s: the tokenizer has %llu tokens but config.json's vocab_size is %u", L->dir,
                       (unsigned long long)n, L->n_vocab);
    const hn_gguf_kv *tt = hn_gguf_find(&o->tok, "tokenizer.ggml.token_type"),
                     *sc = hn_gguf_find(&o->tok, "tokenizer.ggml.scores");
    hn_gguf_writer *w = hn_gguf_writer_create();
    char **toks = hn_calloc(V, sizeof *toks, "padded tokens");
    int32_t *types = hn_calloc(V, sizeof *types, "padded token types");
    float *scores = hn_calloc(V, sizeof *scores, "padded scores");
    hn_status s = w && toks && types && scores ? HN_OK : HN_ERR_NOMEM;
    for (uint64_t i = 0; i < o->tok.n_kv && !s; i++) {
        const hn_gguf_kv *kv = &o->tok.kv[i];
        if (kv != tk && kv != tt && kv != sc) s = hn_gguf_writer_copy_kv(w, kv);
    }
    for (uint64_t i = 0; i < V && !s; i++) {
        if (i < n) {
            hn_gguf_str t = hn_gguf_arr_str(tk, i);
            toks[i] = strndup(t.str, t.len);
        } else if ((toks[i] = malloc(32))) {
            snprintf(toks[i], 32, "[PAD%llu]", (unsigned long long)i);
        }
        if (!toks[i]) s = hn_fail(HN_ERR_NOMEM, "%s: out of memory", L->dir);
        types[i] = i < n && tt && i < tt->arr_n ? (int32_t)hn_gguf_arr_num(tt, i) : i < n ? 1 : 5;
        scores[i] = i < n && sc && i < sc->arr_n ? (float)hn_gguf_arr_num(sc, i) : -1000.0f;
    }
    if (!s) s = hn_gguf_writer_set_arr(w, "tokenizer.ggml.tokens", HN_GGUF_STRING, toks, V);
    if (!s) s = hn_gguf_writer_set_arr(w, "tokenizer.ggml.token_type", HN_GGUF_I32, types, V);
    if (!s && sc) s = hn_gguf_writer_set_arr(w, "tokenizer.ggml.scores", HN_GGUF_F32, scores, V);
    if (!s) s = hn_gguf_writer_write(w, tmp);
    if (!s) {
        hn_gguf_close(&o->tok);
        s = hn_gguf_open(&o->tok, tmp);
    }
    for (uint64_t i = 0; toks && i < V; i++) free(toks[i]);
    free(toks), free(types), free(scores);
    hn_gguf_writer_destroy(w);
    return s;
}

// The tokenizer as GGUF keys (hn_tokenizer_to_gguf), appended to the view's metadata. The writer only writes files,
// so the keys go through a temporary metadata-only GGUF that stays mapped (unlinked at once) while the view lives.
static hn_status add_tokenizer_meta(hf_loader *L, hf_owner *o, hn_gguf *g) {
    if (!hn_hf_has_tokenizer(L->dir)) {
        hn_warn("%s: no tokenizer.json, vocab.txt or vocab.json + merges.txt: the result has no tokenizer", L->dir);
        return HN_OK;
    }
    hn_tokenizer *tk = NULL;
    hn_gguf_writer *w = NULL;
    hn_status s = hn_tokenizer_from_hf_dir(&tk, L->dir);
    if (!s && !(w = hn_gguf_writer_create())) s = HN_ERR_NOMEM;
    if (!s) s = hn_tokenizer_to_gguf(tk, w);
    char tmp[4096];
    const char *td = getenv("TMPDIR");
    snprintf(tmp, sizeof tmp, "%s/hone-tokenizer-XXXXXX", td && *td ? td : "/tmp");
    int fd = s ? -1 : mkstemp(tmp);
    if (!s && fd < 0) s = hn_fail(HN_ERR_IO, "%s: cannot create a temporary file", tmp);
    if (fd >= 0) close(fd);
    if (!s) s = hn_gguf_writer_write(w, tmp);
    if (!s) s = hn_gguf_open(&o->tok, tmp);
    if (!s) s = pad_vocab(L, o, tmp);
    if (fd >= 0) unlink(tmp);
    hn_gguf_writer_destroy(w);
    if (tk) hn_tokenizer_destroy(tk);
    if (s) return s;
    hn_gguf_kv *kv = realloc(g->kv, (g->n_kv + o->tok.n_kv) * sizeof *kv);
    if (!kv) return hn_fail(HN_ERR_NOMEM, "%s: out of memory", L->dir);
    g->kv = kv;
    uint64_t n0 = g->n_kv;
    for (uint64_t i = 0; i < o->tok.n_kv; i++) {
        const hn_gguf_kv *t = &o->tok.kv[i];
        bool dup = false; // keys the view already has (the chat template from tokenizer_config.json) win
        for (uint64_t k = 0; k < n0 && !dup; k++)
            dup = kv[k].key.len == t->key.len && !memcmp(kv[k].key.str, t->key.str, t->key.len);
        if (dup) continue;
        kv[g->n_kv++] = *t;
        o->tok.kv[i].arr_str = NULL; // now the view's to free
    }
    return HN_OK;
}

hn_status hn_hf_open(hn_gguf *g, const char *dir) { return hn_hf_open_ex(g, dir, false); }

hn_status hn_hf_open_ex(hn_gguf *g, const char *dir, bool with_tokenizer) {
    memset(g, 0, sizeof *g);
    hf_loader L = {.dir = dir};
    hf_owner *o = hn_calloc(1, sizeof *o, "model directory");
    if (!o) return HN_ERR_NOMEM;
    g->owner = o;
    g->release = owner_release;
    hn_status s = HN_OK;
    if (!(g->path = strdup(dir))) s = hn_fail(HN_ERR_NOMEM, "out of memory");
    char path[4096];
    snprintf(path, sizeof path, "%s/config.json", dir);
    if (!s && !(L.cfg = load_json(path, &s)) && !s) s = HN_ERR_FORMAT;
    if (!s) s = read_config(&L);
    if (!s) s = open_shards(&L, o);
    if (!s) s = build_tensors(&L, o, g);
    if (!s) s = encode_meta(&L, o, g);
    if (!s && with_tokenizer) s = add_tokenizer_meta(&L, o, g);
    free(L.rope_freqs); // still here only when the view failed before taking it
    json_decref(L.cfg); // after encode_meta: string values point into it
    json_decref(L.extra);
    if (s) {
        hn_gguf_close(g);
        return s;
    }
    return hn_gguf_view_init(g);
}
