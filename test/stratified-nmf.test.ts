import { describe, expect, it } from 'vitest';

import {
  AbortError,
  setBlasThreads,
  stratifiedNmf,
  stratifiedNmfLoss,
  stratifiedNmfSync,
  toCsr,
  type CsrMatrix,
  type Matrix,
  type StratifiedNmfResult,
} from '../lib/index.js';
import { directStratifiedLoss, gradientMapping, largestIncrease, matmul, snmfCase } from './helpers/snmf-cases.js';
import { readCorpus } from './helpers/snmf-corpus.js';
import { fxMatrix, relativeError } from './helpers/shared.js';

setBlasThreads(1);

/** Asserts both the error class and the message. */
function throws(fn: () => unknown, cls: new (...args: any[]) => Error, message: RegExp): void {
  let error: unknown;
  try {
    fn();
  } catch (e) {
    error = e;
  }
  expect(error).toBeInstanceOf(cls);
  expect((error as Error).message).toMatch(message);
}
 // the fixtures were recorded with one BLAS thread

function expectSnapshot(r: StratifiedNmfResult, snap: any): void {
  // Multiplicative-update runs: 1e-10 (fixtures README; measured amplification about 1).
  expect(relativeError(r.V.data, fxMatrix(snap.V).data)).toBeLessThan(1e-10);
  expect(relativeError(r.H.data, fxMatrix(snap.H).data)).toBeLessThan(1e-10);
  snap.W.forEach((w: any, s: number) => expect(relativeError(r.W[s]!.data, fxMatrix(w).data)).toBeLessThan(1e-10));
  // The last trace entry is the loss after the last iteration, the snapshot's loss.
  expect(Math.abs(r.loss - snap.loss) / snap.loss).toBeLessThan(1e-10);
  expect(Math.abs(r.normalizedLoss - snap.normalized_loss) / snap.normalized_loss).toBeLessThan(1e-10);
}

describe('stratifiedNmf: fixture parity (stratified_nmf.json)', () => {
  for (const [index, sparse] of [[0, false], [1, true]] as const) {
    const c = snmfCase(index);
    const strata = sparse ? c.A.map(toCsr) : c.A;
    it(`${c.name}: snapshots after 1, 10, 100 iterations and the loss array`, () => {
      for (const snap of c.raw.snapshots) {
        const r = stratifiedNmfSync(strata, c.rank, { solver: 'mu', maxIterations: snap.iterations, init: c.init });
        expect(r.iterations).toBe(snap.iterations);
        expectSnapshot(r, snap);
        if (snap.iterations === 100) {
          // loss[i] is the loss after i iterations, as the reference's loss_array; 100 + the final one.
          expect(r.traces.loss.length).toBe(101);
          expect(relativeError(r.traces.loss.subarray(0, 100), c.lossArray)).toBeLessThan(1e-10);
          expect(Array.from(r.traces.iteration.subarray(0, 3))).toEqual([0, 1, 2]);
        }
      }
    });
  }

  it('paper_synthetic_4strata_100x100_rank5: 10 000 iterations to normalized loss 0.0010567', () => {
    const c = snmfCase(2);
    const r = stratifiedNmfSync(c.A, c.rank, { solver: 'mu', maxIterations: 10_000, init: c.init });
    const f = c.raw.final;
    expect(relativeError(r.V.data, fxMatrix(f.V).data)).toBeLessThan(1e-10);
    expect(relativeError(r.H.data, fxMatrix(f.H).data)).toBeLessThan(1e-10);
    f.W.forEach((w: any, s: number) => expect(relativeError(r.W[s]!.data, fxMatrix(w).data)).toBeLessThan(1e-10));
    expect(relativeError(r.traces.loss.subarray(0, 10_000), c.lossArray)).toBeLessThan(1e-10);
    // Each recorded loss entry on its own, the small late ones included (the direct fallback's job):
    for (const at of c.raw.loss_at) {
      const i = at.iterations as number; // loss after i iterations
      expect(Math.abs(r.traces.loss[i]! - at.loss) / at.loss).toBeLessThan(1e-10);
      expect(Math.abs(r.traces.normalizedLoss[i]! - at.normalized_loss) / at.normalized_loss).toBeLessThan(1e-10);
    }
    // 0.0010567 is the fixture's rounded value of the final normalized loss.
    expect(r.traces.normalizedLoss[10_000]).toBeCloseTo(0.0010567, 7);
  });
});

describe('stratifiedNmf: API', () => {
  const c = snmfCase(0);

  it('async form equals the sync form, reports progress and records settings', async () => {
    const seen: number[] = [];
    const a = await stratifiedNmf(c.A, 3, { maxIterations: 30, seed: 7, onProgress: (p) => seen.push(p.loss), progressIntervalMs: 0 });
    const b = stratifiedNmfSync(c.A, 3, { maxIterations: 30, seed: 7 });
    // Same seed, one BLAS thread: bit-identical.
    expect(a.H.data).toEqual(b.H.data);
    expect(a.traces.loss).toEqual(b.traces.loss);
    // Progress carries the losses of the trace (iterations 0…29).
    expect(seen.length).toBeGreaterThan(0);
    expect(a.traces.loss).toContain(seen[0]);
    expect(a.settings).toEqual({ rank: 3, solver: 'hals', maxIterations: 30, vScaling: 2, tolerance: 0, init: 'random', seed: 7, lossEvery: 1, epsilon: 1e-9, certificateTolerance: 0, restarts: 1 });
    // Settings are plain JSON and repeat the run.
    const { rank, ...options } = JSON.parse(JSON.stringify(a.settings));
    const again = stratifiedNmfSync(c.A, rank, options);
    expect(again.H.data).toEqual(a.H.data);
  });

  it('the certificate is the gradient mapping of ½loss²/Σ‖A(s)‖² over V, each W(s) and H (evaluated here)', () => {
    for (const maxIterations of [0, 200]) {
      const r = stratifiedNmfSync(c.A, 3, { maxIterations, init: c.init });
      const m = r.H.cols;
      const normA2 = c.A.reduce((acc, a) => acc + a.data.reduce((t, x) => t + x * x, 0), 0);
      // R(s) = 1v(s)ᵀ + W(s)H − A(s); ∇v(s) = R(s)ᵀ1, ∇W(s) = R(s)Hᵀ, ∇H = Σ W(s)ᵀR(s), all over Σ‖A(s)‖².
      const gV = new Float64Array(r.V.data.length);
      const gH = new Float64Array(r.H.data.length);
      let expected = 0;
      c.A.forEach((A, s) => {
        const WH = matmul(r.W[s]!, r.H);
        const R = WH.data.map((x, k) => x + r.V.data[s * m + (k % m)]! - A.data[k]!);
        const Rm = { rows: A.rows, cols: m, data: R };
        for (let k = 0; k < R.length; k++) gV[s * m + (k % m)]! += R[k]! / normA2;
        const gW = matmul(Rm, { rows: m, cols: 3, data: Float64Array.from({ length: 3 * m }, (_, k) => r.H.data[(k % 3) * m + Math.floor(k / 3)]!) });
        expected = Math.max(expected, gradientMapping(r.W[s]!.data, gW.data.map((x) => x / normA2)));
        const Wt = { rows: 3, cols: A.rows, data: Float64Array.from({ length: 3 * A.rows }, (_, k) => r.W[s]!.data[(k % A.rows) * 3 + Math.floor(k / A.rows)]!) };
        matmul(Wt, Rm).data.forEach((x, k) => (gH[k]! += x / normA2));
      });
      expected = Math.max(expected, gradientMapping(r.V.data, gV), gradientMapping(r.H.data, gH));
      expect(Math.abs(r.certificate - expected)).toBeLessThan(1e-9 * expected);
    }
  });

  it('the random init follows the reference distribution (V ~ U(0,1), W, H ~ U(0,1)/√r)', () => {
    const r = stratifiedNmfSync(c.A, 3, { maxIterations: 0, seed: 3 });
    const maxOf = (x: Float64Array) => x.reduce((m, v) => Math.max(m, v), 0);
    // 0 iterations returns the init: V in [0, 1), H in [0, 1/√3).
    expect(maxOf(r.V.data)).toBeLessThan(1);
    expect(maxOf(r.V.data)).toBeGreaterThan(0.9); // 36 uniform draws all below 0.9 has chance 0.9³⁶ ≈ 2%… seeded: fixed
    expect(maxOf(r.H.data)).toBeLessThan(1 / Math.sqrt(3));
    expect(r.iterations).toBe(0);
    expect(r.traces.loss.length).toBe(1);
  });

  it('abort rejects with AbortError', async () => {
    const big = snmfCase(2);
    const controller = new AbortController();
    const p = stratifiedNmf(big.A, 5, { maxIterations: 1_000_000, signal: controller.signal });
    setTimeout(() => controller.abort(), 20);
    await expect(p).rejects.toBeInstanceOf(AbortError);
  });

  it('tolerance stops early and lossEvery thins the trace', () => {
    const r = stratifiedNmfSync(c.A, 3, { maxIterations: 5000, tolerance: 1e-6, init: c.init });
    expect(r.stopReason).toBe('plateau');
    expect(r.iterations).toBeLessThan(5000);
    const n = r.traces.loss.length;
    // The last recorded step (before the final loss) changed by at most 1e-6 relative.
    expect(Math.abs(r.traces.loss[n - 3]! - r.traces.loss[n - 2]!) / r.traces.loss[n - 3]!).toBeLessThanOrEqual(1e-6);
    const t = stratifiedNmfSync(c.A, 3, { maxIterations: 100, lossEvery: 25, init: c.init });
    expect(Array.from(t.traces.iteration)).toEqual([0, 25, 50, 75, 100]);
    // Thinning the trace does not change the iterates: the same losses as the full trace at those points.
    expect(t.traces.loss[2]).toBe(stratifiedNmfSync(c.A, 3, { maxIterations: 100, init: c.init }).traces.loss[50]);
  });

  it('fromLabels splits rows by sorted label and equals the explicit strata', async () => {
    // Interleave the three strata's rows under labels 'b', 'a', 'c'.
    const rows: Float64Array[] = [];
    const labels: string[] = [];
    const names = ['b', 'a', 'c'];
    const maxRows = Math.max(...c.A.map((a) => a.rows));
    for (let i = 0; i < maxRows; i++)
      c.A.forEach((a, s) => {
        if (i < a.rows) {
          rows.push(a.data.subarray(i * 12, (i + 1) * 12));
          labels.push(names[s]!);
        }
      });
    const A: Matrix = { rows: rows.length, cols: 12, data: Float64Array.from(rows.flatMap((r) => Array.from(r))) };
    const r = await stratifiedNmf.fromLabels(A, labels, 3, { maxIterations: 20, seed: 1 });
    expect(r.labels).toEqual(['a', 'b', 'c']);
    const direct = stratifiedNmfSync([c.A[1]!, c.A[0]!, c.A[2]!], 3, { maxIterations: 20, seed: 1 });
    expect(r.H.data).toEqual(direct.H.data);
    expect(r.rowIndices[0]![0]).toBe(1); // the first 'a' row is row 1 of A
    const csr = stratifiedNmfSync.fromLabels(toCsr(A), labels, 3, { maxIterations: 20, seed: 1 });
    expect(relativeError(csr.H.data, direct.H.data)).toBeLessThan(1e-12);
  });

  it("'nndsvd' init starts at a lower loss than 'random' on real text", () => {
    const { tfidf, strata } = readCorpus('austen');
    const a = stratifiedNmfSync.fromLabels(tfidf, strata, 6, { maxIterations: 0, init: 'nndsvd' });
    const b = stratifiedNmfSync.fromLabels(tfidf, strata, 6, { maxIterations: 0 });
    // NNDSVD approximates the data; the reference's U(0,1) init is far above TF-IDF values (≤ 1, mostly ≈ 0).
    expect(a.traces.normalizedLoss[0]).toBeLessThan(1);
    expect(a.traces.normalizedLoss[0]).toBeLessThan(b.traces.normalizedLoss[0]! / 10);
  });
});

describe('stratifiedNmf: invariants on real data', () => {
  it('austen TF-IDF by novel (CSR): the loss never increases and all factors stay non-negative', () => {
    const { tfidf, strata } = readCorpus('austen');
    const r = stratifiedNmfSync.fromLabels(tfidf, strata, 8, { maxIterations: 60, seed: 2 });
    // Theorem 2 of the paper: non-increasing; 1e-12 relative slack for rounding.
    expect(largestIncrease(r.traces.loss)).toBeLessThanOrEqual(1e-12);
    expect(r.loss).toBeLessThan(r.traces.loss[0]! * 0.5);
    const minOf = (x: Float64Array) => x.reduce((m, v) => Math.min(m, v), Infinity);
    expect(minOf(r.V.data)).toBeGreaterThanOrEqual(0);
    expect(minOf(r.H.data)).toBeGreaterThanOrEqual(0);
    for (const w of r.W) expect(minOf(w.data)).toBeGreaterThanOrEqual(0);
  });

  it('the tracked loss equals the direct residual norm (dense and CSR)', () => {
    const c = snmfCase(1);
    for (const strata of [c.A, c.A.map(toCsr)]) {
      const r = stratifiedNmfSync(strata, 3, { maxIterations: 7, init: c.init });
      const direct = directStratifiedLoss(c.A, r.V, r.W, r.H);
      expect(Math.abs(r.loss - direct) / direct).toBeLessThan(1e-12);
    }
  });

  it('near-perfect fit: the loss stays accurate where the expansion would cancel every digit', () => {
    // A(s) = 1v(s)ᵀ + W(s)H exactly (up to rounding of the products), then perturbed by 1e-9.
    const c = snmfCase(0);
    const truth = c.raw.ground_truth;
    const V = fxMatrix(truth.v_true);
    const W = truth.W_true.map((w: any) => fxMatrix(w)) as Matrix[];
    const H = fxMatrix(truth.H_true);
    const A = W.map((w, s) => {
      const m = matmul(w, H);
      for (let i = 0; i < m.rows; i++)
        for (let j = 0; j < m.cols; j++) m.data[i * m.cols + j]! += V.data[s * m.cols + j]! + 1e-9 * (((i * 7 + j * 3) % 5) / 5);
      return m;
    });
    const direct = directStratifiedLoss(A, V, W, H);
    const normA = Math.sqrt(A.reduce((acc, a) => acc + a.data.reduce((t, x) => t + x * x, 0), 0));
    // loss/‖A‖ ≈ 2e-10, so loss² ≈ 4e-20·‖A‖²: the expansion's rounding (≈ 1e-16·‖A‖²) is
    // a million times the quantity itself, and only the direct form has any correct digit.
    expect(direct / normA).toBeLessThan(1e-9);
    for (const strata of [A, A.map(toCsr)]) {
      const loss = stratifiedNmfLoss(strata, { V, W, H });
      expect(Math.abs(loss - direct) / direct).toBeLessThan(1e-6);
    }
    const r = stratifiedNmfSync(A, 3, { maxIterations: 3, init: { V, W, H } });
    expect(Math.abs(r.traces.loss[0]! - direct) / direct).toBeLessThan(1e-6);
  });

  it('a CSR problem whose dense form needs 80 GB runs within 1 GB peak RSS', () => {
    // 4 strata of 50 000 × 50 000 (dense: 4·2.5e9·8 B = 80 GB), 10⁶ stored entries in all.
    const n = 50_000;
    const perRow = 5;
    let state = 12345;
    const next = () => (state = (Math.imul(state, 1103515245) + 12345) >>> 0) / 4294967296;
    const strata: CsrMatrix[] = [];
    for (let s = 0; s < 4; s++) {
      const indptr = new Int32Array(n + 1);
      const indices = new Int32Array(n * perRow);
      const data = new Float64Array(n * perRow);
      for (let i = 0; i < n; i++) {
        const cols = new Set<number>();
        while (cols.size < perRow) cols.add(Math.floor(next() * n));
        [...cols].sort((a, b) => a - b).forEach((j, q) => {
          indices[i * perRow + q] = j;
          data[i * perRow + q] = next() + s;
        });
        indptr[i + 1] = (i + 1) * perRow;
      }
      strata.push({ rows: n, cols: n, indptr, indices, data });
    }
    const r = stratifiedNmfSync(strata, 4, { maxIterations: 3 });
    expect(r.iterations).toBe(3);
    expect(largestIncrease(r.traces.loss)).toBeLessThanOrEqual(1e-12);
    // maxRSS is in KiB: the whole test process, vitest included, peaked below 1 GiB.
    expect(process.resourceUsage().maxRSS).toBeLessThan(1024 * 1024);
  });
});

describe('stratifiedNmf: bad input', () => {
  const c = snmfCase(0);
  const A = c.A;

  it('negative or NaN entries name the stratum and the first offending position', () => {
    const bad = { ...A[1]!, data: A[1]!.data.slice() };
    bad.data[2 * 12 + 5] = -0.5;
    throws(() => stratifiedNmfSync([A[0]!, bad], 2), RangeError, /non-negative values in strata\[1\] but received -0\.5 at \[2, 5\]/);
    bad.data[2 * 12 + 5] = NaN;
    throws(() => stratifiedNmfSync([A[0]!, bad], 2), RangeError, /finite values in strata\[1\] but received NaN at \[2, 5\]/);
    const csr = toCsr(A[0]!);
    const data = csr.data.slice();
    data[3] = -1;
    throws(() => stratifiedNmfSync([{ ...csr, data }], 2), RangeError, /non-negative values in strata\[0\] but received -1 at \[0, 3\]/);
  });

  it('strata with different column counts, empty strata, rank out of range', () => {
    const narrow = { rows: 2, cols: 11, data: new Float64Array(22) };
    throws(() => stratifiedNmfSync([A[0]!, narrow], 2), RangeError, /Expected strata\[1\] to have 12 columns \(as strata\[0\]\) but received 11/);
    throws(() => stratifiedNmfSync([A[0]!, { rows: 0, cols: 12, data: new Float64Array(0) }], 2), RangeError, /Expected a non-empty matrix for strata\[1\] but received 0 rows/);
    throws(() => stratifiedNmfSync([], 2), RangeError, /at least one stratum/);
    throws(() => stratifiedNmfSync(A, 0), RangeError, /positive integer for rank but received 0/);
    throws(() => stratifiedNmfSync(A, 13), RangeError, /rank in \[1, 12\] \(min of columns and total rows\) for rank but received 13/);
    throws(() => stratifiedNmfSync(A, 2.5), TypeError, /Expected a positive integer for rank but received 2\.5/);
  });

  it('malformed CSR: each defect named', () => {
    const base = toCsr(A[0]!);
    const withIndptr = (f: (p: Int32Array) => void) => {
      const indptr = base.indptr.slice();
      f(indptr);
      return { ...base, indptr };
    };
    throws(() => stratifiedNmfSync([{ ...base, indptr: Array.from(base.indptr) as any }], 2), TypeError, /Int32Array of length 11 \(rows\+1\) for strata\[0\]\.indptr/);
    throws(() => stratifiedNmfSync([{ ...base, indptr: base.indptr.subarray(1) }], 2), RangeError, /length 11 \(rows\+1\) for strata\[0\]\.indptr but received a Int32Array of length 10/);
    throws(() => stratifiedNmfSync([withIndptr((p) => (p[0] = 1))], 2), RangeError, /indptr\[0\] = 0 for strata\[0\]\.indptr but received 1/);
    throws(() => stratifiedNmfSync([withIndptr((p) => (p[3] = p[2]! - 1))], 2), RangeError, /non-decreasing strata\[0\]\.indptr but received indptr\[3\]/);
    throws(() => stratifiedNmfSync([{ ...base, indices: base.indices.subarray(1) }], 2), RangeError, /for strata\[0\]\.indices but received a Int32Array of length/);
    const indices = base.indices.slice();
    indices[4] = 12;
    throws(() => stratifiedNmfSync([{ ...base, indices }], 2), RangeError, /column indices in \[0, 12\) for strata\[0\]\.indices but received 12 at position 4 \(row 0\)/);
    const unsorted = base.indices.slice();
    [unsorted[0], unsorted[1]] = [unsorted[1]!, unsorted[0]!];
    throws(() => stratifiedNmfSync([{ ...base, indices: unsorted }], 2), RangeError, /strictly increasing column indices within each row of strata\[0\] but received/);
    throws(() => stratifiedNmfSync([{ ...base, data: new Float32Array(base.data.length) as any }], 2), TypeError, /Expected a Float64Array of length \d+ \(indptr\[rows\]\) for strata\[0\]\.data but received a Float32Array/);
  });

  it('the raw binding re-checks CSR structure instead of crashing', async () => {
    const { native } = await import('../lib/native.js');
    const base = toCsr(A[0]!);
    const indices = base.indices.slice();
    indices[0] = 1e6;
    const opts = { maxIterations: 1, vScaling: 2, tolerance: 0, lossEvery: 1, init: 'random' as const, seed: 0 };
    throws(() => native().stratifiedNmf([{ ...base, indices }], 12, 2, opts), RangeError, /column indices/);
    throws(() => native().stratifiedNmf([{ rows: 10, cols: 12, data: new Float64Array(3) }], 12, 2, opts), RangeError, /Expected a Float64Array of length 120 \(rows·cols\) for strata\[0\]\.data but received a Float64Array of length 3/);
  });

  it('labels length, unknown init, given factors of the wrong shape, unknown options', () => {
    throws(() => stratifiedNmfSync.fromLabels(A[0]!, [1, 2, 3], 2), RangeError, /labels of length 10 \(the rows of A\) but received an array of length 3/);
    throws(() => stratifiedNmfSync.fromLabels(A[0]!, new Array(10).fill(null), 2), TypeError, /Expected a finite number or a string for labels\[0\] but received null/);
    throws(() => stratifiedNmfSync(A, 2, { init: 'svd' as any }), RangeError, /Expected 'random', 'nndsvd' or an object \{V, W, H\} of given factors for options\.init of stratifiedNmfSync\(\) but received the string "svd"/);
    throws(() => stratifiedNmfSync(A, 3, { init: { ...c.init, V: c.init.W[0]! } }), RangeError, /Expected a 3×12 matrix for options\.init\.V but received 10×3/);
    throws(() => stratifiedNmfSync(A, 3, { init: { W: c.init.W.slice(1) } }), RangeError, /array of 3 matrices \(one per stratum\) for options\.init\.W/);
    throws(() => stratifiedNmfSync(A, 2, { init: c.init }), RangeError, /Expected a 10×2 matrix for options\.init\.W\[0\] but received 10×3/);
    throws(() => stratifiedNmfSync(A, 3, { init: { U: 1 } as any }), TypeError, /Unknown key 'U' in options\.init/);
    throws(() => stratifiedNmfSync(A, 3, { maxIter: 3 } as any), TypeError, /Unknown option 'maxIter'/);
    throws(() => stratifiedNmfSync(A, 3, { vScaling: -1 }), RangeError, /Expected an integer in \[0, 1000\] for options\.vScaling of stratifiedNmfSync\(\) but received -1/);
  });

  it('async bad input rejects (never throws synchronously)', async () => {
    await expect(stratifiedNmf(A, 0)).rejects.toBeInstanceOf(RangeError);
    await expect(stratifiedNmf(A, 0)).rejects.toThrow(/positive integer for rank but received 0/);
    await expect(stratifiedNmf.fromLabels(A[0]!, [1], 2)).rejects.toBeInstanceOf(RangeError);
    await expect(stratifiedNmf.fromLabels(A[0]!, [1], 2)).rejects.toThrow(/labels of length 10/);
  });
});
