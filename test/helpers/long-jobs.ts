// Deterministic inputs and long-running async solves of every job family, for the runtime's
// teardown, progress-error and soak tests (and their child-process helper).
import {
  nmf,
  nsaFlow,
  nsaFlowExplicit,
  ntf,
  retractBatchAsync,
  stratifiedNmf,
  stratifiedNtf,
  type AsyncOptions,
  type Matrix,
  type Tensor,
} from '../../lib/index.js';

/** Deterministic values in [0, 1) (an LCG, so that every run sees the same data). */
export function uniform(n: number, seed: number): Float64Array {
  const out = new Float64Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = s / 4294967296;
  }
  return out;
}
export const uniformMatrix = (rows: number, cols: number, seed: number): Matrix => ({ rows, cols, data: uniform(rows * cols, seed) });
export const uniformTensor = (shape: number[], seed: number): Tensor => ({ shape, data: uniform(shape.reduce((a, b) => a * b, 1), seed) });

type Async = AsyncOptions<{ iteration: number }>;

/**
 * One long solve per family. `total` is the progress records' `total` (maxIterations, or the batch
 * size for retractBatchAsync), far more than the work a test lets run: a solve that is not stopped
 * runs for minutes.
 */
export const longSolves: Record<string, { total: number; run: (o: Async) => Promise<unknown> }> = {
  nmf: { total: 1_000_000, run: (o) => nmf(uniformMatrix(2000, 1000, 1), 10, { maxIterations: 1_000_000, ...o }) },
  stratifiedNmf: {
    total: 1_000_000,
    run: (o) => stratifiedNmf([uniformMatrix(300, 200, 2), uniformMatrix(400, 200, 3), uniformMatrix(300, 200, 4)], 5, { maxIterations: 1_000_000, ...o }),
  },
  retractBatchAsync: {
    total: 2048,
    run: (o) => retractBatchAsync(uniformTensor([2048, 100, 10], 5), { type: 'newtonSchulz', nsIterations: 10_000, ...o }),
  },
  stratifiedNtf: {
    total: 10_000_000,
    run: (o) => stratifiedNtf([uniformTensor([30, 40, 50], 6), uniformTensor([20, 40, 50], 7)], 3, { strataRank: 2, maxIterations: 10_000_000, ...o }),
  },
  nsaFlow: {
    total: 10_000_000,
    run: (o) => nsaFlow(uniformMatrix(2000, 20, 8), { optimizer: 'asgd', maxIterations: 10_000_000, tolerance: -1e30, learningRate: 1e-3, ...o }),
  },
  ntf: { total: 1_000_000, run: (o) => ntf(uniformTensor([40, 50, 60], 9), 4, { maxIterations: 1_000_000, ...o }) },
  nsaFlowExplicit: {
    total: 10_000_000,
    run: (o) => nsaFlowExplicit(uniformMatrix(2000, 20, 10), { w: 0.5, maxIterations: 10_000_000, tolerance: 0, ...o }),
  },
};
