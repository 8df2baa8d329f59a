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

  it('signed: O on the 2k lobes makes w trade fidelity for a sparse contrast basis', () => {
    // PCA's loadings are orthogonal as V, but their lobes [max(L, 0), max(−L, 0)] are not orthogonal to
    // each other's columns' lobes; orthogonal non-negative lobes have disjoint supports, so w buys
    // sparsity. The energy's own terms are monotone (F up, O on the lobes down, as for any family of
    // minimizers of (1 − w)F + wO); measured sparsity 0.07 → 0.54 (ALL), 0.04 → 0.50 (tissue).
    const runs = sweep(X, { mode: 'signed' });
    for (const r of runs) expect(r.stopReason).toBe('gradMap');
    for (let i = 1; i < runs.length; i++) {
      const [a, b] = [runs[i - 1]!, runs[i]!];
      expect(b.sparsity).toBeGreaterThanOrEqual(a.sparsity - sparsityTolerance);
      expect(b.orthogonality).toBeLessThanOrEqual(a.orthogonality * (1 + defectTolerance));
      expect(b.fidelity).toBeGreaterThanOrEqual(a.fidelity - fidelityTolerance);
    }
    expect(runs[4]!.sparsity).toBeGreaterThan(runs[0]!.sparsity + 0.3);
    expect(runs[4]!.orthogonality).toBeLessThan(runs[0]!.orthogonality / 10);
  });
});
