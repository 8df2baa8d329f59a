// Stratified-NMF with one rank per stratum (docs/stratified-nmf.md, "Per-stratum ranks"): nested
// topics, stratum s uses the first rₛ rows of H. Stored as W(s) nₛ×R (R = max rₛ) with its columns
// ≥ rₛ fixed at 0, which the multiplicative updates keep: so a run with a rank list is the scalar-rank
// run from a zero-padded start, bit for bit, and a list of equal ranks is the scalar run.
import { describe, expect, it } from 'vitest';

import {
  reconstruct,
  setBlasThreads,
  stratifiedNmf,
  stratifiedNmfLoss,
  stratifiedNmfSync,
  type CsrMatrix,
  type Matrix,
  type StratifiedNmfResult,
} from '../lib/index.js';
import { native } from '../lib/native.js';
import { readLabels, readMatrix } from '../lib/io/index.js';
import { runMain } from './helpers/cli-run.js';
import { gradientMapping, largestIncrease, matmul, snmfCase } from './helpers/snmf-cases.js';
import { readCorpus, readNpy } from './helpers/snmf-corpus.js';
import { dataFile } from './helpers/shared.js';

setBlasThreads(1); // bit-for-bit comparisons between runs

/** The error a call throws (undefined when it does not throw). */
function thrown(fn: () => unknown): Error | undefined {
  try {
    fn();
  } catch (e) {
    return e as Error;
  }
  return undefined;
}

/** W (n×R) with its columns ≥ rs dropped. */
function firstColumns(W: Matrix, rs: number): Matrix {
  const data = new Float64Array(W.rows * rs);
  for (let i = 0; i < W.rows; i++) data.set(W.data.subarray(i * W.cols, i * W.cols + rs), i * rs);
  return { rows: W.rows, cols: rs, data };
}

/** W (n×rs) padded with zero columns to n×R. */
function padded(W: Matrix, R: number): Matrix {
  const data = new Float64Array(W.rows * R);
  for (let i = 0; i < W.rows; i++) data.set(W.data.subarray(i * W.cols, (i + 1) * W.cols), i * R);
  return { rows: W.rows, cols: R, data };
}

/** The first rs rows of H. */
function firstRows(H: Matrix, rs: number): Matrix {
  return { rows: rs, cols: H.cols, data: H.data.slice(0, rs * H.cols) };
}

function expectSameRun(a: StratifiedNmfResult, b: StratifiedNmfResult): void {
  expect(a.V.data).toEqual(b.V.data);
  expect(a.H.data).toEqual(b.H.data);
  a.W.forEach((W, s) => expect(W.data).toEqual(b.W[s]!.data));
  expect(a.traces.loss).toEqual(b.traces.loss);
  expect(a.loss).toBe(b.loss);
  expect(a.certificate).toBe(b.certificate);
  expect(a.iterations).toBe(b.iterations);
}

describe('per-stratum ranks: the same runs as one rank', () => {
  const c = snmfCase(0); // 3 dense strata 10, 15, 20 × 12, rank 3

  it('a list of equal ranks is the scalar-rank run bit for bit (random, nndsvd, given; dense, CSR, masked)', () => {
    for (const init of ['random', 'nndsvd', c.init] as const) {
      const one = stratifiedNmfSync(c.A, 3, { maxIterations: 40, seed: 5, init });
      const list = stratifiedNmfSync(c.A, [3, 3, 3], { maxIterations: 40, seed: 5, init });
      expectSameRun(list, one);
      expect(list.settings.rank).toEqual([3, 3, 3]);
      expect(one.settings.rank).toBe(3);
    }
    const { tfidf, strata } = readCorpus('austen');
    const one = stratifiedNmfSync.fromLabels(tfidf, strata, 4, { maxIterations: 15, seed: 2, init: 'nndsvd' });
    const list = stratifiedNmfSync.fromLabels(tfidf, strata, [4, 4, 4, 4, 4, 4], { maxIterations: 15, seed: 2, init: 'nndsvd' });
    expectSameRun(list, one);
    const mask = c.A.map((A, s) => Uint8Array.from(A.data, (_, k) => ((k + s) % 7 === 0 ? 1 : 0)));
    expectSameRun(stratifiedNmfSync(c.A, [3, 3, 3], { maxIterations: 30, seed: 1, mask }), stratifiedNmfSync(c.A, 3, { maxIterations: 30, seed: 1, mask }));
  });

  it('the multiplicative updates keep exact zeros: a rank list is the scalar run from a zero-padded start', () => {
    // Given nₛ×rₛ factors vs. the same factors padded with zero columns to rank 3: V, H, the kept
    // columns of W(s) and every recorded loss agree to the last bit, and the padded columns stay 0.
    const ranks = [1, 3, 0];
    const W = c.init.W.map((w, s) => firstColumns(w, ranks[s]!));
    const mask = c.A.map((A, s) => (s === 1 ? Uint8Array.from(A.data, (_, k) => (k % 5 === 0 ? 1 : 0)) : null));
    for (const options of [{}, { mask }]) {
      const list = stratifiedNmfSync(c.A, ranks, { solver: 'mu', maxIterations: 60, init: { V: c.init.V, W, H: c.init.H }, ...options });
      const scalar = stratifiedNmfSync(c.A, 3, { solver: 'mu', maxIterations: 60, init: { V: c.init.V, W: W.map((w) => padded(w, 3)), H: c.init.H }, ...options });
      expect(list.V.data).toEqual(scalar.V.data);
      expect(list.H.data).toEqual(scalar.H.data);
      expect(list.traces.loss).toEqual(scalar.traces.loss);
      scalar.W.forEach((w, s) => {
        expect(list.W[s]!.data).toEqual(firstColumns(w, ranks[s]!).data);
        for (let i = 0; i < w.rows; i++) for (let k = ranks[s]!; k < 3; k++) expect(w.data[i * 3 + k]).toBe(0);
      });
      // The scalar run counts the padded zeros as variables (with a gradient there), the list run not.
      expect(list.certificate).toBeLessThanOrEqual(scalar.certificate);
    }
  });

  it('random and nndsvd starts are the scalar draws with the fixed columns set to 0', () => {
    const ranks = [2, 0, 3];
    for (const init of ['random', 'nndsvd'] as const) {
      const list = stratifiedNmfSync(c.A, ranks, { maxIterations: 0, seed: 9, init });
      const one = stratifiedNmfSync(c.A, 3, { maxIterations: 0, seed: 9, init });
      expect(list.V.data).toEqual(one.V.data);
      expect(list.H.data).toEqual(one.H.data);
      list.W.forEach((w, s) => expect(w.data).toEqual(firstColumns(one.W[s]!, ranks[s]!).data));
    }
  });
});

describe('per-stratum ranks: the model', () => {
  const c = snmfCase(0);

  it('shapes: W(s) is nₛ×rₛ, H is max rₛ × m; the settings repeat the run', async () => {
    const r = stratifiedNmfSync(c.A, [2, 1, 0], { maxIterations: 20, seed: 3 });
    expect(r.W.map((w) => [w.rows, w.cols])).toEqual([[10, 2], [15, 1], [20, 0]]);
    expect(r.W[2]!.data).toHaveLength(0);
    expect([r.H.rows, r.H.cols]).toEqual([2, 12]);
    const { rank, ...options } = JSON.parse(JSON.stringify(r.settings));
    expect(rank).toEqual([2, 1, 0]);
    expectSameRun(stratifiedNmfSync(c.A, rank, options), r);
    // The worker-thread run is the same solve.
    expectSameRun(await stratifiedNmf(c.A, [2, 1, 0], { maxIterations: 20, seed: 3 }), r);
    // Restarts (seeds 3, 4) keep the per-stratum shapes; the best is the plain run of its seed.
    const best = stratifiedNmfSync(c.A, [2, 1, 0], { maxIterations: 20, seed: 3, restarts: 2 });
    expect(best.W.map((w) => w.cols)).toEqual([2, 1, 0]);
    expectSameRun(best, stratifiedNmfSync(c.A, [2, 1, 0], { maxIterations: 20, seed: best.restarts!.seeds[best.restarts!.best]! }));
    // A typed array of ranks is a list too.
    expectSameRun(stratifiedNmfSync(c.A, Int32Array.of(2, 1, 0), { maxIterations: 20, seed: 3 }), r);
  });

  it('the loss is √Σₛ‖A(s) − 1v(s)ᵀ − W(s)H[0:rₛ]‖² (direct, here), as stratifiedNmfLoss and reconstruct give it', () => {
    const r = stratifiedNmfSync(c.A, [1, 3, 2], { maxIterations: 50, seed: 4 });
    let sum = 0;
    const model = reconstruct(r);
    c.A.forEach((A, s) => {
      const WH = matmul(r.W[s]!, firstRows(r.H, r.W[s]!.cols));
      for (let k = 0; k < A.data.length; k++) {
        const m = r.V.data[s * A.cols + (k % A.cols)]! + WH.data[k]!;
        expect(Math.abs(model[s]!.data[k]! - m)).toBeLessThanOrEqual(1e-14 * Math.max(1, m));
        sum += (A.data[k]! - m) ** 2;
      }
    });
    expect(Math.abs(r.loss - Math.sqrt(sum))).toBeLessThan(1e-12 * r.loss);
    expect(Math.abs(stratifiedNmfLoss(c.A, r) - r.loss)).toBeLessThan(1e-12 * r.loss);
    // One stratum of the result: H's rows past its rₛ are used by none of the strata given.
    const one = stratifiedNmfLoss([c.A[0]!], { V: { rows: 1, cols: 12, data: r.V.data.slice(0, 12) }, W: [r.W[0]!], H: r.H });
    let first = 0;
    const WH0 = matmul(r.W[0]!, firstRows(r.H, 1));
    c.A[0]!.data.forEach((a, k) => (first += (a - r.V.data[k % 12]! - WH0.data[k]!) ** 2));
    expect(Math.abs(one - Math.sqrt(first))).toBeLessThan(1e-12 * one);
    // entries: rows count through the strata (10 + 15 + 20); row 12 is row 2 of stratum 1.
    const at = reconstruct(r, { entries: { rows: [0, 12, 44], cols: [3, 5, 11] } });
    expect(at[1]).toBe(model[1]!.data[2 * 12 + 5]);
    expect(at[2]).toBe(model[2]!.data[19 * 12 + 11]);
  });

  it('the certificate is the gradient mapping over V, the free entries of each W(s) and H (evaluated here)', () => {
    const ranks = [1, 3, 2];
    for (const maxIterations of [0, 150]) {
      const r = stratifiedNmfSync(c.A, ranks, { maxIterations, init: { V: c.init.V, W: c.init.W.map((w, s) => firstColumns(w, ranks[s]!)), H: c.init.H } });
      const m = r.H.cols, R = r.H.rows;
      const normA2 = c.A.reduce((acc, a) => acc + a.data.reduce((t, x) => t + x * x, 0), 0);
      // R(s) = 1v(s)ᵀ + W(s)H[0:rₛ] − A(s); ∇v(s) = R(s)ᵀ1, ∇W(s) = R(s)H[0:rₛ]ᵀ, ∇H[0:rₛ] += W(s)ᵀR(s).
      const gV = new Float64Array(r.V.data.length);
      const gH = new Float64Array(R * m);
      let expected = 0;
      c.A.forEach((A, s) => {
        const rs = ranks[s]!, W = r.W[s]!;
        const WH = matmul(W, firstRows(r.H, rs));
        const Res = WH.data.map((x, k) => x + r.V.data[s * m + (k % m)]! - A.data[k]!);
        for (let k = 0; k < Res.length; k++) gV[s * m + (k % m)]! += Res[k]! / normA2;
        const gW = new Float64Array(A.rows * rs);
        for (let i = 0; i < A.rows; i++)
          for (let a = 0; a < rs; a++)
            for (let j = 0; j < m; j++) {
              gW[i * rs + a]! += (Res[i * m + j]! * r.H.data[a * m + j]!) / normA2;
              gH[a * m + j]! += (W.data[i * rs + a]! * Res[i * m + j]!) / normA2;
            }
        expected = Math.max(expected, gradientMapping(W.data, gW));
      });
      expected = Math.max(expected, gradientMapping(r.V.data, gV), gradientMapping(r.H.data, gH));
      expect(expected).toBeGreaterThan(0);
      expect(Math.abs(r.certificate - expected)).toBeLessThan(1e-9 * expected);
    }
  });

  it('a stratum of rank 0 is its shift alone: v(s) converges to its column means, (colSum − ε)/nₛ', () => {
    const { tfidf, strata } = readCorpus('austen');
    // Sorted labels: Emma, Mansfield Park, Northanger Abbey, Persuasion, Pride & Prejudice, Sense & Sensibility.
    const r = stratifiedNmfSync.fromLabels(tfidf, strata, [3, 3, 2, 0, 3, 3], { solver: 'mu', maxIterations: 30, seed: 1 });
    expect(r.labels[3]).toBe('Persuasion');
    const rows = r.rowIndices[3]!;
    const m = tfidf.cols;
    const colSum = new Float64Array(m);
    for (const i of rows) for (let p = tfidf.indptr[i]!; p < tfidf.indptr[i + 1]!; p++) colSum[tfidf.indices[p]!]! += tfidf.data[p]!;
    // v ← v·colSum/(nv + ε) (no W(s)H term) has the fixed point (colSum − ε)/n; from v > 0 it is
    // reached to rounding within a few of the 60 updates.
    let worst = 0;
    for (let j = 0; j < m; j++) {
      const v = r.V.data[3 * m + j]!;
      if (colSum[j] === 0) expect(v).toBe(0);
      else worst = Math.max(worst, Math.abs(v - (colSum[j]! - 1e-9) / rows.length) / (colSum[j]! / rows.length));
    }
    expect(worst).toBeLessThan(1e-12);
    expect(r.W[3]!.cols).toBe(0);
    // Its model is v(s) in every row.
    const model = reconstruct(r)[3]!;
    expect(model.data.subarray(5 * m, 6 * m)).toEqual(r.V.data.subarray(3 * m, 4 * m));
  });

  it('on real data the loss never increases and the factors stay non-negative (Austen CSR, tissue dense)', () => {
    const { tfidf, strata } = readCorpus('austen');
    const a = stratifiedNmfSync.fromLabels(tfidf, strata, [5, 4, 3, 2, 5, 1], { maxIterations: 80, seed: 6 });
    expect(largestIncrease(a.traces.loss)).toBeLessThanOrEqual(1e-12);
    expect(a.traces.loss[a.traces.loss.length - 1]!).toBeLessThan(0.97 * a.traces.loss[0]!);
    const tissue = readNpy(dataFile('tissue/tissue_expr.npy.gz'));
    const labels = readLabels(dataFile('tissue/tissue_labels.csv'), 'tissue');
    const b = stratifiedNmfSync.fromLabels(tissue, labels, [3, 2, 1, 3, 2, 0, 1], { maxIterations: 80, seed: 6, init: 'nndsvd' });
    expect(largestIncrease(b.traces.loss)).toBeLessThanOrEqual(1e-12);
    for (const r of [a, b]) {
      for (const x of [r.V, r.H, ...r.W]) expect(x.data.every((v) => v >= 0)).toBe(true);
    }
  });
});

describe('per-stratum ranks: bad input', () => {
  const c = snmfCase(0);

  it('a wrong length, a non-integer, a negative or all-zero list, or too large a rank: an error naming rank', () => {
    const cases: [unknown, new (...args: any[]) => Error, RegExp][] = [
      [[1, 2], RangeError, /array of 3 ranks \(one per stratum.*for rank but received an array of length 2/],
      [[1, 2.5, 1], RangeError, /for rank\[1\] but received 2\.5/],
      [[1, -1, 1], RangeError, /rank in \[0, \d+\] for rank\[1\] but received -1/],
      [[1, '2', 1], TypeError, /for rank\[1\] but received the string "2"/],
      [[0, 0, 0], RangeError, /at least one positive rank .*for rank/],
      [[1, 13, 1], RangeError, /rank in \[1, 12\].*for max\(rank\) but received 13/],
      ['3', TypeError, /positive integer for rank/],
    ];
    for (const [rank, cls, message] of cases) {
      const e = thrown(() => stratifiedNmfSync(c.A, rank as number[], { maxIterations: 1 }));
      expect(e, String(rank)).toBeInstanceOf(cls);
      expect(e!.message).toMatch(message);
    }
    // Given factors must have the per-stratum shapes (a stratum of rank 0: nₛ×0).
    const e = thrown(() => stratifiedNmfSync(c.A, [1, 2, 0], { init: { W: c.init.W } }));
    expect(e).toBeInstanceOf(RangeError);
    expect(e!.message).toMatch(/10×1 matrix for options\.init\.W\[0\] but received 10×3/);
    const zero = thrown(() => stratifiedNmfSync(c.A, [1, 2, 0], { init: { W: [firstColumns(c.init.W[0]!, 1), firstColumns(c.init.W[1]!, 2), c.init.W[2]!] } }));
    expect(zero).toBeInstanceOf(RangeError);
    expect(zero!.message).toMatch(/20×0 matrix \(its stratum has rank 0\) for options\.init\.W\[2\]/);
  });

  it('the addon checks the rank list again (raw binding)', () => {
    const strata = c.A.map((A) => ({ rows: A.rows, cols: A.cols, data: A.data }));
    const options = { maxIterations: 1, vScaling: 2, tolerance: 0, lossEvery: 1, init: 'random' as const, seed: 0, epsilon: 1e-9, certificateTolerance: 0 };
    const raw = (rank: unknown) => thrown(() => native().stratifiedNmf(strata, 12, rank as number[], options));
    expect(raw([1, 2])?.message).toMatch(/Expected an array of length 3 for rank but received/);
    expect(raw([1, -1, 2])).toBeInstanceOf(RangeError);
    expect(raw([1, -1, 2])?.message).toMatch(/rank\[1\]/);
    expect(raw([1, 0.5, 2])?.message).toMatch(/rank\[1\]/);
    expect(raw([0, 0, 0])?.message).toMatch(/at least one positive rank \(H needs a row\) for rank/);
    // Given W(s) of the wrong shape for its rank: the length check names it.
    const W = [new Float64Array(10), new Float64Array(15 * 3), new Float64Array(20 * 3)];
    expect(thrown(() => native().stratifiedNmf(strata, 12, [1, 2, 3], { ...options, init: 'given', V: new Float64Array(36), W, H: new Float64Array(36) }))?.message).toMatch(
      /length 30 \(rows·rank\) for options\.W\[1\]/,
    );
    expect(thrown(() => native().stratifiedNmfLoss(strata, 12, [1, 2], new Float64Array(36), W, new Float64Array(36)))?.message).toMatch(/array of length 3 for rank/);
  });
});

describe('per-stratum ranks on the command line', () => {
  it('snmf --rank 2,3,0,1,2,3 is stratifiedNmf.fromLabels with that list (one rank per sorted label)', async () => {
    const X = dataFile('text/austen_tfidf.mtx.gz');
    const r = await runMain(['snmf', X, '--strata-from', `${dataFile('text/austen_docs.csv')}:stratum`, '--rank', '2,3,0,1,2,3', '--max-iterations', '15', '--seed', '3', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const json = JSON.parse(r.stdout.trim().split('\n').at(-1)!);
    const api = stratifiedNmfSync.fromLabels(readMatrix(X, { format: 'csr' }) as CsrMatrix, readLabels(dataFile('text/austen_docs.csv'), 'stratum'), [2, 3, 0, 1, 2, 3], {
      maxIterations: 15,
      seed: 3,
    });
    expect(json.traces.loss).toEqual(Array.from(api.traces.loss));
    expect(json.settings.rank).toEqual([2, 3, 0, 1, 2, 3]);
    const bad = await runMain(['snmf', X, '--strata-from', `${dataFile('text/austen_docs.csv')}:stratum`, '--rank', '2,x,1']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/comma-separated list/);
  });
});
