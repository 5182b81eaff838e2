// tensor/blas.c — OpenBLAS loaded by dlopen, with its kernel set chosen by hone.
//
// Why dlopen: Debian 12's OpenBLAS (0.3.21, DYNAMIC_ARCH) picks its kernels from the CPU model number when the
// library is loaded, and it does not know recent Xeons (Sapphire Rapids): it falls back to its "Prescott" SSE3
// kernels, ~8-20 GFLOP/s for sgemm where its AVX-512 "SkylakeX" kernels run ~55-470 on the same machine. It reads
// the OPENBLAS_CORETYPE environment variable at that moment, in its load-time constructor; a directly linked
// libopenblas runs that constructor before main, when hone cannot have set anything yet. So hone does not link it:
// the first hn_sgemm sets OPENBLAS_CORETYPE (only when the environment does not already name one — a user's or a
// machine's setting wins, e.g. CI hosts that pin Haswell — and only to a kernel set the CPU can run: SkylakeX needs
// AVX-512 F/BW/DQ/VL, Haswell AVX2 + FMA; otherwise OpenBLAS's own choice stands), then dlopens libopenblas.so.0.
// setenv is not thread-safe against concurrent getenv; it runs once, under pthread_once, normally before hone's
// threads exist (the first prompt or training step).
//
// Why OpenBLAS runs on one thread: hone splits each product itself with OpenMP (hn_sgemm's static split below, or
// a caller's team that calls hn_sgemm from every member). OpenBLAS's pthread pool is a second set of threads; both
// sets spin a while after their work, so alternating OpenMP regions (dequantizing, attention) with multi-threaded
// BLAS calls makes them fight over the cores. Measured on the 2-core box (T=512, Q4_1 576x576 dequantized then
// multiplied, load ~7): OpenBLAS with 2 threads after an OpenMP dequantize 13 GFLOP/s, OpenMP tiles each calling a
// 1-thread sgemm 27. hone's thread count (hn_threads_set) therefore reaches BLAS work through OpenMP, and the
// dlsym'd openblas_set_num_threads pins OpenBLAS's own count at 1 (OpenBLAS pthread builds are safe to call from
// several threads at once).
//
// Fallback (HONE_BLAS=off, or no libopenblas.so.0): hone's fp32 panel kernel (kernels.h), same interface, slower.
#define _GNU_SOURCE
#include "tensor/blas.h"
#include "tensor/kernels.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

// The CBLAS enum values, fixed by the CBLAS standard (cblas.h is not included: hone builds without it).
enum { CB_ROW_MAJOR = 101, CB_NO_TRANS = 111, CB_TRANS = 112 };
typedef void (*sgemm_fn)(int order, int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda,
                         const float *B, int ldb, float beta, float *C, int ldc);
typedef void (*sgemv_fn)(int order, int trans, int M, int N, float alpha, const float *A, int lda, const float *x,
                         int incx, float beta, float *y, int incy);

static struct {
    pthread_once_t once;
    void *lib;
    sgemm_fn sgemm;
    sgemv_fn sgemv;
    const char *core;
} g_blas = {.once = PTHREAD_ONCE_INIT, .core = "hone-panel"};

static const char *cpu_coretype(void) {
    // __builtin_cpu_supports also checks that the OS saves the wide registers (XCR0).
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl"))
        return "SkylakeX";
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return "Haswell";
    return NULL;
}

static void blas_load(void) {
    const char *off = getenv("HONE_BLAS");
    if (off && (!strcmp(off, "off") || !strcmp(off, "0"))) return;
    const char *want = cpu_coretype();
    const char *have = getenv("OPENBLAS_CORETYPE");
    bool chose = want && (!have || !*have);
    void *early = dlopen("libopenblas.so.0", RTLD_NOW | RTLD_NOLOAD);
    if (early) {
        if (chose)
            hn_warn("blas: libopenblas.so.0 was loaded before hone could choose its kernels (is the program linked "
                    "with -lopenblas? link -ldl instead); it runs what it picked itself");
        dlclose(early);
        chose = false;
    }
    if (chose) setenv("OPENBLAS_CORETYPE", want, 1);
    void *lib = dlopen("libopenblas.so.0", RTLD_NOW | RTLD_LOCAL);
    if (!lib) lib = dlopen("libopenblas.so", RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
        hn_warn("blas: libopenblas.so.0 not found (%s); large fp32 products use hone's slower panel kernel",
                dlerror());
        return;
    }
    sgemm_fn sgemm = (sgemm_fn)dlsym(lib, "cblas_sgemm");
    sgemv_fn sgemv = (sgemv_fn)dlsym(lib, "cblas_sgemv");
    void (*set_threads)(int) = (void (*)(int))dlsym(lib, "openblas_set_num_threads");
    char *(*corename)(void) = (char *(*)(void))dlsym(lib, "openblas_get_corename");
    if (!sgemm || !sgemv) {
        hn_warn("blas: %s lacks cblas_sgemm/cblas_sgemv; using hone's panel kernel", "libopenblas.so.0");
        dlclose(lib);
        return;
    }
    if (set_threads) set_threads(1);
    g_blas.lib = lib;
    g_blas.sgemm = sgemm;
    g_blas.sgemv = sgemv;
    g_blas.core = corename ? corename() : "openblas";
}

static void blas_init(void) { pthread_once(&g_blas.once, blas_load); }

bool hn_blas_loaded(void) {
    blas_init();
    return g_blas.sgemm != NULL;
}

const char *hn_blas_core(void) {
    blas_init();
    return g_blas.core;
}

void *hn_blas_symbol(const char *name) {
    blas_init();
    return g_blas.lib ? dlsym(g_blas.lib, name) : NULL;
}

// One thread's part through the panel kernel: op(A) made contiguous (the kernel takes x with row stride K), then
// op(B) 32 columns at a time, transposed into a panel.
static void part_panel(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float *A, int64_t lda,
                       const float *B, int64_t ldb, float beta, float *C, int64_t ldc) {
    const hn_gemm_panel_fn gemm = hn_gemm_panel_fn_active();
    float *a = NULL, *pack = hn_alloc_aligned((size_t)K * HN_PANEL * sizeof(float), "sgemm panel");
    float *tmp = hn_alloc_aligned((size_t)M * HN_PANEL * sizeof(float), "sgemm panel product");
    const float *x = A;
    if (ta || lda != K) {
        a = hn_alloc_aligned((size_t)M * K * sizeof(float), "sgemm rows");
        if (a)
            for (int64_t m = 0; m < M; m++)
                for (int64_t k = 0; k < K; k++) a[m * K + k] = ta ? A[k * lda + m] : A[m * lda + k];
        x = a;
    }
    if (!pack || !tmp || !x) {
        // Out of memory for scratch: a plain loop still gives the product.
        for (int64_t m = 0; m < M; m++)
            for (int64_t n = 0; n < N; n++) {
                float s = 0.0f;
                for (int64_t k = 0; k < K; k++)
                    s += (ta ? A[k * lda + m] : A[m * lda + k]) * (tb ? B[n * ldb + k] : B[k * ldb + n]);
                C[m * ldc + n] = alpha * s + (beta == 0.0f ? 0.0f : beta * C[m * ldc + n]);
            }
    } else {
        for (int64_t n0 = 0; n0 < N; n0 += HN_PANEL) {
            int nr = N - n0 < HN_PANEL ? (int)(N - n0) : HN_PANEL;
            for (int64_t k = 0; k < K; k++)
                for (int r = 0; r < HN_PANEL; r++)
                    pack[k * HN_PANEL + r] = r >= nr ? 0.0f : tb ? B[(n0 + r) * ldb + k] : B[k * ldb + n0 + r];
            gemm(M, K, x, pack, tmp, HN_PANEL, nr);
            for (int64_t m = 0; m < M; m++)
                for (int r = 0; r < nr; r++) {
                    float *c = &C[m * ldc + n0 + r];
                    *c = alpha * tmp[m * HN_PANEL + r] + (beta == 0.0f ? 0.0f : beta * *c);
                }
        }
    }
    free(a);
    free(pack);
    free(tmp);
}

static void part(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float *A, int64_t lda,
                 const float *B, int64_t ldb, float beta, float *C, int64_t ldc) {
    if (M <= 0 || N <= 0) return;
    if (K <= 0) {
        for (int64_t m = 0; m < M; m++)
            for (int64_t n = 0; n < N; n++) C[m * ldc + n] = beta == 0.0f ? 0.0f : beta * C[m * ldc + n];
        return;
    }
    if (!g_blas.sgemm) {
        part_panel(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    } else if (M == 1) {
        // One row: y (N) = alpha · op(B)^T a + beta · y, the decode step of an fp32 weight.
        int inca = ta ? (int)lda : 1;
        if (tb)
            g_blas.sgemv(CB_ROW_MAJOR, CB_NO_TRANS, (int)N, (int)K, alpha, B, (int)ldb, A, inca, beta, C, 1);
        else
            g_blas.sgemv(CB_ROW_MAJOR, CB_TRANS, (int)K, (int)N, alpha, B, (int)ldb, A, inca, beta, C, 1);
    } else {
        g_blas.sgemm(CB_ROW_MAJOR, ta ? CB_TRANS : CB_NO_TRANS, tb ? CB_TRANS : CB_NO_TRANS, (int)M, (int)N, (int)K,
                     alpha, A, (int)lda, B, (int)ldb, beta, C, (int)ldc);
    }
}

// Below this many multiply-adds a product runs on one thread: starting a team costs more than it saves.
#define SGEMM_SPLIT_MIN (1 << 18)

void hn_sgemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float *A, int64_t lda,
              const float *B, int64_t ldb, float beta, float *C, int64_t ldc) {
    if (M <= 0 || N <= 0) return;
    blas_init();
    int nt = 1;
#ifdef _OPENMP
    if (!omp_in_parallel()) {
        double work = (double)M * (double)N * (double)(K > 0 ? K : 1);
        double cap = work / SGEMM_SPLIT_MIN;
        nt = hn_threads_get();
        if (cap < nt) nt = cap > 1 ? (int)cap : 1;
    }
#endif
    if (nt <= 1) {
        part(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
        return;
    }
    // A static split of C's longer side in multiples of 16 (whole cache lines of C when splitting columns): the
    // parts, and so the sums, depend only on the thread count.
    const bool rows = M >= N;
    const int64_t len = rows ? M : N;
    int64_t per = (len + nt - 1) / nt;
    per = (per + 15) / 16 * 16;
#pragma omp parallel num_threads(nt)
    {
        int64_t i0 = 0, i1 = len;
#ifdef _OPENMP
        i0 = omp_get_thread_num() * per;
        i1 = i0 + per < len ? i0 + per : len;
#endif
        if (i0 < i1) {
            if (rows)
                part(ta, tb, i1 - i0, N, K, alpha, ta ? A + i0 : A + i0 * lda, lda, B, ldb, beta, C + i0 * ldc, ldc);
            else
                part(ta, tb, M, i1 - i0, K, alpha, A, lda, tb ? B + i0 * ldb : B + i0, ldb, beta, C + i0, ldc);
        }
    }
}
