/**
 * Reading a method's inputs from the references a user gives: a path for a matrix or tensor, and
 * `file.csv:column` for strata labels. Relative paths are resolved against `baseDir` (the current
 * directory on the command line, the jobs file's directory in a batch).
 */
import { existsSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';

import { asDense, readCsv, readLabels, readMatrix, readNpy, type ReadCsvOptions } from '../io/index.js';
import { describe } from './check.js';
import { UsageError } from './flags.js';
import type { AxisNames, DataNames, InputSpec, InputValue, MethodSpec } from './registry.js';

/** `labels.csv:column` → [path, column]; the column is the text after the last colon. */
export function splitStrataRef(ref: string, name: string): [string, string] {
  const i = ref.lastIndexOf(':');
  if (i <= 0 || i === ref.length - 1) {
    throw new UsageError(`Expected file.csv:column for ${name} but received ${JSON.stringify(ref)}`);
  }
  return [ref.slice(0, i), ref.slice(i + 1)];
}

export function resolvePath(path: string, baseDir: string): string {
  return isAbsolute(path) ? path : resolve(baseDir, path);
}

/** The path to read: as the user wrote it when that names the same file (so messages show it), else resolved. */
function readablePath(path: string, baseDir: string): string {
  const full = resolvePath(path, baseDir);
  return resolve(path) === full ? path : full;
}

/**
 * Checks that `refs` names exactly the method's inputs (every required one, no unknown one) and
 * that each file exists, before anything is read — so a bad job fails fast, naming the input.
 */
export function checkInputRefs(method: MethodSpec, refs: Record<string, string>, baseDir: string, where: string): void {
  for (const name of Object.keys(refs)) {
    if (!(name in method.inputs)) {
      throw new UsageError(`Unknown input '${name}' for ${where}; ${method.name} reads: ${Object.keys(method.inputs).join(', ')}`);
    }
  }
  for (const [name, spec] of Object.entries(method.inputs)) {
    const ref = refs[name];
    if (ref === undefined) {
      if (spec.optional) continue;
      throw new UsageError(`Missing input ${name} (${spec.description}) for ${where}`);
    }
    if (typeof ref !== 'string') throw new UsageError(`Expected a path for input ${name} of ${where} but received ${describe(ref)}`);
    const path = spec.kind === 'strata' ? splitStrataRef(ref, `input ${name} of ${where}`)[0] : ref;
    if (!existsSync(resolvePath(path, baseDir))) throw new UsageError(`Input file not found: ${path} (input ${name} of ${where})`);
  }
}

/** The key under which readInputs caches an input (kind, reader and resolved path). */
export function inputCacheKey(spec: InputSpec, ref: string, baseDir: string): string {
  return `${spec.kind}${spec.kind === 'matrix' && spec.sparse ? '/sparse' : ''}:${resolvePath(ref, baseDir)}`;
}

// Names travel beside the matrices they describe (and with them through readInputs' cache).
const namesByInput = new WeakMap<object, DataNames>();

/** The names an input read by readInput carried, if any. */
export function namesOf(value: InputValue | undefined): DataNames | undefined {
  return value !== null && typeof value === 'object' ? namesByInput.get(value) : undefined;
}

/** The names of a result's arrays (MethodSpec.arrayNames) given the inputs the method read. */
export function arrayNamer(method: MethodSpec, inputs: Record<string, InputValue>, result: object): (array: { name: string; shape: readonly number[] }) => AxisNames | undefined {
  const inputNames: Record<string, DataNames | undefined> = Object.fromEntries(Object.entries(inputs).map(([k, v]) => [k, namesOf(v)]));
  return (array) => method.arrayNames?.(array, inputNames, result);
}

/** True for the paths read with readCsv (.csv, .tsv, plain or gzipped). */
export const isCsvPath = (path: string): boolean => /\.(csv|tsv)(\.gz)?$/i.test(path);

/**
 * Reads one input with the reader its kind calls for. FormatErrors name the file. `csv` are the
 * readCsv options for a matrix given as a CSV file (header, columns, drop, rowNames, transpose).
 */
export function readInput(spec: InputSpec, ref: string, baseDir: string, name: string, csv?: ReadCsvOptions): InputValue {
  if (spec.kind === 'strata') {
    const [path, column] = splitStrataRef(ref, `input ${name}`);
    return readLabels(readablePath(path, baseDir), column);
  }
  if (spec.kind === 'tensor') return readNpy(readablePath(ref, baseDir));
  const path = readablePath(ref, baseDir);
  if (isCsvPath(path)) {
    const table = readCsv(path, csv);
    const names: DataNames = {};
    if (table.rowNames) names.rowNames = table.rowNames;
    if (table.colNames) names.colNames = table.colNames;
    namesByInput.set(table.matrix, names);
    return table.matrix;
  }
  const m = readMatrix(path);
  return spec.sparse ? m : asDense(m);
}

/**
 * Reads every referenced input. `cache` (keyed by kind and path) lets a batch read a file shared by
 * many jobs once; inputs are never mutated by methods (the runtime protects them), so sharing is safe.
 */
export function readInputs(
  method: MethodSpec,
  refs: Record<string, string>,
  baseDir: string,
  cache?: Map<string, InputValue>,
  csv?: ReadCsvOptions,
): Record<string, InputValue> {
  const out: Record<string, InputValue> = {};
  for (const [name, spec] of Object.entries(method.inputs)) {
    const ref = refs[name];
    if (ref === undefined) continue;
    const key = `${inputCacheKey(spec, ref, baseDir)}${csv ? ` ${JSON.stringify(csv)}` : ''}`;
    let value = cache?.get(key);
    if (value === undefined) {
      value = readInput(spec, ref, baseDir, name, csv);
      cache?.set(key, value);
    }
    out[name] = value;
  }
  return out;
}
