#!/usr/bin/env bash
# `hone train --task classify` with every parameter-efficient method of train/cls_peft.c (dora, ia3, prompt-tuning,
# p-tuning, prefix-tuning, adapter-houlsby, adapter-pfeiffer) on a BERT encoder (tests/data/tiny_bert; decoders go
# through the same code, and SmolLM2's runs are the bake-off's): the run directory holds the method's adapter under
# adapter/ and the head, `hone eval --run` scores it as train left it (accuracy 1 on the separable training texts), `hone classify
# --run` labels texts, and a run whose adapter is damaged fails with one line. Methods this build lacks are skipped.
set -u
fail=0; pass=0
check() { if eval "$2"; then pass=$((pass+1)); else fail=$((fail+1)); echo "FAILED: $1" >&2; fi; }
bert="$HONE_SRC/tests/data/tiny_bert"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

printf 'the cat sat\ndog on the mat\ncat run\nthe dog sat on a mat\ncat token\ndog embed\n' > "$tmp/a.txt"
printf 'hello world\nhello the world\nworld token\nhello embed\nworld on a mat\nhello hello\n' > "$tmp/b.txt"
data=(--data "$tmp/a.txt:animal" --data "$tmp/b.txt:greeting")
for name in dora ia3 prompt-tuning p-tuning prefix-tuning adapter-houlsby adapter-pfeiffer; do
  run="$tmp/$name"
  out=$("$HONE" train --task classify -m "$bert" --method $name "${data[@]}" --epochs 15 --batch 4 --lr 1e-2 --threads 1 \
        --val-split 0 -o "$run" 2>"$tmp/err"); rc=$?
  if [ $rc -ne 0 ] && grep -q "classification method '$name': expected one of" "$tmp/err"; then
    echo "$name: not in this build"; continue
  fi
  check "$name: train exit 0" '[ $rc -eq 0 ] || { tail -3 "$tmp/err" >&2; false; }'
  [ $rc -eq 0 ] || continue
  check "$name: the adapter under adapter/ and the head" '[ -f "$run/adapter/adapter_model.safetensors" ] &&
      [ -f "$run/head.safetensors" ] && grep -q "\"method\": *\"$name\"" "$run/classify.json"'
  out=$("$HONE" eval -m "$bert" --run "$run" "${data[@]}" --json 2>"$tmp/err"); rc=$?
  echo "$name: $out"
  check "$name: eval --run: accuracy 1 on the training texts" '[ $rc -eq 0 ] && grep -q "\"accuracy\": *1\.0" <<<"$out"'
  out=$("$HONE" classify -m "$bert" --run "$run" "the cat sat on the mat" "hello world" 2>"$tmp/err"); rc=$?
  check "$name: classify: one label per text" '[ $rc -eq 0 ] && [ "$(cut -f1 <<<"$out" | tr "\n" " ")" = "animal greeting " ]'
  # damaged: the adapter's tensors gone
  mv "$run/adapter/adapter_model.safetensors" "$tmp/moved"
  err=$("$HONE" classify -m "$bert" --run "$run" "the cat" 2>&1 >/dev/null); rc=$?
  check "$name: adapter missing: exit 1, one line naming the file" '[ $rc -eq 1 ] && [ $(wc -l <<<"$err") -eq 1 ] &&
      grep -q "adapter_model.safetensors" <<<"$err"'
done
echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
