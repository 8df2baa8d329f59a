// The small-job rule (lib/runtime.ts, docs/threads.md "Small jobs"): a job or sync call whose largest
// product per iteration is below getSmallJobFlops() runs with one thread (BLAS and the solver's
// team), whatever the policy says; at or above it, with the policy's count. Observed through what
// the running job sees (OpenBLAS's count read from onProgress, the explicit flow's team size) and
// through results, which must equal the 1-thread results bit for bit.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { getBlasThreads, getSmallJobFlops, nsaFlowExplicitSync, setBlasThreads, setSmallJobFlops, stratifiedNmf, stratifiedNmfSync, type Matrix } from '../lib/index.js';
import { native } from '../lib/native.js';
import { productFlops, threadsForWork } from '../lib/runtime.js';
import { snmfCase } from './helpers/snmf-cases.js';

const paper = snmfCase(2); // the paper's synthetic run: 4 strata × 100×100, rank 5
const paperFlops = productFlops(4 * 100 * 100, 5); // 4·10⁵: the stacked A(s)Hᵀ

/** p×k entries in (0, 1), deterministic. */
function uniform(p: number, k: number, seed: number): Matrix {
  const data = new Float64Array(p * k);
  let s = seed >>> 0 || 1;
  for (let i = 0; i < data.length; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    data[i] = (s + 0.5) / 4294967296;
  }
  return { rows: p, cols: k, data };
}

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
    const Y = uniform(40000, 5, 5);
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

  it('the fused direct loss (widest pass, 256-bit pass) equals the BLAS form (NSA_FLOW_SIMD=0) to rounding', () => {
    // 2000 iterations: the solver refuses the expanded loss once it would cancel more than 4 digits
    // (loss² below 10⁻⁴ of ‖A‖² + the model's ≈ 2‖A‖², a normalized loss below ≈ 1.4·10⁻²), so most
    // entries are direct ones (checked below). The residual entries are ~10⁻³ of the data here, so
    // each carries ~10⁻¹³ of relative rounding; the sums of squares agreed to 4·10⁻¹⁶. 10⁻¹² still fails
    // a pass that skipped one row of 400 (a change of ~2.5·10⁻³) or one column of 100.
    const fused = run(undefined, 2000);
    const narrow = run('256', 2000);
    const blas = run('0', 2000);
    // The factors do not depend on how the loss is computed: the same bits.
    expect(fused.H.data).toEqual(blas.H.data);
    expect(narrow.W[3]!.data).toEqual(blas.W[3]!.data);
    let worstFused = 0;
    let worstNarrow = 0;
    for (let i = 0; i < blas.traces.loss.length; i++) {
      const ref = blas.traces.loss[i]!;
      worstFused = Math.max(worstFused, Math.abs(fused.traces.loss[i]! - ref) / ref);
      worstNarrow = Math.max(worstNarrow, Math.abs(narrow.traces.loss[i]! - ref) / ref);
    }
    expect(worstFused).toBeLessThan(1e-12);
    expect(worstNarrow).toBeLessThan(1e-12);
    // The direct values are in use: most entries are below where the expansion is refused.
    const direct = blas.traces.normalizedLoss.filter((l) => l < 1e-2).length;
    expect(direct).toBeGreaterThan(1000);
  });
});
