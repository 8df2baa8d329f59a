// The optional CUDA path (docs/cuda.md), as far as a machine without a GPU can check it — and the same
// tests check the device results where a GPU is usable. Loading and fallback: info().cuda for an
// absent addon, an addon that does not load, and the built addon on this machine; the `device` guards
// by class and message; 'auto' falling back to the CPU with bit-identical results. The device solves'
// arithmetic: native/cuda/kernels.hpp compiled as host code (native/cuda/host_check.cpp, built here
// with the host compiler) against the CPU addon, at 1e-12 relative (the formulas are the CPU's,
// operation for operation; only the order of some sums differs).
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { autoThreshold, cudaAddonPath, cudaLibraryDirs, probeCudaAddon } from '../lib/cuda.js';
import { applyNonNegativity, DeviceUnavailableError, info, nmfSync, retract, svd, type Matrix } from '../lib/index.js';
import { relativeError, repoRoot } from './helpers/shared.js';
import { uniform } from './helpers/uniform.js';

function randomMatrix(rows: number, cols: number, seed: number, offset = 0): Matrix {
  const u = uniform(seed);
  const data = new Float64Array(rows * cols);
  for (let i = 0; i < data.length; i++) data[i] = u() + offset;
  return { rows, cols, data };
}

const usable = info().cuda.usable;

describe('loading the CUDA addon', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'nsa-cuda-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('reports built: false with the path when there is no addon file', () => {
    const path = join(dir, 'absent.node');
    const r = probeCudaAddon(path);
    expect(r.info).toEqual({ built: false, usable: false, reason: `no CUDA addon at ${path} (npm run build:cuda builds it where nvcc is installed)` });
    expect(r.binding).toBeUndefined();
  });

  it('reports built: true, usable: false with the loader error when the file is not an addon', () => {
    const path = join(dir, 'broken.node');
    writeFileSync(path, 'not an ELF file');
    const r = probeCudaAddon(path);
    expect(r.info.built).toBe(true);
    expect(r.info.usable).toBe(false);
    expect(r.info.reason).toMatch(/^the CUDA addon did not load: .*(invalid ELF header|file too short)/);
    expect(r.binding).toBeUndefined();
  });

  it('reads the library folders from NSA_FLOW_CUDA_LIBS', () => {
    expect(cudaLibraryDirs({ NSA_FLOW_CUDA_LIBS: '/a/lib:/b/lib' })).toEqual(['/a/lib', '/b/lib']);
    expect(cudaLibraryDirs({})).toEqual([]);
  });

  it("info().cuda describes this machine's build: absent, or loaded with a device or the reason there is none", () => {
    const c = info().cuda;
    const path = cudaAddonPath();
    expect(c.built).toBe(existsSync(path));
    if (!c.built) {
      expect(c).toEqual({ built: false, usable: false, reason: expect.stringContaining('no CUDA addon at') });
    } else if (!c.usable) {
      // Built but not usable: on a machine without a GPU the runtime names the missing driver/device;
      // with a device, cuBLAS/cuSOLVER were not found. Never a load failure of the addon built here.
      expect(c.reason).toMatch(/no NVIDIA driver|no usable device|reports no device|cuBLAS was not found|cuSOLVER was not found/);
      expect(c.reason).not.toMatch(/did not load/);
    } else {
      expect(c.reason).toBeUndefined();
      expect(typeof c.deviceName).toBe('string');
      expect(c.memoryBytes).toBeGreaterThan(0);
    }
  });
});

describe('the device option', () => {
  const Y = randomMatrix(40, 6, 11);

  it('is validated like every enum option', () => {
    expect(() => retract(Y, { device: 'gpu' as never })).toThrow(RangeError);
    expect(() => retract(Y, { device: 'gpu' as never })).toThrow(`Expected one of 'cpu', 'cuda', 'auto' for options.device of retract() but received the string "gpu"`);
    expect(() => retract(Y, { device: 1 as never })).toThrow(TypeError);
  });

  it("device 'cuda' with a call the device path lacks is a RangeError naming what, on any machine", () => {
    expect(() => retract(Y, { type: 'cayley', device: 'cuda' })).toThrow(RangeError);
    expect(() => retract(Y, { type: 'cayley', device: 'cuda' })).toThrow(
      "Expected a call the CUDA path implements for options.device 'cuda' of retract() but received retraction 'cayley' (the device has 'polar' and 'softPolar'); use device 'cpu' or 'auto'",
    );
    expect(() => retract(Y, { type: 'polar', polarMethod: 'svd', device: 'cuda' })).toThrow(/polarMethod 'svd' \(the device computes the polar factor through YᵀY\)/);
  });

  it.skipIf(usable)("device 'cuda' without a usable GPU throws DeviceUnavailableError carrying info().cuda.reason", () => {
    const reason = info().cuda.reason!;
    let thrown: unknown;
    try {
      retract(Y, { type: 'polar', device: 'cuda' });
    } catch (err) {
      thrown = err;
    }
    expect(thrown).toBeInstanceOf(DeviceUnavailableError);
    expect(thrown).toBeInstanceOf(Error);
    const e = thrown as DeviceUnavailableError;
    expect(e.name).toBe('DeviceUnavailableError');
    expect(e.reason).toBe(reason);
    expect(e.message).toBe(`retract(): device 'cuda' was requested but the GPU cannot be used: ${reason}. Use device 'cpu' or 'auto' to run on the CPU`);
  });

  it.skipIf(!usable)("device 'cuda' matches the CPU's Gram path to 1e-10 relative (polar, softPolar)", () => {
    for (const [type, w] of [['polar', 1], ['softPolar', 0.6]] as const) {
      const cpu = retract(Y, { type, w, polarMethod: 'gram' });
      const gpu = retract(Y, { type, w, polarMethod: 'gram', device: 'cuda' });
      expect(relativeError(gpu.data, cpu.data)).toBeLessThan(1e-10);
    }
  });

  it("device 'auto' below the threshold, or without a usable GPU, is the CPU result bit for bit", () => {
    const small = randomMatrix(50, 5, 3);
    expect(retract(small, { type: 'softPolar', w: 0.5, device: 'auto' }).data).toEqual(retract(small, { type: 'softPolar', w: 0.5 }).data);
    // An unsupported call under 'auto' runs on the CPU instead of failing.
    expect(retract(small, { type: 'cayley', device: 'auto' }).data).toEqual(retract(small, { type: 'cayley' }).data);
  });

  it.skipIf(usable)("device 'auto' above the threshold without a usable GPU is the CPU result bit for bit", () => {
    const k = 16;
    const big = randomMatrix(autoThreshold / k, k, 5);
    expect(big.rows * big.cols).toBe(autoThreshold);
    const auto = retract(big, { type: 'polar', device: 'auto' });
    const cpu = retract(big, { type: 'polar', device: 'cpu' });
    // Counted by hand: a deep toEqual over 4M entries takes a minute.
    let differing = 0;
    for (let i = 0; i < cpu.data.length; i++) if (!Object.is(auto.data[i], cpu.data[i])) differing++;
    expect(differing).toBe(0);
  });
});

describe("nmfSync's device option", () => {
  const A = randomMatrix(40, 30, 41);

  it("device 'cuda' with what the device solve lacks is a RangeError naming it (the default solver 'hals' included)", () => {
    expect(() => nmfSync(A, 3, { device: 'cuda' })).toThrow(
      "Expected a call the CUDA path implements for options.device 'cuda' of nmfSync() but received solver 'hals' (the device has 'mu'); use device 'cpu' or 'auto'",
    );
    expect(() => nmfSync(A, 3, { solver: 'mu', loss: 'kl', device: 'cuda' })).toThrow(/loss 'kl' \(the device has 'frobenius'\)/);
    expect(() => nmfSync(A, 3, { solver: 'mu', l1W: 0.1, device: 'cuda' })).toThrow(/a penalty \(l1W, l2W, l1H, l2H\)/);
    expect(() => nmfSync(A, 3, { solver: 'mu', certificateTolerance: 1e-3, device: 'cuda' })).toThrow(/certificateTolerance > 0/);
    expect(() => nmfSync(A, 3, { solver: 'mu', device: 'gpu' as never })).toThrow(RangeError);
  });

  it.skipIf(usable)("device 'cuda' without a usable GPU throws DeviceUnavailableError", () => {
    expect(() => nmfSync(A, 3, { solver: 'mu', device: 'cuda' })).toThrow(DeviceUnavailableError);
  });

  it("device 'auto' on a small problem is the CPU result bit for bit", () => {
    const o = { solver: 'mu', maxIterations: 20, seed: 5 } as const;
    const auto = nmfSync(A, 3, { ...o, device: 'auto' });
    const cpu = nmfSync(A, 3, o);
    expect(auto.W.data).toEqual(cpu.W.data);
    expect(auto.H.data).toEqual(cpu.H.data);
    expect(auto.loss).toBe(cpu.loss);
  });

  it.skipIf(!usable)("device 'cuda' matches the CPU solve: factors to 1e-10, the same iterations and stop", () => {
    for (const o of [{ solver: 'mu', maxIterations: 30, seed: 3 }, { solver: 'mu', maxIterations: 500, tolerance: 1e-4, lossEvery: 5, init: 'nndsvd' }] as const) {
      const cpu = nmfSync(A, 3, o);
      const gpu = nmfSync(A, 3, { ...o, device: 'cuda' });
      expect(relativeError(gpu.W.data, cpu.W.data)).toBeLessThan(1e-10);
      expect(relativeError(gpu.H.data, cpu.H.data)).toBeLessThan(1e-10);
      expect(gpu.iterations).toBe(cpu.iterations);
      expect(gpu.stopReason).toBe(cpu.stopReason);
      expect(relativeError(gpu.traces.loss, cpu.traces.loss)).toBeLessThan(1e-10);
    }
  });
});

describe('the shared kernels compiled as host code agree with the CPU addon', () => {
  const binary = join(repoRoot, 'build', 'cuda-host-check', 'host_check');

  beforeAll(() => {
    mkdirSync(join(repoRoot, 'build', 'cuda-host-check'), { recursive: true });
    const blas = execFileSync(process.execPath, [join(repoRoot, 'scripts', 'blas-flags.cjs'), '--cflags'], { encoding: 'utf8' }).trim().split(/\s+/).filter(Boolean);
    execFileSync(process.env.CXX || 'c++', ['-std=c++17', '-O2', '-Wall', '-Wextra', ...blas, '-o', binary, join(repoRoot, 'native', 'cuda', 'host_check.cpp')], { stdio: 'pipe' });
  });

  function run(...parts: Array<string | number | ArrayLike<number>>): Float64Array {
    const tokens: string[] = [];
    for (const p of parts) {
      if (typeof p === 'string' || typeof p === 'number') tokens.push(String(p));
      else for (let i = 0; i < p.length; i++) tokens.push(String(p[i]));
    }
    const out = execFileSync(binary, { input: tokens.join(' '), encoding: 'utf8', maxBuffer: 1 << 26 });
    return Float64Array.from(out.trim().split('\n').map(Number));
  }

  it("the non-negativity maps ('hard', 'softplus') equal applyNonNegativity", () => {
    const x = Float64Array.from([-3, -1e-300, 0, 1e-300, 0.5, 19.999, 20, 20.5, -40, 7]);
    const Y = { rows: 2, cols: 5, data: x };
    // The same formula through the same libm: equal, which is within the 1e-12 promised.
    expect(run('map', 'project', x.length, 0, x)).toEqual(applyNonNegativity(Y, 'hard').data);
    expect(relativeError(run('map', 'softplus', x.length, 0, x), applyNonNegativity(Y, 'softplus').data)).toBeLessThanOrEqual(1e-15);
  });

  it('the reductions split over threads (strides 1, 7, 256) give the sequential sum to 1e-14', () => {
    const x = randomMatrix(1, 1000, 8, -0.5).data;
    const y = randomMatrix(1, 1000, 9, -0.5).data;
    let sq = 0;
    let dot = 0;
    for (let i = 0; i < x.length; i++) {
      sq += x[i]! * x[i]!;
      dot += x[i]! * y[i]!;
    }
    for (const stride of [1, 7, 256]) {
      expect(Math.abs(run('reduce', 'squaredNorm', x.length, stride, x, y)[0]! - sq) / sq).toBeLessThan(1e-14);
      // |dot| ≪ Σ|xy| here (signs mix): relative to Σ|xy| ≈ 83, the rounding of a sum of 1000 terms.
      expect(Math.abs(run('reduce', 'dot', x.length, stride, x, y)[0]! - dot)).toBeLessThan(1e-12);
    }
    let dist = 0;
    for (let i = 0; i < x.length; i++) dist += (x[i]! - y[i]!) ** 2;
    expect(Math.abs(run('reduce', 'squaredDistance', x.length, 7, x, y)[0]! - dist) / dist).toBeLessThan(1e-14);
    const bad = Float64Array.from([1, NaN, 2, Infinity, -Infinity, 3]);
    expect(run('reduce', 'nonFinite', bad.length, 4, bad, bad)[0]).toBe(3);
  });

  it('one Frobenius MU iteration in the device order (and the loss it records first) equals nmfSync solver mu, maxIterations 1, to 1e-12', () => {
    const [n, m, r] = [30, 20, 4];
    const A = randomMatrix(n, m, 21);
    const W = randomMatrix(n, r, 22, 0.1);
    const H = randomMatrix(r, m, 23, 0.1);
    const eps = 1e-10;
    const cpu = nmfSync(A, r, { solver: 'mu', maxIterations: 1, init: { W, H }, epsilon: eps });
    expect(cpu.iterations).toBe(1);
    const out = run('nmfMu', n, m, r, eps, A.data, W.data, H.data);
    expect(relativeError(out.subarray(0, n * r), cpu.W.data)).toBeLessThan(1e-12);
    expect(relativeError(out.subarray(n * r, n * r + r * m), cpu.H.data)).toBeLessThan(1e-12);
    // The loss of the starting factors, recorded before the update (the trace's first entry).
    expect(cpu.traces.iteration[0]).toBe(0);
    expect(Math.abs(out[n * r + r * m]! - cpu.traces.loss[0]!) / cpu.traces.loss[0]!).toBeLessThan(1e-12);
    // The update moved the factors (a check that cannot pass by returning the input).
    expect(relativeError(cpu.W.data, W.data)).toBeGreaterThan(1e-3);
  });

  it("the Gram polar retraction in the device order equals retract(polarMethod 'gram') to 1e-12 (polar, softPolar)", () => {
    const [p, k] = [60, 5];
    const Y = randomMatrix(p, k, 31, -0.3);
    // YᵀY = VΛVᵀ from the CPU's SVD of Y: V's columns are the eigenvectors, λ = σ².
    const s = svd(Y);
    const Vcol = new Float64Array(k * k);
    for (let i = 0; i < k; i++) for (let c = 0; c < k; c++) Vcol[i + c * k] = s.V.data[i * k + c]!;
    const lambda = Array.from(s.S, (x) => x * x);
    for (const [type, w] of [['polar', 1], ['softPolar', 0.35]] as const) {
      const cpu = retract(Y, { type, w, polarMethod: 'gram' });
      const out = run('polarGram', p, k, type === 'polar' ? 1 : w, Y.data, Vcol, lambda);
      expect(relativeError(out, cpu.data)).toBeLessThan(1e-12);
      expect(relativeError(out, Y.data)).toBeGreaterThan(1e-2);
    }
  });
});
