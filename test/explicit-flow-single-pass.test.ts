// The explicit flow's single-pass iteration (the plain step, optimizer 'fast') against its two-pass
// form. The first step of optimizer 'sgd' is the plain step, Ỹ = Y − lr·g with the same arithmetic
// (torch SGD's momentum buffer starts at g), but a whole-matrix optimizer forms Ỹ in memory and takes
// ỸᵀỸ from it, where the single pass gets ỸᵀỸ from k×k algebra (BᵀSB + γ(BᵀC + CᵀB) + γ²X0ᵀX0) and
// never stores Ỹ. One iteration of each must therefore agree to rounding: 1e-12 relative, on shapes
// that take several row blocks and with and without backtracking.
import { describe, expect, it } from 'vitest';

import { nsaFlowExplicitSync, type Matrix } from '../lib/index.js';
import { lcg } from './helpers/lcg.js';

const p = 2500;
const k = 6;
const Y0: Matrix = { rows: p, cols: k, data: lcg(p * k, 3, 0.4) };
const X0: Matrix = { rows: p, cols: k, data: lcg(p * k, 5) };

function maxRelativeDifference(a: Float64Array, b: Float64Array): number {
  let scale = 0;
  let diff = 0;
  for (let i = 0; i < a.length; i++) {
    scale = Math.max(scale, Math.abs(a[i]!));
    diff = Math.max(diff, Math.abs(a[i]! - b[i]!));
  }
  return diff / scale;
}

describe('explicit flow: the single-pass plain step equals the two-pass step', () => {
  const cases: Array<[string, Record<string, unknown>]> = [
    ['energy, soft polar, hard', {}],
    ['balanced', { weighting: 'balanced' }],
    ['reference, not rescaled', { weighting: 'reference', rescale: false }],
    ['offDiagonal functional', { orthogonality: 'offDiagonal' }],
    ['projectFullGradient', { weighting: 'balanced', projectFullGradient: true }],
    ['polar', { retraction: 'polar' }],
    ['a long step (backtracks: the trial re-forms R = Ỹ·K in the pass)', { learningRate: 2 }],
    ['no retraction', { retraction: 'none' }],
    ['no non-negativity', { nonnegativity: 'none', weighting: 'balanced' }],
  ];
  for (const [name, options] of cases) {
    it(name, () => {
      const run = (optimizer: string) =>
        nsaFlowExplicitSync(Y0, { X0, maxIterations: 1, tolerance: 0, threads: 1, optimizer, ...options } as never);
      const fused = run('fast');
      const twoPass = run('sgd');
      expect(fused.iterations).toBe(1);
      expect(fused.traces.backtracks).toEqual(twoPass.traces.backtracks);
      if (options.learningRate === 2) expect(fused.traces.backtracks[1]).toBeGreaterThan(0);
      expect(fused.bestIteration).toBe(twoPass.bestIteration);
      expect(Math.abs(fused.bestEnergy - twoPass.bestEnergy)).toBeLessThanOrEqual(1e-12 * Math.abs(twoPass.bestEnergy));
      expect(maxRelativeDifference(fused.Y.data, twoPass.Y.data)).toBeLessThanOrEqual(1e-12);
    });
  }

  it('over a run both backtracking forms occur: R re-formed (after an iteration without halvings) and R kept', () => {
    const r = nsaFlowExplicitSync(Y0, { X0, retraction: 'polar', maxIterations: 8, tolerance: 0, threads: 1 });
    const b = r.traces.backtracks;
    const reformed = b.some((count, i) => i > 1 && count > 0 && b[i - 1] === 0);
    const kept = b.some((count, i) => i > 1 && count > 0 && b[i - 1]! > 0);
    expect([reformed, kept]).toEqual([true, true]);
    expect(r.bestEnergy).toBeLessThan(r.startEnergy);
  });
});
