// nsaFlowPath, the weighting under which w controls the trade-off from a PCA start on real data,
// the automatic choice of w, diagnostics, and the path/w bad inputs.
import { describe, expect, it } from 'vitest';

import { fidelityRates, kneeScores, nsaFlowExplicitSync, nsaFlowPath, nsaFlowPathSync, selectAuto, selectByScore } from '../lib/index.js';
import { disjointReplicates, disjointSupports, heldOutError, pcaStart, supportRecovery } from './helpers/explicit-data.js';

describe('w from a PCA start on real data (tissue 189×500, k = 5)', () => {
  const { data, loadings } = pcaStart('tissue/tissue_expr.npy', 5);
  const ws = [0.1, 0.3, 0.5, 0.7, 0.9];

  it('balanced weighting: sparsity and orthogonality rise monotonically with w', () => {
    const runs = ws.map((w) => nsaFlowExplicitSync(loadings, { w, data, weighting: 'balanced' }));
    for (let i = 1; i < runs.length; i++) {
      // Measured: sparsity 0.512 → 0.726, defect 6.8e-2 → 4.1e-4, strictly monotone.
      expect(runs[i]!.diagnostics.sparsity).toBeGreaterThan(runs[i - 1]!.diagnostics.sparsity);
      expect(runs[i]!.diagnostics.defect).toBeLessThan(runs[i - 1]!.diagnostics.defect);
      // The price in explained variance of the data (0.42 → 0.28): it falls with w.
      expect(runs[i]!.diagnostics.explainedVariance!).toBeLessThan(runs[i - 1]!.diagnostics.explainedVariance!);
    }
  });

  it("w: 'auto' finds no saturated tail (fidelity keeps rising) and falls back to the knee", () => {
    // The default 'energy' weighting: w weighs O(Y) ∈ [0, 1] itself, so the same w orthogonalizes less
    // than 'balanced' (which divides the defect by the PCA start's small one) and the knee sits higher.
    const r = nsaFlowExplicitSync(loadings, { w: 'auto', data });
    // Measured: the fidelity rate on the last segment is 2.12× its path mean (no saturation); the knee
    // is w = 0.6 (sparsity 0.547, explained variance 0.390 of the PCA start's 0.44). Every point moved.
    expect(r.wSelection!.criterion).toBe('knee');
    expect(r.settings.w).toBe(0.6);
    expect(r.wSelection!.excluded).toEqual([]);
    expect(r.wSelection!.reason).toMatch(/^no saturated fidelity tail .*knee of the fidelity–orthogonality trade-off: w = 0\.6/);
    expect(r.wSelection!.scores.every((v) => v >= 0)).toBe(true); // gained − lost, 0 at both ends
    // 'balanced' (the former default): the knee at w = 0.3 (sparsity 0.578, explained variance 0.364).
    expect(nsaFlowExplicitSync(loadings, { w: 'auto', data, weighting: 'balanced' }).settings.w).toBe(0.3);
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

// The disjoint-support targets are nearly orthogonal already (small defect): under the 'balanced'
// weighting, which divides the defect by the target's, w separates their supports; the absolute O of
// the default 'energy' weighting weighs that small defect little (53% of the supports at w = 0.95),
// so these tests, whose rates were measured under 'balanced', name it.
describe('nsaFlowPath', () => {
  const { truth, X0 } = disjointSupports(300, 4, 0.1, 9);
  const ws = [0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95];
  const weighting = 'balanced' as const;

  it('warm starts cost less than independent solves and give the same trade-off ordering', () => {
    const warm = nsaFlowPathSync(X0, { ws, X0, weighting });
    const cold = nsaFlowPathSync(X0, { ws, X0, warmStart: false, weighting });
    const ratio = warm.totalIterations / cold.totalIterations;
    console.log(`path cost: warm ${warm.totalIterations} iterations (${warm.timeMs.toFixed(0)} ms), independent ${cold.totalIterations} (${cold.timeMs.toFixed(0)} ms), ratio ${ratio.toFixed(2)}`);
    // Measured 0.51 on this grid (2701 vs 5322 iterations). Require a saving.
    expect(ratio).toBeLessThan(0.9);
    // Independent solves are exactly nsaFlowExplicit at each w.
    const single = nsaFlowExplicitSync(X0, { X0, w: ws[4]!, weighting });
    expect(Array.from(cold.points[4]!.Y.data)).toEqual(Array.from(single.Y.data));
    // Along the warm path the defect falls and the sparsity rises with w.
    for (let i = 1; i < ws.length; i++) {
      expect(warm.points[i]!.defect).toBeLessThanOrEqual(warm.points[i - 1]!.defect);
      expect(warm.points[i]!.sparsity).toBeGreaterThanOrEqual(warm.points[i - 1]!.sparsity);
    }
  });

  it("the supports separate as w rises; w: 'auto' sees no saturated fidelity tail here and takes the knee (stated rates)", () => {
    const path = nsaFlowPathSync(X0, { ws, X0, select: 'auto', weighting });
    const rates = path.points.map((p) => supportRecovery(p.Y, truth));
    console.log(`support recovery per w: ${rates.map((r, i) => `${ws[i]}:${r.toFixed(2)}`).join(' ')}; auto w = ${path.selection!.w} (${path.selection!.criterion})`);
    // Measured: 0.06, 0.35, 0.62, 0.70, 0.75, 0.79, 0.82, 0.85, 0.90, 0.93, 0.96 of the 300 rows, rising
    // with w. (Before the tangent projection was taken at the polar factor the flow barely moved at
    // small w: 0 up to w = 0.3, 0.94 at 0.95, and the fidelity rose late and then saturated.)
    for (let i = 1; i < rates.length; i++) expect(rates[i]!).toBeGreaterThanOrEqual(rates[i - 1]!);
    expect(rates.at(-1)).toBeGreaterThan(0.9);
    // Now the fidelity rises steeply at small w and then slowly, but on the last segments still at
    // 0.11–0.12× the path's mean rate, above τ = 5%: no saturated tail, so 'auto' takes the knee.
    const fr = fidelityRates(path.points);
    expect(fr.at(-1)).toBeGreaterThan(0.05);
    expect(path.selection!.criterion).toBe('knee');
    expect(path.selection!.w).toBe(0.1);
    const auto = nsaFlowExplicitSync(X0, { X0, w: 'auto', ws, weighting });
    expect(auto.settings.w).toBe(0.1);
    // 'knee' stays available: it maximizes normalized orthogonality gained − fidelity lost (auto-w.ts).
    const knee = nsaFlowPathSync(X0, { ws, X0, select: 'knee', weighting });
    const scores = kneeScores(knee.points);
    expect(knee.selection!.index).toBe(scores.indexOf(Math.max(...scores)));
  });

  it('selectAuto on hand-made paths: a saturated tail, and a steady trade-off', () => {
    const pts = (fs: number[]) => fs.map((f, i) => ({ w: (i + 1) / 10, relativeFidelity: f, defect: 1 / (i + 1) }));
    // Fidelity flat (rate 0) after w = 0.3: saturation, the largest w.
    expect(selectAuto(pts([0, 0.2, 0.4, 0.4, 0.4]))).toMatchObject({ criterion: 'saturation', w: 0.5 });
    // A constant rate (1× the mean) never saturates: the knee.
    expect(selectAuto(pts([0, 0.1, 0.2, 0.3, 0.4])).criterion).toBe('knee');
    // A flat start is not a tail: only the final run counts.
    expect(selectAuto(pts([0, 0, 0, 0.2, 0.4])).criterion).toBe('knee');
  });

  it("w: 'crossValidated' picks the best held-out reconstruction of a second measurement", () => {
    // Fit on measurement A, score on the held-out replicate B (same loadings, independent centred noise
    // 0.4·U(−½, ½)): the column-rescaled reconstruction error of B, lower is better.
    const rep = disjointReplicates(300, 4, 0.4, 9);
    const r = nsaFlowExplicitSync(rep.A, { X0: rep.A, w: 'crossValidated', ws, weighting, score: (p) => -heldOutError(p.Y, rep.B) });
    expect(r.wSelection!.criterion).toBe('score');
    // Measured held-out error 0.0685 at w = 0.05 falling to 0.0619 at w ≥ 0.8 (0.9 wins in the 5th
    // digit), where 94% of the supports are recovered (the ground truth only states the rate).
    expect(r.settings.w).toBeGreaterThanOrEqual(0.9);
    expect(supportRecovery(r.Y, rep.truth)).toBeGreaterThan(0.9);
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
