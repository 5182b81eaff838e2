// serve/engine_adapters.c — adapters by name over the engine's model: read from any directory hn_method_load reads
// (or a LoRA GGUF), attached between two steps, their attachments marked as theirs (hn_linear_ext.owner) so that a
// batch applies each to its own requests' rows only; unloaded once no running request uses them.
#include "io/adapter.h"
#include "serve/engine_impl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

// ---- adapters

static bool is_file(const char *path, bool *dir) {
    struct stat st;
    if (stat(path, &st)) return false;
    *dir = S_ISDIR(st.st_mode);
    return true;
}

static char *join(const char *a, const char *b) {
    size_t n = strlen(a) + strlen(b) + 2;
    char *p = malloc(n);
    if (p) snprintf(p, n, "%s/%s", a, b);
    return p;
}

// Reads path as hn_engine_load_adapter says and attaches it to m.
static hn_status load_method(hn_model *m, const char *path, hn_method **out) {
    bool dir = false, d2;
    if (!is_file(path, &dir)) return hn_fail(HN_ERR_NOTFOUND, "%s: no such adapter file or directory", path);
    const char *gguf = NULL;
    char *sub = NULL, *g = NULL;
    hn_status st;
    if (!dir) {
        gguf = path;
    } else {
        char *cfg = join(path, "adapter_config.json"), *own = join(path, "hone_adapter.json");
        sub = join(path, "adapter"), g = join(path, "adapter.gguf");
        if (!cfg || !own || !sub || !g) {
            free(cfg), free(own), free(sub), free(g);
            return hn_fail(HN_ERR_NOMEM, "out of memory");
        }
        bool here = is_file(cfg, &d2) || is_file(own, &d2);
        free(cfg), free(own);
        if (here) {
            st = hn_method_load(out, m, path);
            goto done;
        }
        if (is_file(sub, &d2) && d2) {
            st = hn_method_load(out, m, sub);
            goto done;
        }
        if (!is_file(g, &d2)) {
            st = hn_fail(HN_ERR_ARG, "%s: a directory with neither adapter_config.json, hone_adapter.json, adapter/ "
                         "nor adapter.gguf", path);
            goto done;
        }
        gguf = g;
    }
    hn_adapter *a = NULL;
    if (!(st = hn_lora_gguf_read(&a, gguf)) && !(st = hn_adapter_check_base(a, &m->gguf, false)))
        st = hn_method_lora_from(out, m, a);
    hn_adapter_destroy(a);
done:
    free(sub), free(g);
    return st;
}

// Marks every attachment without an owner as a's (the engine refuses models with attachments of their own, so
// those are the ones a's load just made).
static void claim(hn_model *m, adapter *a) {
    for (int l = 0; l < m->hp.n_layer; l++)
        for (int p = 0; p < HN_PROJ_COUNT; p++) {
            hn_linear *lin = hn_method_linear(m, l, (hn_proj)p);
            for (hn_linear_ext *x = lin ? lin->ext : NULL; x; x = x->next)
                if (!x->owner) x->owner = a;
        }
    for (hn_model_ext *x = m->ext; x; x = x->next)
        if (!x->owner) x->owner = a, a->virt = x;
}

adapter *hn_engine_find_adapter(hn_engine *e, const char *name) {
    for (adapter *a = e->adapters; a; a = a->next)
        if (!strcmp(a->name, name) && !a->unloading) return a;
    return NULL;
}

hn_status hn_engine_load_adapter(hn_engine *e, const char *name, const char *path, float scale) {
    if (!name || !*name) return hn_fail(HN_ERR_ARG, "adapter %s: an empty name", path);
    pthread_mutex_lock(&e->mu);
    while (e->stepping) pthread_cond_wait(&e->step_cv, &e->mu);
    hn_status st = HN_OK;
    adapter *a = NULL;
    if (hn_engine_find_adapter(e, name)) {
        st = hn_fail(HN_ERR_ARG, "adapter '%s' is already loaded", name);
        goto out;
    }
    if (!(a = calloc(1, sizeof *a)) || !(a->name = strdup(name))) {
        st = hn_fail(HN_ERR_NOMEM, "out of memory");
        goto out;
    }
    if ((st = load_method(e->m, path, &a->me))) goto out;
    if (scale != 1.0f && (st = hn_method_set_scale(a->me, scale))) goto out;
    claim(e->m, a);
    a->id = ++e->next_adapter;
    a->next = NULL;
    adapter **p = &e->adapters;
    while (*p) p = &(*p)->next;
    *p = a;
    a = NULL;
out:
    if (a) {
        hn_method_destroy(a->me);
        free(a->name);
        free(a);
    }
    pthread_mutex_unlock(&e->mu);
    return st;
}

hn_status hn_engine_unload_adapter(hn_engine *e, const char *name) {
    pthread_mutex_lock(&e->mu);
    adapter *a = hn_engine_find_adapter(e, name);
    if (!a) {
        pthread_mutex_unlock(&e->mu);
        return hn_fail(HN_ERR_NOTFOUND, "adapter '%s' is not loaded", name);
    }
    a->unloading = true;
    pthread_cond_broadcast(&e->work_cv);
    for (;;) { // until the engine thread has freed it
        bool there = false;
        for (adapter *x = e->adapters; x; x = x->next) there |= x == a;
        if (!there) break;
        pthread_cond_wait(&e->step_cv, &e->mu);
    }
    pthread_mutex_unlock(&e->mu);
    return HN_OK;
}

hn_status hn_engine_adapter_names(hn_engine *e, char ***names, int *n) {
    pthread_mutex_lock(&e->mu);
    size_t bytes = 0;
    int k = 0;
    for (adapter *a = e->adapters; a; a = a->next)
        if (!a->unloading) bytes += strlen(a->name) + 1, k++;
    char **out = malloc((size_t)(k + 1) * sizeof *out + bytes);
    if (!out) {
        pthread_mutex_unlock(&e->mu);
        return hn_fail(HN_ERR_NOMEM, "out of memory");
    }
    char *at = (char *)(out + k + 1);
    k = 0;
    for (adapter *a = e->adapters; a; a = a->next)
        if (!a->unloading) {
            out[k++] = at;
            at = stpcpy(at, a->name) + 1;
        }
    out[k] = NULL;
    pthread_mutex_unlock(&e->mu);
    *names = out, *n = k;
    return HN_OK;
}

