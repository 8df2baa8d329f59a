// nsaFlowPath, the weighting under which w controls the trade-off from a PCA start on real data,
// the automatic choice of w, diagnostics, and the path/w bad inputs.
import { describe, expect, it } from 'vitest';

import { kneeScores, nsaFlowExplicitSync, nsaFlowPath, nsaFlowPathSync, selectByScore } from '../lib/index.js';
import { disjointSupports, pcaStart, supportRecovery } from './helpers/explicit-data.js';

describe('w from a PCA start on real data (tissue 189×500, k = 5)', () => {
  const { data, loadings } = pcaStart('tissue/tissue_expr.npy', 5);
  const ws = [0.1, 0.3, 0.5, 0.7, 0.9];

  it('balanced weighting: sparsity and orthogonality rise monotonically with w', () => {
    const runs = ws.map((w) => nsaFlowExplicitSync(loadings, { w, data }));
    for (let i = 1; i < runs.length; i++) {
      // Measured: sparsity 0.512 → 0.726, defect 6.8e-2 → 4.1e-4, strictly monotone.
      expect(runs[i]!.diagnostics.sparsity).toBeGreaterThan(runs[i - 1]!.diagnostics.sparsity);
      expect(runs[i]!.diagnostics.defect).toBeLessThan(runs[i - 1]!.diagnostics.defect);
      // The price in explained variance of the data (0.42 → 0.28): it falls with w.
      expect(runs[i]!.diagnostics.explainedVariance!).toBeLessThan(runs[i - 1]!.diagnostics.explainedVariance!);
    }
  });

  it('reference weighting: c saturates from the orthogonal start (d0 = 1e-8 floor), so w barely matters', () => {
    // X0 = N(Y0) given, so no jitter: d0 = defect(PCA loadings) ≈ 0 hits its floor 1e-8 for every w.
    const X0 = { ...loadings, data: loadings.data.map((v) => Math.max(v, 0)) };
    const runs = [0.1, 0.9].map((w) => nsaFlowExplicitSync(loadings, { X0, w, weighting: 'reference' }));
    expect(runs[0]!.settings.orthogonalityReference).toBe(1e-8);
    expect(runs[1]!.settings.cOrth).toBeCloseTo(4 * 0.9 * 1e8, -2);
    // Sparsity moves by less than 1 point between w = 0.1 and 0.9 (balanced: 21 points).
    expect(Math.abs(runs[1]!.diagnostics.sparsity - runs[0]!.diagnostics.sparsity)).toBeLessThan(0.01);
  });
});

describe('nsaFlowPath', () => {
  const { truth, X0 } = disjointSupports(300, 4, 0.1, 9);
  const ws = [0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95];

  it('warm starts cost less than independent solves and give the same trade-off ordering', () => {
    const warm = nsaFlowPathSync(X0, { ws, X0 });
    const cold = nsaFlowPathSync(X0, { ws, X0, warmStart: false });
    const ratio = warm.totalIterations / cold.totalIterations;
    console.log(`path cost: warm ${warm.totalIterations} iterations (${warm.timeMs.toFixed(0)} ms), independent ${cold.totalIterations} (${cold.timeMs.toFixed(0)} ms), ratio ${ratio.toFixed(2)}`);
    // Measured 0.81 on this grid (3213 vs 3964 iterations); 0.49 with noise 0.3. Require a saving.
    expect(ratio).toBeLessThan(0.9);
    // Independent solves are exactly nsaFlowExplicit at each w.
    const single = nsaFlowExplicitSync(X0, { X0, w: ws[4]! });
    expect(Array.from(cold.points[4]!.Y.data)).toEqual(Array.from(single.Y.data));
    // Along the warm path the defect falls and the sparsity rises with w.
    for (let i = 1; i < ws.length; i++) {
      expect(warm.points[i]!.defect).toBeLessThanOrEqual(warm.points[i - 1]!.defect);
      expect(warm.points[i]!.sparsity).toBeGreaterThanOrEqual(warm.points[i - 1]!.sparsity);
    }
  });

  it("recovers known disjoint supports at high w; w: 'auto' picks the knee (stated rates)", () => {
    const path = nsaFlowPathSync(X0, { ws, X0, select: 'knee' });
    const rates = path.points.map((p) => supportRecovery(p.Y, truth));
    console.log(`support recovery per w: ${rates.map((r, i) => `${ws[i]}:${r.toFixed(2)}`).join(' ')}; knee w = ${path.selection!.w}`);
    // Measured: 0.94 of the 300 rows at w = 0.95, rising with w.
    expect(rates.at(-1)).toBeGreaterThan(0.9);
    // The knee maximizes normalized orthogonality gained − fidelity lost (auto-w.ts).
    const scores = kneeScores(path.points);
    expect(path.selection!.index).toBe(scores.indexOf(Math.max(...scores)));
    const auto = nsaFlowExplicitSync(X0, { X0, w: 'auto', ws });
    expect(auto.settings.w).toBe(path.selection!.w);
  });

  it("w: 'crossValidated' picks the highest user score", () => {
    // A user score: recovery of the known supports (stands for any held-out criterion).
    const r = nsaFlowExplicitSync(X0, { X0, w: 'crossValidated', ws, score: (p) => supportRecovery(p.Y, truth) });
    expect(r.wSelection!.criterion).toBe('score');
    expect(r.settings.w).toBe(0.95); // the highest recovery on this grid (0.94)
    expect(supportRecovery(r.Y, truth)).toBeGreaterThan(0.9);
    expect(selectByScore([{ w: 0.1 }, { w: 0.2 }], (p) => -p.w).w).toBe(0.1);
  });

  it('async path with progress', async () => {
    let last = -1;
    const r = await nsaFlowPath(X0, { ws: [0.2, 0.6], X0, progressIntervalMs: 0, onProgress: (p) => (last = p.point) });
    expect(r.points.map((p) => p.w)).toEqual([0.2, 0.6]);
    expect(last).toBe(1);
  });
});

describe('path and w: bad input', () => {
  const { X0 } = disjointSupports(40, 4, 0.1, 1);
  const cases: Array<[string, unknown, ErrorConstructor, RegExp]> = [
    ['ws not an array', 0.5, TypeError, /Expected an increasing array of distinct numbers in \[0, 1\] for options\.ws of nsaFlowPathSync\(\) but received 0\.5/],
    ['ws empty', [], RangeError, /but received an empty array/],
    ['ws outside [0,1]', [0.2, 1.5], RangeError, /for options\.ws .* but received 1\.5 at \[1\]/],
    ['ws decreasing', [0.5, 0.2], RangeError, /but received 0\.2 after 0\.5 at \[1\]/],
    ['ws repeated', [0.2, 0.2], RangeError, /but received 0\.2 after 0\.2 at \[1\]/],
    ['ws with a string', [0.1, '0.2'], TypeError, /but received the string "0\.2" at \[1\]/],
  ];
  for (const [what, ws, cls, message] of cases) {
    it(what, () => {
      expect(() => nsaFlowPathSync(X0, { ws: ws as number[] })).toThrow(cls);
      expect(() => nsaFlowPathSync(X0, { ws: ws as number[] })).toThrow(message);
    });
  }
  it('w outside [0, 1] or an unknown mode', () => {
    expect(() => nsaFlowExplicitSync(X0, { w: 1.2 })).toThrow(RangeError);
    expect(() => nsaFlowExplicitSync(X0, { w: 1.2 })).toThrow(/Expected a number in \[0, 1\], 'auto' or 'crossValidated' for options\.w of nsaFlowExplicitSync\(\) but received 1\.2/);
    expect(() => nsaFlowExplicitSync(X0, { w: 'knee' as 'auto' })).toThrow(TypeError);
  });
  it("'crossValidated' without a score", () => {
    expect(() => nsaFlowExplicitSync(X0, { w: 'crossValidated' })).toThrow(/Expected a function for options\.score of nsaFlowExplicitSync\(\)/);
  });
});
