// io/vindex.cpp — io/vindex.h over FAISS 1.7.3's C++ API (Debian builds no FAISS C API): the only C++ in hone.
//
// Shapes: flat = IndexIDMap2(IndexFlatIP), hnsw = IndexIDMap2(IndexHNSWFlat, inner product), ivfpq = IndexIVFPQ
// over an IndexFlatIP quantizer (IVF carries ids itself). hn_vindex_read accepts only these. Every FAISS call runs
// inside guard(): an exception never crosses into C, it becomes an hn_fail message of one line.
//
// BLAS: libfaiss.a calls Fortran BLAS/LAPACK (sgemm_, sgesvd_, ...). Linking libblas/libopenblas would load
// OpenBLAS before main, which tensor/blas.c avoids on purpose, so the symbols are defined at the end of this file:
// sgemm_ (flat search with >= 20 queries, k-means in IVF-PQ training) goes to hn_sgemm, which uses OpenBLAS when
// it is loaded and hone's panel kernel otherwise, and splits the product over hone's threads (tensor/blas.c pins
// OpenBLAS itself to one thread, so OpenBLAS's own sgemm_ would run on one core); the rest go to the same-named
// symbol of the dlopened OpenBLAS (Debian's libopenblas0 includes LAPACK).
extern "C" {
#include "io/vindex.h"
#include "tensor/blas.h"
}

#include <faiss/IndexFlat.h>
#include <faiss/IndexHNSW.h>
#include <faiss/IndexIDMap.h>
#include <faiss/IndexIVFPQ.h>
#include <faiss/impl/FaissException.h>
#include <faiss/impl/IDSelector.h>
#include <faiss/index_io.h>
#include <faiss/utils/distances.h>
#include <omp.h>
#include <sys/stat.h>

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <new>
#include <string>
#include <typeinfo>

struct hn_vindex {
    hn_vindex_params p;
    faiss::Index *index;      // NULL only for an ivfpq index whose nlist waits for the training set's size
    faiss::IndexIDMap2 *map;  // flat, hnsw: the id layer (== index)
    faiss::IndexIVFPQ *ivf;   // ivfpq (== index)
};

// FAISS's messages read "Error in FUNCTION at FILE:LINE: [Error: 'CONDITION' failed: ]what"; keep the what, on
// one line.
static std::string faiss_what(const char *msg) {
    std::string s(msg);
    size_t at = s.rfind(".cpp:");
    if (s.rfind("Error in ", 0) == 0 && at != std::string::npos && (at = s.find(": ", at + 5)) != std::string::npos)
        s = s.substr(at + 2);
    if (s.rfind("Error: '", 0) == 0 && (at = s.find("' failed: ")) != std::string::npos) s = s.substr(at + 10);
    for (char &c : s)
        if (c == '\n' || c == '\r') c = ' ';
    return s;
}

// Runs f (returning hn_status) with C++ exceptions turned into messages that start with `what` (the operation, or
// the path with what was being done to it). FAISS's own complaints get status `faiss_status`.
template <class F> static hn_status guard(hn_status faiss_status, const char *what, F &&f) {
    try {
        return f();
    } catch (const faiss::FaissException &e) {
        return hn_fail(faiss_status, "%s (%s)", what, faiss_what(e.what()).c_str());
    } catch (const std::bad_alloc &) {
        return hn_fail(HN_ERR_NOMEM, "%s: out of memory", what);
    } catch (const std::exception &e) {
        return hn_fail(faiss_status, "%s (%s)", what, faiss_what(e.what()).c_str());
    } catch (...) {
        return hn_fail(faiss_status, "%s (an unknown C++ exception)", what);
    }
}

// FAISS sizes its OpenMP teams with omp_get_max_threads(), which is the calling thread's own setting:
// hn_threads_set applies it only to the thread that called it, and a server's request thread still has OpenMP's
// default (every core). Each call that runs FAISS work therefore sets hone's count for its duration.
struct threads_scope {
    int old;
    threads_scope() {
        int n = hn_threads_get();
        old = omp_get_max_threads();
        if (n != old) omp_set_num_threads(n);
    }
    ~threads_scope() {
        if (omp_get_max_threads() != old) omp_set_num_threads(old);
    }
};

// FAISS's exact inner-product search loops over query/vector pairs with its own dot product below 20 queries and
// multiplies through sgemm_ from 20 on. With OpenBLAS the product is the faster one at any count: measured on the
// 2-core box, 50000 x 384 flat, nq 1: 9 ms against 22-30 ms; nq 19: 75 against 570-630 ms. (hone's panel kernel,
// HONE_BLAS=off, loses at one query, 43 against 25 ms, so the threshold stays there.) Set once, before any index
// exists; FAISS reads it at each search.
static void tune_faiss() {
    static std::once_flag once;
    std::call_once(once, [] {
        if (hn_blas_loaded()) faiss::distance_compute_blas_threshold = 1;
    });
}

static const char *const kind_names[HN_VINDEX_KIND_COUNT] = {"flat", "hnsw", "ivfpq"};

const char *hn_vindex_kind_name(hn_vindex_kind k) {
    return k >= 0 && k < HN_VINDEX_KIND_COUNT ? kind_names[k] : "?";
}

hn_vindex_kind hn_vindex_kind_parse(const char *name) {
    for (int k = 0; name && k < HN_VINDEX_KIND_COUNT; k++)
        if (!strcmp(name, kind_names[k])) return (hn_vindex_kind)k;
    return HN_VINDEX_KIND_COUNT;
}

hn_vindex_params hn_vindex_default_params(hn_vindex_kind kind, int dim) {
    hn_vindex_params p;
    memset(&p, 0, sizeof p);
    p.kind = kind;
    p.dim = dim;
    p.hnsw_m = 32, p.ef_construction = 64, p.ef_search = 64;
    p.nlist = 0, p.nprobe = 16;
    p.pq_m = 0, p.pq_bits = 8;
    return p;
}

// Sub-vectors of 8 dimensions, else 4, 2, 1: the first that divides dim.
static int auto_pq_m(int dim) {
    for (int sub = 8; sub > 1; sub /= 2)
        if (dim % sub == 0) return dim / sub;
    return dim;
}

// 4 sqrt(n) lists, but no more than n / 39 (FAISS wants 39 training vectors a centroid), and at least 1.
static int64_t auto_nlist(int64_t n) {
    int64_t nl = (int64_t)std::llround(4.0 * std::sqrt((double)(n > 0 ? n : 0)));
    if (nl > n / 39) nl = n / 39;
    return nl < 1 ? 1 : nl;
}

int64_t hn_vindex_min_train(const hn_vindex_params *p, int64_t n) {
    if (p->kind != HN_VINDEX_IVFPQ) return 0;
    int bits = p->pq_bits < 1 ? 1 : p->pq_bits > 16 ? 16 : p->pq_bits; // create refuses others; no shift past 63
    int64_t nlist = p->nlist > 0 ? p->nlist : auto_nlist(n), codes = (int64_t)1 << bits;
    return 39 * (nlist > codes ? nlist : codes);
}

static hn_status build_ivf(hn_vindex *v, int64_t nlist) {
    faiss::IndexFlatIP *q = new faiss::IndexFlatIP(v->p.dim);
    try {
        v->ivf = new faiss::IndexIVFPQ(q, v->p.dim, (size_t)nlist, v->p.pq_m, v->p.pq_bits,
                                       faiss::METRIC_INNER_PRODUCT);
    } catch (...) {
        delete q;
        throw;
    }
    v->ivf->own_fields = true;
    v->ivf->nprobe = v->p.nprobe;
    v->index = v->ivf;
    return HN_OK;
}

static hn_status check_params(const hn_vindex_params *p) {
    if (p->kind < 0 || p->kind >= HN_VINDEX_KIND_COUNT) return hn_fail(HN_ERR_ARG, "vindex: unknown kind %d", p->kind);
    const char *k = kind_names[p->kind];
    if (p->dim < 1 || p->dim > (1 << 20)) return hn_fail(HN_ERR_ARG, "%s: dim %d, expected 1 to 1048576", k, p->dim);
    if (p->kind == HN_VINDEX_HNSW) {
        if (p->hnsw_m < 2 || p->hnsw_m > 512) return hn_fail(HN_ERR_ARG, "hnsw: M %d, expected 2 to 512", p->hnsw_m);
        if (p->ef_construction < 1 || p->ef_search < 1)
            return hn_fail(HN_ERR_ARG, "hnsw: efConstruction %d / efSearch %d, expected >= 1", p->ef_construction,
                           p->ef_search);
    } else if (p->kind == HN_VINDEX_IVFPQ) {
        if (p->nlist < 0 || p->nprobe < 1)
            return hn_fail(HN_ERR_ARG, "ivfpq: nlist %d / nprobe %d, expected nlist >= 0 (0: chosen) and nprobe >= 1",
                           p->nlist, p->nprobe);
        if (p->pq_bits < 1 || p->pq_bits > 16)
            return hn_fail(HN_ERR_ARG, "ivfpq: pq_bits %d, expected 1 to 16", p->pq_bits);
        if (p->pq_m < 0 || (p->pq_m > 0 && p->dim % p->pq_m))
            return hn_fail(HN_ERR_ARG, "ivfpq: pq_m %d does not divide dim %d (0 chooses dim / 8)", p->pq_m, p->dim);
    }
    return HN_OK;
}

hn_status hn_vindex_create(hn_vindex **out, const hn_vindex_params *p) {
    *out = NULL;
    hn_status s = check_params(p);
    if (s) return s;
    tune_faiss();
    hn_vindex *v = new (std::nothrow) hn_vindex();
    if (!v) return hn_fail(HN_ERR_NOMEM, "vindex: out of memory");
    v->p = *p;
    if (p->kind == HN_VINDEX_IVFPQ && !p->pq_m) v->p.pq_m = auto_pq_m(p->dim);
    s = guard(HN_ERR_ARG, kind_names[p->kind], [&] {
        if (p->kind == HN_VINDEX_IVFPQ) return p->nlist ? build_ivf(v, p->nlist) : HN_OK;
        faiss::Index *inner;
        if (p->kind == HN_VINDEX_FLAT) {
            inner = new faiss::IndexFlatIP(p->dim);
        } else {
            faiss::IndexHNSWFlat *h = new faiss::IndexHNSWFlat(p->dim, p->hnsw_m, faiss::METRIC_INNER_PRODUCT);
            h->hnsw.efConstruction = p->ef_construction;
            h->hnsw.efSearch = p->ef_search;
            inner = h;
        }
        try {
            v->map = new faiss::IndexIDMap2(inner);
        } catch (...) {
            delete inner;
            throw;
        }
        v->map->own_fields = true;
        v->index = v->map;
        return HN_OK;
    });
    if (s) {
        hn_vindex_destroy(v);
        return s;
    }
    *out = v;
    return HN_OK;
}

void hn_vindex_destroy(hn_vindex *v) {
    if (!v) return;
    delete v->index; // owns the inner index / quantizer
    delete v;
}

bool hn_vindex_is_trained(const hn_vindex *v) { return v->index && v->index->is_trained; }

hn_status hn_vindex_train(hn_vindex *v, const float *x, int64_t n) {
    if (v->p.kind != HN_VINDEX_IVFPQ) return HN_OK;
    if (hn_vindex_is_trained(v)) return hn_fail(HN_ERR_ARG, "ivfpq: already trained");
    int64_t need = hn_vindex_min_train(&v->p, n);
    if (n < need || !x) {
        int64_t nlist = v->p.nlist ? v->p.nlist : auto_nlist(n);
        return hn_fail(HN_ERR_RANGE,
                       "ivfpq: %lld vectors are too few to train (at least %lld for %d-centroid codebooks and %lld "
                       "lists); use --index flat or hnsw",
                       (long long)n, (long long)need, 1 << v->p.pq_bits, (long long)nlist);
    }
    return guard(HN_ERR_ARG, "ivfpq: training failed", [&] {
        threads_scope t;
        if (!v->index) build_ivf(v, auto_nlist(n));
        v->index->train(n, x);
        return HN_OK;
    });
}

hn_status hn_vindex_add(hn_vindex *v, const float *x, const int64_t *ids, int64_t n) {
    const char *k = kind_names[v->p.kind];
    if (n < 0 || (n > 0 && (!x || !ids)))
        return hn_fail(HN_ERR_ARG, "%s: add of %lld vectors without data", k, (long long)n);
    if (!hn_vindex_is_trained(v)) return hn_fail(HN_ERR_ARG, "%s: add before the index is trained", k);
    if (!n) return HN_OK;
    return guard(HN_ERR_ARG, v->p.kind == HN_VINDEX_IVFPQ ? "ivfpq: add failed" : "vindex: add failed", [&] {
        threads_scope t;
        v->index->add_with_ids(n, x, ids);
        return HN_OK;
    });
}

bool hn_vindex_can_remove(const hn_vindex *v) { return v->p.kind != HN_VINDEX_HNSW; }

hn_status hn_vindex_remove(hn_vindex *v, const int64_t *ids, int64_t n, int64_t *removed) {
    if (removed) *removed = 0;
    if (!hn_vindex_can_remove(v))
        return hn_fail(HN_ERR_UNSUPPORTED, "hnsw: FAISS's HNSW graph cannot remove vectors; rebuild the index "
                                           "without them (or use flat or ivfpq)");
    if (n < 0 || (n > 0 && !ids)) return hn_fail(HN_ERR_ARG, "vindex: remove of %lld ids without ids", (long long)n);
    if (!n || !v->index) return HN_OK;
    return guard(HN_ERR_ARG, "vindex: remove failed", [&] {
        faiss::IDSelectorBatch sel((size_t)n, ids);
        size_t r = v->index->remove_ids(sel);
        if (removed) *removed = (int64_t)r;
        return HN_OK;
    });
}

hn_status hn_vindex_search(const hn_vindex *v, const float *q, int64_t nq, int k, float *scores, int64_t *ids) {
    if (k < 1 || nq < 0 || (nq > 0 && (!q || !scores || !ids)))
        return hn_fail(HN_ERR_ARG, "vindex: search with k %d, %lld queries, expected k >= 1 and buffers", k,
                       (long long)nq);
    if (!nq) return HN_OK;
    hn_status s = HN_OK;
    if (v->index && v->index->ntotal > 0) // FAISS's HNSW has no entry point when empty
        s = guard(HN_ERR_ARG, "vindex: search failed", [&] {
            threads_scope t;
            v->index->search(nq, q, k, scores, ids);
            return HN_OK;
        });
    else
        for (int64_t i = 0; i < nq * k; i++) ids[i] = -1;
    if (s) return s;
    for (int64_t i = 0; i < nq * k; i++)
        if (ids[i] < 0) scores[i] = -INFINITY;
    return HN_OK;
}

int64_t hn_vindex_size(const hn_vindex *v) { return v->index ? v->index->ntotal : 0; }
int hn_vindex_dim(const hn_vindex *v) { return v->p.dim; }
hn_vindex_kind hn_vindex_kind_of(const hn_vindex *v) { return v->p.kind; }

void hn_vindex_set_search_width(hn_vindex *v, int width) {
    if (width < 1) width = 1;
    if (v->p.kind == HN_VINDEX_HNSW) {
        v->p.ef_search = width;
        static_cast<faiss::IndexHNSW *>(v->map->index)->hnsw.efSearch = width;
    } else if (v->p.kind == HN_VINDEX_IVFPQ) {
        v->p.nprobe = width;
        if (v->ivf) v->ivf->nprobe = width;
    }
}

hn_status hn_vindex_write(const hn_vindex *v, const char *path) {
    if (!hn_vindex_is_trained(v))
        return hn_fail(HN_ERR_ARG, "%s: the ivfpq index is not trained; nothing to write", path);
    hn_afile af;
    hn_status s = hn_afile_open(&af, path);
    if (s) return s;
    std::string what = std::string(path) + ": cannot write the index";
    s = guard(HN_ERR_IO, what.c_str(), [&] {
        faiss::write_index(v->index, (FILE *)af.fp);
        return HN_OK;
    });
    if (s) {
        hn_afile_abort(&af);
        return s;
    }
    return hn_afile_commit(&af); // fflush, fsync, rename
}

// Which of hone's shapes idx is (with its parameters in p), or HN_VINDEX_KIND_COUNT.
static hn_vindex_kind shape_of(faiss::Index *idx, hn_vindex_params *p) {
    if (idx->metric_type != faiss::METRIC_INNER_PRODUCT || idx->d < 1) return HN_VINDEX_KIND_COUNT;
    *p = hn_vindex_default_params(HN_VINDEX_FLAT, (int)idx->d);
    if (typeid(*idx) == typeid(faiss::IndexIDMap2)) {
        faiss::IndexIDMap2 *m = static_cast<faiss::IndexIDMap2 *>(idx);
        faiss::Index *in = m->index;
        if (!in || in->d != idx->d || in->metric_type != idx->metric_type || in->ntotal != idx->ntotal ||
            m->id_map.size() != (size_t)idx->ntotal)
            return HN_VINDEX_KIND_COUNT;
        if (typeid(*in) == typeid(faiss::IndexFlatIP)) return p->kind = HN_VINDEX_FLAT;
        if (typeid(*in) != typeid(faiss::IndexHNSWFlat)) return HN_VINDEX_KIND_COUNT;
        faiss::IndexHNSWFlat *h = static_cast<faiss::IndexHNSWFlat *>(in);
        if (!h->storage || h->storage->ntotal != in->ntotal || h->hnsw.levels.size() != (size_t)in->ntotal)
            return HN_VINDEX_KIND_COUNT;
        p->hnsw_m = h->hnsw.nb_neighbors(1);
        p->ef_construction = h->hnsw.efConstruction;
        p->ef_search = h->hnsw.efSearch;
        return p->kind = HN_VINDEX_HNSW;
    }
    if (typeid(*idx) == typeid(faiss::IndexIVFPQ)) {
        faiss::IndexIVFPQ *f = static_cast<faiss::IndexIVFPQ *>(idx);
        if (!f->quantizer || typeid(*f->quantizer) != typeid(faiss::IndexFlatIP) || !f->is_trained ||
            f->quantizer->ntotal != (faiss::Index::idx_t)f->nlist)
            return HN_VINDEX_KIND_COUNT;
        p->nlist = (int)f->nlist, p->nprobe = (int)f->nprobe, p->pq_m = (int)f->pq.M, p->pq_bits = (int)f->pq.nbits;
        return p->kind = HN_VINDEX_IVFPQ;
    }
    return HN_VINDEX_KIND_COUNT;
}

hn_status hn_vindex_read(hn_vindex **out, const char *path) {
    *out = NULL;
    tune_faiss();
    FILE *f = fopen(path, "rb");
    if (!f) return hn_fail(HN_ERR_IO, "%s: cannot open the vector index: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        fclose(f);
        return hn_fail(HN_ERR_IO, "%s: cannot read the vector index: not a regular file", path);
    }
    if (st.st_size == 0) {
        fclose(f);
        return hn_fail(HN_ERR_FORMAT, "%s: not a FAISS index (the file is empty)", path);
    }
    // FAISS 1.7.3's reader is not exception-safe: when a truncated file makes it throw, what it had read so far
    // leaks (at most about the file's size, once per bad file). A damaged size field inside a file can also make it
    // allocate up to 2^40 elements before its read fails.
    faiss::Index *idx = NULL;
    std::string what = std::string(path) + ": not a FAISS index";
    hn_status s = guard(HN_ERR_FORMAT, what.c_str(), [&] {
        idx = faiss::read_index(f);
        return HN_OK;
    });
    if (s == HN_ERR_FORMAT && feof(f)) // FAISS's "read error in : 3563 != 6400 (errno of something else)"
        s = hn_fail(HN_ERR_FORMAT, "%s: not a FAISS index, or a truncated one (the file ends before the index does)",
                    path);
    fclose(f);
    if (s) return s;
    hn_vindex *v = new (std::nothrow) hn_vindex();
    if (!v || shape_of(idx, &v->p) == HN_VINDEX_KIND_COUNT) {
        delete idx;
        delete v;
        return v ? hn_fail(HN_ERR_FORMAT, "%s: a FAISS index of a type, metric or layout hone does not write "
                                          "(expected flat, hnsw or ivfpq over inner product)", path)
                 : hn_fail(HN_ERR_NOMEM, "%s: out of memory", path);
    }
    v->index = idx;
    if (v->p.kind == HN_VINDEX_IVFPQ) v->ivf = static_cast<faiss::IndexIVFPQ *>(idx);
    else v->map = static_cast<faiss::IndexIDMap2 *>(idx);
    *out = v;
    return HN_OK;
}

// ---- Fortran BLAS/LAPACK for libfaiss.a ----
// FAISS passes every argument by pointer and, being C++, no hidden string lengths; Debian builds it and OpenBLAS
// with 32-bit Fortran integers. The LAPACK routines are gfortran code that expects a length (size_t, here 1) after
// the arguments for each character argument, which the forwarders pass.
typedef int fint;

// hone never builds the index types whose code calls LAPACK (PCA, OPQ, ITQ, random rotations, the additive
// quantizers), so a routine that OpenBLAS cannot supply (HONE_BLAS=off, no libopenblas.so.0) ends the program.
// The routine's type is the arguments' (all pointers, then the lengths).
template <class... A> static void lapack(const char *name, A... args) {
    void (*f)(A...) = (void (*)(A...))hn_blas_symbol(name);
    if (!f) {
        fprintf(stderr, "hone: vindex: FAISS called %s, which needs OpenBLAS's LAPACK (libopenblas.so.0, "
                        "HONE_BLAS not off); hone builds no index type that uses it\n", name);
        abort();
    }
    f(args...);
}

extern "C" {
typedef const char *C;
typedef fint *I;
static const size_t L1 = 1; // the hidden length of a one-character argument

// Column-major C (m, n) = alpha op(A) op(B) + beta C is the row-major C^T (n, m) = op(B)^T op(A)^T.
int sgemm_(C ta, C tb, I m, I n, I k, float *al, float *a, I lda, float *b, I ldb, float *be, float *c, I ldc) {
    hn_sgemm(*tb != 'N' && *tb != 'n', *ta != 'N' && *ta != 'n', *n, *m, *k, *al, b, *ldb, a, *lda, *be, c, *ldc);
    return 0;
}
int dgemm_(C ta, C tb, I m, I n, I k, double *al, double *a, I lda, double *b, I ldb, double *be, double *c, I ldc) {
    return lapack("dgemm_", ta, tb, m, n, k, al, a, lda, b, ldb, be, c, ldc, L1, L1), 0;
}
int ssyrk_(C uplo, C tr, I n, I k, float *al, float *a, I lda, float *be, float *c, I ldc) {
    return lapack("ssyrk_", uplo, tr, n, k, al, a, lda, be, c, ldc, L1, L1), 0;
}
int sgesvd_(C ju, C jv, I m, I n, float *a, I lda, float *s, float *u, I ldu, float *vt, I ldvt, float *w, I lw,
            I info) {
    return lapack("sgesvd_", ju, jv, m, n, a, lda, s, u, ldu, vt, ldvt, w, lw, info, L1, L1), 0;
}
int dgesvd_(C ju, C jv, I m, I n, double *a, I lda, double *s, double *u, I ldu, double *vt, I ldvt, double *w,
            I lw, I info) {
    return lapack("dgesvd_", ju, jv, m, n, a, lda, s, u, ldu, vt, ldvt, w, lw, info, L1, L1), 0;
}
int dsyev_(C jz, C uplo, I n, double *a, I lda, double *w, double *wk, I lw, I info) {
    return lapack("dsyev_", jz, uplo, n, a, lda, w, wk, lw, info, L1, L1), 0;
}
int sgetrf_(I m, I n, float *a, I lda, I ipiv, I info) { return lapack("sgetrf_", m, n, a, lda, ipiv, info), 0; }
int dgetrf_(I m, I n, double *a, I lda, I ipiv, I info) { return lapack("dgetrf_", m, n, a, lda, ipiv, info), 0; }
int sgetri_(I n, float *a, I lda, I ipiv, float *w, I lw, I info) {
    return lapack("sgetri_", n, a, lda, ipiv, w, lw, info), 0;
}
int dgetri_(I n, double *a, I lda, I ipiv, double *w, I lw, I info) {
    return lapack("dgetri_", n, a, lda, ipiv, w, lw, info), 0;
}
int sgelsd_(I m, I n, I nrhs, float *a, I lda, float *b, I ldb, float *s, float *rcond, I rank, float *w, I lw,
            I iw, I info) {
    return lapack("sgelsd_", m, n, nrhs, a, lda, b, ldb, s, rcond, rank, w, lw, iw, info), 0;
}
int sgeqrf_(I m, I n, float *a, I lda, float *tau, float *w, I lw, I info) {
    return lapack("sgeqrf_", m, n, a, lda, tau, w, lw, info), 0;
}
int sorgqr_(I m, I n, I k, float *a, I lda, float *tau, float *w, I lw, I info) {
    return lapack("sorgqr_", m, n, k, a, lda, tau, w, lw, info), 0;
}
}
