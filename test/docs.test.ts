// Docs that run: every fenced code block of README.md and docs/*.md is either run or explicitly marked.
//
// - ```ts blocks run with tsx (as .mts files, so top-level await works); `from 'nsa-flow'` and its
//   subpaths are rewritten to this checkout's lib/ sources.
// - ```sh blocks run with bash (stderr merged into stdout, in order).
// - A ```text (or ```console / ```output) block right after a runnable block, with only blank lines
//   between, is its expected output. Without one, the run must exit with 0.
// - `<!-- no-run: why -->` on the line before a fence (blank lines allowed) skips it: install commands,
//   `npm test` itself, long benchmarks and their recorded output. The skipped blocks are counted and may
//   not outnumber the blocks that run, so the marker cannot hide a page.
// - `<!-- file: NAME -->` before a block writes its text to NAME in the page's working directory (a
//   jobs file, say) before the page's blocks run.
// Every other block (an untagged one, a stray json block) fails the test: it would be text a reader
// cannot trust.
//
// When a change alters what a command prints, NSA_FLOW_DOCS_UPDATE=1 rewrites each output block that no
// longer matches with the new output (keeping the expected lines that still match, so `…` wildcards
// survive where the line count is unchanged) and lists what it rewrote; review the diff, then run the
// test again without it.
//
// Each page runs in document order in its own temporary directory, which links data/, bin/, examples/,
// node_modules/ and package.json of this checkout, so the commands are exactly those a reader types at
// the root of a clone, and files they write land in the temporary directory.
//
// Output comparison, line by line after trimming trailing blanks and dropping ANSI colours and the
// CLI's NDJSON progress records (progress, job-start, job-end: what it writes to a stderr that is not
// a terminal, where a terminal shows a progress bar that it clears at the end): runs of
// spaces compare equal to any run of spaces (columns may shift); `…` inside a line matches any text (used
// for timings, e.g. `(… ms)`, and machine-specific strings); a line that is just `…` matches any number
// of lines. Numbers compare to their printed precision: an integer exactly, a decimal within one unit of
// its last printed digit (4.54 matches 4.53 … 4.55; 8.3e-3 matches 8.2e-3 … 8.4e-3), which absorbs
// last-digit rounding flicker between BLAS builds and nothing more; a number printed to more digits than
// that (a full float64 in a CSV) within 1e-12 of its value: OpenBLAS's AVX2 and AVX-512 kernels sum in
// different orders, so the last three or four of 17 digits differ between CPUs.
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';

import { afterAll, describe, expect, it } from 'vitest';

import { repoRoot } from './helpers/shared.js';

type Marker = { kind: 'no-run'; why: string } | { kind: 'file'; name: string };

export interface Block {
  file: string;
  /** 1-based line of the opening fence. */
  line: number;
  endLine: number;
  lang: string;
  body: string;
  marker?: Marker;
}

const RUNNABLE = new Set(['ts', 'typescript', 'sh', 'bash', 'shell']);
const OUTPUT = new Set(['text', 'console', 'output']);

/** The fenced blocks of a markdown text, with the marker comment before each (if any). */
export function parseBlocks(markdown: string, file: string): Block[] {
  const lines = markdown.split('\n');
  const blocks: Block[] = [];
  for (let i = 0; i < lines.length; i++) {
    const open = /^(`{3,})\s*([\w-]*)\s*$/.exec(lines[i]!);
    if (!open) continue;
    const fence = open[1]!;
    let j = i + 1;
    while (j < lines.length && !(lines[j]!.startsWith(fence) && lines[j]!.trim() === fence)) j++;
    if (j >= lines.length) throw new Error(`${file}:${i + 1}: code fence never closed`);
    let k = i - 1;
    while (k >= 0 && lines[k]!.trim() === '') k--;
    const m = k >= 0 ? /^<!--\s*(no-run|file):\s*(.*?)\s*-->$/.exec(lines[k]!.trim()) : null;
    const marker: Marker | undefined = m ? (m[1] === 'no-run' ? { kind: 'no-run', why: m[2]! } : { kind: 'file', name: m[2]! }) : undefined;
    blocks.push({ file, line: i + 1, endLine: j + 1, lang: open[2]!.toLowerCase(), body: lines.slice(i + 1, j).join('\n'), marker });
    i = j;
  }
  return blocks;
}

export interface Unit {
  run: Block;
  output?: Block;
}

/** Sorts a page's blocks into runs (with their expected output), files to write, skipped blocks and problems. */
export function planPage(markdown: string, file: string): { units: Unit[]; files: Block[]; skipped: Block[]; problems: string[] } {
  const blocks = parseBlocks(markdown, file);
  const lines = markdown.split('\n');
  const out = { units: [] as Unit[], files: [] as Block[], skipped: [] as Block[], problems: [] as string[] };
  for (let i = 0; i < blocks.length; i++) {
    const b = blocks[i]!;
    const where = `${file}:${b.line}`;
    if (b.marker?.kind === 'no-run') {
      if (b.marker.why.length < 3) out.problems.push(`${where}: <!-- no-run --> needs a reason`);
      out.skipped.push(b);
    } else if (b.marker?.kind === 'file') {
      out.files.push(b);
    } else if (RUNNABLE.has(b.lang)) {
      const next = blocks[i + 1];
      const adjacent = next && !next.marker && OUTPUT.has(next.lang) && lines.slice(b.endLine, next.line - 1).every((l) => l.trim() === '');
      out.units.push(adjacent ? { run: b, output: next } : { run: b });
      if (adjacent) i++;
    } else {
      out.problems.push(`${where}: a ${b.lang || 'untagged'} block that neither runs (ts, sh), follows a run as its output (text), nor is marked <!-- no-run: why -->`);
    }
  }
  return out;
}

/** How closely a number printed to (nearly) full float64 precision must match: see the header. */
const FULL_PRECISION = 1e-12;

const NUMBER = /[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?/g;

/** One unit in the last printed place of a decimal; 0 for an integer (which must match exactly). */
function lastPlace(printed: string): number {
  const [mantissa, exponent] = printed.toLowerCase().split('e');
  const decimals = mantissa!.includes('.') ? mantissa!.length - mantissa!.indexOf('.') - 1 : 0;
  if (decimals === 0 && exponent === undefined) return 0;
  return 10 ** (Number(exponent ?? 0) - decimals);
}

const escapeRe = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&').replace(/\s+/g, '\\s+');

/** Whether an actual output line matches an expected one (see the header for the rules). */
export function lineMatches(actual: string, expected: string): boolean {
  const numbers: string[] = [];
  let pattern = '';
  for (const part of expected.split('…')) {
    if (pattern) pattern += '.*?';
    let last = 0;
    for (const m of part.matchAll(NUMBER)) {
      pattern += escapeRe(part.slice(last, m.index)) + `(${NUMBER.source})`;
      numbers.push(m[0]);
      last = m.index! + m[0].length;
    }
    pattern += escapeRe(part.slice(last));
  }
  // Several ways to split a line between wildcards and numbers are possible; the first one regex
  // backtracking finds is the one compared (wildcards match as little as they can).
  const m = new RegExp(`^\\s*${pattern}\\s*$`).exec(actual);
  if (!m) return false;
  return numbers.every((e, i) => {
    if (m[i + 1] === e) return true; // also covers digit runs inside names and ids, e.g. "3e5601"
    const a = Number(m[i + 1]);
    const unit = lastPlace(e);
    return unit === 0 ? m[i + 1] === e : Math.abs(a - Number(e)) <= Math.max(unit * (1 + 1e-9), Math.abs(Number(e)) * FULL_PRECISION);
  });
}

const clean = (text: string): string[] => {
  // eslint-disable-next-line no-control-regex
  const lines = text
    .replace(/\x1b\[[0-9;]*[A-Za-z]/g, '')
    .split('\n')
    .map((l) => l.trimEnd())
    .filter((l) => !/^\{"event":"(progress|job-start|job-end)"/.test(l));
  while (lines.length && lines.at(-1) === '') lines.pop();
  while (lines.length && lines[0] === '') lines.shift();
  return lines;
};

/** null when the output matches, else a message naming the first line that does not. */
export function compareOutput(actualText: string, expectedText: string): string | null {
  const actual = clean(actualText);
  const expected = clean(expectedText);
  const match = (a: number, e: number): boolean => {
    if (e === expected.length) return a === actual.length;
    if (expected[e]!.trim() === '…') {
      for (let k = a; k <= actual.length; k++) if (match(k, e + 1)) return true;
      return false;
    }
    return a < actual.length && lineMatches(actual[a]!, expected[e]!) && match(a + 1, e + 1);
  };
  if (match(0, 0)) return null;
  // Name the first line that differs when read in step (good enough to find the mistake).
  for (let i = 0; i < Math.max(actual.length, expected.length); i++) {
    if (expected[i]?.trim() === '…') break;
    if (actual[i] === undefined || expected[i] === undefined || !lineMatches(actual[i]!, expected[i]!)) {
      return `output line ${i + 1} differs:\n  expected: ${expected[i] ?? '(nothing)'}\n  actual:   ${actual[i] ?? '(nothing)'}`;
    }
  }
  return `output differs around a '…' line`;
}

const SUBPATHS: Record<string, string> = {
  'nsa-flow': 'lib/index.ts',
  'nsa-flow/batch': 'lib/batch/index.ts',
  'nsa-flow/plot': 'lib/plot/index.ts',
  'nsa-flow/cli': 'lib/cli/index.ts',
};

/** A ts block with `from 'nsa-flow…'` pointing at this checkout's sources. */
export function rewriteImports(code: string): string {
  return code.replace(/from\s+(['"])(nsa-flow(?:\/[\w-]+)?)\1/g, (whole, _q, spec: string) => {
    const target = SUBPATHS[spec];
    if (!target) throw new Error(`a docs block imports '${spec}', which the package does not export`);
    return `from ${JSON.stringify(resolve(repoRoot, target))}`;
  });
}

/** A page's working directory: links to the checkout's data and commands, nothing else. */
function workDir(tag: string): string {
  const dir = mkdtempSync(join(tmpdir(), `nsa-flow-docs-${tag}-`));
  for (const name of ['data', 'bin', 'examples', 'node_modules', 'package.json']) symlinkSync(resolve(repoRoot, name), join(dir, name));
  return dir;
}

function runUnit(unit: Unit, cwd: string): { status: number | null; output: string } {
  const b = unit.run;
  const opts = { cwd, encoding: 'utf8' as const, timeout: 180_000, env: { ...process.env, FORCE_COLOR: '0', NO_COLOR: '1' } };
  if (b.lang === 'ts' || b.lang === 'typescript') {
    const file = join(cwd, `block-${b.line}.mts`);
    writeFileSync(file, rewriteImports(b.body));
    const r = spawnSync(process.execPath, ['--import', 'tsx', file], opts);
    return { status: r.status, output: r.stdout + r.stderr };
  }
  // Without an expected output a failing command must fail the test, so stop at the first one.
  // `npx nsa-flow …` is what a user of the installed package types; in a checkout it is bin/nsa-flow.mjs.
  const npxShim = 'npx() { if [ "$1" = nsa-flow ]; then shift; node bin/nsa-flow.mjs "$@"; else command npx "$@"; fi; }\n';
  const script = `exec 2>&1\n${npxShim}${unit.output ? '' : 'set -e\n'}${b.body}\n`;
  const r = spawnSync('bash', ['-c', script], opts);
  return { status: r.status, output: r.stdout };
}

/** Rewrites an output block of a page with the actual output (see NSA_FLOW_DOCS_UPDATE above). */
function updateOutputBlock(page: string, block: Block, actualText: string): void {
  const path = resolve(repoRoot, page);
  const expected = clean(block.body);
  const actual = clean(actualText);
  const merged = actual.length === expected.length ? actual.map((a, i) => (lineMatches(a, expected[i]!) ? expected[i]! : a)) : actual;
  const fence = (body: string): string => `\`\`\`${block.lang}\n${body}\n\`\`\``;
  const text = readFileSync(path, 'utf8');
  if (!text.includes(fence(block.body))) throw new Error(`${page}:${block.line}: output block not found for the update`);
  writeFileSync(path, text.replace(fence(block.body), () => fence(merged.join('\n'))));
  console.log(`updated the output block at ${page}:${block.line}`);
}

const pages = ['README.md', ...readdirSync(resolve(repoRoot, 'docs')).filter((f) => f.endsWith('.md')).sort().map((f) => `docs/${f}`)];
const plans = pages.map((page) => ({ page, ...planPage(readFileSync(resolve(repoRoot, page), 'utf8'), page) }));
const counts = plans.reduce((c, p) => ({ run: c.run + p.units.length, skipped: c.skipped + p.skipped.length, files: c.files + p.files.length }), { run: 0, skipped: 0, files: 0 });
console.log(`docs: ${counts.run} blocks run, ${counts.skipped} marked no-run, ${counts.files} written as files, in ${pages.length} pages`);

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe('every code block of the docs is accounted for', () => {
  it('runs, is the output of a run, is a file, or is marked no-run with a reason', () => {
    expect(plans.flatMap((p) => p.problems)).toEqual([]);
  });

  it('runs more blocks than it skips', () => {
    // The no-run marker is for install commands, the test command and recorded benchmarks; it may not
    // become the way to silence a page that no longer runs.
    expect(counts.skipped).toBeLessThan(counts.run);
  });
});

for (const plan of plans) {
  describe.runIf(plan.units.length > 0)(plan.page, () => {
    let cwd = '';
    it.each(plan.units.map((u) => [`${u.run.lang} block at line ${u.run.line}`, u] as const))('%s', (_name, unit) => {
      if (!cwd) {
        cwd = workDir(plan.page.replace(/\W+/g, '-'));
        dirs.push(cwd);
        for (const f of plan.files) {
          const target = join(cwd, (f.marker as { name: string }).name);
          mkdirSync(dirname(target), { recursive: true });
          writeFileSync(target, `${f.body}\n`);
        }
      }
      const { status, output } = runUnit(unit, cwd);
      if (unit.output && process.env.NSA_FLOW_DOCS_UPDATE === '1' && compareOutput(output, unit.output.body) !== null) {
        updateOutputBlock(plan.page, unit.output, output);
        return;
      }
      if (unit.output) {
        // The printed numbers and text are what the page shows (to the printed precision).
        expect(compareOutput(output, unit.output.body), `${plan.page}:${unit.run.line}\n--- actual output ---\n${output}`).toBeNull();
      } else {
        // No output shown: the block must simply work.
        expect(status, `${plan.page}:${unit.run.line} exited with ${status}\n${output}`).toBe(0);
      }
    });
  });
}

describe('the ts blocks', () => {
  it('type-check against the package sources (strict, as in a TypeScript project of a user)', () => {
    const dir = workDir('typecheck');
    dirs.push(dir);
    const files = plans.flatMap((p) => p.units.filter((u) => u.run.lang === 'ts' || u.run.lang === 'typescript').map((u) => ({ page: p.page, block: u.run })));
    const names = files.map(({ page, block }) => {
      const name = `${page.replace(/\W+/g, '-')}-${block.line}.mts`;
      writeFileSync(join(dir, name), rewriteImports(block.body));
      return name;
    });
    const config = {
      compilerOptions: { target: 'ES2022', module: 'NodeNext', moduleResolution: 'NodeNext', lib: ['ES2022'], types: ['node'], strict: true, noEmit: true, skipLibCheck: true, allowImportingTsExtensions: true },
      files: names,
    };
    writeFileSync(join(dir, 'tsconfig.json'), JSON.stringify(config));
    const r = spawnSync(process.execPath, [resolve(repoRoot, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', join(dir, 'tsconfig.json')], { cwd: dir, encoding: 'utf8', timeout: 300_000 });
    // Errors name the temporary file, whose name is the page and the block's line.
    expect(r.stdout + r.stderr).toBe('');
    expect(r.status).toBe(0);
  });
});

describe('the output comparison', () => {
  it('holds numbers to their printed precision and text exactly', () => {
    // 4.54 printed: 4.53 and 4.55 are within one unit of the last digit, 4.56 is not.
    expect([lineMatches('loss 4.55', 'loss 4.54'), lineMatches('loss 4.56', 'loss 4.54')]).toEqual([true, false]);
    // Exponent form: 8.3e-3 allows 8.2e-3 … 8.4e-3 whatever the actual's format.
    expect([lineMatches('d 0.0084', 'd 8.3e-3'), lineMatches('d 8.5e-3', 'd 8.3e-3')]).toEqual([true, false]);
    // Integers (counts, sizes) exactly; words exactly; spacing may differ.
    expect([lineMatches('13 jobs', '13 jobs'), lineMatches('14 jobs', '13 jobs'), lineMatches('13 runs', '13 jobs')]).toEqual([true, false, false]);
    expect(lineMatches('a    b  1.5', 'a b 1.5')).toBe(true);
    // Full float64 digits: within 1e-12 relative (the last digits differ between BLAS kernels), not more.
    expect([lineMatches('s01,-5.629503707537251', 's01,-5.629503707537254'), lineMatches('s01,-5.629503707547254', 's01,-5.629503707537254')]).toEqual([true, false]);
    // Digits inside a hex id compare as text, even where they read as a number out of range ("3e5601").
    expect([lineMatches('retract-b2f33c3e5601', 'retract-b2f33c3e5601'), lineMatches('retract-b2f33c3e5602', 'retract-b2f33c3e5601')]).toEqual([true, false]);
  });

  it('lets … stand for timings inside a line and for whole lines', () => {
    expect(lineMatches('polar  defect 6.6e-32  (144.4 ms)', 'polar defect 6.6e-32 (… ms)')).toBe(true);
    expect(lineMatches('polar  defect 6.6e-32  (144.4 s)', 'polar defect 6.6e-32 (… ms)')).toBe(false);
    expect(compareOutput('a\nb\nc\nd', 'a\n…\nd')).toBeNull();
    expect(compareOutput('a\nd', 'a\n…\nd')).toBeNull();
    expect(compareOutput('a\nb', 'a\nb\nc')).toMatch(/line 3 differs/);
  });

  it('sorts blocks: a run and its output, a file, a marked block, and an unmarked stray', () => {
    const md = ['```sh', 'echo 1', '```', '', '```text', '1', '```', '<!-- file: a.json -->', '```json', '{}', '```', '<!-- no-run: installs -->', '```sh', 'npm i', '```', '```', 'stray', '```'].join('\n');
    const p = planPage(md, 'x.md');
    expect([p.units.length, p.units[0]!.output?.body, p.files.length, p.skipped.length]).toEqual([1, '1', 1, 1]);
    expect(p.problems).toEqual(['x.md:16: a untagged block that neither runs (ts, sh), follows a run as its output (text), nor is marked <!-- no-run: why -->']);
  });

  it('points imports of the package at the sources and refuses names it does not export', () => {
    expect(rewriteImports("import { a } from 'nsa-flow/batch';")).toBe(`import { a } from ${JSON.stringify(resolve(repoRoot, 'lib/batch/index.ts'))};`);
    expect(() => rewriteImports("import { a } from 'nsa-flow/internal';")).toThrow(/does not export/);
  });
});
