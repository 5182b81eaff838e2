#!/usr/bin/env bash
# bench/cls_bakeoff.sh HONE_BINARY [RECIPE.yaml | DIR ...] [--record]
#
# The classification bake-offs of issue 6: `hone bakeoff` on each recipe (default: the two example recipes,
# all-MiniLM-L6-v2 and SmolLM2-135M-Instruct on rt-polarity with a held-out 20%), then each report.json as a
# markdown table (accuracy, macro-F1, trainable parameters, peak RSS, train and eval time, tokens/s). A DIR that
# holds a report.json (an earlier `hone bakeoff ... -o DIR`) is tabled as it is, without running again.
# The reports go to $HONE_HOME/bench/bakeoff-NAME/ (report.html opens in any browser, offline).
# --record replaces the part of bench/RESULTS.md between the bench-bakeoff markers (the other sections stay).
# Env: HONE_HOME (default ~/.cache/hone). OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE are unset for the runs (OpenBLAS's
# sgemm runs at about half speed with them on this machine); the script says so when it does.
set -euo pipefail

if [ $# -lt 1 ] || [ ! -x "$1" ]; then
  echo "usage: bench/cls_bakeoff.sh HONE_BINARY [RECIPE.yaml | DIR ...] [--record]" >&2
  exit 2
fi
hone=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
shift
here=$(cd "$(dirname "$0")" && pwd)
record=0
recipes=()
for a in "$@"; do
  if [ "$a" = --record ]; then record=1; else recipes+=("$a"); fi
done
[ ${#recipes[@]} -eq 0 ] && recipes=("$here/../examples/recipes/bakeoff-rt-polarity-minilm.yaml"
                                     "$here/../examples/recipes/bakeoff-rt-polarity.yaml")
if [ ! -d "$here/../../shared/data/rt-polarity" ]; then
  echo "bench: ../shared/data/rt-polarity is absent (the example recipes read it); skipped" >&2
  exit 0
fi
for v in OPENBLAS_CORETYPE OPENBLAS_L2_SIZE; do
  if [ -n "${!v+x}" ]; then echo "bench: unsetting $v=${!v} for this benchmark (OpenBLAS is slower with it)" >&2; fi
  unset "$v"
done
work=${HONE_HOME:-$HOME/.cache/hone}/bench
mkdir -p "$work"
out_md=$work/bakeoff-latest.md
: >"$out_md"
for r in "${recipes[@]}"; do
  if [ -f "$r/report.json" ]; then
    dir=$r
    recipe=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["recipe"])' "$dir/report.json")
  else
    dir=$work/$(basename "$r" .yaml)
    recipe=$r
    echo "bench: hone bakeoff $r -o $dir" >&2
    "$hone" bakeoff "$r" -o "$dir" || echo "bench: $(basename "$r"): a method failed (see its row)" >&2
  fi
  python3 - "$dir/report.json" "hone bakeoff $recipe" >>"$out_md" <<'EOF'
import json, sys
rep, cmd = json.load(open(sys.argv[1])), sys.argv[2]
def mib(b): return "%.0f MiB" % (b / 2**20) if b else ""
def num(x, f): return f % x if x is not None else ""
d, b, m = rep["data"], rep["budget"], rep["machine"]
print("### %s (%s)\n" % (rep["title"], rep["date"][:16].replace("T", " ") + " UTC"))
print("`%s`; %s (%s), %d threads. %d training and %d test examples (%s), max_len %d, batch %d, seed %d; epochs: "
      "each method's default unless the recipe says. Whole run %.0f s.\n" % (cmd, m["cpu"], m["arch"], m["threads"],
      d["train_examples"], d["test_examples"], d["test_from"], b["max_len"], b["batch"], b["seed"],
      rep["wall_seconds"]))
print("| method | accuracy | macro-F1 | trainable parameters | peak RSS | train s | eval s | train tok/s | eval tok/s |")
print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
for r in [rep["baseline"]] + rep["methods"]:
    label = r.get("label") or r["method"]
    if r["status"] in ("not-applicable", "failed"):
        print("| %s | %s: %s | | | | | | | |" % (label, r["status"], (r["message"] or "").replace("|", "/")))
        continue
    print("| %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (label, num(r["accuracy"], "%.4f"),
          num(r["macro_f1"], "%.4f"), "{:,}".format(r["trainable_parameters"]) if r["trainable_parameters"] is not None else "",
          mib(r["peak_rss_bytes"]), num(r["train_seconds"], "%.1f"), num(r["eval_seconds"], "%.1f"),
          num(r["train_tokens_per_second"], "%.0f"), num(r["eval_tokens_per_second"], "%.0f")))
print()
EOF
done
cat "$out_md"
if [ $record = 1 ]; then
  python3 - "$here/RESULTS.md" "$out_md" <<'EOF'
import re, sys
path, new = sys.argv[1], open(sys.argv[2]).read().rstrip("\n") + "\n"
sec = ("<!-- bench-bakeoff:start (written by bench/cls_bakeoff.sh --record) -->\n## Classification bake-offs "
       "(`hone bakeoff`)\n\n" + new + "<!-- bench-bakeoff:end -->\n")
text = open(path).read()
pat = re.compile(r"<!-- bench-bakeoff:start.*?<!-- bench-bakeoff:end -->\n?", re.S)
text = pat.sub(lambda m: sec, text) if pat.search(text) else text.rstrip("\n") + "\n\n" + sec
open(path, "w").write(text)
EOF
  echo "bench: wrote the bake-off section of $here/RESULTS.md" >&2
fi
