/**
 * The orthogonalization toolkit (SPEC.md §1–3): orthogonality measures, retractions toward the
 * Stiefel manifold (single and batch, sync and async), inverse square roots, Procrustes, thin QR/SVD
 * and non-negativity maps. Every function validates its arguments, then makes one native call.
 */
import { callDevice, checkDeviceMemory, deviceOptionSpecs, resolveDevice, type CudaBinding, type Device } from './cuda.js';
import { NumericalError } from './errors.js';
import type { Matrix } from './matrix.js';
import { checkMemory, float64Bytes } from './memory.js';
import { native } from './native.js';
import { callSync, runJob, type AsyncOptions } from './runtime.js';
import type { Tensor } from './tensor.js';
import {
  asyncOptionSpecs,
  expectBatch,
  expectMatrix,
  expectOneOf,
  expectAllocatable,
  expectIntact,
  expectSameShape,
  maxAbs,
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

// ---- memory and scale --------------------------------------------------------------------------------

/**
 * Refuses, before native work, a call whose result and workspace cannot fit: `largest` doubles in the
 * largest array (e.g. the k×k Gram) and `total` in all. `what` names the argument and its shape.
 */
export function checkWorkspace(largest: number, total: number, what: string): void {
  expectAllocatable(largest, what);
  checkMemory(float64Bytes(total), what);
}

function gramWhat(m: { rows: number; cols: number }, name: string, what = 'the k×k Gram matrix'): string {
  return `${what} of ${name} (${m.rows}×${m.cols}, k = ${m.cols})`;
}

/**
 * Entries this large square to ∞ in a Gram matrix; entries are divided by their largest magnitude
 * first when a result is scale-invariant (or scales in a known way).
 */
export const largeEntry = 1e100;

/** Y / s as a fresh array (s > 0), memory checked. */
function scaledCopy(data: Float64Array, s: number, name: string): Float64Array {
  checkMemory(float64Bytes(data.length), `a scaled copy of ${name}`);
  const out = new Float64Array(data.length);
  for (let i = 0; i < data.length; i++) out[i] = data[i]! / s;
  return out;
}

/** A native result that is not finite for finite input: overflow, reported instead of returned. */
function expectFiniteResult(value: number, context: string, name: string, data: Float64Array): number {
  if (Number.isFinite(value)) return value;
  throw new NumericalError(
    `${context}: the result is ${value}: squares or products of ${name}'s entries (largest magnitude ${maxAbs(data).toExponential(3)}) overflow a double; rescale ${name}`,
  );
}

function expectFiniteArray(data: Float64Array, context: string, name: string): Float64Array {
  for (let i = 0; i < data.length; i++) {
    if (!Number.isFinite(data[i]!)) {
      throw new NumericalError(
        `${context}: the result holds ${data[i]} at [${i}] for finite ${name}: an intermediate overflowed a double; rescale ${name}`,
      );
    }
  }
  return data;
}

// ---- orthogonality measures ---------------------------------------------------------------------

/**
 * Scale-invariant orthogonality defect (‖YᵀY‖² − Σ diag²)/‖Y‖⁴: 0 iff the columns are mutually
 * orthogonal, unchanged by scaling Y; 0 when ‖Y‖² ≤ 1e-12. Y with huge entries is scaled by its
 * largest magnitude first (the defect does not change), so the Gram cannot overflow.
 */
export function invariantOrthogonalityDefect(Y: Matrix): number {
  const m = expectMatrix(Y, 'Y');
  return defectOfChecked(m, maxAbs(m.data));
}

/**
 * invariantOrthogonalityDefect of a matrix already checked (finite entries, consistent shape), whose
 * largest magnitude the caller has: a solver's own result, without a second validation pass.
 */
export function defectOfChecked(m: Matrix, largest: number): number {
  checkWorkspace(m.cols * m.cols, m.cols * m.cols, gramWhat(m, 'Y'));
  const data = largest > largeEntry ? scaledCopy(m.data, largest, 'Y') : m.data;
  return expectFiniteResult(callSync(() => native().defect(data, m.rows, m.cols)), 'invariantOrthogonalityDefect()', 'Y', m.data);
}

/** The reference's `defect_fast`: the same defect. */
export const defectFast = invariantOrthogonalityDefect;

/**
 * ∇ defect(Y) = 4·[Y(S − Diag S)/‖Y‖⁴ − defect·Y/‖Y‖²] with S = YᵀY. Y with huge entries is computed
 * as ∇defect(Y/s)/s (the gradient of a scale-invariant function scales as 1/s).
 */
export function invariantOrthogonalityDefectGradient(Y: Matrix): Matrix {
  const m = expectMatrix(Y, 'Y');
  const pk = m.rows * m.cols;
  checkWorkspace(Math.max(pk, m.cols * m.cols), 2 * pk + m.cols * m.cols, gramWhat(m, 'Y', 'the gradient and the k×k Gram matrix'));
  const s = maxAbs(m.data);
  const scaled = s > largeEntry;
  const r = callSync(() => native().defectGradient(scaled ? scaledCopy(m.data, s, 'Y') : m.data, 1, m.rows, m.cols, false));
  if (scaled) for (let i = 0; i < r.gradient.length; i++) r.gradient[i]! /= s;
  return { rows: m.rows, cols: m.cols, data: expectFiniteArray(r.gradient, 'invariantOrthogonalityDefectGradient()', 'Y') };
}

/** ‖YᵀY − I‖²/k², the mean squared entry of YᵀY − I (not scale-invariant: overflow is a NumericalError). */
export function basicOrthogonality(Y: Matrix): number {
  const m = expectMatrix(Y, 'Y');
  checkWorkspace(m.cols * m.cols, m.cols * m.cols, gramWhat(m, 'Y'));
  return expectFiniteResult(callSync(() => native().basicOrthogonality(m.data, m.rows, m.cols)), 'basicOrthogonality()', 'Y', m.data);
}

/** Scales each element of a batch with huge entries by the batch's largest magnitude (defects are per element scale-invariant). */
function batchForDefect(b: { data: Float64Array }): { data: Float64Array; s: number } {
  const s = maxAbs(b.data);
  return s > largeEntry ? { data: scaledCopy(b.data, s, 'Y'), s } : { data: b.data, s: 1 };
}

/** Mean defect over a batch [B, p, k] (an element with ‖Y‖² ≤ 1e-12 counts as 0). */
export function invariantOrthogonalityDefectBatch(Y: Tensor): number {
  const b = expectBatch(Y, 'Y');
  checkWorkspace(Math.max(b.data.length, b.cols * b.cols), b.data.length + b.cols * b.cols, gramWhat(b, 'each matrix of Y'));
  const { data } = batchForDefect(b);
  return expectFiniteResult(
    callSync(() => native().defectGradient(data, b.batch, b.rows, b.cols, true).value),
    'invariantOrthogonalityDefectBatch()',
    'Y',
    b.data,
  );
}

/** Gradient of the batch mean defect (it includes the 1/B of the mean). */
export function invariantOrthogonalityDefectGradientBatch(Y: Tensor): Tensor {
  const b = expectBatch(Y, 'Y');
  checkWorkspace(Math.max(b.data.length, b.cols * b.cols), 2 * b.data.length + b.cols * b.cols, gramWhat(b, 'each matrix of Y', 'the gradient and the k×k Gram matrix'));
  const { data, s } = batchForDefect(b);
  const r = callSync(() => native().defectGradient(data, b.batch, b.rows, b.cols, true));
  if (s !== 1) for (let i = 0; i < r.gradient.length; i++) r.gradient[i]! /= s;
  return { shape: [b.batch, b.rows, b.cols], data: expectFiniteArray(r.gradient, 'invariantOrthogonalityDefectGradientBatch()', 'Y') };
}

/** Mean of (YᵀY − I)² over all B·k² entries of a batch. */
export function basicOrthogonalityBatch(Y: Tensor): number {
  const b = expectBatch(Y, 'Y');
  checkWorkspace(b.cols * b.cols, b.cols * b.cols, gramWhat(b, 'each matrix of Y'));
  const n = b.rows * b.cols;
  let sum = 0;
  for (let i = 0; i < b.batch; i++) {
    sum += callSync(() => native().basicOrthogonality(b.data.subarray(i * n, (i + 1) * n), b.rows, b.cols));
  }
  return expectFiniteResult(sum / b.batch, 'basicOrthogonalityBatch()', 'Y', b.data);
}

// ---- retractions ----------------------------------------------------------------------------------

/** p×k doubles a retraction holds besides its input: the result, SVD/Gram factors and k×k work matrices. */
function checkRetractMemory(batch: number, p: number, k: number, name: string): void {
  const pk = p * k;
  checkWorkspace(Math.max(batch * pk, k * k), (batch + 2) * pk + 4 * k * k, `the retraction of ${name} (${batch > 1 ? `${batch} matrices of ` : ''}${p}×${k}) and its workspace`);
}

/**
 * Which retractions are positively homogeneous, R(cY) = c·R(Y) (the Stiefel direction does not depend
 * on the scale and the result restores ‖Y‖): the hard ones and the soft ones at w = 0 or 1, Cayley
 * excepted. Those are computed as s·R(Y/s) for a matrix with huge entries (s its largest magnitude),
 * where ‖Y‖² would overflow and the reference's rule would hand Y back unchanged.
 */
function homogeneous(type: string, w: number): boolean {
  if (type === 'cayley' || type === 'softCayley') return w === 0;
  return !type.startsWith('soft') || w === 0 || w === 1;
}

function scaleBatch(
  data: Float64Array,
  batch: number,
  n: number,
  o: { type: string; w: number },
  context: string,
): { data: Float64Array; scales: Float64Array | undefined } {
  const scales = new Float64Array(batch).fill(1);
  let any = false;
  for (let e = 0; e < batch; e++) {
    const s = maxAbs(data.subarray(e * n, (e + 1) * n));
    if (s > largeEntry) {
      scales[e] = s;
      any = true;
    }
  }
  if (!any) return { data, scales: undefined };
  if (!homogeneous(o.type, o.w)) {
    let sum = 0;
    for (let i = 0; i < data.length; i++) sum += data[i]! * data[i]!;
    if (Number.isFinite(sum)) return { data, scales: undefined };
    throw new NumericalError(
      `${context}: ‖Y‖² overflows a double (largest |entry| ${maxAbs(data).toExponential(3)}) and retraction '${o.type}' with w = ${o.w} ` +
        'is not scale-invariant, so Y cannot be rescaled for it; rescale Y',
    );
  }
  checkMemory(float64Bytes(data.length), 'a scaled copy of Y');
  const out = new Float64Array(data.length);
  for (let e = 0; e < batch; e++) for (let i = e * n; i < (e + 1) * n; i++) out[i] = data[i]! / scales[e]!;
  return { data: out, scales };
}

function unscaleBatch(data: Float64Array, n: number, scales: Float64Array | undefined, context: string): Float64Array {
  if (scales) for (let e = 0; e < scales.length; e++) for (let i = e * n; i < (e + 1) * n; i++) data[i]! *= scales[e]!;
  return expectFiniteArray(data, context, 'Y');
}

/** retract()'s options: the retraction and where it runs. */
export interface RetractDeviceOptions extends RetractOptions {
  /**
   * 'cpu' (default), 'cuda' or 'auto' (docs/cuda.md). The GPU computes the polar types ('polar',
   * 'softPolar') with polarMethod 'auto' or 'gram' through YᵀY, as the CPU's Gram path; where the CPU
   * would take the SVD (YᵀY too ill-conditioned) the GPU result is refused and the CPU's SVD runs.
   */
  device?: Device;
}

const retractDeviceSpecs = { ...retractOptionSpecs, ...deviceOptionSpecs } as const satisfies OptionSpecs;

/** What the device path of the retraction lacks for these options, or undefined when it has it. */
function retractUnsupportedOnDevice(o: ParsedRetract): string | undefined {
  if (o.type !== 'polar' && o.type !== 'softPolar') return `retraction '${o.type}' (the device has 'polar' and 'softPolar')`;
  if (o.polarMethod === 'svd') return "polarMethod 'svd' (the device computes the polar factor through YᵀY)";
  return undefined;
}

/** λmax/λmin of YᵀY the Gram path accepts: the CPU's limits (native/kernels/retraction_core.hpp). */
const gramConditionLimit = { auto: 1e4, gram: 1e15 } as const;

function retractOnDevice(binding: CudaBinding, data: Float64Array, p: number, k: number, o: ParsedRetract, context: string): Float64Array {
  if (o.w === 0) return data.slice();  // every retraction returns Y unchanged at w = 0
  const w = o.type === 'softPolar' ? o.w : 1;
  // Y, the result, YᵀY and four k×k work matrices, and cuSOLVER's workspace (≤ a few k² doubles).
  checkDeviceMemory(binding, float64Bytes(2 * p * k + 8 * k * k), context, `the retraction of Y (${p}×${k}) on the GPU`);
  const limit = gramConditionLimit[o.polarMethod === 'gram' ? 'gram' : 'auto'];
  const r = callDevice(context, () => binding.polarGram(data, p, k, w, limit));
  if (r.outcome === 'done') return r.data;
  if (r.outcome === 'unchanged') return data.slice();
  // Ill-conditioned YᵀY: the CPU's own fallback, the SVD path.
  return callSync(() => native().retract(data, 0, p, k, o.type, o.w, o.nsIterations, 'svd')).data;
}

/**
 * R_w(Y): moves Y toward the Stiefel manifold and restores its Frobenius norm. Returns a fresh
 * matrix; Y itself is returned as a copy when w = 0 or the retraction fails (as the reference).
 */
export function retract(Y: Matrix, options?: RetractDeviceOptions): Matrix {
  const o = parseOptions<ParsedRetract & { device: Device }>(retractDeviceSpecs, options, 'retract()');
  const m = expectMatrix(Y, 'Y');
  requireTallFor(o.type, m.rows, m.cols, 'Y');
  checkRetractMemory(1, m.rows, m.cols, 'Y');
  const n = m.rows * m.cols;
  const { binding } = resolveDevice(o.device, 'retract()', n, retractUnsupportedOnDevice(o));
  const x = scaleBatch(m.data, 1, n, o, 'retract()');
  const data = binding
    ? retractOnDevice(binding, x.data, m.rows, m.cols, o, 'retract()')
    : callSync(() => native().retract(x.data, 0, m.rows, m.cols, o.type, o.w, o.nsIterations, o.polarMethod)).data;
  return { rows: m.rows, cols: m.cols, data: unscaleBatch(data, n, x.scales, 'retract()') };
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
  let x: ReturnType<typeof scaleBatch>;
  try {
    o = parseRetract(options, 'retractAsync()', retractAsyncSpecs);
    m = expectMatrix(Y, 'Y');
    requireTallFor(o.type, m.rows, m.cols, 'Y');
    checkRetractMemory(1, m.rows, m.cols, 'Y');
    x = scaleBatch(m.data, 1, m.rows * m.cols, o, 'retractAsync()');
  } catch (err) {
    return Promise.reject(err);
  }
  return runJob(
    [x.data],
    ([data], token, onProgress, interval) =>
      native().retractAsync(data!, 0, m.rows, m.cols, o.type, o.w, o.nsIterations, o.polarMethod, token, onProgress, interval),
    o,
  ).then((r) => ({ rows: m.rows, cols: m.cols, data: unscaleBatch(r.data, m.rows * m.cols, x.scales, 'retractAsync()') }));
}

/**
 * Retracts each matrix of a batch [B, p, k]. As the reference: if w = 0 or any element has a tiny
 * or non-finite norm, the whole batch is returned unchanged; each element restores its own norm.
 */
export function retractBatch(Y: Tensor, options?: RetractOptions): Tensor {
  const o = parseRetract(options, 'retractBatch()');
  const b = expectBatch(Y, 'Y');
  requireTallFor(o.type, b.rows, b.cols, 'Y');
  checkRetractMemory(b.batch, b.rows, b.cols, 'Y');
  const n = b.rows * b.cols;
  const x = scaleBatch(b.data, b.batch, n, o, 'retractBatch()');
  const r = callSync(() => native().retract(x.data, b.batch, b.rows, b.cols, o.type, o.w, o.nsIterations, o.polarMethod));
  return { shape: [b.batch, b.rows, b.cols], data: unscaleBatch(r.data, n, x.scales, 'retractBatch()') };
}

/** retractBatch() on a worker thread, with progress per matrix and cancellation between matrices. */
export function retractBatchAsync(Y: Tensor, options?: RetractOptions & AsyncOptions<BatchProgress>): Promise<Tensor> {
  let o: ParsedRetract & AsyncOptions<BatchProgress>;
  let b: ReturnType<typeof expectBatch>;
  let x: ReturnType<typeof scaleBatch>;
  try {
    o = parseRetract(options, 'retractBatchAsync()', retractAsyncSpecs);
    b = expectBatch(Y, 'Y');
    requireTallFor(o.type, b.rows, b.cols, 'Y');
    checkRetractMemory(b.batch, b.rows, b.cols, 'Y');
    x = scaleBatch(b.data, b.batch, b.rows * b.cols, o, 'retractBatchAsync()');
  } catch (err) {
    return Promise.reject(err);
  }
  return runJob(
    [x.data],
    ([data], token, onProgress, interval) =>
      native().retractAsync(data!, b.batch, b.rows, b.cols, o.type, o.w, o.nsIterations, o.polarMethod, token, onProgress, interval),
    o,
    (r) => ({ iteration: r.iteration, total: r.total }),
  ).then((r) => ({ shape: [b.batch, b.rows, b.cols], data: unscaleBatch(r.data, b.rows * b.cols, x.scales, 'retractBatchAsync()') }));
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
  const kk = m.rows * m.cols;
  checkWorkspace(kk, 6 * kk, `A^{-1/2} of A (${m.rows}×${m.cols}) and its eigen/Newton–Schulz workspace`);
  const data = callSync(() => native().inverseSqrt(m.data, m.rows, o.method, o.epsilon, o.nsIterations));
  return { rows: m.rows, cols: m.cols, data: expectFiniteArray(data, 'inverseSqrt()', 'A') };
}

/** data / its largest magnitude when that is huge (for results invariant under positive scaling). */
function tamed(data: Float64Array, name: string): { data: Float64Array; s: number } {
  const s = maxAbs(data);
  return s > largeEntry ? { data: scaledCopy(data, s, name), s } : { data, s: 1 };
}

/**
 * The orthogonal Q minimizing ‖AQ − B‖ (A, B of the same shape n×k): Q = UVᵀ where AᵀB = UΣVᵀ.
 * Q does not change when A or B is scaled, so huge entries are scaled away first.
 */
export function procrustes(A: Matrix, B: Matrix): Matrix {
  const a = expectMatrix(A, 'A');
  const b = expectMatrix(B, 'B');
  expectSameShape(a, 'A', b, 'B');
  expectIntact([a.data, a.rows * a.cols, 'A.data']);
  const k = a.cols;
  checkWorkspace(k * k, 5 * k * k, `the k×k matrices AᵀB, U, V and Q of A and B (${a.rows}×${k}, k = ${k})`);
  const ta = tamed(a.data, 'A');
  const tb = tamed(b.data, 'B');
  const data = callSync(() => native().procrustes(ta.data, tb.data, a.rows, a.cols));
  return { rows: k, cols: k, data: expectFiniteArray(data, 'procrustes()', 'A and B') };
}

/**
 * Thin QR of a p×k matrix (p ≥ k): Q p×k with orthonormal columns, R k×k upper triangular (LAPACK
 * signs). Huge entries are scaled away first (Q is unchanged, R scales back).
 */
export function qr(Y: Matrix): { Q: Matrix; R: Matrix } {
  const m = expectMatrix(Y, 'Y', { tall: true });
  const pk = m.rows * m.cols;
  checkWorkspace(pk, 2 * pk + 2 * m.cols * m.cols, `the QR factors of Y (${m.rows}×${m.cols})`);
  const t = tamed(m.data, 'Y');
  const r = callSync(() => native().qr(t.data, m.rows, m.cols));
  if (t.s !== 1) for (let i = 0; i < r.R.length; i++) r.R[i]! *= t.s;
  return {
    Q: { rows: m.rows, cols: m.cols, data: expectFiniteArray(r.Q, 'qr()', 'Y') },
    R: { rows: m.cols, cols: m.cols, data: expectFiniteArray(r.R, 'qr()', 'Y') },
  };
}

/** Thin SVD Y = U·diag(S)·Vᵀ, r = min(p, k): U p×r, S descending, V k×r. Huge entries are scaled away first. */
export function svd(Y: Matrix): { U: Matrix; S: Float64Array; V: Matrix } {
  const m = expectMatrix(Y, 'Y');
  const r = Math.min(m.rows, m.cols);
  checkWorkspace(Math.max(m.rows * r, m.cols * r), 2 * m.rows * m.cols + (m.rows + m.cols) * r + 2 * r * r + r, `the SVD of Y (${m.rows}×${m.cols})`);
  const t = tamed(m.data, 'Y');
  const out = callSync(() => native().svd(t.data, m.rows, m.cols));
  if (t.s !== 1) for (let i = 0; i < out.S.length; i++) out.S[i]! *= t.s;
  return {
    U: { rows: m.rows, cols: r, data: expectFiniteArray(out.U, 'svd()', 'Y') },
    S: expectFiniteArray(out.S, 'svd()', 'Y'),
    V: { rows: m.cols, cols: r, data: expectFiniteArray(out.V, 'svd()', 'Y') },
  };
}

// ---- non-negativity ----------------------------------------------------------------------------------

export type NonNegativity = 'none' | 'hard' | 'softplus';
export const nonNegativityModes: readonly NonNegativity[] = ['none', 'hard', 'softplus'];

/** 'hard' = max(Y, 0); 'softplus' = log(1 + eʸ) computed stably (exactly y above 20); 'none' = copy. */
export function applyNonNegativity(Y: Matrix, mode: NonNegativity): Matrix {
  const map = expectOneOf(mode, 'mode', nonNegativityModes);
  const m = expectMatrix(Y, 'Y');
  checkWorkspace(m.rows * m.cols, m.rows * m.cols, `the result for Y (${m.rows}×${m.cols})`);
  const data = callSync(() => native().nonNegativity(m.data, map));
  return { rows: m.rows, cols: m.cols, data };
}
