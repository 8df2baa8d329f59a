import { nmfSync, setBlasThreads, readMatrix } from '../lib/index.js';
import { lcgFill } from './common.js';
setBlasThreads(1);
function synth(n: number, m: number, r: number) {
  const W = lcgFill(n * r, 3), H = lcgFill(r * m, 5), z = lcgFill(n * m, 7, true);
  const A = new Float64Array(n * m);
  for (let i = 0; i < n; i++) for (let c = 0; c < r; c++) { const w = W[i * r + c]!; for (let j = 0; j < m; j++) A[i * m + j] += w * H[c * m + j]!; }
  let s2 = 0; for (const x of A) s2 += x * x; const rms = Math.sqrt(s2 / A.length);
  for (let i = 0; i < A.length; i++) A[i] = Math.max(0, A[i]! + 0.01 * rms * z[i]!);
  return { rows: n, cols: m, data: A };
}
const which = process.argv[2] ?? 'syn';
let A: any, r: number, iters: number;
if (which === 'syn') { A = synth(2000, 1000, 20); r = 20; iters = 100; }
else { const M = readMatrix('/work/wt/nmf-tta/data/leukemia_all/ALL_expr_top1000var.npy.gz') as any; let mn = Infinity; for (const x of M.data) mn = Math.min(mn, x); const d = M.data.map((x: number) => x - mn); A = { rows: M.rows, cols: M.cols, data: d }; r = 10; iters = 400; }
const configs: [string, number, number][] = [["hals", 1, 0.1], ["hals", 10, 0.1], ["hals", 10, 0.3], ["hals", 5, 0.3], ["hals", 20, 0.2]];
for (const [solver, innerSweeps, innerTolerance] of configs) {
  const res = nmfSync(A, r, { solver: solver as any, innerSweeps, innerTolerance, maxIterations: iters, seed: 1 });
  const t = res.traces;
  const pick = (k: number) => `${t.normalizedLoss[k]!.toPrecision(6)}@${(t.timeMs[k]! / 1000).toFixed(3)}s`;
  const idx = [5, 10, 20, 50, 100, t.iteration.length - 1].filter((k) => k < t.iteration.length);
  console.log(solver, innerSweeps, innerTolerance, idx.map((k) => `it${t.iteration[k]}:${pick(k)}`).join(' '));
}
