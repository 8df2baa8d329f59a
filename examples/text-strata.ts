// Stratified-NMF on a real TF-IDF corpus: the chapters of Jane Austen's six novels (data/text), one
// stratum per novel. Prints, per stratum, the top terms of its shift v(s) — what every chapter of the
// novel shares — and, per topic, the top terms of H.
//   npx tsx examples/text-strata.ts [--rank 8] [--iterations 300]   (npm run example:text)
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';

import { readLabels, readMatrixMarket, setBlasThreads, stratifiedNmf } from '../lib/index.js';

const args = process.argv.slice(2);
const option = (name: string, fallback: number): number => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : fallback;
};
const corpus = 'austen';
const rank = option('rank', 8);
const iterations = option('iterations', 300);

function topTerms(row: Float64Array, vocab: string[], count = 8): string {
  return Array.from(row.keys())
    .sort((a, b) => row[b]! - row[a]!)
    .slice(0, count)
    .map((j) => vocab[j])
    .join(', ');
}

const textDir = resolve(import.meta.dirname, '..', 'data', 'text');

setBlasThreads(1);
const tfidf = readMatrixMarket(resolve(textDir, `${corpus}_tfidf.mtx.gz`)); // CSR
const vocab = readFileSync(resolve(textDir, `${corpus}_vocab.txt`), 'utf8')
  .split('\n')
  .filter((l) => l.length > 0);
const strata = readLabels(resolve(textDir, `${corpus}_docs.csv`), 'stratum');
console.log(`${corpus}: ${tfidf.rows} documents × ${tfidf.cols} terms, ${tfidf.data.length} non-zeros (CSR, never densified)`);
const t0 = performance.now();
const result = await stratifiedNmf.fromLabels(tfidf, strata, rank, {
  maxIterations: iterations,
  init: 'nndsvd',
  seed: 1,
  progressIntervalMs: 250,
  // Progress on a terminal only (one line, rewritten), so that logs hold just the results.
  onProgress: (p) => {
    if (process.stderr.isTTY) process.stderr.write(`\r  iteration ${p.iteration}/${iterations}: normalized loss ${p.normalizedLoss.toFixed(5)}`);
  },
});
if (process.stderr.isTTY) process.stderr.write('\r\x1b[K');
const seconds = (performance.now() - t0) / 1000;
console.log(
  `rank ${rank}, ${result.iterations} iterations in ${seconds.toFixed(2)} s: normalized loss ` +
    `${result.traces.normalizedLoss[0]!.toFixed(4)} → ${result.normalizedLoss.toFixed(4)}\n`,
);

console.log('Top terms of v(s), per stratum:');
result.labels.forEach((label, s) => {
  const v = result.V.data.subarray(s * result.V.cols, (s + 1) * result.V.cols);
  console.log(`  ${String(label).padEnd(22)} (${String(result.rowIndices[s]!.length).padStart(4)} docs)  ${topTerms(v, vocab)}`);
});
console.log('\nTop terms of H, per topic:');
for (let k = 0; k < rank; k++) {
  const h = result.H.data.subarray(k * result.H.cols, (k + 1) * result.H.cols);
  console.log(`  topic ${k + 1}: ${topTerms(h, vocab)}`);
}
