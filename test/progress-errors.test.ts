// Whatever onProgress throws (an Error, 42, 'x', null, undefined) cancels the job and rejects its
// Promise with exactly that value; the callback is not called again, the job stops early, and the
// Promise settles once, also when an abort or the job's own completion come at the same time.
import { getEventListeners } from 'node:events';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { AbortError, retractBatchAsync, setConcurrency } from '../lib/index.js';
import { native, type RawProgress } from '../lib/native.js';
import { runJob } from '../lib/runtime.js';
import { longSolves, uniformTensor } from './helpers/long-jobs.js';

const thrownValues: Array<[string, unknown]> = [
  ['42', 42],
  ["'x'", 'x'],
  ['null', null],
  ['undefined', undefined],
  ['an Error', new Error('progress handler failed')],
  ['an object', { reason: 'not an Error' }],
];

// Anything that reaches the host as an uncaught exception or unhandled rejection is a failure.
const escaped: unknown[] = [];
const onEscape = (e: unknown): void => {
  escaped.push(e);
};
beforeAll(() => {
  process.on('uncaughtException', onEscape);
  process.on('unhandledRejection', onEscape);
});
afterAll(() => {
  process.off('uncaughtException', onEscape);
  process.off('unhandledRejection', onEscape);
  expect(escaped).toEqual([]);
  setConcurrency(2);
});

describe('onProgress that throws, through the public API', () => {
  // The families whose kernels report every iteration, so that jobStats().lastIterations is the
  // iteration the job had reached when it stopped.
  const families = ['nmf', 'stratifiedNmf', 'retractBatchAsync', 'stratifiedNtf', 'nsaFlow', 'ntf'] as const;
  for (const family of families) {
    it.each(thrownValues)(`${family}: throwing %s rejects with exactly that value and stops the job`, async (_, value) => {
      const { total, run } = longSolves[family]!;
      const before = native().jobStats();
      let calls = 0;
      const job = run({
        progressIntervalMs: 0,
        onProgress: () => {
          calls++;
          throw value;
        },
      });
      await expect(job).rejects.toBe(value);
      expect(calls).toBe(1); // never called again after the throw
      const after = native().jobStats();
      expect(after.settled - before.settled).toBe(1);
      expect(after.live).toBe(0); // the job's thread has ended when its Promise settles
      expect(after.lastTotal).toBe(total);
      expect(after.lastIterations).toBeLessThan(total); // stopped early (it would run for minutes)
    });
  }

  it.each(thrownValues)('nsaFlowExplicit: throwing %s rejects with exactly that value', async (_, value) => {
    let calls = 0;
    const job = longSolves.nsaFlowExplicit!.run({
      progressIntervalMs: 0,
      onProgress: () => {
        calls++;
        throw value;
      },
    });
    await expect(job).rejects.toBe(value);
    expect(calls).toBe(1);
    expect(native().jobStats().live).toBe(0);
  });
});

describe('onProgress that throws, through the raw binding', () => {
  // The addon handles the throw itself when called directly (no JS wrapper catches it first).
  it.each(thrownValues)('retractAsync (raw): throwing %s rejects with exactly that value and stops the job', async (_, value) => {
    const Y = uniformTensor([2048, 100, 10], 5).data;
    let calls = 0;
    const before = native().jobStats();
    const job = native().retractAsync(Y, 2048, 100, 10, 'newtonSchulz', 1, 10_000, 'svd', native().createCancelToken(), () => {
      calls++;
      throw value;
    }, 0);
    await expect(job).rejects.toBe(value);
    expect(calls).toBe(1);
    const after = native().jobStats();
    expect(after.settled - before.settled).toBe(1);
    expect(after.lastTotal).toBe(2048);
    expect(after.lastIterations).toBeLessThan(2048);
  });

  it('a cancel followed by a throw in the same callback rejects once, with the thrown value', async () => {
    const token = native().createCancelToken();
    let calls = 0;
    const job = native().retractAsync(uniformTensor([2048, 100, 10], 5).data, 2048, 100, 10, 'newtonSchulz', 1, 10_000, 'svd', token, () => {
      calls++;
      native().cancel(token);
      throw 42;
    }, 0);
    await expect(job).rejects.toBe(42);
    expect(calls).toBe(1);
  });
});

describe('runJob wraps onProgress', () => {
  it.each(thrownValues)('a mapProgress that throws %s behaves as a throwing onProgress', async (_, value) => {
    let userCalls = 0;
    let mapCalls = 0;
    const Y = uniformTensor([2048, 100, 10], 5);
    const job = runJob<unknown, number>(
      [Y.data],
      ([data], token, onProgress, interval) =>
        native().retractAsync(data!, 2048, 100, 10, 'newtonSchulz', 1, 10_000, 'svd', token, onProgress, interval),
      { progressIntervalMs: 0, onProgress: () => userCalls++ },
      (_r: RawProgress) => {
        mapCalls++;
        throw value;
      },
    );
    await expect(job).rejects.toBe(value);
    expect(mapCalls).toBe(1);
    expect(userCalls).toBe(0);
    expect(native().jobStats().lastIterations).toBeLessThan(2048);
  });
});

describe('settling exactly once', () => {
  it('an abort and then a throw in the same callback: rejects once, with AbortError (the first cause), listener removed', async () => {
    const controller = new AbortController();
    let calls = 0;
    const outcomes: unknown[] = [];
    const job = longSolves.nmf!.run({
      signal: controller.signal,
      progressIntervalMs: 0,
      onProgress: () => {
        calls++;
        controller.abort();
        throw 42;
      },
    });
    job.then(
      (v) => outcomes.push(['resolved', v]),
      (e) => outcomes.push(['rejected', e]),
    );
    await expect(job).rejects.toBeInstanceOf(AbortError);
    await new Promise((r) => setTimeout(r, 0));
    expect(outcomes.length).toBe(1);
    expect(calls).toBe(1);
    expect(getEventListeners(controller.signal, 'abort').length).toBe(0);
    expect(native().jobStats().lastIterations).toBeLessThan(1_000_000);
  });

  it('a throw and then an abort: rejects with the thrown value, and the later abort changes nothing', async () => {
    const controller = new AbortController();
    let calls = 0;
    const job = longSolves.retractBatchAsync!.run({
      signal: controller.signal,
      progressIntervalMs: 0,
      onProgress: () => {
        calls++;
        queueMicrotask(() => controller.abort());
        throw 'x';
      },
    });
    await expect(job).rejects.toBe('x');
    expect(calls).toBe(1);
    expect(getEventListeners(controller.signal, 'abort').length).toBe(0);
  });

  it('a throw in the last progress call, when the job has already finished its work, still rejects with that value', async () => {
    // 3 small matrices: the callback throws on the record of iteration 3, when the kernel has no
    // iteration left to cancel and completes normally.
    const seen: number[] = [];
    const job = retractBatchAsync(uniformTensor([3, 20, 4], 13), {
      type: 'polar',
      polarMethod: 'svd',
      progressIntervalMs: 0,
      onProgress: (p) => {
        seen.push(p.iteration);
        if (p.iteration === p.total) throw 'after the last iteration';
      },
    });
    await expect(job).rejects.toBe('after the last iteration');
    expect(seen.at(-1)).toBe(3); // the last record is always delivered (records coalesce, the latest wins)
    const stats = native().jobStats();
    expect(stats.lastIterations).toBe(3); // the job had run to its end
    expect(stats.lastTotal).toBe(3);

    // The same through the raw binding.
    const raw = native().retractAsync(uniformTensor([3, 20, 4], 13).data, 3, 20, 4, 'polar', 1, 5, 'svd', native().createCancelToken(), (p: RawProgress) => {
      if (p.iteration === p.total) throw 7;
    }, 0);
    await expect(raw).rejects.toBe(7);
  });

  it('a job waiting in the JS queue whose callback would throw never starts when aborted, and the running one still completes', async () => {
    setConcurrency(1);
    const first = retractBatchAsync(uniformTensor([200, 60, 8], 14), { type: 'polar', polarMethod: 'svd' });
    const c = new AbortController();
    let calls = 0;
    const queued = retractBatchAsync(uniformTensor([200, 60, 8], 15), {
      type: 'polar',
      polarMethod: 'svd',
      signal: c.signal,
      onProgress: () => {
        calls++;
        throw 42;
      },
    });
    c.abort();
    await expect(queued).rejects.toBeInstanceOf(AbortError);
    expect((await first).data.length).toBe(200 * 60 * 8);
    expect(calls).toBe(0);
  });
});
