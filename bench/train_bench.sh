#!/usr/bin/env bash
# bench/train_bench.sh [BUILD_DIR] [--record]          (`make bench-train` runs it on build/)
#
# LoRA SFT speed and memory of hone beside PyTorch + PEFT, in the same run, on the same CPU with the same thread
# count: SmolLM2-135M-Instruct (the pulled Q4_1 GGUF), sequence 512, batch 4, LoRA r=16 alpha 32 on all linear
# layers, fp32 activations, AdamW. Each side makes one warm-up step, then BENCH_STEPS timed steps on the same token
# batch (the LCG ids of bench/bench_train.c). hone trains over the Q4_1 weights as stored (the input gradient goes
# through them block by block); transformers' GGUF loader dequantizes them, so PyTorch trains over fp32 weights.
#   hone: bench/bench_train.c, compiled here against BUILD_DIR/libhone.a
#   PEFT: bench/train_bench_peft.py, run by $PYTHON (default: the reference venv's python when it exists); without a
#         Python that imports torch and peft, hone's figures are printed alone
# Peak memory is the whole process's maximum resident set size (/usr/bin/time -v; getrusage when it is missing),
# model loading included. tokens/s = B * T * steps / the timed steps' wall time.
# Prints `hone tokens/s: X`, `peft tokens/s: Y`, `hone peak MiB: A`, `peft peak MiB: B`, then the ratios.
# --record also writes the figures into bench/RESULTS.md, between the bench-train markers (the section is appended
# when the markers are absent).
# Env: PYTHON, BENCH_B (4), BENCH_T (512), BENCH_STEPS (3), BENCH_THREADS (nproc), HONE_HOME (~/.cache/hone).
set -euo pipefail

build=build
record=0
for a in "$@"; do
  case $a in
    --record) record=1 ;;
    *) build=$a ;;
  esac
done
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
build=$(cd "$build" && pwd)
B=${BENCH_B:-4} T=${BENCH_T:-512} steps=${BENCH_STEPS:-3} threads=${BENCH_THREADS:-$(nproc)}
home=${HONE_HOME:-$HOME/.cache/hone}
work=$home/bench
mkdir -p "$work"

# Some machines export these for OpenBLAS; with them its sgemm runs at about half speed here. Both sides run
# without them.
for v in OPENBLAS_CORETYPE OPENBLAS_L2_SIZE; do
  if [ -n "${!v+x}" ]; then echo "bench-train: unsetting $v=${!v} for this benchmark" >&2; fi
  unset "$v"
done

model=$("$build/hone" pull smollm2-135m-instruct | tail -1)
gcc -O2 -fopenmp -I"$root" -DPCRE2_CODE_UNIT_WIDTH=8 "$here/bench_train.c" "$build/libhone.a" \
  $(pkg-config --libs libpcre2-8 jansson yaml-0.1) -ldl -lm -o "$work/bench_train"

if [ -z "${PYTHON:-}" ] && [ -x "$home/refvenv/bin/python" ]; then PYTHON=$home/refvenv/bin/python; fi
have_peft=0
if [ -n "${PYTHON:-}" ] && "$PYTHON" -c "import torch, peft, transformers, gguf" 2>/dev/null; then
  have_peft=1
else
  echo "bench-train: no Python with torch, peft, transformers and gguf (set PYTHON=...): PEFT side skipped" >&2
fi

# peak_run NAME CMD...: runs CMD with its output in $work/NAME.log (and on stderr); sets peak_mib.
peak_run() {
  local name=$1
  shift
  if [ -x /usr/bin/time ]; then
    /usr/bin/time -v -o "$work/$name.time" "$@" 2>&1 | tee "$work/$name.log" >&2
    peak_mib=$(awk -F: '/Maximum resident set size/ {printf "%.0f", $2 / 1024}' "$work/$name.time")
  else
    "$@" 2>&1 | tee "$work/$name.log" >&2
    peak_mib=$(awk '/peak RSS \(VmHWM\)/ {print $4}' "$work/$name.log")
  fi
}
tokens_per_s() { awk '/^tokens\/s:/ {print $2}' "$work/$1.log"; }

load_start=$(cut -d' ' -f1-3 /proc/loadavg)
echo "bench-train: B $B, T $T, $steps timed steps after a warm-up, $threads threads; load average $load_start" >&2
peak_run hone "$work/bench_train" "$model" "$B" "$T" "$steps" "$threads"
hone_tps=$(tokens_per_s hone) hone_mib=$peak_mib
peft_tps=- peft_mib=-
if [ $have_peft = 1 ]; then
  peak_run peft "$PYTHON" "$here/train_bench_peft.py" "$model" "$B" "$T" "$steps" "$threads"
  peft_tps=$(tokens_per_s peft) peft_mib=$peak_mib
fi
load_end=$(cut -d' ' -f1-3 /proc/loadavg)

echo "hone tokens/s: $hone_tps"
echo "peft tokens/s: $peft_tps"
echo "hone peak MiB: $hone_mib"
echo "peft peak MiB: $peft_mib"
ratios=""
if [ $have_peft = 1 ]; then
  ratios=$(awk -v a="$hone_tps" -v b="$peft_tps" -v c="$hone_mib" -v d="$peft_mib" \
    'BEGIN {printf "speed ratio (hone / peft): %.2f; memory ratio (hone / peft): %.2f", a / b, c / d}')
  echo "$ratios"
fi
echo "load average at the start $load_start, at the end $load_end" >&2

[ $record = 1 ] || exit 0
commit=$(cd "$root" && git rev-parse --short HEAD 2>/dev/null || echo unknown)
[ -n "$(cd "$root" && git status --porcelain -- . 2>/dev/null)" ] && commit="$commit (with uncommitted changes)"
torch_v=-
[ $have_peft = 1 ] && torch_v=$("$PYTHON" -c "import torch, transformers, peft; print(f'torch {torch.__version__}, transformers {transformers.__version__}, peft {peft.__version__}')")
cpu=$(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)
section=$(mktemp)
{
  echo "<!-- bench-train:start (written by bench/train_bench.sh --record) -->"
  echo "## Training: hone beside PyTorch + PEFT"
  echo
  echo "- Date: $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "- Machine: $cpu, $(nproc) logical CPUs; load average (1, 5, 15 min) $load_start at the start, $load_end at the end"
  echo "- hone: commit $commit; PyTorch side: $torch_v"
  echo "- Command: \`bash bench/train_bench.sh $(basename "$build") --record\` (\`make bench-train\` runs it without --record); OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE unset for both"
  echo "- Work: LoRA SFT of SmolLM2-135M-Instruct, batch $B x sequence $T, r=16 alpha 32 on all linear layers, fp32 activations, AdamW + clipping; one warm-up step, then $steps timed steps on the same batch; $threads threads on both sides"
  echo "- hone trains over the Q4_1 base as stored; transformers' GGUF loader dequantizes it, so PyTorch trains over fp32 weights (eager attention)"
  echo "- Peak MiB: the whole process's maximum resident set size (/usr/bin/time -v), model loading included"
  echo
  echo "| | hone | PyTorch + PEFT | hone / PEFT |"
  echo "| --- | ---: | ---: | ---: |"
  awk -v a="$hone_tps" -v b="$peft_tps" -v c="$hone_mib" -v d="$peft_mib" 'BEGIN {
    r1 = (b + 0 > 0) ? sprintf("%.2f", a / b) : "-"; r2 = (d + 0 > 0) ? sprintf("%.2f", c / d) : "-"
    printf "| tokens/s | %s | %s | %s |\n| peak MiB | %s | %s | %s |\n", a, b, r1, c, d, r2 }'
  echo
  echo "Steps (hone):"
  echo
  grep -E '^(warm-up|step) ' "$work/hone.log" | sed 's/^/    /'
  if [ $have_peft = 1 ]; then
    echo
    echo "Steps (PyTorch + PEFT):"
    echo
    grep -E '^(warm-up|step) ' "$work/peft.log" | sed 's/^/    /'
  fi
  echo
  echo "Target (issue 3): faster than PyTorch + PEFT (speed ratio > 1) and under half its peak memory (memory ratio < 0.5)."
  echo "<!-- bench-train:end -->"
} >"$section"
python3 - "$here/RESULTS.md" "$section" <<'EOF'
import re, sys
path, sec = sys.argv[1], open(sys.argv[2]).read()
try:
    text = open(path).read()
except FileNotFoundError:
    text = ""
pat = re.compile(r"<!-- bench-train:start.*?<!-- bench-train:end -->\n?", re.S)
text = pat.sub(lambda m: sec, text) if pat.search(text) else text.rstrip("\n") + ("\n\n" if text else "") + sec
open(path, "w").write(text)
EOF
rm -f "$section"
echo "bench-train: wrote the training section of $here/RESULTS.md" >&2
