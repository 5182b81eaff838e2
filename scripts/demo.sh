#!/usr/bin/env bash
# scripts/demo.sh HONE_BINARY MODEL — `make demo`: asks the model two questions in its chat format and prints each
# question, the streamed answer (at most 128 tokens, greedy) and the speed line.
set -euo pipefail
if [ $# -lt 2 ] || [ ! -x "$1" ]; then
  echo "usage: scripts/demo.sh HONE_BINARY MODEL" >&2
  exit 2
fi
hone=$1
model=$2
questions=(
  "What is the capital of France? Answer in one sentence."
  "Give me three tips for staying focused while studying."
)
err=$(mktemp)
trap 'rm -f "$err"' EXIT
bold="" dim="" off=""
if [ -t 1 ]; then bold=$'\033[1m' dim=$'\033[2m' off=$'\033[0m'; fi
echo "hone demo: $model, greedy, answers capped at 128 tokens"
for q in "${questions[@]}"; do
  printf '\n%s> %s%s\n' "$bold" "$q" "$off"
  if ! "$hone" generate -m "$model" --chat -p "$q" -n 128 --temp 0 2>"$err"; then
    cat "$err" >&2
    exit 1
  fi
  # The answer streamed on stdout; the speed is the last stderr line (any warning before it goes to stderr).
  head -n -1 "$err" >&2
  printf '\n%s[%s]%s\n' "$dim" "$(tail -1 "$err")" "$off"
done
