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
import { describe, expectPath, expectString, isList, isPlainRecord, readField, readList, readRecord } from '../cli/check.js';
import { UsageError, flagSpecs } from '../cli/flags.js';
import { checkInputRefs } from '../cli/inputs.js';
import { getMethod, methodNames, type MethodSpec } from '../cli/registry.js';
import { parseOptions } from '../validate.js';

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
  expectString(method, 'method');
  const inputs = Object.fromEntries(readRecord(input, 'input', 'input paths {name: path}').map(([k, v]) => [k, expectString(v, `input.${k}`, 'a path')]));
  const values = Object.fromEntries(readRecord(options, 'options', 'an options object'));
  let text: string;
  try {
    text = canonicalJson({ method, input: inputs, options: values });
  } catch (err) {
    // BigInts, cycles, getters that throw: the id is a hash of JSON, so options must be JSON values.
    throw new TypeError(`Expected JSON values for options but received values that cannot be written as JSON (${err instanceof Error ? err.message : describe(err)})`);
  }
  const hash = createHash('sha256').update(text).digest('hex');
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

const isObject = (v: unknown): v is Record<string, unknown> => isPlainRecord(v);

const jobsFileWhat = 'a list of jobs, a grid or {jobs, grid}';

/** Expands a jobs file into job specs, in a deterministic order (jobs first, then each grid). */
export function expandJobs(file: unknown): JobSpec[] {
  return expandJobsArgument(file, 'file');
}

/**
 * expandJobs for an argument called `name` (runBatch's `jobs`): the argument itself must be a list or
 * an object (a TypeError naming it); what it holds is checked as a jobs file (UsageError naming the job).
 */
export function expandJobsArgument(file: unknown, name: string): JobSpec[] {
  if (isList(file)) return readList(file, name, jobsFileWhat).map((j, i) => expectJobSpec(j, `job ${i}`));
  if (!isObject(file)) throw new TypeError(`Expected ${jobsFileWhat} for ${name} but received ${describe(file)}`);
  const fields = new Map(readRecord(file, name, jobsFileWhat));
  if (!fields.has('jobs') && !fields.has('grid')) return expandGrid(file, 'grid', fields);
  const out: JobSpec[] = [];
  const jobs = fields.get('jobs');
  if (jobs !== undefined) {
    if (!isList(jobs)) throw new UsageError(`Expected a list for jobs but received ${describe(jobs)}`);
    out.push(...readList(jobs, 'jobs', 'a list').map((j, i) => expectJobSpec(j, `job ${i}`)));
  }
  const grid = fields.get('grid');
  if (grid !== undefined) {
    const grids = isList(grid) ? readList(grid, 'grid', 'a list') : [grid];
    grids.forEach((g, i) => out.push(...expandGrid(g, grids.length > 1 ? `grid ${i}` : 'grid')));
  }
  return out;
}

/** The fields of a job spec, each read once; a spec that is not {method: string, input, …} is a UsageError. */
function readJobSpec(j: unknown, where: string): { method: string; input: unknown; options: unknown } {
  if (!isObject(j)) throw new UsageError(`Expected {method, input, options} for ${where} but received ${describe(j)}`);
  const method = readField(j, 'method', `${where}.method`);
  const input = readField(j, 'input', `${where}.input`);
  if (typeof method !== 'string' || input === undefined) throw new UsageError(`Expected {method, input, options} for ${where} but received ${describe(j)}`);
  return { method, input, options: readField(j, 'options', `${where}.options`) };
}

function expectJobSpec(j: unknown, where: string): JobSpec {
  readJobSpec(j, where);
  return j as JobSpec;
}

/** A grid field that must be a list; absent → undefined. */
function gridList(g: Map<string, unknown>, key: string, where: string): unknown[] | undefined {
  const v = g.get(key);
  if (v === undefined) return undefined;
  if (!isList(v)) throw new UsageError(`Expected a list for ${key} of ${where} but received ${describe(v)}`);
  return readList(v, `${key} of ${where}`, 'a list');
}

function expandGrid(grid: unknown, where: string, read?: Map<string, unknown>): JobSpec[] {
  if (!isObject(grid)) throw new UsageError(`Expected a grid object for ${where} but received ${describe(grid)}`);
  const g = read ?? new Map(readRecord(grid, where, 'a grid object'));
  const methods = gridList(g, 'methods', where) ?? (g.get('method') === undefined ? [] : [g.get('method')]);
  const inputs = gridList(g, 'inputs', where) ?? (g.get('input') === undefined ? [] : [g.get('input')]);
  if (methods.length === 0) throw new UsageError(`Expected 'method' or 'methods' in ${where}`);
  if (inputs.length === 0) throw new UsageError(`Expected 'input' or 'inputs' in ${where}`);
  const badMethod = methods.find((m) => typeof m !== 'string');
  if (badMethod !== undefined) throw new UsageError(`Expected a method name (a string) in ${where} but received ${describe(badMethod)}`);
  const names = methods as string[];
  const optionsValue = g.get('options') ?? {};
  if (!isObject(optionsValue)) throw new UsageError(`Expected an object for options of ${where} but received ${describe(optionsValue)}`);
  const options = Object.fromEntries(readRecord(optionsValue, `${where}.options`, 'an object'));
  const out: JobSpec[] = [];
  for (const method of names) {
    const spec = getMethod(method);
    if (!spec) throw unknownMethod(method, where);
    const keys = Object.keys(options).filter((k) => names.length === 1 || k in spec.optionSpecs);
    for (const k of Object.keys(options)) {
      if (!names.some((m) => k in (getMethod(m)?.optionSpecs ?? {}))) {
        throw new UsageError(`Unknown option '${k}' in ${where}; ${names.join(', ')} take: ${names.flatMap((m) => Object.keys(getMethod(m)?.optionSpecs ?? {})).join(', ')}`);
      }
    }
    const axes = keys.map((k) => {
      const v = options[k];
      return isList(v) ? readList(v, `${where}.options.${k}`, 'a list') : [v];
    });
    for (const input of inputs as JobSpec['input'][]) {
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
  if (isObject(input)) {
    const entries = readRecord(input, `the input of ${where}`, 'a path or {name: path}');
    if (entries.every(([, v]) => typeof v === 'string')) return Object.fromEntries(entries) as Record<string, string>;
  }
  throw new UsageError(`Expected a path or {name: path} for the input of ${where} but received ${describe(input)}`);
}

/**
 * Validates job specs and gives them ids. Input files are checked to exist relative to `baseDir`.
 * Duplicates (same id) are run once. Messages name the job ("job 3 (retract): …").
 */
export function prepareJobs(specs: readonly JobSpec[], baseDir: string): Job[] {
  const list = readList(specs, 'specs', 'a list of job specs {method, input, options}');
  expectPath(baseDir, 'baseDir');
  const seen = new Set<string>();
  const jobs: Job[] = [];
  list.forEach((given, i) => {
    const spec = readJobSpec(given, `job ${i}`);
    const where = `job ${i} (${spec.method})`;
    const method = getMethod(spec.method);
    if (!method) throw unknownMethod(spec.method, `job ${i}`);
    const input = inputRefs(method, spec.input, where);
    checkInputRefs(method, input, baseDir, where);
    let options: Record<string, unknown>;
    try {
      const given = isObject(spec.options) ? Object.fromEntries(readRecord(spec.options, `options of ${where}`, 'an options object')) : spec.options;
      options = parseOptions(Object.fromEntries(flagSpecs(method.optionSpecs)), given ?? {}, where);
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
