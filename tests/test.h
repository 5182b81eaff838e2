// tests/test.h — the smallest test harness: CHECK records a failure and goes on; test_done prints
// "N passed, N failed" and returns the exit code (77 = skipped, as CTest's SKIP_RETURN_CODE).
#ifndef HN_TEST_H
#define HN_TEST_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

static int test_passed, test_failed;

#define CHECK(cond, ...)                                                                                             \
    do {                                                                                                             \
        if (cond) test_passed++;                                                                                     \
        else {                                                                                                       \
            test_failed++;                                                                                           \
            fprintf(stderr, "%s:%d: FAILED: %s: ", __FILE__, __LINE__, #cond);                                       \
            fprintf(stderr, __VA_ARGS__);                                                                            \
            fputc('\n', stderr);                                                                                     \
        }                                                                                                            \
    } while (0)

// The largest |a[i] - b[i]| and the largest |a[i]|. A NaN anywhere makes the result NaN (fmax would skip it), so
// that a check `d <= tol` fails on it.
static inline double max_diff(const float *a, const float *b, int64_t n) {
    double m = 0;
    for (int64_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]);
        if (!(d <= m)) m = d;
    }
    return m;
}

static inline double max_abs(const float *a, int64_t n) {
    double m = 0;
    for (int64_t i = 0; i < n; i++)
        if (!(fabs(a[i]) <= m)) m = fabs(a[i]);
    return m;
}

static inline int test_done(void) {
    printf("%d passed, %d failed\n", test_passed, test_failed);
    return test_failed ? 1 : 0;
}

static inline int test_skip(const char *why) {
    printf("skipped: %s\n", why);
    return 77;
}

#endif
