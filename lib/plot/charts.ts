/**
 * Charts of named series of points: line or scatter panels side by side (chartPanelsPlot), dot plots
 * of labelled values (dotPanelsPlot), and curves measured at a few settings each on shared axes
 * (curvesPlot). Every input is read once and checked before anything is drawn; NaN, ±Infinity and
 * null values, and values ≤ 0 on a log axis, are left out of the drawing (a gap), as in convergencePlot
 * and tradeoffPlot.
 */
import type { TopLevelSpec } from 'vega-lite';

import { describe, readObject } from '../cli/check.js';
import type { OptionSpecs } from '../validate.js';
import {
  drawable,
  expectDistinct,
  int,
  maxFigureMarks,
  maxFigureParts,
  readFlag,
  readNumbers,
  readOptions,
  readParts,
  readText,
  renderSvg,
  schema,
  text,
} from './shared.js';

/** An axis of a panel: its title and whether it is log-scaled. */
export interface AxisOptions {
  title?: string;
  /** Log scale (default false); values ≤ 0 cannot be drawn on it and are left out. */
  log?: boolean;
}

function readAxis(v: unknown, name: string, fallback: string): { title: string; log: boolean } {
  if (v === undefined) return { title: fallback, log: false };
  const f = readObject(v, name, 'an axis {title, log}', ['title', 'log']);
  return { title: readText(f.title, `${name}.title`, fallback), log: readFlag(f.log, `${name}.log`) };
}

/** One named series of points (x[i], y[i]). */
export interface Series {
  name: string;
  x: ArrayLike<number | null>;
  y: ArrayLike<number | null>;
}

/** Series checked: names distinct, x and y of equal length, at most `budget` points in all. */
function readSeriesList(v: unknown, name: string, budget: { left: number }): { name: string; x: (number | null)[]; y: (number | null)[] }[] {
  const list = readParts(v, name, 'an array of series {name, x, y}').map((s, i) => {
    const at = `${name}[${i}]`;
    const f = readObject(s, at, 'a series {name, x, y}', ['name', 'x', 'y']);
    const seriesName = readText(f.name, `${at}.name`);
    const limit = ` (${maxFigureMarks} points in the figure at most)`;
    const x = readNumbers(f.x, `${at}.x`, budget.left, limit);
    const y = readNumbers(f.y, `${at}.y`, budget.left, limit);
    if (y.length !== x.length) throw new RangeError(`Expected ${x.length} values (one per x) for ${at}.y but received ${y.length}`);
    budget.left -= x.length;
    return { name: seriesName, x, y };
  });
  expectDistinct(list.map((s) => s.name), name, 'name');
  return list;
}

/** The points left of a budget of maxFigureMarks; each column read is capped by what is left. */
const newBudget = (): { left: number } => ({ left: maxFigureMarks });

// ---- chart panels ----------------------------------------------------------------------------------

/** One panel of chartPanelsPlot. */
export interface ChartPanel {
  title?: string;
  x?: AxisOptions;
  y?: AxisOptions;
  /** 'line' (default): one line per series, its points marked, in x order; 'point': one dot per value, labelled with its series. */
  mark?: 'line' | 'point';
  series: readonly Series[];
  /** A dashed vertical rule at x (the chosen w, say), with a label at its top. */
  rule?: { x: number; label?: string };
}

export interface ChartPanelsOptions {
  title?: string;
  /** Panels per row (default: all in one row). */
  columns?: number;
  /** Size of each panel's plot area in pixels (default 300 × 220). */
  width?: number;
  height?: number;
  /** The title of the series legend (default 'series'). */
  legendTitle?: string;
}

const chartPanelsSpecs = {
  title: text('a title'),
  columns: int(1, maxFigureParts, undefined, 'panels per row'),
  width: int(50, 4000, 300, 'panel width in pixels'),
  height: int(50, 4000, 220, 'panel height in pixels'),
  legendTitle: text('the title of the series legend'),
} as const satisfies OptionSpecs;

/**
 * Line or scatter charts side by side in one SVG (one panel each, in order, `columns` a row), each
 * with its own axes (not forced to include 0); the series of all panels share one colour legend.
 * Non-finite values, and values ≤ 0 on a log axis, are left out. At most 64 panels, 64 series a panel
 * and 200 000 points in all.
 */
export async function chartPanelsPlot(panels: readonly ChartPanel[], options: ChartPanelsOptions = {}): Promise<string> {
  const budget = newBudget();
  const read = readParts(panels, 'panels', 'an array of chart panels {title, x, y, mark, series, rule}').map((p, i) => {
    const at = `panels[${i}]`;
    const f = readObject(p, at, 'a chart panel {title, x, y, mark, series, rule}', ['title', 'x', 'y', 'mark', 'series', 'rule']);
    const title = readText(f.title, `${at}.title`, '');
    const x = readAxis(f.x, `${at}.x`, 'x');
    const y = readAxis(f.y, `${at}.y`, 'y');
    const mark = readText(f.mark, `${at}.mark`, 'line');
    if (mark !== 'line' && mark !== 'point') throw new RangeError(`Expected 'line' or 'point' for ${at}.mark but received ${describe(mark)}`);
    const series = readSeriesList(f.series, `${at}.series`, budget);
    let rule: { x: number; label: string } | undefined;
    if (f.rule !== undefined) {
      const r = readObject(f.rule, `${at}.rule`, 'a rule {x, label}', ['x', 'label']);
      if (typeof r.x !== 'number' || Number.isNaN(r.x)) throw new TypeError(`Expected a finite number for ${at}.rule.x but received ${describe(r.x)}`);
      if (!drawable(r.x, x.log)) throw new RangeError(`Expected a finite number${x.log ? ' > 0 (the x axis is log-scaled)' : ''} for ${at}.rule.x but received ${describe(r.x)}`);
      rule = { x: r.x, label: readText(r.label, `${at}.rule.label`, '') };
    }
    return { title, x, y, mark, series, rule };
  });
  const o = readOptions<Required<Pick<ChartPanelsOptions, 'width' | 'height'>> & ChartPanelsOptions>(chartPanelsSpecs, options, 'chartPanelsPlot()');
  const specs = read.map((p) => {
    const values = p.series.flatMap((s) => s.x.flatMap((xv, i) => (drawable(xv, p.x.log) && drawable(s.y[i], p.y.log) ? [{ x: xv, y: s.y[i]!, series: s.name }] : [])));
    const x = { field: 'x', type: 'quantitative', title: p.x.title, scale: p.x.log ? { type: 'log' } : { zero: false } };
    const y = { field: 'y', type: 'quantitative', title: p.y.title, scale: p.y.log ? { type: 'log' } : { zero: false } };
    const color = { field: 'series', type: 'nominal', title: o.legendTitle ?? 'series' };
    const layer: Record<string, unknown>[] = [
      p.mark === 'line'
        ? { mark: { type: 'line', point: true }, encoding: { x, y, color } }
        : { mark: { type: 'point', filled: true, size: 60 }, encoding: { x, y, color } },
    ];
    if (p.mark === 'point') layer.push({ mark: { type: 'text', align: 'left', dx: 5, dy: -5, fontSize: 9 }, encoding: { x, y, text: { field: 'series', type: 'nominal' } } });
    if (p.rule) {
      const rule = { data: { values: [{ x: p.rule.x, label: p.rule.label }] } };
      const rx = { field: 'x', type: 'quantitative' };
      layer.push({ ...rule, mark: { type: 'rule', strokeDash: [6, 4], color: '#333' }, encoding: { x: rx } });
      layer.push({ ...rule, mark: { type: 'text', align: 'left', dx: 4, baseline: 'top', fontSize: 10 }, encoding: { x: rx, y: { value: 4 }, text: { field: 'label', type: 'nominal' } } });
    }
    return { title: p.title, width: o.width, height: o.height, data: { values }, layer };
  });
  return renderSvg({ $schema: schema, ...(o.title === undefined ? {} : { title: o.title }), columns: o.columns ?? specs.length, concat: specs, resolve: { scale: { color: 'shared' } } } as unknown as TopLevelSpec);
}

// ---- dot panels ------------------------------------------------------------------------------------

/** One panel of dotPanelsPlot: one dot per labelled value, a row per label. */
export interface DotPanel {
  title?: string;
  x?: AxisOptions;
  /**
   * Drawn top to bottom in this order; `group` colours the dot and names it in the legend (no colours
   * or legend when no value has a group).
   */
  values: readonly { label: string; x: number | null; group?: string }[];
}

export interface DotPanelsOptions {
  title?: string;
  /** Panels per row (default: all in one row). */
  columns?: number;
  /** Width of each panel's plot area in pixels (default 260; the height follows the labels). */
  width?: number;
  /** The title of the group legend (default 'group'). */
  legendTitle?: string;
}

const dotPanelsSpecs = {
  title: text('a title'),
  columns: chartPanelsSpecs.columns,
  width: int(50, 4000, 260, 'panel width in pixels'),
  legendTitle: text('the title of the group legend'),
} as const satisfies OptionSpecs;

/**
 * Dot plots in one SVG (one panel each, in order, `columns` a row): a row per label, the value on
 * the panel's own x axis (not forced to include 0), coloured by group with one legend for all panels.
 * A non-finite value (or one ≤ 0 on a log axis) leaves its row empty. Labels within a panel are
 * distinct. At most 64 panels and 200 000 values in all.
 */
export async function dotPanelsPlot(panels: readonly DotPanel[], options: DotPanelsOptions = {}): Promise<string> {
  let left = maxFigureMarks;
  const read = readParts(panels, 'panels', 'an array of dot panels {title, x, values}').map((p, i) => {
    const at = `panels[${i}]`;
    const f = readObject(p, at, 'a dot panel {title, x, values}', ['title', 'x', 'values']);
    const title = readText(f.title, `${at}.title`, '');
    const x = readAxis(f.x, `${at}.x`, 'x');
    const values = readParts(f.values, `${at}.values`, 'an array of values {label, x, group}', left).map((v, j) => {
      const vat = `${at}.values[${j}]`;
      const r = readObject(v, vat, 'a value {label, x, group}', ['label', 'x', 'group']);
      if (r.x !== null && typeof r.x !== 'number') throw new TypeError(`Expected a number (or null for a gap) for ${vat}.x but received ${describe(r.x)}`);
      return { label: readText(r.label, `${vat}.label`), x: r.x as number | null, group: r.group === undefined ? undefined : readText(r.group, `${vat}.group`) };
    });
    left -= values.length;
    expectDistinct(values.map((v) => v.label), `${at}.values`, 'label');
    return { title, x, values };
  });
  const o = readOptions<Required<Pick<DotPanelsOptions, 'width'>> & DotPanelsOptions>(dotPanelsSpecs, options, 'dotPanelsPlot()');
  // Colour by group only when some value has one; a value without one is then in an unnamed group.
  const grouped = read.some((p) => p.values.some((v) => v.group !== undefined));
  const specs = read.map((p) => ({
    title: p.title,
    width: o.width,
    data: { values: p.values.filter((v) => drawable(v.x, p.x.log)).map((v) => ({ label: v.label, x: v.x, group: v.group ?? '' })) },
    mark: { type: 'point', filled: true, size: 50 },
    encoding: {
      x: { field: 'x', type: 'quantitative', title: p.x.title, scale: p.x.log ? { type: 'log' } : { zero: false } },
      y: { field: 'label', type: 'nominal', title: null, sort: p.values.map((v) => v.label) },
      ...(grouped ? { color: { field: 'group', type: 'nominal', title: o.legendTitle ?? 'group' } } : {}),
    },
  }));
  return renderSvg({ $schema: schema, ...(o.title === undefined ? {} : { title: o.title }), columns: o.columns ?? specs.length, concat: specs, resolve: { scale: { color: 'shared' } } } as unknown as TopLevelSpec);
}

// ---- curves ----------------------------------------------------------------------------------------

export interface CurvesPlotOptions {
  title?: string;
  /** Axis titles (default 'x' / 'y'). */
  xTitle?: string;
  yTitle?: string;
  /** Log-scale y (default false); values ≤ 0 are left out. */
  logY?: boolean;
  /** Size of the plot area in pixels (default 480 × 300). */
  width?: number;
  height?: number;
}

const curvesSpecs = {
  title: text('a title'),
  xTitle: text('the x axis title'),
  yTitle: text('the y axis title'),
  logY: { kind: 'boolean', description: 'log-scale y' },
  width: int(50, 4000, 480, 'width in pixels'),
  height: int(50, 4000, 300, 'height in pixels'),
} as const satisfies OptionSpecs;

/**
 * Curves with their points marked, one colour each (legend in the order given), on shared axes, each
 * joined in the order its points are given (not sorted by x): for quantities measured at a few
 * settings per method (error against parameter count), which convergencePlot's one-x-column traces do
 * not fit. At most 64 curves and 200 000 points in all.
 */
export async function curvesPlot(curves: readonly Series[], options: CurvesPlotOptions = {}): Promise<string> {
  const list = readSeriesList(curves, 'curves', newBudget());
  const o = readOptions<Required<Pick<CurvesPlotOptions, 'width' | 'height'>> & CurvesPlotOptions>(curvesSpecs, options, 'curvesPlot()');
  const logY = o.logY ?? false;
  const values = list.flatMap((c) => c.x.flatMap((x, i) => (drawable(x, false) && drawable(c.y[i], logY) ? [{ x, y: c.y[i]!, curve: c.name, order: i }] : [])));
  return renderSvg({
    $schema: schema,
    ...(o.title === undefined ? {} : { title: o.title }),
    width: o.width,
    height: o.height,
    data: { values },
    mark: { type: 'line', point: true },
    encoding: {
      x: { field: 'x', type: 'quantitative', title: o.xTitle ?? 'x', scale: { zero: false } },
      y: { field: 'y', type: 'quantitative', title: o.yTitle ?? 'y', scale: logY ? { type: 'log' } : { zero: false } },
      color: { field: 'curve', type: 'nominal', title: null, sort: list.map((c) => c.name), legend: { labelLimit: 240 } },
      order: { field: 'order', type: 'quantitative' },
    },
  } as unknown as TopLevelSpec);
}
