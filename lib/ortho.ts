/**
 * The orthogonalization toolkit (SPEC.md §1–3): orthogonality measures, retractions toward the
 * Stiefel manifold (single and batch, sync and async), inverse square roots, Procrustes, thin QR/SVD
 * and non-negativity maps. Every function validates its arguments, then makes one native call.
 */
import type { Matrix } from './matrix.js';
import { native } from './native.js';
import { callSync, runJob, type AsyncOptions } from './runtime.js';
import type { Tensor } from './tensor.js';
import {
  asyncOptionSpecs,
  expectBatch,
  expectMatrix,
  expectOneOf,
  expectSameShape,
  parseOptions,
  type OptionSpecs,
} from './validate.js';

export const retractionTypes = [
  'none',
  'polar',
  'softPolar',
  'newtonSchulz',
  'softNewtonSchulz',
  'quinticNewtonSchulz',
  'softQuinticNewtonSchulz',
  'cayley',
  'softCayley',
  'normalize',
] as const;
export type RetractionType = (typeof retractionTypes)[number];

/** Retractions whose result lies (near) the Stiefel manifold, which needs rows ≥ cols. */
const stiefelTypes: ReadonlySet<string> = new Set(retractionTypes.filter((t) => t !== 'none' && t !== 'normalize'));

export interface RetractOptions {
  /** Which retraction (default 'softPolar'). */
  type?: RetractionType;
  /** Blend weight of the soft types; 0 returns Y unchanged for every type (default 1). */
  w?: number;
  /** Iterations of the (quintic) Newton–Schulz types (default 5). */
  nsIterations?: number;
  /**
   * How the polar factor is computed: 'svd' (thin SVD), 'gram' (YᵀY eigendecomposition, one GEMM;
   * falls back to the SVD if YᵀY is singular) or 'auto' (Gram when λmax/λmin of YᵀY ≤ 1e4, where it
   * is accurate to about 1e-12; SVD otherwise). Default 'auto'.
   */
  polarMethod?: 'auto' | 'svd' | 'gram';
}

export const retractOptionSpecs = {
  type: { kind: 'enum', values: retractionTypes, default: 'softPolar', description: 'retraction' },
  w: { kind: 'number', min: 0, max: 1, default: 1, description: 'blend weight of the soft retractions' },
  nsIterations: {
    kind: 'number',
    integer: true,
    min: 0,
    max: 10_000,
    default: 5,
    description: 'Newton–Schulz iterations',
  },
  polarMethod: { kind: 'enum', values: ['auto', 'svd', 'gram'], default: 'auto', description: 'polar factor algorithm' },
} as const satisfies OptionSpecs;

type ParsedRetract = Required<RetractOptions>;

function parseRetract(options: unknown, context: string, specs: OptionSpecs = retractOptionSpecs): ParsedRetract {
  return parseOptions<ParsedRetract>(specs, options, context);
}

function requireTallFor(type: string, rows: number, cols: number, name: string): void {
  if (stiefelTypes.has(type) && rows < cols) {
    throw new RangeError(
      `Expected rows ≥ cols (p ≥ k) for ${name} with retraction '${type}' but received ${rows}×${cols}`,
    );
  }
}

// ---- orthogonality measures ---------------------------------------------------------------------

/**
 * Scale-invariant orthogonality defect (‖YᵀY‖² − Σ diag²)/‖Y‖⁴: 0 iff the columns are mutually
 * orthogonal, unchanged by scaling Y; 0 when ‖Y‖² ≤ 1e-12.
 */
export function invariantOrthogonalityDefect(Y: Matrix): number {
  const m = expectMatrix(Y, 'Y');
  return callSync(() => native().defect(m.data, m.rows, m.cols));
}

/** The reference's `defect_fast`: the same defect. */
export const defectFast = invariantOrthogonalityDefect;

/** ∇ defect(Y) = 4·[Y(S − Diag S)/‖Y‖⁴ − defect·Y/‖Y‖²] with S = YᵀY. */
export function invariantOrthogonalityDefectGradient(Y: Matrix): Matrix {
  const m = expectMatrix(Y, 'Y');
  const r = callSync(() => native().defectGradient(m.data, 1, m.rows, m.cols, false));
  return { rows: m.rows, cols: m.cols, data: r.gradient };
}

/** ‖YᵀY − I‖²/k², the mean squared entry of YᵀY − I. */
export function basicOrthogonality(Y: Matrix): number {
  const m = expectMatrix(Y, 'Y');
  return callSync(() => native().basicOrthogonality(m.data, m.rows, m.cols));
}

/** Mean defect over a batch [B, p, k] (an element with ‖Y‖² ≤ 1e-12 counts as 0). */
export function invariantOrthogonalityDefectBatch(Y: Tensor): number {
  const b = expectBatch(Y, 'Y');
  return callSync(() => native().defectGradient(b.data, b.batch, b.rows, b.cols, true).value);
}

/** Gradient of the batch mean defect (it includes the 1/B of the mean). */
export function invariantOrthogonalityDefectGradientBatch(Y: Tensor): Tensor {
  const b = expectBatch(Y, 'Y');
  const r = callSync(() => native().defectGradient(b.data, b.batch, b.rows, b.cols, true));
  return { shape: [b.batch, b.rows, b.cols], data: r.gradient };
}

/** Mean of (YᵀY − I)² over all B·k² entries of a batch. */
export function basicOrthogonalityBatch(Y: Tensor): number {
  const b = expectBatch(Y, 'Y');
  const n = b.rows * b.cols;
  let sum = 0;
  for (let i = 0; i < b.batch; i++) {
    sum += callSync(() => native().basicOrthogonality(b.data.subarray(i * n, (i + 1) * n), b.rows, b.cols));
  }
  return sum / b.batch;
}

// ---- retractions ----------------------------------------------------------------------------------

/**
 * R_w(Y): moves Y toward the Stiefel manifold and restores its Frobenius norm. Returns a fresh
 * matrix; Y itself is returned as a copy when w = 0 or the retraction fails (as the reference).
 */
export function retract(Y: Matrix, options?: RetractOptions): Matrix {
  const o = parseRetract(options, 'retract()');
  const m = expectMatrix(Y, 'Y');
  requireTallFor(o.type, m.rows, m.cols, 'Y');
  const r = callSync(() => native().retract(m.data, 0, m.rows, m.cols, o.type, o.w, o.nsIterations, o.polarMethod));
  return { rows: m.rows, cols: m.cols, data: r.data };
}

/** Progress of a batch retraction: `iteration` matrices of `total` done. */
export interface BatchProgress {
  iteration: number;
  total: number;
}

const retractAsyncSpecs = { ...retractOptionSpecs, ...asyncOptionSpecs } as const satisfies OptionSpecs;

/** retract() on a worker thread. */
export function retractAsync(Y: Matrix, options?: RetractOptions & AsyncOptions<BatchProgress>): Promise<Matrix> {
  let o: ParsedRetract & AsyncOptions<BatchProgress>;
  let m: Matrix;
  try {
    o = parseRetract(options, 'retractAsync()', retractAsyncSpecs);
    m = expectMatrix(Y, 'Y');
    requireTallFor(o.type, m.rows, m.cols, 'Y');
  } catch (err) {
    return Promise.reject(err);
  }
  return runJob(
    [m.data],
    ([data], token, onProgress, interval) =>
      native().retractAsync(data!, 0, m.rows, m.cols, o.type, o.w, o.nsIterations, o.polarMethod, token, onProgress, interval),
    o,
  ).then((r) => ({ rows: m.rows, cols: m.cols, data: r.data }));
}

/**
 * Retracts each matrix of a batch [B, p, k]. As the reference: if w = 0 or any element has a tiny
 * or non-finite norm, the whole batch is returned unchanged; each element restores its own norm.
 */
export function retractBatch(Y: Tensor, options?: RetractOptions): Tensor {
  const o = parseRetract(options, 'retractBatch()');
  const b = expectBatch(Y, 'Y');
  requireTallFor(o.type, b.rows, b.cols, 'Y');
  const r = callSync(() =>
    native().retract(b.data, b.batch, b.rows, b.cols, o.type, o.w, o.nsIterations, o.polarMethod),
  );
  return { shape: [b.batch, b.rows, b.cols], data: r.data };
}

/** retractBatch() on a worker thread, with progress per matrix and cancellation between matrices. */
export function retractBatchAsync(Y: Tensor, options?: RetractOptions & AsyncOptions<BatchProgress>): Promise<Tensor> {
  let o: ParsedRetract & AsyncOptions<BatchProgress>;
  let b: ReturnType<typeof expectBatch>;
  try {
    o = parseRetract(options, 'retractBatchAsync()', retractAsyncSpecs);
    b = expectBatch(Y, 'Y');
    requireTallFor(o.type, b.rows, b.cols, 'Y');
  } catch (err) {
    return Promise.reject(err);
  }
  return runJob(
    [b.data],
    ([data], token, onProgress, interval) =>
      native().retractAsync(data!, b.batch, b.rows, b.cols, o.type, o.w, o.nsIterations, o.polarMethod, token, onProgress, interval),
    o,
    (r) => ({ iteration: r.iteration, total: r.total }),
  ).then((r) => ({ shape: [b.batch, b.rows, b.cols], data: r.data }));
}

// ---- inverse square root, Procrustes, QR, SVD --------------------------------------------------------

export interface InverseSqrtOptions {
  /** 'eig' (eigenvalues floored at epsilon), 'newtonSchulz' (coupled iteration on (A + εI)/‖A + εI‖₂),
   * 'diag' (diagonal only) or 'auto' (eig for k ≤ 128, else Newton–Schulz). Default 'auto'. */
  method?: 'eig' | 'newtonSchulz' | 'diag' | 'auto';
  /** Eigenvalue floor (eig), added to the diagonal (Newton–Schulz), diagonal floor (diag). Default 1e-8. */
  epsilon?: number;
  /** Newton–Schulz iterations (default 10). */
  nsIterations?: number;
}

const inverseSqrtSpecs = {
  method: { kind: 'enum', values: ['eig', 'newtonSchulz', 'diag', 'auto'], default: 'auto', description: 'algorithm' },
  epsilon: { kind: 'number', min: 0, default: 1e-8, description: 'regularization' },
  nsIterations: { kind: 'number', integer: true, min: 0, max: 10_000, default: 10, description: 'Newton–Schulz iterations' },
} as const satisfies OptionSpecs;

/** A^{-1/2} of a symmetric positive (semi)definite k×k matrix. */
export function inverseSqrt(A: Matrix, options?: InverseSqrtOptions): Matrix {
  const o = parseOptions<Required<InverseSqrtOptions>>(inverseSqrtSpecs, options, 'inverseSqrt()');
  const m = expectMatrix(A, 'A', { square: true });
  const data = callSync(() => native().inverseSqrt(m.data, m.rows, o.method, o.epsilon, o.nsIterations));
  return { rows: m.rows, cols: m.cols, data };
}

/** The orthogonal Q minimizing ‖AQ − B‖ (A, B of the same shape n×k): Q = UVᵀ where AᵀB = UΣVᵀ. */
export function procrustes(A: Matrix, B: Matrix): Matrix {
  const a = expectMatrix(A, 'A');
  const b = expectMatrix(B, 'B');
  expectSameShape(a, 'A', b, 'B');
  const data = callSync(() => native().procrustes(a.data, b.data, a.rows, a.cols));
  return { rows: a.cols, cols: a.cols, data };
}

/** Thin QR of a p×k matrix (p ≥ k): Q p×k with orthonormal columns, R k×k upper triangular (LAPACK signs). */
export function qr(Y: Matrix): { Q: Matrix; R: Matrix } {
  const m = expectMatrix(Y, 'Y', { tall: true });
  const r = callSync(() => native().qr(m.data, m.rows, m.cols));
  return { Q: { rows: m.rows, cols: m.cols, data: r.Q }, R: { rows: m.cols, cols: m.cols, data: r.R } };
}

/** Thin SVD Y = U·diag(S)·Vᵀ, r = min(p, k): U p×r, S descending, V k×r. */
export function svd(Y: Matrix): { U: Matrix; S: Float64Array; V: Matrix } {
  const m = expectMatrix(Y, 'Y');
  const r = Math.min(m.rows, m.cols);
  const out = callSync(() => native().svd(m.data, m.rows, m.cols));
  return { U: { rows: m.rows, cols: r, data: out.U }, S: out.S, V: { rows: m.cols, cols: r, data: out.V } };
}

// ---- non-negativity ----------------------------------------------------------------------------------

export type NonNegativity = 'none' | 'hard' | 'softplus';
export const nonNegativityModes: readonly NonNegativity[] = ['none', 'hard', 'softplus'];

/** 'hard' = max(Y, 0); 'softplus' = log(1 + eʸ) computed stably (exactly y above 20); 'none' = copy. */
export function applyNonNegativity(Y: Matrix, mode: NonNegativity): Matrix {
  const m = expectMatrix(Y, 'Y');
  const map = expectOneOf(mode, 'mode', nonNegativityModes);
  const data = callSync(() => native().nonNegativity(m.data, map));
  return { rows: m.rows, cols: m.cols, data };
}
