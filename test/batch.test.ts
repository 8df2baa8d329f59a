// runBatch and `nsa-flow batch`: jobs and grids, stable ids, bounded concurrency with one BLAS thread
// per job, results streamed per job, failures recorded, resume, cancellation — with `retract` on real
// matrices from data/.
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';

import { describe, expect, it } from 'vitest';

import { expandJobs, jobId, prepareJobs } from '../lib/batch/jobs.js';
import { executeJob, runBatch, type BatchEvent } from '../lib/batch/run.js';
import { UsageError } from '../lib/cli/flags.js';
import { AbortError } from '../lib/errors.js';
import { readMatrix, readNpy, writeNpy } from '../lib/io/index.js';
import type { Matrix } from '../lib/matrix.js';
import { retract } from '../lib/ortho.js';
import { getBlasThreads } from '../lib/runtime.js';
import { runMain, tempDir } from './helpers/cli-run.js';
import { registerStepsMethod } from './helpers/cli-steps-method.js';
import { dataFile, relativeError } from './helpers/shared.js';

registerStepsMethod();
const wine = dataFile('sklearn_small/wine_X.npy'); // 178 × 13
const cancer = dataFile('sklearn_small/breast_cancer_X.npy'); // 569 × 30
const ames = dataFile('tabular/ames_X.npy'); // 2930 × 31
const wide = dataFile('leukemia_all/ALL_expr_top1000var.npy'); // 128 × 1000: Stiefel retractions refuse it

const grid = {
  method: 'retract',
  inputs: [wine, cancer, ames],
  options: { type: ['polar', 'softPolar', 'newtonSchulz'], w: [0.5, 1] },
};

describe('jobs and grids', () => {
  it('a grid expands deterministically: inputs × option values, in the order written', () => {
    const jobs = expandJobs(grid);
    expect(jobs).toHaveLength(18); // 3 inputs × 3 types × 2 weights
    expect(jobs[0]).toEqual({ method: 'retract', input: wine, options: { type: 'polar', w: 0.5 } });
    expect(jobs[1]!.options).toEqual({ type: 'polar', w: 1 }); // the last option varies fastest
    expect(jobs[17]).toEqual({ method: 'retract', input: ames, options: { type: 'newtonSchulz', w: 1 } });
    expect(expandJobs(grid)).toEqual(jobs); // same file, same list
  });

  it('ids hash method, input and validated options: explicit defaults give the same id', () => {
    const prepared = prepareJobs(
      [
        { method: 'retract', input: wine, options: { type: 'polar' } },
        { method: 'retract', input: wine, options: { type: 'polar', w: 1, nsIterations: 5 } },
        { method: 'retract', input: wine, options: { type: 'polar', w: 0.5 } },
      ],
      process.cwd(),
    );
    expect(prepared).toHaveLength(2); // the second job is the first one again: run once
    const [a, c] = prepared;
    expect(a!.id).toMatch(/^retract-[0-9a-f]{12}$/);
    expect(a!.id).toBe(jobId('retract', { Y: wine }, { type: 'polar', w: 1, nsIterations: 5, polarMethod: 'auto' }));
    expect(c!.id).not.toBe(a!.id);
  });

  it('every job is validated before any runs; messages name the job', () => {
    const bad = (jobs: unknown, message: RegExp): void => {
      expect(() => prepareJobs(expandJobs(jobs), process.cwd())).toThrow(UsageError);
      expect(() => prepareJobs(expandJobs(jobs), process.cwd())).toThrow(message);
    };
    bad([{ method: 'retract', input: wine }, { method: 'factorize', input: wine }], /Unknown method 'factorize' in job 1; registered methods: retract/);
    bad([{ method: 'retract', input: wine, options: { w: 3 } }], /Expected a finite number in \[0, 1\] for options\.w of job 0 \(retract\) but received 3/);
    bad([{ method: 'retract', input: 'nowhere.npy' }], /Input file not found: nowhere\.npy \(input Y of job 0 \(retract\)\)/);
    bad({ method: 'retract', inputs: [wine], options: { rank: [2, 3] } }, /Unknown option 'rank' in grid; retract take: type, w, nsIterations, polarMethod/);
    bad({ inputs: [wine] }, /Expected 'method' or 'methods' in grid/);
  });
});

describe('runBatch on real matrices', () => {
  it('runs a grid with 2 jobs at once, one BLAS thread each, records a failure and goes on; re-running resumes', async () => {
    const outDir = tempDir('batch');
    const threadsBefore = getBlasThreads();
    const events: BatchEvent[] = [];
    const jobs = { jobs: [{ method: 'retract', input: wide, options: { type: 'polar' } }], grid };
    const summary = await runBatch(jobs, { outDir, concurrency: 2, onProgress: (e) => events.push(e) });
    expect(summary).toMatchObject({ total: 19, done: 18, failed: 1, skipped: 0, cancelled: 0 }); // 18 grid jobs + the wide one
    expect(events.filter((e) => e.type === 'start')).toHaveLength(19);
    expect(events.filter((e) => e.type === 'end').map((e) => (e as { done: number }).done)).toEqual(Array.from({ length: 19 }, (_, i) => i + 1));
    expect(getBlasThreads()).toBe(threadsBefore); // restored after the batch

    const failed = summary.jobs.find((j) => j.status === 'failed')!;
    expect(failed.input).toEqual({ Y: wide });
    const error = JSON.parse(readFileSync(join(outDir, failed.id, 'error.json'), 'utf8'));
    expect(error).toMatchObject({ name: 'RangeError', numerical: false });
    expect(error.message).toMatch(/rows ≥ cols .* 128×1000/);

    // Each finished job: its directory holds the API's result (to rounding: the batch ran BLAS on one
    // thread, this call may use several, which changes the order of floating-point sums).
    for (const j of summary.jobs.filter((x) => x.status === 'done')) {
      const Y = readNpy(join(outDir, j.id, 'Y.npy'));
      const expected = retract(readMatrix(j.input.Y!) as Matrix, j.options);
      expect(Y.shape).toEqual([expected.rows, expected.cols]);
      expect(relativeError(Y.data, expected.data)).toBeLessThan(1e-12);
      const json = JSON.parse(readFileSync(join(outDir, j.id, 'result.json'), 'utf8'));
      expect(json.settings).toEqual(j.options);
      expect(json.run.blasThreads).toBe(1); // concurrency 2 ⇒ one BLAS thread per job
    }
    expect(readdirSync(outDir).filter((n) => n.startsWith('.'))).toEqual([]); // no temporaries left

    // Resume: finished jobs are skipped, the failed one runs (and fails) again; a removed result reruns.
    const removed = summary.jobs.find((j) => j.status === 'done')!.id;
    rmSync(join(outDir, removed), { recursive: true });
    const again = await runBatch(jobs, { outDir, concurrency: 2 });
    expect(again).toMatchObject({ total: 19, done: 1, skipped: 17, failed: 1 });
    expect(again.jobs.find((j) => j.status === 'done')!.id).toBe(removed);
  });

  it('cancellation aborts running jobs and starts no more; what finished stays, the rest resumes', async () => {
    const outDir = tempDir('batch-abort');
    const jobs = [1, 2, 3, 4, 5, 6].map((seed) => ({ method: 'test-steps', input: wine, options: { steps: 20, stepMs: 10, seed } }));
    const controller = new AbortController();
    let ended = 0;
    const run = runBatch(jobs, {
      outDir,
      concurrency: 2,
      signal: controller.signal,
      onProgress: (e) => {
        if (e.type === 'end' && ++ended === 2) controller.abort(); // two jobs finished
      },
    });
    await expect(run).rejects.toThrow(AbortError);
    const dirs = readdirSync(outDir).filter((n) => n.startsWith('test-steps-'));
    expect(dirs.length).toBeGreaterThanOrEqual(2); // the two that ended before the abort
    expect(dirs.length).toBeLessThan(6);
    for (const d of dirs) expect(existsSync(join(outDir, d, 'result.json'))).toBe(true); // whole, never half
    expect(readdirSync(outDir).filter((n) => n.startsWith('.'))).toEqual([]);
    const resumed = await runBatch(jobs, { outDir, concurrency: 2 });
    expect(resumed.skipped).toBe(dirs.length);
    expect(resumed.done).toBe(6 - dirs.length);
  });
});

describe('executeJob on an output folder it cannot write', () => {
  it('records the job as failed with both reasons instead of throwing', async () => {
    const dir = tempDir('batch-unwritable');
    const input = join(dir, 'y.npy');
    writeNpy(input, { rows: 5, cols: 2, data: Float64Array.from({ length: 10 }, (_, i) => Math.cos(i)) });
    // The "output folder" is a regular file, so nothing can be created under it (even by root).
    const outDir = join(dir, 'not-a-folder');
    writeFileSync(outDir, 'x');
    const [job] = prepareJobs([{ method: 'retract', input }], dir);
    const outcome = await executeJob(job!, outDir);
    expect(outcome.status).toBe('failed');
    // The result could not be written; neither could its error.json: the outcome carries both.
    expect(outcome.error!.message).toMatch(/^E\w+: .*not-a-folder.* \(its error\.json could not be written either: E\w+: .*not-a-folder/);
    expect(readFileSync(outDir, 'utf8')).toBe('x');
  });
});

describe('nsa-flow batch', () => {
  it('runs a jobs file with paths relative to it and prints the summary table', async () => {
    const dir = tempDir('batch-cli');
    const rel = (p: string): string => relative(dir, p);
    writeFileSync(
      join(dir, 'jobs.json'),
      JSON.stringify({ jobs: [{ method: 'retract', input: rel(wide), options: { type: 'cayley' } }], grid: { method: 'retract', inputs: [rel(wine)], options: { type: ['polar', 'cayley'] } } }),
    );
    const r = await runMain(['batch', join(dir, 'jobs.json'), '--concurrency', '2']);
    expect(r.code).toBe(1); // one job failed: the batch says so in its exit code
    expect(r.stdout).toMatch(/3 jobs: 2 done, 0 skipped \(already finished\), 1 failed, 0 cancelled/);
    expect(r.stdout).toMatch(/failed .*RangeError: Expected rows ≥ cols/);
    expect(readdirSync(join(dir, 'jobs.out')).filter((n) => n.startsWith('retract-'))).toHaveLength(3); // default --out: jobs.out
    const events = r.stderr.trim().split('\n').map((l) => JSON.parse(l)); // NDJSON: stderr is not a TTY
    expect(events.filter((e) => e.event === 'job-end')).toHaveLength(3);
    const again = await runMain(['batch', join(dir, 'jobs.json'), '--json']);
    const summary = JSON.parse(again.stdout.trim().split('\n').at(-1)!);
    expect(summary).toMatchObject({ event: 'summary', total: 3, skipped: 2, failed: 1 });
  });

  it('a bad jobs file exits with 2 and names the problem', async () => {
    const dir = tempDir('batch-bad');
    writeFileSync(join(dir, 'jobs.json'), '[{"method": "retract", "input": "x.npy"');
    const r = await runMain(['batch', join(dir, 'jobs.json')]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/Cannot parse jobs file .*jobs\.json/);
    expect(existsSync(join(dir, 'jobs.out'))).toBe(false); // nothing ran, nothing written
  });
});
