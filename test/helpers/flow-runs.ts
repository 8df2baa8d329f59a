// Maps a recorded nsa_flow_orth.json case to this project's nsaFlow options.
import type { NsaFlowOptions } from '../../lib/index.js';
import { camel } from './flow-fixtures.js';
import { fxMatrix } from './shared.js';

export function runOptions(c: any): NsaFlowOptions {
  const o = c.options;
  return {
    // the recorded runs are the reference's energy and calibration
    weighting: 'reference',
    X0: fxMatrix(c.inputs.X0),
    w: o.w,
    retraction: camel(o.retraction) as NsaFlowOptions['retraction'],
    nsIterations: o.ns_iter,
    nonnegativity: camel(o.apply_nonneg) as NsaFlowOptions['nonnegativity'],
    optimizer: camel(o.optimizer) as NsaFlowOptions['optimizer'],
    learningRate: o.initial_learning_rate,
    maxIterations: o.max_iter,
    tolerance: o.tol,
    windowSize: o.window_size,
    recordEvery: o.record_every,
    warmupIterations: o.warmup_iters,
    lrScheduler: o.lr_scheduler ? { patience: o.lr_scheduler_patience, factor: o.lr_scheduler_factor } : false,
    fidelityType: camel(o.fidelity_type) as NsaFlowOptions['fidelityType'],
    orthogonalityType: camel(o.orth_type) as NsaFlowOptions['orthogonalityType'],
    seed: o.seed,
  };
}

/** A plain array from a fixture column (stored either as {shape, data} or as a list). */
export function column(a: any): number[] {
  return Array.isArray(a) ? a : a.data;
}
