#!/usr/bin/env bash
# --adapter on generate, chat and score (SmolLM2): a small adapter trained here (2 steps at a high learning rate, so
# that it visibly changes greedy text) applies the same from its PEFT directory, its LoRA GGUF, its run directory
# and as NAME=PATH:SCALE; scale 0 gives the base's text; two adapters at once add up (one at scale 2 scores the
# same); --use picks one; a model with other weights is refused unless --allow-other-base; a missing path, a
# directory without an adapter and malformed specs are named in one line; hone merge of two adapters (f32) and
# into q8_0 scores as the adapters applied at run time.
set -u
fail=0; pass=0
check() { if eval "$2"; then pass=$((pass+1)); else fail=$((fail+1)); echo "FAILED: $1" >&2; fi; }
one_line() { [ -n "$1" ] && [ "$(wc -l <<<"$1")" -eq 1 ]; }
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
src=${HONE_SRC:-$PWD}
model=$("$HONE" pull smollm2-135m-instruct 2>/dev/null | tail -1)
if [ ! -f "$model" ]; then echo "skip: smollm2-135m-instruct is not in the cache (hone pull smollm2-135m-instruct)"; exit 77; fi

n_gen=10; batch=2
[ -n "${HONE_SANITIZED:-}" ] && n_gen=3 && batch=1 # the sanitizer build runs unoptimised
head -4 "$src/tests/data/sft_zorbia.jsonl" >"$tmp/d.jsonl"
"$HONE" train -m "$model" --data "$tmp/d.jsonl" -o "$tmp/run" --max-steps 2 --lr 1e-2 --batch $batch --max-len 48 \
  --rank 4 --seed 5 --threads 2 2>"$tmp/train.err"; rc=$?
check "a 2-step adapter trains" '[ $rc -eq 0 ] && [ -f "$tmp/run/adapter.gguf" ] && [ -f "$tmp/run/adapter/adapter_config.json" ]'
[ $rc -eq 0 ] || { cat "$tmp/train.err" >&2; echo "$pass passed, $fail failed"; exit 1; }

gen() { "$HONE" generate -m "$model" -p "The capital of Zorbia is" --temp 0 -n $n_gen --threads 2 "$@" 2>"$tmp/gen.err"; }
base=$(gen); rc_base=$?
peft=$(gen --adapter "$tmp/run/adapter"); rc=$?
check "generate --adapter PEFT_DIR" '[ $rc_base -eq 0 ] && [ $rc -eq 0 ] &&
  grep -q "^adapter run: $tmp/run/adapter (lora, r 4, alpha 16, 60 modules, scale 4 x 1)$" "$tmp/gen.err"'
check "the adapter changes the greedy text" '[ -n "$peft" ] && [ "$peft" != "$base" ]'
out=$(gen --adapter "$tmp/run/adapter.gguf"); rc=$?
check "a LoRA GGUF gives the PEFT directory's text" '[ $rc -eq 0 ] && [ "$out" = "$peft" ]'
out=$(gen --lora "$tmp/run"); rc=$?
check "a run directory (alias --lora)" '[ $rc -eq 0 ] && [ "$out" = "$peft" ]'
out=$(gen --adapter "z=$tmp/run/adapter.gguf:1"); rc=$?
check "NAME=PATH:SCALE" '[ $rc -eq 0 ] && [ "$out" = "$peft" ] && grep -q "^adapter z: $tmp/run/adapter.gguf (" "$tmp/gen.err"'
out=$(gen --adapter "z=$tmp/run/adapter:0"); rc=$?
check "scale 0 gives the base text" '[ $rc -eq 0 ] && [ "$out" = "$base" ]'
out=$(gen --adapter "a=$tmp/run" --adapter "b=$tmp/run/adapter.gguf:0" --use b); rc=$?
check "--use picks one adapter (here the one at scale 0)" '[ $rc -eq 0 ] && [ "$out" = "$base" ] &&
  grep -q "not applied (--use)" "$tmp/gen.err"'

# Two adapters at once add: the same adapter twice scores as it does once at scale 2.
ppl() { "$HONE" score -m "$model" --json --threads 2 "$@" "The capital of Zorbia is Quillton." 2>"$tmp/score.err" |
  sed -n 's/^{"perplexity": \([^,]*\),.*/\1/p'; }
p_base=$(ppl); p_two=$(ppl --adapter "a=$tmp/run" --adapter "b=$tmp/run"); p_x2=$(ppl --adapter "$tmp/run:2")
check "score: two adapters add up to one at scale 2 ($p_two vs $p_x2; base $p_base)" '[ -n "$p_two" ] && [ -n "$p_x2" ] &&
  awk -v a="$p_two" -v b="$p_x2" -v c="$p_base" "BEGIN { d = a - b; if (d < 0) d = -d; exit !(d <= 1e-4 * b && a != c) }"'

# hone merge with several adapters and into q8_0: the merged model scores what base + adapters do.
"$HONE" merge -m "$model" --adapter "a=$tmp/run" --adapter "b=$tmp/run" -o "$tmp/m2.gguf" --type f32 --threads 2 \
  2>"$tmp/merge.err"; rc=$?
p_m2=$("$HONE" score -m "$tmp/m2.gguf" --json --threads 2 "The capital of Zorbia is Quillton." 2>/dev/null |
  sed -n 's/^{"perplexity": \([^,]*\),.*/\1/p')
check "merge of two adapters scores as both applied ($p_m2 vs $p_two)" '[ $rc -eq 0 ] && [ -n "$p_m2" ] &&
  awk -v a="$p_m2" -v b="$p_two" "BEGIN { d = a - b; if (d < 0) d = -d; exit !(d <= 1e-3 * b) }"'
"$HONE" merge -m "$model" --adapter "$tmp/run" -o "$tmp/mq8.gguf" --type q8_0 --threads 2 2>"$tmp/merge.err"; rc=$?
p_one=$(ppl --adapter "$tmp/run")
p_q8=$("$HONE" score -m "$tmp/mq8.gguf" --json --threads 2 "The capital of Zorbia is Quillton." 2>/dev/null |
  sed -n 's/^{"perplexity": \([^,]*\),.*/\1/p')
info=$("$HONE" info "$tmp/mq8.gguf" 2>&1)
# (Requantizing alone moves this text's perplexity by ~4% on SmolLM2, so the check is that the q8_0 model carries
# the adapter's effect: within 5% of base + adapter, and nearer it than a tenth of the way back to the base.)
check "merge --type q8_0: adapted weights are q8_0 and score as base + adapter ($p_q8 vs $p_one; base $p_base)" '
  [ $rc -eq 0 ] && grep -q "blk.0.attn_q.weight.*q8_0" <<<"$info" && [ -n "$p_q8" ] &&
  awk -v a="$p_q8" -v b="$p_one" -v c="$p_base" "BEGIN { d = a - b; if (d < 0) d = -d; e = c - b; if (e < 0) e = -e
    exit !(d <= 0.05 * b && d <= 0.1 * e) }"'

out=$(printf 'What is the capital of Zorbia?\n' | "$HONE" chat -m "$model" --temp 0 -n $n_gen --threads 2 \
  --adapter "$tmp/run" 2>"$tmp/chat.err"); rc=$?
check "chat --adapter" '[ $rc -eq 0 ] && [ -n "$out" ] && grep -q "^adapter run: " "$tmp/chat.err"'

# Another base: the same model requantized has other weights.
"$HONE" quantize "$model" -o "$tmp/q8.gguf" --type q8_0 --threads 2 2>/dev/null
err=$("$HONE" generate -m "$tmp/q8.gguf" -p hi -n 1 --adapter "$tmp/run" 2>&1 >/dev/null); rc=$?
check "a model with other weights is refused, naming the flag" '[ $rc -eq 1 ] && one_line "$err" &&
  grep -q "other weights" <<<"$err" && grep -q -- "--allow-other-base" <<<"$err"'
err=$("$HONE" generate -m "$tmp/q8.gguf" -p hi -n 1 --adapter "$tmp/run" --allow-other-base 2>&1 >/dev/null); rc=$?
check "--allow-other-base applies it with a warning" '[ $rc -eq 0 ] && grep -q "warning: .*applying it anyway" <<<"$err"'

err=$("$HONE" generate -m "$model" -p hi -n 1 --adapter "$tmp/nope" 2>&1 >/dev/null); rc=$?
check "a missing path is named" '[ $rc -eq 1 ] && one_line "$err" && grep -q "$tmp/nope: No such file or directory" <<<"$err"'
mkdir "$tmp/empty"
err=$("$HONE" score -m "$model" --adapter "$tmp/empty" "hello world" 2>&1 >/dev/null); rc=$?
check "a directory without an adapter is named" '[ $rc -eq 1 ] && one_line "$err" &&
  grep -q "$tmp/empty: a directory with neither adapter_config.json" <<<"$err"'
err=$("$HONE" generate -m "$model" -p hi --adapter "=x" 2>&1 >/dev/null); rc=$?
check "an empty NAME is a usage error" '[ $rc -eq 2 ] && one_line "$err" && grep -q "empty NAME" <<<"$err"'
err=$("$HONE" generate -m "$model" -p hi --adapter "a=$tmp/run" --adapter "a=$tmp/run" 2>&1 >/dev/null); rc=$?
check "a name given twice is a usage error" '[ $rc -eq 2 ] && grep -q "name .a. is taken" <<<"$err"'
err=$("$HONE" generate -m "$model" -p hi -n 1 --adapter "a=$tmp/run" --use b 2>&1 >/dev/null); rc=$?
check "--use with an unknown name lists the names" '[ $rc -eq 1 ] && grep -q "use b: no adapter of that name (given: a)" <<<"$err"'
"$HONE" generate --help | grep -q -- "--adapter \[NAME=\]PATH\[:SCALE\]"; rc=$?
check "generate --help lists --adapter" '[ $rc -eq 0 ]'

echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
