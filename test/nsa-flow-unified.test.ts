// One implementation of each NSA-Flow formula, one option spec: the loop's 'energy' weighting and the
// certified solvers' target mode are the same native code (bit for bit), the reference's defect is the
// shared core's (no cancellation near orthogonality), certified runs report their terms as progress,
// the settings of every run repeat it, and the CLI's `flow` reaches the certified solvers.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import {
  energy,
  energyBatch,
  invariantOrthogonalityDefect,
  invariantOrthogonalityDefectBatch,
  nsaEnergy,
  nsaFlow,
  nsaFlowSync,
  pca,
  setBlasThreads,
  type Matrix,
  type NsaFlowOptions,
  type NsaFlowProgress,
  type NsaFlowResult,
} from '../lib/index.js';
import { energyGradient } from '../lib/nsa-flow/energy.js';
import { native } from '../lib/native.js';
import { readMatrix, readNpy, readNpyMatrix } from '../lib/io/index.js';
import { testMatrix } from './helpers/flow-fixtures.js';
import { runMain, tempDir } from './helpers/cli-run.js';
import { dataFile } from './helpers/shared.js';

const functionals = ['gram', 'offDiagonal', 'meanCos2'] as const;

describe("one target-mode energy: energy(…, {weighting: 'energy'}) is nsaEnergy(Y, {mode: 'target'})", () => {
  const Y = testMatrix(40, 4, 11, 0.2);
  const X0 = testMatrix(40, 4, 12, 0.5);

  it('values and terms agree bit for bit for every functional and w', () => {
    for (const f of functionals) {
      for (const w of [0, 0.3, 0.9, 1]) {
        const a = energy(Y, X0, { weighting: 'energy', w, orthogonality: f });
        const b = nsaEnergy(Y, { mode: 'target', X0, w, orthogonality: f });
        expect(a.fidelity).toBe(b.fidelity);
        expect(a.orthogonality).toBe(b.orthogonality);
        expect(a.total).toBe(b.energy);
      }
    }
  });

  it('the gradient of the loop (identity map: retraction none, no non-negativity map) is the certified one bit for bit', () => {
    for (const f of functionals) {
      const g = energyGradient(Y, X0, { weighting: 'energy', w: 0.4, orthogonality: f, retraction: 'none', nonnegativity: 'none' });
      const c = nsaEnergy(Y, { mode: 'target', X0, w: 0.4, orthogonality: f });
      expect(g.total).toBe(c.energy);
      expect(Array.from(g.gradient.data)).toEqual(Array.from(c.gradient.data));
    }
  });

  it('energyBatch: each element is nsaEnergy of that element (its terms averaged)', () => {
    const Ys = [testMatrix(9, 3, 21, 0.3), testMatrix(9, 3, 22, 0.3)];
    const Xs = [testMatrix(9, 3, 23, 0.6), testMatrix(9, 3, 24, 0.6)];
    const stack = (ms: Matrix[]) => ({ shape: [2, 9, 3], data: Float64Array.from([...ms[0]!.data, ...ms[1]!.data]) });
    for (const f of functionals) {
      const b = energyBatch(stack(Ys), stack(Xs), { w: 0.6, orthogonality: f });
      const each = [0, 1].map((i) => nsaEnergy(Ys[i]!, { X0: Xs[i]!, w: 0.6, orthogonality: f }));
      expect(b.fidelity).toBe((each[0]!.fidelity + each[1]!.fidelity) / 2);
      expect(b.orthogonality).toBe((each[0]!.orthogonality + each[1]!.orthogonality) / 2);
    }
  });
});

describe("the reference's scale-invariant orthogonality is the core's defect", () => {
  // Q with orthonormal columns plus noise of 1e-9: the defect is ~1e-18, which the cancelling form
  // ‖S‖² − Σ S_ii² loses entirely (it rounds to 0 or a negative number).
  const near = (seed: number): Matrix => {
    const Q = pca(readNpyMatrix(dataFile('sklearn_small/wine_X.npy')), 3).loadings; // 13×3, orthonormal columns
    const noise = testMatrix(Q.rows, Q.cols, seed);
    return { ...Q, data: Q.data.map((v, i) => v + 1e-9 * noise.data[i]!) };
  };

  it('energy (one matrix) equals invariantOrthogonalityDefect to rounding, also at 1e-18', () => {
    for (const Y of [testMatrix(12, 3, 3, 0.1), near(5)]) {
      const e = energy(Y, Y, { weighting: 'reference', w: 0.5, orthogonalityType: 'scaleInvariant', fidEta: 1, cOrth: 1 });
      const d = invariantOrthogonalityDefect(Y);
      expect(d).toBeGreaterThan(0);
      // ‖Y‖² summed in another order by the two: relative rounding only
      expect(Math.abs(e.orthogonality - d) / d).toBeLessThan(1e-14);
    }
  });

  it('energyBatch (the reference batch floor) equals invariantOrthogonalityDefectBatch to rounding, also at 1e-18', () => {
    const a = near(6);
    const b = near(7);
    const Y = { shape: [2, a.rows, a.cols], data: Float64Array.from([...a.data, ...b.data]) };
    const e = energyBatch(Y, Y, { weighting: 'reference', w: 0.5, orthogonalityType: 'scaleInvariant', fidEta: 1, cOrth: 1 });
    const d = invariantOrthogonalityDefectBatch(Y);
    expect(d).toBeGreaterThan(0);
    expect(d).toBeLessThan(1e-15);
    expect(Math.abs(e.orthogonality - d) / d).toBeLessThan(1e-14);
  });
});

describe('nsaFlow with the certified solvers: progress terms and settings that repeat the run', () => {
  const { loadings: Y0 } = pca(readNpyMatrix(dataFile('tissue/tissue_expr.npy')), 3);
  const X0: Matrix = { ...Y0, data: Y0.data.map((v) => Math.max(v, 0)) };
  let threads = 0;
  beforeAll(() => {
    threads = setBlasThreads(1);
  });
  afterAll(() => {
    setBlasThreads(threads);
  });

  it("progress of 'spg' carries finite fidelity and orthogonality whose weighted sum is the energy", async () => {
    const progress: NsaFlowProgress[] = [];
    await nsaFlow(Y0, { X0, optimizer: 'spg', w: 0.3, onProgress: (p) => progress.push(p), progressIntervalMs: 0 });
    expect(progress.length).toBeGreaterThan(0);
    for (const p of progress) {
      expect(Number.isFinite(p.fidelity)).toBe(true);
      expect(Number.isFinite(p.orthogonality)).toBe(true);
      expect(Math.abs(p.total - (0.7 * p.fidelity + 0.3 * p.orthogonality))).toBeLessThanOrEqual(1e-15 * Math.abs(p.total));
    }
  });

  /** The settings as options: JSON (as a CLI stores them), less what the run derived (not options). */
  function asOptions(r: NsaFlowResult): NsaFlowOptions {
    const { fidEta: _f, cOrth: _c, scale: _s, ...settings } = JSON.parse(JSON.stringify(r.settings)) as NsaFlowResult['settings'];
    return settings as NsaFlowOptions;
  }

  const runs: Array<[string, NsaFlowOptions]> = [
    ['spg', { optimizer: 'spg', w: 0.3, orthogonality: 'meanCos2' }],
    ['lbfgsb', { optimizer: 'lbfgsb', w: 0.7, memory: 4, maxIterations: 40 }],
    ['adam (retraction loop, estimated rate)', { optimizer: 'adam', maxIterations: 30, seed: 3 }],
    ['asgd (reference weighting)', { weighting: 'reference', maxIterations: 20, seed: 9 }],
  ];
  for (const [name, options] of runs) {
    it(`${name}: nsaFlowSync(Y0, {...settings, X0}) repeats the run bit for bit`, () => {
      const a = nsaFlowSync(Y0, { X0, ...options });
      const again = asOptions(a);
      // null marks what does not apply to this kind of run
      expect(Object.values(again)).toContain(null);
      const b = nsaFlowSync(Y0, { ...again, X0 });
      expect(Array.from(b.Y.data)).toEqual(Array.from(a.Y.data));
      expect(b.iterations).toBe(a.iterations);
      expect(b.stopReason).toBe(a.stopReason);
      expect(b.settings.optimizer).toBe(a.settings.optimizer);
    });
  }

  it("the certified solvers' target is max(X0, 0) entry by entry, −0 and negatives to +0", () => {
    const data = Float64Array.from({ length: 60 }, (_, i) => (i % 5 === 0 ? -0 : i % 3 === 0 ? -(i + 0.25) : i * 1.5e-3));
    const target = nsaFlowSync({ rows: 20, cols: 3, data: data.map((v) => v + 0.5) }, { X0: { rows: 20, cols: 3, data }, maxIterations: 0 }).target;
    expect(Array.from(target.data).every((v, i) => Object.is(v, Math.max(data[i]!, 0)))).toBe(true);
    expect(Object.is(target.data[5], 0)).toBe(true);
  });

  it('the raw nonNegativePart is Math.max(x, 0) entry by entry (NaN kept), on the team, and names its argument', () => {
    const values = [3, -0, -2, 1.7976931348623157e308, -1.7e308, 5e-324, -5e-324, NaN, Infinity, -Infinity];
    // 10⁶ entries pass the team's threshold (2·10⁵): both threads write their halves
    const data = Float64Array.from({ length: 1_000_003 }, (_, i) => values[i % values.length]! * (1 + (i % 7)));
    const out = native().nonNegativePart(data);
    expect(out.length).toBe(data.length);
    expect(out.every((v, i) => Object.is(v, Math.max(data[i]!, 0)))).toBe(true);
    expect(() => native().nonNegativePart([1, 2] as never)).toThrow(/Expected a Float64Array for data/);
  });

  it('null is "does not apply" only: a null for an option without that meaning is still refused', () => {
    expect(() => nsaFlowSync(Y0, { X0, w: null as unknown as number })).toThrow(TypeError);
  });
});

describe("the CLI's flow reaches the certified solvers through the one spec", () => {
  const wine = dataFile('sklearn_small/wine_X.npy'); // 178 × 13

  it('--optimizer spg --weighting energy --orthogonality offDiagonal --certificate-tolerance 1e-8 equals the API bit for bit', async () => {
    const out = join(tempDir('cli-flow-spg'), 'wine');
    const r = await runMain(['flow', wine, '--optimizer', 'spg', '--weighting', 'energy', '--orthogonality', 'offDiagonal', '--w', '0.4', '--certificate-tolerance', '1e-8', '--out', out]);
    expect(r.code, r.stderr).toBe(0);
    const json = JSON.parse(readFileSync(join(out, 'result.json'), 'utf8'));
    const api = nsaFlowSync(readMatrix(wine) as Matrix, { optimizer: 'spg', weighting: 'energy', orthogonality: 'offDiagonal', w: 0.4, certificateTolerance: 1e-8 });
    expect(Array.from(readNpy(join(out, 'Y.npy')).data)).toEqual(Array.from(api.Y.data));
    expect(json.settings).toMatchObject({ optimizer: 'spg', orthogonality: 'offDiagonal', certificateTolerance: 1e-8, retraction: null });
    expect(json.diagnostics.stopReason).toBe(api.stopReason);
  });

  it("--optimizer lbfgsb --memory 3 runs; --memory with a loop optimizer is refused (exit 2, names the option)", async () => {
    const ok = await runMain(['flow', wine, '--optimizer', 'lbfgsb', '--memory', '3', '--max-iterations', '30', '--out', join(tempDir('cli-flow-lbfgsb'), 'wine')]);
    expect(ok.code, ok.stderr).toBe(0);
    const bad = await runMain(['flow', wine, '--optimizer', 'adam', '--memory', '3']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/memory/);
  });
});
