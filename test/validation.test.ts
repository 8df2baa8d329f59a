// Bad input never reaches native code: each class gets a TypeError/RangeError whose message names
// the argument, what was expected and what was received. A second guard in the addon makes direct
// calls of the raw binding with garbage throw instead of crashing.
import { describe, expect, it } from 'vitest';

import {
  inverseSqrt,
  invariantOrthogonalityDefect,
  matrix,
  matrixFrom,
  procrustes,
  qr,
  retract,
  retractAsync,
  retractBatch,
  tensor,
  tensorFrom,
  applyNonNegativity,
} from '../lib/index.js';
import { native } from '../lib/native.js';

const Y = matrix([
  [1, 2],
  [3, 4],
  [5, 7],
]);

describe('matrices and buffers', () => {
  it('rejects a non-Float64Array buffer, naming the expected length and what was received', () => {
    const bad = { rows: 40, cols: 30, data: new Float32Array(1200) };
    expect(() => invariantOrthogonalityDefect(bad as never)).toThrow(TypeError);
    expect(() => invariantOrthogonalityDefect(bad as never)).toThrow(
      'Expected a Float64Array of length 1200 (rows*cols) for Y.data but received a Float32Array of length 1200',
    );
  });

  it('rejects a buffer whose length is not rows·cols', () => {
    expect(() => retract({ rows: 3, cols: 2, data: new Float64Array(5) })).toThrow(RangeError);
    expect(() => retract({ rows: 3, cols: 2, data: new Float64Array(5) })).toThrow(
      /Expected a Float64Array of length 6 \(rows\*cols\) for Y\.data but received a Float64Array of length 5/,
    );
    expect(() => matrixFrom(new Float64Array(5), 2, 3)).toThrow(/length 6 \(rows\*cols\) for data/);
  });

  it('rejects zero rows or columns and non-integer dimensions', () => {
    expect(() => retract({ rows: 0, cols: 2, data: new Float64Array(0) })).toThrow(RangeError);
    expect(() => retract({ rows: 0, cols: 2, data: new Float64Array(0) })).toThrow(
      'Expected a positive integer for Y.rows but received 0',
    );
    expect(() => retract({ rows: 2, cols: 1.5, data: new Float64Array(3) } as never)).toThrow(TypeError);
    expect(() => matrix([])).toThrow(/Expected at least one row for rows/);
    expect(() => matrix([[1, 2], [3]])).toThrow(/Expected rows\[1\] to be an array of length 2/);
  });

  it('rejects something that is not a matrix at all', () => {
    expect(() => retract(new Float64Array(6) as never)).toThrow(TypeError);
    expect(() => retract(new Float64Array(6) as never)).toThrow(
      /Expected a Matrix \{rows, cols, data: Float64Array\} for Y but received a Float64Array of length 6/,
    );
    expect(() => retract(null as never)).toThrow(/for Y but received null/);
  });

  it('rejects NaN and Inf entries, naming the position', () => {
    const withNaN = matrix([
      [1, 2],
      [3, NaN],
      [5, 6],
    ]);
    expect(() => retract(withNaN)).toThrow(RangeError);
    expect(() => retract(withNaN)).toThrow('Expected finite values in Y but received NaN at [1, 1]');
    const withInf = matrix([[1, Infinity], [0, 1]]);
    expect(() => invariantOrthogonalityDefect(withInf)).toThrow('Expected finite values in Y but received Infinity at [0, 1]');
    expect(() => inverseSqrt(matrix([[1, -Infinity], [0, 1]]))).toThrow(/finite values in A .*-Infinity at \[0, 1\]/);
  });

  it('rejects k > p where an operation needs p ≥ k', () => {
    const wide = matrix([[1, 2, 3]]);
    expect(() => retract(wide, { type: 'polar' })).toThrow(RangeError);
    expect(() => retract(wide, { type: 'polar' })).toThrow(
      "Expected rows ≥ cols (p ≥ k) for Y with retraction 'polar' but received 1×3",
    );
    expect(() => qr(wide)).toThrow('Expected a matrix with rows ≥ cols (p ≥ k) for Y but received 1×3');
    // normalize and none are defined for any shape
    expect(retract(wide, { type: 'normalize' }).cols).toBe(3);
  });

  it('rejects non-square inputs to inverseSqrt and mismatched Procrustes shapes', () => {
    expect(() => inverseSqrt(Y)).toThrow('Expected a square matrix for A but received 3×2');
    expect(() => procrustes(Y, matrix([[1, 2]]))).toThrow('Expected B to have the shape of A (3×2) but received 1×2');
  });
});

describe('options', () => {
  it('rejects w outside [0, 1]', () => {
    expect(() => retract(Y, { w: 1.5 })).toThrow(RangeError);
    expect(() => retract(Y, { w: 1.5 })).toThrow('Expected a finite number in [0, 1] for options.w of retract() but received 1.5');
    expect(() => retract(Y, { w: -0.1 })).toThrow(/in \[0, 1\] for options.w of retract\(\) but received -0.1/);
    expect(() => retract(Y, { w: NaN })).toThrow(TypeError);
    expect(() => retract(Y, { w: '0.5' as never })).toThrow(/for options.w of retract\(\) but received the string "0.5"/);
  });

  it('rejects an unknown retraction name and lists the valid ones', () => {
    expect(() => retract(Y, { type: 'qr' as never })).toThrow(RangeError);
    expect(() => retract(Y, { type: 'qr' as never })).toThrow(
      "Expected one of 'none', 'polar', 'softPolar', 'newtonSchulz', 'softNewtonSchulz', 'quinticNewtonSchulz', 'softQuinticNewtonSchulz', 'cayley', 'softCayley', 'normalize' for options.type of retract() but received the string \"qr\"",
    );
    expect(() => applyNonNegativity(Y, 'relu' as never)).toThrow("Expected one of 'none', 'hard', 'softplus' for mode");
  });

  it('rejects non-integer or negative iteration counts', () => {
    expect(() => retract(Y, { type: 'newtonSchulz', nsIterations: 2.5 })).toThrow(RangeError);
    expect(() => retract(Y, { type: 'newtonSchulz', nsIterations: 2.5 })).toThrow(
      'Expected an integer in [0, 10000] for options.nsIterations of retract() but received 2.5',
    );
    expect(() => retract(Y, { nsIterations: -1 })).toThrow(/integer in \[0, 10000\] .* received -1/);
    expect(() => inverseSqrt(matrix([[2]]), { nsIterations: 1e9 })).toThrow(/options.nsIterations of inverseSqrt\(\)/);
  });

  it('rejects unknown option keys (a typo is not silently ignored)', () => {
    expect(() => retract(Y, { wRetract: 0.5 } as never)).toThrow(TypeError);
    expect(() => retract(Y, { wRetract: 0.5 } as never)).toThrow(
      "Unknown option 'wRetract' for retract(); valid options are: type, w, nsIterations, polarMethod",
    );
    expect(() => retract(Y, 5 as never)).toThrow('Expected an options object for retract() but received 5');
  });

  it('async forms reject (not throw) with the same errors, before any native work', async () => {
    await expect(retractAsync(Y, { w: 2 })).rejects.toThrow(RangeError);
    await expect(retractAsync(Y, { signal: 'no' as never })).rejects.toThrow(
      /Expected an AbortSignal for options.signal of retractAsync\(\) but received the string "no"/,
    );
    await expect(retractAsync(Y, { onProgress: 1 as never })).rejects.toThrow(/Expected a function for options.onProgress/);
  });
});

describe('batches and tensors', () => {
  it('rejects a batch whose data does not match its shape, and a shape of the wrong order', () => {
    expect(() => retractBatch({ shape: [3, 20, 4], data: new Float64Array(3 * 20 * 4 - 1) })).toThrow(
      /Expected a Float64Array of length 240 \(B\*p\*k\) for Y.data but received a Float64Array of length 239/,
    );
    expect(() => retractBatch({ shape: [20, 4], data: new Float64Array(80) })).toThrow(
      'Expected a batch of shape [B, p, k] for Y but received a shape of 2 dimensions',
    );
  });

  it('rejects ragged nested arrays for a tensor and mismatched flat buffers', () => {
    expect(() => tensor([[[1, 2]], [[3]]])).toThrow(/to have length 2 \(a regular shape\)/);
    expect(() => tensorFrom(new Float64Array(5), [2, 3])).toThrow(/length 6 \(2\*3\) for data/);
    expect(() => tensorFrom(new Float64Array(0), [2 ** 20, 2 ** 20, 2 ** 10])).toThrow(/at most 2\^32 elements/);
  });
});

describe('the raw binding guards itself', () => {
  const raw = native();
  it('throws TypeError/RangeError instead of crashing on garbage arguments', () => {
    expect(() => raw.defect(new Float32Array(6) as never, 3, 2)).toThrow(TypeError);
    expect(() => raw.defect(new Float64Array(5), 3, 2)).toThrow(/Expected a Float64Array of length 6 \(rows·cols\) for Y but received a Float64Array of length 5/);
    expect(() => raw.retract(new Float64Array(6), 0, 3, 2, 'bogus', 1, 5, 'auto')).toThrow(/Expected one of .*'polar'/);
    expect(() => raw.retract(new Float64Array(6), 0, 3, 2, 'polar', 7, 5, 'auto')).toThrow(/Expected a number in \[0, 1\] for w but received 7/);
    expect(() => raw.retract(new Float64Array(6), 0, -3, 2, 'polar', 1, 5, 'auto')).toThrow(RangeError);
    expect(() => raw.retract(new Float64Array(6), 0, 3e15, 2e15, 'polar', 1, 5, 'auto')).toThrow(/Expected an integer in \[1, 2147483647\] for rows but received 3000000000000000/);
    expect(() => (raw.qr as (...a: unknown[]) => unknown)()).toThrow(TypeError);
    expect(() => raw.inverseSqrt(new Float64Array([1, NaN, 0, 1]), 2, 'eig', 1e-8, 4)).toThrow(/Expected finite values in A but received NaN at index 1/);
    expect(() => raw.svd(new Float64Array([Infinity, 0, 0, 1]), 2, 2)).toThrow(/Expected finite values in Y but received Infinity at index 0/);
    expect(() => raw.cancel({} as never)).toThrow(/cancel token/);
    expect(() => raw.retractAsync(new Float64Array(6), 0, 3, 2, 'polar', 1, 5, 'auto', {} as never, undefined, 50)).toThrow(
      /cancel token/,
    );
  });

  it('a raw retraction of a non-finite matrix returns it unchanged (the reference semantics), never hangs', () => {
    const bad = new Float64Array([1, NaN, 3, 4, 5, 6]);
    const r = raw.retract(bad, 0, 3, 2, 'polar', 1, 5, 'svd');
    expect(r.changed).toBe(false);
    expect(Object.is(r.data[1], NaN)).toBe(true);
  });
});
