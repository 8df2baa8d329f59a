/**
 * The optional CUDA path (docs/cuda.md): a separate addon, build/cuda/nsa_flow_cuda.node, that the CPU
 * addon never links. It is looked for and loaded here, in try/catch, the first time something asks:
 * a missing file, a file that does not load, a machine without a driver or without cuBLAS/cuSOLVER
 * all end as `usable: false` with the reason, never as a failure of the package.
 *
 * The functions with a `device` option resolve it through `resolveDevice`: 'cpu' always runs on the
 * CPU; 'cuda' runs on the GPU or throws DeviceUnavailableError (why the GPU cannot be used) or a
 * RangeError (what this call asks that the device path does not implement); 'auto' runs on the GPU
 * only when it is usable, the call is supported there and the problem is at least `autoThreshold`
 * entries, else on the CPU.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { delimiter, join, resolve } from 'node:path';

import { NumericalError } from './errors.js';
import { packageRoot } from './native.js';
import type { OptionSpecs } from './validate.js';

const require = createRequire(import.meta.url);

export type Device = 'cpu' | 'cuda' | 'auto';
export const devices: readonly Device[] = ['cpu', 'cuda', 'auto'];

/** The `device` option of the functions that have a device path (spread into their option specs). */
export const deviceOptionSpecs = {
  device: {
    kind: 'enum',
    values: devices,
    default: 'cpu',
    description: "where the computation runs: 'cpu', 'cuda' (the GPU, or an error saying why not) or 'auto'",
  },
} as const satisfies OptionSpecs;

/** What `info().cuda` reports. */
export interface CudaInfo {
  /** A CUDA addon file exists (built by `npm run build:cuda`, or named by NSA_FLOW_CUDA_ADDON). */
  built: boolean;
  /** The addon loaded, a device answered and cuBLAS/cuSOLVER were found: `device: 'cuda'` works. */
  usable: boolean;
  /** Why it is not usable (absent when usable). */
  reason?: string;
  /** The device the solves run on (device 0), when one answered. */
  deviceName?: string;
  /** Its total memory in bytes, when one answered. */
  memoryBytes?: number;
}

/**
 * The GPU cannot run this call: no CUDA addon, no driver, no device, or no cuBLAS/cuSOLVER. `reason`
 * is `info().cuda.reason`. Thrown only for `device: 'cuda'`; 'auto' falls back to the CPU instead.
 */
export class DeviceUnavailableError extends Error {
  override name = 'DeviceUnavailableError';
  readonly reason: string;
  constructor(context: string, reason: string) {
    super(`${context}: device 'cuda' was requested but the GPU cannot be used: ${reason}. Use device 'cpu' or 'auto' to run on the CPU`);
    this.reason = reason;
  }
}

/** A problem of at least this many matrix entries (p·k) goes to the GPU under device 'auto'. Unmeasured: see docs/cuda.md. */
export const autoThreshold = 1 << 22;

/** The raw CUDA binding (native/cuda/binding.cpp). Arrays are row-major float64, as the CPU addon's. */
export interface CudaBinding {
  /** Finds a device and loads cuBLAS/cuSOLVER (searching `libraryDirs` first); never throws. */
  probe(libraryDirs: string[]): { usable: boolean; reason?: string; deviceName?: string; memoryBytes?: number };
  /** Free and total device memory in bytes. */
  memory(): { free: number; total: number };
  /**
   * The polar retraction family through the Gram matrix on the device (as the CPU's gramPolarMatrix):
   * 'done' with the result, 'unchanged' (Y returned: tiny or non-finite norm), or 'illConditioned'
   * (λmax > limit·λmin of YᵀY: the caller takes the CPU's SVD path).
   */
  polarGram(Y: Float64Array, p: number, k: number, w: number, conditionLimit: number): { outcome: 'done' | 'unchanged' | 'illConditioned'; data: Float64Array };
  /**
   * `iterations` plain Frobenius MU updates of W (n×r) and H (r×m) for A (n×m) on the device, in the
   * CPU's order; `deviceMs` the device time of the loop. Not a solve (no loss, trace or stop rule):
   * the building block of the device NMF, used by bench/gpu-check.mjs for parity and timing.
   */
  /**
   * nmfSync's device solve (lib/factorization/nmf-cuda.ts): Frobenius MU from the given W, H with the
   * loss recorded every `lossEvery` iterations and the tolerance rule; the final loss is the caller's.
   */
  nmfMu(
    A: Float64Array, W: Float64Array, H: Float64Array, n: number, m: number, r: number,
    epsilon: number, maxIterations: number, lossEvery: number, tolerance: number,
  ): { W: Float64Array; H: Float64Array; iterations: number; plateau: boolean; trace: { iteration: Float64Array; timeMs: Float64Array; loss: Float64Array } };
  nmfMuIterations(A: Float64Array, W: Float64Array, H: Float64Array, n: number, m: number, r: number, epsilon: number, iterations: number): { W: Float64Array; H: Float64Array; deviceMs: number };
}

interface Loaded {
  info: CudaInfo;
  binding?: CudaBinding;
}

let loaded: Loaded | undefined;

/** The default location of the CUDA addon, relative to the package root. */
export const defaultCudaAddonPath = join('build', 'cuda', 'nsa_flow_cuda.node');

/**
 * Directories searched first for libcublas/libcusolver: NSA_FLOW_CUDA_LIBS (path-list separated), e.g.
 * the lib folders of the nvidia-cublas / nvidia-cusolver Python wheels. The system's loader path follows.
 */
export function cudaLibraryDirs(env: NodeJS.ProcessEnv = process.env): string[] {
  return (env.NSA_FLOW_CUDA_LIBS ?? '').split(delimiter).filter((d) => d !== '');
}

/**
 * Loads the CUDA addon at `path` and asks it for a device; never throws. Exported for tests (a missing
 * file, a file that is not an addon); everything else goes through `cudaInfo()`.
 */
export function probeCudaAddon(path: string, libraryDirs: string[] = cudaLibraryDirs()): Loaded {
  if (!existsSync(path)) {
    return { info: { built: false, usable: false, reason: `no CUDA addon at ${path} (npm run build:cuda builds it where nvcc is installed)` } };
  }
  let binding: CudaBinding;
  try {
    binding = require(path) as CudaBinding;
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    return { info: { built: true, usable: false, reason: `the CUDA addon did not load: ${message}` } };
  }
  try {
    const p = binding.probe(libraryDirs);
    const info: CudaInfo = { built: true, usable: p.usable };
    if (!p.usable) info.reason = p.reason ?? 'the CUDA addon gave no reason';
    if (p.deviceName !== undefined) info.deviceName = p.deviceName;
    if (p.memoryBytes !== undefined) info.memoryBytes = p.memoryBytes;
    return p.usable ? { info, binding } : { info };
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    return { info: { built: true, usable: false, reason: `the CUDA addon's device probe failed: ${message}` } };
  }
}

/** The CUDA addon's path: NSA_FLOW_CUDA_ADDON when set, else build/cuda/nsa_flow_cuda.node of the package. */
export function cudaAddonPath(env: NodeJS.ProcessEnv = process.env): string {
  return env.NSA_FLOW_CUDA_ADDON ? resolve(env.NSA_FLOW_CUDA_ADDON) : join(packageRoot, defaultCudaAddonPath);
}

function load(): Loaded {
  loaded ??= probeCudaAddon(cudaAddonPath());
  return loaded;
}

/** `info().cuda`: probed once per process (the first call loads the addon and initializes the device). */
export function cudaInfo(): CudaInfo {
  return { ...load().info };
}

/**
 * Where a call runs. `supported` is undefined when the device path implements this call, else what it
 * lacks (e.g. "retraction 'cayley'"); `entries` the problem size compared with autoThreshold.
 */
export function resolveDevice(device: Device, context: string, entries: number, unsupported?: string): { binding?: CudaBinding } {
  if (device === 'cpu') return {};
  if (device === 'cuda') {
    if (unsupported !== undefined) {
      throw new RangeError(`Expected a call the CUDA path implements for options.device 'cuda' of ${context} but received ${unsupported}; use device 'cpu' or 'auto'`);
    }
    const l = load();
    if (!l.binding) throw new DeviceUnavailableError(context, l.info.reason ?? 'unknown');
    return { binding: l.binding };
  }
  if (unsupported !== undefined || entries < autoThreshold) return {};
  const l = load();
  return l.binding ? { binding: l.binding } : {};
}

/**
 * A device call with its errors mapped: the addon marks an out-of-memory with `kind: 'outOfMemory'`
 * and the bytes it needed (a RangeError naming them), any other CUDA/cuBLAS/cuSOLVER failure with
 * `kind: 'cuda'` (a NumericalError); argument errors pass through.
 */
export function callDevice<T>(context: string, fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    throw mapDeviceError(err, context);
  }
}

export function mapDeviceError(err: unknown, context: string): Error {
  if (!(err instanceof Error)) return new Error(String(err));
  const e = err as Error & { kind?: string; bytes?: number; freeBytes?: number };
  if (e.kind === 'outOfMemory') {
    return new RangeError(
      `${context}: the GPU has not enough free memory: the device solve needs ${e.bytes} bytes and ${e.freeBytes ?? 'fewer'} are free; use device 'cpu'`,
      { cause: err },
    );
  }
  if (e.kind === 'cuda') return new NumericalError(`${context}: ${e.message}`, { cause: err });
  return err;
}

/** Device memory check before the upload: a RangeError naming the bytes when they cannot fit. */
export function checkDeviceMemory(binding: CudaBinding, bytes: number, context: string, what: string): void {
  const { free } = binding.memory();
  if (bytes > free) {
    throw new RangeError(`${context}: ${what} needs ${bytes} bytes of GPU memory but ${free} are free; use device 'cpu'`);
  }
}
