// Plain NTF (non-negative CP, ntf): our two solvers, MU and HALS. scikit-learn and RcppML have no
// tensor factorization, so there is no peer here.
//   synthetic: a 60×60×60 CP tensor of rank 8 (uniform factors) plus Gaussian noise of 1 % of its rms,
//              clipped at 0; rank 8.
//   real:      scikit-learn's digits (data/digits, 1797 images × 8 × 8, values 0…16); rank 10.
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ntfSync, readNpy, setBlasThreads, type NtfOptions, type Tensor } from '../../lib/index.js';
import { lcgFill } from '../common.js';
import { traceCurve, type Curve, type TtaContext } from './common.js';

export const title = 'plain NTF (ntf, non-negative CP): Frobenius loss, dense tensors; no peer implements it';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

export function syntheticCp(dims: number[], r: number, noise = 0.01): Tensor {
  const factors = dims.map((d, k) => lcgFill(d * r, 11 + k));
  const size = dims.reduce((a, b) => a * b, 1);
  const data = new Float64Array(size);
  const index = new Array<number>(dims.length).fill(0);
  for (let e = 0; e < size; e++) {
    let rest = e;
    for (let k = dims.length - 1; k >= 0; k--) {
      index[k] = rest % dims[k]!;
      rest = Math.floor(rest / dims[k]!);
    }
    let v = 0;
    for (let c = 0; c < r; c++) {
      let p = 1;
      for (let k = 0; k < dims.length; k++) p *= factors[k]![index[k]! * r + c]!;
      v += p;
    }
    data[e] = v;
  }
  let s2 = 0;
  for (const x of data) s2 += x * x;
  const rms = Math.sqrt(s2 / size);
  const z = lcgFill(size, 17, true);
  for (let e = 0; e < size; e++) data[e] = Math.max(0, data[e]! + noise * rms * z[e]!);
  return { shape: dims, data };
}

// The solver settings compared: the default (innerSweeps unset), the classic one-sweep HALS, the
// neighbours of the default's inner-sweep count (how DEFAULT_NTF_INNER_SWEEPS was chosen), and MU.
const settings: [string, NtfOptions][] = [
  ['hals (default)', { solver: 'hals' }],
  ['hals inner 1', { solver: 'hals', innerSweeps: 1 }],
  ['hals inner 3', { solver: 'hals', innerSweeps: 3 }],
  ['hals inner 30', { solver: 'hals', innerSweeps: 30 }],
  ['mu', { solver: 'mu' }],
];

function problem(ctx: TtaContext, name: string, T: Tensor, rank: number, iterations: number): void {
  const curves: Curve[] = [];
  for (const [label, options] of settings) {
    ntfSync(T, rank, { ...options, maxIterations: 2, seed: 1 });
    const r = ntfSync(T, rank, { ...options, maxIterations: iterations, seed: 1 });
    curves.push({ ...traceCurve(label, r.traces), isDefault: label === 'hals (default)' });
  }
  ctx.report(name, curves);
}

export async function run(ctx: TtaContext): Promise<void> {
  setBlasThreads(1);
  const q = ctx.quick;
  const d = q ? 30 : 60;
  problem(ctx, `synthetic ${d}×${d}×${d} CP rank 8 (+ 1 % noise)`, syntheticCp([d, d, d], 8), 8, q ? 100 : 400);
  const digits = readNpy(resolve(root, 'data/digits/digits_images.npy.gz'));
  problem(ctx, 'digits 1797×8×8, rank 10', { shape: digits.shape, data: digits.data }, 10, q ? 100 : 400);
}
