// Fixture cases of stratified_nmf.json as typed inputs, and small dense reference computations the
// NMF tests compare against (plain JS, so they share nothing with the addon).
import type { CsrMatrix, Matrix } from '../../lib/matrix.js';
import { fxMatrix, loadFixture, type FixtureArray } from './shared.js';

export interface SnmfCase {
  name: string;
  A: Matrix[];
  rank: number;
  init: { V: Matrix; W: Matrix[]; H: Matrix };
  lossArray: Float64Array;
  normA: number;
  raw: any;
}

export function snmfCase(index: number): SnmfCase {
  const c = loadFixture('stratified_nmf.json').cases[index];
  return {
    name: c.name,
    A: c.A.map((a: FixtureArray) => fxMatrix(a)),
    rank: c.rank,
    init: { V: fxMatrix(c.init.V), W: c.init.W.map((w: FixtureArray) => fxMatrix(w)), H: fxMatrix(c.init.H) },
    lossArray: Float64Array.from(c.loss_array.data as number[]),
    normA: c.A_frobenius_norm,
    raw: c,
  };
}

/** Dense C = A·B (row-major). */
export function matmul(A: Matrix, B: Matrix): Matrix {
  const out = new Float64Array(A.rows * B.cols);
  for (let i = 0; i < A.rows; i++)
    for (let k = 0; k < A.cols; k++) {
      const a = A.data[i * A.cols + k]!;
      if (a === 0) continue;
      for (let j = 0; j < B.cols; j++) out[i * B.cols + j]! += a * B.data[k * B.cols + j]!;
    }
  return { rows: A.rows, cols: B.cols, data: out };
}

export function transposed(A: Matrix): Matrix {
  const out = new Float64Array(A.rows * A.cols);
  for (let i = 0; i < A.rows; i++) for (let j = 0; j < A.cols; j++) out[j * A.rows + i] = A.data[i * A.cols + j]!;
  return { rows: A.cols, cols: A.rows, data: out };
}

export function toDense(A: CsrMatrix | Matrix): Matrix {
  if (!('indptr' in A)) return A;
  const data = new Float64Array(A.rows * A.cols);
  for (let i = 0; i < A.rows; i++)
    for (let p = A.indptr[i]!; p < A.indptr[i + 1]!; p++) data[i * A.cols + A.indices[p]!] = A.data[p]!;
  return { rows: A.rows, cols: A.cols, data };
}

/** √Σₛ‖A(s) − 1v(s)ᵀ − W(s)H‖², entry by entry. */
export function directStratifiedLoss(A: Matrix[], V: Matrix, W: Matrix[], H: Matrix): number {
  let sum = 0;
  A.forEach((a, s) => {
    const WH = matmul(W[s]!, H);
    for (let i = 0; i < a.rows; i++)
      for (let j = 0; j < a.cols; j++) {
        const d = a.data[i * a.cols + j]! - V.data[s * a.cols + j]! - WH.data[i * a.cols + j]!;
        sum += d * d;
      }
  });
  return Math.sqrt(sum);
}

/** True when every step of the trace is non-increasing up to a relative slack. */
export function largestIncrease(loss: Float64Array): number {
  let worst = -Infinity;
  for (let i = 1; i < loss.length; i++) worst = Math.max(worst, (loss[i]! - loss[i - 1]!) / loss[i - 1]!);
  return worst;
}

/**
 * solver.hpp's gradient mapping ‖max(X − ‖X‖²G, 0) − X‖/‖X‖ of a non-negative block X with gradient G,
 * evaluated independently of the addon (the certificate of the NMF family is its largest over blocks).
 */
export function gradientMapping(X: ArrayLike<number>, G: ArrayLike<number>): number {
  let xx = 0;
  for (let i = 0; i < X.length; i++) xx += X[i]! ** 2;
  let d2 = 0;
  for (let i = 0; i < X.length; i++) d2 += (Math.max(X[i]! - xx * G[i]!, 0) - X[i]!) ** 2;
  return Math.sqrt(d2 / xx);
}
