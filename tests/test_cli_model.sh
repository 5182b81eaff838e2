#!/usr/bin/env bash
# generate, chat and score on the real model: greedy output is deterministic, the speed line, stop strings, a chat
# answer, a conversation kept across turns, score --json (parses; perplexity = exp(-mean logprob)), the context
# error naming both lengths, usage errors.
set -u
fail=0; pass=0
check() { if eval "$2"; then pass=$((pass+1)); else fail=$((fail+1)); echo "FAILED: $1" >&2; fi; }

MODEL=$("$HONE" pull smollm2-135m-instruct 2>/dev/null | tail -1)
if [ ! -f "$MODEL" ]; then echo "skipped: smollm2-135m-instruct is not pulled"; exit 77; fi
# Under the sanitizers the kernels are unoptimised and slow: fewer tokens, and the checks that only test quality
# (not memory safety) are left to the release run.
SAN=${HONE_SANITIZED:-}
N=16; [ -n "$SAN" ] && N=2
full_only() { [ -z "$SAN" ]; }
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
G=("$HONE" generate -m "$MODEL" --threads 2)

"${G[@]}" -p "The capital of France is" -n $N --temp 0 >"$tmp/a" 2>"$tmp/a.err"; rc=$?
"${G[@]}" -p "The capital of France is" -n $N --temp 0 >"$tmp/b" 2>/dev/null
check "generate exits 0" '[ $rc -eq 0 ]'
check "greedy output is non-empty" '[ -n "$(tr -d "[:space:]" <"$tmp/a")" ]'
check "greedy output is deterministic" 'cmp -s "$tmp/a" "$tmp/b"'
check "last stderr line is the speed line" \
  'tail -n 1 "$tmp/a.err" | grep -Eq "^prompt: [0-9]+(\.[0-9]+)? tok/s, decode: [0-9]+(\.[0-9]+)? tok/s$"'
check "greedy continuation names Paris" 'grep -q Paris "$tmp/a"'

# Sampling with a seed is deterministic too.
full_only && {
"${G[@]}" -p "Once upon a time" -n $N --temp 0.9 --seed 5 >"$tmp/s1" 2>/dev/null
"${G[@]}" -p "Once upon a time" -n $N --temp 0.9 --seed 5 >"$tmp/s2" 2>/dev/null
check "seeded sampling is deterministic" 'cmp -s "$tmp/s1" "$tmp/s2" && [ -s "$tmp/s1" ]'
}

# --stop: the text before the first occurrence of the stop string, without it. The stop string is a word from the
# middle of the greedy text.
full=$(cat "$tmp/a")
stop=$(python3 -c 'import sys; w=sys.argv[1].split(); print(w[len(w)//2] if len(w) > 1 else "")' "$full")
if [ -n "$stop" ] && full_only; then
  "${G[@]}" -p "The capital of France is" -n $N --temp 0 --stop "$stop" >"$tmp/c" 2>/dev/null
  check "--stop cuts before the stop string" 'python3 - "$tmp/a" "$tmp/c" "$stop" <<"EOF"
import sys
full, cut, stop = open(sys.argv[1]).read(), open(sys.argv[2]).read(), sys.argv[3]
assert cut.endswith("\n") and cut[:-1] == full[:full.index(stop)], (full, cut, stop)
EOF'
fi

# --chat wraps the prompt in the template (exact path: the fast path's 8-bit noise can flip a near tie here).
if full_only; then
out=$("${G[@]}" --chat -p "What is the capital of France?" -n $((N * 2)) --temp 0 --exact 2>/dev/null); rc=$?
check "--chat answers a simple question" '[ $rc -eq 0 ] && grep -q Paris <<<"$out"'
fi

# chat: piped stdin, two turns, /exit; the second turn sees the first (kept in the cache).
chat_args=(--exact); [ -n "$SAN" ] && chat_args=(--system "Be brief.") # a short prompt under the sanitizers
out=$(printf 'Hi! My name is Alice.\nWhat is my name?\n/exit\nnot read\n' |
      "$HONE" chat -m "$MODEL" --threads 2 --temp 0 "${chat_args[@]}" -n $((N * 2)) 2>"$tmp/chat.err"); rc=$?
check "chat exits 0 at /exit" '[ $rc -eq 0 ]'
check "chat prints two answers" '[ $(grep -c . <<<"$out") -ge 2 ]'
if full_only; then
# The second answer equals a one-shot greedy run over the whole rendered conversation (the exact path gives the
# same logits in one pass or turn by turn), so appending a turn to the cache loses nothing. (A 135M model is too
# weak to test memory by asking it for the name.)
a1=$(sed -n 1p <<<"$out"); a2=$(sed -n 2p <<<"$out")
sys="You are a helpful AI assistant named SmolLM, trained by Hugging Face"
conv="<|im_start|>system
$sys<|im_end|>
<|im_start|>user
Hi! My name is Alice.<|im_end|>
<|im_start|>assistant
$a1<|im_end|>
<|im_start|>user
What is my name?<|im_end|>
<|im_start|>assistant
"
one=$("${G[@]}" -p "$conv" -n $((N * 2)) --temp 0 --exact --stop "<|im_end|>" 2>/dev/null | sed -n 1p)
check "chat turn 2 == one pass over the whole conversation" '[ -n "$a2" ] && [ "$one" = "$a2" ]'
fi
check "chat ends with the speed line" \
  'tail -n 1 "$tmp/chat.err" | grep -Eq "^prompt: [0-9.]+ tok/s, decode: [0-9.]+ tok/s$"'

# score --json: every line is JSON, the first logprob is null, and perplexity = exp(-mean logprob).
text='The "quick", back\slashes and a tab	here; 你好。'
"$HONE" score -m "$MODEL" --threads 2 --json "$text" >"$tmp/score.json" 2>"$tmp/score.err"; rc=$?
check "score --json exits 0" '[ $rc -eq 0 ]'
check "score --json: lines parse, perplexity = exp(-mean logprob)" 'python3 - "$tmp/score.json" <<"EOF"
import json, math, sys
rows = [json.loads(l) for l in open(sys.argv[1], encoding="utf-8")]
last, toks = rows[-1], rows[:-1]
assert toks[0]["logprob"] is None and all(isinstance(t["logprob"], float) for t in toks[1:])
assert all(isinstance(t["id"], int) and isinstance(t["piece"], str) for t in toks)
lp = [t["logprob"] for t in toks[1:]]
assert last["tokens"] == len(toks), (last, len(toks))
assert abs(last["perplexity"] - math.exp(-sum(lp) / len(lp))) <= 1e-6 * last["perplexity"], last
assert toks[-1]["piece"] == "。" and "\t" in [t["piece"] for t in toks]
EOF'
printf 'Paris is the capital of France.\n' >"$tmp/data.txt"
out=$("$HONE" score -m "$MODEL" --threads 2 --data "$tmp/data.txt"); rc=$?
check "score text mode: table and perplexity line" '[ $rc -eq 0 ] && tail -n 1 <<<"$out" | grep -Eq "^perplexity: [0-9.]+ over [0-9]+ tokens$"'

# A prompt longer than --ctx: one line naming both lengths, exit 1.
err=$("${G[@]}" -p "one two three four five six seven eight nine ten eleven twelve" --ctx 8 -n 1 2>&1 >/dev/null); rc=$?
check "prompt longer than --ctx: one line naming both lengths" \
  '[ $rc -eq 1 ] && [ $(wc -l <<<"$err") -eq 1 ] && grep -q "12 tokens" <<<"$err" && grep -q "context of 8 tokens" <<<"$err"'
err=$("$HONE" score -m "$MODEL" --ctx 4 "one two three four five six" 2>&1 >/dev/null); rc=$?
check "score text longer than --ctx" '[ $rc -eq 1 ] && grep -q "6 tokens" <<<"$err" && grep -q "context of 4" <<<"$err"'

# Usage errors: exit 2 with one line.
for args in "generate -m $MODEL -p x --bogus" "generate -m $MODEL -p x --temp abc" "generate -m $MODEL" \
            "generate -p x" "generate -m $MODEL -p x --top-p 0" "score -m $MODEL" "score -m $MODEL --data f t" \
            "chat -m $MODEL --frobnicate" "generate -m $MODEL -p x -n"; do
  err=$("$HONE" $args 2>&1 >/dev/null </dev/null); rc=$?
  check "usage error: hone $args" '[ $rc -eq 2 ] && [ $(wc -l <<<"$err") -eq 1 ]'
done
out=$("$HONE" generate --help); rc=$?
check "generate --help" '[ $rc -eq 0 ] && grep -q -- "--repeat-penalty" <<<"$out"'

echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
