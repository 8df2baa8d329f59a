// Tall-skinny NSA-Flow against its floor, one thread (npm run bench:nsa-flow-floor). The floor of one
// energy evaluation, measured in this run: one DSYRK (YᵀY of the p×k iterate) plus one memory pass
// over p×k (a copy). Per iteration, for both solvers at 100000×20 and 10000×20:
//   explicit  nsaFlowExplicitSync (soft polar, w = 0.5, hard non-negativity, 'energy' weighting)
//   spg       the exact-gradient solver nsaFlow's default: certified SPG on E_w over Y ≥ 0 (its runner,
//             which also counts the energy evaluations)
// it prints ms/iteration, energy evaluations per iteration, and the ratios time/floor per iteration
// and per evaluation. An iteration's time is the difference between a run of n iterations and one of 2
// (same start, so the same first iterations), so that the per-call setup (input checks and copies,
// scaling, the final certificate and diagnostics, which cost about as much as 10–20 iterations at
// 100000×20) does not count as iteration time; the whole call per iteration is printed too. Times
// are medians of interleaved repeats (the floor is measured between the
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
  seconds: number;
  cpuSeconds: number;
  iterations: number;
  evaluations: number;
}

const cpuSeconds = (): number => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
};

function explicit(Y0: Matrix, X0: Matrix, iterations: number): Timing {
  const c0 = cpuSeconds();
  const t0 = process.hrtime.bigint();
  const r = nsaFlowExplicitSync(Y0, { X0, w: 0.5, retraction: 'softPolar', nonnegativity: 'hard', maxIterations: iterations, tolerance: 0 });
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  const cpu = cpuSeconds() - c0;
  let backtracks = 0;
  for (const b of r.traces.backtracks) backtracks += b;
  return { seconds, cpuSeconds: cpu, iterations: r.iterations, evaluations: r.iterations + backtracks };
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
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  return { seconds, cpuSeconds: cpuSeconds() - c0, iterations: r.iterations, evaluations: r.evaluations };
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
console.log('per iteration = (run of n iterations − run of 2) / (n − 2): the setup (validation, copies, scaling, the');
console.log('final certificate and diagnostics) cancels; "call" = the whole call of n iterations / n, setup included');
console.log('                                     wall time                    CPU time');
console.log('size        solver    evals/iter  ms/iter  ×floor/iter  ×floor/eval  ms/iter  ×floor/iter  ×floor/eval  call ms/iter  call ×floor');
for (const [p, k, iterations] of sizes) {
  const Y0: Matrix = { rows: p, cols: k, data: lcgFill(p * k, 2, true).map(Math.abs) };
  const X0: Matrix = { rows: p, cols: k, data: lcgFill(p * k, 1, true).map(Math.abs) };
  const floors: number[] = [];
  const cpuFloors: number[] = [];
  type Sample = { wall: number; cpu: number; evals: number; callCpu: number };
  const runs: Record<'explicit' | 'spg', Sample[]> = { explicit: [], spg: [] };
  const solvers = { explicit, spg } as const;
  explicit(Y0, X0, 2); // warm-up
  spg(Y0, X0, 2);
  for (let i = 0; i < repeats; i++) {
    // As many single DSYRK + copy pairs as a solver run makes iterations, timed one by one, so that the
    // floor sees the same load as the runs beside it (a best-of-n would pick the quiet moments only).
    let floor = 0;
    for (let j = 0; j < iterations; j++) floor += dsyrkSeconds(p, k, 1) + copySeconds(p * k, 1);
    floors.push(floor / iterations);
    cpuFloors.push(floorCpuSeconds(p, k, iterations) / iterations);
    for (const name of ['explicit', 'spg'] as const) {
      const long = solvers[name](Y0, X0, iterations);
      const short = solvers[name](Y0, X0, 2);
      const its = long.iterations - short.iterations;
      runs[name].push({
        wall: (long.seconds - short.seconds) / its,
        cpu: (long.cpuSeconds - short.cpuSeconds) / its,
        evals: (long.evaluations - short.evaluations) / its,
        callCpu: long.cpuSeconds / long.iterations,
      });
    }
  }
  const floor = median(floors);
  const cpuFloor = median(cpuFloors);
  console.log(`${`${p}x${k}`.padEnd(11)} floor     ${''.padStart(10)}  ${fmt(floor * 1e3).padStart(7)}  ${''.padStart(11)}  ${''.padStart(11)}  ${fmt(cpuFloor * 1e3).padStart(7)}`);
  for (const solver of ['explicit', 'spg'] as const) {
    const pick = (f: (r: Sample) => number): number => median(runs[solver].map(f));
    const [wall, cpu, evals, call] = [pick((r) => r.wall), pick((r) => r.cpu), pick((r) => r.evals), pick((r) => r.callCpu)];
    const ratios = (t: number, f: number): string => `${fmt(t * 1e3).padStart(7)}  ${fmt(t / f).padStart(11)}  ${fmt(t / evals / f).padStart(11)}`;
    console.log(
      `${`${p}x${k}`.padEnd(11)} ${solver.padEnd(8)}  ${fmt(evals).padStart(10)}  ${ratios(wall, floor)}  ${ratios(cpu, cpuFloor)}  ${fmt(call * 1e3).padStart(12)}  ${fmt(call / cpuFloor).padStart(11)}`,
    );
  }
}
