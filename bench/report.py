#!/usr/bin/env python3
"""Writes bench/run.sh's report (Markdown, on stdout): hone's figures beside llama-bench's, with the ratios.

--results: TSV lines `TOOL<TAB>QTYPE<TAB>THREADS<TAB>PROMPT_TPS<TAB>DECODE_TPS`, one per run, TOOL being `hone` or
`llama.cpp`. Every figure in the table is the best of the runs; all runs are listed below it.
--parse-llama FILE: prints "PROMPT_TPS DECODE_TPS COMMIT" from one llama-bench `-o json` run (pp512 and tg128).
Standard library only, so that it runs with the system python3.
"""
import argparse
import datetime
import json
import os
import platform
import subprocess


def best(values):
    vals = [float(v) for v in values if v not in ("", "nan")]
    return max(vals) if vals else None


def fmt(v):
    return "—" if v is None else f"{v:.1f}"


def ratio(a, b):
    return None if a is None or b is None or b == 0 else a / b


def fmt_ratio(r):
    return "—" if r is None else f"{r:.2f}"


def parse_llama(path):
    """(pp tok/s, tg tok/s, its commit) of one llama-bench -o json run; best of its samples."""
    with open(path) as f:
        rows = json.load(f)
    pp = tg = None
    commit = "unknown"
    for row in rows:
        commit = f"{row.get('build_commit', 'unknown')} (build {row.get('build_number', '?')})"
        ts = row.get("samples_ts") or [row.get("avg_ts")]
        if row.get("n_prompt", 0) > 0 and row.get("n_gen", 0) == 0:
            pp = best(ts)
        elif row.get("n_gen", 0) > 0 and row.get("n_prompt", 0) == 0:
            tg = best(ts)
    return pp, tg, commit


def machine():
    model, cores, threads = platform.processor() or "unknown CPU", os.cpu_count(), None
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        info = {}
        for line in out.splitlines():
            k, _, v = line.partition(":")
            info[k.strip()] = v.strip()
        model = info.get("Model name", model)
        per_socket = int(info.get("Core(s) per socket", "0") or 0)
        sockets = int(info.get("Socket(s)", "1") or 1)
        cores = per_socket * sockets or cores
        threads = info.get("CPU(s)")
        flags = info.get("Flags", "").split()
        simd = [f for f in ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "amx_int8") if f in flags]
    except (OSError, subprocess.CalledProcessError, ValueError):
        simd = []
    return f"{model}, {cores} cores ({threads or cores} logical CPUs), SIMD: {', '.join(simd) or 'unknown'}"


def git_rev(path):
    try:
        rev = subprocess.run(["git", "-C", path, "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                             check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", path, "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, check=True).stdout.strip()
        return rev + (" (with uncommitted changes)" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--results")
    ap.add_argument("--parse-llama", metavar="FILE")
    ap.add_argument("--llama-version", default="unknown", help="llama-bench's commit")
    ap.add_argument("--prompt-tokens", default="512")
    ap.add_argument("--reps", default="3")
    ap.add_argument("--command", default="bash bench/run.sh build/hone")
    ap.add_argument("--load", default=None, help="load averages (1, 5, 15 min) at the start and end of the run")
    a = ap.parse_args()
    if a.parse_llama:
        pp, tg, commit = parse_llama(a.parse_llama)
        print(fmt(pp), fmt(tg), commit)
        return
    if not a.results:
        ap.error("--results or --parse-llama is required")

    runs = {}  # (tool, qtype, threads) -> ([prompt tok/s], [decode tok/s])
    with open(a.results) as f:
        for line in f:
            parts = line.rstrip("\n").split("\t")
            if len(parts) != 5:
                continue
            pp, tg = runs.setdefault((parts[0], parts[1], int(parts[2])), ([], []))
            pp.append(parts[3])
            tg.append(parts[4])
    hone = {k[1:]: (best(v[0]), best(v[1])) for k, v in runs.items() if k[0] == "hone"}
    llama = {k[1:]: (best(v[0]), best(v[1])) for k, v in runs.items() if k[0] == "llama.cpp"}

    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    print("# Benchmark: hone beside llama.cpp\n")
    print(f"- Date: {now}")
    print(f"- Machine: {machine()}")
    if a.load:
        print(f"- Load average (1, 5, 15 min) at the start of the run: {a.load} (other work on the machine slows "
              "both programs, two threads most)")
    print(f"- hone: commit {git_rev(repo)}")
    print(f"- llama.cpp: {'llama-bench, commit ' + a.llama_version if llama else 'not measured (LLAMA_BENCH not set)'}")
    print(f"- Command: `{a.command}`")
    print(f"- Model: SmolLM2-135M-Instruct; Q4_1 is the pulled file, the other types are made from it with `hone quantize` (K-quants with llama.cpp's mixes: rows that are not a multiple of 256 fall back as llama-quantize does).")
    print(f"- Prompt: a {a.prompt_tokens}-token prose prompt (hone) beside llama-bench's pp512; decode: 128 greedy "
          "tokens after a short prompt (hone) beside llama-bench's tg128 (which starts from an empty context). Best "
          f"of {a.reps} runs for both, hone's and llama-bench's runs alternating. OPENBLAS_CORETYPE and "
          "OPENBLAS_L2_SIZE are unset for both.\n")

    print("| model | threads | hone prompt tok/s | llama.cpp pp512 tok/s | prompt ratio | hone decode tok/s "
          "| llama.cpp tg128 tok/s | decode ratio |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    decode_ratios = []
    for key in sorted(set(hone) | set(llama)):
        hp, hd = hone.get(key, (None, None))
        lp, ld = llama.get(key, (None, None))
        rd = ratio(hd, ld)
        if rd is not None:
            decode_ratios.append((rd, key))
        print(f"| {key[0]} | {key[1]} | {fmt(hp)} | {fmt(lp)} | {fmt_ratio(ratio(hp, lp))} | {fmt(hd)} | {fmt(ld)} "
              f"| {fmt_ratio(rd)} |")
    print("\nRatios are hone / llama.cpp: above 1.00 hone is faster.\n")
    print("Every run, prompt / decode tok/s:\n")
    for key in sorted(runs, key=lambda k: (k[1], k[2], k[0])):
        pp, tg = runs[key]
        print(f"- {key[1]}, {key[2]} thread(s), {key[0]}: " + ", ".join(f"{p} / {t}" for p, t in zip(pp, tg)))
    print()

    if a.load:
        try:
            start = float(a.load.split()[0])
        except ValueError:
            start = 0.0
        if start > (os.cpu_count() or 1) / 2:
            print(f"The machine was busy during this run (load {start:.1f} on {os.cpu_count()} logical CPUs): "
                  "runs that use every core compete with the other work, and their figures measure that "
                  "more than either program; the best of the runs is the closest to the programs' own speed.\n")
    print("llama.cpp is built by `scripts/build-llama-cpp.sh` (GGML_NATIVE on; its AMX kernels off, because they "
          "stop with SIGILL on this kind of machine; see the script).\n")
    print("## Where hone stands\n")
    if not decode_ratios:
        print("No comparison in this run (llama-bench was not available). The target is a decode ratio of at least "
              "1.00 now and 1.25 later.")
        return
    lo = min(decode_ratios)
    hi = max(decode_ratios)
    met = sum(1 for r, _ in decode_ratios if r >= 1.0)
    later = sum(1 for r, _ in decode_ratios if r >= 1.25)
    n = len(decode_ratios)
    print(f"Decode ratio: {lo[0]:.2f} ({lo[1][0]}, {lo[1][1]} thread(s)) to {hi[0]:.2f} ({hi[1][0]}, {hi[1][1]} "
          "thread(s)).")
    for t in sorted({k[1] for _, k in decode_ratios}):
        per = ", ".join(f"{r:.2f} ({k[0]})" for r, k in sorted(decode_ratios, key=lambda x: x[1]) if k[1] == t)
        print(f"- {t} thread(s): decode ratio {per}.")
    print(f"- Target now, decode ratio >= 1.00: {'met' if met == n else 'NOT met'} ({met} of {n} configurations).")
    print(f"- Target later, decode ratio >= 1.25: {'met' if later == n else 'not yet met'} ({later} of {n} "
          "configurations).")


if __name__ == "__main__":
    main()
