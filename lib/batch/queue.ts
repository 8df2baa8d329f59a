/**
 * Batches beyond one machine: the same jobs through a BullMQ queue on Redis. `enqueueBatch` puts the
 * jobs on the queue (BullMQ job id = the job's stable id, so enqueuing twice adds nothing) and, by
 * default, waits for them; `runWorker` takes jobs off the queue and runs each with executeJob.
 *
 * Inputs are referenced by absolute path and results are written by the workers into the batch's
 * output directory, so both must be on storage every machine sees at the same path. A worker that
 * dies mid-job loses its lock; after `lockMs` another worker's stalled-job check puts the job back on
 * the queue and it runs again elsewhere. Results are written atomically and a finished result is
 * never overwritten, so each job's result exists exactly once however often it ran.
 */
import { hostname } from 'node:os';
import { isAbsolute, resolve } from 'node:path';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { Queue, Worker, type ConnectionOptions } from 'bullmq';

import { UsageError } from '../cli/flags.js';
import { splitStrataRef } from '../cli/inputs.js';
import { getMethod } from '../cli/registry.js';
import { AbortError } from '../errors.js';
import { getConcurrency, setBlasThreads, setConcurrency } from '../runtime.js';
import { expandJobs, prepareJobs, type Job, type JobSpec, type JobsFile } from './jobs.js';
import { executeJob, isFinished, summarize, type BatchEvent, type BatchSummary, type JobOutcome } from './run.js';

export const defaultQueueName = 'nsa-flow';

/** Waiting for queued jobs took longer than the caller allowed (the jobs stay queued). */
export class QueueTimeoutError extends Error {
  override name = 'QueueTimeoutError';
}

/** What a queue job carries: the job with absolute input paths, and where its result goes. */
export interface QueueJobData {
  job: Job;
  outDir: string;
}

/** redis://[user:password@]host[:port][/db] → BullMQ connection options. */
export function redisConnection(url: string): ConnectionOptions {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new UsageError(`Expected a URL redis://host:port for --queue but received ${JSON.stringify(url)}`);
  }
  if (u.protocol !== 'redis:') throw new UsageError(`Expected a URL redis://host:port for --queue but received ${JSON.stringify(url)}`);
  const db = u.pathname.length > 1 ? Number(u.pathname.slice(1)) : 0;
  return {
    host: u.hostname,
    port: u.port ? Number(u.port) : 6379,
    username: u.username ? decodeURIComponent(u.username) : undefined,
    password: u.password ? decodeURIComponent(u.password) : undefined,
    db: Number.isInteger(db) ? db : 0,
    // Workers block on Redis; BullMQ requires unlimited retries per request for that connection.
    maxRetriesPerRequest: null,
  };
}

/** The job with every input path absolute (workers may run in another directory or machine). */
function withAbsolutePaths(job: Job, baseDir: string): Job {
  const method = getMethod(job.method)!;
  const input: Record<string, string> = {};
  for (const [name, ref] of Object.entries(job.input)) {
    if (method.inputs[name]!.kind === 'strata') {
      const [path, column] = splitStrataRef(ref, name);
      input[name] = `${isAbsolute(path) ? path : resolve(baseDir, path)}:${column}`;
    } else {
      input[name] = isAbsolute(ref) ? ref : resolve(baseDir, ref);
    }
  }
  return { ...job, input };
}

export interface EnqueueOptions {
  /** redis://host:port */
  url: string;
  queueName?: string;
  /** Shared directory the workers write results to. */
  outDir: string;
  baseDir?: string;
  /** Wait until every job has finished (default true). */
  wait?: boolean;
  /** Give up waiting after this long (default: no limit). */
  timeoutMs?: number;
  onProgress?: (event: BatchEvent) => void;
  /** Stops waiting (queued jobs stay queued for the workers). */
  signal?: AbortSignal;
}

/**
 * Enqueues jobs (skipping those already finished in outDir) and, unless `wait` is false, waits for
 * them and resolves with the same summary as runBatch. A job that failed on the queue after all its
 * attempts (e.g. its workers kept dying) is reported failed with BullMQ's reason.
 */
export async function enqueueBatch(jobs: JobsFile | readonly JobSpec[], options: EnqueueOptions): Promise<BatchSummary> {
  const outDir = resolve(options.outDir);
  const baseDir = options.baseDir ?? process.cwd();
  const prepared = prepareJobs(expandJobs(jobs), baseDir).map((j) => withAbsolutePaths(j, baseDir));
  mkdirSync(outDir, { recursive: true });
  writeFileSync(join(outDir, 'batch.json'), JSON.stringify({ baseDir, queue: options.queueName ?? defaultQueueName, jobs: prepared }, null, 2) + '\n');
  const queue = new Queue<QueueJobData, JobOutcome>(options.queueName ?? defaultQueueName, { connection: redisConnection(options.url) });
  const t0 = performance.now();
  const outcomes = new Map<string, JobOutcome>();
  const pending: Job[] = [];
  let done = 0;
  const total = prepared.length;
  const end = (outcome: JobOutcome): void => {
    outcomes.set(outcome.id, outcome);
    done++;
    options.onProgress?.({ type: 'end', outcome, done, total });
  };
  try {
    for (const job of prepared) {
      if (isFinished(outDir, job.id)) {
        end({ ...job, status: 'skipped', seconds: 0 });
        continue;
      }
      // A job id already on the queue: leave it if it is waiting or running, clear an old outcome
      // (its result is not on disk, so it must run again).
      const existing = await queue.getJob(job.id);
      if (existing) {
        const state = await existing.getState();
        if (state === 'completed' || state === 'failed') await existing.remove();
      }
      await queue.add(job.method, { job, outDir }, { jobId: job.id, attempts: 3, backoff: { type: 'fixed', delay: 200 } });
      pending.push(job);
    }
    if (options.wait === false) return summarize(outDir, [...outcomes.values()], (performance.now() - t0) / 1000);

    const deadline = options.timeoutMs === undefined ? Infinity : Date.now() + options.timeoutMs;
    let waiting = pending;
    while (waiting.length > 0) {
      if (options.signal?.aborted) throw new AbortError();
      if (Date.now() > deadline) throw new QueueTimeoutError(`Timed out after ${options.timeoutMs} ms waiting for ${waiting.length} queued jobs (are workers running? nsa-flow worker --queue …); they stay queued`);
      const still: Job[] = [];
      for (const job of waiting) {
        const q = await queue.getJob(job.id);
        const state = q ? await q.getState() : 'unknown';
        if (state === 'completed' && q) end(q.returnvalue);
        else if (state === 'failed' && q && q.attemptsMade >= (q.opts.attempts ?? 1)) {
          end({ ...job, status: 'failed', seconds: 0, error: { name: 'QueueError', message: q.failedReason } });
        } else still.push(job);
      }
      waiting = still;
      if (waiting.length > 0) await new Promise((r) => setTimeout(r, 100));
    }
  } finally {
    await queue.close();
  }
  const ordered = prepared.map((j) => outcomes.get(j.id)!);
  const summary = summarize(outDir, ordered, (performance.now() - t0) / 1000);
  writeFileSync(join(outDir, 'summary.json'), JSON.stringify(summary, null, 2) + '\n');
  return summary;
}

export type WorkerEvent =
  | { event: 'ready'; worker: string }
  | { event: 'active'; worker: string; id: string; attempt: number }
  | { event: 'completed'; worker: string; id: string; status: JobOutcome['status']; seconds: number }
  | { event: 'idle'; worker: string; processed: number };

export interface WorkerOptions {
  url: string;
  queueName?: string;
  /** Jobs this worker runs at once (default 1); with more than one, BLAS runs one thread per job. */
  concurrency?: number;
  /**
   * How long a job's lock lasts without renewal (default 30000 ms): a job whose worker died is
   * taken up again by another worker about this long after it stopped renewing.
   */
  lockMs?: number;
  /** Exit once the queue has had nothing waiting or running for this long (default: run until signal). */
  exitWhenIdleMs?: number;
  /** Stops the worker: running jobs are aborted (their queue jobs are retried elsewhere). */
  signal?: AbortSignal;
  onEvent?: (event: WorkerEvent) => void;
}

/** Runs queue jobs until `signal` aborts or, with exitWhenIdleMs, the queue stays empty. */
export async function runWorker(options: WorkerOptions): Promise<{ processed: number }> {
  const name = `${hostname()}:${process.pid}`;
  const connection = redisConnection(options.url);
  const concurrency = options.concurrency ?? 1;
  const lockMs = options.lockMs ?? 30_000;
  if (concurrency > 1) setBlasThreads(1);
  setConcurrency(Math.max(getConcurrency(), concurrency));
  const running = new Set<AbortController>();
  let processed = 0;
  const worker = new Worker<QueueJobData, JobOutcome>(
    options.queueName ?? defaultQueueName,
    async (bj) => {
      options.onEvent?.({ event: 'active', worker: name, id: bj.id!, attempt: bj.attemptsMade + 1 });
      const controller = new AbortController();
      running.add(controller);
      try {
        const outcome = await executeJob(bj.data.job, bj.data.outDir, { signal: controller.signal, worker: name });
        processed++;
        options.onEvent?.({ event: 'completed', worker: name, id: outcome.id, status: outcome.status, seconds: outcome.seconds });
        return outcome;
      } finally {
        running.delete(controller);
      }
    },
    { connection, concurrency, lockDuration: lockMs, stalledInterval: lockMs, maxStalledCount: 2, name },
  );
  await worker.waitUntilReady();
  options.onEvent?.({ event: 'ready', worker: name });

  const queue = new Queue(options.queueName ?? defaultQueueName, { connection });
  try {
    let idleSince = performance.now();
    for (;;) {
      if (options.signal?.aborted) break;
      await new Promise((r) => setTimeout(r, 100));
      if (options.exitWhenIdleMs === undefined) continue;
      const counts = await queue.getJobCounts('waiting', 'active', 'delayed', 'prioritized', 'waiting-children');
      const busy = running.size > 0 || Object.values(counts).some((n) => n > 0);
      if (busy) idleSince = performance.now();
      else if (performance.now() - idleSince >= options.exitWhenIdleMs) break;
    }
  } finally {
    for (const c of running) c.abort();
    await worker.close();
    await queue.close();
  }
  options.onEvent?.({ event: 'idle', worker: name, processed });
  return { processed };
}
