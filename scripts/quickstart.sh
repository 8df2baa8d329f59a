#!/usr/bin/env bash
# One command on a fresh Debian/Ubuntu machine: install the system libraries that are missing,
# install and build nsa-flow from source, then run the example on real data.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
for pkg in libopenblas-dev liblapacke-dev pkg-config build-essential python3; do
  dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""; [ "$(id -u)" -ne 0 ] && sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}"
fi

npm ci --no-audit --no-fund
npx node-gyp rebuild -j "$(nproc)"
npm run build:ts
npm run example
