// A queue worker trusts nothing in a job's payload: ids that are not the stable form, output folders
// outside its --out root, inputs outside its --input-root folders (symbolic links resolved) are
// refused with the reason on the queue, and nothing is written or deleted outside the roots. Also: the
// enqueuer reads outcomes without the getJob/getState race, and a missing bullmq is one clear error.
import type { ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, realpathSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { pathToFileURL } from 'node:url';
import { createInterface } from 'node:readline';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { prepareJobs, type Job } from '../lib/batch/jobs.js';
import {
  admitJob,
  enqueueBatch,
  JobRefusedError,
  loadQueuePackages,
  QueueTimeoutError,
  readOutcome,
  resolveWorkerRoots,
  type QueueReader,
  type WorkerRoots,
} from '../lib/batch/queue.js';
import { MissingPackageError } from '../lib/errors.js';
import { executeJob, type JobOutcome } from '../lib/batch/run.js';
import { parseArgs } from '../lib/cli/flags.js';
import { AbortError } from '../lib/errors.js';
import { writeNpy } from '../lib/io/index.js';
import { finished, runMain, startCli, tempDir } from './helpers/cli-run.js';
import { freePort, startRedis, type RedisServer } from './helpers/cli-redis.js';
import { repoRoot } from './helpers/shared.js';

/** Every path under `dir` (files and folders, symbolic links not followed), relative, sorted. */
function listTree(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string): void => {
    for (const name of readdirSync(d)) {
      const p = join(d, name);
      out.push(relative(dir, p));
      if (statSync(p, { throwIfNoEntry: false })?.isDirectory() && !isLink(p)) walk(p);
    }
  };
  walk(dir);
  return out.sort();
}
const isLink = (p: string): boolean => {
  try {
    return realpathSync(p) !== p;
  } catch {
    return true;
  }
};

/**
 * The world of one test: world/out (the worker's output root), world/data (its input root, with x.npy
 * and link.npy → ../secret/y.npy), world/secret/y.npy (outside the roots), world/victim/keep.txt (an
 * existing folder beside the root that '../victim' would name).
 */
function makeWorld(tag: string): { world: string; roots: WorkerRoots; x: string; secret: string; link: string; job: Job } {
  const world = realpathSync(tempDir(tag));
  for (const d of ['out', 'data', 'secret', 'victim']) mkdirSync(join(world, d));
  const matrix = { rows: 6, cols: 2, data: Float64Array.from({ length: 12 }, (_, i) => Math.sin(i + 1)) };
  const x = join(world, 'data', 'x.npy');
  const secret = join(world, 'secret', 'y.npy');
  const link = join(world, 'data', 'link.npy');
  writeNpy(x, matrix);
  writeNpy(secret, matrix);
  symlinkSync(join('..', 'secret', 'y.npy'), link);
  writeFileSync(join(world, 'victim', 'keep.txt'), 'must survive\n');
  const roots = resolveWorkerRoots({ outDir: join(world, 'out'), inputRoots: [join(world, 'data')] });
  const job = prepareJobs([{ method: 'retract', input: x }], world)[0]!;
  return { world, roots, x, secret, link, job };
}

function refusal(fn: () => unknown): JobRefusedError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(JobRefusedError);
    return err as JobRefusedError;
  }
  throw new Error('expected the job to be refused');
}

describe('admitJob: crafted payloads', () => {
  const w = makeWorld('admit');
  const { roots, job } = w;
  const payload = (j: Partial<Job> & Record<string, unknown>, outDir?: unknown): unknown => ({ job: { ...job, ...j }, outDir: outDir ?? roots.outDir });

  it('accepts a well-formed job and resolves its input to the file that will be read', () => {
    expect(job.id).toMatch(/^retract-[0-9a-f]{12}$/);
    const admitted = admitJob(payload({}), job.id, roots);
    expect(admitted.outDir).toBe(roots.outDir);
    expect(admitted.job).toEqual({ ...job, input: { Y: w.x } });
    // A folder inside the root (the batch's --out below the worker's) is fine, created or not.
    expect(admitJob(payload({}, join(roots.outDir, 'batch-1')), job.id, roots).outDir).toBe(join(roots.outDir, 'batch-1'));
  });

  it('refuses ids that are not <method>-<12 hex digits>, or differ from the queue job id', () => {
    for (const id of ['../x', '/tmp/x', `${job.id}/..`, 'retract-ABCDEF012345', 'flow-0123456789ab', '']) {
      const err = refusal(() => admitJob(payload({ id }), id, roots));
      expect(err.message).toBe(`Refused job ${JSON.stringify(id)}: expected an id of the form retract-<12 hex digits> but received the string ${JSON.stringify(id)}`);
    }
    const other = 'retract-000000000000';
    expect(refusal(() => admitJob(payload({}), other, roots)).message).toBe(`Refused job "${other}": the queue job id differs from the payload's id "${job.id}"`);
    expect(refusal(() => admitJob(payload({ method: 'rm' }), job.id, roots)).message).toBe(`Refused job "${job.id}": unknown method the string "rm"`);
    expect(refusal(() => admitJob(null, 'x', roots)).message).toBe('Refused job "x": expected a payload {job, outDir} but received null');
  });

  it('refuses an outDir outside the output root (by path or through a link) and a relative one', () => {
    const elsewhere = join(w.world, 'elsewhere');
    expect(refusal(() => admitJob(payload({}, elsewhere), job.id, roots)).message).toBe(
      `Refused job "${job.id}": its outDir ${elsewhere} is outside this worker's output root ${roots.outDir}`,
    );
    expect(refusal(() => admitJob(payload({}, join(roots.outDir, '..', 'victim')), job.id, roots)).message).toContain('is outside this worker\'s output root');
    const linkOut = join(roots.outDir, 'to-victim');
    symlinkSync(join(w.world, 'victim'), linkOut);
    expect(refusal(() => admitJob(payload({}, join(linkOut, 'sub')), job.id, roots)).message).toContain(`its outDir ${join(linkOut, 'sub')} is outside`);
    // A dangling link inside the root is not taken for a folder still to be created.
    const dangling = join(roots.outDir, 'dangling');
    symlinkSync(join(w.world, 'gone'), dangling);
    expect(refusal(() => admitJob(payload({}, join(dangling, 'sub')), job.id, roots)).message).toBe(
      `Refused job "${job.id}": its outDir ${join(dangling, 'sub')} cannot be resolved (ENOENT)`,
    );
    expect(refusal(() => admitJob(payload({}, 'out'), job.id, roots)).message).toBe(`Refused job "${job.id}": expected an absolute path for outDir but received the string "out"`);
    // The job's own folder may not be a link (replacing it would act on the target), even a dangling one.
    for (const [linkedJob, target] of [['retract-0123456789ab', join(w.world, 'victim')], ['retract-0123456789ac', join(w.world, 'gone')]]) {
      symlinkSync(target!, join(roots.outDir, linkedJob!));
      expect(refusal(() => admitJob(payload({ id: linkedJob }), linkedJob, roots)).message).toBe(
        `Refused job "${linkedJob}": its result folder ${join(roots.outDir, linkedJob!)} is a symbolic link`,
      );
    }
  });

  it('refuses inputs outside the input roots, through a symbolic link, relative or missing', () => {
    expect(refusal(() => admitJob(payload({ input: { Y: w.secret } }), job.id, roots)).message).toBe(
      `Refused job "${job.id}": input Y ${w.secret} is outside this worker's input roots (${join(w.world, 'data')})`,
    );
    // data/link.npy lies inside the root by name, but resolves to secret/y.npy.
    expect(refusal(() => admitJob(payload({ input: { Y: w.link } }), job.id, roots)).message).toBe(
      `Refused job "${job.id}": input Y ${w.link} (which resolves to ${w.secret}) is outside this worker's input roots (${join(w.world, 'data')})`,
    );
    expect(refusal(() => admitJob(payload({ input: { Y: 'data/x.npy' } }), job.id, roots)).message).toBe(
      `Refused job "${job.id}": expected an absolute path for input Y but received "data/x.npy"`,
    );
    const absent = join(w.world, 'data', 'absent.npy');
    expect(refusal(() => admitJob(payload({ input: { Y: absent } }), job.id, roots)).message).toBe(`Refused job "${job.id}": input file not found: ${absent} (input Y)`);
    expect(refusal(() => admitJob(payload({ input: { Z: w.x } }), job.id, roots)).message).toBe(`Refused job "${job.id}": unknown input 'Z' (retract reads: Y)`);
    expect(refusal(() => admitJob(payload({ input: {} }), job.id, roots)).message).toMatch(new RegExp(`^Refused job "${job.id}": missing input Y `));
    // Options are validated as a jobs file's are.
    expect(refusal(() => admitJob(payload({ options: { w: 'x' } }), job.id, roots)).message).toMatch(new RegExp(`^Refused job "${job.id}": Expected .* for options\\.w of job ${job.id}`));
  });

  it('several input roots: an input under any of them is admitted (--input-root is repeatable)', () => {
    const args = parseArgs(['--input-root', join(w.world, 'secret'), '--input-root', join(w.world, 'data')], {}, {
      inputRoot: { kind: 'string', repeatable: true, description: 'roots' },
    });
    expect(args.lists.inputRoot).toEqual([join(w.world, 'secret'), join(w.world, 'data')]);
    const two = resolveWorkerRoots({ outDir: roots.outDir, inputRoots: args.lists.inputRoot! });
    // secret/y.npy, directly or through data/link.npy, is now inside a root.
    expect(admitJob(payload({ input: { Y: w.link } }), job.id, two).job.input).toEqual({ Y: w.secret });
  });

  it('executeJob refuses an id that is not a job id before touching the disk', async () => {
    const before = listTree(w.world);
    const err = await executeJob({ ...job, id: '../victim' }, roots.outDir).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RangeError);
    expect((err as Error).message).toBe('Expected an id of the form <method>-<12 hex digits> for job.id but received the string "../victim"');
    expect(listTree(w.world)).toEqual(before);
    expect(readFileSync(join(w.world, 'victim', 'keep.txt'), 'utf8')).toBe('must survive\n');
  });
});

describe('reading outcomes from the queue', () => {
  const job: Job = { id: 'retract-0123456789ab', method: 'retract', input: { Y: '/x.npy' }, options: {} };
  const outcome: JobOutcome = { ...job, status: 'done', seconds: 1 };

  it('a job completing between the two reads is read consistently (state first, then the value)', async () => {
    // The interleaving seen under load: the job is active until the first read of this poll returns,
    // and completes right after it. A reader taking the job first and its state second saw
    // 'completed' with the job's earlier snapshot, whose return value was null.
    let completed = false;
    const queue: QueueReader = {
      async getJobState() {
        const state = completed ? 'completed' : 'active';
        completed = true;
        return state;
      },
      async getJob() {
        const snapshot = { returnvalue: completed ? outcome : null, failedReason: '' };
        completed = true;
        return snapshot;
      },
    };
    expect(await readOutcome(queue, job)).toBeUndefined(); // still active when its state was read
    expect(await readOutcome(queue, job)).toEqual(outcome); // next poll: completed, with its value
  });

  it('a failed state is final and carries the queue reason', async () => {
    const queue: QueueReader = { getJobState: async () => 'failed', getJob: async () => ({ returnvalue: null, failedReason: 'Refused job "x": why' }) };
    expect(await readOutcome(queue, job)).toEqual({ ...job, status: 'failed', seconds: 0, error: { name: 'QueueError', message: 'Refused job "x": why' } });
    const waiting: QueueReader = { getJobState: async () => 'delayed', getJob: async () => undefined };
    expect(await readOutcome(waiting, job)).toBeUndefined(); // a retry is pending
    // A completed job whose value is not this job's outcome is failed, not waited for (nor trusted).
    const foreign: QueueReader = { getJobState: async () => 'completed', getJob: async () => ({ returnvalue: { id: 'other' }, failedReason: '' }) };
    expect(await readOutcome(foreign, job)).toEqual({
      ...job,
      status: 'failed',
      seconds: 0,
      error: { name: 'QueueError', message: 'The job completed on the queue without an outcome for retract-0123456789ab' },
    });
  });
});

describe('the queue packages are optional', () => {
  it('a missing bullmq or ioredis is one MissingPackageError that says what to install', async () => {
    for (const missing of ['bullmq', 'ioredis']) {
      const importer = async (): Promise<never> => {
        throw Object.assign(new Error(`Cannot find package '${missing}' imported from /app/x.js`), { code: 'ERR_MODULE_NOT_FOUND' });
      };
      const err = await loadQueuePackages(importer).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(MissingPackageError);
      expect((err as Error).message).toBe(
        `The job queue needs the optional packages bullmq and ioredis, which are not installed (Cannot find package '${missing}' imported from /app/x.js); install them with: npm install bullmq ioredis`,
      );
    }
    // Any other failure to load is passed through unchanged.
    const broken = new SyntaxError('Unexpected token');
    expect(await loadQueuePackages(async () => Promise.reject(broken)).catch((e: unknown) => e)).toBe(broken);
  });

  it('without bullmq installed, the CLI runs local batches and says what to install for the queue (exit 2)', async () => {
    const dir = tempDir('no-bullmq');
    const jobs = join(dir, 'jobs.json');
    writeFileSync(jobs, '[]');
    // A preloaded resolve hook makes 'bullmq' fail to resolve, as in an install without it.
    const env = { NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --import ${join(repoRoot, 'test', 'helpers', 'hide-packages.mjs')}`, NSA_FLOW_HIDE_PACKAGES: 'bullmq' };
    const run = (args: string[]) => finished(startCli(args, { env }));
    const local = await run(['batch', jobs, '--out', join(dir, 'local')]);
    expect([local.code, local.stderr]).toEqual([0, '']);
    const message = (command: string): string =>
      `nsa-flow ${command}: The job queue needs the optional packages bullmq and ioredis, which are not installed ` +
      `(Cannot find package 'bullmq' imported from ${pathToFileURL(join(repoRoot, 'lib', 'batch', 'queue.ts')).href}); install them with: npm install bullmq ioredis\n`;
    const queued = await run(['batch', jobs, '--queue', 'redis://127.0.0.1:1']);
    expect([queued.code, queued.stderr]).toEqual([2, message('batch')]);
    const worker = await run(['worker', '--queue', 'redis://127.0.0.1:1', '--out', join(dir, 'out')]);
    expect([worker.code, worker.stderr]).toEqual([2, message('worker')]);
  });
});

describe('nsa-flow worker with crafted jobs on a real queue', () => {
  let redis: RedisServer;
  let worker: ChildProcess | undefined;
  let lastWorld: ReturnType<typeof makeWorld> | undefined;
  beforeAll(async () => {
    redis = await startRedis();
  });
  afterAll(async () => {
    if (worker && worker.exitCode === null && worker.signalCode === null) worker.kill('SIGKILL');
    await redis?.stop();
  });

  it('needs --out, and its input roots must exist (exit 2)', async () => {
    const none = await runMain(['worker', '--queue', 'redis://127.0.0.1:1']);
    expect([none.code, none.stderr]).toEqual([
      2,
      "nsa-flow worker: Expected --out DIR for nsa-flow worker: the directory it writes results under (jobs cannot write elsewhere; use the batch's shared --out or a folder above it)\n",
    ]);
    const dir = tempDir('worker-flags');
    const missing = await runMain(['worker', '--queue', 'redis://127.0.0.1:1', '--out', join(dir, 'out'), '--input-root', join(dir, 'nope')]);
    expect([missing.code, missing.stderr]).toEqual([2, `nsa-flow worker: Input root not found: ${join(dir, 'nope')}\n`]);
    expect(existsSync(join(dir, 'out'))).toBe(false); // refused before creating anything
  });

  it('refuses each crafted job with its reason on the queue, runs the good one, writes and deletes nothing outside', async () => {
    const w = makeWorld('worker-sec');
    const events: Record<string, unknown>[] = [];
    worker = startCli(['worker', '--queue', redis.url, '--queue-name', 'sec', '--out', w.roots.outDir, '--input-root', join(w.world, 'data'), '--threads', '1']);
    const ready = new Promise<void>((resolve) =>
      createInterface({ input: worker!.stdout! }).on('line', (line) => {
        const e = JSON.parse(line) as Record<string, unknown>;
        events.push(e);
        if (e.event === 'ready') resolve();
      }),
    );
    await ready;
    const before = listTree(w.world);

    const { Queue } = await import('bullmq');
    const queue = new Queue('sec', { connection: { host: '127.0.0.1', port: Number(new URL(redis.url).port), maxRetriesPerRequest: null } });
    const { job } = w;
    const hex = (n: number): string => `retract-${n.toString(16).padStart(12, '0')}`;
    const crafted: { id: string; data: unknown; reason: string }[] = [
      { id: '../escaped', data: { job: { ...job, id: '../escaped' }, outDir: w.roots.outDir }, reason: 'expected an id of the form retract-<12 hex digits>' },
      // A failing job with this id used to replace (delete) the existing folder world/victim.
      { id: '../victim', data: { job: { ...job, id: '../victim', options: { w: -1 } }, outDir: w.roots.outDir }, reason: 'expected an id of the form' },
      { id: join(w.world, 'abs'), data: { job: { ...job, id: join(w.world, 'abs') }, outDir: w.roots.outDir }, reason: 'expected an id of the form' },
      { id: hex(1), data: { job: { ...job, id: hex(1) }, outDir: join(w.world, 'elsewhere') }, reason: `is outside this worker's output root` },
      { id: hex(2), data: { job: { ...job, id: hex(2), input: { Y: w.secret } }, outDir: w.roots.outDir }, reason: `input Y ${w.secret} is outside this worker's input roots` },
      { id: hex(3), data: { job: { ...job, id: hex(3), input: { Y: w.link } }, outDir: w.roots.outDir }, reason: `(which resolves to ${w.secret}) is outside` },
    ];
    for (const c of crafted) await queue.add('retract', c.data as never, { jobId: c.id, attempts: 3 });
    await queue.add('retract', { job, outDir: w.roots.outDir }, { jobId: job.id, attempts: 3 });

    const settle = async (id: string): Promise<string> => {
      for (let i = 0; i < 300; i++) {
        const state = await queue.getJobState(id);
        if (state === 'completed' || state === 'failed') return state;
        await new Promise((r) => setTimeout(r, 100));
      }
      throw new Error(`job ${id} did not finish within 30 s`);
    };
    try {
      for (const c of crafted) {
        expect(await settle(c.id)).toBe('failed');
        const q = (await queue.getJob(c.id))!;
        expect(q.failedReason).toContain(`Refused job ${JSON.stringify(c.id)}: `);
        expect(q.failedReason).toContain(c.reason);
        expect(q.attemptsMade).toBe(1); // refused once, not retried
      }
      expect(await settle(job.id)).toBe('completed');
    } finally {
      await queue.close();
    }
    expect(events.filter((e) => e.event === 'refused').map((e) => e.id)).toEqual(crafted.map((c) => c.id));
    expect(events.filter((e) => e.event === 'completed')).toMatchObject([{ id: job.id, status: 'done' }]);

    // Only the good job's folder appeared, inside the output root; nothing else changed or went away.
    const after = listTree(w.world);
    const added = after.filter((p) => !before.includes(p));
    expect(after.filter((p) => before.includes(p))).toEqual(before);
    expect(added.every((p) => p.startsWith(join('out', job.id)))).toBe(true);
    expect(added).toContain(join('out', job.id, 'result.json'));
    expect(readFileSync(join(w.world, 'victim', 'keep.txt'), 'utf8')).toBe('must survive\n');
    lastWorld = w;
  });

  it('batch --queue reports a job the worker refused as failed with the reason (no wait for retries)', async () => {
    // The worker above writes under world/out only; this batch asks for results in world/elsewhere.
    const w = lastWorld!;
    const jobsFile = join(w.world, 'jobs.json');
    writeFileSync(jobsFile, JSON.stringify([{ method: 'retract', input: w.x, options: { w: 0.25 } }]));
    const elsewhere = join(w.world, 'elsewhere');
    const r = await runMain(['batch', jobsFile, '--queue', redis.url, '--queue-name', 'sec', '--out', elsewhere, '--timeout', '30', '--json']);
    expect(r.code).toBe(1); // a failed job
    const summary = JSON.parse(r.stdout.trim().split('\n').at(-1)!);
    expect(summary).toMatchObject({ event: 'summary', total: 1, done: 0, failed: 1 });
    expect(summary.jobs[0].error.name).toBe('QueueError');
    expect(summary.jobs[0].error.message).toBe(`Refused job "${summary.jobs[0].id}": its outDir ${elsewhere} is outside this worker's output root ${w.roots.outDir}`);
    // The enqueuer wrote its own batch.json and summary.json there; the worker wrote nothing.
    expect(readdirSync(elsewhere).sort()).toEqual(['batch.json', 'summary.json']);
  });

  it('an unreachable Redis is one clear error (exit 2), not a silent wait', async () => {
    const port = await freePort(); // nothing listens there
    const dir = tempDir('no-redis');
    const jobs = join(dir, 'jobs.json');
    writeFileSync(jobs, JSON.stringify([{ method: 'retract', input: makeWorld('no-redis-data').x }]));
    const url = `redis://127.0.0.1:${port}`;
    const batch = await runMain(['batch', jobs, '--queue', url, '--out', join(dir, 'out')]);
    expect([batch.code, batch.stderr]).toEqual([2, `nsa-flow batch: Cannot reach Redis at ${url} (ECONNREFUSED); is redis-server running there?\n`]);
    const worker = await runMain(['worker', '--queue', url, '--out', join(dir, 'out')]);
    expect([worker.code, worker.stderr]).toEqual([2, `nsa-flow worker: Cannot reach Redis at ${url} (ECONNREFUSED); is redis-server running there?\n`]);
  });

  it('a Redis that stops answering mid-wait: the timeout and the abort signal still end enqueueBatch', async () => {
    const frozen = await startRedis();
    const w = makeWorld('frozen');
    const { Queue } = await import('bullmq');
    const probe = new Queue('frozen', { connection: { host: '127.0.0.1', port: Number(new URL(frozen.url).port), maxRetriesPerRequest: null } });
    const queued = async (): Promise<void> => {
      while ((await probe.getJobState(w.job.id)) !== 'waiting') await new Promise((r) => setTimeout(r, 50));
    };
    try {
      // No worker listens on 'frozen': the job stays waiting. Redis is stopped (SIGSTOP) once it is queued.
      const timed = enqueueBatch([{ method: 'retract', input: w.x }], { url: frozen.url, queueName: 'frozen', outDir: join(w.world, 'out'), timeoutMs: 1500 });
      await queued();
      frozen.process.kill('SIGSTOP');
      const err = await timed.catch((e: unknown) => e);
      expect(err).toBeInstanceOf(QueueTimeoutError);
      expect((err as Error).message).toBe('Timed out after 1500 ms waiting for 1 queued jobs (are workers running? nsa-flow worker --queue …); they stay queued');
      frozen.process.kill('SIGCONT');

      const controller = new AbortController();
      const aborted = enqueueBatch([{ method: 'retract', input: w.x }], { url: frozen.url, queueName: 'frozen', outDir: join(w.world, 'out'), signal: controller.signal });
      await queued();
      frozen.process.kill('SIGSTOP');
      controller.abort();
      expect(await aborted.catch((e: unknown) => e)).toBeInstanceOf(AbortError);
    } finally {
      frozen.process.kill('SIGCONT');
      await probe.close();
      await frozen.stop();
    }
  });
});

