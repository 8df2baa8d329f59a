// The penalty options on the command line (--l1W 0.1, also spelled --l1-w) and in batch grids: the same
// solve as the API call, and bad values refused naming the flag or the job.
import { join } from 'node:path';

import { describe, expect, it } from 'vitest';

import { expandJobs, prepareJobs } from '../lib/batch/jobs.js';
import { UsageError } from '../lib/cli/flags.js';
import { nmfSync } from '../lib/factorization/nmf.js';
import { readMatrix, readNpy } from '../lib/io/index.js';
import type { Matrix } from '../lib/matrix.js';
import { runMain, tempDir } from './helpers/cli-run.js';
import { dataFile } from './helpers/shared.js';
import { thrown } from './helpers/thrown.js';

const wine = dataFile('sklearn_small/wine_X.npy'); // 178 × 13

describe('nsa-flow nmf with penalties', () => {
  const dir = tempDir('cli-penalties');

  it('--l1W 0.1 --l2-h 0.5: W.npy and H.npy equal nmfSync with those options, bit for bit', async () => {
    const out = join(dir, 'penalized');
    const r = await runMain(['nmf', wine, '--rank', '3', '--l1W', '0.1', '--l2-h', '0.5', '--max-iterations', '30', '--out', out]);
    expect(r.code, r.stderr).toBe(0);
    const api = nmfSync(readMatrix(wine) as Matrix, 3, { l1W: 0.1, l2H: 0.5, maxIterations: 30 });
    expect(readNpy(join(out, 'W.npy')).data).toEqual(api.W.data);
    expect(readNpy(join(out, 'H.npy')).data).toEqual(api.H.data);
    // The penalty changed the solve (the unpenalized W differs).
    expect(nmfSync(readMatrix(wine) as Matrix, 3, { maxIterations: 30 }).W.data).not.toEqual(api.W.data);
  });

  it('a negative weight exits 2 naming the flag', async () => {
    const r = await runMain(['nmf', wine, '--rank', '3', '--l1H', '-1']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--l1-h/);
  });
});

describe('batch grids sweep the penalties', () => {
  it('a grid over l1H expands to one job per value, each validated by the option specs', () => {
    const jobs = expandJobs({ method: 'nmf', inputs: [wine], options: { rank: 3, l1H: [0, 0.01, 0.1], l2W: 0.5 } });
    expect(jobs.map((j) => j.options)).toEqual([
      { rank: 3, l1H: 0, l2W: 0.5 },
      { rank: 3, l1H: 0.01, l2W: 0.5 },
      { rank: 3, l1H: 0.1, l2W: 0.5 },
    ]);
    const prepared = prepareJobs(jobs, '/');
    expect(new Set(prepared.map((j) => j.id)).size).toBe(3);
    const snmf = expandJobs({ method: 'snmf', inputs: [wine], options: { l1V: [0, 1] } });
    expect(snmf).toHaveLength(2);
    const bad = thrown(() => prepareJobs(expandJobs({ method: 'nmf', inputs: [wine], options: { rank: 3, l1H: [-1] } }), '/'));
    expect(bad).toBeInstanceOf(UsageError);
    expect(bad.message).toMatch(/l1H/);
  });
});
