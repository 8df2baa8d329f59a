import { describe, expect, it } from 'vitest';

import { AbortError, nmf, nmfSync, setBlasThreads, toCsr, type Matrix } from '../lib/index.js';
import { DEFAULT_INNER_SWEEPS } from '../lib/factorization/nmf.js';
import { gradientMapping, largestIncrease, matmul, toDense, transposed } from './helpers/snmf-cases.js';
import { readCorpus, readNpy } from './helpers/snmf-corpus.js';
import { dataFile, relativeError } from './helpers/shared.js';

setBlasThreads(1);

/** Asserts both the error class and the message. */
function throws(fn: () => unknown, cls: new (...args: any[]) => Error, message: RegExp): void {
  let error: unknown;
  try {
    fn();
  } catch (e) {
    error = e;
  }
  expect(error).toBeInstanceOf(cls);
  expect((error as Error).message).toMatch(message);
}


// 189 tissue samples × 500 genes, log2 expression (positive): a small real dense matrix.
const tissue = readNpy(dataFile('tissue/tissue_expr.npy'));

/** ‖min(X, ∇X f)‖ over W and H relative to ‖(AHᵀ, WᵀA)‖: the projected-gradient KKT residual of ½‖A − WH‖². */
function kktResidual(A: Matrix, W: Matrix, H: Matrix): number {
  const Ht = transposed(H);
  const Wt = transposed(W);
  const AHt = matmul(A, Ht);
  const WtA = matmul(Wt, A);
  const gW = matmul(W, matmul(H, Ht));
  const gH = matmul(matmul(Wt, W), H);
  let s = 0;
  let scale = 0;
  gW.data.forEach((g, i) => {
    const p = Math.min(W.data[i]!, g - AHt.data[i]!);
    s += p * p;
    scale += AHt.data[i]! ** 2;
  });
  gH.data.forEach((g, i) => {
    const p = Math.min(H.data[i]!, g - WtA.data[i]!);
    s += p * p;
    scale += WtA.data[i]! ** 2;
  });
  return Math.sqrt(s / scale);
}

function directFrobenius(A: Matrix, W: Matrix, H: Matrix): number {
  const WH = matmul(W, H);
  return Math.sqrt(A.data.reduce((acc, a, i) => acc + (a - WH.data[i]!) ** 2, 0));
}

function directKl(A: Matrix, W: Matrix, H: Matrix): number {
  const WH = matmul(W, H);
  return A.data.reduce((acc, a, i) => acc + (a > 0 ? a * Math.log(a / WH.data[i]!) : 0) - a + WH.data[i]!, 0);
}

/** The certificate of (W, H) for ½‖A − WH‖²/‖A‖²: ∇W = (WHHᵀ − AHᵀ)/‖A‖², ∇H = (WᵀWH − WᵀA)/‖A‖². */
function frobeniusCertificate(A: Matrix, W: Matrix, H: Matrix): number {
  const normA2 = A.data.reduce((acc, a) => acc + a * a, 0);
  const Ht = transposed(H);
  const Wt = transposed(W);
  const AHt = matmul(A, Ht);
  const gW = matmul(W, matmul(H, Ht)).data.map((g, i) => (g - AHt.data[i]!) / normA2);
  const WtA = matmul(Wt, A);
  const gH = matmul(matmul(Wt, W), H).data.map((g, i) => (g - WtA.data[i]!) / normA2);
  return Math.max(gradientMapping(W.data, gW), gradientMapping(H.data, gH));
}

describe('nmf: solvers on real data', () => {
  it('the loss never increases for mu, hals and mu-KL (tissue, dense)', () => {
    for (const options of [{ solver: 'mu' }, { solver: 'hals' }, { solver: 'mu', loss: 'kl' }] as const) {
      const r = nmfSync(tissue, 7, { ...options, maxIterations: 80, seed: 1 });
      // Lee–Seung / HALS monotonicity, with 1e-12 relative slack for rounding.
      expect(largestIncrease(r.traces.loss)).toBeLessThanOrEqual(1e-12);
      expect(r.loss).toBeLessThan(r.traces.loss[0]!);
    }
  });

  it('HALS reaches a lower error than MU in the same number of iterations (tissue dense, austen CSR)', () => {
    // One update per factor and iteration each (innerSweeps 1, the classic rules).
    const a = nmfSync(tissue, 7, { solver: 'hals', innerSweeps: 1, maxIterations: 100, seed: 1 });
    const b = nmfSync(tissue, 7, { solver: 'mu', innerSweeps: 1, maxIterations: 100, seed: 1 });
    // Measured: 0.0493 (HALS) vs 0.0711 (MU) after 100 iterations from the same init.
    expect(a.normalizedLoss).toBeLessThan(b.normalizedLoss * 0.8);
    const { tfidf } = readCorpus('austen');
    const c = nmfSync(tfidf, 6, { solver: 'hals', innerSweeps: 1, maxIterations: 25, seed: 1 });
    const d = nmfSync(tfidf, 6, { solver: 'mu', innerSweeps: 1, maxIterations: 25, seed: 1 });
    expect(c.normalizedLoss).toBeLessThan(d.normalizedLoss);
    expect(largestIncrease(c.traces.loss)).toBeLessThanOrEqual(1e-12);
  });

  it('HALS at convergence satisfies the KKT conditions (projected gradient ≈ 0)', () => {
    const init = nmfSync(tissue, 5, { maxIterations: 0, seed: 1 });
    const r = nmfSync(tissue, 5, { solver: 'hals', maxIterations: 1000, seed: 1 });
    // 0.74 at the random init; measured 1.0e-5 after 1000 HALS iterations.
    expect(kktResidual(tissue, init.W, init.H)).toBeGreaterThan(0.1);
    expect(kktResidual(tissue, r.W, r.H)).toBeLessThan(1e-4);
    // The result's certificate is the gradient mapping of ½‖A − WH‖²/‖A‖² at the returned factors:
    // it matches this file's own evaluation, and falls with the KKT residual (measured 0.21 at the
    // random init, 1.9e-5 after 1000 HALS iterations).
    expect(Math.abs(init.certificate - frobeniusCertificate(tissue, init.W, init.H))).toBeLessThan(1e-9 * init.certificate);
    expect(Math.abs(r.certificate - frobeniusCertificate(tissue, r.W, r.H))).toBeLessThan(1e-6 * r.certificate);
    expect(init.certificate).toBeGreaterThan(0.1);
    expect(r.certificate).toBeLessThan(1e-2 * init.certificate);
  });

  it('the certificate is 0 at an exact factorization and its KL form falls as MU converges', () => {
    // A = WH exactly (positive factors): the gradient vanishes, so the certificate is rounding only.
    const W = { rows: 30, cols: 3, data: Float64Array.from({ length: 90 }, (_, i) => 0.5 + ((i * 7) % 11) / 11) };
    const H = { rows: 3, cols: 20, data: Float64Array.from({ length: 60 }, (_, i) => 0.5 + ((i * 5) % 13) / 13) };
    const A = matmul(W, H);
    for (const options of [{ solver: 'hals' }, { solver: 'mu' }, { solver: 'mu', loss: 'kl' }] as const) {
      const r = nmfSync(A, 3, { ...options, maxIterations: 0, init: { W, H } });
      expect(r.certificate).toBeLessThan(1e-12);
    }
    // Measured: 1.27 at the random init, 1.8e-3 after 300 KL multiplicative updates.
    const start = nmfSync(tissue, 4, { solver: 'mu', loss: 'kl', maxIterations: 0, seed: 2 });
    const end = nmfSync(tissue, 4, { solver: 'mu', loss: 'kl', maxIterations: 300, seed: 2 });
    expect(end.certificate).toBeLessThan(0.1 * start.certificate);
  });

  it('dense and CSR input give the same iterates; losses match direct evaluation', () => {
    const A = tissue;
    for (const options of [{ solver: 'mu' }, { solver: 'hals' }, { solver: 'mu', loss: 'kl' }] as const) {
      const dense = nmfSync(A, 4, { ...options, maxIterations: 20, seed: 3 });
      const sparse = nmfSync(toCsr(A), 4, { ...options, maxIterations: 20, seed: 3 });
      expect(relativeError(sparse.H.data, dense.H.data)).toBeLessThan(1e-10);
      const direct = options.loss === 'kl' ? directKl(A, dense.W, dense.H) : directFrobenius(A, dense.W, dense.H);
      expect(Math.abs(dense.loss - direct) / direct).toBeLessThan(1e-10);
    }
    // KL on sparse data: the divergence only visits stored entries plus Σ WH = (1ᵀW)(H1).
    const { tfidf } = readCorpus('austen');
    const small = { ...tfidf, rows: 40, indptr: tfidf.indptr.subarray(0, 41) };
    const part = { ...small, indices: tfidf.indices.subarray(0, small.indptr[40]), data: tfidf.data.subarray(0, small.indptr[40]) };
    const k = nmfSync(part, 3, { solver: 'mu', loss: 'kl', maxIterations: 10, seed: 1 });
    const direct = directKl(toDense(part), k.W, k.H);
    expect(Math.abs(k.loss - direct) / direct).toBeLessThan(1e-10);
  });

  it("nndsvd init starts closer than random; given factors are used as they are", () => {
    const a = nmfSync(tissue, 5, { maxIterations: 0, init: 'nndsvd' });
    const b = nmfSync(tissue, 5, { maxIterations: 0 });
    expect(a.normalizedLoss).toBeLessThan(b.normalizedLoss);
    const c = nmfSync(tissue, 5, { maxIterations: 0, init: { W: a.W, H: a.H } });
    expect(c.W.data).toEqual(a.W.data);
    expect(c.settings.init).toBe('given');
  });
});

describe('nmf: async, settings, bad input', () => {
  it('async equals sync, reports progress, aborts', async () => {
    const seen: number[] = [];
    const a = await nmf(tissue, 4, { solver: 'mu', maxIterations: 30, onProgress: (p) => seen.push(p.iteration), progressIntervalMs: 0 });
    const b = nmfSync(tissue, 4, { solver: 'mu', maxIterations: 30 });
    expect(a.H.data).toEqual(b.H.data);
    expect(seen.length).toBeGreaterThan(0);
    expect(a.settings).toEqual({ rank: 4, solver: 'mu', loss: 'frobenius', maxIterations: 30, tolerance: 0, init: 'random', seed: 0, lossEvery: 1, epsilon: 1e-9, certificateTolerance: 0, restarts: 1, innerSweeps: 1, innerTolerance: 0.1 });
    const controller = new AbortController();
    const p = nmf(tissue, 4, { maxIterations: 10_000_000, signal: controller.signal });
    setTimeout(() => controller.abort(), 20);
    await expect(p).rejects.toBeInstanceOf(AbortError);
  });

  it('epsilon is an option recorded in settings; 0 is refused', () => {
    const a = nmfSync(tissue, 4, { solver: 'mu', maxIterations: 5, epsilon: 1e-3 });
    const b = nmfSync(tissue, 4, { solver: 'mu', maxIterations: 5 });
    expect(a.settings.epsilon).toBe(1e-3);
    expect(a.W.data).not.toEqual(b.W.data);
    throws(() => nmfSync(tissue, 4, { epsilon: 0 }), RangeError, /options\.epsilon of nmfSync\(\)/);
  });

  it('tolerance stops early', () => {
    const r = nmfSync(tissue, 4, { maxIterations: 100_000, tolerance: 1e-7 });
    expect(r.stopReason).toBe('plateau');
    expect(r.iterations).toBeLessThan(100_000);
  });

  it('bad input: messages name the argument and value', () => {
    throws(() => nmfSync(tissue, 4, { solver: 'hals', loss: 'kl' }), RangeError, /Expected solver 'mu' for options\.loss 'kl' of nmfSync\(\) but received solver 'hals'/);
    throws(() => nmfSync(tissue, 4, { solver: 'als' as any }), RangeError, /Expected one of 'mu', 'hals' for options\.solver of nmfSync\(\) but received the string "als"/);
    throws(() => nmfSync(tissue, 190), RangeError, /rank in \[1, 189\] \(min of rows and columns\) for rank but received 190/);
    const neg = { ...tissue, data: tissue.data.slice() };
    neg.data[3 * 500 + 7] = -2;
    throws(() => nmfSync(neg, 4), RangeError, /non-negative values in A but received -2 at \[3, 7\]/);
    throws(() => nmfSync(tissue, 4, { init: { W: tissue } }), RangeError, /Expected a 189×4 matrix for options\.init\.W but received 189×500/);
    throws(() => nmfSync(tissue, 4, { init: 'nnsvd' as any }), RangeError, /Expected 'random', 'nndsvd' or an object \{W, H\}/);
    throws(() => nmfSync(new Float64Array(4) as any, 1), TypeError, /Expected a Matrix \{rows, cols, data\} or a CSR matrix \{rows, cols, indptr, indices, data\} for A but received a Float64Array of length 4/);
  });
});

describe('nmf: inner sweeps (several updates of a factor per product with the data)', () => {
  it('never increase the loss (HALS rows by exact coordinate steps; MU majorize–minimize steps)', () => {
    for (const options of [
      { solver: 'hals', innerSweeps: 10 },
      { solver: 'hals', innerSweeps: 50, innerTolerance: 0 },
      { solver: 'mu', innerSweeps: 8, innerTolerance: 0 },
    ] as const) {
      const r = nmfSync(tissue, 7, { ...options, maxIterations: 60, seed: 1 });
      // Every inner step minimizes (HALS) or majorizes (MU) the same block objective: 1e-12 slack for rounding.
      expect(largestIncrease(r.traces.loss)).toBeLessThanOrEqual(1e-12);
      expect(r.settings.innerSweeps).toBe(options.innerSweeps);
    }
    // With a penalty the penalized objective is what cannot increase.
    const p = nmfSync(tissue, 7, { innerSweeps: 20, innerTolerance: 0, l1W: 5, l2H: 50, maxIterations: 40, seed: 1 });
    expect(largestIncrease(p.traces.objective!)).toBeLessThanOrEqual(1e-12);
  });

  it('enough HALS sweeps solve the block exactly: one iteration leaves the factor it fits the non-negative least-squares solution for the other', () => {
    // The first iteration fits the larger factor to the start's smaller one (nmf.cpp): W on tall data,
    // only H on wide data (n < m). Both orientations of tissue (wide: 189 samples × genes).
    for (const A of [tissue, transposed(tissue)]) {
      const wide = A.rows < A.cols;
      const W0 = nmfSync(A, 5, { maxIterations: 0, seed: 3 }).W;
      const H0 = nmfSync(A, 5, { maxIterations: 0, seed: 4 }).H;
      // KKT of min_X≥0 ½‖A − X·F‖² (X = W, F = H0; wide: X = Hᵀ, F = W0ᵀ and A transposed):
      // min(X, X·FFᵀ − A·Fᵀ) = 0, relative to ‖A·Fᵀ‖ (the sweeps' linear convergence makes it ~1e-15
      // long before 5000 sweeps on these well-conditioned 5×5 Grams).
      const kkt = (r: { W: Matrix; H: Matrix }): number => {
        const X = wide ? transposed(r.H) : r.W;
        const F = wide ? transposed(W0) : H0;
        const AFt = wide ? matmul(transposed(A), W0) : matmul(A, transposed(H0));
        const grad = matmul(X, matmul(F, transposed(F)));
        let s = 0;
        let scale = 0;
        grad.data.forEach((g, i) => {
          s += Math.min(X.data[i]!, g - AFt.data[i]!) ** 2;
          scale += AFt.data[i]! ** 2;
        });
        return Math.sqrt(s / scale);
      };
      const r = nmfSync(A, 5, { init: { W: W0, H: H0 }, maxIterations: 1, innerSweeps: 5000, innerTolerance: 0 });
      expect(kkt(r)).toBeLessThan(1e-10);
      // The other factor is the start's when the data are wide (that iteration fitted H only).
      if (wide) expect(r.W.data).toEqual(W0.data);
      // One sweep does not solve it (so the test can fail): its residual is far larger.
      expect(kkt(nmfSync(A, 5, { init: { W: W0, H: H0 }, maxIterations: 1, innerSweeps: 1 }))).toBeGreaterThan(1e-4);
    }
  });

  it('reach a lower loss than one sweep in the same number of iterations', () => {
    const one = nmfSync(tissue, 7, { innerSweeps: 1, maxIterations: 30, seed: 1 });
    const many = nmfSync(tissue, 7, { innerSweeps: 20, maxIterations: 30, seed: 1 });
    expect(many.loss).toBeLessThan(one.loss);
  });

  it('the row passes on 2 threads give the 1-thread result (each row is one thread’s, in the same order; HALS and MU)', () => {
    // Rank 20 on 189×500: (189 + 500)·20² ≥ the team's work threshold, so 2 threads are used. The rows
    // are identical; only OpenBLAS's GEMMs may round differently with 2 threads, so 1e-9 relative.
    const run = () => nmfSync(tissue, 20, { innerSweeps: 10, maxIterations: 15, seed: 2 });
    setBlasThreads(1);
    const a = run();
    setBlasThreads(2);
    const b = run();
    setBlasThreads(1);
    expect(relativeError(b.W.data, a.W.data)).toBeLessThan(1e-9);
    expect(relativeError(b.H.data, a.H.data)).toBeLessThan(1e-9);
    // MU's elementwise pass goes on the team from rows·r ≥ 2·10⁵: W of a 10000×40 matrix at rank 20.
    let state = 12345;
    const tall = { rows: 10000, cols: 40, data: Float64Array.from({ length: 400000 }, () => ((state = (state * 1103515245 + 12345) % 2147483648) / 2147483648)) };
    const mu = () => nmfSync(tall, 20, { solver: 'mu', innerSweeps: 4, maxIterations: 5, seed: 2 });
    const c = mu();
    setBlasThreads(2);
    const d = mu();
    setBlasThreads(1);
    expect(relativeError(d.W.data, c.W.data)).toBeLessThan(1e-9);
    expect(relativeError(d.H.data, c.H.data)).toBeLessThan(1e-9);
  });

  it('the AVX row sweeps give the portable sweeps’ bits (NSA_FLOW_SIMD=0), for every compiled rank and the any-rank kernel', () => {
    // nmf.cpp compiles the HALS rows twice, portable and for AVX without FMA: the same IEEE operations
    // in the same order, so equal bits, not only rounding (on a CPU without AVX both runs are portable).
    // Ranks 1 and 3 (less than one 4-wide vector), 10 (two and a half), 32 (the largest compiled rank),
    // 40 (the any-rank kernel); tall and wide data (189 and 500 rows: partial groups of 8 rows); a penalty.
    for (const A of [tissue, transposed(tissue)]) {
      for (const rank of [1, 3, 10, 32, 40]) {
        const run = () => nmfSync(A, rank, { maxIterations: 3, seed: 5, ...(rank === 10 ? { l1H: 0.5, l2W: 2 } : {}) });
        const vector = run();
        process.env.NSA_FLOW_SIMD = '0';
        try {
          const portable = run();
          expect(vector.W.data).toEqual(portable.W.data);
          expect(vector.H.data).toEqual(portable.H.data);
          expect(vector.traces.loss).toEqual(portable.traces.loss);
        } finally {
          delete process.env.NSA_FLOW_SIMD;
        }
      }
    }
  });

  it("the start's loss on wide data, taken from the H-only first iteration's AᵀW, is the direct one", () => {
    // Wide data (n < m): the first HALS iteration computes no AHᵀ; the loss of the start comes from
    // ⟨AᵀW, Hᵀ⟩. Tall data take it from AHᵀ as every later iteration does. Both must be ‖A − W0·H0‖.
    for (const A of [tissue, transposed(tissue)]) {
      const W0 = nmfSync(A, 5, { maxIterations: 0, seed: 3 }).W;
      const H0 = nmfSync(A, 5, { maxIterations: 0, seed: 4 }).H;
      const r = nmfSync(A, 5, { init: { W: W0, H: H0 }, maxIterations: 2 });
      const direct = directFrobenius(A, W0, H0);
      // (1e-10: the expanded form ‖A‖² − 2⟨A, WH⟩ + ‖WH‖² cancels to the small loss², as in 'losses
      // match direct evaluation' above; a cross term of the wrong iterate is off by far more.)
      expect(Math.abs(r.traces.loss[0]! - direct) / direct).toBeLessThan(1e-10);
      const last = directFrobenius(A, r.W, r.H);
      expect(Math.abs(r.loss - last) / last).toBeLessThan(1e-10);
    }
  });

  it('defaults, and refusals where inner sweeps have no products to reuse', () => {
    expect(nmfSync(tissue, 3, { maxIterations: 1 }).settings.innerSweeps).toBe(DEFAULT_INNER_SWEEPS);
    expect(nmfSync(tissue, 3, { maxIterations: 1, solver: 'mu' }).settings.innerSweeps).toBe(1);
    expect(nmfSync(tissue, 3, { maxIterations: 1, solver: 'mu', loss: 'kl' }).settings.innerSweeps).toBe(1);
    const weights = { rows: tissue.rows, cols: tissue.cols, data: new Float64Array(tissue.rows * tissue.cols).fill(1) };
    weights.data[5] = 0;
    expect(nmfSync(tissue, 3, { maxIterations: 1, weights }).settings.innerSweeps).toBe(1);
    throws(() => nmfSync(tissue, 3, { solver: 'mu', loss: 'kl', innerSweeps: 2 }), RangeError, /Expected options\.innerSweeps 1 with loss 'kl' for nmfSync\(\) but received 2/);
    throws(() => nmfSync(tissue, 3, { weights, innerSweeps: 3 }), RangeError, /Expected options\.innerSweeps 1 with missing entries or weights for nmfSync\(\) but received 3/);
    // The device loop updates each factor once per iteration: it refuses more rather than ignore them.
    throws(() => nmfSync(tissue, 3, { solver: 'mu', innerSweeps: 2, device: 'cuda' }), RangeError, /innerSweeps 2 \(the device updates each factor once per iteration\)/);
    throws(() => nmfSync(tissue, 3, { innerSweeps: 0 }), RangeError, /options\.innerSweeps of nmfSync\(\)/);
    throws(() => nmfSync(tissue, 3, { innerSweeps: 2.5 }), RangeError, /options\.innerSweeps of nmfSync\(\)/);
    throws(() => nmfSync(tissue, 3, { innerTolerance: 2 }), RangeError, /options\.innerTolerance of nmfSync\(\)/);
  });
});
