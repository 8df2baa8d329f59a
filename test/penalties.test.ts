// L1/L2 penalties of nmf and stratifiedNmf (docs/penalties.md). The objective is
//   f = ½Σω(a − m)² (KL: the divergence) + l1W·ΣW + ½·l2W·‖W‖² + l1H·ΣH + ½·l2H·‖H‖² (+ V's),
// and the tests check it independently of the addon: the reported objective is f at the returned
// factors, the certificate is the gradient mapping of f's gradient (checked by central differences),
// f never increases along the iterations (MU, HALS, KL, weighted, stratified), the solve reaches a KKT
// point of f (not of the unpenalized loss), L1 gives zeros, L2 shrinks, and all weights 0 change nothing.
import { describe, expect, it } from 'vitest';

import { nmf, nmfSync, selectRows, setBlasThreads, stratifiedNmf, stratifiedNmfSync, type Matrix, type NmfResult } from '../lib/index.js';
import { native } from '../lib/native.js';
import { gradientMapping, largestIncrease, matmul, transposed } from './helpers/snmf-cases.js';
import { readCorpus, readNpy } from './helpers/snmf-corpus.js';
import { dataFile } from './helpers/shared.js';
import { thrown } from './helpers/thrown.js';
import { uniform } from './helpers/uniform.js';

setBlasThreads(1);

// ALL leukemia (RMA log2, positive): 40 patients × the first 60 of the 1000 most variable probes.
const leukemia: Matrix = (() => {
  const t = readNpy(dataFile('leukemia_all/ALL_expr_top1000var.npy'));
  const n = 40, m = 60;
  const data = new Float64Array(n * m);
  for (let i = 0; i < n; i++) data.set(t.data.subarray(i * t.cols, i * t.cols + m), i * m);
  return { rows: n, cols: m, data };
})();
// Austen TF-IDF (CSR, unit rows): every third chapter, 90 documents × 8984 terms.
const austen = readCorpus('austen');
const austenRows = selectRows(austen.tfidf, Int32Array.from({ length: 90 }, (_, i) => 3 * i));
const austenNovels = austen.strata.filter((_, i) => i % 3 === 0 && i < 270);
// Entry weights with zeros (missing), 2s and 1s, by a seeded generator.
const omega = (() => {
  const rand = uniform(11);
  return Float64Array.from({ length: leukemia.data.length }, () => {
    const u = rand();
    return u < 0.1 ? 0 : u < 0.2 ? 2 : 1;
  });
})();
const ones = new Float64Array(leukemia.data.length).fill(1);

interface Weights {
  l1W: number;
  l2W: number;
  l1H: number;
  l2H: number;
}
const sum = (x: ArrayLike<number>) => Array.prototype.reduce.call(x, (a: number, v: number) => a + v, 0) as number;
const squares = (x: ArrayLike<number>) => Array.prototype.reduce.call(x, (a: number, v: number) => a + v * v, 0) as number;
const penaltyOf = (X: ArrayLike<number>, l1: number, l2: number) => l1 * sum(X) + 0.5 * l2 * squares(X);
const zeros = (x: ArrayLike<number>) => Array.prototype.filter.call(x, (v: number) => v === 0).length / x.length;
const fro = (x: ArrayLike<number>) => Math.sqrt(squares(x));

/**
 * The penalized objective of nmf and its gradient, evaluated here: Frobenius ½Σω(a − wh)² or KL
 * Σ a·log(a/wh) − a + wh, plus the penalties; the normalizer is Σωa² (KL: Σa).
 */
function penalizedNmf(A: Matrix, w: Float64Array, W: Matrix, H: Matrix, p: Weights, kl = false) {
  const WH = matmul(W, H);
  const R = new Float64Array(A.data.length); // ∂(data term)/∂(wh)
  let data = 0, normalizer = 0;
  for (let k = 0; k < R.length; k++) {
    const a = A.data[k]!, m = WH.data[k]!;
    if (kl) {
      data += m - a + (a > 0 ? a * Math.log(a / m) : 0);
      R[k] = 1 - a / m;
      normalizer += a;
    } else {
      data += 0.5 * w[k]! * (a - m) ** 2;
      R[k] = w[k]! * (m - a);
      normalizer += w[k]! * a * a;
    }
  }
  const Rm = { rows: A.rows, cols: A.cols, data: R };
  const gW = matmul(Rm, transposed(H)).data.map((g, i) => g + p.l1W + p.l2W * W.data[i]!);
  const gH = matmul(transposed(W), Rm).data.map((g, i) => g + p.l1H + p.l2H * H.data[i]!);
  const objective = data + penaltyOf(W.data, p.l1W, p.l2W) + penaltyOf(H.data, p.l1H, p.l2H);
  const certificate = Math.max(gradientMapping(W.data, gW.map((g) => g / normalizer)), gradientMapping(H.data, gH.map((g) => g / normalizer)));
  return { objective, gW, gH, certificate, normalizer };
}

const factors = (r: NmfResult) => ({ W: r.W, H: r.H });

describe('nmf: the penalized objective, its gradient and certificate', () => {
  const p: Weights = { l1W: 2, l2W: 1, l1H: 5, l2H: 3 };

  it('the central difference of f along a random direction matches the gradient used by the certificate (1e-6 relative)', () => {
    // At a non-converged point (10 HALS iterations), so the gradient is far from 0.
    const r = nmfSync(leukemia, 4, { maxIterations: 10, seed: 1, ...p });
    const rand = uniform(5);
    const DW = Float64Array.from(r.W.data, () => rand() - 0.5);
    const DH = Float64Array.from(r.H.data, () => rand() - 0.5);
    const at = (t: number) =>
      penalizedNmf(
        leukemia,
        ones,
        { ...r.W, data: r.W.data.map((x, i) => x + t * DW[i]!) },
        { ...r.H, data: r.H.data.map((x, i) => x + t * DH[i]!) },
        p,
      ).objective;
    const h = 1e-5;
    const difference = (at(h) - at(-h)) / (2 * h);
    const g = penalizedNmf(leukemia, ones, r.W, r.H, p);
    let directional = 0;
    g.gW.forEach((x, i) => (directional += x * DW[i]!));
    g.gH.forEach((x, i) => (directional += x * DH[i]!));
    expect(Math.abs(difference - directional) / Math.abs(directional)).toBeLessThan(1e-6);
    // The reported objective and certificate are those of f.
    expect(Math.abs(r.objective! - g.objective) / g.objective).toBeLessThan(1e-10);
    expect(Math.abs(r.certificate - g.certificate) / g.certificate).toBeLessThan(1e-8);
  });

  it.each([
    ['hals', 'frobenius', ones],
    ['mu', 'frobenius', ones],
    ['hals', 'frobenius', omega],
    ['mu', 'frobenius', omega],
    ['mu', 'kl', ones],
  ] as const)('%s, %s loss (weights %#): objective and certificate are f and its gradient mapping', (solver, loss, w) => {
    const weights = w === omega ? { weights: { rows: leukemia.rows, cols: leukemia.cols, data: omega } } : {};
    const r = nmfSync(leukemia, 4, { solver, loss, maxIterations: 30, seed: 2, ...p, ...weights });
    const g = penalizedNmf(leukemia, w, r.W, r.H, p, loss === 'kl');
    expect(Math.abs(r.objective! - g.objective) / g.objective).toBeLessThan(1e-9);
    expect(Math.abs(r.certificate - g.certificate) / g.certificate).toBeLessThan(1e-7);
    expect(r.traces.objective!.at(-1)).toBe(r.objective);
  });

  it('HALS converges to a KKT point of the penalized objective, which is not one of the unpenalized loss', () => {
    const w = { weights: { rows: leukemia.rows, cols: leukemia.cols, data: omega } };
    for (const options of [{}, w]) {
      const r = nmfSync(leukemia, 4, { maxIterations: 20_000, certificateTolerance: 1e-9, seed: 3, ...p, ...options });
      expect(r.stopReason).toBe('gradMap');
      const W = 'weights' in options ? omega : ones;
      const g = penalizedNmf(leukemia, W, r.W, r.H, p);
      expect(g.certificate).toBeLessThanOrEqual(1e-9);
      // KKT, entry by entry: ∇ = 0 where the factor is positive, ∇ ≥ 0 where it is 0 (scale: ‖∇‖).
      const scale = Math.max(fro(g.gW), fro(g.gH));
      r.W.data.forEach((x, i) => expect(x > 0 ? Math.abs(g.gW[i]!) : -g.gW[i]!).toBeLessThan(1e-6 * scale + 1e-9));
      r.H.data.forEach((x, i) => expect(x > 0 ? Math.abs(g.gH[i]!) : -g.gH[i]!).toBeLessThan(1e-6 * scale + 1e-9));
      // The same point is far from stationary for the loss alone: the penalty gradient is not negligible.
      const unpenalized = penalizedNmf(leukemia, W, r.W, r.H, { l1W: 0, l2W: 0, l1H: 0, l2H: 0 });
      expect(unpenalized.certificate).toBeGreaterThan(1e-4);
    }
  });
});

describe('nmf: the penalized objective never increases (real data)', () => {
  it.each([
    ['mu', 'Austen TF-IDF (CSR)', { l1H: 0.002, l2W: 0.05 }],
    ['hals', 'Austen TF-IDF (CSR)', { l1H: 0.002, l2W: 0.05 }],
    ['mu', 'Austen, absent entries missing', { l1W: 0.001, l2H: 0.01, missing: 'absent' as const }],
    ['hals', 'Austen, absent entries missing', { l1W: 0.001, l2H: 0.01, missing: 'absent' as const }],
  ] as const)('%s on %s', async (solver, _, options) => {
    const r = await nmf(austenRows, 6, { solver, maxIterations: 60, seed: 4, ...options });
    // Up to rounding of its evaluation (1e-12 relative), and it does descend.
    expect(largestIncrease(r.traces.objective!)).toBeLessThanOrEqual(1e-12);
    expect(r.traces.objective!.at(-1)!).toBeLessThan(r.traces.objective![0]! * 0.9);
    expect(r.traces.objective!.length).toBe(r.traces.loss.length);
  });

  it('mu with the KL loss on the leukemia slice, and weighted MU and HALS on it', () => {
    const kl = nmfSync(leukemia, 4, { solver: 'mu', loss: 'kl', maxIterations: 80, seed: 5, l1W: 0.5, l2W: 0.2, l1H: 1, l2H: 0.5 });
    expect(largestIncrease(kl.traces.objective!)).toBeLessThanOrEqual(1e-12);
    for (const solver of ['mu', 'hals'] as const) {
      const r = nmfSync(leukemia, 4, { solver, maxIterations: 80, seed: 5, l1W: 2, l2H: 3, weights: { rows: leukemia.rows, cols: leukemia.cols, data: omega } });
      expect(largestIncrease(r.traces.objective!)).toBeLessThanOrEqual(1e-12);
    }
  });

  it('progress records carry the objective; the tolerance rule reads it', async () => {
    const seen: number[] = [];
    const r = await nmf(austenRows, 6, { maxIterations: 500, tolerance: 1e-4, seed: 4, l1H: 0.002, onProgress: (q) => seen.push(q.objective!), progressIntervalMs: 0 });
    expect(seen.length).toBeGreaterThan(0);
    for (const x of seen) expect(Number.isFinite(x)).toBe(true);
    expect(r.stopReason).toBe('plateau');
    const t = r.traces.objective!;
    const last = t.length - 2; // the entry that met the rule (the last one is the final evaluation)
    expect(Math.abs(t[last]! - t[last - 1]!)).toBeLessThanOrEqual(1e-4 * t[last - 1]!);
  });
});

describe('nmf: what the penalties do', () => {
  it('a larger l1H gives more zeros in H (HALS, Austen, rank 6, l2W 0.1 fixing the scale)', () => {
    // An L1 penalty on H alone could be escaped by scaling H down and W up; l2W fixes the scale.
    // Measured: zeros in H 0.512, 0.604, 0.903 for l1H 0, 0.003, 0.03.
    const fractions = [0, 0.003, 0.03].map((l1H) => zeros(nmfSync(austenRows, 6, { maxIterations: 100, seed: 4, l1H, l2W: 0.1 }).H.data));
    expect(fractions[1]!).toBeGreaterThan(fractions[0]! + 0.05);
    expect(fractions[2]!).toBeGreaterThan(fractions[1]! + 0.2);
  });

  it('a larger l2W shrinks ‖W‖ (MU and HALS)', () => {
    // Measured ‖W‖ for l2W 0, 0.05, 0.5: MU 1.647, 1.217, 0.543; HALS 0.429, 0.418, 0.345. (HALS fits
    // H first on these wide rows (nmf.cpp) and lands at a lower penalized objective, 27.8138 against
    // 27.8424 fitting W first, with W already small: l2W 0.5 shrinks it by 0.83 there, MU's by 0.45.)
    for (const [solver, shrink] of [['mu', 0.6], ['hals', 0.9]] as const) {
      const norms = [0, 0.05, 0.5].map((l2W) => fro(nmfSync(austenRows, 6, { solver, maxIterations: 100, seed: 4, l2W }).W.data));
      expect(norms[1]!).toBeLessThan(norms[0]!);
      expect(norms[2]!).toBeLessThan(shrink * norms[1]!);
    }
  });

  it('all weights 0 is the unpenalized solve bit for bit (mu, hals, KL, weighted, CSR) with no objective reported', () => {
    const zero = { l1W: 0, l2W: 0, l1H: 0, l2H: 0 };
    const cases = [
      [leukemia, { solver: 'hals' }],
      [leukemia, { solver: 'mu' }],
      [leukemia, { solver: 'mu', loss: 'kl' }],
      [leukemia, { solver: 'hals', weights: { rows: leukemia.rows, cols: leukemia.cols, data: omega } }],
      [austenRows, { solver: 'mu', missing: 'absent' }],
      [austenRows, { solver: 'hals' }],
    ] as const;
    for (const [A, options] of cases) {
      const a = nmfSync(A, 4, { maxIterations: 20, seed: 6, ...options });
      const b = nmfSync(A, 4, { maxIterations: 20, seed: 6, ...options, ...zero });
      expect(b.W.data).toEqual(a.W.data);
      expect(b.H.data).toEqual(a.H.data);
      expect(b.traces.loss).toEqual(a.traces.loss);
      expect(Object.is(b.certificate, a.certificate)).toBe(true);
      expect(b.objective).toBeUndefined();
      expect(b.traces.objective).toBeUndefined();
      expect(Object.keys(b.settings)).not.toContain('l1W'); // the defaults: reported only when a penalty is on
    }
  });

  it('restarts rank penalized runs by their objective, not the loss', () => {
    const options = { solver: 'mu' as const, maxIterations: 20, seed: 10, l1W: 2, l2H: 3 };
    const best = nmfSync(leukemia, 3, { ...options, restarts: 3 });
    const runs = [10, 11, 12].map((seed) => nmfSync(leukemia, 3, { ...options, seed }));
    expect(Array.from(best.restarts!.losses)).toEqual(runs.map((r) => r.objective));
    const smallest = runs.reduce((b, r, i) => (r.objective! < runs[b]!.objective! ? i : b), 0);
    expect(best.restarts!.best).toBe(smallest);
    expect(best.W.data).toEqual(runs[smallest]!.W.data);
  });

  it('settings repeat a penalized run bit for bit', () => {
    const a = nmfSync(leukemia, 3, { maxIterations: 15, seed: 2, l1W: 1, l2H: 0.5 });
    const { rank, ...options } = JSON.parse(JSON.stringify(a.settings));
    const b = nmfSync(leukemia, rank, options);
    expect(b.W.data).toEqual(a.W.data);
    expect(b.objective).toBe(a.objective);
  });
});

/** Stratified-NMF's penalized objective and its gradient, on dense strata. */
function penalizedStratified(A: Matrix[], V: Matrix, W: Matrix[], H: Matrix, p: Weights & { l1V: number; l2V: number }, w: (Float64Array | null)[] = []) {
  const m = H.cols;
  let data = 0, normalizer = 0;
  const gV = new Float64Array(V.data.length);
  const gH = new Float64Array(H.data.length);
  const gW: Float64Array[] = [];
  A.forEach((a, s) => {
    // Per-stratum ranks: stratum s uses the first rₛ = W(s).cols rows of H.
    const Hs = { rows: W[s]!.cols, cols: m, data: H.data.subarray(0, W[s]!.cols * m) };
    const WH = matmul(W[s]!, Hs);
    const R = new Float64Array(a.data.length);
    for (let i = 0; i < a.rows; i++)
      for (let j = 0; j < m; j++) {
        const k = i * m + j;
        const weight = w[s]?.[k] ?? 1;
        const residual = V.data[s * m + j]! + WH.data[k]! - a.data[k]!;
        R[k] = weight * residual;
        data += 0.5 * weight * residual ** 2;
        normalizer += weight * a.data[k]! ** 2;
        gV[s * m + j] += R[k]!;
      }
    const Rm = { rows: a.rows, cols: m, data: R };
    gW.push(matmul(Rm, transposed(Hs)).data.map((g, i) => g + p.l1W + p.l2W * W[s]!.data[i]!));
    matmul(transposed(W[s]!), Rm).data.forEach((g, i) => (gH[i] += g));
  });
  gV.forEach((g, i) => (gV[i] = g + p.l1V + p.l2V * V.data[i]!));
  gH.forEach((g, i) => (gH[i] = g + p.l1H + p.l2H * H.data[i]!));
  const objective =
    data + penaltyOf(V.data, p.l1V, p.l2V) + W.reduce((acc, w) => acc + penaltyOf(w.data, p.l1W, p.l2W), 0) + penaltyOf(H.data, p.l1H, p.l2H);
  const gm = (X: Matrix, G: Float64Array) => gradientMapping(X.data, G.map((g) => g / normalizer));
  const certificate = Math.max(gm(V, gV), gm(H, gH), ...W.map((w, s) => gm(w, gW[s]!)));
  return { objective, certificate };
}

describe('stratifiedNmf: penalties on V, W and H', () => {
  // The leukemia slice in two strata (rows 0–14 and 15–39).
  const strata: Matrix[] = [
    { rows: 15, cols: leukemia.cols, data: leukemia.data.slice(0, 15 * leukemia.cols) },
    { rows: 25, cols: leukemia.cols, data: leukemia.data.slice(15 * leukemia.cols) },
  ];
  const p = { l1V: 1, l2V: 0.5, l1W: 2, l2W: 1, l1H: 5, l2H: 3 };

  it('objective and certificate are those of the penalized objective (also with weights on one stratum)', () => {
    const r = stratifiedNmfSync(strata, 3, { maxIterations: 40, seed: 1, ...p });
    const g = penalizedStratified(strata, r.V, r.W, r.H, p);
    expect(Math.abs(r.objective! - g.objective) / g.objective).toBeLessThan(1e-9);
    expect(Math.abs(r.certificate - g.certificate) / g.certificate).toBeLessThan(1e-7);
    const first = omega.slice(0, 15 * leukemia.cols);
    const weighted = stratifiedNmfSync(strata, 3, { maxIterations: 40, seed: 1, ...p, weights: [{ rows: 15, cols: leukemia.cols, data: first }, null] });
    const gw = penalizedStratified(strata, weighted.V, weighted.W, weighted.H, p, [first, null]);
    expect(Math.abs(weighted.objective! - gw.objective) / gw.objective).toBeLessThan(1e-9);
    expect(Math.abs(weighted.certificate - gw.certificate) / gw.certificate).toBeLessThan(1e-7);
    expect(largestIncrease(weighted.traces.objective!)).toBeLessThanOrEqual(1e-12);
  });

  it('with per-stratum ranks [2, 3]: objective and certificate of the penalized objective, objective non-increasing', () => {
    const r = stratifiedNmfSync(strata, [2, 3], { maxIterations: 40, seed: 4, ...p });
    expect(r.W.map((w) => w.cols)).toEqual([2, 3]);
    const g = penalizedStratified(strata, r.V, r.W, r.H, p);
    expect(Math.abs(r.objective! - g.objective) / g.objective).toBeLessThan(1e-9);
    expect(Math.abs(r.certificate - g.certificate) / g.certificate).toBeLessThan(1e-7);
    expect(largestIncrease(r.traces.objective!)).toBeLessThanOrEqual(1e-12);
  });

  it('the penalized objective never increases (Austen by novel, CSR) and l1H gives zeros', async () => {
    const a = await stratifiedNmf.fromLabels(austenRows, austenNovels, 5, { maxIterations: 60, seed: 2, l1H: 0.002, l2W: 0.05, l1V: 0.001 });
    expect(largestIncrease(a.traces.objective!)).toBeLessThanOrEqual(1e-12);
    expect(a.traces.objective!.at(-1)!).toBeLessThan(a.traces.objective![0]! * 0.9);
    // MU never reaches exact zeros: count entries below 1e-6 of the largest. Measured: 0.890 of H
    // penalized, 0.683 unpenalized.
    const small = (x: Float64Array) => { const top = Math.max(...x); return x.filter((v) => v < 1e-6 * top).length / x.length; };
    const plain = await stratifiedNmf.fromLabels(austenRows, austenNovels, 5, { maxIterations: 60, seed: 2 });
    expect(small(a.H.data)).toBeGreaterThan(small(plain.H.data) + 0.1);
  });

  it('all weights 0 is the unpenalized solve bit for bit', () => {
    const zero = { l1V: 0, l2V: 0, l1W: 0, l2W: 0, l1H: 0, l2H: 0 };
    const a = stratifiedNmfSync(strata, 3, { maxIterations: 20, seed: 3 });
    const b = stratifiedNmfSync(strata, 3, { maxIterations: 20, seed: 3, ...zero });
    expect(b.V.data).toEqual(a.V.data);
    b.W.forEach((w, s) => expect(w.data).toEqual(a.W[s]!.data));
    expect(b.H.data).toEqual(a.H.data);
    expect(b.traces.loss).toEqual(a.traces.loss);
    expect(b.objective).toBeUndefined();
  });
});

describe('penalty options: checked before native work, and again by the addon', () => {
  it('a negative, non-finite or non-number weight is refused naming the option', () => {
    for (const [value, cls] of [[-1, RangeError], [Infinity, RangeError], [NaN, TypeError], ['0.1', TypeError]] as const) {
      for (const key of ['l1W', 'l2W', 'l1H', 'l2H']) {
        const e = thrown(() => nmfSync(leukemia, 2, { [key]: value }));
        expect(e).toBeInstanceOf(cls);
        expect(e.message).toMatch(new RegExp(`options\\.${key}`));
      }
      const s = thrown(() => stratifiedNmfSync([leukemia], 2, { l2V: value as number }));
      expect(s).toBeInstanceOf(cls);
      expect(s.message).toMatch(/options\.l2V/);
    }
    expect(thrown(() => nmfSync(leukemia, 2, { l1v: 1 } as object)).message).toMatch(/l1V|l1W/); // did you mean
    expect(thrown(() => nmfSync(leukemia, 2, { l1V: 1 } as object)).message).toMatch(/Unknown option/); // V is Stratified-NMF's
  });

  it('the addon refuses a bad weight on a direct call (RangeError naming it)', () => {
    const raw = { solver: 'hals', loss: 'frobenius', maxIterations: 2, tolerance: 0, lossEvery: 1, init: 'random' as const, seed: 0 };
    const e = thrown(() => native().nmf(leukemia, 2, { ...raw, l2H: -0.5 } as never));
    expect(e).toBeInstanceOf(RangeError);
    expect(e.message).toMatch(/l2H/);
    const s = thrown(() => native().stratifiedNmf([leukemia], leukemia.cols, 2, { ...raw, vScaling: 2, l1V: Infinity } as never));
    expect(s).toBeInstanceOf(RangeError);
    expect(s.message).toMatch(/l1V/);
  });
});
