// NSA-Flow (exact-gradient mode) on the measured reference's problems: X0 = |randn(p,k)|,
// Y0 = randn(p,k), soft polar, w = 0.5, hard non-negativity, asgd, lr 1e-2, 100 iterations forced,
// one BLAS thread. Prints seconds per iteration (wall: median and best of the runs; CPU: best, which
// a loaded shared machine inflates least), the speed-up over the reference's figures (measured on
// this machine kind, idle, median of 3), and two limits measured in this run:
//  - floor: one DSYRK of YᵀY plus four streaming passes over p×k doubles (the floor);
//  - minimum: what this algorithm cannot go below on this machine: its BLAS-3 work per iteration at
//    the rates measured now for exactly those shapes — DSYRK ZᵀZ and YᵀY, GEMMs Z·M (retraction),
//    Y·A (energy gradient), gR·M1 and Z·A (backward), ZᵀgR (k×k×p) — plus two streaming passes
//    (the clipping norm needs all of ∇ before the step, so the step is a pass of its own).
import { nsaFlowSync, setBlasThreads } from '../lib/index.js';
import { copySeconds, dgemmSeconds, dsyrkSeconds, fmt, lcgFill } from './common.js';

setBlasThreads(1);
const iterations = 100;
const sizes: [number, number, number][] = [
  [10000, 20, 0.018],
  [100000, 20, 0.21],
  [5000, 100, 0.097],
];

/** Wall and CPU seconds of each of `repeats` runs after one warm-up. */
function timeRuns(repeats: number, fn: () => unknown): { wallMedian: number; wallBest: number; cpuBest: number } {
  fn();
  const wall: number[] = [];
  const cpu: number[] = [];
  for (let i = 0; i < repeats; i++) {
    const c0 = process.cpuUsage();
    const t0 = process.hrtime.bigint();
    fn();
    wall.push(Number(process.hrtime.bigint() - t0) / 1e9);
    const c = process.cpuUsage(c0);
    cpu.push((c.user + c.system) / 1e6);
  }
  wall.sort((a, b) => a - b);
  return { wallMedian: wall[Math.floor(wall.length / 2)]!, wallBest: wall[0]!, cpuBest: Math.min(...cpu) };
}

const loadavg = (await import('node:os')).loadavg();
console.log('NSA-Flow exact-gradient solver, soft polar, asgd, 100 iterations, 1 BLAS thread');
console.log(`load average ${loadavg.map((x) => x.toFixed(2)).join(' ')} on ${(await import('node:os')).cpus().length} cores`);
console.log(
  'size        wall med   wall best  cpu best   reference  speed-up (wall med / cpu)  floor      ×floor  minimum    ×min   minimum speed-up',
);
for (const [p, k, reference] of sizes) {
  const Y0 = { rows: p, cols: k, data: lcgFill(p * k, 7, true) };
  const X0 = { rows: p, cols: k, data: lcgFill(p * k, 11, true).map(Math.abs) };
  const run = () =>
    nsaFlowSync(Y0, {
      weighting: 'reference',
      X0,
      w: 0.5,
      retraction: 'softPolar',
      nonnegativity: 'hard',
      optimizer: 'asgd',
      learningRate: 1e-2,
      maxIterations: iterations,
      tolerance: -1e30,
    });
  const t = timeRuns(p * k > 1e6 ? 3 : 5, run);
  const [med, best, cpu] = [t.wallMedian, t.wallBest, t.cpuBest].map((s) => s / iterations) as [number, number, number];
  const copy = copySeconds(p * k);
  const syrk = dsyrkSeconds(p, k);
  const floor = syrk + 4 * copy;
  const minimum = 2 * syrk + 4 * dgemmSeconds(p, k, k) + dgemmSeconds(k, k, p) + 2 * copy;
  console.log(
    [
      `${p}×${k}`.padEnd(11),
      fmt(med).padEnd(10),
      fmt(best).padEnd(10),
      fmt(cpu).padEnd(10),
      fmt(reference).padEnd(10),
      `${fmt(reference / med)}× / ${fmt(reference / cpu)}×`.padEnd(26),
      fmt(floor).padEnd(10),
      fmt(cpu / floor).padEnd(7),
      fmt(minimum).padEnd(10),
      fmt(cpu / minimum).padEnd(6),
      `${fmt(reference / minimum)}×`,
    ].join(' '),
  );
}
