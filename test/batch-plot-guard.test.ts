/**
 * Every function exported by nsa-flow/batch and nsa-flow/plot checks its arguments before doing
 * anything: a bad argument is a TypeError (wrong type) or RangeError (out of range) whose message
 * names it, in the shape "Expected <what> for <name> but received <value>". The contents of a jobs
 * file keep their UsageError (the CLI's class for a bad jobs file), naming the job. One table row per
 * export; a new export without a row fails the last test.
 */
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, describe, expect, it } from 'vitest';

import * as batch from '../lib/batch/index.js';
import { UsageError } from '../lib/cli/flags.js';
import * as plot from '../lib/plot/index.js';

const root = mkdtempSync(join(tmpdir(), 'nsa-guard-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** A folder path that does not exist yet: a refused call must not create it. */
let fresh = 0;
const missingDir = (): string => join(root, `never-${fresh++}`);

/** An object whose `key` getter throws: the call must report the field, not the getter's Error. */
const throwingGetter = (key: string): object =>
  Object.defineProperty({}, key, {
    enumerable: true,
    get() {
      throw new Error('boom');
    },
  });
const getterMessage = (name: string): string => `Expected a plain value for ${name} but received a getter that throws (boom)`;

type ErrorClass = typeof TypeError | typeof RangeError | typeof UsageError;
/** [label, call, error class, exact message or pattern] */
type Row = [string, () => unknown, ErrorClass, string | RegExp];

const noRedis = 'redis://127.0.0.1:1'; // nothing listens there: a call that got as far as connecting would fail differently
const matrix = { rows: 1, cols: 2, data: new Float64Array([1, 2]) };
const job = { id: 'retract-0123456789ab', method: 'retract', input: { Y: 'y.npy' }, options: {} };
const summary = { outDir: root, total: 0, done: 0, skipped: 0, failed: 0, cancelled: 0, seconds: 0, jobsPerSecond: 0, jobs: [] };
const outcome = { id: job.id, method: 'retract', input: { Y: 'y.npy' }, options: {}, status: 'done', seconds: 1 };
const curve = { ws: [0, 1], fidelity: [1, 2], orthogonality: [2, 1] };

const batchRows: Record<string, Row[]> = {
  runBatch: [
    ['options undefined', () => batch.runBatch([], undefined as never), TypeError, 'Expected batch options {outDir, concurrency, baseDir, onProgress, signal} for options but received undefined'],
    ['options {}', () => batch.runBatch([], {} as never), TypeError, 'Expected a path (a non-empty string) for options.outDir but received undefined'],
    ['outDir 42', () => batch.runBatch([], { outDir: 42 as never }), TypeError, 'Expected a path (a non-empty string) for options.outDir but received 42'],
    ['outDir getter', () => batch.runBatch([], throwingGetter('outDir') as never), TypeError, getterMessage('options.outDir')],
    ['misspelt key', () => batch.runBatch([], { outDir: missingDir(), concurency: 2 } as never), TypeError, /^Unknown key 'concurency' in options \(did you mean concurrency\?\); valid keys are: outDir, concurrency/],
    ['concurrency 0', () => batch.runBatch([], { outDir: missingDir(), concurrency: 0 }), RangeError, 'Expected an integer ≥ 1 for options.concurrency but received 0'],
    ['concurrency 1.5', () => batch.runBatch([], { outDir: missingDir(), concurrency: 1.5 }), TypeError, 'Expected an integer ≥ 1 for options.concurrency but received 1.5'],
    ['onProgress 5', () => batch.runBatch([], { outDir: missingDir(), onProgress: 5 as never }), TypeError, 'Expected a function for options.onProgress but received 5'],
    ['signal {}', () => batch.runBatch([], { outDir: missingDir(), signal: {} as never }), TypeError, 'Expected an AbortSignal for options.signal but received an object'],
    ['jobs 42', () => batch.runBatch(42 as never, { outDir: missingDir() }), TypeError, 'Expected a list of jobs, a grid or {jobs, grid} for jobs but received 42'],
    ['jobs null', () => batch.runBatch(null as never, { outDir: missingDir() }), TypeError, 'Expected a list of jobs, a grid or {jobs, grid} for jobs but received null'],
    ['jobs getter', () => batch.runBatch(throwingGetter('jobs') as never, { outDir: missingDir() }), TypeError, getterMessage('jobs.jobs')],
    ['jobs [5]', () => batch.runBatch([5] as never, { outDir: missingDir() }), UsageError, 'Expected {method, input, options} for job 0 but received 5'],
  ],
  executeJob: [
    ['job undefined', () => batch.executeJob(undefined as never, root), TypeError, 'Expected a job {id, method, input, options} for job but received undefined'],
    ['job "x"', () => batch.executeJob('x' as never, root), TypeError, 'Expected a job {id, method, input, options} for job but received the string "x"'],
    ['unknown key', () => batch.executeJob({ ...job, extra: 1 } as never, root), TypeError, /^Unknown key 'extra' in job; valid keys are: id, method, input, options$/],
    ['method 5', () => batch.executeJob({ ...job, method: 5 } as never, root), TypeError, 'Expected a method name for job.method but received 5'],
    ['id ../x', () => batch.executeJob({ ...job, id: '../x' }, root), RangeError, 'Expected an id of the form <method>-<12 hex digits> for job.id but received the string "../x"'],
    ['unregistered method', () => batch.executeJob({ ...job, id: 'retrac-0123456789ab', method: 'retrac' }, root), RangeError, /^Expected a registered method for job\.method but received the string "retrac" \(did you mean retract\?\); registered methods: /],
    ['input {Y: 5}', () => batch.executeJob({ ...job, input: { Y: 5 } } as never, root), TypeError, 'Expected a path for job.input.Y but received 5'],
    ['options []', () => batch.executeJob({ ...job, options: [] } as never, root), TypeError, 'Expected an options object for job.options but received an array of length 0'],
    ['input getter', () => batch.executeJob({ ...job, input: throwingGetter('Y') } as never, root), TypeError, getterMessage('job.input.Y')],
    ['outDir 42', () => batch.executeJob(job, 42 as never), TypeError, 'Expected a path (a non-empty string) for outDir but received 42'],
    ['outDir ""', () => batch.executeJob(job, ''), RangeError, 'Expected a path (a non-empty string without NUL bytes) for outDir but received the string ""'],
    ['misspelt option', () => batch.executeJob(job, missingDir(), { signl: undefined } as never), TypeError, /^Unknown key 'signl' in options \(did you mean signal\?\)/],
    ['cache {}', () => batch.executeJob(job, missingDir(), { cache: {} as never }), TypeError, 'Expected a Map for options.cache but received an object'],
    ['worker 1', () => batch.executeJob(job, missingDir(), { worker: 1 as never }), TypeError, 'Expected a string for options.worker but received 1'],
  ],
  expandJobs: [
    ['undefined', () => batch.expandJobs(undefined), TypeError, 'Expected a list of jobs, a grid or {jobs, grid} for file but received undefined'],
    ['null', () => batch.expandJobs(null), TypeError, 'Expected a list of jobs, a grid or {jobs, grid} for file but received null'],
    ['number', () => batch.expandJobs(3), TypeError, 'Expected a list of jobs, a grid or {jobs, grid} for file but received 3'],
    ['string', () => batch.expandJobs('jobs.json'), TypeError, 'Expected a list of jobs, a grid or {jobs, grid} for file but received the string "jobs.json"'],
    ['{} (a grid without a method)', () => batch.expandJobs({}), UsageError, "Expected 'method' or 'methods' in grid"],
    ['[1]', () => batch.expandJobs([1]), UsageError, 'Expected {method, input, options} for job 0 but received 1'],
    ['getter', () => batch.expandJobs(throwingGetter('grid')), TypeError, getterMessage('file.grid')],
    ['methods 5', () => batch.expandJobs({ methods: 5, input: 'a.npy' }), UsageError, 'Expected a list for methods of grid but received 5'],
    ['methods [5]', () => batch.expandJobs({ methods: [5], input: 'a.npy' }), UsageError, 'Expected a method name (a string) in grid but received 5'],
    ['options getter', () => batch.expandJobs({ method: 'retract', input: 'a.npy', options: throwingGetter('w') }), TypeError, getterMessage('grid.options.w')],
  ],
  prepareJobs: [
    ['specs undefined', () => batch.prepareJobs(undefined as never, root), TypeError, 'Expected a list of job specs {method, input, options} for specs but received undefined'],
    ['specs {}', () => batch.prepareJobs({} as never, root), TypeError, 'Expected a list of job specs {method, input, options} for specs but received an object'],
    ['baseDir 42', () => batch.prepareJobs([], 42 as never), TypeError, 'Expected a path (a non-empty string) for baseDir but received 42'],
    ['baseDir ""', () => batch.prepareJobs([], ''), RangeError, 'Expected a path (a non-empty string without NUL bytes) for baseDir but received the string ""'],
    ['method 5', () => batch.prepareJobs([{ method: 5, input: 'a' }] as never, root), UsageError, 'Expected {method, input, options} for job 0 but received an object'],
    ['method getter', () => batch.prepareJobs([throwingGetter('method')] as never, root), TypeError, getterMessage('job 0.method')],
  ],
  jobId: [
    ['method 5', () => batch.jobId(5 as never, {}, {}), TypeError, 'Expected a string for method but received 5'],
    ['input null', () => batch.jobId('retract', null as never, {}), TypeError, 'Expected input paths {name: path} for input but received null'],
    ['input {Y: 5}', () => batch.jobId('retract', { Y: 5 } as never, {}), TypeError, 'Expected a path for input.Y but received 5'],
    ['options [1]', () => batch.jobId('retract', {}, [1] as never), TypeError, 'Expected an options object for options but received an array of length 1'],
    ['options getter', () => batch.jobId('retract', {}, throwingGetter('w') as never), TypeError, getterMessage('options.w')],
    ['a BigInt option', () => batch.jobId('retract', {}, { w: 10n }), TypeError, 'Expected JSON values for options but received values that cannot be written as JSON (Do not know how to serialize a BigInt)'],
  ],
  formatSummary: [
    ['undefined', () => batch.formatSummary(undefined as never), TypeError, 'Expected a batch summary {outDir, total, done, …, jobs} for summary but received undefined'],
    ['{}', () => batch.formatSummary({} as never), TypeError, 'Expected a list of job outcomes for summary.jobs but received undefined'],
    ['jobs [5]', () => batch.formatSummary({ ...summary, jobs: [5] } as never), TypeError, 'Expected a job outcome {id, status, seconds, input, options, …} for summary.jobs[0] but received 5'],
    ['status x', () => batch.formatSummary({ ...summary, jobs: [{ ...outcome, status: 'x' }] } as never), RangeError, 'Expected one of done, skipped, failed, cancelled for summary.jobs[0].status but received the string "x"'],
    ['seconds "1"', () => batch.formatSummary({ ...summary, jobs: [{ ...outcome, seconds: '1' }] } as never), TypeError, 'Expected a non-negative number for summary.jobs[0].seconds but received the string "1"'],
    ['total -1', () => batch.formatSummary({ ...summary, total: -1 }), RangeError, 'Expected a finite non-negative number for summary.total but received -1'],
    ['jobs getter', () => batch.formatSummary(throwingGetter('jobs') as never), TypeError, getterMessage('summary.jobs')],
  ],
  enqueueBatch: [
    ['options undefined', () => batch.enqueueBatch([], undefined as never), TypeError, /^Expected enqueue options \{url, outDir, .*\} for options but received undefined$/],
    ['url 5', () => batch.enqueueBatch([], { url: 5 as never, outDir: missingDir() }), TypeError, 'Expected a URL redis://host:port for options.url but received 5'],
    ['outDir missing', () => batch.enqueueBatch([], { url: noRedis } as never), TypeError, 'Expected a path (a non-empty string) for options.outDir but received undefined'],
    ['misspelt key', () => batch.enqueueBatch([], { url: noRedis, outDir: missingDir(), waits: false } as never), TypeError, /^Unknown key 'waits' in options \(did you mean wait\?\)/],
    ['timeoutMs -1', () => batch.enqueueBatch([], { url: noRedis, outDir: missingDir(), timeoutMs: -1 }), RangeError, 'Expected a finite non-negative number for options.timeoutMs but received -1'],
    ['wait "no"', () => batch.enqueueBatch([], { url: noRedis, outDir: missingDir(), wait: 'no' as never }), TypeError, 'Expected a boolean for options.wait but received the string "no"'],
    ['queueName a:b', () => batch.enqueueBatch([], { url: noRedis, outDir: missingDir(), queueName: 'a:b' }), RangeError, "Expected a queue name (non-empty, without ':') for options.queueName but received the string \"a:b\""],
    ['jobs 42', () => batch.enqueueBatch(42 as never, { url: noRedis, outDir: missingDir() }), TypeError, 'Expected a list of jobs, a grid or {jobs, grid} for jobs but received 42'],
  ],
  runWorker: [
    ['options undefined', () => batch.runWorker(undefined as never), TypeError, /^Expected worker options \{url, outDir, .*\} for options but received undefined$/],
    ['url missing', () => batch.runWorker({ outDir: missingDir() } as never), TypeError, 'Expected a URL redis://host:port for options.url but received undefined'],
    ['outDir 42', () => batch.runWorker({ url: noRedis, outDir: 42 as never }), TypeError, 'Expected a path (a non-empty string) for options.outDir but received 42'],
    ['inputRoots "x"', () => batch.runWorker({ url: noRedis, outDir: missingDir(), inputRoots: 'x' as never }), TypeError, 'Expected an array of directory paths for options.inputRoots but received the string "x"'],
    ['inputRoots [5]', () => batch.runWorker({ url: noRedis, outDir: missingDir(), inputRoots: [5] as never }), TypeError, 'Expected a path (a non-empty string) for options.inputRoots[0] but received 5'],
    ['lockMs 0', () => batch.runWorker({ url: noRedis, outDir: missingDir(), lockMs: 0 }), RangeError, 'Expected an integer ≥ 1 for options.lockMs but received 0'],
    ['concurrency NaN', () => batch.runWorker({ url: noRedis, outDir: missingDir(), concurrency: NaN }), TypeError, 'Expected an integer ≥ 1 for options.concurrency but received NaN'],
    ['onEvent 1', () => batch.runWorker({ url: noRedis, outDir: missingDir(), onEvent: 1 as never }), TypeError, 'Expected a function for options.onEvent but received 1'],
    ['misspelt key', () => batch.runWorker({ url: noRedis, outDir: missingDir(), inputRoot: [] } as never), TypeError, /^Unknown key 'inputRoot' in options \(did you mean inputRoots\?\)/],
  ],
  loadQueuePackages: [
    ['importer 5', () => batch.loadQueuePackages(5 as never), TypeError, 'Expected a function (name) => Promise<module> for importer but received 5'],
    ['importer "bullmq"', () => batch.loadQueuePackages('bullmq' as never), TypeError, 'Expected a function (name) => Promise<module> for importer but received the string "bullmq"'],
  ],
};

const plotRows: Record<string, Row[]> = {
  renderSvg: [
    ['undefined', () => plot.renderSvg(undefined as never), TypeError, 'Expected a Vega-Lite spec object for spec but received undefined'],
    ['string', () => plot.renderSvg('{}' as never), TypeError, 'Expected a Vega-Lite spec object for spec but received the string "{}"'],
    ['array', () => plot.renderSvg([] as never), TypeError, 'Expected a Vega-Lite spec object for spec but received an array of length 0'],
    ['a sparse array of length 1e9', () => plot.renderSvg({ data: { values: new Array(1e9) }, mark: 'point' } as never), RangeError, 'Expected a Vega-Lite spec of at most 10000000 values in all for spec but spec.data.values holds 1000000000, past that'],
    ['a getter', () => plot.renderSvg({ mark: 'point', data: throwingGetter('values') } as never), TypeError, 'Expected a readable value for spec.data.values but reading it threw Error: boom'],
  ],
  convergencePlot: [
    ['undefined', () => plot.convergencePlot(undefined as never), TypeError, 'Expected an object of trace columns for traces but received undefined'],
    ['number', () => plot.convergencePlot(5 as never), TypeError, 'Expected an object of trace columns for traces but received 5'],
    ['column 5', () => plot.convergencePlot({ fidelity: 5 } as never), TypeError, 'Expected an array of numbers for traces.fidelity but received 5'],
    ['column {length: 1e15}', () => plot.convergencePlot({ fidelity: { length: 1e15 } } as never), TypeError, 'Expected an array of numbers for traces.fidelity but received an object'],
    ['column getter', () => plot.convergencePlot(throwingGetter('fidelity') as never), TypeError, getterMessage('traces.fidelity')],
    ['options 5', () => plot.convergencePlot({ fidelity: [1, 2] }, 5 as never), TypeError, /^Expected convergencePlot\(\) options \{title, x, log, width, height, maxPoints\} for options but received 5$/],
    ['misspelt option', () => plot.convergencePlot({ fidelity: [1, 2] }, { maxPoint: 3 } as never), TypeError, /^Unknown key 'maxPoint' in options \(did you mean maxPoints\?\)/],
    ['width 10', () => plot.convergencePlot({ fidelity: [1, 2] }, { width: 10 }), RangeError, /for options\.width of convergencePlot\(\) but received 10$/],
    ['option getter', () => plot.convergencePlot({ fidelity: [1, 2] }, throwingGetter('title') as never), TypeError, getterMessage('options.title')],
  ],
  heatmapSpec: [
    ['undefined', () => plot.heatmapSpec(undefined as never), TypeError, 'Expected a Matrix {rows, cols, data: Float64Array} for m but received undefined'],
    ['rows getter', () => plot.heatmapSpec(throwingGetter('rows') as never), TypeError, getterMessage('m.rows')],
    ['data [1, 2]', () => plot.heatmapSpec({ rows: 1, cols: 2, data: [1, 2] } as never), TypeError, /for m\.data but received an array of length 2$/],
    ['misspelt option', () => plot.heatmapSpec(matrix, { topn: 2 } as never), TypeError, /^Unknown key 'topn' in options \(did you mean topN\?\)/],
    ['rowNames [1]', () => plot.heatmapSpec(matrix, { rowNames: [1] } as never), TypeError, 'Expected an array of strings for options.rowNames of heatmapPlot() but received 1 at [0]'],
  ],
  heatmapPlot: [
    ['null', () => plot.heatmapPlot(null as never), TypeError, 'Expected a Matrix {rows, cols, data: Float64Array} for m but received null'],
    ['maxRows 0', () => plot.heatmapPlot(matrix, { maxRows: 0 }), RangeError, /for options\.maxRows of heatmapPlot\(\) but received 0$/],
  ],
  tradeoffPlot: [
    ['undefined', () => plot.tradeoffPlot(undefined as never), TypeError, 'Expected a path result {ws, fidelity, orthogonality, sparsity?} for path but received undefined'],
    ['{}', () => plot.tradeoffPlot({} as never), TypeError, 'Expected a path result {ws, fidelity, orthogonality, sparsity?} for path but it has no array ws'],
    ['ws 5', () => plot.tradeoffPlot({ ...curve, ws: 5 } as never), TypeError, 'Expected an array of numbers for path.ws but received 5'],
    ['sparsity "x"', () => plot.tradeoffPlot({ ...curve, sparsity: 'x' } as never), TypeError, 'Expected an array of numbers for path.sparsity but received the string "x"'],
    ['ws getter', () => plot.tradeoffPlot(throwingGetter('ws') as never), TypeError, getterMessage('path.ws')],
    ['selectedW 2', () => plot.tradeoffPlot(curve, { selectedW: 2 }), RangeError, /for options\.selectedW of tradeoffPlot\(\) but received 2$/],
  ],
  rankCurvePlot: [
    ['undefined', () => plot.rankCurvePlot(undefined as never), TypeError, 'Expected a rank curve {ranks, testMean, testSd, trainMean?} for curve but received undefined'],
    ['ranks 5', () => plot.rankCurvePlot({ ranks: 5, testMean: [1], testSd: [0] } as never), TypeError, 'Expected an array of numbers for curve.ranks but received 5'],
    ['ranks getter', () => plot.rankCurvePlot(throwingGetter('ranks') as never), TypeError, getterMessage('curve.ranks')],
    ['chosenRank 1.5', () => plot.rankCurvePlot({ ranks: [1], testMean: [1], testSd: [0] }, { chosenRank: 1.5 }), RangeError, /for options\.chosenRank of rankCurvePlot\(\) but received 1\.5$/],
  ],
  plotResult: [
    ['resultPath undefined', () => plot.plotResult(undefined as never, root), TypeError, 'Expected a path (a non-empty string) for resultPath but received undefined'],
    ['outDir 5', () => plot.plotResult('result.json', 5 as never), TypeError, 'Expected a path (a non-empty string) for outDir but received 5'],
    ['outDir ""', () => plot.plotResult('result.json', ''), RangeError, 'Expected a path (a non-empty string without NUL bytes) for outDir but received the string ""'],
    // Checked before the (missing) result is read.
    ['misspelt option', () => plot.plotResult(join(root, 'missing'), missingDir(), { maxHeatmap: 1 } as never), TypeError, /^Unknown key 'maxHeatmap' in options \(did you mean maxHeatmaps\?\)/],
  ],
  readPlotResult: [
    ['number', () => plot.readPlotResult(42 as never), TypeError, 'Expected a path for resultPath but received 42'],
    ['NUL byte', () => plot.readPlotResult('a\0b'), RangeError, 'Expected a path (without NUL bytes) for resultPath but received the string "a\\u0000b"'],
  ],
  chartPanelsPlot: [
    ['panels undefined', () => plot.chartPanelsPlot(undefined as never), TypeError, 'Expected an array of chart panels {title, x, y, mark, series, rule} for panels but received undefined'],
    ['panels []', () => plot.chartPanelsPlot([]), RangeError, 'Expected an array of chart panels {title, x, y, mark, series, rule} (at least one) for panels but received an empty array'],
    ['y shorter than x', () => plot.chartPanelsPlot([{ series: [{ name: 's', x: [1, 2], y: [1] }] }]), RangeError, 'Expected 2 values (one per x) for panels[0].series[0].y but received 1'],
    ['series getter', () => plot.chartPanelsPlot([throwingGetter('series') as never]), TypeError, getterMessage('panels[0].series')],
    ['misspelt option', () => plot.chartPanelsPlot([{ series: [{ name: 's', x: [1], y: [1] }] }], { column: 1 } as never), TypeError, /^Unknown key 'column' in options \(did you mean columns\?\)/],
  ],
  dotPanelsPlot: [
    ['panels 5', () => plot.dotPanelsPlot(5 as never), TypeError, 'Expected an array of dot panels {title, x, values} for panels but received 5'],
    ['value x "1"', () => plot.dotPanelsPlot([{ values: [{ label: 'a', x: '1' as never }] }]), TypeError, 'Expected a number (or null for a gap) for panels[0].values[0].x but received the string "1"'],
    ['values getter', () => plot.dotPanelsPlot([throwingGetter('values') as never]), TypeError, getterMessage('panels[0].values')],
  ],
  curvesPlot: [
    ['curves null', () => plot.curvesPlot(null as never), TypeError, 'Expected an array of series {name, x, y} for curves but received null'],
    ['x 5', () => plot.curvesPlot([{ name: 'c', x: 5 as never, y: [1] }]), TypeError, 'Expected an array of numbers for curves[0].x but received 5'],
    ['width 10', () => plot.curvesPlot([{ name: 'c', x: [1], y: [1] }], { width: 10 }), RangeError, /for options\.width of curvesPlot\(\) but received 10$/],
  ],
  heatmapPanelsPlot: [
    ['panels undefined', () => plot.heatmapPanelsPlot(undefined as never), TypeError, 'Expected an array of heatmap panels {m, options} for panels but received undefined'],
    ['m getter', () => plot.heatmapPanelsPlot([throwingGetter('m') as never]), TypeError, getterMessage('panels[0].m')],
    ['maxCols 0', () => plot.heatmapPanelsPlot([{ m: matrix, options: { maxCols: 0 } }]), RangeError, /for options\.maxCols of panels\[0\] of heatmapPanelsPlot\(\) but received 0$/],
  ],
  imageGridPlot: [
    ['rows undefined', () => plot.imageGridPlot(undefined as never, 1, 1), TypeError, 'Expected an array of image rows {title, images} for rows but received undefined'],
    ['height "2"', () => plot.imageGridPlot([{ images: [[1]] }], '2' as never, 1), TypeError, 'Expected an integer ≥ 1 (pixels) for height but received the string "2"'],
    ['image of the wrong size', () => plot.imageGridPlot([{ images: [[1, 2, 3]] }], 2, 2), RangeError, 'Expected 4 values (height × width) for rows[0].images[0] but received 3'],
  ],
  loadPlotPackages: [['importer 5', () => plot.loadPlotPackages(5 as never), TypeError, 'Expected a function (name) => Promise<module> for importer but received 5']],
};

async function outcomeOf(call: () => unknown): Promise<unknown> {
  try {
    await call();
  } catch (err) {
    return err;
  }
  return undefined;
}

function checkRows(rows: Record<string, Row[]>): void {
  for (const [fn, cases] of Object.entries(rows)) {
    describe(fn, () => {
      it.each(cases)('%s', async (_label, call, cls, message) => {
        const err = await outcomeOf(call);
        expect(err).toBeInstanceOf(cls);
        if (typeof message === 'string') expect((err as Error).message).toBe(message);
        else expect((err as Error).message).toMatch(message);
      });
    });
  }
}

describe('nsa-flow/batch: bad arguments', () => checkRows(batchRows));
describe('nsa-flow/plot: bad arguments', () => checkRows(plotRows));

describe('refused calls do nothing', () => {
  it('no output folder refused by a check was created (runBatch, executeJob, enqueueBatch, runWorker, plotResult)', () => {
    // Every missingDir() above was given to a call that had to refuse before creating anything.
    expect(fresh).toBeGreaterThan(20);
    expect(readdirSync(root).filter((n) => n.startsWith('never-'))).toEqual([]);
  });

  it('enqueueBatch and runWorker refuse bad arguments before contacting Redis (no QueueConnectionError)', async () => {
    // With a valid outDir and url, the misspelt key is the only problem: had the call gone on to
    // connect, port 1 would have refused it with a QueueConnectionError instead.
    const a = await outcomeOf(() => batch.enqueueBatch([], { url: noRedis, outDir: root, timeoutMs: 1, signl: null } as never));
    expect((a as Error).name).toBe('TypeError');
    const b = await outcomeOf(() => batch.runWorker({ url: noRedis, outDir: root, lockMs: -5 }));
    expect((b as Error).name).toBe('RangeError');
    expect(existsSync(join(root, 'batch.json'))).toBe(false);
  });

  it("a failing injected importer's own error passes through (not called a missing package)", async () => {
    const own = new Error('importer failed');
    expect(await outcomeOf(() => plot.loadPlotPackages(async () => Promise.reject(own)))).toBe(own);
    expect(await outcomeOf(() => batch.loadQueuePackages(async () => Promise.reject(null)))).toBe(null);
  });
});

describe('every export has a row', () => {
  // Error classes are constructed, not called with arguments.
  const errorClasses = new Set(['QueueTimeoutError', 'JobRefusedError', 'MissingPackageError']);
  const functionsOf = (mod: Record<string, unknown>): string[] =>
    Object.entries(mod)
      .filter(([name, v]) => typeof v === 'function' && !errorClasses.has(name))
      .map(([name]) => name)
      .sort();

  it('nsa-flow/batch', () => {
    expect(functionsOf(batch)).toEqual(Object.keys(batchRows).sort());
  });
  it('nsa-flow/plot', () => {
    expect(functionsOf(plot)).toEqual(Object.keys(plotRows).sort());
  });
});
