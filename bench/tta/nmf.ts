// Plain NMF: our solvers (HALS and MU, with and without inner sweeps) against scikit-learn NMF(solver
// 'cd') and RcppML::nmf on the same matrices, one thread each.
//   synthetic: A = max(0, WH + noise), W 2000×20 and H 20×1000 uniform, noise Gaussian with 1 % of
//              the rms of WH; rank 20.
//   real:      the ALL expression matrix (data/leukemia_all, 128×1000, log2 RMA, all positive); rank 10.
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { nmfSync, readMatrix, setBlasThreads, type Matrix, type NmfOptions } from '../../lib/index.js';
import { lcgFill } from '../common.js';
import { peerCurves, traceCurve, wholeCallCurve, type Curve, type TtaContext } from './common.js';

export const title = 'plain NMF (nmf): Frobenius loss, dense data';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

export function syntheticLowRank(n: number, m: number, r: number, noise = 0.01): Matrix {
  const W = lcgFill(n * r, 3);
  const H = lcgFill(r * m, 5);
  const z = lcgFill(n * m, 7, true);
  const A = new Float64Array(n * m);
  for (let i = 0; i < n; i++)
    for (let c = 0; c < r; c++) {
      const w = W[i * r + c]!;
      for (let j = 0; j < m; j++) A[i * m + j] = A[i * m + j]! + w * H[c * m + j]!;
    }
  let s2 = 0;
  for (const x of A) s2 += x * x;
  const rms = Math.sqrt(s2 / A.length);
  for (let i = 0; i < A.length; i++) A[i] = Math.max(0, A[i]! + noise * rms * z[i]!);
  return { rows: n, cols: m, data: A };
}

/** The ALL matrix; RMA log2 values are positive already, so the shift (to a minimum of 0) only guards. */
export function allExpression(): Matrix {
  const M = readMatrix(resolve(root, 'data/leukemia_all/ALL_expr_top1000var.npy.gz'), { format: 'dense' });
  let min = Infinity;
  for (const x of M.data) min = Math.min(min, x);
  return min >= 0 ? M : { rows: M.rows, cols: M.cols, data: M.data.map((x) => x - min) };
}

// The solver settings compared: the default (innerSweeps unset), the classic one-sweep HALS and MU,
// and the neighbours of the default's inner-sweep count (how DEFAULT_INNER_SWEEPS was chosen).
const settings: [string, NmfOptions][] = [
  ['hals (default)', {}],
  ['hals inner 1', { solver: 'hals', innerSweeps: 1 }],
  ['hals inner 3', { solver: 'hals', innerSweeps: 3 }],
  ['hals inner 30', { solver: 'hals', innerSweeps: 30 }],
  ['mu (default inner 1)', { solver: 'mu' }],
  ['mu inner 10', { solver: 'mu', innerSweeps: 10 }],
];

// How each side is timed. The default ('hals (default)') is fitted from scratch at each iteration
// count of the peers' schedule and timed around the whole nmfSync call (option checks, copying A,
// the initialization, the iterations, the final loss and certificate, the result), exactly as the
// peers' fits are timed around their whole fit calls: the ratio rows compare these. The other
// settings are one run each, their points the solver's own trace (the loss of the iterate after k
// iterations, stamped when iteration k + 1 measures it: initialization and call costs excluded),
// shown to compare settings; with --cpu they are left out (their clock is the wall).
export function problem(ctx: TtaContext, name: string, A: Matrix, rank: number, iterations: number): void {
  const curves: Curve[] = [];
  let longest = 0;
  for (const [label, options] of settings) {
    nmfSync(A, rank, { ...options, maxIterations: 2, seed: 1 }); // warm-up (pages, BLAS buffers)
    if (label === 'hals (default)') {
      const c = wholeCallCurve(ctx, label, iterations, (k) => nmfSync(A, rank, { ...options, maxIterations: k, seed: 1 }).normalizedLoss);
      curves.push({ ...c, isDefault: true });
      longest = Math.max(longest, c.points[c.points.length - 1]!.seconds);
      continue;
    }
    if (ctx.clock === 'cpu') continue;
    const r = nmfSync(A, rank, { ...options, maxIterations: iterations, seed: 1 });
    curves.push(traceCurve(label, r.traces));
    longest = Math.max(longest, r.traces.timeMs[r.traces.timeMs.length - 1]! / 1000);
  }
  // Peers: fits of up to the same iteration count, the schedule ending at four times our longest run
  // (RcppML's iterations cost about twice ours: it still gets to the levels it reaches).
  curves.push(...peerCurves(ctx, A, rank, iterations, 4 * longest));
  ctx.report(name, curves);
}

export async function run(ctx: TtaContext): Promise<void> {
  setBlasThreads(1);
  const q = ctx.quick;
  problem(ctx, `synthetic ${q ? '600×300' : '2000×1000'} rank 20 (WH + 1 % noise)`, syntheticLowRank(q ? 600 : 2000, q ? 300 : 1000, 20), 20, q ? 60 : 300);
  problem(ctx, 'ALL expression 128×1000 (log2 RMA, non-negative), rank 10', allExpression(), 10, q ? 100 : 400);
}
