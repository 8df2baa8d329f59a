// Reading your own CSV data: header detection, column selection, row names, transpose, located errors,
// the memory bound; and writing matrices back as CSV with their names.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';

import { afterAll, describe, expect, it } from 'vitest';

import { FormatError, parseCsv, readCsv, readLabels, readMatrix, writeCsv } from '../lib/io/index.js';
import { setMemoryLimit } from '../lib/memory.js';
import { thrown } from './helpers/thrown.js';

const dir = mkdtempSync(join(tmpdir(), 'nsa-flow-csv-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const file = (name: string, text: string | Buffer): string => {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
};

function formatError(fn: () => unknown): FormatError {
  const err = thrown(fn);
  expect(err).toBeInstanceOf(FormatError);
  return err as FormatError;
}

const values = (t: { matrix: { data: Float64Array } }): number[] => Array.from(t.matrix.data);

describe('header row: detected, or forced with header: true / false', () => {
  it('a first row of numbers is data: a headerless file keeps all its rows', () => {
    const t = parseCsv('1,2\n3,4\n', 'nh.csv');
    // Two rows of numbers: no header, so the first row is not lost.
    expect([t.header, t.matrix.rows, t.matrix.cols, values(t)]).toEqual([false, 2, 2, [1, 2, 3, 4]]);
    expect(t.colNames).toBeUndefined(); // nothing to name the columns with
    // Exponents, signs, inf and NA-free numbers all count as numbers.
    expect(parseCsv('-1.5e3,inf\n2,3\n').header).toBe(false);
  });

  it('a first row with text above numbers is a header, and names the columns', () => {
    const t = parseCsv('a,b\n1,2\n3,4\n', 'h.csv');
    expect([t.header, t.colNames, values(t)]).toEqual([true, ['a', 'b'], [1, 2, 3, 4]]);
    // One text cell over a number is enough (the other header cells look like numbers: years).
    expect(parseCsv('name,2001,2002\n0,1,2\n').colNames).toEqual(['name', '2001', '2002']);
    // A file of one text row and nothing else is a header without data: an error at line 2.
    const only = formatError(() => parseCsv('a,b\n', 'only.csv'));
    expect([only.code, only.line, only.message]).toEqual(['entry-count', 2, 'Expected at least one data row but received only a header row in only.csv at line 2']);
  });

  it('a row-name column without a header is not mistaken for one', () => {
    // Column 0 is text in both rows; columns 1–2 are numbers in both: the first row is data.
    const t = parseCsv('s1,1,2\ns2,3,4\n', 'rn.csv', { rowNames: 0 });
    expect([t.header, t.rowNames, values(t)]).toEqual([false, ['s1', 's2'], [1, 2, 3, 4]]);
  });

  it('header: false reads a text first row as data (a located error), header: true takes a numeric one as names', () => {
    const err = formatError(() => parseCsv('a,b\n1,2\n', 'f.csv', { header: false }));
    // "a" is in column 0 of data row 1, line 1.
    expect([err.code, err.line]).toEqual(['bad-value', 1]);
    expect(err.message).toMatch(/^Expected a number for column 0 \(0-based\) in data row 1 but received "a" \(a text column/);
    const t = parseCsv('1,2\n3,4\n', 'f.csv', { header: true });
    expect([t.colNames, values(t)]).toEqual([['1', '2'], [3, 4]]);
  });

  it('an empty first header cell (R write.csv, pandas to_csv) makes the first column the row names', () => {
    const t = parseCsv(',x,y\nr1,1,2\nr2,3,4\n');
    expect([t.rowNames, t.colNames, values(t)]).toEqual([['r1', 'r2'], ['x', 'y'], [1, 2, 3, 4]]);
  });
});

describe('choosing the data: columns, drop, rowNames, labelColumn, transpose', () => {
  const text = 'id,sample,a,b,c\n1,s1,1,2,3\n2,s2,4,5,6\n';

  it('an id column is dropped by name or position; row names are kept beside the matrix', () => {
    const t = parseCsv(text, 't.csv', { drop: ['id'], rowNames: 'sample' });
    expect([t.rowNames, t.colNames, values(t)]).toEqual([['s1', 's2'], ['a', 'b', 'c'], [1, 2, 3, 4, 5, 6]]);
    // The same with 0-based positions.
    expect(values(parseCsv(text, 't.csv', { drop: [0], rowNames: 1 }))).toEqual([1, 2, 3, 4, 5, 6]);
  });

  it('columns picks and orders the data columns; drop then removes from them', () => {
    const t = parseCsv(text, 't.csv', { columns: ['c', 'a', 'id'], drop: ['id'] });
    expect([t.colNames, values(t)]).toEqual([['c', 'a'], [3, 1, 6, 4]]);
    // Leaving no data column is an error, not an empty matrix.
    const none = formatError(() => parseCsv(text, 't.csv', { columns: ['id'], drop: [0] }));
    expect([none.code, none.message]).toEqual(['unknown-column', 'Expected at least one data column but none is left after the row names, labels and dropped columns in t.csv at line 1']);
  });

  it('labelColumn gives one string per row and is not data', () => {
    const t = parseCsv(text, 't.csv', { labelColumn: 'sample', drop: ['id'] });
    expect([t.labels, t.colNames]).toEqual([['s1', 's2'], ['a', 'b', 'c']]);
  });

  it('transpose turns file columns into rows and swaps the names', () => {
    // A genes × samples file: one column per observation.
    const t = parseCsv('gene,s1,s2,s3\ng1,1,2,3\ng2,4,5,6\n', 'g.csv', { rowNames: 'gene', transpose: true });
    expect([t.matrix.rows, t.matrix.cols]).toEqual([3, 2]); // 3 samples × 2 genes
    expect([t.rowNames, t.colNames, values(t)]).toEqual([['s1', 's2', 's3'], ['g1', 'g2'], [1, 4, 2, 5, 3, 6]]);
    // Labels are one per file row, which transpose makes columns: refused, naming both options.
    const err = thrown(() => parseCsv('a,b\n1,2\n', 'g.csv', { labelColumn: 'a', transpose: true }));
    expect(err).toBeInstanceOf(RangeError);
    expect(err.message).toBe('Expected no labelColumn with transpose for parseCsv() (labels are one per file row, and the rows become columns) but received both');
  });
});

describe('bad files: FormatError with the place', () => {
  it('a ragged row names the expected and received field counts and its line', () => {
    const path = file('ragged.csv', 'a,b,c\n1,2,3\n4,5\n');
    const err = formatError(() => readCsv(path));
    expect([err.code, err.line]).toEqual(['entry-count', 3]);
    expect(err.message).toBe(`Expected 3 fields (as in the header) but received 2 in data row 2 in ${path} at line 3`);
  });

  it('a non-numeric cell names its column, data row and line (after a multi-line quoted field)', () => {
    const err = formatError(() => parseCsv('name,x\n"two\nlines",1\nb,oops\n', 'q.csv', { rowNames: 'name' }));
    // Data row 2 starts on line 4: the quoted field spans lines 2–3.
    expect([err.code, err.line]).toEqual(['bad-value', 4]);
    expect(err.message).toBe('Expected a number for column "x" in data row 2 but received "oops" in q.csv at line 4');
    // Text in the first data row is most likely a text column: the message says what to do about it.
    expect(formatError(() => parseCsv('id,x\nA7,1\n', 'q.csv')).message).toContain('leave it out with drop, pick the data columns with columns, or take it as rowNames');
  });

  it('a missing cell is its own class, allowed with missing: NaN', () => {
    const err = formatError(() => parseCsv('a,b\n1,NA\n', 'm.csv'));
    expect([err.code, err.line]).toEqual(['missing-value', 2]);
    expect(values(parseCsv('a,b\n1,NA\n', 'm.csv', { missing: NaN }))).toEqual([1, NaN]);
  });

  it('unknown column names suggest the nearest one; names need a header', () => {
    const err = formatError(() => parseCsv('id,alpha,beta\n1,2,3\n', 'u.csv', { columns: ['alpa'] }));
    expect([err.code, err.line]).toEqual(['unknown-column', 1]);
    expect(err.message).toBe('Expected the selected column "alpa" but the header has no such column (did you mean "alpha"?) (columns: id, alpha, beta) in u.csv at line 1');
    const noHeader = formatError(() => parseCsv('1,2\n3,4\n', 'n.csv', { drop: ['id'] }));
    expect(noHeader.message).toBe('Expected the dropped column "id" but the file has no header row (give a 0-based index, or header: true) in n.csv at line 1');
    const past = formatError(() => parseCsv('1,2\n3,4\n', 'n.csv', { rowNames: 5 }));
    expect(past.message).toBe('Expected the row-name column 5 (0-based) but the file has 2 columns in n.csv at line 1');
    // Two columns of the same name cannot be told apart by name.
    expect(formatError(() => parseCsv('a,a\n1,2\n', 'd.csv', { columns: ['a'] })).code).toBe('bad-header');
  });

  it('an empty file and an unclosed quote', () => {
    expect(formatError(() => parseCsv('', 'e.csv')).message).toBe('Expected at least one data row but received an empty file in e.csv at line 1');
    expect(formatError(() => parseCsv('a,b\n"1,2\n', 'e.csv')).code).toBe('truncated');
  });

  it('bad options are TypeError / RangeError naming the option', () => {
    const bad: [unknown, ErrorConstructor, string][] = [
      [{ header: 'yes' }, RangeError, `Expected 'auto', true or false for options.header of readCsv() but received the string "yes"`],
      [{ columns: [] }, TypeError, 'Expected a non-empty array of column names or 0-based indices for options.columns of readCsv() but received an array of length 0'],
      [{ drop: [-1] }, TypeError, 'Expected a column name or 0-based column index for options.drop of readCsv()[0] but received -1'],
      [{ transpose: 1 }, TypeError, 'Expected a boolean for options.transpose of readCsv() but received 1'],
    ];
    for (const [options, E, message] of bad) {
      const err = thrown(() => readCsv('x.csv', options as object));
      expect(err).toBeInstanceOf(E);
      expect(err.message).toBe(message);
    }
  });
});

describe('bounded reading', () => {
  it('the matrix is allocated only within the memory limit', () => {
    // 1000 rows × 50 columns: a 140000-byte file (280000 bytes with its text) but up to 1001 × 50 doubles = 400400 bytes, over a 300 kB limit.
    const row = Array.from({ length: 50 }, (_, j) => j).join(',');
    const path = file('big.csv', Array.from({ length: 1000 }, () => row).join('\n') + '\n');
    const previous = setMemoryLimit(300_000);
    try {
      const err = thrown(() => readCsv(path));
      expect(err).toBeInstanceOf(RangeError);
      expect(err.message).toMatch(/^Not enough memory for the matrix of .*big\.csv \(up to 1001×50\): it needs 400400 bytes/);
    } finally {
      setMemoryLimit(previous);
    }
    expect(readCsv(path).matrix.rows).toBe(1000); // fine within the default limit
  });

  it('files with \\r line ends (old Mac) keep every row; mixed line ends are reported', () => {
    // The matrix is sized from the line count: \r-only lines must count too.
    expect(values(parseCsv('a,b\r1,2\r3,4\r', 'mac.csv'))).toEqual([1, 2, 3, 4]);
    // The parser keeps the first line end it sees (\r\n): a later bare \n is inside a field, and the row is
    // reported, not read wrong.
    const mixed = formatError(() => parseCsv('1,2\r\n3,4\n5,6\r\n7,8', 'mixed.csv'));
    expect([mixed.code, mixed.message]).toEqual(['entry-count', 'Expected 2 fields (as in the first row) but received 3 in data row 2 in mixed.csv at line 2']);
  });

  it('text without quotes (split directly) reads exactly as with quotes (csv-parse)', () => {
    const texts = [
      'id,a,b\ns1,1,2\n\ns2,3,4\n', // a blank line
      'id,a,b\r\ns1,1,2\r\ns2,3,4', // CRLF, no final line end
      'id,a,b\rs1,1,2\rs2,3,4\r', // CR
      '\ufeffid,a,b\ns1,1,2\n', // BOM
      'id,a,b\ns1,1,2\n\ns2,3\n', // ragged row after a blank line: same line number
      'id,a,b\ns1,1,x\n', // text cell
    ];
    const outcome = (text: string): unknown => {
      try {
        const t = parseCsv(text, 'f.csv', { rowNames: 'id' });
        return [t.rowNames, t.colNames, values(t)];
      } catch (err) {
        return (err as Error).message;
      }
    };
    for (const text of texts) {
      // Quoting the first cell sends the same content through csv-parse.
      const quoted = text.replace('id', '"id"');
      expect(outcome(text), JSON.stringify(text)).toEqual(outcome(quoted));
    }
    expect(outcome(texts[4]!)).toBe('Expected 3 fields (as in the header) but received 2 in data row 2 in f.csv at line 4');
  });

  it('.csv.gz is read through the gzip reader; readMatrix dispatches .csv to readCsv', () => {
    const path = file('g.csv.gz', gzipSync(',a,b\nr1,1,2\nr2,3,4\n'));
    const t = readCsv(path);
    expect([t.rowNames, t.colNames, values(t)]).toEqual([['r1', 'r2'], ['a', 'b'], [1, 2, 3, 4]]);
    expect(Array.from((readMatrix(path) as { data: Float64Array }).data)).toEqual([1, 2, 3, 4]);
  });

  it('readLabels detects the header too when asked', () => {
    const path = file('labels.csv', 'x,1\ny,2\n');
    // Default header: true (columns are usually named) …
    expect(readLabels(path, 0)).toEqual(['y']);
    // … 'auto' sees numbers in column 1 of both rows: no header.
    expect(readLabels(path, 0, { header: 'auto' })).toEqual(['x', 'y']);
  });
});

describe('writeCsv: matrices back to CSV with their names', () => {
  it('round-trips values bit for bit, with quoted names', () => {
    const data = Float64Array.from([1 / 3, -0, 1e-300, 2 ** 60, -Infinity, Math.PI]);
    const m = { rows: 3, cols: 2, data };
    const rowNames = ['plain', 'with, comma', 'with "quote"\nand line'];
    const colNames = ['PC1', ' padded '];
    for (const name of ['r.csv', 'r.csv.gz']) {
      const path = join(dir, name);
      writeCsv(path, m, { rowNames, colNames });
      const back = readCsv(path);
      // The empty first header cell marks the row names, so no option is needed to read them back.
      expect([back.rowNames, back.colNames]).toEqual([rowNames, colNames]);
      expect(Array.from(back.matrix.data).map((v) => Object.is(v, -0) ? '-0' : v)).toEqual(Array.from(data).map((v) => Object.is(v, -0) ? '-0' : v));
    }
  });

  it('without names: columns V1, V2, …; a wrong number of names is a RangeError', () => {
    const path = join(dir, 'v.csv');
    writeCsv(path, { rows: 1, cols: 2, data: Float64Array.from([1, 2]) });
    const back = readCsv(path);
    expect([back.colNames, back.rowNames, values(back)]).toEqual([['V1', 'V2'], undefined, [1, 2]]);
    const err = thrown(() => writeCsv(path, { rows: 1, cols: 2, data: Float64Array.from([1, 2]) }, { colNames: ['a'] }));
    expect(err).toBeInstanceOf(RangeError);
    expect(err.message).toBe('Expected 2 column names (one per column) for options.colNames of writeCsv() but received 1');
  });
});
