/**
 * Stratified-NTF (Sietsema et al. 2024; SPEC.md §9): strata A(s) of shape (nₛ, d₂, …, d_N) modelled as
 * a rank-qₛ tensor shared by the stratum's samples plus a rank-r CP term with per-sample weights w(s)
 * and topics h shared by all strata:
 *   B(s)[i, j₂…j_N] = Σₐ Πₜ v(s)ₜ[a, jₜ] + Σ_b w(s)[b, i] Πₜ hₜ[b, jₜ].
 * Two solvers of the same objective (`solver`): multiplicative updates as the reference (numerators
 * and denominators floored at `epsilon`), with its optional total-variation term on h₂, h₃; and
 * block-coordinate descent by HALS (native/kernels/ntf_stratified_hals.hpp: each block v(s)ₜ, w(s), hₜ
 * minimized exactly coordinate by coordinate over [epsilon, ∞), a few inner sweeps per block reusing
 * its MTTKRP and Gram; the loss never increases). The whole loop runs in one native call; numerators and
 * denominators come from Gram/Hadamard products and MTTKRPs, never from rank × d₂ × … × d_N
 * intermediates. Any order N ≥ 2 (order 2 is Stratified-NMF's data shape).
 * Missing values (docs/missing-values.md): `weights`/`mask` per stratum and `missing: 'nan'` make the
 * objective ½Σₛ Σ ω(A(s) − B(s))², fitted by the weighted multiplicative updates.
 */

import type { Matrix } from '../matrix.js';
import { bestOf, bestOfSync, restartsDoubles, restartsOptionSpec, type RestartsSummary } from './restarts.js';
import { native, type CancelToken, type RawProgress } from '../native.js';
import { callSync, productFlops, runJob, type AsyncOptions } from '../runtime.js';
import type { Tensor } from '../tensor.js';
import { expectTensor } from '../tensor-ops.js';
import {
  callInContext,
  certificateToleranceSpec,
  checkFactorMemory,
  combinedNorm,
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
import {
  asyncOptionSpecs,
  describeValue,
  expectIntact,
  expectMatrix,
  expectShapeInteger,
  isObjectArgument,
  ownKeys,
  parseOptions,
  readField,
  readFields,
  readList,
  scaledNorm,
  subName,
  unknownOption,
  type OptionSpecs,
} from '../validate.js';
import { checkedNonNegativeNorm, missingOptionSpecs } from './missing.js';

interface RawState {
  v: Float64Array[];
  w: Float64Array[];
  h: Float64Array[];
}
interface RawStratifiedNtfResult extends RawState, RawTrace {
  scratchDoubles: number;
  stages?: RawState[];
}
interface RawStratifiedNtfOptions {
  solver: StratifiedNtfSolver;
  /** One per stratum: its entry weights (0 at missing entries), or null for a fully observed stratum. */
  weights?: (Float64Array | null)[];
  weightedHals?: WeightedHals;
  maxIterations: number;
  vScaling: number;
  tv: boolean;
  tvReg: number;
  epsilon: number;
  tolerance: number;
  lossEvery: number;
  seed: number;
  recordStages: boolean;
  certificateTolerance: number;
}
type RawArgs = [
  strata: Float64Array[],
  samples: number[],
  dims: number[],
  strataRanks: number[],
  rank: number,
  options: RawStratifiedNtfOptions,
  init: RawState | undefined,
];

declare module '../native.js' {
  interface NativeBinding {
    stratifiedNtf(...args: RawArgs): RawStratifiedNtfResult;
    stratifiedNtfAsync(
      ...args: [...RawArgs, token: CancelToken, onProgress: ((r: RawProgress) => void) | undefined, intervalMs: number]
    ): Promise<RawStratifiedNtfResult>;
    stratifiedNtfLoss(...args: RawArgs): number;
  }
}

/** Explicit initial values: v[s][t] qₛ × dₜ, w[s] r × nₛ, h[t] r × dₜ (t over the modes after the first). */
export interface StratifiedNtfState {
  v: Matrix[][];
  w: Matrix[];
  h: Matrix[];
}

/** 'mu': multiplicative updates (the reference's rule); 'hals': block-coordinate descent (HALS). */
export type StratifiedNtfSolver = 'mu' | 'hals';

export interface StratifiedNtfOptions {
  /** Rank of each stratum's own term: one number for all strata, or one per stratum. Required. */
  strataRank: number | number[];
  /**
   * Update rule (default 'mu'): 'mu' the reference's multiplicative updates; 'hals' block-coordinate
   * descent, each block solved exactly coordinate by coordinate (monotone; reaches the same loss in
   * far fewer iterations; with missing entries or weights, weighted sweeps). 'hals' does not take
   * `tv`: a RangeError names both options.
   */
  solver?: StratifiedNtfSolver;
  /** Iterations to run (default 100). */
  maxIterations?: number;
  /** v sweeps per iteration (default 2, as the reference). */
  vScaling?: number;
  /** Total variation on h₂ and h₃ with weight `reg` (the reference's "tv"); off when undefined or null. */
  tv?: { reg: number } | null | undefined;
  /** 'random' (U(0,1) from the seeded generator, the reference's order: all v, all w, all h) or given values. */
  init?: 'random' | StratifiedNtfState;
  /** Seed of the random initialization (default 0). */
  seed?: number;
  /** Stop when |Δloss| < tolerance·loss between two recorded losses (default 0: run maxIterations). */
  tolerance?: number;
  /** Record the loss every this many iterations, and after the last one (default 1). */
  lossEvery?: number;
  /** MU: floor of every numerator and denominator; HALS: lower bound of every entry (default 1e-9, as the reference). */
  epsilon?: number;
  /**
   * Stop ('gradMap') when the certificate is at most this, checked before every lossEvery-th iteration
   * (default 0: never). Not with TV (no certificate is defined there).
   */
  certificateTolerance?: number;
  /** Runs from the seeds seed … seed + restarts − 1 and returns the one of smallest loss (default 1). */
  restarts?: number;
  /**
   * Entry weights ≥ 0 (0 = missing), one Tensor of its stratum's shape per stratum (null for none):
   * the objective is ½Σₛ Σ ω(A(s) − B(s))² (docs/missing-values.md).
   */
  weights?: (Tensor | null)[];
  /** The missing entries, one boolean array / Uint8Array of its stratum's size (C order, true = missing) per stratum (null for none). */
  mask?: (ArrayLike<boolean | number> | null)[];
  /** 'nan': NaN entries of the strata are missing; 'observed' (default). */
  missing?: 'observed' | 'nan';
  /**
   * HALS's update with weights or missing entries (docs/missing-values.md), as ntf's: 'exact' sweeps
   * each block's weighted objective over the entries of weight ≠ 1; 'surrogate' (every weight ≤ 1)
   * sweeps the plain one on the data with the missing part filled by the current model (majorize–
   * minimize per block); 'auto' (default): the surrogate up to a missing share Σ(1 − ω)/size of
   * AUTO_SURROGATE_MISSING_SHARE.stratifiedNtf (12 %) over all strata, else the exact update (chosen
   * by measured time to accuracy). Only with solver 'hals' and weights or missing entries, unless
   * 'auto'.
   */
  weightedHals?: WeightedHals | 'auto';
}

/**
 * The options of the old call form `stratifiedNtf(strata, {strataRank, rank, …})`, deprecated: call
 * `stratifiedNtf(strata, rank, {strataRank, …})` like every other method.
 */
export interface LegacyStratifiedNtfOptions extends StratifiedNtfOptions {
  /** Number of shared topics r. Required. */
  rank: number;
}

/** {iteration, maxIterations, loss (with the TV term when TV is on), normalizedLoss = loss / √(Σₛ‖A(s)‖²)}. */
export type StratifiedNtfProgress = NmfProgress;

export interface StratifiedNtfSettings {
  strataRank: number[];
  rank: number;
  solver: StratifiedNtfSolver;
  maxIterations: number;
  vScaling: number;
  tv: { reg: number } | null;
  /** 'given' when explicit initial values were passed (pass them again to repeat the run). */
  init: 'random' | 'given';
  seed: number;
  tolerance: number;
  lossEvery: number;
  epsilon: number;
  certificateTolerance: number;
  restarts: number;
  /** The update HALS took with weights ('auto' resolved); 'auto' where no weights or MU. */
  weightedHals: WeightedHals | 'auto';
}

/**
 * The state and the outcome (lib/solver.ts): `loss` is √(Σₛ‖A(s) − B(s)‖²) (plus the TV term when TV is
 * on) after the last iteration, `normalizedLoss` = loss / √(Σₛ‖A(s)‖²), `traces` {iteration, timeMs,
 * loss, normalizedLoss} (iteration 0 is the initial loss), `certificate` the KKT gradient mapping of
 * ½Σₛ‖A(s) − B(s)‖²/Σₛ‖A(s)‖² over every v(s)ₜ, w(s) and hₜ — null with TV (a non-smooth loss).
 * With missing entries or weights each of these is over the observed entries, weighted by ω.
 */
export interface StratifiedNtfResult extends StratifiedNtfState, LossOutcome {
  settings: StratifiedNtfSettings;
  /** With options.restarts > 1: every run's seed and loss, and which one this is. */
  restarts?: RestartsSummary;
  /** Working memory the solver allocated besides the data and the factors, in bytes. */
  workBytes: number;
}

const int = (min: number, max: number, def: number | undefined, description: string) =>
  ({ kind: 'number', integer: true, min, max, default: def, description }) as const;

export const stratifiedNtfOptionSpecs = {
  strataRank: {
    kind: 'custom',
    description: 'a positive integer or an array of positive integers (one per stratum)',
    check: (v: unknown, name: string) => {
      if (Array.isArray(v)) return readList(v, name, 'an array of ranks', 1 << 20).map((q, i) => expectShapeInteger(q, subName(name, `[${i}]`), maxRank));
      return expectShapeInteger(v, name, maxRank);
    },
  },
  maxIterations: int(0, 1e8, 100, 'iterations'),
  solver: { kind: 'enum', values: ['mu', 'hals'], default: 'mu', description: 'update rule' },
  vScaling: int(1, 1e6, 2, 'v sweeps per iteration'),
  tv: {
    kind: 'custom',
    description: 'undefined, null or {reg: a finite number ≥ 0}',
    check: (v: unknown, name: string) => {
      // null is off, as settings.tv records it (so that settings can be passed back as options).
      if (v === null) return undefined;
      if (!isObjectArgument(v)) {
        throw new TypeError(`Expected undefined, null or an object {reg} for ${name} but received ${describeValue(v)}`);
      }
      for (const key of ownKeys(v, name)) {
        if (key !== 'reg') throw unknownOption(key, ['reg'], name, 'key', 'in');
      }
      const reg = readField(v, 'reg', subName(name, '.reg'));
      if (typeof reg !== 'number') {
        throw new TypeError(`Expected a finite number ≥ 0 for ${name}.reg but received ${describeValue(reg)}`);
      }
      if (!(reg >= 0) || !Number.isFinite(reg)) {
        throw new RangeError(`Expected a finite number ≥ 0 for ${name}.reg but received ${describeValue(reg)}`);
      }
      return { reg };
    },
  },
  init: {
    kind: 'custom',
    description: "'random' or {v, w, h}",
    default: 'random',
    check: (v: unknown, name: string) => {
      if (v === 'random') return v;
      if (typeof v === 'string') throw new RangeError(`Expected 'random' or an object {v, w, h} for ${name} but received ${describeValue(v)}`);
      if (!isObjectArgument(v)) {
        throw new TypeError(`Expected 'random' or an object {v, w, h} for ${name} but received ${describeValue(v)}`);
      }
      // Other keys are allowed: a result (which extends the state) can be passed back as init.
      return readFields(v, ['v', 'w', 'h'] as const, name.split(' of ')[0]!);
    },
  },
  seed: int(0, Number.MAX_SAFE_INTEGER, 0, 'seed of the random initialization'),
  tolerance: { kind: 'number', min: 0, default: 0, description: 'relative loss change that stops the run' },
  lossEvery: int(1, 1e8, 1, 'iterations between two recorded losses'),
  epsilon: { kind: 'number', min: 0, default: 1e-9, description: 'floor of numerators and denominators (MU), of the entries (HALS)' },
  certificateTolerance: certificateToleranceSpec,
  restarts: restartsOptionSpec,
  weightedHals: weightedHalsOptionSpec,
  weights: {
    kind: 'custom',
    description: "entry weights ≥ 0: one Tensor of its stratum's shape per stratum (null for none; 0 = missing)",
    check: (v: unknown, name: string) => perStratum(v, name, checkTensorWeights),
  },
  mask: {
    kind: 'custom',
    description: "missing entries: one boolean array of its stratum's size (C order, true = missing) per stratum (null for none)",
    check: (v: unknown, name: string) => perStratum(v, name, checkTensorMask),
  },
  missing: { kind: 'enum', values: ['observed', 'nan'], default: 'observed', description: "'nan': NaN entries of the strata are missing" },
} as const satisfies OptionSpecs;

/** A list with one entry per stratum, null (or undefined) for a stratum without (checked against the strata in parse). */
function perStratum(v: unknown, name: string, check: (x: unknown, name: string) => unknown): (unknown | undefined)[] {
  if (!Array.isArray(v)) throw new TypeError(`Expected an array (one entry per stratum; null for none) for ${name} but received ${describeValue(v)}`);
  return readList(v, name, 'an array (one entry per stratum)', 1 << 20).map((x, s) => (x === null || x === undefined ? undefined : check(x, subName(name, `[${s}]`))));
}

/** Entry weights of a tensor: a Tensor of finite values ≥ 0 (a snapshot). */
export function checkTensorWeights(v: unknown, name: string): Tensor {
  const w = expectTensor(v, name, 1);
  w.data.forEach((x, k) => {
    if (!(x >= 0) || x === Infinity) throw new RangeError(`Expected finite weights ≥ 0 in ${name} but received ${describeValue(x)} at index ${k}`);
  });
  return { shape: [...w.shape], data: w.data.slice() };
}

/** The missing entries of a tensor: a boolean array or Uint8Array of its size, C order (a snapshot). */
export function checkTensorMask(v: unknown, name: string): Uint8Array {
  const mask = missingOptionSpecs.mask.check(v, name);
  if (!(mask instanceof Uint8Array)) throw new TypeError(`Expected a boolean array or a Uint8Array of the tensor's size for ${name} but received ${describeValue(v)}`);
  return mask;
}

/**
 * A tensor's weights (undefined when all are 1) and √Σωt²; with weights, the count of entries of
 * weight ≠ 1, their missing share's numerator Σ(1 − ω), and the first flat index of a weight above 1
 * (−1: none), which weightedHals 'auto' reads (resolveWeightedHals).
 */
export interface TensorWeights {
  weights?: Float64Array;
  norm: number;
  listed?: number;
  deficit?: number;
  above?: number;
}

/**
 * The weights ω of a tensor t (undefined when all are 1) from its missing-value options, and √Σωt²;
 * t may hold NaN (or anything) only where ω = 0. `name` is t's name, `at` the options' index for it
 * ('' for one tensor, '[s]' for a stratum).
 */
export function tensorWeights(
  t: Tensor,
  o: { weights?: Tensor; mask?: Uint8Array; missing: 'observed' | 'nan' },
  context: string,
  name = 'T',
  at = '',
): TensorWeights {
  const size = t.data.length;
  if (o.weights === undefined && o.mask === undefined && o.missing === 'observed') return { norm: checkedTensorNorm(t, name) };
  const omega = new Float64Array(size).fill(1);
  if (o.weights !== undefined) {
    if (o.weights.shape.length !== t.shape.length || o.weights.shape.some((d, m) => d !== t.shape[m])) {
      throw new RangeError(`Expected a Tensor of shape [${t.shape.join(', ')}] (the shape of ${name}) for options.weights${at} of ${context} but received shape [${o.weights.shape.join(', ')}]`);
    }
    omega.set(o.weights.data);
  }
  if (o.mask !== undefined) {
    if (o.mask.length !== size) throw new RangeError(`Expected ${size} entries (the size of ${name}) for options.mask${at} of ${context} but received ${o.mask.length}`);
    o.mask.forEach((x, k) => x && (omega[k] = 0));
  }
  let listed = 0;
  let deficit = 0;
  let above = -1;
  t.data.forEach((x, k) => {
    if (Number.isNaN(x) && o.missing === 'nan') omega[k] = 0;
    if (omega[k] !== 1) {
      listed++;
      deficit += 1 - omega[k]!;
      if (above < 0 && omega[k]! > 1) above = k;
    }
    if (omega[k] !== 0 && (!(x >= 0) || x === Infinity)) {
      throw new RangeError(
        `Expected finite non-negative values in ${name} at observed entries but received ${describeValue(x)} at flat index ${k}${Number.isNaN(x) ? " (mark missing entries with options.mask, a weight 0 or missing 'nan')" : ''}`,
      );
    }
  });
  if (listed === 0) return { norm: scaledNorm(t.data) };
  const weighted = t.data.map((x, k) => (omega[k] === 0 ? 0 : Math.sqrt(omega[k]!) * x));
  return { weights: omega, norm: scaledNorm(weighted), listed, deficit, above };
}

/** What parse reads: the options and options.rank of the deprecated call form (refused in the new one). */
const parseSpecs = {
  ...stratifiedNtfOptionSpecs,
  rank: int(1, maxRank, undefined, 'number of topics (the deprecated call form; else the rank argument)'),
} as const satisfies OptionSpecs;
const asyncSpecs = { ...parseSpecs, ...asyncOptionSpecs } as const satisfies OptionSpecs;

interface Parsed {
  strata: Float64Array[];
  /** Per stratum its weights (undefined: all 1); undefined when no stratum has any. */
  weights: (Float64Array | undefined)[] | undefined;
  samples: number[];
  dims: number[];
  settings: StratifiedNtfSettings;
  init: RawState | undefined;
  /** √(Σₛ‖A(s)‖²), the normalizer of the loss. */
  normA: number;
  context: string;
}

/**
 * Validates strata: an array of tensors of order ≥ 2 with the same trailing shape, finite and ≥ 0
 * (unless `values` is false: their values are then checked with their missing-value options).
 */
export function expectStrata(strata: unknown, name = 'strata', values = true): { strata: Float64Array[]; samples: number[]; dims: number[] } {
  if (!Array.isArray(strata)) {
    throw new TypeError(`Expected an array of tensors for ${name} but received ${describeValue(strata)}`);
  }
  if (strata.length === 0) throw new RangeError(`Expected at least one stratum for ${name} but received an empty array`);
  const tensors = readList(strata, name, 'an array of tensors', 1 << 20).map((t, s) => expectTensor(t, `${name}[${s}]`, 2));
  const dims = tensors[0]!.shape.slice(1);
  tensors.forEach((t, s) => {
    const trailing = t.shape.slice(1);
    if (trailing.length !== dims.length || trailing.some((d, i) => d !== dims[i])) {
      throw new RangeError(
        `Expected trailing shape [${dims.join(', ')}] (that of ${name}[0]) for ${name}[${s}] but received [${trailing.join(', ')}]`,
      );
    }
    if (values) expectNonNegativeTensor(t, `${name}[${s}]`);
  });
  return { strata: tensors.map((t) => t.data), samples: tensors.map((t) => t.shape[0]!), dims };
}

/**
 * √Σt² of a tensor whose entries must be finite and ≥ 0, in one native pass (checkedNonNegativeNorm);
 * the JS check, which names a defect by its multi-index, only where that pass finds something to look
 * at. Two JS passes over a 1.6·10⁶-entry tensor took about 4 ms, a tenth of a 2-thread
 * `ntf`/`stratifiedNtf` benchmark call, on one thread.
 */
export function checkedTensorNorm(t: Tensor, name: string): number {
  return checkedNonNegativeNorm(t.data, () => expectNonNegativeTensor(t, name));
}

/** Throws a RangeError naming the first negative or non-finite entry by its multi-index. */
export function expectNonNegativeTensor(t: Tensor, name: string): void {
  const d = t.data;
  for (let i = 0; i < d.length; i++) {
    const x = d[i]!;
    if (!(x >= 0) || x === Infinity) {
      const index: number[] = [];
      let rest = i;
      for (let m = t.shape.length - 1; m >= 0; m--) {
        index.unshift(rest % t.shape[m]!);
        rest = Math.floor(rest / t.shape[m]!);
      }
      throw new RangeError(`Expected finite non-negative values in ${name} but received ${describeValue(x)} at [${index.join(', ')}]`);
    }
  }
}

function expectFactor(m: unknown, name: string, rows: number, cols: number): Float64Array {
  const mat = expectMatrix(m, name, { nonNegative: true });
  if (mat.rows !== rows || mat.cols !== cols) {
    throw new RangeError(`Expected a ${rows}×${cols} matrix for ${name} but received ${mat.rows}×${mat.cols}`);
  }
  return mat.data;
}

function expectInit(init: object, samples: number[], dims: number[], ranks: number[], rank: number): RawState {
  const { v, w, h } = init as Partial<StratifiedNtfState>;
  const S = samples.length;
  const list = (x: unknown, key: string, length: number): unknown[] => {
    if (!Array.isArray(x)) throw new TypeError(`Expected an array for options.init.${key} but received ${describeValue(x)}`);
    const items = readList(x, `options.init.${key}`, 'an array', 1 << 20);
    if (items.length !== length) {
      throw new RangeError(`Expected an array of length ${length} for options.init.${key} but received length ${items.length}`);
    }
    return items;
  };
  const raw: RawState = { v: [], w: [], h: [] };
  list(v, 'v', S).forEach((vs, s) => {
    list(vs, `v[${s}]`, dims.length).forEach((m, t) =>
      raw.v.push(expectFactor(m, `options.init.v[${s}][${t}]`, ranks[s]!, dims[t]!)),
    );
  });
  list(w, 'w', S).forEach((m, s) => raw.w.push(expectFactor(m, `options.init.w[${s}]`, rank, samples[s]!)));
  list(h, 'h', dims.length).forEach((m, t) => raw.h.push(expectFactor(m, `options.init.h[${t}]`, rank, dims[t]!)));
  return raw;
}

/**
 * The doubles a Stratified-NTF solve allocates besides its data, its factors and their copies
 * (native/kernels/ntf.cpp's StratifiedNtfSolver for MU, ntf_stratified_hals.cpp for HALS, and the
 * certificate, computed while those are held): the same terms as native/addon/ntf_binding.cpp's
 * stratifiedNtfDoubles. `threads` bounds the team (at most one thread per stratum, each with its own
 * scratch set); `listed` counts the entries of weight ≠ 1 (0 without weights).
 */
export function stratifiedNtfWorkDoubles(
  samples: number[],
  dims: number[],
  ranks: number[],
  r: number,
  solver: StratifiedNtfSolver,
  tv: boolean,
  listed: number,
  threads: number,
): number {
  const F = dims.reduce((a, d) => a * d, 1);
  const S = samples.length;
  const K = dims.length;
  const d1 = dims[0]!;
  const dK = dims[K - 1]!;
  const sumN = samples.reduce((a, x) => a + x, 0);
  const sumD = dims.reduce((a, d) => a + d, 0);
  const sumQ = ranks.reduce((a, q) => a + q, 0);
  const nmax = Math.max(...samples);
  const nmin = Math.min(...samples);
  const qmax = Math.max(...ranks);
  const dmax = Math.max(...dims);
  const T = Math.min(S, Math.max(threads, 1));
  const R = Math.max(r, qmax);
  const D = Math.max(dmax, nmax);
  // An MTTKRP's workspace (native/kernels/tensor.cpp, mttkrpScratch): the rank times the tensor over
  // its first contracted mode plus two contraction slices; a stratum at rank r contracts d_K or nₛ
  // first, the summed stratum (dims) at rank q contracts d_K or d₁.
  const mttkrpStratum = (r + 2) * Math.max((nmax * F) / dK, F);
  const mttkrpSummed = ((qmax + 2) * F) / Math.min(d1, dK);
  const slice = Math.max((nmax * F) / dK, (nmax * F) / d1, F);
  // Both solvers, per stratum: Σᵢ A(s)[i], the Grams v(s)ₜv(s)ₜᵀ, v(s)ₜhₜᵀ, w(s)w(s)ᵀ, Σᵢ w(s), the
  // loss' parts; the hₜhₜᵀ.
  let total = S * F + K * sumQ * (qmax + r) + (K + S) * r * r + S * r + 3 * S;
  // The certificate: per stratum and mode its h parts (r × r, r × q, the MTTKRPs: r × Σd a stratum),
  // the h gradients, and per thread its scratch (M, G, E, a gradient, w's Grams, Σᵢ A(s)[i], the
  // stratum's Grams, an MTTKRP's workspace); the initial loss' scratch is smaller and freed before.
  total += S * K * r * (r + qmax) + S * r * sumD + r * sumD + K * r * r;
  total += T * (2 * R * D + R * R + r * qmax + r * r + r + F + K * qmax * (qmax + r) + mttkrpStratum);
  // Weighted, per thread: a listed work matrix, the entries' values and coefficients, the factors'
  // rows by entry, the by-feature sums; the certificate's residuals per entry; and, while the lists
  // are built, a map from each of the F features to its place (int32: F/2 doubles).
  if (listed > 0) total += T * (3 * R * D + 2 * R + 2 * r + 3 * listed + (qmax + r) * sumD + r * nmax) + listed + F / 2;
  if (solver === 'hals') {
    // Z(s) = w(s)·A(s) (r × F) per stratum when r ≤ every nₛ, else one per thread; the h updates'
    // parts per stratum (r × d, r × q); Σₛ MTTKRPs, a Hadamard scratch; per thread M, P (R × D),
    // Q, E (R × R), two contraction slices and an MTTKRP's workspace.
    total += (r <= nmin ? S * r * F : T * r * F) + S * r * (dmax + qmax) + r * dmax + R * R + sumN;
    total += T * (2 * R * D + 2 * R * R + 2 * slice + Math.max(mttkrpStratum, mttkrpSummed));
    // Weighted: per entry a − topic and its feature's slot, and in the w group and each h group its
    // data, κ, slot and K row indices; per listed feature (at most one per entry) three doubles and
    // K + K² indices; the factors entry-major; per thread one column's Khatri–Rao rows and vectors,
    // and a second, paired column's (at most 4096 row values: kPairedRows in the solver).
    // With weightedHals 'surrogate' besides: the items' targets (per entry, and per feature with κ),
    // and per thread the listed sums (2 × D × R) and one Khatri–Rao row; counted whichever update runs.
    if (listed > 0)
      total += (1.5 + (K + 1) * (2.5 + K / 2) + 3 + (K + K * K) / 2) * listed + (sumN + sumD) * r + S * qmax * sumD + S * (K * dmax + nmax) +
        T * ((listed + 4) * R + 3 * listed + 6 * R + 7 + 4 * 4096 + 10 * R + 7) + 3 * listed + T * (2 * D * R + R);
    return total;
  }
  // MU: Y(s) = A(s) ×_K h_K (r × nₛ·F/d_K) per stratum when r ≤ d_K (K ≥ 2), else one per thread;
  // the h updates' parts per stratum (r × r; numerators and denominators r × d_max; with TV or
  // weights the loss' numerator r × d_K), their sums and G; TV's ĥ and its two terms.
  total += K >= 2 && r <= dK ? (r * sumN * F) / dK : (T * r * nmax * F) / dK;
  total += S * r * r + S * r * (2 * dmax + (tv || listed > 0 ? dK : 0)) + 3 * r * dmax + r * r;
  if (tv) total += 3 * r * dmax * K;
  // Per thread: num, den, tmp, tmp2 (R × max(D, R)), E (r × q), the last h mode's intermediate
  // (r × F, or r × nₛ·F/d₁ when nₛ < d₁), two contraction slices, the v update's MTTKRP workspace.
  total += T * (4 * R * Math.max(D, R) + r * qmax + r * (nmax >= d1 ? F : (nmax * F) / d1) + 2 * slice + mttkrpSummed);
  return total;
}

/**
 * The solve's memory: the factors (kept by the solver, its start, the result copies), the solver's
 * and the certificate's buffers (stratifiedNtfWorkDoubles, for a team of up to teamThreadsBound()
 * threads) and, weighted, the weights, the zeroed data and the list of entries of weight ≠ 1.
 * Refused before any native work.
 */
function checkStratifiedNtfMemory(
  samples: number[],
  dims: number[],
  ranks: number[],
  r: number,
  listed: number,
  restarts: number,
  solver: StratifiedNtfSolver,
  tv: boolean,
): void {
  const F = dims.reduce((a, d) => a * d, 1);
  const dK = dims[dims.length - 1]!;
  const S = samples.length;
  const K = dims.length;
  const n = samples.reduce((a, x) => a + x, 0);
  const nmax = Math.max(...samples);
  const qmax = Math.max(...ranks);
  const dmax = Math.max(...dims);
  const sumDims = dims.reduce((a, d) => a + d, 0);
  const factors = ranks.reduce((a, q) => a + q * sumDims, 0) + r * n + r * sumDims;
  // Weighted: the weights and the zeroed data of each weighted stratum (listed > 0), the list of
  // entries of weight ≠ 1 (index, κ, value, offset) and the same entries by feature index (at most
  // one feature each: K/2 + 5 doubles, and two doubles per entry at most).
  const weighted = listed > 0 ? 2 * n * F + (3 + (K + 1) / 2 + 2 + (K / 2 + 5)) * listed : 0;
  const total = 3 * factors + stratifiedNtfWorkDoubles(samples, dims, ranks, r, solver, tv, listed, teamThreadsBound()) + weighted;
  const Y = r <= dK ? (r * n * F) / dK : (r * nmax * F) / dK;
  checkFactorMemory(
    Math.max(Y, r * F, r * nmax, r * dmax, Math.max(r, qmax) * Math.max(dmax, nmax)),
    restartsDoubles(restarts, total, factors),
    `rank ${r} and strataRank up to ${qmax} with ${S} strata of trailing shape [${dims.join(', ')}] (the factors and the solver's workspaces${restarts > 1 ? `, ${restarts} restarts` : ''})`,
  );
}

type ParsedOptions = Omit<Required<StratifiedNtfOptions>, 'tv' | 'strataRank' | 'weights' | 'mask'> & {
  weights?: (Tensor | undefined)[];
  mask?: (Uint8Array | undefined)[];
  strataRank: number | number[];
  rank?: number;
  tv?: { reg: number };
};

/**
 * Validates a call. `rank` is the positional rank (undefined in the deprecated form, which reads it
 * from options.rank instead); the new form refuses options.rank (one place for each thing).
 */
function parse(
  strata: unknown,
  rank: unknown,
  options: unknown,
  context: string,
  specs: OptionSpecs,
): Parsed & { o: ParsedOptions & { rank: number } } {
  const o = parseOptions<ParsedOptions>(specs, options, context);
  if (rank !== undefined) {
    const r = expectShapeInteger(rank, 'rank', maxRank);
    if (o.rank !== undefined) {
      throw new TypeError(
        `Expected no options.rank in ${context} (the rank is its second argument, ${r}) but received ${describeValue(o.rank)}; leave rank out of the options`,
      );
    }
    o.rank = r;
  }
  const wantsMissing = o.weights !== undefined || o.mask !== undefined || o.missing !== 'observed';
  // The values are checked with their norms below (checkedTensorNorm, tensorWeights).
  const data = expectStrata(strata, 'strata', false);
  if (o.strataRank === undefined) throw new TypeError(`Expected a positive integer or an array for options.strataRank of ${context} but received undefined`);
  if (o.rank === undefined) throw new TypeError(`Expected a positive integer for options.rank of ${context} but received undefined`);
  const S = data.strata.length;
  const ranks = Array.isArray(o.strataRank) ? o.strataRank : new Array<number>(S).fill(o.strataRank);
  if (ranks.length !== S) {
    throw new RangeError(
      `Expected one strata rank per stratum (${S}) for options.strataRank of ${context} but received an array of length ${ranks.length}`,
    );
  }
  if (o.tv && o.certificateTolerance > 0) {
    throw new RangeError(
      `Expected options.certificateTolerance 0 with options.tv of ${context} (the TV loss is not smooth: no certificate is defined) but received ${o.certificateTolerance}`,
    );
  }
  if (o.solver === 'hals' && o.tv) {
    throw new RangeError(
      `Expected options.solver 'mu' with options.tv of ${context} (the TV term's split subgradient defines only the multiplicative updates) but received 'hals'`,
    );
  }
  let weights: Parsed['weights'];
  let weighted: TensorWeights[] | undefined;
  let norms: number[];
  if (wantsMissing) {
    for (const key of ['weights', 'mask'] as const) {
      const list = o[key];
      if (list !== undefined && list.length !== S) {
        throw new RangeError(`Expected an array of ${S} entries (one per stratum; null for none) for options.${key} of ${context} but received an array of length ${list.length}`);
      }
    }
    const prepared = data.strata.map((a, s) =>
      tensorWeights({ shape: [data.samples[s]!, ...data.dims], data: a }, { weights: o.weights?.[s], mask: o.mask?.[s], missing: o.missing }, context, `strata[${s}]`, `[${s}]`),
    );
    norms = prepared.map((m) => m.norm);
    if (prepared.some((m) => m.weights)) weights = prepared.map((m) => m.weights);
    weighted = prepared;
  } else {
    norms = data.strata.map((a, s) => checkedTensorNorm({ shape: [data.samples[s]!, ...data.dims], data: a }, `strata[${s}]`));
  }
  const listed = (weights ?? []).reduce((total, w) => total + (w ? w.reduce((c, x) => c + (x !== 1 ? 1 : 0), 0) : 0), 0);
  // The solvers number the listed entries of all strata (and their features) by int32 indices.
  if (listed > 2 ** 31 - 1) {
    throw new RangeError(`Expected at most ${2 ** 31 - 1} entries of weight ≠ 1 (missing or weighted) in all strata for ${context} but received ${listed}`);
  }
  const sizeAll = data.samples.reduce((total, n) => total + n * data.dims.reduce((x, d) => x * d, 1), 0);
  const weightedHals = resolveWeightedHals('stratifiedNtf', o.weightedHals, o.solver, weighted ?? [], sizeAll, context);
  checkStratifiedNtfMemory(data.samples, data.dims, ranks, o.rank, listed, o.restarts, o.solver, Boolean(o.tv));
  const init = o.init === 'random' ? undefined : expectInit(o.init, data.samples, data.dims, ranks, o.rank);
  // Reading init ran the caller's getters: the strata buffers must still be what was validated.
  expectIntact(...data.strata.map((a, s): [Float64Array, number, string] => [a, data.samples[s]! * data.dims.reduce((x, d) => x * d, 1), `strata[${s}].data`]));
  const settings: StratifiedNtfSettings = {
    strataRank: ranks,
    rank: o.rank,
    solver: o.solver,
    maxIterations: o.maxIterations,
    vScaling: o.vScaling,
    tv: o.tv ? { reg: o.tv.reg } : null,
    init: init ? 'given' : 'random',
    seed: o.seed,
    tolerance: o.tolerance,
    lossEvery: o.lossEvery,
    epsilon: o.epsilon,
    certificateTolerance: o.certificateTolerance,
    restarts: o.restarts,
    weightedHals,
  };
  const normA = combinedNorm(norms);
  return { ...data, weights, settings, init, normA, o: o as ParsedOptions & { rank: number }, context };
}

function rawArgs(p: Parsed, seed = p.settings.seed, recordStages = false): RawArgs {
  const s = p.settings;
  return [
    p.strata,
    p.samples,
    p.dims,
    s.strataRank,
    s.rank,
    {
      maxIterations: s.maxIterations,
      solver: s.solver,
      vScaling: s.vScaling,
      tv: s.tv !== null,
      tvReg: s.tv?.reg ?? 0,
      epsilon: s.epsilon,
      tolerance: s.tolerance,
      lossEvery: s.lossEvery,
      seed,
      recordStages,
      certificateTolerance: s.certificateTolerance,
      ...(p.weights ? { weights: p.weights.map((w) => w ?? null) } : {}),
      ...(s.weightedHals !== 'auto' ? { weightedHals: s.weightedHals } : {}),
    },
    p.init,
  ];
}

function toState(raw: RawState, p: Parsed): StratifiedNtfState {
  const K = p.dims.length;
  const r = p.settings.rank;
  return {
    v: p.samples.map((_, s) =>
      p.dims.map((d, t) => ({ rows: p.settings.strataRank[s]!, cols: d, data: raw.v[s * K + t]! })),
    ),
    w: raw.w.map((data, s) => ({ rows: r, cols: p.samples[s]!, data })),
    h: raw.h.map((data, t) => ({ rows: r, cols: p.dims[t]!, data })),
  };
}

function toResult(raw: RawStratifiedNtfResult, p: Parsed): StratifiedNtfResult {
  expectFiniteLoss(raw.trace.loss, p.context, 'the strata');
  return {
    ...toState(raw, p),
    ...lossOutcome(raw, p.normA),
    settings: p.settings,
    workBytes: raw.scratchDoubles * 8,
  };
}

const deprecationWarned = new Set<string>();

/**
 * The deprecated form (strata, {strataRank, rank, …}) keeps working for one release: it warns once per
 * function and process, naming the new form.
 */
function legacyForm(name: string, rankOrOptions: unknown, options: unknown): boolean {
  const legacy = isObjectArgument(rankOrOptions) && !Array.isArray(rankOrOptions) && options === undefined;
  if (legacy && !deprecationWarned.has(name)) {
    deprecationWarned.add(name);
    process.emitWarning(
      `${name}(strata, {strataRank, rank, …}) is deprecated; call ${name}(strata, rank, {strataRank, …}) like every other method`,
      { type: 'DeprecationWarning', code: 'NSA_FLOW_STRATIFIED_NTF_CALL' },
    );
  }
  return legacy;
}

/**
 * Stratified-NTF on a worker thread: `stratifiedNtf(strata, rank, {strataRank, …})`, strata an array of
 * tensors (nₛ, d₂, …, d_N). onProgress receives {iteration, maxIterations, loss, normalizedLoss}.
 * The form stratifiedNtf(strata, {strataRank, rank, …}) is deprecated (a DeprecationWarning, once).
 */
export function stratifiedNtf(
  strata: readonly Tensor[],
  rank: number,
  options: StratifiedNtfOptions & AsyncOptions<StratifiedNtfProgress>,
): Promise<StratifiedNtfResult>;
/** @deprecated Use stratifiedNtf(strata, rank, {strataRank, …}). */
export function stratifiedNtf(
  strata: readonly Tensor[],
  options: LegacyStratifiedNtfOptions & AsyncOptions<StratifiedNtfProgress>,
): Promise<StratifiedNtfResult>;
export function stratifiedNtf(strata: readonly Tensor[], rankOrOptions: unknown, maybeOptions?: unknown): Promise<StratifiedNtfResult> {
  let p: ReturnType<typeof parse>;
  try {
    const legacy = legacyForm('stratifiedNtf', rankOrOptions, maybeOptions);
    p = legacy
      ? parse(strata, undefined, rankOrOptions, 'stratifiedNtf()', asyncSpecs)
      : parse(strata, rankOrOptions, maybeOptions, 'stratifiedNtf()', asyncSpecs);
  } catch (err) {
    return Promise.reject(err);
  }
  const o = p.o as ParsedOptions & AsyncOptions<StratifiedNtfProgress>;
  const inputs = [...p.strata, ...(p.init ? [...p.init.v, ...p.init.w, ...p.init.h] : [])];
  return bestOf(o, p.init !== undefined, p.context, (seed, jobOptions) => {
    const args = rawArgs(p, seed);
    return runJob(
      inputs,
      (copies, token, onProgress, interval) => {
        // runJob may hand back copies of the inputs (when the job had to wait): use those.
        const S = p.strata.length;
        const strataIn = copies.slice(0, S) as Float64Array[];
        let init: RawState | undefined;
        if (p.init) {
          const nv = p.init.v.length;
          const nw = p.init.w.length;
          init = {
            v: copies.slice(S, S + nv) as Float64Array[],
            w: copies.slice(S + nv, S + nv + nw) as Float64Array[],
            h: copies.slice(S + nv + nw) as Float64Array[],
          };
        }
        return native().stratifiedNtfAsync(strataIn, args[1], args[2], args[3], args[4], args[5], init, token, onProgress, interval);
      },
      jobOptions,
      mapNmfProgress,
      jobFlops(p),
    )
      .catch(inContext(p.context, 'the strata'))
      .then((raw) => toResult(raw, p));
  });
}

/** The small-job rule's size (lib/runtime.ts): the strata's entries against the CP and strata terms. */
function jobFlops(p: Parsed): number {
  const q = p.settings.strataRank;
  return productFlops(p.strata.reduce((n, s) => n + s.length, 0), p.settings.rank + (typeof q === 'number' ? q : Math.max(0, ...q)));
}

/**
 * Stratified-NTF on the calling thread (for small problems): `stratifiedNtfSync(strata, rank,
 * {strataRank, …})`; the form (strata, {strataRank, rank, …}) is deprecated as stratifiedNtf's.
 */
export function stratifiedNtfSync(strata: readonly Tensor[], rank: number, options: StratifiedNtfOptions): StratifiedNtfResult;
/** @deprecated Use stratifiedNtfSync(strata, rank, {strataRank, …}). */
export function stratifiedNtfSync(strata: readonly Tensor[], options: LegacyStratifiedNtfOptions): StratifiedNtfResult;
export function stratifiedNtfSync(strata: readonly Tensor[], rankOrOptions: unknown, maybeOptions?: unknown): StratifiedNtfResult {
  const legacy = legacyForm('stratifiedNtfSync', rankOrOptions, maybeOptions);
  const p = legacy
    ? parse(strata, undefined, rankOrOptions, 'stratifiedNtfSync()', parseSpecs)
    : parse(strata, rankOrOptions, maybeOptions, 'stratifiedNtfSync()', parseSpecs);
  return bestOfSync(p.o, p.init !== undefined, p.context, (seed) =>
    toResult(callInContext(p.context, 'the strata', () => callSync(() => native().stratifiedNtf(...rawArgs(p, seed)), jobFlops(p))), p),
  );
}

/**
 * The Stratified-NTF loss of a given state (with the TV term when `tv` is set; with missing-value
 * options, over the observed entries as the solve reports it).
 */
export function stratifiedNtfLoss(
  strata: readonly Tensor[],
  state: StratifiedNtfState,
  options: Pick<LegacyStratifiedNtfOptions, 'strataRank' | 'rank' | 'tv' | 'weights' | 'mask' | 'missing'>,
): number {
  if (!isObjectArgument(state)) throw new TypeError(`Expected a state {v, w, h} of matrices for state but received ${describeValue(state)}`);
  if (!isObjectArgument(options)) throw new TypeError(`Expected an options object {strataRank, rank, tv?} for options but received ${describeValue(options)}`);
  // The options of the solve that produced `state` may be passed as they are (each read once here).
  const o: Record<string, unknown> = {};
  for (const key of ownKeys(options, 'options')) o[key] = readField(options, key, `options.${key} of stratifiedNtfLoss()`);
  const p = parse(strata, undefined, { ...o, init: state }, 'stratifiedNtfLoss()', parseSpecs);
  const loss = callSync(() => native().stratifiedNtfLoss(...rawArgs(p)));
  expectFiniteLoss([loss], 'stratifiedNtfLoss()', 'the strata');
  return loss;
}

/**
 * For parity tests: runs one iteration and returns the state after each stage (each v sweep, the w
 * update, the h update and, with TV, the column normalization), as the fixtures record them.
 */
export function stratifiedNtfFirstIterationStages(
  strata: readonly Tensor[],
  rank: number,
  options: StratifiedNtfOptions,
): StratifiedNtfState[] {
  const p = parse(strata, rank, { ...options, maxIterations: 1 }, 'stratifiedNtfFirstIterationStages()', parseSpecs);
  const raw = callSync(() => native().stratifiedNtf(...rawArgs(p, p.settings.seed, true)));
  return (raw.stages ?? []).map((st) => toState(st, p));
}
