import { expectFloat64Array, expectShapeInteger, shapeProduct } from './validate.js';

/** A dense tensor in C order (last index fastest). */
export interface Tensor {
  readonly shape: readonly number[];
  readonly data: Float64Array;
}

/** Builds a Tensor from nested arrays of any depth ≥ 1, copying the values. */
export function tensor(nested: unknown, name = 'tensor'): Tensor {
  const shape: number[] = [];
  let probe: unknown = nested;
  while (Array.isArray(probe) || ArrayBuffer.isView(probe)) {
    const len = (probe as ArrayLike<unknown>).length;
    if (len === 0) throw new RangeError(`Expected non-empty arrays for ${name} but found an empty one at depth ${shape.length}`);
    shape.push(len);
    probe = (probe as ArrayLike<unknown>)[0];
  }
  if (shape.length === 0) throw new TypeError(`Expected nested arrays of numbers for ${name} but received ${typeof nested}`);
  const data = new Float64Array(shapeProduct(shape, name));
  let offset = 0;
  const walk = (node: unknown, depth: number, path: string): void => {
    if (depth === shape.length) {
      if (typeof node !== 'number') throw new TypeError(`Expected a number at ${name}${path} but received ${typeof node}`);
      data[offset++] = node;
      return;
    }
    const arr = node as ArrayLike<unknown>;
    if (!(Array.isArray(arr) || ArrayBuffer.isView(arr)) || arr.length !== shape[depth]) {
      throw new RangeError(`Expected ${name}${path} to have length ${shape[depth]} (a regular shape) but it does not`);
    }
    for (let i = 0; i < arr.length; i++) walk(arr[i], depth + 1, `${path}[${i}]`);
  };
  walk(nested, 0, '');
  return { shape, data };
}

/** Wraps a flat C-order buffer as a Tensor (no copy). */
export function tensorFrom(data: Float64Array, shape: readonly number[], name = 'data'): Tensor {
  if (!Array.isArray(shape) || shape.length === 0) {
    throw new TypeError(`Expected a non-empty array of dimensions for the shape of ${name}`);
  }
  shape.forEach((d, i) => expectShapeInteger(d, `shape[${i}] of ${name}`));
  const n = shapeProduct(shape, name);
  expectFloat64Array(data, name, n, shape.join('*'));
  return { shape: [...shape], data };
}
