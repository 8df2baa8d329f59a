/**
 * The async runtime shared by every long operation.
 *
 * Where jobs run: each native job runs on a thread of libuv's pool (the same pool Node uses for fs,
 * dns and zlib). At most `concurrency` jobs run at once (default: min(cores, poolSize − 1), at least
 * 1, where poolSize is UV_THREADPOOL_SIZE or 4), so at least one pool thread always stays free for
 * the host's file system work; further jobs wait in a FIFO queue here, in JS.
 *
 * BLAS threads: OpenBLAS 0.3.21's thread count is process-global. A job that starts while no other
 * job runs gets `blasThreads` threads (default: all cores); as soon as a second job starts, BLAS is
 * switched to one thread, so concurrent jobs parallelize across jobs instead of oversubscribing the
 * cores. The count is raised again only when a job starts alone (never under a running call).
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

const poolSize = Number(process.env.UV_THREADPOOL_SIZE) > 0 ? Number(process.env.UV_THREADPOOL_SIZE) : 4;
let concurrency = Math.max(1, Math.min(availableParallelism(), poolSize - 1));
let blasThreads = availableParallelism();
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
 * Sets the number of BLAS threads a job running alone (and every sync call) may use. Concurrent jobs
 * always run BLAS single-threaded. Returns the thread count now in effect.
 */
export function setBlasThreads(n: number): number {
  expectShapeInteger(n, 'threads');
  if (n > 1024) throw new RangeError(`Expected an integer in [1, 1024] for threads but received ${n}`);
  blasThreads = n;
  return running === 0 ? native().setBlasThreads(n) : native().blasInfo().threads;
}

export function getBlasThreads(): number {
  return blasThreads;
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
  if (callerStack) mapped.stack = `${mapped.name}: ${mapped.message}\n${callerStack.split('\n').slice(1).join('\n')}`;
  return mapped;
}

/** Runs a sync native call, mapping its errors. */
export function callSync<T>(fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    throw mapNativeError(err);
  }
}

/**
 * Runs one native job: waits for a slot, applies the BLAS policy, starts it with a fresh cancel
 * token, forwards progress, wires the AbortSignal (listener removed in every outcome) and maps errors.
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
    const onAbort = (): void => {
      if (started) {
        native().cancel(token); // the job rejects with kind 'aborted' at its next check
      } else {
        const i = queue.indexOf(begin);
        if (i >= 0) queue.splice(i, 1);
        finish();
        reject(new AbortError());
      }
    };
    const finish = (): void => {
      if (settled) return;
      settled = true;
      signal?.removeEventListener('abort', onAbort);
    };
    const progress =
      onProgress === undefined
        ? undefined
        : (r: RawProgress): void => {
            onProgress(mapProgress ? mapProgress(r) : (r as unknown as P));
          };

    function begin(): void {
      started = true;
      running++;
      if (running === 1) native().setBlasThreads(blasThreads);
      else native().setBlasThreads(1);
      let promise: Promise<Raw>;
      try {
        promise = start(inputs, token, progress, intervalMs);
      } catch (err) {
        running--;
        finish();
        drain();
        reject(mapNativeError(err, callerStack));
        return;
      }
      promise.then(
        (value) => {
          running--;
          finish();
          drain();
          resolve(value);
        },
        (err: unknown) => {
          running--;
          finish();
          drain();
          reject(mapNativeError(err, callerStack));
        },
      );
    }

    signal?.addEventListener('abort', onAbort, { once: true });
    queue.push(begin);
    drain();
    if (!started) inputs = inputs.map((a) => a.slice());
  });
}
