/**
 * Choosing w from a path (the paper leaves it open: "calibrate by cross-validation").
 *
 * 'auto' (the default criterion), **fidelity saturation**: along the path the relative fidelity error
 * f(w) = ‖Y − X0‖/‖X0‖ rises with w while the defect falls. When the target has a disjoint-support
 * (non-negative, nearly orthogonal) structure blurred by noise, f stops rising once the columns have
 * separated: beyond that w, orthogonality — and the removal of the overlapping noise — costs no
 * fidelity. The criterion finds that saturated tail: the longest final run of grid segments on which
 * f rises at less than τ = 5% of its mean rate over the path, (f_last − f_first)/(w_last − w_first).
 * Within the tail, all further orthogonality is bought for under 5% of the path's fidelity range, so
 * 'auto' takes the tail's largest w. When f is still rising at the end of the grid (no saturation: a
 * smooth trade-off as with PCA loadings of real data), 'auto' falls back to the knee below.
 *
 * 'knee': both trade-off coordinates rescaled to [0, 1] over the path — gained = (d_max − d)/(d_max − d_min),
 * lost = (f − f_min)/(f_max − f_min) — and the knee is the w with the largest gained − lost: the point
 * of the trade-off curve farthest above the chord from the first to the last point, i.e. where further
 * orthogonality starts to cost more fidelity than it brings. Ties go to the smaller w.
 *
 * A user score (e.g. reconstruction error or accuracy on held-out data, computed from point.Y) picks
 * the w with the highest score instead: that is the cross-validated choice.
 *
 * On a path (path.ts), a point whose solve did not move (no accepted step: it returned its start) is
 * no solution of its own w — with warm starts it is the previous w's solution, and a run of such
 * points reads as a flat fidelity, i.e. a false saturation. Such points are excluded before any
 * criterion runs, and the selection lists them with the reason (`excluded`, `reason`).
 */
import { describeValue, isObjectArgument, readFields, readList } from '../validate.js';

export interface TradeOffPoint {
  w: number;
  /** ‖Y − X0‖ / ‖X0‖ */
  relativeFidelity: number;
  defect: number;
}

/** A grid point that could not be chosen, and why. */
export interface ExcludedPoint {
  index: number;
  w: number;
  why: string;
}

export interface WSelection {
  /** 'saturation' and 'knee' come from w: 'auto' (saturation when the path has a saturated tail). */
  criterion: 'saturation' | 'knee' | 'score';
  /** The grid that was solved. */
  ws: number[];
  index: number;
  w: number;
  /**
   * Per grid point: for 'saturation', the rate of f on the segment ending there relative to the mean
   * rate over the eligible points (0 at the first); gained − lost for 'knee'; the user's score for
   * 'score'. NaN for excluded points.
   */
  scores: number[];
  /** Why this w, in words (the criterion, the numbers it compared, the excluded points). */
  reason: string;
  /** Points that were not eligible (on a path: solves that did not move). */
  excluded: ExcludedPoint[];
}

const fmt = (v: number): string => (Number.isFinite(v) ? Number(v.toPrecision(3)).toString() : String(v));

/**
 * Validates a path's trade-off points: a non-empty array of objects with finite numbers w,
 * relativeFidelity and defect, w strictly increasing. Returns snapshots (each field read once).
 */
export function expectTradeOffPoints(v: unknown, name = 'points', keys: readonly ('w' | 'relativeFidelity' | 'defect')[] = ['w', 'relativeFidelity', 'defect']): TradeOffPoint[] {
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
    return { w: f.w, relativeFidelity: f.relativeFidelity ?? 0, defect: f.defect ?? 0 } as TradeOffPoint;
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

/** τ of the saturation criterion: a segment is saturated when f rises at < 5% of its mean rate. */
export const saturationTolerance = 0.05;

/** Per point: the rate of f on the segment ending there divided by the path's mean rate (0 at the first). */
export function fidelityRates(pointsArg: readonly TradeOffPoint[]): number[] {
  const points = expectTradeOffPoints(pointsArg);
  const n = points.length;
  const f = (i: number) => points[i]!.relativeFidelity;
  const mean = n > 1 ? (f(n - 1) - f(0)) / (points[n - 1]!.w - points[0]!.w) : 0;
  return points.map((p, i) => {
    if (i === 0) return 0;
    const rate = (f(i) - f(i - 1)) / (p.w - points[i - 1]!.w);
    return mean > 0 ? rate / mean : rate > 0 ? Infinity : 0;
  });
}

/**
 * w: 'auto': the largest w of the saturated tail (see the module comment), or the knee when the
 * fidelity has not saturated by the end of the grid.
 */
export function selectAuto(pointsArg: readonly TradeOffPoint[]): WSelection {
  const points = expectTradeOffPoints(pointsArg);
  const rates = fidelityRates(points);
  const n = points.length;
  let tail = n - 1; // first point of the saturated tail
  while (tail > 0 && rates[tail]! < saturationTolerance) tail--;
  if (n > 1 && tail < n - 1) {
    const w = points[n - 1]!.w;
    const reason =
      `fidelity saturation: from w = ${points[tail]!.w} to ${w} the relative fidelity rises at under ${saturationTolerance * 100}% of its mean rate ` +
      `(${rates.slice(tail + 1).map(fmt).join(', ')}× the mean), so the tail's largest w buys orthogonality at no fidelity cost`;
    return { criterion: 'saturation', ws: points.map((p) => p.w), index: n - 1, w, scores: rates, reason, excluded: [] };
  }
  const knee = selectByKnee(points);
  const last = n > 1 ? `the fidelity still rises at ${fmt(rates[n - 1]!)}× its mean rate on the last segment` : 'a single point';
  return { ...knee, reason: `no saturated fidelity tail (${last}); ${knee.reason}` };
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
