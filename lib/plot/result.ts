/**
 * Reading a result directory (result.json + .npy files, see lib/cli/output.ts) for plotting, as
 * untrusted input: result.json may have been crafted. Every field is checked before it is used; array
 * names must match a safe pattern (they become output file names); an array's file must be a plain
 * `.npy` name that resolves, symlinks followed, to a regular file inside the result directory; its
 * declared shape must match the file and fit in memory before anything is read. Any violation is a
 * FormatError naming result.json and the field.
 */
import { readFileSync, realpathSync, statSync } from 'node:fs';
import { dirname, join, sep } from 'node:path';

import type { AxisNames } from '../cli/registry.js';
import { FormatError, readNpy, readNpyHeader } from '../io/index.js';
import type { Matrix } from '../matrix.js';
import { checkMemory, float64Bytes } from '../memory.js';
import { describeValue } from '../validate.js';

/** Names of arrays (they become parts of output file names): no separators, no leading dot. */
export const arrayNamePattern = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,199}$/;
/** Files of arrays: a plain name in the result directory ending in .npy (dense) or .mtx (sparse). */
const arrayFilePattern = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,199}\.(npy|mtx)$/;
const fileWhat = "a .npy or .mtx file name inside the result directory (letters, digits, '_', '.', '-'; no path)";
const maxDims = 32;

export type { AxisNames };

export interface PlotArrayRef {
  file: string;
  shape: number[];
}

/** The parts of result.json that plots use, checked. */
export interface PlotResult {
  /** The result.json file and its directory (real paths). */
  file: string;
  dir: string;
  method: string;
  traces: Record<string, (number | null)[]>;
  arrays: Record<string, PlotArrayRef>;
  names: Record<string, AxisNames>;
  /** The selected w of a path result, when it has one. */
  selection?: { w: number; criterion?: string };
  /** The chosen rank of a cross-validation result and its rule, when it has one. */
  chosenRank?: number;
  rule?: string;
}

const isObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);

/**
 * Reads and checks result.json (`resultPath` is the file or its directory). Arrays are not read here:
 * see readResultMatrix.
 */
export function readPlotResult(resultPath: string): PlotResult {
  if (typeof resultPath !== 'string' || resultPath === '') throw new TypeError(`Expected a path for resultPath but received ${describeValue(resultPath)}`);
  if (resultPath.includes('\0')) throw new RangeError(`Expected a path (without NUL bytes) for resultPath but received ${describeValue(resultPath)}`);
  const isDir = statSync(resultPath).isDirectory();
  const given = isDir ? join(resultPath, 'result.json') : resultPath;
  // The result folder is the one named (symlinks resolved); result.json must lie in it too, so that a
  // link cannot move the folder whose files get read.
  const dir = realpathSync(isDir ? resultPath : dirname(resultPath));
  const file = realpathSync(given);
  if (dirname(file) !== dir) throw new FormatError(given, `Expected result.json inside the result folder ${dir} but it resolves to ${file}`, { code: 'bad-value' });
  const st = statSync(file);
  if (!st.isFile()) throw new FormatError(given, 'Expected a regular file for result.json but received something else', { code: 'bad-value' });
  // JSON.parse holds the text and the parsed values: allow a generous multiple of the file size.
  checkMemory(st.size * 8, `reading ${given} (${st.size} bytes)`);
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new FormatError(given, `Expected JSON but ${(err as Error).message}`, { code: 'bad-value', cause: err });
  }
  const bad = (field: string, what: string, value: unknown): FormatError =>
    new FormatError(given, `Expected ${what} for field ${field} but received ${describeValue(value)}`, { code: 'bad-value' });

  if (!isObject(raw)) throw bad('(top level)', 'an object', raw);
  const method = raw.method;
  if (typeof method !== 'string' || method.length > 200) throw bad('method', 'a string of at most 200 characters', method);

  const traces: Record<string, (number | null)[]> = {};
  if (raw.traces !== undefined) {
    if (!isObject(raw.traces)) throw bad('traces', 'an object of trace columns', raw.traces);
    for (const [k, col] of Object.entries(raw.traces)) {
      if (!Array.isArray(col)) throw bad(`traces[${JSON.stringify(k)}]`, 'an array of numbers and nulls', col);
      const i = col.findIndex((v) => v !== null && typeof v !== 'number');
      if (i >= 0) throw bad(`traces[${JSON.stringify(k)}][${i}]`, 'a number or null', col[i]);
      traces[k] = col as (number | null)[];
    }
  }

  const arrays: Record<string, PlotArrayRef> = {};
  if (raw.arrays !== undefined) {
    if (!isObject(raw.arrays)) throw bad('arrays', 'an object of {file, shape} references', raw.arrays);
    for (const [name, ref] of Object.entries(raw.arrays)) {
      const field = `arrays[${JSON.stringify(name)}]`;
      if (!arrayNamePattern.test(name)) throw bad(field, "an array name of letters, digits, '_', '.' and '-' (not starting with '.' or '-')", name);
      if (!isObject(ref)) throw bad(field, 'an object {file, shape}', ref);
      if (typeof ref.file !== 'string' || !arrayFilePattern.test(ref.file)) throw bad(`${field}.file`, fileWhat, ref.file);
      const shape = ref.shape;
      if (!Array.isArray(shape) || shape.length === 0 || shape.length > maxDims) throw bad(`${field}.shape`, `an array of 1 to ${maxDims} dimensions`, shape);
      const d = shape.findIndex((n) => typeof n !== 'number' || !Number.isSafeInteger(n) || n < 0);
      if (d >= 0) throw bad(`${field}.shape[${d}]`, 'a non-negative integer', shape[d]);
      arrays[name] = { file: ref.file, shape: shape as number[] };
    }
  }

  const names: Record<string, AxisNames> = {};
  if (raw.names !== undefined) {
    if (!isObject(raw.names)) throw bad('names', 'an object of {rows?, cols?} per array', raw.names);
    for (const [name, entry] of Object.entries(raw.names)) {
      const field = `names[${JSON.stringify(name)}]`;
      const ref = Object.hasOwn(arrays, name) ? arrays[name]! : undefined;
      if (!ref || ref.shape.length !== 2) throw bad(field, 'the name of a 2-D array of arrays', name);
      if (!isObject(entry)) throw bad(field, 'an object {rows?, cols?, rowTitle?, colTitle?}', entry);
      const axis: AxisNames = {};
      for (const [key, dim] of [['rows', 0], ['cols', 1]] as const) {
        const list = entry[key];
        if (list === undefined) continue;
        if (!Array.isArray(list) || list.length !== ref.shape[dim]) throw bad(`${field}.${key}`, `an array of ${ref.shape[dim]} strings`, list);
        const i = list.findIndex((s) => typeof s !== 'string');
        if (i >= 0) throw bad(`${field}.${key}[${i}]`, 'a string', list[i]);
        axis[key] = list as string[];
      }
      for (const key of ['rowTitle', 'colTitle'] as const) {
        const t = entry[key];
        if (t === undefined) continue;
        if (typeof t !== 'string' || t.length > 100) throw bad(`${field}.${key}`, 'a string of at most 100 characters', t);
        axis[key] = t;
      }
      names[name] = axis;
    }
  }

  const result: PlotResult = { file, dir, method, traces, arrays, names };
  const selection = isObject(raw.values) ? raw.values.selection : undefined;
  if (isObject(selection) && selection.w !== undefined) {
    if (typeof selection.w !== 'number' || !Number.isFinite(selection.w)) throw bad('values.selection.w', 'a finite number', selection.w);
    result.selection = { w: selection.w, ...(typeof selection.criterion === 'string' ? { criterion: selection.criterion.slice(0, 100) } : {}) };
  }
  if (isObject(raw.values) && raw.values.chosenRank !== undefined) {
    const { chosenRank, rule } = raw.values;
    if (typeof chosenRank !== 'number' || !Number.isSafeInteger(chosenRank) || chosenRank < 1) throw bad('values.chosenRank', 'a positive integer', chosenRank);
    result.chosenRank = chosenRank;
    if (typeof rule === 'string') result.rule = rule.slice(0, 100);
  }
  return result;
}

/**
 * Reads one 2-D array of a checked result: its file must stay inside the result directory (symlinks
 * followed), be a regular .npy file whose header matches the declared shape, and fit in memory.
 */
/** Internal to plotResult: `result` comes from readPlotResult. */
export function readResultMatrix(result: PlotResult, name: string): Matrix {
  const ref = Object.hasOwn(result.arrays, name) ? result.arrays[name] : undefined;
  const field = `arrays[${JSON.stringify(name)}]`;
  const bad = (what: string, value: unknown, key = 'file'): FormatError =>
    new FormatError(result.file, `Expected ${what} for field ${field}.${key} but received ${describeValue(value)}`, { code: 'bad-value' });
  if (!ref) throw new RangeError(`Expected the name of an array of the result for name but received ${describeValue(name)}`);
  if (ref.shape.length !== 2) throw bad('a 2-D shape', ref.shape, 'shape');
  if (!arrayFilePattern.test(ref.file) || !ref.file.endsWith('.npy')) throw bad('a .npy file (plots read dense arrays)', ref.file);
  let real: string;
  try {
    real = realpathSync(join(result.dir, ref.file));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw bad('an existing file', ref.file);
    throw err;
  }
  if (!real.startsWith(result.dir + sep)) throw bad('a file inside the result directory (it resolves outside)', ref.file);
  const st = statSync(real);
  if (!st.isFile()) throw bad('a regular file', ref.file);
  const header = readNpyHeader(real);
  if (header.shape.length !== 2 || header.shape[0] !== ref.shape[0] || header.shape[1] !== ref.shape[1]) {
    throw new FormatError(result.file, `Expected ${ref.file} to hold the declared shape [${ref.shape.join(', ')}] of field ${field}.shape but it holds [${header.shape.join(', ')}]`, {
      code: 'bad-value',
    });
  }
  if (header.dataOffset + header.dataLength > st.size) {
    throw new FormatError(real, `Expected ${header.dataLength} bytes of data after the header but the file has ${st.size - header.dataOffset}`, { code: 'truncated' });
  }
  checkMemory(float64Bytes(ref.shape[0]!, ref.shape[1]!), `array ${name} of ${result.file} (${ref.shape.join(' × ')})`);
  const t = readNpy(real);
  return { rows: t.shape[0]!, cols: t.shape[1]!, data: t.data };
}
