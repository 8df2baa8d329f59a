// stratifiedNtf on a thread team (native/kernels/ntf.cpp, ntf_stratified_hals.cpp; docs/threads.md
// "Scaling"): the strata are spread over the team, each thread doing whole strata (its v(s) and w(s)
// updates, its parts of every hₜ update, its Grams and loss terms) on single-threaded OpenBLAS, and
// what the strata share is summed from per-stratum parts in stratum order, as one thread sums them;
// the GEMMs shared by all strata are split by columns (each entry the same dot product). So the
// result with 2 threads is the 1-thread result bit for bit: the tolerance these tests state is 0.
//
// The sizes are above what the team needs to split (kTeamMinWork, 2·10⁵ flops per pass over the
// strata, native/kernels/thread_team.hpp) with the small-job rule off (lib/runtime.ts), and the
// first case of each solver is the benchmark's size (40 strata of 10×64×64, bench/threads.ts), where
// the column-split products (the h denominators, HALS's h linear term, the certificate's h gradient)
// run on the team too. On a 1-core machine the team has one thread and the comparison is trivial.
//
// How these tests fail when the split is wrong (checked by hand on this change): with the team's
// second thread skipping the v sweeps of the odd strata it takes, all 13 cases below fail (the
// factors differ in the first digits); with it skipping the first stratum it takes in every pass,
// the solve reads buffers that pass should have filled and fails or crashes.
import { availableParallelism, cpus } from 'node:os';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { getBlasThreads, setBlasThreads, stratifiedNtfLoss, stratifiedNtfSync, type StratifiedNtfOptions, type StratifiedNtfResult, type Tensor } from '../lib/index.js';
import { stratifiedNtfWorkDoubles } from '../lib/factorization/stratified-ntf.js';
import { setMemoryLimit } from '../lib/memory.js';
import { native } from '../lib/native.js';
import { setSmallJobFlops } from '../lib/runtime.js';
import { uniform } from './helpers/uniform.js';

let threadsBefore = 1;
let smallBefore = 0;
beforeAll(() => {
  threadsBefore = getBlasThreads();
  smallBefore = setSmallJobFlops(0);
});
afterAll(() => {
  setBlasThreads(threadsBefore);
  setSmallJobFlops(smallBefore);
});

/** Strata of seeded uniform values, stratum s of shape shapeOf(s). */
function strataOf(count: number, shapeOf: (s: number) => number[], seed: number): Tensor[] {
  const rand = uniform(seed);
  return Array.from({ length: count }, (_, s) => {
    const shape = shapeOf(s);
    return { shape, data: Float64Array.from({ length: shape.reduce((a, b) => a * b, 1) }, rand) };
  });
}

/** About 10 % of each stratum's entries missing (true = missing), seeded. */
function masksOf(strata: Tensor[], seed: number): Uint8Array[] {
  const rand = uniform(seed);
  return strata.map((t) => Uint8Array.from(t.data, () => (rand() < 0.1 ? 1 : 0)));
}

function withThreads(threads: number, run: () => StratifiedNtfResult): StratifiedNtfResult {
  setBlasThreads(threads);
  return run();
}

/** Every factor, the loss trace, the certificate and the stop: equal bit for bit (Object.is per value). */
function expectSame(a: StratifiedNtfResult, b: StratifiedNtfResult): void {
  a.v.forEach((vs, s) => vs.forEach((m, t) => expect(m.data).toEqual(b.v[s]![t]!.data)));
  a.w.forEach((m, s) => expect(m.data).toEqual(b.w[s]!.data));
  a.h.forEach((m, t) => expect(m.data).toEqual(b.h[t]!.data));
  expect(a.traces.loss).toEqual(b.traces.loss);
  expect(a.loss).toBe(b.loss);
  expect(a.certificate).toBe(b.certificate);
  expect(a.iterations).toBe(b.iterations);
  expect(a.stopReason).toBe(b.stopReason);
}

const bench = strataOf(40, () => [10, 64, 64], 1);
// Each stratum a few hundred microseconds of work or more, so that the team's second thread, woken
// while the caller starts on the strata, takes its share.
const uneven = strataOf(8, (s) => [20 + 6 * s, 24, 16], 2);
const oneMode = strataOf(6, (s) => [60 + s, 500], 3);
const threeModes = strataOf(6, (s) => [20 + s, 16, 6, 12], 4);
const thin = strataOf(6, () => [60, 64, 20], 5); // rank 25 > d_K = 20: no kept contraction (MU)

const cases: Array<[string, Tensor[], number, StratifiedNtfOptions]> = [
  ['the benchmark size', bench, 40, { strataRank: 15, maxIterations: 3 }],
  ['strata of different sizes and ranks, a loss every 2nd iteration, certificate checks', uneven, 6, { strataRank: [2, 3, 4, 5, 1, 2, 3, 2], maxIterations: 4, lossEvery: 2, certificateTolerance: 1e-12 }],
  ['10 % missing entries (one stratum fully observed)', uneven, 6, { strataRank: 3, maxIterations: 4, mask: masksOf(uneven, 6).map((m, s) => (s === 2 ? null : m)) }],
  ['one feature mode', oneMode, 5, { strataRank: 2, maxIterations: 4 }],
  ['three feature modes (d₁ > nₛ)', threeModes, 7, { strataRank: 3, maxIterations: 4 }],
  ['rank above the last dimension', thin, 25, { strataRank: 4, maxIterations: 3 }],
];

describe('stratifiedNtf: 2 threads give the 1-thread result bit for bit', () => {
  for (const solver of ['mu', 'hals'] as const)
    for (const [name, strata, rank, options] of cases)
      it(`${solver}: ${name}`, () => {
        const run = () => stratifiedNtfSync(strata, rank, { ...options, solver, seed: 7 });
        const one = withThreads(1, run);
        const two = withThreads(2, run);
        expectSame(two, one);
        // The final loss is the loss of the returned factors, as the separate loss function (its
        // strata also spread over the team) evaluates it: a stratum left out of either would show.
        setBlasThreads(2);
        const direct = stratifiedNtfLoss(strata, two, { ...options, rank });
        expect(Math.abs(direct - two.loss)).toBeLessThan(1e-9 * two.loss);
      });

  it("hals with 10 % missing entries and each weighted update ('auto' takes the surrogate here)", () => {
    for (const weightedHals of ['exact', 'surrogate'] as const) {
      const run = () => stratifiedNtfSync(uneven, 6, { strataRank: 3, maxIterations: 4, seed: 5, solver: 'hals', mask: masksOf(uneven, 6), weightedHals });
      const one = withThreads(1, run);
      expect(one.settings.weightedHals).toBe(weightedHals);
      expectSame(withThreads(2, run), one);
    }
  });

  it('mu with the TV term, with and without missing entries', () => {
    for (const mask of [undefined, masksOf(uneven, 8)]) {
      const run = () => stratifiedNtfSync(uneven, 6, { strataRank: 3, maxIterations: 4, seed: 3, tv: { reg: 0.3 }, ...(mask ? { mask } : {}) });
      expectSame(withThreads(2, run), withThreads(1, run));
    }
  });
});

// The memory estimate (lib/factorization/stratified-ntf.ts stratifiedNtfWorkDoubles, native/addon/
// ntf_binding.cpp stratifiedNtfDoubles: the same terms) against what the solvers allocate.
describe('stratifiedNtf: the memory estimate bounds the team’s buffers', () => {
  const sizes = (strata: Tensor[]) => ({ samples: strata.map((t) => t.shape[0]!), dims: strata[0]!.shape.slice(1) });

  // workBytes is the solver's own count of what it allocated (per-stratum state and parts, one
  // scratch set per team thread: StratifiedNtfSolver::track, StratifiedNtfHals' scratch). The
  // certificate, computed while those are held, is not in it: its per-stratum h parts (r × r and
  // r × q per stratum and mode, and r × Σd MTTKRPs per stratum), the h gradients (r × Σd) and, per
  // thread, the last mode's MTTKRP product (r × F: it contracts the samples first) are added here.
  // The estimate must cover the sum on the team it runs on (2 threads where the machine has them).
  // At the benchmark size it exceeds the sum by 1.0 % (MU, 24k doubles) and 4.5 % (HALS, 81k), so
  // leaving out any of the team's terms makes this fail: a thread's scratch counted once (≥ r·F =
  // 164k), the h updates' parts (MU 2·S·r·d_max = 205k, HALS S·r·d_max = 102k), the certificate's
  // S·r·Σd (205k).
  for (const solver of ['mu', 'hals'] as const)
    for (const [name, strata, rank, options] of [...cases, ['TV', uneven, 6, { strataRank: 3, maxIterations: 4, tv: { reg: 0.3 } }] as const])
      if (solver === 'mu' || !('tv' in options))
        it(`${solver}: ${name}`, () => {
          const result = withThreads(2, () => stratifiedNtfSync(strata, rank, { ...options, solver, seed: 7, maxIterations: 1 }));
          const { samples, dims } = sizes(strata);
          const S = samples.length;
          const ranks = Array.isArray(options.strataRank) ? options.strataRank : samples.map(() => options.strataRank as number);
          const qmax = Math.max(...ranks);
          const F = dims.reduce((a, d) => a * d, 1);
          const sumD = dims.reduce((a, d) => a + d, 0);
          const T = Math.min(2, S, Math.max(availableParallelism(), cpus().length)); // the team setBlasThreads(2) gives
          const masks = 'mask' in options && options.mask ? options.mask : [];
          const listed = masks.reduce((c: number, m) => c + (m ? Array.from(m).filter(Boolean).length : 0), 0);
          const certificate = S * dims.length * rank * (rank + qmax) + S * rank * sumD + rank * sumD + T * rank * F;
          const allocated = result.workBytes / 8 + certificate;
          const estimate = stratifiedNtfWorkDoubles(samples, dims, ranks, rank, solver, 'tv' in options, listed, T);
          expect(estimate).toBeGreaterThanOrEqual(allocated);
        });
});

// Both checks refuse at the estimate: lib's (TypeScript, before any native work) and the addon's (the
// raw binding, behind lib's), which bound the same buffers with the same terms. Two strata, so the
// team bound min(strata, cores) is the same for both wherever the machine has 2 cores or more (their
// core counts, os' and std::thread's, agree) and 1 otherwise. Unweighted, the strata read in place:
// the estimate is the factors three times (solver, start, result) plus stratifiedNtfWorkDoubles.
describe('stratifiedNtf: both memory checks refuse just below the estimate and run at it', () => {
  const strata = strataOf(2, (s) => [6 - 2 * s, 8, 10], 9);
  const samples = [6, 4];
  const dims = [8, 10];
  const ranks = [2, 3];
  const rank = 5;
  const T = Math.min(2, Math.max(availableParallelism(), cpus().length));
  // Σq·Σd + r·Σn + r·Σd = 5·18 + 5·10 + 5·18 = 230
  const factors = 230;
  afterAll(() => void setMemoryLimit('auto'));
  for (const solver of ['mu', 'hals'] as const)
    it(solver, () => {
      const bytes = 8 * (3 * factors + stratifiedNtfWorkDoubles(samples, dims, ranks, rank, solver, false, 0, T));
      expect(Number.isInteger(bytes)).toBe(true);
      const options = { strataRank: ranks, solver, maxIterations: 1, seed: 1 };
      setMemoryLimit(bytes - 8);
      expect(() => stratifiedNtfSync(strata, rank, options)).toThrow(/^Not enough memory for rank 5 and strataRank up to 3 with 2 strata/);
      const raw = () =>
        native().stratifiedNtf(
          strata.map((t) => t.data),
          samples,
          dims,
          ranks,
          rank,
          { maxIterations: 1, solver, vScaling: 1, tv: false, tvReg: 0, epsilon: 1e-9, tolerance: 0, lossEvery: 1, seed: 1, recordStages: false, certificateTolerance: 0 },
          undefined,
        );
      expect(raw).toThrow(/^Not enough memory for Stratified-NTF of rank 5 \(2 strata\)/);
      setMemoryLimit(bytes);
      expect(stratifiedNtfSync(strata, rank, options).iterations).toBe(1);
      expect(raw().iterations).toBe(1);
      setMemoryLimit('auto');
    });
});
