/**
 * Plots as SVG, rendered in Node without a browser: Vega-Lite specs compiled to Vega and rendered by
 * Vega's headless SVG renderer (vega and vega-lite are optional packages, loaded at the first render).
 * The kinds:
 *   - convergence traces: one line per trace column, log-scale y;
 *   - heatmaps of factor matrices, labelled with the names of rows and columns when known; a diverging
 *     colour scale centred at 0 for signed matrices, a sequential one from 0 otherwise; a matrix with
 *     too many named columns (a topic matrix over a vocabulary) shows its top-N columns per row instead;
 *     several of them side by side or stacked in one figure (heatmapPanelsPlot), and images as a grid,
 *     a row of images per entry (imageGridPlot);
 *   - the w trade-off curve of a path result ({ws, fidelity, orthogonality, sparsity}), with the
 *     selected w marked;
 *   - the rank curve of a cross-validation ({ranks, testMean, testSd, trainMean}): error bars of the
 *     held-out error, the training error, the chosen rank marked;
 *   - charts of named series (charts.ts): line or scatter panels with a marked x (chartPanelsPlot), dot
 *     plots of labelled values (dotPanelsPlot), curves measured at a few settings each (curvesPlot).
 * Every argument is read once and checked before anything is drawn (a TypeError or RangeError naming
 * it); a figure holds at most 64 panels and 200 000 points or cells (shared.ts).
 * Every plot says in its subtitle where it stops at a limit ("first 60 of 8984 columns").
 * `plotResult` draws whatever a result directory (result.json + .npy, see lib/cli/output.ts) holds,
 * treating result.json as untrusted (see result.ts).
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';

import type { TopLevelSpec } from 'vega-lite';

import { describe, expectPath, isPlainRecord, readField, readObject, readRecord } from '../cli/check.js';
import type { Matrix } from '../matrix.js';
import { describeValue, expectMatrix, type OptionSpecs } from '../validate.js';
import { readPlotResult, readResultMatrix, type AxisNames } from './result.js';
import { expectColumn, expectMarks, int, nameList, readNumbers, readOptions, readParts, readText, renderSvg, schema, text, titled } from './shared.js';

export { loadPlotPackages, plotPackages, type PackageImporter, type PlotPackages } from './load.js';
export { MissingPackageError } from '../errors.js';
export { readPlotResult, type AxisNames, type PlotResult } from './result.js';

export { renderSvg } from './shared.js';
export {
  chartPanelsPlot,
  curvesPlot,
  dotPanelsPlot,
  type AxisOptions,
  type ChartPanel,
  type ChartPanelsOptions,
  type CurvesPlotOptions,
  type DotPanel,
  type DotPanelsOptions,
  type Series,
} from './charts.js';

// ---- convergence -----------------------------------------------------------------------------------

/**
 * Names of trace columns that hold the iteration numbers of the other columns (the x axis);
 * 'lossIterations' is the NMF family's column in result files written before the one solver contract.
 */
const xColumnNames = ['iteration', 'iterations', 'lossIterations', 'iter'];
/** The solver contract's clock column (lib/solver.ts): an x axis when asked for, never a drawn line. */
const timeColumnName = 'timeMs';

export interface ConvergencePlotOptions {
  title?: string;
  /** The column to use as x (default: one named iteration/lossIterations, else the row index). */
  x?: string;
  /** Log-scale y (default true); non-positive values cannot be drawn on it and are left out. */
  log?: boolean;
  width?: number;
  height?: number;
  /** Longer traces are thinned to every k-th point so that at most this many are drawn (default 1000). */
  maxPoints?: number;
}

const convergenceSpecs = {
  title: text('a title'),
  x: text('the name of the x column'),
  log: { kind: 'boolean', description: 'log-scale y' },
  width: int(50, 4000, 480, 'width in pixels'),
  height: int(50, 4000, 300, 'height in pixels'),
  maxPoints: int(2, 1e6, 1000, 'points drawn per trace at most'),
} as const satisfies OptionSpecs;

/**
 * Convergence traces: one line per column (fidelity, orthogonality, total …) against iteration (or
 * against `timeMs` with x: 'timeMs'; the clock column is never drawn as a line of its own).
 */
export async function convergencePlot(traces: Record<string, ArrayLike<number | null>>, options: ConvergencePlotOptions = {}): Promise<string> {
  // Each column read once (an array copied), so what is checked is what is drawn.
  traces = Object.fromEntries(
    readRecord(traces, 'traces', 'an object of trace columns').map(([k, col]) => [k, expectColumn(col, `traces.${k}`) as ArrayLike<number | null>]),
  );
  const o = readOptions<Required<Omit<ConvergencePlotOptions, 'title' | 'x' | 'log'>> & ConvergencePlotOptions>(convergenceSpecs, options, 'convergencePlot()');
  const xName = o.x ?? xColumnNames.find((n) => n in traces);
  if (xName !== undefined && !(xName in traces)) throw new RangeError(`Expected the name of a trace column for options.x of convergencePlot() but received ${describeValue(xName)}`);
  // The x candidates and the clock are axes, never lines (an iteration count against time is no convergence).
  const series = Object.keys(traces).filter((k) => k !== xName && k !== timeColumnName && !xColumnNames.includes(k));
  if (series.length === 0) throw new RangeError('Expected at least one trace column for traces but received none');
  const log = o.log ?? true;
  const xs = xName ? traces[xName]! : undefined;
  const longest = Math.max(...series.map((n) => traces[n]!.length));
  const stride = Math.ceil(longest / o.maxPoints);
  const values: { x: number; trace: string; value: number }[] = [];
  for (const name of series) {
    const col = traces[name]!;
    for (let i = 0; i < col.length; i++) {
      if (i % stride !== 0 && i !== col.length - 1) continue;
      const v = col[i];
      if (typeof v !== 'number' || !Number.isFinite(v) || (log && v <= 0)) continue;
      values.push({ x: xs ? Number(xs[i]) : i, trace: name, value: v });
    }
  }
  const notes = stride > 1 ? [`every ${ordinal(stride)} of ${longest} points drawn`] : [];
  return renderSvg({
    $schema: schema,
    title: titled(o.title ?? 'Convergence', notes),
    width: o.width,
    height: o.height,
    data: { values },
    mark: { type: 'line', point: false },
    encoding: {
      x: { field: 'x', type: 'quantitative', title: xName ?? 'iteration' },
      y: { field: 'value', type: 'quantitative', title: log ? 'value (log scale)' : 'value', scale: log ? { type: 'log' } : { zero: false } },
      color: { field: 'trace', type: 'nominal', title: 'trace', sort: series },
    },
  });
}

function ordinal(n: number): string {
  const s = n % 100 >= 11 && n % 100 <= 13 ? 'th' : ({ 1: 'st', 2: 'nd', 3: 'rd' } as Record<number, string>)[n % 10] ?? 'th';
  return `${n}${s}`;
}

// ---- heatmaps --------------------------------------------------------------------------------------

export interface HeatmapOptions {
  title?: string;
  /** Rows / columns drawn at most (default 60 / 60); the subtitle says where the plot stops. */
  maxRows?: number;
  maxCols?: number;
  /** What a row / column is ('topic', 'term', 'stratum'); default 'row' / 'column'. */
  rowTitle?: string;
  colTitle?: string;
  /** Names of the rows / columns (one per row / column), used as axis labels. */
  rowNames?: readonly string[];
  colNames?: readonly string[];
  /**
   * When the columns are named and more than maxCols (a topic matrix over a vocabulary), each row
   * shows its topN largest columns by name instead (by |value| when the matrix is signed); likewise
   * for named rows over maxRows. Default 15.
   */
  topN?: number;
}

const heatmapSpecs = {
  title: text('a title'),
  maxRows: int(1, 10_000, 60, 'rows drawn at most'),
  maxCols: int(1, 10_000, 60, 'columns drawn at most'),
  rowTitle: text('what a row is'),
  colTitle: text('what a column is'),
  rowNames: nameList,
  colNames: nameList,
  topN: int(1, 1000, 15, 'named entries shown per row or column'),
} as const satisfies OptionSpecs;

type HeatmapParsed = Required<Pick<HeatmapOptions, 'maxRows' | 'maxCols' | 'topN'>> & HeatmapOptions;

/** Axis labels: the names (made unique, since a scale needs distinct values) or the 0-based indices. */
function axisLabels(names: readonly string[] | undefined, count: number): string[] {
  const seen = new Set<string>();
  return Array.from({ length: count }, (_, i) => {
    const base = names ? names[i]! : String(i);
    let label = base;
    for (let k = 0; seen.has(label); k++) label = `${base} [${i}${k ? `.${k}` : ''}]`;
    seen.add(label);
    return label;
  });
}

/** "topics", "classes"; a title that is not one plain word ("row of X (Emma)") falls back to `other`. */
const plural = (noun: string, n: number, other: string): string => {
  if (!/^[A-Za-z]+$/.test(noun)) return other;
  return n === 1 ? noun : /(s|x|ch|sh)$/.test(noun) ? `${noun}es` : `${noun}s`;
};

/** Colour scale: diverging and centred at 0 when any value is negative, sequential from 0 otherwise. */
function colourScale(values: readonly number[], signed: boolean): { scheme: 'blues' | 'redblue'; domainMid?: number; domain?: number[]; domainMin?: number; reverse?: boolean } {
  if (!signed) return { scheme: 'blues', domainMin: 0 };
  let a = 0;
  for (const v of values) a = Math.max(a, Math.abs(v));
  // reverse: 'redblue' runs red → blue; negative values blue, positive red is the usual reading.
  return { scheme: 'redblue', reverse: true, domain: [-(a || 1), a || 1], domainMid: 0 };
}

/**
 * The Vega-Lite spec of a heatmap (see heatmapPlot). Exposed so that callers can adjust it or render
 * it elsewhere; heatmapPlot renders it.
 */
export function heatmapSpec(m: Matrix, options: HeatmapOptions = {}): TopLevelSpec {
  const read = readHeatmap(m, options, 'm', 'options', 'heatmapPlot()');
  return buildHeatmapSpec(read.m, read.o);
}

/**
 * A matrix and its heatmap options, each read once and checked: `name` / `optionsName` are what the
 * caller passed them as, `context` the function named in messages about an option.
 */
function readHeatmap(m: unknown, options: unknown, name: string, optionsName: string, context: string): { m: Matrix; o: HeatmapParsed } {
  if (isPlainRecord(m)) m = { rows: readField(m, 'rows', `${name}.rows`), cols: readField(m, 'cols', `${name}.cols`), data: readField(m, 'data', `${name}.data`) }; // read once
  const checked = expectMatrix(m, name, { finite: false });
  const o = readOptions<HeatmapParsed>(heatmapSpecs, options, context, optionsName);
  for (const [key, count] of [['rowNames', checked.rows], ['colNames', checked.cols]] as const) {
    const names = o[key];
    if (names && names.length !== count) {
      throw new RangeError(`Expected ${count} names (one per ${key === 'rowNames' ? 'row' : 'column'}) for options.${key} of ${context} but received ${names.length}`);
    }
  }
  return { m: checked, o };
}

/** The cells (or ranked names) a heatmap of `m` with options `o` draws: what its spec will hold. */
function heatmapCells(m: Matrix, o: HeatmapParsed): number {
  if (o.colNames && m.cols > o.maxCols) return Math.min(m.rows, o.maxRows) * Math.min(o.topN, m.cols);
  if (o.rowNames && m.rows > o.maxRows) return Math.min(m.cols, o.maxCols) * Math.min(o.topN, m.rows);
  return Math.min(m.rows, o.maxRows) * Math.min(m.cols, o.maxCols);
}

function buildHeatmapSpec(m: Matrix, o: HeatmapParsed): TopLevelSpec {
  let signed = false;
  for (let i = 0; i < m.data.length; i++) if (m.data[i]! < 0) signed = true;
  const title = o.title ?? `${m.rows} × ${m.cols}`;
  if (o.colNames && m.cols > o.maxCols) return topSpec(m, o, 'rows', signed, title);
  if (o.rowNames && m.rows > o.maxRows) return topSpec(m, o, 'cols', signed, title);
  return gridSpec(m, o, signed, title);
}

function gridSpec(m: Matrix, o: HeatmapParsed, signed: boolean, title: string): TopLevelSpec {
  const rows = Math.min(m.rows, o.maxRows);
  const cols = Math.min(m.cols, o.maxCols);
  const rowTitle = o.rowTitle ?? 'row';
  const colTitle = o.colTitle ?? 'column';
  const rowLabels = axisLabels(o.rowNames, rows);
  const colLabels = axisLabels(o.colNames, cols);
  const values: { r: string; c: string; value: number }[] = [];
  let blank = 0;
  for (let i = 0; i < rows; i++) {
    for (let j = 0; j < cols; j++) {
      const v = m.data[i * m.cols + j]!;
      if (Number.isFinite(v)) values.push({ r: rowLabels[i]!, c: colLabels[j]!, value: v });
      else blank++;
    }
  }
  const notes: string[] = [];
  if (rows < m.rows) notes.push(`first ${rows} of ${m.rows} ${plural(rowTitle, m.rows, 'rows')}`);
  if (cols < m.cols) notes.push(`first ${cols} of ${m.cols} ${plural(colTitle, m.cols, 'columns')}`);
  if (blank) notes.push(`${blank} non-finite ${blank === 1 ? 'cell' : 'cells'} left blank`);
  // Cells big enough for a 10-px label per row/column where that fits in about 720 px; at least 4 px
  // while the plot stays under about 4000 px, never under 1 px (SVG viewers stop at 32767 px).
  const span = Math.max(rows, cols);
  const cell = Math.min(18, Math.max(Math.floor(720 / span), Math.min(4, Math.floor(4000 / span)), 1));
  const named = Boolean(o.colNames);
  return {
    $schema: schema,
    title: titled(title, notes),
    width: cols * cell,
    height: rows * cell,
    data: { values },
    mark: 'rect',
    encoding: {
      x: {
        field: 'c',
        type: 'ordinal',
        scale: { domain: colLabels },
        title: colTitle,
        axis: { labelOverlap: 'parity', labelAngle: named ? -90 : 0, labelLimit: 140 },
      },
      y: { field: 'r', type: 'ordinal', scale: { domain: rowLabels }, title: rowTitle, axis: { labelOverlap: 'parity', labelLimit: 160 } },
      color: { field: 'value', type: 'quantitative', title: 'value', scale: colourScale(values.map((v) => v.value), signed) },
    },
  };
}

/**
 * Top-N view: `along` = 'rows' ranks each row's columns (topics × terms), 'cols' each column's rows
 * (features × components). One column of the plot per unit, its top-N names in rank order, coloured
 * by value.
 */
function topSpec(m: Matrix, o: HeatmapParsed, along: 'rows' | 'cols', signed: boolean, title: string): TopLevelSpec {
  const allUnits = along === 'rows' ? m.rows : m.cols;
  const unitCount = Math.min(allUnits, along === 'rows' ? o.maxRows : o.maxCols);
  const itemCount = along === 'rows' ? m.cols : m.rows;
  const unitTitle = (along === 'rows' ? o.rowTitle : o.colTitle) ?? (along === 'rows' ? 'row' : 'column');
  const itemTitle = (along === 'rows' ? o.colTitle : o.rowTitle) ?? (along === 'rows' ? 'column' : 'row');
  const unitLabels = axisLabels(along === 'rows' ? o.rowNames : o.colNames, unitCount);
  const itemNames = (along === 'rows' ? o.colNames : o.rowNames)!;
  const at = (unit: number, item: number): number => (along === 'rows' ? m.data[unit * m.cols + item]! : m.data[item * m.cols + unit]!);
  const n = Math.min(o.topN, itemCount);
  const key = (v: number): number => (Number.isFinite(v) ? (signed ? Math.abs(v) : v) : -Infinity);
  const values: { unit: string; rank: number; name: string; value: number }[] = [];
  for (let u = 0; u < unitCount; u++) {
    // The n best items so far, best first (insertion into a short list: O(items × n), no copy).
    const best: number[] = [];
    for (let it = 0; it < itemCount; it++) {
      const k = key(at(u, it));
      if (k === -Infinity) continue;
      if (best.length < n) best.push(it);
      else if (k > key(at(u, best[n - 1]!))) best[n - 1] = it;
      else continue;
      for (let p = best.length - 1; p > 0 && key(at(u, best[p - 1]!)) < k; p--) [best[p - 1], best[p]] = [best[p]!, best[p - 1]!];
    }
    best.forEach((it, r) => values.push({ unit: unitLabels[u]!, rank: r + 1, name: itemNames[it]!, value: at(u, it) }));
  }
  const maxAbs = values.reduce((a, v) => Math.max(a, Math.abs(v.value)), 0);
  const itemNoun = plural(itemTitle, itemCount, along === 'rows' ? 'columns' : 'rows');
  const unitNoun = /^[A-Za-z]+$/.test(unitTitle) ? unitTitle : along === 'rows' ? 'row' : 'column';
  const notes = [`top ${n} of ${itemCount} ${itemNoun} per ${unitNoun}${signed ? ' (by |value|)' : ''}`];
  if (unitCount < allUnits) notes.push(`first ${unitCount} of ${allUnits} ${plural(unitTitle, allUnits, along === 'rows' ? 'rows' : 'columns')}`);
  // Wide enough for the longest name shown, within 70..200 px (longer names end in an ellipsis). Vega
  // without a canvas estimates text as 0.8 × font size per character: 11-px cells, 10-px axis labels.
  const longest = values.reduce((a, v) => Math.max(a, v.name.length), 0);
  const longestUnit = unitLabels.reduce((a, l) => Math.max(a, l.length), 0);
  const colWidth = Math.max(70, Math.min(200, Math.ceil(Math.max(longest * 8.8, longestUnit * 8)) + 12));
  return {
    $schema: schema,
    title: titled(title, notes),
    width: unitCount * colWidth,
    height: n * 18,
    data: { values },
    encoding: {
      x: { field: 'unit', type: 'ordinal', scale: { domain: unitLabels }, title: unitTitle, axis: { orient: 'top', labelAngle: 0, labelLimit: colWidth - 6 } },
      y: { field: 'rank', type: 'ordinal', title: 'rank' },
    },
    layer: [
      { mark: 'rect', encoding: { color: { field: 'value', type: 'quantitative', title: 'value', scale: colourScale(values.map((v) => v.value), signed) } } },
      {
        mark: { type: 'text', fontSize: 11, limit: colWidth - 8 },
        encoding: {
          text: { field: 'name', type: 'nominal' },
          // Dark cells (the upper part of either scale) get white text.
          color: { condition: { test: `abs(datum.value) > ${0.55 * maxAbs}`, value: 'white' }, value: 'black' },
        },
      },
    ],
  };
}

/** A heatmap of a matrix (e.g. a factor Y, H or v), labelled with the names of rows and columns when given. */
export async function heatmapPlot(m: Matrix, options: HeatmapOptions = {}): Promise<string> {
  return renderSvg(heatmapSpec(m, options));
}

// ---- heatmap panels and image grids ---------------------------------------------------------------

/** One panel of heatmapPanelsPlot: a matrix and the heatmapPlot options it is drawn with. */
export interface HeatmapPanel {
  m: Matrix;
  options?: HeatmapOptions;
}

export interface HeatmapPanelsOptions {
  /** The figure's title (default: none; each panel keeps its own). */
  title?: string;
  /** One panel above the other (for wide matrices) instead of side by side (default false). */
  stacked?: boolean;
  /**
   * 'shared' (default): one colour scale for all panels, so that they compare by colour;
   * 'independent': each panel its own scale, for matrices of different ranges.
   */
  colour?: 'shared' | 'independent';
}

const heatmapPanelsSpecs = {
  title: text('a title'),
  stacked: { kind: 'boolean', description: 'one panel above the other' },
  colour: { kind: 'enum', values: ['shared', 'independent'], description: 'one colour scale, or one per panel' },
} as const satisfies OptionSpecs;

/**
 * Heatmaps in one SVG, one panel per matrix in order, each the heatmap heatmapPlot draws with that
 * panel's options (names, limits, top-N view, non-finite cells left blank and counted in the subtitle).
 * A panel under 160 px wide (a toy matrix's 18-px cells) is enlarged by a whole factor to at least that,
 * so that it reads beside its neighbours. At most 64 panels and 200 000 cells in all (a RangeError
 * before anything is drawn otherwise).
 */
export async function heatmapPanelsPlot(panels: readonly HeatmapPanel[], options: HeatmapPanelsOptions = {}): Promise<string> {
  const read = readParts(panels, 'panels', 'an array of heatmap panels {m, options}').map((panel, i) => {
    const name = `panels[${i}]`;
    const f = readObject(panel, name, 'a heatmap panel {m, options}', ['m', 'options']);
    return readHeatmap(f.m, f.options, `${name}.m`, `${name}.options`, `${name} of heatmapPanelsPlot()`);
  });
  const o = readOptions<HeatmapPanelsOptions>(heatmapPanelsSpecs, options, 'heatmapPanelsPlot()');
  expectMarks(read.reduce((a, { m, o: po }) => a + heatmapCells(m, po), 0), 'panels', 'cells');
  return renderSvg(heatmapPanelsSpec(read, o));
}

function heatmapPanelsSpec(panels: readonly { m: Matrix; o: HeatmapParsed }[], o: HeatmapPanelsOptions): TopLevelSpec {
  const specs = panels.map(({ m, o: po }) => {
    const { $schema: _schema, ...spec } = buildHeatmapSpec(m, po) as unknown as Record<string, unknown> & { width: number; height: number };
    const zoom = Math.max(1, Math.floor(160 / spec.width));
    return { ...spec, width: spec.width * zoom, height: spec.height * zoom };
  });
  const concat = o.stacked ? { vconcat: specs } : { hconcat: specs };
  return { $schema: schema, ...(o.title === undefined ? {} : { title: o.title }), ...concat, resolve: { scale: { color: o.colour ?? 'shared' } } } as unknown as TopLevelSpec;
}

/** One row of imageGridPlot: images of one shape, drawn left to right. */
export interface ImageRow {
  title?: string;
  /** Each image height × width values, row by row (NaN or null: a blank pixel). */
  images: readonly ArrayLike<number | null>[];
}

export interface ImageGridOptions {
  /** The figure's title (default: none). */
  title?: string;
  /** 'shared' (default): one colour scale for every row; 'independent': one per row. */
  colour?: 'shared' | 'independent';
}

const imageGridSpecs = {
  title: text('a title'),
  colour: heatmapPanelsSpecs.colour,
} as const satisfies OptionSpecs;

/**
 * Images as a grid, one row of images per entry of `rows` (originals, noisy copies, reconstructions …),
 * each image `height` × `width` pixels given row by row. Each row is one heatmap panel (see
 * heatmapPanelsPlot, stacked): its images side by side with one blank (0-valued) pixel column between
 * them, on one colour scale by default. At most 64 rows and 64 images a row, a row at most 10 000
 * pixels wide and high, and 200 000 pixels in all.
 */
export async function imageGridPlot(rows: readonly ImageRow[], height: number, width: number, options: ImageGridOptions = {}): Promise<string> {
  const list = readParts(rows, 'rows', 'an array of image rows {title, images}');
  for (const [v, name] of [[height, 'height'], [width, 'width']] as const) {
    if (typeof v !== 'number' || !Number.isInteger(v)) throw new TypeError(`Expected an integer ≥ 1 (pixels) for ${name} but received ${describeValue(v)}`);
    if (v < 1 || v > maxHeatmapSide) throw new RangeError(`Expected an integer from 1 to ${maxHeatmapSide} (pixels) for ${name} but received ${v}`);
  }
  const read = list.map((row, r) => {
    const name = `rows[${r}]`;
    const f = readObject(row, name, 'an image row {title, images}', ['title', 'images']);
    const title = f.title === undefined ? undefined : readText(f.title, `${name}.title`);
    const images = readParts(f.images, `${name}.images`, 'an array of images');
    const cols = images.length * (width + 1) - 1;
    if (cols > maxHeatmapSide) throw new RangeError(`Expected at most ${maxHeatmapSide} pixels across for ${name}.images but its ${images.length} images of width ${width} are ${cols} wide`);
    return { title, images, name };
  });
  const o = readOptions<ImageGridOptions>(imageGridSpecs, options, 'imageGridPlot()');
  const pixels = read.reduce((a, r) => a + height * (r.images.length * (width + 1) - 1), 0);
  expectMarks(pixels, 'rows', 'pixels');
  const panels = read.map(({ title, images, name }) => {
    const cols = images.length * (width + 1) - 1;
    const data = new Float64Array(height * cols);
    images.forEach((img, k) => {
      const values = readNumbers(img, `${name}.images[${k}]`, height * width);
      if (values.length !== height * width) throw new RangeError(`Expected ${height * width} values (height × width) for ${name}.images[${k}] but received ${values.length}`);
      for (let i = 0; i < height; i++) for (let j = 0; j < width; j++) data[i * cols + k * (width + 1) + j] = values[i * width + j] ?? NaN;
    });
    const m: Matrix = { rows: height, cols, data };
    const po = parseOptionsOf({ title, rowTitle: 'pixel row', colTitle: 'pixel column', maxRows: height, maxCols: cols });
    return { m, o: po };
  });
  return renderSvg(heatmapPanelsSpec(panels, { title: o.title, stacked: true, colour: o.colour }));
}

/** The largest maxRows / maxCols a heatmap takes. */
const maxHeatmapSide = heatmapSpecs.maxRows.max;

/** Heatmap options built here (already valid), with the defaults filled in. */
const parseOptionsOf = (options: HeatmapOptions): HeatmapParsed => readOptions<HeatmapParsed>(heatmapSpecs, Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined)), 'imageGridPlot()');

// ---- trade-off -------------------------------------------------------------------------------------

export interface PathCurve {
  ws: ArrayLike<number>;
  fidelity: ArrayLike<number | null>;
  orthogonality: ArrayLike<number | null>;
  sparsity?: ArrayLike<number | null>;
}

export interface TradeoffPlotOptions {
  title?: string;
  /** Log-scale y (default: when every value is positive). */
  log?: boolean;
  /** The selected w (a path result's selection.w): drawn as a dashed vertical rule with a label. */
  selectedW?: number;
  /** How it was selected ('knee', 'separation', …), for the label. */
  selectionCriterion?: string;
}

const tradeoffSpecs = {
  title: text('a title'),
  log: { kind: 'boolean', description: 'log-scale y' },
  selectedW: { kind: 'number', min: 0, max: 1, description: 'the selected w' },
  selectionCriterion: text('how w was selected'),
} as const satisfies OptionSpecs;

/** The w trade-off of a path result: fidelity, orthogonality (and sparsity) against w, one line each. */
export async function tradeoffPlot(path: PathCurve, options: TradeoffPlotOptions = {}): Promise<string> {
  const pathWhat = 'a path result {ws, fidelity, orthogonality, sparsity?}';
  if (!isPlainRecord(path)) throw new TypeError(`Expected ${pathWhat} for path but received ${describe(path)}`);
  const field = (k: keyof PathCurve): ArrayLike<number | null> | undefined => {
    const v = readField(path, k, `path.${k}`);
    if (v === undefined && k === 'sparsity') return undefined;
    if (v === undefined || v === null) throw new TypeError(`Expected ${pathWhat} for path but it has no array ${k}`);
    return expectColumn(v, `path.${k}`) as ArrayLike<number | null>;
  };
  path = { ws: field('ws') as ArrayLike<number>, fidelity: field('fidelity')!, orthogonality: field('orthogonality')!, sparsity: field('sparsity') };
  const o = readOptions<TradeoffPlotOptions>(tradeoffSpecs, options, 'tradeoffPlot()');
  const columns: [string, ArrayLike<number | null>][] = [['fidelity', path.fidelity], ['orthogonality', path.orthogonality]];
  if (path.sparsity) columns.push(['sparsity', path.sparsity]);
  const finite = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);
  const log = o.log ?? columns.every(([, c]) => Array.from(c).every((v) => !finite(v) || v > 0));
  const values: { w: number; quantity: string; value: number }[] = [];
  for (const [name, col] of columns) {
    for (let i = 0; i < path.ws.length; i++) {
      const w = path.ws[i];
      const v = col[i];
      if (finite(w) && finite(v) && (!log || v > 0)) values.push({ w, quantity: name, value: v });
    }
  }
  const x = { field: 'w', type: 'quantitative', title: 'w (orthogonality weight)' } as const;
  const curves = {
    data: { values },
    mark: { type: 'line', point: true },
    encoding: {
      x,
      y: { field: 'value', type: 'quantitative', title: log ? 'value (log scale)' : 'value', scale: log ? { type: 'log' } : { zero: false } },
      color: { field: 'quantity', type: 'nominal', title: 'quantity', sort: columns.map(([n]) => n) },
    },
  } as const;
  const base = { $schema: schema, width: 480, height: 300 };
  if (o.selectedW === undefined) return renderSvg({ ...base, title: o.title ?? 'Trade-off along w', ...curves } as TopLevelSpec);
  const label = `selected w = ${Number(o.selectedW.toPrecision(6))}${o.selectionCriterion ? ` (${o.selectionCriterion})` : ''}`;
  const mark = { data: { values: [{ w: o.selectedW, label }] } };
  return renderSvg({
    ...base,
    title: { text: o.title ?? 'Trade-off along w', subtitle: label },
    layer: [
      curves,
      { ...mark, mark: { type: 'rule', strokeDash: [6, 4], color: '#333', strokeWidth: 1.5 }, encoding: { x } },
      { ...mark, mark: { type: 'text', align: 'left', dx: 4, baseline: 'top', fontSize: 11 }, encoding: { x, y: { value: 4 }, text: { field: 'label', type: 'nominal' } } },
    ],
  } as TopLevelSpec);
}

// ---- cross-validation curve --------------------------------------------------------------------------

/** A cross-validation curve (crossValidateRank): held-out error mean ± sd per rank, and the training error. */
export interface RankCurve {
  ranks: ArrayLike<number>;
  testMean: ArrayLike<number | null>;
  testSd: ArrayLike<number | null>;
  trainMean?: ArrayLike<number | null>;
}

export interface RankCurvePlotOptions {
  title?: string;
  /** The chosen rank: drawn as a dashed vertical rule with a label. */
  chosenRank?: number;
  /** How it was chosen ('min', 'oneStandardError'), for the label. */
  rule?: string;
  /** What the error is, for the y axis (default 'RMSE'). */
  errorName?: string;
}

const rankCurveSpecs = {
  title: text('a title'),
  chosenRank: { kind: 'number', integer: true, min: 1, max: 2 ** 31, description: 'the chosen rank' },
  rule: text('how the rank was chosen'),
  errorName: text('what the error is'),
} as const satisfies OptionSpecs;

/**
 * The rank curve of a cross-validation: the held-out error's mean against the rank with ±sd error
 * bars, the training error as a second line (the gap between them shows overfitting), and the chosen
 * rank marked.
 */
export async function rankCurvePlot(curve: RankCurve, options: RankCurvePlotOptions = {}): Promise<string> {
  const curveWhat = 'a rank curve {ranks, testMean, testSd, trainMean?}';
  if (!isPlainRecord(curve)) throw new TypeError(`Expected ${curveWhat} for curve but received ${describe(curve)}`);
  const field = (k: keyof RankCurve): ArrayLike<number | null> | undefined => {
    const v = readField(curve, k, `curve.${k}`);
    if (v === undefined && k === 'trainMean') return undefined;
    if (v === undefined || v === null) throw new TypeError(`Expected ${curveWhat} for curve but it has no array ${k}`);
    return expectColumn(v, `curve.${k}`) as ArrayLike<number | null>;
  };
  const ranks = field('ranks')!, testMean = field('testMean')!, testSd = field('testSd')!, trainMean = field('trainMean');
  for (const [name, col] of [['testMean', testMean], ['testSd', testSd], ['trainMean', trainMean]] as const) {
    if (col && col.length !== ranks.length) throw new RangeError(`Expected ${ranks.length} values (one per rank) for curve.${name} but received ${col.length}`);
  }
  const o = readOptions<RankCurvePlotOptions>(rankCurveSpecs, options, 'rankCurvePlot()');
  const finite = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);
  const test: { rank: number; error: number; low: number; high: number; curve: string }[] = [];
  const train: { rank: number; error: number; curve: string }[] = [];
  for (let i = 0; i < ranks.length; i++) {
    const r = ranks[i], m = testMean[i], sd = testSd[i];
    if (!finite(r)) continue;
    if (finite(m)) test.push({ rank: r, error: m, low: m - (finite(sd) ? sd : 0), high: m + (finite(sd) ? sd : 0), curve: 'held-out (mean ± sd)' });
    const t = trainMean?.[i];
    if (finite(t)) train.push({ rank: r, error: t, curve: 'training' });
  }
  const drawn = test.map((t) => t.rank);
  const x = {
    field: 'rank',
    type: 'quantitative',
    title: 'rank',
    axis: { tickMinStep: 1, format: 'd' },
    // Half a step of room either side, so the end points' error bars are not on the frame.
    scale: drawn.length ? { domain: [Math.min(...drawn) - 0.5, Math.max(...drawn) + 0.5], nice: false } : { zero: false },
  } as const;
  const y = { field: 'error', type: 'quantitative', title: `${o.errorName ?? 'RMSE'}`, scale: { zero: false } } as const;
  const color = { field: 'curve', type: 'nominal', title: null, sort: ['held-out (mean ± sd)', 'training'], legend: { orient: 'bottom-left', labelLimit: 240 } } as const;
  const layer: unknown[] = [
    { data: { values: test }, mark: { type: 'rule', strokeWidth: 1.5 }, encoding: { x, y: { field: 'low', type: 'quantitative', title: y.title, scale: y.scale }, y2: { field: 'high' }, color } },
    { data: { values: [...test, ...train] }, mark: { type: 'line', point: true }, encoding: { x, y, color } },
  ];
  const base = { $schema: schema, width: 480, height: 300 };
  const title = o.title ?? 'Cross-validation of the rank';
  if (o.chosenRank === undefined) return renderSvg({ ...base, title, layer } as TopLevelSpec);
  // The subtitle names the chosen rank; the rule marks it on the curve.
  const label = `chosen rank ${o.chosenRank}${o.rule ? ` (${o.rule})` : ''}`;
  layer.push({ data: { values: [{ rank: o.chosenRank }] }, mark: { type: 'rule', strokeDash: [6, 4], color: '#333', strokeWidth: 1.5 }, encoding: { x } });
  return renderSvg({ ...base, title: { text: title, subtitle: label }, layer } as TopLevelSpec);
}

// ---- result directories ----------------------------------------------------------------------------

const isPath = (t: Record<string, unknown>): boolean => 'ws' in t && 'fidelity' in t && 'orthogonality' in t;
const isRankCurve = (t: Record<string, unknown>): boolean => 'ranks' in t && 'testMean' in t && 'testSd' in t;

export interface PlotResultOptions {
  /** Heatmaps drawn at most (default 8); top-level arrays (Y, H, selectedY) come before nested ones. */
  maxHeatmaps?: number;
  /** Names for the rows / columns of every 2-D array with that many rows / columns (e.g. a vocabulary). */
  rowNames?: readonly string[];
  colNames?: readonly string[];
  /** See HeatmapOptions. */
  maxRows?: number;
  maxCols?: number;
  topN?: number;
}

const plotResultSpecs = {
  maxHeatmaps: int(0, 1000, 8, 'heatmaps drawn at most'),
  rowNames: nameList,
  colNames: nameList,
  maxRows: heatmapSpecs.maxRows,
  maxCols: heatmapSpecs.maxCols,
  topN: heatmapSpecs.topN,
} as const satisfies OptionSpecs;

/**
 * Writes the plots of a result (a result.json or the directory holding it) to `outDir`:
 * tradeoff.svg for a path result (with the selected w marked), cv-rank.svg for a cross-validation
 * (with the chosen rank marked), convergence.svg when it has traces,
 * heatmap-<array>.svg for each 2-D array (at most `maxHeatmaps`). Every input is checked and every plot
 * rendered before the first file is written, so a bad result writes nothing; files are written under
 * a temporary name and renamed, so an existing link at an output path is replaced, not followed.
 * Returns the paths written.
 */
export async function plotResult(resultPath: string, outDir: string, options: PlotResultOptions = {}): Promise<string[]> {
  expectPath(resultPath, 'resultPath');
  expectPath(outDir, 'outDir');
  const o = readOptions<Required<Pick<PlotResultOptions, 'maxHeatmaps'>> & PlotResultOptions>(plotResultSpecs, options, 'plotResult()');
  const result = readPlotResult(resultPath);
  const svgs: [string, string][] = [];
  const traces = result.traces;
  if (isPath(traces)) {
    const sel = result.selection;
    svgs.push([
      'tradeoff.svg',
      await tradeoffPlot(traces as unknown as PathCurve, {
        title: `${result.method}: trade-off along w`,
        ...(sel && sel.w >= 0 && sel.w <= 1 ? { selectedW: sel.w, selectionCriterion: sel.criterion } : {}),
      }),
    ]);
  } else if (isRankCurve(traces)) {
    const chosen = result.chosenRank;
    svgs.push([
      'cv-rank.svg',
      await rankCurvePlot(traces as unknown as RankCurve, {
        title: `${result.method}: held-out error by rank`,
        ...(chosen !== undefined && Number.isInteger(chosen) && chosen >= 1 ? { chosenRank: chosen, ...(result.rule ? { rule: result.rule } : {}) } : {}),
      }),
    ]);
  } else if (Object.keys(traces).length > 0) {
    svgs.push(['convergence.svg', await convergencePlot(traces, { title: `${result.method}: convergence` })]);
  }

  const matrices = Object.entries(result.arrays).filter(([, a]) => a.shape.length === 2 && a.shape[0]! > 0 && a.shape[1]! > 0 && a.file.endsWith('.npy'));
  // Top-level arrays (the result's own factors) first; nested ones (per-point runs, per-stratum W) after.
  matrices.sort(([a], [b]) => Number(a.includes('.')) - Number(b.includes('.')));
  const given: [keyof AxisNames & ('rows' | 'cols'), readonly string[] | undefined, 0 | 1, string][] = [
    ['rows', o.rowNames, 0, 'rowNames'],
    ['cols', o.colNames, 1, 'colNames'],
  ];
  for (const [, names, dim, option] of given) {
    if (names && !matrices.some(([, a]) => a.shape[dim] === names.length)) {
      const shapes = matrices.map(([n, a]) => `${n} ${a.shape.join('×')}`).join(', ') || 'none';
      throw new RangeError(
        `Expected as many names as some array has ${dim === 0 ? 'rows' : 'columns'} for options.${option} of plotResult() but received ${names.length} (2-D arrays: ${shapes})`,
      );
    }
  }
  for (const [name, ref] of matrices.slice(0, o.maxHeatmaps)) {
    const m = readResultMatrix(result, name);
    const axis: AxisNames = { ...result.names[name] };
    if (!axis.rows && o.rowNames?.length === ref.shape[0]) axis.rows = [...o.rowNames];
    if (!axis.cols && o.colNames?.length === ref.shape[1]) axis.cols = [...o.colNames];
    const svg = await heatmapPlot(m, {
      title: `${result.method}: ${name} (${m.rows} × ${m.cols})`,
      rowNames: axis.rows,
      colNames: axis.cols,
      rowTitle: axis.rowTitle,
      colTitle: axis.colTitle,
      maxRows: o.maxRows,
      maxCols: o.maxCols,
      topN: o.topN,
    });
    svgs.push([`heatmap-${name}.svg`, svg]);
  }
  return writeInto(outDir, svgs);
}

/** Writes files into `dir` (created if missing); each name is a plain file name (checked). */
function writeInto(dir: string, files: [string, string][]): string[] {
  const root = resolve(dir);
  if (files.length) mkdirSync(root, { recursive: true });
  const written: string[] = [];
  for (const [name, content] of files) {
    const path = join(root, name);
    if (dirname(path) !== root || name.startsWith('.')) throw new RangeError(`Expected a plain file name for an output of plotResult() but received ${describeValue(name)}`);
    const tmp = join(root, `.${name}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`);
    try {
      writeFileSync(tmp, content, { flag: 'wx' });
      renameSync(tmp, path);
    } catch (err) {
      rmSync(tmp, { force: true });
      throw err;
    }
    written.push(path);
  }
  return written;
}
