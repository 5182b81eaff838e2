#!/usr/bin/env python3
"""The reference side of bench/rag_index.sh: the chunks `hone index` stored (read from its docs.sqlite) embedded by
sentence-transformers (all-MiniLM-L6-v2, normalised) and indexed by FAISS's Python package (IndexFlatIP), timed on
the same thread count; hone's stored vectors compared with sentence-transformers' (cosine), and recall@1/5/10 of the
questions counted as `hone eval --task retrieval` counts it (a retrieved chunk contains a gold answer).

    python bench/rag_index_ref.py --db DB --model DIR --questions Q.json --threads 2
Needs torch, sentence-transformers and faiss-cpu (the reference venv: ../shared/tools/ref-venv.sh, plus
`pip install faiss-cpu`). Prints one JSON object.
"""
import argparse
import json
import sqlite3
import time

import faiss
import numpy as np
import torch
from sentence_transformers import SentenceTransformer


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--db", required=True)
    ap.add_argument("--model", required=True, help="all-MiniLM-L6-v2 as a sentence-transformers directory")
    ap.add_argument("--questions", required=True, help="SQuAD-format JSON")
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    faiss.omp_set_num_threads(a.threads)
    con = sqlite3.connect(a.db + "/docs.sqlite")
    rows = con.execute("SELECT id, text, vec FROM chunks ORDER BY id").fetchall()
    ids = np.array([r[0] for r in rows], dtype=np.int64)
    texts = [r[1] for r in rows]
    hone_vecs = np.stack([np.frombuffer(r[2], dtype=np.float32) for r in rows])

    t0 = time.perf_counter()
    st = SentenceTransformer(a.model, device="cpu")
    load_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    vecs = st.encode(texts, batch_size=64, normalize_embeddings=True, convert_to_numpy=True)
    embed_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    index = faiss.IndexIDMap2(faiss.IndexFlatIP(vecs.shape[1]))
    index.add_with_ids(vecs.astype(np.float32), ids)
    index_s = time.perf_counter() - t0

    qas = [q for art in json.load(open(a.questions))["data"] for p in art["paragraphs"] for q in p["qas"]]
    qs = [q["question"] for q in qas]
    t0 = time.perf_counter()
    qv = st.encode(qs, batch_size=64, normalize_embeddings=True, convert_to_numpy=True)
    _, top = index.search(qv.astype(np.float32), 10)
    query_s = time.perf_counter() - t0
    text_of = dict(zip(ids.tolist(), texts))
    first = []  # the rank of the first chunk holding a gold answer, 0 if none in the 10
    for q, t in zip(qas, top):
        golds = [g["text"] for g in q["answers"]]
        first.append(next((r + 1 for r, i in enumerate(t.tolist()) if any(g in text_of[i] for g in golds)), 0))

    cos = np.sum(hone_vecs * vecs, axis=1) / np.linalg.norm(hone_vecs, axis=1) / np.linalg.norm(vecs, axis=1)
    out = {"chunks": len(texts), "tokens": int(sum(len(st.tokenizer(t)["input_ids"]) for t in texts)),
           "load_s": load_s, "embed_s": embed_s, "index_s": index_s, "questions": len(qs), "query_s": query_s,
           "cosine_min": float(cos.min()), "cosine_mean": float(cos.mean())}
    for k in (1, 5, 10):
        out["recall@%d" % k] = float(np.mean([0 < f <= k for f in first]))
    print(json.dumps(out))


if __name__ == "__main__":
    main()
