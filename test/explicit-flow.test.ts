// The explicit NSA-Flow (SPEC.md §6): invariants of the loop, a 4×3 toy whose trade-off must follow
// w, single steps against hand-computed values, the async runtime, memory at scale, and bad input.
import { readFileSync, writeFileSync } from 'node:fs';

import { describe, expect, it } from 'vitest';

import { AbortError, explicitFlowDiagnostics, invariantOrthogonalityDefect, nsaFlowExplicit, nsaFlowExplicitSync, type Matrix } from '../lib/index.js';
import { optimizerNames } from '../lib/nsa-flow/optimizers.js';
import { checkMemory } from '../lib/nsa-flow-explicit/core.js';
import { adamFirstStep, handStep, type Mat } from './helpers/explicit-hand.js';
import { lcg } from './helpers/lcg.js';

const toy: Matrix = {
  rows: 4,
  cols: 3,
  data: Float64Array.from([1, 0.5, 0.2, 0.3, 1, 0.4, 0.2, 0.3, 1, 0.6, 0.6, 0.6]),
};

function maxRelDiff(a: Float64Array, b: Float64Array): number {
  let d = 0;
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    d = Math.max(d, Math.abs(a[i]! - b[i]!));
    m = Math.max(m, Math.abs(b[i]!));
  }
  return d / m;
}

describe('explicit flow: invariants', () => {
  const Y0: Matrix = { rows: 60, cols: 5, data: lcg(300, 7, 0.3) };
  const X0: Matrix = { rows: 60, cols: 5, data: lcg(300, 8) };

  for (const weighting of ['energy', 'balanced', 'reference'] as const) {
    it(`${weighting}: the best energy never exceeds the start and never rises`, () => {
      const r = nsaFlowExplicitSync(Y0, { X0, w: 0.5, weighting, maxIterations: 60, tolerance: 0 });
      // 60 iterations were forced (tolerance 0), each traced after the start (entry 0).
      expect(r.iterations).toBe(60);
      expect(r.traces.total.length).toBe(61);
      expect(r.traces.iteration[0]).toBe(0);
      expect(r.traces.total[0]).toBe(r.startEnergy);
      // The start N(Y0) is iteration 0 of the best-iterate tracking, so bestEnergy ≤ startEnergy.
      expect(r.bestEnergy).toBeLessThanOrEqual(r.startEnergy);
      // Backtracking toward the best iterate: every iterate's energy is ≤ the best energy before it,
      // so the running best is monotone and the result is its last value.
      let best = r.startEnergy;
      for (const e of r.traces.total) {
        expect(e).toBeLessThanOrEqual(best);
        best = Math.min(best, e);
      }
      expect(r.bestEnergy).toBe(best);
      // Hard non-negativity: the returned iterate has no negative entry.
      expect(Math.min(...r.Y.data)).toBeGreaterThanOrEqual(0);
    });
  }

  it('is reproducible: the settings of a run repeat it bit for bit', () => {
    const a = nsaFlowExplicitSync(Y0, { w: 0.3, maxIterations: 20, seed: 5 });
    const { fidEta: _f, cOrth: _c, scale: _s, finalLearningRate: _l, jittered: _j, threadsUsed: _t, ...settings } = a.settings;
    const b = nsaFlowExplicitSync(Y0, settings);
    // No X0: the start was jittered from seed 5, and the same seed gives the same run.
    expect(a.settings.jittered).toBe(true);
    expect(Array.from(b.Y.data)).toEqual(Array.from(a.Y.data));
    // The settings are plain JSON data (a CLI serializes them).
    expect(JSON.parse(JSON.stringify(a.settings))).toEqual(a.settings);
  });
});

describe('explicit flow: diagnostics', () => {
  // ‖Y − X0‖/‖X0‖ with both divided by their largest magnitude first, the definition's safe form.
  function fidelity(y: Float64Array, x: Float64Array): number {
    let s = 0;
    for (let i = 0; i < y.length; i++) s = Math.max(s, Math.abs(y[i]!), Math.abs(x[i]!));
    let d2 = 0;
    let x2 = 0;
    for (let i = 0; i < y.length; i++) {
      d2 += ((y[i]! - x[i]!) / s) ** 2;
      x2 += (x[i]! / s) ** 2;
    }
    return Math.sqrt(d2 / x2);
  }

  it("a run's diagnostics are those of its Y and target: zeros, defect, relative fidelity (odd length: the one-pass sums' last entry)", () => {
    const Y0: Matrix = { rows: 41, cols: 3, data: lcg(123, 3, 0.3) };
    const X0: Matrix = { rows: 41, cols: 3, data: lcg(123, 4) };
    const r = nsaFlowExplicitSync(Y0, { X0, w: 0.6, maxIterations: 40, tolerance: 0 });
    let zeros = 0;
    for (const v of r.Y.data) if (v === 0) zeros++;
    expect(zeros).toBeGreaterThan(0); // the hard projection left exact zeros to count
    expect(r.diagnostics.sparsity).toBe(zeros / 123);
    // The native pass sums in working units (Y/s) with a row-block Gram, these in the caller's units
    // with one DSYRK or scaled sums: they round differently. 1e-14 relative is ~50 units of rounding.
    expect(Math.abs(r.diagnostics.defect / invariantOrthogonalityDefect(r.Y) - 1)).toBeLessThan(1e-14);
    expect(Math.abs(r.diagnostics.relativeFidelity / fidelity(r.Y.data, r.target.data) - 1)).toBeLessThan(1e-14);
    const again = explicitFlowDiagnostics(r.Y, r.target);
    expect(again.sparsity).toBe(r.diagnostics.sparsity);
    expect(Math.abs(again.defect / r.diagnostics.defect - 1)).toBeLessThan(1e-14);
    expect(Math.abs(again.relativeFidelity / r.diagnostics.relativeFidelity - 1)).toBeLessThan(1e-14);
  });

  // Entries near 1e-160 have squares below the smallest normal double (~2e-308), with a few digits left:
  // the native sums' ratio would be off in the fifth digit. Near 1e150 the sums pass 1e280 (a little
  // more and the energy itself overflows: a NumericalError, tested below).
  it("a run's diagnostics without rescale, entries near 1e150 and 1e-160 (the native sums are not plain numbers): those of its Y and target", () => {
    const base = nsaFlowExplicitSync({ rows: 41, cols: 3, data: lcg(123, 3, 0.3) }, { X0: { rows: 41, cols: 3, data: lcg(123, 4) }, w: 0.6, maxIterations: 0, rescale: false });
    for (const f of [1e150, 1e-160]) {
      const scaled = (v: number) => v * f;
      const r = nsaFlowExplicitSync(
        { rows: 41, cols: 3, data: lcg(123, 3, 0.3).map(scaled) },
        { X0: { rows: 41, cols: 3, data: lcg(123, 4).map(scaled) }, w: 0.6, maxIterations: 0, rescale: false },
      );
      // the checked pass's values: the sums are not plain numbers, so the result takes that pass's
      expect(r.diagnostics).toEqual(explicitFlowDiagnostics(r.Y, r.target));
      expect(r.diagnostics.sparsity).toBe(base.diagnostics.sparsity);
      expect(Math.abs(r.diagnostics.relativeFidelity / base.diagnostics.relativeFidelity - 1)).toBeLessThan(1e-14);
      // defect(Y) is 0 below ‖Y‖² = 1e-12 (ortho.cpp), whatever the sums
      if (f > 1) expect(Math.abs(r.diagnostics.defect / base.diagnostics.defect - 1)).toBeLessThan(1e-14);
      else expect(r.diagnostics.defect).toBe(0);
    }
  });

  it('entries near 1e200 (squares overflow) and near 1e-200 (squares underflow) give the scale-free values', () => {
    const y = Float64Array.from(lcg(21, 5), (v, i) => (i % 4 === 0 ? 0 : Math.abs(v)));
    const x = Float64Array.from(lcg(21, 6), Math.abs);
    const base = explicitFlowDiagnostics({ rows: 7, cols: 3, data: y }, { rows: 7, cols: 3, data: x });
    expect(Math.abs(base.relativeFidelity / fidelity(y, x) - 1)).toBeLessThan(1e-14);
    for (const scale of [1e200, 1e-200]) {
      const d = explicitFlowDiagnostics({ rows: 7, cols: 3, data: y.map((v) => v * scale) }, { rows: 7, cols: 3, data: x.map((v) => v * scale) });
      expect(d.sparsity).toBe(base.sparsity);
      // Without the scaled pass these are ∞/∞ = NaN (1e200) and 0/0 → 0 (1e-200).
      expect(Math.abs(d.relativeFidelity / base.relativeFidelity - 1)).toBeLessThan(1e-14);
    }
  });
});

describe('explicit flow: the 4×3 toy target', () => {
  it('orthogonality and sparsity rise with w ∈ {0.1, 0.5, 0.9} (default energy weighting, Y0 = X0)', () => {
    const runs = [0.1, 0.5, 0.9].map((w) => nsaFlowExplicitSync(toy, { X0: toy, w }));
    const defects = runs.map((r) => r.diagnostics.defect);
    const sparsity = runs.map((r) => r.diagnostics.sparsity);
    console.log(`toy: defect ${defects.map((d) => d.toExponential(2)).join(', ')}; sparsity ${sparsity.join(', ')}`);
    // Strictly falling defect.
    expect(defects[1]).toBeLessThan(defects[0]!);
    expect(defects[2]).toBeLessThan(defects[1]!);
    // Strictly rising sparsity (measured: 0, 4/12, 6/12 exact zeros).
    expect(sparsity[1]).toBeGreaterThan(sparsity[0]!);
    expect(sparsity[2]).toBeGreaterThan(sparsity[1]!);
    // And the price: fidelity to the target falls (relative error rises) with w.
    expect(runs[2]!.diagnostics.relativeFidelity).toBeGreaterThan(runs[0]!.diagnostics.relativeFidelity);
  });
});

describe('explicit flow: single steps against hand-computed values', () => {
  const Y0: Mat = { rows: 4, cols: 3, data: Float64Array.from([0.9, 0.4, -0.1, 0.2, 1.1, 0.3, -0.2, 0.4, 0.8, 0.5, 0.7, 0.6]) };
  for (const projectFullGradient of [false, true]) {
    for (const [w, lr] of [
      [0.5, 0.05],
      [0.2, 0.5],
    ] as const) {
      it(`w=${w}, lr=${lr}, projectFullGradient=${projectFullGradient}`, () => {
        const hand = handStep(Y0, toy, w, lr, projectFullGradient);
        const r = nsaFlowExplicitSync(Y0, {
          X0: toy,
          w,
          learningRate: lr,
          weighting: 'reference',
          rescale: false,
          projectFullGradient,
          maxIterations: 1,
          tolerance: 0,
        });
        // Weights and energies at 1e-12 relative (different polar algorithms: SVD by hand, Gram eig in the kernel).
        expect(Math.abs(r.settings.fidEta - hand.eta) / hand.eta).toBeLessThan(1e-12);
        expect(Math.abs(r.settings.cOrth - hand.c) / hand.c).toBeLessThan(1e-12);
        expect(Math.abs(r.startEnergy - hand.startEnergy) / hand.startEnergy).toBeLessThan(1e-12);
        expect(r.traces.backtracks[1]).toBe(hand.backtracks);
        expect(Math.abs(r.traces.total[1]! - hand.energy) / hand.energy).toBeLessThan(1e-11);
        expect(Math.abs(r.traces.fidelity[1]! - hand.fidelity) / Math.max(hand.fidelity, 1e-300)).toBeLessThan(1e-10);
        expect(Math.abs(r.traces.orthogonality[1]! - hand.orthogonality) / hand.orthogonality).toBeLessThan(1e-10);
        // The returned iterate is the step's result when it was accepted with a lower energy.
        const expectedY = hand.accepted && hand.energy < hand.startEnergy ? hand.Y.data : Float64Array.from(Y0.data, (v) => Math.max(v, 0));
        expect(maxRelDiff(r.Y.data, expectedY)).toBeLessThan(1e-11);
      });
    }
  }

  it("adam's first step is −lr·g/(|g| + eps), i.e. −lr·sign(g), then the same retraction and backtracking", () => {
    for (const [w, lr] of [
      [0.5, 0.02],
      [0.2, 0.1],
    ] as const) {
      const hand = handStep(Y0, toy, w, lr, false, adamFirstStep);
      const r = nsaFlowExplicitSync(Y0, { X0: toy, w, learningRate: lr, optimizer: 'adam', weighting: 'reference', rescale: false, maxIterations: 1, tolerance: 0 });
      // The step moves every entry by lr (up to eps = 1e-8 relative to |g|): the start energy is the
      // same as the plain step's, and the iterate matches the hand computation at 1e-11 (SVD vs Gram polar).
      expect(r.traces.backtracks[1]).toBe(hand.backtracks);
      expect(Math.abs(r.traces.total[1]! - hand.energy) / hand.energy).toBeLessThan(1e-11);
      const expectedY = hand.accepted && hand.energy < hand.startEnergy ? hand.Y.data : Float64Array.from(Y0.data, (v) => Math.max(v, 0));
      expect(maxRelDiff(r.Y.data, expectedY)).toBeLessThan(1e-11);
    }
  });
});

describe('explicit flow: every optimizer of the shared library', () => {
  const Y0: Matrix = { rows: 60, cols: 5, data: lcg(300, 7, 0.3) };
  const X0: Matrix = { rows: 60, cols: 5, data: lcg(300, 8) };
  for (const optimizer of optimizerNames) {
    it(`${optimizer}: best energy ≤ start, monotone, below the start after 40 iterations`, () => {
      // lr 0.01: optimizers normalizing the step (adam, rprop, …) move each entry by about lr.
      const r = nsaFlowExplicitSync(Y0, { X0, w: 0.5, optimizer, learningRate: 0.01, maxIterations: 40, tolerance: 0 });
      expect(r.settings.optimizer).toBe(optimizer);
      expect(r.iterations).toBe(40);
      expect(r.bestEnergy).toBeLessThanOrEqual(r.startEnergy);
      let best = r.startEnergy;
      for (const e of r.traces.total) {
        expect(e).toBeLessThanOrEqual(best); // backtracking toward the best iterate, whatever the step
        best = Math.min(best, e);
      }
      // Every optimizer makes progress from this random start (the energy falls by ≥ 1%).
      expect(r.bestEnergy).toBeLessThan(0.99 * r.startEnergy);
      // The lr rule acts on the optimizer's learning rate: the trace holds lr·0.95^a·1.01^b.
      expect(r.settings.finalLearningRate).toBe(r.traces.learningRate.at(-1));
    });
  }

  it('lookahead wraps the chosen base', () => {
    const a = nsaFlowExplicitSync(Y0, { X0, optimizer: 'lookahead', lookaheadBase: 'sgd', learningRate: 0.01, maxIterations: 10, tolerance: 0 });
    const b = nsaFlowExplicitSync(Y0, { X0, optimizer: 'lookahead', learningRate: 0.01, maxIterations: 10, tolerance: 0 });
    expect(a.settings.lookaheadBase).toBe('sgd');
    expect(b.settings.lookaheadBase).toBe('adam'); // the exact solver's default base
    expect(Array.from(a.Y.data)).not.toEqual(Array.from(b.Y.data));
  });
});

describe('explicit flow: async runtime', () => {
  const Y0: Matrix = { rows: 3000, cols: 8, data: lcg(24000, 3, 0.2) };
  it('matches the sync form and reports progress', async () => {
    const seen: number[] = [];
    const a = await nsaFlowExplicit(Y0, { w: 0.6, maxIterations: 30, tolerance: 0, progressIntervalMs: 0, onProgress: (p) => seen.push(p.iteration) });
    const s = nsaFlowExplicitSync(Y0, { w: 0.6, maxIterations: 30, tolerance: 0 });
    // Same inputs, same thread count → the same iterate.
    expect(Array.from(a.Y.data)).toEqual(Array.from(s.Y.data));
    // Progress came from the worker, with increasing iteration numbers ending at most at 30.
    expect(seen.length).toBeGreaterThan(0);
    expect(seen.every((v, i) => i === 0 || v > seen[i - 1]!)).toBe(true);
    expect(seen.at(-1)).toBeLessThanOrEqual(30);
  });

  it('rejects with AbortError when the signal fires', async () => {
    const ac = new AbortController();
    const p = nsaFlowExplicit(Y0, { w: 0.6, maxIterations: 1e6, tolerance: 0, signal: ac.signal, progressIntervalMs: 0, onProgress: () => ac.abort() });
    await expect(p).rejects.toBeInstanceOf(AbortError);
  });
});

describe('explicit flow: memory at scale', () => {
  // Not under the sanitizers (npm run test:sanitize): ASan's shadow memory and quarantine add to RSS.
  it.skipIf(process.env.NSA_FLOW_SANITIZE === '1')('a 200000×20 run stays under 8 work buffers of p×k doubles (peak RSS)', () => {
    const p = 200_000;
    const k = 20;
    const Y0: Matrix = { rows: p, cols: k, data: lcg(p * k, 11) };
    const X0: Matrix = { rows: p, cols: k, data: lcg(p * k, 12) };
    const rssKiB = (field: string): number => Number(new RegExp(`${field}:\\s+(\\d+)`).exec(readFileSync('/proc/self/status', 'utf8'))![1]);
    writeFileSync('/proc/self/clear_refs', '5'); // reset the peak-RSS counter (VmHWM) to the current RSS
    const before = rssKiB('VmRSS');
    const r = nsaFlowExplicitSync(Y0, { X0, w: 0.5, maxIterations: 3, tolerance: 0 });
    const peak = (rssKiB('VmHWM') - before) * 1024;
    const bufferBytes = p * k * 8;
    // 6 native work buffers on the Gram path + 2 result arrays; budget: 8 buffers.
    expect(r.iterations).toBe(3);
    expect(peak).toBeLessThan(8 * bufferBytes);
    console.log(`peak RSS delta of a 200000×20 run: ${(peak / bufferBytes).toFixed(2)} p×k buffers`);
  });

  it('refuses a problem that cannot fit, before allocating, and says how much it needs', () => {
    const huge = { rows: 2_000_000, cols: 2000, data: new Float64Array(0) };
    expect(() => nsaFlowExplicitSync(huge)).toThrow(RangeError);
    // 10 buffers (8 work + 2 results) × 4e9 doubles × 8 bytes = 298 GiB.
    expect(() => nsaFlowExplicitSync(huge)).toThrow(/Expected a problem that fits in memory for nsaFlowExplicitSync\(\) but received Y0 of 2000000×2000: the run would need about 298\.0 GiB \(10 buffers of p×k doubles\)/);
    expect(() => checkMemory(1000, 10, { retraction: 'softPolar' }, 'f()', 1000)).toThrow(/would need about 0\.0 GiB .* and 0\.0 GiB is available/);
    // The optimizer's state counts: adam keeps m and v (2 buffers), lbfgs 210 (100-pair history).
    expect(() => checkMemory(1000, 10, { retraction: 'softPolar', optimizer: 'adam' }, 'f()', 1000)).toThrow(/\(12 buffers of p×k doubles, 2 of them the state of 'adam'\)/);
    const big = { rows: 1_000_000, cols: 500, data: new Float64Array(0) };
    // 8 + 210 + 2 = 220 buffers × 5e8 doubles × 8 bytes = 819.6 GiB.
    expect(() => nsaFlowExplicitSync(big, { optimizer: 'lbfgs' })).toThrow(/would need about 819\.6 GiB \(220 buffers of p×k doubles, 210 of them the state of 'lbfgs'\)/);
  });
});

describe('explicit flow: bad input', () => {
  const Y = { rows: 6, cols: 3, data: lcg(18, 4) };
  const ctx = 'nsaFlowExplicitSync\\(\\)';
  const cases: Array<[string, () => unknown, ErrorConstructor, RegExp]> = [
    ['X0 of another shape', () => nsaFlowExplicitSync(Y, { X0: { rows: 5, cols: 3, data: new Float64Array(15) } }), RangeError, /Expected options\.X0 to have the shape of Y0 \(6×3\) but received 5×3/],
    ['w outside [0, 1]', () => nsaFlowExplicitSync(Y, { w: -0.1 }), RangeError, /for options\.w of nsaFlowExplicitSync\(\) but received -0\.1/],
    ['unknown optimizer', () => nsaFlowExplicitSync(Y, { optimizer: 'sgdm' as 'fast' }), RangeError, /Expected one of 'sgd', .*'lookahead', 'fast' for options\.optimizer of nsaFlowExplicitSync\(\) but received the string "sgdm"/],
    ['lbfgs as lookahead base', () => nsaFlowExplicitSync(Y, { optimizer: 'lookahead', lookaheadBase: 'lbfgs' as 'adam' }), RangeError, /Expected one of .* for options\.lookaheadBase .* but received the string "lbfgs"/],
    ['negative maxIterations', () => nsaFlowExplicitSync(Y, { maxIterations: -1 }), RangeError, new RegExp(`Expected an integer in \\[0, 100000000\\] for options\\.maxIterations of ${ctx} but received -1`)],
    ['non-integer maxIterations', () => nsaFlowExplicitSync(Y, { maxIterations: 2.5 }), RangeError, /options\.maxIterations .* but received 2\.5/],
    ['windowSize < 2', () => nsaFlowExplicitSync(Y, { windowSize: 1 }), RangeError, /Expected an integer in \[2, 1000000\] for options\.windowSize/],
    ['NaN in Y0', () => nsaFlowExplicitSync({ ...Y, data: Float64Array.from(Y.data, (v, i) => (i === 4 ? NaN : v)) }), RangeError, /Expected finite values in Y0 but received NaN at \[1, 1\]/],
    ['NaN in X0', () => nsaFlowExplicitSync(Y, { X0: { ...Y, data: Float64Array.from(Y.data, (v, i) => (i === 0 ? Infinity : v)) } }), RangeError, /Expected finite values in options\.X0 but received Infinity at \[0, 0\]/],
    ['learningRate ≤ 0', () => nsaFlowExplicitSync(Y, { learningRate: 0 }), RangeError, /Expected a finite number > 0 or 'default' for options\.learningRate .* but received 0/],
    ['learningRate of the wrong type', () => nsaFlowExplicitSync(Y, { learningRate: '1e-3' as unknown as number }), TypeError, /options\.learningRate .* but received the string "1e-3"/],
    ['unknown option', () => nsaFlowExplicitSync(Y, { aggression: 0.5 } as object), TypeError, /Unknown option 'aggression' for nsaFlowExplicitSync\(\)/],
    ['Y0 not a matrix', () => nsaFlowExplicitSync([1, 2] as unknown as Matrix), TypeError, /Expected a Matrix \{rows, cols, data: Float64Array\} for Y0 but received an array of length 2/],
    ['wide Y0 with a polar retraction', () => nsaFlowExplicitSync({ rows: 2, cols: 3, data: new Float64Array(6) }), RangeError, /rows ≥ cols \(p ≥ k\) for Y0 with retraction 'softPolar' but received 2×3/],
    ['softplus is not offered', () => nsaFlowExplicitSync(Y, { nonnegativity: 'softplus' as 'hard' }), RangeError, /Expected one of 'hard', 'none' for options\.nonnegativity/],
  ];
  for (const [what, call, cls, message] of cases) {
    it(what, () => {
      expect(call).toThrow(cls);
      expect(call).toThrow(message);
    });
  }

  it('the async form rejects with the same errors', async () => {
    await expect(nsaFlowExplicit(Y, { w: 2 })).rejects.toThrow(/for options\.w of nsaFlowExplicit\(\) but received 2/);
  });

  it('the raw binding re-checks its arguments (throws, never crashes)', async () => {
    const { native } = await import('../lib/native.js');
    const raw = native() as unknown as { explicitFlow: (...a: unknown[]) => unknown };
    expect(() => raw.explicitFlow(new Float64Array(4), null, 2, 3, {})).toThrow(RangeError); // length 4 ≠ 2·3
    // every option is required: its default lives in the TypeScript spec
    expect(() => raw.explicitFlow(new Float64Array([NaN, 1, 1, 1]), null, 2, 2, {})).toThrow(/Expected a number for options\.w but received undefined/);
    expect(() => raw.explicitFlow(new Float64Array(4), null, 2, 2, { w: 0.5 })).toThrow(TypeError); // options missing
    expect(() => raw.explicitFlow('x', null, 2, 2, {})).toThrow(TypeError);
  });
});
