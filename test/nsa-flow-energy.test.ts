// nsaFlow with the calibration-free energy E_w = (1 − w)·‖Y − X0‖²/‖X0‖² + w·O(Y) (weighting 'energy',
// the default): w acts monotonically on real data, the complaint that it did not (reference weighting)
// is reproduced and gone, the certificate and stop reason are honest, the certified solvers run through
// nsaFlow, and options of the other weighting or the other kind of solver are refused.
import { describe, expect, it } from 'vitest';

import {
  AbortError,
  energy,
  energyBatch,
  invariantOrthogonalityDefect,
  nsaFlow,
  nsaFlowSync,
  pca,
  type Matrix,
  type NsaFlowOptions,
  type NsaFlowProgress,
  type NsaFlowResult,
} from '../lib/index.js';
import { energyGradient } from '../lib/nsa-flow/energy.js';
import { readNpyMatrix } from '../lib/io/index.js';
import { testMatrix } from './helpers/flow-fixtures.js';
import { dataFile } from './helpers/shared.js';

/** PCA loadings (centred data) as Y0 and their non-negative part as the target. */
function pcaProblem(file: string, k: number): { Y0: Matrix; X0: Matrix } {
  const { loadings } = pca(readNpyMatrix(dataFile(file)), k);
  return { Y0: loadings, X0: { ...loadings, data: loadings.data.map((v) => Math.max(v, 0)) } };
}

const sparsity = (m: Matrix): number => m.data.filter((v) => v === 0).length / m.data.length;

/** The gradient mapping ‖P(Y − ‖Y‖²G) − Y‖/‖Y‖ (lib/solver.ts), computed here independently. */
function gradientMapping(Y: Float64Array, G: Float64Array, nonnegative: boolean): number {
  let yy = 0;
  for (const v of Y) yy += v * v;
  let d2 = 0;
  for (let i = 0; i < Y.length; i++) {
    let t = Y[i]! - yy * G[i]!;
    if (nonnegative && t < 0) t = 0;
    d2 += (t - Y[i]!) ** 2;
  }
  return Math.sqrt(d2 / yy);
}

/** ∇_Y E_w at Y: the gradient through the identity map (retraction 'none', no non-negativity map). */
function energyGradientAtY(Y: Matrix, X0: Matrix, w: number, orthogonality: NsaFlowOptions['orthogonality'] = 'gram'): Float64Array {
  return energyGradient(Y, X0, { w, orthogonality, retraction: 'none', nonnegativity: 'none' }).gradient.data;
}

const ws = [0.1, 0.25, 0.5, 0.75, 0.9];

describe('w acts monotonically from a PCA start (default solver, certified to 1e-6)', () => {
  for (const [file, name] of [
    ['leukemia_all/ALL_expr_top1000var.npy', 'leukemia_all 128×1000'],
    ['tissue/tissue_expr.npy', 'tissue 189×500'],
  ] as const) {
    for (const k of [2, 4]) {
      it(`${name}, k = ${k}: sparsity rises, orthogonality defect and the functional fall, fidelity error rises with w`, () => {
        const { Y0, X0 } = pcaProblem(file, k);
        const runs = ws.map((w) => nsaFlowSync(Y0, { X0, w }));
        const terms = runs.map((r, i) => energy(r.Y, X0, { w: ws[i]! }));
        for (const r of runs) {
          expect(r.stopReason).toBe('gradMap');
          expect(r.certificate!).toBeLessThanOrEqual(1e-6);
        }
        for (let i = 1; i < ws.length; i++) {
          // Measured on these 4 problems: every step strictly monotone; the smallest sparsity step is
          // 0.011 (tissue k = 2, w 0.5 → 0.75), the smallest relative steps of F and O are ≥ 20%.
          // Required: sparsity (fraction of exact zeros) strictly up; F = ‖Y − X0‖²/‖X0‖² strictly
          // up and the functional O and the invariant defect strictly down (for exact minimizers F is
          // non-decreasing and O non-increasing in w; certified stationary points follow it here).
          expect(sparsity(runs[i]!.Y)).toBeGreaterThan(sparsity(runs[i - 1]!.Y));
          expect(terms[i]!.fidelity).toBeGreaterThan(terms[i - 1]!.fidelity);
          expect(terms[i]!.orthogonality).toBeLessThan(terms[i - 1]!.orthogonality);
          expect(invariantOrthogonalityDefect(runs[i]!.Y)).toBeLessThan(invariantOrthogonalityDefect(runs[i - 1]!.Y));
        }
      });
    }
  }
});

describe('the complaint: w ∈ {0.25, 0.5, 0.75} from the PCA loadings of leukemia_all', () => {
  const spread = (runs: NsaFlowResult[]): number => Math.max(...runs.map((r) => sparsity(r.Y))) - Math.min(...runs.map((r) => sparsity(r.Y)));
  for (const k of [2, 3, 4, 5]) {
    it(`k = ${k}: the reference weighting pins cOrth at 1e6 and moves sparsity by < 0.01; the energy moves it by > 0.05, monotonically`, () => {
      const { Y0, X0 } = pcaProblem('leukemia_all/ALL_expr_top1000var.npy', k);
      const reference = [0.25, 0.5, 0.75].map((w) => nsaFlowSync(Y0, { X0, w, weighting: 'reference' }));
      const calibrationFree = [0.25, 0.5, 0.75].map((w) => nsaFlowSync(Y0, { X0, w }));
      // The start is orthonormal: defect(Y0) hits its floor and cOrth = min(4w/1e-8, 1e6) = 1e6 for every w.
      for (const r of reference) expect(r.settings.cOrth).toBe(1e6);
      // Measured spreads (max − min sparsity over the three w): reference 0.0045, 0.0043, 0.0023,
      // 0.0042 for k = 2..5 (the complaint's median 0.005); energy 0.063, 0.087, 0.098, 0.107.
      expect(spread(reference)).toBeLessThan(0.01);
      expect(spread(calibrationFree)).toBeGreaterThan(0.05);
      expect(sparsity(calibrationFree[1]!.Y)).toBeGreaterThan(sparsity(calibrationFree[0]!.Y));
      expect(sparsity(calibrationFree[2]!.Y)).toBeGreaterThan(sparsity(calibrationFree[1]!.Y));
    });
  }
});

describe('the calibration-free energy and its gradient through the retraction', () => {
  const functionals = ['gram', 'offDiagonal', 'meanCos2'] as const;

  it('values: the closed forms of the three functionals and of the fidelity; 0 at the ideal, 1 at "nothing"', () => {
    const Y = testMatrix(7, 3, 4, 0.3);
    const X0 = testMatrix(7, 3, 5, 0.6);
    const k = 3;
    const S = new Float64Array(k * k);
    for (let i = 0; i < 7; i++) for (let a = 0; a < k; a++) for (let b = 0; b < k; b++) S[a * k + b] += Y.data[i * k + a]! * Y.data[i * k + b]!;
    const tr = S[0]! + S[4]! + S[8]!;
    let gram = 0;
    let off = 0;
    let cos2 = 0;
    for (let a = 0; a < k; a++) {
      for (let b = 0; b < k; b++) {
        gram += (S[a * k + b]! / tr - (a === b ? 1 / k : 0)) ** 2;
        if (a !== b) {
          off += (S[a * k + b]! / tr) ** 2;
          cos2 += S[a * k + b]! ** 2 / (S[a * k + a]! * S[b * k + b]!);
        }
      }
    }
    const expected = { gram: gram / (1 - 1 / k), offDiagonal: off / (1 - 1 / k), meanCos2: cos2 / (k * (k - 1)) };
    let diff = 0;
    let x2 = 0;
    for (let i = 0; i < Y.data.length; i++) {
      diff += (Y.data[i]! - X0.data[i]!) ** 2;
      x2 += X0.data[i]! ** 2;
    }
    for (const f of functionals) {
      const e = energy(Y, X0, { w: 0.3, orthogonality: f });
      // closed forms in a different summation order: rounding only
      expect(Math.abs(e.orthogonality - expected[f]) / expected[f]).toBeLessThan(1e-13);
      expect(Math.abs(e.fidelity - diff / x2) / (diff / x2)).toBeLessThan(1e-13);
      expect(Math.abs(e.total - (0.7 * e.fidelity + 0.3 * e.orthogonality))).toBeLessThan(1e-15);
      // scale-free: Y and X0 scaled together (by a power of 2: exactly) give the same energy
      const scaled = energy({ ...Y, data: Y.data.map((v) => v * 1024) }, { ...X0, data: X0.data.map((v) => v * 1024) }, { w: 0.3, orthogonality: f });
      expect(scaled.total).toBe(e.total);
      // ideal and "nothing": orthogonal columns of equal norm give O = 0, equal parallel columns O = 1
      // (offDiagonal is 1 only when their norms are equal too); Y = X0 gives F = 0, Y = 0 gives F = 1
      const I: Matrix = { rows: 3, cols: 3, data: Float64Array.of(2, 0, 0, 0, 2, 0, 0, 0, 2) };
      expect(energy(I, I, { w: 1, orthogonality: f }).orthogonality).toBe(0);
      expect(energy(I, I, { w: 0.5, orthogonality: f }).fidelity).toBe(0);
      const parallel: Matrix = { rows: 3, cols: 2, data: Float64Array.of(1, 1, 2, 2, 3, 3) };
      expect(Math.abs(energy(parallel, parallel, { w: 1, orthogonality: f }).orthogonality - 1)).toBeLessThan(1e-15);
      expect(energy({ rows: 3, cols: 3, data: new Float64Array(9) }, I, { w: 0, orthogonality: f }).fidelity).toBe(1);
    }
  });

  it('energyBatch: both terms are the means of the elements’ energies', () => {
    const Y = [testMatrix(6, 3, 31, 0.4), testMatrix(6, 3, 32, 0.4)];
    const X = [testMatrix(6, 3, 33, 0.6), testMatrix(6, 3, 34, 0.6)];
    const stack = (ms: Matrix[]) => ({ shape: [2, 6, 3], data: Float64Array.from([...ms[0]!.data, ...ms[1]!.data]) });
    for (const f of functionals) {
      const b = energyBatch(stack(Y), stack(X), { w: 0.4, orthogonality: f });
      const each = [0, 1].map((i) => energy(Y[i]!, X[i]!, { w: 0.4, orthogonality: f }));
      for (const key of ['fidelity', 'orthogonality', 'total'] as const) {
        expect(Math.abs(b[key] - (each[0]![key] + each[1]![key]) / 2)).toBeLessThan(1e-15);
      }
    }
    expect(() => energyBatch(stack(Y), stack([X[0]!, { ...X[1]!, data: new Float64Array(18) }]))).toThrow(
      /^Expected a target X0\[1\] with a nonzero entry for energyBatch\(\)/,
    );
  });

  for (const f of functionals) {
    for (const [retraction, nonnegativity] of [
      ['softPolar', 'softplus'],
      ['polar', 'none'],
      ['softNewtonSchulz', 'softplus'],
      ['none', 'none'],
    ] as const) {
      it(`${f}: the exact gradient through ${retraction} + ${nonnegativity} (the VJP) agrees with central differences to 1e-6`, () => {
        const Z = testMatrix(9, 4, 21, 0.2);
        const X0 = testMatrix(9, 4, 22, 0.6);
        const opts = { w: 0.6, orthogonality: f, retraction, nonnegativity, nsIterations: 4 };
        const g = energyGradient(Z, X0, opts).gradient.data;
        const h = 1e-6;
        const fd = new Float64Array(Z.data.length);
        for (let i = 0; i < Z.data.length; i++) {
          const at = (t: number) => energyGradient({ ...Z, data: Z.data.map((v, j) => (j === i ? v + t : v)) }, X0, opts).total;
          fd[i] = (at(h) - at(-h)) / (2 * h);
        }
        let num = 0;
        let den = 0;
        for (let i = 0; i < g.length; i++) {
          num += (g[i]! - fd[i]!) ** 2;
          den += fd[i]! ** 2;
        }
        // central differences with h = 1e-6 on smooth maps: ~1e-9 relative; 1e-6 leaves room for rounding
        expect(Math.sqrt(num / den)).toBeLessThan(1e-6);
      });
    }
  }
});

describe('certificate and stop reason are honest', () => {
  const { Y0, X0 } = pcaProblem('leukemia_all/ALL_expr_top1000var.npy', 3);

  for (const optimizer of ['spg', 'lbfgsb'] as const) {
    for (const orthogonality of ['gram', 'offDiagonal', 'meanCos2'] as const) {
      it(`${optimizer}, ${orthogonality}: gradMap, and the certificate recomputed from ∇E at the returned Y agrees`, () => {
        const r = nsaFlowSync(Y0, { X0, w: 0.5, optimizer, orthogonality });
        const c = gradientMapping(r.Y.data, energyGradientAtY(r.Y, X0, 0.5, orthogonality), true);
        expect(r.stopReason).toBe('gradMap');
        expect(r.certificate!).toBeLessThanOrEqual(1e-6);
        // the same quantity computed twice in different orders: agreement to rounding of a ~1e-7 number
        expect(Math.abs(c - r.certificate!)).toBeLessThan(1e-9);
        expect(r.warnings).toEqual([]);
        expect(r.Y.data.every((v) => v >= 0)).toBe(true);
        expect(r.traces.certificate!.at(-1)).toBe(r.certificate);
        expect(r.traces.total.at(-1)).toBe(r.bestEnergy);
        // monotone solvers: the energy never rises along the trace
        for (let i = 1; i < r.traces.total.length; i++) expect(r.traces.total[i]!).toBeLessThanOrEqual(r.traces.total[i - 1]!);
      });
    }
  }

  it('the retraction loop: its certificate is the gradient mapping at the returned Y, and it is not gradMap when that is large', () => {
    const r = nsaFlowSync(Y0, { X0, w: 0.5, optimizer: 'adam', learningRate: 1e-3, maxIterations: 200, tolerance: -1e30 });
    const c = gradientMapping(r.Y.data, energyGradientAtY(r.Y, X0, 0.5), true);
    expect(Math.abs(c - r.certificate!) / c).toBeLessThan(1e-9);
    // Measured 1.8e-2: the hard non-negativity map passes no gradient to entries it clips, so the loop
    // cannot move them even where E would fall (not a KKT point), and says so.
    expect(r.certificate!).toBeGreaterThan(1e-3);
    expect(r.stopReason).toBe('maxIterations');
    expect(r.warnings).toHaveLength(1);
    expect(r.warnings[0]).toMatch(/^not stationary: the certificate .* exceeds 1e3·certificateTolerance \(1\.0e-3\) after stopping by 'maxIterations'$/);
  });

  it("the loop stops with 'gradMap' as soon as the best iterate's certificate is ≤ certificateTolerance", () => {
    const r = nsaFlowSync(Y0, { X0, w: 0.5, optimizer: 'adam', learningRate: 1e-3, maxIterations: 200, tolerance: -1e30, certificateTolerance: 0.1 });
    // measured: certificate 0.099 after 10 iterations
    expect(r.stopReason).toBe('gradMap');
    expect(r.certificate!).toBeLessThanOrEqual(0.1);
    expect(r.iterations).toBeLessThan(200);
    expect(r.bestIteration).toBe(r.iterations);
  });

  it('reference weighting: the certificate of its own energy (fidEta·F, cOrth·O) at the returned Y', () => {
    const r = nsaFlowSync(Y0, { X0, w: 0.5, weighting: 'reference', optimizer: 'adam', learningRate: 1e-2, maxIterations: 50 });
    const G = energyGradient(r.Y, r.target, {
      weighting: 'reference', w: 0.5, fidEta: r.settings.fidEta!, cOrth: r.settings.cOrth!, retraction: 'none', nonnegativity: 'none',
    }).gradient.data;
    // both default measures are scale invariant, so the mapping in the caller's units equals the solver's
    expect(Math.abs(gradientMapping(r.Y.data, G, true) - r.certificate!) / r.certificate!).toBeLessThan(1e-9);
    // measured 1.8e4: cOrth = 1e6 from the orthonormal start makes that energy stiff
    expect(r.certificate!).toBeGreaterThan(1);
    expect(r.stopReason).toBe('maxIterations');
  });

  it('a step that collapses Y to 0 is never the result: O(0) counts as 1 (its largest value), so E(0) = 1 ≥ E(start)', () => {
    // lr 1e3 clips every entry to 0 on the first step. With O(0) = 0, E(0) = 1 − w = 0.5 undercut this
    // start and the run returned Y = 0; now no step lowers the energy and the start comes back, said so.
    const r = nsaFlowSync(Y0, { X0, w: 0.5, optimizer: 'fast', learningRate: 1e3, maxIterations: 50 });
    expect(r.traces.total[0]).toBeLessThan(0.5);
    expect(Array.from(r.traces.total.slice(1)).every((e) => e >= 1 - 1e-12 || e > r.traces.total[0]!)).toBe(true);
    expect(r.bestIteration).toBe(0);
    expect(r.stopReason).toBe('stalled');
    expect(r.Y.data.some((v) => v > 0)).toBe(true);
    expect(typeof r.certificate).toBe('number');
  });
});

describe('nsaFlow dispatch to the certified solvers', () => {
  const { Y0, X0 } = pcaProblem('tissue/tissue_expr.npy', 3);

  it("the default is 'spg' with weighting 'energy' and 'gram'; the settings say which options applied", () => {
    const r = nsaFlowSync(Y0, { X0 });
    expect(r.settings).toMatchObject({ weighting: 'energy', optimizer: 'spg', orthogonality: 'gram', w: 0.5, certificateTolerance: 1e-6, plateauTolerance: 1e-12 });
    expect(r.settings.retraction).toBeNull();
    expect(r.settings.learningRate).toBeNull();
    expect(r.settings.memory).toBeNull(); // an 'lbfgsb' option
    expect(r.settings.fidEta).toBeNull();
    expect(r.lrEstimate).toBeNull();
    expect(Array.from(r.target.data)).toEqual(Array.from(X0.data));
    expect(nsaFlowSync(Y0, { X0, optimizer: 'lbfgsb', memory: 5 }).settings.memory).toBe(5);
  });

  it('without X0 the target is nonneg(Y0) (no jitter: the certified solvers draw nothing)', () => {
    const r = nsaFlowSync(Y0);
    expect(Array.from(r.target.data)).toEqual(Array.from(X0.data));
    expect(r.stopReason).toBe('gradMap');
  });

  it("nonnegativity 'none' solves without the bound (Y keeps negative entries)", () => {
    const r = nsaFlowSync(Y0, { X0: Y0, nonnegativity: 'none', w: 0.5 });
    expect(r.stopReason).toBe('gradMap');
    expect(r.Y.data.some((v) => v < 0)).toBe(true);
    expect(Math.abs(gradientMapping(r.Y.data, energyGradientAtY(r.Y, Y0, 0.5), false) - r.certificate!)).toBeLessThan(1e-9);
  });

  it('async: the same result, progress with the certificate, and an aborted signal rejects with AbortError', async () => {
    const progress: NsaFlowProgress[] = [];
    const r = await nsaFlow(Y0, { X0, onProgress: (p) => progress.push(p), progressIntervalMs: 0 });
    expect(Array.from(r.Y.data)).toEqual(Array.from(nsaFlowSync(Y0, { X0 }).Y.data));
    expect(progress.length).toBeGreaterThan(0);
    expect(progress.at(-1)!.certificate).toBeGreaterThan(0);
    await expect(nsaFlow(Y0, { X0, signal: AbortSignal.abort() })).rejects.toBeInstanceOf(AbortError);
  });

  it('the retraction loop under the energy weighting: no calibration, Y and X0 in units of ‖X0‖', () => {
    const r = nsaFlowSync(Y0, { X0, optimizer: 'adam', learningRate: 1e-3, maxIterations: 20 });
    expect(r.settings).toMatchObject({ weighting: 'energy', orthogonality: 'gram', fidEta: null, cOrth: null, fidelityType: null, warmupIterations: null });
    let x2 = 0;
    for (const v of X0.data) x2 += v * v;
    expect(Math.abs(r.settings.scale! / Math.sqrt(x2) - 1)).toBeLessThan(1e-15);
    // the traces are the energy's terms (scale-free, so the same in the caller's units)
    const e = energy(r.Y, X0, { w: 0.5 });
    const best = r.traces.total.indexOf(r.bestEnergy);
    expect(Math.abs(r.traces.fidelity[best]! - e.fidelity)).toBeLessThan(1e-12);
    expect(Math.abs(r.traces.orthogonality[best]! - e.orthogonality)).toBeLessThan(1e-12);
  });
});

describe('bad options: refused by class and message, before native work', () => {
  const Y0 = testMatrix(10, 3, 1);
  const cases: [string, NsaFlowOptions, ErrorConstructor, RegExp][] = [
    ['a reference-only option with the energy', { fidelityType: 'basic' }, RangeError,
      /^options\.fidelityType of nsaFlowSync\(\) applies to weighting 'reference' only, but the weighting is 'energy' \(received fidelityType 'basic'\); .*pass weighting: 'reference'/],
    ['warmupIterations with the energy', { warmupIterations: 5 }, RangeError, /^options\.warmupIterations of nsaFlowSync\(\) applies to weighting 'reference' only/],
    ['an energy-only option with the reference', { weighting: 'reference', orthogonality: 'meanCos2' }, RangeError,
      /^options\.orthogonality of nsaFlowSync\(\) applies to weighting 'energy' only, but the weighting is 'reference' \(received orthogonality 'meanCos2'\)/],
    ['a certified solver with the reference weighting', { weighting: 'reference', optimizer: 'lbfgsb' }, RangeError,
      /^Expected weighting 'energy' for optimizer 'lbfgsb' of nsaFlowSync\(\) .* but received weighting 'reference'$/],
    ['a learning rate for a certified solver', { learningRate: 0.1 }, RangeError,
      /^options\.learningRate of nsaFlowSync\(\) applies to the retraction loop only, but optimizer 'spg' is a certified solver \(received learningRate 0\.1\)/],
    ['a retraction for a certified solver', { optimizer: 'lbfgsb', retraction: 'polar' }, RangeError, /^options\.retraction of nsaFlowSync\(\) applies to the retraction loop only/],
    ['a seed for a certified solver', { seed: 3 }, RangeError, /^options\.seed of nsaFlowSync\(\) applies to the retraction loop only/],
    ['the slope tolerance for a certified solver', { tolerance: 1e-3 }, RangeError, /^options\.tolerance of nsaFlowSync\(\) applies to the retraction loop only/],
    ["lookaheadBase other than its default for a certified solver", { lookaheadBase: 'sgd' }, RangeError, /^options\.lookaheadBase of nsaFlowSync\(\) applies to the retraction loop only/],
    ['softplus for a certified solver', { nonnegativity: 'softplus' }, RangeError, /^Expected nonnegativity 'hard' or 'none' for optimizer 'spg' of nsaFlowSync\(\) .* but received 'softplus'$/],
    ["memory for 'spg'", { memory: 4 }, RangeError, /^options\.memory of nsaFlowSync\(\) applies to optimizer 'lbfgsb' only but received memory 4 with optimizer 'spg'$/],
    ['plateauTolerance for the retraction loop', { optimizer: 'adam', plateauTolerance: 1e-9 }, RangeError,
      /^options\.plateauTolerance of nsaFlowSync\(\) applies to the certified solvers \('lbfgsb', 'spg'\) only, but optimizer 'adam' runs the retraction loop/],
    ['memory beyond the solver’s 100 pairs', { optimizer: 'lbfgsb', memory: 500 }, RangeError, /^Expected an integer in \[1, 100\] for options\.memory of nsaFlowSync\(\) but received 500$/],
    ['an unknown functional', { orthogonality: 'cos' as 'gram' }, RangeError, /^Expected one of 'gram', 'offDiagonal', 'meanCos2' for options\.orthogonality of nsaFlowSync\(\) but received the string "cos"$/],
    ['an unknown weighting', { weighting: 'calibrated' as 'energy' }, RangeError, /^Expected one of 'energy', 'reference' for options\.weighting of nsaFlowSync\(\) but received the string "calibrated"$/],
    ['a negative certificateTolerance', { certificateTolerance: -1 }, RangeError, /options\.certificateTolerance of nsaFlowSync\(\) but received -1$/],
    ['a zero target for the energy', { X0: { rows: 10, cols: 3, data: new Float64Array(30) } }, RangeError,
      /^Expected options\.X0 of nsaFlowSync\(\) to have a positive entry \(weighting 'energy' divides by ‖X0‖² of the clamped target max\(X0, 0\)\) but received none$/],
    ['a non-positive target for the energy (clamped to 0)', { X0: { rows: 10, cols: 3, data: new Float64Array(30).fill(-1) }, optimizer: 'adam' }, RangeError,
      /^Expected options\.X0 of nsaFlowSync\(\) to have a positive entry/],
  ];
  for (const [what, options, cls, message] of cases) {
    it(what, () => {
      const call = () => nsaFlowSync(Y0, options);
      expect(call).toThrow(cls);
      expect(call).toThrow(message);
    });
  }

  it('the energy functions refuse the other weighting’s options too', () => {
    const Y = testMatrix(6, 2, 3);
    expect(() => energy(Y, Y, { fidEta: 2 })).toThrow(RangeError);
    expect(() => energy(Y, Y, { fidEta: 2 })).toThrow(/^options\.fidEta of energy\(\) applies to weighting 'reference' only/);
    expect(() => energy(Y, Y, { weighting: 'reference', orthogonality: 'gram' })).toThrow(/^options\.orthogonality of energy\(\) applies to weighting 'energy' only/);
    expect(() => energy(Y, { ...Y, data: new Float64Array(12) })).toThrow(/^Expected a target X0 with a nonzero entry for energy\(\)/);
  });

  it('the raw binding re-checks the new fields', async () => {
    const { native } = await import('../lib/native.js');
    const full = {
      weighting: 'energy', orthogonality: 'gram', certificateTolerance: 1e-6, retraction: 'softPolar', nsIterations: 5, nonnegativity: 'hard',
      fidelityType: 'scaleInvariant', orthogonalityType: 'scaleInvariant', w: 0.5, optimizer: 'adam', lookaheadBase: 'adam', lookaheadK: 5,
      lookaheadAlpha: 0.5, learningRate: 0.01, lrStrategy: '', aggression: 0.5, maxIterations: 5, tolerance: 1e-4, windowSize: 10, recordEvery: 1,
      warmupIterations: 0, lrScheduler: false, lrSchedulerPatience: 10, lrSchedulerFactor: 0.5, clipNorm: 10, seed: 42,
    };
    const Y = Float64Array.of(1, 0, 0, 1, 1, 1);
    expect(() => native().nsaFlowSync(Y, null, 3, 2, { ...full, weighting: 'nope' })).toThrow(/^Expected one of .* for options\.weighting but received the string "nope"$/);
    expect(() => native().nsaFlowSync(Y, null, 3, 2, { ...full, orthogonality: undefined })).toThrow(/for options\.orthogonality but received undefined$/);
    expect(() => native().nsaFlowSync(Y, null, 3, 2, { ...full, certificateTolerance: -1 })).toThrow(/options\.certificateTolerance but received -1$/);
    expect(() => native().nsaFlowSync(Y, null, 3, 2, { ...full, warmupIterations: 3 })).toThrow(/^Expected 0 for options\.warmupIterations with weighting 'energy'/);
    expect(() => native().nsaFlowSync(new Float64Array(6), null, 3, 2, full)).toThrow(/^Expected a target X0 with a nonzero entry/);
    expect(native().nsaFlowSync(Y, null, 3, 2, full).iterations).toBeGreaterThan(0);
  });
});
