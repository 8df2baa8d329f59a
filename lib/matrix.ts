import { expectFiniteData, expectFloat64Array, expectShapeInteger } from './validate.js';

/** A dense row-major matrix: element (i, j) is `data[i * cols + j]`. */
export interface Matrix {
  readonly rows: number;
  readonly cols: number;
  readonly data: Float64Array;
}

/** A sparse matrix in compressed sparse row form (0-based, column indices sorted within a row). */
export interface CsrMatrix {
  readonly rows: number;
  readonly cols: number;
  /** Length rows + 1; row i holds entries indptr[i] .. indptr[i+1]-1. */
  readonly indptr: Int32Array;
  readonly indices: Int32Array;
  readonly data: Float64Array;
}

/** Builds a Matrix from nested arrays (`[[1, 2], [3, 4]]`), copying the values. */
export function matrix(rows: ArrayLike<ArrayLike<number>>, name = 'rows'): Matrix {
  if (rows === null || typeof rows !== 'object' || typeof rows.length !== 'number') {
    throw new TypeError(`Expected an array of rows for ${name} but received ${describe(rows)}`);
  }
  const r = rows.length;
  if (r === 0) throw new RangeError(`Expected at least one row for ${name} but received an empty array`);
  const first = rows[0];
  if (first === null || typeof first !== 'object' || typeof first.length !== 'number') {
    throw new TypeError(`Expected an array of numbers for ${name}[0] but received ${describe(first)}`);
  }
  const c = first.length;
  if (c === 0) throw new RangeError(`Expected at least one column for ${name} but received an empty row`);
  const data = new Float64Array(r * c);
  for (let i = 0; i < r; i++) {
    const row = rows[i];
    if (row === null || typeof row !== 'object' || row.length !== c) {
      throw new RangeError(
        `Expected ${name}[${i}] to be an array of length ${c} (all rows equally long) but received ${describe(row)}`,
      );
    }
    for (let j = 0; j < c; j++) {
      const v = row[j];
      if (typeof v !== 'number') {
        throw new TypeError(`Expected a number at ${name}[${i}][${j}] but received ${describe(v)}`);
      }
      data[i * c + j] = v;
    }
  }
  return { rows: r, cols: c, data };
}

/**
 * Wraps a flat row-major buffer as a Matrix (no copy). The buffer must be a Float64Array of length
 * rows * cols; use `Float64Array.from(...)` to convert other arrays.
 */
export function matrixFrom(data: Float64Array, rows: number, cols: number, name = 'data'): Matrix {
  expectShapeInteger(rows, `rows of ${name}`);
  expectShapeInteger(cols, `cols of ${name}`);
  expectFloat64Array(data, name, rows * cols, 'rows*cols');
  return { rows, cols, data };
}

/** A zero-filled rows × cols matrix. */
export function zeros(rows: number, cols: number): Matrix {
  expectShapeInteger(rows, 'rows');
  expectShapeInteger(cols, 'cols');
  return { rows, cols, data: new Float64Array(rows * cols) };
}

/** The n × n identity. */
export function identity(n: number): Matrix {
  const m = zeros(n, n);
  for (let i = 0; i < n; i++) m.data[i * n + i] = 1;
  return m;
}

/** Element (i, j). */
export function at(m: Matrix, i: number, j: number): number {
  return m.data[i * m.cols + j]!;
}

/** Nested arrays, e.g. for printing or JSON. */
export function toNested(m: Matrix): number[][] {
  const out: number[][] = [];
  for (let i = 0; i < m.rows; i++) out.push(Array.from(m.data.subarray(i * m.cols, (i + 1) * m.cols)));
  return out;
}

/** The transpose, as a fresh matrix. */
export function transpose(m: Matrix): Matrix {
  const out = new Float64Array(m.rows * m.cols);
  for (let i = 0; i < m.rows; i++) for (let j = 0; j < m.cols; j++) out[j * m.rows + i] = m.data[i * m.cols + j]!;
  return { rows: m.cols, cols: m.rows, data: out };
}

/** Frobenius norm. */
export function frobeniusNorm(m: { data: Float64Array }): number {
  let s = 0;
  for (const v of m.data) s += v * v;
  return Math.sqrt(s);
}

/** Checks that every entry is finite; throws a RangeError naming the first offending position. */
export function assertFinite(m: Matrix, name = 'matrix'): void {
  expectFiniteData(m.data, name, m.cols);
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return `an array of length ${v.length}`;
  return typeof v === 'object' ? (v.constructor?.name ?? 'an object') : `${typeof v} (${String(v)})`;
}
