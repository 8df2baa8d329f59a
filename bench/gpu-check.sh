#!/usr/bin/env bash
# The device check of the CUDA path (docs/cuda.md), the one script a GPU session runs. Sized for under
# 8 minutes on one H200. Needs, in the working tree:
#   dist/                          npm run build:ts
#   build/device-pack/pack.tar.xz  scripts/pack-cuda-device.sh: Node, the CPU addon and its libraries,
#                                  the headers to rebuild the CUDA addon, the run-time npm packages
# (both ignored by git: carry them). On the GPU machine it
#   1. unpacks the pack and checks that the carried Node and CPU addon run;
#   2. builds the CUDA addon with that machine's nvcc (npm run build:cuda's script), else takes the one
#      built where the pack was made;
#   3. points the loader at the cuBLAS/cuSOLVER of the installed nvidia-* Python wheels;
#   4. runs bench/gpu-check.mjs: parity of every device function with the CPU path (1e-10 relative),
#      fixture and random inputs, and the benchmarks (device vs this machine's CPU);
#   5. runs bench/gpu-peer.py: the same operations in PyTorch on the same GPU;
#   6. writes $OUT/report.md (with gpu-check.json, peer.json and the logs beside it).
# Exit status: 0 everything passed; 1 a step or a parity check failed; 3 no usable GPU (it says why).
set -uo pipefail
cd "$(dirname "$0")/.."
root=$PWD
OUT=${OUT:-$root/gpu-check-out}
mkdir -p "$OUT"
report="$OUT/report.md"
echo "# nsa-flow device check ($(date -u +%Y-%m-%dT%H:%MZ))" > "$report"

say() { echo "gpu-check: $*"; echo "- $*" >> "$report"; }
stop() { say "STOPPED: $1"; exit "${2:-1}"; }

pack=build/device-pack/pack.tar.xz
[ -f "$pack" ] || stop "$pack is missing: run scripts/pack-cuda-device.sh where Node is installed, then carry build/device-pack"
[ -f dist/index.js ] || stop "dist/ is missing: run npm run build:ts, then carry dist"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
timeout 120 tar -xJf "$pack" -C "$work" || stop "unpacking $pack failed"
NODE=$work/node
nodeVersion=$(timeout 30 "$NODE" --version) || stop "the carried Node does not run on this machine (glibc?)"
say "Node $nodeVersion (carried)"
export LD_LIBRARY_PATH="$work/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export NSA_FLOW_ADDON=$work/nsa_flow.node
[ -e node_modules ] || ln -s "$work/node_modules" node_modules
blas=$(timeout 60 "$NODE" --input-type=module -e "import('$root/dist/index.js').then((m) => console.log(m.info().blas.corename))") \
  || stop "the carried CPU addon does not load here"
say "CPU addon loads (OpenBLAS kernel $blas)"

# 2. The CUDA addon, built here when nvcc is here.
nvcc=$(command -v nvcc || true)
[ -n "$nvcc" ] || { [ -x /usr/local/cuda/bin/nvcc ] && nvcc=/usr/local/cuda/bin/nvcc; }
if [ -n "$nvcc" ]; then
  NVCC=$nvcc NSA_FLOW_NODE_INCLUDE=$work/include/node NSA_FLOW_ADDON_API_INCLUDE=$work/node-addon-api \
    timeout 300 "$NODE" scripts/build-cuda.cjs > "$OUT/build-cuda.log" 2>&1 || stop "building the CUDA addon failed (see build-cuda.log)"
  say "CUDA addon built here with $("$nvcc" --version | tail -1)"
elif [ -f "$work/nsa_flow_cuda.node" ]; then
  mkdir -p build/cuda && cp "$work/nsa_flow_cuda.node" build/cuda/
  say "no nvcc here: using the CUDA addon built where the pack was made"
else
  stop "no nvcc here and no CUDA addon in the pack"
fi

# 3. cuBLAS/cuSOLVER from the Python wheels: every lib folder under site-packages/nvidia (their
#    libraries find each other through LD_LIBRARY_PATH; NSA_FLOW_CUDA_LIBS is what the addon searches).
libs=$(timeout 60 python3 - <<'EOF' 2>/dev/null
import glob, os, site
dirs = []
for base in site.getsitepackages() + [site.getusersitepackages()]:
    for lib in glob.glob(os.path.join(base, "nvidia", "**", "lib*.so*"), recursive=True):
        d = os.path.dirname(lib)
        if d not in dirs:
            dirs.append(d)
print(":".join(dirs))
EOF
) || libs=""
if [ -n "$libs" ]; then
  export NSA_FLOW_CUDA_LIBS=$libs
  export LD_LIBRARY_PATH="$libs:$LD_LIBRARY_PATH"
  say "cuBLAS/cuSOLVER searched in the nvidia wheels' folders ($(echo "$libs" | tr ':' '\n' | wc -l) folders)"
else
  say "no nvidia-* Python wheels found: cuBLAS/cuSOLVER only from the loader's path"
fi
timeout 30 nvidia-smi -L > "$OUT/nvidia-smi.txt" 2>&1 || true

# 4. Parity and benchmarks of the device path.
timeout 360 "$NODE" bench/gpu-check.mjs > "$OUT/gpu-check.log" 2>&1
check=$?
cat "$OUT/gpu-check.log"
case $check in
  0) say "parity: $(tail -1 "$OUT/gpu-check.log")" ;;
  3) stop "$(head -1 "$OUT/gpu-check.log" | sed "s/^gpu-check: //")" 3 ;;
  124) stop "bench/gpu-check.mjs ran past its 360 s" ;;
  *) say "parity FAILED: $(tail -1 "$OUT/gpu-check.log") (exit $check)" ;;
esac

# 5. The PyTorch peer.
if timeout 150 python3 bench/gpu-peer.py > "$OUT/peer.json" 2> "$OUT/peer.log"; then
  say "PyTorch peer ran"
else
  say "the PyTorch peer failed (see peer.log)"
fi

# 6. The table: the device, the CPU of this machine and PyTorch, side by side.
OUT=$OUT timeout 30 "$NODE" --input-type=module - >> "$report" <<'EOF'
import { existsSync, readFileSync } from 'node:fs';
const out = process.env.OUT;
const check = JSON.parse(readFileSync(`${out}/gpu-check.json`, 'utf8'));
const peer = existsSync(`${out}/peer.json`) ? (() => { try { return JSON.parse(readFileSync(`${out}/peer.json`, 'utf8')); } catch { return {}; } })() : {};
const worst = Math.max(...check.parity.map((r) => r.error));
console.log(`\n## ${check.cuda.deviceName}\n\nParity: ${check.parity.filter((r) => r.ok).length}/${check.parity.length} within 1e-10, worst ${worst.toExponential(2)}.\n`);
console.log('| operation | shape | CPU ms | nsa-flow GPU ms | PyTorch GPU ms (copies / resident) | PyTorch ÷ nsa-flow |');
console.log('|---|---|---|---|---|---|');
for (const b of check.bench) {
  const polar = b.what.startsWith('retract');
  const t = (polar ? peer.polar : peer.nmfMu)?.find((x) => x.shape.join() === b.shape.join());
  const peerMs = t ? (polar ? t.copiesMs : t.iterationMs) : undefined;
  const peerText = t ? (polar ? `${t.copiesMs.toFixed(1)} / ${t.residentMs.toFixed(1)}` : `${t.iterationMs.toFixed(2)} (resident)`) : 'n/a';
  console.log(`| ${b.what} | ${b.shape.join('×')} | ${b.cpuMs.toFixed(1)} | ${b.cudaMs.toFixed(2)} | ${peerText} | ${peerMs ? (peerMs / b.cudaMs).toFixed(2) : 'n/a'} |`);
}
EOF
cat "$report"
[ "$check" -eq 0 ]
