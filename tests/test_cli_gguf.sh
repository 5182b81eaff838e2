#!/usr/bin/env bash
# hone info and hone quantize: a small synthetic GGUF (always), the real model (skipped under sanitizers for
# quantize, exit 77 when it is not pulled), and bad files, which must give one line "hone: ..." and exit 1.
set -u
fail=0; pass=0
check() { if eval "$2"; then pass=$((pass+1)); else fail=$((fail+1)); echo "FAILED: $1" >&2; fi; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# One line on stderr that starts with "hone: ", exit status exactly 1 (not 0, not a signal).
one_line_error() { [ "$1" -eq 1 ] && [ "$(printf '%s\n' "$2" | wc -l)" -eq 1 ] && [[ "$2" == "hone: "* ]]; }

# Little-endian integers and GGUF strings, to build a file byte by byte.
le() { local v=$1 n=$2 i; for ((i = 0; i < n; i++)); do printf "\\x$(printf %02x $(((v >> (8 * i)) & 255)))"; done; }
gstr() { le ${#1} 8; printf '%s' "$1"; }
floats() { local i; for ((i = 0; i < $1; i++)); do case $((i % 4)) in
    0) printf '\x00\x00\x80\x3f' ;; 1) printf '\x00\x00\x80\xbe' ;; 2) printf '\x00\x00\x00\x40' ;; 3) printf '\x00\x00\xc0\xbf' ;; esac; done; }

# A synthetic llama-ish model: metadata, a 2-D f32 weight (64 x 4) and a 1-D f32 norm (64).
syn=$tmp/syn.gguf
{
    printf GGUF; le 3 4; le 2 8; le 3 8
    gstr general.architecture; le 8 4; gstr llama
    gstr llama.block_count; le 4 4; le 1 4
    gstr general.file_type; le 4 4; le 0 4
    gstr w.weight; le 2 4; le 64 8; le 4 8; le 0 4; le 0 8
    gstr n.weight; le 1 4; le 64 8; le 0 4; le 1024 8
} > "$syn"
size=$(stat -c %s "$syn")
head -c $(((32 - size % 32) % 32)) /dev/zero >> "$syn"
floats 320 >> "$syn"

out=$("$HONE" info "$syn"); rc=$?
check "info on a synthetic file" '[ $rc -eq 0 ] && grep -Eq "^architecture +llama$" <<<"$out" && grep -Eq "^ *blocks +1$" <<<"$out" && grep -Eq "w.weight +f32 +64 x 4" <<<"$out"'
for t in q8_0 q4_0 q4_1 f16 f32; do
    err=$("$HONE" quantize "$syn" -o "$tmp/syn-$t.gguf" --type $t --threads 2 2>&1 >/dev/null); rc=$?
    out=$("$HONE" info "$tmp/syn-$t.gguf" 2>&1)
    check "synthetic quantize to $t" '[ $rc -eq 0 ] && grep -q -- "->" <<<"$err" && grep -Eq "w.weight +$t +64 x 4" <<<"$out" && grep -Eq "n.weight +f32 +64 " <<<"$out"'
done
out=$("$HONE" info "$tmp/syn-q4_1.gguf")
check "file type of q4_1 is 3" 'grep -Eq "^file type +3 \(mostly q4_1\)" <<<"$out"'
"$HONE" quantize "$tmp/syn-f16.gguf" -o "$tmp/back.gguf" --type f32 2>/dev/null
check "f16 -> f32 restores these exactly representable weights" 'cmp -s <(tail -c 1280 "$syn") <(tail -c 1280 "$tmp/back.gguf")'
out=$("$HONE" info --json "$syn"); rc=$?
if command -v python3 >/dev/null; then
    check "--json is JSON" '[ $rc -eq 0 ] && python3 -c "import json,sys; d=json.load(sys.stdin); assert d[\"hparams\"][\"block_count\"]==1 and d[\"tensors\"][0][\"shape\"]==[64,4]" <<<"$out"'
fi

# Bad files: one line, exit 1.
: > "$tmp/empty.gguf"
err=$("$HONE" info "$tmp/empty.gguf" 2>&1 >/dev/null); rc=$?
check "empty file" 'one_line_error $rc "$err" && grep -q "empty" <<<"$err"'
{ printf GGML; tail -c +5 "$syn"; } > "$tmp/magic.gguf"
err=$("$HONE" info "$tmp/magic.gguf" 2>&1 >/dev/null); rc=$?
check "wrong magic" 'one_line_error $rc "$err" && grep -q "magic" <<<"$err"'
{ printf GGUF; le 1 4; tail -c +9 "$syn"; } > "$tmp/v1.gguf"
err=$("$HONE" info "$tmp/v1.gguf" 2>&1 >/dev/null); rc=$?
check "version 1" 'one_line_error $rc "$err" && grep -q "version" <<<"$err"'
head -c 100 "$syn" > "$tmp/short.gguf"
err=$("$HONE" quantize "$tmp/short.gguf" -o "$tmp/never.gguf" --type q8_0 2>&1 >/dev/null); rc=$?
check "quantize of a truncated file" 'one_line_error $rc "$err" && grep -q "truncated" <<<"$err" && [ ! -e "$tmp/never.gguf" ]'
err=$("$HONE" quantize "$syn" -o "$tmp/no/such/dir/x.gguf" --type q8_0 2>&1 >/dev/null); rc=$?
check "quantize into a missing directory" 'one_line_error $rc "$err"'
err=$("$HONE" quantize "$syn" -o "$tmp/x.gguf" --type q7_k 2>&1 >/dev/null); rc=$?
check "unknown --type is a usage error" '[ $rc -eq 2 ] && grep -q "q7_k" <<<"$err"'
err=$("$HONE" quantize "$syn" -o "$tmp/x.gguf" --type nf4 2>&1 >/dev/null); rc=$?
check "--type nf4 points to --quantize nf4" '[ $rc -eq 2 ] && grep -q -- "--quantize nf4" <<<"$err"'
err=$(HONE_HOME=$tmp/nohome "$HONE" info smollm2-135m-instruct 2>&1 >/dev/null); rc=$?
check "missing model says how to pull it" 'one_line_error $rc "$err" && grep -q "hone pull smollm2-135m-instruct" <<<"$err"'
err=$(HONE_HOME=$tmp/nohome "$HONE" quantize smollm2-135m-instruct -o "$tmp/x.gguf" --type q8_0 2>&1 >/dev/null); rc=$?
check "quantize: missing model says how to pull it" 'one_line_error $rc "$err" && grep -q "hone pull" <<<"$err"'

# The real model.
model=$("$HONE" pull smollm2-135m-instruct 2>/dev/null | tail -1)
if [ ! -f "$model" ]; then
    echo "$pass passed, $fail failed; real model absent (hone pull smollm2-135m-instruct): its checks skipped"
    [ $fail -eq 0 ] && exit 77 || exit 1
fi
out=$("$HONE" info smollm2-135m-instruct --threads 1); rc=$?
check "info on the real model" '[ $rc -eq 0 ] && grep -Eq "^architecture +llama$" <<<"$out" && grep -Eq "^ *blocks +30$" <<<"$out" && grep -Eq "^ *embedding length +576$" <<<"$out"'
check "real model: sizes and tensors" 'grep -Eq "^parameters +134515008 " <<<"$out" && grep -Eq "token_embd.weight +q8_0 +576 x 49152" <<<"$out" && grep -Eq "^file type +3 " <<<"$out"'
check "real model: arrays summarised" 'grep -Eq "tokenizer.ggml.tokens +array +\[string x 49152\] \"<\|endoftext\|>\"" <<<"$out"'
head -c 4096 "$model" > "$tmp/head.gguf"
err=$("$HONE" info "$tmp/head.gguf" 2>&1 >/dev/null); rc=$?
check "first 4 KiB of the real model" 'one_line_error $rc "$err" && grep -q "truncated" <<<"$err"'
head -c 2000000 "$model" > "$tmp/head2.gguf"
err=$("$HONE" info "$tmp/head2.gguf" 2>&1 >/dev/null); rc=$?
check "real model cut inside its tensor data" 'one_line_error $rc "$err" && grep -q "past the end" <<<"$err"'

# Under sanitizers only q8_0 (a few seconds); f16 writes 270 MB.
types="q8_0 f16"
[ -n "${HONE_SANITIZED:-}" ] && types=q8_0
for t in $types; do
    q=$tmp/real-$t.gguf
    err=$("$HONE" quantize "$model" -o "$q" --type $t 2>&1 >/dev/null); rc=$?
    check "quantize the real model to $t" '[ $rc -eq 0 ] && grep -q "272\|converted" <<<"$err"'
    out=$("$HONE" info "$q"); rc=$?
    ft=$([ $t = q8_0 ] && echo 7 || echo 1)
    check "info reads the $t model" '[ $rc -eq 0 ] && grep -Eq "^file type +$ft " <<<"$out" && grep -Eq "^parameters +134515008 " <<<"$out"'
    check "$t model: weights $t, norms f32" 'grep -Eq "blk.0.attn_q.weight +$t +576 x 576" <<<"$out" && grep -Eq "token_embd.weight +$t " <<<"$out" && grep -Eq "blk.29.ffn_norm.weight +f32 +576 " <<<"$out"'
    check "$t model keeps the metadata" '[ "$(grep -c "^  tokenizer\." <<<"$out")" -ge 10 ] && grep -Eq "^ *blocks +30$" <<<"$out"'
    rm -f "$q"
done

echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
