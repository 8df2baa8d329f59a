/**
 * The model's values of a factorization result, at every entry — missing ones included, which is
 * what imputation reads (docs/missing-values.md): nmf's WH, or stratifiedNmf's 1v(s)ᵀ + W(s)H per
 * stratum, ntf's CP tensor, stratifiedNtf's B(s) per stratum, or only at listed entries (an index list)
 * of a matrix model, which never forms the whole model.
 */
import type { Matrix } from '../matrix.js';
import { checkMemory, float64Bytes } from '../memory.js';
import type { Tensor } from '../tensor.js';
import { cpReconstruct } from '../tensor-ops.js';
import { describeValue, expectAllocatable, expectInteger, isObjectArgument, parseOptions, readFields, readList, type OptionSpecs } from '../validate.js';

const reconstructOptionSpecs = {
  entries: {
    kind: 'custom',
    description: 'an index list {rows, cols} of the entries to evaluate',
    check: (v: unknown, name: string) => {
      if (!isObjectArgument(v)) throw new TypeError(`Expected an index list {rows, cols} for ${name} but received ${describeValue(v)}`);
      return readFields(v, ['rows', 'cols'] as const, name);
    },
  },
} as const satisfies OptionSpecs;

/** The factors reconstruct reads: an nmf result {W, H}, a stratifiedNmf result {V, W[], H}, an ntf result {factors} or a stratifiedNtf result {v, w, h}. */
export type FactorizationResult = { W: Matrix; H: Matrix } | { V: Matrix; W: Matrix[]; H: Matrix } | { factors: Matrix[] } | StratifiedNtfFactors;

/** A stratifiedNtf result's state: v[s][t] qₛ × dₜ, w[s] r × nₛ, h[t] r × dₜ (rank-major). */
type StratifiedNtfFactors = { v: Matrix[][]; w: Matrix[]; h: Matrix[] };

const transposed = (m: Matrix): Matrix => {
  const data = new Float64Array(m.data.length);
  for (let i = 0; i < m.rows; i++) for (let j = 0; j < m.cols; j++) data[j * m.rows + i] = m.data[i * m.cols + j]!;
  return { rows: m.cols, cols: m.rows, data };
};

/**
 * stratifiedNtf's model per stratum, B(s)[i, …] = Σₐ ⊗ₜ v(s)ₜ[a] + Σ_b w(s)[b, i] ⊗ₜ hₜ[b]: both terms
 * are CP tensors (the first one the same for every sample), evaluated by cpReconstruct.
 */
function stratifiedNtfModel(result: object): Tensor[] {
  const f = readFields(result, ['v', 'w', 'h'] as const, 'result');
  const w = readList(f.w, 'result.w', 'an array of w(s) matrices (r × nₛ)') as Matrix[];
  const h = readList(f.h, 'result.h', 'an array of h matrices (r × dₜ)') as Matrix[];
  const v = readList(f.v, 'result.v', 'an array (one per stratum) of arrays of v(s)ₜ matrices (qₛ × dₜ)');
  if (v.length !== w.length) throw new RangeError(`Expected result.v and result.w of the same length (one per stratum) but received ${v.length} and ${w.length}`);
  const topicsT = h.map(transposed);
  return w.map((ws, s) => {
    const own = cpReconstruct((readList(v[s], `result.v[${s}]`, 'an array of v(s)ₜ matrices') as Matrix[]).map(transposed));
    const topics = cpReconstruct([transposed(ws), ...topicsT]);
    const F = own.data.length;
    if (topics.data.length !== ws.cols * F) {
      throw new RangeError(`Expected result.v[${s}] and result.h of the same feature shape but received [${own.shape.join(', ')}] and [${topics.shape.slice(1).join(', ')}]`);
    }
    for (let i = 0; i < ws.cols; i++) for (let j = 0; j < F; j++) topics.data[i * F + j] += own.data[j]!;
    return topics;
  });
}

export interface ReconstructOptions {
  /**
   * Only these entries {rows, cols} (row and column indices; for stratifiedNmf the rows count through
   * the strata in order, as the stacked data): returns their model values, one per entry.
   */
  entries?: { rows: ArrayLike<number>; cols: ArrayLike<number> };
}

interface Factors {
  /** Row blocks: the W of each stratum (one block for nmf) and its shift v (undefined for nmf). */
  blocks: { W: Matrix; v?: Float64Array; first: number }[];
  H: Matrix;
  rows: number;
}

function factorsOf(result: unknown): Factors {
  const what = 'an nmf result {W, H} or a stratifiedNmf result {V, W, H}';
  if (!isObjectArgument(result)) throw new TypeError(`Expected ${what} for result but received ${describeValue(result)}`);
  const f = readFields(result, ['V', 'W', 'H'] as const, 'result');
  const H = f.H as Matrix;
  if (!isObjectArgument(H) || !(H.data instanceof Float64Array) || H.data.length !== H.rows * H.cols) {
    throw new TypeError(`Expected ${what} for result but received result.H = ${describeValue(f.H)}`);
  }
  const r = H.rows;
  // W has r columns, at least minCols (Stratified-NMF with per-stratum ranks: W(s) has rₛ ≤ r, the first rₛ topics).
  const isFactor = (W: unknown, minCols = r): W is Matrix => {
    if (!isObjectArgument(W) || !((W as Matrix).data instanceof Float64Array)) return false;
    const { rows, cols, data } = W as Matrix;
    return Number.isInteger(cols) && cols >= minCols && cols <= r && data.length === rows * cols;
  };
  if (f.V === undefined) {
    if (!isFactor(f.W)) throw new TypeError(`Expected ${what} for result but received result.W = ${describeValue(f.W)} (an n×${r} Matrix expected)`);
    return { blocks: [{ W: f.W, first: 0 }], H, rows: f.W.rows };
  }
  const V = f.V as Matrix;
  const Ws = readList(f.W, 'result.W', 'an array of W(s) matrices');
  if (!isObjectArgument(V) || !(V.data instanceof Float64Array) || V.cols !== H.cols || V.rows !== Ws.length || V.data.length !== V.rows * V.cols) {
    throw new TypeError(`Expected ${what} for result but received result.V = ${describeValue(f.V)} (an S×${H.cols} Matrix, S = W.length)`);
  }
  const blocks: Factors['blocks'] = [];
  let rows = 0;
  Ws.forEach((W, s) => {
    if (!isFactor(W, 0)) throw new TypeError(`Expected an nₛ×rₛ Matrix (rₛ ≤ ${r}) for result.W[${s}] but received ${describeValue(W)}`);
    blocks.push({ W, v: V.data.subarray(s * V.cols, (s + 1) * V.cols), first: rows });
    rows += W.rows;
  });
  return { blocks, H, rows };
}

/** The model value of row i (within its block) and column j: W's rₛ columns weigh H's first rₛ rows. */
function modelAt(b: Factors['blocks'][number], H: Matrix, i: number, j: number): number {
  const r = b.W.cols, m = H.cols;
  let x = b.v ? b.v[j]! : 0;
  for (let c = 0; c < r; c++) x += b.W.data[i * r + c]! * H.data[c * m + j]!;
  return x;
}

/**
 * The model's values: for an nmf result the n×m Matrix WH; for a stratifiedNmf result one Matrix
 * 1v(s)ᵀ + W(s)H per stratum; with `entries`, a Float64Array of the model at those entries.
 */
export function reconstruct(result: { V: Matrix; W: Matrix[]; H: Matrix }): Matrix[];
export function reconstruct(result: { W: Matrix; H: Matrix }): Matrix;
export function reconstruct(result: { factors: Matrix[] }): Tensor;
export function reconstruct(result: StratifiedNtfFactors): Tensor[];
export function reconstruct(result: FactorizationResult, options: ReconstructOptions & { entries: NonNullable<ReconstructOptions['entries']> }): Float64Array;
export function reconstruct(result: FactorizationResult, options?: ReconstructOptions): Matrix | Matrix[] | Tensor | Tensor[] | Float64Array;
export function reconstruct(result: FactorizationResult, options?: ReconstructOptions | null): Matrix | Matrix[] | Tensor | Tensor[] | Float64Array {
  if (isObjectArgument(result) && 'factors' in result) {
    // An ntf result: the CP tensor Σ_a ⊗ₘ Fₘ[:, a] (no entries option: index lists are for matrices).
    parseOptions<{ entries?: unknown }>({}, options, 'reconstruct() of an ntf result');
    return cpReconstruct(readFields(result, ['factors'] as const, 'result').factors as Matrix[]);
  }
  if (isObjectArgument(result) && 'h' in result && !('H' in result)) {
    // A stratifiedNtf result: one tensor B(s) of shape (nₛ, d₁, …, d_K) per stratum.
    parseOptions<{ entries?: unknown }>({}, options, 'reconstruct() of a stratifiedNtf result');
    return stratifiedNtfModel(result);
  }
  const F = factorsOf(result);
  const { entries } = parseOptions<{ entries?: unknown }>(reconstructOptionSpecs, options, 'reconstruct()');
  const m = F.H.cols;
  if (entries !== undefined) {
    const e = entries as { rows: unknown; cols: unknown };
    const rows = readList(e.rows, 'options.entries.rows', 'an array of row indices');
    const cols = readList(e.cols, 'options.entries.cols', 'an array of column indices');
    if (rows.length !== cols.length) throw new RangeError(`Expected options.entries.rows and .cols of the same length but received ${rows.length} and ${cols.length}`);
    const out = new Float64Array(rows.length);
    for (let k = 0; k < rows.length; k++) {
      const i = expectInteger(rows[k], `options.entries.rows[${k}]`, 0, F.rows - 1, `a row index in [0, ${F.rows})`);
      const j = expectInteger(cols[k], `options.entries.cols[${k}]`, 0, m - 1, `a column index in [0, ${m})`);
      let s = F.blocks.length - 1;
      while (F.blocks[s]!.first > i) s--;
      out[k] = modelAt(F.blocks[s]!, F.H, i - F.blocks[s]!.first, j);
    }
    return out;
  }
  expectAllocatable(F.rows * m, `the model of ${F.rows}×${m} entries`);
  checkMemory(float64Bytes(F.rows, m), `the model of ${F.rows}×${m} entries`);
  const full = F.blocks.map((b) => {
    const n = b.W.rows, r = b.W.cols;
    const data = new Float64Array(n * m);
    for (let i = 0; i < n; i++) {
      const row = data.subarray(i * m, (i + 1) * m);
      if (b.v) row.set(b.v);
      for (let c = 0; c < r; c++) {
        const w = b.W.data[i * r + c]!;
        if (w === 0) continue;
        const h = F.H.data.subarray(c * m, (c + 1) * m);
        for (let j = 0; j < m; j++) row[j] = row[j]! + w * h[j]!;
      }
    }
    return { rows: n, cols: m, data };
  });
  return 'V' in result && result.V !== undefined ? full : full[0]!;
}
