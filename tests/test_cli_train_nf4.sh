#!/usr/bin/env bash
# QLoRA through the CLI on SmolLM2-135M-Instruct: --quantize nf4 turns the base's linear weights into NF4 at load
# (tensor/nf4.h) and LoRA trains over them.
#   - the load reports what it saved ("nf4: X MiB of linear weights -> Y MiB (210 tensors)")
#   - score --quantize nf4: a perplexity near the stored weights' one
#   - train --quantize nf4 (and the recipe key `quantize: nf4`): LoRA SFT on tests/data/sft_zorbia.jsonl, the
#     training loss falls and the held-out loss ends well under the base's
#   - the adapter records the NF4 base: generate --quantize nf4 --adapter applies it; over the stored weights it is
#     "other weights" (as for any other quantization) unless --allow-other-base
#   - --quantize q4_0: a usage error
# Under HONE_SANITIZED the run is 2 steps on 6 examples and the behaviour checks are skipped.
set -u
fail=0; pass=0
check() { if eval "$2"; then pass=$((pass+1)); else fail=$((fail+1)); echo "FAILED: $1" >&2; fi; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
src=${HONE_SRC:-$PWD}
model=$("$HONE" pull smollm2-135m-instruct 2>/dev/null | tail -1)
if [ ! -f "$model" ]; then echo "skip: smollm2-135m-instruct is not in the cache (hone pull smollm2-135m-instruct)"; exit 77; fi
data=$src/tests/data/sft_zorbia.jsonl

steps=12; batch=2; full=1
if [ -n "${HONE_SANITIZED:-}" ]; then
  head -6 "$data" >"$tmp/small.jsonl"; data=$tmp/small.jsonl
  steps=2; batch=1; full=0
  echo "HONE_SANITIZED: 2 steps on 6 examples, behaviour checks skipped"
fi

# Usage errors.
err=$("$HONE" score -m "$model" --quantize q4_0 "Hello there" 2>&1); rc=$?
check "--quantize q4_0: usage error" '[ $rc -eq 2 ] && grep -q "quantize expects nf4 or none" <<<"$err"'
out=$("$HONE" train -m "$model" --data "$data" -o "$tmp/x" --quantize nf4 --print-config 2>&1); rc=$?
check "the recipe key quantize" '[ $rc -eq 0 ] && grep -q "^quantize: nf4$" <<<"$out"'

# score: the NF4 model's perplexity stays near the stored model's (SmolLM2's file is Q4_1, so NF4 quantizes a
# quantized model: a little worse, not broken).
text="The quick brown fox jumps over the lazy dog. Paris is the capital of France, and Berlin is the capital of Germany."
p0=$("$HONE" score -m "$model" --threads 2 "$text" 2>/dev/null | sed -n 's/^perplexity: \([0-9.]*\).*/\1/p')
out=$("$HONE" score -m "$model" --threads 2 --quantize nf4 "$text" 2>&1); rc=$?
p1=$(sed -n 's/^perplexity: \([0-9.]*\).*/\1/p' <<<"$out")
echo "perplexity: $p0 as stored, $p1 over NF4"
check "score --quantize nf4 reports the memory" '[ $rc -eq 0 ] && grep -q "^hone: nf4: [0-9]* MiB of linear weights -> [0-9]* MiB (210 tensors)$" <<<"$out"'
check "score --quantize nf4: perplexity within 1.5x of the stored weights'" '[ -n "$p0" ] && [ -n "$p1" ] &&
  awk -v a="$p0" -v b="$p1" "BEGIN { exit !(b < 1.5 * a && b > a / 1.5) }"'

# The run, from a recipe with quantize: nf4.
cat >"$tmp/qlora.yaml" <<EOF
model: $model
quantize: nf4
data: [$data]
output_dir: $tmp/run
max_steps: $steps
lr: 3e-3
batch_size: $batch
max_len: 64
seed: 1
val_split: 0.2
threads: 2
lora:
  target_modules: [all-linear]
EOF
"$HONE" train "$tmp/qlora.yaml" 2>"$tmp/run.err"; rc=$?
check "train over NF4 exits 0" '[ $rc -eq 0 ]'
[ $rc -eq 0 ] || { tail -5 "$tmp/run.err" >&2; echo "$pass passed, $fail failed"; exit 1; }
check "train reports the memory" 'grep -q "^hone: nf4: [0-9]* MiB of linear weights -> [0-9]* MiB (210 tensors)$" "$tmp/run.err"'
v0=$(sed -n 's/^validation loss before training: //p' "$tmp/run.err")
v1=$(sed -n 's/.*"val_loss":\([^,}]*\).*/\1/p' "$tmp/run/metrics.jsonl" | tail -1)
sed -n 's/.*"step":\([0-9]*\),.*"loss":\([^,]*\),.*/\2/p' "$tmp/run/metrics.jsonl" >"$tmp/losses"
first=$(head -3 "$tmp/losses" | awk '{ s += $1 } END { print s / NR }')
last=$(tail -3 "$tmp/losses" | awk '{ s += $1 } END { print s / NR }')
echo "loss over NF4: first 3 steps $first, last 3 steps $last; held-out loss: before $v0, after $v1"
check "one metrics line a step" '[ "$(wc -l <"$tmp/losses")" -eq $steps ]'
if [ $full -eq 1 ]; then
  check "training loss falls (first 3 steps > 2 x the last 3)" 'awk -v a="$first" -v b="$last" "BEGIN { exit !(a > 2 * b) }"'
  check "held-out loss at the end < half the base's" '[ -n "$v0" ] && [ -n "$v1" ] && awk -v a="$v0" -v b="$v1" "BEGIN { exit !(b < 0.5 * a) }"'
fi

# The adapter goes with the NF4 base; over the stored weights it needs --allow-other-base.
ask=(--chat --system "Be brief." -p "What is the capital of Zorbia?" --temp 0 -n 12 --threads 2)
tuned=$("$HONE" generate -m "$model" --quantize nf4 "${ask[@]}" --adapter "$tmp/run/adapter" 2>/dev/null); rc=$?
echo "tuned over NF4: $tuned"
check "generate --quantize nf4 --adapter runs" '[ $rc -eq 0 ] && [ -n "$tuned" ]'
if [ $full -eq 1 ]; then check "the taught fact" 'grep -q Quillton <<<"$tuned"'; fi
err=$("$HONE" generate -m "$model" "${ask[@]}" -n 2 --adapter "$tmp/run/adapter" 2>&1 >/dev/null); rc=$?
check "over the stored weights: other weights" '[ $rc -ne 0 ] && grep -q "other weights" <<<"$err"'
"$HONE" generate -m "$model" "${ask[@]}" -n 2 --adapter "$tmp/run/adapter" --allow-other-base >/dev/null 2>&1; rc=$?
check "--allow-other-base applies it anyway" '[ $rc -eq 0 ]'

echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
