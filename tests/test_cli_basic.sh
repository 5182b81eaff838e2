#!/usr/bin/env bash
# The CLI's front door: help, unknown commands and flags, model names that are not pulled.
set -u
fail=0; pass=0
check() { if eval "$2"; then pass=$((pass+1)); else fail=$((fail+1)); echo "FAILED: $1" >&2; fi; }

out=$("$HONE" --help); rc=$?
check "--help exits 0 and lists commands" '[ $rc -eq 0 ] && grep -q "pull" <<<"$out" && grep -q "generate" <<<"$out"'

err=$("$HONE" frobnicate 2>&1 >/dev/null); rc=$?
check "unknown command: exit 2, one line" '[ $rc -eq 2 ] && [ $(wc -l <<<"$err") -eq 1 ] && grep -q "unknown command" <<<"$err"'

err=$("$HONE" pull no-such-model 2>&1 >/dev/null); rc=$?
check "pull of an unknown name" '[ $rc -eq 2 ] && grep -q "no-such-model" <<<"$err"'

out=$("$HONE" pull --list); rc=$?
check "pull --list names smollm2" '[ $rc -eq 0 ] && grep -q "smollm2-135m-instruct" <<<"$out"'

# A registered model that is not in an (empty) cache: the message says how to pull it.
tmp=$(mktemp -d)
err=$(HONE_HOME=$tmp "$HONE" info smollm2-135m-instruct 2>&1 >/dev/null); rc=$?
check "missing model says how to pull it" '[ $rc -eq 1 ] && [ $(wc -l <<<"$err") -eq 1 ] && grep -q "hone pull smollm2-135m-instruct" <<<"$err"'
err=$("$HONE" info /no/such/file.gguf 2>&1 >/dev/null); rc=$?
check "missing file is named" '[ $rc -eq 1 ] && grep -q "/no/such/file.gguf" <<<"$err"'
err=$("$HONE" info x --threads zero 2>&1 >/dev/null); rc=$?
check "bad --threads value" '[ $rc -eq 2 ] && grep -q -- "--threads" <<<"$err"'
rm -rf "$tmp"

echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
