/**
 * L1/L2 penalties of the NMF factors (docs/penalties.md): block X ≥ 0 adds l1X·ΣX + ½·l2X·‖X‖² to
 * the objective. nmf takes them for W and H, stratifiedNmf for V, W and H. With every weight 0 (the
 * default) a solve is the unpenalized one bit for bit.
 */
import type { RawProgress } from '../native.js';
import type { OptionSpec, OptionSpecs } from '../validate.js';
import { mapNmfProgress, type LossOutcome, type LossTraces, type NmfProgress, type RawTrace } from './common.js';

/** The penalty weights of W and H (each finite and ≥ 0, default 0). */
export interface FactorPenalties {
  /** L1 weight of W: adds l1W·ΣW (W ≥ 0, so ΣW = ‖W‖₁); larger values give sparser W. */
  l1W?: number;
  /** L2 weight of W: adds ½·l2W·‖W‖² (shrinks W). */
  l2W?: number;
  /** L1 weight of H: adds l1H·ΣH. */
  l1H?: number;
  /** L2 weight of H: adds ½·l2H·‖H‖². */
  l2H?: number;
}

/** Stratified-NMF's: W (all W(s)) and H as nmf's, and the stratum shifts V. */
export interface StratifiedPenalties extends FactorPenalties {
  /** L1 weight of V: adds l1V·ΣV. */
  l1V?: number;
  /** L2 weight of V: adds ½·l2V·‖V‖². */
  l2V?: number;
}

const penaltySpec = (norm: 'L1' | 'L2', term: string): OptionSpec => ({
  kind: 'number',
  min: 0,
  default: 0,
  description: `${norm} penalty weight: adds ${term} to the objective (0 = off)`,
});

/** The options of nmf's penalties (also CLI flags --l1W … and batch grid keys). */
export const factorPenaltyOptionSpecs = {
  l1W: penaltySpec('L1', 'l1W·ΣW'),
  l2W: penaltySpec('L2', '½·l2W·‖W‖²'),
  l1H: penaltySpec('L1', 'l1H·ΣH'),
  l2H: penaltySpec('L2', '½·l2H·‖H‖²'),
} as const satisfies OptionSpecs;

/** stratifiedNmf's: nmf's and V's. */
export const stratifiedPenaltyOptionSpecs = {
  l1V: penaltySpec('L1', 'l1V·ΣV'),
  l2V: penaltySpec('L2', '½·l2V·‖V‖²'),
  ...factorPenaltyOptionSpecs,
} as const satisfies OptionSpecs;

/** The parsed weights (parseOptions fills the defaults), as passed to the binding and reported in settings. */
export function penaltyWeights<K extends string>(o: Record<K, number>, keys: readonly K[]): Record<K, number> {
  return Object.fromEntries(keys.map((k) => [k, o[k]])) as Record<K, number>;
}
export const factorPenaltyKeys = ['l1W', 'l2W', 'l1H', 'l2H'] as const;
export const stratifiedPenaltyKeys = ['l1V', 'l2V', ...factorPenaltyKeys] as const;

/** Whether any weight is positive (then the results carry the penalized objective). */
export function anyPenalty(weights: Record<string, number>): boolean {
  return Object.values(weights).some((x) => x > 0);
}

/**
 * The weights as a result's settings report them: all of them when one is positive, none when all are
 * 0 (the default, so the settings still repeat the run, and an unpenalized result reads as before).
 */
export function penaltySettings<K extends string>(weights: Record<K, number>): Partial<Record<K, number>> {
  return anyPenalty(weights) ? weights : {};
}

/** The traces of a penalized solve: the loss's and the penalized objective's. */
export interface PenalizedTraces extends LossTraces {
  /**
   * With a penalty on: the penalized objective after `iteration[i]` iterations, which the updates
   * never increase (the loss alone may increase); the tolerance rule reads it instead of the loss.
   */
  objective?: Float64Array;
}

/**
 * A result's outcome with, when a penalty is on, `objective`: the penalized objective (the data term
 * ½Σω(a − m)² (KL: the divergence) plus the penalties) after the last iteration, the value the
 * certificate is of (divided by the data's squared norm; KL: by Σa). `loss`/`normalizedLoss` stay the
 * data fit over the observed entries.
 */
export interface PenalizedOutcome extends LossOutcome {
  objective?: number;
  traces: PenalizedTraces;
}

export function withObjective(outcome: LossOutcome, raw: RawTrace): PenalizedOutcome {
  const objective = (raw.trace as { objective?: Float64Array }).objective;
  if (objective === undefined) return outcome;
  return { ...outcome, objective: objective[objective.length - 1]!, traces: { ...outcome.traces, objective } };
}

/** Progress of a penalized solve: the loss, and the penalized objective when a penalty is on. */
export interface PenalizedProgress extends NmfProgress {
  objective?: number;
}

export function mapPenalizedProgress(r: RawProgress): PenalizedProgress {
  const p: PenalizedProgress = mapNmfProgress(r);
  if (r.values.length > 2) p.objective = r.values[2]!;
  return p;
}
