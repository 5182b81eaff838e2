#!/usr/bin/env bash
# `hone bakeoff RECIPE.yaml -o DIR`: on the tiny BERT of tests/data with made-up data, feature, head and a variant
# of head (head-fast: its own label and options) run and icl is listed as not applicable (an encoder); report.json
# has every row with its label and measured numbers and the
# majority baseline; report.html is self-contained (no '://' anywhere) and escapes the recipe's title; on the tiny
# GPT-2 a method that fails (icl with a label word for no class) is reported while head still runs (exit 1, the
# report written); bad inputs (no recipe, missing key, unknown method, a data file that does not exist, broken YAML,
# an alias, an unknown option) exit non-zero with one line naming FILE:LINE:COLUMN or the file, and leave no report
# folder. task: generate on the tiny GPT-2 (every PEFT method and a variant, the base row, finite numbers, four
# charts; a rerun gives the same numbers; missing or broken questions: one line). Then all-MiniLM-L6-v2 on
# rt-polarity (../shared/data; skipped when absent): head beats the majority class.
# The report in a browser: tests/test_report_browser.sh.
set -u
fail=0; pass=0
check() { if eval "$2"; then pass=$((pass+1)); else fail=$((fail+1)); echo "FAILED: $1" >&2; fi; }
one_line() { [ $(wc -l <<<"$err") -eq 1 ]; }
bert="$HONE_SRC/tests/data/tiny_bert/tiny_bert.gguf"
gpt2="$HONE_SRC/tests/data/tiny_gpt2/tiny_gpt2.gguf"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
json() { python3 -c "import json,sys; r=json.load(open(sys.argv[1])); $2" "$1"; }

mkdir -p "$tmp/data"
for i in $(seq 1 24); do echo "great fun lovely film $i"; done > "$tmp/data/pos.txt"
for i in $(seq 1 24); do echo "awful boring dull mess $i"; done > "$tmp/data/neg.txt"
cat > "$tmp/ok.yaml" <<EOF
title: tiny <b>bake</b> & "off"
model: $bert
data: [data/pos.txt:pos, data/neg.txt:neg]   # relative to the recipe's folder
test_split: 0.25
seed: 3
budget: {max_train: 30, max_len: 16, batch: 8}
methods: [feature, head, head-fast, icl]
options:
  head: {epochs: 4, lr: 0.01}
  head-fast: {method: head, epochs: 1, lr: 0.1}
EOF

# A bakeoff on the tiny BERT.
out=$(cd / && "$HONE" bakeoff "$tmp/ok.yaml" -o "$tmp/rep" 2>"$tmp/err"); rc=$?
check "tiny BERT: exit 0" '[ $rc -eq 0 ] || { cat "$tmp/err" >&2; false; }'
check "stderr: one line a method with its place and label" 'grep -q "^\[1/4\] feature .*accuracy" "$tmp/err" &&
    grep -q "^\[2/4\] head .*accuracy" "$tmp/err" && grep -q "^\[3/4\] head-fast .*accuracy" "$tmp/err" &&
    grep -q "^\[4/4\] icl .*not-applicable: .*decoder" "$tmp/err"'
check "stdout: the table and the report's path" 'grep -q "^majority *baseline" <<<"$out" && grep -q "^head-fast *ran" <<<"$out" &&
    grep -q "report: $tmp/rep/report.html" <<<"$out"'
check "report.json and report.html, no temporary file left" '[ -f "$tmp/rep/report.json" ] && [ -f "$tmp/rep/report.html" ] && [ $(ls "$tmp/rep" | wc -l) -eq 2 ]'
check "report.json: rows feature, head, head-fast (a head) ran, icl not-applicable with its reason" "json '$tmp/rep/report.json' '
m = {x[\"label\"]: x for x in r[\"methods\"]}
assert [x[\"label\"] for x in r[\"methods\"]] == [\"feature\", \"head\", \"head-fast\", \"icl\"]
assert [x[\"method\"] for x in r[\"methods\"]] == [\"feature\", \"head\", \"head\", \"icl\"]
assert m[\"feature\"][\"status\"] == \"ran\" and m[\"head\"][\"status\"] == \"ran\" and m[\"head-fast\"][\"status\"] == \"ran\"
assert m[\"head-fast\"][\"options\"][\"epochs\"] == 1 and abs(m[\"head-fast\"][\"options\"][\"lr\"] - 0.1) < 1e-6
assert m[\"icl\"][\"status\"] == \"not-applicable\" and \"decoder\" in m[\"icl\"][\"message\"] and m[\"icl\"][\"accuracy\"] is None
'"
check "report.json: every number of a row that ran" "json '$tmp/rep/report.json' '
for x in r[\"methods\"][:3]:
    assert 0 <= x[\"accuracy\"] <= 1 and 0 <= x[\"macro_f1\"] <= 1, x
    assert x[\"trainable_parameters\"] > 0 and x[\"peak_rss_bytes\"] > 1000000, x
    assert x[\"train_seconds\"] > 0 and x[\"eval_seconds\"] > 0 and abs(x[\"wall_seconds\"] - x[\"train_seconds\"] - x[\"eval_seconds\"]) < 1e-3
    assert x[\"train_tokens_per_second\"] > 0 and x[\"eval_tokens_per_second\"] > 0, x
assert r[\"methods\"][1][\"options\"][\"epochs\"] == 4 and abs(r[\"methods\"][1][\"options\"][\"lr\"] - 0.01) < 1e-6
'"
check "report.json: data (36 + 12 stratified), model, budget, machine, baseline" "json '$tmp/rep/report.json' '
d = r[\"data\"]
assert (d[\"train_examples\"], d[\"test_examples\"], d[\"classes\"]) == (30, 12, [\"pos\", \"neg\"]), d
assert d[\"train_tokens\"] > 30 and d[\"test_tokens\"] > 12
assert r[\"model\"][\"architecture\"] == \"bert\" and r[\"model\"][\"parameters\"] > 0
assert r[\"budget\"][\"seed\"] == 3 and r[\"budget\"][\"max_len\"] == 16 and r[\"machine\"][\"threads\"] >= 1
b = r[\"baseline\"]
assert b[\"status\"] == \"baseline\" and b[\"accuracy\"] == 0.5 and b[\"trainable_parameters\"] == 0
'"
check "report.html: self-contained (no URL), a table row and two chart points per label that ran" \
    '! grep -q "://" "$tmp/rep/report.html" && ! grep -qi "<link\|src=\|@import" "$tmp/rep/report.html" &&
     [ $(grep -c "<g class=\"point\" data-label=\"feature\"" "$tmp/rep/report.html") -eq 2 ] &&
     [ $(grep -c "<g class=\"point\" data-label=\"head\"" "$tmp/rep/report.html") -eq 2 ] &&
     [ $(grep -c "<g class=\"point\" data-label=\"head-fast\"" "$tmp/rep/report.html") -eq 2 ] &&
     grep -q "<tr class=\"ran\" data-label=\"head-fast\"><td data-v=\"\" title=\"a variant of head\">" "$tmp/rep/report.html" &&
     ! grep -q "class=\"point\" data-label=\"icl\"" "$tmp/rep/report.html" && grep -q "<tr class=\"na\" data-label=\"icl\"" "$tmp/rep/report.html"'
check "report.html: the title escaped" 'grep -q "<h1>tiny &lt;b&gt;bake&lt;/b&gt; &amp; &quot;off&quot;</h1>" "$tmp/rep/report.html" && ! grep -q "<b>bake" "$tmp/rep/report.html"'
# The same recipe again: the same data, the same accuracies (seeded), the report replaced in place.
"$HONE" bakeoff "$tmp/ok.yaml" -o "$tmp/rep2" >/dev/null 2>&1
acc() { json "$1" 'print(" ".join("%.6f" % x["accuracy"] for x in r["methods"][:3]))'; }
check "a rerun: the same accuracies" '[ "$(acc "$tmp/rep/report.json")" = "$(acc "$tmp/rep2/report.json")" ]'

# A method that fails: reported, the others run, exit 1, the report written.
cat > "$tmp/fails.yaml" <<EOF
model: $gpt2
data: [data/pos.txt:pos, data/neg.txt:neg]
budget: {max_len: 16}
methods: [icl, head]
options:
  icl: {shots: 1, label_words: [pos=good, zzz=bad]}
  head: {epochs: 2}
EOF
out=$("$HONE" bakeoff "$tmp/fails.yaml" -o "$tmp/rep3" 2>"$tmp/err"); rc=$?
check "a failing method: exit 1, said on stderr" '[ $rc -eq 1 ] && grep -q "^\[1/2\] icl .*failed: .*zzz" "$tmp/err" && grep -q "1 of 2 methods failed" "$tmp/err"'
check "a failing method: its row says why, the next method ran" "json '$tmp/rep3/report.json' '
m = r[\"methods\"]
assert m[0][\"status\"] == \"failed\" and \"zzz\" in m[0][\"message\"] and m[1][\"status\"] == \"ran\", m
'"

# Bad input: one line, non-zero, no report folder.
bad() { # NAME RECIPE-TEXT PATTERN
    name=$1 pat=$3
    printf '%s\n' "$2" > "$tmp/$name.yaml"
    err=$("$HONE" bakeoff "$tmp/$name.yaml" -o "$tmp/out-$name" 2>&1 >/dev/null); rc=$?
    check "$name: exit 1, one line: $pat" '[ $rc -eq 1 ] && one_line && grep -q -- "$pat" <<<"$err" && [ ! -e "$tmp/out-$name" ]' ||
        echo "  got (exit $rc): $err" >&2
}
head="model: $bert
data: [data/pos.txt:pos, data/neg.txt:neg]"
bad no-methods "$head" "no-methods.yaml:1:1: methods: missing (expected a list of method names, or all)"
bad no-model "data: [data/pos.txt:pos]
methods: [head]" "no-model.yaml:1:1: model: missing"
bad unknown-method "$head
methods: [head, nope]" "unknown-method.yaml:3:17: methods: unknown method 'nope' (this build has: all, feature, head"
bad twice "$head
methods: [head, head]" "twice.yaml:3:17: methods: 'head' is listed twice"
bad missing-data "model: $bert
data: [data/pos.txt:pos, data/none.txt:neg]
methods: [head]" "data/none.txt"
bad broken "$head
methods: [head
budget: {" "broken.yaml:.*YAML syntax error"
bad alias "$head
methods: &m [head]
options: {head: *m}" "alias.yaml:4:17: YAML aliases (\*m) are not supported"
bad option "$head
methods: [head]
options: {head: {rnak: 4}}" "option.yaml:4:18: options.head.rnak: unknown option (expected one of epochs, lr"
bad budget "$head
methods: [head]
budget: {max_len: -3}" "budget.yaml:4:19: budget.max_len: expected a whole number >= 1, got '-3'"
bad split "$head
test_split: 1.5
methods: [head]" "split.yaml:3:13: test_split: expected a number in \[0, 1\], got '1.5'"
bad unknown-key "$head
method: [head]" "unknown-key.yaml:3:1: method: unknown key (expected title, model"
bad empty "" "empty.yaml:1:1: the recipe is empty"
err=$("$HONE" bakeoff "$tmp/none.yaml" 2>&1); rc=$?
check "a recipe that does not exist: exit 1, named" '[ $rc -eq 1 ] && one_line && grep -q "none.yaml: cannot read the recipe" <<<"$err"'
err=$("$HONE" bakeoff 2>&1); rc=$?
check "no recipe: usage error" '[ $rc -eq 2 ] && one_line && grep -q "no recipe" <<<"$err"'
err=$("$HONE" bakeoff "$tmp/ok.yaml" --bogus 2>&1); rc=$?
check "unknown flag: usage error" '[ $rc -eq 2 ] && one_line && grep -q -- "--bogus" <<<"$err"'
out=$("$HONE" bakeoff --help); rc=$?
check "--help names the recipe keys and this build's methods" '[ $rc -eq 0 ] && grep -q "max_train" <<<"$out" && grep -q "every method of this build:" <<<"$out" && grep -q "^  *feature, head, " <<<"$out" && grep -q "icl-0: {method: icl" <<<"$out"'

# task: generate on the tiny GPT-2: every PEFT method of adapt/method.h on made-up capital questions (24 SFT
# examples, 20% held out; 9 questions), each row ran with finite numbers, the base row, the generation table and its
# four charts; lora trained longer answers the questions it saw (exact match above the base's 0). The questions are
# {prompt, answer} lines and an alpaca one, read whatever the data's format.
mkdir -p "$tmp/gen"
caps=(Zorbia:Quill Marn:Tov Pella:Ruse Oska:Lind Vel:Arno Kesh:Dura Tamb:Orin Ylen:Sarp)
for i in $(seq 0 23); do c=${caps[$((i % 8))]}; echo "{\"prompt\": \"capital of ${c%%:*}?\", \"completion\": \"${c##*:}\"}"; done > "$tmp/gen/train.jsonl"
for c in "${caps[@]}"; do echo "{\"prompt\": \"capital of ${c%%:*}?\", \"answer\": [\"${c##*:}\", \"x\"]}"; done > "$tmp/gen/qa.jsonl"
echo '{"instruction": "capital of Vel?", "output": "Arno"}' >> "$tmp/gen/qa.jsonl" # questions in another shape
cat > "$tmp/gen.yaml" <<EOF2
title: tiny generation
task: generate
model: $gpt2
data: [gen/train.jsonl]
qa: gen/qa.jsonl
format: prompt_completion
seed: 3
budget: {max_len: 32, batch: 4, epochs: 2, max_new_tokens: 6}
methods: all
options:
  prompt-tuning: {num_virtual_tokens: 4}
  p-tuning: {num_virtual_tokens: 4}
  prefix-tuning: {num_virtual_tokens: 4}
  lora-long: {method: lora, epochs: 40, lr: 0.02, rank: 2}
EOF2
out=$("$HONE" bakeoff "$tmp/gen.yaml" -o "$tmp/rep-gen" 2>"$tmp/err"); rc=$?
check "generate: exit 0" '[ $rc -eq 0 ] || { cat "$tmp/err" >&2; false; }'
check "generate: stderr: the base first, then each method with its exact match and held-out loss" \
    'grep -q "^\[1/10\] base .*exact match 0.0000 (0)  held-out loss [0-9.]*  0 trainable" "$tmp/err" &&
     grep -q "^\[2/10\] lora .*exact match [0-9.]* ([0-9]*)  held-out loss [0-9.]*  [0-9]* trainable" "$tmp/err" &&
     grep -q "^\[3/10\] lora-long .*exact match" "$tmp/err" && grep -q "^\[10/10\] adapter-pfeiffer .*exact match" "$tmp/err"'
check "generate: stdout: the table" 'grep -q "^method  *status  *exact-match held-out-loss" <<<"$out" && grep -q "^base  *baseline" <<<"$out"'
check "generate: report.json: every method's row ran with finite numbers, the base row" "json '$tmp/rep-gen/report.json' '
import math
assert r[\"task\"] == \"generate\"
want = [\"lora\", \"lora-long\", \"dora\", \"ia3\", \"prompt-tuning\", \"p-tuning\", \"prefix-tuning\", \"adapter-houlsby\", \"adapter-pfeiffer\"]
assert [x[\"label\"] for x in r[\"methods\"]] == want, [x[\"label\"] for x in r[\"methods\"]]
for x in r[\"methods\"]:
    assert x[\"status\"] == \"ran\", x
    assert 0 <= x[\"exact_match\"] <= 1 and math.isfinite(x[\"val_loss\"]) and x[\"val_loss\"] > 0, x
    assert x[\"trainable_parameters\"] > 0 and x[\"peak_rss_bytes\"] > 1000000 and x[\"train_seconds\"] > 0, x
    assert x[\"train_tokens_per_second\"] > 0 and x[\"eval_seconds\"] > 0 and x[\"qa_seconds\"] > 0, x
    assert x[\"correct\"] == round(x[\"exact_match\"] * 9), x
b = r[\"baseline\"]
assert b[\"label\"] == \"base\" and b[\"status\"] == \"baseline\" and b[\"trainable_parameters\"] == 0 and b[\"train_seconds\"] is None
assert math.isfinite(b[\"val_loss\"]) and b[\"exact_match\"] == 0
d = r[\"data\"]
assert (d[\"train_examples\"], d[\"test_examples\"], d[\"qa_questions\"]) == (19, 5, 9), d
m = {x[\"label\"]: x for x in r[\"methods\"]}
assert m[\"prompt-tuning\"][\"options\"][\"num_virtual_tokens\"] == 4 and m[\"lora-long\"][\"options\"][\"epochs\"] == 40
assert m[\"lora-long\"][\"exact_match\"] >= 0.5, m[\"lora-long\"]
assert m[\"lora-long\"][\"val_loss\"] < b[\"val_loss\"] and m[\"lora\"][\"val_loss\"] < b[\"val_loss\"]
'"
check "generate: report.html: the table's rows, four charts with a point per method, no URL" \
    '! grep -q "://" "$tmp/rep-gen/report.html" && [ $(grep -c "<g class=\"point\" data-label=\"lora-long\"" "$tmp/rep-gen/report.html") -eq 4 ] &&
     [ $(grep -c "<g class=\"point\"" "$tmp/rep-gen/report.html") -eq 36 ] && grep -q "<tr class=\"baseline\" data-label=\"base\"" "$tmp/rep-gen/report.html" &&
     grep -q "<svg id=\"chart-loss-time\"" "$tmp/rep-gen/report.html" && grep -q ">base model [0-9.]*</text>" "$tmp/rep-gen/report.html"'
# The same recipe again: the same numbers (seeded).
"$HONE" bakeoff "$tmp/gen.yaml" -o "$tmp/rep-gen2" >/dev/null 2>&1
gnum() { json "$1" 'print(" ".join("%.6f %.4f" % (x["val_loss"], x["exact_match"]) for x in r["methods"]))'; }
check "generate: a rerun: the same held-out losses and exact matches" '[ "$(gnum "$tmp/rep-gen/report.json")" = "$(gnum "$tmp/rep-gen2/report.json")" ]'
# Missing or broken questions: one line each, no report folder.
cat > "$tmp/gen-bad.yaml" <<EOF2
task: generate
model: $gpt2
data: [gen/train.jsonl]
budget: {max_len: 32}
methods: [lora]
EOF2
err=$("$HONE" bakeoff "$tmp/gen-bad.yaml" -o "$tmp/out-gen-bad" 2>&1 >/dev/null); rc=$?
check "generate: no qa and no SQuAD data: exit 1, one line naming qa" '[ $rc -eq 1 ] && one_line && grep -q "gen-bad.yaml: qa: missing" <<<"$err" && [ ! -e "$tmp/out-gen-bad" ]' ||
    echo "  got (exit $rc): $err" >&2
printf '{"prompt": "a", "answer": "b"}\n{"prompt": "c"}\n' > "$tmp/gen/badqa.jsonl"
printf 'qa: gen/badqa.jsonl\n' >> "$tmp/gen-bad.yaml"
err=$("$HONE" bakeoff "$tmp/gen-bad.yaml" -o "$tmp/out-gen-bad" 2>&1 >/dev/null); rc=$?
check "generate: a broken qa file: exit 1, one line naming file:line and the field" '[ $rc -eq 1 ] && one_line && grep -q "badqa.jsonl:2: answer: missing" <<<"$err" && [ ! -e "$tmp/out-gen-bad" ]' ||
    echo "  got (exit $rc): $err" >&2

# all-MiniLM-L6-v2 on rt-polarity: head beats the majority class on real data.
data="${HONE_SHARED_DATA:-$HONE_SRC/../shared/data}/rt-polarity"
minilm=$("$HONE" pull all-minilm-l6-v2 2>/dev/null | tail -1)
if [ ! -f "$data/rt-polarity.pos" ] || [ -z "$minilm" ] || [ ! -d "$minilm" ]; then
    echo "$pass passed, $fail failed; skipped all-MiniLM-L6-v2 on rt-polarity: ../shared/data or the model is absent"
    [ $fail -eq 0 ] || exit 1
    exit 77
fi
n_train=200; n_test=100
[ -n "${HONE_SANITIZED:-}" ] && n_train=40 && n_test=20 # the sanitizer build runs unoptimised
cat > "$tmp/minilm.yaml" <<EOF
model: all-minilm-l6-v2
data: [$data/rt-polarity.pos:pos, $data/rt-polarity.neg:neg]
budget: {max_train: $n_train, max_test: $n_test, max_len: 32}
methods: [head, icl]
EOF
out=$("$HONE" bakeoff "$tmp/minilm.yaml" -o "$tmp/rep4" 2>"$tmp/err"); rc=$?
check "MiniLM on rt-polarity: exit 0" '[ $rc -eq 0 ] || { cat "$tmp/err" >&2; false; }'
if [ $rc -eq 0 ]; then
    res=$(json "$tmp/rep4/report.json" 'print("%.4f %.4f %s %d" % (r["methods"][0]["accuracy"], r["baseline"]["accuracy"], r["methods"][1]["status"], r["data"]["test_examples"]))')
    read -r a b st n <<<"$res"
    echo "MiniLM on rt-polarity ($n_train train, $n test): head $a, majority $b, icl $st"
    if [ -z "${HONE_SANITIZED:-}" ]; then
        check "MiniLM: head beats the majority class by 0.1" 'awk -v a=$a -v b=$b "BEGIN { exit !(a > b + 0.1) }"'
    fi
    check "MiniLM: icl not applicable, $n_test test examples" '[ "$st" = not-applicable ] && [ "$n" = $n_test ]'
fi

echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
