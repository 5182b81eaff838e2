// io/safetensors.h — safetensors reader (over a read-only mmap) and atomic writer (FORMATS.md 7.1).
//
// A file is an 8-byte little-endian header length N, N bytes of JSON ({"name": {"dtype", "shape", "data_offsets"},
// "__metadata__": {string: string}}), then the data. The reader checks every length and offset (tensors must tile
// the data section exactly, as the reference implementation requires) and exposes each tensor as an hn_tensor in
// GGUF ne order (the JSON shape reversed: ne[0] is the last, contiguous dimension) whose data points into the
// mapping. Only F32, F16 and BF16 tensors are exposed; integer and boolean buffers (e.g. BERT's position_ids) are
// checked and skipped; any other dtype (F8_*, ...) is refused with a message naming tensor and dtype.
//
//   hn_safetensors st;
//   if (hn_safetensors_open(&st, "model.safetensors")) return fail(hn_errmsg());
//   const hn_tensor *t = hn_safetensors_tensor(&st, "model.norm.weight"); // NULL if absent
//   const char *fmt = hn_safetensors_meta(&st, "format");                 // "pt", or NULL
//   hn_safetensors_close(&st);
#ifndef HN_SAFETENSORS_H
#define HN_SAFETENSORS_H

#include "tensor/tensor.h"

typedef struct {
    char *path;
    hn_map map;
    size_t n_tensors;
    hn_tensor *tensors; // sorted by name; data borrowed from the map (or owned when it had to be realigned)
    char **names;       // full names (hn_tensor.name holds at most 95 bytes of them), same order as tensors
    size_t n_meta;
    char **meta_keys, **meta_vals; // __metadata__, owned
} hn_safetensors;

hn_status hn_safetensors_open(hn_safetensors *st, const char *path);
void hn_safetensors_close(hn_safetensors *st);
const hn_tensor *hn_safetensors_tensor(const hn_safetensors *st, const char *name); // NULL if absent
const char *hn_safetensors_meta(const hn_safetensors *st, const char *key);          // NULL if absent

// Writer: collects tensors (borrowed until write returns) and metadata, then writes header and data atomically.
// Tensors go in the reference writer's order (larger dtype alignment first, then by name), back to back after a
// header padded with spaces to a multiple of 8, so every tensor is aligned to its element size.
typedef struct hn_safetensors_writer hn_safetensors_writer;
hn_safetensors_writer *hn_safetensors_writer_create(void); // NULL + hn_errmsg on failure
void hn_safetensors_writer_destroy(hn_safetensors_writer *w);
// ne in GGUF order (ne[0] innermost), ndim 1..4; the file gets the reversed shape. type: F32, F16 or BF16.
hn_status hn_safetensors_writer_add(hn_safetensors_writer *w, const char *name, hn_dtype type, int ndim,
                                    const int64_t *ne, const void *data);
hn_status hn_safetensors_writer_set_meta(hn_safetensors_writer *w, const char *key, const char *val);
hn_status hn_safetensors_writer_write(hn_safetensors_writer *w, const char *path);

#endif
