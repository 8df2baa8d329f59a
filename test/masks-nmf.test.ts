// Missing values and entry weights in nmf (docs/missing-values.md): the weighted updates must leave a
// fully observed problem bit for bit as it was, never read a held-out entry, keep the loss monotone
// (weighted Lee–Seung and weighted HALS both decrease ½Σω(a − wh)²), stop at KKT points of the
// observed entries, and report the loss over the observed entries only.
import { describe, expect, it } from 'vitest';

import { nmf, nmfSync, reconstruct, setBlasThreads, setMemoryLimit, toCsr, type Matrix, type NmfResult } from '../lib/index.js';
import { gradientMapping, largestIncrease, matmul, transposed } from './helpers/snmf-cases.js';
import { readNpy } from './helpers/snmf-corpus.js';
import { dataFile } from './helpers/shared.js';
import { thrown } from './helpers/thrown.js';
import { uniform } from './helpers/uniform.js';

setBlasThreads(1);

function throws(fn: () => unknown, cls: new (...args: any[]) => Error, message: RegExp): void {
  const error = thrown(fn);
  expect(error).toBeInstanceOf(cls);
  expect(error.message).toMatch(message);
}

// 189 tissue samples × 500 genes (log2 expression): the first 60×80 block, a small real matrix.
const tissueFull = readNpy(dataFile('tissue/tissue_expr.npy'));
const A: Matrix = (() => {
  const n = 60, m = 80;
  const data = new Float64Array(n * m);
  for (let i = 0; i < n; i++) data.set(tissueFull.data.subarray(i * tissueFull.cols, i * tissueFull.cols + m), i * m);
  return { rows: n, cols: m, data };
})();

/** 10 % of the entries, drawn without replacement by a seeded generator, as a boolean mask (true = missing). */
function tenPercent(rows: number, cols: number, seed: number): Uint8Array {
  const rand = uniform(seed);
  const mask = new Uint8Array(rows * cols);
  let hidden = 0;
  while (hidden < Math.round(0.1 * rows * cols)) {
    const k = Math.floor(rand() * rows * cols);
    if (!mask[k]) (mask[k] = 1), hidden++;
  }
  return mask;
}
const mask = tenPercent(A.rows, A.cols, 7);

/** √Σω(a − wh)² and the weighted gradients ∇W = (Ω∘(WH − A))Hᵀ, ∇H = Wᵀ(Ω∘(WH − A)), over Σωa². */
function weightedCheck(A: Matrix, omega: Float64Array, W: Matrix, H: Matrix) {
  const WH = matmul(W, H);
  const R = new Float64Array(A.data.length);
  let loss2 = 0, norm2 = 0;
  for (let k = 0; k < R.length; k++) {
    if (omega[k] === 0) continue;
    R[k] = omega[k]! * (WH.data[k]! - A.data[k]!);
    loss2 += omega[k]! * (WH.data[k]! - A.data[k]!) ** 2;
    norm2 += omega[k]! * A.data[k]! ** 2;
  }
  const Rm = { rows: A.rows, cols: A.cols, data: R };
  const gW = matmul(Rm, transposed(H)).data.map((g) => g / norm2);
  const gH = matmul(transposed(W), Rm).data.map((g) => g / norm2);
  return { loss: Math.sqrt(loss2), norm: Math.sqrt(norm2), certificate: Math.max(gradientMapping(W.data, gW), gradientMapping(H.data, gH)) };
}

function weightsOf(mask: Uint8Array): Float64Array {
  return Float64Array.from(mask, (x) => (x ? 0 : 1));
}

const same = (a: NmfResult, b: NmfResult) => {
  expect(a.W.data).toEqual(b.W.data);
  expect(a.H.data).toEqual(b.H.data);
  expect(a.traces.loss).toEqual(b.traces.loss);
  expect(a.normalizedLoss).toBe(b.normalizedLoss);
};

describe.each(['hals', 'mu'] as const)('nmf %s with missing entries', (solver) => {
  const base = { solver, maxIterations: 60, seed: 3 };

  it('a fully observed mask (or all weights 1) is the unmasked run, bit for bit', () => {
    const plain = nmfSync(A, 4, base);
    same(nmfSync(A, 4, { ...base, mask: new Uint8Array(A.rows * A.cols) }), plain);
    same(nmfSync(A, 4, { ...base, mask: { rows: [], cols: [] } }), plain);
    same(nmfSync(A, 4, { ...base, weights: { rows: A.rows, cols: A.cols, data: new Float64Array(A.rows * A.cols).fill(1) } }), plain);
    same(nmfSync(A, 4, { ...base, missing: 'nan' }), plain);
  });

  it('held-out entries do not influence the fit: NaN, 0 or 1e6 there give the identical result', () => {
    const withValue = (x: number) => ({ ...A, data: A.data.map((a, k) => (mask[k] ? x : a)) });
    const first = nmfSync(withValue(NaN), 4, { ...base, mask });
    same(nmfSync(withValue(0), 4, { ...base, mask }), first);
    same(nmfSync(withValue(1e6), 4, { ...base, mask }), first);
    // The same missing set given as NaN entries with missing: 'nan', as weights 0, or as an index list.
    same(nmfSync(withValue(NaN), 4, { ...base, missing: 'nan' }), first);
    same(nmfSync(withValue(5), 4, { ...base, weights: { rows: A.rows, cols: A.cols, data: weightsOf(mask) } }), first);
    const rows: number[] = [], cols: number[] = [];
    mask.forEach((x, k) => x && (rows.push(Math.floor(k / A.cols)), cols.push(k % A.cols)));
    same(nmfSync(withValue(-3), 4, { ...base, mask: { rows, cols } }), first);
    // ... and it differs from the unmasked fit (the mask is not ignored).
    expect(nmfSync(A, 4, base).W.data).not.toEqual(first.W.data);
  });

  it('the loss over the observed entries never increases, with a mask and with general weights', () => {
    const rand = uniform(11);
    const weights = { rows: A.rows, cols: A.cols, data: A.data.map((_, k) => (mask[k] ? 0 : 0.2 + 2 * rand())) };
    for (const options of [{ mask }, { weights }]) {
      const res = nmfSync(A, 5, { ...base, ...options, maxIterations: 150 });
      // Relative rises above rounding would break the auxiliary-function / coordinate-descent argument.
      expect(largestIncrease(res.traces.loss)).toBeLessThan(1e-12);
      // The reported loss is √Σω(a − wh)² at the returned factors, over the observed entries only.
      const omega = 'mask' in options ? weightsOf(mask) : weights.data;
      const check = weightedCheck(A, omega, res.W, res.H);
      expect(res.loss).toBeCloseTo(check.loss, 8);
      expect(res.normalizedLoss).toBeCloseTo(check.loss / check.norm, 12);
      // The certificate is that of the weighted objective, recomputed here independently.
      expect(Math.abs(res.certificate - check.certificate)).toBeLessThan(1e-9 * Math.max(1, check.certificate));
    }
  });

  it('reaches a KKT point of the observed entries: the weighted gradient mapping goes to 0', () => {
    const res = nmfSync(A, 3, { ...base, mask, maxIterations: solver === 'hals' ? 2000 : 6000 });
    const check = weightedCheck(A, weightsOf(mask), res.W, res.H);
    // The normalized gradient mapping (scale-free) falls by orders of magnitude from the start's.
    const start = weightedCheck(A, weightsOf(mask), ...initial(res)).certificate;
    expect(check.certificate).toBeLessThan(solver === 'hals' ? 1e-6 : 1e-4);
    expect(check.certificate).toBeLessThan(1e-3 * start);
  });

  it('imputes an exactly low-rank matrix: the model at the hidden entries recovers them', () => {
    const rand = uniform(5);
    const n = 50, m = 40, r = 3;
    const W0 = { rows: n, cols: r, data: Float64Array.from({ length: n * r }, () => rand()) };
    const H0 = { rows: r, cols: m, data: Float64Array.from({ length: r * m }, () => rand()) };
    const X = matmul(W0, H0);
    const hide = tenPercent(n, m, 9);
    const res = nmfSync({ ...X, data: X.data.map((x, k) => (hide[k] ? NaN : x)) }, r, { ...base, mask: hide, maxIterations: 3000 });
    const model = reconstruct(res);
    let err = 0, norm = 0;
    hide.forEach((h, k) => {
      if (!h) return;
      err += (model.data[k]! - X.data[k]!) ** 2;
      norm += X.data[k]! ** 2;
    });
    expect(Math.sqrt(err / norm)).toBeLessThan(solver === 'hals' ? 1e-3 : 2e-2);
  });

  it('certificateTolerance stops on the weighted certificate', () => {
    const res = nmfSync(A, 3, { ...base, mask, maxIterations: 5000, certificateTolerance: 1e-4 });
    expect(res.stopReason).toBe('gradMap');
    expect(res.certificate).toBeLessThanOrEqual(1e-4);
    expect(weightedCheck(A, weightsOf(mask), res.W, res.H).certificate).toBeCloseTo(res.certificate, 12);
  });

  it('the async solve equals the sync one', async () => {
    same(await nmf(A, 4, { ...base, mask }), nmfSync(A, 4, { ...base, mask }));
  });
});

/** The factors the solve started from: the same call with 0 iterations. */
function initial(res: NmfResult): [Matrix, Matrix] {
  const s = res.settings;
  const start = nmfSync(A, s.rank, { solver: s.solver, seed: s.seed, maxIterations: 0, mask });
  return [start.W, start.H];
}

describe('nmf on CSR data with missing: absent', () => {
  // Sparse data: the tissue block with its smaller entries dropped; explicit zeros are kept as stored.
  const thresholded = { ...A, data: A.data.map((x) => (x > 8 ? x : 0)) };
  const csr = toCsr(thresholded);
  const stored = Float64Array.from(thresholded.data, (x) => (x !== 0 ? 1 : 0));

  it.each(['hals', 'mu'] as const)('%s: only the stored entries are observed (= the dense solve with weight 0 elsewhere)', (solver) => {
    const options = { solver, maxIterations: 80, seed: 2 };
    const sparse = nmfSync(csr, 4, { ...options, missing: 'absent' });
    const dense = nmfSync(thresholded, 4, { ...options, weights: { rows: A.rows, cols: A.cols, data: stored } });
    for (let k = 0; k < sparse.W.data.length; k++) expect(sparse.W.data[k]).toBeCloseTo(dense.W.data[k]!, 8);
    expect(sparse.loss).toBeCloseTo(dense.loss, 8);
    expect(largestIncrease(sparse.traces.loss)).toBeLessThan(1e-12);
    // Without 'absent' the absent entries are observed zeros: a different fit.
    expect(nmfSync(csr, 4, options).W.data).not.toEqual(sparse.W.data);
  });

  it('an explicit zero stays observed', () => {
    const withZero = { ...csr, data: csr.data.slice() };
    withZero.data[0] = 0;
    const explicit = nmfSync(withZero, 3, { maxIterations: 20, missing: 'absent' });
    const weights = stored.slice();
    const dense = { ...thresholded, data: thresholded.data.slice() };
    const k0 = csr.indices[0]!;
    dense.data[k0] = 0;
    const ref = nmfSync(dense, 3, { maxIterations: 20, weights: { rows: A.rows, cols: A.cols, data: weights } });
    expect(explicit.loss).toBeCloseTo(ref.loss, 8);
  });
});

describe('missing-value options: bad input is refused before native work', () => {
  const n = A.rows * A.cols;
  it('names the defect', () => {
    throws(() => nmfSync(A, 3, { mask: new Uint8Array(n - 1) }), RangeError, /Expected 4800 entries \(rows·cols of A\) for options.mask/);
    throws(() => nmfSync(A, 3, { mask: { rows: [60], cols: [0] } }), RangeError, /within 60×80.*\[60, 0\]/);
    throws(() => nmfSync(A, 3, { mask: { rows: [1, 2], cols: [0] } }), RangeError, /same length/);
    throws(() => nmfSync(A, 3, { mask: new Float64Array(n) as never }), TypeError, /boolean array, a Uint8Array or an index list/);
    throws(() => nmfSync(A, 3, { mask: [2] as never }), TypeError, /true\/false or 1\/0 in options.mask/);
    throws(() => nmfSync(A, 3, { weights: { rows: A.rows, cols: A.cols, data: new Float64Array(n).fill(-1) } }), RangeError, /weights ≥ 0 in options.weights of nmfSync\(\) but received -1 at index 0/);
    throws(() => nmfSync(A, 3, { weights: { rows: A.rows, cols: A.cols, data: new Float64Array(n).fill(NaN) } }), RangeError, /weights ≥ 0.*NaN/);
    throws(() => nmfSync(A, 3, { weights: { rows: 2, cols: 2, data: new Float64Array(4) } }), RangeError, /Expected a 60×80 Matrix \(the shape of A\) for options.weights/);
    const nan = { ...A, data: A.data.slice() };
    nan.data[5] = NaN;
    throws(() => nmfSync(nan, 3), RangeError, /finite values in A/);
    throws(() => nmfSync(nan, 3, { mask }), RangeError, /NaN at \[0, 5\] \(mark missing entries with options.mask/);
    throws(() => nmfSync(toCsr(A), 3, { mask }), RangeError, /dense data for options.mask.*CSR \(use missing 'absent'/);
    throws(() => nmfSync(A, 3, { missing: 'absent' }), RangeError, /CSR data for options.missing 'absent'/);
    throws(() => nmfSync(A, 3, { missing: 'nans' as never }), RangeError, /missing/);
    throws(() => nmfSync(A, 3, { solver: 'mu', loss: 'kl', mask }), RangeError, /loss 'frobenius' with missing entries/);
  });
});

describe('memory: the weights and the zeroed copy are counted before anything is allocated', () => {
  it('a masked solve that would not fit is refused, naming them, where the plain one fits', () => {
    // 2000×50 (800 KB): the plain solve needs 1.9 MB (its factors, workspaces and NNDSVD sketches);
    // a mask adds the weights and the zeroed copy of A (800 KB each) and its list of missing entries.
    const big = { rows: 2000, cols: 50, data: Float64Array.from({ length: 100000 }, (_, k) => 1 + (k % 7)) };
    const hide = Uint8Array.from(big.data, (_, k) => (k % 10 === 0 ? 1 : 0));
    setMemoryLimit(2.6e6);
    try {
      expect(nmfSync(big, 2, { maxIterations: 1 }).W.rows).toBe(2000);
      throws(() => nmfSync(big, 2, { maxIterations: 1, mask: hide }), RangeError, /Not enough memory for NMF of rank 2 on 2000×50 data: it needs 3[0-9]{6} bytes/);
    } finally {
      setMemoryLimit('auto');
    }
  });
});
