import { describe, expect, it } from 'vitest';

import { estimateLearningRate, lrStrategies, type LrStrategy } from '../lib/index.js';
import { camel } from './helpers/flow-fixtures.js';
import { fxMatrix, loadFixture, relativeError } from './helpers/shared.js';

const fx = loadFixture('lr_estimation.json');
const strategyName = (s: string): LrStrategy =>
  (({ armijo_aggressive: 'armijoAggressive', momentum_boost: 'momentumBoost', poly_decay: 'polyDecay' }) as Record<string, string>)[s] as LrStrategy ?? (s as LrStrategy);
const Y0 = fxMatrix(fx.inputs.Y0);
const X0 = fxMatrix(fx.inputs.X0);
const base = {
  // the recorded estimates are the reference's energy with its calibrated weights
  weighting: 'reference' as const,
  w: fx.options.w,
  retraction: camel(fx.options.retraction) as 'softPolar',
  nonnegativity: camel(fx.options.apply_nonneg) as 'hard',
  nsIterations: fx.options.ns_iter,
  fidEta: fx.options.fid_eta,
  cOrth: fx.options.c_orth,
};
const arr = (a: any): number[] => (Array.isArray(a) ? a : a.data);

function injected(c: any) {
  const d = c.random_draws;
  if (!d) return undefined;
  if (d.uniform01 !== undefined) return { uniform: typeof d.uniform01 === 'number' ? [d.uniform01] : arr(d.uniform01) };
  return { normal: arr(d['normal_0_0.05']) };
}

describe('learning-rate strategies: parity with lr_estimation.json', () => {
  it('has the 11 strategies × 3 aggressions, 24 of them deterministic', () => {
    expect(fx.cases).toHaveLength(33);
    expect(fx.cases.filter((c: any) => c.deterministic)).toHaveLength(24);
    expect(new Set(fx.cases.map((c: any) => strategyName(c.strategy)))).toEqual(new Set(lrStrategies));
  });
  for (const c of fx.cases) {
    it(`${c.name}${c.deterministic ? '' : ' (fixture draws injected)'}`, () => {
      const r = estimateLearningRate(Y0, X0, { ...base, strategy: strategyName(c.strategy), aggression: c.aggression, draws: injected(c) });
      const R = c.result;
      // candidates from numpy's formulas: equal to rounding (measured ≤ 3.4e-16); losses are energies (1e-12)
      expect(r.candidates).toHaveLength(c.candidates_evaluated);
      expect(relativeError(r.candidates, arr(R.lr_candidates))).toBeLessThan(1e-14);
      expect(relativeError(r.losses, arr(R.losses))).toBeLessThan(1e-12);
      expect(relativeError(r.relChanges, arr(R.rel_changes))).toBeLessThan(1e-9);
      // the chosen rate: the same candidate (or the same 0.9-quantile for armijo), to rounding
      expect(Math.abs(r.bestLr / R.best_lr - 1)).toBeLessThan(1e-14);
      expect(Math.abs(r.bestEnergy / R.best_energy - 1)).toBeLessThan(1e-12);
    });
  }
});

describe('randomized strategies without injected draws', () => {
  for (const strategy of ['random', 'bayes', 'entropy'] as const) {
    it(`${strategy}: reproducible from seed, and the draws it used reproduce it`, () => {
      const a = estimateLearningRate(Y0, X0, { ...base, strategy, seed: 5 });
      const b = estimateLearningRate(Y0, X0, { ...base, strategy, seed: 5 });
      expect(a.bestLr).toBe(b.bestLr);
      expect(Array.from(a.candidates)).toEqual(Array.from(b.candidates));
      const replay = estimateLearningRate(Y0, X0, {
        ...base,
        strategy,
        seed: 999,
        draws: { uniform: Array.from(a.draws.uniform), normal: Array.from(a.draws.normal) },
      });
      expect(replay.bestLr).toBe(a.bestLr);
      // the draws follow the rule's distribution: U(0,1) or N(0, 0.05²)
      for (const u of a.draws.uniform) expect(u >= 0 && u < 1).toBe(true);
      for (const z of a.draws.normal) expect(Math.abs(z)).toBeLessThan(0.5);
    });
  }
  it('random: a different seed gives different candidates', () => {
    const a = estimateLearningRate(Y0, X0, { ...base, strategy: 'random', seed: 1 });
    const b = estimateLearningRate(Y0, X0, { ...base, strategy: 'random', seed: 2 });
    expect(relativeError(a.candidates, b.candidates)).toBeGreaterThan(1e-3);
  });
});

describe('estimateLearningRate: bad input', () => {
  it('names the valid strategies', () => {
    expect(() => estimateLearningRate(Y0, X0, { strategy: 'auto' as 'bayes' })).toThrow(RangeError);
    expect(() => estimateLearningRate(Y0, X0, { strategy: 'auto' as 'bayes' })).toThrow(/Expected one of 'armijo', 'armijoAggressive', .* 'bayes' for options.strategy/);
  });
  it('rejects aggression outside [0, 1]', () => {
    expect(() => estimateLearningRate(Y0, X0, { strategy: 'grid', aggression: 1.5 })).toThrow(/Expected a finite number in \[0, 1\] for options.aggression of estimateLearningRate\(\) but received 1.5/);
  });
});
