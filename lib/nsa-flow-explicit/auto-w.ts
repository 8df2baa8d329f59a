/**
 * Choosing w from a path (the paper leaves it open: "calibrate by cross-validation").
 *
 * 'knee': along the path, as w grows the solution gains orthogonality (its defect falls) and loses
 * fidelity (‖Y − X0‖/‖X0‖ grows). Both are rescaled to [0, 1] over the path — gained = (d_max − d)/(d_max − d_min),
 * lost = (f − f_min)/(f_max − f_min) — and the knee is the w with the largest gained − lost: the point
 * of the trade-off curve farthest above the chord from the first to the last point, i.e. where further
 * orthogonality starts to cost more fidelity than it brings. Ties go to the smaller w.
 *
 * A user score (e.g. accuracy or explained variance on held-out data, computed from point.Y) picks the
 * w with the highest score instead: that is the cross-validated choice.
 */
export interface TradeOffPoint {
  w: number;
  /** ‖Y − X0‖ / ‖X0‖ */
  relativeFidelity: number;
  defect: number;
}

export interface WSelection {
  criterion: 'knee' | 'score';
  /** The grid that was solved. */
  ws: number[];
  index: number;
  w: number;
  /** Per grid point: gained − lost for 'knee', the user's score for 'score'. */
  scores: number[];
}

/** The knee of the fidelity–orthogonality curve (see the module comment); returns per-point scores too. */
export function kneeScores(points: readonly TradeOffPoint[]): number[] {
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

export function selectByKnee(points: readonly TradeOffPoint[]): WSelection {
  const scores = kneeScores(points);
  const index = argMax(scores);
  return { criterion: 'knee', ws: points.map((p) => p.w), index, w: points[index]!.w, scores };
}

export function selectByScore<P extends { w: number }>(points: readonly P[], score: (point: P) => number): WSelection {
  const scores = points.map((p) => {
    const s = score(p);
    if (typeof s !== 'number' || Number.isNaN(s)) {
      throw new TypeError(`Expected a number from options.score but received ${String(s)} for w = ${p.w}`);
    }
    return s;
  });
  const index = argMax(scores);
  return { criterion: 'score', ws: points.map((p) => p.w), index, w: points[index]!.w, scores };
}
