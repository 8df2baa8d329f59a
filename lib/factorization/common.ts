/**
 * What the NMF family shares: the raw binding types, the options every solver takes (iterations,
 * tolerance, loss recording, seed), the result's outcome fields (lib/solver.ts's contract) and
 * progress records.
 */
import { availableParallelism, cpus } from 'node:os';

import type { CancelToken, RawProgress } from '../native.js';
import { NumericalError } from '../errors.js';
import { checkMemory, float64Bytes } from '../memory.js';
import { didYouMean } from '../suggest.js';
import { restartsOptionSpec } from './restarts.js';
import { describeValue, expectAllocatable, isObjectArgument, ownKeys, readField, subName, unknownOption, type OptionSpecs } from '../validate.js';

type RawData =
  | { rows: number; cols: number; data: Float64Array }
  | { rows: number; cols: number; indptr: Int32Array; indices: Int32Array; data: Float64Array };

export interface RawNmfOptions {
  maxIterations: number;
  tolerance: number;
  lossEvery: number;
  init: 'random' | 'nndsvd' | 'given';
  seed: number;
  epsilon?: number;
  certificateTolerance?: number;
}

/** What every NMF-family binding returns besides the factors (native/kernels/solver.hpp's LossTrace). */
export interface RawTrace {
  trace: { iteration: Float64Array; timeMs: Float64Array; loss: Float64Array };
  iterations: number;
  stopReason: StopReason;
  /** null where none is defined (Stratified-NTF with TV). */
  certificate: number | null;
}

type AsyncTail = [token: CancelToken, onProgress: ((r: RawProgress) => void) | undefined, intervalMs: number];
type RawSnmfOptions = RawNmfOptions & {
  solver?: 'mu' | 'hals';
  vScaling: number;
  V?: Float64Array;
  W?: Float64Array[];
  H?: Float64Array;
  weights?: (Float64Array | null)[];
  missing?: 'absent';
};
type RawSnmfResult = RawTrace & { V: Float64Array; W: Float64Array[]; H: Float64Array };
type RawPlainOptions = RawNmfOptions & { solver: string; loss: string; W?: Float64Array; H?: Float64Array; weights?: Float64Array; missing?: 'absent' };
type RawPlainResult = RawTrace & { W: Float64Array; H: Float64Array };

declare module '../native.js' {
  interface NativeBinding {
    // rank: one, or one per stratum (nested topics: nmf_binding.cpp's rankOf).
    stratifiedNmf(strata: RawData[], cols: number, rank: number | number[], options: RawSnmfOptions): RawSnmfResult;
    stratifiedNmfAsync(strata: RawData[], cols: number, rank: number | number[], options: RawSnmfOptions, ...tail: AsyncTail): Promise<RawSnmfResult>;
    stratifiedNmfLoss(strata: RawData[], cols: number, rank: number | number[], V: Float64Array, W: Float64Array[], H: Float64Array): number;
    /** ‖data‖ when every entry is finite and ≥ 0 and the plain sum of squares is in range, else NaN (missing.ts). */
    nonNegativeNorm(data: Float64Array): number;
    nmf(A: RawData, rank: number, options: RawPlainOptions): RawPlainResult;
    nmfAsync(A: RawData, rank: number, options: RawPlainOptions, ...tail: AsyncTail): Promise<RawPlainResult>;
  }
}

export type { StopReason } from '../solver.js';
import type { SolverOutcome, SolverProgress, SolverTraces, StopReason } from '../solver.js';

/**
 * Progress of an NMF-family solve (nmf, stratifiedNmf, ntf, stratifiedNtf): the loss after `iteration`
 * of at most `maxIterations` iterations, and the loss over the data's norm (KL: over Σa).
 */
export interface NmfProgress extends SolverProgress {
  loss: number;
  normalizedLoss: number;
  /** Which run (0-based) the record is of, when options.restarts > 1. */
  restart?: number;
}

export function mapNmfProgress(r: RawProgress): NmfProgress {
  return { iteration: r.iteration, maxIterations: r.total, loss: r.values[0]!, normalizedLoss: r.values[1]! };
}

/** The trace columns of an NMF-family result: one entry per recorded iteration (0 = the start). */
export interface LossTraces extends SolverTraces {
  /** The method's loss after `iteration[i]` iterations; the last entry is the final loss. */
  loss: Float64Array;
  /** loss / the data's norm (KL: / Σa). */
  normalizedLoss: Float64Array;
}

/**
 * What every NMF-family result carries besides its factors and settings (lib/solver.ts's contract):
 * the final loss, the traces, the iterations run, why the run stopped and the certificate — the
 * scale-free KKT gradient mapping of the normalized objective at the returned factors (the largest
 * over the factor blocks; 0 exactly at a stationary point). These solvers stop on 'gradMap' (the
 * certificate fell to options.certificateTolerance), 'plateau' (the tolerance rule on the loss: no
 * stationarity claim, read the certificate) or 'maxIterations'.
 */
export interface LossOutcome extends SolverOutcome {
  /** The loss after the last iteration. */
  loss: number;
  /** loss / the data's norm (KL: / Σa). */
  normalizedLoss: number;
  traces: LossTraces;
}

/** The outcome fields of a raw result; `normalizer` is the data's norm (KL: Σa). */
export function lossOutcome(raw: RawTrace, normalizer: number): LossOutcome {
  const scale = 1 / Math.max(normalizer, 1e-300);
  const { iteration, timeMs, loss } = raw.trace;
  const final = loss[loss.length - 1]!;
  return {
    loss: final,
    normalizedLoss: final * scale,
    traces: { iteration, timeMs, loss, normalizedLoss: loss.map((x) => x * scale) },
    iterations: raw.iterations,
    stopReason: raw.stopReason,
    certificate: raw.certificate,
  };
}

/** Options every NMF-type solver takes. */
export interface IterationOptions {
  /** Iterations to run at most (default 200). */
  maxIterations?: number;
  /** Stop when the relative change between two recorded losses is at most this; 0 runs all (default 0). */
  tolerance?: number;
  /** Record the loss every this many iterations; the loss after the last iteration is always recorded (default 1). */
  lossEvery?: number;
  /** Seed of the project's generator for random/nndsvd initializations (default 0). */
  seed?: number;
  /** Added to the multiplicative-update denominators, in (0, 1] (default 1e-9). */
  epsilon?: number;
  /**
   * Stop with stopReason 'gradMap' when the certificate of the iterate is at most this, checked before
   * every lossEvery-th iteration (one extra gradient evaluation each); 0 never checks (default 0).
   */
  certificateTolerance?: number;
  /**
   * Runs from the seeds seed, seed + 1, …, seed + restarts − 1 (async: side by side) and returns the
   * one of smallest final loss, with every run's loss in `restarts` (default 1: one run).
   */
  restarts?: number;
}

/** The certificate stopping rule every NMF-family solver takes (see IterationOptions). */
export const certificateToleranceSpec = {
  kind: 'number',
  min: 0,
  max: 1,
  default: 0,
  description: "stop ('gradMap') when the KKT certificate is at most this (0 = never)",
} as const;

export const iterationOptionSpecs = {
  maxIterations: { kind: 'number', integer: true, min: 0, max: 2 ** 30, default: 200, description: 'iterations to run at most' },
  tolerance: { kind: 'number', min: 0, max: 1, default: 0, description: 'stop on a relative loss change at most this (0 = run all)' },
  lossEvery: { kind: 'number', integer: true, min: 1, max: 2 ** 30, default: 1, description: 'record the loss every this many iterations' },
  seed: { kind: 'number', integer: true, min: 0, max: Number.MAX_SAFE_INTEGER, default: 0, description: 'seed of the initialization' },
  epsilon: {
    kind: 'number',
    min: 0,
    max: 1,
    minExclusive: true,
    default: 1e-9,
    description: 'added to the multiplicative-update denominators',
  },
  certificateTolerance: certificateToleranceSpec,
  restarts: restartsOptionSpec,
} as const satisfies OptionSpecs;

export const initNames = ['random', 'nndsvd'] as const;

/**
 * The init option: a name, or an object of given factors (checked by the caller for shapes). An object
 * is returned as a snapshot holding only the given keys (each read once).
 */
export function checkInit(value: unknown, name: string, keys: readonly string[]): unknown {
  const allowed = `'random', 'nndsvd' or an object {${keys.join(', ')}} of given factors`;
  if (typeof value === 'string') {
    if (!(initNames as readonly string[]).includes(value)) {
      throw new RangeError(`Expected ${allowed} for ${name} but received ${describeValue(value)}${didYouMean(value, initNames, (c) => `'${c}'`)}`);
    }
    return value;
  }
  if (!isObjectArgument(value)) {
    throw new TypeError(`Expected ${allowed} for ${name} but received ${describeValue(value)}`);
  }
  const given = ownKeys(value, name);
  for (const k of given) {
    if (!keys.includes(k)) throw unknownOption(k, keys, name, 'key', 'in');
  }
  if (given.length === 0) throw new RangeError(`Expected at least one of ${keys.join(', ')} in ${name} but received an empty object`);
  const snapshot: Record<string, unknown> = {};
  for (const k of given) snapshot[k] = readField(value, k, subName(name, `.${k}`));
  return snapshot;
}

/** √(Σₛ‖A(s)‖²) from the strata's norms, scaled so that it is exact for any finite data. */
export function combinedNorm(norms: number[]): number {
  const m = Math.max(...norms);
  if (m === 0 || !Number.isFinite(m)) return m;
  return m * Math.sqrt(norms.reduce((acc, n) => acc + (n / m) * (n / m), 0));
}

/** Rank bound of the factorizations: the factors must fit in memory anyway; this keeps sizes exact. */
export const maxRank = 2 ** 24;

/**
 * The cores: a bound on the thread team of a solve whose buffers are per thread (native teamThreads
 * caps a team at std::thread::hardware_concurrency, the online CPUs). Not the BLAS thread count in
 * force: an async job reads that when it starts, and setBlasThreads may raise it after a check. The
 * larger of availableParallelism (which honours an affinity mask) and the CPUs listed, so as not to
 * fall below the native cap where the process is pinned to fewer cores.
 */
export function teamThreadsBound(): number {
  return Math.max(1, availableParallelism(), cpus().length);
}

/**
 * Refuses, before any native work, a solve whose factors and update workspaces cannot fit: `largest`
 * float64 values in its largest array (V8's typed-array limit) and `total` in all (the memory limit).
 * `what` names the argument the size follows from, with the shapes.
 */
export function checkFactorMemory(largest: number, total: number, what: string): void {
  expectAllocatable(largest, what);
  checkMemory(float64Bytes(total), what);
}

/**
 * A finite input can still overflow inside a solve (squares of entries near 1e300): a non-finite last
 * loss is a NumericalError naming the function and the cause, never a silent NaN/∞ result.
 */
export function expectFiniteLoss(loss: ArrayLike<number>, context: string, data: string): void {
  const last = loss[loss.length - 1];
  if (last === undefined || Number.isFinite(last)) return;
  throw new NumericalError(
    `${context}: the loss became ${last}: squares of ${data}'s entries or of the factors overflow a double; rescale ${data} (e.g. divide it by its largest entry)`,
  );
}

/**
 * Names the function in a NumericalError from the solver ("the loss became non-finite …") and says
 * the likely cause; other errors pass through unchanged. For sync calls and for a Promise's rejection.
 */
export function inContext(context: string, data: string): (err: unknown) => never {
  return (err) => {
    if (err instanceof NumericalError && !err.message.startsWith(context)) {
      const e = new NumericalError(
        `${context}: ${err.message}; squares of ${data}'s entries or of the factors may overflow a double: rescale ${data}`,
        { best: err.best, cause: err },
      );
      throw e;
    }
    throw err;
  };
}

export function callInContext<T>(context: string, data: string, fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    return inContext(context, data)(err);
  }
}

/** Checks a given factor's shape (it must be a finite non-negative Matrix). */
export function expectFactorShape(m: { rows: number; cols: number }, name: string, rows: number, cols: number): void {
  if (m.rows !== rows || m.cols !== cols) {
    throw new RangeError(`Expected a ${rows}×${cols} matrix for ${name} but received ${m.rows}×${m.cols}`);
  }
}

/** HALS's update with weights in ntf and stratifiedNtf (options.weightedHals; docs/missing-values.md). */
export type WeightedHals = 'exact' | 'surrogate';

/**
 * The largest missing share Σ(1 − ω)/size at which weightedHals 'auto' takes the surrogate, per
 * method, from bench/ntf-weighted-hals (docs/missing-values.md): in ntf it reached every loss level
 * sooner than the exact update (with its default sweeps) at 10–20 % missing, about as soon at 30 %,
 * and later from 40–50 % on; in stratifiedNtf 1.4–1.6 times sooner at 10 %, but from 15 % on it fell
 * behind at the tighter levels.
 */
export const AUTO_SURROGATE_MISSING_SHARE = { ntf: 0.3, stratifiedNtf: 0.12 } as const;

export const weightedHalsOptionSpec = {
  kind: 'enum',
  values: ['auto', 'surrogate', 'exact'],
  default: 'auto',
  description: "hals's update with weights: 'exact', 'surrogate' (majorize–minimize, weights ≤ 1) or 'auto'",
} as const;

/**
 * options.weightedHals resolved: 'surrogate' or 'exact' for HALS with weights ('auto' by the missing
 * share: the arrays' Σ(1 − ω) over `size` entries in all), 'auto' otherwise. Each of `arrays` is a
 * weighted array's summary as tensorWeights makes it in its one pass (weights undefined: all 1;
 * deficit Σ(1 − ω); above the first flat index of a weight above 1, −1 for none). A given update with
 * no entry missing or of weight ≠ 1 (it would go unused) or with MU, or 'surrogate' with a weight above
 * 1 (its majorizer needs ω ≤ 1), is refused.
 */
export function resolveWeightedHals(
  method: keyof typeof AUTO_SURROGATE_MISSING_SHARE,
  option: WeightedHals | 'auto',
  solver: 'mu' | 'hals',
  arrays: readonly { weights?: Float64Array; deficit?: number; above?: number }[],
  size: number,
  context: string,
): WeightedHals | 'auto' {
  const weighted = arrays.some((a) => a.weights !== undefined);
  if (!weighted || solver !== 'hals') {
    if (option === 'auto') return 'auto';
    throw new RangeError(
      `Expected options.weightedHals only with solver 'hals' and weights or missing entries for ${context} but received '${option}' ${solver === 'hals' ? 'with no entry missing or of weight ≠ 1' : "with solver 'mu'"}`,
    );
  }
  const at = arrays.findIndex((a) => a.weights !== undefined && (a.above ?? -1) >= 0);
  if (at >= 0) {
    if (option === 'surrogate') {
      const where = arrays.length > 1 ? `options.weights[${at}]` : 'options.weights';
      const k = arrays[at]!.above!;
      throw new RangeError(`Expected ${where} ≤ 1 with options.weightedHals 'surrogate' for ${context} but received ${arrays[at]!.weights![k]} at flat index ${k}`);
    }
    return option === 'auto' ? 'exact' : option;
  }
  if (option !== 'auto') return option;
  const deficit = arrays.reduce((total, a) => total + (a.weights ? (a.deficit ?? 0) : 0), 0);
  return deficit <= AUTO_SURROGATE_MISSING_SHARE[method] * size ? 'surrogate' : 'exact';
}
