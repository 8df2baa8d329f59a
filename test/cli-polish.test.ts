// The command line's manners: -h everywhere, -v, one line per flag, suggestions for typos, --out
// refused before the solve, one-line errors, CSV input flags, and a missing optional progress bar.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { describe, expect, it, vi } from 'vitest';

import { describeFlags } from '../lib/cli/flags.js';
import { methodNames, registerMethod, getMethod } from '../lib/cli/registry.js';
import { readCsv, readNpy } from '../lib/io/index.js';
import { finished, runMain, startCli, tempDir } from './helpers/cli-run.js';
import { registerStepsMethod } from './helpers/cli-steps-method.js';

// This file runs without cli-progress, as an install that left the optional package out.
vi.mock('cli-progress', () => {
  throw Object.assign(new Error("Cannot find package 'cli-progress'"), { code: 'ERR_MODULE_NOT_FOUND' });
});

registerStepsMethod();
if (!getMethod('test-crash')) {
  registerMethod({
    name: 'test-crash',
    summary: 'test-only: fails with an unexpected (non-usage, non-numerical) error',
    optionSpecs: {},
    inputs: { X: { kind: 'matrix', description: 'any matrix' } },
    run() {
      return Promise.reject(new Error('the disk controller is on fire\nsecond line of detail'));
    },
  });
}

const dir = tempDir('cli-polish');
const write = (name: string, text: string): string => {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
};
// id, then two data columns: Y of test-steps --steps 1 is the data halved.
const small = write('small.csv', 'id,a,b\n1,2,4\n2,6,8\n');
const numeric = write('numeric.csv', '2,4\n6,8\n');
const aFile = write('a-file', 'not a folder\n');
const version = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')).version as string;
const commands = () => [...methodNames(), 'info', 'batch', 'worker', 'plot'];

describe('help and version', () => {
  it('-v and --version print the package version; the top help lists them and -h', async () => {
    for (const flag of ['-v', '--version']) {
      const r = await runMain([flag]);
      expect([r.code, r.stdout]).toEqual([0, `${version}\n`]);
    }
    const top = await runMain(['-h']);
    expect(top.code).toBe(0);
    expect(top.stdout).toContain('nsa-flow -v | --version');
    expect(top.stdout).toContain('nsa-flow -h | --help');
    expect(top.stdout).toContain('NSA_FLOW_DEBUG=1');
  });

  it('-h works on every subcommand and prints its own help', async () => {
    expect(commands()).toEqual(expect.arrayContaining(['retract', 'pca', 'flow', 'path', 'snmf', 'nmf', 'sntf', 'ntf', 'info', 'batch', 'worker', 'plot']));
    for (const c of commands()) {
      const r = await runMain([c, '-h']);
      expect(r.code, c).toBe(0);
      expect(r.stdout.startsWith(`nsa-flow ${c} — `), c).toBe(true);
    }
  });

  it('every flag table lists each flag once, says each description once, and offers no API-only value', async () => {
    for (const c of commands()) {
      const { stdout } = await runMain([c, '--help']);
      const rows = stdout.split('\n').filter((l) => /^ {2}--[a-z]/.test(l));
      expect(rows.length, c).toBeGreaterThan(0);
      const flags = rows.map((l) => l.trim().split(/\s/)[0]!);
      expect(flags.filter((f, i) => flags.indexOf(f) !== i), c).toEqual([]);
      for (const row of rows) {
        const text = row.trim().replace(/^\S+( <[^>]+>)?\s+/, '').replace(/ \(default [^)]*\)$/, '');
        const parts = text.split('; ');
        expect(parts.filter((p, i) => parts.indexOf(p) !== i), `${c}: ${row}`).toEqual([]);
        expect(row, `${c}: ${row}`).not.toMatch(/=>/); // a function can only be passed through the API
      }
    }
  });

  it('flow, snmf and path have one --seed; path one --threads; retract (deterministic) no --seed', async () => {
    const count = (help: string, flag: string) => help.split('\n').filter((l) => l.trimStart().startsWith(`${flag} `)).length;
    for (const c of ['flow', 'snmf', 'path']) expect(count((await runMain([c, '-h'])).stdout, '--seed'), c).toBe(1);
    expect(count((await runMain(['path', '-h'])).stdout, '--threads')).toBe(1);
    expect(count((await runMain(['retract', '-h'])).stdout, '--seed')).toBe(0);
  });

  it("path's --select takes 'auto' or 'knee' (a scoring function is API-only)", async () => {
    const line = (await runMain(['path', '-h'])).stdout.split('\n').find((l) => l.trimStart().startsWith('--select '));
    expect(line).toContain("one of 'auto', 'knee'");
    const bad = await runMain(['path', numeric, '--ws', '[0.5]', '--select', 'best']);
    expect([bad.code, bad.stderr]).toEqual([2, `nsa-flow path: Expected one of 'auto', 'knee' for --select but received the string "best"\n`]);
    const ok = await runMain(['path', numeric, '--ws', '[0.3,0.7]', '--select', 'knee', '--max-iterations', '5', '--json']);
    expect(ok.code, ok.stderr).toBe(0);
    expect(JSON.parse(ok.stdout.trim().split('\n').at(-1)!).settings.select).toBe('knee');
  });

  it('describeFlags does not repeat a description that already states the accepted values', () => {
    const text = describeFlags({ ws: { kind: 'custom', description: 'an array of numbers', check: (v) => v } }, {});
    expect(text).toBe('  --ws <value>  an array of numbers');
  });
});

describe('unknown names suggest the nearest valid one', () => {
  const cases: [string[], string][] = [
    [['flow', numeric, '--max-iter', '3'], 'nsa-flow flow: Unknown option --max-iter (did you mean --max-iterations?)\n'],
    [['nmf', numeric, '--rnk', '2'], 'nsa-flow nmf: Unknown option --rnk (did you mean --rank?)\n'],
    [['pca', numeric, '--no-centre'], 'nsa-flow pca: Unknown option --no-centre (did you mean --no-center?)\n'],
    [['retract', numeric, '--zzz'], 'nsa-flow retract: Unknown option --zzz; see --help for the options\n'],
    [['retract', numeric, '-x'], 'nsa-flow retract: Unknown option -x (options are long, --name value; -h is --help)\n'],
    [['--verison'], 'nsa-flow --verison: Unknown option --verison (did you mean --version?)\n'],
    [['retrakt', numeric], "nsa-flow retrakt: Unknown command 'retrakt' (did you mean retract?); commands: COMMANDS\n"],
  ];
  for (const [args, expected] of cases) {
    it(args.filter((a) => a !== numeric).join(' '), async () => {
      const r = await runMain(args);
      expect(r.code).toBe(2);
      expect(r.stderr).toBe(expected.replace('COMMANDS', commands().join(', ')));
    });
  }
});

describe('--out that cannot be written fails before the solve: exit 2, one line', () => {
  // test-steps writes NDJSON progress on stderr from its first step: none may appear.
  it('under a regular file', async () => {
    const r = await runMain(['test-steps', numeric, '--steps', '3', '--out', join(aFile, 'out')]);
    expect([r.code, r.stderr]).toEqual([2, `nsa-flow test-steps: Cannot write --out ${join(aFile, 'out')}: ${aFile} is a file, not a folder\n`]);
  });

  it.skipIf(!existsSync('/proc/self'))('in /proc, which takes no new folders', async () => {
    const r = await runMain(['test-steps', numeric, '--steps', '3', '--out', '/proc/nsa-flow-out']);
    expect([r.code, r.stderr]).toEqual([2, 'nsa-flow test-steps: Cannot write --out /proc/nsa-flow-out: /proc does not accept new folders\n']);
  });

  it('an existing result without --force', async () => {
    const out = join(dir, 'existing');
    expect((await runMain(['test-steps', numeric, '--steps', '1', '--out', out])).code).toBe(0);
    const again = await runMain(['test-steps', numeric, '--steps', '3', '--out', out]);
    expect([again.code, again.stderr]).toEqual([2, `nsa-flow test-steps: Cannot write --out ${out}: it already exists (add --force to replace it)\n`]);
  });

  it('as a process: exit code 2 and no stack trace', async () => {
    const r = await finished(startCli(['pca', numeric, '--k', '1', '--out', join(aFile, 'out')]));
    expect([r.code, r.stderr]).toEqual([2, `nsa-flow pca: Cannot write --out ${join(aFile, 'out')}: ${aFile} is a file, not a folder\n`]);
  });
});

describe('unexpected errors print one line (the stack with NSA_FLOW_DEBUG=1)', () => {
  it('one line by default, exit 1', async () => {
    const r = await runMain(['test-crash', numeric]);
    expect([r.code, r.stderr]).toEqual([1, 'nsa-flow test-crash: internal error: the disk controller is on fire (NSA_FLOW_DEBUG=1 shows the stack trace)\n']);
  });

  it('the stack trace with NSA_FLOW_DEBUG=1', async () => {
    vi.stubEnv('NSA_FLOW_DEBUG', '1');
    try {
      const r = await runMain(['test-crash', numeric]);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/^nsa-flow test-crash: internal error: Error: the disk controller is on fire\nsecond line of detail\n {4}at /);
    } finally {
      vi.unstubAllEnvs();
    }
  });
});

describe('CSV inputs on the command line', () => {
  /** Runs test-steps --steps 1 (Y = X / 2) and returns Y. */
  async function halved(args: string[]): Promise<{ shape: number[]; values: number[] }> {
    const out = join(tempDir('cli-csv'), 'r');
    const r = await runMain(['test-steps', ...args, '--steps', '1', '--out', out]);
    expect(r.code, r.stderr).toBe(0);
    const Y = readNpy(join(out, 'Y.npy'));
    return { shape: Y.shape, values: Array.from(Y.data) };
  }

  it('--drop, --columns, --transpose, --no-header pick what becomes the matrix', async () => {
    expect(await halved([small, '--drop', 'id'])).toEqual({ shape: [2, 2], values: [1, 2, 3, 4] });
    expect(await halved([small, '--columns', 'b'])).toEqual({ shape: [2, 1], values: [2, 4] });
    expect(await halved([small, '--columns', '2,1'])).toEqual({ shape: [2, 2], values: [2, 1, 4, 3] }); // 0-based positions
    expect(await halved([small, '--drop', 'id', '--transpose'])).toEqual({ shape: [2, 2], values: [1, 3, 2, 4] });
    expect(await halved([numeric, '--no-header'])).toEqual({ shape: [2, 2], values: [1, 2, 3, 4] });
  });

  it('a text column is named with the flags that fix it; flags without a CSV input are refused', async () => {
    const text = await runMain(['test-steps', small, '--no-header']);
    expect(text.code).toBe(2);
    expect(text.stderr).toBe(
      `nsa-flow test-steps: Expected a number for column 0 (0-based) in data row 1 but received "id" (a text column: leave it out with --drop, pick the data columns with --columns, or take it as --row-names) in ${small} at line 1\n`,
    );
    const npy = join(dir, 'x.npy');
    (await import('../lib/io/index.js')).writeNpy(npy, { rows: 1, cols: 1, data: Float64Array.from([1]) });
    const misplaced = await runMain(['test-steps', npy, '--drop', 'id', '--no-header']);
    expect([misplaced.code, misplaced.stderr]).toEqual([2, 'nsa-flow test-steps: --no-header, --drop apply to .csv inputs, but nsa-flow test-steps was given none\n']);
    const csvWithoutOut = await runMain(['test-steps', small, '--drop', 'id', '--csv']);
    expect([csvWithoutOut.code, csvWithoutOut.stderr]).toEqual([2, 'nsa-flow test-steps: --csv writes CSV files into the result directory: add --out DIR\n']);
  });

  it('--csv writes each matrix as CSV next to its .npy, with the same doubles', async () => {
    const out = join(tempDir('cli-csv'), 'r');
    const r = await runMain(['test-steps', small, '--drop', 'id', '--steps', '3', '--out', out, '--csv']);
    expect(r.code, r.stderr).toBe(0);
    const Y = readNpy(join(out, 'Y.npy'));
    const back = readCsv(join(out, 'Y.csv'));
    // test-steps names nothing: columns V1, V2 and no row names.
    expect([back.colNames, back.rowNames]).toEqual([['V1', 'V2'], undefined]);
    expect(Array.from(back.matrix.data)).toEqual(Array.from(Y.data)); // x/4 is exact, and the text is the shortest round trip
    expect(JSON.parse(readFileSync(join(out, 'result.json'), 'utf8')).arrays.Y.csv).toBe('Y.csv');
  });
});

describe('without the optional cli-progress package', () => {
  it('a terminal run shows no bar and says so once per process', async () => {
    const first = await runMain(['test-steps', numeric, '--steps', '2'], { tty: true });
    expect([first.code, first.stderr]).toEqual([0, 'nsa-flow: no progress bar: the optional package cli-progress is not installed (npm install cli-progress)\n']);
    const second = await runMain(['test-steps', numeric, '--steps', '2'], { tty: true });
    expect([second.code, second.stderr]).toEqual([0, '']);
    // Piped output does not need the package: NDJSON as always.
    const piped = await runMain(['test-steps', numeric, '--steps', '2', '--step-ms', '150']);
    expect(piped.stderr.trim().split('\n').map((l) => JSON.parse(l).iteration)).toEqual([1, 2]);
  });
});
