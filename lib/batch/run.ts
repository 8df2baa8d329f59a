/**
 * Running jobs: one job (shared by the local pool and the queue worker) and a local batch with
 * bounded concurrency. Results stream to disk as each job ends, one directory per job id:
 *
 *   OUT/batch.json          the expanded job list with ids
 *   OUT/<id>/result.json    + one .npy per result array (a finished job; see lib/cli/output.ts)
 *   OUT/<id>/error.json     a failed job: the error's name and message (the rest of the batch goes on)
 *   OUT/summary.json        outcomes of this run
 *
 * A job directory appears whole or not at all (temporary sibling + rename), so a directory with a
 * result.json is a finished job: re-running a batch skips those (resume) and re-runs failed ones.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join, resolve } from 'node:path';

import { describe, expectAbortSignal, expectFunction, expectInteger, expectNonNegativeNumber, expectPath, expectString, optional, readList, readObject, readRecord } from '../cli/check.js';
import { arrayNamer, inputCacheKey, readInputs } from '../cli/inputs.js';
import { writeDirAtomically, writeResultDir, type ResultJson } from '../cli/output.js';
import { defaultTraces, getMethod, methodNames, type InputValue, type MethodProgress } from '../cli/registry.js';
import { AbortError, NumericalError } from '../errors.js';
import { info } from '../info.js';
import { currentThreadPolicy, withThreadPolicy } from '../runtime.js';
import { didYouMean } from '../suggest.js';
import { expandJobsArgument, isJobId, prepareJobs, type Job, type JobSpec, type JobsFile } from './jobs.js';

export type JobStatus = 'done' | 'skipped' | 'failed' | 'cancelled';

export interface JobOutcome {
  id: string;
  method: string;
  input: Record<string, string>;
  options: Record<string, unknown>;
  status: JobStatus;
  /** Wall time of the job (read + run + write), 0 for a skipped one. */
  seconds: number;
  diagnostics?: Record<string, number | string>;
  error?: { name: string; message: string };
  /** Who ran it (pid, or the queue worker's name). */
  worker?: string;
}

export type BatchEvent =
  | { type: 'start'; id: string; method: string; done: number; total: number }
  | { type: 'progress'; id: string; progress: MethodProgress }
  | { type: 'end'; outcome: JobOutcome; done: number; total: number };

export interface BatchSummary {
  outDir: string;
  total: number;
  done: number;
  skipped: number;
  failed: number;
  cancelled: number;
  seconds: number;
  /** Jobs that ran (done + failed) per second of wall time. */
  jobsPerSecond: number;
  jobs: JobOutcome[];
}

let versionCache: string | undefined;
const version = (): string => (versionCache ??= info().version);

/** Whether `outDir/<id>` holds a finished result. */
export function isFinished(outDir: string, id: string): boolean {
  return existsSync(join(outDir, id, 'result.json'));
}

/**
 * Runs one job and records its outcome under `outDir/<id>`. Never throws for a failing job (the
 * error is recorded in error.json); rejects only with AbortError when `signal` cancels it, in which
 * case nothing is written, and, before anything is read or written, with a TypeError/RangeError for a
 * bad argument: among them a `job.id` not of the form jobId gives (`<method>-<12 hex digits>`; the id
 * names the one directory of outDir the job may write or replace) and an unregistered `job.method`.
 */
export async function executeJob(
  job: Job,
  outDir: string,
  options: { baseDir?: string; signal?: AbortSignal; onProgress?: (p: MethodProgress) => void; cache?: Map<string, InputValue>; worker?: string } = {},
): Promise<JobOutcome> {
  const given = readObject(job, 'job', 'a job {id, method, input, options}', ['id', 'method', 'input', 'options']);
  const methodName = expectString(given.method, 'job.method', 'a method name');
  if (!isJobId(given.id, methodName)) {
    throw new RangeError(`Expected an id of the form <method>-<12 hex digits> for job.id but received ${describe(given.id)}`);
  }
  const method = getMethod(methodName);
  if (!method) throw new RangeError(`Expected a registered method for job.method but received ${describe(methodName)}${didYouMean(methodName, methodNames())}; registered methods: ${methodNames().join(', ')}`);
  job = {
    id: given.id,
    method: methodName,
    input: Object.fromEntries(readRecord(given.input, 'job.input', 'input paths {name: path}').map(([k, v]) => [k, expectString(v, `job.input.${k}`, 'a path')])),
    options: Object.fromEntries(readRecord(given.options, 'job.options', 'an options object')),
  };
  expectPath(outDir, 'outDir');
  const o = readObject(options ?? {}, 'options', 'executeJob options {baseDir, signal, onProgress, cache, worker}', ['baseDir', 'signal', 'onProgress', 'cache', 'worker']);
  options = {
    baseDir: optional(o.baseDir, 'options.baseDir', expectPath),
    signal: optional(o.signal, 'options.signal', expectAbortSignal),
    onProgress: optional(o.onProgress, 'options.onProgress', expectFunction<(p: MethodProgress) => void>),
    cache: optional(o.cache, 'options.cache', (v, name) => {
      if (!(v instanceof Map)) throw new TypeError(`Expected a Map for ${name} but received ${describe(v)}`);
      return v as Map<string, InputValue>;
    }),
    worker: optional(o.worker, 'options.worker', expectString),
  };
  const base = { id: job.id, method: job.method, input: job.input, options: job.options, worker: options.worker ?? `pid ${process.pid}` };
  const dir = join(outDir, job.id);
  if (isFinished(outDir, job.id)) {
    const previous = JSON.parse(readFileSync(join(dir, 'result.json'), 'utf8')) as ResultJson;
    return { ...base, status: 'skipped', seconds: 0, diagnostics: previous.diagnostics };
  }
  const t0 = performance.now();
  const startedAt = new Date().toISOString();
  try {
    const inputs = readInputs(method, job.input, options.baseDir ?? process.cwd(), options.cache);
    const t1 = performance.now();
    const result = (await method.run(inputs, job.options, { signal: options.signal, onProgress: options.onProgress })) as object;
    const t2 = performance.now();
    const diagnostics = method.diagnostics?.(result, inputs) ?? {};
    writeResultDir(
      dir,
      result,
      {
        method: job.method,
        version: version(),
        inputs: job.input,
        options: job.options,
        diagnostics,
        traces: method.traces?.(result) ?? defaultTraces(result),
        timings: { startedAt, readSeconds: (t1 - t0) / 1000, runSeconds: (t2 - t1) / 1000 },
        run: { jobId: job.id, worker: base.worker, blasThreads: currentThreadPolicy().threadsPerJob },
      },
      { replace: !isFinished(outDir, job.id), signal: options.signal, names: arrayNamer(method, inputs, result) },
    );
    return { ...base, status: 'done', seconds: (performance.now() - t0) / 1000, diagnostics };
  } catch (err) {
    if (err instanceof AbortError || options.signal?.aborted) throw err instanceof AbortError ? err : new AbortError();
    if (isFinished(outDir, job.id)) {
      // Another worker finished the same job first (a retried queue job): its result stands.
      return { ...base, status: 'skipped', seconds: (performance.now() - t0) / 1000 };
    }
    const e = err instanceof Error ? err : new Error(String(err));
    const error = { name: e.name, message: e.message, numerical: e instanceof NumericalError };
    try {
      writeDirAtomically(
        dir,
        (tmp) => {
          writeFileSync(join(tmp, 'job.json'), JSON.stringify(job, null, 2) + '\n');
          writeFileSync(join(tmp, 'error.json'), JSON.stringify({ ...error, startedAt }, null, 2) + '\n');
        },
        { replace: true },
      );
    } catch (writeErr) {
      // The output folder cannot be written (read-only, full): the outcome still says why the job failed.
      error.message += ` (its error.json could not be written either: ${(writeErr as Error).message})`;
    }
    return { ...base, status: 'failed', seconds: (performance.now() - t0) / 1000, error: { name: e.name, message: error.message } };
  }
}

export interface RunBatchOptions {
  /** Where results go (one directory per job id). */
  outDir: string;
  /** Jobs running at once (default: min(cores, 4)); each gets an equal share of the threads (docs/threads.md). */
  concurrency?: number;
  /** Directory that relative input paths are resolved against (default: the current directory). */
  baseDir?: string;
  onProgress?: (event: BatchEvent) => void;
  /** Cancels the batch: running jobs are aborted (nothing of theirs is written), queued ones not started. */
  signal?: AbortSignal;
}

/**
 * Runs jobs (a list, a grid, or {jobs, grid}; see ./jobs.ts) on this machine with bounded
 * concurrency, streaming each result to `outDir/<id>` as it ends, skipping finished ones. Resolves
 * with the outcomes; rejects with AbortError if cancelled (finished results stay on disk).
 */
export async function runBatch(jobs: JobsFile | readonly (JobSpec | Job)[], options: RunBatchOptions): Promise<BatchSummary> {
  const o = readObject(options, 'options', 'batch options {outDir, concurrency, baseDir, onProgress, signal}', ['outDir', 'concurrency', 'baseDir', 'onProgress', 'signal']);
  options = {
    outDir: expectPath(o.outDir, 'options.outDir'),
    concurrency: optional(o.concurrency, 'options.concurrency', (v, name) => expectInteger(v, name, 1)),
    baseDir: optional(o.baseDir, 'options.baseDir', expectPath),
    onProgress: optional(o.onProgress, 'options.onProgress', expectFunction<(event: BatchEvent) => void>),
    signal: optional(o.signal, 'options.signal', expectAbortSignal),
  };
  const outDir = resolve(options.outDir);
  const baseDir = options.baseDir ?? process.cwd();
  const prepared = prepareJobs(expandJobsArgument(jobs, 'jobs'), baseDir);
  const concurrency = options.concurrency ?? Math.max(1, Math.min(availableParallelism(), 4));
  mkdirSync(outDir, { recursive: true });
  writeFileSync(join(outDir, 'batch.json'), JSON.stringify({ baseDir, jobs: prepared }, null, 2) + '\n');

  // Inputs shared by several jobs are read once and dropped when their last job has started.
  const cache = new Map<string, InputValue>();
  const keysOf = (j: Job): string[] =>
    Object.entries(j.input).map(([name, ref]) => inputCacheKey(getMethod(j.method)!.inputs[name]!, ref, baseDir));
  const uses = new Map<string, number>();
  for (const j of prepared) for (const k of keysOf(j)) uses.set(k, (uses.get(k) ?? 0) + 1);
  const t0 = performance.now();
  const outcomes: JobOutcome[] = new Array(prepared.length);
  let next = 0;
  let finished = 0;
  const total = prepared.length;
  // A runner that throws (an onProgress listener did) stops the others taking jobs; the batch rejects
  // once every job it started has ended, so nothing of it runs on after it settles.
  let failure: { error: unknown } | undefined;
  const runner = async (): Promise<void> => {
    while (next < prepared.length && !options.signal?.aborted && !failure) {
      const index = next++;
      const job = prepared[index]!;
      options.onProgress?.({ type: 'start', id: job.id, method: job.method, done: finished, total });
      let outcome: JobOutcome;
      try {
        outcome = await executeJob(job, outDir, {
          baseDir,
          cache,
          signal: options.signal,
          onProgress: options.onProgress && ((progress) => options.onProgress!({ type: 'progress', id: job.id, progress })),
        });
      } catch (err) {
        if (!(err instanceof AbortError)) throw err;
        outcome = { id: job.id, method: job.method, input: job.input, options: job.options, status: 'cancelled', seconds: 0 };
      }
      for (const k of keysOf(job)) {
        const left = uses.get(k)! - 1;
        uses.set(k, left);
        if (left === 0) cache.delete(k);
      }
      outcomes[index] = outcome;
      finished++;
      options.onProgress?.({ type: 'end', outcome, done: finished, total });
    }
  };
  // `concurrency` jobs side by side, with the threads the runtime's policy gives each (one per job on
  // a machine with no more cores than jobs); the policy ends with the batch, however it ends.
  const guarded = async (): Promise<void> => {
    try {
      await runner();
    } catch (error) {
      failure ??= { error };
    }
  };
  await withThreadPolicy({ jobs: concurrency }, () => Promise.all(Array.from({ length: Math.min(concurrency, Math.max(1, total)) }, guarded)));
  if (failure) throw failure.error;
  const ran = outcomes.filter(Boolean);
  for (let i = 0; i < prepared.length; i++) {
    if (!outcomes[i]) {
      const j = prepared[i]!;
      outcomes[i] = { id: j.id, method: j.method, input: j.input, options: j.options, status: 'cancelled', seconds: 0 };
    }
  }
  const summary = summarize(outDir, outcomes, (performance.now() - t0) / 1000);
  writeFileSync(join(outDir, 'summary.json'), JSON.stringify(summary, null, 2) + '\n');
  if (options.signal?.aborted && ran.length < total) throw Object.assign(new AbortError(), { summary });
  return summary;
}

export function summarize(outDir: string, jobs: JobOutcome[], seconds: number): BatchSummary {
  const count = (s: JobStatus): number => jobs.filter((j) => j.status === s).length;
  const ranCount = count('done') + count('failed');
  return {
    outDir,
    total: jobs.length,
    done: count('done'),
    skipped: count('skipped'),
    failed: count('failed'),
    cancelled: count('cancelled'),
    seconds,
    jobsPerSecond: seconds > 0 ? ranCount / seconds : 0,
    jobs,
  };
}

/** The last two segments of a path: enough to tell inputs apart in a table. */
const shortPath = (p: string): string => p.split(/[\\/]/).slice(-2).join('/');

/** The summary as a text table: one row per job, with its options and first diagnostics. */
export function formatSummary(summary: BatchSummary): string {
  summary = expectSummary(summary, 'summary');
  const rows: string[][] = [['id', 'status', 'seconds', 'input', 'options', 'result']];
  for (const j of summary.jobs) {
    const options = Object.entries(j.options)
      .map(([k, v]) => `${k}=${typeof v === 'object' ? JSON.stringify(v) : String(v)}`)
      .join(' ');
    const result =
      j.status === 'failed'
        ? `${j.error?.name}: ${j.error?.message}`.slice(0, 80)
        : Object.entries(j.diagnostics ?? {})
            .slice(0, 3)
            .map(([k, v]) => `${k}=${typeof v === 'number' ? (v === 0 ? '0' : v.toPrecision(4)) : v}`)
            .join(' ');
    rows.push([j.id, j.status, j.seconds.toFixed(2), Object.values(j.input).map(shortPath).join(','), options, result]);
  }
  const widths = rows[0]!.map((_, c) => Math.min(48, Math.max(...rows.map((r) => r[c]!.length))));
  const line = (r: string[]): string => r.map((cell, c) => (c === r.length - 1 ? cell : cell.padEnd(widths[c]!))).join('  ');
  const totals =
    `${summary.total} jobs: ${summary.done} done, ${summary.skipped} skipped (already finished), ` +
    `${summary.failed} failed, ${summary.cancelled} cancelled in ${summary.seconds.toFixed(2)} s` +
    (summary.done + summary.failed > 0 ? ` (${summary.jobsPerSecond.toFixed(2)} jobs/s)` : '');
  return [line(rows[0]!), ...rows.slice(1).map(line), totals].join('\n');
}

const statuses: readonly JobStatus[] = ['done', 'skipped', 'failed', 'cancelled'];

/** A BatchSummary given back by a caller (e.g. parsed from summary.json), checked and copied field by field. */
function expectSummary(v: unknown, name: string): BatchSummary {
  const what = 'a batch summary {outDir, total, done, …, jobs}';
  const f = new Map(readRecord(v, name, what));
  const count = (key: string): number => expectNonNegativeNumber(f.get(key), `${name}.${key}`);
  const jobs = readList(f.get('jobs'), `${name}.jobs`, 'a list of job outcomes').map((j, i): JobOutcome => {
    const at = `${name}.jobs[${i}]`;
    const o = new Map(readRecord(j, at, 'a job outcome {id, status, seconds, input, options, …}'));
    const status = expectString(o.get('status'), `${at}.status`) as JobStatus;
    if (!statuses.includes(status)) throw new RangeError(`Expected one of ${statuses.join(', ')} for ${at}.status but received ${describe(status)}`);
    const record = (key: string): Record<string, unknown> => Object.fromEntries(readRecord(o.get(key), `${at}.${key}`, 'an object'));
    const outcome: JobOutcome = {
      id: expectString(o.get('id'), `${at}.id`),
      method: expectString(o.get('method'), `${at}.method`),
      input: Object.fromEntries(Object.entries(record('input')).map(([k, p]) => [k, expectString(p, `${at}.input.${k}`, 'a path')])),
      options: record('options'),
      status,
      seconds: expectNonNegativeNumber(o.get('seconds'), `${at}.seconds`),
    };
    if (o.get('diagnostics') !== undefined) outcome.diagnostics = record('diagnostics') as Record<string, number | string>;
    if (o.get('error') !== undefined) {
      const e = readObject(o.get('error'), `${at}.error`, 'an error {name, message}', ['name', 'message', 'numerical']);
      outcome.error = { name: expectString(e.name, `${at}.error.name`), message: expectString(e.message, `${at}.error.message`) };
    }
    return outcome;
  });
  return {
    outDir: expectString(f.get('outDir'), `${name}.outDir`),
    total: count('total'),
    done: count('done'),
    skipped: count('skipped'),
    failed: count('failed'),
    cancelled: count('cancelled'),
    seconds: count('seconds'),
    jobsPerSecond: count('jobsPerSecond'),
    jobs,
  };
}
