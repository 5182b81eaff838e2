// bench/bench_matmul.c — hn_matmul speed on SmolLM2-135M's shapes (not a test; not built by CMake).
//
//   gcc -O2 -fopenmp -I. bench/bench_matmul.c build/libhone.a -ldl -lpcre2-8 -lm -o /tmp/bench_matmul
//   /tmp/bench_matmul [threads...]          (default: 1 2)
//   BENCH_T=1,4 /tmp/bench_matmul 1          (token counts; default 1,4,16,64,512)
//   env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE OMP_WAIT_POLICY=PASSIVE ...   (as hone serve runs; the machine
//                                             is shared: take the best of several runs, and note the load)
//
// Variants: FAST (what hn_matmul picks), FAST_Q8 (below 16 tokens: 8-bit activations, integer dots), EXACT (fp32
// panels), and FAST's paths forced: "mv" (decode kernels, to 64 tokens), "rows" (the batch kernel, from 4 tokens)
// and "slab" (dequantized slabs + OpenBLAS, from 8 tokens), to place the switches of tensor/matmul.c.
//
// Each weight is copied enough times that the copies together exceed 64 MiB and the runs cycle through them, so
// the weights come from L3/DRAM as in a real decode step rather than from L2. GB/s counts weight bytes only.
#include "tensor/kernels.h"
#include "tensor/ops.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    hn_dtype type;
    int64_t K, N;
    const char *what;
} shape;

static const shape g_shapes[] = {
    {HN_Q4_1, 576, 576, "attn q/o"},   {HN_Q4_1, 576, 192, "attn k/v"}, {HN_Q4_1, 576, 1536, "ffn gate/up"},
    {HN_Q4_1, 1536, 576, "ffn down"},  {HN_Q8_0, 576, 49152, "output head"},
};

static double run(const hn_tensor *ws, int ncopies, float *y, const float *x, int64_t T, hn_mm_path path,
                  hn_mm_mode mode, bool use_mode, int *reps_out) {
    double t0 = hn_now(), el = 0;
    int reps = 0;
    do {
        const hn_tensor *w = &ws[reps % ncopies];
        hn_status st = use_mode ? hn_matmul(y, x, w, T, mode) : hn_matmul_path(y, x, w, T, path);
        if (st) {
            fprintf(stderr, "bench: %s\n", hn_errmsg());
            exit(1);
        }
        reps++;
        el = hn_now() - t0;
    } while (el < (T == 1 ? 0.3 : 0.6) || reps < 3);
    *reps_out = reps;
    return el / reps;
}

int main(int argc, char **argv) {
    int threads[8] = {1, 2}, nthreads = 2;
    if (argc > 1) {
        nthreads = 0;
        for (int i = 1; i < argc && nthreads < 8; i++) threads[nthreads++] = atoi(argv[i]);
    }
    hn_rng rng;
    hn_rng_seed(&rng, 42);
    printf("simd %s\n", hn_simd_level());
    printf("%-12s %-5s %6s %6s %4s %3s %-12s %10s %9s %8s\n", "what", "type", "K", "N", "T", "thr", "path", "us/call",
           "GFLOP/s", "GB/s");
    for (size_t s = 0; s < sizeof g_shapes / sizeof g_shapes[0]; s++) {
        const shape *sh = &g_shapes[s];
        const hn_type_traits *tt = hn_type_traits_of(sh->type);
        size_t rb;
        hn_row_bytes(sh->type, sh->K, &rb);
        size_t bytes = rb * (size_t)sh->N;
        int ncopies = (int)((64u << 20) / bytes) + 1;
        float *wf = malloc(sizeof(float) * (size_t)(sh->K * sh->N));
        for (int64_t i = 0; i < sh->K * sh->N; i++) wf[i] = (hn_rng_f32(&rng) - 0.5f) * 0.1f;
        hn_tensor *ws = calloc((size_t)ncopies, sizeof *ws);
        for (int c = 0; c < ncopies; c++) {
            ws[c] = (hn_tensor){.type = sh->type, .ndim = 2, .ne = {sh->K, sh->N, 1, 1}, .nbytes = bytes};
            ws[c].data = malloc(bytes);
            if (c == 0) tt->from_f32(wf, ws[c].data, sh->K * sh->N);
            else memcpy(ws[c].data, ws[0].data, bytes);
        }
        int64_t Ts[8] = {1, 4, 16, 64, 512};
        int nT = 5;
        const char *envT = getenv("BENCH_T");
        if (envT && *envT) {
            nT = 0;
            for (const char *p = envT; *p && nT < 8;) {
                Ts[nT++] = strtoll(p, (char **)&p, 10);
                while (*p == ',') p++;
            }
        }
        for (int ti = 0; ti < nT; ti++) {
            int64_t T = Ts[ti];
            float *x = malloc(sizeof(float) * (size_t)(T * sh->K)), *y = malloc(sizeof(float) * (size_t)(T * sh->N));
            for (int64_t i = 0; i < T * sh->K; i++) x[i] = hn_rng_f32(&rng) - 0.5f;
            for (int th = 0; th < nthreads; th++) {
                hn_threads_set(threads[th]);
                struct {
                    const char *name;
                    hn_mm_path path;
                    hn_mm_mode mode;
                    bool use_mode;
                    int64_t t_min, t_max; // token counts the variant runs at
                } variants[] = {{"FAST(f32)", 0, HN_MM_FAST, true, 1, 1 << 30},
                                {"FAST_Q8", 0, HN_MM_FAST_Q8, true, 1, 15},
                                {"EXACT", 0, HN_MM_EXACT, true, 1, 1 << 30},
                                {"mv", HN_MM_PATH_MV, 0, false, 2, 64},
                                {"rows", HN_MM_PATH_ROWS, 0, false, 4, 1 << 30},
                                {"slab", HN_MM_PATH_SLAB, 0, false, 8, 1 << 30}};
                for (int v = 0; v < (int)(sizeof variants / sizeof variants[0]); v++) {
                    if (T < variants[v].t_min || T > variants[v].t_max) continue;
                    int reps;
                    double sec = run(ws, ncopies, y, x, T, variants[v].path, variants[v].mode, variants[v].use_mode,
                                     &reps);
                    printf("%-12s %-5s %6lld %6lld %4lld %3d %-12s %10.1f %9.1f %8.1f\n", sh->what, tt->name,
                           (long long)sh->K, (long long)sh->N, (long long)T, threads[th], variants[v].name, sec * 1e6,
                           2.0 * (double)T * (double)sh->K * (double)sh->N / sec * 1e-9, (double)bytes / sec * 1e-9);
                }
            }
            free(x);
            free(y);
        }
        for (int c = 0; c < ncopies; c++) free(ws[c].data);
        free(ws);
        free(wf);
    }
    return 0;
}
