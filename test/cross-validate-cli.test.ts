// `nsa-flow cv-rank`, its figure (rankCurvePlot, --plot, `nsa-flow plot`) and cv-rank batch jobs: the
// command must give the API's numbers, the figure must draw what the curve says, and a batch grid that
// splits the ranks into one job each must give each rank the same errors as one call (the test sets
// depend on the seed, folds and holdout only).
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { describe, expect, it } from 'vitest';

import { runBatch } from '../lib/batch/run.js';
import { crossValidateRank, setBlasThreads, type Matrix } from '../lib/index.js';
import { readNpy, readNpyMatrix, writeNpy } from '../lib/io/index.js';
import { rankCurvePlot } from '../lib/plot/index.js';
import { runMain, tempDir } from './helpers/cli-run.js';
import { uniform } from './helpers/uniform.js';

setBlasThreads(1);

/** 60×40 of rank 3 (U(0, 1) factors) plus U(−0.05, 0.05) noise, clipped at 0. */
function lowRank(seed: number): Matrix {
  const rand = uniform(seed);
  const n = 60, m = 40, r = 3;
  const W = Float64Array.from({ length: n * r }, () => rand());
  const H = Float64Array.from({ length: r * m }, () => rand());
  const data = new Float64Array(n * m);
  for (let i = 0; i < n; i++)
    for (let j = 0; j < m; j++) {
      let x = 0;
      for (let c = 0; c < r; c++) x += W[i * r + c]! * H[c * m + j]!;
      data[i * m + j] = Math.max(0, x + 0.1 * (rand() - 0.5));
    }
  return { rows: n, cols: m, data };
}

const dir = tempDir('cv-rank');
const X = join(dir, 'X.npy');
writeNpy(X, lowRank(2));
const fit = { maxIterations: 50 };

/** Text of the SVG text marks of a role ('title-subtitle', 'legend-label', …). */
function texts(svg: string, role: string): string[] {
  const group = new RegExp(`<g class="mark-text role-${role}[^"]*"[^>]*>(.*?)</g>`, 'gs');
  return [...svg.matchAll(group)].flatMap((m) => [...m[1]!.matchAll(/<text[^>]*>([^<]*)<\/text>/g)].map((t) => t[1]!));
}
const count = (svg: string, cls: string): number => svg.split(`class="${cls}`).length - 1;
/** The drawn items of the first mark group of a class. */
function group(svg: string, cls: string): string {
  return svg.match(new RegExp(`<g class="${cls}[^"]*"[^>]*>(.*?)</g>`, 's'))?.[1] ?? '';
}

describe('nsa-flow cv-rank', () => {
  it("gives the API's curve and chosen rank, writes result.json with the curve as traces and the figure with --plot", async () => {
    const out = join(dir, 'run');
    const svgFile = join(dir, 'cv.svg');
    const r = await runMain(['cv-rank', X, '--ranks', '2,3,4', '--folds', '3', '--seed', '1', '--fit-options', JSON.stringify(fit), '--plot', svgFile, '--out', out, '--json']);
    expect(r.stderr).not.toMatch(/error/i);
    expect(r.code).toBe(0);
    const api = await crossValidateRank(readNpyMatrix(X), 'nmf', { ranks: [2, 3, 4], folds: 3, seeds: [1], fitOptions: fit });
    const result = JSON.parse(r.stdout.trim().split('\n').at(-1)!) as { values: { chosenRank: number }; traces: Record<string, number[]> };
    expect(result.values.chosenRank).toBe(api.chosenRank);
    const json = JSON.parse(readFileSync(join(out, 'result.json'), 'utf8')) as { traces: Record<string, number[]>; diagnostics: Record<string, unknown> };
    expect(json.traces.ranks).toEqual([2, 3, 4]);
    expect(json.traces.testMean).toEqual(api.curve.map((c) => c.mean));
    expect(json.traces.trainMean).toEqual(api.curve.map((c) => c.trainMean));
    expect(json.diagnostics).toEqual({ chosenRank: api.chosenRank, bestRank: api.bestRank, rule: 'oneStandardError' });
    expect(Array.from(readNpy(join(out, 'curve.1.errors.npy')).data)).toEqual(Array.from(api.curve[1]!.errors));
    const svg = readFileSync(svgFile, 'utf8');
    expect(texts(svg, 'title-subtitle')).toEqual([`chosen rank ${api.chosenRank} (oneStandardError)`]);
    // `nsa-flow plot` draws the same figure from the result directory.
    const p = await runMain(['plot', out, '--out', join(dir, 'plots')]);
    expect(p.code).toBe(0);
    expect(texts(readFileSync(join(dir, 'plots', 'cv-rank.svg'), 'utf8'), 'title-subtitle')).toEqual([`chosen rank ${api.chosenRank} (oneStandardError)`]);
  });

  it('runs stratifiedNmf with the rows grouped by --strata-from', async () => {
    const labels = join(dir, 'labels.csv');
    writeFileSync(labels, 'group\n' + Array.from({ length: 60 }, (_, i) => (i % 3 === 0 ? 'a' : 'b')).join('\n') + '\n');
    const r = await runMain(['cv-rank', X, '--method', 'stratifiedNmf', '--strata-from', `${labels}:group`, '--ranks', '1,3', '--folds', '2', '--fit-options', '{"maxIterations":20}', '--json']);
    expect(r.code).toBe(0);
    const result = JSON.parse(r.stdout.trim().split('\n').at(-1)!) as { values: { method: string }; settings: { observed: number } };
    expect(result.values.method).toBe('stratifiedNmf');
    expect(result.settings.observed).toBe(2400);
  });

  const usage: [string[], RegExp][] = [
    [['--folds', '2'], /--ranks.*received nothing/],
    [['--ranks', '2,x'], /--ranks/],
    [['--ranks', '2', '--holdout', '0.6'], /--holdout/],
    [['--ranks', '2', '--method', 'stratifiedNmf'], /--strata-from/],
    [['--ranks', '2', '--fit-options', '{"seed":1}'], /seed.*options\.seeds/],
    [['--ranks', '2', '--fit-options', '{"maxIteration":1}'], /maxIteration.*did you mean maxIterations/],
    [['--ranks', '2', '--plot', join(dir, 'no-such-folder', 'x.svg')], /--plot.*folder does not exist/],
  ];
  for (const [args, message] of usage) {
    it(`refuses ${args.join(' ')} with exit code 2`, async () => {
      const r = await runMain(['cv-rank', X, ...args]);
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(message);
    });
  }
});

describe('cv-rank batch jobs', () => {
  it('a grid over the ranks (one job per rank) gives each rank the errors of one call over all ranks', async () => {
    const out = join(dir, 'batch');
    const summary = await runBatch({ method: 'cv-rank', input: X, options: { ranks: [2, 3, 4], folds: 3, seed: 5, fitOptions: fit } }, { outDir: out, concurrency: 2 });
    expect(summary.done).toBe(3);
    const api = await crossValidateRank(readNpyMatrix(X), 'nmf', { ranks: [2, 3, 4], folds: 3, seeds: [5], fitOptions: fit });
    for (const job of summary.jobs) {
      const rank = (job.options as { ranks: number[] }).ranks[0]!;
      const errors = Array.from(readNpy(join(out, job.id, 'curve.0.errors.npy')).data);
      expect(errors).toEqual(Array.from(api.curve.find((c) => c.rank === rank)!.errors));
    }
  });
});

describe('rankCurvePlot', () => {
  const curve = { ranks: [2, 3, 4, 5], testMean: [0.5, 0.3, 0.32, 0.35], testSd: [0.02, 0.01, 0.03, 0.02], trainMean: [0.48, 0.27, 0.25, 0.22] };

  it('draws the held-out mean with one ±sd error bar per rank, the training line, and the chosen rank as a dashed rule', async () => {
    const svg = await rankCurvePlot(curve, { chosenRank: 4, rule: 'min' });
    expect(count(svg, 'mark-line role-mark')).toBe(2);
    expect(texts(svg, 'legend-label')).toEqual(['held-out (mean ± sd)', 'training']);
    expect(texts(svg, 'axis-title')).toEqual(['rank', 'RMSE']);
    expect(texts(svg, 'title-subtitle')).toEqual(['chosen rank 4 (min)']);
    const rules = [...svg.matchAll(/<g class="mark-rule role-mark[^"]*"[^>]*>(.*?)<\/g>/gs)].map((m) => m[1]!);
    expect(rules).toHaveLength(2);
    expect(rules[0]!.match(/<line/g)).toHaveLength(4); // one error bar per rank
    expect(rules[1]!.match(/<line/g)).toHaveLength(1);
    expect(rules[1]).toMatch(/stroke-dasharray="6,4"/);
    // x spans [1.5, 5.5] over 480 px: rank 4 sits at (4 − 1.5)/4 · 480 = 300.
    expect(rules[1]).toMatch(/transform="translate\(300,0\)"/);
    expect(group(svg, 'mark-symbol role-mark').match(/<path/g)).toHaveLength(8); // 4 ranks × 2 curves
  });

  it('without a chosen rank: no rule, no subtitle; bad curves are refused naming the field', async () => {
    const svg = await rankCurvePlot({ ranks: curve.ranks, testMean: curve.testMean, testSd: curve.testSd });
    expect(count(svg, 'mark-line role-mark')).toBe(1);
    expect(texts(svg, 'title-subtitle')).toEqual([]);
    await expect(rankCurvePlot({ ...curve, testSd: [1] })).rejects.toThrow(new RangeError('Expected 4 values (one per rank) for curve.testSd but received 1'));
    await expect(rankCurvePlot({ ranks: [1] } as never)).rejects.toThrow(new TypeError('Expected a rank curve {ranks, testMean, testSd, trainMean?} for curve but it has no array testMean'));
    await expect(rankCurvePlot(curve, { chosenRank: 0 })).rejects.toThrow(/options\.chosenRank of rankCurvePlot\(\)/);
  });
});
