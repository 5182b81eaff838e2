// io/torch_bin.h — a reader of PyTorch's torch.save files (pytorch_model.bin), without Python (FORMATS.md 7.2).
//
// The file is a zip of stored (uncompressed) entries under one folder: PREFIX/data.pkl, the pickled state dict,
// and PREFIX/data/KEY, the raw little-endian bytes of each storage. The pickle is run by a small machine that knows
// only what rebuilding tensors needs: dicts (collections.OrderedDict), tuples, strings, numbers, the persistent ids
// of storages and the globals torch._utils._rebuild_tensor_v2 / _rebuild_parameter and torch.<Type>Storage. Any
// other opcode or global (os.system, builtins.eval, ...) is refused with a message naming it and the file, so
// loading a checkpoint never runs code from it.
//
// Tensors come out like io/safetensors.h's: hn_tensor in GGUF ne order, sorted by name, data pointing into the
// mapping when the tensor is contiguous and aligned, else an owned copy (strided views, storage offsets that break
// alignment). Only F32, F16 and BF16 tensors are exposed; integer buffers (e.g. BERT's position_ids) are skipped.
//
//   hn_torch_bin tb;
//   if (hn_torch_bin_open(&tb, "pytorch_model.bin")) return fail(hn_errmsg());
//   const hn_tensor *t = hn_torch_bin_tensor(&tb, "model.norm.weight"); // NULL if absent
//   hn_torch_bin_close(&tb);
#ifndef HN_TORCH_BIN_H
#define HN_TORCH_BIN_H

#include "tensor/tensor.h"

typedef struct {
    char *path;
    hn_map map;
    size_t n_tensors;
    hn_tensor *tensors; // sorted by name; data borrowed from the map unless .owned
    char **names;       // full names, same order as tensors
} hn_torch_bin;

hn_status hn_torch_bin_open(hn_torch_bin *tb, const char *path);
void hn_torch_bin_close(hn_torch_bin *tb);
const hn_tensor *hn_torch_bin_tensor(const hn_torch_bin *tb, const char *name); // NULL if absent

#endif
