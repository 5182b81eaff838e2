// tensor/blas.h — fp32 GEMM for the FAST paths: OpenBLAS, loaded at run time so that hone can pick its kernels
// for this CPU first (blas.c says why), or hone's own fp32 panel kernel where OpenBLAS cannot be loaded.
//
// Results depend on the thread count (hn_threads_get()) but are bitwise the same from run to run for a given count;
// HN_MM_EXACT paths do not use this layer.
//
//   hn_sgemm(false, true, T, N, K, 1.0f, x, K, w, K, 0.0f, y, N);   // y (T, N) = x (T, K) · w (N, K)^T
#ifndef HN_BLAS_H
#define HN_BLAS_H

#include "base/base.h"

// C (M, N) = alpha · op(A) · op(B) + beta · C, all row-major. op(A) is (M, K): A itself is (M, K) with row stride
// lda, or with ta (K, M), transposed. op(B) is (K, N): B is (K, N), or with tb (N, K). beta == 0 ignores C's old
// values (NaN included). Outside an OpenMP parallel region the product is split over hn_threads_get() threads;
// inside one it runs on the calling thread only, so a team may call it from every member at once.
void hn_sgemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float *A, int64_t lda,
              const float *B, int64_t ldb, float beta, float *C, int64_t ldc);

// Whether OpenBLAS was loaded (false with HONE_BLAS=off in the environment, or when libopenblas.so.0 is absent).
bool hn_blas_loaded(void);
// OpenBLAS's kernel set ("SkylakeX", "Haswell", ...), or "hone-panel" for the fallback.
const char *hn_blas_core(void);
// A symbol of the loaded OpenBLAS (loading it first, as hn_sgemm does), e.g. "sgesvd_" (Debian's libopenblas0
// carries LAPACK too); NULL when OpenBLAS is not loaded or lacks it. io/vindex.cpp forwards FAISS's Fortran
// BLAS/LAPACK calls through it.
void *hn_blas_symbol(const char *name);

#endif
