import { describe, expect, it } from 'vitest';

import { ntf, ntfSync } from '../lib/index.js';
import type { Tensor } from '../lib/tensor.js';
import { fxMatrix, fxTensor, relativeError } from './helpers/shared.js';
import { ntfCase } from './helpers/sntf-fixtures.js';
import { gradientMapping } from './helpers/snmf-cases.js';

const c = ntfCase();
const T = fxTensor(c.tensor);
const init = { factors: c.init.factors.map(fxMatrix) };

describe('NTF (MU) parity with ntf.json', () => {
  it('uses machine epsilon as the fixture (2.220446049250313e-16)', () => {
    expect(c.options.epsilon).toBe(2.220446049250313e-16);
    expect(ntfSync(T, c.rank, { maxIterations: 0, init }).settings.epsilon).toBe(c.options.epsilon);
  });
  it('matches the snapshots after 1, 5 and 10 iterations at 1e-10', () => {
    for (const snap of c.snapshots) {
      const r = ntfSync(T, c.rank, { solver: 'mu', maxIterations: snap.iterations, init });
      r.factors.forEach((f, m) => expect(relativeError(f.data, fxMatrix(snap.factors[m]!).data)).toBeLessThan(1e-10));
      expect(Math.abs(r.loss - snap.loss) / snap.loss).toBeLessThan(1e-10);
    }
  });
  it('matches loss_per_iteration (11 entries: initial + after each iteration)', () => {
    const r = ntfSync(T, c.rank, { solver: 'mu', maxIterations: 10, init });
    expect(Array.from(r.traces.iteration)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    expect(relativeError(r.traces.loss, Float64Array.from(c.loss_per_iteration.data as number[]))).toBeLessThan(1e-10);
  });
});

describe('NTF behaviour', () => {
  for (const solver of ['mu', 'hals'] as const) {
    it(`${solver}: non-increasing loss and non-negative factors`, () => {
      const r = ntfSync(T, 3, { solver, maxIterations: 100, seed: 3 });
      for (let i = 1; i < r.traces.loss.length; i++) {
        // Both rules are monotone; allow rounding of the Gram-form loss.
        expect(r.traces.loss[i]!).toBeLessThanOrEqual(r.traces.loss[i - 1]! * (1 + 1e-12));
      }
      expect(Math.min(...r.factors.map((f) => Math.min(...f.data)))).toBeGreaterThanOrEqual(0);
    });
  }
  it('HALS reaches a lower loss than MU in the same number of iterations (the stronger baseline)', () => {
    const mu = ntfSync(T, 3, { solver: 'mu', maxIterations: 30, init });
    const hals = ntfSync(T, 3, { solver: 'hals', maxIterations: 30, init });
    expect(hals.loss).toBeLessThan(mu.loss);
    // The data are a rank-3 CP tensor plus 0.05·U(0,1) noise, so a good fit leaves about the noise.
    expect(hals.loss).toBeLessThan(0.5 * (c.loss_per_iteration.data[0] as number));
  });
  it('the async form equals the sync form', async () => {
    const sync = ntfSync(T, 3, { solver: 'hals', maxIterations: 20, init });
    const r = await ntf(T, 3, { solver: 'hals', maxIterations: 20, init });
    expect(r.traces.loss).toEqual(sync.traces.loss);
  });
});

describe('NTF certificate', () => {
  // A small order-3 tensor; f = ½‖T − Σ_a ⊗ₘ Fₘ[:, a]‖²/‖T‖² evaluated here entry by entry, its gradient by
  // central differences (h = 1e-6: truncation O(h²), rounding ≈ 1e-16/h).
  const small: Tensor = { shape: [4, 3, 5], data: Float64Array.from({ length: 60 }, (_, i) => 0.1 + ((i * 13) % 17) / 17) };
  const normT2 = small.data.reduce((acc, x) => acc + x * x, 0);
  function f(F: Float64Array[], r: number): number {
    let s = 0;
    for (let i = 0; i < 4; i++)
      for (let j = 0; j < 3; j++)
        for (let k = 0; k < 5; k++) {
          let model = 0;
          for (let a = 0; a < r; a++) model += F[0]![i * r + a]! * F[1]![j * r + a]! * F[2]![k * r + a]!;
          s += (small.data[(i * 3 + j) * 5 + k]! - model) ** 2;
        }
    return (0.5 * s) / normT2;
  }
  for (const solver of ['mu', 'hals'] as const) {
    it(`${solver}: the gradient mapping of ½loss²/‖T‖² over the factors (checked by finite differences), falling with iterations`, () => {
      const certificates: number[] = [];
      for (const maxIterations of [0, 200]) {
        const r = ntfSync(small, 2, { solver, maxIterations, seed: 5 });
        const F = r.factors.map((m) => m.data.slice());
        let expected = 0;
        for (const block of F) {
          const grad = block.map((x, i) => {
            block[i] = x + 1e-6;
            const up = f(F, 2);
            block[i] = x - 1e-6;
            const down = f(F, 2);
            block[i] = x;
            return (up - down) / 2e-6;
          });
          expected = Math.max(expected, gradientMapping(block, grad));
        }
        // Finite differences resolve the gradient to about 1e-10 (rounding of f over h), hence the 1e-8 floor.
        expect(Math.abs(r.certificate - expected)).toBeLessThan(Math.max(1e-6 * expected, 1e-8));
        certificates.push(r.certificate);
      }
      expect(certificates[1]!).toBeLessThan(0.1 * certificates[0]!);
    });
  }
});

describe('NTF bad input', () => {
  it('rejects order < 2, negative entries, a bad rank, a bad solver and mis-shaped factors', () => {
    expect(() => ntfSync({ shape: [3], data: new Float64Array(3) }, 1)).toThrow(/Expected a tensor of order 2 to 32 for T but received shape \[3\]/);
    const neg: Tensor = { shape: [2, 2], data: Float64Array.of(1, 2, -3, 4) };
    expect(() => ntfSync(neg, 1)).toThrow(/Expected finite non-negative values in T but received -3 at \[1, 0\]/);
    expect(() => ntfSync(T, 0)).toThrow(/Expected a positive integer for rank but received 0/);
    expect(() => ntfSync(T, 2, { solver: 'als' as never })).toThrow(/Expected one of 'mu', 'hals' for options.solver of ntfSync\(\) but received the string "als"/);
    expect(() => ntfSync(T, 2, { init })).toThrow(/Expected a 6×2 matrix for options.init.factors\[0\] but received 6×3/);
  });
});
