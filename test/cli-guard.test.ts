// Every export of nsa-flow/cli checks its arguments before doing anything: a bad value is a
// TypeError (wrong type) or RangeError (wrong value) whose message names the argument, in the shape
// "Expected <what> for <name> but received <value>" — never a V8 internal message.
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, describe, expect, it } from 'vitest';

import * as cli from '../lib/cli/index.js';
import { UsageError } from '../lib/cli/flags.js';

const {
  main, runCli, exitCodeFor, exitCodes, registerMethod, getMethod, methodNames, kebab, camel, parseArgs, validateFlags, describeFlags, writeResultDir, resultJson,
} = cli;

const getterThrows = (key: string): object =>
  Object.defineProperty({}, key, {
    enumerable: true,
    get() {
      throw new Error('getter');
    },
  });

const sink = (): { write: (s: string) => boolean; text: () => string } => {
  let text = '';
  return { write: (s: string) => ((text += s), true), text: () => text };
};

const okMeta = (): cli.ResultMeta => ({
  method: 'retract',
  version: '0.0.0',
  inputs: { Y: 'y.npy' },
  options: { w: 0.5 },
  diagnostics: { defect: 0.25 },
  timings: { startedAt: '2026-01-01T00:00:00.000Z', readSeconds: 0, runSeconds: 1 },
  traces: { energy: new Float64Array([2, 1]) },
});

const matrix = (rows: number, cols: number, data: Float64Array): object => ({ rows, cols, data });
const okSpec = (name: string): cli.MethodSpec => ({
  name,
  summary: 'test-only',
  optionSpecs: { w: { kind: 'number', description: 'weight', min: 0, default: 1 } },
  inputs: { X: { kind: 'matrix', description: 'any matrix' } },
  run: async () => ({}),
});

const dir = mkdtempSync(join(tmpdir(), 'nsa-flow-cli-guard-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

type Case = [label: string, call: () => unknown, cls: typeof TypeError | typeof RangeError, message: string];

// Each row: the call, the class and the exact message (each names the argument it is about).
const cases: Case[] = [
  // kebab / camel
  ['kebab(undefined)', () => kebab(undefined as never), TypeError, 'Expected a string for camelName but received undefined'],
  ['kebab(null)', () => kebab(null as never), TypeError, 'Expected a string for camelName but received null'],
  ['kebab(42)', () => kebab(42 as never), TypeError, 'Expected a string for camelName but received 42'],
  ['kebab({})', () => kebab({} as never), TypeError, 'Expected a string for camelName but received an object'],
  ['camel([1])', () => camel([1] as never), TypeError, 'Expected a string for kebabName but received an array of length 1'],
  ['camel(getter)', () => camel(getterThrows('x') as never), TypeError, 'Expected a string for kebabName but received an object'],
  // getMethod
  ['getMethod(undefined)', () => getMethod(undefined as never), TypeError, 'Expected a method name for name but received undefined'],
  ['getMethod(7)', () => getMethod(7 as never), TypeError, 'Expected a method name for name but received 7'],
  // parseArgs
  ['parseArgs(undefined, …)', () => parseArgs(undefined as never, {}, {}), TypeError, 'Expected an array of strings for argv but received undefined'],
  ['parseArgs("--x", …)', () => parseArgs('--x' as never, {}, {}), TypeError, 'Expected an array of strings for argv but received the string "--x"'],
  ['parseArgs(["a", 1], …)', () => parseArgs(['a', 1] as never, {}, {}), TypeError, 'Expected a string for argv[1] but received 1'],
  [
    'parseArgs(argv with a throwing element)',
    () => parseArgs(Object.defineProperty(['a'], 0, { get: () => { throw new Error('getter'); } }) as never, {}, {}),
    TypeError,
    'Expected a plain value for argv[0] but received a getter that throws (getter)',
  ],
  ['parseArgs([], null, {})', () => parseArgs([], null as never, {}), TypeError, 'Expected option specs {name: {kind, description, …}} for specs but received null'],
  ['parseArgs([], {x: 42})', () => parseArgs([], { x: 42 } as never, {}), TypeError, 'Expected an option spec {kind, description, …} for specs.x but received 42'],
  ['parseArgs([], {x: getter})', () => parseArgs([], getterThrows('x') as never, {}), TypeError, 'Expected a plain value for specs.x but received a getter that throws (getter)'],
  [
    'parseArgs([], {x: {kind: "nope"}})',
    () => parseArgs([], { x: { kind: 'nope', description: 'd' } } as never, {}),
    RangeError,
    "Expected one of 'number', 'enum', 'boolean', 'function', 'signal', 'custom' for specs.x.kind but received the string \"nope\"",
  ],
  [
    'parseArgs([], {x: {kind: "number", mn: 1}})',
    () => parseArgs([], { x: { kind: 'number', description: 'd', mn: 1 } } as never, {}),
    TypeError,
    "Unknown key 'mn' in specs.x (did you mean min?); valid keys are: kind, description, default, min, max, minExclusive, maxExclusive, integer",
  ],
  [
    'parseArgs([], {x: boolean with min})',
    () => parseArgs([], { x: { kind: 'boolean', description: 'd', min: 1 } } as never, {}),
    TypeError,
    "Unknown key 'min' in specs.x; valid keys are: kind, description, default",
  ],
  [
    'parseArgs([], {"bad-key": …})',
    () => parseArgs([], { 'bad-key': { kind: 'boolean', description: 'd' } }, {}),
    RangeError,
    'Expected a camelCase option name for a key of specs but received the string "bad-key"',
  ],
  ['parseArgs([], enum of numbers)', () => parseArgs([], { x: { kind: 'enum', description: 'd', values: [1] } } as never, {}), TypeError, 'Expected a string for specs.x.values[0] but received 1'],
  [
    'parseArgs([], number with min > max)',
    () => parseArgs([], { x: { kind: 'number', description: 'd', min: 2, max: 1 } }, {}),
    RangeError,
    'Expected specs.x.min ≤ specs.x.max but received min 2 and max 1',
  ],
  ['parseArgs([], {}, undefined)', () => parseArgs([], {}, undefined as never), TypeError, 'Expected command flags {name: {kind, description, …}} for commandFlags but received undefined'],
  [
    'parseArgs([], {}, {out: {kind: "path"}})',
    () => parseArgs([], {}, { out: { kind: 'path', description: 'd' } } as never),
    RangeError,
    "Expected one of 'string', 'integer', 'boolean' for commandFlags.out.kind but received the string \"path\"",
  ],
  // validateFlags
  ['validateFlags(undefined, …)', () => validateFlags(undefined as never, {}, 'm'), TypeError, 'Expected option specs {name: {kind, description, …}} for specs but received undefined'],
  ['validateFlags({}, null, …)', () => validateFlags({}, null as never, 'm'), TypeError, 'Expected an object of option values by name for options but received null'],
  ['validateFlags({}, [1, 2], …)', () => validateFlags({}, [1, 2] as never, 'm'), TypeError, 'Expected an object of option values by name for options but received an array of length 2'],
  ['validateFlags({}, {}, 42)', () => validateFlags({}, {}, 42 as never), TypeError, 'Expected a string for method but received 42'],
  ['validateFlags({}, getter, …)', () => validateFlags({}, getterThrows('w') as never, 'm'), TypeError, 'Expected a plain value for options.w but received a getter that throws (getter)'],
  // describeFlags
  ['describeFlags("x", {})', () => describeFlags('x' as never, {}), TypeError, 'Expected option specs {name: {kind, description, …}} for specs but received the string "x"'],
  ['describeFlags({}, null)', () => describeFlags({}, null as never), TypeError, 'Expected command flags {name: {kind, description, …}} for commandFlags but received null'],
  [
    'describeFlags({}, flag without description)',
    () => describeFlags({}, { x: { kind: 'string' } } as never),
    TypeError,
    'Expected a string for commandFlags.x.description but received undefined',
  ],
  [
    'describeFlags({}, flag with default)',
    () => describeFlags({}, { x: { kind: 'string', description: 'd', default: 1 } } as never),
    TypeError,
    "Unknown key 'default' in commandFlags.x; valid keys are: kind, description, placeholder, min, hidden, repeatable",
  ],
  ['describeFlags({}, getter)', () => describeFlags({}, getterThrows('x') as never), TypeError, 'Expected a plain value for commandFlags.x but received a getter that throws (getter)'],
  // registerMethod
  ['registerMethod(undefined)', () => registerMethod(undefined as never), TypeError, 'Expected a method spec {name, summary, optionSpecs, inputs, run} for spec but received undefined'],
  ['registerMethod(42)', () => registerMethod(42 as never), TypeError, 'Expected a method spec {name, summary, optionSpecs, inputs, run} for spec but received 42'],
  ['registerMethod({})', () => registerMethod({} as never), TypeError, 'Expected a method name for spec.name but received undefined'],
  ['registerMethod(name getter)', () => registerMethod(getterThrows('name') as never), TypeError, 'Expected a plain value for spec.name but received a getter that throws (getter)'],
  [
    'registerMethod(name "Bad Name")',
    () => registerMethod(okSpec('Bad Name')),
    RangeError,
    "Expected a method name of lower-case words joined by hyphens (like 'cv-rank') for spec.name but received the string \"Bad Name\"",
  ],
  [
    'registerMethod(name "plot")',
    () => registerMethod(okSpec('plot')),
    RangeError,
    "Expected a method name other than the CLI's own commands (info, batch, worker, plot, help) for spec.name but received the string \"plot\"",
  ],
  [
    'registerMethod(name "retract", already registered)',
    () => registerMethod(okSpec('retract')),
    RangeError,
    'Expected a method name not registered yet for spec.name but received the string "retract", which is already registered',
  ],
  [
    'registerMethod(unknown key runn)',
    () => registerMethod({ ...okSpec('guard-a'), runn: 1 } as never),
    TypeError,
    "Unknown key 'runn' in spec (did you mean run?); valid keys are: name, summary, optionSpecs, inputs, run, traces, arrayNames, diagnostics, plot",
  ],
  ['registerMethod(no run)', () => registerMethod({ ...okSpec('guard-a'), run: undefined } as never), TypeError, 'Expected a function for spec.run but received undefined'],
  ['registerMethod(summary 1)', () => registerMethod({ ...okSpec('guard-a'), summary: 1 } as never), TypeError, 'Expected a string for spec.summary but received 1'],
  ['registerMethod(traces "x")', () => registerMethod({ ...okSpec('guard-a'), traces: 'x' } as never), TypeError, 'Expected a function for spec.traces but received the string "x"'],
  [
    'registerMethod(optionSpecs of a bad spec)',
    () => registerMethod({ ...okSpec('guard-a'), optionSpecs: { w: { kind: 'number' } } } as never),
    TypeError,
    'Expected a string for spec.optionSpecs.w.description but received undefined',
  ],
  ['registerMethod(inputs null)', () => registerMethod({ ...okSpec('guard-a'), inputs: null } as never), TypeError, 'Expected input specs {name: {kind, description}} for spec.inputs but received null'],
  [
    'registerMethod(input kind "table")',
    () => registerMethod({ ...okSpec('guard-a'), inputs: { X: { kind: 'table', description: 'd' } } } as never),
    RangeError,
    "Expected one of 'matrix', 'tensor', 'strata' for spec.inputs.X.kind but received the string \"table\"",
  ],
  [
    'registerMethod(input name "../x")',
    () => registerMethod({ ...okSpec('guard-a'), inputs: { '../x': { kind: 'matrix', description: 'd' } } }),
    RangeError,
    'Expected an identifier (letters and digits) for a key of spec.inputs but received the string "../x"',
  ],
  [
    'registerMethod(sparse strata)',
    () => registerMethod({ ...okSpec('guard-a'), inputs: { s: { kind: 'strata', description: 'd', sparse: true } } } as never),
    TypeError,
    "Unknown key 'sparse' in spec.inputs.s (a 'strata' input); sparse applies to matrix inputs",
  ],
  [
    'registerMethod(two strata inputs)',
    () => registerMethod({ ...okSpec('guard-a'), inputs: { a: { kind: 'strata', description: 'd' }, b: { kind: 'strata', description: 'd' } } }),
    RangeError,
    'Expected at most one strata input for spec.inputs (it is given with --strata-from) but received a, b',
  ],
  // resultJson
  ['resultJson(undefined, meta)', () => resultJson(undefined as never, okMeta()), TypeError, 'Expected a result object for result but received undefined'],
  ['resultJson([], meta)', () => resultJson([] as never, okMeta()), TypeError, 'Expected a result object for result but received an array of length 0'],
  ['resultJson({}, undefined)', () => resultJson({}, undefined as never), TypeError, 'Expected result metadata {method, version, inputs, options, diagnostics, timings, traces} for meta but received undefined'],
  [
    'resultJson({}, meta with an extra key)',
    () => resultJson({}, { ...okMeta(), extra: 1 } as never),
    TypeError,
    "Unknown key 'extra' in meta; valid keys are: method, version, inputs, options, diagnostics, timings, traces, run",
  ],
  ['resultJson({}, meta.inputs.Y = 1)', () => resultJson({}, { ...okMeta(), inputs: { Y: 1 } } as never), TypeError, 'Expected a string for meta.inputs.Y but received 1'],
  ['resultJson({}, meta.traces of numbers)', () => resultJson({}, { ...okMeta(), traces: { e: [1, 2] } } as never), TypeError, 'Expected a Float64Array for meta.traces.e but received an array of length 2'],
  [
    'resultJson({}, negative readSeconds)',
    () => resultJson({}, { ...okMeta(), timings: { startedAt: 'now', readSeconds: -1, runSeconds: 0 } }),
    RangeError,
    'Expected a number of seconds ≥ 0 for meta.timings.readSeconds but received -1',
  ],
  ['resultJson({}, meta, 42)', () => resultJson({}, okMeta(), 42 as never), TypeError, 'Expected an options object {names, csv} for options but received 42'],
  [
    'resultJson({n: 10n}, meta)',
    () => resultJson({ n: 10n }, okMeta()),
    TypeError,
    'Expected plain data (numbers, strings, booleans, arrays, objects, typed arrays) for result.n but received bigint 10',
  ],
  ['resultJson(getter, meta)', () => resultJson(getterThrows('Y'), okMeta()), TypeError, 'Expected a plain value for result.Y but received a getter that throws (getter)'],
  [
    'resultJson(a cycle, meta)',
    () => {
      const r: Record<string, unknown> = { a: {} };
      (r.a as Record<string, unknown>).back = r;
      return resultJson(r, okMeta());
    },
    TypeError,
    'Expected plain data (numbers, strings, booleans, arrays, objects, typed arrays) for result.a.back but received a reference to an object that contains it (a cycle)',
  ],
  [
    'resultJson(3×1 matrix holding 2, meta)',
    () => resultJson({ Y: matrix(3, 1, new Float64Array(2)) }, okMeta()),
    RangeError,
    'Expected a Matrix with non-negative integer rows and cols and rows*cols values for result.Y but received 3×1 holding 2',
  ],
  [
    'resultJson(Proxy whose traps throw, meta)',
    () => resultJson(new Proxy({}, { ownKeys: () => { throw new Error('trap'); } }), okMeta()),
    TypeError,
    'Expected a result object for result but received an object whose keys cannot be listed (trap)',
  ],
  // writeResultDir
  ['writeResultDir(undefined, …)', () => writeResultDir(undefined as never, {}, okMeta()), TypeError, 'Expected a path (a non-empty string) for dir but received undefined'],
  ['writeResultDir("", …)', () => writeResultDir('', {}, okMeta()), RangeError, 'Expected a path (a non-empty string without NUL bytes) for dir but received the string ""'],
  ['writeResultDir("/", …)', () => writeResultDir('/', {}, okMeta()), RangeError, 'Expected a folder to create or replace for dir but received the string "/", a file-system root'],
  ['writeResultDir(dir, null, …)', () => writeResultDir(join(dir, 'r0'), null as never, okMeta()), TypeError, 'Expected a result object for result but received null'],
  ['writeResultDir(dir, {}, 1)', () => writeResultDir(join(dir, 'r0'), {}, 1 as never), TypeError, 'Expected result metadata {method, version, inputs, options, diagnostics, timings, traces} for meta but received 1'],
  ['writeResultDir(…, {replace: "yes"})', () => writeResultDir(join(dir, 'r0'), {}, okMeta(), { replace: 'yes' } as never), TypeError, 'Expected a boolean for options.replace but received the string "yes"'],
  [
    'writeResultDir(…, {force: true})',
    () => writeResultDir(join(dir, 'r0'), {}, okMeta(), { force: true } as never),
    TypeError,
    "Unknown key 'force' in options; valid keys are: names, csv, replace, signal",
  ],
  ['writeResultDir(…, {signal: {}})', () => writeResultDir(join(dir, 'r0'), {}, okMeta(), { signal: {} } as never), TypeError, 'Expected an AbortSignal for options.signal but received an object'],
  ['writeResultDir(…, getter)', () => writeResultDir(join(dir, 'r0'), {}, okMeta(), getterThrows('replace') as never), TypeError, 'Expected a plain value for options.replace but received a getter that throws (getter)'],
  ['writeResultDir(…, meta getter, …)', () => writeResultDir(join(dir, 'r0'), {}, getterThrows('method') as never), TypeError, 'Expected a plain value for meta.method but received a getter that throws (getter)'],
  ['writeResultDir(…, "x")', () => writeResultDir(join(dir, 'r0'), {}, okMeta(), 'x' as never), TypeError, 'Expected an options object {replace, signal, names, csv} for options but received the string "x"'],
];

describe('every export of nsa-flow/cli refuses bad arguments, naming them', () => {
  it.each(cases)('%s', (_label, call, cls, message) => {
    let thrown: unknown;
    try {
      call();
    } catch (err) {
      thrown = err;
    }
    expect(thrown).toBeInstanceOf(cls);
    expect((thrown as Error).message).toBe(message);
  });

  it('the refused writeResultDir calls above wrote nothing (no r0, no temporary sibling)', () => {
    expect(readdirSync(dir).filter((f) => f.includes('r0'))).toEqual([]);
  });

  it('the table covers every function lib/cli/index.ts exports', () => {
    const covered = new Set(cases.map(([label]) => label.split('(')[0]!));
    // main and runCli are async (tested below); exitCodeFor takes any value and methodNames none;
    // UsageError is an error class.
    for (const name of ['main', 'runCli', 'exitCodeFor', 'methodNames', 'UsageError']) covered.add(name);
    const functions = Object.entries(cli).filter(([, v]) => typeof v === 'function').map(([k]) => k).sort();
    expect(functions).toEqual([...covered].sort());
    // 13 functions + the UsageError class: a new export must join the table.
    expect(functions).toHaveLength(14);
  });
});

describe('main and runCli reject bad arguments (nothing is run or written)', () => {
  const io = (): cli.CliIO => ({ stdout: sink(), stderr: sink() });
  const rows: [string, () => Promise<unknown>, string][] = [
    ['main(undefined, io)', () => main(undefined as never, io()), 'Expected an array of strings for argv but received undefined'],
    ['main(["info", 3], io)', () => main(['info', 3] as never, io()), 'Expected a string for argv[1] but received 3'],
    ['main(["-v"], undefined)', () => main(['-v'], undefined as never), 'Expected an object {stdout, stderr, signal?, cwd?} for io but received undefined'],
    ['main(["-v"], {stdout: {}, …})', () => main(['-v'], { stdout: {}, stderr: sink() } as never), 'Expected a function for io.stdout.write but received undefined'],
    ['main(["-v"], {stderr: null, …})', () => main(['-v'], { stdout: sink(), stderr: null } as never), 'Expected a stream {write(text)} for io.stderr but received null'],
    ['main(["-v"], {…, stdin})', () => main(['-v'], { ...io(), stdin: 1 } as never), "Unknown key 'stdin' in io; valid keys are: stdout, stderr, signal, cwd"],
    ['main(["-v"], {…, cwd: 42})', () => main(['-v'], { ...io(), cwd: 42 } as never), 'Expected a path (a non-empty string) for io.cwd but received 42'],
    ['main(["-v"], {…, signal: {}})', () => main(['-v'], { ...io(), signal: {} } as never), 'Expected an AbortSignal for io.signal but received an object'],
    ['main(["-v"], {stdout getter})', () => main(['-v'], Object.assign(getterThrows('stdout'), { stderr: sink() }) as never), 'Expected a plain value for io.stdout but received a getter that throws (getter)'],
    ['runCli(42)', () => runCli(42 as never), 'Expected an array of strings for argv but received 42'],
    ['runCli(["x", null])', () => runCli(['x', null] as never), 'Expected a string for argv[1] but received null'],
  ];
  it.each(rows)('%s', async (_label, call, message) => {
    const err = await call().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(TypeError);
    expect((err as Error).message).toBe(message);
  });

  it('valid arguments still run: --version prints the version and exits 0', async () => {
    const out = sink();
    expect(await main(['--version'], { stdout: out, stderr: sink() })).toBe(exitCodes.ok);
    expect(out.text()).toMatch(/^\d+\.\d+\.\d+/);
  });
});

describe('exitCodeFor classifies any thrown value without throwing', () => {
  it('maps errors to 2 (usage), 1 (numerical or internal), and survives hostile values', () => {
    expect(exitCodeFor(new TypeError('x'))).toBe(2);
    expect(exitCodeFor(new UsageError('x'))).toBe(2);
    expect(exitCodeFor({ code: 'ENOENT' })).toBe(2);
    expect(exitCodeFor(undefined)).toBe(1);
    expect(exitCodeFor(42)).toBe(1);
    // An object whose `code` getter throws is no file-system error: internal (1), not a crash.
    expect(exitCodeFor(getterThrows('code'))).toBe(1);
    const proxy = new Proxy({}, { get: () => { throw new Error('trap'); } });
    expect(exitCodeFor(proxy)).toBe(1);
    expect(Object.isFrozen(exitCodes)).toBe(true);
  });
});

describe('registerMethod keeps a checked copy and registers nothing on failure', () => {
  it('a refused spec leaves no method behind; a valid one reads each field once', () => {
    expect(() => registerMethod({ ...okSpec('guard-refused'), run: 1 } as never)).toThrow(TypeError);
    expect(getMethod('guard-refused')).toBeUndefined();
    let reads = 0;
    const spec = {
      ...okSpec('guard-ok'),
      get summary() {
        reads++;
        return 'counted';
      },
    };
    registerMethod(spec);
    expect(reads).toBe(1);
    expect(getMethod('guard-ok')?.summary).toBe('counted');
    expect(reads).toBe(1); // the copy answers, not the caller's getter
    expect(methodNames()).toContain('guard-ok');
    // A second registration of the same name is a RangeError (the first one stands).
    expect(() => registerMethod(okSpec('guard-ok'))).toThrow(RangeError);
  });
});

describe('parseArgs looks flags up in the specs only, not in Object.prototype', () => {
  it.each(['--constructor', '--to-string', '--has-own-property'])('%s is an unknown option (UsageError)', (flag) => {
    expect(() => parseArgs([flag, 'x'], {}, { help: { kind: 'boolean', description: 'help' } })).toThrow(UsageError);
    expect(() => parseArgs([flag, 'x'], {}, {})).toThrow(/^Unknown option --/);
  });
});

describe('writeResultDir writes inside dir only', () => {
  it('an array name that is a path is refused before anything is written', () => {
    const parent = join(dir, 'escape');
    const target = join(parent, 'inner', 'out');
    expect(() => writeResultDir(target, { '../../escaped': new Float64Array([1, 2]) }, okMeta())).toThrow(
      new RangeError(
        `Expected result keys of letters, digits, '_' and '-' (at most 200 characters in all; they name the files written) for result.../../escaped but received the string "../../escaped"`,
      ),
    );
    expect(existsSync(parent)).toBe(false);
    expect(readdirSync(dir).filter((f) => f.includes('escaped'))).toEqual([]);
  });

  it('a valid result still gives the same files: Y.npy, a vector and result.json', () => {
    const target = join(dir, 'ok');
    const json = writeResultDir(target, { Y: matrix(2, 2, new Float64Array([1, 2, 3, 4])), w: new Float64Array([1, 2, 3]), iterations: 3 }, okMeta());
    expect(readdirSync(target).sort()).toEqual(['Y.npy', 'result.json', 'w.npy']);
    expect(json.arrays).toEqual({ Y: { file: 'Y.npy', shape: [2, 2] }, w: { file: 'w.npy', shape: [3] } });
    expect(json.values).toEqual({ iterations: 3 });
  });
});
