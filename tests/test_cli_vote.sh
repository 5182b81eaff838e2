#!/usr/bin/env bash
# hone vote on SmolLM2 with a few GSM8K questions (copied from ../shared/data at run time; skipped without it):
# three voters (the model, and the model with a LoRA adapter trained here in 2 steps, at scale 1 and 0.5) answer
# each question; the --json output must agree with itself: each voted answer is the (weighted) majority of the
# voters' answers as this test counts it, gold answers are GSM8K's "#### N", and every accuracy is the counted
# fraction. Then the broken inputs: a missing file, a line that is not JSON, a line without a question, --weights
# of the wrong count, an unknown model, a regex that does not compile: one line each and a non-zero exit.
set -u
fail=0; pass=0
check() { if eval "$2"; then pass=$((pass+1)); else fail=$((fail+1)); echo "FAILED: $1" >&2; fi; }
one_line() { [ -n "$1" ] && [ "$(wc -l <<<"$1")" -eq 1 ]; }
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
src=${HONE_SRC:-$PWD}
gsm8k="$src/../shared/data/gsm8k/train.jsonl"
if [ ! -f "$gsm8k" ]; then echo "skip: $gsm8k is absent (the shared data sets sit beside the checkout)"; exit 77; fi
model=$("$HONE" pull smollm2-135m-instruct 2>/dev/null | tail -1)
if [ ! -f "$model" ]; then echo "skip: smollm2-135m-instruct is not in the cache (hone pull smollm2-135m-instruct)"; exit 77; fi

n_q=4; n_w=2; max_tok=40; batch=2
[ -n "${HONE_SANITIZED:-}" ] && n_q=2 && n_w=1 && max_tok=12 && batch=1 # the sanitizer build runs unoptimised
head -$n_q "$gsm8k" >"$tmp/q.jsonl"
head -4 "$src/tests/data/sft_zorbia.jsonl" >"$tmp/d.jsonl"
"$HONE" train -m "$model" --data "$tmp/d.jsonl" -o "$tmp/run" --max-steps 2 --lr 1e-2 --batch $batch --max-len 48 \
  --rank 4 --seed 5 --threads 2 2>"$tmp/train.err"; rc=$?
check "a 2-step adapter trains" '[ $rc -eq 0 ] && [ -f "$tmp/run/adapter/adapter_config.json" ]'
[ $rc -eq 0 ] || { cat "$tmp/train.err" >&2; echo "$pass passed, $fail failed"; exit 1; }

# The output checked against the data: CHECKER OUT.jsonl DATA.jsonl N_VOTERS WEIGHTS(comma list or "") [regex]
consistent() {
  python3 - "$@" <<"EOF"
import json, sys
out, data, nv, weights = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
w = [float(x) for x in weights.split(",")] if weights else [1.0] * nv
rows = [json.loads(l) for l in open(out)]
summary = rows[-1]["summary"]
rows = rows[:-1]
qs = [json.loads(l) for l in open(data) if l.strip()]
def num(s):
    try: return float(s.strip().lstrip("$").replace(",", ""))
    except ValueError: return None
def same(a, g):
    if a is None or g is None: return False
    x, y = num(a), num(g)
    return x == y if x is not None and y is not None else a.strip() == g.strip()
def majority(ans):  # the first-seen answer with the largest weight; None when all abstain
    best, score = None, None
    for i, a in enumerate(ans):
        if a is None or any(b is not None and b.strip() == a.strip() for b in ans[:i]): continue
        s = sum(w[j] for j, b in enumerate(ans) if b is not None and b.strip() == a.strip())
        if score is None or s > score: best, score = a, s
    return best
bad = []
assert len(rows) == len(qs), f"{len(rows)} rows for {len(qs)} questions"
correct = [0] * (nv + 1)
for r, q in zip(rows, qs):
    gold = q["answer"].split("####")[-1].strip()
    if r["question"] != q["question"]: bad.append("question text differs")
    if r["gold"] != gold: bad.append(f"gold {r['gold']!r} is not GSM8K's {gold!r}")
    if len(r["answers"]) != nv: bad.append(f"{len(r['answers'])} answers for {nv} voters")
    m = majority(r["answers"])
    if r["voted"] != m: bad.append(f"voted {r['voted']!r}, the majority of {r['answers']} is {m!r}")
    for k, a in enumerate(r["answers"]): correct[k] += same(a, gold)
    correct[nv] += same(r["voted"], gold)
n = len(qs)
if summary["questions"] != n or summary["with_gold"] != n: bad.append(f"summary counts {summary}")
for k, v in enumerate(summary["voters"]):
    if v["correct"] != correct[k] or abs(v["accuracy"] - correct[k] / n) > 1e-12 or abs(v["weight"] - w[k]) > 1e-6:
        bad.append(f"voter {k}: {v}, counted {correct[k]}/{n}")
v = summary["voted"]
if v["correct"] != correct[nv] or abs(v["accuracy"] - correct[nv] / n) > 1e-12:
    bad.append(f"voted: {v}, counted {correct[nv]}/{n}")
if len(summary["voters"]) != nv: bad.append("voters in the summary")
print("\n".join(bad), file=sys.stderr)
print(" ".join(str(r["answers"]) for r in rows), file=sys.stderr)
sys.exit(1 if bad else 0)
EOF
}

vote() { "$HONE" vote -m "$model" --adapter "a=$tmp/run/adapter" --adapter "h=$tmp/run/adapter:0.5" --data "$tmp/q.jsonl" \
  --max-tokens $max_tok --threads 2 "$@"; }
vote --json >"$tmp/out.jsonl" 2>"$tmp/vote.err"; rc=$?
check "three voters answer every question (rc $rc: $(tail -1 "$tmp/vote.err"))" '[ $rc -eq 0 ] &&
  [ "$(wc -l <"$tmp/out.jsonl")" -eq $((n_q + 1)) ]'
check "--json: voted answers are the majority, accuracies the counted fractions" \
  'consistent "$tmp/out.jsonl" "$tmp/q.jsonl" 3 ""'
check "the voters are named" 'grep -q "\"name\":\"$model+a\"" "$tmp/out.jsonl" &&
  grep -q "\"adapter\":\"h\"" "$tmp/out.jsonl"'

# Weights, a regex and plain prompts: the first questions.
head -$n_w "$tmp/q.jsonl" >"$tmp/q2.jsonl"
"$HONE" vote -m "$model" --adapter "a=$tmp/run/adapter" --adapter "h=$tmp/run/adapter:0.5" --data "$tmp/q2.jsonl" \
  --max-tokens $max_tok --threads 2 --weights 0.5,0.25,1 --regex '(\d+)' --no-chat --json >"$tmp/w.jsonl" \
  2>"$tmp/w.err"; rc=$?
check "--weights with --regex and --no-chat (rc $rc: $(tail -1 "$tmp/w.err"))" '[ $rc -eq 0 ] &&
  consistent "$tmp/w.jsonl" "$tmp/q2.jsonl" 3 0.5,0.25,1'

out=$("$HONE" vote -m "$model" --data "$tmp/q2.jsonl" --limit 1 --max-tokens 4 --threads 2 2>/dev/null); rc=$?
check "the text output ends with the table" '[ $rc -eq 0 ] && grep -q "^voted  *[01]/1 " <<<"$out" &&
  grep -q "^1: voted " <<<"$out"'

# Broken inputs: one line and a non-zero exit each.
err=$("$HONE" vote -m "$model" --data "$tmp/none.jsonl" 2>&1 >/dev/null); rc=$?
check "a missing file: $err" '[ $rc -ne 0 ] && one_line "$err" && grep -q "none.jsonl" <<<"$err"'
{ head -1 "$tmp/q.jsonl"; echo '{"question": "x", oops}'; } >"$tmp/bad.jsonl"
err=$("$HONE" vote -m "$model" --data "$tmp/bad.jsonl" 2>&1 >/dev/null); rc=$?
check "a line that is not JSON: $err" '[ $rc -ne 0 ] && one_line "$err" && grep -q "bad.jsonl:2: not JSON" <<<"$err"'
{ head -1 "$tmp/q.jsonl"; echo; echo '{"text": "What is 2+2?", "answer": "4"}'; } >"$tmp/noq.jsonl"
err=$("$HONE" vote -m "$model" --data "$tmp/noq.jsonl" 2>&1 >/dev/null); rc=$?
check "a line without a question: $err" '[ $rc -ne 0 ] && one_line "$err" && grep -q "noq.jsonl:3: .*\"question\"" <<<"$err"'
echo '{"question": "What is 2+2?", "answer": [4]}' >"$tmp/ans.jsonl"
err=$("$HONE" vote -m "$model" --data "$tmp/ans.jsonl" 2>&1 >/dev/null); rc=$?
check "an answer that is neither text nor a number: $err" '[ $rc -ne 0 ] && one_line "$err" &&
  grep -q "ans.jsonl:1: \"answer\"" <<<"$err"'
err=$("$HONE" vote -m "$model" -m "$model" --weights 1,2,3 --data "$tmp/q.jsonl" 2>&1 >/dev/null); rc=$?
check "--weights of the wrong count: $err" '[ $rc -eq 2 ] && one_line "$err" && grep -q "3 numbers for 2 voters" <<<"$err"'
err=$("$HONE" vote -m "$model" --weights 1,x --data "$tmp/q.jsonl" 2>&1 >/dev/null); rc=$?
check "--weights that are not numbers: $err" '[ $rc -eq 2 ] && one_line "$err"'
err=$("$HONE" vote -m "$model" -m no-such-model-anywhere --data "$tmp/q2.jsonl" --max-tokens 2 --threads 2 2>&1 >/dev/null); rc=$?
check "an unknown model: $err" '[ $rc -ne 0 ] && one_line "$err" && grep -q "no-such-model-anywhere" <<<"$err"'
err=$("$HONE" vote -m "$model" --regex 'answer (\d+' --data "$tmp/q.jsonl" 2>&1 >/dev/null); rc=$?
check "a regex that does not compile: $err" '[ $rc -ne 0 ] && one_line "$err" && grep -q "answer (" <<<"$err" &&
  grep -q offset <<<"$err"'
err=$("$HONE" vote -m "$model" --adapter "$tmp/nowhere" --data "$tmp/q2.jsonl" --threads 2 2>&1 >/dev/null); rc=$?
check "an adapter that is not there: $err" '[ $rc -ne 0 ] && one_line "$err" && grep -q "nowhere" <<<"$err"'
err=$("$HONE" vote --data "$tmp/q.jsonl" 2>&1 >/dev/null); rc=$?
check "no model: $err" '[ $rc -eq 2 ] && one_line "$err"'

echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
