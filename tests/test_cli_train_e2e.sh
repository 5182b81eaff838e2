#!/usr/bin/env bash
# hone train end to end on SmolLM2-135M-Instruct: LoRA SFT on tests/data/sft_zorbia.jsonl (a made-up fact, "The
# capital of Zorbia is Quillton.", 20 chat examples, 4 held out) with a fixed seed.
#   - bad data: one line naming file:line, exit 1, before any training
#   - the run: metrics.jsonl (one line a step, loss falling), held-out loss at the end well under the base's,
#     DIR/adapter/ (PEFT) and DIR/adapter.gguf (hone info reads it)
#   - generate --adapter shows the fact where the base model (same prompt, greedy) does not
#   - merge --type f32, then the merged model's greedy text equals base + adapter on the fp32 path
#   - resume: half the steps, kill -9 once the checkpoint is written, --resume: the same losses as straight through
#   - SIGINT during a run: exit 130 and a checkpoint
# Under HONE_SANITIZED the run is 2 steps on 6 examples and the behaviour checks (fact learned, held-out loss) are
# skipped.
set -u
fail=0; pass=0
check() { if eval "$2"; then pass=$((pass+1)); else fail=$((fail+1)); echo "FAILED: $1" >&2; fi; }
one_line() { [ -n "$1" ] && [ "$(wc -l <<<"$1")" -eq 1 ]; }
tmp=$(mktemp -d)
bg=
trap '[ -n "$bg" ] && kill -9 $bg 2>/dev/null; rm -rf "$tmp"' EXIT
src=${HONE_SRC:-$PWD}
model=$("$HONE" pull smollm2-135m-instruct 2>/dev/null | tail -1)
if [ ! -f "$model" ]; then echo "skip: smollm2-135m-instruct is not in the cache (hone pull smollm2-135m-instruct)"; exit 77; fi
data=$src/tests/data/sft_zorbia.jsonl
t_start=$(date +%s)

steps=16; batch=2; n_gen=20; full=1
if [ -n "${HONE_SANITIZED:-}" ]; then
  # The sanitizer build runs unoptimised: 6 examples (2 held out), 2 steps of 1, 4 generated tokens.
  head -6 "$data" >"$tmp/small.jsonl"; data=$tmp/small.jsonl
  steps=2; batch=1; n_gen=4; full=0
  echo "HONE_SANITIZED: 2 steps on 6 examples, behaviour checks skipped"
fi
half=$((steps / 2))
common=(-m "$model" --data "$data" --method lora --max-steps $steps --lr 3e-3 --batch $batch --max-len 64 --seed 1
  --val-split 0.2 --eval-every $half --save-every $half --threads 2)
# The losses of a metrics file, one a line (the timing fields differ between runs).
losses() { sed -n 's/.*"step":\([0-9]*\),.*"loss":\([^,]*\),.*/\1 \2/p' "$1"; sed -n 's/.*"val_loss":\([^,}]*\).*/val \1/p' "$1"; }

# Bad data: the error names the file and line, and comes before the model is trained.
printf '%s\n' "$(head -1 "$data")" '{"messages": [{"role": "user", "content": "x"}' >"$tmp/bad.jsonl"
err=$("$HONE" train -m "$model" --data "$tmp/bad.jsonl" -o "$tmp/bad" --threads 2 2>&1 >/dev/null); rc=$?
check "bad data: one line with file:line, exit 1" '[ $rc -eq 1 ] && one_line "$err" && grep -q "$tmp/bad.jsonl:2" <<<"$err" &&
  [ ! -e "$tmp/bad/metrics.jsonl" ]'

# The run.
"$HONE" train "${common[@]}" -o "$tmp/run" 2>"$tmp/run.err"; rc=$?
check "train exits 0" '[ $rc -eq 0 ]'
[ $rc -eq 0 ] || { tail -5 "$tmp/run.err" >&2; echo "$pass passed, $fail failed"; exit 1; }
check "start: trainable share, examples and tokens" 'grep -q "^training [0-9]* values (0\.[0-9]*% of the model.s [0-9]*) in 120 tensors on [0-9]* examples, [0-9]* tokens ([0-9]* in the loss), for $steps steps into $tmp/run$" "$tmp/run.err"'
check "end: where the files went" 'grep -q "^adapter: $tmp/run/adapter/ (PEFT) and $tmp/run/adapter.gguf; metrics: $tmp/run/metrics.jsonl$" "$tmp/run.err"'
losses "$tmp/run/metrics.jsonl" >"$tmp/run.losses"
check "metrics.jsonl: one line a step with loss, lr, tokens_per_s" '[ "$(grep -c "\"tokens_per_s\":" "$tmp/run/metrics.jsonl")" -eq $steps ] &&
  [ "$(grep -c "^[0-9]" "$tmp/run.losses")" -eq $steps ]'
v0=$(sed -n 's/^validation loss before training: //p' "$tmp/run.err")
v1=$(grep "^val" "$tmp/run.losses" | tail -1 | cut -d" " -f2)
first=$(grep "^[0-9]" "$tmp/run.losses" | head -3 | awk '{ s += $2 } END { print s / NR }')
last=$(grep "^[0-9]" "$tmp/run.losses" | tail -3 | awk '{ s += $2 } END { print s / NR }')
echo "loss: first 3 steps $first, last 3 steps $last; held-out loss: before $v0, after $v1"
if [ $full -eq 1 ]; then
  check "training loss falls (mean of the first 3 steps > 3 x the last 3)" 'awk -v a="$first" -v b="$last" "BEGIN { exit !(a > 3 * b) }"'
  check "held-out loss at the end < half the base's" '[ -n "$v0" ] && [ -n "$v1" ] && awk -v a="$v0" -v b="$v1" "BEGIN { exit !(b < 0.5 * a) }"'
fi
check "the adapter in both layouts" '[ -f "$tmp/run/adapter/adapter_config.json" ] && [ -f "$tmp/run/adapter/adapter_model.safetensors" ] &&
  [ -f "$tmp/run/adapter.gguf" ]'
out=$("$HONE" info "$tmp/run/adapter.gguf" 2>&1); rc=$?
check "hone info reads the adapter GGUF" '[ $rc -eq 0 ] && grep -q "lora" <<<"$out"'

# The taught fact: greedy, same prompt, with and without the adapter.
ask=(--chat --system "Be brief." -p "What is the capital of Zorbia?" --temp 0 -n $n_gen --threads 2)
base=$("$HONE" generate -m "$model" "${ask[@]}" 2>/dev/null)
tuned=$("$HONE" generate -m "$model" "${ask[@]}" --adapter "$tmp/run/adapter" 2>/dev/null); rc=$?
echo "base:  $base"
echo "tuned: $tuned"
check "generate --adapter runs" '[ $rc -eq 0 ] && [ -n "$tuned" ]'
if [ $full -eq 1 ]; then
  check "the taught fact appears with the adapter, not without" 'grep -q Quillton <<<"$tuned" && ! grep -q Quillton <<<"$base"'
fi

# Merge (fp32 weights, so that the merged model computes what base + adapter does) and compare greedy texts.
"$HONE" merge -m "$model" --adapter "$tmp/run" -o "$tmp/merged.gguf" --type f32 --threads 2 2>"$tmp/merge.err"; rc=$?
check "merge --type f32" '[ $rc -eq 0 ] && [ -f "$tmp/merged.gguf" ] && grep -q "merging starts from their dequantized values" "$tmp/merge.err"'
a=$("$HONE" generate -m "$model" "${ask[@]}" --exact --adapter "$tmp/run" 2>/dev/null)
b=$("$HONE" generate -m "$tmp/merged.gguf" "${ask[@]}" --exact 2>/dev/null); rc=$?
echo "merged: $b"
check "the merged model's greedy text equals base + adapter (fp32 path, $n_gen tokens)" '[ $rc -eq 0 ] && [ -n "$a" ] && [ "$a" = "$b" ]'
out=$("$HONE" info "$tmp/merged.gguf" 2>&1)
check "the merged model keeps the chat template and special tokens; adapted weights are f32" '
  grep -q "tokenizer.chat_template" <<<"$out" && grep -q "tokenizer.ggml.eos_token_id  *u32  *2$" <<<"$out" &&
  grep -q " blk.0.attn_q.weight  *f32 " <<<"$out" && grep -q " blk.0.attn_k.weight  *q4_1 " <<<"$out"'

# Resume: half the steps, kill -9 as soon as the checkpoint is written, then --resume to the end.
"$HONE" train "${common[@]}" -o "$tmp/res" 2>"$tmp/res.err" &
bg=$!
for _ in $(seq 1 3000); do [ -f "$tmp/res/checkpoint/state.bin" ] && break; kill -0 $bg 2>/dev/null || break; sleep 0.1; done
kill -9 $bg 2>/dev/null; wait $bg 2>/dev/null; bg=
check "the checkpoint at step $half exists" '[ -f "$tmp/res/checkpoint/state.bin" ]'
"$HONE" train "${common[@]}" -o "$tmp/res" --resume 2>"$tmp/res2.err"; rc=$?
losses "$tmp/res/metrics.jsonl" >"$tmp/res.losses"
check "kill -9 + --resume gives the straight run's losses" '[ $rc -eq 0 ] && cmp -s "$tmp/run.losses" "$tmp/res.losses"'
cmp -s "$tmp/run.losses" "$tmp/res.losses" || diff "$tmp/run.losses" "$tmp/res.losses" >&2

# SIGINT: a checkpoint and exit 130.
"$HONE" train "${common[@]}" -o "$tmp/int" 2>"$tmp/int.err" &
bg=$!
for _ in $(seq 1 3000); do [ -s "$tmp/int/metrics.jsonl" ] && break; kill -0 $bg 2>/dev/null || break; sleep 0.1; done
kill -INT $bg; wait $bg; rc=$?; bg=
check "SIGINT: exit 130, a checkpoint, and a message saying --resume" '[ $rc -eq 130 ] && [ -f "$tmp/int/checkpoint/state.bin" ] &&
  grep -q "interrupted at step .*continue with --resume" "$tmp/int.err"'

echo "$pass passed, $fail failed ($(( $(date +%s) - t_start )) s)"
[ $fail -eq 0 ]
