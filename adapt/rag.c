// adapt/rag.c — retrieval from a database made by hone index, the prompt with numbered sources, and a greedy
// answer (adapt/rag.h).
#define _GNU_SOURCE // asprintf
#include "adapt/rag_impl.h"
#include "io/adapter.h"
#include "io/chat.h"
#include "model/sample.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct hn_rag {
    hn_docstore *db;
    hn_vindex *vi;
    hn_model *m;
    bool own_m;
    char *model_name;
    hn_pool pool;
    int dim;
    hn_vindex_kind kind;
};

hn_status hn_rag_model_id(hn_model *m, char **id) {
    uint64_t h = 0;
    hn_status s = hn_adapter_base_hash(&m->gguf, &h);
    if (s) return s;
    char buf[128];
    snprintf(buf, sizeof buf, "%d dims, %s pooling, weights %016llx", (int)m->hp.n_embd,
             hn_pool_name(hn_model_default_pool(m)), (unsigned long long)h);
    return (*id = strdup(buf)) ? HN_OK : hn_fail(HN_ERR_NOMEM, "out of memory");
}

hn_status hn_rag_check_model(hn_docstore *d, const char *dir, hn_model *m, const char *name) {
    char *want = NULL, *want_name = NULL, *have = NULL;
    hn_status s = hn_docstore_get(d, "embed_id", &want);
    if (!s) s = hn_docstore_get(d, "embed_model", &want_name);
    if (!s && (!want || !want_name))
        s = hn_fail(HN_ERR_FORMAT, "%s: settings.embed_model is missing; expected the embedding model's name",
                    hn_docstore_path(d));
    if (!s) s = hn_rag_model_id(m, &have);
    if (!s && strcmp(want, have))
        s = hn_fail(HN_ERR_ARG, "%s: built with embedding model '%s' (%s); '%s' is another (%s): embed with the "
                                "database's model or index into a new --db",
                    dir, want_name, want, name, have);
    free(want), free(want_name), free(have);
    return s;
}

char *hn_rag_index_path(const char *dir) {
    size_t n = strlen(dir) + 16;
    char *p = hn_alloc(n, "a path");
    if (p) snprintf(p, n, "%s/index.faiss", dir);
    return p;
}

hn_status hn_rag_index_build(hn_docstore *d, hn_vindex_kind kind, int dim, hn_vindex **out) {
    *out = NULL;
    float *x = NULL;
    int64_t *ids = NULL, n = 0;
    hn_vindex_params p = hn_vindex_default_params(kind, dim);
    hn_status s = hn_docstore_vectors(d, dim, 0, &x, &ids, &n);
    if (!s) s = hn_vindex_create(out, &p);
    if (!s && kind == HN_VINDEX_IVFPQ) s = hn_vindex_train(*out, x, n);
    if (!s && n) s = hn_vindex_add(*out, x, ids, n);
    free(x), free(ids);
    if (s) {
        hn_vindex_destroy(*out);
        *out = NULL;
    }
    return s;
}

// "SIZE:FNV1A64" of the file at path, or NULL when it cannot be read (malloc'd).
static char *file_fingerprint(const char *path) {
    hn_map mp = {0};
    if (hn_map_open(&mp, path)) return NULL;
    char *f = NULL;
    if (asprintf(&f, "%zu:%016llx", mp.size, (unsigned long long)hn_fnv1a(HN_FNV1A_INIT, mp.data, mp.size)) < 0)
        f = NULL;
    hn_map_close(&mp);
    return f;
}

hn_status hn_rag_index_current(hn_docstore *d, const char *dir, hn_vindex_kind kind, int dim, int64_t gen,
                               hn_vindex **out) {
    *out = NULL;
    char *path = hn_rag_index_path(dir), *ig = NULL, *fp = NULL, *have = NULL;
    hn_status s = path ? hn_docstore_get(d, "index_generation", &ig) : HN_ERR_NOMEM;
    if (!s) s = hn_docstore_get(d, "index_file", &fp);
    // FAISS's reader is not made for damaged files (a truncated one leaks what it had read; a bad size field may
    // ask for terabytes): it only sees the file that was written, as its recorded size and hash show.
    if (!s && ig && fp && strtoll(ig, NULL, 10) == gen && (have = file_fingerprint(path)) && !strcmp(have, fp) &&
        !hn_vindex_read(out, path) && (hn_vindex_kind_of(*out) != kind || hn_vindex_dim(*out) != dim)) {
        hn_vindex_destroy(*out);
        *out = NULL;
    }
    free(path), free(ig), free(fp), free(have);
    return s;
}

hn_status hn_rag_index_save(hn_docstore *d, const char *dir, const hn_vindex *v) {
    char *path = hn_rag_index_path(dir), *fp = NULL, gen[32];
    snprintf(gen, sizeof gen, "%lld", (long long)hn_docstore_generation(d));
    hn_status s = path ? hn_vindex_write(v, path) : HN_ERR_NOMEM;
    if (!s && !(fp = file_fingerprint(path))) s = hn_fail(HN_ERR_IO, "%s: cannot read back the index written", path);
    if (!s) s = hn_docstore_begin(d);
    if (!s) { // both at once, without raising the generation (hn_docstore_commit would)
        s = hn_docstore_set(d, "index_generation", gen);
        if (!s) s = hn_docstore_set(d, "index_file", fp);
        if (!s) s = hn_docstore_end(d);
        if (s) hn_docstore_rollback(d);
    }
    free(path), free(fp);
    return s;
}

hn_status hn_rag_index_load(hn_docstore *d, const char *dir, hn_vindex_kind kind, int dim, hn_vindex **out,
                            bool *rebuilt) {
    *rebuilt = false;
    int64_t gen = hn_docstore_generation(d), n = hn_docstore_n_chunks(d);
    hn_status s = gen < 0 || n < 0 ? HN_ERR_IO : hn_rag_index_current(d, dir, kind, dim, gen, out);
    if (!s && *out && hn_vindex_size(*out) != n) { // not the stored chunks
        hn_vindex_destroy(*out);
        *out = NULL;
    }
    if (!s && !*out) {
        *rebuilt = true;
        s = hn_rag_index_build(d, kind, dim, out);
    }
    return s;
}

static hn_status setting_int(hn_docstore *d, const char *key, int *v) {
    char *t = NULL;
    hn_status s = hn_docstore_get(d, key, &t);
    char *e = NULL;
    long x = t ? strtol(t, &e, 10) : 0;
    if (!s && (!t || *e || x < 1 || x > (1 << 20)))
        s = hn_fail(HN_ERR_FORMAT, "%s: settings.%s is '%s'; expected a positive integer", hn_docstore_path(d), key,
                    t ? t : "(missing)");
    free(t);
    *v = (int)x;
    return s;
}

hn_status hn_rag_open(hn_rag **out, const char *dir, const hn_rag_open_params *p) {
    *out = NULL;
    hn_rag *r = hn_calloc(1, sizeof *r, "a retrieval database");
    if (!r) return HN_ERR_NOMEM;
    char *kind = NULL;
    hn_status s = hn_docstore_open(&r->db, dir, false);
    if (!s) s = hn_docstore_get(r->db, "embed_model", &r->model_name);
    if (!s) s = hn_docstore_get(r->db, "index_kind", &kind);
    if (!s && (!r->model_name || !kind))
        s = hn_fail(HN_ERR_FORMAT, "%s: settings.embed_model or index_kind is missing (an unfinished first "
                                   "hone index?)", hn_docstore_path(r->db));
    if (!s && (r->kind = hn_vindex_kind_parse(kind)) == HN_VINDEX_KIND_COUNT)
        s = hn_fail(HN_ERR_FORMAT, "%s: settings.index_kind is '%s'; expected flat, hnsw or ivfpq",
                    hn_docstore_path(r->db), kind);
    if (!s) s = setting_int(r->db, "embed_dim", &r->dim);
    if (!s && p->embedder) r->m = p->embedder;
    else if (!s) {
        hn_model_params mp = hn_model_default_params();
        mp.mm_mode = p->exact ? HN_MM_EXACT : HN_MM_FAST;
        s = hn_model_load(&r->m, p->embed_model ? p->embed_model : r->model_name, &mp);
        r->own_m = !s;
    }
    if (!s) s = hn_rag_check_model(r->db, dir, r->m, p->embedder ? r->m->path : p->embed_model ? p->embed_model
                                                                                                : r->model_name);
    r->pool = !s ? hn_model_default_pool(r->m) : HN_POOL_MEAN;
    bool rebuilt = false;
    if (!s) s = hn_rag_index_load(r->db, dir, r->kind, r->dim, &r->vi, &rebuilt);
    if (!s && rebuilt && hn_rag_n_chunks(r) > 0)
        hn_warn("%s: the vector index was behind the documents (an interrupted hone index?); rebuilt it in memory "
                "(hone index --db %s writes it)", dir, dir);
    free(kind);
    if (s) {
        hn_rag_close(r);
        return s;
    }
    *out = r;
    return HN_OK;
}

void hn_rag_close(hn_rag *r) {
    if (!r) return;
    hn_vindex_destroy(r->vi);
    hn_docstore_close(r->db);
    if (r->own_m) hn_model_destroy(r->m);
    free(r->model_name);
    free(r);
}

int64_t hn_rag_n_chunks(const hn_rag *r) { return r->vi ? hn_vindex_size(r->vi) : 0; }
const char *hn_rag_embed_model(const hn_rag *r) { return r->model_name; }
hn_vindex_kind hn_rag_index_kind(const hn_rag *r) { return r->kind; }
void hn_rag_set_search_width(hn_rag *r, int width) { hn_vindex_set_search_width(r->vi, width); }

// Questions embedded at a time.
#define RAG_QUERY_BATCH 64
// IVF-PQ's scores come from compressed codes: it is asked for this many times k candidates (at most 256, at least
// k), which are then ranked by their exact vectors.
#define RAG_RERANK 8

typedef struct {
    int64_t id;
    float score;
} scored;

static int by_score(const void *a, const void *b) {
    const scored *x = a, *y = b;
    return x->score != y->score ? (x->score < y->score ? 1 : -1) : (x->id > y->id) - (x->id < y->id);
}

// The index's candidates for one query, scored by their stored vectors (every kind: scores are always the exact
// cosine, whatever the index), best first, the k best made hits.
static hn_status rank(hn_rag *r, const float *q, const int64_t *ids, int kk, int k, scored *c, float *v,
                      hn_rag_hit *hits, int *n) {
    int nc = 0;
    hn_status s = HN_OK;
    for (int j = 0; j < kk && ids[j] >= 0 && !s; j++) {
        if ((s = hn_docstore_chunk_vector(r->db, ids[j], r->dim, v))) break;
        double dot = 0;
        for (int t = 0; t < r->dim; t++) dot += (double)q[t] * v[t];
        c[nc++] = (scored){ids[j], (float)dot};
    }
    if (!s && nc) qsort(c, (size_t)nc, sizeof *c, by_score);
    *n = 0;
    for (int j = 0; j < nc && j < k && !s; j++) {
        hn_doc_chunk ch;
        if ((s = hn_docstore_chunk(r->db, c[j].id, &ch))) break;
        hits[j] = (hn_rag_hit){.id = c[j].id, .score = c[j].score, .text = ch.text, .source = ch.source,
                               .start = ch.start, .end = ch.end, .meta = ch.meta};
        (*n)++;
    }
    return s;
}

hn_status hn_rag_retrieve(hn_rag *r, const char *const *queries, int nq, int k, hn_rag_hit *hits, int *n) {
    if (k < 1) return hn_fail(HN_ERR_ARG, "retrieve: k is %d; expected at least 1", k);
    memset(hits, 0, (size_t)nq * (size_t)k * sizeof *hits);
    int B = nq < RAG_QUERY_BATCH ? nq : RAG_QUERY_BATCH;
    int kk = r->kind != HN_VINDEX_IVFPQ ? k : RAG_RERANK * k < 256 ? RAG_RERANK * k : k > 256 ? k : 256;
    float *q = hn_calloc((size_t)B * (size_t)r->dim, sizeof *q, "query vectors"), *sc = NULL, *v = NULL;
    int64_t *ids = NULL;
    scored *c = NULL;
    if (q) sc = hn_calloc((size_t)B * (size_t)kk, sizeof *sc, "scores");
    if (sc) ids = hn_calloc((size_t)B * (size_t)kk, sizeof *ids, "ids");
    if (ids) c = hn_calloc((size_t)kk, sizeof *c, "candidates");
    if (c) v = hn_calloc((size_t)r->dim, sizeof *v, "a vector");
    hn_status s = v ? HN_OK : HN_ERR_NOMEM;
    for (int q0 = 0; q0 < nq && !s; q0 += B) {
        int b = nq - q0 < B ? nq - q0 : B;
        s = hn_model_embed_texts(r->m, queries + q0, b, r->pool, true, q);
        if (!s) s = hn_vindex_search(r->vi, q, b, kk, sc, ids);
        for (int i = 0; i < b && !s; i++)
            s = rank(r, q + (size_t)i * r->dim, ids + (size_t)i * kk, kk, k, c, v, hits + (size_t)(q0 + i) * k,
                     &n[q0 + i]);
    }
    free(q), free(sc), free(ids), free(c), free(v);
    if (s) hn_rag_hits_free(hits, nq * k);
    return s;
}

void hn_rag_hits_free(hn_rag_hit *hits, int n) {
    for (int i = 0; i < n; i++) {
        free(hits[i].text), free(hits[i].source), free(hits[i].meta);
        memset(&hits[i], 0, sizeof hits[i]);
    }
}

char *hn_rag_prompt(const hn_rag_hit *hits, int n, const char *question, const char *instruction) {
    if (!instruction) instruction = HN_RAG_INSTRUCTION;
    size_t len = strlen(instruction) + strlen(question) + 32;
    for (int i = 0; i < n; i++) len += strlen(hits[i].text) + 24;
    char *p = hn_alloc(len, "a prompt");
    if (!p) return NULL;
    size_t o = (size_t)snprintf(p, len, "%s\n\n", instruction);
    for (int i = 0; i < n; i++) o += (size_t)snprintf(p + o, len - o, "[%d] %s\n\n", i + 1, hits[i].text);
    snprintf(p + o, len - o, "Question: %s", question);
    return p;
}

// Tokens of len bytes of text (len < 0: NUL-terminated); -1 when the tokenizer fails.
static int64_t n_tokens(const hn_tokenizer *tok, const char *text, int64_t len) {
    int32_t *ids = NULL;
    int64_t n = 0;
    hn_status s = hn_tokenizer_encode(tok, text, len, 0, &ids, &n);
    free(ids);
    return s ? -1 : n;
}

// Whether the prompt with k sources fits; *p gets it (malloc'd) when it does. -1 when out of memory or the
// tokenizer fails.
static int fits(const hn_tokenizer *tok, const hn_rag_hit *hits, int k, const char *question, const char *instruction,
                int max_tokens, char **p) {
    char *t = hn_rag_prompt(hits, k, question, instruction);
    int64_t nt = t ? n_tokens(tok, t, -1) : -1;
    if (nt >= 0 && nt <= max_tokens) {
        *p = t;
        return 1;
    }
    free(t);
    return nt < 0 ? -1 : 0;
}

char *hn_rag_prompt_fit(const hn_tokenizer *tok, const hn_rag_hit *hits, int n, const char *question,
                        const char *instruction, int max_tokens, int *used) {
    // A first guess from the sources' tokens counted one by one, then the prompt itself counted, up or down a
    // source at a time: a few tokenizations of the prompt, not one for every number of sources.
    char *p = hn_rag_prompt(NULL, 0, question, instruction);
    int64_t sum = p ? n_tokens(tok, p, -1) : -1;
    free(p);
    p = NULL;
    int k = 0;
    for (; sum >= 0 && k < n; k++) {
        int64_t t = n_tokens(tok, hits[k].text, -1);
        if (t < 0) return NULL;
        if ((sum += t + 4) > max_tokens) break; // "[k] " and the blank line after
    }
    if (sum < 0) return NULL;
    int f = fits(tok, hits, k, question, instruction, max_tokens, &p);
    while (f == 1 && k < n) { // more may fit than the guess
        char *q = NULL;
        int g = fits(tok, hits, k + 1, question, instruction, max_tokens, &q);
        if (g < 0) f = -1;
        if (g != 1) break;
        free(p);
        p = q, k++;
    }
    while (f == 0 && k > 0) f = fits(tok, hits, --k, question, instruction, max_tokens, &p);
    if (f == 0) p = hn_rag_prompt(hits, 0, question, instruction); // not even the question fits: the caller's check
    if (f < 0) {
        free(p);
        return NULL;
    }
    *used = k;
    return p;
}

typedef struct {
    char *text;
    size_t n, cap;
} answer_buf;

static bool on_text(const char *text, size_t len, void *user) {
    answer_buf *a = user;
    if (a->n + len + 1 > a->cap) {
        size_t cap = (a->n + len + 1) * 2;
        char *g = realloc(a->text, cap);
        if (!g) return false;
        a->text = g, a->cap = cap;
    }
    memcpy(a->text + a->n, text, len);
    a->text[a->n += len] = 0;
    return true;
}

hn_status hn_rag_answer(hn_model *m, const char *message, int max_new, char **answer) {
    *answer = NULL;
    hn_chat_msg msg = {"user", message};
    char *text = NULL;
    int32_t *ids = NULL;
    int64_t n = 0;
    hn_status s = hn_chat_render(m->chat, m->default_system, &msg, 1, true, &text);
    if (!s) s = hn_tokenizer_encode(m->tok, text, -1, HN_TOK_SPECIAL | HN_TOK_ADD_BOS, &ids, &n);
    free(text);
    int n_ctx = m->hp.n_ctx_train > 0 ? m->hp.n_ctx_train : 4096, nv = hn_model_n_virtual(m);
    if (!s && nv + n + 1 > n_ctx)
        s = hn_fail(HN_ERR_RANGE, "answer: the prompt has %lld tokens; the model's context holds %d",
                    (long long)n, n_ctx);
    if (!s && nv + n + max_new < n_ctx) n_ctx = nv + (int)n + max_new;
    int n_vocab = hn_tokenizer_n_vocab(m->tok) < m->hp.n_vocab ? hn_tokenizer_n_vocab(m->tok) : m->hp.n_vocab;
    hn_sampler_params sp = hn_sampler_default_params();
    sp.temp = 0; // greedy
    hn_kv_cache *kv = s ? NULL : hn_kv_cache_create(m, n_ctx);
    hn_sampler *smp = kv ? hn_sampler_create(&sp, n_vocab) : NULL;
    if (!s && !smp) s = HN_ERR_NOMEM;
    answer_buf a = {.text = strdup(""), .cap = 1};
    if (!s && !a.text) s = HN_ERR_NOMEM;
    hn_generate_params gp = {.n_predict = max_new, .on_text = on_text, .user = &a};
    hn_generate_stats st;
    if (!s) s = hn_generate(m, kv, smp, ids, (int)n, &gp, &st);
    hn_sampler_destroy(smp);
    hn_kv_cache_destroy(kv);
    free(ids);
    if (s) {
        free(a.text);
        return s;
    }
    *answer = a.text;
    return HN_OK;
}
