/**
 * The method registry: the one place that says which solvers the CLI, the batch runner and the queue
 * worker can drive. A method is declared once — its option specs (the same OptionSpecs its API
 * validates with), the input files it reads and how to run it — and gets a subcommand, generated
 * flags and help, `--out` serialization, batch jobs and queue jobs from that declaration alone.
 */
import type { CsrMatrix, Matrix } from '../matrix.js';
import type { Tensor } from '../tensor.js';
import type { OptionSpecs } from '../validate.js';
import { describe, expectBoolean, expectFunction, expectOptionSpecs, expectString, readObject, readRecord } from './check.js';

/**
 * One input of a method, given on the command line by path (in the order declared) or, for
 * strata, as `--strata-from labels.csv:column`; in a batch job as `input: {name: path}` (or a bare
 * path when the method has a single input).
 *  - 'matrix': a .npy / .npy.gz / .mtx(.gz) / .csv file read with readMatrix (dense unless `sparse`).
 *  - 'tensor': a .npy / .npy.gz file read with readNpy (any number of dimensions).
 *  - 'strata': a label column `file.csv:column` read with readLabels (one label per matrix row).
 */
export type InputSpec =
  | { kind: 'matrix'; description: string; /** Accept CSR as read (MatrixMarket) instead of densifying. */ sparse?: boolean; optional?: boolean }
  | { kind: 'tensor'; description: string; optional?: boolean }
  | { kind: 'strata'; description: string; optional?: boolean };

export type InputValue = Matrix | CsrMatrix | Tensor | string[];

/** Row and column names a matrix input carried (a CSV header, a row-name column). */
export interface DataNames {
  rowNames?: string[];
  colNames?: string[];
}

/** Names of a result array's rows and/or columns, and what a row / column is; any may be absent. */
export interface AxisNames {
  rows?: readonly string[];
  cols?: readonly string[];
  rowTitle?: string;
  colTitle?: string;
}

/** A progress record as the CLI shows it: iteration of total (when known) and energies/losses. */
export interface MethodProgress {
  iteration: number;
  total?: number;
  /** The quantity shown in the progress bar (energy, loss). */
  energy?: number;
  [quantity: string]: number | undefined;
}

export interface RunContext {
  signal?: AbortSignal;
  onProgress?: (p: MethodProgress) => void;
}

export interface MethodSpec<Options = Record<string, unknown>, Result extends object = object> {
  /** Subcommand and job name, e.g. 'retract'. */
  name: string;
  /** One line for the command list and help. */
  summary: string;
  /** The method's own option specs (those of its API; signal/onProgress are supplied by the CLI). */
  optionSpecs: OptionSpecs;
  /** Input files, by name, in the order they are given on the command line. */
  inputs: Record<string, InputSpec>;
  /**
   * Runs the method on read inputs and parsed options (every default filled in). The result is plain
   * data: typed arrays, Matrix/Tensor objects, arrays of them, numbers, strings and `settings`.
   */
  run(inputs: Record<string, InputValue>, options: Options, context: RunContext): Promise<Result>;
  /** Trace columns of a result (default: `result.traces` when it is an object of Float64Arrays). */
  traces?(result: Result): Record<string, Float64Array>;
  /**
   * Row and column names (and axis titles) of a result array (named as in result.json: 'loadings',
   * 'W.0', …), from the result and the names its inputs carried. The one source of names: result.json's
   * `names` (plot labels) and the CSV copies (row and column headers) both come from it.
   */
  arrayNames?(array: { name: string; shape: readonly number[] }, inputs: Record<string, DataNames | undefined>, result: Result): AxisNames | undefined;
  /** A few numbers worth a column in the batch summary (e.g. final energy, defect). */
  diagnostics?(result: Result, inputs: Record<string, InputValue>): Record<string, number | string>;
  /** The result's own figure as SVG text (the subcommand's --plot FILE.svg). */
  plot?(result: Result): Promise<string>;
}

const registry = new Map<string, MethodSpec<any, any>>();

/** Subcommands of the CLI itself, which a method name would hide. */
export const builtInCommands = ['info', 'batch', 'worker', 'plot', 'help'] as const;

/** A subcommand and job name: lower-case words joined by hyphens ('retract', 'cv-rank'). */
const methodNamePattern = /^[a-z][a-z0-9]*(-[a-z0-9]+)*$/;
/** Input names are positional labels and job input keys: identifiers ('X', 'Y0', 'labels'). */
const inputNamePattern = /^[A-Za-z][A-Za-z0-9]*$/;

const methodSpecKeys = ['name', 'summary', 'optionSpecs', 'inputs', 'run', 'traces', 'arrayNames', 'diagnostics', 'plot'] as const;

function expectInputs(v: unknown, name: string): Record<string, InputSpec> {
  const out: Record<string, InputSpec> = {};
  for (const [key, value] of readRecord(v, name, 'input specs {name: {kind, description}}')) {
    const at = `${name}.${key}`;
    if (!inputNamePattern.test(key)) throw new RangeError(`Expected an identifier (letters and digits) for a key of ${name} but received ${describe(key)}`);
    const f = readObject(value, at, "an input spec {kind: 'matrix' | 'tensor' | 'strata', description}", ['kind', 'description', 'sparse', 'optional']);
    const kinds = ['matrix', 'tensor', 'strata'];
    const list = kinds.map((k) => `'${k}'`).join(', ');
    if (typeof f.kind !== 'string') throw new TypeError(`Expected one of ${list} for ${at}.kind but received ${describe(f.kind)}`);
    if (!kinds.includes(f.kind)) throw new RangeError(`Expected one of ${list} for ${at}.kind but received ${describe(f.kind)}`);
    const description = expectString(f.description, `${at}.description`);
    const spec = { kind: f.kind, description } as InputSpec & { sparse?: boolean };
    if (f.sparse !== undefined) {
      if (f.kind !== 'matrix') throw new TypeError(`Unknown key 'sparse' in ${at} (a '${f.kind}' input); sparse applies to matrix inputs`);
      spec.sparse = expectBoolean(f.sparse, `${at}.sparse`);
    }
    if (f.optional !== undefined) spec.optional = expectBoolean(f.optional, `${at}.optional`);
    out[key] = spec;
  }
  if (Object.values(out).filter((s) => s.kind === 'strata').length > 1) {
    throw new RangeError(`Expected at most one strata input for ${name} (it is given with --strata-from) but received ${Object.keys(out).filter((k) => out[k]!.kind === 'strata').join(', ')}`);
  }
  return out;
}

/**
 * Adds a method; the name becomes a subcommand and a valid `method` of batch jobs. The whole spec is
 * checked first, and the registry keeps a checked copy (its fields read once, here).
 */
export function registerMethod<O, R extends object>(spec: MethodSpec<O, R>): void {
  const f = readObject(spec, 'spec', 'a method spec {name, summary, optionSpecs, inputs, run}', methodSpecKeys);
  const name = expectString(f.name, 'spec.name', 'a method name');
  if (!methodNamePattern.test(name)) {
    throw new RangeError(`Expected a method name of lower-case words joined by hyphens (like 'cv-rank') for spec.name but received ${describe(name)}`);
  }
  if ((builtInCommands as readonly string[]).includes(name)) {
    throw new RangeError(`Expected a method name other than the CLI's own commands (${builtInCommands.join(', ')}) for spec.name but received ${describe(name)}`);
  }
  if (registry.has(name)) {
    throw new RangeError(`Expected a method name not registered yet for spec.name but received ${describe(name)}, which is already registered`);
  }
  const checked: MethodSpec<any, any> = {
    name,
    summary: expectString(f.summary, 'spec.summary'),
    optionSpecs: expectOptionSpecs(f.optionSpecs, 'spec.optionSpecs'),
    inputs: expectInputs(f.inputs, 'spec.inputs'),
    run: expectFunction(f.run, 'spec.run'),
  };
  for (const key of ['traces', 'arrayNames', 'diagnostics', 'plot'] as const) {
    if (f[key] !== undefined) (checked as unknown as Record<string, unknown>)[key] = expectFunction(f[key], `spec.${key}`);
  }
  registry.set(name, checked);
}

/** The method registered under `name`, or undefined. */
export function getMethod(name: string): MethodSpec<any, any> | undefined {
  return registry.get(expectString(name, 'name', 'a method name'));
}

export function methodNames(): string[] {
  return [...registry.keys()];
}

/** Trace columns of a result when its method does not say: `result.traces` if it holds Float64Arrays. */
export function defaultTraces(result: object): Record<string, Float64Array> {
  const traces = (result as { traces?: unknown }).traces;
  if (traces === null || typeof traces !== 'object') return {};
  return Object.fromEntries(Object.entries(traces).filter(([, v]) => v instanceof Float64Array)) as Record<string, Float64Array>;
}
