/**
 * The async runtime shared by every long operation, and the ONE owner of the thread policy.
 *
 * Where jobs run: each native job runs on a thread of its own, started by the addon (not on libuv's
 * pool, so fs, dns and zlib never wait behind a solve, and so that a worker_threads Worker being
 * terminated can cancel its jobs at once: see native/addon/async_job.cpp). At most
 * `effectiveConcurrency()` jobs run at once; further jobs wait in a FIFO queue here, in JS.
 *
 * The thread policy (the rule; docs/threads.md tells it to users). A policy is {jobs, threadsPerJob}:
 * how many jobs may run side by side, and how many threads each gets — BLAS threads and, through
 * native/kernels/thread_team.hpp (teamThreads(0, …) reads the BLAS count when a job starts), the
 * solver's own thread team. Outside any scope the policy is {jobs: getConcurrency(), threadsPerJob:
 * getBlasThreads()}; a batch or queue worker asks for its own with `withThreadPolicy`, which holds only
 * while its function runs (nothing global stays changed when it returns or throws). A job's thread
 * count is fixed when it starts: a job starting while no other job runs gets its policy's
 * threadsPerJob; a job starting beside others gets at most its policy's threadsPerJob and its fair
 * share of getBlasThreads() among the jobs now running (so two jobs on two cores get one thread
 * each). OpenBLAS's count is process-global, so it is only ever lowered while another job runs (never
 * raised under a running call), and it returns to getBlasThreads() once no job runs, for sync calls.
 *
 * Small jobs (the one rule for every solver; docs/threads.md, "Small jobs"): a job or sync call whose
 * largest product per iteration is below getSmallJobFlops() floating-point operations runs with one
 * thread (BLAS and team), whatever its policy says. Each solver's wrapper passes that size
 * (productFlops) to runJob or callSync; a call that passes none is never treated as small.
 *
 * Settling: a job's Promise settles exactly once, after its native work has stopped. It rejects
 * with AbortError once its signal aborts, with exactly what onProgress threw (any value: an Error,
 * 42, 'x', null, undefined) once the callback throws (the job is cancelled and the callback is not
 * called again), whichever came first; otherwise with the job's own outcome.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { availableParallelism } from 'node:os';

import { AbortError, NumericalError } from './errors.js';
import { native, type CancelToken, type RawProgress } from './native.js';
import { readObject } from './cli/check.js';
import { describeValue, expectShapeInteger } from './validate.js';

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

/** How many jobs may run side by side, and how many threads (BLAS and solver team) each one gets. */
export interface ThreadPolicy {
  readonly jobs: number;
  readonly threadsPerJob: number;
}

/** The policies asked for by scopes now open (a batch, a queue worker), and the scope a job runs in. */
const openPolicies = new Set<ThreadPolicy>();
const policyScope = new AsyncLocalStorage<ThreadPolicy>();

/**
 * Sets how many native jobs may run at once outside any batch or worker scope (the rest queue).
 * Returns the previous value.
 */
export function setConcurrency(n: number): number {
  expectShapeInteger(n, 'concurrency');
  const previous = concurrency;
  concurrency = n;
  drain();
  return previous;
}

/** The bound set by setConcurrency (a batch's own `concurrency` does not change it). */
export function getConcurrency(): number {
  return concurrency;
}

/**
 * Sets the number of threads a job running alone (and every sync call) may use, at most what this
 * OpenBLAS build supports (its MAX_THREADS, e.g. 64). Jobs running side by side share them (see the
 * header). Returns the thread count now in effect.
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

/** The thread count set by setBlasThreads (default: all cores, at most the build's MAX_THREADS). */
export function getBlasThreads(): number {
  return (blasThreads ??= Math.min(availableParallelism(), native().blasInfo().threadLimit));
}

/**
 * Below this many floating-point operations in a job's largest product per iteration, a second thread
 * does not pay (bench/threads.ts --small, docs/threads.md "Small jobs": on a 2-core x86-64, 1 and 2
 * threads took the same time for the solvers' product shapes up to 1.6·10⁶ flops, where OpenBLAS
 * keeps them on one thread itself, and 2 threads first gained, 1.2–1.6×, at 3.6·10⁶). Threads on
 * such a job are pure cost, and on a loaded machine a cliff: a helper thread that waits for a core
 * stalls every call (the paper's Stratified-NMF run: docs/threads.md).
 */
const defaultSmallJobFlops = 3e6;
let smallJobFlops = defaultSmallJobFlops;

/**
 * Sets the size below which a job runs on one thread: floating-point operations of its largest
 * product per iteration (0: never; a machine where threads pay sooner can lower it). Returns the
 * previous value.
 */
export function setSmallJobFlops(flops: number): number {
  if (typeof flops !== 'number' || Number.isNaN(flops)) {
    throw new TypeError(`Expected a non-negative number for flops but received ${describeValue(flops)}`);
  }
  if (flops < 0) throw new RangeError(`Expected a non-negative number for flops but received ${describeValue(flops)}`);
  const previous = smallJobFlops;
  smallJobFlops = flops;
  return previous;
}

/** The size set by setSmallJobFlops (default 3·10⁶ flops, measured: docs/threads.md "Small jobs"). */
export function getSmallJobFlops(): number {
  return smallJobFlops;
}

/**
 * The work estimate the small-job rule compares with getSmallJobFlops(): the flops of a product of
 * `values` stored data values (a dense matrix's rows × cols, a CSR matrix's non-zeros, a tensor's
 * entries) with a factor of `rank` columns, 2·values·rank. For the NSA-Flow solvers, a p×k matrix's
 * Gram-type products: values = p·k, rank = k.
 */
export function productFlops(values: number, rank: number): number {
  return 2 * values * rank;
}

/**
 * The rule for one job: `threads` (its policy's, or its fair share), or 1 when its largest product
 * (`flops`, undefined: unknown) is below getSmallJobFlops().
 */
export function threadsForWork(threads: number, flops: number | undefined): number {
  return flops !== undefined && flops < smallJobFlops ? 1 : threads;
}

/** The policy a job started here and now would run under: the innermost open scope's, or the default. */
export function currentThreadPolicy(): ThreadPolicy {
  return policyScope.getStore() ?? { jobs: concurrency, threadsPerJob: getBlasThreads() };
}

/**
 * Runs `fn` under a thread policy: up to `jobs` native jobs started inside it run side by side (the
 * runtime admits at least that many while the scope is open), each with `threadsPerJob` threads
 * (default: getBlasThreads() for a single job, else an equal share of them, at least 1). The policy
 * holds for every job started inside `fn`, including from its callbacks and awaits, and for nothing
 * else; it ends when `fn`'s Promise settles, whether it resolves or rejects.
 */
export async function withThreadPolicy<T>(policy: { jobs: number; threadsPerJob?: number }, fn: () => Promise<T> | T): Promise<T> {
  const o = readObject(policy, 'policy', 'a thread policy {jobs, threadsPerJob}', ['jobs', 'threadsPerJob']);
  const jobs = expectShapeInteger(o.jobs, 'policy.jobs');
  const limit = native().blasInfo().threadLimit;
  let threadsPerJob = Math.max(1, Math.floor(getBlasThreads() / jobs));
  if (o.threadsPerJob !== undefined) {
    threadsPerJob = expectShapeInteger(o.threadsPerJob, 'policy.threadsPerJob');
    if (threadsPerJob > limit) {
      throw new RangeError(`Expected an integer in [1, ${limit}] for policy.threadsPerJob but received ${threadsPerJob} (${limit} is the most this OpenBLAS build supports)`);
    }
  }
  const scope: ThreadPolicy = Object.freeze({ jobs, threadsPerJob });
  openPolicies.add(scope);
  drain();
  try {
    return await policyScope.run(scope, fn);
  } finally {
    openPolicies.delete(scope);
  }
}

/** Jobs admitted at once: setConcurrency's bound, raised to what every open scope asked for. */
function effectiveConcurrency(): number {
  let n = concurrency;
  for (const p of openPolicies) n = Math.max(n, p.jobs);
  return n;
}

/**
 * The rule of the header, applied as a job starts (`running` already counts it): alone, its policy's
 * threadsPerJob; beside others, at most that and its fair share, and never above the count the
 * running jobs have; a small job (`flops` below getSmallJobFlops()) 1. Because the count is
 * process-global, a small job starting beside others lowers it for them too, as any job beside
 * others may (one of its products would otherwise run threaded).
 */
function threadsForStartingJob(policy: ThreadPolicy, flops: number | undefined): number {
  const wanted = threadsForWork(policy.threadsPerJob, flops);
  if (running === 1) return native().setBlasThreads(wanted);
  const share = Math.max(1, Math.floor(getBlasThreads() / running));
  const target = Math.min(wanted, share, native().blasInfo().threads);
  return native().setBlasThreads(target);
}

function drain(): void {
  while (running < effectiveConcurrency() && queue.length > 0) queue.shift()!();
}

/** A job ended: once none runs, sync calls get getBlasThreads() again. */
function jobEnded(): void {
  running--;
  if (running === 0) native().setBlasThreads(getBlasThreads());
  drain();
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

/**
 * Runs a sync native call, mapping its errors. `flops` (productFlops of the call's largest product
 * per iteration) applies the small-job rule: below getSmallJobFlops(), and while no async job runs,
 * the call runs with one thread and the count is getBlasThreads() again when it returns or throws.
 * While async jobs run the count is theirs (lowering it would outlast this call: it is never raised
 * under a running job).
 */
export function callSync<T>(fn: () => T, flops?: number): T {
  const single = running === 0 && threadsForWork(getBlasThreads(), flops) === 1 && getBlasThreads() > 1;
  if (single) native().setBlasThreads(1);
  try {
    return fn();
  } catch (err) {
    throw mapNativeError(err);
  } finally {
    if (single) native().setBlasThreads(getBlasThreads());
  }
}

/** `err` with the stack of the caller that started the job (the native stack says nothing). */
function withCallerStack(err: Error, callerStack: string | undefined): Error {
  if (callerStack) err.stack = `${err.name}: ${err.message}\n${callerStack.split('\n').slice(1).join('\n')}`;
  return err;
}

/**
 * Runs one native job: waits for a slot, applies the thread policy (see the header; `flops`, productFlops of
 * the job's largest product per iteration, for the small-job rule), starts it with a fresh cancel
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
  flops?: number,
): Promise<Raw> {
  const callerStack = new Error().stack;
  // The policy of the scope this job was asked for in, kept for when it starts (it may wait).
  const policy = currentThreadPolicy();
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
      threadsForStartingJob(policy, flops);
      let promise: Promise<Raw>;
      try {
        promise = start(inputs, token, progress, intervalMs);
      } catch (err) {
        settle(false, mapNativeError(err, callerStack));
        jobEnded();
        return;
      }
      promise.then(
        (value) => {
          if (stopped) settle(false, stopped.reason);
          else settle(true, value);
          jobEnded();
        },
        (err: unknown) => {
          settle(false, stopped ? stopped.reason : mapNativeError(err, callerStack));
          jobEnded();
        },
      );
    }

    signal?.addEventListener('abort', onAbort, { once: true });
    queue.push(begin);
    drain();
    if (!started) inputs = inputs.map((a) => a.slice());
  });
}
