import { describe, expect, it } from 'vitest';

import {
  energy,
  energyBatch,
  energyGradient,
  retract,
  retractVjp,
  svd,
  type Matrix,
  retractionTypes,
  type RetractionType,
} from '../lib/index.js';
import { camel, finiteDifferenceGradient, testMatrix } from './helpers/flow-fixtures.js';
import { readNpyMatrix } from '../lib/io/index.js';
import { dataFile, fxMatrix, fxTensor, loadFixture, relativeError } from './helpers/shared.js';

const fx = loadFixture('energy.json');

describe('energy: parity with energy.json', () => {
  it('matches all 36 energy cases (fidelity, orthogonality, total) at 1e-12', () => {
    let worst = 0;
    for (const c of fx.energy_cases) {
      const o = c.options;
      const opts = {
        weighting: 'reference' as const,
        w: o.w,
        fidEta: o.fid_eta,
        cOrth: o.c_orth,
        fidelityType: camel(o.fidelity_type) as 'basic',
        orthogonalityType: camel(o.orth_type) as 'basic',
      };
      const r = c.Y.shape.length === 3 ? energyBatch(fxTensor(c.Y), fxTensor(c.X0), opts) : energy(fxMatrix(c.Y), fxMatrix(c.X0), opts);
      for (const key of ['fidelity', 'orthogonality', 'total'] as const) {
        worst = Math.max(worst, Math.abs(r[key] - c.result[key]) / Math.abs(c.result[key]));
      }
    }
    expect(fx.energy_cases).toHaveLength(36);
    // closed-form values: the fixtures README's 1e-12 (measured ≈ 2e-15)
    expect(worst).toBeLessThan(1e-12);
  });

  it('matches all 92 autograd gradients dE/dZ through retraction and non-negativity', () => {
    expect(fx.grad_cases).toHaveLength(92);
    const worst: Record<string, number> = {};
    let worstY = 0;
    let worstE = 0;
    for (const c of fx.grad_cases) {
      const o = c.options;
      const r = energyGradient(fxMatrix(c.Z), fxMatrix(c.X0), {
        weighting: 'reference',
        retraction: camel(o.retraction) as RetractionType,
        w: o.w,
        nsIterations: o.ns_iter,
        nonnegativity: camel(o.apply_nonneg) as 'hard',
        fidelityType: camel(o.fidelity_type) as 'basic',
        orthogonalityType: camel(o.orth_type) as 'basic',
        fidEta: o.fid_eta,
        cOrth: o.c_orth,
      });
      worst[o.retraction] = Math.max(worst[o.retraction] ?? 0, relativeError(r.gradient.data, c.grad_Z.data));
      worstY = Math.max(worstY, relativeError(r.Y.data, c.Y.data));
      worstE = Math.max(worstE, Math.abs(r.total - c.energy.total) / Math.abs(c.energy.total));
    }
    // Y and E are closed-form: 1e-12. Gradients: README's 1e-10, 1e-9 for polar and Cayley
    // (measured ≤ 1e-14 for every retraction).
    expect(worstY).toBeLessThan(1e-12);
    expect(worstE).toBeLessThan(1e-12);
    for (const t of ['none', 'soft_newton_schulz', 'normalize']) expect(worst[t]).toBeLessThan(1e-10);
    for (const t of ['polar', 'soft_polar', 'soft_cayley']) expect(worst[t]).toBeLessThan(1e-9);
  });
});

describe('energyGradient: finite differences on other shapes', () => {
  const retractions = retractionTypes;
  const shapes: [number, number][] = [
    [9, 4],
    [6, 6],
  ];
  for (const [p, k] of shapes) {
    for (const retraction of retractions) {
      it(`${retraction} on ${p}×${k} agrees with central differences to 1e-6`, () => {
        const Z = testMatrix(p, k, 11 * p + k, 0.2);
        const X0 = testMatrix(p, k, 3 * p + 7 * k, 0.6);
        const opts = {
          weighting: 'reference' as const,
          retraction,
          w: 0.6,
          nsIterations: 4,
          nonnegativity: 'softplus' as const,
          fidelityType: 'symmetric' as const,
          orthogonalityType: (k === 6 ? 'basic' : 'scaleInvariant') as 'basic',
          fidEta: 1.3,
          cOrth: 2.2,
        };
        const g = energyGradient(Z, X0, opts).gradient.data;
        const fd = finiteDifferenceGradient((z) => energyGradient({ rows: p, cols: k, data: z }, X0, opts).total, Z.data);
        // central differences with h = 1e-6 are accurate to ~1e-8 relative on these smooth maps
        expect(relativeError(g, fd)).toBeLessThan(1e-6);
      });
    }
  }

  it('hard non-negativity passes the gradient where the retraction is ≥ 0 (checked away from the kink)', () => {
    const Z = testMatrix(12, 3, 5, 0.1);
    const X0 = testMatrix(12, 3, 6, 0.5);
    const opts = { retraction: 'softPolar' as const, w: 0.5, nonnegativity: 'hard' as const };
    const g = energyGradient(Z, X0, opts).gradient.data;
    const fd = finiteDifferenceGradient((z) => energyGradient({ rows: 12, cols: 3, data: z }, X0, opts).total, Z.data);
    // no entry of retract(Z) is within 1e-6 of 0 here, so the map is smooth at Z
    expect(relativeError(g, fd)).toBeLessThan(1e-6);
  });
});

describe('polar VJP at equal singular values (an orthonormal PCA start)', () => {
  const data = readNpyMatrix(dataFile('leukemia_all/ALL_expr_top1000var.npy'));
  const k = 6;
  // Y0 = the top-k right singular vectors of the 128×1000 leukemia matrix: 1000×k, orthonormal, so
  // every singular value of Y0 equals 1 and the reference's SVD backward pass divides by 0.
  const { V } = svd(data);
  const Y0: Matrix = { rows: V.rows, cols: k, data: new Float64Array(V.rows * k) };
  for (let i = 0; i < V.rows; i++) for (let j = 0; j < k; j++) Y0.data[i * k + j] = V.data[i * V.cols + j]!;

  it('the data set is the 128×1000 ALL subset and Y0 is orthonormal', () => {
    expect([data.rows, data.cols]).toEqual([128, 1000]);
    const s = svd(Y0).S;
    // all singular values 1 to rounding: the equal-σ case
    for (const x of s) expect(Math.abs(x - 1)).toBeLessThan(1e-12);
  });

  it('equals the closed form G − Y0·sym(Y0ᵀG) + Y0·⟨G, Y0⟩/k of the polar retraction', () => {
    const G = testMatrix(Y0.rows, k, 99);
    const r = retractVjp(Y0, G, { retraction: 'polar' });
    // At an orthonormal Z the polar factor's derivative is the tangent projection, and the norm
    // restoration adds Z⟨G, Z⟩/‖Z‖² (‖Z‖² = k): exact up to rounding.
    const p = Y0.rows;
    const ZtG = new Float64Array(k * k);
    let inner = 0;
    for (let i = 0; i < p; i++) {
      for (let a = 0; a < k; a++) {
        inner += G.data[i * k + a]! * Y0.data[i * k + a]!;
        for (let b = 0; b < k; b++) ZtG[a * k + b]! += Y0.data[i * k + a]! * G.data[i * k + b]!;
      }
    }
    const expected = new Float64Array(p * k);
    for (let i = 0; i < p; i++) {
      for (let b = 0; b < k; b++) {
        let s = 0;
        for (let a = 0; a < k; a++) s += Y0.data[i * k + a]! * 0.5 * (ZtG[a * k + b]! + ZtG[b * k + a]!);
        expected[i * k + b] = G.data[i * k + b]! - s + (Y0.data[i * k + b]! * inner) / k;
      }
    }
    expect(relativeError(r.gradient.data, expected)).toBeLessThan(1e-12);
    expect(relativeError(r.Y.data, retract(Y0, { type: 'polar' }).data)).toBeLessThan(1e-14);
  });

  it('energyGradient is finite there and matches finite differences along random directions', () => {
    const X0: Matrix = { rows: Y0.rows, cols: k, data: Y0.data.map((x) => Math.max(x, 0)) };
    const opts = { retraction: 'softPolar' as const, w: 0.5, nonnegativity: 'none' as const };
    const r = energyGradient(Y0, X0, opts);
    expect(r.gradient.data.every(Number.isFinite)).toBe(true);
    // directional derivative ⟨∇E, D⟩ against a central difference along D (h = 1e-6)
    for (const seed of [1, 2, 3]) {
      const D = testMatrix(Y0.rows, k, seed);
      const h = 1e-6;
      const at = (t: number): number =>
        energyGradient({ rows: Y0.rows, cols: k, data: Y0.data.map((x, i) => x + t * D.data[i]!) }, X0, opts).total;
      const fd = (at(h) - at(-h)) / (2 * h);
      let dir = 0;
      for (let i = 0; i < D.data.length; i++) dir += r.gradient.data[i]! * D.data[i]!;
      expect(Math.abs(dir - fd) / Math.abs(fd)).toBeLessThan(1e-6);
    }
  });
});

describe('energy: bad input', () => {
  const Y = testMatrix(5, 2, 1);
  it('rejects a shape mismatch with a RangeError naming X0', () => {
    expect(() => energy(Y, testMatrix(4, 2, 1))).toThrow(RangeError);
    expect(() => energy(Y, testMatrix(4, 2, 1))).toThrow(/Expected X0 to have the shape of Y \(5×2\) but received 4×2/);
  });
  it('rejects w outside [0, 1] and unknown types', () => {
    expect(() => energy(Y, Y, { w: 1.5 })).toThrow(/Expected a finite number in \[0, 1\] for options.w of energy\(\) but received 1.5/);
    expect(() => energy(Y, Y, { weighting: 'reference', fidelityType: 'l1' as 'basic' })).toThrow(/one of 'basic', 'scaleInvariant', 'symmetric'/);
  });
  it('rejects a wide matrix for a Stiefel retraction', () => {
    expect(() => retractVjp(testMatrix(2, 3, 1), testMatrix(2, 3, 2), { retraction: 'polar' })).toThrow(RangeError);
  });
  it('the raw binding refuses garbage with an exception, not a crash', async () => {
    const { native } = await import('../lib/native.js');
    expect(() => native().retractVjp(new Float64Array(3), new Float64Array(3), 2, 2, 'polar', 1, 5, 'none')).toThrow(
      /Expected a Float64Array of length 4/,
    );
    expect(() => native().flowEnergy(new Float64Array(4), new Float64Array(4), 0, 2, 2, 'nope', 'basic', 0.5, 1, 1)).toThrow(
      /Expected one of/,
    );
  });
});
