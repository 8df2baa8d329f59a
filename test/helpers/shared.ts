// Locations of the shared reference material (fixtures and real data sets), which live beside the
// repository in ../shared (override with NSA_FLOW_SHARED).
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

import type { Matrix } from '../../lib/matrix.js';
import type { Tensor } from '../../lib/tensor.js';

export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const sharedDir = process.env.NSA_FLOW_SHARED ?? resolve(repoRoot, '..', 'shared');
export const fixturesDir = resolve(sharedDir, 'fixtures');
export const dataDir = resolve(sharedDir, 'data');

export interface FixtureArray {
  shape: number[];
  data: (number | string)[];
}

const cache = new Map<string, unknown>();
/** Parses a fixture file once per test process. */
export function loadFixture<T = any>(name: string): T {
  if (!cache.has(name)) cache.set(name, JSON.parse(readFileSync(resolve(fixturesDir, name), 'utf8')));
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
