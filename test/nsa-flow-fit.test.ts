// nsaFlowFit: NSA-Flow fitted on data. Validation (class and message, before any native work), the
// generator behind init 'random', the definitions of the inits, centring and transform, mode 'auto',
// consolidation (disjoint supports), the certificate, the async form, and the CLI's `fit`.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

import { describe, expect, it } from 'vitest';

import { nmfSync } from '../lib/factorization/nmf.js';
import { readMatrix, readNpy, writeNpy } from '../lib/io/index.js';
import type { Matrix } from '../lib/matrix.js';
import { SeededUniform } from '../lib/nsa-flow/fit.js';
import { nsaFlowFit, nsaFlowFitSync, type NsaFlowFitResult } from '../lib/nsa-flow/index.js';
import { invariantOrthogonalityDefect } from '../lib/ortho.js';
import { pca } from '../lib/pca.js';
import { AbortError } from '../lib/errors.js';
import { runMain, tempDir } from './helpers/cli-run.js';
import { dataFile } from './helpers/shared.js';
import { thrown } from './helpers/thrown.js';

const all = readMatrix(dataFile('leukemia_all/ALL_expr_top1000var.npy')) as Matrix; // 128 × 1000, log expression > 0
const tissue = readMatrix(dataFile('tissue/tissue_expr.npy')) as Matrix; // 189 × 500, log expression > 0

/** X with each column's mean removed: real data with both signs. */
function centred(X: Matrix): Matrix {
  const { rows: n, cols: p } = X;
  const mean = new Float64Array(p);
  for (let i = 0; i < n; i++) for (let j = 0; j < p; j++) mean[j]! += X.data[i * p + j]! / n;
  return { rows: n, cols: p, data: X.data.map((v, i) => v - mean[i % p]!) };
}

/** The first `cols` columns of X (small real problems for the fast checks). */
function firstColumns(X: Matrix, cols: number): Matrix {
  const data = new Float64Array(X.rows * cols);
  for (let i = 0; i < X.rows; i++) for (let j = 0; j < cols; j++) data[i * cols + j] = X.data[i * X.cols + j]!;
  return { rows: X.rows, cols, data };
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

function maxAbs(a: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]!));
  return m;
}

const small = firstColumns(all, 120); // 128 × 120

/**
 * The orthogonality functionals of native/kernels/orthogonality.hpp, ported here (values only) to check
 * the solver's reported terms independently: functions of S = VᵀV, 0 at their ideal.
 */
function orthogonalityOf(f: 'gram' | 'offDiagonal' | 'meanCos2', V: Matrix): number {
  const { rows: p, cols: k } = V;
  if (k < 2) return 0;
  const S = new Float64Array(k * k);
  for (let j = 0; j < p; j++) for (let a = 0; a < k; a++) for (let b = 0; b < k; b++) S[a * k + b]! += V.data[j * k + a]! * V.data[j * k + b]!;
  let t = 0;
  for (let i = 0; i < k; i++) t += S[i * k + i]!;
  let sum = 0;
  for (let i = 0; i < k; i++) {
    for (let j = 0; j < k; j++) {
      if (f === 'meanCos2') {
        if (i !== j) sum += S[i * k + j]! ** 2 / (S[i * k + i]! * S[j * k + j]!);
        continue;
      }
      if (f === 'offDiagonal' && i === j) continue;
      sum += (S[i * k + j]! / t - (f === 'gram' && i === j ? 1 / k : 0)) ** 2;
    }
  }
  return f === 'meanCos2' ? sum / (k * (k - 1)) : sum / (1 - 1 / k);
}

/** The lobes [V⁺ V⁻] as one p × 2k matrix (signed mode's orthogonality is measured on them). */
function sideBySide(a: Matrix, b: Matrix): Matrix {
  const p = a.rows, k = a.cols;
  const data = new Float64Array(p * 2 * k);
  for (let i = 0; i < p; i++) {
    data.set(a.data.subarray(i * k, (i + 1) * k), i * 2 * k);
    data.set(b.data.subarray(i * k, (i + 1) * k), i * 2 * k + k);
  }
  return { rows: p, cols: 2 * k, data };
}

describe('nsaFlowFit: bad inputs (class and message, before native work)', () => {
  it('X, k and the options', () => {
    let e = thrown(() => nsaFlowFitSync([[1, 2]] as unknown as Matrix, 1));
    expect(e).toBeInstanceOf(TypeError);
    expect(e.message).toBe('Expected a Matrix {rows, cols, data: Float64Array} for X but received an array of length 1');
    const nan = { rows: 2, cols: 2, data: Float64Array.of(1, NaN, 3, 4) };
    e = thrown(() => nsaFlowFitSync(nan, 1));
    expect(e).toBeInstanceOf(RangeError);
    expect(e.message).toBe('Expected finite values in X but received NaN at [0, 1]');
    e = thrown(() => nsaFlowFitSync(small, 0));
    expect(e).toBeInstanceOf(RangeError);
    expect(e.message).toBe('Expected an integer in [1, 120] (min(rows, cols) of X) for k but received 0');
    e = thrown(() => nsaFlowFitSync(small, 121));
    expect(e).toBeInstanceOf(RangeError);
    e = thrown(() => nsaFlowFitSync(small, '3' as unknown as number));
    expect(e).toBeInstanceOf(TypeError);
    expect(e.message).toBe('Expected an integer in [1, 120] (min(rows, cols) of X) for k but received the string "3"');
    e = thrown(() => nsaFlowFitSync(small, 3, { maxIter: 10 } as never));
    expect(e).toBeInstanceOf(TypeError);
    expect(e.message).toMatch(/^Unknown option 'maxIter' for nsaFlowFitSync\(\); valid options are: w, mode, init, .* \(did you mean maxIterations\?\)$/);
    e = thrown(() => nsaFlowFitSync(small, 3, { mode: 'sign' as never }));
    expect(e).toBeInstanceOf(RangeError);
    expect(e.message).toBe("Expected one of 'auto', 'data', 'signed', 'anchored' for options.mode of nsaFlowFitSync() but received the string \"sign\" (did you mean 'signed'?)");
    e = thrown(() => nsaFlowFitSync(small, 3, { w: 1.5 }));
    expect(e).toBeInstanceOf(RangeError);
    expect(e.message).toBe('Expected a finite number in [0, 1] for options.w of nsaFlowFitSync() but received 1.5');
    e = thrown(() => nsaFlowFitSync(small, 3, { init: 'clump' as never }));
    expect(e).toBeInstanceOf(RangeError);
    expect(e.message).toBe("Expected one of 'clamp', 'relax', 'nmf', 'random' or a Matrix p×k for options.init of nsaFlowFitSync() but received the string \"clump\" (did you mean 'clamp'?)");
    e = thrown(() => nsaFlowFitSync(small, 3, { init: 3 as never }));
    expect(e).toBeInstanceOf(TypeError);
  });

  it('data the fit is undefined for: no variance, one centred row', () => {
    const constant = { rows: 3, cols: 2, data: Float64Array.of(1, 2, 1, 2, 1, 2) };
    let e = thrown(() => nsaFlowFitSync(constant, 1));
    expect(e).toBeInstanceOf(RangeError);
    expect(e.message).toBe('Expected X with some variance after centring for nsaFlowFitSync() but received rows that are all equal');
    e = thrown(() => nsaFlowFitSync({ rows: 1, cols: 3, data: Float64Array.of(1, 2, 3) }, 1));
    expect(e).toBeInstanceOf(RangeError);
    expect(e.message).toMatch(/^Expected at least 2 rows in X when options.center of nsaFlowFitSync\(\) is true/);
  });

  it('init and anchor: shapes, signs, and the mode they apply to', () => {
    const negative = centred(small);
    let e = thrown(() => nsaFlowFitSync(negative, 3, { init: 'nmf' }));
    expect(e).toBeInstanceOf(RangeError);
    expect(e.message).toMatch(/^Expected non-negative X for options.init 'nmf' of nsaFlowFitSync\(\) \(NMF factors X as given, before centring\) but received -[\d.e-]+ at \[\d+, \d+\]$/);
    e = thrown(() => nsaFlowFitSync(small, 3, { init: { rows: 120, cols: 2, data: new Float64Array(240).fill(1) } }));
    expect(e).toBeInstanceOf(RangeError);
    expect(e.message).toBe('Expected a 120×3 Matrix (p × k) for options.init of nsaFlowFitSync() but received 120×2');
    const signedStart = { rows: 120, cols: 3, data: new Float64Array(360).fill(1) };
    signedStart.data[4] = -1;
    e = thrown(() => nsaFlowFitSync(small, 3, { mode: 'data', init: signedStart }));
    expect(e).toBeInstanceOf(RangeError);
    expect(e.message).toBe("Expected non-negative values in options.init of nsaFlowFitSync() (mode 'data' keeps V ≥ 0) but received -1 at [1, 1]");
    const anchor = { rows: 120, cols: 2, data: new Float64Array(240).fill(1) };
    e = thrown(() => nsaFlowFitSync(small, 3, { mode: 'data', anchor }));
    expect(e).toBeInstanceOf(RangeError);
    expect(e.message).toBe("Expected no options.anchor matrix for nsaFlowFitSync() in mode 'data' (an anchor is used by mode 'anchored' only) but received 120×2");
    e = thrown(() => nsaFlowFitSync(small, 3, { mode: 'anchored', anchor: { rows: 7, cols: 2, data: new Float64Array(14).fill(1) } }));
    expect(e).toBeInstanceOf(RangeError);
    expect(e.message).toBe('Expected 120 rows (one per column of X) in options.anchor of nsaFlowFitSync() but received 7×2');
    e = thrown(() => nsaFlowFitSync(small, 3, { mode: 'anchored', anchor, anchorFidelity: 'target' }));
    expect(e).toBeInstanceOf(RangeError);
    expect(e.message).toBe("Expected 120×3 (one target column per component) for options.anchor of nsaFlowFitSync() with anchorFidelity 'target' but received 120×2");
    const zeroColumn = { rows: 120, cols: 3, data: new Float64Array(360).fill(1) };
    for (let j = 0; j < 120; j++) zeroColumn.data[j * 3 + 2] = 0;
    e = thrown(() => nsaFlowFitSync(small, 3, { mode: 'anchored', anchor: zeroColumn, anchorFidelity: 'target' }));
    expect(e).toBeInstanceOf(RangeError);
    expect(e.message).toBe("Expected non-zero columns in options.anchor of nsaFlowFitSync() with anchorFidelity 'target' (each is a column's target direction) but column 2 is zero");
    e = thrown(() => nsaFlowFitSync(small, 3, { mode: 'anchored', anchor: { rows: 120, cols: 2, data: new Float64Array(240) } }));
    expect(e).toBeInstanceOf(RangeError);
    expect(e.message).toBe('Expected a non-zero options.anchor for nsaFlowFitSync() but received a matrix whose columns are all 0');
    e = thrown(() => nsaFlowFitSync(small, 3, { mode: 'anchored', anchor: 'pcs' as never }));
    expect(e).toBeInstanceOf(RangeError);
    expect(e.message).toBe("Expected 'pca' or a Matrix p×m for options.anchor of nsaFlowFitSync() but received the string \"pcs\"");
  });

  it('the async form rejects with the same errors (it never throws)', async () => {
    const p = nsaFlowFit(small, 0);
    await expect(p).rejects.toBeInstanceOf(RangeError);
    await expect(nsaFlowFit(small, 2, { w: -1 })).rejects.toThrow('Expected a finite number in [0, 1] for options.w of nsaFlowFit() but received -1');
    await expect(nsaFlowFit(small, 2, { signal: 'stop' as never })).rejects.toThrow('Expected an AbortSignal for options.signal of nsaFlowFit() but received the string "stop"');
  });
});

describe("init 'random' draws the project's generator", () => {
  it('the same stream as the native generator: NMF random init with 0 iterations', () => {
    // nmf's random init is W, H ~ U(0, 1)·√(mean(A)/r), W drawn first, from the native xoshiro256**.
    const A = firstColumns(small, 6);
    let mean = 0;
    for (const v of A.data) mean += v / A.data.length;
    const r = 2;
    const scale = Math.sqrt(mean / r);
    const f = nmfSync(A, r, { init: 'random', seed: 12345, maxIterations: 0 });
    const rng = new SeededUniform(12345);
    const expected = Float64Array.from({ length: A.rows * r }, () => rng.next() * scale);
    expect(maxAbsDiff(f.W.data, expected)).toBe(0); // bit for bit
  });
});

describe('orthogonalityOf: the functionals of orthogonality.hpp', () => {
  it('0 for orthogonal columns of equal norm, 1 for parallel columns', () => {
    const I = { rows: 3, cols: 2, data: Float64Array.of(2, 0, 0, 2, 0, 0) };
    const parallel = { rows: 3, cols: 2, data: Float64Array.of(1, 2, 1, 2, 0, 0) };
    for (const f of ['gram', 'offDiagonal', 'meanCos2'] as const) {
      expect(orthogonalityOf(f, I)).toBe(0);
      expect(orthogonalityOf(f, parallel)).toBeCloseTo(f === 'gram' ? 1 : f === 'offDiagonal' ? 0.64 : 1, 12);
    }
  });
});

// ---- the solves --------------------------------------------------------------------------------

/** ‖Xc − Xc·V·Vᵀ‖²/‖Xc‖² computed here, independently of lib/nsa-flow/fit.ts. */
function reconstructionError(Xc: Matrix, V: Matrix): number {
  const { rows: n, cols: p } = Xc;
  const k = V.cols;
  let r2 = 0;
  let x2 = 0;
  for (let i = 0; i < n; i++) {
    const m = new Float64Array(k);
    for (let j = 0; j < p; j++) for (let c = 0; c < k; c++) m[c]! += Xc.data[i * p + j]! * V.data[j * k + c]!;
    for (let j = 0; j < p; j++) {
      let s = 0;
      for (let c = 0; c < k; c++) s += m[c]! * V.data[j * k + c]!;
      r2 += (Xc.data[i * p + j]! - s) ** 2;
      x2 += Xc.data[i * p + j]! ** 2;
    }
  }
  return r2 / x2;
}

/** Largest number of non-zero entries in one row of V (1 = disjoint column supports). */
function maxRowSupport(V: Matrix): number {
  let most = 0;
  for (let j = 0; j < V.rows; j++) {
    let nz = 0;
    for (let c = 0; c < V.cols; c++) if (V.data[j * V.cols + c] !== 0) nz++;
    most = Math.max(most, nz);
  }
  return most;
}

function columnNorms(V: Matrix): number[] {
  return Array.from({ length: V.cols }, (_, c) => {
    let s = 0;
    for (let j = 0; j < V.rows; j++) s += V.data[j * V.cols + c]! ** 2;
    return Math.sqrt(s);
  });
}

function expectCertified(r: NsaFlowFitResult): void {
  if (r.stopReason === 'gradMap') expect(r.certificate).toBeLessThanOrEqual(r.settings.tolerance);
  // lineSearch is certified only within 1e3·tolerance (lib/solver.ts).
  if (r.stopReason === 'lineSearch') expect(r.certificate).toBeLessThanOrEqual(1e3 * r.settings.tolerance);
}

describe("mode 'auto', centring and transform", () => {
  it("'auto' picks data for non-negative X (as given, before centring) and signed otherwise", () => {
    const a = nsaFlowFitSync(small, 3, { maxIterations: 5 });
    expect(a.settings.mode).toBe('data');
    expect(a.settings.requestedMode).toBe('auto');
    expect(a.lobes).toBeNull();
    expect(Math.min(...a.V.data)).toBeGreaterThanOrEqual(0);
    const b = nsaFlowFitSync(centred(small), 3, { maxIterations: 5 });
    expect(b.settings.mode).toBe('signed');
    expect(b.lobes).not.toBeNull();
    // V = V⁺ − V⁻, lobes ≥ 0.
    const { positive, negative } = b.lobes!;
    expect(Math.min(...positive.data, ...negative.data)).toBeGreaterThanOrEqual(0);
    expect(maxAbsDiff(b.V.data, positive.data.map((v, i) => v - negative.data[i]!))).toBe(0);
  });

  it('transform(X) is the scores; the centre is the column means and is what transform subtracts', () => {
    const r = nsaFlowFitSync(tissue, 3, { w: 0.5 });
    const mean = new Float64Array(tissue.cols);
    for (let i = 0; i < tissue.rows; i++) for (let j = 0; j < tissue.cols; j++) mean[j]! += tissue.data[i * tissue.cols + j]!;
    for (let j = 0; j < tissue.cols; j++) mean[j]! /= tissue.rows;
    expect(maxAbsDiff(r.center!, mean)).toBeLessThan(1e-12);
    expect(r.scores.rows).toBe(189);
    expect(r.scores.cols).toBe(3);
    expect(maxAbsDiff(r.transform(tissue).data, r.scores.data)).toBe(0); // the same arithmetic, bit for bit
    // One new row equal to the centre scores 0: the stored centring is applied, not the new rows' own mean.
    const atCentre = r.transform({ rows: 1, cols: tissue.cols, data: r.center! });
    expect(maxAbs(atCentre.data)).toBe(0);
    // A single row is transformed as it is (its own mean would make it zero).
    const row5 = r.transform({ rows: 1, cols: tissue.cols, data: tissue.data.slice(5 * tissue.cols, 6 * tissue.cols) });
    expect(maxAbsDiff(row5.data, r.scores.data.slice(15, 18))).toBeLessThan(1e-12);
  });

  it('center: false fits X as given: no centre, scores = X·V', () => {
    const r = nsaFlowFitSync(tissue, 3, { center: false, maxIterations: 50 });
    expect(r.center).toBeNull();
    const XV = new Float64Array(189 * 3);
    for (let i = 0; i < 189; i++) for (let j = 0; j < 500; j++) for (let c = 0; c < 3; c++) XV[i * 3 + c]! += tissue.data[i * 500 + j]! * r.V.data[j * 3 + c]!;
    expect(maxAbsDiff(r.scores.data, XV) / maxAbs(XV)).toBeLessThan(1e-12);
    expect(r.settings.center).toBe(false);
  });

  it('the units of X do not matter: X·1e-200 and X·1e200 give the same V, scores in their units', () => {
    const r = nsaFlowFitSync(tissue, 3, { w: 0.5 });
    for (const factor of [1e-200, 1e200]) {
      const scaled = { rows: tissue.rows, cols: tissue.cols, data: tissue.data.map((v) => v * factor) };
      const s = nsaFlowFitSync(scaled, 3, { w: 0.5 });
      expect(s.stopReason).toBe('gradMap');
      expect(maxAbsDiff(s.V.data, r.V.data)).toBeLessThan(1e-6);
      expect(maxAbsDiff(s.scores.data.map((v) => v / factor), r.scores.data) / maxAbs(r.scores.data)).toBeLessThan(1e-6);
      expect(Math.abs(s.fidelity - r.fidelity)).toBeLessThan(1e-9);
    }
  });

  it('transform refuses bad input by class and message', () => {
    const r = nsaFlowFitSync(small, 2, { maxIterations: 5 });
    let e = thrown(() => r.transform({ rows: 1, cols: 3, data: new Float64Array(3) }));
    expect(e).toBeInstanceOf(RangeError);
    expect(e.message).toBe('Expected a matrix with 120 columns (the variables V was fitted on) for Xnew but received 1×3');
    const bad = new Float64Array(120);
    bad[7] = Infinity;
    e = thrown(() => r.transform({ rows: 1, cols: 120, data: bad }));
    expect(e).toBeInstanceOf(RangeError);
    expect(e.message).toBe('Expected finite values in Xnew but received Infinity at [0, 7]');
    e = thrown(() => r.transform(null as never));
    expect(e).toBeInstanceOf(TypeError);
    expect(e.message).toBe('Expected a Matrix {rows, cols, data: Float64Array} for Xnew but received null');
  });
});

describe('the inits, as defined', () => {
  it("clamp: the PCA loadings of Xc with negative entries set to 0 (signed: split into the lobes)", () => {
    // The fit takes the SVD of Xc divided by its largest entry: the same loadings up to rounding (1e-12).
    const L = pca(small, 3).loadings;
    const d = nsaFlowFitSync(small, 3, { mode: 'data', maxIterations: 0 });
    expect(maxAbsDiff(d.V.data, L.data.map((v) => Math.max(v, 0)))).toBeLessThan(1e-12);
    const s = nsaFlowFitSync(small, 3, { mode: 'signed', maxIterations: 0 });
    expect(maxAbsDiff(s.V.data, L.data)).toBeLessThan(1e-12);
    expect(maxAbsDiff(s.lobes!.positive.data, L.data.map((v) => Math.max(v, 0)))).toBeLessThan(1e-12);
    expect(maxAbsDiff(s.lobes!.negative.data, L.data.map((v) => Math.max(-v, 0)))).toBeLessThan(1e-12);
  });

  it('nmf: the unit-normalized topics of NMF (NNDSVD start, 200 HALS iterations) of X as given', () => {
    const f = nmfSync(small, 3, { init: 'nndsvd', solver: 'hals', maxIterations: 200 });
    const r = nsaFlowFitSync(small, 3, { init: 'nmf', maxIterations: 0 });
    const norms = [0, 1, 2].map((c) => Math.hypot(...Array.from({ length: 120 }, (_, j) => f.H.data[c * 120 + j]!)));
    const expected = Float64Array.from({ length: 360 }, (_, i) => f.H.data[(i % 3) * 120 + Math.floor(i / 3)]! / norms[i % 3]!);
    expect(maxAbsDiff(r.V.data, expected)).toBeLessThan(1e-15);
  });

  it('nmf in the async form: the NMF runs as a job too, with the same start', async () => {
    const sync = nsaFlowFitSync(small, 3, { init: 'nmf', maxIterations: 0 });
    const r = await nsaFlowFit(small, 3, { init: 'nmf', maxIterations: 0 });
    expect(maxAbsDiff(r.V.data, sync.V.data)).toBe(0);
  });

  it('random: seeded U(0, 1) with unit columns; the same seed gives the same start', () => {
    const a = nsaFlowFitSync(small, 3, { init: 'random', seed: 7, maxIterations: 0 });
    const b = nsaFlowFitSync(small, 3, { init: 'random', seed: 7, maxIterations: 0 });
    const c = nsaFlowFitSync(small, 3, { init: 'random', seed: 8, maxIterations: 0 });
    expect(maxAbsDiff(a.V.data, b.V.data)).toBe(0);
    expect(maxAbsDiff(a.V.data, c.V.data)).toBeGreaterThan(0.01);
    for (const norm of columnNorms(a.V)) expect(norm).toBeCloseTo(1, 14);
  });

  it('relax: a w = 0 solve from clamp starts the w solve (it fits the data at least as well as clamp)', () => {
    const clamp = nsaFlowFitSync(small, 3, { mode: 'data', maxIterations: 0 });
    const relaxed = nsaFlowFitSync(small, 3, { mode: 'data', init: 'relax', w: 0.5 });
    expect(relaxed.settings.init).toBe('relax');
    expect(relaxed.relaxRun).not.toBeNull();
    expect(relaxed.relaxRun!.fidelity).toBeLessThanOrEqual(clamp.fidelity);
  });

  it('a given start is used as it is', () => {
    const L = pca(small, 2).loadings;
    const start = { rows: 120, cols: 2, data: L.data.map(Math.abs) };
    const r = nsaFlowFitSync(small, 2, { init: start, maxIterations: 0 });
    expect(r.settings.init).toBe('given');
    expect(maxAbsDiff(r.V.data, start.data)).toBe(0);
  });
});

describe('the solution: certificate, measures, explained variance', () => {
  it.each(['data', 'signed', 'anchored'] as const)('%s mode on ALL: certified, and the measures agree with independent computations', (mode) => {
    const r = nsaFlowFitSync(all, 4, { mode, w: 0.5 });
    expectCertified(r);
    expect(['gradMap', 'plateau', 'lineSearch']).toContain(r.stopReason);
    const Xc = centred(all);
    const recon = reconstructionError(Xc, r.V);
    expect(Math.abs(r.explainedVariance.reconstruction - (1 - recon))).toBeLessThan(1e-10);
    if (mode !== 'anchored') expect(Math.abs(r.fidelity - recon)).toBeLessThan(1e-10);
    // O is measured on V, except in signed mode: on its 2k lobes [V⁺ V⁻] side by side.
    const measured = r.lobes ? sideBySide(r.lobes.positive, r.lobes.negative) : r.V;
    expect(Math.abs(r.orthogonality - orthogonalityOf(r.settings.orthogonality, measured))).toBeLessThan(1e-10);
    expect(Math.abs(r.defect - invariantOrthogonalityDefect(r.V))).toBe(0);
    // Reconstruction through V ≤ the variance in V's span ≤ PCA's (the most k directions can hold).
    expect(r.explainedVariance.reconstruction).toBeLessThanOrEqual(r.explainedVariance.span + 1e-12);
    expect(r.explainedVariance.span).toBeLessThanOrEqual(r.explainedVariance.pca + 1e-12);
    expect(r.traces.certificate.length).toBe(r.traces.iteration.length);
  });

  it("anchored: V is returned at the scale that minimizes the reconstruction error", () => {
    const r = nsaFlowFitSync(tissue, 3, { mode: 'anchored', w: 0.5 });
    const Xc = centred(tissue);
    const at = (s: number) => reconstructionError(Xc, { rows: 500, cols: 3, data: r.V.data.map((v) => v * s) });
    expect(at(1)).toBeLessThan(at(1.01));
    expect(at(1)).toBeLessThan(at(0.99));
  });
});

describe('consolidate: disjoint supports', () => {
  it.each([
    ['signed', all],
    ['data', all],
    ['signed', tissue],
    ['anchored', tissue],
  ] as const)('%s mode: each row of V has at most one non-zero entry, every column is kept, and the fidelity cost is reported', (mode, X) => {
    const plain = nsaFlowFitSync(X, 4, { mode, w: 0.5 });
    const r = nsaFlowFitSync(X, 4, { mode, w: 0.5, consolidate: true });
    expect(maxRowSupport(r.V)).toBe(1);
    for (const norm of columnNorms(r.V)) expect(norm).toBeGreaterThan(0);
    // Disjoint columns are orthogonal: the defect and the functional vanish up to rounding.
    expect(r.defect).toBeLessThan(1e-14);
    expect(r.consolidation!.fidelityBefore).toBe(plain.fidelity);
    expect(r.consolidation!.fidelityAfter).toBe(r.fidelity);
    expect(r.consolidation!.entriesRemoved).toBeGreaterThan(0);
    if (mode === 'signed') {
      expect(r.overlap).toBe(0);
      // The lobes of a consolidated V never overlap.
      const { positive, negative } = r.lobes!;
      for (let i = 0; i < positive.data.length; i++) expect(positive.data[i]! * negative.data[i]!).toBe(0);
    } else {
      expect(Math.min(...r.V.data)).toBeGreaterThanOrEqual(0);
    }
    if (mode !== 'anchored') {
      // The re-fit is at least as good as keeping the solve's entries on the same supports (unit columns,
      // the best scale for orthogonal columns).
      const masked = new Float64Array(plain.V.data.length);
      for (let i = 0; i < masked.length; i++) if (r.V.data[i] !== 0) masked[i] = plain.V.data[i]!;
      const maskedV = { rows: X.cols, cols: 4, data: masked };
      const norms = columnNorms(maskedV);
      const unit = { rows: X.cols, cols: 4, data: masked.map((v, i) => v / norms[i % 4]!) };
      expect(r.fidelity).toBeLessThanOrEqual(reconstructionError(centred(X), unit) + 1e-12);
    }
  });
});

describe('consolidate in signed mode: varimax first', () => {
  it('the consolidated basis barely depends on the start of the solve', () => {
    // From clamp (the PCA loadings) and from a random start the signed solve reaches nearly the same
    // minimizer (measured: fidelities 2e-8 apart on ALL, 1.6e-6 on tissue, where the energy is flatter);
    // the varimax rotation takes both to the same basis (up to the order of its columns), so
    // consolidation's fidelities agree to 0.0014 (measured on tissue; F ≈ 0.55 there).
    for (const X of [all, tissue]) {
      const a = nsaFlowFitSync(X, 4, { mode: 'signed', consolidate: true });
      const b = nsaFlowFitSync(X, 4, { mode: 'signed', init: 'random', consolidate: true });
      expect(Math.abs(a.consolidation!.fidelityBefore - b.consolidation!.fidelityBefore)).toBeLessThan(1e-5);
      expect(Math.abs(a.fidelity - b.fidelity)).toBeLessThan(0.005);
      expect(maxRowSupport(a.V)).toBe(1);
    }
  });
});

describe('consolidate: a column that wins no row', () => {
  it('takes back the row where it is largest relative to the kept entry, so no column is emptied', () => {
    // Start: column 2 is half of column 0 everywhere, so the row rule alone would leave it empty;
    // maxIterations 0 keeps the start as the solution that is consolidated.
    const L = pca(small, 2).loadings;
    const start = { rows: 120, cols: 3, data: new Float64Array(360) };
    for (let j = 0; j < 120; j++) {
      start.data[j * 3] = Math.abs(L.data[j * 2]!);
      start.data[j * 3 + 1] = Math.abs(L.data[j * 2 + 1]!);
      start.data[j * 3 + 2] = 0.5 * Math.abs(L.data[j * 2]!);
    }
    const r = nsaFlowFitSync(small, 3, { mode: 'data', init: start, maxIterations: 0, consolidate: true });
    expect(r.consolidation!.columnsRefilled).toBe(1);
    expect(maxRowSupport(r.V)).toBe(1);
    for (const norm of columnNorms(r.V)) expect(norm).toBeCloseTo(1, 12); // unit columns: the best scale
    // The solver's own warning (0 iterations: not stationary) is there; none from the consolidation.
    expect(r.warnings.filter((w) => w.startsWith('consolidate'))).toEqual([]);
  });
});

describe('the async form', () => {
  it('reports progress by stage and equals the sync solve', async () => {
    const stages: string[] = [];
    const iterations: number[] = [];
    const r = await nsaFlowFit(small, 3, {
      init: 'relax',
      onProgress: (p) => {
        stages.push(p.stage);
        if (p.stage === 'fit') iterations.push(p.iteration);
      },
      progressIntervalMs: 0,
    });
    const s = nsaFlowFitSync(small, 3, { init: 'relax' });
    expect(maxAbsDiff(r.V.data, s.V.data)).toBe(0);
    expect(stages[0]).toBe('relax');
    expect(stages.at(-1)).toBe('fit');
    expect(stages.indexOf('fit')).toBeGreaterThan(stages.lastIndexOf('relax'));
    for (let i = 1; i < iterations.length; i++) expect(iterations[i]).toBeGreaterThanOrEqual(iterations[i - 1]!);
  });

  it('aborts with AbortError', async () => {
    const controller = new AbortController();
    const p = nsaFlowFit(all, 8, {
      tolerance: 0,
      plateauTolerance: 0,
      maxIterations: 1e6,
      signal: controller.signal,
      progressIntervalMs: 0,
      onProgress: () => controller.abort(),
    });
    await expect(p).rejects.toBeInstanceOf(AbortError);
    await expect(nsaFlowFit(small, 2, { signal: AbortSignal.abort() })).rejects.toBeInstanceOf(AbortError);
  });
});

describe('nsa-flow fit (CLI)', () => {
  const file = dataFile('tissue/tissue_expr.npy');

  it('writes V and the scores; V equals the API result bit for bit', async () => {
    const out = join(tempDir('cli-fit'), 'tissue');
    const r = await runMain(['fit', file, '--k', '3', '--w', '0.3', '--out', out]);
    expect(r.code, r.stderr).toBe(0);
    const json = JSON.parse(readFileSync(join(out, 'result.json'), 'utf8'));
    const api = nsaFlowFitSync(tissue, 3, { w: 0.3 });
    expect(maxAbsDiff(readNpy(join(out, 'V.npy')).data, api.V.data)).toBe(0);
    expect(readNpy(join(out, 'scores.npy')).shape).toEqual([189, 3]);
    expect(json.settings.mode).toBe('data');
    expect(json.diagnostics.stopReason).toBe(api.stopReason);
  });

  it('the optional anchor file is the anchor of --mode anchored, refused in the other modes', async () => {
    const dir = tempDir('cli-fit-anchor');
    const anchorFile = join(dir, 'anchor.npy');
    const anchor = pca(tissue, 2).loadings; // a 2-dimensional anchor for k = 3
    writeNpy(anchorFile, anchor);
    let r = await runMain(['fit', file, anchorFile, '--k', '3', '--mode', 'anchored', '--max-iterations', '50', '--out', join(dir, 'out')]);
    expect(r.code, r.stderr).toBe(0);
    const json = JSON.parse(readFileSync(join(dir, 'out', 'result.json'), 'utf8'));
    expect(json.settings.anchor).toBe('given');
    const api = nsaFlowFitSync(tissue, 3, { mode: 'anchored', anchor, maxIterations: 50 });
    expect(maxAbsDiff(readNpy(join(dir, 'out', 'V.npy')).data, api.V.data)).toBe(0);
    r = await runMain(['fit', file, anchorFile, '--k', '3', '--mode', 'data']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/Expected no options.anchor matrix for nsaFlowFit\(\) in mode 'data'/);
  });

  it('bad flags exit 2 naming the flag', async () => {
    let r = await runMain(['fit', file, '--k', '3', '--mode', 'sign']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--mode/);
    expect(r.stderr).toMatch(/did you mean 'signed'/);
    r = await runMain(['fit', file, '--w', '0.5']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--k/);
  });
});
