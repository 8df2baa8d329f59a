// Stratified-NTF on real images: the digits (data/digits: 1797 × 8 × 8, one stratum per digit), against
// plain non-negative CP (NTF, MU and HALS) at a comparable parameter budget, and Stratified-NMF on the
// flattened images (N × Πd, the same strata) at the rank closest to the Stratified-NTF budget. Prints a
// markdown table of relative reconstruction error, parameter count and time.
//   npx tsx examples/image-strata.ts [--iterations 500]
import { resolve } from 'node:path';

import {
  ntfSync,
  readLabels,
  readNpy,
  setBlasThreads,
  stratifiedNmfSync,
  stratifiedNtfSync,
  tensorNorm,
  type Matrix,
  type Tensor,
} from '../lib/index.js';

const dataDir = resolve(import.meta.dirname, '..', 'data');

/** Splits the samples (first mode) of T by label, in increasing label order: one stratum per label. */
function strataByLabel(T: Tensor, labels: readonly number[]): Tensor[] {
  const rest = T.shape.slice(1);
  const size = rest.reduce((a, b) => a * b, 1);
  return [...new Set(labels)]
    .sort((a, b) => a - b)
    .map((label) => {
      const rows = labels.flatMap((l, i) => (l === label ? [i] : []));
      const data = new Float64Array(rows.length * size);
      rows.forEach((row, k) => data.set(T.data.subarray(row * size, (row + 1) * size), k * size));
      return { shape: [rows.length, ...rest], data };
    });
}

/** A stratum's images as an nₛ × Πd matrix (C order: the same data, no copy). */
const flatten = (t: Tensor): Matrix => ({ rows: t.shape[0]!, cols: t.data.length / t.shape[0]!, data: t.data });

setBlasThreads(1);

interface DataSet {
  name: string;
  images: string;
  labels: string;
  budgets: { strataRank: number; rank: number; ntfRank: number }[];
}

const sets: DataSet[] = [
  {
    name: 'digits',
    images: 'digits/digits_images.npy.gz',
    labels: 'digits/digits_labels.csv',
    budgets: [
      { strataRank: 1, rank: 4, ntfRank: 4 },
      { strataRank: 2, rank: 10, ntfRank: 10 },
    ],
  },
];

const flag = process.argv.indexOf('--iterations');
const iterations = flag >= 0 ? Number(process.argv[flag + 1]) : 500;
console.log(`| data | method | ranks | parameters | relative error ‖A − B‖/‖A‖ | seconds |`);
console.log(`|---|---|---|---|---|---|`);
for (const set of sets) {
  const T = readNpy(resolve(dataDir, set.images));
  const strata = strataByLabel(T, readLabels(resolve(dataDir, set.labels), 'label').map(Number));
  const norm = tensorNorm(T);
  const [N, ...dims] = T.shape as [number, ...number[]];
  const dimSum = dims.reduce((a, b) => a + b, 0);
  const pixels = dims.reduce((a, b) => a * b, 1);
  const S = strata.length;
  for (const b of set.budgets) {
    const t0 = performance.now();
    const s = stratifiedNtfSync(strata, b.rank, { strataRank: b.strataRank, maxIterations: iterations, seed: 1 });
    const t1 = performance.now();
    const sParams = S * b.strataRank * dimSum + b.rank * N + b.rank * dimSum;
    console.log(`| ${set.name} (${S} strata) | Stratified-NTF | q=${b.strataRank}, r=${b.rank} | ${sParams} | ${(s.loss / norm).toFixed(4)} | ${((t1 - t0) / 1e3).toFixed(2)} |`);
    for (const solver of ['mu', 'hals'] as const) {
      const u0 = performance.now();
      const n = ntfSync(T, b.ntfRank, { solver, maxIterations: iterations, seed: 1 });
      const u1 = performance.now();
      const nParams = b.ntfRank * (N + dimSum);
      console.log(`| ${set.name} | NTF (${solver.toUpperCase()}) | r=${b.ntfRank} | ${nParams} | ${(n.loss / norm).toFixed(4)} | ${((u1 - u0) / 1e3).toFixed(2)} |`);
    }
    // Stratified-NMF on the flattened images: S·pixels (v) + r·N (W) + r·pixels (H) parameters.
    // Its normalizedLoss is loss/√(Σₛ‖A(s)‖²) = loss/‖A‖, the same relative error as the rows above.
    const nmfRank = Math.max(1, Math.round((sParams - S * pixels) / (N + pixels)));
    const m0 = performance.now();
    const m = stratifiedNmfSync(strata.map(flatten), nmfRank, { maxIterations: iterations, seed: 1 });
    const m1 = performance.now();
    const nmfParams = S * pixels + nmfRank * (N + pixels);
    console.log(`| ${set.name} | Stratified-NMF (flattened) | r=${nmfRank} | ${nmfParams} | ${m.normalizedLoss.toFixed(4)} | ${((m1 - m0) / 1e3).toFixed(2)} |`);
  }
}
