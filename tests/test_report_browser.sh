#!/usr/bin/env bash
# `hone bakeoff`'s report.html in a real browser: headless Chromium (Debian's chromium; `make test` installs it
# through scripts/setup-browser.sh) loads the page from disk and dumps its DOM after the scripts ran. The page's
# script must run to its end without an error (it sets data-script="ok" on <body> last; no "Uncaught" console
# message), and each chart must hold a point for every method that ran (report.json says which) and none for the
# others, by label. A copy of the page with a broken script shows that an error would be caught. The bakeoff: the
# tiny GPT-2 of tests/data with head, lora, two variants of icl (icl-0shot and icl-1shot, each its own point; 0
# trainable parameters: the log axis's 0 column) and feature on made-up data. Then a generation report (task:
# generate, the tiny GPT-2 with lora, ia3 and prompt-tuning on made-up questions): the script runs to its end and each
# of its four charts holds a point for every method that ran.
# Skips (77) when chromium is missing.
set -u
fail=0; pass=0
check() { if eval "$2"; then pass=$((pass+1)); else fail=$((fail+1)); echo "FAILED: $1" >&2; fi; }
browser=$(command -v chromium || command -v chromium-browser || true)
if [ -z "$browser" ]; then
    echo "skipped: chromium is not installed (make test installs it with scripts/setup-browser.sh, as root)"
    exit 77
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

mkdir -p "$tmp/data"
for i in $(seq 1 16); do echo "great fun lovely film $i"; done > "$tmp/data/pos.txt"
for i in $(seq 1 16); do echo "awful boring dull mess $i"; done > "$tmp/data/neg.txt"
cat > "$tmp/r.yaml" <<EOF
title: browser check <script>alert(1)</script>
model: $HONE_SRC/tests/data/tiny_gpt2/tiny_gpt2.gguf
data: [data/pos.txt:pos, data/neg.txt:neg]
budget: {max_len: 12, batch: 8}
methods: [head, lora, icl-0shot, icl-1shot, feature]
options:
  head: {epochs: 3}
  lora: {epochs: 1, rank: 2}
  icl-0shot: {method: icl, shots: 0}
  icl-1shot: {method: icl, shots: 1}
EOF
"$HONE" bakeoff "$tmp/r.yaml" -o "$tmp/rep" >/dev/null 2>"$tmp/err"; rc=$?
check "the bakeoff: exit 0" '[ $rc -eq 0 ] || { cat "$tmp/err" >&2; false; }'
[ $rc -eq 0 ] || { echo "$pass passed, $fail failed"; exit 1; }

# PAGE -> PAGE.dom (the DOM after load) and PAGE.log (the browser's log, console messages included).
open_page() {
    timeout 120 "$browser" --headless --no-sandbox --disable-gpu --no-first-run --user-data-dir="$tmp/profile" \
        --enable-logging=stderr --v=0 --dump-dom "file://$1" >"$1.dom" 2>"$1.log"
}
page="$tmp/rep/report.html"
open_page "$page"; rc=$?
check "chromium loads the page" '[ $rc -eq 0 ] && grep -q "</html>" "$page.dom" || { tail -5 "$page.log" >&2; false; }'
check "the script ran to its end (data-script=\"ok\" on <body>)" 'grep -q "<body[^>]* data-script=\"ok\"" "$page.dom"'
check "no script error in the console" '! grep -q "Uncaught\|:ERROR:CONSOLE" "$page.log" || { grep CONSOLE "$page.log" >&2; false; }'
check "the recipe's <script> title stayed text" '! grep -q "<script>alert" "$page.dom" && grep -q "&lt;script&gt;alert(1)" "$page.dom"'

ran=$(python3 -c 'import json,sys; print(" ".join(x["label"] for x in json.load(open(sys.argv[1]))["methods"] if x["status"] == "ran"))' "$tmp/rep/report.json")
other=$(python3 -c 'import json,sys; print(" ".join(x["label"] for x in json.load(open(sys.argv[1]))["methods"] if x["status"] != "ran"))' "$tmp/rep/report.json")
n=$(wc -w <<<"$ran")
echo "methods that ran: $ran${other:+; not run: $other}"
check "every method ran (head, lora, icl-0shot, icl-1shot, feature)" '[ "$ran" = "head lora icl-0shot icl-1shot feature" ]'
# The DOM: points in the charts in order, one <g class="point" data-label=...> each.
chart_methods() { # CHART-ID -> the labels of its points, sorted
    awk -v id="$1" '/<svg id="/ { on = index($0, "<svg id=\"" id "\"") > 0 } on && /<g class="point"/ {
        match($0, /data-label="[^"]*"/); print substr($0, RSTART + 12, RLENGTH - 13) } /<\/svg>/ { on = 0 }' "$page.dom" | sort
}
want=$(tr ' ' '\n' <<<"$ran" | sort)
for c in chart-params chart-time; do
    got=$(chart_methods $c)
    check "$c: one point per label that ran" '[ "$got" = "$want" ] || { echo "  $c has: $got" >&2; false; }'
done
check "the script counted the points (data-points = 2 x $n)" 'grep -q "<body[^>]* data-points=\"$((2 * n))\"" "$page.dom"'
check "icl (0 trainable parameters) sits in the 0 column of the parameters chart" \
    'grep -q "<text class=\"tick\"[^>]*>0</text>" "$page.dom"'

# A broken copy: the same checks must catch its error.
sed 's/document.body.setAttribute(.data-script., .ok.);/undefinedFunction(); &/' "$page" > "$tmp/broken.html"
open_page "$tmp/broken.html"
check "a broken script is caught: no data-script, an Uncaught error in the console" \
    '! grep -q "data-script=\"ok\"" "$tmp/broken.html.dom" && grep -q "Uncaught ReferenceError: undefinedFunction" "$tmp/broken.html.log"'

# A generation report: four charts (exact match and held-out loss, against trainable parameters and training time).
for i in $(seq 1 12); do echo "{\"prompt\": \"capital of land $i?\", \"completion\": \"city $i\"}"; done > "$tmp/data/sft.jsonl"
for i in 1 2 3; do echo "{\"prompt\": \"capital of land $i?\", \"answer\": \"city $i\"}"; done > "$tmp/data/qa.jsonl"
cat > "$tmp/g.yaml" <<EOF
title: generation <script>alert(2)</script>
task: generate
model: $HONE_SRC/tests/data/tiny_gpt2/tiny_gpt2.gguf
data: [data/sft.jsonl]
qa: [data/qa.jsonl]
budget: {max_len: 32, batch: 4, epochs: 1, max_new_tokens: 4}
methods: [lora, ia3, prompt-tuning]
options:
  prompt-tuning: {num_virtual_tokens: 4}
EOF
"$HONE" bakeoff "$tmp/g.yaml" -o "$tmp/grep" >/dev/null 2>"$tmp/gerr"; rc=$?
check "the generation bakeoff: exit 0" '[ $rc -eq 0 ] || { cat "$tmp/gerr" >&2; false; }'
if [ $rc -eq 0 ]; then
    page="$tmp/grep/report.html" # chart_methods reads $page.dom
    open_page "$page"; rc=$?
    check "generation: chromium loads the page, the script ran to its end, no error" \
        '[ $rc -eq 0 ] && grep -q "<body[^>]* data-script=\"ok\"" "$page.dom" && ! grep -q "Uncaught\|:ERROR:CONSOLE" "$page.log"'
    check "generation: the title stayed text" '! grep -q "<script>alert" "$page.dom" && grep -q "&lt;script&gt;alert(2)" "$page.dom"'
    ran=$(python3 -c 'import json,sys; print(" ".join(x["label"] for x in json.load(open(sys.argv[1]))["methods"] if x["status"] == "ran"))' "$tmp/grep/report.json")
    check "generation: every method ran (lora, ia3, prompt-tuning)" '[ "$ran" = "lora ia3 prompt-tuning" ]'
    want=$(tr ' ' '\n' <<<"$ran" | sort)
    for c in chart-em-params chart-loss-params chart-em-time chart-loss-time; do
        got=$(chart_methods $c)
        check "generation: $c: one point per label that ran" '[ "$got" = "$want" ] || { echo "  $c has: $got" >&2; false; }'
    done
    check "generation: the script counted the points (data-points = 4 x 3)" 'grep -q "<body[^>]* data-points=\"12\"" "$page.dom"'
fi

echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
