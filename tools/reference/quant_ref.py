#!/usr/bin/env python3
"""Golden quantization data from the `gguf` package's NumPy (de)quantizers, for tests/test_quant.c.

Two kinds of record:
  * dequantize: random blocks (scales drawn as finite f16, nibbles/bytes random) and gguf's dequantized floats
    (gguf.quants.dequantize) for F16, BF16, Q4_0, Q4_1, Q8_0;
  * quantize: random floats (Gaussian, uniform, heavy outliers, all-zero and constant blocks, and values that fall
    exactly on .5 after scaling, where roundf and round-to-even differ) and gguf's quantized bytes
    (gguf.quants.quantize) for F16, BF16, Q4_0, Q4_1, Q8_0. gguf-py states these are bit-exact with ggml's
    quantize_row_*_ref, which is what hone's quantizers follow.

Regenerate (not run by `make test`):
    /root/.cache/hone/refvenv/bin/python tools/reference/quant_ref.py [tests/data/quant_golden.bin]
Versions used for the committed file: gguf 0.19.0, numpy 2.4.6.

File layout (little-endian):
    char magic[4] = "HNQG"; u32 version = 1; u32 n_records
    per record: u32 kind (0 = dequantize, 1 = quantize); u32 ggml type; u32 n_elements; u32 n_bytes;
                u8 bytes[n_bytes] (the blocks); f32 values[n_elements] (dequantized output, or quantizer input)
"""
import struct
import sys

import numpy as np
from gguf import GGMLQuantizationType as Q
from gguf import quants

TYPES = [Q.F16, Q.BF16, Q.Q4_0, Q.Q4_1, Q.Q8_0]
BLOCK = {Q.F16: (1, 2), Q.BF16: (1, 2), Q.Q4_0: (32, 18), Q.Q4_1: (32, 20), Q.Q8_0: (32, 34)}
N_BLOCKS = 48  # per record: 1536 elements for the block types


def random_f16(rng, n, lo, hi):
    return rng.uniform(lo, hi, n).astype(np.float16)


def random_blocks(rng, t):
    if t == Q.F16:
        bits = rng.integers(0, 1 << 16, 1024, dtype=np.uint32).astype(np.uint16)
        bits = bits[((bits >> 10) & 0x1F) != 0x1F]  # finite only (subnormals included)
        return bits.view(np.uint8)
    if t == Q.BF16:
        bits = rng.integers(0, 1 << 16, 1024, dtype=np.uint32).astype(np.uint16)
        bits = bits[((bits >> 7) & 0xFF) != 0xFF]
        return bits.view(np.uint8)
    _, size = BLOCK[t]
    raw = rng.integers(0, 256, (N_BLOCKS, size), dtype=np.uint16).astype(np.uint8)
    raw[:, 0:2] = random_f16(rng, N_BLOCKS, -0.05, 0.05).view(np.uint8).reshape(N_BLOCKS, 2)
    if t == Q.Q4_1:
        raw[:, 2:4] = random_f16(rng, N_BLOCKS, -1.0, 1.0).view(np.uint8).reshape(N_BLOCKS, 2)
    return raw.reshape(-1)


def random_floats(rng, n_blocks):
    parts = [
        rng.standard_normal(32 * (n_blocks - 8)).astype(np.float32) * 0.02,
        np.zeros(32, np.float32),                          # d = 0 must give zeros, not NaN
        np.full(32, 0.125, np.float32),                    # constant block (Q4_1: max == min)
        np.full(32, -3.0, np.float32),
        np.concatenate([np.full(31, 1e-3, np.float32), [50.0]]).astype(np.float32),  # one outlier
        rng.uniform(-1, 1, 32).astype(np.float32),
        # amax 127 gives d = 1 for Q8_0: every .5 is a tie that roundf takes away from zero
        (np.arange(-16, 16, dtype=np.float32) + 0.5).astype(np.float32) * np.float32(1.0),
        np.concatenate([[127.0], np.arange(-15, 16, dtype=np.float32) + 0.5]).astype(np.float32),
        rng.uniform(-65000, 65000, 32).astype(np.float32),  # near the f16 limit
    ]
    return np.concatenate(parts).astype(np.float32)


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "tests/data/quant_golden.bin"
    rng = np.random.default_rng(20240602)
    records = []
    for t in TYPES:
        blocks = random_blocks(rng, t)
        values = quants.dequantize(blocks, t).astype(np.float32).reshape(-1)
        assert np.all(np.isfinite(values))
        records.append((0, t, values, blocks))
    for t in TYPES:
        values = random_floats(rng, N_BLOCKS)
        q = quants.quantize(values.reshape(1, -1), t)
        blocks = np.ascontiguousarray(q).view(np.uint8).reshape(-1)
        records.append((1, t, values, blocks))
    with open(out, "wb") as f:
        f.write(b"HNQG" + struct.pack("<II", 1, len(records)))
        for kind, t, values, blocks in records:
            f.write(struct.pack("<IIII", kind, int(t), values.size, blocks.size))
            f.write(blocks.tobytes())
            f.write(values.astype("<f4").tobytes())
    print(f"wrote {out}: {len(records)} records")


if __name__ == "__main__":
    main()
