// tests/test_base.c — errors, atomic writes, mapping, rng, checked arithmetic.
#include "base/base.h"
#include "tests/test.h"

#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void test_errors(void) {
    hn_status s = hn_fail(HN_ERR_FORMAT, "%s: field %s: expected %d", "f.gguf", "version", 3);
    CHECK(s == HN_ERR_FORMAT, "hn_fail returns its status");
    CHECK(!strcmp(hn_errmsg(), "f.gguf: field version: expected 3"), "message is '%s'", hn_errmsg());
    CHECK(!strcmp(hn_status_name(HN_ERR_IO), "i/o error"), "status name");
    size_t out;
    CHECK(!hn_mul_ok(SIZE_MAX / 2 + 1, 2, &out), "multiplication overflow detected");
    CHECK(hn_mul_ok(1 << 20, 1 << 10, &out) && out == (size_t)1 << 30, "multiplication");
    CHECK(!hn_add_ok(SIZE_MAX, 1, &out), "addition overflow detected");
    CHECK(hn_calloc(SIZE_MAX / 4, 8, "test") == NULL && strstr(hn_errmsg(), "overflow"), "calloc refuses overflow");
}

static void test_files(void) {
    char dir[] = "/tmp/hone-test-base-XXXXXX";
    CHECK(mkdtemp(dir) != NULL, "mkdtemp");
    char path[256];
    snprintf(path, sizeof path, "%s/out.bin", dir);

    // An aborted write leaves nothing at the path, not even the temporary file.
    hn_afile f;
    CHECK(hn_afile_open(&f, path) == HN_OK, "open: %s", hn_errmsg());
    hn_afile_write(&f, "partial", 7);
    hn_afile_abort(&f);
    struct stat st;
    CHECK(stat(path, &st) != 0, "aborted write left %s", path);

    CHECK(hn_afile_open(&f, path) == HN_OK, "open: %s", hn_errmsg());
    CHECK(hn_afile_write(&f, "hello", 5) == HN_OK, "write");
    CHECK(hn_afile_commit(&f) == HN_OK, "commit: %s", hn_errmsg());

    hn_map m;
    CHECK(hn_map_open(&m, path) == HN_OK, "map: %s", hn_errmsg());
    CHECK(m.size == 5 && !memcmp(m.data, "hello", 5), "mapped contents");
    hn_map_close(&m);

    CHECK(hn_map_open(&m, "/nonexistent/file") == HN_ERR_IO && strstr(hn_errmsg(), "/nonexistent/file"),
          "a missing file is named: %s", hn_errmsg());
    CHECK(hn_map_open(&m, dir) == HN_ERR_IO, "a directory is not a file");

    char bad[300];
    snprintf(bad, sizeof bad, "%s/no/such/dir/x", dir);
    CHECK(hn_afile_open(&f, bad) == HN_ERR_IO && strstr(hn_errmsg(), "no/such/dir"), "unwritable path named");

    unlink(path);
    rmdir(dir);
}

static void test_rng(void) {
    hn_rng a, b;
    hn_rng_seed(&a, 42);
    hn_rng_seed(&b, 42);
    int same = 1;
    double sum = 0;
    for (int i = 0; i < 10000; i++) {
        uint64_t x = hn_rng_u64(&a);
        same &= x == hn_rng_u64(&b);
        float u = hn_rng_f32(&a);
        hn_rng_f32(&b);
        same &= u >= 0 && u < 1;
        sum += u;
    }
    CHECK(same, "same seed gives the same stream, floats in [0,1)");
    CHECK(sum / 10000 > 0.48 && sum / 10000 < 0.52, "uniform mean %f", sum / 10000);
    hn_rng_seed(&b, 43);
    CHECK(hn_rng_u64(&a) != hn_rng_u64(&b), "different seeds differ");
}

static void test_threads(void) {
    hn_threads_set(1);
    CHECK(hn_threads_get() == 1, "threads 1");
    hn_threads_set(0);
    CHECK(hn_threads_get() == hn_physical_cores() && hn_physical_cores() >= 1, "default is the physical cores");
}

int main(void) {
    test_errors();
    test_files();
    test_rng();
    test_threads();
    return test_done();
}
