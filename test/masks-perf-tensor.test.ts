// The tensor solvers' listed loops (native/kernels/ntf.cpp on listed_kernels.cpp's cpValues, cpGroupSums
// and halsRow): the masked ntf adds, to the plain MTTKRPs, sums over the entries whose weight differs
// from 1, through vector kernels (AVX + FMA, chosen at run time) or portable loops (NSA_FLOW_SIMD=0).
// Both must equal a straightforward computation over all entries: one iteration from given factors is
// compared with the weighted MU and HALS updates written out here, entry by entry, to 1e-12 relative
// (the two differ only in the order of the sums).
import { afterEach, describe, expect, it } from 'vitest';

import { ntfSync, setBlasThreads, stratifiedNtfLoss, stratifiedNtfSync, type Matrix, type Tensor } from '../lib/index.js';
import { uniform } from './helpers/uniform.js';

setBlasThreads(1);

const paths = ['default', 'portable'] as const;
function onPath<T>(path: (typeof paths)[number], fn: () => T): T {
  if (path === 'portable') process.env.NSA_FLOW_SIMD = '0';
  try {
    return fn();
  } finally {
    delete process.env.NSA_FLOW_SIMD;
  }
}
afterEach(() => {
  delete process.env.NSA_FLOW_SIMD;
});

// 7×9×11: about 10 % missing, so a slice holds 0–20 listed entries (some none) and every remainder of
// the kernels' 4-wide blocks occurs; ranks 1, 3, 8 and 13 (rows of less than one vector, one partial
// one, two whole ones, three and a partial one) take the AVX sums that keep a row in registers (up to
// 32), rank 35 (eight whole vectors and a partial one) the general ones.
const shape = [7, 9, 11];
const size = 7 * 9 * 11;
const T: Tensor = (() => {
  const rand = uniform(11);
  return { shape, data: Float64Array.from({ length: size }, () => 0.5 + rand()) };
})();
const mask = (() => {
  const rand = uniform(12);
  return Uint8Array.from({ length: size }, () => (rand() < 0.1 ? 1 : 0));
})();
// General weights: 0 at the masked entries, 0.2–2.2 elsewhere, 1 on about half (those are not listed).
const weights: Tensor = (() => {
  const rand = uniform(13);
  return { shape, data: Float64Array.from(mask, (x) => (x ? 0 : rand() < 0.5 ? 1 : 0.2 + 2 * rand())) };
})();
const omegaOf = (options: { mask?: Uint8Array; weights?: Tensor }): Float64Array =>
  options.weights ? options.weights.data : Float64Array.from(mask, (x) => (x ? 0 : 1));

/** Initial factors dₘ × r (row-major), U(0.1, 1.1). */
function initialFactors(rank: number, seed: number): Matrix[] {
  const rand = uniform(seed);
  return shape.map((d) => ({ rows: d, cols: rank, data: Float64Array.from({ length: d * rank }, () => 0.1 + rand()) }));
}

/** The multi-index (i₀, i₁, i₂) of flat entry k (C order). */
const indexOf = (k: number): number[] => [Math.floor(k / 99), Math.floor(k / 11) % 9, k % 11];

/** z_a = Π_{j≠m} F_j[i_j, a] and the model Σ_a Π_j F_j[i_j, a] at entry k. */
function termsAt(F: Float64Array[], r: number, k: number, m: number): { z: Float64Array; model: number } {
  const idx = indexOf(k);
  const z = new Float64Array(r);
  let model = 0;
  for (let a = 0; a < r; a++) {
    let p = 1;
    for (let j = 0; j < 3; j++) if (j !== m) p *= F[j]![idx[j]! * r + a]!;
    z[a] = p;
    model += p * F[m]![idx[m]! * r + a]!;
  }
  return { z, model };
}

/**
 * The weighted Lee–Seung step, modes in order with the others' newest values:
 * Fₘ ← Fₘ ∘ max(MTTKRP(Ω∘T), ε)/max(MTTKRP(Ω∘model), ε), ε machine epsilon (ntf's default).
 */
function referenceMu(omega: Float64Array, F0: Matrix[], r: number): Float64Array[] {
  const F = F0.map((f) => Float64Array.from(f.data));
  const eps = 2.220446049250313e-16;
  for (let m = 0; m < 3; m++) {
    const num = new Float64Array(shape[m]! * r), den = new Float64Array(shape[m]! * r);
    for (let k = 0; k < size; k++) {
      const i = indexOf(k)[m]!;
      const { z, model } = termsAt(F, r, k, m);
      for (let a = 0; a < r; a++) (num[i * r + a] += omega[k]! * T.data[k]! * z[a]!), (den[i * r + a] += omega[k]! * model * z[a]!);
    }
    F[m] = F[m]!.map((x, j) => (x * Math.max(num[j]!, eps)) / Math.max(den[j]!, eps));
  }
  return F;
}

/**
 * Weighted HALS, modes in order, each mode swept `sweeps` times, component k = 0 … r − 1 of each
 * sweep in turn: every Fₘ[i, k] ← max(0, Fₘ[i, k] + g/d).
 * - 'exact': g = Σ ω(t − model)z_k and d = Σ ω z_k² over all entries with iₘ = i (d at most
 *   1e-12·Σ z_k² leaves it, as the solver does);
 * - 'surrogate': the plain step on x̃ = ωt + (1 − ω)·model, x̃ taken once at the start of the mode's
 *   update: g = Σ (x̃ − model)z_k, d = Σ z_k².
 */
function referenceHals(omega: Float64Array, F0: Matrix[], r: number, update: 'exact' | 'surrogate' = 'exact', sweeps = 1): Float64Array[] {
  const F = F0.map((f) => Float64Array.from(f.data));
  for (let m = 0; m < 3; m++) {
    const filled = Float64Array.from(T.data, (t, k) => omega[k]! * t + (1 - omega[k]!) * termsAt(F, r, k, m).model);
    for (let sweep = 0; sweep < sweeps; sweep++)
      for (let c = 0; c < r; c++) {
        const g = new Float64Array(shape[m]!), d = new Float64Array(shape[m]!), plain = new Float64Array(shape[m]!);
        for (let k = 0; k < size; k++) {
          const i = indexOf(k)[m]!;
          const { z, model } = termsAt(F, r, k, m);
          const w = update === 'exact' ? omega[k]! : 1;
          g[i] += w * ((update === 'exact' ? T.data[k]! : filled[k]!) - model) * z[c]!;
          d[i] += w * z[c]! ** 2;
          plain[i] += z[c]! ** 2;
        }
        for (let i = 0; i < shape[m]!; i++)
          if (d[i]! > 1e-12 * plain[i]!) F[m]![i * r + c] = Math.max(0, F[m]![i * r + c]! + g[i]! / d[i]!);
      }
  }
  return F;
}

/** max |x − ref| / max |ref|: the error relative to the factor's scale. */
function relativeError(x: Float64Array, ref: Float64Array): number {
  let diff = 0, scale = 0;
  for (let k = 0; k < ref.length; k++) (diff = Math.max(diff, Math.abs(x[k]! - ref[k]!))), (scale = Math.max(scale, Math.abs(ref[k]!)));
  return diff / scale;
}

describe.each(paths)('ntf: the listed loops (%s path) equal the weighted updates computed over all entries', (path) => {
  for (const rank of [1, 3, 8, 13, 35])
    for (const [label, options] of [['mask', { mask }], ['weights', { weights }]] as const)
      for (const solver of ['mu', 'hals'] as const)
        it(`${solver}, rank ${rank}, ${label}: one iteration from given factors to 1e-12`, () => {
          const F0 = initialFactors(rank, 100 + rank);
          const hals = { weightedHals: 'exact', innerSweeps: 1 } as const;
          const res = onPath(path, () => ntfSync(T, rank, { solver, init: { factors: F0 }, maxIterations: 1, ...options, ...(solver === 'hals' ? hals : {}) }));
          const omega = omegaOf(options);
          const ref = solver === 'mu' ? referenceMu(omega, F0, rank) : referenceHals(omega, F0, rank);
          res.factors.forEach((f, m) => expect(relativeError(f.data, ref[m]!)).toBeLessThan(1e-12));
          // The loss over the observed entries, √Σω(t − model)², at the returned factors.
          let loss2 = 0;
          for (let k = 0; k < size; k++) {
            const F = res.factors.map((f) => f.data);
            const { model } = termsAt(F, rank, k, 0);
            loss2 += omega[k]! * (T.data[k]! - model) ** 2;
          }
          expect(Math.abs(res.loss - Math.sqrt(loss2)) / Math.sqrt(loss2)).toBeLessThan(1e-10);
        });
});

// HALS's weighted updates with several sweeps per mode (innerTolerance 0: all of them run): the exact
// one's later sweeps reuse the gathered Khatri–Rao rows, their curvatures and cross sums; the surrogate
// fills the missing part once per mode and sweeps the plain objective (every weight ≤ 1: the mask,
// and the general weights halved). Expected: the same steps written out over all entries, to 1e-12;
// a sweep dropped, or x̃ refreshed within a mode, moves the factors by far more.
describe.each(paths)('ntf hals: the exact and surrogate weighted updates with 3 sweeps (%s path)', (path) => {
  const halved: Tensor = { shape, data: weights.data.map((w) => w / 2.2) };
  for (const rank of [3, 8, 13])
    for (const update of ['exact', 'surrogate'] as const)
      for (const [label, options] of [['mask', { mask }], ['weights ≤ 1', { weights: halved }]] as const)
        it(`${update}, rank ${rank}, ${label}: one iteration to 1e-12`, () => {
          const F0 = initialFactors(rank, 300 + rank);
          const res = onPath(path, () =>
            ntfSync(T, rank, { solver: 'hals', init: { factors: F0 }, maxIterations: 1, weightedHals: update, innerSweeps: 3, innerTolerance: 0, ...options }),
          );
          expect(res.settings.weightedHals).toBe(update);
          const ref = referenceHals(omegaOf(options), F0, rank, update, 3);
          res.factors.forEach((f, m) => expect(relativeError(f.data, ref[m]!)).toBeLessThan(1e-12));
        });
});

// ntf MU's listed sums go over the entries grouped by their index in the updated mode
// (listed_kernels.cpp's cpGroupSums), compiled per number of other modes (1–3) and per row length up
// to 32, with general loops beyond: 2- and 4-way tensors take the dispatches that the 3-way one above
// does not. Expected: the weighted Lee–Seung step written out over all entries, to 1e-12 (the kernels
// differ from it only in the order of the sums); a wrong row, entry or weight moves the factors by
// far more.
describe.each(paths)('ntf mu: the grouped listed sums (%s path) on 2- and 4-way tensors', (path) => {
  for (const dims of [[13, 9], [5, 4, 6, 3]])
    for (const rank of [3, 8, 35])
      for (const kind of ['mask', 'weights'] as const)
        it(`${dims.join('×')}, rank ${rank}, ${kind}: one iteration to 1e-12`, () => {
          const n = dims.reduce((a, b) => a * b, 1), order = dims.length;
          const rand = uniform(200 + order * 10 + rank);
          const X = Float64Array.from({ length: n }, () => 0.5 + rand());
          const missing = Uint8Array.from({ length: n }, () => (rand() < 0.15 ? 1 : 0));
          const omega = Float64Array.from(missing, (x) => (x ? 0 : kind === 'mask' || rand() < 0.5 ? 1 : 0.2 + 2 * rand()));
          const F0 = dims.map((d) => ({ rows: d, cols: rank, data: Float64Array.from({ length: d * rank }, () => 0.1 + rand()) }));
          const options = kind === 'mask' ? { mask: missing } : { weights: { shape: dims, data: omega } };
          const res = onPath(path, () => ntfSync({ shape: dims, data: X }, rank, { solver: 'mu', init: { factors: F0 }, maxIterations: 1, ...options }));
          // The reference: modes in order, each with the others' newest values.
          const F = F0.map((f) => Float64Array.from(f.data));
          const at = (k: number): number[] => {
            const idx: number[] = [];
            for (let m = order - 1; m >= 0; m--) idx[m] = k % dims[m]!, (k = Math.floor(k / dims[m]!));
            return idx;
          };
          for (let m = 0; m < order; m++) {
            const num = new Float64Array(dims[m]! * rank), den = new Float64Array(dims[m]! * rank);
            for (let k = 0; k < n; k++) {
              const idx = at(k);
              const z = new Float64Array(rank);
              let model = 0;
              for (let a = 0; a < rank; a++) {
                let p = 1;
                for (let j = 0; j < order; j++) if (j !== m) p *= F[j]![idx[j]! * rank + a]!;
                z[a] = p;
                model += p * F[m]![idx[m]! * rank + a]!;
              }
              const i = idx[m]!;
              for (let a = 0; a < rank; a++) (num[i * rank + a] += omega[k]! * X[k]! * z[a]!), (den[i * rank + a] += omega[k]! * model * z[a]!);
            }
            F[m] = F[m]!.map((x, j) => (x * Math.max(num[j]!, 2.220446049250313e-16)) / Math.max(den[j]!, 2.220446049250313e-16));
          }
          res.factors.forEach((f, m) => expect(relativeError(f.data, F[m]!)).toBeLessThan(1e-12));
        });
});

describe('ntf: a fully observed mask is the unmasked run, bit for bit, on both paths', () => {
  for (const path of paths)
    for (const solver of ['mu', 'hals'] as const)
      it(`${solver}, ${path}`, () => {
        const F0 = initialFactors(8, 7);
        const run = (extra: object) => onPath(path, () => ntfSync(T, 8, { solver, init: { factors: F0 }, maxIterations: 3, ...extra }));
        const plain = run({}), masked = run({ mask: new Uint8Array(size) });
        masked.factors.forEach((f, m) => expect(f.data).toEqual(plain.factors[m]!.data));
        expect(masked.traces.loss).toEqual(plain.traces.loss);
      });
});

// Stratified-NTF: weights of 2 on every entry list all of them (κ = 1, with data terms), so every
// weighted numerator and denominator is the plain one plus its listed part, which must then equal the
// plain product computed over all entries: the sums are twice the plain ones, and Lee–Seung's ratios,
// hence the iterates, are the plain run's (the floor ε = 1e-9 is far below them), the loss √2 times.
describe.each(paths)('stratifiedNtf: the listed sums (%s path) over all entries equal the plain products', (path) => {
  const dims = [5, 7];
  const samples = [6, 9, 4];
  const strata: Tensor[] = samples.map((n, s) => {
    const rand = uniform(60 + s);
    return { shape: [n, ...dims], data: Float64Array.from({ length: n * 35 }, () => 0.2 + rand()) };
  });
  const twice = strata.map((t) => ({ shape: t.shape, data: new Float64Array(t.data.length).fill(2) }));
  const flat = (st: { v: Matrix[][]; w: Matrix[]; h: Matrix[] }) => [...st.v.flat(), ...st.w, ...st.h].map((m) => m.data);
  for (const [rank, strataRank] of [[1, 1], [3, 2], [8, 5], [13, 4], [35, 6]] as const)
    it(`rank ${rank}, strataRank ${strataRank}: two iterations equal the unweighted ones to 1e-12`, () => {
      const options = { strataRank, maxIterations: 2, seed: 5 };
      const plain = onPath(path, () => stratifiedNtfSync(strata, rank, options));
      const weighted = onPath(path, () => stratifiedNtfSync(strata, rank, { ...options, weights: twice }));
      const expected = flat(plain), actual = flat(weighted);
      expect(actual.length).toBe(expected.length);
      actual.forEach((x, k) => expect(relativeError(x, expected[k]!)).toBeLessThan(1e-12));
      expect(Math.abs(weighted.loss / plain.loss - Math.SQRT2)).toBeLessThan(1e-10);
    });
});

// Stratified-NTF's v(s) blocks sum their listed entries per feature index (the own term depends on
// it only): with general weights (0 at a mask, 0.2–2.2 on some entries, 1 elsewhere, so the features
// have differing κ sums, some none) one v sweep from given factors must equal the weighted
// Lee–Seung step written out over all entries, v ← v ∘ max(Σω·a·z, ε) / max(Σω·B·z, ε) with
// B = own + topic term and z the other mode's v rows, modes in order, to 1e-12 relative.
describe.each(paths)('stratifiedNtf: the v blocks\' listed sums by feature (%s path) equal the weighted step over all entries', (path) => {
  const dims = [5, 7];
  const samples = [6, 9, 4];
  const F = 35;
  const strata: Tensor[] = samples.map((n, s) => {
    const rand = uniform(80 + s);
    return { shape: [n, ...dims], data: Float64Array.from({ length: n * F }, () => 0.2 + rand()) };
  });
  const weights: Tensor[] = strata.map((t, s) => {
    const rand = uniform(90 + s);
    return { shape: t.shape, data: Float64Array.from(t.data, () => (rand() < 0.15 ? 0 : rand() < 0.5 ? 1 : 0.2 + 2 * rand())) };
  });
  for (const [rank, q] of [[3, 2], [8, 5]] as const)
    it(`rank ${rank}, strataRank ${q}: one v sweep to 1e-12`, () => {
      const rand = uniform(70 + rank);
      const matrix = (rows: number, cols: number): Matrix => ({ rows, cols, data: Float64Array.from({ length: rows * cols }, () => 0.1 + rand()) });
      const init = {
        v: samples.map(() => dims.map((d) => matrix(q, d))),
        w: samples.map((n) => matrix(rank, n)),
        h: dims.map((d) => matrix(rank, d)),
      };
      const res = onPath(path, () => stratifiedNtfSync(strata, rank, { strataRank: q, vScaling: 1, maxIterations: 1, init, weights }));
      const eps = 1e-9;
      samples.forEach((n, s) => {
        const v = init.v[s]!.map((m) => Float64Array.from(m.data));
        const w = init.w[s]!.data, [h0, h1] = init.h.map((m) => m.data);
        for (let t = 0; t < 2; t++) {
          const d = dims[t]!, o = 1 - t, dOther = dims[o]!;
          const num = new Float64Array(q * d), den = new Float64Array(q * d);
          for (let i0 = 0; i0 < n; i0++)
            for (let i1 = 0; i1 < 5; i1++)
              for (let i2 = 0; i2 < 7; i2++) {
                const k = i0 * F + i1 * 7 + i2, f = [i1, i2];
                let topic = 0;
                for (let b = 0; b < rank; b++) topic += w[b * n + i0]! * h0![b * 5 + i1]! * h1![b * 7 + i2]!;
                let own = 0;
                for (let a = 0; a < q; a++) own += v[o]![a * dOther + f[o]!]! * v[t]![a * d + f[t]!]!;
                const om = weights[s]!.data[k]!;
                for (let a = 0; a < q; a++) {
                  const z = v[o]![a * dOther + f[o]!]!;
                  num[a * d + f[t]!] += om * strata[s]!.data[k]! * z;
                  den[a * d + f[t]!] += om * (own + topic) * z;
                }
              }
          v[t] = v[t]!.map((x, j) => (x * Math.max(num[j]!, eps)) / Math.max(den[j]!, eps));
          expect(relativeError(res.v[s]![t]!.data, v[t]!)).toBeLessThan(1e-12);
        }
      });
    });
});

// Stratified-NTF's MU visits the listed entries of its w and h blocks feature by feature (the h rows'
// product and the own term once per feature; the h blocks through dotsAxpy, each entry's model value
// and its part of the sums in one pass over its row of w(s)), and its w block reads the topic values
// its v blocks took. One whole iteration (v sweep, w, then the h modes in order, each h numerator and
// denominator floored per stratum, then summed) from given factors must equal the weighted Lee–Seung
// steps written out over all entries to 1e-12 relative (the two differ only in the order of the sums;
// dotsAxpy's vector version with its dot products 1e-4 too large fails them): stratum 0 with a mask (κ = −1
// throughout, no data terms), stratum 1 with weights (0, 1 and 0.2–2.2: per-entry κ and κa),
// stratum 2 without; 1, 2 and 3 feature modes; ranks 3, 8, 13 and 35 (every remainder of the
// kernels' 4-wide rows, and the 4-entry blocks' remainders through the features' 0–9 entries).
describe.each(paths)('stratifiedNtf mu: the w and h blocks\' listed sums by feature (%s path) equal the weighted steps over all entries', (path) => {
  const samples = [6, 9, 4];
  for (const dims of [[9], [5, 7], [3, 4, 5]])
    for (const [rank, q] of [[3, 2], [8, 5], [13, 4], [35, 3]] as const)
      it(`${dims.length} feature mode(s), rank ${rank}, strataRank ${q}: one iteration to 1e-12`, () => {
        const K = dims.length, F = dims.reduce((a, b) => a * b, 1);
        const strata: Tensor[] = samples.map((n, s) => {
          const rand = uniform(140 + s);
          return { shape: [n, ...dims], data: Float64Array.from({ length: n * F }, () => 0.2 + rand()) };
        });
        const rand = uniform(150 + rank);
        const maskOf = Uint8Array.from({ length: samples[0]! * F }, () => (rand() < 0.15 ? 1 : 0));
        const weightsOf: Tensor = { shape: strata[1]!.shape, data: Float64Array.from(strata[1]!.data, () => (rand() < 0.15 ? 0 : rand() < 0.5 ? 1 : 0.2 + 2 * rand())) };
        const omega = [Float64Array.from(maskOf, (m) => 1 - m), weightsOf.data, new Float64Array(samples[2]! * F).fill(1)];
        const matrix = (rows: number, cols: number): Matrix => ({ rows, cols, data: Float64Array.from({ length: rows * cols }, () => 0.1 + rand()) });
        const init = {
          v: samples.map(() => dims.map((d) => matrix(q, d))),
          w: samples.map((n) => matrix(rank, n)),
          h: dims.map((d) => matrix(rank, d)),
        };
        const res = onPath(path, () =>
          stratifiedNtfSync(strata, rank, { strataRank: q, vScaling: 1, maxIterations: 1, init, mask: [maskOf, null, null], weights: [null, weightsOf, null] }),
        );
        const eps = 1e-9;
        const index = (f: number) => {
          const idx: number[] = new Array(K);
          for (let t = K - 1; t >= 0; t--) (idx[t] = f % dims[t]!), (f = Math.floor(f / dims[t]!));
          return idx;
        };
        const features = Array.from({ length: F }, (_, f) => index(f));
        const v = init.v.map((vs) => vs.map((m) => Float64Array.from(m.data)));
        const w = init.w.map((m) => Float64Array.from(m.data));
        const h = init.h.map((m) => Float64Array.from(m.data));
        const own = (s: number, f: number[]) => {
          let x = 0;
          for (let a = 0; a < q; a++) x += v[s]!.reduce((p, vt, t) => p * vt[a * dims[t]! + f[t]!]!, 1);
          return x;
        };
        const topic = (s: number, i: number, f: number[]) => {
          let x = 0;
          for (let b = 0; b < rank; b++) x += w[s]![b * samples[s]! + i]! * h.reduce((p, ht, t) => p * ht[b * dims[t]! + f[t]!]!, 1);
          return x;
        };
        const step = (x: Float64Array, num: Float64Array, den: Float64Array) => x.map((y, j) => (y * Math.max(num[j]!, eps)) / Math.max(den[j]!, eps));
        samples.forEach((n, s) => {
          // The v sweep, modes in order, the topic term at the iteration's start.
          const c = Array.from({ length: n }, (_, i) => features.map((f) => topic(s, i, f)));
          for (let t = 0; t < K; t++) {
            const d = dims[t]!, num = new Float64Array(q * d), den = new Float64Array(q * d);
            features.forEach((f, fi) => {
              const o = own(s, f);
              for (let i = 0; i < n; i++) {
                const k = i * F + fi, om = omega[s]![k]!;
                for (let a = 0; a < q; a++) {
                  const z = v[s]!.reduce((p, vk, k2) => (k2 === t ? p : p * vk[a * dims[k2]! + f[k2]!]!), 1);
                  num[a * d + f[t]!] += om * strata[s]!.data[k]! * z;
                  den[a * d + f[t]!] += om * (o + c[i]![fi]!) * z;
                }
              }
            });
            v[s]![t] = step(v[s]![t]!, num, den);
          }
        });
        samples.forEach((n, s) => {
          // w(s): the derivative factors are the h rows' product at the entry's feature.
          const num = new Float64Array(rank * n), den = new Float64Array(rank * n);
          features.forEach((f, fi) => {
            const o = own(s, f);
            for (let i = 0; i < n; i++) {
              const k = i * F + fi, om = omega[s]![k]!, model = o + topic(s, i, f);
              for (let b = 0; b < rank; b++) {
                const z = h.reduce((p, ht, t) => p * ht[b * dims[t]! + f[t]!]!, 1);
                num[b * n + i] += om * strata[s]!.data[k]! * z;
                den[b * n + i] += om * model * z;
              }
            }
          });
          w[s] = step(w[s]!, num, den);
        });
        for (let t = 0; t < K; t++) {
          const d = dims[t]!, numSum = new Float64Array(rank * d), denSum = new Float64Array(rank * d);
          samples.forEach((n, s) => {
            const num = new Float64Array(rank * d), den = new Float64Array(rank * d);
            features.forEach((f, fi) => {
              const o = own(s, f);
              for (let i = 0; i < n; i++) {
                const k = i * F + fi, om = omega[s]![k]!, model = o + topic(s, i, f);
                for (let b = 0; b < rank; b++) {
                  const z = w[s]![b * n + i]! * h.reduce((p, hk, k2) => (k2 === t ? p : p * hk[b * dims[k2]! + f[k2]!]!), 1);
                  num[b * d + f[t]!] += om * strata[s]!.data[k]! * z;
                  den[b * d + f[t]!] += om * model * z;
                }
              }
            });
            num.forEach((x, j) => (numSum[j] += Math.max(x, eps)));
            den.forEach((x, j) => (denSum[j] += Math.max(x, eps)));
          });
          h[t] = h[t]!.map((x, j) => (x * numSum[j]!) / denSum[j]!);
        }
        samples.forEach((_, s) => {
          v[s]!.forEach((vt, t) => expect(relativeError(res.v[s]![t]!.data, vt)).toBeLessThan(1e-12));
          expect(relativeError(res.w[s]!.data, w[s]!)).toBeLessThan(1e-12);
        });
        h.forEach((ht, t) => expect(relativeError(res.h[t]!.data, ht)).toBeLessThan(1e-12));
      });
});

// Stratified-NTF's HALS with missing entries and weights: its weighted blocks form each column's
// Khatri–Rao rows from entry-major factor copies and sweep them, up to its inner-sweep limit, with
// cpHalsGather/cpHalsSweep. The vector kernels (blocks of four entries, two coordinates per pass with
// the second gradient corrected for the first step, the last steps applied after a sweep, the later
// sweeps reading the curvatures and cross sums the first one took, a pass after two zero steps only
// reading the residuals) must give the portable loops' iterates (one coordinate per pass, each step
// applied at once) to 1e-10 relative after three iterations (each block up to 10 inner sweeps, so
// rounding compounds: the largest difference seen was 2e-12; a wrong sum or step gives 1e-3 and more,
// and halving the cross sums the later sweeps read fails four of these cases): 1, 2 and 3 feature modes (the w and h blocks' rows of order 1–3, the v
// blocks' of order 0–2, over listed features) and ranks 1, 3, 8, 13 and 35 (every remainder of a 4-wide row). Each path's
// loss must be the weighted loss of its state and must not rise. The columns are swept two at a time
// (cpHalsSweepPair: the vector version interleaves the two coordinate loops, the portable one sweeps
// them one after the other): leaving out the second column's last steps, or giving it the first
// column's cross sums, fails five of these cases. The surrogate update (weightedHals 'surrogate', the
// weights scaled to at most 1) takes the listed sums of cpGroupSums instead, vector and portable
// alike to 1e-10 after one iteration (every block, v twice, w and h): over three, one of these
// problems (rank 13 on 5×7 strata of 4–9 samples, most own components dead) turns rounding-level
// differences into different iterates, as any solver there would: a coordinate left at 4e-15 by one
// path and at 0 by the other gives the next blocks a curvature of 1e-29 or none.
describe('stratifiedNtf hals: the weighted sweeps (vector kernels) equal the portable loops', () => {
  for (const [update, iterations] of [['exact', 3], ['surrogate', 1]] as const)
    for (const dims of [[9], [5, 7], [3, 4, 5]])
      for (const [rank, strataRank] of [[1, 1], [3, 2], [8, 5], [13, 4], [35, 6]] as const)
        it(`${update}, ${dims.length} feature mode(s), rank ${rank}, strataRank ${strataRank}: ${iterations} iteration(s) to 1e-10`, () => {
          const F = dims.reduce((a, b) => a * b, 1);
          const samples = [6, 9, 4];
          const strata: Tensor[] = samples.map((n, s) => {
            const rand = uniform(120 + s);
            return { shape: [n, ...dims], data: Float64Array.from({ length: n * F }, () => 0.2 + rand()) };
          });
          // Stratum 0: a mask; stratum 1: weights (0 on some entries, 1 on about half, 0.2–2.2 elsewhere); stratum 2: none.
          const rand = uniform(130);
          const maskOf = Uint8Array.from({ length: samples[0]! * F }, () => (rand() < 0.15 ? 1 : 0));
          const scale = update === 'exact' ? 1 : 2.2;
          const weightsOf: Tensor = { shape: strata[1]!.shape, data: Float64Array.from(strata[1]!.data, () => (rand() < 0.15 ? 0 : rand() < 0.5 ? 1 : (0.2 + 2 * rand()) / scale)) };
          const mask = [maskOf, null, null], weights = [null, weightsOf, null];
          const options = { strataRank, solver: 'hals' as const, maxIterations: iterations, seed: 9, mask, weights, weightedHals: update };
          const runs = paths.map((path) => onPath(path, () => stratifiedNtfSync(strata, rank, options)));
          const flat = (st: { v: Matrix[][]; w: Matrix[]; h: Matrix[] }) => [...st.v.flat(), ...st.w, ...st.h].map((m) => m.data);
          const [vector, portable] = runs.map(flat);
          // (a factor that is 0 on one path must be 0 on the other: relativeError would divide by 0)
          vector!.forEach((x, k) => (portable![k]!.every((y) => y === 0) ? expect(x.every((y) => y === 0)).toBe(true) : expect(relativeError(x, portable![k]!)).toBeLessThan(1e-10)));
          for (const res of runs) {
            const direct = stratifiedNtfLoss(strata, res, { strataRank, rank, mask, weights });
            expect(Math.abs(direct - res.loss) / res.loss).toBeLessThan(1e-10);
            res.traces.loss.forEach((x, i) => i === 0 || expect(x).toBeLessThanOrEqual(res.traces.loss[i - 1]! * (1 + 1e-12)));
          }
        });
});
