/**
 * nsaFlowFit(): NSA-Flow fitted directly on data (rows of X = observations, columns = variables), as the
 * reference's nsa_flow(X, k, w, mode) and its fit/transform estimator. It prepares the problem here —
 * centring, the mode, the start V0, the anchor — and hands it to the certified solver
 * (./certified.ts: one native call, L-BFGS-B or SPG on the box V ≥ 0, stopped by the gradient-mapping
 * certificate of lib/solver.ts), then reads the solution back as loadings V (p × k) and scores (n × k).
 *
 * Modes (what the solver minimizes, E = (1 − w)·F + w·O, O an orthogonality functional):
 *  - 'data':     V ≥ 0, F = ‖Xc − Xc·V·Vᵀ‖²/‖Xc‖² (the reconstruction error of Xc through V).
 *  - 'signed':   V = V⁺ − V⁻ with [V⁺ V⁻] ≥ 0, F as 'data' on V, O on the 2k lobes [V⁺ V⁻] (so that w buys
 *                disjoint supports), plus the lobe-overlap penalty overlapPenalty·2⟨V⁺, V⁻⟩/(‖V⁺‖² + ‖V⁻‖²).
 *  - 'anchored': V ≥ 0 close to an anchor A (p × m; default the top-k principal subspace of Xc), sign-blind:
 *                F = ‖V − QQᵀV‖²/‖V‖² (Q an orthonormal basis of span A) or mean 1 − cos²(vⱼ, aⱼ).
 * `mode: 'auto'` picks 'data' when X (as given, before centring) is non-negative, else 'signed'.
 */
import type { Matrix } from '../matrix.js';
import { checkMemory, float64Bytes } from '../memory.js';
import { invariantOrthogonalityDefect, svd } from '../ortho.js';
import { pca } from '../pca.js';
import type { AsyncOptions } from '../runtime.js';
import type { StopReason } from '../solver.js';
import { nmf, nmfSync, type NmfOptions, type NmfResult } from '../factorization/nmf.js';
import { didYouMean } from '../suggest.js';
import {
  asyncOptionSpecs,
  describeValue,
  expectIntact,
  expectMatrix,
  expectNonNegativeData,
  maxAbs,
  parseOptions,
  type OptionSpecs,
} from '../validate.js';
import type { ParsedMissing } from '../factorization/missing.js';
import {
  certifiedOptionSpecs,
  certifiedSolvers,
  fidelityMissingOptionSpecs,
  fidelityWeights,
  nsaEnergy,
  type FidelityMissingOptions,
  runCertifiedAsync,
  runCertifiedSync,
  type CertifiedOptions,
  type CertifiedProblem,
  type CertifiedProgress,
  type CertifiedRun,
  type OrthogonalityFunctional,
} from './certified.js';

export const fitModes = ['auto', 'data', 'signed', 'anchored'] as const;
export type FitMode = (typeof fitModes)[number];
export type ResolvedFitMode = Exclude<FitMode, 'auto'>;
export const fitInits = ['clamp', 'relax', 'nmf', 'random'] as const;
export type FitInit = (typeof fitInits)[number];

/**
 * Missing entries of X (`weights`, `mask`, `missing: 'nan'`, as for nmf; docs/nsa-flow-fit.md): the
 * fidelity counts the observed entries only, weighted; an entry of weight 0 may hold NaN.
 */
export interface NsaFlowFitOptions extends FidelityMissingOptions {
  /** Orthogonality weight in [0, 1] (default 0.5): 0 fits the data only, 1 orthogonality only. */
  w?: number;
  /** 'auto' (default: 'data' for non-negative X, else 'signed'), 'data', 'signed' or 'anchored'. */
  mode?: FitMode;
  /**
   * The start: 'clamp' (default; the PCA loadings with their negative entries set to 0 — in signed mode
   * split into V⁺ = max(L, 0), V⁻ = max(−L, 0)), 'relax' (clamp, then the w = 0 fit of the data — mode
   * 'data', or 'signed' in signed mode — whose result starts the w solve), 'nmf' (the normalized topics of NMF of X; non-negative X only), 'random' (seeded
   * U(0, 1), unit columns), or a given p × k Matrix (non-negative unless the mode is 'signed').
   */
  init?: FitInit | Matrix;
  /** Subtract each column's mean first, stored for transform() (default true). */
  center?: boolean;
  /** The orthogonality functional O (default as the certified solver). */
  orthogonality?: OrthogonalityFunctional;
  solver?: (typeof certifiedSolvers)[number];
  /** Stop when the certificate (scale-free gradient mapping) is at most this. */
  tolerance?: number;
  /** Stop when the energy's relative decrease over the solver's window is at most this (no stationarity claim). */
  plateauTolerance?: number;
  maxIterations?: number;
  /** L-BFGS memory (pairs kept). */
  memory?: number;
  /** Weight of the lobe-overlap penalty (signed mode). */
  overlapPenalty?: number;
  /** Anchored mode: 'pca' (default; the top-k principal subspace of Xc) or a given p × m Matrix. */
  anchor?: 'pca' | Matrix;
  /** Anchored mode: 'subspace' (default; distance of V to span A) or 'target' (mean 1 − cos² per column; A must be p × k). */
  anchorFidelity?: 'subspace' | 'target';
  /**
   * Disjoint supports: after the solve, each row of V keeps only its largest-|·| entry, and every column
   * is then re-fitted on its own support (see `consolidation` in the result). Default false.
   */
  consolidate?: boolean;
  /** Record a trace entry every this many iterations. */
  recordEvery?: number;
  /** Seed of init 'random' and of NMF's initialization (default 0). */
  seed?: number;
}

export interface NsaFlowFitSettings {
  k: number;
  w: number;
  /** The mode solved ('auto' resolved). */
  mode: ResolvedFitMode;
  /** The mode asked for. */
  requestedMode: FitMode;
  init: FitInit | 'given';
  center: boolean;
  orthogonality: OrthogonalityFunctional;
  solver: (typeof certifiedSolvers)[number];
  tolerance: number;
  plateauTolerance: number;
  maxIterations: number;
  memory: number;
  overlapPenalty: number;
  anchor: 'pca' | 'given' | null;
  anchorFidelity: 'subspace' | 'target';
  consolidate: boolean;
  recordEvery: number;
  seed: number;
}

export interface NsaFlowFitTraces {
  iteration: Float64Array;
  timeMs: Float64Array;
  energy: Float64Array;
  fidelity: Float64Array;
  orthogonality: Float64Array;
  certificate: Float64Array;
}

export interface FitConsolidation {
  /** F of the solve's V and of the consolidated V (the fidelity cost is their difference). */
  fidelityBefore: number;
  fidelityAfter: number;
  /** Reconstruction explained variance before and after. */
  explainedVarianceBefore: number;
  explainedVarianceAfter: number;
  /** Non-zero entries of V set to zero by the row rule. */
  entriesRemoved: number;
  /** Columns whose support was empty after the row rule and got their largest row back. */
  columnsRefilled: number;
  /** Power iterations of the re-fit (0 in signed mode: an exact SVD per column). */
  polishIterations: number;
  /**
   * The certificate of the consolidated V for the full problem (not restricted to the supports): how
   * far from stationary the disjointness made it; the re-fit itself is optimal on the supports.
   */
  certificate: number;
}

export interface NsaFlowFitResult {
  /** Loadings, p × k (signed mode: V⁺ − V⁻). */
  V: Matrix;
  /** Signed mode: the lobes V⁺, V⁻ ≥ 0 (p × k each) with V = V⁺ − V⁻; null otherwise. */
  lobes: { positive: Matrix; negative: Matrix } | null;
  /** (X − center)·V, n × k. */
  scores: Matrix;
  /** The column means subtracted (null when center is false). */
  center: Float64Array | null;
  /** E, F and O of the returned V, as the solver defines them for the mode. */
  energy: number;
  fidelity: number;
  orthogonality: number;
  /** Signed mode: 2⟨V⁺, V⁻⟩/(‖V⁺‖² + ‖V⁻‖²) (0 when the lobes do not overlap); 0 otherwise. */
  overlap: number;
  /** The invariant orthogonality defect of V (SPEC.md §1), comparable across modes and functionals. */
  defect: number;
  /** Fraction of the entries of V that are exactly 0. */
  sparsity: number;
  explainedVariance: {
    /** 1 − ‖Xc − Xc·V·Vᵀ‖²/‖Xc‖² (= 1 − fidelity in data and signed modes). */
    reconstruction: number;
    /** Variance of Xc captured by the column span of V (≥ reconstruction). */
    span: number;
    /** PCA's at the same k (the most any k columns can capture). */
    pca: number;
  };
  /** The solver's certificate at its solution (before consolidation, when consolidate is on). */
  certificate: number;
  stopReason: StopReason;
  iterations: number;
  evaluations: number;
  traces: NsaFlowFitTraces;
  warnings: string[];
  settings: NsaFlowFitSettings;
  /** init 'relax': the w = 0 solve that made the start. */
  relaxRun: { iterations: number; stopReason: StopReason; certificate: number; fidelity: number } | null;
  consolidation: FitConsolidation | null;
  /** (Xnew − center)·V for new rows of the same p variables. */
  transform(Xnew: Matrix): Matrix;
}

export interface NsaFlowFitProgress extends CertifiedProgress {
  /** 'relax' during the w = 0 solve of init 'relax', else 'fit'. */
  stage: 'relax' | 'fit';
}

// ---- option specs ----------------------------------------------------------------------------------

function checkInit(v: unknown, name: string): FitInit | Matrix {
  const allowed = `one of ${fitInits.map((s) => `'${s}'`).join(', ')} or a Matrix p×k`;
  if (typeof v === 'string') {
    if (!(fitInits as readonly string[]).includes(v)) {
      throw new RangeError(`Expected ${allowed} for ${name} but received ${describeValue(v)}${didYouMean(v, fitInits, (c) => `'${c}'`)}`);
    }
    return v as FitInit;
  }
  if (v === null || typeof v !== 'object') throw new TypeError(`Expected ${allowed} for ${name} but received ${describeValue(v)}`);
  return expectMatrix(v, name);
}

function checkAnchor(v: unknown, name: string): 'pca' | Matrix {
  const allowed = `'pca' or a Matrix p×m`;
  if (typeof v === 'string') {
    if (v !== 'pca') throw new RangeError(`Expected ${allowed} for ${name} but received ${describeValue(v)}`);
    return v;
  }
  if (v === null || typeof v !== 'object') throw new TypeError(`Expected ${allowed} for ${name} but received ${describeValue(v)}`);
  return expectMatrix(v, name);
}

/** The options of nsaFlowFit (also the CLI's `fit` flags, less the matrices). */
export const nsaFlowFitOptionSpecs = {
  w: { kind: 'number', min: 0, max: 1, default: 0.5, description: 'orthogonality weight (0: fit the data only)' },
  mode: { kind: 'enum', values: fitModes, default: 'auto', description: "what V fits ('auto': data for non-negative X, else signed)" },
  init: { kind: 'custom', description: "'clamp', 'relax', 'nmf', 'random' or a Matrix p×k", check: checkInit, default: 'clamp' },
  center: { kind: 'boolean', default: true, description: "subtract each column's mean (kept for transform)" },
  orthogonality: certifiedOptionSpecs.orthogonality,
  solver: certifiedOptionSpecs.solver,
  tolerance: certifiedOptionSpecs.tolerance,
  plateauTolerance: certifiedOptionSpecs.plateauTolerance,
  maxIterations: certifiedOptionSpecs.maxIterations,
  memory: certifiedOptionSpecs.memory,
  overlapPenalty: certifiedOptionSpecs.overlapPenalty,
  anchor: { kind: 'custom', description: "'pca' or a Matrix p×m (anchored mode)", check: checkAnchor, default: 'pca' },
  anchorFidelity: { kind: 'enum', values: ['subspace', 'target'], default: 'subspace', description: 'anchored fidelity: distance to span A, or mean 1 − cos² per column' },
  consolidate: { kind: 'boolean', default: false, description: 'disjoint column supports: each row keeps its largest entry, then a re-fit' },
  recordEvery: certifiedOptionSpecs.recordEvery,
  seed: { kind: 'number', integer: true, min: 0, max: Number.MAX_SAFE_INTEGER, default: 0, description: "seed of init 'random' and of NMF" },
} as const satisfies OptionSpecs;

/** The API's options: the CLI's, plus the missing-value options (the CLI does not take them yet). */
const syncSpecs = { ...nsaFlowFitOptionSpecs, ...fidelityMissingOptionSpecs } as const satisfies OptionSpecs;
const asyncSpecs = { ...syncSpecs, ...asyncOptionSpecs } as const satisfies OptionSpecs;

type Parsed = Required<Omit<NsaFlowFitOptions, 'init' | 'anchor' | keyof FidelityMissingOptions>> & { init: FitInit | Matrix; anchor: 'pca' | Matrix } & ParsedMissing &
  AsyncOptions<NsaFlowFitProgress>;

// ---- preparation -----------------------------------------------------------------------------------

interface Prepared {
  context: string;
  o: Parsed;
  n: number;
  p: number;
  k: number;
  mode: ResolvedFitMode;
  /** (X − center)/s (or X/s), n × p, s its largest magnitude: what the solver fits. */
  Xc: Matrix;
  center: Float64Array | null;
  totalVariance: number;
  pcaExplained: number;
  /** p × k (signed: p × 2k = [V⁺ V⁻]); null for init 'nmf', whose NMF runs with the solve. */
  start: Matrix | null;
  /** X as given (init 'nmf' factors it). */
  X: Matrix;
  /** Anchored mode: the anchor (p × m) and an orthonormal basis of its span. */
  anchor: Matrix | null;
  anchorBasis: Matrix | null;
  solverOptions: CertifiedOptions;
  /**
   * Missing entries: the weights ω of X's entries (n × p, 0 = missing; Xc is 0 there) and each row's
   * D = p/Σⱼ ωᵢⱼ (the scores' rescaling, nsa_energy.hpp); null when every entry is observed with weight 1.
   */
  weights: Float64Array | null;
  rowScale: Float64Array | null;
  /** Warnings of the preparation (the weighted principal fit of missing entries). */
  warnings: string[];
  /** Whether X's observed entries are all ≥ 0. */
  nonNegativeX: boolean;
  /** PCA's loadings of Xc (with missing entries: the principal fit's start). */
  pcaLoadings: Matrix;
}

function prepare(Xarg: unknown, kArg: unknown, options: unknown, context: string, specs: OptionSpecs): Prepared {
  const o = parseOptions<Parsed>(specs, options, context);
  // With missing-value options: a snapshot of X whose observed entries are finite (NaN allowed where
  // missing) and the weights ω (undefined when all are 1: then everything below is the plain fit).
  const weighted = fidelityWeights(Xarg, 'X', o, context);
  const X = weighted ? weighted.data : expectMatrix(Xarg, 'X');
  const omega = weighted?.weights ?? null;
  const { rows: n, cols: p } = X;
  const r = Math.min(n, p);
  const kWhat = `an integer in [1, ${r}] (min(rows, cols) of X)`;
  if (typeof kArg !== 'number' || Number.isNaN(kArg)) throw new TypeError(`Expected ${kWhat} for k but received ${describeValue(kArg)}`);
  if (!Number.isInteger(kArg) || kArg < 1 || kArg > r) throw new RangeError(`Expected ${kWhat} for k but received ${describeValue(kArg)}`);
  const k = kArg;
  if (n < 2 && o.center) throw new RangeError(`Expected at least 2 rows in X when options.center of ${context} is true (one centred row is zero) but received 1`);
  // Xc, its PCA (U n×r, V p×r), V and its lobes, the scores, and the solver's p×2k workspaces (about 12).
  // With missing entries also the weights, ω∘Xc and the weighted residual (n × p each).
  checkMemory(float64Bytes(n * p * (omega ? 4 : 1) + n * r + p * r + 2 * n * k + 14 * p * 2 * k), `${context} on X (${n}×${p}) with k = ${k}`);

  const nonNegativeX = X.data.every((v, i) => v >= 0 || (omega !== null && omega[i] === 0));
  const mode: ResolvedFitMode = o.mode === 'auto' ? (nonNegativeX ? 'data' : 'signed') : o.mode;

  let center: Float64Array | null = null;
  const xc = new Float64Array(X.data);
  if (o.center && omega) {
    // The ω-weighted mean of each column's observed entries (for a 0/1 mask: their plain mean), the
    // centre that minimizes Σᵢ ωᵢⱼ(xᵢⱼ − cⱼ)²; a column with nothing observed has no mean.
    center = new Float64Array(p);
    const columnWeight = new Float64Array(p);
    for (let i = 0; i < n; i++) for (let j = 0; j < p; j++) columnWeight[j]! += omega[i * p + j]!;
    for (let j = 0; j < p; j++) {
      if (!(columnWeight[j]! > 0)) {
        throw new RangeError(`Expected an observed entry (nonzero weight) in every column of X for options.center of ${context} (a column is centred at the mean of its observed entries) but column ${j} has none`);
      }
    }
    for (let i = 0; i < n; i++) {
      for (let j = 0; j < p; j++) {
        const om = omega[i * p + j]!;
        if (om !== 0) center[j]! += (om / columnWeight[j]!) * X.data[i * p + j]!;
      }
    }
    for (let i = 0; i < n * p; i++) xc[i] = omega[i] === 0 ? 0 : xc[i]! - center[i % p]!;
  } else if (o.center) {
    center = new Float64Array(p);
    // Σ x/n rather than Σ x then /n: entries near the largest double do not overflow the sum.
    for (let i = 0; i < n; i++) for (let j = 0; j < p; j++) center[j]! += X.data[i * p + j]! / n;
    for (let i = 0; i < n; i++) for (let j = 0; j < p; j++) xc[i * p + j]! -= center[j]!;
  } else if (omega) {
    for (let i = 0; i < n * p; i++) if (omega[i] === 0) xc[i] = 0; // whatever a missing entry holds
  }
  // Every fidelity is invariant to the scale of X, so the solve and the measures work on Xc divided by
  // its largest magnitude (no overflow or underflow of ‖Xc‖² whatever the units); the scores and
  // transform() use X itself.
  const scale = maxAbs(xc);
  if (!Number.isFinite(scale)) {
    throw new RangeError(`Expected X whose centred entries are finite for ${context} but centring overflows a double; rescale X`);
  }
  if (!(scale > 0)) {
    throw new RangeError(`Expected X with some variance${o.center ? ' after centring' : ''} for ${context} but received ${o.center ? 'rows that are all equal' : 'a zero matrix'}`);
  }
  for (let i = 0; i < xc.length; i++) xc[i]! /= scale;
  const Xc: Matrix = { rows: n, cols: p, data: xc };
  const rowScale = omega && rowScales(omega, n, p);
  const totalVariance = omega ? weightedSumSquares(xc, omega) : sumSquares(xc);
  // Loadings of Xc; centring was done above, so PCA does not centre again.
  const principal = pca(Xc, k, { center: false });
  const base: PreparedBase = {
    context, o, n, p, k, mode, X, Xc, center, totalVariance, solverOptions: fitDefaults(o), weights: omega, rowScale, warnings: [], nonNegativeX,
    pcaLoadings: principal.loadings,
  };
  // Everything that depends on the loadings (the anchor, the start) is built and checked here, from
  // PCA's; with missing entries withPrincipal() rebuilds it from the principal fit of the observed
  // entries, which runs with the solve (on the solver's thread in the async form).
  const pp = withLoadings(base, principal.loadings, principal.explainedVarianceRatio.reduce((a, b) => a + b, 0));
  // Reading the options ran the caller's getters after X was read: X's buffer must be as validated.
  expectIntact([X.data, n * p, 'X.data']);
  return pp;
}

type PreparedBase = Omit<Prepared, 'pcaExplained' | 'start' | 'anchor' | 'anchorBasis'>;

/** The anchor and the start from the loadings L (PCA's, or the principal fit's with missing entries). */
function withLoadings(base: PreparedBase, L: Matrix, pcaExplained: number): Prepared {
  const { context, o, p, k, mode, X, nonNegativeX } = base;
  // The anchor (anchored mode only; given elsewhere it would be ignored, so it is refused).
  let anchor: Matrix | null = null;
  let anchorBasis: Matrix | null = null;
  if (typeof o.anchor === 'object' && mode !== 'anchored') {
    throw new RangeError(`Expected no options.anchor matrix for ${context} in mode '${mode}' (an anchor is used by mode 'anchored' only) but received ${o.anchor.rows}×${o.anchor.cols}`);
  }
  if (mode === 'anchored') {
    anchor = o.anchor === 'pca' ? L : o.anchor;
    if (anchor.rows !== p) throw new RangeError(`Expected ${p} rows (one per column of X) in options.anchor of ${context} but received ${anchor.rows}×${anchor.cols}`);
    if (o.anchorFidelity === 'target' && anchor.cols !== k) {
      throw new RangeError(`Expected ${p}×${k} (one target column per component) for options.anchor of ${context} with anchorFidelity 'target' but received ${anchor.rows}×${anchor.cols}`);
    }
    if (o.anchorFidelity === 'target') {
      for (let c = 0; c < k; c++) {
        if (columnNorm(anchor, c) === 0) throw new RangeError(`Expected non-zero columns in options.anchor of ${context} with anchorFidelity 'target' (each is a column's target direction) but column ${c} is zero`);
      }
    }
    anchorBasis = orthonormalBasis(anchor);
    if (anchorBasis.cols === 0) throw new RangeError(`Expected a non-zero options.anchor for ${context} but received a matrix whose columns are all 0`);
  }
  const start = initialStart(o, X, L, mode, p, k, nonNegativeX, context);
  return { ...base, pcaExplained, start, anchor, anchorBasis };
}

/**
 * Missing entries: PCA's loadings are those of Xc with the missing entries at their column's mean; the
 * principal subspace of the observed entries is the unconstrained w = 0 fit of the weighted fidelity,
 * started there. Its V is the PCA that the start, the anchor and explainedVariance.pca use.
 */
function principalProblem(pp: Prepared): [CertifiedProblem, CertifiedOptions] {
  return [{ mode: 'data', Y0: pp.pcaLoadings, X: pp.Xc, weights: pp.weights! }, { ...pp.solverOptions, w: 0, nonnegative: false }];
}

function withPrincipal(pp: Prepared, run: CertifiedRun): Prepared {
  const next = withLoadings(pp, withPcaSigns(run.Y), 1 - run.fidelity);
  if (run.stopReason !== 'gradMap') {
    next.warnings = [...pp.warnings, `principal fit of the observed entries: stopped by ${run.stopReason} at certificate ${run.certificate.toExponential(2)}`];
  }
  return next;
}

/** The certified solver's options of the w solve. */
function fitDefaults(o: Parsed): CertifiedOptions {
  return {
    w: o.w,
    orthogonality: o.orthogonality,
    solver: o.solver,
    nonnegative: true,
    tolerance: o.tolerance,
    plateauTolerance: o.plateauTolerance,
    maxIterations: o.maxIterations,
    memory: o.memory,
    overlapPenalty: o.overlapPenalty,
    anchor: o.anchorFidelity,
    recordEvery: o.recordEvery,
  };
}

/** PCA's sign convention on V (p × k), in place: each column's largest-|·| entry positive. */
function withPcaSigns(V: Matrix): Matrix {
  const { rows: p, cols: k } = V;
  for (let c = 0; c < k; c++) {
    let big = 0;
    for (let j = 0; j < p; j++) if (Math.abs(V.data[j * k + c]!) > Math.abs(big)) big = V.data[j * k + c]!;
    if (big < 0) for (let j = 0; j < p; j++) V.data[j * k + c] = -V.data[j * k + c]!;
  }
  return V;
}

/** The start of the solve (p × k; signed: p × 2k, the lobes side by side). */
function initialStart(o: Parsed, X: Matrix, L: Matrix, mode: ResolvedFitMode, p: number, k: number, nonNegativeX: boolean, context: string): Matrix | null {
  const init = o.init;
  let V: Matrix;
  if (typeof init === 'object') {
    if (init.rows !== p || init.cols !== k) throw new RangeError(`Expected a ${p}×${k} Matrix (p × k) for options.init of ${context} but received ${init.rows}×${init.cols}`);
    if (mode !== 'signed') expectNonNegativeData(init.data, `options.init of ${context} (mode '${mode}' keeps V ≥ 0)`, k);
    if (init.data.every((v) => v === 0)) throw new RangeError(`Expected a non-zero Matrix for options.init of ${context} but received all zeros`);
    V = init;
  } else if (init === 'clamp' || init === 'relax') {
    V = L; // signed entries: clamped or split below
  } else if (init === 'nmf') {
    if (!nonNegativeX) {
      const at = X.data.findIndex((v) => v < 0);
      throw new RangeError(
        `Expected non-negative X for options.init 'nmf' of ${context} (NMF factors X as given, before centring) but received ${X.data[at]} at [${Math.floor(at / p)}, ${at % p}]`,
      );
    }
    return null; // NMF runs with the solve (on a worker thread in the async form): see nmfStart
  } else {
    const cols = mode === 'signed' ? 2 * k : k;
    const data = new Float64Array(p * cols);
    const rng = new SeededUniform(o.seed);
    for (let i = 0; i < data.length; i++) data[i] = rng.next();
    const Z = { rows: p, cols, data };
    normalizeColumns(Z);
    return Z;
  }
  if (mode === 'signed') return splitLobes(V);
  if (typeof init === 'object') return { rows: p, cols: k, data: new Float64Array(V.data) };
  // clamp: PCA's sign convention makes each column's largest-|·| entry positive, so no column is zeroed.
  return { rows: p, cols: k, data: V.data.map((v) => (v > 0 ? v : 0)) };
}

// ---- solving ---------------------------------------------------------------------------------------

/** init 'nmf': NNDSVD start (deterministic), 200 HALS iterations; H (k × p) holds k non-negative profiles of the variables. */
const nmfInitOptions: NmfOptions = { init: 'nndsvd', solver: 'hals', maxIterations: 200 };

/** The start from NMF's H: its rows as unit columns (signed: as V⁺, with V⁻ = 0). */
function nmfStart(pp: Prepared, f: NmfResult): Matrix {
  const { p, k } = pp;
  const V: Matrix = { rows: p, cols: k, data: new Float64Array(p * k) };
  for (let c = 0; c < k; c++) for (let j = 0; j < p; j++) V.data[j * k + c] = f.H.data[c * p + j]!;
  for (let c = 0; c < k; c++) {
    if (columnNorm(V, c) === 0) {
      throw new RangeError(`Expected NMF of X with rank ${k} to give ${k} non-zero topics for options.init 'nmf' of ${pp.context} but topic ${c} is zero; lower k or use another init`);
    }
  }
  normalizeColumns(V);
  return pp.mode === 'signed' ? splitLobes(V) : V;
}

/** The problem of the w solve from a start. */
function problemFrom(pp: Prepared, start: Matrix): CertifiedProblem {
  return pp.mode === 'anchored' ? { mode: 'anchored', Y0: start, X0: pp.anchor! } : { mode: pp.mode, Y0: start, X: pp.Xc, ...weightsOf(pp) };
}

/** The weights of the data fidelity, when some entry is missing or weighted. */
function weightsOf(pp: Prepared): { weights?: Float64Array } {
  return pp.weights ? { weights: pp.weights } : {};
}

/** NMF's options of init 'nmf': X's weights (NMF of the observed entries). */
function nmfStartOptions(pp: Prepared): NmfOptions {
  return { ...nmfInitOptions, seed: pp.o.seed, ...(pp.weights ? { weights: { rows: pp.n, cols: pp.p, data: pp.weights } } : {}) };
}

/**
 * init 'relax': the w = 0 solve of the data's own fit from the clamped start: mode 'data' (signed:
 * 'signed') on Xc, also in anchored mode, whose own w = 0 problem is degenerate (every non-negative V
 * inside the anchor's span fits it exactly, rank-one ones included, where O has its maximum).
 */
function relaxProblem(pp: Prepared, start: Matrix): [CertifiedProblem, CertifiedOptions] {
  const problem: CertifiedProblem = pp.mode === 'anchored' ? { mode: 'data', Y0: start, X: pp.Xc, ...weightsOf(pp) } : problemFrom(pp, start);
  return [problem, { ...pp.solverOptions, w: 0 }];
}

function solveSync(pp0: Prepared): { pp: Prepared; run: CertifiedRun; relax: CertifiedRun | null } {
  const pp = pp0.weights ? withPrincipal(pp0, runCertifiedSync(...principalProblem(pp0))) : pp0;
  let start = pp.start ?? nmfStart(pp, nmfSync(pp.X, pp.k, nmfStartOptions(pp)));
  let relax: CertifiedRun | null = null;
  if (pp.o.init === 'relax') {
    relax = runCertifiedSync(...relaxProblem(pp, start));
    start = relax.Y;
  }
  return { pp, run: runCertifiedSync(problemFrom(pp, start), pp.solverOptions), relax };
}

async function solveAsync(pp0: Prepared): Promise<{ pp: Prepared; run: CertifiedRun; relax: CertifiedRun | null }> {
  const { signal, onProgress, progressIntervalMs } = pp0.o;
  const pp = pp0.weights ? withPrincipal(pp0, await runCertifiedAsync(...principalProblem(pp0), { signal })) : pp0;
  const forward = (stage: 'relax' | 'fit') => onProgress && ((r: CertifiedProgress) => onProgress({ ...r, stage }));
  let start = pp.start ?? nmfStart(pp, await nmf(pp.X, pp.k, { ...nmfStartOptions(pp), signal }));
  let relax: CertifiedRun | null = null;
  if (pp.o.init === 'relax') {
    relax = await runCertifiedAsync(...relaxProblem(pp, start), { signal, onProgress: forward('relax'), progressIntervalMs });
    start = relax.Y;
  }
  const run = await runCertifiedAsync(problemFrom(pp, start), pp.solverOptions, { signal, onProgress: forward('fit'), progressIntervalMs });
  return { pp, run, relax };
}

// ---- the result ------------------------------------------------------------------------------------

function finish(pp: Prepared, run: CertifiedRun, relax: CertifiedRun | null): NsaFlowFitResult {
  const { p, k, mode, Xc, o } = pp;
  const warnings = [...pp.warnings, ...(relax?.warnings.map((w) => `relax: ${w}`) ?? []), ...run.warnings];
  let V: Matrix;
  let lobes: NsaFlowFitResult['lobes'] = null;
  if (mode === 'signed') {
    const pos = new Float64Array(p * k);
    const neg = new Float64Array(p * k);
    const data = new Float64Array(p * k);
    for (let j = 0; j < p; j++) {
      for (let c = 0; c < k; c++) {
        pos[j * k + c] = run.Y.data[j * 2 * k + c]!;
        neg[j * k + c] = run.Y.data[j * 2 * k + k + c]!;
        data[j * k + c] = pos[j * k + c]! - neg[j * k + c]!;
      }
    }
    V = { rows: p, cols: k, data };
    lobes = { positive: { rows: p, cols: k, data: pos }, negative: { rows: p, cols: k, data: neg } };
  } else {
    V = { rows: p, cols: k, data: new Float64Array(run.Y.data) };
  }
  // The anchored energy does not depend on V's overall scale (F and O are both scale invariant): V is
  // returned at the scale that minimizes the reconstruction error of Xc through V, so that the scores
  // and the explained variance mean what they mean in the other modes.
  if (mode === 'anchored') scaleForReconstruction(pp, V);

  let energy = run.energy;
  let fidelity = run.fidelity;
  let orthogonality = run.orthogonality;
  let overlap = run.overlap;
  let consolidation: FitConsolidation | null = null;
  if (o.consolidate) {
    const before = { fidelity: run.fidelity, explained: 1 - reconstructionError(pp, V) };
    const c = consolidate(pp, V, warnings);
    if (mode === 'signed') {
      // The canonical split of a consolidated V: each entry in one lobe only, so the lobes do not overlap.
      lobes = {
        positive: { rows: p, cols: k, data: V.data.map((v) => (v > 0 ? v : 0)) },
        negative: { rows: p, cols: k, data: V.data.map((v) => (v < 0 ? -v : 0)) },
      };
    }
    // The solver's own definitions of the terms, at the consolidated point.
    const at = nsaEnergy(lobes ? splitLobes(V) : V, {
      mode,
      ...(mode === 'anchored' ? { X0: pp.anchor! } : { X: Xc, ...(pp.weights ? { weights: { rows: pp.n, cols: p, data: pp.weights } } : {}) }),
      w: o.w,
      orthogonality: o.orthogonality,
      overlapPenalty: o.overlapPenalty,
      anchor: o.anchorFidelity,
    });
    ({ energy, fidelity, orthogonality, overlap } = at);
    consolidation = {
      fidelityBefore: before.fidelity,
      fidelityAfter: fidelity,
      explainedVarianceBefore: before.explained,
      explainedVarianceAfter: 1 - reconstructionError(pp, V),
      certificate: at.certificate,
      ...c,
    };
  }

  const center = pp.center;
  const loadings: Matrix = { rows: p, cols: k, data: new Float64Array(V.data) };
  const transform = (Xnew: Matrix): Matrix => {
    const m = expectMatrix(Xnew, 'Xnew');
    if (m.cols !== p) throw new RangeError(`Expected a matrix with ${p} columns (the variables V was fitted on) for Xnew but received ${m.rows}×${m.cols}`);
    checkMemory(float64Bytes(m.rows, k), `the scores of Xnew (${m.rows}×${k})`);
    return project(m, center, loadings);
  };
  let zeros = 0;
  for (const v of V.data) if (v === 0) zeros++;
  return {
    V,
    lobes,
    scores: pp.weights ? weightedScores(pp.X, center, pp.weights, pp.rowScale!, V) : project(pp.X, center, V),
    center,
    energy,
    fidelity,
    orthogonality,
    overlap,
    defect: invariantOrthogonalityDefect(V),
    sparsity: zeros / V.data.length,
    explainedVariance: {
      reconstruction: 1 - reconstructionError(pp, V),
      span: pp.weights ? 1 - reconstructionError(pp, orthonormalBasis(V)) : spanExplained(Xc, V, pp.totalVariance),
      pca: pp.pcaExplained,
    },
    certificate: run.certificate,
    stopReason: run.stopReason,
    iterations: run.iterations,
    evaluations: run.evaluations,
    traces: run.traces,
    warnings,
    settings: {
      k,
      w: o.w,
      mode,
      requestedMode: o.mode,
      init: typeof o.init === 'object' ? 'given' : o.init,
      center: o.center,
      orthogonality: o.orthogonality,
      solver: o.solver,
      tolerance: o.tolerance,
      plateauTolerance: o.plateauTolerance,
      maxIterations: o.maxIterations,
      memory: o.memory,
      overlapPenalty: o.overlapPenalty,
      anchor: mode === 'anchored' ? (o.anchor === 'pca' ? 'pca' : 'given') : null,
      anchorFidelity: o.anchorFidelity,
      consolidate: o.consolidate,
      recordEvery: o.recordEvery,
      seed: o.seed,
    },
    relaxRun: relax && { iterations: relax.iterations, stopReason: relax.stopReason, certificate: relax.certificate, fidelity: relax.fidelity },
    consolidation,
    transform,
  };
}

/**
 * NSA-Flow fitted on X (n × p, rows = observations) with k components, on a worker thread: loadings
 * V (p × k), scores, the certificate and a transform() for new rows. See the module comment for the
 * modes and NsaFlowFitOptions for the options; onProgress gets {stage, iteration, energy, certificate}.
 */
export function nsaFlowFit(X: Matrix, k: number, options?: NsaFlowFitOptions & AsyncOptions<NsaFlowFitProgress>): Promise<NsaFlowFitResult> {
  let pp: Prepared;
  try {
    pp = prepare(X, k, options, 'nsaFlowFit()', asyncSpecs);
  } catch (err) {
    return Promise.reject(err);
  }
  return solveAsync(pp).then((s) => finish(s.pp, s.run, s.relax));
}

/** nsaFlowFit() on the calling thread (small problems). */
export function nsaFlowFitSync(X: Matrix, k: number, options?: NsaFlowFitOptions): NsaFlowFitResult {
  const pp = prepare(X, k, options, 'nsaFlowFitSync()', syncSpecs);
  const s = solveSync(pp);
  return finish(s.pp, s.run, s.relax);
}

// ---- consolidation: disjoint supports --------------------------------------------------------------

/**
 * Makes the supports of V's columns disjoint, in place (signed mode: after a varimax rotation): each
 * row keeps only its largest-|·| entry (ties: the first column); a column left without rows gets back
 * the row where it was largest relative to that row's kept entry. Then each column is re-fitted on its support S: it maximizes uᵀCu over unit u with
 * supp u ⊆ S (u ≥ 0 unless signed), where C is XcᵀXc (data, signed), QQᵀ (anchored 'subspace') or aⱼaⱼᵀ
 * (anchored 'target'). Disjoint unit columns are orthonormal, and for orthonormal V the reconstruction
 * error is 1 − Σⱼ uⱼᵀCuⱼ/‖Xc‖², so this re-fit is the best V with these supports: exact (the leading
 * singular vector of Xc restricted to S) in signed mode, and a monotone ascent in the non-negative modes
 * (u ← P₊(Cu)/‖P₊(Cu)‖, which never decreases the convex uᵀCu).
 */
function consolidate(pp: Prepared, V: Matrix, warnings: string[]): Pick<FitConsolidation, 'entriesRemoved' | 'columnsRefilled' | 'polishIterations'> {
  const { p, k, mode } = pp;
  // Signed mode's minimizers are the rotations of one basis (see docs/nsa-flow-fit.md): which one the solve
  // returned is arbitrary, so the rows are first made as simple as a rotation can make them.
  if (mode === 'signed') varimax(V);
  const original = new Float64Array(V.data);
  const owner = new Int32Array(p).fill(-1);
  for (let j = 0; j < p; j++) {
    let best = 0;
    for (let c = 0; c < k; c++) {
      const a = Math.abs(original[j * k + c]!);
      if (a > best) {
        best = a;
        owner[j] = c;
      }
    }
  }
  const rowsOf = (c: number) => {
    const out: number[] = [];
    for (let j = 0; j < p; j++) if (owner[j] === c) out.push(j);
    return out;
  };
  let columnsRefilled = 0;
  for (let c = 0; c < k; c++) {
    if (rowsOf(c).length > 0) continue;
    // The row where column c is largest relative to the entry its owner keeps, from an owner that has rows to spare.
    let pick = -1;
    let ratio = 0;
    for (let j = 0; j < p; j++) {
      const o = owner[j]!;
      if (o < 0 || rowsOf(o).length < 2) continue;
      const r = Math.abs(original[j * k + c]!) / Math.abs(original[j * k + o]!);
      if (r > ratio) {
        ratio = r;
        pick = j;
      }
    }
    if (pick < 0) {
      warnings.push(`consolidate: column ${c} has no entry it could keep and stays zero`);
      continue;
    }
    owner[pick] = c;
    columnsRefilled++;
  }
  let entriesRemoved = 0;
  for (let j = 0; j < p; j++) {
    for (let c = 0; c < k; c++) {
      if (c !== owner[j] && original[j * k + c] !== 0) {
        V.data[j * k + c] = 0;
        entriesRemoved++;
      }
    }
  }
  let polishIterations = 0;
  for (let c = 0; c < k; c++) {
    const S = rowsOf(c);
    if (S.length === 0) continue;
    const u = Float64Array.from(S, (j) => original[j * k + c]!);
    let fitted: Float64Array;
    if (mode === 'signed') {
      fitted = leadingRightSingularVector(pp.Xc, S);
      // Keep the orientation of the solve's column (the sign of a singular vector is arbitrary).
      let dot = 0;
      for (let i = 0; i < S.length; i++) dot += fitted[i]! * u[i]!;
      if (dot < 0) fitted = fitted.map((x) => -x);
    } else {
      const apply = restrictedOperator(pp, S, c);
      const r = projectedPowerIteration(apply, u.map((x) => (x > 0 ? x : 0)));
      fitted = r.u;
      polishIterations += r.iterations;
    }
    for (let i = 0; i < S.length; i++) V.data[S[i]! * k + c] = fitted[i]!;
  }
  if (mode === 'anchored') scaleForReconstruction(pp, V);
  return { entriesRemoved, columnsRefilled, polishIterations };
}

/**
 * Rotates V (p × k) in place by the orthogonal R that maximizes Kaiser's varimax criterion, the
 * variance of the squared loadings within each column (Kaiser 1958; the SVD iteration of
 * R ← UWᵀ with B = Vᵀ(Λ³ − Λ·diag(ΣΛ²)/p) = USWᵀ, Λ = VR, until tr S stops growing by 1e-10). A
 * rotation leaves V·Vᵀ, and so the signed fidelity, unchanged; it concentrates each row on fewer
 * columns. Each column is then oriented so that its largest-magnitude entry is positive.
 */
function varimax(V: Matrix): void {
  const { rows: p, cols: k } = V;
  if (k < 2) return;
  const times = (A: Float64Array, R: Float64Array): Float64Array => {
    const out = new Float64Array(p * k);
    for (let j = 0; j < p; j++) for (let a = 0; a < k; a++) for (let b = 0; b < k; b++) out[j * k + b]! += A[j * k + a]! * R[a * k + b]!;
    return out;
  };
  let R = new Float64Array(k * k);
  for (let i = 0; i < k; i++) R[i * k + i] = 1;
  let criterion = 0;
  for (let iteration = 0; iteration < 500; iteration++) {
    const L = times(V.data, R);
    const columnSquares = new Float64Array(k);
    for (let j = 0; j < p; j++) for (let c = 0; c < k; c++) columnSquares[c]! += L[j * k + c]! ** 2;
    const B = new Float64Array(k * k);
    for (let j = 0; j < p; j++) {
      for (let b = 0; b < k; b++) {
        const l = L[j * k + b]!;
        const t = l * l * l - (l * columnSquares[b]!) / p;
        for (let a = 0; a < k; a++) B[a * k + b]! += V.data[j * k + a]! * t;
      }
    }
    const { U, S, V: W } = svd({ rows: k, cols: k, data: B });
    R = new Float64Array(k * k);
    for (let a = 0; a < k; a++) for (let b = 0; b < k; b++) for (let c = 0; c < k; c++) R[a * k + b]! += U.data[a * k + c]! * W.data[b * k + c]!;
    const next = S.reduce((x, y) => x + y, 0);
    if (!(next > criterion * (1 + 1e-10))) break;
    criterion = next;
  }
  const rotated = times(V.data, R);
  for (let c = 0; c < k; c++) {
    let big = 0;
    for (let j = 0; j < p; j++) if (Math.abs(rotated[j * k + c]!) > Math.abs(big)) big = rotated[j * k + c]!;
    if (big < 0) for (let j = 0; j < p; j++) rotated[j * k + c] = -rotated[j * k + c]!;
  }
  V.data.set(rotated);
}

/** u ↦ (C·u) restricted to the rows S, for the re-fit of column c. */
function restrictedOperator(pp: Prepared, S: number[], c: number): (u: Float64Array) => Float64Array {
  const { p } = pp;
  if (pp.mode === 'anchored') {
    if (pp.o.anchorFidelity === 'target') {
      const a = Float64Array.from(S, (j) => pp.anchor!.data[j * pp.anchor!.cols + c]!);
      return (u) => {
        let d = 0;
        for (let i = 0; i < S.length; i++) d += a[i]! * u[i]!;
        return a.map((x) => x * d);
      };
    }
    const Q = pp.anchorBasis!;
    const m = Q.cols;
    return (u) => {
      const t = new Float64Array(m);
      for (let i = 0; i < S.length; i++) for (let r = 0; r < m; r++) t[r]! += Q.data[S[i]! * m + r]! * u[i]!;
      return Float64Array.from(S, (j) => {
        let s = 0;
        for (let r = 0; r < m; r++) s += Q.data[j * m + r]! * t[r]!;
        return s;
      });
    };
  }
  const { n } = pp;
  const X = pp.Xc.data;
  return (u) => {
    const t = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      let s = 0;
      for (let q = 0; q < S.length; q++) s += X[i * p + S[q]!]! * u[q]!;
      t[i] = s;
    }
    return Float64Array.from(S, (j) => {
      let s = 0;
      for (let i = 0; i < n; i++) s += X[i * p + j]! * t[i]!;
      return s;
    });
  };
}

/**
 * Maximizes uᵀCu over unit u ≥ 0 (C positive semidefinite, given as u ↦ Cu) from u0: each step takes
 * the maximizer of the linearization, P₊(Cu)/‖P₊(Cu)‖, which for a convex objective never decreases it.
 * Stops when the objective's relative increase is below 1e-12 (or after 1000 steps: it runs on the
 * calling thread).
 */
function projectedPowerIteration(apply: (u: Float64Array) => Float64Array, u0: Float64Array): { u: Float64Array; iterations: number } {
  let u = normalized(u0);
  if (u === null) {
    // A column whose kept entries were all negative cannot happen for V ≥ 0; start uniform then.
    u = normalized(new Float64Array(u0.length).fill(1))!;
  }
  let value = dot(u, apply(u));
  let iterations = 0;
  for (; iterations < 1000; iterations++) {
    const Cu = apply(u);
    const next = normalized(Cu.map((x) => (x > 0 ? x : 0)));
    if (next === null) break;
    const nextValue = dot(next, apply(next));
    if (!(nextValue > value * (1 + 1e-12))) {
      if (nextValue >= value) u = next;
      iterations++;
      break;
    }
    u = next;
    value = nextValue;
  }
  return { u, iterations };
}

/** The leading right singular vector of Xc's columns S (unit; the best signed column on S). */
function leadingRightSingularVector(Xc: Matrix, S: number[]): Float64Array {
  const n = Xc.rows;
  const sub = new Float64Array(n * S.length);
  for (let i = 0; i < n; i++) for (let q = 0; q < S.length; q++) sub[i * S.length + q] = Xc.data[i * Xc.cols + S[q]!]!;
  if (sub.every((x) => x === 0)) return new Float64Array(S.length).fill(1 / Math.sqrt(S.length));
  const { V } = svd({ rows: n, cols: S.length, data: sub });
  return Float64Array.from(S, (_, q) => V.data[q * V.cols]!);
}

// ---- measures ------------------------------------------------------------------------------------

/**
 * ‖Xc − Xc·V·Vᵀ‖²/‖Xc‖², from the residual itself (no cancellation when it is small); with missing
 * entries the weighted fidelity Σ ω(Xc − T·Vᵀ)²/Σ ω·Xc² with the scores T = D·(ω∘Xc)·V (nsa_energy.hpp).
 */
function reconstructionError(pp: Prepared, V: Matrix): number {
  const { Xc, totalVariance: total } = pp;
  const { rows: n, cols: p } = Xc;
  const k = V.cols;
  const omega = pp.weights;
  const M = omega ? weightedScores(Xc, null, omega, pp.rowScale!, V) : project(Xc, null, V);
  let r2 = 0;
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < p; j++) {
      let s = 0;
      for (let c = 0; c < k; c++) s += M.data[i * k + c]! * V.data[j * k + c]!;
      const d = Xc.data[i * p + j]! - s;
      r2 += omega ? omega[i * p + j]! * d * d : d * d;
    }
  }
  return r2 / total;
}

/** Share of ‖Xc‖² in the column span of V: ‖Xc·Q‖²/‖Xc‖², Q an orthonormal basis of span V. */
function spanExplained(Xc: Matrix, V: Matrix, total: number): number {
  const Q = orthonormalBasis(V);
  if (Q.cols === 0) return 0;
  return sumSquares(project(Xc, null, Q).data) / total;
}

/**
 * Multiplies V by the one factor that minimizes ‖Xc − Xc·V·Vᵀ‖² (t = ‖XcV‖²/‖XcVVᵀ‖² for V·√t); with
 * missing entries the weighted error (the model T·Vᵀ scales by t: t = Σω·x·m/Σω·m², m = (T·Vᵀ)ᵢⱼ).
 */
function scaleForReconstruction(pp: Prepared, V: Matrix): void {
  const { Xc } = pp;
  if (pp.weights) {
    const omega = pp.weights;
    const T = weightedScores(Xc, null, omega, pp.rowScale!, V);
    const { rows: n, cols: p } = Xc;
    const k = V.cols;
    let xm = 0, mm = 0;
    for (let i = 0; i < n; i++) {
      for (let j = 0; j < p; j++) {
        const om = omega[i * p + j]!;
        if (om === 0) continue;
        let m = 0;
        for (let c = 0; c < k; c++) m += T.data[i * k + c]! * V.data[j * k + c]!;
        xm += om * Xc.data[i * p + j]! * m;
        mm += om * m * m;
      }
    }
    if (xm > 0 && mm > 0) {
      const s = Math.sqrt(xm / mm);
      for (let i = 0; i < V.data.length; i++) V.data[i]! *= s;
    }
    return;
  }
  const M = project(Xc, null, V);
  const k = V.cols;
  const G = gram(V);
  const H = gram(M);
  let a = 0;
  for (let i = 0; i < k * k; i++) a += G[i]! * H[i]!; // ‖M·Vᵀ‖² = ⟨MᵀM, VᵀV⟩
  const b = sumSquares(M.data);
  if (a > 0 && b > 0) {
    const s = Math.sqrt(b / a);
    for (let i = 0; i < V.data.length; i++) V.data[i]! *= s;
  }
}

/** (X − center)·V. */
function project(X: Matrix, center: Float64Array | null, V: Matrix): Matrix {
  const { rows: n, cols: p } = X;
  const k = V.cols;
  const out = new Float64Array(n * k);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < p; j++) {
      const x = X.data[i * p + j]! - (center ? center[j]! : 0);
      if (x === 0) continue;
      for (let c = 0; c < k; c++) out[i * k + c]! += x * V.data[j * k + c]!;
    }
  }
  return { rows: n, cols: k, data: out };
}

/**
 * The scores of rows with missing entries: D·(ω∘(X − center))·V, Dᵢ = p/Σⱼ ωᵢⱼ (nsa_energy.hpp), the
 * entries of weight 0 never read (they may hold NaN).
 */
function weightedScores(X: Matrix, center: Float64Array | null, omega: Float64Array, rowScale: Float64Array, V: Matrix): Matrix {
  const { rows: n, cols: p } = X;
  const k = V.cols;
  const out = new Float64Array(n * k);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < p; j++) {
      const om = omega[i * p + j]!;
      if (om === 0) continue;
      const x = om * (X.data[i * p + j]! - (center ? center[j]! : 0));
      for (let c = 0; c < k; c++) out[i * k + c]! += x * V.data[j * k + c]!;
    }
    for (let c = 0; c < k; c++) out[i * k + c]! *= rowScale[i]!;
  }
  return { rows: n, cols: k, data: out };
}

/** Dᵢ = p/Σⱼ ωᵢⱼ per row (0 for a row with nothing observed: its scores are 0). */
function rowScales(omega: Float64Array, n: number, p: number): Float64Array {
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    let s = 0;
    for (let j = 0; j < p; j++) s += omega[i * p + j]!;
    out[i] = s > 0 ? p / s : 0;
  }
  return out;
}

function weightedSumSquares(a: Float64Array, omega: Float64Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) if (omega[i] !== 0) s += omega[i]! * a[i]! * a[i]!;
  return s;
}

function gram(A: Matrix): Float64Array {
  const { rows, cols: k } = A;
  const G = new Float64Array(k * k);
  for (let i = 0; i < rows; i++) for (let a = 0; a < k; a++) for (let b = 0; b < k; b++) G[a * k + b]! += A.data[i * k + a]! * A.data[i * k + b]!;
  return G;
}

/**
 * An orthonormal basis of the column span of A (modified Gram–Schmidt, twice), dropping columns that
 * are dependent on the earlier ones to 1e-10 relative to their norm.
 */
function orthonormalBasis(A: Matrix): Matrix {
  const { rows: p, cols: m } = A;
  const basis: Float64Array[] = [];
  for (let c = 0; c < m; c++) {
    const v = Float64Array.from({ length: p }, (_, j) => A.data[j * m + c]!);
    const original = Math.sqrt(sumSquares(v));
    if (!(original > 0)) continue;
    for (let pass = 0; pass < 2; pass++) {
      for (const q of basis) {
        const d = dot(q, v);
        for (let j = 0; j < p; j++) v[j]! -= d * q[j]!;
      }
    }
    const norm = Math.sqrt(sumSquares(v));
    if (norm > 1e-10 * original) basis.push(v.map((x) => x / norm));
  }
  const data = new Float64Array(p * basis.length);
  basis.forEach((q, c) => q.forEach((x, j) => (data[j * basis.length + c] = x)));
  return { rows: p, cols: basis.length, data };
}

/** [max(V, 0)  max(−V, 0)]: the lobes of a signed p × k matrix, side by side (p × 2k). */
function splitLobes(V: Matrix): Matrix {
  const { rows: p, cols: k } = V;
  const Z = new Float64Array(p * 2 * k);
  for (let j = 0; j < p; j++) {
    for (let c = 0; c < k; c++) {
      const v = V.data[j * k + c]!;
      Z[j * 2 * k + c] = v > 0 ? v : 0;
      Z[j * 2 * k + k + c] = v < 0 ? -v : 0;
    }
  }
  return { rows: p, cols: 2 * k, data: Z };
}

function columnNorm(V: Matrix, c: number): number {
  let s = 0;
  for (let j = 0; j < V.rows; j++) s += V.data[j * V.cols + c]! ** 2;
  return Math.sqrt(s);
}

function normalizeColumns(V: Matrix): void {
  for (let c = 0; c < V.cols; c++) {
    const norm = columnNorm(V, c);
    if (norm > 0) for (let j = 0; j < V.rows; j++) V.data[j * V.cols + c]! /= norm;
  }
}

function normalized(u: Float64Array): Float64Array | null {
  const norm = Math.sqrt(sumSquares(u));
  return norm > 0 ? u.map((x) => x / norm) : null;
}

function dot(a: Float64Array, b: Float64Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]! * b[i]!;
  return s;
}

function sumSquares(a: Float64Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]! * a[i]!;
  return s;
}

/**
 * Uniform draws on [0, 1) from the project's generator (native/kernels/random.hpp: xoshiro256** seeded
 * through splitmix64, 53-bit doubles), so that init 'random' with a seed is the stream every native
 * initialization with that seed draws.
 */
export class SeededUniform {
  private readonly s: BigUint64Array;

  constructor(seed: number) {
    const s = new BigUint64Array(4);
    let x = BigInt.asUintN(64, BigInt(seed));
    for (let i = 0; i < 4; i++) {
      x = BigInt.asUintN(64, x + 0x9e3779b97f4a7c15n);
      let z = x;
      z = BigInt.asUintN(64, (z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n);
      z = BigInt.asUintN(64, (z ^ (z >> 27n)) * 0x94d049bb133111ebn);
      s[i] = z ^ (z >> 31n);
    }
    this.s = s;
  }

  next(): number {
    const s = this.s;
    const rotl = (v: bigint, k: bigint) => BigInt.asUintN(64, (v << k) | (v >> (64n - k)));
    const result = BigInt.asUintN(64, rotl(BigInt.asUintN(64, s[1]! * 5n), 7n) * 9n);
    const t = BigInt.asUintN(64, s[1]! << 17n);
    s[2]! ^= s[0]!;
    s[3]! ^= s[1]!;
    s[1]! ^= s[2]!;
    s[0]! ^= s[3]!;
    s[2]! ^= t;
    s[3] = rotl(s[3]!, 45n);
    return Number(result >> 11n) * 2 ** -53;
  }
}
