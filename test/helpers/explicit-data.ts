// Real and synthetic inputs for the explicit-flow tests: PCA loadings of a real data matrix, and
// non-negative loadings with known disjoint column supports blurred by dense noise.
import { readNpyMatrix, svd, type Matrix } from '../../lib/index.js';
import { dataFile } from './shared.js';

/** Column-centred copy of a data matrix (rows = observations). */
export function centred(X: Matrix): Matrix {
  const out = new Float64Array(X.data);
  for (let j = 0; j < X.cols; j++) {
    let m = 0;
    for (let i = 0; i < X.rows; i++) m += X.data[i * X.cols + j]!;
    m /= X.rows;
    for (let i = 0; i < X.rows; i++) out[i * X.cols + j]! -= m;
  }
  return { rows: X.rows, cols: X.cols, data: out };
}

/**
 * The data (rows = samples) and its top-k PCA loadings (p×k, orthonormal columns = the top right
 * singular vectors of the column-centred data), each column's sign chosen so that its sum is ≥ 0
 * (`sign: 'sum'`) or its largest-magnitude entry is positive (`sign: 'largest'`).
 */
export function pcaStart(file: string, k: number, sign: 'sum' | 'largest' = 'sum'): { data: Matrix; loadings: Matrix } {
  const data = readNpyMatrix(dataFile(file));
  const { V } = svd(centred(data));
  const p = data.cols;
  const L = new Float64Array(p * k);
  for (let c = 0; c < k; c++) {
    let sum = 0;
    let largest = 0;
    for (let i = 0; i < p; i++) {
      const v = V.data[i * V.cols + c]!;
      sum += v;
      if (Math.abs(v) > Math.abs(largest)) largest = v;
    }
    const flip = sign === 'sum' ? sum < 0 : largest < 0;
    const s = flip ? -1 : 1;
    for (let i = 0; i < p; i++) L[i * k + c] = s * V.data[i * V.cols + c]!;
  }
  return { data, loadings: { rows: p, cols: k, data: L } };
}

/** p×k ground truth with disjoint supports (row i belongs to column i mod k) plus dense noise everywhere. */
export function disjointSupports(p: number, k: number, noise: number, seed: number): { truth: Int32Array; X0: Matrix } {
  let s = seed >>> 0;
  const next = (): number => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 4294967296;
  };
  const truth = new Int32Array(p);
  const X = new Float64Array(p * k);
  for (let i = 0; i < p; i++) {
    truth[i] = i % k;
    for (let c = 0; c < k; c++) X[i * k + c] = noise * next();
    X[i * k + truth[i]!] = 0.5 + next();
  }
  return { truth, X0: { rows: p, cols: k, data: X } };
}

/** Fraction of rows whose only non-zero entry is in their true column. */
export function supportRecovery(Y: Matrix, truth: Int32Array): number {
  let ok = 0;
  for (let i = 0; i < Y.rows; i++) {
    let nonzero = 0;
    let right = false;
    for (let c = 0; c < Y.cols; c++) {
      if (Y.data[i * Y.cols + c] !== 0) {
        nonzero++;
        if (c === truth[i]) right = true;
      }
    }
    if (nonzero === 1 && right) ok++;
  }
  return ok / Y.rows;
}

/**
 * Two measurements A, B of the same p×k loadings with disjoint supports (row i belongs to column
 * i mod k, signal 0.5 + U(0, 1)), each with its own centred noise U(−noise/2, noise/2) on every entry:
 * fit on A (the flow projects it with N), score on the held-out B.
 */
export function disjointReplicates(p: number, k: number, noise: number, seed: number): { truth: Int32Array; A: Matrix; B: Matrix } {
  let s = seed >>> 0;
  const next = (): number => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 4294967296;
  };
  const truth = new Int32Array(p);
  const A = new Float64Array(p * k);
  const B = new Float64Array(p * k);
  for (let i = 0; i < p; i++) {
    truth[i] = i % k;
    const signal = 0.5 + next();
    for (let c = 0; c < k; c++) {
      const x = c === truth[i] ? signal : 0;
      A[i * k + c] = x + noise * (next() - 0.5);
      B[i * k + c] = x + noise * (next() - 0.5);
    }
  }
  return { truth, A: { rows: p, cols: k, data: A }, B: { rows: p, cols: k, data: B } };
}

/**
 * Held-out reconstruction error of loadings Y against a replicate B, each column rescaled by its least-
 * squares factor (the flow's fidelity is not scale-exact): Σ_c min_a ‖b_c − a·y_c‖² / ‖B‖².
 */
export function heldOutError(Y: Matrix, B: Matrix): number {
  let err = 0;
  let total = 0;
  for (let c = 0; c < Y.cols; c++) {
    let yb = 0;
    let yy = 0;
    let bb = 0;
    for (let i = 0; i < Y.rows; i++) {
      const y = Y.data[i * Y.cols + c]!;
      const b = B.data[i * B.cols + c]!;
      yb += y * b;
      yy += y * y;
      bb += b * b;
    }
    err += bb - (yy > 0 ? (yb * yb) / yy : 0);
    total += bb;
  }
  return err / total;
}
