import { describe, expect, it } from 'vitest';

import { AbortError, stratifiedNtf, stratifiedNtfLoss, stratifiedNtfSync } from '../lib/index.js';
import { stratifiedNtfFirstIterationStages } from '../lib/factorization/stratified-ntf.js';
import { native } from '../lib/native.js';
import type { Tensor } from '../lib/tensor.js';
import { relativeError } from './helpers/shared.js';
import { optionsOf, sntfCases, stateError, stateOf, strataOf } from './helpers/sntf-fixtures.js';

// Fixture README: multiplicative-update runs match at 1e-10 (measured amplification about 1).
const PARITY = 1e-10;

describe('Stratified-NTF parity with stratified_ntf.json', () => {
  for (const c of sntfCases()) {
    describe(c.name, () => {
      const A = strataOf(c);
      it('matches every first-iteration stage', () => {
        const stages = stratifiedNtfFirstIterationStages(A, optionsOf(c, 1));
        // 2 v sweeps, w, h (+ the TV column normalization).
        expect(stages.length).toBe(c.first_iteration_stages.length);
        stages.forEach((s, i) => expect(stateError(s, c.first_iteration_stages[i]!)).toBeLessThan(PARITY));
      });
      it('matches the snapshots after 1, 5 and 20 iterations, and their losses', () => {
        for (const snap of c.snapshots) {
          const r = stratifiedNtfSync(A, optionsOf(c, snap.iterations));
          expect(r.iterations).toBe(snap.iterations);
          expect(stateError(r, snap)).toBeLessThan(PARITY);
          expect(Math.abs(r.loss - snap.loss) / snap.loss).toBeLessThan(PARITY);
        }
      });
      it('matches loss_array (the loss before each of the 20 iterations)', () => {
        const r = stratifiedNtfSync(A, optionsOf(c, 20));
        // Our trace also holds the loss after iteration 20, so it has 21 entries.
        expect(r.traces.loss.length).toBe(21);
        expect(relativeError(r.traces.loss.subarray(0, 20), Float64Array.from(c.loss_array.data as number[]))).toBeLessThan(PARITY);
        const initial = stratifiedNtfLoss(A, stateOf(c.init), optionsOf(c, 0));
        expect(Math.abs(initial - (c.loss_array.data[0] as number)) / initial).toBeLessThan(PARITY);
      });
    });
  }
});

describe('Stratified-NTF behaviour', () => {
  const c = sntfCases()[0]!;
  const A = strataOf(c);
  const base = { strataRank: [2, 3, 2], rank: 3, seed: 7 };

  it('never increases the loss without TV, and keeps every factor non-negative', () => {
    const r = stratifiedNtfSync(A, { ...base, maxIterations: 200 });
    for (let i = 1; i < r.traces.loss.length; i++) {
      // Multiplicative updates are monotone; allow rounding of the Gram-form loss (1e-12 relative).
      expect(r.traces.loss[i]!).toBeLessThanOrEqual(r.traces.loss[i - 1]! * (1 + 1e-12));
    }
    const all = [...r.v.flat(), ...r.w, ...r.h];
    expect(Math.min(...all.map((m) => Math.min(...m.data)))).toBeGreaterThanOrEqual(0); // products of non-negatives
    expect(r.loss).toBeLessThan(r.traces.loss[0]! / 2); // it actually fits (random start loss is far higher)
  });

  it('accepts order 2 (matrix strata) and order 5, with a non-increasing loss', () => {
    for (const shape of [[6], [2, 3, 2, 2]]) {
      const strata: Tensor[] = [4, 5].map((n, s) => ({
        shape: [n, ...shape],
        data: Float64Array.from({ length: n * shape.reduce((a, b) => a * b, 1) }, (_, i) => ((i * (s + 3)) % 7) / 7),
      }));
      const r = stratifiedNtfSync(strata, { strataRank: 1, rank: 2, maxIterations: 30 });
      expect(r.h.length).toBe(shape.length); // one topic factor per non-sample mode
      for (let i = 1; i < r.traces.loss.length; i++) expect(r.traces.loss[i]!).toBeLessThanOrEqual(r.traces.loss[i - 1]! * (1 + 1e-12));
    }
  });

  it('takes any number of strata (here 40, more than the highest tensor order)', () => {
    const strata: Tensor[] = Array.from({ length: 40 }, (_, s) => ({ shape: [2, 3, 2], data: new Float64Array(12).fill(1 + s) }));
    expect(stratifiedNtfSync(strata, { strataRank: 1, rank: 1, maxIterations: 2 }).w.length).toBe(40); // one w per stratum
  });

  it('the same seed gives the same result bit for bit; settings are plain JSON', () => {
    const a = stratifiedNtfSync(A, { ...base, maxIterations: 10 });
    const b = stratifiedNtfSync(A, { ...base, maxIterations: 10 });
    expect(b.traces.loss).toEqual(a.traces.loss);
    expect(JSON.parse(JSON.stringify(a.settings))).toEqual({
      strataRank: [2, 3, 2], rank: 3, maxIterations: 10, vScaling: 2, tv: null, init: 'random', seed: 7, tolerance: 0, lossEvery: 1, epsilon: 1e-9,
    });
  });

  it('records the loss every lossEvery iterations and after the last one', () => {
    const r = stratifiedNtfSync(A, { ...base, maxIterations: 10, lossEvery: 3 });
    expect(Array.from(r.traces.iteration)).toEqual([0, 3, 6, 9, 10]);
  });

  it('stops on tolerance with stopReason "plateau"', () => {
    const r = stratifiedNtfSync(A, { ...base, maxIterations: 100000, tolerance: 1e-4 });
    expect(r.stopReason).toBe('plateau');
    expect(r.iterations).toBeLessThan(100000);
    const n = r.traces.loss.length;
    expect(Math.abs(r.traces.loss[n - 2]! - r.traces.loss[n - 1]!)).toBeLessThan(1e-4 * r.traces.loss[n - 2]!);
  });

  it('the async form equals the sync form, reports progress, and aborts', async () => {
    const sync = stratifiedNtfSync(A, { ...base, maxIterations: 25 });
    const seen: number[] = [];
    const r = await stratifiedNtf(A, { ...base, maxIterations: 25, progressIntervalMs: 0, onProgress: (p) => seen.push(p.loss) });
    expect(r.traces.loss).toEqual(sync.traces.loss); // same kernel, same single-threaded arithmetic
    expect(seen.length).toBeGreaterThan(0);
    const controller = new AbortController();
    const running = stratifiedNtf(A, { ...base, maxIterations: 1e7, signal: controller.signal });
    setTimeout(() => controller.abort(), 20);
    await expect(running).rejects.toBeInstanceOf(AbortError);
  });
});

describe('Stratified-NTF bad input', () => {
  const good = (n: number, d = [3, 4]): Tensor => ({ shape: [n, ...d], data: new Float64Array(n * d[0]! * d[1]!).fill(1) });
  const opts = { strataRank: 2, rank: 2 };

  it('strata of different trailing shapes', () => {
    expect(() => stratifiedNtfSync([good(2), good(3, [3, 5])], opts)).toThrow(RangeError);
    expect(() => stratifiedNtfSync([good(2), good(3, [3, 5])], opts)).toThrow(
      /Expected trailing shape \[3, 4\] \(that of strata\[0\]\) for strata\[1\] but received \[3, 5\]/,
    );
  });
  it('tensors of order < 2', () => {
    expect(() => stratifiedNtfSync([{ shape: [4], data: new Float64Array(4) }], opts)).toThrow(
      /Expected a tensor of order 2 to 32 for strata\[0\] but received shape \[4\]/,
    );
  });
  it('negative and NaN entries name the stratum and the position', () => {
    const neg = good(2);
    neg.data[1 * 12 + 2 * 4 + 3] = -1;
    expect(() => stratifiedNtfSync([good(2), neg], opts)).toThrow(/Expected finite non-negative values in strata\[1\] but received -1 at \[1, 2, 3\]/);
    const nan = good(2);
    nan.data[5] = NaN;
    expect(() => stratifiedNtfSync([nan], opts)).toThrow(/Expected finite non-negative values in strata\[0\] but received NaN at \[0, 1, 1\]/);
  });
  it('a strataRank list of the wrong length', () => {
    expect(() => stratifiedNtfSync([good(2), good(2)], { strataRank: [1, 2, 3], rank: 2 })).toThrow(
      /Expected one strata rank per stratum \(2\) for options.strataRank of stratifiedNtfSync\(\) but received an array of length 3/,
    );
  });
  it('ranks < 1', () => {
    expect(() => stratifiedNtfSync([good(2)], { strataRank: 0, rank: 2 })).toThrow(RangeError);
    expect(() => stratifiedNtfSync([good(2)], { strataRank: 0, rank: 2 })).toThrow(/Expected a positive integer for options.strataRank of stratifiedNtfSync\(\) but received 0/);
    expect(() => stratifiedNtfSync([good(2)], { strataRank: [1, 0] as never, rank: 2 })).toThrow(/options.strataRank\[1\] of stratifiedNtfSync\(\) but received 0/);
    expect(() => stratifiedNtfSync([good(2)], { strataRank: 1, rank: 0 })).toThrow(/Expected an integer in \[1, 16777216\] for options.rank of stratifiedNtfSync\(\) but received 0/);
  });
  it('tv.reg < 0 or non-finite', () => {
    expect(() => stratifiedNtfSync([good(2)], { ...opts, tv: { reg: -0.5 } })).toThrow(/Expected a finite number ≥ 0 for options.tv of stratifiedNtfSync\(\).reg but received -0.5/);
    expect(() => stratifiedNtfSync([good(2)], { ...opts, tv: { reg: Infinity } })).toThrow(RangeError);
    expect(() => stratifiedNtfSync([good(2)], { ...opts, tv: { reg: NaN } })).toThrow(/but received NaN/);
  });
  it('shape product overflow', () => {
    const huge: Tensor = { shape: [65536, 65536, 2], data: new Float64Array(1) };
    expect(() => stratifiedNtfSync([huge], opts)).toThrow(/Expected a shape with at most 2\^32 elements for strata\[0\] but received \[65536, 65536, 2\]/);
  });
  it('the async form rejects instead of throwing', async () => {
    await expect(stratifiedNtf([good(2)], { strataRank: 1, rank: -1 })).rejects.toThrow(RangeError);
  });
  it('the raw binding throws on garbage instead of crashing', () => {
    const raw = native();
    const o = { maxIterations: 1, vScaling: 1, tv: false, tvReg: 0, epsilon: 1e-9, tolerance: 0, lossEvery: 1, seed: 0, recordStages: false };
    expect(() => raw.stratifiedNtf([new Float64Array(5)], [2], [3], [1], 1, o, undefined)).toThrow(/Expected a Float64Array of length 6 \(samples·Π dims\) for strata\[0\] but received a Float64Array of length 5/);
    expect(() => raw.stratifiedNtf([Float64Array.of(-1, 0)], [2], [1], [1], 1, o, undefined)).toThrow(/Expected finite non-negative values in strata\[0\] but received -1 at index 0/);
    expect(() => raw.stratifiedNtf([new Float64Array(2)], [2], [1], [1, 1], 1, o, undefined)).toThrow(/Expected an array of length 1 for strataRanks but received an array of length 2/);
    expect(() => raw.stratifiedNtf([new Float64Array(2)], [2], [1], [1], 1, { ...o, vScaling: 0 }, undefined)).toThrow(RangeError);
  });
});

describe('Stratified-NTF on order-2 strata with TV', () => {
  it('runs (TV acts on the single topic mode) and keeps a finite, decreasing-overall loss', () => {
    const strata: Tensor[] = [3, 4].map((n, s) => ({ shape: [n, 8], data: Float64Array.from({ length: n * 8 }, (_, i) => 1 + ((i + s) % 5)) }));
    const r = stratifiedNtfSync(strata, { strataRank: 1, rank: 2, maxIterations: 50, tv: { reg: 0.1 } });
    expect(Number.isFinite(r.loss)).toBe(true);
    // TV runs normalize h's columns each iteration, so only the overall trend is asserted.
    expect(r.loss).toBeLessThan(r.traces.loss[0]!);
    expect(r.settings.tv).toEqual({ reg: 0.1 });
  });
});

describe('Stratified-NTF loss bookkeeping', () => {
  // The loss recorded after the last iteration is read off the update's own products (Gram form);
  // stratifiedNtfLoss recomputes it from the returned state through fresh MTTKRPs. They must agree
  // (to rounding) on every internal path: rank above or below the last dimension (cached or
  // recomputed contraction), few or many samples per stratum (per-sample GEMMs or w·A), TV.
  const make = (samples: number[], dims: number[]): Tensor[] =>
    samples.map((n, s) => ({
      shape: [n, ...dims],
      data: Float64Array.from({ length: n * dims.reduce((a, b) => a * b, 1) }, (_, i) => 0.1 + ((i * 31 + s * 7) % 13) / 13),
    }));
  const configs: [string, Tensor[], number, { reg: number } | undefined][] = [
    ['rank > last dimension, few samples', make([2, 3], [5, 2]), 3, undefined],
    ['rank > last dimension, many samples, order 4', make([9, 7], [3, 2, 2]), 4, undefined],
    ['rank ≤ last dimension, TV', make([2, 8], [4, 6]), 3, { reg: 0.3 }],
    ['rank > last dimension, TV, order 4', make([3, 5], [4, 3, 2]), 3, { reg: 0.2 }],
  ];
  for (const [name, strata, rank, tv] of configs) {
    it(name, () => {
      const r = stratifiedNtfSync(strata, { strataRank: 2, rank, maxIterations: 15, tv });
      const recomputed = stratifiedNtfLoss(strata, r, { strataRank: 2, rank, tv });
      expect(Math.abs(r.loss - recomputed) / recomputed).toBeLessThan(1e-10); // two routes to one number
    });
  }
});
