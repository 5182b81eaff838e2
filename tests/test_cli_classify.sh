#!/usr/bin/env bash
# `hone train --task classify`, `hone eval --task classify` and `hone classify` on the tiny models of tests/data:
# a run trained and saved (classify.json: task, method, classes in order of first appearance, the base record),
# eval's accuracy / macro-F1 / confusion (text and --json) agreeing with the labels `hone classify` prints for the
# same texts, every method's saved run scoring its validation file in eval as train did in memory, a run refused
# for another model; usage errors exit 2 and data errors exit 1, each one line (missing
# file, missing column naming the header's, one class, unseen labels at evaluation, bad UTF-8); --task lm (the
# default) still reaches the LM path. The method is icl on the tiny GPT-2 when this build has it, else head on the
# tiny BERT (the test skips when the build has neither).
set -u
fail=0; pass=0
check() { if eval "$2"; then pass=$((pass+1)); else fail=$((fail+1)); echo "FAILED: $1" >&2; fi; }
one_line() { [ $(wc -l <<<"$err") -eq 1 ]; }
gpt2="$HONE_SRC/tests/data/tiny_gpt2/tiny_gpt2.gguf"
bert="$HONE_SRC/tests/data/tiny_bert/tiny_bert.gguf"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

printf 'great fun\nlovely film\nwonderful acting\nbrilliant work\nsuperb cast\nfunny and warm\n' > "$tmp/pos.txt"
printf 'awful\nboring mess\ndull plot\nterrible acting\nbad film\nweak script\n' > "$tmp/neg.txt"
{
    while read -r t; do printf '{"text": "%s", "label": "pos"}\n' "$t"; done < "$tmp/pos.txt"
    while read -r t; do printf '{"text": "%s", "label": "neg"}\n' "$t"; done < "$tmp/neg.txt"
} > "$tmp/train.jsonl"
printf 'id,review,sentiment\n1,"a great, lovely film",pos\n2,dull and bad,neg\n3,"so ""funny""",pos\n4,weak,neg\n' > "$tmp/test.csv"

# Usage errors: exit 2, one line.
err=$("$HONE" train --task classify --method head --data "$tmp/train.jsonl" -o "$tmp/r" 2>&1); rc=$?
check "train without -m: exit 2, one line" '[ $rc -eq 2 ] && one_line && grep -q "no model" <<<"$err"'
err=$("$HONE" train --task classify -m "$gpt2" --method no-such --data "$tmp/train.jsonl" -o "$tmp/r" 2>&1); rc=$?
check "unknown method: exit 2, lists the known ones" '[ $rc -eq 2 ] && one_line && grep -q "expected one of" <<<"$err"'
methods=$(sed -n "s/.*expected one of //p" <<<"$err")
err=$("$HONE" train --task regress -m "$gpt2" 2>&1); rc=$?
check "--task regress: exit 2" '[ $rc -eq 2 ] && one_line && grep -q "lm or classify" <<<"$err"'
err=$("$HONE" train --task classify -m "$gpt2" --method head --data "$tmp/train.jsonl" --val-split 1.5 -o "$tmp/r" 2>&1); rc=$?
check "--val-split 1.5: exit 2" '[ $rc -eq 2 ] && one_line && grep -q "val-split" <<<"$err"'
err=$("$HONE" train --task classify -m "$gpt2" --method head --data "$tmp/train.jsonl" --bogus -o "$tmp/r" 2>&1); rc=$?
check "unknown flag: exit 2" '[ $rc -eq 2 ] && one_line && grep -q "'"'"'--bogus'"'"'" <<<"$err"'
err=$("$HONE" eval -m "$gpt2" --data "$tmp/train.jsonl" 2>&1); rc=$?
check "eval without --run: exit 2" '[ $rc -eq 2 ] && one_line && grep -q "run" <<<"$err"'
err=$("$HONE" eval -m "$gpt2" --run "$tmp/r" --data "$tmp/train.jsonl" --task lm 2>&1); rc=$?
check "eval --task lm: exit 2" '[ $rc -eq 2 ] && one_line'
err=$("$HONE" classify -m "$gpt2" --run "$tmp/r" 2>&1); rc=$?
check "classify without text: exit 2" '[ $rc -eq 2 ] && one_line && grep -q "no text" <<<"$err"'
err=$("$HONE" train --task lm --bogus 2>&1); rc=$?
check "--task lm goes to the LM path (its own flag errors)" '[ $rc -eq 2 ] && grep -q "hone train --help lists the flags" <<<"$err"'
out=$("$HONE" train --task=lm -m "$gpt2" --data "$tmp/x.jsonl" -o "$tmp/lm" --print-config 2>&1); rc=$?
check "--task=lm --print-config: the LM recipe" '[ $rc -eq 0 ] && grep -q "^method: lora" <<<"$out"'

if grep -qw icl <<<"$methods"; then
    model=$gpt2; other=$bert; method=icl; extra="--shots 1 --max-len 16"
elif grep -qw head <<<"$methods"; then
    model=$bert; other=$gpt2; method=head; extra="--epochs 2 --batch 4 --max-len 16"
else
    echo "skipped: this build has neither icl nor head (methods: $methods)"; exit 77
fi
echo "method: $method on $(basename "$model")"

# Data errors: exit 1, one line.
err=$("$HONE" train --task classify -m "$model" --method $method --data "$tmp/none.jsonl" -o "$tmp/r" 2>&1); rc=$?
check "missing file: exit 1, names it" '[ $rc -eq 1 ] && one_line && grep -q "none.jsonl" <<<"$err"'
err=$("$HONE" train --task classify -m "$model" --method $method --data "$tmp/pos.txt:pos" -o "$tmp/r" 2>&1); rc=$?
check "one class: exit 1" '[ $rc -eq 1 ] && one_line && grep -q "one class" <<<"$err"'
err=$("$HONE" train --task classify -m "$model" --method $method --data "$tmp/test.csv" -o "$tmp/r" 2>&1); rc=$?
check "missing column: exit 1, names the header's" '[ $rc -eq 1 ] && one_line && grep -q "no column '"'"'text'"'"'.*'"'"'review'"'"'" <<<"$err"'
printf '{"text": "ok", "label": "pos"}\n{"text": "bad \xff", "label": "neg"}\n' > "$tmp/bad.jsonl"
err=$("$HONE" train --task classify -m "$model" --method $method --data "$tmp/bad.jsonl" -o "$tmp/r" 2>&1); rc=$?
check "bad UTF-8: exit 1, file:line" '[ $rc -eq 1 ] && one_line && grep -q "bad.jsonl:2: invalid UTF-8" <<<"$err"'

# A run: trained, saved, evaluated, used.
run="$tmp/run"
out=$("$HONE" train --task classify -m "$model" --method $method --data "$tmp/train.jsonl" --val-split 0.34 $extra \
      -o "$run" 2>"$tmp/err"); rc=$?
check "train: exit 0" '[ $rc -eq 0 ] || { cat "$tmp/err" >&2; false; }'
check "train: the validation line" 'grep -Eq "^validation: accuracy [01]\.[0-9]{4}, macro-F1 [01]\.[0-9]{4} \(4 examples\)$" <<<"$out"'
check "train: 8 + 4 examples, 2 classes (pos, neg)" 'grep -q "8 training examples, 2 classes (pos, neg), 4 for validation" "$tmp/err"'
check "classify.json: task, method, classes in order, base" 'grep -q "\"task\": \"classify\"" "$run/classify.json" &&
    grep -q "\"method\": \"$method\"" "$run/classify.json" && tr -d " \n" < "$run/classify.json" | grep -q "\"classes\":\[\"pos\",\"neg\"\]" &&
    grep -q "\"hash\": \"[0-9a-f]\{16\}\"" "$run/classify.json"'

out=$("$HONE" eval -m "$model" --run "$run" --data "$tmp/test.csv" --text-col review --label-col sentiment 2>&1); rc=$?
check "eval: exit 0, accuracy, macro-F1, confusion" '[ $rc -eq 0 ] && grep -Eq "^accuracy  [01]\.[0-9]{4}  \(4 examples\)" <<<"$out" &&
    grep -q "^macro-F1" <<<"$out" && grep -q "^confusion" <<<"$out" && [ $(grep -Ec "^(pos|neg) " <<<"$out") -eq 2 ]'
json=$("$HONE" eval -m "$model" --run "$run" --data "$tmp/test.csv" --text-col review --label-col sentiment --json 2>/dev/null); rc=$?
check "eval --json: one object with accuracy and macro_f1" '[ $rc -eq 0 ] && [ $(wc -l <<<"$json") -eq 1 ] &&
    grep -q "^{\"accuracy\":[0-9.e-]*,\"macro_f1\":[0-9.e-]*," <<<"$json"'
# The labels `hone classify` gives the same texts make eval's accuracy.
labels=$("$HONE" classify -m "$model" --run "$run" "a great, lovely film" "dull and bad" 'so "funny"' weak 2>/dev/null); rc=$?
check "classify: one line per text, a class and a probability" '[ $rc -eq 0 ] && [ $(wc -l <<<"$labels") -eq 4 ] &&
    awk -F"\t" '"'"'($1 != "pos" && $1 != "neg") || $2 < 0.5 || $2 > 1 { exit 1 }'"'"' <<<"$labels"'
right=$(paste <(cut -f1 <<<"$labels") <(printf 'pos\nneg\npos\nneg\n') | awk '$1 == $2 { n++ } END { print n + 0 }')
acc=$(sed 's/.*"accuracy":\([0-9.e-]*\),.*/\1/' <<<"$json")
check "eval accuracy = classify's labels against the gold ($right of 4, eval $acc)" 'awk -v a="$acc" -v r="$right" "BEGIN { exit !(a * 4 - r < 1e-9 && r - a * 4 < 1e-9) }"'
stdin_labels=$(printf 'a great, lovely film\ndull and bad\n' | "$HONE" classify -m "$model" --run "$run" - 2>/dev/null)
check "classify - reads stdin" '[ "$stdin_labels" = "$(head -2 <<<"$labels")" ]'

# --val FILE: validation from a file, with the training classes (an unseen label there is an error).
printf '{"text": "fine film", "label": "pos"}\n{"text": "poor", "label": "neg"}\n' > "$tmp/val.jsonl"
out=$("$HONE" train --task classify -m "$model" --method $method --data "$tmp/train.jsonl" --val "$tmp/val.jsonl" $extra \
      -o "$tmp/run2" 2>&1); rc=$?
check "--val FILE: 12 + 2 examples" '[ $rc -eq 0 ] && grep -q "12 training examples, 2 classes (pos, neg), 2 for validation" <<<"$out" &&
    grep -q "(2 examples)" <<<"$out"'
printf '{"text": "fine film", "label": "ok"}\n' > "$tmp/val_bad.jsonl"
err=$("$HONE" train --task classify -m "$model" --method $method --data "$tmp/train.jsonl" --val "$tmp/val_bad.jsonl" \
      $extra -o "$tmp/run3" 2>&1); rc=$?
check "--val with an unseen label: exit 1, file:line" '[ $rc -eq 1 ] && one_line && grep -q "val_bad.jsonl:1" <<<"$err"'

# Every method of this build on the tiny GPT-2: the run saved and loaded by eval scores the validation file exactly
# as train scored it in memory.
printf 'good fun\nsuperb\nlovely cast\n' > "$tmp/vpos.txt"; printf 'dull\nawful mess\nweak plot\n' > "$tmp/vneg.txt"
for me in $(tr -d ',' <<<"$methods"); do
    out=$("$HONE" train --task classify -m "$gpt2" --method $me --data "$tmp/train.jsonl" --val "$tmp/vpos.txt:pos" \
          --val "$tmp/vneg.txt:neg" --shots 1 --max-len 16 --epochs 2 --batch 4 -o "$tmp/m_$me" 2>&1); rc=$?
    want=$(sed -n 's/^validation: accuracy \([0-9.]*\), macro-F1 \([0-9.]*\) .*/\1 \2/p' <<<"$out")
    got=$("$HONE" eval -m "$gpt2" --run "$tmp/m_$me" --data "$tmp/vpos.txt:pos" --data "$tmp/vneg.txt:neg" 2>&1 |
          awk '/^accuracy/ { a = $2 } /^macro-F1/ { f = $2 } END { print a, f }')
    check "$me: train's validation ($want) = eval of the saved run ($got)" '[ $rc -eq 0 ] && [ -n "$want" ] && [ "$want" = "$got" ]'
done

# The head's default epochs are 40 (its epochs run on pooled states computed once); --epochs still rules.
if grep -qw head <<<"$methods"; then
    "$HONE" train --task classify -m "$gpt2" --method head --data "$tmp/train.jsonl" --max-len 16 -o "$tmp/h40" \
      >/dev/null 2>&1; rc=$?
    check "head: 40 epochs by default (classify.json)" '[ $rc -eq 0 ] && grep -Eq "\"epochs\": *40" "$tmp/h40/classify.json"'
    check "head: --epochs 2 as given" 'grep -Eq "\"epochs\": *2[,}]" "$tmp/m_head/classify.json"'
fi

# Evaluation errors.
printf '{"text": "fine", "label": "pos"}\n{"text": "meh", "label": "neutral"}\n' > "$tmp/unseen.jsonl"
err=$("$HONE" eval -m "$model" --run "$run" --data "$tmp/unseen.jsonl" 2>&1); rc=$?
check "unseen label at evaluation: exit 1, file:line" '[ $rc -eq 1 ] && one_line && grep -q "unseen.jsonl:2: label '"'"'neutral'"'"'" <<<"$err"'
out=$("$HONE" eval -m "$model" --run "$run" --data "$tmp/unseen.jsonl" --skip-unseen 2>&1); rc=$?
check "--skip-unseen: counted, 1 example scored" '[ $rc -eq 0 ] && grep -q "warning: .*1 examples skipped" <<<"$out" && grep -q "(1 examples)" <<<"$out"'
err=$("$HONE" eval -m "$other" --run "$run" --data "$tmp/test.csv" --text-col review --label-col sentiment 2>&1); rc=$?
check "eval with another model: exit 1, one line" '[ $rc -eq 1 ] && one_line && grep -q "another model" <<<"$err"'
err=$("$HONE" classify -m "$model" --run "$tmp" hello 2>&1); rc=$?
check "classify without a run: exit 1, one line" '[ $rc -eq 1 ] && one_line && grep -q "classify.json" <<<"$err"'

echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
