/**
 * nsaFlow(): NSA-Flow in its exact-gradient form. Two energies (weighting 'energy', the calibration-free
 * E_w, and 'reference', the reference's nsa_flow_orth energy, SPEC.md §5) and two kinds of solver: the
 * retraction loop (Y = nonneg(retract_w(Z)), any optimizer, the exact gradient by VJPs) and the certified
 * solvers on Y ≥ 0 (lib/nsa-flow/certified.ts). Each run is one native call; the async form runs it on
 * a worker thread.
 */
import type { SolverOutcome, StopReason } from '../solver.js';
import type { Matrix } from '../matrix.js';
import { native, type CancelToken, type RawProgress } from '../native.js';
import { NumericalError } from '../errors.js';
import { checkWorkspace, retractionTypes, nonNegativityModes, type NonNegativity, type RetractionType } from '../ortho.js';
import { callSync, productFlops, runJob, type AsyncOptions } from '../runtime.js';
import {
  asyncOptionSpecs,
  describeValue,
  expectFiniteData,
  expectMatrix,
  expectSameShape,
  expectIntact,
  isObjectArgument,
  ownKeys,
  parseOptions,
  readFields,
  readList,
  subName,
  unknownOption,
  type OptionSpecs,
} from '../validate.js';
import { applyWeighting } from './weighting.js';
import {
  fidelityTypes,
  lrStrategies,
  orthogonalityFunctionals,
  orthogonalityTypes,
  weightings,
  type FidelityType,
  type LrStrategy,
  type OrthogonalityFunctional,
  type OrthogonalityType,
  type Weighting,
} from './options.js';
import {
  certifiedOptionSpecs,
  certifiedSolvers,
  fidelityMissingOptionSpecs,
  fidelityWeights,
  runCertifiedAsync,
  runCertifiedSync,
  type CertifiedOptions,
  type CertifiedRun,
  type FidelityMissingOptions,
} from './certified.js';
import { wantsMissing, type ParsedMissing } from '../factorization/missing.js';
import { optimizerNames, optimizerStateBuffers, stepOptimizers, type OptimizerName } from './optimizers.js';

export interface RawFlowResult {
  Y: Float64Array;
  target: Float64Array;
  bestIteration: number;
  bestEnergy: number;
  iterations: number;
  stopReason: StopReason;
  traces: NsaFlowTraces;
  learningRate: number;
  /** null with weighting 'energy' (no weights) */
  fidEta: number | null;
  cOrth: number | null;
  scale: number;
  certificate: number;
  lrEstimate: LrEstimateResult | null;
}

export interface LrEstimateResult {
  bestLr: number;
  bestEnergy: number;
  candidates: Float64Array;
  losses: Float64Array;
  relChanges: Float64Array;
  /** The random draws the strategy used (random: 25 uniforms; entropy: 1 uniform; bayes: 25 normals). */
  draws: { uniform: Float64Array; normal: Float64Array };
}

declare module '../native.js' {
  interface NativeBinding {
    nsaFlowSync(Y0: Float64Array, X0: Float64Array | null, p: number, k: number, options: object): RawFlowResult;
    nsaFlowAsync(
      Y0: Float64Array, X0: Float64Array | null, p: number, k: number, options: object,
      token: CancelToken, onProgress: ((r: RawProgress) => void) | undefined, intervalMs: number,
    ): Promise<RawFlowResult>;
    estimateLearningRate(Y0: Float64Array, X0: Float64Array, p: number, k: number, options: object): LrEstimateResult;
  }
}

/** Injected random draws for the randomized learning-rate strategies (reproducing another run). */
export interface LrDraws {
  /** random: 25 values in [0, 1); entropy: 1 value. */
  uniform?: ArrayLike<number>;
  /** bayes: 25 values of N(0, 0.05²). */
  normal?: ArrayLike<number>;
}

/**
 * Options of nsaFlow. The keys that a run's `settings` may hold as null also take null here, meaning
 * "does not apply" (the same as leaving them out), so that settings repeat a run: nsaFlowSync(Y0,
 * {...settings, X0}) without fidEta, cOrth and scale, which the run derived (they are not options).
 */
/**
 * `weights` / `mask` / `missing: 'nan'` (certified solvers only) weigh the target's entries:
 * F = Σ ω(Y − X0)²/Σ ω·X0², an entry of weight 0 is missing (X0 may hold NaN there) and Y is left to
 * the orthogonality term there.
 */
export interface NsaFlowOptions extends FidelityMissingOptions {
  /** Target (same shape as Y0). Missing: X0 = nonneg(Y0) (Y0 under nonnegativity 'none') and, in the retraction loop, a jittered start drawn from `seed`. */
  X0?: Matrix;
  /**
   * The energy. 'energy' (default): the calibration-free E_w = (1 − w)·‖Y − X0‖²/‖X0‖² + w·O(Y).
   * 'reference': the reference's (1 − w)·fidEta·F + w·cOrth·O with fidEta, cOrth calibrated from the start.
   */
  weighting?: Weighting;
  /** Weight of orthogonality vs fidelity, also the soft retraction's blend (default 0.5). */
  w?: number;
  /** weighting 'energy': the orthogonality functional O (default 'gram'). */
  orthogonality?: OrthogonalityFunctional | null;
  /**
   * The solver: a retraction-loop optimizer (Y = nonneg(retract_w(Z)), exact gradient with respect to
   * Z), or a certified solver on Y ≥ 0 directly ('lbfgsb', 'spg'; weighting 'energy' only).
   * Default: 'spg' with weighting 'energy' (the fastest to a certificate, docs/nsa-flow.md), 'asgd'
   * (the reference's) with 'reference'.
   */
  optimizer?: NsaFlowOptimizer;
  /** Stop with 'gradMap' when the certificate of the best iterate is ≤ this (default 1e-6). */
  certificateTolerance?: number;
  maxIterations?: number;
  recordEvery?: number;
  /** 'hard' (default), 'softplus' (retraction loop only) or 'none'. */
  nonnegativity?: NonNegativity;
  // ---- retraction loop only
  retraction?: RetractionType | null;
  nsIterations?: number | null;
  /** Base optimizer of 'lookahead' (default 'adam', as the reference). */
  lookaheadBase?: (typeof stepOptimizers)[number] | null;
  /** Fixed learning rate. Without it, `lrStrategy` (default 'armijo'; 'bayes' with weighting 'reference', as the reference) estimates one. */
  learningRate?: number | null;
  lrStrategy?: LrStrategy | null;
  /** Aggression of the strategy, in [0, 1] (default 0.5). */
  aggression?: number | null;
  /** Draws to inject into the randomized strategies (else drawn from `seed`). */
  lrDraws?: LrDraws | null;
  /** Stop ('plateau') when the slope of the last windowSize energies is > −tolerance (default 1e-4). */
  tolerance?: number | null;
  windowSize?: number | null;
  /** ReduceLROnPlateau on the total energy: true, or {patience (10), factor (0.5)}. */
  lrScheduler?: boolean | { patience?: number; factor?: number } | null;
  /** Gradient norm clip (default 10, as the reference; 0 disables). */
  clipNorm?: number | null;
  seed?: number | null;
  // ---- weighting 'reference' only
  warmupIterations?: number | null;
  fidelityType?: FidelityType | null;
  orthogonalityType?: OrthogonalityType | null;
  // ---- certified solvers only
  /** Stop ('plateau') when the energy decreased by less than plateauTolerance·|E| over 10 iterations (default 1e-12). */
  plateauTolerance?: number | null;
  /** 'lbfgsb': the number of correction pairs kept (default 10). */
  memory?: number | null;
}

export interface NsaFlowTraces {
  iteration: Float64Array;
  timeMs: Float64Array;
  /** 'energy': ‖Y − X0‖²/‖X0‖²; 'reference': fidEta·F (scaled units). */
  fidelity: Float64Array;
  /** 'energy': O(Y); 'reference': cOrth·O. */
  orthogonality: Float64Array;
  /** The energy: (1 − w)·fidelity + w·orthogonality. */
  total: Float64Array;
  /** Retraction loop: the learning rate in effect for the step that led to each entry. */
  learningRate?: Float64Array;
  /** Certified solvers: the certificate of each entry. */
  certificate?: Float64Array;
}

/**
 * Every option in effect; an option that does not apply to the run (weighting or solver) is null.
 * Given back as options (without fidEta, cOrth and scale, derived by the run) they repeat the run.
 */
export interface NsaFlowSettings {
  weighting: Weighting;
  w: number;
  orthogonality: OrthogonalityFunctional | null;
  optimizer: NsaFlowOptimizer;
  nonnegativity: NonNegativity;
  maxIterations: number;
  certificateTolerance: number;
  recordEvery: number;
  retraction: RetractionType | null;
  nsIterations: number | null;
  lookaheadBase: string | null;
  learningRate: number | null;
  lrStrategy: LrStrategy | null;
  aggression: number | null;
  lrDraws: { uniform: number[]; normal: number[] } | null;
  tolerance: number | null;
  windowSize: number | null;
  lrScheduler: { patience: number; factor: number } | null;
  clipNorm: number | null;
  seed: number | null;
  warmupIterations: number | null;
  fidelityType: FidelityType | null;
  orthogonalityType: OrthogonalityType | null;
  plateauTolerance: number | null;
  memory: number | null;
  /** weighting 'reference': the weights the energy used. */
  fidEta: number | null;
  cOrth: number | null;
  /** Retraction loop: what Y and X0 were divided by ('reference': RMS of X0 + 1e-12; 'energy': ‖X0‖). */
  scale: number | null;
}

export interface NsaFlowResult extends SolverOutcome {
  /** The best iterate (certified solvers: their last, they are monotone), in the caller's units. */
  Y: Matrix;
  /** The target actually used (non-negative part of X0 when non-negativity is on), caller's units. */
  target: Matrix;
  bestIteration: number;
  /** Best energy, in the solver's units (as the traces; 'energy' is scale-free). */
  bestEnergy: number;
  iterations: number;
  /** gradMap exactly when certificate ≤ certificateTolerance. */
  stopReason: StopReason;
  /**
   * The gradient mapping ‖P(Y − ‖Y‖²∇E) − Y‖/‖Y‖ of the run's energy at the returned Y (P = max(·, 0)
   * under non-negativity): 0 at a stationary point of E on Y ≥ 0. 'reference': of its own energy in the
   * solver's scaled units. null when Y = 0 (the energy is not differentiable there; see warnings).
   */
  certificate: number | null;
  /** Why the result may not be what was asked for, e.g. not stationary (certificate > 1e3·tolerance). */
  warnings: string[];
  traces: NsaFlowTraces;
  settings: NsaFlowSettings;
  /** The estimator's candidates and losses, when the learning rate was estimated. */
  lrEstimate: LrEstimateResult | null;
}

export interface NsaFlowProgress {
  iteration: number;
  maxIterations: number;
  /** The energy's terms: total = (1 − w)·fidelity + w·orthogonality (both weightings, both kinds of solver). */
  fidelity: number;
  orthogonality: number;
  total: number;
  /** Certified solvers: the certificate of the iterate. */
  certificate?: number;
}

function withoutDefault<S extends { default?: unknown }>(spec: S): Omit<S, 'default'> {
  const { default: _default, ...rest } = spec;
  return rest;
}

const count = (what: string, min = 0) =>
  ({ kind: 'number', integer: true, min, max: 1e8, description: what }) as const;

/** The certified solvers (weighting 'energy'): they minimize E_w over Y ≥ 0 directly. */
export { certifiedSolvers };
export type CertifiedSolverName = (typeof certifiedSolvers)[number];
export const nsaFlowOptimizers = [...optimizerNames, ...certifiedSolvers] as const;
export type NsaFlowOptimizer = (typeof nsaFlowOptimizers)[number];

/**
 * The default optimizer of each weighting. 'energy': the fastest to a certificate ≤ 1e-6 on the PCA
 * starts of the leukemia data (docs/nsa-flow.md, "Choosing the solver"); 'reference': the reference's.
 */
export const defaultOptimizer: Record<Weighting, NsaFlowOptimizer> = { energy: 'spg', reference: 'asgd' };

/**
 * Options that apply to one kind of solver only; an option given explicitly for the other kind is
 * refused (never accepted and ignored). Their defaults are filled in after that check.
 */
const loopOnly = {
  retraction: 'softPolar', nsIterations: 5, lookaheadBase: 'adam', learningRate: undefined, lrStrategy: undefined,
  aggression: 0.5, lrDraws: undefined, tolerance: 1e-4, windowSize: 10, lrScheduler: false, clipNorm: 10, seed: 42,
} as const;
const certifiedOnly = { plateauTolerance: certifiedOptionSpecs.plateauTolerance.default, memory: certifiedOptionSpecs.memory.default } as const;

/**
 * nsaFlow's options: `optimizer` is a retraction-loop optimizer or a certified solver. The CLI's `flow`
 * command builds its flags from this spec; nsaFlowExplicit reuses `lookaheadBase` (its own optimizers
 * are the loop's, `optimizerNames`).
 */
export const nsaFlowOptionSpecs = {
  // NaN is checked in prepare(): allowed at the missing entries of the weighted fidelity only.
  X0: { kind: 'custom', description: 'a Matrix of the shape of Y0', check: (v, name) => expectMatrix(v, name, { finite: false }) },
  weighting: { kind: 'enum', values: weightings, default: 'energy', description: "energy: 'energy' (calibration-free) or 'reference'" },
  w: { kind: 'number', min: 0, max: 1, default: 0.5, description: 'orthogonality weight (and the soft retraction blend)' },
  orthogonality: { kind: 'enum', values: orthogonalityFunctionals, description: "orthogonality functional, weighting 'energy' (default 'gram')" },
  optimizer: {
    kind: 'enum',
    values: nsaFlowOptimizers,
    description: `optimizer or certified solver (default '${defaultOptimizer.energy}' with weighting 'energy', '${defaultOptimizer.reference}' with 'reference')`,
  },
  certificateTolerance: { kind: 'number', min: 0, default: 1e-6, description: "certificate at which a run stops with 'gradMap'" },
  maxIterations: { ...count('maximum iterations'), default: 500 },
  recordEvery: { ...count('trace interval', 1), default: 1 },
  nonnegativity: { kind: 'enum', values: nonNegativityModes, default: 'hard', description: "non-negativity ('softplus': retraction loop only)" },
  retraction: { kind: 'enum', values: retractionTypes, description: "retraction, retraction loop only (default 'softPolar')" },
  nsIterations: { ...count('Newton–Schulz iterations, retraction loop only (default 5)') },
  // The default stays in the spec: nsaFlowExplicit's options reuse this spec.
  lookaheadBase: { kind: 'enum', values: stepOptimizers, default: 'adam', description: "base optimizer of 'lookahead'" },
  learningRate: { kind: 'number', min: 0, minExclusive: true, description: 'fixed learning rate, retraction loop only' },
  lrStrategy: { kind: 'enum', values: lrStrategies, description: "learning-rate estimation strategy, retraction loop only (default 'armijo'; 'bayes' with weighting 'reference')" },
  aggression: { kind: 'number', min: 0, max: 1, description: 'aggression of the strategy (default 0.5)' },
  lrDraws: { kind: 'custom', description: 'an object {uniform?, normal?} of numbers', check: checkDraws },
  tolerance: { kind: 'number', description: 'slope tolerance of the retraction loop’s plateau rule (default 1e-4)' },
  windowSize: { ...count('window of the slope rule (default 10)', 2) },
  lrScheduler: { kind: 'custom', description: 'a boolean or {patience, factor} (default false)', check: checkScheduler },
  clipNorm: { kind: 'number', min: 0, description: 'gradient norm clip, retraction loop only (0: none; default 10)' },
  seed: { kind: 'number', integer: true, min: 0, max: Number.MAX_SAFE_INTEGER, description: 'seed of every random draw of the retraction loop (default 42)' },
  warmupIterations: { ...count("warm-up iterations, weighting 'reference' (default 0)") },
  fidelityType: { kind: 'enum', values: fidelityTypes, description: "fidelity measure, weighting 'reference' (default 'scaleInvariant')" },
  orthogonalityType: { kind: 'enum', values: orthogonalityTypes, description: "orthogonality measure, weighting 'reference' (default 'scaleInvariant')" },
  // The certified solvers' own specs (ranges), without their defaults: given for the loop they are refused.
  plateauTolerance: { ...withoutDefault(certifiedOptionSpecs.plateauTolerance), description: 'relative energy decrease over 10 iterations below which a certified solver stops (default 1e-12)' },
  memory: { ...withoutDefault(certifiedOptionSpecs.memory), description: "correction pairs of 'lbfgsb' (default 10)" },
} as const satisfies OptionSpecs;

/**
 * The API's options: the CLI's, plus the missing-value options of the target (certified solvers only;
 * the CLI does not take them yet).
 */
const syncSpecs = { ...nsaFlowOptionSpecs, ...fidelityMissingOptionSpecs } as const satisfies OptionSpecs;

function checkDraws(v: unknown, name: string): { uniform: number[]; normal: number[] } {
  if (!isObjectArgument(v)) throw new TypeError(`Expected an object {uniform?, normal?} for ${name} but received ${describeValue(v)}`);
  for (const key of ownKeys(v, name)) if (key !== 'uniform' && key !== 'normal') throw unknownOption(key, ['uniform', 'normal'], name, 'key', 'in');
  const f = readFields(v, ['uniform', 'normal'] as const, name);
  const out = { uniform: [] as number[], normal: [] as number[] };
  for (const key of ['uniform', 'normal'] as const) {
    const a = f[key];
    if (a === undefined) continue;
    const part = subName(name, `.${key}`);
    if (!Array.isArray(a) && !ArrayBuffer.isView(a)) throw new TypeError(`Expected an array of numbers for ${part} but received ${describeValue(a)}`);
    // The strategies use at most 25 draws; a few more are tolerated, millions are a mistake.
    const arr = readList(a, part, 'an array of numbers', 1000);
    arr.forEach((x, i) => {
      if (typeof x !== 'number') throw new TypeError(`Expected a finite number for ${part}[${i}] but received ${describeValue(x)}`);
    });
    expectFiniteData(Float64Array.from(arr as number[]), part);
    out[key] = arr as number[];
  }
  return out;
}

/**
 * p×k doubles a flow run holds (native/kernels/nsa_flow.cpp): iterate, target, best, gradient,
 * retraction and VJP workspaces (about 12) plus the optimizer's state, and k×k matrices.
 */
function checkFlowMemory(p: number, k: number, optimizer: OptimizerName, lookaheadBase: (typeof stepOptimizers)[number], name: string): void {
  const buffers = 12 + optimizerStateBuffers(optimizer, lookaheadBase);
  checkWorkspace(
    Math.max(p * k, k * k),
    buffers * p * k + 6 * k * k,
    `the flow on ${name} (${p}×${k}): ${buffers} buffers of p×k doubles${optimizerStateBuffers(optimizer, lookaheadBase) > 0 ? ` (the state of '${optimizer}' included)` : ''} and k×k work matrices`,
  );
}

function checkScheduler(v: unknown, name: string): { patience: number; factor: number } | false {
  if (v === false) return false;
  if (v === true) return { patience: 10, factor: 0.5 };
  if (v === null || typeof v !== 'object') throw new TypeError(`Expected a boolean or {patience, factor} for ${name} but received ${describeValue(v)}`);
  const o = parseOptions<{ patience: number; factor: number }>(
    {
      patience: { ...count('plateau patience'), default: 10 },
      factor: { kind: 'number', min: 0, max: 1, minExclusive: true, maxExclusive: true, default: 0.5, description: 'decay factor' },
    },
    v,
    name,
  );
  return o;
}

/** The parsed options: a key without a spec default is present only when it was given. */
type Parsed = {
  X0?: Matrix;
  weighting: Weighting;
  w: number;
  orthogonality?: OrthogonalityFunctional;
  optimizer?: NsaFlowOptimizer;
  certificateTolerance: number;
  maxIterations: number;
  recordEvery: number;
  nonnegativity: NonNegativity;
  retraction?: RetractionType;
  nsIterations?: number;
  lookaheadBase: (typeof stepOptimizers)[number];
  learningRate?: number;
  lrStrategy?: LrStrategy;
  aggression?: number;
  lrDraws?: { uniform: number[]; normal: number[] };
  tolerance?: number;
  windowSize?: number;
  lrScheduler?: { patience: number; factor: number } | false;
  clipNorm?: number;
  seed?: number;
  warmupIterations?: number;
  fidelityType?: FidelityType;
  orthogonalityType?: OrthogonalityType;
  plateauTolerance?: number;
  memory?: number;
};

/** A run of the retraction loop: every loop option resolved. */
type LoopPlan = Parsed & {
  kind: 'loop';
  optimizer: OptimizerName;
  retraction: RetractionType;
  nsIterations: number;
  aggression: number;
  tolerance: number;
  windowSize: number;
  lrScheduler: { patience: number; factor: number } | false;
  clipNorm: number;
  seed: number;
  warmupIterations: number;
  fidelityType: FidelityType;
  orthogonalityType: OrthogonalityType;
  orthogonality: OrthogonalityFunctional;
};

/** A run of a certified solver. */
type CertifiedPlan = Parsed & {
  kind: 'certified';
  /** The weights of the target's entries, dense (undefined: all 1). */
  targetWeights?: Float64Array;
  optimizer: CertifiedSolverName;
  orthogonality: OrthogonalityFunctional;
  plateauTolerance: number;
  memory: number;
};

const given = (o: Parsed, key: string): boolean => (o as Record<string, unknown>)[key] !== undefined;
const show = (v: unknown): string => (typeof v === 'string' ? `'${v}'` : typeof v === 'object' ? JSON.stringify(v) : String(v));

/**
 * Resolves the weighting's and the solver's defaults, refusing every option given for the other
 * weighting or the other kind of solver (an option accepted and ignored would be a silent mistake).
 */
function resolvePlan(parsed: Parsed, context: string): LoopPlan | CertifiedPlan {
  const o = applyWeighting(parsed, Object.keys(nsaFlowOptionSpecs), context);
  const optimizer = o.optimizer ?? defaultOptimizer[o.weighting];
  const certified = (certifiedSolvers as readonly string[]).includes(optimizer);
  if (certified) {
    if (o.weighting !== 'energy') {
      throw new RangeError(
        `Expected weighting 'energy' for optimizer '${optimizer}' of ${context} (the certified solvers minimize the calibration-free energy) but received weighting 'reference'`,
      );
    }
    if (o.nonnegativity === 'softplus') {
      throw new RangeError(
        `Expected nonnegativity 'hard' or 'none' for optimizer '${optimizer}' of ${context} (a certified solver works on Y ≥ 0 itself, there is no map to smooth) but received 'softplus'`,
      );
    }
    for (const key of Object.keys(loopOnly)) {
      // lookaheadBase keeps its spec default (shared with nsaFlowExplicit): only another value is a conflict.
      if (key === 'lookaheadBase' ? o.lookaheadBase !== 'adam' : given(o, key)) {
        throw new RangeError(
          `options.${key} of ${context} applies to the retraction loop only, but optimizer '${optimizer}' is a certified solver (received ${key} ${show((o as Record<string, unknown>)[key])}); the certified solvers take no retraction, learning rate or random draws`,
        );
      }
    }
    if (given(o, 'memory') && optimizer !== 'lbfgsb') {
      throw new RangeError(`options.memory of ${context} applies to optimizer 'lbfgsb' only but received memory ${o.memory} with optimizer '${optimizer}'`);
    }
    return {
      ...o,
      kind: 'certified',
      optimizer: optimizer as CertifiedSolverName,
      orthogonality: o.orthogonality!,
      plateauTolerance: o.plateauTolerance ?? certifiedOnly.plateauTolerance,
      memory: o.memory ?? certifiedOnly.memory,
    };
  }
  const missing = o as Parsed & Partial<ParsedMissing>;
  for (const key of ['weights', 'mask', 'missing'] as const) {
    if (key === 'missing' ? missing.missing !== undefined && missing.missing !== 'observed' : missing[key] !== undefined) {
      throw new RangeError(
        `options.${key} of ${context} applies to the certified solvers ('lbfgsb', 'spg') only, but optimizer '${optimizer}' runs the retraction loop, whose energy has no weighted fidelity (received ${key}${key === 'missing' ? ` '${missing.missing}'` : ''})`,
      );
    }
  }
  for (const key of Object.keys(certifiedOnly)) {
    if (given(o, key)) {
      throw new RangeError(
        `options.${key} of ${context} applies to the certified solvers ('lbfgsb', 'spg') only, but optimizer '${optimizer}' runs the retraction loop (received ${key} ${show((o as Record<string, unknown>)[key])})`,
      );
    }
  }
  return {
    ...o,
    kind: 'loop',
    optimizer: optimizer as OptimizerName,
    retraction: o.retraction ?? loopOnly.retraction,
    nsIterations: o.nsIterations ?? loopOnly.nsIterations,
    aggression: o.aggression ?? loopOnly.aggression,
    tolerance: o.tolerance ?? loopOnly.tolerance,
    windowSize: o.windowSize ?? loopOnly.windowSize,
    lrScheduler: o.lrScheduler ?? loopOnly.lrScheduler,
    clipNorm: o.clipNorm ?? loopOnly.clipNorm,
    seed: o.seed ?? loopOnly.seed,
    // weighting-specific: filled in by applyWeighting for this weighting; fixed (unused) for the other
    warmupIterations: o.warmupIterations ?? 0,
    fidelityType: o.fidelityType ?? 'scaleInvariant',
    orthogonalityType: o.orthogonalityType ?? 'scaleInvariant',
    orthogonality: o.orthogonality ?? 'gram',
  };
}

const stiefel = (t: string): boolean => t !== 'none' && t !== 'normalize';

/** The options that a run's settings hold as null when they do not apply to it (NsaFlowSettings). */
const nullWhenNotApplicable: readonly string[] = [
  'orthogonality', 'retraction', 'nsIterations', 'lookaheadBase', 'learningRate', 'lrStrategy', 'aggression', 'lrDraws', 'tolerance',
  'windowSize', 'lrScheduler', 'clipNorm', 'seed', 'warmupIterations', 'fidelityType', 'orthogonalityType', 'plateauTolerance', 'memory',
];

/**
 * The options with every null "does not apply" left out, so that a run's settings are options again.
 * Looks at data properties only (a getter is read once, by parseOptions or the copy).
 */
function withoutNotApplicable(options: unknown): unknown {
  if (!isObjectArgument(options)) return options;
  const nulls = nullWhenNotApplicable.filter((key) => {
    const d = Object.getOwnPropertyDescriptor(options, key);
    return d !== undefined && 'value' in d && d.value === null;
  });
  if (nulls.length === 0) return options;
  const copy: Record<string, unknown> = { ...options };
  for (const key of nulls) delete copy[key];
  return copy;
}

function prepare(Y0: unknown, options: unknown, context: string, specs: OptionSpecs = syncSpecs) {
  const parsed = parseOptions<Parsed & ParsedMissing & AsyncOptions<NsaFlowProgress>>(specs, withoutNotApplicable(options), context);
  const y = expectMatrix(Y0, 'Y0');
  if (parsed.X0) expectSameShape(y, 'Y0', parsed.X0, 'options.X0');
  const o = resolvePlan(parsed, context);
  // The target's missing entries (certified solvers; resolvePlan refused them for the loop): X0 becomes
  // a snapshot with NaN allowed where missing. Without them every entry of X0 must be finite.
  const weighted = o.kind === 'certified' ? fidelityWeights(parsed.X0 ?? y, parsed.X0 ? 'options.X0' : 'Y0 (the target nonneg(Y0): options.X0 is missing)', parsed, context) : null;
  if (weighted) {
    if (parsed.X0) o.X0 = weighted.data;
    if (weighted.weights && o.kind === 'certified') o.targetWeights = weighted.weights;
  } else if (parsed.X0) {
    expectMatrix(parsed.X0, `options.X0 of ${context}`);
  }
  if (o.kind === 'certified') {
    checkCertifiedMemory(y.rows, y.cols, o.memory, 'Y0');
  } else {
    if (stiefel(o.retraction) && y.rows < y.cols) {
      throw new RangeError(`Expected rows ≥ cols (p ≥ k) for Y0 with retraction '${o.retraction}' but received ${y.rows}×${y.cols}`);
    }
    checkFlowMemory(y.rows, y.cols, o.optimizer, o.lookaheadBase, 'Y0');
  }
  // Reading Y0 ran the caller's getters after options.X0 was read: its buffer must be unchanged.
  if (o.X0) expectIntact([o.X0.data, y.rows * y.cols, 'options.X0.data']);
  if (o.weighting === 'energy') requireNonzeroTarget(y, o.X0, o.nonnegativity !== 'none', context, 'options.X0', o.kind === 'certified' ? o.targetWeights : undefined);
  return { o, y, async: parsed as AsyncOptions<NsaFlowProgress> };
}

/**
 * The calibration-free fidelity ‖Y − X0‖²/‖X0‖² needs a target with a nonzero entry: X0, or nonneg(Y0)
 * when X0 is missing (clamped at 0 under non-negativity, as the solvers use it).
 */
function requireNonzeroTarget(y: Matrix, X0: Matrix | undefined, clamp: boolean, context: string, x0Name = 'options.X0', weights?: Float64Array): void {
  const t = (X0 ?? y).data;
  for (let i = 0; i < t.length; i++) if ((weights === undefined || weights[i] !== 0) && (clamp ? t[i]! > 0 : t[i] !== 0)) return;
  const what = X0 ? x0Name : 'the target nonneg(Y0) (options.X0 is missing)';
  throw new RangeError(
    `Expected ${what} of ${context} to have a ${clamp ? 'positive' : 'nonzero'} entry (weighting 'energy' divides by ‖X0‖²${clamp ? ' of the clamped target max(X0, 0)' : ''}) but received none`,
  );
}

/** The raw options of the retraction loop (native/addon/nsa_flow_binding.cpp flowConfig). */
function loopRaw(o: LoopPlan) {
  return {
    weighting: o.weighting,
    retraction: o.retraction,
    nsIterations: o.nsIterations,
    nonnegativity: o.nonnegativity,
    fidelityType: o.fidelityType,
    orthogonalityType: o.orthogonalityType,
    orthogonality: o.orthogonality,
    certificateTolerance: o.certificateTolerance,
    w: o.w,
    optimizer: o.optimizer,
    lookaheadBase: o.lookaheadBase,
    // the reference's Lookahead settings (not public options)
    lookaheadK: 5,
    lookaheadAlpha: 0.5,
    learningRate: o.learningRate ?? 0,
    // Without a fixed rate, estimate one: by 'bayes' with the reference weighting (as the reference), by
    // 'armijo' with the calibration-free one, whose bounded energy makes 'bayes' pick rates near 10 whose
    // first step overshoots (measured on ALL, k = 3, w = 0.5: bayes 9.9 → no step accepted; armijo 0.69
    // → energy 0.1095 → 0.0470)
    lrStrategy: o.learningRate === undefined ? (o.lrStrategy ?? (o.weighting === 'energy' ? 'armijo' : 'bayes')) : '',
    aggression: o.aggression,
    maxIterations: o.maxIterations,
    tolerance: o.tolerance,
    windowSize: o.windowSize,
    recordEvery: o.recordEvery,
    warmupIterations: o.warmupIterations,
    lrScheduler: o.lrScheduler !== false,
    lrSchedulerPatience: o.lrScheduler ? o.lrScheduler.patience : 10,
    lrSchedulerFactor: o.lrScheduler ? o.lrScheduler.factor : 0.5,
    clipNorm: o.clipNorm,
    seed: o.seed,
    drawsUniform: o.lrDraws ? Float64Array.from(o.lrDraws.uniform) : undefined,
    drawsNormal: o.lrDraws ? Float64Array.from(o.lrDraws.normal) : undefined,
  };
}

/** The warning every result carries when it is not a stationary point (as the certified solvers'). */
function stationarityWarnings(certificate: number | null, stopReason: StopReason, tolerance: number): string[] {
  if (certificate === null) {
    return ['Y collapsed to 0: the energy is not differentiable there (its orthogonality term is undefined at Y = 0), so there is no certificate; lower the learning rate or w'];
  }
  if (stopReason === 'gradMap' || !(certificate > 1e3 * tolerance)) return [];
  return [
    `not stationary: the certificate ${certificate.toExponential(3)} at the returned Y exceeds 1e3·certificateTolerance (${(1e3 * tolerance).toExponential(1)}) after stopping by '${stopReason}'`,
  ];
}

function loopResult(r: RawFlowResult, y: Matrix, o: LoopPlan, strategy: string): NsaFlowResult {
  if (!Number.isFinite(r.bestEnergy)) {
    throw new NumericalError(
      `nsaFlow(): the energy of every iterate is ${r.bestEnergy}: squares of Y0's or X0's entries overflow a double; rescale Y0 and X0`,
    );
  }
  const estimated = r.lrEstimate !== null;
  const reference = o.weighting === 'reference';
  return {
    Y: { rows: y.rows, cols: y.cols, data: r.Y },
    target: { rows: y.rows, cols: y.cols, data: r.target },
    bestIteration: r.bestIteration,
    bestEnergy: r.bestEnergy,
    iterations: r.iterations,
    stopReason: r.stopReason,
    certificate: Number.isNaN(r.certificate) ? null : r.certificate,
    warnings: stationarityWarnings(Number.isNaN(r.certificate) ? null : r.certificate, r.stopReason, o.certificateTolerance),
    traces: r.traces,
    settings: {
      weighting: o.weighting,
      w: o.w,
      orthogonality: reference ? null : o.orthogonality,
      optimizer: o.optimizer,
      nonnegativity: o.nonnegativity,
      maxIterations: o.maxIterations,
      certificateTolerance: o.certificateTolerance,
      recordEvery: o.recordEvery,
      retraction: o.retraction,
      nsIterations: o.nsIterations,
      lookaheadBase: o.lookaheadBase,
      learningRate: r.learningRate,
      lrStrategy: estimated ? (strategy as LrStrategy) : null,
      aggression: o.aggression,
      lrDraws: estimated ? { uniform: Array.from(r.lrEstimate!.draws.uniform), normal: Array.from(r.lrEstimate!.draws.normal) } : null,
      tolerance: o.tolerance,
      windowSize: o.windowSize,
      lrScheduler: o.lrScheduler === false ? null : o.lrScheduler,
      clipNorm: o.clipNorm,
      seed: o.seed,
      warmupIterations: reference ? o.warmupIterations : null,
      fidelityType: reference ? o.fidelityType : null,
      orthogonalityType: reference ? o.orthogonalityType : null,
      plateauTolerance: null,
      memory: null,
      fidEta: r.fidEta,
      cOrth: r.cOrth,
      scale: r.scale,
    },
    lrEstimate: r.lrEstimate,
  };
}

const mapProgress = (r: RawProgress): NsaFlowProgress => ({
  iteration: r.iteration,
  maxIterations: r.total,
  fidelity: r.values[0]!,
  orthogonality: r.values[1]!,
  total: r.values[2]!,
});

/** nsaFlow() on the calling thread, for small problems. */
export function nsaFlowSync(Y0: Matrix, options?: NsaFlowOptions): NsaFlowResult {
  const { o, y } = prepare(Y0, options, 'nsaFlowSync()', syncSpecs);
  if (o.kind === 'certified') {
    const problem = certifiedProblem(o, y);
    return certifiedResult(runCertifiedSync(problem, certifiedOptions(o)), y, o, problem.X0);
  }
  const raw = loopRaw(o);
  const r = callSync(() => native().nsaFlowSync(y.data, o.X0?.data ?? null, y.rows, y.cols, raw), productFlops(y.data.length, y.cols));
  return loopResult(r, y, o, raw.lrStrategy);
}

const asyncSpecs = { ...syncSpecs, ...asyncOptionSpecs } as const satisfies OptionSpecs;

/**
 * NSA-Flow (exact-gradient mode) on a worker thread. Weighting 'energy' (default): minimizes
 * E_w = (1 − w)·‖Y − X0‖²/‖X0‖² + w·O(Y) over Y ≥ 0 with a certified solver (default 'spg') or over
 * Y = nonneg(retract_w(Z)) with an optimizer; weighting 'reference': the reference's
 * (1 − w)·fidEta·F(Y, X0) + w·cOrth·O(Y) over Y = nonneg(retract_w(Z)). Returns the best iterate with
 * its certificate.
 */
export function nsaFlow(Y0: Matrix, options?: NsaFlowOptions & AsyncOptions<NsaFlowProgress>): Promise<NsaFlowResult> {
  let prepared: ReturnType<typeof prepare>;
  try {
    prepared = prepare(Y0, options, 'nsaFlow()', asyncSpecs);
  } catch (err) {
    return Promise.reject(err);
  }
  const { o, y, async } = prepared;
  if (o.kind === 'certified') {
    const problem = certifiedProblem(o, y);
    return runCertifiedAsync(problem, certifiedOptions(o), {
      signal: async.signal,
      progressIntervalMs: async.progressIntervalMs,
      // The certified solvers report the energy, its terms and the certificate as they go.
      onProgress:
        async.onProgress &&
        ((p) => async.onProgress!({ iteration: p.iteration, maxIterations: p.maxIterations, fidelity: p.fidelity, orthogonality: p.orthogonality, total: p.energy, certificate: p.certificate })),
    }).then((r) => certifiedResult(r, y, o, problem.X0));
  }
  const raw = loopRaw(o);
  const inputs = o.X0 ? [y.data, o.X0.data] : [y.data];
  return runJob(
    inputs,
    ([yd, xd], token, onProgress, interval) =>
      native().nsaFlowAsync(yd!, xd ?? null, y.rows, y.cols, raw, token, onProgress, interval),
    async,
    mapProgress,
    productFlops(y.data.length, y.cols),
  ).then((r) => loopResult(r, y, o, raw.lrStrategy));
}

// ---- the certified solvers -------------------------------------------------------------------------

/** p×k doubles of a certified run: iterate, gradient, trial point, target, L-BFGS-B's 2·memory pairs and work. */
function checkCertifiedMemory(p: number, k: number, memory: number, name: string): void {
  const buffers = 10 + 2 * memory;
  checkWorkspace(Math.max(p * k, k * k), buffers * p * k + 8 * k * k, `the certified solver on ${name} (${p}×${k}): ${buffers} buffers of p×k doubles and k×k work matrices`);
}

/**
 * The target as the retraction loop uses it: X0 (or nonneg(Y0)), clamped at 0 under non-negativity.
 * Formed once per run (the solve copies it; the result returns it as `target`): a plain loop, where
 * a TypedArray map's callback per entry costs more than the solve's own pass over p×k.
 */
function certifiedProblem(o: CertifiedPlan, y: Matrix) {
  const source = o.X0 ?? y;
  let data: Float64Array;
  if (o.nonnegativity === 'hard') {
    data = native().nonNegativePart(source.data);
  } else {
    data = source.data.slice();
  }
  const X0: Matrix = { rows: y.rows, cols: y.cols, data };
  return { mode: 'target' as const, Y0: y, X0, ...(o.targetWeights ? { weights: o.targetWeights } : {}) };
}

function certifiedOptions(o: CertifiedPlan): CertifiedOptions {
  return {
    // target mode: no lobes to separate, no anchor (their values are unused there)
    overlapPenalty: 0,
    anchor: 'subspace',
    w: o.w,
    orthogonality: o.orthogonality,
    solver: o.optimizer,
    nonnegative: o.nonnegativity === 'hard',
    tolerance: o.certificateTolerance,
    plateauTolerance: o.plateauTolerance,
    maxIterations: o.maxIterations,
    memory: o.memory,
    recordEvery: o.recordEvery,
  };
}

function certifiedResult(r: CertifiedRun, y: Matrix, o: CertifiedPlan, X0: Matrix): NsaFlowResult {
  return {
    Y: r.Y,
    target: X0,
    // monotone solvers: the returned point is the last accepted iterate
    bestIteration: r.iterations,
    bestEnergy: r.energy,
    iterations: r.iterations,
    stopReason: r.stopReason,
    certificate: r.certificate,
    warnings: r.warnings,
    traces: {
      iteration: r.traces.iteration,
      timeMs: r.traces.timeMs,
      fidelity: r.traces.fidelity,
      orthogonality: r.traces.orthogonality,
      total: r.traces.energy,
      certificate: r.traces.certificate,
    },
    settings: {
      weighting: o.weighting,
      w: o.w,
      orthogonality: o.orthogonality,
      optimizer: o.optimizer,
      nonnegativity: o.nonnegativity,
      maxIterations: o.maxIterations,
      certificateTolerance: o.certificateTolerance,
      recordEvery: o.recordEvery,
      retraction: null,
      nsIterations: null,
      lookaheadBase: null,
      learningRate: null,
      lrStrategy: null,
      aggression: null,
      lrDraws: null,
      tolerance: null,
      windowSize: null,
      lrScheduler: null,
      clipNorm: null,
      seed: null,
      warmupIterations: null,
      fidelityType: null,
      orthogonalityType: null,
      plateauTolerance: o.plateauTolerance,
      memory: o.optimizer === 'lbfgsb' ? o.memory : null,
      fidEta: null,
      cOrth: null,
      scale: null,
    },
    lrEstimate: null,
  };
}

export interface EstimateLearningRateOptions {
  strategy: LrStrategy;
  aggression?: number;
  /** The energy (default 'energy'); fidEta, cOrth, fidelityType, orthogonalityType are 'reference''s, orthogonality 'energy''s. */
  weighting?: Weighting;
  orthogonality?: OrthogonalityFunctional;
  w?: number;
  retraction?: RetractionType;
  nsIterations?: number;
  nonnegativity?: NonNegativity;
  fidelityType?: FidelityType;
  orthogonalityType?: OrthogonalityType;
  fidEta?: number;
  cOrth?: number;
  seed?: number;
  draws?: LrDraws;
}

const estimateSpecs = {
  strategy: { kind: 'enum', values: lrStrategies, description: 'strategy' },
  aggression: { ...nsaFlowOptionSpecs.aggression, default: loopOnly.aggression },
  weighting: nsaFlowOptionSpecs.weighting,
  orthogonality: nsaFlowOptionSpecs.orthogonality,
  w: nsaFlowOptionSpecs.w,
  retraction: { ...nsaFlowOptionSpecs.retraction, default: loopOnly.retraction },
  nsIterations: { ...nsaFlowOptionSpecs.nsIterations, default: loopOnly.nsIterations },
  nonnegativity: nsaFlowOptionSpecs.nonnegativity,
  fidelityType: nsaFlowOptionSpecs.fidelityType,
  orthogonalityType: nsaFlowOptionSpecs.orthogonalityType,
  fidEta: { kind: 'number', description: "fidelity scale, weighting 'reference' (default 1)" },
  cOrth: { kind: 'number', description: "orthogonality scale, weighting 'reference' (default 1)" },
  seed: { ...nsaFlowOptionSpecs.seed, default: loopOnly.seed },
  draws: nsaFlowOptionSpecs.lrDraws,
} as const satisfies OptionSpecs;

/**
 * The reference's learning-rate estimator at Y0 (SPEC.md §7): E and ∇E of nonneg(retract(Y0)), then
 * the strategy's candidates scored by the energy after a trial step Y0 − lr·∇E.
 */
export function estimateLearningRate(Y0: Matrix, X0: Matrix, options: EstimateLearningRateOptions): LrEstimateResult {
  if (!isObjectArgument(options)) {
    throw new TypeError(`Expected an options object with a strategy for estimateLearningRate() but received ${describeValue(options)}`);
  }
  const o = applyWeighting(
    parseOptions<Required<Omit<EstimateLearningRateOptions, 'draws'>> & { draws?: { uniform: number[]; normal: number[] } }>(
      estimateSpecs,
      options,
      'estimateLearningRate()',
    ),
    Object.keys(estimateSpecs),
    'estimateLearningRate()',
  );
  if (o.weighting === 'energy') Object.assign(o, { fidEta: 1, cOrth: 1, fidelityType: 'scaleInvariant', orthogonalityType: 'scaleInvariant' });
  else o.orthogonality = 'gram';
  if (o.strategy === undefined) {
    throw new TypeError(`Expected one of ${lrStrategies.map((s) => `'${s}'`).join(', ')} for options.strategy of estimateLearningRate() but received undefined`);
  }
  const y = expectMatrix(Y0, 'Y0');
  const x = expectMatrix(X0, 'X0');
  expectSameShape(y, 'Y0', x, 'X0');
  expectIntact([y.data, y.rows * y.cols, 'Y0.data']);
  if (stiefel(o.retraction) && y.rows < y.cols) {
    throw new RangeError(`Expected rows ≥ cols (p ≥ k) for Y0 with retraction '${o.retraction}' but received ${y.rows}×${y.cols}`);
  }
  checkFlowMemory(y.rows, y.cols, 'fast', 'adam', 'Y0');
  for (const key of ['fidEta', 'cOrth'] as const) {
    if (!Number.isFinite(o[key])) throw new RangeError(`Expected a finite number for options.${key} of estimateLearningRate() but received ${o[key]}`);
  }
  if (o.weighting === 'energy') requireNonzeroTarget(y, x, false, 'estimateLearningRate()', 'X0');
  const raw = {
    weighting: o.weighting,
    orthogonality: o.orthogonality,
    retraction: o.retraction,
    nsIterations: o.nsIterations,
    nonnegativity: o.nonnegativity,
    fidelityType: o.fidelityType,
    orthogonalityType: o.orthogonalityType,
    w: o.w,
    lrStrategy: o.strategy,
    aggression: o.aggression,
    fidEta: o.fidEta,
    cOrth: o.cOrth,
    seed: o.seed,
    drawsUniform: o.draws ? Float64Array.from(o.draws.uniform) : undefined,
    drawsNormal: o.draws ? Float64Array.from(o.draws.normal) : undefined,
  };
  return callSync(() => native().estimateLearningRate(y.data, x.data, y.rows, y.cols, raw));
}
