#!/usr/bin/env bash
# `hone embed`: the .npy it writes (NumPy format 1.0, float32, (lines, dim)) and --json, pooling and normalisation
# flags, the error paths (one line each: no model, no data, empty file, a line that is not UTF-8, a bad --pool),
# padding invariance (tiny BERT; tiny GPT-2 and SmolLM2 pooled by their last token), and all-MiniLM-L6-v2's sentence
# embeddings against sentence-transformers' (tools/reference/minilm_ref.py, tests/data/minilm): cosine above 0.9999
# for each of the 119 English and Chinese sentences. The MiniLM part skips when the model cannot be pulled (no PyPI).
set -u
fail=0; pass=0
check() { if eval "$2"; then pass=$((pass+1)); else fail=$((fail+1)); echo "FAILED: $1" >&2; fi; }
tiny="$HONE_SRC/tests/data/tiny_bert/tiny_bert.gguf"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# One float per line of an .npy file's data (the header's length is the u16 at byte 8).
npy_floats() { local hl; hl=$(od -An -tu2 -j8 -N2 "$1" | tr -d ' '); od -An -v -tf4 -w4 -j $((10 + hl)) "$1" | tr -d ' '; }
npy_header() { head -c 128 "$1" | tail -c +11; }

printf 'the cat sat on the mat.\nhello world!\r\n你好世界\n\n' > "$tmp/in.txt"
err=$("$HONE" embed -m "$tiny" --data "$tmp/in.txt" -o "$tmp/out.npy" 2>&1); rc=$?
check "embed writes an .npy: exit 0" '[ $rc -eq 0 ] && grep -q "4 embeddings of 64 dimensions (pool mean)" <<<"$err"'
check ".npy magic and version 1.0" '[ "$(head -c 8 "$tmp/out.npy" | od -An -tx1 | tr -d " \n")" = "934e554d50590100" ]'
want="{'descr': '<f4', 'fortran_order': False, 'shape': (4, 64), }"
check ".npy header: <f4, C order, shape (4, 64)" 'npy_header "$tmp/out.npy" | grep -qF "$want"'
size=$(stat -c %s "$tmp/out.npy"); hl=$(od -An -tu2 -j8 -N2 "$tmp/out.npy" | tr -d ' ')
check ".npy size = header + 4 x 64 floats, header aligned" '[ $size -eq $((10 + hl + 4 * 64 * 4)) ] && [ $(((10 + hl) % 64)) -eq 0 ]'
out=$("$HONE" embed -m "$tiny" --data "$tmp/in.txt" --json --normalize 2>/dev/null); rc=$?
norms=$(awk -F', ' '{ gsub(/[][]/, ""); s = 0; for (i = 1; i <= NF; i++) s += $i * $i; printf "%.5f %d\n", sqrt(s), NF }' <<<"$out")
check "--json --normalize: 4 lines of 64 numbers, unit norm" '[ $rc -eq 0 ] && [ "$(sort -u <<<"$norms")" = "1.00000 64" ] && [ $(wc -l <<<"$norms") -eq 4 ]'
# The npy and JSON vectors agree (JSON normalised, npy not: compare directions through the first row's ratio).
"$HONE" embed -m "$tiny" --data "$tmp/in.txt" --json -o "$tmp/out.jsonl" 2>/dev/null
first=$(head -1 "$tmp/out.jsonl" | tr -d '[]' | tr ',' '\n' | tr -d ' ')
d=$(paste <(npy_floats "$tmp/out.npy" | head -64) <(echo "$first") | awk '{ d = $1 - $2; if (d < 0) d = -d; if (d > m) m = d } END { print (m < 1e-5) }')
check ".npy and --json hold the same numbers" '[ "$d" = 1 ]'
for p in cls max last; do
    "$HONE" embed -m "$tiny" --data "$tmp/in.txt" --pool $p -o "$tmp/$p.npy" 2>"$tmp/err"; rc=$?
    check "--pool $p" '[ $rc -eq 0 ] && grep -q "pool $p" "$tmp/err" && ! cmp -s "$tmp/$p.npy" "$tmp/out.npy"'
done

# Error paths: one line on stderr, exit 1 (bad input) or 2 (usage).
one_line() { [ $(wc -l <<<"$err") -eq 1 ]; }
err=$("$HONE" embed --data "$tmp/in.txt" -o "$tmp/x.npy" 2>&1); rc=$?
check "no -m: usage error" '[ $rc -eq 2 ] && one_line && grep -q -- "-m MODEL" <<<"$err"'
err=$("$HONE" embed -m "$tiny" -o "$tmp/x.npy" 2>&1); rc=$?
check "no --data: usage error" '[ $rc -eq 2 ] && one_line && grep -q -- "--data" <<<"$err"'
err=$("$HONE" embed -m "$tiny" --data "$tmp/in.txt" 2>&1); rc=$?
check "no -o without --json: usage error" '[ $rc -eq 2 ] && one_line && grep -q -- "-o" <<<"$err"'
err=$("$HONE" embed -m "$tiny" --data "$tmp/in.txt" --pool median -o "$tmp/x.npy" 2>&1); rc=$?
check "--pool median: usage error naming the choices" '[ $rc -eq 2 ] && one_line && grep -q "median" <<<"$err" && grep -q "cls, mean, max or last" <<<"$err"'
err=$("$HONE" embed -m "$tiny" --data "$tmp/none.txt" -o "$tmp/x.npy" 2>&1); rc=$?
check "missing data file: named" '[ $rc -eq 1 ] && one_line && grep -q "none.txt" <<<"$err"'
: > "$tmp/empty.txt"
err=$("$HONE" embed -m "$tiny" --data "$tmp/empty.txt" -o "$tmp/x.npy" 2>&1); rc=$?
check "empty data file: named, says empty" '[ $rc -eq 1 ] && one_line && grep -q "empty.txt: the data file is empty" <<<"$err"'
printf 'fine\nbad \xff\xfe byte\n' > "$tmp/bad.txt"
err=$("$HONE" embed -m "$tiny" --data "$tmp/bad.txt" -o "$tmp/x.npy" 2>&1); rc=$?
check "a line that is not UTF-8: file:line" '[ $rc -eq 1 ] && one_line && grep -q "bad.txt:2: the line is not valid UTF-8" <<<"$err"'
err=$("$HONE" embed -m "$tmp/none.gguf" --data "$tmp/in.txt" -o "$tmp/x.npy" 2>&1); rc=$?
check "missing model: named" '[ $rc -eq 1 ] && one_line && grep -q "none.gguf" <<<"$err"'
err=$("$HONE" embed -m "$tiny" --data "$tmp/in.txt" -o "$tmp/no/such/dir/x.npy" 2>&1); rc=$?
check "unwritable output: named" '[ $rc -eq 1 ] && one_line && grep -q "x.npy" <<<"$err"'
[ ! -e "$tmp/x.npy" ]; check "no output file left by the failures" '[ ! -e "$tmp/x.npy" ]'

# Padding changes nothing: a line embedded alone equals the same line batched with a longer one (right-padded,
# masked for the encoder; never seen by a causal decoder's earlier positions). The decoder (SmolLM2, pooled by its
# last token by default) where it is pulled.
printf 'The weather is nice today.\nA much longer line that makes the batch pad the first one by a good number of tokens.\n' > "$tmp/two.txt"
head -1 "$tmp/two.txt" > "$tmp/one.txt"
maxdiff() { paste <(head -1 "$1" | tr -d '[]' | tr ',' '\n') <(head -1 "$2" | tr -d '[]' | tr ',' '\n') |
    awk '{ d = $1 - $2; if (d < 0) d = -d; if (d > m) m = d } END { printf "%g", m }'; }
same_alone_and_padded() { # MODEL TOLERANCE
    "$HONE" embed -m "$1" --data "$tmp/two.txt" --json -o "$tmp/two.jsonl" 2>"$tmp/err2" &&
        "$HONE" embed -m "$1" --data "$tmp/one.txt" --json -o "$tmp/one.jsonl" 2>/dev/null &&
        awk -v d="$(maxdiff "$tmp/two.jsonl" "$tmp/one.jsonl")" -v t="$2" 'BEGIN { exit !(d <= t) }'
}
check "tiny BERT: a line alone equals it padded in a batch" 'same_alone_and_padded "$tiny" 1e-5'
check "tiny GPT-2 (decoder): last-token pooling by default; a line alone equals it padded" \
    'same_alone_and_padded "$HONE_SRC/tests/data/tiny_gpt2/tiny_gpt2.gguf" 1e-5 && grep -q "(pool last)" "$tmp/err2"'
smollm=$("$HONE" pull smollm2-135m-instruct 2>/dev/null | tail -1)
if [ -n "$smollm" ] && [ -f "$smollm" ]; then
    check "SmolLM2 (decoder): last-token pooling by default, 576 dimensions; a line alone equals it padded" \
        'same_alone_and_padded "$smollm" 1e-3 && grep -q "2 embeddings of 576 dimensions (pool last)" "$tmp/err2"'
else
    echo "skipped the decoder check: smollm2-135m-instruct is not pulled"
fi

# all-MiniLM-L6-v2 against sentence-transformers.
model=$("$HONE" pull all-minilm-l6-v2 2>/dev/null | tail -1)
if [ -z "$model" ] || [ ! -d "$model" ]; then
    echo "$pass passed, $fail failed; skipped the MiniLM comparison: all-minilm-l6-v2 could not be pulled"
    [ $fail -eq 0 ] || exit 1
    exit 77
fi
ref="$HONE_SRC/tests/data/minilm/embeddings.npy"
sent="$HONE_SRC/tests/data/minilm/sentences.txt"
err=$("$HONE" embed -m "$model" --data "$sent" -o "$tmp/minilm.npy" 2>&1); rc=$?
check "MiniLM: embed the 119 sentences (the model's own mean pooling and normalisation)" \
    '[ $rc -eq 0 ] && grep -q "119 embeddings of 384 dimensions (pool mean, L2-normalised)" <<<"$err"' || echo "$err" >&2
if [ $rc -eq 0 ]; then
    res=$(paste <(npy_floats "$tmp/minilm.npy") <(npy_floats "$ref") | awk -v D=384 '
        { ab += $1 * $2; aa += $1 * $1; bb += $2 * $2; k++
          if (k % D == 0) { c = ab / sqrt(aa * bb); n++; if (c > 0.9999) ok++; if (n == 1 || c < mn) mn = c; ab = aa = bb = 0 } }
        END { printf "%d %d %.7f\n", n, ok, mn }')
    read -r n ok mn <<<"$res"
    echo "MiniLM: $ok of $n sentences with cosine > 0.9999 against sentence-transformers (lowest $mn)"
    check "MiniLM: cosine > 0.9999 for all 119 sentences" '[ "$n" = 119 ] && [ "$ok" = 119 ]'
fi

# An encoder cannot generate: one line that says what to use instead.
err=$("$HONE" generate -m tests/data/tiny_bert/tiny_bert.gguf -p hi -n 2 2>&1 >/dev/null); rc=$?
check "generate with an encoder: a one-line error" '[ $rc -eq 1 ] && [ "$(wc -l <<<"$err")" -eq 1 ] &&
  grep -q "encoder has no language-model head.*hone embed" <<<"$err"'

echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
