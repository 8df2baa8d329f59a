// Missing values in stratifiedNtf (docs/missing-values.md): weighted Lee–Seung updates of every v(s)ₜ,
// w(s) and hₜ inside the reference's loop. As for the other methods: a fully observed mask is the
// unmasked run bit for bit, held-out entries never matter, the loss over the observed entries never
// increases, loss and certificate are the weighted objective's (checked against a direct evaluation
// from reconstruct() and explicit gradients), and the model imputes hidden pixels of real images.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { describe, expect, it } from 'vitest';

import { readLabels, readNpy, reconstruct, writeNpy, setBlasThreads, stratifiedNtf, stratifiedNtfLoss, stratifiedNtfSync, type StratifiedNtfResult, type Tensor } from '../lib/index.js';
import { native } from '../lib/native.js';
import { runMain, tempDir } from './helpers/cli-run.js';
import { gradientMapping, largestIncrease } from './helpers/snmf-cases.js';
import { dataFile } from './helpers/shared.js';
import { thrown } from './helpers/thrown.js';
import { uniform } from './helpers/uniform.js';

setBlasThreads(1);

function throws(fn: () => unknown, cls: new (...args: any[]) => Error, message: RegExp): void {
  const error = thrown(fn);
  expect(error).toBeInstanceOf(cls);
  expect(error.message).toMatch(message);
}

// Digits 0, 1 and 2 (8×8 images, pixel values 0–16): the first 30 images of each, one stratum each.
const digits = readNpy(dataFile('digits/digits_images.npy'));
const labels = readLabels(dataFile('digits/digits_labels.csv'), 'label').map(Number);
const F = 64;
const strata: Tensor[] = [0, 1, 2].map((digit) => {
  const rows = labels.flatMap((l, i) => (l === digit ? [i] : [])).slice(0, 30);
  const data = new Float64Array(rows.length * F);
  rows.forEach((row, k) => data.set(digits.data.subarray(row * F, (row + 1) * F), k * F));
  return { shape: [rows.length, 8, 8], data };
});
/** 10 % of each stratum's pixels, drawn by a seeded generator (true = missing). */
const masks = strata.map((t, s) => {
  const rand = uniform(40 + s);
  return Uint8Array.from(t.data, () => (rand() < 0.1 ? 1 : 0));
});
const omegaOf = (mask: Uint8Array) => Float64Array.from(mask, (x) => (x ? 0 : 1));
const base = { strataRank: 2, maxIterations: 60, seed: 3 };
const rank = 4;

const same = (a: StratifiedNtfResult, b: StratifiedNtfResult) => {
  a.v.forEach((vs, s) => vs.forEach((m, t) => expect(m.data).toEqual(b.v[s]![t]!.data)));
  a.w.forEach((m, s) => expect(m.data).toEqual(b.w[s]!.data));
  a.h.forEach((m, t) => expect(m.data).toEqual(b.h[t]!.data));
  expect(a.traces.loss).toEqual(b.traces.loss);
  expect(a.normalizedLoss).toBe(b.normalizedLoss);
  expect(a.certificate).toBe(b.certificate);
};

/**
 * √ΣₛΣω(a − B)², √Σωa² and the gradient mapping of ½Σω(a − B)²/Σωa² over every block, evaluated
 * directly: B from reconstruct(), the gradients entry by entry from the factors.
 */
function weightedCheck(A: Tensor[], omega: Float64Array[], res: StratifiedNtfResult) {
  const models = reconstruct(res);
  const dims = [8, 8];
  const r = res.h[0]!.rows;
  let loss2 = 0, norm2 = 0;
  const gh = res.h.map((m) => new Float64Array(m.data.length));
  const gv = res.v.map((vs) => vs.map((m) => new Float64Array(m.data.length)));
  const gw = res.w.map((m) => new Float64Array(m.data.length));
  A.forEach((a, s) => {
    const n = a.shape[0]!, q = res.v[s]![0]!.rows;
    for (let i = 0; i < n; i++)
      for (let j0 = 0; j0 < 8; j0++)
        for (let j1 = 0; j1 < 8; j1++) {
          const k = i * F + j0 * 8 + j1;
          const w = omega[s]![k]!;
          if (w === 0) continue;
          const d = models[s]!.data[k]! - a.data[k]!;
          loss2 += w * d * d;
          norm2 += w * a.data[k]! ** 2;
          const j = [j0, j1];
          for (let t = 0; t < 2; t++) {
            const o = 1 - t;
            for (let c = 0; c < q; c++) gv[s]![t]![c * dims[t]! + j[t]!] += w * d * res.v[s]![o]!.data[c * dims[o]! + j[o]!]!;
            for (let b = 0; b < r; b++) gh[t]![b * dims[t]! + j[t]!] += w * d * res.w[s]!.data[b * n + i]! * res.h[o]!.data[b * dims[o]! + j[o]!]!;
          }
          for (let b = 0; b < r; b++) gw[s]![b * n + i] += w * d * res.h[0]!.data[b * 8 + j0]! * res.h[1]!.data[b * 8 + j1]!;
        }
  });
  const scaled = (g: Float64Array) => g.map((x) => x / norm2);
  let certificate = 0;
  gh.forEach((g, t) => (certificate = Math.max(certificate, gradientMapping(res.h[t]!.data, scaled(g)))));
  gw.forEach((g, s) => (certificate = Math.max(certificate, gradientMapping(res.w[s]!.data, scaled(g)))));
  gv.forEach((gs, s) => gs.forEach((g, t) => (certificate = Math.max(certificate, gradientMapping(res.v[s]![t]!.data, scaled(g))))));
  return { loss: Math.sqrt(loss2), norm: Math.sqrt(norm2), certificate };
}

describe('stratifiedNtf with missing entries', () => {
  it('a fully observed mask is the unmasked run, bit for bit', () => {
    const plain = stratifiedNtfSync(strata, rank, base);
    same(stratifiedNtfSync(strata, rank, { ...base, mask: strata.map((t) => new Uint8Array(t.data.length)) }), plain);
    same(stratifiedNtfSync(strata, rank, { ...base, mask: [null, null, null] }), plain);
    same(stratifiedNtfSync(strata, rank, { ...base, weights: strata.map((t) => ({ shape: t.shape, data: new Float64Array(t.data.length).fill(1) })) }), plain);
    same(stratifiedNtfSync(strata, rank, { ...base, missing: 'nan' }), plain);
  });

  it('held-out entries do not influence the fit', async () => {
    const withValue = (x: number) => strata.map((t, s) => ({ ...t, data: t.data.map((a, k) => (masks[s]![k] ? x : a)) }));
    const first = stratifiedNtfSync(withValue(NaN), rank, { ...base, mask: masks });
    same(stratifiedNtfSync(withValue(1e4), rank, { ...base, mask: masks }), first);
    same(stratifiedNtfSync(withValue(NaN), rank, { ...base, missing: 'nan' }), first);
    same(stratifiedNtfSync(withValue(0), rank, { ...base, weights: strata.map((t, s) => ({ shape: t.shape, data: omegaOf(masks[s]!) })) }), first);
    // With the reference's TV term on h₁, h₂ as well.
    const tv = { ...base, tv: { reg: 0.5 }, mask: masks };
    same(stratifiedNtfSync(withValue(1e4), rank, tv), stratifiedNtfSync(withValue(NaN), rank, tv));
    // The worker-thread form runs the same solve.
    same(await stratifiedNtf(withValue(7), rank, { ...base, mask: masks }), first);
    expect(first.h[0]!.data).not.toEqual(stratifiedNtfSync(strata, rank, base).h[0]!.data);
  });

  it('the loss over the observed entries never increases; loss, normalizedLoss and certificate are the weighted ones', () => {
    const rand = uniform(5);
    const partial = [masks[0]!, null, masks[2]!];
    const general = strata.map((t, s) => ({ shape: t.shape, data: t.data.map((_, k) => (masks[s]![k] ? 0 : 0.3 + rand())) }));
    for (const [options, omega] of [
      [{ mask: partial }, strata.map((t, s) => (partial[s] ? omegaOf(partial[s]!) : new Float64Array(t.data.length).fill(1)))],
      [{ weights: general }, general.map((w) => w.data)],
    ] as const) {
      const res = stratifiedNtfSync(strata, rank, { ...base, ...options, maxIterations: 300 });
      // Each block's step minimizes a majorizer of the weighted objective: no rise beyond rounding.
      expect(largestIncrease(res.traces.loss)).toBeLessThan(1e-12);
      const check = weightedCheck(strata, omega as Float64Array[], res);
      expect(res.loss).toBeCloseTo(check.loss, 8);
      expect(res.normalizedLoss).toBeCloseTo(check.loss / check.norm, 12);
      expect(Math.abs(res.certificate! - check.certificate)).toBeLessThan(1e-9 * Math.max(1, check.certificate));
      // stratifiedNtfLoss of the returned state with the same options: the same weighted loss.
      expect(stratifiedNtfLoss(strata, res, { strataRank: 2, rank, ...options })).toBeCloseTo(res.loss, 8);
    }
  });

  it('approaches a KKT point of the observed entries; certificateTolerance stops on the weighted certificate', () => {
    // The reference's multiplicative updates approach stationarity slowly, masked or not (rank 3,
    // strataRank 1, seed 3: unmasked 5.7e-6 after 3000 iterations; masked 1.9e-2 after 20, 1.6e-6
    // after 3000).
    const kkt = { strataRank: 1, seed: 3, mask: masks };
    const early = stratifiedNtfSync(strata, 3, { ...kkt, maxIterations: 20 });
    const late = stratifiedNtfSync(strata, 3, { ...kkt, maxIterations: 3000, lossEvery: 100 });
    expect(late.certificate!).toBeLessThan(1e-3 * early.certificate!);
    expect(late.certificate!).toBeLessThan(1e-5);
    expect(weightedCheck(strata, masks.map(omegaOf), late).certificate).toBeCloseTo(late.certificate!, 10);
    const stopped = stratifiedNtfSync(strata, 3, { ...kkt, maxIterations: 3000, certificateTolerance: 1e-4 });
    expect(stopped.stopReason).toBe('gradMap');
    expect(weightedCheck(strata, masks.map(omegaOf), stopped).certificate).toBeLessThanOrEqual(1e-4);
  });

  it('imputes hidden pixels better than the stratum mean image', () => {
    const input = strata.map((t, s) => ({ ...t, data: t.data.map((a, k) => (masks[s]![k] ? NaN : a)) }));
    const res = stratifiedNtfSync(input, 6, { strataRank: 2, missing: 'nan', maxIterations: 1000, seed: 1 });
    const models = reconstruct(res);
    let model2 = 0, baseline2 = 0, hidden = 0;
    strata.forEach((t, s) => {
      // The baseline: each pixel's mean over the stratum's images where it is observed.
      const n = t.shape[0]!;
      const mean = new Float64Array(F), count = new Float64Array(F);
      for (let k = 0; k < n * F; k++) if (!masks[s]![k]) (mean[k % F] += t.data[k]!), count[k % F]++;
      for (let k = 0; k < n * F; k++) {
        if (!masks[s]![k]) continue;
        model2 += (models[s]!.data[k]! - t.data[k]!) ** 2;
        baseline2 += (mean[k % F]! / Math.max(count[k % F]!, 1) - t.data[k]!) ** 2;
        hidden++;
      }
    });
    // 536 hidden pixels; the baseline's RMSE is 3.16 (pixel values 0–16) and the model's 0.79 of it
    // (rank 6, strataRank 2, 1000 iterations; rank 4: 0.86, rank 10 after 2000: 0.77).
    expect(hidden).toBe(536);
    expect(Math.sqrt(model2 / baseline2)).toBeLessThan(0.85);
  });
});

describe('stratifiedNtf missing-value options: bad input', () => {
  it('names the defect before native work', () => {
    throws(() => stratifiedNtfSync(strata, rank, { ...base, mask: [masks[0]!] }), RangeError, /Expected an array of 3 entries \(one per stratum; null for none\) for options.mask of stratifiedNtfSync\(\)/);
    throws(() => stratifiedNtfSync(strata, rank, { ...base, mask: [masks[0]!, new Uint8Array(5), null] }), RangeError, /Expected 1920 entries \(the size of strata\[1\]\) for options.mask\[1\]/);
    throws(() => stratifiedNtfSync(strata, rank, { ...base, mask: masks[0] as never }), TypeError, /Expected an array \(one entry per stratum; null for none\) for options.mask/);
    throws(() => stratifiedNtfSync(strata, rank, { ...base, mask: [null, ['x'], null] as never }), TypeError, /true\/false or 1\/0 in options.mask\[1\]/);
    throws(
      () => stratifiedNtfSync(strata, rank, { ...base, weights: [null, { shape: [30, 64], data: new Float64Array(1920) }, null] }),
      RangeError,
      /Expected a Tensor of shape \[30, 8, 8\] \(the shape of strata\[1\]\) for options.weights\[1\]/,
    );
    throws(
      () => stratifiedNtfSync(strata, rank, { ...base, weights: [{ shape: [30, 8, 8], data: new Float64Array(1920).fill(-1) }, null, null] }),
      RangeError,
      /Expected finite weights ≥ 0 in options.weights\[0\] of stratifiedNtfSync\(\) but received -1 at index 0/,
    );
    const nan = strata.map((t) => ({ ...t, data: t.data.slice() }));
    const observed = masks[2]!.findIndex((x) => x === 0);
    nan[2]!.data[observed] = NaN;
    throws(() => stratifiedNtfSync(nan, rank, base), RangeError, /Expected finite non-negative values in strata\[2\] but received NaN/);
    throws(() => stratifiedNtfSync(nan, rank, { ...base, mask: masks }), RangeError, new RegExp(`in strata\\[2\\] at observed entries but received NaN at flat index ${observed} \\(mark missing entries`));
    throws(() => stratifiedNtfSync(strata, rank, { ...base, missing: 'absent' as never }), RangeError, /options.missing/);
  });

  it('the addon checks the raw weights again', () => {
    const raw = (weights: unknown, data = strata[0]!.data) =>
      native().stratifiedNtf([data], [30], [8, 8], [2], rank, {
        maxIterations: 2, vScaling: 2, tv: false, tvReg: 0, epsilon: 1e-9, tolerance: 0, lossEvery: 1, seed: 0, recordStages: false, certificateTolerance: 0,
        weights,
      } as never, undefined);
    throws(() => raw([new Float64Array(1920).fill(-1)]), RangeError, /options.weights\[0\]/);
    throws(() => raw([new Float64Array(5)]), RangeError, /options.weights\[0\]/);
    throws(() => raw([null, null]), RangeError, /options.weights/);
    throws(() => raw(['x']), TypeError, /options.weights\[0\]/);
    const nan = strata[0]!.data.slice();
    nan[0] = NaN;
    throws(() => raw([new Float64Array(1920).fill(1)], nan), RangeError, /strata\[0\] \(at entries of positive weight\)/);
    const omega = new Float64Array(1920).fill(1);
    omega[0] = 0;
    expect(() => raw([omega], nan)).not.toThrow();
  });
});

describe('nsa-flow sntf with missing entries', () => {
  it('--mask FILE (one tensor of X\'s shape) is split into the strata with X: the API call with the per-stratum masks, bit for bit', async () => {
    // X interleaves the three strata's images (labels 0, 1, 2, 0, 1, 2, …): the CLI groups them back.
    const dir = tempDir('sntf-masks');
    const X = { shape: [90, 8, 8], data: new Float64Array(90 * F) };
    const mask = { shape: [90, 8, 8], data: new Float64Array(90 * F) };
    for (let i = 0; i < 30; i++)
      for (let s = 0; s < 3; s++) {
        X.data.set(strata[s]!.data.subarray(i * F, (i + 1) * F), (3 * i + s) * F);
        mask.data.set(Float64Array.from(masks[s]!.subarray(i * F, (i + 1) * F)), (3 * i + s) * F);
      }
    writeNpy(join(dir, 'x.npy'), X);
    writeNpy(join(dir, 'mask.npy'), mask);
    writeFileSync(join(dir, 'labels.csv'), `label\n${Array.from({ length: 90 }, (_, i) => i % 3).join('\n')}\n`);
    const args = ['sntf', join(dir, 'x.npy'), '--strata-from', `${join(dir, 'labels.csv')}:label`, '--strata-rank', '2', '--rank', `${rank}`, '--seed', '3', '--max-iterations', '30'];
    const r = await runMain([...args, '--mask', join(dir, 'mask.npy'), '--out', join(dir, 'out')]);
    expect(r.code, r.stderr).toBe(0);
    const api = stratifiedNtfSync(strata, rank, { ...base, maxIterations: 30, mask: masks });
    expect(readNpy(join(dir, 'out', 'h.0.npy')).data).toEqual(api.h[0]!.data);
    expect(readNpy(join(dir, 'out', 'w.2.npy')).data).toEqual(api.w[2]!.data);
    // --solver hals with --weighted-hals: the API's solve with that update, recorded in the settings.
    for (const update of ['exact', 'surrogate'] as const) {
      const hals = await runMain([...args, '--mask', join(dir, 'mask.npy'), '--solver', 'hals', '--weighted-hals', update, '--json']);
      expect(hals.code, hals.stderr).toBe(0);
      const json = JSON.parse(hals.stdout.trim().split('\n').at(-1)!);
      expect(json.settings.weightedHals).toBe(update);
      const fit = stratifiedNtfSync(strata, rank, { ...base, maxIterations: 30, mask: masks, solver: 'hals', weightedHals: update });
      expect(json.diagnostics.normalizedLoss).toBe(fit.normalizedLoss);
    }
    // --missing nan as the API's; a weights file that is not a tensor, or one of another shape: exit 2.
    const nan = await runMain([...args, '--missing', 'nan', '--json']);
    expect(nan.code, nan.stderr).toBe(0);
    const wrong = await runMain([...args, '--weights', join(dir, 'labels.csv')]);
    expect(wrong.code).toBe(2);
    expect(wrong.stderr).toMatch(/NUMPY/);
    writeNpy(join(dir, 'small.npy'), { shape: [2, 8, 8], data: new Float64Array(128) });
    const shape = await runMain([...args, '--mask', join(dir, 'small.npy')]);
    expect(shape.code).toBe(2);
    expect(shape.stderr).toMatch(/Expected a tensor of X's shape \[90, 8, 8\] for --mask but received shape \[2, 8, 8\]/);
  });
});
