/**
 * Loads the compiled addon (build/Release from a source build, else prebuilds/<platform>-<arch>)
 * through node-gyp-build, lazily on first use, and types its raw functions. A load failure caused by
 * a missing system library is turned into one message that names the packages to install.
 */
import { createRequire } from 'node:module';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

import { connectNativeMemoryLimit } from './memory.js';

const require = createRequire(import.meta.url);
/** The package root: this file lives in lib/ (sources) or dist/ (compiled). */
export const packageRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..');

export type CancelToken = { readonly __brand: 'CancelToken' };
export interface RawProgress {
  iteration: number;
  total: number;
  values: Float64Array;
}
type ProgressFn = ((r: RawProgress) => void) | undefined;
type AsyncTail = [token: CancelToken, onProgress: ProgressFn, intervalMs: number];

/**
 * The raw binding. lib/ validates properly first; every function re-checks its arguments all the same
 * (reading each field once, exact typed-array kinds, lengths, finiteness) and the memory it needs
 * against the limit of lib/memory.ts, so a direct call with garbage throws a TypeError/RangeError that
 * names the argument. Option objects must carry every field (defaults live in lib/'s specs).
 * Each family (lib/<family>.ts) adds its own functions with a module augmentation:
 *   declare module './native.js' { interface NativeBinding { myFn(...): ... } }
 */
export interface NativeBinding {
  createCancelToken(): CancelToken;
  cancel(token: CancelToken): void;
  /** This environment's async jobs: running now, started and settled so far, and how far the last settled one got. */
  jobStats(): { live: number; started: number; settled: number; lastIterations: number; lastTotal: number };
  /** `threadLimit`: the most threads this OpenBLAS build can use (its MAX_THREADS). */
  blasInfo(): { config: string; corename: string; threads: number; processors: number; parallel: number; threadLimit: number };
  setBlasThreads(n: number): number;
  /**
   * The addon's memory limit in bytes for this thread (0 = the memory available at each check, from
   * /proc/meminfo); returns the previous setting. lib/memory.ts forwards its setting here.
   */
  setMemoryLimit(bytes: number): number;
  buildInfo(): { napiVersion: number; compiler?: string; buildSystem?: string };
  /** Reference kernels for bench/: best-of-`repeats` seconds of a plain DGEMM, DSYRK and memory copy. */
  bench: {
    timeGemm(m: number, n: number, k: number, repeats: number): number;
    timeSyrk(p: number, k: number, repeats: number): number;
    timeCopy(n: number, repeats: number): number;
  };

  defect(Y: Float64Array, p: number, k: number): number;
  basicOrthogonality(Y: Float64Array, p: number, k: number): number;
  defectGradient(Y: Float64Array, B: number, p: number, k: number, batched: boolean): { value: number; gradient: Float64Array };
  retract(Y: Float64Array, B: number, p: number, k: number, type: string, w: number, nsIterations: number, polarMethod: string): { data: Float64Array; changed: boolean };
  retractAsync(Y: Float64Array, B: number, p: number, k: number, type: string, w: number, nsIterations: number, polarMethod: string, ...tail: AsyncTail): Promise<{ data: Float64Array; changed: boolean }>;
  inverseSqrt(A: Float64Array, k: number, method: string, epsilon: number, nsIterations: number): Float64Array;
  procrustes(A: Float64Array, B: Float64Array, n: number, k: number): Float64Array;
  qr(Y: Float64Array, p: number, k: number): { Q: Float64Array; R: Float64Array };
  svd(Y: Float64Array, p: number, k: number): { U: Float64Array; S: Float64Array; V: Float64Array };
  nonNegativity(Y: Float64Array, mode: string): Float64Array;
}

const MISSING_LIBRARY = /(lib(?:openblas|lapacke|lapack|blas|cblas|gfortran|quadmath)[\w.+-]*\.so[\w.]*): cannot open shared object file/;

/**
 * Maps a load error to the message users should see. Exported for tests; returns the original error
 * when it is not one we can explain.
 */
export function explainLoadError(err: unknown): Error {
  const message = err instanceof Error ? err.message : String(err);
  const missing = MISSING_LIBRARY.exec(message);
  if (missing) {
    return new Error(
      `nsa-flow: the native addon needs the system library ${missing[1]}, which is not installed.\n` +
        'Possible solutions:\n' +
        '  - Debian/Ubuntu: apt-get install -y libopenblas0 liblapacke   (runtime libraries)\n' +
        '  - or, to build from source: apt-get install -y libopenblas-dev liblapacke-dev, then npm rebuild nsa-flow',
      { cause: err },
    );
  }
  if (/No native build was found/.test(message)) {
    return new Error(
      'nsa-flow: no compiled addon was found for this platform.\n' +
        'Possible solutions:\n' +
        '  - apt-get install -y libopenblas-dev liblapacke-dev build-essential python3, then npm rebuild nsa-flow',
      { cause: err },
    );
  }
  return err instanceof Error ? err : new Error(message);
}

let binding: NativeBinding | undefined;

/**
 * The raw addon, loaded on first use. NSA_FLOW_ADDON=<path to a .node file> loads that build instead
 * of node-gyp-build's choice: `npm run test:sanitize` points it at the sanitizer build.
 */
export function native(): NativeBinding {
  if (binding === undefined) {
    try {
      const override = process.env.NSA_FLOW_ADDON;
      const load = require('node-gyp-build') as (dir: string) => NativeBinding;
      binding = override ? (require(resolve(override)) as NativeBinding) : load(packageRoot);
    } catch (err) {
      throw explainLoadError(err);
    }
    connectNativeMemoryLimit(binding.setMemoryLimit);
  }
  return binding;
}
