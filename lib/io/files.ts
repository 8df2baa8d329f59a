/** File helpers shared by the readers and writers of lib/io: path checks and transparent gzip. */
import * as fs from 'node:fs';
import * as zlib from 'node:zlib';
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

/**
 * Decompresses a whole gzip file held in memory. The gzip trailer's ISIZE (uncompressed size mod 2^32)
 * is used as zlib's chunk size, so that for an ordinary single-member file below 4 GiB zlib fills exactly
 * one output buffer and hands it back without the final concatenation copy: the peak memory is then the
 * compressed bytes plus one uncompressed copy. A wrong hint (multi-member file, corrupt trailer) only
 * costs that copy. Corrupt or truncated streams become a FormatError.
 */
export function gunzipBytes(compressed: Uint8Array, file: string): Buffer {
  const input = Buffer.from(compressed.buffer, compressed.byteOffset, compressed.byteLength);
  let hint = 0;
  if (input.length >= 18) hint = input.readUInt32LE(input.length - 4);
  const attempt = (opts: zlib.ZlibOptions | undefined): Buffer => {
    try {
      return zlib.gunzipSync(input, opts);
    } catch (err) {
      const code = (err as { code?: unknown }).code;
      if (typeof code !== 'string' || !code.startsWith('Z_')) throw err;
      const msg = (err as Error).message;
      if (code === 'Z_BUF_ERROR') {
        // zlib ran out of input before the end of the deflate stream: the file was cut short.
        throw new FormatError(file, `Expected a complete gzip stream but the compressed data ends early (${msg}; the file is truncated)`, {
          code: 'truncated',
          offset: input.length,
          cause: err,
        });
      }
      throw new FormatError(file, `Expected valid gzip data but zlib reports "${msg}" (${code}; the file is corrupt or not gzip)`, {
        code: 'bad-gzip',
        cause: err,
      });
    }
  };
  if (hint > 0) {
    try {
      return attempt({ chunkSize: Math.max(64, hint + 1) });
    } catch (err) {
      if (err instanceof FormatError) throw err;
      // An implausible hint (allocation failure): fall back to zlib's default chunking.
    }
  }
  return attempt(undefined);
}

/** Reads a whole file, gunzipping it when the path ends in .gz. */
export function readFileMaybeGz(path: string): Buffer {
  const bytes = fs.readFileSync(path);
  return isGzipPath(path) ? gunzipBytes(bytes, path) : bytes;
}

/** Reads a text file (UTF-8, gunzipped when the path ends in .gz). A leading BOM is dropped. */
export function readTextMaybeGz(path: string): string {
  const text = readFileMaybeGz(path).toString('utf8');
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
