#!/usr/bin/env bash
# bench/lora_llamacpp.sh [BUILD_DIR]
#
# A LoRA GGUF written by hone gives the same greedy text in llama.cpp as in hone. The adapter is the one hone made
# for the PEFT compatibility test (tests/data/peft_compat/hone_adapter: r=2 rsLoRA on q/k/v_proj, random B),
# written as a llama.cpp LoRA GGUF by hone's library (bench/lora_convert.c: hn_peft_read + hn_lora_gguf_write);
# the base is the F32 copy of SmolLM2-135M-Instruct (`hone quantize --type f32`), so that both programs multiply the
# same weights. For each prompt, 32 greedy tokens from:
#   llama.cpp   llama-completion -m F32.gguf [--lora adapter.gguf] -p PROMPT -n 32 --temp 0
#   hone        hone generate -m F32.gguf [--adapter adapter.gguf] -p PROMPT -n 32 --temp 0
# with and without the adapter (so that one can see the adapter changes the text), printed side by side with
# `same` or `DIFFERENT`. Not a test: llama.cpp is not a dependency of hone. It skips (exit 0) without llama.cpp.
# Env: LLAMA_CPP_BIN (a folder with llama-completion or llama-cli; default ~/.cache/hone/llama.cpp-build/bin,
# scripts/build-llama-cpp.sh builds it there: add `--target llama-completion`), HONE_HOME, THREADS (default 2).
set -euo pipefail

build=$(cd "${1:-build}" && pwd)
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
home=${HONE_HOME:-$HOME/.cache/hone}
bin=${LLAMA_CPP_BIN:-$home/llama.cpp-build/bin}
threads=${THREADS:-2}
llama=""
for c in llama-completion llama-cli; do
  if [ -x "$bin/$c" ]; then llama=$bin/$c; break; fi
done
if [ -z "$llama" ]; then
  echo "lora_llamacpp: no llama-completion or llama-cli in $bin (set LLAMA_CPP_BIN): skipped" >&2
  exit 0
fi
for v in OPENBLAS_CORETYPE OPENBLAS_L2_SIZE; do unset "$v"; done
work=$home/bench
mkdir -p "$work"
hone=$build/hone
q41=$("$hone" pull smollm2-135m-instruct | tail -1)
f32=$work/SmolLM2-135M-Instruct.F32.gguf
"$hone" quantize "$q41" -o "$f32" --type f32 2>/dev/null
gcc -O2 -fopenmp -I"$root" -DPCRE2_CODE_UNIT_WIDTH=8 "$here/lora_convert.c" "$build/libhone.a" \
  $(pkg-config --libs libpcre2-8 jansson yaml-0.1) -ldl -lm -o "$work/lora_convert"
adapter=$work/hone_adapter.gguf
"$work/lora_convert" "$f32" "$root/tests/data/peft_compat/hone_adapter" "$adapter"

prompts=("The capital of France is" "Once upon a time, in a small village by the sea," "def fibonacci(n):")
llama_gen() { # PROMPT [--lora FILE]
  local p=$1
  shift
  "$llama" -m "$f32" "$@" -p "$p" -n 32 --temp 0 --seed 0 -t "$threads" -no-cnv --no-display-prompt --simple-io \
    --no-warmup -c 256 2>/dev/null </dev/null
}
hone_gen() { # PROMPT [--adapter FILE]
  local p=$1
  shift
  "$hone" generate -m "$f32" "$@" -p "$p" -n 32 --temp 0 --threads "$threads" 2>/dev/null
}
n_same=0 n=0
for p in "${prompts[@]}"; do
  for mode in base adapter; do
    if [ $mode = base ]; then
      l=$(llama_gen "$p") h=$(hone_gen "$p")
    else
      l=$(llama_gen "$p" --lora "$adapter") h=$(hone_gen "$p" --adapter "$adapter")
    fi
    l=${l% \[end of text\]} # llama.cpp marks the end-of-generation token; hone stops silently
    verdict=DIFFERENT
    [ "$l" = "$h" ] && verdict=same && n_same=$((n_same + 1))
    n=$((n + 1))
    printf '=== %s | %s: %s\n--- llama.cpp: %s\n--- hone:      %s\n' "$p" "$mode" "$verdict" "$l" "$h"
  done
done
echo "lora_llamacpp: $n_same of $n greedy continuations identical ($(basename "$llama"), adapter $adapter)"
