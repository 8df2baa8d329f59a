/**
 * The calibration-free NSA-Flow energy and its certified solvers (native/kernels/nsa_energy.hpp,
 * native/kernels/certified.hpp): one native call per solve.
 *
 *   E_w(Y) = (1 − w)·F(Y) + w·O(Y)   [+ overlapPenalty·P in 'signed' mode],   Y ≥ 0 or unconstrained,
 *
 * every term scale-free, 0 at its ideal and 1 at the natural "nothing" point (see nsa_energy.hpp for
 * each mode's F and gradient). The solvers ('lbfgsb', 'spg') are monotone and return the scale-free
 * stationarity certificate ‖P(Y − ‖Y‖²∇E) − Y‖/‖Y‖ with an honest stop reason (lib/solver.ts).
 *
 * This module is the internal interface nsaFlow's dispatch and nsaFlowFit build on
 * (runCertifiedSync / runCertifiedAsync take validated, complete options), plus the public
 * `nsaEnergy` that evaluates the energy at a point.
 */
import type { Matrix } from '../matrix.js';
import { checkMemory, float64Bytes } from '../memory.js';
import { native, type CancelToken, type RawProgress } from '../native.js';
import { callSync, productFlops, runJob, type AsyncOptions } from '../runtime.js';
import type { StopReason } from '../solver.js';
import { expectMatrix, parseOptions, type OptionSpecs } from '../validate.js';
import { missingOptionSpecs, prepareMissing, wantsMissing, type MissingMask, type ParsedMissing } from '../factorization/missing.js';

export type CertifiedMode = 'target' | 'data' | 'signed' | 'anchored';
export const certifiedModes = ['target', 'data', 'signed', 'anchored'] as const;
export const orthogonalityFunctionals = ['gram', 'offDiagonal', 'meanCos2'] as const;
export type OrthogonalityFunctional = (typeof orthogonalityFunctionals)[number];
/**
 * The default first. Measured (bench/nsa-flow-certified.ts, one BLAS thread, fits to certificate ≤ 1e-6
 * from PCA starts): L-BFGS-B needs 1.6–5.5× fewer iterations than SPG in data mode (300×66 k=5: 96 vs
 * 180; 57×2000 k=3: 57 vs 315; leukemia 128×1000 k=3/5: 74/104 vs 205/170) and is the one that still
 * makes progress on ill-conditioned problems (57×2000 from a random start: L-BFGS-B reaches 3e-5 where
 * SPG stays at 3e-3 after 1e5 iterations). Its iterations cost more (the limited-memory products, 2–5×
 * an evaluation here), so SPG is faster on easy problems: the 300×66 fit (1.1 vs 2.5 ms CPU) and
 * target mode at 10⁴–10⁵×20 (12 iterations either way, SPG 4–5× faster).
 */
export const certifiedSolvers = ['lbfgsb', 'spg'] as const;

export interface CertifiedProblem {
  mode: CertifiedMode;
  /** Start: p×k ('signed': p×2k = [V⁺ V⁻]). */
  Y0: Matrix;
  /** 'target': target p×k; 'anchored': the anchor p×m. */
  X0?: Matrix;
  /** 'data' | 'signed': data n×p (rows = observations). */
  X?: Matrix;
  /**
   * Entry weights ≥ 0 of the fidelity, the shape of X0 ('target') or of X ('data' | 'signed'); 0 =
   * missing (X0/X may hold NaN there). Absent: every weight 1 (the unweighted energy, bit for bit).
   */
  weights?: Float64Array;
}

export interface CertifiedOptions {
  w: number;
  orthogonality: OrthogonalityFunctional;
  solver: 'lbfgsb' | 'spg';
  nonnegative: boolean;
  tolerance: number;
  plateauTolerance: number;
  maxIterations: number;
  /** L-BFGS pairs. */
  memory: number;
  overlapPenalty: number;
  anchor: 'subspace' | 'target';
  recordEvery: number;
}

export interface CertifiedTraces {
  iteration: Float64Array;
  timeMs: Float64Array;
  energy: Float64Array;
  fidelity: Float64Array;
  orthogonality: Float64Array;
  certificate: Float64Array;
}

export interface CertifiedRun {
  Y: Matrix;
  energy: number;
  fidelity: number;
  orthogonality: number;
  /** The lobe-overlap penalty P ('signed' mode; 0 otherwise). */
  overlap: number;
  certificate: number;
  stopReason: StopReason;
  iterations: number;
  /** Energy + gradient evaluations. */
  evaluations: number;
  traces: CertifiedTraces;
  warnings: string[];
}

export interface CertifiedProgress {
  iteration: number;
  maxIterations: number;
  energy: number;
  certificate: number;
  /** The terms of `energy` at that iterate: energy = (1 − w)·fidelity + w·orthogonality [+ λ·overlap]. */
  fidelity: number;
  orthogonality: number;
}

/** Defaults and validation of CertifiedOptions. */
export const certifiedOptionSpecs = {
  w: { kind: 'number', min: 0, max: 1, default: 0.5, description: 'weight of orthogonality: E = (1 − w)·F + w·O' },
  orthogonality: { kind: 'enum', values: orthogonalityFunctionals, default: 'gram', description: 'orthogonality functional O' },
  solver: { kind: 'enum', values: certifiedSolvers, default: 'lbfgsb', description: 'certified solver' },
  nonnegative: { kind: 'boolean', default: true, description: 'constrain Y ≥ 0' },
  tolerance: { kind: 'number', min: 0, default: 1e-6, description: 'certificate (scale-free gradient mapping) that stops the run as gradMap' },
  plateauTolerance: {
    kind: 'number',
    min: 0,
    max: 1,
    default: 1e-12,
    description: 'relative energy decrease over 10 iterations below which the run stops as plateau (0: never)',
  },
  maxIterations: { kind: 'number', integer: true, min: 0, max: 1e8, default: 10_000, description: 'iteration limit' },
  memory: { kind: 'number', integer: true, min: 1, max: 100, default: 10, description: 'L-BFGS pairs kept by lbfgsb' },
  // 0.1, measured on the centred leukemia (128×1000) and tissue (189×500) data, k = 3 and 5, w = 0.5,
  // from a PCA start with overlapping lobes: 0.1 makes the lobes exactly disjoint at the fidelity of
  // λ = 0 (equal to 5 digits) in the fewest iterations (58–77); 0.01 leaves a few rows in both lobes
  // (P ≈ 2e-10) and takes 107–133 iterations; 1 and 10 reach the same point but slower (68–758: the
  // penalty's curvature dominates). P ≤ 1, so 0.1 never outweighs the [0, 1] trade-off that w sets.
  overlapPenalty: {
    kind: 'number',
    min: 0,
    max: 1e6,
    default: 0.1,
    description: "weight of the lobe-overlap penalty 2⟨V⁺, V⁻⟩/(‖V⁺‖² + ‖V⁻‖²) in 'signed' mode",
  },
  anchor: { kind: 'enum', values: ['subspace', 'target'], default: 'subspace', description: "'anchored' fidelity: subspace energy share or column cosines" },
  recordEvery: { kind: 'number', integer: true, min: 1, max: 1e8, default: 1, description: 'trace every n-th iteration' },
} as const satisfies OptionSpecs;

interface RawEnergyOptions {
  weights?: Float64Array;
  mode: CertifiedMode;
  w: number;
  orthogonality: OrthogonalityFunctional;
  nonnegative: boolean;
  overlapPenalty: number;
  anchor: 'subspace' | 'target';
}
type RawSolveOptions = RawEnergyOptions & Omit<CertifiedOptions, keyof RawEnergyOptions>;

/** What the addon returns: the run, with Y as the bare buffer (buildRun makes it a Matrix). */
type RawCertifiedResult = Omit<CertifiedRun, 'Y'> & { Y: Float64Array };

interface RawEnergyResult {
  energy: number;
  fidelity: number;
  orthogonality: number;
  overlap: number;
  gradient: Float64Array;
  certificate: number;
}

type NullableArray = Float64Array | null;
declare module '../native.js' {
  interface NativeBinding {
    /** max(x, 0) entry by entry (−0 to +0, NaN kept) in a new array, on the solver thread team. */
    nonNegativePart(data: Float64Array): Float64Array;
    certifiedSolve(Y0: Float64Array, rows: number, cols: number, X0: NullableArray, x0Cols: number, X: NullableArray, dataRows: number, options: RawSolveOptions): RawCertifiedResult;
    certifiedSolveAsync(
      Y0: Float64Array,
      rows: number,
      cols: number,
      X0: NullableArray,
      x0Cols: number,
      X: NullableArray,
      dataRows: number,
      options: RawSolveOptions,
      token: CancelToken,
      onProgress: ((r: RawProgress) => void) | undefined,
      intervalMs: number,
    ): Promise<RawCertifiedResult>;
    certifiedEnergy(Y: Float64Array, rows: number, cols: number, X0: NullableArray, x0Cols: number, X: NullableArray, dataRows: number, options: RawEnergyOptions): RawEnergyResult;
  }
}

function allZero(a: Float64Array): boolean {
  for (let i = 0; i < a.length; i++) if (a[i] !== 0) return false;
  return true;
}

/**
 * Checks a problem's shapes against its mode (RangeError/TypeError naming the field), the degenerate
 * data its terms are undefined for, and the memory of the solve. `context` names the caller.
 */
export function checkCertifiedProblem(problem: CertifiedProblem, options: Pick<CertifiedOptions, 'anchor' | 'nonnegative' | 'memory'>, context: string): void {
  const { mode, Y0, X0, X, weights } = problem;
  const p = Y0.rows;
  const name = (field: string) => `${field} of ${context}`;
  if (weights) checkWeightedProblem(problem, weights, name);
  // Whether the fidelity's data is zero at its weighted entries (all of them without weights).
  const allZeroWeighted = (a: Float64Array) => (weights ? a.every((x, i) => weights[i] === 0 || x === 0) : allZero(a));
  if (mode === 'target' || mode === 'anchored') {
    if (!X0) throw new TypeError(`Expected a Matrix for ${name('X0')} in '${mode}' mode but received undefined`);
    if (X0.rows !== p) throw new RangeError(`Expected ${name('X0')} with ${p} rows (as Y0) but received ${X0.rows}×${X0.cols}`);
    if (mode === 'target' && X0.cols !== Y0.cols) throw new RangeError(`Expected ${name('X0')} of the shape of Y0 (${p}×${Y0.cols}) but received ${X0.rows}×${X0.cols}`);
    if (mode === 'anchored' && options.anchor === 'target' && X0.cols !== Y0.cols) {
      throw new RangeError(`Expected ${name('X0')} with ${Y0.cols} columns (as Y0) for anchor 'target' but received ${X0.rows}×${X0.cols}`);
    }
    if (mode === 'target' && allZeroWeighted(X0.data)) {
      throw new RangeError(`Expected a nonzero ${name('X0')} (F = ‖Y − X0‖²/‖X0‖²) but received a zero matrix${weights ? ' at the entries of nonzero weight' : ''}`);
    }
    if (mode === 'anchored') {
      if (options.anchor === 'target') {
        const k = X0.cols;
        for (let j = 0; j < k; j++) {
          let any = false;
          for (let i = 0; i < p && !any; i++) any = X0.data[i * k + j] !== 0;
          if (!any) throw new RangeError(`Expected nonzero anchor columns in ${name('X0')} for anchor 'target' but column ${j} is zero`);
        }
      } else if (allZero(X0.data)) {
        throw new RangeError(`Expected a nonzero anchor ${name('X0')} but received a zero matrix`);
      }
    }
    if (X) throw new TypeError(`Expected no ${name('X')} in '${mode}' mode (it fits X0) but received a Matrix`);
  } else {
    if (!X) throw new TypeError(`Expected a Matrix for ${name('X')} in '${mode}' mode but received undefined`);
    if (X.cols !== p) throw new RangeError(`Expected ${name('X')} with ${p} columns (Y0 has ${p} rows, one per variable) but received ${X.rows}×${X.cols}`);
    if (allZeroWeighted(X.data)) {
      throw new RangeError(`Expected a nonzero ${name('X')} (F = ‖X − XVVᵀ‖²/‖X‖²) but received a zero matrix${weights ? ' at the entries of nonzero weight' : ''}`);
    }
    if (mode === 'signed') {
      if (Y0.cols % 2 !== 0) throw new RangeError(`Expected ${name('Y0')} with an even number of columns ([V⁺ V⁻]) in 'signed' mode but received ${p}×${Y0.cols}`);
      if (!options.nonnegative) throw new RangeError(`Expected nonnegative true in 'signed' mode for ${context} (the lobes V⁺, V⁻ are non-negative) but received false`);
    }
    if (X0) throw new TypeError(`Expected no ${name('X0')} in '${mode}' mode (it fits X) but received a Matrix`);
  }
  const vars = p * Y0.cols;
  const n = X?.rows ?? 0;
  const gram = X && p < 2 * n && p <= 4096 ? p * p : 0;
  // Weights: their copy, and with data ω∘X, the weighted residual and two score buffers (no XᵀX then).
  const weighted = !weights ? 0 : X ? 3 * n * p + 2 * n * Y0.cols - gram : weights.length;
  checkMemory(float64Bytes(vars) * (16 + 2 * options.memory) + float64Bytes(gram + n * Y0.cols + weighted), `the certified NSA-Flow solve on Y0 (${p}×${Y0.cols})`);
}

/**
 * The weights of a weighted problem: the shape of the fidelity's data, finite and ≥ 0, and that data
 * finite at every entry of nonzero weight (NaN is allowed where the weight is 0: the entry is missing).
 */
function checkWeightedProblem(problem: CertifiedProblem, weights: Float64Array, name: (field: string) => string): void {
  const { mode } = problem;
  if (mode === 'anchored') throw new RangeError(`Expected no ${name('weights')} in 'anchored' mode (its fidelity is to the anchor, which has no missing entries)`);
  const data = mode === 'target' ? problem.X0 : problem.X;
  const field = mode === 'target' ? 'X0' : 'X';
  if (!data) return; // the shape checks below name the missing matrix
  if (weights.length !== data.data.length) {
    throw new RangeError(`Expected ${data.data.length} ${name('weights')} (the shape of ${field}, ${data.rows}×${data.cols}) but received ${weights.length}`);
  }
  for (let i = 0; i < weights.length; i++) {
    const w = weights[i]!;
    if (!(w >= 0) || w === Infinity) throw new RangeError(`Expected finite ${name('weights')} ≥ 0 but received ${w} at index ${i}`);
    const x = data.data[i]!;
    if (w !== 0 && !Number.isFinite(x)) {
      throw new RangeError(`Expected finite values in ${name(field)} at the entries of nonzero weight but received ${x} at [${Math.floor(i / data.cols)}, ${i % data.cols}]`);
    }
  }
}

function rawArgs(problem: CertifiedProblem): [NullableArray, number, NullableArray, number] {
  return [problem.X0?.data ?? null, problem.X0?.cols ?? 0, problem.X?.data ?? null, problem.X?.rows ?? 0];
}

function rawOptions(mode: CertifiedMode, o: CertifiedOptions, weights: Float64Array | undefined): RawSolveOptions {
  return {
    ...(weights ? { weights } : {}),
    mode,
    w: o.w,
    orthogonality: o.orthogonality,
    solver: o.solver,
    nonnegative: o.nonnegative,
    tolerance: o.tolerance,
    plateauTolerance: o.plateauTolerance,
    maxIterations: o.maxIterations,
    memory: o.memory,
    overlapPenalty: o.overlapPenalty,
    anchor: o.anchor,
    recordEvery: o.recordEvery,
  };
}

// A start whose energy is not finite (squares that overflow a double) comes back as it went in, with
// stopReason 'nonFinite' and a warning: the caller decides whether that is an error.
function buildRun(raw: RawCertifiedResult, Y0: Matrix): CertifiedRun {
  return {
    Y: { rows: Y0.rows, cols: Y0.cols, data: raw.Y },
    energy: raw.energy,
    fidelity: raw.fidelity,
    orthogonality: raw.orthogonality,
    overlap: raw.overlap,
    certificate: raw.certificate,
    stopReason: raw.stopReason,
    iterations: raw.iterations,
    evaluations: raw.evaluations,
    traces: raw.traces,
    warnings: raw.warnings,
  };
}

/** One certified solve (validated inputs, complete options). */
export function runCertifiedSync(problem: CertifiedProblem, options: CertifiedOptions): CertifiedRun {
  checkCertifiedProblem(problem, options, 'the certified solve');
  const { Y0 } = problem;
  const [X0, x0Cols, X, n] = rawArgs(problem);
  const raw = callSync(() => native().certifiedSolve(Y0.data, Y0.rows, Y0.cols, X0, x0Cols, X, n, rawOptions(problem.mode, options, problem.weights)), productFlops(Y0.data.length, Y0.cols));
  return buildRun(raw, Y0);
}

function mapProgress(r: RawProgress): CertifiedProgress {
  // native order (certified.hpp): [energy, certificate, fidelity, orthogonality]
  return { iteration: r.iteration, maxIterations: r.total, energy: r.values[0]!, certificate: r.values[1]!, fidelity: r.values[2]!, orthogonality: r.values[3]! };
}

/** One certified solve as an async job (cancel with async.signal; progress through async.onProgress). */
export async function runCertifiedAsync(problem: CertifiedProblem, options: CertifiedOptions, async: AsyncOptions<CertifiedProgress>): Promise<CertifiedRun> {
  checkCertifiedProblem(problem, options, 'the certified solve');
  const { Y0 } = problem;
  const inputs = [Y0.data, ...(problem.X0 ? [problem.X0.data] : []), ...(problem.X ? [problem.X.data] : [])];
  const settings = rawOptions(problem.mode, options, problem.weights);
  const raw = await runJob<RawCertifiedResult, CertifiedProgress>(
    inputs,
    (ins, token, onProgress, intervalMs) =>
      native().certifiedSolveAsync(
        ins[0]!,
        Y0.rows,
        Y0.cols,
        problem.X0 ? ins[1]! : null,
        problem.X0?.cols ?? 0,
        problem.X ? ins[1]! : null,
        problem.X?.rows ?? 0,
        settings,
        token,
        onProgress,
        intervalMs,
      ),
    async,
    mapProgress,
    productFlops(Y0.data.length, Y0.cols),
  );
  return buildRun(raw, Y0);
}

// ---- missing entries of the fidelity's data -----------------------------------------------------

/**
 * `weights`, `mask` and `missing` of the fidelity (docs/missing-values.md), parsed as for nmf; NSA-Flow's
 * data is dense, so `missing` is 'observed' or 'nan' ('absent' is CSR's).
 */
export const fidelityMissingOptionSpecs = {
  weights: { ...missingOptionSpecs.weights, description: "entry weights ≥ 0 of the fidelity, a Matrix of the data's shape (0 = missing)" },
  mask: missingOptionSpecs.mask,
  missing: { ...missingOptionSpecs.missing, values: ['observed', 'nan'], description: "'nan': NaN entries of the data are missing" },
} as const satisfies OptionSpecs;

/**
 * The same option names for a solver whose energy has no weighted fidelity: each is refused with a
 * RangeError that names the solvers taking it (an option accepted and ignored would be a silent mistake).
 */
export function refusedFidelityMissingOptionSpecs(why: string) {
  const refuse = (_v: unknown, name: string): never => {
    throw new RangeError(
      `Expected no ${name} (${why}); weights, mask and missing are taken by nsaFlow with optimizer 'spg' or 'lbfgsb', by nsaFlowFit and by nsaEnergy`,
    );
  };
  const spec = (option: string) => ({ kind: 'custom' as const, description: `not taken (${why}): use nsaFlow with optimizer 'spg' or 'lbfgsb' for ${option}`, check: refuse });
  return { weights: spec('weights'), mask: spec('a mask'), missing: spec("missing 'nan'") } as const satisfies OptionSpecs;
}

export interface FidelityMissingOptions {
  /** Entry weights ω ≥ 0 of the fidelity, a Matrix of the data's shape; 0 = missing. */
  weights?: Matrix;
  /** The missing entries: a boolean array of rows·cols (row-major, true = missing) or an index list {rows, cols}. */
  mask?: MissingMask;
  /** 'nan': NaN entries of the data are missing (default 'observed'). */
  missing?: 'observed' | 'nan';
}

/**
 * The data of a fidelity with its missing-value options: a snapshot (NaN allowed where missing, every
 * observed entry finite, any sign) and the dense weights, undefined when every weight is 1 — then the
 * unweighted energy runs, bit for bit. Null when no missing-value option was given.
 */
export function fidelityWeights(A: unknown, name: string, o: ParsedMissing, context: string): { data: Matrix; weights: Float64Array | undefined } | null {
  if (!wantsMissing(o)) return null;
  const { data, missing } = prepareMissing(A, name, o, context, false, true);
  if ('indptr' in data) throw new TypeError(`Expected a dense Matrix for ${name} of ${context} but received a CSR matrix`);
  return { data, weights: missing.weights };
}

// ---- the public energy -------------------------------------------------------------------------

export interface NsaEnergyOptions extends FidelityMissingOptions {
  /** Which fidelity F (default 'target'). */
  mode?: CertifiedMode;
  /** 'target': the target (shape of Y); 'anchored': the anchor (p×m). */
  X0?: Matrix;
  /** 'data' | 'signed': the data n×p. */
  X?: Matrix;
  w?: number;
  orthogonality?: OrthogonalityFunctional;
  overlapPenalty?: number;
  anchor?: 'subspace' | 'target';
  /** Whether the certificate projects on Y ≥ 0 (default true). */
  nonnegative?: boolean;
}

export interface NsaEnergyValue {
  energy: number;
  fidelity: number;
  orthogonality: number;
  overlap: number;
  /** ∇E at Y (the shape of Y). */
  gradient: Matrix;
  /** The scale-free gradient mapping ‖P(Y − ‖Y‖²∇E) − Y‖/‖Y‖ (0 at a KKT point). */
  certificate: number;
}

const matrixOption = (name: string) => ({
  kind: 'custom' as const,
  description: `a Matrix {rows, cols, data: Float64Array} (${name})`,
  // NaN is checked with the missing-value options (allowed at missing entries of the fidelity's data).
  check: (v: unknown, n: string) => expectMatrix(v, n, { finite: false }),
});

export const nsaEnergyOptionSpecs = {
  mode: { kind: 'enum', values: certifiedModes, default: 'target', description: 'which fidelity F' },
  X0: matrixOption("'target': the target; 'anchored': the anchor"),
  X: matrixOption("'data' | 'signed': the data, rows = observations"),
  w: certifiedOptionSpecs.w,
  orthogonality: certifiedOptionSpecs.orthogonality,
  overlapPenalty: certifiedOptionSpecs.overlapPenalty,
  anchor: certifiedOptionSpecs.anchor,
  nonnegative: certifiedOptionSpecs.nonnegative,
  ...fidelityMissingOptionSpecs,
} as const satisfies OptionSpecs;

/**
 * The calibration-free NSA-Flow energy at Y: its value, terms, gradient and certificate.
 * `nsaEnergy(Y, { X0 })` is the target-mode energy (1 − w)·‖Y − X0‖²/‖X0‖² + w·D̃(Y).
 * `weights`/`mask`/`missing` weigh the fidelity's data (X0 in 'target', X in 'data' and 'signed'; see
 * docs/nsa-flow-fit.md): F = Σ ω(Y − X0)²/Σ ω·X0², or the data fit over the observed entries.
 */
export function nsaEnergy(Y: Matrix, options?: NsaEnergyOptions): NsaEnergyValue {
  const context = 'nsaEnergy()';
  const y = expectMatrix(Y, 'Y');
  type Parsed = Required<Omit<NsaEnergyOptions, 'X0' | 'X' | keyof FidelityMissingOptions>> & Pick<NsaEnergyOptions, 'X0' | 'X'> & ParsedMissing;
  const o = parseOptions<Parsed>(nsaEnergyOptionSpecs, options, context);
  const field = o.mode === 'target' || o.mode === 'anchored' ? 'X0' : 'X';
  if (o.mode === 'anchored' && wantsMissing(o)) {
    throw new RangeError(`Expected no options.${o.weights ? 'weights' : o.mask ? 'mask' : 'missing'} of ${context} in 'anchored' mode (its fidelity is to the anchor, which has no missing entries)`);
  }
  const given = o[field];
  const weighted = given ? fidelityWeights(given, `options.${field}`, o, context) : null;
  // Every entry of a matrix that the missing-value options do not cover must be finite.
  for (const m of ['X0', 'X'] as const) if (o[m] && !(weighted && m === field)) expectMatrix(o[m], `options.${m}`);
  const problem: CertifiedProblem = {
    mode: o.mode,
    Y0: y,
    ...(o.X0 ? { X0: field === 'X0' && weighted ? weighted.data : o.X0 } : {}),
    ...(o.X ? { X: field === 'X' && weighted ? weighted.data : o.X } : {}),
    ...(weighted?.weights ? { weights: weighted.weights } : {}),
  };
  checkCertifiedProblem(problem, { anchor: o.anchor, nonnegative: o.nonnegative, memory: 0 }, context);
  const [X0, x0Cols, X, n] = rawArgs(problem);
  const raw = callSync(() =>
    native().certifiedEnergy(y.data, y.rows, y.cols, X0, x0Cols, X, n, {
      ...(problem.weights ? { weights: problem.weights } : {}),
      mode: o.mode,
      w: o.w,
      orthogonality: o.orthogonality,
      nonnegative: o.nonnegative,
      overlapPenalty: o.overlapPenalty,
      anchor: o.anchor,
    }),
  );
  return { ...raw, gradient: { rows: y.rows, cols: y.cols, data: raw.gradient } };
}
