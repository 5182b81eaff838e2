// adapt/rag_impl.h — what adapt/rag.c (retrieval) and adapt/rag_index.c (building) share: the embedding model's
// identity as a database records it, and the vector index kept in step with the document store.
#ifndef HN_RAG_IMPL_H
#define HN_RAG_IMPL_H

#include "adapt/rag.h"
#include "io/docstore.h"
#include "model/embed.h"

// The embedding model's identity (malloc'd): "DIM dims, POOL pooling, weights HASH" (HASH: io/adapter.h's base
// hash of its tensors). A database built with one model refuses another.
hn_status hn_rag_model_id(hn_model *m, char **id);
// HN_ERR_ARG naming both models when the database's recorded identity is not m's.
hn_status hn_rag_check_model(hn_docstore *d, const char *dir, hn_model *m, const char *name);

// DIR/index.faiss (malloc'd).
char *hn_rag_index_path(const char *dir);
// The vector index over every stored chunk, trained (ivfpq) on all of them.
hn_status hn_rag_index_build(hn_docstore *d, hn_vindex_kind kind, int dim, hn_vindex **out);
// DIR/index.faiss when it reflects generation `gen` of the store (settings.index_generation), is the file that was
// written (settings.index_file: its size and FNV-1a hash; FAISS never reads another) and has this kind and
// dimension; else *out NULL.
hn_status hn_rag_index_current(hn_docstore *d, const char *dir, hn_vindex_kind kind, int dim, int64_t gen,
                               hn_vindex **out);
// Writes DIR/index.faiss atomically, then records the store's generation and the file's fingerprint together.
hn_status hn_rag_index_save(hn_docstore *d, const char *dir, const hn_vindex *v);
// The current index holding every stored chunk; otherwise (a crash between a commit and the index's write, a
// missing or damaged file) the index rebuilt from the stored vectors, *rebuilt set.
hn_status hn_rag_index_load(hn_docstore *d, const char *dir, hn_vindex_kind kind, int dim, hn_vindex **out,
                            bool *rebuilt);

// What hone index reads (adapt/rag_read.c).
typedef struct {
    char *source;      // FILE, or FILE#ID for a record
    char *text;        // malloc'd
    size_t len;
    char *meta;        // a JSON object
    char hash[17];
    hn_rag_span *spans; // its chunks (hone index, for documents it embeds)
    int n_spans;
    bool unchanged;     // the database holds it with this hash already
} hn_rag_doc;

typedef struct {
    char *path;
    hn_rag_doc *docs;
    int n_docs;
} hn_rag_input;

typedef struct {
    hn_rag_input *in;
    int n, cap;
    char **dirs; // folders named: a file indexed from one that is gone is removed
    int n_dirs;
} hn_rag_inputs;

// The files the paths stand for: files as named (a .txt, .md, .jsonl or .json, else HN_ERR_ARG), folders walked in
// name order (hidden entries skipped) and kept in v->dirs. With remove, paths need not exist and are only listed.
hn_status hn_rag_inputs_expand(hn_rag_inputs *v, const char *const *paths, int n, bool remove);
// Reads and checks one file into its documents: an empty (white space only), binary (a NUL byte) or non-UTF-8 file,
// a JSONL line that is not an object with a non-empty "text" (or repeats an "id"), JSON that is not SQuAD: errors
// naming the file (and line).
hn_status hn_rag_input_read(hn_rag_input *in);
void hn_rag_inputs_free(hn_rag_inputs *v);

#endif
