// stratifiedNtf's HALS solver (solver: 'hals', native/kernels/ntf_stratified_hals.hpp): block-coordinate
// descent on the same objective as the multiplicative updates (weighted with missing entries). Each block v(s)ₜ, w(s), hₜ is minimized
// coordinate by coordinate exactly over [0, ∞), and each iteration starts by rescaling every rank-one
// term by powers of two (exact), so the loss never increases; it reaches the MU solver's 200-iteration
// loss in a fraction of the iterations, stops at a KKT point by the shared certificate, and its sweeps
// on the thread team give the 1-thread result.
import { describe, expect, it } from 'vitest';

import {
  readLabels,
  readNpy,
  setBlasThreads,
  stratifiedNtf,
  stratifiedNtfLoss,
  stratifiedNtfSync,
  type StratifiedNtfOptions,
  type StratifiedNtfResult,
  type Tensor,
} from '../lib/index.js';
import { stratifiedNtfFirstIterationStages } from '../lib/factorization/stratified-ntf.js';
import { native } from '../lib/native.js';
import { relativeError } from './helpers/shared.js';
import { largestIncrease } from './helpers/snmf-cases.js';
import { dataFile } from './helpers/shared.js';
import { thrown } from './helpers/thrown.js';
import { uniform } from './helpers/uniform.js';

setBlasThreads(1);

function throws(fn: () => unknown, cls: new (...args: any[]) => Error, message: string): void {
  const error = thrown(fn);
  expect(error).toBeInstanceOf(cls);
  expect(error.message).toBe(message);
}

// Digits 0–9 (8×8 images, pixel values 0–16): the first 40 images of each, one stratum per digit.
const images = readNpy(dataFile('digits/digits_images.npy'));
const labels = readLabels(dataFile('digits/digits_labels.csv'), 'label').map(Number);
const digits: Tensor[] = Array.from({ length: 10 }, (_, digit) => {
  const rows = labels.flatMap((l, i) => (l === digit ? [i] : [])).slice(0, 40);
  const data = new Float64Array(rows.length * 64);
  rows.forEach((row, k) => data.set(images.data.subarray(row * 64, (row + 1) * 64), k * 64));
  return { shape: [rows.length, 8, 8], data };
});

/** Strata of the given shapes drawn from the model (strata rank q, r topics) times 1 ± 1 % noise. */
function planted(samples: number[], dims: number[], q: number, r: number, seed: number): Tensor[] {
  const rand = uniform(seed);
  const u = (n: number) => Float64Array.from({ length: n }, () => rand());
  const F = dims.reduce((a, d) => a * d, 1);
  const h = dims.map((d) => u(r * d));
  return samples.map((n) => {
    const v = dims.map((d) => u(q * d));
    const w = u(r * n);
    const data = new Float64Array(n * F);
    for (let i = 0; i < n; i++)
      for (let f = 0; f < F; f++) {
        const idx: number[] = [];
        let rest = f;
        for (let t = dims.length - 1; t >= 0; t--) idx.unshift(rest % dims[t]!), (rest = Math.floor(rest / dims[t]!));
        let x = 0;
        for (let a = 0; a < q; a++) x += idx.reduce((p, j, t) => p * v[t]![a * dims[t]! + j]!, 1);
        for (let b = 0; b < r; b++) x += w[b * n + i]! * idx.reduce((p, j, t) => p * h[t]![b * dims[t]! + j]!, 1);
        data[i * F + f] = x * (1 + 0.02 * (rand() - 0.5));
      }
    return { shape: [n, ...dims], data };
  });
}

const synthetic = planted([40, 30, 50], [12, 10], 2, 4, 7);

/** The first iteration whose recorded loss is at most `target` (−1: never). */
const reached = (res: StratifiedNtfResult, target: number) => res.traces.iteration[res.traces.loss.findIndex((l) => l <= target)] ?? -1;

/**
 * A weighted HALS solve of the digits (rank 6, options o with a mask and weights): its loss never
 * rises (1e-10 relative), it is the weighted loss of its state (1e-9); the values under the mask are
 * never read (NaN there, marked by missing 'nan' instead, gives the same solve bit for bit); and run
 * on, it stops at a KKT point by the weighted certificate (≤ 1e-7).
 */
function expectWeightedClaims(
  res: StratifiedNtfResult,
  o: StratifiedNtfOptions & { mask: (Uint8Array | null)[]; weights: ({ shape: number[]; data: Float64Array } | null)[] },
): void {
  expect(largestIncrease(res.traces.loss)).toBeLessThan(1e-10);
  const direct = stratifiedNtfLoss(digits, res, { strataRank: 3, rank: 6, mask: o.mask, weights: o.weights });
  expect(Math.abs(direct - res.loss) / res.loss).toBeLessThan(1e-9);
  const hidden = digits.map((t, s) => ({ shape: t.shape, data: Float64Array.from(t.data, (x, k) => (o.mask[s]?.[k] ? NaN : x)) }));
  const nan = stratifiedNtfSync(hidden, 6, { ...o, mask: undefined, missing: 'nan' });
  expect(nan.traces.loss).toEqual(res.traces.loss);
  nan.h.forEach((m, t) => expect(m.data).toEqual(res.h[t]!.data));
  const kkt = stratifiedNtfSync(digits, 6, { ...o, maxIterations: 5000, certificateTolerance: 1e-7 });
  expect(kkt.stopReason).toBe('gradMap');
  expect(kkt.certificate).toBeLessThanOrEqual(1e-7);
}

describe('stratifiedNtf solver: hals', () => {
  it('never increases the loss, on order-2, -3 and -4 strata, and reports the loss of its state', () => {
    const cases: [string, Tensor[], number, number][] = [
      ['digits', digits, 6, 3],
      ['order 3', synthetic, 4, 2],
      ['order 2', planted([30, 20], [15], 1, 3, 8), 3, 1],
      ['order 4', planted([12, 9], [5, 4, 6], 2, 3, 9), 3, 2],
    ];
    for (const [name, strata, rank, strataRank] of cases) {
      const res = stratifiedNtfSync(strata, rank, { strataRank, solver: 'hals', maxIterations: 80, seed: 2 });
      // Exact coordinate steps and exact rescaling: an increase could only be rounding of the loss
      // formula ‖A‖² − 2⟨A, B⟩ + ‖B‖² (relative ~1e-13 here).
      expect(largestIncrease(res.traces.loss), name).toBeLessThan(1e-10);
      expect(res.loss, name).toBeLessThan(res.traces.loss[1]!);
      // The recorded loss (from the updates' products) is the loss of the returned state.
      const direct = stratifiedNtfLoss(strata, res, { strataRank, rank });
      expect(Math.abs(direct - res.loss) / res.loss, name).toBeLessThan(1e-9);
      expect(res.settings.solver).toBe('hals');
    }
  });

  it("reaches the MU solver's 200-iteration loss in at most a fifth of the iterations", () => {
    // The goal is 5× sooner in wall time; an iteration of HALS costs about 1.5× one of MU here
    // (bench/tta/stratified-ntf.ts prints the times), so the iterations must fall by more than 5×:
    // measured 11 (synthetic) and 12 (digits) against 200.
    for (const [name, strata, rank, strataRank] of [
      ['synthetic', synthetic, 4, 2],
      ['digits', digits, 6, 3],
    ] as const) {
      const mu = stratifiedNtfSync(strata, rank, { strataRank, solver: 'mu', maxIterations: 200, seed: 1 });
      const hals = stratifiedNtfSync(strata, rank, { strataRank, solver: 'hals', maxIterations: 200, seed: 1 });
      const at = reached(hals, mu.loss);
      expect(at, name).toBeGreaterThan(0);
      expect(at, name).toBeLessThanOrEqual(40);
      expect(hals.loss, name).toBeLessThan(mu.loss);
    }
  });

  it('stops at a KKT point by the certificate (gradMap), which a further MU step leaves in place', () => {
    const strata = synthetic;
    const res = stratifiedNtfSync(strata, 4, { strataRank: 2, solver: 'hals', maxIterations: 5000, certificateTolerance: 1e-7, seed: 3 });
    expect(res.stopReason).toBe('gradMap');
    expect(res.certificate).toBeLessThanOrEqual(1e-7);
    // At a stationary point the multiplicative updates (a different rule) barely move: 20 MU iterations
    // from there lower the loss by less than 1e-6 relative (from a random start they lower it by ~90 %).
    const mu = stratifiedNtfSync(strata, 4, { strataRank: 2, solver: 'mu', maxIterations: 20, init: res });
    expect((res.loss - mu.loss) / res.loss).toBeLessThan(1e-6);
  });

  it('keeps the best of its restarts, each the run of its own seed', () => {
    const base = { strataRank: 3, solver: 'hals', maxIterations: 30, seed: 5 } as const;
    const best = stratifiedNtfSync(digits, 6, { ...base, restarts: 3 });
    const runs = [5, 6, 7].map((seed) => stratifiedNtfSync(digits, 6, { ...base, seed }));
    expect(best.restarts!.seeds).toEqual([5, 6, 7]);
    expect(Array.from(best.restarts!.losses)).toEqual(runs.map((r) => r.loss));
    const k = best.restarts!.best;
    expect(best.loss).toBe(Math.min(...runs.map((r) => r.loss)));
    best.h.forEach((m, t) => expect(m.data).toEqual(runs[k]!.h[t]!.data));
  });

  it('the async form gives the sync result bit for bit', async () => {
    const o = { strataRank: 2, solver: 'hals', maxIterations: 25, seed: 4 } as const;
    const a = await stratifiedNtf(synthetic, 4, o);
    const b = stratifiedNtfSync(synthetic, 4, o);
    expect(a.traces.loss).toEqual(b.traces.loss);
    a.w.forEach((m, s) => expect(m.data).toEqual(b.w[s]!.data));
  });

  it('a fully observed mask is the unmasked solve bit for bit', () => {
    const o = { strataRank: 3, solver: 'hals', maxIterations: 20, seed: 1 } as const;
    const plain = stratifiedNtfSync(digits, 6, o);
    const masked = stratifiedNtfSync(digits, 6, { ...o, mask: digits.map((t) => new Uint8Array(t.data.length)) });
    expect(masked.traces.loss).toEqual(plain.traces.loss);
    masked.v.forEach((vs, s) => vs.forEach((m, t) => expect(m.data).toEqual(plain.v[s]![t]!.data)));
    masked.w.forEach((m, s) => expect(m.data).toEqual(plain.w[s]!.data));
    masked.h.forEach((m, t) => expect(m.data).toEqual(plain.h[t]!.data));
  });

  it('with missing entries and weights: monotone, the weighted loss of its state, held-out values unread, a KKT point', () => {
    // 10 % of the pixels of every stratum but one missing, and weights 0.5 … 2 on the first stratum.
    const rand = uniform(21);
    const mask = digits.map((t, s) => (s === 3 ? null : Uint8Array.from(t.data, () => (rand() < 0.1 ? 1 : 0))));
    const weights = digits.map((t, s) => (s === 0 ? { shape: t.shape, data: Float64Array.from(t.data, () => 0.5 + 1.5 * rand()) } : null));
    const o = { strataRank: 3, solver: 'hals', maxIterations: 60, seed: 2, mask, weights } as const;
    const res = stratifiedNtfSync(digits, 6, o);
    // Each weighted coordinate step is exact (curvature Σωz², slope with the residuals kept current).
    expectWeightedClaims(res, o);
  });

  it("weightedHals 'surrogate' (every weight ≤ 1): monotone, the weighted loss of its state, held-out values unread, a KKT point", () => {
    // 10 % of the pixels of every stratum but one missing ('auto' takes the surrogate: 9 % missing in
    // all), and on the first stratum weights 0.3 … 1 ('surrogate' given: its majorizer needs ω ≤ 1).
    const rand = uniform(22);
    const mask = digits.map((t, s) => (s === 3 ? null : Uint8Array.from(t.data, () => (rand() < 0.1 ? 1 : 0))));
    const auto = stratifiedNtfSync(digits, 6, { strataRank: 3, solver: 'hals', maxIterations: 2, mask });
    expect(auto.settings.weightedHals).toBe('surrogate');
    const weights = digits.map((t, s) => (s === 0 ? { shape: t.shape, data: Float64Array.from(t.data, () => 0.3 + 0.7 * rand()) } : null));
    const o = { strataRank: 3, solver: 'hals', weightedHals: 'surrogate', maxIterations: 60, seed: 2, mask, weights } as const;
    const res = stratifiedNtfSync(digits, 6, o);
    expect(res.settings.weightedHals).toBe('surrogate');
    // Each block's sweeps lower a majorizer that touches the weighted objective at the block's start;
    // at a fixed point the majorizer's gradient is the objective's, so the weighted certificate goes to 0.
    expectWeightedClaims(res, o);
    // A different update than the exact one (its iterates differ), of the same objective.
    const exact = stratifiedNtfSync(digits, 6, { ...o, weightedHals: 'exact' });
    expect(exact.h[0]!.data).not.toEqual(res.h[0]!.data);
  });

  it("weightedHals 'surrogate': the first v block is the plain block on the data filled with the model (2-way strata, 1e-12)", () => {
    // With one feature mode and one v sweep, the first stage is one block per stratum, v(s)₁, whose
    // majorizer is the plain objective on x̃ = ωa + (1 − ω)·model at the start: the plain solve from
    // the same start on x̃ takes the same stage. A mask, and weights 0.2 … 1 with some missing.
    const strata = planted([30, 40], [24], 2, 3, 31).map((t) => ({ shape: [t.shape[0]!, 24], data: t.data }));
    const rand = uniform(32);
    const init = {
      v: strata.map(() => [{ rows: 2, cols: 24, data: Float64Array.from({ length: 48 }, () => 0.2 + rand()) }]),
      w: strata.map((t) => ({ rows: 3, cols: t.shape[0]!, data: Float64Array.from({ length: 3 * t.shape[0]! }, () => 0.2 + rand()) })),
      h: [{ rows: 3, cols: 24, data: Float64Array.from({ length: 72 }, () => 0.2 + rand()) }],
    };
    const model = (s: number, i: number, f: number) => {
      let x = init.v[s]![0]!.data[f]! + init.v[s]![0]!.data[24 + f]!;
      for (let b = 0; b < 3; b++) x += init.w[s]!.data[b * strata[s]!.shape[0]! + i]! * init.h[0]!.data[b * 24 + f]!;
      return x;
    };
    for (const kind of ['mask', 'weights'] as const) {
      const omega = strata.map((t) => Float64Array.from(t.data, () => (rand() < 0.15 ? 0 : kind === 'mask' ? 1 : rand() < 0.5 ? 1 : 0.2 + 0.8 * rand())));
      const missing = kind === 'mask' ? { mask: omega.map((w) => Uint8Array.from(w, (x) => (x === 0 ? 1 : 0))) } : { weights: omega.map((w, s) => ({ shape: strata[s]!.shape, data: w })) };
      const filled = strata.map((t, s) => ({
        shape: t.shape,
        data: Float64Array.from(t.data, (a, k) => omega[s]![k]! * a + (1 - omega[s]![k]!) * model(s, Math.floor(k / 24), k % 24)),
      }));
      const options = { strataRank: 2, solver: 'hals', vScaling: 1, init } as const;
      const surrogate = stratifiedNtfFirstIterationStages(strata, 3, { ...options, ...missing, weightedHals: 'surrogate' });
      const plain = stratifiedNtfFirstIterationStages(filled, 3, options);
      surrogate[0]!.v.forEach((vs, s) => expect(relativeError(vs[0]!.data, plain[0]!.v[s]![0]!.data)).toBeLessThan(1e-12));
      // The w block that follows refills x̃ with the new v: no longer the plain solve's.
      expect(relativeError(surrogate[1]!.w[0]!.data, plain[1]!.w[0]!.data)).toBeGreaterThan(1e-9);
    }
  });

  it('weightedHals: refused with no entry missing, with MU, and (surrogate) with a weight above 1, in TypeScript and in the addon', () => {
    const mask = synthetic.map((t) => Uint8Array.from(t.data, (_, k) => (k % 11 === 0 ? 1 : 0)));
    throws(
      () => stratifiedNtfSync(synthetic, 4, { strataRank: 2, solver: 'hals', weightedHals: 'exact' }),
      RangeError,
      "Expected options.weightedHals only with solver 'hals' and weights or missing entries for stratifiedNtfSync() but received 'exact' with no entry missing or of weight ≠ 1",
    );
    throws(
      () => stratifiedNtfSync(synthetic, 4, { strataRank: 2, mask, weightedHals: 'surrogate' }),
      RangeError,
      "Expected options.weightedHals only with solver 'hals' and weights or missing entries for stratifiedNtfSync() but received 'surrogate' with solver 'mu'",
    );
    const weights = synthetic.map((t, s) => (s === 1 ? { shape: t.shape, data: Float64Array.from(t.data, (_, k) => (k === 7 ? 1.5 : 1)) } : null));
    throws(
      () => stratifiedNtfSync(synthetic, 4, { strataRank: 2, solver: 'hals', weights, weightedHals: 'surrogate' }),
      RangeError,
      "Expected options.weights[1] ≤ 1 with options.weightedHals 'surrogate' for stratifiedNtfSync() but received 1.5 at flat index 7",
    );
    expect(stratifiedNtfSync(synthetic, 4, { strataRank: 2, solver: 'hals', weights, maxIterations: 1 }).settings.weightedHals).toBe('exact');
    expect(stratifiedNtfSync(synthetic, 4, { strataRank: 2, maxIterations: 1, mask }).settings.weightedHals).toBe('auto');
    // 'auto': the surrogate up to 12 % of all the strata's entries missing (1728 of 14 400), here all in stratum 0.
    const first = (count: number) => synthetic.map((t, s) => (s === 0 ? Uint8Array.from(t.data, (_, k) => (k < count ? 1 : 0)) : null));
    const update = (count: number) => stratifiedNtfSync(synthetic, 4, { strataRank: 2, solver: 'hals', maxIterations: 1, mask: first(count) }).settings.weightedHals;
    expect([update(1728), update(1729)]).toEqual(['surrogate', 'exact']);
    const raw = (extra: object) => () =>
      native().stratifiedNtf([new Float64Array(8).fill(1)], [2], [2, 2], [1], 1, {
        maxIterations: 1, solver: 'hals', vScaling: 1, tv: false, tvReg: 0, epsilon: 1e-9, tolerance: 0, lossEvery: 1, seed: 0, recordStages: false, certificateTolerance: 0,
        ...extra,
      } as never, undefined);
    throws(raw({ weightedHals: 'exact' }), RangeError, "Expected options.weightedHals only with solver 'hals' and weights");
    throws(raw({ weightedHals: 'exact', solver: 'mu', weights: [new Float64Array(8).fill(0.5)] }), RangeError, "Expected options.weightedHals only with solver 'hals' and weights");
    throws(raw({ weightedHals: 'surrogate', weights: [Float64Array.of(1, 1, 2, 1, 1, 1, 1, 1)] }), RangeError, "Expected options.weights[0] ≤ 1 with options.weightedHals 'surrogate' but received 2 at index 2");
    expect(() => raw({ weightedHals: 'surrogate', weights: [Float64Array.of(1, 0, 0.5, 1, 1, 1, 1, 1)] })()).not.toThrow();
  });

  it('refuses an unknown solver and HALS with the TV term, in TypeScript and again in the addon', () => {
    throws(
      () => stratifiedNtfSync(synthetic, 4, { strataRank: 2, solver: 'als' as 'mu' }),
      RangeError,
      `Expected one of 'mu', 'hals' for options.solver of stratifiedNtfSync() but received the string "als" (did you mean 'hals'?)`,
    );
    throws(
      () => stratifiedNtfSync(synthetic, 4, { strataRank: 2, solver: 'hals', tv: { reg: 0.1 } }),
      RangeError,
      "Expected options.solver 'mu' with options.tv of stratifiedNtfSync() (the TV term's split subgradient defines only the multiplicative updates) but received 'hals'",
    );
    const raw = (extra: object) => () =>
      native().stratifiedNtf([new Float64Array(8).fill(1)], [2], [2, 2], [1], 1, {
        maxIterations: 1, solver: 'hals', vScaling: 1, tv: false, tvReg: 0, epsilon: 1e-9, tolerance: 0, lossEvery: 1, seed: 0, recordStages: false, certificateTolerance: 0,
        ...extra,
      } as never, undefined);
    throws(raw({ solver: 'bogus' }), RangeError, `Expected one of 'hals', 'mu' for options.solver but received the string "bogus"`);
    throws(raw({ tv: true, tvReg: 1 }), RangeError, "Expected options.solver 'mu' with options.tv (the TV term defines only the multiplicative updates) but received 'hals'");
  });

  it('with 2 threads (the sweeps on the thread team) gives the 1-thread result', () => {
    // Large enough for the team: the w blocks are 10 × 600 (the sweeps split over column chunks of 64,
    // the same chunks, and so the same inner-sweep counts, whatever the threads). BLAS products may
    // round differently with more threads; the states agree to 1e-10 relative.
    const strata = planted([600, 600], [8, 8], 2, 10, 12);
    const o = { strataRank: 2, solver: 'hals', maxIterations: 15, seed: 1 } as const;
    const one = stratifiedNtfSync(strata, 10, o);
    setBlasThreads(2);
    let two: StratifiedNtfResult;
    try {
      two = stratifiedNtfSync(strata, 10, o);
    } finally {
      setBlasThreads(1);
    }
    const close = (a: Float64Array, b: Float64Array) => {
      let diff = 0, norm = 0;
      a.forEach((x, i) => ((diff = Math.max(diff, Math.abs(x - b[i]!))), (norm = Math.max(norm, Math.abs(x)))));
      expect(diff / norm).toBeLessThan(1e-10);
    };
    close(one.traces.loss, two.traces.loss);
    one.w.forEach((m, s) => close(m.data, two.w[s]!.data));
    one.h.forEach((m, t) => close(m.data, two.h[t]!.data));
  });
});
