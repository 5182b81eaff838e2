// adapt/rag.h — retrieval-augmented generation: a user's documents split into chunks, embedded and indexed
// (hn_rag_index, `hone index`), the chunks nearest a question retrieved (hn_rag_retrieve) and put before it as
// numbered sources (hn_rag_prompt) for a model to answer from, citing them as [1], [2]. Like in-context examples it
// changes the input, not the weights.
//
// A database is a directory:
//   DIR/docs.sqlite   (io/docstore.h) the documents (path or record id, content hash), their chunks (text, byte range
//                     in the document, metadata, vector) and the settings it was built with (embedding model, its
//                     dimension and pooling, chunk size, index kind). The source of truth, changed in transactions.
//   DIR/index.faiss   (io/vindex.h) the vector index over the chunks' vectors, written atomically after each commit
//                     with the generation it reflects; one that is missing or behind docs.sqlite (a crash between the
//                     two) is rebuilt from the stored vectors.
//
//   hn_rag *r;
//   hn_rag_open_params op = {0};                       // the database's own embedding model
//   if (hn_rag_open(&r, "db", &op)) { fprintf(stderr, "hone: %s\n", hn_errmsg()); ... }
//   hn_rag_hit hits[5];
//   int n;
//   const char *q = "Who won?";
//   hn_rag_retrieve(r, &q, 1, 5, hits, &n);            // hits[0..n), best first
//   char *prompt = hn_rag_prompt(hits, n, q, NULL);   // numbered sources, then the question
//   hn_rag_hits_free(hits, n);
//   hn_rag_close(r);
#ifndef HN_RAG_H
#define HN_RAG_H

#include "io/vindex.h"
#include "model/model.h"

typedef struct hn_rag hn_rag;

typedef struct {
    int64_t id;         // the chunk's id in the database
    float score;        // inner product of the query's and the chunk's stored vectors (cosine: both L2-normalised),
                        // computed exactly whatever the index (IVF-PQ's candidates are re-ranked by it)
    char *text;         // the chunk's text (malloc'd)
    char *source;       // the document: the file's path as indexed, or FILE#ID for a JSONL record or a SQuAD
                        // paragraph (malloc'd)
    int64_t start, end; // the chunk's byte range in the document's text
    char *meta;         // a JSONL record's other fields as a JSON object, "{}" when none (malloc'd)
} hn_rag_hit;

typedef struct {
    const char *embed_model; // NULL: the model the database was built with (as it was named to hone index)
    hn_model *embedder;      // a model already loaded to embed with (not owned; overrides embed_model)
    bool exact;              // fp32 reference path for the embedding model
} hn_rag_open_params;

// Opens a database for retrieval (read only). The embedding model must be the one that built it: another
// (different name, dimension, pooling) is an error naming both. HN_ERR_NOTFOUND when DIR holds no database.
hn_status hn_rag_open(hn_rag **out, const char *dir, const hn_rag_open_params *p);
void hn_rag_close(hn_rag *r);
int64_t hn_rag_n_chunks(const hn_rag *r);
const char *hn_rag_embed_model(const hn_rag *r); // as the database names it
hn_vindex_kind hn_rag_index_kind(const hn_rag *r);
// hnsw's search beam / ivfpq's nprobe (hn_vindex_set_search_width).
void hn_rag_set_search_width(hn_rag *r, int width);

// The k best chunks for each of nq queries (embedded in batches): query q's are hits[q * k .. q * k + n[q]), best
// first by the exact cosine of the stored vectors (ivfpq: of 8 k candidates, at most 256) (n[q] < k when the database holds fewer chunks). Free them with hn_rag_hits_free(hits, nq * k) (entries
// past n[q] are zeroed). Not thread-safe: one caller at a time per hn_rag.
hn_status hn_rag_retrieve(hn_rag *r, const char *const *queries, int nq, int k, hn_rag_hit *hits, int *n);
void hn_rag_hits_free(hn_rag_hit *hits, int n);

// The default instruction: answer from the sources and cite them.
#define HN_RAG_INSTRUCTION                                                                                           \
    "Answer the question using the numbered sources below. Cite the sources you use as [1], [2]. If they do not "   \
    "hold the answer, say so."

// The user message a question becomes (malloc'd; NULL when out of memory):
//   INSTRUCTION\n\n[1] TEXT\n\n[2] TEXT\n\nQuestion: QUESTION
// instruction NULL: HN_RAG_INSTRUCTION. With n == 0, "Question: QUESTION" after the instruction only.
char *hn_rag_prompt(const hn_rag_hit *hits, int n, const char *question, const char *instruction);
// The same, with as many of the best hits as fit max_tokens of tok's tokens (the chat template's markup is the
// caller's margin); *used gets how many were kept (the lowest-ranked go first).
char *hn_rag_prompt_fit(const hn_tokenizer *tok, const hn_rag_hit *hits, int n, const char *question,
                        const char *instruction, int max_tokens, int *used);

// A greedy answer of m to one user message, rendered with the model's chat template (ChatML when it has none) and
// cut at the end of its turn or max_new tokens; *answer malloc'd. HN_ERR_RANGE when the prompt leaves no room in
// the model's context. Also used without retrieval (the message is then the question alone).
hn_status hn_rag_answer(hn_model *m, const char *message, int max_new, char **answer);

// A chunk of a document: its byte range and its tokens (the sum over its sentences, as counted alone).
typedef struct {
    int64_t start, end;
    int ntok;
} hn_rag_span;

// Splits text (len bytes of UTF-8) into chunks of at most max_tokens of tok's tokens (no framing): paragraphs
// (between blank lines) are packed whole while they fit; a longer paragraph goes by sentences (after . ! ? and
// white space, a CJK full stop, or a line break), a longer sentence by words, in windows that overlap by `overlap`
// tokens. A chunk after the first starts with the previous chunk's last sentences or paragraphs that fit in
// `overlap` tokens. Chunks are trimmed of white space and may span paragraphs; *spans malloc'd, *n of them (0 for
// a text of white space only).
hn_status hn_rag_chunk(const hn_tokenizer *tok, const char *text, size_t len, int max_tokens, int overlap,
                       hn_rag_span **spans, int *n);

// Building and updating a database (hone index).
typedef struct {
    const char *embed_model;  // NULL: the database's, HN_RAG_DEFAULT_EMBED for a new one; for an existing database
                              // it must be the one it was built with
    hn_model *embedder;       // a model already loaded (not owned); embed_model still names it in the database
    hn_vindex_kind kind;      // flat, hnsw or ivfpq; HN_VINDEX_KIND_COUNT (default): the database's, flat for a
                              // new one. For an existing database another kind is an error.
    int chunk_tokens;         // the embedding model's tokens a chunk (0: the database's, 256 for a new one; cut to
                              // what the model embeds, less [CLS]/[SEP])
    int overlap;              // tokens of the previous chunk repeated at the start of the next (-1: the database's,
                              // 32 for a new one)
    bool remove;              // the paths are removed from the database (files, or every file under a folder)
    bool exact;
    void (*progress)(const char *what, int64_t done, int64_t total, void *user); // may be NULL
    void *user;
} hn_rag_index_params;

hn_rag_index_params hn_rag_index_default_params(void);
#define HN_RAG_DEFAULT_EMBED "all-minilm-l6-v2"

typedef struct {
    int files_seen, files_added, files_changed, files_unchanged, files_removed;
    int64_t chunks_added, chunks_removed, chunks_total;
    double embed_s, total_s;
} hn_rag_index_stats;

// Indexes the files (.txt, .md: one document each; .jsonl: one {"id", "text", ...} record a document, its other
// fields kept as metadata; .json in SQuAD format: one document a paragraph) into DIR, creating it if needed. A
// folder stands for the files under it with those extensions, and a file indexed from it earlier that is gone is
// removed. Incremental: a document whose content hash is unchanged is skipped, a changed one's chunks replaced, a
// JSONL record that is gone removed. Each file is committed alone, so a crash leaves the database as of the last
// committed file (and the vector index, written last, is rebuilt from it when behind). Every file is read and
// checked before anything is written: an empty, binary or non-UTF-8 file, or a malformed record, is an error
// naming it and nothing changes.
hn_status hn_rag_index(const char *dir, const char *const *paths, int n, const hn_rag_index_params *p,
                       hn_rag_index_stats *stats);

#endif
