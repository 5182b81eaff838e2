// adapt/rag_index.c — building and updating a retrieval database (adapt/rag.h hn_rag_index, `hone index`): the
// files read and checked (adapt/rag_read.c), their changed documents chunked, embedded and committed one file at a
// time, then the vector index brought up to date and written.
#define _GNU_SOURCE // strdup
#include "adapt/rag_impl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

hn_rag_index_params hn_rag_index_default_params(void) {
    return (hn_rag_index_params){.kind = HN_VINDEX_KIND_COUNT, .overlap = -1};
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
        else if (!s && ((p->chunk_tokens > 0 && p->chunk_tokens != *chunk) ||
                        (p->overlap >= 0 && p->overlap != *overlap)))
            s = hn_fail(HN_ERR_ARG, "%s: chunked at %d tokens with an overlap of %d; other sizes need a new --db", dir,
                        *chunk, *overlap);
    }
    free(have_kind), free(have_chunk), free(have_overlap), free(id);
    return s;
}

// Chunks a call of hn_model_embed_texts: it sorts a call's texts by length into padded batches, so a large call
// pads less (XQuAD's Chinese chunks: 9.0-10.0 s against 10.2-10.7 s with 64).
#define EMBED_BATCH 1024

// Embeds, then commits, one file: its changed documents replaced, its new ones added, its vanished ones removed.
static hn_status commit_file(hn_docstore *d, hn_model *m, hn_rag_input *in, int dim, int64_t **removed,
                             int64_t *n_removed,
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
        hn_rag_doc *x = &in->docs[i];
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
    hn_vindex *v = NULL;
    float *x = NULL;
    int64_t *ids = NULL, n = 0;
    hn_status s = hn_rag_index_current(d, dir, kind, dim, gen0, &v);
    bool current = !s && v && (!n_removed || hn_vindex_can_remove(v));
    if (current) {
        s = n_removed ? hn_vindex_remove(v, removed, n_removed, NULL) : HN_OK;
        if (!s) s = hn_docstore_vectors(d, dim, max_id, &x, &ids, &n);
        if (!s && n) s = hn_vindex_add(v, x, ids, n);
        if (!s && hn_vindex_size(v) != hn_docstore_n_chunks(d)) current = false; // out of step: start over
    }
    bool same = current && !n_removed && !n; // nothing changed (no commit either): the file on disk stands
    if (!s && !current) {
        hn_vindex_destroy(v);
        v = NULL;
        s = hn_rag_index_build(d, kind, dim, &v);
    }
    if (!s && !same) s = hn_rag_index_save(d, dir, v);
    hn_vindex_destroy(v);
    free(x), free(ids);
    return s;
}

hn_status hn_rag_index(const char *dir, const char *const *paths, int n, const hn_rag_index_params *p,
                       hn_rag_index_stats *stats) {
    hn_rag_index_stats st = {0};
    double t0 = hn_now();
    hn_rag_inputs v = {0};
    hn_docstore *d = NULL;
    hn_model *m = p->embedder;
    int64_t *removed = NULL, n_removed = 0;
    char **files = NULL;
    int n_files = 0, chunk = 0, overlap = 0;
    hn_vindex_kind kind = HN_VINDEX_FLAT;
    hn_status s = hn_rag_inputs_expand(&v, paths, n, p->remove);
    // Every file read and checked before the database is touched.
    for (int i = 0; i < v.n && !s && !p->remove; i++) s = hn_rag_input_read(&v.in[i]);
    if (!s) s = hn_docstore_open(&d, dir, !p->remove); // nothing to remove from a database that is not there
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
                gone[f] = !strcmp(files[f], v.in[i].path) ||
                          (!strncmp(files[f], v.in[i].path, l) && files[f][l] == '/');
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
        hn_rag_input *in = &v.in[i];
        bool file_changed = false, file_new = true;
        for (int j = 0; j < in->n_docs && !s; j++) {
            hn_rag_doc *x = &in->docs[j];
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
    hn_rag_inputs_free(&v);
    return s;
}
