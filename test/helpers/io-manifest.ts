// Helpers for test/io.test.ts: the expected values a data folder's README.md publishes (its "Read-back
// checks" and "Manifest" tables: data/README.md, and the optional larger folder's), hashing, tolerances for the README's 6-significant-digit numbers, and a
// builder for hand-made .npy files (any dtype, order and format version).
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

export interface DenseRow {
  file: string;
  shape: number[];
  min: number;
  max: number;
  mean: number;
  nonzeros: number;
  /** The header dict as the README prints it. */
  header: string;
}

export interface SparseRow {
  file: string;
  rows: number;
  cols: number;
  nnz: number;
  min: number;
  max: number;
  /** "all 1 (max dev …)" for TF-IDF, or [min, max] row 2-norms printed with 3 significant digits. */
  rowNorms: 'unit' | [number, number];
}

export interface ManifestRow {
  file: string;
  bytes: number;
  /** The README prints the first 16 hex digits of each sha256. */
  sha256Prefix: string;
}

export interface DataManifest {
  dense: DenseRow[];
  sparse: SparseRow[];
  files: ManifestRow[];
}

const cells = (line: string): string[] =>
  line
    .trim()
    .replace(/^\||\|$/g, '')
    .split('|')
    .map((s) => s.trim());
const unquote = (s: string): string => s.replace(/^`|`$/g, '').replace(/…$/, '');
const shapeOf = (s: string): number[] => s.split('x').map(Number);

/** Parses the three tables (dense read-back, sparse read-back, manifest) at the end of a data folder's README. */
export function loadDataManifest(dir: string): DataManifest {
  const text = readFileSync(resolve(dir, 'README.md'), 'utf8');
  const out: DataManifest = { dense: [], sparse: [], files: [] };
  let table: 'dense' | 'sparse' | 'files' | undefined;
  for (const line of text.split('\n')) {
    if (line.startsWith('| file | shape | dtype/order')) table = 'dense';
    else if (line.startsWith('| file | shape | nnz')) table = 'sparse';
    else if (line.startsWith('| file | bytes | sha256')) table = 'files';
    else if (!line.startsWith('|')) table = undefined;
    if (!table || !line.startsWith('| `')) continue;
    const c = cells(line);
    if (table === 'dense') {
      out.dense.push({
        file: unquote(c[0]!),
        shape: shapeOf(c[1]!),
        min: Number(c[3]),
        max: Number(c[4]),
        mean: Number(c[5]),
        nonzeros: Number(c[6]),
        header: /`(.*)`/.exec(c[7]!)![1]!,
      });
    } else if (table === 'sparse') {
      const [rows, cols] = shapeOf(c[1]!);
      const norms = c[6]!;
      out.sparse.push({
        file: unquote(c[0]!),
        rows: rows!,
        cols: cols!,
        nnz: Number(c[2]),
        min: Number(c[4]),
        max: Number(c[5]),
        rowNorms: norms.startsWith('all 1') ? 'unit' : (norms.split('..').map((s) => Number(s.trim())) as [number, number]),
      });
    } else {
      out.files.push({ file: unquote(c[0]!), bytes: Number(c[1]), sha256Prefix: unquote(c[2]!) });
    }
  }
  return out;
}

export function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** The bytes of a typed array's own window (not its whole buffer). */
export function bytesOf(a: ArrayBufferView): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

/**
 * Whether `actual` rounds to `printed` at `digits` significant digits (Python's '%.6g' by default):
 * the difference is at most half a unit in the last printed digit (plus a hair for the decimal→binary
 * conversion of `printed` itself).
 */
export function matchesPrinted(actual: number, printed: number, digits = 6): boolean {
  if (printed === 0) return actual === 0;
  const unit = 10 ** (Math.floor(Math.log10(Math.abs(printed))) - (digits - 1));
  return Math.abs(actual - printed) <= 0.5 * unit * (1 + 1e-9);
}

/** min, max, mean (Neumaier-compensated sum, close to NumPy's pairwise mean) and count of non-zeros. */
export function stats(data: Float64Array): { min: number; max: number; mean: number; nonzeros: number; meanAbs: number } {
  let min = Infinity;
  let max = -Infinity;
  let sum = 0;
  let comp = 0;
  let abs = 0;
  let nonzeros = 0;
  for (let i = 0; i < data.length; i++) {
    const x = data[i]!;
    if (x < min) min = x;
    if (x > max) max = x;
    if (x !== 0) nonzeros++;
    abs += Math.abs(x);
    const t = sum + x;
    comp += Math.abs(sum) >= Math.abs(x) ? sum - t + x : x - t + sum;
    sum = t;
  }
  return { min, max, mean: (sum + comp) / data.length, nonzeros, meanAbs: abs / data.length };
}

/** A fresh temporary folder (under the OS temp dir) and a function that removes it. */
export function makeTempDir(): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'nsa-flow-io-'));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/**
 * Hand-made .npy bytes: `descr`, `fortranOrder` and `shape` go into the header dict verbatim, `data` after
 * it; the header is padded so the data starts at a multiple of 64 (as NumPy does) unless `align` says
 * otherwise. `version` picks the 1.0 (2-byte length) or 2.0/3.0 (4-byte length) preamble.
 */
export function buildNpy(opts: {
  descr: string;
  fortranOrder?: boolean;
  shape: number[];
  data: Uint8Array;
  version?: 1 | 2 | 3;
  align?: number;
}): Uint8Array {
  const version = opts.version ?? 1;
  const shape = opts.shape.length === 1 ? `(${opts.shape[0]},)` : `(${opts.shape.join(', ')})`;
  const dict = `{'descr': '${opts.descr}', 'fortran_order': ${opts.fortranOrder ? 'True' : 'False'}, 'shape': ${shape}, }`;
  const prefix = version === 1 ? 10 : 12;
  const align = opts.align ?? 64;
  const pad = (align - ((prefix + dict.length + 1) % align)) % align;
  const header = dict + ' '.repeat(pad) + '\n';
  const out = new Uint8Array(prefix + header.length + opts.data.byteLength);
  out.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, version, 0]);
  const view = new DataView(out.buffer);
  if (version === 1) view.setUint16(8, header.length, true);
  else view.setUint32(8, header.length, true);
  out.set(Buffer.from(header, 'latin1'), prefix);
  out.set(opts.data, prefix + header.length);
  return out;
}
