/**
 * Names and declarative option specs of NSA-Flow's exact-gradient mode (SPEC.md §4, §5, §7). Every
 * public function of lib/nsa-flow validates through these specs (lib/validate.ts parseOptions), so
 * messages, defaults and generated help come from one place.
 */
import { retractionTypes, nonNegativityModes, retractOptionSpecs } from '../ortho.js';
import type { OptionSpecs } from '../validate.js';

/**
 * The energy nsaFlow minimizes. 'energy': the calibration-free E_w(Y) = (1 − w)·‖Y − X0‖²/‖X0‖² + w·O(Y)
 * (both terms 0 at their ideal, 1 at "nothing"), the default. 'reference': the reference's
 * (1 − w)·fidEta·F + w·cOrth·O with fidEta, cOrth calibrated from the start (SPEC.md §5).
 */
export const weightings = ['energy', 'reference'] as const;
export type Weighting = (typeof weightings)[number];

/**
 * The calibration-free orthogonality functionals O(Y) of the 'energy' weighting, shared with the
 * certified solvers (native/kernels/orthogonality.hpp; functions of the Gram S = YᵀY only, scale
 * invariant, 0 at the ideal, 1 when all columns are parallel): 'gram' D̃ = ‖S/tr S − I/k‖²/(1 − 1/k)
 * (0 iff YᵀY = c·I), 'offDiagonal' ‖offdiag S‖²/(tr S)²/(1 − 1/k) (0 iff the columns are orthogonal),
 * 'meanCos2' the mean squared cosine between columns.
 */
import { orthogonalityFunctionals, type OrthogonalityFunctional } from './certified.js';
export { orthogonalityFunctionals, type OrthogonalityFunctional };

export const fidelityTypes = ['basic', 'scaleInvariant', 'symmetric'] as const;
export type FidelityType = (typeof fidelityTypes)[number];
export const orthogonalityTypes = ['basic', 'scaleInvariant'] as const;
export type OrthogonalityType = (typeof orthogonalityTypes)[number];

/** The 11 learning-rate estimation strategies of the reference (SPEC.md §7). */
export const lrStrategies = [
  'armijo',
  'armijoAggressive',
  'exponential',
  'linear',
  'entropy',
  'random',
  'adaptive',
  'momentumBoost',
  'polyDecay',
  'grid',
  'bayes',
] as const;
export type LrStrategy = (typeof lrStrategies)[number];

/**
 * The energy's options. The weighting-specific ones have no spec default: `applyWeighting` refuses
 * them when given for the other weighting and fills in their defaults after.
 */
export const energyOptionSpecs = {
  weighting: { kind: 'enum', values: weightings, default: 'energy', description: "energy: 'energy' (calibration-free) or 'reference'" },
  w: { kind: 'number', min: 0, max: 1, default: 0.5, description: 'weight of the orthogonality term' },
  orthogonality: {
    kind: 'enum',
    values: orthogonalityFunctionals,
    description: "orthogonality functional of weighting 'energy' (default 'gram')",
  },
  fidEta: { kind: 'number', description: "scale of the fidelity term, weighting 'reference' (default 1)" },
  cOrth: { kind: 'number', description: "scale of the orthogonality term, weighting 'reference' (default 1)" },
  fidelityType: { kind: 'enum', values: fidelityTypes, description: "fidelity measure, weighting 'reference' (default 'scaleInvariant')" },
  orthogonalityType: {
    kind: 'enum',
    values: orthogonalityTypes,
    description: "orthogonality measure, weighting 'reference' (default 'scaleInvariant')",
  },
} as const satisfies OptionSpecs;

/** The differentiable map Y(Z) = nonneg(retract_w(Z)). */
export const flowMapOptionSpecs = {
  retraction: { kind: 'enum', values: retractionTypes, default: 'softPolar', description: 'retraction' },
  w: retractOptionSpecs.w,
  nsIterations: retractOptionSpecs.nsIterations,
  nonnegativity: { kind: 'enum', values: nonNegativityModes, default: 'hard', description: 'non-negativity map' },
} as const satisfies OptionSpecs;

/** energyGradient(): the map's options plus the energy's (w is shared, as in the solver). */
export const energyGradientOptionSpecs = {
  ...flowMapOptionSpecs,
  ...energyOptionSpecs,
  w: { kind: 'number', min: 0, max: 1, default: 0.5, description: 'retraction blend and orthogonality weight' },
} as const satisfies OptionSpecs;
