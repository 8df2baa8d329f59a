/**
 * Principal component analysis: the start most NSA-Flow runs need (its loadings are the Y0 of nsaFlow,
 * p × k). Rows of X are observations, columns are variables. One thin SVD of the centred (optionally
 * scaled) X: Xc = U S Vᵀ, loadings = V[:, :k], scores = U[:, :k]·S = Xc·loadings.
 */
import type { Matrix } from './matrix.js';
import { checkMemory, float64Bytes } from './memory.js';
import { svd } from './ortho.js';
import { describeValue, expectMatrix, parseOptions, type OptionSpecs } from './validate.js';

export interface PcaOptions {
  /** Subtract each column's mean first (default true). */
  center?: boolean;
  /**
   * Divide each column by its standard deviation (n − 1 denominator) after centring, i.e. PCA of the
   * correlation matrix; without centring, by its root mean square √(Σx²/(n − 1)), as R's scale().
   * Default false.
   */
  scale?: boolean;
}

export const pcaOptionSpecs = {
  center: { kind: 'boolean', default: true, description: "subtract each column's mean" },
  scale: { kind: 'boolean', default: false, description: 'divide each column by its standard deviation' },
} as const satisfies OptionSpecs;

export interface PcaResult {
  /** p × k, unit orthogonal columns; each column's largest-magnitude entry is positive. */
  loadings: Matrix;
  /** n × k: the centred (scaled) X times the loadings. */
  scores: Matrix;
  /** The k largest singular values of the centred (scaled) X, decreasing. */
  singularValues: Float64Array;
  /** Share of the total variance of each component (s²/Σ all s²); their sum is ≤ 1. */
  explainedVarianceRatio: Float64Array;
  /** The column means subtracted (zeros when center is false). */
  mean: Float64Array;
  /** The column divisors, when scale is true. */
  scale?: Float64Array;
}

/**
 * Centred PCA of X (rows = observations) with k components; see PcaResult. Throws a RangeError when k
 * is outside [1, min(rows, cols)] or X has no variance left after centring (or a constant column when
 * scaling).
 */
export function pca(X: Matrix, k: number, options?: PcaOptions): PcaResult {
  const m = expectMatrix(X, 'X');
  const { rows: n, cols: p } = m;
  const r = Math.min(n, p);
  if (typeof k !== 'number' || Number.isNaN(k)) throw new TypeError(`Expected an integer in [1, ${r}] (min(rows, cols) of X) for k but received ${describeValue(k)}`);
  if (!Number.isInteger(k) || k < 1 || k > r) throw new RangeError(`Expected an integer in [1, ${r}] (min(rows, cols) of X) for k but received ${describeValue(k)}`);
  const opts = parseOptions<Required<PcaOptions>>(pcaOptionSpecs, options, 'pca()');
  // The centred copy and the SVD's U (n × r) and V (p × r).
  checkMemory(float64Bytes(n, p) + float64Bytes(n, r) + float64Bytes(p, r), `pca of X (${n}×${p})`);

  const mean = new Float64Array(p);
  if (opts.center) {
    for (let i = 0; i < n; i++) for (let j = 0; j < p; j++) mean[j] += m.data[i * p + j]!;
    for (let j = 0; j < p; j++) mean[j] /= n;
  }
  const data = new Float64Array(n * p);
  for (let i = 0; i < n; i++) for (let j = 0; j < p; j++) data[i * p + j] = m.data[i * p + j]! - mean[j]!;
  let divisors: Float64Array | undefined;
  if (opts.scale) {
    divisors = new Float64Array(p);
    for (let i = 0; i < n; i++) for (let j = 0; j < p; j++) divisors[j] += data[i * p + j]! ** 2;
    for (let j = 0; j < p; j++) {
      divisors[j] = Math.sqrt(divisors[j]! / Math.max(n - 1, 1));
      if (!(divisors[j]! > 0)) {
        throw new RangeError(`Expected columns that are not constant for X with options.scale of pca() but received a constant column ${j}`);
      }
    }
    for (let i = 0; i < n; i++) for (let j = 0; j < p; j++) data[i * p + j] /= divisors[j]!;
  }
  let total = 0;
  for (let i = 0; i < data.length; i++) total += data[i]! ** 2;
  if (!(total > 0)) {
    throw new RangeError(`Expected X with some variance${opts.center ? ' after centring' : ''} for pca() but received ${opts.center ? 'rows that are all equal' : 'a zero matrix'}`);
  }

  const { U, S, V } = svd({ rows: n, cols: p, data });
  const loadings = new Float64Array(p * k);
  const scores = new Float64Array(n * k);
  for (let c = 0; c < k; c++) {
    // Sign convention: the largest-magnitude loading of each component is positive.
    let big = 0;
    for (let j = 0; j < p; j++) if (Math.abs(V.data[j * r + c]!) > Math.abs(big)) big = V.data[j * r + c]!;
    const sign = big < 0 ? -1 : 1;
    for (let j = 0; j < p; j++) loadings[j * k + c] = sign * V.data[j * r + c]!;
    for (let i = 0; i < n; i++) scores[i * k + c] = sign * U.data[i * r + c]! * S[c]!;
  }
  const singularValues = S.slice(0, k);
  const explainedVarianceRatio = singularValues.map((s) => (s * s) / total);
  const result: PcaResult = {
    loadings: { rows: p, cols: k, data: loadings },
    scores: { rows: n, cols: k, data: scores },
    singularValues,
    explainedVarianceRatio,
    mean,
  };
  if (divisors) result.scale = divisors;
  return result;
}
