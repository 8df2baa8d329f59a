/**
 * What every explicit-flow result reports about its solution: how sparse, how orthogonal, how far from
 * the target, and (when the data the loadings describe is given) how much of its variance they keep.
 */
import type { Matrix } from '../matrix.js';
import { native } from '../native.js';
import { callSync } from '../runtime.js';
import { NumericalError } from '../errors.js';
import { checkMemory, float64Bytes } from '../memory.js';
import { invariantOrthogonalityDefect } from '../ortho.js';
import { expectIntact, expectMatrix, maxAbs } from '../validate.js';

export interface ExplicitFlowDiagnostics {
  /** Fraction of exact zeros in Y. */
  sparsity: number;
  /** Invariant orthogonality defect of Y (0 iff its columns are mutually orthogonal). */
  defect: number;
  /** ‖Y − X0‖ / ‖X0‖. */
  relativeFidelity: number;
  /**
   * With `data` (n×p, rows are observations, p = Y.rows): the fraction of the column-centred data's
   * total variance in the span of Y's columns, ‖Xc·Y·(YᵀY)^{-1/2}‖² / ‖Xc‖². Null without data.
   */
  explainedVariance: number | null;
}

/** Sparsity, defect, relative fidelity and (optionally) explained variance of a solution Y. */
export function explicitFlowDiagnostics(Y: Matrix, X0: Matrix, data?: Matrix): ExplicitFlowDiagnostics {
  const y = expectMatrix(Y, 'Y');
  const x = expectMatrix(X0, 'X0');
  if (x.rows !== y.rows || x.cols !== y.cols) {
    throw new RangeError(`Expected X0 to have the shape of Y (${y.rows}×${y.cols}) but received ${x.rows}×${x.cols}`);
  }
  const d = data === undefined ? undefined : expectMatrix(data, 'data');
  expectIntact([y.data, y.rows * y.cols, 'Y.data'], [x.data, x.rows * x.cols, 'X0.data']);
  // Squares of entries near 1e200 overflow: both are divided by the larger magnitude (the ratio does not change).
  const s = Math.max(maxAbs(y.data), maxAbs(x.data)) || 1;
  let zeros = 0;
  let diff2 = 0;
  let x2 = 0;
  for (let i = 0; i < y.data.length; i++) {
    const v = y.data[i]!;
    if (v === 0) zeros++;
    diff2 += ((v - x.data[i]!) / s) ** 2;
    x2 += (x.data[i]! / s) ** 2;
  }
  return {
    sparsity: zeros / y.data.length,
    defect: invariantOrthogonalityDefect(y),
    relativeFidelity: Math.sqrt(diff2) / Math.max(Math.sqrt(x2), 1e-300),
    explainedVariance: d === undefined ? null : explainedVariance(d, y),
  };
}

/** Fraction of the column-centred data's variance captured by the column span of the loadings Y. */
export function explainedVariance(data: Matrix, Y: Matrix): number {
  const X = expectMatrix(data, 'data');
  const y = expectMatrix(Y, 'Y');
  if (X.cols !== y.rows) {
    throw new RangeError(`Expected data with ${y.rows} columns (one per row of Y) but received ${X.rows}×${X.cols}`);
  }
  expectIntact([X.data, X.rows * X.cols, 'data.data']);
  const n = X.rows;
  const p = X.cols;
  const k = y.cols;
  checkMemory(float64Bytes(p + n * k + 3 * k * k), `the explained variance of data (${n}×${p}) by Y (${p}×${k}): Xc·Y and the k×k Gram`);
  // The fraction does not change when the data or Y is scaled: divide each by its largest magnitude.
  const sx = maxAbs(X.data) || 1;
  const sy = maxAbs(y.data) || 1;
  const Xd = X.data.map((v) => v / sx);
  const Yd = y.data.map((v) => v / sy);
  const mean = new Float64Array(p);
  for (let i = 0; i < n; i++) for (let j = 0; j < p; j++) mean[j]! += Xd[i * p + j]! / n;
  // M = Xc·Y (n×k) and ‖Xc‖².
  const M = new Float64Array(n * k);
  let total = 0;
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < p; j++) {
      const v = Xd[i * p + j]! - mean[j]!;
      total += v * v;
      if (v === 0) continue;
      for (let c = 0; c < k; c++) M[i * k + c]! += v * Yd[j * k + c]!;
    }
  }
  const G = new Float64Array(k * k);
  for (let j = 0; j < p; j++) for (let a = 0; a < k; a++) for (let b = 0; b < k; b++) G[a * k + b]! += Yd[j * k + a]! * Yd[j * k + b]!;
  let tr = 0;
  for (let a = 0; a < k; a++) tr += G[a * k + a]!;
  if (!(tr > 0) || !(total > 0)) return 0;
  // (YᵀY)^{-1/2} with eigenvalues floored relative to the trace (zero columns contribute nothing).
  const W = callSync(() => native().inverseSqrt(G, k, 'eig', 1e-12 * tr, 0));
  let captured = 0;
  for (let i = 0; i < n; i++) {
    for (let c = 0; c < k; c++) {
      let s = 0;
      for (let a = 0; a < k; a++) s += M[i * k + a]! * W[a * k + c]!;
      captured += s * s;
    }
  }
  const fraction = captured / total;
  if (!Number.isFinite(fraction)) {
    throw new NumericalError(`explainedVariance(): the captured variance is ${fraction}: (YᵀY)^{-1/2} of Y overflowed (Y is numerically rank-deficient); check Y`);
  }
  return Math.min(1, fraction);
}
