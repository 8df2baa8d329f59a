// Gallery, claim 3 (the NSA-Flow paper: w trades sparsity and orthogonality against fidelity): on a real
// expression matrix, sweeps w for each way of fitting loadings — `nsaFlowFit` in modes data, signed and
// anchored, and the explicit flow `nsaFlowPath` from the PCA loadings — and prints the curve (sparsity,
// defect, fidelity error, explained variance against PCA's at the same k) and the w that the 'auto'
// rule picks. docs/gallery.md.
//   npx tsx examples/gallery/w-tradeoff.ts [--data X.npy] [--k 4] [--ws 0.05,0.1,…,0.95]
//     [--out docs/figures/gallery-w-tradeoff.svg]
import { defaultWGrid, nsaFlowFit, nsaFlowPath, pca, readMatrix, selectAuto, type Matrix, type WSelection } from '../../lib/index.js';
import { asDense } from '../../lib/io/index.js';
import { chartPanelsPlot } from '../../lib/plot/index.js';
import { intFlag, isMain, parseFlags, writeFigure } from './common.js';

export const tradeoffModes = ['data', 'signed', 'anchored', 'explicit'] as const;
export type TradeoffMode = (typeof tradeoffModes)[number];

export interface CurvePoint {
  w: number;
  /** Share of exact zeros in the loadings. */
  sparsity: number;
  /** Invariant orthogonality defect (SPEC.md §1), comparable across modes. */
  defect: number;
  /**
   * The fidelity error the mode trades: F of nsaFlowFit (data/signed: the variance not reconstructed;
   * anchored: the distance to PCA's span), ‖Y − X0‖/‖X0‖ for the explicit flow.
   */
  fidelityError: number;
  /** Share of the centred data's variance in the span of the loadings (PCA's at the same k is the ceiling). */
  explainedVariance: number;
  stopReason: string;
}

export interface ModeCurve {
  mode: TradeoffMode;
  points: CurvePoint[];
  /** The w the 'auto' rule picks on this curve (selectAuto), with its reason. */
  selection: WSelection;
}

export interface WTradeoffResult {
  k: number;
  /** Share of the centred data's variance in PCA's top-k span. */
  pcaExplainedVariance: number;
  curves: ModeCurve[];
  figure: string;
}

/** PCA loadings with each column's sum made non-negative (a singular vector has no preferred sign). */
function signedLoadings(L: Matrix): Matrix {
  const out: Matrix = { ...L, data: Float64Array.from(L.data) };
  for (let j = 0; j < L.cols; j++) {
    let sum = 0;
    for (let i = 0; i < L.rows; i++) sum += L.data[i * L.cols + j]!;
    if (sum < 0) for (let i = 0; i < L.rows; i++) out.data[i * L.cols + j] = -out.data[i * L.cols + j]!;
  }
  return out;
}

/**
 * Runs the example: `argv` are its flags. Prints (through `log`) one curve per mode and its 'auto' w,
 * writes the figure (one panel per mode), and returns the numbers.
 */
export async function main(argv: readonly string[] = [], log: (line: string) => void = console.log): Promise<WTradeoffResult> {
  const flags = parseFlags(argv, ['data', 'k', 'ws', 'modes', 'out'], 'w-tradeoff');
  const k = intFlag(flags, 'k', 4, 2);
  const ws = flags.has('ws') ? flags.get('ws')!.split(',').map(Number) : [...defaultWGrid];
  if (ws.length < 2 || ws.some((w, i) => !(w >= 0 && w <= 1) || (i > 0 && !(w > ws[i - 1]!)))) {
    throw new RangeError(`Expected at least two increasing weights in [0, 1] for --ws but received ${JSON.stringify(flags.get('ws'))}`);
  }
  const modes = (flags.get('modes') ?? tradeoffModes.join(',')).split(',') as TradeoffMode[];
  if (modes.some((m) => !tradeoffModes.includes(m))) throw new RangeError(`Expected modes among ${tradeoffModes.join(', ')} for --modes but received ${JSON.stringify(flags.get('modes'))}`);
  const dataPath = flags.get('data') ?? 'data/leukemia_all/ALL_expr_top1000var.npy.gz';
  const out = flags.get('out') ?? 'docs/figures/gallery-w-tradeoff.svg';

  const X = asDense(readMatrix(dataPath));
  const p = pca(X, k);
  const pcaEv = p.explainedVarianceRatio.reduce((a, v) => a + v, 0);
  log(`data: ${dataPath} (${X.rows} × ${X.cols}), k = ${k}; PCA explains ${pcaEv.toFixed(3)} of the centred variance`);
  log(`w grid: ${ws.join(', ')}`);

  const curves: ModeCurve[] = [];
  for (const mode of modes) {
    let points: CurvePoint[];
    let selection: WSelection;
    if (mode === 'explicit') {
      // The explicit flow from the (sign-fixed) PCA loadings, warm-started along the grid; its own
      // w: 'auto' selection (select: 'auto').
      const path = await nsaFlowPath(signedLoadings(p.loadings), { ws, data: X, select: 'auto' });
      points = path.points.map((q) => ({ w: q.w, sparsity: q.sparsity, defect: q.defect, fidelityError: q.relativeFidelity, explainedVariance: q.explainedVariance!, stopReason: q.stopReason }));
      selection = path.selection!;
    } else {
      // Every w from the same start (init 'relax': the w = 0 fit), so the curve compares solutions
      // rather than local minima (docs/nsa-flow-fit.md "Choosing w").
      points = [];
      for (const w of ws) {
        const fit = await nsaFlowFit(X, k, { mode, w, init: 'relax' });
        points.push({ w, sparsity: fit.sparsity, defect: fit.defect, fidelityError: fit.fidelity, explainedVariance: fit.explainedVariance.span, stopReason: fit.stopReason });
      }
      // nsaFlowFit has no w: 'auto' of its own; the same rule runs on the mode's own fidelity error F,
      // a fraction in [0, 1] like the explicit flow's relative error.
      selection = selectAuto(points.map((q) => ({ w: q.w, relativeFidelity: q.fidelityError, defect: q.defect, sparsity: q.sparsity })));
    }
    curves.push({ mode, points, selection });
    log('');
    log(`${mode === 'explicit' ? 'explicit flow (nsaFlowPath from the PCA loadings)' : `nsaFlowFit mode ${mode}`}:`);
    log('     w  zeros   defect  fidelity error  EV (PCA)        stop');
    for (const q of points) {
      log(`  ${q.w.toFixed(2).padStart(4)}  ${q.sparsity.toFixed(3)}  ${q.defect.toExponential(2)}  ${q.fidelityError.toFixed(4).padStart(14)}  ${q.explainedVariance.toFixed(3)} (${pcaEv.toFixed(3)})  ${q.stopReason}${q.w === selection.w ? '  ← auto' : ''}`);
    }
    const chosen = points[selection.index]!;
    log(`auto: w = ${selection.w} (${selection.criterion}); EV ${chosen.explainedVariance.toFixed(3)} = ${((100 * chosen.explainedVariance) / pcaEv).toFixed(1)} % of PCA's`);
  }

  const svg = await chartPanelsPlot(
    curves.map((c) => ({
      title: c.mode === 'explicit' ? 'explicit flow (nsaFlowPath)' : `nsaFlowFit, mode ${c.mode}`,
      x: { title: 'w' },
      y: { title: 'value (log)', log: true },
      mark: 'line' as const,
      series: (['sparsity', 'defect', 'fidelityError', 'explainedVariance'] as const).map((key) => ({
        name: key === 'fidelityError' ? 'fidelity error' : key === 'explainedVariance' ? 'explained variance' : key,
        x: c.points.map((q) => q.w),
        y: c.points.map((q) => q[key]),
      })),
      rule: { x: c.selection.w, label: `auto w = ${c.selection.w} (${c.selection.criterion})` },
    })),
    { title: `Sparsity, orthogonality and fidelity along w (PCA explains ${pcaEv.toFixed(3)} at k = ${k})`, columns: 2 },
  );
  writeFigure(out, svg);
  log(`figure: ${out}`);
  return { k, pcaExplainedVariance: pcaEv, curves, figure: svg };
}

if (isMain(import.meta.url)) await main(process.argv.slice(2));
