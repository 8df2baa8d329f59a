import {
  describeValue,
  expectAllocatable,
  expectFloat64Array,
  expectName,
  expectShapeInteger,
  readList,
  shapeProduct,
  typedArrayName,
} from './validate.js';

/** A dense tensor in C order (last index fastest). */
export interface Tensor {
  readonly shape: readonly number[];
  readonly data: Float64Array;
}

/** Highest tensor order the native kernels accept (and the deepest nesting tensor() follows). */
export const maxTensorOrder = 32;

const isList = (v: unknown): boolean => Array.isArray(v) || (typedArrayName(v) !== undefined && !typedArrayName(v)!.startsWith('Big'));

/**
 * Builds a Tensor from nested arrays of any depth 1 to 32, copying the values (each element is read
 * once). Entries may be any number; the functions that compute check finiteness.
 */
export function tensor(nested: unknown, name = 'tensor'): Tensor {
  expectName(name, 'name');
  if (!isList(nested)) throw new TypeError(`Expected nested arrays of numbers for ${name} but received ${describeValue(nested)}`);
  // The shape follows the first element at each depth; a self-containing array stops at the order limit.
  const shape: number[] = [];
  let probe: unknown = nested;
  let first: unknown[] = [];
  const firstLists: unknown[][] = [];
  while (isList(probe)) {
    if (shape.length === maxTensorOrder) {
      throw new RangeError(`Expected nested arrays at most ${maxTensorOrder} deep for ${name} but received deeper ones`);
    }
    first = readList(probe, `${name}${'[0]'.repeat(shape.length)}`, 'an array');
    if (first.length === 0) throw new RangeError(`Expected non-empty arrays for ${name} but found an empty one at depth ${shape.length}`);
    shape.push(first.length);
    firstLists.push(first);
    probe = first[0];
  }
  const size = shapeProduct(shape, name);
  expectAllocatable(size, `the tensor built from ${name} ([${shape.join(', ')}])`);
  const data = new Float64Array(size);
  let offset = 0;
  const walk = (node: unknown, depth: number, path: string, read?: unknown[]): void => {
    if (depth === shape.length) {
      if (typeof node !== 'number') throw new TypeError(`Expected a number at ${name}${path} but received ${describeValue(node)}`);
      data[offset++] = node;
      return;
    }
    if (!isList(node)) throw new TypeError(`Expected an array at ${name}${path} but received ${describeValue(node)}`);
    const arr = read ?? readList(node, `${name}${path}`, 'an array', shape[depth]!);
    if (arr.length !== shape[depth]) {
      throw new RangeError(`Expected ${name}${path} to have length ${shape[depth]} (a regular shape) but received ${describeValue(node)}`);
    }
    for (let i = 0; i < arr.length; i++) {
      // The first element at each depth was read while probing the shape: reuse it (one read each).
      const reuse = i === 0 && read !== undefined ? firstLists[depth + 1] : undefined;
      walk(arr[i], depth + 1, `${path}[${i}]`, reuse);
    }
  };
  walk(nested, 0, '', firstLists[0]);
  return { shape, data };
}

/** Wraps a flat C-order buffer as a Tensor (no copy unless the buffer is shared or resizable). */
export function tensorFrom(data: Float64Array, shape: readonly number[], name = 'data'): Tensor {
  expectName(name, 'name');
  if (!Array.isArray(shape)) {
    throw new TypeError(`Expected a non-empty array of dimensions for the shape of ${name} but received ${describeValue(shape)}`);
  }
  const dims = readList(shape, `the shape of ${name}`, 'an array of dimensions', maxTensorOrder + 1);
  if (dims.length === 0 || dims.length > maxTensorOrder) {
    throw new RangeError(`Expected 1 to ${maxTensorOrder} dimensions for the shape of ${name} but received ${dims.length}`);
  }
  const checked = dims.map((d, i) => expectShapeInteger(d, `shape[${i}] of ${name}`));
  const n = shapeProduct(checked, name);
  return { shape: checked, data: expectFloat64Array(data, name, n, checked.join('*')) };
}
