// stratifiedNmf on a thread team (native/kernels/nmf_stratified.cpp; docs/threads.md "Scaling"): with
// 2 threads the team splits the data products A(s)·Hᵀ, W(s)ᵀ·A(s), A(s)ᵀ·W(s) and W(s)·HHᵀ by rows or
// columns (one single-threaded GEMM per thread), spreads the strata of the column sums and of the
// direct loss, and runs the elementwise updates and sweeps. No split divides a sum: every entry is the
// same dot product, and every stratum's or run's sum is made by one thread and added in order. Where
// OpenBLAS forms a part with the same kernel as the whole (here: every part above its small-matrix
// kernels' 10⁶ multiply-adds, or whole and parts below), 2 threads give the 1-thread result bit for
// bit: on the development machine every gap below is 0. The stated tolerance, 1e-12 relative, leaves
// room for an OpenBLAS that picks another kernel for a part (rounding, ~1e-16 per product, over at
// most 8 iterations); a split that skipped or doubled a block leaves rows of a product stale or
// columns of H's numerator doubled: O(1) gaps (checked by breaking the splits of denseAHt and
// denseWtA: every case below then fails).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { getBlasThreads, setBlasThreads, stratifiedNmfLoss, stratifiedNmfSync, type Matrix, type StratifiedNmfOptions, type StratifiedNmfResult } from '../lib/index.js';
import { getSmallJobFlops, setSmallJobFlops } from '../lib/runtime.js';
import { relativeError } from './helpers/shared.js';
import { lcgMatrix } from './helpers/lcg.js';

/** Row-major product of an n×k and a k×m matrix. */
function times(a: Matrix, b: Matrix): Matrix {
  const out = new Float64Array(a.rows * b.cols);
  for (let i = 0; i < a.rows; i++)
    for (let c = 0; c < a.cols; c++) {
      const x = a.data[i * a.cols + c]!;
      for (let j = 0; j < b.cols; j++) out[i * b.cols + j] = out[i * b.cols + j]! + x * b.data[c * b.cols + j]!;
    }
  return { rows: a.rows, cols: b.cols, data: out };
}

// Sizes: rank 20 and N + m = 4·2500 + 61 ≥ 10⁴, so both solvers' teams get 2 threads ((N + m)·r ≥ 2·10⁵
// values, the team's threshold kTeamMinWork); each stratum's product, 2·2500·61·20 = 6·10⁶ flops, is
// above the threshold of a split and above the small-job rule's 3·10⁶ (lowered to 0 below regardless),
// and above smallProducts' 10⁶ multiply-adds, so the products take the split path. 61 columns: a
// column split in blocks of 8 gives the threads 32 and 29 columns, an uneven split.
const r = 20;
const m = 61;
const rows = [2500, 2500, 2400, 2600];
const noisy = rows.map((n, s) => lcgMatrix(n, m, s + 1));
// Data with an exact fit (rank 3 plus the offsets v_j = 0.1·j/m), solved from near that fit (the exact
// factors, padded to rank 20 with 10⁻³-sized entries): the expanded loss cancels from the start, so the
// direct loss (its strata spread over the team) is what both solvers compute.
const W3 = rows.map((n, s) => lcgMatrix(n, 3, 10 + s));
const H3 = lcgMatrix(3, m, 99);
const offsets = Float64Array.from({ length: m }, (_, j) => (0.1 * j) / m);
const exact = W3.map((w) => {
  const X = times(w, H3);
  return { ...X, data: X.data.map((x, e) => x + offsets[e % m]!) };
});
const pad = (x: Matrix, cols: number, seed: number): Matrix => {
  const small = lcgMatrix(x.rows, cols, seed);
  const data = new Float64Array(x.rows * cols);
  for (let i = 0; i < x.rows; i++)
    for (let c = 0; c < cols; c++) data[i * cols + c] = c < x.cols ? x.data[i * x.cols + c]! : 1e-3 * small.data[i * cols + c]!;
  return { rows: x.rows, cols, data };
};
const padRows = (x: Matrix, n: number, seed: number): Matrix => {
  const small = lcgMatrix(n, x.cols, seed);
  return { rows: n, cols: x.cols, data: small.data.map((y, e) => (e < x.data.length ? x.data[e]! : 1e-3 * y)) };
};
const nearFit = {
  V: { rows: rows.length, cols: m, data: Float64Array.from({ length: rows.length * m }, (_, e) => offsets[e % m]!) },
  W: W3.map((w, s) => pad(w, r, 20 + s)),
  H: padRows(H3, r, 30),
};
const masks = rows.map((n, s) => Uint8Array.from(lcgMatrix(n, m, 50 + s).data, (x) => (x < 0.1 ? 1 : 0)));

let saved: { threads: number; small: number };
beforeAll(() => {
  saved = { threads: getBlasThreads(), small: getSmallJobFlops() };
  setSmallJobFlops(0); // every job here may use the threads it is given
});
afterAll(() => {
  setBlasThreads(saved.threads);
  setSmallJobFlops(saved.small);
});

function solve(threads: number, strata: Matrix[], options: StratifiedNmfOptions): StratifiedNmfResult {
  setBlasThreads(threads);
  return stratifiedNmfSync(strata, r, { tolerance: 0, seed: 3, ...options });
}

const tolerance = 1e-12;

function expectSame(two: StratifiedNmfResult, one: StratifiedNmfResult): void {
  expect(relativeError(one.V.data, two.V.data)).toBeLessThanOrEqual(tolerance);
  expect(relativeError(one.H.data, two.H.data)).toBeLessThanOrEqual(tolerance);
  two.W.forEach((w, s) => expect(relativeError(one.W[s]!.data, w.data)).toBeLessThanOrEqual(tolerance));
  expect(two.traces.loss.length).toBe(one.traces.loss.length);
  expect(relativeError(one.traces.loss, two.traces.loss)).toBeLessThanOrEqual(tolerance);
  expect(relativeError([one.certificate], [two.certificate])).toBeLessThanOrEqual(1e-9); // a max over gradients: more rounding-sensitive
}

describe('stratifiedNmf: 2 threads give the 1-thread result (1e-12 relative)', () => {
  for (const solver of ['hals', 'mu'] as const) {
    it(`${solver}: noisy data`, () => {
      const one = solve(1, noisy, { solver, maxIterations: 8 });
      expectSame(solve(2, noisy, { solver, maxIterations: 8 }), one);
    });
    it(`${solver}: a close fit (the direct loss on the team)`, () => {
      const one = solve(1, exact, { solver, maxIterations: 60 });
      expect(one.normalizedLoss).toBeLessThan(1); // close enough that the expansion cancels
      expectSame(solve(2, exact, { solver, maxIterations: 60 }), one);
    });
    it(`${solver}: missing entries`, () => {
      const one = solve(1, noisy, { solver, maxIterations: 6, mask: masks });
      expectSame(solve(2, noisy, { solver, maxIterations: 6, mask: masks }), one);
    });
  }
  // The weighted W(s) rows and H columns of 'hals' run on the team too, each on one thread with that
  // thread's buffers: nothing of a row depends on the split, so here (where, as above, the split
  // products give the whole's bits) 2 threads give the 1-thread result bit for bit. A row swept
  // twice, or skipped, or two threads sharing one buffer, would not.
  it('hals: missing entries, the weighted rows and columns on the team, bit for bit', () => {
    const one = solve(1, noisy, { solver: 'hals', maxIterations: 6, mask: masks });
    const two = solve(2, noisy, { solver: 'hals', maxIterations: 6, mask: masks });
    expect(relativeError(one.V.data, two.V.data)).toBe(0);
    expect(relativeError(one.H.data, two.H.data)).toBe(0);
    two.W.forEach((w, s) => expect(relativeError(one.W[s]!.data, w.data)).toBe(0));
    expect(relativeError(one.traces.loss, two.traces.loss)).toBe(0);
  });
  it('stratifiedNmfLoss', () => {
    const { V, W, H } = solve(1, noisy, { solver: 'hals', maxIterations: 3 });
    setBlasThreads(1);
    const one = stratifiedNmfLoss(noisy, { V, W, H });
    setBlasThreads(2);
    expect(relativeError([one], [stratifiedNmfLoss(noisy, { V, W, H })])).toBeLessThanOrEqual(tolerance);
  });
});
