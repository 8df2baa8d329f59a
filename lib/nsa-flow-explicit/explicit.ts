/**
 * nsaFlowExplicit: the paper's NSA-Flow (SPEC.md §6, the reference's `legacy.nsa_flow`), with its two
 * defects fixed, in one native call per solve. Named apart from the exact-gradient `nsaFlow` (SPEC §5)
 * because the two are different algorithms with different options (no retraction VJP, no lr strategies,
 * a backtracking rule instead) and different results; a later `nsaFlow({method})` can dispatch to both.
 *
 * w: a number in [0, 1]; 'auto' (along a warm-started path over `ws`: the largest w that still
 * separates supports — zeroes entries at par or better against the fidelity error — else the knee of the
 * fidelity–orthogonality trade-off, see auto-w.ts); or 'crossValidated' (the highest `score(point)` along that path, where
 * the user's score evaluates a solution on held-out data).
 */
import type { Matrix } from '../matrix.js';
import type { AsyncOptions } from '../runtime.js';
import { describeValue, expectIntact, expectMatrix, parseOptions, type OptionSpecs } from '../validate.js';
import { refusedFidelityMissingOptionSpecs } from '../nsa-flow/certified.js';
import { selectAuto, selectByKnee, selectByScore, type WSelection } from './auto-w.js';
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
} from './core.js';
import { expectWGrid, planPath, runPathAsync, runPathSync, type NsaFlowPathResult, type PathPoint } from './path.js';

/** The grid that w: 'auto' and 'crossValidated' solve when `ws` is not given. */
export const defaultWGrid: readonly number[] = [0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95];

export interface NsaFlowExplicitOptions extends FlowSettingsInput, AsyncOptions<ExplicitFlowProgress> {
  /** Target; missing: N(Y0) and a start jittered by 5% of Y0's RMS from `seed` (as the reference). */
  X0?: Matrix;
  /** Orthogonality weight in [0, 1], or 'auto' / 'crossValidated' (default 0.5). */
  w?: number | 'auto' | 'crossValidated';
  /** Grid for 'auto' / 'crossValidated' (default defaultWGrid). */
  ws?: readonly number[];
  /** For 'crossValidated': higher is better (e.g. held-out explained variance of point.Y). */
  score?: (point: PathPoint) => number;
  /** Data (n×p, rows = observations) whose explained variance the diagnostics report. */
  data?: Matrix;
}

export interface NsaFlowExplicitResult extends ExplicitFlowRun {
  /** How w was chosen, for w: 'auto' | 'crossValidated' (settings.w holds the chosen value). */
  wSelection: (WSelection & { path: Omit<NsaFlowPathResult, 'points'> & { points: Omit<PathPoint, 'run' | 'Y'>[] } }) | null;
}

const explicitSpecs = {
  ...flowOptionSpecs,
  ...asyncSpecs,
  X0: { kind: 'custom', description: 'a Matrix of the shape of Y0', check: (v) => v },
  data: { kind: 'custom', description: 'a Matrix n×p', check: (v) => v },
  w: {
    kind: 'custom',
    description: "a number in [0, 1], 'auto' or 'crossValidated'",
    default: 0.5,
    check: (v, name) => {
      if (v === 'auto' || v === 'crossValidated') return v;
      const what = "a number in [0, 1], 'auto' or 'crossValidated'";
      if (typeof v !== 'number') throw new TypeError(`Expected ${what} for ${name} but received ${describeValue(v)}`);
      if (!(v >= 0 && v <= 1)) throw new RangeError(`Expected ${what} for ${name} but received ${describeValue(v)}`);
      return v;
    },
  },
  ws: { kind: 'custom', description: 'an increasing array of distinct numbers in [0, 1]', check: (v, name) => expectWGrid(v, name) },
  score: { kind: 'function', description: "scores a path point for w: 'crossValidated' (higher is better)" },
  ...refusedFidelityMissingOptionSpecs('the explicit flow has no weighted fidelity'),
} as const satisfies OptionSpecs;

type Plan =
  | { kind: 'single'; Y0: Matrix; X0: Matrix | undefined; data: Matrix | undefined; settings: ReturnType<typeof parseFlowSettings>; async: AsyncOptions<ExplicitFlowProgress> }
  | { kind: 'path'; path: ReturnType<typeof planPath>; score: ((p: PathPoint) => number) | undefined };

function plan(Y0: Matrix, options: unknown, context: string): Plan {
  const o = parseOptions<Record<string, unknown>>(explicitSpecs, options, context);
  const { X0, data, w, ws, score, signal, onProgress, progressIntervalMs, ...flow } = o;
  if (w === 'auto' || w === 'crossValidated') {
    if (w === 'crossValidated' && score === undefined) {
      throw new TypeError(`Expected a function for options.score of ${context} (required by w: 'crossValidated') but received undefined`);
    }
    const pathOptions = { ...flow, ws: ws ?? defaultWGrid, X0, data, signal, onProgress, progressIntervalMs, select: w === 'auto' ? 'auto' : score };
    return { kind: 'path', path: planPath(Y0, pathOptions, context), score: score as ((p: PathPoint) => number) | undefined };
  }
  if (ws !== undefined || score !== undefined) {
    throw new TypeError(`Unexpected options.${ws !== undefined ? 'ws' : 'score'} for ${context}: it is used only with w: 'auto' or 'crossValidated'`);
  }
  const settings = parseFlowSettings(flow, w as number, context);
  const y = expectFlowMatrix(Y0, 'Y0', context, settings);
  const x = X0 === undefined ? undefined : expectFlowMatrix(X0, 'options.X0', context, settings, y);
  const d = data === undefined ? undefined : expectMatrix(data, 'options.data');
  if (d && d.cols !== y.rows) {
    throw new RangeError(`Expected options.data with ${y.rows} columns (one per row of Y0) but received ${d.rows}×${d.cols}`);
  }
  // Reading X0 and data ran the caller's getters: Y0's buffer must still be what was validated.
  expectIntact([y.data, y.rows * y.cols, 'Y0.data'], ...(x ? [[x.data, x.rows * x.cols, 'options.X0.data'] as [Float64Array, number, string]] : []));
  return {
    kind: 'single',
    Y0: y,
    X0: x,
    data: d,
    settings,
    async: { signal: signal as AbortSignal | undefined, onProgress: onProgress as (p: ExplicitFlowProgress) => void, progressIntervalMs: progressIntervalMs as number },
  };
}

function fromPath(path: NsaFlowPathResult): NsaFlowExplicitResult {
  const sel = path.selection!;
  const chosen = path.points[sel.index]!.run;
  const { points, ...rest } = path;
  return {
    ...chosen,
    wSelection: { ...sel, path: { ...rest, points: points.map(({ run: _run, Y: _y, ...p }) => p) } },
  };
}

/** Runs the explicit flow as an async job (onProgress, signal). See the module comment for w. */
export function nsaFlowExplicit(Y0: Matrix, options?: NsaFlowExplicitOptions): Promise<NsaFlowExplicitResult> {
  let p: Plan;
  try {
    p = plan(Y0, options, 'nsaFlowExplicit()');
  } catch (err) {
    return Promise.reject(err);
  }
  if (p.kind === 'path') return runPathAsync(p.path).then(fromPath);
  const { Y0: y, X0, data, settings } = p;
  return runExplicitAsync(y, X0, settings, p.async).then((raw) => ({ ...buildRun(raw, y.rows, y.cols, settings, data), wSelection: null }));
}

/** The synchronous form, for small problems (blocks the event loop). */
export function nsaFlowExplicitSync(
  Y0: Matrix,
  options?: Omit<NsaFlowExplicitOptions, 'signal' | 'onProgress' | 'progressIntervalMs'>,
): NsaFlowExplicitResult {
  const p = plan(Y0, options, 'nsaFlowExplicitSync()');
  if (p.kind === 'path') return fromPath(runPathSync(p.path));
  const raw = runExplicitSync(p.Y0, p.X0, p.settings);
  return { ...buildRun(raw, p.Y0.rows, p.Y0.cols, p.settings, p.data), wSelection: null };
}

export { selectAuto, selectByKnee, selectByScore };
