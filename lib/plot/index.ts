/**
 * Plots as SVG, rendered in Node without a browser: Vega-Lite specs compiled to Vega and rendered by
 * Vega's headless SVG renderer. Three kinds:
 *   - convergence traces: one line per trace column, log-scale y;
 *   - heatmaps of factor matrices (large matrices are block-averaged to at most maxRows × maxCols);
 *   - the w trade-off curve of a path result ({ws, fidelity, orthogonality, sparsity}).
 * `plotResult` draws whatever a result directory (result.json + .npy, see lib/cli/output.ts) holds.
 */
import { mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

import * as vega from 'vega';
import * as vl from 'vega-lite';
import type { TopLevelSpec } from 'vega-lite';

import type { ResultJson } from '../cli/output.js';
import { readNpy } from '../io/index.js';
import type { Matrix } from '../matrix.js';
import { describeValue, expectMatrix } from '../validate.js';

/** Renders a Vega-Lite spec to an SVG string (headless: no canvas, no browser). */
export async function renderSvg(spec: TopLevelSpec): Promise<string> {
  const compiled = vl.compile(spec).spec;
  const view = new vega.View(vega.parse(compiled), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

/** Names of trace columns that hold the iteration numbers of the other columns (the x axis). */
const xColumnNames = ['iteration', 'iterations', 'lossIterations', 'iter'];

export interface ConvergencePlotOptions {
  title?: string;
  /** The column to use as x (default: one named iteration/lossIterations, else the row index). */
  x?: string;
  /** Log-scale y (default true); non-positive values cannot be drawn on it and are left out. */
  log?: boolean;
  width?: number;
  height?: number;
}

/** Convergence traces: one line per column (fidelity, orthogonality, total …) against iteration. */
export async function convergencePlot(traces: Record<string, ArrayLike<number | null>>, options: ConvergencePlotOptions = {}): Promise<string> {
  if (traces === null || typeof traces !== 'object') throw new TypeError(`Expected an object of trace columns for traces but received ${describeValue(traces)}`);
  const xName = options.x ?? xColumnNames.find((n) => n in traces);
  const series = Object.keys(traces).filter((k) => k !== xName);
  if (series.length === 0) throw new RangeError('Expected at least one trace column for traces but received none');
  const log = options.log ?? true;
  const xs = xName ? traces[xName]! : undefined;
  const values: { x: number; trace: string; value: number }[] = [];
  for (const name of series) {
    const col = traces[name]!;
    for (let i = 0; i < col.length; i++) {
      const v = col[i];
      if (v === null || v === undefined || !Number.isFinite(v) || (log && v <= 0)) continue;
      values.push({ x: xs ? Number(xs[i]) : i, trace: name, value: v });
    }
  }
  return renderSvg({
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: options.title ?? 'Convergence',
    width: options.width ?? 480,
    height: options.height ?? 300,
    data: { values },
    mark: { type: 'line', point: false },
    encoding: {
      x: { field: 'x', type: 'quantitative', title: xName ?? 'iteration' },
      y: { field: 'value', type: 'quantitative', title: log ? 'value (log scale)' : 'value', scale: log ? { type: 'log' } : { zero: false } },
      color: { field: 'trace', type: 'nominal', title: 'trace', sort: series },
    },
  });
}

export interface HeatmapOptions {
  title?: string;
  /** Larger matrices are block-averaged down to at most this many rows / columns (default 100 / 60). */
  maxRows?: number;
  maxCols?: number;
  rowTitle?: string;
  colTitle?: string;
}

/** A heatmap of a matrix (e.g. a factor Y, H or v); cell colour = value, averaged over blocks when large. */
export async function heatmapPlot(m: Matrix, options: HeatmapOptions = {}): Promise<string> {
  expectMatrix(m, 'm', { finite: false });
  const rows = Math.min(m.rows, options.maxRows ?? 100);
  const cols = Math.min(m.cols, options.maxCols ?? 60);
  const values: { row: number; col: number; value: number }[] = [];
  for (let bi = 0; bi < rows; bi++) {
    const r0 = Math.floor((bi * m.rows) / rows);
    const r1 = Math.floor(((bi + 1) * m.rows) / rows);
    for (let bj = 0; bj < cols; bj++) {
      const c0 = Math.floor((bj * m.cols) / cols);
      const c1 = Math.floor(((bj + 1) * m.cols) / cols);
      let sum = 0;
      let n = 0;
      for (let i = r0; i < r1; i++) {
        for (let j = c0; j < c1; j++) {
          const v = m.data[i * m.cols + j]!;
          if (Number.isFinite(v)) {
            sum += v;
            n++;
          }
        }
      }
      values.push({ row: r0, col: c0, value: n ? sum / n : 0 });
    }
  }
  const blocked = rows < m.rows || cols < m.cols;
  const cell = Math.max(3, Math.min(16, Math.floor(600 / Math.max(rows, cols))));
  return renderSvg({
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: options.title ?? `${m.rows} × ${m.cols}${blocked ? ` (block means, ${rows} × ${cols})` : ''}`,
    width: cols * cell,
    height: rows * cell,
    data: { values },
    mark: 'rect',
    encoding: {
      x: { field: 'col', type: 'ordinal', title: options.colTitle ?? 'column', axis: { labelOverlap: 'parity', labelAngle: 0 } },
      y: { field: 'row', type: 'ordinal', title: options.rowTitle ?? 'row', axis: { labelOverlap: 'parity' } },
      color: { field: 'value', type: 'quantitative', title: 'value', scale: { scheme: 'viridis' } },
    },
  });
}

export interface PathCurve {
  ws: ArrayLike<number>;
  fidelity: ArrayLike<number>;
  orthogonality: ArrayLike<number>;
  sparsity?: ArrayLike<number>;
}

/** The w trade-off of a path result: fidelity, orthogonality (and sparsity) against w, one line each. */
export async function tradeoffPlot(path: PathCurve, options: { title?: string; log?: boolean } = {}): Promise<string> {
  for (const k of ['ws', 'fidelity', 'orthogonality'] as const) {
    if (!path || typeof path !== 'object' || !(k in path)) throw new TypeError(`Expected a path result {ws, fidelity, orthogonality, sparsity?} for path but it has no ${k}`);
  }
  const columns: [string, ArrayLike<number>][] = [['fidelity', path.fidelity], ['orthogonality', path.orthogonality]];
  if (path.sparsity) columns.push(['sparsity', path.sparsity]);
  const log = options.log ?? columns.every(([, c]) => Array.from(c).every((v) => !Number.isFinite(v) || v > 0));
  const values: { w: number; quantity: string; value: number }[] = [];
  for (const [name, col] of columns) {
    for (let i = 0; i < path.ws.length; i++) if (Number.isFinite(col[i])) values.push({ w: path.ws[i]!, quantity: name, value: col[i]! });
  }
  return renderSvg({
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: options.title ?? 'Trade-off along w',
    width: 480,
    height: 300,
    data: { values },
    mark: { type: 'line', point: true },
    encoding: {
      x: { field: 'w', type: 'quantitative', title: 'w (orthogonality weight)' },
      y: { field: 'value', type: 'quantitative', title: log ? 'value (log scale)' : 'value', scale: log ? { type: 'log' } : { zero: false } },
      color: { field: 'quantity', type: 'nominal', title: 'quantity', sort: columns.map(([n]) => n) },
    },
  });
}

const isPath = (t: Record<string, unknown>): boolean => 'ws' in t && 'fidelity' in t && 'orthogonality' in t;

/**
 * Writes the plots of a result (a result.json or the directory holding it) to `outDir`:
 * tradeoff.svg for a path result, convergence.svg when it has traces, heatmap-<array>.svg for each
 * 2-D array (at most `maxHeatmaps`, default 8). Returns the paths written.
 */
export async function plotResult(resultPath: string, outDir: string, options: { maxHeatmaps?: number } = {}): Promise<string[]> {
  const file = statSync(resultPath).isDirectory() ? join(resultPath, 'result.json') : resultPath;
  const result = JSON.parse(readFileSync(file, 'utf8')) as ResultJson;
  const dir = dirname(file);
  mkdirSync(outDir, { recursive: true });
  const written: string[] = [];
  const write = (name: string, svg: string): void => {
    const p = join(outDir, name);
    writeFileSync(p, svg);
    written.push(p);
  };
  const traces = result.traces ?? {};
  if (isPath(traces)) {
    write('tradeoff.svg', await tradeoffPlot(traces as unknown as PathCurve, { title: `${result.method}: trade-off along w` }));
  } else if (Object.keys(traces).length > 0) {
    write('convergence.svg', await convergencePlot(traces, { title: `${result.method}: convergence` }));
  }
  const matrices = Object.entries(result.arrays ?? {}).filter(([, a]) => a.shape.length === 2 && a.file.endsWith('.npy'));
  for (const [name, ref] of matrices.slice(0, options.maxHeatmaps ?? 8)) {
    const t = readNpy(join(dir, ref.file));
    const m: Matrix = { rows: t.shape[0]!, cols: t.shape[1]!, data: t.data };
    write(`heatmap-${name}.svg`, await heatmapPlot(m, { title: `${result.method}: ${name} (${m.rows} × ${m.cols})` }));
  }
  return written;
}
