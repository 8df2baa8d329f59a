// How w acts in nsaFlowFit, on the two real expression data sets (k = 4, init 'relax' so that every w
// starts from the same w = 0 fit of the data). For exact minimizers of E_w = (1 − w)·F + w·O the
// fidelity error F cannot decrease and the orthogonality O cannot increase as w grows (compare the
// energies of two solutions at both weights); the solver returns certified local minimizers, so the test
// asserts that, with small tolerances, on the invariant defect (comparable across functionals) and on F,
// and that sparsity — a by-product of V ≥ 0 meeting orthogonality, not a term of E — does not fall by
// more than half a point.
import { describe, expect, it } from 'vitest';

import { readMatrix } from '../lib/io/index.js';
import type { Matrix } from '../lib/matrix.js';
import { nsaFlowFitSync, type NsaFlowFitOptions, type NsaFlowFitResult } from '../lib/nsa-flow/index.js';
import { dataFile } from './helpers/shared.js';

const ws = [0.1, 0.3, 0.5, 0.7, 0.9];
const sets = {
  ALL: readMatrix(dataFile('leukemia_all/ALL_expr_top1000var.npy')) as Matrix, // 128 × 1000
  tissue: readMatrix(dataFile('tissue/tissue_expr.npy')) as Matrix, // 189 × 500
};

/** Sparsity may fall by this much between neighbouring w (it is not a term of the energy). */
const sparsityTolerance = 0.005;
/** F and the defect: monotone up to the solver's tolerance (certificates ≤ 1e-6). */
const fidelityTolerance = 1e-6;
const defectTolerance = 1e-6;

function sweep(X: Matrix, options: NsaFlowFitOptions): NsaFlowFitResult[] {
  return ws.map((w) => nsaFlowFitSync(X, 4, { ...options, w, init: 'relax' }));
}

describe.each(Object.entries(sets))('w on %s', (_name, X) => {
  it.each([
    ['data', { mode: 'data' }],
    ['anchored, subspace', { mode: 'anchored', anchorFidelity: 'subspace' }],
    ['anchored, target', { mode: 'anchored', anchorFidelity: 'target' }],
  ] as const)('%s: sparsity non-decreasing, defect non-increasing, fidelity error non-decreasing', (_mode, options) => {
    const runs = sweep(X, options);
    for (const r of runs) {
      expect(r.stopReason).toBe('gradMap');
      expect(r.certificate).toBeLessThanOrEqual(r.settings.tolerance);
    }
    for (let i = 1; i < runs.length; i++) {
      const [a, b] = [runs[i - 1]!, runs[i]!];
      expect(b.sparsity).toBeGreaterThanOrEqual(a.sparsity - sparsityTolerance);
      expect(b.defect).toBeLessThanOrEqual(a.defect * (1 + defectTolerance));
      expect(b.fidelity).toBeGreaterThanOrEqual(a.fidelity - fidelityTolerance);
    }
    // Over the whole range the trade-off is large, not noise: orthogonality gains a factor of 10 or more,
    // and sparsity at least 5 points.
    expect(runs[4]!.defect).toBeLessThan(runs[0]!.defect / 10);
    expect(runs[4]!.sparsity).toBeGreaterThan(runs[0]!.sparsity + 0.05);
  });

  it('signed: the principal basis minimizes the signed energy at every w, so w changes nothing', () => {
    // PCA loadings L are orthonormal (O = 0), give the least F any k columns can (1 − PCA's explained
    // variance), and their split [max(L, 0), max(−L, 0)] has disjoint lobes (overlap 0): every term is
    // at its minimum, whatever w. From a random start the solver reaches the same F.
    const runs = sweep(X, { mode: 'signed' });
    for (const r of runs) {
      const least = 1 - r.explainedVariance.pca;
      expect(Math.abs(r.fidelity - least)).toBeLessThan(1e-12);
      expect(r.defect).toBeLessThan(1e-20);
      expect(r.overlap).toBe(0);
      expect(r.sparsity).toBe(0);
    }
    const random = nsaFlowFitSync(X, 4, { mode: 'signed', init: 'random', w: 0.5 });
    expect(random.stopReason).toBe('gradMap');
    expect(random.fidelity - (1 - random.explainedVariance.pca)).toBeLessThan(1e-8);
    expect(random.fidelity).toBeGreaterThanOrEqual(1 - random.explainedVariance.pca - 1e-12);
  });
});
