#!/usr/bin/env bash
# Builds llama.cpp's `llama-bench` for the CPU from a llama.cpp source tree that you provide, OUTSIDE this repository,
# so that `make bench` can put hone beside it. llama.cpp is not a dependency of hone; this script downloads nothing.
#
#   LLAMA_CPP_SRC=/path/to/llama.cpp bash scripts/build-llama-cpp.sh
#   export LLAMA_BENCH=~/.cache/hone/llama.cpp-build/bin/llama-bench
#
# Env: LLAMA_CPP_SRC (required: a llama.cpp checkout), LLAMA_CPP_BUILD (default ~/.cache/hone/llama.cpp-build),
# JOBS (default 2). The build runs under `nice -n 19` so that it does not starve other work on a small machine.
set -euo pipefail
src=${LLAMA_CPP_SRC:-}
build=${LLAMA_CPP_BUILD:-${HONE_HOME:-$HOME/.cache/hone}/llama.cpp-build}
jobs=${JOBS:-2}
if [ -z "$src" ] || [ ! -f "$src/CMakeLists.txt" ] || [ ! -d "$src/ggml" ]; then
  echo "build-llama-cpp: set LLAMA_CPP_SRC to a llama.cpp source tree (e.g. a clone of github.com/ggml-org/llama.cpp)" >&2
  exit 2
fi
case "$(cd "$src" && pwd)/" in
  "$(cd "$(dirname "$0")/.." && pwd)/"*) echo "build-llama-cpp: keep llama.cpp outside the hone repository" >&2; exit 2 ;;
esac
# GGML_NATIVE tunes ggml for this CPU (AVX2/AVX-512 as available), as a user building llama.cpp here would get.
# Network, server, UI, tests and examples are off: only llama-bench is needed.
nice -n 19 cmake -S "$src" -B "$build" -DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=ON \
  -DLLAMA_CURL=OFF -DLLAMA_OPENSSL=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF \
  -DLLAMA_BUILD_SERVER=OFF -DLLAMA_BUILD_UI=OFF -DLLAMA_BUILD_APP=OFF -DBUILD_SHARED_LIBS=OFF >&2
nice -n 19 cmake --build "$build" -j "$jobs" --target llama-bench >&2
echo "$build/bin/llama-bench"
