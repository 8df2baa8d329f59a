// Cross-validation and masks on CSR data without a dense copy (docs/cross-validation.md,
// docs/missing-values.md): the held-out entries of CSR data reach the solver as a list of entries.
// Equivalence is the proof: the same data given dense (its held-out entries flagged in a rows×cols
// mask) and given CSR (a list) must give the same folds, hence the same fits up to rounding — the
// sparse and dense products sum in different orders, so the errors agree to 1e-10 relative, not
// bit for bit. A CSR matrix whose dense form is over the memory limit must cross-validate; bad lists
// are refused by class and message, in TypeScript and again in the addon.
import { afterEach, describe, expect, it } from 'vitest';

import {
  crossValidateRank,
  crossValidateRankSync,
  nmfSync,
  setBlasThreads,
  stratifiedNmfSync,
  toCsr,
  type CrossValidateRankResult,
  type CsrMatrix,
  type Matrix,
} from '../lib/index.js';
import { getMemoryLimit, setMemoryLimit } from '../lib/memory.js';
import { native } from '../lib/native.js';
import { expectThrows } from './helpers/thrown.js';
import { uniform } from './helpers/uniform.js';

setBlasThreads(1);
afterEach(() => void setMemoryLimit('auto'));

/** A rank-3 non-negative n×m matrix with about `density` of its entries kept (the rest exact zeros). */
function sparseLowRank(seed: number, n: number, m: number, density: number): Matrix {
  const rand = uniform(seed);
  const r = 3;
  const W = Float64Array.from({ length: n * r }, () => rand());
  const H = Float64Array.from({ length: r * m }, () => rand());
  const data = new Float64Array(n * m);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < m; j++) {
      let x = 0;
      for (let c = 0; c < r; c++) x += W[i * r + c]! * H[c * m + j]!;
      data[i * m + j] = rand() < density ? x : 0;
    }
  }
  return { rows: n, cols: m, data };
}

/** |a − b| ≤ 1e-10·|b| entry by entry. */
function expectClose(a: Float64Array, b: Float64Array): void {
  expect(a.length).toBe(b.length);
  a.forEach((x, k) => expect(Math.abs(x - b[k]!)).toBeLessThanOrEqual(1e-10 * Math.abs(b[k]!)));
}

function expectSameCurve(csr: CrossValidateRankResult, dense: CrossValidateRankResult): void {
  expect(csr.settings).toEqual(dense.settings);
  expect(csr.chosenRank).toBe(dense.chosenRank);
  expect(csr.bestRank).toBe(dense.bestRank);
  csr.curve.forEach((c, r) => {
    expect(c.rank).toBe(dense.curve[r]!.rank);
    expectClose(c.errors, dense.curve[r]!.errors);
    expectClose(c.trainErrors, dense.curve[r]!.trainErrors);
  });
}

const flagsOf = (list: { rows: number[]; cols: number[] }, m: number, size: number) => {
  const flags = new Uint8Array(size);
  list.rows.forEach((i, k) => (flags[i * m + list.cols[k]!] = 1));
  return flags;
};

describe('crossValidateRank on CSR data = on the same data dense (same seeds, same folds)', () => {
  const A = sparseLowRank(3, 40, 30, 0.4);
  const csr = toCsr(A);

  it('nmf, HALS and MU: the same test sets, errors to 1e-10 relative, the same chosen rank', async () => {
    for (const solver of ['hals', 'mu'] as const) {
      const options = { ranks: [1, 2, 3, 4], folds: 3, seeds: [0, 7], holdout: 0.1, fitOptions: { solver, maxIterations: 40 } };
      const dense = await crossValidateRank(A, 'nmf', options);
      const sparse = await crossValidateRank(csr, 'nmf', options);
      expectSameCurve(sparse, dense);
      // Absent entries are observed zeros: every one of the 1200 entries is a candidate for a test set.
      expect(sparse.settings.observed).toBe(1200);
      expect(sparse.settings.heldOut).toBe(120);
      expectSameCurve(crossValidateRankSync(csr, 'nmf', options), dense);
    }
  });

  it("with the user's mask: a list on CSR (stored and absent entries, a negative value under it) = flags on dense", async () => {
    const mask = { rows: [0, 5, 5, 39, 12, 5], cols: [0, 2, 3, 29, 7, 2] };
    const k0 = csr.indices[0]!;
    // A stored value under the mask may be anything finite: it is never seen (nor held out).
    const negative = { ...csr, data: csr.data.map((x, p) => (p === 0 ? -5 : x)) };
    const flags = flagsOf({ rows: [...mask.rows, 0], cols: [...mask.cols, k0] }, 30, 1200);
    const listed = { rows: [...mask.rows, 0], cols: [...mask.cols, k0] };
    const options = (m: unknown) => ({ ranks: [2, 3], folds: 2, fitOptions: { mask: m, missing: 'nan' as const, maxIterations: 30 } });
    const denseData = { ...A, data: A.data.map((x, k) => (k === k0 ? -5 : x)) };
    const dense = await crossValidateRank(denseData, 'nmf', options(flags) as never);
    const sparse = await crossValidateRank(negative, 'nmf', options(listed) as never);
    expectSameCurve(sparse, dense);
    // (5, 2) twice in the list counts once.
    expect(sparse.settings.observed).toBe(1200 - 6 + (k0 === 0 ? 1 : 0));
  });

  it('stratifiedNmf with CSR and dense strata mixed = all dense', async () => {
    const strata = [sparseLowRank(4, 20, 25, 0.5), sparseLowRank(5, 15, 25, 0.5), sparseLowRank(6, 10, 25, 0.5)];
    const masks = [null, { rows: [1, 2], cols: [3, 4] }, { rows: [0], cols: [24] }];
    const flags = masks.map((m, s) => (m ? flagsOf(m, 25, strata[s]!.rows * 25) : null));
    const options = (m: unknown) => ({ ranks: [2, 3], folds: 2, holdout: 0.08, fitOptions: { mask: m, maxIterations: 25 } });
    const dense = await crossValidateRank(strata, 'stratifiedNmf', options(flags) as never);
    // Strata 0 and 2 CSR, stratum 1 dense (its mask flags, as a dense stratum takes them).
    const mixed = await crossValidateRank([toCsr(strata[0]!), strata[1]!, toCsr(strata[2]!)], 'stratifiedNmf', options([null, flags[1], masks[2]]) as never);
    expectSameCurve(mixed, dense);
    expect(mixed.settings.observed).toBe(45 * 25 - 3);
  });
});

describe('crossValidateRank on CSR data whose dense form is over the memory limit', () => {
  it('60000×60000 with 2000 stored entries (dense: 28.8 GB) cross-validates under a 1 GiB limit', async () => {
    const n = 60_000;
    const rand = uniform(11);
    const rows: number[] = [], cols: number[] = [], values: number[] = [];
    // 2000 entries in the first 40 rows and 50 columns (a rank-≤40 block), the rest absent zeros.
    const seen = new Set<number>();
    while (seen.size < 2000) {
      const i = Math.floor(rand() * 40), j = Math.floor(rand() * 50);
      if (!seen.has(i * 50 + j)) seen.add(i * 50 + j);
    }
    const keys = [...seen].sort((a, b) => a - b);
    for (const k of keys) rows.push(Math.floor(k / 50)), cols.push(k % 50), values.push(0.5 + rand());
    const indptr = new Int32Array(n + 1);
    for (const i of rows) indptr[i + 1]!++;
    for (let i = 0; i < n; i++) indptr[i + 1]! += indptr[i]!;
    const A: CsrMatrix = { rows: n, cols: n, indptr, indices: Int32Array.from(cols), data: Float64Array.from(values) };
    setMemoryLimit(2 ** 30);
    // The dense copy the fits used to get would be refused by this limit 26 times over (28.8 GB against 1 GiB).
    expect(8 * n * n).toBeGreaterThan(26 * getMemoryLimit());
    // 100 entries per test set among the 3.6·10⁹, two folds: each fit's mask is a list of 100 entries.
    const r = await crossValidateRank(A, 'nmf', { ranks: [1, 2], folds: 2, holdout: 100 / 3.6e9, fitOptions: { init: 'random', maxIterations: 5 } });
    expect(r.settings.observed).toBe(n * n);
    expect(r.settings.heldOut).toBe(100);
    for (const c of r.curve) {
      expect(c.errors.length).toBe(2);
      // The held-out entries are almost surely absent zeros, which the model (≥ 0) predicts ≥ 0.
      c.errors.forEach((e) => expect(Number.isFinite(e) && e >= 0).toBe(true));
    }
  });
});

describe("nmf and stratifiedNmf with a mask on CSR data ({rows, cols}) = the dense data's mask", () => {
  const A = sparseLowRank(9, 30, 20, 0.5);
  const csr = toCsr(A);
  // Stored and absent entries alike, listed out of order.
  const mask = { rows: [29, 0, 3, 3, 10, 17], cols: [19, 0, 5, 4, 11, 2] };
  const flags = flagsOf(mask, 20, 600);

  it('nmf: W, H and the losses to 1e-10 relative, HALS and MU, random and NNDSVD starts', () => {
    for (const [solver, init] of [['hals', 'random'], ['mu', 'random'], ['hals', 'nndsvd']] as const) {
      const options = { solver, init, maxIterations: 50, seed: 2 };
      const dense = nmfSync(A, 3, { ...options, mask: flags });
      const sparse = nmfSync(csr, 3, { ...options, mask });
      expectClose(sparse.W.data, dense.W.data);
      expectClose(sparse.H.data, dense.H.data);
      expectClose(sparse.traces.loss, dense.traces.loss);
      // The normalizer √Σωa² (the listed stored values left out) is the dense mask's.
      expectClose(sparse.traces.normalizedLoss, dense.traces.normalizedLoss);
    }
  });

  it('the listed stored values do not count: any finite value ≥ 0 there gives the same fit', () => {
    const changed = { ...csr, data: csr.data.slice() };
    // The listed entries (3, 4) and (3, 5) that are stored get a value far off.
    for (let p = csr.indptr[3]!; p < csr.indptr[4]!; p++) if (csr.indices[p] === 4 || csr.indices[p] === 5) changed.data[p] = 1e6;
    expect(changed.data).not.toEqual(csr.data);
    const a = nmfSync(csr, 3, { maxIterations: 20, seed: 1, mask });
    const b = nmfSync(changed, 3, { maxIterations: 20, seed: 1, mask });
    expect(b.W.data).toEqual(a.W.data);
  });

  it('stratifiedNmf (one list per stratum) and stratifiedNmf.fromLabels (one list for A)', () => {
    const strata = [sparseLowRank(1, 12, 20, 0.5), sparseLowRank(2, 18, 20, 0.5)];
    const lists = [{ rows: [0, 11], cols: [0, 19] }, { rows: [5], cols: [7] }];
    const options = { maxIterations: 30, seed: 4 };
    const dense = stratifiedNmfSync(strata, 2, { ...options, mask: lists.map((l, s) => flagsOf(l, 20, strata[s]!.rows * 20)) });
    const sparse = stratifiedNmfSync(strata.map(toCsr), 2, { ...options, mask: lists });
    expectClose(sparse.H.data, dense.H.data);
    expectClose(sparse.traces.loss, dense.traces.loss);
    // fromLabels: A's rows 0–11 are stratum 'a', 12–29 'b'; the list names A's entries.
    const stacked: Matrix = { rows: 30, cols: 20, data: new Float64Array([...strata[0]!.data, ...strata[1]!.data]) };
    const labels = Array.from({ length: 30 }, (_, i) => (i < 12 ? 'a' : 'b'));
    const viaLabels = stratifiedNmfSync.fromLabels(toCsr(stacked), labels, 2, { ...options, mask: { rows: [0, 11, 17], cols: [0, 19, 7] } });
    expectClose(viaLabels.H.data, dense.H.data);
  });
});

describe('bad masks on CSR data are refused before native work', () => {
  const csr = toCsr(sparseLowRank(9, 30, 20, 0.5));
  it('out of range, twice, non-integers, unequal lengths, flags, with absent or KL', () => {
    expectThrows(() => nmfSync(csr, 2, { mask: { rows: [30], cols: [0] } }), RangeError, /indices within 30×20 \(the shape of A\) for options.mask of nmfSync\(\) but received \[30, 0\] at position 0/);
    expectThrows(() => nmfSync(csr, 2, { mask: { rows: [0], cols: [20] } }), RangeError, /within 30×20.*\[0, 20\]/);
    expectThrows(() => nmfSync(csr, 2, { mask: { rows: [1, 2, 1], cols: [3, 3, 3] } }), RangeError, /distinct entries in options.mask of nmfSync\(\).*\[1, 3\] twice/);
    expectThrows(() => nmfSync(csr, 2, { mask: { rows: [1.5], cols: [3] } }), RangeError, /a row index in \[0, \d+\] for options.mask.rows\[0\] of nmfSync\(\) but received 1.5/);
    expectThrows(() => nmfSync(csr, 2, { mask: { rows: [-1], cols: [3] } }), RangeError, /options.mask.rows\[0\] of nmfSync\(\) but received -1/);
    expectThrows(() => nmfSync(csr, 2, { mask: { rows: ['1'], cols: [3] } as never }), TypeError, /a row index .* for options.mask.rows\[0\] of nmfSync\(\) but received the string "1"/);
    expectThrows(() => nmfSync(csr, 2, { mask: { rows: [1, 2], cols: [3] } }), RangeError, /options.mask.rows of nmfSync\(\) and options.mask.cols of the same length but received 2 and 1/);
    expectThrows(() => nmfSync(csr, 2, { mask: new Uint8Array(600) }), RangeError, /dense data for options.mask of nmfSync\(\) but A is CSR .*index list \{rows, cols\}/);
    expectThrows(() => nmfSync(csr, 2, { mask: { rows: [1], cols: [3] }, missing: 'absent' }), RangeError, /missing 'observed' with an index-list options.mask/);
    expectThrows(() => nmfSync(csr, 2, { mask: { rows: [1], cols: [3] }, solver: 'mu', loss: 'kl' }), RangeError, /loss 'frobenius' with missing entries/);
    const negative = { ...csr, data: csr.data.map((x, p) => (p === 3 ? -1 : x)) };
    expectThrows(() => nmfSync(negative, 2, { mask: { rows: [1], cols: [3] } }), RangeError, /finite non-negative values in A but received -1 at stored entry 3/);
  });

  it('crossValidateRank: a negative value stored at an observed entry of CSR data, a bad list, missing absent', async () => {
    const negative = { ...csr, data: csr.data.map((x, p) => (p === 2 ? -1 : x)) };
    const at = csr.indices[2]!; // row 0
    await expect(crossValidateRank(negative, 'nmf', { ranks: [2] })).rejects.toThrow(new RegExp(`finite non-negative values in data at observed entries but received -1 at flat index ${at}$`));
    await expect(crossValidateRank(csr, 'nmf', { ranks: [2], fitOptions: { mask: { rows: [30], cols: [0] } } })).rejects.toThrow(RangeError);
    await expect(crossValidateRank(csr, 'nmf', { ranks: [2], fitOptions: { missing: 'absent' } })).rejects.toThrow(/missing 'observed' or 'nan'/);
  });
});

describe('the addon refuses a bad maskEntries itself (the raw binding, TypeScript checks bypassed)', () => {
  const raw = native() as unknown as { nmf: (...a: unknown[]) => unknown; stratifiedNmf: (...a: unknown[]) => unknown };
  const csr = toCsr(sparseLowRank(9, 30, 20, 0.5));
  const dense = sparseLowRank(9, 30, 20, 0.5);
  const options = { solver: 'hals', loss: 'frobenius', maxIterations: 3, tolerance: 0, lossEvery: 1, init: 'random', seed: 0 };
  const entries = (rows: number[], cols: number[]) => ({ rows: Int32Array.from(rows), cols: Int32Array.from(cols) });
  it('types, lengths, range, duplicates, dense data, absent, KL', () => {
    expectThrows(() => raw.nmf(csr, 2, { ...options, maskEntries: { rows: new Float64Array(1), cols: new Int32Array(1) } }), TypeError, /Int32Array.*options.maskEntries.rows/);
    expectThrows(() => raw.nmf(csr, 2, { ...options, maskEntries: { rows: new Int32Array(2), cols: new Int32Array(1) } }), RangeError, /length 2 \(rows.length\) for options.maskEntries.cols/);
    expectThrows(() => raw.nmf(csr, 2, { ...options, maskEntries: entries([30], [0]) }), RangeError, /row indices in \[0, 30\) for options.maskEntries.rows but received 30 at index 0/);
    expectThrows(() => raw.nmf(csr, 2, { ...options, maskEntries: entries([0, 1], [0, -1]) }), RangeError, /column indices in \[0, 20\) for options.maskEntries.cols but received -1 at index 1/);
    expectThrows(() => raw.nmf(csr, 2, { ...options, maskEntries: entries([4, 2, 4], [1, 1, 1]) }), RangeError, /distinct entries in options.maskEntries but received \[4, 1\] twice/);
    expectThrows(() => raw.nmf(dense, 2, { ...options, maskEntries: entries([0], [0]) }), RangeError, /CSR data for options.maskEntries but A is dense/);
    expectThrows(() => raw.nmf(csr, 2, { ...options, missing: 'absent', maskEntries: entries([0], [0]) }), RangeError, /missing 'observed' with options.maskEntries/);
    expectThrows(() => raw.nmf(csr, 2, { ...options, solver: 'mu', loss: 'kl', maskEntries: entries([0], [0]) }), RangeError, /Frobenius loss/);
    expectThrows(() => raw.stratifiedNmf([csr, csr], 20, 2, { maxIterations: 2, vScaling: 0, tolerance: 0, lossEvery: 1, init: 'random', seed: 0, maskEntries: [null, entries([0], [20])] }),
      RangeError, /column indices in \[0, 20\) for options.maskEntries\[1\].cols/);
    // A valid list runs.
    expect(() => raw.nmf(csr, 2, { ...options, maskEntries: entries([4, 2], [1, 1]) })).not.toThrow();
  });
});
