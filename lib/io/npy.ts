/**
 * NumPy .npy reader and writer.
 *
 * Reads format versions 1.0, 2.0 and 3.0; dtypes '<f8', '<f4', '|u1', '|i1', '|b1', '<i2', '<i4', '<i8',
 * '<u2', '<u4', '<u8' (all converted to float64; 64-bit integers beyond 2^53 round to the nearest double);
 * C or Fortran order (Fortran data is reordered to C order); any number ≥ 1 of dimensions, each ≥ 1.
 * Big-endian dtypes ('>f8' …), structured/complex/object dtypes, 0-d and empty arrays are refused with a
 * FormatError that names the file and the byte offset. A path ending in .gz is gunzipped first.
 *
 * Memory: a plain '<f8' C-order file is read straight from disk into the result's Float64Array (one
 * full-size allocation, no intermediate Buffer). A gzipped one is decompressed into one buffer and, when its
 * data starts 8-byte aligned (always for files written by NumPy or writeNpy, whose header is padded to 64
 * bytes), the result is a Float64Array view into that private buffer: no second copy. Other dtypes need the
 * raw bytes plus the float64 result; Fortran order needs one more float64 array for the reordering.
 *
 * The writer produces exactly what `numpy.save` (NumPy ≥ 1.23) writes for a float64 C-order array: format
 * 1.0 (2.0 if the header would not fit), header padded with spaces so the data starts at a multiple of 64.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import type { Matrix } from '../matrix.js';
import type { Tensor } from '../tensor.js';
import { describeValue, expectFloat64Array, expectInteger, expectMatrix, expectName, expectShapeInteger, isObjectArgument, parseOptions, readFields, readList, type OptionSpecs } from '../validate.js';
import { FormatError, quoteContent } from './errors.js';
import { checkMemory } from '../memory.js';
import { expectPath, gunzipBytes, gunzipPrefix, isGzipPath, looksGzipped, readFully, readWholeFile, writeChunksMaybeGz } from './files.js';

const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // "\x93NUMPY"
const ALIGN = 64;
/** NumPy ≥ 1.23 leaves room in the header for the first axis to grow to this many digits. */
const GROWTH_AXIS_MAX_DIGITS = 21;
const MAX_ELEMENTS = 2 ** 32;

type DtypeKind = 'f' | 'i' | 'u' | 'b';
interface Dtype {
  readonly descr: string;
  readonly kind: DtypeKind;
  readonly size: number;
}

const SUPPORTED = ['<f8', '<f4', '|u1', '|i1', '|b1', '<i2', '<i4', '<i8', '<u2', '<u4', '<u8'];

/** What the header of an .npy file says. */
export interface NpyHeader {
  /** [major, minor] format version. */
  readonly version: readonly [number, number];
  /** The dtype string as written in the file, e.g. '<f8'. */
  readonly descr: string;
  readonly fortranOrder: boolean;
  readonly shape: readonly number[];
  /** Byte offset where the array data starts. */
  readonly dataOffset: number;
  /** Number of data bytes (elements × item size). */
  readonly dataLength: number;
}

interface ParsedHeader extends NpyHeader {
  readonly dtype: Dtype;
  readonly count: number;
}

function assertLittleEndianHost(): void {
  if (os.endianness() !== 'LE') throw new Error('The .npy reader assumes a little-endian host');
}

// ---------------------------------------------------------------------------------------------
// Header parsing

function shapeText(shape: readonly number[]): string {
  return shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(', ')})`;
}

function hexBytes(bytes: Uint8Array, n: number): string {
  return Array.from(bytes.subarray(0, n), (b) => b.toString(16).padStart(2, '0')).join(' ');
}

/** Parses the fixed-size preamble: magic, version, header length. `total` is the full size of the file. */
function parsePreamble(head: Uint8Array, total: number, file: string): { version: [number, number]; headerStart: number; headerLength: number } {
  const have = Math.min(head.length, 6);
  for (let i = 0; i < have; i++) {
    if (head[i] !== MAGIC[i]) {
      const hint = looksGzipped(head) ? ' (these are gzip bytes: name the file .npy.gz)' : '';
      throw new FormatError(file, `Expected the NumPy magic string \\x93NUMPY (93 4e 55 4d 50 59) but received ${hexBytes(head, 6)}${hint}`, {
        code: 'bad-magic',
        offset: i,
      });
    }
  }
  if (total < 10) {
    throw new FormatError(file, `Expected at least 10 bytes (magic, version, header length) but the file has only ${total} (truncated)`, {
      code: 'truncated',
      offset: total,
    });
  }
  const major = head[6]!;
  const minor = head[7]!;
  if (!(major >= 1 && major <= 3) || minor !== 0) {
    throw new FormatError(file, `Expected .npy format version 1.0, 2.0 or 3.0 but received ${major}.${minor}`, {
      code: 'unsupported',
      offset: 6,
    });
  }
  if (major === 1) {
    return { version: [major, minor], headerStart: 10, headerLength: head[8]! | (head[9]! << 8) };
  }
  if (total < 12) {
    throw new FormatError(file, `Expected a 4-byte header length for format ${major}.0 but the file has only ${total} bytes (truncated)`, {
      code: 'truncated',
      offset: total,
    });
  }
  const len = (head[8]! | (head[9]! << 8) | (head[10]! << 16)) + head[11]! * 2 ** 24;
  return { version: [major, minor], headerStart: 12, headerLength: len };
}

type PyValue = string | number | boolean | null | PyValue[] | Map<string, { value: PyValue; pos: number }>;

/** Recursive-descent parser for the Python literal subset NumPy writes: dict, tuple, list, str, int, bool, None. */
class LiteralParser {
  pos = 0;
  constructor(
    private readonly text: string,
    private readonly file: string,
    private readonly base: number,
  ) {}

  fail(what: string, at = this.pos): never {
    const found = at >= this.text.length ? 'the end of the header' : quoteContent(this.text.slice(at, at + 20));
    throw new FormatError(this.file, `Expected ${what} in the .npy header but received ${found}`, {
      code: 'bad-header',
      offset: this.base + at,
    });
  }

  skipSpace(): void {
    while (this.pos < this.text.length && /\s/.test(this.text[this.pos]!)) this.pos++;
  }

  value(): PyValue {
    this.skipSpace();
    const c = this.text[this.pos];
    if (c === '{') return this.dict();
    if (c === '(' || c === '[') return this.sequence(c === '(' ? ')' : ']');
    if (c === "'" || c === '"') return this.string();
    const m = /^(?:-?\d+L?|True|False|None)/.exec(this.text.slice(this.pos, this.pos + 40));
    if (!m) this.fail('a Python literal (dict, tuple, string, integer, True, False or None)');
    this.pos += m[0].length;
    if (m[0] === 'True') return true;
    if (m[0] === 'False') return false;
    if (m[0] === 'None') return null;
    return Number(m[0].replace('L', ''));
  }

  string(): string {
    const quote = this.text[this.pos]!;
    let out = '';
    let i = this.pos + 1;
    while (i < this.text.length && this.text[i] !== quote) {
      if (this.text[i] === '\\' && i + 1 < this.text.length) i++;
      out += this.text[i];
      i++;
    }
    if (i >= this.text.length) this.fail(`a closing ${quote} for the string`, this.pos);
    this.pos = i + 1;
    return out;
  }

  sequence(close: string): PyValue[] {
    this.pos++;
    const items: PyValue[] = [];
    for (;;) {
      this.skipSpace();
      if (this.text[this.pos] === close) {
        this.pos++;
        return items;
      }
      items.push(this.value());
      this.skipSpace();
      if (this.text[this.pos] === ',') this.pos++;
      else if (this.text[this.pos] !== close) this.fail(`',' or '${close}'`);
    }
  }

  dict(): Map<string, { value: PyValue; pos: number }> {
    this.pos++;
    const out = new Map<string, { value: PyValue; pos: number }>();
    for (;;) {
      this.skipSpace();
      if (this.text[this.pos] === '}') {
        this.pos++;
        return out;
      }
      const keyPos = this.pos;
      const key = this.value();
      if (typeof key !== 'string') this.fail('a string key', keyPos);
      this.skipSpace();
      if (this.text[this.pos] !== ':') this.fail("':' after a dict key");
      this.pos++;
      this.skipSpace();
      const pos = this.pos;
      out.set(key, { value: this.value(), pos });
      this.skipSpace();
      if (this.text[this.pos] === ',') this.pos++;
      else if (this.text[this.pos] !== '}') this.fail("',' or '}'");
    }
  }
}

function parseDtype(descr: PyValue, file: string, offset: number): Dtype {
  if (typeof descr !== 'string') {
    throw new FormatError(file, `Expected a simple dtype such as '<f8' but received a structured dtype (${Array.isArray(descr) ? 'a list of fields' : describeValue(descr)}); supported: ${SUPPORTED.join(', ')}`, {
      code: 'unsupported',
      offset,
    });
  }
  const m = /^([<>|=]?)([a-zA-Z])(\d+)$/.exec(descr);
  const order = m?.[1] ?? '';
  const kind = m?.[2] ?? '';
  const size = m ? Number(m[3]) : 0;
  if (m && order === '>' && size > 1 && 'fiub'.includes(kind)) {
    throw new FormatError(file, `Expected a little-endian dtype but received '${descr}' (big-endian; save it from NumPy as a.astype('<${kind}${size}'))`, {
      code: 'big-endian',
      offset,
    });
  }
  const canonical = `${size === 1 ? '|' : '<'}${kind}${size}`;
  const orderOk = order === '' || order === '=' || (size === 1 ? true : order === '<');
  if (!m || !orderOk || !SUPPORTED.includes(canonical)) {
    throw new FormatError(file, `Expected one of the dtypes ${SUPPORTED.join(', ')} but received ${quoteContent(descr)}`, {
      code: 'unsupported',
      offset,
    });
  }
  return { descr, kind: kind as DtypeKind, size };
}

/**
 * Parses the header dict and checks it; `total` (the file size) is used for the truncation checks.
 * With `checkSize` false (a gzip prefix, whose total is not known yet) the data size is not compared
 * with the file size.
 */
function parseHeader(bytes: Uint8Array, total: number, file: string, checkSize = true): ParsedHeader {
  const { version, headerStart, headerLength } = parsePreamble(bytes, total, file);
  const dataOffset = headerStart + headerLength;
  if (dataOffset > total || bytes.length < dataOffset) {
    throw new FormatError(file, `Expected a ${headerLength}-byte header (bytes ${headerStart}..${dataOffset - 1}) but the file ends at byte ${total} (truncated)`, {
      code: 'truncated',
      offset: Math.min(total, bytes.length),
    });
  }
  const raw = bytes.subarray(headerStart, dataOffset);
  const text = Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength).toString(version[0] === 3 ? 'utf8' : 'latin1');
  const parser = new LiteralParser(text, file, headerStart);
  parser.skipSpace();
  if (text[parser.pos] !== '{') parser.fail('a header dict starting with {');
  const dict = parser.value() as Map<string, { value: PyValue; pos: number }>;
  parser.skipSpace();
  if (parser.pos !== text.length) parser.fail('only spaces and a newline after the header dict');
  const keys = [...dict.keys()].sort().join(', ');
  if (keys !== 'descr, fortran_order, shape') {
    throw new FormatError(file, `Expected the header keys descr, fortran_order, shape but received ${keys || 'none'}`, {
      code: 'bad-header',
      offset: headerStart,
    });
  }
  const descr = dict.get('descr')!;
  const fortran = dict.get('fortran_order')!;
  const shapeEntry = dict.get('shape')!;
  const dtype = parseDtype(descr.value, file, headerStart + descr.pos);
  if (typeof fortran.value !== 'boolean') {
    throw new FormatError(file, `Expected True or False for fortran_order but received ${describeValue(fortran.value)}`, {
      code: 'bad-header',
      offset: headerStart + fortran.pos,
    });
  }
  const shapeValue = shapeEntry.value;
  const shapeOffset = headerStart + shapeEntry.pos;
  if (!Array.isArray(shapeValue) || shapeValue.some((d) => typeof d !== 'number' || !Number.isSafeInteger(d) || d < 0)) {
    throw new FormatError(file, `Expected a tuple of non-negative integers for shape but received ${quoteContent(text.slice(shapeEntry.pos, shapeEntry.pos + 30))}`, {
      code: 'bad-header',
      offset: shapeOffset,
    });
  }
  const shape = shapeValue as number[];
  if (shape.length === 0 || shape.includes(0)) {
    throw new FormatError(file, `Expected an array with at least one dimension, each of length ≥ 1, but received shape ${shapeText(shape).replace('(,)', '()')}`, {
      code: 'unsupported',
      offset: shapeOffset,
    });
  }
  let count = 1;
  for (const d of shape) count *= d;
  if (!Number.isSafeInteger(count) || count > MAX_ELEMENTS) {
    throw new FormatError(file, `Expected at most 2^32 elements but received shape ${shapeText(shape)} (${count} elements)`, {
      code: 'unsupported',
      offset: shapeOffset,
    });
  }
  const dataLength = count * dtype.size;
  const header = { version, descr: dtype.descr, fortranOrder: fortran.value, shape, dataOffset, dataLength, dtype, count };
  if (!checkSize) return header;
  const available = total - dataOffset;
  if (available < dataLength) {
    throw new FormatError(
      file,
      `Expected ${dataLength} bytes of '${dtype.descr}' data for shape ${shapeText(shape)} after the ${dataOffset}-byte header but received ${available} (the file is truncated)`,
      { code: 'truncated', offset: total },
    );
  }
  if (available > dataLength) {
    throw new FormatError(
      file,
      `Expected the data for shape ${shapeText(shape)} of '${dtype.descr}' to end the file at byte ${dataOffset + dataLength} but received ${available - dataLength} more bytes`,
      { code: 'entry-count', offset: dataOffset + dataLength },
    );
  }
  return header;
}

/**
 * Refuses, before anything is allocated, an array whose reading needs more than the memory limit:
 * the float64 result, plus `extra` bytes held at the same time (raw data of another dtype, the
 * decompressed file), plus one more float64 copy when Fortran order must be reordered.
 */
function checkArrayMemory(h: ParsedHeader, file: string, extra: number): void {
  const reorder = h.fortranOrder && !layoutTrivial(h.shape) ? 8 * h.count : 0;
  checkMemory(8 * h.count + extra + reorder, `the ${shapeText(h.shape)} '${h.descr}' array of ${file}`);
}

// ---------------------------------------------------------------------------------------------
// Data conversion

/** True when Fortran and C order coincide (at most one dimension longer than 1). */
function layoutTrivial(shape: readonly number[]): boolean {
  return shape.filter((d) => d > 1).length <= 1;
}

/** Converts raw little-endian data bytes to a fresh float64 array, in file order. */
function decode(raw: Uint8Array, dtype: Dtype, count: number): Float64Array {
  const out = new Float64Array(count);
  if (dtype.kind === 'f' && dtype.size === 8) {
    new Uint8Array(out.buffer).set(raw);
    return out;
  }
  // Typed-array views need an offset that is a multiple of the item size; copy the bytes when it is not.
  const src = raw.byteOffset % dtype.size === 0 ? raw : raw.slice();
  const { buffer, byteOffset } = src;
  switch (`${dtype.kind}${dtype.size}`) {
    case 'f4':
      out.set(new Float32Array(buffer, byteOffset, count));
      break;
    case 'i1':
      out.set(new Int8Array(buffer, byteOffset, count));
      break;
    case 'u1':
      out.set(new Uint8Array(buffer, byteOffset, count));
      break;
    case 'b1': {
      const b = new Uint8Array(buffer, byteOffset, count);
      for (let i = 0; i < count; i++) out[i] = b[i] === 0 ? 0 : 1;
      break;
    }
    case 'i2':
      out.set(new Int16Array(buffer, byteOffset, count));
      break;
    case 'u2':
      out.set(new Uint16Array(buffer, byteOffset, count));
      break;
    case 'i4':
      out.set(new Int32Array(buffer, byteOffset, count));
      break;
    case 'u4':
      out.set(new Uint32Array(buffer, byteOffset, count));
      break;
    case 'i8': {
      const b = new BigInt64Array(buffer, byteOffset, count);
      for (let i = 0; i < count; i++) out[i] = Number(b[i]!);
      break;
    }
    case 'u8': {
      const b = new BigUint64Array(buffer, byteOffset, count);
      for (let i = 0; i < count; i++) out[i] = Number(b[i]!);
      break;
    }
    default:
      throw new Error(`internal: no decoder for ${dtype.descr}`);
  }
  return out;
}

/** Reorders Fortran-order (first index fastest) data to C order (last index fastest), into a fresh array. */
export function fortranToC(src: Float64Array, shape: readonly number[]): Float64Array {
  const dims = expectNpyShape(shape, 'shape');
  expectFloat64Array(src, 'src', dims.reduce((a, b) => a * b, 1), dims.join('*'));
  shape = dims;
  const n = src.length;
  const out = new Float64Array(n);
  const nd = shape.length;
  if (nd === 2) {
    // Blocked transpose: src[i + rows*j] → out[i*cols + j].
    const rows = shape[0]!;
    const cols = shape[1]!;
    const B = 32;
    for (let i0 = 0; i0 < rows; i0 += B) {
      const i1 = Math.min(rows, i0 + B);
      for (let j0 = 0; j0 < cols; j0 += B) {
        const j1 = Math.min(cols, j0 + B);
        for (let i = i0; i < i1; i++) for (let j = j0; j < j1; j++) out[i * cols + j] = src[i + rows * j]!;
      }
    }
    return out;
  }
  // General case: walk the output in C order with an odometer over all but the last index.
  const fstride = new Array<number>(nd);
  let s = 1;
  for (let k = 0; k < nd; k++) {
    fstride[k] = s;
    s *= shape[k]!;
  }
  const inner = shape[nd - 1]!;
  const innerStride = fstride[nd - 1]!;
  const counter = new Array<number>(nd).fill(0);
  let base = 0;
  for (let o = 0; o < n; o += inner) {
    for (let t = 0, p = base; t < inner; t++, p += innerStride) out[o + t] = src[p]!;
    for (let k = nd - 2; k >= 0; k--) {
      counter[k]!++;
      base += fstride[k]!;
      if (counter[k]! < shape[k]!) break;
      base -= fstride[k]! * shape[k]!;
      counter[k] = 0;
    }
  }
  return out;
}

function finish(header: ParsedHeader, fileOrder: Float64Array): Tensor {
  const data = header.fortranOrder && !layoutTrivial(header.shape) ? fortranToC(fileOrder, header.shape) : fileOrder;
  return { shape: [...header.shape], data };
}

function isPlainF8(h: ParsedHeader): boolean {
  return h.dtype.kind === 'f' && h.dtype.size === 8 && (!h.fortranOrder || layoutTrivial(h.shape));
}

/**
 * Parses .npy bytes. With `mayAlias` the result may be a view into `bytes` (only for private buffers).
 */
function parseNpyBytes(bytes: Uint8Array, file: string, mayAlias: boolean): Tensor {
  assertLittleEndianHost();
  const header = parseHeader(bytes, bytes.byteLength, file);
  const raw = bytes.subarray(header.dataOffset, header.dataOffset + header.dataLength);
  if (mayAlias && isPlainF8(header) && raw.byteOffset % 8 === 0) {
    return { shape: [...header.shape], data: new Float64Array(raw.buffer, raw.byteOffset, header.count) };
  }
  checkArrayMemory(header, file, raw.byteOffset % header.dtype.size === 0 ? 0 : header.dataLength);
  return finish(header, decode(raw, header.dtype, header.count));
}

// ---------------------------------------------------------------------------------------------
// Public API

/**
 * Parses the bytes of an .npy file (not gzipped) into a Tensor in C order. `name` is used in error
 * messages. The result never shares memory with `buffer`.
 */
export function parseNpy(buffer: Uint8Array | ArrayBuffer, name = 'buffer'): Tensor {
  // `name` only labels messages, but it must be text: an object here would make every message throw.
  expectName(name, 'name');
  let bytes: Uint8Array;
  if (buffer instanceof Uint8Array) bytes = buffer;
  else if (buffer instanceof ArrayBuffer) bytes = new Uint8Array(buffer);
  else throw new TypeError(`Expected a Uint8Array, Buffer or ArrayBuffer for the bytes of ${name} but received ${describeValue(buffer)}`);
  return parseNpyBytes(bytes, name, false);
}

/**
 * Decompresses an .npy.gz file without letting it inflate past what its header declares: the header is
 * read from an inflated prefix first, the memory the array needs is checked against the limit, and only
 * then is the whole stream inflated, capped at the declared size (header + data). A gzip bomb is refused
 * after at most that many bytes.
 */
function gunzipNpy(path: string): Buffer {
  const compressed = readWholeFile(path);
  const pre = gunzipPrefix(compressed, path, 12);
  if (pre === undefined) return gunzipBytes(compressed, path); // under 12 bytes in all
  const { headerStart, headerLength } = parsePreamble(pre, Infinity, path);
  const head = gunzipPrefix(compressed, path, headerStart + headerLength);
  if (head === undefined) return gunzipBytes(compressed, path); // shorter than its header says: truncated
  const h = parseHeader(head, Infinity, path, false);
  const declared = h.dataOffset + h.dataLength;
  // Held at once: the compressed bytes and the inflated file (the result aliases it for plain '<f8').
  checkArrayMemory(h, path, compressed.length + declared - (isPlainF8(h) ? 8 * h.count : 0));
  return gunzipBytes(compressed, path, { declaredBytes: declared, declaredBy: `the size its .npy header declares for shape ${shapeText(h.shape)} of '${h.descr}'` });
}

/** Reads only the header of an .npy file (plain files only; a .gz file is decompressed to read it). */
export function readNpyHeader(path: string): NpyHeader {
  expectPath(path);
  if (isGzipPath(path)) {
    const bytes = gunzipNpy(path);
    const { dtype: _d, count: _c, ...h } = parseHeader(bytes, bytes.length, path);
    return h;
  }
  const fd = fs.openSync(path, 'r');
  try {
    const { dtype: _d, count: _c, ...h } = readHeaderFromFd(fd, path);
    return h;
  } finally {
    fs.closeSync(fd);
  }
}

function readHeaderFromFd(fd: number, path: string): ParsedHeader {
  const total = fs.fstatSync(fd).size;
  const pre = new Uint8Array(Math.min(total, 12));
  readFully(fd, pre, 0);
  const { headerStart, headerLength } = parsePreamble(pre, total, path);
  checkMemory(Math.min(total, headerStart + headerLength), `the .npy header of ${path}`);
  const headBytes = new Uint8Array(Math.min(total, headerStart + headerLength));
  readFully(fd, headBytes, 0);
  return parseHeader(headBytes, total, path);
}

/**
 * Reads an .npy file (or .npy.gz, by extension) into a Tensor in C order, converting the data to float64.
 * See the module comment for supported dtypes and memory use. Content problems throw a FormatError
 * naming the file and the byte offset.
 */
export function readNpy(path: string): Tensor {
  expectPath(path);
  if (isGzipPath(path)) return parseNpyBytes(gunzipNpy(path), path, true);
  assertLittleEndianHost();
  const fd = fs.openSync(path, 'r');
  try {
    const header = readHeaderFromFd(fd, path);
    checkArrayMemory(header, path, header.dtype.kind === 'f' && header.dtype.size === 8 ? 0 : header.dataLength);
    let fileOrder: Float64Array;
    let got: number;
    if (header.dtype.kind === 'f' && header.dtype.size === 8) {
      // Straight from disk into the float64 result: the only full-size allocation.
      fileOrder = new Float64Array(header.count);
      got = readFully(fd, new Uint8Array(fileOrder.buffer), header.dataOffset);
    } else {
      const raw = new Uint8Array(header.dataLength);
      got = readFully(fd, raw, header.dataOffset);
      fileOrder = got === header.dataLength ? decode(raw, header.dtype, header.count) : new Float64Array(0);
    }
    if (got !== header.dataLength) {
      throw new FormatError(path, `Expected ${header.dataLength} bytes of data but could read only ${got} (the file shrank while being read)`, {
        code: 'truncated',
        offset: header.dataOffset + got,
      });
    }
    return finish(header, fileOrder);
  } finally {
    fs.closeSync(fd);
  }
}

export interface ReadNpyMatrixOptions {
  /**
   * Accept arrays of other than 2 dimensions: a 1-D array of length n becomes n × 1, an N-D array
   * d0 × d1 × … becomes d0 × (d1·d2·…) (rows stay observations; no copy). Default false: only 2-D.
   */
  flatten?: boolean;
}

const npyMatrixSpecs: OptionSpecs = {
  flatten: { kind: 'boolean', description: 'reshape 1-D and N-D arrays to a matrix', default: false },
};

/** Reshapes a Tensor as a Matrix (see ReadNpyMatrixOptions.flatten); `file` names the source in errors. */
export function tensorAsMatrix(t: Tensor, file: string, flatten = false): Matrix {
  if (!isObjectArgument(t)) throw new TypeError(`Expected a Tensor {shape, data: Float64Array} for t but received ${describeValue(t)}`);
  const fields = readFields(t, ['shape', 'data'] as const, 't');
  const shape = expectNpyShape(fields.shape, 't.shape');
  expectFloat64Array(fields.data, 't.data', shape.reduce((a, b) => a * b, 1), shape.join('*'));
  if (typeof file !== 'string') throw new TypeError(`Expected a file name string for file but received ${describeValue(file)}`);
  if (typeof flatten !== 'boolean') throw new TypeError(`Expected a boolean for flatten but received ${describeValue(flatten)}`);
  t = { shape, data: fields.data as Float64Array };
  if (shape.length === 0) throw new RangeError(`Expected a 2-D array in ${file} but received a scalar (shape ())`);
  if (shape[0] === 0 && shape.length !== 2) throw new RangeError(`Expected a 2-D array in ${file} but received shape ${shapeText(shape)}, which has no rows to flatten`);
  if (shape.length === 2) return { rows: shape[0]!, cols: shape[1]!, data: t.data };
  if (!flatten) {
    throw new RangeError(
      `Expected a 2-D array in ${file} but received shape ${shapeText(shape)}; pass {flatten: true} to read it as a ${shape[0]} × ${t.data.length / shape[0]!} matrix`,
    );
  }
  return { rows: shape[0]!, cols: t.data.length / shape[0]!, data: t.data };
}

/** Reads an .npy / .npy.gz file as a Matrix (2-D arrays; others with {flatten: true}). */
export function readNpyMatrix(path: string, options?: ReadNpyMatrixOptions): Matrix {
  const opts = parseOptions<Required<ReadNpyMatrixOptions>>(npyMatrixSpecs, options, 'readNpyMatrix()');
  return tensorAsMatrix(readNpy(path), path, opts.flatten);
}

/** Shape and data of a Tensor or Matrix argument, validated (non-finite values are allowed). */
/**
 * An .npy shape: an array of 0 to 32 non-negative integers (numpy allows empty and zero-length axes)
 * whose product stays within a typed array's reach.
 */
function expectNpyShape(v: unknown, name: string): number[] {
  if (!Array.isArray(v)) throw new TypeError(`Expected an array of dimensions for ${name} but received ${describeValue(v)}`);
  const list = readList(v, name, 'an array of dimensions', 33);
  if (list.length > 32) throw new RangeError(`Expected at most 32 dimensions (numpy's limit) for ${name} but received ${list.length}`);
  const dims = list.map((d, i) => expectInteger(d, `${name}[${i}]`, 0, MAX_ELEMENTS, 'a non-negative integer'));
  let n = 1;
  for (const d of dims) n *= d;
  if (n > MAX_ELEMENTS) throw new RangeError(`Expected a shape with at most 2^32 elements for ${name} but received [${dims.join(', ')}]`);
  return dims;
}

function shapeAndData(value: unknown, name: string): { shape: number[]; data: Float64Array } {
  if (value !== null && typeof value === 'object' && Array.isArray((value as Tensor).shape)) {
    const t = value as Tensor;
    if (t.shape.length === 0) throw new RangeError(`Expected at least one dimension in ${name}.shape but received an empty array`);
    const shape = t.shape.map((d, i) => expectShapeInteger(d, `${name}.shape[${i}]`));
    let n = 1;
    for (const d of shape) n *= d;
    if (!Number.isSafeInteger(n) || n > MAX_ELEMENTS) {
      throw new RangeError(`Expected a shape with at most 2^32 elements for ${name} but received [${shape.join(', ')}]`);
    }
    return { shape, data: expectFloat64Array(t.data, `${name}.data`, n, shape.join('*')) };
  }
  const m = expectMatrix(value, name, { finite: false });
  return { shape: [m.rows, m.cols], data: m.data };
}

/** The .npy v1.0 header (v2.0 if it would exceed 65535 bytes) that numpy.save writes for a float64 C-order array. */
export function npyHeaderBytes(shape: readonly number[]): Buffer {
  shape = expectNpyShape(shape, 'shape');
  let text = `{'descr': '<f8', 'fortran_order': False, 'shape': ${shapeText(shape)}, }`;
  text += ' '.repeat(Math.max(0, GROWTH_AXIS_MAX_DIGITS - String(shape[0]).length));
  let prefix = 10;
  let padlen = ALIGN - ((prefix + text.length + 1) % ALIGN);
  const v2 = text.length + 1 + padlen > 0xffff;
  if (v2) {
    prefix = 12;
    padlen = ALIGN - ((prefix + text.length + 1) % ALIGN);
  }
  const hlen = text.length + 1 + padlen;
  const out = Buffer.alloc(prefix + hlen, 0x20);
  out.set(MAGIC, 0);
  out[6] = v2 ? 2 : 1;
  out[7] = 0;
  if (v2) out.writeUInt32LE(hlen, 8);
  else out.writeUInt16LE(hlen, 8);
  out.write(text, prefix, 'latin1');
  out[out.length - 1] = 0x0a;
  return out;
}

/** The complete .npy bytes (float64, C order) of a Tensor or Matrix, as one new Buffer. */
export function encodeNpy(value: Tensor | Matrix): Buffer {
  const { shape, data } = shapeAndData(value, 'the value of encodeNpy()');
  assertLittleEndianHost();
  return Buffer.concat([npyHeaderBytes(shape), new Uint8Array(data.buffer, data.byteOffset, data.byteLength)]);
}

/**
 * Writes a Tensor (any shape) or Matrix (rows × cols) as a float64 C-order .npy file, format 1.0, byte for
 * byte what numpy.save writes; gzip-compressed when the path ends in .gz. The data is not copied for a
 * plain file.
 */
export function writeNpy(path: string, value: Tensor | Matrix): void {
  expectPath(path);
  const { shape, data } = shapeAndData(value, 'the value of writeNpy()');
  assertLittleEndianHost();
  writeChunksMaybeGz(path, [npyHeaderBytes(shape), new Uint8Array(data.buffer, data.byteOffset, data.byteLength)]);
}
