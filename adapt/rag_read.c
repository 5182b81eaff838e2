// adapt/rag_read.c — what hone index reads (adapt/rag_impl.h): the paths named (folders walked for .txt, .md,
// .jsonl and SQuAD .json files), each file read, checked (empty, binary, not UTF-8) and split into documents with
// their metadata and content hash.
#define _GNU_SOURCE // asprintf, strdup
#include "adapt/rag_impl.h"

#include <dirent.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const char *ext_of(const char *path) {
    const char *slash = strrchr(path, '/'), *dot = strrchr(path, '.');
    return dot && (!slash || dot > slash) ? dot + 1 : "";
}

static bool indexable(const char *path) {
    const char *e = ext_of(path);
    return !strcmp(e, "txt") || !strcmp(e, "md") || !strcmp(e, "jsonl") || !strcmp(e, "json");
}

static void docs_free(hn_rag_doc *d, int n) {
    for (int i = 0; i < n; i++) free(d[i].source), free(d[i].text), free(d[i].meta), free(d[i].spans);
    free(d);
}

void hn_rag_inputs_free(hn_rag_inputs *v) {
    for (int i = 0; i < v->n; i++) free(v->in[i].path), docs_free(v->in[i].docs, v->in[i].n_docs);
    free(v->in);
    hn_docstore_strings_free(v->dirs, v->n_dirs);
}

static hn_status add_path(hn_rag_inputs *v, const char *path) {
    if (v->n == v->cap) {
        hn_rag_input *g = realloc(v->in, (size_t)(v->cap = v->cap ? 2 * v->cap : 16) * sizeof *g);
        if (!g) return hn_fail(HN_ERR_NOMEM, "out of memory listing files");
        v->in = g;
    }
    v->in[v->n] = (hn_rag_input){.path = strdup(path)};
    return v->in[v->n++].path ? HN_OK : hn_fail(HN_ERR_NOMEM, "out of memory listing files");
}

static int by_name(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

// The indexable files under dir, in name order (hidden entries skipped).
static hn_status walk(hn_rag_inputs *v, const char *dir) {
    DIR *dp = opendir(dir);
    if (!dp) return hn_fail(HN_ERR_IO, "%s: cannot read the folder", dir);
    char **names = NULL;
    int n = 0, cap = 0;
    hn_status s = HN_OK;
    struct dirent *e;
    while (!s && (e = readdir(dp))) {
        if (e->d_name[0] == '.') continue;
        if (n == cap) {
            char **g = realloc(names, (size_t)(cap = cap ? 2 * cap : 32) * sizeof *g);
            if (!g) s = hn_fail(HN_ERR_NOMEM, "out of memory listing %s", dir);
            else names = g;
        }
        if (!s && asprintf(&names[n], "%s/%s", dir, e->d_name) < 0) s = HN_ERR_NOMEM;
        else if (!s) n++;
    }
    closedir(dp);
    if (!s && n) qsort(names, (size_t)n, sizeof *names, by_name);
    for (int i = 0; i < n && !s; i++) {
        struct stat sb;
        if (stat(names[i], &sb) != 0) continue; // a dangling link
        if (S_ISDIR(sb.st_mode)) s = walk(v, names[i]);
        else if (S_ISREG(sb.st_mode) && indexable(names[i])) s = add_path(v, names[i]);
    }
    hn_docstore_strings_free(names, n);
    return s;
}

// A path as the database names it: without "./" in front and without a trailing '/'.
static char *clean_path(const char *p) {
    while (p[0] == '.' && p[1] == '/') p += 2;
    char *c = strdup(p);
    size_t n = c ? strlen(c) : 0;
    while (n > 1 && c[n - 1] == '/') c[--n] = 0;
    return c;
}

hn_status hn_rag_inputs_expand(hn_rag_inputs *v, const char *const *paths, int n, bool remove) {
    hn_status s = HN_OK;
    for (int i = 0; i < n && !s; i++) {
        char *p = clean_path(paths[i]);
        struct stat sb;
        if (!p) s = HN_ERR_NOMEM;
        else if (stat(p, &sb) != 0 && !remove) s = hn_fail(HN_ERR_IO, "%s: no such file or folder", p);
        else if (!remove && S_ISDIR(sb.st_mode)) {
            char **g = realloc(v->dirs, (size_t)(v->n_dirs + 1) * sizeof *g);
            if (!g) s = HN_ERR_NOMEM;
            else (v->dirs = g)[v->n_dirs++] = strdup(p);
            if (!s) s = walk(v, p);
        } else if (!remove && !indexable(p))
            s = hn_fail(HN_ERR_ARG, "%s: expected a .txt, .md, .jsonl or SQuAD .json file", p);
        else s = add_path(v, p);
        free(p);
    }
    return s;
}

static hn_status add_doc(hn_rag_input *in, char *source, const char *text, size_t len, char *meta) {
    hn_rag_doc *g = realloc(in->docs, (size_t)(in->n_docs + 1) * sizeof *g);
    char *t = hn_alloc(len + 1, "a document");
    if (!g || !t || !source || !meta) {
        free(t), free(source), free(meta);
        if (g) in->docs = g;
        return hn_fail(HN_ERR_NOMEM, "out of memory reading %s", in->path);
    }
    in->docs = g;
    memcpy(t, text, len);
    t[len] = 0;
    uint64_t h = hn_fnv1a(hn_fnv1a(HN_FNV1A_INIT, t, len + 1), meta, strlen(meta));
    hn_rag_doc *d = &in->docs[in->n_docs++];
    *d = (hn_rag_doc){.source = source, .text = t, .len = len, .meta = meta};
    snprintf(d->hash, sizeof d->hash, "%016llx", (unsigned long long)h);
    return HN_OK;
}

static char *sourcef(const char *path, const char *id) {
    char *s = NULL;
    return asprintf(&s, "%s#%s", path, id) < 0 ? NULL : s;
}

// One {"id"?, "text", ...} object a line; the other fields become the metadata.
static hn_status read_jsonl(hn_rag_input *in, const char *buf, size_t len) {
    int line = 0;
    hn_status s = HN_OK;
    for (size_t i = 0; i < len && !s;) {
        const char *e = memchr(buf + i, '\n', len - i);
        size_t n = e ? (size_t)(e - (buf + i)) : len - i;
        line++;
        size_t a = i;
        i += n + 1;
        while (n && (buf[a + n - 1] == '\r' || buf[a + n - 1] == ' ' || buf[a + n - 1] == '\t')) n--;
        if (!n) continue;
        json_error_t je;
        json_t *o = json_loadb(buf + a, n, 0, &je), *t = json_object_get(o, "text"), *id = json_object_get(o, "id");
        char idbuf[32];
        const char *ids = json_is_string(id) ? json_string_value(id) : NULL;
        if (json_is_integer(id)) snprintf(idbuf, sizeof idbuf, "%lld", (long long)json_integer_value(id)), ids = idbuf;
        if (!json_is_object(o))
            s = hn_fail(HN_ERR_FORMAT, "%s:%d: expected a JSON object ({\"id\", \"text\", ...})%s%s", in->path, line,
                        o ? "" : ": ", o ? "" : je.text);
        else if (!json_is_string(t) || !json_string_length(t))
            s = hn_fail(HN_ERR_FORMAT, "%s:%d: \"text\" is %s; expected a non-empty string", in->path, line,
                        json_is_string(t) ? "empty" : t ? "not a string" : "missing");
        else if (id && !ids)
            s = hn_fail(HN_ERR_FORMAT, "%s:%d: \"id\" is neither a string nor an integer", in->path, line);
        else {
            if (!ids) snprintf(idbuf, sizeof idbuf, "%d", line), ids = idbuf; // the line number
            json_t *meta = json_deep_copy(o);
            json_object_del(meta, "text"), json_object_del(meta, "id");
            char *m = json_dumps(meta, JSON_COMPACT | JSON_SORT_KEYS);
            json_decref(meta);
            for (int k = 0; k < in->n_docs && !s; k++)
                if (!strcmp(in->docs[k].source + strlen(in->path) + 1, ids))
                    s = hn_fail(HN_ERR_FORMAT, "%s:%d: \"id\" '%s' was already used by another record", in->path,
                                line, ids);
            if (!s) s = add_doc(in, sourcef(in->path, ids), json_string_value(t), json_string_length(t), m);
            else free(m);
        }
        json_decref(o);
    }
    return s;
}

// SQuAD: a document a paragraph (its context), FILE#ARTICLE.PARAGRAPH, the article's title as metadata.
static hn_status read_squad(hn_rag_input *in, const char *buf, size_t len) {
    json_error_t je;
    json_t *root = json_loadb(buf, len, 0, &je), *data = json_object_get(root, "data");
    hn_status s = HN_OK;
    if (!root) s = hn_fail(HN_ERR_FORMAT, "%s:%d: not JSON: %s", in->path, je.line, je.text);
    else if (!json_is_array(data))
        s = hn_fail(HN_ERR_FORMAT, "%s: expected SQuAD-format JSON ({\"data\": [{\"paragraphs\": [{\"context\": "
                                   "...}]}]}); one document a line goes in .jsonl", in->path);
    for (size_t a = 0; !s && a < json_array_size(data); a++) {
        json_t *art = json_array_get(data, a), *ps = json_object_get(art, "paragraphs");
        if (!json_is_array(ps)) {
            s = hn_fail(HN_ERR_FORMAT, "%s: data[%zu].paragraphs is missing; expected an array", in->path, a);
            break;
        }
        for (size_t p = 0; !s && p < json_array_size(ps); p++) {
            json_t *ctx = json_object_get(json_array_get(ps, p), "context");
            if (!json_is_string(ctx) || !json_string_length(ctx)) {
                s = hn_fail(HN_ERR_FORMAT, "%s: data[%zu].paragraphs[%zu].context is missing or empty; expected a "
                                           "string", in->path, a, p);
                break;
            }
            char id[48];
            snprintf(id, sizeof id, "%zu.%zu", a, p);
            json_t *meta = json_object();
            json_t *title = json_object_get(art, "title");
            if (json_is_string(title)) json_object_set(meta, "title", title);
            char *m = json_dumps(meta, JSON_COMPACT | JSON_SORT_KEYS);
            json_decref(meta);
            s = add_doc(in, sourcef(in->path, id), json_string_value(ctx), json_string_length(ctx), m);
        }
    }
    if (!s && !in->n_docs) s = hn_fail(HN_ERR_FORMAT, "%s: no paragraph in data; expected at least one", in->path);
    json_decref(root);
    return s;
}

// Reads and checks one file into its documents.
hn_status hn_rag_input_read(hn_rag_input *in) {
    hn_map mp = {0};
    hn_status s = hn_map_open(&mp, in->path);
    if (s) return s;
    const char *buf = (const char *)mp.data;
    size_t len = mp.size, bad;
    size_t ws = 0;
    while (ws < len && (buf[ws] == ' ' || buf[ws] == '\n' || buf[ws] == '\r' || buf[ws] == '\t')) ws++;
    const char *nul = len ? memchr(buf, 0, len) : NULL;
    const char *e = ext_of(in->path);
    if (ws == len) s = hn_fail(HN_ERR_FORMAT, "%s: the file is empty; expected text to index", in->path);
    else if (nul)
        s = hn_fail(HN_ERR_FORMAT, "%s: a binary file (a NUL byte at offset %zu); expected UTF-8 text", in->path,
                    (size_t)(nul - buf));
    else if ((bad = hn_utf8_check(buf, len)) != len) {
        int line = 1;
        for (size_t i = 0; i < bad; i++) line += buf[i] == '\n';
        s = hn_fail(HN_ERR_FORMAT, "%s:%d: not valid UTF-8 (byte offset %zu); expected UTF-8 text", in->path, line,
                    bad);
    } else if (!strcmp(e, "jsonl")) s = read_jsonl(in, buf, len);
    else if (!strcmp(e, "json")) s = read_squad(in, buf, len);
    else s = add_doc(in, strdup(in->path), buf, len, strdup("{}"));
    hn_map_close(&mp);
    return s;
}
