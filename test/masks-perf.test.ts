// The listed entries' kernels (native/kernels/listed_kernels.cpp): the masked solves add, to the plain
// products, sums over the entries whose weight differs from 1, and those sums run through vector
// kernels (AVX + FMA, chosen at run time) or portable loops (NSA_FLOW_SIMD=0). Both must equal a
// straightforward computation of the weighted updates over all entries: one iteration from given
// factors is compared with the weighted MU and HALS updates written out here, entry by entry.
import { afterEach, describe, expect, it } from 'vitest';
import { existsSync, readFileSync } from 'node:fs';

import { nmfSync, setBlasThreads, stratifiedNmfSync, toCsr, type Matrix } from '../lib/index.js';
import { matmul, transposed } from './helpers/snmf-cases.js';
import { uniform } from './helpers/uniform.js';

setBlasThreads(1);

// Whether this CPU takes the vector kernels by default (x86-64 with AVX and FMA).
const cpuFlags = process.arch === 'x64' && existsSync('/proc/cpuinfo') ? readFileSync('/proc/cpuinfo', 'utf8') : '';
const vectorCpu = /\bavx\b/.test(cpuFlags) && /\bfma\b/.test(cpuFlags);

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

function randomMatrix(rows: number, cols: number, seed: number, low = 0.1): Matrix {
  const rand = uniform(seed);
  return { rows, cols, data: Float64Array.from({ length: rows * cols }, () => low + rand()) };
}

// 41×53: about 5 listed entries per row and 4 per column, some none, so every remainder of the
// kernels' blocks of 4 entries occurs. Ranks 1, 3, 8 and 13: factor rows of less than one 4-wide
// vector, of one partial vector, of two whole ones, and of three and a partial one.
const A = randomMatrix(41, 53, 1, 0.5);
const maskOf = (seed: number): Uint8Array => {
  const rand = uniform(seed);
  return Uint8Array.from(A.data, () => (rand() < 0.1 ? 1 : 0));
};
const mask = maskOf(2);
// General weights: 0 at the masked entries, 0.2–2.2 elsewhere, 1 on about half (those are not listed).
const weights: Matrix = (() => {
  const rand = uniform(3);
  return { ...A, data: A.data.map((_, k) => (mask[k] ? 0 : rand() < 0.5 ? 1 : 0.2 + 2 * rand())) };
})();
const omegaOf = (options: { mask?: Uint8Array; weights?: Matrix }) =>
  options.weights ? options.weights.data : Float64Array.from(mask, (x) => (x ? 0 : 1));

/** Ω∘A and Ω∘(WH) as matrices. */
function weighted(omega: Float64Array, M: Matrix): Matrix {
  return { ...M, data: M.data.map((x, k) => omega[k]! * x) };
}

/** Penalties l1·Σx + ½·l2·‖x‖² on W and on H (docs/penalties.md); none: all 0. */
interface Penalties {
  l1W: number;
  l2W: number;
  l1H: number;
  l2H: number;
}
const none: Penalties = { l1W: 0, l2W: 0, l1H: 0, l2H: 0 };

/**
 * The weighted Lee–Seung step: W ← W∘max((Ω∘A)Hᵀ, 0)/(max((Ω∘WH)Hᵀ, 0) + l1 + l2·W + ε), then H
 * with the new W (a penalty's gradient joins the denominator).
 */
function referenceMu(omega: Float64Array, W0: Matrix, H0: Matrix, eps: number, p: Penalties): { W: Matrix; H: Matrix } {
  const OA = weighted(omega, A);
  const numW = matmul(OA, transposed(H0)), denW = matmul(weighted(omega, matmul(W0, H0)), transposed(H0));
  const W = { ...W0, data: W0.data.map((w, k) => (w * Math.max(numW.data[k]!, 0)) / (Math.max(denW.data[k]!, 0) + p.l1W + p.l2W * w + eps)) };
  const numH = matmul(transposed(W), OA), denH = matmul(transposed(W), weighted(omega, matmul(W, H0)));
  const H = { ...H0, data: H0.data.map((h, k) => (h * Math.max(numH.data[k]!, 0)) / (Math.max(denH.data[k]!, 0) + p.l1H + p.l2H * h + eps)) };
  return { W, H };
}

/**
 * One weighted HALS sweep of the rows of X (n×r) against Y (m×r), weights Ω (n×m) and data B (n×m):
 * coordinate by coordinate, x_c ← max(0, x_c + g/d), g = Σⱼ ωⱼ(bⱼ − x·yⱼ)y_jc − l1 − l2·x_c,
 * d = Σⱼ ωⱼy_jc² + l2, every sum over all m entries of the row (d below 1e-12·Σⱼy_jc² leaves x_c as
 * it is, as the solver does).
 */
function halsSweep(X: Float64Array, Y: Float64Array, omega: (i: number, j: number) => number, B: (i: number, j: number) => number, n: number, m: number, r: number, l1: number, l2: number): void {
  for (let i = 0; i < n; i++)
    for (let c = 0; c < r; c++) {
      let g = 0, d = 0, plain = 0;
      for (let j = 0; j < m; j++) {
        let model = 0;
        for (let l = 0; l < r; l++) model += X[i * r + l]! * Y[j * r + l]!;
        const w = omega(i, j), y = Y[j * r + c]!;
        g += w * (B(i, j) - model) * y;
        d += w * y * y;
        plain += y * y;
      }
      if (d + l2 > 1e-12 * plain) X[i * r + c] = Math.max(0, X[i * r + c]! + (g - l1 - l2 * X[i * r + c]!) / (d + l2));
    }
}

function referenceHals(omega: Float64Array, W0: Matrix, H0: Matrix, p: Penalties): { W: Matrix; H: Matrix } {
  const n = A.rows, m = A.cols, r = W0.cols;
  const W = Float64Array.from(W0.data), Ht = Float64Array.from(transposed(H0).data);
  halsSweep(W, Ht, (i, j) => omega[i * m + j]!, (i, j) => A.data[i * m + j]!, n, m, r, p.l1W, p.l2W);
  halsSweep(Ht, W, (j, i) => omega[i * m + j]!, (j, i) => A.data[i * m + j]!, m, n, r, p.l1H, p.l2H);
  return { W: { rows: n, cols: r, data: W }, H: transposed({ rows: m, cols: r, data: Ht }) };
}

/** max |x − ref| / max |ref|: the error relative to the factor's scale. */
function relativeError(x: Float64Array, ref: Float64Array): number {
  let diff = 0, scale = 0;
  for (let k = 0; k < ref.length; k++) (diff = Math.max(diff, Math.abs(x[k]! - ref[k]!))), (scale = Math.max(scale, Math.abs(ref[k]!)));
  return diff / scale;
}

describe.each(paths)('the listed kernels (%s path) equal the weighted updates computed over all entries', (path) => {
  const penalties: Penalties = { l1W: 0.3, l2W: 0.5, l1H: 0.2, l2H: 0.7 };
  for (const [rank, p] of [[1, none], [3, none], [8, none], [13, none], [8, penalties]] as const)
    for (const [label, options] of [['mask', { mask }], ['weights', { weights }]] as const) {
      it(`mu and hals, rank ${rank}, ${label}${p === none ? '' : ', penalized'}: one iteration from given factors to 1e-12`, () => {
        const init = { W: randomMatrix(A.rows, rank, 10 + rank), H: randomMatrix(rank, A.cols, 20 + rank) };
        const omega = omegaOf(options);
        for (const solver of ['mu', 'hals'] as const) {
          const res = onPath(path, () => nmfSync(A, rank, { solver, init, maxIterations: 1, ...options, ...(p === none ? {} : p) }));
          const ref = solver === 'mu' ? referenceMu(omega, init.W, init.H, res.settings.epsilon, p) : referenceHals(omega, init.W, init.H, p);
          // Both sides round differently (blocked sums, FMA, the plain GEMM plus listed corrections
          // against direct sums over all entries); over one iteration that stays near 1e-15.
          expect(relativeError(res.W.data, ref.W.data)).toBeLessThan(1e-12);
          expect(relativeError(res.H.data, ref.H.data)).toBeLessThan(1e-12);
        }
      });
    }
});

describe('the vector and portable paths', () => {
  it.skipIf(!vectorCpu)('NSA_FLOW_SIMD=0 selects other kernels on a CPU with AVX and FMA: results differ by rounding only', () => {
    const init = { W: randomMatrix(A.rows, 13, 5), H: randomMatrix(13, A.cols, 6) };
    const [vector, portable] = paths.map((p) => onPath(p, () => nmfSync(A, 13, { solver: 'hals', init, maxIterations: 3, mask })));
    // Not bit for bit (so the switch is real), but within rounding.
    expect(vector!.W.data).not.toEqual(portable!.W.data);
    expect(relativeError(vector!.W.data, portable!.W.data)).toBeLessThan(1e-12);
  });

  it('stratifiedNmf: both paths agree to rounding after one iteration, with a mask and with weights', () => {
    const strata = [randomMatrix(17, 23, 7, 0.5), randomMatrix(11, 23, 8, 0.5), randomMatrix(13, 23, 9, 0.5)];
    const rand = uniform(4);
    const masks = strata.map((s) => Uint8Array.from(s.data, () => (rand() < 0.15 ? 1 : 0)));
    const strataWeights = strata.map((s, t) => ({ ...s, data: s.data.map((_, k) => (masks[t]![k] ? 0 : rand() < 0.5 ? 1 : 0.2 + 2 * rand())) }));
    for (const options of [{ mask: masks }, { weights: strataWeights }]) {
      const [vector, portable] = paths.map((p) => onPath(p, () => stratifiedNmfSync(strata, 5, { maxIterations: 1, seed: 3, ...options })));
      expect(relativeError(vector!.H.data, portable!.H.data)).toBeLessThan(1e-12);
      expect(relativeError(vector!.V.data, portable!.V.data)).toBeLessThan(1e-12);
      vector!.W.forEach((W, s) => expect(relativeError(W.data, portable!.W[s]!.data)).toBeLessThan(1e-12));
      expect(Math.abs(vector!.loss - portable!.loss)).toBeLessThan(1e-12 * portable!.loss);
      expect(Math.abs(vector!.certificate - portable!.certificate)).toBeLessThan(1e-9 * Math.max(portable!.certificate, 1e-12));
    }
  });
});

// stratifiedNmf's HALS sweeps its weighted W(s) rows and H columns with listed::Kernels::halsSweeps:
// a row's listed rows gathered once, then several sweeps of its free coordinates, each later sweep
// reading the curvatures the first took, until one lowers the row objective by at most 1e-4 of what
// the first did, at most 1 + side/(2(r + 2k)) sweeps (side: m for a W row, N for an H column;
// k its listed entries in strata of base weight 1). Here that allows 2–10 sweeps per row, so a sweep or
// a coordinate left out moves the factors by far more than rounding (checked by breaking the kernels
// so: one sweep less per row gave errors of 0.15–0.25, the last free coordinate left out 0.49–0.94),
// while both kernels agree with the updates written out over all entries to 2e-16–1.9e-14 (the
// blocked sums, FMA and the plain products plus listed corrections against direct sums).
describe.each(paths)('stratifiedNmf HALS: the weighted sweeps (%s path) equal the updates computed over all entries', (path) => {
  interface Case {
    strata: Matrix[];
    omega: Float64Array[]; // ω per entry, per stratum
    listed: (s: number, i: number, j: number) => boolean; // whether the solver lists the entry
    weightedStratum: boolean[];
    base: number[];
    options: Record<string, unknown>;
    ranks: number[];
  }
  const m = 200;
  const rows = [30, 24, 36];
  const strata = rows.map((n, s) => randomMatrix(n, m, 30 + s, 0.5));
  const draw = (seed: number, p: number) => rows.map((n) => { const rand = uniform(seed + n); return Uint8Array.from({ length: n * m }, () => (rand() < p ? 1 : 0)); });
  const holes = draw(40, 0.05);
  const r = 5;
  const omegaOfMask = (masks: (Uint8Array | null)[]) => masks.map((mk, s) => Float64Array.from({ length: rows[s]! * m }, (_, e) => (mk && mk[e] ? 0 : 1)));
  const maskCase = (masks: (Uint8Array | null)[], options: Record<string, unknown>, ranks: number[]): Case => ({
    strata,
    omega: omegaOfMask(masks),
    listed: (s, i, j) => masks[s] !== null && masks[s]![i * m + j] === 1,
    weightedStratum: masks.map((mk) => mk !== null),
    base: rows.map(() => 1),
    options: { mask: masks, ...options },
    ranks,
  });
  const generalWeights = rows.map((n, s) => { const rand = uniform(60 + s); return Float64Array.from({ length: n * m }, (_, e) => (holes[s]![e] ? 0 : rand() < 0.1 ? 0.2 + 2 * rand() : 1)); });
  const sparse = strata.map((a, s) => { const rand = uniform(70 + s); return { ...a, data: a.data.map((x) => (rand() < 0.1 ? x : 0)) }; });
  const cases: [string, Case][] = [
    ['a mask (one stratum without)', maskCase([holes[0]!, null, holes[2]!], {}, [r, r, r])],
    ['a mask, penalties and per-stratum ranks', maskCase(holes, { l1W: 0.3, l2W: 0.5, l1H: 0.2, l2H: 0.7, l1V: 0.1, l2V: 0.2 }, [5, 3, 4])],
    ['general weights', { strata, omega: generalWeights, listed: (s, i, j) => generalWeights[s]![i * m + j] !== 1, weightedStratum: rows.map(() => true), base: rows.map(() => 1), options: { weights: generalWeights.map((w, s) => ({ rows: rows[s]!, cols: m, data: w })) }, ranks: [r, r, r] }],
    ['CSR strata whose absent entries are missing', { strata: sparse, omega: sparse.map((a) => a.data.map((x) => (x !== 0 ? 1 : 0))), listed: (s, i, j) => sparse[s]!.data[i * m + j] !== 0, weightedStratum: rows.map(() => true), base: rows.map(() => 0), options: { missing: 'absent' }, ranks: [r, r, r] }],
  ];

  /** Coordinate sweeps of one row x (length r, the first rs free) of ½Σⱼωⱼ(tⱼ − x·yⱼ)² + l1Σx + ½l2‖x‖², every sum over all entries (stratifiedNmf's rule: a curvature ≤ 1e-10·Σ_{b=1}y_c² is none). */
  function sweepRowDirect(x: Float64Array, ys: Float64Array[], w: number[], t: number[], plain: boolean[], rs: number, l1: number, l2: number, maxSweeps: number): void {
    let first = 0;
    for (let sweep = 0; sweep < maxSweeps; sweep++) {
      let decrease = 0;
      for (let c = 0; c < rs; c++) {
        let g = 0, d = l2, G = 0;
        ys.forEach((y, q) => {
          let model = 0;
          for (let l = 0; l < x.length; l++) model += x[l]! * y[l]!;
          g += w[q]! * (t[q]! - model) * y[c]!;
          d += w[q]! * y[c]! * y[c]!;
          if (plain[q]) G += y[c]! * y[c]!;
        });
        g -= l1 + l2 * x[c]!;
        let next = x[c]!;
        if (d > 0 && d > 1e-10 * G) next = Math.max(0, x[c]! + g / d);
        else if (l1 > 0 && g < 0) next = 0;
        decrease += Math.max(d, 0) * (next - x[c]!) ** 2;
        x[c] = next;
      }
      if (sweep === 0) first = decrease;
      if (decrease <= 1e-4 * first) break;
    }
  }
  // k: the row's listed entries of base weight 1 (a CSR stratum's, base weight 0, are not counted).
  const sweepsOf = (side: number, k: number) => Math.min(10, 1 + Math.floor(side / (2 * (r + 2 * k))));

  for (const [label, c] of cases)
    it(`${label}: one iteration from given factors to 1e-12`, () => {
      const S = rows.length, N = rows.reduce((a, b) => a + b, 0);
      const num = (o: string) => (c.options[o] as number | undefined) ?? 0;
      const init = {
        V: randomMatrix(S, m, 80, 0.2),
        W: rows.map((n, s) => randomMatrix(n, c.ranks[s]!, 81 + s)),
        H: randomMatrix(r, m, 85),
      };
      const strataIn = label.startsWith('CSR') ? c.strata.map(toCsr) : c.strata;
      const res = onPath(path, () => stratifiedNmfSync(strataIn, c.ranks.every((x) => x === r) ? r : c.ranks, { init, maxIterations: 1, ...c.options }));
      // The reference: v(s), then every W(s) row, then every H column, each by its exact steps.
      const V = Float64Array.from(init.V.data);
      const W = rows.map((n, s) => { const out = new Float64Array(n * r); for (let i = 0; i < n; i++) for (let l = 0; l < c.ranks[s]!; l++) out[i * r + l] = init.W[s]!.data[i * c.ranks[s]! + l]!; return out; });
      const Ht = transposed(init.H).data;
      const a = (s: number, i: number, j: number) => c.strata[s]!.data[i * m + j]!;
      const omega = (s: number, i: number, j: number) => c.omega[s]![i * m + j]!;
      const dot = (x: Float64Array, o: number, y: Float64Array, p: number) => { let z = 0; for (let l = 0; l < r; l++) z += x[o + l]! * y[p + l]!; return z; };
      for (let s = 0; s < S; s++)
        for (let j = 0; j < m; j++) {
          let weight = num('l2V'), sum = -num('l1V');
          for (let i = 0; i < rows[s]!; i++) (weight += omega(s, i, j)), (sum += omega(s, i, j) * (a(s, i, j) - dot(W[s]!, i * r, Ht, j * r)));
          // (A column without observed entries keeps its v_j, any value being optimal, unless l1 > 0.)
          if (weight > 0) V[s * m + j] = Math.max(0, sum / weight);
          else if (num('l1V') > 0) V[s * m + j] = 0;
        }
      const ys = (count: number, of: (q: number) => Float64Array) => Array.from({ length: count }, (_, q) => of(q));
      for (let s = 0; s < S; s++)
        for (let i = 0; i < rows[s]!; i++) {
          const x = W[s]!.subarray(i * r, (i + 1) * r);
          let k = 0;
          for (let j = 0; j < m; j++) if (c.listed(s, i, j)) k++;
          sweepRowDirect(x, ys(m, (j) => Ht.subarray(j * r, (j + 1) * r)), Array.from({ length: m }, (_, j) => omega(s, i, j)), Array.from({ length: m }, (_, j) => a(s, i, j) - V[s * m + j]!), Array.from({ length: m }, () => c.base[s] === 1), c.ranks[s]!, num('l1W'), num('l2W'), sweepsOf(m, c.base[s]! * k));
        }
      const at = rows.flatMap((n, s) => Array.from({ length: n }, (_, i) => [s, i] as const));
      for (let j = 0; j < m; j++) {
        let k = 0;
        for (const [s, i] of at) if (c.weightedStratum[s] && c.base[s] === 1 && c.listed(s, i, j)) k++;
        sweepRowDirect(Ht.subarray(j * r, (j + 1) * r), at.map(([s, i]) => W[s]!.subarray(i * r, (i + 1) * r)), at.map(([s, i]) => omega(s, i, j)), at.map(([s, i]) => a(s, i, j) - V[s * m + j]!), at.map(([s]) => c.base[s] === 1), r, num('l1H'), num('l2H'), sweepsOf(N, k));
      }
      expect(relativeError(res.V.data, V)).toBeLessThan(1e-12);
      res.W.forEach((w, s) => {
        const ref = Float64Array.from({ length: rows[s]! * c.ranks[s]! }, (_, e) => W[s]![Math.floor(e / c.ranks[s]!) * r + (e % c.ranks[s]!)]!);
        expect(relativeError(w.data, ref)).toBeLessThan(1e-12);
      });
      expect(relativeError(res.H.data, transposed({ rows: m, cols: r, data: Ht }).data)).toBeLessThan(1e-12);
    });
});
