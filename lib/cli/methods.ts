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
import { nmf, nmfOptionSpecs, type NmfOptions, type NmfResult } from '../factorization/nmf.js';
import { stratifiedNmf, stratifiedNmfOptionSpecs, type StratifiedNmfOptions, type StratifiedNmfRank, type LabelledStratifiedNmfResult } from '../factorization/stratified-nmf.js';
import { stratifiedNtf, stratifiedNtfOptionSpecs, type StratifiedNtfOptions, type StratifiedNtfResult } from '../factorization/stratified-ntf.js';
import { ntf, ntfOptionSpecs, type NtfOptions, type NtfResult } from '../factorization/ntf.js';
import type { LossOutcome, NmfProgress } from '../factorization/common.js';
import type { CsrMatrix } from '../matrix.js';
import { pca, pcaOptionSpecs, type PcaOptions, type PcaResult } from '../pca.js';
import type { Tensor } from '../tensor.js';
import { UsageError } from './flags.js';
import { registerMethod, type AxisNames, type DataNames, type RunContext } from './registry.js';
import { readInput } from './inputs.js';
import { describeValue, type OptionSpec } from '../validate.js';

// ---- names of result rows and columns (CSV output) --------------------------------------------------

/** 'PC1', 'PC2', … */
const numbered = (prefix: string, n: number): string[] => Array.from({ length: n }, (_, i) => `${prefix}${i + 1}`);

/** A result array shaped like an input (Y of flow from Y0, …) gets the input's row and column names. */
function namesLike(names: DataNames | undefined, shape: readonly number[]): AxisNames | undefined {
  if (!names || shape.length !== 2) return undefined;
  const rows = names.rowNames?.length === shape[0] ? names.rowNames : undefined;
  const cols = names.colNames?.length === shape[1] ? names.colNames : undefined;
  return rows || cols ? { rows, cols } : undefined;
}

/** A positional argument of an API that is a flag on the command line (--rank, --k) and has no default. */
function required<T>(value: T | undefined, flag: string, method: string): T {
  if (value === undefined) throw new UsageError(`Expected a positive integer for ${flag} of ${method} but received nothing`);
  return value;
}

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
  arrayNames: (a, names) => namesLike(names.Y, a.shape),
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

// ---- PCA: the usual start of flow and path ------------------------------------------------------------

registerMethod<Required<PcaOptions> & { k?: number }, PcaResult & { settings: Required<PcaOptions> & { k: number } }>({
  name: 'pca',
  summary: 'centred PCA: loadings (p × k, the usual start Y0 of flow and path), scores and explained variance',
  optionSpecs: { k: { kind: 'number', integer: true, min: 1, max: 2 ** 31, description: 'number of components (required)' }, ...pcaOptionSpecs },
  inputs: { X: { kind: 'matrix', description: 'the data (rows = observations, columns = variables)' } },
  async run(inputs, { k, ...options }) {
    const K = required(k, '--k', 'pca');
    return { ...pca(inputs.X as Matrix, K, options), settings: { k: K, ...options } };
  },
  arrayNames({ name }, names, r) {
    const pcs = numbered('PC', r.loadings.cols);
    const X = names.X;
    if (name === 'loadings') return { rows: X?.colNames, cols: pcs };
    if (name === 'scores') return { rows: X?.rowNames, cols: pcs };
    if (name === 'singularValues' || name === 'explainedVarianceRatio') return { rows: pcs };
    if (name === 'mean' || name === 'scale') return { rows: X?.colNames };
    return undefined;
  },
  diagnostics: (r) => ({ explainedVariance: r.explainedVarianceRatio.reduce((a, b) => a + b, 0) }),
});

// ---- NSA-Flow ---------------------------------------------------------------------------------------

/** What the rows and columns of a p × k loading matrix are, for plot labels. */
const loadingAxes = { rowTitle: 'feature', colTitle: 'component' };

// X0 is an input file here, and the injected lr draws are a testing aid, not a command-line option.
const { X0: _flowX0, lrDraws: _flowDraws, ...flowCliSpecs } = nsaFlowOptionSpecs;

registerMethod<NsaFlowOptions, NsaFlowResult>({
  name: 'flow',
  summary: 'NSA-Flow (exact gradient): a non-negative, nearly orthogonal Y close to the target X0',
  optionSpecs: { ...flowCliSpecs, ...withFileInputs(fidelityMissingOptionSpecs) },
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
  arrayNames: (a, names) => ({ ...namesLike(names.Y0, a.shape), ...(a.name === 'Y' || a.name === 'target' ? loadingAxes : {}) }),
  diagnostics: (r) => ({
    bestEnergy: r.bestEnergy,
    bestIteration: r.bestIteration,
    stopReason: r.stopReason,
    defect: invariantOrthogonalityDefect(r.Y),
    sparsity: r.Y.data.filter((v) => v === 0).length / r.Y.data.length,
  }),
});

const { X0: _pathX0, data: _pathData, select: _pathSelect, ...pathSpecsRest } = nsaFlowPathOptionSpecs;
const pathCliSpecs = {
  ...pathSpecsRest,
  // One --threads on the command line: the kernels' threads, also given to BLAS (see main.ts).
  threads: { ...pathSpecsRest.threads, description: 'threads of the fused kernels and of BLAS (0: BLAS default, all cores)' },
  // A scoring function can only be passed through the API.
  select: { kind: 'enum', values: ['auto', 'knee'], description: "choose one solution of the path: 'auto' or 'knee' (a scoring function: API only)" },
} as const;

registerMethod<Omit<NsaFlowPathOptions, 'X0'>, NsaFlowPathResult & { selectedY?: Matrix }>({
  name: 'path',
  summary: 'the explicit NSA-Flow along a grid of w (--ws [0.1,0.5,0.9]) with warm starts: the fidelity/orthogonality/sparsity trade-off',
  optionSpecs: pathCliSpecs,
  inputs: {
    Y0: { kind: 'matrix', description: 'the start (p × k), e.g. PCA loadings' },
    X0: { kind: 'matrix', optional: true, description: 'the target (p × k); default: Y0' },
  },
  async run(inputs, options, { signal, onProgress }) {
    const r = await nsaFlowPath(inputs.Y0 as Matrix, {
      ...options,
      X0: inputs.X0 as Matrix | undefined,
      signal,
      onProgress: onProgress && ((p) => onProgress({ iteration: p.iteration, total: p.maxIterations, energy: p.energy, w: p.w, point: p.point })),
    });
    // The selected solution as its own array (selectedY.npy), ready to plot and use.
    return r.selection ? { ...r, selectedY: r.points[r.selection.index]!.Y } : r;
  },
  // The trade-off curve: `nsa-flow plot` draws it from these columns.
  traces: (r) => ({
    ws: Float64Array.from(r.points, (pt) => pt.w),
    fidelity: Float64Array.from(r.points, (pt) => pt.relativeFidelity),
    orthogonality: Float64Array.from(r.points, (pt) => pt.defect),
    sparsity: Float64Array.from(r.points, (pt) => pt.sparsity),
  }),
  arrayNames: (a, names) => ({ ...namesLike(names.Y0, a.shape), ...(/^(selectedY|target|points\.\d+\.Y)$/.test(a.name) ? loadingAxes : {}) }),
  diagnostics: (r) => ({ points: r.points.length, totalIterations: r.totalIterations, selectedW: r.selection?.w ?? 'none' }),
});

// ---- NSA-Flow fitted on data (fit) ---------------------------------------------------------------------

// (Imported here so that this registration stays one block; imports are hoisted either way.)
import { fitInits, nsaFlowFit, nsaFlowFitOptionSpecs, type FitInit, type NsaFlowFitOptions, type NsaFlowFitResult } from '../nsa-flow/fit.js';
import type { OptionSpecs } from '../validate.js';
import { fidelityMissingOptionSpecs } from '../nsa-flow/certified.js';

// On the command line the init is a name and the anchor a file (the optional second input): matrices
// given as options exist only in the API.
const fitCliSpecs: OptionSpecs = {
  k: { kind: 'number', integer: true, min: 1, max: 2 ** 31, description: 'number of components (required)' },
  ...Object.fromEntries(
    Object.entries(nsaFlowFitOptionSpecs).flatMap(([key, spec]): [string, OptionSpec][] =>
      key === 'anchor' ? [] : [[key, key === 'init' ? { kind: 'enum', values: fitInits, default: 'clamp', description: 'the start (a given start matrix: API only)' } : spec]],
    ),
  ),
  ...withFileInputs(fidelityMissingOptionSpecs),
};

registerMethod<Omit<NsaFlowFitOptions, 'init' | 'anchor'> & { k?: number; init: FitInit }, Omit<NsaFlowFitResult, 'transform'>>({
  name: 'fit',
  summary: 'NSA-Flow fitted on data: sparse, nearly orthogonal loadings V (p × k) and scores (n × k) in mode data, signed or anchored',
  optionSpecs: fitCliSpecs,
  inputs: {
    X: { kind: 'matrix', description: 'the data (rows = observations, columns = variables)' },
    anchor: { kind: 'matrix', optional: true, description: "the anchor (p × m) of --mode anchored; default: X's top-k principal subspace" },
  },
  async run(inputs, { k, ...options }, { signal, onProgress }) {
    const { transform: _transform, ...result } = await nsaFlowFit(inputs.X as Matrix, required(k, '--k', 'fit'), {
      ...options,
      ...(inputs.anchor ? { anchor: inputs.anchor as Matrix } : {}),
      signal,
      onProgress: onProgress && ((p) => onProgress({ iteration: p.iteration, total: p.maxIterations, energy: p.energy, certificate: p.certificate })),
    });
    return result;
  },
  arrayNames({ name }, names, r) {
    const components = numbered('V', r.V.cols);
    const X = names.X;
    if (name === 'V' || name.startsWith('lobes.')) return { rows: X?.colNames, cols: components, ...loadingAxes };
    if (name === 'scores') return { rows: X?.rowNames, cols: components, rowTitle: 'row of X', colTitle: 'component' };
    if (name === 'center') return { rows: X?.colNames };
    return undefined;
  },
  diagnostics: (r) => ({
    mode: r.settings.mode,
    fidelity: r.fidelity,
    defect: r.defect,
    sparsity: r.sparsity,
    explainedVariance: r.explainedVariance.reconstruction,
    pcaExplainedVariance: r.explainedVariance.pca,
    certificate: r.certificate,
    stopReason: r.stopReason,
  }),
});

// ---- the factorizations ---------------------------------------------------------------------------

/** The rank is a positional argument of the APIs; on the command line it is the --rank flag. */
const rankSpec = { rank: { kind: 'number', integer: true, min: 1, max: 2 ** 31, description: 'number of topics (required)' } } as const;

/**
 * snmf's --rank: one rank, or one per stratum (docs/stratified-nmf.md, "Per-stratum ranks") as a
 * comma-separated list in the sorted order of the labels (--rank 3,4,5; a JSON array works too).
 * Turned into a number or a list here; stratifiedNmf checks the values.
 */
const stratumRankSpec = {
  rank: {
    kind: 'custom',
    description: 'number of topics (required), or one per stratum, comma-separated in the sorted order of the labels (3,4,5)',
    check: (v: unknown, name: string) => {
      if (typeof v === 'number' && !(Number.isInteger(v) && v >= 1)) throw new RangeError(`Expected a positive integer for ${name} but received ${describeValue(v)}`);
      if (typeof v !== 'string') return v;
      const parts = v.split(',').map((t) => t.trim());
      if (!parts.every((t) => /^\d+$/.test(t))) {
        throw new TypeError(`Expected a positive integer or a comma-separated list of integers ≥ 0 (one per stratum) for ${name} but received ${describeValue(v)}`);
      }
      return parts.map(Number);
    },
  },
} as const;


/**
 * --weights FILE and --mask FILE: a matrix file (.npy, .npy.gz, .csv, …; relative to the working
 * directory) of the data's shape — the weights, or a mask whose non-zero entries are the missing
 * ones. (A JSON value still works: --mask '{"rows":[0],"cols":[2]}'.) Read here, then checked by the
 * API's own checks.
 */
function withFileInputs<S extends { weights: OptionSpec; mask: OptionSpec }>(specs: S): S {
  const matrixFile = (path: string, flag: string) => readInput({ kind: 'matrix', description: flag }, path, process.cwd(), flag) as Matrix;
  const check = (spec: OptionSpec, fromFile: (m: Matrix) => unknown, flag: string) => ({
    ...spec,
    description: `${spec.description}; on the command line a matrix file (.npy, .csv, …)`,
    check: (v: unknown, name: string) => (spec as { check: (v: unknown, name: string) => unknown }).check(typeof v === 'string' ? fromFile(matrixFile(v, flag)) : v, name),
  });
  return {
    ...specs,
    weights: check(specs.weights, (m) => m, '--weights'),
    mask: check(specs.mask, (m) => Uint8Array.from(m.data, (x) => (x !== 0 ? 1 : 0)), '--mask'),
  };
}

/** The NMF family's trace columns (iteration, timeMs, loss, normalizedLoss), for traces.csv and plots. */
const lossTraces = (r: LossOutcome) => ({ ...r.traces });
const lossProgress = (onProgress: RunContext['onProgress']) =>
  onProgress && ((p: NmfProgress) => onProgress({ iteration: p.iteration, total: p.maxIterations, energy: p.loss, restart: p.restart }));
/** The CLI's headline of an NMF-family outcome: the fit and how near stationarity it stopped. */
const lossDiagnostics = (r: LossOutcome) => ({ normalizedLoss: r.normalizedLoss, certificate: r.certificate ?? 'none' });

registerMethod<StratifiedNmfOptions & { rank?: StratifiedNmfRank }, LabelledStratifiedNmfResult>({
  name: 'snmf',
  summary: 'Stratified-NMF: per-stratum shifts v(s) plus shared topics H (rows grouped by --strata-from labels.csv:column)',
  optionSpecs: { ...stratumRankSpec, ...withFileInputs(stratifiedNmfOptionSpecs) },
  inputs: {
    X: { kind: 'matrix', sparse: true, description: 'the data (rows = documents/samples); .mtx(.gz) stays sparse' },
    strata: { kind: 'strata', description: 'one label per row of X' },
  },
  run(inputs, { rank, ...options }, { signal, onProgress }) {
    return stratifiedNmf.fromLabels(inputs.X as Matrix | CsrMatrix, inputs.strata as string[], required(rank, '--rank', 'snmf'), {
      ...options,
      signal,
      onProgress: lossProgress(onProgress),
    });
  },
  traces: lossTraces,
  // V has one row per stratum (in the order of `labels`), H one per topic; W.s one per row of X in
  // stratum s (rowIndices[s] gives which): named by the input's row names, else by row number.
  arrayNames({ name, shape }, names, r) {
    const X = names.X;
    const topics = numbered('topic', r.H.rows);
    if (name === 'V') return { rows: r.labels.map(String), cols: X?.colNames, rowTitle: 'stratum', colTitle: 'feature' };
    if (name === 'H') return { rows: topics, cols: X?.colNames, rowTitle: 'topic', colTitle: 'feature' };
    const w = /^W\.(\d+)$/.exec(name);
    if (w && shape.length === 2) {
      const s = Number(w[1]);
      const rows = Array.from(r.rowIndices[s] ?? [], (i) => X?.rowNames?.[i] ?? String(i));
      // (per-stratum ranks: W.s has the first rₛ topics)
      return { rows, cols: topics.slice(0, shape[1]), rowTitle: r.labels[s] === undefined ? 'row of X' : `row of X (${r.labels[s]})`, colTitle: 'topic' };
    }
    return undefined;
  },
  diagnostics: (r) => ({ ...lossDiagnostics(r), strata: r.W.length }),
});

registerMethod<NmfOptions & { rank?: number }, NmfResult>({
  name: 'nmf',
  summary: 'plain NMF (multiplicative updates or HALS; Frobenius or KL) — the baseline',
  optionSpecs: { ...rankSpec, ...withFileInputs(nmfOptionSpecs) },
  inputs: { X: { kind: 'matrix', sparse: true, description: 'the non-negative data; .mtx(.gz) stays sparse' } },
  run(inputs, { rank, ...options }, { signal, onProgress }) {
    return nmf(inputs.X as Matrix | CsrMatrix, required(rank, '--rank', 'nmf'), { ...options, signal, onProgress: lossProgress(onProgress) });
  },
  traces: lossTraces,
  arrayNames({ name }, names, r) {
    const topics = numbered('topic', r.H.rows);
    if (name === 'W') return { rows: names.X?.rowNames, cols: topics, rowTitle: 'row of X', colTitle: 'topic' };
    if (name === 'H') return { rows: topics, cols: names.X?.colNames, rowTitle: 'topic', colTitle: 'feature' };
    return undefined;
  },
  diagnostics: lossDiagnostics,
});

/**
 * Splits a tensor's first mode by labels, in order of first appearance (as stratifiedNmf.fromLabels);
 * `split` splits another tensor of the same shape (weights, a mask) the same way.
 */
function splitTensor(T: Tensor, labels: string[]): { strata: Tensor[]; names: string[]; split: (U: Tensor) => Tensor[] } {
  const [n, ...rest] = T.shape as [number, ...number[]];
  if (labels.length !== n) {
    throw new UsageError(`Expected ${n} labels (one per sample of the tensor) but received ${labels.length}`);
  }
  const slice = rest.reduce((a, b) => a * b, 1);
  const rows = new Map<string, number[]>();
  labels.forEach((l, i) => (rows.get(l) ?? rows.set(l, []).get(l)!).push(i));
  const split = (U: Tensor) =>
    [...rows.values()].map((idx) => {
      const data = new Float64Array(idx.length * slice);
      idx.forEach((i, j) => data.set(U.data.subarray(i * slice, (i + 1) * slice), j * slice));
      return { shape: [idx.length, ...rest], data };
    });
  return { strata: split(T), names: [...rows.keys()], split };
}

/**
 * sntf's --weights FILE and --mask FILE: one tensor file (.npy, relative to the working directory) of
 * X's shape — the weights, or a mask whose non-zero entries are the missing ones — split into the
 * strata with X in run(), then checked by the API's own checks. (Per-stratum JSON arrays, the API's
 * form, still work.)
 */
const sntfOptionSpecs = (() => {
  const fromFile = (spec: OptionSpec, flag: string) => ({
    ...spec,
    description: `${spec.description}; on the command line one tensor file (.npy) of X's shape`,
    check: (v: unknown, name: string) =>
      typeof v === 'string'
        ? { wholeX: readInput({ kind: 'tensor', description: flag }, v, process.cwd(), flag) as Tensor }
        : (spec as { check: (v: unknown, name: string) => unknown }).check(v, name),
  });
  return {
    ...stratifiedNtfOptionSpecs,
    weights: fromFile(stratifiedNtfOptionSpecs.weights, '--weights'),
    mask: fromFile(stratifiedNtfOptionSpecs.mask, '--mask'),
  };
})();

/** A --weights/--mask file of X's shape split into the strata (masks: non-zero = missing). */
function splitOption(v: unknown, X: Tensor, split: (U: Tensor) => Tensor[], flag: string, asMask: boolean): unknown {
  if (v === null || typeof v !== 'object' || !('wholeX' in v)) return v;
  const U = (v as { wholeX: Tensor }).wholeX;
  if (U.shape.length !== X.shape.length || U.shape.some((d, m) => d !== X.shape[m])) {
    throw new UsageError(`Expected a tensor of X's shape [${X.shape.join(', ')}] for ${flag} but received shape [${U.shape.join(', ')}]`);
  }
  return split(U).map((t) => (asMask ? Uint8Array.from(t.data, (x) => (x !== 0 ? 1 : 0)) : t));
}

registerMethod<StratifiedNtfOptions & { rank?: number }, StratifiedNtfResult & { strataNames: string[] }>({
  name: 'sntf',
  summary: 'Stratified-NTF: a per-stratum low-rank tensor plus shared CP topics (samples grouped by --strata-from)',
  optionSpecs: { ...rankSpec, ...sntfOptionSpecs },
  inputs: {
    X: { kind: 'tensor', description: 'samples × d₂ × … × d_N (e.g. images), .npy' },
    strata: { kind: 'strata', description: 'one label per sample' },
  },
  async run(inputs, { rank, ...options }, { signal, onProgress }) {
    const X = inputs.X as Tensor;
    const { strata, names, split } = splitTensor(X, inputs.strata as string[]);
    const weights = splitOption(options.weights, X, split, '--weights', false) as StratifiedNtfOptions['weights'];
    const mask = splitOption(options.mask, X, split, '--mask', true) as StratifiedNtfOptions['mask'];
    const r = await stratifiedNtf(strata, required(rank, '--rank', 'sntf'), { ...options, weights, mask, signal, onProgress: lossProgress(onProgress) });
    return { ...r, strataNames: names };
  },
  traces: lossTraces,
  diagnostics: (r) => ({ ...lossDiagnostics(r), strata: r.strataNames.length }),
});

registerMethod<NtfOptions & { rank?: number }, NtfResult>({
  name: 'ntf',
  summary: 'non-negative CP decomposition of a tensor (multiplicative updates or HALS) — the baseline',
  optionSpecs: { ...rankSpec, ...ntfOptionSpecs },
  inputs: { X: { kind: 'tensor', description: 'a non-negative tensor, .npy' } },
  run(inputs, { rank, ...options }, { signal, onProgress }) {
    return ntf(inputs.X as Tensor, required(rank, '--rank', 'ntf'), { ...options, signal, onProgress: lossProgress(onProgress) });
  },
  traces: lossTraces,
  diagnostics: lossDiagnostics,
});
