#!/usr/bin/env bash
# GPT-2 through the command line, on the tiny random GPT-2 of tests/data/tiny_gpt2 (tools/reference/tiny_gpt2_ref.py):
#   - hone generate, greedy, from the GGUF and from the Hugging Face directory: the same text
#   - hone train with GPT-2's target names (c_attn, c_proj, c_fc): the loss falls; the PEFT directory has GPT-2's
#     module names and fan_in_fan_out (what PEFT writes for Conv1D layers); generate --adapter runs with it, and
#     hone merge gives a model with the same greedy text
#   - a max_len past the model's learned positions is cut to them
#   - a Llama-only target on GPT-2: one line, non-zero exit
# Under HONE_SANITIZED the run is 4 steps.
set -u
fail=0; pass=0
check() { if eval "$2"; then pass=$((pass+1)); else fail=$((fail+1)); echo "FAILED: $1" >&2; fi; }
one_line() { [ -n "$1" ] && [ "$(wc -l <<<"$1")" -eq 1 ]; }
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
src=${HONE_SRC:-$PWD}
dir=$src/tests/data/tiny_gpt2
gguf=$dir/tiny_gpt2.gguf
steps=20
[ -n "${HONE_SANITIZED:-}" ] && steps=4

a=$("$HONE" generate -m "$gguf" -p "The quick" -n 12 --temp 0 --exact --threads 2 2>/dev/null); rc1=$?
b=$("$HONE" generate -m "$dir" -p "The quick" -n 12 --temp 0 --exact --threads 2 2>/dev/null); rc2=$?
check "greedy text from the GGUF and the HF directory" '[ $rc1 -eq 0 ] && [ $rc2 -eq 0 ] && [ -n "$a" ] &&
  [ "$a" = "$b" ]'

"$HONE" train -m "$gguf" --data "$src/tests/data/train_text.jsonl" -o "$tmp/run" --max-steps $steps --lr 1e-2 \
  --batch 2 --max-len 32 --rank 4 --alpha 8 --target-modules c_attn,c_proj,c_fc --threads 2 >"$tmp/log" 2>&1; rc=$?
check "train exits 0" '[ $rc -eq 0 ]'
first=$(head -1 "$tmp/run/metrics.jsonl" 2>/dev/null | sed 's/.*"loss":\([0-9.e+-]*\).*/\1/')
last=$(tail -1 "$tmp/run/metrics.jsonl" 2>/dev/null | sed 's/.*"loss":\([0-9.e+-]*\).*/\1/')
check "the loss falls ($first -> $last)" 'awk -v a="$first" -v b="$last" "BEGIN { exit !(a > 0 && b < a - 0.5) }"'
cfg=$(cat "$tmp/run/adapter/adapter_config.json" 2>/dev/null)
check "PEFT config: fan_in_fan_out, GPT-2 targets" 'grep -q "\"fan_in_fan_out\": true" <<<"$cfg" &&
  grep -q "\"c_attn\"" <<<"$cfg" && grep -q "\"c_fc\"" <<<"$cfg" && grep -q "\"c_proj\"" <<<"$cfg"'
check "PEFT tensor names" 'grep -a -q "base_model.model.transformer.h.1.mlp.c_proj.lora_B.weight" \
  "$tmp/run/adapter/adapter_model.safetensors" && grep -a -q "transformer.h.0.attn.c_attn.lora_A.weight" \
  "$tmp/run/adapter/adapter_model.safetensors"'
c=$("$HONE" generate -m "$dir" --adapter "$tmp/run/adapter" -p "The quick" -n 12 --temp 0 --exact --threads 2 \
  2>/dev/null); rc=$?
check "generate with the trained adapter" '[ $rc -eq 0 ] && [ -n "$c" ]'
"$HONE" merge -m "$gguf" --adapter "$tmp/run/adapter" -o "$tmp/merged.gguf" --type f32 >/dev/null 2>&1; rc=$?
d=$("$HONE" generate -m "$tmp/merged.gguf" -p "The quick" -n 12 --temp 0 --exact --threads 2 2>/dev/null)
check "merge (c_attn, both c_proj, c_fc folded in): the same greedy text as base + adapter" '[ $rc -eq 0 ] &&
  [ "$d" = "$c" ]'

long=$(printf 'the quick brown fox jumps over the lazy dog %.0s' 1 2 3 4 5 6 7 8) # ~80 tokens
for i in 1 2 3 4; do printf '{"text": "%s"}\n' "$long"; done >"$tmp/long.jsonl"
"$HONE" train -m "$gguf" --data "$tmp/long.jsonl" -o "$tmp/run3" --max-steps 1 --max-len 128 --target-modules c_fc \
  --threads 2 >"$tmp/log3" 2>&1; rc=$?
check "max_len past the 64 learned positions: cut to 64, trains" '[ $rc -eq 0 ] &&
  grep -q "max_len 128: the model has 64 learned positions" "$tmp/log3" && grep -q "truncated to 64" "$tmp/log3"'

err=$("$HONE" train -m "$gguf" --data "$src/tests/data/train_text.jsonl" -o "$tmp/run2" --max-steps 1 \
  --target-modules q_proj --threads 2 2>&1 >/dev/null); rc=$?
err=$(grep "^hone:" <<<"$err" | grep -v "^hone: warning") # after the data summary and warnings
check "q_proj on GPT-2: one line, non-zero exit ($err)" '[ $rc -ne 0 ] && one_line "$err" &&
  grep -q "none of the target modules" <<<"$err"'

# A base model without a chat template: plain generate says nothing of templates; --chat says it uses ChatML.
err=$("$HONE" generate -m "$gguf" -p "The quick" -n 2 --temp 0 --threads 2 2>&1 >/dev/null)
check "plain generate on a base model: no template warning" '! grep -q "template" <<<"$err"'
err=$("$HONE" generate -m "$gguf" --chat -p "The quick" -n 2 --temp 0 --threads 2 2>&1 >/dev/null)
check "generate --chat on a base model: one warning naming ChatML" '[ "$(grep -c "no chat template; using ChatML" <<<"$err")" -eq 1 ]'

echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
