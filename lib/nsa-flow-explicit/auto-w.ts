/**
 * Choosing w from a path (the paper leaves it open: "calibrate by cross-validation").
 *
 * 'auto' (the default criterion) first asks whether the path is **separating supports**, and takes the
 * knee of the trade-off curve when it is not. Both questions are put in the two coordinates every
 * weighting shares and that carry no unit of the energy: the relative fidelity error f = ‖Y − X0‖/‖X0‖
 * (a fraction of the target's norm) and the sparsity s (the fraction of exact zeros).
 *
 * Separation: along a path, raising w zeroes entries (s rises) and moves Y away from X0 (f rises). The
 * exchange rate ρ = Δs/Δf says what the zeroed entries were. When the target is disjoint supports
 * blurred by noise, the entries the flow zeroes are the small overlapping noise: each unit of relative
 * error buys several units of sparsity (measured ρ̄ = 2.1–11 on the synthetic targets of the tests).
 * When the flow must zero or shrink signal to orthogonalize (PCA loadings of real data), the zeros cost
 * more than they bring (measured ρ̄ = 0.32–0.55 on leukemia and tissue, k = 2–5). Par, ρ = 1 (a
 * fraction of zeros for the same fraction of the target's norm), sits between the two with a factor of
 * about 2 to spare on each side. When the path's mean rate ρ̄ = (s_last − s_first)/(f_last − f_first) is
 * at least par, 'auto' takes the largest w whose segment still trades at par or better: up to there,
 * more orthogonality removes noise, not signal. (An earlier rule waited for f to stop rising; under the
 * 'energy' weighting f keeps rising linearly with w even while the supports separate, so it never fired.)
 * Without non-negativity the flow makes no exact zeros (ρ̄ = 0): 'auto' is then the knee.
 *
 * 'knee' (also 'auto' below par): both trade-off coordinates rescaled to [0, 1] over the path, so the
 * defect's and the energy's units drop out — gained = (d_max − d)/(d_max − d_min),
 * lost = (f − f_min)/(f_max − f_min) — and the knee is the w with the largest gained − lost: the point of
 * the trade-off curve farthest above the chord from the first to the last point, i.e. where further
 * orthogonality starts to cost more fidelity than it brings. Ties go to the smaller w.
 *
 * A user score (e.g. reconstruction error or accuracy on held-out data, computed from point.Y) picks
 * the w with the highest score instead: that is the cross-validated choice.
 *
 * On a path (path.ts), a point whose solve did not move (no accepted step: it returned its start) is
 * no solution of its own w — with warm starts it is the previous w's solution. Such points are
 * excluded before any criterion runs, and the selection lists them with the reason (`excluded`, `reason`).
 */
import { describeValue, isObjectArgument, readFields, readList } from '../validate.js';

export interface TradeOffPoint {
  w: number;
  /** ‖Y − X0‖ / ‖X0‖ */
  relativeFidelity: number;
  defect: number;
  /** Fraction of exact zeros in Y (read by 'auto' only). */
  sparsity?: number;
}

type TradeOffKey = 'w' | 'relativeFidelity' | 'defect' | 'sparsity';

/** A grid point that could not be chosen, and why. */
export interface ExcludedPoint {
  index: number;
  w: number;
  why: string;
}

export interface WSelection {
  /** 'separation' and 'knee' come from w: 'auto' (separation when the path zeroes entries at par or better). */
  criterion: 'separation' | 'knee' | 'score';
  /** The grid that was solved. */
  ws: number[];
  index: number;
  w: number;
  /**
   * Per grid point: for 'separation', the exchange rate Δsparsity/Δf of the segment ending there (0 at
   * the first eligible point); gained − lost for 'knee'; the user's score for 'score'. NaN for excluded
   * points.
   */
  scores: number[];
  /** Why this w, in words (the criterion, the numbers it compared, the excluded points). */
  reason: string;
  /** Points that were not eligible (on a path: solves that did not move). */
  excluded: ExcludedPoint[];
}

/** Three significant digits; exponent form below 1e-3 so that small defects stay readable. */
const fmt = (v: number): string => {
  if (!Number.isFinite(v)) return String(v);
  if (v !== 0 && Math.abs(v) < 1e-3) return v.toExponential(2);
  return Number(v.toPrecision(3)).toString();
};

/**
 * Validates a path's trade-off points: a non-empty array of objects with finite numbers w,
 * relativeFidelity and defect (and the other `keys`), w strictly increasing. Returns snapshots (each
 * field read once).
 */
export function expectTradeOffPoints(v: unknown, name = 'points', keys: readonly TradeOffKey[] = ['w', 'relativeFidelity', 'defect']): TradeOffPoint[] {
  const what = `a non-empty array of points {${keys.join(', ')}}`;
  if (!Array.isArray(v)) throw new TypeError(`Expected ${what} for ${name} but received ${describeValue(v)}`);
  const list = readList(v, name, what, 1 << 20);
  if (list.length === 0) throw new RangeError(`Expected ${what} for ${name} but received an empty array`);
  let previous = -Infinity;
  return list.map((p, i) => {
    if (!isObjectArgument(p)) throw new TypeError(`Expected a point {${keys.join(', ')}} for ${name}[${i}] but received ${describeValue(p)}`);
    const f = readFields(p, keys, `${name}[${i}]`);
    for (const key of keys) {
      const x = f[key];
      if (typeof x !== 'number') throw new TypeError(`Expected a finite number for ${name}[${i}].${key} but received ${describeValue(x)}`);
      if (!Number.isFinite(x)) throw new RangeError(`Expected a finite number for ${name}[${i}].${key} but received ${describeValue(x)}`);
    }
    if (!((f.w as number) > previous)) {
      throw new RangeError(`Expected strictly increasing w along ${name} but received ${f.w as number} at [${i}] after ${previous}`);
    }
    previous = f.w as number;
    return { w: f.w, relativeFidelity: f.relativeFidelity ?? 0, defect: f.defect ?? 0, sparsity: f.sparsity ?? 0 } as TradeOffPoint;
  });
}

/** The knee of the fidelity–orthogonality curve (see the module comment); returns per-point scores too. */
export function kneeScores(pointsArg: readonly TradeOffPoint[]): number[] {
  const points = expectTradeOffPoints(pointsArg);
  const f = points.map((p) => p.relativeFidelity);
  const d = points.map((p) => p.defect);
  const fMin = Math.min(...f);
  const fMax = Math.max(...f);
  const dMin = Math.min(...d);
  const dMax = Math.max(...d);
  return points.map((_, i) => {
    const gained = dMax > dMin ? (dMax - d[i]!) / (dMax - dMin) : 0;
    const lost = fMax > fMin ? (f[i]! - fMin) / (fMax - fMin) : 0;
    return gained - lost;
  });
}

/** Index of the highest score (first one on ties); NaN scores never win. */
export function argMax(scores: readonly number[]): number {
  let best = 0;
  for (let i = 1; i < scores.length; i++) if (scores[i]! > scores[best]! || Number.isNaN(scores[best]!)) best = i;
  return best;
}

export function selectByKnee(pointsArg: readonly TradeOffPoint[]): WSelection {
  const points = expectTradeOffPoints(pointsArg);
  const scores = kneeScores(points);
  const index = argMax(scores);
  const w = points[index]!.w;
  const reason = `knee of the fidelity–orthogonality trade-off: w = ${w} has the largest normalized orthogonality gained − fidelity lost (${fmt(scores[index]!)})`;
  return { criterion: 'knee', ws: points.map((p) => p.w), index, w, scores, reason, excluded: [] };
}

/**
 * Par of the separation test: a path separates supports when it zeroes at least this fraction of the
 * entries per unit of relative fidelity error (see the module comment for the measured rates).
 */
export const separationPar = 1;

const autoKeys: readonly TradeOffKey[] = ['w', 'relativeFidelity', 'defect', 'sparsity'];

/** Δs/Δf between two points; a rise in sparsity at no fidelity cost is an infinite rate. */
function exchange(ds: number, df: number): number {
  if (df > 0) return ds / df;
  return ds > 0 ? Infinity : 0;
}

/**
 * Per point: the exchange rate Δsparsity/Δ(relative fidelity error) of the segment ending there (0 at
 * the first point). Needs `sparsity` on every point.
 */
export function sparsityExchangeRates(pointsArg: readonly TradeOffPoint[]): number[] {
  const points = expectTradeOffPoints(pointsArg, 'points', autoKeys);
  return points.map((p, i) => {
    if (i === 0) return 0;
    const q = points[i - 1]!;
    return exchange(p.sparsity! - q.sparsity!, p.relativeFidelity - q.relativeFidelity);
  });
}

/** Sparsity, defect and relative fidelity of a point, for a reason. */
function describePoint(p: TradeOffPoint): string {
  return `sparsity ${fmt(p.sparsity ?? 0)}, defect ${fmt(p.defect)}, relative fidelity error ${fmt(p.relativeFidelity)}`;
}

/**
 * w: 'auto': support separation when the path's mean exchange rate Δsparsity/Δf is at least
 * `separationPar` (then the largest w whose segment still trades at par or better), else the knee (see
 * the module comment). Needs `sparsity` on every point.
 */
export function selectAuto(pointsArg: readonly TradeOffPoint[]): WSelection {
  const points = expectTradeOffPoints(pointsArg, 'points', autoKeys);
  const rates = sparsityExchangeRates(points);
  const n = points.length;
  const first = points[0]!;
  const last = points[n - 1]!;
  const mean = n > 1 ? exchange(last.sparsity! - first.sparsity!, last.relativeFidelity - first.relativeFidelity) : 0;
  if (n > 1 && mean >= separationPar) {
    let index = n - 1;
    while (index > 1 && !(rates[index]! >= separationPar)) index--;
    const w = points[index]!.w;
    const reason =
      `support separation: along the path the sparsity rises ${fmt(mean)}× as fast as the relative fidelity error ` +
      `(par ${separationPar}: the zeroed entries are small noise, not signal); w = ${w} is the largest w whose segment still trades at par or better ` +
      `(${fmt(rates[index]!)}×; per segment ${rates.slice(1).map(fmt).join(', ')}); at w = ${w}: ${describePoint(points[index]!)}`;
    return { criterion: 'separation', ws: points.map((p) => p.w), index, w, scores: rates, reason, excluded: [] };
  }
  const knee = selectByKnee(points);
  const why = n > 1 ? `the sparsity rises only ${fmt(mean)}× as fast as the relative fidelity error, below par ${separationPar}: the flow zeroes signal, so w is a real trade-off` : 'a single point';
  return { ...knee, reason: `no support separation (${why}); ${knee.reason}; at w = ${knee.w}: ${describePoint(points[knee.index]!)}` };
}

export function selectByScore<P extends { w: number }>(points: readonly P[], score: (point: P) => number): WSelection {
  // The points go to the caller's score as they are; only their w is read and checked here.
  const ws = expectTradeOffPoints(points, 'points', ['w']).map((p) => p.w);
  if (typeof score !== 'function') throw new TypeError(`Expected a function (point) => number for score but received ${describeValue(score)}`);
  const items = points.slice();
  const scores = items.map((p, i) => {
    const s = score(p);
    if (typeof s !== 'number' || Number.isNaN(s)) {
      throw new TypeError(`Expected a number from options.score but received ${describeValue(s)} for w = ${ws[i]}`);
    }
    return s;
  });
  const index = argMax(scores);
  return { criterion: 'score', ws, index, w: ws[index]!, scores, reason: `the highest user score: ${fmt(scores[index]!)} at w = ${ws[index]}`, excluded: [] };
}
