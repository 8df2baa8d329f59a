/**
 * The async runtime shared by every long operation.
 *
 * Where jobs run: each native job runs on a thread of its own, started by the addon (not on libuv's
 * pool, so fs, dns and zlib never wait behind a solve, and so that a worker_threads Worker being
 * terminated can cancel its jobs at once: see native/addon/async_job.cpp). At most `concurrency`
 * jobs run at once (default: the number of cores); further jobs wait in a FIFO queue here, in JS.
 *
 * BLAS threads: OpenBLAS 0.3.21's thread count is process-global. A job that starts while no other
 * job runs gets `blasThreads` threads (default: all cores, at most the build's MAX_THREADS); as soon
 * as a second job starts, BLAS is switched to one thread, so concurrent jobs parallelize across jobs
 * instead of oversubscribing the cores. The count is raised again only when a job starts alone
 * (never under a running call).
 *
 * Settling: a job's Promise settles exactly once, after its native work has stopped. It rejects
 * with AbortError once its signal aborts, with exactly what onProgress threw (any value: an Error,
 * 42, 'x', null, undefined) once the callback throws (the job is cancelled and the callback is not
 * called again), whichever came first; otherwise with the job's own outcome.
 */
import { availableParallelism } from 'node:os';

import { AbortError, NumericalError } from './errors.js';
import { native, type CancelToken, type RawProgress } from './native.js';
import { expectShapeInteger } from './validate.js';

export interface AsyncOptions<P> {
  /** Cancels the job: the Promise rejects with AbortError and native memory is freed. */
  signal?: AbortSignal;
  /** Called on the JS thread with progress records, at most once per `progressIntervalMs`. */
  onProgress?: (progress: P) => void;
  /** Minimum time between two onProgress calls (default 50 ms). */
  progressIntervalMs?: number;
}

let concurrency = availableParallelism();
/** Set by setBlasThreads; until then all cores, up to what the OpenBLAS build supports. */
let blasThreads: number | undefined;
let running = 0;
const queue: Array<() => void> = [];

/** Sets how many native jobs may run at once (the rest queue). Returns the previous value. */
export function setConcurrency(n: number): number {
  expectShapeInteger(n, 'concurrency');
  const previous = concurrency;
  concurrency = n;
  drain();
  return previous;
}

export function getConcurrency(): number {
  return concurrency;
}

/**
 * Sets the number of BLAS threads a job running alone (and every sync call) may use, at most what
 * this OpenBLAS build supports (its MAX_THREADS, e.g. 64). Concurrent jobs always run BLAS
 * single-threaded. Returns the thread count now in effect.
 */
export function setBlasThreads(n: number): number {
  expectShapeInteger(n, 'threads');
  const limit = native().blasInfo().threadLimit;
  if (n > limit) {
    throw new RangeError(`Expected an integer in [1, ${limit}] for threads but received ${n} (${limit} is the most this OpenBLAS build supports)`);
  }
  blasThreads = n;
  return running === 0 ? native().setBlasThreads(n) : native().blasInfo().threads;
}

export function getBlasThreads(): number {
  return (blasThreads ??= Math.min(availableParallelism(), native().blasInfo().threadLimit));
}

function drain(): void {
  while (running < concurrency && queue.length > 0) queue.shift()!();
}

/** Turns an error from the addon into the project's error classes, with the caller's stack. */
export function mapNativeError(err: unknown, callerStack?: string, best?: unknown): Error {
  if (!(err instanceof Error)) return new Error(String(err));
  const kind = (err as Error & { kind?: string }).kind;
  let mapped: Error = err;
  if (kind === 'aborted') mapped = new AbortError();
  else if (kind === 'numerical') mapped = new NumericalError(err.message, { best });
  return callerStack ? withCallerStack(mapped, callerStack) : mapped;
}

/** Runs a sync native call, mapping its errors. */
export function callSync<T>(fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    throw mapNativeError(err);
  }
}

/** `err` with the stack of the caller that started the job (the native stack says nothing). */
function withCallerStack(err: Error, callerStack: string | undefined): Error {
  if (callerStack) err.stack = `${err.name}: ${err.message}\n${callerStack.split('\n').slice(1).join('\n')}`;
  return err;
}

/**
 * Runs one native job: waits for a slot, applies the BLAS policy, starts it with a fresh cancel
 * token, forwards progress, wires the AbortSignal (listener removed in every outcome) and maps errors.
 * See the header for how it settles.
 *
 * Inputs are protected from the caller: the addon copies `inputs` when a job starts, and a job that
 * has to wait for a slot gets JS copies taken now, so mutating or transferring the caller's buffers
 * after this call returns cannot change the result.
 */
export function runJob<Raw, P = RawProgress>(
  inputs: readonly Float64Array[],
  start: (
    inputs: readonly Float64Array[],
    token: CancelToken,
    onProgress: ((r: RawProgress) => void) | undefined,
    intervalMs: number,
  ) => Promise<Raw>,
  options: AsyncOptions<P>,
  mapProgress?: (r: RawProgress) => P,
): Promise<Raw> {
  const callerStack = new Error().stack;
  const { signal, onProgress } = options;
  const intervalMs = options.progressIntervalMs ?? 50;
  if (signal?.aborted) return Promise.reject(new AbortError());

  return new Promise<Raw>((resolve, reject) => {
    const token = native().createCancelToken();
    let started = false;
    let settled = false;
    // Why a started job was stopped from JS, first cause only; it decides the rejection even if the
    // native job finished meanwhile (a throw in the last progress call before completion).
    let stopped: { reason: unknown } | undefined;
    const settle = (ok: boolean, value: unknown): void => {
      if (settled) return;
      settled = true;
      signal?.removeEventListener('abort', onAbort);
      if (ok) resolve(value as Raw);
      else reject(value);
    };
    const stop = (reason: unknown): void => {
      stopped ??= { reason };
      native().cancel(token); // the native job stops at its next iteration; its Promise then settles
    };
    const onAbort = (): void => {
      if (started) {
        stop(withCallerStack(new AbortError(), callerStack));
      } else {
        const i = queue.indexOf(begin);
        if (i >= 0) queue.splice(i, 1);
        settle(false, new AbortError());
      }
    };
    // Whatever onProgress (or mapProgress) throws is caught here, so that it never reaches the addon
    // as an uncaught exception: it stops the job, and the callback is not called again.
    const progress =
      onProgress === undefined
        ? undefined
        : (r: RawProgress): void => {
            if (stopped !== undefined || settled) return;
            try {
              onProgress(mapProgress ? mapProgress(r) : (r as unknown as P));
            } catch (thrown) {
              stop(thrown);
            }
          };

    function begin(): void {
      started = true;
      running++;
      if (running === 1) native().setBlasThreads(getBlasThreads());
      else native().setBlasThreads(1);
      let promise: Promise<Raw>;
      try {
        promise = start(inputs, token, progress, intervalMs);
      } catch (err) {
        running--;
        settle(false, mapNativeError(err, callerStack));
        drain();
        return;
      }
      promise.then(
        (value) => {
          running--;
          if (stopped) settle(false, stopped.reason);
          else settle(true, value);
          drain();
        },
        (err: unknown) => {
          running--;
          settle(false, stopped ? stopped.reason : mapNativeError(err, callerStack));
          drain();
        },
      );
    }

    signal?.addEventListener('abort', onAbort, { once: true });
    queue.push(begin);
    drain();
    if (!started) inputs = inputs.map((a) => a.slice());
  });
}
