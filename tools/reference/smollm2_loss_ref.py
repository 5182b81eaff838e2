#!/usr/bin/env python3
"""The loss of one fixed batch on SmolLM2-135M-Instruct (Q4_1 GGUF), from Hugging Face transformers.

transformers loads the GGUF, dequantizes every tensor to fp32 and undoes llama.cpp's Q/K row permutation; the model
runs in fp32 on the CPU. The batch has two rows, right-padded to one length T: row 0 has every token in the loss
(a plain text), row 1 a chat exchange with only the assistant's reply and <|im_end|> in the loss; padding is never
in the loss. tests/test_train_golden.c runs hone's EXACT path on the same batch (hn_lm_objective) and requires a
relative difference <= 1e-3 (issue 3).

The loss: for every (b, t) with mask[b, t] = 1 (t >= 1), -log softmax(logits[b, t - 1])[ids[b, t]]; loss_sum is
their sum (in float64 from float32 logits), n_loss their count.

Regenerate (not run by `make test`):
    /root/.cache/hone/refvenv/bin/python tools/reference/smollm2_loss_ref.py \
        [~/.cache/hone/models/smollm2-135m-instruct/SmolLM2-135M-Instruct.Q4_1.gguf] [tests/data/smollm2_loss.bin]
Versions used for the committed file: transformers 5.24.0, torch 2.15.0, gguf 0.19.0, numpy 2.4.6.

File layout (little-endian): char magic[4] = "HNSL"; u32 version = 1; u32 B; u32 T; i32 ids[B*T]; i32 mask[B*T];
f64 loss_sum; u32 n_loss.
"""
import os
import struct
import sys

import numpy as np
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

TEXT = ("The old lighthouse keeper climbed the stairs every evening to light the lamp. Ships far out at sea "
        "watched for its beam and steered away from the rocks below.")
PROMPT = "<|im_start|>user\nWhat colour is the sky on a clear day?<|im_end|>\n<|im_start|>assistant\n"
REPLY = "On a clear day the sky is blue, because air scatters blue light more than red light."


def main():
    default_gguf = os.path.expanduser(
        "~/.cache/hone/models/smollm2-135m-instruct/SmolLM2-135M-Instruct.Q4_1.gguf")
    gguf_path = sys.argv[1] if len(sys.argv) > 1 else default_gguf
    out_path = sys.argv[2] if len(sys.argv) > 2 else "tests/data/smollm2_loss.bin"
    d, f = os.path.split(os.path.abspath(gguf_path))
    tok = AutoTokenizer.from_pretrained(d, gguf_file=f)
    model = AutoModelForCausalLM.from_pretrained(d, gguf_file=f, dtype=torch.float32)
    model.eval()

    row0 = tok.encode(TEXT, add_special_tokens=False)
    p = tok.encode(PROMPT, add_special_tokens=False)
    r = tok.encode(REPLY, add_special_tokens=False) + tok.encode("<|im_end|>", add_special_tokens=False)
    row1 = p + r
    T = max(len(row0), len(row1))
    ids = np.zeros((2, T), dtype=np.int64)
    mask = np.zeros((2, T), dtype=np.int32)
    ids[0, :len(row0)] = row0
    mask[0, 1:len(row0)] = 1
    ids[1, :len(row1)] = row1
    mask[1, len(p):len(row1)] = 1
    with torch.no_grad():
        logits = model(torch.tensor(ids)).logits.double()  # (B, T, V)
    logp = torch.log_softmax(logits, dim=-1)
    loss_sum, n = 0.0, 0
    for b in range(2):
        for t in range(1, T):
            if mask[b, t]:
                loss_sum -= float(logp[b, t - 1, ids[b, t]])
                n += 1
    out = bytearray(b"HNSL") + struct.pack("<III", 1, 2, T)
    out += ids.astype("<i4").tobytes() + mask.astype("<i4").tobytes() + struct.pack("<dI", loss_sum, n)
    with open(out_path + ".tmp", "wb") as fp:
        fp.write(out)
    os.replace(out_path + ".tmp", out_path)
    print(f"wrote {out_path}: B 2, T {T}, {n} loss tokens, mean loss {loss_sum / n:.6f}", file=sys.stderr)


if __name__ == "__main__":
    main()
