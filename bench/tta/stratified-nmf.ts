// Time to accuracy of Stratified-NMF's solvers, one BLAS thread: the wall time each solver needs to
// reach (a) the loss 'mu' reaches after 200 iterations (the goal: 'hals' ≥ 5× sooner) and
// (b) a loss within 1 % of the best either solver reaches in the run, on a synthetic and two real
// data sets (dense tissue expression by tissue; the Austen TF-IDF, CSR, by novel).
//   npx tsx bench/tta/stratified-nmf.ts [--quick]
// Times come from the solver's own trace (wall time from the start of the iterations, the loss
// tracked every iteration), the median of 3 runs per solver, the solvers interleaved so that a busy
// machine slows both alike. Both start from the same seeded draw.
import { pathToFileURL } from 'node:url';

import { readLabels, readMatrixMarket, readNpyMatrix } from '../../lib/io/index.js';
import { setBlasThreads, stratifiedNmfSync, type CsrMatrix, type Matrix, type StratifiedNmfResult, type StratifiedNmfSolver } from '../../lib/index.js';
import { dataFile } from '../../test/helpers/shared.js';
import { lcgFill } from '../common.js';

interface Problem {
  name: string;
  strata: (Matrix | CsrMatrix)[];
  rank: number;
}

const quick = process.argv.includes('--quick');
const solvers: StratifiedNmfSolver[] = ['mu', 'hals'];

/** A(s) = W(s)H + 1v(s)ᵀ + 1 % noise, S strata of n×m, rank r (deterministic). */
function synthetic(S: number, n: number, m: number, r: number): Problem {
  const H = lcgFill(r * m, 7);
  const strata = Array.from({ length: S }, (_, s) => {
    const W = lcgFill(n * r, 11 + s), noise = lcgFill(n * m, 100 + s), v = lcgFill(m, 50 + s);
    const data = new Float64Array(n * m);
    for (let i = 0; i < n; i++)
      for (let j = 0; j < m; j++) {
        let t = v[j]! + s;
        for (let c = 0; c < r; c++) t += W[i * r + c]! * H[c * m + j]!;
        data[i * m + j] = t * (1 + 0.01 * (noise[i * m + j]! - 0.5));
      }
    return { rows: n, cols: m, data };
  });
  return { name: `synthetic ${S}×${n}×${m}, rank ${r}`, strata, rank: r };
}

/** The rows of `A` grouped by their label (one stratum per label, in order of first appearance). */
function byLabels(A: Matrix, labels: string[]): Matrix[] {
  const groups = new Map<string, number[]>();
  labels.forEach((l, i) => groups.set(l, [...(groups.get(l) ?? []), i]));
  return [...groups.values()].map((rows) => {
    const data = new Float64Array(rows.length * A.cols);
    rows.forEach((i, k) => data.set(A.data.subarray(i * A.cols, (i + 1) * A.cols), k * A.cols));
    return { rows: rows.length, cols: A.cols, data };
  });
}

function csrRows(A: CsrMatrix, rows: number[]): CsrMatrix {
  const indptr = new Int32Array(rows.length + 1);
  const nnz = rows.reduce((t, i) => t + A.indptr[i + 1]! - A.indptr[i]!, 0);
  const indices = new Int32Array(nnz), data = new Float64Array(nnz);
  let at = 0;
  rows.forEach((i, k) => {
    for (let p = A.indptr[i]!; p < A.indptr[i + 1]!; p++, at++) indices[at] = A.indices[p]!, data[at] = A.data[p]!;
    indptr[k + 1] = at;
  });
  return { rows: rows.length, cols: A.cols, indptr, indices, data };
}

function problems(): Problem[] {
  const list = [synthetic(4, quick ? 200 : 500, quick ? 150 : 300, 10)];
  const tissue = readNpyMatrix(dataFile('tissue/tissue_expr.npy'));
  list.push({ name: `tissue ${tissue.rows}×${tissue.cols} by tissue (dense), rank 6`, strata: byLabels(tissue, readLabels(dataFile('tissue/tissue_labels.csv'), 'tissue')), rank: 6 });
  const austen = readMatrixMarket(dataFile('text/austen_tfidf.mtx.gz'), { format: 'csr' }) as CsrMatrix;
  const novels = readLabels(dataFile('text/austen_docs.csv'), 'stratum');
  const groups = new Map<string, number[]>();
  novels.forEach((l, i) => groups.set(l, [...(groups.get(l) ?? []), i]));
  list.push({ name: `Austen TF-IDF ${austen.rows}×${austen.cols} by novel (CSR), rank 8`, strata: [...groups.values()].map((rows) => csrRows(austen, rows)), rank: 8 });
  return list;
}

/** Milliseconds (from the trace) at which the loss first reaches `target`; Infinity when never. */
function timeTo(r: StratifiedNmfResult, target: number): number {
  const { loss, timeMs } = r.traces;
  for (let k = 0; k < loss.length; k++) if (loss[k]! <= target) return timeMs[k]!;
  return Infinity;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

const fmt = (x: number, digits = 3) => (Number.isFinite(x) ? x.toPrecision(digits) : 'never');

export async function run(): Promise<void> {
  setBlasThreads(1);
  console.log('Stratified-NMF time to accuracy, 1 BLAS thread, loss tracked every iteration (median of 3, solvers interleaved)');
  for (const p of problems()) {
    const runs: Record<string, StratifiedNmfResult[]> = { mu: [], hals: [] };
    // 'mu' for 200 iterations sets the target; 'hals' runs as long, which is far past it.
    for (let k = 0; k < 3; k++)
      for (const solver of solvers) runs[solver]!.push(stratifiedNmfSync(p.strata, p.rank, { solver, maxIterations: 200, seed: 1 }));
    const target = runs.mu![0]!.traces.loss[200]!;
    const best = Math.min(...solvers.flatMap((s) => runs[s]!.map((r) => r.loss)));
    console.log(`\n${p.name}: 'mu' 200-iteration loss ${fmt(target / runs.mu![0]!.loss * runs.mu![0]!.loss, 6)}, best ${fmt(best, 6)}`);
    const at: Record<string, number> = {};
    for (const solver of solvers) {
      const rs = runs[solver]!;
      at[solver] = median(rs.map((r) => timeTo(r, target)));
      const within = median(rs.map((r) => timeTo(r, best * 1.01)));
      const iterations = rs[0]!.traces.iteration[rs[0]!.traces.loss.findIndex((l) => l <= target)];
      console.log(
        `  ${solver.padEnd(5)} to 'mu'@200: ${fmt(at[solver]!).padStart(7)} ms (${iterations ?? 'never'} iterations)   to best+1 %: ${fmt(within).padStart(7)} ms   200 iterations: ${fmt(median(rs.map((r) => r.traces.timeMs[200]!))).padStart(7)} ms, final loss ${fmt(median(rs.map((r) => r.loss)), 6)}`,
      );
    }
    console.log(`  'hals' reaches 'mu''s 200-iteration loss ${fmt(at.mu! / at.hals!)}× sooner (goal ≥ 5×)`);
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) await run();
