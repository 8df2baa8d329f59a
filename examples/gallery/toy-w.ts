// Gallery, claim 1 (the NSA-Flow paper's Fig. 3): on a small non-negative target whose columns share
// rows, raising w moves the NSA-Flow solution from the target toward columns with disjoint supports —
// sparser and more orthogonal, further from the target. Prints the three solutions and a table, and
// draws target and solutions as heatmaps side by side. docs/gallery.md.
//   npx tsx examples/gallery/toy-w.ts [--data target.npy|.csv] [--w 0.1,0.5,0.9] [--out docs/figures/gallery-toy-w.svg]
import { invariantOrthogonalityDefect, nsaFlow, readMatrix, type Matrix } from '../../lib/index.js';
import { asDense } from '../../lib/io/index.js';
import { heatmapPanelsPlot } from '../../lib/plot/index.js';
import { isMain, parseFlags, writeFigure } from './common.js';

/**
 * The toy target: 4 × 3, non-negative, every pair of columns sharing a row (columns 0 and 1 share rows
 * 0–1, columns 1 and 2 rows 1–2, columns 0 and 2 row 3). The paper's Fig. 3 does not print its matrix;
 * this one is ours, chosen so that no column support is disjoint from another.
 */
export const toyTarget: Matrix = {
  rows: 4,
  cols: 3,
  data: Float64Array.from([
    1.0, 0.8, 0.0,
    0.6, 1.0, 0.5,
    0.0, 0.7, 1.0,
    0.5, 0.0, 0.9,
  ]),
};

export interface ToyRow {
  w: number;
  Y: Matrix;
  /** Share of exactly-zero entries of Y. */
  sparsity: number;
  /** Invariant orthogonality defect of Y (SPEC §1): 0 iff the columns are orthogonal. */
  defect: number;
  /** ‖Y − X0‖² / ‖X0‖². */
  fidelity: number;
  /** Rows of Y with more than one non-zero entry: where column supports still overlap. */
  sharedRows: number;
  /** Share of the mass of Y off each row's largest entry: 0 exactly when the column supports are disjoint. */
  overlap: number;
  certificate: number | null;
  stopReason: string;
  iterations: number;
}

export interface ToyResult {
  target: Matrix;
  targetDefect: number;
  targetSparsity: number;
  targetSharedRows: number;
  targetOverlap: number;
  rows: ToyRow[];
  figure: string;
}

const sparsityOf = (m: Matrix): number => m.data.filter((v) => v === 0).length / m.data.length;
const sharedRowsOf = (m: Matrix): number => {
  let shared = 0;
  for (let i = 0; i < m.rows; i++) if (m.data.subarray(i * m.cols, (i + 1) * m.cols).filter((v) => v !== 0).length > 1) shared++;
  return shared;
};

const overlapOf = (m: Matrix): number => {
  let off = 0, total = 0;
  for (let i = 0; i < m.rows; i++) {
    const row = m.data.subarray(i * m.cols, (i + 1) * m.cols);
    const sum = row.reduce((a, v) => a + Math.abs(v), 0);
    off += sum - row.reduce((a, v) => Math.max(a, Math.abs(v)), 0);
    total += sum;
  }
  return total > 0 ? off / total : 0;
};

const formatMatrix = (m: Matrix): string[] =>
  Array.from({ length: m.rows }, (_, i) => '  ' + Array.from(m.data.subarray(i * m.cols, (i + 1) * m.cols), (v) => v.toFixed(3).padStart(6)).join(' '));

/**
 * Runs the example: `argv` are its flags. Prints (through `log`) the target, each solution and the
 * table, writes the figure, and returns the numbers.
 */
export async function main(argv: readonly string[] = [], log: (line: string) => void = console.log): Promise<ToyResult> {
  const flags = parseFlags(argv, ['data', 'w', 'out'], 'toy-w');
  const target = flags.has('data') ? asDense(readMatrix(flags.get('data')!)) : toyTarget;
  const ws = (flags.get('w') ?? '0.1,0.5,0.9').split(',').map(Number);
  if (ws.some((w) => !(w >= 0 && w <= 1))) throw new RangeError(`Expected weights in [0, 1] for --w but received ${JSON.stringify(flags.get('w'))}`);
  const out = flags.get('out') ?? 'docs/figures/gallery-toy-w.svg';

  log(`target X0 (${target.rows} × ${target.cols}${flags.has('data') ? `, ${flags.get('data')}` : ', the toy matrix'}):`);
  if (target.rows <= 12 && target.cols <= 8) formatMatrix(target).forEach((l) => log(l));
  const rows: ToyRow[] = [];
  for (const w of ws) {
    // The defaults: the calibration-free energy, 'gram' orthogonality, the certified 'spg' solver, Y ≥ 0,
    // started at the target itself.
    const fit = await nsaFlow(target, { X0: target, w, maxIterations: 5000 });
    const X0 = fit.target;
    let diff = 0, norm = 0;
    for (let i = 0; i < X0.data.length; i++) {
      diff += (fit.Y.data[i]! - X0.data[i]!) ** 2;
      norm += X0.data[i]! ** 2;
    }
    rows.push({
      w,
      Y: fit.Y,
      sparsity: sparsityOf(fit.Y),
      defect: invariantOrthogonalityDefect(fit.Y),
      fidelity: diff / norm,
      sharedRows: sharedRowsOf(fit.Y),
      overlap: overlapOf(fit.Y),
      certificate: fit.certificate,
      stopReason: fit.stopReason,
      iterations: fit.iterations,
    });
    if (target.rows <= 12 && target.cols <= 8) {
      log(`Y at w = ${w}:`);
      formatMatrix(fit.Y).forEach((l) => log(l));
    }
  }
  const targetDefect = invariantOrthogonalityDefect(target);
  log('');
  log('     w  zeros   defect  ‖Y−X0‖²/‖X0‖²  shared rows  overlap  certificate  stop');
  log(`target  ${sparsityOf(target).toFixed(3)}  ${targetDefect.toExponential(2)}  ${'0'.padStart(13)}  ${String(sharedRowsOf(target)).padStart(11)}  ${overlapOf(target).toFixed(3).padStart(7)}`);
  for (const r of rows) {
    log(
      `${r.w.toFixed(2).padStart(6)}  ${r.sparsity.toFixed(3)}  ${r.defect.toExponential(2)}  ${r.fidelity.toExponential(2).padStart(13)}  ` +
        `${String(r.sharedRows).padStart(11)}  ${r.overlap.toFixed(3).padStart(7)}  ${(r.certificate === null ? 'none' : r.certificate.toExponential(1)).padStart(11)}  ${r.stopReason} after ${r.iterations}`,
    );
  }

  const svg = await heatmapPanelsPlot(
    [
      { m: target, options: { title: 'target X0', rowTitle: 'row', colTitle: 'column' } },
      ...rows.map((r) => ({ m: r.Y, options: { title: `w = ${r.w}`, rowTitle: 'row', colTitle: 'column' } })),
    ],
    { title: 'NSA-Flow: raising w separates the column supports' },
  );
  writeFigure(out, svg);
  log(`figure: ${out}`);
  return { target, targetDefect, targetSparsity: sparsityOf(target), targetSharedRows: sharedRowsOf(target), targetOverlap: overlapOf(target), rows, figure: svg };
}

if (isMain(import.meta.url)) await main(process.argv.slice(2));
