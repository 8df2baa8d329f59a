/**
 * nsaFlow(): NSA-Flow in the reference's exact-gradient ("autograd") form, nsa_flow_orth (SPEC.md §5).
 * The whole loop runs in C++ in one native call; the async form runs it on a worker thread.
 */
import type { StopReason } from '../solver.js';
import type { Matrix } from '../matrix.js';
import { native, type CancelToken, type RawProgress } from '../native.js';
import { NumericalError } from '../errors.js';
import { checkWorkspace, retractionTypes, nonNegativityModes, type NonNegativity, type RetractionType } from '../ortho.js';
import { callSync, runJob, type AsyncOptions } from '../runtime.js';
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
import { fidelityTypes, lrStrategies, orthogonalityTypes, type FidelityType, type LrStrategy, type OrthogonalityType } from './options.js';
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
  fidEta: number;
  cOrth: number;
  scale: number;
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

export interface NsaFlowOptions {
  /** Target (same shape as Y0). Missing: X0 = nonneg(Y0) and a jittered start drawn from `seed`. */
  X0?: Matrix;
  /** Weight of orthogonality vs fidelity, also the soft retraction's blend (default 0.5). */
  w?: number;
  retraction?: RetractionType;
  nsIterations?: number;
  nonnegativity?: NonNegativity;
  optimizer?: OptimizerName;
  /** Base optimizer of 'lookahead' (default 'adam', as the reference). */
  lookaheadBase?: (typeof stepOptimizers)[number];
  /** Fixed learning rate. Without it, `lrStrategy` (default 'bayes', as the reference) estimates one. */
  learningRate?: number;
  lrStrategy?: LrStrategy;
  /** Aggression of the strategy, in [0, 1] (default 0.5). */
  aggression?: number;
  /** Draws to inject into the randomized strategies (else drawn from `seed`). */
  lrDraws?: LrDraws;
  maxIterations?: number;
  /** Stop when the slope of the last windowSize energies is > −tolerance (default 1e-4). */
  tolerance?: number;
  windowSize?: number;
  recordEvery?: number;
  warmupIterations?: number;
  /** ReduceLROnPlateau on the total energy: true, or {patience (10), factor (0.5)}. */
  lrScheduler?: boolean | { patience?: number; factor?: number };
  fidelityType?: FidelityType;
  orthogonalityType?: OrthogonalityType;
  /** Gradient norm clip (default 10, as the reference; 0 disables). */
  clipNorm?: number;
  seed?: number;
}

export interface NsaFlowTraces {
  iteration: Float64Array;
  timeMs: Float64Array;
  fidelity: Float64Array;
  orthogonality: Float64Array;
  total: Float64Array;
  /** The learning rate in effect for the step that led to each entry. */
  learningRate: Float64Array;
}

export interface NsaFlowSettings {
  w: number;
  retraction: RetractionType;
  nsIterations: number;
  nonnegativity: NonNegativity;
  optimizer: OptimizerName;
  lookaheadBase: string;
  learningRate: number;
  lrStrategy: LrStrategy | null;
  aggression: number;
  lrDraws: { uniform: number[]; normal: number[] } | null;
  maxIterations: number;
  tolerance: number;
  windowSize: number;
  recordEvery: number;
  warmupIterations: number;
  lrScheduler: { patience: number; factor: number } | null;
  fidelityType: FidelityType;
  orthogonalityType: OrthogonalityType;
  clipNorm: number;
  seed: number;
  /** Weights actually used by the energy, and the scale s the problem was divided by. */
  fidEta: number;
  cOrth: number;
  scale: number;
}

export interface NsaFlowResult {
  /** The best iterate, in the caller's units. */
  Y: Matrix;
  /** The target actually used (non-negative part of X0 when non-negativity is on), caller's units. */
  target: Matrix;
  bestIteration: number;
  /** Best total energy, in the solver's scaled units (as the traces). */
  bestEnergy: number;
  iterations: number;
  stopReason: StopReason;
  traces: NsaFlowTraces;
  settings: NsaFlowSettings;
  /** The estimator's candidates and losses, when the learning rate was estimated. */
  lrEstimate: LrEstimateResult | null;
}

export interface NsaFlowProgress {
  iteration: number;
  maxIterations: number;
  fidelity: number;
  orthogonality: number;
  total: number;
}

const count = (what: string, min = 0) =>
  ({ kind: 'number', integer: true, min, max: 1e8, description: what }) as const;

export const nsaFlowOptionSpecs = {
  X0: { kind: 'custom', description: 'a Matrix of the shape of Y0', check: (v, name) => expectMatrix(v, name) },
  w: { kind: 'number', min: 0, max: 1, default: 0.5, description: 'orthogonality weight and retraction blend' },
  retraction: { kind: 'enum', values: retractionTypes, default: 'softPolar', description: 'retraction' },
  nsIterations: { ...count('Newton–Schulz iterations'), default: 5 },
  nonnegativity: { kind: 'enum', values: nonNegativityModes, default: 'hard', description: 'non-negativity map' },
  optimizer: { kind: 'enum', values: optimizerNames, default: 'asgd', description: 'optimizer' },
  lookaheadBase: { kind: 'enum', values: stepOptimizers, default: 'adam', description: "base optimizer of 'lookahead'" },
  learningRate: { kind: 'number', min: 0, minExclusive: true, description: 'fixed learning rate' },
  lrStrategy: { kind: 'enum', values: lrStrategies, description: 'learning-rate estimation strategy' },
  aggression: { kind: 'number', min: 0, max: 1, default: 0.5, description: 'aggression of the strategy' },
  lrDraws: { kind: 'custom', description: 'an object {uniform?, normal?} of numbers', check: checkDraws },
  maxIterations: { ...count('maximum iterations'), default: 500 },
  tolerance: { kind: 'number', default: 1e-4, description: 'slope tolerance of the stopping rule' },
  windowSize: { ...count('window of the slope rule', 2), default: 10 },
  recordEvery: { ...count('trace interval', 1), default: 1 },
  warmupIterations: { ...count('warm-up iterations'), default: 0 },
  lrScheduler: { kind: 'custom', description: 'a boolean or {patience, factor}', check: checkScheduler, default: false },
  fidelityType: { kind: 'enum', values: fidelityTypes, default: 'scaleInvariant', description: 'fidelity measure' },
  orthogonalityType: { kind: 'enum', values: orthogonalityTypes, default: 'scaleInvariant', description: 'orthogonality measure' },
  clipNorm: { kind: 'number', min: 0, default: 10, description: 'gradient norm clip (0: none)' },
  seed: { kind: 'number', integer: true, min: 0, max: Number.MAX_SAFE_INTEGER, default: 42, description: 'seed of every random draw' },
} as const satisfies OptionSpecs;

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

type Parsed = Omit<Required<NsaFlowOptions>, 'X0' | 'learningRate' | 'lrStrategy' | 'lrDraws' | 'lrScheduler'> & {
  X0?: Matrix;
  learningRate?: number;
  lrStrategy?: LrStrategy;
  lrDraws?: { uniform: number[]; normal: number[] };
  lrScheduler: { patience: number; factor: number } | false;
};

const stiefel = (t: string): boolean => t !== 'none' && t !== 'normalize';

function prepare(Y0: unknown, options: unknown, context: string, specs: OptionSpecs = nsaFlowOptionSpecs) {
  const o = parseOptions<Parsed & AsyncOptions<NsaFlowProgress>>(specs, options, context);
  const y = expectMatrix(Y0, 'Y0');
  if (o.X0) expectSameShape(y, 'Y0', o.X0, 'options.X0');
  if (stiefel(o.retraction) && y.rows < y.cols) {
    throw new RangeError(`Expected rows ≥ cols (p ≥ k) for Y0 with retraction '${o.retraction}' but received ${y.rows}×${y.cols}`);
  }
  checkFlowMemory(y.rows, y.cols, o.optimizer, o.lookaheadBase, 'Y0');
  // Reading Y0 ran the caller's getters after options.X0 was read: its buffer must be unchanged.
  if (o.X0) expectIntact([o.X0.data, y.rows * y.cols, 'options.X0.data']);
  const raw = {
    retraction: o.retraction,
    nsIterations: o.nsIterations,
    nonnegativity: o.nonnegativity,
    fidelityType: o.fidelityType,
    orthogonalityType: o.orthogonalityType,
    w: o.w,
    optimizer: o.optimizer,
    lookaheadBase: o.lookaheadBase,
    // the reference's Lookahead settings (not public options)
    lookaheadK: 5,
    lookaheadAlpha: 0.5,
    learningRate: o.learningRate ?? 0,
    // as the reference: without a fixed rate, estimate one (by 'bayes' unless told otherwise)
    lrStrategy: o.learningRate === undefined ? (o.lrStrategy ?? 'bayes') : '',
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
  return { o, y, raw };
}

function toResult(r: RawFlowResult, y: Matrix, o: Parsed, strategy: string): NsaFlowResult {
  if (!Number.isFinite(r.bestEnergy)) {
    throw new NumericalError(
      `nsaFlow(): the energy of every iterate is ${r.bestEnergy}: squares of Y0's or X0's entries overflow a double; rescale Y0 and X0`,
    );
  }
  const estimated = r.lrEstimate !== null;
  return {
    Y: { rows: y.rows, cols: y.cols, data: r.Y },
    target: { rows: y.rows, cols: y.cols, data: r.target },
    bestIteration: r.bestIteration,
    bestEnergy: r.bestEnergy,
    iterations: r.iterations,
    stopReason: r.stopReason,
    traces: r.traces,
    settings: {
      w: o.w,
      retraction: o.retraction,
      nsIterations: o.nsIterations,
      nonnegativity: o.nonnegativity,
      optimizer: o.optimizer,
      lookaheadBase: o.lookaheadBase,
      learningRate: r.learningRate,
      lrStrategy: estimated ? (strategy as LrStrategy) : null,
      aggression: o.aggression,
      lrDraws: estimated ? { uniform: Array.from(r.lrEstimate!.draws.uniform), normal: Array.from(r.lrEstimate!.draws.normal) } : null,
      maxIterations: o.maxIterations,
      tolerance: o.tolerance,
      windowSize: o.windowSize,
      recordEvery: o.recordEvery,
      warmupIterations: o.warmupIterations,
      lrScheduler: o.lrScheduler === false ? null : o.lrScheduler,
      fidelityType: o.fidelityType,
      orthogonalityType: o.orthogonalityType,
      clipNorm: o.clipNorm,
      seed: o.seed,
      fidEta: r.fidEta,
      cOrth: r.cOrth,
      scale: r.scale,
    },
    lrEstimate: r.lrEstimate,
  };
}

/** nsaFlow() on the calling thread, for small problems. */
export function nsaFlowSync(Y0: Matrix, options?: NsaFlowOptions): NsaFlowResult {
  const { o, y, raw } = prepare(Y0, options, 'nsaFlowSync()');
  const r = callSync(() => native().nsaFlowSync(y.data, o.X0?.data ?? null, y.rows, y.cols, raw));
  return toResult(r, y, o, raw.lrStrategy);
}

const asyncSpecs = { ...nsaFlowOptionSpecs, ...asyncOptionSpecs } as const satisfies OptionSpecs;

/**
 * NSA-Flow (exact-gradient mode) on a worker thread: minimizes (1−w)·fidEta·F(Y, X0) + w·cOrth·O(Y)
 * over Y = nonneg(retract_w(Z)) with the chosen optimizer, and returns the best iterate.
 */
export function nsaFlow(Y0: Matrix, options?: NsaFlowOptions & AsyncOptions<NsaFlowProgress>): Promise<NsaFlowResult> {
  let prepared: ReturnType<typeof prepare>;
  try {
    prepared = prepare(Y0, options, 'nsaFlow()', asyncSpecs);
  } catch (err) {
    return Promise.reject(err);
  }
  const { o, y, raw } = prepared;
  const inputs = o.X0 ? [y.data, o.X0.data] : [y.data];
  return runJob(
    inputs,
    ([yd, xd], token, onProgress, interval) =>
      native().nsaFlowAsync(yd!, xd ?? null, y.rows, y.cols, raw, token, onProgress, interval),
    o,
    (r): NsaFlowProgress => ({
      iteration: r.iteration,
      maxIterations: r.total,
      fidelity: r.values[0]!,
      orthogonality: r.values[1]!,
      total: r.values[2]!,
    }),
  ).then((r) => toResult(r, y, o, raw.lrStrategy));
}

export interface EstimateLearningRateOptions {
  strategy: LrStrategy;
  aggression?: number;
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
  aggression: nsaFlowOptionSpecs.aggression,
  w: nsaFlowOptionSpecs.w,
  retraction: nsaFlowOptionSpecs.retraction,
  nsIterations: nsaFlowOptionSpecs.nsIterations,
  nonnegativity: nsaFlowOptionSpecs.nonnegativity,
  fidelityType: nsaFlowOptionSpecs.fidelityType,
  orthogonalityType: nsaFlowOptionSpecs.orthogonalityType,
  fidEta: { kind: 'number', default: 1, description: 'fidelity scale' },
  cOrth: { kind: 'number', default: 1, description: 'orthogonality scale' },
  seed: nsaFlowOptionSpecs.seed,
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
  const o = parseOptions<Required<Omit<EstimateLearningRateOptions, 'draws'>> & { draws?: { uniform: number[]; normal: number[] } }>(
    estimateSpecs,
    options,
    'estimateLearningRate()',
  );
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
  const raw = {
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
