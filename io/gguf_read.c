// io/gguf_read.c — GGUF v2/v3 reader over a read-only mapping (FORMATS.md section 1).
//
// Nothing is trusted: every count, length, dimension and offset is checked against the bytes the file has, with
// overflow-checked arithmetic, before it is used for a read or an allocation. Counts are bounded by the smallest
// encoding of one item, so a hostile header cannot make us allocate more than a few times the file size.
#define _GNU_SOURCE
#include "io/gguf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

// Open-addressing tables of (index + 1); 0 marks an empty slot. Capacity is a power of two, at least twice the count.
struct hn_gguf_index {
    uint64_t *kv, *tensor;
    uint64_t kv_mask, tensor_mask;
};

typedef struct {
    const uint8_t *p;
    size_t size, pos;
    const char *path;
    char ctx[192]; // the item being read, for messages: "key 4 'general.name'"
} cursor;

enum { MIN_KV_BYTES = 8 + 1 + 4 + 1, MIN_TENSOR_BYTES = 8 + 1 + 4 + 8 + 4 + 8, MAX_NAME = 63, MAX_KEY = 65535 };

static const size_t type_size[HN_GGUF_TYPE_COUNT] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};
static const char *const type_names[HN_GGUF_TYPE_COUNT] = {"u8",   "i8",     "u16",   "i16", "u32", "i32", "f32",
                                                           "bool", "string", "array", "u64", "i64", "f64"};
_Static_assert(HN_GGUF_TYPE_COUNT == 13, "one size and one name per GGUF value type");

const char *hn_gguf_type_name(hn_gguf_type t) { return (unsigned)t < HN_GGUF_TYPE_COUNT ? type_names[t] : "?"; }
size_t hn_gguf_type_size(hn_gguf_type t) { return (unsigned)t < HN_GGUF_TYPE_COUNT ? type_size[t] : 0; }

const char *hn_gguf_ggml_type_name(uint32_t type) {
    static const char *const names[] = {
        [0] = "f32",      [1] = "f16",     [2] = "q4_0",     [3] = "q4_1",    [6] = "q5_0",    [7] = "q5_1",
        [8] = "q8_0",     [9] = "q8_1",    [10] = "q2_k",    [11] = "q3_k",   [12] = "q4_k",   [13] = "q5_k",
        [14] = "q6_k",    [15] = "q8_k",   [16] = "iq2_xxs", [17] = "iq2_xs", [18] = "iq3_xxs", [19] = "iq1_s",
        [20] = "iq4_nl",  [21] = "iq3_s",  [22] = "iq2_s",   [23] = "iq4_xs", [24] = "i8",     [25] = "i16",
        [26] = "i32",     [27] = "i64",    [28] = "f64",     [29] = "iq1_m",  [30] = "bf16",   [34] = "tq1_0",
        [35] = "tq2_0",   [39] = "mxfp4",
    };
    return type < sizeof names / sizeof names[0] ? names[type] : NULL;
}

// Writes a short, printable rendering of s (escaped, cut at ~48 bytes) into buf.
static const char *show(char *buf, size_t cap, const char *s, uint64_t len) {
    size_t o = 0;
    for (uint64_t i = 0; i < len && o + 8 < cap; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (i >= 48) {
            o += (size_t)snprintf(buf + o, cap - o, "...");
            break;
        }
        if (ch >= 0x20 && ch < 0x7f && ch != '\\' && ch != '\'') buf[o++] = (char)ch;
        else o += (size_t)snprintf(buf + o, cap - o, "\\x%02x", ch);
    }
    buf[o] = 0;
    return buf;
}

static hn_status bad(const cursor *c, hn_status s, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static hn_status bad(const cursor *c, hn_status s, const char *fmt, ...) {
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return hn_fail(s, "%s: %s%s%s", c->path, c->ctx, c->ctx[0] ? " " : "", msg);
}

static hn_status need(const cursor *c, uint64_t n, const char *what) {
    if (n <= c->size - c->pos) return HN_OK;
    return bad(c, HN_ERR_FORMAT, "%s: expected %llu bytes at offset %zu, got %zu (the file is truncated)", what,
               (unsigned long long)n, c->pos, c->size - c->pos);
}

static hn_status rd_u32(cursor *c, const char *what, uint32_t *v) {
    hn_status s = need(c, 4, what);
    if (s) return s;
    memcpy(v, c->p + c->pos, 4);
    c->pos += 4;
    return HN_OK;
}

static hn_status rd_u64(cursor *c, const char *what, uint64_t *v) {
    hn_status s = need(c, 8, what);
    if (s) return s;
    memcpy(v, c->p + c->pos, 8);
    c->pos += 8;
    return HN_OK;
}

static hn_status rd_str(cursor *c, const char *what, hn_gguf_str *out) {
    uint64_t len;
    char lw[64];
    snprintf(lw, sizeof lw, "%s length", what);
    hn_status s = rd_u64(c, lw, &len);
    if (s) return s;
    if (len > c->size - c->pos)
        return bad(c, HN_ERR_FORMAT, "%s: expected a string of at most %zu bytes (the rest of the file), got length %llu",
                   what, c->size - c->pos, (unsigned long long)len);
    out->str = (const char *)c->p + c->pos;
    out->len = len;
    c->pos += (size_t)len;
    return HN_OK;
}

static uint64_t hash(const char *s, uint64_t len) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (uint64_t i = 0; i < len; i++) h = (h ^ (unsigned char)s[i]) * 0x100000001b3ull;
    return h;
}

static bool same(hn_gguf_str a, const char *s, size_t len) { return a.len == len && !memcmp(a.str, s, len); }

static hn_gguf_str tensor_name(const hn_gguf *g, uint64_t i) {
    return (hn_gguf_str){g->tensors[i].name, strlen(g->tensors[i].name)};
}

static hn_gguf_str kv_key(const hn_gguf *g, uint64_t i) { return g->kv[i].key; }

// Looks `s` up in a table; returns the slot where it is (*found) or where it would go.
static uint64_t *slot(const hn_gguf *g, uint64_t *tab, uint64_t mask, hn_gguf_str (*name)(const hn_gguf *, uint64_t),
                      const char *s, size_t len, bool *found) {
    for (uint64_t h = hash(s, len) & mask;; h = (h + 1) & mask) {
        if (!tab[h] || same(name(g, tab[h] - 1), s, len)) {
            *found = tab[h] != 0;
            return &tab[h];
        }
    }
}

static uint64_t table_cap(uint64_t n) {
    uint64_t cap = 16;
    while (cap < 2 * n) cap *= 2;
    return cap;
}

// Skips one value of a non-array type, checking what can be checked (bool is 0 or 1).
static hn_status skip_value(cursor *c, uint32_t type, const char *what) {
    if (type >= HN_GGUF_TYPE_COUNT || type == HN_GGUF_ARRAY)
        return bad(c, HN_ERR_FORMAT, "%s type: expected a value type 0..12, got %u", what, type);
    if (type == HN_GGUF_STRING) {
        hn_gguf_str tmp;
        return rd_str(c, what, &tmp);
    }
    hn_status s = need(c, type_size[type], what);
    if (s) return s;
    if (type == HN_GGUF_BOOL && c->p[c->pos] > 1)
        return bad(c, HN_ERR_FORMAT, "%s: expected a bool (0 or 1), got %u", what, c->p[c->pos]);
    c->pos += type_size[type];
    return HN_OK;
}

static hn_status read_kv(cursor *c, hn_gguf_kv *kv, uint64_t i) {
    snprintf(c->ctx, sizeof c->ctx, "key %llu", (unsigned long long)i);
    hn_status s = rd_str(c, "name", &kv->key);
    if (s) return s;
    if (kv->key.len == 0 || kv->key.len > MAX_KEY)
        return bad(c, HN_ERR_FORMAT, "name: expected 1 to %d bytes, got %llu", MAX_KEY, (unsigned long long)kv->key.len);
    if (memchr(kv->key.str, 0, (size_t)kv->key.len)) return bad(c, HN_ERR_FORMAT, "name: expected no NUL bytes, got one");
    char shown[256];
    snprintf(c->ctx, sizeof c->ctx, "key %llu '%s'", (unsigned long long)i,
             show(shown, sizeof shown, kv->key.str, kv->key.len));
    uint32_t type;
    if ((s = rd_u32(c, "type", &type))) return s;
    if (type >= HN_GGUF_TYPE_COUNT)
        return bad(c, HN_ERR_FORMAT, "type: expected a value type 0..12, got %u", type);
    kv->type = (hn_gguf_type)type;
    if (type != HN_GGUF_ARRAY) {
        kv->val = c->p + c->pos;
        return skip_value(c, type, "value");
    }
    uint32_t elem;
    uint64_t n;
    if ((s = rd_u32(c, "array element type", &elem))) return s;
    if (elem == HN_GGUF_ARRAY) return bad(c, HN_ERR_UNSUPPORTED, "array element type: nested arrays are not supported");
    if (elem >= HN_GGUF_TYPE_COUNT)
        return bad(c, HN_ERR_FORMAT, "array element type: expected a value type 0..12, got %u", elem);
    if ((s = rd_u64(c, "array length", &n))) return s;
    kv->arr_type = (hn_gguf_type)elem;
    kv->arr_n = n;
    kv->val = c->p + c->pos;
    if (elem != HN_GGUF_STRING) {
        size_t bytes;
        if (n > SIZE_MAX / 8 || !hn_mul_ok((size_t)n, type_size[elem], &bytes) || bytes > c->size - c->pos)
            return bad(c, HN_ERR_FORMAT, "array: expected at most %zu bytes (the rest of the file), got %llu x %zu bytes",
                       c->size - c->pos, (unsigned long long)n, type_size[elem]);
        if (elem == HN_GGUF_BOOL)
            for (size_t j = 0; j < bytes; j++)
                if (c->p[c->pos + j] > 1)
                    return bad(c, HN_ERR_FORMAT, "element %zu: expected a bool (0 or 1), got %u", j, c->p[c->pos + j]);
        c->pos += bytes;
        return HN_OK;
    }
    // Each string takes at least its 8-byte length, which bounds n before we allocate the element index.
    if (n > (c->size - c->pos) / 8)
        return bad(c, HN_ERR_FORMAT, "array length: expected at most %zu strings (the rest of the file), got %llu",
                   (c->size - c->pos) / 8, (unsigned long long)n);
    kv->arr_str = hn_calloc(n ? (size_t)n : 1, sizeof *kv->arr_str, "GGUF string array index");
    if (!kv->arr_str) return HN_ERR_NOMEM;
    for (uint64_t j = 0; j < n; j++) {
        kv->arr_str[j] = c->p + c->pos;
        hn_gguf_str tmp;
        char what[48];
        snprintf(what, sizeof what, "element %llu", (unsigned long long)j);
        if ((s = rd_str(c, what, &tmp))) return s;
    }
    return HN_OK;
}

// Reads one tensor info; the data's place in the file is checked later, once the data section is known.
static hn_status read_tensor_info(cursor *c, hn_tensor *t, uint64_t *offset, uint64_t i) {
    snprintf(c->ctx, sizeof c->ctx, "tensor %llu", (unsigned long long)i);
    hn_gguf_str name;
    hn_status s = rd_str(c, "name", &name);
    if (s) return s;
    if (name.len == 0 || name.len > MAX_NAME)
        return bad(c, HN_ERR_FORMAT, "name: expected 1 to %d bytes, got %llu", MAX_NAME, (unsigned long long)name.len);
    if (memchr(name.str, 0, name.len)) return bad(c, HN_ERR_FORMAT, "name: expected no NUL bytes, got one");
    memcpy(t->name, name.str, name.len);
    t->name[name.len] = 0;
    char shown[256];
    snprintf(c->ctx, sizeof c->ctx, "tensor %llu '%s'", (unsigned long long)i, show(shown, sizeof shown, t->name, name.len));
    uint32_t ndim;
    if ((s = rd_u32(c, "n_dims", &ndim))) return s;
    if (ndim < 1 || ndim > HN_MAX_DIMS)
        return bad(c, HN_ERR_FORMAT, "n_dims: expected 1 to %d, got %u", HN_MAX_DIMS, ndim);
    t->ndim = (int)ndim;
    int64_t count = 1;
    for (int d = 0; d < HN_MAX_DIMS; d++) t->ne[d] = 1;
    for (uint32_t d = 0; d < ndim; d++) {
        uint64_t ne;
        char what[16];
        snprintf(what, sizeof what, "ne[%u]", d);
        if ((s = rd_u64(c, what, &ne))) return s;
        if (ne == 0 || ne > INT64_MAX)
            return bad(c, HN_ERR_FORMAT, "%s: expected a dimension from 1 to 2^63-1, got %llu", what, (unsigned long long)ne);
        t->ne[d] = (int64_t)ne;
        if (__builtin_mul_overflow(count, (int64_t)ne, &count))
            return bad(c, HN_ERR_FORMAT, "shape: expected an element count below 2^63, got a product that overflows at %s = %llu",
                       what, (unsigned long long)ne);
    }
    uint32_t type;
    if ((s = rd_u32(c, "type", &type))) return s;
    const hn_type_traits *tt = type < HN_TYPE_FILE_END ? hn_type_traits_of((hn_dtype)type) : NULL;
    if (!tt) {
        const char *known = hn_gguf_ggml_type_name(type);
        if (known)
            return bad(c, HN_ERR_UNSUPPORTED, "type: expected one hone supports (f32 f16 bf16 q8_0 q4_0 q4_1 i32), got %u (%s)",
                       type, known);
        return bad(c, HN_ERR_FORMAT, "type: expected a ggml type number, got %u (unknown dtype)", type);
    }
    t->type = (hn_dtype)type;
    size_t row;
    if (!hn_row_bytes(t->type, t->ne[0], &row))
        return bad(c, HN_ERR_FORMAT, "ne[0]: expected a multiple of %d (the %s block size), got %lld", tt->block, tt->name,
                   (long long)t->ne[0]);
    int64_t rows = t->ne[1] * t->ne[2] * t->ne[3]; // cannot overflow: a divisor of count
    if ((uint64_t)rows > SIZE_MAX || !hn_mul_ok(row, (size_t)rows, &t->nbytes))
        return bad(c, HN_ERR_FORMAT, "shape: expected a byte size below 2^64, got %lld rows of %zu bytes", (long long)rows, row);
    return rd_u64(c, "offset", offset);
}

static int by_offset_cmp(const void *a, const void *b, void *arg) {
    const uint64_t *off = arg;
    uint64_t x = off[*(const uint64_t *)a], y = off[*(const uint64_t *)b];
    return x < y ? -1 : x > y;
}

// Each tensor's data must be aligned, inside the file, and not overlap another's.
static hn_status check_data(cursor *c, hn_gguf *g) {
    c->ctx[0] = 0;
    uint64_t n = g->n_tensors;
    for (uint64_t i = 0; i < n; i++) {
        hn_tensor *t = &g->tensors[i];
        uint64_t off = g->tensor_offset[i];
        size_t start, end;
        snprintf(c->ctx, sizeof c->ctx, "tensor %llu '%s'", (unsigned long long)i, t->name);
        if (off % g->alignment)
            return bad(c, HN_ERR_FORMAT, "offset: expected a multiple of the alignment %llu, got %llu (misaligned)",
                       (unsigned long long)g->alignment, (unsigned long long)off);
        if (off > SIZE_MAX || !hn_add_ok((size_t)g->data_offset, (size_t)off, &start) ||
            !hn_add_ok(start, t->nbytes, &end) || end > c->size)
            return bad(c, HN_ERR_FORMAT,
                       "data: expected %zu bytes at data offset %llu + %llu to end within the file (%zu bytes), got past the end",
                       t->nbytes, (unsigned long long)g->data_offset, (unsigned long long)off, c->size);
        t->data = (void *)(c->p + start);
        t->owned = false;
    }
    c->ctx[0] = 0;
    if (n < 2) return HN_OK;
    uint64_t *order = hn_calloc((size_t)n, sizeof *order, "GGUF tensor order");
    if (!order) return HN_ERR_NOMEM;
    for (uint64_t i = 0; i < n; i++) order[i] = i;
    qsort_r(order, (size_t)n, sizeof *order, by_offset_cmp, g->tensor_offset);
    hn_status s = HN_OK;
    for (uint64_t k = 0; k + 1 < n && !s; k++) {
        uint64_t a = order[k], b = order[k + 1];
        if (g->tensor_offset[a] + g->tensors[a].nbytes > g->tensor_offset[b])
            s = bad(c, HN_ERR_FORMAT, "tensor '%s' (offset %llu, %zu bytes) overlaps tensor '%s' (offset %llu): expected disjoint data",
                    g->tensors[a].name, (unsigned long long)g->tensor_offset[a], g->tensors[a].nbytes, g->tensors[b].name,
                    (unsigned long long)g->tensor_offset[b]);
    }
    free(order);
    return s;
}

static hn_status build_index(cursor *c, hn_gguf *g) {
    struct hn_gguf_index *ix = hn_calloc(1, sizeof *ix, "GGUF index");
    if (!ix) return HN_ERR_NOMEM;
    g->index = ix;
    uint64_t kc = table_cap(g->n_kv), tc = table_cap(g->n_tensors);
    ix->kv = hn_calloc((size_t)kc, sizeof *ix->kv, "GGUF key table");
    ix->tensor = hn_calloc((size_t)tc, sizeof *ix->tensor, "GGUF tensor table");
    if (!ix->kv || !ix->tensor) return HN_ERR_NOMEM;
    ix->kv_mask = kc - 1;
    ix->tensor_mask = tc - 1;
    c->ctx[0] = 0;
    char shown[256];
    for (uint64_t i = 0; i < g->n_kv; i++) {
        bool found;
        hn_gguf_str k = g->kv[i].key;
        uint64_t *sl = slot(g, ix->kv, ix->kv_mask, kv_key, k.str, (size_t)k.len, &found);
        if (found)
            return bad(c, HN_ERR_FORMAT, "key %llu '%s': expected unique keys, got a duplicate of key %llu",
                       (unsigned long long)i, show(shown, sizeof shown, k.str, k.len), (unsigned long long)(*sl - 1));
        *sl = i + 1;
    }
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        bool found;
        const char *name = g->tensors[i].name;
        uint64_t *sl = slot(g, ix->tensor, ix->tensor_mask, tensor_name, name, strlen(name), &found);
        if (found)
            return bad(c, HN_ERR_FORMAT, "tensor %llu '%s': expected unique tensor names, got a duplicate of tensor %llu",
                       (unsigned long long)i, name, (unsigned long long)(*sl - 1));
        *sl = i + 1;
    }
    return HN_OK;
}

static hn_status read_alignment(cursor *c, hn_gguf *g) {
    g->alignment = 32;
    const hn_gguf_kv *kv = hn_gguf_find(g, "general.alignment");
    if (!kv) return HN_OK;
    c->ctx[0] = 0;
    if (kv->type != HN_GGUF_U32)
        return bad(c, HN_ERR_FORMAT, "general.alignment: expected type u32, got %s", hn_gguf_type_name(kv->type));
    uint32_t a;
    memcpy(&a, kv->val, 4);
    if (a == 0 || (a & (a - 1)))
        return bad(c, HN_ERR_FORMAT, "general.alignment: expected a power of two, got %u", a);
    g->alignment = a;
    return HN_OK;
}

static hn_status read_header(cursor *c, hn_gguf *g) {
    if (c->size == 0) return bad(c, HN_ERR_FORMAT, "expected a GGUF file, got an empty file");
    hn_status s = need(c, 4, "magic");
    if (s) return s;
    if (memcmp(c->p, "GGUF", 4)) {
        char shown[64];
        return bad(c, HN_ERR_FORMAT, "magic: expected 'GGUF', got '%s' (not a GGUF file)",
                   show(shown, sizeof shown, (const char *)c->p, 4));
    }
    c->pos = 4;
    if ((s = rd_u32(c, "version", &g->version))) return s;
    if (g->version == 1)
        return bad(c, HN_ERR_UNSUPPORTED, "version: expected 2 or 3, got 1 (GGUF v1 is no longer supported)");
    if (g->version != 2 && g->version != 3) {
        if (g->version && (g->version & 0xffff) == 0)
            return bad(c, HN_ERR_UNSUPPORTED, "version: expected 2 or 3, got 0x%08x (a big-endian file?)", g->version);
        return bad(c, g->version > 3 ? HN_ERR_UNSUPPORTED : HN_ERR_FORMAT, "version: expected 2 or 3, got %u", g->version);
    }
    if ((s = rd_u64(c, "n_tensors", &g->n_tensors)) || (s = rd_u64(c, "n_kv", &g->n_kv))) return s;
    size_t rest = c->size - c->pos;
    if (g->n_kv > rest / MIN_KV_BYTES)
        return bad(c, HN_ERR_FORMAT, "n_kv: expected at most %zu for the %zu bytes after the header, got %llu (truncated or corrupt)", rest / MIN_KV_BYTES,
                   rest, (unsigned long long)g->n_kv);
    if (g->n_tensors > rest / MIN_TENSOR_BYTES)
        return bad(c, HN_ERR_FORMAT, "n_tensors: expected at most %zu for the %zu bytes after the header, got %llu (truncated or corrupt)",
                   rest / MIN_TENSOR_BYTES, rest, (unsigned long long)g->n_tensors);
    return HN_OK;
}

static hn_status parse(cursor *c, hn_gguf *g) {
    hn_status s = read_header(c, g);
    if (s) return s;
    g->kv = hn_calloc(g->n_kv ? (size_t)g->n_kv : 1, sizeof *g->kv, "GGUF metadata");
    if (!g->kv) return HN_ERR_NOMEM;
    for (uint64_t i = 0; i < g->n_kv; i++)
        if ((s = read_kv(c, &g->kv[i], i))) return s;
    c->ctx[0] = 0;
    size_t rest = c->size - c->pos;
    if (g->n_tensors > rest / MIN_TENSOR_BYTES)
        return bad(c, HN_ERR_FORMAT, "n_tensors: expected at most %zu for the %zu bytes after the metadata, got %llu (truncated or corrupt)",
                   rest / MIN_TENSOR_BYTES, rest, (unsigned long long)g->n_tensors);
    size_t nt = g->n_tensors ? (size_t)g->n_tensors : 1;
    g->tensors = hn_calloc(nt, sizeof *g->tensors, "GGUF tensors");
    g->tensor_offset = hn_calloc(nt, sizeof *g->tensor_offset, "GGUF tensor offsets");
    if (!g->tensors || !g->tensor_offset) return HN_ERR_NOMEM;
    for (uint64_t i = 0; i < g->n_tensors; i++)
        if ((s = read_tensor_info(c, &g->tensors[i], &g->tensor_offset[i], i))) return s;
    if ((s = build_index(c, g)) || (s = read_alignment(c, g))) return s;
    size_t pad = (size_t)((g->alignment - c->pos % g->alignment) % g->alignment), start;
    if (!hn_add_ok(c->pos, pad, &start)) return bad(c, HN_ERR_FORMAT, "data section: offset overflows");
    g->data_offset = start;
    return check_data(c, g);
}

hn_status hn_gguf_open(hn_gguf *g, const char *path) {
    memset(g, 0, sizeof *g);
    g->path = strdup(path);
    if (!g->path) return hn_fail(HN_ERR_NOMEM, "%s: out of memory", path);
    hn_status s = hn_map_open(&g->map, path);
    if (s) {
        hn_gguf_close(g);
        return s;
    }
    cursor c = {.p = g->map.data, .size = g->map.size, .path = path};
    s = parse(&c, g);
    if (s) hn_gguf_close(g);
    return s;
}

hn_status hn_gguf_view_init(hn_gguf *g) {
    cursor c = {.path = g->path ? g->path : "(view)"};
    hn_status s = build_index(&c, g);
    if (s) hn_gguf_close(g);
    return s;
}

void hn_gguf_close(hn_gguf *g) {
    if (g->release) g->release(g->owner);
    if (g->kv)
        for (uint64_t i = 0; i < g->n_kv; i++) free(g->kv[i].arr_str);
    free(g->kv);
    free(g->tensors);
    free(g->tensor_offset);
    if (g->index) {
        free(g->index->kv);
        free(g->index->tensor);
        free(g->index);
    }
    hn_map_close(&g->map);
    free(g->path);
    memset(g, 0, sizeof *g);
}

const hn_gguf_kv *hn_gguf_find(const hn_gguf *g, const char *key) {
    if (!g->index || !g->index->kv) return NULL;
    bool found;
    uint64_t *sl = slot(g, g->index->kv, g->index->kv_mask, kv_key, key, strlen(key), &found);
    return found ? &g->kv[*sl - 1] : NULL;
}

const hn_tensor *hn_gguf_tensor(const hn_gguf *g, const char *name) {
    if (!g->index || !g->index->tensor) return NULL;
    bool found;
    uint64_t *sl = slot(g, g->index->tensor, g->index->tensor_mask, tensor_name, name, strlen(name), &found);
    return found ? &g->tensors[*sl - 1] : NULL;
}

// A numeric value of type t at p (unaligned), as a double; integers also exactly as int64/uint64 for range checks.
static double num_at(hn_gguf_type t, const uint8_t *p, int64_t *si, uint64_t *ui, bool *is_signed) {
    union { uint8_t u8; int8_t i8; uint16_t u16; int16_t i16; uint32_t u32; int32_t i32; float f32; uint64_t u64;
            int64_t i64; double f64; } v;
    memcpy(&v, p, type_size[t]);
    int64_t s = 0;
    uint64_t u = 0;
    bool sg = false;
    double d = 0;
    switch (t) {
    case HN_GGUF_U8: case HN_GGUF_BOOL: u = v.u8; d = u; break;
    case HN_GGUF_I8: s = v.i8; sg = true; d = s; break;
    case HN_GGUF_U16: u = v.u16; d = u; break;
    case HN_GGUF_I16: s = v.i16; sg = true; d = s; break;
    case HN_GGUF_U32: u = v.u32; d = u; break;
    case HN_GGUF_I32: s = v.i32; sg = true; d = s; break;
    case HN_GGUF_U64: u = v.u64; d = (double)u; break;
    case HN_GGUF_I64: s = v.i64; sg = true; d = (double)s; break;
    case HN_GGUF_F32: d = v.f32; break;
    case HN_GGUF_F64: d = v.f64; break;
    default: break;
    }
    if (si) *si = s;
    if (ui) *ui = u;
    if (is_signed) *is_signed = sg;
    return d;
}

static bool numeric(hn_gguf_type t) { return (unsigned)t < HN_GGUF_TYPE_COUNT && t != HN_GGUF_STRING && t != HN_GGUF_ARRAY; }
static bool integer(hn_gguf_type t) { return numeric(t) && t != HN_GGUF_F32 && t != HN_GGUF_F64 && t != HN_GGUF_BOOL; }

bool hn_gguf_num(const hn_gguf_kv *kv, double *out) {
    if (!numeric(kv->type)) return false;
    *out = num_at(kv->type, kv->val, NULL, NULL, NULL);
    return true;
}

double hn_gguf_arr_num(const hn_gguf_kv *kv, uint64_t i) {
    if (kv->type != HN_GGUF_ARRAY || !numeric(kv->arr_type) || i >= kv->arr_n) return 0;
    return num_at(kv->arr_type, kv->val + i * type_size[kv->arr_type], NULL, NULL, NULL);
}

hn_gguf_str hn_gguf_arr_str(const hn_gguf_kv *kv, uint64_t i) {
    hn_gguf_str s = {"", 0};
    if (kv->type != HN_GGUF_ARRAY || kv->arr_type != HN_GGUF_STRING || i >= kv->arr_n || !kv->arr_str) return s;
    memcpy(&s.len, kv->arr_str[i], 8);
    s.str = (const char *)kv->arr_str[i] + 8;
    return s;
}

static const hn_gguf_kv *get(const hn_gguf *g, const char *key, hn_status *s) {
    const hn_gguf_kv *kv = hn_gguf_find(g, key);
    *s = kv ? HN_OK : hn_fail(HN_ERR_NOTFOUND, "%s: key '%s': not found", g->path, key);
    return kv;
}

static hn_status wrong_type(const hn_gguf *g, const char *key, const char *want, const hn_gguf_kv *kv) {
    return hn_fail(HN_ERR_FORMAT, "%s: key '%s': expected %s, got %s", g->path, key, want, hn_gguf_type_name(kv->type));
}

hn_status hn_gguf_get_u32(const hn_gguf *g, const char *key, uint32_t *out) {
    hn_status s;
    const hn_gguf_kv *kv = get(g, key, &s);
    if (!kv) return s;
    if (!integer(kv->type)) return wrong_type(g, key, "an integer", kv);
    int64_t si;
    uint64_t ui;
    bool sg;
    num_at(kv->type, kv->val, &si, &ui, &sg);
    if (sg && (si < 0 || si > UINT32_MAX))
        return hn_fail(HN_ERR_FORMAT, "%s: key '%s': expected a value from 0 to %u, got %lld", g->path, key, UINT32_MAX,
                       (long long)si);
    if (!sg && ui > UINT32_MAX)
        return hn_fail(HN_ERR_FORMAT, "%s: key '%s': expected a value from 0 to %u, got %llu", g->path, key, UINT32_MAX,
                       (unsigned long long)ui);
    *out = sg ? (uint32_t)si : (uint32_t)ui;
    return HN_OK;
}

hn_status hn_gguf_get_f32(const hn_gguf *g, const char *key, float *out) {
    hn_status s;
    const hn_gguf_kv *kv = get(g, key, &s);
    if (!kv) return s;
    if (kv->type != HN_GGUF_F32 && kv->type != HN_GGUF_F64) return wrong_type(g, key, "f32 or f64", kv);
    *out = (float)num_at(kv->type, kv->val, NULL, NULL, NULL);
    return HN_OK;
}

hn_status hn_gguf_get_bool(const hn_gguf *g, const char *key, bool *out) {
    hn_status s;
    const hn_gguf_kv *kv = get(g, key, &s);
    if (!kv) return s;
    if (kv->type != HN_GGUF_BOOL) return wrong_type(g, key, "bool", kv);
    *out = kv->val[0] != 0;
    return HN_OK;
}

hn_status hn_gguf_get_str(const hn_gguf *g, const char *key, hn_gguf_str *out) {
    hn_status s;
    const hn_gguf_kv *kv = get(g, key, &s);
    if (!kv) return s;
    if (kv->type != HN_GGUF_STRING) return wrong_type(g, key, "string", kv);
    memcpy(&out->len, kv->val, 8);
    out->str = (const char *)kv->val + 8;
    return HN_OK;
}
