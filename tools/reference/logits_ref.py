#!/usr/bin/env python3
"""Golden logits for SmolLM2-135M-Instruct (Q4_1 GGUF) from Hugging Face transformers.

transformers loads the GGUF, dequantizes every tensor to fp32 and undoes llama.cpp's Q/K row permutation; the model
then runs in fp32 on the CPU. For each prompt we store the token ids and, at every position, the top-20 logits
(indices and values) and the log-sum-exp over the full vocabulary. tests/test_model.c compares hone's exact fp32
path against this (same argmax everywhere, max abs diff on the top-20 stated and bounded).

Regenerate (not run by `make test`):
    /root/.cache/hone/refvenv/bin/python tools/reference/logits_ref.py \
        [~/.cache/hone/models/smollm2-135m-instruct/SmolLM2-135M-Instruct.Q4_1.gguf] [tests/data/smollm2_logits.bin]
Versions used for the committed file: transformers 5.24.0, torch 2.15.0, gguf 0.19.0, numpy 2.4.6, tokenizers 0.23.3.

Token ids come from transformers' tokenizer built from the same GGUF. Its conversion does not reproduce SmolLM2's
digit splitting, so the prompts contain no digits; the test also checks that hone's tokenizer gives the same ids.

File layout (little-endian):
    char magic[4] = "HNLG"; u32 version = 1; u32 n_prompts; u32 n_vocab; u32 top_k
    per prompt: u32 text_len; text bytes (UTF-8); u32 n_tokens; i32 ids[n_tokens];
                per position: i32 top_idx[top_k]; f32 top_val[top_k]; f32 logsumexp
"""
import os
import struct
import sys

import numpy as np
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

TOP_K = 20

CHATML = ("<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n"
          "<|im_start|>user\nWhat is the tallest mountain in the world?<|im_end|>\n"
          "<|im_start|>assistant\nThe tallest mountain in the world is Mount Everest, in the Himalayas.<|im_end|>\n")

PROMPTS = [
    "The capital of France is Paris. The capital of Germany is",
    "你好，请介绍一下你自己。",
    CHATML,
    # A longer passage, so that the fast-vs-exact agreement is measured over enough positions.
    "Once upon a time, in a small village at the edge of a great forest, there lived an old woodcutter and his "
    "daughter. Every morning the woodcutter took his axe and walked into the forest, and every evening he came home "
    "with a bundle of wood on his back. His daughter kept the house, tended the garden and fed the chickens. One "
    "winter the snow fell so deep that the woodcutter could not reach the trees, and the family had nothing left to "
    "burn. The girl said: let me go, I am light and the snow will carry me. Her father did not want her to go, but "
    "she went anyway, and what she found in the forest changed their lives for ever.",
]


def main():
    default_gguf = os.path.expanduser(
        "~/.cache/hone/models/smollm2-135m-instruct/SmolLM2-135M-Instruct.Q4_1.gguf")
    gguf_path = sys.argv[1] if len(sys.argv) > 1 else default_gguf
    out_path = sys.argv[2] if len(sys.argv) > 2 else "tests/data/smollm2_logits.bin"
    d, f = os.path.split(os.path.abspath(gguf_path))
    tok = AutoTokenizer.from_pretrained(d, gguf_file=f)
    model = AutoModelForCausalLM.from_pretrained(d, gguf_file=f, dtype=torch.float32)
    model.eval()
    n_vocab = model.config.vocab_size

    out = bytearray(b"HNLG")
    out += struct.pack("<IIII", 1, len(PROMPTS), n_vocab, TOP_K)
    for text in PROMPTS:
        ids = tok.encode(text, add_special_tokens=False)
        with torch.no_grad():
            logits = model(torch.tensor([ids])).logits[0].double()  # (T, V)
        lse = torch.logsumexp(logits, dim=-1)
        top = torch.topk(logits, TOP_K, dim=-1)
        raw = text.encode("utf-8")
        out += struct.pack("<I", len(raw)) + raw
        out += struct.pack("<I", len(ids)) + np.asarray(ids, dtype="<i4").tobytes()
        for t in range(len(ids)):
            out += np.asarray(top.indices[t].numpy(), dtype="<i4").tobytes()
            out += np.asarray(top.values[t].numpy(), dtype="<f4").tobytes()
            out += struct.pack("<f", float(lse[t]))
        print(f"{len(ids):4d} tokens  argmax[-1]={int(top.indices[-1][0])}  {text[:40]!r}", file=sys.stderr)
    with open(out_path + ".tmp", "wb") as fp:
        fp.write(out)
    os.replace(out_path + ".tmp", out_path)
    print(f"wrote {out_path} ({len(out)} bytes)", file=sys.stderr)


if __name__ == "__main__":
    main()
