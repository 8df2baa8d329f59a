// The BullMQ queue for real: a redis-server on a random loopback port, several `nsa-flow worker`
// processes, `nsa-flow batch --queue`; one worker is killed (SIGKILL) in the middle of a job, and the
// batch still completes with every result present exactly once. Throughput against the local pool.
import type { ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { runBatch } from '../lib/batch/run.js';
import { finished, startCli, tempDir } from './helpers/cli-run.js';
import { startRedis, type RedisServer } from './helpers/cli-redis.js';
import { dataFile } from './helpers/shared.js';

// Real work: Newton–Schulz retraction of the 9857 × 17 Lending Club matrix, ~0.3 s per job on one
// core; 12 distinct jobs (the iteration count differs, so the ids differ).
const lending = dataFile('tabular/lending_club_X.npy');
const jobsFile = (dir: string): string => {
  const file = join(dir, 'jobs.json');
  const nsIterations = Array.from({ length: 12 }, (_, i) => 120 + i);
  writeFileSync(file, JSON.stringify({ method: 'retract', input: lending, options: { type: 'newtonSchulz', nsIterations } }));
  return file;
};

let redis: RedisServer;
const started: ChildProcess[] = [];

interface WorkerHandle {
  child: ChildProcess;
  events: Record<string, unknown>[];
  /** Resolves with the first event of this kind. */
  next(event: string): Promise<Record<string, unknown>>;
}

/** A worker writing under `outRoot` and reading inputs only from the folder of the input used here. */
function startWorker(queueName: string, outRoot: string): WorkerHandle {
  const child = startCli(['worker', '--queue', redis.url, '--queue-name', queueName, '--out', outRoot, '--input-root', dirname(lending), '--lock-ms', '1000', '--threads', '1']);
  started.push(child);
  const events: Record<string, unknown>[] = [];
  const waiters: { event: string; resolve: (e: Record<string, unknown>) => void }[] = [];
  createInterface({ input: child.stdout! }).on('line', (line) => {
    const e = JSON.parse(line) as Record<string, unknown>;
    events.push(e);
    for (const w of waiters.filter((x) => x.event === e.event)) {
      waiters.splice(waiters.indexOf(w), 1);
      w.resolve(e);
    }
  });
  return {
    child,
    events,
    next: (event) =>
      new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no '${event}' event from worker within 30 s`)), 30_000);
        waiters.push({ event, resolve: (e) => (clearTimeout(timer), resolve(e)) });
      }),
  };
}

beforeAll(async () => {
  redis = await startRedis();
});

afterAll(async () => {
  for (const c of started) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  await redis?.stop();
});

describe('nsa-flow batch --queue with nsa-flow worker processes', () => {
  it('a worker killed mid-job: its job is retried by another and every result exists exactly once', async () => {
    const dir = tempDir('queue');
    const out = join(dir, 'results');
    const workers = [startWorker('kill-test', dir), startWorker('kill-test', dir), startWorker('kill-test', dir)];
    await Promise.all(workers.map((w) => w.next('ready')));
    const victim = workers[0]!;
    const batch = finished(startCli(['batch', jobsFile(dir), '--queue', redis.url, '--queue-name', 'kill-test', '--out', out, '--timeout', '45', '--json']), 50_000);
    const active = await victim.next('active');
    victim.child.kill('SIGKILL'); // in the middle of its job: the job takes ~0.3 s and has just started
    const r = await batch;
    expect(r.code, r.stderr).toBe(0);
    const summary = JSON.parse(r.stdout.trim().split('\n').at(-1)!);
    expect(summary).toMatchObject({ event: 'summary', total: 12, done: 12, failed: 0 });

    const ids = readdirSync(out).filter((n) => n.startsWith('retract-'));
    expect(ids).toHaveLength(12); // one directory per job
    for (const id of ids) expect(existsSync(join(out, id, 'result.json'))).toBe(true);
    // Anything else in the directory can only be the killed worker's unfinished temporary.
    const victimPid = String(victim.child.pid);
    for (const other of readdirSync(out).filter((n) => n.startsWith('.'))) expect(other).toContain(`.tmp-${victimPid}-`);

    // The killed job was completed by a survivor, and no job was completed twice.
    const completed = workers.slice(1).flatMap((w) => w.events.filter((e) => e.event === 'completed' && e.status === 'done'));
    const perId = new Map<string, number>();
    for (const e of completed) perId.set(e.id as string, (perId.get(e.id as string) ?? 0) + 1);
    expect(perId.get(active.id as string)).toBe(1);
    expect(victim.events.filter((e) => e.event === 'completed' && e.id === active.id)).toEqual([]); // it never finished it
    expect([...perId.values()].every((n) => n === 1)).toBe(true);
    expect(perId.size + victim.events.filter((e) => e.event === 'completed').length).toBe(12);
  });

  it('throughput: 2 queue workers (one BLAS thread each) against the local pool with 2 jobs at once, on the same jobs', async () => {
    const dir = tempDir('queue-rate');
    const file = jobsFile(dir);
    const workers = [startWorker('rate-test', dir), startWorker('rate-test', dir)];
    await Promise.all(workers.map((w) => w.next('ready')));
    const queued = await finished(startCli(['batch', file, '--queue', redis.url, '--queue-name', 'rate-test', '--out', join(dir, 'queue'), '--timeout', '45', '--json']), 50_000);
    expect(queued.code, queued.stderr).toBe(0);
    const q = JSON.parse(queued.stdout.trim().split('\n').at(-1)!);
    const local = await runBatch(JSON.parse((await import('node:fs')).readFileSync(file, 'utf8')), { outDir: join(dir, 'local'), concurrency: 2 });
    expect(q.done).toBe(12);
    expect(local.done).toBe(12);
    console.log(
      `[queue throughput] 12 retract jobs (Newton–Schulz, 9857×17): queue with 2 worker processes ${q.jobsPerSecond.toFixed(2)} jobs/s ` +
        `(${q.seconds.toFixed(2)} s from enqueue to last result), local pool concurrency 2 ${local.jobsPerSecond.toFixed(2)} jobs/s ` +
        `(${local.seconds.toFixed(2)} s); ratio queue/local ${(q.jobsPerSecond / local.jobsPerSecond).toFixed(2)}`,
    );
  });

  it('workers stop cleanly on SIGINT (exit 0)', async () => {
    const alive = started.filter((c) => c.exitCode === null && c.signalCode === null);
    expect(alive.length).toBe(4); // 3 + 2 started, 1 killed
    const exits = alive.map((c) => new Promise<number | null>((resolve) => c.once('exit', (code) => resolve(code))));
    for (const c of alive) c.kill('SIGINT');
    expect(await Promise.all(exits)).toEqual([0, 0, 0, 0]);
  });
});
