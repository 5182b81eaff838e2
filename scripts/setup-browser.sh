#!/usr/bin/env bash
# Installs Debian's chromium for the report test (tests/test_cli_bakeoff.sh opens `hone bakeoff`'s report.html in
# headless Chromium), if it is missing. As root it runs apt-get; otherwise, or when the install fails (no network),
# it says so and exits 0: the test then skips with a message naming the cause. Called by `make test`.
set -u
command -v chromium >/dev/null 2>&1 && exit 0
if [ "$(id -u)" -ne 0 ]; then
  echo "hone: chromium is missing (the bakeoff report's browser test will skip); install it with: sudo apt-get install chromium" >&2
  exit 0
fi
echo "hone: installing chromium (for the bakeoff report's browser test)" >&2
export DEBIAN_FRONTEND=noninteractive
if ! { apt-get update -qq && apt-get install -y -qq --no-install-recommends chromium; } >&2; then
  echo "hone: could not install chromium (the bakeoff report's browser test will skip)" >&2
fi
exit 0
