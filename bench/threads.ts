// Thread scaling of every method at its large benchmark size (npm run bench:threads): wall time with
// 1, 2, 4, … threads up to the core count (setBlasThreads(T): BLAS and the solvers' own thread team,
// see docs/threads.md), speed-up over 1 thread and efficiency = speed-up / T. Each cell is the median
// of interleaved repeats (every thread count once per round), so a machine that gets busier during
// the run slows all columns alike; on a machine shared with other work the figures are still noisy.
//   explicit        nsaFlowExplicitSync, 100000×20 (soft polar, w = 0.5, hard non-negativity)
//   nsaFlow (spg)   nsaFlowSync, exact-gradient solver, 100000×20
//   nmf hals / mu   nmfSync 2000×1000, rank 20
//   stratifiedNmf   10 strata × 2000×1000, rank 20
//   ntf hals / mu   400×64×64, rank 40 (bench/stratified-ntf.ts's NTF size)
//   stratifiedNtf   40 strata × (10×64×64), strata rank 15, 40 topics (bench/stratified-ntf.ts's)
// Then the same for OpenBLAS alone on products of the methods' shapes: the ceiling of their scaling.
// NSA_FLOW_BENCH_REPEATS sets the rounds (default 3); NSA_FLOW_BENCH_THREADS a comma list of counts;
// `--only <text>` keeps the lines whose name contains the text (`--only nmf` for the NMF lines).
//
// --small: the small-job rule instead (lib/runtime.ts getSmallJobFlops, docs/threads.md "Small jobs"):
//   1. where a second thread starts to pay: the products every solver is made of (a data block n×m
//      times a factor, both ways, and the factor's Gram matrix) at rank 5 and 20 over data sizes from
//      2500 to 2.6·10⁶ values, each timed with 1 and 2 BLAS threads (best of many calls, both counts
//      interleaved: the best time is the one least disturbed by other work on the machine);
//   2. the cliff and its removal: the paper's Stratified-NMF run (4 strata × 100×100, rank 5, 'mu',
//      loss tracked every iteration) with getBlasThreads() threads while two child processes spin on
//      the cores: as before the rule (rule off: setSmallJobFlops(0); the BLAS form of the direct loss:
//      NSA_FLOW_SIMD=0), with each change alone, and now, interleaved.
// NSA_FLOW_BENCH_ITERATIONS shortens the paper's run (default 10 000).
import { spawn, type ChildProcess } from 'node:child_process';
import { availableParallelism } from 'node:os';

import {
  getBlasThreads,
  nmfSync,
  nsaFlowExplicitSync,
  nsaFlowSync,
  ntfSync,
  setBlasThreads,
  stratifiedNmfSync,
  stratifiedNtfSync,
  type Matrix,
  type Tensor,
} from '../lib/index.js';
import { native } from '../lib/native.js';
import { getSmallJobFlops, setSmallJobFlops } from '../lib/runtime.js';
import { fxMatrix, loadFixture } from '../test/helpers/shared.js';
import { fmt, lcgFill } from './common.js';

if (process.argv.includes('--small')) {
  await smallJobs();
  process.exit(0);
}

const cores = availableParallelism();
const limit = native().blasInfo().threadLimit;
const counts: number[] = process.env.NSA_FLOW_BENCH_THREADS
  ? process.env.NSA_FLOW_BENCH_THREADS.split(',').map(Number)
  : (() => {
      const c: number[] = [];
      for (let t = 1; t < Math.min(cores, limit); t *= 2) c.push(t);
      c.push(Math.min(cores, limit));
      return c;
    })();
const repeats = Number(process.env.NSA_FLOW_BENCH_REPEATS ?? 3);

const tall = (p: number, k: number, seed: number): Matrix => ({ rows: p, cols: k, data: lcgFill(p * k, seed, true) });
const Y0 = tall(100000, 20, 2);
const X0 = { ...tall(100000, 20, 1), data: tall(100000, 20, 1).data.map(Math.abs) };
const A: Matrix = { rows: 2000, cols: 1000, data: lcgFill(2000 * 1000, 99) };
const strataNmf: Matrix[] = Array.from({ length: 10 }, (_, s) => ({ rows: 2000, cols: 1000, data: lcgFill(2000 * 1000, s + 1) }));
const T3: Tensor = { shape: [400, 64, 64], data: lcgFill(400 * 64 * 64, 9) };
const strataNtf: Tensor[] = Array.from({ length: 40 }, (_, s) => ({ shape: [10, 64, 64], data: lcgFill(10 * 64 * 64, s + 1) }));

// Fixed iteration counts (no stopping rule), each run a fraction of a second to a few seconds.
const methods: Array<[string, () => unknown]> = [
  ['explicit 100000×20', () => nsaFlowExplicitSync(Y0, { X0, w: 0.5, retraction: 'softPolar', nonnegativity: 'hard', maxIterations: 20, tolerance: 0 })],
  ['nsaFlow spg 100000×20', () => nsaFlowSync(Y0, { X0, w: 0.5, maxIterations: 10, certificateTolerance: 0, plateauTolerance: 0 })],
  ['nmf hals 2000×1000 r20', () => nmfSync(A, 20, { solver: 'hals', maxIterations: 30, tolerance: 0, seed: 1 })],
  ['nmf mu 2000×1000 r20', () => nmfSync(A, 20, { solver: 'mu', maxIterations: 30, tolerance: 0, seed: 1 })],
  ['stratifiedNmf 10×2000×1000', () => stratifiedNmfSync(strataNmf, 20, { maxIterations: 5, tolerance: 0, seed: 1 })],
  ['ntf hals 400×64×64 r40', () => ntfSync(T3, 40, { solver: 'hals', maxIterations: 5, seed: 1 })],
  ['ntf mu 400×64×64 r40', () => ntfSync(T3, 40, { solver: 'mu', maxIterations: 5, seed: 1 })],
  ['stratifiedNtf 40×10×64×64', () => stratifiedNtfSync(strataNtf, 40, { strataRank: 15, maxIterations: 5, seed: 1 })],
];

// `--only <text>`: the methods (and products) whose name contains the text, for measuring one line.
const onlyAt = process.argv.indexOf('--only');
const only = onlyAt >= 0 ? process.argv[onlyAt + 1] : undefined;
const chosen = <T extends [string, unknown]>(rows: T[]): T[] => (only === undefined ? rows : rows.filter(([name]) => name.includes(only)));

function median(a: number[]): number {
  const s = [...a].sort((x, y) => x - y);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
}

const before = getBlasThreads();
console.log(`Thread scaling, ${cores} cores, median of ${repeats} interleaved rounds; cells: seconds (speed-up, efficiency = speed-up/threads)`);
console.log(['method'.padEnd(28), ...counts.map((t) => `${t} thr`.padStart(24))].join(''));
for (const [name, run] of chosen(methods)) {
  const seconds = new Map<number, number[]>(counts.map((t) => [t, []]));
  for (const t of counts) {
    setBlasThreads(t);
    run(); // warm-up: first-touch of the workspaces, OpenBLAS's thread pool
  }
  for (let r = 0; r < repeats; r++) {
    for (const t of r % 2 ? [...counts].reverse() : counts) {
      setBlasThreads(t);
      const t0 = process.hrtime.bigint();
      run();
      seconds.get(t)!.push(Number(process.hrtime.bigint() - t0) / 1e9);
    }
  }
  const one = median(seconds.get(counts[0]!)!) * counts[0]!;
  const cells = counts.map((t) => {
    const s = median(seconds.get(t)!);
    const speedup = one / s;
    return `${fmt(s)} (${fmt(speedup)}, ${fmt(speedup / t, 2)})`.padStart(24);
  });
  console.log([name.padEnd(28), ...cells].join(''));
}

// The limit, measured in the same run: OpenBLAS alone on products of the shapes these methods are made
// of (nmf's data products, NSA-Flow's Gram, a tensor's unfolding times a Khatri–Rao factor) and on a
// square product, at the same thread counts: a method whose time is mostly such products cannot scale
// better than they do. Cells: the best of 10 calls, median over the rounds.
const products: Array<[string, (reps: number) => number]> = [
  ['DGEMM 1000×1000·1000×1000', (reps) => native().bench.timeGemm(1000, 1000, 1000, reps)],
  ['DGEMM 2000×1000·1000×20', (reps) => native().bench.timeGemm(2000, 20, 1000, reps)],
  ['DGEMM 1000×2000·2000×20', (reps) => native().bench.timeGemm(1000, 20, 2000, reps)],
  ['DSYRK 100000×20', (reps) => native().bench.timeSyrk(100000, 20, reps)],
  ['DGEMM 400×4096·4096×40', (reps) => native().bench.timeGemm(400, 40, 4096, reps)],
];
console.log('OpenBLAS alone, the same thread counts (a ceiling for the methods above):');
for (const [name, time] of chosen(products)) {
  const seconds = new Map<number, number[]>(counts.map((t) => [t, []]));
  for (let r = 0; r < repeats; r++) {
    for (const t of r % 2 ? [...counts].reverse() : counts) {
      setBlasThreads(t);
      seconds.get(t)!.push(time(10));
    }
  }
  const one = median(seconds.get(counts[0]!)!) * counts[0]!;
  const cells = counts.map((t) => {
    const s = median(seconds.get(t)!);
    return `${fmt(s)} (${fmt(one / s)}, ${fmt(one / s / t, 2)})`.padStart(24);
  });
  console.log([name.padEnd(28), ...cells].join(''));
}
setBlasThreads(before);

// ---- --small ----------------------------------------------------------------------------------------

async function smallJobs(): Promise<void> {
  const before = getBlasThreads();
  const rounds = Number(process.env.NSA_FLOW_BENCH_REPEATS ?? 3);
  // Best seconds of one product with `threads` BLAS threads; calls repeated for about 20 ms per timing.
  const best = (threads: number, time: (reps: number) => number, flops: number): number => {
    setBlasThreads(threads);
    return time(Math.max(3, Math.min(1000, Math.round(2e8 / flops))));
  };
  console.log(`Where 2 BLAS threads start to pay, ${availableParallelism()} cores: best of ${rounds} interleaved rounds of repeated calls`);
  console.log('cells: 1-thread µs / 2-thread µs (speed-up); flops = 2·n·m·r, the rule\'s productFlops');
  console.log(['data n×m'.padEnd(12), 'r'.padStart(3), 'flops'.padStart(10), 'A·F (n×m·m×r)'.padStart(26), 'Fᵀ·A (r×n·n×m)'.padStart(26), 'FᵀF (SYRK n×r)'.padStart(26)].join(''));
  let threshold = Infinity;
  for (const r of [5, 20]) {
    for (const n of [50, 100, 200, 400, 600, 800, 1200, 1600]) {
      const m = n;
      const flops = 2 * n * m * r;
      const shapes: Array<(reps: number) => number> = [
        (reps) => native().bench.timeGemm(n, r, m, reps),
        (reps) => native().bench.timeGemm(r, m, n, reps),
        (reps) => native().bench.timeSyrk(n, r, reps),
      ];
      const cells = shapes.map((time) => {
        let one = Infinity;
        let two = Infinity;
        for (let k = 0; k < rounds; k++) {
          one = Math.min(one, best(1, time, flops));
          two = Math.min(two, best(2, time, flops));
        }
        return { one, two };
      });
      // A size pays when both data products (the bulk of every solver's iteration) gain ≥ 10 %.
      if (cells[0]!.one >= 1.1 * cells[0]!.two && cells[1]!.one >= 1.1 * cells[1]!.two) threshold = Math.min(threshold, flops);
      console.log(
        [`${n}×${m}`.padEnd(12), String(r).padStart(3), flops.toExponential(2).padStart(10),
          ...cells.map(({ one, two }) => `${fmt(one * 1e6)} / ${fmt(two * 1e6)} (${fmt(one / two)})`.padStart(26))].join(''),
      );
    }
  }
  console.log(`smallest size where 2 threads gained ≥ 10 % on both data products: ${threshold === Infinity ? 'none' : `${threshold.toExponential(2)} flops`} (the rule's threshold now: ${getSmallJobFlops().toExponential(2)})`);

  // 2. The cliff: the paper's run beside two spinning processes, rule off and on.
  const c = loadFixture('stratified_nmf.json').cases[2];
  const A = c.A.map(fxMatrix) as Matrix[];
  const init = { V: fxMatrix(c.init.V), W: c.init.W.map(fxMatrix), H: fxMatrix(c.init.H) };
  const iterations = Number(process.env.NSA_FLOW_BENCH_ITERATIONS ?? 10_000);
  const solve = () => stratifiedNmfSync(A, 5, { solver: 'mu', maxIterations: iterations, init });
  setBlasThreads(before);
  const burners: ChildProcess[] = [];
  for (let k = 0; k < 2; k++) burners.push(spawn(process.execPath, ['-e', 'for (;;) {}'], { stdio: 'ignore' }));
  const saved = getSmallJobFlops();
  const simd = process.env.NSA_FLOW_SIMD;
  // Before: the BLAS form of the direct loss (NSA_FLOW_SIMD=0; its DDOT over 4·10⁴ values is
  // threaded) without the rule, as this run was before the small-job rule; then each change alone.
  const variants: Array<[label: string, rule: boolean, fused: boolean]> = [
    [`before: rule off (${before} threads), BLAS-form loss`, false, false],
    ['rule on (1 thread), BLAS-form loss', true, false],
    [`rule off (${before} threads), fused loss`, false, true],
    ['now: rule on (1 thread), fused loss', true, true],
  ];
  const times = variants.map(() => ({ wall: [] as number[], cpu: [] as number[] }));
  try {
    await new Promise((resolve) => setTimeout(resolve, 500)); // the burners are spinning
    for (let k = 0; k < rounds; k++) {
      for (const v of k % 2 ? [3, 2, 1, 0] : [0, 1, 2, 3]) {
        const [, rule, fused] = variants[v]!;
        setSmallJobFlops(rule ? saved : 0);
        if (fused) {
          if (simd === undefined) delete process.env.NSA_FLOW_SIMD;
          else process.env.NSA_FLOW_SIMD = simd;
        } else {
          process.env.NSA_FLOW_SIMD = '0';
        }
        const c0 = process.cpuUsage();
        const t0 = process.hrtime.bigint();
        solve();
        const cpu = process.cpuUsage(c0);
        times[v]!.wall.push(Number(process.hrtime.bigint() - t0) / 1e9);
        times[v]!.cpu.push((cpu.user + cpu.system) / 1e6);
      }
    }
  } finally {
    setSmallJobFlops(saved);
    if (simd === undefined) delete process.env.NSA_FLOW_SIMD;
    else process.env.NSA_FLOW_SIMD = simd;
    for (const b of burners) b.kill();
  }
  console.log(`\nThe paper's Stratified-NMF run ('mu', ${iterations} iterations, loss tracked every iteration), getBlasThreads() = ${before}, beside 2 spinning processes; median of ${rounds} interleaved runs`);
  variants.forEach(([label], v) => {
    console.log(`  ${label.padEnd(44)} wall ${fmt(median(times[v]!.wall)).padStart(6)} s, process CPU ${fmt(median(times[v]!.cpu)).padStart(6)} s`);
  });
  setBlasThreads(before);
}
