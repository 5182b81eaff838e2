#!/usr/bin/env python3
"""Compares `hone quantize --type q2_k|q3_k|q4_k|q5_k|q6_k` with llama.cpp's llama-quantize (its library, built in
~/.cache/hone/llama.cpp-build) on one GGUF: for each type, the tensor types, general.file_type and the tensor bytes.
A check to run by hand after changing tensor/kquant.c or cli/cmd_quantize.c (not run by `make test`: it needs the
llama.cpp build); tests/test_kquant.c checks the quantizers against ggml's output committed as golden data.

    /root/.cache/hone/refvenv/bin/python tools/reference/kquant_llamacpp_check.py build/hone [MODEL.gguf]

MODEL defaults to the pulled SmolLM2-135M-Instruct Q4_1 (llama-quantize requantizes it with allow_requantize).
Last run: all 272 tensors byte-identical for every type (hone's q2_k..q6_k = llama.cpp's Q2_K, Q3_K_S, Q4_K_M,
Q5_K_M, Q6_K).
"""
import os
import subprocess
import sys
import tempfile

import gguf
import numpy as np

SRC = os.environ.get("LLAMA_SRC", os.path.expanduser("~/.cache/hone/llama.cpp-src"))
BUILD = os.environ.get("LLAMA_BUILD", os.path.expanduser("~/.cache/hone/llama.cpp-build"))
MODEL = os.path.expanduser("~/.cache/hone/models/smollm2-135m-instruct/SmolLM2-135M-Instruct.Q4_1.gguf")
# hone's --type and llama.cpp's LLAMA_FTYPE for the same mix
TYPES = [("q2_k", 10), ("q3_k", 11), ("q4_k", 15), ("q5_k", 17), ("q6_k", 18)]

QUANTIZE_C = r"""
#include "llama.h"
#include <stdio.h>
#include <stdlib.h>
int main(int argc, char **argv) {
    llama_model_quantize_params p = llama_model_quantize_default_params();
    p.ftype = (enum llama_ftype)atoi(argv[3]);
    p.allow_requantize = true;
    p.nthread = 2;
    return llama_model_quantize(argv[1], argv[2], &p) != 0;
}
"""


def main():
    hone = sys.argv[1]
    model = sys.argv[2] if len(sys.argv) > 2 else MODEL
    bad = 0
    with tempfile.TemporaryDirectory() as d:
        src, exe = os.path.join(d, "q.c"), os.path.join(d, "llama_quantize")
        open(src, "w").write(QUANTIZE_C)
        libs = [os.path.join(BUILD, p) for p in ("src/libllama.a", "ggml/src/libggml.a", "ggml/src/libggml-cpu.a",
                                                 "ggml/src/libggml-base.a")]
        subprocess.run(["gcc", "-O1", "-I" + os.path.join(SRC, "include"), "-I" + os.path.join(SRC, "ggml/include"),
                        src, *libs, "-lstdc++", "-lm", "-fopenmp", "-lpthread", "-ldl", "-o", exe], check=True)
        for name, ftype in TYPES:
            ours, theirs = os.path.join(d, "hone.gguf"), os.path.join(d, "llama.gguf")
            subprocess.run([hone, "quantize", model, "-o", ours, "--type", name, "--threads", "2"], check=True,
                           stderr=subprocess.DEVNULL)
            subprocess.run([exe, model, theirs, str(ftype)], check=True, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
            a, b = gguf.GGUFReader(theirs), gguf.GGUFReader(ours)
            mine = {t.name: t for t in b.tensors}
            same = types = 0
            for t in a.tensors:
                u = mine.get(t.name)
                if u is None or u.tensor_type != t.tensor_type:
                    continue
                types += 1
                same += np.asarray(t.data).tobytes() == np.asarray(u.data).tobytes()
            ft = [int(r.fields["general.file_type"].parts[-1][0]) for r in (a, b)]
            ok = same == types == len(a.tensors) == len(b.tensors) and ft[0] == ft[1]
            bad += not ok
            print(f"{name}: {types} of {len(a.tensors)} tensor types and {same} tensors' bytes as llama-quantize's; "
                  f"file_type {ft[1]} (llama.cpp {ft[0]}){'' if ok else '  MISMATCH'}")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
