/**
 * Results on disk: every typed array of a result becomes a `.npy` file (CSR matrices a `.mtx`), and
 * `result.json` holds the rest — settings, trace columns (inline, for plots), diagnostics, timings and
 * input paths — plus a reference {file, shape} for each array. A result directory appears whole or
 * not at all: it is written to a temporary sibling and renamed into place.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';

import { AbortError } from '../errors.js';
import { writeMatrixMarket, writeNpy } from '../io/index.js';
import type { CsrMatrix } from '../matrix.js';
import type { Tensor } from '../tensor.js';
import { getMethod, type AxisNames } from './registry.js';

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
  /** Names of rows/columns of some 2-D arrays (see MethodSpec.names), for labelled plots. */
  names?: Record<string, AxisNames>;
  values: Record<string, unknown>;
  timings: ResultMeta['timings'];
  run: Record<string, unknown>;
}

type ArrayFile = { name: string; file: string; write: (path: string) => void; shape: number[] };

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
    arrays.push({ name, file, shape, write: (p) => writeNpy(p, tensor) });
    return { file, shape };
  };
  const walk = (v: unknown, name: string): unknown => {
    if (isTyped(v)) return add(name, [v.length], asFloat64(v));
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

/** The content of result.json for a result (arrays are referenced, not included). */
export function resultJson(result: object, meta: ResultMeta): { json: ResultJson; arrays: ArrayFile[] } {
  const { settings, ...rest } = result as { settings?: Record<string, unknown> };
  const { arrays, values } = splitResult(rest);
  const refs: Record<string, ArrayRef> = {};
  for (const a of arrays) refs[a.name] = { file: a.file, shape: a.shape };
  const traces = Object.fromEntries(
    Object.entries(meta.traces).map(([k, col]) => [k, Array.from(col, (x) => (Number.isFinite(x) ? x : null))]),
  );
  // Only names that fit an array written (a 2-D array with that many rows/columns).
  const names = Object.entries(getMethod(meta.method)?.names?.(result) ?? {}).filter(([n, a]) => {
    const shape = refs[n]?.shape;
    return shape?.length === 2 && (!a.rows || a.rows.length === shape[0]) && (!a.cols || a.cols.length === shape[1]);
  });
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
  options: { replace?: boolean; signal?: AbortSignal } = {},
): ResultJson {
  const { json, arrays } = resultJson(result, meta);
  return writeDirAtomically(
    dir,
    (tmp) => {
      for (const a of arrays) {
        if (options.signal?.aborted) throw new AbortError();
        a.write(join(tmp, a.file));
      }
      writeFileSync(join(tmp, 'result.json'), JSON.stringify(json, null, 2) + '\n');
      return json;
    },
    options,
  );
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
