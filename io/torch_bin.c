// io/torch_bin.c — torch.save archives (see io/torch_bin.h): the zip directory, a pickle machine that only
// rebuilds tensors, and the storages those tensors view.
//
// The pickle is never trusted: every length is checked against the bytes left, the stack and the mark stack are
// checked before each pop, memo indices must have been stored, and a storage's zip entry must hold exactly the
// elements its persistent id announces. Only the globals a state dict needs are known; anything else stops the
// load at the opcode that asks for it.
#define _GNU_SOURCE
#include "io/torch_bin.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

// ---- zip (FORMATS.md 7.2: stored entries, ZIP64 when large) ----

typedef struct {
    const char *name; // not NUL-terminated
    size_t name_len;
    const uint8_t *data;
    uint64_t size;
    uint16_t method; // 0 = stored
} zentry;

typedef struct {
    zentry *e;
    size_t n;
} zip;

static uint16_t rd16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static uint32_t rd32(const uint8_t *p) { return (uint32_t)rd16(p) | (uint32_t)rd16(p + 2) << 16; }
static uint64_t rd64(const uint8_t *p) { return (uint64_t)rd32(p) | (uint64_t)rd32(p + 4) << 32; }

enum { EOCD_SIG = 0x06054b50, Z64_LOC_SIG = 0x07064b50, Z64_EOCD_SIG = 0x06064b50, CDIR_SIG = 0x02014b50,
       LOCAL_SIG = 0x04034b50 };

// The end-of-central-directory record: the last 22 bytes, unless a comment (up to 64 KiB) follows it.
static hn_status zip_find_dir(const char *path, const uint8_t *b, size_t size, uint64_t *n, uint64_t *off,
                              uint64_t *len) {
    if (size >= 2 && b[0] == 0x80)
        return hn_fail(HN_ERR_UNSUPPORTED, "%s: a bare pickle, the legacy torch.save format (before PyTorch 1.6); "
                       "load and save it again with a recent PyTorch, or use safetensors", path);
    size_t at = SIZE_MAX, lo = size > 22 + 65535 ? size - 22 - 65535 : 0;
    for (size_t p = size >= 22 ? size - 22 + 1 : 0; p-- > lo;)
        if (rd32(b + p) == EOCD_SIG) {
            at = p;
            break;
        }
    if (at == SIZE_MAX)
        return hn_fail(HN_ERR_FORMAT, "%s: not a zip archive: no end-of-central-directory record (truncated?)", path);
    *n = rd16(b + at + 10), *len = rd32(b + at + 12), *off = rd32(b + at + 16);
    if (*n == 0xFFFF || *len == 0xFFFFFFFF || *off == 0xFFFFFFFF) { // ZIP64: the real values are further back
        if (at < 20 || rd32(b + at - 20) != Z64_LOC_SIG)
            return hn_fail(HN_ERR_FORMAT, "%s: zip: the ZIP64 locator before the end record is missing", path);
        uint64_t z = rd64(b + at - 20 + 8);
        if (z > size || size - z < 56 || rd32(b + z) != Z64_EOCD_SIG)
            return hn_fail(HN_ERR_FORMAT, "%s: zip: no ZIP64 end record at offset %llu", path, (unsigned long long)z);
        *n = rd64(b + z + 32), *len = rd64(b + z + 40), *off = rd64(b + z + 48);
    }
    if (*off > size || *len > size - *off)
        return hn_fail(HN_ERR_FORMAT, "%s: zip: the central directory (%llu bytes at offset %llu) passes the end of "
                       "the file (%zu bytes; truncated?)", path, (unsigned long long)*len, (unsigned long long)*off,
                       size);
    if (*n > *len / 46)
        return hn_fail(HN_ERR_FORMAT, "%s: zip: %llu entries cannot fit in a central directory of %llu bytes", path,
                       (unsigned long long)*n, (unsigned long long)*len);
    return HN_OK;
}

static hn_status zip_open(zip *z, const char *path, const uint8_t *b, size_t size) {
    uint64_t n = 0, off = 0, len = 0;
    hn_status s = zip_find_dir(path, b, size, &n, &off, &len);
    if (s) return s;
    if (!(z->e = hn_calloc(n ? n : 1, sizeof *z->e, "zip entries"))) return HN_ERR_NOMEM;
    const uint8_t *p = b + off, *end = p + len;
    for (uint64_t i = 0; i < n; i++) {
        if (end - p < 46 || rd32(p) != CDIR_SIG)
            return hn_fail(HN_ERR_FORMAT, "%s: zip: central directory entry %llu is truncated or has a bad signature",
                           path, (unsigned long long)i);
        uint16_t method = rd16(p + 10), nlen = rd16(p + 28), elen = rd16(p + 30), clen = rd16(p + 32);
        uint64_t csize = rd32(p + 20), usize = rd32(p + 24), loc = rd32(p + 42);
        if (end - p < 46 + (ptrdiff_t)nlen + elen + clen)
            return hn_fail(HN_ERR_FORMAT, "%s: zip: central directory entry %llu is truncated", path,
                           (unsigned long long)i);
        const char *name = (const char *)p + 46;
        // ZIP64 extra field (id 1): 64-bit values for those of usize, csize, offset that read 0xFFFFFFFF, in order.
        for (const uint8_t *x = p + 46 + nlen, *xe = x + elen; xe - x >= 4; x += 4 + rd16(x + 2)) {
            uint16_t id = rd16(x), xl = rd16(x + 2);
            if (xe - x - 4 < xl) break;
            const uint8_t *q = x + 4, *qe = q + xl;
            if (id != 1) continue;
            if (usize == 0xFFFFFFFF && qe - q >= 8) usize = rd64(q), q += 8;
            if (csize == 0xFFFFFFFF && qe - q >= 8) csize = rd64(q), q += 8;
            if (loc == 0xFFFFFFFF && qe - q >= 8) loc = rd64(q);
        }
        if (loc > size || size - loc < 30 || rd32(b + loc) != LOCAL_SIG)
            return hn_fail(HN_ERR_FORMAT, "%s: zip entry '%.*s': no local header at offset %llu", path, (int)nlen,
                           name, (unsigned long long)loc);
        uint64_t data = loc + 30 + rd16(b + loc + 26) + rd16(b + loc + 28);
        if (data > size || csize > size - data)
            return hn_fail(HN_ERR_FORMAT, "%s: zip entry '%.*s': its %llu bytes at offset %llu pass the end of the "
                           "file (%zu bytes; truncated?)", path, (int)nlen, name, (unsigned long long)csize,
                           (unsigned long long)data, size);
        if (method == 0 && csize != usize)
            return hn_fail(HN_ERR_FORMAT, "%s: zip entry '%.*s': stored with %llu bytes but %llu uncompressed", path,
                           (int)nlen, name, (unsigned long long)csize, (unsigned long long)usize);
        z->e[z->n++] = (zentry){name, nlen, b + data, csize, method};
        p += 46 + nlen + elen + clen;
    }
    return HN_OK;
}

// The entry named PREFIX/rest, or NULL.
static const zentry *zip_get(const zip *z, const char *prefix, size_t plen, const char *rest, size_t rlen) {
    for (size_t i = 0; i < z->n; i++) {
        const zentry *e = &z->e[i];
        if (e->name_len == plen + 1 + rlen && !memcmp(e->name, prefix, plen) && e->name[plen] == '/' &&
            !memcmp(e->name + plen + 1, rest, rlen))
            return e;
    }
    return NULL;
}

// ---- the pickle machine (opcodes: FORMATS.md 7.2, from CPython's Lib/pickle.py) ----

// torch.<Name>Storage classes: every one PyTorch writes is known (so integer buffers do not stop a load), but only
// the float ones become tensors.
static const struct {
    const char *name;
    hn_dtype type;
    size_t size;
    bool exposed;
} storages[] = {
    {"FloatStorage", HN_F32, 4, true}, {"HalfStorage", HN_F16, 2, true}, {"BFloat16Storage", HN_BF16, 2, true},
    {"DoubleStorage", HN_F32, 8, false}, {"LongStorage", HN_F32, 8, false}, {"IntStorage", HN_F32, 4, false},
    {"ShortStorage", HN_F32, 2, false},  {"CharStorage", HN_F32, 1, false}, {"ByteStorage", HN_F32, 1, false},
    {"BoolStorage", HN_F32, 1, false},
};

typedef enum { V_NONE, V_BOOL, V_INT, V_FLOAT, V_STR, V_TUPLE, V_LIST, V_DICT, V_GLOBAL, V_STORAGE, V_TENSOR } vkind;
static const char *const vkind_names[] = {"None", "bool", "int", "float", "str", "tuple", "list", "dict",
                                          "global", "storage", "tensor"};
typedef enum { G_ORDERED_DICT, G_REBUILD_TENSOR, G_REBUILD_PARAMETER, G_STORAGE } gkind;

typedef struct val val;
struct val {
    vkind kind;
    int64_t i;      // BOOL, INT; GLOBAL: its gkind; STORAGE: element count; TENSOR: index into pm.tens
    int storage;    // GLOBAL G_STORAGE and STORAGE: index into storages[]
    const char *s;  // STR (into the pickle, not NUL-terminated); STORAGE: its key
    uint32_t len;
    val **items;    // TUPLE, LIST; DICT: keys and values interleaved
    size_t n, cap;
};

typedef struct {
    const val *storage;
    int64_t offset, size[HN_MAX_DIMS], stride[HN_MAX_DIMS]; // in elements
    int ndim;
} trec;

typedef struct {
    const char *path;
    val **all; // every value made, freed at the end
    size_t n_all, cap_all;
    val **stack;
    size_t sp, cap_stack;
    size_t *marks;
    size_t n_marks, cap_marks;
    val **memo;
    size_t n_memo;
    trec *tens;
    size_t n_tens, cap_tens;
} pm;

// Grows *p (elements of `elem` bytes, capacity *cap) to hold at least `need`.
static bool grow(void *pp, size_t *cap, size_t need, size_t elem) {
    void **p = pp;
    if (need <= *cap) return true;
    size_t c = *cap ? *cap * 2 : 16;
    while (c < need) c *= 2;
    void *n = realloc(*p, c * elem);
    if (!n) return false;
    *p = n, *cap = c;
    return true;
}

static hn_status nomem(const pm *m) { return hn_fail(HN_ERR_NOMEM, "%s: out of memory reading the pickle", m->path); }

static val *mk(pm *m, vkind k) {
    val *v = calloc(1, sizeof *v);
    if (!v || !grow(&m->all, &m->cap_all, m->n_all + 1, sizeof *m->all)) {
        free(v);
        return NULL;
    }
    v->kind = k;
    m->all[m->n_all++] = v;
    return v;
}

static bool add_item(val *c, val *x) {
    if (!grow(&c->items, &c->cap, c->n + 1, sizeof *c->items)) return false;
    c->items[c->n++] = x;
    return true;
}

static hn_status push(pm *m, val *v) {
    if (!v || !grow(&m->stack, &m->cap_stack, m->sp + 1, sizeof *m->stack)) return nomem(m);
    m->stack[m->sp++] = v;
    return HN_OK;
}

// The stack above the last mark is what may be popped.
static size_t floor_of(const pm *m) { return m->n_marks ? m->marks[m->n_marks - 1] : 0; }

static hn_status pop(pm *m, size_t at, val **out) {
    if (m->sp <= floor_of(m))
        return hn_fail(HN_ERR_FORMAT, "%s: pickle byte %zu: the stack is empty (corrupt data.pkl)", m->path, at);
    *out = m->stack[--m->sp];
    return HN_OK;
}

// Pops everything above the last mark into a new container of kind k.
static hn_status pop_mark(pm *m, size_t at, vkind k, val **out) {
    if (!m->n_marks)
        return hn_fail(HN_ERR_FORMAT, "%s: pickle byte %zu: no mark to pop to (corrupt data.pkl)", m->path, at);
    size_t from = m->marks[--m->n_marks];
    val *c = mk(m, k);
    if (!c) return nomem(m);
    for (size_t i = from; i < m->sp; i++)
        if (!add_item(c, m->stack[i])) return nomem(m);
    m->sp = from;
    *out = c;
    return HN_OK;
}

static hn_status expect(const pm *m, size_t at, const val *v, vkind k, const char *what) {
    if (v->kind == k) return HN_OK;
    return hn_fail(HN_ERR_FORMAT, "%s: pickle byte %zu: %s: expected a %s, got a %s", m->path, at, what,
                   vkind_names[k], vkind_names[v->kind]);
}

// GLOBAL module.name: only what rebuilding a state dict needs.
static hn_status global(pm *m, size_t at, const char *mod, size_t ml, const char *name, size_t nl, val **out) {
    static const struct {
        const char *mod, *name;
        gkind g;
    } known[] = {{"collections", "OrderedDict", G_ORDERED_DICT},
                 {"torch._utils", "_rebuild_tensor_v2", G_REBUILD_TENSOR},
                 {"torch._utils", "_rebuild_parameter", G_REBUILD_PARAMETER}};
    val *v = mk(m, V_GLOBAL);
    if (!v) return nomem(m);
    *out = v;
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
        if (strlen(known[i].mod) == ml && !memcmp(known[i].mod, mod, ml) && strlen(known[i].name) == nl &&
            !memcmp(known[i].name, name, nl)) {
            v->i = known[i].g;
            return HN_OK;
        }
    if (ml == 5 && !memcmp(mod, "torch", 5))
        for (size_t i = 0; i < sizeof storages / sizeof storages[0]; i++)
            if (strlen(storages[i].name) == nl && !memcmp(storages[i].name, name, nl)) {
                v->i = G_STORAGE, v->storage = (int)i;
                return HN_OK;
            }
    return hn_fail(HN_ERR_UNSUPPORTED, "%s: pickle byte %zu: global '%.*s.%.*s' is refused (only tensor rebuilding "
                   "is allowed: collections.OrderedDict, torch._utils._rebuild_tensor_v2, torch.*Storage)", m->path,
                   at, (int)(ml > 80 ? 80 : ml), mod, (int)(nl > 80 ? 80 : nl), name);
}

// BINPERSID: ('storage', torch.<T>Storage, key, location, numel) names a storage of the archive.
static hn_status persistent(pm *m, size_t at, val *pid, val **out) {
    hn_status s = expect(m, at, pid, V_TUPLE, "persistent id");
    if (s) return s;
    val **it = pid->items;
    if (pid->n != 5 || it[0]->kind != V_STR || it[0]->len != 7 || memcmp(it[0]->s, "storage", 7) ||
        it[1]->kind != V_GLOBAL || it[1]->i != G_STORAGE || it[2]->kind != V_STR || it[4]->kind != V_INT ||
        it[4]->i < 0)
        return hn_fail(HN_ERR_FORMAT, "%s: pickle byte %zu: persistent id: expected ('storage', torch.<T>Storage, "
                       "key, location, numel)", m->path, at);
    val *st = mk(m, V_STORAGE);
    if (!st) return nomem(m);
    st->storage = it[1]->storage, st->s = it[2]->s, st->len = it[2]->len, st->i = it[4]->i;
    *out = st;
    return HN_OK;
}

// A tuple of up to HN_MAX_DIMS non-negative ints below 2^40 (sizes, strides).
static hn_status dims(const pm *m, size_t at, const val *t, const char *what, int64_t *out, int *n) {
    hn_status s = expect(m, at, t, V_TUPLE, what);
    if (s) return s;
    if (t->n > HN_MAX_DIMS)
        return hn_fail(HN_ERR_UNSUPPORTED, "%s: pickle byte %zu: a tensor with %zu dimensions (hone handles %d)",
                       m->path, at, t->n, HN_MAX_DIMS);
    for (size_t i = 0; i < t->n; i++) {
        if (t->items[i]->kind != V_INT || t->items[i]->i < 0 || t->items[i]->i >= (int64_t)1 << 40)
            return hn_fail(HN_ERR_FORMAT, "%s: pickle byte %zu: tensor %s[%zu]: expected a non-negative int", m->path,
                           at, what, i);
        out[i] = t->items[i]->i;
    }
    *n = (int)t->n;
    return HN_OK;
}

// REDUCE: calls one of the known globals.
static hn_status reduce(pm *m, size_t at, val *fn, val *args, val **out) {
    hn_status s;
    if ((s = expect(m, at, fn, V_GLOBAL, "REDUCE's callable")) || (s = expect(m, at, args, V_TUPLE, "REDUCE's args")))
        return s;
    if (fn->i == G_ORDERED_DICT) {
        if (args->n)
            return hn_fail(HN_ERR_UNSUPPORTED, "%s: pickle byte %zu: OrderedDict with arguments", m->path, at);
        return (*out = mk(m, V_DICT)) ? HN_OK : nomem(m);
    }
    if (fn->i == G_REBUILD_PARAMETER) { // (tensor, requires_grad, backward_hooks)
        if (args->n < 1 || args->items[0]->kind != V_TENSOR)
            return hn_fail(HN_ERR_FORMAT, "%s: pickle byte %zu: _rebuild_parameter: expected a tensor", m->path, at);
        *out = args->items[0];
        return HN_OK;
    }
    if (fn->i != G_REBUILD_TENSOR)
        return hn_fail(HN_ERR_UNSUPPORTED, "%s: pickle byte %zu: a storage class is called directly", m->path, at);
    // (storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata])
    if (args->n < 4 || args->n > 7)
        return hn_fail(HN_ERR_FORMAT, "%s: pickle byte %zu: _rebuild_tensor_v2 with %zu arguments, expected 6 or 7",
                       m->path, at, args->n);
    trec t = {.storage = args->items[0]};
    int ns;
    if ((s = expect(m, at, args->items[0], V_STORAGE, "tensor storage")) ||
        (s = expect(m, at, args->items[1], V_INT, "tensor storage offset")) ||
        (s = dims(m, at, args->items[2], "size", t.size, &t.ndim)) ||
        (s = dims(m, at, args->items[3], "stride", t.stride, &ns)))
        return s;
    t.offset = args->items[1]->i;
    if (ns != t.ndim || t.offset < 0 || t.offset >= (int64_t)1 << 48)
        return hn_fail(HN_ERR_FORMAT, "%s: pickle byte %zu: tensor of %d sizes and %d strides at offset %lld",
                       m->path, at, t.ndim, ns, (long long)t.offset);
    if (!grow(&m->tens, &m->cap_tens, m->n_tens + 1, sizeof *m->tens) || !(*out = mk(m, V_TENSOR))) return nomem(m);
    (*out)->i = (int64_t)m->n_tens;
    m->tens[m->n_tens++] = t;
    return HN_OK;
}

// Names of the opcodes a state dict never needs, for the refusal message.
static const char *op_name(uint8_t op) {
    static const struct {
        uint8_t op;
        const char *name;
    } names[] = {{'i', "INST"},     {'o', "OBJ"},       {0x81, "NEWOBJ"},         {0x92, "NEWOBJ_EX"},
                 {0x82, "EXT1"},    {0x83, "EXT2"},     {0x84, "EXT4"},           {'P', "PERSID"},
                 {'I', "INT"},      {'L', "LONG"},      {'S', "STRING"},          {'V', "UNICODE"},
                 {'F', "FLOAT"},    {'T', "BINSTRING"}, {'U', "SHORT_BINSTRING"}, {'B', "BINBYTES"},
                 {'C', "SHORT_BINBYTES"}, {0x8e, "BINBYTES8"}, {0x8d, "BINUNICODE8"}, {0x96, "BYTEARRAY8"},
                 {0x97, "NEXT_BUFFER"}, {0x98, "READONLY_BUFFER"}, {0x8b, "LONG4"}, {0x90, "EMPTY_SET"},
                 {0x91, "ADDITEMS"}, {0x8f, "FROZENSET"}, {'0', "POP"}, {'1', "DUP"}, {'2', "POP_MARK"},
                 {'l', "LIST"},     {'d', "DICT"},      {'g', "GET"},             {'p', "PUT"}};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (names[i].op == op) return names[i].name;
    return "unknown";
}

static hn_status memo_put(pm *m, size_t at, uint64_t idx, size_t plen) {
    if (m->sp <= floor_of(m))
        return hn_fail(HN_ERR_FORMAT, "%s: pickle byte %zu: memo store with an empty stack", m->path, at);
    if (idx > plen) // every memoized value took at least a byte to make
        return hn_fail(HN_ERR_FORMAT, "%s: pickle byte %zu: memo index %llu is implausible", m->path, at,
                       (unsigned long long)idx);
    if (idx >= m->n_memo) {
        size_t cap = m->n_memo;
        if (!grow(&m->memo, &cap, idx + 1, sizeof *m->memo)) return nomem(m);
        memset(m->memo + m->n_memo, 0, (cap - m->n_memo) * sizeof *m->memo);
        m->n_memo = cap;
    }
    m->memo[idx] = m->stack[m->sp - 1];
    return HN_OK;
}

static hn_status run(pm *m, const uint8_t *p, size_t n, val **result) {
    size_t i = 0;
    uint64_t next_memo = 0; // MEMOIZE's index
    hn_status s = HN_OK;
#define NEED(k)                                                                                                     \
    if (n - i < (size_t)(k))                                                                                         \
        return hn_fail(HN_ERR_FORMAT, "%s: pickle byte %zu: opcode 0x%02x needs %zu more bytes (data.pkl truncated)", \
                       m->path, at, op, (size_t)(k));
    while (!s) {
        size_t at = i;
        if (i >= n) return hn_fail(HN_ERR_FORMAT, "%s: data.pkl ends without STOP (truncated)", m->path);
        uint8_t op = p[i++];
        val *a, *b, *c, *v;
        switch (op) {
        case 0x80: // PROTO
            NEED(1);
            if (p[i++] > 5) return hn_fail(HN_ERR_UNSUPPORTED, "%s: pickle protocol %d", m->path, p[i - 1]);
            break;
        case 0x95: NEED(8); i += 8; break; // FRAME: a length hint
        case '(':
            if (!grow(&m->marks, &m->cap_marks, m->n_marks + 1, sizeof *m->marks)) return nomem(m);
            m->marks[m->n_marks++] = m->sp;
            break;
        case '.':
            if ((s = pop(m, at, result))) return s;
            return HN_OK;
        case 'N': s = push(m, mk(m, V_NONE)); break;
        case 0x88: case 0x89:
            if ((v = mk(m, V_BOOL))) v->i = op == 0x88;
            s = push(m, v);
            break;
        case 'K': case 'M': case 'J': { // BININT1, BININT2, BININT (signed)
            size_t k = op == 'K' ? 1 : op == 'M' ? 2 : 4;
            NEED(k);
            if ((v = mk(m, V_INT))) v->i = k == 1 ? p[i] : k == 2 ? rd16(p + i) : (int32_t)rd32(p + i);
            i += k;
            s = push(m, v);
            break;
        }
        case 0x8a: { // LONG1: n bytes, little-endian two's complement
            NEED(1);
            size_t k = p[i++];
            NEED(k);
            if (k > 8) return hn_fail(HN_ERR_UNSUPPORTED, "%s: pickle byte %zu: an integer of %zu bytes", m->path, at, k);
            uint64_t u = 0;
            for (size_t j = 0; j < k; j++) u |= (uint64_t)p[i + j] << 8 * j;
            if (k && k < 8 && p[i + k - 1] & 0x80) u |= ~(uint64_t)0 << 8 * k;
            if ((v = mk(m, V_INT))) v->i = (int64_t)u;
            i += k;
            s = push(m, v);
            break;
        }
        case 'G': NEED(8); i += 8; s = push(m, mk(m, V_FLOAT)); break; // BINFLOAT: the value is never used
        case 'X': case 0x8c: { // BINUNICODE, SHORT_BINUNICODE
            size_t k = op == 'X' ? 4 : 1;
            NEED(k);
            size_t len = k == 4 ? rd32(p + i) : p[i];
            i += k;
            NEED(len);
            if ((v = mk(m, V_STR))) v->s = (const char *)p + i, v->len = (uint32_t)len;
            i += len;
            s = push(m, v);
            break;
        }
        case ')': s = push(m, mk(m, V_TUPLE)); break;
        case '}': s = push(m, mk(m, V_DICT)); break;
        case ']': s = push(m, mk(m, V_LIST)); break;
        case 't': if (!(s = pop_mark(m, at, V_TUPLE, &v))) s = push(m, v); break;
        case 0x85: case 0x86: case 0x87: { // TUPLE1..3
            int k = op - 0x84;
            val *t[3];
            for (int j = k - 1; j >= 0 && !s; j--) s = pop(m, at, &t[j]);
            if (s) break;
            if (!(v = mk(m, V_TUPLE))) return nomem(m);
            for (int j = 0; j < k; j++)
                if (!add_item(v, t[j])) return nomem(m);
            s = push(m, v);
            break;
        }
        case 'c': { // GLOBAL "module\nname\n"
            const char *mod = (const char *)p + i, *e1 = memchr(mod, '\n', n - i);
            const char *e2 = e1 ? memchr(e1 + 1, '\n', n - i - (size_t)(e1 + 1 - mod)) : NULL;
            if (!e2) return hn_fail(HN_ERR_FORMAT, "%s: pickle byte %zu: GLOBAL without two lines", m->path, at);
            i += (size_t)(e2 + 1 - mod);
            if (!(s = global(m, at, mod, (size_t)(e1 - mod), e1 + 1, (size_t)(e2 - e1 - 1), &v))) s = push(m, v);
            break;
        }
        case 0x93: // STACK_GLOBAL: module and name are strings on the stack
            if ((s = pop(m, at, &b)) || (s = pop(m, at, &a)) || (s = expect(m, at, a, V_STR, "STACK_GLOBAL module")) ||
                (s = expect(m, at, b, V_STR, "STACK_GLOBAL name")))
                break;
            if (!(s = global(m, at, a->s, a->len, b->s, b->len, &v))) s = push(m, v);
            break;
        case 'Q': // BINPERSID
            if (!(s = pop(m, at, &a)) && !(s = persistent(m, at, a, &v))) s = push(m, v);
            break;
        case 'R':
            if (!(s = pop(m, at, &b)) && !(s = pop(m, at, &a)) && !(s = reduce(m, at, a, b, &v))) s = push(m, v);
            break;
        case 'b': // BUILD: the OrderedDict's attributes (_metadata): not needed
            if (!(s = pop(m, at, &a)) && m->sp <= floor_of(m))
                s = hn_fail(HN_ERR_FORMAT, "%s: pickle byte %zu: BUILD with nothing to build", m->path, at);
            if (!s) s = expect(m, at, m->stack[m->sp - 1], V_DICT, "BUILD's object");
            break;
        case 's': // SETITEM
            if ((s = pop(m, at, &b)) || (s = pop(m, at, &a))) break;
            if (m->sp <= floor_of(m)) return hn_fail(HN_ERR_FORMAT, "%s: pickle byte %zu: SETITEM without a dict", m->path, at);
            c = m->stack[m->sp - 1];
            if (!(s = expect(m, at, c, V_DICT, "SETITEM's target")) && (!add_item(c, a) || !add_item(c, b)))
                return nomem(m);
            break;
        case 'u': case 'e': // SETITEMS, APPENDS
            if ((s = pop_mark(m, at, V_TUPLE, &v))) break;
            if (m->sp <= floor_of(m))
                return hn_fail(HN_ERR_FORMAT, "%s: pickle byte %zu: %s without a target", m->path, at,
                               op == 'u' ? "SETITEMS" : "APPENDS");
            c = m->stack[m->sp - 1];
            if ((s = expect(m, at, c, op == 'u' ? V_DICT : V_LIST, op == 'u' ? "SETITEMS' target" : "APPENDS' target")))
                break;
            if (op == 'u' && v->n % 2)
                return hn_fail(HN_ERR_FORMAT, "%s: pickle byte %zu: SETITEMS with an odd count", m->path, at);
            for (size_t j = 0; j < v->n; j++)
                if (!add_item(c, v->items[j])) return nomem(m);
            break;
        case 'a': // APPEND
            if ((s = pop(m, at, &a))) break;
            if (m->sp <= floor_of(m)) return hn_fail(HN_ERR_FORMAT, "%s: pickle byte %zu: APPEND without a list", m->path, at);
            if (!(s = expect(m, at, m->stack[m->sp - 1], V_LIST, "APPEND's target")) && !add_item(m->stack[m->sp - 1], a))
                return nomem(m);
            break;
        case 'q': NEED(1); s = memo_put(m, at, p[i++], n); break;
        case 'r': NEED(4); s = memo_put(m, at, rd32(p + i), n), i += 4; break;
        case 0x94: s = memo_put(m, at, next_memo++, n); break; // MEMOIZE
        case 'h': case 'j': { // BINGET, LONG_BINGET
            NEED(op == 'h' ? 1 : 4);
            uint64_t idx = op == 'h' ? p[i] : rd32(p + i);
            i += op == 'h' ? 1 : 4;
            if (idx >= m->n_memo || !m->memo[idx])
                return hn_fail(HN_ERR_FORMAT, "%s: pickle byte %zu: memo %llu was never stored", m->path, at,
                               (unsigned long long)idx);
            s = push(m, m->memo[idx]);
            break;
        }
        default:
            return hn_fail(HN_ERR_UNSUPPORTED, "%s: pickle byte %zu: opcode 0x%02x (%s) is refused (only tensor "
                           "rebuilding is allowed)", m->path, at, op, op_name(op));
        }
    }
#undef NEED
    return s;
}

static void pm_free(pm *m) {
    for (size_t i = 0; i < m->n_all; i++) free(m->all[i]->items), free(m->all[i]);
    free(m->all);
    free(m->stack);
    free(m->marks);
    free(m->memo);
    free(m->tens);
}

// ---- tensors ----

typedef struct {
    hn_tensor t;
    char *name;
} named;

static int by_name(const void *a, const void *b) { return strcmp(((const named *)a)->name, ((const named *)b)->name); }

// Tensor `tr` over its storage's bytes: mapped if contiguous and aligned, else gathered into an owned copy.
static hn_status make_tensor(hn_torch_bin *tb, const char *name, const trec *tr, const zentry *ze, hn_tensor *t) {
    const val *st = tr->storage;
    size_t es = storages[st->storage].size;
    t->type = storages[st->storage].type;
    t->ndim = tr->ndim ? tr->ndim : 1;
    for (int d = 0; d < HN_MAX_DIMS; d++) t->ne[d] = 1;
    __int128 count = 1, last = tr->offset; // the last element's index, when the tensor is not empty
    bool contiguous = true;
    int64_t want = 1;
    for (int d = tr->ndim - 1; d >= 0; d--) {
        t->ne[tr->ndim - 1 - d] = tr->size[d];
        count *= tr->size[d];
        if (tr->size[d]) last += (__int128)(tr->size[d] - 1) * tr->stride[d];
        if (tr->size[d] != 1 && tr->stride[d] != want) contiguous = false;
        want *= tr->size[d];
    }
    if (count && last >= st->i)
        return hn_fail(HN_ERR_FORMAT, "%s: tensor '%s' reaches element %lld of storage '%.*s', which has %lld", tb->path,
                       name, (long long)last, (int)st->len, st->s, (long long)st->i);
    snprintf(t->name, sizeof t->name, "%s", name);
    t->nbytes = (size_t)count * es;
    const uint8_t *base = ze->data + (size_t)tr->offset * es;
    if (contiguous && (uintptr_t)base % es == 0) {
        t->data = (void *)base;
        return HN_OK;
    }
    if (!(t->data = hn_alloc_aligned(t->nbytes ? t->nbytes : es, "torch tensor copy"))) return HN_ERR_NOMEM;
    t->owned = true;
    uint8_t *dst = t->data;
    for (int64_t k = 0; k < (int64_t)count; k++) { // k in row-major order over the sizes
        int64_t rem = k, off = 0;
        for (int d = tr->ndim - 1; d >= 0; d--) {
            off += rem % tr->size[d] * tr->stride[d];
            rem /= tr->size[d];
        }
        memcpy(dst + (size_t)k * es, base + (size_t)off * es, es);
    }
    return HN_OK;
}

// Turns the unpickled dict into tensors over the archive's storages.
static hn_status collect(hn_torch_bin *tb, const zip *z, const char *prefix, size_t plen, pm *m, const val *d) {
    if (d->kind != V_DICT)
        return hn_fail(HN_ERR_FORMAT, "%s: data.pkl holds a %s, expected a state dict", tb->path, vkind_names[d->kind]);
    size_t n = d->n / 2, k = 0;
    named *ns = hn_calloc(n ? n : 1, sizeof *ns, "torch tensors");
    if (!ns) return HN_ERR_NOMEM;
    hn_status s = HN_OK;
    for (size_t i = 0; i < n && !s; i++) {
        const val *key = d->items[2 * i], *v = d->items[2 * i + 1];
        if (key->kind != V_STR) {
            s = hn_fail(HN_ERR_FORMAT, "%s: state dict key %zu is a %s, expected a string", tb->path, i,
                        vkind_names[key->kind]);
            break;
        }
        if (memchr(key->s, 0, key->len)) {
            s = hn_fail(HN_ERR_FORMAT, "%s: state dict key %zu holds a NUL byte", tb->path, i);
            break;
        }
        char *name = strndup(key->s, key->len);
        if (!name) {
            s = hn_fail(HN_ERR_NOMEM, "%s: out of memory", tb->path);
            break;
        }
        if (v->kind != V_TENSOR) {
            s = hn_fail(HN_ERR_FORMAT, "%s: state dict entry '%s' is a %s, expected a tensor", tb->path, name,
                        vkind_names[v->kind]);
            free(name);
            break;
        }
        const trec *tr = &m->tens[v->i];
        const val *st = tr->storage;
        char rest[300];
        int rl = snprintf(rest, sizeof rest, "data/%.*s", (int)(st->len > 256 ? 256 : st->len), st->s);
        const zentry *ze = zip_get(z, prefix, plen, rest, (size_t)rl);
        size_t es = storages[st->storage].size;
        if (!ze)
            s = hn_fail(HN_ERR_FORMAT, "%s: tensor '%s': its storage entry '%.*s/%s' is missing from the archive",
                        tb->path, name, (int)plen, prefix, rest);
        else if (ze->method)
            s = hn_fail(HN_ERR_UNSUPPORTED, "%s: entry '%.*s/%s' is compressed (method %d); torch.save stores "
                        "entries uncompressed", tb->path, (int)plen, prefix, rest, ze->method);
        else if (ze->size / es != (uint64_t)st->i || ze->size % es)
            s = hn_fail(HN_ERR_FORMAT, "%s: storage '%.*s/%s' (tensor '%s') has %llu bytes, expected %lld elements "
                        "of %zu bytes (%s)", tb->path, (int)plen, prefix, rest, name, (unsigned long long)ze->size,
                        (long long)st->i, es, storages[st->storage].name);
        if (s || !storages[st->storage].exposed) { // integer buffers are checked but not exposed
            free(name);
            continue;
        }
        ns[k].name = name;
        s = make_tensor(tb, name, tr, ze, &ns[k].t);
        k++;
    }
    if (!s && k) qsort(ns, k, sizeof *ns, by_name);
    for (size_t i = 1; !s && i < k; i++)
        if (!strcmp(ns[i].name, ns[i - 1].name))
            s = hn_fail(HN_ERR_FORMAT, "%s: tensor '%s' appears twice", tb->path, ns[i].name);
    if (!s) {
        tb->tensors = hn_calloc(k ? k : 1, sizeof *tb->tensors, "torch tensors");
        tb->names = hn_calloc(k ? k : 1, sizeof *tb->names, "torch names");
        if (!tb->tensors || !tb->names) s = HN_ERR_NOMEM;
    }
    if (!s) {
        for (size_t i = 0; i < k; i++) tb->tensors[i] = ns[i].t, tb->names[i] = ns[i].name;
        tb->n_tensors = k;
    } else {
        for (size_t i = 0; i < k; i++) {
            if (ns[i].t.owned) free(ns[i].t.data);
            free(ns[i].name);
        }
    }
    free(ns);
    return s;
}

hn_status hn_torch_bin_open(hn_torch_bin *tb, const char *path) {
    memset(tb, 0, sizeof *tb);
    if (!(tb->path = strdup(path))) return hn_fail(HN_ERR_NOMEM, "%s: out of memory", path);
    zip z = {0};
    pm m = {.path = path};
    hn_status s = hn_map_open(&tb->map, path);
    if (!s) s = zip_open(&z, path, tb->map.data, tb->map.size);
    const char *prefix = NULL;
    size_t plen = 0;
    if (!s) { // everything lives under one folder, named after the first entry
        const char *slash = z.n ? memchr(z.e[0].name, '/', z.e[0].name_len) : NULL;
        prefix = z.n ? z.e[0].name : "";
        plen = slash ? (size_t)(slash - prefix) : 0;
        if (!slash) s = hn_fail(HN_ERR_FORMAT, "%s: not a torch.save archive (entries are not under one folder)", path);
    }
    const zentry *pk = s ? NULL : zip_get(&z, prefix, plen, "data.pkl", 8);
    const zentry *bo = s ? NULL : zip_get(&z, prefix, plen, "byteorder", 9);
    if (!s && !pk) s = hn_fail(HN_ERR_FORMAT, "%s: not a torch.save archive (no %.*s/data.pkl)", path, (int)plen, prefix);
    if (!s && pk->method)
        s = hn_fail(HN_ERR_UNSUPPORTED, "%s: %.*s/data.pkl is compressed (method %d)", path, (int)plen, prefix,
                    pk->method);
    if (!s && bo && !(bo->method == 0 && bo->size == 6 && !memcmp(bo->data, "little", 6)))
        s = hn_fail(HN_ERR_UNSUPPORTED, "%s: %.*s/byteorder is not 'little'", path, (int)plen, prefix);
    val *root = NULL;
    if (!s) s = run(&m, pk->data, pk->size, &root);
    if (!s) s = collect(tb, &z, prefix, plen, &m, root);
    pm_free(&m);
    free(z.e);
    if (s) hn_torch_bin_close(tb);
    return s;
}

void hn_torch_bin_close(hn_torch_bin *tb) {
    for (size_t i = 0; i < tb->n_tensors; i++) {
        if (tb->tensors[i].owned) free(tb->tensors[i].data);
        free(tb->names[i]);
    }
    free(tb->tensors);
    free(tb->names);
    hn_map_close(&tb->map);
    free(tb->path);
    memset(tb, 0, sizeof *tb);
}

static int name_cmp(const void *key, const void *elem) { return strcmp(key, *(char *const *)elem); }

const hn_tensor *hn_torch_bin_tensor(const hn_torch_bin *tb, const char *name) {
    if (!tb->n_tensors) return NULL;
    char **p = bsearch(name, tb->names, tb->n_tensors, sizeof *tb->names, name_cmp);
    return p ? &tb->tensors[p - tb->names] : NULL;
}
