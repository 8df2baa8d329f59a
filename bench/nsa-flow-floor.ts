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
// NSA_FLOW_BENCH_REPEATS sets the repeats (default 5).
import { nsaFlowExplicitSync, setBlasThreads, type Matrix } from '../lib/index.js';
import { certifiedOptionSpecs, runCertifiedSync } from '../lib/nsa-flow/certified.js';
import { copySeconds, dsyrkSeconds, fmt, lcgFill } from './common.js';

setBlasThreads(1);
const repeats = Number(process.env.NSA_FLOW_BENCH_REPEATS ?? 5);
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
  evaluationsPerIteration: number;
}

function explicit(Y0: Matrix, X0: Matrix, iterations: number): Timing {
  const t0 = process.hrtime.bigint();
  const r = nsaFlowExplicitSync(Y0, { X0, w: 0.5, retraction: 'softPolar', nonnegativity: 'hard', maxIterations: iterations, tolerance: 0 });
  const s = Number(process.hrtime.bigint() - t0) / 1e9;
  let backtracks = 0;
  for (const b of r.traces.backtracks) backtracks += b;
  return { secondsPerIteration: s / r.iterations, evaluationsPerIteration: 1 + backtracks / r.iterations };
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
  const t0 = process.hrtime.bigint();
  const r = runCertifiedSync(
    { mode: 'target', Y0, X0 },
    { ...defaults, w: 0.5, solver: 'spg', tolerance: 0, plateauTolerance: 0, maxIterations: iterations },
  );
  const s = Number(process.hrtime.bigint() - t0) / 1e9;
  return { secondsPerIteration: s / r.iterations, evaluationsPerIteration: r.evaluations / r.iterations };
}

console.log(`NSA-Flow per iteration against the floor (DSYRK of p×k + one copy of p×k), 1 thread, median of ${repeats} interleaved repeats`);
console.log('size        solver    ms/iter  evals/iter  floor ms  ×floor/iter  ×floor/eval');
for (const [p, k, iterations] of sizes) {
  const Y0: Matrix = { rows: p, cols: k, data: lcgFill(p * k, 2, true).map(Math.abs) };
  const X0: Matrix = { rows: p, cols: k, data: lcgFill(p * k, 1, true).map(Math.abs) };
  const floors: number[] = [];
  const runs: Record<'explicit' | 'spg', Timing[]> = { explicit: [], spg: [] };
  explicit(Y0, X0, 2); // warm-up
  spg(Y0, X0, 2);
  for (let i = 0; i < repeats; i++) {
    // As many single DSYRK + copy pairs as a solver run makes iterations, timed one by one, so that the
    // floor sees the same load as the runs beside it (a best-of-n would pick the quiet moments only).
    let floor = 0;
    for (let j = 0; j < iterations; j++) floor += dsyrkSeconds(p, k, 1) + copySeconds(p * k, 1);
    floors.push(floor / iterations);
    runs.explicit.push(explicit(Y0, X0, iterations));
    runs.spg.push(spg(Y0, X0, iterations));
  }
  const floor = median(floors);
  for (const solver of ['explicit', 'spg'] as const) {
    const s = median(runs[solver].map((r) => r.secondsPerIteration));
    const evals = median(runs[solver].map((r) => r.evaluationsPerIteration));
    console.log(
      `${`${p}x${k}`.padEnd(11)} ${solver.padEnd(8)} ${fmt(s * 1e3).padStart(8)}  ${fmt(evals).padStart(10)}  ${fmt(floor * 1e3).padStart(8)}  ${fmt(s / floor).padStart(11)}  ${fmt(s / evals / floor).padStart(11)}`,
    );
  }
}
