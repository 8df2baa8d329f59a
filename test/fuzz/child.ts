// The fuzz runner, in a child process of its own (so that a native crash is seen by the parent as a
// signal, and a hang as a timeout): calls every export of one entry point, and every raw binding
// function, with generated arguments, and classifies each outcome.
//
//   tsx test/fuzz/child.ts --entry nsa-flow|nsa-flow/batch|nsa-flow/plot|nsa-flow/cli|raw
//                          --runs N --seed S --sandbox DIR --report FILE --progress FILE
//
// Before each call the case (target, argument labels) is written synchronously to the progress file,
// so the parent can name the call that killed or hung the process. The report is one JSON object:
// counts per outcome class and the list of bad outcomes.
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';

import fc from 'fast-check';

import { fuzzMemoryLimit } from './limits.js';
import { describeMutations, mutate, mutationArb, recordTemplates, seedCalls } from './raw-templates.js';
import { pool, poolSize } from './values.js';

const { values: opts } = parseArgs({
  options: {
    entry: { type: 'string' },
    runs: { type: 'string', default: '20' },
    seed: { type: 'string', default: '1' },
    sandbox: { type: 'string' },
    report: { type: 'string' },
    progress: { type: 'string' },
    only: { type: 'string' },
    skip: { type: 'string', default: '0' },
    'call-timeout-ms': { type: 'string', default: '20000' },
  },
});
const entry = opts.entry!;
const runsPerTarget = Number(opts.runs);
const seed = Number(opts.seed);
const sandbox = resolve(opts.sandbox!);
const callTimeoutMs = Number(opts['call-timeout-ms']);
const skip = Number(opts.skip);
process.chdir(sandbox);

// Error classes a call may end in, by name: argument errors, cancellation, numerical failure, and the
// domain errors of files (FormatError), the CLI (UsageError) and the queue (QueueTimeoutError).
const allowedErrors = new Set(['TypeError', 'RangeError', 'AbortError', 'NumericalError', 'FormatError', 'UsageError', 'QueueTimeoutError']);
// Messages that come from V8 or Node internals rather than from our checks: they never name the
// caller's argument, so they count as bad outcomes even with an allowed class.
const internalMessage =
  /Cannot read propert|Cannot set propert|is not a function|is not iterable|is not a constructor|Invalid typed array length|Invalid array length|Array buffer allocation failed|Maximum call stack|Cannot convert|Cannot destructure|Cannot mix BigInt|out of memory|ERR_INVALID_ARG_TYPE|The "[\w.]+" argument must be|Reduce of empty array|Invalid string length|cannot be converted to a BigInt|toFixed\(\) digits|Cannot create property/;

/** Option names of the library (optional fields of its interfaces), so generated options objects use real keys. */
function optionKeys(): string[] {
  const keys = new Set<string>(['rows', 'cols', 'data', 'shape', 'indptr', 'indices', 'rank', 'signal', 'onProgress']);
  const walk = (dir: string): void => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const p = join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.name.endsWith('.ts')) {
        for (const m of readFileSync(p, 'utf8').matchAll(/^\s+(?:readonly )?([a-z][A-Za-z0-9]+)\?: /gm)) keys.add(m[1]!);
      }
    }
  };
  walk(resolve(import.meta.dirname, '..', '..', 'lib'));
  return [...keys].sort();
}

interface Target {
  name: string;
  fn: (...args: unknown[]) => unknown;
  arity: number;
  params: string[];
}

/** Parameter names from the function's source (the compiled JS keeps them). */
function paramNames(fn: Function): string[] {
  const src = Function.prototype.toString.call(fn);
  const m = /^[^(]*\(([^)]*)\)/.exec(src);
  if (!m) return [];
  return m[1]!
    .split(',')
    .map((p) => p.replace(/=.*$/s, '').replace(/[{}[\].\s]/g, ''))
    .filter((p) => /^[A-Za-z_$][\w$]*$/.test(p));
}

// Exports that cannot be fuzzed in-process, with the reason. Each is covered elsewhere.
const excluded: Record<string, string> = {
  runCli: 'calls process.exit by design; main() is the same CLI without the exit and is fuzzed',
  AbortError: 'error class',
  NumericalError: 'error class',
  FormatError: 'error class',
  UsageError: 'error class',
  QueueTimeoutError: 'error class',
  JobRefusedError: 'error class',
  MissingPackageError: 'error class',
  DeviceUnavailableError: 'error class',
  // The queue functions connect to Redis; their argument checks are fuzzed with garbage only (below).
};
const garbageOnly = new Set(['enqueueBatch', 'runWorker']);

async function loadTargets(): Promise<Target[]> {
  let mod: Record<string, unknown>;
  if (entry === 'raw') {
    // The compiled package, as users load it (dist/, built by `npm run build:ts`).
    const { native } = (await import(resolve(import.meta.dirname, '..', '..', 'dist', 'native.js'))) as typeof import('../../lib/native.js');
    const raw = native() as unknown as Record<string, unknown>;
    rawBinding = raw;
    mod = { ...raw, ...Object.fromEntries(Object.entries((raw.bench as Record<string, unknown>) ?? {}).map(([k, v]) => [`bench.${k}`, v])) };
  } else {
    mod = (await import(entry)) as Record<string, unknown>;
  }
  return Object.entries(mod)
    .filter(([name, v]) => typeof v === 'function' && !(name in excluded))
    .filter(([name]) => !opts.only || opts.only.split(',').includes(name))
    .map(([name, v]) => {
      const fn = v as (...args: unknown[]) => unknown;
      return { name, fn, arity: Math.max(fn.length, paramNames(fn).length), params: paramNames(fn) };
    });
}

// One generated argument: a pool value, or an options object made of real option names.
type ArgPlan = { pool: number } | { options: [string, number][] };

function argPlanArb(keys: string[]): fc.Arbitrary<ArgPlan> {
  return fc.oneof(
    { weight: 3, arbitrary: fc.nat(poolSize - 1).map((i) => ({ pool: i })) },
    {
      weight: 1,
      arbitrary: fc
        .array(fc.tuple(fc.constantFrom(...keys), fc.nat(poolSize - 1)), { maxLength: 4 })
        .map((options) => ({ options })),
    },
  );
}

function build(plan: ArgPlan): unknown {
  if ('pool' in plan) return pool[plan.pool]!.make();
  const o: Record<string, unknown> = {};
  for (const [k, i] of plan.options) o[k] = pool[i]!.make();
  return o;
}

function describePlan(plan: ArgPlan): string {
  if ('pool' in plan) return pool[plan.pool]!.label;
  return `{${plan.options.map(([k, i]) => `${k}: ${pool[i]!.label}`).join(', ')}}`;
}

const garbageIndices = pool.map((e, i) => ({ e, i })).filter(({ e }) => !/^(matrix|csr|tensor|list|'m\.)/.test(e.label) && !/signal/.test(e.label)).map(({ i }) => i);

/** Whether an error message names something the caller passed: a parameter, an option key, or a field. */
function namesAnArgument(message: string, target: Target, args: unknown[]): boolean {
  const names = new Set<string>(target.params);
  for (const a of args) {
    if (a && typeof a === 'object' && !ArrayBuffer.isView(a) && !Array.isArray(a)) {
      try {
        for (const k of Object.keys(a)) names.add(k);
      } catch {
        // a Proxy whose ownKeys trap throws names nothing
      }
    }
  }
  for (const n of ['options', 'argument', 'argv', 'file', 'path', 'rows', 'cols', 'data', 'shape', 'rank', 'strata']) names.add(n);
  for (const n of names) if (n.length > 0 && new RegExp(`(^|[^A-Za-z0-9_])${n.replace(/\$/g, '\\$')}([^A-Za-z0-9_]|$)`).test(message)) return true;
  return /^(Unknown option|Unknown command|Not enough memory|Expected )/.test(message) || /--[a-z]/.test(message);
}

interface Bad {
  target: string;
  args: string;
  outcome: string;
}

const counts: Record<string, number> = { ok: 0, TypeError: 0, RangeError: 0, AbortError: 0, NumericalError: 0, FormatError: 0, UsageError: 0, QueueTimeoutError: 0 };
const bad: Bad[] = [];
let current = '';
let rawBinding: Record<string, unknown> | undefined;
let templateInfo: { templates: number; functions: number; seedFailures: number } | undefined;

function classify(err: unknown, target: Target, args: unknown[], argText: string): void {
  const name = err instanceof Error ? err.name : undefined;
  const message = err instanceof Error ? err.message : String(err);
  let problem: string | undefined;
  // A file that is missing or unreadable is reported by Node itself (ENOENT, EACCES, EISDIR …, with
  // the path in the message): the standard answer, and it names the argument.
  const systemCode = (err as NodeJS.ErrnoException | undefined)?.code;
  if (err instanceof Error && typeof systemCode === 'string' && /^E[A-Z]+$/.test(systemCode) && 'syscall' in err) {
    counts[`system error ${systemCode}`] = (counts[`system error ${systemCode}`] ?? 0) + 1;
    return;
  }
  // The raw binding reports numerical failures and cancellations as Errors with a `kind` that the
  // TypeScript layer maps to NumericalError / AbortError.
  const kind = (err as { kind?: unknown } | undefined)?.kind;
  if (entry === 'raw' && err instanceof Error && err.name === 'Error' && (kind === 'numerical' || kind === 'aborted')) {
    counts[`raw ${kind}`] = (counts[`raw ${kind}`] ?? 0) + 1;
    return;
  }
  if (!(err instanceof Error)) problem = `threw a non-Error: ${String(err)}`;
  else if (!allowedErrors.has(name!)) problem = `${name}: ${message}`;
  else if (internalMessage.test(message)) problem = `${name} with an internal message: ${message}`;
  else if ((name === 'TypeError' || name === 'RangeError') && !namesAnArgument(message, target, args)) problem = `${name} naming no argument: ${message}`;
  // Errors thrown by the generated callbacks themselves (42, 'callback') may surface as they were thrown.
  if (problem && (err === 42 || message === 'callback' || message === 'getter' || /proxy .* trap/.test(message))) problem = undefined;
  if (problem) bad.push({ target: target.name, args: argText, outcome: problem });
  else counts[name ?? 'thrown callback value'] = (counts[name ?? 'thrown callback value'] ?? 0) + 1;
}

function checkCliResult(value: unknown, target: Target, argText: string, stderr: string): void {
  if (![0, 1, 2, 130].includes(value as number)) bad.push({ target: target.name, args: argText, outcome: `exit code ${String(value)}` });
  else if (/\n\s+at .+:\d+:\d+/.test(stderr)) bad.push({ target: target.name, args: argText, outcome: `stack trace on stderr: ${stderr.slice(0, 300)}` });
  else counts.ok!++;
}

// The CLI gets argv drawn from its own vocabulary, with file names of the sandbox's crafted files.
const cliWords = [
  'retract', 'flow', 'path', 'snmf', 'nmf', 'sntf', 'ntf', 'info', 'batch', 'worker', 'plot', 'pca', 'cv-rank', 'nope',
  '--help', '-h', '--version', '-v', '--out', 'out', '../escaped', '--rank', '2', '0', '-1', 'NaN', '1e308', '--k', '--w', '0.5',
  '--max-iterations', '3', '--seed', '1', '--json', '--force', '--strata-from', 'labels.csv:stratum', 'labels.csv:nope',
  'm.npy', 'm.mtx', 'm.csv', 'huge.mtx', 'huge.npy', 'bomb.npy.gz', 'missing.npy', 'jobs.json', 'evil-jobs.json', 'result',
  'evil-result', '--queue', 'redis://127.0.0.1:1', '--type', 'polar', '--max-iter', '--header', '--no-header', '--threads', '64', '=',
];

async function callWithTimeout(p: Promise<unknown>): Promise<unknown> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(Object.assign(new Error(`pending after ${callTimeoutMs} ms`), { hang: true })), callTimeoutMs);
  });
  try {
    return await Promise.race([p, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

async function main(): Promise<void> {
  // Settings go through the compiled package the targets use (one module instance per process).
  const { setMemoryLimit } = (await import(resolve(import.meta.dirname, '..', '..', 'dist', 'memory.js'))) as typeof import('../../lib/memory.js');
  const runtime = (await import('nsa-flow')) as unknown as typeof import('../../lib/runtime.js');
  const concurrency = runtime.getConcurrency();
  const blasThreads = runtime.getBlasThreads();
  // A fixed limit well below the machine's memory: a request the limit refuses must be refused cleanly.
  const restoreSettings = (): void => {
    setMemoryLimit(fuzzMemoryLimit);
    runtime.setConcurrency(concurrency);
    runtime.setBlasThreads(blasThreads);
  };
  restoreSettings();
  const keys = optionKeys();
  const targets = await loadTargets();
  const progressFd = opts.progress!;
  process.on('unhandledRejection', (reason) => {
    bad.push({ target: current, args: '', outcome: `unhandled rejection: ${reason instanceof Error ? `${reason.name}: ${reason.message}` : String(reason)}` });
  });
  process.on('uncaughtException', (err) => {
    bad.push({ target: current, args: '', outcome: `uncaught exception: ${err.name}: ${err.message}` });
  });

  let calls = 0;
  const writeReport = (): void => writeFileSync(opts.report!, JSON.stringify({ entry, targets: targets.length, calls, counts, bad, templateInfo }));
  const runCase = async (target: Target, args: unknown[], argText: string, cli: boolean, stderr: () => string): Promise<void> => {
    current = `${target.name}(${argText})`;
    calls++;
    // Cases before --skip were run by an earlier child that crashed: only their generation is repeated.
    if (calls <= skip) return;
    writeFileSync(progressFd, `${calls}\t${current}\n`);
    // The report so far, so that the outcomes before a crash are counted too.
    writeReport();
    try {
      let value = target.fn(...args);
      if (value instanceof Promise) value = await callWithTimeout(value);
      if (cli) checkCliResult(value, target, argText, stderr());
      else counts.ok!++;
    } catch (err) {
      if (err && (err as { hang?: boolean }).hang) bad.push({ target: target.name, args: argText, outcome: (err as Error).message });
      else classify(err, target, args, argText);
    } finally {
      // Global settings the generated calls may have changed are put back, so later calls see defaults.
      restoreSettings();
    }
  };

  if (entry === 'raw') {
    const api = (await import('nsa-flow')) as unknown as Parameters<typeof seedCalls>[0];
    const { templates, seedFailures, seedErrors } = await recordTemplates(rawBinding!, seedCalls(api));
    templateInfo = { templates: templates.length, functions: new Set(templates.map((tp) => tp.name)).size, seedFailures };
    if (process.env.NSA_FLOW_FUZZ_DEBUG) console.error(seedErrors.join('\n'));
    // Plain garbage first (every function, any arguments), then mutated valid calls.
    for (const [t, target] of targets.entries()) {
      const cases = fc.sample(fc.array(argPlanArb(keys), { maxLength: target.arity + 1 }), { seed: seed * 1000 + t, numRuns: Math.ceil(runsPerTarget / 4) });
      for (const plans of cases) await runCase(target, plans.map(build), plans.map(describePlan).join(', '), false, () => '');
    }
    for (const [t, template] of templates.entries()) {
      const target = targets.find((x) => x.name === template.name);
      if (target === undefined) continue; // a function --only leaves out
      const cases = fc.sample(mutationArb(template), { seed: seed * 7919 + t, numRuns: runsPerTarget });
      for (const mutations of cases) await runCase(target, mutate(template, mutations), describeMutations(template, mutations), false, () => '');
    }
  } else {
    for (const [t, target] of targets.entries()) {
      const isCli = entry === 'nsa-flow/cli' && target.name === 'main';
      if (isCli) {
        for (const argv of fc.sample(fc.array(fc.constantFrom(...cliWords), { maxLength: 8 }), { seed: seed * 1000 + t, numRuns: runsPerTarget * 8 })) {
          let stderr = '';
          const sink = { write: (s: string) => ((stderr += s), true), isTTY: false, columns: 80 };
          const out = { write: () => true, isTTY: false, columns: 80 };
          await runCase(target, [argv, { stdout: out, stderr: sink, cwd: sandbox }], JSON.stringify(argv), true, () => stderr);
        }
        continue;
      }
      const element = garbageOnly.has(target.name) ? fc.constantFrom(...garbageIndices).map((i): ArgPlan => ({ pool: i })) : argPlanArb(keys);
      const cases = fc.sample(fc.array(element, { maxLength: target.arity + 1 }), { seed: seed * 1000 + t, numRuns: runsPerTarget });
      for (const plans of cases) await runCase(target, plans.map(build), plans.map(describePlan).join(', '), false, () => '');
    }
  }
  writeReport();
}

// A failure of the harness itself (not of a call) must fail the run, not end it quietly: the
// uncaughtException handler above would otherwise swallow it and the child would exit 0 with the calls
// made so far.
await main().catch((err: unknown) => {
  console.error('fuzz harness failed:', err);
  process.exit(3);
});
// Jobs still running after a rejected call (a generated signal that never aborts) must not hold the child.
process.exit(0);
