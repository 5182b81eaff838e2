#!/usr/bin/env bash
# `hone train --task classify --method lora` on a BERT encoder (tests/data/tiny_bert, an HF directory with a pooler),
# end to end: the run directory holds PEFT's SEQ_CLS layout (adapter_config.json with task_type SEQ_CLS and BERT's
# target names, adapter_model.safetensors), `hone eval --run` scores it as train did, `hone classify --run` labels
# texts, and a run with a broken adapter fails with one line.
set -u
fail=0; pass=0
check() { if eval "$2"; then pass=$((pass+1)); else fail=$((fail+1)); echo "FAILED: $1" >&2; fi; }
bert="$HONE_SRC/tests/data/tiny_bert"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

printf 'the cat sat\ndog on the mat\ncat run\nthe dog sat on a mat\ncat token\ndog embed\n' > "$tmp/a.txt"
printf 'hello world\nhello the world\nworld token\nhello embed\nworld on a mat\nhello hello\n' > "$tmp/b.txt"
run="$tmp/run"
out=$("$HONE" train --task classify -m "$bert" --method lora --data "$tmp/a.txt:animal" --data "$tmp/b.txt:greeting" \
      --epochs 15 --batch 4 --lr 1e-2 --threads 1 -o "$run" 2>"$tmp/err"); rc=$?
check "train: exit 0" '[ $rc -eq 0 ] || { cat "$tmp/err" >&2; false; }'
check "train: the validation line" 'grep -Eq "^validation: accuracy [01]\.[0-9]{4}" <<<"$out"'
check "PEFT's SEQ_CLS config with BERT's names" 'grep -q "\"task_type\": \"SEQ_CLS\"" "$run/adapter_config.json" &&
    grep -q "\"attention.output.dense\"" "$run/adapter_config.json" && grep -q "\"classifier\"" "$run/adapter_config.json"'
check "the adapter file names BERT's modules" \
    'grep -aq "base_model.model.bert.encoder.layer.0.attention.self.query.lora_A.weight" "$run/adapter_model.safetensors" &&
     grep -aq "base_model.model.classifier.bias" "$run/adapter_model.safetensors"'
out=$("$HONE" eval -m "$bert" --run "$run" --data "$tmp/a.txt:animal" --data "$tmp/b.txt:greeting" 2>"$tmp/err"); rc=$?
check "eval: exit 0, accuracy 1 on the training texts" '[ $rc -eq 0 ] && grep -Eq "accuracy +1\.0000" <<<"$out"'
out=$("$HONE" classify -m "$bert" --run "$run" "the cat sat on the mat" "hello world" 2>"$tmp/err"); rc=$?
check "classify: one label per text" '[ $rc -eq 0 ] && [ "$(cut -f1 <<<"$out" | tr "\n" " ")" = "animal greeting " ]'
# a broken adapter: a wrong task_type is one line, exit 1
sed -i 's/"SEQ_CLS"/"CAUSAL_LM"/' "$run/adapter_config.json"
err=$("$HONE" classify -m "$bert" --run "$run" "the cat" 2>&1 >/dev/null); rc=$?
check "broken adapter: exit 1, one line naming the key" '[ $rc -eq 1 ] && [ $(wc -l <<<"$err") -eq 1 ] &&
    grep -q "task_type" <<<"$err"'
echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
