// SVG plots rendered headless by Vega (no browser): convergence traces, heatmaps of factor matrices,
// the w trade-off curve; `nsa-flow plot` on result directories written by the CLI.
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { describe, expect, it } from 'vitest';

import { readMatrix, readNpy, writeNpy } from '../lib/io/index.js';
import type { Matrix } from '../lib/matrix.js';
import { convergencePlot, heatmapPlot, heatmapSpec, loadPlotPackages, MissingPackageError, readPlotResult, renderSvg, tradeoffPlot } from '../lib/plot/index.js';
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
/** SVG text content with the XML entities decoded. */
const unescape = (s: string): string => s.replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&quot;/g, '"').replace(/&#39;/g, "'").replace(/&amp;/g, '&');
/** The [r, g, b] fills of the cells of the first rect mark group, in drawing order. */
function fills(svg: string): number[][] {
  const m = svg.match(/<g class="mark-rect role-mark[^"]*"[^>]*>(.*?)<\/g>/s);
  return [...(m?.[1] ?? '').matchAll(/fill="rgb\((\d+), (\d+), (\d+)\)"/g)].map((f) => [Number(f[1]), Number(f[2]), Number(f[3])]);
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

  it("the solver contract's timeMs and iteration columns are axes, never lines; timeMs can be the x axis", async () => {
    // The NMF family's traces: iteration, timeMs, loss, normalizedLoss.
    const iteration = Float64Array.from({ length: 20 }, (_, i) => i);
    const traces = { iteration, timeMs: iteration.map((i) => 3 * i), loss: iteration.map((i) => 10 / (i + 1)), normalizedLoss: iteration.map((i) => 1 / (i + 1)) };
    const svg = await convergencePlot(traces);
    expect(texts(svg, 'legend-label')).toEqual(['loss', 'normalizedLoss']);
    const byTime = await convergencePlot(traces, { x: 'timeMs' });
    expect(texts(byTime, 'axis-title')).toEqual(['timeMs', 'value (log scale)']);
    expect(texts(byTime, 'legend-label')).toEqual(['loss', 'normalizedLoss']);
  });
});

describe('heatmaps of factor matrices', () => {
  it('a real 178 × 13 matrix: the first 60 rows, axes, colour legend, and a subtitle that says where it stops', async () => {
    const X = readMatrix(wine) as Matrix;
    const svg = await heatmapPlot(X, { title: 'wine', rowTitle: 'sample', colTitle: 'feature' });
    expect(items(svg, 'mark-rect role-mark')).toBe(60 * 13); // rows stop at maxRows = 60
    expect(texts(svg, 'axis-title')).toEqual(['feature', 'sample']);
    expect(texts(svg, 'title-text')).toEqual(['wine']);
    expect(texts(svg, 'title-subtitle')).toEqual(['first 60 of 178 samples']);
    expect(count(svg, 'mark-rect role-legend-gradient')).toBe(1); // the value → colour scale
    expect(texts(svg, 'legend-title')).toEqual(['value']);
    const small = await heatmapPlot({ rows: 2, cols: 3, data: Float64Array.from([1, 2, 3, 4, 5, 6]) });
    expect(items(small, 'mark-rect role-mark')).toBe(6); // small: every entry is a cell, no subtitle
    expect(texts(small, 'title-text')).toEqual(['2 × 3']);
    expect(texts(small, 'title-subtitle')).toEqual([]);
  });

  it('rows and columns are labelled with the names given (strata, terms), in order', async () => {
    const m = { rows: 3, cols: 4, data: Float64Array.from({ length: 12 }, (_, i) => i) };
    const strata = ['Emma', 'Persuasion', 'Pride & Prejudice'];
    const terms = ['darcy', 'anne', 'emma', 'ball'];
    const svg = await heatmapPlot(m, { rowNames: strata, colNames: terms, rowTitle: 'stratum', colTitle: 'term' });
    const labels = texts(svg, 'axis-label').map(unescape);
    // x axis (terms) first, then y axis (strata): every name is drawn once, in the matrix's order.
    expect(labels).toEqual([...terms, ...strata]);
    expect(texts(svg, 'axis-title')).toEqual(['term', 'stratum']);
    await expect(heatmapPlot(m, { rowNames: ['a'] })).rejects.toThrow(new RangeError('Expected 3 names (one per row) for options.rowNames of heatmapPlot() but received 1'));
    await expect(heatmapPlot(m, { colNames: [1, 2, 3, 4] as never })).rejects.toThrow(TypeError);
    // Duplicate names stay distinct cells; a title that is not one word is not pluralised in the note.
    const tall = { rows: 70, cols: 2, data: new Float64Array(140) };
    const svg2 = await heatmapPlot(tall, { rowTitle: 'row of X (Emma)', colNames: ['a', 'a'] });
    expect(texts(svg2, 'title-subtitle')).toEqual(['first 60 of 70 rows']);
    expect(texts(svg2, 'axis-label').slice(0, 2)).toEqual(['a', 'a [1]']);
  });

  it('a signed matrix gets a diverging scale centred at 0 (blue < 0 < red); a non-negative one a sequential scale from 0', async () => {
    const signed = { rows: 1, cols: 3, data: Float64Array.from([-2, 0, 2]) };
    const spec = heatmapSpec(signed) as { encoding: { color: { scale: Record<string, unknown> } } };
    expect(spec.encoding.color.scale).toEqual({ scheme: 'redblue', reverse: true, domain: [-2, 2], domainMid: 0 });
    const [neg, zero, pos] = fills(await heatmapPlot(signed));
    expect(neg![2]).toBeGreaterThan(neg![0]! + 50); // −2: clearly blue
    expect(pos![0]).toBeGreaterThan(pos![2]! + 50); // +2: clearly red
    expect(Math.min(...zero!)).toBeGreaterThan(230); // 0: the scheme's near-white middle
    const nonNegative = heatmapSpec({ rows: 1, cols: 2, data: Float64Array.from([0, 5]) }) as typeof spec;
    expect(nonNegative.encoding.color.scale).toEqual({ scheme: 'blues', domainMin: 0 });
  });

  it('a topic matrix over more named terms than fit shows the top-N terms of each topic, in order, and says so', async () => {
    // 2 topics × 100 terms: topic 0 peaks at term 10 > 11 > 12 …, topic 1 at term 90 > 89 > 88 ….
    const m = { rows: 2, cols: 100, data: new Float64Array(200) };
    for (let j = 0; j < 100; j++) {
      m.data[j] = 1 / (1 + Math.abs(j - 10) + (j < 10 ? 100 : 0));
      m.data[100 + j] = 1 / (1 + Math.abs(90 - j) + (j > 90 ? 100 : 0));
    }
    const vocab = Array.from({ length: 100 }, (_, j) => `term${j}`);
    const svg = await heatmapPlot(m, { colNames: vocab, rowTitle: 'topic', colTitle: 'term', topN: 4 });
    expect(texts(svg, 'title-subtitle')).toEqual(['top 4 of 100 terms per topic']);
    // Text marks, column by column: topic 0's top 4 terms, then topic 1's.
    expect(texts(svg, 'mark')).toEqual(['term10', 'term11', 'term12', 'term13', 'term90', 'term89', 'term88', 'term87']);
    expect(items(svg, 'mark-rect role-mark')).toBe(8);
    // Signed: ranked by |value|, and the subtitle says so.
    const signed = { rows: 1, cols: 80, data: Float64Array.from({ length: 80 }, (_, j) => (j === 5 ? -9 : j === 7 ? 3 : 0.01)) };
    const s2 = await heatmapPlot(signed, { colNames: vocab.slice(0, 80), topN: 2 });
    expect(texts(s2, 'mark')).toEqual(['term5', 'term7']);
    expect(texts(s2, 'title-subtitle')).toEqual(['top 2 of 80 columns per row (by |value|)']);
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
    expect(count(svg, 'mark-rule role-mark')).toBe(0); // no selection, no mark
  });

  it('the selected w is a dashed vertical rule at that w, labelled, and named in the subtitle', async () => {
    const ws = Float64Array.from([0, 0.25, 0.5, 0.75, 1]);
    const curve = { ws, fidelity: ws.map((w) => 0.01 + w), orthogonality: ws.map((w) => 1.01 - w) };
    const svg = await tradeoffPlot(curve, { selectedW: 0.5, selectionCriterion: 'knee' });
    expect(texts(svg, 'title-subtitle')).toEqual(['selected w = 0.5 (knee)']);
    expect(texts(svg, 'mark')).toEqual(['selected w = 0.5 (knee)']);
    const rule = svg.match(/<g class="mark-rule role-mark[^"]*"[^>]*>(.*?)<\/g>/s)![1]!;
    expect(rule.match(/<line/g)).toHaveLength(1);
    expect(rule).toMatch(/stroke-dasharray="6,4"/);
    // The x scale maps [0, 1] to [0, 480 px]: w = 0.5 sits at 240.
    expect(rule).toMatch(/transform="translate\(240,0\)"/);
    await expect(tradeoffPlot(curve, { selectedW: 2 })).rejects.toThrow(new RangeError('Expected a finite number in [0, 1] for options.selectedW of tradeoffPlot() but received 2'));
  });
});

describe('long traces', () => {
  it('are thinned to at most maxPoints per trace, and the subtitle says so', async () => {
    const iteration = Float64Array.from({ length: 5000 }, (_, i) => i + 1);
    const svg = await convergencePlot({ iteration, loss: iteration.map((i) => 1 / i) }, { maxPoints: 1000 });
    expect(texts(svg, 'title-subtitle')).toEqual(['every 5th of 5000 points drawn']);
    // One path whose vertices are the 1000 kept points (every 5th from the first) plus the last one.
    const d = svg.match(/<g class="mark-line role-mark[^"]*"[^>]*>.*?\sd="([^"]*)"/s)![1]!;
    expect(d.split('L').length).toBe(1001);
  });
});

describe('bad arguments', () => {
  it('renderSvg and readPlotResult name the argument', async () => {
    await expect(renderSvg(null as never)).rejects.toThrow(new TypeError('Expected a Vega-Lite spec object for spec but received null'));
    await expect(renderSvg({ mark: 'nonsense' } as never)).rejects.toThrow(/^Expected a valid Vega-Lite spec for spec but compiling it failed: /);
    expect(() => readPlotResult(42 as never)).toThrow(new TypeError('Expected a path for resultPath but received 42'));
  });
});

describe('vega and vega-lite are optional', () => {
  it('a missing package is one MissingPackageError naming both packages and the install command', async () => {
    const missing = async (name: string): Promise<never> => {
      throw Object.assign(new Error(`Cannot find package '${name}' imported from nsa-flow`), { code: 'ERR_MODULE_NOT_FOUND' });
    };
    const err = await loadPlotPackages(missing).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(MissingPackageError);
    expect((err as MissingPackageError).packages).toEqual(['vega', 'vega-lite']);
    expect((err as Error).message).toBe(
      "Plots need the optional packages vega and vega-lite, which could not be loaded: install them with `npm install vega vega-lite` (Cannot find package 'vega' imported from nsa-flow)",
    );
    await expect(loadPlotPackages('vega' as never)).rejects.toThrow(new TypeError('Expected a function (name) => Promise<module> for importer but received the string "vega"'));
    // The failed injected load is not cached: the installed packages still load.
    const ok = await loadPlotPackages();
    expect(typeof ok.vegaLite.compile).toBe('function');
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

  it('snmf: V is labelled with the strata names, H shows the top terms of --col-names per topic', async () => {
    const dir = tempDir('plot-snmf');
    // 12 documents × 40 terms in 3 strata; stratum s uses terms 10s..10s+9 most, topic structure random.
    let seed = 7;
    const rnd = (): number => ((seed = (seed * 16807) % 2147483647) / 2147483647);
    const strata = ['alpha', 'beta', 'gamma'];
    const X = { rows: 12, cols: 40, data: new Float64Array(480) };
    for (let i = 0; i < 12; i++) for (let j = 0; j < 40; j++) X.data[i * 40 + j] = rnd() + (Math.floor(j / 10) === i % 3 ? 3 : 0);
    writeNpy(join(dir, 'X.npy'), X);
    writeFileSync(join(dir, 'docs.csv'), 'doc,stratum\n' + Array.from({ length: 12 }, (_, i) => `d${i},${strata[i % 3]}`).join('\n') + '\n');
    writeFileSync(join(dir, 'vocab.txt'), Array.from({ length: 40 }, (_, j) => `w${j}`).join('\n') + '\n');
    const run = await runMain(['snmf', join(dir, 'X.npy'), '--strata-from', join(dir, 'docs.csv:stratum'), '--rank', '2', '--max-iterations', '20', '--out', join(dir, 'r')]);
    expect(run.code, run.stderr).toBe(0);
    const json = JSON.parse(readFileSync(join(dir, 'r', 'result.json'), 'utf8'));
    expect(json.names.V).toEqual({ rows: strata, rowTitle: 'stratum', colTitle: 'feature' }); // strata in order of the labels

    const r = await runMain(['plot', join(dir, 'r'), '--out', join(dir, 'p'), '--col-names', join(dir, 'vocab.txt'), '--top', '5']);
    expect(r.code, r.stderr).toBe(0);
    const V = readFileSync(join(dir, 'p', 'heatmap-V.svg'), 'utf8');
    // 40 columns fit (at most 60 are drawn): V is a grid, every term on x in order (vertical labels,
    // one per 18-px cell), the strata on y.
    expect(texts(V, 'axis-label')).toEqual([...Array.from({ length: 40 }, (_, j) => `w${j}`), ...strata]);
    expect(texts(V, 'axis-title')).toEqual(['feature', 'stratum']);
    // With at most 20 columns drawn the terms no longer fit: top 5 terms per stratum / topic instead.
    const r2 = await runMain(['plot', join(dir, 'r'), '--out', join(dir, 'p2'), '--col-names', join(dir, 'vocab.txt'), '--top', '5', '--max-cols', '20']);
    expect(r2.code, r2.stderr).toBe(0);
    const V2 = readFileSync(join(dir, 'p2', 'heatmap-V.svg'), 'utf8');
    expect(texts(V2, 'title-subtitle')).toEqual(['top 5 of 40 features per stratum']);
    expect(texts(V2, 'axis-label').slice(0, 3)).toEqual(strata); // the strata head the columns
    // Each stratum's shift v(s) is largest on its own block of terms: w0–w9, w10–w19, w20–w29.
    const top = texts(V2, 'mark');
    expect(top).toHaveLength(15);
    top.forEach((term, k) => expect(Math.floor(Number(term.slice(1)) / 10), `${term} of ${strata[Math.floor(k / 5)]}`).toBe(Math.floor(k / 5)));
    const H = readFileSync(join(dir, 'p2', 'heatmap-H.svg'), 'utf8');
    expect(texts(H, 'title-subtitle')).toEqual(['top 5 of 40 features per topic']);
    expect(texts(H, 'mark').every((t) => /^w\d+$/.test(t))).toBe(true);

    // A names file that fits no array is refused, naming the flag.
    writeFileSync(join(dir, 'short.txt'), 'a\nb\nc\nd\n');
    const bad = await runMain(['plot', join(dir, 'r'), '--out', join(dir, 'p3'), '--col-names', join(dir, 'short.txt')]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/Expected as many names as some array has columns for --col-names but received 4 \(2-D arrays: V 3×40, H 2×40, /);
  });

  it('--row-names FILE.csv:COLUMN names the rows of arrays with that many rows: top rows per column when they do not fit', async () => {
    const dir = tempDir('plot-rows');
    // 80 features × 3 components; component c is largest on features 10c, 10c+1, 10c+2 (in that order).
    const Y = { rows: 80, cols: 3, data: new Float64Array(240) };
    for (let c = 0; c < 3; c++) for (let k = 0; k < 3; k++) Y.data[(10 * c + k) * 3 + c] = 3 - k;
    writeNpy(join(dir, 'Y.npy'), Y);
    writeFileSync(join(dir, 'genes.csv'), 'id,symbol\n' + Array.from({ length: 80 }, (_, i) => `${i},G${i}`).join('\n') + '\n');
    expect((await runMain(['test-steps', join(dir, 'Y.npy'), '--steps', '1', '--step-ms', '0', '--out', join(dir, 'r')])).code).toBe(0);
    const r = await runMain(['plot', join(dir, 'r'), '--out', join(dir, 'p'), '--row-names', join(dir, 'genes.csv:symbol'), '--top', '3']);
    expect(r.code, r.stderr).toBe(0);
    const svg = readFileSync(join(dir, 'p', 'heatmap-Y.svg'), 'utf8');
    expect(texts(svg, 'title-subtitle')).toEqual(['top 3 of 80 rows per column']);
    // test-steps scales its input by 1/(steps+1): the order is the input's.
    expect(texts(svg, 'mark')).toEqual(['G0', 'G1', 'G2', 'G10', 'G11', 'G12', 'G20', 'G21', 'G22']);
    const missing = await runMain(['plot', join(dir, 'r'), '--row-names', join(dir, 'nope.txt')]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain(`Names file not found: ${join(dir, 'nope.txt')} (--row-names)`);
  });

  it('path: the selected solution is written as selectedY.npy, and the trade-off marks the selected w', async () => {
    const dir = tempDir('plot-path');
    let seed = 11;
    const rnd = (): number => ((seed = (seed * 16807) % 2147483647) / 2147483647) - 0.3;
    writeNpy(join(dir, 'Y0.npy'), { rows: 30, cols: 3, data: Float64Array.from({ length: 90 }, rnd) });
    const run = await runMain(['path', join(dir, 'Y0.npy'), '--ws', '[0.2,0.5,0.8]', '--select', 'knee', '--max-iterations', '30', '--out', join(dir, 'r')]);
    expect(run.code, run.stderr).toBe(0);
    const json = JSON.parse(readFileSync(join(dir, 'r', 'result.json'), 'utf8'));
    const { index, w } = json.values.selection as { index: number; w: number };
    expect(json.arrays.selectedY).toEqual({ file: 'selectedY.npy', shape: [30, 3] });
    // The selected solution is the path's solution at the selected index, value for value.
    expect(readNpy(join(dir, 'r', 'selectedY.npy')).data).toEqual(readNpy(join(dir, 'r', `points.${index}.Y.npy`)).data);

    const r = await runMain(['plot', join(dir, 'r'), '--out', join(dir, 'p')]);
    expect(r.code, r.stderr).toBe(0);
    const svg = readFileSync(join(dir, 'p', 'tradeoff.svg'), 'utf8');
    expect(texts(svg, 'mark')).toEqual([`selected w = ${w} (knee)`]);
    expect(svg.match(/<g class="mark-rule role-mark[^"]*"[^>]*>(.*?)<\/g>/s)![1]!.match(/<line/g)).toHaveLength(1);
    expect(readdirSync(join(dir, 'p'))).toContain('heatmap-selectedY.svg');
    // A loading matrix: rows are features, columns components (result.json's names say so).
    expect(json.names.selectedY).toEqual({ rowTitle: 'feature', colTitle: 'component' });
    expect(texts(readFileSync(join(dir, 'p', 'heatmap-selectedY.svg'), 'utf8'), 'axis-title')).toEqual(['component', 'feature']);
  });
});
