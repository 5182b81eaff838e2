// io/adapter.c — the layout-independent LoRA adapter: modules, scale, and the base record (content hash, check).
#define _GNU_SOURCE
#include "io/adapter.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const hf_names[HN_PROJ_COUNT] = {"q_proj", "k_proj", "v_proj", "o_proj",
                                                    "gate_proj", "up_proj", "down_proj", "c_attn"};
static const char *const gguf_names[HN_PROJ_COUNT] = {"attn_q", "attn_k", "attn_v", "attn_output",
                                                      "ffn_gate", "ffn_up", "ffn_down", "attn_qkv"};
_Static_assert(HN_PROJ_COUNT == 8, "one name per projection");

const char *hn_proj_hf_name(hn_proj p) { return (unsigned)p < HN_PROJ_COUNT ? hf_names[p] : "?"; }
const char *hn_proj_gguf_name(hn_proj p) { return (unsigned)p < HN_PROJ_COUNT ? gguf_names[p] : "?"; }

bool hn_proj_parse(const char *name, hn_proj *out) {
    for (int p = 0; p < HN_PROJ_COUNT; p++)
        if (!strcmp(name, hf_names[p]) || !strcmp(name, gguf_names[p])) {
            *out = (hn_proj)p;
            return true;
        }
    return false;
}

hn_status hn_adapter_create(hn_adapter **out, int r, float alpha, bool use_rslora, float dropout,
                            const char *const *targets, int n_targets) {
    *out = NULL;
    if (r < 1 || r > 65536 || !isfinite(alpha) || !(dropout >= 0 && dropout < 1) || n_targets < 0)
        return hn_fail(HN_ERR_ARG, "LoRA adapter: rank %d, alpha %g, dropout %g: expected rank 1..65536, a finite "
                       "alpha and dropout in [0, 1)", r, (double)alpha, (double)dropout);
    hn_adapter *a = hn_calloc(1, sizeof *a, "LoRA adapter");
    if (!a) return HN_ERR_NOMEM;
    *a = (hn_adapter){.r = r, .alpha = alpha, .use_rslora = use_rslora, .dropout = dropout};
    if (n_targets && !(a->targets = hn_calloc((size_t)n_targets, sizeof *a->targets, "LoRA targets"))) {
        free(a);
        return HN_ERR_NOMEM;
    }
    for (int i = 0; i < n_targets; i++) {
        if (!(a->targets[i] = strdup(targets[i]))) {
            hn_adapter_destroy(a);
            return hn_fail(HN_ERR_NOMEM, "LoRA adapter: out of memory");
        }
        a->n_targets = i + 1;
    }
    *out = a;
    return HN_OK;
}

void hn_adapter_destroy(hn_adapter *a) {
    if (!a) return;
    for (int i = 0; i < a->n_modules; i++) free(a->modules[i].a), free(a->modules[i].b);
    for (int i = 0; i < a->n_targets; i++) free(a->targets[i]);
    free(a->modules);
    free(a->targets);
    free(a->base_name);
    free(a->base_arch);
    free(a);
}

static int key_cmp(int layer, hn_proj proj, const hn_lora_module *m) {
    return layer != m->layer ? (layer < m->layer ? -1 : 1) : (proj > m->proj) - (proj < m->proj);
}

hn_lora_module *hn_adapter_find(const hn_adapter *a, int layer, hn_proj proj) {
    int lo = 0, hi = a->n_modules;
    while (lo < hi) {
        int mid = (lo + hi) / 2, c = key_cmp(layer, proj, &a->modules[mid]);
        if (!c) return &a->modules[mid];
        if (c < 0) hi = mid;
        else lo = mid + 1;
    }
    return NULL;
}

hn_status hn_adapter_add(hn_adapter *a, int layer, hn_proj proj, int64_t in, int64_t out, hn_lora_module **mod) {
    if (mod) *mod = NULL;
    if (layer < 0 || (unsigned)proj >= HN_PROJ_COUNT || in < 1 || out < 1 || in > (1 << 20) || out > (1 << 20))
        return hn_fail(HN_ERR_ARG, "LoRA adapter: module layer %d %s with in %lld, out %lld is out of range", layer,
                       hn_proj_hf_name(proj), (long long)in, (long long)out);
    if (hn_adapter_find(a, layer, proj))
        return hn_fail(HN_ERR_FORMAT, "LoRA adapter: layer %d %s appears twice", layer, hn_proj_hf_name(proj));
    hn_lora_module *n = realloc(a->modules, (size_t)(a->n_modules + 1) * sizeof *n);
    if (!n) return hn_fail(HN_ERR_NOMEM, "LoRA adapter: out of memory");
    a->modules = n;
    int at = a->n_modules;
    while (at > 0 && key_cmp(layer, proj, &n[at - 1]) < 0) at--;
    hn_lora_module m = {.layer = layer, .proj = proj, .in = in, .out = out};
    m.a = hn_calloc((size_t)a->r * (size_t)in, sizeof(float), "LoRA A");
    m.b = hn_calloc((size_t)out * (size_t)a->r, sizeof(float), "LoRA B");
    if (!m.a || !m.b) {
        free(m.a), free(m.b);
        return HN_ERR_NOMEM;
    }
    memmove(n + at + 1, n + at, (size_t)(a->n_modules - at) * sizeof *n);
    n[at] = m;
    a->n_modules++;
    if (mod) *mod = &n[at];
    return HN_OK;
}

float hn_adapter_scale(const hn_adapter *a) {
    return a->use_rslora ? a->alpha / sqrtf((float)a->r) : a->alpha / (float)a->r;
}

// ---- the base record ----

static uint64_t fnv(uint64_t h, const void *p, size_t n) {
    const unsigned char *s = p;
    for (size_t i = 0; i < n; i++) h = (h ^ s[i]) * 0x100000001b3ull;
    return h;
}

static int by_name(const void *x, const void *y) {
    return strcmp((*(const hn_tensor *const *)x)->name, (*(const hn_tensor *const *)y)->name);
}

hn_status hn_adapter_base_hash(const hn_gguf *base, uint64_t *out) {
    *out = 0;
    uint64_t h = 0xcbf29ce484222325ull;
    hn_gguf_str arch = {"", 0};
    if (hn_gguf_find(base, "general.architecture")) hn_gguf_get_str(base, "general.architecture", &arch);
    h = fnv(h, arch.str, (size_t)arch.len);
    const hn_tensor **ts = hn_calloc(base->n_tensors ? (size_t)base->n_tensors : 1, sizeof *ts, "base hash");
    float *row = NULL;
    if (!ts) return HN_ERR_NOMEM;
    for (uint64_t i = 0; i < base->n_tensors; i++) ts[i] = &base->tensors[i];
    qsort(ts, (size_t)base->n_tensors, sizeof *ts, by_name);
    hn_status s = HN_OK;
    for (uint64_t i = 0; i < base->n_tensors && !s; i++) {
        const hn_tensor *t = ts[i];
        h = fnv(h, t->name, strlen(t->name) + 1);
        h = fnv(h, t->ne, sizeof t->ne);
        const hn_type_traits *tt = hn_type_traits_of(t->type);
        size_t rb;
        int64_t rows = t->ne[1] * t->ne[2] * t->ne[3];
        if (!tt || !tt->to_f32 || !hn_row_bytes(t->type, t->ne[0], &rb) || !rows || !t->ne[0]) continue;
        float *nr = realloc(row, (size_t)t->ne[0] * sizeof *row);
        if (!nr) {
            s = hn_fail(HN_ERR_NOMEM, "base hash: out of memory");
            break;
        }
        row = nr;
        int64_t pick[2] = {0, rows - 1};
        for (int k = 0; k < (rows > 1 ? 2 : 1); k++) {
            tt->to_f32((const uint8_t *)t->data + (size_t)pick[k] * rb, row, t->ne[0]);
            h = fnv(h, row, (size_t)t->ne[0] * sizeof *row);
        }
    }
    free(row);
    free(ts);
    if (!s) *out = h ? h : 1; // 0 means unknown
    return s;
}

static char *dup_str(hn_gguf_str s) {
    char *p = malloc((size_t)s.len + 1);
    if (p) memcpy(p, s.str, (size_t)s.len), p[s.len] = 0;
    return p;
}

hn_status hn_adapter_set_base(hn_adapter *a, const hn_gguf *base) {
    hn_gguf_str name = {"", 0}, arch = {"", 0};
    if (hn_gguf_find(base, "general.name")) hn_gguf_get_str(base, "general.name", &name);
    if (hn_gguf_find(base, "general.architecture")) hn_gguf_get_str(base, "general.architecture", &arch);
    free(a->base_name), free(a->base_arch);
    a->base_name = name.len ? dup_str(name) : NULL;
    a->base_arch = arch.len ? dup_str(arch) : NULL;
    if ((name.len && !a->base_name) || (arch.len && !a->base_arch)) return hn_fail(HN_ERR_NOMEM, "out of memory");
    return hn_adapter_base_hash(base, &a->base_hash);
}

hn_status hn_adapter_check_base(const hn_adapter *a, const hn_gguf *base, bool allow_other_weights) {
    const char *an = a->base_name ? a->base_name : "an unnamed model";
    hn_gguf_str arch = {"", 0};
    if (hn_gguf_find(base, "general.architecture")) hn_gguf_get_str(base, "general.architecture", &arch);
    if (a->base_arch && (strlen(a->base_arch) != arch.len || memcmp(a->base_arch, arch.str, (size_t)arch.len)))
        return hn_fail(HN_ERR_ARG, "the adapter was trained on %s (architecture %s) but %s is architecture '%.*s'", an,
                       a->base_arch, base->path, (int)(arch.len > 64 ? 64 : arch.len), arch.str);
    for (int i = 0; i < a->n_modules; i++) {
        const hn_lora_module *m = &a->modules[i];
        char name[96];
        snprintf(name, sizeof name, "blk.%d.%s.weight", m->layer, hn_proj_gguf_name(m->proj));
        const hn_tensor *t = hn_gguf_tensor(base, name);
        if (!t)
            return hn_fail(HN_ERR_ARG, "the adapter adapts %s, which %s does not have (trained on %s)", name,
                           base->path, an);
        if (t->ne[0] != m->in || t->ne[1] != m->out || t->ne[2] != 1 || t->ne[3] != 1)
            return hn_fail(HN_ERR_ARG, "the adapter's %s is {%lld, %lld} but %s has {%lld, %lld}: trained on %s, "
                           "another model", name, (long long)m->in, (long long)m->out, base->path,
                           (long long)t->ne[0], (long long)t->ne[1], an);
    }
    if (!a->base_hash) return HN_OK;
    uint64_t h;
    hn_status s = hn_adapter_base_hash(base, &h);
    if (s) return s;
    if (h == a->base_hash) return HN_OK;
    if (allow_other_weights) {
        hn_warn("the adapter was trained on %s (weights %016llx) and %s has other weights (%016llx); applying it anyway",
                an, (unsigned long long)a->base_hash, base->path, (unsigned long long)h);
        return HN_OK;
    }
    return hn_fail(HN_ERR_ARG, "the adapter was trained on %s (weights %016llx) but %s has other weights (%016llx): "
                   "a different model, or the same one quantized differently", an,
                   (unsigned long long)a->base_hash, base->path, (unsigned long long)h);
}
