// Rank selection by speckled cross-validation (docs/cross-validation.md): on data of known rank the
// rule must find it; the held-out error of the true rank cannot fall below the noise level; the same
// seed must give the same numbers (sync and async alike); bad options are refused before any fit.
import { describe, expect, it } from 'vitest';

import { AbortError, crossValidateRank, crossValidateRankSync, setBlasThreads, toCsr, type Matrix, type Tensor } from '../lib/index.js';
import { thrown } from './helpers/thrown.js';
import { uniform } from './helpers/uniform.js';

setBlasThreads(1);

/** A standard normal draw (Box–Muller) from a uniform generator. */
const normal = (rand: () => number) => Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand());

/**
 * W H + noise, clipped at 0: W (n×r) and H (r×m) with U(0, 1) entries, so an entry of WH has mean
 * r/4 = 1 at r = 4, and Gaussian noise of sd `noise`. At noise 0.1 (10 % of a typical entry) the
 * r-th component is far above the noise (its singular value is ~√(nm)/4 against the noise's
 * ~0.1·(√n + √m)), so rank 4 is identifiable, yet the noise is large enough that ranks above 4 fit it
 * and lose on held-out entries.
 */
function lowRank(seed: number, n = 100, m = 60, r = 4, noise = 0.1): Matrix {
  const rand = uniform(seed);
  const W = Float64Array.from({ length: n * r }, () => rand());
  const H = Float64Array.from({ length: r * m }, () => rand());
  const data = new Float64Array(n * m);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < m; j++) {
      let x = 0;
      for (let c = 0; c < r; c++) x += W[i * r + c]! * H[c * m + j]!;
      data[i * m + j] = Math.max(0, x + noise * normal(rand));
    }
  }
  return { rows: n, cols: m, data };
}

const fast = { maxIterations: 100 };

describe('crossValidateRank on data of known rank', () => {
  it('chooses the true rank 4 in at least 9 of 10 seeds (one-standard-error rule), the held-out error at rank 4 near the noise sd 0.1', async () => {
    let hits = 0;
    for (let s = 1; s <= 10; s++) {
      const r = await crossValidateRank(lowRank(s), 'nmf', { ranks: [2, 3, 4, 5, 6], folds: 3, seeds: [s], fitOptions: fast });
      if (r.chosenRank === 4) hits++;
      const at = (k: number) => r.curve.find((c) => c.rank === k)!;
      // A held-out entry carries its own noise, which no model can predict: the error is at least about
      // the noise sd 0.1 (sampling of 300 entries: ±5 %), and a well-fitted rank 4 adds little to it.
      expect(at(4).mean).toBeGreaterThan(0.09);
      expect(at(4).mean).toBeLessThan(0.12);
      // Missing a component costs more than the noise: rank 3 is at least 10 % worse.
      expect(at(3).mean).toBeGreaterThan(1.1 * at(4).mean);
      // More rank always fits the training entries better (overfitting shows as train < test).
      expect(at(6).trainMean).toBeLessThan(at(4).trainMean);
      expect(at(4).trainMean).toBeLessThan(at(2).trainMean);
      expect(at(4).trainMean).toBeLessThan(at(4).mean);
    }
    expect(hits).toBeGreaterThanOrEqual(9);
  });

  it("the curve: one entry per rank in increasing order, seeds × folds errors each, mean and sd of them; 'min' picks the smallest mean", async () => {
    const A = lowRank(3);
    const r = await crossValidateRank(A, 'nmf', { ranks: [5, 3, 4], folds: 4, holdout: 0.1, seeds: 2, rule: 'min', fitOptions: fast });
    expect(r.curve.map((c) => c.rank)).toEqual([3, 4, 5]);
    expect(r.settings).toEqual({ ranks: [3, 4, 5], folds: 4, holdout: 0.1, seeds: [0, 1], observed: 6000, heldOut: 600 });
    for (const c of r.curve) {
      expect(c.errors.length).toBe(8);
      const mean = c.errors.reduce((a, b) => a + b, 0) / 8;
      expect(c.mean).toBeCloseTo(mean, 14);
      expect(c.sd).toBeCloseTo(Math.sqrt(c.errors.reduce((a, e) => a + (e - mean) ** 2, 0) / 7), 14);
    }
    const best = r.curve.reduce((a, b) => (b.mean < a.mean ? b : a));
    expect(r.rule).toBe('min');
    expect(r.chosenRank).toBe(best.rank);
    expect(r.bestRank).toBe(best.rank);
  });

  it('the one-standard-error rule picks the smallest rank within sd/√n of the best mean', async () => {
    const r = await crossValidateRank(lowRank(10), 'nmf', { ranks: [2, 3, 4, 5, 6], folds: 3, seeds: [10], fitOptions: fast });
    const best = r.curve.find((c) => c.rank === r.bestRank)!;
    const bound = best.mean + best.sd / Math.sqrt(best.errors.length);
    expect(r.rule).toBe('oneStandardError');
    expect(r.chosenRank).toBe(r.curve.find((c) => c.mean <= bound)!.rank);
    expect(r.chosenRank).toBeLessThanOrEqual(r.bestRank);
  });

  it('predicts the held-out entries of noise-free rank-2 data almost exactly at rank 2 (they were masked, not seen)', async () => {
    const A = lowRank(6, 40, 30, 2, 0);
    const r = await crossValidateRank(A, 'nmf', { ranks: [1, 2], folds: 4, holdout: 0.1, fitOptions: { maxIterations: 500 } });
    // Entries of A are about r/4 = 0.5: rank 1 misses a whole component, rank 2 recovers the entries it
    // never saw to within 0.2 % of that (measured 1.1e-4; HALS converges to the exact factorization on the rest).
    expect(r.curve[0]!.mean).toBeGreaterThan(0.05);
    expect(r.curve[1]!.mean).toBeLessThan(0.001);
    expect(r.curve[1]!.trainMean).toBeLessThan(0.001);
  });

  it('is reproducible: the same seeds give the same errors, sync and async alike; other seeds other test sets', async () => {
    const A = lowRank(5, 40, 30);
    const options = { ranks: [2, 4], folds: 2, seeds: [7], fitOptions: { maxIterations: 30 } };
    const a = await crossValidateRank(A, 'nmf', options);
    const b = await crossValidateRank(A, 'nmf', options);
    const c = crossValidateRankSync(A, 'nmf', options);
    const d = await crossValidateRank(A, 'nmf', { ...options, seeds: [8] });
    for (let k = 0; k < 2; k++) {
      expect(b.curve[k]!.errors).toEqual(a.curve[k]!.errors);
      expect(c.curve[k]!.errors).toEqual(a.curve[k]!.errors);
      expect(c.curve[k]!.trainErrors).toEqual(a.curve[k]!.trainErrors);
      expect(d.curve[k]!.errors).not.toEqual(a.curve[k]!.errors);
    }
  });

  it("leaves the user's missing entries out of training and testing (missing 'nan', a mask)", async () => {
    const A = lowRank(2, 40, 30);
    const rand = uniform(99);
    const withNaN = { ...A, data: A.data.map((x) => (rand() < 0.1 ? NaN : x)) };
    const nans = withNaN.data.filter(Number.isNaN).length;
    const r = await crossValidateRank(withNaN, 'nmf', { ranks: [3, 4], folds: 2, fitOptions: { missing: 'nan', maxIterations: 30 } });
    expect(r.settings.observed).toBe(1200 - nans);
    expect(r.settings.heldOut).toBe(Math.round(0.05 * (1200 - nans)));
    for (const c of r.curve) expect(c.errors.every(Number.isFinite)).toBe(true);
    // The same entries as a mask (their values now anything finite) give the same numbers.
    const mask = Uint8Array.from(withNaN.data, (x) => (Number.isNaN(x) ? 1 : 0));
    const masked = await crossValidateRank({ ...A, data: withNaN.data.map((x) => (Number.isNaN(x) ? 1e6 : x)) }, 'nmf', {
      ranks: [3, 4],
      folds: 2,
      fitOptions: { mask, maxIterations: 30 },
    });
    expect(masked.curve[1]!.errors).toEqual(r.curve[1]!.errors);
  });

  it('takes CSR data without densifying it (absent entries are observed zeros): the same errors up to rounding', async () => {
    const A = lowRank(8, 30, 20);
    const sparse = { ...A, data: A.data.map((x) => (x < 0.6 ? 0 : x)) };
    const options = { ranks: [2, 3], folds: 2, fitOptions: { maxIterations: 20 } };
    const dense = await crossValidateRank(sparse, 'nmf', options);
    const csr = await crossValidateRank(toCsr(sparse), 'nmf', options);
    // The same test sets; the sparse products sum in another order (test/cross-validate-csr.test.ts).
    csr.curve[1]!.errors.forEach((e, k) => expect(Math.abs(e - dense.curve[1]!.errors[k]!)).toBeLessThanOrEqual(1e-10 * dense.curve[1]!.errors[k]!));
    expect(csr.settings.observed).toBe(600);
  });

  it('runs stratifiedNmf on an array of strata (the test entries index the stacked rows)', async () => {
    const A = lowRank(4, 60, 30, 3);
    const strata = [0, 1, 2].map((s) => ({ rows: 20, cols: 30, data: A.data.slice(s * 600, (s + 1) * 600) }));
    // (Its multiplicative updates need a few hundred iterations to fit rank 3: at 60 the curve still falls.)
    const r = await crossValidateRank(strata, 'stratifiedNmf', { ranks: [2, 3, 4], folds: 3, fitOptions: { maxIterations: 300 } });
    expect(r.settings.observed).toBe(1800);
    expect(r.curve[0]!.mean).toBeGreaterThan(1.1 * r.curve[1]!.mean);
    expect(r.chosenRank).toBe(3);
  });

  it('runs ntf on a tensor: CP rank 3 plus noise is found', async () => {
    const rand = uniform(11);
    const dims = [20, 15, 10], r = 3;
    const F = dims.map((d) => Float64Array.from({ length: d * r }, () => rand()));
    const data = new Float64Array(20 * 15 * 10);
    for (let i = 0; i < 20; i++)
      for (let j = 0; j < 15; j++)
        for (let k = 0; k < 10; k++) {
          let x = 0;
          for (let a = 0; a < r; a++) x += F[0]![i * r + a]! * F[1]![j * r + a]! * F[2]![k * r + a]!;
          data[(i * 15 + j) * 10 + k] = Math.max(0, x + 0.03 * normal(rand));
        }
    const T: Tensor = { shape: dims, data };
    const result = await crossValidateRank(T, 'ntf', { ranks: [2, 3, 4], folds: 3, fitOptions: { solver: 'hals', maxIterations: 200 } });
    expect(result.chosenRank).toBe(3);
  });
});

describe('crossValidateRank refuses bad arguments before any fit', () => {
  const A = lowRank(1, 20, 10);
  const cases: [string, unknown, unknown, new (...a: any[]) => Error, RegExp][] = [
    ['no ranks', 'nmf', {}, TypeError, /options\.ranks/],
    ['ranks not an array', 'nmf', { ranks: 3 }, TypeError, /options\.ranks/],
    ['empty ranks', 'nmf', { ranks: [] }, RangeError, /options\.ranks/],
    ['a fractional rank', 'nmf', { ranks: [2, 2.5] }, RangeError, /options\.ranks\[1\]/],
    ['a repeated rank', 'nmf', { ranks: [2, 3, 2] }, RangeError, /distinct ranks in options\.ranks/],
    ['a rank above the data', 'nmf', { ranks: [2, 11] }, RangeError, /\[1, 10\].*options\.ranks/],
    ['holdout 0.5', 'nmf', { ranks: [2], holdout: 0.5 }, RangeError, /options\.holdout/],
    ['holdout 0', 'nmf', { ranks: [2], holdout: 0 }, RangeError, /options\.holdout/],
    ['holdout as text', 'nmf', { ranks: [2], holdout: '0.1' }, TypeError, /options\.holdout/],
    ['holdout too small to hold out an entry', 'nmf', { ranks: [2], holdout: 0.001 }, RangeError, /options\.holdout/],
    ['folds 0', 'nmf', { ranks: [2], folds: 0 }, RangeError, /options\.folds/],
    ['folds · holdout > 1', 'nmf', { ranks: [2], folds: 3, holdout: 0.4 }, RangeError, /options\.folds/],
    ['seeds 0', 'nmf', { ranks: [2], seeds: 0 }, RangeError, /options\.seeds/],
    ['a negative seed', 'nmf', { ranks: [2], seeds: [1, -1] }, RangeError, /options\.seeds\[1\]/],
    ['an unknown rule', 'nmf', { ranks: [2], rule: 'one' }, RangeError, /options\.rule/],
    ['an unknown method', 'pca', { ranks: [2] }, RangeError, /method/],
    ['a misspelt fit option', 'nmf', { ranks: [2], fitOptions: { maxIteration: 5 } }, TypeError, /maxIteration.*did you mean maxIterations/],
    ['a bad fit option value', 'nmf', { ranks: [2], fitOptions: { solver: 'als' } }, RangeError, /options\.solver of options\.fitOptions/],
    ['a fit seed', 'nmf', { ranks: [2], fitOptions: { seed: 3 } }, RangeError, /options\.fitOptions.*options\.seeds/],
    ['fit weights', 'nmf', { ranks: [2], fitOptions: { weights: A } }, RangeError, /weights/],
    ['given factors', 'nmf', { ranks: [2], fitOptions: { init: { W: A } } }, RangeError, /options\.fitOptions\.init/],
    ['an unknown option', 'nmf', { ranks: [2], fold: 3 }, TypeError, /Unknown option 'fold'.*did you mean folds/],
  ];
  for (const [label, method, options, cls, message] of cases) {
    it(`${label}: ${cls.name} ${message}`, async () => {
      let progressed = 0;
      const o = { ...(options as object), onProgress: () => progressed++ };
      const e = await crossValidateRank(A, method as 'nmf', o as never).then(
        () => undefined,
        (err: unknown) => err,
      );
      expect(e).toBeInstanceOf(cls);
      expect((e as Error).message).toMatch(message);
      expect(progressed).toBe(0);
      // The sync form throws the same error at once.
      const { onProgress: _p, ...syncOptions } = o;
      const s = thrown(() => crossValidateRankSync(A, method as 'nmf', syncOptions as never));
      expect(s).toBeInstanceOf(cls);
      expect(s.message).toMatch(message);
    });
  }

  it('refuses negative values at observed entries, naming data', async () => {
    const bad = { ...A, data: A.data.map((x, k) => (k === 7 ? -1 : x)) };
    const e = await crossValidateRank(bad, 'nmf', { ranks: [2] }).catch((err: unknown) => err);
    expect(e).toBeInstanceOf(RangeError);
    expect((e as Error).message).toMatch(/non-negative values in data at observed entries.*-1 at flat index 7/);
  });
});

describe('crossValidateRank: progress and cancellation', () => {
  it('reports {done, total} after each fit, total = ranks × seeds × folds', async () => {
    const seen: [number, number][] = [];
    await crossValidateRank(lowRank(1, 30, 20), 'nmf', {
      ranks: [1, 2, 3],
      folds: 2,
      seeds: 2,
      fitOptions: { maxIterations: 10 },
      onProgress: (p) => seen.push([p.done, p.total]),
    });
    expect(seen).toEqual(Array.from({ length: 12 }, (_, k) => [k + 1, 12]));
  });

  it('rejects with AbortError when the signal aborts (already, or during the fits), and with what onProgress throws', async () => {
    const A = lowRank(1, 100, 60);
    const options = { ranks: [2, 3, 4, 5], folds: 5, seeds: 4, fitOptions: { maxIterations: 100000 } };
    const aborted = AbortSignal.abort();
    await expect(crossValidateRank(A, 'nmf', { ...options, signal: aborted })).rejects.toBeInstanceOf(AbortError);
    const controller = new AbortController();
    const running = crossValidateRank(A, 'nmf', { ...options, signal: controller.signal });
    setTimeout(() => controller.abort(), 50);
    await expect(running).rejects.toBeInstanceOf(AbortError);
    const boom = new Error('stop here');
    await expect(
      crossValidateRank(lowRank(1, 30, 20), 'nmf', {
        ranks: [1, 2],
        folds: 2,
        fitOptions: { maxIterations: 5 },
        onProgress: () => {
          throw boom;
        },
      }),
    ).rejects.toBe(boom);
  });
});
