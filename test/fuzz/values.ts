// The hostile values the fuzz suite calls every export with. Each entry is a factory, so that a case
// gets fresh buffers (a call may detach, transfer or mutate what it was given) and a case can be
// replayed from its indices alone. The pool mixes garbage (wrong types, NaN, detached and shared
// buffers, throwing getters, Proxies) with small valid inputs of every kind the API takes, so that
// generated calls reach past the first check into the native code.

export interface PoolEntry {
  label: string;
  make: () => unknown;
}

function f64(values: number[]): Float64Array {
  return Float64Array.from(values);
}

function seq(n: number, scale = 1, shift = 0.1): Float64Array {
  const a = new Float64Array(n);
  for (let i = 0; i < n; i++) a[i] = shift + scale * (((i * 7919) % 97) / 97);
  return a;
}

function detached(n: number): Float64Array {
  const a = new Float64Array(n);
  structuredClone(a.buffer, { transfer: [a.buffer] });
  return a;
}

function shared(n: number): Float64Array {
  const a = new Float64Array(new SharedArrayBuffer(8 * n));
  a.set(seq(n));
  return a;
}

/** An object whose `data` getter detaches the buffer it returned the first time, on its second read. */
function detachingMatrix(rows: number, cols: number): object {
  const data = seq(rows * cols);
  let reads = 0;
  return {
    rows,
    cols,
    get data() {
      reads++;
      if (reads === 2) structuredClone(data.buffer, { transfer: [data.buffer] });
      return data;
    },
  };
}

/** An options-like object whose getters detach a buffer the caller passed earlier in the call. */
function detachingOptions(victim: Float64Array): object {
  return {
    get maxIterations() {
      if (victim.buffer.byteLength > 0) structuredClone(victim.buffer, { transfer: [victim.buffer] });
      return 5;
    },
  };
}

const throwingProxy = (): unknown =>
  new Proxy(
    {},
    {
      get() {
        throw new Error('proxy get trap');
      },
      has() {
        throw new Error('proxy has trap');
      },
      ownKeys() {
        throw new Error('proxy ownKeys trap');
      },
      getOwnPropertyDescriptor() {
        throw new Error('proxy descriptor trap');
      },
    },
  );

const matrixOf = (rows: number, cols: number, data: unknown): object => ({ rows, cols, data });
const csrOf = (rows: number, cols: number, indptr: unknown, indices: unknown, data: unknown): object => ({ rows, cols, indptr, indices, data });
const tensorOf = (shape: unknown, data: unknown): object => ({ shape, data });

/** A victim buffer shared by the next few entries of a case (see detachingOptions). */
let lastVictim = seq(12);

export const pool: PoolEntry[] = [
  // primitives and odd objects
  { label: 'undefined', make: () => undefined },
  { label: 'null', make: () => null },
  { label: '0', make: () => 0 },
  { label: '-0', make: () => -0 },
  { label: '1', make: () => 1 },
  { label: '2', make: () => 2 },
  { label: '3', make: () => 3 },
  { label: '-1', make: () => -1 },
  { label: '0.5', make: () => 0.5 },
  { label: 'NaN', make: () => NaN },
  { label: 'Infinity', make: () => Infinity },
  { label: '-Infinity', make: () => -Infinity },
  { label: '1e308', make: () => 1e308 },
  { label: '1e-308', make: () => 1e-308 },
  { label: '2^31', make: () => 2 ** 31 },
  { label: '2^32', make: () => 2 ** 32 },
  { label: '2^53', make: () => 2 ** 53 },
  { label: '65536', make: () => 65536 },
  { label: '1e9', make: () => 1e9 },
  { label: 'true', make: () => true },
  { label: 'false', make: () => false },
  { label: "''", make: () => '' },
  { label: "'x'", make: () => 'x' },
  { label: "'polar'", make: () => 'polar' },
  { label: "'softPolar'", make: () => 'softPolar' },
  { label: "'auto'", make: () => 'auto' },
  { label: "'hard'", make: () => 'hard' },
  { label: "'hals'", make: () => 'hals' },
  { label: "'random'", make: () => 'random' },
  { label: "'../escaped'", make: () => '../escaped' },
  { label: "'m.npy'", make: () => 'm.npy' },
  { label: "'m.mtx'", make: () => 'm.mtx' },
  { label: "'m.csv'", make: () => 'm.csv' },
  { label: "'bomb.npy.gz'", make: () => 'bomb.npy.gz' },
  { label: "'huge.mtx'", make: () => 'huge.mtx' },
  { label: "'huge.npy'", make: () => 'huge.npy' },
  { label: "'missing.npy'", make: () => 'missing.npy' },
  { label: '10n', make: () => 10n },
  { label: 'Symbol', make: () => Symbol('fuzz') },
  { label: 'function', make: () => () => 1 },
  { label: 'throwing function 42', make: () => () => { throw 42; } },
  { label: 'throwing function Error', make: () => () => { throw new Error('callback'); } },
  { label: '[]', make: () => [] },
  { label: '[1, 2]', make: () => [1, 2] },
  { label: '[[1, 2], [3, 4]]', make: () => [[1, 2], [3, 4]] },
  { label: 'ragged [[1], [2, 3]]', make: () => [[1], [2, 3]] },
  { label: '[0.5]', make: () => [0.5] },
  { label: '[5]', make: () => [5] },
  { label: '{}', make: () => ({}) },
  { label: 'Object.create(null)', make: () => Object.create(null) },
  { label: 'Map', make: () => new Map() },
  { label: 'Date', make: () => new Date(0) },
  { label: 'throwing getter', make: () => ({ get rows() { throw new Error('getter'); }, get shape() { throw new Error('getter'); } }) },
  { label: 'Proxy', make: throwingProxy },
  { label: 'aborted signal', make: () => AbortSignal.abort() },
  { label: 'live signal', make: () => new AbortController().signal },
  { label: 'signal aborting in 5 ms', make: () => AbortSignal.timeout(5) },
  // typed arrays and buffers
  { label: 'Float64Array(0)', make: () => new Float64Array(0) },
  { label: 'Float64Array(6)', make: () => seq(6) },
  { label: 'Float64Array(6) with NaN', make: () => f64([1, NaN, 2, 3, 4, 5]) },
  { label: 'Float64Array(6) with Inf', make: () => f64([1, Infinity, 2, 3, 4, 5]) },
  { label: 'Float64Array(2) [1e300, 1]', make: () => f64([1e300, 1]) },
  { label: 'Float32Array(6)', make: () => new Float32Array(6).fill(1) },
  { label: 'Int32Array(6)', make: () => new Int32Array([0, 1, 2, 3, 4, 5]) },
  { label: 'Uint8Array(48)', make: () => new Uint8Array(48).fill(1) },
  { label: 'detached Float64Array(6)', make: () => detached(6) },
  { label: 'shared Float64Array(6)', make: () => shared(6) },
  { label: 'offset Float64Array view', make: () => new Float64Array(seq(8).buffer, 16, 6) },
  { label: 'ArrayBuffer(48)', make: () => new ArrayBuffer(48) },
  { label: 'DataView', make: () => new DataView(new ArrayBuffer(48)) },
  { label: 'Buffer npy bytes', make: () => Buffer.from('\x93NUMPY\x01\x00') },
  // matrices
  { label: 'matrix 3x2', make: () => matrixOf(3, 2, seq(6)) },
  { label: 'matrix 6x3', make: () => matrixOf(6, 3, seq(18)) },
  { label: 'matrix 4x4', make: () => matrixOf(4, 4, seq(16)) },
  { label: 'matrix 1x1', make: () => matrixOf(1, 1, f64([2])) },
  { label: 'matrix 3x1 holding 2', make: () => matrixOf(3, 1, f64([1, 2])) },
  { label: 'matrix 2x2 [1e300, 1; 1, 1]', make: () => matrixOf(2, 2, f64([1e300, 1, 1, 1])) },
  { label: 'matrix 3x2 signed', make: () => matrixOf(3, 2, f64([1, -2, 3, -4, 5, -6])) },
  { label: 'matrix 3x2 NaN', make: () => matrixOf(3, 2, f64([1, NaN, 3, 4, 5, 6])) },
  { label: 'matrix 3x2 Float32', make: () => matrixOf(3, 2, new Float32Array(6).fill(1)) },
  { label: 'matrix 3x2 detached', make: () => matrixOf(3, 2, detached(6)) },
  { label: 'matrix 3x2 shared', make: () => matrixOf(3, 2, shared(6)) },
  { label: 'matrix 3x2 detaching getter', make: () => detachingMatrix(3, 2) },
  { label: 'matrix 0x2', make: () => matrixOf(0, 2, new Float64Array(0)) },
  { label: 'matrix -1x2', make: () => matrixOf(-1, 2, seq(2)) },
  { label: 'matrix 1.5x2', make: () => matrixOf(1.5, 2, seq(3)) },
  { label: "matrix '3'x2", make: () => ({ rows: '3', cols: 2, data: seq(6) }) },
  { label: 'matrix 1x65536 (wide)', make: () => matrixOf(1, 65536, seq(65536)) },
  { label: 'matrix 65536x2 (tall)', make: () => matrixOf(65536, 2, seq(131072)) },
  { label: 'matrix 2^32x1 holding 2', make: () => matrixOf(2 ** 32, 1, seq(2)) },
  { label: 'matrix 1x1e308 holding 2', make: () => matrixOf(1, 1e308, seq(2)) },
  { label: 'matrix 8x3 rank-deficient', make: () => matrixOf(8, 3, f64(Array.from({ length: 24 }, (_, i) => (i % 3 === 2 ? 0 : 1 + (i % 5))))) },
  // sparse matrices
  { label: 'csr 3x3', make: () => csrOf(3, 3, new Int32Array([0, 1, 2, 3]), new Int32Array([0, 1, 2]), f64([1, 2, 3])) },
  { label: 'csr bad indptr', make: () => csrOf(3, 3, new Int32Array([0, 2, 1, 3]), new Int32Array([0, 1, 2]), f64([1, 2, 3])) },
  { label: 'csr index out of range', make: () => csrOf(3, 3, new Int32Array([0, 1, 2, 3]), new Int32Array([0, 7, 2]), f64([1, 2, 3])) },
  { label: 'csr unsorted indices', make: () => csrOf(2, 3, new Int32Array([0, 2, 3]), new Int32Array([2, 0, 1]), f64([1, 2, 3])) },
  { label: 'csr with plain arrays', make: () => csrOf(2, 2, [0, 1, 2], [0, 1], [1, 2]) },
  { label: 'csr shared indices', make: () => csrOf(2, 2, new Int32Array([0, 1, 2]), new Int32Array(new SharedArrayBuffer(8)).fill(1), f64([1, 2])) },
  { label: 'csr 2e9x2e9 one entry', make: () => csrOf(2e9, 2e9, new Int32Array([0, 1]), new Int32Array([0]), f64([1])) },
  // tensors and lists
  { label: 'tensor [2,3,4]', make: () => tensorOf([2, 3, 4], seq(24)) },
  { label: 'tensor [3,2,2] batch', make: () => tensorOf([3, 2, 2], seq(12)) },
  { label: 'tensor [2,2]', make: () => tensorOf([2, 2], seq(4)) },
  { label: 'tensor shape mismatch', make: () => tensorOf([2, 3, 4], seq(10)) },
  { label: 'tensor shape with 0', make: () => tensorOf([2, 0, 4], new Float64Array(0)) },
  { label: 'tensor huge shape', make: () => tensorOf([65536, 65536, 65536], seq(8)) },
  { label: 'tensor shape of strings', make: () => tensorOf(['2', '2'], seq(4)) },
  { label: 'list [matrix 3x2, matrix 3x2]', make: () => [matrixOf(3, 2, seq(6)), matrixOf(3, 2, seq(6, 2))] },
  { label: 'list [matrix 65536x2 x2]', make: () => [matrixOf(65536, 2, seq(131072)), matrixOf(65536, 2, seq(131072))] },
  { label: 'list [matrix 4x3, matrix 5x3]', make: () => [matrixOf(4, 3, seq(12)), matrixOf(5, 3, seq(15))] },
  { label: 'list [tensor [2,3,4], tensor [2,3,4]]', make: () => [tensorOf([2, 3, 4], seq(24)), tensorOf([2, 3, 4], seq(24, 2))] },
  { label: 'list [csr 3x3, matrix 3x3]', make: () => [csrOf(3, 3, new Int32Array([0, 1, 2, 3]), new Int32Array([0, 1, 2]), f64([1, 2, 3])), matrixOf(3, 3, seq(9))] },
  { label: "list ['a', 'b', 'a']", make: () => ['a', 'b', 'a'] },
  { label: 'list [0, 1, 0]', make: () => [0, 1, 0] },
  { label: 'victim Float64Array(12)', make: () => (lastVictim = seq(12)) },
  { label: 'options detaching the victim', make: () => detachingOptions(lastVictim) },
  // valid figures of nsa-flow/plot's panel kinds (and near misses), so generated calls get past the first check
  { label: 'list [chart panel]', make: () => [{ title: 't', series: [{ name: 's', x: [1, 2, 3], y: [1, NaN, 3] }], rule: { x: 2, label: 'r' } }] },
  { label: 'list [chart panel, log y, point]', make: () => [{ y: { log: true }, mark: 'point', series: [{ name: 'a', x: seq(6), y: [0, -1, 1, 2, null, 3] }] }] },
  { label: 'list [dot panel]', make: () => [{ x: { log: true }, values: [{ label: 'a', x: 1, group: 'g' }, { label: 'b', x: 0 }] }] },
  { label: 'list [curve, curve]', make: () => [{ name: 'a', x: [1, 2], y: [2, 1] }, { name: 'b', x: seq(2), y: seq(2) }] },
  { label: 'list [heatmap panel 3x2, heatmap panel 1x1]', make: () => [{ m: matrixOf(3, 2, seq(6)), options: { title: 't' } }, { m: matrixOf(1, 1, f64([2])) }] },
  { label: 'list [image row of two 1x2 images]', make: () => [{ title: 'r', images: [[1, 2], seq(2)] }] },
  { label: 'list [chart panel with a sparse x of length 1e9]', make: () => [{ series: [{ name: 's', x: new Array<number>(1e9), y: [1] }] }] },
  { label: 'list [chart panel whose series getter throws]', make: () => [{ get series() { throw new Error('getter'); } }] },
];

export const poolSize = pool.length;
