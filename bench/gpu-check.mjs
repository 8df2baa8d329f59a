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

import { info, retract, setBlasThreads } from '../dist/index.js';
import { autoThreshold } from '../dist/cuda.js';

const out = process.env.OUT || '.';
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
for (const [p, k, seed] of [[200, 8, 1], [5000, 64, 2], [100_000, 32, 3], [1_000_000, 64, 4]]) {
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

// Benchmarks: the polar retraction at NSA-Flow's size, interleaved repeats, medians.
function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}
for (const [p, k] of [[1_000_000, 64], [200_000, 256]]) {
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

save();
const failed = report.parity.filter((r) => !r.ok).length;
console.log(`gpu-check: ${report.parity.length - failed} parity checks passed, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);
