/**
 * What every explicit-flow result reports about its solution: how sparse, how orthogonal, how far from
 * the target, and (when the data the loadings describe is given) how much of its variance they keep.
 */
import type { Matrix } from '../matrix.js';
import { native } from '../native.js';
import { callSync } from '../runtime.js';
import { NumericalError } from '../errors.js';
import { checkMemory, float64Bytes } from '../memory.js';
import { defectOfChecked } from '../ortho.js';
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
  return diagnosticsOfChecked(y, x, d);
}

/**
 * The sums the native flow takes over its own result in its last pass, on its thread team
 * (native/kernels/explicit_flow.hpp ExplicitFlowSummary): ‖Y − target‖², ‖target‖² and the defect from
 * YᵀY in its working units (the ratios do not depend on them), Y's exact zeros and whether Y and the
 * target are finite, in the caller's units.
 */
export interface RawResultSums {
  zeros: number;
  distance2: number;
  target2: number;
  defect: number;
  finite: boolean;
}

// A sum of squares that neither overflowed nor may have underflowed (0 too may be squares that underflowed).
const plainSum = (t: number): boolean => t > 1e-280 && t < 1e280;

/**
 * The diagnostics of the explicit flow's own (finite) result from the sums its native pass took, so that
 * the caller's thread does not pass over Y and the target again (about 15 ms a call at 100000×20, a
 * tenth of a 2-thread solve on 2 cores). Where a sum is not plain (no rescale and entries whose squares
 * overflow or underflow) the checked pass below computes them instead.
 */
export function diagnosticsOfSums(y: Matrix, x: Matrix, d: Matrix | undefined, sums: RawResultSums): ExplicitFlowDiagnostics {
  if (!plainSum(sums.distance2) || !plainSum(sums.target2) || !Number.isFinite(sums.defect)) return diagnosticsOfChecked(y, x, d);
  return {
    sparsity: sums.zeros / y.data.length,
    defect: sums.defect,
    relativeFidelity: Math.sqrt(sums.distance2) / Math.sqrt(sums.target2),
    explainedVariance: d === undefined ? null : explainedVariance(d, y),
  };
}

/**
 * explicitFlowDiagnostics of matrices already checked (finite, Y and X0 of one shape): the explicit
 * flow's own result and target, without validating them again. One pass over Y and X0 gives the zeros,
 * ‖Y − X0‖², ‖X0‖² (plain sums, in two partial sums each) and Y's largest magnitude; only where the
 * plain sums overflow or underflow does a second pass divide by the larger magnitude (the ratio does not
 * change). At 100000×20 the validating version's passes took about 25 ms a call, a sixth of a 2-thread
 * solve's time on 2 cores.
 */
export function diagnosticsOfChecked(y: Matrix, x: Matrix, d: Matrix | undefined): ExplicitFlowDiagnostics {
  const yd = y.data;
  const xd = x.data;
  const n = yd.length;
  let zeros = 0;
  let diffA = 0;
  let diffB = 0;
  let normA = 0;
  let normB = 0;
  let largestY = 0;
  let i = 0;
  for (; i + 1 < n; i += 2) {
    const v = yd[i]!;
    const w = yd[i + 1]!;
    if (v === 0) zeros++;
    if (w === 0) zeros++;
    const av = Math.abs(v);
    const aw = Math.abs(w);
    if (av > largestY) largestY = av;
    if (aw > largestY) largestY = aw;
    const e = v - xd[i]!;
    const f = w - xd[i + 1]!;
    diffA += e * e;
    diffB += f * f;
    normA += xd[i]! * xd[i]!;
    normB += xd[i + 1]! * xd[i + 1]!;
  }
  if (i < n) {
    const v = yd[i]!;
    if (v === 0) zeros++;
    if (Math.abs(v) > largestY) largestY = Math.abs(v);
    const e = v - xd[i]!;
    diffA += e * e;
    normA += xd[i]! * xd[i]!;
  }
  let diff2 = diffA + diffB;
  let x2 = normA + normB;
  if (!plainSum(diff2) || !plainSum(x2)) {
      // Squares of entries near 1e200 overflow, of entries near 1e-200 underflow (or Y = X0 exactly):
    // both divided by the larger magnitude.
    const s = Math.max(largestY, maxAbs(xd)) || 1;
    diff2 = 0;
    x2 = 0;
    for (let j = 0; j < n; j++) {
      diff2 += ((yd[j]! - xd[j]!) / s) ** 2;
      x2 += (xd[j]! / s) ** 2;
    }
  }
  return {
    sparsity: zeros / n,
    defect: defectOfChecked(y, largestY),
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
