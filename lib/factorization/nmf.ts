/**
 * Plain NMF baselines (SPEC.md §10): A ≈ WH by multiplicative updates ('mu', Frobenius or KL loss)
 * or HALS ('hals', Frobenius), on dense or CSR data, with the same options and result shape as
 * stratifiedNmf. One native call per solve. Each iteration updates each factor `innerSweeps` times
 * from one set of products with the data (docs/performance.md: how much sooner that reaches a given
 * accuracy, and how the default was chosen). HALS on the unweighted Frobenius loss fits the larger
 * factor first: on wide data (rows < columns) its first iteration updates only H.
 */
import type { Matrix } from '../matrix.js';
import { native } from '../native.js';
import { callSync, productFlops, runJob, type AsyncOptions } from '../runtime.js';
import { NumericalError } from '../errors.js';
import { deviceOptionSpecs, resolveDevice, type Device } from '../cuda.js';
import { nmfMuOnDevice, nmfUnsupportedOnDevice } from './nmf-cuda.js';
import { asyncOptionSpecs, expectIntact, expectMatrix, expectShapeInteger, parseOptions, type OptionSpecs } from '../validate.js';
import {
  callInContext,
  checkFactorMemory,
  inContext,
  checkInit,
  expectFiniteLoss,
  maxRank,
  expectFactorShape,
  iterationOptionSpecs,
  lossOutcome,
  type IterationOptions,
  type RawTrace,
} from './common.js';
import { type DataMatrix } from './sparse.js';
import { bestOf, bestOfSync, restartsDoubles, type RestartsSummary } from './restarts.js';
import { missingDoubles, missingOptionSpecs, prepareMissing, rawMissing, type MissingOptions, type PreparedMissing } from './missing.js';
import {
  factorPenaltyKeys,
  factorPenaltyOptionSpecs,
  mapPenalizedProgress,
  penaltySettings,
  penaltyWeights,
  withObjective,
  type FactorPenalties,
  type PenalizedOutcome,
  type PenalizedProgress,
} from './penalties.js';

export type NmfSolver = 'mu' | 'hals';
export type NmfLoss = 'frobenius' | 'kl';

export interface NmfOptions extends IterationOptions, MissingOptions, FactorPenalties {
  /** 'hals' (exact coordinate updates, the default) or 'mu' (multiplicative updates). */
  solver?: NmfSolver;
  /** 'frobenius' (default) or 'kl' (generalized Kullback–Leibler divergence; solver 'mu' only). */
  loss?: NmfLoss;
  /** 'random' (W, H ~ U(0,1)·√(mean(A)/r)), 'nndsvd' (NNDSVD; zeros filled with 1 % of √(mean(A)/r)) or given {W, H}. */
  init?: 'random' | 'nndsvd' | { W?: Matrix; H?: Matrix };
  /**
   * Inner updates of each factor per iteration, reusing the iteration's products with the data (the
   * expensive part), so extra sweeps are cheap: HALS sweeps each row up to this many times (stopping
   * early by innerTolerance; many sweeps = alternating non-negative least squares by coordinate
   * descent), MU repeats its update. Default: DEFAULT_INNER_SWEEPS for HALS on the unweighted
   * Frobenius loss (chosen by measured time to accuracy, docs/performance.md); 1 for MU (Lee–Seung's
   * updates as the reference and the CUDA path run them) and with weights, missing entries or KL,
   * which allow only 1.
   */
  innerSweeps?: number;
  /** Inner sweeps stop when a sweep's change is at most this fraction of the first sweep's (default 0.1). */
  innerTolerance?: number;
}

/**
 * The inner sweeps of an unweighted Frobenius HALS solve when options.innerSweeps is not given, chosen by
 * bench/time-to-accuracy (docs/performance.md): the fastest to every accuracy level measured there.
 */
export const DEFAULT_INNER_SWEEPS = 10;

export interface NmfSettings {
  rank: number;
  solver: NmfSolver;
  loss: NmfLoss;
  maxIterations: number;
  tolerance: number;
  init: 'random' | 'nndsvd' | 'given';
  seed: number;
  lossEvery: number;
  /** Added to multiplicative-update denominators (HALS does not use it). */
  epsilon: number;
  certificateTolerance: number;
  /** The penalty weights (docs/penalties.md), present when one is positive (absent: all 0). */
  l1W?: number;
  l2W?: number;
  l1H?: number;
  l2H?: number;
  restarts: number;
  innerSweeps: number;
  innerTolerance: number;
}

/**
 * W, H and the outcome (lib/solver.ts): `loss` is ‖A − WH‖ (KL: Σ a·log(a/wh) − a + wh) after the last
 * iteration, `normalizedLoss` = loss/‖A‖ (KL: loss/Σa), `traces` {iteration, timeMs, loss,
 * normalizedLoss}, `certificate` the KKT gradient mapping of ½‖A − WH‖²/‖A‖² (KL: the divergence/Σa).
 * With weights or missing entries every one of these is over the observed entries: ‖A − WH‖ becomes
 * √Σω(a − wh)² and ‖A‖ becomes √Σωa².
 * With a penalty on (options.l1W, l2W, l1H, l2H; docs/penalties.md) `loss` stays the data fit and
 * `objective` (with `traces.objective`) is the penalized objective ½‖A − WH‖² + l1W·ΣW + ½·l2W·‖W‖²
 * + l1H·ΣH + ½·l2H·‖H‖² (KL: the divergence + the penalties), which the updates never increase and
 * whose normalized form (÷‖A‖², KL: ÷Σa) the certificate is of.
 */
export interface NmfResult extends PenalizedOutcome {
  W: Matrix;
  H: Matrix;
  certificate: number;
  settings: NmfSettings;
  /** With options.restarts > 1: every run's seed and loss, and which one this is. */
  restarts?: RestartsSummary;
}

/** The options of nmf (also the CLI's `nmf` flags). */
export const nmfOptionSpecs = {
  ...iterationOptionSpecs,
  solver: { kind: 'enum', values: ['mu', 'hals'], default: 'hals', description: 'update rule' },
  loss: { kind: 'enum', values: ['frobenius', 'kl'], default: 'frobenius', description: 'objective' },
  init: {
    kind: 'custom',
    description: "'random', 'nndsvd' or given factors {W, H}",
    check: (v, name) => checkInit(v, name, ['W', 'H']),
    default: 'random',
  },
  ...missingOptionSpecs,
  ...factorPenaltyOptionSpecs,
  innerSweeps: {
    kind: 'number',
    integer: true,
    min: 1,
    max: 2 ** 20,
    description: `inner updates of each factor per iteration (default ${DEFAULT_INNER_SWEEPS} for hals, 1 for mu; only 1 with weights, missing entries or KL)`,
  },
  innerTolerance: { kind: 'number', min: 0, max: 1, default: 0.1, description: "inner sweeps stop at this fraction of the first sweep's change" },
} as const satisfies OptionSpecs;
const nmfAsyncSpecs = { ...nmfOptionSpecs, ...asyncOptionSpecs } as const satisfies OptionSpecs;

type Parsed = Required<Omit<NmfOptions, 'init' | 'weights' | 'mask' | 'innerSweeps'>> & Pick<NmfOptions, 'init' | 'innerSweeps'> & Parameters<typeof prepareMissing>[2] & AsyncOptions<PenalizedProgress>;

interface Prepared {
  A: DataMatrix;
  rank: number;
  o: Parsed;
  given?: { W?: Float64Array; H?: Float64Array };
  normalizer: number;
  missing: PreparedMissing;
  context: string;
}

function prepare(A: unknown, rankArg: unknown, options: unknown, context: string, specs: OptionSpecs): Prepared {
  const o = parseOptions<Parsed>(specs, options, context);
  if (o.loss === 'kl' && o.solver !== 'mu') {
    throw new RangeError(`Expected solver 'mu' for options.loss 'kl' of ${context} but received solver '${o.solver}'`);
  }
  const { data, missing } = prepareMissing(A, 'A', o, context);
  if (o.loss === 'kl' && (missing.weights || missing.absent || missing.entries)) {
    throw new RangeError(`Expected loss 'frobenius' with missing entries or weights for ${context} but received loss 'kl' (weighted updates are for the Frobenius loss)`);
  }
  const plainFrobenius = o.loss === 'frobenius' && !missing.weights && !missing.absent && !missing.entries;
  if (o.innerSweeps === undefined) o.innerSweeps = plainFrobenius && o.solver === 'hals' ? DEFAULT_INNER_SWEEPS : 1;
  else if (o.innerSweeps > 1 && !plainFrobenius) {
    throw new RangeError(
      `Expected options.innerSweeps 1 with ${o.loss === 'kl' ? "loss 'kl'" : 'missing entries or weights'} for ${context} but received ${o.innerSweeps} (inner sweeps reuse the products of the unweighted Frobenius loss)`,
    );
  }
  const rank = expectShapeInteger(rankArg, 'rank', maxRank);
  const rankLimit = Math.min(data.rows, data.cols);
  if (rank > rankLimit) throw new RangeError(`Expected a rank in [1, ${rankLimit}] (min of rows and columns) for rank but received ${rank}`);
  // W (n×r), H (r×m), their result copies and update workspaces (NNDSVD: n×l + m×l, l ≈ r), r×r Grams.
  const factors = (data.rows + data.cols) * rank;
  checkFactorMemory(
    Math.max(data.rows, data.cols) * rank,
    restartsDoubles(o.restarts, 4 * factors + 2 * rank * rank + missingDoubles(missing, data.rows * data.cols), factors),
    `rank ${rank} with A of ${data.rows}×${data.cols} (W and H and their workspaces${missing.weights ? ', the weights and the zeroed copy of A' : ''}${o.restarts > 1 ? `, ${o.restarts} restarts` : ''})`,
  );
  let given: Prepared['given'];
  if (typeof o.init === 'object') {
    given = {};
    if (o.init.W !== undefined) {
      const W = expectMatrix(o.init.W, 'options.init.W', { nonNegative: true });
      expectFactorShape(W, 'options.init.W', data.rows, rank);
      given.W = W.data;
    }
    if (o.init.H !== undefined) {
      const H = expectMatrix(o.init.H, 'options.init.H', { nonNegative: true });
      expectFactorShape(H, 'options.init.H', rank, data.cols);
      given.H = H.data;
    }
  }
  // The given factors were read after A was checked: A's buffer must still be as validated.
  expectIntact([data.data, 'indptr' in data ? data.indptr[data.rows]! : data.rows * data.cols, 'A.data']);
  let normalizer = 0;
  if (o.loss === 'kl') for (const x of data.data) normalizer += x;
  else normalizer = missing.norm;
  if (!Number.isFinite(normalizer)) {
    throw new NumericalError(`${context}: the sum of the entries of A overflows a double (${normalizer}), so the KL loss cannot be computed; rescale A`);
  }
  return { A: data, rank, o, given, normalizer, missing, context };
}

function rawOptions(p: Prepared, seed: number) {
  return {
    solver: p.o.solver,
    loss: p.o.loss,
    maxIterations: p.o.maxIterations,
    tolerance: p.o.tolerance,
    lossEvery: p.o.lossEvery,
    seed,
    epsilon: p.o.epsilon,
    certificateTolerance: p.o.certificateTolerance,
    innerSweeps: p.o.innerSweeps!,
    innerTolerance: p.o.innerTolerance,
    ...penaltyWeights(p.o, factorPenaltyKeys),
    init: p.given ? ('given' as const) : (p.o.init as 'random' | 'nndsvd'),
    ...p.given,
    ...rawMissing(p.missing),
  };
}

function toResult(p: Prepared, raw: RawTrace & { W: Float64Array; H: Float64Array }): NmfResult {
  expectFiniteLoss(raw.trace.loss, p.context, 'A');
  return {
    W: { rows: p.A.rows, cols: p.rank, data: raw.W },
    H: { rows: p.rank, cols: p.A.cols, data: raw.H },
    ...withObjective(lossOutcome(raw, p.normalizer), raw),
    certificate: raw.certificate!,
    settings: {
      rank: p.rank,
      solver: p.o.solver,
      loss: p.o.loss,
      maxIterations: p.o.maxIterations,
      tolerance: p.o.tolerance,
      init: p.given ? 'given' : (p.o.init as 'random' | 'nndsvd'),
      seed: p.o.seed,
      lossEvery: p.o.lossEvery,
      epsilon: p.o.epsilon,
      certificateTolerance: p.o.certificateTolerance,
      ...penaltySettings(penaltyWeights(p.o, factorPenaltyKeys)),
      restarts: p.o.restarts,
      innerSweeps: p.o.innerSweeps!,
      innerTolerance: p.o.innerTolerance,
    },
  };
}

const nmfSyncSpecs = { ...nmfOptionSpecs, ...deviceOptionSpecs } as const satisfies OptionSpecs;

/**
 * NMF on the calling thread (small problems). `device` (docs/cuda.md): 'cuda' or 'auto' run solver
 * 'mu' with the Frobenius loss on dense data without missing entries, penalties or a certificate stop
 * on the GPU; anything else on the CPU ('cuda' refuses it with a RangeError).
 */
export function nmfSync(A: DataMatrix, rank: number, options?: NmfOptions & { device?: Device }): NmfResult {
  const p = prepare(A, rank, options, 'nmfSync()', nmfSyncSpecs);
  const cpu = (raw: ReturnType<typeof rawOptions>) => callInContext(p.context, 'A', () => callSync(() => native().nmf(p.A, p.rank, raw), productFlops(p.A.data.length, p.rank)));
  const { binding } = resolveDevice((p.o as Parsed & { device: Device }).device, p.context, p.A.rows * p.A.cols, nmfUnsupportedOnDevice({
    ...p.o, sparse: 'indptr' in p.A, missing: p.missing, penalties: penaltyWeights(p.o, factorPenaltyKeys),
  }));
  return bestOfSync(p.o, p.given !== undefined, p.context, (seed) =>
    toResult(p, binding ? nmfMuOnDevice(binding, p.A as { rows: number; cols: number; data: Float64Array }, p.rank, rawOptions(p, seed), cpu, p.context) : cpu(rawOptions(p, seed))),
  );
}

/**
 * NMF on a worker thread, with onProgress {iteration, maxIterations, loss, normalizedLoss, objective
 * (with a penalty on)} and signal.
 */
export function nmf(A: DataMatrix, rank: number, options?: NmfOptions & AsyncOptions<PenalizedProgress>): Promise<NmfResult> {
  let p: Prepared;
  try {
    p = prepare(A, rank, options, 'nmf()', nmfAsyncSpecs);
  } catch (err) {
    return Promise.reject(err);
  }
  return bestOf(p.o, p.given !== undefined, p.context, (seed, jobOptions) =>
    runJob(
      [p.A.data],
      ([data], token, onProgress, interval) =>
        native().nmfAsync({ ...p.A, data: data! }, p.rank, rawOptions(p, seed), token, onProgress, interval),
      jobOptions,
      mapPenalizedProgress,
      productFlops(p.A.data.length, p.rank),
    )
      .catch(inContext(p.context, 'A'))
      .then((raw) => toResult(p, raw)),
  );
}
