// io/gguf_write.c — GGUF v3 writer: metadata and tensors are collected, then the whole file is written through
// hn_afile (temp + rename), so a failure part-way never leaves a half-written file at the destination.
#include "io/gguf.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
    char *key;
    hn_gguf_type type;
    uint8_t *val; // the value encoded as in the file (for arrays: element type, count, elements)
    size_t nbytes;
} wkv;

typedef struct {
    char name[64];
    hn_dtype type;
    int ndim;
    int64_t ne[HN_MAX_DIMS];
    size_t nbytes;
    const void *data;    // borrowed, or NULL when `fill` produces the data
    hn_gguf_fill_fn fill;
    void *user;
} wtensor;

struct hn_gguf_writer {
    wkv *kv;
    size_t n_kv, cap_kv;
    wtensor *t;
    size_t n_t, cap_t;
};

hn_gguf_writer *hn_gguf_writer_create(void) { return hn_calloc(1, sizeof(hn_gguf_writer), "GGUF writer"); }

void hn_gguf_writer_destroy(hn_gguf_writer *w) {
    if (!w) return;
    for (size_t i = 0; i < w->n_kv; i++) {
        free(w->kv[i].key);
        free(w->kv[i].val);
    }
    free(w->kv);
    free(w->t);
    free(w);
}

static bool grow(void **p, size_t *cap, size_t n, size_t elem, const char *what) {
    if (n < *cap) return true;
    size_t nc = *cap ? *cap * 2 : 16;
    void *q = realloc(*p, nc * elem);
    if (!q) {
        hn_fail(HN_ERR_NOMEM, "out of memory growing %s", what);
        return false;
    }
    *p = q;
    *cap = nc;
    return true;
}

// Takes ownership of val (malloc'd) in every case.
static hn_status put(hn_gguf_writer *w, const char *key, hn_gguf_type type, uint8_t *val, size_t nbytes) {
    size_t klen = strlen(key);
    if (klen == 0 || klen > 65535) {
        free(val);
        return hn_fail(HN_ERR_ARG, "GGUF writer: key '%.64s': expected 1 to 65535 bytes, got %zu", key, klen);
    }
    for (size_t i = 0; i < w->n_kv; i++)
        if (!strcmp(w->kv[i].key, key)) {
            free(w->kv[i].val);
            w->kv[i].type = type;
            w->kv[i].val = val;
            w->kv[i].nbytes = nbytes;
            return HN_OK;
        }
    char *k = strdup(key);
    if (!k || !grow((void **)&w->kv, &w->cap_kv, w->n_kv, sizeof *w->kv, "GGUF metadata")) {
        free(k);
        free(val);
        return hn_fail(HN_ERR_NOMEM, "GGUF writer: out of memory adding key '%.64s'", key);
    }
    w->kv[w->n_kv++] = (wkv){k, type, val, nbytes};
    return HN_OK;
}

static hn_status put_bytes(hn_gguf_writer *w, const char *key, hn_gguf_type type, const void *bytes, size_t n) {
    uint8_t *v = hn_alloc(n ? n : 1, "GGUF value");
    if (!v) return HN_ERR_NOMEM;
    if (n) memcpy(v, bytes, n);
    return put(w, key, type, v, n);
}

static size_t encode_str(uint8_t *dst, const char *s) {
    uint64_t len = strlen(s);
    memcpy(dst, &len, 8);
    memcpy(dst + 8, s, (size_t)len);
    return 8 + (size_t)len;
}

hn_status hn_gguf_writer_set(hn_gguf_writer *w, const char *key, hn_gguf_type type, const void *v) {
    if (type == HN_GGUF_STRING) {
        const char *s = v;
        uint8_t *val = hn_alloc(8 + strlen(s), "GGUF string value");
        if (!val) return HN_ERR_NOMEM;
        return put(w, key, type, val, encode_str(val, s));
    }
    if (type == HN_GGUF_BOOL) {
        uint8_t b = *(const bool *)v ? 1 : 0;
        return put_bytes(w, key, type, &b, 1);
    }
    size_t sz = hn_gguf_type_size(type);
    if (!sz) return hn_fail(HN_ERR_ARG, "GGUF writer: key '%.64s': expected a scalar type, got %s", key, hn_gguf_type_name(type));
    return put_bytes(w, key, type, v, sz);
}

hn_status hn_gguf_writer_set_u32(hn_gguf_writer *w, const char *key, uint32_t v) { return hn_gguf_writer_set(w, key, HN_GGUF_U32, &v); }
hn_status hn_gguf_writer_set_f32(hn_gguf_writer *w, const char *key, float v) { return hn_gguf_writer_set(w, key, HN_GGUF_F32, &v); }
hn_status hn_gguf_writer_set_bool(hn_gguf_writer *w, const char *key, bool v) { return hn_gguf_writer_set(w, key, HN_GGUF_BOOL, &v); }
hn_status hn_gguf_writer_set_str(hn_gguf_writer *w, const char *key, const char *v) { return hn_gguf_writer_set(w, key, HN_GGUF_STRING, v); }

hn_status hn_gguf_writer_set_arr(hn_gguf_writer *w, const char *key, hn_gguf_type elem, const void *items, uint64_t n) {
    if ((unsigned)elem >= HN_GGUF_TYPE_COUNT || elem == HN_GGUF_ARRAY)
        return hn_fail(HN_ERR_ARG, "GGUF writer: key '%.64s': expected an array element type other than array, got %s", key,
                       hn_gguf_type_name(elem));
    size_t body = 0;
    if (elem == HN_GGUF_STRING) {
        const char *const *s = items;
        for (uint64_t i = 0; i < n; i++)
            if (!hn_add_ok(body, 8 + strlen(s[i]), &body)) return hn_fail(HN_ERR_ARG, "GGUF writer: key '%.64s': too large", key);
    } else if (n > SIZE_MAX || !hn_mul_ok((size_t)n, hn_gguf_type_size(elem), &body))
        return hn_fail(HN_ERR_ARG, "GGUF writer: key '%.64s': too large", key);
    if (body > SIZE_MAX - 12) return hn_fail(HN_ERR_ARG, "GGUF writer: key '%.64s': too large", key);
    uint8_t *val = hn_alloc(12 + body, "GGUF array value");
    if (!val) return HN_ERR_NOMEM;
    uint32_t et = elem;
    memcpy(val, &et, 4);
    memcpy(val + 4, &n, 8);
    size_t o = 12;
    if (elem == HN_GGUF_STRING) {
        const char *const *s = items;
        for (uint64_t i = 0; i < n; i++) o += encode_str(val + o, s[i]);
    } else if (elem == HN_GGUF_BOOL) {
        const bool *b = items;
        for (uint64_t i = 0; i < n; i++) val[o++] = b[i] ? 1 : 0;
    } else if (body)
        memcpy(val + o, items, body);
    return put(w, key, HN_GGUF_ARRAY, val, 12 + body);
}

hn_status hn_gguf_writer_copy_kv(hn_gguf_writer *w, const hn_gguf_kv *kv) {
    char *key = hn_alloc((size_t)kv->key.len + 1, "GGUF key");
    if (!key) return HN_ERR_NOMEM;
    memcpy(key, kv->key.str, (size_t)kv->key.len);
    key[kv->key.len] = 0;
    const uint8_t *start = kv->val, *end;
    if (kv->type == HN_GGUF_STRING) {
        uint64_t len;
        memcpy(&len, kv->val, 8);
        end = kv->val + 8 + len;
    } else if (kv->type == HN_GGUF_ARRAY) {
        start = kv->val - 12; // element type and count precede the first element
        if (kv->arr_type != HN_GGUF_STRING) end = kv->val + kv->arr_n * hn_gguf_type_size(kv->arr_type);
        else if (kv->arr_n == 0) end = kv->val;
        else {
            hn_gguf_str last = hn_gguf_arr_str(kv, kv->arr_n - 1);
            end = (const uint8_t *)last.str + last.len;
        }
    } else
        end = kv->val + hn_gguf_type_size(kv->type);
    hn_status s = put_bytes(w, key, kv->type, start, (size_t)(end - start));
    free(key);
    return s;
}

static hn_status add(hn_gguf_writer *w, const char *name, hn_dtype type, int ndim, const int64_t *ne, const void *data,
                     hn_gguf_fill_fn fill, void *user) {
    size_t len = strlen(name);
    if (len == 0 || len > 63)
        return hn_fail(HN_ERR_ARG, "GGUF writer: tensor '%.64s': name: expected 1 to 63 bytes, got %zu", name, len);
    for (size_t i = 0; i < w->n_t; i++)
        if (!strcmp(w->t[i].name, name)) return hn_fail(HN_ERR_ARG, "GGUF writer: tensor '%s': added twice", name);
    if (ndim < 1 || ndim > HN_MAX_DIMS)
        return hn_fail(HN_ERR_ARG, "GGUF writer: tensor '%s': n_dims: expected 1 to %d, got %d", name, HN_MAX_DIMS, ndim);
    wtensor t = {.type = type, .ndim = ndim, .data = data, .fill = fill, .user = user};
    memcpy(t.name, name, len + 1);
    int64_t rows = 1;
    for (int d = 0; d < HN_MAX_DIMS; d++) {
        t.ne[d] = d < ndim ? ne[d] : 1;
        if (t.ne[d] < 1) return hn_fail(HN_ERR_ARG, "GGUF writer: tensor '%s': ne[%d]: expected >= 1, got %lld", name, d, (long long)t.ne[d]);
        if (d > 0 && __builtin_mul_overflow(rows, t.ne[d], &rows))
            return hn_fail(HN_ERR_ARG, "GGUF writer: tensor '%s': shape overflows", name);
    }
    size_t row;
    if (type >= HN_TYPE_FILE_END) // hone's in-memory types (NF4) have no GGUF number
        return hn_fail(HN_ERR_ARG, "GGUF writer: tensor '%s': type %s exists only in memory, not in GGUF files", name,
                       hn_dtype_name(type));
    if (!hn_row_bytes(type, t.ne[0], &row) || !hn_mul_ok(row, (size_t)rows, &t.nbytes))
        return hn_fail(HN_ERR_ARG, "GGUF writer: tensor '%s': expected a supported type whose block divides ne[0], got %s with ne[0] = %lld",
                       name, hn_dtype_name(type), (long long)t.ne[0]);
    if (!grow((void **)&w->t, &w->cap_t, w->n_t, sizeof *w->t, "GGUF tensors")) return HN_ERR_NOMEM;
    w->t[w->n_t++] = t;
    return HN_OK;
}

hn_status hn_gguf_writer_add_tensor(hn_gguf_writer *w, const char *name, hn_dtype type, int ndim, const int64_t *ne,
                                    const void *data) {
    return add(w, name, type, ndim, ne, data, NULL, NULL);
}

hn_status hn_gguf_writer_add_tensor_fn(hn_gguf_writer *w, const char *name, hn_dtype type, int ndim, const int64_t *ne,
                                       hn_gguf_fill_fn fill, void *user) {
    return add(w, name, type, ndim, ne, NULL, fill, user);
}

static hn_status put_u32(hn_afile *f, uint32_t v) { return hn_afile_write(f, &v, 4); }
static hn_status put_u64(hn_afile *f, uint64_t v) { return hn_afile_write(f, &v, 8); }

static hn_status put_zeros(hn_afile *f, size_t n) {
    static const uint8_t zero[4096];
    hn_status s = HN_OK;
    while (n && !s) {
        size_t k = n < sizeof zero ? n : sizeof zero;
        s = hn_afile_write(f, zero, k);
        n -= k;
    }
    return s;
}

static size_t pad_to(size_t x, size_t a) { return (a - x % a) % a; }

static hn_status write_all(hn_gguf_writer *w, hn_afile *f, size_t align) {
    size_t pos = 24, maxfill = 0;
    hn_status s;
    if ((s = hn_afile_write(f, "GGUF", 4)) || (s = put_u32(f, 3)) || (s = put_u64(f, w->n_t)) || (s = put_u64(f, w->n_kv)))
        return s;
    for (size_t i = 0; i < w->n_kv; i++) {
        const wkv *kv = &w->kv[i];
        uint64_t klen = strlen(kv->key);
        if ((s = put_u64(f, klen)) || (s = hn_afile_write(f, kv->key, (size_t)klen)) || (s = put_u32(f, kv->type)) ||
            (s = hn_afile_write(f, kv->val, kv->nbytes)))
            return s;
        pos += 8 + (size_t)klen + 4 + kv->nbytes;
    }
    uint64_t off = 0;
    for (size_t i = 0; i < w->n_t; i++) {
        const wtensor *t = &w->t[i];
        size_t len = strlen(t->name);
        if ((s = put_u64(f, len)) || (s = hn_afile_write(f, t->name, len)) || (s = put_u32(f, (uint32_t)t->ndim))) return s;
        for (int d = 0; d < t->ndim; d++)
            if ((s = put_u64(f, (uint64_t)t->ne[d]))) return s;
        if ((s = put_u32(f, t->type)) || (s = put_u64(f, off))) return s;
        pos += 8 + len + 4 + 8 * (size_t)t->ndim + 4 + 8;
        off += t->nbytes + pad_to(t->nbytes, align);
        if (t->fill && t->nbytes > maxfill) maxfill = t->nbytes;
    }
    if ((s = put_zeros(f, pad_to(pos, align)))) return s;
    uint8_t *buf = NULL;
    if (maxfill && !(buf = hn_alloc_aligned(maxfill, "GGUF writer tensor buffer"))) return HN_ERR_NOMEM;
    for (size_t i = 0; i < w->n_t && !s; i++) {
        const wtensor *t = &w->t[i];
        const void *data = t->data;
        if (t->fill) {
            s = t->fill(t->user, buf, t->nbytes);
            data = buf;
        }
        if (!s) s = hn_afile_write(f, data, t->nbytes);
        if (!s) s = put_zeros(f, pad_to(t->nbytes, align));
    }
    free(buf);
    return s;
}

hn_status hn_gguf_writer_write(hn_gguf_writer *w, const char *path) {
    size_t align = 32;
    for (size_t i = 0; i < w->n_kv; i++) {
        if (strcmp(w->kv[i].key, "general.alignment")) continue;
        uint32_t a = 0;
        if (w->kv[i].type == HN_GGUF_U32) memcpy(&a, w->kv[i].val, 4);
        if (a == 0 || (a & (a - 1)))
            return hn_fail(HN_ERR_ARG, "%s: general.alignment: expected a u32 power of two, got %s %u", path,
                           hn_gguf_type_name(w->kv[i].type), a);
        align = a;
    }
    hn_afile f;
    hn_status s = hn_afile_open(&f, path);
    if (s) return s;
    s = write_all(w, &f, align);
    if (s) {
        hn_afile_abort(&f);
        return s;
    }
    return hn_afile_commit(&f);
}
