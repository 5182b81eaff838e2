// adapt/rag_index.c — building and updating a retrieval database (adapt/rag.h hn_rag_index, `hone index`): files
// read and checked, split into documents, chunked, embedded, committed one file at a time, then the vector index
// brought up to date and written.
#define _GNU_SOURCE // strdup
#include "adapt/rag_impl.h"

#include <dirent.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

typedef struct {
    char *source;      // FILE, or FILE#ID for a record
    char *text;        // malloc'd
    size_t len;
    char *meta;        // a JSON object
    char hash[17];
    hn_rag_span *spans;
    int n_spans;
    bool unchanged;
} doc;

typedef struct {
    char *path;
    doc *docs;
    int n_docs;
} input;

typedef struct {
    input *in;
    int n, cap;
    char **dirs; // folders named: a file indexed from one that is gone is removed
    int n_dirs;
} inputs;

hn_rag_index_params hn_rag_index_default_params(void) {
    return (hn_rag_index_params){.kind = HN_VINDEX_KIND_COUNT, .overlap = -1};
}

static const char *ext_of(const char *path) {
    const char *slash = strrchr(path, '/'), *dot = strrchr(path, '.');
    return dot && (!slash || dot > slash) ? dot + 1 : "";
}

static bool indexable(const char *path) {
    const char *e = ext_of(path);
    return !strcmp(e, "txt") || !strcmp(e, "md") || !strcmp(e, "jsonl") || !strcmp(e, "json");
}

static void docs_free(doc *d, int n) {
    for (int i = 0; i < n; i++) free(d[i].source), free(d[i].text), free(d[i].meta), free(d[i].spans);
    free(d);
}

static void inputs_free(inputs *v) {
    for (int i = 0; i < v->n; i++) free(v->in[i].path), docs_free(v->in[i].docs, v->in[i].n_docs);
    free(v->in);
    hn_docstore_strings_free(v->dirs, v->n_dirs);
}

static hn_status add_path(inputs *v, const char *path) {
    if (v->n == v->cap) {
        input *g = realloc(v->in, (size_t)(v->cap = v->cap ? 2 * v->cap : 16) * sizeof *g);
        if (!g) return hn_fail(HN_ERR_NOMEM, "out of memory listing files");
        v->in = g;
    }
    v->in[v->n] = (input){.path = strdup(path)};
    return v->in[v->n++].path ? HN_OK : hn_fail(HN_ERR_NOMEM, "out of memory listing files");
}

static int by_name(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

// The indexable files under dir, in name order (hidden entries skipped).
static hn_status walk(inputs *v, const char *dir) {
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

static hn_status expand(inputs *v, const char *const *paths, int n, bool remove) {
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

static hn_status add_doc(input *in, char *source, const char *text, size_t len, char *meta) {
    doc *g = realloc(in->docs, (size_t)(in->n_docs + 1) * sizeof *g);
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
    doc *d = &in->docs[in->n_docs++];
    *d = (doc){.source = source, .text = t, .len = len, .meta = meta};
    snprintf(d->hash, sizeof d->hash, "%016llx", (unsigned long long)h);
    return HN_OK;
}

static char *sourcef(const char *path, const char *id) {
    char *s = NULL;
    return asprintf(&s, "%s#%s", path, id) < 0 ? NULL : s;
}

// One {"id"?, "text", ...} object a line; the other fields become the metadata.
static hn_status read_jsonl(input *in, const char *buf, size_t len) {
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
static hn_status read_squad(input *in, const char *buf, size_t len) {
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
static hn_status read_input(input *in) {
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

// The settings a database is built with, written the first time and checked every time after.
static hn_status settings(hn_docstore *d, const char *dir, hn_model *m, const char *name,
                          const hn_rag_index_params *p, hn_vindex_kind *kind, int *chunk, int *overlap) {
    char *have_kind = NULL, *have_chunk = NULL, *have_overlap = NULL, *id = NULL;
    hn_status s = hn_docstore_get(d, "index_kind", &have_kind);
    if (!s) s = hn_docstore_get(d, "chunk_tokens", &have_chunk);
    if (!s) s = hn_docstore_get(d, "overlap", &have_overlap);
    int limit = hn_model_embed_max_tokens(m) - 2; // [CLS] and [SEP]
    if (!s && !have_kind) { // a new database
        *kind = p->kind == HN_VINDEX_KIND_COUNT ? HN_VINDEX_FLAT : p->kind;
        *chunk = p->chunk_tokens > 0 ? p->chunk_tokens : 256;
        if (*chunk > limit) {
            if (p->chunk_tokens > 0)
                hn_warn("%s embeds at most %d tokens a text: chunks of %d tokens instead of %d", name,
                        limit, limit, *chunk);
            *chunk = limit;
        }
        *overlap = p->overlap >= 0 ? p->overlap : 32;
        if (*overlap >= *chunk / 2)
            return hn_fail(HN_ERR_ARG, "--overlap %d: expected under half of the chunk's %d tokens", *overlap,
                           *chunk);
        char buf[3][32];
        snprintf(buf[0], sizeof buf[0], "%d", (int)m->hp.n_embd);
        snprintf(buf[1], sizeof buf[1], "%d", *chunk);
        snprintf(buf[2], sizeof buf[2], "%d", *overlap);
        s = hn_rag_model_id(m, &id);
        if (!s) s = hn_docstore_begin(d);
        if (!s) {
            const char *kv[][2] = {{"embed_model", name}, {"embed_id", id}, {"embed_dim", buf[0]},
                                   {"index_kind", hn_vindex_kind_name(*kind)}, {"chunk_tokens", buf[1]},
                                   {"overlap", buf[2]}};
            for (size_t i = 0; i < sizeof kv / sizeof kv[0] && !s; i++) s = hn_docstore_set(d, kv[i][0], kv[i][1]);
            if (!s) s = hn_docstore_commit(d);
            else hn_docstore_rollback(d);
        }
    } else if (!s) {
        *kind = hn_vindex_kind_parse(have_kind);
        *chunk = have_chunk ? atoi(have_chunk) : 0;
        *overlap = have_overlap ? atoi(have_overlap) : -1;
        s = hn_rag_check_model(d, dir, m, name);
        if (!s && *kind == HN_VINDEX_KIND_COUNT)
            s = hn_fail(HN_ERR_FORMAT, "%s: settings.index_kind is '%s'; expected flat, hnsw or ivfpq",
                        hn_docstore_path(d), have_kind);
        else if (!s && p->kind != HN_VINDEX_KIND_COUNT && p->kind != *kind)
            s = hn_fail(HN_ERR_ARG, "%s: a %s index; --index %s needs a new --db", dir, have_kind,
                        hn_vindex_kind_name(p->kind));
        else if (!s && (*chunk < 16 || *overlap < 0))
            s = hn_fail(HN_ERR_FORMAT, "%s: settings.chunk_tokens / overlap are '%s' / '%s'; expected numbers",
                        hn_docstore_path(d), have_chunk ? have_chunk : "(missing)",
                        have_overlap ? have_overlap : "(missing)");
        else if (!s && ((p->chunk_tokens > 0 && p->chunk_tokens != *chunk) || (p->overlap >= 0 && p->overlap != *overlap)))
            s = hn_fail(HN_ERR_ARG, "%s: chunked at %d tokens with an overlap of %d; other sizes need a new --db", dir,
                        *chunk, *overlap);
    }
    free(have_kind), free(have_chunk), free(have_overlap), free(id);
    return s;
}

// Chunks in a batch of hn_model_embed_texts.
#define EMBED_BATCH 64

// Embeds, then commits, one file: its changed documents replaced, its new ones added, its vanished ones removed.
static hn_status commit_file(hn_docstore *d, hn_model *m, input *in, int dim, int64_t **removed, int64_t *n_removed,
                             hn_rag_index_stats *st, const hn_rag_index_params *p, int64_t *done, int64_t total) {
    int64_t nc = 0;
    for (int i = 0; i < in->n_docs; i++) nc += in->docs[i].unchanged ? 0 : in->docs[i].n_spans;
    char **texts = hn_calloc((size_t)(nc ? nc : 1), sizeof *texts, "chunk texts");
    float *vec = hn_calloc((size_t)(nc ? nc : 1) * (size_t)dim, sizeof *vec, "chunk vectors");
    hn_status s = texts && vec ? HN_OK : HN_ERR_NOMEM;
    int64_t k = 0;
    for (int i = 0; i < in->n_docs && !s; i++)
        for (int j = 0; !in->docs[i].unchanged && j < in->docs[i].n_spans && !s; j++) {
            hn_rag_span sp = in->docs[i].spans[j];
            if (!(texts[k] = strndup(in->docs[i].text + sp.start, (size_t)(sp.end - sp.start)))) s = HN_ERR_NOMEM;
            k++;
        }
    double t0 = hn_now();
    for (int64_t b = 0; b < nc && !s; b += EMBED_BATCH) {
        int nb = nc - b < EMBED_BATCH ? (int)(nc - b) : EMBED_BATCH;
        s = hn_model_embed_texts(m, (const char *const *)texts + b, nb, hn_model_default_pool(m), true,
                                 vec + b * dim);
        *done += nb;
        if (!s && p->progress) p->progress(in->path, *done, total, p->user);
    }
    st->embed_s += hn_now() - t0;
    char **old = NULL;
    int n_old = 0;
    if (!s) s = hn_docstore_file_sources(d, in->path, &old, &n_old);
    if (!s) s = hn_docstore_begin(d);
    bool changed = false;
    for (int i = 0; i < n_old && !s; i++) { // records of this file that are gone
        bool kept = false;
        for (int j = 0; j < in->n_docs && !kept; j++) kept = !strcmp(old[i], in->docs[j].source);
        int64_t before = *n_removed;
        if (!kept) s = hn_docstore_doc_remove(d, old[i], removed, n_removed), changed = true;
        st->chunks_removed += *n_removed - before;
    }
    k = 0;
    for (int i = 0; i < in->n_docs && !s; i++) {
        doc *x = &in->docs[i];
        if (x->unchanged) continue;
        int64_t before = *n_removed, doc_id, cid;
        s = hn_docstore_doc_remove(d, x->source, removed, n_removed);
        st->chunks_removed += *n_removed - before;
        if (!s) s = hn_docstore_doc_add(d, x->source, in->path, x->hash, &doc_id);
        for (int j = 0; j < x->n_spans && !s; j++, k++)
            s = hn_docstore_chunk_add(d, doc_id, j, x->spans[j].start, x->spans[j].end, texts[k], strlen(texts[k]),
                                      x->meta, vec + k * dim, dim, &cid);
        st->chunks_added += x->n_spans;
        changed = true;
    }
    if (!s && changed) s = hn_docstore_commit(d);
    else hn_docstore_rollback(d);
    hn_docstore_strings_free(old, n_old);
    for (int64_t i = 0; i < nc && texts; i++) free(texts[i]);
    free(texts), free(vec);
    return s;
}

// Brings the vector index up to date with this run's changes (chunks above max_id added, `removed` gone), or
// rebuilds it when it was not current at the start or cannot remove; writes it, then records its generation.
static hn_status update_index(hn_docstore *d, const char *dir, hn_vindex_kind kind, int dim, int64_t gen0,
                              int64_t max_id, const int64_t *removed, int64_t n_removed) {
    char *path = hn_rag_index_path(dir), *ig = NULL;
    hn_vindex *v = NULL;
    float *x = NULL;
    int64_t *ids = NULL, n = 0;
    hn_status s = path ? hn_docstore_get(d, "index_generation", &ig) : HN_ERR_NOMEM;
    bool current = !s && ig && strtoll(ig, NULL, 10) == gen0 && !hn_vindex_read(&v, path) &&
                   hn_vindex_kind_of(v) == kind && hn_vindex_dim(v) == dim;
    if (current && n_removed && !hn_vindex_can_remove(v)) current = false;
    if (!s && current) {
        s = n_removed ? hn_vindex_remove(v, removed, n_removed, NULL) : HN_OK;
        if (!s) s = hn_docstore_vectors(d, dim, max_id, &x, &ids, &n);
        if (!s && n) s = hn_vindex_add(v, x, ids, n);
        if (!s && hn_vindex_size(v) != hn_docstore_n_chunks(d)) current = false; // out of step: start over
    }
    if (!s && !current) {
        hn_vindex_destroy(v);
        v = NULL;
        s = hn_rag_index_build(d, kind, dim, &v);
    }
    char gen[32];
    snprintf(gen, sizeof gen, "%lld", (long long)hn_docstore_generation(d));
    if (!s) s = hn_vindex_write(v, path);
    if (!s) s = hn_docstore_set(d, "index_generation", gen);
    hn_vindex_destroy(v);
    free(path), free(ig), free(x), free(ids);
    return s;
}

hn_status hn_rag_index(const char *dir, const char *const *paths, int n, const hn_rag_index_params *p,
                       hn_rag_index_stats *stats) {
    hn_rag_index_stats st = {0};
    double t0 = hn_now();
    inputs v = {0};
    hn_docstore *d = NULL;
    hn_model *m = p->embedder;
    int64_t *removed = NULL, n_removed = 0;
    char **files = NULL;
    int n_files = 0, chunk = 0, overlap = 0;
    hn_vindex_kind kind = HN_VINDEX_FLAT;
    hn_status s = expand(&v, paths, n, p->remove);
    // Every file read and checked before the database is touched.
    for (int i = 0; i < v.n && !s && !p->remove; i++) s = read_input(&v.in[i]);
    if (!s) s = hn_docstore_open(&d, dir, true);
    char *db_model = NULL;
    if (!s) s = hn_docstore_get(d, "embed_model", &db_model);
    const char *name = p->embed_model ? p->embed_model : db_model ? db_model : HN_RAG_DEFAULT_EMBED;
    if (!s && !m) {
        hn_model_params mp = hn_model_default_params();
        mp.mm_mode = p->exact ? HN_MM_EXACT : HN_MM_FAST;
        s = hn_model_load(&m, name, &mp);
    }
    if (!s) s = settings(d, dir, m, name, p, &kind, &chunk, &overlap);
    int dim = m ? (int)m->hp.n_embd : 0;
    int64_t gen0 = s ? 0 : hn_docstore_generation(d), max_id = s ? 0 : hn_docstore_max_chunk_id(d),
            n_now = s ? 0 : hn_docstore_n_chunks(d);
    if (!s && (gen0 < 0 || max_id < 0 || n_now < 0)) s = HN_ERR_IO;
    if (!s) s = hn_docstore_files(d, &files, &n_files);
    // What goes: files named for removal (or every file under a folder named), files gone from a folder named.
    bool *gone = !s ? hn_calloc((size_t)n_files + 1, sizeof *gone, "files") : NULL;
    if (!s && !gone) s = HN_ERR_NOMEM;
    for (int f = 0; f < n_files && !s; f++) {
        if (p->remove)
            for (int i = 0; i < v.n && !gone[f]; i++) {
                size_t l = strlen(v.in[i].path);
                gone[f] = !strcmp(files[f], v.in[i].path) || (!strncmp(files[f], v.in[i].path, l) && files[f][l] == '/');
            }
        else
            for (int i = 0; i < v.n_dirs && !gone[f]; i++) {
                size_t l = strlen(v.dirs[i]);
                bool under = !strncmp(files[f], v.dirs[i], l) && files[f][l] == '/';
                bool seen = false;
                for (int j = 0; j < v.n && under && !seen; j++) seen = !strcmp(files[f], v.in[j].path);
                gone[f] = under && !seen;
            }
    }
    // Unchanged documents skipped; the rest chunked (to count what will be embedded before embedding any).
    int64_t total = 0, kept = 0;
    for (int i = 0; i < v.n && !s && !p->remove; i++) {
        input *in = &v.in[i];
        bool file_changed = false, file_new = true;
        for (int j = 0; j < in->n_docs && !s; j++) {
            doc *x = &in->docs[j];
            char *h = NULL;
            s = hn_docstore_doc_hash(d, x->source, &h);
            file_new &= !h;
            x->unchanged = h && !strcmp(h, x->hash);
            free(h);
            if (!s && !x->unchanged)
                s = hn_rag_chunk(m->tok, x->text, x->len, chunk, overlap, &x->spans, &x->n_spans);
            if (!x->unchanged) total += x->n_spans, file_changed = true;
            else kept++;
        }
        char **old = NULL;
        int n_old = 0;
        if (!s) s = hn_docstore_file_sources(d, in->path, &old, &n_old);
        file_changed |= n_old != in->n_docs;
        hn_docstore_strings_free(old, n_old);
        st.files_seen++;
        if (!file_changed) st.files_unchanged++;
        else if (file_new) st.files_added++;
        else st.files_changed++;
    }
    (void)kept;
    if (!s && kind == HN_VINDEX_IVFPQ) {
        hn_vindex_params vp = hn_vindex_default_params(kind, dim);
        int64_t going = 0;
        for (int f = 0; f < n_files; f++) {
            char **src = NULL;
            int ns = 0;
            if (gone[f] && !hn_docstore_file_sources(d, files[f], &src, &ns)) going += ns; // documents: what
            hn_docstore_strings_free(src, ns);                                         // remains is overcounted
        }
        int64_t after = n_now - going + total, need = hn_vindex_min_train(&vp, after);
        if (after < need)
            s = hn_fail(HN_ERR_RANGE, "%s: an ivfpq index needs at least %lld vectors to train; this collection "
                                      "would have %lld: use --index flat or hnsw", dir, (long long)need,
                        (long long)after);
    }
    for (int f = 0; f < n_files && !s; f++) {
        if (!gone[f]) continue;
        char **src = NULL;
        int ns = 0;
        s = hn_docstore_file_sources(d, files[f], &src, &ns);
        if (!s) s = hn_docstore_begin(d);
        for (int i = 0; i < ns && !s; i++) {
            int64_t before = n_removed;
            s = hn_docstore_doc_remove(d, src[i], &removed, &n_removed);
            st.chunks_removed += n_removed - before;
        }
        if (!s) s = hn_docstore_commit(d);
        else hn_docstore_rollback(d);
        hn_docstore_strings_free(src, ns);
        st.files_removed++;
    }
    int64_t done = 0;
    for (int i = 0; i < v.n && !s && !p->remove; i++)
        s = commit_file(d, m, &v.in[i], dim, &removed, &n_removed, &st, p, &done, total);
    if (!s) s = update_index(d, dir, kind, dim, gen0, max_id, removed, n_removed);
    if (!s) st.chunks_total = hn_docstore_n_chunks(d);
    st.total_s = hn_now() - t0;
    if (stats) *stats = st;
    hn_docstore_strings_free(files, n_files);
    free(gone), free(removed);
    if (m != p->embedder) hn_model_destroy(m);
    hn_docstore_close(d);
    free(db_model);
    inputs_free(&v);
    return s;
}
