/**
 * Data readers and writers: NumPy .npy, MatrixMarket .mtx, CSV — plain or gzipped (.gz).
 *
 * Errors: argument problems are TypeError/RangeError (lib/validate.ts style); problems with a file's
 * content are a FormatError (./errors.ts) carrying `file`, `code` and `line` (text) or `offset` (npy).
 */
import type { CsrMatrix, Matrix } from '../matrix.js';
import { describeValue, expectMatrix, isObjectArgument, parseOptions, readField, type OptionSpecs } from '../validate.js';
import { readCsv } from './csv.js';
import { expectPath } from './files.js';
import { csrToDense, denseToCsr, readMatrixMarket } from './matrix-market.js';
import { readNpy, tensorAsMatrix } from './npy.js';

export { FormatError, type FormatErrorCode, type FormatErrorDetails } from './errors.js';
export {
  encodeNpy,
  fortranToC,
  npyHeaderBytes,
  parseNpy,
  readNpy,
  readNpyHeader,
  readNpyMatrix,
  tensorAsMatrix,
  writeNpy,
  type NpyHeader,
  type ReadNpyMatrixOptions,
} from './npy.js';
export {
  csrToDense,
  denseToCsr,
  formatMatrixMarket,
  parseMatrixMarket,
  readMatrixMarket,
  writeMatrixMarket,
  type MatrixMarketHeader,
  type ReadMatrixMarketOptions,
  type WriteMatrixMarketOptions,
} from './matrix-market.js';
export { parseCsv, readCsv, readLabels, writeCsv, readCsvOptionSpecs, type ColumnRef, type CsvTable, type ReadCsvOptions, type WriteCsvOptions } from './csv.js';

export interface ReadMatrixOptions {
  /**
   * The form of the result. Default: a MatrixMarket file gives a CsrMatrix, every other file a dense
   * Matrix. 'dense' or 'csr' converts where needed (dense → CSR keeps the non-zero entries).
   */
  format?: 'dense' | 'csr';
  /** For .npy: read 1-D and N-D arrays as matrices (see readNpyMatrix). Default false. */
  flatten?: boolean;
}

const specs: OptionSpecs = {
  format: { kind: 'enum', description: 'the form of the result', values: ['dense', 'csr'] },
  flatten: { kind: 'boolean', description: 'reshape 1-D and N-D .npy arrays to a matrix', default: false },
};

type Kind = 'npy' | 'mtx' | 'csv';

function kindOf(path: string): Kind | undefined {
  const p = path.toLowerCase();
  if (p.endsWith('.npy') || p.endsWith('.npy.gz')) return 'npy';
  if (p.endsWith('.mtx') || p.endsWith('.mtx.gz')) return 'mtx';
  if (p.endsWith('.csv') || p.endsWith('.csv.gz') || p.endsWith('.tsv') || p.endsWith('.tsv.gz')) return 'csv';
  return undefined;
}

/**
 * Reads a matrix from a file, choosing the reader by extension: .npy / .npy.gz (readNpyMatrix),
 * .mtx / .mtx.gz (readMatrixMarket), .csv (readCsv with its defaults; also .csv.gz, .tsv, .tsv.gz).
 */
export function readMatrix(path: string, options: { format: 'dense'; flatten?: boolean }): Matrix;
export function readMatrix(path: string, options: { format: 'csr'; flatten?: boolean }): CsrMatrix;
export function readMatrix(path: string, options?: ReadMatrixOptions): Matrix | CsrMatrix;
export function readMatrix(path: string, options?: ReadMatrixOptions): Matrix | CsrMatrix {
  expectPath(path);
  const opts = parseOptions<ReadMatrixOptions & { flatten: boolean }>(specs, options, 'readMatrix()');
  const kind = kindOf(path);
  if (kind === undefined) {
    throw new RangeError(
      `Expected a path ending in .npy, .npy.gz, .mtx, .mtx.gz, .csv (or .csv.gz, .tsv, .tsv.gz) for readMatrix() but received ${describeValue(path)}`,
    );
  }
  if (kind === 'mtx') {
    const m = readMatrixMarket(path, { format: opts.format ?? 'csr' });
    return m;
  }
  const dense = kind === 'npy' ? tensorAsMatrix(readNpy(path), path, opts.flatten) : readCsv(path).matrix;
  return opts.format === 'csr' ? denseToCsr(dense) : dense;
}

/** Either form as a dense Matrix (no copy when it already is one). */
export function asDense(m: Matrix | CsrMatrix): Matrix {
  if (!isObjectArgument(m)) throw new TypeError(`Expected a Matrix or CsrMatrix for m but received ${describeValue(m)}`);
  return readField(m, 'indptr', 'm') !== undefined ? csrToDense(m as CsrMatrix) : expectMatrix(m, 'm', { finite: false });
}
