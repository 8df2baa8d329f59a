import { describe, expect, it } from 'vitest';

import { cpReconstruct, fold, khatriRao, mttkrp, tensorNorm, unfold } from '../lib/index.js';
import type { Matrix } from '../lib/matrix.js';
import type { Tensor } from '../lib/tensor.js';
import { relativeError } from './helpers/shared.js';

const arange = (shape: number[]): Tensor => {
  const n = shape.reduce((a, b) => a * b, 1);
  return { shape, data: Float64Array.from({ length: n }, (_, i) => i) };
};
const mat = (rows: number[][]): Matrix => ({ rows: rows.length, cols: rows[0]!.length, data: Float64Array.from(rows.flat()) });
// Deterministic values in (0, 1) so the checks do not depend on a generator.
const pseudo = (n: number, seed: number) => Float64Array.from({ length: n }, (_, i) => ((Math.sin(seed * 7919 + i * 104729) + 1) / 2));
const randomMatrix = (rows: number, cols: number, seed: number): Matrix => ({ rows, cols, data: pseudo(rows * cols, seed) });
const randomTensor = (shape: number[], seed: number): Tensor => ({ shape, data: pseudo(shape.reduce((a, b) => a * b, 1), seed) });

/** Plain triple-loop A·B for the cross-checks. */
function matmul(a: Matrix, b: Matrix): Matrix {
  const out = new Float64Array(a.rows * b.cols);
  for (let i = 0; i < a.rows; i++)
    for (let k = 0; k < a.cols; k++)
      for (let j = 0; j < b.cols; j++) out[i * b.cols + j] += a.data[i * a.cols + k]! * b.data[k * b.cols + j]!;
  return { rows: a.rows, cols: b.cols, data: out };
}
const transpose = (a: Matrix): Matrix => {
  const out = new Float64Array(a.rows * a.cols);
  for (let i = 0; i < a.rows; i++) for (let j = 0; j < a.cols; j++) out[j * a.rows + i] = a.data[i * a.cols + j]!;
  return { rows: a.cols, cols: a.rows, data: out };
};

describe('unfold / fold (C order, as tensorly)', () => {
  const T = arange([2, 3, 4]);
  it('mode 0 is the plain 2×12 reshape', () => {
    const u = unfold(T, 0);
    expect([u.rows, u.cols]).toEqual([2, 12]);
    expect(Array.from(u.data)).toEqual(Array.from(T.data)); // identical memory order
  });
  it('mode 1 rows are [T[0, j, :], T[1, j, :]]', () => {
    const u = unfold(T, 1);
    expect([u.rows, u.cols]).toEqual([3, 8]);
    // j = 0: T[0,0,:] = 0..3, T[1,0,:] = 12..15 (hand-computed from arange).
    expect(Array.from(u.data.subarray(0, 8))).toEqual([0, 1, 2, 3, 12, 13, 14, 15]);
  });
  it('mode 2 rows are T[:, :, k] in C order', () => {
    const u = unfold(T, 2);
    expect([u.rows, u.cols]).toEqual([4, 6]);
    // k = 1: T[i, j, 1] = 12i + 4j + 1 for (i, j) in C order.
    expect(Array.from(u.data.subarray(6, 12))).toEqual([1, 5, 9, 13, 17, 21]);
  });
  it('fold inverts unfold exactly for every mode of an order-4 tensor', () => {
    const X = randomTensor([3, 2, 4, 5], 1);
    for (let m = 0; m < 4; m++) expect(fold(unfold(X, m), m, X.shape).data).toEqual(X.data); // pure permutation
  });
});

describe('khatriRao', () => {
  const A = mat([[1, 2], [3, 4]]);
  const B = mat([[5, 6], [7, 8]]);
  it('matches the hand-computed product, first matrix slowest', () => {
    // Row (i, j) = A[i] ∘ B[j]: (0,0) = [5, 12], (0,1) = [7, 16], (1,0) = [15, 24], (1,1) = [21, 32].
    const k = khatriRao([A, B]);
    expect([k.rows, k.cols]).toEqual([4, 2]);
    expect(Array.from(k.data)).toEqual([5, 12, 7, 16, 15, 24, 21, 32]);
  });
  it('skips the requested matrix', () => {
    expect(Array.from(khatriRao([A, B], { skip: 0 }).data)).toEqual(Array.from(B.data)); // only B remains
  });
  it('rejects an unknown option and mismatched ranks', () => {
    expect(() => khatriRao([A, B], { skp: 1 } as never)).toThrow(TypeError);
    expect(() => khatriRao([A, mat([[1, 2, 3]])])).toThrow(/Expected 2 columns \(the rank\) for matrices\[1\] but received 3/);
  });
});

describe('mttkrp = unfold · khatriRao, without forming the Khatri–Rao product', () => {
  const cases: [string, number[]][] = [
    ['order 3', [4, 3, 5]],
    ['order 4, first mode largest', [6, 2, 3, 4]],
    ['order 4, last mode largest', [2, 3, 4, 7]],
    ['order 2', [5, 3]],
  ];
  for (const [name, shape] of cases) {
    it(`${name}: every mode agrees to 1e-13`, () => {
      const T = randomTensor(shape, 3);
      const F = shape.map((d, m) => randomMatrix(d, 3, 10 + m));
      for (let m = 0; m < shape.length; m++) {
        const expected = matmul(unfold(T, m), khatriRao(F, { skip: m }));
        // Different summation order only: rounding level.
        expect(relativeError(mttkrp(T, F, m).data, expected.data)).toBeLessThan(1e-13);
      }
    });
  }
  it('rejects a factor with the wrong number of rows', () => {
    const T = randomTensor([2, 3, 4], 1);
    const F = [randomMatrix(2, 2, 1), randomMatrix(4, 2, 2), randomMatrix(4, 2, 3)];
    expect(() => mttkrp(T, F, 0)).toThrow(/Expected 3 rows \(dimension 1 of the tensor\) for factors\[1\] but received 4/);
    expect(() => mttkrp(T, [F[0]!, randomMatrix(3, 2, 0), F[2]!], 3)).toThrow(/Expected an integer mode in \[0, 2\] for mode but received 3/);
  });
});

describe('cpReconstruct and tensorNorm', () => {
  it('a rank-1 term is the outer product, with weights', () => {
    const t = cpReconstruct([mat([[1], [2]]), mat([[3], [4], [5]])], Float64Array.of(2));
    expect(t.shape).toEqual([2, 3]);
    expect(Array.from(t.data)).toEqual([6, 8, 10, 12, 16, 20]); // 2·[1,2]ᵀ[3,4,5]
  });
  it('unfold(cp, n) = Fₙ · khatriRao(F, skip n)ᵀ for an order-4 CP tensor', () => {
    const F = [4, 3, 2, 5].map((d, m) => randomMatrix(d, 3, 20 + m));
    const T = cpReconstruct(F);
    for (let m = 0; m < 4; m++) {
      const expected = matmul(F[m]!, transpose(khatriRao(F, { skip: m })));
      expect(relativeError(unfold(T, m).data, expected.data)).toBeLessThan(1e-14); // rounding level
    }
  });
  it('tensorNorm is the Frobenius norm', () => {
    expect(tensorNorm({ shape: [2], data: Float64Array.of(3, 4) })).toBe(5); // 3-4-5
    expect(() => tensorNorm({ shape: [3], data: new Float64Array(2) })).toThrow(/Expected a Float64Array of length 3 \(3\) for T.data but received a Float64Array of length 2/);
  });
});
