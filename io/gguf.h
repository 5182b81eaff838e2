// io/gguf.h — GGUF v3 reader (over a read-only mmap) and writer.
//
// The reader checks every offset, size, count and string length against the file before use; a malformed file gives
// HN_ERR_FORMAT with a message naming the file, the field and what was expected. Strings and tensor data point into
// the mapping and are borrowed until hn_gguf_close.
//
//   hn_gguf g;
//   if (hn_gguf_open(&g, "model.gguf")) return fail(hn_errmsg());
//   uint32_t n_layer;
//   if (hn_gguf_get_u32(&g, "llama.block_count", &n_layer)) ...;   // HN_ERR_NOTFOUND if absent
//   const hn_tensor *t = hn_gguf_tensor(&g, "token_embd.weight");
//   hn_gguf_close(&g);
#ifndef HN_GGUF_H
#define HN_GGUF_H

#include "tensor/tensor.h"

// Metadata value types (FORMATS.md 1.4).
typedef enum {
    HN_GGUF_U8 = 0, HN_GGUF_I8 = 1, HN_GGUF_U16 = 2, HN_GGUF_I16 = 3, HN_GGUF_U32 = 4, HN_GGUF_I32 = 5,
    HN_GGUF_F32 = 6, HN_GGUF_BOOL = 7, HN_GGUF_STRING = 8, HN_GGUF_ARRAY = 9, HN_GGUF_U64 = 10, HN_GGUF_I64 = 11,
    HN_GGUF_F64 = 12, HN_GGUF_TYPE_COUNT
} hn_gguf_type;

typedef struct {
    const char *str; // not NUL-terminated: use len
    uint64_t len;
} hn_gguf_str;

typedef struct {
    hn_gguf_str key;
    hn_gguf_type type;
    hn_gguf_type arr_type; // element type when type == HN_GGUF_ARRAY
    uint64_t arr_n;        // element count when type == HN_GGUF_ARRAY
    const uint8_t *val;    // the encoded value in the file (for arrays: the first element)
    const uint8_t **arr_str; // arrays of strings: where element i is encoded (owned by hn_gguf; NULL otherwise)
} hn_gguf_kv;

struct hn_gguf_index;

typedef struct {
    char *path;
    hn_map map;
    uint32_t version;
    uint64_t n_kv, n_tensors;
    hn_gguf_kv *kv;
    hn_tensor *tensors; // data points into the mapping
    uint64_t alignment;
    uint64_t data_offset; // start of the tensor data section
    uint64_t *tensor_offset; // tensor i's offset relative to data_offset, as the file has it
    struct hn_gguf_index *index; // private: hash tables behind hn_gguf_find / hn_gguf_tensor
    // A view of another source (see hn_gguf_view_init): hn_gguf_close calls release(owner) first.
    void (*release)(void *owner);
    void *owner;
} hn_gguf;

hn_status hn_gguf_open(hn_gguf *g, const char *path);
void hn_gguf_close(hn_gguf *g);
// Presents a non-GGUF source (io/hf.c: a Hugging Face directory) through this struct, so code written against the
// reader runs on it unchanged. The caller fills path, kv/n_kv (keys and values encoded as in a GGUF file, in memory
// that owner keeps), tensors/n_tensors (data anywhere), release and owner, all heap-allocated with g zeroed
// first; this builds the lookup tables, refusing duplicate keys or tensor names. On failure and at hn_gguf_close,
// release(owner) runs, then path, kv, tensors and the tables are freed as for a file.
hn_status hn_gguf_view_init(hn_gguf *g);

const hn_gguf_kv *hn_gguf_find(const hn_gguf *g, const char *key); // NULL if absent
const hn_tensor *hn_gguf_tensor(const hn_gguf *g, const char *name); // NULL if absent

// Typed getters: HN_ERR_NOTFOUND if the key is absent (message names file and key), HN_ERR_FORMAT if it has another
// type. Integer getters accept any integer type whose value fits.
hn_status hn_gguf_get_u32(const hn_gguf *g, const char *key, uint32_t *out);
hn_status hn_gguf_get_f32(const hn_gguf *g, const char *key, float *out);  // accepts f32 or f64
hn_status hn_gguf_get_bool(const hn_gguf *g, const char *key, bool *out);
hn_status hn_gguf_get_str(const hn_gguf *g, const char *key, hn_gguf_str *out);
// Arrays: element i of an array of strings / of numbers (i < kv->arr_n, checked by the reader at open).
hn_gguf_str hn_gguf_arr_str(const hn_gguf_kv *kv, uint64_t i);
double hn_gguf_arr_num(const hn_gguf_kv *kv, uint64_t i); // any numeric element type
// Scalar values of any numeric type (bool as 0/1) as a double; false for strings and arrays.
bool hn_gguf_num(const hn_gguf_kv *kv, double *out);
const char *hn_gguf_type_name(hn_gguf_type t); // "u32", "string", ... ("?" if out of range)
size_t hn_gguf_type_size(hn_gguf_type t);      // bytes of a fixed-size value; 0 for string and array
// GGUF's ggml type numbers by name ("q4_k"), including the types hone does not support; NULL if unassigned.
const char *hn_gguf_ggml_type_name(uint32_t type);

// Writer: collects metadata and tensors, then writes the whole file atomically (temp + rename).
typedef struct hn_gguf_writer hn_gguf_writer;
hn_gguf_writer *hn_gguf_writer_create(void);
void hn_gguf_writer_destroy(hn_gguf_writer *w);
hn_status hn_gguf_writer_set_u32(hn_gguf_writer *w, const char *key, uint32_t v);
hn_status hn_gguf_writer_set_f32(hn_gguf_writer *w, const char *key, float v);
hn_status hn_gguf_writer_set_bool(hn_gguf_writer *w, const char *key, bool v);
hn_status hn_gguf_writer_set_str(hn_gguf_writer *w, const char *key, const char *v);
// Any scalar type: v points to a C value of that type (uint8_t ... double, bool); for STRING, v is a const char *.
// Like every set_*, it replaces an existing key of that name in place.
hn_status hn_gguf_writer_set(hn_gguf_writer *w, const char *key, hn_gguf_type type, const void *v);
// An array of n elements of type elem (not ARRAY): items is a packed C array of that type, or for STRING an array
// of n `const char *`.
hn_status hn_gguf_writer_set_arr(hn_gguf_writer *w, const char *key, hn_gguf_type elem, const void *items,
                                 uint64_t n);
// Copies a key/value (any type, arrays included) from a file being read, e.g. to carry metadata over.
hn_status hn_gguf_writer_copy_kv(hn_gguf_writer *w, const hn_gguf_kv *kv);
// Adds a tensor; `data` (hn_row_bytes of the whole tensor) is borrowed until hn_gguf_writer_write returns.
hn_status hn_gguf_writer_add_tensor(hn_gguf_writer *w, const char *name, hn_dtype type, int ndim, const int64_t *ne,
                                    const void *data);
// Adds a tensor whose data is produced while the file is written: fill(user, dst, nbytes) must write all nbytes of
// it. Only one such tensor is in memory at a time, so a whole model can be rewritten in a tensor's worth of memory.
typedef hn_status (*hn_gguf_fill_fn)(void *user, void *dst, size_t nbytes);
hn_status hn_gguf_writer_add_tensor_fn(hn_gguf_writer *w, const char *name, hn_dtype type, int ndim,
                                       const int64_t *ne, hn_gguf_fill_fn fill, void *user);
// Writes header, metadata, tensor infos and data, each tensor aligned to general.alignment (a u32 key, default 32).
hn_status hn_gguf_writer_write(hn_gguf_writer *w, const char *path);

#endif
