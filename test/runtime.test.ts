// The async runtime: Promises from worker threads, throttled progress, AbortSignal cancellation
// (listener removed, AbortError), protection of inputs, bounded concurrency with the BLAS policy,
// a responsive event loop while jobs run, no leaks, and loading from worker_threads.
import { getEventListeners } from 'node:events';
import { Worker } from 'node:worker_threads';

import { afterEach, describe, expect, it } from 'vitest';

import {
  AbortError,
  NumericalError,
  getBlasThreads,
  getConcurrency,
  info,
  retract,
  retractAsync,
  retractBatch,
  retractBatchAsync,
  setBlasThreads,
  setConcurrency,
  type Tensor,
} from '../lib/index.js';
import { native } from '../lib/native.js';
import { mapNativeError } from '../lib/runtime.js';
import { repoRoot } from './helpers/shared.js';

/** A batch of B Gaussian-like p×k matrices (deterministic). */
function batch(B: number, p: number, k: number, seed = 1): Tensor {
  const data = new Float64Array(B * p * k);
  let s = seed;
  for (let i = 0; i < data.length; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    data[i] = s / 4294967296 - 0.5;
  }
  return { shape: [B, p, k], data };
}

/** A job that takes a few hundred ms: B polar retractions through the SVD. */
const longBatch = (seed = 1): Tensor => batch(600, 300, 20, seed);
const longOptions = { type: 'polar', polarMethod: 'svd' } as const;

/** Bitwise equality of two arrays (vitest's deep equality is far too slow for millions of entries). */
function sameBits(a: Float64Array, b: Float64Array): boolean {
  return a.length === b.length && Buffer.compare(Buffer.from(a.buffer, a.byteOffset, a.byteLength), Buffer.from(b.buffer, b.byteOffset, b.byteLength)) === 0;
}

afterEach(() => {
  setConcurrency(2);
});

describe('async jobs', () => {
  it('resolve to exactly the sync result (same kernel, bit for bit)', async () => {
    const Y = batch(1, 40, 5).data;
    const M = { rows: 40, cols: 5, data: Y };
    const sync = retract(M, { type: 'softCayley', w: 0.4 });
    const async = await retractAsync(M, { type: 'softCayley', w: 0.4 });
    expect(async.data).toEqual(sync.data);
  });

  it('report throttled progress on the JS thread, ending at the total', async () => {
    const seen: number[] = [];
    const t0 = performance.now();
    await retractBatchAsync(longBatch(), { ...longOptions, progressIntervalMs: 20, onProgress: (p) => seen.push(p.iteration) });
    const elapsed = performance.now() - t0;
    expect(seen.length).toBeGreaterThan(1); // a job of several hundred ms reports more than once
    // Throttled: at most one record per 20 ms (plus the first), far fewer than the 600 iterations.
    expect(seen.length).toBeLessThanOrEqual(Math.ceil(elapsed / 20) + 2);
    for (let i = 1; i < seen.length; i++) expect(seen[i]!).toBeGreaterThan(seen[i - 1]!);
  });

  it('cancel through an AbortSignal: AbortError, listener removed, and the next job still works', async () => {
    const controller = new AbortController();
    let progressCalls = 0;
    const job = retractBatchAsync(longBatch(), {
      ...longOptions,
      signal: controller.signal,
      progressIntervalMs: 0,
      onProgress: () => {
        if (++progressCalls === 1) controller.abort();
      },
    });
    await expect(job).rejects.toThrow(AbortError);
    await job.catch((e: Error) => {
      expect(e.name).toBe('AbortError');
    });
    expect(getEventListeners(controller.signal, 'abort').length).toBe(0);
    // The addon is fine afterwards.
    const ok = await retractBatchAsync(batch(2, 10, 3), longOptions);
    expect(ok.data.length).toBe(60);
  });

  it('an already-aborted signal rejects at once with AbortError; a queued job aborted before it starts never runs', async () => {
    const c = new AbortController();
    c.abort();
    await expect(retractAsync({ rows: 3, cols: 2, data: new Float64Array(6).fill(1) }, { signal: c.signal })).rejects.toThrow(AbortError);

    setConcurrency(1);
    const first = retractBatchAsync(longBatch(), longOptions);
    const c2 = new AbortController();
    let progressed = false;
    const queued = retractBatchAsync(longBatch(2), { ...longOptions, signal: c2.signal, onProgress: () => (progressed = true) });
    c2.abort();
    await expect(queued).rejects.toThrow(AbortError);
    expect(getEventListeners(c2.signal, 'abort').length).toBe(0);
    await first;
    expect(progressed).toBe(false); // it never started
  });

  it('an exception thrown by onProgress cancels the job and rejects with that exception', async () => {
    const job = retractBatchAsync(longBatch(), {
      ...longOptions,
      progressIntervalMs: 0,
      onProgress: () => {
        throw new Error('progress handler failed');
      },
    });
    await expect(job).rejects.toThrow('progress handler failed');
  });

  it('mutating or transferring the input buffers during a run cannot change the result', async () => {
    const Y = longBatch(7);
    const expected = retractBatch({ shape: Y.shape, data: Y.data.slice() }, longOptions);

    const running = retractBatchAsync(Y, longOptions);
    Y.data.fill(123); // mutate right after the call
    const result = await running;
    expect(sameBits(result.data, expected.data)).toBe(true);

    // A queued job (concurrency 1) is protected too, and so is a transferred (detached) buffer.
    setConcurrency(1);
    const Y2 = longBatch(7);
    const blocker = retractBatchAsync(longBatch(3), longOptions);
    const queued = retractBatchAsync(Y2, longOptions);
    structuredClone(Y2.data.buffer, { transfer: [Y2.data.buffer] });
    expect(Y2.data.length).toBe(0); // detached
    await blocker;
    expect(sameBits((await queued).data, expected.data)).toBe(true);
  });

  it('runs at most `concurrency` jobs at once, and BLAS single-threaded while several run', async () => {
    expect(getConcurrency()).toBe(2);
    const threadsSeen: number[] = [];
    const jobs = [1, 2, 3].map((s) =>
      retractBatchAsync(longBatch(s), {
        ...longOptions,
        onProgress: () => threadsSeen.push(info().blas.threads),
      }),
    );
    await Promise.all(jobs);
    // With two jobs in flight BLAS runs one thread (OpenBLAS's count is process-global).
    expect(threadsSeen.length).toBeGreaterThan(0);
    expect(Math.min(...threadsSeen)).toBe(1);
  });
});

describe('setBlasThreads', () => {
  it("accepts up to the OpenBLAS build's MAX_THREADS and refuses more with a RangeError naming threads and that maximum", () => {
    const { config, threadLimit } = native().blasInfo();
    // The build states its maximum in its configuration string (MAX_THREADS=64 for Debian's 0.3.21).
    expect(threadLimit).toBe(Number(/MAX_THREADS=(\d+)/.exec(config)![1]));
    const previous = getBlasThreads();
    try {
      expect(setBlasThreads(threadLimit)).toBe(threadLimit);
      const message = `Expected an integer in [1, ${threadLimit}] for threads but received ${threadLimit + 1} (${threadLimit} is the most this OpenBLAS build supports)`;
      expect(() => setBlasThreads(threadLimit + 1)).toThrow(RangeError);
      expect(() => setBlasThreads(threadLimit + 1)).toThrow(message);
      expect(() => setBlasThreads(1024)).toThrow(`Expected an integer in [1, ${threadLimit}] for threads but received 1024`);
      expect(getBlasThreads()).toBe(threadLimit); // a refused call changes nothing
      // The raw binding has the same bound (OpenBLAS would clamp silently).
      expect(() => native().setBlasThreads(threadLimit + 1)).toThrow(RangeError);
      expect(() => native().setBlasThreads(threadLimit + 1)).toThrow(`Expected an integer in [1, ${threadLimit}] for threads`);
    } finally {
      setBlasThreads(previous);
    }
  });
});

describe('error mapping', () => {
  it("maps the addon's error kinds to AbortError and NumericalError (carrying the best iterate), keeping the caller's stack", () => {
    const best = { Y: new Float64Array([1, 2]) };
    const numerical = mapNativeError(Object.assign(new Error('dgesdd did not converge'), { kind: 'numerical' }), 'Error\n    at caller (x.ts:1:1)', best);
    expect(numerical).toBeInstanceOf(NumericalError);
    expect(numerical.message).toBe('dgesdd did not converge');
    expect((numerical as NumericalError).best).toBe(best);
    expect(numerical.stack).toMatch(/at caller \(x\.ts:1:1\)/);
    const aborted = mapNativeError(Object.assign(new Error('The operation was aborted'), { kind: 'aborted' }));
    expect(aborted).toBeInstanceOf(AbortError);
    expect(aborted.name).toBe('AbortError');
    const range = new RangeError('Expected w in [0, 1]');
    expect(mapNativeError(range)).toBe(range); // argument errors pass through unchanged
  });
});

describe('the event loop stays responsive', () => {
  // Not under the sanitizers (npm run test:sanitize): the instrumented addon is several times slower.
  it.skipIf(process.env.NSA_FLOW_SANITIZE === '1')('a 5 ms interval keeps ticking while four long jobs run (max lag < 200 ms)', async () => {
    // Compute-heavy, data-light jobs (~1 s each: 8 matrices × 300 Newton–Schulz iterations on
    // 2000×20), so that the measurement is about work on the worker threads, not about submitting
    // large inputs (each submission copies its input on the JS thread: a memory copy of the data).
    const inputs = [1, 2, 3, 4].map((s) => batch(8, 2000, 20, s));
    const heavy = { type: 'newtonSchulz', nsIterations: 300 } as const;
    const lags: number[] = [];
    let last = performance.now();
    const timer = setInterval(() => {
      const now = performance.now();
      lags.push(now - last - 5);
      last = now;
    }, 5);
    const t0 = performance.now();
    await Promise.all(inputs.map((Y) => retractBatchAsync(Y, { ...heavy, onProgress: () => {} })));
    const wall = performance.now() - t0;
    clearInterval(timer);
    lags.sort((a, b) => a - b);
    const p99 = lags[Math.floor(0.99 * (lags.length - 1))]!;
    const max = lags[lags.length - 1]!;
    console.log(`timer lag with 4 jobs in flight over ${wall.toFixed(0)} ms: p99 ${p99.toFixed(2)} ms, max ${max.toFixed(2)} ms, ${lags.length} ticks`);
    // Generous bound: the work is on worker threads, so only scheduling noise delays the timer.
    expect(max).toBeLessThan(200);
    expect(lags.length).toBeGreaterThan(wall / 50); // it really kept ticking
  });
});

describe('resources', () => {
  it('does not leak across 300 async calls (RSS growth < 64 MB after GC)', async () => {
    const gc = (globalThis as { gc?: () => void }).gc;
    expect(gc).toBeTypeOf('function'); // vitest.config.ts passes --expose-gc
    // 640 KB in and out per call: leaking either would grow RSS by ≥ 190 MB over 300 calls.
    const small = batch(4, 2000, 10);
    for (let i = 0; i < 30; i++) await retractBatchAsync(small, longOptions); // warm up allocators
    gc?.();
    const before = process.memoryUsage().rss;
    for (let round = 0; round < 30; round++) {
      await Promise.all(Array.from({ length: 10 }, () => retractBatchAsync(small, { ...longOptions, onProgress: () => {} })));
    }
    gc?.();
    const grown = (process.memoryUsage().rss - before) / 2 ** 20;
    console.log(`RSS growth over 300 async calls: ${grown.toFixed(1)} MB`);
    expect(grown).toBeLessThan(64);
  });
});

describe('worker_threads', () => {
  const workerSource = `
    const { parentPort, workerData } = require('node:worker_threads');
    // The same build lib/native.ts loads (NSA_FLOW_ADDON: the sanitizer build).
    const binding = process.env.NSA_FLOW_ADDON ? require(process.env.NSA_FLOW_ADDON) : require(workerData.root + '/node_modules/node-gyp-build')(workerData.root);
    const Y = new Float64Array([1, 0, 0, 1, 0, 0]);
    const r = binding.retract(new Float64Array([1, 2, 3, 4, 5, 7]), 0, 3, 2, 'polar', 1, 5, 'svd');
    binding.retractAsync(new Float64Array([1, 2, 3, 4, 5, 7]), 0, 3, 2, 'polar', 1, 5, 'svd', binding.createCancelToken(), undefined, 50)
      .then((a) => parentPort.postMessage({ defect: binding.defect(Y, 3, 2), sync: Array.from(r.data), async: Array.from(a.data) }));
  `;
  const runWorker = (): Promise<{ defect: number; sync: number[]; async: number[] }> =>
    new Promise((resolve, reject) => {
      const w = new Worker(workerSource, { eval: true, workerData: { root: repoRoot } });
      w.once('message', (m) => {
        resolve(m);
        void w.terminate();
      });
      w.once('error', reject);
    });

  it('loads and computes inside a Worker, sync and async', async () => {
    const m = await runWorker();
    expect(m.defect).toBe(0); // orthogonal columns
    expect(m.async).toEqual(m.sync);
    expect(m.sync).toEqual(Array.from(retract({ rows: 3, cols: 2, data: new Float64Array([1, 2, 3, 4, 5, 7]) }, { type: 'polar', polarMethod: 'svd' }).data));
  });

  it('two Workers load it at the same time', async () => {
    const [a, b] = await Promise.all([runWorker(), runWorker()]);
    expect(a.sync).toEqual(b.sync);
  });
});
