// Environment teardown: terminating a worker_threads Worker (or exiting the process) in the middle of
// native solves never aborts the process, terminate() resolves while the solves would still run for
// minutes, jobs are registered per environment, and a soak of throwing callbacks and aborts after
// all that does not grow memory.
import { spawn } from 'node:child_process';
import { Worker } from 'node:worker_threads';

import { afterEach, describe, expect, it } from 'vitest';

import { AbortError, retractBatch, retractBatchAsync, setConcurrency } from '../lib/index.js';
import { native } from '../lib/native.js';
import { uniformTensor } from './helpers/long-jobs.js';
import { repoRoot } from './helpers/shared.js';

/** Runs test/helpers/teardown-child.ts in its own process, so that an abort is seen as a signal. */
function runChild(arg: string): Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'test/helpers/teardown-child.ts', arg], { cwd: repoRoot });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.once('error', reject);
    child.once('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
}

/** What a torn-down environment used to print before the process died. */
const fatalOutput = /terminate called|Napi::Error|FATAL ERROR|Aborted|Segmentation|uncaught/i;

afterEach(() => {
  setConcurrency(2);
});

describe('terminating a Worker mid-solve', () => {
  it('20 Workers in a row, terminated during long solves of nmf, stratifiedNmf, retractBatchAsync, stratifiedNtf and nsaFlow (or amid short jobs): the process survives and every terminate() resolves', async () => {
    const r = await runChild('20');
    expect(r.stderr).not.toMatch(fatalOutput);
    expect(r.signal).toBeNull();
    expect(r.code).toBe(0);
    const summary = JSON.parse(r.stdout.trim().split('\n').at(-1)!) as {
      rounds: number;
      terminated: number;
      exitCodes: number[];
      readyFamilies: Record<string, number>;
      unexpected: unknown[];
    };
    expect(summary.rounds).toBe(20);
    // terminate() resolved every time, with 1 (the exit code of a terminated Worker).
    expect(summary.exitCodes).toEqual(Array.from({ length: 20 }, () => 1));
    expect(summary.terminated).toBe(20);
    // Rounds 0, 4, …, 16 (5) terminate once all five families report progress; rounds 2, 6, …, 18
    // (5) once nmf runs while four jobs wait in the JS queue; rounds 1, 5, …, 17 (5) right after
    // submitting; rounds 3, 7, …, 19 (5) amid a churn of short jobs completing and throwing.
    expect(summary.readyFamilies).toEqual({ nmf: 10, stratifiedNmf: 5, retractBatchAsync: 5, stratifiedNtf: 5, nsaFlow: 5 });
    // No solve finished or failed before it was terminated (each would run for minutes).
    expect(summary.unexpected).toEqual([]);
  });

  it('process.exit(0) on the main thread during five running solves exits with 0, not a signal (8 times)', async () => {
    // exit() runs no cleanup hook: before the addon's exit handler cancelled and awaited its job
    // threads, 16 of 25 such exits ended in SIGSEGV (static objects and OpenBLAS torn down under a
    // running kernel). Eight runs make a regression all but certain to show.
    for (let i = 0; i < 8; i++) {
      const r = await runChild('exit');
      expect(r.stderr).not.toMatch(fatalOutput);
      expect({ run: i, signal: r.signal, code: r.code }).toEqual({ run: i, signal: null, code: 0 });
    }
  });

  it("a Worker's teardown cancels only its own jobs: a job of the main thread running meanwhile resolves to the sync result", async () => {
    const Y = uniformTensor([400, 60, 8], 11);
    const expected = retractBatch({ shape: Y.shape, data: Y.data.slice() }, { type: 'polar', polarMethod: 'svd' });
    const before = native().jobStats();
    const mainJob = retractBatchAsync(Y, { type: 'polar', polarMethod: 'svd' });

    // The Worker starts a raw job that would run for minutes, reports once it runs, and is terminated.
    const source = `
      const { parentPort, workerData } = require('node:worker_threads');
      const b = require(workerData.root + '/node_modules/node-gyp-build')(workerData.root);
      const Y = new Float64Array(2048 * 100 * 10).fill(0.5);
      let told = false;
      b.retractAsync(Y, 2048, 100, 10, 'newtonSchulz', 1, 10000, 'svd', b.createCancelToken(), () => {
        if (!told) parentPort.postMessage({ live: b.jobStats().live });
        told = true;
      }, 0);
    `;
    const w = new Worker(source, { eval: true, workerData: { root: repoRoot } });
    const message = await new Promise<{ live: number }>((resolve, reject) => {
      w.once('message', resolve);
      w.once('error', reject);
    });
    expect(message.live).toBe(1); // the Worker's own registry holds its one job
    expect(await w.terminate()).toBe(1);

    const result = await mainJob;
    const bytes = (a: Float64Array): Buffer => Buffer.from(a.buffer, a.byteOffset, a.byteLength);
    expect(Buffer.compare(bytes(result.data), bytes(expected.data))).toBe(0); // bit for bit
    const after = native().jobStats();
    expect(after.live).toBe(0);
    expect(after.started - before.started).toBe(1); // the Worker's job never counted here
    expect(after.settled - before.settled).toBe(1);
  });
});

describe('resources after teardown', () => {
  it('30 Workers terminated with three 12.8 MB jobs running each grow RSS by < 64 MB after GC', async () => {
    const gc = (globalThis as { gc?: () => void }).gc!;
    // Each job copies its 12.8 MB input: leaking what a terminated job holds would grow RSS by ≥ 1.1 GB.
    // Many small matrices, so that the first progress record comes at once.
    const source = `
      const { parentPort, workerData } = require('node:worker_threads');
      const b = require(workerData.root + '/node_modules/node-gyp-build')(workerData.root);
      const Y = new Float64Array(20000 * 20 * 4).fill(0.5);
      let told = false;
      for (let i = 0; i < 3; i++) {
        b.retractAsync(Y, 20000, 20, 4, 'newtonSchulz', 1, 1000, 'svd', b.createCancelToken(), () => {
          if (!told) parentPort.postMessage('running');
          told = true;
        }, 0);
      }
    `;
    const round = async (): Promise<number> => {
      const w = new Worker(source, { eval: true, workerData: { root: repoRoot } });
      await new Promise((resolve, reject) => {
        w.once('message', resolve);
        w.once('error', reject);
      });
      return w.terminate();
    };
    for (let i = 0; i < 10; i++) await round(); // warm up
    gc();
    const before = process.memoryUsage().rss;
    const codes: number[] = [];
    for (let i = 0; i < 30; i++) codes.push(await round());
    gc();
    const grown = (process.memoryUsage().rss - before) / 2 ** 20;
    console.log(`RSS growth over 30 terminated Workers with 3 running jobs each: ${grown.toFixed(1)} MB`);
    expect(codes).toEqual(Array.from({ length: 30 }, () => 1));
    // Not under the sanitizers: ASan keeps freed memory in quarantine (up to 256 MB), so RSS says nothing there.
    if (process.env.NSA_FLOW_SANITIZE !== '1') expect(grown).toBeLessThan(64);
  });

  it('300 async calls with throwing callbacks, aborts and plain runs leave no live job and grow RSS by < 64 MB after GC', async () => {
    const gc = (globalThis as { gc?: () => void }).gc;
    expect(gc).toBeTypeOf('function'); // vitest.config.ts passes --expose-gc
    // 640 KB in and out per call: leaking either would grow RSS by ≥ 190 MB over 300 calls.
    const small = uniformTensor([4, 2000, 10], 12);
    const options = { type: 'polar', polarMethod: 'svd', progressIntervalMs: 0 } as const;
    const thrownValues: unknown[] = [42, 'x', null, undefined, new Error('boom')];
    const call = (i: number): Promise<unknown> => {
      switch (i % 3) {
        case 0: {
          const value = thrownValues[i % thrownValues.length];
          return retractBatchAsync(small, {
            ...options,
            onProgress: () => {
              throw value;
            },
          }).then(
            () => Promise.reject(new Error('resolved although onProgress threw')),
            (e: unknown) => (e === value ? 'threw' : Promise.reject(e)),
          );
        }
        case 1: {
          const c = new AbortController();
          return retractBatchAsync(small, { ...options, signal: c.signal, onProgress: () => c.abort() }).then(
            () => Promise.reject(new Error('resolved although aborted')),
            (e: unknown) => (e instanceof AbortError ? 'aborted' : Promise.reject(e)),
          );
        }
        default:
          return retractBatchAsync(small, { ...options, onProgress: () => {} }).then(() => 'ok');
      }
    };
    // Warm up allocators (malloc arenas and glibc's cache of thread stacks settle within ~100 calls).
    for (let round = 0; round < 10; round++) await Promise.all(Array.from({ length: 10 }, (_, j) => call(round * 10 + j)));
    gc?.();
    const before = process.memoryUsage().rss;
    const outcomes: Record<string, number> = {};
    for (let round = 0; round < 30; round++) {
      const settled = await Promise.all(Array.from({ length: 10 }, (_, j) => call(round * 10 + j)));
      for (const s of settled as string[]) outcomes[s] = (outcomes[s] ?? 0) + 1;
    }
    gc?.();
    const grown = (process.memoryUsage().rss - before) / 2 ** 20;
    console.log(`RSS growth over 300 async calls with throwing callbacks and aborts: ${grown.toFixed(1)} MB`);
    expect(outcomes).toEqual({ threw: 100, aborted: 100, ok: 100 });
    expect(native().jobStats().live).toBe(0);
    // Not under the sanitizers: ASan keeps freed memory in quarantine (up to 256 MB), so RSS says nothing there.
    if (process.env.NSA_FLOW_SANITIZE !== '1') expect(grown).toBeLessThan(64);
  });
});
