import { describe, expect, it } from 'vitest';

import { AbortError, stratifiedNtf, stratifiedNtfLoss, stratifiedNtfSync, type StratifiedNtfState } from '../lib/index.js';
import { stratifiedNtfFirstIterationStages } from '../lib/factorization/stratified-ntf.js';
import { native } from '../lib/native.js';
import type { Tensor } from '../lib/tensor.js';
import { relativeError } from './helpers/shared.js';
import { gradientMapping } from './helpers/snmf-cases.js';
import { optionsOf, sntfCases, stateError, stateOf, strataOf } from './helpers/sntf-fixtures.js';

// Fixture README: multiplicative-update runs match at 1e-10 (measured amplification about 1).
const PARITY = 1e-10;

/** The fixtures' options name the rank; the call takes it as its second argument. */
const solveSync = (A: Tensor[], { rank, ...options }: ReturnType<typeof optionsOf>) => stratifiedNtfSync(A, rank, options);

describe('Stratified-NTF parity with stratified_ntf.json', () => {
  for (const c of sntfCases()) {
    describe(c.name, () => {
      const A = strataOf(c);
      it('matches every first-iteration stage', () => {
        const { rank, ...options } = optionsOf(c, 1);
        const stages = stratifiedNtfFirstIterationStages(A, rank, options);
        // 2 v sweeps, w, h (+ the TV column normalization).
        expect(stages.length).toBe(c.first_iteration_stages.length);
        stages.forEach((s, i) => expect(stateError(s, c.first_iteration_stages[i]!)).toBeLessThan(PARITY));
      });
      it('matches the snapshots after 1, 5 and 20 iterations, and their losses', () => {
        for (const snap of c.snapshots) {
          const r = solveSync(A, optionsOf(c, snap.iterations));
          expect(r.iterations).toBe(snap.iterations);
          expect(stateError(r, snap)).toBeLessThan(PARITY);
          expect(Math.abs(r.loss - snap.loss) / snap.loss).toBeLessThan(PARITY);
        }
      });
      it('matches loss_array (the loss before each of the 20 iterations)', () => {
        const r = solveSync(A, optionsOf(c, 20));
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
  const base = { strataRank: [2, 3, 2], seed: 7 };

  it('never increases the loss without TV, and keeps every factor non-negative', () => {
    const r = stratifiedNtfSync(A, 3, { ...base, maxIterations: 200 });
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
      const r = stratifiedNtfSync(strata, 2, { strataRank: 1, maxIterations: 30 });
      expect(r.h.length).toBe(shape.length); // one topic factor per non-sample mode
      for (let i = 1; i < r.traces.loss.length; i++) expect(r.traces.loss[i]!).toBeLessThanOrEqual(r.traces.loss[i - 1]! * (1 + 1e-12));
    }
  });

  it('takes any number of strata (here 40, more than the highest tensor order)', () => {
    const strata: Tensor[] = Array.from({ length: 40 }, (_, s) => ({ shape: [2, 3, 2], data: new Float64Array(12).fill(1 + s) }));
    expect(stratifiedNtfSync(strata, 1, { strataRank: 1, maxIterations: 2 }).w.length).toBe(40); // one w per stratum
  });

  it('the same seed gives the same result bit for bit; settings are plain JSON', () => {
    const a = stratifiedNtfSync(A, 3, { ...base, maxIterations: 10 });
    const b = stratifiedNtfSync(A, 3, { ...base, maxIterations: 10 });
    expect(b.traces.loss).toEqual(a.traces.loss);
    expect(JSON.parse(JSON.stringify(a.settings))).toEqual({
      strataRank: [2, 3, 2], rank: 3, solver: 'mu', maxIterations: 10, vScaling: 2, tv: null, init: 'random', seed: 7, tolerance: 0, lossEvery: 1, epsilon: 1e-9, certificateTolerance: 0, restarts: 1, weightedHals: 'auto',
    });
  });

  it('records the loss every lossEvery iterations and after the last one', () => {
    const r = stratifiedNtfSync(A, 3, { ...base, maxIterations: 10, lossEvery: 3 });
    expect(Array.from(r.traces.iteration)).toEqual([0, 3, 6, 9, 10]);
  });

  it('stops on tolerance with stopReason "plateau"', () => {
    const r = stratifiedNtfSync(A, 3, { ...base, maxIterations: 100000, tolerance: 1e-4 });
    expect(r.stopReason).toBe('plateau');
    expect(r.iterations).toBeLessThan(100000);
    const n = r.traces.loss.length;
    expect(Math.abs(r.traces.loss[n - 2]! - r.traces.loss[n - 1]!)).toBeLessThan(1e-4 * r.traces.loss[n - 2]!);
  });

  it('the async form equals the sync form, reports progress, and aborts', async () => {
    const sync = stratifiedNtfSync(A, 3, { ...base, maxIterations: 25 });
    const seen: number[] = [];
    const r = await stratifiedNtf(A, 3, { ...base, maxIterations: 25, progressIntervalMs: 0, onProgress: (p) => seen.push(p.loss) });
    expect(r.traces.loss).toEqual(sync.traces.loss); // same kernel, same single-threaded arithmetic
    expect(seen.length).toBeGreaterThan(0);
    const controller = new AbortController();
    const running = stratifiedNtf(A, 3, { ...base, maxIterations: 1e7, signal: controller.signal });
    setTimeout(() => controller.abort(), 20);
    await expect(running).rejects.toBeInstanceOf(AbortError);
  });
});

describe('Stratified-NTF bad input', () => {
  const good = (n: number, d = [3, 4]): Tensor => ({ shape: [n, ...d], data: new Float64Array(n * d[0]! * d[1]!).fill(1) });
  const opts = { strataRank: 2 };

  it('strata of different trailing shapes', () => {
    expect(() => stratifiedNtfSync([good(2), good(3, [3, 5])], 2, opts)).toThrow(RangeError);
    expect(() => stratifiedNtfSync([good(2), good(3, [3, 5])], 2, opts)).toThrow(
      /Expected trailing shape \[3, 4\] \(that of strata\[0\]\) for strata\[1\] but received \[3, 5\]/,
    );
  });
  it('tensors of order < 2', () => {
    expect(() => stratifiedNtfSync([{ shape: [4], data: new Float64Array(4) }], 2, opts)).toThrow(
      /Expected a tensor of order 2 to 32 for strata\[0\] but received shape \[4\]/,
    );
  });
  it('negative and NaN entries name the stratum and the position', () => {
    const neg = good(2);
    neg.data[1 * 12 + 2 * 4 + 3] = -1;
    expect(() => stratifiedNtfSync([good(2), neg], 2, opts)).toThrow(/Expected finite non-negative values in strata\[1\] but received -1 at \[1, 2, 3\]/);
    const nan = good(2);
    nan.data[5] = NaN;
    expect(() => stratifiedNtfSync([nan], 2, opts)).toThrow(/Expected finite non-negative values in strata\[0\] but received NaN at \[0, 1, 1\]/);
  });
  it('a strataRank list of the wrong length', () => {
    expect(() => stratifiedNtfSync([good(2), good(2)], 2, { strataRank: [1, 2, 3] })).toThrow(
      /Expected one strata rank per stratum \(2\) for options.strataRank of stratifiedNtfSync\(\) but received an array of length 3/,
    );
  });
  it('ranks < 1', () => {
    expect(() => stratifiedNtfSync([good(2)], 2, { strataRank: 0 })).toThrow(RangeError);
    expect(() => stratifiedNtfSync([good(2)], 2, { strataRank: 0 })).toThrow(/Expected a positive integer for options.strataRank of stratifiedNtfSync\(\) but received 0/);
    expect(() => stratifiedNtfSync([good(2)], 2, { strataRank: [1, 0] as never })).toThrow(/options.strataRank\[1\] of stratifiedNtfSync\(\) but received 0/);
    expect(() => stratifiedNtfSync([good(2)], 0, { strataRank: 1 })).toThrow(/Expected a positive integer for rank but received 0/);
  });
  it('tv.reg < 0 or non-finite', () => {
    expect(() => stratifiedNtfSync([good(2)], 2, { ...opts, tv: { reg: -0.5 } })).toThrow(/Expected a finite number ≥ 0 for options.tv of stratifiedNtfSync\(\).reg but received -0.5/);
    expect(() => stratifiedNtfSync([good(2)], 2, { ...opts, tv: { reg: Infinity } })).toThrow(RangeError);
    expect(() => stratifiedNtfSync([good(2)], 2, { ...opts, tv: { reg: NaN } })).toThrow(/but received NaN/);
  });
  it('certificateTolerance out of [0, 1], or with TV (whose loss has no certificate)', () => {
    expect(() => stratifiedNtfSync([good(2)], 2, { ...opts, certificateTolerance: 2 })).toThrow(/options.certificateTolerance of stratifiedNtfSync\(\)/);
    expect(() => stratifiedNtfSync([good(2)], 2, { ...opts, tv: { reg: 0.1 }, certificateTolerance: 1e-3 })).toThrow(
      /Expected options.certificateTolerance 0 with options.tv of stratifiedNtfSync\(\) \(the TV loss is not smooth: no certificate is defined\) but received 0.001/,
    );
  });
  it('shape product overflow', () => {
    const huge: Tensor = { shape: [65536, 65536, 2], data: new Float64Array(1) };
    expect(() => stratifiedNtfSync([huge], 2, opts)).toThrow(/Expected a shape with at most 2\^32 elements for strata\[0\] but received \[65536, 65536, 2\]/);
  });
  it('the async form rejects instead of throwing', async () => {
    await expect(stratifiedNtf([good(2)], -1, { strataRank: 1 })).rejects.toThrow(RangeError);
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
    const r = stratifiedNtfSync(strata, 2, { strataRank: 1, maxIterations: 50, tv: { reg: 0.1 } });
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
      const r = stratifiedNtfSync(strata, rank, { strataRank: 2, maxIterations: 15, tv });
      const recomputed = stratifiedNtfLoss(strata, r, { strataRank: 2, rank, tv });
      expect(Math.abs(r.loss - recomputed) / recomputed).toBeLessThan(1e-10); // two routes to one number
    });
  }
});

describe('Stratified-NTF call shape: stratifiedNtf(strata, rank, options); the old form is deprecated', () => {
  const c = sntfCases()[0]!;
  const A = strataOf(c);

  it('the old form (strata, {strataRank, rank, …}) gives the same result and warns once, naming the new form', async () => {
    const warnings: string[] = [];
    const listener = (w: Error) => warnings.push(`${w.name}: ${w.message}`);
    process.on('warning', listener);
    try {
      const now = stratifiedNtfSync(A, 3, { strataRank: 2, maxIterations: 5, seed: 1 });
      const old = stratifiedNtfSync(A, { strataRank: 2, rank: 3, maxIterations: 5, seed: 1 });
      const again = stratifiedNtfSync(A, { strataRank: 2, rank: 3, maxIterations: 5, seed: 1 });
      const oldAsync = await stratifiedNtf(A, { strataRank: 2, rank: 3, maxIterations: 5, seed: 1 });
      await stratifiedNtf(A, { strataRank: 2, rank: 3, maxIterations: 1 });
      expect(old.traces.loss).toEqual(now.traces.loss);
      expect(again.h[0]!.data).toEqual(now.h[0]!.data);
      expect(oldAsync.traces.loss).toEqual(now.traces.loss);
      await new Promise((resolve) => setImmediate(resolve)); // 'warning' events are emitted on the next tick
    } finally {
      process.off('warning', listener);
    }
    // One warning per function (sync and async), not one per call.
    expect(warnings).toEqual([
      'DeprecationWarning: stratifiedNtfSync(strata, {strataRank, rank, …}) is deprecated; call stratifiedNtfSync(strata, rank, {strataRank, …}) like every other method',
      'DeprecationWarning: stratifiedNtf(strata, {strataRank, rank, …}) is deprecated; call stratifiedNtf(strata, rank, {strataRank, …}) like every other method',
    ]);
  });

  it('the new form refuses options.rank (the rank is its argument) and requires strataRank', async () => {
    expect(() => stratifiedNtfSync(A, 3, { strataRank: 2, rank: 3 } as never)).toThrow(
      /Expected no options.rank in stratifiedNtfSync\(\) \(the rank is its second argument, 3\) but received 3/,
    );
    expect(() => stratifiedNtfSync(A, 3, {} as never)).toThrow(/Expected a positive integer or an array for options.strataRank of stratifiedNtfSync\(\) but received undefined/);
    await expect(stratifiedNtf(A, 'three' as never, { strataRank: 2 })).rejects.toThrow(/for rank but received the string "three"/);
  });

  it('settings without rank are the options that repeat the run bit for bit (tv: null is off)', () => {
    const a = stratifiedNtfSync(A, 3, { strataRank: [2, 3, 2], maxIterations: 8, seed: 4 });
    const { rank, ...options } = JSON.parse(JSON.stringify(a.settings));
    const b = stratifiedNtfSync(A, rank, options);
    expect(b.traces.loss).toEqual(a.traces.loss);
    expect(b.w.map((m) => Array.from(m.data))).toEqual(a.w.map((m) => Array.from(m.data)));
    expect(b.certificate).toBe(a.certificate);
  });
});

describe('Stratified-NTF certificate', () => {
  // A tiny problem whose every gradient entry is taken by central differences of stratifiedNtfLoss:
  // f = ½loss²/Σ‖A(s)‖², h = 1e-6 (truncation error O(h²) ≈ 1e-12, rounding ≈ 1e-16/h ≈ 1e-10).
  const strata: Tensor[] = [3, 2].map((n, s) => ({
    shape: [n, 4, 3],
    data: Float64Array.from({ length: n * 12 }, (_, i) => 0.2 + ((i * 17 + s * 5) % 11) / 11),
  }));
  const normA2 = strata.reduce((acc, t) => acc + t.data.reduce((u, x) => u + x * x, 0), 0);
  const rank = 2;
  const options = { strataRank: 1 };

  function finiteDifferenceCertificate(state: StratifiedNtfState): number {
    const f = (st: StratifiedNtfState) => 0.5 * stratifiedNtfLoss(strata, st, { ...options, rank }) ** 2 / normA2;
    const blocks = [...state.v.flat(), ...state.w, ...state.h];
    let worst = 0;
    for (const block of blocks) {
      const grad = block.data.map((x, i) => {
        const step = 1e-6;
        block.data[i] = x + step;
        const up = f(state);
        block.data[i] = x - step;
        const down = f(state);
        block.data[i] = x;
        return (up - down) / (2 * step);
      });
      worst = Math.max(worst, gradientMapping(block.data, grad));
    }
    return worst;
  }

  it('is the gradient mapping of ½loss²/Σ‖A(s)‖² over every v(s)ₜ, w(s), hₜ (checked by finite differences)', () => {
    for (const maxIterations of [0, 40]) {
      const r = stratifiedNtfSync(strata, rank, { ...options, maxIterations, seed: 3 });
      const state = { v: r.v.map((vs) => vs.map((m) => ({ ...m, data: m.data.slice() }))), w: r.w.map((m) => ({ ...m, data: m.data.slice() })), h: r.h.map((m) => ({ ...m, data: m.data.slice() })) };
      const expected = finiteDifferenceCertificate(state);
      expect(r.certificate).not.toBeNull();
      expect(Math.abs(r.certificate! - expected)).toBeLessThan(1e-6 * expected);
    }
  });

  it('falls as the multiplicative updates converge, and is null with TV (a non-smooth loss)', () => {
    const start = stratifiedNtfSync(strata, rank, { ...options, maxIterations: 0, seed: 3 });
    const end = stratifiedNtfSync(strata, rank, { ...options, maxIterations: 2000, seed: 3 });
    expect(end.certificate!).toBeLessThan(0.05 * start.certificate!);
    expect(stratifiedNtfSync(strata, rank, { ...options, maxIterations: 3, tv: { reg: 0.1 } }).certificate).toBeNull();
  });
});
