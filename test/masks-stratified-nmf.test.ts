// Missing values in stratifiedNmf (docs/missing-values.md): weighted Lee–Seung updates of v(s), W(s)
// and H inside the reference's loop. The same guarantees as for nmf: a fully observed mask is the
// unmasked run bit for bit, held-out entries never matter, the loss over the observed entries never
// increases, the certificate is the weighted objective's, and CSR strata with missing 'absent' equal
// dense strata with weight 0 off the stored entries — without being densified.
import { describe, expect, it } from 'vitest';

import { reconstruct, setBlasThreads, setMemoryLimit, stratifiedNmf, stratifiedNmfSync, toCsr, type Matrix, type StratifiedNmfResult } from '../lib/index.js';
import { gradientMapping, largestIncrease, matmul, transposed } from './helpers/snmf-cases.js';
import { readNpy } from './helpers/snmf-corpus.js';
import { dataFile } from './helpers/shared.js';
import { thrown } from './helpers/thrown.js';
import { uniform } from './helpers/uniform.js';

setBlasThreads(1);

// Three strata of the tissue data (rows 0–29, 30–54, 55–89; the first 70 genes).
const tissue = readNpy(dataFile('tissue/tissue_expr.npy'));
const m = 70;
const block = (from: number, to: number): Matrix => {
  const data = new Float64Array((to - from) * m);
  for (let i = from; i < to; i++) data.set(tissue.data.subarray(i * tissue.cols, i * tissue.cols + m), (i - from) * m);
  return { rows: to - from, cols: m, data };
};
const strata = [block(0, 30), block(30, 55), block(55, 90)];
const masks = strata.map((s, k) => {
  const rand = uniform(20 + k);
  return Uint8Array.from({ length: s.rows * m }, () => (rand() < 0.1 ? 1 : 0));
});
const omegaOf = (mask: Uint8Array) => Float64Array.from(mask, (x) => (x ? 0 : 1));

const same = (a: StratifiedNmfResult, b: StratifiedNmfResult) => {
  expect(a.V.data).toEqual(b.V.data);
  a.W.forEach((W, s) => expect(W.data).toEqual(b.W[s]!.data));
  expect(a.H.data).toEqual(b.H.data);
  expect(a.traces.loss).toEqual(b.traces.loss);
  expect(a.normalizedLoss).toBe(b.normalizedLoss);
  expect(a.certificate).toBe(b.certificate);
};

/** √ΣₛΣω(a − v − wh)² and the certificate of the weighted objective, computed independently. */
function weightedCheck(A: Matrix[], omega: Float64Array[], res: StratifiedNmfResult) {
  let loss2 = 0, norm2 = 0;
  const r = res.H.rows;
  const gV = new Float64Array(A.length * m);
  const gH = new Float64Array(r * m);
  const gWs: Float64Array[] = [];
  const R = A.map((a, s) => {
    const WH = matmul(res.W[s]!, res.H);
    const out = new Float64Array(a.data.length);
    for (let k = 0; k < out.length; k++) {
      const w = omega[s]![k]!;
      if (w === 0) continue;
      const d = res.V.data[s * m + (k % m)]! + WH.data[k]! - a.data[k]!;
      out[k] = w * d;
      loss2 += w * d * d;
      norm2 += w * a.data[k]! ** 2;
    }
    return { rows: a.rows, cols: m, data: out };
  });
  R.forEach((Rs, s) => {
    for (let k = 0; k < Rs.data.length; k++) gV[s * m + (k % m)] += Rs.data[k]!;
    gWs.push(matmul(Rs, transposed(res.H)).data.map((g) => g / norm2));
    matmul(transposed(res.W[s]!), Rs).data.forEach((g, k) => (gH[k] += g));
  });
  let certificate = Math.max(gradientMapping(res.V.data, gV.map((g) => g / norm2)), gradientMapping(res.H.data, gH.map((g) => g / norm2)));
  gWs.forEach((g, s) => (certificate = Math.max(certificate, gradientMapping(res.W[s]!.data, g))));
  return { loss: Math.sqrt(loss2), norm: Math.sqrt(norm2), certificate };
}

describe('stratifiedNmf with missing entries', () => {
  const base = { maxIterations: 80, seed: 4 };

  it('a fully observed mask is the unmasked run, bit for bit', () => {
    const plain = stratifiedNmfSync(strata, 4, base);
    same(stratifiedNmfSync(strata, 4, { ...base, mask: strata.map((s) => new Uint8Array(s.rows * m)) }), plain);
    same(stratifiedNmfSync(strata, 4, { ...base, mask: [null, null, null] }), plain);
    same(stratifiedNmfSync(strata, 4, { ...base, missing: 'nan' }), plain);
  });

  it('held-out entries do not influence the fit', () => {
    const withValue = (x: number) => strata.map((s, k) => ({ ...s, data: s.data.map((a, e) => (masks[k]![e] ? x : a)) }));
    const first = stratifiedNmfSync(withValue(NaN), 4, { ...base, mask: masks });
    same(stratifiedNmfSync(withValue(1e5), 4, { ...base, mask: masks }), first);
    same(stratifiedNmfSync(withValue(NaN), 4, { ...base, missing: 'nan' }), first);
    same(stratifiedNmfSync(withValue(0), 4, { ...base, weights: masks.map((mk, s) => ({ rows: strata[s]!.rows, cols: m, data: omegaOf(mk) })) }), first);
    expect(stratifiedNmfSync(strata, 4, base).H.data).not.toEqual(first.H.data);
  });

  it('the loss over the observed entries never increases; loss and certificate are the weighted ones', () => {
    const rand = uniform(3);
    // A mask on two strata, general weights on none of them; then general weights.
    const partial = [masks[0]!, null, masks[2]!];
    const general = strata.map((s, k) => ({ rows: s.rows, cols: m, data: s.data.map((_, e) => (masks[k]![e] ? 0 : 0.3 + rand())) }));
    for (const [options, omega] of [
      [{ mask: partial }, strata.map((s, k) => (partial[k] ? omegaOf(partial[k]!) : new Float64Array(s.rows * m).fill(1)))],
      [{ weights: general }, general.map((w) => w.data)],
    ] as const) {
      const res = stratifiedNmfSync(strata, 4, { ...base, ...options, maxIterations: 200 });
      expect(largestIncrease(res.traces.loss)).toBeLessThan(1e-12);
      const check = weightedCheck(strata, omega as Float64Array[], res);
      expect(res.loss).toBeCloseTo(check.loss, 8);
      expect(res.normalizedLoss).toBeCloseTo(check.loss / check.norm, 12);
      expect(Math.abs(res.certificate - check.certificate)).toBeLessThan(1e-9 * Math.max(1, check.certificate));
    }
  });

  it('approaches a KKT point of the observed entries', () => {
    // The reference's multiplicative updates approach stationarity slowly (unmasked, on these strata,
    // the certificate is 1.8e-4 after 20 iterations and 3.1e-5 after 10 000); the weighted ones alike.
    const early = stratifiedNmfSync(strata, 3, { ...base, mask: masks, maxIterations: 20 });
    const late = stratifiedNmfSync(strata, 3, { ...base, mask: masks, maxIterations: 10000, lossEvery: 100 });
    expect(late.certificate).toBeLessThan(0.25 * early.certificate);
    expect(late.certificate).toBeLessThan(5e-5);
    expect(weightedCheck(strata, masks.map(omegaOf), late).certificate).toBeCloseTo(late.certificate, 10);
  });

  it('certificateTolerance stops on the weighted certificate', () => {
    const res = stratifiedNmfSync(strata, 3, { ...base, mask: masks, maxIterations: 5000, certificateTolerance: 1.5e-4 });
    expect(res.stopReason).toBe('gradMap');
    expect(weightedCheck(strata, masks.map(omegaOf), res).certificate).toBeLessThanOrEqual(1.5e-4);
  });

  it('CSR strata with missing: absent = dense strata with weight 0 off the stored entries', () => {
    const cut = strata.map((s) => ({ ...s, data: s.data.map((x) => (x > 8 ? x : 0)) }));
    // The multiplicative updates: both forms run the same arithmetic to rounding (test/stratified-nmf-hals.test.ts
    // checks 'hals', whose early-stopping inner sweeps let rounding differences grow to ~1e-8).
    const sparse = stratifiedNmfSync(cut.map(toCsr), 3, { ...base, solver: 'mu', missing: 'absent' });
    const dense = stratifiedNmfSync(cut, 3, { ...base, solver: 'mu', weights: cut.map((s) => ({ ...s, data: s.data.map((x) => (x !== 0 ? 1 : 0)) })) });
    expect(sparse.loss).toBeCloseTo(dense.loss, 8);
    for (let k = 0; k < sparse.H.data.length; k++) expect(sparse.H.data[k]).toBeCloseTo(dense.H.data[k]!, 8);
    expect(largestIncrease(sparse.traces.loss)).toBeLessThan(1e-12);
    // A mixed call: a dense stratum with a mask beside CSR strata whose absent entries are missing
    // (with 'mu' too: 'hals' gives a masked row as many inner sweeps as its listed entries' cost
    // allows, and a row of a CSR stratum, whose listed entries are its stored ones, the plain count,
    // so the two spellings' iterates differ beyond rounding; test/stratified-nmf-hals.test.ts compares them).
    const mixed = stratifiedNmfSync([toCsr(cut[0]!), cut[1]!, toCsr(cut[2]!)], 3, { ...base, solver: 'mu', missing: 'absent', mask: [null, masks[1]!, null] });
    const weights = cut.map((s, k) => ({ ...s, data: s.data.map((x, e) => (k === 1 ? (masks[1]![e] ? 0 : 1) : x !== 0 ? 1 : 0)) }));
    const mixedDense = stratifiedNmfSync(cut, 3, { ...base, solver: 'mu', weights });
    expect(mixed.loss).toBeCloseTo(mixedDense.loss, 8);
  });

  it('fromLabels takes one mask for A; reconstruct gives 1v(s)ᵀ + W(s)H per stratum', async () => {
    const A: Matrix = { rows: 90, cols: m, data: new Float64Array(90 * m) };
    strata.forEach((s, k) => A.data.set(s.data, [0, 30, 55][k]! * m));
    const labels = Array.from({ length: 90 }, (_, i) => (i < 30 ? 'a' : i < 55 ? 'b' : 'c'));
    const mask = new Uint8Array(90 * m);
    masks.forEach((mk, k) => mask.set(mk, [0, 30, 55][k]! * m));
    const viaLabels = await stratifiedNmf.fromLabels(A, labels, 4, { ...base, mask });
    same(viaLabels, stratifiedNmfSync(strata, 4, { ...base, mask: masks }));
    const model = reconstruct(viaLabels);
    expect(model.length).toBe(3);
    const WH = matmul(viaLabels.W[1]!, viaLabels.H);
    expect(model[1]!.data[5 * m + 7]).toBeCloseTo(viaLabels.V.data[m + 7]! + WH.data[5 * m + 7]!, 12);
    // Entries of the stacked rows: row 35 is row 5 of stratum 1.
    expect(reconstruct(viaLabels, { entries: { rows: [35], cols: [7] } })[0]).toBe(model[1]!.data[5 * m + 7]);
  });

  it('refuses bad missing-value options before native work', () => {
    expect(() => stratifiedNmfSync(strata, 3, { mask: [masks[0]!] })).toThrow(/Expected an array of 3 entries \(one per stratum; null for none\) for options.mask/);
    expect(() => stratifiedNmfSync(strata, 3, { mask: [masks[1]!, null, null] })).toThrow(/Expected 2100 entries \(rows·cols of strata\[0\]\) for options.mask/);
    expect(() => stratifiedNmfSync(strata.map(toCsr), 3, { mask: masks })).toThrow(/Expected dense data for options.mask.*strata\[0\] is CSR/);
    expect(() => stratifiedNmfSync.fromLabels(strata[0]!, new Array(30).fill(1), 3, { mask: masks })).toThrow(/Expected one mask for A/);
  });

  it("counts HALS's per-thread lists of a masked solve in its memory check", () => {
    // Two 10000×4 strata, rank 2: masked HALS sweeps each row and column with its own list, one per
    // thread of the team, room for 1.5·max(rows, cols) entries at (r + 3.5) doubles each: at least
    // 1.32 MB with one thread (2.64 MB with two). The masked MU solve and the unmasked HALS solve
    // need about 16.21 MB and 14.93 MB (measured when this test was written); 16.3 MB lets those
    // two run and refuses the masked HALS solve before any work.
    const tall = Array.from({ length: 2 }, (_, s) => ({ rows: 10000, cols: 4, data: Float64Array.from({ length: 40000 }, (_, k) => 1 + ((k + s) % 7)) }));
    const hide = tall.map((A) => Uint8Array.from(A.data, (_, k) => (k % 10 === 0 ? 1 : 0)));
    setMemoryLimit(16.3e6);
    try {
      expect(stratifiedNmfSync(tall, 2, { solver: 'mu', maxIterations: 1, mask: hide }).H.cols).toBe(4);
      expect(stratifiedNmfSync(tall, 2, { solver: 'hals', maxIterations: 1 }).H.cols).toBe(4);
      const error = thrown(() => stratifiedNmfSync(tall, 2, { solver: 'hals', maxIterations: 1, mask: hide }));
      expect(error).toBeInstanceOf(RangeError);
      expect(error.message).toMatch(/^Not enough memory for (Stratified-NMF of rank 2 on 20000×4 data|rank 2 with strata of 20000 rows and 4 columns)/);
    } finally {
      setMemoryLimit('auto');
    }
  });
});
