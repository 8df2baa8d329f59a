// SVG plots rendered headless by Vega (no browser): convergence traces, heatmaps of factor matrices,
// the w trade-off curve; `nsa-flow plot` on result directories written by the CLI.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

import { describe, expect, it } from 'vitest';

import { readMatrix } from '../lib/io/index.js';
import type { Matrix } from '../lib/matrix.js';
import { convergencePlot, heatmapPlot, tradeoffPlot } from '../lib/plot/index.js';
import { runMain, tempDir } from './helpers/cli-run.js';
import { registerStepsMethod } from './helpers/cli-steps-method.js';
import { dataFile } from './helpers/shared.js';

registerStepsMethod();
const wine = dataFile('sklearn_small/wine_X.npy'); // 178 × 13

/** The texts of the SVG's <text> elements of one role (axis-title, legend-label, title-text, …). */
function texts(svg: string, role: string): string[] {
  const group = new RegExp(`<g class="mark-text role-${role}[^"]*"[^>]*>(.*?)</g>`, 'gs');
  return [...svg.matchAll(group)].flatMap((m) => [...m[1]!.matchAll(/<text[^>]*>([^<]*)<\/text>/g)].map((t) => t[1]!));
}
const count = (svg: string, cls: string): number => svg.split(`class="${cls}`).length - 1;
/** Number of drawn items (paths) in the first mark group of a class, e.g. 'mark-rect role-mark'. */
function items(svg: string, cls: string): number {
  const m = svg.match(new RegExp(`<g class="${cls}[^"]*"[^>]*>(.*?)</g>`, 's'));
  return m ? (m[1]!.match(/<path/g) ?? []).length : 0;
}

describe('convergence traces', () => {
  it('one line per trace column on a log-scale y axis, labelled', async () => {
    const iteration = Float64Array.from({ length: 50 }, (_, i) => i + 1);
    const svg = await convergencePlot(
      { iteration, fidelity: iteration.map((i) => 1 / i), orthogonality: iteration.map((i) => 1 / i ** 2), total: iteration.map((i) => 1 / i + 1 / i ** 2) },
      { title: 'flow: convergence' },
    );
    expect(svg.startsWith('<svg')).toBe(true);
    expect(count(svg, 'mark-line role-mark')).toBe(3); // fidelity, orthogonality, total (iteration is x)
    expect(texts(svg, 'legend-label')).toEqual(['fidelity', 'orthogonality', 'total']);
    expect(texts(svg, 'axis-title')).toEqual(['iteration', 'value (log scale)']);
    expect(texts(svg, 'title-text')).toEqual(['flow: convergence']);
    // Log scale: the y ticks are decades (values span 4e-4 … 2).
    expect(texts(svg, 'axis-label')).toEqual(expect.arrayContaining(['0.001', '0.01', '0.1', '1']));
  });

  it('without an iteration column the x axis is the row index; non-positive values are left out of a log plot', async () => {
    const svg = await convergencePlot({ loss: Float64Array.from([4, 2, 1, 0, 0.5]) });
    expect(count(svg, 'mark-line role-mark')).toBe(1);
    expect(texts(svg, 'axis-title')).toEqual(['iteration', 'value (log scale)']);
    expect(items(svg, 'mark-line role-mark')).toBe(1); // one path for the one series
    await expect(convergencePlot({ iteration: new Float64Array(3) })).rejects.toThrow(/Expected at least one trace column/);
  });
});

describe('heatmaps of factor matrices', () => {
  it('a real 178 × 13 matrix: block means to 100 × 13 cells, axes, colour legend', async () => {
    const X = readMatrix(wine) as Matrix;
    const svg = await heatmapPlot(X, { title: 'wine', rowTitle: 'sample', colTitle: 'feature' });
    expect(items(svg, 'mark-rect role-mark')).toBe(100 * 13); // rows block-averaged to at most 100
    expect(texts(svg, 'axis-title')).toEqual(['feature', 'sample']);
    expect(texts(svg, 'title-text')).toEqual(['wine']);
    expect(count(svg, 'mark-rect role-legend-gradient')).toBe(1); // the value → colour scale
    expect(texts(svg, 'legend-title')).toEqual(['value']);
    const small = await heatmapPlot({ rows: 2, cols: 3, data: Float64Array.from([1, 2, 3, 4, 5, 6]) });
    expect(items(small, 'mark-rect role-mark')).toBe(6); // small: every entry is a cell
    expect(texts(small, 'title-text')).toEqual(['2 × 3']);
  });
});

describe('the w trade-off of a path result', () => {
  it('fidelity, orthogonality and sparsity against w, with points', async () => {
    const ws = Float64Array.from([0, 0.25, 0.5, 0.75, 1]);
    const svg = await tradeoffPlot({
      ws,
      fidelity: ws.map((w) => 0.01 + w * w),
      orthogonality: ws.map((w) => 0.5 * (1 - w) + 1e-4),
      sparsity: ws.map((w) => 0.2 + 0.3 * w),
    });
    expect(count(svg, 'mark-line role-mark')).toBe(3);
    expect(items(svg, 'mark-symbol role-mark')).toBe(15); // 3 quantities × 5 values of w
    expect(texts(svg, 'legend-label')).toEqual(['fidelity', 'orthogonality', 'sparsity']);
    expect(texts(svg, 'axis-title')).toEqual(['w (orthogonality weight)', 'value (log scale)']);
  });
});

describe('nsa-flow plot', () => {
  it('draws traces and every 2-D array of a result directory', async () => {
    const dir = tempDir('plot');
    expect((await runMain(['test-steps', wine, '--steps', '30', '--step-ms', '0', '--out', join(dir, 'run')])).code).toBe(0);
    const r = await runMain(['plot', join(dir, 'run'), '--out', join(dir, 'plots')]);
    expect(r.code, r.stderr).toBe(0);
    expect(readdirSync(join(dir, 'plots')).sort()).toEqual(['convergence.svg', 'heatmap-Y.svg']);
    const conv = readFileSync(join(dir, 'plots', 'convergence.svg'), 'utf8');
    expect(texts(conv, 'legend-label')).toEqual(['fidelity', 'orthogonality']); // the method's trace columns
    expect(texts(conv, 'title-text')).toEqual(['test-steps: convergence']);
    const heat = readFileSync(join(dir, 'plots', 'heatmap-Y.svg'), 'utf8');
    expect(texts(heat, 'title-text')).toEqual(['test-steps: Y (178 × 13)']);

    // A retract result has no traces: just the heatmap, next to result.json by default.
    expect((await runMain(['retract', wine, '--out', join(dir, 'r')])).code).toBe(0);
    expect((await runMain(['plot', join(dir, 'r', 'result.json')])).code).toBe(0);
    expect(readdirSync(join(dir, 'r')).sort()).toEqual(['Y.npy', 'heatmap-Y.svg', 'result.json']);
  });

  it('a missing result exits with 2 and names it', async () => {
    const r = await runMain(['plot', 'no/such/dir']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/Result not found: no\/such\/dir/);
  });
});
