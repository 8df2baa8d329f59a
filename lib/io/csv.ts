/**
 * CSV tables to matrices and label vectors.
 *
 * Parsing (RFC 4180 quoting, embedded commas/quotes/newlines, BOM, CRLF) is done by the csv-parse
 * package; this module picks columns, converts cells to numbers and reports problems as FormatErrors
 * naming the file, the line, the data row and the column. A path ending in .gz is gunzipped; .tsv / .tsv.gz
 * files default to a tab delimiter.
 *
 * Numbers are decimal (optionally with exponent), or inf / infinity (any case, signed). Missing cells are
 * empty or one of NA, N/A, NaN, nan, null, NULL: they are an error unless `missing` gives the value to use
 * (typically NaN).
 */
import { CsvError, parse as parseCsvText } from 'csv-parse/sync';
import type { Matrix } from '../matrix.js';
import { describeValue, parseOptions, type OptionSpecs } from '../validate.js';
import { FormatError, quoteContent, type FormatErrorCode } from './errors.js';
import { expectPath, readTextMaybeGz } from './files.js';
import { parseNumberToken } from './numbers.js';

/** A column given by its header name or by its 0-based position. */
export type ColumnRef = string | number;

export interface ReadCsvOptions {
  /**
   * The columns of the matrix, in this order (names or 0-based positions). Default: every numeric
   * column except the label column — a column is numeric when all its cells are numbers or missing
   * and at least one is a number (so id columns such as `row` or `index` are included: name the
   * columns you want when the file has them).
   */
  columns?: readonly ColumnRef[];
  /** A column returned as strings in `labels` (e.g. the strata). */
  labelColumn?: ColumnRef;
  /** The first row holds the column names (default true). Without it columns are named '0', '1', …. */
  header?: boolean;
  /** Value for missing cells in numeric columns (typically NaN). Default: a missing cell is an error. */
  missing?: number;
  /** Field delimiter: default ',' ('\t' for .tsv and .tsv.gz files). */
  delimiter?: string;
}

export interface CsvTable {
  /** Rows = data rows of the file, columns = the selected numeric columns. */
  matrix: Matrix;
  /** Names of the matrix columns. */
  columns: string[];
  /** The label column's cells, when `labelColumn` was given. */
  labels?: string[];
}

function columnRefCheck(v: unknown, name: string): ColumnRef {
  if (typeof v === 'string' && v.length > 0) return v;
  if (typeof v === 'number' && Number.isInteger(v) && v >= 0) return v;
  throw new TypeError(`Expected a column name or 0-based column index for ${name} but received ${describeValue(v)}`);
}

const readSpecs: OptionSpecs = {
  columns: {
    kind: 'custom',
    description: 'a non-empty array of column names or 0-based indices',
    check: (v, name) => {
      if (!Array.isArray(v) || v.length === 0) {
        throw new TypeError(`Expected a non-empty array of column names or 0-based indices for ${name} but received ${describeValue(v)}`);
      }
      v.forEach((c, i) => columnRefCheck(c, `${name}[${i}]`));
      return v;
    },
  },
  labelColumn: { kind: 'custom', description: 'a column name or 0-based index', check: columnRefCheck },
  header: { kind: 'boolean', description: 'whether the first row holds column names', default: true },
  missing: {
    kind: 'custom',
    description: 'a number (NaN allowed)',
    check: (v, name) => {
      if (typeof v !== 'number') throw new TypeError(`Expected a number (NaN allowed) for ${name} but received ${describeValue(v)}`);
      return v;
    },
  },
  delimiter: {
    kind: 'custom',
    description: 'a non-empty string',
    check: (v, name) => {
      if (typeof v !== 'string' || v.length === 0 || /[\r\n"]/.test(v)) {
        throw new TypeError(`Expected a non-empty delimiter string (no quote or line break) for ${name} but received ${describeValue(v)}`);
      }
      return v;
    },
  },
};

const labelSpecs: OptionSpecs = { header: readSpecs.header!, delimiter: readSpecs.delimiter! };

const MISSING = new Set(['', 'NA', 'N/A', 'NaN', 'nan', 'null', 'NULL']);

interface Table {
  names: string[];
  rows: string[][];
  /** 1-based line where each data row starts. */
  lines: number[];
  /** Line of the header row (or 0 without one). */
  headerLine: number;
}

/** Parses CSV text into rows of strings, with the starting line of every record. */
function parseTable(text: string, file: string, header: boolean, delimiter: string): Table {
  let records: { record: string[]; info: { lines: number; empty_lines: number } }[];
  try {
    records = parseCsvText(text, { delimiter, info: true, bom: true, skip_empty_lines: true }) as unknown as typeof records;
  } catch (err) {
    if (err instanceof CsvError) {
      const e = err as CsvError & { lines?: number };
      const code: FormatErrorCode =
        e.code === 'CSV_QUOTE_NOT_CLOSED' ? 'truncated' : e.code === 'CSV_RECORD_INCONSISTENT_FIELDS_LENGTH' ? 'entry-count' : 'bad-value';
      throw new FormatError(file, `Expected well-formed CSV but the parser reports "${e.message}" (${e.code})`, {
        code,
        line: typeof e.lines === 'number' ? e.lines : undefined,
        cause: err,
      });
    }
    throw err;
  }
  const rows: string[][] = [];
  const lines: number[] = [];
  let prevEnd = 0;
  let prevEmpty = 0;
  for (const { record, info } of records) {
    lines.push(prevEnd + 1 + (info.empty_lines - prevEmpty));
    rows.push(record);
    prevEnd = info.lines;
    prevEmpty = info.empty_lines;
  }
  if (!header) {
    const n = rows[0]?.length ?? 0;
    return { names: Array.from({ length: n }, (_, i) => String(i)), rows, lines, headerLine: 0 };
  }
  if (rows.length === 0) {
    throw new FormatError(file, 'Expected a header row but received an empty file', { code: 'bad-header', line: 1 });
  }
  const names = rows.shift()!;
  const headerLine = lines.shift()!;
  return { names, rows, lines, headerLine };
}

function resolveColumn(t: Table, ref: ColumnRef, file: string, what: string): number {
  if (typeof ref === 'number') {
    if (ref >= t.names.length) {
      throw new FormatError(file, `Expected ${what} ${ref} (0-based) but the file has ${t.names.length} columns`, {
        code: 'unknown-column',
        line: t.headerLine || 1,
      });
    }
    return ref;
  }
  const first = t.names.indexOf(ref);
  if (first < 0) {
    const list = t.names.length > 12 ? `${t.names.slice(0, 12).join(', ')}, … (${t.names.length} in all)` : t.names.join(', ');
    throw new FormatError(file, `Expected ${what} ${quoteContent(ref)} but the header has no such column (columns: ${list})`, {
      code: 'unknown-column',
      line: t.headerLine || 1,
    });
  }
  if (t.names.indexOf(ref, first + 1) >= 0) {
    throw new FormatError(file, `Expected one column named ${quoteContent(ref)} for ${what} but the header has several (give its 0-based index instead)`, {
      code: 'bad-header',
      line: t.headerLine || 1,
    });
  }
  return first;
}

function defaultDelimiter(path: string): string {
  return /\.tsv(\.gz)?$/i.test(path) ? '\t' : ',';
}

type ValidOptions = ReadCsvOptions & { header: boolean };

/** Parses CSV text already in memory; `name` is used in error messages (and picks the delimiter). See readCsv. */
export function parseCsv(text: string, name = 'text', options?: ReadCsvOptions): CsvTable {
  if (typeof text !== 'string') throw new TypeError(`Expected a string of CSV text for ${name} but received ${describeValue(text)}`);
  return tableToResult(text, name, parseOptions<ValidOptions>(readSpecs, options, 'parseCsv()'));
}

function tableToResult(text: string, name: string, opts: ValidOptions): CsvTable {
  const t = parseTable(text, name, opts.header, opts.delimiter ?? defaultDelimiter(name));
  if (t.rows.length === 0) {
    throw new FormatError(name, 'Expected at least one data row but received none', { code: 'entry-count', line: t.headerLine + 1 });
  }
  const labelIndex = opts.labelColumn === undefined ? -1 : resolveColumn(t, opts.labelColumn, name, 'the label column');
  let selected: number[];
  if (opts.columns) {
    selected = opts.columns.map((c, i) => resolveColumn(t, c, name, `column ${i} of options.columns,`));
  } else {
    selected = [];
    for (let c = 0; c < t.names.length; c++) {
      if (c === labelIndex) continue;
      let numbers = 0;
      let ok = true;
      for (const row of t.rows) {
        const cell = row[c]!.trim();
        if (MISSING.has(cell)) continue;
        if (parseNumberToken(cell) === undefined) {
          ok = false;
          break;
        }
        numbers++;
      }
      if (ok && numbers > 0) selected.push(c);
    }
    if (selected.length === 0) {
      throw new FormatError(name, 'Expected at least one numeric column but every column holds text', { code: 'bad-value', line: t.headerLine || 1 });
    }
  }
  const nrows = t.rows.length;
  const ncols = selected.length;
  const data = new Float64Array(nrows * ncols);
  for (let r = 0; r < nrows; r++) {
    const row = t.rows[r]!;
    for (let k = 0; k < ncols; k++) {
      const c = selected[k]!;
      const raw = row[c]!;
      const cell = raw.trim();
      let v: number | undefined;
      if (MISSING.has(cell)) {
        if (opts.missing === undefined) {
          throw new FormatError(
            name,
            `Expected a number for column ${quoteContent(t.names[c]!)} in data row ${r + 1} but received ${cell === '' ? 'an empty cell' : quoteContent(cell)} (pass {missing: NaN} to allow missing values)`,
            { code: 'missing-value', line: t.lines[r] },
          );
        }
        v = opts.missing;
      } else {
        v = parseNumberToken(cell);
        if (v === undefined) {
          throw new FormatError(name, `Expected a number for column ${quoteContent(t.names[c]!)} in data row ${r + 1} but received ${quoteContent(raw)}`, {
            code: 'bad-value',
            line: t.lines[r],
          });
        }
      }
      data[r * ncols + k] = v;
    }
  }
  const result: CsvTable = { matrix: { rows: nrows, cols: ncols, data }, columns: selected.map((c) => t.names[c]!) };
  if (labelIndex >= 0) result.labels = t.rows.map((row) => row[labelIndex]!);
  return result;
}

/**
 * Reads a CSV file (plain or .gz) into a Matrix of its numeric columns (or the requested ones), their
 * names and optionally a label column. Content problems are FormatErrors naming file, line, row and column.
 */
export function readCsv(path: string, options?: ReadCsvOptions): CsvTable {
  expectPath(path);
  const opts = parseOptions<ValidOptions>(readSpecs, options, 'readCsv()');
  return tableToResult(readTextMaybeGz(path), path, opts);
}

/** One column of a CSV file as strings, e.g. the strata of a stratified factorization. */
export function readLabels(path: string, column: ColumnRef, options?: { header?: boolean; delimiter?: string }): string[] {
  expectPath(path);
  columnRefCheck(column, 'the column of readLabels()');
  const opts = parseOptions<{ header: boolean; delimiter?: string }>(labelSpecs, options, 'readLabels()');
  const t = parseTable(readTextMaybeGz(path), path, opts.header, opts.delimiter ?? defaultDelimiter(path));
  const c = resolveColumn(t, column, path, 'the label column');
  return t.rows.map((row) => row[c]!);
}
