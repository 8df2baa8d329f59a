/**
 * What every plot of nsa-flow/plot shares: rendering a Vega-Lite spec to SVG, the option specs and
 * the argument readers (each input read once, so what is checked is what is drawn), and the limits on
 * what one figure may hold.
 */
import type { TopLevelSpec } from 'vega-lite';

import { describe, isList, isPlainRecord, readObject } from '../cli/check.js';
import { describeValue, ownKeys, parseOptions, readField, readList, type OptionSpecs } from '../validate.js';
import { loadPlotPackages } from './load.js';

export const schema = 'https://vega.github.io/schema/vega-lite/v6.json';

/**
 * Points (or heatmap cells) one figure draws at most: beyond this Vega's SVG grows past what a viewer
 * opens comfortably (about 100 bytes a mark) and rendering takes seconds; a RangeError says so first.
 */
export const maxFigureMarks = 200_000;
/** Panels (or curves, or series in one panel) one figure holds at most. */
export const maxFigureParts = 64;

/**
 * Renders a Vega-Lite spec to an SVG string (headless: no canvas, no browser). The spec is copied
 * first, each field read once, so that a getter cannot change it while Vega-Lite reads it, and a
 * spec too large or too deep to compile (a sparse array claiming 10⁹ entries, a cycle) is a RangeError
 * instead of an out-of-memory abort or a stack overflow.
 */
export async function renderSvg(spec: TopLevelSpec): Promise<string> {
  if (!isPlainRecord(spec)) throw new TypeError(`Expected a Vega-Lite spec object for spec but received ${describe(spec)}`);
  const copy = copySpec(spec);
  const { vega, vegaLite } = await loadPlotPackages();
  let compiled;
  try {
    compiled = vegaLite.compile(copy).spec;
  } catch (err) {
    throw new TypeError(`Expected a valid Vega-Lite spec for spec but compiling it failed: ${(err as Error)?.message ?? String(err)}`, { cause: err });
  }
  const view = new vega.View(vega.parse(compiled), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

/** Array entries and object fields a spec given to renderSvg may hold in all (the figures here hold far fewer). */
export const maxSpecValues = 10_000_000;
/** Levels of nesting a spec may have (Vega-Lite's own specs are a dozen deep; more is a cycle). */
export const maxSpecDepth = 100;

/**
 * A copy of a spec made of its plain objects and arrays, each field read once; other values (numbers,
 * strings, Dates, typed arrays) are taken as they are. Bounded by maxSpecValues and maxSpecDepth.
 */
function copySpec(spec: object): TopLevelSpec {
  let left = maxSpecValues;
  const take = (n: number, at: string): void => {
    left -= n;
    if (left < 0) throw new RangeError(`Expected a Vega-Lite spec of at most ${maxSpecValues} values in all for spec but ${at} holds ${n}, past that`);
  };
  const copy = (v: unknown, at: string, depth: number): unknown => {
    if (typeof v !== 'object' || v === null) return v;
    if (ArrayBuffer.isView(v)) {
      take(v.byteLength, at);
      return v;
    }
    const array = isList(v);
    if (!array) {
      let proto: unknown;
      try {
        proto = Object.getPrototypeOf(v);
      } catch (err) {
        throw new TypeError(`Expected a plain object for ${at} but reading its prototype threw (${(err as Error)?.message ?? String(err)})`);
      }
      if (proto !== Object.prototype && proto !== null) return v; // a Date or another value Vega takes as it is
    }
    if (depth >= maxSpecDepth) throw new RangeError(`Expected a Vega-Lite spec nested at most ${maxSpecDepth} levels deep for spec but ${at} is deeper (a cycle?)`);
    if (array) {
      const n = readField(v, 'length', `${at}.length`) as number;
      take(n, at);
      const out = new Array<unknown>(n);
      for (let i = 0; i < n; i++) out[i] = copy(readField(v, i, `${at}[${i}]`), `${at}[${i}]`, depth + 1);
      return out;
    }
    const keys = ownKeys(v, at);
    take(keys.length, at);
    const out: Record<string, unknown> = {};
    for (const key of keys) {
      // defineProperty: an own "__proto__" field (JSON.parse makes one) stays a field, not a prototype.
      Object.defineProperty(out, key, { value: copy(readField(v, key, `${at}.${key}`), `${at}.${key}`, depth + 1), enumerable: true, writable: true, configurable: true });
    }
    return out;
  };
  return copy(spec, 'spec', 0) as TopLevelSpec;
}

export const int = (min: number, max: number, def: number | undefined, description: string) =>
  ({ kind: 'number', integer: true, min, max, default: def, description }) as const;

export const text = (description: string) =>
  ({
    kind: 'custom',
    description,
    check: (v: unknown, name: string) => {
      if (typeof v !== 'string') throw new TypeError(`Expected a string for ${name} but received ${describeValue(v)}`);
      return v;
    },
  }) as const;

export const nameList = {
  kind: 'custom',
  description: 'an array of strings',
  check: (v: unknown, name: string) => {
    if (!Array.isArray(v)) throw new TypeError(`Expected an array of strings for ${name} but received ${describeValue(v)}`);
    const i = v.findIndex((s) => typeof s !== 'string');
    if (i >= 0) throw new TypeError(`Expected an array of strings for ${name} but received ${describeValue(v[i])} at [${i}]`);
    return v as string[];
  },
} as const;

/**
 * parseOptions over an options argument read once: unknown keys are refused with a "did you mean",
 * a getter that throws becomes a TypeError naming the option. `name` is what the caller passed it as
 * ('options', or 'panels[2].options' for the options of one panel).
 */
export function readOptions<T>(specs: OptionSpecs, options: unknown, context: string, name = 'options'): T {
  const read = options === undefined ? {} : readObject(options, name, `${context} options {${Object.keys(specs).join(', ')}}`, Object.keys(specs));
  return parseOptions<T>(specs, read, context);
}

/** A column of numbers: an array or a typed array (a real length, so drawing it is bounded by memory). */
export function expectColumn(v: unknown, name: string): ArrayLike<unknown> {
  if (isList(v) || (ArrayBuffer.isView(v) && !(v instanceof DataView))) return isList(v) ? Array.from(v as unknown[]) : (v as unknown as ArrayLike<unknown>);
  throw new TypeError(`Expected an array of numbers for ${name} but received ${describe(v)}`);
}

/** `title` as Vega-Lite takes it: a subtitle line for each limit the plot stops at. */
export const titled = (title: string, notes: string[]) => (notes.length ? { text: title, subtitle: notes } : title);

/**
 * A non-empty list of at most `max` entries (an array, each element read once), for the parts of a
 * figure: panels, curves, series, images.
 */
export function readParts(v: unknown, name: string, what: string, max = maxFigureParts): unknown[] {
  if (!isList(v)) throw new TypeError(`Expected ${what} for ${name} but received ${describe(v)}`);
  const list = readList(v, name, what, max);
  if (list.length === 0) throw new RangeError(`Expected ${what} (at least one) for ${name} but received an empty array`);
  return list;
}

/**
 * A column of numbers read once into a plain array: an array of numbers (null for a missing value) or
 * a typed array, non-empty, at most `max` long (`limit` says why, when it is a figure's remaining budget). NaN, ±Infinity and null stay in the copy: each plot
 * leaves those points out (a gap, as convergencePlot and tradeoffPlot do), never draws them.
 */
export function readNumbers(v: unknown, name: string, max: number, limit = ''): (number | null)[] {
  const isTyped = ArrayBuffer.isView(v) && !(v instanceof DataView);
  if (!isList(v) && !isTyped) throw new TypeError(`Expected an array of numbers for ${name} but received ${describe(v)}`);
  const list = readList(v, name, `an array of numbers${limit}`, max);
  if (list.length === 0) throw new RangeError(`Expected an array of numbers (at least one) for ${name} but received an empty array`);
  for (let i = 0; i < list.length; i++) {
    const x = list[i];
    if (x !== null && typeof x !== 'number') throw new TypeError(`Expected a number (or null for a gap) for ${name}[${i}] but received ${describe(x)}`);
  }
  return list as (number | null)[];
}

/** A string field: required unless a fallback is given (undefined then takes it). */
export function readText(v: unknown, name: string, fallback?: string): string {
  if (v === undefined && fallback !== undefined) return fallback;
  if (typeof v !== 'string') throw new TypeError(`Expected a string for ${name} but received ${describe(v)}`);
  return v;
}

/** A boolean field, false when absent. */
export function readFlag(v: unknown, name: string): boolean {
  if (v === undefined) return false;
  if (typeof v !== 'boolean') throw new TypeError(`Expected a boolean for ${name} but received ${describe(v)}`);
  return v;
}

/** Whether a value can be drawn: finite, and positive on a log axis. */
export const drawable = (v: number | null | undefined, log: boolean): v is number => typeof v === 'number' && Number.isFinite(v) && (!log || v > 0);

/** Throws when two entries of a list share a name (one colour would stand for both). */
export function expectDistinct(names: readonly string[], name: string, field: string): void {
  const seen = new Map<string, number>();
  names.forEach((n, i) => {
    const first = seen.get(n);
    if (first !== undefined) throw new RangeError(`Expected distinct ${field}s in ${name} but ${name}[${i}].${field} repeats ${name}[${first}].${field} (${describeValue(n)})`);
    seen.set(n, i);
  });
}

/** Throws when a figure would draw more than maxFigureMarks marks. */
export function expectMarks(count: number, name: string, what: string): void {
  if (count > maxFigureMarks) throw new RangeError(`Expected at most ${maxFigureMarks} ${what} in all for ${name} but received ${count}`);
}
