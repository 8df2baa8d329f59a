// The cost of missing entries: seconds per iteration of a masked solve (10 % of the entries missing,
// drawn at random) over the unmasked solve of the same data, one BLAS thread. Goal ≤ 1.5× for dense
// data (docs/missing-values.md explains where the extra time goes).
//   npm run bench:masks [-- --quick] [-- --only ntf]   (--only: just the lines whose label contains it)
// Timing: the process's CPU time per iteration from two run lengths (setup, init and the final loss
// cancel), as bench/stratified-nmf.ts; masked and unmasked alternate, best of five each (on a loaded
// machine single runs vary by ±30 %, and a change of load between the two would enter the ratio).
// NSA_FLOW_SIMD=0 measures the portable loops of the listed entries instead of the AVX + FMA ones.
import { nmfSync, ntfSync, setBlasThreads, stratifiedNmfSync, stratifiedNtfSync, type Matrix } from '../lib/index.js';
import { fmt, lcgFill } from './common.js';

const quick = process.argv.includes('--quick');
const onlyAt = process.argv.indexOf('--only');
const only = onlyAt >= 0 ? process.argv[onlyAt + 1] ?? '' : '';

function cpuSeconds(fn: () => unknown): number {
  const c0 = process.cpuUsage();
  fn();
  const c = process.cpuUsage(c0);
  return (c.user + c.system) / 1e6;
}

/**
 * Seconds per iteration of the masked and of the unmasked run, [masked, plain]: the two are measured
 * in alternation, five times each, and the best of each kept, so that a change of the machine's load
 * between them does not enter their ratio.
 */
function perIterationPair(run: (withMask: boolean) => (iterations: number) => unknown, short: number, long: number): [number, number] {
  // best[mode][length]: the best time of each of the four runs, taken in turn.
  const best = [[Infinity, Infinity], [Infinity, Infinity]];
  run(true)(short), run(false)(short);
  for (let k = 0; k < 5; k++)
    [true, false].forEach((withMask, i) =>
      [long, short].forEach((iterations, j) => (best[i]![j] = Math.min(best[i]![j]!, cpuSeconds(() => run(withMask)(iterations))))),
    );
  const perIteration = ([longRun, shortRun]: number[]) => (longRun! - shortRun!) / (long - short);
  return [perIteration(best[0]!), perIteration(best[1]!)];
}

/** A mask of `fraction` of n entries, drawn by the benchmarks' deterministic generator. */
function randomMask(n: number, fraction: number, seed: number): Uint8Array {
  const u = lcgFill(n, seed);
  return Uint8Array.from(u, (x) => (x < fraction ? 1 : 0));
}

/** Measures and prints one line, unless --only leaves it out. */
function measure(label: string, run: (withMask: boolean) => (iterations: number) => unknown, short: number, long: number): void {
  if (!label.includes(only)) return;
  line(label, ...perIterationPair(run, short, long));
}

function line(label: string, masked: number, plain: number): void {
  const ratio = masked / plain;
  console.log(
    `${label.padEnd(46)} ${fmt(plain * 1e3).padStart(8)} ms ${fmt(masked * 1e3).padStart(8)} ms ${fmt(ratio).padStart(6)}×  ${ratio <= 1.5 ? 'goal ≤ 1.5× met' : 'over the 1.5× goal'}`,
  );
}

setBlasThreads(1);
const n = quick ? 500 : 2000, m = quick ? 250 : 1000, r = 20;
const [short, long] = quick ? [1, 4] : [2, 20];
console.log(`per iteration, ${n}×${m}, rank ${r}, 10 % missing, one thread: unmasked, masked, ratio`);
const A: Matrix = { rows: n, cols: m, data: lcgFill(n * m, 1) };
const mask = randomMask(n * m, 0.1, 2);
for (const solver of ['hals', 'mu'] as const) {
  const run = (withMask: boolean) => (iterations: number) =>
    nmfSync(A, r, { solver, maxIterations: iterations, lossEvery: 1 << 30, seed: 1, ...(withMask ? { mask } : {}) });
  measure(`nmf ${solver}`, run, short, long);
}
{
  // Stratified-NMF: the same data as 4 strata of n/4 rows.
  const S = 4, rows = n / S;
  const strata: Matrix[] = Array.from({ length: S }, (_, s) => ({ rows, cols: m, data: A.data.slice(s * rows * m, (s + 1) * rows * m) }));
  const masks = strata.map((_, s) => mask.slice(s * rows * m, (s + 1) * rows * m));
  const run = (withMask: boolean) => (iterations: number) =>
    stratifiedNmfSync(strata, r, { maxIterations: iterations, lossEvery: 1 << 30, seed: 1, ...(withMask ? { mask: masks } : {}) });
  try {
    measure(`stratifiedNmf (${S} strata)`, run, short, long);
  } catch (e) {
    console.log(`stratifiedNmf: ${(e as Error).message}`);
  }
}
{
  // Stratified-NTF: the same values as 4 strata of n/4 samples of shape d₁ × d₂ = m (m/25 × 25), strataRank 4.
  const S = 4, samples = n / S, dims = [m / 25, 25];
  const strata = Array.from({ length: S }, (_, s) => ({ shape: [samples, ...dims], data: A.data.slice(s * samples * m, (s + 1) * samples * m) }));
  const masks = strata.map((_, s) => mask.slice(s * samples * m, (s + 1) * samples * m));
  const run = (withMask: boolean) => (iterations: number) =>
    stratifiedNtfSync(strata, r, { strataRank: 4, maxIterations: iterations, lossEvery: 1e8, seed: 1, ...(withMask ? { mask: masks } : {}) });
  measure(`stratifiedNtf (${S} strata of ${samples}×${dims.join('×')})`, run, short, long);
}
{
  // ntf (non-negative CP): the same values as one 3-way tensor of n/10 × m/10 × 100 (200×100×100).
  const shape = [n / 10, m / 10, 100];
  const T = { shape, data: A.data };
  for (const solver of ['hals', 'mu'] as const) {
    const run = (withMask: boolean) => (iterations: number) =>
      ntfSync(T, r, { solver, maxIterations: iterations, lossEvery: 1e8, seed: 1, ...(withMask ? { mask } : {}) });
    measure(`ntf ${solver} (${shape.join('×')})`, run, short, long);
  }
}
