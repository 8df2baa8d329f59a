/**
 * The solvers the CLI, `runBatch` and the queue worker can run — one registration each.
 *
 * A registration names the method, reuses the option specs its API validates with (so flags, help
 * and batch-job validation follow the API automatically), declares its input files and adapts the
 * call: read inputs in, plain result out. Everything else (subcommand, flags, --help, --out,
 * progress, batch and queue jobs, plots of traces and factor matrices) comes from this entry.
 */
import { frobeniusNorm, type Matrix } from '../matrix.js';
import { invariantOrthogonalityDefect, retractAsync, retractOptionSpecs, type RetractOptions } from '../ortho.js';
import { nsaFlow, nsaFlowOptionSpecs, type NsaFlowOptions, type NsaFlowResult } from '../nsa-flow/index.js';
import { nsaFlowPath, nsaFlowPathOptionSpecs, type NsaFlowPathOptions, type NsaFlowPathResult } from '../nsa-flow-explicit/path.js';
import { registerMethod } from './registry.js';

// ---- retract: the pattern every solver registration follows ------------------------------------

registerMethod<Required<RetractOptions>, { Y: Matrix; settings: Required<RetractOptions> }>({
  name: 'retract',
  summary: 'move a matrix toward the Stiefel manifold (polar, Newton–Schulz, Cayley, …), keeping its norm',
  optionSpecs: retractOptionSpecs,
  inputs: { Y: { kind: 'matrix', description: 'the matrix to retract (rows ≥ cols for Stiefel retractions)' } },
  async run(inputs, options, { signal, onProgress }) {
    const Y = await retractAsync(inputs.Y as Matrix, {
      ...options,
      signal,
      onProgress: onProgress && ((p) => onProgress({ iteration: p.iteration, total: p.total })),
    });
    return { Y, settings: { ...options } };
  },
  diagnostics(result, inputs) {
    const before = inputs.Y as Matrix;
    return {
      defectBefore: invariantOrthogonalityDefect(before),
      defectAfter: invariantOrthogonalityDefect(result.Y),
      // Retractions restore the Frobenius norm, so this equals the input's (up to rounding).
      frobeniusNorm: frobeniusNorm(result.Y),
    };
  },
});

// ---- NSA-Flow ---------------------------------------------------------------------------------------

// X0 is an input file here, and the injected lr draws are a testing aid, not a command-line option.
const { X0: _flowX0, lrDraws: _flowDraws, ...flowCliSpecs } = nsaFlowOptionSpecs;

registerMethod<NsaFlowOptions, NsaFlowResult>({
  name: 'flow',
  summary: 'NSA-Flow (exact gradient): a non-negative, nearly orthogonal Y close to the target X0',
  optionSpecs: flowCliSpecs,
  inputs: {
    Y0: { kind: 'matrix', description: 'the start (p × k), e.g. PCA loadings' },
    X0: { kind: 'matrix', optional: true, description: 'the target (p × k); default: the non-negative part of Y0, from a seeded jittered start' },
  },
  run(inputs, options, { signal, onProgress }) {
    return nsaFlow(inputs.Y0 as Matrix, {
      ...options,
      X0: inputs.X0 as Matrix | undefined,
      signal,
      onProgress:
        onProgress &&
        ((p) => onProgress({ iteration: p.iteration, total: p.maxIterations, energy: p.total, fidelity: p.fidelity, orthogonality: p.orthogonality })),
    });
  },
  diagnostics: (r) => ({
    bestEnergy: r.bestEnergy,
    bestIteration: r.bestIteration,
    stopReason: r.stopReason,
    defect: invariantOrthogonalityDefect(r.Y),
    sparsity: r.Y.data.filter((v) => v === 0).length / r.Y.data.length,
  }),
});

const { X0: _pathX0, data: _pathData, ...pathCliSpecs } = nsaFlowPathOptionSpecs;

registerMethod<Omit<NsaFlowPathOptions, 'X0'>, NsaFlowPathResult>({
  name: 'path',
  summary: 'the explicit NSA-Flow along a grid of w (--ws [0.1,0.5,0.9]) with warm starts: the fidelity/orthogonality/sparsity trade-off',
  optionSpecs: pathCliSpecs,
  inputs: {
    Y0: { kind: 'matrix', description: 'the start (p × k), e.g. PCA loadings' },
    X0: { kind: 'matrix', optional: true, description: 'the target (p × k); default: Y0' },
  },
  run(inputs, options, { signal, onProgress }) {
    return nsaFlowPath(inputs.Y0 as Matrix, {
      ...options,
      X0: inputs.X0 as Matrix | undefined,
      signal,
      onProgress: onProgress && ((p) => onProgress({ iteration: p.iteration, total: p.maxIterations, energy: p.energy, w: p.w, point: p.point })),
    });
  },
  // The trade-off curve: `nsa-flow plot` draws it from these columns.
  traces: (r) => ({
    ws: Float64Array.from(r.points, (pt) => pt.w),
    fidelity: Float64Array.from(r.points, (pt) => pt.relativeFidelity),
    orthogonality: Float64Array.from(r.points, (pt) => pt.defect),
    sparsity: Float64Array.from(r.points, (pt) => pt.sparsity),
  }),
  diagnostics: (r) => ({ points: r.points.length, totalIterations: r.totalIterations, selectedW: r.selection?.w ?? 'none' }),
});

// ---- the factorizations: register each here as it lands on main -----------------------------------
//
//   snmf  — stratifiedNmf on one matrix with labels: inputs {X: matrix, sparse: true (TF-IDF .mtx.gz
//           stays CSR), strata: strata (--strata-from labels.csv:column)}.
//   nmf   — nmf: inputs {X: matrix, sparse: true}.
//   sntf  — stratifiedNtf: inputs {X: tensor, strata: strata}.
//   ntf   — ntf: inputs {X: tensor}.
