/**
 * The `nsa-flow` command line. `main(argv, io)` runs one command and resolves with its exit code:
 *   0 success · 2 bad usage or bad input (the message names the flag or the file) · 1 numerical
 *   failure (NumericalError) or an internal error · 130 cancelled (Ctrl-C; nothing half-written).
 * Subcommands: one per registered method (lib/cli/methods.ts), plus info, batch, worker and plot.
 */
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';

import { formatSummary, runBatch, type BatchEvent, type BatchSummary } from '../batch/run.js';
import { AbortError, NumericalError } from '../errors.js';
import { info } from '../info.js';
import { FormatError } from '../io/index.js';
import { setBlasThreads } from '../runtime.js';
import { flagSpecs, parseArgs, describeFlags, UsageError, validateFlags, type CommandFlag } from './flags.js';
import { checkInputRefs, readInputs } from './inputs.js';
import './methods.js';
import { resultJson, writeResultDir, type ResultMeta } from './output.js';
import { barProgress, ndjsonProgress, type ProgressSink, type Stream } from './progress.js';
import { defaultTraces, getMethod, methodNames, type MethodSpec } from './registry.js';

export interface CliIO {
  stdout: Stream;
  stderr: Stream;
  /** Aborted on Ctrl-C (the launcher wires SIGINT to it). */
  signal?: AbortSignal;
  /** Directory relative paths are resolved against (default: process.cwd()). */
  cwd?: string;
}

export const exitCodes = { ok: 0, numerical: 1, usage: 2, cancelled: 130 } as const;

/** The exit code an error calls for. */
export function exitCodeFor(err: unknown): number {
  if (err instanceof AbortError) return exitCodes.cancelled;
  if (err instanceof NumericalError) return exitCodes.numerical;
  if (err instanceof UsageError || err instanceof FormatError || err instanceof TypeError || err instanceof RangeError) return exitCodes.usage;
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  if (code === 'ENOENT' || code === 'EACCES' || code === 'EISDIR' || code === 'ENOTDIR') return exitCodes.usage;
  return exitCodes.numerical;
}

const version = (): string => info().version;

// ---- flags shared by the commands ------------------------------------------------------------------

const helpFlag: Record<string, CommandFlag> = { help: { kind: 'boolean', description: 'show this help' } };

function methodFlags(method: MethodSpec): Record<string, CommandFlag> {
  const flags: Record<string, CommandFlag> = {
    out: { kind: 'string', placeholder: 'DIR', description: 'write every result array as .npy and result.json to DIR (atomically)' },
    force: { kind: 'boolean', description: 'replace DIR if it exists' },
    json: { kind: 'boolean', description: 'NDJSON progress and a JSON result on stdout' },
    threads: { kind: 'integer', min: 1, description: 'BLAS threads (default: all cores)' },
  };
  if ('seed' in method.optionSpecs) flags.seed = { kind: 'integer', min: 0, description: 'seed of the random initialization (same seed ⇒ same result)' };
  else flags.seed = { kind: 'integer', min: 0, hidden: true, description: 'refused: the method is deterministic' };
  const strata = Object.entries(method.inputs).filter(([, s]) => s.kind === 'strata');
  if (strata.length === 1) flags.strataFrom = { kind: 'string', placeholder: 'FILE.csv:COLUMN', description: strata[0]![1].description };
  return { ...flags, ...helpFlag };
}

function positionalInputs(method: MethodSpec): [string, MethodSpec['inputs'][string]][] {
  return Object.entries(method.inputs).filter(([, s]) => s.kind !== 'strata');
}

function methodHelp(method: MethodSpec): string {
  const positional = positionalInputs(method);
  const usage = positional.map(([n, s]) => (s.optional ? `[${n}]` : n)).join(' ');
  return [
    `nsa-flow ${method.name} — ${method.summary}`,
    '',
    `Usage: nsa-flow ${method.name} ${usage} [options]`,
    '',
    'Inputs (.npy, .npy.gz, .mtx, .mtx.gz, .csv):',
    ...positional.map(([n, s]) => `  ${n.padEnd(10)} ${s.kind}: ${s.description}${s.optional ? ' (optional)' : ''}`),
    '',
    'Options (the API\'s options, same names in kebab-case, same checks and defaults):',
    describeFlags(method.optionSpecs, methodFlags(method)),
    '',
    'Exit codes: 0 success, 2 bad usage or input, 1 numerical failure, 130 cancelled (Ctrl-C).',
  ].join('\n');
}

function topHelp(): string {
  const methods = methodNames().map((n) => `  ${n.padEnd(10)} ${getMethod(n)!.summary}`);
  return [
    `nsa-flow ${version()} — orthogonality- and non-negativity-constrained factorizations`,
    '',
    'Usage: nsa-flow <command> [inputs] [options]      (nsa-flow <command> --help for its options)',
    '',
    'Methods:',
    ...methods,
    '',
    'Other commands:',
    '  info       versions, BLAS configuration and threads',
    '  batch      run many jobs (a list or a grid) locally, or enqueue them with --queue redis://…',
    '  worker     run jobs from a Redis queue (--queue redis://…)',
    '  plot       draw a result: convergence traces, heatmaps of factor matrices, w trade-off (SVG)',
  ].join('\n');
}

// ---- commands --------------------------------------------------------------------------------------

async function runMethod(method: MethodSpec, argv: string[], io: CliIO): Promise<number> {
  const args = parseArgs(argv, method.optionSpecs, methodFlags(method));
  if (args.flags.help) {
    io.stdout.write(methodHelp(method) + '\n');
    return exitCodes.ok;
  }
  const cwd = io.cwd ?? process.cwd();
  const positional = positionalInputs(method);
  if (args.positionals.length > positional.length) {
    throw new UsageError(`Too many inputs for nsa-flow ${method.name}: expected ${positional.map(([n]) => n).join(', ')} but received ${args.positionals.length} paths`);
  }
  const refs: Record<string, string> = {};
  positional.forEach(([name], i) => {
    if (args.positionals[i] !== undefined) refs[name] = args.positionals[i]!;
  });
  const strata = Object.keys(method.inputs).find((n) => method.inputs[n]!.kind === 'strata');
  if (strata && typeof args.flags.strataFrom === 'string') refs[strata] = args.flags.strataFrom;
  if (args.flags.seed !== undefined) {
    if (!('seed' in method.optionSpecs)) throw new UsageError(`--seed is not accepted by nsa-flow ${method.name}: it is deterministic`);
    args.options.seed = args.flags.seed;
  }
  const specs = Object.fromEntries(flagSpecs(method.optionSpecs));
  const options = validateFlags<Record<string, unknown>>(specs, args.options, method.name);
  for (const [name, spec] of Object.entries(method.inputs)) {
    if (refs[name] === undefined && !spec.optional) {
      const how = spec.kind === 'strata' ? `--strata-from FILE.csv:COLUMN` : `a path`;
      throw new UsageError(`Missing input ${name} (${spec.description}) for nsa-flow ${method.name}: give ${how}; see nsa-flow ${method.name} --help`);
    }
  }
  checkInputRefs(method, refs, cwd, `nsa-flow ${method.name}`);
  if (typeof args.flags.threads === 'number') setBlasThreads(args.flags.threads);
  const out = typeof args.flags.out === 'string' ? resolve(cwd, args.flags.out) : undefined;

  const startedAt = new Date().toISOString();
  const t0 = performance.now();
  const inputs = readInputs(method, refs, cwd);
  const t1 = performance.now();
  const json = Boolean(args.flags.json);
  const progress: ProgressSink =
    !json && io.stderr.isTTY ? barProgress(method.name, io.stderr) : ndjsonProgress({ method: method.name }, json ? io.stdout : io.stderr);
  let result: object;
  try {
    result = (await method.run(inputs, options, { signal: io.signal, onProgress: (p) => progress.update(p) })) as object;
  } catch (err) {
    // An input the method rejects (shape, values): say which file it came from.
    if (err instanceof TypeError || err instanceof RangeError) {
      const files = Object.entries(refs).map(([k, v]) => `${k} = ${v}`).join(', ');
      throw new UsageError(`${err.message} (${files})`);
    }
    throw err;
  } finally {
    progress.stop();
  }
  const t2 = performance.now();
  if (io.signal?.aborted) throw new AbortError();
  const meta: ResultMeta = {
    method: method.name,
    version: version(),
    inputs: refs,
    options,
    diagnostics: method.diagnostics?.(result, inputs) ?? {},
    traces: method.traces?.(result) ?? defaultTraces(result),
    timings: { startedAt, readSeconds: (t1 - t0) / 1000, runSeconds: (t2 - t1) / 1000 },
    run: { argv: [method.name, ...argv], blasThreads: info().blas.maxThreads },
  };
  if (out) {
    try {
      writeResultDir(out, result, meta, { replace: Boolean(args.flags.force), signal: io.signal });
    } catch (err) {
      if (err instanceof Error && /already exists/.test(err.message)) throw new UsageError(`--out ${args.flags.out} already exists; add --force to replace it`);
      throw err;
    }
  }
  const { json: summary } = resultJson(result, meta);
  if (json) {
    io.stdout.write(JSON.stringify({ event: 'result', ...(out ? { out } : {}), ...summary }) + '\n');
  } else {
    io.stdout.write(describeResult(summary, out) + '\n');
  }
  return exitCodes.ok;
}

function describeResult(r: ReturnType<typeof resultJson>['json'], out: string | undefined): string {
  const num = (v: unknown): string => (typeof v === 'number' ? (Number.isInteger(v) ? String(v) : v.toPrecision(6)) : JSON.stringify(v));
  const lines = [
    `${r.method} on ${Object.entries(r.inputs).map(([k, v]) => `${k}=${v}`).join(' ')}: ${r.timings.runSeconds.toFixed(3)} s (read ${r.timings.readSeconds.toFixed(3)} s)`,
    `  settings:    ${Object.entries(r.settings).map(([k, v]) => `${k}=${num(v)}`).join(' ')}`,
  ];
  if (Object.keys(r.diagnostics).length) lines.push(`  diagnostics: ${Object.entries(r.diagnostics).map(([k, v]) => `${k}=${num(v)}`).join(' ')}`);
  const scalars = Object.entries(r.values).filter(([, v]) => typeof v === 'number' || typeof v === 'string');
  if (scalars.length) lines.push(`  values:      ${scalars.map(([k, v]) => `${k}=${num(v)}`).join(' ')}`);
  lines.push(`  arrays:      ${Object.entries(r.arrays).map(([k, a]) => `${k} ${a.shape.join('×')}`).join(', ')}`);
  if (Object.keys(r.traces).length) lines.push(`  traces:      ${Object.keys(r.traces).join(', ')}`);
  lines.push(out ? `  wrote ${out}/ (result.json, ${Object.values(r.arrays).map((a) => a.file).join(', ')})` : '  (add --out DIR to write the arrays)');
  return lines.join('\n');
}

async function infoCommand(argv: string[], io: CliIO): Promise<number> {
  const args = parseArgs(argv, {}, { json: { kind: 'boolean', description: 'print JSON' }, ...helpFlag });
  if (args.flags.help || args.positionals.length > 0) {
    if (!args.flags.help) throw new UsageError('nsa-flow info takes no inputs');
    io.stdout.write(`nsa-flow info — versions, BLAS configuration and threads\n\n${describeFlags({}, { json: { kind: 'boolean', description: 'print JSON' }, ...helpFlag })}\n`);
    return exitCodes.ok;
  }
  const i = info();
  if (args.flags.json) io.stdout.write(JSON.stringify(i) + '\n');
  else {
    io.stdout.write(
      [
        `nsa-flow ${i.version} (Node-API ${i.addon.napiVersion}, ${i.addon.buildSystem}, ${i.addon.compiler})`,
        `BLAS: ${i.blas.config} (kernel ${i.blas.corename}), ${i.blas.threads} threads now, ${i.blas.maxThreads} max`,
        `jobs at once: ${i.concurrency}`,
        `CUDA: ${i.cuda.built ? 'built' : 'not built'} — ${i.cuda.reason}`,
        `methods: ${methodNames().join(', ')}`,
      ].join('\n') + '\n',
    );
  }
  return exitCodes.ok;
}

const queueFlags: Record<string, CommandFlag> = {
  queue: { kind: 'string', placeholder: 'redis://HOST:PORT', description: 'use a BullMQ queue on this Redis instead of the local pool' },
  queueName: { kind: 'string', placeholder: 'NAME', description: "queue name (default 'nsa-flow')" },
};

const batchFlags: Record<string, CommandFlag> = {
  out: { kind: 'string', placeholder: 'DIR', description: 'results, one directory per job id (default: <jobs file>.out); shared storage with --queue' },
  concurrency: { kind: 'integer', min: 1, description: 'jobs at once in the local pool (default min(cores, 4)); one BLAS thread per job when > 1' },
  ...queueFlags,
  wait: { kind: 'boolean', description: 'with --queue: wait for the jobs and print the summary (default; --no-wait only enqueues)' },
  timeout: { kind: 'integer', min: 1, placeholder: 'SECONDS', description: 'with --queue: stop waiting after this long (counted from the start; the jobs stay queued)' },
  json: { kind: 'boolean', description: 'NDJSON events and a JSON summary on stdout' },
  ...helpFlag,
};

const batchHelp = (): string =>
  [
    'nsa-flow batch — run many jobs: a list of {method, input, options}, or a grid (methods × options × inputs)',
    '',
    'Usage: nsa-flow batch JOBS.json [--out DIR] [--concurrency N]',
    '       nsa-flow batch JOBS.json --queue redis://HOST:PORT --out SHARED_DIR',
    '       (workers: nsa-flow worker --queue redis://HOST:PORT --out SHARED_DIR --input-root DATA_DIR)',
    '',
    'JOBS.json: [{"method": "retract", "input": "x.npy", "options": {"w": 0.5}}, …]',
    '       or: {"method": "retract", "inputs": ["a.npy", "b.npy"], "options": {"w": [0.25, 0.5, 1]}}',
    '       or: {"jobs": [...], "grid": {...} | [{...}, ...]}.  Relative paths are relative to JOBS.json.',
    'A job\'s id is a hash of its method, input and options; finished jobs are skipped when re-run.',
    '',
    describeFlags({}, batchFlags),
  ].join('\n');

async function batchCommand(argv: string[], io: CliIO): Promise<number> {
  const args = parseArgs(argv, {}, batchFlags);
  if (args.flags.help) {
    io.stdout.write(batchHelp() + '\n');
    return exitCodes.ok;
  }
  if (args.positionals.length !== 1) throw new UsageError('Expected one jobs file: nsa-flow batch JOBS.json (see nsa-flow batch --help)');
  const cwd = io.cwd ?? process.cwd();
  const file = resolve(cwd, args.positionals[0]!);
  let jobs: unknown;
  try {
    jobs = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new UsageError(`Jobs file not found: ${args.positionals[0]}`);
    throw new UsageError(`Cannot parse jobs file ${args.positionals[0]}: ${(err as Error).message}`);
  }
  const outDir = resolve(cwd, typeof args.flags.out === 'string' ? args.flags.out : `${file.replace(/\.json$/, '')}.out`);
  const json = Boolean(args.flags.json);
  const onProgress = batchProgress(io, json);
  const common = { outDir, baseDir: dirname(file), signal: io.signal, onProgress: onProgress.update };
  let summary: BatchSummary;
  const url = typeof args.flags.queue === 'string' ? args.flags.queue : undefined;
  // The queue module (and the optional packages it loads) only when a queue is used.
  const queue = url === undefined ? undefined : await import('../batch/queue.js');
  if (queue) await queueStep(() => queue.loadQueuePackages());
  try {
    summary =
      queue && url !== undefined
        ? await queueStep(() =>
            queue.enqueueBatch(jobs as never, {
              ...common,
              url,
              queueName: typeof args.flags.queueName === 'string' ? args.flags.queueName : undefined,
              wait: args.flags.wait !== false,
              timeoutMs: typeof args.flags.timeout === 'number' ? args.flags.timeout * 1000 : undefined,
            }),
          )
        : await runBatch(jobs as never, { ...common, concurrency: typeof args.flags.concurrency === 'number' ? args.flags.concurrency : undefined });
  } finally {
    onProgress.stop();
  }
  if (json) io.stdout.write(JSON.stringify({ event: 'summary', ...summary }) + '\n');
  else if (typeof args.flags.queue === 'string' && args.flags.wait === false) io.stdout.write(`enqueued on ${args.flags.queue}; results will appear in ${outDir}\n`);
  else io.stdout.write(formatSummary(summary) + `\nresults in ${outDir}\n`);
  return summary.failed > 0 ? exitCodes.numerical : exitCodes.ok;
}

/**
 * Runs a queue step; the queue packages missing or Redis unreachable become a usage error (exit 2)
 * with the message that says what to install or check.
 */
async function queueStep<T>(step: () => Promise<T>): Promise<T> {
  try {
    return await step();
  } catch (err) {
    if (err instanceof Error && (err.name === 'MissingPackageError' || err.name === 'QueueConnectionError')) throw new UsageError(err.message);
    throw err;
  }
}

function batchProgress(io: CliIO, json: boolean): { update: (e: BatchEvent) => void; stop: () => void } {
  if (!json && io.stderr.isTTY) {
    const bar = barProgress('batch', io.stderr);
    return {
      update: (e) => {
        if (e.type === 'end') bar.update({ iteration: e.done, total: e.total, energy: undefined });
      },
      stop: () => bar.stop(),
    };
  }
  const stream = json ? io.stdout : io.stderr;
  return {
    update: (e) => {
      if (e.type === 'start') stream.write(JSON.stringify({ event: 'job-start', id: e.id, method: e.method, done: e.done, total: e.total }) + '\n');
      if (e.type === 'end') {
        const { id, status, seconds, error } = e.outcome;
        stream.write(JSON.stringify({ event: 'job-end', id, status, seconds, error, done: e.done, total: e.total }) + '\n');
      }
    },
    stop: () => undefined,
  };
}

const workerFlags: Record<string, CommandFlag> = {
  ...queueFlags,
  out: {
    kind: 'string',
    placeholder: 'DIR',
    description: "required: this worker's output root. Results are written only under DIR; a job whose folder (the batch's --out) is outside it is refused",
  },
  inputRoot: {
    kind: 'string',
    placeholder: 'DIR',
    repeatable: true,
    description: 'jobs may read input files only under DIR (symbolic links resolved first); repeat for several; default: the current directory only',
  },
  concurrency: { kind: 'integer', min: 1, description: 'jobs at once on this worker (default 1); one BLAS thread per job when > 1' },
  threads: { kind: 'integer', min: 1, description: 'BLAS threads per job (default: all cores; 1 when --concurrency > 1). Use 1 when several workers share a machine' },
  lockMs: { kind: 'integer', min: 100, placeholder: 'MS', description: 'job lock duration: a dead worker\'s job is retried after about this long (default 30000)' },
  exitWhenIdle: { kind: 'integer', min: 1, placeholder: 'MS', description: 'exit once the queue has been empty this long (default: run until Ctrl-C)' },
  ...helpFlag,
};

async function workerCommand(argv: string[], io: CliIO): Promise<number> {
  const args = parseArgs(argv, {}, workerFlags);
  if (args.flags.help) {
    io.stdout.write(`nsa-flow worker — run jobs from a BullMQ queue on Redis; events as NDJSON on stdout\n\nUsage: nsa-flow worker --queue redis://HOST:PORT --out DIR [--input-root DIR …] [options]\n\n${describeFlags({}, workerFlags)}\n`);
    return exitCodes.ok;
  }
  if (typeof args.flags.queue !== 'string') throw new UsageError('Expected --queue redis://HOST:PORT for nsa-flow worker');
  if (typeof args.flags.out !== 'string') {
    throw new UsageError("Expected --out DIR for nsa-flow worker: the directory it writes results under (jobs cannot write elsewhere; use the batch's shared --out or a folder above it)");
  }
  if (args.positionals.length > 0) throw new UsageError('nsa-flow worker takes no inputs (jobs carry their input paths)');
  const cwd = io.cwd ?? process.cwd();
  const inputRoots = (args.lists.inputRoot ?? [cwd]).map((r) => resolve(cwd, r));
  const { loadQueuePackages, runWorker } = await import('../batch/queue.js');
  await queueStep(() => loadQueuePackages());
  if (typeof args.flags.threads === 'number') setBlasThreads(args.flags.threads);
  const options = {
    url: args.flags.queue,
    outDir: resolve(cwd, args.flags.out),
    inputRoots,
    queueName: typeof args.flags.queueName === 'string' ? args.flags.queueName : undefined,
    concurrency: typeof args.flags.concurrency === 'number' ? args.flags.concurrency : undefined,
    lockMs: typeof args.flags.lockMs === 'number' ? args.flags.lockMs : undefined,
    exitWhenIdleMs: typeof args.flags.exitWhenIdle === 'number' ? args.flags.exitWhenIdle : undefined,
    signal: io.signal,
    onEvent: (e: unknown) => io.stdout.write(JSON.stringify(e) + '\n'),
  };
  await queueStep(() => runWorker(options));
  return exitCodes.ok;
}

const plotFlags: Record<string, CommandFlag> = {
  out: { kind: 'string', placeholder: 'DIR', description: 'where the SVG files go (default: the result directory)' },
  ...helpFlag,
};

async function plotCommand(argv: string[], io: CliIO): Promise<number> {
  const args = parseArgs(argv, {}, plotFlags);
  if (args.flags.help) {
    io.stdout.write(
      `nsa-flow plot — SVG plots of a result: convergence.svg (traces, log scale), heatmap-<array>.svg (factor matrices),\n` +
        `tradeoff.svg (a path result's fidelity/orthogonality/sparsity against w)\n\nUsage: nsa-flow plot RESULT_DIR|result.json [--out DIR]\n\n${describeFlags({}, plotFlags)}\n`,
    );
    return exitCodes.ok;
  }
  if (args.positionals.length !== 1) throw new UsageError('Expected one result: nsa-flow plot RESULT_DIR|result.json');
  const cwd = io.cwd ?? process.cwd();
  const target = resolve(cwd, args.positionals[0]!);
  let written: string[];
  try {
    const out = typeof args.flags.out === 'string' ? resolve(cwd, args.flags.out) : target.endsWith('.json') ? dirname(target) : target;
    const { plotResult } = await import('../plot/index.js');
    written = await plotResult(target, out);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new UsageError(`Result not found: ${args.positionals[0]} (expected a result directory or its result.json)`);
    if (err instanceof SyntaxError) throw new UsageError(`Cannot parse ${args.positionals[0]}: ${err.message}`);
    throw err;
  }
  io.stdout.write(written.length ? `wrote ${written.join(', ')}\n` : 'nothing to plot (no traces and no 2-D arrays)\n');
  return exitCodes.ok;
}

// ---- entry -----------------------------------------------------------------------------------------

/** Runs one command line (without the program name) and resolves with the exit code. */
export async function main(argv: readonly string[], io: CliIO): Promise<number> {
  const [command, ...rest] = argv;
  try {
    if (command === undefined || command === '--help' || command === '-h' || command === 'help') {
      const topic = command === 'help' ? rest[0] : undefined;
      if (topic !== undefined) return await main([topic, '--help'], io);
      io.stdout.write(topHelp() + '\n');
      return command === undefined ? exitCodes.usage : exitCodes.ok;
    }
    if (command === '--version') {
      io.stdout.write(version() + '\n');
      return exitCodes.ok;
    }
    if (command === 'info') return await infoCommand(rest, io);
    if (command === 'batch') return await batchCommand(rest, io);
    if (command === 'worker') return await workerCommand(rest, io);
    if (command === 'plot') return await plotCommand(rest, io);
    const method = getMethod(command);
    if (!method) {
      throw new UsageError(`Unknown command '${command}'; commands: ${[...methodNames(), 'info', 'batch', 'worker', 'plot'].join(', ')}`);
    }
    return await runMethod(method, [...rest], io);
  } catch (err) {
    const code = exitCodeFor(err);
    const e = err instanceof Error ? err : new Error(String(err));
    if (code === exitCodes.cancelled) io.stderr.write('nsa-flow: cancelled; nothing was written\n');
    else if (code === exitCodes.usage) io.stderr.write(`nsa-flow${command ? ` ${command}` : ''}: ${e.message}\n`);
    else if (e instanceof NumericalError) io.stderr.write(`nsa-flow${command ? ` ${command}` : ''}: numerical failure: ${e.message}\n`);
    else if (e.name === 'QueueTimeoutError') io.stderr.write(`nsa-flow${command ? ` ${command}` : ''}: ${e.message}\n`);
    else io.stderr.write(`nsa-flow${command ? ` ${command}` : ''}: internal error: ${e.stack ?? e.message}\n`);
    return code;
  }
}

/**
 * Runs the CLI as a process: argv from process.argv, Ctrl-C (and SIGTERM) cancel through the
 * AbortSignal — the running job stops at its next check and nothing half-done is written — and a
 * second Ctrl-C quits at once. Exits with main's code.
 */
export async function runCli(argv: readonly string[] = process.argv.slice(2)): Promise<never> {
  const controller = new AbortController();
  const cancel = (): void => {
    if (controller.signal.aborted) process.exit(exitCodes.cancelled);
    process.stderr.write('\nnsa-flow: cancelling (Ctrl-C again to quit now)\n');
    controller.abort();
  };
  process.on('SIGINT', cancel);
  process.on('SIGTERM', cancel);
  const code = await main(argv, { stdout: process.stdout, stderr: process.stderr, signal: controller.signal });
  // Exit explicitly: a library handle still closing (a Redis socket) must not keep the CLI alive.
  process.exit(code);
}
