/**
 * nsaFlowPath: the explicit flow along an increasing grid of w, each solve warm-started from the
 * previous solution, all with the same target and the same energy family (the balanced weighting's
 * orthogonality reference is fixed by the first solve). Returns per w the trade-off the paper plots —
 * relative fidelity, orthogonality defect, sparsity — and the solution.
 */
import type { Matrix } from '../matrix.js';
import type { AsyncOptions } from '../runtime.js';
import { describeValue, expectIntact, expectMatrix, isObjectArgument, parseOptions, readFields, readList, type OptionSpecs } from '../validate.js';
import { NumericalError } from '../errors.js';
import { selectAuto, selectByKnee, selectByScore, type ExcludedPoint, type WSelection } from './auto-w.js';
import {
  asyncSpecs,
  buildRun,
  expectFlowMatrix,
  flowOptionSpecs,
  parseFlowSettings,
  runExplicitAsync,
  runExplicitSync,
  type ExplicitFlowProgress,
  type ExplicitFlowRun,
  type FlowSettingsInput,
  type NativeExplicitOptions,
} from './core.js';

export interface PathPoint {
  w: number;
  /** The solution at this w (caller's units). */
  Y: Matrix;
  /** ‖Y − X0‖ / ‖X0‖ */
  relativeFidelity: number;
  defect: number;
  /** Fraction of exact zeros. */
  sparsity: number;
  explainedVariance: number | null;
  bestEnergy: number;
  iterations: number;
  stopReason: ExplicitFlowRun['stopReason'];
  timeMs: number;
  /** The full result of this solve (traces, settings, diagnostics). */
  run: ExplicitFlowRun;
}

export interface PathProgress extends ExplicitFlowProgress {
  w: number;
  /** Index of the grid point being solved. */
  point: number;
}

export interface NsaFlowPathOptions extends FlowSettingsInput, AsyncOptions<PathProgress> {
  /** Increasing, distinct values in [0, 1]. */
  ws: readonly number[];
  X0?: Matrix;
  /** Data (n×p, rows = observations) whose explained variance each point reports. */
  data?: Matrix;
  /** Start each solve from the previous solution (default true); false = independent solves. */
  warmStart?: boolean;
  /**
   * Also pick a w: 'auto' (support separation, else the knee; auto-w.ts), 'knee' of the
   * fidelity–orthogonality curve, or the highest user score.
   */
  select?: 'auto' | 'knee' | ((point: PathPoint) => number);
}

export interface NsaFlowPathResult {
  points: PathPoint[];
  target: Matrix;
  ws: number[];
  warmStart: boolean;
  totalIterations: number;
  timeMs: number;
  selection: WSelection | null;
}

/** Validates a grid of w: an array of increasing, distinct numbers in [0, 1]. */
export function expectWGrid(v: unknown, name: string): number[] {
  const what = 'an increasing array of distinct numbers in [0, 1]';
  if (!Array.isArray(v)) throw new TypeError(`Expected ${what} for ${name} but received ${describeValue(v)}`);
  const list = readList(v, name, what, 10_000);
  if (list.length === 0) throw new RangeError(`Expected ${what} for ${name} but received an empty array`);
  list.forEach((x, i) => {
    if (typeof x !== 'number') throw new TypeError(`Expected ${what} for ${name} but received ${describeValue(x)} at [${i}]`);
    if (!(x >= 0 && x <= 1)) throw new RangeError(`Expected ${what} for ${name} but received ${describeValue(x)} at [${i}]`);
    if (i > 0 && !(x > (list[i - 1] as number))) {
      throw new RangeError(`Expected ${what} for ${name} but received ${x} after ${list[i - 1]} at [${i}]`);
    }
  });
  return list as number[];
}

/** The options of nsaFlowPath (also the CLI's `path` flags). */
export const nsaFlowPathOptionSpecs = {
  ...flowOptionSpecs,
  ...asyncSpecs,
  ws: { kind: 'custom', description: 'an increasing array of distinct numbers in [0, 1]', check: (v, name) => expectWGrid(v, name) },
  X0: { kind: 'custom', description: 'a Matrix of the shape of Y0', check: (v) => v },
  data: { kind: 'custom', description: 'a Matrix n×p', check: (v) => v },
  warmStart: { kind: 'boolean', default: true, description: 'start each solve from the previous solution' },
  select: {
    kind: 'custom',
    description: "'auto', 'knee' or a function (point) => number",
    check: (v, name) => {
      if (v === 'auto' || v === 'knee' || typeof v === 'function') return v;
      const E = typeof v === 'string' ? RangeError : TypeError;
      throw new E(`Expected 'auto', 'knee' or a function (point) => number for ${name} but received ${describeValue(v)}`);
    },
  },
} as const satisfies OptionSpecs;

interface PathPlan {
  Y0: Matrix;
  X0: Matrix | undefined;
  data: Matrix | undefined;
  ws: number[];
  warmStart: boolean;
  base: NativeExplicitOptions;
  select: NsaFlowPathOptions['select'];
  async: AsyncOptions<ExplicitFlowProgress>;
  onProgress: ((p: PathProgress) => void) | undefined;
}

export function planPath(Y0: Matrix, options: unknown, context: string): PathPlan {
  if (options === undefined || options === null) throw new TypeError(`Expected an options object with ws for ${context} but received ${describeValue(options)}`);
  const o = parseOptions<Record<string, unknown>>(nsaFlowPathOptionSpecs, options, context);
  if (o.ws === undefined) throw new TypeError(`Expected an increasing array of distinct numbers in [0, 1] for options.ws of ${context} but received undefined`);
  const { ws, X0, data, warmStart, select, signal, onProgress, progressIntervalMs, ...flow } = o;
  const base = parseFlowSettings(flow, 0, context);
  const y = expectFlowMatrix(Y0, 'Y0', context, base);
  const x = X0 === undefined ? undefined : expectFlowMatrix(X0, 'options.X0', context, base, y);
  const d = data === undefined ? undefined : expectMatrix(data, 'options.data');
  if (d && d.cols !== y.rows) {
    throw new RangeError(`Expected options.data with ${y.rows} columns (one per row of Y0) but received ${d.rows}×${d.cols}`);
  }
  expectIntact([y.data, y.rows * y.cols, 'Y0.data'], ...(x ? [[x.data, x.rows * x.cols, 'options.X0.data'] as [Float64Array, number, string]] : []));
  return {
    Y0: y,
    X0: x,
    data: d,
    ws: ws as number[],
    warmStart: warmStart as boolean,
    base,
    select: select as PathPlan['select'],
    async: { signal: signal as AbortSignal | undefined, progressIntervalMs: progressIntervalMs as number },
    onProgress: onProgress as PathPlan['onProgress'],
  };
}

/** Inputs of the i-th solve given the runs so far. */
function pointInputs(plan: PathPlan, runs: ExplicitFlowRun[], i: number): { Y0: Matrix; X0: Matrix | undefined; settings: NativeExplicitOptions } {
  const settings = { ...plan.base, w: plan.ws[i]! };
  if (i === 0) return { Y0: plan.Y0, X0: plan.X0, settings };
  const first = runs[0]!;
  // The same energy family for every w: the first solve's orthogonality reference (balanced weighting).
  if (settings.weighting === 'balanced') settings.orthogonalityReference = first.settings.orthogonalityReference;
  if (!plan.warmStart) return { Y0: plan.Y0, X0: plan.X0, settings };
  return { Y0: runs[i - 1]!.Y, X0: first.target, settings };
}

function toPoint(run: ExplicitFlowRun, w: number, timeMs: number): PathPoint {
  return {
    w,
    Y: run.Y,
    relativeFidelity: run.diagnostics.relativeFidelity,
    defect: run.diagnostics.defect,
    sparsity: run.diagnostics.sparsity,
    explainedVariance: run.diagnostics.explainedVariance,
    bestEnergy: run.bestEnergy,
    iterations: run.iterations,
    stopReason: run.stopReason,
    timeMs,
    run,
  };
}

/** Why a path point cannot be chosen, or null when it can: a solve that did not move is no solution of its w. */
function ineligibility(stopReason: string, acceptedSteps: number): string | null {
  if (stopReason === 'stalled' || acceptedSteps === 0) return 'stalled: no accepted step, the solve returned its start';
  return null;
}

/** Reads a point's stopReason and run.acceptedSteps (each once), or throws a TypeError naming the field. */
function readMovement(p: unknown, name: string): { stopReason: string; acceptedSteps: number } {
  if (!isObjectArgument(p)) throw new TypeError(`Expected a path point {w, relativeFidelity, defect, stopReason, run} for ${name} but received ${describeValue(p)}`);
  const f = readFields(p, ['stopReason', 'run'] as const, name);
  if (typeof f.stopReason !== 'string') throw new TypeError(`Expected a string for ${name}.stopReason but received ${describeValue(f.stopReason)}`);
  if (!isObjectArgument(f.run)) throw new TypeError(`Expected an object {acceptedSteps} for ${name}.run but received ${describeValue(f.run)}`);
  const r = readFields(f.run, ['acceptedSteps'] as const, `${name}.run`);
  if (typeof r.acceptedSteps !== 'number') throw new TypeError(`Expected a number for ${name}.run.acceptedSteps but received ${describeValue(r.acceptedSteps)}`);
  return { stopReason: f.stopReason, acceptedSteps: r.acceptedSteps };
}

/**
 * Runs a selection criterion on the eligible points of a path only (see ineligibility) and maps the
 * choice back to the whole grid: scores of excluded points are NaN, and the reason names them.
 * Throws NumericalError when no point moved.
 */
export function selectOnPath(pointsArg: readonly PathPoint[], select: NonNullable<NsaFlowPathOptions['select']>): WSelection {
  const what = 'a non-empty array of path points {w, relativeFidelity, defect, stopReason, run}';
  if (!Array.isArray(pointsArg)) throw new TypeError(`Expected ${what} for points but received ${describeValue(pointsArg)}`);
  const points = readList(pointsArg, 'points', what, 1 << 20) as PathPoint[];
  if (points.length === 0) throw new RangeError(`Expected ${what} for points but received an empty array`);
  if (!(select === 'auto' || select === 'knee' || typeof select === 'function')) {
    const E = typeof select === 'string' ? RangeError : TypeError;
    throw new E(`Expected 'auto', 'knee' or a function (point) => number for select but received ${describeValue(select)}`);
  }
  const excluded: ExcludedPoint[] = [];
  const kept: number[] = [];
  points.forEach((p, index) => {
    const m = readMovement(p, `points[${index}]`);
    const why = ineligibility(m.stopReason, m.acceptedSteps);
    if (why === null) kept.push(index);
    else excluded.push({ index, w: p.w, why });
  });
  if (kept.length === 0) {
    throw new NumericalError(
      `nsaFlowPath(): no w can be chosen: every solve of the grid stalled at its start (${excluded.map((e) => e.w).join(', ')}); try a smaller learningRate or more maxBacktracks`,
    );
  }
  const eligible = kept.map((i) => points[i]!);
  const inner = select === 'auto' ? selectAuto(eligible) : select === 'knee' ? selectByKnee(eligible) : selectByScore(eligible, select);
  const scores = points.map(() => NaN);
  kept.forEach((i, j) => (scores[i] = inner.scores[j]!));
  const index = kept[inner.index]!;
  const note = excluded.length === 0 ? '' : `; excluded ${excluded.map((e) => `w = ${e.w} (${e.why})`).join(', ')}`;
  return { ...inner, ws: points.map((p) => p.w), index, w: points[index]!.w, scores, reason: inner.reason + note, excluded };
}

function finish(plan: PathPlan, points: PathPoint[], runs: ExplicitFlowRun[], timeMs: number): NsaFlowPathResult {
  const selection: WSelection | null = plan.select === undefined ? null : selectOnPath(points, plan.select);
  return {
    points,
    target: runs[0]!.target,
    ws: plan.ws,
    warmStart: plan.warmStart,
    totalIterations: points.reduce((s, p) => s + p.iterations, 0),
    timeMs,
    selection,
  };
}

/** Runs a validated plan synchronously. */
export function runPathSync(plan: PathPlan): NsaFlowPathResult {
  const t0 = performance.now();
  const runs: ExplicitFlowRun[] = [];
  const points: PathPoint[] = [];
  for (let i = 0; i < plan.ws.length; i++) {
    const t = performance.now();
    const input = pointInputs(plan, runs, i);
    const run = buildRun(runExplicitSync(input.Y0, input.X0, input.settings), plan.Y0.rows, plan.Y0.cols, input.settings, plan.data);
    runs.push(run);
    points.push(toPoint(run, plan.ws[i]!, performance.now() - t));
  }
  return finish(plan, points, runs, performance.now() - t0);
}

export async function runPathAsync(plan: PathPlan): Promise<NsaFlowPathResult> {
  const t0 = performance.now();
  const runs: ExplicitFlowRun[] = [];
  const points: PathPoint[] = [];
  for (let i = 0; i < plan.ws.length; i++) {
    const t = performance.now();
    const input = pointInputs(plan, runs, i);
    const onProgress = plan.onProgress;
    const async: AsyncOptions<ExplicitFlowProgress> = {
      ...plan.async,
      onProgress: onProgress && ((p) => onProgress({ ...p, w: plan.ws[i]!, point: i })),
    };
    const raw = await runExplicitAsync(input.Y0, input.X0, input.settings, async);
    const run = buildRun(raw, plan.Y0.rows, plan.Y0.cols, input.settings, plan.data);
    runs.push(run);
    points.push(toPoint(run, plan.ws[i]!, performance.now() - t));
  }
  return finish(plan, points, runs, performance.now() - t0);
}

/**
 * Solves the explicit flow along `options.ws` (increasing, distinct, in [0, 1]) with warm starts.
 * Options are those of nsaFlowExplicit (w excepted) plus ws, warmStart, data and select.
 */
export function nsaFlowPath(Y0: Matrix, options: NsaFlowPathOptions): Promise<NsaFlowPathResult> {
  let plan: PathPlan;
  try {
    plan = planPath(Y0, options, 'nsaFlowPath()');
  } catch (err) {
    return Promise.reject(err);
  }
  return runPathAsync(plan);
}

export function nsaFlowPathSync(Y0: Matrix, options: Omit<NsaFlowPathOptions, 'signal' | 'onProgress' | 'progressIntervalMs'>): NsaFlowPathResult {
  const plan = planPath(Y0, options, 'nsaFlowPathSync()');
  return runPathSync(plan);
}
