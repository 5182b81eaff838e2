// io/docstore.h — a retrieval database's documents and chunks in SQLite (DIR/docs.sqlite): the source of truth that
// the vector index (io/vindex.h) is derived from. Writes happen in transactions (WAL journal), so a process killed
// at any moment leaves the state of its last commit.
//
// Tables:
//   settings(key, value)                      what the database was built with (embedding model, dimension, ...),
//                                              and `generation`, raised by every commit that changes chunks
//   docs(id, source, file, hash)              a document: a file, or a record of one (FILE#ID); hash of its content
//   chunks(id, doc, ord, start, end, text, meta, vec)
//                                              a chunk: its byte range in the document, its text, the document's
//                                              metadata (a JSON object), its vector (float32 blob)
// Chunk ids are never reused (AUTOINCREMENT): an index written at an older generation cannot name a newer chunk.
#ifndef HN_DOCSTORE_H
#define HN_DOCSTORE_H

#include "base/base.h"

typedef struct hn_docstore hn_docstore;

// Opens DIR/docs.sqlite; with create, makes DIR and the schema when missing (else read only, HN_ERR_NOTFOUND when
// absent). A file that is not a hone database is HN_ERR_FORMAT naming it.
hn_status hn_docstore_open(hn_docstore **out, const char *dir, bool create);
void hn_docstore_close(hn_docstore *d);
const char *hn_docstore_path(const hn_docstore *d); // DIR/docs.sqlite

// A setting's value (malloc'd into *value; NULL when absent).
hn_status hn_docstore_get(hn_docstore *d, const char *key, char **value);
hn_status hn_docstore_set(hn_docstore *d, const char *key, const char *value);
int64_t hn_docstore_generation(hn_docstore *d); // 0 for a new database, -1 on error

hn_status hn_docstore_begin(hn_docstore *d);
// Raises the generation and commits.
hn_status hn_docstore_commit(hn_docstore *d);
// Commits without raising the generation (bookkeeping that changes no document).
hn_status hn_docstore_end(hn_docstore *d);
void hn_docstore_rollback(hn_docstore *d);

// The document's content hash (malloc'd into *hash; NULL when the source is not in the database).
hn_status hn_docstore_doc_hash(hn_docstore *d, const char *source, char **hash);
// The sources of every document from this file (*sources malloc'd, each malloc'd).
hn_status hn_docstore_file_sources(hn_docstore *d, const char *file, char ***sources, int *n);
// Every file that has documents (malloc'd as above).
hn_status hn_docstore_files(hn_docstore *d, char ***files, int *n);
void hn_docstore_strings_free(char **s, int n);

// Removes a document and its chunks; the removed chunk ids are appended to *ids (realloc'd; *n grows).
hn_status hn_docstore_doc_remove(hn_docstore *d, const char *source, int64_t **ids, int64_t *n);
hn_status hn_docstore_doc_add(hn_docstore *d, const char *source, const char *file, const char *hash,
                              int64_t *doc_id);
hn_status hn_docstore_chunk_add(hn_docstore *d, int64_t doc_id, int ord, int64_t start, int64_t end,
                                const char *text, size_t len, const char *meta, const float *vec, int dim,
                                int64_t *chunk_id);

int64_t hn_docstore_n_chunks(hn_docstore *d); // -1 on error
int64_t hn_docstore_max_chunk_id(hn_docstore *d); // 0 when there was never a chunk, -1 on error
// The vectors of the chunks with ids above `after` (0: every chunk), in id order: *x (n, dim) and *ids (n),
// malloc'd. A stored vector of another size is HN_ERR_FORMAT naming the chunk.
hn_status hn_docstore_vectors(hn_docstore *d, int dim, int64_t after, float **x, int64_t **ids, int64_t *n);

// One chunk's vector into out (dim floats): HN_ERR_NOTFOUND for an id it does not hold, HN_ERR_FORMAT for a vector
// of another size.
hn_status hn_docstore_chunk_vector(hn_docstore *d, int64_t id, int dim, float *out);

typedef struct {
    char *text, *source, *meta; // malloc'd
    int64_t start, end;
} hn_doc_chunk;
// HN_ERR_NOTFOUND for an id that is not in the database.
hn_status hn_docstore_chunk(hn_docstore *d, int64_t id, hn_doc_chunk *c);
void hn_doc_chunk_deinit(hn_doc_chunk *c);

#endif
