/**
 * Missing values and entry weights for the NMF family (docs/missing-values.md): the options
 * `weights`, `mask` and `missing`, checked in full here before any native work, and turned into what
 * the bindings take — dense entry weights ω (0 = missing) or, for CSR data, `missing: 'absent'` or
 * the list of its missing entries (a mask given as {rows, cols}). Missing entries never densify a
 * CSR input.
 */
import type { CsrMatrix, Matrix } from '../matrix.js';
import { native } from '../native.js';
import {
  describeValue,
  expectFiniteData,
  expectFloat64Array,
  expectInteger,
  expectNonNegativeData,
  isObjectArgument,
  readFields,
  readList,
  scaledNorm,
  subName,
  typedArrayName,
  type OptionSpecs,
} from '../validate.js';
import { expectDataMatrix, type DataMatrix } from './sparse.js';

/**
 * Which entries are missing: a boolean array (or Uint8Array) of rows·cols entries in row-major order,
 * true/1 = missing, or an index list {rows, cols} of the missing entries' row and column indices.
 */
export type MissingMask = ArrayLike<boolean | number> | { rows: ArrayLike<number>; cols: ArrayLike<number> };

export interface MissingOptions {
  /** Entry weights ω ≥ 0, a Matrix of the data's shape (dense data): the objective is ½Σω(a − m)²; 0 = missing. */
  weights?: Matrix;
  /**
   * The missing entries. Dense data: a boolean array or an index list (they may hold NaN). CSR data:
   * an index list {rows, cols} of distinct entries, stored or absent (its stored values must still be
   * finite and ≥ 0); the list, never a rows×cols array, reaches the solver.
   */
  mask?: MissingMask;
  /**
   * 'nan': NaN entries of dense data are missing. 'absent': the absent entries of CSR data are missing
   * (only the stored entries, explicit zeros included, are observed). 'observed' (default): nothing
   * beyond `weights`/`mask` is missing; CSR's absent entries are observed zeros.
   */
  missing?: 'observed' | 'nan' | 'absent';
}

function checkWeights(v: unknown, name: string): unknown {
  if (!isObjectArgument(v)) throw new TypeError(`Expected a Matrix {rows, cols, data} of weights ≥ 0 for ${name} but received ${describeValue(v)}`);
  const f = readFields(v, ['rows', 'cols', 'data'] as const, name);
  const data = expectFloat64Array(f.data, `${name}.data`);
  for (let i = 0; i < data.length; i++) {
    const w = data[i]!;
    if (!(w >= 0) || w === Infinity) throw new RangeError(`Expected finite weights ≥ 0 in ${name} but received ${describeValue(w)} at index ${i}`);
  }
  return { rows: f.rows, cols: f.cols, data: data.slice() };
}

function checkMask(v: unknown, name: string): unknown {
  if (isObjectArgument(v) && typedArrayName(v) === undefined && !Array.isArray(v)) {
    const f = readFields(v, ['rows', 'cols'] as const, name);
    const rowsName = subName(name, '.rows'), colsName = subName(name, '.cols');
    const rows = readList(f.rows, rowsName, 'an array of row indices');
    const cols = readList(f.cols, colsName, 'an array of column indices');
    if (rows.length !== cols.length) {
      throw new RangeError(`Expected ${rowsName} and ${colsName.split(' of ')[0]} of the same length but received ${rows.length} and ${cols.length}`);
    }
    return {
      rows: Int32Array.from(rows, (x, k) => expectInteger(x, subName(name, `.rows[${k}]`), 0, 2 ** 31 - 2, 'a row index')),
      cols: Int32Array.from(cols, (x, k) => expectInteger(x, subName(name, `.cols[${k}]`), 0, 2 ** 31 - 2, 'a column index')),
    };
  }
  const name0 = typedArrayName(v);
  if (name0 !== undefined && name0 !== 'Uint8Array') {
    throw new TypeError(`Expected a boolean array, a Uint8Array or an index list {rows, cols} for ${name} but received ${describeValue(v)}`);
  }
  const list = readList(v, name, 'a boolean array, a Uint8Array or an index list {rows, cols}');
  const flags = new Uint8Array(list.length);
  list.forEach((x, k) => {
    if (x === true || x === 1) flags[k] = 1;
    else if (x !== false && x !== 0) throw new TypeError(`Expected true/false or 1/0 in ${name} but received ${describeValue(x)} at index ${k}`);
  });
  return flags;
}

/** The option specs of `weights`, `mask` and `missing` (also the CLI's flags). */
export const missingOptionSpecs = {
  weights: { kind: 'custom', description: "entry weights ≥ 0, a Matrix of the data's shape (0 = missing)", check: checkWeights },
  mask: { kind: 'custom', description: 'missing entries: a boolean array of rows·cols (true = missing) or an index list {rows, cols}', check: checkMask },
  missing: {
    kind: 'enum',
    values: ['observed', 'nan', 'absent'],
    default: 'observed',
    description: "'nan': NaN entries are missing; 'absent': CSR's absent entries are missing",
  },
} as const satisfies OptionSpecs;

/** A per-stratum list (an array of masks/matrices, null for a stratum without) or one value. */
function perStratum(check: (v: unknown, name: string) => unknown, isSingle: (v: unknown[]) => boolean) {
  return (v: unknown, name: string): unknown => {
    if (!Array.isArray(v) || isSingle(v)) return check(v, name);
    return readList(v, name, 'an array (one entry per stratum)').map((x, s) => (x === null || x === undefined ? undefined : check(x, `${name}[${s}]`)));
  };
}

/**
 * The same options for stratifiedNmf: `weights` and `mask` are arrays with one entry per stratum
 * (null: none), or — for stratifiedNmf.fromLabels — one value for the whole matrix A.
 */
export const stratifiedMissingOptionSpecs = {
  weights: {
    ...missingOptionSpecs.weights,
    description: 'entry weights ≥ 0: one Matrix per stratum (fromLabels: one of the shape of A)',
    check: perStratum(checkWeights, () => false),
  },
  mask: {
    ...missingOptionSpecs.mask,
    description: 'missing entries: one mask per stratum (fromLabels: one for A), as for nmf',
    check: perStratum(checkMask, (v) => v.length > 0 && (typeof v[0] === 'boolean' || typeof v[0] === 'number')),
  },
  missing: missingOptionSpecs.missing,
} as const satisfies OptionSpecs;

export type ParsedMissing = { weights?: { rows: unknown; cols: unknown; data: Float64Array }; mask?: Uint8Array | { rows: Int32Array; cols: Int32Array }; missing: 'observed' | 'nan' | 'absent' };

/** What a binding takes for one data matrix, and what the result reports. */
export interface PreparedMissing {
  /** Dense weights (rows·cols), 0 where missing; undefined when every entry is observed with weight 1. */
  weights?: Float64Array;
  /** CSR data whose absent entries are missing. */
  absent: boolean;
  /** √Σωa² over the observed entries (the loss's normalizer). */
  norm: number;
  /** Entries of weight ≠ 1 (the kernel's list; the stored entries for 'absent'). */
  listed: number;
  /** CSR data with a mask: its missing entries, distinct, sorted by row then column. */
  entries?: { rows: Int32Array; cols: Int32Array };
  /** Doubles of the data's copy the binding zeroes at `entries` (CSR: values, indices and indptr). */
  copied: number;
}

/**
 * √Σx² of dense data whose entries must be finite and ≥ 0, checked and summed in one native pass
 * (nonNegativeNorm); only where that pass finds something to look at (a defect, −0, a sum of squares
 * outside the plain sum's range) do `check` (the JS checks, which throw naming the defect) and the
 * scaled norm run. Matrices (prepareMissing) and tensors (stratified-ntf.ts) alike.
 */
export function checkedNonNegativeNorm(data: Float64Array, check: () => void): number {
  const norm = native().nonNegativeNorm(data);
  if (!Number.isNaN(norm)) return norm;
  check();
  return scaledNorm(data);
}

/** True when any missing-value option asks for more than the plain, fully observed problem. */
export function wantsMissing(o: ParsedMissing): boolean {
  return o.weights !== undefined || o.mask !== undefined || o.missing !== 'observed';
}

/**
 * Validates data with its missing-value options: dense data may hold NaN only where it is missing
 * (mask, weight 0 or missing 'nan'); weights/mask need dense data of their shape; 'absent' needs CSR.
 * Returns the data snapshot and the weights for the binding.
 */
export function prepareMissing(
  A: unknown,
  name: string,
  o: ParsedMissing,
  context: string,
  /** Strata: missing 'absent' concerns the CSR strata only (a dense stratum has no absent entries). */
  absentForCsrOnly = false,
  /** Signed data (NSA-Flow's fidelity): observed entries need only be finite. */
  allowNegative = false,
): { data: DataMatrix; missing: PreparedMissing } {
  if (!wantsMissing(o)) {
    // Dense data: its values are checked, and its norm taken, in one native pass (nonNegativeNorm);
    // only when that pass finds something to look at (a defect, −0, a norm out of the plain sum's
    // range) do the JS checks run, which name the defect, and the scaled norm. CSR: checked in full here.
    const data = expectDataMatrix(A, name, { nonNegative: true, finite: false });
    const norm =
      'indptr' in data
        ? scaledNorm(data.data)
        : checkedNonNegativeNorm(data.data, () => {
            expectFiniteData(data.data, name, data.cols);
            expectNonNegativeData(data.data, name, data.cols);
          });
    return { data, missing: { absent: false, norm, listed: 0, copied: 0 } };
  }
  const probe = expectDataMatrix(A, name, { nonNegative: false, finite: false });
  if ('indptr' in probe) {
    if (o.weights !== undefined || o.mask instanceof Uint8Array) {
      throw new RangeError(
        `Expected dense data for options.${o.weights !== undefined ? 'weights' : 'mask'} of ${context} but ${name} is CSR (use missing 'absent': only the stored entries are observed${o.weights === undefined ? '; or give the missing entries as an index list {rows, cols}' : ''})`,
      );
    }
    if (o.mask !== undefined) {
      if (o.missing === 'absent') {
        throw new RangeError(`Expected missing 'observed' with an index-list options.mask of ${context} but received 'absent' (the absent entries of ${name} are missing already)`);
      }
      return maskedCsr(probe as CsrMatrix, name, o.mask, context);
    }
    if (o.missing === 'nan' && !absentForCsrOnly) {
      throw new RangeError(`Expected dense data for options.missing 'nan' of ${context} but ${name} is CSR (use missing 'absent')`);
    }
    const csr = probe as CsrMatrix;
    csr.data.forEach((x, p) => {
      if (x < 0) throw new RangeError(`Expected non-negative values in ${name} but received ${x} at stored entry ${p}`);
    });
    // (CSR holds no NaN: with 'nan' among strata a CSR stratum is fully observed.)
    const absent = o.missing === 'absent';
    return { data: csr, missing: { absent, norm: scaledNorm(csr.data), listed: absent ? csr.data.length : 0, copied: 0 } };
  }
  if (o.missing === 'absent' && !absentForCsrOnly) throw new RangeError(`Expected CSR data for options.missing 'absent' of ${context} but ${name} is dense (give a mask or weights)`);
  const { rows, cols, data } = probe;
  const size = rows * cols;
  const omega = new Float64Array(size).fill(1);
  if (o.weights !== undefined) {
    if (o.weights.rows !== rows || o.weights.cols !== cols || o.weights.data.length !== size) {
      throw new RangeError(`Expected a ${rows}×${cols} Matrix (the shape of ${name}) for options.weights of ${context} but received ${describeValue(o.weights.rows)}×${describeValue(o.weights.cols)} with ${o.weights.data.length} values`);
    }
    omega.set(o.weights.data);
  }
  if (o.mask instanceof Uint8Array) {
    if (o.mask.length !== size) {
      throw new RangeError(`Expected ${size} entries (rows·cols of ${name}) for options.mask of ${context} but received ${o.mask.length}`);
    }
    for (let k = 0; k < size; k++) if (o.mask[k]) omega[k] = 0;
  } else if (o.mask !== undefined) {
    for (let k = 0; k < o.mask.rows.length; k++) {
      const i = o.mask.rows[k]!, j = o.mask.cols[k]!;
      if (i >= rows || j >= cols) {
        throw new RangeError(`Expected indices within ${rows}×${cols} (the shape of ${name}) for options.mask of ${context} but received [${i}, ${j}] at position ${k}`);
      }
      omega[i * cols + j] = 0;
    }
  }
  let listed = 0;
  for (let k = 0; k < size; k++) {
    const x = data[k]!;
    if (Number.isNaN(x) && o.missing === 'nan') omega[k] = 0;
    if (omega[k] === 0) {
      listed++;
      continue;
    }
    if (omega[k] !== 1) listed++;
    if (x - x !== 0 || (x < 0 && !allowNegative)) {
      const where = `[${Math.floor(k / cols)}, ${k % cols}]`;
      if (Number.isNaN(x)) {
        throw new RangeError(`Expected finite values in ${name} at observed entries but received NaN at ${where} (mark missing entries with options.mask, a weight 0 or missing 'nan')`);
      }
      throw new RangeError(`Expected finite${allowNegative ? '' : ' non-negative'} values in ${name} at observed entries but received ${describeValue(x)} at ${where}`);
    }
  }
  // √Σωa²: the plain norm (the same number, bit for bit) when every weight is 1.
  let norm: number;
  if (listed === 0) norm = scaledNorm(data);
  else {
    const weighted = new Float64Array(size);
    for (let k = 0; k < size; k++) weighted[k] = omega[k] === 0 ? 0 : Math.sqrt(omega[k]!) * data[k]!;
    norm = scaledNorm(weighted);
  }
  const dense: Matrix = { rows, cols, data };
  return { data: dense, missing: { weights: listed === 0 ? undefined : omega, absent: false, norm, listed, copied: 0 } };
}

/**
 * The missing entries of CSR data as an index list (checked: in range, each entry once), sorted by
 * row then column, and √Σωa² over the rest. Every stored value must be finite and ≥ 0 (the binding
 * zeroes the listed ones in its copy of the data). Nothing of size rows×cols is made.
 */
export function maskedCsr(A: CsrMatrix, name: string, mask: { rows: Int32Array; cols: Int32Array }, context: string): { data: CsrMatrix; missing: PreparedMissing } {
  const { rows, cols } = A;
  const k = mask.rows.length;
  const keys = new Float64Array(k);
  for (let p = 0; p < k; p++) {
    const i = mask.rows[p]!, j = mask.cols[p]!;
    if (i >= rows || j >= cols) {
      throw new RangeError(`Expected indices within ${rows}×${cols} (the shape of ${name}) for options.mask of ${context} but received [${i}, ${j}] at position ${p}`);
    }
    keys[p] = i * cols + j;
  }
  keys.sort();
  for (let p = 1; p < k; p++) {
    if (keys[p] === keys[p - 1]) {
      const i = Math.floor(keys[p]! / cols), j = keys[p]! - i * cols;
      throw new RangeError(`Expected distinct entries in options.mask of ${context} (CSR data: each missing entry once) but received [${i}, ${j}] twice`);
    }
  }
  const entries = { rows: Int32Array.from(keys, (e) => Math.floor(e / cols)), cols: Int32Array.from(keys, (e) => e % cols) };
  const values = A.data.slice(0, A.indptr[rows]!);
  values.forEach((x, p) => {
    if (!(x >= 0) || x === Infinity) throw new RangeError(`Expected finite non-negative values in ${name} but received ${describeValue(x)} at stored entry ${p}`);
  });
  // √Σωa²: the stored values with the listed ones zeroed.
  for (let p = 0; p < k; p++) {
    const i = entries.rows[p]!, j = entries.cols[p]!;
    const at = storedIndex(A, i, j);
    if (at >= 0) values[at] = 0;
  }
  return { data: A, missing: { absent: false, norm: scaledNorm(values), listed: k, entries, copied: 1.5 * A.data.length + 0.5 * (rows + 1) } };
}

/** Where entry (i, j) of CSR data is stored (a binary search of row i), or −1 when it is absent. */
export function storedIndex(A: CsrMatrix, i: number, j: number): number {
  let lo = A.indptr[i]!, hi = A.indptr[i + 1]!;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    const c = A.indices[mid]!;
    if (c === j) return mid;
    if (c < j) lo = mid + 1;
    else hi = mid;
  }
  return -1;
}

/** Doubles a missing-value solve adds (the weights, the data's zeroed copy, the kernel's list). */
export function missingDoubles(m: PreparedMissing, size: number): number {
  return (m.weights ? 2 * size : 0) + 5 * m.listed + m.copied;
}

/** The raw binding fields. */
export function rawMissing(m: PreparedMissing): { weights?: Float64Array; missing?: 'absent'; maskEntries?: { rows: Int32Array; cols: Int32Array } } {
  if (m.absent) return { missing: 'absent' };
  if (m.entries) return { maskEntries: m.entries };
  return m.weights ? { weights: m.weights } : {};
}
