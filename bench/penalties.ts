// Sparsity against fit of L1-penalized NMF on a real text corpus (docs/penalties.md): Austen TF-IDF
// (269 chapters × 8984 terms, CSR), HALS, rank 10, 300 iterations, seed 1, over l1H with l2W = 0.1
// fixed (an L1 penalty on H alone would be escaped by scaling H down and W up; l2W pins the scale).
// Columns: the fraction of exact zeros in W and in H, the relative error ‖A − WH‖/‖A‖, the penalized
// objective, and the certificate (KKT gradient mapping of the penalized objective).
//   npx tsx bench/penalties.ts
import { nmfSync, readMatrix, setBlasThreads, type CsrMatrix } from '../lib/index.js';
import { dataFile } from '../test/helpers/shared.js';

setBlasThreads(1);
const A = readMatrix(dataFile('text/austen_tfidf.mtx'), { format: 'csr' }) as CsrMatrix;
const zeros = (x: Float64Array) => x.filter((v) => v === 0).length / x.length;

console.log(`Austen TF-IDF ${A.rows}×${A.cols}, nmf rank 10, HALS, 300 iterations, l2W 0.1`);
console.log('| l1H | zeros in W | zeros in H | relative error | objective | certificate |');
console.log('|---:|---:|---:|---:|---:|---:|');
for (const l1H of [0, 0.001, 0.003, 0.01, 0.03]) {
  const r = nmfSync(A, 10, { solver: 'hals', maxIterations: 300, seed: 1, l1H, l2W: 0.1 });
  console.log(
    `| ${l1H} | ${zeros(r.W.data).toFixed(3)} | ${zeros(r.H.data).toFixed(3)} | ${r.normalizedLoss.toFixed(4)} | ${r.objective!.toFixed(3)} | ${r.certificate.toExponential(1)} |`,
  );
}
