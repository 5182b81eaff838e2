#!/usr/bin/env bash
# Builds llama.cpp's `llama-bench` for the CPU from a llama.cpp source tree that you provide, OUTSIDE this repository,
# so that `make bench` can put hone beside it. llama.cpp is not a dependency of hone; this script downloads nothing.
#
#   LLAMA_CPP_SRC=/path/to/llama.cpp bash scripts/build-llama-cpp.sh
#   export LLAMA_BENCH=~/.cache/hone/llama.cpp-build/bin/llama-bench
#
# Env: LLAMA_CPP_SRC (required: a llama.cpp checkout), LLAMA_CPP_BUILD (default ~/.cache/hone/llama.cpp-build),
# JOBS (default 2), LLAMA_CPP_AMX (1 keeps ggml's AMX kernels, see below), LLAMA_CPP_COMMIT (the commit of a
# source tree that is not a git checkout, so that llama-bench reports it). The build runs under `nice -n 19` so
# that it does not starve other work on a small machine.
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
# AMX is off unless asked for: ggml's AMX matmul (used for Q4_1/Q8_0 when the CPU reports AMX) dies with SIGILL on
# tileloadd on some machines, this one included (a Xeon under KVM, where a small AMX test program runs fine; upstream
# llama.cpp PR #26954 describes a bug of this kind in ggml's AMX set-up). Without it ggml uses its AVX-512 VNNI
# kernels, the fastest it can run on such a machine.
amx_flags="-mno-amx-tile -mno-amx-int8 -mno-amx-bf16"
[ "${LLAMA_CPP_AMX:-0}" = 1 ] && amx_flags=""
commit=()
[ -n "${LLAMA_CPP_COMMIT:-}" ] && commit=(-DLLAMA_BUILD_COMMIT="$LLAMA_CPP_COMMIT")
nice -n 19 cmake -S "$src" -B "$build" -DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=ON \
  -DCMAKE_C_FLAGS="$amx_flags" -DCMAKE_CXX_FLAGS="$amx_flags" \
  -DLLAMA_CURL=OFF -DLLAMA_OPENSSL=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF \
  -DLLAMA_BUILD_SERVER=OFF -DLLAMA_BUILD_UI=OFF -DLLAMA_BUILD_APP=OFF -DBUILD_SHARED_LIBS=OFF "${commit[@]}" >&2
nice -n 19 cmake --build "$build" -j "$jobs" --target llama-bench >&2
echo "$build/bin/llama-bench"
