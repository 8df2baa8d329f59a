// Minimal private readers for the real data of the NMF tests and the text example: gzipped
// MatrixMarket coordinate files (→ CSR), .npy float64 C-order arrays, the corpora's docs CSV and
// vocabularies. Stand-ins until lib/io lands; they read only the formats of ../shared/data.
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { gunzipSync } from 'node:zlib';

import type { CsrMatrix, Matrix } from '../../lib/matrix.js';

/** A `%%MatrixMarket matrix coordinate real general` file (optionally .gz), 1-based, as CSR. */
export function readMtx(path: string): CsrMatrix {
  let bytes = readFileSync(path);
  if (path.endsWith('.gz')) bytes = gunzipSync(bytes);
  const lines = bytes.toString('utf8').split('\n');
  if (!/^%%MatrixMarket matrix coordinate (real|integer) general/.test(lines[0] ?? '')) {
    throw new Error(`${path}: not a coordinate real general MatrixMarket file`);
  }
  let k = 1;
  while (lines[k]!.startsWith('%')) k++;
  const [rows, cols, nnz] = lines[k++]!.trim().split(/\s+/).map(Number) as [number, number, number];
  const r = new Int32Array(nnz);
  const c = new Int32Array(nnz);
  const v = new Float64Array(nnz);
  for (let e = 0; e < nnz; e++, k++) {
    const [i, j, x] = lines[k]!.trim().split(/\s+/);
    r[e] = Number(i) - 1;
    c[e] = Number(j) - 1;
    v[e] = Number(x);
  }
  // Entries may come in any order: counting sort by row, then sort each row by column.
  const indptr = new Int32Array(rows + 1);
  for (let e = 0; e < nnz; e++) indptr[r[e]! + 1]!++;
  for (let i = 0; i < rows; i++) indptr[i + 1]! += indptr[i]!;
  const next = indptr.slice(0, rows);
  const order = new Int32Array(nnz);
  for (let e = 0; e < nnz; e++) order[next[r[e]!]!++] = e;
  const indices = new Int32Array(nnz);
  const data = new Float64Array(nnz);
  for (let i = 0; i < rows; i++) {
    const row = Array.from(order.subarray(indptr[i]!, indptr[i + 1]!)).sort((a, b) => c[a]! - c[b]!);
    row.forEach((e, q) => {
      indices[indptr[i]! + q] = c[e]!;
      data[indptr[i]! + q] = v[e]!;
    });
  }
  return { rows, cols, indptr, indices, data };
}

/** A little-endian float64 C-order .npy file with a 2-D shape. */
export function readNpy(path: string): Matrix {
  let bytes = readFileSync(path);
  if (path.endsWith('.gz')) bytes = gunzipSync(bytes);
  const headerLength = bytes.readUInt16LE(8);
  const header = bytes.subarray(10, 10 + headerLength).toString('latin1');
  if (!header.includes("'<f8'") || header.includes("'fortran_order': True")) throw new Error(`${path}: expected '<f8' C order`);
  const shape = /'shape': \((\d+), (\d+)\)/.exec(header);
  if (!shape) throw new Error(`${path}: expected a 2-D shape`);
  const rows = Number(shape[1]);
  const cols = Number(shape[2]);
  const start = 10 + headerLength;
  const data = new Float64Array(rows * cols);
  for (let i = 0; i < data.length; i++) data[i] = bytes.readDoubleLE(start + 8 * i);
  return { rows, cols, data };
}

/** One item per line (vocabularies). */
export function readLines(path: string): string[] {
  return readFileSync(path, 'utf8').split('\n').filter((l) => l.length > 0);
}

/** The `stratum` column of a corpus' docs CSV (index,doc_id,stratum,n_tokens_in_vocab; no quoted commas here). */
export function readStrata(path: string): string[] {
  const lines = readLines(path);
  const header = lines[0]!.split(',');
  const col = header.indexOf('stratum');
  return lines.slice(1).map((l) => {
    const f = l.split(',');
    return f[f.length - header.length + col]!; // doc_id may contain commas; count from the right
  });
}

/** A text corpus of ../shared/data/text: TF-IDF (CSR), vocabulary and per-document stratum. */
export function readCorpus(dataDir: string, name: 'austen' | 'fortunes' | 'reuters') {
  const dir = resolve(dataDir, 'text');
  return {
    tfidf: readMtx(resolve(dir, `${name}_tfidf.mtx.gz`)),
    vocab: readLines(resolve(dir, `${name}_vocab.txt`)),
    strata: readStrata(resolve(dir, `${name}_docs.csv`)),
  };
}
