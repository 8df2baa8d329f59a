/**
 * Which options belong to which weighting of the NSA-Flow energy (internal: nsaFlow, energy(),
 * energyGradient() and estimateLearningRate() share it; not part of the package's exports).
 */
import type { Weighting } from './options.js';

/** Options of one weighting only, with their defaults there. */
export const weightingOnlyOptions: Record<Weighting, Record<string, unknown>> = {
  energy: { orthogonality: 'gram' },
  reference: { fidEta: 1, cOrth: 1, fidelityType: 'scaleInvariant', orthogonalityType: 'scaleInvariant', warmupIterations: 0 },
};

const quote = (v: unknown): string => (typeof v === 'string' ? `'${v}'` : String(v));

/**
 * Refuses the options (of those `o` may hold) that belong to the other weighting than `o.weighting`
 * — an option accepted and ignored would be a silent mistake — then fills in the defaults of this
 * weighting's own options. `o` holds the parsed options: a key is present only when given.
 */
export function applyWeighting<T extends { weighting: Weighting }>(o: T, keys: readonly string[], context: string): T {
  const other: Weighting = o.weighting === 'energy' ? 'reference' : 'energy';
  const rec = o as unknown as Record<string, unknown>;
  for (const key of Object.keys(weightingOnlyOptions[other])) {
    if (keys.includes(key) && rec[key] !== undefined) {
      throw new RangeError(
        `options.${key} of ${context} applies to weighting '${other}' only, but the weighting is '${o.weighting}' (received ${key} ${quote(rec[key])})${o.weighting === 'energy' ? "; the calibration-free energy has no weights to calibrate and its fidelity is ‖Y − X0‖²/‖X0‖² — pass weighting: 'reference' for the reference's energy" : "; pass weighting: 'energy' for the calibration-free energy"}`,
      );
    }
  }
  for (const [key, value] of Object.entries(weightingOnlyOptions[o.weighting])) {
    if (keys.includes(key) && rec[key] === undefined) rec[key] = value;
  }
  return o;
}
