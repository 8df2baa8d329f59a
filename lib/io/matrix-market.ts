/**
 * MatrixMarket (.mtx, .mtx.gz) reader and writer.
 *
 * Reads `%%MatrixMarket matrix coordinate|array real|double|integer|pattern general|symmetric|skew-symmetric`:
 * coordinate entries are 1-based `i j [value]` lines (pattern entries have value 1); array files list the
 * values one per line in column-major order (only the lower triangle for symmetric, the strict lower
 * triangle for skew-symmetric). Symmetric files mirror every off-diagonal entry (skew-symmetric: negated).
 * Complex and hermitian files are refused. Comment lines (%) and blank lines are skipped.
 *
 * Output is CSR (default) with sorted column indices in each row and duplicate entries summed (stored
 * zeros of a coordinate file are kept; an array file keeps only its non-zeros), or a dense row-major
 * Matrix. Every content problem is a FormatError naming the file and the line.
 *
 * Memory: nothing is allocated from the size line alone. Entries are counted only as far as the rest
 * of the text can hold them (every entry line takes at least 2 characters per field; an array file
 * announcing more values than that is refused at once), and every array (the triplets, the CSR output with its rows+1 row pointers, a dense result) is checked
 * against the memory limit (lib/memory.ts) before it is allocated: a RangeError names what would not fit.
 *
 * The writer emits `coordinate real general`, 1-based, entries sorted by row then column as stored,
 * values in JavaScript's shortest round-trip form (String(v)), gzipped when the path ends in .gz.
 */
import type { CsrMatrix, Matrix } from '../matrix.js';
import { checkMemory, float64Bytes } from '../memory.js';
import {
  describeValue,
  expectAllocatable,
  expectMatrix,
  expectName,
  expectShapeInteger,
  isObjectArgument,
  parseOptions,
  readFields,
  type OptionSpecs,
} from '../validate.js';
import { FormatError, quoteContent, type FormatErrorCode } from './errors.js';
import { expectPath, readTextMaybeGz, writeChunksMaybeGz } from './files.js';
import { parseIntegerToken, parseNumberToken } from './numbers.js';

export interface ReadMatrixMarketOptions {
  /** 'csr' (default): a CsrMatrix; 'dense': a row-major Matrix. */
  format?: 'csr' | 'dense';
}

const readSpecs: OptionSpecs = {
  format: { kind: 'enum', description: 'the form of the result', values: ['csr', 'dense'], default: 'csr' },
};

/** The banner fields of a MatrixMarket file. */
export interface MatrixMarketHeader {
  readonly format: 'coordinate' | 'array';
  readonly field: 'real' | 'integer' | 'pattern';
  readonly symmetry: 'general' | 'symmetric' | 'skew-symmetric';
  readonly rows: number;
  readonly cols: number;
  /** Entries announced on the size line (coordinate), or the number of values listed (array). */
  readonly entries: number;
}

const MAX_INDEX = 2 ** 31 - 1;

/**
 * Tokenizer over the whole text: `next()` moves to the next line that is neither blank nor a % comment
 * and records where its (up to 8) whitespace-separated tokens start and end, without slicing strings.
 */
class Scanner {
  private pos = 0;
  /** 1-based number of the current line. */
  line = 0;
  /** Number of tokens on the current line (may exceed the 8 recorded). */
  count = 0;
  private lineStart = 0;
  private lineEnd = 0;
  private readonly ts = new Int32Array(8);
  private readonly te = new Int32Array(8);
  constructor(private readonly text: string) {}

  /** The first line, raw (for the banner). */
  firstLine(): string | null {
    const t = this.text;
    if (t.length === 0) return null;
    let end = t.indexOf('\n');
    if (end < 0) end = t.length;
    this.pos = end + 1;
    this.line = 1;
    return t.slice(0, t.charCodeAt(end - 1) === 13 ? end - 1 : end);
  }

  /** Advances to the next content line; false at the end of the text. */
  next(): boolean {
    const t = this.text;
    const n = t.length;
    const ts = this.ts;
    const te = this.te;
    while (this.pos < n) {
      let p = this.pos;
      this.line++;
      this.lineStart = p;
      let count = 0;
      let comment = false;
      while (p < n) {
        let c = t.charCodeAt(p);
        if (c === 10) break;
        if (c === 32 || c === 9 || c === 13) {
          p++;
          continue;
        }
        if (count === 0 && c === 37) comment = true;
        const s = p;
        while (p < n && (c = t.charCodeAt(p)) !== 32 && c !== 9 && c !== 10 && c !== 13) p++;
        if (count < 8) {
          ts[count] = s;
          te[count] = p;
        }
        count++;
      }
      this.lineEnd = p;
      this.pos = p + 1;
      if (count > 0 && !comment) {
        this.count = count;
        return true;
      }
    }
    this.count = 0;
    return false;
  }

  token(k: number): string {
    return this.text.slice(this.ts[k]!, this.te[k]!);
  }

  /** The current line's text, trimmed. */
  lineText(): string {
    return this.text.slice(this.lineStart, this.lineEnd).trim();
  }

  /** Token k as a non-negative decimal integer without sign (indices), or -1 when it is not one. */
  index(k: number): number {
    const t = this.text;
    const s = this.ts[k]!;
    const e = this.te[k]!;
    if (s === e || e - s > 15) return -1;
    let v = 0;
    for (let p = s; p < e; p++) {
      const d = t.charCodeAt(p) - 48;
      if (d < 0 || d > 9) return -1;
      v = v * 10 + d;
    }
    return v;
  }

  /** Token k as a number (strict decimal, inf, nan), or undefined. */
  number(k: number): number | undefined {
    const t = this.text;
    const s = this.ts[k]!;
    const e = this.te[k]!;
    // Fast path: only digits, '.', 'e', 'E', '+', '-' — then Number() accepts exactly the decimal literals.
    let plain = true;
    for (let p = s; p < e; p++) {
      const c = t.charCodeAt(p);
      if (!((c >= 48 && c <= 57) || c === 46 || c === 101 || c === 69 || c === 43 || c === 45)) {
        plain = false;
        break;
      }
    }
    const tok = t.slice(s, e);
    if (plain) {
      const v = Number(tok);
      if (!Number.isNaN(v)) return v;
    }
    return parseNumberToken(tok);
  }

  remaining(): number {
    return this.text.length - this.pos;
  }
}

interface Parsed {
  header: MatrixMarketHeader;
  /** Coordinate data (with mirrored entries already added) … */
  ri?: Int32Array;
  ci?: Int32Array;
  v?: Float64Array;
  count?: number;
  /** … or dense data, row-major. */
  dense?: Float64Array;
}

function parse(text: string, file: string, wantDense: boolean): Parsed {
  const sc = new Scanner(text);
  const fail = (problem: string, code: FormatErrorCode, line = sc.line): never => {
    throw new FormatError(file, problem, { code, line });
  };

  const banner = sc.firstLine();
  if (banner === null || !/^%%MatrixMarket\b/i.test(banner)) {
    fail(`Expected the banner "%%MatrixMarket matrix …" but received ${banner === null ? 'an empty file' : quoteContent(banner)}`, 'bad-magic', 1);
  }
  const b = banner!.trim().split(/\s+/).map((s) => s.toLowerCase());
  if (b.length !== 5 || b[1] !== 'matrix') {
    fail(`Expected "%%MatrixMarket matrix <format> <field> <symmetry>" but received ${quoteContent(banner!)}`, 'bad-header', 1);
  }
  const format = b[2]! as MatrixMarketHeader['format'];
  let field = b[3]!;
  const symmetry = b[4]! as MatrixMarketHeader['symmetry'];
  if (format !== 'coordinate' && format !== 'array') fail(`Expected the format coordinate or array but received ${quoteContent(format)}`, 'bad-header', 1);
  if (field === 'double') field = 'real';
  if (field === 'complex') fail('Expected a real, integer or pattern field but received "complex" (complex matrices are not supported)', 'unsupported', 1);
  if (field !== 'real' && field !== 'integer' && field !== 'pattern') fail(`Expected the field real, integer or pattern but received ${quoteContent(field)}`, 'bad-header', 1);
  if ((symmetry as string) === 'hermitian') fail('Expected the symmetry general, symmetric or skew-symmetric but received "hermitian" (complex matrices are not supported)', 'unsupported', 1);
  if (symmetry !== 'general' && symmetry !== 'symmetric' && symmetry !== 'skew-symmetric') {
    fail(`Expected the symmetry general, symmetric or skew-symmetric but received ${quoteContent(symmetry)}`, 'bad-header', 1);
  }
  if (format === 'array' && field === 'pattern') fail('Expected a real or integer field for an array file but received "pattern"', 'bad-header', 1);

  // Size line.
  const want = format === 'coordinate' ? 3 : 2;
  const sizeText = `"rows cols${want === 3 ? ' entries' : ''}"`;
  if (!sc.next()) fail(`Expected the size line ${sizeText} but the file ends`, 'truncated', sc.line);
  const sizeLineNo = sc.line;
  const sizes = [0, 1, 2].slice(0, want).map((k) => (k < sc.count ? sc.index(k) : -1));
  if (sc.count !== want || sizes.some((x) => x < 0)) {
    fail(`Expected the size line ${sizeText} (${want} non-negative integers) but received ${quoteContent(sc.lineText())}`, 'bad-header');
  }
  const rows = sizes[0]!;
  const cols = sizes[1]!;
  if (rows < 1 || cols < 1) fail(`Expected at least one row and one column but received ${rows} × ${cols}`, 'unsupported');
  if (rows > MAX_INDEX || cols > MAX_INDEX) fail(`Expected at most 2^31-1 rows and columns but received ${rows} × ${cols}`, 'unsupported');
  if (symmetry !== 'general' && rows !== cols) fail(`Expected a square matrix for a ${symmetry} file but received ${rows} × ${cols}`, 'bad-header');

  const sym = symmetry !== 'general';
  const sign = symmetry === 'skew-symmetric' ? -1 : 1;
  const isInt = field === 'integer';
  const value = (k: number, what: string): number => {
    const v = isInt ? parseIntegerToken(sc.token(k)) : sc.number(k);
    if (v === undefined) fail(`Expected ${isInt ? 'an integer' : 'a number'} for ${what} but received ${quoteContent(sc.token(k))}`, 'bad-value');
    return v!;
  };

  if (format === 'array') {
    const n = rows;
    const entries = symmetry === 'general' ? rows * cols : symmetry === 'symmetric' ? (n * (n + 1)) / 2 : (n * (n - 1)) / 2;
    // One value per line: at least one character and a line break (none after the last).
    const room = Math.floor((sc.remaining() + 1) / 2);
    if (entries > room) {
      fail(
        `Expected ${entries} values (size line ${sizeLineNo}: ${rows} × ${cols}, ${symmetry}) but the ${sc.remaining()} characters after it can hold at most ${room} (one value per line)`,
        'entry-count',
        sizeLineNo,
      );
    }
    if (rows * cols > 2 ** 32) fail(`Expected at most 2^32 elements but received ${rows} × ${cols}`, 'unsupported');
    checkMemory(float64Bytes(rows, cols), `the dense ${rows}×${cols} matrix of ${file}`);
    const dense = new Float64Array(rows * cols);
    // Column-major walk over the stored part.
    let i = symmetry === 'skew-symmetric' ? 1 : 0;
    let j = 0;
    for (let k = 0; k < entries; k++) {
      if (!sc.next()) {
        fail(`Expected ${entries} values (size line ${sizeLineNo}: ${rows} × ${cols}, ${symmetry}) but received ${k} (the file ends)`, 'entry-count', sc.line);
      }
      if (sc.count !== 1) fail(`Expected one value per line for entry (${i + 1}, ${j + 1}) but received ${sc.count} fields`, 'bad-value');
      const v = value(0, `entry (${i + 1}, ${j + 1})`);
      dense[i * cols + j] = v;
      if (sym && i !== j) dense[j * cols + i] = sign * v;
      if (++i === rows) {
        j++;
        i = symmetry === 'general' ? 0 : symmetry === 'symmetric' ? j : j + 1;
      }
    }
    if (sc.next()) fail(`Expected ${entries} values (as announced on line ${sizeLineNo}) but received more, starting with ${quoteContent(sc.lineText())}`, 'entry-count');
    return { header: { format, field: field as 'real' | 'integer', symmetry, rows, cols, entries }, dense };
  }

  // Coordinate.
  const nnz = sizes[2]!;
  if (nnz > MAX_INDEX) fail(`Expected at most 2^31-1 entries but received ${nnz}`, 'unsupported');
  const header: MatrixMarketHeader = { format, field: field as MatrixMarketHeader['field'], symmetry, rows, cols, entries: nnz };
  const isPattern = field === 'pattern';
  const nf = isPattern ? 2 : 3;
  const fieldsText = isPattern ? 'row column' : 'row column value';
  // An entry line takes at least one character per field and one separator after each (the last line
  // needs no line break), so the triplets never need room for more entries than the text can hold: a
  // size line promising more is reported by the count check below (at the end of the text), after
  // allocating only what the text can fill.
  const room = Math.floor((sc.remaining() + 1) / (2 * nf));
  const cap = Math.min(nnz, room) * (sym ? 2 : 1);
  let dense: Float64Array | undefined;
  let ri: Int32Array | undefined;
  let ci: Int32Array | undefined;
  let vv: Float64Array | undefined;
  if (wantDense) {
    if (rows * cols > 2 ** 32) fail(`Expected at most 2^32 elements for a dense result but received ${rows} × ${cols}`, 'unsupported', sizeLineNo);
    checkMemory(float64Bytes(rows, cols), `the dense ${rows}×${cols} matrix of ${file}`);
    dense = new Float64Array(rows * cols);
  } else {
    // The triplets, then (while they are still held) the CSR output: rows+1 row pointers, indices, values.
    checkMemory(16 * cap + csrBytes(rows, cap), `the ${rows}×${cols} sparse matrix of ${file} (${cap} ${cap === 1 ? 'entry' : 'entries'}${sym ? ' with mirror images' : ''})`);
    ri = new Int32Array(cap);
    ci = new Int32Array(cap);
    vv = new Float64Array(cap);
  }
  let count = 0;
  for (let k = 0; k < nnz; k++) {
    if (!sc.next()) fail(`Expected ${nnz} entries (as announced on line ${sizeLineNo}) but received ${k} (the file ends)`, 'entry-count', sc.line);
    if (sc.count !== nf) fail(`Expected ${nf} fields (${fieldsText}) but received ${sc.count}: ${quoteContent(sc.lineText())}`, 'bad-value');
    const i = sc.index(0);
    const j = sc.index(1);
    if (i < 0) {
      const tok = sc.token(0);
      if (/^-\d+$/.test(tok)) fail(`Expected a row index in 1..${rows} but received ${tok}`, 'index-out-of-range');
      fail(`Expected an integer row index but received ${quoteContent(tok)}`, 'bad-value');
    }
    if (j < 0) {
      const tok = sc.token(1);
      if (/^-\d+$/.test(tok)) fail(`Expected a column index in 1..${cols} but received ${tok}`, 'index-out-of-range');
      fail(`Expected an integer column index but received ${quoteContent(tok)}`, 'bad-value');
    }
    if (i < 1 || i > rows) fail(`Expected a row index in 1..${rows} but received ${i}`, 'index-out-of-range');
    if (j < 1 || j > cols) fail(`Expected a column index in 1..${cols} but received ${j}`, 'index-out-of-range');
    const v = isPattern ? 1 : value(2, `entry (${i}, ${j})`);
    const r = i - 1;
    const c = j - 1;
    if (dense) {
      dense[r * cols + c]! += v;
      if (sym && r !== c) dense[c * cols + r]! += sign * v;
    } else {
      ri![count] = r;
      ci![count] = c;
      vv![count++] = v;
      if (sym && r !== c) {
        ri![count] = c;
        ci![count] = r;
        vv![count++] = sign * v;
      }
    }
  }
  if (sc.next()) fail(`Expected ${nnz} entries (as announced on line ${sizeLineNo}) but received more, starting with ${quoteContent(sc.lineText())}`, 'entry-count');
  return dense ? { header, dense } : { header, ri: ri!, ci: ci!, v: vv!, count };
}

/** Bytes of a CSR matrix: rows+1 Int32 row pointers, and an Int32 index and a float64 value per entry. */
function csrBytes(rows: number, nnz: number): number {
  return 4 * (rows + 1) + 12 * nnz;
}

/** Coordinate triplets to CSR: rows sorted by column, duplicates summed. */
function cooToCsr(rows: number, cols: number, ri: Int32Array, ci: Int32Array, v: Float64Array, count: number): CsrMatrix {
  const indptr = new Int32Array(rows + 1);
  for (let t = 0; t < count; t++) indptr[ri[t]! + 1]!++;
  for (let r = 0; r < rows; r++) indptr[r + 1]! += indptr[r]!;
  let indices = new Int32Array(count);
  let data = new Float64Array(count);
  // indptr[r] serves as row r's fill cursor (no second rows-long array); afterwards it holds the end of
  // row r, i.e. the start of row r+1, and is shifted back by one row.
  for (let t = 0; t < count; t++) {
    const p = indptr[ri[t]!]!++;
    indices[p] = ci[t]!;
    data[p] = v[t]!;
  }
  for (let r = rows; r > 0; r--) indptr[r] = indptr[r - 1]!;
  indptr[0] = 0;
  let w = 0;
  let oldStart = 0;
  for (let r = 0; r < rows; r++) {
    const oldEnd = indptr[r + 1]!;
    let sorted = true;
    for (let p = oldStart + 1; p < oldEnd; p++) {
      if (indices[p]! < indices[p - 1]!) {
        sorted = false;
        break;
      }
    }
    if (!sorted) {
      const order = Array.from({ length: oldEnd - oldStart }, (_, q) => oldStart + q).sort((a, b) => indices[a]! - indices[b]! || a - b);
      const idx = order.map((p) => indices[p]!);
      const val = order.map((p) => data[p]!);
      indices.set(idx, oldStart);
      data.set(val, oldStart);
    }
    const rowStart = w;
    for (let p = oldStart; p < oldEnd; p++) {
      const c = indices[p]!;
      if (w > rowStart && indices[w - 1] === c) data[w - 1]! += data[p]!;
      else {
        indices[w] = c;
        data[w] = data[p]!;
        w++;
      }
    }
    indptr[r] = rowStart;
    oldStart = oldEnd;
  }
  indptr[rows] = w;
  if (w < count) {
    indices = indices.slice(0, w);
    data = data.slice(0, w);
  }
  return { rows, cols, indptr, indices, data };
}

/** Dense row-major to CSR, keeping only the non-zero entries (NaN counts as non-zero). */
export function denseToCsr(m: Matrix): CsrMatrix {
  const { rows, cols, data: src } = expectMatrix(m, 'm', { finite: false });
  let nnz = 0;
  for (let i = 0; i < src.length; i++) if (src[i] !== 0) nnz++;
  if (nnz > MAX_INDEX) throw new RangeError(`Expected at most 2^31-1 non-zeros for a CsrMatrix but received ${nnz}`);
  checkMemory(csrBytes(rows, nnz), `the ${rows}×${cols} CSR matrix (${nnz} non-zeros)`);
  const indptr = new Int32Array(rows + 1);
  const indices = new Int32Array(nnz);
  const data = new Float64Array(nnz);
  let w = 0;
  for (let r = 0; r < rows; r++) {
    const base = r * cols;
    for (let c = 0; c < cols; c++) {
      const x = src[base + c]!;
      if (x !== 0) {
        indices[w] = c;
        data[w++] = x;
      }
    }
    indptr[r + 1] = w;
  }
  return { rows, cols, indptr, indices, data };
}

/** CSR to a dense row-major Matrix (duplicate entries, if any, are summed). */
export function csrToDense(csr: CsrMatrix): Matrix {
  if (!isObjectArgument(csr)) throw new TypeError(`Expected a CSR matrix {rows, cols, indptr, indices, data} for m but received ${describeValue(csr)}`);
  const m = expectCsr(readFields(csr, ['rows', 'cols', 'indptr', 'indices', 'data'] as const, 'm'), 'm');
  expectAllocatable(m.rows * m.cols, `the dense form of m (${m.rows}×${m.cols})`);
  const out = new Float64Array(m.rows * m.cols);
  for (let r = 0; r < m.rows; r++) {
    for (let p = m.indptr[r]!; p < m.indptr[r + 1]!; p++) out[r * m.cols + m.indices[p]!]! += m.data[p]!;
  }
  return { rows: m.rows, cols: m.cols, data: out };
}

/** Parses MatrixMarket text (already decompressed); `name` is used in error messages. */
export function parseMatrixMarket(text: string, name: string, options: { format: 'dense' }): Matrix;
export function parseMatrixMarket(text: string, name?: string, options?: { format?: 'csr' }): CsrMatrix;
export function parseMatrixMarket(text: string, name?: string, options?: ReadMatrixMarketOptions): CsrMatrix | Matrix;
export function parseMatrixMarket(text: string, name = 'text', options?: ReadMatrixMarketOptions): CsrMatrix | Matrix {
  expectName(name, 'name');
  if (typeof text !== 'string') throw new TypeError(`Expected a string of MatrixMarket text for ${name} but received ${describeValue(text)}`);
  const opts = parseOptions<Required<ReadMatrixMarketOptions>>(readSpecs, options, 'parseMatrixMarket()');
  const p = parse(text, name, opts.format === 'dense');
  const { rows, cols } = p.header;
  if (p.dense) {
    const m: Matrix = { rows, cols, data: p.dense };
    return opts.format === 'dense' ? m : denseToCsr(m);
  }
  return cooToCsr(rows, cols, p.ri!, p.ci!, p.v!, p.count!);
}

/**
 * Reads a MatrixMarket file (.mtx, or gzipped .mtx.gz) as a CsrMatrix (default) or, with
 * {format: 'dense'}, a row-major Matrix. See the module comment for what is supported.
 */
export function readMatrixMarket(path: string, options: { format: 'dense' }): Matrix;
export function readMatrixMarket(path: string, options?: { format?: 'csr' }): CsrMatrix;
export function readMatrixMarket(path: string, options?: ReadMatrixMarketOptions): CsrMatrix | Matrix;
export function readMatrixMarket(path: string, options?: ReadMatrixMarketOptions): CsrMatrix | Matrix {
  expectPath(path);
  const opts = parseOptions<Required<ReadMatrixMarketOptions>>(readSpecs, options, 'readMatrixMarket()');
  return parseMatrixMarket(readTextMaybeGz(path), path, opts);
}

// ---------------------------------------------------------------------------------------------
// Writer

export interface WriteMatrixMarketOptions {
  /** Comment lines written after the banner (each prefixed with "% "; no line breaks inside). */
  comments?: readonly string[];
}

const writeSpecs: OptionSpecs = {
  comments: {
    kind: 'custom',
    description: 'an array of single-line strings',
    check: (v, name) => {
      if (!Array.isArray(v) || v.some((s) => typeof s !== 'string' || /[\r\n]/.test(s))) {
        throw new TypeError(`Expected an array of single-line strings for ${name} but received ${describeValue(v)}`);
      }
      return v;
    },
  },
};

function isCsrLike(v: unknown): v is CsrMatrix {
  return v !== null && typeof v === 'object' && 'indptr' in v;
}

/** Validates a CsrMatrix argument's structure (types, lengths, monotone indptr, column range). */
export function expectCsr(v: unknown, name: string): CsrMatrix {
  if (v === null || typeof v !== 'object') {
    throw new TypeError(`Expected a CsrMatrix {rows, cols, indptr, indices, data} for ${name} but received ${describeValue(v)}`);
  }
  const m = v as CsrMatrix;
  expectShapeInteger(m.rows, `${name}.rows`);
  expectShapeInteger(m.cols, `${name}.cols`);
  for (const key of ['indptr', 'indices'] as const) {
    if (!(m[key] instanceof Int32Array)) throw new TypeError(`Expected an Int32Array for ${name}.${key} but received ${describeValue(m[key])}`);
  }
  if (!(m.data instanceof Float64Array)) throw new TypeError(`Expected a Float64Array for ${name}.data but received ${describeValue(m.data)}`);
  if (m.indptr.length !== m.rows + 1) {
    throw new RangeError(`Expected an Int32Array of length ${m.rows + 1} (rows+1) for ${name}.indptr but received ${describeValue(m.indptr)}`);
  }
  const nnz = m.indptr[m.rows]!;
  if (m.indptr[0] !== 0 || m.indices.length !== nnz || m.data.length !== nnz) {
    throw new RangeError(
      `Expected ${name}.indptr to start at 0 and end at the length of indices and data but received indptr[0] = ${m.indptr[0]}, indptr[${m.rows}] = ${nnz}, ${m.indices.length} indices, ${m.data.length} values`,
    );
  }
  for (let r = 0; r < m.rows; r++) {
    if (m.indptr[r + 1]! < m.indptr[r]!) throw new RangeError(`Expected a non-decreasing ${name}.indptr but received indptr[${r + 1}] < indptr[${r}]`);
  }
  for (let p = 0; p < nnz; p++) {
    const c = m.indices[p]!;
    if (c < 0 || c >= m.cols) throw new RangeError(`Expected column indices in 0..${m.cols - 1} for ${name}.indices but received ${c} at [${p}]`);
  }
  return m;
}

function formatValue(x: number): string {
  return Object.is(x, -0) ? '-0' : String(x);
}

/**
 * Writes a CsrMatrix (every stored entry, in storage order) or a dense Matrix (its non-zero entries, row by
 * row) as `%%MatrixMarket matrix coordinate real general`, gzipped when the path ends in .gz.
 */
export function writeMatrixMarket(path: string, value: CsrMatrix | Matrix, options?: WriteMatrixMarketOptions): void {
  expectPath(path);
  const opts = parseOptions<WriteMatrixMarketOptions>(writeSpecs, options, 'writeMatrixMarket()');
  const csr = isCsrLike(value) ? expectCsr(value, 'the matrix of writeMatrixMarket()') : denseToCsr(expectMatrix(value, 'the matrix of writeMatrixMarket()', { finite: false }));
  writeChunksMaybeGz(path, encodeMatrixMarketChunks(csr, opts.comments ?? []));
}

/** The text of a coordinate real general file for a CsrMatrix, as Buffers of about a megabyte each. */
function encodeMatrixMarketChunks(m: CsrMatrix, comments: readonly string[]): Buffer[] {
  const nnz = m.indptr[m.rows]!;
  let head = '%%MatrixMarket matrix coordinate real general\n';
  for (const c of comments) head += `% ${c}\n`;
  head += `${m.rows} ${m.cols} ${nnz}\n`;
  const chunks: Buffer[] = [Buffer.from(head, 'utf8')];
  let parts: string[] = [];
  for (let r = 0; r < m.rows; r++) {
    const prefix = `${r + 1} `;
    for (let p = m.indptr[r]!; p < m.indptr[r + 1]!; p++) {
      parts.push(`${prefix}${m.indices[p]! + 1} ${formatValue(m.data[p]!)}\n`);
      if (parts.length === 32768) {
        chunks.push(Buffer.from(parts.join(''), 'latin1'));
        parts = [];
      }
    }
  }
  if (parts.length) chunks.push(Buffer.from(parts.join(''), 'latin1'));
  return chunks;
}

/** The complete MatrixMarket text of a CsrMatrix or Matrix (as writeMatrixMarket would write it, uncompressed). */
export function formatMatrixMarket(value: CsrMatrix | Matrix, options?: WriteMatrixMarketOptions): string {
  const opts = parseOptions<WriteMatrixMarketOptions>(writeSpecs, options, 'formatMatrixMarket()');
  const csr = isCsrLike(value) ? expectCsr(value, 'the matrix of formatMatrixMarket()') : denseToCsr(expectMatrix(value, 'the matrix of formatMatrixMarket()', { finite: false }));
  return Buffer.concat(encodeMatrixMarketChunks(csr, opts.comments ?? [])).toString('utf8');
}
