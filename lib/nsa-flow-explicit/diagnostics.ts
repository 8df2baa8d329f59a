/**
 * What every explicit-flow result reports about its solution: how sparse, how orthogonal, how far from
 * the target, and (when the data the loadings describe is given) how much of its variance they keep.
 */
import type { Matrix } from '../matrix.js';
import { native } from '../native.js';
import { callSync } from '../runtime.js';
import { expectMatrix } from '../validate.js';

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
  let zeros = 0;
  let diff2 = 0;
  let x2 = 0;
  for (let i = 0; i < y.data.length; i++) {
    const v = y.data[i]!;
    if (v === 0) zeros++;
    diff2 += (v - x.data[i]!) ** 2;
    x2 += x.data[i]! ** 2;
  }
  const defect = callSync(() => native().defect(y.data, y.rows, y.cols));
  return {
    sparsity: zeros / y.data.length,
    defect,
    relativeFidelity: Math.sqrt(diff2) / Math.max(Math.sqrt(x2), 1e-300),
    explainedVariance: data === undefined ? null : explainedVariance(data, y),
  };
}

/** Fraction of the column-centred data's variance captured by the column span of the loadings Y. */
export function explainedVariance(data: Matrix, Y: Matrix): number {
  const X = expectMatrix(data, 'data');
  const y = expectMatrix(Y, 'Y');
  if (X.cols !== y.rows) {
    throw new RangeError(`Expected data with ${y.rows} columns (one per row of Y) but received ${X.rows}×${X.cols}`);
  }
  const n = X.rows;
  const p = X.cols;
  const k = y.cols;
  const mean = new Float64Array(p);
  for (let i = 0; i < n; i++) for (let j = 0; j < p; j++) mean[j]! += X.data[i * p + j]! / n;
  // M = Xc·Y (n×k) and ‖Xc‖².
  const M = new Float64Array(n * k);
  let total = 0;
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < p; j++) {
      const v = X.data[i * p + j]! - mean[j]!;
      total += v * v;
      if (v === 0) continue;
      for (let c = 0; c < k; c++) M[i * k + c]! += v * y.data[j * k + c]!;
    }
  }
  const G = new Float64Array(k * k);
  for (let j = 0; j < p; j++) for (let a = 0; a < k; a++) for (let b = 0; b < k; b++) G[a * k + b]! += y.data[j * k + a]! * y.data[j * k + b]!;
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
  return Math.min(1, captured / total);
}
