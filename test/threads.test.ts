// The thread policy (lib/runtime.ts, docs/threads.md): one owner of "jobs side by side, threads per
// job". Batches and queue workers ask it for a scope and leave nothing changed when they end, throw or
// are aborted; jobs side by side get one thread each on this kind of machine, a lone job all of them;
// and a solver's result with T threads equals its 1-thread result to a stated tolerance.
import { mkdtempSync, rmSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { runBatch } from '../lib/batch/run.js';
import { enqueueBatch, runWorker } from '../lib/batch/queue.js';
import { getBlasThreads, getConcurrency, nsaFlowExplicit, nsaFlowExplicitSync, nsaFlowSync, setBlasThreads, setConcurrency, type Matrix } from '../lib/index.js';
import { native } from '../lib/native.js';
import { currentThreadPolicy, withThreadPolicy } from '../lib/runtime.js';
import { startRedis, type RedisServer } from './helpers/cli-redis.js';
import { dataFile, relativeError } from './helpers/shared.js';

/** Deterministic p×k Gaussian-like matrix. */
function gaussian(p: number, k: number, seed: number): Matrix {
  const data = new Float64Array(p * k);
  let s = seed >>> 0 || 1;
  const u = (): number => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return (s + 0.5) / 4294967296;
  };
  for (let i = 0; i < data.length; i++) data[i] = Math.sqrt(-2 * Math.log(u())) * Math.cos(2 * Math.PI * u());
  return { rows: p, cols: k, data };
}

/** Everything the policy may touch, to compare before and after. */
const snapshot = () => ({ concurrency: getConcurrency(), blasThreads: getBlasThreads(), native: native().blasInfo().threads, policy: currentThreadPolicy() });

const cores = availableParallelism();
const allThreads = Math.min(2, cores); // what the tests set with setBlasThreads(2), at most the cores the team may use
// 20000×20: above the team's work threshold (2·10⁵ doubles), so T threads really split the rows.
const Y0 = gaussian(20000, 20, 3);
const X0 = { ...Y0, data: Y0.data.map(Math.abs) };
const wine = dataFile('sklearn_small/wine_X.npy'); // 178 × 13

let saved: { threads: number; concurrency: number };
beforeAll(() => {
  saved = { threads: getBlasThreads(), concurrency: getConcurrency() };
  setBlasThreads(2);
  setConcurrency(1); // below what the scopes ask for, so that raising and restoring it are both seen
});
afterAll(() => {
  setBlasThreads(saved.threads);
  setConcurrency(saved.concurrency);
});

describe('withThreadPolicy', () => {
  it('gives jobs side by side one thread each (2 threads, 2 jobs) and a lone job all threads', async () => {
    const flow = () => nsaFlowExplicit(Y0, { X0, w: 0.5, maxIterations: 5, tolerance: 0 });
    const lone = await flow();
    expect(lone.settings.threadsUsed).toBe(allThreads);
    const before = snapshot();
    const [a, b] = await withThreadPolicy({ jobs: 2 }, async () => {
      expect(currentThreadPolicy()).toEqual({ jobs: 2, threadsPerJob: 1 });
      return Promise.all([flow(), flow()]);
    });
    expect([a!.settings.threadsUsed, b!.settings.threadsUsed]).toEqual([1, 1]);
    expect(snapshot()).toEqual(before);
    // A policy of one job per scope: that job gets all threads.
    const single = await withThreadPolicy({ jobs: 1 }, flow);
    expect(single.settings.threadsUsed).toBe(allThreads);
    // Outside any scope, two jobs at once (concurrency raised to 2): the second starts beside the
    // first and gets its fair share, 2 threads / 2 jobs = 1. The first was started alone (all
    // threads), but its native thread sizes its team when it begins, which may be after the second
    // lowered the count: 1 or all, never more.
    setConcurrency(2);
    try {
      const [c, d] = await Promise.all([flow(), flow()]);
      expect(d!.settings.threadsUsed).toBe(1);
      expect([1, allThreads]).toContain(c!.settings.threadsUsed);
    } finally {
      setConcurrency(1);
    }
  });

  it('ends when its function throws, and admits `jobs` jobs at once only inside the scope', async () => {
    const before = snapshot();
    await expect(
      withThreadPolicy({ jobs: 3, threadsPerJob: 1 }, async () => {
        expect(currentThreadPolicy()).toEqual({ jobs: 3, threadsPerJob: 1 });
        throw new Error('inside');
      }),
    ).rejects.toThrow(/^inside$/);
    expect(snapshot()).toEqual(before);
    expect(currentThreadPolicy()).toEqual({ jobs: 1, threadsPerJob: 2 });
  });

  it('refuses bad policies with the class and a message naming the field', async () => {
    const limit = native().blasInfo().threadLimit;
    const refuse = async (policy: unknown, cls: ErrorConstructor, message: string) => {
      const run = withThreadPolicy(policy as { jobs: number }, () => 1);
      await expect(run).rejects.toThrow(cls);
      await expect(run).rejects.toThrow(message);
    };
    await refuse({ jobs: 0 }, RangeError, 'Expected a positive integer for policy.jobs but received 0');
    await refuse({ jobs: 1.5 }, TypeError, 'Expected a positive integer for policy.jobs but received 1.5');
    await refuse({}, TypeError, 'Expected a positive integer for policy.jobs but received undefined');
    await refuse({ jobs: 2, threadsPerJob: limit + 1 }, RangeError, `Expected an integer in [1, ${limit}] for policy.threadsPerJob but received ${limit + 1}`);
    await refuse({ jobs: 2, threadPerJob: 1 }, TypeError, "Unknown key 'threadPerJob' in policy (did you mean threadsPerJob?); valid keys are: jobs, threadsPerJob");
    await refuse(2, TypeError, 'Expected a thread policy {jobs, threadsPerJob} for policy but received 2');
  });
});

describe('batches leave the policy as it was', () => {
  const grid = { method: 'retract', inputs: [wine], options: { type: ['polar', 'softPolar', 'newtonSchulz'], w: [0.25, 0.75] } };
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'nsa-threads-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('after a batch of 2 jobs at once, one that throws from onProgress, and one that is aborted', async () => {
    const before = snapshot();
    const summary = await runBatch(grid, { outDir: join(dir, 'ok'), concurrency: 2 });
    expect(summary).toMatchObject({ total: 6, done: 6 });
    expect(snapshot()).toEqual(before);

    await expect(
      runBatch(grid, {
        outDir: join(dir, 'throws'),
        concurrency: 2,
        onProgress: (e) => {
          if (e.type === 'end') throw new Error('listener failed');
        },
      }),
    ).rejects.toThrow(/^listener failed$/);
    expect(snapshot()).toEqual(before);

    const controller = new AbortController();
    controller.abort();
    await expect(runBatch(grid, { outDir: join(dir, 'aborted'), concurrency: 2, signal: controller.signal })).rejects.toThrow(/aborted/i);
    expect(snapshot()).toEqual(before);
  });
});

describe('queue workers leave the policy as it was', () => {
  let redis: RedisServer;
  let dir: string;
  beforeAll(async () => {
    redis = await startRedis();
    dir = mkdtempSync(join(tmpdir(), 'nsa-threads-queue-'));
  });
  afterAll(async () => {
    await redis?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('after a worker with 2 jobs at once ends (idle) and after one that is aborted', async () => {
    const before = snapshot();
    const outDir = join(dir, 'out');
    const queueName = 'threads-test';
    const jobs = { method: 'retract', inputs: [wine], options: { type: ['polar', 'softPolar'], w: [0.25, 0.75] } };
    await enqueueBatch(jobs, { url: redis.url, queueName, outDir, wait: false });
    const { processed } = await runWorker({ url: redis.url, queueName, outDir, inputRoots: [join(wine, '..')], concurrency: 2, exitWhenIdleMs: 300 });
    expect(processed).toBe(4);
    expect(snapshot()).toEqual(before);

    const controller = new AbortController();
    const worker = runWorker({ url: redis.url, queueName, outDir, inputRoots: [join(wine, '..')], concurrency: 2, signal: controller.signal });
    setTimeout(() => controller.abort(), 200);
    await worker;
    expect(snapshot()).toEqual(before);
  });
});

describe('T threads give the 1-thread result', () => {
  // Only the order of the team's partial sums (row blocks) differs between thread counts; each
  // iteration then differs by rounding (~1e-16 relative), amplified along 30 iterations: 1e-10 leaves
  // 10⁶ of room and still catches any pass that skipped or double-counted a row block (an O(1) change).
  it('explicit NSA-Flow, 20000×20, 30 iterations', () => {
    const run = (threads: number) => nsaFlowExplicitSync(Y0, { X0, w: 0.5, maxIterations: 30, tolerance: 0, threads });
    const one = run(1);
    const two = run(2);
    expect(one.settings.threadsUsed).toBe(1);
    expect(two.settings.threadsUsed).toBe(2);
    expect(two.iterations).toBe(one.iterations);
    expect(relativeError(two.Y.data, one.Y.data)).toBeLessThan(1e-10);
  });

  // SPG is less forgiving: its Barzilai–Borwein step is a ratio of inner products of differences of
  // iterates and gradients, so the threaded BLAS's (and the team's) rounding differences are
  // amplified at each step; over 30 iterations they reach ~2e-9 relative here. 1e-7 still fails any
  // pass that skipped or double-counted rows, and the energies agree to 1e-10 relative.
  it('nsaFlow (exact-gradient solver, spg), 20000×20, 30 iterations', () => {
    const run = (threads: number) => {
      setBlasThreads(threads);
      try {
        return nsaFlowSync(Y0, { X0, w: 0.5, maxIterations: 30, certificateTolerance: 0, plateauTolerance: 0 });
      } finally {
        setBlasThreads(2);
      }
    };
    const one = run(1);
    const two = run(2);
    expect(two.iterations).toBe(one.iterations);
    expect(relativeError(two.Y.data, one.Y.data)).toBeLessThan(1e-7);
    expect(Math.abs(two.bestEnergy - one.bestEnergy)).toBeLessThan(1e-10 * Math.abs(one.bestEnergy));
  });
});
