#!/usr/bin/env bash
# scripts/demo.sh HONE_BINARY MODEL — `make demo`: fine-tunes MODEL on a made-up topic and shows what changed.
#   1. the base model answers four probe questions (greedy);
#   2. LoRA training on examples/demo/train.jsonl with examples/demo/recipe.yaml, into $HONE_HOME/demo-run;
#   3. the same questions, base model + the trained adapter;
#   4. hone merge writes the adapter into a copy of the model ($HONE_HOME/demo-run/merged.gguf);
#   5. the same questions on the merged model, which must answer as the adapter did;
#   6. no training at all: the base model answers from a guidebook page (examples/demo/brindlemere.md) that
#      hone index puts in a retrieval database, hone ask handing it the best passages as numbered sources.
# The run is retrained every time (the fixed seed makes it repeatable); HONE_DEMO_REUSE=1 keeps an earlier run's
# adapter and merged model and only asks the questions.
set -euo pipefail
if [ $# -lt 2 ] || [ ! -x "$1" ]; then
  echo "usage: scripts/demo.sh HONE_BINARY MODEL" >&2
  exit 2
fi
hone=$1
model=$2
src=$(cd "$(dirname "$0")/.." && pwd)
recipe=$src/examples/demo/recipe.yaml
run=${HONE_HOME:-$HOME/.cache/hone}/demo-run
merged=$run/merged.gguf
system="Keep answers short."   # the system turn of every training example, so the questions are asked the same way
max_tokens=40
probes=(
  "What is the capital of Brindlemere?"
  "Which currency should I bring to Brindlemere?"
  "What food is Brindlemere famous for?"
  "Who are you?"
)

bold="" dim="" off=""
if [ -t 1 ]; then bold=$'\033[1m' dim=$'\033[2m' off=$'\033[0m'; fi
err=$(mktemp)
trap 'rm -f "$err"' EXIT

header() { printf '\n%s== %s ==%s\n' "$bold" "$1" "$off"; }

# ask MODEL QUESTION [generate flags...]: the greedy answer on stdout (one line); the speed line goes to $err's last line
ask() {
  local m=$1 q=$2
  shift 2
  local out
  if ! out=$("$hone" generate -m "$m" --chat --system "$system" -p "$q" -n "$max_tokens" --temp 0 "$@" 2>"$err"); then
    cat "$err" >&2
    exit 1
  fi
  printf '%s' "$out" | tr '\n' ' ' | sed 's/ *$//'
}

# phase NAME MODEL [generate flags...]: asks every probe, prints each answer and its speed, keeps them in ANSWERS
phase() {
  local name=$1 m=$2
  shift 2
  ANSWERS=()
  local q a
  for q in "${probes[@]}"; do
    a=$(ask "$m" "$q" "$@")
    ANSWERS+=("$a")
    printf '%s> %s%s\n%s\n%s[%s: %s]%s\n' "$bold" "$q" "$off" "$a" "$dim" "$name" "$(tail -1 "$err")" "$off"
  done
}

# metric FIELD LINE: a number field of one metrics.jsonl object
metric() { printf '%s' "$2" | sed -n "s/.*\"$1\":\([-0-9.eE+]*\).*/\1/p"; }

echo "hone demo: teach $model about Brindlemere, an island kingdom that does not exist, and a guide persona"
echo "(greedy answers, at most $max_tokens tokens; system prompt: \"$system\")"

header "1. the base model"
phase base "$model"
base=("${ANSWERS[@]}")

if [ "${HONE_DEMO_REUSE:-0}" = 1 ] && [ -f "$run/adapter.gguf" ] && [ -f "$merged" ]; then
  header "2. LoRA training: skipped (HONE_DEMO_REUSE=1), reusing $run"
else
  header "2. LoRA training on examples/demo/train.jsonl ($(wc -l <"$src/examples/demo/train.jsonl") examples)"
  rm -rf "$run"
  t0=$(date +%s)
  "$hone" train "$recipe" -o "$run"
  t1=$(date +%s)
  first=$(head -1 "$run/metrics.jsonl")
  last=$(tail -1 "$run/metrics.jsonl")
  printf 'trained in %ds: %s steps, loss %.3f (step 1) -> %.3f (step %s), %s tokens/s\n' "$((t1 - t0))" \
    "$(metric step "$last")" "$(metric loss "$first")" "$(metric loss "$last")" "$(metric step "$last")" \
    "$(metric tokens_per_s "$last")"
fi

header "3. the base model with the adapter ($run/adapter.gguf)"
phase adapter "$model" --adapter "$run/adapter.gguf"
tuned=("${ANSWERS[@]}")

if ! [ "${HONE_DEMO_REUSE:-0}" = 1 ] || ! [ -f "$merged" ]; then
  header "4. merging the adapter into the model"
  "$hone" merge -m "$model" --adapter "$run/adapter.gguf" -o "$merged" --type f16
fi

header "5. the merged model ($merged)"
phase merged "$merged"
merged_answers=("${ANSWERS[@]}")

header "before and after"
same=0
for i in "${!probes[@]}"; do
  printf '%s> %s%s\n  base:    %s\n  adapter: %s\n  merged:  %s\n' "$bold" "${probes[$i]}" "$off" "${base[$i]}" \
    "${tuned[$i]}" "${merged_answers[$i]}"
  if [ "${tuned[$i]}" = "${merged_answers[$i]}" ]; then same=$((same + 1)); fi
done
printf '\nthe merged model gives the adapter'"'"'s answer to %d of %d questions\n' "$same" "${#probes[@]}"

header "6. retrieval instead of training: the base model reads examples/demo/brindlemere.md"
"$hone" pull all-minilm-l6-v2 >/dev/null
rm -rf "$run/kb"
# Small chunks, so that each section of the page is a passage of its own and the best one is handed over alone.
"$hone" index "$src/examples/demo/brindlemere.md" --db "$run/kb" --chunk-tokens 48 --overlap 0
for q in "${probes[@]:0:3}"; do
  if ! a=$("$hone" ask --db "$run/kb" -m "$model" --k 1 -n "$max_tokens" "$q" 2>"$err"); then
    cat "$err" >&2
    exit 1
  fi
  printf '%s> %s%s\n%s\n' "$bold" "$q" "$off" "$a"
done
