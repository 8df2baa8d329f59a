// The GPU half of bench/gpu-check.sh (docs/cuda.md), in plain JavaScript against dist/ (the GPU machine
// has a carried Node but no tsx). Writes $OUT/gpu-check.json and prints a summary:
//   parity   every device function against the CPU path at 1e-10 relative (float64): the fixture
//            inputs of test/fixtures/ortho.json.gz and random ones up to 10⁶ × 64; device 'auto' above
//            the threshold; an ill-conditioned input (the device refuses, the CPU's SVD runs).
//   bench    the device retraction at NSA-Flow's size (10⁶ × 64) beside the CPU's on this machine,
//            medians of interleaved repeats.
// Exit status: 0 all parity checks pass, 1 a parity check failed, 3 the CUDA path is not usable here.
import { readFileSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';

import { info, nmfSync, retract, setBlasThreads } from '../dist/index.js';
import { autoThreshold, resolveDevice } from '../dist/cuda.js';

const out = process.env.OUT || '.';
// NSA_FLOW_GPU_CHECK_QUICK=1 shrinks the benchmark sizes 100-fold: for trying this script out without a
// GPU, against a stand-in addon named by NSA_FLOW_CUDA_ADDON. Never set by gpu-check.sh.
const quick = process.env.NSA_FLOW_GPU_CHECK_QUICK === '1';
const tolerance = 1e-10;
const report = { cuda: info().cuda, node: process.version, cpuThreads: undefined, parity: [], bench: [] };

function save() {
  writeFileSync(join(out, 'gpu-check.json'), JSON.stringify(report, null, 2));
}

if (!report.cuda.usable) {
  console.log(`gpu-check: the CUDA path is not usable: ${report.cuda.reason}`);
  save();
  process.exit(3);
}
console.log(`gpu-check: ${report.cuda.deviceName}, ${(report.cuda.memoryBytes / 2 ** 30).toFixed(1)} GiB`);
// The CPU figures use every core of this machine (the "16 cores"), never more threads than cores.
report.cpuThreads = setBlasThreads(availableParallelism());

function relativeError(a, b) {
  let diff = 0;
  let ref = 0;
  for (let i = 0; i < b.length; i++) {
    diff = Math.max(diff, Math.abs(a[i] - b[i]));
    ref = Math.max(ref, Math.abs(b[i]));
  }
  return diff / Math.max(ref, 1e-300);
}

function uniform(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function randomMatrix(rows, cols, seed, offset = -0.5) {
  const u = uniform(seed);
  const data = new Float64Array(rows * cols);
  for (let i = 0; i < data.length; i++) data[i] = u() + offset;
  return { rows, cols, data };
}

function check(name, Y, options) {
  const cpu = retract(Y, { ...options, device: 'cpu' });
  const gpu = retract(Y, { ...options, device: 'cuda' });
  const error = relativeError(gpu.data, cpu.data);
  const ok = error <= tolerance;
  report.parity.push({ name, shape: [Y.rows, Y.cols], options, error, ok });
  console.log(`parity ${ok ? 'ok  ' : 'FAIL'} ${name} ${Y.rows}×${Y.cols} ${JSON.stringify(options)}: ${error.toExponential(2)}`);
}

// Fixture inputs (the reference's test matrices), every polar entry with w > 0.
const fixture = JSON.parse(gunzipSync(readFileSync(new URL('../test/fixtures/ortho.json.gz', import.meta.url))).toString('utf8'));
const types = { polar: 'polar', soft_polar: 'softPolar' };
for (const c of fixture.cases.filter((c) => c.Y.shape.length === 2 && c.Y.shape[0] >= c.Y.shape[1])) {
  const Y = { rows: c.Y.shape[0], cols: c.Y.shape[1], data: Float64Array.from(c.Y.data, Number) };
  if (!Y.data.every(Number.isFinite)) continue;
  for (const r of c.retractions.filter((r) => types[r.retraction_type] && r.w_retract !== 0 && !r.implementation_defined)) {
    // polarMethod 'auto' only: a forced 'gram' on the fixtures' rank-deficient inputs hinges on the sign of
    // a rounding-level eigenvalue, which LAPACK and cuSOLVER may decide differently.
    check(`fixture ${c.name}`, Y, { type: types[r.retraction_type], w: r.w_retract });
  }
}

// Random inputs, small to NSA-Flow's size.
for (const [p, k, seed] of quick ? [[200, 8, 1], [5000, 64, 2]] : [[200, 8, 1], [5000, 64, 2], [100_000, 32, 3], [1_000_000, 64, 4]]) {
  const Y = randomMatrix(p, k, seed);
  check('random', Y, { type: 'polar' });
  check('random', Y, { type: 'softPolar', w: 0.3 });
  check('random', Y, { type: 'softPolar', w: 0.8, polarMethod: 'gram' });
}

// Ill-conditioned YᵀY (λmax/λmin ≈ 1e6 > 1e4): under 'auto' the device refuses and the CPU's SVD runs.
{
  const Y = randomMatrix(3000, 6, 5);
  for (let i = 0; i < Y.rows; i++) Y.data[i * 6 + 5] *= 1e-3;
  check('ill-conditioned', Y, { type: 'polar' });
}

// device 'auto' above the threshold takes the GPU: same result as 'cuda' bit for bit.
{
  const Y = randomMatrix(autoThreshold / 64, 64, 6);
  const auto = retract(Y, { type: 'polar', device: 'auto' });
  const gpu = retract(Y, { type: 'polar', device: 'cuda' });
  const same = auto.data.every((x, i) => Object.is(x, gpu.data[i]));
  report.parity.push({ name: "auto = cuda above the threshold", shape: [Y.rows, Y.cols], error: same ? 0 : 1, ok: same });
  console.log(`parity ${same ? 'ok  ' : 'FAIL'} device 'auto' at ${Y.rows}×${Y.cols} is the GPU result`);
}

// The device MU iterations (the building block of the device NMF) against nmfSync's, 10 iterations with
// no stop rule, from the same given factors.
const { binding } = resolveDevice('cuda', 'gpu-check', 0);
const muOptions = (iterations, W, H) => ({ solver: 'mu', maxIterations: iterations, init: { W, H }, epsilon: 1e-10, tolerance: 0, certificateTolerance: 0 });
for (const [n, m, r, seed] of [[300, 200, 5, 11], [4000, 3000, 40, 12]]) {
  const A = randomMatrix(n, m, seed, 0);
  const W = randomMatrix(n, r, seed + 1, 0.1);
  const H = randomMatrix(r, m, seed + 2, 0.1);
  const cpu = nmfSync(A, r, muOptions(10, W, H));
  const gpu = binding.nmfMuIterations(A.data, W.data, H.data, n, m, r, 1e-10, 10);
  const error = Math.max(relativeError(gpu.W, cpu.W.data), relativeError(gpu.H, cpu.H.data));
  const ok = error <= tolerance;
  report.parity.push({ name: 'nmfMuIterations (10) vs nmfSync mu', shape: [n, m, r], error, ok });
  console.log(`parity ${ok ? 'ok  ' : 'FAIL'} nmfMuIterations 10 × ${n}×${m} rank ${r}: ${error.toExponential(2)}`);
}

// nmfSync's device solve against the CPU's: factors and loss trace to 1e-10, the same iterations and stop.
for (const [n, m, r, o] of [
  [300, 200, 5, { solver: 'mu', maxIterations: 50, seed: 1 }],
  [2000, 1500, 20, { solver: 'mu', maxIterations: 400, tolerance: 1e-4, lossEvery: 5, init: 'nndsvd' }],  // stops on the plateau rule
  [5000, 3000, 40, { solver: 'mu', maxIterations: 30, restarts: 2, seed: 2 }],
]) {
  const A = randomMatrix(n, m, n + r, 0);
  const cpu = nmfSync(A, r, o);
  const gpu = nmfSync(A, r, { ...o, device: 'cuda' });
  const error = Math.max(relativeError(gpu.W.data, cpu.W.data), relativeError(gpu.H.data, cpu.H.data), relativeError(gpu.traces.loss, cpu.traces.loss));
  const ok = error <= tolerance && gpu.iterations === cpu.iterations && gpu.stopReason === cpu.stopReason;
  report.parity.push({ name: 'nmfSync mu', shape: [n, m, r], options: o, error, iterations: [cpu.iterations, gpu.iterations], stop: [cpu.stopReason, gpu.stopReason], ok });
  console.log(`parity ${ok ? 'ok  ' : 'FAIL'} nmfSync ${n}×${m} rank ${r} ${JSON.stringify(o)}: ${error.toExponential(2)}, ${gpu.iterations} iterations (CPU ${cpu.iterations}), ${gpu.stopReason} (CPU ${cpu.stopReason})`);
}

// Benchmarks: the polar retraction at NSA-Flow's size, interleaved repeats, medians.
function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}
for (const [p, k] of quick ? [[10_000, 64], [2000, 256]] : [[1_000_000, 64], [200_000, 256]]) {
  const Y = randomMatrix(p, k, 7);
  const times = { cpu: [], cuda: [] };
  retract(Y, { type: 'polar', device: 'cuda' });  // warm-up: context, handles, first allocations
  for (let rep = 0; rep < 5; rep++) {
    for (const device of ['cpu', 'cuda']) {
      const t = performance.now();
      retract(Y, { type: 'polar', device });
      times[device].push(performance.now() - t);
    }
  }
  const row = { what: 'retract polar (one call, host↔device copies included)', shape: [p, k], cpuMs: median(times.cpu), cudaMs: median(times.cuda) };
  report.bench.push(row);
  console.log(`bench ${row.what} ${p}×${k}: CPU ${row.cpuMs.toFixed(1)} ms (${report.cpuThreads} BLAS threads), GPU ${row.cudaMs.toFixed(1)} ms`);
}

// One MU iteration at 20000 × 10000, rank 50 (one stratum of the Stratified-NMF size): the
// device loop's time per iteration, the CPU's from nmfSync's time at 6 minus 1 iterations (so the
// initialization and the final loss and certificate cancel).
{
  const [n, m, r] = quick ? [2000, 1000, 50] : [20_000, 10_000, 50];
  const A = randomMatrix(n, m, 13, 0);
  const W = randomMatrix(n, r, 14, 0.1);
  const H = randomMatrix(r, m, 15, 0.1);
  const timed = (iterations) => {
    const t = performance.now();
    nmfSync(A, r, muOptions(iterations, W, H));
    return performance.now() - t;
  };
  const cpuMs = (median([timed(6), timed(6), timed(6)]) - median([timed(1), timed(1), timed(1)])) / 5;
  binding.nmfMuIterations(A.data, W.data, H.data, n, m, r, 1e-10, 1);  // warm-up
  const cudaMs = binding.nmfMuIterations(A.data, W.data, H.data, n, m, r, 1e-10, 20).deviceMs / 20;
  const row = { what: 'NMF MU iteration (device loop, A resident)', shape: [n, m, r], cpuMs, cudaMs };
  report.bench.push(row);
  console.log(`bench ${row.what} ${n}×${m} rank ${r}: CPU ${cpuMs.toFixed(1)} ms, GPU ${cudaMs.toFixed(2)} ms`);
}

save();
const failed = report.parity.filter((r) => !r.ok).length;
console.log(`gpu-check: ${report.parity.length - failed} parity checks passed, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);
