// Stratified-NTF time to accuracy (issue: reach the multiplicative updates' 200-iteration loss ≥ 5×
// sooner): for a synthetic and a real data set, the MU solver's loss after 200 iterations is the
// target; each solver's time to first reach it (wall time, one BLAS thread, loss recorded every
// iteration by both so that both pay the same) is read off its trace. Repeats are interleaved
// (MU, HALS, MU, HALS, …) and the medians printed with their ratio, so that load from other
// processes hits both alike.
//
// With --masked: 10 % of every stratum's entries hidden at random, and HALS with each weighted update
// (weightedHals 'exact' and 'surrogate') against the masked MU.
//
// Run alone: npx tsx bench/tta/stratified-ntf.ts [--masked]
import { pathToFileURL } from 'node:url';

import type { StratifiedNtfSolver } from '../../lib/factorization/stratified-ntf.js';
import { readLabels, readNpy, setBlasThreads, stratifiedNtfSync, type Tensor } from '../../lib/index.js';
import { dataFile } from '../../test/helpers/shared.js';
import { fmt, lcgFill } from '../common.js';

interface Case {
  name: string;
  strata: Tensor[];
  rank: number;
  strataRank: number;
}

/** 4 strata of 150 × 24 × 24 drawn from the model (strata rank 2, 6 topics) plus 1 % noise. */
function synthetic(): Case {
  const S = 4, n = 150, d = 24, q = 2, r = 6;
  let seed = 11;
  const u = (len: number) => lcgFill(len, seed++);
  const h = [u(r * d), u(r * d)];
  const strata = Array.from({ length: S }, () => {
    const v = [u(q * d), u(q * d)];
    const w = u(r * n);
    const noise = u(n * d * d);
    const data = new Float64Array(n * d * d);
    for (let i = 0; i < n; i++)
      for (let j = 0; j < d; j++)
        for (let k = 0; k < d; k++) {
          let x = 0;
          for (let a = 0; a < q; a++) x += v[0]![a * d + j]! * v[1]![a * d + k]!;
          for (let b = 0; b < r; b++) x += w[b * n + i]! * h[0]![b * d + j]! * h[1]![b * d + k]!;
          data[(i * d + j) * d + k] = x * (1 + 0.02 * (noise[(i * d + j) * d + k]! - 0.5));
        }
    return { shape: [n, d, d], data };
  });
  return { name: `synthetic: ${S} strata × (${n}×${d}×${d}), strata rank ${q}, ${r} topics, 1 % noise`, strata, rank: r, strataRank: q };
}

/** The digits images (1797 × 8 × 8), one stratum per digit, strata rank 3, 6 topics. */
function digits(): Case {
  const images = readNpy(dataFile('digits/digits_images.npy'));
  const labels = readLabels(dataFile('digits/digits_labels.csv'), 'label').map(Number);
  const strata = Array.from({ length: 10 }, (_, digit) => {
    const rows = labels.flatMap((l, i) => (l === digit ? [i] : []));
    const data = new Float64Array(rows.length * 64);
    rows.forEach((row, k) => data.set(images.data.subarray(row * 64, (row + 1) * 64), k * 64));
    return { shape: [rows.length, 8, 8], data };
  });
  return { name: 'digits: 10 strata (one per digit) × (~180×8×8), strata rank 3, 6 topics', strata, rank: 6, strataRank: 3 };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

type Variant = { label: string; solver: StratifiedNtfSolver; weightedHals?: 'exact' | 'surrogate' };

/** Milliseconds (from the solve's start) and iterations to first reach `target`; null when not reached. */
function timeTo(c: Case, v: Variant, target: number, maxIterations: number, seed: number, mask?: Uint8Array[]) {
  const r = stratifiedNtfSync(c.strata, c.rank, {
    strataRank: c.strataRank,
    solver: v.solver,
    maxIterations,
    seed,
    ...(mask ? { mask, ...(v.weightedHals ? { weightedHals: v.weightedHals } : {}) } : {}),
  });
  const k = r.traces.loss.findIndex((loss) => loss <= target);
  return k < 0 ? null : { ms: r.traces.timeMs[k]!, iterations: r.traces.iteration[k]! };
}

export async function run(masked = process.argv.includes('--masked')): Promise<void> {
  setBlasThreads(1);
  const repeats = 3;
  const seeds = [1, 2, 3, 4];
  const variants: Variant[] = masked
    ? [{ label: 'hals (exact)', solver: 'hals', weightedHals: 'exact' }, { label: 'hals (surrogate)', solver: 'hals', weightedHals: 'surrogate' }]
    : [{ label: 'hals', solver: 'hals' }];
  const mu: Variant = { label: 'mu', solver: 'mu' };
  console.log(`Stratified-NTF${masked ? ', 10 % of the entries missing' : ''}: time to the MU solver's 200-iteration loss (one BLAS thread, medians of interleaved repeats)`);
  for (const c of [synthetic(), digits()]) {
    const mask = masked ? c.strata.map((t, s) => Uint8Array.from(lcgFill(t.data.length, 90 + s), (x) => (x < 0.1 ? 1 : 0))) : undefined;
    console.log(`\n${c.name}`);
    console.log(`  seed  target (MU, 200 it.)  mu ms  ${variants.map((v) => `${v.label} ms (iterations)  mu/${v.label.split(' ')[0]}`).join('  ')}`);
    const ratios: number[][] = variants.map(() => []);
    for (const seed of seeds) {
      const target = stratifiedNtfSync(c.strata, c.rank, { strataRank: c.strataRank, solver: 'mu', maxIterations: 200, seed, ...(mask ? { mask } : {}) }).loss;
      const times = [mu, ...variants].map(() => [] as number[]);
      const iterations = variants.map(() => NaN);
      const missed = variants.map(() => false);
      for (let k = 0; k < repeats; k++)
        [mu, ...variants].forEach((v, j) => {
          if (j > 0 && missed[j - 1]) return;
          const hit = timeTo(c, v, target, v.solver === 'mu' ? 200 : 2000, seed, mask);
          if (!hit) missed[j - 1] = true;
          else (times[j]!.push(hit.ms), j > 0 && (iterations[j - 1] = hit.iterations));
        });
      const tm = median(times[0]!);
      const cells = variants.map((v, j) => {
        // A local minimum above MU's: HALS ended in another basin from this seed.
        if (missed[j]) return `${v.label} stops in a higher local minimum`;
        const th = median(times[j + 1]!);
        ratios[j]!.push(tm / th);
        return `${fmt(th).padStart(7)} (${iterations[j]})${' '.repeat(8)}${fmt(tm / th)}×`;
      });
      console.log(`  ${String(seed).padEnd(4)}  ${fmt(target, 6).padEnd(20)}  ${fmt(tm).padStart(5)}  ${cells.join('  ')}`);
    }
    variants.forEach((v, j) => ratios[j]!.length && console.log(`  median mu/${v.label} over the seeds that reach it: ${fmt(median(ratios[j]!))}× (goal ≥ 5×)`));
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) await run();
