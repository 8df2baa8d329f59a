// NSA-Flow's passes around the iterations on the thread team (issue #15): the explicit flow's start
// (the target's projection N(X0), the rescale to unit RMS, ‖X0‖², X0ᵀX0 as per-thread DSYRKs, the
// start's best N(Y)), its final certificate and the results scaled back; SPG's start certificate and
// the energy's ‖X0‖², the start's copy and checks and the returned point's copy. Each thread sums its rows in index order and the partial sums are added in
// thread order: with one thread the serial sums exactly, with T threads a rounding difference.
import { availableParallelism } from 'node:os';

import { afterEach, describe, expect, it } from 'vitest';

import { getBlasThreads, nsaFlow, nsaFlowExplicitSync, nsaFlowSync, setBlasThreads, type Matrix } from '../lib/index.js';
import { relativeError } from './helpers/shared.js';

/** Deterministic p×k matrix of entries in (−1, 1). */
function lcg(p: number, k: number, seed: number, scale = 1): Matrix {
  const data = new Float64Array(p * k);
  let s = seed >>> 0 || 1;
  for (let i = 0; i < data.length; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    data[i] = scale * ((s + 0.5) / 2147483648 - 1);
  }
  return { rows: p, cols: k, data };
}

const relative = (a: number, b: number): number => Math.abs(a - b) / Math.abs(a);

// 20000×20 = 4·10⁵ doubles: above the team's work threshold (2·10⁵), so 2 threads split the rows
// (61 row blocks of 327, 30 and 31 per thread). X0 has an RMS of about 2.1, not 1: a row block that
// the rescale pass skipped would keep entries 2.1 times too large.
const p = 20000;
const k = 20;
const Y0 = lcg(p, k, 7, 3.7);
const X0 = lcg(p, k, 11, 3.7); // signed: N(X0) clamps half of it
const clamped = X0.data.map((v) => Math.max(v, 0));
const twoCores = availableParallelism() >= 2;
const initialThreads = getBlasThreads();
afterEach(() => setBlasThreads(initialThreads));

describe.skipIf(!twoCores)('NSA-Flow with 2 threads equals 1 thread', () => {
  // The target the flow returns is N(X0) in the caller's units, (x/s)·s for the scale s: within 2 ulp
  // of max(X0, 0) for every thread count. A row range of the team's projection or rescale pass that
  // were skipped (or done twice) would leave entries off by the factor s ≈ 2.1 (or 1/s): a gap of O(1).
  // The iterates differ between thread counts by the order of the partial sums only (~1e-16 per
  // iteration, amplified along 30 iterations): 1e-10 relative, as test/threads.test.ts. The final
  // certificate is a sum over all p×k entries: a thread's rows left out would change it by about half,
  // so 1e-8 relative (measured ~1e-14) catches it.
  it('explicit flow, 20000×20, 30 iterations: target, iterate, energy and certificate', () => {
    const run = (threads: number) => nsaFlowExplicitSync(Y0, { X0, w: 0.5, retraction: 'softPolar', nonnegativity: 'hard', maxIterations: 30, tolerance: 0, threads });
    const one = run(1);
    const two = run(2);
    expect(one.settings.threadsUsed).toBe(1);
    expect(two.settings.threadsUsed).toBe(2);
    for (const r of [one, two]) expect(relativeError(r.target.data, clamped)).toBeLessThan(5e-16);
    expect(two.iterations).toBe(one.iterations);
    expect(relativeError(two.Y.data, one.Y.data)).toBeLessThan(1e-10);
    expect(relative(one.bestEnergy, two.bestEnergy)).toBeLessThan(1e-12);
    expect(one.certificate).toBeGreaterThan(0);
    expect(relative(one.certificate, two.certificate)).toBeLessThan(1e-8);
  });

  // SPG's start certificate (trace entry 0) is taken at Y0 with the gradient of the energy there: the
  // same point for both counts, so only the Gram's and the certificate's partial sums differ (measured
  // 1e-14 relative; 1e-12 leaves 10² of room, and a thread's range left out would change the sum by
  // about half). The iterates after 12 iterations (this problem converges, certificate ~1e-10, by
  // about 27, where the plateau rule may stop one count and not the other): 1e-7, as
  // test/threads.test.ts (SPG's Barzilai–Borwein steps amplify rounding).
  it('nsaFlow (spg), 20000×20, 12 iterations: start certificate, iterate and energy', () => {
    const run = (threads: number) => {
      setBlasThreads(threads);
      return nsaFlowSync(Y0, { X0, w: 0.5, maxIterations: 12, certificateTolerance: 0, plateauTolerance: 0 });
    };
    const one = run(1);
    const two = run(2);
    const start = (r: typeof one) => r.traces.certificate![0]!;
    expect(start(one)).toBeGreaterThan(0);
    expect(relative(start(one), start(two))).toBeLessThan(1e-12);
    expect(relativeError(two.target.data, clamped)).toBe(0);
    expect(two.iterations).toBe(one.iterations);
    expect(relativeError(two.Y.data, one.Y.data)).toBeLessThan(1e-7);
    expect(relative(one.bestEnergy, two.bestEnergy)).toBeLessThan(1e-10);
  });

  // SPG's synchronous call reads Y0 and X0 in place and its team copies the start (clamped at 0) into
  // the solver's buffer and the returned point into the result's array; the asynchronous one copies
  // the inputs first and the result after. The same passes on the same values: bit for bit the same
  // Y, energy and certificates, and the caller's arrays unchanged (Y0 has negative entries, which a
  // clamp written into the caller's array instead of the solver's copy would zero).
  it('nsaFlow (spg), 2 threads: synchronous (inputs in place) equals asynchronous (copies); inputs unchanged', async () => {
    setBlasThreads(2);
    const y0 = Float64Array.from(Y0.data);
    const x0 = Float64Array.from(X0.data);
    const options = { X0, w: 0.5, maxIterations: 12, certificateTolerance: 0, plateauTolerance: 0 };
    const sync = nsaFlowSync(Y0, options);
    const later = await nsaFlow(Y0, options);
    expect(Y0.data.some((v) => v < 0)).toBe(true);
    expect(Buffer.from(Y0.data.buffer).equals(Buffer.from(y0.buffer))).toBe(true);
    expect(Buffer.from(X0.data.buffer).equals(Buffer.from(x0.buffer))).toBe(true);
    expect(Buffer.from(sync.Y.data.buffer).equals(Buffer.from(later.Y.data.buffer))).toBe(true);
    expect(sync.Y.data.every((v) => v >= 0)).toBe(true);
    expect(sync.bestEnergy).toBe(later.bestEnergy);
    expect(sync.traces.certificate).toEqual(later.traces.certificate);
  });
});
