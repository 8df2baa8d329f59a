/**
 * The `nsa-flow` command line. `main(argv, io)` runs one command and resolves with its exit code:
 *   0 success · 2 bad usage or bad input (the message names the flag or the file) · 1 numerical
 *   failure (NumericalError) or an internal error · 130 cancelled (Ctrl-C; nothing half-written).
 * Subcommands: one per registered method (lib/cli/methods.ts), plus info, batch, worker and plot.
 */
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';

import { formatSummary, runBatch, type BatchEvent, type BatchSummary } from '../batch/run.js';
import { AbortError, NumericalError } from '../errors.js';
import { info } from '../info.js';
import { FormatError, readLabels, type ColumnRef, type ReadCsvOptions } from '../io/index.js';
import { textColumnHint } from '../io/csv.js';
import { checkMemory } from '../memory.js';
import { setBlasThreads } from '../runtime.js';
import { didYouMean } from '../suggest.js';
import { describe, expectAbortSignal, expectFunction, expectPath, expectStringArray, readField, readObject } from './check.js';
import { flagSpecs, kebab, parseArgs, describeFlags, UsageError, validateFlags, type CommandFlag } from './flags.js';
import { arrayNamer, checkInputRefs, isCsvPath, readInputs } from './inputs.js';
import './methods.js';
import { checkOutDir, resultJson, writeResultDir, type ResultMeta } from './output.js';
import { barProgress, loadProgressBar, ndjsonProgress, type ProgressSink, type Stream } from './progress.js';
import { defaultTraces, getMethod, methodNames, type MethodSpec } from './registry.js';

export interface CliIO {
  stdout: Stream;
  stderr: Stream;
  /** Aborted on Ctrl-C (the launcher wires SIGINT to it). */
  signal?: AbortSignal;
  /** Directory relative paths are resolved against (default: process.cwd()). */
  cwd?: string;
}

export const exitCodes = Object.freeze({ ok: 0, numerical: 1, usage: 2, cancelled: 130 } as const);

/** The exit code an error calls for (any thrown value; it never throws itself). */
export function exitCodeFor(err: unknown): number {
  if (err instanceof AbortError) return exitCodes.cancelled;
  if (err instanceof NumericalError) return exitCodes.numerical;
  if (err instanceof UsageError || err instanceof FormatError || err instanceof TypeError || err instanceof RangeError) return exitCodes.usage;
  let code: unknown;
  try {
    code = err !== null && typeof err === 'object' ? (err as NodeJS.ErrnoException).code : undefined;
  } catch {
    code = undefined; // a thrown object whose getter throws is no file-system error
  }
  // File-system problems with the paths the user gave (inputs, --out).
  if (code === 'ENOENT' || code === 'EACCES' || code === 'EPERM' || code === 'EROFS' || code === 'EISDIR' || code === 'ENOTDIR' || code === 'ENOSPC') return exitCodes.usage;
  return exitCodes.numerical;
}

/** A stream argument: an object with a write function (isTTY and columns are read when present). */
function expectStream(v: unknown, name: string): Stream {
  const what = 'a stream {write(text)}';
  if (v === null || (typeof v !== 'object' && typeof v !== 'function')) throw new TypeError(`Expected ${what} for ${name} but received ${describe(v)}`);
  expectFunction(readField(v, 'write', `${name}.write`), `${name}.write`);
  return v as Stream;
}

/** Checks main's io argument; returns a copy with its fields read once. */
function expectCliIO(v: unknown): CliIO {
  const f = readObject(v, 'io', 'an object {stdout, stderr, signal?, cwd?}', ['stdout', 'stderr', 'signal', 'cwd']);
  const io: CliIO = { stdout: expectStream(f.stdout, 'io.stdout'), stderr: expectStream(f.stderr, 'io.stderr') };
  if (f.signal !== undefined) io.signal = expectAbortSignal(f.signal, 'io.signal');
  if (f.cwd !== undefined) io.cwd = expectPath(f.cwd, 'io.cwd');
  return io;
}

const version = (): string => info().version;

// ---- flags shared by the commands ------------------------------------------------------------------

const helpFlag: Record<string, CommandFlag> = { help: { kind: 'boolean', description: 'show this help (also -h)' } };

/** How CSV inputs are read (readCsv's options); offered by every method that reads a matrix. */
const csvInputFlags: Record<string, CommandFlag> = {
  header: { kind: 'boolean', description: 'CSV inputs: the first row is a header (--no-header: it is data; default: detected)' },
  columns: { kind: 'string', placeholder: 'A,B,…', description: 'CSV inputs: the data columns, by name or 0-based index, comma-separated (default: all but row names)' },
  drop: { kind: 'string', placeholder: 'A,B,…', description: 'CSV inputs: columns to leave out (e.g. an id column), by name or 0-based index' },
  rowNames: { kind: 'string', placeholder: 'COLUMN', description: 'CSV inputs: the column of row names (default: the first column when its header cell is empty)' },
  transpose: { kind: 'boolean', description: 'CSV inputs: the file has one column per observation; read its transpose' },
};

function methodFlags(method: MethodSpec): Record<string, CommandFlag> {
  const flags: Record<string, CommandFlag> = {
    out: { kind: 'string', placeholder: 'DIR', description: 'write every result array as .npy and result.json to DIR (atomically)' },
    csv: { kind: 'boolean', description: 'with --out: also write each vector and matrix as NAME.csv, with row and column names' },
    force: { kind: 'boolean', description: 'replace DIR if it exists' },
    json: { kind: 'boolean', description: 'NDJSON progress and a JSON result on stdout' },
  };
  // A method with its own threads option (path) gets one --threads, which also sets BLAS threads.
  if (!('threads' in method.optionSpecs)) flags.threads = { kind: 'integer', min: 1, description: 'BLAS threads (default: all cores)' };
  // A method with a seed option has --seed from its specs; others refuse it with a reason.
  if (!('seed' in method.optionSpecs)) flags.seed = { kind: 'integer', min: 0, hidden: true, description: 'refused: the method is deterministic' };
  if (method.plot) flags.plot = { kind: 'string', placeholder: 'FILE.svg', description: 'also draw the result as an SVG figure to FILE.svg' };
  const strata = Object.entries(method.inputs).filter(([, s]) => s.kind === 'strata');
  if (strata.length === 1) flags.strataFrom = { kind: 'string', placeholder: 'FILE.csv:COLUMN', description: strata[0]![1].description };
  const readsMatrix = Object.values(method.inputs).some((s) => s.kind === 'matrix');
  return { ...flags, ...(readsMatrix ? csvInputFlags : {}), ...helpFlag };
}

/** Reads inputs; a text column's hint names the CLI's flags instead of readCsv's options. */
function readCsvInputs<T>(read: () => T): T {
  try {
    return read();
  } catch (err) {
    if (err instanceof FormatError && err.message.includes(textColumnHint)) {
      throw new UsageError(err.message.replace(textColumnHint, ' (a text column: leave it out with --drop, pick the data columns with --columns, or take it as --row-names)'));
    }
    throw err;
  }
}

/** `a,2,b` → ['a', 2, 'b']: all-digit items are 0-based positions, others names. */
function columnList(text: string, flag: string): ColumnRef[] {
  const items = text.split(',').map((c) => c.trim());
  if (items.some((c) => c === '')) throw new UsageError(`Expected a comma-separated list of column names or 0-based indices for ${flag} but received ${JSON.stringify(text)}`);
  return items.map((c) => (/^\d+$/.test(c) ? Number(c) : c));
}

/** readCsv options from the CSV flags; a CSV flag without a CSV input is refused, not ignored. */
function csvOptions(flags: Record<string, string | number | boolean>, refs: Record<string, string>, method: MethodSpec): ReadCsvOptions | undefined {
  const given = Object.keys(csvInputFlags).filter((k) => flags[k] !== undefined);
  if (given.length === 0) return undefined;
  const csvInputs = Object.entries(refs).filter(([n, ref]) => method.inputs[n]?.kind === 'matrix' && isCsvPath(ref));
  if (csvInputs.length === 0) {
    const names = given.map((k) => (k === 'header' && flags[k] === false ? '--no-header' : `--${kebab(k)}`));
    throw new UsageError(`${names.join(', ')} ${names.length > 1 ? 'apply' : 'applies'} to .csv inputs, but nsa-flow ${method.name} was given none`);
  }
  const o: ReadCsvOptions = {};
  if (typeof flags.header === 'boolean') o.header = flags.header;
  if (typeof flags.columns === 'string') o.columns = columnList(flags.columns, '--columns');
  if (typeof flags.drop === 'string') o.drop = columnList(flags.drop, '--drop');
  if (typeof flags.rowNames === 'string') o.rowNames = /^\d+$/.test(flags.rowNames) ? Number(flags.rowNames) : flags.rowNames;
  if (flags.transpose === true) o.transpose = true;
  return o;
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
    'Inputs (.npy, .npy.gz, .mtx, .mtx.gz, .csv, .csv.gz; rows = observations):',
    ...positional.map(([n, s]) => `  ${n.padEnd(10)} ${s.kind}: ${s.description}${s.optional ? ' (optional)' : ''}`),
    '',
    'Options (the API\'s options, same names in kebab-case, same checks and defaults):',
    describeFlags(method.optionSpecs, methodFlags(method)),
    '',
    'Exit codes: 0 success, 2 bad usage or input, 1 numerical failure, 130 cancelled (Ctrl-C).',
  ].join('\n');
}

const otherCommands = ['info', 'batch', 'worker', 'plot'];

function topHelp(): string {
  const methods = methodNames().map((n) => `  ${n.padEnd(10)} ${getMethod(n)!.summary}`);
  return [
    `nsa-flow ${version()} — orthogonality- and non-negativity-constrained factorizations`,
    '',
    'Usage: nsa-flow <command> [inputs] [options]      (nsa-flow <command> -h for its options)',
    '       nsa-flow -v | --version                      print the version',
    '       nsa-flow -h | --help                         print this help',
    '',
    'Methods:',
    ...methods,
    '',
    'Other commands:',
    '  info       versions, BLAS configuration and threads',
    '  batch      run many jobs (a list or a grid) locally, or enqueue them with --queue redis://…',
    '  worker     run jobs from a Redis queue (--queue redis://…)',
    '  plot       draw a result: convergence traces, heatmaps of factor matrices, w trade-off (SVG)',
    '',
    'Errors are one line; set NSA_FLOW_DEBUG=1 to print the stack trace of an unexpected error.',
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
  if (args.flags.seed !== undefined) throw new UsageError(`--seed is not accepted by nsa-flow ${method.name}: it is deterministic`);
  const specs = Object.fromEntries(flagSpecs(method.optionSpecs));
  const options = validateFlags<Record<string, unknown>>(specs, args.options, method.name);
  for (const [name, spec] of Object.entries(method.inputs)) {
    if (refs[name] === undefined && !spec.optional) {
      const how = spec.kind === 'strata' ? `--strata-from FILE.csv:COLUMN` : `a path`;
      throw new UsageError(`Missing input ${name} (${spec.description}) for nsa-flow ${method.name}: give ${how}; see nsa-flow ${method.name} --help`);
    }
  }
  checkInputRefs(method, refs, cwd, `nsa-flow ${method.name}`);
  const csv = csvOptions(args.flags, refs, method);
  if (typeof args.flags.threads === 'number') setBlasThreads(args.flags.threads);
  if (typeof options.threads === 'number' && options.threads > 0) setBlasThreads(options.threads);
  const out = typeof args.flags.out === 'string' ? resolve(cwd, args.flags.out) : undefined;
  if (args.flags.csv && !out) throw new UsageError('--csv writes CSV files into the result directory: add --out DIR');
  // Fail before the solve, not after it, when the result cannot be written.
  if (out) checkOutDir(out, String(args.flags.out), '--out', Boolean(args.flags.force), cwd);
  const plotFile = typeof args.flags.plot === 'string' ? resolve(cwd, args.flags.plot) : undefined;
  if (plotFile && !existsSync(dirname(plotFile))) throw new UsageError(`Cannot write --plot ${args.flags.plot}: its folder does not exist`);

  const startedAt = new Date().toISOString();
  const t0 = performance.now();
  const inputs = readCsvInputs(() => readInputs(method, refs, cwd, undefined, csv));
  const t1 = performance.now();
  const json = Boolean(args.flags.json);
  const bar = !json && io.stderr.isTTY && (await loadProgressBar(io.stderr));
  // On a terminal without cli-progress: no bar (loadProgressBar said so once), and no NDJSON either.
  const progress: ProgressSink = bar
    ? barProgress(method.name, io.stderr)
    : !json && io.stderr.isTTY
      ? { update: () => undefined, stop: () => undefined }
      : ndjsonProgress({ method: method.name }, json ? io.stdout : io.stderr);
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
  const names = arrayNamer(method, inputs, result);
  const csvCopies = Boolean(args.flags.csv);
  if (out) {
    try {
      writeResultDir(out, result, meta, { replace: Boolean(args.flags.force), signal: io.signal, names, csv: csvCopies });
    } catch (err) {
      if (err instanceof Error && /already exists/.test(err.message)) throw new UsageError(`Cannot write --out ${args.flags.out}: it already exists (add --force to replace it)`);
      const code = (err as NodeJS.ErrnoException).code;
      if (typeof code === 'string' && /^E[A-Z]+$/.test(code)) throw new UsageError(`Cannot write --out ${args.flags.out}: ${(err as Error).message}`);
      throw err;
    }
  }
  if (plotFile) writeFileSync(plotFile, await method.plot!(result));
  const { json: summary } = resultJson(result, meta, { names, csv: csvCopies });
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
  lines.push(out ? `  wrote ${out}/ (result.json, ${Object.values(r.arrays).flatMap((a) => (a.csv ? [a.file, a.csv] : [a.file])).join(', ')})` : '  (add --out DIR to write the arrays)');
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
        `CUDA: ${i.cuda.usable ? `usable — ${i.cuda.deviceName ?? 'device 0'}, ${i.cuda.memoryBytes ?? '?'} bytes` : `${i.cuda.built ? 'built' : 'not built'} — ${i.cuda.reason}`}`,
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
  rowNames: { kind: 'string', placeholder: 'FILE', description: 'names of the rows of arrays with that many rows: one per line, or FILE.csv:COLUMN' },
  colNames: { kind: 'string', placeholder: 'FILE', description: 'names of the columns (e.g. a vocabulary) of arrays with that many columns: one per line, or FILE.csv:COLUMN' },
  top: { kind: 'integer', min: 1, placeholder: 'N', description: 'named terms shown per topic when a matrix has more named columns than fit (default 15)' },
  maxHeatmaps: { kind: 'integer', min: 0, placeholder: 'N', description: 'heatmaps drawn at most (default 8)' },
  maxRows: { kind: 'integer', min: 1, placeholder: 'N', description: 'rows drawn per heatmap at most (default 60; the subtitle says where it stops)' },
  maxCols: { kind: 'integer', min: 1, placeholder: 'N', description: 'columns drawn per heatmap at most (default 60)' },
  ...helpFlag,
};

/** Names from `--row-names`/`--col-names`: a text file with one name per line, or `file.csv:column`. */
function readNamesFlag(ref: string, flag: string, cwd: string): string[] {
  const csv = /\.csv(\.gz)?:[^:/\\]+$/.test(ref);
  const path = resolve(cwd, csv ? ref.slice(0, ref.lastIndexOf(':')) : ref);
  try {
    if (csv) return readLabels(path, ref.slice(ref.lastIndexOf(':') + 1));
    checkMemory(statSync(path).size * 4, `the names of ${flag} (${ref})`);
    const lines = readFileSync(path, 'utf8').split(/\r?\n/);
    if (lines.at(-1) === '') lines.pop();
    return lines;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new UsageError(`Names file not found: ${ref} (${flag})`);
    throw err;
  }
}

async function plotCommand(argv: string[], io: CliIO): Promise<number> {
  const args = parseArgs(argv, {}, plotFlags);
  if (args.flags.help) {
    io.stdout.write(
      `nsa-flow plot — SVG plots of a result: convergence.svg (traces, log scale), heatmap-<array>.svg (factor matrices,\n` +
        `labelled with the names the result carries or --row-names/--col-names), tradeoff.svg (a path result's\n` +
        `fidelity/orthogonality/sparsity against w, the selected w marked)\n\nUsage: nsa-flow plot RESULT_DIR|result.json [--out DIR]\n\n${describeFlags({}, plotFlags)}\n`,
    );
    return exitCodes.ok;
  }
  if (args.positionals.length !== 1) throw new UsageError('Expected one result: nsa-flow plot RESULT_DIR|result.json');
  const cwd = io.cwd ?? process.cwd();
  const target = resolve(cwd, args.positionals[0]!);
  if (!existsSync(target)) throw new UsageError(`Result not found: ${args.positionals[0]} (expected a result directory or its result.json)`);
  const out = typeof args.flags.out === 'string' ? resolve(cwd, args.flags.out) : target.endsWith('.json') ? dirname(target) : target;
  const names = (flag: 'rowNames' | 'colNames', shown: string) => (typeof args.flags[flag] === 'string' ? readNamesFlag(args.flags[flag], shown, cwd) : undefined);
  const options = {
    rowNames: names('rowNames', '--row-names'),
    colNames: names('colNames', '--col-names'),
    topN: typeof args.flags.top === 'number' ? args.flags.top : undefined,
    maxHeatmaps: typeof args.flags.maxHeatmaps === 'number' ? args.flags.maxHeatmaps : undefined,
    maxRows: typeof args.flags.maxRows === 'number' ? args.flags.maxRows : undefined,
    maxCols: typeof args.flags.maxCols === 'number' ? args.flags.maxCols : undefined,
  };
  let written: string[];
  try {
    const { plotResult } = await import('../plot/index.js');
    written = await plotResult(target, out, options);
  } catch (err) {
    if (err instanceof Error && err.name === 'MissingPackageError') throw new UsageError(err.message);
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new UsageError(`Result not found: ${args.positionals[0]} (expected a result directory or its result.json)`);
    // The API names its options; on the command line they are flags.
    const flag: Record<string, string> = { rowNames: '--row-names', colNames: '--col-names', topN: '--top', maxHeatmaps: '--max-heatmaps', maxRows: '--max-rows', maxCols: '--max-cols' };
    const option = err instanceof RangeError ? /options\.(\w+) of plotResult\(\)/.exec(err.message) : null;
    if (option && flag[option[1]!]) throw new UsageError((err as RangeError).message.replace(option[0], flag[option[1]!]!));
    throw err;
  }
  io.stdout.write(written.length ? `wrote ${written.join(', ')}\n` : 'nothing to plot (no traces and no 2-D arrays)\n');
  return exitCodes.ok;
}

// ---- entry -----------------------------------------------------------------------------------------

/** Runs one command line (without the program name) and resolves with the exit code. */
export async function main(argv: readonly string[], io: CliIO): Promise<number> {
  // Arguments a program got wrong reject the Promise (there is no stderr to report them on).
  const [command, ...rest] = expectStringArray(argv, 'argv');
  io = expectCliIO(io);
  try {
    if (command === undefined || command === '--help' || command === '-h' || command === 'help') {
      const topic = command === 'help' ? rest[0] : undefined;
      if (topic !== undefined) return await main([topic, '--help'], io);
      io.stdout.write(topHelp() + '\n');
      return command === undefined ? exitCodes.usage : exitCodes.ok;
    }
    if (command === '--version' || command === '-v') {
      io.stdout.write(version() + '\n');
      return exitCodes.ok;
    }
    if (command === 'info') return await infoCommand(rest, io);
    if (command === 'batch') return await batchCommand(rest, io);
    if (command === 'worker') return await workerCommand(rest, io);
    if (command === 'plot') return await plotCommand(rest, io);
    const method = getMethod(command);
    if (!method) {
      if (command.startsWith('-')) throw new UsageError(`Unknown option ${command}${didYouMean(command, ['--help', '--version']) || '; see nsa-flow --help'}`);
      const commands = [...methodNames(), ...otherCommands];
      throw new UsageError(`Unknown command '${command}'${didYouMean(command, commands)}; commands: ${commands.join(', ')}`);
    }
    return await runMethod(method, [...rest], io);
  } catch (err) {
    const code = exitCodeFor(err);
    const e = err instanceof Error ? err : new Error(String(err));
    if (code === exitCodes.cancelled) io.stderr.write('nsa-flow: cancelled; nothing was written\n');
    else if (code === exitCodes.usage) io.stderr.write(`nsa-flow${command ? ` ${command}` : ''}: ${e.message}\n`);
    else if (e instanceof NumericalError) io.stderr.write(`nsa-flow${command ? ` ${command}` : ''}: numerical failure: ${e.message}\n`);
    else if (e.name === 'QueueTimeoutError') io.stderr.write(`nsa-flow${command ? ` ${command}` : ''}: ${e.message}\n`);
    else {
      // One line; the stack only on request (it means nothing to most users).
      const debug = process.env.NSA_FLOW_DEBUG === '1';
      const text = debug ? (e.stack ?? e.message) : e.message.split('\n')[0];
      io.stderr.write(`nsa-flow${command ? ` ${command}` : ''}: internal error: ${text}${debug ? '' : ' (NSA_FLOW_DEBUG=1 shows the stack trace)'}\n`);
    }
    return code;
  }
}

/**
 * Runs the CLI as a process: argv from process.argv, Ctrl-C (and SIGTERM) cancel through the
 * AbortSignal — the running job stops at its next check and nothing half-done is written — and a
 * second Ctrl-C quits at once. Exits with main's code.
 */
export async function runCli(argv: readonly string[] = process.argv.slice(2)): Promise<never> {
  argv = expectStringArray(argv, 'argv');
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
