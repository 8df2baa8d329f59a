/**
 * Data matrices for the factorizations: a dense Matrix or a CSR matrix, validated once with every
 * defect named (the addon only re-checks cheaply), plus the few CSR helpers the API needs. Sparse
 * data is never densified.
 */
import type { CsrMatrix, Matrix } from '../matrix.js';
import { describeValue, expectFloat64Array, expectMatrix, expectShapeInteger, shapeProduct } from '../validate.js';

/** A data matrix for NMF-type methods: dense row-major or compressed sparse row. */
export type DataMatrix = Matrix | CsrMatrix;

export function isCsr(A: DataMatrix): A is CsrMatrix {
  return (A as CsrMatrix).indptr !== undefined;
}

function expectInt32Array(v: unknown, name: string, length: number, meaning: string): Int32Array {
  if (!(v instanceof Int32Array)) {
    throw new TypeError(`Expected an Int32Array of length ${length} (${meaning}) for ${name} but received ${describeValue(v)}`);
  }
  if (v.length !== length) {
    throw new RangeError(`Expected an Int32Array of length ${length} (${meaning}) for ${name} but received ${describeValue(v)}`);
  }
  return v;
}

/**
 * Validates a CSR matrix: Int32Array indptr (rows + 1, starting at 0, non-decreasing), Int32Array
 * indices in [0, cols) strictly increasing within each row, and finite (optionally non-negative)
 * Float64Array values. Each defect is named with its position.
 */
export function expectCsr(v: unknown, name: string, req: { nonNegative?: boolean } = {}): CsrMatrix {
  const c = v as Partial<CsrMatrix>;
  const rows = expectShapeInteger(c.rows, `${name}.rows`);
  const cols = expectShapeInteger(c.cols, `${name}.cols`);
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
      if (req.nonNegative && x < 0) {
        throw new RangeError(`Expected non-negative values in ${name} but received ${x} at [${i}, ${j}]`);
      }
    }
  }
  return { rows, cols, indptr, indices, data };
}

/** A non-negative data matrix, dense or CSR (an object with `indptr` is taken as CSR). */
export function expectDataMatrix(v: unknown, name: string): DataMatrix {
  if (v === null || typeof v !== 'object' || ArrayBuffer.isView(v) || Array.isArray(v)) {
    throw new TypeError(
      `Expected a Matrix {rows, cols, data} or a CSR matrix {rows, cols, indptr, indices, data} for ${name} but received ${describeValue(v)}`,
    );
  }
  const o = v as { rows?: unknown; indptr?: unknown };
  if (o.rows === 0) throw new RangeError(`Expected a non-empty matrix for ${name} but received 0 rows`);
  if (o.indptr !== undefined) return expectCsr(v, name, { nonNegative: true });
  return expectMatrix(v, name, { nonNegative: true });
}

/** Converts a dense matrix to CSR, dropping exact zeros. */
export function toCsr(A: Matrix): CsrMatrix {
  const m = expectMatrix(A, 'A');
  let nnz = 0;
  for (const x of m.data) if (x !== 0) nnz++;
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

/** The rows `rows` (in that order) of A, in A's format; CSR stays CSR. */
export function selectRows(A: DataMatrix, rows: ArrayLike<number>): DataMatrix {
  const n = rows.length;
  if (!isCsr(A)) {
    const data = new Float64Array(n * A.cols);
    for (let k = 0; k < n; k++) data.set(A.data.subarray(rows[k]! * A.cols, (rows[k]! + 1) * A.cols), k * A.cols);
    return { rows: n, cols: A.cols, data };
  }
  let nnz = 0;
  for (let k = 0; k < n; k++) nnz += A.indptr[rows[k]! + 1]! - A.indptr[rows[k]!]!;
  const indptr = new Int32Array(n + 1);
  const indices = new Int32Array(nnz);
  const data = new Float64Array(nnz);
  let p = 0;
  for (let k = 0; k < n; k++) {
    const a = A.indptr[rows[k]!]!;
    const b = A.indptr[rows[k]! + 1]!;
    indices.set(A.indices.subarray(a, b), p);
    data.set(A.data.subarray(a, b), p);
    p += b - a;
    indptr[k + 1] = p;
  }
  return { rows: n, cols: A.cols, indptr, indices, data };
}
