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
// DIR/index.faiss when it reflects the store's current generation (settings.index_generation), holds every chunk
// and has the recorded kind and dimension; otherwise (a crash between a commit and the index's write, a missing or
// damaged file) the index rebuilt from the stored vectors, *rebuilt set.
hn_status hn_rag_index_load(hn_docstore *d, const char *dir, hn_vindex_kind kind, int dim, hn_vindex **out,
                            bool *rebuilt);

#endif
