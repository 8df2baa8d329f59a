// Every export of the package root that takes arguments is called with each argument, in turn,
// replaced by a set of bad values (the others valid). Each call must throw (or reject with) a
// TypeError or RangeError whose message names an argument — never a V8-internal message such as
// "Cannot read properties of undefined" or "Invalid typed array length", and never a crash or a hang.
// A completeness check fails when a new export is added without a row here.
import { afterAll, describe, expect, it } from 'vitest';

import * as api from '../lib/index.js';
import type { Matrix, Tensor } from '../lib/index.js';
import * as plot from '../lib/plot/index.js';

const m = (rows: number, cols: number, values: number[]): Matrix => ({ rows, cols, data: Float64Array.from(values) });

// Small valid arguments (positive, so that the non-negative methods accept them too).
const Y = m(4, 2, [1, 0.2, 0.3, 1, 0.5, 0.1, 0.2, 0.7]);
const I2 = m(2, 2, [2, 0.5, 0.5, 1]);
const D = m(3, 4, [1, 2, 3, 4, 2, 1, 0.5, 3, 0.2, 0.4, 1, 2]);
const B: Tensor = { shape: [2, 4, 2], data: Float64Array.from({ length: 16 }, (_, i) => 1 + Math.sin(i)) };
const T: Tensor = { shape: [3, 2, 2], data: Float64Array.from({ length: 12 }, (_, i) => 1 + (i % 5)) };
const F = [m(3, 2, [1, 2, 3, 4, 5, 6]), m(2, 2, [1, 0.5, 0.2, 1]), m(2, 2, [0.3, 1, 1, 0.4])];
const C = api.toCsr(D);
const strata = [m(3, 4, [1, 2, 3, 4, 2, 1, 0.5, 3, 0.2, 0.4, 1, 2]), m(2, 4, [3, 1, 2, 1, 1, 1, 2, 2])];
const strataT: Tensor[] = [
  { shape: [2, 3, 2], data: Float64Array.from({ length: 12 }, (_, i) => 1 + (i % 4)) },
  { shape: [3, 3, 2], data: Float64Array.from({ length: 18 }, (_, i) => 1 + (i % 3)) },
];
const sntfOptions = { strataRank: 1, maxIterations: 1 };
const sntfState = api.stratifiedNtfSync(strataT, 1, sntfOptions);
const snmfFactors = api.stratifiedNmfSync(strata, 2, { maxIterations: 1 });
const points = [
  { w: 0.1, relativeFidelity: 0.1, defect: 0.5, sparsity: 0.2 },
  { w: 0.5, relativeFidelity: 0.3, defect: 0.1, sparsity: 0.3 },
];
const blasThreads = api.getBlasThreads();
const concurrency = api.getConcurrency();
const smallJobFlops = api.getSmallJobFlops();

// The bad values; `throwing` is an object whose every property read, and the listing of its keys, throws.
const throwing = new Proxy(
  {},
  {
    get() {
      throw new Error('getter says no');
    },
    ownKeys() {
      throw new Error('no keys either');
    },
  },
);
const bad: [label: string, value: unknown][] = [
  ['undefined', undefined],
  ['null', null],
  ['a number', 42],
  ['a string', 'x'],
  ['an empty object', {}],
  ['a Matrix with wrong lengths', { rows: 3, cols: 2, data: new Float64Array(5) }],
  ['NaN', NaN],
  ['a Float32Array', new Float32Array(8)],
  ['an object with throwing getters', throwing],
];
type Label = (typeof bad)[number][0];

interface Row {
  fn: string;
  call: (...args: unknown[]) => unknown;
  args: unknown[];
  /** Parameter names; an error message must name one of them (or a part of it, e.g. Y.data). */
  names: string[];
  /** Bad values that are valid at a position (e.g. undefined for an optional argument). */
  accepts?: Record<number, Label[]>;
}

const optional: Label[] = ['undefined'];
const optionalOptions: Label[] = ['undefined', 'null', 'an empty object'];
const f = api as unknown as Record<string, (...a: unknown[]) => unknown>;
const row = (fn: string, args: unknown[], names: string[], accepts?: Row['accepts']): Row => ({ fn, call: f[fn]!, args, names, accepts });

const rows: Row[] = [
  {
    fn: 'setMemoryLimit',
    call: (v) => {
      try {
        return api.setMemoryLimit(v as number);
      } finally {
        api.setMemoryLimit('auto');
      }
    },
    args: ['auto'],
    names: ['memoryLimit'],
    accepts: { 0: ['a number'] },
  },
  {
    fn: 'setBlasThreads',
    call: (v) => {
      try {
        return api.setBlasThreads(v as number);
      } finally {
        api.setBlasThreads(blasThreads);
      }
    },
    args: [1],
    names: ['threads'],
    accepts: { 0: ['a number'] },
  },
  {
    fn: 'setConcurrency',
    call: (v) => {
      try {
        return api.setConcurrency(v as number);
      } finally {
        api.setConcurrency(concurrency);
      }
    },
    args: [1],
    names: ['concurrency'],
    accepts: { 0: ['a number'] },
  },
  {
    fn: 'setSmallJobFlops',
    call: (v) => {
      try {
        return api.setSmallJobFlops(v as number);
      } finally {
        api.setSmallJobFlops(smallJobFlops);
      }
    },
    args: [1e7],
    names: ['flops'],
    accepts: { 0: ['a number'] },
  },
  row('matrix', [[[1, 2]]], ['rows', 'name'], { 1: optional }),
  row('matrixFrom', [new Float64Array(8), 4, 2], ['data', 'rows', 'cols', 'name'], { 3: optional }),
  row('zeros', [2, 3], ['rows', 'cols'], { 0: ['a number'], 1: ['a number'] }),
  row('identity', [3], ['n'], { 0: ['a number'] }),
  row('at', [Y, 0, 1], ['m', 'i', 'j']),
  row('toNested', [Y], ['m']),
  row('transpose', [Y], ['m']),
  // frobeniusNorm takes any {data: Float64Array} (a Matrix or a Tensor), so rows/cols are not read.
  row('frobeniusNorm', [Y], ['m'], { 0: ['a Matrix with wrong lengths'] }),
  // A typed array is a valid 1-D tensor.
  row('tensor', [[[1, 2]]], ['tensor', 'name'], { 0: ['a Float32Array'], 1: optional }),
  row('tensorFrom', [new Float64Array(8), [4, 2]], ['data', 'shape', 'name'], { 2: optional }),
  row('invariantOrthogonalityDefect', [Y], ['Y']),
  row('defectFast', [Y], ['Y']),
  row('invariantOrthogonalityDefectGradient', [Y], ['Y']),
  row('basicOrthogonality', [Y], ['Y']),
  row('invariantOrthogonalityDefectBatch', [B], ['Y']),
  row('invariantOrthogonalityDefectGradientBatch', [B], ['Y']),
  row('basicOrthogonalityBatch', [B], ['Y']),
  row('retract', [Y, { type: 'polar' }], ['Y', 'options'], { 1: optionalOptions }),
  row('retractAsync', [Y, { type: 'polar' }], ['Y', 'options'], { 1: optionalOptions }),
  row('retractBatch', [B, { type: 'polar' }], ['Y', 'options'], { 1: optionalOptions }),
  row('retractBatchAsync', [B, { type: 'polar' }], ['Y', 'options'], { 1: optionalOptions }),
  row('inverseSqrt', [I2, {}], ['A', 'options'], { 1: optionalOptions }),
  row('procrustes', [Y, Y], ['A', 'B']),
  row('qr', [Y], ['Y']),
  row('svd', [Y], ['Y']),
  row('applyNonNegativity', [Y, 'hard'], ['Y', 'mode']),
  row('nsaFlowExplicit', [Y, { maxIterations: 2 }], ['Y0', 'options'], { 1: optionalOptions }),
  row('nsaFlowExplicitSync', [Y, { maxIterations: 2 }], ['Y0', 'options'], { 1: optionalOptions }),
  row('nsaFlowPath', [Y, { ws: [0.2, 0.5], maxIterations: 2 }], ['Y0', 'options']),
  row('nsaFlowPathSync', [Y, { ws: [0.2, 0.5], maxIterations: 2 }], ['Y0', 'options']),
  row('selectByKnee', [points], ['points']),
  row('selectByScore', [points, (p: { w: number }) => p.w], ['points', 'score']),
  row('kneeScores', [points], ['points']),
  row('selectAuto', [points], ['points']),
  row('sparsityExchangeRates', [points], ['points']),
  row('selectOnPath', [points.map((q) => ({ ...q, stopReason: 'plateau', run: { acceptedSteps: 1 } })), 'auto'], ['points', 'select']),
  row('explicitFlowDiagnostics', [Y, Y, D], ['Y', 'X0', 'data'], { 2: optional }),
  row('explainedVariance', [D, Y], ['data', 'Y']),
  row('unfold', [T, 1], ['T', 'mode']),
  row('fold', [api.unfold(T, 1), 1, [3, 2, 2]], ['M', 'mode', 'shape']),
  row('khatriRao', [[F[1], F[2]], {}], ['matrices', 'options'], { 1: ['undefined', 'an empty object'] }),
  row('mttkrp', [T, F, 0], ['T', 'factors', 'mode']),
  row('cpReconstruct', [F, Float64Array.of(1, 2)], ['factors', 'weights'], { 1: optional }),
  row('tensorNorm', [T], ['T']),
  // As for ntf, the topic rank may exceed the dimensions: 42 is valid.
  row('stratifiedNtf', [strataT, 1, sntfOptions], ['strata', 'rank', 'options'], { 1: ['a number'] }),
  row('stratifiedNtfSync', [strataT, 1, sntfOptions], ['strata', 'rank', 'options'], { 1: ['a number'] }),
  row('stratifiedNtfLoss', [strataT, sntfState, { strataRank: 1, rank: 1 }], ['strata', 'state', 'options']),
  // A CP rank may exceed the dimensions: 42 is a valid rank for T.
  row('ntf', [T, 2, { maxIterations: 1 }], ['T', 'rank', 'options'], { 1: ['a number'], 2: optionalOptions }),
  row('ntfSync', [T, 2, { maxIterations: 1 }], ['T', 'rank', 'options'], { 1: ['a number'], 2: optionalOptions }),
  // isCsr only asks whether an object has CSR fields: any object without indptr is 'not CSR'.
  row('isCsr', [C], ['A'], { 0: ['an empty object', 'a Matrix with wrong lengths'] }),
  row('expectCsr', [C, 'C'], ['C', 'name', 'req'], { 1: ['a string'], 2: optional }),
  row('toCsr', [D], ['A']),
  // A typed array of row indices is accepted (a zero-filled Float32Array selects row 0 eight times).
  row('selectRows', [D, [0, 2]], ['A', 'rows'], { 1: ['a Float32Array'] }),
  row('stratifiedNmf', [strata, 2, { maxIterations: 1 }], ['strata', 'rank', 'options'], { 2: optionalOptions }),
  row('stratifiedNmfSync', [strata, 2, { maxIterations: 1 }], ['strata', 'rank', 'options'], { 2: optionalOptions }),
  {
    fn: 'stratifiedNmf.fromLabels',
    call: (...a) => api.stratifiedNmf.fromLabels(...(a as Parameters<typeof api.stratifiedNmf.fromLabels>)),
    args: [D, ['a', 'b', 'a'], 2, { maxIterations: 1 }],
    names: ['A', 'labels', 'rank', 'options'],
    accepts: { 3: optionalOptions },
  },
  {
    fn: 'stratifiedNmfSync.fromLabels',
    call: (...a) =>
      (api.stratifiedNmfSync as unknown as { fromLabels: (...x: unknown[]) => unknown }).fromLabels(...a),
    args: [D, ['a', 'b', 'a'], 2, { maxIterations: 1 }],
    names: ['A', 'labels', 'rank', 'options'],
    accepts: { 3: optionalOptions },
  },
  row('stratifiedNmfLoss', [strata, snmfFactors], ['strata', 'factors']),
  row('denseToCsr', [D], ['m']),
  row('pca', [D, 1, {}], ['X', 'k', 'options'], { 2: optionalOptions }),
  row('nsaEnergy', [Y, { X0: Y }], ['Y', 'options', 'X0']),
  row('csrToDense', [C], ['m']),
  row('nmf', [D, 2, { maxIterations: 1 }], ['A', 'rank', 'options'], { 2: optionalOptions }),
  row('nmfSync', [D, 2, { maxIterations: 1 }], ['A', 'rank', 'options'], { 2: optionalOptions }),
  row('crossValidateRank', [D, 'nmf', { ranks: [1, 2], folds: 2, holdout: 0.1, fitOptions: { maxIterations: 1 } }], ['data', 'method', 'options']),
  row('crossValidateRankSync', [D, 'nmf', { ranks: [1, 2], folds: 2, holdout: 0.1, fitOptions: { maxIterations: 1 } }], ['data', 'method', 'options']),
  row('crossValidateW', [D, 1, { ws: [0.5], folds: 2, holdout: 0.1, fitOptions: { maxIterations: 2 } }], ['X', 'k', 'options']),
  row('crossValidateWSync', [D, 1, { ws: [0.5], folds: 2, holdout: 0.1, fitOptions: { maxIterations: 2 } }], ['X', 'k', 'options']),
  row('reconstruct', [api.nmfSync(D, 2, { maxIterations: 1 }), {}], ['result', 'options'], { 1: optionalOptions }),
  row('energy', [Y, Y, {}], ['Y', 'X0', 'options'], { 2: optionalOptions }),
  row('energyBatch', [B, B, {}], ['Y', 'X0', 'options'], { 2: optionalOptions }),
  row('energyGradient', [Y, Y, {}], ['Z', 'X0', 'options'], { 2: optionalOptions }),
  row('retractVjp', [Y, Y, {}], ['Z', 'G', 'options'], { 2: optionalOptions }),
  row('optimizerStateBuffers', ['adam', 'adam'], ['optimizer', 'lookaheadBase'], { 1: optional }),
  row('optimizerSteps', ['adam', Y, [Y], 0.1, {}], ['optimizer', 'x0', 'gradients', 'lr', 'options'], {
    3: ['a number'],
    4: optionalOptions,
  }),
  row('nsaFlowSync', [Y, { optimizer: 'asgd', maxIterations: 2, learningRate: 0.01 }], ['Y0', 'options'], { 1: optionalOptions }),
  row('nsaFlow', [Y, { optimizer: 'asgd', maxIterations: 2, learningRate: 0.01 }], ['Y0', 'options'], { 1: optionalOptions }),
  row('estimateLearningRate', [Y, Y, { strategy: 'armijo' }], ['Y0', 'X0', 'options']),
  row('nsaFlowFit', [D, 1, { maxIterations: 2 }], ['X', 'k', 'options'], { 2: optionalOptions }),
  row('nsaFlowFitSync', [D, 1, { maxIterations: 2 }], ['X', 'k', 'options'], { 2: optionalOptions }),
  // The figure kinds of nsa-flow/plot (not the package root, which does not load the plotting library):
  // their options are refused when null (readOptions takes undefined or an object).
  ...(
    [
      ['chartPanelsPlot', [[{ series: [{ name: 's', x: [1, 2], y: [1, 2] }] }], { title: 't' }], ['panels', 'options']],
      ['dotPanelsPlot', [[{ values: [{ label: 'a', x: 1 }] }], { title: 't' }], ['panels', 'options']],
      ['curvesPlot', [[{ name: 'c', x: [1, 2], y: [2, 1] }], { title: 't' }], ['curves', 'options']],
      ['heatmapPanelsPlot', [[{ m: I2 }], { title: 't' }], ['panels', 'options']],
      ['imageGridPlot', [[{ images: [[1, 2]] }], 1, 2, { title: 't' }], ['rows', 'height', 'width', 'options']],
    ] as const
  ).map(([fn, args, names]): Row => ({
    fn: `nsa-flow/plot ${fn}`,
    call: (plot as unknown as Record<string, (...a: unknown[]) => unknown>)[fn]!,
    args: [...args],
    names: [...names],
    // 42 is a valid height or width: the call then fails on the image's length, naming rows[0].images[0].
    accepts: { [args.length - 1]: ['undefined', 'an empty object'] },
  })),
];

/**
 * Exports that take no argument, are classes, or are lib/io's file and format functions: those are
 * validated (and fuzzed) by the I/O layer's own tests.
 */
const notInTable = new Set([
  'AbortError',
  'NumericalError',
  'MissingPackageError',
  'DeviceUnavailableError',
  'FormatError',
  'getMemoryLimit',
  'getBlasThreads',
  'getConcurrency',
  'getSmallJobFlops',
  'info',
  'encodeNpy',
  'fortranToC',
  'npyHeaderBytes',
  'parseNpy',
  'readNpy',
  'readNpyHeader',
  'readNpyMatrix',
  'tensorAsMatrix',
  'writeNpy',
  'formatMatrixMarket',
  'parseMatrixMarket',
  'readMatrixMarket',
  'writeMatrixMarket',
  'parseCsv',
  'readCsv',
  'writeCsv',
  'readLabels',
  'readMatrix',
  'asDense',
]);

/** Messages that come from V8 or Node internals rather than from our checks. */
const internal = /Cannot read propert|Cannot convert|is not a function|is not iterable|Invalid typed array length|Invalid array length|Maximum call stack|undefined is not|null is not|Array buffer allocation failed/;

async function outcome(call: () => unknown): Promise<{ ok: true } | { ok: false; error: unknown }> {
  try {
    const r = call();
    if (r instanceof Promise) await r;
    return { ok: true };
  } catch (error) {
    return { ok: false, error };
  }
}

afterAll(() => {
  api.setMemoryLimit('auto');
});

describe('every export of the package root rejects bad arguments with a TypeError/RangeError naming one', () => {
  it('has a row for every function export (none forgotten)', () => {
    const functions = Object.entries(api)
      .filter(([, v]) => typeof v === 'function')
      .map(([k]) => k);
    const covered = new Set(rows.map((r) => r.fn));
    // Expected: every function export is in the table or in the documented exceptions.
    expect(functions.filter((k) => !covered.has(k) && !notInTable.has(k))).toEqual([]);
  });

  it('the valid calls of the table succeed (so that each bad value is what fails)', async () => {
    for (const r of rows) {
      const o = await outcome(() => r.call(...r.args));
      // Expected: no error for the valid arguments of each row.
      expect(o.ok ? 'ok' : `${r.fn}: ${(o.error as Error).message}`).toBe('ok');
    }
  });

  for (const r of rows) {
    it(`${r.fn}`, async () => {
      const failures: string[] = [];
      for (let pos = 0; pos < r.args.length; pos++) {
        for (const [label, value] of bad) {
          if (r.accepts?.[pos]?.includes(label)) continue;
          const args = [...r.args];
          args[pos] = value;
          const o = await outcome(() => r.call(...args));
          const where = `${r.fn} argument ${pos} (${r.names[pos]}) = ${label}`;
          if (o.ok) {
            failures.push(`${where}: accepted`);
            continue;
          }
          const e = o.error as Error;
          if (!(e instanceof TypeError || e instanceof RangeError)) {
            failures.push(`${where}: ${e?.constructor?.name} ${e?.message}`);
            continue;
          }
          if (internal.test(e.message)) failures.push(`${where}: internal message "${e.message}"`);
          else if (!r.names.some((n) => new RegExp(`(^|[^A-Za-z0-9_])${n.replace(/[.[\]]/g, '\\$&')}($|[^A-Za-z0-9_])`).test(e.message))) {
            failures.push(`${where}: message names no argument: "${e.message}"`);
          }
        }
      }
      // Expected: every bad value at every position is refused with a message naming an argument.
      expect(failures).toEqual([]);
    });
  }
});
