// base/sys.c — threads, random numbers, time.
#define _GNU_SOURCE
#include "base/base.h"

#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#ifdef _OPENMP
#include <omp.h>
#endif

static int g_threads;

int hn_physical_cores(void) {
    // Count distinct (physical id, core id) pairs; fall back to the online CPU count.
    FILE *f = fopen("/proc/cpuinfo", "r");
    int n = 0;
    if (f) {
        char line[256];
        int phys = 0, seen[1024][2], nseen = 0;
        while (fgets(line, sizeof line, f)) {
            int v;
            if (sscanf(line, "physical id : %d", &v) == 1) phys = v;
            else if (sscanf(line, "core id : %d", &v) == 1) {
                int dup = 0;
                for (int i = 0; i < nseen; i++) dup |= seen[i][0] == phys && seen[i][1] == v;
                if (!dup && nseen < 1024) {
                    seen[nseen][0] = phys;
                    seen[nseen][1] = v;
                    nseen++;
                }
            }
        }
        fclose(f);
        n = nseen;
    }
    if (n <= 0) n = (int)sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? n : 1;
}

void hn_threads_set(int n) {
    if (n <= 0) n = hn_physical_cores();
    g_threads = n;
#ifdef _OPENMP
    omp_set_num_threads(n);
#endif
    // BLAS gets these threads too: tensor/blas.c runs OpenBLAS on one thread per OpenMP team member.
}

int hn_threads_get(void) {
    if (g_threads <= 0) hn_threads_set(0);
    return g_threads;
}

static uint64_t splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

void hn_rng_seed(hn_rng *r, uint64_t seed) {
    for (int i = 0; i < 4; i++) r->s[i] = splitmix64(&seed);
}

static inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t hn_rng_u64(hn_rng *r) {
    uint64_t *s = r->s;
    uint64_t out = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return out;
}

float hn_rng_f32(hn_rng *r) { return (float)(hn_rng_u64(r) >> 40) * (1.0f / 16777216.0f); }

double hn_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}
