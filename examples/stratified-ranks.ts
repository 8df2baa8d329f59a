// Per-stratum ranks on the Austen corpus (data/text, one stratum per novel): does giving more topics
// to some novels fit better than the same number of topics for every novel? Compares a uniform rank
// with splits of the same topic budget Σrₛ chosen by a stated rule, at the same iterations and from
// the same seeds, and reports the fit per novel. docs/stratified-nmf.md, "Per-stratum ranks".
//   npx tsx examples/stratified-ranks.ts [--rank 4] [--iterations 300] [--seeds 3]
import { resolve } from 'node:path';

import { readLabels, readMatrixMarket, reconstruct, setBlasThreads, stratifiedNmfSync, type CsrMatrix } from '../lib/index.js';

const args = process.argv.slice(2);
const option = (name: string, fallback: number): number => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : fallback;
};
const rank = option('rank', 4);
const iterations = option('iterations', 300);
const seeds = option('seeds', 3);

/** Splits `budget` topics over the strata in proportion to `weights` (largest remainders; each ≥ 1). */
function proportional(weights: number[], budget: number): number[] {
  const total = weights.reduce((a, b) => a + b, 0);
  const exact = weights.map((w) => Math.max(1, (budget * w) / total));
  const ranks = exact.map(Math.floor);
  const order = exact.map((x, s) => [x - Math.floor(x), s] as const).sort((a, b) => b[0] - a[0]);
  for (let k = 0; ranks.reduce((a, b) => a + b, 0) < budget; k++) ranks[order[k % order.length]![1]]!++;
  return ranks;
}

const textDir = resolve(import.meta.dirname, '..', 'data', 'text');
setBlasThreads(1);
const tfidf = readMatrixMarket(resolve(textDir, 'austen_tfidf.mtx.gz')) as CsrMatrix;
const labels = readLabels(resolve(textDir, 'austen_docs.csv'), 'stratum');
const m = tfidf.cols;

// The strata (sorted labels, as fromLabels), their sizes and their spread ‖A(s) − 1·mean(s)ᵀ‖²:
// how much a stratum varies around what its shift v(s) can explain.
const names = [...new Set(labels)].sort();
const rowsOf = names.map((name) => labels.flatMap((l, i) => (l === name ? [i] : [])));
const spread = rowsOf.map((rows) => {
  const sum = new Float64Array(m);
  let sq = 0;
  for (const i of rows)
    for (let p = tfidf.indptr[i]!; p < tfidf.indptr[i + 1]!; p++) {
      sum[tfidf.indices[p]!]! += tfidf.data[p]!;
      sq += tfidf.data[p]! ** 2;
    }
  return sq - sum.reduce((t, x) => t + x * x, 0) / rows.length;
});
const sizes = rowsOf.map((r) => r.length);
const S = names.length;
const budget = rank * S;

const configs: [string, number[]][] = [
  [`uniform ${rank}`, names.map(() => rank)],
  ['∝ chapters', proportional(sizes, budget)],
  ['∝ spread', proportional(spread, budget)],
  ['∝ 1/chapters (control)', proportional(sizes.map((n) => 1 / n), budget)],
  [`uniform ${rank + 1}`, names.map(() => rank + 1)],
];

console.log(`austen: ${tfidf.rows} chapters × ${m} terms; strata ${names.map((n, s) => `${n} ${sizes[s]}`).join(', ')}`);
console.log(`${iterations} iterations, random init, seeds 1…${seeds}; loss = √Σ‖A(s) − model‖² / √Σ‖A(s)‖²\n`);
const pad = (x: string, n: number) => x.padEnd(n);
// Parameters: W (Σnₛrₛ), H (max rₛ rows of m) and V (S·m).
console.log(`${pad('split', 24)}${pad('ranks rₛ', 20)}${pad('Σnₛrₛ', 7)}${pad('H rows', 8)}${pad('parameters', 12)}normalized loss (mean, min–max)`);
const perStratum: number[][] = [];
for (const [name, ranks] of configs) {
  const losses: number[] = [];
  const stratumLoss = new Array<number>(S).fill(0);
  for (let seed = 1; seed <= seeds; seed++) {
    const r = stratifiedNmfSync.fromLabels(tfidf, labels, ranks, { maxIterations: iterations, seed });
    losses.push(r.normalizedLoss);
    // Per stratum: ‖A(s) − 1v(s)ᵀ − W(s)H[0:rₛ]‖ / ‖A(s)‖, from the model's values.
    reconstruct(r).forEach((model, s) => {
      let res = 0,
        norm = 0;
      r.rowIndices[s]!.forEach((i, k) => {
        const row = model.data.subarray(k * m, (k + 1) * m);
        let p = tfidf.indptr[i]!;
        for (let j = 0; j < m; j++) {
          const a = p < tfidf.indptr[i + 1]! && tfidf.indices[p] === j ? tfidf.data[p++]! : 0;
          res += (a - row[j]!) ** 2;
          norm += a * a;
        }
      });
      stratumLoss[s]! += Math.sqrt(res / norm) / seeds;
    });
  }
  perStratum.push(stratumLoss);
  const mean = losses.reduce((a, b) => a + b, 0) / losses.length;
  const wParams = ranks.reduce((t, rs, s) => t + rs * sizes[s]!, 0);
  const R = Math.max(...ranks);
  console.log(
    `${pad(name, 24)}${pad(ranks.join(','), 20)}${pad(String(wParams), 7)}${pad(String(R), 8)}${pad(String(wParams + (R + S) * m), 12)}` +
      `${mean.toFixed(5)} (${Math.min(...losses).toFixed(5)}–${Math.max(...losses).toFixed(5)})`,
  );
}
console.log('\nper novel, ‖A(s) − model‖/‖A(s)‖ (mean over seeds):');
console.log(`${pad('', 24)}${names.map((n) => pad(n.slice(0, 10), 11)).join('')}`);
configs.forEach(([name], c) => console.log(`${pad(name, 24)}${perStratum[c]!.map((x) => pad(x.toFixed(4), 11)).join('')}`));
