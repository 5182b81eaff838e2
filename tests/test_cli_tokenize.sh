#!/usr/bin/env bash
# `hone tokenize`: ids equal to the Hugging Face reference (tests/data/tokenizer_golden.tsv) for a few strings, the
# one-token-a-line output, --plain, standard input, and the error paths.
set -u
fail=0; pass=0
check() { if eval "$2"; then pass=$((pass+1)); else fail=$((fail+1)); echo "FAILED: $1" >&2; fi; }
golden="$HONE_SRC/tests/data/tokenizer_golden.tsv"

# Error paths first: they need no model.
err=$("$HONE" tokenize hello 2>&1 >/dev/null); rc=$?
check "missing -m: exit 2, one line" '[ $rc -eq 2 ] && [ $(wc -l <<<"$err") -eq 1 ] && grep -q -- "-m MODEL" <<<"$err"'
tmp=$(mktemp -d)
err=$(HONE_HOME=$tmp "$HONE" tokenize -m smollm2-135m-instruct hello 2>&1 >/dev/null); rc=$?
check "model not pulled: exit 1, one line saying how to pull" \
    '[ $rc -eq 1 ] && [ $(wc -l <<<"$err") -eq 1 ] && grep -q "hone pull smollm2-135m-instruct" <<<"$err"'
err=$("$HONE" tokenize -m "$tmp/none.gguf" hello 2>&1 >/dev/null); rc=$?
check "missing file: exit 1, named" '[ $rc -eq 1 ] && [ $(wc -l <<<"$err") -eq 1 ] && grep -q "none.gguf" <<<"$err"'
printf 'GGUF\3\0\0\0garbage' > "$tmp/bad.gguf"
err=$("$HONE" tokenize -m "$tmp/bad.gguf" hello 2>&1 >/dev/null); rc=$?
check "malformed file: exit 1, one line" '[ $rc -eq 1 ] && [ $(wc -l <<<"$err") -eq 1 ]'
rm -rf "$tmp"
out=$("$HONE" tokenize --help); rc=$?
check "--help" '[ $rc -eq 0 ] && grep -q -- "--plain" <<<"$out" && grep -q -- "--ids" <<<"$out"'

model=$("$HONE" pull smollm2-135m-instruct 2>/dev/null | tail -1)
if [ -z "$model" ] || [ ! -f "$model" ]; then
    echo "$pass passed, $fail failed; skipped the rest: smollm2-135m-instruct is not pulled"
    [ $fail -eq 0 ] || exit 1
    exit 77
fi

err=$("$HONE" tokenize -m "$model" 2>&1 >/dev/null); rc=$?
check "no TEXT: exit 2" '[ $rc -eq 2 ] && [ $(wc -l <<<"$err") -eq 1 ]'
err=$("$HONE" tokenize -m "$model" --frob x 2>&1 >/dev/null); rc=$?
check "unknown option: exit 2" '[ $rc -eq 2 ] && grep -q -- "--frob" <<<"$err"'

hexof() { printf '%s' "$1" | od -An -tx1 -v | tr -d ' \n'; }
want_ids() { awk -F'\t' -v m="$1" -v h="$2" '$1 == m && $2 == h { print $3; exit }' "$golden"; }

# Strings that are in the golden file (checked here so that the test fails if they ever leave it).
strings=("Hello world" "Call 123 please" "I'M" "don't" $'<|im_start|>user\nhi<|im_end|>' "-42"
         $'\xe4\xbd\xa0\xe5\xa5\xbd\xef\xbc\x8c\xe4\xb8\x96\xe7\x95\x8c\xef\xbc\x81' $'\xf0\x9f\x98\x80')
for s in "${strings[@]}"; do
    hex=$(hexof "$s")
    for mode in special plain; do
        want=$(want_ids $mode "$hex")
        flag=; [ $mode = plain ] && flag=--plain
        got=$("$HONE" tokenize -m "$model" --ids $flag -- "$s"); rc=$?
        check "ids of '$s' ($mode): got '$got', reference '$want'" '[ $rc -eq 0 ] && [ -n "$want" ] && [ "$got" = "$want" ]'
    done
done

# Trailing newlines survive through standard input.
s=$'line one\nline two\n\n  indented\n\tTabbed\n'
want=$(want_ids special "$(hexof "$s")")
got=$(printf '%s' "$s" | "$HONE" tokenize -m "$model" --ids -)
check "standard input: '$got' vs '$want'" '[ -n "$want" ] && [ "$got" = "$want" ]'

# One token a line: id, tab, the escaped text.
out=$("$HONE" tokenize -m "$model" $'<|im_start|>user\nHi\t1')
expect=$'1\t<|im_start|>\n4093\tuser\n198\t\\n\n26843\tHi\n197\t\\t\n33\t1'
check "line output: got $(printf '%q' "$out")" '[ "$out" = "$expect" ]'
out=$("$HONE" tokenize -m "$model" $'\xf0\x9f\x98\x80')
check "a token holding part of a character is shown as \\xNN: $(printf '%q' "$out")" \
    '[ $(wc -l <<<"$out") -ge 2 ] && grep -q "\\\\x" <<<"$out"'
out=$("$HONE" tokenize -m "$model" "")
check "empty text: no output" '[ -z "$out" ]'

echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
