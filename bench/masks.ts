// The cost of missing entries: seconds per iteration of a masked solve (10 % of the entries missing,
// drawn at random) over the unmasked solve of the same data, one BLAS thread. Goal ≤ 1.5× for dense
// data (docs/missing-values.md explains where the extra time goes).
//   npm run bench:masks [-- --quick] [-- --only ntf] [-- --repeats 9]
//   (--only: just the lines whose label contains it; --repeats: rounds per line, default 5)
// Timing: the process's CPU time per iteration from two run lengths (setup, init and the final loss
// cancel), as bench/stratified-nmf.ts; masked and unmasked alternate within each round. The times
// printed are the best of the rounds; the ratio is the median of the rounds' own ratios, with their
// range: on a loaded machine single runs vary by ±30 %, and a change of load between rounds then
// stays out of the ratio.
// NSA_FLOW_SIMD=0 measures the portable loops of the listed entries instead of the AVX + FMA ones.
import { nmfSync, ntfSync, setBlasThreads, stratifiedNmfSync, stratifiedNtfSync, type Matrix } from '../lib/index.js';
import { fmt, lcgFill } from './common.js';

const quick = process.argv.includes('--quick');
const onlyAt = process.argv.indexOf('--only');
const only = onlyAt >= 0 ? process.argv[onlyAt + 1] ?? '' : '';
const repeatsAt = process.argv.indexOf('--repeats');
const repeats = repeatsAt >= 0 ? Number(process.argv[repeatsAt + 1]) : 5;
if (!Number.isInteger(repeats) || repeats < 1) throw new RangeError(`Expected a whole number ≥ 1 after --repeats but received ${process.argv[repeatsAt + 1]}`);

function cpuSeconds(fn: () => unknown): number {
  const c0 = process.cpuUsage();
  fn();
  const c = process.cpuUsage(c0);
  return (c.user + c.system) / 1e6;
}

interface Pair {
  masked: number; // seconds per iteration, the best round
  plain: number;
  ratios: number[]; // masked over plain, per round, sorted
}

/**
 * Seconds per iteration of the masked and of the unmasked run: in each of `repeats` rounds the four
 * runs (masked and plain, long and short) are taken in turn, so that a change of the machine's load
 * between rounds does not enter that round's ratio.
 */
function perIterationPair(run: (withMask: boolean) => (iterations: number) => unknown, short: number, long: number): Pair {
  run(true)(short), run(false)(short);
  const masked: number[] = [], plain: number[] = [];
  for (let k = 0; k < repeats; k++) {
    const [ml, ms, pl, ps] = [[true, long], [true, short], [false, long], [false, short]].map(([withMask, iterations]) =>
      cpuSeconds(() => run(withMask as boolean)(iterations as number)),
    );
    masked.push((ml! - ms!) / (long - short));
    plain.push((pl! - ps!) / (long - short));
  }
  const ratios = masked.map((x, k) => x / plain[k]!).sort((a, b) => a - b);
  return { masked: Math.min(...masked), plain: Math.min(...plain), ratios };
}

/** A mask of `fraction` of n entries, drawn by the benchmarks' deterministic generator. */
function randomMask(n: number, fraction: number, seed: number): Uint8Array {
  const u = lcgFill(n, seed);
  return Uint8Array.from(u, (x) => (x < fraction ? 1 : 0));
}

/** Measures and prints one line, unless --only leaves it out. */
function measure(label: string, run: (withMask: boolean) => (iterations: number) => unknown, short: number, long: number): void {
  if (!label.includes(only)) return;
  line(label, perIterationPair(run, short, long));
}

function line(label: string, { masked, plain, ratios }: Pair): void {
  const ratio = ratios[Math.floor(ratios.length / 2)]!; // the median (the upper one of an even count)
  const range = `(${fmt(ratios[0]!)}–${fmt(ratios[ratios.length - 1]!)})`;
  console.log(
    `${label.padEnd(46)} ${fmt(plain * 1e3).padStart(8)} ms ${fmt(masked * 1e3).padStart(8)} ms ${fmt(ratio).padStart(6)}× ${range.padStart(13)}  ${ratio <= 1.5 ? 'goal ≤ 1.5× met' : 'over the 1.5× goal'}`,
  );
}

setBlasThreads(1);
const n = quick ? 500 : 2000, m = quick ? 250 : 1000, r = 20;
const [short, long] = quick ? [1, 4] : [2, 20];
console.log(`per iteration, ${n}×${m}, rank ${r}, 10 % missing, one thread: unmasked, masked (best of ${repeats} rounds), ratio (median of the rounds', their range)`);
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
  for (const solver of ['hals', 'mu'] as const) {
    const run = (withMask: boolean) => (iterations: number) =>
      stratifiedNmfSync(strata, r, { solver, maxIterations: iterations, lossEvery: 1 << 30, seed: 1, ...(withMask ? { mask: masks } : {}) });
    try {
      measure(`stratifiedNmf ${solver} (${S} strata)`, run, short, long);
    } catch (e) {
      console.log(`stratifiedNmf ${solver}: ${(e as Error).message}`);
    }
  }
}
{
  // Stratified-NTF: the same values as 4 strata of n/4 samples of shape d₁ × d₂ = m (m/25 × 25), strataRank 4.
  const S = 4, samples = n / S, dims = [m / 25, 25];
  const strata = Array.from({ length: S }, (_, s) => ({ shape: [samples, ...dims], data: A.data.slice(s * samples * m, (s + 1) * samples * m) }));
  const masks = strata.map((_, s) => mask.slice(s * samples * m, (s + 1) * samples * m));
  // HALS with its default masked update (the surrogate at 10 % missing) and with the exact one.
  for (const [solver, exact] of [['mu', false], ['hals', false], ['hals', true]] as const) {
    const run = (withMask: boolean) => (iterations: number) =>
      stratifiedNtfSync(strata, r, {
        strataRank: 4,
        solver,
        maxIterations: iterations,
        lossEvery: 1e8,
        seed: 1,
        ...(withMask ? { mask: masks, ...(exact ? { weightedHals: 'exact' as const } : {}) } : {}),
      });
    measure(`stratifiedNtf ${solver} (${S} strata of ${samples}×${dims.join('×')}${exact ? ', exact' : ''})`, run, short, long);
  }
}
{
  // ntf (non-negative CP): the same values as one 3-way tensor of n/10 × m/10 × 100 (200×100×100).
  // Each solver with its defaults: HALS's masked update is then the surrogate, which sweeps up to
  // innerSweeps times as the plain one does. The exact weighted update (weightedHals 'exact', the
  // default beyond 30 % of the entries missing or with weights above 1) is measured with one sweep
  // per mode on both sides, the update the earlier versions of this line measured.
  const shape = [n / 10, m / 10, 100];
  const T = { shape, data: A.data };
  const lines = [
    ['hals', {}, ''],
    ['hals', { weightedHals: 'exact', innerSweeps: 1 }, ", exact, 1 sweep"],
    ['mu', {}, ''],
  ] as const;
  for (const [solver, extra, label] of lines) {
    const run = (withMask: boolean) => (iterations: number) => {
      const { weightedHals, ...sweeps } = extra as { weightedHals?: 'exact'; innerSweeps?: number };
      return ntfSync(T, r, { solver, maxIterations: iterations, lossEvery: 1e8, seed: 1, ...sweeps, ...(withMask ? { mask, ...(weightedHals ? { weightedHals } : {}) } : {}) });
    };
    measure(`ntf ${solver} (${shape.join('×')}${label})`, run, short, long);
  }
}
