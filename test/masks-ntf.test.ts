// Missing values in ntf (non-negative CP): a fully observed mask is the unmasked run bit for bit,
// held-out entries never matter, the loss over the observed entries never increases (weighted MU:
// the Lee–Seung auxiliary function per mode; weighted HALS: exact coordinate minimization, or plain
// sweeps on a majorizer with weightedHals 'surrogate'), and the certificate is the weighted objective's.
import { describe, expect, it } from 'vitest';

import { ntf, ntfSync, reconstruct, setBlasThreads, setMemoryLimit, type NtfResult, type Tensor } from '../lib/index.js';
import { largestIncrease } from './helpers/snmf-cases.js';
import { thrown } from './helpers/thrown.js';
import { uniform } from './helpers/uniform.js';

setBlasThreads(1);

// A rank-3 non-negative 12×10×8 tensor plus noise.
const shape = [12, 10, 8];
const rand = uniform(17);
const truth = shape.map((d) => Float64Array.from({ length: d * 3 }, () => rand()));
const size = 12 * 10 * 8;
const exact = new Float64Array(size);
for (let i = 0; i < 12; i++)
  for (let j = 0; j < 10; j++)
    for (let k = 0; k < 8; k++) {
      let x = 0;
      for (let a = 0; a < 3; a++) x += truth[0]![i * 3 + a]! * truth[1]![j * 3 + a]! * truth[2]![k * 3 + a]!;
      exact[(i * 10 + j) * 8 + k] = x;
    }
const T: Tensor = { shape, data: exact.map((x) => x + 0.05 * rand()) };
const mask = Uint8Array.from({ length: size }, () => (rand() < 0.1 ? 1 : 0));

const same = (a: NtfResult, b: NtfResult) => {
  a.factors.forEach((f, m) => expect(f.data).toEqual(b.factors[m]!.data));
  expect(a.traces.loss).toEqual(b.traces.loss);
  expect(a.normalizedLoss).toBe(b.normalizedLoss);
};

/** √Σω(t − model)² at the result's factors, independently. */
function weightedLoss(res: NtfResult, omega: Float64Array): number {
  const model = reconstruct(res);
  let s = 0;
  model.data.forEach((x, k) => (s += omega[k]! * (T.data[k]! - x) ** 2 * (omega[k] === 0 ? 0 : 1)));
  return Math.sqrt(s);
}

describe.each(['mu', 'hals'] as const)('ntf %s with missing entries', (solver) => {
  const base = { solver, maxIterations: 60, seed: 2 };

  it('a fully observed mask is the unmasked run, bit for bit; held-out entries never matter', () => {
    const plain = ntfSync(T, 3, base);
    same(ntfSync(T, 3, { ...base, mask: new Uint8Array(size) }), plain);
    same(ntfSync(T, 3, { ...base, missing: 'nan' }), plain);
    const withValue = (x: number) => ({ shape, data: T.data.map((t, k) => (mask[k] ? x : t)) });
    const first = ntfSync(withValue(NaN), 3, { ...base, mask });
    same(ntfSync(withValue(1e4), 3, { ...base, mask }), first);
    same(ntfSync(withValue(NaN), 3, { ...base, missing: 'nan' }), first);
    same(ntfSync(withValue(0), 3, { ...base, weights: { shape, data: Float64Array.from(mask, (x) => (x ? 0 : 1)) } }), first);
    expect(first.factors[0]!.data).not.toEqual(plain.factors[0]!.data);
  });

  it('the observed loss never increases and is reported over the observed entries; the hidden entries are recovered', async () => {
    const rw = uniform(4);
    const weights = { shape, data: Float64Array.from(mask, (x) => (x ? 0 : 0.5 + rw())) };
    // HALS: the mask takes the surrogate update ('auto', 10 % missing), the weights (up to 1.5) the
    // exact one; the mask with the exact update as well.
    for (const [options, omega] of [
      [{ mask }, Float64Array.from(mask, (x) => (x ? 0 : 1))],
      [{ weights }, weights.data],
      ...(solver === 'hals' ? ([[{ mask, weightedHals: 'exact' }, Float64Array.from(mask, (x) => (x ? 0 : 1))]] as const) : []),
    ] as const) {
      const res = ntfSync(T, 3, { ...base, ...options, maxIterations: 300 });
      if (solver === 'hals') expect(res.settings.weightedHals).toBe('weightedHals' in options ? 'exact' : 'weights' in options ? 'exact' : 'surrogate');
      expect(largestIncrease(res.traces.loss)).toBeLessThan(1e-12);
      expect(res.loss).toBeCloseTo(weightedLoss(res, omega), 8);
    }
    const res = await ntf({ shape, data: T.data.map((t, k) => (mask[k] ? NaN : t)) }, 3, { ...base, mask, maxIterations: 1000 });
    const model = reconstruct(res);
    let err = 0, noise = 0;
    mask.forEach((h, k) => h && ((err += (model.data[k]! - exact[k]!) ** 2), (noise += (T.data[k]! - exact[k]!) ** 2)));
    // The hidden entries come back to the noise level: within 1.5× the noise the data itself carries there
    // (the noise 0.05·U(0,1) has a mean, which the rank-3 model absorbs only in part).
    expect(Math.sqrt(err / noise)).toBeLessThan(1.5);
    expect(res.certificate).toBeLessThan(1e-3);
  });
});

describe('ntf: certificateTolerance with a mask stops on the weighted certificate', () => {
  it.each(['mu', 'hals'] as const)('%s', (solver) => {
    const res = ntfSync(T, 3, { solver, mask, seed: 2, maxIterations: 5000, certificateTolerance: 1e-4 });
    expect(res.stopReason).toBe('gradMap');
    expect(res.certificate).toBeLessThanOrEqual(1e-4);
  });
});

describe('ntf missing-value options: bad input', () => {
  it('names the defect', () => {
    expect(() => ntfSync(T, 3, { mask: new Uint8Array(5) })).toThrow(/Expected 960 entries \(the size of T\) for options.mask/);
    expect(() => ntfSync(T, 3, { weights: { shape: [12, 10], data: new Float64Array(120) } })).toThrow(/shape \[12, 10, 8\]/);
    expect(() => ntfSync(T, 3, { weights: { shape, data: new Float64Array(size).fill(-1) } })).toThrow(/weights ≥ 0.*-1 at index 0/);
    const nan = { shape, data: T.data.slice() };
    const observed = mask.findIndex((x) => x === 0);
    nan.data[observed] = NaN;
    expect(() => ntfSync(nan, 3)).toThrow(RangeError);
    expect(() => ntfSync(nan, 3, { mask })).toThrow(new RegExp(`NaN at flat index ${observed} \\(mark missing entries`));
  });

  it("counts HALS's per-thread column scratch of a masked solve in its memory check", () => {
    // 2×5000×4 with half the entries missing, rank 2: a column of mode 0 meets 20 000 listed entries,
    // and in the exact weighted update each thread of the team gathers one column's Khatri–Rao rows
    // and residuals, (r + 1) doubles per entry: at least 0.48 MB with one thread (0.96 MB with two).
    // The masked MU solve needs about 3.64 MB (measured when this test was written), and HALS's
    // surrogate update the same buffers as MU; 3.8 MB lets them and the unmasked HALS solve run and
    // refuses the masked HALS solve (the exact update, the default with half the entries missing)
    // before any work.
    const T: Tensor = { shape: [2, 5000, 4], data: Float64Array.from({ length: 40000 }, (_, k) => 1 + (k % 7)) };
    const hide = Uint8Array.from({ length: 40000 }, (_, k) => (k % 2 === 0 ? 1 : 0));
    setMemoryLimit(3.8e6);
    try {
      expect(ntfSync(T, 2, { solver: 'mu', maxIterations: 1, mask: hide }).factors).toHaveLength(3);
      expect(ntfSync(T, 2, { solver: 'hals', maxIterations: 1 }).factors).toHaveLength(3);
      expect(ntfSync(T, 2, { solver: 'hals', maxIterations: 1, mask: hide, weightedHals: 'surrogate' }).factors).toHaveLength(3);
      const error = thrown(() => ntfSync(T, 2, { solver: 'hals', maxIterations: 1, mask: hide }));
      expect(error).toBeInstanceOf(RangeError);
      expect(error.message).toMatch(/^Not enough memory for rank 2 with T of shape \[2, 5000, 4\]/);
    } finally {
      setMemoryLimit('auto');
    }
  });
});
