// The addon's second guard, called directly (the raw binding, behind lib/'s validation): every field
// read once before any data pointer is taken, exact typed-array kinds, detached buffers and NaN
// refused, memory checked before it is allocated, shared buffers copied. Calls that crashed the
// process before run in a child process, so a regression shows as a failed test, not a dead runner.
import { spawnSync } from 'node:child_process';
import { afterEach, describe, expect, it } from 'vitest';

import { setMemoryLimit } from '../lib/memory.js';
import { scaledNorm } from '../lib/validate.js';
import { native } from '../lib/native.js';
import { repoRoot } from './helpers/shared.js';
import { expectThrows } from './helpers/thrown.js';

type Outcome = [kind: string, message: string];

/**
 * Runs `body` in a fresh Node process with the addon as `b` and `t(f)` recording f's outcome as
 * [error class (or 'ok'), message]; asserts the process exited normally and returns the outcomes.
 * A body that finishes asynchronously sets `globalThis.asyncOutput` and writes `out` itself.
 */
function inChild(body: string, timeoutMs = 120_000): Outcome[] {
  const code = `
const b = require('node-gyp-build')(process.cwd());
const out = [];
const t = (f) => { try { const r = f(); out.push(['ok', String(typeof r === 'number' ? r : '')]); } catch (e) { out.push([e.constructor.name, String(e.message)]); } };
const detach = (a) => structuredClone(a.buffer, { transfer: [a.buffer] });
${body}
// a body that finishes later (a Worker) sets asyncOutput and writes the outcomes itself
if (!globalThis.asyncOutput) process.stdout.write(JSON.stringify(out));`;
  const r = spawnSync(process.execPath, ['-e', code], { cwd: repoRoot, encoding: 'utf8', timeout: timeoutMs });
  expect(r.signal, r.stderr).toBeNull();
  expect(r.status, r.stderr).toBe(0);
  return JSON.parse(r.stdout) as Outcome[];
}

const GiB = 2 ** 30;
const limitText = 'over the memory limit of 1073741824 bytes (1.0 GiB)';

// Complete raw option objects (the raw binding has no defaults: lib/'s specs fill them in).
const nmfOptions = "{ solver: 'mu', loss: 'frobenius', maxIterations: 3, tolerance: 0, lossEvery: 1, init: 'random', seed: 0 }";
const snmfOptions = "{ maxIterations: 3, vScaling: 2, tolerance: 0, lossEvery: 1, init: 'random', seed: 0 }";
const ntfOptions = "{ maxIterations: 2, solver: 'mu', epsilon: 1e-9, tolerance: 0, lossEvery: 1, seed: 0 }";
const sntfOptions = '{ maxIterations: 2, vScaling: 1, tv: false, tvReg: 0, epsilon: 1e-9, tolerance: 0, lossEvery: 1, seed: 0, recordStages: false }';
const flowOptions = `{ weighting: 'energy', orthogonality: 'gram', certificateTolerance: 1e-6, retraction: 'none', nsIterations: 5, nonnegativity: 'hard', fidelityType: 'scaleInvariant',
  orthogonalityType: 'scaleInvariant', w: 0.5, optimizer: 'adam', lookaheadBase: 'adam', lookaheadK: 5, lookaheadAlpha: 0.5,
  learningRate: 0.01, lrStrategy: '', aggression: 0.5, maxIterations: 2, tolerance: 1e-4, windowSize: 10, recordEvery: 1,
  warmupIterations: 0, lrScheduler: false, lrSchedulerPatience: 10, lrSchedulerFactor: 0.5, clipNorm: 10, seed: 42 }`;

function expectOutcomes(got: Outcome[], want: [string, RegExp][]): void {
  expect(got.length).toBe(want.length);
  got.forEach(([kind, message], i) => {
    expect([i, kind]).toEqual([i, want[i]![0]]);
    expect(message).toMatch(want[i]![1]);
  });
}

describe('getters that detach or transfer a buffer already passed (heap-use-after-free before)', () => {
  it('nmf, stratifiedNmfLoss, ntf, stratifiedNtf, khatriRao and a Proxy of options: a TypeError naming the detached buffer', () => {
    const got = inChild(`
// nmf: options.maxIterations transfers A.data, which was read before the options
{ const A = { rows: 2, cols: 2, data: Float64Array.of(1, 2, 3, 4) };
  const o = Object.assign(${nmfOptions}, {}); Object.defineProperty(o, 'maxIterations', { get() { detach(A.data); return 3; } });
  t(() => b.nmf(A, 1, o)); }
// the same through a Proxy whose get trap detaches on its first read
{ const A = { rows: 2, cols: 2, data: Float64Array.of(1, 2, 3, 4) };
  let once = true;
  const o = new Proxy(${nmfOptions}, { get(target, key) { if (once) { once = false; detach(A.data); } return target[key]; } });
  t(() => b.nmf(A, 1, o)); }
// stratifiedNmfLoss: reading W[0] transfers strata[0].data
{ const s = { rows: 2, cols: 2, data: Float64Array.of(1, 2, 3, 4) };
  const W = []; Object.defineProperty(W, 0, { get() { detach(s.data); return new Float64Array(2); }, enumerable: true });
  t(() => b.stratifiedNmfLoss([s], 2, 1, new Float64Array(2), W, new Float64Array(2))); }
// ntf: options.seed transfers T
{ const T = new Float64Array(4).fill(1);
  const o = ${ntfOptions}; Object.defineProperty(o, 'seed', { get() { detach(T); return 0; } });
  t(() => b.ntf(T, [2, 2], 1, o, undefined)); }
// stratifiedNtf: options.maxIterations transfers strata[0]
{ const A = new Float64Array(4).fill(1);
  const o = ${sntfOptions}; Object.defineProperty(o, 'maxIterations', { get() { detach(A); return 2; } });
  t(() => b.stratifiedNtf([A], [2], [2], [1], 1, o, undefined)); }
// khatriRao: reading matrices[1] transfers matrices[0]
{ const F = Float64Array.of(1, 2);
  const list = [F]; Object.defineProperty(list, 1, { get() { detach(F); return Float64Array.of(3, 4); }, enumerable: true });
  t(() => b.khatriRao(list, [2, 2], 1)); }
`);
    const detached = (name: string) => new RegExp(`Expected a Float64Array of length \\d+.* for ${name} but received a detached Float64Array`);
    expectOutcomes(got, [
      ['TypeError', detached('A\\.data')],
      ['TypeError', detached('A\\.data')],
      ['TypeError', detached('strata\\[0\\]\\.data')],
      ['TypeError', detached('T')],
      ['TypeError', detached('strata\\[0\\]')],
      ['TypeError', detached('matrices\\[0\\]')],
    ]);
  });

  it('each options getter runs exactly once, before any work', () => {
    const reads: Record<string, number> = {};
    const counted = (o: Record<string, unknown>) => {
      const p: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(o)) {
        Object.defineProperty(p, k, { get: () => ((reads[k] = (reads[k] ?? 0) + 1), v), enumerable: true });
      }
      return p;
    };
    const o = { solver: 'mu', loss: 'frobenius', maxIterations: 2, tolerance: 0, lossEvery: 1, init: 'random', seed: 0 };
    native().nmf({ rows: 2, cols: 2, data: Float64Array.of(1, 2, 3, 4) }, 1, counted(o) as never);
    // seven fields, each read once (W and H are read too, once, as undefined: not counted here)
    expect(reads).toEqual({ solver: 1, loss: 1, maxIterations: 1, tolerance: 1, lossEvery: 1, init: 1, seed: 1 });
  });
});

describe('exact types, detached buffers, NaN and missing fields', () => {
  const raw = native();

  it('a typed array of another kind is a TypeError naming the argument (optimizerSteps read any TypedArray before)', () => {
    expectThrows(() => raw.optimizerSteps('adam', 'adam', 1, 2, new Float64Array(2), new Float64Array(6), new Float32Array(3) as never), TypeError,
      /^Expected a Float64Array for lrs but received a Float32Array of length 3$/);
    expectThrows(() => raw.defect(new DataView(new ArrayBuffer(32)) as never, 2, 2), TypeError,
      /^Expected a Float64Array of length 4 \(rows·cols\) for Y but received a DataView$/);
    const csr = { rows: 2, cols: 2, indptr: Uint32Array.of(0, 1, 2), indices: Int32Array.of(0, 1), data: Float64Array.of(1, 1) };
    expectThrows(() => raw.nmf(csr as never, 1, { solver: 'mu', loss: 'frobenius', maxIterations: 1, tolerance: 0, lossEvery: 1, init: 'random', seed: 0 }),
      TypeError, /^Expected a Int32Array of length 3 \(rows \+ 1\) for A\.indptr but received a Uint32Array of length 3$/);
  });

  it('a detached buffer is a TypeError, never a 0 or NaN result', () => {
    const Y = new Float64Array(4);
    structuredClone(Y.buffer, { transfer: [Y.buffer] });
    expectThrows(() => raw.defect(Y, 2, 2), TypeError, /^Expected a Float64Array of length 4 \(rows·cols\) for Y but received a detached Float64Array$/);
    expectThrows(() => raw.tensorNorm(Y), TypeError, /^Expected a Float64Array for T but received a detached Float64Array$/);
  });

  it('NaN and Infinity: in data a RangeError with the index, for a number a TypeError', () => {
    expectThrows(() => raw.defect(Float64Array.of(1, NaN, 0, 1), 2, 2), RangeError, /^Expected finite values in Y but received NaN at index 1$/);
    expectThrows(() => raw.tensorNorm(Float64Array.of(Infinity)), RangeError, /^Expected finite values in T but received Infinity at index 0$/);
    expectThrows(() => raw.nmf({ rows: 1, cols: 1, data: Float64Array.of(1) }, 1, { solver: 'mu', loss: 'frobenius', maxIterations: 1, tolerance: NaN, lossEvery: 1, init: 'random', seed: 0 }),
      TypeError, /^Expected a number for options\.tolerance but received NaN$/);
    expectThrows(() => raw.retract(new Float64Array(6), 0, 3, 2, 'polar', NaN, 5, 'auto'), TypeError, /^Expected a number for w but received NaN$/);
  });

  it('a missing option is a TypeError naming it (no default in C++)', () => {
    expectThrows(() => raw.nmf({ rows: 1, cols: 1, data: Float64Array.of(1) }, 1, { solver: 'mu', loss: 'frobenius' } as never), TypeError,
      /^Expected an integer in \[0, 1073741824\] for options\.maxIterations but received undefined$/);
    expectThrows(() => raw.ntf(new Float64Array(4), [2, 2], 1, {} as never, undefined), TypeError, /for options\.maxIterations but received undefined$/);
  });

  it('finite input whose energy overflows is a numerical error, never a silent NaN', () => {
    let caught: unknown;
    try {
      raw.flowEnergy(Float64Array.of(1e300, 1), Float64Array.of(1, 1), 0, 2, 1, 'basic', 'basic', 0.5, 1, 1, 'reference', 'gram');
    } catch (e) {
      caught = e;
    }
    expect((caught as { kind?: string }).kind).toBe('numerical');
    expect((caught as Error).message).toBe('The energy is not finite (the values of Y or X0 are too large to square)');
  });

  it('setBlasThreads stops at OpenBLAS’s 64', () => {
    expectThrows(() => raw.setBlasThreads(100), RangeError, /^Expected an integer in \[1, 64\] for threads but received 100$/);
  });
});

describe('memory is checked before it is allocated', () => {
  it('huge dimensions under a 1 GiB limit: a RangeError with the bytes (each aborted the process before)', () => {
    const got = inChild(`
b.setMemoryLimit(${GiB});
const wide = new Float64Array(65536).fill(1);
t(() => b.defect(wide, 1, 65536));
t(() => b.basicOrthogonality(wide, 1, 65536));
t(() => b.defectGradient(wide, 1, 1, 65536, false));
t(() => b.procrustes(wide, wide, 1, 65536));
t(() => b.flowEnergy(wide, wide, 0, 1, 65536, 'basic', 'basic', 0.5, 1, 1, 'energy', 'gram'));
t(() => b.nsaFlowSync(wide, null, 1, 65536, ${flowOptions}));
t(() => b.khatriRao([wide, wide], [65536, 65536], 1));
t(() => b.cpReconstruct([wide, wide], [65536, 65536], 1, undefined));
t(() => b.ntf(new Float64Array(4).fill(1), [2, 2], 2 ** 31 - 1, ${ntfOptions}, undefined));
t(() => b.stratifiedNtf([new Float64Array(4).fill(1)], [2], [2], [1], 2 ** 31 - 1, ${sntfOptions}, undefined));
t(() => b.nmf({ rows: 2, cols: 2, data: Float64Array.of(1, 2, 3, 4) }, 2 ** 31 - 1, ${nmfOptions}));
t(() => b.stratifiedNmf([{ rows: 2, cols: 2, data: Float64Array.of(1, 2, 3, 4) }], 2, 2 ** 31 - 1, ${snmfOptions}));
t(() => b.bench.timeGemm(100000, 100000, 100000, 1));
t(() => b.ntf(new Float64Array(4), [2, 2], 2 ** 31, ${ntfOptions}, undefined));
`);
    const memory = (what: string, bytes?: string) =>
      new RegExp(`^Not enough memory for ${what}: it needs ${bytes ?? '\\d+'} bytes \\([\\d.]+ [KMGTPE]iB\\), ${limitText.replace(/[()]/g, '\\$&')}`);
    expectOutcomes(got, [
      // the k×k Gram matrix and its diagonal: 8·65536·65537 bytes
      ['RangeError', memory('the Gram matrix of Y \\(1×65536\\)', '34360262656')],
      ['RangeError', memory('the Gram matrix of Y \\(1×65536\\)', '34360262656')],
      ['RangeError', memory('the gradient of the defect of Y \\(1×65536\\)')],
      ['RangeError', memory('the Procrustes rotation of A \\(1×65536\\)')],
      ['RangeError', memory('the energy of Y \\(1×65536\\)')],
      ['RangeError', memory('NSA-Flow on Y0 \\(1×65536\\)')],
      // 65536² values of 8 bytes: 32 GiB (V8's fatal "ArrayBuffer::New Allocation failed" before)
      ['RangeError', memory('the Khatri–Rao product \\(65536×65536 rows × rank 1\\)', '34359738368')],
      ['RangeError', memory('the CP reconstruction \\(65536×65536, rank 1\\)')],
      ['RangeError', memory('NTF of rank 2147483647 on a tensor of 4 values')],
      ['RangeError', memory('Stratified-NTF of rank 2147483647 \\(1 stratum\\)')],
      ['RangeError', memory('NMF of rank 2147483647 on 2×2 data')],
      ['RangeError', memory('Stratified-NMF of rank 2147483647 on 2×2 data')],
      // three 10^5×10^5 operands: 2.4·10^11 bytes
      ['RangeError', memory('the GEMM operands \\(100000×100000 by 100000×100000\\)', '240000000000')],
      ['RangeError', /^Expected an integer in \[1, 2147483647\] for rank but received 2147483648$/],
    ]);
  });

  // Not under the sanitizers: ASan's operator new reports a failed allocation as a fatal error instead of
  // throwing std::bad_alloc, so the path this test checks does not exist there.
  it.skipIf(process.env.NSA_FLOW_SANITIZE === '1')('an allocation that fails anyway is a RangeError, not std::bad_alloc terminating the process', () => {
    // With the limit at its maximum, a 2^24-column Gram (2^51 bytes, beyond any address space) gets
    // past the check and fails in the kernel's allocation; the exports wrapper turns it into a RangeError.
    const got = inChild(`
b.setMemoryLimit(2 ** 53 - 1);
t(() => b.defect(new Float64Array(2 ** 24).fill(1), 1, 2 ** 24));
`);
    expectOutcomes(got, [['RangeError', /^Not enough memory for defect: an allocation failed$/]]);
  });

  it('the limit belongs to one thread, as lib/memory.ts’s does: a Worker starts at auto', () => {
    const got = inChild(`
const { Worker } = require('node:worker_threads');
globalThis.asyncOutput = true;
b.setMemoryLimit(1000);
t(() => b.qr(new Float64Array(1000).fill(1), 100, 10));
const w = new Worker(\`
  const { parentPort } = require('node:worker_threads');
  const b = require('node-gyp-build')(process.cwd());
  let r;
  try { b.qr(new Float64Array(1000).fill(1), 100, 10); r = 'ok ' + b.setMemoryLimit(5000); } catch (e) { r = e.message; }
  parentPort.postMessage(r);\`, { eval: true });
w.on('message', (m) => { out.push(['worker', m]); w.terminate().then(() => { t(() => b.setMemoryLimit(0)); process.stdout.write(JSON.stringify(out)); process.exit(0); }); });
setTimeout(() => {}, 60000);
`);
    expectOutcomes(got.slice(0, 3), [
      ['RangeError', /^Not enough memory for the QR decomposition of Y \(100×10\): it needs 25680 bytes/],
      // the Worker's previous setting was 0 (auto), and its call ran
      ['worker', /^ok 0$/],
      // the main thread's setting was still its own 1000
      ['ok', /^1000$/],
    ]);
  });

  describe('setMemoryLimit (lib/memory.ts forwards its setting to the addon)', () => {
    afterEach(() => {
      setMemoryLimit('auto');
    });

    it('a small limit set in TypeScript refuses a native call with the exact bytes', () => {
      setMemoryLimit(1000);
      let caught: unknown;
      try {
        native().qr(new Float64Array(1000).fill(1), 100, 10);
      } catch (e) {
        caught = e;
      }
      expect(caught).toBeInstanceOf(RangeError);
      // Q (100×10) and its JS copy, the input copy, R (10×10) twice and τ: 8·(3·1000 + 2·100 + 10) bytes
      expect((caught as Error).message).toBe(
        'Not enough memory for the QR decomposition of Y (100×10): it needs 25680 bytes (25.1 KiB), over the memory limit of 1000 bytes; ' +
          'reduce the problem size or raise the limit with setMemoryLimit()',
      );
      // the raw setter returns the previous setting (the 1000 forwarded from TypeScript)
      expect(native().setMemoryLimit(1000)).toBe(1000);
    });

    it("'auto' (0) checks against the memory available, so an ordinary call runs", () => {
      setMemoryLimit('auto');
      expect(native().setMemoryLimit(0)).toBe(0);
      // R of diag(3, 4) is diag(±3, ±4)
      expect(Array.from(native().qr(Float64Array.of(3, 0, 0, 4), 2, 2).R, Math.abs)).toEqual([3, 0, 0, 4]);
    });
  });
});

describe('sync calls never read a buffer another thread can change', () => {
  it('CSR indices in a SharedArrayBuffer rewritten by a Worker during nmf calls: results or RangeErrors, never a crash (segfault before)', () => {
    const got = inChild(`
const { Worker } = require('node:worker_threads');
const rows = 200, cols = 50, perRow = 10;
const indptr = new Int32Array(rows + 1), indices = new Int32Array(new SharedArrayBuffer(4 * rows * perRow));
for (let i = 0; i < rows; i++) { indptr[i + 1] = (i + 1) * perRow; for (let j = 0; j < perRow; j++) indices[i * perRow + j] = j * 5; }
const data = new Float64Array(rows * perRow).fill(1);
const worker = new Worker(\`
  const { workerData } = require('node:worker_threads');
  const idx = new Int32Array(workerData);
  const good = Int32Array.from(idx);
  let s = 1;
  for (;;) {
    s = (s * 1103515245 + 12345) >>> 0;
    const i = s % idx.length;
    // a bad index (out of range or negative), then the good one back
    idx[i] = (s & 1) ? 1000000 + (s % 1000) : -1 - (s % 7);
    idx[i] = good[i];
  }\`, { eval: true, workerData: indices.buffer });
const counts = { ok: 0, RangeError: 0 };
const o = ${nmfOptions};
o.maxIterations = 2;
for (let n = 0; n < 300; n++) {
  try { b.nmf({ rows, cols, indptr, indices, data }, 3, o); counts.ok++; }
  catch (e) { if (e instanceof RangeError && /column indices/.test(e.message)) counts.RangeError++; else { out.push([e.constructor.name, e.message]); } }
}
worker.terminate();
out.push(['counts', JSON.stringify(counts)]);
`);
    // every call either used a consistent copy or refused it; nothing else happened
    expect(got.length).toBe(1);
    expect(got[0]![0]).toBe('counts');
    const counts = JSON.parse(got[0]![1]) as { ok: number; RangeError: number };
    expect(counts.ok + counts.RangeError).toBe(300);
  });

  it("the addon's own check of non-negative data finds a defect wherever it lies (its fast pass reads two entries at a time)", () => {
    // 7 × 5 = 35 entries: 17 pairs and one left over. The message names the first defect's flat index.
    const o = { solver: 'mu', loss: 'frobenius', maxIterations: 1, tolerance: 0, lossEvery: 1, init: 'random', seed: 0 } as const;
    for (const at of [0, 1, 2, 3, 32, 33, 34]) {
      for (const v of [-2, NaN, Infinity]) {
        const data = Float64Array.from({ length: 35 }, (_, i) => 1 + (i % 3));
        data[at] = v;
        expectThrows(() => native().nmf({ rows: 7, cols: 5, data }, 2, o as never), RangeError, new RegExp(`non-negative values in A\\.data but received ${v} at index ${at}$`));
      }
    }
    // −0 is ≥ 0: accepted, as the portable loop accepts it.
    const data = Float64Array.from({ length: 35 }, (_, i) => 1 + (i % 3));
    data[33] = -0;
    expect(native().nmf({ rows: 7, cols: 5, data }, 2, o as never).W).toHaveLength(14);
  });

  it('a SharedArrayBuffer input gives the same result as the same values in an ordinary buffer', () => {
    const values = Float64Array.from({ length: 60 }, (_, i) => 1 + ((i * 7) % 11));
    const shared = new Float64Array(new SharedArrayBuffer(values.byteLength));
    shared.set(values);
    const o = { solver: 'hals', loss: 'frobenius', maxIterations: 20, tolerance: 0, lossEvery: 1, init: 'random', seed: 3 } as const;
    const a = native().nmf({ rows: 6, cols: 10, data: values }, 2, o as never);
    const b = native().nmf({ rows: 6, cols: 10, data: shared }, 2, o as never);
    expect(b.W).toEqual(a.W);
    expect(b.H).toEqual(a.H);
    expect(native().defect(shared.subarray(0, 12), 4, 3)).toBe(native().defect(values.subarray(0, 12), 4, 3));
  });
});

describe('nonNegativeNorm (the one native pass of a dense data check, lib/factorization/missing.ts)', () => {
  it("gives scaledNorm's bits where every entry is finite and ≥ 0, NaN wherever the JS checks must look, and refuses what is not a Float64Array", () => {
    const x = Float64Array.from({ length: 1001 }, (_, i) => ((i * 37) % 101) / 7);
    // The same sum in the same order as lib/validate.ts's scaledNorm: equal on x86-64 (no fused
    // multiply–add in the baseline build), within rounding where a compiler may fuse one.
    const same = (got: number) =>
      process.arch === 'x64' ? expect(got).toBe(scaledNorm(x)) : expect(Math.abs(got - scaledNorm(x))).toBeLessThan(1e-14 * scaledNorm(x));
    same(native().nonNegativeNorm(x));
    const shared = new Float64Array(new SharedArrayBuffer(x.byteLength));
    shared.set(x);
    same(native().nonNegativeNorm(shared));
    // A defect (NaN, ±∞, a negative value), −0, or a sum of squares outside the plain sum's range
    // (the scaled norm's case): NaN, and the data untouched.
    for (const [at, v] of [[5, NaN], [1000, Infinity], [0, -Infinity], [17, -1e-300], [3, -0]] as const) {
      const y = x.slice();
      y[at] = v;
      expect(native().nonNegativeNorm(y)).toBeNaN();
      expect(Object.is(y[at], v)).toBe(true);
    }
    // The pass reads two and four entries at a time with the rest after (1001 = 250 groups of four
    // and one): a defect in every lane of the first and last groups, and in the tail, is seen.
    for (const at of [0, 1, 2, 3, 4, 5, 6, 7, 996, 997, 998, 999, 1000]) {
      for (const v of [-1, NaN]) {
        const y = x.slice();
        y[at] = v;
        expect(native().nonNegativeNorm(y)).toBeNaN();
      }
    }
    expect(native().nonNegativeNorm(new Float64Array(8).fill(1e200))).toBeNaN();
    expect(native().nonNegativeNorm(new Float64Array(8).fill(1e-200))).toBeNaN();
    expect(native().nonNegativeNorm(new Float64Array(8))).toBeNaN();
    for (const bad of [[1, 2], new Float32Array(4), undefined]) {
      expectThrows(() => native().nonNegativeNorm(bad as never), TypeError, /data/);
    }
    const detached = x.slice();
    structuredClone(detached.buffer, { transfer: [detached.buffer] });
    expectThrows(() => native().nonNegativeNorm(detached), TypeError, /for data but received a detached Float64Array/);
  });
});
