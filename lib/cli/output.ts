/**
 * Results on disk: every typed array of a result becomes a `.npy` file (CSR matrices a `.mtx`), and
 * `result.json` holds the rest — settings, trace columns (inline, for plots), diagnostics, timings and
 * input paths — plus a reference {file, shape} for each array. A result directory appears whole or
 * not at all: it is written to a temporary sibling and renamed into place.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, renameSync, rmdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { basename, dirname, isAbsolute, join, relative, resolve } from 'node:path';

import { AbortError } from '../errors.js';
import { writeCsv, writeMatrixMarket, writeNpy } from '../io/index.js';
import { expectCsr } from '../io/matrix-market.js';
import type { CsrMatrix } from '../matrix.js';
import type { Tensor } from '../tensor.js';
import { describe, expectAbortSignal, expectBoolean, expectFunction, expectPath, expectString, readField, readObject, readRecord } from './check.js';
import { UsageError } from './flags.js';
import type { AxisNames } from './registry.js';

export interface ResultMeta {
  method: string;
  version: string;
  /** Input name → path (or `file.csv:column` for strata), as given. */
  inputs: Record<string, string>;
  /** The options as validated (every default filled in). */
  options: Record<string, unknown>;
  diagnostics: Record<string, number | string>;
  timings: { startedAt: string; readSeconds: number; runSeconds: number };
  /** Trace columns of the result (see MethodSpec.traces). */
  traces: Record<string, Float64Array>;
  /** Extra facts about the run (seed, BLAS threads, job id …). */
  run?: Record<string, unknown>;
}

export interface ArrayRef {
  file: string;
  shape: number[];
  /** The same array as CSV with row and column names, when written with the csv option. */
  csv?: string;
}

/** Row and column names of a result array (undefined: none known); see MethodSpec.arrayNames. */
export type ArrayNamer = (array: { name: string; shape: readonly number[] }) => AxisNames | undefined;

/** How a result is written: names of its arrays (plots and CSV headers), and whether CSV copies are made. */
export interface ResultWriteOptions {
  names?: ArrayNamer;
  /** Also write each vector and matrix as NAME.csv with its row and column names. */
  csv?: boolean;
}

/** What result.json contains. */
export interface ResultJson {
  method: string;
  version: string;
  inputs: Record<string, string>;
  settings: Record<string, unknown>;
  diagnostics: Record<string, number | string>;
  traces: Record<string, (number | null)[]>;
  arrays: Record<string, ArrayRef>;
  /** Names of rows/columns of some 2-D arrays (see MethodSpec.arrayNames), for labelled plots. */
  names?: Record<string, AxisNames>;
  values: Record<string, unknown>;
  timings: ResultMeta['timings'];
  run: Record<string, unknown>;
}

type ArrayFile = { name: string; file: string; write: (path: string) => void; shape: number[]; /** Dense values (absent for CSR). */ data?: Float64Array };

const isTyped = (v: unknown): v is Float64Array | Int32Array | Uint32Array | Float32Array | Int8Array | Uint8Array | Int16Array | Uint16Array =>
  ArrayBuffer.isView(v) && !(v instanceof DataView) && !(v instanceof BigInt64Array) && !(v instanceof BigUint64Array);

function asFloat64(v: ArrayLike<number>): Float64Array {
  return v instanceof Float64Array ? v : Float64Array.from(v);
}

/** Array names become file names: dot-joined keys of letters, digits, '_' and '-', never a path. */
const arrayNamePattern = /^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/;
const maxArrayNameLength = 200;

function checkArrayName(name: string): void {
  if (!arrayNamePattern.test(name) || name.length > maxArrayNameLength) {
    throw new RangeError(
      `Expected result keys of letters, digits, '_' and '-' (at most ${maxArrayNameLength} characters in all; they name the files written) for result.${name} but received ${describe(name)}`,
    );
  }
}

const isCount = (x: unknown): x is number => typeof x === 'number' && Number.isInteger(x) && x >= 0;

/**
 * Splits a result into array files and JSON-able values (typed arrays replaced by references).
 * The result must be plain data: every field is read once, and cycles, getters that throw, bigints,
 * symbols, functions and raw buffers are refused with a TypeError naming the field; a Matrix or
 * Tensor whose data does not fit its shape is a RangeError. `containers`: the objects `result` was
 * copied from (a reference back to them is a cycle too).
 */
export function splitResult(result: object, containers: readonly object[] = []): { arrays: ArrayFile[]; values: Record<string, unknown> } {
  const arrays: ArrayFile[] = [];
  const add = (name: string, shape: number[], data: Float64Array): ArrayRef => {
    checkArrayName(name);
    const file = `${name}.npy`;
    const tensor: Tensor = { shape, data };
    arrays.push({ name, file, shape, data, write: (p) => writeNpy(p, tensor) });
    return { file, shape };
  };
  const plain = 'plain data (numbers, strings, booleans, arrays, objects, typed arrays)';
  const walk = (v: unknown, name: string, ancestors: object[]): unknown => {
    const at = name ? `result.${name}` : 'result';
    // An empty array has no .npy form here: it stays in result.json as [].
    if (isTyped(v)) return v.length === 0 ? [] : add(name, [v.length], asFloat64(v));
    if (typeof v === 'bigint' || typeof v === 'symbol' || typeof v === 'function') throw new TypeError(`Expected ${plain} for ${at} but received ${describe(v)}`);
    if (v === null || typeof v !== 'object') return v;
    if (ArrayBuffer.isView(v) || v instanceof ArrayBuffer || v instanceof SharedArrayBuffer) throw new TypeError(`Expected ${plain} for ${at} but received ${describe(v)}`);
    if (ancestors.includes(v)) throw new TypeError(`Expected ${plain} for ${at} but received a reference to an object that contains it (a cycle)`);
    const inside = [...ancestors, v];
    let isArray: boolean;
    try {
      isArray = Array.isArray(v);
    } catch {
      isArray = false;
    }
    if (isArray) {
      const length = readField(v, 'length', `${at}.length`) as number;
      return Array.from({ length }, (_, i) => walk(readField(v, String(i), `${at}[${i}]`), `${name}.${i}`, inside));
    }
    const entries = readRecord(v, at, plain);
    const o = Object.fromEntries(entries);
    if ('indptr' in o && isTyped(o.indptr) && isTyped(o.data)) {
      const csr = expectCsr(o, at);
      checkArrayName(name);
      const file = `${name}.mtx`;
      const shape = [csr.rows, csr.cols];
      arrays.push({ name, file, shape, write: (p) => writeMatrixMarket(p, csr) });
      return { file, shape };
    }
    if (typeof o.rows === 'number' && typeof o.cols === 'number' && o.data instanceof Float64Array) {
      if (!isCount(o.rows) || !isCount(o.cols) || o.rows * o.cols !== o.data.length) {
        throw new RangeError(`Expected a Matrix with non-negative integer rows and cols and rows*cols values for ${at} but received ${o.rows}×${o.cols} holding ${o.data.length}`);
      }
      return add(name, [o.rows, o.cols], o.data);
    }
    if (Array.isArray(o.shape) && o.data instanceof Float64Array) {
      const shape = [...(o.shape as unknown[])];
      if (!shape.every(isCount) || shape.reduce((a, b) => a * b, 1) !== o.data.length) {
        throw new RangeError(`Expected a Tensor whose shape (non-negative integers) holds its data for ${at} but received shape [${shape.map(describe).join(', ')}] holding ${o.data.length}`);
      }
      return add(name, shape, o.data);
    }
    return Object.fromEntries(entries.map(([k, item]) => [k, walk(item, name ? `${name}.${k}` : k, inside)]));
  };
  const values = walk(result, '', [...containers]) as Record<string, unknown>;
  return { arrays, values: withoutRefs(values) as Record<string, unknown> };
}

const isRef = (v: unknown): boolean =>
  v !== null && typeof v === 'object' && typeof (v as ArrayRef).file === 'string' && Array.isArray((v as ArrayRef).shape);

/** Drops array references (listed under `arrays`) from the plain values, and containers left empty. */
function withoutRefs(v: unknown): unknown {
  if (isRef(v)) return undefined;
  if (Array.isArray(v)) {
    const kept = v.map(withoutRefs);
    return kept.every((x) => x === undefined) && v.length > 0 ? undefined : kept;
  }
  if (v !== null && typeof v === 'object') {
    const entries = Object.entries(v).map(([k, x]) => [k, withoutRefs(x)] as const).filter(([, x]) => x !== undefined);
    return entries.length === 0 && Object.keys(v).length > 0 ? undefined : Object.fromEntries(entries);
  }
  return v;
}

/** Arrays that get a CSV copy: dense vectors and matrices (tensors and CSR stay .npy / .mtx only). */
const hasCsv = (a: ArrayFile): boolean => a.data !== undefined && (a.shape.length === 1 || a.shape.length === 2);

const plainRecord = (v: unknown, name: string): Record<string, unknown> => Object.fromEntries(readRecord(v, name, 'an object'));

function stringRecord(v: unknown, name: string): Record<string, string> {
  return Object.fromEntries(readRecord(v, name, 'an object of strings').map(([k, x]) => [k, expectString(x, `${name}.${k}`)]));
}

function expectSeconds(v: unknown, name: string): number {
  if (typeof v !== 'number' || Number.isNaN(v)) throw new TypeError(`Expected a number of seconds ≥ 0 for ${name} but received ${describe(v)}`);
  if (!(v >= 0 && v < Infinity)) throw new RangeError(`Expected a number of seconds ≥ 0 for ${name} but received ${describe(v)}`);
  return v;
}

/** Checks a ResultMeta and returns a copy (each field read once). */
function expectResultMeta(v: unknown, name: string): ResultMeta {
  const f = readObject(v, name, 'result metadata {method, version, inputs, options, diagnostics, timings, traces}', [
    'method', 'version', 'inputs', 'options', 'diagnostics', 'timings', 'traces', 'run',
  ]);
  const t = readObject(f.timings, `${name}.timings`, 'timings {startedAt, readSeconds, runSeconds}', ['startedAt', 'readSeconds', 'runSeconds']);
  const diagnostics: Record<string, number | string> = {};
  for (const [k, x] of readRecord(f.diagnostics, `${name}.diagnostics`, 'an object of numbers and strings')) {
    // An undefined diagnostic (e.g. the last loss of a run without iterations) is left out, as JSON would.
    if (x === undefined) continue;
    if (typeof x !== 'number' && typeof x !== 'string') throw new TypeError(`Expected a number or a string for ${name}.diagnostics.${k} but received ${describe(x)}`);
    diagnostics[k] = x;
  }
  const traces: Record<string, Float64Array> = {};
  for (const [k, x] of readRecord(f.traces, `${name}.traces`, 'an object of Float64Arrays')) {
    if (!(x instanceof Float64Array)) throw new TypeError(`Expected a Float64Array for ${name}.traces.${k} but received ${describe(x)}`);
    traces[k] = x;
  }
  const meta: ResultMeta = {
    method: expectString(f.method, `${name}.method`),
    version: expectString(f.version, `${name}.version`),
    inputs: stringRecord(f.inputs, `${name}.inputs`),
    options: plainRecord(f.options, `${name}.options`),
    diagnostics,
    timings: {
      startedAt: expectString(t.startedAt, `${name}.timings.startedAt`),
      readSeconds: expectSeconds(t.readSeconds, `${name}.timings.readSeconds`),
      runSeconds: expectSeconds(t.runSeconds, `${name}.timings.runSeconds`),
    },
    traces,
  };
  if (f.run !== undefined) meta.run = plainRecord(f.run, `${name}.run`);
  return meta;
}

/** The result's own fields, read once (a result is a plain object, not an array or a typed array). */
const resultFields = (result: unknown): Record<string, unknown> => Object.fromEntries(readRecord(result, 'result', 'a result object'));

/**
 * The content of result.json for a result (arrays are referenced, not included). With `csv`, each
 * vector and matrix also has a NAME.csv copy, listed in its reference.
 */
export function resultJson(result: object, meta: ResultMeta, options: ResultWriteOptions = {}): { json: ResultJson; arrays: ArrayFile[] } {
  const fields = resultFields(result);
  const checked = expectResultMeta(meta, 'meta');
  return buildResultJson(fields, result, checked, readWriteOptions(options, [], 'an options object {names, csv}'));
}

/** The checked options of resultJson / writeResultDir (`extra` are writeResultDir's own keys). */
function readWriteOptions(options: unknown, extra: string[], what: string): ResultWriteOptions & { replace?: boolean; signal?: AbortSignal } {
  const o = readObject(options ?? {}, 'options', what, ['names', 'csv', ...extra]);
  return {
    names: o.names === undefined ? undefined : expectFunction<ArrayNamer>(o.names, 'options.names'),
    csv: o.csv === undefined ? undefined : expectBoolean(o.csv, 'options.csv'),
    replace: o.replace === undefined ? undefined : expectBoolean(o.replace, 'options.replace'),
    signal: o.signal === undefined ? undefined : expectAbortSignal(o.signal, 'options.signal'),
  };
}

/** result.json's content from a result's fields (read by resultFields from `original`). */
function buildResultJson(result: Record<string, unknown>, original: object, meta: ResultMeta, options: ResultWriteOptions): { json: ResultJson; arrays: ArrayFile[] } {
  const { csv, names: namer } = options;
  const { settings, ...rest } = result as { settings?: unknown };
  if (settings !== undefined) splitResult({ settings }, [original]); // settings go to JSON as they are: plain data only
  const { arrays, values } = splitResult(rest, [original]);
  const refs: Record<string, ArrayRef> = {};
  for (const a of arrays) refs[a.name] = { file: a.file, shape: a.shape, ...(csv && hasCsv(a) ? { csv: `${a.name}.csv` } : {}) };
  const traces = Object.fromEntries(
    Object.entries(meta.traces).map(([k, col]) => [k, Array.from(col, (x) => (Number.isFinite(x) ? x : null))]),
  );
  // Only names that fit an array written (a 2-D array with that many rows/columns).
  const names: [string, AxisNames][] = [];
  for (const a of arrays) {
    const n = a.shape.length === 2 ? namer?.({ name: a.name, shape: a.shape }) : undefined;
    if (n && (!n.rows || n.rows.length === a.shape[0]) && (!n.cols || n.cols.length === a.shape[1])) names.push([a.name, n]);
  }
  const json: ResultJson = {
    method: meta.method,
    version: meta.version,
    inputs: meta.inputs,
    settings: (settings as Record<string, unknown> | undefined) ?? meta.options,
    diagnostics: meta.diagnostics,
    traces,
    arrays: refs,
    ...(names.length ? { names: Object.fromEntries(names) } : {}),
    values: values ?? {},
    timings: meta.timings,
    run: meta.run ?? {},
  };
  return { json, arrays };
}

/**
 * Writes a result directory atomically: everything goes into a temporary sibling, which is renamed to
 * `dir` only when complete. An abort (signal) before the rename removes the temporary and throws
 * AbortError. An existing `dir` is replaced only with `replace`; otherwise `onExists` decides.
 * Every file is written inside `dir` (array names are checked to be file names, not paths).
 */
export function writeResultDir(
  dir: string,
  result: object,
  meta: ResultMeta,
  options: { replace?: boolean; signal?: AbortSignal } & ResultWriteOptions = {},
): ResultJson {
  expectPath(dir, 'dir');
  if (basename(resolve(dir)) === '') throw new RangeError(`Expected a folder to create or replace for dir but received ${describe(dir)}, a file-system root`);
  const fields = resultFields(result);
  const checked = expectResultMeta(meta, 'meta');
  const o = readWriteOptions(options, ['replace', 'signal'], 'an options object {replace, signal, names, csv}');
  const { json, arrays } = buildResultJson(fields, result, checked, o);
  return writeDirAtomically(
    dir,
    (tmp) => {
      const inTmp = (file: string): string => {
        const path = join(tmp, file);
        // Belt and braces: array names are checked file names, so this cannot fail.
        if (dirname(path) !== tmp) throw new RangeError(`Expected a file name inside dir for a result array but received ${describe(file)}`);
        return path;
      };
      for (const a of arrays) {
        if (o.signal?.aborted) throw new AbortError();
        a.write(inTmp(a.file));
        if (o.csv && hasCsv(a)) writeArrayCsv(inTmp(`${a.name}.csv`), a, o.names?.({ name: a.name, shape: a.shape }));
      }
      writeFileSync(join(tmp, 'result.json'), JSON.stringify(json, null, 2) + '\n');
      return json;
    },
    { replace: o.replace, signal: o.signal },
  );
}

/**
 * A vector or matrix as CSV: names where known (names of the wrong length are not used), otherwise
 * columns V1, V2, … (a vector is one column named after the array).
 */
function writeArrayCsv(path: string, a: ArrayFile, names: AxisNames | undefined): void {
  const [rows, cols] = a.shape.length === 1 ? [a.shape[0]!, 1] : [a.shape[0]!, a.shape[1]!];
  const fits = (list: readonly string[] | undefined, n: number): readonly string[] | undefined => (list && list.length === n ? list : undefined);
  const rowNames = fits(names?.rows, rows);
  const colNames = fits(names?.cols, cols) ?? (a.shape.length === 1 ? [a.name] : undefined);
  writeCsv(path, { rows, cols, data: a.data! }, { ...(rowNames ? { rowNames } : {}), ...(colNames ? { colNames } : {}) });
}

/** Why a path cannot receive files, from an operating-system error code. */
function reason(err: NodeJS.ErrnoException, where: string): string {
  switch (err.code) {
    case 'EACCES':
    case 'EPERM':
      return `permission denied in ${where}`;
    case 'EROFS':
      return `${where} is on a read-only file system`;
    case 'ENOTDIR':
      return `${where} is a file, not a folder`;
    case 'ENOSPC':
      return `no space left in ${where}`;
    case 'ENOENT':
      return `${where} does not accept new folders`;
    default:
      return `${err.code ?? 'error'} in ${where}`;
  }
}

/**
 * Checks before a run that a result directory can be written there: it does not exist (unless
 * `replace`), and a folder can be created in its nearest existing ancestor (probed by creating and
 * removing an empty one, which also catches read-only mounts and special file systems). Throws a
 * UsageError naming `given` (the path as the user wrote it) and the reason.
 */
export function checkOutDir(dir: string, given: string, flag = '--out', replace = false, cwd = process.cwd()): void {
  const fail = (why: string): never => {
    throw new UsageError(`Cannot write ${flag} ${given}: ${why}`);
  };
  // Paths in the message as the user wrote them: relative when `given` was.
  const shown = (p: string): string => (isAbsolute(given) ? p : relative(cwd, p) || '.');
  if (existsSync(dir) && !replace) fail('it already exists (add --force to replace it)');
  let ancestor = existsSync(dir) ? dirname(dir) : dir;
  while (!existsSync(ancestor)) ancestor = dirname(ancestor);
  if (!statSync(ancestor).isDirectory()) fail(`${shown(ancestor)} is a file, not a folder`);
  try {
    rmdirSync(mkdtempSync(join(ancestor, '.nsa-flow-probe-')));
  } catch (err) {
    fail(reason(err as NodeJS.ErrnoException, shown(ancestor)));
  }
}

/** Builds a directory under a temporary name and renames it into place (see writeResultDir). */
export function writeDirAtomically<T>(dir: string, fill: (tmp: string) => T, options: { replace?: boolean; signal?: AbortSignal } = {}): T {
  const parent = dirname(dir);
  mkdirSync(parent, { recursive: true });
  const tag = `${process.pid}-${randomBytes(4).toString('hex')}`;
  const tmp = join(parent, `.${basename(dir)}.tmp-${tag}`);
  mkdirSync(tmp);
  try {
    const value = fill(tmp);
    if (options.signal?.aborted) throw new AbortError();
    if (existsSync(dir)) {
      if (!options.replace) throw new Error(`${dir} already exists`);
      const old = join(parent, `.${basename(dir)}.old-${tag}`);
      renameSync(dir, old);
      renameSync(tmp, dir);
      rmSync(old, { recursive: true, force: true });
    } else {
      renameSync(tmp, dir);
    }
    return value;
  } catch (err) {
    rmSync(tmp, { recursive: true, force: true });
    throw err;
  }
}
