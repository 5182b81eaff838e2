// io/vindex.h — a dense vector index for retrieval: FAISS (libfaiss-dev 1.7.3, a C++ library whose C API symbols
// Debian does not build) behind a C face. io/vindex.cpp is the only C++ in hone and nothing else sees FAISS.
//
// Every index scores by inner product (cosine on L2-normalised vectors) and carries 64-bit ids chosen by the
// caller (the document store's chunk ids):
//   flat   exact search over every vector (faiss IndexFlatIP in an IndexIDMap2)
//   hnsw   a navigable small-world graph (IndexHNSWFlat, M links a node, efConstruction / efSearch beams); no removal:
//          a caller that must remove rebuilds it
//   ivfpq  an inverted file of nlist lists over product-quantised codes (IndexIVFPQ, pq_m sub-vectors of pq_bits
//          bits, nprobe lists searched); it must be trained first, on at least hn_vindex_min_train vectors
//
//   hn_vindex *v;
//   hn_vindex_params p = hn_vindex_default_params(HN_VINDEX_HNSW, 384);
//   if (hn_vindex_create(&v, &p) || hn_vindex_add(v, x, ids, n) || hn_vindex_write(v, "db/index.faiss")) ...
//   hn_vindex_search(v, q, 1, 5, scores, found);      // found[i] == -1 past the index's size
//   hn_vindex_destroy(v);
#ifndef HN_VINDEX_H
#define HN_VINDEX_H

#include "base/base.h"

typedef struct hn_vindex hn_vindex;

typedef enum { HN_VINDEX_FLAT, HN_VINDEX_HNSW, HN_VINDEX_IVFPQ, HN_VINDEX_KIND_COUNT } hn_vindex_kind;

typedef struct {
    hn_vindex_kind kind;
    int dim;
    int hnsw_m, ef_construction, ef_search; // hnsw: 32, 64, 64
    int nlist, nprobe;                      // ivfpq: 0 = chosen from the training set's size (4 sqrt(n), at most
                                            // n / 39); 16
    int pq_m, pq_bits;                      // ivfpq: 0 = dim / 8 sub-vectors (dim / 4, ... when 8 does not divide)
                                            // of 8 bits
} hn_vindex_params;

hn_vindex_params hn_vindex_default_params(hn_vindex_kind kind, int dim);
const char *hn_vindex_kind_name(hn_vindex_kind k); // "flat", "hnsw", "ivfpq"
// HN_VINDEX_KIND_COUNT for a name that is none of them.
hn_vindex_kind hn_vindex_kind_parse(const char *name);

// HN_ERR_ARG for a bad parameter (dim < 1, pq_m not dividing dim, ...), with a message naming it.
hn_status hn_vindex_create(hn_vindex **out, const hn_vindex_params *p);
void hn_vindex_destroy(hn_vindex *v);

// The fewest vectors hn_vindex_train accepts for these parameters (0 for flat and hnsw; for ivfpq the larger of
// 39 * nlist and 39 * 2^pq_bits, FAISS's own advice, with nlist chosen as hn_vindex_train would for n vectors).
int64_t hn_vindex_min_train(const hn_vindex_params *p, int64_t n);
bool hn_vindex_is_trained(const hn_vindex *v);
// Trains an ivfpq index on x (n, dim) (a no-op for flat and hnsw). Too few vectors: HN_ERR_RANGE, with a message
// that says how many it has, how many it needs, and to use flat or hnsw instead.
hn_status hn_vindex_train(hn_vindex *v, const float *x, int64_t n);
// Adds x (n, dim) under ids (n). An ivfpq index must be trained (HN_ERR_ARG otherwise).
hn_status hn_vindex_add(hn_vindex *v, const float *x, const int64_t *ids, int64_t n);
// Whether hn_vindex_remove works on this kind (flat and ivfpq yes, hnsw no).
bool hn_vindex_can_remove(const hn_vindex *v);
// Removes the vectors with these ids (ids not present are ignored); *removed (may be NULL) gets how many went.
// HN_ERR_UNSUPPORTED for hnsw.
hn_status hn_vindex_remove(hn_vindex *v, const int64_t *ids, int64_t n, int64_t *removed);

// The k best of each of nq queries q (nq, dim), best first: scores (nq, k) inner products, ids (nq, k); where the
// index holds fewer than k vectors the rest get id -1 and score -INFINITY. Safe to call from several threads at once
// (but not during an add, remove or hn_vindex_set_search_width on the same index). FAISS's OpenMP teams get
// hn_threads_get() threads, whichever thread calls.
hn_status hn_vindex_search(const hn_vindex *v, const float *q, int64_t nq, int k, float *scores, int64_t *ids);

int64_t hn_vindex_size(const hn_vindex *v);
int hn_vindex_dim(const hn_vindex *v);
hn_vindex_kind hn_vindex_kind_of(const hn_vindex *v);
// For hnsw the search beam; for ivfpq the lists probed (nprobe). Ignored for flat.
void hn_vindex_set_search_width(hn_vindex *v, int width);

// Writes the index atomically (a temporary file beside path, fsync'd, then renamed): a crash leaves the old file or
// the new one, never half of one.
hn_status hn_vindex_write(const hn_vindex *v, const char *path);
// Reads an index written by hn_vindex_write. A missing, truncated or foreign file is an error naming the path and
// what was wrong (FAISS's exceptions become messages; nothing is thrown through C).
hn_status hn_vindex_read(hn_vindex **out, const char *path);

#endif
