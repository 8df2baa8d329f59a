/**
 * Rank selection by cross-validation (docs/cross-validation.md): speckled hold-out, as in RcppML.
 * For every repetition seed, the observed entries are shuffled once and cut into `folds` disjoint test
 * sets of `holdout`·(observed entries) each; each (rank, seed, fold) fit sees everything but its
 * test set (a mask, added to the user's), and its error is the RMSE of the model at the held-out
 * entries. The masks depend on the data, the seed, `folds` and `holdout` only — never on the ranks —
 * so every rank is scored on the same test sets (and a grid split into one job per rank, as a batch
 * does, gives the same numbers as one call).
 *
 * CSR data is never densified: its entries (stored or not, all observed unless the user's mask or a
 * NaN under missing 'nan' says otherwise) are counted, drawn and held out by flat index, and each fit
 * gets its test set as a list of entries (nmf's and stratifiedNmf's mask {rows, cols} on CSR data),
 * so the cost is that of the lists — never rows×cols.
 *
 * The fold machinery (observedEntries, drawFolds, tasksOf, maskWithTest, runGridSync/runGridAsync,
 * chooseByRule) knows nothing of ranks: crossValidateW runs a grid over NSA-Flow's w on it (nsaFlowFit
 * with the test set masked, scored by center + scores·Vᵀ at the held-out entries).
 */
import type { CsrMatrix, Matrix } from '../matrix.js';
import { checkMemory, float64Bytes } from '../memory.js';
import { AbortError } from '../errors.js';
import { fidelityMissingOptionSpecs } from '../nsa-flow/certified.js';
import { nsaFlowFit, nsaFlowFitOptionSpecs, nsaFlowFitSync, type NsaFlowFitOptions, type NsaFlowFitResult } from '../nsa-flow/fit.js';
import { getConcurrency, type AsyncOptions } from '../runtime.js';
import type { Tensor } from '../tensor.js';
import { cpReconstruct, expectTensor } from '../tensor-ops.js';
import {
  asyncOptionSpecs,
  describeValue,
  expectInteger,
  expectMatrix,
  expectShapeInteger,
  expectOneOf,
  isObjectArgument,
  ownKeys,
  parseOptions,
  readList,
  subName,
  type OptionSpecs,
} from '../validate.js';
import { nmf, nmfOptionSpecs, nmfSync, type NmfOptions } from './nmf.js';
import { ntf, ntfOptionSpecs, ntfSync, type NtfOptions } from './ntf.js';
import { reconstruct } from './reconstruct.js';
import { expectDataMatrix } from './sparse.js';
import { storedIndex } from './missing.js';
import { stratifiedNmf, stratifiedNmfOptionSpecs, stratifiedNmfSync, type StratifiedNmfOptions } from './stratified-nmf.js';

export const crossValidationMethods = ['nmf', 'stratifiedNmf', 'ntf'] as const;
export type CrossValidationMethod = (typeof crossValidationMethods)[number];

export const rankRules = ['min', 'oneStandardError'] as const;
export type RankRule = (typeof rankRules)[number];

/** Progress of a cross-validation: fits finished of all (ranks × seeds × folds). */
export interface CrossValidationProgress {
  done: number;
  total: number;
}

export interface CrossValidateRankOptions {
  /** The ranks to compare: distinct positive integers (required). */
  ranks: number[];
  /** Disjoint test sets per seed (default 5); folds·holdout ≤ 1. */
  folds?: number;
  /** Fraction of the observed entries each test set holds, in (0, 0.5) (default 0.05). */
  holdout?: number;
  /** Repetitions: a count n (seeds 0, …, n − 1) or the seeds themselves (default 1: seed 0). */
  seeds?: number | number[];
  /** 'oneStandardError' (default): the smallest rank within one standard error of the best mean; 'min': the best mean. */
  rule?: RankRule;
  /**
   * Options of the method's fits (solver, maxIterations, tolerance, …, and a user `mask` or
   * `missing: 'nan'`), checked by the method's own specs. Not `seed` (each fit takes its repetition's
   * seed), `init` factors (they fix a rank) or `weights`.
   */
  fitOptions?: NmfOptions | StratifiedNmfOptions | NtfOptions;
}

/** The held-out error at one rank, over every (seed, fold) in seed-major order. */
export interface RankError {
  rank: number;
  /** Mean of `errors`. */
  mean: number;
  /** Sample standard deviation of `errors` (0 for a single fit). */
  sd: number;
  /** RMSE of the model at each test set's entries. */
  errors: Float64Array;
  /** Mean of `trainErrors`. */
  trainMean: number;
  /** RMSE of each fit at the entries it saw (observed and not held out). */
  trainErrors: Float64Array;
}

export interface CrossValidateRankResult {
  method: CrossValidationMethod;
  /** One entry per rank, in increasing rank. */
  curve: RankError[];
  /** The rank the rule chose. */
  chosenRank: number;
  /** The rank of the smallest mean test error (= chosenRank under 'min'). */
  bestRank: number;
  rule: RankRule;
  settings: {
    ranks: number[];
    folds: number;
    holdout: number;
    seeds: number[];
    /** Observed entries (not in the user's mask, not NaN under missing 'nan'). */
    observed: number;
    /** Entries in each test set: round(holdout · observed). */
    heldOut: number;
  };
}

// ---- options ------------------------------------------------------------------------------------

const positiveInteger = (v: unknown, name: string): number => expectInteger(v, name, 1, 2 ** 31 - 1, 'a positive integer');

const cvOptionSpecs = {
  ranks: {
    kind: 'custom',
    description: 'the ranks to compare: an array of distinct positive integers',
    check: (v: unknown, name: string) => {
      const list = readList(v, name, 'an array of positive integers (the ranks)', 1 << 16);
      if (list.length === 0) throw new RangeError(`Expected at least one rank in ${name} but received an empty array`);
      const ranks = list.map((r, k) => positiveInteger(r, `${subName(name, `[${k}]`)}`));
      const repeated = ranks.find((r, k) => ranks.indexOf(r) !== k);
      if (repeated !== undefined) throw new RangeError(`Expected distinct ranks in ${name} but received ${repeated} twice`);
      return ranks.sort((a, b) => a - b);
    },
  },
  folds: { kind: 'number', integer: true, min: 1, max: 1000, default: 5, description: 'disjoint test sets per seed' },
  holdout: { kind: 'number', min: 0, max: 0.5, minExclusive: true, maxExclusive: true, default: 0.05, description: 'fraction of the observed entries in each test set' },
  seeds: {
    kind: 'custom',
    description: 'repetitions: a count n (seeds 0…n − 1) or an array of seeds (integers ≥ 0)',
    default: 1,
    check: (v: unknown, name: string) => {
      if (typeof v === 'number') return positiveInteger(v, name);
      const list = readList(v, name, 'a count or an array of seeds (integers ≥ 0)', 1 << 16);
      if (list.length === 0) throw new RangeError(`Expected at least one seed in ${name} but received an empty array`);
      return list.map((s, k) => expectInteger(s, subName(name, `[${k}]`), 0, Number.MAX_SAFE_INTEGER, 'an integer ≥ 0'));
    },
  },
  rule: { kind: 'enum', values: rankRules, default: 'oneStandardError', description: 'how the rank is chosen from the curve' },
} as const satisfies OptionSpecs;

const methodSpecs: Record<CrossValidationMethod, OptionSpecs> = { nmf: nmfOptionSpecs, stratifiedNmf: stratifiedNmfOptionSpecs, ntf: ntfOptionSpecs };

/** The fit options of a method, checked by its own specs; what cross-validation sets itself is refused. */
function fitOptionsSpec(method: CrossValidationMethod) {
  return {
    kind: 'custom',
    description: "the method's options for every fit (solver, maxIterations, …; a mask or missing 'nan')",
    check: (v: unknown, name: string) => {
      if (isObjectArgument(v)) {
        const keys = ownKeys(v, name);
        if (keys.includes('seed')) throw new RangeError(`Expected no seed in ${name}: each fit takes its repetition's seed (give options.seeds)`);
        if (keys.includes('weights')) throw new RangeError(`Expected no weights in ${name}: cross-validation holds entries out by mask and scores them unweighted (give a mask)`);
      }
      const o = parseOptions<Record<string, unknown>>(methodSpecs[method], v, name);
      if (typeof o.init === 'object') throw new RangeError(`Expected 'random' or 'nndsvd' for ${subName(name, '.init')}: given factors fix a rank, and every fold starts afresh`);
      if (o.missing === 'absent') throw new RangeError(`Expected missing 'observed' or 'nan' for ${subName(name, '.missing')}: cross-validation holds out entries among all of the data's, stored or not`);
      return o;
    },
  } as const;
}

interface Parsed {
  ranks: number[];
  folds: number;
  holdout: number;
  seeds: number | number[];
  rule: RankRule;
  fitOptions: Record<string, unknown>;
  signal?: AbortSignal;
  onProgress?: (p: CrossValidationProgress) => void;
}

// ---- the data and its observed entries ---------------------------------------------------------------

/**
 * The entries cross-validation draws from, by flat index (strata stacked by rows; a tensor in C
 * order). Dense data: the values, flags and the list of observed indices. Data with CSR in it: the
 * user's missing entries as a sorted list, the observed ones by rank (the k-th observed index is
 * computed, never listed) and the values looked up in place.
 */
export interface EntrySpace {
  /** Observed entries. */
  count: number;
  /** Their flat indices, increasing: a list (dense data), or the k-th one by a search (CSR). */
  observed: Int32Array | Float64Array | ((k: number) => number);
  /** The data's value at a flat index. */
  value: (e: number) => number;
  /** The user's missing entries (mask; NaN under missing 'nan'): flags, or a sorted list of flat indices. */
  missing: Uint8Array | Float64Array;
  /** Bytes one fit in flight holds for its mask (the flags, or the list with `heldOut` test entries). */
  maskBytes: (heldOut: number) => number;
}

/** The entry space of dense data (observedEntries's list). */
export function denseSpace(values: Float64Array, missing: Uint8Array, observed: Int32Array | Float64Array): EntrySpace {
  return { count: observed.length, observed, value: (e) => values[e]!, missing, maskBytes: () => values.length };
}

/** The data and how to score a fit. */
interface Problem {
  method: CrossValidationMethod;
  /** The data as the fits get it (CSR as given, or a copy whose stored values at missing entries are 0). */
  data: Matrix | CsrMatrix | (Matrix | CsrMatrix)[] | Tensor;
  /** Columns of the stacked matrix (matrices); 0 for a tensor. */
  cols: number;
  space: EntrySpace;
  /** Some data is CSR: the fits get their masks as index lists (dense strata: flags). */
  sparse: boolean;
  /** The largest rank a fit accepts. */
  maxRank: number;
  /** Stratum row offsets in the stacked matrix (stratifiedNmf). */
  strataRows?: number[];
}

/** The user's mask as flags over `size` entries (an index list counts in rows of `cols`). */
function maskFlags(mask: unknown, size: number, cols: number, name: string, out: Uint8Array, offset = 0): void {
  if (mask === undefined || mask === null) return;
  if (mask instanceof Uint8Array) {
    if (mask.length !== size) throw new RangeError(`Expected ${size} entries for ${name} but received ${mask.length}`);
    for (let k = 0; k < size; k++) if (mask[k]) out[offset + k] = 1;
    return;
  }
  const { rows, cols: cs } = mask as { rows: Int32Array; cols: Int32Array };
  for (let k = 0; k < rows.length; k++) {
    const i = rows[k]!, j = cs[k]!;
    if (j >= cols || i * cols + j >= size) throw new RangeError(`Expected indices within the data for ${name} but received [${i}, ${j}] at position ${k}`);
    out[offset + i * cols + j] = 1;
  }
}

/**
 * The observed entries' flat indices (increasing): not flagged in `missing` (which gains the NaN
 * entries under missing 'nan'); their values must be finite (and ≥ 0 for the non-negative methods).
 */
export function observedEntries(values: Float64Array, missing: Uint8Array, nan: boolean, nonNegative: boolean): Int32Array | Float64Array {
  let count = 0;
  for (let k = 0; k < values.length; k++) {
    const x = values[k]!;
    if (nan && Number.isNaN(x)) missing[k] = 1;
    if (missing[k]) continue;
    if (!(nonNegative ? x >= 0 : x - x === 0) || x === Infinity) {
      throw new RangeError(
        `Expected finite${nonNegative ? ' non-negative' : ''} values in data at observed entries but received ${describeValue(x)} at flat index ${k}${Number.isNaN(x) ? " (mark missing entries with options.fitOptions.mask or missing 'nan')" : ''}`,
      );
    }
    count++;
  }
  const observed = values.length < 2 ** 31 ? new Int32Array(count) : new Float64Array(count);
  for (let k = 0, q = 0; k < values.length; k++) if (!missing[k]) observed[q++] = k;
  return observed;
}

/**
 * The entry space of matrices stacked by rows, some of them CSR, without a dense copy of any CSR one:
 * the user's mask and (missing 'nan', dense strata) the NaN entries listed as missing, every other
 * value checked finite and ≥ 0, and the matrices as the fits get them (a CSR one copied, with 0 there,
 * only when a stored value at a missing entry is negative: on CSR data the fit's mask does not excuse
 * a stored value).
 */
function sparseSpace(blocks: (Matrix | CsrMatrix)[], masks: unknown[], maskNames: string[], nan: boolean): { space: EntrySpace; data: (Matrix | CsrMatrix)[] } {
  const cols = blocks[0]!.cols;
  const offsets: number[] = [];
  let rows = 0;
  for (const b of blocks) offsets.push(rows), (rows += b.rows);
  const size = rows * cols;
  const keys: number[] = [];
  blocks.forEach((b, s) => {
    const base = offsets[s]! * cols, mask = masks[s];
    if (mask instanceof Uint8Array) {
      if (mask.length !== b.rows * cols) throw new RangeError(`Expected ${b.rows * cols} entries for ${maskNames[s]} but received ${mask.length}`);
      for (let k = 0; k < mask.length; k++) if (mask[k]) keys.push(base + k);
    } else if (mask !== undefined && mask !== null) {
      const { rows: mr, cols: mc } = mask as { rows: Int32Array; cols: Int32Array };
      for (let k = 0; k < mr.length; k++) {
        const i = mr[k]!, j = mc[k]!;
        if (i >= b.rows || j >= cols) throw new RangeError(`Expected indices within the data for ${maskNames[s]} but received [${i}, ${j}] at position ${k}`);
        keys.push(base + i * cols + j);
      }
    }
    // (A CSR matrix holds no NaN: expectDataMatrix refuses it.)
    if (nan && !('indptr' in b)) b.data.forEach((x, k) => Number.isNaN(x) && keys.push(base + k));
  });
  const sorted = Float64Array.from(keys).sort();
  let distinct = 0;
  for (let k = 0; k < sorted.length; k++) if (distinct === 0 || sorted[k] !== sorted[distinct - 1]) sorted[distinct++] = sorted[k]!;  // a list may name an entry twice
  const missing = sorted.slice(0, distinct);
  const isMissing = (e: number): boolean => {
    let lo = 0, hi = missing.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (missing[mid]! < e) lo = mid + 1;
      else hi = mid;
    }
    return lo < missing.length && missing[lo] === e;
  };
  const blockOf = (i: number): number => {
    let lo = 0, hi = offsets.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >>> 1;
      if (offsets[mid]! <= i) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  };
  const value = (e: number): number => {
    const i = Math.floor(e / cols), j = e - i * cols, s = blockOf(i), b = data[s]!, r = i - offsets[s]!;
    if (!('indptr' in b)) return b.data[r * cols + j]!;
    const p = storedIndex(b as CsrMatrix, r, j);
    return p < 0 ? 0 : b.data[p]!;
  };
  const bad = (x: number) => !(x >= 0) || x === Infinity;
  const data: (Matrix | CsrMatrix)[] = blocks.map((b, s) => {
    const base = offsets[s]! * cols;
    if (!('indptr' in b)) {
      b.data.forEach((x, k) => {
        if (bad(x) && !isMissing(base + k)) throw observedValueError(x, base + k);
      });
      return b;
    }
    let copy: Float64Array | undefined;
    for (let i = 0; i < b.rows; i++) {
      for (let p = b.indptr[i]!; p < b.indptr[i + 1]!; p++) {
        const x = b.data[p]!, e = base + i * cols + b.indices[p]!;
        if (!bad(x)) continue;
        if (!isMissing(e)) throw observedValueError(x, e);
        (copy ??= b.data.slice())[p] = 0;
      }
    }
    return copy ? { rows: b.rows, cols, indptr: b.indptr, indices: b.indices, data: copy } : b;
  });
  // The k-th observed index e: the t missing entries below it put it at k + t, where t is the number
  // of missing entries m_q with m_q − q ≤ k (m_q − q observed entries come before m_q).
  const observed = (k: number): number => {
    let lo = 0, hi = missing.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (missing[mid]! - mid <= k) lo = mid + 1;
      else hi = mid;
    }
    return k + lo;
  };
  // A fit's mask: the merged list of flat indices, then rows and columns (CSR strata) or flags (dense).
  const denseRows = blocks.reduce((t, b) => t + ('indptr' in b ? 0 : b.rows * cols), 0);
  return {
    space: { count: size - missing.length, observed, value, missing, maskBytes: (heldOut) => 32 * (missing.length + heldOut) + denseRows },
    data,
  };
}

function observedValueError(x: number, k: number): RangeError {
  return new RangeError(
    `Expected finite non-negative values in data at observed entries but received ${describeValue(x)} at flat index ${k}${Number.isNaN(x) ? " (mark missing entries with options.fitOptions.mask or missing 'nan')" : ''}`,
  );
}

function readProblem(method: CrossValidationMethod, dataArg: unknown, fit: Record<string, unknown>): Problem {
  let data: Problem['data'], values: Float64Array, cols: number, maxRank: number, strataRows: number[] | undefined;
  let missing: Uint8Array;
  const nan = fit.missing === 'nan';
  if (method === 'nmf') {
    const A0 = expectDataMatrix(dataArg, 'data', { nonNegative: false, finite: false });
    if ('indptr' in A0) {
      const { space, data: [A] } = sparseSpace([A0], [fit.mask], ['options.fitOptions.mask'], nan);
      return { method, data: A!, cols: A0.cols, space, sparse: true, maxRank: Math.min(A0.rows, A0.cols) };
    }
    const A = A0;
    data = A;
    values = A.data;
    cols = A.cols;
    maxRank = Math.min(A.rows, A.cols);
    missing = new Uint8Array(values.length);
    maskFlags(fit.mask, values.length, cols, 'options.fitOptions.mask', missing);
  } else if (method === 'stratifiedNmf') {
    if (!Array.isArray(dataArg)) throw new TypeError(`Expected an array of strata (Matrix or CSR) for data but received ${describeValue(dataArg)}`);
    const list = readList(dataArg, 'data', 'an array of strata (Matrix or CSR)', 1 << 20);
    if (list.length === 0) throw new RangeError('Expected at least one stratum for data but received an empty array');
    const given = list.map((s, i) => expectDataMatrix(s, `data[${i}]`, { nonNegative: false, finite: false }));
    cols = given[0]!.cols;
    strataRows = [];
    let rows = 0;
    given.forEach((s, i) => {
      if (s.cols !== cols) throw new RangeError(`Expected data[${i}] to have ${cols} columns (as data[0]) but received ${s.cols}`);
      strataRows!.push(rows);
      rows += s.rows;
    });
    const masks = fit.mask;
    if (masks !== undefined && (!Array.isArray(masks) || masks.length !== given.length)) {
      throw new RangeError(`Expected an array of ${given.length} masks (one per stratum; null for none) for options.fitOptions.mask but received ${describeValue(masks)}`);
    }
    if (given.some((s) => 'indptr' in s)) {
      const names = given.map((_, i) => `options.fitOptions.mask[${i}]`);
      const { space, data: strata } = sparseSpace(given, (masks as unknown[] | undefined) ?? [], names, nan);
      return { method, data: strata, cols, space, sparse: true, maxRank: Math.min(rows, cols), strataRows };
    }
    const strata = given as Matrix[];
    checkMemory(float64Bytes(rows, cols), `the stacked strata (${rows}×${cols})`);
    values = new Float64Array(rows * cols);
    strata.forEach((s, i) => values.set(s.data, strataRows![i]! * cols));
    data = strata;
    maxRank = Math.min(rows, cols);
    missing = new Uint8Array(values.length);
    if (Array.isArray(masks)) {
      masks.forEach((m, i) => maskFlags(m, strata[i]!.data.length, cols, `options.fitOptions.mask[${i}]`, missing, strataRows![i]! * cols));
    }
  } else {
    const T = expectTensor(dataArg, 'data', 2);
    data = T;
    values = T.data;
    cols = 0;
    maxRank = Infinity;
    missing = new Uint8Array(values.length);
    maskFlags(fit.mask, values.length, 1, 'options.fitOptions.mask', missing);
  }
  const observed = observedEntries(values, missing, nan, true);
  return { method, data, cols, space: denseSpace(values, missing, observed), sparse: false, maxRank, strataRows };
}

// ---- folds ----------------------------------------------------------------------------------------

/** The project-independent 32-bit generator of the masks (mulberry32), seeded by any safe integer. */
function generator(seed: number): () => number {
  let a = (seed % 2 ** 32 ^ Math.imul(Math.floor(seed / 2 ** 32), 0x9e3779b9) ^ 0x5bd1e995) >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}

/**
 * The test sets of one seed: a partial Fisher–Yates shuffle of the observed entries, cut into `folds`
 * disjoint runs of `heldOut` entries each (sorted, so a fold's entries are read in memory order).
 */
function testSets(space: EntrySpace, seed: number, folds: number, heldOut: number): Float64Array[] {
  const random = generator(seed);
  const n = space.count, total = folds * heldOut;
  let pool: Float64Array;
  if (typeof space.observed !== 'function') {
    pool = Float64Array.from(space.observed);
    for (let k = 0; k < total; k++) {
      const j = k + Math.floor(random() * (n - k));
      const t = pool[k]!;
      pool[k] = pool[j]!;
      pool[j] = t;
    }
  } else {
    // The same shuffle of the same pool (so the same test sets as the dense data's), with the pool
    // implicit: position p holds observed(p) until a swap displaces it, and only displaced positions
    // are kept (position k is never read again once drawn).
    const at = space.observed;
    const displaced = new Map<number, number>();
    pool = new Float64Array(total);
    for (let k = 0; k < total; k++) {
      const j = k + Math.floor(random() * (n - k));
      const atJ = displaced.get(j) ?? j, atK = displaced.get(k) ?? k;
      pool[k] = at(atJ);
      displaced.set(j, atK);
      displaced.delete(k);
    }
  }
  return Array.from({ length: folds }, (_, f) => pool.slice(f * heldOut, (f + 1) * heldOut).sort());
}

/** The test sets every candidate is scored on: per seed, `folds` disjoint sets of `heldOut` entries. */
export interface Folds {
  space: EntrySpace;
  seeds: number[];
  folds: number;
  heldOut: number;
  /** sets[s][f]: the flat indices of test set f of seed s, increasing. */
  sets: Float64Array[][];
}

/** Checks holdout and folds against the observed entries and draws the test sets (see testSets). */
export function drawFolds(
  space: EntrySpace,
  o: { folds: number; holdout: number; seeds: number | number[] },
  fits: (seeds: number) => number,
  context: string,
): Folds {
  const count = space.count;
  const heldOut = Math.round(o.holdout * count);
  if (heldOut < 1) {
    throw new RangeError(`Expected options.holdout of ${context} to hold out at least one entry but received ${o.holdout} of ${count} observed entries (round(holdout · observed) = 0)`);
  }
  if (o.folds * heldOut > count) {
    throw new RangeError(`Expected options.folds · ${heldOut} held-out entries ≤ the ${count} observed entries for options.folds of ${context} but received ${o.folds} folds (the test sets are disjoint)`);
  }
  const seeds = typeof o.seeds === 'number' ? Array.from({ length: o.seeds }, (_, s) => s) : o.seeds;
  // The shuffled copy of the observed indices (one seed at a time; of CSR data, the drawn entries and
  // a map of the displaced ones), every test set (kept for all candidates), and a mask per fit in flight.
  const shuffle = typeof space.observed === 'function' ? 8 * o.folds * heldOut + 64 * Math.min(o.folds * heldOut, count) : 8 * count;
  checkMemory(
    shuffle + 8 * seeds.length * o.folds * heldOut + Math.min(getConcurrency(), fits(seeds.length)) * space.maskBytes(heldOut),
    `the test sets of ${seeds.length} seed(s) × ${o.folds} folds × ${heldOut} entries and the fits' masks`,
  );
  const sets = seeds.map((s) => testSets(space, s, o.folds, heldOut));
  return { space, seeds, folds: o.folds, heldOut, sets };
}

/** One fit: candidate `index` of the grid, on test set `slot` (seed-major) of seed `seed`. */
export interface Task {
  index: number;
  seed: number;
  slot: number;
  test: Float64Array;
}

export function tasksOf(f: Folds, candidates: number): Task[] {
  const tasks: Task[] = [];
  for (let index = 0; index < candidates; index++) {
    f.seeds.forEach((seed, s) => f.sets[s]!.forEach((test, k) => tasks.push({ index, seed, slot: s * f.folds + k, test })));
  }
  return tasks;
}

/** The fit's mask over dense data: the user's missing entries and the test set, as flags. */
export function maskWithTest(f: Folds, test: Float64Array): Uint8Array {
  const mask = (f.space.missing as Uint8Array).slice();
  for (let q = 0; q < test.length; q++) mask[test[q]!] = 1;
  return mask;
}

/** The fit's missing entries over data with CSR in it: the user's and the test set's, merged (sorted flat indices). */
function missingWithTest(f: Folds, test: Float64Array): Float64Array {
  const user = f.space.missing as Float64Array;
  const out = new Float64Array(user.length + test.length);
  for (let a = 0, b = 0, k = 0; k < out.length; k++) out[k] = b >= test.length || (a < user.length && user[a]! < test[b]!) ? user[a++]! : test[b++]!;
  return out;
}

/** RMSE of `model` (its values at the test entries, in order) against the data there. */
export function testRmse(f: Folds, test: Float64Array, model: ArrayLike<number>): number {
  let sum = 0;
  for (let q = 0; q < test.length; q++) {
    const d = model[q]! - f.space.value(test[q]!);
    sum += d * d;
  }
  return Math.sqrt(sum / test.length);
}

/** Test and training errors of one fit. */
export interface Scored {
  test: number;
  train: number;
}

/** Per candidate, the errors of every (seed, fold) in seed-major order. */
export interface GridErrors {
  test: Float64Array[];
  train: Float64Array[];
}

function emptyErrors(f: Folds, candidates: number): GridErrors {
  const n = f.seeds.length * f.folds;
  return { test: Array.from({ length: candidates }, () => new Float64Array(n)), train: Array.from({ length: candidates }, () => new Float64Array(n)) };
}

/** Runs every task on the calling thread, one after the other. */
export function runGridSync(f: Folds, tasks: Task[], candidates: number, fit: (task: Task) => Scored): GridErrors {
  const out = emptyErrors(f, candidates);
  for (const task of tasks) {
    const s = fit(task);
    out.test[task.index]![task.slot] = s.test;
    out.train[task.index]![task.slot] = s.train;
  }
  return out;
}

/**
 * Runs every task through `fit` (an async method call), at most getConcurrency() at once (the
 * runtime's limit, which also decides their BLAS threads; each fit in flight holds a mask). The first
 * failure, the caller's abort or a throwing onProgress stops every fit and rejects with its reason.
 */
export function runGridAsync(
  f: Folds,
  tasks: Task[],
  candidates: number,
  fit: (task: Task, signal: AbortSignal) => Promise<Scored>,
  signal: AbortSignal | undefined,
  onProgress: ((p: CrossValidationProgress) => void) | undefined,
): Promise<GridErrors> {
  if (signal?.aborted) return Promise.reject(new AbortError());
  const out = emptyErrors(f, candidates);
  const total = tasks.length;
  const stop = new AbortController();
  return new Promise<GridErrors>((resolve, reject) => {
    let next = 0, done = 0, failed = false;
    const fail = (reason: unknown): void => {
      if (failed) return;
      failed = true;
      signal?.removeEventListener('abort', onAbort);
      stop.abort();
      reject(reason);
    };
    const onAbort = (): void => fail(new AbortError());
    signal?.addEventListener('abort', onAbort, { once: true });
    const launch = (): void => {
      if (failed || next >= total) return;
      const task = tasks[next++]!;
      fit(task, stop.signal).then(
        (s) => {
          if (failed) return;
          out.test[task.index]![task.slot] = s.test;
          out.train[task.index]![task.slot] = s.train;
          done++;
          try {
            onProgress?.({ done, total });
          } catch (err) {
            fail(err);
            return;
          }
          if (done === total) {
            signal?.removeEventListener('abort', onAbort);
            resolve(out);
          } else launch();
        },
        (err: unknown) => fail(err),
      );
    };
    for (let k = 0; k < Math.min(getConcurrency(), total); k++) launch();
  });
}

/** Mean and sample standard deviation (0 for one value). */
export function meanSd(x: Float64Array): { mean: number; sd: number } {
  const mean = x.reduce((a, b) => a + b, 0) / x.length;
  const sd = x.length > 1 ? Math.sqrt(x.reduce((a, e) => a + (e - mean) ** 2, 0) / (x.length - 1)) : 0;
  return { mean, sd };
}

/**
 * The index the rule chooses among curve points listed simplest first, and the index of the smallest
 * mean. 'oneStandardError': the first point whose mean is within one standard error (sd/√fits) of the
 * smallest mean (Breiman et al. 1984).
 */
export function chooseByRule(curve: { mean: number; sd: number; errors: Float64Array }[], rule: RankRule): { chosen: number; best: number } {
  let best = 0;
  curve.forEach((c, i) => c.mean < curve[best]!.mean && (best = i));
  if (rule === 'min') return { chosen: best, best };
  const b = curve[best]!;
  const bound = b.mean + b.sd / Math.sqrt(b.errors.length);
  return { chosen: curve.findIndex((c) => c.mean <= bound), best };
}

interface Plan {
  problem: Problem;
  o: Parsed;
  folds: Folds;
  tasks: Task[];
}

function plan(dataArg: unknown, methodArg: unknown, options: unknown, context: string, async: boolean): Plan {
  const method = expectOneOf(methodArg, 'method', crossValidationMethods);
  // Progress comes once per finished fit, so there is no progressIntervalMs to take.
  const asyncSpecs = { signal: asyncOptionSpecs.signal, onProgress: { ...asyncOptionSpecs.onProgress, description: 'called with {done, total} fits after each fit' } };
  const specs = { ...cvOptionSpecs, fitOptions: { ...fitOptionsSpec(method), default: {} }, ...(async ? asyncSpecs : {}) };
  if (!isObjectArgument(options)) throw new TypeError(`Expected an options object {ranks, …} for options of ${context} but received ${describeValue(options)}`);
  const o = parseOptions<Parsed>(specs, options, context);
  if (o.ranks === undefined) throw new TypeError(`Expected an array of ranks for options.ranks of ${context} but received undefined`);
  const problem = readProblem(method, dataArg, o.fitOptions);
  const tooLarge = o.ranks.find((r) => r > problem.maxRank);
  if (tooLarge !== undefined) {
    throw new RangeError(`Expected ranks in [1, ${problem.maxRank}] (the smaller side of the data) for options.ranks of ${context} but received ${tooLarge}`);
  }
  const folds = drawFolds(problem.space, o, (seeds) => o.ranks.length * seeds * o.folds, context);
  return { problem, o, folds, tasks: tasksOf(folds, o.ranks.length) };
}

// ---- one fit -----------------------------------------------------------------------------------

/** The fit's options: the user's, with the test set added to the mask and the repetition's seed. */
function fitArguments(p: Plan, task: Task): { data: Problem['data']; rank: number; options: Record<string, unknown> } {
  const { problem } = p;
  const options: Record<string, unknown> = { ...p.o.fitOptions, seed: task.seed };
  if (problem.sparse) {
    // The NaN entries are in the list (and their stored values 0 in the fit's data).
    options.missing = 'observed';
    const list = missingWithTest(p.folds, task.test);
    const m = problem.cols;
    const blocks = Array.isArray(problem.data) ? problem.data : [problem.data as CsrMatrix];
    const offsets = problem.strataRows ?? [0];
    let q = 0;
    const masks = blocks.map((b, s) => {
      const start = offsets[s]! * m, end = start + b.rows * m;
      const from = q;
      while (q < list.length && list[q]! < end) q++;
      const part = list.subarray(from, q);
      if (!('indptr' in b)) {
        const flags = new Uint8Array(b.rows * m);
        for (const e of part) flags[e - start] = 1;
        return flags;
      }
      return { rows: Int32Array.from(part, (e) => Math.floor((e - start) / m)), cols: Int32Array.from(part, (e) => (e - start) % m) };
    });
    options.mask = problem.method === 'stratifiedNmf' ? masks : masks[0];
    return { data: problem.data, rank: p.o.ranks[task.index]!, options };
  }
  const mask = maskWithTest(p.folds, task.test);
  if (problem.method === 'stratifiedNmf') {
    const strata = problem.data as Matrix[];
    options.mask = strata.map((s, i) => mask.subarray(problem.strataRows![i]! * problem.cols, problem.strataRows![i]! * problem.cols + s.data.length));
  } else {
    options.mask = mask;
  }
  return { data: problem.data, rank: p.o.ranks[task.index]!, options };
}

type FitResult = { loss: number } & ({ W: Matrix; H: Matrix } | { V: Matrix; W: Matrix[]; H: Matrix } | { factors: Matrix[] });

/** RMSE at the test entries and at the training entries of one fit. */
function score(p: Plan, task: Task, result: FitResult): Scored {
  const { problem } = p;
  const test = task.test;
  let model: Float64Array;
  if ('factors' in result) {
    const full = cpReconstruct(result.factors).data;
    model = Float64Array.from(test, (k) => full[k]!);
  } else {
    const m = problem.cols;
    const rows = Int32Array.from(test, (k) => Math.floor(k / m));
    const cols = Int32Array.from(test, (k) => k % m);
    model = reconstruct(result, { entries: { rows, cols } });
  }
  // The fit's loss is √Σ(a − m)² over the entries it saw (every weight is 1 or 0).
  const trained = problem.space.count - test.length;
  return { test: testRmse(p.folds, test, model), train: result.loss / Math.sqrt(trained) };
}

function fitSync(p: Plan, task: Task): Scored {
  const { data, rank, options } = fitArguments(p, task);
  const method = p.problem.method;
  const result = method === 'nmf' ? nmfSync(data as Matrix, rank, options) : method === 'stratifiedNmf' ? stratifiedNmfSync(data as Matrix[], rank, options) : ntfSync(data as Tensor, rank, options);
  return score(p, task, result);
}

async function fitAsync(p: Plan, task: Task, signal: AbortSignal): Promise<Scored> {
  const { data, rank, options } = fitArguments(p, task);
  const o = { ...options, signal };
  const method = p.problem.method;
  const result = await (method === 'nmf' ? nmf(data as Matrix, rank, o) : method === 'stratifiedNmf' ? stratifiedNmf(data as Matrix[], rank, o) : ntf(data as Tensor, rank, o));
  return score(p, task, result);
}

// ---- the curve and the calls ------------------------------------------------------------------------

function summarize(p: Plan, e: GridErrors): CrossValidateRankResult {
  const curve: RankError[] = p.o.ranks.map((rank, r) => ({
    rank,
    ...meanSd(e.test[r]!),
    errors: e.test[r]!,
    trainMean: meanSd(e.train[r]!).mean,
    trainErrors: e.train[r]!,
  }));
  // Ranks ascending: the simplest model first, as the one-standard-error rule needs.
  const { chosen, best } = chooseByRule(curve, p.o.rule);
  const { ranks, holdout, rule } = p.o;
  const { folds, seeds, heldOut, space } = p.folds;
  return {
    method: p.problem.method,
    curve,
    chosenRank: curve[chosen]!.rank,
    bestRank: curve[best]!.rank,
    rule,
    settings: { ranks, folds, holdout, seeds, observed: space.count, heldOut },
  };
}

/**
 * Cross-validates the rank of nmf, stratifiedNmf or ntf on the calling thread (small problems); see
 * crossValidateRank.
 */
export function crossValidateRankSync(data: Matrix | CsrMatrix | (Matrix | CsrMatrix)[] | Tensor, method: CrossValidationMethod, options: CrossValidateRankOptions): CrossValidateRankResult {
  const p = plan(data, method, options, 'crossValidateRankSync()', false);
  return summarize(p, runGridSync(p.folds, p.tasks, p.o.ranks.length, (task) => fitSync(p, task)));
}

/**
 * Cross-validates the rank of `method` ('nmf', 'stratifiedNmf' with data an array of strata, or
 * 'ntf' with data a Tensor): every (rank, seed, fold) is one fit of the method's async call, at most
 * getConcurrency() of them at once (the runtime's limit, which also decides their BLAS threads).
 * Rejects with AbortError once `signal` aborts; onProgress gets {done, total} fits after each fit.
 * Every argument is checked, and every test set drawn, before the first fit starts.
 */
export function crossValidateRank(
  data: Matrix | CsrMatrix | (Matrix | CsrMatrix)[] | Tensor,
  method: CrossValidationMethod,
  options: CrossValidateRankOptions & Pick<AsyncOptions<CrossValidationProgress>, 'signal' | 'onProgress'>,
): Promise<CrossValidateRankResult> {
  let p: Plan;
  try {
    p = plan(data, method, options, 'crossValidateRank()', true);
  } catch (err) {
    return Promise.reject(err);
  }
  return runGridAsync(p.folds, p.tasks, p.o.ranks.length, (task, signal) => fitAsync(p, task, signal), p.o.signal, p.o.onProgress).then((e) => summarize(p, e));
}

// ---- NSA-Flow's w by cross-validation --------------------------------------------------------------

export interface CrossValidateWOptions {
  /** The values of w to compare: distinct numbers in [0, 1] (required). */
  ws: number[];
  folds?: number;
  holdout?: number;
  seeds?: number | number[];
  /** 'oneStandardError' (default): the largest w within one standard error of the best mean; 'min': the best mean. */
  rule?: RankRule;
  /** nsaFlowFit's options for every fit (mode, init, maxIterations, …, a mask or missing 'nan'); not w, seed or weights. */
  fitOptions?: Omit<NsaFlowFitOptions, 'w' | 'seed' | 'weights'>;
}

/** The held-out error at one w, over every (seed, fold) in seed-major order. */
export interface WError {
  w: number;
  mean: number;
  sd: number;
  /** RMSE of center + scores·Vᵀ at each test set's entries. */
  errors: Float64Array;
  trainMean: number;
  /** RMSE of each fit at the entries it saw. */
  trainErrors: Float64Array;
}

export interface CrossValidateWResult {
  /** One entry per w, in increasing w. */
  curve: WError[];
  chosenW: number;
  /** The w of the smallest mean test error. */
  bestW: number;
  rule: RankRule;
  settings: { k: number; ws: number[]; folds: number; holdout: number; seeds: number[]; observed: number; heldOut: number };
}

const fitWSpecs = { ...nsaFlowFitOptionSpecs, ...fidelityMissingOptionSpecs } as OptionSpecs;

const cvWOptionSpecs = {
  ws: {
    kind: 'custom',
    description: 'the values of w to compare: an array of distinct numbers in [0, 1]',
    check: (v: unknown, name: string) => {
      const list = readList(v, name, 'an array of numbers in [0, 1] (the values of w)', 1 << 16);
      if (list.length === 0) throw new RangeError(`Expected at least one w in ${name} but received an empty array`);
      const ws = list.map((w, k) => {
        const at = subName(name, `[${k}]`);
        if (typeof w !== 'number' || Number.isNaN(w)) throw new TypeError(`Expected a number in [0, 1] for ${at} but received ${describeValue(w)}`);
        if (!(w >= 0 && w <= 1)) throw new RangeError(`Expected a number in [0, 1] for ${at} but received ${describeValue(w)}`);
        return w;
      });
      const repeated = ws.find((w, k) => ws.indexOf(w) !== k);
      if (repeated !== undefined) throw new RangeError(`Expected distinct values in ${name} but received ${repeated} twice`);
      return ws.sort((a, b) => a - b);
    },
  },
  folds: cvOptionSpecs.folds,
  holdout: cvOptionSpecs.holdout,
  seeds: cvOptionSpecs.seeds,
  rule: cvOptionSpecs.rule,
  fitOptions: {
    kind: 'custom',
    default: {},
    description: "nsaFlowFit's options for every fit (mode, init, maxIterations, …; a mask or missing 'nan')",
    check: (v: unknown, name: string) => {
      if (isObjectArgument(v)) {
        const keys = ownKeys(v, name);
        if (keys.includes('w')) throw new RangeError(`Expected no w in ${name}: the fits take each value of options.ws`);
        if (keys.includes('seed')) throw new RangeError(`Expected no seed in ${name}: each fit takes its repetition's seed (give options.seeds)`);
        if (keys.includes('weights')) throw new RangeError(`Expected no weights in ${name}: cross-validation holds entries out by mask and scores them unweighted (give a mask)`);
      }
      const o = parseOptions<Record<string, unknown>>(fitWSpecs, v, name);
      if (o.mode === 'anchored') throw new RangeError(`Expected mode 'auto', 'data' or 'signed' for ${subName(name, '.mode')}: an anchored fit models the anchor, not the entries of X`);
      return o;
    },
  },
} as const satisfies OptionSpecs;

interface WPlan {
  X: Matrix;
  holdout: number;
  k: number;
  ws: number[];
  rule: RankRule;
  fitOptions: Record<string, unknown>;
  folds: Folds;
  tasks: Task[];
  signal?: AbortSignal;
  onProgress?: (p: CrossValidationProgress) => void;
}

function planW(XArg: unknown, kArg: unknown, options: unknown, context: string, async: boolean): WPlan {
  const asyncSpecs = { signal: asyncOptionSpecs.signal, onProgress: { ...asyncOptionSpecs.onProgress, description: 'called with {done, total} fits after each fit' } };
  const specs = { ...cvWOptionSpecs, ...(async ? asyncSpecs : {}) };
  if (!isObjectArgument(options)) throw new TypeError(`Expected an options object {ws, …} for options of ${context} but received ${describeValue(options)}`);
  const o = parseOptions<{ ws?: number[]; folds: number; holdout: number; seeds: number | number[]; rule: RankRule; fitOptions: Record<string, unknown>; signal?: AbortSignal; onProgress?: (p: CrossValidationProgress) => void }>(specs, options, context);
  if (o.ws === undefined) throw new TypeError(`Expected an array of values of w for options.ws of ${context} but received undefined`);
  const X = expectMatrix(XArg, 'X', { finite: false });
  const k = expectShapeInteger(kArg, 'k');
  if (k > X.cols) throw new RangeError(`Expected k in [1, ${X.cols}] (the columns of X) for k but received ${k}`);
  const missing = new Uint8Array(X.data.length);
  maskFlags(o.fitOptions.mask, X.data.length, X.cols, 'options.fitOptions.mask', missing);
  const observed = observedEntries(X.data, missing, o.fitOptions.missing === 'nan', false);
  const ws = o.ws;
  const folds = drawFolds(denseSpace(X.data, missing, observed), o, (seeds) => ws.length * seeds * o.folds, context);
  return { X, holdout: o.holdout, k, ws, rule: o.rule, fitOptions: o.fitOptions, folds, tasks: tasksOf(folds, ws.length), signal: o.signal, onProgress: o.onProgress };
}

function fitWOptions(p: WPlan, task: Task): Record<string, unknown> {
  return { ...p.fitOptions, w: p.ws[task.index]!, seed: task.seed, mask: maskWithTest(p.folds, task.test) };
}

/** center + scores·Vᵀ (the fit's value at an entry) at the test entries, and its RMSE at the training ones. */
function scoreW(p: WPlan, task: Task, r: NsaFlowFitResult): Scored {
  const { X, k } = p;
  const m = X.cols;
  const modelAt = (e: number): number => {
    const i = Math.floor(e / m), j = e % m;
    let x = r.center ? r.center[j]! : 0;
    for (let c = 0; c < k; c++) x += r.scores.data[i * k + c]! * r.V.data[j * k + c]!;
    return x;
  };
  const test = task.test;
  const testError = testRmse(p.folds, test, Float64Array.from(test, modelAt));
  // The training entries: the observed ones not in the (sorted) test set.
  let sum = 0, count = 0, q = 0;
  for (const e of p.folds.space.observed as Int32Array | Float64Array) {
    while (q < test.length && test[q]! < e) q++;
    if (q < test.length && test[q] === e) continue;
    const d = modelAt(e) - X.data[e]!;
    sum += d * d;
    count++;
  }
  return { test: testError, train: Math.sqrt(sum / count) };
}

function summarizeW(p: WPlan, e: GridErrors): CrossValidateWResult {
  const curve: WError[] = p.ws.map((w, i) => ({ w, ...meanSd(e.test[i]!), errors: e.test[i]!, trainMean: meanSd(e.train[i]!).mean, trainErrors: e.train[i]! }));
  // The simplest model first: the largest w (the most orthogonal, sparsest loadings), as for a lasso's
  // largest penalty within one standard error.
  const { chosen, best } = chooseByRule([...curve].reverse(), p.rule);
  const { folds, seeds, heldOut, space } = p.folds;
  return {
    curve,
    chosenW: curve[curve.length - 1 - chosen]!.w,
    bestW: curve[curve.length - 1 - best]!.w,
    rule: p.rule,
    settings: { k: p.k, ws: p.ws, folds, holdout: p.holdout, seeds, observed: space.count, heldOut },
  };
}

/** Cross-validates NSA-Flow's w on the calling thread (small problems); see crossValidateW. */
export function crossValidateWSync(X: Matrix, k: number, options: CrossValidateWOptions): CrossValidateWResult {
  const p = planW(X, k, options, 'crossValidateWSync()', false);
  return summarizeW(p, runGridSync(p.folds, p.tasks, p.ws.length, (task) => scoreW(p, task, nsaFlowFitSync(p.X, p.k, fitWOptions(p, task)))));
}

/**
 * Chooses nsaFlowFit's orthogonality weight w by held-out error, on the test sets of
 * crossValidateRank: every (w, seed, fold) is one nsaFlowFit of k components that never sees its
 * test set, scored by the RMSE of center + scores·Vᵀ there. At most getConcurrency() fits at once;
 * AbortError once `signal` aborts; onProgress gets {done, total} fits.
 */
export function crossValidateW(X: Matrix, k: number, options: CrossValidateWOptions & Pick<AsyncOptions<CrossValidationProgress>, 'signal' | 'onProgress'>): Promise<CrossValidateWResult> {
  let p: WPlan;
  try {
    p = planW(X, k, options, 'crossValidateW()', true);
  } catch (err) {
    return Promise.reject(err);
  }
  return runGridAsync(p.folds, p.tasks, p.ws.length, async (task, signal) => scoreW(p, task, await nsaFlowFit(p.X, p.k, { ...fitWOptions(p, task), signal })), p.signal, p.onProgress).then((e) =>
    summarizeW(p, e),
  );
}
