// Benchmark of the polar retraction: SVD-based vs Gram-based (DSYRK + k×k eig + one GEMM), reported
// as ratios to limits measured in the same run: a plain DSYRK YᵀY, DSYRK + one GEMM Y·W (the Gram
// path's BLAS work), and a memory copy of Y. Run: npm run bench:ortho [-- --repeats N --threads T]
import { info, retract, setBlasThreads, type Matrix } from '../lib/index.js';
import { copySeconds, dgemmSeconds, dsyrkSeconds, fmt, lcgFill, medianSeconds } from './common.js';

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
}

const repeats = arg('repeats', 7);
const threads = arg('threads', 1);
setBlasThreads(threads);
console.log(`nsa-flow bench:ortho — ${info().blas.config}; BLAS threads ${threads}; median of ${repeats}\n`);

const rows: string[][] = [];
for (const [p, k] of [
  [100_000, 20],
  [5_000, 100],
] as const) {
  const Y: Matrix = { rows: p, cols: k, data: lcgFill(p * k, 7, true) };
  const svd = await medianSeconds(repeats, () => retract(Y, { type: 'polar', polarMethod: 'svd' }));
  const gram = await medianSeconds(repeats, () => retract(Y, { type: 'polar', polarMethod: 'gram' }));
  const softGram = await medianSeconds(repeats, () => retract(Y, { type: 'softPolar', w: 0.5, polarMethod: 'gram' }));
  const syrk = dsyrkSeconds(p, k, repeats);
  const gemm = dgemmSeconds(p, k, k, repeats);
  const copy = copySeconds(p * k, repeats);
  const floor = syrk + gemm;
  rows.push([
    `${p}×${k}`,
    `${fmt(svd * 1e3)} ms`,
    `${fmt(gram * 1e3)} ms`,
    `${fmt(softGram * 1e3)} ms`,
    `${fmt(syrk * 1e3)} ms`,
    `${fmt(gemm * 1e3)} ms`,
    `${fmt(copy * 1e3)} ms`,
    fmt(gram / floor),
    fmt(gram / copy),
    fmt(svd / gram),
  ]);
}

const header = ['size', 'polar (SVD)', 'polar (Gram)', 'softPolar (Gram)', 'DSYRK YᵀY', 'GEMM Y·W', 'copy Y', 'Gram/(DSYRK+GEMM)', 'Gram/copy', 'SVD/Gram'];
const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
const line = (cells: string[]): string => cells.map((c, i) => c.padStart(widths[i]!)).join('  ');
console.log(line(header));
for (const r of rows) console.log(line(r));
console.log('\nGoal: Gram-based polar of 100000×20 within 3× of (DSYRK + one GEMM).');
