/**
 * Argument checks of the CLI's exported building blocks (registerMethod, parseArgs, writeResultDir,
 * main …), in the message shape of lib/validate.ts. Programs embedding the CLI pass their own
 * objects: every field is read once, here (a getter or Proxy trap that throws becomes a TypeError
 * naming the argument), and the checked copies are what the CLI uses afterwards.
 */
import { didYouMean } from '../suggest.js';
import { describeValue, type OptionSpec, type OptionSpecs } from '../validate.js';
import type { CommandFlag } from './flags.js';

/** describeValue that survives hostile objects (a Proxy whose traps throw). */
export function describe(v: unknown): string {
  try {
    return describeValue(v);
  } catch {
    return 'an object that throws when read';
  }
}

const reasonOf = (err: unknown): string => (err instanceof Error ? err.message : describe(err));

export function isPlainRecord(v: unknown): v is object {
  try {
    return typeof v === 'object' && v !== null && !Array.isArray(v) && !ArrayBuffer.isView(v);
  } catch {
    return false; // a revoked Proxy
  }
}

/** Reads one property, turning a throwing getter or trap into a TypeError naming it. */
export function readField(v: object, key: string, name: string): unknown {
  try {
    return (v as Record<string, unknown>)[key];
  } catch (err) {
    throw new TypeError(`Expected a plain value for ${name} but received a getter that throws (${reasonOf(err)})`);
  }
}

function ownKeys(v: object, name: string, what: string): string[] {
  try {
    return Object.keys(v);
  } catch (err) {
    throw new TypeError(`Expected ${what} for ${name} but received an object whose keys cannot be listed (${reasonOf(err)})`);
  }
}

/**
 * An object argument with known fields: unknown own keys are refused (naming the valid ones), and
 * each allowed field is read once. Returns the fields read (absent ones undefined).
 */
export function readObject<K extends string>(v: unknown, name: string, what: string, allowed: readonly K[], alreadyRead: Partial<Record<K, unknown>> = {}): Record<K, unknown> {
  if (!isPlainRecord(v)) throw new TypeError(`Expected ${what} for ${name} but received ${describe(v)}`);
  for (const key of ownKeys(v, name, what)) {
    if (!(allowed as readonly string[]).includes(key)) {
      throw new TypeError(`Unknown key '${key}' in ${name}${didYouMean(key, allowed)}; valid keys are: ${allowed.join(', ')}`);
    }
  }
  const out = {} as Record<K, unknown>;
  for (const key of allowed) out[key] = key in alreadyRead ? alreadyRead[key] : readField(v, key, `${name}.${key}`);
  return out;
}

/** A record argument (any keys): its own entries, each value read once. */
export function readRecord(v: unknown, name: string, what: string): [string, unknown][] {
  if (!isPlainRecord(v)) throw new TypeError(`Expected ${what} for ${name} but received ${describe(v)}`);
  return ownKeys(v, name, what).map((key) => [key, readField(v, key, `${name}.${key}`)]);
}

export function expectString(v: unknown, name: string, what = 'a string'): string {
  if (typeof v !== 'string') throw new TypeError(`Expected ${what} for ${name} but received ${describe(v)}`);
  return v;
}

export function expectFunction<F extends Function>(v: unknown, name: string): F {
  if (typeof v !== 'function') throw new TypeError(`Expected a function for ${name} but received ${describe(v)}`);
  return v as F;
}

const optionalOf = <T>(check: (v: unknown, name: string) => T) => (v: unknown, name: string): T | undefined => (v === undefined ? undefined : check(v, name));

export function expectBoolean(v: unknown, name: string): boolean {
  if (typeof v !== 'boolean') throw new TypeError(`Expected a boolean for ${name} but received ${describe(v)}`);
  return v;
}

function expectFiniteNumber(v: unknown, name: string): number {
  if (typeof v !== 'number' || Number.isNaN(v)) throw new TypeError(`Expected a finite number for ${name} but received ${describe(v)}`);
  if (!Number.isFinite(v)) throw new RangeError(`Expected a finite number for ${name} but received ${describe(v)}`);
  return v;
}

/** A path argument: a non-empty string without NUL bytes (which no file system accepts). */
export function expectPath(v: unknown, name: string): string {
  const path = expectString(v, name, 'a path (a non-empty string)');
  if (path === '' || path.includes('\0')) throw new RangeError(`Expected a path (a non-empty string without NUL bytes) for ${name} but received ${describe(path)}`);
  return path;
}

/** An array of strings (argv), copied element by element. */
export function expectStringArray(v: unknown, name: string): string[] {
  let isArray: boolean;
  try {
    isArray = Array.isArray(v);
  } catch {
    isArray = false;
  }
  if (!isArray) throw new TypeError(`Expected an array of strings for ${name} but received ${describe(v)}`);
  const length = readField(v as object, 'length', `${name}.length`) as number;
  const out: string[] = [];
  for (let i = 0; i < length; i++) out.push(expectString(readField(v as object, String(i), `${name}[${i}]`), `${name}[${i}]`));
  return out;
}

/** An integer in [min, max]: TypeError for a non-integer, RangeError outside the range. */
export function expectInteger(v: unknown, name: string, min: number, max = Number.MAX_SAFE_INTEGER): number {
  const what = max === Number.MAX_SAFE_INTEGER ? `an integer ≥ ${min}` : `an integer in [${min}, ${max}]`;
  if (typeof v !== 'number' || !Number.isInteger(v)) throw new TypeError(`Expected ${what} for ${name} but received ${describe(v)}`);
  if (v < min || v > max) throw new RangeError(`Expected ${what} for ${name} but received ${describe(v)}`);
  return v;
}

/** A non-negative number (a duration, a count of seconds). */
export function expectNonNegativeNumber(v: unknown, name: string): number {
  if (typeof v !== 'number' || Number.isNaN(v)) throw new TypeError(`Expected a non-negative number for ${name} but received ${describe(v)}`);
  if (!(v >= 0) || !Number.isFinite(v)) throw new RangeError(`Expected a finite non-negative number for ${name} but received ${describe(v)}`);
  return v;
}

/** Whether `v` is an array (false for a revoked Proxy, whose IsArray throws). */
export function isList(v: unknown): v is unknown[] {
  try {
    return Array.isArray(v);
  } catch {
    return false;
  }
}

/** The elements of an array argument, each read once (a throwing getter becomes a TypeError naming it). */
export function readList(v: unknown, name: string, what: string): unknown[] {
  if (!isList(v)) throw new TypeError(`Expected ${what} for ${name} but received ${describe(v)}`);
  const length = readField(v, 'length', `${name}.length`) as number;
  const out: unknown[] = [];
  for (let i = 0; i < length; i++) out.push(readField(v, String(i), `${name}[${i}]`));
  return out;
}

/** `v` when undefined, else `check(v, name)`. */
export const optional = <T>(v: unknown, name: string, check: (v: unknown, name: string) => T): T | undefined => (v === undefined ? undefined : check(v, name));

export const expectAbortSignal = (v: unknown, name: string): AbortSignal => {
  if (!(v instanceof AbortSignal)) throw new TypeError(`Expected an AbortSignal for ${name} but received ${describe(v)}`);
  return v;
};

/** Names that become `--kebab-case` flags and back again unchanged: camelCase identifiers. */
const optionKeyPattern = /^[a-z][A-Za-z0-9]*$/;

function expectKey(key: string, name: string, pattern: RegExp, what: string): void {
  if (!pattern.test(key)) throw new RangeError(`Expected ${what} for a key of ${name} but received ${describe(key)}`);
}

const specKinds = ['number', 'enum', 'boolean', 'function', 'signal', 'custom'] as const;
const specKeys = {
  number: ['kind', 'description', 'default', 'min', 'max', 'minExclusive', 'maxExclusive', 'integer'],
  enum: ['kind', 'description', 'values', 'default'],
  boolean: ['kind', 'description', 'default'],
  function: ['kind', 'description'],
  signal: ['kind', 'description'],
  custom: ['kind', 'description', 'check', 'default'],
} as const;
type SpecKey = (typeof specKeys)[keyof typeof specKeys][number];

function expectKind<T extends string>(v: unknown, name: string, kinds: readonly T[]): T {
  const list = kinds.map((k) => `'${k}'`).join(', ');
  if (typeof v !== 'string') throw new TypeError(`Expected one of ${list} for ${name} but received ${describe(v)}`);
  if (!(kinds as readonly string[]).includes(v)) throw new RangeError(`Expected one of ${list} for ${name} but received ${describe(v)}`);
  return v as T;
}

/** One OptionSpec (lib/validate.ts), checked by kind; returns a copy holding only its fields. */
export function expectOptionSpec(v: unknown, name: string): OptionSpec {
  const what = 'an option spec {kind, description, …}';
  if (!isPlainRecord(v)) throw new TypeError(`Expected ${what} for ${name} but received ${describe(v)}`);
  // The kind says which other keys a spec may have.
  const kind = expectKind(readField(v, 'kind', `${name}.kind`), `${name}.kind`, specKinds);
  const f: Partial<Record<SpecKey, unknown>> = readObject(v, name, `a '${kind}' option spec`, specKeys[kind], { kind });
  const description = expectString(f.description, `${name}.description`);
  switch (kind) {
    case 'number': {
      const spec: Extract<OptionSpec, { kind: 'number' }> = { kind, description };
      for (const key of ['min', 'max', 'default'] as const) {
        const x = optionalOf(expectFiniteNumber)(f[key], `${name}.${key}`);
        if (x !== undefined) spec[key] = x;
      }
      for (const key of ['minExclusive', 'maxExclusive', 'integer'] as const) {
        const b = optionalOf(expectBoolean)(f[key], `${name}.${key}`);
        if (b !== undefined) spec[key] = b;
      }
      if (spec.min !== undefined && spec.max !== undefined && spec.min > spec.max) {
        throw new RangeError(`Expected ${name}.min ≤ ${name}.max but received min ${spec.min} and max ${spec.max}`);
      }
      return spec;
    }
    case 'enum': {
      const values = expectStringArray(f.values, `${name}.values`);
      if (values.length === 0) throw new RangeError(`Expected a non-empty array of strings for ${name}.values but received an array of length 0`);
      const def = optionalOf(expectString)(f.default, `${name}.default`);
      if (def !== undefined && !values.includes(def)) {
        throw new RangeError(`Expected one of ${values.map((s) => `'${s}'`).join(', ')} for ${name}.default but received ${describe(def)}`);
      }
      return def === undefined ? { kind, description, values } : { kind, description, values, default: def };
    }
    case 'boolean': {
      const def = optionalOf(expectBoolean)(f.default, `${name}.default`);
      return def === undefined ? { kind, description } : { kind, description, default: def };
    }
    case 'function':
    case 'signal':
      return { kind, description };
    case 'custom': {
      const check = expectFunction<(value: unknown, name: string) => unknown>(f.check, `${name}.check`);
      return f.default === undefined ? { kind, description, check } : { kind, description, check, default: f.default };
    }
  }
}

/** OptionSpecs keyed by camelCase option names; returns checked copies. */
export function expectOptionSpecs(v: unknown, name: string): OptionSpecs {
  const out: OptionSpecs = {};
  for (const [key, spec] of readRecord(v, name, 'option specs {name: {kind, description, …}}')) {
    expectKey(key, name, optionKeyPattern, 'a camelCase option name');
    out[key] = expectOptionSpec(spec, `${name}.${key}`);
  }
  return out;
}

/** A subcommand's own flags (CommandFlag by camelCase name); returns checked copies. */
export function expectCommandFlags(v: unknown, name: string): Record<string, CommandFlag> {
  const out: Record<string, CommandFlag> = {};
  for (const [key, flag] of readRecord(v, name, 'command flags {name: {kind, description, …}}')) {
    expectKey(key, name, optionKeyPattern, 'a camelCase flag name');
    const at = `${name}.${key}`;
    const f = readObject(flag, at, 'a command flag {kind, description, …}', ['kind', 'description', 'placeholder', 'min', 'hidden', 'repeatable']);
    const checked: CommandFlag = { kind: expectKind(f.kind, `${at}.kind`, ['string', 'integer', 'boolean'] as const), description: expectString(f.description, `${at}.description`) };
    const placeholder = optionalOf(expectString)(f.placeholder, `${at}.placeholder`);
    if (placeholder !== undefined) checked.placeholder = placeholder;
    const min = optionalOf(expectFiniteNumber)(f.min, `${at}.min`);
    if (min !== undefined) {
      if (checked.kind !== 'integer') throw new TypeError(`Unknown key 'min' in ${at} (a '${checked.kind}' flag); min applies to integer flags`);
      checked.min = min;
    }
    const hidden = optionalOf(expectBoolean)(f.hidden, `${at}.hidden`);
    if (hidden !== undefined) checked.hidden = hidden;
    const repeatable = optionalOf(expectBoolean)(f.repeatable, `${at}.repeatable`);
    if (repeatable !== undefined) checked.repeatable = repeatable;
    out[key] = checked;
  }
  return out;
}
