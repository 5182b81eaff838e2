#!/usr/bin/env bash
# `hone serve` end to end with a real client: SmolLM2-135M-Instruct and a LoRA adapter trained here for a few steps,
# served on a free port of 127.0.0.1 with an API key, driven by OpenAI's Python package (tests/serve_client.py in the
# venv of scripts/openai-venv.sh): the model list, completions and chat at temperature 0 equal to
# `hone generate --exact` (--chat, --adapter) for the same prompts, streamed chat equal to the whole answer, voting,
# the client's exceptions for an unknown model, a bad max_tokens and a wrong key. curl: /health and /metrics (open
# without the key, the counters of what the client did). SIGTERM: exit 0. Then all-MiniLM-L6-v2 served as an
# encoder: /v1/embeddings equal to `hone embed`, completions refused.
# Skips (77) when SmolLM2 is not cached or the openai venv cannot be made (PyPI unreachable).
set -u
fail=0; pass=0
check() { if eval "$2"; then pass=$((pass+1)); else fail=$((fail+1)); echo "FAILED: $1" >&2; fi; }
tmp=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done; rm -rf "$tmp"; }
trap cleanup EXIT
src=${HONE_SRC:-$PWD}
export OMP_WAIT_POLICY=PASSIVE
model=$("$HONE" pull smollm2-135m-instruct 2>/dev/null | tail -1)
if [ ! -f "$model" ]; then echo "skip: smollm2-135m-instruct is not in the cache (hone pull smollm2-135m-instruct)"; exit 77; fi
if ! py=$("$src/scripts/openai-venv.sh" 2>"$tmp/venv.err"); then
  echo "skip: no venv with the openai package ($(tail -1 "$tmp/venv.err"))"; exit 77
fi
n_predict=8; steps=6; quick=
if [ -n "${HONE_SANITIZED:-}" ]; then
  n_predict=3; steps=1; quick=--quick
  echo "HONE_SANITIZED: one training step, 3 tokens, one completion prompt"
fi

# Starts `hone serve ARGS --port 0` in the background; sets pid and port (from its first line on stderr).
start_server() {
  local log=$1; shift
  "$HONE" serve "$@" --port 0 --threads 2 2>"$log" &
  pid=$!; pids+=("$pid"); port=
  for _ in $(seq 1 600); do
    port=$(sed -n 's|^hone: serving .* on http://[^ ]*:\([0-9]*\) .*|\1|p' "$log")
    [ -n "$port" ] && return 0
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  echo "hone serve did not start:" >&2; cat "$log" >&2; return 1
}

"$HONE" train -m "$model" --data "$src/tests/data/sft_zorbia.jsonl" --method lora --max-steps $steps --lr 1e-2 --batch 2 \
  --max-len 64 --seed 1 --threads 2 -o "$tmp/zorbia" 2>"$tmp/train.err"
check "a LoRA adapter to serve: hone train exits 0" '[ -f "$tmp/zorbia/adapter/adapter_config.json" ]'

key=test-key-0123
if start_server "$tmp/serve.err" -m smollm2-135m-instruct --adapter "zorbia=$tmp/zorbia" --exact --api-key "$key" \
    --allow-adapter-updates; then
  url=http://127.0.0.1:$port
  check "serve says which adapter it loaded" 'grep -q "adapter .zorbia." "$tmp/serve.err"'
  health=$(curl -s -w ' %{http_code}' "$url/health")
  check "/health: 200 {\"status\":\"ok\"} without the key" '[ "$health" = "{\"status\":\"ok\"} 200" ]'
  code=$(curl -s -o /dev/null -w '%{http_code}' "$url/v1/models")
  check "/v1/models without the key: 401" '[ "$code" = 401 ]'
  "$py" "$src/tests/serve_client.py" --hone "$HONE" --model smollm2-135m-instruct --base-url "$url/v1" \
    --adapter "zorbia=$tmp/zorbia" --api-key "$key" --n-predict $n_predict $quick >"$tmp/client.out" 2>&1; rc=$?
  cat "$tmp/client.out"
  check "the openai client's checks pass" '[ $rc -eq 0 ]'
  # Adapters loaded and unloaded while serving (vLLM's runtime updates): the same adapter under a second name
  # answers as the first; once unloaded, its name is unknown.
  post() { curl -s -H "Authorization: Bearer $key" -H 'Content-Type: application/json' -d "$2" "$url$1"; }
  text_of() { python3 -c 'import json,sys; print(json.load(sys.stdin)["choices"][0]["message"]["content"])'; }
  ask='{"messages":[{"role":"user","content":"What is zorbia?"}],"max_tokens":'$n_predict',"temperature":0,"model":"'
  loaded=$(post /v1/load_lora_adapter '{"lora_name":"z2","lora_path":"'"$tmp/zorbia"'"}')
  check "load_lora_adapter: loaded ($loaded)" 'grep -q "\"status\": *\"loaded\"" <<<"$loaded"'
  check "/v1/models lists the adapter loaded at run time" \
    'curl -s -H "Authorization: Bearer $key" "$url/v1/models" | grep -q "\"z2\""'
  a=$(post /v1/chat/completions "${ask}zorbia\"}" | text_of); b=$(post /v1/chat/completions "${ask}z2\"}" | text_of)
  check "the adapter loaded at run time answers as the one loaded at start ('$a' / '$b')" '[ -n "$a" ] && [ "$a" = "$b" ]'
  again=$(post /v1/load_lora_adapter '{"lora_name":"z2","lora_path":"'"$tmp/zorbia"'"}')
  check "loading a name twice: an error" 'grep -q "already loaded" <<<"$again"'
  bad=$(post /v1/load_lora_adapter '{"lora_name":"z3","lora_path":"/nonexistent"}')
  check "loading a missing path: an error naming it" 'grep -q "nonexistent" <<<"$bad"'
  unloaded=$(post /v1/unload_lora_adapter '{"lora_name":"z2"}')
  check "unload_lora_adapter: unloaded" 'grep -q "\"status\": *\"unloaded\"" <<<"$unloaded"'
  code=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $key" -H 'Content-Type: application/json' \
    -d "${ask}z2\"}" "$url/v1/chat/completions")
  check "an unloaded adapter's name: 404 (got $code)" '[ "$code" = 404 ]'
  curl -s "$url/metrics" >"$tmp/metrics.txt"
  check "/metrics: chat requests answered 200, by endpoint and code" \
    'grep -q "^hone_http_requests_total{endpoint=\"/v1/chat/completions\",code=\"200\"} [1-9]" "$tmp/metrics.txt"'
  check "/metrics: 404 and 401 counted" 'grep -q "code=\"404\"} [1-9]" "$tmp/metrics.txt" &&
    grep -q "code=\"401\"} [1-9]" "$tmp/metrics.txt"'
  check "/metrics: tokens, KV blocks, steps by batch size, latency histograms" \
    'grep -q "^hone_generation_tokens_total [1-9]" "$tmp/metrics.txt" &&
     grep -q "^hone_kv_blocks_total [1-9]" "$tmp/metrics.txt" && grep -q "^hone_kv_blocks_used 0" "$tmp/metrics.txt" &&
     grep -q "^hone_engine_steps_total{batch=\"1\"} [1-9]" "$tmp/metrics.txt" &&
     grep -q "^hone_time_to_first_token_seconds_count [1-9]" "$tmp/metrics.txt" &&
     grep -q "^hone_request_duration_seconds_bucket{le=\"+Inf\"} [1-9]" "$tmp/metrics.txt"'
  kill -TERM "$pid"; wait "$pid"; rc=$?
  check "SIGTERM: exit 0 (got $rc)" '[ $rc -eq 0 ] && grep -q "^hone: stopped" "$tmp/serve.err"'
  [ $rc -eq 0 ] || tail -30 "$tmp/serve.err" >&2
else
  check "hone serve starts with SmolLM2 and an adapter" false
fi

minilm=$("$HONE" pull all-minilm-l6-v2 2>/dev/null | tail -1)
if [ -z "$minilm" ] || [ ! -e "$minilm" ]; then
  echo "all-minilm-l6-v2 cannot be pulled: the encoder part is skipped"
else
  printf 'the cat sat on the mat.\nhello world!\n' >"$tmp/texts.txt"
  "$HONE" embed -m all-minilm-l6-v2 --data "$tmp/texts.txt" --json -o "$tmp/ref.jsonl" 2>/dev/null
  if start_server "$tmp/serve2.err" -m all-minilm-l6-v2; then
    "$py" "$src/tests/serve_client.py" --hone "$HONE" --model all-minilm-l6-v2 --embed-url "http://127.0.0.1:$port/v1" \
      --embed-model all-minilm-l6-v2 --embed-ref "$tmp/ref.jsonl" >"$tmp/client2.out" 2>&1; rc=$?
    cat "$tmp/client2.out"
    check "the openai client's embedding checks pass" '[ $rc -eq 0 ]'
    models=$(curl -s "http://127.0.0.1:$port/v1/models")
    check "an encoder server lists its model once" '[ "$(grep -o "\"id\"" <<<"$models" | wc -l)" = 1 ]'
    code=$(curl -s -o /dev/null -w '%{http_code}' -d '{"lora_name":"a","lora_path":"/tmp"}' \
      "http://127.0.0.1:$port/v1/load_lora_adapter")
    check "adapter updates without --allow-adapter-updates: 403 (got $code)" '[ "$code" = 403 ]'
    kill -TERM "$pid"; wait "$pid"; rc=$?
    check "encoder server: SIGTERM, exit 0" '[ $rc -eq 0 ]'
  else
    check "hone serve starts with an encoder" false
  fi
fi
echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
