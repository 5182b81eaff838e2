// io/hf_export.c — a model (any GGUF view: a GGUF file or a Hugging Face directory) written out as a Hugging Face
// directory: config.json from the <arch>.* metadata (llama, qwen2, gpt2, bert), model.safetensors with the architecture's HF names (the name
// tables of io/hf_arch.c read backwards: Llama q/k rows un-permuted, GPT-2 Conv1D weights transposed back), and
// README.md front matter with the licence. The tokenizer files are the tokenizer's own (io/tokenizer.h).
#define _GNU_SOURCE
#include "io/hf_impl.h"
#include "io/safetensors.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const hn_gguf *g;
    const char *arch;
    json_t *cfg;
} exporter;

static hn_status need_u32(exporter *E, const char *suffix, uint32_t *out) {
    char key[96];
    snprintf(key, sizeof key, "%s.%s", E->arch, suffix);
    if (!hn_gguf_find(E->g, key))
        return hn_fail(HN_ERR_FORMAT, "%s: required metadata key '%s' is missing", E->g->path, key);
    return hn_gguf_get_u32(E->g, key, out);
}

static uint32_t opt_u32(exporter *E, const char *key, uint32_t def) {
    uint32_t v;
    return hn_gguf_find(E->g, key) && !hn_gguf_get_u32(E->g, key, &v) ? v : def;
}

static float opt_f32(exporter *E, const char *suffix, float def) {
    char key[96];
    float v;
    snprintf(key, sizeof key, "%s.%s", E->arch, suffix);
    return hn_gguf_find(E->g, key) && !hn_gguf_get_f32(E->g, key, &v) ? v : def;
}

static void set_int(exporter *E, const char *key, long long v) { json_object_set_new(E->cfg, key, json_integer(v)); }
// A float from the metadata as the short decimal a person would write (1e-05, not 9.9999997473787516e-06).
static void set_real(exporter *E, const char *key, double v) {
    char b[32];
    snprintf(b, sizeof b, "%.7g", v);
    json_object_set_new(E->cfg, key, json_real(strtod(b, NULL)));
}
static void set_str(exporter *E, const char *key, const char *v) { json_object_set_new(E->cfg, key, json_string(v)); }

// The special token ids transformers' config carries, where the tokenizer metadata has them.
static void special_ids(exporter *E) {
    static const char *const keys[][2] = {{"tokenizer.ggml.bos_token_id", "bos_token_id"},
                                          {"tokenizer.ggml.eos_token_id", "eos_token_id"},
                                          {"tokenizer.ggml.padding_token_id", "pad_token_id"}};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        uint32_t v = opt_u32(E, keys[i][0], UINT32_MAX);
        if (v != UINT32_MAX) set_int(E, keys[i][1], v);
    }
}

static hn_status config(exporter *E, int64_t n_vocab, bool tied, uint32_t *n_head, uint32_t *n_head_kv) {
    uint32_t n_embd, n_layer, n_ff, n_ctx;
    hn_status s;
    if ((s = need_u32(E, "embedding_length", &n_embd)) || (s = need_u32(E, "block_count", &n_layer)) ||
        (s = need_u32(E, "feed_forward_length", &n_ff)) || (s = need_u32(E, "attention.head_count", n_head)))
        return s;
    char key[96];
    snprintf(key, sizeof key, "%s.context_length", E->arch);
    n_ctx = opt_u32(E, key, 2048);
    snprintf(key, sizeof key, "%s.attention.head_count_kv", E->arch);
    *n_head_kv = opt_u32(E, key, *n_head);
    json_t *archs = json_array();
    bool qwen2 = !strcmp(E->arch, "qwen2");
    if (!strcmp(E->arch, "llama") || qwen2) {
        json_array_append_new(archs, json_string(qwen2 ? "Qwen2ForCausalLM" : "LlamaForCausalLM"));
        set_str(E, "model_type", E->arch);
        set_int(E, "hidden_size", n_embd), set_int(E, "intermediate_size", n_ff);
        set_int(E, "num_hidden_layers", n_layer), set_int(E, "num_attention_heads", *n_head);
        set_int(E, "num_key_value_heads", *n_head_kv);
        snprintf(key, sizeof key, "%s.rope.dimension_count", E->arch);
        set_int(E, "head_dim", opt_u32(E, key, n_embd / *n_head));
        set_int(E, "max_position_embeddings", n_ctx);
        set_real(E, "rms_norm_eps", opt_f32(E, "attention.layer_norm_rms_epsilon", 1e-5f));
        set_real(E, "rope_theta", opt_f32(E, "rope.freq_base", 10000.0f));
        set_str(E, "hidden_act", "silu");
        // Rotary scaling: linear is a factor; Llama 3's per-pair factors (rope_freqs.weight) do not say which
        // config.json parameters made them, so such a model is not exported rather than exported wrong.
        if (hn_gguf_tensor(E->g, "rope_freqs.weight"))
            return hn_fail(HN_ERR_UNSUPPORTED, "%s: rope_freqs.weight (Llama 3 rotary scaling) cannot be written back "
                           "as config.json's rope_scaling", E->g->path);
        hn_gguf_str type;
        snprintf(key, sizeof key, "%s.rope.scaling.type", E->arch);
        float factor = opt_f32(E, "rope.scaling.factor", 0);
        if (!hn_gguf_get_str(E->g, key, &type) && type.len == 6 && !memcmp(type.str, "linear", 6) && factor > 0) {
            json_t *rs = json_object();
            json_object_set_new(rs, "rope_type", json_string("linear"));
            char b[32];
            snprintf(b, sizeof b, "%.7g", factor);
            json_object_set_new(rs, "factor", json_real(strtod(b, NULL)));
            json_object_set_new(E->cfg, "rope_scaling", rs);
        } else if (!hn_gguf_get_str(E->g, key, &type) && !(type.len == 4 && !memcmp(type.str, "none", 4))) {
            return hn_fail(HN_ERR_UNSUPPORTED, "%s: %s '%.*s' cannot be exported", E->g->path, key,
                           (int)(type.len > 32 ? 32 : type.len), type.str);
        }
    } else if (!strcmp(E->arch, "gpt2")) {
        json_array_append_new(archs, json_string("GPT2LMHeadModel"));
        set_str(E, "model_type", "gpt2");
        set_int(E, "n_embd", n_embd), set_int(E, "n_layer", n_layer), set_int(E, "n_head", *n_head);
        set_int(E, "n_inner", n_ff), set_int(E, "n_positions", n_ctx);
        set_real(E, "layer_norm_epsilon", opt_f32(E, "attention.layer_norm_epsilon", 1e-5f));
        set_str(E, "activation_function", "gelu_new");
    } else {
        json_array_append_new(archs, json_string("BertModel"));
        set_str(E, "model_type", "bert");
        set_int(E, "hidden_size", n_embd), set_int(E, "intermediate_size", n_ff);
        set_int(E, "num_hidden_layers", n_layer), set_int(E, "num_attention_heads", *n_head);
        set_int(E, "max_position_embeddings", n_ctx);
        set_int(E, "type_vocab_size", opt_u32(E, "tokenizer.ggml.token_type_count", 2));
        set_real(E, "layer_norm_eps", opt_f32(E, "attention.layer_norm_epsilon", 1e-12f));
        set_str(E, "hidden_act", "gelu");
    }
    json_object_set_new(E->cfg, "architectures", archs);
    set_int(E, "vocab_size", n_vocab);
    json_object_set_new(E->cfg, "tie_word_embeddings", json_boolean(tied));
    set_str(E, "torch_dtype", "float32");
    special_ids(E);
    return HN_OK;
}

// One tensor as fp32 in HF layout (owned, 64-byte aligned); ne_out gets its GGUF-order shape.
static hn_status to_hf(const hn_tensor *t, hf_transform tr, uint32_t n_head, uint32_t n_head_kv, float **out,
                       int64_t ne_out[HN_MAX_DIMS]) {
    const hn_type_traits *tt = hn_type_traits_of(t->type);
    int64_t n = hn_nelem(t);
    size_t bytes;
    if (!tt || !tt->to_f32 || !hn_mul_ok((size_t)n, sizeof(float), &bytes))
        return hn_fail(HN_ERR_UNSUPPORTED, "tensor '%s': dtype %s cannot be exported", t->name, hn_dtype_name(t->type));
    float *f = hn_alloc_aligned(bytes ? bytes : 4, "exported tensor"), *tmp = NULL;
    if (!f) return HN_ERR_NOMEM;
    memcpy(ne_out, t->ne, sizeof t->ne);
    if (tr == HF_AS_IS) {
        tt->to_f32(t->data, f, n);
    } else if (!(tmp = hn_alloc(bytes ? bytes : 4, "export buffer"))) {
        free(f);
        return HN_ERR_NOMEM;
    } else {
        tt->to_f32(t->data, tmp, n);
        int64_t cols = t->ndim == 2 ? t->ne[0] : 1, rows = n / (cols ? cols : 1);
        if (tr == HF_TRANSPOSE) { // GGUF (out, in) rows back to Conv1D's (in, out)
            for (int64_t r = 0; r < rows; r++)
                for (int64_t c = 0; c < cols; c++) f[c * rows + r] = tmp[r * cols + c];
            ne_out[0] = rows, ne_out[1] = cols;
        } else {
            hn_hf_permute_rows(f, tmp, rows, cols, (int)(tr == HF_PERMUTE_Q ? n_head : n_head_kv), false);
        }
        free(tmp);
    }
    *out = f;
    return HN_OK;
}

static hn_status write_json(const char *dir, const char *name, json_t *j) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    if (json_dump_file(j, path, JSON_INDENT(2) | JSON_SORT_KEYS))
        return hn_fail(HN_ERR_IO, "%s: cannot write", path);
    return HN_OK;
}

static void write_readme(const hn_gguf *g, const char *dir) {
    hn_gguf_str lic, name;
    bool has_lic = !hn_gguf_get_str(g, "general.license", &lic), has_name = !hn_gguf_get_str(g, "general.name", &name);
    char path[4096];
    snprintf(path, sizeof path, "%s/README.md", dir);
    FILE *f = fopen(path, "w");
    if (!f) return;
    fprintf(f, "---\n");
    if (has_lic) fprintf(f, "license: %.*s\n", (int)(lic.len > 200 ? 200 : lic.len), lic.str);
    fprintf(f, "library_name: transformers\n---\n\n# %.*s\n\nExported by `hone export`.\n",
            has_name ? (int)(name.len > 200 ? 200 : name.len) : 5, has_name ? name.str : "model");
    fclose(f);
}

hn_status hn_hf_export(const hn_gguf *g, const char *dir) {
    hn_gguf_str a;
    if (hn_gguf_get_str(g, "general.architecture", &a))
        return hn_fail(HN_ERR_FORMAT, "%s: no general.architecture", g->path);
    char arch[32];
    snprintf(arch, sizeof arch, "%.*s", (int)(a.len < 31 ? a.len : 31), a.str);
    const hf_arch *ha = hf_arch_by_name(arch);
    if (!ha || strlen(arch) != a.len)
        return hn_fail(HN_ERR_UNSUPPORTED, "%s: architecture '%.*s' cannot be exported (hone exports llama, qwen2, "
                       "gpt2, bert)", g->path, (int)(a.len > 40 ? 40 : a.len), a.str);
    const hn_tensor *embd = hn_gguf_tensor(g, "token_embd.weight");
    if (!embd || embd->ndim != 2) return hn_fail(HN_ERR_FORMAT, "%s: no 2-D token_embd.weight", g->path);
    bool tied = ha->has_head && !hn_gguf_tensor(g, "output.weight");
    exporter E = {g, arch, json_object()};
    uint32_t n_head, n_head_kv;
    hn_status s = E.cfg ? config(&E, embd->ne[1], tied, &n_head, &n_head_kv) : HN_ERR_NOMEM;
    if (!s) s = write_json(dir, "config.json", E.cfg);
    json_decref(E.cfg);
    if (s) return s;
    hn_safetensors_writer *w = hn_safetensors_writer_create();
    float **bufs = hn_calloc(g->n_tensors + 1, sizeof *bufs, "export buffers");
    if (!w || !bufs) s = HN_ERR_NOMEM;
    if (!s) s = hn_safetensors_writer_set_meta(w, "format", "pt");
    size_t nb = 0;
    for (uint64_t i = 0; i < g->n_tensors && !s; i++) {
        const hn_tensor *t = &g->tensors[i];
        char name[256];
        hf_transform tr;
        if (!hf_map_from_gguf(ha, t->name, name, sizeof name, &tr)) {
            hn_warn("%s: tensor '%s' has no Hugging Face name for %s; not exported", g->path, t->name, arch);
            continue;
        }
        char full[300];
        // The head model classes' names: GPT2LMHeadModel keeps the blocks under "transformer."
        snprintf(full, sizeof full, "%s%s", !strcmp(arch, "gpt2") && strcmp(name, "lm_head.weight") ? "transformer." : "",
                 name);
        int64_t ne[HN_MAX_DIMS];
        if ((s = to_hf(t, tr, n_head, n_head_kv, &bufs[nb], ne))) break;
        s = hn_safetensors_writer_add(w, full, HN_F32, t->ndim, ne, bufs[nb++]);
    }
    // An encoder without token types (DistilBERT) exported as BertModel: one all-zero token type row.
    if (!s && !strcmp(arch, "bert") && !hn_gguf_tensor(g, "token_types.weight")) {
        int64_t ne[2] = {embd->ne[0], opt_u32(&E, "tokenizer.ggml.token_type_count", 1)};
        if (!(bufs[nb] = hn_calloc((size_t)(ne[0] * ne[1]), sizeof(float), "token types"))) s = HN_ERR_NOMEM;
        else s = hn_safetensors_writer_add(w, "embeddings.token_type_embeddings.weight", HN_F32, 2, ne, bufs[nb++]);
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    if (!s) s = hn_safetensors_writer_write(w, path);
    hn_safetensors_writer_destroy(w);
    for (size_t i = 0; i < nb; i++) free(bufs[i]);
    free(bufs);
    if (!s) write_readme(g, dir);
    return s;
}
