// pca(X, k): centred PCA through the thin SVD, checked on a case computed by hand and by its invariants.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

import { describe, expect, it } from 'vitest';

import { readNpy } from '../lib/io/index.js';
import type { Matrix } from '../lib/matrix.js';
import { svd } from '../lib/ortho.js';
import { pca } from '../lib/pca.js';
import { runMain, tempDir } from './helpers/cli-run.js';
import { thrown } from './helpers/thrown.js';

/** A reproducible matrix (linear congruential draws in [-1, 1), columns of different scales). */
function generated(rows: number, cols: number, seed = 7): Matrix {
  let s = seed;
  const data = new Float64Array(rows * cols);
  for (let i = 0; i < data.length; i++) {
    s = (s * 1103515245 + 12345) % 2 ** 31;
    data[i] = ((s / 2 ** 31) * 2 - 1) * (1 + (i % cols)) + (i % cols);
  }
  return { rows, cols, data };
}

const maxAbs = (a: ArrayLike<number>, b: ArrayLike<number>): number => {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
};

describe('pca on a case computed by hand', () => {
  // Rows ±5·v1 and ±2.5·v2 around the mean (10, −7), with v1 = (0.6, 0.8), v2 = (0.8, −0.6):
  // the centred XᵀX = 2·25·v1v1ᵀ + 2·6.25·v2v2ᵀ, so s = (√50, √12.5), explained 50/62.5 = 0.8 and 0.2.
  const X: Matrix = { rows: 4, cols: 2, data: Float64Array.from([13, -3, 7, -11, 12, -8.5, 8, -5.5]) };
  const r = pca(X, 2);

  it('mean, singular values and explained variance', () => {
    expect(Array.from(r.mean)).toEqual([10, -7]);
    expect(maxAbs(r.singularValues, [Math.sqrt(50), Math.sqrt(12.5)])).toBeLessThan(1e-13);
    expect(maxAbs(r.explainedVarianceRatio, [0.8, 0.2])).toBeLessThan(1e-14);
  });

  it('loadings v1, v2 with the largest entry of each positive; scores ±5 and ±2.5', () => {
    // Column 1 = v1 = (0.6, 0.8); column 2 = v2 = (0.8, −0.6) (0.8 is its largest |entry|, kept positive).
    expect(maxAbs(r.loadings.data, [0.6, 0.8, 0.8, -0.6])).toBeLessThan(1e-14);
    expect([r.loadings.rows, r.loadings.cols, r.scores.rows, r.scores.cols]).toEqual([2, 2, 4, 2]);
    expect(maxAbs(r.scores.data, [5, 0, -5, 0, 0, 2.5, 0, -2.5])).toBeLessThan(1e-13);
  });

  it('k = 1 keeps the first component only', () => {
    const one = pca(X, 1);
    expect(maxAbs(one.loadings.data, [0.6, 0.8])).toBeLessThan(1e-14);
    expect(maxAbs(one.explainedVarianceRatio, [0.8])).toBeLessThan(1e-14);
  });
});

describe('pca invariants on a generated 40 × 7 matrix', () => {
  const X = generated(40, 7);
  const k = 4;
  const r = pca(X, k);
  const { rows: n, cols: p } = X;
  const centred = new Float64Array(n * p);
  for (let i = 0; i < n; i++) for (let j = 0; j < p; j++) centred[i * p + j] = X.data[i * p + j]! - r.mean[j]!;

  it('the mean is the column mean', () => {
    const mean = Array.from({ length: p }, (_, j) => Array.from({ length: n }, (_, i) => X.data[i * p + j]!).reduce((a, b) => a + b, 0) / n);
    expect(maxAbs(r.mean, mean)).toBeLessThan(1e-14);
  });

  it('loadings are orthonormal (LᵀL = I) and each column has a positive largest entry', () => {
    for (let a = 0; a < k; a++) {
      for (let b = 0; b < k; b++) {
        let dot = 0;
        for (let j = 0; j < p; j++) dot += r.loadings.data[j * k + a]! * r.loadings.data[j * k + b]!;
        expect(Math.abs(dot - (a === b ? 1 : 0))).toBeLessThan(1e-13);
      }
      const col = Array.from({ length: p }, (_, j) => r.loadings.data[j * k + a]!);
      const big = col.reduce((m, v) => (Math.abs(v) > Math.abs(m) ? v : m), 0);
      expect(big).toBeGreaterThan(0);
    }
  });

  it('scores = centred X · loadings', () => {
    const product = new Float64Array(n * k);
    for (let i = 0; i < n; i++) for (let c = 0; c < k; c++) for (let j = 0; j < p; j++) product[i * k + c] += centred[i * p + j]! * r.loadings.data[j * k + c]!;
    // Both are O(10): agreement to 1e-12 is rounding only.
    expect(maxAbs(r.scores.data, product)).toBeLessThan(1e-12);
  });

  it('singular values match svd of the centred X; ratios decrease and sum to at most 1', () => {
    const s = svd({ rows: n, cols: p, data: centred }).S;
    expect(maxAbs(r.singularValues, s.subarray(0, k))).toBe(0); // the same native SVD of the same matrix
    const total = Array.from(s).reduce((a, v) => a + v * v, 0);
    expect(maxAbs(r.explainedVarianceRatio, Array.from(s.subarray(0, k), (v) => (v * v) / total))).toBeLessThan(1e-15);
    const sum = r.explainedVarianceRatio.reduce((a, b) => a + b, 0);
    expect(sum).toBeLessThan(1); // 4 of 7 components of a full-rank matrix
    for (let c = 1; c < k; c++) expect(r.explainedVarianceRatio[c]!).toBeLessThanOrEqual(r.explainedVarianceRatio[c - 1]!);
    // All min(n, p) = 7 components explain everything.
    expect(Math.abs(pca(X, 7).explainedVarianceRatio.reduce((a, b) => a + b, 0) - 1)).toBeLessThan(1e-14);
  });

  it('a wide matrix (n < p) has min(n, p) components', () => {
    const W = generated(5, 12);
    const all = pca(W, 5);
    expect([all.loadings.rows, all.loadings.cols]).toEqual([12, 5]);
    // Centring 5 rows leaves rank 4: the fifth singular value is rounding noise.
    expect(all.singularValues[4]!).toBeLessThan(1e-12 * all.singularValues[0]!);
  });

  it('scale: the PCA of the standardized columns; center: false keeps the origin', () => {
    const scaled = pca(X, 3, { scale: true });
    const sd = Array.from({ length: p }, (_, j) => Math.sqrt(Array.from({ length: n }, (_, i) => centred[i * p + j]! ** 2).reduce((a, b) => a + b, 0) / (n - 1)));
    expect(maxAbs(scaled.scale!, sd)).toBeLessThan(1e-13);
    const Z = { rows: n, cols: p, data: centred.map((v, i) => v / sd[i % p]!) };
    expect(maxAbs(scaled.loadings.data, pca(Z, 3).loadings.data)).toBeLessThan(1e-12);
    const raw = pca(X, 2, { center: false });
    expect(Array.from(raw.mean)).toEqual(new Array(p).fill(0));
    expect(maxAbs(raw.singularValues, svd(X).S.subarray(0, 2))).toBe(0);
  });
});

describe('pca validates its arguments', () => {
  const X: Matrix = { rows: 3, cols: 2, data: Float64Array.from([1, 2, 3, 5, 4, 1]) };
  const cases: [() => unknown, ErrorConstructor, string][] = [
    [() => pca(X, 3), RangeError, 'Expected an integer in [1, 2] (min(rows, cols) of X) for k but received 3'],
    [() => pca(X, 0), RangeError, 'Expected an integer in [1, 2] (min(rows, cols) of X) for k but received 0'],
    [() => pca(X, 1.5), RangeError, 'Expected an integer in [1, 2] (min(rows, cols) of X) for k but received 1.5'],
    [() => pca(X, '2' as unknown as number), TypeError, 'Expected an integer in [1, 2] (min(rows, cols) of X) for k but received the string "2"'],
    [() => pca({ rows: 2, cols: 2, data: new Float64Array(3) }, 1), RangeError, 'Expected a Float64Array of length 4 (rows*cols) for X.data but received a Float64Array of length 3'],
    [() => pca(X, 1, { centre: true } as object), TypeError, "Unknown option 'centre' for pca(); valid options are: center, scale (did you mean center?)"],
    [() => pca({ rows: 2, cols: 2, data: Float64Array.from([1, 2, 1, 2]) }, 1), RangeError, 'Expected X with some variance after centring for pca() but received rows that are all equal'],
    [() => pca({ rows: 2, cols: 2, data: Float64Array.from([1, 2, 3, 2]) }, 1, { scale: true }), RangeError, 'Expected columns that are not constant for X with options.scale of pca() but received a constant column 1'],
  ];
  it.each(cases.map((c, i) => [i, ...c] as const))('case %i', (_, fn, E, message) => {
    const err = thrown(fn);
    expect(err).toBeInstanceOf(E);
    expect(err.message).toBe(message);
  });

  it('NaN in X is refused (the message names X)', () => {
    const err = thrown(() => pca({ rows: 2, cols: 1, data: Float64Array.from([1, NaN]) }, 1));
    expect(err).toBeInstanceOf(RangeError);
    expect(err.message).toBe('Expected finite values in X but received NaN at [1, 0]');
  });
});

describe('nsa-flow pca', () => {
  it('writes the API result bit for bit, and CSV copies named after the input columns and rows', async () => {
    const out = join(tempDir('cli-pca'), 'pca');
    // The hand case as a CSV with an id column and a header.
    const csvDir = tempDir('cli-pca-in');
    const csv = join(csvDir, 'x.csv');
    (await import('node:fs')).writeFileSync(csv, 'id,u,v\na,13,-3\nb,7,-11\nc,12,-8.5\nd,8,-5.5\n');
    const r = await runMain(['pca', csv, '--k', '2', '--row-names', 'id', '--out', out, '--csv']);
    expect(r.code, r.stderr).toBe(0);
    const L = readNpy(join(out, 'loadings.npy'));
    const api = pca({ rows: 4, cols: 2, data: Float64Array.from([13, -3, 7, -11, 12, -8.5, 8, -5.5]) }, 2);
    expect(maxAbs(L.data, api.loadings.data)).toBe(0);
    expect(readFileSync(join(out, 'loadings.csv'), 'utf8').split('\n')[0]).toBe(',PC1,PC2');
    expect(readFileSync(join(out, 'loadings.csv'), 'utf8').split('\n').slice(1, 3).map((l) => l.split(',')[0])).toEqual(['u', 'v']);
    expect(readFileSync(join(out, 'scores.csv'), 'utf8').split('\n').slice(1, 5).map((l) => l.split(',')[0])).toEqual(['a', 'b', 'c', 'd']);
    const json = JSON.parse(readFileSync(join(out, 'result.json'), 'utf8'));
    expect(json.settings).toEqual({ k: 2, center: true, scale: false });
    expect(json.arrays.loadings).toEqual({ file: 'loadings.npy', shape: [2, 2], csv: 'loadings.csv' });
    expect(json.diagnostics.explainedVariance).toBeCloseTo(1, 14); // 2 of 2 components
    const missing = await runMain(['pca', csv, '--row-names', 'id']);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toBe('nsa-flow pca: Expected a positive integer for --k of pca but received nothing\n');
  });
});
