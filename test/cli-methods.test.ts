// The solver subcommands of the CLI: each runs on real data, writes its arrays and result.json, and
// its result equals the API call with the same options (same native code, same seed).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

import { describe, expect, it } from 'vitest';

import { readCsv, readLabels, readMatrix, readNpy } from '../lib/io/index.js';
import { stratifiedNmfSync } from '../lib/factorization/stratified-nmf.js';
import type { Matrix } from '../lib/matrix.js';
import { nsaFlowSync } from '../lib/nsa-flow/index.js';
import { runMain, tempDir } from './helpers/cli-run.js';
import { dataFile, missingData, repoRoot } from './helpers/shared.js';

const wine = dataFile('sklearn_small/wine_X.npy'); // 178 × 13

function maxAbsDiff(a: Float64Array, b: Float64Array): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

describe('nsa-flow flow', () => {
  it('solves on a real matrix; Y.npy equals nsaFlowSync with the same options bit for bit', async () => {
    const out = join(tempDir('cli-flow'), 'wine');
    const r = await runMain(['flow', wine, '--w', '0.5', '--optimizer', 'adam', '--learning-rate', '0.01', '--max-iterations', '60', '--out', out]);
    expect(r.code, r.stderr).toBe(0);
    const json = JSON.parse(readFileSync(join(out, 'result.json'), 'utf8'));
    const Y = readNpy(join(out, 'Y.npy'));
    const api = nsaFlowSync(readMatrix(wine) as Matrix, { w: 0.5, optimizer: 'adam', learningRate: 0.01, maxIterations: 60 });
    expect(Y.shape).toEqual([178, 13]);
    expect(maxAbsDiff(Y.data, api.Y.data)).toBe(0); // the same deterministic solve (seeded jitter start)
    expect(json.settings.optimizer).toBe('adam');
    expect(json.settings.seed).toBe(42); // default seed recorded so the run can be repeated
    expect(json.diagnostics.bestEnergy).toBe(api.bestEnergy);
    expect(json.arrays['traces.total'].shape[0]).toBe(api.traces.total.length);
  });

  it('a bad option value exits 2 and names the flag', async () => {
    const r = await runMain(['flow', wine, '--w', '1.5']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--w/);
    expect(r.stderr).toMatch(/in \[0, 1\]/);
  });
});

describe('nsa-flow path', () => {
  it('solves along a grid of w and records the trade-off columns for plotting', async () => {
    const out = join(tempDir('cli-path'), 'wine');
    const r = await runMain(['path', wine, '--ws', '[0.2,0.8]', '--max-iterations', '50', '--out', out]);
    expect(r.code, r.stderr).toBe(0);
    const json = JSON.parse(readFileSync(join(out, 'result.json'), 'utf8'));
    expect(json.traces.ws).toEqual([0.2, 0.8]);
    expect(json.traces.orthogonality).toHaveLength(2);
    expect(json.traces.sparsity).toHaveLength(2);
    expect(json.diagnostics.points).toBe(2);
  });
});

describe('the factorization subcommands', () => {
  // Reuters-21578 (GPL-3 through tm) is not shipped in data/: this test needs the optional data folder.
  const reuters = dataFile('text/reuters_tfidf.mtx.gz');
  const reutersStrata = `${dataFile('text/reuters_docs.csv')}:stratum`;
  const digits = dataFile('digits/digits_images.npy'); // 1797 × 8 × 8
  const digitLabels = `${dataFile('digits/digits_labels.csv')}:label`;

  it.skipIf(missingData('snmf on the Reuters TF-IDF', 'text/reuters_tfidf.mtx.gz', 'text/reuters_docs.csv'))('snmf on the Reuters TF-IDF (sparse) grouped by topic equals stratifiedNmf.fromLabels', async () => {
    const r = await runMain(['snmf', reuters, '--strata-from', reutersStrata, '--rank', '4', '--max-iterations', '30', '--seed', '3', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const json = JSON.parse(r.stdout.trim().split('\n').at(-1)!);
    const X = readMatrix(reuters, { format: 'csr' });
    const labels = readLabels(dataFile('text/reuters_docs.csv'), 'stratum');
    const api = stratifiedNmfSync.fromLabels(X, labels, 4, { maxIterations: 30, seed: 3 });
    // Same native solve from the same seed: the recorded losses agree to the last bit.
    expect(json.traces.loss).toEqual(Array.from(api.traces.loss));
    expect(json.diagnostics.strata).toBe(2); // acq and crude
  });

  it('nmf, ntf and sntf run on real data, and --rank is required', async () => {
    const n = await runMain(['nmf', wine, '--rank', '3', '--solver', 'hals', '--max-iterations', '20', '--json']);
    expect(n.code, n.stderr).toBe(0);
    expect(JSON.parse(n.stdout.trim().split('\n').at(-1)!).diagnostics.normalizedLoss).toBeLessThan(0.2); // wine is nearly rank 3 (proline dominates)
    const t = await runMain(['ntf', digits, '--rank', '5', '--max-iterations', '10', '--json']);
    expect(t.code, t.stderr).toBe(0);
    const s = await runMain(['sntf', digits, '--strata-from', digitLabels, '--strata-rank', '2', '--rank', '4', '--max-iterations', '5', '--json']);
    expect(s.code, s.stderr).toBe(0);
    expect(JSON.parse(s.stdout.trim().split('\n').at(-1)!).diagnostics.strata).toBe(10); // digits 0–9
    const missing = await runMain(['nmf', wine]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/--rank/);
  });
});

describe('results as CSV, named from the CSV inputs (data/own-data, no shared data needed)', () => {
  const samples = join(repoRoot, 'data', 'own-data', 'samples.csv'); // 8 samples × (sample, group, 5 variables)
  const csvArgs = [samples, '--row-names', 'sample', '--drop', 'group'];
  const firstColumn = (path: string): string[] => readFileSync(path, 'utf8').trim().split('\n').slice(1).map((l) => l.split(',')[0]!);
  const header = (path: string): string => readFileSync(path, 'utf8').split('\n')[0]!;

  it('nmf: W rows are the samples, H columns the variables, both named topic1…', async () => {
    const out = join(tempDir('cli-nmf-csv'), 'r');
    const r = await runMain(['nmf', ...csvArgs, '--rank', '2', '--max-iterations', '20', '--out', out, '--csv']);
    expect(r.code, r.stderr).toBe(0);
    expect(header(join(out, 'W.csv'))).toBe(',topic1,topic2');
    expect(firstColumn(join(out, 'W.csv'))).toEqual(['s01', 's02', 's03', 's04', 's05', 's06', 's07', 's08']);
    expect(header(join(out, 'H.csv'))).toBe(',sepal,petal,stem,leaf,root');
    expect(firstColumn(join(out, 'H.csv'))).toEqual(['topic1', 'topic2']);
    // The CSV holds the .npy's doubles exactly.
    expect(Array.from(readCsv(join(out, 'H.csv')).matrix.data)).toEqual(Array.from(readNpy(join(out, 'H.npy')).data));
  });

  it('snmf: V rows are the strata, each W.s rows the samples of stratum s', async () => {
    const out = join(tempDir('cli-snmf-csv'), 'r');
    const r = await runMain(['snmf', ...csvArgs, '--strata-from', `${samples}:group`, '--rank', '2', '--max-iterations', '20', '--out', out, '--csv']);
    expect(r.code, r.stderr).toBe(0);
    // Strata in sorted order: forest (s05–s08), meadow (s01–s04).
    expect(firstColumn(join(out, 'V.csv'))).toEqual(['forest', 'meadow']);
    expect(header(join(out, 'V.csv'))).toBe(',sepal,petal,stem,leaf,root');
    expect(firstColumn(join(out, 'W.0.csv'))).toEqual(['s05', 's06', 's07', 's08']);
    expect(firstColumn(join(out, 'W.1.csv'))).toEqual(['s01', 's02', 's03', 's04']);
  });

  it('flow from PCA loadings written as CSV keeps the variable and component names; empty arrays stay in result.json', async () => {
    const dir = tempDir('cli-flow-csv');
    expect((await runMain(['pca', ...csvArgs, '--k', '2', '--out', join(dir, 'pca'), '--csv'])).code).toBe(0);
    // A retraction-loop optimizer without --learning-rate: the run records its learning-rate estimate,
    // whose uniform draws are empty.
    const r = await runMain(['flow', join(dir, 'pca', 'loadings.csv'), '--optimizer', 'asgd', '--max-iterations', '20', '--out', join(dir, 'flow'), '--csv']);
    expect(r.code, r.stderr).toBe(0);
    expect(header(join(dir, 'flow', 'Y.csv'))).toBe(',PC1,PC2');
    expect(firstColumn(join(dir, 'flow', 'Y.csv'))).toEqual(['sepal', 'petal', 'stem', 'leaf', 'root']);
    const json = JSON.parse(readFileSync(join(dir, 'flow', 'result.json'), 'utf8'));
    expect(json.values.lrEstimate.draws.uniform).toEqual([]);
  });
});
