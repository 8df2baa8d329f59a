/**
 * Results on disk: every typed array of a result becomes a `.npy` file (CSR matrices a `.mtx`), and
 * `result.json` holds the rest — settings, trace columns (inline, for plots), diagnostics, timings and
 * input paths — plus a reference {file, shape} for each array. A result directory appears whole or
 * not at all: it is written to a temporary sibling and renamed into place.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, renameSync, rmdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { basename, dirname, isAbsolute, join, relative } from 'node:path';

import { AbortError } from '../errors.js';
import { writeCsv, writeMatrixMarket, writeNpy } from '../io/index.js';
import type { CsrMatrix } from '../matrix.js';
import type { Tensor } from '../tensor.js';
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

/** Splits a result into array files and JSON-able values (typed arrays replaced by references). */
export function splitResult(result: object): { arrays: ArrayFile[]; values: Record<string, unknown> } {
  const arrays: ArrayFile[] = [];
  const add = (name: string, shape: number[], data: Float64Array): ArrayRef => {
    const file = `${name}.npy`;
    const tensor: Tensor = { shape, data };
    arrays.push({ name, file, shape, data, write: (p) => writeNpy(p, tensor) });
    return { file, shape };
  };
  const walk = (v: unknown, name: string): unknown => {
    // An empty array has no .npy form here: it stays in result.json as [].
    if (isTyped(v)) return v.length === 0 ? [] : add(name, [v.length], asFloat64(v));
    if (v === null || typeof v !== 'object') return v;
    const o = v as Record<string, unknown>;
    if ('indptr' in o && isTyped(o.indptr) && isTyped(o.data)) {
      const csr = o as unknown as CsrMatrix;
      const file = `${name}.mtx`;
      const shape = [csr.rows, csr.cols];
      arrays.push({ name, file, shape, write: (p) => writeMatrixMarket(p, csr) });
      return { file, shape };
    }
    if (typeof o.rows === 'number' && typeof o.cols === 'number' && o.data instanceof Float64Array) {
      return add(name, [o.rows, o.cols], o.data);
    }
    if (Array.isArray(o.shape) && o.data instanceof Float64Array) return add(name, o.shape as number[], o.data);
    if (Array.isArray(v)) return v.map((item, i) => walk(item, `${name}.${i}`));
    return Object.fromEntries(Object.entries(o).map(([k, item]) => [k, walk(item, name ? `${name}.${k}` : k)]));
  };
  const values = walk(result, '') as Record<string, unknown>;
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

/**
 * The content of result.json for a result (arrays are referenced, not included). With `csv`, each
 * vector and matrix also has a NAME.csv copy, listed in its reference.
 */
export function resultJson(result: object, meta: ResultMeta, options: ResultWriteOptions = {}): { json: ResultJson; arrays: ArrayFile[] } {
  const { csv, names: namer } = options;
  const { settings, ...rest } = result as { settings?: Record<string, unknown> };
  const { arrays, values } = splitResult(rest);
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
    settings: settings ?? meta.options,
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
 */
export function writeResultDir(
  dir: string,
  result: object,
  meta: ResultMeta,
  options: { replace?: boolean; signal?: AbortSignal } & ResultWriteOptions = {},
): ResultJson {
  const { json, arrays } = resultJson(result, meta, options);
  return writeDirAtomically(
    dir,
    (tmp) => {
      for (const a of arrays) {
        if (options.signal?.aborted) throw new AbortError();
        a.write(join(tmp, a.file));
        if (options.csv && hasCsv(a)) writeArrayCsv(join(tmp, `${a.name}.csv`), a, options.names?.({ name: a.name, shape: a.shape }));
      }
      writeFileSync(join(tmp, 'result.json'), JSON.stringify(json, null, 2) + '\n');
      return json;
    },
    options,
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
