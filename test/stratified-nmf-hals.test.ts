// Stratified-NMF's block-coordinate solver (solver 'hals'): the same objective as the multiplicative
// updates, minimized block by block (v(s), the rows of each W(s), the columns of H) with exact steps.
import { describe, expect, it } from 'vitest';

import { setBlasThreads, stratifiedNmf, stratifiedNmfSync, toCsr, type Matrix, type StratifiedNmfOptions } from '../lib/index.js';
import { native } from '../lib/native.js';
import { directStratifiedLoss, largestIncrease, snmfCase } from './helpers/snmf-cases.js';
import { relativeError } from './helpers/shared.js';
import { thrown } from './helpers/thrown.js';

setBlasThreads(1);

/** Deterministic non-negative strata: A(s) = W(s)H + 1v(s)ᵀ + noise, from a small LCG. */
function synthetic(S: number, n: number, m: number, r: number, seed: number, density = 1): Matrix[] {
  let x = seed >>> 0;
  const u = () => ((x = (Math.imul(x, 1664525) + 1013904223) >>> 0) / 2 ** 32);
  const H = Float64Array.from({ length: r * m }, u);
  return Array.from({ length: S }, (_, s) => {
    const W = Float64Array.from({ length: n * r }, u);
    const v = Float64Array.from({ length: m }, () => u() + s);
    const data = new Float64Array(n * m);
    for (let i = 0; i < n; i++)
      for (let j = 0; j < m; j++) {
        let t = v[j]! + 0.05 * u();
        for (let c = 0; c < r; c++) t += W[i * r + c]! * H[c * m + j]!;
        data[i * m + j] = u() < density ? t : 0;
      }
    return { rows: n, cols: m, data };
  });
}

/** The first recorded iteration whose loss is at most `target` (Infinity: never). */
function firstBelow(r: { traces: { iteration: Int32Array | Float64Array; loss: Float64Array } }, target: number): number {
  for (let k = 0; k < r.traces.loss.length; k++) if (r.traces.loss[k]! <= target) return r.traces.iteration[k]!;
  return Infinity;
}

// Each HALS step minimizes its block exactly, so the objective never rises; the recorded losses are
// expanded from the solver's products and carry rounding of about 1e-15·Σ‖A(s)‖²/loss² relative
// (≤ 1e-12 at the losses below): that is the slack allowed.
const roundingSlack = 1e-12;

describe("stratifiedNmf solver 'hals'", () => {
  const paper = snmfCase(2); // the paper's 4 × 100×100, rank 5

  it('never raises the loss (paper case and a random case with several strata sizes)', () => {
    const r = stratifiedNmfSync(paper.A, 5, { solver: 'hals', maxIterations: 300, init: paper.init });
    expect(largestIncrease(r.traces.loss)).toBeLessThanOrEqual(roundingSlack);
    const strata = synthetic(3, 40, 30, 4, 11).map((a, s) => ({ ...a, rows: 40 - 10 * s, data: a.data.subarray(0, (40 - 10 * s) * 30) }));
    const q = stratifiedNmfSync(strata, 4, { solver: 'hals', maxIterations: 200, seed: 3 });
    expect(largestIncrease(q.traces.loss)).toBeLessThanOrEqual(roundingSlack);
    // The reported loss is the loss of the returned factors (checked by a plain-JS evaluation).
    expect(Math.abs(q.loss - directStratifiedLoss(strata, q.V, q.W, q.H)) / q.loss).toBeLessThan(1e-10);
  });

  it("reaches 'mu''s 200-iteration loss in far fewer iterations, and ends below it", () => {
    for (const [strata, rank, init] of [
      [paper.A, 5, paper.init],
      [synthetic(4, 60, 50, 4, 5), 4, 'random'],
    ] as const) {
      const options = { maxIterations: 200, init: init as StratifiedNmfOptions['init'], seed: 2 };
      const mu = stratifiedNmfSync(strata as Matrix[], rank, { ...options, solver: 'mu' });
      const hals = stratifiedNmfSync(strata as Matrix[], rank, { ...options, solver: 'hals' });
      // Measured: 'hals' gets there within 20 iterations on both; 50 leaves room for other BLAS builds.
      expect(firstBelow(hals, mu.loss)).toBeLessThan(50);
      expect(hals.loss).toBeLessThan(mu.loss);
    }
  });

  it("same objective as 'mu': an exact factorization is a fixed point of both; closer to stationarity sooner", () => {
    // A(s) = W(s)H + 1v(s)ᵀ exactly, started from those factors: the loss is 0 there and stays ~0
    // (rounding of the products: ≤ 1e-12 relative to ‖A‖; 'mu' moves by its ε = 1e-9 only).
    let x = 3;
    const u = () => ((x = (Math.imul(x, 1664525) + 1013904223) >>> 0) / 2 ** 32) + 0.1;
    const r = 3, m = 12;
    const H = { rows: r, cols: m, data: Float64Array.from({ length: r * m }, u) };
    const W = [10, 7].map((n) => ({ rows: n, cols: r, data: Float64Array.from({ length: n * r }, u) }));
    const V = { rows: 2, cols: m, data: Float64Array.from({ length: 2 * m }, u) };
    const A = W.map((w, s) => {
      const data = new Float64Array(w.rows * m);
      for (let i = 0; i < w.rows; i++)
        for (let j = 0; j < m; j++) {
          let t = V.data[s * m + j]!;
          for (let c = 0; c < r; c++) t += w.data[i * r + c]! * H.data[c * m + j]!;
          data[i * m + j] = t;
        }
      return { rows: w.rows, cols: m, data };
    });
    for (const solver of ['hals', 'mu'] as const) {
      const fit = stratifiedNmfSync(A, r, { solver, maxIterations: 20, init: { V, W, H } });
      expect(fit.normalizedLoss).toBeLessThan(solver === 'hals' ? 1e-12 : 1e-8);
      expect(relativeError(fit.H.data, H.data)).toBeLessThan(solver === 'hals' ? 1e-10 : 1e-6);
    }
    // The paper case after 3000 iterations from the same start: the certificate of 'hals' (measured
    // 1.9e-6) is below that of 'mu' (2e-4), and so is its loss.
    const hals = stratifiedNmfSync(paper.A, 5, { solver: 'hals', maxIterations: 3000, init: paper.init });
    const mu = stratifiedNmfSync(paper.A, 5, { solver: 'mu', maxIterations: 3000, init: paper.init });
    expect(hals.certificate).toBeLessThan(mu.certificate);
    expect(hals.loss).toBeLessThan(mu.loss);
  });

  it('with penalties: the penalized objective never rises and the certificate is of it', () => {
    const penalties = { l1V: 0.01, l2V: 0.1, l1W: 0.05, l2W: 0.2, l1H: 0.02, l2H: 0.3 };
    const r = stratifiedNmfSync(paper.A, 5, { solver: 'hals', maxIterations: 400, init: paper.init, ...penalties });
    expect(largestIncrease(r.traces.objective!)).toBeLessThanOrEqual(roundingSlack);
    const mu = stratifiedNmfSync(paper.A, 5, { solver: 'mu', maxIterations: 400, init: paper.init, ...penalties });
    // Closer to stationarity of the penalized objective than 'mu' after as many iterations.
    expect(r.certificate).toBeLessThan(mu.certificate);
    expect(r.objective!).toBeLessThanOrEqual(mu.objective! * (1 + 1e-9));
  });

  it('CSR strata give the dense result (no densifying; 1e-10 relative)', () => {
    const dense = synthetic(3, 30, 40, 3, 9, 0.3);
    const options = { solver: 'hals', maxIterations: 60, seed: 4 } as const;
    const a = stratifiedNmfSync(dense, 3, options);
    const b = stratifiedNmfSync(dense.map(toCsr), 3, options);
    expect(relativeError(b.H.data, a.H.data)).toBeLessThan(1e-10);
    expect(relativeError(b.V.data, a.V.data)).toBeLessThan(1e-10);
    b.W.forEach((w, s) => expect(relativeError(w.data, a.W[s]!.data)).toBeLessThan(1e-10));
    expect(largestIncrease(b.traces.loss)).toBeLessThanOrEqual(roundingSlack);
  });

  it('weights, masks and CSR missing entries: the weighted objective never rises; one objective, three spellings', () => {
    const dense = synthetic(3, 30, 25, 3, 41, 0.4);
    const rand = (() => {
      let x = 77;
      return () => ((x = (Math.imul(x, 1664525) + 1013904223) >>> 0) / 2 ** 32);
    })();
    const weights = dense.map((a) => ({ rows: a.rows, cols: a.cols, data: Float64Array.from({ length: a.rows * a.cols }, () => (rand() < 0.15 ? 0 : 0.5 + rand())) }));
    const weighted = stratifiedNmfSync(dense, 3, { solver: 'hals', maxIterations: 80, seed: 3, weights });
    expect(largestIncrease(weighted.traces.loss)).toBeLessThanOrEqual(roundingSlack);
    const mu = stratifiedNmfSync(dense, 3, { solver: 'mu', maxIterations: 80, seed: 3, weights });
    expect(weighted.loss).toBeLessThan(mu.loss);
    expect(weighted.certificate).toBeLessThan(mu.certificate);
    // √Σω(a − v − wh)², evaluated here in plain JS.
    let sum = 0;
    dense.forEach((a, s) => {
      for (let i = 0; i < a.rows; i++)
        for (let j = 0; j < a.cols; j++) {
          let model = weighted.V.data[s * a.cols + j]!;
          for (let c = 0; c < 3; c++) model += weighted.W[s]!.data[i * 3 + c]! * weighted.H.data[c * a.cols + j]!;
          sum += weights[s]!.data[i * a.cols + j]! * (a.data[i * a.cols + j]! - model) ** 2;
        }
    });
    expect(Math.abs(weighted.loss - Math.sqrt(sum)) / weighted.loss).toBeLessThan(1e-10);

    // The absent entries of CSR strata missing, a mask of the zeros, and 0/1 weights: the same
    // objective. A mask and 0/1 weights list the same entries (the zeros, base weight 1), so they run
    // the same arithmetic: equal up to rounding (1e-9 after 30 iterations). The CSR strata list the
    // stored entries instead (base weight 0), and their rows keep the plain count of inner sweeps while
    // a masked row makes as many as its listed entries' cost allows (weightedSweepsFor,
    // nmf_stratified.cpp), so their iterates take another path, to a minimum of the same objective:
    // run to convergence (6000 iterations: each certificate below 1e-8), the losses agree to 1e-9
    // (measured: 7e-12; 2.6e-7 after 3000 iterations, 0.14 after 30).
    // The factors at that minimum are not unique (H differs by 1.9 relative), so only the loss is compared.
    const options = { solver: 'hals', maxIterations: 30, seed: 5 } as const;
    const masked = stratifiedNmfSync(dense, 3, { ...options, mask: dense.map((a) => Array.from(a.data, (x) => x === 0)) });
    const zeroOne = stratifiedNmfSync(dense, 3, { ...options, weights: dense.map((a) => ({ ...a, data: a.data.map((x) => (x === 0 ? 0 : 1)) })) });
    expect(relativeError(zeroOne.H.data, masked.H.data)).toBeLessThan(1e-9);
    expect(relativeError(zeroOne.V.data, masked.V.data)).toBeLessThan(1e-9);
    expect(Math.abs(zeroOne.loss - masked.loss) / masked.loss).toBeLessThan(1e-9);
    const converged = { solver: 'hals', maxIterations: 6000, tolerance: 0, seed: 5 } as const;
    const csr = stratifiedNmfSync(dense.map(toCsr), 3, { ...converged, missing: 'absent' });
    const maskedLong = stratifiedNmfSync(dense, 3, { ...converged, mask: dense.map((a) => Array.from(a.data, (x) => x === 0)) });
    for (const run of [csr, maskedLong]) expect(run.certificate).toBeLessThan(1e-8);
    expect(Math.abs(maskedLong.loss - csr.loss) / csr.loss).toBeLessThan(1e-9);
    expect(largestIncrease(csr.traces.loss)).toBeLessThanOrEqual(roundingSlack);
    // With per-stratum ranks and penalties too: the penalized objective never rises.
    const ranked = stratifiedNmfSync(dense, [3, 2, 1], { solver: 'hals', maxIterations: 60, seed: 2, weights, l1W: 0.01, l2H: 0.1 });
    expect(largestIncrease(ranked.traces.objective!)).toBeLessThanOrEqual(roundingSlack);
    expect(ranked.W.map((w) => w.cols)).toEqual([3, 2, 1]);
  });

  it('per-stratum ranks: a stratum uses its first rₛ topics, the loss never rises', () => {
    const strata = synthetic(3, 30, 25, 3, 21);
    const r = stratifiedNmfSync(strata, [3, 1, 0], { solver: 'hals', maxIterations: 100, seed: 1 });
    expect(r.W.map((w) => w.cols)).toEqual([3, 1, 0]);
    expect(largestIncrease(r.traces.loss)).toBeLessThanOrEqual(roundingSlack);
    const mu = stratifiedNmfSync(strata, [3, 1, 0], { solver: 'mu', maxIterations: 100, seed: 1 });
    expect(r.loss).toBeLessThan(mu.loss);
  });

  it('vScaling 0 keeps v fixed, as for mu', () => {
    const r = stratifiedNmfSync(paper.A, 5, { solver: 'hals', maxIterations: 20, init: paper.init, vScaling: 0 });
    expect(relativeError(r.V.data, paper.init.V.data)).toBe(0);
  });

  it('restarts, tolerance and the async form work with it (async equals sync bit for bit)', async () => {
    let x = 8;
    const u = () => ((x = (Math.imul(x, 1664525) + 1013904223) >>> 0) / 2 ** 32);
    const strata = [0, 1].map(() => ({ rows: 30, cols: 20, data: Float64Array.from({ length: 600 }, u) }));
    // Measured: the relative loss change falls below 1e-7 near iteration 200.
    const options = { solver: 'hals', maxIterations: 2000, tolerance: 1e-7, seed: 5 } as const;
    const sync = stratifiedNmfSync(strata, 2, options);
    expect(sync.stopReason).toBe('plateau');
    expect(sync.settings.solver).toBe('hals');
    const async = await stratifiedNmf(strata, 2, options);
    expect(relativeError(async.H.data, sync.H.data)).toBe(0);
    const best = stratifiedNmfSync(strata, 2, { ...options, restarts: 3 });
    expect(best.restarts!.losses.length).toBe(3);
    expect(best.loss).toBeLessThanOrEqual(Math.min(...best.restarts!.losses) * (1 + 1e-12));
  });

  it('T threads give the 1-thread result (each row of a block is solved on one thread; BLAS sums may regroup: 1e-12)', () => {
    // (N + m)·r² = (1500 + 300)·12² > 2·10⁵: above the thread team's threshold.
    const strata = synthetic(3, 500, 300, 12, 31);
    const options = { solver: 'hals', maxIterations: 15, seed: 6 } as const;
    setBlasThreads(1);
    const one = stratifiedNmfSync(strata, 12, options);
    setBlasThreads(2);
    try {
      const two = stratifiedNmfSync(strata, 12, options);
      expect(relativeError(two.H.data, one.H.data)).toBeLessThan(1e-12);
      two.W.forEach((w, s) => expect(relativeError(w.data, one.W[s]!.data)).toBeLessThan(1e-12));
    } finally {
      setBlasThreads(1);
    }
  });

  it("'mu' on the thread team: T threads give the 1-thread result (elementwise passes split by rows; BLAS sums may regroup: 1e-12)", () => {
    // (N + m)·r = (12 000 + 400)·20 > 2·10⁵: above the thread team's threshold (teamThreads).
    const strata = synthetic(4, 3000, 400, 20, 13);
    const options = { solver: 'mu', maxIterations: 5, seed: 6 } as const;
    setBlasThreads(1);
    const one = stratifiedNmfSync(strata, 20, options);
    setBlasThreads(2);
    try {
      const two = stratifiedNmfSync(strata, 20, options);
      expect(relativeError(two.H.data, one.H.data)).toBeLessThan(1e-12);
      two.W.forEach((w, s) => expect(relativeError(w.data, one.W[s]!.data)).toBeLessThan(1e-12));
    } finally {
      setBlasThreads(1);
    }
  });

  it('guards: the solver name (TS and the addon)', () => {
    const strata = synthetic(2, 10, 8, 2, 1);
    let e = thrown(() => stratifiedNmfSync(strata, 2, { solver: 'als' as 'mu' }));
    expect(e).toBeInstanceOf(RangeError);
    expect(e.message).toMatch(/Expected one of 'mu', 'hals' for options\.solver .*did you mean 'hals'/);
    // The addon's own guard (a direct call).
    const raw = { solver: 'hals', maxIterations: 1, tolerance: 0, lossEvery: 1, vScaling: 2, seed: 0, init: 'random' } as const;
    e = thrown(() => native().stratifiedNmf(strata, 8, 2, { ...raw, solver: 'newton' as never }));
    expect(e).toBeInstanceOf(RangeError);
    expect(e.message).toMatch(/solver/);
    e = thrown(() => native().stratifiedNmf(strata, 8, 2, { ...raw, solver: 1 as never }));
    expect(e).toBeInstanceOf(TypeError);
    expect(e.message).toMatch(/solver/);
  });
});
