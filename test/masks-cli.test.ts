// --mask FILE / --weights FILE / --missing on the command line: read, checked by the API's checks, and
// the same solve as the API call with the same mask.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { describe, expect, it } from 'vitest';

import { readMatrix, readNpy, writeNpy } from '../lib/io/index.js';
import { nmfSync } from '../lib/factorization/nmf.js';
import { ntfSync } from '../lib/factorization/ntf.js';
import { nsaFlowFitSync } from '../lib/nsa-flow/fit.js';
import type { Matrix } from '../lib/matrix.js';
import { runMain, tempDir } from './helpers/cli-run.js';
import { dataFile } from './helpers/shared.js';

const wine = dataFile('sklearn_small/wine_X.npy'); // 178 × 13

describe('nsa-flow nmf with missing entries', () => {
  const dir = tempDir('cli-masks');
  const mask = Uint8Array.from({ length: 178 * 13 }, (_, k) => (k % 10 === 3 ? 1 : 0));
  const maskCsv = join(dir, 'mask.csv');
  writeFileSync(maskCsv, Array.from({ length: 178 }, (_, i) => Array.from(mask.subarray(i * 13, (i + 1) * 13)).join(',')).join('\n') + '\n');

  it('--mask FILE: W.npy equals nmfSync with that mask, bit for bit', async () => {
    const out = join(dir, 'masked');
    const r = await runMain(['nmf', wine, '--rank', '3', '--mask', maskCsv, '--max-iterations', '40', '--out', out]);
    expect(r.code, r.stderr).toBe(0);
    const api = nmfSync(readMatrix(wine) as Matrix, 3, { mask, maxIterations: 40 });
    expect(readNpy(join(out, 'W.npy')).data).toEqual(api.W.data);
    // The same file as weights is another problem (its 1s are the only observed entries).
    const w = await runMain(['nmf', wine, '--rank', '3', '--weights', maskCsv, '--max-iterations', '40', '--out', join(dir, 'weighted')]);
    expect(w.code, w.stderr).toBe(0);
    expect(readNpy(join(dir, 'weighted', 'W.npy')).data).not.toEqual(api.W.data);
  });

  it('a bad value exits 2 naming the flag', async () => {
    const r = await runMain(['nmf', wine, '--rank', '3', '--missing', 'nans']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--missing/);
    const absent = await runMain(['nmf', wine, '--rank', '3', '--missing', 'absent']);
    expect(absent.code).toBe(2);
    expect(absent.stderr).toMatch(/CSR data for options.missing 'absent'/);
  });
});

describe('nsa-flow fit with missing entries', () => {
  const dir = tempDir('cli-fit-masks');
  const mask = Uint8Array.from({ length: 178 * 13 }, (_, k) => (k % 10 === 3 ? 1 : 0));
  const maskCsv = join(dir, 'mask.csv');
  writeFileSync(maskCsv, Array.from({ length: 178 }, (_, i) => Array.from(mask.subarray(i * 13, (i + 1) * 13)).join(',')).join('\n') + '\n');

  it('--mask FILE: V.npy equals nsaFlowFitSync with that mask, bit for bit; the hidden values do not matter', async () => {
    const out = join(dir, 'masked');
    const r = await runMain(['fit', wine, '--k', '2', '--w', '0.5', '--mask', maskCsv, '--out', out]);
    expect(r.code, r.stderr).toBe(0);
    const X = readMatrix(wine) as Matrix;
    const api = nsaFlowFitSync(X, 2, { w: 0.5, mask });
    expect(readNpy(join(out, 'V.npy')).data).toEqual(api.V.data);
    // The same fit with the hidden entries replaced: nothing read them.
    const perturbed = { ...X, data: X.data.map((x, k) => (mask[k] ? x * 7 + 3 : x)) };
    expect(nsaFlowFitSync(perturbed, 2, { w: 0.5, mask }).V.data).toEqual(api.V.data);
  });

  it('a mask of the wrong shape exits 2 naming the option', async () => {
    const small = join(dir, 'small.csv');
    writeFileSync(small, '0,1\n1,0\n');
    const r = await runMain(['fit', wine, '--k', '2', '--mask', small]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/mask/);
  });
});

describe('nsa-flow ntf with missing entries', () => {
  const dir = tempDir('cli-ntf-masks');
  // The first 200 digits (of 1797 × 8 × 8), every ninth pixel missing as NaN.
  const digits = readNpy(dataFile('digits/digits_images.npy'));
  const withNaN = { shape: [200, 8, 8], data: digits.data.slice(0, 200 * 64).map((x, k) => (k % 9 === 4 ? NaN : x)) };
  const file = join(dir, 'digits-nan.npy');
  writeNpy(file, withNaN);

  it("--missing nan --weighted-hals: the API's solve with that update, recorded in the settings", async () => {
    for (const update of ['exact', 'surrogate'] as const) {
      const r = await runMain(['ntf', file, '--rank', '4', '--missing', 'nan', '--weighted-hals', update, '--max-iterations', '15', '--json']);
      expect(r.code, r.stderr).toBe(0);
      const json = JSON.parse(r.stdout.trim().split('\n').at(-1)!);
      expect(json.settings.weightedHals).toBe(update);
      const api = ntfSync(withNaN, 4, { missing: 'nan', weightedHals: update, maxIterations: 15 });
      expect(json.diagnostics.normalizedLoss).toBe(api.normalizedLoss);
    }
    const bad = await runMain(['ntf', file, '--rank', '4', '--missing', 'nan', '--weighted-hals', 'em']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--weighted-hals/);
  });
});
