#!/usr/bin/env bash
# One command on a fresh Debian/Ubuntu machine: check the inputs, install the system libraries that are
# missing, install and build nsa-flow from source, then run the examples and the main job on data/.
#   bash scripts/quickstart.sh [--no-npm-ci]
# --no-npm-ci keeps the node_modules already installed (a re-run) instead of reinstalling with `npm ci`.
set -euo pipefail
cd "$(dirname "$0")/.."

fail() {
  echo "quickstart: $*" >&2
  exit 1
}

npm_ci=1
for arg in "$@"; do
  case "$arg" in
    --no-npm-ci) npm_ci=0 ;;
    *) fail "unknown argument '$arg' (the only option is --no-npm-ci)" ;;
  esac
done

# Inputs first, so that nothing is installed or built for a run that cannot finish.
command -v node >/dev/null 2>&1 || fail "Node.js >= 20.19 is required and 'node' is not on PATH (https://nodejs.org, or your distribution's nodejs package)"
node -e 'const [a, b] = process.versions.node.split(".").map(Number); process.exit(a > 20 || (a === 20 && b >= 19) ? 0 : 1)' ||
  fail "Node.js >= 20.19 is required but this is $(node --version) (https://nodejs.org)"
command -v npm >/dev/null 2>&1 || fail "npm is required and not on PATH (it comes with Node.js; Debian: apt-get install npm)"
for f in data/leukemia_all/ALL_expr_top1000var.npy.gz data/text/austen_tfidf.mtx.gz data/text/austen_docs.csv \
  data/text/austen_vocab.txt data/digits/digits_images.npy.gz data/digits/digits_labels.csv; do
  [ -f "$f" ] || fail "$f is missing: run this script from a complete clone of the repository"
done
if [ "$npm_ci" -eq 1 ] && [ -L node_modules ]; then
  fail "node_modules is a symbolic link, which npm ci would empty; rerun with --no-npm-ci to keep it"
fi

missing=()
if command -v dpkg >/dev/null 2>&1; then
  for pkg in libopenblas-dev liblapacke-dev pkg-config build-essential python3; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
  done
elif ! pkg-config --exists openblas lapacke 2>/dev/null; then
  fail "not a Debian/Ubuntu system and pkg-config finds no openblas + lapacke: install OpenBLAS and LAPACKE (see the README's Building section), then run npm ci"
fi
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null 2>&1 || fail "missing packages ${missing[*]}, and not root without sudo: install them as root (apt-get install ${missing[*]})"
    sudo="sudo"
  fi
  echo "quickstart: installing ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}"
fi

if [ "$npm_ci" -eq 1 ]; then
  npm ci --no-audit --no-fund
fi
npx node-gyp rebuild -j "$(nproc)"
npm run build:ts

npx tsx examples/orthogonalize.ts

# The main job from the command line: Stratified-NMF of the Austen novels (one stratum per novel),
# result arrays + result.json and SVG plots under out/austen.
node bin/nsa-flow.mjs snmf data/text/austen_tfidf.mtx.gz --strata-from data/text/austen_docs.csv:stratum \
  --rank 6 --max-iterations 100 --seed 1 --out out/austen --force
node bin/nsa-flow.mjs plot out/austen --out out/austen/plots --col-names data/text/austen_vocab.txt
npx tsx examples/text-strata.ts
