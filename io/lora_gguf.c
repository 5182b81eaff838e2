// io/lora_gguf.c — llama.cpp LoRA adapter GGUF (FORMATS.md section 4): general.type = adapter, adapter.type = lora,
// adapter.lora.alpha (f32), tensors <base>.lora_a (ne {in, r}) and <base>.lora_b (ne {r, out}); B rows already in
// GGUF order. hone adds adapter.hone.* keys that llama.cpp ignores: the exact config and the base record.
#define _GNU_SOURCE
#include "io/adapter.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

hn_status hn_lora_gguf_write(const hn_adapter *a, const char *path) {
    hn_gguf_writer *w = hn_gguf_writer_create();
    if (!w) return HN_ERR_NOMEM;
    const char **targets = NULL;
    hn_status s = HN_OK;
    // llama.cpp scales by alpha / r and knows no rsLoRA: alpha * sqrt(r) / r = alpha / sqrt(r).
    float cpp_alpha = a->use_rslora ? a->alpha * sqrtf((float)a->r) : a->alpha;
    if ((s = hn_gguf_writer_set_str(w, "general.architecture", a->base_arch ? a->base_arch : "llama")) ||
        (s = hn_gguf_writer_set_str(w, "general.type", "adapter")) ||
        (s = hn_gguf_writer_set_str(w, "adapter.type", "lora")) ||
        (s = hn_gguf_writer_set_f32(w, "adapter.lora.alpha", cpp_alpha)) ||
        (s = hn_gguf_writer_set_u32(w, "adapter.hone.r", (uint32_t)a->r)) ||
        (s = hn_gguf_writer_set_f32(w, "adapter.hone.lora_alpha", a->alpha)) ||
        (s = hn_gguf_writer_set_bool(w, "adapter.hone.use_rslora", a->use_rslora)) ||
        (s = hn_gguf_writer_set_f32(w, "adapter.hone.lora_dropout", a->dropout)))
        goto done;
    if (a->n_targets) {
        if (!(targets = hn_calloc((size_t)a->n_targets, sizeof *targets, "targets"))) {
            s = HN_ERR_NOMEM;
            goto done;
        }
        for (int i = 0; i < a->n_targets; i++) targets[i] = a->targets[i];
        if ((s = hn_gguf_writer_set_arr(w, "adapter.hone.target_modules", HN_GGUF_STRING, targets,
                                        (uint64_t)a->n_targets)))
            goto done;
    }
    if (a->base_name && (s = hn_gguf_writer_set_str(w, "adapter.hone.base_name", a->base_name))) goto done;
    if (a->base_hash && (s = hn_gguf_writer_set(w, "adapter.hone.base_hash", HN_GGUF_U64, &a->base_hash))) goto done;
    for (int i = 0; i < a->n_modules; i++) {
        const hn_lora_module *m = &a->modules[i];
        char name[96];
        snprintf(name, sizeof name, "blk.%d.%s.weight.lora_a", m->layer, hn_proj_gguf_name(m->proj));
        if ((s = hn_gguf_writer_add_tensor(w, name, HN_F32, 2, (int64_t[]){m->in, a->r}, m->a))) goto done;
        name[strlen(name) - 1] = 'b';
        if ((s = hn_gguf_writer_add_tensor(w, name, HN_F32, 2, (int64_t[]){a->r, m->out}, m->b))) goto done;
    }
    s = hn_gguf_writer_write(w, path);
done:
    free(targets);
    hn_gguf_writer_destroy(w);
    return s;
}

// "blk.N.<proj>.weight.lora_a" -> (N, proj, is_a). 1: a module; 0: a norm (skipped, as llama.cpp does); -1: other.
static int parse_name(const char *name, int *layer, hn_proj *proj, bool *is_a) {
    if (strncmp(name, "blk.", 4)) return -1;
    const char *p = name + 4;
    long v = 0;
    if (*p < '0' || *p > '9') return -1;
    while (*p >= '0' && *p <= '9' && v < 1000000) v = v * 10 + (*p++ - '0');
    if (*p++ != '.' || v >= 1000000) return -1;
    const char *end = strstr(p, ".weight.lora_");
    if (!end || (strcmp(end + 13, "a") && strcmp(end + 13, "b")) || end - p >= 32) return -1;
    char kind[32];
    memcpy(kind, p, (size_t)(end - p));
    kind[end - p] = 0;
    *is_a = end[13] == 'a';
    *layer = (int)v;
    if (!hn_proj_parse(kind, proj) || strcmp(kind, hn_proj_gguf_name(*proj)))
        return strstr(kind, "_norm") ? 0 : -1;
    return 1;
}

static hn_status want_str(const hn_gguf *g, const char *key, const char *want) {
    hn_gguf_str v;
    if (!hn_gguf_find(g, key)) return hn_fail(HN_ERR_FORMAT, "%s: key '%s' is missing (not a LoRA adapter GGUF)", g->path, key);
    hn_status s = hn_gguf_get_str(g, key, &v);
    if (s) return s;
    if (v.len != strlen(want) || memcmp(v.str, want, (size_t)v.len))
        return hn_fail(HN_ERR_FORMAT, "%s: '%s' is '%.*s', expected '%s'", g->path, key, (int)(v.len > 32 ? 32 : v.len),
                       v.str, want);
    return HN_OK;
}

static char *opt_str(const hn_gguf *g, const char *key, hn_status *s) {
    hn_gguf_str v;
    if (!hn_gguf_find(g, key) || (*s = hn_gguf_get_str(g, key, &v))) return NULL;
    char *p = malloc((size_t)v.len + 1);
    if (!p) *s = hn_fail(HN_ERR_NOMEM, "out of memory");
    else memcpy(p, v.str, (size_t)v.len), p[v.len] = 0;
    return p;
}

static hn_status read_modules(hn_adapter *a, const hn_gguf *g) {
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        const hn_tensor *t = &g->tensors[i];
        int layer;
        hn_proj proj;
        bool is_a;
        int kind = parse_name(t->name, &layer, &proj, &is_a);
        if (kind < 0)
            return hn_fail(HN_ERR_UNSUPPORTED, "%s: tensor '%s' is not blk.N.<projection>.weight.lora_a/lora_b", g->path,
                           t->name);
        if (!kind) {
            hn_warn("%s: tensor '%s' (a LoRA on a norm) is not supported; ignored", g->path, t->name);
            continue;
        }
        char other[96];
        snprintf(other, sizeof other, "%.*s%c", (int)strlen(t->name) - 1, t->name, is_a ? 'b' : 'a');
        const hn_tensor *o = hn_gguf_tensor(g, other);
        if (!o) return hn_fail(HN_ERR_FORMAT, "%s: '%s' has no matching '%s'", g->path, t->name, other);
        if (!is_a) continue;
        const hn_tensor *b = o;
        if (t->ndim != 2 || b->ndim != 2 || t->ne[1] != b->ne[0])
            return hn_fail(HN_ERR_FORMAT, "%s: '%s' (ne {%lld, %lld}) and its lora_b (ne {%lld, %lld}) do not share a "
                           "rank: expected lora_a ne {in, r}, lora_b ne {r, out}", g->path, t->name,
                           (long long)t->ne[0], (long long)t->ne[1], (long long)b->ne[0], (long long)b->ne[1]);
        if (t->ne[1] != a->r)
            return hn_fail(HN_ERR_UNSUPPORTED, "%s: '%s' has rank %lld but another module has rank %d; hone needs one rank",
                           g->path, t->name, (long long)t->ne[1], a->r);
        hn_lora_module *m;
        hn_status s = hn_adapter_add(a, layer, proj, t->ne[0], b->ne[1], &m);
        if (s) return s;
        hn_type_traits_of(t->type)->to_f32(t->data, m->a, hn_nelem(t));
        hn_type_traits_of(b->type)->to_f32(b->data, m->b, hn_nelem(b));
    }
    if (!a->n_modules) return hn_fail(HN_ERR_FORMAT, "%s: no LoRA tensors", g->path);
    return HN_OK;
}

hn_status hn_lora_gguf_read(hn_adapter **out, const char *path) {
    *out = NULL;
    hn_gguf g;
    hn_status s = hn_gguf_open(&g, path);
    if (s) return s;
    hn_adapter *a = NULL;
    if ((s = want_str(&g, "general.type", "adapter")) || (s = want_str(&g, "adapter.type", "lora"))) goto done;
    // Every name must be one llama.cpp's loader takes; the rank is the first lora_a's ne[1] (all must share it).
    int r = 0;
    for (uint64_t i = 0; i < g.n_tensors; i++) {
        int layer;
        hn_proj proj;
        bool is_a;
        int kind = parse_name(g.tensors[i].name, &layer, &proj, &is_a);
        if (kind < 0) {
            s = hn_fail(HN_ERR_UNSUPPORTED, "%s: tensor '%s' is not blk.N.<projection>.weight.lora_a/lora_b", path,
                        g.tensors[i].name);
            goto done;
        }
        if (kind == 1 && is_a && !r && g.tensors[i].ne[1] <= 65536) r = (int)g.tensors[i].ne[1];
    }
    if (!r) {
        s = hn_fail(HN_ERR_FORMAT, "%s: no LoRA tensors", path);
        goto done;
    }
    float alpha = 0, dropout = 0;
    bool rslora = false;
    if (hn_gguf_find(&g, "adapter.lora.alpha") && (s = hn_gguf_get_f32(&g, "adapter.lora.alpha", &alpha))) goto done;
    if (hn_gguf_find(&g, "adapter.hone.lora_alpha")) { // hone's own file: the exact config
        if ((s = hn_gguf_get_f32(&g, "adapter.hone.lora_alpha", &alpha)) ||
            (s = hn_gguf_get_bool(&g, "adapter.hone.use_rslora", &rslora)) ||
            (s = hn_gguf_get_f32(&g, "adapter.hone.lora_dropout", &dropout)))
            goto done;
    } else if (alpha == 0) {
        alpha = (float)r; // llama.cpp: no alpha means a scale of 1
    }
    const hn_gguf_kv *tk = hn_gguf_find(&g, "adapter.hone.target_modules");
    const char **targets = NULL;
    int n_targets = 0;
    if (tk && tk->type == HN_GGUF_ARRAY && tk->arr_type == HN_GGUF_STRING && tk->arr_n < 4096) {
        targets = calloc(tk->arr_n ? tk->arr_n : 1, sizeof *targets);
        for (uint64_t i = 0; targets && i < tk->arr_n; i++) {
            hn_gguf_str e = hn_gguf_arr_str(tk, i);
            char *p = malloc((size_t)e.len + 1);
            if (!p) break;
            memcpy(p, e.str, (size_t)e.len), p[e.len] = 0;
            targets[n_targets++] = p;
        }
    }
    s = hn_adapter_create(&a, r, alpha, rslora, dropout, targets, n_targets);
    for (int i = 0; i < n_targets; i++) free((char *)targets[i]);
    free(targets);
    if (s) goto done;
    if ((a->base_arch = opt_str(&g, "general.architecture", &s)), s) goto done;
    if ((a->base_name = opt_str(&g, "adapter.hone.base_name", &s)), s) goto done;
    const hn_gguf_kv *hk = hn_gguf_find(&g, "adapter.hone.base_hash");
    if (hk) {
        if (hk->type != HN_GGUF_U64) {
            s = hn_fail(HN_ERR_FORMAT, "%s: 'adapter.hone.base_hash' has type %s, expected u64", path,
                        hn_gguf_type_name(hk->type));
            goto done;
        }
        memcpy(&a->base_hash, hk->val, 8);
    }
    s = read_modules(a, &g);
done:
    hn_gguf_close(&g);
    if (s) hn_adapter_destroy(a);
    else *out = a;
    return s;
}
