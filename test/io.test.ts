// Tests of lib/io: every file of data/ (and of the optional larger data folder, when present) read back
// against the values its README publishes
// (shapes, min/max/mean/non-zeros, nnz, sha256), write→read round trips, hand-made NumPy variants
// (Fortran order, f4/int/bool dtypes, format 2.0/3.0), MatrixMarket variants, CSV quoting, and one test per
// class of corrupted file asserting the error class, code, place and message.
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';

import { afterAll, describe, expect, it } from 'vitest';

import {
  csrToDense,
  denseToCsr,
  encodeNpy,
  FormatError,
  formatMatrixMarket,
  parseCsv,
  parseMatrixMarket,
  parseNpy,
  readCsv,
  readLabels,
  readMatrix,
  readMatrixMarket,
  readNpy,
  readNpyHeader,
  readNpyMatrix,
  writeMatrixMarket,
  writeNpy,
} from '../lib/io/index.js';
import type { CsrMatrix } from '../lib/matrix.js';
import { buildNpy, bytesOf, loadDataManifest, makeTempDir, matchesPrinted, sha256, stats, type DenseRow, type ManifestRow, type SparseRow } from './helpers/io-manifest.js';
import { bundledDataDir, optionalDataDir } from './helpers/shared.js';

// The optional larger data folder holds all 46 files of the data sets data/ was taken from; CI has it
// beside the clone, a user's clone need not.
const haveData = existsSync(join(optionalDataDir, 'README.md'));
if (!haveData) console.warn(`skipped the read-back of the optional data folder: ${join(optionalDataDir, 'README.md')} not found (set NSA_FLOW_SHARED)`);
const manifest = haveData ? loadDataManifest(optionalDataDir) : { dense: [], sparse: [], files: [] };
const bundled = loadDataManifest(bundledDataDir);
const tmp = makeTempDir();
afterAll(() => tmp.cleanup());
const tmpFile = (name: string): string => join(tmp.dir, name);
const data = (rel: string): string => join(optionalDataDir, rel);

/** Runs fn, which must throw; returns what it threw. */
function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (err) {
    return err;
  }
  throw new Error('expected the call to throw');
}

/** Runs fn, which must throw a FormatError; returns it. */
function formatError(fn: () => unknown): FormatError {
  const err = thrown(fn);
  // Content problems are FormatErrors (not TypeError/RangeError), so callers can tell them from bad arguments.
  expect(err).toBeInstanceOf(FormatError);
  return err as FormatError;
}

/** Counts of each distinct string. */
function tally(values: readonly string[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const v of values) out[v] = (out[v] ?? 0) + 1;
  return out;
}

/** The .npy bytes as stored (gunzipped for .npy.gz). */
function rawNpyBytes(path: string): Buffer {
  const bytes = readFileSync(path);
  return path.endsWith('.gz') ? gunzipSync(bytes) : bytes;
}

/** Lines of a one-item-per-line list file. */
function listFile(rel: string, dir = optionalDataDir): string[] {
  return readFileSync(join(dir, rel), 'utf8').replace(/\n$/, '').split('\n');
}

function expectSortedCsr(m: CsrMatrix): void {
  let ok = true;
  for (let r = 0; r < m.rows && ok; r++) {
    for (let p = m.indptr[r]! + 1; p < m.indptr[r + 1]!; p++) if (m.indices[p]! <= m.indices[p - 1]!) ok = false;
  }
  // CSR output promises strictly increasing column indices within each row (sorted, duplicates summed).
  expect(ok).toBe(true);
}

/** Reads one row of a dense read-back table and checks it (dir: the data folder, files: its manifest). */
function checkDenseRow(dir: string, row: DenseRow, files: ManifestRow[]): void {
  const path = join(dir, row.file);
  const t = readNpy(path);
  // Shape as published (rows = observations, C order).
  expect(t.shape).toEqual(row.shape);
  const s = stats(t.data);
  // min/max/mean were printed with 6 significant digits (%.6g): the values read must round to them.
  expect({ min: s.min, ok: matchesPrinted(s.min, row.min) }).toEqual({ min: s.min, ok: true });
  expect({ max: s.max, ok: matchesPrinted(s.max, row.max) }).toEqual({ max: s.max, ok: true });
  // The mean of multtest_golub is ~-7e-9 (a cancelling sum), so allow summation-order noise of 1e-12·mean|x|.
  const meanOk = matchesPrinted(s.mean, row.mean) || Math.abs(s.mean - row.mean) <= 1e-12 * s.meanAbs;
  expect({ mean: s.mean, ok: meanOk }).toEqual({ mean: s.mean, ok: true });
  // numpy.count_nonzero, exactly.
  expect(s.nonzeros).toBe(row.nonzeros);

  const header = readNpyHeader(path);
  // Every data file is format 1.0, '<f8', C order, data 64-byte aligned (README "File formats").
  expect([header.version, header.descr, header.fortranOrder, header.dataOffset % 64]).toEqual([[1, 0], '<f8', false, 0]);
  expect(row.header).toContain(`'shape': (${row.shape.join(', ')})`);

  const raw = rawNpyBytes(path);
  // sha256 of the data read equals sha256 of the file's data bytes: every double arrives bit for bit.
  expect(sha256(bytesOf(t.data))).toBe(sha256(raw.subarray(header.dataOffset)));

  // Writing it back gives the very bytes NumPy wrote (same header, same data); for plain files that is
  // the sha256 of the manifest.
  const out = tmpFile(basename(row.file).replace(/\.gz$/, ''));
  writeNpy(out, t);
  const written = readFileSync(out);
  expect(sha256(written)).toBe(sha256(raw));
  const listed = files.find((f) => f.file === row.file)!;
  if (!row.file.endsWith('.gz')) expect(sha256(written).slice(0, 16)).toBe(listed.sha256Prefix);
}

/** Reads one row of a sparse read-back table and checks it with its docs and vocabulary files. */
function checkSparseRow(dir: string, row: SparseRow): void {
  const path = join(dir, row.file);
  const m = readMatrixMarket(path);
  // Shape and nnz as published; every stored entry is distinct, so nothing was summed away.
  expect([m.rows, m.cols, m.indptr[m.rows], m.indices.length, m.data.length]).toEqual([row.rows, row.cols, row.nnz, row.nnz, row.nnz]);
  expectSortedCsr(m);
  const s = stats(m.data);
  // min/max of the stored values, printed with 6 significant digits.
  expect([matchesPrinted(s.min, row.min), matchesPrinted(s.max, row.max)]).toEqual([true, true]);
  // Row 2-norms: TF-IDF rows are unit vectors; count rows match the printed 3-digit range.
  const norms = Array.from({ length: m.rows }, (_, r) => {
    let q = 0;
    for (let p = m.indptr[r]!; p < m.indptr[r + 1]!; p++) q += m.data[p]! ** 2;
    return Math.sqrt(q);
  });
  if (row.rowNorms === 'unit') expect(Math.max(...norms.map((x) => Math.abs(x - 1)))).toBeLessThan(1e-12);
  else expect([matchesPrinted(Math.min(...norms), row.rowNorms[0], 3), matchesPrinted(Math.max(...norms), row.rowNorms[1], 3)]).toEqual([true, true]);

  // Documents and vocabulary files describe the rows and columns.
  const base = row.file.replace(/_(tfidf|counts)\.mtx\.gz$/, '');
  const docs = readCsv(join(dir, `${base}_docs.csv`), { columns: ['n_tokens_in_vocab'], labelColumn: 'stratum' });
  expect(docs.matrix.rows).toBe(m.rows);
  expect(listFile(`${base}_vocab.txt`, dir).length).toBe(m.cols);
  if (row.file.includes('_counts')) {
    // n_tokens_in_vocab is defined as the row sum of the counts (README §5).
    const sums = Array.from({ length: m.rows }, (_, r) => m.data.subarray(m.indptr[r], m.indptr[r + 1]).reduce((a, b) => a + b, 0));
    expect(sums).toEqual(Array.from(docs.matrix.data));
  }

  // Written back, the entry lines are character for character those of the file: same order, and
  // JavaScript's shortest round-trip number form equals Python's repr for these values, except that
  // repr writes integral floats as "1.0" where String() writes "1" (fortunes has 47 such TF-IDF values).
  const original = gunzipSync(readFileSync(path)).toString('utf8');
  const normalized = original
    .split('\n')
    .filter((line) => !line.startsWith('% '))
    .map((line) => line.replace(/^(\d+ \d+ -?\d+)\.0$/, '$1'))
    .join('\n');
  expect(formatMatrixMarket(m) === normalized).toBe(true);
}

/** Every file under dir, as paths relative to it with '/' separators. */
function filesUnder(dir: string): string[] {
  return (readdirSync(dir, { recursive: true }) as string[]).filter((f) => statSync(join(dir, f)).isFile()).map((f) => f.split('\\').join('/'));
}

/** Checks each manifest row's byte size and sha256 prefix against the file in dir. */
function expectManifest(dir: string, files: ManifestRow[]): void {
  for (const f of files) {
    const bytes = readFileSync(join(dir, f.file));
    // Size and hash prefix as published: the files the other tests compare against are the documented ones.
    expect({ file: f.file, bytes: bytes.length, sha: sha256(bytes).slice(0, 16) }).toEqual({ file: f.file, bytes: f.bytes, sha: f.sha256Prefix });
  }
}

describe('the data sets shipped in data/', () => {
  it('lists every file of data/ in its README, with its byte size and sha256', () => {
    // data/README.md: 7 dense arrays, 2 sparse matrices (Austen, fortunes); its manifest names exactly the
    // files that ship (24 copied from the published sets, 2 small CSV tables of our own in own-data/).
    expect([bundled.dense.length, bundled.sparse.length, bundled.files.length]).toEqual([7, 2, 26]);
    expect(bundled.files.map((f) => f.file).sort()).toEqual(filesUnder(bundledDataDir).filter((f) => f !== 'README.md').sort());
    expectManifest(bundledDataDir, bundled.files);
  });

  it.each(bundled.dense.map((row) => [row.file, row] as const))('%s against the read-back table', (_name, row) => checkDenseRow(bundledDataDir, row, bundled.files));
  it.each(bundled.sparse.map((row) => [row.file, row] as const))('%s against the read-back table', (_name, row) => checkSparseRow(bundledDataDir, row));

  it.skipIf(!haveData)('holds the very bytes of the optional folder\'s files (gunzipped where data/ compressed them)', () => {
    // own-data/ holds tables written for this project's docs, not copies of a published set.
    for (const f of bundled.files.filter((x) => !x.file.startsWith('own-data/'))) {
      const stored = readFileSync(join(bundledDataDir, f.file));
      const original = existsSync(data(f.file)) ? data(f.file) : data(f.file.replace(/\.gz$/, ''));
      const bytes = original.endsWith('.gz') || !f.file.endsWith('.gz') ? stored : gunzipSync(stored);
      // A copy, not a re-export: same bytes as the published file, so the published numbers apply.
      expect({ file: f.file, sha: sha256(bytes) }).toEqual({ file: f.file, sha: sha256(readFileSync(original)) });
    }
  });
});

describe.skipIf(!haveData)('the optional data folder', () => {
  it('has the README tables (override its location with NSA_FLOW_SHARED)', () => {
    // The README lists 12 dense arrays, 6 sparse matrices and 46 files; a parse that finds fewer is broken.
    expect([manifest.dense.length, manifest.sparse.length, manifest.files.length]).toEqual([12, 6, 46]);
  });

  it('holds every manifest file with its byte size and sha256', () => {
    expectManifest(optionalDataDir, manifest.files);
  });
});

describe.skipIf(!haveData)('real .npy files against the README read-back table', () => {
  it.each(manifest.dense.map((row) => [row.file, row] as const))('%s', (_name, row) => checkDenseRow(optionalDataDir, row, manifest.files));

  it('reads 2-D files as a Matrix and flattens image stacks on request', () => {
    const m = readNpyMatrix(data('sklearn_small/wine_X.npy'));
    // wine_X is 178 × 13 (README §7).
    expect([m.rows, m.cols]).toEqual([178, 13]);
    // A 3-D stack is not silently reshaped: the caller must ask for it.
    expect(thrown(() => readNpyMatrix(data('digits/digits_images.npy')))).toBeInstanceOf(RangeError);
    const flat = readNpyMatrix(data('digits/digits_images.npy'), { flatten: true });
    // 1797 images of 8 × 8 become 1797 rows of 64 pixels.
    expect([flat.rows, flat.cols]).toEqual([1797, 64]);
  });

  it('round-trips a gzipped array through writeNpy(.npy.gz) and readNpy', () => {
    const path = data('images/fashion_mnist_test1000_images.npy.gz');
    const t = readNpy(path);
    const out = tmpFile('fashion.npy.gz');
    writeNpy(out, t);
    // The .gz written is gzip of exactly the .npy bytes the shared file holds.
    expect(sha256(gunzipSync(readFileSync(out)))).toBe(sha256(rawNpyBytes(path)));
    const back = readNpy(out);
    // Same shape and bit-identical data after the round trip.
    expect(back.shape).toEqual([1000, 28, 28]);
    expect(sha256(bytesOf(back.data))).toBe(sha256(bytesOf(t.data)));
  });
});

describe.skipIf(!haveData)('real MatrixMarket files against the README sparse table', () => {
  it.each(manifest.sparse.map((row) => [row.file, row] as const))('%s', (_name, row) => checkSparseRow(optionalDataDir, row));

  it('gives the same matrix densely and as CSR, and dispatches by extension in readMatrix', () => {
    const path = data('text/reuters_tfidf.mtx.gz');
    const dense = readMatrixMarket(path, { format: 'dense' });
    const csr = readMatrixMarket(path);
    // The dense reading is the CSR one expanded: 70 × 786 with the same values in the same places.
    expect([dense.rows, dense.cols]).toEqual([70, 786]);
    expect(sha256(bytesOf(csrToDense(csr).data))).toBe(sha256(bytesOf(dense.data)));
    // readMatrix: MatrixMarket → CSR by default, .npy → dense, .csv → its numeric columns.
    expect('indptr' in readMatrix(path)).toBe(true);
    expect(readMatrix(path, { format: 'dense' }).data.length).toBe(70 * 786);
    const npy = readMatrix(data('sklearn_small/wine_X.npy'));
    expect(['indptr' in npy, (npy as { rows: number }).rows]).toEqual([false, 178]);
    // wine_labels.csv (index, label, label_name) holds a text column: an error naming it, not a silent skip.
    expect(formatError(() => readMatrix(data('sklearn_small/wine_labels.csv'))).message).toMatch(/column "label_name" in data row 1 but received "class_0"/);
    // Unknown extensions are an argument problem, not a content problem.
    expect(thrown(() => readMatrix(data('README.md')))).toBeInstanceOf(RangeError);
  });

  it('round-trips reuters through writeMatrixMarket(.mtx.gz)', () => {
    const m = readMatrixMarket(data('text/reuters_tfidf.mtx.gz'));
    const out = tmpFile('reuters.mtx.gz');
    writeMatrixMarket(out, m, { comments: ['written by the io test'] });
    const back = readMatrixMarket(out);
    // Identical structure and bit-identical values (shortest round-trip decimal form).
    expect([Array.from(back.indptr), Array.from(back.indices)]).toEqual([Array.from(m.indptr), Array.from(m.indices)]);
    expect(sha256(bytesOf(back.data))).toBe(sha256(bytesOf(m.data)));
  });
});

describe.skipIf(!haveData)('real CSV and list files', () => {
  it.each([
    ['ames', 'price_quartile', { Q1: 739, Q2: 728, Q3: 732, Q4: 731 }, [2930, 31]],
    ['lending_club', 'income_quartile', { Q1: 2765, Q2: 2164, Q3: 2476, Q4: 2452 }, [9857, 17]],
  ] as const)('%s.csv: the listed columns equal its _X.npy exactly; strata column %s', (name, strata, counts, shape) => {
    const columns = listFile(`tabular/${name}_columns.txt`);
    const t = readCsv(data(`tabular/${name}.csv`), { columns, labelColumn: strata });
    const x = readNpyMatrix(data(`tabular/${name}_X.npy`));
    // README §6: the .npy is those columns of the CSV, same row order, so the doubles are identical.
    expect([t.matrix.rows, t.matrix.cols]).toEqual(shape);
    expect(t.colNames).toEqual(columns);
    expect(sha256(bytesOf(t.matrix.data))).toBe(sha256(bytesOf(x.data)));
    // The strata counts of README §6.
    expect(tally(t.labels!)).toEqual(counts);
  });

  it.each([
    ['digits/digits_labels.csv', 'label', { 0: 178, 1: 182, 2: 177, 3: 183, 4: 181, 5: 182, 6: 181, 7: 179, 8: 174, 9: 180 }],
    ['sklearn_small/breast_cancer_labels.csv', 'label_name', { malignant: 212, benign: 357 }],
    ['sklearn_small/wine_labels.csv', 'label', { 0: 59, 1: 71, 2: 48 }],
    ['tissue/tissue_labels.csv', 'tissue', { cerebellum: 38, colon: 34, endometrium: 15, hippocampus: 31, kidney: 39, liver: 26, placenta: 6 }],
    ['leukemia_all/ALL_labels.csv', 'is_T', { 1: 33, 0: 95 }],
    ['leukemia_all/ALL_labels.csv', 'mol_biol', { 'BCR/ABL': 37, NEG: 74, 'ALL1/AF4': 10, 'E2A/PBX1': 5, 'NUP-98': 1, 'p15/p16': 1 }],
    ['golub/esGolub_labels.csv', 'Cell', { 'B-cell': 19, 'T-cell': 8, '': 11 }],
    ['golub/multtest_golub_labels.csv', 'golub_cl', { 0: 27, 1: 11 }],
    ['images/lfw_subset_labels.csv', 'label_name', { face: 100, 'non-face': 100 }],
    ['images/fashion_mnist_test1000_labels.csv', 'label', Object.fromEntries(Array.from({ length: 10 }, (_, i) => [i, 100]))],
    ['text/austen_docs.csv', 'stratum', { 'Sense & Sensibility': 50, 'Pride & Prejudice': 61, 'Mansfield Park': 48, Emma: 55, 'Northanger Abbey': 31, Persuasion: 24 }],
    ['text/fortunes_docs.csv', 'stratum', { computers: 1044, food: 197, law: 203, medicine: 73, politics: 699, science: 623, sports: 146, startrek: 227 }],
    ['text/reuters_docs.csv', 'stratum', { acq: 50, crude: 20 }],
  ] as const)('%s: column %s has the README counts', (file, column, counts) => {
    // readLabels gives the strata; their counts are the ones README §1–§7 publish.
    expect(tally(readLabels(data(file), column))).toEqual(Object.fromEntries(Object.entries(counts).map(([k, v]) => [String(k), v])));
  });

  it('reads quoted fields, tab-separated files and NA cells', () => {
    const genes = readLabels(data('golub/esGolub_genes.csv'), 'description');
    // 5000 genes, one per esGolub column, even though ~700 descriptions are quoted and contain commas.
    expect(genes.length).toBe(5000);
    expect(genes).toContain('Calbindin 27 gene, exons 1 and 2, and Alu repeat');
    expect(readLabels(data('golub/multtest_golub_genes.csv'), 'name').length).toBe(3051);
    // ALL_pdata.tsv is tab-separated (chosen by extension); 128 samples.
    expect(readLabels(data('leukemia_all/ALL_pdata.tsv'), 'mol.biol').length).toBe(128);
    // ALL_labels.csv has empty is_BCRABL_vs_NEG cells and NA ages: an error by default…
    const err = formatError(() => readCsv(data('leukemia_all/ALL_labels.csv'), { columns: ['is_T', 'is_BCRABL_vs_NEG', 'age'] }));
    expect([err.code, err.line]).toEqual(['missing-value', 5]);
    expect(err.message).toMatch(/column "is_BCRABL_vs_NEG" in data row 4 but received an empty cell .*ALL_labels\.csv at line 5/);
    // …and NaN with {missing: NaN}: 17 samples are neither BCR/ABL nor NEG (README §1).
    const t = readCsv(data('leukemia_all/ALL_labels.csv'), { columns: ['is_BCRABL_vs_NEG', 'age'], missing: NaN });
    const col0 = Array.from({ length: t.matrix.rows }, (_, r) => t.matrix.data[r * 2]!);
    expect(col0.filter(Number.isNaN).length).toBe(17);
  });

  it('has one list line per matrix column', () => {
    // Probe/feature/gene/column lists name the columns of their arrays (README "Lists").
    const pairs: [string, number][] = [
      ['leukemia_all/ALL_probes.txt', 12625],
      ['leukemia_all/ALL_probes_top1000var.txt', 1000],
      ['sklearn_small/breast_cancer_features.txt', 30],
      ['sklearn_small/wine_features.txt', 13],
      ['tissue/tissue_genes.txt', 500],
      ['tabular/ames_columns.txt', 31],
      ['tabular/lending_club_columns.txt', 17],
      ['text/stopwords_english.txt', 174],
    ];
    expect(pairs.map(([f]) => listFile(f).length)).toEqual(pairs.map(([, n]) => n));
  });
});

describe('npy round trips and variants', () => {
  it('writes float64 C order that reads back bit for bit, plain and gzipped', () => {
    const special = new Float64Array([0, -0, 1 / 3, -2.5e-310, Number.MAX_VALUE, NaN, Infinity, -Infinity, 1e-7, 42, -1, 0.1]);
    for (const name of ['m.npy', 'm.npy.gz']) {
      writeNpy(tmpFile(name), { rows: 3, cols: 4, data: special });
      const back = readNpyMatrix(tmpFile(name));
      // Shape and every bit (−0, NaN, subnormals, infinities) survive.
      expect([back.rows, back.cols]).toEqual([3, 4]);
      expect(sha256(bytesOf(back.data))).toBe(sha256(bytesOf(special)));
    }
    const bytes = readFileSync(tmpFile('m.npy'));
    // Format 1.0 and data starting at a multiple of 64, as the task and NumPy prescribe.
    expect([bytes[6], bytes[7], (10 + bytes.readUInt16LE(8)) % 64]).toEqual([1, 0, 0]);
    const t = { shape: [2, 3, 2], data: Float64Array.from({ length: 12 }, (_, i) => i - 5.5) };
    writeNpy(tmpFile('t.npy'), t);
    // A 3-D tensor keeps its shape; encodeNpy gives the same bytes as the file.
    expect(readNpy(tmpFile('t.npy'))).toEqual(t);
    expect(encodeNpy(t).equals(readFileSync(tmpFile('t.npy')))).toBe(true);
    // parseNpy copies: the result does not alias the buffer it was given.
    const parsed = parseNpy(bytes, 'm.npy');
    expect(parsed.data.buffer).not.toBe(bytes.buffer);
  });

  it('reorders Fortran-order data to C order (2-D and 3-D)', () => {
    // A 2 × 3 array [[0,1,2],[3,4,5]] stored column-major is 0,3,1,4,2,5.
    const f2 = buildNpy({ descr: '<f8', fortranOrder: true, shape: [2, 3], data: bytesOf(new Float64Array([0, 3, 1, 4, 2, 5])) });
    expect(Array.from(parseNpy(f2, 'f2').data)).toEqual([0, 1, 2, 3, 4, 5]);
    // 3-D: element [i,j,k] = 100i + 10j + k stored with i fastest.
    const shape = [2, 3, 4];
    const fdata = new Float64Array(24);
    for (let i = 0; i < 2; i++) for (let j = 0; j < 3; j++) for (let k = 0; k < 4; k++) fdata[i + 2 * (j + 3 * k)] = 100 * i + 10 * j + k;
    writeFileSync(tmpFile('f3.npy'), buildNpy({ descr: '<f8', fortranOrder: true, shape, data: bytesOf(fdata) }));
    const t = readNpy(tmpFile('f3.npy'));
    const expected = [];
    for (let i = 0; i < 2; i++) for (let j = 0; j < 3; j++) for (let k = 0; k < 4; k++) expected.push(100 * i + 10 * j + k);
    // The C-order result lists [i,j,k] with k fastest.
    expect(t.shape).toEqual(shape);
    expect(Array.from(t.data)).toEqual(expected);
  });

  it('converts f4, integer and bool dtypes to float64', () => {
    const cases: [string, ArrayBufferView, number[]][] = [
      ['<f4', new Float32Array([1.5, -2.25, 3e38, 0.1]), [1.5, -2.25, Math.fround(3e38), Math.fround(0.1)]],
      ['|u1', new Uint8Array([0, 1, 200, 255]), [0, 1, 200, 255]],
      ['|i1', new Int8Array([-128, -1, 0, 127]), [-128, -1, 0, 127]],
      ['<i2', new Int16Array([-32768, -1, 7, 32767]), [-32768, -1, 7, 32767]],
      ['<u2', new Uint16Array([0, 1, 40000, 65535]), [0, 1, 40000, 65535]],
      ['<i4', new Int32Array([-(2 ** 31), -5, 5, 2 ** 31 - 1]), [-(2 ** 31), -5, 5, 2 ** 31 - 1]],
      ['<u4', new Uint32Array([0, 1, 3e9, 2 ** 32 - 1]), [0, 1, 3e9, 2 ** 32 - 1]],
      ['<i8', new BigInt64Array([-(2n ** 53n), -1n, 0n, 2n ** 53n]), [-(2 ** 53), -1, 0, 2 ** 53]],
      ['<u8', new BigUint64Array([0n, 1n, 2n ** 63n, 12345n]), [0, 1, 2 ** 63, 12345]],
      ['|b1', new Uint8Array([1, 0, 0, 1]), [1, 0, 0, 1]],
    ];
    for (const [descr, view, expected] of cases) {
      // Each dtype decodes to the float64 values of its elements (f4 to the float32 value, exactly).
      const t = parseNpy(buildNpy({ descr, shape: [2, 2], data: bytesOf(view) }), descr);
      expect({ descr, values: Array.from(t.data), shape: t.shape }).toEqual({ descr, values: expected, shape: [2, 2] });
    }
    // An int16 Fortran-order file combines conversion and reordering: [[1,2],[3,4]] stored as 1,3,2,4.
    const fi = parseNpy(buildNpy({ descr: '<i2', fortranOrder: true, shape: [2, 2], data: bytesOf(new Int16Array([1, 3, 2, 4])) }));
    expect(Array.from(fi.data)).toEqual([1, 2, 3, 4]);
  });

  it('reads format 2.0/3.0 headers, 1-D arrays and data that is not 8-byte aligned', () => {
    const v = bytesOf(new Float64Array([1, 2, 3]));
    // Version 2.0 and 3.0 only widen the header length to 4 bytes.
    expect(Array.from(parseNpy(buildNpy({ descr: '<f8', shape: [3], data: v, version: 2 })).data)).toEqual([1, 2, 3]);
    expect(parseNpy(buildNpy({ descr: '<f8', shape: [3], data: v, version: 3 })).shape).toEqual([3]);
    // A header padded to 3 bytes leaves the doubles misaligned: they must still be read correctly.
    const odd = buildNpy({ descr: '<f8', shape: [3], data: v, align: 3 });
    expect((10 + new DataView(odd.buffer).getUint16(8, true)) % 8).not.toBe(0);
    expect(Array.from(parseNpy(odd).data)).toEqual([1, 2, 3]);
    // The same inside a larger buffer at an odd offset (Buffer pool slices look like this).
    const shifted = new Uint8Array(odd.length + 1);
    shifted.set(odd, 1);
    expect(Array.from(parseNpy(shifted.subarray(1)).data)).toEqual([1, 2, 3]);
  });
});

describe('MatrixMarket variants', () => {
  it('mirrors symmetric files, reads pattern and integer fields, sums duplicates and sorts rows', () => {
    const sym = parseMatrixMarket('%%MatrixMarket matrix coordinate real symmetric\n% c\n3 3 3\n1 1 2\n3 1 -1.5\n3 2 4\n', 'sym');
    // Off-diagonal entries appear twice (lower and upper triangle), the diagonal once.
    expect(Array.from(csrToDense(sym).data)).toEqual([2, 0, -1.5, 0, 0, 4, -1.5, 4, 0]);
    const pat = parseMatrixMarket('%%MatrixMarket matrix coordinate pattern general\n2 3 2\n2 3\n1 1\n', 'pat', { format: 'dense' });
    // Pattern entries have value 1.
    expect(Array.from(pat.data)).toEqual([1, 0, 0, 0, 0, 1]);
    const dup = parseMatrixMarket('%%MatrixMarket matrix coordinate integer general\n2 3 4\n1 3 5\n1 1 1\n1 3 2\n2 2 -3\n', 'dup');
    // Row 0 lists columns 2, 0, 2: sorted to 0, 2 with the two (1,3) entries summed to 7.
    expect([Array.from(dup.indptr), Array.from(dup.indices), Array.from(dup.data)]).toEqual([[0, 2, 3], [0, 2, 1], [1, 7, -3]]);
    expectSortedCsr(dup);
    const skew = parseMatrixMarket('%%MatrixMarket matrix coordinate real skew-symmetric\n2 2 1\n2 1 3\n', 'skew', { format: 'dense' });
    // Skew-symmetric mirrors with the opposite sign.
    expect(Array.from(skew.data)).toEqual([0, -3, 3, 0]);
  });

  it('reads array format in column-major order (general and symmetric)', () => {
    const gen = parseMatrixMarket('%%MatrixMarket matrix array real general\n2 3\n1\n2\n3\n4\n5\n6\n', 'arr', { format: 'dense' });
    // Values run down the columns: column 0 is (1, 2), column 1 is (3, 4), column 2 is (5, 6).
    expect(Array.from(gen.data)).toEqual([1, 3, 5, 2, 4, 6]);
    const sym = parseMatrixMarket('%%MatrixMarket matrix array real symmetric\n2 2\n1\n2\n3\n', 'arrsym', { format: 'dense' });
    // Symmetric array files list the lower triangle by columns: (1,1), (2,1), (2,2).
    expect(Array.from(sym.data)).toEqual([1, 2, 2, 3]);
    // As CSR, an array file keeps its non-zeros only.
    const csr = parseMatrixMarket('%%MatrixMarket matrix array integer general\n2 2\n0\n7\n0\n0\n', 'arrcsr');
    expect([Array.from(csr.indptr), Array.from(csr.indices), Array.from(csr.data)]).toEqual([[0, 0, 1], [0], [7]]);
  });

  it('writes coordinate real general with shortest round-trip values, from CSR or dense, plain or gzipped', () => {
    const values = [0.1, 1 / 3, 1e-7, 1e21, -2.5, 5e-324, 123456789012345680000];
    const dense = { rows: 2, cols: 4, data: new Float64Array([values[0]!, 0, values[1]!, values[2]!, 0, values[3]!, values[4]!, values[5]!]) };
    const text = formatMatrixMarket(dense);
    // Header, size line with the non-zero count, then 1-based entries with String(v) values.
    expect(text.split('\n').slice(0, 3)).toEqual(['%%MatrixMarket matrix coordinate real general', '2 4 6', '1 1 0.1']);
    expect(text).toContain(`1 3 ${String(1 / 3)}\n`);
    expect(text).toContain('2 4 5e-324\n');
    for (const name of ['w.mtx', 'w.mtx.gz']) {
      writeMatrixMarket(tmpFile(name), dense);
      const back = readMatrixMarket(tmpFile(name), { format: 'dense' });
      // Every value (even the smallest subnormal) reads back to the same double.
      expect(sha256(bytesOf(back.data))).toBe(sha256(bytesOf(dense.data)));
    }
    const csr = denseToCsr(dense);
    writeMatrixMarket(tmpFile('c.mtx'), csr);
    // CSR and dense input write the same file.
    expect(readFileSync(tmpFile('c.mtx'), 'utf8')).toBe(text);
    // A malformed CsrMatrix is an argument error (RangeError), caught before anything is written.
    const bad = { ...csr, indices: Int32Array.from(csr.indices, (c) => c + 10) };
    expect(thrown(() => writeMatrixMarket(tmpFile('bad.mtx'), bad))).toBeInstanceOf(RangeError);
    expect(existsSync(tmpFile('bad.mtx'))).toBe(false);
  });
});

describe('CSV parsing details', () => {
  it('handles RFC 4180 quoting and reports the starting line of a record after a multi-line field', () => {
    const text = 'name,x,y\n"a, ""quoted"" name",1,2\n"two\nlines",3,4\nplain,5,oops\n';
    const t = parseCsv(text, 'q.csv', { labelColumn: 'name', columns: ['x'] });
    // Quoted commas, doubled quotes and embedded newlines stay inside their field.
    expect(t.labels).toEqual(['a, "quoted" name', 'two\nlines', 'plain']);
    expect(Array.from(t.matrix.data)).toEqual([1, 3, 5]);
    // Every column but the label column is data: y's "oops" is an error, not a silently skipped column.
    expect(formatError(() => parseCsv(text, 'q.csv', { labelColumn: 'name' })).message).toMatch(/column "y" in data row 3 but received "oops"/);
    // Columns by 0-based index and files without a header row (no column names then).
    const nh = parseCsv('1,2\n3,4\n', 'nh.csv', { header: false, columns: [1] });
    expect([nh.colNames, Array.from(nh.matrix.data)]).toEqual([undefined, [2, 4]]);
    const err = formatError(() => parseCsv(text, 'q.csv', { columns: ['x', 'y'] }));
    // "oops" is on line 5: the two-line record (lines 3–4) must not throw off the count.
    expect([err.code, err.line]).toEqual(['bad-value', 5]);
  });
});

describe('errors for corrupted files (one per class)', () => {
  const good = encodeNpy({ rows: 4, cols: 3, data: Float64Array.from({ length: 12 }, (_, i) => i) });

  it('truncated .npy: FormatError "truncated" at the byte where the file ends', () => {
    const path = tmpFile('truncated.npy');
    writeFileSync(path, good.subarray(0, good.length - 5));
    const err = formatError(() => readNpy(path));
    // 96 data bytes announced by shape (4, 3) of '<f8', only 91 present; the offset is the file length.
    expect([err.code, err.offset, err.file]).toEqual(['truncated', good.length - 5, path]);
    expect(err.message).toContain('Expected 96 bytes');
    expect(err.message).toContain(`truncated.npy at byte ${good.length - 5}`);
    // The in-memory parser reports the same problem.
    expect(formatError(() => parseNpy(good.subarray(0, 100), 'buf')).code).toBe('truncated');
    // A file cut inside the header is truncated too.
    expect(formatError(() => parseNpy(good.subarray(0, 40), 'buf')).code).toBe('truncated');
  });

  it('bad magic: FormatError "bad-magic" at byte 0, with a hint for gzip bytes', () => {
    const path = tmpFile('bad-magic.npy');
    writeFileSync(path, Buffer.concat([Buffer.from('PK\x03\x04'), good.subarray(4)]));
    const err = formatError(() => readNpy(path));
    // The first byte already differs from \x93NUMPY.
    expect([err.code, err.offset]).toEqual(['bad-magic', 0]);
    expect(err.message).toMatch(/Expected the NumPy magic string .* but received 50 4b 03 04 .*bad-magic\.npy at byte 0/);
    // Gzip bytes in a file named .npy get a hint to rename it.
    writeFileSync(path, gzipSync(good));
    expect(formatError(() => readNpy(path)).message).toContain('name the file .npy.gz');
    // An unknown format version is also refused (byte 6).
    const v9 = Buffer.from(good);
    v9[6] = 9;
    expect([formatError(() => parseNpy(v9)).code, formatError(() => parseNpy(v9)).offset]).toEqual(['unsupported', 6]);
    // A header that is not a dict of the three NumPy keys is a bad header.
    const h = buildNpy({ descr: '<f8', shape: [1], data: new Uint8Array(8) });
    const broken = Buffer.from(h);
    broken.write("{'descr' '<f8'", 10, 'latin1');
    expect(formatError(() => parseNpy(broken, 'hdr')).code).toBe('bad-header');
  });

  it("big-endian dtype: FormatError \"big-endian\" naming '>f8' and its byte offset", () => {
    const path = tmpFile('big-endian.npy');
    writeFileSync(path, buildNpy({ descr: '>f8', shape: [2], data: new Uint8Array(16) }));
    const err = formatError(() => readNpy(path));
    // '>f8' starts at byte 20 of the header ({'descr': '>f8' …): the offset points at it.
    expect([err.code, err.offset]).toEqual(['big-endian', 20]);
    expect(err.message).toMatch(/Expected a little-endian dtype but received '>f8'.*big-endian\.npy at byte 20/);
    // Unsupported dtypes (complex) are a different class.
    expect(formatError(() => parseNpy(buildNpy({ descr: '<c16', shape: [1], data: new Uint8Array(16) }))).code).toBe('unsupported');
  });

  it('non-numeric CSV cell: FormatError "bad-value" naming line, row and column', () => {
    const path = tmpFile('cells.csv');
    writeFileSync(path, 'id,a,b\n1,2.5,3\n2,abc,4\n');
    const err = formatError(() => readCsv(path, { columns: ['a', 'b'] }));
    // "abc" is in column a of data row 2, which is line 3 of the file.
    expect([err.code, err.line]).toEqual(['bad-value', 3]);
    expect(err.message).toBe(`Expected a number for column "a" in data row 2 but received "abc" in ${path} at line 3`);
    // An unknown column is its own class, reported at the header line.
    const unknown = formatError(() => readCsv(path, { columns: ['zzz'] }));
    expect([unknown.code, unknown.line]).toEqual(['unknown-column', 1]);
    // A ragged row is an entry-count problem at its line (from the CSV parser).
    writeFileSync(path, 'a,b\n1,2\n3\n');
    expect([formatError(() => readCsv(path)).code, formatError(() => readCsv(path)).line]).toEqual(['entry-count', 3]);
  });

  it('MatrixMarket index out of range: FormatError "index-out-of-range" at its line', () => {
    const path = tmpFile('range.mtx');
    writeFileSync(path, '%%MatrixMarket matrix coordinate real general\n% comment\n3 4 2\n1 1 1.0\n2 5 2.0\n');
    const err = formatError(() => readMatrixMarket(path));
    // Column 5 of a 3 × 4 matrix, on line 5 (banner, comment, size line, first entry before it).
    expect([err.code, err.line]).toEqual(['index-out-of-range', 5]);
    expect(err.message).toBe(`Expected a column index in 1..4 but received 5 in ${path} at line 5`);
    // Index 0 (a 0-based file) is out of range too.
    expect(formatError(() => parseMatrixMarket('%%MatrixMarket matrix coordinate real general\n3 3 1\n0 1 1\n')).code).toBe('index-out-of-range');
  });

  it('MatrixMarket wrong entry count: FormatError "entry-count" for too few and too many entries', () => {
    const head = '%%MatrixMarket matrix coordinate real general\n3 3 3\n';
    const few = formatError(() => parseMatrixMarket(`${head}1 1 1\n2 2 2\n`, 'few.mtx'));
    // 3 announced on line 2, the file ends after 2.
    expect(few.code).toBe('entry-count');
    expect(few.message).toMatch(/^Expected 3 entries \(as announced on line 2\) but received 2 \(the file ends\) in few\.mtx/);
    const many = formatError(() => parseMatrixMarket(`${head}1 1 1\n2 2 2\n3 3 3\n1 2 4\n`, 'many.mtx'));
    // The fourth entry, on line 6, is one too many.
    expect([many.code, many.line]).toEqual(['entry-count', 6]);
    // A non-numeric value and a banner that is not MatrixMarket are their own classes.
    expect(formatError(() => parseMatrixMarket(`${head}1 1 x\n`)).code).toBe('bad-value');
    expect(formatError(() => parseMatrixMarket('rows cols nnz\n')).code).toBe('bad-magic');
  });

  it('truncated gzip: FormatError "truncated" for .npy.gz and .mtx.gz, "bad-gzip" for corrupt data', () => {
    const gz = gzipSync(good);
    const npyPath = tmpFile('cut.npy.gz');
    writeFileSync(npyPath, gz.subarray(0, gz.length - 20));
    const err = formatError(() => readNpy(npyPath));
    // zlib runs out of input before the end of the stream: the file was cut short.
    expect([err.code, err.offset]).toEqual(['truncated', gz.length - 20]);
    expect(err.message).toMatch(/Expected a complete gzip stream .*cut\.npy\.gz at byte \d+/);
    const mtxPath = tmpFile('cut.mtx.gz');
    const mtx = gzipSync('%%MatrixMarket matrix coordinate real general\n2 2 1\n1 1 1\n');
    writeFileSync(mtxPath, mtx.subarray(0, mtx.length - 10));
    expect(formatError(() => readMatrixMarket(mtxPath)).code).toBe('truncated');
    // Flipped bytes in the middle break the deflate data or its CRC.
    const corrupt = Buffer.from(gz);
    for (let i = 20; i < 40; i++) corrupt[i]! ^= 0xff;
    writeFileSync(npyPath, corrupt);
    expect(formatError(() => readNpy(npyPath)).code).toBe('bad-gzip');
  });

  it('argument problems stay TypeError/RangeError', () => {
    // A path must be a string; options are checked against their specs.
    expect(thrown(() => readNpy(42 as unknown as string))).toBeInstanceOf(TypeError);
    expect(thrown(() => readMatrixMarket('x.mtx', { format: 'coo' as 'csr' }))).toBeInstanceOf(RangeError);
    expect(thrown(() => readCsv('x.csv', { bogus: 1 } as object))).toBeInstanceOf(TypeError);
    expect(thrown(() => writeNpy(tmpFile('n.npy'), { rows: 2, cols: 2, data: new Float64Array(3) }))).toBeInstanceOf(RangeError);
    // A missing file is the operating system's error, passed through.
    expect((thrown(() => readNpy(tmpFile('absent.npy'))) as NodeJS.ErrnoException).code).toBe('ENOENT');
  });
});
