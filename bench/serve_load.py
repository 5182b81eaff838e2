"""Load generator for an OpenAI-compatible server (`hone serve`, llama-server): N client threads, each with one
keep-alive connection, send /v1/completions requests back to back for a bounded time and count what comes back.
Python's standard library only (threads + http.client), so it runs with the system python3.

    python3 bench/serve_load.py --url http://127.0.0.1:8080 --clients 16 --duration 20 --max-tokens 64

Prints one JSON line: clients, seconds, requests, failures (non-200 answers, bad bodies, connection errors),
generated tokens (the answers' usage.completion_tokens), aggregate generated tokens/s, and latency percentiles.
Prompts differ between requests (a counter in the text), so a prefix cache shares only their common start.
"""
import argparse
import http.client
import json
import sys
import threading
import time
import urllib.parse

PROMPTS = [
    "Write a short story about a robot who learns to paint. Story number {i}:",
    "Explain, step by step, how a bicycle stays upright. Note {i}:",
    "List some facts about the planet Mars. Fact sheet {i}:",
    "Describe the water cycle to a ten-year-old. Lesson {i}:",
]


def client(args, idx, deadline, out, lock):
    u = urllib.parse.urlparse(args.url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=args.request_timeout)
    headers = {"Content-Type": "application/json"}
    if args.api_key:
        headers["Authorization"] = "Bearer " + args.api_key
    stats = {"requests": 0, "failures": 0, "tokens": 0, "latencies": [], "errors": []}
    k = 0
    while time.time() < deadline:
        body = {"prompt": PROMPTS[(idx + k) % len(PROMPTS)].format(i=idx * 100000 + k), "max_tokens": args.max_tokens,
                "temperature": args.temperature, "seed": idx * 100000 + k}
        if args.model:
            body["model"] = args.model
        if args.ignore_eos:  # llama-server's extension: every request generates max_tokens
            body["ignore_eos"] = True
        k += 1
        t0 = time.time()
        try:
            conn.request("POST", "/v1/completions", json.dumps(body), headers)
            r = conn.getresponse()
            data = r.read()
            ok = r.status == 200
            if ok:
                usage = json.loads(data)["usage"]
                stats["tokens"] += usage["completion_tokens"]
            else:
                stats["errors"].append(f"{r.status} {data[:200]!r}")
        except Exception as e:  # a dropped or refused connection: a failure, then a fresh connection
            ok = False
            stats["errors"].append(repr(e))
            conn.close()
            conn = http.client.HTTPConnection(u.hostname, u.port, timeout=args.request_timeout)
        stats["requests"] += 1
        stats["failures"] += not ok
        if ok:
            stats["latencies"].append(time.time() - t0)
    conn.close()
    with lock:
        out.append(stats)


def pct(xs, p):
    if not xs:
        return None
    xs = sorted(xs)
    return round(xs[min(len(xs) - 1, int(p / 100 * len(xs)))], 3)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", required=True)
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--duration", type=float, default=20, help="seconds during which requests are started")
    ap.add_argument("--max-tokens", type=int, default=64)
    ap.add_argument("--temperature", type=float, default=0.7)
    ap.add_argument("--model")
    ap.add_argument("--api-key")
    ap.add_argument("--ignore-eos", action="store_true")
    ap.add_argument("--request-timeout", type=float, default=600)
    args = ap.parse_args()
    out, lock = [], threading.Lock()
    t0 = time.time()
    deadline = t0 + args.duration
    threads = [threading.Thread(target=client, args=(args, i, deadline, out, lock)) for i in range(args.clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    secs = time.time() - t0  # until the last request started before the deadline came back
    lat = [x for s in out for x in s["latencies"]]
    res = {
        "clients": args.clients,
        "seconds": round(secs, 2),
        "requests": sum(s["requests"] for s in out),
        "failures": sum(s["failures"] for s in out),
        "gen_tokens": sum(s["tokens"] for s in out),
        "gen_tok_per_s": round(sum(s["tokens"] for s in out) / secs, 2),
        "latency_p50_s": pct(lat, 50),
        "latency_p95_s": pct(lat, 95),
        "first_errors": [e for s in out for e in s["errors"]][:3],
    }
    print(json.dumps(res))
    sys.exit(0)


if __name__ == "__main__":
    main()
