// Crafted files cannot make the readers allocate more than the file can hold or the memory limit
// allows: a tiny MatrixMarket file announcing 2e9 × 2e9, .npy headers announcing more than their
// bytes, and gzip bombs. Peak memory is read from /proc in a child process with a small limit.
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';

import { afterAll, afterEach, describe, expect, it } from 'vitest';

import {
  asDense,
  csrToDense,
  denseToCsr,
  FormatError,
  fortranToC,
  npyHeaderBytes,
  parseCsv,
  parseMatrixMarket,
  parseNpy,
  readCsv,
  readMatrix,
  readMatrixMarket,
  readNpy,
  readNpyHeader,
  tensorAsMatrix,
} from '../lib/io/index.js';
import { gunzipBytes } from '../lib/io/files.js';
import { setMemoryLimit } from '../lib/memory.js';
import { buildNpy, makeTempDir } from './helpers/io-manifest.js';
import { repoRoot } from './helpers/shared.js';
import { thrown } from './helpers/thrown.js';

const tmp = makeTempDir();
afterAll(() => tmp.cleanup());
const tmpFile = (name: string): string => join(tmp.dir, name);
afterEach(() => {
  setMemoryLimit('auto');
});

const MiB = 2 ** 20;
const bigHeader = '%%MatrixMarket matrix coordinate real general\n2000000000 2000000000 1\n1 1 1\n';

/**
 * Runs `body` (TypeScript, with `read` = lib/io/index.ts and `memory` = lib/memory.ts imported) in a
 * fresh Node process and returns what it printed as JSON plus its peak resident memory (VmHWM).
 */
function inChild(body: string): { out: Record<string, unknown>; peakBytes: number } {
  const script = [
    `import * as read from ${JSON.stringify(join(repoRoot, 'lib/io/index.ts'))};`,
    `import * as memory from ${JSON.stringify(join(repoRoot, 'lib/memory.ts'))};`,
    `import { readFileSync } from 'node:fs';`,
    `const out: Record<string, unknown> = {};`,
    `const attempt = (key: string, fn: () => unknown) => { try { fn(); out[key] = 'no error'; } catch (e) { out[key] = { name: (e as Error).name, message: (e as Error).message }; } };`,
    body,
    `const hwm = /VmHWM:\\s+(\\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'))![1];`,
    `console.log(JSON.stringify({ out, peakBytes: Number(hwm) * 1024 }));`,
  ].join('\n');
  const file = tmpFile(`child-${Math.random().toString(36).slice(2)}.ts`);
  writeFileSync(file, script);
  const r = spawnSync(process.execPath, ['--import', 'tsx', file], { cwd: repoRoot, encoding: 'utf8', timeout: 60_000 });
  if (r.status !== 0) throw new Error(`child failed (${r.status} ${r.signal}): ${r.stderr}`);
  return JSON.parse(r.stdout.trim().split('\n').at(-1)!);
}

describe('MatrixMarket size lines cannot drive allocation', () => {
  it('a 76-byte file announcing 2e9 × 2e9 is refused before allocating, peak RSS under 200 MB', () => {
    const path = tmpFile('huge.mtx');
    writeFileSync(path, bigHeader);
    expect(bigHeader.length).toBe(76);
    const { out, peakBytes } = inChild(`
      memory.setMemoryLimit(${64 * MiB});
      attempt('csr', () => read.readMatrixMarket(${JSON.stringify(path)}));
      attempt('dense', () => read.readMatrixMarket(${JSON.stringify(path)}, { format: 'dense' }));
      attempt('readMatrix', () => read.readMatrix(${JSON.stringify(path)}));
    `);
    // CSR needs 4 bytes per row pointer: 4 · (2e9 + 1) + 16 (triplet) + 12 (entry) = 8000000032 bytes.
    expect(out.csr).toEqual({
      name: 'RangeError',
      message:
        `Not enough memory for the 2000000000×2000000000 sparse matrix of ${path} (1 entry): it needs 8000000032 bytes (7.5 GiB), ` +
        'over the memory limit of 67108864 bytes (64.0 MiB); reduce the problem size or raise the limit with setMemoryLimit()',
    });
    expect(out.readMatrix).toEqual(out.csr);
    // A dense 2e9 × 2e9 result is beyond any Float64Array: refused from the size line.
    expect(out.dense).toEqual({ name: 'FormatError', message: `Expected at most 2^32 elements for a dense result but received 2000000000 × 2000000000 in ${path} at line 2` });
    // Before the fix the CSR row pointers (8 GB, and a second copy of them) were allocated and filled: 15 GB.
    // A Node process running TypeScript through tsx peaks near 100 MB.
    // Under the sanitizers shadow memory and quarantine add a few hundred MB whatever the input.
    if (process.env.NSA_FLOW_SANITIZE !== '1') expect(peakBytes).toBeLessThan(200e6);
  });

  it('an entry count beyond what the text can hold allocates only what the text can fill', () => {
    // 2^31 - 1 entries announced, one present: reported at the end of the text, as a count problem.
    const err = thrown(() => parseMatrixMarket('%%MatrixMarket matrix coordinate real general\n3 3 2147483647\n1 1 1\n', 'count.mtx'));
    expect(err).toBeInstanceOf(FormatError);
    expect(err.message).toBe('Expected 2147483647 entries (as announced on line 2) but received 1 (the file ends) in count.mtx at line 3');
  });

  it('an array file announcing more values than its text holds is refused at the size line', () => {
    // 1000 × 1000 = 1e6 values announced; the 4 characters after the size line hold at most 2.
    const err = thrown(() => parseMatrixMarket('%%MatrixMarket matrix array real general\n1000 1000\n1\n2\n', 'arr.mtx'));
    expect(err).toBeInstanceOf(FormatError);
    expect((err as FormatError).code).toBe('entry-count');
    expect(err.message).toBe(
      'Expected 1000000 values (size line 2: 1000 × 1000, general) but the 4 characters after it can hold at most 2 (one value per line) in arr.mtx at line 2',
    );
  });

  it('dense results and densified CSR are checked against the memory limit', () => {
    setMemoryLimit(MiB);
    // 400 × 400 doubles = 1280000 bytes > 1 MiB, though the file holds a single entry.
    const text = '%%MatrixMarket matrix coordinate real general\n400 400 1\n1 1 1\n';
    const err = thrown(() => parseMatrixMarket(text, 'd.mtx', { format: 'dense' }));
    expect(err).toBeInstanceOf(RangeError);
    expect(err.message).toMatch(/^Not enough memory for the dense 400×400 matrix of d\.mtx: it needs 1280000 bytes/);
    const path = tmpFile('d.mtx');
    writeFileSync(path, text);
    setMemoryLimit('auto');
    const csr = readMatrix(path);
    setMemoryLimit(MiB);
    // readMatrix(…, {format: 'dense'}) densifies the CSR: the same 1280000 bytes.
    expect(thrown(() => readMatrix(path, { format: 'dense' })).message).toMatch(/^Not enough memory for the dense 400×400 matrix of .*d\.mtx: it needs 1280000 bytes/);
    expect('indptr' in csr && csr.indptr.length).toBe(401);
  });
});

describe('crafted .npy headers', () => {
  it('a shape whose data the file does not hold is refused before allocating (plain and in memory)', () => {
    // (50000, 50000) of '<f8' announces 20 GB of data; the file has 8 bytes of it.
    const bytes = buildNpy({ descr: '<f8', shape: [50000, 50000], data: new Uint8Array(8) });
    const path = tmpFile('liar.npy');
    writeFileSync(path, bytes);
    const { out, peakBytes } = inChild(`
      memory.setMemoryLimit(${64 * MiB});
      attempt('file', () => read.readNpy(${JSON.stringify(path)}));
      attempt('header', () => read.readNpyHeader(${JSON.stringify(path)}));
    `);
    const message = `Expected 20000000000 bytes of '<f8' data for shape (50000, 50000) after the 128-byte header but received 8 (the file is truncated) in ${path} at byte 136`;
    expect(out.file).toEqual({ name: 'FormatError', message });
    expect(out.header).toEqual(out.file);
    // Under the sanitizers shadow memory and quarantine add a few hundred MB whatever the input.
    if (process.env.NSA_FLOW_SANITIZE !== '1') expect(peakBytes).toBeLessThan(200e6);
    expect(thrown(() => parseNpy(bytes, 'liar')).message).toBe(message.replace(path, 'liar'));
  });

  it('a header length beyond the file, and shapes over 2^32 elements or negative, are header problems', () => {
    // The shape tuple starts at byte 60: the 10-byte preamble, then "{'descr': '<f8', 'fortran_order': False, 'shape': ".
    const v2 = Buffer.from(buildNpy({ descr: '<f8', shape: [1], data: new Uint8Array(8), version: 2 }));
    v2.writeUInt32LE(0xfffffff0, 8); // a 4 GiB header in a 136-byte file
    const err = thrown(() => parseNpy(v2, 'hlen')) as FormatError;
    expect([err.name, err.code]).toEqual(['FormatError', 'truncated']);
    expect(err.message).toBe('Expected a 4294967280-byte header (bytes 12..4294967291) but the file ends at byte 136 (truncated) in hlen at byte 136');
    const wide = thrown(() => parseNpy(buildNpy({ descr: '<f8', shape: [65536, 65537], data: new Uint8Array(8) }), 'wide')) as FormatError;
    expect([wide.code, wide.message]).toEqual(['unsupported', 'Expected at most 2^32 elements but received shape (65536, 65537) (4295032832 elements) in wide at byte 60']);
    const negative = thrown(() => parseNpy(buildNpy({ descr: '<f8', shape: [-1, 3], data: new Uint8Array(8) }), 'neg')) as FormatError;
    expect(negative.code).toBe('bad-header');
    // The quoted excerpt is the next 30 header characters (the tuple, then padding spaces).
    expect(negative.message).toMatch(/^Expected a tuple of non-negative integers for shape but received "\(-1, 3\), } *" in neg at byte 60$/);
  });

  it('converting another dtype to float64 is checked against the memory limit', () => {
    // 200000 '<f4' values: 800000 raw bytes, 1600000 bytes as float64 — over a 1 MiB limit.
    const bytes = buildNpy({ descr: '<f4', shape: [200000], data: new Uint8Array(800000) });
    setMemoryLimit(MiB);
    const err = thrown(() => parseNpy(bytes, 'f4'));
    expect(err).toBeInstanceOf(RangeError);
    expect(err.message).toMatch(/^Not enough memory for the \(200000,\) '<f4' array of f4: it needs 1600000 bytes/);
    const path = tmpFile('f4.npy');
    writeFileSync(path, bytes);
    // Read from a file, the raw bytes are held too: 800000 + 1600000.
    expect(thrown(() => readNpy(path)).message).toMatch(/^Not enough memory for the \(200000,\) '<f4' array of .*f4\.npy: it needs 2400000 bytes/);
  });
});

describe('gzip bombs', () => {
  // 64 MiB of zeros compress to about 64 KB.
  const zeros = gzipSync(Buffer.alloc(64 * MiB));

  it('a .mtx.gz or .csv.gz inflating past the memory limit is refused with a clear message', () => {
    expect(zeros.length).toBeLessThan(100_000);
    setMemoryLimit(MiB);
    for (const name of ['bomb.mtx.gz', 'bomb.csv.gz']) {
      const path = tmpFile(name);
      writeFileSync(path, zeros);
      const err = thrown(() => (name.includes('mtx') ? readMatrixMarket(path) : readCsv(path)));
      expect(err).toBeInstanceOf(RangeError);
      expect(err.message).toBe(
        `Not enough memory for decompressing ${path}: it inflates to more than 1048576 bytes, over the memory limit (1048576 bytes (1.0 MiB)); raise it with setMemoryLimit()`,
      );
    }
  });

  it('an .npy.gz inflating past the size its header declares is refused after that many bytes', () => {
    // A valid header for 2 float64 values (128 + 16 bytes), then 64 MiB of zeros.
    const header = buildNpy({ descr: '<f8', shape: [2], data: new Uint8Array(16) });
    const path = tmpFile('bomb.npy.gz');
    writeFileSync(path, gzipSync(Buffer.concat([header, Buffer.alloc(64 * MiB)])));
    const err = thrown(() => readNpy(path)) as FormatError;
    expect([err.name, err.code]).toEqual(['FormatError', 'entry-count']);
    expect(err.message).toBe(
      `Expected the gzip data to inflate to 144 bytes (the size its .npy header declares for shape (2,) of '<f8') but it inflates to more than 144 bytes in ${path} at byte 144`,
    );
    expect(thrown(() => readNpyHeader(path)).message).toBe(err.message);
  });

  it('an .npy.gz whose header declares more than the memory limit is refused before inflating', () => {
    // Shape (1000000,) of '<f8' needs 8000000 bytes for the result; the limit is 1 MiB.
    const header = buildNpy({ descr: '<f8', shape: [1000000], data: new Uint8Array(0) });
    const path = tmpFile('big.npy.gz');
    writeFileSync(path, gzipSync(Buffer.concat([header, Buffer.alloc(8000000)])));
    setMemoryLimit(MiB);
    const err = thrown(() => readNpy(path));
    expect(err).toBeInstanceOf(RangeError);
    expect(err.message).toMatch(/^Not enough memory for the \(1000000,\) '<f8' array of .*big\.npy\.gz: it needs \d+ bytes/);
  });

  it('gunzipBytes: the declared size and the memory limit cap the output; within both it is unchanged', () => {
    const payload = Buffer.from('x'.repeat(1000));
    const gz = gzipSync(payload);
    expect(gunzipBytes(gz, 'ok.gz', { declaredBytes: 1000 }).equals(payload)).toBe(true);
    const over = thrown(() => gunzipBytes(gz, 'over.gz', { declaredBytes: 999, declaredBy: 'the test' })) as FormatError;
    expect([over.code, over.message]).toEqual(['entry-count', 'Expected the gzip data to inflate to 999 bytes (the test) but it inflates to more than 999 bytes in over.gz at byte 999']);
    setMemoryLimit(999);
    expect(thrown(() => gunzipBytes(gz, 'mem.gz'))).toBeInstanceOf(RangeError);
    setMemoryLimit(1000);
    expect(gunzipBytes(gz, 'mem.gz').length).toBe(1000);
  });
});

describe('conversion helpers validate before they allocate', () => {
  it('denseToCsr and csrToDense refuse malformed matrices, naming the argument', () => {
    // cols 1e308 used to start a loop that never ended; an out-of-range index was silently dropped.
    const wide = thrown(() => denseToCsr({ rows: 1, cols: 1e308, data: new Float64Array(1) }));
    expect([wide.name, wide.message]).toEqual(['RangeError', 'Expected a positive integer ≤ 4294967296 for m.cols but received 1e+308']);
    const outside = thrown(() => csrToDense({ rows: 1, cols: 2, indptr: Int32Array.of(0, 1), indices: Int32Array.of(5), data: Float64Array.of(1) }));
    expect([outside.name, outside.message]).toEqual(['RangeError', 'Expected column indices in 0..1 for m.indices but received 5 at [0]']);
    const none = thrown(() => csrToDense(null as never));
    expect([none.name, none.message]).toEqual(['TypeError', 'Expected a CSR matrix {rows, cols, indptr, indices, data} for m but received null']);
    // 300000 × 10000 with one entry needs 8 · 3e9 = 24e9 bytes densely: refused before allocating.
    setMemoryLimit(64 * MiB);
    const indptr = new Int32Array(300001).fill(1);
    indptr[0] = 0;
    const big = thrown(() => csrToDense({ rows: 300000, cols: 10000, indptr, indices: Int32Array.of(0), data: Float64Array.of(1) }));
    expect([big.name, big.message]).toEqual([
      'RangeError',
      'Not enough memory for the dense form of m (300000×10000): it needs 24000000000 bytes (22.4 GiB), over the memory limit of 67108864 bytes (64.0 MiB); reduce the problem size or raise the limit with setMemoryLimit()',
    ]);
  });

  it('the other helpers of lib/io check their arguments before reading them (each used to fail with a V8 message)', () => {
    const cases: [() => unknown, string, string][] = [
      [() => fortranToC(undefined as never, [2, 2]), 'TypeError', 'Expected a Float64Array of length 4 (2*2) for src but received undefined'],
      [() => fortranToC(new Float64Array(3), [2, 2]), 'RangeError', 'Expected a Float64Array of length 4 (2*2) for src but received a Float64Array of length 3'],
      [() => tensorAsMatrix(null as never, 'f.npy'), 'TypeError', 'Expected a Tensor {shape, data: Float64Array} for t but received null'],
      [() => npyHeaderBytes('x' as never), 'TypeError', 'Expected an array of dimensions for shape but received the string "x"'],
      [() => npyHeaderBytes([2, -1]), 'RangeError', 'Expected a non-negative integer in [0, 4294967296] for shape[1] but received -1'],
      [() => asDense(true as never), 'TypeError', 'Expected a Matrix or CsrMatrix for m but received boolean true'],
      // `name` labels the messages: an object or a symbol there made building any message throw.
      [() => parseNpy(new Uint8Array(8), {} as never), 'TypeError', 'Expected a string for name but received an object'],
      [() => parseCsv('a', Symbol('s') as never), 'TypeError', 'Expected a string for name but received a symbol'],
      [() => parseMatrixMarket('a', null as never), 'TypeError', 'Expected a string for name but received null'],
    ];
    for (const [call, cls, message] of cases) {
      const e = thrown(call);
      expect([e.name, e.message]).toEqual([cls, message]);
    }
  });
});
