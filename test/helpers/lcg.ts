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
