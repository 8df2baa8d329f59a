// Explicit NSA-Flow benchmark: the problems (X0 = |randn(p,k)|, Y0 = randn(p,k), soft polar,
// w = 0.5, hard non-negativity, 100 iterations forced), against the reference's 'fast' figures and the
// floor measured in this run: per energy evaluation one DSYRK (YᵀY) + one streaming copy of p×k.
// All three weightings are reported: 'energy' (the default), 'balanced' and 'reference' (with the
// tangent projection at the polar factor, none of them backtracks at 100000×20: 1.00 evaluations per
// iteration, where the reference's projection made 'reference' backtrack ~20 times per iteration).
// Usage: npm run bench:nsa-flow-explicit
import { nsaFlowExplicitSync, setBlasThreads } from '../lib/index.js';
import { copySeconds, dsyrkSeconds, fmt, lcgFill } from './common.js';

const reference: Record<string, number> = { '100000x20': 0.926, '10000x20': 0.052, '5000x100': 0.225 }; // s/iter
const sizes: Array<[number, number]> = [
  [100000, 20],
  [10000, 20],
  [5000, 100],
];
const iterations = 100;

function problem(p: number, k: number) {
  const X0 = lcgFill(p * k, 1, true).map(Math.abs);
  const Y0 = lcgFill(p * k, 2, true);
  return { Y0: { rows: p, cols: k, data: Y0 }, X0: { rows: p, cols: k, data: X0 } };
}

function run(p: number, k: number, weighting: 'reference' | 'balanced' | 'energy', threads: number) {
  setBlasThreads(threads);
  const { Y0, X0 } = problem(p, k);
  const c0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  const r = nsaFlowExplicitSync(Y0, { X0, w: 0.5, retraction: 'softPolar', nonnegativity: 'hard', weighting, maxIterations: iterations, tolerance: 0 });
  const s = Number(process.hrtime.bigint() - t0) / 1e9 / r.iterations;
  const c = process.cpuUsage(c0);
  const cpu = (c.user + c.system) / 1e6 / r.iterations; // CPU seconds per iteration (all threads)
  let bt = 0;
  for (const b of r.traces.backtracks) bt += b;
  return { s, cpu, backtracks: bt / r.iterations, threadsUsed: r.settings.threadsUsed };
}

console.log(`explicit NSA-Flow, ${iterations} iterations forced, soft polar, w = 0.5, hard non-negativity`);
console.log('(CPU ms/iter: CPU time of all threads; wall ≫ CPU/threads means the shared machine was busy)');
console.log('size        weighting  thr  ms/iter  CPU ms/iter  evals/iter  ms/eval  floor ms/eval  ×floor  ×faster than ref  2-thr speed-up');
for (const [p, k] of sizes) {
  const key = `${p}x${k}`;
  setBlasThreads(2);
  const floorEval = dsyrkSeconds(p, k) + copySeconds(p * k);
  for (const weighting of ['reference', 'balanced', 'energy'] as const) {
    const one = run(p, k, weighting, 1);
    const two = run(p, k, weighting, 2);
    for (const [thr, m] of [
      [1, one],
      [2, two],
    ] as const) {
      const evals = 1 + m.backtracks;
      const perEval = m.s / evals;
      console.log(
        `${key.padEnd(11)} ${weighting.padEnd(10)} ${String(thr).padStart(3)}  ${fmt(m.s * 1e3).padStart(7)}  ${fmt(m.cpu * 1e3).padStart(11)}  ${fmt(evals).padStart(10)}  ${fmt(perEval * 1e3).padStart(7)}  ${fmt(floorEval * 1e3).padStart(13)}  ${fmt(perEval / floorEval).padStart(6)}  ${fmt(reference[key]! / m.s).padStart(16)}  ${thr === 2 ? fmt(one.s / two.s).padStart(14) : ''}`,
      );
    }
  }
}
