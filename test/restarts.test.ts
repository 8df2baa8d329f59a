// Multi-start fits (`restarts: n`, lib/factorization/restarts.ts): n runs from the seeds seed … seed+n−1,
// the smallest final loss returned with every run's loss. Each run must be exactly the single run of
// its seed (same native call, same seed), async must equal sync (the seeds decide, not the finishing
// order), and one restart must be the plain call, bit for bit.
import { describe, expect, it } from 'vitest';

import {
  AbortError,
  nmf,
  nmfSync,
  ntf,
  ntfSync,
  setBlasThreads,
  stratifiedNmf,
  stratifiedNmfSync,
  stratifiedNtf,
  stratifiedNtfSync,
  type Matrix,
  type NmfProgress,
  type Tensor,
} from '../lib/index.js';
import { readNpy } from './helpers/snmf-corpus.js';
import { dataFile } from './helpers/shared.js';
import { thrown } from './helpers/thrown.js';
import { uniform } from './helpers/uniform.js';

setBlasThreads(1);

// The first 40 tissue samples × 60 genes (log2 expression, real data), and its two halves as strata.
const tissue = readNpy(dataFile('tissue/tissue_expr.npy'));
const A: Matrix = (() => {
  const n = 40, m = 60;
  const data = new Float64Array(n * m);
  for (let i = 0; i < n; i++) data.set(tissue.data.subarray(i * tissue.cols, i * tissue.cols + m), i * m);
  return { rows: n, cols: m, data };
})();
const strata: Matrix[] = [0, 1].map((s) => ({ rows: 20, cols: 60, data: A.data.slice(s * 1200, (s + 1) * 1200) }));
const T: Tensor = (() => {
  const rand = uniform(5);
  return { shape: [8, 7, 6], data: Float64Array.from({ length: 336 }, () => rand()) };
})();
const tensors: Tensor[] = [0, 1].map((s) => ({ shape: [4, 7, 6], data: T.data.slice(s * 168, (s + 1) * 168) }));

const cases = [
  {
    name: 'nmf',
    sync: (o: object) => nmfSync(A, 4, { maxIterations: 30, ...o }),
    async: (o: object) => nmf(A, 4, { maxIterations: 30, ...o }),
    factors: (r: any) => [r.W.data, r.H.data],
  },
  {
    name: 'stratifiedNmf',
    sync: (o: object) => stratifiedNmfSync(strata, 3, { maxIterations: 30, ...o }),
    async: (o: object) => stratifiedNmf(strata, 3, { maxIterations: 30, ...o }),
    factors: (r: any) => [r.V.data, r.H.data, ...r.W.map((w: Matrix) => w.data)],
  },
  {
    name: 'ntf',
    sync: (o: object) => ntfSync(T, 3, { maxIterations: 30, ...o }),
    async: (o: object) => ntf(T, 3, { maxIterations: 30, ...o }),
    factors: (r: any) => r.factors.map((f: Matrix) => f.data),
  },
  {
    name: 'stratifiedNtf',
    sync: (o: object) => stratifiedNtfSync(tensors, 2, { strataRank: 1, maxIterations: 30, ...o }),
    async: (o: object) => stratifiedNtf(tensors, 2, { strataRank: 1, maxIterations: 30, ...o }),
    factors: (r: any) => [...r.v, ...r.w, ...r.h],
  },
];

describe.each(cases)('restarts: $name', ({ sync, async, factors }) => {
  it('one restart is the plain call, bit for bit, without a restarts summary', () => {
    const plain = sync({ seed: 3 });
    const one = sync({ seed: 3, restarts: 1 });
    expect(one.loss).toBe(plain.loss);
    expect(factors(one)).toEqual(factors(plain));
    expect('restarts' in one).toBe(false);
    expect(one.settings.restarts).toBe(1);
  });

  it('returns the run of smallest loss among seeds seed … seed+n−1, each equal to its single run', () => {
    const best = sync({ seed: 10, restarts: 4 });
    const singles = [10, 11, 12, 13].map((seed) => sync({ seed }));
    expect(best.restarts!.seeds).toEqual([10, 11, 12, 13]);
    expect([...best.restarts!.losses]).toEqual(singles.map((r) => r.loss));
    const argmin = singles.reduce((b, r, i) => (r.loss < singles[b]!.loss ? i : b), 0);
    expect(best.restarts!.best).toBe(argmin);
    expect(best.loss).toBe(Math.min(...singles.map((r) => r.loss)));
    expect(factors(best)).toEqual(factors(singles[argmin]!));
    // The settings are the call's (base seed and restarts), so passing them back repeats the result.
    expect(best.settings.seed).toBe(10);
    expect(best.settings.restarts).toBe(4);
    // Different seeds give different fits here (else the test would not test the choice).
    expect(new Set(singles.map((r) => r.loss)).size).toBe(4);
  });

  it('async runs side by side and returns what sync returns; progress names the restart', async () => {
    const seen = new Set<number>();
    const r = await async({ seed: 10, restarts: 3, onProgress: (p: NmfProgress) => seen.add(p.restart!), progressIntervalMs: 0 });
    const s = sync({ seed: 10, restarts: 3 });
    expect([...r.restarts!.losses]).toEqual([...s.restarts!.losses]);
    expect(r.restarts!.best).toBe(s.restarts!.best);
    expect(factors(r)).toEqual(factors(s));
    expect([...seen].sort()).toEqual([0, 1, 2]);
  });
});

describe('restarts: bad input and cancellation', () => {
  it('refuses restarts out of range or not an integer, naming the option', () => {
    for (const bad of [0, 1.5, 1025, -1]) {
      const e = thrown(() => nmfSync(A, 2, { restarts: bad }));
      expect(e).toBeInstanceOf(RangeError);
      expect(e.message).toMatch(/options\.restarts/);
    }
    const e = thrown(() => nmfSync(A, 2, { restarts: '3' as unknown as number }));
    expect(e).toBeInstanceOf(TypeError);
    expect(e.message).toMatch(/options\.restarts/);
  });

  it('refuses restarts > 1 with given factors (every run would be the same)', async () => {
    const W = { rows: 40, cols: 2, data: new Float64Array(80).fill(1) };
    const e = thrown(() => nmfSync(A, 2, { restarts: 2, init: { W } }));
    expect(e).toBeInstanceOf(RangeError);
    expect(e.message).toMatch(/options\.restarts 1 with given factors/);
    await expect(nmf(A, 2, { restarts: 2, init: { W } })).rejects.toThrow(RangeError);
  });

  it('refuses a seed range past the exact integers', () => {
    const e = thrown(() => nmfSync(A, 2, { seed: Number.MAX_SAFE_INTEGER, restarts: 2 }));
    expect(e).toBeInstanceOf(RangeError);
    expect(e.message).toMatch(/options\.seed \+ options\.restarts/);
  });

  it('an abort stops every run; an error in one run rejects with that error and stops the others', async () => {
    const controller = new AbortController();
    const aborted = nmf(A, 4, {
      restarts: 3,
      maxIterations: 1e6,
      signal: controller.signal,
      progressIntervalMs: 0,
      onProgress: (p) => p.iteration > 50 && controller.abort(),
    });
    await expect(aborted).rejects.toBeInstanceOf(AbortError);

    const failure = new Error('stop restart 1');
    const failing = nmf(A, 4, {
      restarts: 3,
      maxIterations: 1e6,
      progressIntervalMs: 0,
      onProgress: (p) => {
        if (p.restart === 1 && p.iteration > 20) throw failure;
      },
    });
    await expect(failing).rejects.toBe(failure);
    // The runtime is free again: a plain run completes.
    expect((await nmf(A, 2, { maxIterations: 5 })).iterations).toBe(5);
  });
});

describe('restarts on the command line', () => {
  it('nmf --restarts 3 writes the best run (W.npy as nmfSync with restarts 3) and every run\'s loss', async () => {
    const { runMain, tempDir } = await import('./helpers/cli-run.js');
    const { readMatrix, readNpy: readNpyFile } = await import('../lib/io/index.js');
    const { join } = await import('node:path');
    const { readFileSync } = await import('node:fs');
    const wine = dataFile('sklearn_small/wine_X.npy'); // 178 × 13
    const out = join(tempDir('cli-restarts'), 'run');
    const r = await runMain(['nmf', wine, '--rank', '3', '--restarts', '3', '--seed', '5', '--max-iterations', '40', '--out', out]);
    expect(r.code, r.stderr).toBe(0);
    const api = nmfSync(readMatrix(wine) as Matrix, 3, { restarts: 3, seed: 5, maxIterations: 40 });
    expect(readNpyFile(join(out, 'W.npy')).data).toEqual(api.W.data);
    expect(readNpyFile(join(out, 'restarts.losses.npy')).data).toEqual(api.restarts!.losses);
    const json = JSON.parse(readFileSync(join(out, 'result.json'), 'utf8'));
    expect(json.values.restarts).toEqual({ seeds: [5, 6, 7], best: api.restarts!.best });
  });
});
