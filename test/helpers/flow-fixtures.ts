// Helpers shared by the NSA-Flow tests: fixture option names (the reference's snake_case) mapped to
// this project's camelCase, deterministic test matrices, and central finite differences.
import type { Matrix } from '../../lib/matrix.js';

const names: Record<string, string> = {
  none: 'none',
  basic: 'basic',
  scale_invariant: 'scaleInvariant',
  symmetric: 'symmetric',
  polar: 'polar',
  soft_polar: 'softPolar',
  newton_schulz: 'newtonSchulz',
  soft_newton_schulz: 'softNewtonSchulz',
  cayley: 'cayley',
  soft_cayley: 'softCayley',
  normalize: 'normalize',
  hard: 'hard',
  softplus: 'softplus',
  sgd_nesterov: 'sgdNesterov',
};

/** The camelCase name of a reference option value (unchanged when it has no underscore). */
export function camel(name: string | boolean): string {
  if (name === true) return 'hard';
  if (name === false) return 'none';
  return names[name] ?? name;
}

/** A deterministic p×k matrix with entries in (−1, 1) (+ shift), from a small LCG. */
export function testMatrix(p: number, k: number, seed: number, shift = 0): Matrix {
  const data = new Float64Array(p * k);
  let s = seed >>> 0 || 1;
  for (let i = 0; i < data.length; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    data[i] = (s / 4294967296) * 2 - 1 + shift;
  }
  return { rows: p, cols: k, data };
}

/** Central finite differences of f at x (every entry), step h. */
export function finiteDifferenceGradient(f: (x: Float64Array) => number, x: Float64Array, h = 1e-6): Float64Array {
  const g = new Float64Array(x.length);
  const y = x.slice();
  for (let i = 0; i < x.length; i++) {
    y[i] = x[i]! + h;
    const fp = f(y);
    y[i] = x[i]! - h;
    const fm = f(y);
    y[i] = x[i]!;
    g[i] = (fp - fm) / (2 * h);
  }
  return g;
}
