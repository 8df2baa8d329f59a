// The calibration-free NSA-Flow energy (nsaEnergy) and its certified solvers (runCertifiedSync/Async):
// gradients against central differences, the 0/1 ideals of every term, monotone runs, honest stop
// reasons, KKT at the solution, L-BFGS-B against SPG on real data, the action of w, async jobs and
// bad inputs.
import { describe, expect, it } from 'vitest';

import { AbortError, nsaEnergy, pca, readNpyMatrix, type Matrix } from '../lib/index.js';
import {
  certifiedOptionSpecs,
  orthogonalityFunctionals,
  runCertifiedAsync,
  runCertifiedSync,
  type CertifiedMode,
  type CertifiedOptions,
  type CertifiedProblem,
  type CertifiedProgress,
  type CertifiedRun,
} from '../lib/nsa-flow/certified.js';
import { parseOptions } from '../lib/validate.js';
import { centred } from './helpers/explicit-data.js';
import { finiteDifferenceGradient, testMatrix } from './helpers/flow-fixtures.js';
import { dataFile, relativeError } from './helpers/shared.js';
import { thrown } from './helpers/thrown.js';

const options = (o: Partial<CertifiedOptions> = {}): CertifiedOptions => parseOptions<CertifiedOptions>(certifiedOptionSpecs, o, 'test');
const abs = (m: Matrix): Matrix => ({ rows: m.rows, cols: m.cols, data: m.data.map(Math.abs) });
const positive = (p: number, k: number, seed: number): Matrix => {
  const m = testMatrix(p, k, seed);
  return { rows: p, cols: k, data: m.data.map((v) => 0.1 + Math.abs(v)) };
};

// Small problems of every mode: Y (the variable), the energy options that define it.
const p = 9;
const k = 3;
const X = testMatrix(14, p, 3); // 14 observations of 9 variables, entries in (−1, 1)
const problems: Record<string, { Y: Matrix; energy: Parameters<typeof nsaEnergy>[1] }> = {
  target: { Y: positive(p, k, 1), energy: { mode: 'target', X0: testMatrix(p, k, 2) } },
  data: { Y: positive(p, k, 4), energy: { mode: 'data', X } },
  signed: { Y: positive(p, 2 * k, 5), energy: { mode: 'signed', X, overlapPenalty: 0.3 } },
  'anchored/subspace': { Y: positive(p, k, 6), energy: { mode: 'anchored', X0: testMatrix(p, 2, 7) } },
  'anchored/target': { Y: positive(p, k, 8), energy: { mode: 'anchored', anchor: 'target', X0: testMatrix(p, k, 9) } },
};

describe('nsaEnergy: gradients against central differences', () => {
  for (const [name, { Y, energy }] of Object.entries(problems)) {
    for (const orthogonality of orthogonalityFunctionals) {
      it(`${name} × ${orthogonality}`, () => {
        const o = { ...energy, orthogonality, w: 0.4 };
        const g = nsaEnergy(Y, o).gradient.data;
        const fd = finiteDifferenceGradient((y) => nsaEnergy({ rows: Y.rows, cols: Y.cols, data: y }, o).energy, Y.data, 1e-6);
        // Central differences with h = 1e-6 on entries of size ~0.5: truncation h²·|E'''| ~ 1e-12 and
        // rounding ε·|E|/h ~ 1e-10, against gradients of size ~0.1–1: 1e-7 leaves a margin of ~100.
        expect(relativeError(g, fd)).toBeLessThan(1e-7);
      });
    }
  }
});

describe('nsaEnergy: every term is 0 at its ideal and 1 at its "nothing" point', () => {
  const orthonormal: Matrix = { rows: 4, cols: 2, data: Float64Array.from([0.6, 0, 0.8, 0, 0, 1, 0, 0]) };
  const parallel: Matrix = { rows: 4, cols: 2, data: Float64Array.from([1, 1, 2, 2, 0.5, 0.5, 3, 3]) };
  const target = { X0: orthonormal };
  for (const orthogonality of orthogonalityFunctionals) {
    it(`${orthogonality}: 0 for orthonormal columns, 1 for parallel columns`, () => {
      expect(nsaEnergy(orthonormal, { ...target, orthogonality }).orthogonality).toBeLessThan(1e-15);
      expect(nsaEnergy(parallel, { ...target, orthogonality }).orthogonality).toBeCloseTo(1, 14);
    });
  }
  it('parallel columns of unequal norms: gram and meanCos2 are 1, offDiagonal 2·(2/5)²/(1/2) = 0.64', () => {
    const unequal: Matrix = { rows: 4, cols: 2, data: Float64Array.from([1, 2, 2, 4, 0.5, 1, 3, 6]) };
    expect(nsaEnergy(unequal, { ...target, orthogonality: 'gram' }).orthogonality).toBeCloseTo(1, 14);
    expect(nsaEnergy(unequal, { ...target, orthogonality: 'meanCos2' }).orthogonality).toBeCloseTo(1, 14);
    expect(nsaEnergy(unequal, { ...target, orthogonality: 'offDiagonal' }).orthogonality).toBeCloseTo(0.64, 14);
  });
  it('gram D̃ is 0 for orthogonal columns of equal norm only (YᵀY = cI)', () => {
    const scaled: Matrix = { rows: 4, cols: 2, data: orthonormal.data.map((v) => 3 * v) };
    expect(nsaEnergy(scaled, target).orthogonality).toBeLessThan(1e-15);
    // orthogonal columns of norms 1 and 2: G = diag(1, 4)/5, D̃ = ((1/5 − 1/2)² + (4/5 − 1/2)²)/(1/2) = 0.36
    const unequal: Matrix = { rows: 4, cols: 2, data: Float64Array.from([0.6, 0, 0.8, 0, 0, 2, 0, 0]) };
    expect(nsaEnergy(unequal, target).orthogonality).toBeCloseTo(0.36, 14);
  });
  it('target: F = 0 at X0 and 1 at Y = 0', () => {
    expect(nsaEnergy(orthonormal, { X0: orthonormal, w: 0 }).energy).toBe(0);
    const zero: Matrix = { rows: 4, cols: 2, data: new Float64Array(8) };
    expect(nsaEnergy(zero, { X0: orthonormal, w: 0 }).energy).toBe(1);
  });
  it('data: F = 0 at an orthonormal basis of a rank-k row space, 1 at V = 0', () => {
    // X = scores·Bᵀ with B the orthonormal 4×2 above: rank 2, row space span(B)
    const scores = testMatrix(6, 2, 11);
    const Xr = new Float64Array(6 * 4);
    for (let i = 0; i < 6; i++)
      for (let j = 0; j < 4; j++) Xr[i * 4 + j] = scores.data[i * 2]! * orthonormal.data[j * 2]! + scores.data[i * 2 + 1]! * orthonormal.data[j * 2 + 1]!;
    const Xm: Matrix = { rows: 6, cols: 4, data: Xr };
    expect(nsaEnergy(orthonormal, { mode: 'data', X: Xm }).fidelity).toBeLessThan(1e-15);
    expect(nsaEnergy({ rows: 4, cols: 2, data: new Float64Array(8) }, { mode: 'data', X: Xm }).fidelity).toBe(1);
  });
  it('signed: the overlap is 0 for disjoint lobes and 1 for equal lobes', () => {
    const Xm = testMatrix(5, 3, 12);
    const disjoint: Matrix = { rows: 3, cols: 2, data: Float64Array.from([1, 0, 0, 2, 0.5, 0]) };
    expect(nsaEnergy(disjoint, { mode: 'signed', X: Xm }).overlap).toBe(0);
    const equal: Matrix = { rows: 3, cols: 2, data: Float64Array.from([1, 1, 2, 2, 0.5, 0.5]) };
    expect(nsaEnergy(equal, { mode: 'signed', X: Xm }).overlap).toBeCloseTo(1, 15);
    // V = V⁺ − V⁻ = 0: the data fidelity of V = 0 is 1
    expect(nsaEnergy(equal, { mode: 'signed', X: Xm }).fidelity).toBe(1);
  });
  it('anchored: F = 0 inside the anchor (sign-blind), 1 orthogonal to it', () => {
    const A: Matrix = { rows: 4, cols: 1, data: Float64Array.from([1, 1, 0, 0]) };
    const inside: Matrix = { rows: 4, cols: 2, data: Float64Array.from([2, -1, 2, -1, 0, 0, 0, 0]) };
    expect(nsaEnergy(inside, { mode: 'anchored', X0: A, nonnegative: false }).fidelity).toBeLessThan(1e-15);
    const outside: Matrix = { rows: 4, cols: 2, data: Float64Array.from([1, 0, -1, 0, 0, 3, 0, 1]) };
    expect(nsaEnergy(outside, { mode: 'anchored', X0: A }).fidelity).toBeCloseTo(1, 15);
    const A2: Matrix = { rows: 4, cols: 2, data: Float64Array.from([1, 0, 1, 0, 0, 1, 0, 1]) };
    const flipped: Matrix = { rows: 4, cols: 2, data: Float64Array.from([-2, 0, -2, 0, 0, 3, 0, 3]) };
    expect(nsaEnergy(flipped, { mode: 'anchored', anchor: 'target', X0: A2 }).fidelity).toBeLessThan(1e-15);
    const crossed: Matrix = { rows: 4, cols: 2, data: Float64Array.from([0, 1, 0, 1, 1, 0, 1, 0]) };
    expect(nsaEnergy(crossed, { mode: 'anchored', anchor: 'target', X0: A2 }).fidelity).toBe(1);
  });
  it('the certificate of nsaEnergy is the gradient mapping ‖P(Y − ‖Y‖²∇E) − Y‖/‖Y‖', () => {
    const { Y, energy } = problems.target!;
    const e = nsaEnergy(Y, energy);
    let yy = 0;
    for (const v of Y.data) yy += v * v;
    let d2 = 0;
    for (let i = 0; i < Y.data.length; i++) d2 += (Math.max(Y.data[i]! - yy * e.gradient.data[i]!, 0) - Y.data[i]!) ** 2;
    expect(e.certificate).toBeCloseTo(Math.sqrt(d2 / yy), 14);
  });
});

// Problems for the solvers: the small ones above as starts.
function solverProblem(name: string): CertifiedProblem {
  const { Y, energy } = problems[name]!;
  const mode = (energy!.mode ?? 'target') as CertifiedMode;
  return { mode, Y0: Y, ...(energy!.X0 ? { X0: energy!.X0 } : {}), ...(energy!.X ? { X: energy!.X } : {}) };
}
const solverOptions = (name: string, o: Partial<CertifiedOptions>): CertifiedOptions =>
  options({ ...(name === 'anchored/target' ? { anchor: 'target' as const } : {}), ...(name === 'signed' ? { overlapPenalty: 0.3 } : {}), ...o });

function expectMonotone(r: CertifiedRun): void {
  const e = r.traces.energy;
  let rises = 0;
  for (let i = 1; i < e.length; i++) if (e[i]! > e[i - 1]!) rises++;
  // Expected: no accepted iterate has a higher energy than the one before (Armijo on every step).
  expect(rises).toBe(0);
  expect(e.length).toBe(r.iterations + 1);
}

describe('certified solvers: monotone, certified, KKT at the solution', () => {
  for (const name of Object.keys(problems)) {
    for (const solver of ['lbfgsb', 'spg'] as const) {
      it(`${solver} on ${name}`, () => {
        const problem = solverProblem(name);
        const o = solverOptions(name, { solver, w: 0.4 });
        const r = runCertifiedSync(problem, o);
        expectMonotone(r);
        expect(r.stopReason).toBe('gradMap');
        expect(r.certificate).toBeLessThanOrEqual(1e-6);
        expect(r.warnings).toEqual([]);
        // the reported certificate and energy are those of the returned point
        const e = nsaEnergy(r.Y, { ...problems[name]!.energy, w: 0.4 });
        expect(e.energy).toBe(r.energy);
        expect(Math.abs(e.certificate - r.certificate)).toBeLessThan(1e-12);
        expect(r.traces.certificate[r.traces.certificate.length - 1]).toBe(r.certificate);
        // KKT, scale-free (gradient in units of ‖Y‖/‖Y‖²): ∇E ≥ −tol where Y = 0, ∇E ≈ 0 where Y > tol·‖Y‖.
        // Each entry of the gradient mapping is at most the certificate, hence the bound 1e-6.
        let yy = 0;
        for (const v of r.Y.data) yy += v * v;
        const ny = Math.sqrt(yy);
        for (let i = 0; i < r.Y.data.length; i++) {
          const y = r.Y.data[i]!;
          const scaled = (yy * e.gradient.data[i]!) / ny;
          expect(y).toBeGreaterThanOrEqual(0);
          if (y === 0) expect(scaled).toBeGreaterThanOrEqual(-1e-6);
          else if (y > 1e-6 * ny) expect(Math.abs(scaled)).toBeLessThanOrEqual(1e-6);
        }
      });
    }
  }

  it('unconstrained (nonnegative false): both solvers certify the same minimum of the target energy', () => {
    const problem = solverProblem('target');
    const a = runCertifiedSync(problem, options({ nonnegative: false, solver: 'lbfgsb' }));
    const b = runCertifiedSync(problem, options({ nonnegative: false, solver: 'spg' }));
    expect([a.stopReason, b.stopReason]).toEqual(['gradMap', 'gradMap']);
    expect(a.Y.data.some((v) => v < 0)).toBe(true); // X0 has negative entries: the free minimum has too
    expect(Math.abs(a.energy - b.energy)).toBeLessThan(1e-10);
    expectMonotone(a);
    expectMonotone(b);
  });

  it('gradMap is reported only when the certificate is at most the tolerance', () => {
    for (const name of Object.keys(problems)) {
      for (const solver of ['lbfgsb', 'spg'] as const) {
        for (const [tolerance, maxIterations] of [
          [1e-3, 1000],
          [1e-8, 1000],
          [1e-6, 5],
        ] as const) {
          const r = runCertifiedSync(solverProblem(name), solverOptions(name, { solver, tolerance, maxIterations }));
          if (r.stopReason === 'gradMap') expect(r.certificate).toBeLessThanOrEqual(tolerance);
          else expect(r.certificate).toBeGreaterThan(tolerance);
          if (r.stopReason !== 'gradMap' && r.certificate > 1e3 * tolerance) expect(r.warnings.join()).toMatch(/not stationary/);
        }
      }
    }
  });
});

describe('certified solvers: a start that cannot move is reported honestly', () => {
  for (const solver of ['lbfgsb', 'spg'] as const) {
    it(`${solver}: maxIterations 0 returns P(Y0) as maxIterations with a warning`, () => {
      const problem = solverProblem('target');
      const r = runCertifiedSync({ ...problem, Y0: testMatrix(p, k, 21) }, options({ solver, maxIterations: 0 }));
      expect(r.stopReason).toBe('maxIterations');
      expect(r.iterations).toBe(0);
      expect(r.evaluations).toBe(1);
      expect(Array.from(r.Y.data)).toEqual(Array.from(testMatrix(p, k, 21).data, (v) => Math.max(v, 0)));
      expect(r.warnings.join()).toMatch(/not stationary/);
    });
    it(`${solver}: an already certified point stops at once as gradMap`, () => {
      const problem = solverProblem('data');
      const first = runCertifiedSync(problem, options({ solver }));
      const again = runCertifiedSync({ ...problem, Y0: first.Y }, options({ solver }));
      expect([again.stopReason, again.iterations, again.evaluations]).toEqual(['gradMap', 0, 1]);
      expect(again.energy).toBe(first.energy);
    });
    it(`${solver}: Y0 = 0 (no gradient of a scale-free energy) is stalled, never a success`, () => {
      const r = runCertifiedSync({ mode: 'target', Y0: { rows: p, cols: k, data: new Float64Array(p * k) }, X0: testMatrix(p, k, 2) }, options({ solver }));
      expect(r.stopReason).toBe('stalled');
      expect(r.iterations).toBe(0);
      expect(r.warnings.join()).toMatch(/Y = 0/);
    });
    it(`${solver}: a start whose whole projection is 0 is stalled too`, () => {
      const neg: Matrix = { rows: p, cols: k, data: positive(p, k, 3).data.map((v) => -v) };
      const r = runCertifiedSync({ mode: 'target', Y0: neg, X0: testMatrix(p, k, 2) }, options({ solver }));
      expect(r.stopReason).toBe('stalled');
    });
  }
  it('a start whose energy overflows is returned as nonFinite with a warning', () => {
    for (const solver of ['lbfgsb', 'spg'] as const) {
      const huge: Matrix = { rows: p, cols: k, data: positive(p, k, 3).data.map((v) => v * 1e200) };
      const r = runCertifiedSync({ mode: 'target', Y0: huge, X0: testMatrix(p, k, 2) }, options({ solver }));
      expect([r.stopReason, r.iterations, Number.isFinite(r.energy)]).toEqual(['nonFinite', 0, false]); // ‖Y0‖² overflows
      expect(Array.from(r.Y.data)).toEqual(Array.from(huge.data));
      expect(r.warnings.join()).toMatch(/not finite/);
    }
  });
  it('a tolerance of 0 can never be met: the run ends as plateau or lineSearch with its true certificate, never gradMap', () => {
    for (const solver of ['lbfgsb', 'spg'] as const) {
      const r = runCertifiedSync(solverProblem('target'), options({ solver, tolerance: 0 }));
      expect(['plateau', 'lineSearch']).toContain(r.stopReason);
      expect(r.certificate).toBeGreaterThan(0);
      expect(r.certificate).toBeLessThan(1e-6); // it did converge: within 1e3·tolerance is not claimed, the number is
      expectMonotone(r);
    }
  });
});

// ---- real data: data/leukemia_all (128 × 1000), centred ----------------------------------------

const leukemia = centred(readNpyMatrix(dataFile('leukemia_all/ALL_expr_top1000var.npy')));

describe('L-BFGS-B against SPG on the leukemia data (data mode, PCA start)', () => {
  for (const kk of [3, 5]) {
    it(`k = ${kk}: the same certified energy, in fewer iterations`, () => {
      const start = pca(leukemia, kk, { center: false }).loadings;
      const problem: CertifiedProblem = { mode: 'data', Y0: start, X: leukemia };
      const a = runCertifiedSync(problem, options({ solver: 'lbfgsb' }));
      const b = runCertifiedSync(problem, options({ solver: 'spg' }));
      expect([a.stopReason, b.stopReason]).toEqual(['gradMap', 'gradMap']);
      // Both certified stationary (certificate ≤ 1e-6) from the same start: the same local minimum to
      // 1e-8 relative (the energy's error at a point with certificate c is O(c²) ≈ 1e-12).
      expect(Math.abs(a.energy - b.energy) / b.energy).toBeLessThan(1e-8);
      expect(a.iterations).toBeLessThan(b.iterations);
      expectMonotone(a);
      expectMonotone(b);
    });
  }
});

describe('w acts monotonically (target mode, PCA start, leukemia)', () => {
  const start = pca(leukemia, 4, { center: false }).loadings;
  const grid = [0.1, 0.3, 0.5, 0.7, 0.9];
  const runs = grid.map((w) => runCertifiedSync({ mode: 'target', Y0: start, X0: start }, options({ w })));
  const sparsity = (m: Matrix) => m.data.filter((v) => v === 0).length / m.data.length;
  it('every run is certified', () => {
    expect(runs.map((r) => r.stopReason)).toEqual(grid.map(() => 'gradMap'));
  });
  it('a larger w: lower defect, higher fidelity loss, sparser', () => {
    for (let i = 1; i < grid.length; i++) {
      // For minimisers of (1 − w)F + wO, F is non-decreasing and O non-increasing in w (add the two
      // optimality inequalities); the runs here are certified local minimisers from one start.
      expect(runs[i]!.orthogonality).toBeLessThanOrEqual(runs[i - 1]!.orthogonality);
      expect(runs[i]!.fidelity).toBeGreaterThanOrEqual(runs[i - 1]!.fidelity);
      expect(sparsity(runs[i]!.Y)).toBeGreaterThanOrEqual(sparsity(runs[i - 1]!.Y));
    }
  });
});

describe("signed mode on the leukemia data: the overlap penalty's default 0.1", () => {
  // Lobes that overlap everywhere: Z⁺ = max(V, 0) + noise, Z⁻ = 0.3·max(−V, 0) + noise from PCA loadings V.
  const k = 3;
  const V = pca(leukemia, k, { center: false }).loadings;
  const rows = V.rows;
  const Z = new Float64Array(rows * 2 * k);
  for (let i = 0; i < rows; i++)
    for (let j = 0; j < k; j++) {
      const v = V.data[i * k + j]!;
      Z[i * 2 * k + j] = Math.abs(Math.sin(17 * i + 3 * j)) * 0.05 + Math.max(v, 0);
      Z[i * 2 * k + k + j] = Math.abs(Math.cos(11 * i + 5 * j)) * 0.05 + Math.max(-v, 0) * 0.3;
    }
  const problem: CertifiedProblem = { mode: 'signed', Y0: { rows, cols: 2 * k, data: Z }, X: leukemia };
  it('lowers the lobe overlap at about the fidelity reached without it', () => {
    const free = runCertifiedSync(problem, options({ overlapPenalty: 0 }));
    const penalised = runCertifiedSync(problem, options());
    expect([free.stopReason, penalised.stopReason]).toEqual(['gradMap', 'gradMap']);
    // O on the 2k lobes already pushes them apart (measured overlap 0.126 without the penalty); the
    // penalty's default takes it to 0.019 (P = 0 iff no row has both lobes of a column).
    expect(free.overlap).toBeGreaterThan(0.05);
    expect(penalised.overlap).toBeLessThan(free.overlap / 5);
    // about the same quality of V = V⁺ − V⁻ (measured F 0.0225 ± 0.008 across the two runs)
    expect(Math.abs(penalised.fidelity - free.fidelity) / free.fidelity).toBeLessThan(0.5);
    expectMonotone(penalised);
  });
});

// ---- async -----------------------------------------------------------------------------------

describe('runCertifiedAsync', () => {
  const big: CertifiedProblem = { mode: 'data', Y0: pca(leukemia, 5, { center: false }).loadings, X: leukemia };
  it('resolves with the result of the sync form', async () => {
    const o = options({ solver: 'lbfgsb' });
    const a = await runCertifiedAsync(big, o, {});
    const s = runCertifiedSync(big, o);
    expect(a.energy).toBe(s.energy);
    expect(a.iterations).toBe(s.iterations);
    expect(Array.from(a.Y.data)).toEqual(Array.from(s.Y.data));
  });
  it('reports progress (iteration, maxIterations, energy, certificate)', async () => {
    const seen: CertifiedProgress[] = [];
    const r = await runCertifiedAsync(big, options({ solver: 'spg', tolerance: 0, maxIterations: 300 }), {
      onProgress: (x) => seen.push(x),
      progressIntervalMs: 0,
    });
    expect(seen.length).toBeGreaterThan(0);
    for (const x of seen) {
      expect(x.maxIterations).toBe(300);
      expect(x.iteration).toBeGreaterThan(0);
      expect(x.iteration).toBeLessThanOrEqual(r.iterations);
      expect(Number.isFinite(x.energy) && Number.isFinite(x.certificate)).toBe(true);
    }
    // energies of later records are never higher (monotone solver)
    for (let i = 1; i < seen.length; i++) expect(seen[i]!.energy).toBeLessThanOrEqual(seen[i - 1]!.energy);
  });
  it('cancels: AbortError once the signal aborts', async () => {
    const ac = new AbortController();
    const job = runCertifiedAsync(big, options({ solver: 'spg', tolerance: 0, plateauTolerance: 0, maxIterations: 1e8 }), {
      signal: ac.signal,
      onProgress: () => ac.abort(),
    });
    await expect(job).rejects.toBeInstanceOf(AbortError);
  });
});

// ---- bad inputs ------------------------------------------------------------------------------

describe('nsaEnergy and the certified solve refuse bad inputs by class and message', () => {
  const Y = positive(4, 2, 1);
  const X0 = testMatrix(4, 2, 2);
  const cases: [string, () => unknown, ErrorConstructor, RegExp][] = [
    ['Y not a Matrix', () => nsaEnergy(42 as never, { X0 }), TypeError, /^Expected a Matrix \{rows, cols, data: Float64Array\} for Y but received 42$/],
    ['unknown option', () => nsaEnergy(Y, { X0, orthogonalty: 'gram' } as never), TypeError, /Unknown option 'orthogonalty' for nsaEnergy\(\).*did you mean orthogonality/],
    ['bad mode', () => nsaEnergy(Y, { mode: 'dat' as never, X0 }), RangeError, /for options\.mode of nsaEnergy\(\) but received the string "dat".*'data'/],
    ['w out of range', () => nsaEnergy(Y, { X0, w: 1.5 }), RangeError, /^Expected a finite number in \[0, 1\] for options\.w of nsaEnergy\(\) but received 1\.5$/],
    ['missing X0', () => nsaEnergy(Y, {}), TypeError, /^Expected a Matrix for X0 of nsaEnergy\(\) in 'target' mode but received undefined$/],
    ['X0 of another shape', () => nsaEnergy(Y, { X0: testMatrix(4, 3, 1) }), RangeError, /^Expected X0 of nsaEnergy\(\) of the shape of Y0 \(4×2\) but received 4×3$/],
    ['zero X0', () => nsaEnergy(Y, { X0: { rows: 4, cols: 2, data: new Float64Array(8) } }), RangeError, /nonzero X0/],
    ['X in target mode', () => nsaEnergy(Y, { X0, X: testMatrix(3, 4, 1) }), TypeError, /^Expected no X of nsaEnergy\(\) in 'target' mode/],
    ['missing X in data mode', () => nsaEnergy(Y, { mode: 'data' }), TypeError, /^Expected a Matrix for X of nsaEnergy\(\) in 'data' mode/],
    ['X with wrong columns', () => nsaEnergy(Y, { mode: 'data', X: testMatrix(5, 3, 1) }), RangeError, /^Expected X of nsaEnergy\(\) with 4 columns/],
    ['odd columns in signed mode', () => nsaEnergy(positive(4, 3, 1), { mode: 'signed', X: testMatrix(5, 4, 1) }), RangeError, /even number of columns/],
    ['signed without nonnegativity', () => nsaEnergy(Y, { mode: 'signed', X: testMatrix(5, 4, 1), nonnegative: false }), RangeError, /nonnegative true in 'signed' mode/],
    ['anchor target with other columns', () => nsaEnergy(Y, { mode: 'anchored', anchor: 'target', X0: testMatrix(4, 1, 1) }), RangeError, /with 2 columns \(as Y0\) for anchor 'target'/],
    ['zero anchor column', () => nsaEnergy(Y, { mode: 'anchored', anchor: 'target', X0: { rows: 4, cols: 2, data: Float64Array.from([1, 0, 1, 0, 1, 0, 1, 0]) } }), RangeError, /column 1 is zero/],
    ['NaN in Y', () => nsaEnergy({ rows: 4, cols: 2, data: Float64Array.from([1, NaN, 1, 1, 1, 1, 1, 1]) }, { X0 }), RangeError, /Y/],
    ['negative overlapPenalty', () => nsaEnergy(Y, { X0, overlapPenalty: -1 }), RangeError, /options\.overlapPenalty of nsaEnergy\(\)/],
  ];
  for (const [what, call, cls, message] of cases) {
    it(what, () => {
      const e = thrown(call);
      expect(e).toBeInstanceOf(cls);
      expect(e.message).toMatch(message);
    });
  }
  it('the solver options are validated by certifiedOptionSpecs', () => {
    const e = thrown(() => options({ memory: 0 }));
    expect(e).toBeInstanceOf(RangeError);
    expect(e.message).toBe('Expected an integer in [1, 100] for options.memory of test but received 0');
    const s = thrown(() => options({ solver: 'lbfgs' as never }));
    expect(s).toBeInstanceOf(RangeError);
    expect(s.message).toMatch(/one of 'lbfgsb', 'spg' for options\.solver of test but received the string "lbfgs"/);
  });
});
