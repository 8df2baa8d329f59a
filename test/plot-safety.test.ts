// `nsa-flow plot` and plotResult treat result.json as untrusted: crafted array names, file fields,
// types and shapes are refused with a FormatError naming result.json and the field, nothing is read
// outside the result directory, and nothing is written anywhere but --out (the whole sandbox is
// listed before and after every refused plot).
import { execFileSync } from 'node:child_process';
import { lstatSync, mkdirSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';

import { afterEach, describe, expect, it } from 'vitest';

import { FormatError, writeNpy } from '../lib/io/index.js';
import { setMemoryLimit } from '../lib/memory.js';
import { plotResult } from '../lib/plot/index.js';
import { runMain, tempDir } from './helpers/cli-run.js';

/** Every path under root (relative), with the size of each file: what a refused plot must not change. */
function snapshot(root: string): string[] {
  const out: string[] = [];
  const walk = (dir: string): void => {
    for (const name of readdirSync(dir).sort()) {
      const p = join(dir, name);
      const st = lstatSync(p);
      out.push(`${relative(root, p)}${st.isDirectory() ? '/' : st.isSymbolicLink() ? ' ->' : ` ${st.size}`}`);
      if (st.isDirectory()) walk(p);
    }
  };
  walk(root);
  return out;
}

/**
 * A sandbox with a valid result (Y: 3 × 2 in result/), a secret array outside it (outside/secret.npy)
 * and an empty plots/ folder; `json` edits the result.json before it is written.
 */
function sandbox(edit: (json: Record<string, any>) => void = () => undefined): { root: string; result: string; out: string; secret: string } {
  const root = tempDir('plot-safety');
  const result = join(root, 'result');
  const out = join(root, 'plots');
  mkdirSync(result);
  mkdirSync(out);
  mkdirSync(join(root, 'outside'));
  const secret = join(root, 'outside', 'secret.npy');
  writeNpy(secret, { rows: 3, cols: 2, data: Float64Array.from([9, 9, 9, 9, 9, 9]) });
  writeNpy(join(result, 'Y.npy'), { rows: 3, cols: 2, data: Float64Array.from([1, 2, 3, 4, 5, 6]) });
  const json: Record<string, any> = { method: 'retract', traces: {}, arrays: { Y: { file: 'Y.npy', shape: [3, 2] } }, values: {} };
  edit(json);
  writeFileSync(join(result, 'result.json'), JSON.stringify(json));
  return { root, result, out, secret };
}

/** Plots a crafted sandbox through the API and the CLI: both refuse with `message`; nothing changes on disk. */
async function expectRefused(s: ReturnType<typeof sandbox>, message: RegExp | string, Class: new (...a: any[]) => Error = FormatError): Promise<void> {
  const before = snapshot(s.root);
  const err = await plotResult(s.result, s.out).catch((e: unknown) => e);
  expect(err).toBeInstanceOf(Class);
  if (typeof message === 'string') expect((err as Error).message).toBe(message);
  else expect((err as Error).message).toMatch(message);
  const cli = await runMain(['plot', s.result, '--out', s.out]);
  expect(cli.code).toBe(2);
  expect(cli.stderr).toContain((err as Error).message);
  expect(snapshot(s.root)).toEqual(before);
}

const escapeRe = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
const resultJson = (s: { result: string }): string => join(s.result, 'result.json');

describe('crafted result.json: array names and files', () => {
  it('an array name with ../ (it would become ../x.svg under --out) is refused, naming the field', async () => {
    const s = sandbox((j) => (j.arrays['../../escaped'] = { file: 'Y.npy', shape: [3, 2] }));
    await expectRefused(
      s,
      `Expected an array name of letters, digits, '_', '.' and '-' (not starting with '.' or '-') for field arrays["../../escaped"] but received the string "../../escaped" in ${resultJson(s)}`,
    );
    for (const name of ['..', '.hidden', 'a/b', 'a\\b', '', 'x'.repeat(201)]) {
      const t = sandbox((j) => (j.arrays[name] = { file: 'Y.npy', shape: [3, 2] }));
      await expectRefused(t, new RegExp(escapeRe(`for field arrays[${JSON.stringify(name)}] but received`)));
    }
  });

  it('an absolute file path or one with ../ is refused, and the outside array is never read', async () => {
    const abs = sandbox();
    const j = JSON.parse(readFileSync(resultJson(abs), 'utf8'));
    j.arrays.Y.file = abs.secret;
    writeFileSync(resultJson(abs), JSON.stringify(j));
    await expectRefused(abs, /^Expected a \.npy or \.mtx file name inside the result directory \(letters, digits, '_', '\.', '-'; no path\) for field arrays\["Y"\]\.file but received the string "\/[^"]*"/);
    const up = sandbox((x) => (x.arrays.Y.file = '../outside/secret.npy'));
    await expectRefused(up, /for field arrays\["Y"\]\.file but received the string "\.\.\/outside\/secret\.npy"/);
    const notNpy = sandbox((x) => (x.arrays.Y.file = 'result.json'));
    await expectRefused(notNpy, /for field arrays\["Y"\]\.file but received the string "result\.json"/);
  });

  it('a symlink in the result folder that leads outside it is refused', async () => {
    const s = sandbox((x) => (x.arrays.Y.file = 'link.npy'));
    symlinkSync(s.secret, join(s.result, 'link.npy'));
    await expectRefused(s, `Expected a file inside the result directory (it resolves outside) for field arrays["Y"].file but received the string "link.npy" in ${resultJson(s)}`);
    // A symlinked directory on the way counts too: realpath is what is compared.
    const d = sandbox((x) => (x.arrays.Y.file = 'Y.npy'));
    const inner = join(d.root, 'inner');
    mkdirSync(inner);
    writeFileSync(join(inner, 'result.json'), readFileSync(resultJson(d)));
    symlinkSync(d.secret, join(inner, 'Y.npy'));
    const before = snapshot(d.root);
    await expect(plotResult(inner, d.out)).rejects.toThrow(/resolves outside/);
    expect(snapshot(d.root)).toEqual(before);
    // A result.json that is a link to another folder's would make that folder the one read: refused.
    const l = sandbox();
    const other = join(l.root, 'other');
    mkdirSync(other);
    writeFileSync(join(other, 'result.json'), readFileSync(resultJson(l)));
    writeNpy(join(other, 'Y.npy'), { rows: 3, cols: 2, data: new Float64Array(6) });
    const linked = join(l.root, 'linked');
    mkdirSync(linked);
    symlinkSync(join(other, 'result.json'), join(linked, 'result.json'));
    const before2 = snapshot(l.root);
    const err = await plotResult(linked, l.out).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(FormatError);
    expect((err as Error).message).toMatch(/^Expected result\.json inside the result folder .*linked but it resolves to .*other\/result\.json in .*linked\/result\.json$/);
    expect(snapshot(l.root)).toEqual(before2);
  });

  it('a file that is not a regular file (a FIFO would block a reader, a directory) is refused', async () => {
    const s = sandbox((x) => (x.arrays.Y.file = 'pipe.npy'));
    execFileSync('mkfifo', [join(s.result, 'pipe.npy')]);
    await expectRefused(s, `Expected a regular file for field arrays["Y"].file but received the string "pipe.npy" in ${resultJson(s)}`);
    const d = sandbox((x) => (x.arrays.Y.file = 'dir.npy'));
    mkdirSync(join(d.result, 'dir.npy'));
    await expectRefused(d, /Expected a regular file for field arrays\["Y"\]\.file but received the string "dir\.npy"/);
  });
});

describe('crafted result.json: types and shapes', () => {
  it('wrong types are refused naming the field', async () => {
    const cases: [(j: Record<string, any>) => void, string][] = [
      [(j) => (j.method = 42), 'Expected a string of at most 200 characters for field method but received 42'],
      [(j) => delete j.method, 'Expected a string of at most 200 characters for field method but received undefined'],
      [(j) => (j.arrays = [1, 2]), 'Expected an object of {file, shape} references for field arrays but received an array of length 2'],
      [(j) => (j.arrays.Y = 'Y.npy'), `Expected an object {file, shape} for field arrays["Y"] but received the string "Y.npy"`],
      [(j) => (j.arrays.Y.file = 7), `Expected a .npy or .mtx file name inside the result directory (letters, digits, '_', '.', '-'; no path) for field arrays["Y"].file but received 7`],
      [(j) => (j.arrays.Y.shape = '3x2'), `Expected an array of 1 to 32 dimensions for field arrays["Y"].shape but received the string "3x2"`],
      [(j) => (j.arrays.Y.shape = [3, -2]), 'Expected a non-negative integer for field arrays["Y"].shape[1] but received -2'],
      [(j) => (j.arrays.Y.shape = [3, 2.5]), 'Expected a non-negative integer for field arrays["Y"].shape[1] but received 2.5'],
      [(j) => (j.traces = { loss: [1, 'x'] }), `Expected a number or null for field traces["loss"][1] but received the string "x"`],
      [(j) => (j.traces = 5), 'Expected an object of trace columns for field traces but received 5'],
      [(j) => (j.names = { Y: { rows: ['a'] } }), 'Expected an array of 3 strings for field names["Y"].rows but received an array of length 1'],
      [(j) => (j.names = { Y: { cols: [1, 2] } }), 'Expected a string for field names["Y"].cols[0] but received 1'],
      [(j) => (j.names = { Z: {} }), `Expected the name of a 2-D array of arrays for field names["Z"] but received the string "Z"`],
      [(j) => (j.values = { selection: { w: 'half' } }), `Expected a finite number for field values.selection.w but received the string "half"`],
    ];
    for (const [edit, problem] of cases) {
      const s = sandbox(edit);
      await expectRefused(s, `${problem} in ${resultJson(s)}`);
    }
    const top = sandbox();
    writeFileSync(resultJson(top), '[1, 2, 3]');
    await expectRefused(top, `Expected an object for field (top level) but received an array of length 3 in ${resultJson(top)}`);
    const garbage = sandbox();
    writeFileSync(resultJson(garbage), '{"method": ');
    await expectRefused(garbage, /^Expected JSON but .* in .*result\.json$/);
  });

  it('a huge declared shape is refused before anything is allocated: it must match the file', async () => {
    const s = sandbox((j) => (j.arrays.Y.shape = [1e9, 1e9]));
    await expectRefused(s, `Expected Y.npy to hold the declared shape [1000000000, 1000000000] of field arrays["Y"].shape but it holds [3, 2] in ${resultJson(s)}`);
    // A crafted .npy whose header claims 1e6 × 1e6 float64 (8 TB) in a 128-byte file.
    const h = sandbox((j) => (j.arrays.Y.shape = [1e6, 1e6]));
    const header = "{'descr': '<f8', 'fortran_order': False, 'shape': (1000000, 1000000), }";
    const padded = header + ' '.repeat(128 - 10 - header.length - 1) + '\n';
    const bytes = Buffer.concat([Buffer.from([0x93]), Buffer.from('NUMPY'), Buffer.from([1, 0, padded.length, 0]), Buffer.from(padded)]);
    writeFileSync(join(h.result, 'Y.npy'), bytes);
    await expectRefused(h, /in .*Y\.npy/); // the npy reader's own size check or ours: a FormatError naming the file
  });

  it('an array that fits its file but not the memory limit is a RangeError naming it', async () => {
    const s = sandbox((j) => (j.arrays.Y.shape = [100, 100]));
    writeNpy(join(s.result, 'Y.npy'), { rows: 100, cols: 100, data: new Float64Array(10_000) });
    // Reading result.json (about 100 bytes) is allowed 8× its size; Y needs 100 × 100 × 8 = 80000 bytes.
    setMemoryLimit(10_000);
    await expectRefused(s, /^Not enough memory for array Y of .*result\.json \(100 × 100\): it needs 80000 bytes \(78\.1 KiB\)/, RangeError);
  });
  afterEach(() => void setMemoryLimit('auto'));
});

describe('outputs stay under --out', () => {
  it('a link already at an output path is replaced, not followed; the valid result plots', async () => {
    const s = sandbox();
    const victim = join(s.root, 'outside', 'victim.txt');
    writeFileSync(victim, 'keep me');
    symlinkSync(victim, join(s.out, 'heatmap-Y.svg'));
    const written = await plotResult(s.result, s.out);
    expect(written).toEqual([join(s.out, 'heatmap-Y.svg')]);
    expect(readFileSync(victim, 'utf8')).toBe('keep me');
    expect(lstatSync(join(s.out, 'heatmap-Y.svg')).isSymbolicLink()).toBe(false);
    expect(readFileSync(join(s.out, 'heatmap-Y.svg'), 'utf8').startsWith('<svg')).toBe(true);
    expect(readdirSync(s.out)).toEqual(['heatmap-Y.svg']); // no temporary left behind
  });

  it('a bad entry after good ones writes nothing: every input is checked before the first file', async () => {
    const s = sandbox((j) => {
      j.traces = { iteration: [1, 2, 3], loss: [3, 2, 1] };
      j.arrays.Z = { file: 'Z.npy', shape: [3, 2] };
    });
    symlinkSync(s.secret, join(s.result, 'Z.npy'));
    await expectRefused(s, /arrays\["Z"\]\.file .*resolves outside|resolves outside.*arrays\["Z"\]\.file/);
    expect(readdirSync(s.out)).toEqual([]);
  });
});
