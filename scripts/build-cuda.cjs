#!/usr/bin/env node
// `npm run build:cuda`: builds the optional CUDA addon, build/cuda/nsa_flow_cuda.node (docs/cuda.md),
// separately from the CPU addon, which never links it. Without nvcc it says so in one line and exits 0:
// the package works without the CUDA path. With nvcc it compiles native/cuda/device.cu for the GPU
// (NSA_FLOW_CUDA_ARCH, default 90 = H100/H200, plus its PTX for newer GPUs), native/cuda/binding.cpp
// with the host compiler, and links the CUDA runtime statically (nvcc -cudart static: libcudart_static.a): the addon then
// needs only the NVIDIA driver at run time, and loads cuBLAS/cuSOLVER itself with dlopen.
//
// Where to find things (each optional):
//   NVCC                     the nvcc to use (else PATH, else /usr/local/cuda/bin/nvcc)
//   NSA_FLOW_CUDA_ARCH       compute capabilities, comma-separated (default "90")
//   NSA_FLOW_NODE_INCLUDE    Node's C headers (node_api.h; default: the running Node's include/node)
//   NSA_FLOW_ADDON_API_INCLUDE  node-addon-api's headers (default: the installed package)
//   CXX                      the host C++ compiler (default c++)
'use strict';
const { execFileSync } = require('node:child_process');
const { existsSync, mkdirSync } = require('node:fs');
const { delimiter, dirname, join, resolve } = require('node:path');

const root = resolve(__dirname, '..');
const out = join(root, 'build', 'cuda');

function findNvcc() {
  if (process.env.NVCC) return existsSync(process.env.NVCC) ? process.env.NVCC : undefined;
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (dir && existsSync(join(dir, 'nvcc'))) return join(dir, 'nvcc');
  }
  return existsSync('/usr/local/cuda/bin/nvcc') ? '/usr/local/cuda/bin/nvcc' : undefined;
}

function fail(message) {
  process.stderr.write(`build:cuda: ${message}\n`);
  process.exit(1);
}

function run(cmd, args) {
  process.stdout.write(`build:cuda: ${[cmd, ...args].join(' ')}\n`);
  execFileSync(cmd, args, { stdio: 'inherit', cwd: root });
}

const nvcc = findNvcc();
if (!nvcc && process.env.NVCC) fail(`NVCC names ${process.env.NVCC}, which does not exist`);
if (!nvcc) {
  process.stdout.write('build:cuda: nvcc not found; the optional CUDA addon is not built (the package runs on the CPU)\n');
  process.exit(0);
}

function nodeInclude() {
  if (process.env.NSA_FLOW_NODE_INCLUDE) return process.env.NSA_FLOW_NODE_INCLUDE;
  const { localNodedir } = require('./nodedir.cjs');
  const dir = localNodedir();
  if (dir !== undefined) return join(dir, 'include', 'node');
  return fail("Node's C headers were not found; set NSA_FLOW_NODE_INCLUDE to the folder holding node_api.h");
}

function addonApiInclude() {
  if (process.env.NSA_FLOW_ADDON_API_INCLUDE) return process.env.NSA_FLOW_ADDON_API_INCLUDE;
  try {
    return dirname(require.resolve('node-addon-api/package.json', { paths: [root] }));
  } catch {
    return fail("node-addon-api's headers were not found; set NSA_FLOW_ADDON_API_INCLUDE to the folder holding napi.h");
  }
}

const archs = (process.env.NSA_FLOW_CUDA_ARCH ?? '90').split(',').map((a) => a.trim()).filter(Boolean);
if (archs.length === 0 || archs.some((a) => !/^\d+$/.test(a))) fail(`NSA_FLOW_CUDA_ARCH must list compute capabilities such as "90" or "80,90"; got "${process.env.NSA_FLOW_CUDA_ARCH}"`);
const gencode = archs.flatMap((a) => ['-gencode', `arch=compute_${a},code=sm_${a}`]);
const newest = archs[archs.length - 1];
gencode.push('-gencode', `arch=compute_${newest},code=compute_${newest}`);  // PTX: newer GPUs JIT it

const cxx = process.env.CXX || 'c++';
mkdirSync(out, { recursive: true });
try {
  run(nvcc, ['-std=c++17', '-O2', '-Xcompiler', '-fPIC', ...gencode, '-c', 'native/cuda/device.cu', '-o', join(out, 'device.o')]);
  run(cxx, [
    '-std=c++17', '-O2', '-fPIC', '-Wall', '-Wextra', '-DNAPI_VERSION=8', '-DNAPI_CPP_EXCEPTIONS', '-DNODE_ADDON_API_DISABLE_DEPRECATED',
    '-isystem', nodeInclude(), '-isystem', addonApiInclude(),
    '-c', 'native/cuda/binding.cpp', '-o', join(out, 'binding.o'),
  ]);
  // nvcc links its own toolkit's static runtime (libcudart_static.a, with -ldl -lrt -lpthread).
  run(nvcc, ['-shared', '-cudart', 'static', '-o', join(out, 'nsa_flow_cuda.node'), join(out, 'binding.o'), join(out, 'device.o')]);
} catch (err) {
  fail(`the CUDA addon did not build (${err instanceof Error ? err.message : String(err)})`);
}
process.stdout.write(`build:cuda: built ${join('build', 'cuda', 'nsa_flow_cuda.node')}\n`);
