#!/usr/bin/env python3
"""Golden K-quant data (Q2_K, Q3_K, Q4_K, Q5_K, Q6_K), and Q5_0 / Q5_1 (llama.cpp's fallbacks for rows that are not
256-wide), from the `gguf` package's NumPy (de)quantizers, for tests/test_kquant.c.

gguf-py has dequantizers for the K-quants but no quantizers, so the blocks come from here:
  * random blocks: every byte random, the f16 super-scales drawn as finite values (small, either sign, some
    subnormal), dequantized by gguf.quants.dequantize;
  * real blocks: rows of SmolLM2-135M-Instruct (8 rows of the Q4_1 GGUF's token_embd, stored Q8_0, by gguf),
    packed into Q4_K / Q5_K / Q6_K blocks by the plain min/max packers below (not llama.cpp's search: these only make
    blocks whose scales look like a real model's), then dequantized by gguf.quants.dequantize;
  * real rows as fp32, with no blocks: the input hone's own quantizers are tested on (error bound) in the C test;
  * Q5_0 / Q5_1: random blocks dequantized, and random floats (plus the rows above) quantized by
    gguf.quants.quantize, which gguf-py states is bit-exact with ggml's quantize_row_q5_*_ref (so is hone's);
  * ggml's own K-quantizers (quantize_row_q*_K_ref) on the real rows and on Gaussian blocks, through
    tools/reference/kquant_ggml_ref.c built against llama.cpp's ggml-base (LLAMA_SRC, LLAMA_BUILD: default
    ~/.cache/hone/llama.cpp-src and ~/.cache/hone/llama.cpp-build): hone's quantizers must give the same bytes.

Regenerate (not run by `make test`; needs the model pulled by `hone pull smollm2-135m-instruct`):
    /root/.cache/hone/refvenv/bin/python tools/reference/kquant_ref.py [tests/data/kquant_golden.bin]
Versions used for the committed file: gguf 0.19.0, numpy 2.4.6, llama.cpp's ggml at the commit in ~/.cache/hone.

File layout (little-endian), as tests/data/quant_golden.bin:
    char magic[4] = "HNQG"; u32 version = 1; u32 n_records
    per record: u32 kind (0 = dequantize, 1 = quantize, 2 = fp32 rows to quantize, no blocks); u32 ggml type;
                u32 n_elements; u32 n_bytes; u8 bytes[n_bytes] (the blocks); f32 values[n_elements]
    kind 1 = quantize: values are the input, bytes gguf's blocks for them; kind 3 = the same with ggml's K-quantizer
    (hone's quantizers must give the same bytes).
"""
import os
import struct
import subprocess
import sys
import tempfile

import numpy as np
import gguf
from gguf import GGMLQuantizationType as Q
from gguf import quants

MODEL = os.path.expanduser("~/.cache/hone/models/smollm2-135m-instruct/SmolLM2-135M-Instruct.Q4_1.gguf")
# type -> (bytes per block, byte offsets of its f16 super-scales)
LAYOUT = {Q.Q2_K: (84, [80, 82]), Q.Q3_K: (110, [108]), Q.Q4_K: (144, [0, 2]), Q.Q5_K: (176, [0, 2]),
          Q.Q6_K: (210, [208])}
N_RANDOM = 8  # blocks per random record


def random_blocks(rng, t):
    size, scale_offsets = LAYOUT[t]
    raw = rng.integers(0, 256, (N_RANDOM, size), dtype=np.uint16).astype(np.uint8)
    for off in scale_offsets:
        s = rng.uniform(-0.02, 0.02, N_RANDOM).astype(np.float16)
        s[0] = np.float16(3e-6)  # an f16 subnormal
        s[1] = np.float16(0.0)
        raw[:, off:off + 2] = s.view(np.uint8).reshape(N_RANDOM, 2)
    return raw.reshape(-1)


def f16(x):
    return np.asarray(x, np.float32).astype(np.float16)


def pack_q4k_q5k(x, nmax):
    """Plain asymmetric packing: per sub-block of 32, scale = range / nmax, min = -min(x, 0); 6-bit both."""
    nb = x.shape[0]
    sub = x.reshape(nb, 8, 32)
    lo = np.minimum(sub.min(-1), 0)
    scale = (sub.max(-1) - lo) / nmax
    mins = -lo
    d = f16(scale.max(-1) / 63)
    dmin = f16(mins.max(-1) / 63)
    df, dmf = d.astype(np.float32)[:, None], dmin.astype(np.float32)[:, None]
    ls = np.clip(np.rint(np.divide(scale, df, out=np.zeros_like(scale), where=df > 0)), 0, 63).astype(np.uint8)
    lm = np.clip(np.rint(np.divide(mins, dmf, out=np.zeros_like(mins), where=dmf > 0)), 0, 63).astype(np.uint8)
    d1 = (df * ls)[:, :, None]
    m1 = (dmf * lm)[:, :, None]
    q = np.clip(np.rint(np.divide(sub + m1, d1, out=np.zeros_like(sub), where=d1 > 0)), 0, nmax).astype(np.uint8)
    sc = np.zeros((nb, 12), np.uint8)
    sc[:, 0:4] = ls[:, 0:4] | ((ls[:, 4:8] >> 4) << 6)
    sc[:, 4:8] = lm[:, 0:4] | ((lm[:, 4:8] >> 4) << 6)
    sc[:, 8:12] = (ls[:, 4:8] & 0xF) | ((lm[:, 4:8] & 0xF) << 4)
    low = q & 0xF
    qs = (low[:, 0::2, :] | (low[:, 1::2, :] << 4)).reshape(nb, 128)
    head = np.concatenate([d.view(np.uint8).reshape(nb, 2), dmin.view(np.uint8).reshape(nb, 2), sc], axis=1)
    if nmax == 15:
        return np.concatenate([head, qs], axis=1).reshape(-1)
    qh = np.zeros((nb, 32), np.uint8)
    for j in range(8):
        qh |= ((q[:, j, :] >> 4) & 1) << j
    return np.concatenate([head, qh, qs], axis=1).reshape(-1)


def pack_q6k(x):
    """Plain symmetric packing: per sub-block of 16, scale = amax / 31; int8 sub-scales against d = max / 127."""
    nb = x.shape[0]
    sub = x.reshape(nb, 16, 16)
    scale = np.abs(sub).max(-1) / 31
    d = f16(scale.max(-1) / 127)
    df = d.astype(np.float32)[:, None]
    ls = np.clip(np.rint(np.divide(scale, df, out=np.zeros_like(scale), where=df > 0)), 0, 127).astype(np.int8)
    d1 = (df * ls)[:, :, None]
    q = (np.clip(np.rint(np.divide(sub, d1, out=np.zeros_like(sub), where=d1 > 0)), -32, 31) + 32).astype(np.uint8)
    L = q.reshape(nb, 2, 4, 32)  # half, quarter, l: element 128h + 32k + l
    ql = np.concatenate([(L[:, :, 0] & 0xF) | ((L[:, :, 2] & 0xF) << 4),
                         (L[:, :, 1] & 0xF) | ((L[:, :, 3] & 0xF) << 4)], axis=2).reshape(nb, 128)
    qh = ((L[:, :, 0] >> 4) | ((L[:, :, 1] >> 4) << 2) | ((L[:, :, 2] >> 4) << 4) |
          ((L[:, :, 3] >> 4) << 6)).reshape(nb, 64)
    return np.concatenate([ql, qh, ls.view(np.uint8), d.view(np.uint8).reshape(nb, 2)], axis=1).reshape(-1)


def real_rows():
    # token_embd is Q8_0 in this file (256 levels per 32 values: close to the original weights); the Q4_1 tensors
    # hold only 16 levels per 32 values, which any 4-bit-or-wider K-quant fits about equally well.
    r = gguf.GGUFReader(MODEL)
    t = next(t for t in r.tensors if t.name == "token_embd.weight")
    w = quants.dequantize(t.data, t.tensor_type).reshape(-1, 576)
    return w[[1, 500, 2000, 9000, 20000, 30000, 40000, 49000]].astype(np.float32).reshape(-1, 256)  # 18 blocks


def ggml_quantize(values, t):
    """ggml's quantize_row_*_ref of `values` (a multiple of 256 floats) for K-quant type t."""
    src = os.environ.get("LLAMA_SRC", os.path.expanduser("~/.cache/hone/llama.cpp-src"))
    build = os.environ.get("LLAMA_BUILD", os.path.expanduser("~/.cache/hone/llama.cpp-build"))
    with tempfile.TemporaryDirectory() as d:
        exe = os.path.join(d, "kquant_ggml_ref")
        here = os.path.dirname(os.path.abspath(__file__))
        subprocess.run(["gcc", "-O2", "-I" + os.path.join(src, "ggml/include"), os.path.join(here, "kquant_ggml_ref.c"),
                        os.path.join(build, "ggml/src/libggml-base.a"), "-fopenmp", "-lm", "-lpthread", "-lstdc++",
                        "-o", exe], check=True)
        values.astype("<f4").tofile(os.path.join(d, "in.f32"))
        subprocess.run([exe, str(int(t)), os.path.join(d, "in.f32"), os.path.join(d, "out.bin")], check=True)
        return np.fromfile(os.path.join(d, "out.bin"), np.uint8)


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "tests/data/kquant_golden.bin"
    rng = np.random.default_rng(20261126)
    records = []
    for t in LAYOUT:
        blocks = random_blocks(rng, t)
        values = quants.dequantize(blocks, t).astype(np.float32).reshape(-1)
        assert np.all(np.isfinite(values))
        records.append((0, t, values, blocks))
    x = real_rows()
    for t, pack in ((Q.Q4_K, lambda v: pack_q4k_q5k(v, 15)), (Q.Q5_K, lambda v: pack_q4k_q5k(v, 31)),
                    (Q.Q6_K, pack_q6k)):
        blocks = pack(x[:12])
        values = quants.dequantize(blocks, t).astype(np.float32).reshape(-1)
        err = np.abs(values - x[:12].reshape(-1)).max()
        assert err < 0.05 * np.abs(x[:12]).max(), (t, err)  # the packers are right, if plain
        records.append((0, t, values, blocks))
    records.append((2, Q.F32, x.reshape(-1), np.zeros(0, np.uint8)))
    g = np.concatenate([x[:8].reshape(-1), rng.standard_normal(256 * 4).astype(np.float32) * 0.02])
    for t in LAYOUT:
        blocks = ggml_quantize(g, t)
        assert blocks.size == g.size // 256 * LAYOUT[t][0]
        records.append((3, t, g, blocks))
    for t, size, has_m in ((Q.Q5_0, 22, False), (Q.Q5_1, 24, True)):
        raw = rng.integers(0, 256, (32, size), dtype=np.uint16).astype(np.uint8)
        raw[:, 0:2] = rng.uniform(-0.05, 0.05, 32).astype(np.float16).view(np.uint8).reshape(32, 2)
        if has_m:
            raw[:, 2:4] = rng.uniform(-1, 1, 32).astype(np.float16).view(np.uint8).reshape(32, 2)
        blocks = raw.reshape(-1)
        records.append((0, t, quants.dequantize(blocks, t).astype(np.float32).reshape(-1), blocks))
        v = np.concatenate([rng.standard_normal(32 * 24).astype(np.float32) * 0.02, np.zeros(32, np.float32),
                            np.full(32, 0.125, np.float32), np.arange(-16, 16, dtype=np.float32) + 0.5,
                            x[:2].reshape(-1)]).astype(np.float32)
        q = np.ascontiguousarray(quants.quantize(v.reshape(1, -1), t)).view(np.uint8).reshape(-1)
        records.append((1, t, v, q))
    with open(out, "wb") as f:
        f.write(b"HNQG" + struct.pack("<II", 1, len(records)))
        for kind, t, values, blocks in records:
            f.write(struct.pack("<IIII", kind, int(t), values.size, blocks.size))
            f.write(blocks.tobytes())
            f.write(values.astype("<f4").tobytes())
    print(f"wrote {out}: {len(records)} records")


if __name__ == "__main__":
    main()
