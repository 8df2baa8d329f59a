/**
 * Names and declarative option specs of NSA-Flow's exact-gradient mode (SPEC.md §4, §5, §7). Every
 * public function of lib/nsa-flow validates through these specs (lib/validate.ts parseOptions), so
 * messages, defaults and generated help come from one place.
 */
import { retractionTypes, nonNegativityModes, retractOptionSpecs } from '../ortho.js';
import type { OptionSpecs } from '../validate.js';

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

/** Weights of the energy: total = (1 − w)·fidEta·F + w·cOrth·O. */
export const energyOptionSpecs = {
  w: { kind: 'number', min: 0, max: 1, default: 0.5, description: 'weight of the orthogonality term' },
  fidEta: { kind: 'number', default: 1, description: 'scale of the fidelity term' },
  cOrth: { kind: 'number', default: 1, description: 'scale of the orthogonality term' },
  fidelityType: { kind: 'enum', values: fidelityTypes, default: 'scaleInvariant', description: 'fidelity measure' },
  orthogonalityType: {
    kind: 'enum',
    values: orthogonalityTypes,
    default: 'scaleInvariant',
    description: 'orthogonality measure',
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
