#!/usr/bin/env bash
# hone index --index ivfpq end to end on a collection large enough to train it: Tiny Shakespeare
# (../shared/data/text-corpus/tinyshakespeare/input.txt) in chunks of 24 tokens (over 10,000 chunks), indexed flat
# and ivfpq, then every 380th line of the play (86) asked of both (`hone ask --no-generate --json --k 10`): the
# share of the exact index's top 10 the ivfpq index also returns (recall@10 against exact; hone re-ranks ivfpq's
# 80 best candidates by their stored vectors), with 16 and 64 lists probed, and each index's size on disk and time
# to build. Chunk ids differ between the two databases: chunks are compared by text.
#
#   bash bench/rag_ivfpq.sh build/hone
# The benchmark unsets OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE (README, "Speed").
set -euo pipefail
HONE=$(realpath "${1:-build/hone}")
THREADS=${THREADS:-2}
text=$(dirname "$0")/../../shared/data/text-corpus/tinyshakespeare/input.txt
[ -f "$text" ] || { echo "rag_ivfpq: $text is absent (the shared datasets)" >&2; exit 1; }
unset OPENBLAS_CORETYPE OPENBLAS_L2_SIZE
export OMP_WAIT_POLICY=PASSIVE
"$HONE" pull all-minilm-l6-v2 >/dev/null
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cp "$text" "$tmp/shakespeare.txt"
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'); threads $THREADS; $(date -u +%F)"
for kind in flat ivfpq; do
    t0=$(date +%s.%N)
    "$HONE" index "$tmp/shakespeare.txt" --db "$tmp/$kind" --index $kind --chunk-tokens 24 --overlap 0 \
        --threads "$THREADS" 2>&1 | tail -1
    t1=$(date +%s.%N)
    printf '%s: built in %.1f s, index.faiss %d KiB, docs.sqlite %d KiB\n' $kind "$(echo "$t1 - $t0" | bc)" \
        $(($(stat -c %s "$tmp/$kind/index.faiss") / 1024)) $(($(stat -c %s "$tmp/$kind/docs.sqlite") / 1024))
done
# The questions: every 380th non-empty line of the play (86 lines).
grep -v '^\s*$' "$tmp/shakespeare.txt" | awk 'NR % 380 == 0' | head -100 > "$tmp/questions"
ask() { "$HONE" ask --db "$1" --no-generate --json --k 10 --threads "$THREADS" "${@:3}" "$2" 2>/dev/null; }
for width in 16 64; do
    : > "$tmp/pairs"
    while IFS= read -r q; do
        printf '%s\t%s\n' "$(ask "$tmp/flat" "$q")" "$(ask "$tmp/ivfpq" "$q" --search-width $width)" >> "$tmp/pairs"
    done < "$tmp/questions"
    python3 - "$tmp/pairs" "$width" <<'EOF'
import json, sys
rec = []
for line in open(sys.argv[1]):
    a, b = line.rstrip("\n").split("\t")
    exact = [c["text"] for c in json.loads(a)["chunks"]]
    approx = {c["text"] for c in json.loads(b)["chunks"]}
    rec.append(sum(t in approx for t in exact) / len(exact))
print("ivfpq, %s lists probed: recall@10 against exact %.3f over %d questions" % (sys.argv[2], sum(rec) / len(rec),
                                                                                     len(rec)))
EOF
done
