// tests/test_safetensors.c — safetensors writer/reader round trip (F32, F16, BF16, metadata), the tiny model file
// written by Python's safetensors, and broken files: every prefix of a small file, bad JSON, bad dtypes, shapes and
// offsets, overflow, duplicates, and random corruption (no crash, a clear error).
#include "io/safetensors.h"
#include "test.h"

#include <stdint.h>
#include <string.h>
#include <unistd.h>

static char tmp_path[256];

static void write_raw(const void *p, size_t n) {
    FILE *f = fopen(tmp_path, "wb");
    fwrite(p, 1, n, f);
    fclose(f);
}

// A file from a header string (length written as given unless hdr_len is not -1) and n data bytes.
static hn_status open_made(hn_safetensors *st, const char *hdr, size_t data_n, int64_t hdr_len) {
    size_t len = strlen(hdr);
    uint8_t *buf = calloc(1, 8 + len + data_n + 1);
    uint64_t n = hdr_len >= 0 ? (uint64_t)hdr_len : len;
    memcpy(buf, &n, 8);
    memcpy(buf + 8, hdr, len);
    for (size_t i = 0; i < data_n; i++) buf[8 + len + i] = (uint8_t)(i * 7 + 1);
    write_raw(buf, 8 + len + data_n);
    free(buf);
    return hn_safetensors_open(st, tmp_path);
}

static void expect_fail(const char *hdr, size_t data_n, hn_status want, const char *needle) {
    hn_safetensors st;
    hn_status s = open_made(&st, hdr, data_n, -1);
    CHECK(s == want, "%s: status %s, expected %s (%s)", hdr, hn_status_name(s), hn_status_name(want), hn_errmsg());
    if (s) CHECK(strstr(hn_errmsg(), needle), "%s: message '%s' lacks '%s'", hdr, hn_errmsg(), needle);
    if (!s) hn_safetensors_close(&st);
}

static void test_round_trip(void) {
    float a[2 * 3] = {1, -2, 3.5f, 1e-8f, -0.0f, 65504}; // (2, 3): ne = {3, 2}
    hn_f16 b[5];
    hn_bf16 c[2 * 2 * 3];
    for (int i = 0; i < 5; i++) b[i] = hn_f32_to_f16(0.25f * i - 1);
    for (int i = 0; i < 12; i++) c[i] = hn_f32_to_bf16((float)i * 3.0f - 7);
    hn_safetensors_writer *w = hn_safetensors_writer_create();
    CHECK(w, "create");
    CHECK(!hn_safetensors_writer_add(w, "a.weight", HN_F32, 2, (int64_t[]){3, 2}, a), "%s", hn_errmsg());
    CHECK(!hn_safetensors_writer_add(w, "b", HN_F16, 1, (int64_t[]){5}, b), "%s", hn_errmsg());
    CHECK(!hn_safetensors_writer_add(w, "c.x", HN_BF16, 3, (int64_t[]){3, 2, 2}, c), "%s", hn_errmsg());
    CHECK(hn_safetensors_writer_add(w, "b", HN_F32, 1, (int64_t[]){1}, a) == HN_ERR_ARG, "duplicate name refused");
    CHECK(hn_safetensors_writer_add(w, "q", HN_Q8_0, 1, (int64_t[]){32}, a) == HN_ERR_ARG, "q8_0 refused");
    CHECK(!hn_safetensors_writer_set_meta(w, "format", "pt"), "meta");
    CHECK(!hn_safetensors_writer_set_meta(w, "hone.note", "ünïcode"), "meta");
    CHECK(!hn_safetensors_writer_write(w, tmp_path), "%s", hn_errmsg());
    hn_safetensors_writer_destroy(w);

    hn_safetensors st;
    hn_status s = hn_safetensors_open(&st, tmp_path);
    CHECK(!s, "%s", hn_errmsg());
    if (s) return;
    uint64_t hlen;
    memcpy(&hlen, st.map.data, 8);
    CHECK(hlen % 8 == 0, "header padded to 8 bytes, got %llu", (unsigned long long)hlen);
    CHECK(st.n_tensors == 3, "3 tensors, got %zu", st.n_tensors);
    const hn_tensor *ta = hn_safetensors_tensor(&st, "a.weight"), *tb = hn_safetensors_tensor(&st, "b"),
                    *tc = hn_safetensors_tensor(&st, "c.x");
    CHECK(ta && ta->type == HN_F32 && ta->ndim == 2 && ta->ne[0] == 3 && ta->ne[1] == 2 && ta->nbytes == 24, "a");
    CHECK(tb && tb->type == HN_F16 && tb->ndim == 1 && tb->ne[0] == 5 && tb->nbytes == 10, "b");
    CHECK(tc && tc->type == HN_BF16 && tc->ndim == 3 && tc->ne[0] == 3 && tc->ne[1] == 2 && tc->ne[2] == 2, "c");
    CHECK(!hn_safetensors_tensor(&st, "nope"), "absent tensor");
    if (ta && tb && tc) {
        CHECK(!memcmp(ta->data, a, sizeof a) && !memcmp(tb->data, b, sizeof b) && !memcmp(tc->data, c, sizeof c),
              "data round trip");
        CHECK((uintptr_t)ta->data % 4 == 0 && !ta->owned, "f32 data aligned in the map");
    }
    CHECK(hn_safetensors_meta(&st, "format") && !strcmp(hn_safetensors_meta(&st, "format"), "pt"), "meta format");
    CHECK(hn_safetensors_meta(&st, "hone.note") && !strcmp(hn_safetensors_meta(&st, "hone.note"), "ünïcode"), "meta");
    CHECK(!hn_safetensors_meta(&st, "nope"), "absent meta");
    hn_safetensors_close(&st);

    // Every proper prefix of that file is refused, never read past.
    hn_map m;
    CHECK(!hn_map_open(&m, tmp_path), "map");
    uint8_t *copy = malloc(m.size);
    memcpy(copy, m.data, m.size);
    size_t size = m.size;
    hn_map_close(&m);
    int refused = 0;
    for (size_t n = 0; n < size; n++) {
        write_raw(copy, n);
        if (hn_safetensors_open(&st, tmp_path)) refused++;
        else hn_safetensors_close(&st);
    }
    CHECK(refused == (int)size, "all %zu prefixes refused, %d were", size, refused);
    // Random corruption of header bytes: any status, no crash (ASan/UBSan watch the reads).
    hn_rng r;
    hn_rng_seed(&r, 7);
    int opened = 0;
    for (int it = 0; it < 3000; it++) {
        uint8_t *mut = malloc(size);
        memcpy(mut, copy, size);
        int flips = 1 + (int)(hn_rng_u64(&r) % 3);
        for (int k = 0; k < flips; k++) mut[hn_rng_u64(&r) % (8 + hlen)] = (uint8_t)hn_rng_u64(&r);
        write_raw(mut, size);
        if (!hn_safetensors_open(&st, tmp_path)) {
            opened++;
            for (size_t i = 0; i < st.n_tensors; i++) // whatever opened must lie within the file
                CHECK((const uint8_t *)st.tensors[i].data >= st.map.data || st.tensors[i].owned, "in file");
            hn_safetensors_close(&st);
        }
        free(mut);
    }
    printf("random corruption: %d of 3000 mutated files still valid\n", opened);
    free(copy);
}

static void test_broken(void) {
    const char *ok = "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}";
    hn_safetensors st;
    CHECK(!open_made(&st, ok, 8, -1), "baseline: %s", hn_errmsg());
    hn_safetensors_close(&st);
    expect_fail(ok, 4, HN_ERR_FORMAT, "data section has 4 bytes");
    expect_fail(ok, 12, HN_ERR_FORMAT, "data section has 12 bytes");
    CHECK(open_made(&st, ok, 8, 1000) == HN_ERR_FORMAT && strstr(hn_errmsg(), "header length 1000"), "%s",
          hn_errmsg());
    CHECK(open_made(&st, ok, 8, INT64_MAX) == HN_ERR_FORMAT, "huge header length");
    CHECK(open_made(&st, ok, 8, 3) == HN_ERR_FORMAT, "header length cuts the JSON: %s", hn_errmsg());
    expect_fail("not json at all", 0, HN_ERR_FORMAT, "JSON");
    expect_fail("{\"a\":", 0, HN_ERR_FORMAT, "header JSON");
    expect_fail("[1,2]", 0, HN_ERR_FORMAT, "JSON object");
    expect_fail(" {}", 0, HN_ERR_FORMAT, "JSON object");
    expect_fail("{\"a\":{\"dtype\":\"F8_E4M3\",\"shape\":[8],\"data_offsets\":[0,8]}}", 8, HN_ERR_UNSUPPORTED,
                "tensor 'a' has dtype F8_E4M3");
    // An integer buffer (BERT's position_ids) is checked like the others, and skipped.
    const char *buf = "{\"a\":{\"dtype\":\"I64\",\"shape\":[1],\"data_offsets\":[0,8]},"
                      "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]}}";
    CHECK(!open_made(&st, buf, 16, -1) && st.n_tensors == 1 && !hn_safetensors_tensor(&st, "a") &&
          hn_safetensors_tensor(&st, "b"), "I64 skipped: %s", hn_errmsg());
    hn_safetensors_close(&st);
    expect_fail("{\"a\":{\"dtype\":\"I64\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8, HN_ERR_FORMAT,
                "do not hold its 16 bytes");
    expect_fail("{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8, HN_ERR_FORMAT,
                "do not hold its 12 bytes");
    expect_fail("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,0]}}", 8, HN_ERR_FORMAT, "tensor 'a'");
    expect_fail("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[-8,0]}}", 8, HN_ERR_FORMAT,
                "non-negative");
    expect_fail("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8,9]}}", 8, HN_ERR_FORMAT, "[begin, end]");
    expect_fail("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0.0,8]}}", 8, HN_ERR_FORMAT, "non-negative");
    expect_fail("{\"a\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}", 8, HN_ERR_FORMAT, "shape[0]");
    expect_fail("{\"a\":{\"dtype\":\"F32\",\"shape\":\"2\",\"data_offsets\":[0,8]}}", 8, HN_ERR_FORMAT, "shape");
    expect_fail("{\"a\":{\"dtype\":7,\"shape\":[2],\"data_offsets\":[0,8]}}", 8, HN_ERR_FORMAT, "dtype");
    expect_fail("{\"a\":[1]}", 0, HN_ERR_FORMAT, "expected an object");
    expect_fail("{\"a\":{\"dtype\":\"F32\",\"shape\":[4611686018427387904,4],\"data_offsets\":[0,8]}}", 8,
                HN_ERR_FORMAT, "overflows");
    expect_fail("{\"a\":{\"dtype\":\"F32\",\"shape\":[99999999999999999999],\"data_offsets\":[0,8]}}", 8,
                HN_ERR_FORMAT, "JSON");
    expect_fail("{\"a\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,2],\"data_offsets\":[0,8]}}", 8, HN_ERR_UNSUPPORTED,
                "5 dimensions");
    // Overlap, hole, duplicates.
    expect_fail("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}",
                12, HN_ERR_FORMAT, "overlaps");
    expect_fail("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[12,20]}}",
                20, HN_ERR_FORMAT, "hole");
    expect_fail("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                "\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]}}",
                16, HN_ERR_FORMAT, "duplicate");
    expect_fail("{\"\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8, HN_ERR_FORMAT, "empty name");
    expect_fail("{\"__metadata__\":{\"format\":1}}", 0, HN_ERR_FORMAT, "__metadata__ 'format'");
    expect_fail("{\"__metadata__\":[]}", 0, HN_ERR_FORMAT, "__metadata__");

    // Legal corner cases: metadata only, a scalar, a zero-size tensor, unaligned f32 data (header of odd length).
    CHECK(!open_made(&st, "{\"__metadata__\":{\"format\":\"pt\"}}", 0, -1), "metadata only: %s", hn_errmsg());
    if (!st.path) return;
    CHECK(st.n_tensors == 0 && !strcmp(hn_safetensors_meta(&st, "format"), "pt"), "metadata only");
    hn_safetensors_close(&st);
    const char *corner = "{\"s\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[0,4]},"
                         "\"z\":{\"dtype\":\"BF16\",\"shape\":[0,3],\"data_offsets\":[4,4]}, "
                         "\"h\":{\"dtype\":\"F16\",\"shape\":[1],\"data_offsets\":[4,6]}}";
    CHECK(strlen(corner) % 4, "header length chosen odd so that data is unaligned");
    if (!open_made(&st, corner, 6, -1)) {
        const hn_tensor *s = hn_safetensors_tensor(&st, "s"), *z = hn_safetensors_tensor(&st, "z");
        CHECK(s && s->ndim == 1 && hn_nelem(s) == 1 && s->owned && (uintptr_t)s->data % 4 == 0, "scalar realigned");
        CHECK(z && z->ne[0] == 3 && z->ne[1] == 0 && z->nbytes == 0, "zero-size tensor");
        if (s) {
            uint8_t want[4] = {1, 8, 15, 22};
            CHECK(!memcmp(s->data, want, 4), "scalar bytes");
        }
        hn_safetensors_close(&st);
    } else {
        CHECK(0, "corner cases: %s", hn_errmsg());
    }
    CHECK(hn_safetensors_open(&st, "/nonexistent/x.safetensors") == HN_ERR_IO, "missing file");
}

// The tiny model written by Python's safetensors (tools/reference/tiny_llama_ref.py).
static void test_python_file(void) {
    hn_safetensors st;
    if (hn_safetensors_open(&st, "tests/data/tiny_llama/model.safetensors")) {
        CHECK(0, "%s", hn_errmsg());
        return;
    }
    const hn_tensor *q = hn_safetensors_tensor(&st, "model.layers.1.self_attn.k_proj.weight");
    CHECK(q && q->type == HN_F32 && q->ne[0] == 64 && q->ne[1] == 32, "k_proj shape (32, 64) as ne {64, 32}");
    CHECK(st.n_tensors == 2 + 1 + 2 * 9, "tensor count %zu", st.n_tensors);
    CHECK(hn_safetensors_meta(&st, "format") && !strcmp(hn_safetensors_meta(&st, "format"), "pt"), "format pt");
    hn_safetensors_close(&st);
}

int main(void) {
    snprintf(tmp_path, sizeof tmp_path, "/tmp/hone_test_st_%d.safetensors", (int)getpid());
    test_round_trip();
    test_broken();
    test_python_file();
    unlink(tmp_path);
    return test_done();
}
