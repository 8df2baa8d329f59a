// NSA-Flow (exact-gradient mode) on the measured reference's problems: X0 = |randn(p,k)|,
// Y0 = randn(p,k), soft polar, w = 0.5, hard non-negativity, asgd, lr 1e-2, 100 iterations forced,
// one BLAS thread. Prints seconds per iteration, the speed-up over the reference's figures (measured
// on this machine kind, median of 3) and the ratio to a floor measured in this run: one DSYRK of
// YᵀY plus four streaming passes over p×k doubles per iteration.
import { nsaFlowSync, setBlasThreads } from '../lib/index.js';
import { copySeconds, dsyrkSeconds, fmt, lcgFill, medianSeconds } from './common.js';

setBlasThreads(1);
const iterations = 100;
const sizes: [number, number, number][] = [
  [10000, 20, 0.018],
  [100000, 20, 0.21],
  [5000, 100, 0.097],
];

console.log('NSA-Flow exact-gradient solver, soft polar, asgd, 100 iterations, 1 BLAS thread');
console.log('size         s/iter     reference  speed-up  floor s/iter  ratio to floor');
for (const [p, k, reference] of sizes) {
  const Y0 = { rows: p, cols: k, data: lcgFill(p * k, 7, true) };
  const X0 = { rows: p, cols: k, data: lcgFill(p * k, 11, true).map(Math.abs) };
  const run = () =>
    nsaFlowSync(Y0, {
      X0,
      w: 0.5,
      retraction: 'softPolar',
      nonnegativity: 'hard',
      optimizer: 'asgd',
      learningRate: 1e-2,
      maxIterations: iterations,
      tolerance: -1e30,
    });
  const perIteration = (await medianSeconds(p * k > 1e6 ? 1 : 3, run)) / iterations;
  const floor = dsyrkSeconds(p, k) + 4 * copySeconds(p * k);
  console.log(
    `${`${p}×${k}`.padEnd(12)} ${fmt(perIteration).padEnd(10)} ${fmt(reference).padEnd(10)} ${`${fmt(reference / perIteration)}×`.padEnd(9)} ${fmt(floor).padEnd(13)} ${fmt(perIteration / floor)}`,
  );
}
