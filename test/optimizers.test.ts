import { describe, expect, it } from 'vitest';

import { optimizerSteps, type Matrix } from '../lib/index.js';
import { camel } from './helpers/flow-fixtures.js';
import { fxMatrix, loadFixture, relativeError } from './helpers/shared.js';

const fx = loadFixture('nsa_flow_orth.json');
const m = (rows: number[][]): Matrix => ({ rows: rows.length, cols: rows[0]!.length, data: Float64Array.from(rows.flat()) });

describe('torch 1.13 optimizers: the recorded first three steps', () => {
  // Every grid run records the gradient each of its first 3 steps saw and Z after it; Z starts at Y0/s.
  const grid = fx.cases.filter((c: any) => c.result && /^(20x4|50x10)\/w=[0-9.]+\/[a-z_]+$/.test(c.name));
  it('covers the 11 torch optimizers on 4 problems', () => {
    expect(grid).toHaveLength(44);
  });
  for (const c of grid) {
    it(c.name, () => {
      const X0 = fxMatrix(c.inputs.X0);
      let sum = 0;
      for (const x of X0.data) sum += Math.max(x, 0) ** 2;
      const s = Math.sqrt(sum / X0.data.length) + 1e-12;
      const Y0 = fxMatrix(c.inputs.Y0);
      const Z0 = { ...Y0, data: Y0.data.map((x) => x / s) };
      const steps = c.internals.first_steps;
      const out = optimizerSteps(
        camel(c.options.optimizer) as 'adam',
        Z0,
        steps.map((st: any) => fxMatrix(st.grad_after_clip)),
        steps.map((st: any) => st.lr),
      );
      // ≤ 1e-13: float32 state scalars (ASGD's η, NAdam's μ-product) would show as ≈ 1e-9 if computed in float64
      steps.forEach((st: any, t: number) => expect(relativeError(out[t]!.data, fxMatrix(st.Z_after_step).data)).toBeLessThan(1e-13));
    });
  }
});

// Hand-computed steps from each optimizer's update equations (torch_optimizer defaults).
const x0 = m([
  [1, -2],
  [0.5, 3],
]);
// nearly orthogonal to the rows of x0 (|cos| ≈ 0.02, 0.03 < 0.1/√2), so AdamP/SGDP project
const g1 = m([
  [0.2, 0.105],
  [0.3, -0.04],
]);
const g2 = m([
  [-0.2, 0.1],
  [0.4, -0.1],
]);
const lr = 0.1;
const map2 = (a: Matrix, b: Matrix, f: (x: number, y: number) => number): Float64Array => a.data.map((x, i) => f(x, b.data[i]!));

/** Adam's moment updates, shared by the hand computations below. */
function adamMoments(gs: Matrix[], b1 = 0.9, b2 = 0.999) {
  let mo = new Float64Array(4);
  let v = new Float64Array(4);
  const out: { m: Float64Array; v: Float64Array }[] = [];
  for (const g of gs) {
    mo = mo.map((x, i) => b1 * x + (1 - b1) * g.data[i]!);
    v = v.map((x, i) => b2 * x + (1 - b2) * g.data[i]! ** 2);
    out.push({ m: mo, v });
  }
  return out;
}

function rowProject(x: Float64Array, u: Float64Array): Float64Array {
  // remove from each row of u its component along the row of x (x_row/(‖x_row‖ + 1e-8))
  const r = u.slice();
  for (const row of [0, 1]) {
    const xr = [x[2 * row]!, x[2 * row + 1]!];
    const n = Math.hypot(xr[0]!, xr[1]!) + 1e-8;
    const d = (xr[0]! / n) * u[2 * row]! + (xr[1]! / n) * u[2 * row + 1]!;
    r[2 * row] = u[2 * row]! - (xr[0]! / n) * d;
    r[2 * row + 1] = u[2 * row + 1]! - (xr[1]! / n) * d;
  }
  return r;
}

describe('literature optimizers: one or two steps computed by hand', () => {
  it('fast: x − lr·g', () => {
    const [a] = optimizerSteps('fast', x0, [g1], lr);
    expect(relativeError(a!.data, map2(x0, g1, (x, g) => x - lr * g))).toBeLessThan(1e-15);
  });

  it('lars: x − lr·0.01·(‖x‖/(‖g‖ + 1e-8))·g', () => {
    const nx = Math.hypot(...x0.data);
    const ng = Math.hypot(...g1.data);
    const [a] = optimizerSteps('lars', x0, [g1], lr);
    expect(relativeError(a!.data, map2(x0, g1, (x, g) => x - lr * 0.01 * (nx / (ng + 1e-8)) * g))).toBeLessThan(1e-15);
  });

  it('yogi: v ← v − (1−β₂)·sign(v − g²)·g² from 1e-6, eps 1e-3', () => {
    const [a] = optimizerSteps('yogi', x0, [g1], lr);
    const expected = x0.data.map((x, i) => {
      const g = g1.data[i]!;
      const mo = 0.9 * 1e-6 + 0.1 * g;
      const v = 1e-6 - 0.001 * Math.sign(1e-6 - g * g) * g * g;
      return x - (lr / 0.1) * (mo / (Math.sqrt(v) / Math.sqrt(0.001) + 1e-3));
    });
    expect(relativeError(a!.data, expected)).toBeLessThan(1e-14);
  });

  it('adabound: Adam step clipped to [0.1(1 − 1/(γt+1)), 0.1(1 + 1/(γt))]', () => {
    const [a] = optimizerSteps('adabound', x0, [g1], lr);
    const lo = 0.1 * (1 - 1 / (1e-3 + 1));
    const hi = 0.1 * (1 + 1 / 1e-3);
    const { m: mo, v } = adamMoments([g1])[0]!;
    const expected = x0.data.map((x, i) => {
      const step = Math.min(Math.max((lr * Math.sqrt(0.001)) / 0.1 / (Math.sqrt(v[i]!) + 1e-8), lo), hi);
      return x - step * mo[i]!;
    });
    expect(relativeError(a!.data, expected)).toBeLessThan(1e-14);
  });

  it('qhadam (ν = 1): two steps with weights w ← 1 + βw', () => {
    const out = optimizerSteps('qhadam', x0, [g1, g2], lr);
    // step 1: β-adjusted = 0, so m = g, v = g²; step 2: β₁' = 1 − 1/1.9, β₂' = 1 − 1/1.999
    let x = x0.data.map((xi, i) => xi - lr * (g1.data[i]! / (Math.abs(g1.data[i]!) + 1e-8)));
    expect(relativeError(out[0]!.data, x)).toBeLessThan(1e-15);
    const a1 = 1 - 1 / 1.9;
    const a2 = 1 - 1 / 1.999;
    x = x.map((xi, i) => {
      const mo = a1 * g1.data[i]! + (1 - a1) * g2.data[i]!;
      const v = a2 * g1.data[i]! ** 2 + (1 - a2) * g2.data[i]! ** 2;
      return xi - lr * (mo / (Math.sqrt(v) + 1e-8));
    });
    expect(relativeError(out[1]!.data, x)).toBeLessThan(1e-14);
  });

  it('qhm (β = 0, ν = 0.7) and pid (momentum 0) reduce to x − lr·g', () => {
    const [q] = optimizerSteps('qhm', x0, [g1], lr);
    const [p] = optimizerSteps('pid', x0, [g1], lr);
    const plain = map2(x0, g1, (x, g) => x - lr * 0.7 * g - lr * 0.3 * g);
    expect(relativeError(q!.data, plain)).toBeLessThan(1e-15);
    expect(relativeError(p!.data, map2(x0, g1, (x, g) => x - lr * g))).toBeLessThan(1e-15);
  });

  it('sgdp: projects the (nearly orthogonal) gradient off each row of x', () => {
    const [a] = optimizerSteps('sgdp', x0, [g1], lr);
    const u = rowProject(x0.data, g1.data);
    expect(relativeError(a!.data, x0.data.map((x, i) => x - lr * u[i]!))).toBeLessThan(1e-14);
    // and leaves a well-aligned gradient alone: plain SGD
    const [b] = optimizerSteps('sgdp', x0, [x0], lr);
    expect(relativeError(b!.data, x0.data.map((x) => x - lr * x))).toBeLessThan(1e-15);
  });

  it('adamp: Adam direction with its radial part removed per row', () => {
    const [a] = optimizerSteps('adamp', x0, [g1], lr);
    const { m: mo, v } = adamMoments([g1])[0]!;
    const u = mo.map((mi, i) => mi / (Math.sqrt(v[i]!) / Math.sqrt(0.001) + 1e-8));
    const pu = rowProject(x0.data, u);
    expect(relativeError(a!.data, x0.data.map((x, i) => x - (lr / 0.1) * pu[i]!))).toBeLessThan(1e-14);
  });

  it('lookahead (k = 5, α = ½) around adam: slow = fast after step 1, pulled halfway at step 6', () => {
    const gs = [g1, g2, g1, g2, g1, g2];
    const la = optimizerSteps('lookahead', x0, gs, lr);
    const adam = adamMoments(gs);
    let x = x0.data.slice();
    let slow = new Float64Array(4);
    adam.forEach(({ m: mo, v }, t) => {
      const bc1 = 1 - 0.9 ** (t + 1);
      const bc2 = 1 - 0.999 ** (t + 1);
      x = x.map((xi, i) => xi - (lr / bc1) * (mo[i]! / (Math.sqrt(v[i]!) / Math.sqrt(bc2) + 1e-8)));
      if (t === 0) slow = x.slice();
      if (t === 5) {
        x = x.map((xi, i) => 0.5 * xi + 0.5 * slow[i]!);
        slow = x.slice();
      }
      expect(relativeError(la[t]!.data, x)).toBeLessThan(1e-13);
    });
  });

  it('lookahead wraps any base: sgd', () => {
    const out = optimizerSteps('lookahead', x0, [g1, g1, g1, g1, g1, g1], lr, { lookaheadBase: 'fast' });
    // plain steps: x_t = x0 − t·lr·g; step 6 pulls halfway toward x_1
    const x6 = x0.data.map((x, i) => 0.5 * (x - 6 * lr * g1.data[i]!) + 0.5 * (x - lr * g1.data[i]!));
    expect(relativeError(out[5]!.data, x6)).toBeLessThan(1e-14);
  });

  it('rejects unknown names (listing the valid ones) and lbfgs without a closure', () => {
    expect(() => optimizerSteps('adamm' as 'adam', x0, [g1], lr)).toThrow(/Expected one of 'sgd', 'sgdNesterov'/);
    expect(() => optimizerSteps('lbfgs' as 'adam', x0, [g1], lr)).toThrow(RangeError);
  });
});
