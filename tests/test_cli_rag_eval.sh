#!/usr/bin/env bash
# hone eval --task retrieval and --task rag on XQuAD's English part (../shared/data/xquad; skipped without it):
# `hone index` reads the SQuAD file (one document a paragraph, all-MiniLM-L6-v2), then every question is retrieved
# and the JSON is checked against itself and the issue's target: recall@5 >= 0.8, recall@1 <= @5 <= @10, MRR between
# recall@10 / 10 and recall@1 ... recall@10, and recall@k and MRR recounted from the per-question ranks (--details).
# A few questions answered by SmolLM2 with and without retrieval: exact match and F1 in [0, 1], a gold answer and two
# answers for each. Broken inputs: no --db, no --data, a missing question file, an empty directory as --db, an
# embedding model that is not the database's: one line on stderr naming what is wrong, a non-zero exit.
# Under HONE_SANITIZED (make test-asan): XQuAD's first 3 articles, one question answered from one source.
set -u
fail=0; pass=0
check() { if eval "$2"; then pass=$((pass+1)); else fail=$((fail+1)); echo "FAILED: $1" >&2; fi; }
one_line() { [ -n "$1" ] && [ "$(wc -l <<<"$1")" -eq 1 ]; }
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
src=${HONE_SRC:-$PWD}
xq="$src/../shared/data/xquad/xquad.en.part1.json"
if [ ! -f "$xq" ]; then echo "skip: $xq is absent (the shared data sets sit beside the checkout)"; exit 77; fi
minilm=$("$HONE" pull all-minilm-l6-v2 2>/dev/null | tail -1)
if [ ! -e "$minilm" ]; then echo "skip: all-minilm-l6-v2 is not in the cache (hone pull all-minilm-l6-v2)"; exit 77; fi
n_rag=8; k_rag=2; max_new=12
if [ -n "${HONE_SANITIZED:-}" ]; then # the sanitizer build is slow: fewer paragraphs to embed, fewer answers
    python3 -c 'import json, sys; d = json.load(open(sys.argv[1])); d["data"] = d["data"][:3]
json.dump(d, open(sys.argv[2], "w"))' "$xq" "$tmp/xq.json"
    xq="$tmp/xq.json"; n_rag=1; k_rag=1; max_new=8
fi
n_q=$(python3 -c 'import json, sys
print(sum(len(p["qas"]) for a in json.load(open(sys.argv[1]))["data"] for p in a["paragraphs"]))' "$xq")

"$HONE" index "$xq" --db "$tmp/db" >"$tmp/index.out" 2>"$tmp/index.err"; rc=$?
check "hone index reads XQuAD's English part" '[ $rc -eq 0 ]'
[ $rc -eq 0 ] || { cat "$tmp/index.err" >&2; echo "$pass passed, $fail failed"; exit 1; }

out=$("$HONE" eval --task retrieval --db "$tmp/db" --data "$xq" --json --details 2>"$tmp/err"); rc=$?
check "eval --task retrieval --json: exit 0" '[ $rc -eq 0 ]'
[ $rc -eq 0 ] || cat "$tmp/err" >&2
verdict=$(python3 - "$out" "$n_q" <<"EOF"
import json, sys
j = json.loads(sys.argv[1])
ranks, n, k = j["ranks"], j["n"], j["k"]
want_n = int(sys.argv[2])
errs = []
if n != want_n or len(ranks) != n or k != 10: errs.append(f"n {n}, {len(ranks)} ranks, k {k}; want {want_n}, 10")
if not all(isinstance(r, int) and 0 <= r <= k for r in ranks): errs.append("a rank outside 0..k")
for at in (1, 5, 10):
    got = j[f"recall@{at}"]
    count = sum(1 for r in ranks if 0 < r <= at) / n
    if abs(got - count) > 1e-9: errs.append(f"recall@{at} {got}, counted {count}")
mrr = sum(1 / r for r in ranks if r) / n
if abs(j["mrr"] - mrr) > 1e-9: errs.append(f"mrr {j['mrr']}, counted {mrr}")
r1, r5, r10 = j["recall@1"], j["recall@5"], j["recall@10"]
if not (0 <= r1 <= r5 <= r10 <= 1): errs.append(f"recall not ordered: {r1} {r5} {r10}")
if not (r1 <= j["mrr"] <= r10 and j["mrr"] >= r10 / 10): errs.append(f"mrr {j['mrr']} outside its bounds")
if r5 < 0.8: errs.append(f"recall@5 {r5} below the issue's 0.8")
if j["index"] != "flat" or j["embed_model"] != "all-minilm-l6-v2" or j["chunks"] < 10:
    errs.append(f"database: {j['index']}, {j['embed_model']}, {j['chunks']} chunks")
print("; ".join(errs) if errs else "ok")
print(f"recall@1 {r1:.4f}, @5 {r5:.4f}, @10 {r10:.4f}, MRR {j['mrr']:.4f} on {n} questions", file=sys.stderr)
EOF
)
check "retrieval: recall and MRR agree with the ranks, recall@5 >= 0.8 ($verdict)" '[ "$verdict" = ok ]'

# The text form: the same figures, k 3 gives recall@1 and @3 only.
out=$("$HONE" eval --task retrieval --db "$tmp/db" --data "$xq" --limit 20 --k 3 2>/dev/null); rc=$?
has() { grep -q "$1" <<<"$out"; }
check "text output, --k 3: recall@1, recall@3, MRR@3, no recall@5" \
    '[ $rc -eq 0 ] && has "^retrieval on 20 questions" && has "recall@1 " && has "recall@3 " && has "MRR@3 " && ! has recall@5'

smollm=$("$HONE" pull smollm2-135m-instruct 2>/dev/null | tail -1)
if [ -e "$smollm" ]; then
    out=$("$HONE" eval --task rag --db "$tmp/db" --data "$xq" -m "$smollm" --limit $n_rag --k $k_rag --max-new $max_new --json \
          --details 2>"$tmp/err"); rc=$?
    check "eval --task rag: exit 0" '[ $rc -eq 0 ]'
    [ $rc -eq 0 ] || cat "$tmp/err" >&2
    verdict=$(python3 - "$out" $n_rag $k_rag <<"EOF"
import json, sys
j = json.loads(sys.argv[1])
errs, k = [], int(sys.argv[3])
if j["n"] != int(sys.argv[2]) or len(j["answers"]) != j["n"]: errs.append(f"n {j['n']}")
for side in ("with_retrieval", "without_retrieval"):
    for m in ("exact_match", "f1"):
        if not 0 <= j[side][m] <= 1: errs.append(f"{side}.{m} {j[side][m]}")
    if j[side]["exact_match"] > j[side]["f1"]: errs.append(f"{side}: exact match above F1")
for a in j["answers"]:
    if not (a["gold"] and isinstance(a["with"], str) and isinstance(a["without"], str) and 0 <= a["rank"] <= k):
        errs.append(f"answer {a}")
if not 0 < j["sources_used"] <= k: errs.append(f"sources_used {j['sources_used']}")
print("; ".join(errs) if errs else "ok")
print(f"rag: F1 {j['with_retrieval']['f1']:.3f} with retrieval, {j['without_retrieval']['f1']:.3f} without",
      file=sys.stderr)
EOF
)
    check "rag: exact match and F1 in [0, 1], each question answered twice ($verdict)" '[ "$verdict" = ok ]'
else
    echo "skipped the rag check: smollm2-135m-instruct is not in the cache (hone pull smollm2-135m-instruct)"
fi

# Broken inputs: one line, non-zero, naming what is wrong.
err=$("$HONE" eval --task retrieval --data "$xq" 2>&1 >/dev/null); rc=$?
check "no --db: usage error" '[ $rc -eq 2 ] && one_line "$err" && grep -q -- "--db" <<<"$err"'
err=$("$HONE" eval --task retrieval --db "$tmp/db" 2>&1 >/dev/null); rc=$?
check "no --data: usage error" '[ $rc -eq 2 ] && one_line "$err" && grep -q -- "--data" <<<"$err"'
err=$("$HONE" eval --task rag --db "$tmp/db" --data "$xq" 2>&1 >/dev/null); rc=$?
check "rag without -m: usage error" '[ $rc -eq 2 ] && one_line "$err" && grep -q -- "-m MODEL" <<<"$err"'
err=$("$HONE" eval --task retrieval --db "$tmp/db" --data "$tmp/none.json" 2>&1 >/dev/null); rc=$?
check "a missing question file: named ($err)" '[ $rc -eq 1 ] && one_line "$err" && grep -q "$tmp/none.json" <<<"$err"'
mkdir "$tmp/empty"
err=$("$HONE" eval --task retrieval --db "$tmp/empty" --data "$xq" 2>&1 >/dev/null); rc=$?
check "an empty directory as --db: named ($err)" '[ $rc -eq 1 ] && one_line "$err" && grep -q "$tmp/empty" <<<"$err"'
tiny="$src/tests/data/tiny_bert/tiny_bert.gguf"
err=$("$HONE" eval --task retrieval --db "$tmp/db" --data "$xq" --embed-model "$tiny" 2>&1 >/dev/null); rc=$?
check "another embedding model: both named ($err)" \
    '[ $rc -ne 0 ] && one_line "$err" && grep -q "all-minilm-l6-v2" <<<"$err" && grep -q "tiny_bert" <<<"$err"'
err=$("$HONE" eval --task retrieval --db "$tmp/db" --data "$xq" --k 0 2>&1 >/dev/null); rc=$?
check "--k 0: usage error" '[ $rc -eq 2 ] && one_line "$err" && grep -q -- "--k" <<<"$err"'
err=$("$HONE" eval --task summarize --db "$tmp/db" --data "$xq" 2>&1 >/dev/null); rc=$?
check "an unknown task: the choices" \
    '[ $rc -eq 2 ] && one_line "$err" && grep -q "classify, retrieval or rag" <<<"$err"'

echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
