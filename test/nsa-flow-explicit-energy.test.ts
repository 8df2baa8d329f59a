// The explicit NSA-Flow's calibration-free energy (weighting: 'energy', the default), its tangent
// projection at the polar factor (never an ascent direction, at any scale), the flow from PCA starts
// of real data (it must move, and w must act monotonically), honest stop reasons with the
// gradient-mapping certificate, and w: 'auto' on paths with stalled points.
import { describe, expect, it } from 'vitest';

import { NumericalError, nsaFlowExplicitSync, nsaFlowPathSync, selectAuto, selectOnPath, type Matrix, type PathPoint } from '../lib/index.js';
import { pcaStart } from './helpers/explicit-data.js';
import { mul, project, type Mat } from './helpers/explicit-hand.js';
import { lcg } from './helpers/lcg.js';

const dot = (a: Float64Array, b: Float64Array): number => a.reduce((s, v, i) => s + v * b[i]!, 0);
const scaled = (Y: Matrix, s: number): Matrix => ({ ...Y, data: Y.data.map((v) => v * s) });
const positivePart = (Y: Matrix): Matrix => ({ ...Y, data: Y.data.map((v) => Math.max(v, 0)) });

/** SPEC §6's projection Z − Y·sym(YᵀZ) (the tangent projection only when YᵀY = I). */
function referenceProject(Y: Mat, Z: Mat): Mat {
  const k = Y.cols;
  const A = mul(Y, Z, true);
  const sym = A.data.map((_, idx) => 0.5 * (A.data[idx]! + A.data[(idx % k) * k + Math.floor(idx / k)]!));
  const Ysym = mul(Y, { rows: k, cols: k, data: sym });
  return { ...Z, data: Z.data.map((v, i) => v - Ysym.data[i]!) };
}

/** The orthogonality functionals of native/kernels/orthogonality.hpp, written from their definitions. */
function functional(name: 'gram' | 'offDiagonal' | 'meanCos2', Y: Mat): number {
  const k = Y.cols;
  const S = mul(Y, Y, true).data;
  let t = 0;
  for (let i = 0; i < k; i++) t += S[i * k + i]!;
  let sum = 0;
  for (let i = 0; i < k; i++) {
    for (let j = 0; j < k; j++) {
      const s = S[i * k + j]!;
      if (name === 'gram') sum += (s / t - (i === j ? 1 / k : 0)) ** 2;
      else if (i !== j) sum += name === 'offDiagonal' ? (s / t) ** 2 : (s * s) / (S[i * k + i]! * S[j * k + j]!);
    }
  }
  return name === 'meanCos2' ? sum / (k * (k - 1)) : sum / (1 - 1 / k);
}

const randomStart: Matrix = { rows: 60, cols: 5, data: lcg(300, 7, 0.3) };
const leukemia = pcaStart('leukemia_all/ALL_expr_top1000var.npy', 2, 'largest');

describe('the tangent projection at the polar factor', () => {
  // Y·Σ (Σ symmetric) is a normal direction at Y's polar factor, the worst case for the reference's form.
  const starts: Array<[string, Matrix]> = [
    ['random 60×5', randomStart],
    ['PCA loadings of leukemia_all (1000×2)', leukemia.loadings],
    ['N(PCA loadings)', positivePart(leukemia.loadings)],
  ];
  for (const [name, Y] of starts) {
    it(`${name}: ⟨Z, P(Z)⟩ ≥ 0 at every scale (1e-3, 1, 1e3, RMS units), where Z − Y·sym(YᵀZ) turns uphill`, () => {
      const rms = Math.sqrt(dot(Y.data, Y.data) / Y.data.length);
      for (const s of [1e-3, 1, 1e3, 1 / rms]) {
        const Ys = scaled(Y, s);
        const random: Mat = { rows: Y.rows, cols: Y.cols, data: lcg(Y.data.length, 11, 0.5) };
        const normal = mul(Ys, { rows: Y.cols, cols: Y.cols, data: Float64Array.from({ length: Y.cols * Y.cols }, (_, i) => (i % (Y.cols + 1) === 0 ? 1 : 0.1)) });
        for (const Z of [random, normal]) {
          const P = project(Ys, Z);
          // ⟨Z, P(Z)⟩ = ‖Z‖² − ‖sym(QᵀZ)‖² ≥ 0 for ‖Q‖₂ ≤ 1 (explicit_flow.cpp, gradientMap); = ‖P(Z)‖² for QᵀQ = I.
          expect(dot(Z.data, P.data)).toBeGreaterThanOrEqual(-1e-12 * dot(Z.data, Z.data));
          expect(Math.abs(dot(Z.data, P.data) - dot(P.data, P.data))).toBeLessThan(1e-9 * dot(Z.data, Z.data));
        }
        // The reference's form at ‖Y‖₂ ≫ 1 (RMS units: YᵀY ≈ p·I for PCA loadings) maps the normal
        // direction Y·Σ to Y·(Σ − sym(YᵀY·Σ)): ⟨Z, ·⟩ < 0, an ascent direction (the stall of the issue).
        if (s === 1e3 || (s === 1 / rms && Y !== randomStart)) {
          expect(dot(normal.data, referenceProject(Ys, normal).data)).toBeLessThan(0);
        }
      }
    });
  }

  // One step of the kernel with nothing else moving the iterate (no retraction, no non-negativity, no
  // backtracking) and a small learning rate: it lowers the energy iff ⟨∇E, g⟩ > 0 for the kernel's g.
  const oneStep = (Y0: Matrix, options: Record<string, unknown>) => {
    const n2 = dot(Y0.data, Y0.data);
    // A target that differs from Y0 wherever Y0 > 0 too, so that the fidelity gradient is never 0.
    const u = lcg(Y0.data.length, 13);
    return nsaFlowExplicitSync(Y0, {
      X0: { ...Y0, data: Y0.data.map((v, i) => Math.max(v, 0) * (1 + 0.5 * u[i]!)) },
      retraction: 'none',
      nonnegativity: 'none',
      rescale: false,
      maxBacktracks: 0,
      maxIterations: 1,
      tolerance: 0,
      // The energies are scale-free (their gradients scale as 1/‖Y‖); 'energy' steps ‖X0‖²·g, so its lr
      // is scale-free already, the others' is scaled by ‖Y‖².
      learningRate: options.weighting === undefined ? 1e-5 : 1e-5 * n2,
      ...options,
    });
  };
  const cases: Array<[string, Record<string, unknown>]> = [
    ["'energy', O = offDiagonal, w = 1 (the projected orthogonality gradient alone)", { w: 1, orthogonality: 'offDiagonal' }],
    ["'energy', O = meanCos2, w = 1", { w: 1, orthogonality: 'meanCos2' }],
    ["'energy', O = gram, w = 0.5, projectFullGradient", { w: 0.5, projectFullGradient: true }],
    ["'energy', O = offDiagonal, w = 0.5, projectFullGradient", { w: 0.5, orthogonality: 'offDiagonal', projectFullGradient: true }],
    ["'reference', w = 1 (the projected defect gradient alone)", { w: 1, weighting: 'reference' }],
    ["'balanced', w = 1", { w: 1, weighting: 'balanced' }],
  ];
  for (const [name, options] of cases) {
    it(`the kernel's direction lowers the energy: ${name}, at a random and a PCA start of scale 1e-3, 1, 1e3`, () => {
      for (const Y of [randomStart, positivePart(leukemia.loadings)]) {
        for (const s of [1e-3, 1, 1e3]) {
          const r = oneStep(scaled(Y, s), options);
          expect(r.bestIteration).toBe(1);
          expect(r.traces.total[1]!).toBeLessThan(r.startEnergy);
        }
      }
    });
  }
});

describe("the issue's reproducer: leukemia_all, k = 2, PCA start, X0 = N(Y0), w = 0.05", () => {
  const { loadings } = leukemia;
  const X0 = positivePart(loadings);

  it('moves off its start (before the fix: 19.4 backtracks per iteration and N(Y0) returned)', () => {
    const r = nsaFlowExplicitSync(loadings, { X0, w: 0.05, maxIterations: 300 });
    console.log(
      `reproducer: energy ${r.startEnergy.toPrecision(4)} → ${r.bestEnergy.toPrecision(4)}, bestIteration ${r.bestIteration}, ` +
        `${r.acceptedSteps} accepted steps, ${r.stopReason} (${r.convergence}), certificate ${r.certificate.toExponential(2)}, ` +
        `sparsity ${r.diagnostics.sparsity}, relative fidelity ${r.diagnostics.relativeFidelity.toFixed(4)}`,
    );
    expect(r.settings.weighting).toBe('energy');
    // Measured: energy 0.01558 → 0.01442 (−7.4%), bestIteration 300, 291 accepted steps, still
    // descending at the cap; relative fidelity 0.019 (before: 2e-15, i.e. the start), sparsity 0.4315 → 0.434.
    expect(r.bestIteration).toBeGreaterThan(10);
    expect(r.acceptedSteps).toBeGreaterThan(10);
    expect(r.bestEnergy).toBeLessThan(0.95 * r.startEnergy);
    expect(r.diagnostics.relativeFidelity).toBeGreaterThan(0.01);
    expect(r.stopReason).not.toBe('stalled');
    // The flow's fixed point is not a stationary point of E: the certificate (4.3e-2) stays above the
    // tolerance, so the stop is never a 'gradMap' success here.
    expect(['plateau', 'maxIterations']).toContain(r.stopReason);
    expect(r.certificate).toBeGreaterThan(r.settings.tolerance);
    expect(r.diagnostics.sparsity).toBeGreaterThan(0.4315);
  });

  it("the 'balanced' weighting moves too (before the fix it stalled the same way)", () => {
    const r = nsaFlowExplicitSync(loadings, { X0, w: 0.05, maxIterations: 300, weighting: 'balanced' });
    // Measured: bestIteration 235, energy 0.0500 → 0.0439, relative fidelity 0.085.
    expect(r.bestIteration).toBeGreaterThan(10);
    expect(r.bestEnergy).toBeLessThan(0.95 * r.startEnergy);
    expect(r.diagnostics.relativeFidelity).toBeGreaterThan(0.01);
  });
});

describe('w acts monotonically from PCA starts of real data (energy weighting)', () => {
  // Monotone up to 1e-6 relative noise: each step along w may not move a quantity the wrong way by more.
  const noise = 1e-6;
  const ws = [0.05, 0.25, 0.5, 0.75, 0.95];
  for (const file of ['leukemia_all/ALL_expr_top1000var.npy', 'tissue/tissue_expr.npy']) {
    for (const k of [2, 4]) {
      it(`${file.split('/')[0]}, k = ${k}: sparsity rises, defect and fidelity fall, every fit moves`, () => {
        const { loadings } = pcaStart(file, k, 'largest');
        const X0 = positivePart(loadings);
        const runs = ws.map((w) => nsaFlowExplicitSync(loadings, { X0, w, maxIterations: 300 }));
        console.log(
          `${file.split('/')[0]} k=${k}: ` +
            runs.map((r, i) => `w=${ws[i]} sparsity ${r.diagnostics.sparsity.toFixed(4)} defect ${r.diagnostics.defect.toExponential(2)} fidelity error ${r.diagnostics.relativeFidelity.toFixed(4)} (${r.acceptedSteps} steps, ${r.stopReason})`).join('; '),
        );
        for (const r of runs) {
          expect(r.acceptedSteps).toBeGreaterThan(0);
          expect(r.stopReason).not.toBe('stalled');
          expect(r.bestEnergy).toBeLessThan(r.startEnergy);
        }
        for (let i = 1; i < runs.length; i++) {
          const [a, b] = [runs[i - 1]!.diagnostics, runs[i]!.diagnostics];
          expect(b.sparsity).toBeGreaterThanOrEqual(a.sparsity - noise);
          expect(b.defect).toBeLessThanOrEqual(a.defect * (1 + noise));
          expect(b.relativeFidelity).toBeGreaterThanOrEqual(a.relativeFidelity * (1 - noise));
        }
        // Over the whole grid the changes are large, not noise (measured on leukemia_all k = 2: sparsity
        // 0.434 → 0.551, defect 5.7e-2 → 2.1e-4, fidelity error 0.019 → 0.373).
        expect(runs[4]!.diagnostics.sparsity - runs[0]!.diagnostics.sparsity).toBeGreaterThan(0.05);
        expect(runs[4]!.diagnostics.defect).toBeLessThan(0.1 * runs[0]!.diagnostics.defect);
        expect(runs[4]!.diagnostics.relativeFidelity).toBeGreaterThan(3 * runs[0]!.diagnostics.relativeFidelity);
      });
    }
  }
});

describe('the energy, the certificate and the stop reasons', () => {
  const p = 40;
  const k = 4;
  const n = p * k;
  const X0: Matrix = { rows: p, cols: k, data: lcg(n, 4) };
  const Y0: Matrix = { rows: p, cols: k, data: lcg(n, 3) };

  for (const orthogonality of ['gram', 'offDiagonal', 'meanCos2'] as const) {
    it(`O = ${orthogonality}: bestEnergy is (1 − w)‖Y − X0‖²/‖X0‖² + w·O(Y), the certificate the gradient mapping of its finite-difference gradient`, () => {
      const w = 0.4;
      const r = nsaFlowExplicitSync(Y0, { X0, w, orthogonality, maxIterations: 5, tolerance: 0 });
      const x2 = dot(X0.data, X0.data);
      const energy = (Y: Float64Array): number => {
        let f = 0;
        for (let i = 0; i < n; i++) f += (Y[i]! - X0.data[i]!) ** 2;
        return ((1 - w) * f) / x2 + w * functional(orthogonality, { rows: p, cols: k, data: Y });
      };
      const Y = r.Y.data;
      expect(Math.abs(r.bestEnergy - energy(Y))).toBeLessThan(1e-12);
      // Central differences (E is scale-free, so the caller's units give the kernel's certificate).
      const G = new Float64Array(n);
      const h = 1e-6;
      for (let i = 0; i < n; i++) {
        const up = Float64Array.from(Y);
        const down = Float64Array.from(Y);
        up[i]! += h;
        down[i]! -= h;
        G[i] = (energy(up) - energy(down)) / (2 * h);
      }
      const y2 = dot(Y, Y);
      let d2 = 0;
      for (let i = 0; i < n; i++) d2 += (Math.max(Y[i]! - y2 * G[i]!, 0) - Y[i]!) ** 2;
      const certificate = Math.sqrt(d2 / y2);
      expect(Math.abs(r.certificate - certificate) / certificate).toBeLessThan(1e-6);
      expect(r.stopReason).toBe('maxIterations');
    });
  }

  it("'gradMap' when a flow rule fires at a certified point: w = 0 and one exact step to X0", () => {
    // w = 0: E = ‖Y − X0‖²/‖X0‖² and no retraction; in the working units ‖X0‖² = n, so lr = n/2 makes the
    // first step land on X0 (E = 0, certificate 0), and the energy window fires 4 iterations later.
    const near: Matrix = { rows: p, cols: k, data: X0.data.map((v, i) => v + 0.01 * lcg(n, 5)[i]!) };
    const r = nsaFlowExplicitSync(near, { X0, w: 0, learningRate: n / 2 });
    expect(r.convergence).toBe('energyWindow');
    expect(r.certificate).toBeLessThanOrEqual(r.settings.tolerance);
    expect(r.stopReason).toBe('gradMap');
  });

  it("'stalled' when no step is ever accepted: the start N(Y0) is returned, with its certificate", () => {
    const r = nsaFlowExplicitSync(Y0, { X0, w: 0.3, retraction: 'none', learningRate: 1e6, maxBacktracks: 0, maxIterations: 20 });
    expect(r.stopReason).toBe('stalled');
    expect(r.acceptedSteps).toBe(0);
    expect(r.bestIteration).toBe(0);
    // N(Y0) up to the round trip through the working units (Y/s·s).
    r.Y.data.forEach((v, i) => expect(Math.abs(v - Math.max(Y0.data[i]!, 0))).toBeLessThan(1e-15));
    expect(r.certificate).toBeGreaterThan(0.1); // measured 0.77: far from stationary
  });

  it("'maxIterations' at the cap, 'plateau' when a flow rule fires above the certificate's tolerance", () => {
    expect(nsaFlowExplicitSync(Y0, { X0, w: 0.5, maxIterations: 3, tolerance: 0 }).stopReason).toBe('maxIterations');
    // Measured: the energy window fires at iteration 169 with certificate 3.2e-2.
    const r = nsaFlowExplicitSync(Y0, { X0, w: 0.5, learningRate: 0.1 });
    expect(r.convergence).toBe('energyWindow');
    expect(r.certificate).toBeGreaterThan(r.settings.tolerance);
    expect(r.stopReason).toBe('plateau');
  });

  it('traces describe the energy: total = fidelity + w·orthogonality, orthogonality = O(Y)', () => {
    const w = 0.7;
    const r = nsaFlowExplicitSync(Y0, { X0, w, orthogonality: 'meanCos2', maxIterations: 10, tolerance: 0 });
    expect(r.settings.fidEta).toBeCloseTo((2 * (1 - w)) / n, 12); // ‖X0‖² = n in the working units
    expect(r.settings.cOrth).toBe(4 * w);
    const last = r.traces.total.length - 1;
    expect(Math.abs(r.traces.total[last]! - (r.traces.fidelity[last]! + w * r.traces.orthogonality[last]!))).toBeLessThan(1e-14);
    if (r.bestIteration === r.iterations) {
      expect(Math.abs(r.traces.orthogonality[last]! - functional('meanCos2', r.Y))).toBeLessThan(1e-12);
    }
  });
});

describe("w: 'auto' never chooses a point that did not move", () => {
  const p = 40;
  const k = 4;
  const n = p * k;
  const X0: Matrix = { rows: p, cols: k, data: lcg(n, 4) };
  const far: Matrix = { rows: p, cols: k, data: X0.data.map((v) => 3 * v) };
  const ws = [0.05, 0.25, 0.5, 0.75, 0.95];

  it('a real path with stalled points: they are excluded and named, the choice is among the moved ones', () => {
    // Y0 = 3·X0 with no retraction and no non-negativity. 'gram' is invariant under Y → Y·R, so its
    // projected gradient is 0 (explicit_flow.cpp, gradientMap) and the step lr·‖X0‖²·∇E =
    // 2·lr·(1 − w)(Y − X0) scales Y − X0 by 1 − 3(1 − w) (lr = 1.5). For w < 1/3 that factor is below
    // −1: the step overshoots X0 by more than Y's distance to it, the fidelity grows and O stays (the
    // iterate stays a multiple of X0), so every step is rejected (maxBacktracks 0): stalled, whatever
    // the rounding. For w ≥ 1/3 it lies in (−1, 1): the fidelity falls at every step (w = 0.5 goes
    // through ≈ 0 at its first step, then to X0; 0.75 and 0.95, warm-started there, keep moving in).
    const path = nsaFlowPathSync(far, { X0, ws, retraction: 'none', nonnegativity: 'none', maxBacktracks: 0, learningRate: 1.5, maxIterations: 50, select: 'auto' });
    expect(path.points.map((q) => q.stopReason)).toEqual(['stalled', 'stalled', 'plateau', 'plateau', 'plateau']);
    expect(path.points.map((q) => q.run.acceptedSteps > 0)).toEqual([false, false, true, true, true]);
    // The moved points all but reach X0 (measured relative fidelity errors 1.8e-4, 1.7e-7, 1.1e-7) and
    // none changes O, so which one the knee picks is decided by rounding; only the exclusion is tested.
    expect(path.points[2]!.relativeFidelity).toBeLessThan(1e-3);
    const sel = path.selection!;
    expect([0.5, 0.75, 0.95]).toContain(sel.w);
    expect(sel.excluded.map((e) => e.w)).toEqual([0.05, 0.25]);
    expect(sel.excluded.every((e) => /stalled/.test(e.why))).toBe(true);
    expect(sel.scores.map(Number.isNaN)).toEqual([true, true, false, false, false]);
    expect(sel.reason).toMatch(/excluded w = 0\.05 \(stalled/);
    // nsaFlowExplicit's w: 'auto' reports the same selection.
    const auto = nsaFlowExplicitSync(far, { X0, w: 'auto', ws, retraction: 'none', nonnegativity: 'none', maxBacktracks: 0, learningRate: 1.5, maxIterations: 50 });
    expect(auto.settings.w).toBe(sel.w);
    expect(auto.wSelection!.excluded.length).toBe(2);
  });

  it('on hand-made points: the criterion runs on the moved points only, indices refer to the whole grid', () => {
    const point = (w: number, relativeFidelity: number, defect: number, sparsity: number, acceptedSteps: number): PathPoint =>
      ({ w, relativeFidelity, defect, sparsity, stopReason: acceptedSteps === 0 ? 'stalled' : 'plateau', run: { acceptedSteps } }) as unknown as PathPoint;
    // Separation up to 0.6 (sparsity rises 2× as fast as f), then stalled points repeating 0.6's solution.
    const points = [point(0.2, 0.1, 0.5, 0.1, 9), point(0.4, 0.2, 0.3, 0.3, 9), point(0.6, 0.3, 0.1, 0.5, 9), point(0.8, 0.3, 0.1, 0.5, 0), point(0.9, 0.3, 0.1, 0.5, 0)];
    // The repeats trade at rate 0, below par, so even unfiltered the choice is 0.6 (the former
    // saturation rule read them as a flat fidelity and took 0.9).
    expect(selectAuto(points)).toMatchObject({ criterion: 'separation', w: 0.6 });
    const sel = selectOnPath(points, 'auto');
    expect(sel.criterion).toBe('separation');
    expect(sel.index).toBe(2);
    expect(sel.w).toBe(points[sel.index]!.w);
    expect(sel.excluded).toEqual([
      { index: 3, w: 0.8, why: 'stalled: no accepted step, the solve returned its start' },
      { index: 4, w: 0.9, why: 'stalled: no accepted step, the solve returned its start' },
    ]);
    expect(sel.reason).toMatch(/^support separation: .*; w = 0\.6 is the largest w whose segment still trades at par or better \(2×; .*; excluded w = 0\.8 \(stalled.*w = 0\.9 \(stalled/);
  });

  it('a path where nothing moved has no w to choose: NumericalError naming the grid', () => {
    // As above with lr = 10: Y − X0 is scaled by 1 − 20(1 − w), an overshoot at both w: every solve stalls.
    const options = { X0, ws: [0.2, 0.6], retraction: 'none', nonnegativity: 'none', maxBacktracks: 0, learningRate: 10, select: 'auto' } as const;
    expect(() => nsaFlowPathSync(far, options)).toThrow(NumericalError);
    expect(() => nsaFlowPathSync(far, options)).toThrow(/every solve of the grid stalled at its start \(0\.2, 0\.6\)/);
  });
});
