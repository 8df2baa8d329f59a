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
// NSA_FLOW_BENCH_REPEATS sets the rounds (default 3); NSA_FLOW_BENCH_THREADS a comma list of counts.
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
import { fmt, lcgFill } from './common.js';

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

const median = (a: number[]): number => {
  const s = [...a].sort((x, y) => x - y);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

const before = getBlasThreads();
console.log(`Thread scaling, ${cores} cores, median of ${repeats} interleaved rounds; cells: seconds (speed-up, efficiency = speed-up/threads)`);
console.log(['method'.padEnd(28), ...counts.map((t) => `${t} thr`.padStart(24))].join(''));
for (const [name, run] of methods) {
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
setBlasThreads(before);
