/**
 * The explicit NSA-Flow for one value of w: option specs, validation (all before native work), the
 * memory check, and the one native call (sync or async job). explicit.ts, path.ts and auto-w.ts build
 * the public functions on top of `runExplicit`.
 */
import type { StopReason } from '../solver.js';
import type { Matrix } from '../matrix.js';
import { diagnosticsOfSums, type ExplicitFlowDiagnostics, type RawResultSums } from './diagnostics.js';
import { NumericalError } from '../errors.js';
import { getMemoryLimit } from '../memory.js';
import { native, type CancelToken, type RawProgress } from '../native.js';
import { optimizerNames, optimizerStateBuffers, type OptimizerName, type stepOptimizers } from '../nsa-flow/optimizers.js';
import { nsaFlowOptionSpecs } from '../nsa-flow/solver.js';
import { retractionTypes, type RetractionType } from '../ortho.js';
import { callSync, productFlops, runJob, type AsyncOptions } from '../runtime.js';
import {
  asyncOptionSpecs,
  describeValue,
  expectFiniteData,
  expectFloat64Array,
  expectShapeInteger,
  isObjectArgument,
  parseOptions,
  readFields,
  shapeProduct,
  type OptionSpecs,
} from '../validate.js';

/**
 * The energies the flow can decrease (E is `total` in the traces, `bestEnergy`, and what the
 * certificate measures):
 * - 'energy' (default): E_w(Y) = (1 − w)·‖Y − X0‖²/‖X0‖² + w·O(Y), O the `orthogonality` functional
 *   (scale invariant, in [0, 1]); calibration-free, nothing is measured from the data.
 * - 'balanced': (1 − w)·‖Y − X0‖²/‖X0‖² + w·defect(Y)/d_ref, d_ref = max(defect(X0), defect(N(Y0))).
 * - 'reference': the reference's ½η‖Y − X0‖² + ¼c·defect(Y), η and c measured at the start (SPEC §6).
 */
export const flowWeightings = ['energy', 'balanced', 'reference'] as const;
export type FlowWeighting = (typeof flowWeightings)[number];

/**
 * O of the 'energy' weighting, each a function of YᵀY in [0, 1] (0 at its ideal, 1 for parallel columns):
 * 'gram' ‖YᵀY/tr − I/k‖²/(1 − 1/k) (0 iff YᵀY ∝ I), 'offDiagonal' (0 iff the columns are orthogonal),
 * 'meanCos2' (mean squared cosine between columns).
 */
export const orthogonalityFunctionals = ['gram', 'offDiagonal', 'meanCos2'] as const;
export type OrthogonalityName = (typeof orthogonalityFunctionals)[number];

/** The options the native flow takes, all filled in (this object is `settings` in every result). */
export interface NativeExplicitOptions {
  w: number;
  retraction: RetractionType;
  nsIterations: number;
  polarMethod: 'auto' | 'svd' | 'gram';
  nonnegativity: 'hard' | 'none';
  /** The energy the flow decreases (see flowWeightings). */
  weighting: FlowWeighting;
  /** O of the 'energy' weighting (native/kernels/orthogonality.hpp). */
  orthogonality: OrthogonalityName;
  /** Defect that counts as "fully non-orthogonal" in the balanced weighting; 0 = from the data. */
  orthogonalityReference: number;
  rescale: boolean;
  projectFullGradient: boolean;
  /** 'fast' (the plain step, fused) or any optimizer of the exact solver (lib/nsa-flow/optimizers.ts). */
  optimizer: OptimizerName;
  /** Base optimizer of 'lookahead'. */
  lookaheadBase: StepOptimizerName;
  learningRate: number;
  maxIterations: number;
  tolerance: number;
  windowSize: number;
  recordEvery: number;
  maxBacktracks: number;
  seed: number;
  /** Threads of the fused row-block kernels; 0 = the BLAS thread count in effect. */
  threads: number;
}

interface RawTraces {
  iteration: Float64Array;
  timeMs: Float64Array;
  fidelity: Float64Array;
  orthogonality: Float64Array;
  total: Float64Array;
  learningRate: Float64Array;
  backtracks: Float64Array;
}

export interface RawExplicitResult {
  Y: Float64Array;
  target: Float64Array;
  bestIteration: number;
  bestEnergy: number;
  startEnergy: number;
  iterations: number;
  stopReason: StopReason;
  convergence: 'gradientNorm' | 'energyWindow' | null;
  certificate: number;
  acceptedSteps: number;
  fidEta: number;
  cOrth: number;
  orthogonalityReference: number;
  scale: number;
  finalLearningRate: number;
  jittered: boolean;
  threads: number;
  retractionFallbacks: number;
  traces: RawTraces;
  summary: RawResultSums;
}

declare module '../native.js' {
  interface NativeBinding {
    explicitFlow(Y0: Float64Array, X0: Float64Array | null, p: number, k: number, options: NativeExplicitOptions): RawExplicitResult;
    explicitFlowAsync(
      Y0: Float64Array,
      X0: Float64Array | null,
      p: number,
      k: number,
      options: NativeExplicitOptions,
      token: CancelToken,
      onProgress: ((r: RawProgress) => void) | undefined,
      intervalMs: number,
    ): Promise<RawExplicitResult>;
  }
}

/** One progress record of a running flow (at most one per progressIntervalMs). */
export interface ExplicitFlowProgress {
  iteration: number;
  maxIterations: number;
  /** The weighted fidelity term ½η‖Y − X0‖² of the current iterate ((1 − w)‖Y − X0‖²/‖X0‖² for 'energy' and 'balanced'). */
  fidelity: number;
  /** The unweighted orthogonality measure of the current iterate: O(Y) for 'energy', defect(Y) otherwise. */
  orthogonality: number;
  energy: number;
  bestEnergy: number;
  learningRate: number;
}

export function mapProgress(r: RawProgress): ExplicitFlowProgress {
  const v = r.values;
  return {
    iteration: r.iteration,
    maxIterations: r.total,
    fidelity: v[0]!,
    orthogonality: v[1]!,
    energy: v[2]!,
    bestEnergy: v[3]!,
    learningRate: v[4]!,
  };
}

type StepOptimizerName = (typeof stepOptimizers)[number];

/** Option specs of one explicit-flow solve (w as a number; explicit.ts adds 'auto'). */
export const flowOptionSpecs = {
  retraction: { kind: 'enum', values: retractionTypes, default: 'softPolar', description: 'retraction R_w applied after each step' },
  nsIterations: { kind: 'number', integer: true, min: 0, max: 10_000, default: 5, description: 'Newton–Schulz iterations' },
  polarMethod: { kind: 'enum', values: ['auto', 'svd', 'gram'], default: 'auto', description: 'polar factor algorithm' },
  nonnegativity: { kind: 'enum', values: ['hard', 'none'], default: 'hard', description: 'non-negativity map N applied to every iterate' },
  weighting: {
    kind: 'enum',
    values: flowWeightings,
    default: 'energy',
    description: "the energy: 'energy' ((1 − w)·relative fidelity² + w·O, calibration-free), 'balanced' or the reference's",
  },
  orthogonality: {
    kind: 'enum',
    values: orthogonalityFunctionals,
    default: 'gram',
    description: "O of the 'energy' weighting: 'gram', 'offDiagonal' or 'meanCos2'",
  },
  orthogonalityReference: {
    kind: 'number',
    min: 0,
    default: 0,
    description: "defect counted as fully non-orthogonal by the 'balanced' weighting (0: max(defect(X0), defect(N(Y0))))",
  },
  rescale: { kind: 'boolean', default: true, description: 'work in units of the RMS of X0 (scale invariance)' },
  projectFullGradient: { kind: 'boolean', default: false, description: 'project fidelity + orthogonality gradient on the tangent space' },
  // The exact solver's optimizer names (lookahead's base included); the paper's 'fast' step by default.
  optimizer: { kind: 'enum', values: optimizerNames, default: 'fast', description: "step rule: 'fast' (plain step) or an optimizer" },
  lookaheadBase: nsaFlowOptionSpecs.lookaheadBase,
  learningRate: {
    kind: 'custom',
    description:
      "a finite number > 0 or 'default' (weighting 'energy': 0.01, a step in units of the relative energy; otherwise 1e-3 with non-negativity, 1 without, as the reference)",
    default: 'default',
    check: (v: unknown, name: string) => {
      if (v === 'default') return v;
      if (typeof v !== 'number') throw new TypeError(`Expected a finite number > 0 or 'default' for ${name} but received ${describeValue(v)}`);
      if (!(v > 0) || !Number.isFinite(v)) throw new RangeError(`Expected a finite number > 0 or 'default' for ${name} but received ${describeValue(v)}`);
      return v;
    },
  },
  maxIterations: { kind: 'number', integer: true, min: 0, max: 1e8, default: 500, description: 'iteration limit' },
  tolerance: {
    kind: 'number',
    min: 0,
    default: 1e-5,
    description: "relative gradient norm and relative energy range that stop the run; a certificate at or below it makes the stop 'gradMap'",
  },
  windowSize: { kind: 'number', integer: true, min: 2, max: 1e6, default: 5, description: 'energies in the stability window' },
  recordEvery: { kind: 'number', integer: true, min: 1, max: 1e8, default: 1, description: 'trace every n-th iteration' },
  maxBacktracks: { kind: 'number', integer: true, min: 0, max: 1000, default: 20, description: 'halvings toward the best iterate' },
  seed: { kind: 'number', integer: true, min: 0, max: Number.MAX_SAFE_INTEGER, default: 42, description: 'seed of the start jitter (missing X0)' },
  threads: { kind: 'number', integer: true, min: 0, max: 1024, default: 0, description: 'threads of the fused kernels (0: BLAS threads)' },
} as const satisfies OptionSpecs;

export type FlowSettingsInput = Partial<Omit<NativeExplicitOptions, 'w' | 'learningRate'>> & { learningRate?: number | 'default' };

/** What decides a run's memory: the retraction (SVD scratch) and the optimizer's state. */
export interface MemoryPlan {
  retraction: RetractionType;
  optimizer?: OptimizerName;
  lookaheadBase?: StepOptimizerName;
}

/**
 * Buffers of p×k doubles a run may hold (see native/kernels/explicit_flow.hpp): 6 work buffers, 2
 * SVD scratch off the Gram path, the optimizer's state, plus 2 for the result arrays.
 */
export function explicitFlowBuffers(plan: MemoryPlan): number {
  const state = plan.optimizer ? optimizerStateBuffers(plan.optimizer, plan.lookaheadBase) : 0;
  return (plan.retraction === 'none' ? 6 : 8) + state + 2;
}

const GiB = 1024 ** 3;

/**
 * Refuses, before anything is allocated, a run that cannot fit in memory: RangeError naming the
 * memory it would need and the memory limit (lib/memory.ts: setMemoryLimit). `available` is injectable for tests.
 */
export function checkMemory(p: number, k: number, plan: MemoryPlan, context: string, available = getMemoryLimit()): void {
  const buffers = explicitFlowBuffers(plan);
  const need = buffers * p * k * 8;
  if (need > available) {
    throw new RangeError(
      `Expected a problem that fits in memory for ${context} but received Y0 of ${p}×${k}: the run would need about ` +
        `${(need / GiB).toFixed(1)} GiB (${buffers} buffers of p×k doubles${plan.optimizer && optimizerStateBuffers(plan.optimizer, plan.lookaheadBase) > 0 ? `, ${optimizerStateBuffers(plan.optimizer, plan.lookaheadBase)} of them the state of '${plan.optimizer}'` : ''}) and ` +
        `${(available / GiB).toFixed(1)} GiB is available (the memory limit; see setMemoryLimit())`,
    );
  }
}

/** Validates a Matrix argument in the order shape → memory → data, so a huge shape fails before its data is read. */
export function expectFlowMatrix(v: unknown, name: string, context: string, plan: MemoryPlan, shape?: { rows: number; cols: number }): Matrix {
  const retraction = plan.retraction;
  if (!isObjectArgument(v)) {
    throw new TypeError(`Expected a Matrix {rows, cols, data: Float64Array} for ${name} but received ${describeValue(v)}`);
  }
  const m = readFields(v, ['rows', 'cols', 'data'] as const, name);
  const rows = expectShapeInteger(m.rows, `${name}.rows`);
  const cols = expectShapeInteger(m.cols, `${name}.cols`);
  if (shape && (rows !== shape.rows || cols !== shape.cols)) {
    throw new RangeError(`Expected ${name} to have the shape of Y0 (${shape.rows}×${shape.cols}) but received ${rows}×${cols}`);
  }
  if (!shape) {
    shapeProduct([rows, cols], name);
    if (rows < cols && retraction !== 'none' && retraction !== 'normalize') {
      throw new RangeError(`Expected a matrix with rows ≥ cols (p ≥ k) for ${name} with retraction '${retraction}' but received ${rows}×${cols}`);
    }
    checkMemory(rows, cols, plan, context);
  }
  const data = expectFloat64Array(m.data, `${name}.data`, rows * cols, 'rows*cols');
  expectFiniteData(data, name, cols);
  return { rows, cols, data };
}

export function parseFlowSettings(options: Record<string, unknown>, w: number, context: string): NativeExplicitOptions {
  const o = parseOptions<Omit<NativeExplicitOptions, 'learningRate'> & { learningRate: number | 'default' }>(flowOptionSpecs, options, context);
  // 'energy' steps ‖X0‖²·g (explicit_flow.cpp stepScale_): lr·2(1 − w) is the fidelity's contraction
  // per step. 0.01 measured best among 1e-3…0.5 on PCA starts (lowest energies) and on the random
  // benchmark problem (1e-3 barely moves it in 300 iterations).
  const learningRate = o.learningRate === 'default' ? (o.weighting === 'energy' ? 0.01 : o.nonnegativity === 'hard' ? 1e-3 : 1) : o.learningRate;
  return { ...o, w, learningRate };
}

export const asyncSpecs = asyncOptionSpecs;

/** One native solve (validated inputs). `settings` is returned as used, with the derived weights. */
export function runExplicitSync(Y0: Matrix, X0: Matrix | undefined, settings: NativeExplicitOptions): RawExplicitResult {
  return callSync(() => native().explicitFlow(Y0.data, X0?.data ?? null, Y0.rows, Y0.cols, settings), productFlops(Y0.data.length, Y0.cols));
}

export function runExplicitAsync(
  Y0: Matrix,
  X0: Matrix | undefined,
  settings: NativeExplicitOptions,
  async: AsyncOptions<ExplicitFlowProgress>,
): Promise<RawExplicitResult> {
  const inputs = X0 ? [Y0.data, X0.data] : [Y0.data];
  return runJob<RawExplicitResult, ExplicitFlowProgress>(
    inputs,
    (ins, token, onProgress, intervalMs) =>
      native().explicitFlowAsync(ins[0]!, ins[1] ?? null, Y0.rows, Y0.cols, settings, token, onProgress, intervalMs),
    async,
    mapProgress,
    productFlops(Y0.data.length, Y0.cols),
  );
}

// ---- results ---------------------------------------------------------------------------------------

/** Traces as columns, one entry per recorded iteration (every `recordEvery`). */
export interface ExplicitFlowTraces {
  iteration: Float64Array;
  timeMs: Float64Array;
  /** Weighted fidelity term ½η‖Y − X0‖² ((1 − w)‖Y − X0‖²/‖X0‖² for 'energy' and 'balanced'). */
  fidelity: Float64Array;
  /** The unweighted orthogonality measure: O(Y) (settings.orthogonality) for 'energy', defect(Y) otherwise. */
  orthogonality: Float64Array;
  /** The energy of settings.weighting: fidelity + ¼c·orthogonality. */
  total: Float64Array;
  learningRate: Float64Array;
  /** Halvings toward the best iterate in that iteration. */
  backtracks: Float64Array;
}

/** Every setting a run used, so that passing them back (with Y0 and X0) repeats it exactly. */
export interface ExplicitFlowSettings extends NativeExplicitOptions {
  /**
   * η and c of E = ½η‖Y − X0‖² + ¼c·m(Y), m the trace's orthogonality measure, in the working units
   * (after rescaling): for 'energy', η = 2(1 − w)/‖X0‖² and c = 4w.
   */
  fidEta: number;
  cOrth: number;
  /** The working unit s (Y/s, X0/s); 1 without rescale. */
  scale: number;
  finalLearningRate: number;
  /** True when X0 was missing and the start was jittered from `seed`. */
  jittered: boolean;
  /** Threads the fused kernels used. */
  threadsUsed: number;
}

export interface ExplicitFlowRun {
  /** The best iterate (the start N(Y0) counts as iteration 0), in the caller's units. */
  Y: Matrix;
  /** The target actually used: N(X0), or N(Y0) when X0 was missing. */
  target: Matrix;
  bestIteration: number;
  bestEnergy: number;
  /** Energy of the start N(Y0); bestEnergy ≤ startEnergy always. */
  startEnergy: number;
  iterations: number;
  /** Iterations whose step lowered the best energy (0: the run returned its start, stopReason 'stalled'). */
  acceptedSteps: number;
  /**
   * 'gradMap' (a flow rule fired and the certificate is ≤ tolerance), 'plateau' (a flow rule fired,
   * no stationarity claim), 'stalled' (no accepted step: the start is returned), 'maxIterations', 'nonFinite'.
   */
  stopReason: StopReason;
  /** Which flow rule fired ('gradientNorm' or 'energyWindow'), null when none did. */
  convergence: 'gradientNorm' | 'energyWindow' | null;
  /**
   * Scale-free gradient mapping of the energy at the returned point (working units, hard non-negativity
   * as the constraint; lib/solver.ts): 0 exactly at a KKT point.
   */
  certificate: number;
  /** Iterations whose retraction left the fused Gram path (ill-conditioned YᵀY or a non-polar type). */
  retractionFallbacks: number;
  traces: ExplicitFlowTraces;
  settings: ExplicitFlowSettings;
  diagnostics: ExplicitFlowDiagnostics;
}

export function buildRun(raw: RawExplicitResult, p: number, k: number, settings: NativeExplicitOptions, data?: Matrix): ExplicitFlowRun {
  // Finite input whose squares overflow (entries near 1e200) leaves no finite iterate: say so.
  if (!Number.isFinite(raw.bestEnergy) || !raw.summary.finite) {
    throw new NumericalError(
      `nsaFlowExplicit(): the solution is not finite (best energy ${raw.bestEnergy}): squares of Y0's or X0's entries overflow a double; rescale Y0 and X0`,
    );
  }
  const Y = { rows: p, cols: k, data: raw.Y };
  const target = { rows: p, cols: k, data: raw.target };
  return {
    Y,
    target,
    bestIteration: raw.bestIteration,
    bestEnergy: raw.bestEnergy,
    startEnergy: raw.startEnergy,
    iterations: raw.iterations,
    acceptedSteps: raw.acceptedSteps,
    stopReason: raw.stopReason,
    convergence: raw.convergence,
    certificate: raw.certificate,
    retractionFallbacks: raw.retractionFallbacks,
    traces: raw.traces,
    settings: {
      ...settings,
      orthogonalityReference: raw.orthogonalityReference,
      fidEta: raw.fidEta,
      cOrth: raw.cOrth,
      scale: raw.scale,
      finalLearningRate: raw.finalLearningRate,
      jittered: raw.jittered,
      threadsUsed: raw.threads,
    },
    diagnostics: diagnosticsOfSums(Y, target, data, raw.summary),
  };
}
