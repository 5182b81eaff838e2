// tests/test_blas.c — hn_sgemm against a double-precision loop for every transpose pair and odd shapes, with
// OpenBLAS and with the panel-kernel fallback (HONE_BLAS=off), split over threads and called from inside a team;
// and the OPENBLAS_CORETYPE rule: set to what the CPU runs when unset, left alone when the environment names one.
// The environment is read once per process, so each setting runs in a child: this program re-runs itself.
#define _GNU_SOURCE
#include "tensor/blas.h"
#include "test.h"

#include <math.h>
#include <omp.h>
#include <string.h>
#include <strings.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

static float frand(hn_rng *r) { return hn_rng_f32(r) * 2.0f - 1.0f; }

// One product of shape (M, N, K) with padded strides, compared with the loop; returns the worst error over the
// bound, so <= 1 passes.
static double check_shape(bool ta, bool tb, int M, int N, int K, float alpha, float beta, hn_rng *r) {
    int lda = (ta ? M : K) + 3, ldb = (tb ? K : N) + 5, ldc = N + 2;
    int arows = ta ? K : M, brows = tb ? N : K;
    float *A = malloc(sizeof(float) * (size_t)arows * lda + 4), *B = malloc(sizeof(float) * (size_t)brows * ldb + 4);
    float *C = malloc(sizeof(float) * (size_t)M * ldc + 4), *C0 = malloc(sizeof(float) * (size_t)M * ldc + 4);
    for (int i = 0; i < arows * lda; i++) A[i] = frand(r);
    for (int i = 0; i < brows * ldb; i++) B[i] = frand(r);
    for (int i = 0; i < M * ldc; i++) C0[i] = C[i] = beta == 0.0f ? NAN : frand(r);
    hn_sgemm(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    double worst = 0;
    for (int m = 0; m < M; m++) {
        for (int n = 0; n < N; n++) {
            double s = 0, mag = 0;
            for (int k = 0; k < K; k++) {
                double p = (double)(ta ? A[k * lda + m] : A[m * lda + k]) * (tb ? B[n * ldb + k] : B[k * ldb + n]);
                s += p;
                mag += fabs(p);
            }
            double old = beta == 0.0f ? 0.0 : beta * (double)C0[m * ldc + n];
            double want = alpha * s + old, bound = 1e-5 * (fabs(alpha) * mag + fabs(old)) + 1e-6;
            double e = fabs(C[m * ldc + n] - want) / bound;
            if (!(e <= worst)) worst = e; // NaN (a NaN from C leaking through beta == 0) counts as worst
        }
        // The padding between rows of C is never written.
        for (int n = N; n < ldc && m + 1 < M; n++)
            if (memcmp(&C[m * ldc + n], &C0[m * ldc + n], sizeof(float))) worst = INFINITY;
    }
    free(A), free(B), free(C), free(C0);
    return worst;
}

static void check_products(const char *label) {
    static const int dims[] = {1, 3, 17, 33, 70, 130};
    hn_rng r;
    hn_rng_seed(&r, 7);
    for (int threads = 1; threads <= 2; threads++) {
        hn_threads_set(threads);
        for (int ta = 0; ta < 2; ta++)
            for (int tb = 0; tb < 2; tb++)
                for (int i = 0; i < 6; i++)
                    for (int j = 0; j < 6; j++)
                        for (int k = 0; k < 6; k += 1 + (i + j) % 2) {
                            float alpha = (i + k) % 3 ? 1.0f : -0.5f, beta = (j + k) % 3 == 0 ? 0.0f : 0.75f;
                            int M = dims[i], N = dims[j], K = dims[k];
                            double e = check_shape(ta, tb, M, N, K, alpha, beta, &r);
                            CHECK(e <= 1.0, "%s: ta %d tb %d M %d N %d K %d alpha %g beta %g threads %d: error %.3g x bound",
                                  label, ta, tb, M, N, K, alpha, beta, threads, e);
                        }
        // K = 0: C = beta · C.
        float A[1] = {0}, B[1] = {0}, C[4] = {1, 2, 3, 4};
        hn_sgemm(false, false, 2, 2, 0, 1.0f, A, 1, B, 2, 0.5f, C, 2);
        CHECK(C[0] == 0.5f && C[3] == 2.0f, "%s: K = 0 scales C by beta", label);
    }
    // Bitwise repeatable for one thread count, and members of a team calling at once (each on one thread) agree
    // with a lone one-thread call.
    enum { M = 300, N = 200, K = 150 };
    float *A = malloc(sizeof(float) * M * K), *B = malloc(sizeof(float) * N * K), *C1 = malloc(sizeof(float) * M * N);
    float *C2 = malloc(sizeof(float) * M * N), *Ct = malloc(sizeof(float) * 4 * M * N);
    for (int i = 0; i < M * K; i++) A[i] = frand(&r);
    for (int i = 0; i < N * K; i++) B[i] = frand(&r);
    hn_threads_set(2);
    hn_sgemm(false, true, M, N, K, 1.0f, A, K, B, K, 0.0f, C1, N);
    hn_sgemm(false, true, M, N, K, 1.0f, A, K, B, K, 0.0f, C2, N);
    CHECK(!memcmp(C1, C2, sizeof(float) * M * N), "%s: two runs at 2 threads differ", label);
    hn_threads_set(1);
    hn_sgemm(false, true, M, N, K, 1.0f, A, K, B, K, 0.0f, C1, N);
#pragma omp parallel num_threads(4)
    hn_sgemm(false, true, M, N, K, 1.0f, A, K, B, K, 0.0f, Ct + (size_t)omp_get_thread_num() * M * N, N);
    for (int t = 0; t < 4; t++)
        CHECK(!memcmp(C1, Ct + (size_t)t * M * N, sizeof(float) * M * N), "%s: team member %d differs", label, t);
    free(A), free(B), free(C1), free(C2), free(Ct);
}

// Runs this program again as `self mode` with OPENBLAS_CORETYPE / HONE_BLAS set as given (NULL: removed).
static int rerun(const char *self, const char *mode, const char *coretype, const char *hone_blas) {
    pid_t pid = fork();
    if (pid == 0) {
        if (coretype) setenv("OPENBLAS_CORETYPE", coretype, 1);
        else unsetenv("OPENBLAS_CORETYPE");
        if (hone_blas) setenv("HONE_BLAS", hone_blas, 1);
        else unsetenv("HONE_BLAS");
        execle(self, self, mode, (char *)NULL, environ);
        _exit(127);
    }
    int st = 0;
    if (pid < 0 || waitpid(pid, &st, 0) < 0) return -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static const char *expected_coretype(void) {
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl"))
        return "SkylakeX";
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return "Haswell";
    return NULL;
}

int main(int argc, char **argv) {
    const char *mode = argc > 1 ? argv[1] : "";
    if (!strcmp(mode, "off")) {
        CHECK(!hn_blas_loaded() && !strcmp(hn_blas_core(), "hone-panel"), "HONE_BLAS=off: core %s", hn_blas_core());
        check_products("fallback");
        return test_done();
    }
    if (!strcmp(mode, "auto")) {
        if (!hn_blas_loaded()) return test_skip("libopenblas.so.0 is not installed");
        const char *want = expected_coretype(), *set = getenv("OPENBLAS_CORETYPE");
        printf("OpenBLAS core: %s (OPENBLAS_CORETYPE=%s)\n", hn_blas_core(), set ? set : "(unset)");
        if (want) {
            CHECK(set && !strcmp(set, want), "OPENBLAS_CORETYPE: want %s, got %s", want, set ? set : "(unset)");
            CHECK(!strcasecmp(hn_blas_core(), want), "OpenBLAS runs %s, want %s", hn_blas_core(), want);
        } else {
            CHECK(!set, "a CPU without AVX2 gets no OPENBLAS_CORETYPE, got %s", set);
        }
        check_products("openblas");
        return test_done();
    }
    if (!strcmp(mode, "preset")) {
        if (!hn_blas_loaded()) return test_skip("libopenblas.so.0 is not installed");
        const char *set = getenv("OPENBLAS_CORETYPE");
        CHECK(set && !strcmp(set, "Prescott"), "a preset OPENBLAS_CORETYPE was changed to %s", set ? set : "(unset)");
        CHECK(!strcasecmp(hn_blas_core(), "Prescott"), "OpenBLAS runs %s, the environment asked Prescott",
              hn_blas_core());
        return test_done();
    }
    // The parent: this process as the environment gave it (a machine may pin a core type), then the children.
    printf("OpenBLAS core here: %s\n", hn_blas_core());
    check_products(hn_blas_loaded() ? "as-is" : "as-is (fallback)");
    int rc = rerun(argv[0], "off", NULL, "off");
    CHECK(rc == 0, "HONE_BLAS=off child: exit %d", rc);
    rc = rerun(argv[0], "auto", NULL, NULL);
    CHECK(rc == 0 || rc == 77, "OPENBLAS_CORETYPE unset child: exit %d", rc);
    rc = rerun(argv[0], "preset", "Prescott", NULL);
    CHECK(rc == 0 || rc == 77, "OPENBLAS_CORETYPE=Prescott child: exit %d", rc);
    return test_done();
}
