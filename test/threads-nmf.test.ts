// Plain NMF on its thread team (native/kernels/nmf.cpp, docs/threads.md "Scaling"): with 2 threads the
// dense data products A·Hᵀ and AᵀW are split over the team by rows of A and by columns of A (one
// single-threaded GEMM per block), each in one pass with the update of the same rows of W or Hᵀ
// (HALS; MU without inner repeats), else followed by separate row passes (MU with inner repeats, CSR
// data: HALS sweeps, MU steps with their r×r products XG). Every entry of a product is the same dot product whichever block it falls in, and every
// row of a factor is updated by one thread in the same order, so the expected gap between 1 and 2
// threads is 0: the same bits. A skipped, repeated or misplaced block leaves stale or wrong rows in a
// product, an O(1) change that the first iteration's loss already shows.
import { availableParallelism } from 'node:os';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { getBlasThreads, nmfSync, setBlasThreads, type CsrMatrix, type Matrix, type NmfOptions, type NmfResult } from '../lib/index.js';
import { getSmallJobFlops, setSmallJobFlops } from '../lib/runtime.js';
import { lcgMatrix } from './helpers/lcg.js';

// Rank 16 on 1203×901: the team's size is decided on (rows + cols)·r² = 5.4·10⁵ and the MU passes
// split at rows·r² ≥ 2·10⁵ (3.1·10⁵ and 2.3·10⁵ here), both above the team's threshold (kTeamMinWork,
// 2·10⁵), and the products' 1.7·10⁷ flops too, so with 2 threads every pass named above is split.
// Row and column counts that are not multiples of the blocks' 8 leave a short last block.
// The small-job rule (lib/runtime.ts) is switched off meanwhile so the 2 threads are never lowered to 1.
const tall = lcgMatrix(1203, 901, 7);
const wide = lcgMatrix(901, 1203, 11);
const rank = 16;

/** The entries of A below `keep` dropped, as CSR (the unweighted solve of CSR data: the same team passes, serial products). */
function sparsified(A: Matrix, keep: number): CsrMatrix {
  const indptr = new Int32Array(A.rows + 1);
  const indices: number[] = [];
  const values: number[] = [];
  for (let i = 0; i < A.rows; i++) {
    for (let j = 0; j < A.cols; j++) {
      const a = A.data[i * A.cols + j]!;
      if (a >= keep) indices.push(j), values.push(a);
    }
    indptr[i + 1] = indices.length;
  }
  return { rows: A.rows, cols: A.cols, indptr, indices: Int32Array.from(indices), data: Float64Array.from(values) };
}

let saved: { threads: number; smallJob: number };
beforeAll(() => {
  saved = { threads: getBlasThreads(), smallJob: setSmallJobFlops(0) };
});
afterAll(() => {
  setBlasThreads(saved.threads);
  setSmallJobFlops(saved.smallJob);
});

function withThreads(threads: number, run: () => NmfResult): NmfResult {
  setBlasThreads(threads);
  try {
    return run();
  } finally {
    setBlasThreads(saved.threads);
  }
}

function expectSameRun(A: Matrix | CsrMatrix, options: NmfOptions): void {
  const run = () => nmfSync(A, rank, { maxIterations: 12, tolerance: 0, seed: 3, ...options });
  const one = withThreads(1, run);
  const two = withThreads(2, run);
  expect(two.iterations).toBe(one.iterations);
  expect(two.W.data).toEqual(one.W.data);
  expect(two.H.data).toEqual(one.H.data);
  expect(two.traces.loss).toEqual(one.traces.loss);
  expect(two.certificate).toBe(one.certificate);
  expect(two.loss).toBe(one.loss);
}

describe('nmf with 2 threads gives the 1-thread result bit for bit', () => {
  it('has at least 2 cores to split over (else the comparisons below are of one thread with itself)', () => {
    expect(getSmallJobFlops()).toBe(0);
    if (availableParallelism() < 2) console.warn('threads-nmf: one core, the team cannot split');
  });

  it("HALS, tall data, the certificate checked every iteration (its products on the team too)", () => {
    expectSameRun(tall, { solver: 'hals', certificateTolerance: 1e-14 });
  });

  it('HALS, wide data (first iteration fits only H), penalties and inner sweeps', () => {
    expectSameRun(wide, { solver: 'hals', innerSweeps: 3, l1W: 0.01, l2H: 0.1 });
  });

  it('MU, tall data, inner repeats (separate passes: the split XG and the per-row changes)', () => {
    expectSameRun(tall, { solver: 'mu', innerSweeps: 3, innerTolerance: 0.5 });
  });

  it('MU, wide data, penalties, loss every 3rd iteration (products and updates in one pass)', () => {
    expectSameRun(wide, { solver: 'mu', l2W: 0.1, l1H: 0.01, lossEvery: 3 });
  });

  it('CSR data (a third of the entries), HALS and MU', () => {
    const csr = sparsified(tall, 2 / 3);
    expectSameRun(csr, { solver: 'hals' });
    expectSameRun(csr, { solver: 'mu', innerSweeps: 2 });
  });
});
