/**
 * Data matrices for the factorizations: a dense Matrix or a CSR matrix, validated once with every
 * defect named (the addon only re-checks cheaply), plus the few CSR helpers the API needs. Sparse
 * data is never densified.
 */
import type { CsrMatrix, Matrix } from '../matrix.js';
import {
  describeValue,
  expectAllocatable,
  expectFloat64Array,
  expectInt32Array,
  expectName,
  expectShapeInteger,
  isObjectArgument,
  matrixFromFields,
  readFields,
  readList,
  shapeProduct,
} from '../validate.js';

/** A data matrix for NMF-type methods: dense row-major or compressed sparse row. */
export type DataMatrix = Matrix | CsrMatrix;

const dataMatrixWhat = 'a Matrix {rows, cols, data} or a CSR matrix {rows, cols, indptr, indices, data}';

/** True when A has CSR fields (an `indptr`); reads that one field. */
export function isCsr(A: DataMatrix): A is CsrMatrix {
  if (!isObjectArgument(A)) throw new TypeError(`Expected ${dataMatrixWhat} for A but received ${describeValue(A)}`);
  return readFields(A, ['indptr'] as const, 'A').indptr !== undefined;
}

type CsrFields = { rows: unknown; cols: unknown; indptr: unknown; indices: unknown; data: unknown };

/**
 * Validates a CSR matrix: Int32Array indptr (rows + 1, starting at 0, non-decreasing), Int32Array
 * indices in [0, cols) strictly increasing within each row, and finite (optionally non-negative)
 * Float64Array values. Each defect is named with its position. Returns a snapshot whose index arrays
 * are private copies (what was validated is what native code reads).
 */
export function expectCsr(v: unknown, name: string, req: { nonNegative?: boolean } = {}): CsrMatrix {
  expectName(name, 'name');
  if (!isObjectArgument(v)) throw new TypeError(`Expected a CSR matrix {rows, cols, indptr, indices, data} for ${name} but received ${describeValue(v)}`);
  if (!isObjectArgument(req)) throw new TypeError(`Expected an object {nonNegative?} for req but received ${describeValue(req)}`);
  const nonNegative = readFields(req, ['nonNegative'] as const, 'req').nonNegative;
  if (nonNegative !== undefined && typeof nonNegative !== 'boolean') {
    throw new TypeError(`Expected a boolean for req.nonNegative but received ${describeValue(nonNegative)}`);
  }
  return csrFromFields(readFields(v, ['rows', 'cols', 'indptr', 'indices', 'data'] as const, name), name, nonNegative === true);
}

function csrFromFields(c: CsrFields, name: string, nonNegative: boolean): CsrMatrix {
  const rows = expectShapeInteger(c.rows, `${name}.rows`, 2 ** 31 - 2);
  const cols = expectShapeInteger(c.cols, `${name}.cols`, 2 ** 31 - 1);
  shapeProduct([rows, cols], name);
  const indptr = expectInt32Array(c.indptr, `${name}.indptr`, rows + 1, 'rows+1');
  if (indptr[0] !== 0) throw new RangeError(`Expected indptr[0] = 0 for ${name}.indptr but received ${indptr[0]}`);
  for (let i = 0; i < rows; i++) {
    if (indptr[i + 1]! < indptr[i]!) {
      throw new RangeError(
        `Expected a non-decreasing ${name}.indptr but received indptr[${i + 1}] = ${indptr[i + 1]} < indptr[${i}] = ${indptr[i]}`,
      );
    }
  }
  const nnz = indptr[rows]!;
  const indices = expectInt32Array(c.indices, `${name}.indices`, nnz, 'indptr[rows]');
  const data = expectFloat64Array(c.data, `${name}.data`, nnz, 'indptr[rows]');
  for (let i = 0; i < rows; i++) {
    for (let p = indptr[i]!; p < indptr[i + 1]!; p++) {
      const j = indices[p]!;
      if (j < 0 || j >= cols) {
        throw new RangeError(`Expected column indices in [0, ${cols}) for ${name}.indices but received ${j} at position ${p} (row ${i})`);
      }
      if (p > indptr[i]! && j <= indices[p - 1]!) {
        throw new RangeError(
          `Expected strictly increasing column indices within each row of ${name} but received ${j} after ${indices[p - 1]} in row ${i}`,
        );
      }
      const x = data[p]!;
      if (x - x !== 0) {
        throw new RangeError(`Expected finite values in ${name} but received ${describeValue(x)} at [${i}, ${j}]`);
      }
      if (nonNegative && x < 0) {
        throw new RangeError(`Expected non-negative values in ${name} but received ${x} at [${i}, ${j}]`);
      }
    }
  }
  return { rows, cols, indptr, indices, data };
}

/**
 * A data matrix, dense or CSR (an object with `indptr` is taken as CSR), finite and, by default,
 * non-negative. Each field is read once; the result is a snapshot.
 */
export function expectDataMatrix(v: unknown, name: string, req: { nonNegative?: boolean; finite?: boolean } = { nonNegative: true }): DataMatrix {
  if (!isObjectArgument(v)) throw new TypeError(`Expected ${dataMatrixWhat} for ${name} but received ${describeValue(v)}`);
  const f = readFields(v, ['rows', 'cols', 'indptr', 'indices', 'data'] as const, name);
  if (f.rows === 0) throw new RangeError(`Expected a non-empty matrix for ${name} but received 0 rows`);
  const nonNegative = req.nonNegative === true;
  if (f.indptr !== undefined) return csrFromFields(f, name, nonNegative);
  // finite: false leaves the values unchecked (the caller checks the observed ones: missing values).
  return matrixFromFields(f, name, { nonNegative: nonNegative && req.finite !== false, finite: req.finite });
}

/** Converts a dense matrix to CSR, dropping exact zeros. */
export function toCsr(A: Matrix): CsrMatrix {
  const m = expectDataMatrix(A, 'A', {});
  if ('indptr' in m) throw new TypeError('Expected a dense Matrix {rows, cols, data} for A but received a CSR matrix');
  if (m.rows + 1 > 2 ** 31 - 1) throw new RangeError(`Expected at most ${2 ** 31 - 2} rows for A (an Int32Array indptr) but received ${m.rows}`);
  let nnz = 0;
  for (const x of m.data) if (x !== 0) nnz++;
  if (nnz > 2 ** 31 - 1) throw new RangeError(`Expected at most 2^31 − 1 non-zero entries for A (Int32Array indices) but received ${nnz}`);
  expectAllocatable(nnz * 1.5 + (m.rows + 1) / 2, `the CSR form of A (${nnz} non-zero entries)`);
  const indptr = new Int32Array(m.rows + 1);
  const indices = new Int32Array(nnz);
  const data = new Float64Array(nnz);
  let p = 0;
  for (let i = 0; i < m.rows; i++) {
    for (let j = 0; j < m.cols; j++) {
      const x = m.data[i * m.cols + j]!;
      if (x !== 0) {
        indices[p] = j;
        data[p++] = x;
      }
    }
    indptr[i + 1] = p;
  }
  return { rows: m.rows, cols: m.cols, indptr, indices, data };
}

/**
 * The rows `rows` (in that order; repeats allowed) of A, in A's format; CSR stays CSR. Each entry of
 * `rows` must be an integer index in [0, A.rows).
 */
export function selectRows(A: DataMatrix, rows: ArrayLike<number>): DataMatrix {
  const a = expectDataMatrix(A, 'A', {});
  if (!Array.isArray(rows) && !ArrayBuffer.isView(rows)) {
    throw new TypeError(`Expected an array of row indices for rows but received ${describeValue(rows)}`);
  }
  const list = readList(rows, 'rows', 'an array of row indices');
  if (list.length === 0) throw new RangeError('Expected at least one row index for rows but received an empty array');
  const picked = new Int32Array(list.length);
  list.forEach((r, k) => {
    if (typeof r !== 'number' || Number.isNaN(r)) {
      throw new TypeError(`Expected an integer row index in [0, ${a.rows - 1}] for rows[${k}] but received ${describeValue(r)}`);
    }
    if (!Number.isInteger(r) || r < 0 || r >= a.rows) {
      throw new RangeError(`Expected an integer row index in [0, ${a.rows - 1}] for rows[${k}] but received ${describeValue(r)}`);
    }
    picked[k] = r;
  });
  const n = picked.length;
  if (!('indptr' in a)) {
    expectAllocatable(n * a.cols, `the ${n}×${a.cols} selection of rows of A`);
    const data = new Float64Array(n * a.cols);
    for (let k = 0; k < n; k++) data.set(a.data.subarray(picked[k]! * a.cols, (picked[k]! + 1) * a.cols), k * a.cols);
    return { rows: n, cols: a.cols, data };
  }
  let nnz = 0;
  for (let k = 0; k < n; k++) nnz += a.indptr[picked[k]! + 1]! - a.indptr[picked[k]!]!;
  if (nnz > 2 ** 31 - 1) throw new RangeError(`Expected a selection of rows with at most 2^31 − 1 entries but rows selects ${nnz}`);
  expectAllocatable(nnz * 1.5 + (n + 1) / 2, `the selection of rows of A (${nnz} entries)`);
  const indptr = new Int32Array(n + 1);
  const indices = new Int32Array(nnz);
  const data = new Float64Array(nnz);
  let p = 0;
  for (let k = 0; k < n; k++) {
    const s = a.indptr[picked[k]!]!;
    const e = a.indptr[picked[k]! + 1]!;
    indices.set(a.indices.subarray(s, e), p);
    data.set(a.data.subarray(s, e), p);
    p += e - s;
    indptr[k + 1] = p;
  }
  return { rows: n, cols: a.cols, indptr, indices, data };
}
