#!/usr/bin/env python3
"""Golden NF4 data from bitsandbytes itself (CPU backend), for tests/test_nf4.c.

bitsandbytes' quantize_4bit(W, blocksize=64, compress_statistics=True, quant_type="nf4") and dequantize_4bit on
two fp32 weights (torch layout (N, K) = hone's ne {K, N}):
  * tests/data/nf4_random.bin: 36 x 512 random values (Gaussian rows at several scales, an all-zero block, a block
    with one outlier, a constant block, and blocks whose values land exactly on the midpoints between NF4 values,
    where the tie rule decides), 288 blocks = two double-quantization groups (one partial);
  * tests/data/nf4_smollm2.bin: the first 32 rows of blk.0.attn_q.weight of SmolLM2-135M-Instruct (Q4_1 GGUF,
    dequantized by the `gguf` package), a real weight's distribution.

Needs bitsandbytes in the reference venv (`pip install bitsandbytes`; 0.50.2 runs its CPU backend without a GPU).

Regenerate (not run by `make test`):
    /root/.cache/hone/refvenv/bin/python tools/reference/nf4_ref.py [GGUF]
GGUF defaults to ~/.cache/hone/models/smollm2-135m-instruct/SmolLM2-135M-Instruct.Q4_1.gguf.
Versions used for the committed files: bitsandbytes 0.50.2, torch 2.15.0, gguf 0.19.0, numpy 2.4.6.

File layout (little-endian):
    char magic[4] = "HNF4"; u32 version = 1; u32 K; u32 N; u32 nblocks; u32 ngroups; f32 offset
    f32 nf4_code[16]          state.code: the NF4 values
    f32 dynamic_map[256]      state.state2.code: the map the absmax codes index
    f32 input[N*K]            the weight quantized
    u8  codes[N*K/2]          the packed `weight` (high nibble = even element)
    u8  qabsmax[nblocks]      state.absmax
    f32 absmax2[ngroups]      state.state2.absmax
    f32 dequant[N*K]          dequantize_4bit(packed, state)
"""
import os
import struct
import sys

import numpy as np
import torch
import bitsandbytes
import bitsandbytes.functional as F

DEFAULT_GGUF = os.path.expanduser(
    "~/.cache/hone/models/smollm2-135m-instruct/SmolLM2-135M-Instruct.Q4_1.gguf")


def random_weight(rng):
    n_rows, k = 36, 512
    w = np.empty((n_rows, k), np.float32)
    for r in range(n_rows):
        w[r] = rng.standard_normal(k) * [0.02, 0.1, 1.0, 3e-4][r % 4]
    flat = w.reshape(-1)
    flat[64 * 3:64 * 4] = 0.0                    # all-zero block: absmax 0, every code is 0.0's
    flat[64 * 5:64 * 6] = 1e-3
    flat[64 * 5 + 17] = 40.0                     # one outlier
    flat[64 * 9:64 * 10] = -0.25                 # constant block
    # Blocks with absmax 1 whose values are the midpoints between adjacent NF4 values (as fp32): bucketize sends
    # a tie to the lower code.
    code = F.get_4bit_type("nf4", device="cpu").float()
    mids = ((code[:-1] + code[1:]) / 2).numpy().astype(np.float32)
    for b in (20, 150, 287):
        blk = np.tile(mids, 5)[:64].astype(np.float32)
        blk[-1] = 1.0
        flat[64 * b:64 * (b + 1)] = blk
    return w


def smollm2_weight(path):
    from gguf import GGUFReader
    from gguf.quants import dequantize
    reader = GGUFReader(path)
    t = next(t for t in reader.tensors if t.name == "blk.0.attn_q.weight")
    full = dequantize(t.data, t.tensor_type).astype(np.float32)  # (N, K)
    return np.ascontiguousarray(full[:32])


def record(w, out_path):
    n_rows, k = w.shape
    wt = torch.from_numpy(w.copy())
    packed, st = F.quantize_4bit(wt, blocksize=64, compress_statistics=True, quant_type="nf4")
    deq = F.dequantize_4bit(packed, st).numpy().astype(np.float32)
    assert st.nested and st.blocksize == 64 and st.state2.blocksize == 256
    codes = packed.numpy().reshape(-1).astype(np.uint8)
    qabsmax = st.absmax.numpy().astype(np.uint8)
    absmax2 = st.state2.absmax.numpy().astype(np.float32)
    offset = float(st.offset)
    with open(out_path, "wb") as f:
        f.write(b"HNF4")
        f.write(struct.pack("<5If", 1, k, n_rows, qabsmax.size, absmax2.size, offset))
        f.write(st.code.float().numpy().astype("<f4").tobytes())
        f.write(st.state2.code.float().numpy().astype("<f4").tobytes())
        f.write(w.astype("<f4").tobytes())
        f.write(codes.tobytes())
        f.write(qabsmax.tobytes())
        f.write(absmax2.astype("<f4").tobytes())
        f.write(deq.reshape(-1).astype("<f4").tobytes())
    err = np.abs(deq - w).max()
    print(f"{out_path}: {n_rows} x {k}, {qabsmax.size} blocks, {absmax2.size} groups, offset {offset:.9g}, "
          f"max |error| {err:.4g}")


def main():
    gguf_path = sys.argv[1] if len(sys.argv) > 1 else DEFAULT_GGUF
    rng = np.random.default_rng(4604)
    print(f"bitsandbytes {bitsandbytes.__version__}, torch {torch.__version__}")
    record(random_weight(rng), "tests/data/nf4_random.bin")
    record(smollm2_weight(gguf_path), "tests/data/nf4_smollm2.bin")


if __name__ == "__main__":
    main()
