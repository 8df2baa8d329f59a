/**
 * Stratified-NMF (Chapman, Yaniv, Needell 2023; SPEC.md §8): strata A(s) (nₛ×m, non-negative) are
 * modelled as 1·v(s)ᵀ + W(s)H with per-stratum shifts v(s), per-stratum W(s) and a shared H, fitted by
 * the reference's multiplicative updates. Strata may be dense or CSR (never densified). The whole
 * solve is one native call; the loss is tracked without forming the residual.
 */
import type { Matrix } from '../matrix.js';
import { native } from '../native.js';
import { callSync, productFlops, runJob, type AsyncOptions } from '../runtime.js';
import {
  asyncOptionSpecs,
  describeValue,
  expectFloat64Array,
  expectIntact,
  expectMatrix,
  expectInteger,
  expectMatrixList,
  expectShapeInteger,
  isObjectArgument,
  parseOptions,
  readFields,
  readList,
  scaledNorm,
  type OptionSpecs,
} from '../validate.js';
import {
  callInContext,
  checkFactorMemory,
  combinedNorm,
  inContext,
  checkInit,
  expectFiniteLoss,
  maxRank,
  expectFactorShape,
  iterationOptionSpecs,
  lossOutcome,
  teamThreadsBound,
  type IterationOptions,
  type RawTrace,
} from './common.js';
import { bestOf, bestOfSync, restartsDoubles, type RestartsSummary } from './restarts.js';
import { expectDataMatrix, selectRows, type DataMatrix } from './sparse.js';
import {
  mapPenalizedProgress,
  penaltySettings,
  penaltyWeights,
  stratifiedPenaltyKeys,
  stratifiedPenaltyOptionSpecs,
  withObjective,
  type PenalizedOutcome,
  type PenalizedProgress,
  type StratifiedPenalties,
} from './penalties.js';
import { missingDoubles, prepareMissing, rawMissing, stratifiedMissingOptionSpecs, wantsMissing, type MissingMask, type ParsedMissing, type PreparedMissing } from './missing.js';

/** Factors given to start from; any factor left out is drawn as by 'random' with the seed. */
export interface StratifiedNmfFactors {
  /** S×m, row s is v(s). */
  V?: Matrix;
  /** One nₛ×r matrix per stratum (per-stratum ranks: nₛ×rₛ). */
  W?: Matrix[];
  /** r×m (per-stratum ranks: max rₛ × m). */
  H?: Matrix;
}

/**
 * The rank: one r for every stratum, or one rₛ ≥ 0 per stratum (nested topics: stratum s uses the
 * first rₛ rows of H, which has max rₛ rows; rₛ = 0 models a stratum by its shift v(s) alone).
 * docs/stratified-nmf.md, "Per-stratum ranks".
 */
export type StratifiedNmfRank = number | readonly number[] | Int32Array;

/** The update rule of stratifiedNmf (docs/stratified-nmf.md, "Solvers"). */
export type StratifiedNmfSolver = 'mu' | 'hals';

export interface StratifiedNmfOptions extends IterationOptions, StratifiedPenalties {
  /**
   * 'mu': the reference's multiplicative updates; 'hals': block-coordinate descent (exact steps over
   * v(s), the rows of each W(s), the columns of H; same objective, loss never rises). Default 'hals'
   * (it reaches a given loss 7–45× sooner: docs/stratified-nmf.md); 'mu' reproduces the reference.
   * `epsilon` is 'mu''s (not used by 'hals').
   */
  solver?: StratifiedNmfSolver;
  /**
   * Entry weights ≥ 0 (0 = missing), dense strata only: one Matrix per stratum (null for none). For
   * fromLabels: one Matrix of the shape of A.
   */
  weights?: (Matrix | null)[] | Matrix;
  /** Missing entries of dense strata, one mask per stratum (null for none; as nmf's mask); fromLabels: one for A. */
  mask?: (MissingMask | null)[] | MissingMask;
  /** As nmf's: 'nan' (NaN entries are missing), 'absent' (CSR strata: only stored entries observed), 'observed'. */
  missing?: 'observed' | 'nan' | 'absent';
  /** v updates per iteration (default 2, as the reference). */
  vScaling?: number;
  /**
   * 'random' (the reference: V ~ U(0,1), then W(s), H ~ U(0,1)/√r from the seeded generator),
   * 'nndsvd' (v(s) = ½·column means, W/H by NNDSVD of the stacked A(s) − 1v(s)ᵀ), or given factors.
   * Default 'random'.
   */
  init?: 'random' | 'nndsvd' | StratifiedNmfFactors;
}

/** Every setting a run used, so that it can be repeated. */
export interface StratifiedNmfSettings {
  /** As given: one rank, or a copy of the per-stratum list. */
  rank: number | number[];
  solver: StratifiedNmfSolver;
  maxIterations: number;
  vScaling: number;
  tolerance: number;
  init: 'random' | 'nndsvd' | 'given';
  seed: number;
  lossEvery: number;
  /** Added to every denominator (the reference's tol). */
  epsilon: number;
  certificateTolerance: number;
  /** The penalty weights (docs/penalties.md), present when one is positive (absent: all 0). */
  l1V?: number;
  l2V?: number;
  l1W?: number;
  l2W?: number;
  l1H?: number;
  l2H?: number;
  restarts: number;
}

/**
 * V, W(s), H and the outcome (lib/solver.ts): `loss` is √(Σₛ‖A(s) − 1v(s)ᵀ − W(s)H‖²) after the last
 * iteration, `normalizedLoss` = loss / √(Σₛ‖A(s)‖²), `traces` {iteration, timeMs, loss,
 * normalizedLoss}, `certificate` the KKT gradient mapping of ½loss²/Σₛ‖A(s)‖² over V, each W(s) and H.
 * With a penalty on (options.l1V, l2V, l1W, l2W, l1H, l2H; docs/penalties.md) `loss` stays the data
 * fit and `objective` (with `traces.objective`) is ½loss² + l1V·ΣV + ½·l2V·‖V‖² + l1W·ΣₛΣW(s) +
 * ½·l2W·Σₛ‖W(s)‖² + l1H·ΣH + ½·l2H·‖H‖², whose normalized form (÷Σₛ‖A(s)‖²) the certificate is of.
 */
export interface StratifiedNmfResult extends PenalizedOutcome {
  /** S×m: row s is v(s). */
  V: Matrix;
  /** W(s), nₛ×r each (per-stratum ranks: nₛ×rₛ, the weights of the first rₛ topics). */
  W: Matrix[];
  /** r×m, shared by all strata (per-stratum ranks: max rₛ rows). */
  H: Matrix;
  certificate: number;
  settings: StratifiedNmfSettings;
  /** With options.restarts > 1: every run's seed and loss, and which one this is. */
  restarts?: RestartsSummary;
}

/** The result of fromLabels: strata are the distinct labels, sorted; W[s] rows follow rowIndices[s]. */
export interface LabelledStratifiedNmfResult extends StratifiedNmfResult {
  labels: (string | number)[];
  rowIndices: Int32Array[];
}

/** The options of stratifiedNmf (also the CLI's `snmf` flags). */
export const stratifiedNmfOptionSpecs = {
  solver: { kind: 'enum', values: ['mu', 'hals'], default: 'hals', description: 'update rule' },
  ...iterationOptionSpecs,
  vScaling: { kind: 'number', integer: true, min: 0, max: 1000, default: 2, description: 'v updates per iteration' },
  init: {
    kind: 'custom',
    description: "'random', 'nndsvd' or given factors {V, W, H}",
    check: (v, name) => checkInit(v, name, ['V', 'W', 'H']),
    default: 'random',
  },
  ...stratifiedMissingOptionSpecs,
  ...stratifiedPenaltyOptionSpecs,
} as const satisfies OptionSpecs;
const snmfAsyncSpecs = { ...stratifiedNmfOptionSpecs, ...asyncOptionSpecs } as const satisfies OptionSpecs;

type Parsed = Required<Omit<StratifiedNmfOptions, 'init' | 'weights' | 'mask'>> & { init: 'random' | 'nndsvd' | StratifiedNmfFactors } & {
  weights?: unknown;
  mask?: unknown;
} & AsyncOptions<PenalizedProgress>;

interface Prepared {
  strata: DataMatrix[];
  cols: number;
  /** r, or max rₛ: the rows of H. */
  rank: number;
  /** rₛ per stratum when a list was given. */
  ranks?: number[];
  o: Parsed;
  given?: { V?: Float64Array; W?: Float64Array[]; H?: Float64Array };
  normA: number;
  missing: PreparedMissing[];
  context: string;
}

function prepare(strataArg: unknown, rankArg: unknown, options: unknown, context: string, specs: OptionSpecs, initName = 'options.init'): Prepared {
  const o = parseOptions<Parsed>(specs, options, context);
  if (!Array.isArray(strataArg)) {
    throw new TypeError(`Expected an array of strata (Matrix or CSR) for strata but received ${describeValue(strataArg)}`);
  }
  if (strataArg.length === 0) throw new RangeError('Expected at least one stratum for strata but received an empty array');
  const list = readList(strataArg, 'strata', 'an array of strata (Matrix or CSR)', 1 << 20);
  const perStratum = (key: 'weights' | 'mask'): unknown[] | undefined => {
    const v = o[key];
    if (v === undefined) return undefined;
    if (!Array.isArray(v) || v.length !== list.length) {
      throw new RangeError(`Expected an array of ${list.length} entries (one per stratum; null for none) for options.${key} of ${context} but received ${describeValue(v)}`);
    }
    return v;
  };
  const weights = perStratum('weights'), masks = perStratum('mask');
  const missing: PreparedMissing[] = [];
  const strata = list.map((s, i) => {
    const m: ParsedMissing = { weights: weights?.[i] as ParsedMissing['weights'], mask: masks?.[i] as ParsedMissing['mask'], missing: o.missing };
    const prepared = prepareMissing(s, `strata[${i}]`, m, context, true);
    missing.push(prepared.missing);
    return prepared.data;
  });
  const cols = strata[0]!.cols;
  let totalRows = 0;
  strata.forEach((s, i) => {
    if (s.cols !== cols) {
      throw new RangeError(`Expected strata[${i}] to have ${cols} columns (as strata[0]) but received ${s.cols}`);
    }
    totalRows += s.rows;
  });
  const ranks = readStratumRanks(rankArg, strata.length);
  const rank = ranks ? Math.max(...ranks) : expectShapeInteger(rankArg, 'rank', maxRank);
  const rankLimit = Math.min(cols, totalRows);
  if (rank > rankLimit) {
    throw new RangeError(`Expected a rank in [1, ${rankLimit}] (min of columns and total rows) for ${ranks ? 'max(rank)' : 'rank'} but received ${rank}`);
  }
  // With missing entries, HALS sweeps rows and columns with their own lists: per thread of the team
  // one list at a time (native stratifiedNmfRowListDoubles counts the same), whose rows of the
  // stacked W are int32 indices.
  const rowLists = o.solver === 'hals' && missing.some((m) => m.weights !== undefined || m.absent || m.entries !== undefined);
  if (rowLists && totalRows > 2 ** 31 - 1) {
    throw new RangeError(`Expected at most ${2 ** 31 - 1} rows in all strata with missing entries (weights, mask or missing) for strata of ${context} but received ${totalRows}`);
  }
  const rowListDoubles = rowLists ? teamThreadsBound() * ((rank + 3.5) * (1.5 * Math.max(totalRows, cols) + 1) + 5.5 * rank + 17) : 0;
  // V (S×m), W(s) (nₛ×r), H (r×m), result copies, the stacked W (N×r) and update workspaces.
  checkFactorMemory(
    Math.max(totalRows, cols) * rank,
    restartsDoubles(
      o.restarts,
      4 * (totalRows + cols) * rank + 2 * strata.length * cols + 2 * rank * rank + rowListDoubles + missing.reduce((t, m, s) => t + missingDoubles(m, strata[s]!.rows * cols), 0),
      (totalRows + cols) * rank + strata.length * cols,
    ),
    `rank ${rank} with strata of ${totalRows} rows and ${cols} columns in all (V, W, H and their workspaces${o.restarts > 1 ? `, ${o.restarts} restarts` : ''})`,
  );
  let given: Prepared['given'];
  if (typeof o.init === 'object') {
    const g = o.init;
    given = {};
    if (g.V !== undefined) {
      const V = expectMatrix(g.V, `${initName}.V`, { nonNegative: true });
      expectFactorShape(V, `${initName}.V`, strata.length, cols);
      given.V = V.data;
    }
    if (g.W !== undefined) {
      if (!Array.isArray(g.W)) {
        throw new TypeError(`Expected an array of ${strata.length} matrices (one per stratum) for ${initName}.W but received ${describeValue(g.W)}`);
      }
      const list = ranks?.includes(0) ? readList(g.W, `${initName}.W`, 'an array of matrices', 1 << 20) : expectMatrixList(g.W, `${initName}.W`, { nonNegative: true }, 1 << 20);
      if (list.length !== strata.length) {
        throw new RangeError(`Expected an array of ${strata.length} matrices (one per stratum) for ${initName}.W but received ${describeValue(g.W)}`);
      }
      given.W = list.map((w, s) => {
        const name = `${initName}.W[${s}]`;
        if (ranks?.[s] === 0) return expectNoTopics(w, name, strata[s]!.rows);
        const W = expectMatrix(w, name, { nonNegative: true });
        expectFactorShape(W, name, strata[s]!.rows, ranks ? ranks[s]! : rank);
        return W.data;
      });
    }
    if (g.H !== undefined) {
      const H = expectMatrix(g.H, `${initName}.H`, { nonNegative: true });
      expectFactorShape(H, `${initName}.H`, rank, cols);
      given.H = H.data;
    }
  }
  // Each stratum was read after the previous one was checked: all buffers must still be as validated.
  expectIntact(...strata.map((s, i): [Float64Array, number, string] => [s.data, 'indptr' in s ? s.indptr[s.rows]! : s.rows * s.cols, `strata[${i}].data`]));
  const normA = combinedNorm(missing.map((m) => m.norm));
  return { strata, cols, rank, ranks, o, given, normA, missing, context };
}

/**
 * A per-stratum rank list (undefined for one rank): S integers in [0, maxRank], at least one positive
 * (H needs a row). A typed array of integers is read as a list too.
 */
function readStratumRanks(rankArg: unknown, S: number): number[] | undefined {
  if (!Array.isArray(rankArg) && !(ArrayBuffer.isView(rankArg) && !(rankArg instanceof DataView))) return undefined;
  const list = readList(rankArg, 'rank', `an array of ${S} ranks (one per stratum)`);
  if (list.length !== S) {
    throw new RangeError(`Expected an array of ${S} ranks (one per stratum, in the order of the strata) for rank but received ${describeValue(rankArg)}`);
  }
  const ranks = list.map((r, s) => expectInteger(r, `rank[${s}]`, 0, maxRank, 'a rank'));
  if (!ranks.some((r) => r > 0)) {
    throw new RangeError(`Expected at least one positive rank (H needs a row) for rank but received ${describeValue(rankArg)}`);
  }
  return ranks;
}

/** The W(s) of a stratum of rank 0: nₛ×0, {rows: nₛ, cols: 0, data: an empty Float64Array} (as results hold it). */
function expectNoTopics(w: unknown, name: string, rows: number): Float64Array {
  if (!isObjectArgument(w)) throw new TypeError(`Expected a ${rows}×0 matrix (its stratum has rank 0) for ${name} but received ${describeValue(w)}`);
  const f = readFields(w, ['rows', 'cols', 'data'] as const, name);
  if (f.rows !== rows || f.cols !== 0) {
    throw new RangeError(`Expected a ${rows}×0 matrix (its stratum has rank 0) for ${name} but received ${describeValue(f.rows)}×${describeValue(f.cols)}`);
  }
  return expectFloat64Array(f.data, `${name}.data`, 0, 'rows*cols');
}

/** The rank argument of the raw binding: the number, or the per-stratum list. */
function rawRank(p: Prepared): number | number[] {
  return p.ranks ?? p.rank;
}

function rawOptions(p: Prepared, seed: number) {
  return {
    solver: p.o.solver,
    maxIterations: p.o.maxIterations,
    tolerance: p.o.tolerance,
    lossEvery: p.o.lossEvery,
    vScaling: p.o.vScaling,
    seed,
    epsilon: p.o.epsilon,
    certificateTolerance: p.o.certificateTolerance,
    ...penaltyWeights(p.o, stratifiedPenaltyKeys),
    init: p.given ? ('given' as const) : (p.o.init as 'random' | 'nndsvd'),
    ...p.given,
    ...rawStrataMissing(p.missing),
  };
}

/** The bindings' missing-value fields: weights per stratum (null for none) and missing 'absent'. */
function rawStrataMissing(missing: PreparedMissing[]): { weights?: (Float64Array | null)[]; missing?: 'absent'; maskEntries?: ({ rows: Int32Array; cols: Int32Array } | null)[] } {
  const raw = missing.map(rawMissing);
  const out: ReturnType<typeof rawStrataMissing> = {};
  if (raw.some((m) => m.weights)) out.weights = raw.map((m) => m.weights ?? null);
  if (raw.some((m) => m.maskEntries)) out.maskEntries = raw.map((m) => m.maskEntries ?? null);
  if (raw.some((m) => m.missing)) out.missing = 'absent';
  return out;
}

function toResult(p: Prepared, raw: RawTrace & { V: Float64Array; W: Float64Array[]; H: Float64Array }): StratifiedNmfResult {
  expectFiniteLoss(raw.trace.loss, p.context, 'the strata');
  const { cols, rank, ranks } = p;
  return {
    V: { rows: p.strata.length, cols, data: raw.V },
    W: raw.W.map((data, s) => ({ rows: p.strata[s]!.rows, cols: ranks ? ranks[s]! : rank, data })),
    H: { rows: rank, cols, data: raw.H },
    ...withObjective(lossOutcome(raw, p.normA), raw),
    certificate: raw.certificate!,
    settings: {
      rank: ranks ? [...ranks] : rank,
      solver: p.o.solver,
      maxIterations: p.o.maxIterations,
      vScaling: p.o.vScaling,
      tolerance: p.o.tolerance,
      init: p.given ? 'given' : (p.o.init as 'random' | 'nndsvd'),
      seed: p.o.seed,
      lossEvery: p.o.lossEvery,
      epsilon: p.o.epsilon,
      certificateTolerance: p.o.certificateTolerance,
      ...penaltySettings(penaltyWeights(p.o, stratifiedPenaltyKeys)),
      restarts: p.o.restarts,
    },
  };
}

/** The buffers a job reads (copied by the addon when it starts; see runJob). */
function jobInputs(p: Prepared): Float64Array[] {
  return p.strata.map((s) => s.data);
}

/** The small-job rule's size (lib/runtime.ts): the stacked data product Σₛ A(s)Hᵀ. */
function jobFlops(p: Prepared): number {
  return productFlops(p.strata.reduce((n, s) => n + s.data.length, 0), p.rank);
}

/** Stratified-NMF on the calling thread (small problems). */
export function stratifiedNmfSync(strata: DataMatrix[], rank: StratifiedNmfRank, options?: StratifiedNmfOptions): StratifiedNmfResult {
  const p = prepare(strata, rank, options, 'stratifiedNmfSync()', stratifiedNmfOptionSpecs);
  return bestOfSync(p.o, p.given !== undefined, p.context, (seed) =>
    toResult(p, callInContext(p.context, 'the strata', () => callSync(() => native().stratifiedNmf(p.strata, p.cols, rawRank(p), rawOptions(p, seed)), jobFlops(p)))),
  );
}

function stratifiedNmfAsync(
  strata: DataMatrix[],
  rank: StratifiedNmfRank,
  options?: StratifiedNmfOptions & AsyncOptions<PenalizedProgress>,
): Promise<StratifiedNmfResult> {
  let p: Prepared;
  try {
    p = prepare(strata, rank, options, 'stratifiedNmf()', snmfAsyncSpecs);
  } catch (err) {
    return Promise.reject(err);
  }
  return bestOf(p.o, p.given !== undefined, p.context, (seed, jobOptions) =>
    runJob(
      jobInputs(p),
      (inputs, token, onProgress, interval) => {
        // A job waiting for a slot gets JS copies of the values; rebuild the strata around them.
        const strataNow = p.strata.map((s, i) => ({ ...s, data: inputs[i]! }));
        return native().stratifiedNmfAsync(strataNow, p.cols, rawRank(p), rawOptions(p, seed), token, onProgress, interval);
      },
      jobOptions,
      mapPenalizedProgress,
      jobFlops(p),
    )
      .catch(inContext(p.context, 'the strata'))
      .then((raw) => toResult(p, raw)),
  );
}

/** Labels → sorted distinct labels and the rows of each. */
function groupRows(labels: unknown, rows: number): { labels: (string | number)[]; rowIndices: Int32Array[] } {
  const isList = Array.isArray(labels) || (ArrayBuffer.isView(labels) && !(labels instanceof DataView));
  if (!isList) {
    throw new TypeError(`Expected an array of labels (numbers or strings), one per row, for labels but received ${describeValue(labels)}`);
  }
  const list = readList(labels, 'labels', 'an array of labels (numbers or strings)');
  if (list.length !== rows) {
    throw new RangeError(`Expected labels of length ${rows} (the rows of A) but received ${describeValue(labels)}`);
  }
  const groups = new Map<string | number, number[]>();
  for (let i = 0; i < rows; i++) {
    const l = list[i];
    if ((typeof l !== 'number' || !Number.isFinite(l)) && typeof l !== 'string') {
      throw new TypeError(`Expected a finite number or a string for labels[${i}] but received ${describeValue(l)}`);
    }
    const g = groups.get(l);
    if (g) g.push(i);
    else groups.set(l, [i]);
  }
  const keys = [...groups.keys()].sort((a, b) =>
    typeof a === 'number' && typeof b === 'number' ? a - b : String(a) < String(b) ? -1 : String(a) > String(b) ? 1 : 0,
  );
  return { labels: keys, rowIndices: keys.map((k) => Int32Array.from(groups.get(k)!)) };
}

/**
 * Splits A by labels. With missing-value options for A (one mask or weights Matrix of A's shape),
 * they are turned into A's weights first and split with the rows: the options returned then carry
 * one weights Matrix per stratum.
 */
function splitByLabels<T extends StratifiedNmfOptions | undefined>(A: unknown, labels: unknown, options: T, specs: OptionSpecs, context: string) {
  const o = parseOptions<Parsed>(specs, options, context);
  if (!wantsMissing(o as unknown as ParsedMissing)) {
    const data = expectDataMatrix(A, 'A');
    const groups = groupRows(labels, data.rows);
    return { strata: groups.rowIndices.map((rows) => selectRows(data, rows)), options: o as unknown as T, ...groups };
  }
  for (const key of ['weights', 'mask'] as const) {
    const v = o[key];
    if (Array.isArray(v) && !(v.length > 0 && (typeof v[0] === 'boolean' || typeof v[0] === 'number'))) {
      throw new TypeError(`Expected one ${key === 'weights' ? 'Matrix' : 'mask'} for A (of its shape) for options.${key} of ${context}.fromLabels but received an array of per-stratum values`);
    }
  }
  const { data, missing } = prepareMissing(A, 'A', o as unknown as ParsedMissing, `${context}.fromLabels`);
  const groups = groupRows(labels, data.rows);
  if ('indptr' in data) {
    // A mask of CSR data is a list of A's entries: each goes to its row's stratum, renumbered.
    let options = o as unknown as T;
    if (missing.entries) {
      const stratumOf = new Int32Array(data.rows), localRow = new Int32Array(data.rows);
      groups.rowIndices.forEach((rows, s) => rows.forEach((i, k) => ((stratumOf[i] = s), (localRow[i] = k))));
      const lists = groups.rowIndices.map(() => ({ rows: [] as number[], cols: [] as number[] }));
      missing.entries.rows.forEach((i, p) => (lists[stratumOf[i]!]!.rows.push(localRow[i]!), lists[stratumOf[i]!]!.cols.push(missing.entries!.cols[p]!)));
      options = { ...o, mask: lists } as unknown as T;
    }
    return { strata: groups.rowIndices.map((rows) => selectRows(data, rows)), options, ...groups };
  }
  const m = data.cols;
  const pick = (values: Float64Array, rows: Int32Array) => {
    const out = new Float64Array(rows.length * m);
    rows.forEach((i, k) => out.set(values.subarray(i * m, (i + 1) * m), k * m));
    return out;
  };
  const omega = missing.weights ?? new Float64Array(data.rows * m).fill(1);
  const strata = groups.rowIndices.map((rows) => ({ rows: rows.length, cols: m, data: pick(data.data, rows) }));
  const weights = groups.rowIndices.map((rows) => ({ rows: rows.length, cols: m, data: pick(omega, rows) }));
  return { strata, options: { ...o, weights, mask: undefined, missing: 'observed' } as unknown as T, ...groups };
}

/** Stratified-NMF of one matrix whose rows carry a stratum label each (one stratum per distinct label). */
function fromLabelsSync(A: DataMatrix, labels: ArrayLike<string | number>, rank: StratifiedNmfRank, options?: StratifiedNmfOptions): LabelledStratifiedNmfResult {
  const split = splitByLabels(A, labels, options, stratifiedNmfOptionSpecs, 'stratifiedNmfSync()');
  const r = stratifiedNmfSync(split.strata, rank, split.options);
  return { ...r, labels: split.labels, rowIndices: split.rowIndices };
}

function fromLabelsAsync(
  A: DataMatrix,
  labels: ArrayLike<string | number>,
  rank: StratifiedNmfRank,
  options?: StratifiedNmfOptions & AsyncOptions<PenalizedProgress>,
): Promise<LabelledStratifiedNmfResult> {
  let split: ReturnType<typeof splitByLabels>;
  try {
    split = splitByLabels(A, labels, options, snmfAsyncSpecs, 'stratifiedNmf()');
  } catch (err) {
    return Promise.reject(err);
  }
  return stratifiedNmfAsync(split.strata, rank, split.options).then((r) => ({ ...r, labels: split.labels, rowIndices: split.rowIndices }));
}

/**
 * Stratified-NMF on a worker thread: resolves with V, W(s), H, the outcome (loss, traces, stopReason,
 * certificate) and the settings.
 * `onProgress` receives {iteration, maxIterations, loss, normalizedLoss}; `signal` cancels (AbortError).
 * `stratifiedNmf.fromLabels(A, labels, rank, options)` splits one matrix by row labels first.
 */
export const stratifiedNmf = Object.assign(stratifiedNmfAsync, { fromLabels: fromLabelsAsync });
stratifiedNmfSync.fromLabels = fromLabelsSync;

/** √(Σₛ‖A(s) − 1v(s)ᵀ − W(s)H‖²) of given factors (expanded, with the direct fallback). */
export function stratifiedNmfLoss(strata: DataMatrix[], factors: { V: Matrix; W: Matrix[]; H: Matrix }): number {
  if (!isObjectArgument(factors)) {
    throw new TypeError(`Expected an object {V, W, H} of matrices for factors but received ${describeValue(factors)}`);
  }
  const f = readFields(factors, ['V', 'W', 'H'] as const, 'factors');
  for (const key of ['V', 'W', 'H'] as const) {
    if (f[key] === undefined) throw new TypeError(`Expected ${key === 'W' ? 'an array of matrices' : 'a Matrix'} for factors.${key} but received undefined`);
  }
  if (!isObjectArgument(f.H)) throw new TypeError(`Expected a Matrix for factors.H but received ${describeValue(f.H)}`);
  const full = expectMatrix(f.H, 'factors.H', { nonNegative: true });
  const rank = ranksOfFactors(f.W, full.rows);
  // Nested topics: rows of H past max rₛ (a subset of a result's strata) are used by none of them.
  const used = typeof rank === 'number' ? rank : Math.max(...rank);
  const H = used > 0 && used < full.rows ? { rows: used, cols: full.cols, data: full.data.subarray(0, used * full.cols) } : full;
  const p = prepare(strata, rank, { init: { V: f.V, W: f.W, H } }, 'stratifiedNmfLoss()', stratifiedNmfOptionSpecs, 'factors');
  const g = p.given!;
  const loss = callSync(() => native().stratifiedNmfLoss(p.strata, p.cols, rawRank(p), g.V!, g.W!, g.H!));
  expectFiniteLoss([loss], 'stratifiedNmfLoss()', 'the strata');
  return loss;
}

/**
 * The ranks of given factors: H's rows, or — when some W(s) has fewer columns (a per-stratum-rank
 * result, or some of its strata) — the column counts of the W(s). prepare checks the shapes.
 */
function ranksOfFactors(W: unknown, r: number): StratifiedNmfRank {
  if (!Array.isArray(W)) return r;
  const cols = W.map((w: unknown) => (isObjectArgument(w) ? (w as { cols?: unknown }).cols : undefined));
  return cols.every((c) => typeof c === 'number') && cols.some((c) => c !== r) ? (cols as number[]) : r;
}
