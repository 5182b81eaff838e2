// tensor/matmul.c — y (T, N) = x (T, K) · W^T for a weight of any dtype, and embedding-row lookup.
//
// The ways to compute it:
//   - F32 weights in FAST mode: OpenBLAS sgemm / sgemv on W as it is (tensor/blas.h). (OpenBLAS's result depends
//     on the thread count, so EXACT takes the panel path for F32 too.)
//   - panels (EXACT): each thread dequantizes a panel of HN_PANEL weight rows to fp32 (transposed) and multiplies
//     it with all of x by a register-blocked fp32 kernel (kernels.h). Every output is one in-order sum over k, so
//     the result does not depend on the thread count, the panel or T.
//   - slabs (FAST for long inputs, the prompt and training): W dequantized a slab of rows at a time (all of it
//     when small), then one OpenBLAS sgemm over the team (tensor/blas.c loads the AVX-512 kernels; ~2x the panel
//     kernel per thread). Repeatable for a given thread count.
//   - mv (FAST for short inputs, the decode step; the default): x stays fp32, each weight block is dequantized in
//     registers and multiplied by FMA (kernels.h, hn_mv_fn); threads split the rows.
//   - rows (FAST for a batch of 4..128 tokens, 4..32 on AVX2: a serving step): threads split the rows; each
//     dequantizes 16 of its rows at a time to fp32 and multiplies them with all tokens by a register-tiled kernel
//     (kernels.h, hn_gemm_rows_fn). The weight is dequantized once per call, with no slab and no OpenBLAS copy of
//     it; every output is summed one way whatever T or the thread count.
//   - dot (FAST_Q8 for short inputs, or FAST with HONE_FAST_ACT=q8): x is converted once to the weight's
//     vec_dot_type (8-bit blocks for quantized weights), then each (row, token) pair is one integer SIMD dot
//     product; threads split the rows. Faster per element, but SmolLM2's outlier activations make 8-bit blocks
//     coarse: it misses DESIGN.md 7's fast-path row (see tests/test_model.c).
// OpenBLAS runs on one thread inside hone's OpenMP teams (tensor/blas.c), so together they never use more than
// hn_threads_get() threads. Scratch belongs to the calling thread and only grows, so a steady decode loop allocates nothing.
#include "tensor/blas.h"
#include "tensor/kernels.h"
#include "tensor/ops.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

// FAST_Q8 switches from 8-bit dot products to fp32 (rows, then slabs) at this many tokens; FAST without a batch
// kernel (scalar level) from the decode kernels to the slabs. Measured with bench/bench_matmul.c
// (AVX-512 VNNI Xeon, 1 thread, Q4_1 576x576): dots cost ~22 us per token, panels ~11.5 us per token plus ~0.3 ms
// to dequantize and pack the weight, so panels win from about 16 tokens; at T=512 they run ~58 GFLOP/s per thread
// against ~30 for the dots.
#define HN_MM_TILES_MIN_T 16
// FAST mode takes the batch path (mm_rows) for this many tokens; below, the decode kernels (one sequence, and a
// few: the weight streams from memory and mv reads it once per 4 tokens), above, the slabs and OpenBLAS (prompts
// and training). Measured with a bench of hn_matmul_path on SmolLM2's shapes (Q4_1 576x576, 576x192, 576x1536,
// 1536x576, Q8_0 576x49152; AVX-512 Sapphire Rapids, 2 threads, 2 busy cores): rows beat mv from 5 tokens on
// every shape, at 4 on all but 1536x576 (8% slower there, 12% faster on 576x1536 and 49152x576: faster in sum;
// 1 thread with the weight in L2, 576x576 at 4 tokens: 12 against 24 us per token), at 3 they tie; and rows beat
// the slabs up to 128 tokens (576x576 at 128: 5.8 against 6.5 us per token; at 192 they tie).
// With HONE_SIMD=avx2 on that machine (AVX2 rows kernel, but OpenBLAS keeps its AVX-512 sgemm) rows won to 16-32
// tokens and lost at 64 (576x576: 11.2 against 8.3 us per token), hence the lower limit there.
#define HN_MM_ROWS_MIN_T 4
#define HN_MM_ROWS_MAX_T 128
#define HN_MM_ROWS_MAX_T_AVX2 32
// Weight rows the batch path dequantizes at a time: 16 rows of 576 are 36 KiB (L1), of 1536 96 KiB (L2); 8 to 64
// measured the same within the noise of a shared machine.
#define HN_MM_ROWS_PANEL 16
// Weight rows a thread takes at a time in the dot path: their bytes stay in L1 while every token passes over them.
#define HN_MM_DOT_ROWS 16

#define HN_MM_MAX_THREADS 256

typedef struct {
    float *pack; // a panel of dequantized weight rows, transposed: (K, HN_PANEL)
    size_t pack_cap;
    float *row;  // the panel's rows dequantized, before the transpose: (HN_PANEL, K)
    size_t row_cap;
} mm_thread_scratch;

typedef struct {
    void *xq; // activations converted to vec_dot_type, (T, row bytes)
    size_t xq_cap;
    mm_thread_scratch th[HN_MM_MAX_THREADS];
} mm_scratch;

static _Thread_local mm_scratch g_scratch;

static bool grow(void **p, size_t *cap, size_t need, const char *what) {
    if (need <= *cap) return true;
    free(*p);
    *cap = 0;
    *p = hn_alloc_aligned(need, what);
    if (!*p) return false;
    *cap = need;
    return true;
}

static int team_size(int64_t work_items) {
    int n = hn_threads_get();
    return work_items < n ? (int)(work_items > 0 ? work_items : 1) : n;
}

static hn_status mm_check(const float *y, const float *x, const hn_tensor *w, int64_t T, size_t *row_bytes) {
    if (!w || !y || !x || T < 0) return hn_fail(HN_ERR_ARG, "hn_matmul: null argument or negative T");
    const hn_type_traits *tt = hn_type_traits_of(w->type);
    if (!tt || !tt->to_f32)
        return hn_fail(HN_ERR_UNSUPPORTED, "hn_matmul: weight %s: dtype %s cannot be multiplied", w->name,
                       hn_dtype_name(w->type));
    if (w->ne[0] <= 0 || w->ne[1] <= 0 || w->ne[2] != 1 || w->ne[3] != 1)
        return hn_fail(HN_ERR_ARG, "hn_matmul: weight %s: expected a 2-D shape, got {%lld, %lld, %lld, %lld}",
                       w->name, (long long)w->ne[0], (long long)w->ne[1], (long long)w->ne[2], (long long)w->ne[3]);
    size_t total;
    if (!hn_row_bytes(w->type, w->ne[0], row_bytes) || !hn_mul_ok(*row_bytes, (size_t)w->ne[1], &total))
        return hn_fail(HN_ERR_ARG, "hn_matmul: weight %s: row of %lld is not a whole number of %s blocks", w->name,
                       (long long)w->ne[0], tt->name);
    if (total > w->nbytes)
        return hn_fail(HN_ERR_ARG, "hn_matmul: weight %s: needs %zu bytes, has %zu", w->name, total, w->nbytes);
    return HN_OK;
}

static void mm_f32(float *y, const float *x, const hn_tensor *w, int64_t T) {
    const int64_t K = w->ne[0], N = w->ne[1];
    hn_sgemm(false, true, T, N, K, 1.0f, x, K, w->data, K, 0.0f, y, N);
}

// The slab path (FAST for long inputs): W is dequantized to fp32 a slab of whole rows at a time (all of it when
// it fits in HN_MM_SLAB_BYTES), the team splitting the rows, then one sgemm per slab that hn_sgemm splits over the
// team by tokens. Each thread packs its share of x and the slab once, where one-thread sgemms over narrow tiles of
// rows packed all of x again for every tile (~15% of a training step in packing). The slab buffer belongs to the
// calling thread and only grows.
#define HN_MM_SLAB_BYTES ((size_t)16 << 20)

static _Thread_local float *g_slab;
static _Thread_local size_t g_slab_cap;

int64_t hn_slab_rows(const hn_tensor *w) {
    int64_t rows = (int64_t)(HN_MM_SLAB_BYTES / ((size_t)w->ne[0] * sizeof(float)));
    return rows < 1 ? 1 : rows > w->ne[1] ? w->ne[1] : rows;
}

const float *hn_slab_f32(const hn_tensor *w, int64_t r0, int64_t nr) {
    const int64_t K = w->ne[0];
    const hn_type_traits *tt = hn_type_traits_of(w->type);
    size_t row_bytes;
    if (!tt || !tt->to_f32 || !hn_row_bytes(w->type, K, &row_bytes) || r0 < 0 || nr < 0 || r0 + nr > w->ne[1]) {
        hn_fail(HN_ERR_ARG, "matmul: rows [%lld, %lld) of %s (%s) cannot be dequantized", (long long)r0,
                (long long)(r0 + nr), w->name, hn_dtype_name(w->type));
        return NULL;
    }
    if (w->type == HN_F32) return (const float *)w->data + r0 * K;
    if (!grow((void **)&g_slab, &g_slab_cap, (size_t)(nr * K) * sizeof(float), "matmul weight slab")) return NULL;
    const uint8_t *wd = (const uint8_t *)w->data + (size_t)r0 * row_bytes;
    float *slab = g_slab;
#pragma omp parallel for num_threads(team_size(nr / 16)) schedule(static)
    for (int64_t r = 0; r < nr; r++) tt->to_f32(wd + (size_t)r * row_bytes, slab + r * K, K);
    return slab;
}

static hn_status mm_blas(float *y, const float *x, const hn_tensor *w, int64_t T) {
    const int64_t K = w->ne[0], N = w->ne[1], step = hn_slab_rows(w);
    for (int64_t n0 = 0; n0 < N; n0 += step) {
        int64_t nr = N - n0 < step ? N - n0 : step;
        const float *slab = hn_slab_f32(w, n0, nr);
        if (!slab) return HN_ERR_NOMEM;
        hn_sgemm(false, true, T, nr, K, 1.0f, x, K, slab, K, 0.0f, y + n0, N); // (T, nr)
    }
    return HN_OK;
}

static hn_status mm_tiles(float *y, const float *x, const hn_tensor *w, int64_t T, size_t row_bytes) {
    const int64_t K = w->ne[0], N = w->ne[1], npanels = (N + HN_PANEL - 1) / HN_PANEL;
    const hn_type_traits *tt = hn_type_traits_of(w->type);
    const hn_gemm_panel_fn gemm = hn_gemm_panel_fn_active();
    const uint8_t *wd = w->data;
    mm_scratch *s = &g_scratch;
    int nth = team_size(npanels);
    if (nth > HN_MM_MAX_THREADS) nth = HN_MM_MAX_THREADS;
    bool failed = false;
#pragma omp parallel num_threads(nth)
    {
        int ith = 0, nt = 1;
#ifdef _OPENMP
        ith = omp_get_thread_num();
        nt = omp_get_num_threads();
#endif
        mm_thread_scratch *ts = &s->th[ith];
        if (!grow((void **)&ts->pack, &ts->pack_cap, (size_t)K * HN_PANEL * sizeof(float), "matmul weight panel") ||
            !grow((void **)&ts->row, &ts->row_cap, (size_t)K * HN_PANEL * sizeof(float), "matmul weight rows")) {
#pragma omp atomic write
            failed = true;
        } else {
            float *pack = ts->pack, *rows = ts->row; // (K, HN_PANEL), (HN_PANEL, K)
            int64_t per = (npanels + nt - 1) / nt, p0 = ith * per, p1 = p0 + per < npanels ? p0 + per : npanels;
            for (int64_t p = p0; p < p1; p++) {
                int64_t n0 = p * HN_PANEL;
                int nr = N - n0 < HN_PANEL ? (int)(N - n0) : HN_PANEL;
                // Dequantize the rows side by side, then transpose walking k: each write is one full line of
                // the panel, and the HN_PANEL rows being read stay in L1.
                for (int r = 0; r < nr; r++) tt->to_f32(wd + (size_t)(n0 + r) * row_bytes, rows + (size_t)r * K, K);
                for (int64_t k = 0; k < K; k++) {
                    float *pk = pack + k * HN_PANEL;
                    for (int r = 0; r < nr; r++) pk[r] = rows[(size_t)r * K + k];
                    for (int r = nr; r < HN_PANEL; r++) pk[r] = 0.0f;
                }
                gemm(T, K, x, pack, y + n0, N, nr);
            }
        }
    }
    return failed ? HN_ERR_NOMEM : HN_OK;
}

static hn_status mm_dot(float *y, const float *x, const hn_tensor *w, int64_t T, size_t row_bytes) {
    const int64_t K = w->ne[0], N = w->ne[1];
    const hn_type_traits *tt = hn_type_traits_of(w->type);
    const hn_dtype vt = tt->vec_dot_type;
    const hn_vec_dot_fn dot = tt->vec_dot;
    size_t xrow, xbytes;
    if (!hn_row_bytes(vt, K, &xrow) || !hn_mul_ok(xrow, (size_t)T, &xbytes))
        return hn_fail(HN_ERR_ARG, "hn_matmul: %lld activations of %lld do not fit", (long long)T, (long long)K);
    const uint8_t *xq = (const uint8_t *)x;
    hn_quantize_fn quant = NULL;
    if (vt != HN_F32) {
        mm_scratch *s = &g_scratch;
        if (!grow(&s->xq, &s->xq_cap, xbytes, "matmul activations")) return HN_ERR_NOMEM;
        xq = s->xq;
        quant = hn_quantize_act_fn(vt);
    }
    uint8_t *xw = (uint8_t *)xq;
    const uint8_t *wd = w->data;
    int nth = team_size(N / HN_MM_DOT_ROWS);
#pragma omp parallel num_threads(nth)
    {
        int ith = 0, nt = 1;
#ifdef _OPENMP
        ith = omp_get_thread_num();
        nt = omp_get_num_threads();
#endif
        if (quant) {
            for (int64_t t = ith; t < T; t += nt) quant(x + t * K, xw + (size_t)t * xrow, K);
#pragma omp barrier
        }
        // Contiguous row ranges, so each thread streams its own part of W once.
        int64_t per = (N + nt - 1) / nt, r0 = ith * per, r1 = r0 + per < N ? r0 + per : N;
        for (int64_t rb = r0; rb < r1; rb += HN_MM_DOT_ROWS) {
            int64_t re = rb + HN_MM_DOT_ROWS < r1 ? rb + HN_MM_DOT_ROWS : r1;
            for (int64_t t = 0; t < T; t++) {
                const uint8_t *xt = xq + (size_t)t * xrow;
                float *yt = y + t * N;
                for (int64_t r = rb; r < re; r++) yt[r] = dot(K, wd + (size_t)r * row_bytes, xt);
            }
        }
    }
    return HN_OK;
}

hn_mv_fn hn_mv_fn_of(hn_simd level, hn_dtype t) {
    static const hn_mv_fn refs[HN_TYPE_COUNT] = {
        [HN_Q4_0] = hn_mv_q4_0_ref, [HN_Q4_1] = hn_mv_q4_1_ref, [HN_Q8_0] = hn_mv_q8_0_ref,
        [HN_Q2_K] = hn_mv_q2_k_ref, [HN_Q3_K] = hn_mv_q3_k_ref, [HN_Q4_K] = hn_mv_q4_k_ref,
        [HN_Q5_K] = hn_mv_q5_k_ref, [HN_Q6_K] = hn_mv_q6_k_ref, [HN_Q5_0] = hn_mv_q5_0_ref, [HN_Q5_1] = hn_mv_q5_1_ref,
    };
    hn_mv_fn ref = (unsigned)t < HN_TYPE_COUNT ? refs[t] : NULL;
    if (!ref || (unsigned)level >= HN_SIMD_COUNT) return ref;
    for (int l = (int)level; l > HN_SIMD_SCALAR; l--) {
        const hn_kernel_set *ks = hn_kernels_of((hn_simd)l);
        if (ks && ks->mv[t]) return ks->mv[t];
    }
    return ref;
}

hn_mv_fn hn_mv_fn_active(hn_dtype t) { return hn_mv_fn_of(hn_simd_active(), t); }

static hn_status mm_mv(float *y, const float *x, const hn_tensor *w, int64_t T, size_t row_bytes, hn_mv_fn mv) {
    const int64_t K = w->ne[0], N = w->ne[1];
    const uint8_t *wd = w->data;
    int nth = team_size(N / HN_MM_DOT_ROWS);
#pragma omp parallel num_threads(nth)
    {
        int ith = 0, nt = 1;
#ifdef _OPENMP
        ith = omp_get_thread_num();
        nt = omp_get_num_threads();
#endif
        // Contiguous row ranges in multiples of 4 (the kernels' row group), so each thread streams its part once.
        int64_t per = ((N + nt - 1) / nt + 3) & ~(int64_t)3, r0 = ith * per, r1 = r0 + per < N ? r0 + per : N;
        if (r0 < r1) mv(K, wd + (size_t)r0 * row_bytes, row_bytes, r1 - r0, x, T, y + r0, N);
    }
    return HN_OK;
}

hn_gemm_rows_fn hn_gemm_rows_fn_of(hn_simd level) {
    for (int l = (int)level; l > HN_SIMD_SCALAR && l < HN_SIMD_COUNT; l--) {
        const hn_kernel_set *ks = hn_kernels_of((hn_simd)l);
        if (ks && ks->gemm_rows) return ks->gemm_rows;
    }
    return NULL;
}

// The batch path (FAST, a serving step of several sequences): threads split the rows as mm_mv does; each thread
// dequantizes HN_MM_ROWS_PANEL of its rows at a time into its scratch (small enough to stay in L1/L2 while every
// token passes over it), and the hn_gemm_rows_fn kernel multiplies them with all T tokens. The weight is read and
// dequantized once per call, with neither the fp32 slab nor OpenBLAS's copy of it.
static hn_status mm_rows(float *y, const float *x, const hn_tensor *w, int64_t T, size_t row_bytes,
                         hn_gemm_rows_fn gemm) {
    const int64_t K = w->ne[0], N = w->ne[1];
    const hn_type_traits *tt = hn_type_traits_of(w->type);
    const uint8_t *wd = w->data;
    mm_scratch *s = &g_scratch;
    int nth = team_size(N / HN_MM_DOT_ROWS);
    if (nth > HN_MM_MAX_THREADS) nth = HN_MM_MAX_THREADS;
    const int64_t P = HN_MM_ROWS_PANEL;
    bool failed = false;
#pragma omp parallel num_threads(nth)
    {
        int ith = 0, nt = 1;
#ifdef _OPENMP
        ith = omp_get_thread_num();
        nt = omp_get_num_threads();
#endif
        mm_thread_scratch *ts = &s->th[ith];
        if (!grow((void **)&ts->row, &ts->row_cap, (size_t)K * (size_t)P * sizeof(float), "matmul weight rows")) {
#pragma omp atomic write
            failed = true;
        } else {
            int64_t per = ((N + nt - 1) / nt + 3) & ~(int64_t)3, r0 = ith * per, r1 = r0 + per < N ? r0 + per : N;
            for (int64_t p = r0; p < r1; p += P) {
                int64_t pr = r1 - p < P ? r1 - p : P;
                // While dequantizing row r, ask for row r of the next panel: weights come from L3 or DRAM, and the
                // hardware prefetcher loses the stream while the kernel runs. Spread out, the requests do not stall
                // on the fill buffers as one burst per panel did (perf, Q8_0 576x49152 at 16 tokens: dequantize
                // and prefetch 0.57 of the kernel's time without, 0.57 in one burst, 0.41 spread).
                const int64_t pn = r1 - (p + P) < P ? r1 - (p + P) : P;
                const uint8_t *next = pn > 0 ? wd + (size_t)(p + P) * row_bytes : NULL;
                for (int64_t r = 0; r < pr; r++) {
                    if (r < pn)
                        for (size_t o = 0; o < row_bytes; o += 64) __builtin_prefetch(next + r * row_bytes + o, 0, 3);
                    tt->to_f32(wd + (size_t)(p + r) * row_bytes, ts->row + r * K, K);
                }
                gemm(T, K, x, ts->row, pr, y + p, N);
            }
        }
    }
    return failed ? HN_ERR_NOMEM : HN_OK;
}

// HONE_FAST_ACT=q8 makes HN_MM_FAST take the 8-bit activation path at small T (read once).
static bool g_fast_q8;
static pthread_once_t g_fast_once = PTHREAD_ONCE_INIT;
static void fast_act_init(void) {
    const char *v = getenv("HONE_FAST_ACT");
    if (!v || !*v || !strcmp(v, "f32")) return;
    if (!strcmp(v, "q8")) g_fast_q8 = true;
    else hn_warn("HONE_FAST_ACT=%s: expected f32 or q8; ignored", v);
}

hn_status hn_matmul_path(float *y, const float *x, const hn_tensor *w, int64_t T, hn_mm_path path) {
    size_t row_bytes;
    hn_status st = mm_check(y, x, w, T, &row_bytes);
    if (st || T == 0) return st;
    if (path == HN_MM_PATH_DOT) return mm_dot(y, x, w, T, row_bytes);
    if (path == HN_MM_PATH_MV) {
        hn_mv_fn mv = hn_mv_fn_active(w->type);
        return mv ? mm_mv(y, x, w, T, row_bytes, mv) : mm_dot(y, x, w, T, row_bytes);
    }
    if (path == HN_MM_PATH_TILES) return mm_tiles(y, x, w, T, row_bytes);
    if (path == HN_MM_PATH_ROWS) {
        hn_gemm_rows_fn gemm = hn_gemm_rows_fn_of(hn_simd_active());
        if (gemm) return mm_rows(y, x, w, T, row_bytes, gemm);
        return hn_matmul_path(y, x, w, T, HN_MM_PATH_MV);
    }
    if (path == HN_MM_PATH_SLAB) return w->type == HN_F32 ? (mm_f32(y, x, w, T), HN_OK) : mm_blas(y, x, w, T);
    return hn_matmul(y, x, w, T, HN_MM_FAST);
}

hn_status hn_matmul(float *y, const float *x, const hn_tensor *w, int64_t T, hn_mm_mode mode) {
    size_t row_bytes;
    hn_status st = mm_check(y, x, w, T, &row_bytes);
    if (st || T == 0) return st;
    if (mode == HN_MM_EXACT) return mm_tiles(y, x, w, T, row_bytes);
    if (w->type == HN_F32) {
        mm_f32(y, x, w, T);
        return HN_OK;
    }
    pthread_once(&g_fast_once, fast_act_init);
    const bool q8 = mode == HN_MM_FAST_Q8 || g_fast_q8;
    const int64_t rows_max = hn_simd_active() >= HN_SIMD_AVX512 ? HN_MM_ROWS_MAX_T : HN_MM_ROWS_MAX_T_AVX2;
    if (T >= (q8 ? HN_MM_TILES_MIN_T : HN_MM_ROWS_MIN_T) && T <= rows_max) {
        hn_gemm_rows_fn gemm = hn_gemm_rows_fn_of(hn_simd_active());
        if (gemm) return mm_rows(y, x, w, T, row_bytes, gemm);
    }
    if (T < HN_MM_TILES_MIN_T) {
        hn_mv_fn mv = q8 ? NULL : hn_mv_fn_active(w->type);
        return mv ? mm_mv(y, x, w, T, row_bytes, mv) : mm_dot(y, x, w, T, row_bytes);
    }
    return mm_blas(y, x, w, T);
}

void hn_matmul_thread_free(void) {
    free(g_slab);
    g_slab = NULL, g_slab_cap = 0;
    free(g_scratch.xq);
    for (int i = 0; i < HN_MM_MAX_THREADS; i++) {
        free(g_scratch.th[i].pack);
        free(g_scratch.th[i].row);
    }
    memset(&g_scratch, 0, sizeof g_scratch);
}

void hn_get_row(const hn_tensor *w, int64_t r, float *dst) {
    const hn_type_traits *tt = hn_type_traits_of(w->type);
    size_t row_bytes = 0;
    hn_row_bytes(w->type, w->ne[0], &row_bytes);
    tt->to_f32((const uint8_t *)w->data + (size_t)r * row_bytes, dst, w->ne[0]);
}
