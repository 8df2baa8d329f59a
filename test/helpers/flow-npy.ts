// A tiny private reader for NumPy .npy files (format 1.0/2.0, little-endian float64, C order), enough
// for the real data sets in ../shared/data. Tests only; the library's own I/O lives elsewhere.
import { readFileSync } from 'node:fs';

import type { Matrix } from '../../lib/matrix.js';

export function readNpyMatrix(path: string): Matrix {
  const buf = readFileSync(path);
  if (buf.toString('latin1', 0, 6) !== '\x93NUMPY') throw new Error(`${path}: not a .npy file`);
  const major = buf[6]!;
  const headerLength = major === 1 ? buf.readUInt16LE(8) : buf.readUInt32LE(8);
  const start = major === 1 ? 10 : 12;
  const header = buf.toString('latin1', start, start + headerLength);
  if (!/'descr':\s*'<f8'/.test(header)) throw new Error(`${path}: expected little-endian float64 data`);
  if (!/'fortran_order':\s*False/.test(header)) throw new Error(`${path}: expected C (row-major) order`);
  const shape = /'shape':\s*\((\d+),\s*(\d+)\)/.exec(header);
  if (!shape) throw new Error(`${path}: expected a 2-D array`);
  const rows = Number(shape[1]);
  const cols = Number(shape[2]);
  const offset = start + headerLength;
  const data = new Float64Array(rows * cols);
  for (let i = 0; i < data.length; i++) data[i] = buf.readDoubleLE(offset + 8 * i);
  return { rows, cols, data };
}
