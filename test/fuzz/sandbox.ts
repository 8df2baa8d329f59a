// The folder the fuzz child runs in: small valid files of every format the readers take, and crafted
// ones (a MatrixMarket header declaring 2e9×2e9, an .npy header declaring 1e9×1e9, a gzip bomb, a jobs
// file whose ids and paths try to escape, a result folder whose arrays point outside it). The child's
// working directory is `root/sandbox`; `root` holds nothing else, so anything written beside the
// sandbox is an escape the parent can see.
import { createGzip } from 'node:zlib';
import { mkdirSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';

/** An .npy v1.0 file of float64 values in C order. */
function npy(shape: number[], values: number[]): Buffer {
  let header = `{'descr': '<f8', 'fortran_order': False, 'shape': (${shape.join(', ')}${shape.length === 1 ? ',' : ''}), }`;
  header += ' '.repeat(64 - ((10 + header.length + 1) % 64)) + '\n';
  const head = Buffer.alloc(10);
  head.write('\x93NUMPY', 0, 'latin1');
  head[6] = 1;
  head[7] = 0;
  head.writeUInt16LE(header.length, 8);
  const body = Buffer.from(Float64Array.from(values).buffer);
  return Buffer.concat([head, Buffer.from(header, 'latin1'), body]);
}

/** gzip of `prefix` followed by `zeros` zero bytes, streamed so that the bomb is never held inflated. */
async function gzipBomb(prefix: Buffer, zeros: number): Promise<Buffer> {
  const chunk = Buffer.alloc(1 << 20);
  let left = zeros;
  const source = Readable.from(
    (function* () {
      yield prefix;
      while (left > 0) {
        const n = Math.min(left, chunk.length);
        left -= n;
        yield n === chunk.length ? chunk : chunk.subarray(0, n);
      }
    })(),
  );
  return buffer(source.pipe(createGzip({ level: 9 })));
}

export interface Sandbox {
  root: string;
  dir: string;
  /** Entries of `root` other than the sandbox itself (must stay empty). */
  escapes(): string[];
}

export async function makeSandbox(memoryLimitBytes: number): Promise<Sandbox> {
  const root = mkdtempSync(join(tmpdir(), 'nsa-flow-fuzz-'));
  const dir = join(root, 'sandbox');
  mkdirSync(dir);
  const file = (name: string, content: string | Buffer): void => writeFileSync(join(dir, name), content);

  file('m.npy', npy([3, 2], [1, 2, 3, 4, 5, 6]));
  file('m.mtx', '%%MatrixMarket matrix coordinate real general\n3 3 3\n1 1 1.5\n2 2 2.5\n3 3 3.5\n');
  file('m.csv', 'a,b\n1,2\n3,4\n5,6\n');
  file('labels.csv', 'stratum\nx\ny\nx\n');
  file('huge.mtx', '%%MatrixMarket matrix coordinate real general\n2000000000 2000000000 1\n1 1 1\n');
  file('huge.npy', npy([1e9, 1e9], []));
  // Inflates to more than the memory limit the child runs with, behind a header that declares exactly
  // that many values: only a cap on inflation can refuse it before the bytes are held.
  const values = Math.ceil((memoryLimitBytes * 1.25) / 8);
  file('bomb.npy.gz', await gzipBomb(npy([values], []), values * 8));
  file('jobs.json', JSON.stringify([{ method: 'nmf', input: 'm.npy', options: { rank: 1, maxIterations: 3 } }]));
  file(
    'evil-jobs.json',
    JSON.stringify([
      { method: 'nmf', input: '../outside.npy', options: { rank: 1 } },
      { method: 'nmf', input: '/etc/passwd', options: { rank: 1 } },
    ]),
  );
  mkdirSync(join(dir, 'result'));
  writeFileSync(join(dir, 'result', 'W.npy'), npy([3, 1], [1, 2, 3]));
  writeFileSync(
    join(dir, 'result', 'result.json'),
    JSON.stringify({
      method: 'nmf', version: '0', inputs: {}, settings: {}, diagnostics: {}, values: {}, run: {},
      timings: { startedAt: '', readSeconds: 0, runSeconds: 0 },
      traces: { loss: [3, 2, 1] },
      arrays: { W: { file: 'W.npy', shape: [3, 1] } },
    }),
  );
  mkdirSync(join(dir, 'evil-result'));
  writeFileSync(
    join(dir, 'evil-result', 'result.json'),
    JSON.stringify({
      method: 'nmf', version: '0', inputs: {}, settings: {}, diagnostics: {}, values: {}, run: {},
      timings: { startedAt: '', readSeconds: 0, runSeconds: 0 },
      traces: { loss: [1] },
      arrays: { '../../escaped': { file: '../result/W.npy', shape: [3, 1] }, H: { file: '/etc/hostname', shape: [1e9, 1e9] } },
    }),
  );
  return { root, dir, escapes: () => readdirSync(root).filter((e) => e !== 'sandbox') };
}
