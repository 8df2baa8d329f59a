// Where the tests find their inputs. Fixtures (test/fixtures/*.json.gz) and the small real data sets
// (data/) ship with the repository. Larger optional data sets live outside it, in ../shared/data beside
// the clone (override with NSA_FLOW_SHARED); the tests that need them skip, saying what is missing.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gunzipSync } from 'node:zlib';

import type { Matrix } from '../../lib/matrix.js';
import type { Tensor } from '../../lib/tensor.js';

export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const fixturesDir = resolve(repoRoot, 'test', 'fixtures');
/** The data sets shipped in the repository. */
export const bundledDataDir = resolve(repoRoot, 'data');
/** The optional folder of larger data sets (same layout as data/). */
export const sharedDir = process.env.NSA_FLOW_SHARED ?? resolve(repoRoot, '..', 'shared');
export const optionalDataDir = resolve(sharedDir, 'data');

/**
 * Path of a data file named by its place in the data layout ('text/austen_docs.csv'): the copy in data/
 * (plain or gzipped: data/ compresses large .npy files), else the one in the optional folder (which may
 * not exist; see missingData).
 */
export function dataFile(rel: string): string {
  for (const candidate of [rel, `${rel}.gz`]) {
    const path = resolve(bundledDataDir, candidate);
    if (existsSync(path)) return path;
  }
  return resolve(optionalDataDir, rel);
}

const reported = new Set<string>();
/**
 * True when a data file the caller needs is absent; prints one line naming it (once per file), so a
 * skipped test says why: `describe.skipIf(missingData('snmf on Reuters', 'text/reuters_tfidf.mtx.gz'))`.
 */
export function missingData(what: string, ...rels: string[]): boolean {
  const missing = rels.filter((rel) => !existsSync(dataFile(rel)));
  if (missing.length === 0) return false;
  const key = `${what}|${missing.join()}`;
  if (!reported.has(key)) {
    reported.add(key);
    console.warn(`skipped ${what}: optional data ${missing.join(', ')} not found in data/ or ${optionalDataDir} (set NSA_FLOW_SHARED)`);
  }
  return true;
}

export interface FixtureArray {
  shape: number[];
  data: (number | string)[];
}

const cache = new Map<string, unknown>();
/** Parses a fixture file ('ortho.json', stored as test/fixtures/ortho.json.gz) once per test process. */
export function loadFixture<T = any>(name: string): T {
  if (!cache.has(name)) cache.set(name, JSON.parse(gunzipSync(readFileSync(resolve(fixturesDir, `${name}.gz`))).toString('utf8')));
  return cache.get(name) as T;
}

function toNumber(v: number | string): number {
  if (typeof v === 'number') return v;
  return v === 'NaN' ? NaN : v === 'Infinity' ? Infinity : -Infinity;
}

/** A fixture array as a Matrix (2-D) — throws if it is not 2-D. */
export function fxMatrix(a: FixtureArray): Matrix {
  if (a.shape.length !== 2) throw new Error(`fixture array has shape [${a.shape}], expected 2-D`);
  return { rows: a.shape[0]!, cols: a.shape[1]!, data: Float64Array.from(a.data, toNumber) };
}

export function fxTensor(a: FixtureArray): Tensor {
  return { shape: [...a.shape], data: Float64Array.from(a.data, toNumber) };
}

/** max |a − b| / max(max |b|, tiny): the "relative to the largest entry" error of the fixtures README. */
export function relativeError(actual: ArrayLike<number>, expected: ArrayLike<number>): number {
  if (actual.length !== expected.length) return Infinity;
  let maxDiff = 0;
  let maxRef = 0;
  for (let i = 0; i < expected.length; i++) {
    maxDiff = Math.max(maxDiff, Math.abs(actual[i]! - expected[i]!));
    maxRef = Math.max(maxRef, Math.abs(expected[i]!));
  }
  return maxDiff / Math.max(maxRef, 1e-300);
}
