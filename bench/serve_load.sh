#!/usr/bin/env bash
# Load on `hone serve` (issue 8): 1, 16 and 64 concurrent clients (bench/serve_load.py: threads + http.client,
# /v1/completions back to back for DURATION seconds each) against a server on 127.0.0.1. Prints per load: requests,
# failures, aggregate generated tokens/s and its ratio to one client alone, latency; and the server's peak RSS
# (VmHWM). With LLAMA_SERVER set to a llama-server binary, the same loads against `llama-server --parallel N` on the
# same GGUF, in the same run; without it that part is skipped with a message.
#
#   bash bench/serve_load.sh [HONE] [MODEL]        (defaults: build/hone, smollm2-135m-instruct)
#   env: DURATION (s, default 20), MAX_TOKENS (default 64), THREADS (default: physical cores), LOADS ("1 16 64"),
#        LLAMA_SERVER (path)
set -u
hone=${1:-build/hone}
model=${2:-smollm2-135m-instruct}
duration=${DURATION:-20}
max_tokens=${MAX_TOKENS:-64}
loads=${LOADS:-1 16 64}
here=$(cd "$(dirname "$0")" && pwd)
threads=${THREADS:-$(lscpu -p=core 2>/dev/null | grep -v '^#' | sort -u | wc -l)}
[ "$threads" -ge 1 ] 2>/dev/null || threads=$(nproc)
export OMP_WAIT_POLICY=PASSIVE
# Some machines export these for OpenBLAS; with them its sgemm runs at about half speed here. Both servers are
# measured without them.
for v in OPENBLAS_CORETYPE OPENBLAS_L2_SIZE; do
  if [ -n "${!v+x}" ]; then echo "serve_load: unsetting $v=${!v} for this benchmark (OpenBLAS is slower with it)" >&2; fi
  unset "$v"
done
tmp=$(mktemp -d)
pid=
trap '[ -n "$pid" ] && kill $pid 2>/dev/null; rm -rf "$tmp"' EXIT
gguf=$("$hone" pull "$model" 2>/dev/null | tail -1)
[ -e "$gguf" ] || { echo "serve_load: cannot pull $model" >&2; exit 1; }
max_n=0; for n in $loads; do [ "$n" -gt "$max_n" ] && max_n=$n; done

# load NAME URL CLIENTS [extra serve_load.py args]: one JSON line into $tmp/NAME-CLIENTS.json
load() {
  local name=$1 url=$2 n=$3; shift 3
  # ignore_eos (vLLM's and llama-server's extension): every request generates max_tokens on both servers.
  python3 "$here/serve_load.py" --url "$url" --clients "$n" --duration "$duration" --max-tokens "$max_tokens" \
    --ignore-eos "$@" \
    >"$tmp/$name-$n.json"
  cat "$tmp/$name-$n.json"
}
field() { python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$1" "$2"; }

echo "hone serve: $model, --max-batch $max_n, --threads $threads; $duration s per load, max_tokens $max_tokens"
"$hone" serve -m "$model" --port 0 --threads "$threads" --max-batch "$max_n" --kv-memory 1024 2>"$tmp/serve.err" &
pid=$!
port=
for _ in $(seq 1 600); do
  port=$(sed -n 's|^hone: serving .* on http://[^ ]*:\([0-9]*\) .*|\1|p' "$tmp/serve.err")
  [ -n "$port" ] || ! kill -0 $pid 2>/dev/null && break
  sleep 0.1
done
[ -n "$port" ] || { cat "$tmp/serve.err" >&2; exit 1; }
for n in $loads; do load hone "http://127.0.0.1:$port" "$n"; done
hwm=$(awk '/^VmHWM/ { print $2 }' /proc/$pid/status)
curl -s "http://127.0.0.1:$port/metrics" | grep -E '^hone_engine_steps_total|^hone_preemptions_total' >"$tmp/steps.txt"
kill -TERM $pid; wait $pid; pid=

have_llama=0
if [ -z "${LLAMA_SERVER:-}" ]; then
  echo "llama-server: skipped (set LLAMA_SERVER to a llama-server binary to compare)"
elif [ ! -x "$LLAMA_SERVER" ]; then
  echo "llama-server: skipped ($LLAMA_SERVER is not an executable)"
else
  have_llama=1
  for n in $loads; do
    lport=$((20000 + RANDOM % 20000))
    # Each of the N slots gets its own context of 512 tokens; continuous batching is llama-server's default.
    "$LLAMA_SERVER" -m "$gguf" --host 127.0.0.1 --port $lport --parallel "$n" -c $((n * 512)) -t "$threads" \
      >"$tmp/llama.log" 2>&1 &
    pid=$!
    for _ in $(seq 1 600); do
      [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$lport/health")" = 200 ] && break
      kill -0 $pid 2>/dev/null || break
      sleep 0.1
    done
    load llama "http://127.0.0.1:$lport" "$n"
    kill $pid; wait $pid 2>/dev/null; pid=
  done
fi

echo
printf '%-14s %8s %9s %9s %12s %10s %10s\n' server clients requests failures "gen tok/s" "x single" "p50 s"
for name in hone llama; do
  [ $name = llama ] && [ $have_llama = 0 ] && continue
  base=$(field "$tmp/$name-1.json" gen_tok_per_s 2>/dev/null || echo 0)
  for n in $loads; do
    f=$tmp/$name-$n.json
    [ -s "$f" ] || continue
    tps=$(field "$f" gen_tok_per_s)
    printf '%-14s %8s %9s %9s %12s %10s %10s\n' "$([ $name = hone ] && echo "hone serve" || echo llama-server)" "$n" \
      "$(field "$f" requests)" "$(field "$f" failures)" "$tps" \
      "$(awk -v a="$tps" -v b="$base" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }')" \
      "$(field "$f" latency_p50_s)"
  done
done
echo "hone serve peak RSS: $((hwm / 1024)) MiB"
echo "hone serve engine steps by batch size (lower bound):"; sed 's/^/  /' "$tmp/steps.txt"
