/**
 * The one solver contract of every iterative method (nsaFlow, nsaFlowExplicit, nsaFlowFit, nmf,
 * stratifiedNmf, ntf, stratifiedNtf). native/kernels/solver.hpp is its C++ side: the stop-reason names
 * below are the strings the addon returns.
 *
 * A result carries `iterations`, `stopReason`, `certificate` (a number where a stationarity measure is
 * defined for the method's objective, else null), `traces` (columns, one entry per recorded iteration:
 * `iteration`, `timeMs` and the method's `loss` or `energy` columns) and the `settings` that repeat the
 * run. Progress records carry `iteration`, `maxIterations` and the same `loss`/`energy` value.
 */

/** Why a run stopped. */
export const stopReasons = [
  /** The certificate fell to the tolerance: a certified stationary point. */
  'gradMap',
  /** The energy or loss stopped decreasing by the method's own rule; no stationarity claim. */
  'plateau',
  /** The line search found no decrease (certified only within 1e3·tolerance; see the certificate). */
  'lineSearch',
  /** No step was ever accepted: the run returns its start. */
  'stalled',
  /** The iteration limit. */
  'maxIterations',
  /** The energy became non-finite; the best finite iterate is returned. */
  'nonFinite',
] as const;

export type StopReason = (typeof stopReasons)[number];

/** Fields every iterative result has. */
export interface SolverOutcome {
  iterations: number;
  stopReason: StopReason;
  /**
   * Scale-free stationarity of the returned point (the gradient mapping ‖P(X − ‖X‖²∇E) − X‖/‖X‖, with P
   * the projection on the constraints), or null where the method defines none.
   */
  certificate: number | null;
}

/** Trace columns every iterative result has; methods add their own columns (loss, energy, …). */
export interface SolverTraces {
  /** Iterations completed when the entry was recorded (0 = the start). */
  iteration: Float64Array;
  /** Milliseconds since the solve started. */
  timeMs: Float64Array;
}

/** Fields every progress record has; methods add their `loss` or `energy` and their own values. */
export interface SolverProgress {
  iteration: number;
  maxIterations: number;
}
