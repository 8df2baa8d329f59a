/**
 * Command-line flags generated from OptionSpecs: `--ns-iterations 10` ↔ `{nsIterations: 10}`.
 * Values are converted from text by the spec's kind, then validated by the very parseOptions the API
 * uses (one source of truth for names, types, ranges and defaults); its messages are rewritten to
 * name the flag instead of the option. Help text is generated from the same specs.
 */
import { didYouMean } from '../suggest.js';
import { describeSpec, describeValue, parseOptions, type OptionSpec, type OptionSpecs } from '../validate.js';
import { expectCommandFlags, expectOptionSpecs, expectString, expectStringArray, readRecord } from './check.js';

/** Bad usage or bad input: the CLI exits with code 2 and prints the message. */
export class UsageError extends Error {
  override name = 'UsageError';
}

/** `nsIterations` → `ns-iterations`. */
export function kebab(camelName: string): string {
  return expectString(camelName, 'camelName').replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
}

/** `ns-iterations` → `nsIterations`. */
export function camel(kebabName: string): string {
  return expectString(kebabName, 'kebabName').replace(/-([a-z0-9])/g, (_, c: string) => c.toUpperCase());
}

/** Specs that can be given as flags: function and signal options exist only in the API. */
export function flagSpecs(specs: OptionSpecs): [string, OptionSpec][] {
  return Object.entries(specs).filter(([, s]) => s.kind !== 'function' && s.kind !== 'signal');
}

/** A flag the subcommand itself defines (not a method option). */
export interface CommandFlag {
  kind: 'string' | 'integer' | 'boolean';
  description: string;
  /** Shown in help, e.g. 'DIR'. */
  placeholder?: string;
  min?: number;
  /** Accepted but not listed in help (e.g. --seed on a deterministic method, to explain why it is refused). */
  hidden?: boolean;
  /** A string flag that may be given several times: its values are collected, in order, in ParsedArgs.lists. */
  repeatable?: boolean;
}

export interface ParsedArgs {
  positionals: string[];
  /** Method options as typed values, camelCase keys, not yet validated against ranges. */
  options: Record<string, unknown>;
  /** Command flags by camelCase name. */
  flags: Record<string, string | number | boolean>;
  /** The values of repeatable command flags, in the order given, by camelCase name. */
  lists: Record<string, string[]>;
}

/** The long names a command accepts (method options, then visible command flags), for messages. */
function knownFlagNames(options: Record<string, OptionSpec>, commandFlags: Record<string, CommandFlag>): string[] {
  return [...Object.keys(options), ...Object.keys(commandFlags).filter((k) => !commandFlags[k]!.hidden)].map((k) => `--${kebab(k)}`);
}

/** "Unknown option --max-iter (did you mean --max-iterations?)", or a pointer to --help. */
function unknownOption(given: string, known: string[]): UsageError {
  const hint = didYouMean(given, known);
  return new UsageError(`Unknown option ${given}${hint || '; see --help for the options'}`);
}

/**
 * Splits argv into positionals, method options (by spec) and command flags. Accepts `--name value`,
 * `--name=value`, bare `--flag` / `--no-flag` for booleans, `-h` for --help, and `--` to end flags.
 */
export function parseArgs(argv: readonly string[], specs: OptionSpecs, commandFlags: Record<string, CommandFlag>): ParsedArgs {
  argv = expectStringArray(argv, 'argv');
  // Null-prototype copies: `--constructor` or `--to-string` must not find Object.prototype's members.
  const options: Record<string, OptionSpec> = Object.assign(Object.create(null), Object.fromEntries(flagSpecs(expectOptionSpecs(specs, 'specs'))));
  commandFlags = Object.assign(Object.create(null), expectCommandFlags(commandFlags, 'commandFlags'));
  const out: ParsedArgs = { positionals: [], options: {}, flags: {}, lists: {} };
  for (let i = 0; i < argv.length; i++) {
    let arg = argv[i]!;
    if (arg === '--') {
      out.positionals.push(...argv.slice(i + 1));
      break;
    }
    if (arg === '-h' && 'help' in commandFlags) arg = '--help';
    if (!arg.startsWith('--')) {
      if (arg.startsWith('-') && arg.length > 1 && !/^-\d/.test(arg)) {
        throw new UsageError(`Unknown option ${arg} (options are long, --name value; -h is --help)`);
      }
      out.positionals.push(arg);
      continue;
    }
    const eq = arg.indexOf('=');
    let flag = eq >= 0 ? arg.slice(2, eq) : arg.slice(2);
    let value: string | undefined = eq >= 0 ? arg.slice(eq + 1) : undefined;
    let negated = false;
    const name0 = camel(flag);
    if (!(name0 in options) && !(name0 in commandFlags) && flag.startsWith('no-')) {
      negated = true;
      flag = flag.slice(3);
    }
    const name = camel(flag);
    const spec = options[name];
    const command = commandFlags[name];
    if (!spec && !command) {
      const known = knownFlagNames(options, commandFlags);
      // --no-centre: suggest --no-center, from the on/off options.
      if (negated) throw unknownOption(`--no-${flag}`, known.map((k) => `--no-${k.slice(2)}`));
      throw unknownOption(`--${flag}`, known);
    }
    const isBoolean = spec ? spec.kind === 'boolean' : command!.kind === 'boolean';
    if (negated && (!isBoolean || value !== undefined)) throw new UsageError(`Unknown option --no-${flag} (--${flag} is not an on/off option)`);
    if (isBoolean) {
      if (value === undefined) value = negated ? 'false' : 'true';
    } else if (value === undefined) {
      value = argv[++i];
      if (value === undefined) throw new UsageError(`Expected a value after --${flag}`);
    }
    if (spec) out.options[name] = fromText(spec, value, `--${flag}`);
    else if (command!.repeatable) (out.lists[name] ??= []).push(value);
    else out.flags[name] = commandFromText(command!, value, `--${flag}`);
  }
  return out;
}

function fromText(spec: OptionSpec, text: string, flag: string): unknown {
  switch (spec.kind) {
    case 'number': {
      const v = text.trim() === '' ? NaN : Number(text);
      if (Number.isNaN(v)) throw new UsageError(`Expected ${describeSpec(spec)} for ${flag} but received ${describeValue(text)}`);
      return v;
    }
    case 'boolean':
      if (text === 'true') return true;
      if (text === 'false') return false;
      throw new UsageError(`Expected true or false for ${flag} but received ${describeValue(text)}`);
    case 'custom':
      // Structured values (e.g. an init given as factors) come as JSON; anything else as the string.
      try {
        return JSON.parse(text) as unknown;
      } catch {
        return text;
      }
    default:
      return text;
  }
}

function commandFromText(flag: CommandFlag, text: string, name: string): string | number | boolean {
  if (flag.kind === 'boolean') {
    if (text === 'true') return true;
    if (text === 'false') return false;
    throw new UsageError(`Expected true or false for ${name} but received ${describeValue(text)}`);
  }
  if (flag.kind === 'integer') {
    const v = Number(text);
    if (text.trim() === '' || !Number.isInteger(v) || v < (flag.min ?? -Infinity)) {
      const what = flag.min === undefined ? 'an integer' : `an integer ≥ ${flag.min}`;
      throw new UsageError(`Expected ${what} for ${name} but received ${describeValue(text)}`);
    }
    return v;
  }
  return text;
}

/**
 * Validates method options with the API's parseOptions; its messages ("… for options.nsIterations of
 * retract …") are rewritten to name the flag ("… for --ns-iterations …").
 */
export function validateFlags<T>(specs: OptionSpecs, options: Record<string, unknown>, method: string): T {
  specs = expectOptionSpecs(specs, 'specs');
  options = Object.fromEntries(readRecord(options, 'options', 'an object of option values by name'));
  expectString(method, 'method');
  const context = `nsa-flow ${method}`;
  try {
    return parseOptions<T>(specs, options, context);
  } catch (err) {
    if (err instanceof TypeError || err instanceof RangeError) {
      let message = err.message;
      for (const key of Object.keys(specs)) message = message.split(`options.${key} of ${context}`).join(`--${kebab(key)}`);
      const unknown = /^Unknown option '([^']+)'/.exec(message);
      if (unknown) throw unknownOption(`--${kebab(unknown[1]!)}`, Object.keys(specs).map((k) => `--${kebab(k)}`));
      throw new UsageError(message);
    }
    throw err;
  }
}

/** Help lines for method options and command flags, generated from their specs. */
export function describeFlags(specs: OptionSpecs, commandFlags: Record<string, CommandFlag>): string {
  specs = expectOptionSpecs(specs, 'specs');
  commandFlags = expectCommandFlags(commandFlags, 'commandFlags');
  const rows: [string, string][] = [];
  for (const [key, spec] of flagSpecs(specs)) {
    const value = spec.kind === 'boolean' ? '' : spec.kind === 'enum' ? ' <name>' : ' <value>';
    const def = 'default' in spec && spec.default !== undefined ? ` (default ${JSON.stringify(spec.default)})` : '';
    // Custom specs describe their values in the description itself: say it once.
    const accepted = spec.kind === 'boolean' || spec.description.includes(describeSpec(spec)) ? '' : `; ${describeSpec(spec)}`;
    rows.push([`--${kebab(key)}${value}`, `${spec.description}${accepted}${def}`]);
  }
  for (const [key, flag] of Object.entries(commandFlags)) {
    if (flag.hidden) continue;
    const value = flag.kind === 'boolean' ? '' : ` <${flag.placeholder ?? (flag.kind === 'integer' ? 'n' : 'value')}>`;
    rows.push([`--${kebab(key)}${value}`, flag.description]);
  }
  const width = Math.min(34, Math.max(0, ...rows.map(([l]) => l.length)));
  return rows.map(([l, r]) => `  ${l.padEnd(width)}  ${r}`).join('\n');
}
