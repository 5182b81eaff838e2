// io/peft.c — PEFT LoRA directories (FORMATS.md 5.1-5.3): adapter_config.json + adapter_model.safetensors with
// names base_model.model.model.layers.N.{self_attn,mlp}.<proj>.lora_{A,B}.weight; B rows of q/k in HF order.
// GPT-2's modules are transformer.h.N.attn.c_attn (the fused qkv), attn.c_proj (o), mlp.c_fc (up) and mlp.c_proj
// (down): Conv1D layers, for which PEFT sets fan_in_fan_out (its A and B are shaped as for a Linear all the same).
#define _GNU_SOURCE
#include "io/adapter.h"
#include "io/hf.h"
#include "io/safetensors.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define PREFIX "base_model.model."
enum { SUFFIX = 14 }; // strlen(".lora_A.weight")

static int head_count(hn_proj p, int n_head, int n_head_kv) {
    return p == HN_PROJ_Q ? n_head : p == HN_PROJ_K ? n_head_kv : 0;
}

// ---- reading ----

typedef struct {
    const char *path;
    json_t *cfg;
} cfg_reader;

static hn_status bad_key(const cfg_reader *c, const char *key, const char *want) {
    return hn_fail(HN_ERR_FORMAT, "%s: '%s': expected %s", c->path, key, want);
}

// Keys that change what the adapter computes and that hone does not apply: refused rather than ignored.
static hn_status check_unsupported(const cfg_reader *c) {
    // fan_in_fan_out is checked against the modules in read_tensors: GPT-2's Conv1D layers have it set
    static const char *const must_be_false[] = {"use_dora", "lora_bias", "use_qalora"};
    for (size_t i = 0; i < sizeof must_be_false / sizeof must_be_false[0]; i++) {
        json_t *v = json_object_get(c->cfg, must_be_false[i]);
        if (v && !json_is_false(v) && !json_is_null(v))
            return hn_fail(HN_ERR_UNSUPPORTED, "%s: '%s' is set; hone does not support it", c->path, must_be_false[i]);
    }
    static const char *const must_be_empty[] = {"rank_pattern", "alpha_pattern", "modules_to_save",
                                                "layer_replication", "trainable_token_indices", "target_parameters"};
    for (size_t i = 0; i < sizeof must_be_empty / sizeof must_be_empty[0]; i++) {
        json_t *v = json_object_get(c->cfg, must_be_empty[i]);
        if (v && !json_is_null(v) && !((json_is_object(v) && !json_object_size(v)) ||
                                        (json_is_array(v) && !json_array_size(v))))
            return hn_fail(HN_ERR_UNSUPPORTED, "%s: '%s' is set; hone does not support it", c->path, must_be_empty[i]);
    }
    json_t *bias = json_object_get(c->cfg, "bias");
    if (bias && !json_is_null(bias) && (!json_is_string(bias) || strcmp(json_string_value(bias), "none")))
        return hn_fail(HN_ERR_UNSUPPORTED, "%s: 'bias' must be \"none\"; hone does not train biases", c->path);
    return HN_OK;
}

static hn_status read_config(const char *dir, hn_adapter **out, bool *fan_in_fan_out) {
    char path[4096];
    snprintf(path, sizeof path, "%s/adapter_config.json", dir);
    json_error_t err;
    cfg_reader c = {.path = path, .cfg = json_load_file(path, JSON_REJECT_DUPLICATES, &err)};
    if (!c.cfg) {
        struct stat st;
        if (stat(path, &st) != 0) return hn_fail(HN_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
        return hn_fail(HN_ERR_FORMAT, "%s: line %d: %s", path, err.line, err.text);
    }
    hn_status s = HN_OK;
    json_t *pt = json_object_get(c.cfg, "peft_type"), *r = json_object_get(c.cfg, "r"),
           *alpha = json_object_get(c.cfg, "lora_alpha"), *drop = json_object_get(c.cfg, "lora_dropout"),
           *rs = json_object_get(c.cfg, "use_rslora"), *tm = json_object_get(c.cfg, "target_modules"),
           *base = json_object_get(c.cfg, "base_model_name_or_path"), *fifo = json_object_get(c.cfg, "fan_in_fan_out");
    *fan_in_fan_out = json_is_true(fifo);
    const char **targets = NULL;
    size_t n_targets = 0;
    if (!json_is_object(c.cfg)) s = hn_fail(HN_ERR_FORMAT, "%s: expected a JSON object", path);
    else if (!json_is_string(pt)) s = bad_key(&c, "peft_type", "a string (\"LORA\")");
    else if (strcmp(json_string_value(pt), "LORA"))
        s = hn_fail(HN_ERR_UNSUPPORTED, "%s: peft_type '%.32s': hone reads LORA adapters", path, json_string_value(pt));
    else if (!r) s = hn_fail(HN_ERR_FORMAT, "%s: required key 'r' is missing", path);
    else if (!json_is_integer(r) || json_integer_value(r) < 1 || json_integer_value(r) > 65536)
        s = bad_key(&c, "r", "an integer rank from 1 to 65536");
    else if (alpha && !json_is_number(alpha)) s = bad_key(&c, "lora_alpha", "a number");
    else if (drop && !json_is_null(drop) && (!json_is_number(drop) || !(json_number_value(drop) >= 0) ||
                                             json_number_value(drop) >= 1))
        s = bad_key(&c, "lora_dropout", "a number in [0, 1)");
    else if (rs && !json_is_boolean(rs)) s = bad_key(&c, "use_rslora", "true or false");
    else if (fifo && !json_is_null(fifo) && !json_is_boolean(fifo)) s = bad_key(&c, "fan_in_fan_out", "true or false");
    else if (base && !json_is_null(base) && !json_is_string(base))
        s = bad_key(&c, "base_model_name_or_path", "a string or null");
    else if (tm && !json_is_null(tm) && !json_is_string(tm) && !json_is_array(tm))
        s = bad_key(&c, "target_modules", "a list of module names or a string");
    else s = check_unsupported(&c);
    if (!s && json_is_array(tm)) {
        n_targets = json_array_size(tm);
        targets = calloc(n_targets ? n_targets : 1, sizeof *targets);
        if (!targets) s = hn_fail(HN_ERR_NOMEM, "out of memory");
        for (size_t i = 0; !s && i < n_targets; i++) {
            targets[i] = json_string_value(json_array_get(tm, i));
            if (!targets[i]) s = bad_key(&c, "target_modules", "a list of strings");
        }
    } else if (!s && json_is_string(tm)) {
        if (!(targets = malloc(sizeof *targets))) s = hn_fail(HN_ERR_NOMEM, "out of memory");
        else targets[0] = json_string_value(tm), n_targets = 1;
    }
    if (!s)
        s = hn_adapter_create(out, (int)json_integer_value(r), alpha ? (float)json_number_value(alpha) : 8.0f,
                              json_is_true(rs), drop && !json_is_null(drop) ? (float)json_number_value(drop) : 0.0f,
                              targets, (int)n_targets);
    if (!s && json_is_string(base) && !((*out)->base_name = strdup(json_string_value(base))))
        s = hn_fail(HN_ERR_NOMEM, "out of memory");
    free(targets);
    json_decref(c.cfg);
    return s;
}

// GPT-2: "transformer.h.N.attn.c_attn" -> (N, qkv); attn.c_proj -> o, mlp.c_fc -> up, mlp.c_proj -> down.
static bool parse_gpt2_module(const char *path, int *layer, hn_proj *proj) {
    const char *p = path + 14; // strlen("transformer.h.")
    long v = 0;
    if (*p < '0' || *p > '9') return false;
    while (*p >= '0' && *p <= '9' && v < 1000000) v = v * 10 + (*p++ - '0');
    if (v >= 1000000) return false;
    if (!strcmp(p, ".attn.c_attn")) *proj = HN_PROJ_QKV;
    else if (!strcmp(p, ".attn.c_proj")) *proj = HN_PROJ_O;
    else if (!strcmp(p, ".mlp.c_fc")) *proj = HN_PROJ_UP;
    else if (!strcmp(p, ".mlp.c_proj")) *proj = HN_PROJ_DOWN;
    else return false;
    *layer = (int)v;
    return true;
}

// "model.layers.N.self_attn.q_proj" -> (N, q), or GPT-2's paths (*gpt2 set); false for anything else (embeddings,
// lm_head, other paths).
static bool parse_module(const char *path, int *layer, hn_proj *proj, bool *gpt2) {
    const char *p = path;
    *gpt2 = !strncmp(p, "transformer.h.", 14);
    if (*gpt2) return parse_gpt2_module(path, layer, proj);
    if (strncmp(p, "model.layers.", 13)) return false;
    p += 13;
    long v = 0;
    if (*p < '0' || *p > '9') return false;
    while (*p >= '0' && *p <= '9' && v < 1000000) v = v * 10 + (*p++ - '0');
    if (v >= 1000000) return false;
    const char *kind;
    if (!strncmp(p, ".self_attn.", 11)) kind = p + 11;
    else if (!strncmp(p, ".mlp.", 5)) kind = p + 5;
    else return false;
    if (!hn_proj_parse(kind, proj) || strcmp(kind, hn_proj_hf_name(*proj)) || *proj == HN_PROJ_QKV) return false;
    if ((*proj <= HN_PROJ_O) != (p[1] == 's')) return false; // q/k/v/o under self_attn, the rest under mlp
    *layer = (int)v;
    return true;
}

static hn_status to_f32(const hn_tensor *t, float *dst) {
    const hn_type_traits *tt = hn_type_traits_of(t->type);
    tt->to_f32(t->data, dst, hn_nelem(t));
    return HN_OK;
}

static hn_status read_tensors(hn_adapter *a, const char *path, const hn_safetensors *st, int n_head, int n_head_kv,
                              bool fan_in_fan_out) {
    int n_gpt2 = 0, n_llama = 0; // modules of each naming
    // First pass: every tensor must be an A or B of a module hone knows; A gives the module its in, B its out.
    for (size_t i = 0; i < st->n_tensors; i++) {
        const char *name = st->names[i];
        size_t n = strlen(name), pl = strlen(PREFIX);
        bool is_a = n > pl + SUFFIX && !strcmp(name + n - SUFFIX, ".lora_A.weight");
        bool is_b = n > pl + SUFFIX && !strcmp(name + n - SUFFIX, ".lora_B.weight");
        char mod[256];
        int layer;
        hn_proj proj;
        bool gpt2;
        if (strncmp(name, PREFIX, pl) || (!is_a && !is_b) || n - pl - SUFFIX >= sizeof mod)
            return hn_fail(HN_ERR_UNSUPPORTED, "%s: tensor '%s' is not a LoRA A/B weight of a Llama linear layer", path,
                           name);
        memcpy(mod, name + pl, n - pl - SUFFIX);
        mod[n - pl - SUFFIX] = 0;
        if (!parse_module(mod, &layer, &proj, &gpt2))
            return hn_fail(HN_ERR_UNSUPPORTED, "%s: tensor '%s': hone adapts q/k/v/o/gate/up/down projections (GPT-2: "
                           "c_attn, c_proj, c_fc) only", path, name);
        if (gpt2 ? n_llama : n_gpt2)
            return hn_fail(HN_ERR_FORMAT, "%s: tensor '%s' mixes GPT-2 and Llama module names", path, name);
        if (fan_in_fan_out && !gpt2)
            return hn_fail(HN_ERR_UNSUPPORTED, "%s: 'fan_in_fan_out' is set for '%s', a Linear layer; hone supports it "
                           "only for GPT-2's Conv1D layers", path, mod);
        n_gpt2 += gpt2 && is_a, n_llama += !gpt2 && is_a;
        const hn_tensor *t = &st->tensors[i];
        if (t->ndim != 2 || (is_a ? t->ne[1] : t->ne[0]) != a->r)
            return hn_fail(HN_ERR_FORMAT, "%s: tensor '%s' has shape [%lld, %lld], expected %s with r = %d", path, name,
                           (long long)t->ne[1], (long long)t->ne[0], is_a ? "[r, in]" : "[out, r]", a->r);
        if (!is_a) continue;
        char bname[300];
        snprintf(bname, sizeof bname, "%.*s.lora_B.weight", (int)(n - SUFFIX), name);
        const hn_tensor *b = hn_safetensors_tensor(st, bname);
        if (!b) return hn_fail(HN_ERR_FORMAT, "%s: '%s' has no matching lora_B", path, name);
        hn_lora_module *m;
        hn_status s = hn_adapter_add(a, layer, proj, t->ne[0], b->ne[1], &m);
        if (s) {
            char msg[512];
            snprintf(msg, sizeof msg, "%s", hn_errmsg());
            return hn_fail(s, "%s: %s", path, msg);
        }
        to_f32(t, m->a);
        int heads = head_count(proj, n_head, n_head_kv);
        if (heads && (heads < 1 || m->out % (2 * heads)))
            return hn_fail(HN_ERR_ARG, "%s: '%s' has %lld outputs, not a multiple of 2 x %d heads", path, bname,
                           (long long)m->out, heads);
        if (!heads) {
            to_f32(b, m->b);
            continue;
        }
        float *tmp = hn_alloc((size_t)m->out * (size_t)a->r * sizeof *tmp, "LoRA B");
        if (!tmp) return HN_ERR_NOMEM;
        to_f32(b, tmp);
        hn_hf_permute_rows(m->b, tmp, m->out, a->r, heads, true);
        free(tmp);
    }
    // Every B needs its A.
    for (size_t i = 0; i < st->n_tensors; i++) {
        const char *name = st->names[i];
        size_t n = strlen(name);
        char aname[300];
        if (strcmp(name + n - SUFFIX, ".lora_B.weight")) continue;
        snprintf(aname, sizeof aname, "%.*s.lora_A.weight", (int)(n - SUFFIX), name);
        if (!hn_safetensors_tensor(st, aname)) return hn_fail(HN_ERR_FORMAT, "%s: '%s' has no matching lora_A", path, name);
    }
    if (!a->n_modules) return hn_fail(HN_ERR_FORMAT, "%s: no LoRA tensors", path);
    return HN_OK;
}

hn_status hn_peft_read(hn_adapter **out, const char *dir, int n_head, int n_head_kv) {
    *out = NULL;
    hn_adapter *a;
    bool fan_in_fan_out = false;
    hn_status s = read_config(dir, &a, &fan_in_fan_out);
    if (s) return s;
    char path[4096];
    snprintf(path, sizeof path, "%s/adapter_model.safetensors", dir);
    hn_safetensors st;
    if ((s = hn_safetensors_open(&st, path))) {
        hn_adapter_destroy(a);
        return s;
    }
    s = read_tensors(a, path, &st, n_head, n_head_kv, fan_in_fan_out);
    const char *hash = hn_safetensors_meta(&st, "hone.base_hash"), *arch = hn_safetensors_meta(&st, "hone.base_architecture"),
               *name = hn_safetensors_meta(&st, "hone.base_name");
    if (!s && hash) {
        char *end;
        errno = 0;
        a->base_hash = strtoull(hash, &end, 16);
        if (errno || *end || !*hash) s = hn_fail(HN_ERR_FORMAT, "%s: metadata hone.base_hash '%.20s': expected hex", path, hash);
    }
    if (!s && arch && !(a->base_arch = strdup(arch))) s = hn_fail(HN_ERR_NOMEM, "out of memory");
    if (!s && name) {
        free(a->base_name);
        if (!(a->base_name = strdup(name))) s = hn_fail(HN_ERR_NOMEM, "out of memory");
    }
    hn_safetensors_close(&st);
    if (s) hn_adapter_destroy(a);
    else *out = a;
    return s;
}

// ---- writing ----

// GPT-2's module path of a projection (NULL: GPT-2 has no such module).
static const char *gpt2_module(hn_proj p) {
    return p == HN_PROJ_QKV ? "attn.c_attn" : p == HN_PROJ_O ? "attn.c_proj" : p == HN_PROJ_UP ? "mlp.c_fc"
         : p == HN_PROJ_DOWN ? "mlp.c_proj" : NULL;
}

// An adapter for GPT-2 (by its base record, or by a fused c_attn module) is written with GPT-2's names.
static bool is_gpt2(const hn_adapter *a) {
    if (a->base_arch) return !strcmp(a->base_arch, "gpt2");
    for (int i = 0; i < a->n_modules; i++)
        if (a->modules[i].proj == HN_PROJ_QKV) return true;
    return false;
}

static hn_status write_config(const hn_adapter *a, const char *dir, bool gpt2, const char *task_type,
                              const char *const *modules_to_save, int n_mts) {
    json_t *c = json_object(), *tm = json_array();
    if (a->n_targets)
        for (int i = 0; i < a->n_targets; i++) json_array_append_new(tm, json_string(a->targets[i]));
    else // the projections present, in hone's order
        for (int p = 0; p < HN_PROJ_COUNT; p++)
            for (int i = 0; i < a->n_modules; i++)
                if (a->modules[i].proj == (hn_proj)p) {
                    const char *name = gpt2 ? strchr(gpt2_module((hn_proj)p), '.') + 1 : hn_proj_hf_name((hn_proj)p);
                    bool seen = false; // GPT-2's c_proj is two projections
                    for (size_t k = 0; k < json_array_size(tm); k++)
                        seen |= !strcmp(json_string_value(json_array_get(tm, k)), name);
                    if (!seen) json_array_append_new(tm, json_string(name));
                    break;
                }
    // The keys PEFT's LoraConfig writes that matter for loading; the rest take PEFT's defaults.
    json_object_set_new(c, "peft_type", json_string("LORA"));
    json_object_set_new(c, "task_type", json_string(task_type));
    json_object_set_new(c, "r", json_integer(a->r));
    json_object_set_new(c, "lora_alpha", a->alpha == floorf(a->alpha) && fabsf(a->alpha) < 1e9f
                                             ? json_integer((json_int_t)a->alpha) : json_real(a->alpha));
    json_object_set_new(c, "lora_dropout", json_real(a->dropout));
    json_object_set_new(c, "target_modules", tm);
    json_object_set_new(c, "use_rslora", json_boolean(a->use_rslora));
    json_object_set_new(c, "use_dora", json_false());
    json_object_set_new(c, "bias", json_string("none"));
    json_object_set_new(c, "lora_bias", json_false());
    json_object_set_new(c, "fan_in_fan_out", json_boolean(gpt2)); // GPT-2's Conv1D layers: PEFT sets it
    json_object_set_new(c, "inference_mode", json_true());
    json_object_set_new(c, "init_lora_weights", json_true());
    json_object_set_new(c, "base_model_name_or_path", a->base_name ? json_string(a->base_name) : json_null());
    json_object_set_new(c, "revision", json_null());
    json_t *mts = n_mts ? json_array() : json_null();
    for (int i = 0; i < n_mts; i++) json_array_append_new(mts, json_string(modules_to_save[i]));
    json_object_set_new(c, "modules_to_save", mts);
    json_object_set_new(c, "layers_to_transform", json_null());
    json_object_set_new(c, "layers_pattern", json_null());
    json_object_set_new(c, "rank_pattern", json_object());
    json_object_set_new(c, "alpha_pattern", json_object());
    char *text = json_dumps(c, JSON_INDENT(2) | JSON_SORT_KEYS);
    json_decref(c);
    char path[4096];
    snprintf(path, sizeof path, "%s/adapter_config.json", dir);
    if (!text) return hn_fail(HN_ERR_ARG, "%s: cannot encode (a target or base name that is not UTF-8?)", path);
    hn_afile f;
    hn_status s = hn_afile_open(&f, path);
    if (!s) s = hn_afile_write(&f, text, strlen(text));
    if (!s) s = hn_afile_write(&f, "\n", 1);
    if (!s) s = hn_afile_commit(&f);
    else hn_afile_abort(&f);
    free(text);
    return s;
}

hn_status hn_peft_write(const hn_adapter *a, const char *dir, int n_head, int n_head_kv) {
    hn_status s0 = hn_mkdir_p(dir);
    if (s0) return s0;
    hn_safetensors_writer *w = hn_safetensors_writer_create();
    if (!w) return HN_ERR_NOMEM;
    float **hf_b = hn_calloc(a->n_modules ? (size_t)a->n_modules : 1, sizeof *hf_b, "LoRA B");
    hn_status s = hf_b ? HN_OK : HN_ERR_NOMEM;
    bool gpt2 = is_gpt2(a);
    for (int i = 0; !s && i < a->n_modules; i++) {
        const hn_lora_module *m = &a->modules[i];
        char name[256];
        if (gpt2 && !gpt2_module(m->proj)) {
            s = hn_fail(HN_ERR_ARG, "%s: layer %d %s: GPT-2 has no such module", dir, m->layer,
                        hn_proj_hf_name(m->proj));
            break;
        }
        if (!gpt2 && m->proj == HN_PROJ_QKV) {
            s = hn_fail(HN_ERR_ARG, "%s: layer %d c_attn: a fused qkv module in an adapter whose base is %s", dir,
                        m->layer, a->base_arch);
            break;
        }
        if (gpt2)
            snprintf(name, sizeof name, PREFIX "transformer.h.%d.%s.lora_A.weight", m->layer, gpt2_module(m->proj));
        else
            snprintf(name, sizeof name, PREFIX "model.layers.%d.%s.%s.lora_A.weight", m->layer,
                     m->proj <= HN_PROJ_O ? "self_attn" : "mlp", hn_proj_hf_name(m->proj));
        if ((s = hn_safetensors_writer_add(w, name, HN_F32, 2, (int64_t[]){m->in, a->r}, m->a))) break;
        const float *b = m->b;
        int heads = head_count(m->proj, n_head, n_head_kv);
        if (heads) { // back to HF's row order
            if (heads < 1 || m->out % (2 * heads)) {
                s = hn_fail(HN_ERR_ARG, "%s: layer %d %s has %lld outputs, not a multiple of 2 x %d heads", dir,
                            m->layer, hn_proj_hf_name(m->proj), (long long)m->out, heads);
                break;
            }
            if (!(hf_b[i] = hn_alloc((size_t)m->out * (size_t)a->r * sizeof(float), "LoRA B"))) {
                s = HN_ERR_NOMEM;
                break;
            }
            hn_hf_permute_rows(hf_b[i], m->b, m->out, a->r, heads, false);
            b = hf_b[i];
        }
        memcpy(name + strlen(name) - SUFFIX, ".lora_B.weight", SUFFIX + 1);
        s = hn_safetensors_writer_add(w, name, HN_F32, 2, (int64_t[]){a->r, m->out}, b);
    }
    char hash[32];
    snprintf(hash, sizeof hash, "%016llx", (unsigned long long)a->base_hash);
    if (!s) s = hn_safetensors_writer_set_meta(w, "format", "pt");
    if (!s && a->base_hash) s = hn_safetensors_writer_set_meta(w, "hone.base_hash", hash);
    if (!s && a->base_arch) s = hn_safetensors_writer_set_meta(w, "hone.base_architecture", a->base_arch);
    if (!s && a->base_name) s = hn_safetensors_writer_set_meta(w, "hone.base_name", a->base_name);
    char path[4096];
    snprintf(path, sizeof path, "%s/adapter_model.safetensors", dir);
    if (!s) s = hn_safetensors_writer_write(w, path);
    hn_safetensors_writer_destroy(w);
    for (int i = 0; hf_b && i < a->n_modules; i++) free(hf_b[i]);
    free(hf_b);
    if (!s) s = write_config(a, dir, gpt2, "CAUSAL_LM", NULL, 0);
    return s;
}

hn_status hn_peft_write_config(const hn_adapter *a, const char *dir, const char *task_type,
                               const char *const *modules_to_save, int n_mts) {
    return write_config(a, dir, is_gpt2(a), task_type, modules_to_save, n_mts);
}
