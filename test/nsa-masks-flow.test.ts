// nsaFlow's target mode with weights / mask / missing 'nan' on the target (certified solvers 'spg' and
// 'lbfgsb'): F = Σ ω(Y − X0)²/Σ ω·X0². The retraction loop and nsaFlowExplicit refuse the options.
import { describe, expect, it } from 'vitest';

import { nsaFlowExplicit, nsaFlowExplicitSync, nsaFlowSync, nsaEnergy, pca, type Matrix } from '../lib/index.js';
import { readNpyMatrix } from '../lib/io/index.js';
import { dataFile } from './helpers/shared.js';
import { thrown } from './helpers/thrown.js';
import { uniform } from './helpers/uniform.js';

/** PCA loadings of the leukemia data (1000 probes, k = 4) as the start, their non-negative part as the target. */
const { loadings: Y0 } = pca(readNpyMatrix(dataFile('leukemia_all/ALL_expr_top1000var.npy')), 4);
const X0: Matrix = { ...Y0, data: Y0.data.map((v) => Math.max(v, 0)) };
const size = Y0.data.length;
const u = uniform(3);
const mask = Uint8Array.from({ length: size }, () => (u() < 0.2 ? 1 : 0));

describe('nsaFlow (target mode) with a mask on the target', () => {
  for (const optimizer of ['spg', 'lbfgsb'] as const) {
    it(`${optimizer}: a mask that hides nothing and weights all 1 are the plain run, bit for bit`, () => {
      const plain = nsaFlowSync(Y0, { X0, optimizer, w: 0.5 });
      for (const extra of [{ mask: new Uint8Array(size) }, { weights: { ...X0, data: new Float64Array(size).fill(1) } }]) {
        const r = nsaFlowSync(Y0, { X0, optimizer, w: 0.5, ...extra });
        expect(Array.from(r.Y.data)).toEqual(Array.from(plain.Y.data));
        expect([r.bestEnergy, r.certificate, r.iterations]).toEqual([plain.bestEnergy, plain.certificate, plain.iterations]);
      }
    });

    // The hidden entries feel only the orthogonality term, a flat direction: measured 641 SPG and 134
    // L-BFGS-B iterations to the certificate (14 and 12 without the mask), so the cap is raised.
    it(`${optimizer}: the values at hidden target entries (NaN or 5) leave the run identical; certificate ≤ 1e-6 by nsaEnergy too`, () => {
      const a = nsaFlowSync(Y0, { X0: { ...X0, data: X0.data.map((x, i) => (mask[i] ? NaN : x)) }, missing: 'nan', optimizer, w: 0.5, maxIterations: 5000 });
      const b = nsaFlowSync(Y0, { X0: { ...X0, data: X0.data.map((x, i) => (mask[i] ? 5 : x)) }, mask, optimizer, w: 0.5, maxIterations: 5000 });
      expect(Array.from(b.Y.data)).toEqual(Array.from(a.Y.data));
      expect(a.stopReason).toBe('gradMap');
      expect(a.certificate!).toBeLessThanOrEqual(1e-6);
      const at = nsaEnergy(a.Y, { X0, mask, w: 0.5 });
      expect(Math.abs(at.energy - a.bestEnergy)).toBeLessThan(1e-14);
      expect(at.certificate).toBeLessThanOrEqual(1e-6 * (1 + 1e-6));
    });

    it(`${optimizer}, w = 0: the hidden entries have zero gradient, so Y keeps its start there exactly; the observed ones reach X0`, () => {
      const r = nsaFlowSync(Y0, { X0, mask, optimizer, w: 0, certificateTolerance: 1e-10 });
      let worst = 0;
      let moved = 0;
      for (let i = 0; i < size; i++) {
        // A hidden entry whose start is feasible (≥ 0) is never moved (its gradient is 0 throughout).
        if (mask[i]) moved += Y0.data[i]! >= 0 && r.Y.data[i] !== Y0.data[i] ? 1 : 0;
        else worst = Math.max(worst, Math.abs(r.Y.data[i]! - X0.data[i]!));
      }
      expect(moved).toBe(0);
      expect(worst).toBeLessThan(1e-6);
    });
  }
});

describe('refusals', () => {
  it('the retraction loop refuses weights, mask and missing, naming the solvers that take them', () => {
    for (const [key, value] of [['mask', mask], ['weights', { ...X0, data: new Float64Array(size).fill(1) }], ['missing', 'nan']] as const) {
      const e = thrown(() => nsaFlowSync(Y0, { X0, optimizer: 'asgd', [key]: value }));
      expect(e).toBeInstanceOf(RangeError);
      expect(e.message).toMatch(new RegExp(`^options\\.${key} of nsaFlowSync\\(\\) applies to the certified solvers \\('lbfgsb', 'spg'\\) only, but optimizer 'asgd' runs the retraction loop`));
    }
  });

  it('nsaFlowExplicit refuses them (sync and async), naming the functions that take them', async () => {
    const e = thrown(() => nsaFlowExplicitSync(Y0, { X0, mask }));
    expect(e).toBeInstanceOf(RangeError);
    expect(e.message).toBe(
      "Expected no options.mask of nsaFlowExplicitSync() (the explicit flow has no weighted fidelity); weights, mask and missing are taken by nsaFlow with optimizer 'spg' or 'lbfgsb', by nsaFlowFit and by nsaEnergy",
    );
    await expect(nsaFlowExplicit(Y0, { X0, missing: 'nan' } as never)).rejects.toThrow(/^Expected no options\.missing of nsaFlowExplicit\(\)/);
  });

  it('bad weights and NaN are refused by class and message', () => {
    const cases: [() => unknown, ErrorConstructor, RegExp][] = [
      [() => nsaFlowSync(Y0, { X0: { ...X0, data: X0.data.map((x, i) => (i === 7 ? NaN : x)) } }), RangeError, /^Expected finite values in options\.X0 of nsaFlowSync\(\) but received NaN at \[1, 3\]/],
      [() => nsaFlowSync(Y0, { X0, weights: { rows: 4, cols: 4, data: new Float64Array(16) } }), RangeError, /^Expected a 1000×4 Matrix \(the shape of options\.X0\) for options\.weights of nsaFlowSync\(\)/],
      [() => nsaFlowSync(Y0, { X0, weights: { ...X0, data: new Float64Array(size).fill(Infinity) } }), RangeError, /^Expected finite weights ≥ 0 in options\.weights of nsaFlowSync\(\) but received Infinity at index 0/],
      [() => nsaFlowSync(Y0, { X0, mask: { rows: [1000], cols: [0] } }), RangeError, /^Expected indices within 1000×4 \(the shape of options\.X0\) for options\.mask of nsaFlowSync\(\) but received \[1000, 0\]/],
      [() => nsaFlowSync(Y0, { X0, mask: Uint8Array.from({ length: size }, () => 1) }), RangeError, /^Expected options\.X0 of nsaFlowSync\(\) to have a positive entry/],
    ];
    for (const [call, kind, message] of cases) {
      const e = thrown(call);
      expect(e).toBeInstanceOf(kind);
      expect(e.message).toMatch(message);
    }
  });
});
