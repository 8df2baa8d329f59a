/**
 * Errors of the data readers (lib/io).
 *
 * Policy: problems with the *arguments* of a reader or writer (a path that is not a string, an unknown
 * option, a malformed Matrix to write) are TypeError/RangeError from lib/validate.ts, like everywhere else
 * in the API. Problems with the *content of a file* are a FormatError: its message says what was expected
 * and what was found, and names the file and the place ("at line 12" for text formats, "at byte 128" for
 * .npy), and the same facts are fields for programs: `file`, `line` (1-based) or `offset` (0-based byte
 * offset into the uncompressed bytes), and `code` (a stable class of the problem, see FormatErrorCode).
 * Operating-system errors (ENOENT, EACCES …) are passed through untouched.
 */

/** The class of a content problem, stable across message wording changes. */
export type FormatErrorCode =
  /** The data ends before what its header or size line announced (npy data bytes, gzip stream, CSV quote). */
  | 'truncated'
  /** Not the expected kind of file: wrong magic string or MatrixMarket banner. */
  | 'bad-magic'
  /** The header (npy dict, MatrixMarket size line, CSV header row) cannot be parsed or is inconsistent. */
  | 'bad-header'
  /** A well-formed file using a feature this reader does not support (dtype, complex field, …). */
  | 'unsupported'
  /** A big-endian npy dtype such as '>f8'. */
  | 'big-endian'
  /** A cell / entry / value that is not a number (or not an integer where one is required). */
  | 'bad-value'
  /** An empty or NA cell in a numeric column, when missing values were not allowed. */
  | 'missing-value'
  /** A MatrixMarket row/column index outside 1..rows / 1..cols. */
  | 'index-out-of-range'
  /** More or fewer entries (or CSV fields, or bytes) than announced. */
  | 'entry-count'
  /** A requested column is not in the file. */
  | 'unknown-column'
  /** The gzip stream is corrupt (bad header, checksum or deflate data). */
  | 'bad-gzip';

export interface FormatErrorDetails {
  code: FormatErrorCode;
  /** 1-based line number, for text formats. */
  line?: number;
  /** 0-based byte offset into the (uncompressed) file, for binary formats. */
  offset?: number;
  cause?: unknown;
}

/** A file whose content cannot be read. See the module comment for the fields. */
export class FormatError extends Error {
  override name = 'FormatError';
  readonly file: string;
  readonly code: FormatErrorCode;
  readonly line: number | undefined;
  readonly offset: number | undefined;

  /** `problem` is the sentence without the location, e.g. "Expected a number but received 'abc'". */
  constructor(file: string, problem: string, details: FormatErrorDetails) {
    const where =
      details.line !== undefined ? ` at line ${details.line}` : details.offset !== undefined ? ` at byte ${details.offset}` : '';
    super(`${problem} in ${file}${where}`, details.cause === undefined ? undefined : { cause: details.cause });
    this.file = file;
    this.code = details.code;
    this.line = details.line;
    this.offset = details.offset;
  }
}

/** Printable form of a piece of file content for a message: quoted, shortened, control bytes escaped. */
export function quoteContent(s: string, max = 40): string {
  const cut = s.length > max ? s.slice(0, max) + '…' : s;
  return JSON.stringify(cut);
}
