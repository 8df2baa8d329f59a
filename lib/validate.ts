/**
 * Every argument check of the public API lives here, so that messages have one shape:
 *   "Expected <what> for <name> but received <value>".
 * Type problems throw TypeError, out-of-range values RangeError, always before native work starts.
 * Option objects are described declaratively (OptionSpecs) so that the same definitions drive
 * validation, defaults and generated help text.
 */
import type { Matrix } from './matrix.js';

/** Short human description of a received value, for error messages. */
export function describeValue(v: unknown): string {
  if (v === null) return 'null';
  if (v === undefined) return 'undefined';
  if (typeof v === 'number') return Number.isNaN(v) ? 'NaN' : `${v}`;
  if (typeof v === 'string') return `the string ${JSON.stringify(v.length > 40 ? v.slice(0, 40) + '…' : v)}`;
  if (typeof v === 'boolean' || typeof v === 'bigint') return `${typeof v} ${String(v)}`;
  if (typeof v === 'function') return 'a function';
  if (ArrayBuffer.isView(v)) {
    const len = (v as unknown as { length?: number }).length;
    return `a ${v.constructor.name}${len === undefined ? '' : ` of length ${len}`}`;
  }
  if (Array.isArray(v)) return `an array of length ${v.length}`;
  const ctor = (v as object).constructor?.name;
  return ctor && ctor !== 'Object' ? `a ${ctor}` : 'an object';
}

export function expectFloat64Array(v: unknown, name: string, length?: number, lengthMeaning?: string): Float64Array {
  const lengthText = length === undefined ? '' : ` of length ${length}${lengthMeaning ? ` (${lengthMeaning})` : ''}`;
  if (!(v instanceof Float64Array)) {
    throw new TypeError(`Expected a Float64Array${lengthText} for ${name} but received ${describeValue(v)}`);
  }
  if (length !== undefined && v.length !== length) {
    throw new RangeError(`Expected a Float64Array${lengthText} for ${name} but received ${describeValue(v)}`);
  }
  return v;
}

/** A positive integer dimension (rows, cols, a tensor mode). */
export function expectShapeInteger(v: unknown, name: string): number {
  if (typeof v !== 'number' || !Number.isInteger(v)) {
    throw new TypeError(`Expected a positive integer for ${name} but received ${describeValue(v)}`);
  }
  if (v < 1) throw new RangeError(`Expected a positive integer for ${name} but received ${v}`);
  return v;
}

/** Product of dimensions, refusing products that are not exact in a double or exceed an array's reach. */
export function shapeProduct(shape: readonly number[], name: string): number {
  let n = 1;
  for (const d of shape) n *= d;
  if (!Number.isSafeInteger(n) || n > 2 ** 32) {
    throw new RangeError(`Expected a shape with at most 2^32 elements for ${name} but received [${shape.join(', ')}] (${n} elements)`);
  }
  return n;
}

/** Throws a RangeError naming the first non-finite entry (row/col when `cols` is given). */
export function expectFiniteData(data: Float64Array, name: string, cols?: number): void {
  for (let i = 0; i < data.length; i++) {
    const v = data[i]!;
    if (v - v !== 0) {
      const where = cols ? `[${Math.floor(i / cols)}, ${i % cols}]` : `[${i}]`;
      throw new RangeError(`Expected finite values in ${name} but received ${describeValue(v)} at ${where}`);
    }
  }
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

/** Validates a Matrix-shaped value: {rows, cols, data: Float64Array(rows*cols)}. */
export function expectMatrix(v: unknown, name: string, req: MatrixRequirements = {}): Matrix {
  if (v === null || typeof v !== 'object' || ArrayBuffer.isView(v) || Array.isArray(v)) {
    throw new TypeError(`Expected a Matrix {rows, cols, data: Float64Array} for ${name} but received ${describeValue(v)}`);
  }
  const m = v as Partial<Matrix>;
  expectShapeInteger(m.rows, `${name}.rows`);
  expectShapeInteger(m.cols, `${name}.cols`);
  const rows = m.rows as number;
  const cols = m.cols as number;
  shapeProduct([rows, cols], name);
  expectFloat64Array(m.data, `${name}.data`, rows * cols, 'rows*cols');
  if (req.square && rows !== cols) {
    throw new RangeError(`Expected a square matrix for ${name} but received ${rows}×${cols}`);
  }
  if (req.tall && rows < cols) {
    throw new RangeError(
      `Expected a matrix with rows ≥ cols (p ≥ k) for ${name} but received ${rows}×${cols}`,
    );
  }
  if (req.finite !== false) expectFiniteData(m.data as Float64Array, name, cols);
  if (req.nonNegative) expectNonNegativeData(m.data as Float64Array, name, cols);
  return m as Matrix;
}

/** Validates a batch of equally-shaped matrices given as a Tensor of shape [B, p, k]. */
export function expectBatch(v: unknown, name: string, req: MatrixRequirements = {}): { batch: number; rows: number; cols: number; data: Float64Array } {
  if (v === null || typeof v !== 'object' || !Array.isArray((v as { shape?: unknown }).shape)) {
    throw new TypeError(`Expected a Tensor {shape: [B, p, k], data: Float64Array} for ${name} but received ${describeValue(v)}`);
  }
  const t = v as { shape: unknown[]; data: unknown };
  if (t.shape.length !== 3) {
    throw new RangeError(`Expected a batch of shape [B, p, k] for ${name} but received a shape of ${t.shape.length} dimensions`);
  }
  const [b, p, k] = t.shape.map((d, i) => expectShapeInteger(d, `${name}.shape[${i}]`)) as [number, number, number];
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
        throw new RangeError(`Expected ${describeSpec(spec)} for ${name} but received ${describeValue(value)}`);
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
  return (
    typeof v === 'object' &&
    v !== null &&
    typeof (v as AbortSignal).aborted === 'boolean' &&
    typeof (v as AbortSignal).addEventListener === 'function' &&
    typeof (v as AbortSignal).removeEventListener === 'function'
  );
}

/**
 * Validates an options object against specs: unknown keys are a TypeError listing the valid ones,
 * `undefined` values mean "use the default", and the result has every default filled in.
 * `context` names the caller in messages, e.g. "retract()".
 */
export function parseOptions<T>(specs: OptionSpecs, options: unknown, context: string): T {
  const input: object = options ?? {};
  if (typeof input !== 'object' || Array.isArray(input) || ArrayBuffer.isView(input)) {
    throw new TypeError(`Expected an options object for ${context} but received ${describeValue(input)}`);
  }
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(input)) {
    if (!Object.prototype.hasOwnProperty.call(specs, key)) {
      throw new TypeError(
        `Unknown option '${key}' for ${context}; valid options are: ${Object.keys(specs).join(', ')}`,
      );
    }
  }
  for (const [key, spec] of Object.entries(specs)) {
    const value = (input as Record<string, unknown>)[key];
    if (value === undefined) {
      if ('default' in spec && spec.default !== undefined) out[key] = spec.default;
      continue;
    }
    out[key] = checkOption(spec, value, `options.${key} of ${context}`);
  }
  return out as T;
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
    throw new RangeError(`Expected one of ${values.map((s) => `'${s}'`).join(', ')} for ${name} but received ${describeValue(value)}`);
  }
  return value as T;
}
