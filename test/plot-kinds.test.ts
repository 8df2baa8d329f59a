// The figure kinds of nsa-flow/plot beyond one matrix or one trace table: heatmap panels, image grids,
// chart panels, dot panels and curves. Each figure is checked by structure (a well-nested SVG, its
// panels, legend and titles) and by where the values land: the plot area of a panel is width × height
// px with y pointing down, so on an axis whose domain is exactly the data's range (0…10, 1…1000: nice
// numbers, which Vega keeps as they are) the maximum is at y = 0 and the minimum at y = height.
// Every guard is checked by class and message.
import { describe, expect, it } from 'vitest';

import { chartPanelsPlot, curvesPlot, dotPanelsPlot, heatmapPanelsPlot, imageGridPlot, renderSvg } from '../lib/plot/index.js';
import { drawnItems, expectSvg, legendLabels, panelCount, roleTexts } from './helpers/svg.js';

const m = (rows: number, cols: number, values: ArrayLike<number>) => ({ rows, cols, data: Float64Array.from(values) });
const points = (svg: string) => drawnItems(svg).filter((d) => d.kind === 'point');
const rects = (svg: string) => drawnItems(svg).filter((d) => d.kind === 'rect mark');
/** An object whose `key` getter counts its reads and returns the next of `values` each time. */
function changing<T>(base: Record<string, unknown>, key: string, values: T[]): { object: Record<string, unknown>; reads: () => number } {
  let reads = 0;
  const object = { ...base };
  Object.defineProperty(object, key, { enumerable: true, get: () => values[Math.min(reads++, values.length - 1)] });
  return { object, reads: () => reads };
}
const throwing = (base: Record<string, unknown>, key: string) =>
  Object.defineProperty({ ...base }, key, {
    enumerable: true,
    get() {
      throw new Error('boom');
    },
  });
// Markup and quotes, short enough that no label limit cuts it.
const hostile = '<x/>&"\'</g>';

describe('chartPanelsPlot', () => {
  it('panels side by side, one legend for their series, values placed on each panel\'s axes', async () => {
    const svg = await chartPanelsPlot(
      [
        { title: 'linear', x: { title: 'w' }, y: { title: 'value' }, series: [{ name: 'a', x: [0, 5, 10], y: [0, 10, 5] }, { name: 'b', x: [0, 10], y: [2, 4] }] },
        { title: 'log', y: { title: 'value (log)', log: true }, mark: 'point', series: [{ name: 'c', x: Float64Array.from([1, 2, 3]), y: Float64Array.from([1, 1000, 10]) }], rule: { x: 2, label: 'chosen' } },
      ],
      { title: 'Two panels', width: 200, height: 100 },
    );
    expectSvg(svg);
    expect(panelCount(svg)).toBe(2);
    expect(roleTexts(svg, 'legend-label')).toEqual(['a', 'b', 'c']); // one shared legend
    expect(legendLabels(svg)).toBe(3);
    expect(roleTexts(svg, 'title-text')).toEqual(['linear', 'log', 'Two panels']);
    expect(roleTexts(svg, 'axis-title')).toEqual(['w', 'value', 'x', 'value (log)']);
    // Items are labelled with the axis titles ("w: 5; value: 10; series: a"); the i-th point of a series:
    const at = (panel: number, series: string, i: number) => points(svg).filter((d) => d.panel === panel && d.fields.series === series)[i]!;
    // Linear panel, domains x 0…10, y 0…10 on 200 × 100 px: (5, 10) is the top, (0, 0) the bottom-left corner.
    expect(at(0, 'a', 1)).toMatchObject({ fields: { w: '5', value: '10' }, x: 100, y: 0 });
    expect(at(0, 'a', 0)).toMatchObject({ fields: { w: '0', value: '0' }, x: 0, y: 100 });
    expect(at(0, 'a', 2)).toMatchObject({ x: 200, y: 50 });
    expect(at(0, 'b', 1)).toMatchObject({ fields: { w: '10', value: '4' }, y: 60 }); // 4 of 10: 40 % up
    // Log panel, y 1…1000: 10 is a third of the way up; x 1…3 (not forced to 0).
    expect(at(1, 'c', 1)).toMatchObject({ fields: { 'value (log)': '1000' }, x: 100, y: 0 });
    expect(at(1, 'c', 2).y).toBeCloseTo(100 * (2 / 3), 6);
    expect(at(1, 'c', 0)).toMatchObject({ x: 0, y: 100 });
    // 'point' panels label each dot with its series; the rule sits at x = 2 with its label.
    expect(drawnItems(svg).filter((d) => d.kind === 'text mark' && d.panel === 1 && d.fields.series === 'c')).toHaveLength(3);
    const rule = drawnItems(svg).find((d) => d.kind === 'rule mark')!;
    expect([rule.panel, rule.x]).toEqual([1, 100]);
    expect(drawnItems(svg).some((d) => d.kind === 'text mark' && d.fields.label === 'chosen')).toBe(true);
  });

  it('leaves out NaN, ±Infinity and null, and values ≤ 0 on a log axis (a gap, as the other plots)', async () => {
    const svg = await chartPanelsPlot([
      { series: [{ name: 's', x: [0, 1, 2, 3, 4, 5], y: [1, NaN, Infinity, null, 3, -Infinity] }] },
      { y: { log: true }, series: [{ name: 's', x: [0, 1, 2, 3], y: [10, 0, -1, 100] }] },
      { x: { log: true }, series: [{ name: 's', x: [0, 1, 10], y: [1, 2, 3] }] },
    ]);
    expect(points(svg).map((d) => `${d.panel}:${d.fields.x}`)).toEqual(['0:0', '0:4', '1:0', '1:3', '2:1', '2:10']);
  });

  it('escapes titles, axis titles, series names and labels (text, never markup)', async () => {
    const svg = await chartPanelsPlot([{ title: hostile, x: { title: hostile }, series: [{ name: hostile, x: [1, 2], y: [1, 2] }], mark: 'point', rule: { x: 1.5, label: hostile } }], { title: hostile, legendTitle: hostile });
    expectSvg(svg);
    expect(svg).not.toMatch(/<x\/>|<\/g>&/);
    expect(roleTexts(svg, 'title-text')).toEqual([hostile, hostile]);
    expect(roleTexts(svg, 'legend-label')).toEqual([hostile]);
    expect(roleTexts(svg, 'legend-title')).toEqual([hostile]);
    expect(roleTexts(svg, 'axis-title')[0]).toBe(hostile);
  });

  it('reads each input once: a getter that changes between reads is drawn as first read', async () => {
    const series = changing({ name: 's', x: [0, 10] }, 'y', [[0, 10], [10, 0]]);
    const panel = changing({ series: [series.object] }, 'title', ['first', 'second']);
    const svg = await chartPanelsPlot([panel.object as never], { width: 100, height: 100 });
    expect([series.reads(), panel.reads()]).toEqual([1, 1]);
    expect(roleTexts(svg, 'title-text')).toEqual(['first']);
    expect(points(svg).map((d) => d.y)).toEqual([100, 0]); // y = [0, 10]: bottom, then top
  });
});

describe('dotPanelsPlot', () => {
  it('a row per label in the order given, the value on the panel\'s x axis, coloured by group', async () => {
    const svg = await dotPanelsPlot(
      [
        { title: 'energy', x: { title: 'E' }, values: [{ label: 'zeta', x: 0, group: 'sgd' }, { label: 'alpha', x: 10, group: 'adaptive' }, { label: 'mid', x: 5, group: 'sgd' }] },
        { title: 'defect', x: { title: 'd', log: true }, values: [{ label: 'zeta', x: 1, group: 'sgd' }, { label: 'alpha', x: 1000, group: 'adaptive' }, { label: 'gone', x: 0, group: 'sgd' }] },
      ],
      { title: 'Dots', columns: 2, width: 100, legendTitle: 'kind' },
    );
    expectSvg(svg);
    expect(panelCount(svg)).toBe(2);
    expect(roleTexts(svg, 'legend-title')).toEqual(['kind']);
    expect(roleTexts(svg, 'legend-label').sort()).toEqual(['adaptive', 'sgd']);
    const p = points(svg);
    const first = p.filter((d) => d.panel === 0);
    // Top to bottom as given (not sorted by name), 20-px rows; x 0…10 over 100 px.
    expect(first.map((d) => d.fields.label)).toEqual(['zeta', 'alpha', 'mid']);
    expect(first.map((d) => d.y)).toEqual([10, 30, 50]);
    expect(first.map((d) => d.x)).toEqual([0, 100, 50]);
    // The log panel leaves out x = 0 (its row stays) and puts 1 … 1000 at the ends.
    expect(p.filter((d) => d.panel === 1).map((d) => [d.fields.label, d.x])).toEqual([['zeta', 0], ['alpha', 100]]);
  });

  it('no legend when no value has a group; labels are escaped', async () => {
    const svg = await dotPanelsPlot([{ title: hostile, values: [{ label: hostile, x: 1 }, { label: 'b', x: 2 }] }]);
    expectSvg(svg);
    expect(svg).not.toMatch(/<x\/>|<\/g>&/);
    expect(legendLabels(svg)).toBe(0);
    expect(roleTexts(svg, 'axis-label')).toContain(hostile);
  });
});

describe('curvesPlot', () => {
  it('joins each curve in the order given, legend in the order given, points on shared axes', async () => {
    const svg = await curvesPlot(
      [
        { name: 'zeta', x: [10, 0, 5], y: [10, 0, 5] },
        { name: 'alpha', x: Float64Array.from([0, 10]), y: Float64Array.from([10, 0]) },
      ],
      { title: 'Curves', xTitle: 'parameters', yTitle: 'error', width: 100, height: 100 },
    );
    expectSvg(svg);
    expect(roleTexts(svg, 'legend-label')).toEqual(['zeta', 'alpha']);
    expect(roleTexts(svg, 'axis-title')).toEqual(['parameters', 'error']);
    expect(roleTexts(svg, 'title-text')).toEqual(['Curves']);
    // The line of 'zeta' goes (10,10) → (0,0) → (5,5): the order given, not sorted by x.
    const line = /aria-roledescription="line mark" d="([^"]+)"[^>]*>/.exec(svg.slice(svg.indexOf('curve: zeta')))!;
    expect(line[1]).toBe('M100,0L0,100L50,50');
    const p = points(svg).map((d) => [d.fields.curve, d.x, d.y]);
    expect(p).toEqual(expect.arrayContaining([['alpha', 0, 0], ['alpha', 100, 100]]));
  });

  it('logY leaves out values ≤ 0 and non-finite ones', async () => {
    const svg = await curvesPlot([{ name: 'c', x: [1, 2, 3, 4, 5], y: [1, 0, NaN, 100, 10] }], { logY: true, height: 100 });
    expect(points(svg).map((d) => [d.fields.x, d.y])).toEqual([['1', 100], ['4', 0], ['5', 50]]);
  });
});

describe('heatmapPanelsPlot', () => {
  const A = m(4, 3, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
  const B = m(2, 2, [-1, 0, 0, 1]);

  it('one panel per matrix; a small one enlarged by a whole factor; one colour scale or one per panel', async () => {
    const svg = await heatmapPanelsPlot([{ m: A, options: { title: 'A' } }, { m: B }], { title: 'Both' });
    expectSvg(svg);
    expect(panelCount(svg)).toBe(2);
    expect(roleTexts(svg, 'title-text')).toEqual(['A', '2 × 2', 'Both']);
    // 4 × 3 at 18-px cells is 54 px wide: zoomed 2× (to ≥ 160 px: floor(160/54) = 2), 36-px cells.
    const a = rects(svg).filter((d) => d.panel === 0);
    expect(a).toHaveLength(12);
    const cell = a.find((d) => d.fields.row === '2' && d.fields.column === '1')!;
    expect([cell.x, cell.y, Number(cell.fields.value)]).toEqual([36, 72, 7]);
    // 2 × 2: 36 px, zoomed 4× to 72-px cells.
    expect(rects(svg).filter((d) => d.panel === 1).map((d) => [d.x, d.y])).toEqual([[0, 0], [72, 0], [0, 72], [72, 72]]);
    const gradients = (s: string) => (s.match(/<linearGradient/g) ?? []).length;
    expect(gradients(svg)).toBe(1); // shared: one colour legend
    expect(gradients(await heatmapPanelsPlot([{ m: A }, { m: B }], { colour: 'independent', stacked: true }))).toBe(2);
  });

  it('keeps each panel\'s heatmap rules: non-finite cells blank and counted, names escaped', async () => {
    const svg = await heatmapPanelsPlot([{ m: m(1, 3, [1, NaN, 3]), options: { title: hostile, colNames: [hostile, 'b', 'c'] } }]);
    expectSvg(svg);
    expect(svg).not.toMatch(/<x\/>|<\/g>&/);
    expect(rects(svg)).toHaveLength(2);
    expect(roleTexts(svg, 'title-text')).toEqual([hostile]);
    expect(roleTexts(svg, 'title-subtitle')).toEqual(['1 non-finite cell left blank']);
    expect(roleTexts(svg, 'axis-label')).toContain(hostile);
  });
});

describe('imageGridPlot', () => {
  it('a row of images per entry, side by side with a blank column between, each pixel where it belongs', async () => {
    // Two 2 × 3 images per row; pixel (i, j) of image k holds 100k + 10i + j.
    const image = (k: number) => Float64Array.from({ length: 6 }, (_, p) => 100 * k + 10 * Math.floor(p / 3) + (p % 3));
    const svg = await imageGridPlot([{ title: 'first', images: [image(0), image(1)] }, { title: 'second', images: [Array.from(image(2)), image(3)] }], 2, 3, { title: 'Grid' });
    expectSvg(svg);
    expect(panelCount(svg)).toBe(2);
    expect(roleTexts(svg, 'title-text')).toEqual(['first', 'second', 'Grid']);
    const cells = rects(svg);
    expect(cells).toHaveLength(2 * 2 * 7); // 2 rows × 2 pixel rows × (3 + 1 + 3) columns
    for (const c of cells) {
      const col = Number(c.fields['pixel column']), row = Number(c.fields['pixel row']);
      const k = 2 * c.panel + Math.floor(col / 4);
      // Column 3 is the blank separator (0); the others are pixel (row, col mod 4) of image k.
      expect(Number(c.fields.value)).toBe(col === 3 ? 0 : 100 * k + 10 * row + (col % 4));
      // 7 columns of 18 px are 126 px: zoom floor(160/126) = 1.
      expect([c.x, c.y]).toEqual([18 * col, 18 * row]);
    }
  });

  it('a NaN or null pixel is left blank (and counted)', async () => {
    const svg = await imageGridPlot([{ title: 'r', images: [[1, null, NaN, 4]] }], 2, 2);
    expect(rects(svg)).toHaveLength(2);
    expect(roleTexts(svg, 'title-subtitle')).toEqual(['2 non-finite cells left blank']);
  });
});

describe('bad arguments: a TypeError or RangeError naming the argument, before anything is drawn', () => {
  const series = { name: 's', x: [1, 2], y: [1, 2] };
  const chart = { series: [series] };
  const dot = { values: [{ label: 'a', x: 1 }] };
  const M = m(1, 2, [1, 2]);
  const sparse = (n: number) => new Array<number>(n);
  type Row = [string, () => Promise<unknown>, typeof TypeError | typeof RangeError, string | RegExp];
  const rows: Row[] = [
    // chartPanelsPlot
    ['chart: panels 5', () => chartPanelsPlot(5 as never), TypeError, 'Expected an array of chart panels {title, x, y, mark, series, rule} for panels but received 5'],
    ['chart: panels []', () => chartPanelsPlot([]), RangeError, 'Expected an array of chart panels {title, x, y, mark, series, rule} (at least one) for panels but received an empty array'],
    ['chart: 65 panels', () => chartPanelsPlot(Array(65).fill(chart)), RangeError, 'Expected an array of chart panels {title, x, y, mark, series, rule} with at most 64 entries for panels but received an array of length 65'],
    ['chart: panel null', () => chartPanelsPlot([null as never]), TypeError, 'Expected a chart panel {title, x, y, mark, series, rule} for panels[0] but received null'],
    ['chart: misspelt key', () => chartPanelsPlot([{ serie: [] } as never]), TypeError, /^Unknown key 'serie' in panels\[0\] \(did you mean series\?\)/],
    ['chart: series []', () => chartPanelsPlot([{ series: [] }]), RangeError, 'Expected an array of series {name, x, y} (at least one) for panels[0].series but received an empty array'],
    ['chart: name 5', () => chartPanelsPlot([{ series: [{ ...series, name: 5 as never }] }]), TypeError, 'Expected a string for panels[0].series[0].name but received 5'],
    ['chart: y "1,2"', () => chartPanelsPlot([chart, { series: [series, { ...series, name: 't', y: '1,2' as never }] }]), TypeError, 'Expected an array of numbers for panels[1].series[1].y but received the string "1,2"'],
    ['chart: y [1, "2"]', () => chartPanelsPlot([{ series: [{ ...series, y: [1, '2'] as never }] }]), TypeError, 'Expected a number (or null for a gap) for panels[0].series[0].y[1] but received the string "2"'],
    ['chart: x []', () => chartPanelsPlot([{ series: [{ ...series, x: [] }] }]), RangeError, 'Expected an array of numbers (at least one) for panels[0].series[0].x but received an empty array'],
    ['chart: lengths 2 and 3', () => chartPanelsPlot([{ series: [{ ...series, y: [1, 2, 3] }] }]), RangeError, 'Expected 2 values (one per x) for panels[0].series[0].y but received 3'],
    ['chart: a DataView', () => chartPanelsPlot([{ series: [{ ...series, x: new DataView(new ArrayBuffer(8)) as never }] }]), TypeError, 'Expected an array of numbers for panels[0].series[0].x but received a DataView'],
    ['chart: x of length 1e9', () => chartPanelsPlot([{ series: [{ ...series, x: sparse(1e9) }] }]), RangeError, 'Expected an array of numbers (200000 points in the figure at most) with at most 200000 entries for panels[0].series[0].x but received an array of length 1000000000'],
    ['chart: 2 × 150 000 points', () => chartPanelsPlot([{ series: [{ name: 'a', x: new Float64Array(150_000), y: new Float64Array(150_000) }] }, { series: [{ name: 'b', x: new Float64Array(150_000), y: new Float64Array(150_000) }] }]), RangeError, /with at most 50000 entries for panels\[1\]\.series\[0\]\.x but received a Float64Array of length 150000$/],
    ['chart: names repeat', () => chartPanelsPlot([{ series: [series, series] }]), RangeError, 'Expected distinct names in panels[0].series but panels[0].series[1].name repeats panels[0].series[0].name (the string "s")'],
    ['chart: mark bar', () => chartPanelsPlot([{ ...chart, mark: 'bar' as never }]), RangeError, 'Expected \'line\' or \'point\' for panels[0].mark but received the string "bar"'],
    ['chart: x.log "yes"', () => chartPanelsPlot([{ ...chart, x: { log: 'yes' as never } }]), TypeError, 'Expected a boolean for panels[0].x.log but received the string "yes"'],
    ['chart: rule.x NaN', () => chartPanelsPlot([{ ...chart, rule: { x: NaN } }]), TypeError, 'Expected a finite number for panels[0].rule.x but received NaN'],
    ['chart: rule.x 0 on a log x', () => chartPanelsPlot([{ ...chart, x: { log: true }, rule: { x: 0 } }]), RangeError, 'Expected a finite number > 0 (the x axis is log-scaled) for panels[0].rule.x but received 0'],
    ['chart: throwing getter', () => chartPanelsPlot([{ series: [throwing(series, 'y')] } as never]), TypeError, 'Expected a plain value for panels[0].series[0].y but received a getter that throws (boom)'],
    ['chart: throwing list element', () => chartPanelsPlot([{ series: [{ ...series, x: Object.defineProperty([1, 2], 1, { get: () => { throw new Error('boom'); } }) }] }]), TypeError, /^Expected a readable value for panels\[0\]\.series\[0\]\.x\[1\] but reading it threw/],
    ['chart: options 5', () => chartPanelsPlot([chart], 5 as never), TypeError, 'Expected chartPanelsPlot() options {title, columns, width, height, legendTitle} for options but received 5'],
    ['chart: misspelt option', () => chartPanelsPlot([chart], { colums: 2 } as never), TypeError, /^Unknown key 'colums' in options \(did you mean columns\?\)/],
    ['chart: columns 0', () => chartPanelsPlot([chart], { columns: 0 }), RangeError, /for options\.columns of chartPanelsPlot\(\) but received 0$/],
    ['chart: width 1e6', () => chartPanelsPlot([chart], { width: 1e6 }), RangeError, /for options\.width of chartPanelsPlot\(\) but received 1000000$/],
    // dotPanelsPlot
    ['dot: panels {}', () => dotPanelsPlot({} as never), TypeError, 'Expected an array of dot panels {title, x, values} for panels but received an object'],
    ['dot: values []', () => dotPanelsPlot([{ values: [] }]), RangeError, 'Expected an array of values {label, x, group} (at least one) for panels[0].values but received an empty array'],
    ['dot: x "1"', () => dotPanelsPlot([{ values: [{ label: 'a', x: '1' as never }] }]), TypeError, 'Expected a number (or null for a gap) for panels[0].values[0].x but received the string "1"'],
    ['dot: label 1', () => dotPanelsPlot([{ values: [{ label: 1 as never, x: 1 }] }]), TypeError, 'Expected a string for panels[0].values[0].label but received 1'],
    ['dot: labels repeat', () => dotPanelsPlot([{ values: [{ label: 'a', x: 1 }, { label: 'a', x: 2 }] }]), RangeError, 'Expected distinct labels in panels[0].values but panels[0].values[1].label repeats panels[0].values[0].label (the string "a")'],
    ['dot: values of length 1e9', () => dotPanelsPlot([{ values: sparse(1e9) as never }]), RangeError, /with at most 200000 entries for panels\[0\]\.values but received an array of length 1000000000$/],
    ['dot: group getter', () => dotPanelsPlot([{ values: [throwing({ label: 'a', x: 1 }, 'group')] } as never]), TypeError, 'Expected a plain value for panels[0].values[0].group but received a getter that throws (boom)'],
    ['dot: misspelt option', () => dotPanelsPlot([dot], { legend: 'k' } as never), TypeError, /^Unknown key 'legend' in options \(did you mean legendTitle\?\)/],
    // curvesPlot
    ['curves: undefined', () => curvesPlot(undefined as never), TypeError, 'Expected an array of series {name, x, y} for curves but received undefined'],
    ['curves: []', () => curvesPlot([]), RangeError, 'Expected an array of series {name, x, y} (at least one) for curves but received an empty array'],
    ['curves: lengths 2 and 1', () => curvesPlot([{ ...series, y: [1] }]), RangeError, 'Expected 2 values (one per x) for curves[0].y but received 1'],
    ['curves: names repeat', () => curvesPlot([series, series]), RangeError, 'Expected distinct names in curves but curves[1].name repeats curves[0].name (the string "s")'],
    ['curves: logY 1', () => curvesPlot([series], { logY: 1 as never }), TypeError, /for options\.logY of curvesPlot\(\) but received 1$/],
    ['curves: option getter', () => curvesPlot([series], throwing({}, 'title') as never), TypeError, 'Expected a plain value for options.title but received a getter that throws (boom)'],
    // heatmapPanelsPlot
    ['heatmaps: panels 5', () => heatmapPanelsPlot(5 as never), TypeError, 'Expected an array of heatmap panels {m, options} for panels but received 5'],
    ['heatmaps: panels []', () => heatmapPanelsPlot([]), RangeError, 'Expected an array of heatmap panels {m, options} (at least one) for panels but received an empty array'],
    ['heatmaps: m null', () => heatmapPanelsPlot([{ m: M }, { m: null as never }]), TypeError, 'Expected a Matrix {rows, cols, data: Float64Array} for panels[1].m but received null'],
    ['heatmaps: m.data short', () => heatmapPanelsPlot([{ m: { rows: 2, cols: 2, data: new Float64Array(3) } }]), RangeError, /for panels\[0\]\.m\.data/],
    ['heatmaps: m.rows getter', () => heatmapPanelsPlot([{ m: throwing({ cols: 2, data: M.data }, 'rows') as never }]), TypeError, 'Expected a plain value for panels[0].m.rows but received a getter that throws (boom)'],
    ['heatmaps: misspelt option', () => heatmapPanelsPlot([{ m: M, options: { topn: 2 } as never }]), TypeError, /^Unknown key 'topn' in panels\[0\]\.options \(did you mean topN\?\)/],
    ['heatmaps: maxRows 0', () => heatmapPanelsPlot([{ m: M, options: { maxRows: 0 } }]), RangeError, /for options\.maxRows of panels\[0\] of heatmapPanelsPlot\(\) but received 0$/],
    ['heatmaps: colNames 3 for 2', () => heatmapPanelsPlot([{ m: M, options: { colNames: ['a', 'b', 'c'] } }]), RangeError, 'Expected 2 names (one per column) for options.colNames of panels[0] of heatmapPanelsPlot() but received 3'],
    ['heatmaps: 250 000 cells', () => heatmapPanelsPlot([{ m: m(500, 500, new Float64Array(250_000)), options: { maxRows: 500, maxCols: 500 } }]), RangeError, 'Expected at most 200000 cells in all for panels but received 250000'],
    ['heatmaps: colour "each"', () => heatmapPanelsPlot([{ m: M }], { colour: 'each' as never }), RangeError, /for options\.colour of heatmapPanelsPlot\(\) but received the string "each"/],
    // imageGridPlot
    ['images: rows 5', () => imageGridPlot(5 as never, 1, 2), TypeError, 'Expected an array of image rows {title, images} for rows but received 5'],
    ['images: height 1.5', () => imageGridPlot([{ images: [[1, 2]] }], 1.5, 2), TypeError, 'Expected an integer ≥ 1 (pixels) for height but received 1.5'],
    ['images: width 0', () => imageGridPlot([{ images: [[1, 2]] }], 1, 0), RangeError, 'Expected an integer from 1 to 10000 (pixels) for width but received 0'],
    ['images: images []', () => imageGridPlot([{ images: [] }], 1, 2), RangeError, 'Expected an array of images (at least one) for rows[0].images but received an empty array'],
    ['images: 3 values for 1 × 2', () => imageGridPlot([{ images: [[1, 2], [1, 2, 3]] }], 1, 2), RangeError, 'Expected an array of numbers with at most 2 entries for rows[0].images[1] but received an array of length 3'],
    ['images: 1 value for 1 × 2', () => imageGridPlot([{ images: [[1]] }], 1, 2), RangeError, 'Expected 2 values (height × width) for rows[0].images[0] but received 1'],
    ['images: title 5', () => imageGridPlot([{ title: 5 as never, images: [[1, 2]] }], 1, 2), TypeError, 'Expected a string for rows[0].title but received 5'],
    ['images: 64 × 200 wide', () => imageGridPlot([{ images: Array(64).fill(new Float64Array(200)) }], 1, 200), RangeError, 'Expected at most 10000 pixels across for rows[0].images but its 64 images of width 200 are 12863 wide'],
    ['images: 300 000 pixels', () => imageGridPlot(Array(3).fill({ images: [new Float64Array(100_000)] }), 100, 1000), RangeError, 'Expected at most 200000 pixels in all for rows but received 300000'],
  ];
  it.each(rows)('%s', async (_label, call, cls, message) => {
    let error: unknown;
    try {
      await call();
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(cls);
    if (typeof message === 'string') expect((error as Error).message).toBe(message);
    else expect((error as Error).message).toMatch(message);
  });
});

describe('renderSvg copies the spec it is given, bounded, before Vega-Lite reads it', () => {
  const spec = (values: unknown) => ({ data: { values }, mark: 'point', encoding: { x: { field: 'x', type: 'quantitative' } } }) as never;

  it('a sparse array claiming 10⁹ entries is a RangeError, not an out-of-memory abort', async () => {
    await expect(renderSvg(spec(new Array(1e9)))).rejects.toThrow(new RangeError('Expected a Vega-Lite spec of at most 10000000 values in all for spec but spec.data.values holds 1000000000, past that'));
  });

  it('a cycle is a RangeError, not a stack overflow', async () => {
    const cyclic: Record<string, unknown> = { x: 1 };
    cyclic.self = cyclic;
    await expect(renderSvg(spec([cyclic]))).rejects.toThrow(/^Expected a Vega-Lite spec nested at most 100 levels deep for spec but spec\.data\.values\[0\](\.self)+ is deeper \(a cycle\?\)$/);
  });

  it('a throwing getter names its field; a changing one is read once and drawn as read', async () => {
    await expect(renderSvg(spec([throwing({ x: 1 }, 'x')]))).rejects.toThrow(new TypeError("Expected a readable value for spec.data.values[0].x but reading it threw Error: boom"));
    const point = changing({}, 'x', [5, 'not a number']);
    const svg = await renderSvg(spec([point.object, { x: 10 }]));
    expect(point.reads()).toBe(1);
    expect(points(svg).map((d) => d.fields.x)).toEqual(['5', '10']);
  });
});
