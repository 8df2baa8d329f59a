// Terminates worker_threads Workers in the middle of long native solves, round after round.
// Run as a process (`node --import tsx test/helpers/teardown-child.ts <rounds>`) so that an abort
// of the process is seen by the test as a signal. The same file is the Workers' script.
//
// Each round starts one Worker that submits a long async solve of every family (nmf on 2000×1000,
// stratifiedNmf, retractBatchAsync, stratifiedNtf, nsaFlow) and is terminated, in turn:
//   'progress': once every solve has reported progress (all five are mid-solve),
//   'submitted': right after submitting (the jobs' threads are starting or have just started),
//   'queued': with concurrency 1, once the first solve reports progress while four wait in the JS FIFO,
//   'churn': while short jobs keep being submitted, completing and failing (their callbacks throw),
//            so that termination meets bindings being called and jobs completing: after 20 settled
//            jobs plus a delay that differs from round to round.
// Every solve is sized to run for minutes, so a terminate() that waited for a solve would time out.
// The last line printed is a JSON summary. With the argument `exit` instead, the main thread itself
// calls process.exit(0) in the middle of the five solves.
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';

import { nmf, retractBatchAsync, setConcurrency } from '../../lib/index.js';
import { longSolves, uniformMatrix, uniformTensor } from './long-jobs.js';

type Mode = 'progress' | 'submitted' | 'queued' | 'churn';
const families = ['nmf', 'stratifiedNmf', 'retractBatchAsync', 'stratifiedNtf', 'nsaFlow'] as const;

/** Starts the five long solves; `onFirstProgress(family)` once per family. */
function startSolves(onFirstProgress: (family: string) => void): Array<Promise<unknown>> {
  return families.map((family) => {
    let seen = false;
    const onProgress = (): void => {
      if (!seen) onFirstProgress(family);
      seen = true;
    };
    return longSolves[family]!.run({ progressIntervalMs: 0, onProgress });
  });
}

/** Short jobs in a loop, four at a time; every third one's callback throws. Reports after 20 settled. */
function churn(): void {
  const port = parentPort!;
  const Y = uniformTensor([8, 30, 5], 21);
  const A = uniformMatrix(60, 40, 22);
  let settled = 0;
  let i = 0;
  const submit = (): void => {
    const k = i++;
    const onProgress = k % 3 === 0 ? (): void => { throw k; } : (): void => {};
    const job =
      k % 2 === 0
        ? retractBatchAsync(Y, { type: 'polar', polarMethod: 'svd', progressIntervalMs: 0, onProgress })
        : nmf(A, 3, { maxIterations: 50, progressIntervalMs: 0, onProgress });
    job.then(onSettled, onSettled);
  };
  const onSettled = (): void => {
    if (++settled === 20) port.postMessage({ ready: [] });
    submit();
  };
  setConcurrency(4);
  for (let j = 0; j < 4; j++) submit();
}

function workerMain(mode: Mode): void {
  if (mode === 'churn') return churn();
  const port = parentPort!;
  setConcurrency(mode === 'queued' ? 1 : families.length);
  const reported = new Set<string>();
  const jobs = startSolves((family) => {
    reported.add(family);
    if (process.env.TEARDOWN_DEBUG) console.error('progress', family);
    if (mode === 'queued' || reported.size === families.length) port.postMessage({ ready: [...reported] });
  });
  // A solve that ends before it is terminated is a failure of the test's sizing, reported as such.
  // (The round then ends at once, so that the summary shows it instead of a timeout.)
  jobs.forEach((job, i) =>
    job.then(
      () => port.postMessage({ finished: families[i], ready: [] }),
      (err: unknown) => port.postMessage({ failed: families[i], error: String(err), ready: [] }),
    ),
  );
  if (mode === 'submitted') port.postMessage({ ready: [] });
}

async function round(mode: Mode, delayMs: number): Promise<{ exitCode: number; ready: string[]; unexpected: unknown[] }> {
  const worker = new Worker(new URL('./ts-worker-entry.mjs', import.meta.url), { workerData: { module: import.meta.url, mode } });
  const unexpected: unknown[] = [];
  const ready = await new Promise<string[]>((resolve, reject) => {
    worker.on('message', (m: { ready?: string[] }) => {
      if (process.env.TEARDOWN_DEBUG) console.error(mode, JSON.stringify(m));
      if ('finished' in m || 'failed' in m) unexpected.push(m);
      if (m.ready) resolve(m.ready);
    });
    worker.once('error', reject);
    worker.once('exit', (code) => reject(new Error(`worker exited with ${code} before it was terminated`)));
  });
  if (mode === 'churn') await new Promise((resolve) => setTimeout(resolve, delayMs));
  if (process.env.TEARDOWN_DEBUG) console.error(mode, 'terminating');
  const exitCode = await worker.terminate();
  if (process.env.TEARDOWN_DEBUG) console.error(mode, 'terminated', exitCode);
  return { exitCode, ready, unexpected };
}

async function main(): Promise<void> {
  const rounds = Number(process.argv[2] ?? 20);
  const modes: Mode[] = ['progress', 'submitted', 'queued', 'churn'];
  const summary = { rounds: 0, terminated: 0, readyFamilies: {} as Record<string, number>, unexpected: [] as unknown[], exitCodes: [] as number[] };
  for (let i = 0; i < rounds; i++) {
    const r = await round(modes[i % modes.length]!, (i * 7) % 31);
    summary.rounds++;
    summary.exitCodes.push(r.exitCode);
    if (r.exitCode === 1) summary.terminated++; // terminate() resolves with 1 for a terminated Worker
    for (const f of r.ready) summary.readyFamilies[f] = (summary.readyFamilies[f] ?? 0) + 1;
    summary.unexpected.push(...r.unexpected);
  }
  console.log(JSON.stringify(summary));
}

/** `exit` mode: the main thread calls process.exit(0) once all five solves are running. */
function exitMidSolve(): void {
  setConcurrency(families.length);
  const reported = new Set<string>();
  startSolves((family) => {
    reported.add(family);
    if (reported.size === families.length) process.exit(0);
  });
}

if (isMainThread && process.argv[2] === 'exit') {
  exitMidSolve();
} else if (isMainThread) {
  main().catch((err: unknown) => {
    console.error(err);
    process.exit(2);
  });
} else {
  workerMain((workerData as { mode: Mode }).mode);
}
