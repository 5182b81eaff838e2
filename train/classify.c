// train/classify.c — the classification methods by name, the run directory's classify.json, and the default
// options (train/classify.h).
//
// The registry refers to every method through a weak symbol, so that it links whatever methods the library holds:
// a method whose file is not built is simply absent from the list. (A weak reference alone does not pull a member
// out of a static archive; the CLI links libhone whole, see CMakeLists.txt.)
//
// classify.json records the base model the way io/adapter.h's adapters do (name, architecture, the content hash of
// hn_adapter_base_hash) plus the shapes a head depends on, and hn_cls_run_read refuses a model that is not that base.
#include "io/adapter.h"
#include "train/classify.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

extern const hn_cls_method hn_cls_feature __attribute__((weak));
extern const hn_cls_method hn_cls_head __attribute__((weak));
extern const hn_cls_method hn_cls_last_k __attribute__((weak));
extern const hn_cls_method hn_cls_gradual __attribute__((weak));
extern const hn_cls_method hn_cls_bitfit __attribute__((weak));
extern const hn_cls_method hn_cls_full __attribute__((weak));
extern const hn_cls_method hn_cls_lora __attribute__((weak));
extern const hn_cls_method hn_cls_icl __attribute__((weak));
// train/cls_peft.c: the other parameter-efficient methods of adapt/method.h
extern const hn_cls_method hn_cls_dora __attribute__((weak));
extern const hn_cls_method hn_cls_ia3 __attribute__((weak));
extern const hn_cls_method hn_cls_prompt_tuning __attribute__((weak));
extern const hn_cls_method hn_cls_p_tuning __attribute__((weak));
extern const hn_cls_method hn_cls_prefix_tuning __attribute__((weak));
extern const hn_cls_method hn_cls_adapter_houlsby __attribute__((weak));
extern const hn_cls_method hn_cls_adapter_pfeiffer __attribute__((weak));

hn_cls_options hn_cls_default_options(void) {
    return (hn_cls_options){.seed = 42, .max_len = 128, .shots = 4, .batch = 16, .weight_decay = 0.0f, .lora_r = 8,
                            .lora_alpha = 16.0f, .last_k = 2, .unfreeze_every = 50};
}

void hn_cls_progress(const hn_cls_options *o, int64_t done, int64_t total) {
    if (o && o->progress) o->progress(o->progress_user, done, total);
}

void hn_cls_resolve_options(const hn_cls_method *me, hn_cls_options *o) {
    if (o->epochs == 0) o->epochs = me && me->default_epochs ? me->default_epochs : 3;
    if (o->lr == 0) o->lr = me && me->default_lr > 0 ? me->default_lr : 1e-3f;
}

// The linked methods, in the order --help lists them.
int hn_cls_method_list(const hn_cls_method **out, int cap) {
    const hn_cls_method *all[] = {&hn_cls_feature, &hn_cls_head,          &hn_cls_last_k,          &hn_cls_gradual,
                                  &hn_cls_bitfit,  &hn_cls_full,          &hn_cls_lora,            &hn_cls_dora,
                                  &hn_cls_ia3,     &hn_cls_prompt_tuning, &hn_cls_p_tuning,        &hn_cls_prefix_tuning,
                                  &hn_cls_adapter_houlsby, &hn_cls_adapter_pfeiffer, &hn_cls_icl};
    int n = 0;
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        if (all[i]) {
            if (n < cap) out[n] = all[i];
            n++;
        }
    return n;
}

const hn_cls_method *hn_cls_method_find(const char *name) {
    const hn_cls_method *ms[32];
    int n = hn_cls_method_list(ms, 32);
    for (int i = 0; i < n; i++)
        if (name && !strcmp(ms[i]->name, name)) return ms[i];
    char known[512] = "";
    size_t k = 0;
    for (int i = 0; i < n && k < sizeof known; i++)
        k += (size_t)snprintf(known + k, sizeof known - k, "%s%s", i ? ", " : "", ms[i]->name);
    hn_fail(HN_ERR_NOTFOUND, "classification method '%s': expected one of %s", name ? name : "(none)",
            n ? known : "(none: this build has no classification method)");
    return NULL;
}

// The model's record: general.name / general.architecture as the file has them (or ""), shapes, content hash.
typedef struct {
    char name[128], arch[64];
    int64_t n_vocab, n_embd, n_layer;
    uint64_t hash;
} base_record;

static hn_status record_of(const hn_model *m, base_record *r) {
    memset(r, 0, sizeof *r);
    hn_gguf_str s;
    if (hn_gguf_find(&m->gguf, "general.name") && !hn_gguf_get_str(&m->gguf, "general.name", &s))
        snprintf(r->name, sizeof r->name, "%.*s", (int)(s.len > 127 ? 127 : s.len), s.str);
    if (hn_gguf_find(&m->gguf, "general.architecture") && !hn_gguf_get_str(&m->gguf, "general.architecture", &s))
        snprintf(r->arch, sizeof r->arch, "%.*s", (int)(s.len > 63 ? 63 : s.len), s.str);
    r->n_vocab = m->hp.n_vocab, r->n_embd = m->hp.n_embd, r->n_layer = m->hp.n_layer;
    return hn_adapter_base_hash(&m->gguf, &r->hash);
}

static char *json_path(const char *dir) {
    size_t n = strlen(dir) + 16;
    char *p = hn_alloc(n, "path");
    if (p) snprintf(p, n, "%s/classify.json", dir);
    return p;
}

hn_status hn_cls_run_write(const char *dir, const hn_model *m, const char *method, const hn_cls_data *d,
                           const hn_cls_options *o) {
    hn_status s = hn_mkdir_p(dir);
    if (s) return s;
    base_record r;
    s = record_of(m, &r);
    if (s) return s;
    char hash[17];
    snprintf(hash, sizeof hash, "%016llx", (unsigned long long)r.hash);
    json_t *j = json_object(), *cl = json_array(), *lw = json_array();
    for (int c = 0; c < d->n_classes; c++) json_array_append_new(cl, json_string(d->classes[c]));
    for (int i = 0; o->label_words && i < o->n_label_words; i++)
        json_array_append_new(lw, json_string(o->label_words[i]));
    json_object_set_new(j, "task", json_string("classify"));
    json_object_set_new(j, "method", json_string(method));
    json_object_set_new(j, "classes", cl);
    json_object_set_new(j, "base", json_pack("{s:s, s:s, s:I, s:I, s:I, s:s}", "name", r.name, "architecture", r.arch,
                                             "n_vocab", (json_int_t)r.n_vocab, "n_embd", (json_int_t)r.n_embd,
                                             "n_layer", (json_int_t)r.n_layer, "hash", hash));
    json_object_set_new(j, "data", json_pack("{s:s, s:i}", "source", d->source ? d->source : "", "n", d->n));
    json_object_set_new(j, "options",
                        json_pack("{s:I, s:i, s:i, s:b, s:o, s:i, s:i, s:f, s:f, s:i, s:f}", "seed",
                                  (json_int_t)o->seed, "max_len", o->max_len, "shots", o->shots, "nearest", o->nearest,
                                  "label_words", lw, "epochs", o->epochs, "batch", o->batch, "lr", (double)o->lr,
                                  "weight_decay", (double)o->weight_decay, "lora_r", o->lora_r, "lora_alpha",
                                  (double)o->lora_alpha));
    char *text = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(7));
    json_decref(j);
    char *path = json_path(dir);
    if (!text || !path) {
        free(text), free(path);
        return hn_fail(HN_ERR_NOMEM, "classify.json: out of memory");
    }
    hn_afile f;
    s = hn_afile_open(&f, path);
    if (!s) s = hn_afile_write(&f, text, strlen(text));
    if (!s) s = hn_afile_write(&f, "\n", 1);
    if (!s) s = hn_afile_commit(&f);
    else hn_afile_abort(&f);
    free(text), free(path);
    return s;
}

#define BAD(field, what) (s = hn_fail(HN_ERR_FORMAT, "%s: field '%s': expected %s", path, field, what))

hn_status hn_cls_run_read(const char *dir, const hn_model *m, char **method, char ***classes, int *n_classes) {
    *method = NULL, *classes = NULL, *n_classes = 0;
    char *path = json_path(dir);
    if (!path) return HN_ERR_NOMEM;
    json_error_t e;
    json_t *j = json_load_file(path, 0, &e);
    hn_status s = HN_OK;
    if (!j) {
        struct stat st;
        s = stat(path, &st) ? hn_fail(HN_ERR_IO, "%s: cannot read (is %s a classification run directory, made by "
                                      "hone train --task classify -o DIR?)", path, dir)
                            : hn_fail(HN_ERR_FORMAT, "%s:%d: invalid JSON: %s", path, e.line, e.text);
        free(path);
        return s;
    }
    json_t *task = json_object_get(j, "task"), *me = json_object_get(j, "method"), *cl = json_object_get(j, "classes");
    json_t *base = json_object_get(j, "base");
    if (!json_is_object(j)) BAD("(top level)", "an object");
    else if (!json_is_string(task) || strcmp(json_string_value(task), "classify")) BAD("task", "\"classify\"");
    else if (!json_is_string(me) || !json_string_length(me)) BAD("method", "a method name");
    else if (!json_is_array(cl) || json_array_size(cl) < 2) BAD("classes", "an array of two or more class names");
    else if (!json_is_object(base)) BAD("base", "the base model's record");
    for (size_t i = 0; !s && i < json_array_size(cl); i++)
        if (!json_is_string(json_array_get(cl, i))) BAD("classes", "strings");
    // The base: the same architecture and shapes, and the same weights when the run knows their hash.
    base_record r;
    if (!s) s = record_of(m, &r);
    if (!s) {
        const char *bname = json_string_value(json_object_get(base, "name")), *barch =
                                json_string_value(json_object_get(base, "architecture")),
                   *bhash = json_string_value(json_object_get(base, "hash"));
        json_int_t bv = json_integer_value(json_object_get(base, "n_vocab")),
                   be = json_integer_value(json_object_get(base, "n_embd")),
                   bl = json_integer_value(json_object_get(base, "n_layer"));
        if (!bname) bname = "";
        if (!barch || !bhash) BAD("base", "architecture and hash");
        else if (strcmp(barch, r.arch) || bv != r.n_vocab || be != r.n_embd || bl != r.n_layer)
            s = hn_fail(HN_ERR_ARG, "%s was trained on %s (%s, vocab %lld, width %lld, %lld layers) but %s is %s (%s, "
                        "vocab %lld, width %lld, %lld layers): another model", dir, *bname ? bname : "an unnamed model",
                        barch, (long long)bv, (long long)be, (long long)bl, m->path ? m->path : "the model",
                        *r.name ? r.name : "unnamed", r.arch, (long long)r.n_vocab, (long long)r.n_embd,
                        (long long)r.n_layer);
        else {
            char hash[17];
            snprintf(hash, sizeof hash, "%016llx", (unsigned long long)r.hash);
            if (strcmp(bhash, "0000000000000000") && strcmp(bhash, hash))
                s = hn_fail(HN_ERR_ARG, "%s was trained on %s (weights %s) but %s has other weights (%s): a different "
                            "model, or the same one quantized differently", dir, *bname ? bname : "an unnamed model",
                            bhash, m->path ? m->path : "the model", hash);
        }
    }
    if (!s) {
        int n = (int)json_array_size(cl);
        char **c = hn_calloc((size_t)n, sizeof *c, "classes");
        char *mn = strdup(json_string_value(me));
        if (!c || !mn) s = hn_fail(HN_ERR_NOMEM, "%s: out of memory", path);
        for (int i = 0; !s && i < n; i++)
            if (!(c[i] = strdup(json_string_value(json_array_get(cl, (size_t)i)))))
                s = hn_fail(HN_ERR_NOMEM, "%s: out of memory", path);
        if (s) {
            for (int i = 0; c && i < n; i++) free(c[i]);
            free(c), free(mn);
        } else
            *method = mn, *classes = c, *n_classes = n;
    }
    json_decref(j);
    free(path);
    return s;
}
