// Plain NTF's inner sweeps (options.innerSweeps, innerTolerance) and its passes on the thread team.
import { describe, expect, it } from 'vitest';

import { ntf, ntfSync, setBlasThreads, type Matrix, type Tensor } from '../lib/index.js';
import { AUTO_SURROGATE_MISSING_SHARE, DEFAULT_NTF_EXACT_WEIGHTED_SWEEPS, DEFAULT_NTF_INNER_SWEEPS } from '../lib/factorization/ntf.js';
import { native } from '../lib/native.js';
import { relativeError } from './helpers/shared.js';
import { expectThrows } from './helpers/thrown.js';

setBlasThreads(1);

/** U(0,1) values from a seeded linear congruential generator. */
function uniform(n: number, seed: number): Float64Array {
  let state = seed;
  return Float64Array.from({ length: n }, () => (state = (state * 1103515245 + 12345) % 2147483648) / 2147483648);
}

/** A rank-r CP tensor of U(0,1) factors plus `noise`·U(0,1) (non-negative). */
function cpTensor(shape: number[], r: number, noise: number, seed: number): Tensor {
  const factors = shape.map((d, m) => uniform(d * r, seed + m));
  const size = shape.reduce((a, b) => a * b, 1);
  const data = uniform(size, seed + 99).map((z) => noise * z);
  const idx = new Array<number>(shape.length).fill(0);
  for (let e = 0; e < size; e++) {
    for (let a = 0; a < r; a++) {
      let p = 1;
      for (let m = 0; m < shape.length; m++) p *= factors[m]![idx[m]! * r + a]!;
      data[e]! += p;
    }
    for (let m = shape.length; m-- > 0; ) {
      if (++idx[m]! < shape[m]!) break;
      idx[m] = 0;
    }
  }
  return { shape, data };
}

/** The MTTKRP of mode m (dₘ × r) and Gₘ = ⊙_{i≠m} FᵢᵀFᵢ (r × r), entry by entry. */
function modeProducts(T: Tensor, F: Float64Array[], r: number, m: number): { M: Float64Array; G: Float64Array } {
  const { shape } = T;
  const M = new Float64Array(shape[m]! * r);
  const idx = new Array<number>(shape.length).fill(0);
  for (let e = 0; e < T.data.length; e++) {
    for (let a = 0; a < r; a++) {
      let p = T.data[e]!;
      for (let k = 0; k < shape.length; k++) if (k !== m) p *= F[k]![idx[k]! * r + a]!;
      M[idx[m]! * r + a]! += p;
    }
    for (let k = shape.length; k-- > 0; ) {
      if (++idx[k]! < shape[k]!) break;
      idx[k] = 0;
    }
  }
  const G = new Float64Array(r * r).fill(1);
  for (let k = 0; k < shape.length; k++) {
    if (k === m) continue;
    for (let a = 0; a < r; a++)
      for (let b = 0; b < r; b++) {
        let s = 0;
        for (let i = 0; i < shape[k]!; i++) s += F[k]![i * r + a]! * F[k]![i * r + b]!;
        G[a * r + b]! *= s;
      }
  }
  return { M, G };
}

/**
 * The updates as ntf ran them before inner sweeps (one update of each factor per iteration), written
 * out here: HALS row k of Fₘᵀ ← max(0, row k + (M_k − Σⱼ G[k,j]·row j)/G[k,k]), k in order; MU
 * Fₘ ← Fₘ ∘ max(M, ε)/max(FₘG, ε).
 */
function referenceIterations(T: Tensor, init: Matrix[], r: number, solver: 'hals' | 'mu', iterations: number): Float64Array[] {
  const F = init.map((f) => Float64Array.from(f.data));
  const eps = 2.220446049250313e-16;
  for (let it = 0; it < iterations; it++)
    for (let m = 0; m < T.shape.length; m++) {
      const d = T.shape[m]!;
      const { M, G } = modeProducts(T, F, r, m);
      const X = F[m]!;
      if (solver === 'mu') {
        const FG = new Float64Array(d * r);
        for (let i = 0; i < d; i++) for (let a = 0; a < r; a++) for (let b = 0; b < r; b++) FG[i * r + a]! += X[i * r + b]! * G[b * r + a]!;
        for (let i = 0; i < d * r; i++) X[i] = X[i]! * (Math.max(M[i]!, eps) / Math.max(FG[i]!, eps));
        continue;
      }
      for (let k = 0; k < r; k++) {
        const gkk = G[k * r + k]!;
        if (!(gkk > 0)) continue;
        const D = new Float64Array(d);
        for (let i = 0; i < d; i++) {
          let s = M[i * r + k]!;
          for (let j = 0; j < r; j++) s -= G[k * r + j]! * X[i * r + j]!;
          D[i] = s;
        }
        for (let i = 0; i < d; i++) X[i * r + k] = Math.max(0, X[i * r + k]! + D[i]! / gkk);
      }
    }
  return F;
}

const small = cpTensor([7, 5, 6], 3, 0.05, 3);
const smallInit = (r: number): Matrix[] => small.shape.map((d, m) => ({ rows: d, cols: r, data: uniform(d * r, 40 + m) }));

describe('ntf inner sweeps', () => {
  it('innerSweeps 1 is the one-update-per-iteration rule (HALS and MU, 1e-12 relative over 6 iterations)', () => {
    for (const solver of ['hals', 'mu'] as const) {
      const init = smallInit(3);
      const expected = referenceIterations(small, init, 3, solver, 6);
      const r = ntfSync(small, 3, { solver, innerSweeps: 1, maxIterations: 6, init: { factors: init } });
      expect(r.settings.innerSweeps).toBe(1);
      // Only rounding differs (this file sums in another order): a few ulps per step.
      r.factors.forEach((f, m) => expect(relativeError(f.data, expected[m]!)).toBeLessThan(1e-12));
    }
  });

  it('every inner step is monotone: the recorded losses never rise (1e-12 relative)', () => {
    const T = cpTensor([12, 9, 10], 4, 0.2, 5);
    for (const options of [
      { solver: 'hals' as const },
      { solver: 'hals' as const, innerSweeps: 30, innerTolerance: 0 },
      { solver: 'hals' as const, innerSweeps: 3, innerTolerance: 0.5 },
      { solver: 'mu' as const, innerSweeps: 8, innerTolerance: 0 },
    ]) {
      const r = ntfSync(T, 5, { ...options, maxIterations: 60, seed: 2 });
      for (let i = 1; i < r.traces.loss.length; i++) expect(r.traces.loss[i]!).toBeLessThanOrEqual(r.traces.loss[i - 1]! * (1 + 1e-12));
      expect(Math.min(...r.factors.map((f) => Math.min(...f.data)))).toBeGreaterThanOrEqual(0);
    }
  });

  it('many HALS sweeps with innerTolerance 0 solve the last mode\'s block exactly (KKT to 1e-10)', () => {
    // One iteration: the last factor is then the non-negative least-squares solution of its block,
    // min ½‖T − model‖² over F_N ≥ 0 with the others fixed: min(F, F·G − M) = 0 entry by entry.
    const init = smallInit(3);
    const r = ntfSync(small, 3, { maxIterations: 1, innerSweeps: 5000, innerTolerance: 0, init: { factors: init } });
    const F = r.factors.map((f) => f.data);
    const last = small.shape.length - 1;
    const { M, G } = modeProducts(small, F, 3, last);
    let worst = 0;
    let scale = 0;
    for (let i = 0; i < small.shape[last]!; i++)
      for (let a = 0; a < 3; a++) {
        let grad = -M[i * 3 + a]!;
        for (let b = 0; b < 3; b++) grad += F[last]![i * 3 + b]! * G[b * 3 + a]!;
        worst = Math.max(worst, Math.abs(Math.min(F[last]![i * 3 + a]!, grad)));
        scale = Math.max(scale, Math.abs(M[i * 3 + a]!));
      }
    expect(worst / scale).toBeLessThan(1e-10);
    // One sweep leaves it far from that: the option is what made the difference.
    const one = ntfSync(small, 3, { maxIterations: 1, innerSweeps: 1, init: { factors: init } });
    expect(relativeError(one.factors[last]!.data, F[last]!)).toBeGreaterThan(1e-4);
  });

  it('innerTolerance is applied: a loose one stops the sweeps before innerSweeps, 0 never does', () => {
    // With innerTolerance 0 a column sweeps until no coordinate moves or innerSweeps is reached; with
    // 0.9 it stops once a sweep's change is at most 0.81 times its first's, long before 50 sweeps.
    const init = smallInit(3);
    const loose = ntfSync(small, 3, { maxIterations: 1, innerSweeps: 50, innerTolerance: 0.9, init: { factors: init } });
    const exact = ntfSync(small, 3, { maxIterations: 1, innerSweeps: 50, innerTolerance: 0, init: { factors: init } });
    expect(relativeError(loose.factors[0]!.data, exact.factors[0]!.data)).toBeGreaterThan(1e-8);
    expect(loose.settings.innerTolerance).toBe(0.9);
  });

  it('the async form equals the sync form with inner sweeps', async () => {
    const sync = ntfSync(small, 3, { innerSweeps: 7, maxIterations: 10, seed: 4 });
    const r = await ntf(small, 3, { innerSweeps: 7, maxIterations: 10, seed: 4 });
    expect(r.traces.loss).toEqual(sync.traces.loss);
    expect(r.settings.innerSweeps).toBe(7);
  });

  it('defaults, and refusals where inner sweeps have no products to reuse', () => {
    expect(ntfSync(small, 2, { maxIterations: 1 }).settings).toMatchObject({ innerSweeps: DEFAULT_NTF_INNER_SWEEPS, innerTolerance: 0.1 });
    expect(ntfSync(small, 2, { maxIterations: 1, solver: 'mu' }).settings.innerSweeps).toBe(1);
    const mask = new Uint8Array(small.data.length);
    mask[4] = 1;
    // HALS with a mask: the surrogate update (one entry of 60 missing), which sweeps as the plain one.
    expect(ntfSync(small, 2, { maxIterations: 1, mask }).settings).toMatchObject({ innerSweeps: DEFAULT_NTF_INNER_SWEEPS, weightedHals: 'surrogate' });
    expect(ntfSync(small, 2, { maxIterations: 1, mask, innerSweeps: 3 }).settings.innerSweeps).toBe(3);
    expect(ntfSync(small, 2, { maxIterations: 1, mask, solver: 'mu' }).settings).toMatchObject({ innerSweeps: 1, weightedHals: 'auto' });
    expectThrows(() => ntfSync(small, 2, { mask, solver: 'mu', innerSweeps: 3 }), RangeError, /^Expected options\.innerSweeps 1 for solver 'mu' with missing entries or weights for ntfSync\(\) but received 3/);
    // Weights above 1: the exact update, with its own default sweeps.
    const weights = { shape: small.shape, data: new Float64Array(small.data.length).fill(2) };
    expect(ntfSync(small, 2, { maxIterations: 1, weights }).settings).toMatchObject({ innerSweeps: DEFAULT_NTF_EXACT_WEIGHTED_SWEEPS, weightedHals: 'exact' });
    expectThrows(() => ntfSync(small, 2, { weights, solver: 'mu', innerSweeps: 2 }), RangeError, /Expected options\.innerSweeps 1 for solver 'mu' with missing entries or weights for ntfSync\(\) but received 2/);
    expectThrows(() => ntfSync(small, 2, { weights, weightedHals: 'surrogate' }), RangeError, /^Expected options\.weights ≤ 1 with options\.weightedHals 'surrogate' for ntfSync\(\) but received 2 at flat index 0$/);
    expectThrows(() => ntfSync(small, 2, { weightedHals: 'exact' }), RangeError, /^Expected options\.weightedHals only with solver 'hals' and weights or missing entries for ntfSync\(\) but received 'exact' with no entry missing or of weight ≠ 1$/);
    expectThrows(() => ntfSync(small, 2, { mask, solver: 'mu', weightedHals: 'surrogate' }), RangeError, /but received 'surrogate' with solver 'mu'$/);
    // Weights that are all 1 are the plain solve: a given update would go unused.
    const ones = { shape: small.shape, data: new Float64Array(small.data.length).fill(1) };
    expectThrows(() => ntfSync(small, 2, { weights: ones, weightedHals: 'surrogate' }), RangeError, /but received 'surrogate' with no entry missing or of weight ≠ 1$/);
    expectThrows(() => ntfSync(small, 2, { mask, weightedHals: 'em' as never }), RangeError, /options\.weightedHals of ntfSync\(\)/);
    expectThrows(() => ntfSync(small, 2, { mask, weightedHals: 1 as never }), TypeError, /options\.weightedHals of ntfSync\(\)/);
    expectThrows(() => ntfSync(small, 2, { innerSweeps: 0 }), RangeError, /options\.innerSweeps of ntfSync\(\)/);
    expectThrows(() => ntfSync(small, 2, { innerSweeps: 2.5 }), RangeError, /options\.innerSweeps of ntfSync\(\)/);
    expectThrows(() => ntfSync(small, 2, { innerSweeps: '3' as never }), TypeError, /options\.innerSweeps of ntfSync\(\)/);
    expectThrows(() => ntfSync(small, 2, { innerTolerance: 2 }), RangeError, /options\.innerTolerance of ntfSync\(\)/);
    expectThrows(() => ntfSync(small, 2, { innerTolerance: -0.1 }), RangeError, /options\.innerTolerance of ntfSync\(\)/);
    expectThrows(() => ntfSync(small, 2, { innerSweep: 3 } as never), TypeError, /did you mean innerSweeps\?/);
  });

  it("weightedHals 'auto' takes the surrogate up to 30 % missing (Σ(1 − ω)/size), the exact update beyond or with a weight above 1", () => {
    const size = small.data.length; // 210
    const update = (options: object) => ntfSync(small, 2, { maxIterations: 1, ...options }).settings.weightedHals;
    const hidden = (count: number) => Uint8Array.from({ length: size }, (_, k) => (k < count ? 1 : 0));
    expect(update({ mask: hidden(63) })).toBe('surrogate'); // 63/210 = 30 %
    expect(update({ mask: hidden(64) })).toBe('exact');
    const weights = (w: (k: number) => number) => ({ weights: { shape: small.shape, data: Float64Array.from({ length: size }, (_, k) => w(k)) } });
    expect(update(weights(() => 0.75))).toBe('surrogate'); // missing share 0.25
    expect(update(weights(() => 0.6))).toBe('exact'); // 0.4
    expect(update(weights((k) => (k === 5 ? 1.5 : 1)))).toBe('exact'); // no majorizer with ω > 1
    expect(AUTO_SURROGATE_MISSING_SHARE.ntf).toBe(0.3);
  });

  it('the addon guards the raw options itself', () => {
    const raw = (options: Record<string, unknown>) => () =>
      native().ntf(small.data, [...small.shape], 2, { maxIterations: 1, solver: 'hals', epsilon: 1e-9, tolerance: 0, lossEvery: 1, seed: 0, certificateTolerance: 0, ...options } as never, undefined);
    expectThrows(raw({ innerSweeps: 0 }), RangeError, /options\.innerSweeps/);
    expectThrows(raw({ innerSweeps: 1.5 }), TypeError, /options\.innerSweeps/);
    expectThrows(raw({ innerSweeps: 'x' }), TypeError, /options\.innerSweeps/);
    expectThrows(raw({ innerTolerance: 3 }), RangeError, /options\.innerTolerance/);
    const twos = new Float64Array(small.data.length).fill(2);
    expectThrows(raw({ innerSweeps: 2, solver: 'mu', weights: twos }), RangeError, /^Expected options\.innerSweeps 1 for solver 'mu' with weights or missing entries but received 2$/);
    expectThrows(raw({ weightedHals: 'surrogate', weights: twos }), RangeError, /^Expected options\.weights ≤ 1 with options\.weightedHals 'surrogate' but received 2 at index 0$/);
    expectThrows(raw({ weightedHals: 'exact' }), RangeError, /^Expected options\.weightedHals only with solver 'hals' and weights$/);
    expectThrows(raw({ weightedHals: 'exact', solver: 'mu', weights: twos }), RangeError, /^Expected options\.weightedHals only with solver 'hals' and weights$/);
    expectThrows(raw({ weightedHals: 'auto', weights: twos }), RangeError, /options\.weightedHals/);
    expect(() => raw({ innerSweeps: 2, weightedHals: 'exact', weights: twos })()).not.toThrow();
    expect(() => raw({ innerSweeps: 4, innerTolerance: 0 })()).not.toThrow();
  });
});

describe('ntf on the thread team', () => {
  it('2 threads give the 1-thread factors (1e-9 relative; only the BLAS calls may round differently)', () => {
    // 600×20×20 at rank 30: mode 0's HALS sweeps (2·r²·d = 1 080 000, in 8 blocks of 75 columns), the
    // MTTKRP contractions (r·size/20 = 360 000) and the MTTKRP's GEMMs (r·size = 7.2·10⁶ multiply-adds,
    // split by columns of the product, a single-threaded GEMM per thread) pass the team's threshold
    // of 2·10⁵, so all run on 2 threads.
    const T = cpTensor([600, 20, 20], 30, 0.1, 7);
    // MU's elementwise pass needs r·d ≥ 2·10⁵: mode 0 of 10000×4×5 at rank 20.
    const tall = cpTensor([10000, 4, 5], 20, 0.1, 8);
    // Modes of a few dozen columns are split too: at rank 40, mode 1's 64 columns (4 blocks of 16,
    // 2·r²·d = 204 800) and mode 2's 48 (3 of 16) run on 2 threads.
    const small = cpTensor([100, 64, 48], 40, 0.1, 9);
    // Masked MU: its listed sums by rows of the updated factor (24 000 listed entries here) are split
    // over the team as well, each row summed by one thread as by one thread alone; masked HALS's
    // surrogate takes the same sums and the plain sweeps, and its exact update's columns are split
    // likewise (each column's gather and sweeps on one thread, with that thread's scratch).
    const mask = uniform(T.data.length, 11).map((u) => (u < 0.1 ? 1 : 0));
    for (const [tensor, options] of [
      [T, { solver: 'hals', innerSweeps: 10, maxIterations: 6 }],
      [T, { solver: 'mu', maxIterations: 6 }],
      [T, { solver: 'mu', maxIterations: 6, mask: Uint8Array.from(mask) }],
      [T, { solver: 'hals', maxIterations: 6, mask: Uint8Array.from(mask) }],
      [T, { solver: 'hals', maxIterations: 6, mask: Uint8Array.from(mask), weightedHals: 'exact' }],
      [tall, { solver: 'mu', innerSweeps: 3, innerTolerance: 0, maxIterations: 4 }],
      [tall, { solver: 'hals', maxIterations: 4, certificateTolerance: 1e-30 }],
      [small, { solver: 'hals', maxIterations: 4 }],
    ] as const) {
      const run = () => ntfSync(tensor, tensor === T ? 30 : tensor === small ? 40 : 20, { ...options, seed: 3 });
      setBlasThreads(1);
      const one = run();
      setBlasThreads(2);
      const two = run();
      // The solve ran OpenBLAS on one thread (its team splits the products) and gives the 2 back.
      expect(native().blasInfo().threads).toBe(2);
      setBlasThreads(1);
      one.factors.forEach((f, m) => expect(relativeError(two.factors[m]!.data, f.data)).toBeLessThan(1e-9));
      expect(relativeError(two.traces.loss, one.traces.loss)).toBeLessThan(1e-9);
      expect(Math.abs(two.certificate - one.certificate)).toBeLessThanOrEqual(1e-9 * Math.max(one.certificate, 1e-300));
    }
  });
});
