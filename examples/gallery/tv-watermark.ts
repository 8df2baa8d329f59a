// Gallery, claim 7 (the Stratified-NTF paper's denoising experiment): with its total-variation term,
// Stratified-NTF removes noise from an image set but keeps a watermark shared by every image. Adds a
// fixed watermark and Gaussian noise to the digits (data/digits, one stratum per digit), fits
// Stratified-NTF at several TV weights (`tv: {reg}`), and reports the error of each reconstruction to
// the clean watermarked images and how much of the watermark it keeps. docs/gallery.md.
//   npx tsx examples/gallery/tv-watermark.ts [--per-digit 60] [--reg 0,100,1000,3000] [--sigma 4] [--rank 10] [--strata-rank 2]
//     [--iterations 300] [--out docs/figures/gallery-tv.svg]
//   npx tsx examples/gallery/tv-watermark.ts --data images.npy --strata-from labels.csv:column
//     (a user's N × h × w image stack and one stratum label per image)

import { reconstruct, setBlasThreads, stratifiedNtfSync, type Tensor } from '../../lib/index.js';
import { SeededUniform } from '../../lib/nsa-flow/fit.js';
import { imageGridPlot } from '../../lib/plot/index.js';
import { intFlag, isMain, parseFlags, readImageStrata, writeFigure } from './common.js';


/**
 * The watermark: an L in the bottom-left corner (the left column's lower three pixels and the bottom
 * row's first three), where the digits have almost no ink, at `level` (half the digits' range of 16).
 */
export function watermark(h: number, w: number, level = 8): Float64Array {
  const m = new Float64Array(h * w);
  for (let i = h - 3; i < h; i++) m[i * w] = level;
  for (let j = 0; j < 3; j++) m[(h - 1) * w + j] = level;
  return m;
}

export interface RegRow {
  reg: number;
  /** ‖R − (C + M)‖ / ‖C + M‖: the error to the clean images with the watermark M. */
  errorToClean: number;
  /** ⟨mean(R − C), M⟩ / ‖M‖²: 1 when the reconstruction carries the whole watermark, 0 when none. */
  watermarkKept: number;
  /** Pearson correlation of mean(R − C) with M over the pixels. */
  watermarkCorrelation: number;
  iterations: number;
}

export interface TvWatermarkResult {
  images: number;
  /** ‖noisy − (C + M)‖ / ‖C + M‖: the error before any fit. */
  noisyError: number;
  rows: RegRow[];
  figure: string;
}

const dot = (a: ArrayLike<number>, b: ArrayLike<number>): number => {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]! * b[i]!;
  return s;
};

function correlation(a: ArrayLike<number>, b: ArrayLike<number>): number {
  const n = a.length;
  let ma = 0, mb = 0;
  for (let i = 0; i < n; i++) { ma += a[i]! / n; mb += b[i]! / n; }
  let ab = 0, aa = 0, bb = 0;
  for (let i = 0; i < n; i++) { ab += (a[i]! - ma) * (b[i]! - mb); aa += (a[i]! - ma) ** 2; bb += (b[i]! - mb) ** 2; }
  return ab / Math.sqrt(aa * bb);
}

export async function main(argv: readonly string[] = [], log: (line: string) => void = console.log): Promise<TvWatermarkResult> {
  const flags = parseFlags(argv, ['data', 'strata-from', 'per-digit', 'reg', 'sigma', 'rank', 'strata-rank', 'iterations', 'out'], 'tv-watermark');
  const perStratum = intFlag(flags, 'per-digit', 60);
  const rank = intFlag(flags, 'rank', 10);
  const strataRank = intFlag(flags, 'strata-rank', 2);
  const iterations = intFlag(flags, 'iterations', 300);
  const out = flags.get('out') ?? 'docs/figures/gallery-tv.svg';
  const sigma = Number(flags.get('sigma') ?? 4);
  if (!(sigma >= 0 && Number.isFinite(sigma))) throw new RangeError(`Expected a number ≥ 0 for --sigma but received ${JSON.stringify(flags.get('sigma'))}`);
  const regs = (flags.get('reg') ?? '0,100,1000,3000').split(',').map((t) => {
    const r = Number(t);
    if (t.trim() === '' || !(r >= 0) || !Number.isFinite(r)) throw new RangeError(`Expected TV weights ≥ 0 for --reg but received ${JSON.stringify(t)}`);
    return r;
  });
  // One BLAS thread: the same seed gives the same bits.
  setBlasThreads(1);
  const { all, userData, imagesPath, names, picked } = readImageStrata(flags, perStratum);
  if (all.shape.length !== 3) throw new RangeError(`Expected an N × h × w image stack in --data but its shape is [${all.shape.join(', ')}]`);
  const [, h, w] = all.shape as [number, number, number];
  const px = h * w;
  if (h < 3 || w < 3) throw new RangeError(`Expected images of at least 3 × 3 pixels (the watermark's size) in --data but they are ${h} × ${w}`);

  const M = watermark(h, w);
  // Noise from the project's seeded generator (Box–Muller), clipped at 0: the model is non-negative.
  const rng = new SeededUniform(7);
  const gauss = (): number => Math.sqrt(-2 * Math.log(1 - rng.next())) * Math.cos(2 * Math.PI * rng.next());
  const clean: Tensor[] = [], target: Tensor[] = [], noisy: Tensor[] = [];
  for (const rows of picked) {
    const c = new Float64Array(rows.length * px), t = new Float64Array(rows.length * px), n = new Float64Array(rows.length * px);
    rows.forEach((row, k) => {
      for (let p = 0; p < px; p++) {
        const x = all.data[row * px + p]!;
        c[k * px + p] = x;
        t[k * px + p] = x + M[p]!;
        n[k * px + p] = Math.max(0, x + M[p]! + sigma * gauss());
      }
    });
    const shape = [rows.length, h, w];
    clean.push({ shape, data: c });
    target.push({ shape, data: t });
    noisy.push({ shape, data: n });
  }
  const N = picked.reduce((a, r) => a + r.length, 0);
  const targetNorm = Math.sqrt(target.reduce((a, t) => a + dot(t.data, t.data), 0));
  const errorTo = (R: Tensor[]): number => Math.sqrt(R.reduce((a, r, s) => a + r.data.reduce((b, x, i) => b + (x - target[s]!.data[i]!) ** 2, 0), 0)) / targetNorm;
  const noisyError = errorTo(noisy);
  log(`${userData ? imagesPath : 'digits (data/digits)'}: ${N} images of ${h}×${w} in ${names.length} strata (first ${perStratum} each); watermark: an L of ${M.filter((x) => x > 0).length} pixels at 8 in the bottom-left corner`);
  log(`noise: Gaussian, σ = ${sigma}, clipped at 0; Stratified-NTF rank ${rank}, strata rank ${strataRank}, ${iterations} iterations, seed 1`);
  log('');
  log(`   TV reg  ‖R − clean‖/‖clean‖  watermark kept  corr(R − C, mark)`);
  log(`    noisy  ${noisyError.toFixed(4).padStart(19)}`);

  const rows: RegRow[] = [];
  const shown: { title: string; images: Float64Array[] }[] = [
    { title: 'clean, watermarked', images: target.map((t) => t.data.slice(0, px)) },
    { title: `noisy (σ = ${sigma})`, images: noisy.map((t) => t.data.slice(0, px)) },
  ];
  for (const reg of regs) {
    const fit = stratifiedNtfSync(noisy, rank, { strataRank, maxIterations: iterations, seed: 1, tv: reg > 0 ? { reg } : null });
    const R = reconstruct(fit) as Tensor[];
    // The mean over images of what the reconstruction adds to the clean image, against the watermark.
    const extra = new Float64Array(px);
    R.forEach((r, s) => { for (let i = 0; i < r.data.length; i++) extra[i % px]! += (r.data[i]! - clean[s]!.data[i]!) / N; });
    rows.push({ reg, errorToClean: errorTo(R), watermarkKept: dot(extra, M) / dot(M, M), watermarkCorrelation: correlation(extra, M), iterations: fit.iterations });
    const x = rows.at(-1)!;
    log(`${String(reg).padStart(9)}  ${x.errorToClean.toFixed(4).padStart(19)}  ${x.watermarkKept.toFixed(3).padStart(14)}  ${x.watermarkCorrelation.toFixed(3).padStart(17)}`);
    shown.push({ title: `Stratified-NTF, TV reg ${reg}`, images: R.map((r) => r.data.slice(0, px)) });
  }

  // One row of images per panel: the first image of each of the first 8 strata.
  const figure = await imageGridPlot(
    shown.map(({ title, images }) => ({ title, images: images.slice(0, 8) })),
    h,
    w,
    { title: 'Stratified-NTF with total variation: noisy watermarked images and their reconstructions' },
  );
  writeFigure(out, figure);
  log(`figure: ${out}`);
  return { images: N, noisyError, rows, figure };
}

if (isMain(import.meta.url)) await main(process.argv.slice(2));
