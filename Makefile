# hone's front door. `make` builds build/hone; `make demo` sets up and runs the demo; `make test` runs every test
# (also under AddressSanitizer + UBSan); `make bench` runs the benchmarks. Set-up (Debian packages, the model) is
# part of each target and is quick when already done.
JOBS ?= $(shell nproc)
BUILD ?= build
ASAN_BUILD ?= build-asan
MODEL ?= smollm2-135m-instruct

.PHONY: all setup build demo test test-fast test-asan bench clean browser

all: build

setup:
	@bash scripts/setup.sh

build: setup
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release >/dev/null
	@cmake --build $(BUILD) -j $(JOBS)

$(ASAN_BUILD)/CMakeCache.txt:
	@cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DHONE_SANITIZE=ON >/dev/null

pull: build
	@$(BUILD)/hone pull $(MODEL) >/dev/null

demo: pull
	@bash scripts/demo.sh $(BUILD)/hone $(MODEL)

# The full suite: release build, then the same tests under ASan + UBSan (real-model tests use shorter inputs there).
test: pull browser test-fast test-asan

# Headless Chromium for the bakeoff report's browser test (tests/test_report_browser.sh, which skips without it).
browser:
	@bash scripts/setup-browser.sh

test-fast: build
	@cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

test-asan: setup $(ASAN_BUILD)/CMakeCache.txt
	@cmake --build $(ASAN_BUILD) -j $(JOBS)
	@cd $(ASAN_BUILD) && HONE_SANITIZED=1 ASAN_OPTIONS=detect_leaks=1 ctest --output-on-failure -j $(JOBS)

bench: pull
	@bash bench/run.sh $(BUILD)/hone

clean:
	rm -rf $(BUILD) $(ASAN_BUILD)

# LoRA SFT speed and peak memory beside PyTorch + PEFT (PYTHON= names a Python with torch and peft).
.PHONY: bench-train
bench-train: build
	@bash bench/train_bench.sh $(BUILD)
