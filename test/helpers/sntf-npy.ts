// A tiny private reader for the NumPy .npy files in ../shared/data (format 1.0, '<f8', C order), used
// by the Stratified-NTF example and benchmark so they do not depend on lib/io (written separately).
// It also reads the first integer column after `index` of the matching labels CSV.
import { readFileSync } from 'node:fs';

import type { Tensor } from '../../lib/tensor.js';

/** Reads a little-endian float64 C-order .npy file (format 1.0) into a Tensor. */
export function readNpy(path: string): Tensor {
  const bytes = readFileSync(path);
  if (bytes.toString('latin1', 0, 6) !== '\x93NUMPY' || bytes[6] !== 1) {
    throw new Error(`${path}: not a NumPy format 1.0 file`);
  }
  const headerLength = bytes.readUInt16LE(8);
  const header = bytes.toString('latin1', 10, 10 + headerLength);
  if (!/'descr':\s*'<f8'/.test(header) || !/'fortran_order':\s*False/.test(header)) {
    throw new Error(`${path}: expected descr '<f8' and fortran_order False, found ${header.trim()}`);
  }
  const shapeText = /'shape':\s*\(([^)]*)\)/.exec(header)?.[1];
  if (shapeText === undefined) throw new Error(`${path}: no shape in header`);
  const shape = shapeText.split(',').map((s) => s.trim()).filter((s) => s.length > 0).map(Number);
  const n = shape.reduce((a, b) => a * b, 1);
  const offset = 10 + headerLength;
  const data = new Float64Array(n);
  // Copy through a DataView: the payload offset need not be 8-byte aligned in the Buffer's memory.
  const view = new DataView(bytes.buffer, bytes.byteOffset + offset, n * 8);
  for (let i = 0; i < n; i++) data[i] = view.getFloat64(i * 8, true);
  return { shape, data };
}

/** The `label` column of a labels CSV whose first columns are `index,label`. */
export function readLabels(path: string): number[] {
  const lines = readFileSync(path, 'utf8').trim().split('\n');
  if (!/^index,label\b/.test(lines[0]!)) throw new Error(`${path}: expected a header starting with index,label`);
  return lines.slice(1).map((line) => Number(line.split(',')[1]));
}

/** Splits the samples (first mode) of T by label, in label order: one stratum per distinct label. */
export function strataByLabel(T: Tensor, labels: readonly number[]): { labels: number[]; strata: Tensor[] } {
  const rest = T.shape.slice(1);
  const size = rest.reduce((a, b) => a * b, 1);
  const distinct = [...new Set(labels)].sort((a, b) => a - b);
  const strata = distinct.map((label) => {
    const rows = labels.flatMap((l, i) => (l === label ? [i] : []));
    const data = new Float64Array(rows.length * size);
    rows.forEach((row, k) => data.set(T.data.subarray(row * size, (row + 1) * size), k * size));
    return { shape: [rows.length, ...rest], data };
  });
  return { labels: distinct, strata };
}
