import {
  describeValue,
  expectAllocatable,
  expectFiniteData,
  expectFloat64Array,
  expectHeapRoom,
  expectInteger,
  expectMatrix,
  expectName,
  expectShapeInteger,
  readField,
  readList,
  scaledNorm,
  shapeProduct,
  typedArrayName,
} from './validate.js';

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

/**
 * Builds a Matrix from nested arrays (`[[1, 2], [3, 4]]`), copying the values (each read once).
 * Entries may be any number (NaN and ±Infinity included): the functions that compute check finiteness.
 */
export function matrix(rows: ArrayLike<ArrayLike<number>>, name = 'rows'): Matrix {
  expectName(name, 'name');
  const list = readList(rows, name, 'an array of rows');
  const r = list.length;
  if (r === 0) throw new RangeError(`Expected at least one row for ${name} but received an empty array`);
  const first = list[0];
  if (!Array.isArray(first) && typedArrayName(first) === undefined) {
    throw new TypeError(`Expected an array of numbers for ${name}[0] but received ${describeValue(first)}`);
  }
  let c = 0;
  let data: Float64Array | undefined;
  for (let i = 0; i < r; i++) {
    const row = list[i];
    if (!Array.isArray(row) && typedArrayName(row) === undefined) {
      throw new TypeError(`Expected ${name}[${i}] to be an array of numbers but received ${describeValue(row)}`);
    }
    const values = readList(row, `${name}[${i}]`, 'an array of numbers');
    if (i === 0) {
      c = values.length;
      if (c === 0) throw new RangeError(`Expected at least one column for ${name} but received an empty row`);
      shapeProduct([r, c], name);
      expectAllocatable(r * c, `the matrix built from ${name} (${r}×${c})`);
      data = new Float64Array(r * c);
    } else if (values.length !== c) {
      throw new RangeError(
        `Expected ${name}[${i}] to be an array of length ${c} (all rows equally long) but received ${describeValue(row)}`,
      );
    }
    for (let j = 0; j < c; j++) {
      const v = values[j];
      if (typeof v !== 'number') {
        throw new TypeError(`Expected a number at ${name}[${i}][${j}] but received ${describeValue(v)}`);
      }
      data![i * c + j] = v;
    }
  }
  return { rows: r, cols: c, data: data! };
}

/**
 * Wraps a flat row-major buffer as a Matrix (no copy unless the buffer is shared or resizable). The
 * buffer must be a Float64Array of length rows * cols; use `Float64Array.from(...)` to convert others.
 */
export function matrixFrom(data: Float64Array, rows: number, cols: number, name = 'data'): Matrix {
  expectName(name, 'name');
  expectShapeInteger(rows, `rows of ${name}`);
  expectShapeInteger(cols, `cols of ${name}`);
  shapeProduct([rows, cols], name);
  return { rows, cols, data: expectFloat64Array(data, name, rows * cols, 'rows*cols') };
}

/** A zero-filled rows × cols matrix. */
export function zeros(rows: number, cols: number): Matrix {
  expectShapeInteger(rows, 'rows');
  expectShapeInteger(cols, 'cols');
  shapeProduct([rows, cols], 'zeros(rows, cols)');
  expectAllocatable(rows * cols, `a ${rows}×${cols} matrix (rows, cols)`);
  return { rows, cols, data: new Float64Array(rows * cols) };
}

/** The n × n identity. */
export function identity(n: number): Matrix {
  expectShapeInteger(n, 'n');
  shapeProduct([n, n], 'identity(n)');
  expectAllocatable(n * n, `an ${n}×${n} identity (n)`);
  const m = { rows: n, cols: n, data: new Float64Array(n * n) };
  for (let i = 0; i < n; i++) m.data[i * n + i] = 1;
  return m;
}

/** Element (i, j). */
export function at(m: Matrix, i: number, j: number): number {
  const a = expectMatrix(m, 'm', { finite: false });
  const r = expectInteger(i, 'i', 0, a.rows - 1, 'a row index');
  const c = expectInteger(j, 'j', 0, a.cols - 1, 'a column index');
  return a.data[r * a.cols + c]!;
}

/** Nested arrays, e.g. for printing or JSON. */
export function toNested(m: Matrix): number[][] {
  const a = expectMatrix(m, 'm', { finite: false });
  // A JS number in an array takes at least as much as a float64; each row array adds its own header.
  expectHeapRoom(a.rows * a.cols + a.rows * 8, `the nested arrays of m (${a.rows}×${a.cols})`);
  const out: number[][] = [];
  for (let i = 0; i < a.rows; i++) out.push(Array.from(a.data.subarray(i * a.cols, (i + 1) * a.cols)));
  return out;
}

/** The transpose, as a fresh matrix. */
export function transpose(m: Matrix): Matrix {
  const a = expectMatrix(m, 'm', { finite: false });
  expectAllocatable(a.rows * a.cols, `the transpose of m (${a.cols}×${a.rows})`);
  const out = new Float64Array(a.rows * a.cols);
  for (let i = 0; i < a.rows; i++) for (let j = 0; j < a.cols; j++) out[j * a.rows + i] = a.data[i * a.cols + j]!;
  return { rows: a.cols, cols: a.rows, data: out };
}

/** Frobenius norm, computed scaled so that it is exact for every finite matrix (no overflow to ∞). */
export function frobeniusNorm(m: { data: Float64Array }): number {
  if (m === null || typeof m !== 'object') {
    throw new TypeError(`Expected a Matrix or Tensor {data: Float64Array} for m but received ${describeValue(m)}`);
  }
  const data = expectFloat64Array(readField(m, 'data', 'm.data'), 'm.data');
  return scaledNorm(data);
}

/** Checks that every entry is finite; throws a RangeError naming the first offending position. */
export function assertFinite(m: Matrix, name = 'matrix'): void {
  const a = expectMatrix(m, expectName(name, 'name'), { finite: false });
  expectFiniteData(a.data, name, a.cols);
}
