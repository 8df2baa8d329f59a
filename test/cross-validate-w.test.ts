// crossValidateW: NSA-Flow's w chosen by held-out error on the test sets of crossValidateRank. On data
// whose loadings are orthogonal (disjoint supports) every w < 1 fits to the noise level; on data whose
// loadings overlap, orthogonality forces a wrong model and the held-out error rises with w.
import { describe, expect, it } from 'vitest';

import { crossValidateW, crossValidateWSync, setBlasThreads, type Matrix } from '../lib/index.js';
import { thrown } from './helpers/thrown.js';
import { uniform } from './helpers/uniform.js';

setBlasThreads(1);

const normal = (rand: () => number) => Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand());

/**
 * X = T·Vᵀ + N(0, 0.1²), clipped at 0: T (100×3) U(0, 2), V (p×3) with entries 0.5 + U(0, 1) on its
 * support. `overlap`: component c covers variables [20c, 20c + 40) of p = 80 (neighbours share 20);
 * otherwise [20c, 20c + 20) of p = 60 (disjoint: V is orthogonal).
 */
function data(seed: number, overlap: boolean): Matrix {
  const rand = uniform(seed);
  const n = 100, k = 3, width = overlap ? 40 : 20, p = overlap ? 80 : 60;
  const V = new Float64Array(p * k);
  for (let j = 0; j < p; j++) for (let c = 0; c < k; c++) if (j >= 20 * c && j < 20 * c + width) V[j * k + c] = 0.5 + rand();
  const T = Float64Array.from({ length: n * k }, () => 2 * rand());
  const X = new Float64Array(n * p);
  for (let i = 0; i < n; i++)
    for (let j = 0; j < p; j++) {
      let x = 0;
      for (let c = 0; c < k; c++) x += T[i * k + c]! * V[j * k + c]!;
      X[i * p + j] = Math.max(0, x + 0.1 * normal(rand));
    }
  return { rows: n, cols: p, data: X };
}

const fit = { maxIterations: 200 };

describe('crossValidateW', () => {
  it('orthogonal loadings: every w < 1 predicts held-out entries to the noise level (RMSE in [0.1, 0.13] against the noise sd 0.1)', async () => {
    for (const s of [1, 2, 3]) {
      const r = await crossValidateW(data(s, false), 3, { ws: [0, 0.5, 0.95, 1], folds: 3, seeds: [s], fitOptions: fit });
      expect(r.curve.map((c) => c.w)).toEqual([0, 0.5, 0.95, 1]);
      for (const c of r.curve.slice(0, 3)) {
        expect(c.mean).toBeGreaterThan(0.1);
        expect(c.mean).toBeLessThan(0.13);
        expect(c.trainMean).toBeLessThan(c.mean);
      }
    }
  });

  it('overlapping loadings: the held-out error rises with w, and the rule chooses w ≤ 0.5', async () => {
    for (const s of [1, 2, 3, 4]) {
      const r = await crossValidateW(data(s, true), 3, { ws: [0, 0.5, 0.9, 1], folds: 3, seeds: [s], fitOptions: fit });
      const means = r.curve.map((c) => c.mean);
      for (let i = 1; i < means.length; i++) expect(means[i]).toBeGreaterThan(means[i - 1]!);
      // w = 1 ignores the data: far worse than any fit of it.
      expect(means[3]).toBeGreaterThan(1.5 * means[0]!);
      expect(r.chosenW).toBeLessThanOrEqual(0.5);
      expect(r.bestW).toBe(0);
    }
  });

  it("'oneStandardError' takes the largest w within one standard error of the best mean; 'min' the best", async () => {
    const X = data(3, true);
    const one = await crossValidateW(X, 3, { ws: [0, 0.25, 0.5, 0.75], folds: 3, seeds: [3], fitOptions: fit });
    const min = await crossValidateW(X, 3, { ws: [0, 0.25, 0.5, 0.75], folds: 3, seeds: [3], rule: 'min', fitOptions: fit });
    const best = one.curve.find((c) => c.w === one.bestW)!;
    const bound = best.mean + best.sd / Math.sqrt(best.errors.length);
    expect(one.chosenW).toBe(Math.max(...one.curve.filter((c) => c.mean <= bound).map((c) => c.w)));
    expect(min.chosenW).toBe(one.bestW);
    expect(min.curve[2]!.errors).toEqual(one.curve[2]!.errors);
  });

  it('is reproducible: the same seeds give the same errors, sync and async', async () => {
    const X = data(5, true);
    const options = { ws: [0.25, 0.75], folds: 2, seeds: [4], fitOptions: { maxIterations: 50 } };
    const a = await crossValidateW(X, 3, options);
    const b = crossValidateWSync(X, 3, options);
    expect(b.curve[0]!.errors).toEqual(a.curve[0]!.errors);
    expect(b.curve[1]!.trainErrors).toEqual(a.curve[1]!.trainErrors);
    expect(b.settings).toEqual({ k: 3, ws: [0.25, 0.75], folds: 2, holdout: 0.05, seeds: [4], observed: 8000, heldOut: 400 });
  });

  const X = data(1, false);
  const cases: [string, unknown, unknown, new (...a: any[]) => Error, RegExp][] = [
    ['no ws', 3, {}, TypeError, /options\.ws/],
    ['a w above 1', 3, { ws: [0.5, 1.5] }, RangeError, /options\.ws\[1\]/],
    ['a repeated w', 3, { ws: [0.5, 0.5] }, RangeError, /distinct values in options\.ws/],
    ['k above the columns', 61, { ws: [0.5] }, RangeError, /\[1, 60\].* for k/],
    ['holdout 0.5', 3, { ws: [0.5], holdout: 0.5 }, RangeError, /options\.holdout/],
    ['a fit w', 3, { ws: [0.5], fitOptions: { w: 0.2 } }, RangeError, /options\.fitOptions.*options\.ws/],
    ['anchored mode', 3, { ws: [0.5], fitOptions: { mode: 'anchored' } }, RangeError, /options\.fitOptions\.mode/],
    ['a misspelt fit option', 3, { ws: [0.5], fitOptions: { maxIteration: 5 } }, TypeError, /did you mean maxIterations/],
  ];
  for (const [label, k, options, cls, message] of cases) {
    it(`refuses ${label} (${cls.name}) before any fit`, async () => {
      let progressed = 0;
      const e = await crossValidateW(X, k as number, { ...(options as object), onProgress: () => progressed++ } as never).catch((err: unknown) => err);
      expect(e).toBeInstanceOf(cls);
      expect((e as Error).message).toMatch(message);
      expect(progressed).toBe(0);
      const s = thrown(() => crossValidateWSync(X, k as number, options as never));
      expect(s).toBeInstanceOf(cls);
    });
  }
});
