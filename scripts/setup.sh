#!/usr/bin/env bash
# Installs the Debian packages hone builds against, if any is missing (idempotent). As root it runs apt-get;
# otherwise it names the packages to install and fails.
set -euo pipefail
pkgs=(build-essential cmake pkg-config libopenblas-dev libpcre2-dev libjansson-dev libyaml-dev libutf8proc-dev libmicrohttpd-dev libfaiss-dev libsqlite3-dev python3 python3-pip unzip)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# python3/pip may come from elsewhere (pyenv); only their presence matters.
if command -v python3 >/dev/null; then missing=("${missing[@]/python3}"); fi
if python3 -m pip --version >/dev/null 2>&1; then missing=("${missing[@]/python3-pip}"); fi
read -r -a missing <<<"${missing[*]}"
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
  echo "hone: missing Debian packages: ${missing[*]}; install them with: sudo apt-get install ${missing[*]}" >&2
  exit 1
fi
echo "hone: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >&2
apt-get install -y -qq "${missing[@]}" >&2
