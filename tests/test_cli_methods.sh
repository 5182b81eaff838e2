#!/usr/bin/env bash
# Every parameter-efficient method end to end on SmolLM2-135M-Instruct (issue 7): `hone train --method NAME` SFT on
# tests/data/sft_zorbia.jsonl (a made-up fact, 20 chat examples, 4 held out), fixed seed, a few steps each.
#   - each run ends with a held-out loss below the base's (its untrained start) and its adapter in DIR/adapter/
#     (PEFT's adapter_config.json with the method's peft_type, or hone's hone_adapter.json for bottleneck adapters)
#   - generate --adapter DIR (any method) runs; score --adapter gives the taught fact a lower perplexity than the base
#   - two adapters loaded at once, one chosen with --use: the same text as that adapter alone
#   - merge: IA3 and DoRA fold into the weights (greedy text equal to base + adapter on the fp32 path); prompt
#     tuning is refused with a message and no file
# Methods this build lacks are skipped by name. Under HONE_SANITIZED: three methods, 2 steps on 6 examples, behaviour
# checks off.
set -u
fail=0; pass=0
check() { if eval "$2"; then pass=$((pass+1)); else fail=$((fail+1)); echo "FAILED: $1" >&2; fi; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
src=${HONE_SRC:-$PWD}
model=$("$HONE" pull smollm2-135m-instruct 2>/dev/null | tail -1)
if [ ! -f "$model" ]; then echo "skip: smollm2-135m-instruct is not in the cache (hone pull smollm2-135m-instruct)"; exit 77; fi
data=$src/tests/data/sft_zorbia.jsonl
t_start=$(date +%s)
steps=12; batch=2; n_gen=12; full=1
if [ -n "${HONE_SANITIZED:-}" ]; then
  head -6 "$data" >"$tmp/small.jsonl"; data=$tmp/small.jsonl
  steps=2; batch=1; n_gen=3; full=0
  echo "HONE_SANITIZED: 2 steps on 6 examples, behaviour checks skipped"
fi
# name, lr, extra flags: each method's usual rate (prompt tuning trains a few embeddings and wants a large one).
methods=("dora 3e-3 --target-modules all-linear" "ia3 3e-2" "prompt-tuning 3e-1 --num-virtual-tokens 8"
  "p-tuning 1e-2 --num-virtual-tokens 8" "prefix-tuning 3e-2 --num-virtual-tokens 8" "adapter-houlsby 3e-3"
  "adapter-pfeiffer 3e-3")
# The sanitizer build runs unoptimised: three methods that cover the three places (a linear layer's input and
# output, the embedding) and --use / merge with them; the library tests cover every method there.
[ $full -eq 0 ] && methods=("ia3 3e-2" "prompt-tuning 3e-1 --num-virtual-tokens 8" "adapter-pfeiffer 3e-3")
ask=(--chat --system "Be brief." -p "What is the capital of Zorbia?" --temp 0 -n $n_gen --threads 2)
declare -A ran
fact="The capital of Zorbia is Quillton."
ppl() { "$HONE" score -m "$model" --json --threads 2 "$@" "$fact" 2>/dev/null | sed -n 's/.*"perplexity": *\([0-9.e+-]*\).*/\1/p'; }
p_base=$(ppl)
for spec in "${methods[@]}"; do
  read -r name lr extra <<<"$spec"
  dir=$tmp/$name
  OMP_WAIT_POLICY=PASSIVE "$HONE" train -m "$model" --data "$data" --method $name --max-steps $steps --lr $lr \
    --batch $batch --max-len 64 --seed 1 --val-split 0.2 --eval-every $steps --threads 2 $extra -o "$dir" \
    2>"$dir.err"; rc=$?
  if [ $rc -ne 0 ] && grep -q "is not in this build" "$dir.err"; then echo "$name: not in this build"; continue; fi
  check "$name: train exits 0" '[ $rc -eq 0 ]'
  [ $rc -eq 0 ] || { tail -3 "$dir.err" >&2; continue; }
  ran[$name]=1
  v0=$(sed -n 's/^validation loss before training: //p' "$dir.err")
  v1=$(sed -n 's/.*"val_loss":\([^,}]*\).*/\1/p' "$dir/metrics.jsonl" | tail -1)
  n=$(sed -n 's/^training \([0-9]*\) values.*/\1/p' "$dir.err")
  echo "$name: $n trainable values; held-out loss $v0 -> $v1"
  if [ $full -eq 1 ]; then
    check "$name: held-out loss below the untrained start's" 'awk -v a="$v0" -v b="$v1" "BEGIN { exit !(b < a - 0.05) }"'
  fi
  if [[ $name == adapter-* ]]; then
    check "$name: hone's adapter format" '[ -f "$dir/adapter/hone_adapter.json" ] && grep -q "\"$name\"" "$dir/adapter/hone_adapter.json"'
  else
    pt=$(tr a-z- A-Z_ <<<"$name"); [ $name = dora ] && pt=LORA
    check "$name: a PEFT directory (peft_type $pt)" '[ -f "$dir/adapter/adapter_model.safetensors" ] &&
      grep -q "\"peft_type\": \"$pt\"" "$dir/adapter/adapter_config.json"'
  fi
  p=$(ppl --adapter "$dir")
  echo "$name: perplexity of the fact $p_base -> $p"
  # Prefix tuning starts far from the base (PEFT's N(0, 1) prefixes as keys and values: held-out loss ~7.6 against
  # the base's ~2.0) and a dozen steps bring it below its own start, not yet below the base.
  if [ $full -eq 1 ] && [ $name != prefix-tuning ]; then
    check "$name: score --adapter: the fact's perplexity below the base's" '[ -n "$p" ] && awk -v a="$p_base" -v b="$p" "BEGIN { exit !(b < a) }"'
  fi
  out=$("$HONE" generate -m "$model" "${ask[@]}" --adapter "$dir" 2>"$dir.gen.err"); rc=$?
  echo "$name: $out"
  check "$name: generate --adapter runs and says which method it loaded" '[ $rc -eq 0 ] && [ -n "$out" ] &&
    grep -q "($name, [0-9]* values)\|(lora, r" "$dir.gen.err"'
done

# Two adapters over one base, one chosen per call: the same text as that adapter alone.
if [ -n "${ran[ia3]:-}" ] && [ -n "${ran[prompt-tuning]:-}" ]; then
  alone=$("$HONE" generate -m "$model" "${ask[@]}" --adapter "$tmp/prompt-tuning" 2>/dev/null)
  alone_a=$("$HONE" generate -m "$model" "${ask[@]}" --adapter "$tmp/ia3" 2>/dev/null)
  [ $full -eq 1 ] && check "the two adapters answer differently (else --use could not be told apart)" '[ -n "$alone" ] && [ "$alone" != "$alone_a" ]'
  both=$("$HONE" generate -m "$model" "${ask[@]}" --adapter a="$tmp/ia3" --adapter b="$tmp/prompt-tuning" --use b 2>"$tmp/use.err"); rc=$?
  check "--use b among two: b's text alone" '[ $rc -eq 0 ] && [ -n "$both" ] && [ "$both" = "$alone" ] &&
    grep -q "adapter a: .*not applied (--use)" "$tmp/use.err"'
  both=$("$HONE" generate -m "$model" "${ask[@]}" --adapter a="$tmp/ia3" --adapter b="$tmp/prompt-tuning" --use a 2>/dev/null)
  check "--use a among two: a's text alone" '[ -n "$both" ] && [ "$both" = "$alone_a" ]'
fi

# Merging: where the method allows it, the merged model computes base + adapter; where not, a refusal.
for name in ia3 dora; do
  [ -n "${ran[$name]:-}" ] || continue
  "$HONE" merge -m "$model" --adapter "$tmp/$name" -o "$tmp/$name.gguf" --type f32 --threads 2 2>"$tmp/$name.merge.err"; rc=$?
  a=$("$HONE" generate -m "$model" "${ask[@]}" --exact --adapter "$tmp/$name" 2>/dev/null)
  b=$("$HONE" generate -m "$tmp/$name.gguf" "${ask[@]}" --exact 2>/dev/null)
  check "$name: merged model's greedy text equals base + adapter" '[ $rc -eq 0 ] && [ -n "$a" ] && [ "$a" = "$b" ]'
done
if [ -n "${ran[prompt-tuning]:-}" ]; then
  err=$("$HONE" merge -m "$model" --adapter "$tmp/prompt-tuning" -o "$tmp/pt.gguf" --threads 2 2>&1); rc=$?
  check "prompt-tuning: merge refused in one error line, no file" '[ $rc -ne 0 ] && [ ! -e "$tmp/pt.gguf" ] &&
    [ "$(grep -c "^hone: " <<<"$err")" -eq 1 ] && grep -q "^hone: merge: .*prompt-tuning cannot be merged" <<<"$err"'
fi

echo "$pass passed, $fail failed ($(( $(date +%s) - t_start )) s)"
[ $fail -eq 0 ]
