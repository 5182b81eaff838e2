#!/usr/bin/env bash
# Makes (once) a small Python venv with the `openai` package for tests/test_cli_serve.sh, the interoperability test
# that drives `hone serve` with OpenAI's own client. The venv is a test's client, not a dependency of hone: it lives
# in $HONE_HOME/openai-venv (default ~/.cache/hone/openai-venv). Idempotent: a venv that already imports openai is
# kept. Prints the venv's python on stdout and exits 0; exits 1 with a message on stderr when it cannot be made (no
# python3 venv module, or PyPI unreachable), so that the test can skip.
set -u
home="${HONE_HOME:-$HOME/.cache/hone}"
venv="$home/openai-venv"
py="$venv/bin/python"
if [ -x "$py" ] && "$py" -c 'import openai' >/dev/null 2>&1; then
  echo "$py"
  exit 0
fi
mkdir -p "$home" || { echo "hone: cannot create $home" >&2; exit 1; }
if ! python3 -m venv "$venv" >&2; then
  echo "hone: python3 cannot make a venv at $venv (install python3-venv)" >&2
  rm -rf "$venv"
  exit 1
fi
if ! "$venv/bin/pip" install -q --disable-pip-version-check openai >&2; then
  echo "hone: pip could not install the openai package into $venv (PyPI unreachable?)" >&2
  rm -rf "$venv"
  exit 1
fi
echo "$py"
