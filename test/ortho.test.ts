// Parity of the orthogonalization toolkit with test/fixtures/ortho.json.gz (SPEC.md §1–3).
// Closed-form values are compared at 1e-12 relative to the largest entry, as the fixtures README
// suggests; the 12 implementation-defined entries (rank-deficient polar/Cayley) by their invariants.
import { describe, expect, it } from 'vitest';

import {
  applyNonNegativity,
  basicOrthogonality,
  basicOrthogonalityBatch,
  defectFast,
  inverseSqrt,
  invariantOrthogonalityDefect,
  invariantOrthogonalityDefectBatch,
  invariantOrthogonalityDefectGradient,
  invariantOrthogonalityDefectGradientBatch,
  matrix,
  nsaFlowExplicitSync,
  procrustes,
  qr,
  retract,
  retractBatch,
  svd,
  transpose,
  type Matrix,
  type RetractionType,
} from '../lib/index.js';
import { fxMatrix, fxTensor, loadFixture, relativeError, type FixtureArray } from './helpers/shared.js';

interface RetractionEntry {
  retraction_type: string;
  w_retract: number;
  ns_iter: number;
  out: FixtureArray;
  returned_input_unchanged: boolean;
  implementation_defined?: boolean;
}
interface OrthoCase {
  name: string;
  Y: FixtureArray;
  defect: number;
  defect_grad: FixtureArray;
  orth_basic: number;
  retractions: RetractionEntry[];
  YtY: FixtureArray;
  inv_sqrt: { method: string; epsilon: number; ns_iter: number; input: 'YtY'; out: FixtureArray }[];
  nonneg: { hard: FixtureArray; softplus: FixtureArray };
}

const cases = loadFixture<{ cases: OrthoCase[] }>('ortho.json').cases;
const matrixCases = cases.filter((c) => c.Y.shape.length === 2);
const batchCase = cases.find((c) => c.Y.shape.length === 3)!;

/** The reference's snake_case names → this API's names. */
const typeName: Record<string, RetractionType> = {
  none: 'none',
  polar: 'polar',
  soft_polar: 'softPolar',
  newton_schulz: 'newtonSchulz',
  soft_newton_schulz: 'softNewtonSchulz',
  cayley: 'cayley',
  soft_cayley: 'softCayley',
  normalize: 'normalize',
};

function mul(a: Matrix, b: Matrix): Matrix {
  const out = new Float64Array(a.rows * b.cols);
  for (let i = 0; i < a.rows; i++)
    for (let l = 0; l < a.cols; l++) {
      const x = a.data[i * a.cols + l]!;
      for (let j = 0; j < b.cols; j++) out[i * b.cols + j]! += x * b.data[l * b.cols + j]!;
    }
  return { rows: a.rows, cols: b.cols, data: out };
}

function frob(m: { data: Float64Array }): number {
  return Math.sqrt(m.data.reduce((s, v) => s + v * v, 0));
}

describe('orthogonality measures (ortho.json)', () => {
  for (const c of matrixCases) {
    it(`${c.name}: defect, its gradient and basic orthogonality match at 1e-12`, () => {
      const Y = fxMatrix(c.Y);
      // Closed forms: agreement to rounding (1e-12 relative).
      expect(Math.abs(invariantOrthogonalityDefect(Y) - c.defect)).toBeLessThanOrEqual(1e-12 * Math.abs(c.defect) + 1e-300);
      expect(defectFast(Y)).toBe(invariantOrthogonalityDefect(Y)); // an alias, same number
      expect(relativeError(invariantOrthogonalityDefectGradient(Y).data, fxMatrix(c.defect_grad).data)).toBeLessThan(1e-12);
      expect(Math.abs(basicOrthogonality(Y) - c.orth_basic)).toBeLessThanOrEqual(1e-12 * Math.abs(c.orth_basic));
    });
  }

  it(`${batchCase.name}: batch defect (mean), gradient (with 1/B) and basic orthogonality at 1e-12`, () => {
    const Y = fxTensor(batchCase.Y);
    expect(Math.abs(invariantOrthogonalityDefectBatch(Y) - batchCase.defect)).toBeLessThanOrEqual(1e-12 * batchCase.defect);
    expect(relativeError(invariantOrthogonalityDefectGradientBatch(Y).data, fxTensor(batchCase.defect_grad).data)).toBeLessThan(1e-12);
    expect(Math.abs(basicOrthogonalityBatch(Y) - batchCase.orth_basic)).toBeLessThanOrEqual(1e-12 * batchCase.orth_basic);
  });

  it('defect gradient agrees with central finite differences (7×4, h = 1e-6)', () => {
    const Y = matrix([
      [0.3, -1.2, 0.5, 2.0],
      [1.1, 0.4, -0.7, 0.2],
      [-0.6, 0.9, 1.3, -0.4],
      [0.8, 0.1, 0.2, 1.5],
      [-1.4, 0.6, 0.3, 0.7],
      [0.2, -0.3, -1.1, 0.9],
      [0.5, 1.7, 0.4, -0.8],
    ]);
    const G = invariantOrthogonalityDefectGradient(Y);
    const h = 1e-6;
    let worst = 0;
    for (let i = 0; i < Y.data.length; i++) {
      const plus = { ...Y, data: Y.data.slice() };
      const minus = { ...Y, data: Y.data.slice() };
      plus.data[i]! += h;
      minus.data[i]! -= h;
      const fd = (invariantOrthogonalityDefect(plus) - invariantOrthogonalityDefect(minus)) / (2 * h);
      worst = Math.max(worst, Math.abs(fd - G.data[i]!));
    }
    // Central differences of a smooth function with h = 1e-6 are accurate to ~1e-9 here.
    expect(worst).toBeLessThan(1e-8);
  });

  it('near orthogonality the defect from the Gram (explicit flow) equals the defect from Y (1e-14), where ‖S‖² − Σ S_ii² loses every digit', () => {
    // Y0 = Q + 1e-9·noise: the off-diagonal Gram entries are ~1e-10, so Σ_{i≠j} S_ij² ~ 1e-19 while
    // ‖S‖² ≈ k = 5 carries an absolute rounding error ~1e-15: the cancelling form keeps no digit.
    const p = 200, k = 5;
    let state = 7;
    const noise = (): number => {
      state = (state * 1103515245 + 12345) % 2147483648;
      return state / 2147483648 - 0.5;
    };
    const Q = qr({ rows: p, cols: k, data: Float64Array.from({ length: p * k }, noise) }).Q;
    const Y0: Matrix = { rows: p, cols: k, data: Q.data.map((v) => v + 1e-9 * noise()) };

    // The premise: in double precision the cancelling form of this Y0 is off by more than 10%.
    const S = new Float64Array(k * k);
    for (let r = 0; r < p; r++)
      for (let i = 0; i < k; i++) for (let j = 0; j < k; j++) S[i * k + j]! += Y0.data[r * k + i]! * Y0.data[r * k + j]!;
    let all = 0, diag = 0, off = 0, tr = 0;
    for (let i = 0; i < k; i++)
      for (let j = 0; j < k; j++) {
        const s = S[i * k + j]!;
        all += s * s;
        if (i === j) {
          diag += s * s;
          tr += s;
        } else {
          off += s * s;
        }
      }
    expect(Math.abs((all - diag) - off) / off).toBeGreaterThan(0.1);

    // One explicit-flow iteration with a step far below rounding (T = Y0 exactly) and no retraction:
    // its orthogonality trace is the defect of the Gram it accumulated (one DSYRK block, p ≤ 1024 rows,
    // the same YᵀY as the defect from Y). The two differ only in the normalizer, tr S vs Σ Y_ij².
    const run = nsaFlowExplicitSync(Y0, { X0: Y0, weighting: 'balanced', retraction: 'none', nonnegativity: 'none', rescale: false, learningRate: 1e-20, maxIterations: 1 });
    expect(Array.from(run.Y.data)).toEqual(Array.from(Y0.data));
    const fromY = invariantOrthogonalityDefect(Y0);
    const fromGram = run.traces.orthogonality[0]!;
    expect(fromY).toBeGreaterThan(0.5 * off / (tr * tr)); // ≈ 1.1e-19: every digit kept
    expect(fromY).toBeLessThan(2 * off / (tr * tr));
    // Measured: 1.7e-15 relative (the rounding of the two normalizers); the cancelling form gave 0.
    expect(Math.abs(fromGram - fromY) / fromY).toBeLessThan(1e-14);
  });
});

describe('retractions (ortho.json)', () => {
  for (const c of matrixCases) {
    const Y = fxMatrix(c.Y);
    const exact = c.retractions.filter((r) => !r.implementation_defined);
    it(`${c.name}: ${exact.length} retractions match at 1e-12, unchanged-input semantics exact`, () => {
      for (const r of exact) {
        const out = retract(Y, { type: typeName[r.retraction_type]!, w: r.w_retract, nsIterations: r.ns_iter });
        const label = `${r.retraction_type} w=${r.w_retract} ns=${r.ns_iter}`;
        if (r.returned_input_unchanged) {
          // The reference returns Y bit for bit (w = 0 or type none): so must we.
          expect(out.data, label).toEqual(Y.data);
        }
        expect(relativeError(out.data, fxMatrix(r.out).data), label).toBeLessThan(1e-12);
      }
    });
    for (const method of ['svd', 'gram'] as const) {
      it(`${c.name}: polar via ${method} matches the fixture (1e-12) where Y is well-conditioned`, () => {
        for (const r of exact.filter((e) => e.retraction_type.endsWith('polar') && e.w_retract !== 0)) {
          const out = retract(Y, { type: typeName[r.retraction_type]!, w: r.w_retract, polarMethod: method });
          expect(relativeError(out.data, fxMatrix(r.out).data)).toBeLessThan(method === 'svd' ? 1e-12 : 1e-10);
        }
      });
    }
  }

  const deficient = cases.find((c) => c.name.includes('rank_deficient'))!;
  it('rank-deficient case: the 12 implementation-defined entries satisfy their invariants', () => {
    const Y = fxMatrix(deficient.Y);
    const entries = deficient.retractions.filter((r) => r.implementation_defined);
    expect(entries.length).toBe(12); // the fixtures README names exactly 12
    const { U, S } = svd(Y);
    const rank = Array.from(S).filter((s) => s > 1e-10 * S[0]!).length;
    expect(rank).toBe(4); // column 4 equals column 3
    const Ur = { rows: U.rows, cols: rank, data: new Float64Array(U.rows * rank) };
    for (let i = 0; i < U.rows; i++) for (let j = 0; j < rank; j++) Ur.data[i * rank + j] = U.data[i * U.cols + j]!;
    for (const r of entries) {
      const out = retract(Y, { type: typeName[r.retraction_type]!, w: r.w_retract });
      const ref = fxMatrix(r.out);
      // Norm restored: ‖R‖ = ‖Y‖ to rounding.
      expect(Math.abs(frob(out) - frob(Y)) / frob(Y)).toBeLessThan(1e-12);
      if (r.retraction_type.endsWith('polar')) {
        // On the range of Y the polar factor is unique: UrᵀR agrees with the reference's UrᵀR.
        const mine = mul(transpose(Ur), out);
        const theirs = mul(transpose(Ur), ref);
        expect(relativeError(mine.data, theirs.data)).toBeLessThan(1e-10);
      }
      if (r.retraction_type === 'polar' || r.retraction_type === 'cayley') {
        // Non-soft factors have orthonormal columns up to the restored norm: RᵀR = (‖Y‖²/k)·I.
        const G = mul(transpose(out), out);
        const scale = frob(Y) ** 2 / Y.cols;
        for (let i = 0; i < Y.cols; i++)
          for (let j = 0; j < Y.cols; j++) {
            expect(Math.abs(G.data[i * Y.cols + j]! - (i === j ? scale : 0))).toBeLessThan(1e-10 * scale);
          }
      }
    }
  });

  it(`${batchCase.name}: batch retractions match at 1e-12 (each element its own norm)`, () => {
    const Y = fxTensor(batchCase.Y);
    for (const r of batchCase.retractions) {
      const out = retractBatch(Y, { type: typeName[r.retraction_type]!, w: r.w_retract, nsIterations: r.ns_iter });
      expect(relativeError(out.data, fxTensor(r.out).data), `${r.retraction_type} w=${r.w_retract}`).toBeLessThan(1e-12);
    }
  });

  it('quintic Newton–Schulz equals its update equations computed here (1e-12), soft blend and w = 0 included', () => {
    const Y = fxMatrix(matrixCases.find((c) => c.name === '50x10')!.Y);
    // X = Y/‖Y‖, then 7 times X ← aX + X(bA + cA²) with A = XᵀX, (a, b, c) = (3.4445, −4.7750, 2.0315);
    // the soft form blends (1 − w)Y + wX; both restore ‖Y‖.
    let X: Matrix = { ...Y, data: Y.data.map((v) => v / frob(Y)) };
    for (let it = 0; it < 7; it++) {
      const A = mul(transpose(X), X);
      const A2 = mul(A, A);
      const B = { ...A, data: A.data.map((v, i) => -4.775 * v + 2.0315 * A2.data[i]!) };
      const XB = mul(X, B);
      X = { ...X, data: X.data.map((v, i) => 3.4445 * v + XB.data[i]!) };
    }
    const w = 0.6;
    const blend = { ...Y, data: Y.data.map((v, i) => (1 - w) * v + w * X.data[i]!) };
    const expectHard = X.data.map((v) => (v * frob(Y)) / frob(X));
    const expectSoft = blend.data.map((v) => (v * frob(Y)) / frob(blend));
    expect(relativeError(retract(Y, { type: 'quinticNewtonSchulz', nsIterations: 7 }).data, expectHard)).toBeLessThan(1e-12);
    expect(relativeError(retract(Y, { type: 'softQuinticNewtonSchulz', w, nsIterations: 7 }).data, expectSoft)).toBeLessThan(1e-12);
    expect(retract(Y, { type: 'softQuinticNewtonSchulz', w: 0 }).data).toEqual(Y.data); // w = 0: unchanged
    // The quintic map pushes every singular value into roughly [0.7, 1.2]: the spread shrinks.
    const { S } = svd(retract(Y, { type: 'quinticNewtonSchulz', nsIterations: 7 }));
    expect(S[0]! / S[S.length - 1]!).toBeLessThan(1.8);
  });
});

describe('inverse square roots and non-negativity (ortho.json)', () => {
  const methodName: Record<string, 'eig' | 'newtonSchulz' | 'diag'> = { eig: 'eig', ns: 'newtonSchulz', diag: 'diag' };
  for (const c of matrixCases) {
    it(`${c.name}: inverse square roots (eig, ns 4/10, diag) at 1e-12 (eig: scaled by cond(YᵀY))`, () => {
      // eig rounds λmin with an absolute error ≈ eps·λmax, which λmin^{-1/2} amplifies by
      // cond = λmax/λmin: the attainable agreement is ≈ 1e-16·cond (2.8e-12 for 12x12, cond 2.8e4).
      const { S } = svd(fxMatrix(c.YtY));
      const eigTolerance = Math.max(1e-12, 1e-16 * (S[0]! / S[S.length - 1]!));
      for (const e of c.inv_sqrt) {
        const out = inverseSqrt(fxMatrix(c.YtY), {
          method: methodName[e.method]!,
          epsilon: e.epsilon,
          nsIterations: e.ns_iter,
        });
        const tolerance = e.method === 'eig' ? eigTolerance : 1e-12;
        expect(relativeError(out.data, fxMatrix(e.out).data), `${e.method} ${e.ns_iter}`).toBeLessThan(tolerance);
      }
    });
    it(`${c.name}: hard and softplus maps are exact (1e-15)`, () => {
      const Y = fxMatrix(c.Y);
      expect(relativeError(applyNonNegativity(Y, 'hard').data, fxMatrix(c.nonneg.hard).data)).toBe(0);
      expect(relativeError(applyNonNegativity(Y, 'softplus').data, fxMatrix(c.nonneg.softplus).data)).toBeLessThan(1e-15);
    });
  }

  it('softplus is stable at extremes: exactly x above 20, ≈ eˣ far below 0, finite at ±700', () => {
    const out = applyNonNegativity(matrix([[25, -40, 700, -700]]), 'softplus').data;
    expect(out[0]).toBe(25); // threshold 20: identity
    expect(out[1]! / Math.exp(-40)).toBeCloseTo(1, 12); // log1p(e^-40) = e^-40 to 1e-17 relative
    expect(out[2]).toBe(700);
    expect(out[3]).toBeGreaterThanOrEqual(0);
    expect(Number.isFinite(out[3]!)).toBe(true);
  });

  it('auto inverse square root equals eig for small k and inverts A^{1/2}: X·A·X = I', () => {
    const A = matrix([
      [4, 1, 0.5],
      [1, 3, 0.2],
      [0.5, 0.2, 2],
    ]);
    const X = inverseSqrt(A);
    expect(X.data).toEqual(inverseSqrt(A, { method: 'eig' }).data);
    const I = mul(mul(X, A), X);
    for (let i = 0; i < 3; i++) for (let j = 0; j < 3; j++) expect(I.data[i * 3 + j]!).toBeCloseTo(i === j ? 1 : 0, 12);
  });
});

describe('factorizations', () => {
  const Y = fxMatrix(matrixCases.find((c) => c.name === '50x10')!.Y);

  it('thin QR: Q has orthonormal columns, R is upper triangular, QR = Y (1e-13)', () => {
    const { Q, R } = qr(Y);
    const QtQ = mul(transpose(Q), Q);
    for (let i = 0; i < 10; i++) for (let j = 0; j < 10; j++) expect(Math.abs(QtQ.data[i * 10 + j]! - (i === j ? 1 : 0))).toBeLessThan(1e-13);
    for (let i = 0; i < 10; i++) for (let j = 0; j < i; j++) expect(R.data[i * 10 + j]).toBe(0);
    expect(relativeError(mul(Q, R).data, Y.data)).toBeLessThan(1e-13);
  });

  it('thin SVD: U diag(S) Vᵀ = Y (1e-13), S descending', () => {
    const { U, S, V } = svd(Y);
    const US = { ...U, data: U.data.map((v, i) => v * S[i % U.cols]!) };
    expect(relativeError(mul(US, transpose(V)).data, Y.data)).toBeLessThan(1e-13);
    for (let i = 1; i < S.length; i++) expect(S[i]!).toBeLessThanOrEqual(S[i - 1]!);
  });

  it('Procrustes recovers a known rotation: B = A·Q₀ ⇒ Q = Q₀ (1e-12)', () => {
    const { Q: Q0 } = qr(fxMatrix(matrixCases.find((c) => c.name === '12x12')!.Y));
    const B = mul(Y, { rows: 10, cols: 10, data: Q0.data.subarray(0, 100) });
    // Q0 restricted to 10×10 is not orthogonal; use its polar factor as the true rotation.
    const R0 = retract({ rows: 10, cols: 10, data: Q0.data.slice(0, 100) }, { type: 'polar', polarMethod: 'svd' });
    const scale = Math.sqrt(10) / frob(R0);
    const rotation = { rows: 10, cols: 10, data: R0.data.map((v) => v * scale) };
    const target = mul(Y, rotation);
    expect(B.rows).toBe(50);
    const Q = procrustes(Y, target);
    expect(relativeError(Q.data, rotation.data)).toBeLessThan(1e-12);
  });
});
