import type { Matrix } from '../../lib/matrix.js';

/** n values s/2³² − shift from the 32-bit LCG of Numerical Recipes (seeded): the explicit-flow tests' data. */
export function lcg(n: number, seed: number, shift = 0): Float64Array {
  let s = seed >>> 0;
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = s / 4294967296 - shift;
  }
  return out;
}

/** A rows×cols matrix of the same LCG's values (s + ½)/2³², in (0, 1): never 0, so non-negative data with no exact zeros. */
export function lcgMatrix(rows: number, cols: number, seed: number): Matrix {
  let s = seed >>> 0 || 1;
  const data = new Float64Array(rows * cols);
  for (let i = 0; i < data.length; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    data[i] = (s + 0.5) / 4294967296;
  }
  return { rows, cols, data };
}
