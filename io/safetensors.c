// io/safetensors.c — safetensors reader and writer (FORMATS.md 7.1). JSON via jansson.
//
// Nothing in the header is trusted: the header length is bounded by the file, every shape is checked for overflow,
// every tensor's byte range must equal its shape times its element size, and the ranges must tile the data section
// from 0 to its end with no hole or overlap (as the reference implementation's Metadata::validate requires).
#define _GNU_SOURCE
#include "io/safetensors.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { MAX_HEADER = 100000000 }; // the reference's MAX_HEADER_SIZE

// Float dtypes become tensors. Integer and boolean ones are checked like the others but not exposed: checkpoints
// carry such buffers (BERT's embeddings.position_ids, I64) beside the weights, and a model never reads them.
static const struct {
    const char *name;
    hn_dtype type;
    size_t size;
    bool exposed;
} dtypes[] = {{"F32", HN_F32, 4, true},   {"F16", HN_F16, 2, true},   {"BF16", HN_BF16, 2, true},
              {"F64", HN_F32, 8, false},  {"I64", HN_F32, 8, false},  {"U64", HN_F32, 8, false},
              {"I32", HN_F32, 4, false},  {"U32", HN_F32, 4, false},  {"I16", HN_F32, 2, false},
              {"U16", HN_F32, 2, false},  {"I8", HN_F32, 1, false},   {"U8", HN_F32, 1, false},
              {"BOOL", HN_F32, 1, false}};

static bool dtype_of(const char *name, hn_dtype *type, size_t *size, bool *exposed) {
    for (size_t i = 0; i < sizeof dtypes / sizeof dtypes[0]; i++)
        if (!strcmp(dtypes[i].name, name)) {
            *type = dtypes[i].type;
            *size = dtypes[i].size;
            *exposed = dtypes[i].exposed;
            return true;
        }
    return false;
}

static const char *dtype_name(hn_dtype t) {
    for (size_t i = 0; i < sizeof dtypes / sizeof dtypes[0]; i++)
        if (dtypes[i].type == t && dtypes[i].exposed) return dtypes[i].name;
    return NULL;
}

typedef struct {
    hn_tensor t;
    char *name;
    uint64_t begin, end;
    bool skip; // an integer or boolean buffer: checked, not exposed
} entry;

static int by_begin(const void *a, const void *b) {
    const entry *x = a, *y = b;
    return x->begin < y->begin ? -1 : x->begin > y->begin ? 1 : (x->end > y->end) - (x->end < y->end);
}

static int by_name(const void *a, const void *b) { return strcmp(((const entry *)a)->name, ((const entry *)b)->name); }

// A JSON integer in [0, 2^63) or fail.
static bool json_u64(const json_t *v, uint64_t *out) {
    if (!json_is_integer(v) || json_integer_value(v) < 0) return false;
    *out = (uint64_t)json_integer_value(v);
    return true;
}

static hn_status parse_entry(const char *path, const char *name, json_t *v, entry *e) {
    if (!json_is_object(v))
        return hn_fail(HN_ERR_FORMAT, "%s: tensor '%s': expected an object with dtype, shape, data_offsets", path, name);
    json_t *jd = json_object_get(v, "dtype"), *js = json_object_get(v, "shape"), *jo = json_object_get(v, "data_offsets");
    if (!json_is_string(jd))
        return hn_fail(HN_ERR_FORMAT, "%s: tensor '%s': expected a string 'dtype'", path, name);
    if (!json_is_array(js))
        return hn_fail(HN_ERR_FORMAT, "%s: tensor '%s': expected an array 'shape'", path, name);
    if (!json_is_array(jo) || json_array_size(jo) != 2)
        return hn_fail(HN_ERR_FORMAT, "%s: tensor '%s': expected 'data_offsets' as an array [begin, end]", path, name);
    size_t esize;
    bool exposed;
    if (!dtype_of(json_string_value(jd), &e->t.type, &esize, &exposed))
        return hn_fail(HN_ERR_UNSUPPORTED, "%s: tensor '%s' has dtype %.16s; hone reads F32, F16 and BF16 (and skips "
                       "integer buffers)", path, name, json_string_value(jd));
    e->skip = !exposed;
    size_t ndim = json_array_size(js);
    if (ndim > HN_MAX_DIMS)
        return hn_fail(HN_ERR_UNSUPPORTED, "%s: tensor '%s' has %zu dimensions, hone handles at most %d", path, name,
                       ndim, HN_MAX_DIMS);
    e->t.ndim = ndim ? (int)ndim : 1; // a scalar (shape []) is one element
    for (int d = 0; d < HN_MAX_DIMS; d++) e->t.ne[d] = 1;
    size_t count = 1;
    for (size_t d = 0; d < ndim; d++) {
        uint64_t n;
        if (!json_u64(json_array_get(js, d), &n) || n > INT64_MAX)
            return hn_fail(HN_ERR_FORMAT, "%s: tensor '%s': shape[%zu]: expected a non-negative integer", path, name, d);
        e->t.ne[ndim - 1 - d] = (int64_t)n;
        if (!hn_mul_ok(count, (size_t)n, &count))
            return hn_fail(HN_ERR_FORMAT, "%s: tensor '%s': the shape's element count overflows", path, name);
    }
    if (!hn_mul_ok(count, esize, &e->t.nbytes))
        return hn_fail(HN_ERR_FORMAT, "%s: tensor '%s': the shape's byte size overflows", path, name);
    if (!json_u64(json_array_get(jo, 0), &e->begin) || !json_u64(json_array_get(jo, 1), &e->end))
        return hn_fail(HN_ERR_FORMAT, "%s: tensor '%s': data_offsets: expected two non-negative integers", path, name);
    if (e->end < e->begin || e->end - e->begin != e->t.nbytes)
        return hn_fail(HN_ERR_FORMAT,
                       "%s: tensor '%s': data_offsets [%llu, %llu] do not hold its %zu bytes (%s, %zu elements)", path,
                       name, (unsigned long long)e->begin, (unsigned long long)e->end, e->t.nbytes,
                       json_string_value(jd), count);
    snprintf(e->t.name, sizeof e->t.name, "%s", name);
    return HN_OK;
}

static hn_status parse_meta(hn_safetensors *st, json_t *meta) {
    if (!json_is_object(meta))
        return hn_fail(HN_ERR_FORMAT, "%s: __metadata__: expected an object of strings", st->path);
    size_t n = json_object_size(meta);
    st->meta_keys = hn_calloc(n ? n : 1, sizeof *st->meta_keys, "safetensors metadata");
    st->meta_vals = hn_calloc(n ? n : 1, sizeof *st->meta_vals, "safetensors metadata");
    if (!st->meta_keys || !st->meta_vals) return HN_ERR_NOMEM;
    const char *k;
    json_t *v;
    json_object_foreach(meta, k, v) {
        if (!json_is_string(v))
            return hn_fail(HN_ERR_FORMAT, "%s: __metadata__ '%s': expected a string value", st->path, k);
        st->meta_keys[st->n_meta] = strdup(k);
        st->meta_vals[st->n_meta] = strdup(json_string_value(v));
        if (!st->meta_keys[st->n_meta++] || !st->meta_vals[st->n_meta - 1])
            return hn_fail(HN_ERR_NOMEM, "%s: out of memory", st->path);
    }
    return HN_OK;
}

static hn_status parse(hn_safetensors *st, json_t *root, const uint8_t *data, uint64_t data_size) {
    size_t n = json_object_size(root);
    entry *es = hn_calloc(n ? n : 1, sizeof *es, "safetensors tensors");
    if (!es) return HN_ERR_NOMEM;
    size_t k = 0;
    const char *name;
    json_t *v;
    hn_status s = HN_OK;
    json_object_foreach(root, name, v) {
        if (!strcmp(name, "__metadata__")) {
            if ((s = parse_meta(st, v))) break;
            continue;
        }
        if (!*name) {
            s = hn_fail(HN_ERR_FORMAT, "%s: a tensor has an empty name", st->path);
            break;
        }
        es[k].name = (char *)name; // borrowed from root until copied below
        if ((s = parse_entry(st->path, name, v, &es[k]))) break;
        k++;
    }
    // The byte ranges, in order, must cover [0, data_size) exactly.
    if (!s && k) qsort(es, k, sizeof *es, by_begin);
    uint64_t at = 0;
    for (size_t i = 0; !s && i < k; i++) {
        if (es[i].begin != at)
            s = hn_fail(HN_ERR_FORMAT, "%s: tensor '%s': data_offsets begin at %llu, expected %llu (%s)", st->path,
                        es[i].name, (unsigned long long)es[i].begin, (unsigned long long)at,
                        es[i].begin < at ? "it overlaps the tensor before it" : "there is a hole before it");
        at = es[i].end;
    }
    if (!s && at != data_size)
        s = hn_fail(HN_ERR_FORMAT, "%s: the tensors end at data offset %llu but the data section has %llu bytes",
                    st->path, (unsigned long long)at, (unsigned long long)data_size);
    size_t kept = 0; // drop the skipped entries, keeping the order
    for (size_t i = 0; !s && i < k; i++)
        if (!es[i].skip) es[kept++] = es[i];
    if (!s) k = kept;
    if (!s && k) qsort(es, k, sizeof *es, by_name);
    if (!s) {
        st->tensors = hn_calloc(k ? k : 1, sizeof *st->tensors, "safetensors tensors");
        st->names = hn_calloc(k ? k : 1, sizeof *st->names, "safetensors names");
        if (!st->tensors || !st->names) s = HN_ERR_NOMEM;
    }
    for (size_t i = 0; !s && i < k; i++) {
        hn_tensor *t = &st->tensors[i];
        *t = es[i].t;
        if (!(st->names[i] = strdup(es[i].name))) s = hn_fail(HN_ERR_NOMEM, "%s: out of memory", st->path);
        st->n_tensors = i + 1;
        const uint8_t *p = data + es[i].begin;
        size_t align = t->type == HN_F32 ? 4 : 2;
        if ((uintptr_t)p % align && t->nbytes) { // a legal but unaligned file: copy so that loads are aligned
            if (!(t->data = hn_alloc_aligned(t->nbytes, "safetensors tensor"))) s = HN_ERR_NOMEM;
            else memcpy(t->data, p, t->nbytes), t->owned = true;
        } else {
            t->data = (void *)p;
        }
    }
    free(es);
    return s;
}

hn_status hn_safetensors_open(hn_safetensors *st, const char *path) {
    memset(st, 0, sizeof *st);
    if (!(st->path = strdup(path))) return hn_fail(HN_ERR_NOMEM, "%s: out of memory", path);
    hn_status s = hn_map_open(&st->map, path);
    if (s) goto fail;
    uint64_t n;
    if (st->map.size < 8) {
        s = hn_fail(HN_ERR_FORMAT, "%s: expected an 8-byte header length, the file has %zu bytes", path, st->map.size);
        goto fail;
    }
    memcpy(&n, st->map.data, 8);
    if (n > st->map.size - 8 || n > MAX_HEADER) {
        s = hn_fail(HN_ERR_FORMAT, "%s: header length %llu: expected at most %llu (the rest of the file, limit %d)",
                    path, (unsigned long long)n, (unsigned long long)(st->map.size - 8), MAX_HEADER);
        goto fail;
    }
    if (n < 2 || st->map.data[8] != '{') {
        s = hn_fail(HN_ERR_FORMAT, "%s: expected a JSON object after the header length (not a safetensors file?)",
                    path);
        goto fail;
    }
    json_error_t err;
    json_t *root = json_loadb((const char *)st->map.data + 8, (size_t)n, JSON_REJECT_DUPLICATES, &err);
    if (!root) {
        s = hn_fail(HN_ERR_FORMAT, "%s: header JSON, byte %d: %s", path, err.position, err.text);
        goto fail;
    }
    s = json_is_object(root) ? parse(st, root, st->map.data + 8 + n, st->map.size - 8 - n)
                             : hn_fail(HN_ERR_FORMAT, "%s: header: expected a JSON object", path);
    json_decref(root);
    if (!s) return HN_OK;
fail:
    hn_safetensors_close(st);
    return s;
}

void hn_safetensors_close(hn_safetensors *st) {
    for (size_t i = 0; i < st->n_tensors; i++) {
        if (st->tensors[i].owned) free(st->tensors[i].data);
        free(st->names[i]);
    }
    for (size_t i = 0; i < st->n_meta; i++) free(st->meta_keys[i]), free(st->meta_vals[i]);
    free(st->tensors);
    free(st->names);
    free(st->meta_keys);
    free(st->meta_vals);
    hn_map_close(&st->map);
    free(st->path);
    memset(st, 0, sizeof *st);
}

static int name_cmp(const void *key, const void *elem) { return strcmp(key, *(char *const *)elem); }

const hn_tensor *hn_safetensors_tensor(const hn_safetensors *st, const char *name) {
    if (!st->n_tensors) return NULL;
    char **p = bsearch(name, st->names, st->n_tensors, sizeof *st->names, name_cmp);
    return p ? &st->tensors[p - st->names] : NULL;
}

const char *hn_safetensors_meta(const hn_safetensors *st, const char *key) {
    for (size_t i = 0; i < st->n_meta; i++)
        if (!strcmp(st->meta_keys[i], key)) return st->meta_vals[i];
    return NULL;
}

// ---- writer ----

typedef struct {
    char *name;
    hn_dtype type;
    int ndim;
    int64_t ne[HN_MAX_DIMS];
    const void *data;
    size_t nbytes;
} wtensor;

struct hn_safetensors_writer {
    wtensor *t;
    size_t n, cap;
    json_t *meta;
};

hn_safetensors_writer *hn_safetensors_writer_create(void) {
    hn_safetensors_writer *w = hn_calloc(1, sizeof *w, "safetensors writer");
    if (w && !(w->meta = json_object())) {
        free(w);
        hn_fail(HN_ERR_NOMEM, "safetensors writer: out of memory");
        return NULL;
    }
    return w;
}

void hn_safetensors_writer_destroy(hn_safetensors_writer *w) {
    if (!w) return;
    for (size_t i = 0; i < w->n; i++) free(w->t[i].name);
    free(w->t);
    json_decref(w->meta);
    free(w);
}

hn_status hn_safetensors_writer_add(hn_safetensors_writer *w, const char *name, hn_dtype type, int ndim,
                                    const int64_t *ne, const void *data) {
    if (!dtype_name(type))
        return hn_fail(HN_ERR_ARG, "safetensors writer: tensor '%s': dtype %s, expected f32, f16 or bf16", name,
                       hn_dtype_name(type));
    if (ndim < 1 || ndim > HN_MAX_DIMS || !*name || !strcmp(name, "__metadata__"))
        return hn_fail(HN_ERR_ARG, "safetensors writer: tensor '%s': bad name or ndim %d", name, ndim);
    for (size_t i = 0; i < w->n; i++)
        if (!strcmp(w->t[i].name, name))
            return hn_fail(HN_ERR_ARG, "safetensors writer: tensor '%s' added twice", name);
    wtensor t = {.type = type, .ndim = ndim, .data = data, .nbytes = type == HN_F32 ? 4 : 2};
    for (int d = 0; d < HN_MAX_DIMS; d++) t.ne[d] = d < ndim ? ne[d] : 1;
    for (int d = 0; d < ndim; d++)
        if (ne[d] < 0 || !hn_mul_ok(t.nbytes, (size_t)ne[d], &t.nbytes))
            return hn_fail(HN_ERR_ARG, "safetensors writer: tensor '%s': bad shape", name);
    if (w->n == w->cap) {
        size_t cap = w->cap ? 2 * w->cap : 16;
        wtensor *nt = realloc(w->t, cap * sizeof *nt);
        if (!nt) return hn_fail(HN_ERR_NOMEM, "safetensors writer: out of memory");
        w->t = nt, w->cap = cap;
    }
    if (!(t.name = strdup(name))) return hn_fail(HN_ERR_NOMEM, "safetensors writer: out of memory");
    w->t[w->n++] = t;
    return HN_OK;
}

hn_status hn_safetensors_writer_set_meta(hn_safetensors_writer *w, const char *key, const char *val) {
    json_t *v = json_string(val);
    if (!v || json_object_set_new(w->meta, key, v))
        return hn_fail(HN_ERR_ARG, "safetensors writer: metadata '%s': expected UTF-8 key and value", key);
    return HN_OK;
}

static int write_order(const void *a, const void *b) {
    const wtensor *x = a, *y = b;
    size_t ax = x->type == HN_F32 ? 4 : 2, ay = y->type == HN_F32 ? 4 : 2;
    return ax != ay ? (ax > ay ? -1 : 1) : strcmp(x->name, y->name);
}

hn_status hn_safetensors_writer_write(hn_safetensors_writer *w, const char *path) {
    if (w->n) qsort(w->t, w->n, sizeof *w->t, write_order);
    json_t *root = json_object();
    hn_status s = root ? HN_OK : hn_fail(HN_ERR_NOMEM, "%s: out of memory", path);
    if (!s && json_object_size(w->meta)) json_object_set(root, "__metadata__", w->meta);
    uint64_t at = 0;
    for (size_t i = 0; !s && i < w->n; i++) {
        const wtensor *t = &w->t[i];
        json_t *shape = json_array(), *e = json_object();
        for (int d = t->ndim - 1; d >= 0; d--) json_array_append_new(shape, json_integer(t->ne[d]));
        json_object_set_new(e, "dtype", json_string(dtype_name(t->type)));
        json_object_set_new(e, "shape", shape);
        json_object_set_new(e, "data_offsets", json_pack("[II]", (json_int_t)at, (json_int_t)(at + t->nbytes)));
        if (json_object_set_new(root, t->name, e))
            s = hn_fail(HN_ERR_ARG, "%s: tensor name '%s' is not valid UTF-8", path, t->name);
        at += t->nbytes;
    }
    char *hdr = s ? NULL : json_dumps(root, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(root);
    if (!s && !hdr) s = hn_fail(HN_ERR_NOMEM, "%s: cannot encode the header", path);
    if (s) {
        free(hdr);
        return s;
    }
    size_t len = strlen(hdr);
    uint64_t padded = (len + 7) / 8 * 8; // the data section starts 8-aligned
    hn_afile f;
    if ((s = hn_afile_open(&f, path))) {
        free(hdr);
        return s;
    }
    static const char spaces[8] = "        ";
    s = hn_afile_write(&f, &padded, 8);
    if (!s) s = hn_afile_write(&f, hdr, len);
    if (!s) s = hn_afile_write(&f, spaces, padded - len);
    for (size_t i = 0; !s && i < w->n; i++) s = hn_afile_write(&f, w->t[i].data, w->t[i].nbytes);
    free(hdr);
    if (s) {
        hn_afile_abort(&f);
        return s;
    }
    return hn_afile_commit(&f);
}
