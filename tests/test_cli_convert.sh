#!/usr/bin/env bash
# hone convert and hone export from the command line: a tiny GPT-2 directory converts (llama.cpp's names in the
# GGUF) and exports back; broken directories — a safetensors header longer than its file, overlapping data
# offsets, a dtype/shape/size mismatch, a missing shard, a pickle that asks for os.system, a truncated
# pytorch_model.bin, config.json missing or contradicting a field — each give one line "hone: ..." naming the file
# and the field, and exit 1; usage errors exit 2.
set -u
fail=0; pass=0
check() { if eval "$2"; then pass=$((pass+1)); else fail=$((fail+1)); echo "FAILED: $1" >&2; fi; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
one_line_error() { [ "$1" -eq 1 ] && [ "$(printf '%s\n' "$2" | wc -l)" -eq 1 ] && [[ "$2" == "hone: "* ]]; }
le() { local v=$1 n=$2 i; for ((i = 0; i < n; i++)); do printf "\\x$(printf %02x $(((v >> (8 * i)) & 255)))"; done; }
G=tests/data/hf_arch/gpt2

# A good conversion and its export.
err=$("$HONE" convert "$G" -o "$tmp/g.gguf" --type f32 2>&1 >/dev/null); rc=$?
out=$("$HONE" info "$tmp/g.gguf" 2>&1)
check "convert gpt2" '[ $rc -eq 0 ] && grep -Eq "^architecture +gpt2$" <<<"$out" && grep -q "blk.1.attn_qkv.weight" <<<"$out" && grep -q "position_embd.weight" <<<"$out"'
err=$("$HONE" convert tests/data/tiny_llama -o "$tmp/l8.gguf" --type q8_0 2>&1 >/dev/null); rc=$?
out=$("$HONE" info "$tmp/l8.gguf" 2>&1)
check "convert llama to q8_0" '[ $rc -eq 0 ] && grep -Eq "blk.0.ffn_up.weight +q8_0" <<<"$out" && grep -Eq "blk.0.attn_norm.weight +f32" <<<"$out"'
out=$("$HONE" info "$G" 2>&1); rc=$?
check "info on a Hugging Face directory lists its tensors by GGUF name, without file offsets" '[ $rc -eq 0 ] &&
  grep -q "^format  *Hugging Face directory" <<<"$out" && grep -Eq "blk.1.attn_qkv.weight .* - +[0-9]+$" <<<"$out"'
out=$("$HONE" info --json "$G" 2>&1); rc=$?
check "info --json on a directory: offsets are null" '[ $rc -eq 0 ] && grep -q "\"offset\": null" <<<"$out"'
err=$("$HONE" export "$tmp/g.gguf" -o "$tmp/g_hf" 2>&1); rc=$?
check "export gpt2" '[ $rc -eq 0 ] && [ -s "$tmp/g_hf/model.safetensors" ] && grep -q "\"model_type\": \"gpt2\"" "$tmp/g_hf/config.json"'

# A directory $1 with G's config.json and a hand-made model.safetensors: header JSON $2, then $3 bytes of data;
# $4 overrides the header length.
mkdir_st() {
    local d=$tmp/$1 hdr=$2 data=$3 hlen=${4:-}
    mkdir -p "$d" && cp "$G/config.json" "$d/"
    { le "${hlen:-${#hdr}}" 8; printf '%s' "$hdr"; head -c "$data" /dev/zero; } > "$d/model.safetensors"
    echo "$d"
}
convert_fails() { # name, dir, needle...
    local name=$1 d=$2; shift 2
    err=$("$HONE" convert "$d" -o "$tmp/bad.gguf" 2>&1 >/dev/null); rc=$?
    local ok=1 needle
    one_line_error $rc "$err" || ok=0
    for needle in "$@"; do grep -qF -- "$needle" <<<"$err" || ok=0; done
    check "$name: $err" '[ $ok -eq 1 ]'
}
d=$(mkdir_st st1 '{"transformer.wte.weight":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}' 8 100000)
convert_fails "header longer than the file" "$d" "$d/model.safetensors" "header length 100000"
d=$(mkdir_st st2 '{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},"b":{"dtype":"F32","shape":[4],"data_offsets":[8,24]}}' 24)
convert_fails "overlapping offsets" "$d" "$d/model.safetensors" "tensor 'b'" "overlaps"
d=$(mkdir_st st3 '{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}' 8)
convert_fails "shape/size mismatch" "$d" "$d/model.safetensors" "tensor 'a'" "do not hold its 12 bytes"
d=$(mkdir_st st4 '{"a":{"dtype":"F8_E4M3","shape":[8],"data_offsets":[0,8]}}' 8)
convert_fails "unsupported dtype" "$d" "$d/model.safetensors" "tensor 'a'" "dtype F8_E4M3"
d=$(mkdir_st st5 '{"transformer.wte.weight":{"dtype":"F32","shape":[2,16],"data_offsets":[0,128]}}' 128)
convert_fails "embedding shape against config.json" "$d" "config.json" "vocab_size is 32" "transformer.wte.weight"

# Shards, pickles, configs.
d=$tmp/shards; mkdir -p "$d"; cp "$G/config.json" "$d/"; cp "$G/model.safetensors" "$d/model-00001-of-00002.safetensors"
printf '{"weight_map": {"transformer.wte.weight": "model-00001-of-00002.safetensors", "transformer.h.0.ln_1.weight": "model-00002-of-00002.safetensors"}}' > "$d/model.safetensors.index.json"
convert_fails "missing shard" "$d" "$d/model-00002-of-00002.safetensors"
d=$tmp/evil; mkdir -p "$d"; cp "$G/config.json" "$d/"; cp tests/data/hf_torch/evil_reduce.bin "$d/pytorch_model.bin"
convert_fails "os.system in the pickle" "$d" "$d/pytorch_model.bin" "global 'posix.system' is refused"
d=$tmp/trunc; mkdir -p "$d"; cp tests/data/hf_torch/tiny_llama_f16/config.json "$d/"
head -c 100000 tests/data/hf_torch/tiny_llama_f16/pytorch_model.bin > "$d/pytorch_model.bin"
convert_fails "truncated pytorch_model.bin" "$d" "$d/pytorch_model.bin" "not a zip archive"
cfg() { # a copy $1 of G whose config.json has sed expression $2 applied
    local d=$tmp/$1; mkdir -p "$d"; ln -s "$PWD/$G/model.safetensors" "$d/"
    sed "$2" "$G/config.json" > "$d/config.json"; echo "$d"
}
d=$(cfg cfg1 '/"n_embd"/d'); convert_fails "missing field" "$d" "$d/config.json" "'n_embd' is missing"
d=$(cfg cfg2 's/"n_head": 2/"n_head": 3/'); convert_fails "contradictory fields" "$d" "$d/config.json" "n_embd 16 is not a multiple of n_head 3"
d=$(cfg cfg3 's/"n_positions": 24/"n_positions": 24, "n_ctx": 7/'); convert_fails "n_ctx vs n_positions" "$d" "$d/config.json" "n_ctx 7 contradicts n_positions 24"
d=$(cfg cfg4 's/"model_type": "gpt2"/"model_type": "t5"/'); convert_fails "unknown model_type" "$d" "$d/config.json" "model_type 't5'"
d=$(cfg cfg5 's/{/[/'); convert_fails "config.json not JSON" "$d" "$d/config.json"
d=$tmp/noconf; mkdir -p "$d"; convert_fails "no config.json" "$d" "$d/config.json"
d=$tmp/noweights; mkdir -p "$d"; cp "$G/config.json" "$d/"; convert_fails "no weights" "$d" "$d" "model.safetensors" "pytorch_model.bin"

# Usage errors: exit 2.
"$HONE" convert "$tmp/g.gguf" -o "$tmp/x.gguf" >/dev/null 2>&1; rc=$?
check "convert of a file is a usage error" '[ $rc -eq 2 ]'
"$HONE" convert "$G" >/dev/null 2>&1; rc=$?
check "convert without -o" '[ $rc -eq 2 ]'
"$HONE" convert "$G" -o "$tmp/x.gguf" --type q9 >/dev/null 2>&1; rc=$?
check "convert --type q9" '[ $rc -eq 2 ]'
"$HONE" export "$G" >/dev/null 2>&1; rc=$?
check "export without -o" '[ $rc -eq 2 ]'
touch "$tmp/afile"
err=$("$HONE" export "$G" -o "$tmp/afile" 2>&1); rc=$?
check "export onto a file: $err" 'one_line_error $rc "$err" && grep -q "not a directory" <<<"$err"'

echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
