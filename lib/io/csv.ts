/**
 * CSV tables to matrices (with their row and column names) and label vectors, and matrices back to CSV.
 *
 * Parsing (RFC 4180 quoting, embedded commas/quotes/newlines, BOM, CRLF) is done by the csv-parse
 * package, one record at a time: each record is checked and converted to numbers as it arrives, so the
 * table is never held as strings. Problems with the content are FormatErrors naming the file, the line,
 * the data row and the column. A path ending in .gz is gunzipped; .tsv / .tsv.gz default to tabs.
 *
 * Header row: by default ('auto') the first row is a header when it holds text above a number of the
 * second row (e.g. `id,a,b` over `1,2,3`); a file whose first row is all numbers has none. A header
 * whose first cell is empty (as R's write.csv and pandas' to_csv write a row index) makes the first
 * column the row names.
 *
 * Data columns: every column except the row names, the label column and dropped ones (or exactly
 * `columns`). A cell that is not a number in a data column is an error — text columns are not skipped
 * silently: drop them, or take them as row names or labels.
 *
 * Numbers are decimal (optionally with exponent), or inf / infinity (any case, signed). Missing cells are
 * empty or one of NA, N/A, NaN, nan, null, NULL: they are an error unless `missing` gives the value to use.
 */
import { statSync } from 'node:fs';
import { constants as bufferConstants } from 'node:buffer';
import { CsvError, parse as parseCsvText } from 'csv-parse/sync';

import type { Matrix } from '../matrix.js';
import { checkMemory, float64Bytes } from '../memory.js';
import { didYouMean } from '../suggest.js';
import { describeValue, expectMatrix, expectName, parseOptions, type OptionSpecs } from '../validate.js';
import { FormatError, quoteContent, type FormatErrorCode } from './errors.js';
import { expectPath, isGzipPath, readTextMaybeGz, writeChunksMaybeGz } from './files.js';
import { parseNumberToken } from './numbers.js';

/** A column given by its header name or by its 0-based position. */
export type ColumnRef = string | number;

export interface ReadCsvOptions {
  /** Whether the first row holds column names: 'auto' (default) decides from the first two rows. */
  header?: 'auto' | boolean;
  /** The data columns, in this order (names or 0-based positions). Default: all but the excluded ones. */
  columns?: readonly ColumnRef[];
  /** Columns left out of the data (e.g. an id column). */
  drop?: readonly ColumnRef[];
  /** A column of row names (e.g. sample ids), returned in `rowNames` and not part of the data. */
  rowNames?: ColumnRef;
  /** A column returned as strings in `labels` (e.g. the strata), not part of the data. */
  labelColumn?: ColumnRef;
  /** Return the transpose: file columns become rows (for files with one column per observation). */
  transpose?: boolean;
  /** Value for missing cells in data columns (typically NaN). Default: a missing cell is an error. */
  missing?: number;
  /** Field delimiter: default ',' ('\t' for .tsv and .tsv.gz files). */
  delimiter?: string;
}

export interface CsvTable {
  /** Rows = data rows of the file (columns of the file with `transpose`), columns = the data columns. */
  matrix: Matrix;
  /** Names of the matrix columns (from the header; from the row names with `transpose`). */
  colNames?: string[];
  /** Names of the matrix rows (the row-name column; the header's data columns with `transpose`). */
  rowNames?: string[];
  /** The label column's cells, one per data row, when `labelColumn` was given. */
  labels?: string[];
  /** Whether the first row was read as a header. */
  header: boolean;
}

function columnRefCheck(v: unknown, name: string): ColumnRef {
  if (typeof v === 'string' && v.length > 0) return v;
  if (typeof v === 'number' && Number.isInteger(v) && v >= 0) return v;
  throw new TypeError(`Expected a column name or 0-based column index for ${name} but received ${describeValue(v)}`);
}

function columnListCheck(v: unknown, name: string): ColumnRef[] {
  if (!Array.isArray(v) || v.length === 0) {
    throw new TypeError(`Expected a non-empty array of column names or 0-based indices for ${name} but received ${describeValue(v)}`);
  }
  return v.map((c, i) => columnRefCheck(c, `${name}[${i}]`));
}

const headerSpec = {
  kind: 'custom',
  description: "'auto', true or false",
  default: 'auto',
  check: (v: unknown, name: string) => {
    if (v === 'auto' || v === true || v === false) return v;
    const E = typeof v === 'string' ? RangeError : TypeError;
    throw new E(`Expected 'auto', true or false for ${name} but received ${describeValue(v)}`);
  },
} as const;

const delimiterSpec = {
  kind: 'custom',
  description: 'a non-empty string',
  check: (v: unknown, name: string) => {
    if (typeof v !== 'string' || v.length === 0 || /[\r\n"]/.test(v)) {
      throw new TypeError(`Expected a non-empty delimiter string (no quote or line break) for ${name} but received ${describeValue(v)}`);
    }
    return v;
  },
} as const;

/** The options of readCsv / parseCsv (also the CLI's CSV flags). */
export const readCsvOptionSpecs = {
  header: headerSpec,
  columns: { kind: 'custom', description: 'a non-empty array of column names or 0-based indices', check: columnListCheck },
  drop: { kind: 'custom', description: 'a non-empty array of column names or 0-based indices', check: columnListCheck },
  rowNames: { kind: 'custom', description: 'a column name or 0-based index', check: columnRefCheck },
  labelColumn: { kind: 'custom', description: 'a column name or 0-based index', check: columnRefCheck },
  transpose: { kind: 'boolean', description: 'return the transpose (file columns become rows)', default: false },
  missing: {
    kind: 'custom',
    description: 'a number (NaN allowed)',
    check: (v: unknown, name: string) => {
      if (typeof v !== 'number') throw new TypeError(`Expected a number (NaN allowed) for ${name} but received ${describeValue(v)}`);
      return v;
    },
  },
  delimiter: delimiterSpec,
} as const satisfies OptionSpecs;

const labelSpecs: OptionSpecs = { header: { ...headerSpec, default: true }, delimiter: delimiterSpec };

type ValidOptions = Omit<ReadCsvOptions, 'header' | 'transpose'> & { header: 'auto' | boolean; transpose: boolean };

/** Added to the message about text in the first data row (the CLI words it with its flags). */
export const textColumnHint = ' (a text column: leave it out with drop, pick the data columns with columns, or take it as rowNames or labelColumn)';

const MISSING = new Set(['', 'NA', 'N/A', 'NaN', 'nan', 'null', 'NULL']);
const isNumber = (cell: string): boolean => parseNumberToken(cell.trim()) !== undefined;
const isMissing = (cell: string): boolean => MISSING.has(cell.trim());

/**
 * 'auto' header rule: a header when some column has text in the first row above a number in the
 * second; no header when every such column holds numbers in both; with no numeric column in the second
 * row (or no second row), a header when the first row holds any text.
 */
function detectHeader(first: readonly string[], second: readonly string[] | undefined): boolean {
  const isText = (cell: string): boolean => !isNumber(cell) && !isMissing(cell);
  if (second) {
    let numericBelow = false;
    for (let c = 0; c < first.length; c++) {
      if (second[c] === undefined || !isNumber(second[c]!)) continue;
      numericBelow = true;
      if (isText(first[c]!)) return true;
    }
    if (numericBelow) return false;
  }
  return first.some(isText);
}

function defaultDelimiter(path: string): string {
  return /\.tsv(\.gz)?$/i.test(path) ? '\t' : ',';
}

function csvParserError(err: unknown, file: string): unknown {
  if (!(err instanceof CsvError)) return err;
  const e = err as CsvError & { lines?: number };
  const code: FormatErrorCode = e.code === 'CSV_QUOTE_NOT_CLOSED' ? 'truncated' : 'bad-value';
  return new FormatError(file, `Expected well-formed CSV but the parser reports "${e.message}" (${e.code})`, {
    code,
    line: typeof e.lines === 'number' ? e.lines : undefined,
    cause: err,
  });
}

interface RecordInfo {
  lines: number;
  empty_lines: number;
}

/**
 * Hands each record of the text, with the 1-based line it starts on, to `onRecord`; records are not
 * accumulated. Field counts are checked by the caller (for located messages). Text with quotes goes
 * through csv-parse; text without any is split directly (the same records, several times faster).
 */
function eachRecord(text: string, file: string, delimiter: string, onRecord: (record: string[], line: number) => void): void {
  if (!text.includes('"')) {
    eachUnquotedRecord(text, delimiter, onRecord);
    return;
  }
  let prevEnd = 0;
  let prevEmpty = 0;
  try {
    parseCsvText(text, {
      delimiter,
      bom: true,
      skip_empty_lines: true,
      relax_column_count: true,
      on_record: (record: string[], info: RecordInfo) => {
        const line = prevEnd + 1 + (info.empty_lines - prevEmpty);
        prevEnd = info.lines;
        prevEmpty = info.empty_lines;
        onRecord(record, line);
        return null; // nothing kept by the parser
      },
    } as never);
  } catch (err) {
    throw csvParserError(err, file);
  }
}

/**
 * Records of text without quotes, as csv-parse splits them: the line end is the first one in the text
 * (\r\n, \n or \r), empty lines are skipped, a leading BOM is dropped.
 */
function eachUnquotedRecord(text: string, delimiter: string, onRecord: (record: string[], line: number) => void): void {
  const nl = text.indexOf('\n');
  const cr = text.indexOf('\r');
  const end = cr >= 0 && (nl < 0 || cr < nl) ? (cr + 1 === nl ? '\r\n' : '\r') : '\n';
  let start = text.charCodeAt(0) === 0xfeff ? 1 : 0;
  for (let line = 1; start < text.length; line++) {
    let stop = text.indexOf(end, start);
    if (stop < 0) stop = text.length;
    if (stop > start) onRecord(text.slice(start, stop).split(delimiter), line);
    start = stop + end.length;
  }
}

/** Where a column is, for messages: its header name, or its 0-based position. */
const columnLabel = (names: readonly string[] | undefined, c: number): string =>
  names ? `column ${quoteContent(names[c]!)}` : `column ${c} (0-based)`;

function resolveColumn(names: readonly string[] | undefined, width: number, ref: ColumnRef, file: string, what: string, headerLine: number): number {
  if (typeof ref === 'number') {
    if (ref >= width) {
      throw new FormatError(file, `Expected ${what} ${ref} (0-based) but the file has ${width} columns`, { code: 'unknown-column', line: headerLine || 1 });
    }
    return ref;
  }
  if (!names) {
    throw new FormatError(file, `Expected ${what} ${quoteContent(ref)} but the file has no header row (give a 0-based index, or header: true)`, {
      code: 'unknown-column',
      line: 1,
    });
  }
  const first = names.indexOf(ref);
  if (first < 0) {
    const list = names.length > 12 ? `${names.slice(0, 12).join(', ')}, … (${names.length} in all)` : names.join(', ');
    throw new FormatError(
      file,
      `Expected ${what} ${quoteContent(ref)} but the header has no such column${didYouMean(ref, names, (c) => quoteContent(c))} (columns: ${list})`,
      { code: 'unknown-column', line: headerLine },
    );
  }
  if (names.indexOf(ref, first + 1) >= 0) {
    throw new FormatError(file, `Expected one column named ${quoteContent(ref)} for ${what} but the header has several (give its 0-based index instead)`, {
      code: 'bad-header',
      line: headerLine,
    });
  }
  return first;
}

/** Upper bound of the number of records: the number of lines (ended by \n, or by \r alone in old Mac files). */
function countLines(text: string): number {
  const count = (c: string): number => {
    let n = 1;
    for (let i = text.indexOf(c); i >= 0; i = text.indexOf(c, i + 1)) n++;
    return n;
  };
  return Math.max(count('\n'), count('\r'));
}

/** The table reader: one pass over the records, numbers written straight into the matrix buffer. */
function tableToResult(text: string, file: string, opts: ValidOptions): CsvTable {
  const delimiter = opts.delimiter ?? defaultDelimiter(file);
  let header = opts.header === true;
  let names: string[] | undefined;
  let headerLine = 0;
  let width = -1;
  let selected: number[] = [];
  let rowNameIndex = -1;
  let labelIndex = -1;
  let data = new Float64Array(0);
  let rows = 0;
  let capacityRows = 0;
  const rowNames: string[] = [];
  const labels: string[] = [];
  let pending: { record: string[]; line: number } | undefined;
  let setUp = false;

  const setUpColumns = (first: string[], firstLine: number): void => {
    width = first.length;
    if (header) {
      names = first;
      headerLine = firstLine;
    }
    const resolve = (ref: ColumnRef, what: string): number => resolveColumn(names, width, ref, file, what, headerLine);
    if (opts.rowNames !== undefined) rowNameIndex = resolve(opts.rowNames, 'the row-name column');
    else if (names && names[0]!.trim() === '' && width > 1) rowNameIndex = 0; // R / pandas row index
    if (opts.labelColumn !== undefined) labelIndex = resolve(opts.labelColumn, 'the label column');
    const dropped = new Set((opts.drop ?? []).map((c) => resolve(c, 'the dropped column')));
    if (opts.columns) {
      selected = opts.columns.map((c) => resolve(c, 'the selected column')).filter((c) => !dropped.has(c));
    } else {
      for (let c = 0; c < width; c++) if (c !== rowNameIndex && c !== labelIndex && !dropped.has(c)) selected.push(c);
    }
    if (selected.length === 0) {
      throw new FormatError(file, 'Expected at least one data column but none is left after the row names, labels and dropped columns', {
        code: 'unknown-column',
        line: headerLine || 1,
      });
    }
    // The matrix is at most one row per line: allocate that once, within the memory limit.
    capacityRows = countLines(text);
    checkMemory(float64Bytes(capacityRows, selected.length), `the matrix of ${file} (up to ${capacityRows}×${selected.length})`);
    data = new Float64Array(capacityRows * selected.length);
    setUp = true;
  };

  const addRow = (record: string[], line: number): void => {
    const r = rows;
    if (record.length !== width) {
      throw new FormatError(file, `Expected ${width} fields (as in the ${header ? 'header' : 'first row'}) but received ${record.length} in data row ${r + 1}`, {
        code: 'entry-count',
        line,
      });
    }
    const ncols = selected.length;
    if (r >= capacityRows) {
      // Not reached when countLines bounds the records; kept so that a miscount can never write out of bounds.
      capacityRows = Math.max(2 * capacityRows, r + 1);
      checkMemory(float64Bytes(capacityRows, ncols), `the matrix of ${file} (up to ${capacityRows}×${ncols})`);
      const grown = new Float64Array(capacityRows * ncols);
      grown.set(data);
      data = grown;
    }
    const base = r * ncols;
    for (let k = 0; k < ncols; k++) {
      const c = selected[k]!;
      const raw = record[c]!;
      const cell = raw.trim();
      let v: number | undefined;
      if (MISSING.has(cell)) {
        if (opts.missing === undefined) {
          throw new FormatError(
            file,
            `Expected a number for ${columnLabel(names, c)} in data row ${r + 1} but received ${cell === '' ? 'an empty cell' : quoteContent(cell)} (pass {missing: NaN} to allow missing values)`,
            { code: 'missing-value', line },
          );
        }
        v = opts.missing;
      } else {
        v = parseNumberToken(cell);
        if (v === undefined) {
          // Text in the first data row is most likely a text column (ids, names), not a typo.
          const hint = r === 0 ? textColumnHint : '';
          throw new FormatError(file, `Expected a number for ${columnLabel(names, c)} in data row ${r + 1} but received ${quoteContent(raw)}${hint}`, {
            code: 'bad-value',
            line,
          });
        }
      }
      data[base + k] = v;
    }
    if (rowNameIndex >= 0) rowNames.push(record[rowNameIndex]!);
    if (labelIndex >= 0) labels.push(record[labelIndex]!);
    rows++;
  };

  let index = 0;
  eachRecord(text, file, delimiter, (record, line) => {
    const i = index++;
    if (i === 0) {
      if (opts.header === 'auto') {
        pending = { record, line }; // decided with the second row
        return;
      }
      setUpColumns(record, line);
      if (!header) addRow(record, line);
      return;
    }
    if (i === 1 && pending) {
      header = detectHeader(pending.record, record);
      setUpColumns(pending.record, pending.line);
      if (!header) addRow(pending.record, pending.line);
      pending = undefined;
    }
    addRow(record, line);
  });
  if (index === 0) throw new FormatError(file, 'Expected at least one data row but received an empty file', { code: 'entry-count', line: 1 });
  if (pending) {
    header = detectHeader(pending.record, undefined);
    setUpColumns(pending.record, pending.line);
    if (!header) addRow(pending.record, pending.line);
  }
  if (!setUp || rows === 0) {
    throw new FormatError(file, 'Expected at least one data row but received only a header row', { code: 'entry-count', line: headerLine + 1 });
  }

  const ncols = selected.length;
  let matrix: Matrix;
  if (opts.transpose) {
    checkMemory(float64Bytes(rows, ncols), `the transpose of the matrix of ${file} (${ncols}×${rows})`);
    const t = new Float64Array(rows * ncols);
    for (let r = 0; r < rows; r++) for (let k = 0; k < ncols; k++) t[k * rows + r] = data[r * ncols + k]!;
    matrix = { rows: ncols, cols: rows, data: t };
  } else if (rows === capacityRows) {
    matrix = { rows, cols: ncols, data };
  } else {
    checkMemory(float64Bytes(rows, ncols), `the matrix of ${file} (${rows}×${ncols})`);
    matrix = { rows, cols: ncols, data: data.slice(0, rows * ncols) };
  }
  const colNames = names ? selected.map((c) => names![c]!) : undefined;
  const rowNamesOut = rowNameIndex >= 0 ? rowNames : undefined;
  const result: CsvTable = { matrix, header };
  const [outRows, outCols] = opts.transpose ? [colNames, rowNamesOut] : [rowNamesOut, colNames];
  if (outCols) result.colNames = outCols;
  if (outRows) result.rowNames = outRows;
  if (labelIndex >= 0) result.labels = labels;
  return result;
}

function validate(options: ReadCsvOptions | undefined, context: string): ValidOptions {
  const opts = parseOptions<ValidOptions>(readCsvOptionSpecs, options, context);
  if (opts.transpose && opts.labelColumn !== undefined) {
    throw new RangeError(`Expected no labelColumn with transpose for ${context} (labels are one per file row, and the rows become columns) but received both`);
  }
  return opts;
}

/** Parses CSV text already in memory; `name` is used in error messages (and picks the delimiter). See readCsv. */
export function parseCsv(text: string, name = 'text', options?: ReadCsvOptions): CsvTable {
  expectName(name, 'name');
  if (typeof text !== 'string') throw new TypeError(`Expected a string of CSV text for ${name} but received ${describeValue(text)}`);
  return tableToResult(text, name, validate(options, 'parseCsv()'));
}

/**
 * Reads a text file for the CSV readers within bounds: the file (or, for .gz, its decompressed bytes,
 * capped by files.ts) must fit the memory limit and Node's longest string.
 */
function readCsvText(path: string): string {
  if (!isGzipPath(path)) {
    const size = statSync(path).size;
    if (size > bufferConstants.MAX_STRING_LENGTH) {
      throw new FormatError(path, `Expected a CSV file of at most ${bufferConstants.MAX_STRING_LENGTH} bytes (the longest text Node.js holds) but received ${size} bytes; convert it to .npy`, {
        code: 'unsupported',
      });
    }
    // The bytes and their decoded string are held at once.
    checkMemory(2 * size, `the text of ${path}`);
  }
  try {
    return readTextMaybeGz(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ERR_STRING_TOO_LONG') {
      throw new FormatError(path, `Expected CSV text of at most ${bufferConstants.MAX_STRING_LENGTH} characters (the longest text Node.js holds) but the file decompresses to more; convert it to .npy`, {
        code: 'unsupported',
        cause: err,
      });
    }
    throw err;
  }
}

/**
 * Reads a CSV file (plain or .gz) into a Matrix of its data columns, with the row and column names it
 * carries and optionally a label column. Content problems are FormatErrors naming file, line, row and
 * column; the matrix is allocated only within the memory limit (lib/memory.ts).
 */
export function readCsv(path: string, options?: ReadCsvOptions): CsvTable {
  expectPath(path);
  const opts = validate(options, 'readCsv()');
  return tableToResult(readCsvText(path), path, opts);
}

/** One column of a CSV file as strings, e.g. the strata of a stratified factorization. Header: default true. */
export function readLabels(path: string, column: ColumnRef, options?: { header?: 'auto' | boolean; delimiter?: string }): string[] {
  expectPath(path);
  columnRefCheck(column, 'the column of readLabels()');
  const opts = parseOptions<{ header: 'auto' | boolean; delimiter?: string }>(labelSpecs, options, 'readLabels()');
  const text = readCsvText(path);
  let names: string[] | undefined;
  let headerLine = 0;
  let width = 0;
  let c = -1;
  let pending: { record: string[]; line: number } | undefined;
  const out: string[] = [];
  const start = (first: string[], line: number, header: boolean): void => {
    width = first.length;
    if (header) [names, headerLine] = [first, line];
    c = resolveColumn(names, width, column, path, 'the label column', headerLine);
    if (!header) out.push(first[c]!);
  };
  const add = (record: string[], line: number): void => {
    if (record.length !== width) {
      throw new FormatError(path, `Expected ${width} fields (as in the ${names ? 'header' : 'first row'}) but received ${record.length} in data row ${out.length + 1}`, {
        code: 'entry-count',
        line,
      });
    }
    out.push(record[c]!);
  };
  let index = 0;
  eachRecord(text, path, opts.delimiter ?? defaultDelimiter(path), (record, line) => {
    const i = index++;
    if (i === 0) {
      if (opts.header === 'auto') pending = { record, line };
      else start(record, line, opts.header);
      return;
    }
    if (i === 1 && pending) {
      start(pending.record, pending.line, detectHeader(pending.record, record));
      pending = undefined;
    }
    add(record, line);
  });
  if (index === 0) throw new FormatError(path, 'Expected a header row but received an empty file', { code: 'bad-header', line: 1 });
  if (pending) start(pending.record, pending.line, detectHeader(pending.record, undefined));
  return out;
}

// ---- writing ---------------------------------------------------------------------------------------

export interface WriteCsvOptions {
  /** Names of the rows: written as the first column, under an empty header cell (as R and pandas do). */
  rowNames?: readonly string[];
  /** Names of the columns (default V1, V2, …). */
  colNames?: readonly string[];
  /** Field delimiter: default ',' ('\t' for .tsv and .tsv.gz). */
  delimiter?: string;
}

function namesCheck(v: unknown, name: string): string[] {
  if (!Array.isArray(v) || v.some((s) => typeof s !== 'string')) {
    throw new TypeError(`Expected an array of strings for ${name} but received ${describeValue(v)}`);
  }
  return v as string[];
}

const writeSpecs: OptionSpecs = {
  rowNames: { kind: 'custom', description: 'an array of strings, one per row', check: namesCheck },
  colNames: { kind: 'custom', description: 'an array of strings, one per column', check: namesCheck },
  delimiter: delimiterSpec,
};

/** Quotes a field when it holds the delimiter, a quote, a line break or surrounding space (RFC 4180). */
function quoteField(s: string, delimiter: string): string {
  return s.includes(delimiter) || /["\r\n]/.test(s) || s !== s.trim() ? `"${s.replace(/"/g, '""')}"` : s;
}

/** Numbers as the shortest text that reads back to the same double; Inf, -Inf and NaN by name. */
function formatNumber(v: number): string {
  if (Number.isFinite(v)) return Object.is(v, -0) ? '-0' : String(v);
  return Number.isNaN(v) ? 'NaN' : v > 0 ? 'Inf' : '-Inf';
}

/**
 * Writes a matrix as CSV (gzipped when the path ends in .gz): a header row of column names, then one
 * line per row, preceded by its name when `rowNames` is given. readCsv reads it back with the same
 * names and the same doubles (NaN reads back as a missing value: pass {missing: NaN}).
 */
export function writeCsv(path: string, m: Matrix, options?: WriteCsvOptions): void {
  expectPath(path);
  const M = expectMatrix(m, 'the matrix of writeCsv()', { finite: false });
  const opts = parseOptions<WriteCsvOptions>(writeSpecs, options, 'writeCsv()');
  if (opts.rowNames && opts.rowNames.length !== M.rows) {
    throw new RangeError(`Expected ${M.rows} row names (one per row) for options.rowNames of writeCsv() but received ${opts.rowNames.length}`);
  }
  if (opts.colNames && opts.colNames.length !== M.cols) {
    throw new RangeError(`Expected ${M.cols} column names (one per column) for options.colNames of writeCsv() but received ${opts.colNames.length}`);
  }
  // The text is built in memory before it is written: up to ~25 characters per value.
  checkMemory(float64Bytes(M.rows, M.cols) * 3, `the CSV text of ${path} (${M.rows}×${M.cols})`);
  const d = opts.delimiter ?? defaultDelimiter(path);
  const colNames = opts.colNames ?? Array.from({ length: M.cols }, (_, j) => `V${j + 1}`);
  const chunks: Buffer[] = [];
  let lines: string[] = [(opts.rowNames ? [''] : []).concat(colNames).map((s) => quoteField(s, d)).join(d)];
  let size = 0;
  const flush = (): void => {
    chunks.push(Buffer.from(lines.join('\n') + '\n'));
    lines = [];
    size = 0;
  };
  for (let i = 0; i < M.rows; i++) {
    const cells: string[] = opts.rowNames ? [quoteField(opts.rowNames[i]!, d)] : [];
    for (let j = 0; j < M.cols; j++) cells.push(formatNumber(M.data[i * M.cols + j]!));
    const line = cells.join(d);
    lines.push(line);
    size += line.length;
    if (size > 1 << 20) flush();
  }
  if (lines.length) flush();
  writeChunksMaybeGz(path, chunks);
}
