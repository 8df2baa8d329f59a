// Gallery, claim 6 (the Stratified-NTF paper): at an equal parameter budget, Stratified-NTF
// reconstructs an image set better than NTF (non-negative CP of all images as one tensor) and than
// Stratified-NMF on the flattened images. Fits the three at several ranks to the digits (data/digits,
// one stratum per digit) and reports the relative reconstruction error against the parameter count,
// one curve per method, and each method's error interpolated at the Stratified-NTF budgets.
// docs/gallery.md.
//   npx tsx examples/gallery/budgets.ts [--per-digit N (default: all)] [--iterations 300] [--out docs/figures/gallery-budgets.svg]
//   npx tsx examples/gallery/budgets.ts --data images.npy --strata-from labels.csv:column
//     (a user's N × h × w image stack and one stratum label per image)

import { ntfSync, setBlasThreads, stratifiedNmfSync, stratifiedNtfSync, type Tensor } from '../../lib/index.js';
import { curvesPlot } from '../../lib/plot/index.js';
import { intFlag, isMain, parseFlags, readImageStrata, writeFigure } from './common.js';


export type Method = 'Stratified-NTF' | 'NTF (HALS)' | 'Stratified-NMF (flattened)';

export interface BudgetRow {
  method: Method;
  ranks: string;
  parameters: number;
  /** ‖A − B‖ / ‖A‖ over the whole image set. */
  relativeError: number;
}

export interface BudgetsResult {
  images: number;
  rows: BudgetRow[];
  /** At each Stratified-NTF budget: every method's error there (the others interpolated linearly in the parameter count; null outside their range). */
  atBudget: { parameters: number; errors: Record<Method, number | null> }[];
  figure: string;
}

/** The rank settings tried: Stratified-NTF's (q, r) pairs, NTF's and Stratified-NMF's ranks. */
export const settings = {
  stratifiedNtf: [[1, 2], [1, 4], [2, 6], [2, 10], [3, 14], [4, 20]] as [number, number][],
  ntf: [2, 4, 6, 10, 14, 20, 28],
  stratifiedNmf: [1, 2, 4, 6, 10, 14, 20],
};

/** Linear interpolation of y(x) at x0 over points sorted by x; null outside [min x, max x]. */
function interpolate(xs: readonly number[], ys: readonly number[], x0: number): number | null {
  for (let i = 0; i + 1 < xs.length; i++) {
    if (x0 >= xs[i]! && x0 <= xs[i + 1]!) return ys[i]! + ((ys[i + 1]! - ys[i]!) * (x0 - xs[i]!)) / (xs[i + 1]! - xs[i]!);
  }
  return xs.length === 1 && xs[0] === x0 ? ys[0]! : null;
}

export async function main(argv: readonly string[] = [], log: (line: string) => void = console.log): Promise<BudgetsResult> {
  const flags = parseFlags(argv, ['data', 'strata-from', 'per-digit', 'iterations', 'out'], 'budgets');
  const perStratum = intFlag(flags, 'per-digit', 1_000_000);
  const iterations = intFlag(flags, 'iterations', 300);
  const out = flags.get('out') ?? 'docs/figures/gallery-budgets.svg';
  // One BLAS thread: the same seed gives the same bits.
  setBlasThreads(1);
  const { all, userData, imagesPath, picked } = readImageStrata(flags, perStratum);
  const dims = all.shape.slice(1);
  const px = dims.reduce((a, b) => a * b, 1);
  const dimSum = dims.reduce((a, b) => a + b, 0);

  // The first perStratum images of each stratum (strata in sorted label order), and all of them as one tensor.
  const strata: Tensor[] = picked.map((rows) => {
    const data = new Float64Array(rows.length * px);
    rows.forEach((row, k) => data.set(all.data.subarray(row * px, (row + 1) * px), k * px));
    return { shape: [rows.length, ...dims], data };
  });
  const N = picked.reduce((a, r) => a + r.length, 0), S = strata.length;
  const whole: Tensor = { shape: [N, ...dims], data: new Float64Array(N * px) };
  strata.reduce((offset, t) => (whole.data.set(t.data, offset), offset + t.data.length), 0);

  log(`${userData ? imagesPath : 'digits (data/digits)'}: ${N} images of ${dims.join('×')} in ${S} strata; ${iterations} iterations each, seed 1`);
  log(`parameters: Stratified-NTF S·q·Σd + r·N + r·Σd, NTF r·(N + Σd), Stratified-NMF S·Πd + r·(N + Πd) (S = ${S}, N = ${N}, Σd = ${dimSum}, Πd = ${px})`);
  log('');
  const rows: BudgetRow[] = [];
  for (const [q, r] of settings.stratifiedNtf) {
    const fit = stratifiedNtfSync(strata, r, { strataRank: q, maxIterations: iterations, seed: 1 });
    rows.push({ method: 'Stratified-NTF', ranks: `q=${q}, r=${r}`, parameters: S * q * dimSum + r * N + r * dimSum, relativeError: fit.normalizedLoss });
  }
  for (const r of settings.ntf) {
    const fit = ntfSync(whole, r, { solver: 'hals', maxIterations: iterations, seed: 1 });
    rows.push({ method: 'NTF (HALS)', ranks: `r=${r}`, parameters: r * (N + dimSum), relativeError: fit.normalizedLoss });
  }
  for (const r of settings.stratifiedNmf) {
    // Each stratum's images as an nₛ × Πd matrix (C order: the same data). Its normalizedLoss is
    // loss/√Σ‖A(s)‖² = loss/‖A‖, the same relative error as the others'.
    const fit = stratifiedNmfSync(strata.map((t) => ({ rows: t.shape[0]!, cols: px, data: t.data })), r, { maxIterations: iterations, seed: 1 });
    rows.push({ method: 'Stratified-NMF (flattened)', ranks: `r=${r}`, parameters: S * px + r * (N + px), relativeError: fit.normalizedLoss });
  }

  log('method                      ranks         parameters  ‖A − B‖/‖A‖');
  for (const x of rows) log(`${x.method.padEnd(26)}  ${x.ranks.padEnd(12)}  ${String(x.parameters).padStart(10)}  ${x.relativeError.toFixed(4).padStart(11)}`);

  const methods: Method[] = ['Stratified-NTF', 'NTF (HALS)', 'Stratified-NMF (flattened)'];
  const of = (m: Method): BudgetRow[] => rows.filter((x) => x.method === m).sort((a, b) => a.parameters - b.parameters);
  const atBudget = of('Stratified-NTF').map((s) => ({
    parameters: s.parameters,
    errors: Object.fromEntries(methods.map((m) => [m, interpolate(of(m).map((x) => x.parameters), of(m).map((x) => x.relativeError), s.parameters)])) as Record<Method, number | null>,
  }));
  log('');
  log('at the Stratified-NTF budgets (the others interpolated linearly in the parameter count):');
  log(`parameters  ${methods.map((m) => m.padStart(28)).join('')}`);
  const fmt = (e: number | null): string => (e === null ? 'outside range' : e.toFixed(4)).padStart(28);
  for (const b of atBudget) log(`${String(b.parameters).padStart(10)}  ${methods.map((m) => fmt(b.errors[m])).join('')}`);

  const figure = await curvesPlot(
    methods.map((m) => ({ name: m, x: of(m).map((x) => x.parameters), y: of(m).map((x) => x.relativeError) })),
    {
      title: `Reconstruction error against parameter count (${userData ? 'your images' : 'digits'}, ${N} images)`,
      xTitle: 'parameters',
      yTitle: 'relative error ‖A − B‖/‖A‖',
    },
  );
  writeFigure(out, figure);
  log(`figure: ${out}`);
  return { images: N, rows, atBudget, figure };
}

if (isMain(import.meta.url)) await main(process.argv.slice(2));
