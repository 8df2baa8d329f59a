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

# The main job from the command line: Stratified-NMF of the Austen novels (one stratum per novel),
# result arrays + result.json and SVG plots under out/austen.
data="${NSA_FLOW_SHARED:-../shared}/data/text"
node bin/nsa-flow.mjs snmf "$data/austen_tfidf.mtx.gz" --strata-from "$data/austen_docs.csv:stratum" \
  --rank 6 --max-iterations 100 --seed 1 --out out/austen --force
node bin/nsa-flow.mjs plot out/austen --out out/austen/plots
npm run example:text
