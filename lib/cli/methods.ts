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

// ---- the solvers: register each here as it lands on main ------------------------------------------
//
// Each is one registerMethod({...}) call like `retract` above, using the solver's exported OptionSpecs
// (minus signal/onProgress/progressIntervalMs, which the CLI supplies) and its async function:
//
//   flow  — nsaFlowAsync (lib/nsa-flow/): inputs {X0: matrix (the start point, p × k), Y0?: matrix
//           (the target, defaults to X0)}; progress {iteration, total: maxIterations, energy: total
//           energy}; traces: result.traces (fidelity, orthogonality, total).
//   path  — nsaFlowPathAsync (explicit flow over a grid of w): inputs as flow; traces:
//           {ws, fidelity, orthogonality, sparsity} so `nsa-flow plot` draws the trade-off curve.
//   snmf  — stratifiedNmfAsync (lib/factorization/stratified-nmf.ts) on one matrix with labels:
//           inputs {X: matrix, sparse: true (TF-IDF .mtx.gz stays CSR), strata: strata
//           (--strata-from labels.csv:column)}; traces {loss, normalizedLoss, lossIterations}.
//   nmf   — nmfAsync (lib/factorization/nmf.ts): inputs {X: matrix, sparse: true}.
//   sntf  — stratifiedNtfAsync (lib/factorization/*ntf.ts): inputs {X: tensor, strata: strata}.
//   ntf   — ntfAsync: inputs {X: tensor}.
//
// A method whose options include `seed` receives `--seed` from the command line.
