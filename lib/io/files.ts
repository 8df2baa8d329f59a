/** File helpers shared by the readers and writers of lib/io: path checks and transparent gzip. */
import * as fs from 'node:fs';
import { constants as bufferConstants } from 'node:buffer';
import * as zlib from 'node:zlib';
import { checkMemory, formatBytes, getMemoryLimit } from '../memory.js';
import { describeValue } from '../validate.js';
import { FormatError } from './errors.js';

/** TypeError unless `v` is a non-empty string (file paths are taken as strings only). */
export function expectPath(v: unknown, name = 'path'): string {
  if (typeof v !== 'string' || v.length === 0) {
    throw new TypeError(`Expected a non-empty file path string for ${name} but received ${describeValue(v)}`);
  }
  return v;
}

/** True when the path names a gzip file (by extension, case-insensitive). */
export function isGzipPath(path: string): boolean {
  return /\.gz$/i.test(path);
}

/** True when the bytes start with the gzip magic number (for hints in error messages). */
export function looksGzipped(bytes: Uint8Array): boolean {
  return bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b;
}

/** What the file format itself says about the decompressed size (see gunzipBytes). */
export interface GunzipOptions {
  /** The exact number of bytes the data must inflate to, as the file's own header declares it. */
  declaredBytes?: number;
  /** Who declares it, for the message, e.g. "the size its .npy header declares for shape (3, 4)". */
  declaredBy?: string;
}

/** Turns a zlib failure into a FormatError (truncated or corrupt stream); other errors pass through. */
function zlibFailure(err: unknown, file: string, compressedLength: number): unknown {
  const code = (err as { code?: unknown }).code;
  if (typeof code !== 'string' || !code.startsWith('Z_')) return err;
  const msg = (err as Error).message;
  if (code === 'Z_BUF_ERROR') {
    // zlib ran out of input before the end of the deflate stream: the file was cut short.
    return new FormatError(file, `Expected a complete gzip stream but the compressed data ends early (${msg}; the file is truncated)`, {
      code: 'truncated',
      offset: compressedLength,
      cause: err,
    });
  }
  return new FormatError(file, `Expected valid gzip data but zlib reports "${msg}" (${code}; the file is corrupt or not gzip)`, {
    code: 'bad-gzip',
    cause: err,
  });
}

const isTooLarge = (err: unknown): boolean => (err as { code?: unknown }).code === 'ERR_BUFFER_TOO_LARGE';

/**
 * Decompresses a whole gzip file held in memory, never inflating past a cap: the memory limit
 * (lib/memory.ts), the largest Buffer Node can make, and `declaredBytes` when the format declares its
 * size. A stream that would inflate further is refused as soon as it passes the cap (a gzip bomb costs
 * at most the cap, not its full size): over the memory limit is a RangeError "Not enough memory for
 * decompressing <file>: it inflates to more than N bytes …", over the declared size a FormatError
 * ('entry-count'). Corrupt or truncated streams are a FormatError ('bad-gzip', 'truncated').
 *
 * The gzip trailer's ISIZE (uncompressed size mod 2^32) is used as zlib's chunk size when it is within
 * the cap, so that an ordinary single-member file fills exactly one output buffer and zlib hands it back
 * without the final concatenation copy: the peak memory is then the compressed bytes plus one
 * uncompressed copy. A wrong hint (multi-member file, corrupt trailer) only costs that copy.
 */
export function gunzipBytes(compressed: Uint8Array, file: string, options: GunzipOptions = {}): Buffer {
  const input = Buffer.from(compressed.buffer, compressed.byteOffset, compressed.byteLength);
  const limit = getMemoryLimit();
  const declared = options.declaredBytes;
  const cap = Math.max(1, Math.min(limit, bufferConstants.MAX_LENGTH, declared ?? Infinity));
  const attempt = (opts: zlib.ZlibOptions): Buffer => {
    try {
      return zlib.gunzipSync(input, { ...opts, maxOutputLength: cap });
    } catch (err) {
      if (!isTooLarge(err)) throw zlibFailure(err, file, input.length);
      if (declared !== undefined && cap === declared) {
        throw new FormatError(
          file,
          `Expected the gzip data to inflate to ${declared} bytes (${options.declaredBy ?? 'the size the file declares'}) but it inflates to more than ${declared} bytes`,
          { code: 'entry-count', offset: declared, cause: err },
        );
      }
      const why = cap === limit ? `the memory limit (${formatBytes(limit)}); raise it with setMemoryLimit()` : `the largest buffer Node.js can hold (${formatBytes(cap)})`;
      throw new RangeError(`Not enough memory for decompressing ${file}: it inflates to more than ${cap} bytes, over ${why}`, { cause: err });
    }
  };
  let hint = 0;
  if (input.length >= 18) hint = input.readUInt32LE(input.length - 4);
  if (hint > 0 && hint <= cap) {
    try {
      return attempt({ chunkSize: Math.max(64, hint + 1) });
    } catch (err) {
      if (err instanceof FormatError || isTooLarge((err as { cause?: unknown }).cause)) throw err;
      // An implausible hint (allocation failure): fall back to zlib's default chunking.
    }
  }
  return attempt({});
}

/**
 * The first `minBytes` (or more) decompressed bytes of a gzip stream, inflating only a prefix of the
 * compressed data (growing it as needed), so that a header can be read before deciding how much the
 * whole may inflate to. Returns undefined when the whole stream holds fewer than `minBytes` bytes
 * (the caller then decompresses it whole: it is small).
 */
export function gunzipPrefix(compressed: Uint8Array, file: string, minBytes: number): Buffer | undefined {
  const input = Buffer.from(compressed.buffer, compressed.byteOffset, compressed.byteLength);
  checkMemory(minBytes, `the header of ${file}`);
  // Deflate expands at most ~1032:1, so a prefix of `take` compressed bytes inflates to at most about
  // 1032·take bytes: start small and grow by 4 until the output holds minBytes.
  for (let take = Math.max(256, Math.ceil(minBytes / 1024)); ; take *= 4) {
    if (take >= input.length) return undefined;
    let out: Buffer;
    try {
      out = zlib.gunzipSync(input.subarray(0, take), { finishFlush: zlib.constants.Z_SYNC_FLUSH });
    } catch (err) {
      throw zlibFailure(err, file, take);
    }
    if (out.length >= minBytes) return out;
  }
}

/** Bytes of a file as stored (not gunzipped), refused before reading when its size is over the memory limit. */
export function readWholeFile(path: string): Buffer {
  const size = fs.statSync(path).size;
  checkMemory(size, `reading ${path} (${size} bytes)`);
  return fs.readFileSync(path);
}

/** Reads a whole file, gunzipping it when the path ends in .gz (bounded as gunzipBytes says). */
export function readFileMaybeGz(path: string, options: GunzipOptions = {}): Buffer {
  const bytes = readWholeFile(path);
  return isGzipPath(path) ? gunzipBytes(bytes, path, options) : bytes;
}

/**
 * Reads a text file (UTF-8, gunzipped when the path ends in .gz). A leading BOM is dropped. The bytes
 * and the string each count against the memory limit; text longer than the longest string V8 can
 * hold is a FormatError ('unsupported').
 */
export function readTextMaybeGz(path: string): string {
  const bytes = readFileMaybeGz(path);
  checkMemory(bytes.length, `the text of ${path}`);
  let text: string;
  try {
    text = bytes.toString('utf8');
  } catch (err) {
    if ((err as { code?: unknown }).code !== 'ERR_STRING_TOO_LONG') throw err;
    throw new FormatError(path, `Expected text of at most ${bufferConstants.MAX_STRING_LENGTH} characters (the longest string Node.js holds) but received ${bytes.length} bytes; convert it to .npy`, {
      code: 'unsupported',
      cause: err,
    });
  }
  return text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
}

/**
 * Writes the chunks in order, gzip-compressed when the path ends in .gz. Plain files are written chunk by
 * chunk (no concatenation), so writing a large array does not copy it.
 */
export function writeChunksMaybeGz(path: string, chunks: readonly Uint8Array[]): void {
  if (isGzipPath(path)) {
    fs.writeFileSync(path, zlib.gzipSync(Buffer.concat(chunks as Uint8Array[])));
    return;
  }
  const fd = fs.openSync(path, 'w');
  try {
    for (const chunk of chunks) {
      let done = 0;
      while (done < chunk.byteLength) done += fs.writeSync(fd, chunk, done, chunk.byteLength - done);
    }
  } finally {
    fs.closeSync(fd);
  }
}

/** Reads exactly `length` bytes at `position` into `target` (looping over short reads); returns the count read. */
export function readFully(fd: number, target: Uint8Array, position: number, length = target.byteLength): number {
  let done = 0;
  while (done < length) {
    // One read(2) moves at most ~2 GiB; ask for at most 1 GiB at a time.
    const want = Math.min(length - done, 1 << 30);
    const n = fs.readSync(fd, target, done, want, position + done);
    if (n === 0) break;
    done += n;
  }
  return done;
}
