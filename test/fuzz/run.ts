// Runs the fuzz child for one entry point and collects what happened: its report, or the signal that
// killed it and the call it was making, or the call it hung in.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';

export const entries = ['nsa-flow', 'nsa-flow/batch', 'nsa-flow/plot', 'nsa-flow/cli', 'raw'] as const;
export type Entry = (typeof entries)[number];

export interface FuzzReport {
  entry: string;
  targets: number;
  calls: number;
  counts: Record<string, number>;
  bad: { target: string; args: string; outcome: string }[];
  /** Raw entry only: valid calls recorded from the public API, which the raw suite mutates. */
  templateInfo?: { templates: number; functions: number; seedFailures: number };
}

export interface FuzzRun {
  entry: Entry;
  report?: FuzzReport;
  /** Set when the child died or hung: how, and the call it was in. */
  failure?: string;
}

const childScript = resolve(import.meta.dirname, 'child.ts');

/**
 * Runs the child; when it dies or hangs, records the call it was in and starts a new child after
 * that call, so that one run lists every crashing call (up to `maxRestarts`), not only the first.
 */
export function runFuzz(
  entry: Entry,
  options: { runs: number; seed: number; sandbox: string; timeoutMs: number; only?: string; env?: NodeJS.ProcessEnv; maxRestarts?: number },
): FuzzRun {
  const tag = `${entry.replace(/\W/g, '_')}-${process.pid}`;
  const report = join(options.sandbox, '..', `report-${tag}.json`);
  const progress = join(options.sandbox, '..', `progress-${tag}.txt`);
  const result: FuzzRun = { entry };
  const failures: string[] = [];
  const merged: FuzzReport = { entry, targets: 0, calls: 0, counts: {}, bad: [] };
  let skip = 0;
  const deadline = Date.now() + options.timeoutMs;
  for (let attempt = 0; attempt <= (options.maxRestarts ?? 20); attempt++) {
    const args = ['--import', 'tsx', childScript, '--entry', entry, '--runs', String(options.runs), '--seed', String(options.seed), '--sandbox', options.sandbox, '--report', report, '--progress', progress, '--skip', String(skip)];
    if (options.only) args.push('--only', options.only);
    const r = spawnSync(process.execPath, args, {
      cwd: resolve(import.meta.dirname, '..', '..'),
      env: options.env ?? process.env,
      timeout: Math.max(1000, deadline - Date.now()),
      killSignal: 'SIGKILL',
      encoding: 'utf8',
      maxBuffer: 64 * 1024 * 1024,
    });
    const last = existsSync(progress) ? readFileSync(progress, 'utf8').trim() : '';
    rmSync(progress, { force: true });
    const [index, call] = last ? [Number(last.split('\t')[0]), last.slice(last.indexOf('\t') + 1)] : [skip, '(before the first call)'];
    if (existsSync(report)) {
      const part = JSON.parse(readFileSync(report, 'utf8')) as FuzzReport;
      rmSync(report, { force: true });
      merged.targets = part.targets;
      merged.calls = part.calls;
      merged.templateInfo = part.templateInfo;
      for (const [k, n] of Object.entries(part.counts)) merged.counts[k] = (merged.counts[k] ?? 0) + n;
      merged.bad.push(...part.bad);
    }
    if (r.error && (r.error as NodeJS.ErrnoException).code === 'ETIMEDOUT') failures.push(`hung in ${call}`);
    else if (r.signal) failures.push(`killed by ${r.signal} in ${call}: ${(r.stderr ?? '').trim().split('\n').slice(-3).join(' | ')}`);
    else if (r.status !== 0) failures.push(`exited with ${r.status} in ${call}: ${(r.stderr ?? '').trim().split('\n').slice(-5).join(' | ')}`);
    else break;
    if (!last || Date.now() >= deadline) break; // died before any call, or out of time: restarting cannot help
    skip = index;
  }
  if (failures.length) result.failure = failures.join('\n');
  if (merged.targets > 0) result.report = merged;
  return result;
}

/** One line per entry: calls and outcome counts. */
export function summarize(run: FuzzRun): string {
  if (!run.report) return `${run.entry}: ${run.failure}`;
  const { calls, targets, counts, bad } = run.report;
  const classes = Object.entries(counts)
    .filter(([, n]) => n > 0)
    .map(([k, n]) => `${k} ${n}`)
    .join(', ');
  const t = run.report.templateInfo;
  const templates = t ? ` (${t.templates} recorded valid calls of ${t.functions} raw functions mutated; ${t.seedFailures} seed calls failed)` : '';
  return `${run.entry}: ${calls} calls over ${targets} functions${templates} → ${classes}; bad ${bad.length}${run.failure ? `; ${run.failure}` : ''}`;
}
