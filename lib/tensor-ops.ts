/**
 * The tensor toolkit (SPEC.md §9 conventions, as tensorly): C-order unfold/fold, Khatri–Rao
 * products, MTTKRP, CP reconstruction and the Frobenius norm. Factors use tensorly's layout: the factor
 * of mode m is a dₘ × r Matrix. Each function validates, then makes one native call.
 *
 * Conventions: `unfold(T, n)` is dₙ × Πₘ≠ₙ dₘ with the remaining modes in increasing order, the last
 * varying fastest; `khatriRao([A, B, …])` puts A's row index slowest; so for T = Σ_a ⊗ₘ Fₘ[:, a],
 * unfold(T, n) = Fₙ · khatriRao(F, {skip: n})ᵀ and mttkrp(T, F, n) = unfold(T, n) · khatriRao(F, {skip: n}).
 */
import type { Matrix } from './matrix.js';
import { native } from './native.js';
import { callSync } from './runtime.js';
import { maxTensorOrder, type Tensor } from './tensor.js';
import {
  describeValue,
  expectAllocatable,
  expectFiniteData,
  expectFloat64Array,
  expectInteger,
  expectIntact,
  expectMatricesIntact,
  expectMatrix,
  expectMatrixList,
  expectShapeInteger,
  isObjectArgument,
  ownKeys,
  readField,
  readFields,
  readList,
  scaledNorm,
  shapeProduct,
  unknownOption,
} from './validate.js';

declare module './native.js' {
  interface NativeBinding {
    unfold(T: Float64Array, shape: number[], mode: number): Float64Array;
    fold(M: Float64Array, shape: number[], mode: number): Float64Array;
    khatriRao(matrices: Float64Array[], rows: number[], rank: number): Float64Array;
    mttkrp(T: Float64Array, shape: number[], factors: Float64Array[], rank: number, mode: number): Float64Array;
    cpReconstruct(factors: Float64Array[], shape: number[], rank: number, weights: Float64Array | undefined): Float64Array;
    tensorNorm(T: Float64Array): number;
  }
}

export { maxTensorOrder };

/** Validates a Tensor {shape, data}: positive integer dimensions, order in [minOrder, 32], matching data. Returns a snapshot. */
export function expectTensor(v: unknown, name: string, minOrder = 1): Tensor {
  const what = `a Tensor {shape, data: Float64Array} for ${name}`;
  if (!isObjectArgument(v)) throw new TypeError(`Expected ${what} but received ${describeValue(v)}`);
  const t = readFields(v, ['shape', 'data'] as const, name);
  if (!Array.isArray(t.shape)) throw new TypeError(`Expected ${what} but received an object whose shape is ${describeValue(t.shape)}`);
  const dims = readList(t.shape, `${name}.shape`, 'an array of dimensions', maxTensorOrder + 1);
  if (dims.length < minOrder || dims.length > maxTensorOrder) {
    throw new RangeError(
      `Expected a tensor of order ${minOrder} to ${maxTensorOrder} for ${name} but received shape [${dims.length > 40 ? `${dims.length} dimensions` : dims.map((d) => (typeof d === 'number' ? d : describeValue(d))).join(', ')}]`,
    );
  }
  const shape = dims.map((d, i) => expectShapeInteger(d, `${name}.shape[${i}]`));
  const n = shapeProduct(shape, name);
  const data = expectFloat64Array(t.data, `${name}.data`, n, shape.join('*'));
  return { shape, data };
}

/** A tensor shape: an array of 1 to 32 positive integers with at most 2^32 elements in all. */
export function expectShape(shape: unknown, name: string): number[] {
  if (!Array.isArray(shape)) throw new TypeError(`Expected an array of dimensions for ${name} but received ${describeValue(shape)}`);
  const list = readList(shape, name, 'an array of dimensions', maxTensorOrder + 1);
  if (list.length < 1 || list.length > maxTensorOrder) {
    throw new RangeError(`Expected 1 to ${maxTensorOrder} dimensions for ${name} but received ${list.length}`);
  }
  const dims = list.map((d, i) => expectShapeInteger(d, `${name}[${i}]`));
  shapeProduct(dims, name);
  return dims;
}

function expectMode(mode: unknown, order: number, name = 'mode'): number {
  return expectInteger(mode, name, 0, order - 1, 'an integer mode');
}

/** Validates a list of factors with equal column counts (rank); `rows[m]`, when given, pins their rows. */
function expectFactors(factors: unknown, name: string, rows?: readonly number[]): { list: Matrix[]; rank: number } {
  if (!Array.isArray(factors)) {
    throw new TypeError(`Expected a non-empty array of matrices for ${name} but received ${describeValue(factors)}`);
  }
  const list = expectMatrixList(factors, name, {}, maxTensorOrder);
  if (list.length === 0) throw new RangeError(`Expected a non-empty array of matrices for ${name} but received an empty array`);
  if (rows && list.length !== rows.length) {
    throw new RangeError(`Expected one factor per mode (${rows.length}) for ${name} but received ${list.length}`);
  }
  const rank = list[0]!.cols;
  list.forEach((f, i) => {
    if (f.cols !== rank) throw new RangeError(`Expected ${rank} columns (the rank) for ${name}[${i}] but received ${f.cols}`);
    if (rows && f.rows !== rows[i]) {
      throw new RangeError(`Expected ${rows[i]} rows (dimension ${i} of the tensor) for ${name}[${i}] but received ${f.rows}`);
    }
  });
  return { list, rank };
}

/** Mode-n unfolding: dₙ × Πₘ≠ₙ dₘ, remaining modes in increasing order, the last fastest (C order). */
export function unfold(T: Tensor, mode: number): Matrix {
  const t = expectTensor(T, 'T');
  const m = expectMode(mode, t.shape.length);
  expectAllocatable(t.data.length, `the unfolding of T (${t.shape[m]}×${t.data.length / t.shape[m]!})`);
  const data = callSync(() => native().unfold(t.data, [...t.shape], m));
  return { rows: t.shape[m]!, cols: t.data.length / t.shape[m]!, data };
}

/** The inverse of unfold: a dₙ × (size/dₙ) matrix back into a tensor of `shape`. */
export function fold(M: Matrix, mode: number, shape: readonly number[]): Tensor {
  const dims = expectShape(shape, 'shape');
  const m = expectMode(mode, dims.length);
  const size = dims.reduce((a, b) => a * b, 1);
  const mat = expectMatrix(M, 'M', { finite: false });
  if (mat.rows !== dims[m] || mat.rows * mat.cols !== size) {
    throw new RangeError(`Expected a ${dims[m]}×${size / dims[m]!} matrix for M (mode ${m} of [${dims.join(', ')}]) but received ${mat.rows}×${mat.cols}`);
  }
  expectAllocatable(size, `the tensor of shape [${dims.join(', ')}] (shape)`);
  return { shape: dims, data: callSync(() => native().fold(mat.data, dims, m)) };
}

export interface KhatriRaoOptions {
  /** Index of a matrix to leave out (as tensorly's skip_matrix). */
  skip?: number;
}

/** Column-wise Kronecker product of matrices with equal column counts: (Π rows) × r, the first slowest. */
export function khatriRao(matrices: readonly Matrix[], options: KhatriRaoOptions = {}): Matrix {
  // Options first: their getters run before the matrices are read and checked.
  if (!isObjectArgument(options)) {
    throw new TypeError(`Expected an options object for khatriRao() but received ${describeValue(options)}`);
  }
  for (const key of ownKeys(options, 'the options of khatriRao()')) {
    if (key !== 'skip') throw unknownOption(key, ['skip'], 'khatriRao()');
  }
  const skipArg = readField(options, 'skip', 'options.skip of khatriRao()');
  const { list, rank } = expectFactors(matrices, 'matrices');
  const skip = skipArg === undefined ? -1 : expectMode(skipArg, list.length, 'options.skip');
  expectMatricesIntact(list, 'matrices');
  const kept = list.filter((_, i) => i !== skip);
  if (kept.length === 0) throw new RangeError('Expected at least one matrix left after options.skip for matrices but received none');
  const rows = kept.map((f) => f.rows);
  const n = shapeProduct([...rows, rank], 'the Khatri–Rao product of matrices');
  expectAllocatable(n, `the Khatri–Rao product of matrices (${n / rank}×${rank})`);
  const data = callSync(() => native().khatriRao(kept.map((f) => f.data), rows, rank));
  return { rows: n / rank, cols: rank, data };
}

/**
 * Matricized tensor times Khatri–Rao product: unfold(T, mode) · khatriRao(factors, {skip: mode}), a
 * d_mode × r matrix, computed without forming the Khatri–Rao product: one GEMM contracts the larger end
 * mode (0 or N−1, other than `mode`) into an r × size/d_c intermediate, then GEMVs contract each
 * component mode by mode. Extra memory: r·size/d_c + 2·size/(d_c·d_c') doubles (d_c' the next
 * contracted dimension). `factors` has one dₘ × r matrix per mode; factors[mode] is not used.
 */
export function mttkrp(T: Tensor, factors: readonly Matrix[], mode: number): Matrix {
  const t = expectTensor(T, 'T');
  const { list, rank } = expectFactors(factors, 'factors', t.shape);
  const m = expectMode(mode, t.shape.length);
  // The contraction's intermediate: r × size/d_c doubles for the larger end mode c ≠ mode (see above).
  const ends = [0, t.shape.length - 1].filter((c) => c !== m);
  const dc = Math.max(...ends.map((c) => t.shape[c]!));
  expectAllocatable(rank * (t.data.length / dc) * 2, `the MTTKRP workspace of T and factors (rank ${rank})`);
  expectIntact([t.data, t.data.length, 'T.data'], ...list.map((f, i): [Float64Array, number, string] => [f.data, f.rows * f.cols, `factors[${i}].data`]));
  const data = callSync(() => native().mttkrp(t.data, [...t.shape], list.map((f) => f.data), rank, m));
  return { rows: t.shape[m]!, cols: rank, data };
}

/** Σ_a weights[a] ⊗ₘ factors[m][:, a] (weights default to ones), a tensor of shape [rows of each factor]. */
export function cpReconstruct(factors: readonly Matrix[], weights?: Float64Array): Tensor {
  const { list, rank } = expectFactors(factors, 'factors');
  const shape = list.map((f) => f.rows);
  const size = shapeProduct(shape, 'the reconstruction of factors');
  let w: Float64Array | undefined;
  if (weights !== undefined) {
    w = expectFloat64Array(weights, 'weights', rank, 'the rank');
    expectFiniteData(w, 'weights');
  }
  expectAllocatable(size, `the reconstruction of factors (shape [${shape.join(', ')}])`);
  expectMatricesIntact(list, 'factors');
  const data = callSync(() => native().cpReconstruct(list.map((f) => f.data), shape, rank, w));
  return { shape, data };
}

/**
 * Frobenius norm √(Σ T²). Exact for every finite tensor: when the plain sum of squares overflows, it
 * is recomputed scaled by the largest |T|.
 */
export function tensorNorm(T: Tensor): number {
  const t = expectTensor(T, 'T');
  const norm = callSync(() => native().tensorNorm(t.data));
  if (Number.isFinite(norm)) return norm;
  const scaled = scaledNorm(t.data);
  if (Number.isNaN(scaled)) {
    const at = t.data.findIndex((x) => Number.isNaN(x));
    throw new RangeError(`Expected numbers that are not NaN in T.data but received NaN at [${at}]`);
  }
  return scaled;
}
