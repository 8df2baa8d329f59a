/**
 * Batch jobs: `{method, input, options}` — plain JSON, so the same job runs in the local pool, on a
 * queue worker on another machine, or again later. A jobs file is a list of jobs, a grid
 * (methods × option values × inputs, expanded deterministically), or `{jobs, grid}` with either or
 * both (a grid may be a list of grids). Every job is validated before any runs: its method must be
 * registered, its inputs must exist, its options must pass the method's own parseOptions.
 *
 * Ids are stable: `<method>-<first 12 hex of sha256(canonical JSON of method, input, options)>`, with
 * options as validated (defaults filled in), so the same computation always lands in the same result
 * directory — which is what makes resume work.
 */
import { createHash } from 'node:crypto';

import '../cli/methods.js';
import { UsageError, flagSpecs } from '../cli/flags.js';
import { checkInputRefs } from '../cli/inputs.js';
import { getMethod, methodNames, type MethodSpec } from '../cli/registry.js';
import { describeValue, parseOptions } from '../validate.js';

/** A job as written by a user: `input` is a path, or {inputName: path} for methods with several. */
export interface JobSpec {
  method: string;
  input: string | Record<string, string>;
  options?: Record<string, unknown>;
}

/**
 * A grid: every method × every combination of option values × every input. An option given as an
 * array sweeps its values (an option whose value is itself an array must be wrapped: [[…]]); a
 * scalar is fixed. With several methods an option applies to those that declare it.
 */
export interface GridSpec {
  method?: string;
  methods?: string[];
  input?: string | Record<string, string>;
  inputs?: (string | Record<string, string>)[];
  options?: Record<string, unknown>;
}

export type JobsFile = JobSpec[] | GridSpec | { jobs?: JobSpec[]; grid?: GridSpec | GridSpec[] };

/** A validated job: inputs by name, options with defaults, and its stable id. */
export interface Job {
  id: string;
  method: string;
  input: Record<string, string>;
  options: Record<string, unknown>;
}

/** JSON with object keys sorted at every level: equal values give equal text. */
export function canonicalJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(',')}]`;
  if (v !== null && typeof v === 'object') {
    const o = v as Record<string, unknown>;
    return `{${Object.keys(o)
      .sort()
      .filter((k) => o[k] !== undefined)
      .map((k) => `${JSON.stringify(k)}:${canonicalJson(o[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(v);
}

export function jobId(method: string, input: Record<string, string>, options: Record<string, unknown>): string {
  const hash = createHash('sha256').update(canonicalJson({ method, input, options })).digest('hex');
  return `${method}-${hash.slice(0, 12)}`;
}

/**
 * Whether `id` has the form jobId gives for `method`: the method's name, '-', 12 lowercase hex digits.
 * A job id names a directory under the batch's output directory, so only this form is ever used as a
 * path (no '/', no '..'); a registered method's name is lowercase letters, digits and '-'.
 */
export function isJobId(id: unknown, method: string): id is string {
  return typeof id === 'string' && id.length === method.length + 13 && id.startsWith(`${method}-`) && /^[a-z][a-z0-9-]*-[0-9a-f]{12}$/.test(id);
}

const isObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);

/** Expands a jobs file into job specs, in a deterministic order (jobs first, then each grid). */
export function expandJobs(file: unknown): JobSpec[] {
  if (Array.isArray(file)) return file.map((j, i) => expectJobSpec(j, `job ${i}`));
  if (!isObject(file)) throw new UsageError(`Expected a list of jobs, a grid or {jobs, grid} but received ${describeValue(file)}`);
  if (!('jobs' in file) && !('grid' in file)) return expandGrid(file as GridSpec, 'grid');
  const out: JobSpec[] = [];
  if (file.jobs !== undefined) {
    if (!Array.isArray(file.jobs)) throw new UsageError(`Expected a list for jobs but received ${describeValue(file.jobs)}`);
    out.push(...file.jobs.map((j, i) => expectJobSpec(j, `job ${i}`)));
  }
  if (file.grid !== undefined) {
    const grids = Array.isArray(file.grid) ? file.grid : [file.grid];
    grids.forEach((g, i) => out.push(...expandGrid(g as GridSpec, grids.length > 1 ? `grid ${i}` : 'grid')));
  }
  return out;
}

function expectJobSpec(j: unknown, where: string): JobSpec {
  if (!isObject(j) || typeof j.method !== 'string' || j.input === undefined) {
    throw new UsageError(`Expected {method, input, options} for ${where} but received ${describeValue(j)}`);
  }
  return j as unknown as JobSpec;
}

function expandGrid(grid: unknown, where: string): JobSpec[] {
  if (!isObject(grid)) throw new UsageError(`Expected a grid object for ${where} but received ${describeValue(grid)}`);
  const g = grid as GridSpec;
  const methods = g.methods ?? (g.method === undefined ? [] : [g.method]);
  const inputs = g.inputs ?? (g.input === undefined ? [] : [g.input]);
  if (methods.length === 0) throw new UsageError(`Expected 'method' or 'methods' in ${where}`);
  if (inputs.length === 0) throw new UsageError(`Expected 'input' or 'inputs' in ${where}`);
  const options = g.options ?? {};
  if (!isObject(options)) throw new UsageError(`Expected an object for options of ${where} but received ${describeValue(options)}`);
  const out: JobSpec[] = [];
  for (const method of methods) {
    const spec = getMethod(method);
    if (!spec) throw unknownMethod(method, where);
    const keys = Object.keys(options).filter((k) => methods.length === 1 || k in spec.optionSpecs);
    for (const k of Object.keys(options)) {
      if (!methods.some((m) => k in (getMethod(m)?.optionSpecs ?? {}))) {
        throw new UsageError(`Unknown option '${k}' in ${where}; ${methods.join(', ')} take: ${methods.flatMap((m) => Object.keys(getMethod(m)!.optionSpecs)).join(', ')}`);
      }
    }
    const axes = keys.map((k) => {
      const v = options[k];
      return Array.isArray(v) ? v : [v];
    });
    for (const input of inputs) {
      for (const combination of cartesian(axes)) {
        out.push({ method, input, options: Object.fromEntries(keys.map((k, i) => [k, combination[i]])) });
      }
    }
  }
  return out;
}

function* cartesian(axes: unknown[][]): Generator<unknown[]> {
  if (axes.length === 0) {
    yield [];
    return;
  }
  const [first, ...rest] = axes;
  for (const v of first!) for (const tail of cartesian(rest)) yield [v, ...tail];
}

function unknownMethod(name: string, where: string): UsageError {
  return new UsageError(`Unknown method '${name}' in ${where}; registered methods: ${methodNames().join(', ')}`);
}

/** Normalizes `input` to {name: path}: a bare path is the method's first input. */
export function inputRefs(method: MethodSpec, input: unknown, where: string): Record<string, string> {
  if (typeof input === 'string') return { [Object.keys(method.inputs)[0]!]: input };
  if (isObject(input) && Object.values(input).every((v) => typeof v === 'string')) return input as Record<string, string>;
  throw new UsageError(`Expected a path or {name: path} for the input of ${where} but received ${describeValue(input)}`);
}

/**
 * Validates job specs and gives them ids. Input files are checked to exist relative to `baseDir`.
 * Duplicates (same id) are run once. Messages name the job ("job 3 (retract): …").
 */
export function prepareJobs(specs: readonly JobSpec[], baseDir: string): Job[] {
  const seen = new Set<string>();
  const jobs: Job[] = [];
  specs.forEach((spec, i) => {
    const where = `job ${i} (${spec.method})`;
    const method = getMethod(spec.method);
    if (!method) throw unknownMethod(spec.method, `job ${i}`);
    const input = inputRefs(method, spec.input, where);
    checkInputRefs(method, input, baseDir, where);
    let options: Record<string, unknown>;
    try {
      options = parseOptions(Object.fromEntries(flagSpecs(method.optionSpecs)), spec.options ?? {}, where);
    } catch (err) {
      throw err instanceof TypeError || err instanceof RangeError ? new UsageError(err.message) : err;
    }
    const id = jobId(spec.method, input, options);
    if (seen.has(id)) return;
    seen.add(id);
    jobs.push({ id, method: spec.method, input, options });
  });
  return jobs;
}
