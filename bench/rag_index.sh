#!/usr/bin/env bash
# hone index beside its reference, sentence-transformers + FAISS in Python, on XQuAD's paragraphs (English part 1
# and Chinese, ../shared/data/xquad): hone indexes each file into a fresh flat database (its own report gives the
# embedding seconds; /usr/bin/time the peak memory), then bench/rag_index_ref.py embeds the very chunks hone stored
# with sentence-transformers (all-MiniLM-L6-v2, batch 64, normalised) on the same thread count, indexes them with
# faiss.IndexFlatIP, and reports its seconds, the cosine between hone's stored vectors and its own, and recall@k of
# the questions counted as `hone eval --task retrieval` counts it, which runs next on hone's database.
#
#   bash bench/rag_index.sh build/hone        (PYTHON= a Python with torch, sentence-transformers, faiss-cpu;
#                                             default: the reference venv of ../shared/tools/ref-venv.sh)
# OpenBLAS's pinned Haswell kernels run at half speed here: the benchmark unsets OPENBLAS_CORETYPE and
# OPENBLAS_L2_SIZE for both sides (README, "Speed").
set -euo pipefail
HONE=$(realpath "${1:-build/hone}")
PY=${PYTHON:-$HOME/.cache/hone/refvenv/bin/python}
THREADS=${THREADS:-2}
data=$(dirname "$0")/../../shared/data/xquad
[ -d "$data" ] || { echo "rag_index: $data is absent (the shared datasets)" >&2; exit 1; }
unset OPENBLAS_CORETYPE OPENBLAS_L2_SIZE
export OMP_WAIT_POLICY=PASSIVE
"$HONE" pull all-minilm-l6-v2 >/dev/null
model=$("$HONE" pull all-minilm-l6-v2 2>/dev/null | tail -1)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')
echo "machine: $(nproc) cores, $cpu; threads $THREADS; $(date -u +%F)"
printf '%-8s %7s %8s | %9s %9s %6s | %9s %6s | %8s %8s %8s | %8s %8s\n' file chunks tokens hone-emb st-emb ratio \
    hone-rss cosmin hone-r@1 hone-r@5 hone-r@10 ref-r@5 ref-r@10
for f in xquad.en.part1.json xquad.zh.json; do
    /usr/bin/time -f '%M' -o "$tmp/rss" "$HONE" index "$data/$f" --db "$tmp/db-$f" --threads "$THREADS" \
        2>"$tmp/index.err"
    emb=$(grep -o 'embedding [0-9.]* s' "$tmp/index.err" | cut -d' ' -f2)
    ev=$("$HONE" eval --task retrieval --db "$tmp/db-$f" --data "$data/$f" --json --threads "$THREADS" 2>/dev/null)
    ref=$("$PY" "$(dirname "$0")/rag_index_ref.py" --db "$tmp/db-$f" --model "$model" --questions "$data/$f" \
        --threads "$THREADS" 2>/dev/null)
    python3 - "$f" "$emb" "$(cat "$tmp/rss")" "$ev" "$ref" <<'EOF'
import json, sys
f, emb, rss = sys.argv[1], float(sys.argv[2]), int(sys.argv[3])
ev, ref = json.loads(sys.argv[4]), json.loads(sys.argv[5])
g = lambda d, *ks: next((d[k] for k in ks if k in d), float("nan"))
print("%-8s %7d %8d | %8.2fs %8.2fs %5.2fx | %6.0fMiB %6.4f | %8.3f %8.3f %8.3f | %8.3f %8.3f" % (
    f.split(".")[1], ref["chunks"], ref["tokens"], emb, ref["embed_s"], ref["embed_s"] / emb, rss / 1024,
    ref["cosine_min"], g(ev, "recall@1", "recall_at_1"), g(ev, "recall@5", "recall_at_5"),
    g(ev, "recall@10", "recall_at_10"), ref["recall@5"], ref["recall@10"]))
EOF
done
echo "ratio: sentence-transformers' embedding seconds / hone's (above 1: hone is faster)"
