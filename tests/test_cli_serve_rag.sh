#!/usr/bin/env bash
# `hone serve --db`: chat with retrieval end to end. Three short documents about made-up things are indexed with
# `hone index` (all-MiniLM-L6-v2); SmolLM2-135M-Instruct is served with the database (--exact, --embed-model the
# same MiniLM, which the retrieval then shares). A chat request with "retrieval": {"k": 3} must list 3 sources, the
# document about the question's topic first, with the ids, texts and scores (within 1e-5) `hone ask --no-generate
# --json` gives for the same question, and answer at temperature 0 what `hone ask --exact` answers (the same user
# message through the same chat template, both greedy). The stream opens with a chunk carrying the sources and
# its text equals the whole answer. Bad "retrieval" values, retrieval on /v1/completions and on a server without
# --db get 400 naming the field; /metrics counts the retrievals; a missing database stops serve at start.
# Skips (77) when SmolLM2 or MiniLM is not cached.
set -u
fail=0; pass=0
check() { if eval "$2"; then pass=$((pass+1)); else fail=$((fail+1)); echo "FAILED: $1" >&2; fi; }
tmp=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done; rm -rf "$tmp"; }
trap cleanup EXIT
export OMP_WAIT_POLICY=PASSIVE
for m in smollm2-135m-instruct all-minilm-l6-v2; do
  f=$("$HONE" pull "$m" 2>/dev/null | tail -1)
  if [ -z "$f" ] || [ ! -e "$f" ]; then echo "skip: $m is not in the cache (hone pull $m)"; exit 77; fi
done
n_predict=24; k=3
if [ -n "${HONE_SANITIZED:-}" ]; then
  n_predict=6
  echo "HONE_SANITIZED: $n_predict tokens, no stream"
fi

mkdir -p "$tmp/docs"
cat >"$tmp/docs/zorbia.txt" <<'EOF'
Zorbia is a small island nation in the Quellan Sea. Its capital city is Marrowpeak, founded in 1642 by the
fisherman Odo Brannic. Zorbians speak Quellish and pay with the copper tallin.
EOF
cat >"$tmp/docs/glimmerfruit.txt" <<'EOF'
The glimmerfruit grows only on the slopes of Mount Tesk. It is violet, tastes of cinnamon and pear, and ripens in
late November, when the harvesters pick it at night because it glows faintly in the dark.
EOF
cat >"$tmp/docs/skyball.txt" <<'EOF'
Skyball is played by two teams of seven on a hexagonal court. A match lasts three rounds of twelve minutes, and a
goal through the high ring counts five points while a goal through the low ring counts two.
EOF
"$HONE" index "$tmp/docs" --db "$tmp/db" -m all-minilm-l6-v2 --exact --threads 2 2>"$tmp/index.err"; rc=$?
check "hone index builds the database (rc $rc)" '[ $rc -eq 0 ] && [ -f "$tmp/db/docs.sqlite" ]'
[ $rc -eq 0 ] || cat "$tmp/index.err" >&2

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
post() { curl -s -o "$3" -w '%{http_code}' -H 'Content-Type: application/json' -d "$2" "$url$1"; }
# The error's param of a 400 body.
param_of() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["error"]["param"])' "$1" 2>/dev/null; }

q="What is the capital city of Zorbia?"
chat='{"messages":[{"role":"user","content":"'"$q"'"}],"max_tokens":'$n_predict',"temperature":0'

"$HONE" ask --db "$tmp/db" --exact --k $k --no-generate --json "$q" >"$tmp/ask_chunks.json" 2>"$tmp/ask1.err"; rc=$?
check "hone ask --no-generate --json (rc $rc)" '[ $rc -eq 0 ]'
[ $rc -eq 0 ] || cat "$tmp/ask1.err" >&2
"$HONE" ask --db "$tmp/db" -m smollm2-135m-instruct --exact --k $k --max-new $n_predict --json "$q" \
  >"$tmp/ask_answer.json" 2>"$tmp/ask2.err"; rc=$?
check "hone ask --json with an answer (rc $rc)" '[ $rc -eq 0 ]'
[ $rc -eq 0 ] || cat "$tmp/ask2.err" >&2

if start_server "$tmp/serve.err" -m smollm2-135m-instruct --db "$tmp/db" --embed-model all-minilm-l6-v2 --exact; then
  url=http://127.0.0.1:$port
  check "serve says the retrieval shares --embed-model's encoder" \
    'grep -q "retrieval from .*3 chunks.*shared with /v1/embeddings" "$tmp/serve.err"'
  code=$(post /v1/chat/completions "$chat"',"retrieval":{"k":'$k'}}' "$tmp/rag.json")
  check "chat with retrieval: 200 (got $code)" '[ "$code" = 200 ]'
  python3 - "$tmp/rag.json" "$tmp/ask_chunks.json" "$tmp/ask_answer.json" $k <<'EOF'; rc=$?
import json, sys
r = json.load(open(sys.argv[1]))
ask = json.load(open(sys.argv[2]))
ans = json.load(open(sys.argv[3]))
k = int(sys.argv[4])
bad = []
src = r.get("sources")
if not isinstance(src, list) or len(src) != k:
    bad.append(f"sources: expected a list of {k}, got {src!r}")
    src = []
if src and not src[0]["source"].endswith("zorbia.txt"):
    bad.append(f"the best source is {src[0]['source']}, not zorbia.txt")
if [s["index"] for s in src] != list(range(1, len(src) + 1)):
    bad.append(f"indexes {[s['index'] for s in src]}")
chunks = ask.get("chunks", [])
if len(chunks) != len(src):
    bad.append(f"hone ask retrieved {len(chunks)} chunks, serve {len(src)}")
for s, c in zip(src, chunks):
    if s["id"] != c["id"] or s["text"] != c["text"] or s["source"] != c["source"]:
        bad.append(f"source {s['index']}: serve {s['id']} {s['source']} {s['text']!r}, ask {c['id']} {c['source']} "
                   f"{c['text']!r}")
    if abs(s["score"] - c["score"]) > 1e-5:
        bad.append(f"source {s['index']}: score {s['score']} vs ask's {c['score']}")
got = r["choices"][0]["message"]["content"]
if got != ans.get("answer"):
    bad.append(f"answer {got!r} vs hone ask's {ans.get('answer')!r}")
if r.get("object") != "chat.completion" or "usage" not in r or r["usage"]["prompt_tokens"] < 60:
    bad.append(f"the standard fields: object {r.get('object')}, usage {r.get('usage')} (the sources count as prompt)")
print("serve:", repr(got), "| best source:", src[0]["source"] if src else None)
for b in bad:
    print("  ", b, file=sys.stderr)
sys.exit(1 if bad else 0)
EOF
  check "sources and answer equal hone ask's" '[ $rc -eq 0 ]'

  one='{"messages":[{"role":"user","content":"'"$q"'"}],"max_tokens":1'
  code=$(post /v1/chat/completions "$one"',"retrieval":true}' "$tmp/rag5.json")
  n5=$(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["sources"]))' "$tmp/rag5.json" 2>/dev/null)
  check "\"retrieval\": true asks 5; the database holds 3 (got $code, $n5 sources)" '[ "$code" = 200 ] && [ "$n5" = 3 ]'
  n_rag=2
  if [ -z "${HONE_SANITIZED:-}" ]; then
    curl -s -N -H 'Content-Type: application/json' -d "$chat"',"stream":true,"retrieval":{"k":'$k'}}' \
      "$url/v1/chat/completions" >"$tmp/stream.txt"
    n_rag=3
    python3 - "$tmp/stream.txt" "$tmp/rag.json" <<'EOF'; rc=$?
import json, sys
events = [l[6:] for l in open(sys.argv[1]).read().split("\n") if l.startswith("data: ")]
whole = json.load(open(sys.argv[2]))
bad = []
if not events or events[-1] != "[DONE]":
    bad.append("no [DONE] at the end")
chunks = [json.loads(e) for e in events if e != "[DONE]"]
first = chunks[0] if chunks else {}
src = first.get("sources")
if src != whole["sources"]:
    bad.append(f"the first chunk's sources: {src!r}; the whole answer's: {whole['sources']!r}")
if first and (first["choices"][0]["delta"] != {"role": "assistant", "content": ""}):
    bad.append(f"the first chunk's delta: {first['choices'][0]['delta']!r}")
if any("sources" in c for c in chunks[1:]):
    bad.append("sources in a later chunk")
text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c.get("choices"))
if text != whole["choices"][0]["message"]["content"]:
    bad.append(f"the stream's text {text!r}; the whole answer's {whole['choices'][0]['message']['content']!r}")
for b in bad:
    print("  ", b, file=sys.stderr)
sys.exit(1 if bad else 0)
EOF
    check "a retrieval stream opens with the sources (role, empty content), then the whole answer's text" \
      '[ $rc -eq 0 ]'
  fi

  for bad in '{"k":0}' '{"k":21}' '{"k":"3"}'; do
    code=$(post /v1/chat/completions "$chat"',"retrieval":'"$bad"'}' "$tmp/bad.json")
    check "retrieval $bad: 400 naming retrieval.k (got $code $(param_of "$tmp/bad.json"))" \
      '[ "$code" = 400 ] && [ "$(param_of "$tmp/bad.json")" = retrieval.k ]'
  done
  code=$(post /v1/completions '{"prompt":"Zorbia","max_tokens":2,"retrieval":true}' "$tmp/bad.json")
  check "retrieval on /v1/completions: 400 naming retrieval (got $code)" \
    '[ "$code" = 400 ] && [ "$(param_of "$tmp/bad.json")" = retrieval ]'
  code=$(post /v1/chat/completions '{"messages":[{"role":"system","content":"Be brief."}],"retrieval":true}' \
    "$tmp/bad.json")
  check "retrieval without a user message: 400 naming messages (got $code)" \
    '[ "$code" = 400 ] && [ "$(param_of "$tmp/bad.json")" = messages ]'
  curl -s "$url/metrics" >"$tmp/metrics.txt"
  check "/metrics counts the $n_rag retrievals" 'grep -q "^hone_retrieval_requests_total $n_rag$" "$tmp/metrics.txt"'
  kill -TERM "$pid"; wait "$pid"; rc=$?
  check "SIGTERM: exit 0 (got $rc)" '[ $rc -eq 0 ]'
else
  check "hone serve starts with --db" false
fi

"$HONE" serve -m smollm2-135m-instruct --db "$tmp/nodb" --port 0 --threads 2 2>"$tmp/nodb.err"; rc=$?
check "a missing database: serve exits non-zero at start with one line naming it (rc $rc)" \
  '[ $rc -ne 0 ] && [ "$(wc -l <"$tmp/nodb.err")" = 1 ] && grep -q "nodb" "$tmp/nodb.err"'

if start_server "$tmp/serve2.err" -m smollm2-135m-instruct; then
  url=http://127.0.0.1:$port
  code=$(post /v1/chat/completions "$one"',"retrieval":true}' "$tmp/bad.json")
  check "retrieval on a server without --db: 400 (got $code: $(cat "$tmp/bad.json"))" \
    '[ "$code" = 400 ] && [ "$(param_of "$tmp/bad.json")" = retrieval ] && grep -q "no --db" "$tmp/bad.json"'
  kill -TERM "$pid"; wait "$pid"
fi

echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
