/**
 * NSA-Flow energies and their exact gradients — the calibration-free E_w (weighting 'energy', the
 * default) and the reference's (SPEC.md §4–5) — and the differentiable retraction
 * Y(Z) = nonneg(retract_w(Z)) with its analytic vector–Jacobian product, so that other tools can
 * train through the retraction (what the reference's NSAFlowLayer offers PyTorch users).
 */
import type { Matrix } from '../matrix.js';
import { native } from '../native.js';
import { NumericalError } from '../errors.js';
import { checkWorkspace, largeEntry, type NonNegativity, type RetractionType } from '../ortho.js';
import { callSync } from '../runtime.js';
import type { Tensor } from '../tensor.js';
import { checkMemory, float64Bytes } from '../memory.js';
import { expectBatch, expectIntact, expectMatrix, expectSameShape, maxAbs, parseOptions, type OptionSpecs } from '../validate.js';
import { applyWeighting } from './weighting.js';
import {
  energyGradientOptionSpecs,
  energyOptionSpecs,
  flowMapOptionSpecs,
  type FidelityType,
  type OrthogonalityFunctional,
  type OrthogonalityType,
  type Weighting,
} from './options.js';

declare module '../native.js' {
  interface NativeBinding {
    flowEnergy(
      Y: Float64Array, X0: Float64Array, B: number, p: number, k: number,
      fidelity: string, orthogonality: string, w: number, fidEta: number, cOrth: number,
      weighting: Weighting, functional: OrthogonalityFunctional,
    ): EnergyValue;
    flowEnergyGradient(
      Z: Float64Array, X0: Float64Array, p: number, k: number,
      retraction: string, w: number, nsIterations: number, nonnegativity: string,
      fidelity: string, orthogonality: string, wEnergy: number, fidEta: number, cOrth: number,
      weighting: Weighting, functional: OrthogonalityFunctional,
    ): EnergyValue & { Y: Float64Array; gradient: Float64Array };
    retractVjp(
      Z: Float64Array, G: Float64Array, p: number, k: number,
      retraction: string, w: number, nsIterations: number, nonnegativity: string,
    ): { Y: Float64Array; gradient: Float64Array };
  }
}

export interface EnergyValue {
  /** 'energy': ‖Y − X0‖²/‖X0‖²; 'reference': fidEta·F */
  fidelity: number;
  /** 'energy': O(Y), the chosen functional; 'reference': cOrth·O */
  orthogonality: number;
  /** (1 − w)·fidelity + w·orthogonality */
  total: number;
}

export interface EnergyOptions {
  /** 'energy' (default): the calibration-free E_w; 'reference': the reference's calibrated energy. */
  weighting?: Weighting;
  /** Weight of the orthogonality term (default 0.5). */
  w?: number;
  /** 'energy' only: the orthogonality functional, 'gram' (default), 'offDiagonal' or 'meanCos2'. */
  orthogonality?: OrthogonalityFunctional;
  /** 'reference' only: scale of the fidelity term (default 1). */
  fidEta?: number;
  /** 'reference' only: scale of the orthogonality term (default 1). */
  cOrth?: number;
  /** 'reference' only: 'basic' ½‖Y−X0‖², 'scaleInvariant' ½‖Y−X0‖²/‖X0‖² (default), 'symmetric' ½‖Y−X0‖²/(½(‖X0‖²+‖Y‖²)). */
  fidelityType?: FidelityType;
  /** 'reference' only: 'basic' ‖YᵀY − I‖²/k², 'scaleInvariant' the invariant defect (default). */
  orthogonalityType?: OrthogonalityType;
}

export interface FlowMapOptions {
  /** Retraction (default 'softPolar'). */
  retraction?: RetractionType;
  /** Blend weight of the soft retractions (default 0.5 in energyGradient, 1 in retractVjp). */
  w?: number;
  /** Newton–Schulz iterations (default 5). */
  nsIterations?: number;
  /** Non-negativity map applied after the retraction (default 'hard'). */
  nonnegativity?: NonNegativity;
}

type ParsedEnergy = Required<EnergyOptions>;
const energyKeys = Object.keys(energyOptionSpecs);

/** Parses energy options and applies the weighting's own options (refusing the other's). */
function parseEnergy<T extends ParsedEnergy>(specs: OptionSpecs, options: unknown, context: string): T {
  const o = applyWeighting(parseOptions<T>(specs, options, context), energyKeys, context);
  if (o.weighting === 'energy') {
    // The calibration-free energy has no scales; fixed values let one native signature serve both.
    Object.assign(o, { fidEta: 1, cOrth: 1, fidelityType: 'scaleInvariant', orthogonalityType: 'scaleInvariant' });
  } else {
    o.orthogonality = 'gram';
  }
  return o;
}

/** The calibration-free fidelity divides by ‖X0‖²: a zero target (of any batch element) is refused. */
function requireTarget(o: ParsedEnergy, x: Float64Array, elementSize: number, name: string, context: string): void {
  if (o.weighting !== 'energy') return;
  for (let b = 0; b * elementSize < x.length; b++) {
    let any = false;
    for (let i = b * elementSize; i < (b + 1) * elementSize && !any; i++) any = x[i] !== 0;
    if (!any) {
      const which = x.length > elementSize ? `${name}[${b}]` : name;
      throw new RangeError(
        `Expected a target ${which} with a nonzero entry for ${context} (the calibration-free fidelity ‖Y − X0‖²/‖X0‖² divides by ‖X0‖²) but received all zeros`,
      );
    }
  }
}
type ParsedMap = Required<FlowMapOptions>;

const stiefel = (t: string): boolean => t !== 'none' && t !== 'normalize';
function requireTall(type: string, m: Matrix, name: string): void {
  if (stiefel(type) && m.rows < m.cols) {
    throw new RangeError(`Expected rows ≥ cols (p ≥ k) for ${name} with retraction '${type}' but received ${m.rows}×${m.cols}`);
  }
}

function finiteWeights(o: ParsedEnergy, context: string): void {
  for (const key of ['fidEta', 'cOrth'] as const) {
    if (!Number.isFinite(o[key])) {
      throw new RangeError(`Expected a finite number for options.${key} of ${context} but received ${o[key]}`);
    }
  }
}

/** Doubles an energy evaluation holds: the difference Y − X0 (and a gradient) plus the k×k Gram. */
function checkEnergyMemory(n: number, k: number, copies: number, what: string): void {
  checkWorkspace(Math.max(n, k * k), copies * n + 2 * k * k, what);
}

/** Throws a NumericalError when a value computed from finite input is not finite (overflow). */
function expectFiniteEnergy(values: Record<string, number>, context: string, names: string, largest: number): void {
  for (const [key, v] of Object.entries(values)) {
    if (!Number.isFinite(v)) {
      throw new NumericalError(
        `${context}: ${key} is ${v}: squares of the entries of ${names} (largest magnitude ${largest.toExponential(3)}) overflow a double; rescale ${names}`,
      );
    }
  }
}

/**
 * The scaleInvariant/symmetric fidelities and the scaleInvariant orthogonality do not change when Y
 * and X0 are scaled together, so inputs with huge entries are divided by their largest magnitude first
 * — unless that would push ‖Y‖² or the fidelity's denominator under the measures' 1e-12 floors (then
 * the true value overflows anyway and the unscaled call reports it).
 */
function jointScale(o: ParsedEnergy, y: Float64Array, x: Float64Array): { y: Float64Array; x: Float64Array; largest: number } {
  const largest = Math.max(maxAbs(y), maxAbs(x));
  const invariant = o.weighting === 'energy' || (o.fidelityType !== 'basic' && o.orthogonalityType === 'scaleInvariant');
  if (!(largest > largeEntry) || !invariant) return { y, x, largest };
  const squared = (a: Float64Array): number => a.reduce((acc, v) => acc + (v / largest) ** 2, 0);
  const floor = 1e-10;
  if (squared(y) < floor || (o.fidelityType === 'scaleInvariant' && squared(x) < floor)) return { y, x, largest };
  checkMemory(float64Bytes(2, y.length), 'scaled copies of Y and X0');
  return { y: y.map((v) => v / largest), x: x.map((v) => v / largest), largest };
}

/** The NSA-Flow energy of Y against the target X0 (same shape). */
export function energy(Y: Matrix, X0: Matrix, options?: EnergyOptions): EnergyValue {
  const o = parseEnergy<ParsedEnergy>(energyOptionSpecs, options, 'energy()');
  finiteWeights(o, 'energy()');
  const y = expectMatrix(Y, 'Y');
  const x = expectMatrix(X0, 'X0');
  expectSameShape(y, 'Y', x, 'X0');
  expectIntact([y.data, y.rows * y.cols, 'Y.data']);
  requireTarget(o, x.data, x.data.length, 'X0', 'energy()');
  checkEnergyMemory(y.rows * y.cols, y.cols, 2, `the energy of Y (${y.rows}×${y.cols}): its k×k Gram and Y − X0`);
  const s = jointScale(o, y.data, x.data);
  const e = callSync(() =>
    native().flowEnergy(s.y, s.x, 0, y.rows, y.cols, o.fidelityType, o.orthogonalityType, o.w, o.fidEta, o.cOrth, o.weighting, o.orthogonality),
  );
  expectFiniteEnergy({ ...e }, 'energy()', 'Y and X0', s.largest);
  return e;
}

/**
 * The energy of a batch [B, p, k]: 'energy' averages both terms over the batch; 'reference' keeps the
 * reference's conventions ('basic' fidelity is summed over the batch, the ratio fidelities and both
 * orthogonality measures are batch means).
 */
export function energyBatch(Y: Tensor, X0: Tensor, options?: EnergyOptions): EnergyValue {
  const o = parseEnergy<ParsedEnergy>(energyOptionSpecs, options, 'energyBatch()');
  finiteWeights(o, 'energyBatch()');
  const y = expectBatch(Y, 'Y');
  const x = expectBatch(X0, 'X0');
  if (x.batch !== y.batch || x.rows !== y.rows || x.cols !== y.cols) {
    throw new RangeError(
      `Expected X0 to have the shape of Y ([${y.batch}, ${y.rows}, ${y.cols}]) but received [${x.batch}, ${x.rows}, ${x.cols}]`,
    );
  }
  expectIntact([y.data, y.batch * y.rows * y.cols, 'Y.data']);
  requireTarget(o, x.data, x.rows * x.cols, 'X0', 'energyBatch()');
  checkEnergyMemory(y.data.length, y.cols, 2, `the energy of Y ([${y.batch}, ${y.rows}, ${y.cols}]): its k×k Grams and Y − X0`);
  // Per element, the invariant measures are unchanged by a common scale of the whole batch.
  const s = jointScale(o, y.data, x.data);
  const e = callSync(() =>
    native().flowEnergy(s.y, s.x, y.batch, y.rows, y.cols, o.fidelityType, o.orthogonalityType, o.w, o.fidEta, o.cOrth, o.weighting, o.orthogonality),
  );
  expectFiniteEnergy({ ...e }, 'energyBatch()', 'Y and X0', s.largest);
  return e;
}

export type EnergyGradientOptions = EnergyOptions & FlowMapOptions;

export interface EnergyGradient extends EnergyValue {
  /** Y = nonneg(retract(Z)), where the energy was evaluated. */
  Y: Matrix;
  /** ∂total/∂Z, exact (analytic), through the non-negativity map and the retraction. */
  gradient: Matrix;
}

/**
 * E(nonneg(retract_w(Z))) and its exact gradient with respect to Z, as the solver computes them each
 * iteration (`w` is both the retraction's blend and the energy's weight).
 */
export function energyGradient(Z: Matrix, X0: Matrix, options?: EnergyGradientOptions): EnergyGradient {
  const o = parseEnergy<ParsedEnergy & ParsedMap>(energyGradientOptionSpecs, options, 'energyGradient()');
  finiteWeights(o, 'energyGradient()');
  const z = expectMatrix(Z, 'Z');
  const x = expectMatrix(X0, 'X0');
  expectSameShape(z, 'Z', x, 'X0');
  requireTall(o.retraction, z, 'Z');
  expectIntact([z.data, z.rows * z.cols, 'Z.data']);
  requireTarget(o, x.data, x.data.length, 'X0', 'energyGradient()');
  checkEnergyMemory(z.rows * z.cols, z.cols, 8, `the energy gradient at Z (${z.rows}×${z.cols}): Y, the gradient, the retraction's workspace and k×k Grams`);
  const r = callSync(() =>
    native().flowEnergyGradient(
      z.data, x.data, z.rows, z.cols, o.retraction, o.w, o.nsIterations, o.nonnegativity,
      o.fidelityType, o.orthogonalityType, o.w, o.fidEta, o.cOrth, o.weighting, o.orthogonality,
    ),
  );
  expectFiniteEnergy({ fidelity: r.fidelity, orthogonality: r.orthogonality, total: r.total }, 'energyGradient()', 'Z and X0', Math.max(maxAbs(z.data), maxAbs(x.data)));
  expectFiniteEnergy({ 'the gradient norm': maxAbs(r.gradient) }, 'energyGradient()', 'Z and X0', Math.max(maxAbs(z.data), maxAbs(x.data)));
  return {
    fidelity: r.fidelity,
    orthogonality: r.orthogonality,
    total: r.total,
    Y: { rows: z.rows, cols: z.cols, data: r.Y },
    gradient: { rows: z.rows, cols: z.cols, data: r.gradient },
  };
}

const retractVjpSpecs = {
  ...flowMapOptionSpecs,
  w: { ...flowMapOptionSpecs.w, default: 1 },
  nonnegativity: { ...flowMapOptionSpecs.nonnegativity, default: 'none' },
} as const satisfies OptionSpecs;

/**
 * The backward pass of Y(Z) = nonneg(retract_w(Z)): given G = ∂L/∂Y, returns ∂L/∂Z = (∂Y/∂Z)ᵀG (and
 * Y itself). Defaults: w = 1, no non-negativity, so `retractVjp(Z, G, {retraction})` is the plain
 * retraction's backward pass; `retract()` (lib/ortho) is its forward pass.
 */
export function retractVjp(Z: Matrix, G: Matrix, options?: FlowMapOptions): { Y: Matrix; gradient: Matrix } {
  const o = parseOptions<ParsedMap>(retractVjpSpecs, options, 'retractVjp()');
  const z = expectMatrix(Z, 'Z');
  const g = expectMatrix(G, 'G');
  expectSameShape(z, 'Z', g, 'G');
  requireTall(o.retraction, z, 'Z');
  expectIntact([z.data, z.rows * z.cols, 'Z.data']);
  checkEnergyMemory(z.rows * z.cols, z.cols, 8, `the vector–Jacobian product at Z (${z.rows}×${z.cols}): Y, the gradient, the retraction's workspace and k×k matrices`);
  const r = callSync(() => native().retractVjp(z.data, g.data, z.rows, z.cols, o.retraction, o.w, o.nsIterations, o.nonnegativity));
  expectFiniteEnergy({ 'the largest |gradient| entry': maxAbs(r.gradient), 'the largest |Y| entry': maxAbs(r.Y) }, 'retractVjp()', 'Z and G', Math.max(maxAbs(z.data), maxAbs(g.data)));
  return { Y: { rows: z.rows, cols: z.cols, data: r.Y }, gradient: { rows: z.rows, cols: z.cols, data: r.gradient } };
}
