// Tall-skinny NSA-Flow against its floor, one thread (npm run bench:nsa-flow-floor). The floor of one
// energy evaluation, measured in this run: one DSYRK (YᵀY of the p×k iterate) plus one memory pass
// over p×k (a copy). Per iteration, for both solvers at 100000×20 and 10000×20:
//   explicit  nsaFlowExplicitSync (soft polar, w = 0.5, hard non-negativity, 'energy' weighting)
//   spg       the exact-gradient solver nsaFlow's default: certified SPG on E_w over Y ≥ 0 (its runner,
//             which also counts the energy evaluations)
// it prints ms/iteration, energy evaluations per iteration, and the ratios time/floor per iteration
// and per evaluation. Times are medians of interleaved repeats (the floor is measured between the
// solver runs), so a busy machine slows floor and solver alike; still, on a shared machine, only the
// ratios mean something. The floor's DSYRK and copy are timed singly, as many as the runs' iterations.
// Both wall time and CPU time are reported: on a machine shared with other work the process's CPU time
// (one thread: BLAS and the solvers' team at 1) is the figure that other load does not inflate. The
// floor's CPU time is the difference between a call timing n + 1 kernels and one timing 1, so that the
// operands' allocation and fill cancel. NSA_FLOW_BENCH_REPEATS sets the repeats (default 7);
// NSA_FLOW_ADDON (lib/native.ts) loads another build, to compare two builds in alternating runs.
import { nsaFlowExplicitSync, setBlasThreads, type Matrix } from '../lib/index.js';
import { certifiedOptionSpecs, runCertifiedSync } from '../lib/nsa-flow/certified.js';
import { copySeconds, dsyrkSeconds, fmt, lcgFill } from './common.js';

setBlasThreads(1);
const repeats = Number(process.env.NSA_FLOW_BENCH_REPEATS ?? 7);
const sizes: Array<[number, number, number]> = [
  [100000, 20, 40], // p, k, iterations
  [10000, 20, 200],
];

const median = (a: number[]): number => {
  const s = [...a].sort((x, y) => x - y);
  return s[Math.floor(s.length / 2)]!;
};

interface Timing {
  secondsPerIteration: number;
  cpuSecondsPerIteration: number;
  evaluationsPerIteration: number;
}

const cpuSeconds = (): number => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
};

function explicit(Y0: Matrix, X0: Matrix, iterations: number): Timing {
  const c0 = cpuSeconds();
  const t0 = process.hrtime.bigint();
  const r = nsaFlowExplicitSync(Y0, { X0, w: 0.5, retraction: 'softPolar', nonnegativity: 'hard', maxIterations: iterations, tolerance: 0 });
  const s = Number(process.hrtime.bigint() - t0) / 1e9;
  const c = cpuSeconds() - c0;
  let backtracks = 0;
  for (const b of r.traces.backtracks) backtracks += b;
  return {
    secondsPerIteration: s / r.iterations,
    cpuSecondsPerIteration: c / r.iterations,
    evaluationsPerIteration: 1 + backtracks / r.iterations,
  };
}

const defaults = {
  orthogonality: certifiedOptionSpecs.orthogonality.default,
  nonnegative: true,
  memory: certifiedOptionSpecs.memory.default,
  overlapPenalty: certifiedOptionSpecs.overlapPenalty.default,
  anchor: certifiedOptionSpecs.anchor.default,
  recordEvery: 1,
} as const;

function spg(Y0: Matrix, X0: Matrix, iterations: number): Timing {
  const c0 = cpuSeconds();
  const t0 = process.hrtime.bigint();
  const r = runCertifiedSync(
    { mode: 'target', Y0, X0 },
    { ...defaults, w: 0.5, solver: 'spg', tolerance: 0, plateauTolerance: 0, maxIterations: iterations },
  );
  const s = Number(process.hrtime.bigint() - t0) / 1e9;
  const c = cpuSeconds() - c0;
  return {
    secondsPerIteration: s / r.iterations,
    cpuSecondsPerIteration: c / r.iterations,
    evaluationsPerIteration: r.evaluations / r.iterations,
  };
}

// CPU seconds of n DSYRK + copy pairs: a call timing n + 1 kernels less one timing 1 (same operands).
function floorCpuSeconds(p: number, k: number, n: number): number {
  const c0 = cpuSeconds();
  dsyrkSeconds(p, k, n + 1);
  copySeconds(p * k, n + 1);
  const c1 = cpuSeconds();
  dsyrkSeconds(p, k, 1);
  copySeconds(p * k, 1);
  const c2 = cpuSeconds();
  return c1 - c0 - (c2 - c1);
}

console.log(`NSA-Flow per iteration against the floor (DSYRK of p×k + one copy of p×k), 1 thread, median of ${repeats} interleaved repeats`);
console.log('                              wall time                                    CPU time');
console.log('size        solver    evals/iter  ms/iter  floor ms  ×floor/iter  ×floor/eval  ms/iter  floor ms  ×floor/iter  ×floor/eval');
for (const [p, k, iterations] of sizes) {
  const Y0: Matrix = { rows: p, cols: k, data: lcgFill(p * k, 2, true).map(Math.abs) };
  const X0: Matrix = { rows: p, cols: k, data: lcgFill(p * k, 1, true).map(Math.abs) };
  const floors: number[] = [];
  const cpuFloors: number[] = [];
  const runs: Record<'explicit' | 'spg', Timing[]> = { explicit: [], spg: [] };
  explicit(Y0, X0, 2); // warm-up
  spg(Y0, X0, 2);
  for (let i = 0; i < repeats; i++) {
    // As many single DSYRK + copy pairs as a solver run makes iterations, timed one by one, so that the
    // floor sees the same load as the runs beside it (a best-of-n would pick the quiet moments only).
    let floor = 0;
    for (let j = 0; j < iterations; j++) floor += dsyrkSeconds(p, k, 1) + copySeconds(p * k, 1);
    floors.push(floor / iterations);
    cpuFloors.push(floorCpuSeconds(p, k, iterations) / iterations);
    runs.explicit.push(explicit(Y0, X0, iterations));
    runs.spg.push(spg(Y0, X0, iterations));
  }
  const floor = median(floors);
  const cpuFloor = median(cpuFloors);
  for (const solver of ['explicit', 'spg'] as const) {
    const s = median(runs[solver].map((r) => r.secondsPerIteration));
    const c = median(runs[solver].map((r) => r.cpuSecondsPerIteration));
    const evals = median(runs[solver].map((r) => r.evaluationsPerIteration));
    const cols = (t: number, f: number): string =>
      `${fmt(t * 1e3).padStart(7)}  ${fmt(f * 1e3).padStart(8)}  ${fmt(t / f).padStart(11)}  ${fmt(t / evals / f).padStart(11)}`;
    console.log(`${`${p}x${k}`.padEnd(11)} ${solver.padEnd(8)}  ${fmt(evals).padStart(10)}  ${cols(s, floor)}  ${cols(c, cpuFloor)}`);
  }
}
