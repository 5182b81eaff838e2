#!/usr/bin/env bash
# hone train's front: --help-recipe, --print-config from flags and from a recipe with --set (and the printed recipe
# loading back the same), relative paths, and errors: unknown flags and keys with suggestions, bad values, YAML
# syntax, missing files — each one line on stderr, exit 2 for usage errors and 1 for files that cannot be read.
set -u
fail=0; pass=0
check() { if eval "$2"; then pass=$((pass+1)); else fail=$((fail+1)); echo "FAILED: $1" >&2; fi; }
one_line() { [ -n "$1" ] && [ "$(wc -l <<<"$1")" -eq 1 ]; }
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
src=${HONE_SRC:-$PWD}
recipe=$src/tests/data/recipe_basic.yaml

out=$("$HONE" train --help-recipe); rc=$?
check "--help-recipe lists keys with type, default, description" '[ $rc -eq 0 ] &&
  grep -q "^lora.r  int >= 1, default 8; flag --rank$" <<<"$out" &&
  grep -q "^lr  float > 0, default 0.0002; flag --lr$" <<<"$out" &&
  grep -q "^model  string, required; flag -m/--model$" <<<"$out" &&
  grep -q "^lora.target_modules  list of q_proj|k_proj|v_proj|o_proj|gate_proj|up_proj|down_proj|all-linear" <<<"$out" &&
  grep -q "^    peak learning rate" <<<"$out"'
out=$("$HONE" train --help); rc=$?
check "--help lists the flags" '[ $rc -eq 0 ] && grep -q -- "--rank N" <<<"$out" && grep -q -- "--set KEY=VALUE" <<<"$out"'
"$HONE" train >/dev/null 2>&1; rc=$?
check "no arguments: usage, exit 2" '[ $rc -eq 2 ]'
"$HONE" --help | grep -q "^  train " ; rc=$?
check "hone --help lists train" '[ $rc -eq 0 ]'

# The recipe-free form: every flag of the issue lands on its key; relative paths from the current directory.
out=$(cd "$tmp" && "$HONE" train -m smollm2-135m-instruct --data d.jsonl --method lora -o out --epochs 2 \
  --max-steps 10 --lr 1e-4 --batch 2 --max-len 128 --rank 4 --alpha 8 --seed 3 --save-every 5 --resume \
  --threads 2 --target-modules q_proj,k_proj --print-config); rc=$?
check "flags -> --print-config" '[ $rc -eq 0 ] && grep -q "^model: \"smollm2-135m-instruct\"$" <<<"$out" &&
  grep -q "^data: \[\"$tmp/d.jsonl\"\]$" <<<"$out" && grep -q "^output_dir: \"$tmp/out\"$" <<<"$out" &&
  grep -q "^method: lora$" <<<"$out" && grep -q "^epochs: 2$" <<<"$out" && grep -q "^max_steps: 10$" <<<"$out" &&
  grep -q "^lr: 0.0001$" <<<"$out" && grep -q "^batch_size: 2$" <<<"$out" && grep -q "^max_len: 128$" <<<"$out" &&
  grep -q "^  r: 4$" <<<"$out" && grep -q "^  alpha: 8$" <<<"$out" && grep -q "^seed: 3$" <<<"$out" &&
  grep -q "^save_every: 5$" <<<"$out" && grep -q "^resume: true$" <<<"$out" && grep -q "^threads: 2$" <<<"$out" &&
  grep -q "^  target_modules: \[\"q_proj\", \"k_proj\"\]$" <<<"$out"'
printf '%s\n' "$out" >"$tmp/printed.yaml"
again=$(cd / && "$HONE" train "$tmp/printed.yaml" --print-config); rc=$?
check "the printed recipe loads back the same, from anywhere" '[ $rc -eq 0 ] && [ "$again" = "$out" ]'

# A recipe, with flags and --set applied after it in command-line order; its paths from its own directory.
out=$(cd "$tmp" && "$HONE" train "$recipe" --set lora.r=32 --set lr=3e-5 --print-config); rc=$?
check "recipe + --set" '[ $rc -eq 0 ] && grep -q "^  r: 32$" <<<"$out" && grep -q "^lr: 3e-05$" <<<"$out" &&
  grep -q "^  alpha: 32$" <<<"$out" && grep -q "^data: \[\"$src/tests/data/train.jsonl\", \"$src/tests/data/more/extra.jsonl\"\]$" <<<"$out"'
out=$(cd "$tmp" && "$HONE" train --model=sub/m.gguf --out=o --data=d.jsonl --resume=false --print-config | head -5)
check "--flag=VALUE forms" 'grep -q "^model: \"$tmp/sub/m.gguf\"$" <<<"$out" && grep -q "^resume: false$" <<<"$out" &&
  grep -q "^output_dir: \"$tmp/o\"$" <<<"$out"'
out=$("$HONE" train --set lora.r=32 --rank 4 "$recipe" --print-config | grep "^  r:")
check "later wins (flag after --set)" '[ "$out" = "  r: 4" ]'
out=$("$HONE" train --rank 4 "$recipe" --set=lora.r=32 --print-config | grep "^  r:")
check "later wins (--set after flag)" '[ "$out" = "  r: 32" ]'
out=$(cd "$tmp" && "$HONE" train "$recipe" --data x.jsonl --data y,z.jsonl --print-config | grep "^data:")
check "--data replaces the recipe's list, repeatable" '[ "$out" = "data: [\"$tmp/x.jsonl\", \"$tmp/y,z.jsonl\"]" ]'
out=$("$HONE" train "$recipe" --print-config | sed -n 's/^\([a-z_]*\):.*/\1/p' | head -3 | tr '\n' ' ')
check "printed in table order" '[ "$out" = "model method output_dir " ]'

# The documented examples stay valid recipes (the bake-off recipes are `hone bakeoff`'s, tested there).
for f in "$src"/examples/recipes/*.yaml; do
  case $(basename "$f") in bakeoff-*) continue ;; esac
  out=$("$HONE" train "$f" --print-config 2>&1); rc=$?
  check "example $(basename "$f") loads ($out)" '[ $rc -eq 0 ] && grep -q "^data: \[\"/" <<<"$out"'
done

# Errors: one line on stderr; usage errors exit 2.
expect() { # name, expected rc, grep patterns..., -- command
  local name=$1 want=$2; shift 2
  local pats=(); while [ "$1" != "--" ]; do pats+=("$1"); shift; done; shift
  local err rc ok=1
  err=$("$@" 2>&1 >/dev/null); rc=$?
  [ $rc -eq "$want" ] || ok=0
  one_line "$err" || ok=0
  for p in "${pats[@]}"; do grep -qF -- "$p" <<<"$err" || ok=0; done
  check "$name (rc $rc: $err)" "[ $ok -eq 1 ]"
}
expect "unknown flag with suggestion" 2 "unknown flag '--rnak'" "did you mean '--rank'?" -- "$HONE" train "$recipe" --rnak 4
expect "unknown flag named by another tool" 2 "did you mean '--lr'?" -- "$HONE" train --learning-rate 1e-4
expect "unknown flag for a key without a flag" 2 "did you mean '--set warmup_ratio=...'?" -- "$HONE" train --warmup-ratio 0.1
expect "unknown key in a recipe" 2 "recipe_unknown_key.yaml:6:3:" "unknown key 'lora.rank'" "did you mean 'lora.r'?" -- \
  "$HONE" train "$src/tests/data/recipe_unknown_key.yaml" --print-config
expect "unknown key in --set" 2 "--set: unknown key 'lora.dropuot'" "did you mean 'lora.dropout'?" -- \
  "$HONE" train "$recipe" --set lora.dropuot=0.1 --print-config
expect "bad flag value" 2 "--rank: lora.r: expected an integer >= 1, got 'x'" -- "$HONE" train "$recipe" --rank x
expect "bad --set value" 2 "lora.dropout: expected a number >= 0 and < 1, got '1'" -- "$HONE" train "$recipe" --set lora.dropout=1
expect "flag without its value" 2 "--rank needs a value" -- "$HONE" train "$recipe" --rank
expect "--set without its value" 2 "--set needs a value" -- "$HONE" train "$recipe" --set
expect "--set without =" 2 "--set expects key=value" -- "$HONE" train "$recipe" --set lora.r
expect "YAML syntax error" 2 "recipe_syntax.yaml:4:2: YAML syntax error" -- "$HONE" train "$src/tests/data/recipe_syntax.yaml"
expect "type error in a recipe" 2 "recipe_type_error.yaml:3:6: lora.r: expected an integer >= 1, got 'sixteen'" -- \
  "$HONE" train "$src/tests/data/recipe_type_error.yaml"
expect "recipe not a mapping" 2 "must be a mapping" -- "$HONE" train "$src/tests/data/recipe_sequence.yaml"
expect "empty recipe" 2 "the recipe is empty" -- "$HONE" train "$src/tests/data/recipe_empty.yaml"
expect "missing recipe: exit 1" 1 "$tmp/none.yaml" -- "$HONE" train "$tmp/none.yaml"
expect "two recipes" 2 "more than one recipe" -- "$HONE" train "$recipe" "$recipe"
expect "a model where the recipe goes" 2 "'m.gguf' is a model, not a recipe: give it with -m" -- "$HONE" train m.gguf --data d
expect "missing model" 2 "no model given" "-m MODEL" -- "$HONE" train --data d.jsonl -o out --print-config
expect "missing output_dir" 2 "no output_dir given" "-o DIR" -- "$HONE" train -m m --data d.jsonl
expect "bad enum value" 2 "method: expected one of lora, full, dora, ia3, prompt-tuning, p-tuning, prefix-tuning, adapter-houlsby, adapter-pfeiffer, got 'qlora'" -- "$HONE" train "$recipe" --method qlora

# A valid configuration without --print-config goes to the trainer, which loads the model first: a missing one is
# named in one line (exit 1) and nothing is written.
err=$(cd "$tmp" && "$HONE" train -m /no/such/model.gguf --data d.jsonl -o run 2>&1 >/dev/null); rc=$?
check "training a valid config: exit 1, one line ($err)" '[ $rc -eq 1 ] && one_line "$err" &&
  grep -qF "/no/such/model.gguf" <<<"$err" && [ ! -e "$tmp/run" ]'

echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
