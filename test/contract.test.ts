// The one solver contract (lib/solver.ts, native/kernels/solver.hpp), checked the same way for every
// iterative method, one table row per method on a small real problem from data/:
// - stopReason is one of stopReasons, and 'gradMap' only when the certificate is at most the tolerance;
// - every output (factors, traces, the final loss/energy) is finite;
// - the trace columns are Float64Arrays of one length, iteration starts at 0 and increases, timeMs
//   does not decrease; the loss/energy column never increases where the method promises it;
// - every progress record has {iteration, maxIterations, <loss or energy>} with finite values;
// - with one BLAS thread, the result's settings passed back as options repeat the run bit for bit.
import { describe, expect, it } from 'vitest';

import {
  nmf,
  nsaFlow,
  nsaFlowExplicit,
  nsaFlowFit,
  ntf,
  readLabels,
  readMatrixMarket,
  readNpy,
  selectRows,
  setBlasThreads,
  stratifiedNmf,
  stratifiedNtf,
  type Matrix,
  type Tensor,
} from '../lib/index.js';
import { stopReasons, type StopReason } from '../lib/solver.js';
import { dataFile } from './helpers/shared.js';

setBlasThreads(1);

// ---- the problems (small slices of the shipped data) -------------------------------------------------

/** ALL leukemia (RMA log2, all positive): 40 patients × the 120 most variable probes. */
const leukemia = (() => {
  const t = readNpy(dataFile('leukemia_all/ALL_expr_top1000var.npy'));
  const cols = 120;
  const data = new Float64Array(40 * cols);
  for (let i = 0; i < 40; i++) data.set(t.data.subarray(i * t.shape[1]!, i * t.shape[1]! + cols), i * cols);
  return { rows: 40, cols, data } satisfies Matrix;
})();

/** Digits: the first 120 8×8 images (values 0…16) and their labels. */
const digits = readNpy(dataFile('digits/digits_images.npy'));
const digitLabels = readLabels(dataFile('digits/digits_labels.csv'), 'label').map(Number);
const digitSlice: Tensor = { shape: [120, 8, 8], data: digits.data.slice(0, 120 * 64) };
const digitRows: Matrix = { rows: 120, cols: 64, data: digitSlice.data };

/** Digits 0, 1, 2 among the first 300 images, one stratum each ([nₛ, 8, 8]). */
const digitStrata: Tensor[] = [0, 1, 2].map((digit) => {
  const rows = digitLabels.slice(0, 300).flatMap((l, i) => (l === digit ? [i] : []));
  const data = new Float64Array(rows.length * 64);
  rows.forEach((row, k) => data.set(digits.data.subarray(row * 64, (row + 1) * 64), k * 64));
  return { shape: [rows.length, 8, 8], data };
});

/** Austen TF-IDF (CSR): the first 90 chapters (Emma and the start of Mansfield Park), by novel. */
const austen = readMatrixMarket(dataFile('text/austen_tfidf.mtx'));
const austenRows = selectRows(austen, Int32Array.from({ length: 90 }, (_, i) => i));
const austenNovels = readLabels(dataFile('text/austen_docs.csv'), 'stratum').slice(0, 90);

/** A 40×4 start for the NSA-Flow rows: 4 probes of the leukemia slice, each scaled to unit norm. */
const flowStart: Matrix = (() => {
  const data = new Float64Array(40 * 4);
  for (let j = 0; j < 4; j++) {
    let norm = 0;
    for (let i = 0; i < 40; i++) norm += leukemia.data[i * 120 + j * 30]! ** 2;
    for (let i = 0; i < 40; i++) data[i * 4 + j] = leukemia.data[i * 120 + j * 30]! / Math.sqrt(norm);
  }
  return { rows: 40, cols: 4, data };
})();

// ---- the table -------------------------------------------------------------------------------------

type Progress = Record<string, unknown>;
interface Outcome {
  iterations: number;
  stopReason: StopReason;
  certificate?: number | null;
  traces: Record<string, Float64Array>;
  settings: object;
}

interface Row {
  method: string;
  /** The trace column and progress field of the objective ('objective': a penalized NMF's, docs/penalties.md). */
  objective: 'loss' | 'total' | 'energy' | 'objective';
  progressObjective: 'loss' | 'total' | 'energy' | 'objective';
  /** Why the objective never increases, or null where the method does not promise it. */
  monotone: string | null;
  /** The first recorded iteration: 0 (the start), by the contract. */
  traceStart: 0;
  /** Whether the result carries a certificate (a number); else it is null or absent. */
  certified: boolean;
  /** The certificate tolerance that 'gradMap' must meet, where the method has a certificate rule. */
  certificateTolerance: number | null;
  maxIterations: number;
  run(onProgress: (p: Progress) => void): Promise<Outcome>;
  /** The run again from result.settings (what a caller does to repeat it). */
  repeat(settings: object): Promise<Outcome>;
  /** Every numeric output besides the traces (factors, iterate, final values). */
  outputs(r: Outcome): ArrayLike<number>[];
}

const withoutRank = (settings: object): [number, Record<string, unknown>] => {
  const { rank, ...options } = settings as { rank: number };
  return [rank, options];
};
const asOutcome = (r: unknown) => r as Outcome;
/** A result's settings as options: the values reported as null did not apply to the run (and are not options). */
const applicable = (settings: object) => {
  const { fidEta, cOrth, scale, ...rest } = settings as Record<string, unknown>;
  return Object.fromEntries(Object.entries(rest).filter(([, v]) => v !== null));
};
const progressOptions = (onProgress: (p: Progress) => void) => ({ onProgress, progressIntervalMs: 0 });
const finalLoss = (r: Outcome) => {
  const x = r as unknown as { loss: number; normalizedLoss: number };
  return [[x.loss, x.normalizedLoss]];
};

const lossRow = (
  method: string,
  monotone: string,
  maxIterations: number,
  solve: (o: object) => Promise<unknown>,
  factors: (r: any) => Matrix[],
  certificateTolerance: number | null = null,
): Row => ({
  method,
  objective: 'loss',
  progressObjective: 'loss',
  monotone,
  traceStart: 0,
  certified: true,
  certificateTolerance,
  maxIterations,
  run: (onProgress) =>
    solve({ maxIterations, seed: 3, ...(certificateTolerance === null ? {} : { certificateTolerance }), ...progressOptions(onProgress) }).then(asOutcome),
  repeat: (settings) => solve(settings).then(asOutcome),
  outputs: (r) => [...factors(r).map((m) => m.data), ...finalLoss(r)],
});

/** The NMF family's solves: options in (the row's defaults, or settings with rank), result out. */
const solveNmfHals = (o: object) => {
  const [rank, options] = 'rank' in o ? withoutRank(o) : [4, o];
  return nmf(leukemia, rank, { solver: 'hals', ...options });
};
const solveStratifiedNmf = (o: object) => {
  const [rank, options] = 'rank' in o ? withoutRank(o) : [4, o];
  return stratifiedNmf.fromLabels(austenRows, austenNovels, rank, options);
};
const solveNtfHals = (o: object) => {
  const [rank, options] = 'rank' in o ? withoutRank(o) : [5, o];
  return ntf(digitSlice, rank, { solver: 'hals', ...options });
};
const solveStratifiedNtf = (o: object) => {
  const [rank, options] = 'rank' in o ? withoutRank(o) : [4, { strataRank: 1, ...o }];
  return stratifiedNtf(digitStrata, rank, options as { strataRank: number });
};

const rows: Row[] = [
  lossRow(
    'nmf (mu, Frobenius)',
    'Lee–Seung: each multiplicative update of W or H does not increase ‖A − WH‖',
    60,
    (o) => {
      const [rank, options] = 'rank' in o ? withoutRank(o) : [4, o];
      return nmf(leukemia, rank, { solver: 'mu', ...options });
    },
    (r) => [r.W, r.H],
  ),
  lossRow(
    'nmf (hals), stopping on the certificate',
    'each HALS step is the exact minimizer over one column of W or row of H',
    60,
    solveNmfHals,
    (r) => [r.W, r.H],
    // Measured: 5.4e-3 after 40 iterations, 1.0e-3 after 100; this run stops with 'gradMap' on the way.
    5e-3,
  ),
  lossRow(
    'nmf (mu, KL)',
    'Lee–Seung: the KL multiplicative updates do not increase the divergence',
    60,
    (o) => {
      const [rank, options] = 'rank' in o ? withoutRank(o) : [5, o];
      return nmf(digitRows, rank, { solver: 'mu', loss: 'kl', ...options });
    },
    (r) => [r.W, r.H],
  ),
  {
    ...lossRow(
      'nmf (hals, L1/L2 penalties)',
      'each HALS step is the exact minimizer of the penalized objective over one coordinate',
      60,
      (o) => {
        const [rank, options] = 'rank' in o ? withoutRank(o) : [4, o];
        return nmf(leukemia, rank, { solver: 'hals', l1W: 2, l2H: 3, ...options });
      },
      (r) => [r.W, r.H, { data: [r.objective] }],
    ),
    objective: 'objective',
    progressObjective: 'objective',
  },
  lossRow(
    'stratifiedNmf',
    'the reference multiplicative updates (v, W, H) each do not increase the loss',
    50,
    solveStratifiedNmf,
    (r) => [r.V, ...r.W, r.H],
  ),
  lossRow(
    'ntf (mu)',
    'multiplicative updates of one mode at a time, each not increasing the loss',
    40,
    (o) => {
      const [rank, options] = 'rank' in o ? withoutRank(o) : [5, o];
      return ntf(digitSlice, rank, { solver: 'mu', ...options });
    },
    (r) => r.factors,
  ),
  lossRow(
    'ntf (hals)',
    'each HALS step is the exact minimizer over one component of one mode',
    30,
    solveNtfHals,
    (r) => r.factors,
  ),
  lossRow(
    'stratifiedNtf',
    'the reference multiplicative updates (v, w, h) each do not increase the loss (TV off)',
    40,
    solveStratifiedNtf,
    (r) => [...r.v.flat(), ...r.w, ...r.h],
  ),
  {
    method: 'nsaFlow (spg, the default)',
    objective: 'total',
    progressObjective: 'total',
    monotone: 'SPG accepts a step only when the Armijo condition lowers the energy',
    traceStart: 0,
    certified: true,
    certificateTolerance: 1e-6,
    maxIterations: 60,
    run: (onProgress) => nsaFlow(flowStart, { w: 0.5, maxIterations: 60, ...progressOptions(onProgress) }).then(asOutcome),
    repeat: (settings) => nsaFlow(flowStart, applicable(settings)).then(asOutcome),
    outputs: (r) => [(r as any).Y.data, [(r as any).bestEnergy]],
  },
  {
    method: 'nsaFlow (lbfgsb)',
    objective: 'total',
    progressObjective: 'total',
    monotone: 'L-BFGS-B accepts a step only when the strong-Wolfe line search lowers the energy',
    traceStart: 0,
    certified: true,
    certificateTolerance: 1e-6,
    maxIterations: 60,
    run: (onProgress) => nsaFlow(flowStart, { w: 0.5, optimizer: 'lbfgsb', maxIterations: 60, ...progressOptions(onProgress) }).then(asOutcome),
    repeat: (settings) => nsaFlow(flowStart, applicable(settings)).then(asOutcome),
    outputs: (r) => [(r as any).Y.data, [(r as any).bestEnergy]],
  },
  {
    method: 'nsaFlow (asgd, retraction loop)',
    objective: 'total',
    progressObjective: 'total',
    monotone: null, // first-order optimizers promise no monotone energy (the best iterate is kept)
    traceStart: 0,
    certified: true,
    certificateTolerance: 1e-6,
    maxIterations: 60,
    run: (onProgress) =>
      nsaFlow(flowStart, { w: 0.5, optimizer: 'asgd', learningRate: 0.05, maxIterations: 60, seed: 3, ...progressOptions(onProgress) }).then(asOutcome),
    repeat: (settings) => nsaFlow(flowStart, applicable(settings)).then(asOutcome),
    outputs: (r) => [(r as any).Y.data, [(r as any).bestEnergy]],
  },
  {
    method: 'nsaFlowExplicit',
    objective: 'total',
    progressObjective: 'energy',
    monotone: null, // the iterate is not kept monotone; only bestEnergy ≤ startEnergy is promised
    traceStart: 0,
    certified: true,
    certificateTolerance: 1e-5,
    maxIterations: 60,
    run: (onProgress) => nsaFlowExplicit(flowStart, { w: 0.5, maxIterations: 60, seed: 3, ...progressOptions(onProgress) }).then(asOutcome),
    repeat: (settings) => {
      const { fidEta, cOrth, scale, finalLearningRate, jittered, threadsUsed, ...options } = settings as Record<string, unknown>;
      return nsaFlowExplicit(flowStart, options).then(asOutcome);
    },
    outputs: (r) => [(r as any).Y.data, [(r as any).bestEnergy, (r as any).startEnergy]],
  },
  {
    method: 'nsaFlowFit (data mode)',
    objective: 'energy',
    progressObjective: 'energy',
    monotone: 'the certified solver (L-BFGS-B) accepts only steps that lower the energy',
    traceStart: 0,
    certified: true,
    certificateTolerance: 1e-6,
    maxIterations: 200,
    run: (onProgress) => nsaFlowFit(leukemia, 3, { w: 0.5, maxIterations: 200, ...progressOptions(onProgress) }).then(asOutcome),
    repeat: (settings) => {
      const { k, requestedMode, ...options } = applicable(settings);
      return nsaFlowFit(leukemia, k as number, { ...options, mode: requestedMode }).then(asOutcome);
    },
    outputs: (r) => [(r as any).V.data, (r as any).scores.data, [(r as any).energy]],
  },
];

// ---- the checks ------------------------------------------------------------------------------------

const allFinite = (x: ArrayLike<number>) => Array.prototype.every.call(x, (v: number) => Number.isFinite(v));

describe.each(rows)('$method: the solver contract', (row) => {
  let result: Outcome;
  const progress: Progress[] = [];

  it('stops for a reason of stopReasons; gradMap only with a certificate at most the tolerance', async () => {
    result = await row.run((p) => progress.push(p));
    expect(stopReasons).toContain(result.stopReason);
    expect(result.iterations).toBeGreaterThan(0);
    expect(result.iterations).toBeLessThanOrEqual(row.maxIterations);
    if (result.stopReason === 'gradMap') {
      expect(row.certificateTolerance).not.toBeNull();
      expect(result.certificate!).toBeLessThanOrEqual(row.certificateTolerance!);
    }
    if (row.certified) {
      // A scale-free stationarity measure: finite and ≥ 0 (0 exactly at a KKT point).
      expect(typeof result.certificate).toBe('number');
      expect(result.certificate!).toBeGreaterThanOrEqual(0);
      expect(Number.isFinite(result.certificate)).toBe(true);
    } else {
      expect(result.certificate ?? null).toBeNull();
    }
  });

  it('returns finite outputs', () => {
    for (const x of row.outputs(result)) expect(allFinite(x)).toBe(true);
    for (const [name, column] of Object.entries(result.traces)) expect([name, allFinite(column)]).toEqual([name, true]);
  });

  it(`records traces as Float64Array columns of one length: iteration from ${row.traceStart} increasing, timeMs not decreasing`, () => {
    const columns = Object.entries(result.traces);
    expect(columns.map(([name]) => name)).toEqual(expect.arrayContaining(['iteration', 'timeMs', row.objective]));
    const n = result.traces.iteration!.length;
    expect(n).toBeGreaterThan(1);
    for (const [name, column] of columns) {
      expect([name, column instanceof Float64Array, column.length]).toEqual([name, true, n]);
    }
    const { iteration, timeMs } = result.traces as { iteration: Float64Array; timeMs: Float64Array };
    expect(iteration[0]).toBe(row.traceStart);
    for (let i = 1; i < n; i++) expect(iteration[i]!).toBeGreaterThan(iteration[i - 1]!);
    expect(iteration[n - 1]!).toBeLessThanOrEqual(result.iterations);
    expect(timeMs[0]!).toBeGreaterThanOrEqual(0);
    for (let i = 1; i < n; i++) expect(timeMs[i]!).toBeGreaterThanOrEqual(timeMs[i - 1]!);
  });

  it.runIf(row.monotone !== null)(`never increases ${row.objective} (${row.monotone})`, () => {
    const objective = result.traces[row.objective]!;
    // Up to rounding of the loss evaluation: 1e-12 relative.
    for (let i = 1; i < objective.length; i++) expect(objective[i]!).toBeLessThanOrEqual(objective[i - 1]! * (1 + 1e-12));
    expect(objective[objective.length - 1]!).toBeLessThan(objective[0]!); // and it does descend
  });

  it(`reports progress as {iteration, maxIterations, ${row.progressObjective}}`, () => {
    expect(progress.length).toBeGreaterThan(0);
    for (const p of progress) {
      expect(Object.keys(p)).toEqual(expect.arrayContaining(['iteration', 'maxIterations', row.progressObjective]));
      expect(p.maxIterations).toBe(row.maxIterations);
      expect(Number.isInteger(p.iteration) && (p.iteration as number) >= 0 && (p.iteration as number) <= row.maxIterations).toBe(true);
      expect(Number.isFinite(p[row.progressObjective])).toBe(true);
    }
    if (row.objective === 'loss') for (const p of progress) expect(Number.isFinite(p.normalizedLoss)).toBe(true);
  });

  it('repeats the run bit for bit from its settings (one BLAS thread)', async () => {
    const again = await row.repeat(JSON.parse(JSON.stringify(result.settings)));
    expect(again.iterations).toBe(result.iterations);
    expect(again.stopReason).toBe(result.stopReason);
    expect(Object.is(again.certificate ?? null, result.certificate ?? null)).toBe(true);
    expect(again.traces.iteration).toEqual(result.traces.iteration);
    expect(again.traces[row.objective]).toEqual(result.traces[row.objective]);
    const a = row.outputs(again);
    const b = row.outputs(result);
    expect(a.length).toBe(b.length);
    a.forEach((x, i) => expect(Array.from(x)).toEqual(Array.from(b[i]!)));
  });
});

describe('the NMF family: loss, normalizedLoss and traces agree', () => {
  it('loss is the last trace entry and normalizedLoss = loss / ‖A‖ (KL: / Σa)', async () => {
    const r = await nmf(leukemia, 3, { maxIterations: 5 });
    const norm = Math.sqrt(leukemia.data.reduce((acc, x) => acc + x * x, 0));
    expect(r.loss).toBe(r.traces.loss.at(-1));
    expect(Math.abs(r.normalizedLoss - r.loss / norm)).toBeLessThan(1e-15);
    r.traces.loss.forEach((x, i) => expect(Math.abs(r.traces.normalizedLoss[i]! - x / norm)).toBeLessThan(1e-15));
    const k = await nmf(digitRows, 3, { solver: 'mu', loss: 'kl', maxIterations: 5 });
    const sum = digitRows.data.reduce((acc, x) => acc + x, 0);
    expect(Math.abs(k.normalizedLoss - k.loss / sum)).toBeLessThan(1e-15);
  });
});

describe.each([
  // Tolerances the runs reach after some hundred iterations (measured: nmf 350, ntf 140, stratifiedNtf 667).
  { method: 'nmf (hals)', solve: solveNmfHals, tolerance: 1e-4 },
  { method: 'ntf (hals)', solve: solveNtfHals, tolerance: 1e-3 },
  { method: 'stratifiedNtf', solve: solveStratifiedNtf, tolerance: 1e-3 },
  // Multiplicative updates pass near the saddle W·H ≈ 0 in their first iterations, where this
  // first-order certificate is small too: measured 2.9e-4 after 3 iterations.
  { method: 'stratifiedNmf', solve: solveStratifiedNmf, tolerance: 1e-3 },
])('$method: the certificate stopping rule (options.certificateTolerance)', ({ solve, tolerance }) => {
  it("stops with 'gradMap' at the first iterate whose certificate is at most the tolerance", async () => {
    const r = asOutcome(await solve({ maxIterations: 20_000, seed: 3, certificateTolerance: tolerance }));
    expect(r.stopReason).toBe('gradMap');
    expect(r.certificate!).toBeLessThanOrEqual(tolerance);
    expect(r.iterations).toBeGreaterThan(1);
    expect(r.traces.iteration!.at(-1)).toBe(r.iterations);
    // The returned factors are those after r.iterations iterations, whose certificate was checked; every
    // iterate is checked (lossEvery 1), so the one before was above the tolerance.
    const same = asOutcome(await solve({ maxIterations: r.iterations, seed: 3 }));
    expect(same.stopReason).toBe('maxIterations');
    expect(same.certificate).toBe(r.certificate);
    expect(same.traces.loss).toEqual(r.traces.loss);
    const before = asOutcome(await solve({ maxIterations: r.iterations - 1, seed: 3 }));
    expect(before.certificate!).toBeGreaterThan(tolerance);
  });
});
