#!/usr/bin/env bash
# Packs what bench/gpu-check.sh needs on a GPU machine that has nvcc, a driver and Python (torch and the
# nvidia-* wheels) but no Node.js, no npm packages and no network (docs/cuda.md):
#   build/device-pack/pack.tar.xz, xz-compressed, holding
#     node                 this machine's Node.js binary
#     nsa_flow.node        the CPU addon built here (npx node-gyp rebuild), and
#     lib/                 its shared libraries beyond glibc/libstdc++ (OpenBLAS, LAPACKE, gfortran, …)
#     nsa_flow_cuda.node   the CUDA addon built here, when nvcc is here (the GPU machine rebuilds it)
#     include/node/        Node's Node-API headers, and
#     node-addon-api/      node-addon-api's headers, for that rebuild
#     node_modules/        the package's run-time dependencies (csv-parse, node-gyp-build)
# Run it after `npx node-gyp rebuild`, `npm run build:cuda` and `npm run build:ts`; then send the
# working tree with the ignored paths build/device-pack and dist carried along (64 MiB in all: the
# script prints the size), and run `bash bench/gpu-check.sh` there.
set -euo pipefail
cd "$(dirname "$0")/.."

die() { echo "pack-cuda-device: $*" >&2; exit 1; }
[ -f build/Release/nsa_flow.node ] || die "build/Release/nsa_flow.node is missing: run npx node-gyp rebuild first"
[ -f dist/index.js ] || die "dist/ is missing: run npm run build:ts first"
command -v xz >/dev/null || die "xz is not installed"

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/lib" "$stage/include/node" "$stage/node-addon-api" "$stage/node_modules"

cp "$(command -v node)" "$stage/node"
cp build/Release/nsa_flow.node "$stage/"
# The CPU addon's libraries that a machine without them lacks: everything ldd resolves except the C/C++
# runtime, copied under the name the loader asks for.
ldd build/Release/nsa_flow.node | awk '$2 == "=>" && $3 ~ /^\// {print $1, $3}' | while read -r soname path; do
  case "$soname" in
    libc.so*|libm.so*|libstdc++.so*|libgcc_s.so*|libpthread.so*|libdl.so*|librt.so*|ld-linux*) ;;
    *) cp -L "$path" "$stage/lib/$soname" ;;
  esac
done
if [ -f build/cuda/nsa_flow_cuda.node ]; then cp build/cuda/nsa_flow_cuda.node "$stage/"; fi

nodeinc=$(node -p "require('./scripts/nodedir.cjs').localNodedir() ?? ''")
[ -n "$nodeinc" ] || die "Node's headers were not found (include/node beside the node binary)"
for h in node_api.h node_api_types.h js_native_api.h js_native_api_types.h; do cp "$nodeinc/include/node/$h" "$stage/include/node/"; done
napi=$(node -p "require('path').dirname(require.resolve('node-addon-api/package.json'))")
cp "$napi"/napi.h "$napi"/napi-inl.h "$napi"/napi-inl.deprecated.h "$stage/node-addon-api/"
for dep in csv-parse node-gyp-build; do
  [ -d "node_modules/$dep" ] || die "node_modules/$dep is missing"
  cp -rL "node_modules/$dep" "$stage/node_modules/$dep"
done

mkdir -p build/device-pack
tar -C "$stage" -cf - . | xz -T2 -6 > build/device-pack/pack.tar.xz
size=$(stat -c %s build/device-pack/pack.tar.xz)
dist=$(du -sb dist | cut -f1)
echo "pack-cuda-device: build/device-pack/pack.tar.xz $size bytes; with dist/ $((size + dist)) bytes of the 64 MiB carry limit"
[ $((size + dist)) -le $((64 * 1024 * 1024)) ] || die "the pack and dist/ exceed 64 MiB"
