/**
 * Every argument check of the public API lives here, so that messages have one shape:
 *   "Expected <what> for <name> but received <value>".
 * Type problems throw TypeError, out-of-range values RangeError, always before native work starts.
 * Option objects are described declaratively (OptionSpecs) so that the same definitions drive
 * validation, defaults and generated help text.
 *
 * Snapshots: every reader here reads each field of the caller's object once (a getter runs once),
 * validates what it read and returns a fresh object holding those values, which is what the native
 * layer gets. Typed arrays are identified through the intrinsic %TypedArray% getters, so a subclass
 * or a Proxy cannot lie about its kind or length; a buffer another thread or user code could resize
 * or rewrite behind our back (SharedArrayBuffer, resizable buffer, subclass) is copied first.
 */
import { constants as bufferConstants } from 'node:buffer';
import { types } from 'node:util';
import { getHeapStatistics } from 'node:v8';

import type { Matrix } from './matrix.js';
import { checkMemory, float64Bytes } from './memory.js';
import { didYouMean } from './suggest.js';

const TypedArrayPrototype = Object.getPrototypeOf(Uint8Array.prototype) as object;
function intrinsicGetter(key: PropertyKey): (this: unknown) => unknown {
  return Object.getOwnPropertyDescriptor(TypedArrayPrototype, key)!.get! as (this: unknown) => unknown;
}
const typedArrayTag = intrinsicGetter(Symbol.toStringTag);
const typedArrayLength = intrinsicGetter('length');
const typedArrayBuffer = intrinsicGetter('buffer');
const resizableGetter = Object.getOwnPropertyDescriptor(ArrayBuffer.prototype, 'resizable')?.get;

/** The kind of a real typed array ('Float64Array', …), or undefined for anything else (Proxies included). */
export function typedArrayName(v: unknown): string | undefined {
  return typedArrayTag.call(v) as string | undefined;
}

/** The length of a real typed array, read without running user code (0 once its buffer is detached). */
export function typedArrayLengthOf(v: ArrayBufferView): number {
  return typedArrayLength.call(v) as number;
}

/**
 * The most elements one typed array may have in this Node.js (V8's limit: 2^32 in Node 20, more in
 * later versions); a request beyond it would fail with V8's own "Invalid typed array length".
 */
export const maxTypedArrayLength: number = bufferConstants.MAX_LENGTH;
const maxLengthText = Number.isInteger(Math.log2(maxTypedArrayLength)) ? `2^${Math.log2(maxTypedArrayLength)}` : `${maxTypedArrayLength}`;

/** Short human description of a received value, for error messages; never throws, never runs a getter twice. */
export function describeValue(v: unknown): string {
  if (v === null) return 'null';
  if (v === undefined) return 'undefined';
  if (typeof v === 'number') return Number.isNaN(v) ? 'NaN' : `${v}`;
  if (typeof v === 'string') return `the string ${JSON.stringify(v.length > 40 ? v.slice(0, 40) + '…' : v)}`;
  if (typeof v === 'boolean' || typeof v === 'bigint') return `${typeof v} ${String(v)}`;
  if (typeof v === 'symbol') return 'a symbol';
  if (typeof v === 'function') return 'a function';
  if (types.isProxy(v)) return 'a Proxy';
  const tag = typedArrayName(v);
  if (tag !== undefined) return `a ${tag} of length ${typedArrayLengthOf(v as ArrayBufferView)}`;
  try {
    if (ArrayBuffer.isView(v)) return 'a DataView';
    if (Array.isArray(v)) return `an array of length ${(v as unknown[]).length}`;
    const ctor = (v as object).constructor?.name;
    return typeof ctor === 'string' && ctor !== '' && ctor !== 'Object' ? `a ${ctor}` : 'an object';
  } catch {
    return 'an object';
  }
}

/** A string naming the argument in messages (the `name` parameter of the exported builders). */
export function expectName(v: unknown, name: string): string {
  if (typeof v !== 'string') throw new TypeError(`Expected a string for ${name} but received ${describeValue(v)}`);
  if (v.length === 0 || v.length > 200) {
    throw new RangeError(`Expected a string of 1 to 200 characters for ${name} but received ${describeValue(v)}`);
  }
  return v;
}

/** True for a plain object argument (not null, an array, a typed array or a function). */
export function isObjectArgument(v: unknown): v is object {
  return v !== null && typeof v === 'object' && !Array.isArray(v) && !ArrayBuffer.isView(v);
}

/**
 * Reads `keys` of an argument object once each (getters run now, once) into a plain record. A getter
 * or Proxy trap that throws becomes a TypeError naming the field, with the original as `cause`.
 */
export function readFields<K extends string>(v: object, keys: readonly K[], name: string): Record<K, unknown> {
  const out = {} as Record<K, unknown>;
  for (const key of keys) out[key] = readField(v, key, `${name}.${key}`);
  return out;
}

/** Reads one property (or array element), turning a throwing getter into a TypeError naming it. */
export function readField(v: object, key: PropertyKey, name: string): unknown {
  try {
    return (v as Record<PropertyKey, unknown>)[key];
  } catch (err) {
    throw new TypeError(`Expected a readable value for ${name} but reading it threw ${describeThrown(err)}`, { cause: err });
  }
}

/** Own enumerable keys of an options object, turning a throwing Proxy trap into a TypeError. */
export function ownKeys(v: object, name: string): string[] {
  try {
    return Object.keys(v);
  } catch (err) {
    throw new TypeError(`Expected an object whose keys can be listed for ${name} but listing them threw ${describeThrown(err)}`, { cause: err });
  }
}

function describeThrown(err: unknown): string {
  if (err instanceof Error) {
    try {
      return `${err.name}: ${String(err.message).slice(0, 200)}`;
    } catch {
      return 'an error';
    }
  }
  return describeValue(err);
}

/**
 * Reads an array-like argument (an Array or a typed array) into a fresh Array, each element once.
 * `maxLength` bounds it before anything is read.
 */
export function readList(v: unknown, name: string, what: string, maxLength = maxTypedArrayLength): unknown[] {
  const tag = typedArrayName(v);
  if (tag !== undefined && tag !== 'BigInt64Array' && tag !== 'BigUint64Array') {
    const n = typedArrayLengthOf(v as ArrayBufferView);
    if (n > maxLength) throw new RangeError(`Expected ${what} with at most ${maxLength} entries for ${name} but received ${describeValue(v)}`);
    // A detached buffer reads as length 0 (copying it would throw V8's own TypeError, naming nothing).
    if (n === 0) return [];
    expectHeapRoom(n, `a copy of ${name}`);
    return Array.from(new (globalThis as unknown as Record<string, Float64ArrayConstructor>)[tag]!(v as unknown as ArrayLike<number>));
  }
  if (!Array.isArray(v)) throw new TypeError(`Expected ${what} for ${name} but received ${describeValue(v)}`);
  const n = readField(v, 'length', `${name}.length`) as number;
  if (n > maxLength) throw new RangeError(`Expected ${what} with at most ${maxLength} entries for ${name} but received an array of length ${n}`);
  // A sparse array can claim billions of entries: its copy is checked like any other allocation.
  expectHeapRoom(n, `a copy of ${name}`);
  const out = new Array<unknown>(n);
  for (let i = 0; i < n; i++) out[i] = readField(v, i, `${name}[${i}]`);
  return out;
}

/**
 * Refuses, before allocating, `count` float64 values of one result or workspace: over V8's typed
 * array limit, or over the memory limit (lib/memory.ts). `what` names the argument it follows from.
 */
export function expectAllocatable(count: number, what: string): void {
  if (!(count <= maxTypedArrayLength)) {
    throw new RangeError(
      `Expected at most ${maxLengthText} values for ${what} (the largest typed array of this Node.js) but it would hold ${count}`,
    );
  }
  checkMemory(float64Bytes(count), what);
}

/**
 * Refuses, before they are built, JS arrays of `entries` values that cannot fit in V8's heap (its own
 * limit, far below the machine's memory: exceeding it aborts the process).
 */
export function expectHeapRoom(entries: number, what: string): void {
  const available = getHeapStatistics().total_available_size;
  if (!(entries * 8 <= available)) {
    throw new RangeError(
      `Not enough JavaScript heap for ${what}: ${entries} entries need at least ${entries * 8} bytes, over the ${available} bytes the heap has left`,
    );
  }
}

/** A plain, unshared Float64Array: copies one whose buffer is shared, resizable, or whose class is a subclass. */
function owned(v: Float64Array): Float64Array {
  const buffer = typedArrayBuffer.call(v) as ArrayBufferLike;
  const plain =
    Object.getPrototypeOf(v) === Float64Array.prototype &&
    Object.getPrototypeOf(buffer) === ArrayBuffer.prototype &&
    !(resizableGetter && resizableGetter.call(buffer));
  if (plain) return v;
  const copy = new Float64Array(typedArrayLengthOf(v));
  copy.set(v);
  return copy;
}

function ownedInt32(v: Int32Array): Int32Array {
  const copy = new Int32Array(typedArrayLengthOf(v));
  copy.set(v);
  return copy;
}

export function expectFloat64Array(v: unknown, name: string, length?: number, lengthMeaning?: string): Float64Array {
  const lengthText = length === undefined ? '' : ` of length ${length}${lengthMeaning ? ` (${lengthMeaning})` : ''}`;
  if (typedArrayName(v) !== 'Float64Array') {
    throw new TypeError(`Expected a Float64Array${lengthText} for ${name} but received ${describeValue(v)}`);
  }
  if (length !== undefined && typedArrayLengthOf(v as Float64Array) !== length) {
    throw new RangeError(`Expected a Float64Array${lengthText} for ${name} but received ${describeValue(v)}`);
  }
  return owned(v as Float64Array);
}

/**
 * An Int32Array of `length`, always returned as a private copy: index arrays decide where native code
 * reads and writes, so what was validated must be what is used, whatever other code does meanwhile.
 */
export function expectInt32Array(v: unknown, name: string, length: number, meaning: string): Int32Array {
  if (typedArrayName(v) !== 'Int32Array') {
    throw new TypeError(`Expected an Int32Array of length ${length} (${meaning}) for ${name} but received ${describeValue(v)}`);
  }
  if (typedArrayLengthOf(v as Int32Array) !== length) {
    throw new RangeError(`Expected an Int32Array of length ${length} (${meaning}) for ${name} but received ${describeValue(v)}`);
  }
  checkMemory(4 * length, `a private copy of ${name}`);
  return ownedInt32(v as Int32Array);
}

/** A positive integer dimension (rows, cols, a tensor mode). */
export function expectShapeInteger(v: unknown, name: string, max = maxTypedArrayLength): number {
  if (typeof v !== 'number' || !Number.isInteger(v)) {
    throw new TypeError(`Expected a positive integer for ${name} but received ${describeValue(v)}`);
  }
  if (v < 1 || v > max) throw new RangeError(`Expected a positive integer${v > max ? ` ≤ ${max}` : ''} for ${name} but received ${v}`);
  return v;
}

/** An integer in [min, max] (an index, a count). */
export function expectInteger(v: unknown, name: string, min: number, max: number, what = 'an integer'): number {
  if (typeof v !== 'number' || Number.isNaN(v)) {
    throw new TypeError(`Expected ${what} in [${min}, ${max}] for ${name} but received ${describeValue(v)}`);
  }
  if (!Number.isInteger(v) || v < min || v > max) {
    throw new RangeError(`Expected ${what} in [${min}, ${max}] for ${name} but received ${describeValue(v)}`);
  }
  return v;
}

/** Product of dimensions, refusing products that are not exact in a double or exceed an array's reach. */
export function shapeProduct(shape: readonly number[], name: string): number {
  let n = 1;
  for (const d of shape) n *= d;
  if (!Number.isSafeInteger(n) || n > maxTypedArrayLength) {
    throw new RangeError(
      `Expected a shape with at most ${maxLengthText} elements for ${name} but received [${shape.join(', ')}] (${n} elements)`,
    );
  }
  return n;
}

/** Throws a RangeError naming the first non-finite entry (row/col when `cols` is given). */
export function expectFiniteData(data: Float64Array, name: string, cols?: number): void {
  if (allFinite(data)) return;
  for (let i = 0; i < data.length; i++) {
    const v = data[i]!;
    if (v - v !== 0) {
      const where = cols ? `[${Math.floor(i / cols)}, ${i % cols}]` : `[${i}]`;
      throw new RangeError(`Expected finite values in ${name} but received ${describeValue(v)} at ${where}`);
    }
  }
}

/**
 * Whether every entry is finite, without a branch per entry: x·0 is 0 for a finite x and NaN for ±∞
 * or NaN, summed in four partial sums (one running sum would be a chain of dependent additions). About
 * three times faster than a test and branch per entry (0.55 against 1.5 ms on 2·10⁶ values): the
 * check of every large input of every call. The loops that name a defect run only when this fails.
 */
function allFinite(data: Float64Array): boolean {
  let s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  const whole = data.length - (data.length % 4);
  let i = 0;
  for (; i < whole; i += 4) {
    s0 += data[i]! * 0;
    s1 += data[i + 1]! * 0;
    s2 += data[i + 2]! * 0;
    s3 += data[i + 3]! * 0;
  }
  for (; i < data.length; i++) s0 += data[i]! * 0;
  return s0 + s1 + s2 + s3 === 0;
}

/** One pass for both checks of non-negative data (the common case; the messages come from the two checks). */
function allFiniteNonNegative(data: Float64Array): boolean {
  for (let i = 0; i < data.length; i++) {
    const v = data[i]!;
    if (!(v >= 0 && v < Infinity)) return false;
  }
  return true;
}

/** Throws a RangeError naming the first negative entry. */
export function expectNonNegativeData(data: Float64Array, name: string, cols?: number): void {
  for (let i = 0; i < data.length; i++) {
    if (data[i]! < 0) {
      const where = cols ? `[${Math.floor(i / cols)}, ${i % cols}]` : `[${i}]`;
      throw new RangeError(`Expected non-negative values in ${name} but received ${data[i]} at ${where}`);
    }
  }
}

export interface MatrixRequirements {
  /** Require rows ≥ cols (tall or square), e.g. for a Stiefel point. */
  tall?: boolean;
  /** Require rows === cols. */
  square?: boolean;
  /** Check every entry is finite (default true). */
  finite?: boolean;
  nonNegative?: boolean;
}

const matrixWhat = 'a Matrix {rows, cols, data: Float64Array}';

/**
 * Validates a Matrix-shaped value {rows, cols, data: Float64Array(rows*cols)} and returns a snapshot
 * (a fresh object; each field was read once).
 */
export function expectMatrix(v: unknown, name: string, req: MatrixRequirements = {}): Matrix {
  if (!isObjectArgument(v)) throw new TypeError(`Expected ${matrixWhat} for ${name} but received ${describeValue(v)}`);
  return matrixFromFields(readFields(v, ['rows', 'cols', 'data'] as const, name), name, req);
}

/** The checks of expectMatrix on fields already read (see readFields). */
export function matrixFromFields(f: { rows: unknown; cols: unknown; data: unknown }, name: string, req: MatrixRequirements = {}): Matrix {
  const rows = expectShapeInteger(f.rows, `${name}.rows`);
  const cols = expectShapeInteger(f.cols, `${name}.cols`);
  shapeProduct([rows, cols], name);
  const data = expectFloat64Array(f.data, `${name}.data`, rows * cols, 'rows*cols');
  if (req.square && rows !== cols) {
    throw new RangeError(`Expected a square matrix for ${name} but received ${rows}×${cols}`);
  }
  if (req.tall && rows < cols) {
    throw new RangeError(`Expected a matrix with rows ≥ cols (p ≥ k) for ${name} but received ${rows}×${cols}`);
  }
  if (req.finite !== false && req.nonNegative && allFiniteNonNegative(data)) return { rows, cols, data };
  if (req.finite !== false) expectFiniteData(data, name, cols);
  if (req.nonNegative) expectNonNegativeData(data, name, cols);
  return { rows, cols, data };
}

/** Reads an array of matrices (each element once) and validates each, naming them name[i]. */
export function expectMatrixList(v: unknown, name: string, req: MatrixRequirements = {}, maxLength = 1 << 20): Matrix[] {
  const list = readList(v, name, 'an array of matrices', maxLength);
  if (typedArrayName(v) !== undefined) {
    throw new TypeError(`Expected an array of matrices for ${name} but received ${describeValue(v)}`);
  }
  return list.map((m, i) => expectMatrix(m, `${name}[${i}]`, req));
}

/**
 * Throws unless the snapshots' buffers still have the lengths that were validated: a getter of a later
 * argument may have detached or shrunk a buffer read earlier (the call then stops here, not in C++).
 */
export function expectIntact(...arrays: readonly [ArrayBufferView, number, string][]): void {
  for (const [a, length, name] of arrays) {
    if (typedArrayLengthOf(a) !== length) {
      throw new TypeError(
        `Expected ${name} to keep its length ${length} while the arguments were read but received a buffer of length ${typedArrayLengthOf(a)} (detached or resized by a getter)`,
      );
    }
  }
}

/** expectIntact for snapshots of matrices (named name[i], or name when there is one). */
export function expectMatricesIntact(mats: readonly Matrix[], name: string): void {
  expectIntact(...mats.map((x, i): [Float64Array, number, string] => [x.data, x.rows * x.cols, mats.length === 1 ? `${name}.data` : `${name}[${i}].data`]));
}

/** Validates a batch of equally-shaped matrices given as a Tensor of shape [B, p, k]. */
export function expectBatch(v: unknown, name: string, req: MatrixRequirements = {}): { batch: number; rows: number; cols: number; data: Float64Array } {
  const what = `a Tensor {shape: [B, p, k], data: Float64Array} for ${name}`;
  if (!isObjectArgument(v)) throw new TypeError(`Expected ${what} but received ${describeValue(v)}`);
  const t = readFields(v, ['shape', 'data'] as const, name);
  if (!Array.isArray(t.shape)) throw new TypeError(`Expected ${what} but received ${describeValue(v)} with shape ${describeValue(t.shape)}`);
  const shape = readList(t.shape, `${name}.shape`, 'an array of dimensions', 64);
  if (shape.length !== 3) {
    throw new RangeError(`Expected a batch of shape [B, p, k] for ${name} but received a shape of ${shape.length} dimensions`);
  }
  const [b, p, k] = shape.map((d, i) => expectShapeInteger(d, `${name}.shape[${i}]`)) as [number, number, number];
  const n = shapeProduct([b, p, k], name);
  const data = expectFloat64Array(t.data, `${name}.data`, n, 'B*p*k');
  if (req.tall && p < k) {
    throw new RangeError(`Expected matrices with p ≥ k for ${name} but received a batch of ${p}×${k}`);
  }
  if (req.finite !== false) {
    for (let i = 0; i < data.length; i++) {
      const x = data[i]!;
      if (x - x !== 0) {
        const e = Math.floor(i / (p * k));
        const r = i % (p * k);
        throw new RangeError(
          `Expected finite values in ${name} but received ${describeValue(x)} at [${e}, ${Math.floor(r / k)}, ${r % k}]`,
        );
      }
    }
  }
  return { batch: b, rows: p, cols: k, data };
}

/** Throws unless a and b have the same shape. */
export function expectSameShape(a: Matrix, aName: string, b: Matrix, bName: string): void {
  if (a.rows !== b.rows || a.cols !== b.cols) {
    throw new RangeError(
      `Expected ${bName} to have the shape of ${aName} (${a.rows}×${a.cols}) but received ${b.rows}×${b.cols}`,
    );
  }
}

/** Largest absolute value (0 for an empty or all-zero array); used to scale before squaring. */
export function maxAbs(data: Float64Array): number {
  let m = 0;
  for (let i = 0; i < data.length; i++) {
    const a = Math.abs(data[i]!);
    if (a > m) m = a;
    else if (a !== a) return NaN;
  }
  return m;
}

/** √(Σ x²) without overflow or underflow for any finite input (scaled by the largest |x|). */
export function scaledNorm(data: Float64Array): number {
  // The plain sum first (one multiply-add per entry): exact enough wherever it neither overflows nor
  // underflows, which its size tells; only then the scaled pass (a max pass and a division per entry,
  // about five times slower: the fixed cost of every small factorization call).
  // Four partial sums (lanes 0–3 over the whole groups of four, lane 0 for the rest), added as
  // (s0 + s1) + (s2 + s3): four independent chains of additions instead of one, and the order of the
  // addon's nonNegativeNorm (native/kernels/linalg.hpp squaredNormSigned), so both give the same bits.
  let s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  const whole = data.length - (data.length % 4);
  let i = 0;
  for (; i < whole; i += 4) {
    s0 += data[i]! * data[i]!;
    s1 += data[i + 1]! * data[i + 1]!;
    s2 += data[i + 2]! * data[i + 2]!;
    s3 += data[i + 3]! * data[i + 3]!;
  }
  for (; i < data.length; i++) s0 += data[i]! * data[i]!;
  const plain = s0 + s1 + (s2 + s3);
  if (plain > 1e-280 && plain < 1e280) return Math.sqrt(plain);
  const m = maxAbs(data);
  if (m === 0 || !Number.isFinite(m)) return m;
  let s = 0;
  for (let i = 0; i < data.length; i++) {
    const x = data[i]! / m;
    s += x * x;
  }
  return m * Math.sqrt(s);
}

// ---------------------------------------------------------------------------------------------
// Declarative option specs

export type OptionSpec =
  | {
      kind: 'number';
      description: string;
      default?: number;
      min?: number;
      max?: number;
      /** min/max are exclusive bounds. */
      minExclusive?: boolean;
      maxExclusive?: boolean;
      integer?: boolean;
    }
  | { kind: 'enum'; description: string; values: readonly string[]; default?: string }
  | { kind: 'boolean'; description: string; default?: boolean }
  | { kind: 'function'; description: string }
  | { kind: 'signal'; description: string }
  | { kind: 'custom'; description: string; check: (value: unknown, name: string) => unknown; default?: unknown };

export type OptionSpecs = Record<string, OptionSpec>;

/** Human text for a spec's accepted values, used both in messages and in generated help. */
export function describeSpec(spec: OptionSpec): string {
  switch (spec.kind) {
    case 'number': {
      const what = spec.integer ? 'an integer' : 'a finite number';
      if (spec.min !== undefined && spec.max !== undefined) {
        return `${what} in ${spec.minExclusive ? '(' : '['}${spec.min}, ${spec.max}${spec.maxExclusive ? ')' : ']'}`;
      }
      if (spec.min !== undefined) return `${what} ${spec.minExclusive ? '>' : '≥'} ${spec.min}`;
      if (spec.max !== undefined) return `${what} ${spec.maxExclusive ? '<' : '≤'} ${spec.max}`;
      return what;
    }
    case 'enum':
      return `one of ${spec.values.map((s) => `'${s}'`).join(', ')}`;
    case 'boolean':
      return 'a boolean';
    case 'function':
      return 'a function';
    case 'signal':
      return 'an AbortSignal';
    case 'custom':
      return spec.description;
  }
}

function checkOption(spec: OptionSpec, value: unknown, name: string): unknown {
  switch (spec.kind) {
    case 'number': {
      if (typeof value !== 'number' || Number.isNaN(value)) {
        throw new TypeError(`Expected ${describeSpec(spec)} for ${name} but received ${describeValue(value)}`);
      }
      if (spec.integer && !Number.isInteger(value)) {
        throw new RangeError(`Expected ${describeSpec(spec)} for ${name} but received ${describeValue(value)}`);
      }
      const below = spec.min !== undefined && (spec.minExclusive ? value <= spec.min : value < spec.min);
      const above = spec.max !== undefined && (spec.maxExclusive ? value >= spec.max : value > spec.max);
      if (below || above || !Number.isFinite(value)) {
        throw new RangeError(`Expected ${describeSpec(spec)} for ${name} but received ${describeValue(value)}`);
      }
      return value;
    }
    case 'enum':
      if (typeof value !== 'string') {
        throw new TypeError(`Expected ${describeSpec(spec)} for ${name} but received ${describeValue(value)}`);
      }
      if (!spec.values.includes(value)) {
        throw new RangeError(
          `Expected ${describeSpec(spec)} for ${name} but received ${describeValue(value)}${didYouMean(value, spec.values, (c) => `'${c}'`)}`,
        );
      }
      return value;
    case 'boolean':
      if (typeof value !== 'boolean') {
        throw new TypeError(`Expected a boolean for ${name} but received ${describeValue(value)}`);
      }
      return value;
    case 'function':
      if (typeof value !== 'function') {
        throw new TypeError(`Expected a function for ${name} but received ${describeValue(value)}`);
      }
      return value;
    case 'signal':
      if (!isAbortSignal(value)) {
        throw new TypeError(`Expected an AbortSignal for ${name} but received ${describeValue(value)}`);
      }
      return value;
    case 'custom':
      return spec.check(value, name);
  }
}

function isAbortSignal(v: unknown): v is AbortSignal {
  try {
    return v instanceof AbortSignal;
  } catch {
    return false; // a Proxy whose getPrototypeOf trap throws
  }
}

/**
 * Validates an options object against specs: unknown keys are a TypeError listing the valid ones,
 * `undefined` values mean "use the default", and the result has every default filled in.
 * `context` names the caller in messages, e.g. "retract()".
 */
export function parseOptions<T>(specs: OptionSpecs, options: unknown, context: string): T {
  const input: unknown = options ?? {};
  if (!isObjectArgument(input)) {
    throw new TypeError(`Expected an options object for ${context} but received ${describeValue(input)}`);
  }
  const valid = Object.keys(specs);
  const given = ownKeys(input, `the options of ${context}`);
  for (const key of given) {
    if (!Object.prototype.hasOwnProperty.call(specs, key)) throw unknownOption(key, valid, context);
  }
  // Each option is read once (a getter runs once) before any is checked. Only own properties count:
  // a property added to Object.prototype elsewhere in the process is not an option.
  const values: Record<string, unknown> = Object.create(null) as Record<string, unknown>;
  for (const key of given) values[key] = readField(input, key, `options.${key} of ${context}`);
  const out: Record<string, unknown> = {};
  for (const [key, spec] of Object.entries(specs)) {
    const value = values[key];
    if (value === undefined) {
      if ('default' in spec && spec.default !== undefined) out[key] = spec.default;
      continue;
    }
    out[key] = checkOption(spec, value, `options.${key} of ${context}`);
  }
  return out as T;
}

/**
 * The TypeError for an unknown option or key: lists the valid names and suggests the nearest one,
 * e.g. "Unknown option 'maxIter' for nmf(); valid options are: … (did you mean maxIterations?)".
 */
export function unknownOption(key: string, valid: readonly string[], context: string, noun = 'option', preposition = 'for'): TypeError {
  const shown = key.length > 60 ? `${key.slice(0, 60)}…` : key;
  return new TypeError(
    `Unknown ${noun} '${shown}' ${preposition} ${context}; valid ${noun === 'key' ? 'keys' : 'options'} are: ${valid.join(', ')}${didYouMean(key, valid)}`,
  );
}

/**
 * The name of a part of a named value: subName('options.init of ntf()', '.factors') is
 * 'options.init.factors of ntf()' (custom option checks name what they read inside the option).
 */
export function subName(name: string, sub: string): string {
  const at = name.indexOf(' of ');
  return at < 0 ? `${name}${sub}` : `${name.slice(0, at)}${sub}${name.slice(at)}`;
}

/** Help text for a set of option specs (used by generated CLI help and docs). */
export function describeOptions(specs: OptionSpecs): string {
  return Object.entries(specs)
    .map(([key, spec]) => {
      const def = 'default' in spec && spec.default !== undefined ? ` (default ${JSON.stringify(spec.default)})` : '';
      return `  ${key}: ${spec.description}; ${describeSpec(spec)}${def}`;
    })
    .join('\n');
}

/** Common specs for long-running calls. */
export const asyncOptionSpecs = {
  signal: { kind: 'signal', description: 'cancels the job; the Promise rejects with AbortError' },
  onProgress: { kind: 'function', description: 'called on the JS thread with progress records (throttled)' },
  progressIntervalMs: {
    kind: 'number',
    description: 'minimum time between two onProgress calls',
    min: 0,
    max: 60_000,
    default: 50,
  },
} as const satisfies OptionSpecs;

/** A string argument restricted to a list of names (the message lists them). */
export function expectOneOf<T extends string>(value: unknown, name: string, values: readonly T[]): T {
  if (typeof value !== 'string') {
    throw new TypeError(`Expected one of ${values.map((s) => `'${s}'`).join(', ')} for ${name} but received ${describeValue(value)}`);
  }
  if (!(values as readonly string[]).includes(value)) {
    throw new RangeError(
      `Expected one of ${values.map((s) => `'${s}'`).join(', ')} for ${name} but received ${describeValue(value)}${didYouMean(value, values, (c) => `'${c}'`)}`,
    );
  }
  return value as T;
}
