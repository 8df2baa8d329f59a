/**
 * The memory limit: every allocation whose size follows from the caller's input (outputs, workspaces,
 * decoded files) is computed first and compared with this limit, so that an absurd request is a
 * RangeError that names the argument and the bytes it would need, never an abort or the kernel's OOM
 * killer. The addon keeps the same limit for its own second guard (setMemoryLimit forwards it).
 *
 * Default ('auto'): the memory available when the check runs (os.freemem(), which is MemAvailable on
 * Linux), so a request that fits the machine right now is allowed and one that does not is refused.
 * A number fixes the limit in bytes (e.g. a server's per-request budget).
 */
import { freemem } from 'node:os';

import { describeValue } from './validate.js';

let fixedLimit: number | undefined;
// Set by lib/native.ts once the addon is loaded, so that its guard follows the same limit.
let forwardToNative: ((bytes: number) => void) | undefined;

/** Formats a byte count for messages: "34359738368 bytes (32.0 GiB)". */
export function formatBytes(bytes: number): string {
  const units = ['bytes', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB', 'EiB'];
  let v = bytes;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  const exact = Number.isFinite(bytes) ? `${Math.round(bytes)} bytes` : 'more bytes than a double holds';
  return u === 0 ? exact : `${exact} (${v.toFixed(1)} ${units[u]})`;
}

/**
 * Sets the memory limit in bytes, or 'auto' (the default) for the memory available at each check.
 * Returns the previous setting. Every function checks the memory its result and workspaces need
 * (e.g. the k×k Gram of a wide Y, a Khatri–Rao product, factors of a large rank) against this limit
 * before allocating, and throws a RangeError naming the argument and the bytes instead.
 * @example setMemoryLimit(2 * 1024 ** 3); // refuse any call that would need more than 2 GiB
 */
export function setMemoryLimit(bytes: number | 'auto'): number | 'auto' {
  if (bytes !== 'auto') {
    if (typeof bytes !== 'number' || Number.isNaN(bytes)) {
      throw new TypeError(`Expected a number of bytes or 'auto' for memoryLimit but received ${describeValue(bytes)}`);
    }
    if (!(bytes >= 1) || !Number.isSafeInteger(bytes)) {
      throw new RangeError(`Expected an integer number of bytes in [1, 2^53) or 'auto' for memoryLimit but received ${describeValue(bytes)}`);
    }
  }
  const previous = fixedLimit ?? 'auto';
  fixedLimit = bytes === 'auto' ? undefined : bytes;
  forwardToNative?.(fixedLimit ?? 0);
  return previous;
}

/** The limit in force now, in bytes: the fixed setting, or the memory available now under 'auto'. */
export function getMemoryLimit(): number {
  return fixedLimit ?? freemem();
}

/** The setting: a number of bytes, or 'auto'. */
export function getMemoryLimitSetting(): number | 'auto' {
  return fixedLimit ?? 'auto';
}

/**
 * Throws a RangeError when `bytes` (which may be a non-finite or unsafe product: that is over any
 * limit) exceeds the limit. `what` names the argument or the allocation, e.g.
 * "the Gram matrix of Y (65536×65536)".
 */
export function checkMemory(bytes: number, what: string): void {
  const limit = getMemoryLimit();
  if (!(bytes <= limit)) {
    throw new RangeError(
      `Not enough memory for ${what}: it needs ${formatBytes(bytes)}, over the memory limit of ${formatBytes(limit)}; ` +
        'reduce the problem size or raise the limit with setMemoryLimit()',
    );
  }
}

/** Bytes of `count` float64 values (count may be a product of dimensions; overflow stays > any limit). */
export function float64Bytes(...dims: number[]): number {
  let n = 8;
  for (const d of dims) n *= d;
  return n;
}

/** Called by lib/native.ts with the addon's setter once it is loaded. */
export function connectNativeMemoryLimit(setter: (bytes: number) => void): void {
  forwardToNative = setter;
  setter(fixedLimit ?? 0);
}
