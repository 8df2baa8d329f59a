// Orthogonalize a real matrix: the 1000 most variable probes of the ALL leukemia data (128 patients),
// as a 1000×128 matrix whose columns are patients. Prints the orthogonality defect before and after
// each retraction, and how long it took.
//   npx tsx examples/orthogonalize.ts [path/to/matrix.npy]   (npm run example)
import { basename, resolve } from 'node:path';

import {
  info,
  invariantOrthogonalityDefect,
  readNpyMatrix,
  retract,
  retractAsync,
  transpose,
  type RetractOptions,
} from '../lib/index.js';

const file = process.argv[2] ?? resolve(import.meta.dirname, '..', 'data', 'leukemia_all', 'ALL_expr_top1000var.npy.gz');
const X = readNpyMatrix(file);
const Y = X.rows < X.cols ? transpose(X) : X; // p ≥ k: columns are the samples

console.log(`nsa-flow ${info().version} on ${info().blas.config}`);
console.log(`input ${basename(file)}: ${X.rows}×${X.cols}, used as ${Y.rows}×${Y.cols}`);
console.log(`defect before: ${invariantOrthogonalityDefect(Y).toExponential(4)}\n`);

const runs: [string, RetractOptions][] = [
  ['polar (Gram path)', { type: 'polar' }],
  ['polar (SVD)', { type: 'polar', polarMethod: 'svd' }],
  ['softPolar w=0.5', { type: 'softPolar', w: 0.5 }],
  ['newtonSchulz 20 iterations', { type: 'newtonSchulz', nsIterations: 20 }],
  ['cayley', { type: 'cayley' }],
];
// Below 1e-14 the defect is rounding noise, which differs between CPUs and BLAS builds.
const defect = (M: typeof Y): string => {
  const d = invariantOrthogonalityDefect(M);
  return d < 1e-14 ? '< 1e-14' : d.toExponential(4);
};
for (const [label, options] of runs) {
  const t0 = performance.now();
  const R = retract(Y, options);
  const ms = performance.now() - t0;
  console.log(`${label.padEnd(28)} defect after ${defect(R)}  (${ms.toFixed(1)} ms)`);
}

// The same on a worker thread, as a server would run it.
const R = await retractAsync(Y, { type: 'polar' });
console.log(`\nasync polar: defect ${defect(R)}, ‖R‖ = ‖Y‖ restored`);
