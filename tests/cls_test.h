// tests/cls_test.h — what the classification methods' tests share: hand-built labelled sets, temporary run
// directories, and lines of ../shared/data/rt-polarity for the short real-model checks.
#ifndef HN_CLS_TEST_H
#define HN_CLS_TEST_H

#include "train/classify.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RT "../shared/data/rt-polarity/rt-polarity."

// FNV-1a over every tensor's bytes: the model's weights as mapped (a method must leave them as they were).
static inline uint64_t model_hash(const hn_model *m) {
    uint64_t h = 1469598103934665603ULL;
    for (uint64_t i = 0; i < m->gguf.n_tensors; i++) {
        const unsigned char *p = m->gguf.tensors[i].data;
        for (size_t j = 0; j < m->gguf.tensors[i].nbytes; j++) h = (h ^ p[j]) * 1099511628211ULL;
    }
    return h;
}

static inline char *sdup(const char *s) {
    char *d = malloc(strlen(s) + 1);
    strcpy(d, s);
    return d;
}

// A hand-built data set (the loader is train/cls_data.c's; these tests do not need it); hn_cls_data_deinit frees it.
static inline void data_init(hn_cls_data *d, const char *const *texts, const int *labels, int n,
                             const char *const *classes, int nc) {
    memset(d, 0, sizeof *d);
    d->texts = calloc(n, sizeof *d->texts);
    d->labels = calloc(n, sizeof *d->labels);
    d->classes = calloc(nc, sizeof *d->classes);
    for (int i = 0; i < n; i++) d->texts[i] = sdup(texts[i]), d->labels[i] = labels[i];
    for (int c = 0; c < nc; c++) d->classes[c] = sdup(classes[c]);
    d->n = n, d->n_classes = nc;
}

// A new directory /tmp/hone_cls_NAME_XXXXXX (malloc'd path), or NULL.
static inline char *tmpdir_for(const char *name) {
    char tmpl[128];
    snprintf(tmpl, sizeof tmpl, "/tmp/hone_cls_%s_XXXXXX", name);
    char *d = sdup(tmpl);
    if (!mkdtemp(d)) {
        free(d);
        return NULL;
    }
    return d;
}

// n lines of a file after skip (malloc'd, trailing space and newline cut); the number read.
static inline int read_lines(const char *path, int skip, int n, char **out) {
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    char line[4096];
    int k = 0;
    for (int i = 0; k < n && fgets(line, sizeof line, f); i++) {
        if (i < skip) continue;
        size_t len = strlen(line);
        while (len && (line[len - 1] == '\n' || line[len - 1] == ' ')) line[--len] = 0;
        out[k++] = sdup(line);
    }
    fclose(f);
    return k;
}

#endif
