// tests/test_gguf.c — GGUF writer -> reader round trips (every value type, arrays, tensors of every dtype, alignment),
// then hand-built files broken byte by byte: each must give the right status and a message naming the problem.
#include "io/gguf.h"
#include "model/registry.h"
#include "tests/test.h"

#include <dirent.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char g_dir[] = "/tmp/hone-test-gguf-XXXXXX";

static char *tmp_path(const char *name) {
    static char buf[4][512];
    static int k;
    char *p = buf[k++ % 4];
    snprintf(p, 512, "%s/%s", g_dir, name);
    return p;
}

static void write_file(const char *path, const void *data, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f) abort();
    if (n) fwrite(data, 1, n, f);
    fclose(f);
}

// ---- round trip -------------------------------------------------------------------------------------------------

static hn_status fill_ramp(void *user, void *dst, size_t nbytes) {
    const float *src = user;
    memcpy(dst, src, nbytes);
    return HN_OK;
}

static hn_status fill_fail(void *user, void *dst, size_t nbytes) { return hn_fail(HN_ERR_IO, "fill refused on purpose"); }

typedef struct {
    const char *name;
    hn_dtype type;
    int ndim;
    int64_t ne[4];
    uint8_t *data;
    size_t nbytes;
} tspec;

static void make_tensors(tspec *ts, int n, hn_rng *r) {
    for (int i = 0; i < n; i++) {
        int64_t cnt = ts[i].ne[0] * (ts[i].ndim > 1 ? ts[i].ne[1] : 1) * (ts[i].ndim > 2 ? ts[i].ne[2] : 1) *
                      (ts[i].ndim > 3 ? ts[i].ne[3] : 1);
        CHECK(hn_row_bytes(ts[i].type, cnt, &ts[i].nbytes), "row bytes of %s", ts[i].name);
        ts[i].data = malloc(ts[i].nbytes);
        // Valid encodings everywhere: quantize random floats (i32 gets random bits).
        const hn_type_traits *tt = hn_type_traits_of(ts[i].type);
        float *f = malloc((size_t)cnt * sizeof *f);
        for (int64_t j = 0; j < cnt; j++) f[j] = hn_rng_f32(r) * 2 - 1;
        if (tt->from_f32) tt->from_f32(f, ts[i].data, cnt);
        else
            for (size_t j = 0; j < ts[i].nbytes; j++) ts[i].data[j] = (uint8_t)hn_rng_u64(r);
        free(f);
    }
}

static void check_scalar(const hn_gguf *g, const char *key, hn_gguf_type type, const void *v, size_t n) {
    const hn_gguf_kv *kv = hn_gguf_find(g, key);
    CHECK(kv != NULL, "key %s present", key);
    if (!kv) return;
    CHECK(kv->type == type, "%s type %d, wrote %d", key, kv->type, type);
    CHECK(kv->key.len == strlen(key) && !memcmp(kv->key.str, key, strlen(key)), "%s key text", key);
    CHECK(!memcmp(kv->val, v, n), "%s value bytes", key);
}

static void test_round_trip(void) {
    hn_gguf_writer *w = hn_gguf_writer_create();
    uint8_t u8 = 200;
    int8_t i8 = -100;
    uint16_t u16 = 60000;
    int16_t i16 = -30000;
    uint32_t u32 = 4000000000u;
    int32_t i32 = -2000000000;
    float f32 = 3.25f;
    bool b = true;
    uint64_t u64 = 18000000000000000000ull;
    int64_t i64 = -9000000000000000000ll;
    double f64 = -1.0 / 3;
    CHECK(hn_gguf_writer_set(w, "t.u8", HN_GGUF_U8, &u8) == HN_OK, "set u8");
    CHECK(hn_gguf_writer_set(w, "t.i8", HN_GGUF_I8, &i8) == HN_OK, "set i8");
    CHECK(hn_gguf_writer_set(w, "t.u16", HN_GGUF_U16, &u16) == HN_OK, "set u16");
    CHECK(hn_gguf_writer_set(w, "t.i16", HN_GGUF_I16, &i16) == HN_OK, "set i16");
    CHECK(hn_gguf_writer_set_u32(w, "t.u32", 1) == HN_OK, "set u32 (replaced below)");
    CHECK(hn_gguf_writer_set(w, "t.i32", HN_GGUF_I32, &i32) == HN_OK, "set i32");
    CHECK(hn_gguf_writer_set_f32(w, "t.f32", f32) == HN_OK, "set f32");
    CHECK(hn_gguf_writer_set_bool(w, "t.bool", b) == HN_OK, "set bool");
    CHECK(hn_gguf_writer_set_str(w, "t.str", "héllo, wörld") == HN_OK, "set string");
    CHECK(hn_gguf_writer_set(w, "t.u64", HN_GGUF_U64, &u64) == HN_OK, "set u64");
    CHECK(hn_gguf_writer_set(w, "t.i64", HN_GGUF_I64, &i64) == HN_OK, "set i64");
    CHECK(hn_gguf_writer_set(w, "t.f64", HN_GGUF_F64, &f64) == HN_OK, "set f64");
    CHECK(hn_gguf_writer_set_u32(w, "t.u32", u32) == HN_OK, "set u32 again replaces");
    CHECK(hn_gguf_writer_set(w, "t.arr", HN_GGUF_ARRAY, &u32) == HN_ERR_ARG, "set() refuses the array type");
    CHECK(hn_gguf_writer_set_u32(w, "", 1) == HN_ERR_ARG, "empty key refused");
    const char *strs[] = {"", "a", "<|im_start|>", "Ġt", "\xe4\xb8\xad\xe6\x96\x87"};
    int16_t ai16[] = {-1, 2, -3};
    double af64[] = {1.5, -2.25};
    bool abool[] = {true, false, true};
    uint64_t au64[] = {0, UINT64_MAX};
    CHECK(hn_gguf_writer_set_arr(w, "a.str", HN_GGUF_STRING, strs, 5) == HN_OK, "arr str");
    CHECK(hn_gguf_writer_set_arr(w, "a.i16", HN_GGUF_I16, ai16, 3) == HN_OK, "arr i16");
    CHECK(hn_gguf_writer_set_arr(w, "a.f64", HN_GGUF_F64, af64, 2) == HN_OK, "arr f64");
    CHECK(hn_gguf_writer_set_arr(w, "a.bool", HN_GGUF_BOOL, abool, 3) == HN_OK, "arr bool");
    CHECK(hn_gguf_writer_set_arr(w, "a.u64", HN_GGUF_U64, au64, 2) == HN_OK, "arr u64");
    CHECK(hn_gguf_writer_set_arr(w, "a.empty", HN_GGUF_U32, NULL, 0) == HN_OK, "empty arr");
    CHECK(hn_gguf_writer_set_arr(w, "a.nested", HN_GGUF_ARRAY, NULL, 0) == HN_ERR_ARG, "nested arr refused");

    hn_rng r;
    hn_rng_seed(&r, 7);
    tspec ts[] = {
        {"norm.weight", HN_F32, 1, {7}},         {"w.f16", HN_F16, 2, {5, 3}},   {"w.bf16", HN_BF16, 2, {3, 2}},
        {"w.q8_0", HN_Q8_0, 2, {64, 3}},         {"w.q4_0", HN_Q4_0, 2, {32, 5}}, {"w.q4_1", HN_Q4_1, 3, {96, 2, 2}},
        {"ids", HN_I32, 1, {9}},                 {"w.4d", HN_F32, 4, {2, 3, 1, 2}},
    };
    int nt = (int)(sizeof ts / sizeof ts[0]);
    make_tensors(ts, nt, &r);
    for (int i = 0; i < nt; i++)
        CHECK(hn_gguf_writer_add_tensor(w, ts[i].name, ts[i].type, ts[i].ndim, ts[i].ne, ts[i].data) == HN_OK, "add %s: %s",
              ts[i].name, hn_errmsg());
    float ramp[40];
    for (int i = 0; i < 40; i++) ramp[i] = (float)i;
    int64_t ne_ramp[2] = {8, 5};
    CHECK(hn_gguf_writer_add_tensor_fn(w, "ramp", HN_F32, 2, ne_ramp, fill_ramp, ramp) == HN_OK, "add fill tensor");
    // Bad tensors are refused at add time.
    int64_t ne_bad[2] = {33, 2}, ne_zero[2] = {32, 0};
    CHECK(hn_gguf_writer_add_tensor(w, "ramp", HN_F32, 1, ne_bad, ramp) == HN_ERR_ARG, "duplicate tensor name refused");
    CHECK(hn_gguf_writer_add_tensor(w, "bad", HN_Q8_0, 2, ne_bad, ramp) == HN_ERR_ARG, "q8_0 with ne[0]=33 refused");
    CHECK(hn_gguf_writer_add_tensor(w, "zero", HN_F32, 2, ne_zero, ramp) == HN_ERR_ARG, "zero dim refused");
    CHECK(hn_gguf_writer_add_tensor(w, "five", HN_F32, 5, ne_bad, ramp) == HN_ERR_ARG, "5 dims refused");
    CHECK(hn_gguf_writer_add_tensor(w, "a-name-that-is-much-longer-than-sixty-three-bytes-which-ggml-refuses-x", HN_F32, 1,
                                    ne_bad, ramp) == HN_ERR_ARG,
          "64-byte name refused");

    const char *path = tmp_path("rt.gguf");
    CHECK(hn_gguf_writer_write(w, path) == HN_OK, "write: %s", hn_errmsg());
    hn_gguf_writer_destroy(w);

    hn_gguf g;
    hn_status s = hn_gguf_open(&g, path);
    CHECK(s == HN_OK, "open round trip: %s", hn_errmsg());
    if (s) return;
    CHECK(g.version == 3 && g.n_kv == 18 && g.n_tensors == 9, "counts: v%u, %llu kv, %llu tensors", g.version,
          (unsigned long long)g.n_kv, (unsigned long long)g.n_tensors);
    CHECK(g.alignment == 32 && g.data_offset % 32 == 0, "alignment 32, data at %llu", (unsigned long long)g.data_offset);
    check_scalar(&g, "t.u8", HN_GGUF_U8, &u8, 1);
    check_scalar(&g, "t.i8", HN_GGUF_I8, &i8, 1);
    check_scalar(&g, "t.u16", HN_GGUF_U16, &u16, 2);
    check_scalar(&g, "t.i16", HN_GGUF_I16, &i16, 2);
    check_scalar(&g, "t.u32", HN_GGUF_U32, &u32, 4);
    check_scalar(&g, "t.i32", HN_GGUF_I32, &i32, 4);
    check_scalar(&g, "t.f32", HN_GGUF_F32, &f32, 4);
    check_scalar(&g, "t.bool", HN_GGUF_BOOL, &b, 1);
    check_scalar(&g, "t.u64", HN_GGUF_U64, &u64, 8);
    check_scalar(&g, "t.i64", HN_GGUF_I64, &i64, 8);
    check_scalar(&g, "t.f64", HN_GGUF_F64, &f64, 8);
    CHECK(!strncmp(g.kv[4].key.str, "t.u32", 5), "a replaced key keeps its place");

    // Typed getters.
    uint32_t v32;
    float vf;
    bool vb;
    hn_gguf_str vs;
    CHECK(hn_gguf_get_u32(&g, "t.u32", &v32) == HN_OK && v32 == u32, "get_u32");
    CHECK(hn_gguf_get_u32(&g, "t.u8", &v32) == HN_OK && v32 == 200, "get_u32 from u8");
    CHECK(hn_gguf_get_u32(&g, "t.u16", &v32) == HN_OK && v32 == 60000, "get_u32 from u16");
    CHECK(hn_gguf_get_u32(&g, "t.i8", &v32) == HN_ERR_FORMAT && strstr(hn_errmsg(), "-100"), "negative: %s", hn_errmsg());
    CHECK(hn_gguf_get_u32(&g, "t.u64", &v32) == HN_ERR_FORMAT, "u64 too large for u32");
    CHECK(hn_gguf_get_u32(&g, "t.str", &v32) == HN_ERR_FORMAT && strstr(hn_errmsg(), "string"), "u32 of a string");
    CHECK(hn_gguf_get_u32(&g, "no.such", &v32) == HN_ERR_NOTFOUND && strstr(hn_errmsg(), "no.such") &&
              strstr(hn_errmsg(), path),
          "absent key: %s", hn_errmsg());
    CHECK(hn_gguf_get_f32(&g, "t.f32", &vf) == HN_OK && vf == 3.25f, "get_f32");
    CHECK(hn_gguf_get_f32(&g, "t.f64", &vf) == HN_OK && vf == (float)f64, "get_f32 from f64");
    CHECK(hn_gguf_get_f32(&g, "t.u32", &vf) == HN_ERR_FORMAT, "get_f32 of u32");
    CHECK(hn_gguf_get_bool(&g, "t.bool", &vb) == HN_OK && vb, "get_bool");
    CHECK(hn_gguf_get_str(&g, "t.str", &vs) == HN_OK && vs.len == strlen("héllo, wörld") &&
              !memcmp(vs.str, "héllo, wörld", vs.len),
          "get_str");
    double d;
    CHECK(hn_gguf_num(hn_gguf_find(&g, "t.i64"), &d) && d == (double)i64, "num i64");
    CHECK(!hn_gguf_num(hn_gguf_find(&g, "t.str"), &d), "num of a string");

    // Arrays.
    const hn_gguf_kv *kv = hn_gguf_find(&g, "a.str");
    CHECK(kv && kv->type == HN_GGUF_ARRAY && kv->arr_type == HN_GGUF_STRING && kv->arr_n == 5, "string array header");
    for (int i = 0; kv && i < 5; i++) {
        hn_gguf_str e = hn_gguf_arr_str(kv, (uint64_t)i);
        CHECK(e.len == strlen(strs[i]) && !memcmp(e.str, strs[i], e.len), "string element %d", i);
    }
    kv = hn_gguf_find(&g, "a.i16");
    CHECK(kv && kv->arr_n == 3 && hn_gguf_arr_num(kv, 0) == -1 && hn_gguf_arr_num(kv, 2) == -3, "i16 array");
    kv = hn_gguf_find(&g, "a.f64");
    CHECK(kv && kv->arr_n == 2 && hn_gguf_arr_num(kv, 1) == -2.25, "f64 array");
    kv = hn_gguf_find(&g, "a.bool");
    CHECK(kv && kv->arr_n == 3 && hn_gguf_arr_num(kv, 0) == 1 && hn_gguf_arr_num(kv, 1) == 0, "bool array");
    kv = hn_gguf_find(&g, "a.u64");
    CHECK(kv && kv->arr_type == HN_GGUF_U64 && kv->arr_n == 2 && !memcmp(kv->val + 8, &au64[1], 8), "u64 array");
    kv = hn_gguf_find(&g, "a.empty");
    CHECK(kv && kv->arr_type == HN_GGUF_U32 && kv->arr_n == 0, "empty array");

    // Tensors: shape, type, bytes, alignment.
    for (int i = 0; i < nt; i++) {
        const hn_tensor *t = hn_gguf_tensor(&g, ts[i].name);
        CHECK(t != NULL, "tensor %s present", ts[i].name);
        if (!t) continue;
        CHECK(t->type == ts[i].type && t->ndim == ts[i].ndim, "%s type/ndim", ts[i].name);
        for (int k = 0; k < 4; k++)
            CHECK(t->ne[k] == (k < ts[i].ndim ? ts[i].ne[k] : 1), "%s ne[%d] = %lld", ts[i].name, k, (long long)t->ne[k]);
        CHECK(t->nbytes == ts[i].nbytes && !memcmp(t->data, ts[i].data, t->nbytes), "%s data", ts[i].name);
        CHECK(((const uint8_t *)t->data - g.map.data) % 32 == 0, "%s aligned", ts[i].name);
    }
    const hn_tensor *t = hn_gguf_tensor(&g, "ramp");
    CHECK(t && t->ne[0] == 8 && t->ne[1] == 5 && !memcmp(t->data, ramp, sizeof ramp), "fill tensor");
    CHECK(hn_gguf_tensor(&g, "nope") == NULL && hn_gguf_find(&g, "nope") == NULL, "absent lookups give NULL");

    // copy_kv carries every key (arrays included) into a second file, with another alignment.
    w = hn_gguf_writer_create();
    for (uint64_t i = 0; i < g.n_kv; i++) CHECK(hn_gguf_writer_copy_kv(w, &g.kv[i]) == HN_OK, "copy kv %llu", (unsigned long long)i);
    CHECK(hn_gguf_writer_set_u32(w, "general.alignment", 64) == HN_OK, "set alignment");
    for (uint64_t i = 0; i < g.n_tensors; i++) {
        const hn_tensor *x = &g.tensors[i];
        CHECK(hn_gguf_writer_add_tensor(w, x->name, x->type, x->ndim, x->ne, x->data) == HN_OK, "re-add %s", x->name);
    }
    const char *path2 = tmp_path("copy.gguf");
    CHECK(hn_gguf_writer_write(w, path2) == HN_OK, "write copy: %s", hn_errmsg());
    hn_gguf_writer_destroy(w);
    hn_gguf g2;
    s = hn_gguf_open(&g2, path2);
    CHECK(s == HN_OK, "open copy: %s", hn_errmsg());
    if (!s) {
        CHECK(g2.alignment == 64 && g2.data_offset % 64 == 0 && g2.n_kv == g.n_kv + 1, "copy alignment 64");
        for (uint64_t i = 0; i < g.n_kv; i++) {
            const hn_gguf_kv *a = &g.kv[i], *c = &g2.kv[i];
            size_t len = i + 1 < g.n_kv ? (size_t)(g.kv[i + 1].val - a->val) : 0; // bytes up to the next entry's value
            CHECK(a->type == c->type && a->arr_type == c->arr_type && a->arr_n == c->arr_n && a->key.len == c->key.len &&
                      !memcmp(a->key.str, c->key.str, a->key.len),
                  "copied key %llu header", (unsigned long long)i);
            CHECK(!len || !memcmp(a->val, c->val, len), "copied key %llu bytes", (unsigned long long)i);
        }
        for (uint64_t i = 0; i < g.n_tensors; i++)
            CHECK(g2.tensors[i].nbytes == g.tensors[i].nbytes &&
                      !memcmp(g2.tensors[i].data, g.tensors[i].data, g.tensors[i].nbytes) &&
                      ((const uint8_t *)g2.tensors[i].data - g2.map.data) % 64 == 0,
                  "copied tensor %s", g.tensors[i].name);
        hn_gguf_close(&g2);
    }
    hn_gguf_close(&g);
    for (int i = 0; i < nt; i++) free(ts[i].data);
}

// A failed write leaves nothing behind: not the file, not its temporary.
static void test_write_failures(void) {
    hn_gguf_writer *w = hn_gguf_writer_create();
    int64_t ne[1] = {8};
    hn_gguf_writer_set_str(w, "general.architecture", "llama");
    hn_gguf_writer_add_tensor_fn(w, "x", HN_F32, 1, ne, fill_fail, NULL);
    const char *path = tmp_path("failed.gguf");
    CHECK(hn_gguf_writer_write(w, path) == HN_ERR_IO && strstr(hn_errmsg(), "on purpose"), "fill error: %s", hn_errmsg());
    CHECK(access(path, F_OK) != 0, "no file after a failed write");
    DIR *dir = opendir(g_dir);
    int leftovers = 0;
    for (struct dirent *e; dir && (e = readdir(dir));) leftovers += strstr(e->d_name, "failed.gguf") != NULL;
    if (dir) closedir(dir);
    CHECK(leftovers == 0, "no temporary file left (%d)", leftovers);
    CHECK(hn_gguf_writer_write(w, "/nonexistent-dir/x.gguf") == HN_ERR_IO, "unwritable path");
    hn_gguf_writer_set(w, "general.alignment", HN_GGUF_U32, &(uint32_t){48});
    CHECK(hn_gguf_writer_write(w, path) == HN_ERR_ARG && strstr(hn_errmsg(), "alignment"), "alignment 48 refused");
    hn_gguf_writer_destroy(w);
}

// ---- broken files -----------------------------------------------------------------------------------------------

typedef struct {
    uint8_t *p;
    size_t n, cap;
} bbuf;

static size_t b_put(bbuf *b, const void *d, size_t n) {
    if (b->n + n > b->cap) {
        b->cap = (b->n + n) * 2;
        b->p = realloc(b->p, b->cap);
    }
    memcpy(b->p + b->n, d, n);
    b->n += n;
    return b->n - n;
}
static size_t b_u32(bbuf *b, uint32_t v) { return b_put(b, &v, 4); }
static size_t b_u64(bbuf *b, uint64_t v) { return b_put(b, &v, 8); }
static size_t b_str(bbuf *b, const char *s) {
    size_t at = b_u64(b, strlen(s));
    b_put(b, s, strlen(s));
    return at;
}

// Where the fields of the hand-built file are, so that a test can patch exactly one of them.
typedef struct {
    size_t version, n_tensors, n_kv, k0_key, k0_val, k1_key, k1_type, k1_val, k2_n, k2_e1, k3_val, k4_elem, k4_n, k5_type,
        k5_val, t0_name, t0_ndim, t0_ne0, t0_ne1, t0_type, t0_off, t1_name, t1_type, t1_off;
} layout;

// A small valid file: 6 keys (string, u32, string array, bool, i32 array, alignment), a q8_0 tensor 'w' (32 x 2,
// 68 bytes at offset 0) and an f32 tensor 'v' (8, 32 bytes at offset 96) that ends exactly at the end of the file.
static bbuf build(layout *L, const char *t0_name) {
    bbuf b = {0};
    b_put(&b, "GGUF", 4);
    L->version = b_u32(&b, 3);
    L->n_tensors = b_u64(&b, 2);
    L->n_kv = b_u64(&b, 6);
    L->k0_key = b_str(&b, "general.architecture");
    b_u32(&b, HN_GGUF_STRING);
    L->k0_val = b_str(&b, "llama");
    L->k1_key = b_str(&b, "test.u32");
    L->k1_type = b_u32(&b, HN_GGUF_U32);
    L->k1_val = b_u32(&b, 7);
    b_str(&b, "test.tok");
    b_u32(&b, HN_GGUF_ARRAY);
    b_u32(&b, HN_GGUF_STRING);
    L->k2_n = b_u64(&b, 2);
    b_str(&b, "a");
    L->k2_e1 = b_str(&b, "bc");
    b_str(&b, "test.bool");
    b_u32(&b, HN_GGUF_BOOL);
    L->k3_val = b_put(&b, "\1", 1);
    b_str(&b, "test.arr");
    b_u32(&b, HN_GGUF_ARRAY);
    L->k4_elem = b_u32(&b, HN_GGUF_I32);
    L->k4_n = b_u64(&b, 3);
    int32_t a[3] = {1, -2, 3};
    b_put(&b, a, sizeof a);
    b_str(&b, "general.alignment");
    L->k5_type = b_u32(&b, HN_GGUF_U32);
    L->k5_val = b_u32(&b, 32);
    L->t0_name = b_str(&b, t0_name);
    L->t0_ndim = b_u32(&b, 2);
    L->t0_ne0 = b_u64(&b, 32);
    L->t0_ne1 = b_u64(&b, 2);
    L->t0_type = b_u32(&b, HN_Q8_0);
    L->t0_off = b_u64(&b, 0);
    L->t1_name = b_str(&b, "v");
    b_u32(&b, 1);
    b_u64(&b, 8);
    L->t1_type = b_u32(&b, HN_F32);
    L->t1_off = b_u64(&b, 96);
    while (b.n % 32) b_put(&b, "", 1);
    uint8_t data[128] = {0};
    b_put(&b, data, sizeof data);
    return b;
}

static const char *g_bad_path;

static hn_status try_open(const uint8_t *d, size_t n) {
    write_file(g_bad_path, d, n);
    hn_gguf g;
    hn_status s = hn_gguf_open(&g, g_bad_path);
    if (!s) hn_gguf_close(&g);
    return s;
}

// Opens the base file with one field patched; checks the status and that the message names the file and the problem.
static void expect(const char *label, const bbuf *base, size_t at, const void *patch, size_t plen, hn_status want,
                   const char *sub1, const char *sub2) {
    uint8_t *d = malloc(base->n);
    memcpy(d, base->p, base->n);
    if (patch) memcpy(d + at, patch, plen);
    hn_status s = try_open(d, base->n);
    const char *m = hn_errmsg();
    CHECK(s == want, "%s: status %s, expected %s (%s)", label, hn_status_name(s), hn_status_name(want), m);
    if (want != HN_OK) {
        CHECK(!strncmp(m, g_bad_path, strlen(g_bad_path)) && !strchr(m, '\n'), "%s: one line naming the file: %s", label, m);
        CHECK(!sub1 || strstr(m, sub1), "%s: message lacks '%s': %s", label, sub1, m);
        CHECK(!sub2 || strstr(m, sub2), "%s: message lacks '%s': %s", label, sub2, m);
    }
    free(d);
}

#define P32(v) &(uint32_t){v}, 4
#define P64(v) &(uint64_t){v}, 8

static void test_bad_files(void) {
    g_bad_path = tmp_path("bad.gguf");
    layout L;
    bbuf b = build(&L, "w");
    expect("base file", &b, 0, NULL, 0, HN_OK, NULL, NULL);
    hn_gguf g;
    if (hn_gguf_open(&g, g_bad_path) == HN_OK) {
        CHECK(g.n_tensors == 2 && g.tensor_offset[1] == 96 && g.data_offset + 128 == b.n, "base layout");
        hn_gguf_close(&g);
    }

    // Every proper prefix of the file fails cleanly, with a message that says why.
    int bad_prefix = 0;
    for (size_t n = 0; n < b.n; n++) {
        hn_status s = try_open(b.p, n);
        const char *m = hn_errmsg();
        bool ok = s == HN_ERR_FORMAT && strstr(m, g_bad_path) &&
                  (strstr(m, "truncated") || strstr(m, "past the end") || strstr(m, "empty") || strstr(m, "n_kv") ||
                   strstr(m, "n_tensors") || strstr(m, "at most"));
        if (!ok && bad_prefix++ < 5) CHECK(ok, "prefix of %zu bytes: %s %s", n, hn_status_name(s), m);
    }
    CHECK(bad_prefix == 0, "%d prefixes without a clean error", bad_prefix);
    CHECK(try_open(b.p, 0) == HN_ERR_FORMAT && strstr(hn_errmsg(), "empty"), "empty file: %s", hn_errmsg());
    CHECK(try_open(b.p, 6) == HN_ERR_FORMAT && strstr(hn_errmsg(), "version") && strstr(hn_errmsg(), "truncated"),
          "6 bytes: %s", hn_errmsg());
    CHECK(try_open(b.p, 24) == HN_ERR_FORMAT && strstr(hn_errmsg(), "n_kv"), "header only: %s", hn_errmsg());

    expect("magic", &b, 0, "GGML", 4, HN_ERR_FORMAT, "magic", "GGML");
    expect("version 1", &b, L.version, P32(1), HN_ERR_UNSUPPORTED, "version", "got 1");
    expect("version 4", &b, L.version, P32(4), HN_ERR_UNSUPPORTED, "version", "got 4");
    expect("version 0", &b, L.version, P32(0), HN_ERR_FORMAT, "version", "got 0");
    expect("big-endian", &b, L.version, P32(0x03000000), HN_ERR_UNSUPPORTED, "version", "big-endian");
    expect("version 2", &b, L.version, P32(2), HN_OK, NULL, NULL);
    expect("n_tensors absurd", &b, L.n_tensors, P64(UINT64_MAX), HN_ERR_FORMAT, "n_tensors", "18446744073709551615");
    expect("n_tensors 2^59", &b, L.n_tensors, P64(1ull << 59), HN_ERR_FORMAT, "n_tensors", NULL);
    expect("n_kv absurd", &b, L.n_kv, P64(UINT64_MAX / 14 + 1), HN_ERR_FORMAT, "n_kv", NULL);
    expect("n_kv 2^62", &b, L.n_kv, P64(1ull << 62), HN_ERR_FORMAT, "n_kv", NULL);
    expect("key length past the end", &b, L.k0_key, P64(UINT64_MAX), HN_ERR_FORMAT, "key 0 name", "at most");
    expect("value string past the end", &b, L.k0_val, P64(1ull << 40), HN_ERR_FORMAT, "'general.architecture' value", "at most");
    expect("empty key", &b, L.k1_key, P64(0), HN_ERR_FORMAT, "key 1", NULL);
    expect("NUL in a key", &b, L.k1_key + 8 + 4, "", 1, HN_ERR_FORMAT, "key 1", "NUL");
    expect("unknown value type", &b, L.k1_type, P32(77), HN_ERR_FORMAT, "'test.u32' type", "77");
    expect("duplicate key", &b, L.k1_key + 8, "test.arr", 8, HN_ERR_FORMAT, "duplicate", "test.arr");
    expect("string array count absurd", &b, L.k2_n, P64(1ull << 61), HN_ERR_FORMAT, "'test.tok' array length", NULL);
    expect("array string past the end", &b, L.k2_e1, P64(1000000), HN_ERR_FORMAT, "element 1", "at most");
    expect("bool 2", &b, L.k3_val, "\2", 1, HN_ERR_FORMAT, "'test.bool'", "bool");
    expect("nested array", &b, L.k4_elem, P32(HN_GGUF_ARRAY), HN_ERR_UNSUPPORTED, "'test.arr'", "nested");
    expect("unknown element type", &b, L.k4_elem, P32(77), HN_ERR_FORMAT, "'test.arr' array element type", "77");
    expect("array count overflows", &b, L.k4_n, P64(1ull << 62), HN_ERR_FORMAT, "'test.arr' array", NULL);
    expect("array count past the end", &b, L.k4_n, P64(1ull << 40), HN_ERR_FORMAT, "'test.arr' array", NULL);
    expect("alignment 48", &b, L.k5_val, P32(48), HN_ERR_FORMAT, "general.alignment", "power of two");
    expect("alignment as i32", &b, L.k5_type, P32(HN_GGUF_I32), HN_ERR_FORMAT, "general.alignment", "u32");
    expect("alignment 64 misaligns 'v'", &b, L.k5_val, P32(64), HN_ERR_FORMAT, "'v'", "misaligned");
    expect("n_dims 5", &b, L.t0_ndim, P32(5), HN_ERR_FORMAT, "tensor 0 'w' n_dims", "got 5");
    expect("n_dims 0", &b, L.t0_ndim, P32(0), HN_ERR_FORMAT, "n_dims", "got 0");
    {
        bbuf c = {0};
        b_put(&c, b.p, b.n);
        memcpy(c.p + L.t0_ne0, &(uint64_t){1ull << 32}, 8);
        memcpy(c.p + L.t0_ne1, &(uint64_t){1ull << 32}, 8);
        expect("dims product overflows", &c, 0, NULL, 0, HN_ERR_FORMAT, "'w' shape", "overflows");
        free(c.p);
    }
    expect("dim zero", &b, L.t0_ne1, P64(0), HN_ERR_FORMAT, "'w' ne[1]", "got 0");
    expect("dim 2^63", &b, L.t0_ne0, P64(1ull << 63), HN_ERR_FORMAT, "'w' ne[0]", NULL);
    expect("row not whole blocks", &b, L.t0_ne0, P64(33), HN_ERR_FORMAT, "'w' ne[0]", "multiple of 32");
    expect("unknown dtype", &b, L.t0_type, P32(99), HN_ERR_FORMAT, "tensor 0 'w' type", "got 99 (unknown dtype)");
    expect("removed dtype 4", &b, L.t0_type, P32(4), HN_ERR_FORMAT, "'w' type", "got 4");
    expect("unsupported dtype", &b, L.t0_type, P32(16), HN_ERR_UNSUPPORTED, "'w' type", "iq2_xxs");
    expect("overlap", &b, L.t1_off, P64(64), HN_ERR_FORMAT, "overlaps", "'v'");
    expect("same offset", &b, L.t1_off, P64(0), HN_ERR_FORMAT, "overlaps", NULL);
    expect("misaligned", &b, L.t1_off, P64(97), HN_ERR_FORMAT, "'v' offset", "misaligned");
    expect("data past the end", &b, L.t1_off, P64(128), HN_ERR_FORMAT, "'v' data", "past the end");
    expect("offset overflows", &b, L.t1_off, P64(UINT64_MAX - 31), HN_ERR_FORMAT, "'v' data", "past the end");
    expect("duplicate tensor", &b, L.t1_name + 8, "w", 1, HN_ERR_FORMAT, "duplicate", "'w'");
    expect("tensor name past the end", &b, L.t1_name, P64(UINT64_MAX), HN_ERR_FORMAT, "tensor 1 name", NULL);
    expect("empty tensor name", &b, L.t0_name, P64(0), HN_ERR_FORMAT, "tensor 0", NULL);
    free(b.p);

    b = build(&L, "a-tensor-name-of-sixty-four-bytes-which-ggml-refuses-12345678901");
    expect("64-byte tensor name", &b, 0, NULL, 0, HN_ERR_FORMAT, "tensor 0 name", "got 64");
    free(b.p);

    // A header with nothing after it is a valid, empty file.
    bbuf e = {0};
    b_put(&e, "GGUF", 4);
    b_u32(&e, 3);
    b_u64(&e, 0);
    b_u64(&e, 0);
    expect("empty model", &e, 0, NULL, 0, HN_OK, NULL, NULL);
    free(e.p);

    // Random corruption: never a crash, only a clean status, and tensors that load lie inside the file.
    b = build(&L, "w");
    hn_rng r;
    hn_rng_seed(&r, 42);
    uint8_t *d = malloc(b.n);
    int opened = 0, unclean = 0;
    for (int it = 0; it < 3000; it++) {
        memcpy(d, b.p, b.n);
        int flips = 1 + (int)(hn_rng_u64(&r) % 4);
        for (int k = 0; k < flips; k++) {
            size_t at = hn_rng_u64(&r) % (b.n - 128); // the header and infos, where parsing decisions are
            d[at] = (hn_rng_u64(&r) & 1) ? (uint8_t)hn_rng_u64(&r) : d[at] ^ (uint8_t)(1u << (hn_rng_u64(&r) % 8));
        }
        write_file(g_bad_path, d, b.n);
        hn_status s = hn_gguf_open(&g, g_bad_path);
        if (s == HN_OK) {
            opened++;
            for (uint64_t i = 0; i < g.n_tensors; i++) {
                const uint8_t *p = g.tensors[i].data;
                unclean += p < g.map.data || p + g.tensors[i].nbytes > g.map.data + g.map.size;
            }
            hn_gguf_close(&g);
        } else
            unclean += (s != HN_ERR_FORMAT && s != HN_ERR_UNSUPPORTED) || !strstr(hn_errmsg(), g_bad_path);
    }
    CHECK(unclean == 0, "random corruption: %d unclean results", unclean);
    printf("random corruption: %d of 3000 still opened (a changed value or name), the rest refused\n", opened);
    free(d);
    free(b.p);
}

static void test_real_model(void) {
    char *path;
    if (hn_model_resolve("smollm2-135m-instruct", &path)) {
        printf("real model absent (hone pull smollm2-135m-instruct): skipping its checks\n");
        return;
    }
    hn_gguf g;
    hn_status s = hn_gguf_open(&g, path);
    CHECK(s == HN_OK, "open real model: %s", hn_errmsg());
    free(path);
    if (s) return;
    uint32_t n;
    CHECK(g.n_tensors == 272 && hn_gguf_get_u32(&g, "llama.block_count", &n) == HN_OK && n == 30, "30 blocks, 272 tensors");
    const hn_tensor *e = hn_gguf_tensor(&g, "token_embd.weight");
    CHECK(e && e->type == HN_Q8_0 && e->ne[0] == 576 && e->ne[1] == 49152, "token_embd q8_0 576 x 49152");
    const hn_gguf_kv *tok = hn_gguf_find(&g, "tokenizer.ggml.tokens");
    hn_gguf_str t1 = tok ? hn_gguf_arr_str(tok, 1) : (hn_gguf_str){"", 0};
    CHECK(tok && tok->arr_n == 49152 && t1.len == 12 && !memcmp(t1.str, "<|im_start|>", 12), "token 1 is <|im_start|>");
    // All metadata (49k-string arrays included) survives copy_kv byte for byte.
    hn_gguf_writer *w = hn_gguf_writer_create();
    for (uint64_t i = 0; i < g.n_kv; i++) hn_gguf_writer_copy_kv(w, &g.kv[i]);
    const char *out = tmp_path("meta.gguf");
    CHECK(hn_gguf_writer_write(w, out) == HN_OK, "write metadata copy: %s", hn_errmsg());
    hn_gguf_writer_destroy(w);
    hn_gguf g2;
    if (hn_gguf_open(&g2, out) == HN_OK) {
        size_t meta = (size_t)(g.kv[g.n_kv - 1].val - (const uint8_t *)g.kv[0].key.str); // all but the last value
        CHECK(g2.n_kv == g.n_kv && !memcmp(g2.kv[0].key.str, g.kv[0].key.str, meta), "metadata bytes equal");
        hn_gguf_close(&g2);
    } else
        CHECK(0, "reopen metadata copy: %s", hn_errmsg());
    hn_gguf_close(&g);
}

static void cleanup(void) {
    DIR *d = opendir(g_dir);
    for (struct dirent *e; d && (e = readdir(d));)
        if (e->d_name[0] != '.') unlink(tmp_path(e->d_name));
    if (d) closedir(d);
    rmdir(g_dir);
}

int main(void) {
    if (!mkdtemp(g_dir)) return 1;
    test_round_trip();
    test_write_failures();
    test_bad_files();
    test_real_model();
    cleanup();
    return test_done();
}
