// The TypeScript guard of the public API, one block per class of defect: helpers that hung or
// answered wrongly on bad input, arguments read more than once (a getter could swap or detach a
// buffer between the check and the use), memory requested before it was checked, finite input that
// overflowed into a silent NaN, and unknown option names without a suggestion.
import { constants as bufferConstants } from 'node:buffer';

import { afterEach, describe, expect, it } from 'vitest';

import {
  NumericalError,
  at,
  basicOrthogonality,
  cpReconstruct,
  csrToDense,
  denseToCsr,
  energy,
  expectCsr,
  frobeniusNorm,
  getMemoryLimit,
  invariantOrthogonalityDefect,
  khatriRao,
  matrix,
  matrixFrom,
  nmfSync,
  nsaFlowSync,
  ntfSync,
  optimizerSteps,
  procrustes,
  retract,
  selectRows,
  setMemoryLimit,
  stratifiedNmfSync,
  stratifiedNtfSync,
  svd,
  tensor,
  tensorNorm,
  toCsr,
  toNested,
  transpose,
  zeros,
  type Matrix,
} from '../lib/index.js';
import { expectAllocatable } from '../lib/validate.js';

const m = (rows: number, cols: number, values: number[]): Matrix => ({ rows, cols, data: Float64Array.from(values) });
const A = m(3, 4, [1, 2, 0, 4, 0, 1, 0.5, 3, 0.2, 0, 1, 2]);

afterEach(() => {
  setMemoryLimit('auto');
});

describe('exported helpers validate instead of hanging or answering wrongly', () => {
  it('selectRows refuses out-of-range and fractional row indices (they gave a zero row or a mixed one)', () => {
    expect(() => selectRows(m(2, 1, [1, 2]), [5])).toThrow(RangeError);
    expect(() => selectRows(m(2, 1, [1, 2]), [5])).toThrow('Expected an integer row index in [0, 1] for rows[0] but received 5');
    expect(() => selectRows(toCsr(A), [0, 0.5])).toThrow('Expected an integer row index in [0, 2] for rows[1] but received 0.5');
    // A valid selection still works: rows 2 and 0 of A, in that order.
    expect(Array.from((selectRows(A, [2, 0]) as Matrix).data)).toEqual([0.2, 0, 1, 2, 1, 2, 0, 4]);
  });

  it('transpose and toNested check that data holds rows·cols values (NaN and an endless loop before)', () => {
    expect(() => transpose({ rows: 3, cols: 1, data: Float64Array.of(1, 2) })).toThrow(RangeError);
    expect(() => transpose({ rows: 3, cols: 1, data: Float64Array.of(1, 2) })).toThrow(
      'Expected a Float64Array of length 3 (rows*cols) for m.data but received a Float64Array of length 2',
    );
    expect(() => toNested({ rows: 2 ** 32, cols: 1, data: Float64Array.of(1, 2) })).toThrow(
      'Expected a Float64Array of length 4294967296 (rows*cols) for m.data but received a Float64Array of length 2',
    );
  });

  it('denseToCsr and csrToDense validate (cols 1e308 ran on for ever; an out-of-range index was dropped)', () => {
    expect(() => denseToCsr({ rows: 1, cols: 1e308, data: Float64Array.of(1, 2) })).toThrow(RangeError);
    expect(() => denseToCsr({ rows: 1, cols: 1e308, data: Float64Array.of(1, 2) })).toThrow(
      `Expected a positive integer ≤ ${bufferConstants.MAX_LENGTH} for m.cols but received 1e+308`,
    );
    const outOfRange = { rows: 1, cols: 2, indptr: Int32Array.of(0, 1), indices: Int32Array.of(7), data: Float64Array.of(1) };
    expect(() => csrToDense(outOfRange)).toThrow(RangeError);
    expect(() => csrToDense(outOfRange)).toThrow('Expected column indices in 0..1 for m.indices but received 7 at [0]');
  });

  it('dimensions beyond any array are refused at the argument', () => {
    expect(() => zeros(1e308, 1)).toThrow(RangeError);
    expect(() => zeros(1e308, 1)).toThrow(`Expected a positive integer ≤ ${bufferConstants.MAX_LENGTH} for rows but received 1e+308`);
    expect(() => at(A, 3, 0)).toThrow('Expected a row index in [0, 2] for i but received 3');
  });

  it('a self-containing array stops at the order limit instead of looping', () => {
    const loop: unknown[] = [];
    loop.push(loop);
    expect(() => tensor(loop)).toThrow(RangeError);
    expect(() => tensor(loop)).toThrow('Expected nested arrays at most 32 deep for tensor but received deeper ones');
  });

  it('rank has an upper bound in ntf and stratifiedNtf (none before)', () => {
    const T = { shape: [2, 2], data: Float64Array.of(1, 2, 3, 4) };
    expect(() => ntfSync(T, 2 ** 24 + 1)).toThrow(RangeError);
    expect(() => ntfSync(T, 2 ** 24 + 1)).toThrow('Expected a positive integer ≤ 16777216 for rank but received 16777217');
    expect(() => stratifiedNtfSync([T], 2 ** 30, { strataRank: 1 })).toThrow(
      /Expected a positive integer ≤ 16777216 for rank but received 1073741824/,
    );
  });

  it('a Proxy that claims to be a Float64Array is not one (instanceof said it was)', () => {
    const fake = new Proxy(new Float64Array(2), {});
    expect(() => invariantOrthogonalityDefect({ rows: 2, cols: 1, data: fake })).toThrow(TypeError);
    expect(() => invariantOrthogonalityDefect({ rows: 2, cols: 1, data: fake })).toThrow(
      'Expected a Float64Array of length 2 (rows*cols) for Y.data but received a Proxy',
    );
  });
});

describe('arguments are read once, validated, and the snapshot is what native code gets', () => {
  it('each field getter runs exactly once per call', () => {
    const reads = { rows: 0, cols: 0, data: 0 };
    const data = Float64Array.of(1, 0, 0, 1);
    const Y = {
      get rows() {
        reads.rows++;
        return 2;
      },
      get cols() {
        reads.cols++;
        return 2;
      },
      get data() {
        reads.data++;
        return data;
      },
    };
    // Orthonormal columns: defect 0.
    expect(invariantOrthogonalityDefect(Y)).toBe(0);
    expect(reads).toEqual({ rows: 1, cols: 1, data: 1 });
  });

  it('an option getter runs once, before the data is read and checked', () => {
    let calls = 0;
    const csr = toCsr(A);
    const options = {
      get maxIterations() {
        calls++;
        // Corrupting the data from here is caught: the data is validated after every option is read.
        csr.indices[0] = 1_000_000;
        return 2;
      },
    };
    expect(() => nmfSync(csr, 1, options)).toThrow(RangeError);
    expect(() => nmfSync(csr, 1, options)).toThrow('Expected column indices in [0, 4) for A.indices but received 1000000 at position 0 (row 0)');
    expect(calls).toBe(2); // once per call
  });

  it("a later argument's getter that detaches an earlier argument's buffer stops the call before native code", () => {
    const Y = m(2, 1, [1, 2]);
    const X0 = {
      rows: 2,
      get cols() {
        structuredClone(Y.data.buffer, { transfer: [Y.data.buffer] }); // detaches Y.data
        return 1;
      },
      data: Float64Array.of(1, 1),
    };
    expect(() => energy(Y, X0)).toThrow(TypeError);
    expect(() => energy(m(2, 1, [1, 2]), { ...X0, cols: 1 })).not.toThrow();
    const Y2 = m(2, 1, [1, 2]);
    const B = {
      rows: 2,
      get cols() {
        structuredClone(Y2.data.buffer, { transfer: [Y2.data.buffer] });
        return 1;
      },
      data: Float64Array.of(1, 1),
    };
    expect(() => procrustes(Y2, B)).toThrow(
      'Expected A.data to keep its length 2 while the arguments were read but received a buffer of length 0 (detached or resized by a getter)',
    );
  });

  it('input in a SharedArrayBuffer is copied before it is validated; index arrays are always private copies', () => {
    const shared = new Float64Array(new SharedArrayBuffer(8 * 4));
    shared.set([1, 2, 3, 4]);
    const M = matrixFrom(shared, 2, 2);
    // Expected: a copy (another thread rewriting `shared` cannot change what was validated).
    expect(M.data).not.toBe(shared);
    expect(Array.from(M.data)).toEqual([1, 2, 3, 4]);
    const csr = toCsr(A);
    const snap = expectCsr(csr, 'C');
    expect(snap.indices).not.toBe(csr.indices);
    csr.indices[0] = 99;
    expect(snap.indices[0]).toBe(0);
    // A sync solve on shared CSR buffers gives the result of the same solve on ordinary ones.
    const c = toCsr(A);
    const share = <T extends Int32Array | Float64Array>(a: T): T => {
      const s = new (a.constructor as new (b: SharedArrayBuffer) => T)(new SharedArrayBuffer(a.byteLength));
      s.set(a as never);
      return s;
    };
    const onShared = { ...c, indptr: share(c.indptr), indices: share(c.indices), data: share(c.data) };
    expect(Array.from(nmfSync(onShared, 2, { maxIterations: 3 }).traces.loss)).toEqual(Array.from(nmfSync(c, 2, { maxIterations: 3 }).traces.loss));
  });
});

describe('memory is checked before it is allocated', () => {
  const wide = { rows: 1, cols: 65536, data: new Float64Array(65536).fill(1) };

  it('the k×k Gram of a wide input (32 GiB from a 512 KiB matrix) is refused, naming the argument and the bytes', () => {
    setMemoryLimit(2 ** 30);
    expect(getMemoryLimit()).toBe(2 ** 30);
    expect(() => invariantOrthogonalityDefect(wide)).toThrow(RangeError);
    expect(() => invariantOrthogonalityDefect(wide)).toThrow(
      'Not enough memory for the k×k Gram matrix of Y (1×65536, k = 65536): it needs 34359738368 bytes (32.0 GiB), over the memory limit of 1073741824 bytes (1.0 GiB)',
    );
    expect(() => basicOrthogonality(wide)).toThrow(/Not enough memory for the k×k Gram matrix of Y \(1×65536/);
    expect(() => procrustes(wide, wide)).toThrow(/Not enough memory for the k×k matrices AᵀB, U, V and Q of A and B/);
    expect(() => energy(wide, wide)).toThrow(/Not enough memory for the energy of Y \(1×65536\)/);
    expect(() => nsaFlowSync(wide, { optimizer: 'asgd', retraction: 'none' })).toThrow(/Not enough memory for the flow on Y0 \(1×65536\)/);
  });

  it('Khatri–Rao products and CP reconstructions of 65536-row factors are refused (V8 aborted before)', () => {
    setMemoryLimit(2 ** 30);
    const F = { rows: 65536, cols: 1, data: new Float64Array(65536).fill(1) };
    expect(() => khatriRao([F, F])).toThrow(RangeError);
    expect(() => khatriRao([F, F])).toThrow(/Not enough memory for the Khatri–Rao product of matrices \(4294967296×1\): it needs 34359738368 bytes/);
    expect(() => cpReconstruct([F, F])).toThrow(/Not enough memory for the reconstruction of factors \(shape \[65536, 65536\]\)/);
  });

  it('factors of a huge rank are refused before native work', () => {
    setMemoryLimit(2 ** 30);
    const T = { shape: [2, 2], data: Float64Array.of(1, 2, 3, 4) };
    expect(() => ntfSync(T, 2 ** 20)).toThrow(/Not enough memory for rank 1048576 with T of shape \[2, 2\]/);
    expect(() => stratifiedNtfSync([T], 2 ** 15, { strataRank: 1 })).toThrow(/Not enough memory for rank 32768 and strataRank up to 1 with 1 strata of trailing shape \[2\]/);
    expect(() => zeros(65536, 65536)).toThrow(/Not enough memory for a 65536×65536 matrix \(rows, cols\)/);
  });

  it("V8's typed-array length limit is checked as well", () => {
    const max = bufferConstants.MAX_LENGTH;
    expect(() => expectAllocatable(max + 1, 'the result')).toThrow(RangeError);
    expect(() => expectAllocatable(max + 1, 'the result')).toThrow(/values for the result \(the largest typed array of this Node.js\)/);
  });
});

describe('finite input that overflows gives the right answer or a NumericalError, never a silent NaN', () => {
  it('scale-invariant measures are computed on Y scaled by its largest magnitude', () => {
    // Parallel columns: (‖S‖² − Σ diag²)/‖Y‖⁴ = (16 − 8)/16 = 0.5 at any scale (NaN before: Y'Y overflowed).
    expect(invariantOrthogonalityDefect(m(2, 2, [1e300, 1e300, 1e300, 1e300]))).toBe(0.5);
    // Joint scaling leaves the default energy unchanged: equal to the energy of the scaled inputs.
    const big = energy(m(2, 1, [1e300, 1e300]), m(2, 1, [1e300, 5e299]));
    const small = energy(m(2, 1, [1, 1]), m(2, 1, [1, 0.5]));
    expect(big.total).toBeCloseTo(small.total, 12);
    expect(Number.isFinite(big.total)).toBe(true);
  });

  it('norms, polar retractions and singular values of huge matrices are exact', () => {
    expect(tensorNorm({ shape: [2], data: Float64Array.of(1e300, 1e300) })).toBeCloseTo(Math.SQRT2 * 1e300, -285);
    expect(frobeniusNorm(m(1, 2, [1e300, 1e300])) / 1e300).toBeCloseTo(Math.SQRT2, 14);
    const Y = m(3, 2, [1, 0.2, 0.3, 1, 0.5, 0.1]);
    const r = retract(Y, { type: 'polar' });
    const rBig = retract(m(3, 2, Array.from(Y.data, (v) => v * 1e300)), { type: 'polar' });
    rBig.data.forEach((v, i) => expect(v / 1e300).toBeCloseTo(r.data[i]!, 12));
    expect(Array.from(svd(m(2, 2, [1e300, 0, 0, 1e300])).S)).toEqual([1e300, 1e300]);
  });

  it('measures that are not scale-invariant report the overflow as a NumericalError naming the function', () => {
    expect(() => energy(m(2, 1, [1e300, 1]), m(2, 1, [1, 1]))).toThrow(NumericalError);
    // The addon's own guard sees it first (its second line of defence checks the energy it computed).
    expect(() => energy(m(2, 1, [1e300, 1]), m(2, 1, [1, 1]))).toThrow(/^The energy is not finite \(the values of Y or X0 are too large to square\)/);
    expect(() => basicOrthogonality(m(2, 2, [1e300, 1e300, 1e300, 1e300]))).toThrow(NumericalError);
    expect(() => retract(m(2, 2, [1e300, 1, 1, 1e300]), { type: 'softPolar', w: 0.5 })).toThrow(
      /retract\(\): ‖Y‖² overflows a double .* retraction 'softPolar' with w = 0.5 is not scale-invariant/,
    );
    expect(() => optimizerSteps('adam', m(1, 1, [1]), [m(1, 1, [1e300])], 0.1)).toThrow(NumericalError);
    expect(() => nmfSync(m(3, 2, [1e300, 1e300, 1, 2, 3, 4]), 1, { maxIterations: 3 })).toThrow(NumericalError);
    expect(() => nmfSync(m(3, 2, [1e300, 1e300, 1, 2, 3, 4]), 1, { maxIterations: 3 })).toThrow(/^nmfSync\(\): .*non-finite.*rescale A$/);
  });
});

describe('unknown option names suggest the nearest valid one', () => {
  it('in every option-spec check', () => {
    expect(() => nmfSync(A, 1, { maxIter: 3 } as never)).toThrow(TypeError);
    expect(() => nmfSync(A, 1, { maxIter: 3 } as never)).toThrow(
      "Unknown option 'maxIter' for nmfSync(); valid options are: maxIterations, tolerance, lossEvery, seed, epsilon, certificateTolerance, restarts, solver, loss, init, weights, mask, missing, l1W, l2W, l1H, l2H, device (did you mean maxIterations?)",
    );
    expect(() => retract(A, { type: 'polr' } as never)).toThrow(/but received the string "polr" \(did you mean 'polar'\?\)$/);
  });

  it("in the other unknown-key checks (khatriRao's options, given factors)", () => {
    expect(() => khatriRao([A], { skp: 0 } as never)).toThrow("Unknown option 'skp' for khatriRao(); valid options are: skip (did you mean skip?)");
    expect(() => stratifiedNmfSync([A], 1, { init: { w: [A] } } as never)).toThrow(
      "Unknown key 'w' in options.init of stratifiedNmfSync(); valid keys are: V, W, H (did you mean W?)",
    );
  });

  it('and none when nothing is close', () => {
    expect(() => nmfSync(A, 1, { zzzzzz: 1 } as never)).toThrow(/valid options are: maxIterations, tolerance, lossEvery, seed, epsilon, certificateTolerance, restarts, solver, loss, init, weights, mask, missing, l1W, l2W, l1H, l2H, device$/);
    expect(() => matrix([[1], [2, 3]])).toThrow('Expected rows[1] to be an array of length 1 (all rows equally long) but received an array of length 2');
  });
});

describe('options are the caller’s own properties only', () => {
  it('a property added to Object.prototype is not taken as an option', () => {
    // Without the own-property rule, every call in the process would run 1e8 iterations.
    (Object.prototype as Record<string, unknown>).maxIterations = 1e8;
    try {
      expect(nmfSync(A, 1, { maxIterations: 2 }).iterations).toBe(2);
      expect(nmfSync(A, 1, {}).settings.maxIterations).toBe(200); // the documented default
    } finally {
      delete (Object.prototype as Record<string, unknown>).maxIterations;
    }
  });
});

describe('JS arrays are bounded by the V8 heap, not only by the machine', () => {
  it('a sparse array claiming 2^31 rows is refused before it is copied (the copy would abort V8)', () => {
    const sparse: number[][] = [];
    sparse.length = 2 ** 31;
    expect(() => matrix(sparse)).toThrow(RangeError);
    expect(() => matrix(sparse)).toThrow(/^Not enough JavaScript heap for a copy of rows: 2147483648 entries need at least 17179869184 bytes/);
  });
});
