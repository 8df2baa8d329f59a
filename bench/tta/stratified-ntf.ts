// Stratified-NTF time to accuracy (issue: reach the multiplicative updates' 200-iteration loss ≥ 5×
// sooner): for a synthetic and a real data set, the MU solver's loss after 200 iterations is the
// target; each solver's time to first reach it (wall time, one BLAS thread, loss recorded every
// iteration by both so that both pay the same) is read off its trace. Repeats are interleaved
// (MU, HALS, MU, HALS, …) and the medians printed with their ratio, so that load from other
// processes hits both alike.
//
// Run alone: npx tsx bench/tta/stratified-ntf.ts
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

/** Milliseconds (from the solve's start) and iterations to first reach `target`; null when not reached. */
function timeTo(c: Case, solver: StratifiedNtfSolver, target: number, maxIterations: number, seed: number) {
  const r = stratifiedNtfSync(c.strata, c.rank, { strataRank: c.strataRank, solver, maxIterations, seed });
  const k = r.traces.loss.findIndex((loss) => loss <= target);
  return k < 0 ? null : { ms: r.traces.timeMs[k]!, iterations: r.traces.iteration[k]! };
}

export async function run(): Promise<void> {
  setBlasThreads(1);
  const repeats = 3;
  const seeds = [1, 2, 3, 4];
  console.log("Stratified-NTF: time to the MU solver's 200-iteration loss (one BLAS thread, medians of interleaved repeats)");
  for (const c of [synthetic(), digits()]) {
    console.log(`\n${c.name}`);
    console.log('  seed  target (MU, 200 it.)  mu ms  hals ms (iterations)  mu/hals');
    const ratios: number[] = [];
    for (const seed of seeds) {
      const mu = stratifiedNtfSync(c.strata, c.rank, { strataRank: c.strataRank, solver: 'mu', maxIterations: 200, seed });
      const target = mu.loss;
      const times: Record<StratifiedNtfSolver, number[]> = { mu: [], hals: [] };
      let halsIterations = NaN;
      let missed = false;
      for (let k = 0; k < repeats && !missed; k++) {
        for (const solver of ['mu', 'hals'] as const) {
          const hit = timeTo(c, solver, target, solver === 'mu' ? 200 : 2000, seed);
          if (!hit) {
            missed = true;
            break;
          }
          times[solver].push(hit.ms);
          if (solver === 'hals') halsIterations = hit.iterations;
        }
      }
      if (missed) {
        // A local minimum above MU's: HALS ended in another basin from this seed.
        console.log(`  ${String(seed).padEnd(4)}  ${fmt(target, 6).padEnd(20)}  hals stops in a higher local minimum from this seed`);
        continue;
      }
      const [tm, th] = [median(times.mu), median(times.hals)];
      ratios.push(tm / th);
      console.log(`  ${String(seed).padEnd(4)}  ${fmt(target, 6).padEnd(20)}  ${fmt(tm).padStart(5)}  ${fmt(th).padStart(7)} (${halsIterations})${' '.repeat(12)}${fmt(tm / th)}×`);
    }
    if (ratios.length) console.log(`  median mu/hals over the seeds that reach it: ${fmt(median(ratios))}× (goal ≥ 5×)`);
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) await run();
