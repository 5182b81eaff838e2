#!/usr/bin/env bash
# bench/run.sh HONE_BINARY [--record]
#
# Prompt and decode speed of hone beside llama.cpp's llama-bench, on the same GGUF files, in the same run:
# SmolLM2-135M-Instruct in Q4_1 (the pulled file) and Q8_0, Q4_K, Q6_K (made here with `hone quantize`, kept in
# the cache), at 1 and 2 threads.
#   prompt: a 512-token prompt (prose, its length checked with `hone tokenize --ids`)   ~ llama-bench pp512
#   decode: 128 greedy tokens after a short prompt                                      ~ llama-bench tg128
# Each figure is the best of 3 runs, for hone and llama-bench alike; their runs alternate.
#
# llama.cpp is found through env LLAMA_BENCH (the llama-bench binary; scripts/build-llama-cpp.sh builds one);
# without it, hone's figures are printed alone. --record also writes bench/RESULTS.md.
# Env: HONE_HOME (model cache, default ~/.cache/hone), BENCH_REPS (default 3), BENCH_THREADS (default "1 2"),
# BENCH_TYPES (default "q4_1 q8_0 q4_k q6_k").
# --record replaces the part of bench/RESULTS.md between the bench-infer markers (the other sections stay).
set -euo pipefail

if [ $# -lt 1 ] || [ ! -x "$1" ]; then
  echo "usage: bench/run.sh HONE_BINARY [--record]" >&2
  exit 2
fi
hone=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
record=0
[ "${2:-}" = "--record" ] && record=1
here=$(cd "$(dirname "$0")" && pwd)
reps=${BENCH_REPS:-3}
threads=${BENCH_THREADS:-1 2}
home=${HONE_HOME:-$HOME/.cache/hone}
work=$home/bench
mkdir -p "$work"

# Some machines export these for OpenBLAS; with them its sgemm runs at about half speed here. Both programs are
# measured without them.
for v in OPENBLAS_CORETYPE OPENBLAS_L2_SIZE; do
  if [ -n "${!v+x}" ]; then echo "bench: unsetting $v=${!v} for this benchmark (OpenBLAS is slower with it)" >&2; fi
  unset "$v"
done

q41=$("$hone" pull smollm2-135m-instruct | tail -1)
# The other types are made from the pulled Q4_1 file with `hone quantize` (llama.cpp's mixes for the K-quants: rows
# that are not a multiple of 256 fall back as llama-quantize does), re-made every run so that they reflect the
# current quantizer; it takes seconds.
models=()
for ty in ${BENCH_TYPES:-q4_1 q8_0 q4_k q6_k}; do
  if [ "$ty" = q4_1 ]; then models+=("$q41"); continue; fi
  up=$(tr a-z A-Z <<<"$ty")
  f=$work/SmolLM2-135M-Instruct.$up.gguf
  "$hone" quantize "$q41" -o "$f" --type "$ty" >&2
  models+=("$f")
done

# --- the prompts ---------------------------------------------------------------------------------------------
prose="The river runs slowly through the valley in the late summer, carrying leaves and small branches past the old \
mill. Farmers along its banks watch the water level every morning, because a dry season means thin crops and a \
wet one means flooded fields. In the village, the baker opens her shop before dawn, and the smell of fresh bread \
drifts across the square where children wait for the school bus. The teacher, who has lived here for thirty years, \
still walks to work and greets every neighbour by name. On market days the square fills with stalls selling \
apples, cheese, honey and wool, and travellers from the city stop to buy jars of jam for their families at home."
read -r -a words <<<"$prose $prose $prose $prose $prose $prose $prose $prose $prose $prose"

ntok() { # number of tokens of $1, or nothing when `hone tokenize --ids` is not available
  "$hone" tokenize -m "$q41" --ids "$1" 2>/dev/null | wc -w
}
# The longest word prefix of the repeated prose that is at most 512 tokens (binary search on the word count).
target=512
prompt_checked=1
if [ "$(ntok "hello world" || true)" = "2" ]; then
  lo=1 hi=${#words[@]}
  while [ $lo -lt $hi ]; do
    mid=$(((lo + hi + 1) / 2))
    if [ "$(ntok "${words[*]:0:mid}")" -le $target ]; then lo=$mid; else hi=$((mid - 1)); fi
  done
  p512="${words[*]:0:lo}"
  n512=$(ntok "$p512")
else
  # Without a tokenizer command, about 1.2 tokens a word for this prose.
  prompt_checked=0
  p512="${words[*]:0:425}"
  n512="~512"
  echo "bench: 'hone tokenize --ids' is not available; the prompt length is estimated, not checked" >&2
fi
# Decode: a short prompt that a greedy model goes on counting from, rather than ending its turn early.
pshort="1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12,"
echo "bench: prompt of $n512 tokens; decode of 128 tokens after a $(ntok "$pshort" || echo '?')-token prompt" >&2

# --- hone --------------------------------------------------------------------------------------------------------
# Runs `hone generate`; prints "PROMPT_TPS DECODE_TPS" parsed from the last stderr line.
speed() { # model threads prompt n
  local err out
  err=$(mktemp) out=$(mktemp)
  if ! timeout 600 "$hone" generate -m "$1" -p "$3" -n "$4" --temp 0 --threads "$2" >"$out" 2>"$err"; then
    echo "bench: hone generate failed: $(tail -1 "$err")" >&2
    rm -f "$err" "$out"
    return 1
  fi
  local line
  line=$(tail -1 "$err")
  if [ "$4" -ge 64 ] && [ $prompt_checked = 1 ]; then
    local got
    got=$(ntok "$(cat "$out")" || echo 0)
    [ "$got" -lt $(($4 * 3 / 4)) ] && echo "bench: warning: $(basename "$1") made only ~$got of $4 tokens" >&2
  fi
  rm -f "$err" "$out"
  sed -n 's|^prompt: \([0-9.]*\) tok/s, decode: \([0-9.]*\) tok/s$|\1 \2|p' <<<"$line" | grep . ||
    { echo "bench: unexpected last stderr line from hone generate: $line" >&2; return 1; }
}

# --- llama.cpp ---------------------------------------------------------------------------------------------------
have_llama=0
if [ -n "${LLAMA_BENCH:-}" ] && [ -x "$LLAMA_BENCH" ]; then
  have_llama=1
else
  echo "bench: LLAMA_BENCH is not set to a llama-bench binary; skipping the comparison with llama.cpp" \
       "(scripts/build-llama-cpp.sh builds one from a llama.cpp source tree)" >&2
fi
# One llama-bench run (pp512 and tg128, its own warm-up included); prints "PROMPT_TPS DECODE_TPS COMMIT".
llama_speed() { # model threads
  local json
  json=$(mktemp)
  if ! timeout 900 "$LLAMA_BENCH" -m "$1" -p 512 -n 128 -t "$2" -r 1 -o json >"$json" 2>"$json.err"; then
    echo "bench: llama-bench failed: $(tail -1 "$json.err")" >&2
    rm -f "$json" "$json.err"
    return 1
  fi
  python3 "$here/report.py" --parse-llama "$json"
  rm -f "$json" "$json.err"
}

# --- the runs ----------------------------------------------------------------------------------------------------
# Other work on the machine slows both programs down (two threads suffer most): the runs of hone and llama.cpp
# alternate so that both meet the same conditions, and the report states the load.
load=$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo unknown)
lversion=unknown
results=$work/results.tsv
: >"$results"
[ $have_llama = 1 ] && echo "bench: llama-bench runs as: $LLAMA_BENCH -m MODEL -p 512 -n 128 -t N -r 1 -o json" >&2
for model in "${models[@]}"; do
  name=$(basename "$model" .gguf)
  qtype=${name##*.}
  for t in $threads; do
    for r in $(seq "$reps"); do
      s1=$(speed "$model" "$t" "$p512" 4) || exit 1
      s2=$(speed "$model" "$t" "$pshort" 128) || exit 1
      printf 'hone\t%s\t%s\t%s\t%s\n' "$qtype" "$t" "${s1% *}" "${s2#* }" >>"$results"
      line="hone ${s1% *} / ${s2#* }"
      if [ $have_llama = 1 ]; then
        s3=$(llama_speed "$model" "$t") || exit 1
        read -r lpp ltg lversion <<<"$s3"
        printf 'llama.cpp\t%s\t%s\t%s\t%s\n' "$qtype" "$t" "$lpp" "$ltg" >>"$results"
        line="$line, llama.cpp $lpp / $ltg"
      fi
      echo "bench: $qtype t=$t run $r: prompt / decode tok/s: $line" >&2
    done
  done
done

# --- report ------------------------------------------------------------------------------------------------------
cmd="LLAMA_BENCH=${LLAMA_BENCH:-<unset>} bash bench/run.sh $1${2:+ $2}"
python3 "$here/report.py" --results "$results" --prompt-tokens "$n512" --reps "$reps" --command "$cmd" \
  --llama-version "$lversion" --load "$load, at the end $(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo unknown)" >"$work/latest.md"
cat "$work/latest.md"
if [ $record = 1 ]; then
  python3 - "$here/RESULTS.md" "$work/latest.md" <<'EOF2'
import re, sys
path, new = sys.argv[1], open(sys.argv[2]).read().rstrip("\n") + "\n"
sec = "<!-- bench-infer:start (written by bench/run.sh --record) -->\n" + new + "<!-- bench-infer:end -->\n"
try:
    text = open(path).read()
except FileNotFoundError:
    text = ""
pat = re.compile(r"<!-- bench-infer:start.*?<!-- bench-infer:end -->\n?", re.S)
text = pat.sub(lambda m: sec, text) if pat.search(text) else sec + ("\n" + text if text else "")
open(path, "w").write(text)
EOF2
  echo "bench: wrote the inference section of $here/RESULTS.md" >&2
fi
