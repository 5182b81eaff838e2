#!/usr/bin/env bash
# `hone serve` under abuse (SmolLM2-135M-Instruct on 127.0.0.1, an API key, --ctx 256, --conn-timeout 3): each bad
# request gets the right 4xx with OpenAI's error body {"error": {"message", "type", "param", "code"}} and the server
# keeps serving the others.
#   malformed JSON 400 · a 100 MB body 413 unread (the server's memory does not grow by it) · a chunked 100 MB body
#   dropped · max_tokens negative, zero, huge 400 naming max_tokens · a prompt longer than the context 400 · an
#   unknown model or adapter 404 model_not_found · a missing or wrong API key 401 · an unknown path 404 · a wrong
#   method 405 · a refused field (logprobs) 400 naming it · a client sending a byte a second (headers, or a body)
#   dropped after --conn-timeout while a completion is served meanwhile · a client leaving mid-stream: its job
#   cancelled (/metrics: a disconnect, nothing running) and the next request served · SIGTERM with a request in
#   flight: no new connections, that request answered whole, exit 0.
set -u
fail=0; pass=0
check() { if eval "$2"; then pass=$((pass+1)); else fail=$((fail+1)); echo "FAILED: $1" >&2; fi; }
tmp=$(mktemp -d)
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT
export OMP_WAIT_POLICY=PASSIVE
model=$("$HONE" pull smollm2-135m-instruct 2>/dev/null | tail -1)
if [ ! -f "$model" ]; then echo "skip: smollm2-135m-instruct is not in the cache (hone pull smollm2-135m-instruct)"; exit 77; fi
command -v curl >/dev/null || { echo "skip: curl is missing"; exit 77; }

key=abuse-key
"$HONE" serve -m smollm2-135m-instruct --port 0 --threads 2 --api-key "$key" --ctx 256 --conn-timeout 3 \
  --max-tokens 200 2>"$tmp/serve.err" &
pid=$!
port=
for _ in $(seq 1 600); do
  port=$(sed -n 's|^hone: serving .* on http://[^ ]*:\([0-9]*\) .*|\1|p' "$tmp/serve.err")
  [ -n "$port" ] || ! kill -0 $pid 2>/dev/null && break
  sleep 0.1
done
if [ -z "$port" ]; then cat "$tmp/serve.err" >&2; echo "FAILED: hone serve did not start" >&2; exit 1; fi
url=http://127.0.0.1:$port

# req METHOD PATH [BODY] [extra curl args...]: prints the status code; the body lands in $tmp/body.
req() {
  local m=$1 p=$2 b=${3-}; shift 3 2>/dev/null || shift $#
  curl -s -o "$tmp/body" -w '%{http_code}' -X "$m" -H "Authorization: Bearer $key" -H 'Content-Type: application/json' \
    ${b:+--data-binary "$b"} "$@" "$url$p"
}
# The body is OpenAI's error shape; prints its param (or "null").
err_param() {
  python3 -c 'import json, sys
e = json.load(open(sys.argv[1]))["error"]
assert set(e) == {"message", "type", "param", "code"} and e["message"] and e["type"], e
print(e["param"] if e["param"] is not None else "null", e["code"] if e["code"] is not None else "null")' "$tmp/body"
}
rss_kb() { awk '/^VmRSS/ { print $2 }' /proc/$pid/status; }
alive() { [ "$(curl -s -o /dev/null -w '%{http_code}' "$url/health")" = 200 ]; }

code=$(req POST /v1/completions '{"prompt": "x", "max_tokens": ')
check "malformed JSON: 400 in OpenAI's shape" '[ "$code" = 400 ] && err_param >/dev/null'
code=$(req POST /v1/chat/completions '[1, 2, 3]')
check "a body that is not an object: 400" '[ "$code" = 400 ] && err_param >/dev/null'

before=$(rss_kb)
head -c 100000000 /dev/zero | tr '\0' 'a' >"$tmp/big"
code=$(req POST /v1/completions "" --data-binary @"$tmp/big")
after=$(rss_kb)
check "a 100 MB body: 413 request_too_large" '[ "$code" = 413 ] && [ "$(err_param)" = "null request_too_large" ]'
check "a 100 MB body is not read into memory (RSS $before -> $after kB)" '[ $((after - before)) -lt 20000 ]'
code=$(head -c 100000000 /dev/zero | curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $key" \
  -H 'Transfer-Encoding: chunked' -T - "$url/v1/completions")
after=$(rss_kb)
check "a chunked 100 MB body without a length: dropped ($code), RSS $after kB" \
  '[ "$code" != 200 ] && [ $((after - before)) -lt 20000 ] && alive'
rm -f "$tmp/big"

for mt in -1 0 201 4294967297 1e20 '"10"' 1.5; do
  code=$(req POST /v1/completions "{\"prompt\": \"Hi\", \"max_tokens\": $mt}")
  check "max_tokens $mt: 400 naming max_tokens" '[ "$code" = 400 ] && [ "$(err_param | cut -d" " -f1)" = max_tokens ]'
done
code=$(req POST /v1/completions '{"prompt": "Hi", "max_tokens": 99999999999999999999}')
check "max_tokens past 64 bits: 400" '[ "$code" = 400 ] && err_param >/dev/null'
long=$(python3 -c 'print(" ".join(["word"] * 400))')
code=$(req POST /v1/completions "{\"prompt\": \"$long\", \"max_tokens\": 4}")
check "a prompt longer than the context: 400 context_length_exceeded" \
  '[ "$code" = 400 ] && [ "$(err_param)" = "prompt context_length_exceeded" ]'
mid=$(python3 -c 'print(" ".join(["word"] * 100))')
code=$(req POST /v1/completions "{\"prompt\": \"$mid\", \"max_tokens\": 200}")
check "prompt + max_tokens past the context: 400 naming max_tokens" \
  '[ "$code" = 400 ] && [ "$(err_param)" = "max_tokens context_length_exceeded" ]'
code=$(req POST /v1/chat/completions '{"messages": [{"role": "user", "content": "Hi"}], "model": "nope"}')
check "an unknown model: 404 model_not_found" '[ "$code" = 404 ] && [ "$(err_param)" = "model model_not_found" ]'
code=$(req POST /v1/completions '{"prompt": "Hi", "model": "some-adapter", "max_tokens": 2}')
check "an unknown adapter: 404" '[ "$code" = 404 ]'
code=$(req POST /v1/completions '{"prompt": "Hi", "logprobs": 3}')
check "logprobs: 400 naming it" '[ "$code" = 400 ] && [ "$(err_param | cut -d" " -f1)" = logprobs ]'
code=$(curl -s -o "$tmp/body" -w '%{http_code}' "$url/v1/models")
check "no API key: 401 invalid_api_key" '[ "$code" = 401 ] && [ "$(err_param)" = "null invalid_api_key" ]'
code=$(curl -s -o "$tmp/body" -w '%{http_code}' -H "Authorization: Bearer ${key}x" "$url/v1/models")
check "a wrong API key: 401" '[ "$code" = 401 ]'
code=$(req GET /v1/nothing-here)
check "an unknown path: 404" '[ "$code" = 404 ] && err_param >/dev/null'
code=$(req GET /v1/chat/completions)
check "a wrong method: 405" '[ "$code" = 405 ] && err_param >/dev/null'
code=$(req DELETE /v1/models)
check "DELETE /v1/models: 405" '[ "$code" = 405 ]'

# Slow clients: one sends its headers a byte a second, one its body; both are dropped after --conn-timeout (3 s)
# while a completion is answered in the meantime.
slow() {
  python3 - "$port" "$1" "$key" <<'EOF'
import socket, sys, time
port, part, key = int(sys.argv[1]), sys.argv[2], sys.argv[3]
s = socket.create_connection(("127.0.0.1", port))
t0 = time.time()
head = b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + key.encode() + b"\r\nContent-Length: 300\r\n\r\n"
if part == "body":
    s.sendall(head)
    data = b'{"prompt": "' + b"a" * 200
else:
    data = head
s.settimeout(1.0)
for i in range(30):
    try:
        s.sendall(data[i:i + 1])
        if s.recv(100) == b"":
            break
    except socket.timeout:
        continue
    except OSError:
        break
print("%.1f" % (time.time() - t0))
EOF
}
slow headers >"$tmp/slow1" & s1=$!
slow body >"$tmp/slow2" & s2=$!
sleep 0.5
code=$(req POST /v1/completions '{"prompt": "The capital of France is", "max_tokens": 4, "temperature": 0}')
check "a completion is served while slow clients hold connections" '[ "$code" = 200 ]'
wait $s1 $s2
t1=$(cat "$tmp/slow1"); t2=$(cat "$tmp/slow2")
echo "slow clients dropped after $t1 s (headers) and $t2 s (body); RSS $before -> $after kB around the 100 MB bodies"
check "a client sending its headers a byte a second is dropped after the timeout ($t1 s)" \
  'awk -v t="$t1" "BEGIN { exit !(t >= 2.5 && t < 8) }"'
check "a client sending its body a byte a second is dropped after the timeout ($t2 s)" \
  'awk -v t="$t2" "BEGIN { exit !(t >= 2.5 && t < 8) }"'

# A client that leaves mid-stream: its job is cancelled and the server goes on. (The sanitizers' build takes longer
# to its first token.)
stay=2; [ -n "${HONE_SANITIZED:-}" ] && stay=15
count() { grep -E "^$1 " <<<"$2" | awk '{ print $2 }'; }
m=$(curl -s "$url/metrics")
d0=$(count hone_client_disconnects_total "$m")
c0=$(count 'hone_http_requests_total\{endpoint="/v1/chat/completions",code="499"\}' "$m"); c0=${c0:-0}
# ignore_eos: the answer cannot end before the client leaves.
curl -s -N --max-time $stay -H "Authorization: Bearer $key" "$url/v1/chat/completions" \
  -d '{"messages": [{"role": "user", "content": "Tell me a long story."}], "max_tokens": 200, "stream": true,
       "ignore_eos": true}' >"$tmp/stream" 2>/dev/null
check "the stream had begun" 'grep -q "^data: {" "$tmp/stream"'
ok=0
for _ in $(seq 1 $((stay * 25))); do
  m=$(curl -s "$url/metrics")
  if [ "$(count hone_client_disconnects_total "$m")" = $((d0 + 1)) ] && grep -q '^hone_requests_running 0$' <<<"$m"
  then ok=1; break; fi
  sleep 0.2
done
check "a client leaving mid-stream: a disconnect counted and its job cancelled (nothing running)" '[ $ok = 1 ]'
[ $ok = 1 ] || grep -E "^hone_client_disconnects|^hone_requests_running|code=\"499\"" <<<"$m" >&2
c1=$(count 'hone_http_requests_total\{endpoint="/v1/chat/completions",code="499"\}' "$m")
check "...counted as 499 on /v1/chat/completions ($c0 -> $c1)" '[ "$c1" = $((c0 + 1)) ]'
code=$(req POST /v1/completions '{"prompt": "Hello", "max_tokens": 3}')
check "the next request is served" '[ "$code" = 200 ]'

# SIGTERM with a request in flight: it is answered whole, new connections are refused, exit 0.
curl -s -o "$tmp/inflight" -w '%{http_code}' -H "Authorization: Bearer $key" "$url/v1/completions" \
  -d '{"prompt": "Once upon a time", "max_tokens": 24, "temperature": 0}' >"$tmp/inflight.code" &
c=$!
sleep 0.7
kill -TERM $pid
sleep 0.5
curl -s -m 3 -o /dev/null "$url/health"; rc_new=$?
wait $c
wait $pid; rc=$?
pid=
check "after SIGTERM: new connections refused (curl rc $rc_new)" '[ $rc_new = 7 ]'
check "after SIGTERM: the request in flight answered whole" '[ "$(cat "$tmp/inflight.code")" = 200 ] &&
  grep -q "\"finish_reason\":\"\(length\|stop\)\"" "$tmp/inflight"'
check "SIGTERM: exit 0 (got $rc)" '[ $rc = 0 ]'
[ $rc = 0 ] || tail -40 "$tmp/serve.err" >&2
echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
