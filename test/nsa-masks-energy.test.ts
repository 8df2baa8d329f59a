// The weighted fidelity of the calibration-free NSA-Flow energy (nsaEnergy with weights/mask/missing):
// its gradient against central differences in every mode that takes weights, the unweighted energy when
// every weight is 1, missing entries that cannot change it, and bad inputs refused by class and message.
import { describe, expect, it } from 'vitest';

import { nsaEnergy, setMemoryLimit, type Matrix, type NsaEnergyOptions } from '../lib/index.js';
import { native } from '../lib/native.js';
import { uniform } from './helpers/uniform.js';

const random = (rows: number, cols: number, seed: number, lo = 0): Matrix => {
  const u = uniform(seed);
  return { rows, cols, data: Float64Array.from({ length: rows * cols }, () => lo + (1 - lo) * u()) };
};

/** Weights with about a quarter of the entries 0 (missing) and the rest in [0.5, 2). */
function someWeights(rows: number, cols: number, seed: number): Matrix {
  const u = uniform(seed);
  return { rows, cols, data: Float64Array.from({ length: rows * cols }, () => (u() < 0.25 ? 0 : 0.5 + 1.5 * u())) };
}

/**
 * The largest difference between the analytic gradient and central differences (step h = 1e-6 relative
 * to each coordinate's scale), relative to the gradient's largest entry. The energy is a polynomial of
 * degree ≤ 4 in Y, so the central difference's error is O(h²)·(third derivative) ≈ 1e-12 and the
 * cancellation error ≈ 1e-16/h ≈ 1e-10: 1e-6 leaves a margin of 10⁴ over both.
 */
function gradientError(Y: Matrix, options: NsaEnergyOptions): number {
  const g = nsaEnergy(Y, options).gradient.data;
  let big = 0;
  for (const v of g) big = Math.max(big, Math.abs(v));
  let worst = 0;
  for (let i = 0; i < Y.data.length; i++) {
    const h = 1e-6 * Math.max(1, Math.abs(Y.data[i]!));
    const at = (d: number) => {
      const data = new Float64Array(Y.data);
      data[i]! += d;
      return nsaEnergy({ ...Y, data }, options).energy;
    };
    const fd = (at(h) - at(-h)) / (2 * h);
    worst = Math.max(worst, Math.abs(fd - g[i]!) / big);
  }
  return worst;
}

describe('the weighted fidelity: gradient by central differences (max error / max |∇E| ≤ 1e-6)', () => {
  const p = 9, k = 3, n = 14;
  it("'target': F = Σ ω(Y − X0)²/Σ ω·X0²", () => {
    const opts: NsaEnergyOptions = { X0: random(p, k, 1), weights: someWeights(p, k, 2), w: 0.3 };
    expect(gradientError(random(p, k, 3), opts)).toBeLessThan(1e-6);
  });
  it("'data': scores from the observed entries, F over them", () => {
    const opts: NsaEnergyOptions = { mode: 'data', X: random(n, p, 4, -1), weights: someWeights(n, p, 5), w: 0.4 };
    expect(gradientError(random(p, k, 6), opts)).toBeLessThan(1e-6);
  });
  it("'data' with a row of X wholly missing (its scores are 0)", () => {
    const mask = new Uint8Array(n * p);
    mask.fill(1, 2 * p, 3 * p);
    const opts: NsaEnergyOptions = { mode: 'data', X: random(n, p, 7, -1), mask, w: 0.5 };
    expect(gradientError(random(p, k, 8), opts)).toBeLessThan(1e-6);
  });
  it("'signed': the lobes [V⁺ V⁻] with the overlap penalty", () => {
    const opts: NsaEnergyOptions = { mode: 'signed', X: random(n, p, 9, -1), weights: someWeights(n, p, 10), w: 0.5, overlapPenalty: 0.3 };
    expect(gradientError(random(p, 2 * k, 11), opts)).toBeLessThan(1e-6);
  });
});

describe('the weighted fidelity: values', () => {
  const p = 8, k = 2, n = 12;
  const X = random(n, p, 20, -1);
  const V = random(p, k, 21);

  it('weights all 1 (and an empty mask) give the unweighted energy and gradient bit for bit', () => {
    for (const [mode, Y, data] of [
      ['data', V, { X }],
      ['target', V, { X0: random(p, k, 22) }],
    ] as const) {
      const plain = nsaEnergy(Y, { mode, ...data });
      const ones = { rows: mode === 'data' ? n : p, cols: mode === 'data' ? p : k, data: new Float64Array(mode === 'data' ? n * p : p * k).fill(1) };
      for (const extra of [{ weights: ones }, { mask: new Uint8Array(ones.data.length) }, { missing: 'nan' as const }]) {
        const r = nsaEnergy(Y, { mode, ...data, ...extra });
        expect(r.energy).toBe(plain.energy);
        expect(Array.from(r.gradient.data)).toEqual(Array.from(plain.gradient.data));
      }
    }
  });

  it("'data' with a 0/1 mask: F = Σ_obs (x − t·vⱼ)²/Σ_obs x² with tᵢ = (p/#obsᵢ)·Σ_obs xᵢⱼvⱼ, computed here", () => {
    const u = uniform(23);
    const mask = Uint8Array.from({ length: n * p }, () => (u() < 0.3 ? 1 : 0));
    let num = 0, den = 0;
    for (let i = 0; i < n; i++) {
      let observed = 0;
      const t = new Float64Array(k);
      for (let j = 0; j < p; j++) {
        if (mask[i * p + j]) continue;
        observed++;
        for (let c = 0; c < k; c++) t[c]! += X.data[i * p + j]! * V.data[j * k + c]!;
      }
      for (let c = 0; c < k; c++) t[c]! *= observed > 0 ? p / observed : 0;
      for (let j = 0; j < p; j++) {
        if (mask[i * p + j]) continue;
        let m = 0;
        for (let c = 0; c < k; c++) m += t[c]! * V.data[j * k + c]!;
        num += (X.data[i * p + j]! - m) ** 2;
        den += X.data[i * p + j]! ** 2;
      }
    }
    expect(nsaEnergy(V, { mode: 'data', X, mask, w: 0 }).fidelity).toBeCloseTo(num / den, 14);
  });

  it('the values at missing entries (NaN included) change nothing', () => {
    const mask = new Uint8Array(n * p);
    [3, 17, 40, 41, 90].forEach((i) => (mask[i] = 1));
    const a = nsaEnergy(V, { mode: 'data', X, mask, w: 0.5 });
    const changed = { ...X, data: X.data.map((x, i) => (mask[i] ? (i % 2 ? NaN : 1e6) : x)) };
    const b = nsaEnergy(V, { mode: 'data', X: changed, mask, w: 0.5 });
    expect(b.energy).toBe(a.energy);
    expect(Array.from(b.gradient.data)).toEqual(Array.from(a.gradient.data));
    const c = nsaEnergy(V, { mode: 'data', X: { ...X, data: X.data.map((x, i) => (mask[i] ? NaN : x)) }, missing: 'nan', w: 0.5 });
    expect(c.energy).toBe(a.energy);
  });

  it('F is 1 at V = 0 and scale-free in the weights (ω and 3ω give the same energy to 1e-14)', () => {
    const weights = someWeights(n, p, 24);
    expect(nsaEnergy({ rows: p, cols: k, data: new Float64Array(p * k) }, { mode: 'data', X, weights, w: 0 }).fidelity).toBe(1);
    const a = nsaEnergy(V, { mode: 'data', X, weights, w: 0.5 }).energy;
    const b = nsaEnergy(V, { mode: 'data', X, weights: { ...weights, data: weights.data.map((x) => 3 * x) }, w: 0.5 }).energy;
    expect(Math.abs(a - b)).toBeLessThan(1e-14);
  });
});

describe('the weighted fidelity: bad inputs', () => {
  const p = 6, k = 2, n = 7;
  const X = random(n, p, 30, -1);
  const V = random(p, k, 31);
  const cases: [string, () => unknown, RegExp][] = [
    ['weights of the wrong shape', () => nsaEnergy(V, { mode: 'data', X, weights: random(n, p - 1, 1) }), /Expected a 7×6 Matrix \(the shape of options\.X\) for options\.weights/],
    ['negative weights', () => nsaEnergy(V, { mode: 'data', X, weights: { rows: n, cols: p, data: new Float64Array(n * p).fill(-1) } }), /Expected finite weights ≥ 0 in options\.weights of nsaEnergy\(\) but received -1 at index 0/],
    ['NaN without a mask', () => nsaEnergy(V, { mode: 'data', X: { ...X, data: X.data.map((x, i) => (i === 5 ? NaN : x)) } }), /Expected finite values in options\.X/],
    ['NaN at an observed entry', () => nsaEnergy(V, { mode: 'data', X: { ...X, data: X.data.map((x, i) => (i === 5 ? NaN : x)) }, mask: { rows: [0], cols: [0] } }), /NaN at \[0, 5\] \(mark missing entries/],
    ['a mask of the wrong length', () => nsaEnergy(V, { mode: 'data', X, mask: new Uint8Array(3) }), /Expected 42 entries \(rows·cols of options\.X\) for options\.mask/],
    ["missing 'absent' (CSR only)", () => nsaEnergy(V, { mode: 'data', X, missing: 'absent' as never }), /options\.missing/],
    ["weights in 'anchored' mode", () => nsaEnergy(V, { mode: 'anchored', X0: V, mask: new Uint8Array(p * k) }), /Expected no options\.mask of nsaEnergy\(\) in 'anchored' mode/],
    ['every observed entry zero', () => nsaEnergy(V, { mode: 'data', X: { ...X, data: X.data.map((x, i) => (i === 0 ? 1 : 0)) }, mask: { rows: [0], cols: [0] } }), /Expected a nonzero X of nsaEnergy\(\) .* at the entries of nonzero weight/],
  ];
  for (const [what, call, message] of cases) {
    it(`refuses ${what} (RangeError)`, () => expect(call).toThrow(RangeError) && expect(call).toThrow(message));
  }

  it('the addon refuses bad weights itself (second guard)', () => {
    const raw = native();
    const opts = { mode: 'data', w: 0.5, orthogonality: 'gram', nonnegative: true, overlapPenalty: 0.1, anchor: 'subspace' } as const;
    const call = (weights: unknown, x = X.data) => () => raw.certifiedEnergy(V.data, p, k, null, 0, x, n, { ...opts, weights } as never);
    expect(call(new Float64Array(5))).toThrow(/Expected a Float64Array of length 42 \(dataRows·rows \(the shape of X\)\) for options\.weights/);
    expect(call(new Float64Array(n * p).fill(-1))).toThrow(/Expected finite non-negative values in options\.weights but received -1 at index 0/);
    const withNaN = X.data.map((x, i) => (i === 4 ? NaN : x));
    expect(call(new Float64Array(n * p).fill(1), withNaN)).toThrow(/Expected finite values in X at the entries of nonzero weight but received NaN at index 4/);
    const missing4 = new Float64Array(n * p).fill(1);
    missing4[4] = 0;
    expect(() => call(missing4, withNaN)()).not.toThrow();
    expect(() => raw.certifiedEnergy(V.data, p, k, V.data, k, null, 0, { ...opts, mode: 'anchored', weights: new Float64Array(p * k) } as never)).toThrow(
      /Expected no options\.weights in 'anchored' mode/,
    );
  });
});

describe('the weighted fidelity: memory is checked before allocation', () => {
  // 2000×50 data, k = 2: the unweighted evaluation holds X's copy and XᵀX (about 0.9 MB); the weighted
  // one adds the weights, ω∘X and the weighted residual, three 2000×50 arrays (2.4 MB more). A 2 MB
  // limit lets the first through and stops the second, in TypeScript and in the addon alike.
  const n = 2000, p = 50, k = 2;
  const X = random(n, p, 40, -1);
  const V = random(p, k, 41);
  const weights = { rows: n, cols: p, data: new Float64Array(n * p).fill(1) };
  weights.data[0] = 0;
  it('nsaEnergy refuses, naming the limit, where the unweighted energy fits', () => {
    const before = setMemoryLimit(2_000_000);
    try {
      expect(() => nsaEnergy(V, { mode: 'data', X })).not.toThrow();
      const e = (() => {
        try {
          nsaEnergy(V, { mode: 'data', X, weights });
        } catch (err) {
          return err as Error;
        }
        throw new Error('expected a throw');
      })();
      expect(e).toBeInstanceOf(RangeError);
      expect(e.message).toMatch(/^Not enough memory for the certified NSA-Flow solve on Y0 \(50×2\): it needs .* over the memory limit of/);
      const opts = { mode: 'data', w: 0.5, orthogonality: 'gram', nonnegative: true, overlapPenalty: 0.1, anchor: 'subspace' } as const;
      expect(() => native().certifiedEnergy(V.data, p, k, null, 0, X.data, n, opts as never)).not.toThrow();
      expect(() => native().certifiedEnergy(V.data, p, k, null, 0, X.data, n, { ...opts, weights: weights.data } as never)).toThrow(/memory/);
    } finally {
      setMemoryLimit(before);
    }
  });
});
