/**
 * Non-negative CP decomposition (NTF; SPEC.md §10): T ≈ Σ_a ⊗ₘ Fₘ[:, a] with Fₘ ≥ 0 of shape dₘ × r
 * (tensorly's layout). Two solvers, both updating the modes in order, each with the others' newest
 * values, in one native call:
 * - 'mu': multiplicative updates Fₘ ← Fₘ ∘ max(Mₘ, ε)/max(FₘGₘ, ε), Mₘ the MTTKRP, Gₘ = ⊙ᵢ≠ₘ FᵢᵀFᵢ,
 *   ε = machine epsilon (as tensorly's non_negative_parafac, the Stratified-NTF reference's baseline);
 * - 'hals': hierarchical ALS, the exact non-negative minimizer for one coordinate at a time, each
 *   mode's factor swept up to options.innerSweeps times on that mode's MTTKRP (the stronger baseline;
 *   it usually reaches a lower loss in far fewer iterations).
 */
import type { Matrix } from '../matrix.js';
import { native, type CancelToken, type RawProgress } from '../native.js';
import { callSync, productFlops, runJob, type AsyncOptions } from '../runtime.js';
import type { Tensor } from '../tensor.js';
import { expectTensor, maxTensorOrder } from '../tensor-ops.js';
import {
  asyncOptionSpecs,
  describeValue,
  expectMatricesIntact,
  expectMatrixList,
  expectShapeInteger,
  isObjectArgument,
  ownKeys,
  parseOptions,
  readField,
  scaledNorm,
  subName,
  unknownOption,
  type OptionSpecs,
} from '../validate.js';
import {
  callInContext,
  certificateToleranceSpec,
  checkFactorMemory,
  expectFiniteLoss,
  inContext,
  lossOutcome,
  mapNmfProgress,
  maxRank,
  resolveWeightedHals,
  teamThreadsBound,
  weightedHalsOptionSpec,
  type LossOutcome,
  type NmfProgress,
  type RawTrace,
  type WeightedHals,
} from './common.js';
import { bestOf, bestOfSync, restartsDoubles, restartsOptionSpec, type RestartsSummary } from './restarts.js';
import { checkTensorMask, checkTensorWeights, tensorWeights } from './stratified-ntf.js';

interface RawNtfResult extends RawTrace {
  factors: Float64Array[];
}
interface RawNtfOptions {
  weights?: Float64Array;
  maxIterations: number;
  solver: NtfSolver;
  epsilon: number;
  tolerance: number;
  lossEvery: number;
  seed: number;
  certificateTolerance: number;
  innerSweeps: number;
  innerTolerance: number;
  weightedHals?: WeightedHals;
}
type RawArgs = [T: Float64Array, shape: number[], rank: number, options: RawNtfOptions, factors: Float64Array[] | undefined];

declare module '../native.js' {
  interface NativeBinding {
    ntf(...args: RawArgs): RawNtfResult;
    ntfAsync(
      ...args: [...RawArgs, token: CancelToken, onProgress: ((r: RawProgress) => void) | undefined, intervalMs: number]
    ): Promise<RawNtfResult>;
  }
}

export type NtfSolver = 'mu' | 'hals';

export interface NtfOptions {
  /** 'hals' (block-coordinate descent, default: sooner to every accuracy, docs/performance.md) or 'mu' (tensorly's multiplicative updates). */
  solver?: NtfSolver;
  /** Iterations (sweeps over all modes) to run (default 100). */
  maxIterations?: number;
  /** 'random' (U(0,1) from the seeded generator) or the initial factors (dₘ × r each). */
  init?: 'random' | { factors: Matrix[] };
  /** Seed of the random initialization (default 0). */
  seed?: number;
  /** Stop when |Δloss| < tolerance·loss between two recorded losses (default 0: run maxIterations). */
  tolerance?: number;
  /** Record the loss every this many iterations, and after the last one (default 1). */
  lossEvery?: number;
  /** MU floor of numerators and denominators (default machine epsilon 2.220446049250313e-16). */
  epsilon?: number;
  /** Stop ('gradMap') when the certificate is at most this, checked before every lossEvery-th iteration (default 0: never). */
  certificateTolerance?: number;
  /** Runs from the seeds seed … seed + restarts − 1 and returns the one of smallest loss (default 1). */
  restarts?: number;
  /** Entry weights ≥ 0, a Tensor of T's shape (0 = missing): the objective is ½Σω(t − model)² (docs/missing-values.md). */
  weights?: Tensor;
  /** The missing entries: a boolean array / Uint8Array of T's size in C order (true = missing; they may hold NaN). */
  mask?: ArrayLike<boolean | number>;
  /** 'nan': NaN entries of T are missing; 'observed' (default). */
  missing?: 'observed' | 'nan';
  /**
   * Updates of each mode's factor per iteration, reusing that mode's MTTKRP and Gram Hadamard (the
   * expensive part), so extra sweeps are cheap: HALS sweeps each column of the factor up to this many
   * times (stopping early by innerTolerance), MU repeats its update. Default: DEFAULT_NTF_INNER_SWEEPS
   * for HALS (chosen by measured time to accuracy, docs/performance.md), DEFAULT_NTF_EXACT_WEIGHTED_SWEEPS
   * for its exact weighted update (weightedHals), 1 for MU (tensorly's rule); MU only 1 with weights
   * or missing entries.
   */
  innerSweeps?: number;
  /** Inner sweeps stop when a sweep's change is at most this fraction of the first sweep's (default 0.1). */
  innerTolerance?: number;
  /**
   * HALS's update with weights or missing entries (docs/missing-values.md): 'exact' minimizes the
   * weighted objective coordinate by coordinate, keeping the residuals of the entries of weight ≠ 1
   * current through every step; 'surrogate' (every weight ≤ 1) sweeps the plain objective on the
   * data with the missing part filled by the current model, x̃ = ωt + (1 − ω)·model, a majorizer of
   * the weighted one (majorize–minimize: the loss never rises), at about the cost of an unweighted
   * sweep. 'auto' (default): 'surrogate' when every weight is ≤ 1 and the missing share Σ(1 − ω)/size
   * is at most AUTO_SURROGATE_MISSING_SHARE.ntf (30 %), else 'exact' (chosen by measured time to
   * accuracy). Only with solver 'hals' and weights or missing entries, unless 'auto'.
   */
  weightedHals?: WeightedHals | 'auto';
}

/**
 * The inner sweeps of an unweighted HALS solve when options.innerSweeps is not given, chosen by
 * bench/time-to-accuracy's ntf section (docs/performance.md).
 */
export const DEFAULT_NTF_INNER_SWEEPS = 10;

export { AUTO_SURROGATE_MISSING_SHARE, type WeightedHals } from './common.js';

/**
 * The inner sweeps of HALS's exact weighted update (weightedHals 'exact') when options.innerSweeps is
 * not given: each of its sweeps passes over the listed entries again, and 3 reached every loss level
 * sooner than 1 or 10 with two thirds or more of the entries missing (docs/missing-values.md).
 */
export const DEFAULT_NTF_EXACT_WEIGHTED_SWEEPS = 3;

/** {iteration, maxIterations, loss, normalizedLoss = loss/‖T‖}. */
export type NtfProgress = NmfProgress;

export interface NtfSettings {
  rank: number;
  solver: NtfSolver;
  maxIterations: number;
  init: 'random' | 'given';
  seed: number;
  tolerance: number;
  lossEvery: number;
  epsilon: number;
  certificateTolerance: number;
  restarts: number;
  innerSweeps: number;
  innerTolerance: number;
  /** The update HALS took with weights ('auto' resolved); 'auto' where no weights or MU. */
  weightedHals: WeightedHals | 'auto';
}

/**
 * The factors and the outcome (lib/solver.ts): `loss` is ‖T − Σ_a ⊗ₘ Fₘ[:, a]‖ after the last
 * iteration, `normalizedLoss` = loss/‖T‖, `traces` {iteration, timeMs, loss, normalizedLoss} (iteration
 * 0 is the initial loss), `certificate` the KKT gradient mapping of ½loss²/‖T‖² over the factors.
 */
export interface NtfResult extends LossOutcome {
  /** Factor of mode m: dₘ × r. */
  factors: Matrix[];
  certificate: number;
  settings: NtfSettings;
  /** With options.restarts > 1: every run's seed and loss, and which one this is. */
  restarts?: RestartsSummary;
}

export const ntfOptionSpecs = {
  solver: { kind: 'enum', values: ['mu', 'hals'], default: 'hals', description: 'update rule' },
  maxIterations: { kind: 'number', integer: true, min: 0, max: 1e8, default: 100, description: 'iterations' },
  init: {
    kind: 'custom',
    description: "'random' or {factors}",
    default: 'random',
    check: (v: unknown, name: string) => {
      if (v === 'random') return v;
      const what = `'random' or an object {factors: Matrix[]} for ${name}`;
      if (typeof v === 'string') throw new RangeError(`Expected ${what} but received ${describeValue(v)}`);
      if (!isObjectArgument(v)) throw new TypeError(`Expected ${what} but received ${describeValue(v)}`);
      for (const key of ownKeys(v, name)) if (key !== 'factors') throw unknownOption(key, ['factors'], name, 'key', 'in');
      const factors = readField(v, 'factors', subName(name, '.factors'));
      if (!Array.isArray(factors)) throw new TypeError(`Expected ${what} but received an object whose factors is ${describeValue(factors)}`);
      // A snapshot: the list and each matrix are read once, here.
      return { factors: expectMatrixList(factors, subName(name, '.factors'), { nonNegative: true }, maxTensorOrder) };
    },
  },
  seed: { kind: 'number', integer: true, min: 0, max: Number.MAX_SAFE_INTEGER, default: 0, description: 'seed' },
  tolerance: { kind: 'number', min: 0, default: 0, description: 'relative loss change that stops the run' },
  lossEvery: { kind: 'number', integer: true, min: 1, max: 1e8, default: 1, description: 'iterations between recorded losses' },
  epsilon: { kind: 'number', min: 0, default: 2.220446049250313e-16, description: 'MU floor' },
  certificateTolerance: certificateToleranceSpec,
  restarts: restartsOptionSpec,
  weights: { kind: 'custom', description: "entry weights ≥ 0, a Tensor of T's shape (0 = missing)", check: checkTensorWeights },
  mask: { kind: 'custom', description: "missing entries: a boolean array of T's size, C order (true = missing)", check: checkTensorMask },
  missing: { kind: 'enum', values: ['observed', 'nan'], default: 'observed', description: "'nan': NaN entries of T are missing" },
  innerSweeps: {
    kind: 'number',
    integer: true,
    min: 1,
    max: 2 ** 20,
    description: `inner updates of each factor per iteration (default ${DEFAULT_NTF_INNER_SWEEPS} for hals, ${DEFAULT_NTF_EXACT_WEIGHTED_SWEEPS} for its exact weighted update, 1 for mu; mu only 1 with weights or missing entries)`,
  },
  innerTolerance: { kind: 'number', min: 0, max: 1, default: 0.1, description: "inner sweeps stop at this fraction of the first sweep's change" },
  weightedHals: weightedHalsOptionSpec,
} as const satisfies OptionSpecs;

const asyncSpecs = { ...ntfOptionSpecs, ...asyncOptionSpecs } as const satisfies OptionSpecs;

type Parsed = { t: Tensor; rank: number; factors: Float64Array[] | undefined; settings: NtfSettings; normT: number; weights?: Float64Array; context: string };

/**
 * What weights add: ω and the zeroed copy of T (2·size); for the listed entries (weight ≠ 1) the list
 * (N int32 indices, κ and data: N/2 + 2 doubles each), its groups by mode (ntf.cpp's ListedByMode: per
 * mode the other N − 1 indices, κ and data of each entry, N(N−1)/2 + 2N doubles, and the groups'
 * starts) and the entries' model values: (N(N−1)/2 + 2.5N + 3) doubles per listed entry and Σ(d + 1);
 * the factors' entry-major copies (Σd·r) and the row sums of MU and of HALS's surrogate (2·d_max·r);
 * and the exact HALS's column scratch, per thread of the team one column's Khatri–Rao rows and
 * residuals, at most min(listed, size/d_min) entries (native weightedHalsScratchDoubles counts the same).
 */
function listedDoubles(missing: { weights?: Float64Array; listed?: number }, shape: readonly number[], r: number, size: number, exactHals: boolean): number {
  if (!missing.weights) return 0;
  const listed = missing.listed ?? size;
  const order = shape.length;
  const sumDims = shape.reduce((a, d) => a + d, 0);
  const largest = Math.min(listed, size / Math.min(...shape));
  const halsScratch = exactHals ? teamThreadsBound() * ((r + 1) * (largest + 3) + 5 * r + 16) : 0;
  return 2 * size + ((order * (order - 1)) / 2 + 2.5 * order + 3) * listed + sumDims + order + (sumDims + 2 * Math.max(...shape)) * r + halsScratch;
}

function parse(T: unknown, rank: unknown, options: unknown, context: string, specs: OptionSpecs): Parsed & { o: Required<NtfOptions> } {
  const o = parseOptions<Required<NtfOptions>>(specs, options, context);
  const t = expectTensor(T, 'T', 2);
  const missing = tensorWeights(t, o as unknown as Parameters<typeof tensorWeights>[1], context);
  const weightedHals = resolveWeightedHals('ntf', o.weightedHals, o.solver, [missing], t.data.length, context);
  const given = o.innerSweeps as number | undefined;
  if (given === undefined) {
    o.innerSweeps = o.solver === 'mu' ? 1 : weightedHals === 'exact' ? DEFAULT_NTF_EXACT_WEIGHTED_SWEEPS : DEFAULT_NTF_INNER_SWEEPS;
  } else if (given > 1 && missing.weights && o.solver === 'mu') {
    throw new RangeError(
      `Expected options.innerSweeps 1 for solver 'mu' with missing entries or weights for ${context} but received ${given} (its repeats would reuse the products of the unweighted loss)`,
    );
  }
  const r = expectShapeInteger(rank, 'rank', maxRank);
  // Factors (Σdₘ × r) with result copies, r×r Grams per mode, and the MTTKRP's r × size/d_c intermediate.
  const size = t.data.length;
  const dEnd = Math.max(t.shape[0]!, t.shape[t.shape.length - 1]!);
  const sumDims = t.shape.reduce((a, d) => a + d, 0);
  checkFactorMemory(
    Math.max(r * (size / dEnd), Math.max(...t.shape) * r),
    restartsDoubles(o.restarts, 3 * sumDims * r + (t.shape.length + 1) * r * r + 2 * r * (size / dEnd) + listedDoubles(missing, t.shape, r, size, weightedHals === 'exact'), sumDims * r),
    `rank ${r} with T of shape [${t.shape.join(', ')}] (the factors and the solver's workspaces${o.restarts > 1 ? `, ${o.restarts} restarts` : ''})`,
  );
  let factors: Float64Array[] | undefined;
  if (o.init !== 'random') {
    const list = o.init.factors;
    if (list.length !== t.shape.length) {
      throw new RangeError(`Expected one factor per mode (${t.shape.length}) for options.init.factors but received ${list.length}`);
    }
    factors = list.map((mat, m) => {
      if (mat.rows !== t.shape[m] || mat.cols !== r) {
        throw new RangeError(`Expected a ${t.shape[m]}×${r} matrix for options.init.factors[${m}] but received ${mat.rows}×${mat.cols}`);
      }
      return mat.data;
    });
  }
  // T was read after the options: its getters ran after the given factors were read.
  if (o.init !== 'random') expectMatricesIntact(o.init.factors, 'options.init.factors');
  const settings: NtfSettings = {
    rank: r,
    solver: o.solver,
    maxIterations: o.maxIterations,
    init: factors ? 'given' : 'random',
    seed: o.seed,
    tolerance: o.tolerance,
    lossEvery: o.lossEvery,
    epsilon: o.epsilon,
    certificateTolerance: o.certificateTolerance,
    restarts: o.restarts,
    innerSweeps: o.innerSweeps,
    innerTolerance: o.innerTolerance,
    weightedHals,
  };
  return { t, rank: r, factors, settings, normT: missing.norm, weights: missing.weights, o, context };
}

function rawArgs(p: Parsed, data: Float64Array, factors: Float64Array[] | undefined, seed: number): RawArgs {
  const s = p.settings;
  return [
    data,
    [...p.t.shape],
    p.rank,
    {
      maxIterations: s.maxIterations,
      solver: s.solver,
      epsilon: s.epsilon,
      tolerance: s.tolerance,
      lossEvery: s.lossEvery,
      seed,
      certificateTolerance: s.certificateTolerance,
      innerSweeps: s.innerSweeps,
      innerTolerance: s.innerTolerance,
      ...(p.weights ? { weights: p.weights } : {}),
      ...(s.weightedHals !== 'auto' ? { weightedHals: s.weightedHals } : {}),
    },
    factors,
  ];
}

function toResult(raw: RawNtfResult, p: Parsed): NtfResult {
  expectFiniteLoss(raw.trace.loss, p.context, 'T');
  return {
    factors: raw.factors.map((data, m) => ({ rows: p.t.shape[m]!, cols: p.rank, data })),
    ...lossOutcome(raw, p.normT),
    certificate: raw.certificate!,
    settings: p.settings,
  };
}

/** Non-negative CP on a worker thread. */
export function ntf(T: Tensor, rank: number, options: NtfOptions & AsyncOptions<NtfProgress> = {}): Promise<NtfResult> {
  let p: ReturnType<typeof parse>;
  try {
    p = parse(T, rank, options, 'ntf()', asyncSpecs);
  } catch (err) {
    return Promise.reject(err);
  }
  const o = p.o as Required<NtfOptions> & AsyncOptions<NtfProgress>;
  return bestOf(o, p.factors !== undefined, p.context, (seed, jobOptions) =>
    runJob(
      [p.t.data, ...(p.factors ?? [])],
      ([data, ...factors], token, onProgress, interval) =>
        native().ntfAsync(...rawArgs(p, data!, p.factors ? (factors as Float64Array[]) : undefined, seed), token, onProgress, interval),
      jobOptions,
      mapNmfProgress,
      productFlops(p.t.data.length, p.rank),
    )
      .catch(inContext(p.context, 'T'))
      .then((raw) => toResult(raw, p)),
  );
}

/** Non-negative CP on the calling thread (for small problems). */
export function ntfSync(T: Tensor, rank: number, options: NtfOptions = {}): NtfResult {
  const p = parse(T, rank, options, 'ntfSync()', ntfOptionSpecs);
  return bestOfSync(p.o, p.factors !== undefined, p.context, (seed) =>
    toResult(callInContext(p.context, 'T', () => callSync(() => native().ntf(...rawArgs(p, p.t.data, p.factors, seed)), productFlops(p.t.data.length, p.rank))), p),
  );
}
