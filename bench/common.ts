// Shared helpers for benchmarks: timing, and the speed limits measured in the same run that every
// benchmark reports ratios against.
import { native } from '../lib/native.js';

/** Median wall time (seconds) of `fn` over `repeats` runs after one warm-up. */
export async function medianSeconds(repeats: number, fn: () => unknown | Promise<unknown>): Promise<number> {
  await fn();
  const times: number[] = [];
  for (let i = 0; i < repeats; i++) {
    const t0 = process.hrtime.bigint();
    await fn();
    times.push(Number(process.hrtime.bigint() - t0) / 1e9);
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)]!;
}

/** GFLOP/s of a plain DGEMM of the given shape on this machine, now (best of `repeats`). */
export function dgemmGflops(m: number, n: number, k: number, repeats = 5): number {
  const s = native().bench.timeGemm(m, n, k, repeats);
  return (2 * m * n * k) / s / 1e9;
}

/** Seconds of one DGEMM of the given shape (best of `repeats`). */
export function dgemmSeconds(m: number, n: number, k: number, repeats = 5): number {
  return native().bench.timeGemm(m, n, k, repeats);
}

/** Seconds of one DSYRK YᵀY with Y p×k (best of `repeats`). */
export function dsyrkSeconds(p: number, k: number, repeats = 5): number {
  return native().bench.timeSyrk(p, k, repeats);
}

/** Seconds to copy n doubles (best of `repeats`), i.e. the memory-bandwidth floor of one pass. */
export function copySeconds(n: number, repeats = 5): number {
  return native().bench.timeCopy(n, repeats);
}

/** Deterministic pseudo-random numbers for benchmark inputs (not for anything statistical). */
export function lcgFill(n: number, seed = 1, gaussian = false): Float64Array {
  const out = new Float64Array(n);
  let s = seed >>> 0 || 1;
  const next = (): number => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return (s + 0.5) / 4294967296;
  };
  for (let i = 0; i < n; i++) {
    out[i] = gaussian ? Math.sqrt(-2 * Math.log(next())) * Math.cos(2 * Math.PI * next()) : next();
  }
  return out;
}

export function fmt(x: number, digits = 3): string {
  return Number.isFinite(x) ? x.toPrecision(digits) : String(x);
}
