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
 *
 * A worker trusts nothing in a job's payload (anyone who can write to the Redis can add one): it runs
 * only jobs whose id has the stable form `<method>-<12 hex digits>`, writes only under its own output
 * root (a payload's outDir may pick a folder inside it, never one outside), and reads only input files
 * that lie, symbolic links resolved, under its input roots. Any other job fails at once on the queue
 * with the reason, nothing is read, written or deleted for it, and the worker goes on.
 *
 * bullmq (and its Redis client ioredis) are optional packages, loaded at the first queue use.
 */
import { accessSync, constants, existsSync, lstatSync, mkdirSync, realpathSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { hostname } from 'node:os';
import { basename, dirname, isAbsolute, join, relative, resolve } from 'node:path';

import { describe, expectAbortSignal, expectBoolean, expectFunction, expectInteger, expectNonNegativeNumber, expectPath, expectString, optional, readList, readObject } from '../cli/check.js';
import { UsageError, flagSpecs } from '../cli/flags.js';
import { splitStrataRef } from '../cli/inputs.js';
import { getMethod } from '../cli/registry.js';
import { AbortError, MissingPackageError } from '../errors.js';
import { withThreadPolicy } from '../runtime.js';
import { describeValue, parseOptions } from '../validate.js';
import { expandJobsArgument, isJobId, prepareJobs, type Job, type JobSpec, type JobsFile } from './jobs.js';
import { executeJob, isFinished, summarize, type BatchEvent, type BatchSummary, type JobOutcome } from './run.js';

type BullMQ = typeof import('bullmq');

/** Loads a module by name (import() by default; tests pass one that fails). */
export type ModuleImporter = (name: string) => Promise<unknown>;


let bullmq: BullMQ | undefined;

/**
 * Loads bullmq (which brings ioredis) once (again with an explicit `importer`). When either is not
 * installed this rejects with a MissingPackageError naming the command that installs them; other load
 * failures pass through.
 */
export async function loadQueuePackages(importer?: ModuleImporter): Promise<void> {
  optional(importer, 'importer', (v, name) => {
    if (typeof v !== 'function') throw new TypeError(`Expected a function (name) => Promise<module> for ${name} but received ${describe(v)}`);
  });
  if (bullmq && !importer) return;
  try {
    bullmq = (await (importer ?? ((name: string) => import(name)))('bullmq')) as BullMQ;
  } catch (err) {
    const code = (err as { code?: unknown } | null | undefined)?.code;
    if (code !== 'ERR_MODULE_NOT_FOUND' && code !== 'MODULE_NOT_FOUND') throw err;
    throw new MissingPackageError(
      ['bullmq', 'ioredis'],
      `The job queue needs the optional packages bullmq and ioredis, which are not installed (${(err as Error).message.split('\n')[0]}); install them with: npm install bullmq ioredis`,
      { cause: err },
    );
  }
}

async function queueClient(): Promise<BullMQ> {
  await loadQueuePackages();
  return bullmq!;
}

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

/** How to reach Redis (the subset of ioredis options used here). */
export interface RedisConnection {
  host: string;
  port: number;
  username?: string;
  password?: string;
  db: number;
  maxRetriesPerRequest: null;
}

/** redis://[user:password@]host[:port][/db] → BullMQ connection options. */
export function redisConnection(url: string): RedisConnection {
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

/** A queue name: non-empty, and without ':' (BullMQ's key separator, which it refuses in names). */
function expectQueueName(v: unknown, name: string): string {
  const queueName = expectString(v, name, 'a queue name');
  if (queueName === '' || queueName.includes(':')) throw new RangeError(`Expected a queue name (non-empty, without ':') for ${name} but received ${describe(queueName)}`);
  return queueName;
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
  /** Shared directory the workers write results to (inside each worker's output root). */
  outDir: string;
  baseDir?: string;
  /** Wait until every job has finished (default true). */
  wait?: boolean;
  /** Give up after this long, counted from the start (default: no limit); queued jobs stay queued. */
  timeoutMs?: number;
  onProgress?: (event: BatchEvent) => void;
  /** Stops waiting (queued jobs stay queued for the workers). */
  signal?: AbortSignal;
}

/** The part of a BullMQ Queue that reading outcomes uses (tests stand in for it). */
export interface QueueReader {
  getJobState(id: string): Promise<string>;
  getJob(id: string): Promise<{ returnvalue: unknown; failedReason: string } | undefined>;
}

/**
 * The outcome of a queued job if it has ended, else undefined. The state is read first: BullMQ stores
 * a job's return value and moves it to 'completed' in one step, so a job seen completed has its value
 * when read next. (Reading the job first and its state second raced: a job completing in between was
 * seen completed with the return value of its earlier snapshot, null.) A failed state is final:
 * BullMQ keeps a job that will be retried in 'delayed' or 'waiting'. A completed job whose value is
 * not its outcome (another program on the queue) is reported failed rather than waited for.
 */
export async function readOutcome(queue: QueueReader, job: Job): Promise<JobOutcome | undefined> {
  const state = await queue.getJobState(job.id);
  if (state !== 'completed' && state !== 'failed') return undefined;
  const q = await queue.getJob(job.id);
  if (!q) return undefined; // removed meanwhile (by another enqueuer): it is queued again or will be
  if (state === 'completed') {
    const outcome = q.returnvalue as Partial<JobOutcome> | null | undefined;
    if (outcome && typeof outcome === 'object' && outcome.id === job.id) return outcome as JobOutcome;
    // Not what a worker of this package returns (seen completed, so the value was stored with it).
    return { ...job, status: 'failed', seconds: 0, error: { name: 'QueueError', message: `The job completed on the queue without an outcome for ${job.id}` } };
  }
  return { ...job, status: 'failed', seconds: 0, error: { name: 'QueueError', message: q.failedReason } };
}

/**
 * Enqueues jobs (skipping those already finished in outDir) and, unless `wait` is false, waits for
 * them and resolves with the same summary as runBatch. A job that failed on the queue after all its
 * attempts (e.g. its workers kept dying), or that a worker refused, is reported failed with the reason.
 */
export async function enqueueBatch(jobs: JobsFile | readonly JobSpec[], options: EnqueueOptions): Promise<BatchSummary> {
  // Every argument is checked before the queue packages load or Redis is contacted.
  const o = readObject(options, 'options', 'enqueue options {url, outDir, queueName, baseDir, wait, timeoutMs, onProgress, signal}', [
    'url', 'queueName', 'outDir', 'baseDir', 'wait', 'timeoutMs', 'onProgress', 'signal',
  ]);
  options = {
    url: expectString(o.url, 'options.url', 'a URL redis://host:port'),
    queueName: optional(o.queueName, 'options.queueName', expectQueueName),
    outDir: expectPath(o.outDir, 'options.outDir'),
    baseDir: optional(o.baseDir, 'options.baseDir', expectPath),
    wait: optional(o.wait, 'options.wait', expectBoolean),
    timeoutMs: optional(o.timeoutMs, 'options.timeoutMs', expectNonNegativeNumber),
    onProgress: optional(o.onProgress, 'options.onProgress', expectFunction<(event: BatchEvent) => void>),
    signal: optional(o.signal, 'options.signal', expectAbortSignal),
  };
  const connection = redisConnection(options.url);
  const outDir = resolve(options.outDir);
  const baseDir = options.baseDir ?? process.cwd();
  const prepared = prepareJobs(expandJobsArgument(jobs, 'jobs'), baseDir).map((j) => withAbsolutePaths(j, baseDir));
  const { Queue } = await queueClient();
  await expectReachable(options.url, connection, options.signal);
  mkdirSync(outDir, { recursive: true });
  writeFileSync(join(outDir, 'batch.json'), JSON.stringify({ baseDir, queue: options.queueName ?? defaultQueueName, jobs: prepared }, null, 2) + '\n');
  const queue = new Queue<QueueJobData, JobOutcome>(options.queueName ?? defaultQueueName, { connection });
  const t0 = performance.now();
  const deadline = options.timeoutMs === undefined ? Infinity : Date.now() + options.timeoutMs;
  const outcomes = new Map<string, JobOutcome>();
  let done = 0;
  const total = prepared.length;
  const end = (outcome: JobOutcome): void => {
    outcomes.set(outcome.id, outcome);
    done++;
    options.onProgress?.({ type: 'end', outcome, done, total });
  };
  let stopped = false;
  const work = async (): Promise<void> => {
    const pending: Job[] = [];
    for (const job of prepared) {
      if (stopped) return;
      if (isFinished(outDir, job.id)) {
        end({ ...job, status: 'skipped', seconds: 0 });
        continue;
      }
      // A job id already on the queue: leave it if it is waiting or running, clear an old outcome
      // (its result is not on disk, so it must run again).
      const state = await queue.getJobState(job.id);
      if (state === 'completed' || state === 'failed') await (await queue.getJob(job.id))?.remove();
      await queue.add(job.method, { job, outDir }, { jobId: job.id, attempts: 3, backoff: { type: 'fixed', delay: 200 } });
      pending.push(job);
    }
    if (options.wait === false) return;
    let waiting = pending;
    while (waiting.length > 0 && !stopped) {
      const still: Job[] = [];
      for (const job of waiting) {
        const outcome = await readOutcome(queue, job);
        if (outcome) end(outcome);
        else still.push(job);
      }
      waiting = still;
      if (waiting.length > 0) await new Promise((r) => setTimeout(r, 100));
    }
  };
  try {
    // The signal and the timeout end the wait even while a Redis command hangs (Redis gone away).
    await untilStopped(work(), options.signal, deadline, () => {
      return new QueueTimeoutError(
        `Timed out after ${options.timeoutMs} ms waiting for ${total - done} queued jobs (are workers running? nsa-flow worker --queue …); they stay queued`,
      );
    });
  } finally {
    stopped = true;
    await closeBounded(queue);
  }
  if (options.wait === false) return summarize(outDir, [...outcomes.values()], (performance.now() - t0) / 1000);
  const ordered = prepared.map((j) => outcomes.get(j.id)!);
  const summary = summarize(outDir, ordered, (performance.now() - t0) / 1000);
  writeFileSync(join(outDir, 'summary.json'), JSON.stringify(summary, null, 2) + '\n');
  return summary;
}

/** Redis cannot be reached at the URL given (nothing listens, or no answer). */
export class QueueConnectionError extends Error {
  override name = 'QueueConnectionError';
}

/**
 * Resolves once a TCP connection to the Redis host opens; otherwise rejects with a
 * QueueConnectionError naming the URL (the Redis client itself would retry for ever, silently).
 */
async function expectReachable(url: string, conn: RedisConnection, signal?: AbortSignal, timeoutMs = 5000): Promise<void> {
  await new Promise<void>((resolvePromise, reject) => {
    const socket = connect({ host: conn.host, port: conn.port });
    const finish = (err?: Error): void => {
      socket.destroy();
      signal?.removeEventListener('abort', onAbort);
      if (err) reject(err);
      else resolvePromise();
    };
    const fail = (why: string): void => finish(new QueueConnectionError(`Cannot reach Redis at ${url} (${why}); is redis-server running there?`));
    const onAbort = (): void => finish(new AbortError());
    signal?.addEventListener('abort', onAbort, { once: true });
    socket.setTimeout(timeoutMs, () => fail(`no answer within ${timeoutMs} ms`));
    socket.once('connect', () => finish());
    socket.once('error', (err: NodeJS.ErrnoException) => fail(err.code ?? err.message));
  });
}

/** `work`, unless `signal` aborts first (AbortError) or `deadline` (ms since the epoch) passes (onTimeout()). */
function untilStopped<T>(work: Promise<T>, signal: AbortSignal | undefined, deadline: number, onTimeout: () => Error): Promise<T> {
  return new Promise<T>((resolvePromise, reject) => {
    const settle = (f: () => void): void => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      f();
    };
    const onAbort = (): void => settle(() => reject(new AbortError()));
    const timer = Number.isFinite(deadline) ? setTimeout(() => settle(() => reject(onTimeout())), Math.max(0, deadline - Date.now())) : undefined;
    if (signal?.aborted) return onAbort();
    signal?.addEventListener('abort', onAbort, { once: true });
    work.then(
      (v) => settle(() => resolvePromise(v)),
      (e: unknown) => settle(() => reject(e)),
    );
  });
}

/** Closes a BullMQ queue or worker; when Redis does not answer within `ms`, drops the connection instead. */
async function closeBounded(c: { close(): Promise<void>; disconnect(): Promise<void> }, ms = 3000): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const closed = await Promise.race([
    c.close().then(
      () => true,
      () => true,
    ),
    new Promise<boolean>((r) => (timer = setTimeout(() => r(false), ms))),
  ]);
  clearTimeout(timer);
  if (!closed) await c.disconnect().catch(() => undefined);
}

// ---- the worker's side: admitting untrusted payloads ----------------------------------------------

/** A queue job a worker will not run; the message is the reason recorded on the queue. */
export class JobRefusedError extends Error {
  override name = 'JobRefusedError';
}

/** Where a worker may read and write. Paths are made absolute and resolved (symbolic links) once. */
export interface WorkerRoots {
  /** Results go under this directory (created if missing). */
  outDir: string;
  /** Input files must lie under one of these directories. */
  inputRoots: readonly string[];
}

/**
 * `path` with symbolic links resolved, for a path that may not exist yet (its nearest existing ancestor
 * is resolved). A dangling link on the way throws (ENOENT) rather than being taken for a missing folder.
 */
function resolveLinks(path: string): string {
  let existing = path;
  const rest: string[] = [];
  while (!lstatSync(existing, { throwIfNoEntry: false })) {
    const parent = dirname(existing);
    if (parent === existing) break;
    rest.unshift(basename(existing));
    existing = parent;
  }
  return join(realpathSync(existing), ...rest);
}

/** Whether `path` is `root` or inside it (both absolute and resolved). */
function isInside(path: string, root: string): boolean {
  const r = relative(root, path);
  return r === '' || (!r.startsWith('..') && !isAbsolute(r));
}

/** The roots with links resolved; the output root is created and must be writable. */
export function resolveWorkerRoots(roots: WorkerRoots): WorkerRoots {
  const inputRoots = roots.inputRoots.map((r) => {
    const abs = resolve(r);
    if (!existsSync(abs)) throw new UsageError(`Input root not found: ${r}`);
    return realpathSync(abs);
  });
  const outDir = resolve(roots.outDir);
  mkdirSync(outDir, { recursive: true });
  try {
    accessSync(outDir, constants.W_OK);
  } catch {
    throw new UsageError(`Expected a writable directory for the output root but ${roots.outDir} is not writable`);
  }
  return { outDir: realpathSync(outDir), inputRoots };
}

/**
 * Checks a queue payload against the worker's roots (see the module comment) and returns the job to
 * run (its input paths resolved to the files that will be read) and the folder its result goes to.
 * Throws JobRefusedError with the reason otherwise. `roots` must come from resolveWorkerRoots.
 */
export function admitJob(data: unknown, queueJobId: string | undefined, roots: WorkerRoots): { job: Job; outDir: string } {
  const refuse = (why: string): never => {
    throw new JobRefusedError(`Refused job ${JSON.stringify(queueJobId ?? null)}: ${why}`);
  };
  const isObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);
  if (!isObject(data) || !isObject(data.job)) return refuse(`expected a payload {job, outDir} but received ${describeValue(data)}`);
  const { id, method: methodName, input, options } = data.job;
  if (typeof methodName !== 'string' || !getMethod(methodName)) return refuse(`unknown method ${describeValue(methodName)}`);
  const method = getMethod(methodName)!;
  if (!isJobId(id, methodName)) return refuse(`expected an id of the form ${methodName}-<12 hex digits> but received ${describeValue(id)}`);
  if (queueJobId !== id) return refuse(`the queue job id differs from the payload's id ${JSON.stringify(id)}`);

  let outDir = roots.outDir;
  if (data.outDir !== undefined) {
    if (typeof data.outDir !== 'string' || !isAbsolute(data.outDir)) return refuse(`expected an absolute path for outDir but received ${describeValue(data.outDir)}`);
    try {
      outDir = resolveLinks(resolve(data.outDir));
    } catch (err) {
      return refuse(`its outDir ${data.outDir} cannot be resolved (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
    }
    if (!isInside(outDir, roots.outDir)) return refuse(`its outDir ${data.outDir} is outside this worker's output root ${roots.outDir}`);
  }
  const jobDir = join(outDir, id);
  // Replacing a result folder that is a link would act on whatever it points to.
  if (lstatSync(jobDir, { throwIfNoEntry: false })?.isSymbolicLink()) return refuse(`its result folder ${jobDir} is a symbolic link`);

  if (!isObject(input)) return refuse(`expected {name: path} for its input but received ${describeValue(input)}`);
  const resolved: Record<string, string> = {};
  for (const [name, ref] of Object.entries(input)) {
    const spec = method.inputs[name];
    if (!spec) return refuse(`unknown input '${name}' (${methodName} reads: ${Object.keys(method.inputs).join(', ')})`);
    if (typeof ref !== 'string') return refuse(`expected a path for input ${name} but received ${describeValue(ref)}`);
    let path = ref;
    let column: string | undefined;
    if (spec.kind === 'strata') {
      try {
        [path, column] = splitStrataRef(ref, `input ${name}`);
      } catch (err) {
        return refuse((err as Error).message);
      }
    }
    if (!isAbsolute(path)) return refuse(`expected an absolute path for input ${name} but received ${JSON.stringify(path)}`);
    let real: string;
    try {
      real = realpathSync(path);
    } catch {
      return refuse(`input file not found: ${path} (input ${name})`);
    }
    if (!roots.inputRoots.some((root) => isInside(real, root))) {
      const shown = real === path ? path : `${path} (which resolves to ${real})`;
      return refuse(`input ${name} ${shown} is outside this worker's input roots (${roots.inputRoots.join(', ') || 'none'})`);
    }
    resolved[name] = column === undefined ? real : `${real}:${column}`;
  }
  for (const [name, spec] of Object.entries(method.inputs)) {
    if (!spec.optional && resolved[name] === undefined) return refuse(`missing input ${name} (${spec.description})`);
  }
  if (options !== undefined && !isObject(options)) return refuse(`expected an object for its options but received ${describeValue(options)}`);
  let checked: Record<string, unknown>;
  try {
    checked = parseOptions(Object.fromEntries(flagSpecs(method.optionSpecs)), options ?? {}, `job ${id}`);
  } catch (err) {
    return refuse((err as Error).message);
  }
  return { job: { id, method: methodName, input: resolved, options: checked }, outDir };
}

export type WorkerEvent =
  | { event: 'ready'; worker: string }
  | { event: 'active'; worker: string; id: string; attempt: number }
  | { event: 'completed'; worker: string; id: string; status: JobOutcome['status']; seconds: number }
  | { event: 'refused'; worker: string; id: string | null; reason: string }
  | { event: 'idle'; worker: string; processed: number };

export interface WorkerOptions {
  url: string;
  queueName?: string;
  /**
   * The output root: results are written only under this directory (created if missing). A job's
   * payload may name a folder inside it (the batch's --out); a job naming one outside is refused.
   */
  outDir: string;
  /**
   * Directories that job inputs may be read from (symbolic links are resolved before the check).
   * Default: the current directory only.
   */
  inputRoots?: readonly string[];
  /** Jobs this worker runs at once (default 1); each gets an equal share of the threads (docs/threads.md). */
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
  // Every argument is checked before anything is created, the queue packages load or Redis is contacted.
  const o = readObject(options, 'options', 'worker options {url, outDir, inputRoots, queueName, concurrency, lockMs, exitWhenIdleMs, signal, onEvent}', [
    'url', 'queueName', 'outDir', 'inputRoots', 'concurrency', 'lockMs', 'exitWhenIdleMs', 'signal', 'onEvent',
  ]);
  options = {
    url: expectString(o.url, 'options.url', 'a URL redis://host:port'),
    queueName: optional(o.queueName, 'options.queueName', expectQueueName),
    outDir: expectPath(o.outDir, 'options.outDir'),
    inputRoots: optional(o.inputRoots, 'options.inputRoots', (v, name) => readList(v, name, 'an array of directory paths').map((p, i) => expectPath(p, `${name}[${i}]`))),
    concurrency: optional(o.concurrency, 'options.concurrency', (v, name) => expectInteger(v, name, 1)),
    lockMs: optional(o.lockMs, 'options.lockMs', (v, name) => expectInteger(v, name, 1)),
    exitWhenIdleMs: optional(o.exitWhenIdleMs, 'options.exitWhenIdleMs', expectNonNegativeNumber),
    signal: optional(o.signal, 'options.signal', expectAbortSignal),
    onEvent: optional(o.onEvent, 'options.onEvent', expectFunction<(event: WorkerEvent) => void>),
  };
  const connection = redisConnection(options.url);
  const roots = resolveWorkerRoots({ outDir: options.outDir, inputRoots: options.inputRoots ?? [process.cwd()] });
  const client = await queueClient();
  const name = `${hostname()}:${process.pid}`;
  await expectReachable(options.url, connection, options.signal);
  const concurrency = options.concurrency ?? 1;
  const lockMs = options.lockMs ?? 30_000;
  // `concurrency` jobs side by side under the runtime's thread policy, for as long as the worker runs.
  return withThreadPolicy({ jobs: concurrency }, () => serve(client, options, connection, roots, name, concurrency, lockMs));
}

/** The worker's loop, from the queue's Worker to its close (runWorker checked every argument). */
async function serve(
  { Queue, Worker, UnrecoverableError }: BullMQ,
  options: WorkerOptions,
  connection: ReturnType<typeof redisConnection>,
  roots: ReturnType<typeof resolveWorkerRoots>,
  name: string,
  concurrency: number,
  lockMs: number,
): Promise<{ processed: number }> {
  const running = new Set<AbortController>();
  let processed = 0;
  const worker = new Worker<QueueJobData, JobOutcome>(
    options.queueName ?? defaultQueueName,
    async (bj) => {
      let admitted: { job: Job; outDir: string };
      try {
        admitted = admitJob(bj.data, bj.id, roots);
      } catch (err) {
        if (!(err instanceof JobRefusedError)) throw err;
        options.onEvent?.({ event: 'refused', worker: name, id: bj.id ?? null, reason: err.message });
        // Fails the queue job at once with this reason: no retries, nothing read or written.
        throw new UnrecoverableError(err.message);
      }
      options.onEvent?.({ event: 'active', worker: name, id: admitted.job.id, attempt: bj.attemptsMade + 1 });
      const controller = new AbortController();
      running.add(controller);
      try {
        const outcome = await executeJob(admitted.job, admitted.outDir, { signal: controller.signal, worker: name });
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
    // A job still running after a lock duration is taken up elsewhere anyway.
    await closeBounded(worker, lockMs);
    await closeBounded(queue);
  }
  options.onEvent?.({ event: 'idle', worker: name, processed });
  return { processed };
}
