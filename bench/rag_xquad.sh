#!/usr/bin/env bash
# bench/rag_xquad.sh HONE [DIR] — retrieval quality on XQuAD (issue: retrieval-augmented generation). XQuAD's English
# part 1 (632 questions, 120 paragraphs) and its Chinese set (1190 questions, 240 paragraphs) are each indexed twice
# with all-MiniLM-L6-v2 (`hone index FILE --db DB --index flat|hnsw`, one document a paragraph), every question is
# retrieved (`hone eval --task retrieval`, top 10: a question is found at rank r when the r-th chunk holds one of its
# gold answers), and SmolLM2-135M-Instruct answers a seeded subset of each set's questions greedily with the 5 best
# chunks as sources and without them (`hone eval --task rag`: SQuAD's exact match and token F1).
# Everything goes to DIR (default rag-xquad/): the databases, one JSON file a run, and the table DIR/results.txt.
# Env: N (questions answered a set, default 100), K (sources for rag, default 5), MAX_NEW (default 32), THREADS
# (default 2), DATA (default ../shared/data/xquad), LANGS (default "en zh"), EF (hnsw's search beam, default: the
# index's own, 64), SUMMARY_ONLY=1 (print the tables of a finished run in DIR again).
set -eu
hone=${1:?usage: bench/rag_xquad.sh HONE [DIR]}
dir=${2:-rag-xquad}
src=$(cd "$(dirname "$0")/.." && pwd)
data=${DATA:-$src/../shared/data/xquad}
n=${N:-100}; k=${K:-5}; max_new=${MAX_NEW:-32}; threads=${THREADS:-2}; langs=${LANGS:-en zh}
export OMP_WAIT_POLICY=PASSIVE
mkdir -p "$dir"
"$hone" pull all-minilm-l6-v2 >/dev/null
llm=$("$hone" pull smollm2-135m-instruct | tail -1)
ef=(); [ -n "${EF:-}" ] && ef=(--ef "$EF")

file_of() { case $1 in en) echo "$data/xquad.en.part1.json" ;; zh) echo "$data/xquad.zh.json" ;; esac; }

for lang in $langs; do
  [ -n "${SUMMARY_ONLY:-}" ] && break
  f=$(file_of "$lang")
  for kind in flat hnsw; do
    db="$dir/db-$lang-$kind"
    if [ ! -f "$db/docs.sqlite" ]; then
      t0=$(date +%s.%N)
      "$hone" index "$f" --db "$db" --index "$kind" --threads "$threads" >"$dir/index-$lang-$kind.out" 2>&1
      echo "indexed $f ($kind) in $(echo "$(date +%s.%N) - $t0" | bc) s" | tee -a "$dir/index-times.txt" >&2
    fi
    "$hone" eval --task retrieval --db "$db" --data "$f" --k 10 --threads "$threads" "${ef[@]}" --json --details \
      >"$dir/retrieval-$lang-$kind.json"
  done
  "$hone" eval --task rag --db "$dir/db-$lang-flat" --data "$f" -m "$llm" --k "$k" --limit "$n" --max-new "$max_new" \
    --threads "$threads" --json --details >"$dir/rag-$lang.json"
done

python3 - "$dir" "$langs" "$n" "$k" <<'EOF' | tee "$dir/results.txt"
import json, sys
d, langs, n, k = sys.argv[1], sys.argv[2].split(), sys.argv[3], sys.argv[4]
print("| set | index | questions | chunks | recall@1 | recall@5 | recall@10 | MRR@10 | questions/s |")
print("|-----|-------|-----------|--------|----------|----------|-----------|--------|-------------|")
for lang in langs:
    for kind in ("flat", "hnsw"):
        j = json.load(open(f"{d}/retrieval-{lang}-{kind}.json"))
        print(f"| {lang} | {kind} | {j['n']} | {j['chunks']} | {j['recall@1']:.4f} | {j['recall@5']:.4f} | "
              f"{j['recall@10']:.4f} | {j['mrr']:.4f} | {j['n'] / j['retrieve_s']:.0f} |")
print()
# Beside SQuAD's scores (the answer's first line): how often the gold answer appears anywhere in the answer
# (lower-cased), which counts the answers a model puts after a line like "The answer is:".
print(f"| set | n | answer in the {k} sources | EM with | F1 with | EM without | F1 without | anywhere with "
      "| without |")
print("|-----|---|-------------------------|---------|---------|------------|------------|---------------|---------|")
for lang in langs:
    j = json.load(open(f"{d}/rag-{lang}.json"))
    w, wo, a = j["with_retrieval"], j["without_retrieval"], j["answers"]
    anywhere = lambda side: sum(x["gold"].lower() in x[side].lower() for x in a) / len(a)
    print(f"| {lang} | {j['n']} | {j[f'recall@{k}']:.2f} | {w['exact_match']:.3f} | {w['f1']:.3f} | "
          f"{wo['exact_match']:.3f} | {wo['f1']:.3f} | {anywhere('with'):.2f} | {anywhere('without'):.2f} |")
EOF
