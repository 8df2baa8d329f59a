// The small-job rule (lib/runtime.ts, docs/threads.md "Small jobs"): a job or sync call whose largest
// product per iteration is below getSmallJobFlops() runs with one thread (BLAS and the solver's
// team), whatever the policy says; at or above it, with the policy's count. Observed through what
// the running job sees (OpenBLAS's count read from onProgress, the explicit flow's team size) and
// through results, which must equal the 1-thread results bit for bit.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { getBlasThreads, getSmallJobFlops, nsaFlowExplicitSync, setBlasThreads, setSmallJobFlops, stratifiedNmf, stratifiedNmfSync } from '../lib/index.js';
import { native } from '../lib/native.js';
import { productFlops, threadsForWork } from '../lib/runtime.js';
import { snmfCase } from './helpers/snmf-cases.js';
import { lcgMatrix } from './helpers/lcg.js';

const paper = snmfCase(2); // the paper's synthetic run: 4 strata × 100×100, rank 5
const paperFlops = productFlops(4 * 100 * 100, 5); // 4·10⁵: the stacked A(s)Hᵀ

let saved: { threads: number; flops: number };
beforeAll(() => {
  saved = { threads: getBlasThreads(), flops: getSmallJobFlops() };
  setBlasThreads(2); // a policy of 2 threads, so that "1" can only come from the rule
});
afterAll(() => {
  setBlasThreads(saved.threads);
  setSmallJobFlops(saved.flops);
});

describe('the small-job rule', () => {
  it('chooses 1 thread below the threshold and the policy count at or above it', () => {
    expect(getSmallJobFlops()).toBe(3e6); // the measured default (docs/threads.md)
    expect(paperFlops).toBe(4e5);
    expect(threadsForWork(2, paperFlops)).toBe(1);
    expect(threadsForWork(8, 3e6 - 1)).toBe(1);
    expect(threadsForWork(8, 3e6)).toBe(8);
    expect(threadsForWork(8, undefined)).toBe(8); // a call without a size is never small
    const previous = setSmallJobFlops(0); // 0: the rule is off
    try {
      expect(previous).toBe(3e6);
      expect(threadsForWork(2, 1)).toBe(2);
    } finally {
      setSmallJobFlops(previous);
    }
  });

  it('setSmallJobFlops refuses what is not a non-negative number, naming flops', () => {
    expect(() => setSmallJobFlops(-1)).toThrow(RangeError);
    expect(() => setSmallJobFlops(-1)).toThrow('Expected a non-negative number for flops but received -1');
    expect(() => setSmallJobFlops(Number.NaN)).toThrow(TypeError);
    expect(() => setSmallJobFlops('1e7' as unknown as number)).toThrow(TypeError);
    expect(getSmallJobFlops()).toBe(3e6);
  });

  it('an async small job runs on 1 BLAS thread; with the rule off or the threshold at its size, on the policy\'s 2', async () => {
    const threadsSeen = async (): Promise<number[]> => {
      const seen: number[] = [];
      await stratifiedNmf(paper.A, 5, { solver: 'mu', maxIterations: 40, init: paper.init, progressIntervalMs: 0, onProgress: () => seen.push(native().blasInfo().threads) });
      expect(seen.length).toBeGreaterThan(0);
      return [...new Set(seen)];
    };
    expect(await threadsSeen()).toEqual([1]);
    expect(native().blasInfo().threads).toBe(2); // back to getBlasThreads() once no job runs
    const previous = setSmallJobFlops(0);
    try {
      expect(await threadsSeen()).toEqual([2]);
      setSmallJobFlops(paperFlops); // not below: the policy's count
      expect(await threadsSeen()).toEqual([2]);
      setSmallJobFlops(paperFlops + 1);
      expect(await threadsSeen()).toEqual([1]);
    } finally {
      setSmallJobFlops(previous);
    }
  });

  it('a sync small call sizes the team for 1 thread and leaves getBlasThreads() in place after it', () => {
    // 40000×5 = 2·10⁵ doubles: just large enough for the explicit flow's team to take 2 threads
    // (thread_team.hpp's 2·10⁵), while its product, 2·2·10⁵·5 = 2·10⁶ flops, is small.
    const Y = lcgMatrix(40000, 5, 5);
    const run = () => nsaFlowExplicitSync(Y, { w: 0.5, maxIterations: 3, tolerance: 0 });
    expect(run().settings.threadsUsed).toBe(1);
    expect(native().blasInfo().threads).toBe(2);
    const previous = setSmallJobFlops(0);
    try {
      expect(run().settings.threadsUsed).toBe(2);
    } finally {
      setSmallJobFlops(previous);
    }
    expect(() => nsaFlowExplicitSync(Y, { w: 2 })).toThrow(RangeError); // a throwing call restores too
    expect(native().blasInfo().threads).toBe(2);
  });

  it('results equal the 1-thread results bit for bit (the paper run, 500 iterations, sync and async)', async () => {
    const options = { solver: 'mu' as const, maxIterations: 500, init: paper.init };
    const policy = stratifiedNmfSync(paper.A, 5, options); // policy: 2 threads; the rule: 1
    const asyncRun = await stratifiedNmf(paper.A, 5, options);
    setBlasThreads(1);
    let one;
    try {
      one = stratifiedNmfSync(paper.A, 5, options);
    } finally {
      setBlasThreads(2);
    }
    expect(policy.H.data).toEqual(one.H.data);
    expect(policy.traces.loss).toEqual(one.traces.loss);
    expect(asyncRun.H.data).toEqual(one.H.data);
    expect(asyncRun.traces.loss).toEqual(one.traces.loss);
  });
});

describe("Stratified-NMF 'mu' at small sizes", () => {
  /** The paper run with NSA_FLOW_SIMD set to `simd` (undefined: unset) for the call. */
  const run = (simd: string | undefined, maxIterations: number) => {
    const saved = process.env.NSA_FLOW_SIMD;
    if (simd === undefined) delete process.env.NSA_FLOW_SIMD;
    else process.env.NSA_FLOW_SIMD = simd;
    try {
      return stratifiedNmfSync(paper.A, 5, { solver: 'mu', maxIterations, init: paper.init });
    } finally {
      if (saved === undefined) delete process.env.NSA_FLOW_SIMD;
      else process.env.NSA_FLOW_SIMD = saved;
    }
  };

  /** Largest |a − b| over the largest |b|. */
  const relative = (a: ArrayLike<number>, b: ArrayLike<number>): number => {
    let d = 0;
    let scale = 0;
    for (let i = 0; i < b.length; i++) {
      d = Math.max(d, Math.abs(a[i]! - b[i]!));
      scale = Math.max(scale, Math.abs(b[i]!));
    }
    return d / scale;
  };

  it('the data pass (widest, 256-bit) matches the BLAS products (NSA_FLOW_SIMD=0) and the reference\'s loss array', () => {
    // Below the small-product size, up to rank 8, A(s)Hᵀ, W(s)ᵀA(s) and the direct loss come from one
    // SIMD pass over the data (nmf_stratified.cpp, snmf_data_pass.inc); NSA_FLOW_SIMD=0 keeps the
    // OpenBLAS products and the BLAS-form loss. The products' sums run in another order, so the factors
    // agree to rounding: after 2000 iterations the largest difference was 1.1·10⁻¹⁴ (H) and 7.4·10⁻¹⁵
    // (W) of the largest entry. 10⁻¹² still fails a pass that skipped one row of 400 or one column of
    // 100 (a change of ~10⁻³ in the products, carried into every later iterate).
    const fused = run(undefined, 2000);
    const narrow = run('256', 2000);
    const blas = run('0', 2000);
    for (const r of [fused, narrow]) {
      expect(relative(r.H.data, blas.H.data)).toBeLessThan(1e-12);
      expect(relative(r.V.data, blas.V.data)).toBeLessThan(1e-12);
      for (let s = 0; s < 4; s++) expect(relative(r.W[s]!.data, blas.W[s]!.data)).toBeLessThan(1e-12);
    }
    // The pass's loss is the residual itself from the first iteration, where the BLAS form expands it
    // until that would cancel more than 4 digits (loss² below 10⁻⁴ of ‖A‖² + the model's ≈ 2‖A‖², a
    // normalized loss below ≈ 1.4·10⁻²): against the reference's recorded loss array every pass entry
    // was within 7.3·10⁻¹⁵ of its own value, the expanded BLAS entries within 2.1·10⁻¹²; where both are
    // direct they agreed to 6.4·10⁻¹⁵. 10⁻¹³ fails an expanded loss and a pass that skipped a row.
    const reference = paper.lossArray;
    let worstFused = 0;
    let worstNarrow = 0;
    let worstBlasDirect = 0;
    for (let i = 0; i < blas.traces.loss.length; i++) {
      const ref = reference[i]!;
      worstFused = Math.max(worstFused, Math.abs(fused.traces.loss[i]! - ref) / ref);
      worstNarrow = Math.max(worstNarrow, Math.abs(narrow.traces.loss[i]! - ref) / ref);
      if (blas.traces.normalizedLoss[i]! < 1e-2) worstBlasDirect = Math.max(worstBlasDirect, Math.abs(blas.traces.loss[i]! - ref) / ref);
    }
    expect(worstFused).toBeLessThan(1e-13);
    expect(worstNarrow).toBeLessThan(1e-13);
    expect(worstBlasDirect).toBeLessThan(1e-13);
    // The direct values of the BLAS form are in use: most entries are below where the expansion is refused.
    const direct = blas.traces.normalizedLoss.filter((l) => l < 1e-2).length;
    expect(direct).toBeGreaterThan(1000);
  });

  it('the data pass matches the BLAS products at every rank it covers, odd sizes and per-stratum ranks', () => {
    // Rows not a multiple of the rows per step (2–4), columns not a multiple of 8 or 4 (the masked
    // last chunk), strata of different heights, ranks 1–8 (one compiled pass each) and 9 (beyond the
    // pass: the BLAS products in every mode, and the vectorized quotients of the updates give the
    // scalar loop's bits, so the factors are the same bits), per-stratum ranks.
    // 30 iterations from the same random start: the factors agree to 10⁻¹² of the largest entry
    // (rounding of reordered sums, ~10⁻¹⁵ here), the losses to 10⁻¹² of their value (the BLAS form's
    // expansion cancels about one digit at these fits). A wrong lane mask or a skipped row changes a
    // product by ~10⁻² of its value.
    const strata = [lcgMatrix(37, 53, 11), lcgMatrix(13, 53, 12), lcgMatrix(29, 53, 13)];
    const solve = (simd: string | undefined, rank: number | number[]) => {
      const saved = process.env.NSA_FLOW_SIMD;
      if (simd === undefined) delete process.env.NSA_FLOW_SIMD;
      else process.env.NSA_FLOW_SIMD = simd;
      try {
        return stratifiedNmfSync(strata, rank, { solver: 'mu', maxIterations: 30, tolerance: 0, init: 'random', seed: 3 });
      } finally {
        if (saved === undefined) delete process.env.NSA_FLOW_SIMD;
        else process.env.NSA_FLOW_SIMD = saved;
      }
    };
    for (const rank of [1, 2, 3, 4, 5, 6, 7, 8, 9, [3, 8, 5]]) {
      const blas = solve('0', rank);
      for (const simd of [undefined, '256']) {
        const r = solve(simd, rank);
        const label = `rank ${String(rank)}, NSA_FLOW_SIMD=${simd ?? 'unset'}`;
        expect(relative(r.H.data, blas.H.data), label).toBeLessThan(1e-12);
        expect(relative(r.V.data, blas.V.data), label).toBeLessThan(1e-12);
        for (let s = 0; s < strata.length; s++) expect(relative(r.W[s]!.data, blas.W[s]!.data), label).toBeLessThan(1e-12);
        for (let i = 0; i < blas.traces.loss.length; i++)
          expect(Math.abs(r.traces.loss[i]! - blas.traces.loss[i]!) / blas.traces.loss[i]!, label).toBeLessThan(1e-12);
        if (rank === 9) expect(r.H.data, label).toEqual(blas.H.data);
      }
    }
  });
});
