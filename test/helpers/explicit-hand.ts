// One iteration of the explicit flow (SPEC.md §6) written out by hand with plain loops, for parity
// with the native kernel: the gradient, its tangent projection (at the polar factor), the plain step, the soft-polar
// retraction through the library's thin SVD (a different algorithm from the kernel's Gram path), the
// hard non-negativity, the energy at the iterate itself, and the backtracking toward the start.
import { svd, type Matrix } from '../../lib/index.js';

export type Mat = { rows: number; cols: number; data: Float64Array };

export function mul(A: Mat, B: Mat, transA = false): Mat {
  const m = transA ? A.cols : A.rows;
  const inner = transA ? A.rows : A.cols;
  const out = new Float64Array(m * B.cols);
  for (let i = 0; i < m; i++)
    for (let j = 0; j < B.cols; j++) {
      let s = 0;
      for (let l = 0; l < inner; l++) s += (transA ? A.data[l * A.cols + i]! : A.data[i * A.cols + l]!) * B.data[l * B.cols + j]!;
      out[i * B.cols + j] = s;
    }
  return { rows: m, cols: B.cols, data: out };
}

const map = (A: Mat, f: (v: number, i: number) => number): Mat => ({ rows: A.rows, cols: A.cols, data: A.data.map(f) });
const norm2 = (A: Mat): number => A.data.reduce((s, v) => s + v * v, 0);
const clamp = (A: Mat): Mat => map(A, (v) => Math.max(v, 0));

export function defectOf(Y: Mat): number {
  const S = mul(Y, Y, true);
  const n = norm2(Y);
  let off = 0;
  for (let i = 0; i < Y.cols; i++) for (let j = 0; j < Y.cols; j++) if (i !== j) off += S.data[i * Y.cols + j]! ** 2;
  return n <= 1e-12 ? 0 : off / (n * n);
}

/** ¼c·∇defect(Y) = c·[Y(S − Diag S)/n² − defect·Y/n]. */
function orthoGradient(Y: Mat, c: number): Mat {
  const k = Y.cols;
  const S = mul(Y, Y, true);
  for (let i = 0; i < k; i++) S.data[i * k + i] = 0;
  const YS = mul(Y, S);
  const n = norm2(Y);
  const d = defectOf(Y);
  return map(YS, (v, i) => c * (v / (n * n) - (d / n) * Y.data[i]!));
}

/** The polar factor Q = U·Vᵀ of Y (thin SVD Y = U·Σ·Vᵀ). */
function polarFactor(Y: Mat): Mat {
  const { U, V } = svd(Y as Matrix);
  return mul(U, { rows: V.cols, cols: V.rows, data: transposeData(V) });
}

/** Z − Q·sym(QᵀZ), Q the polar factor of Y: the tangent projection at Q (explicit_flow.cpp, gradientMap). */
export function project(Y: Mat, Z: Mat): Mat {
  const k = Y.cols;
  const Q = polarFactor(Y);
  const A = mul(Q, Z, true);
  const sym = map(A, (_, idx) => 0.5 * (A.data[idx]! + A.data[(idx % k) * k + Math.floor(idx / k)]!));
  const Qsym = mul(Q, sym);
  return map(Z, (v, i) => v - Qsym.data[i]!);
}

function softPolar(Y: Mat, w: number): Mat {
  const Q = polarFactor(Y);
  const blend = map(Y, (v, i) => (1 - w) * v + w * Q.data[i]!);
  const s = Math.sqrt(norm2(Y) / norm2(blend));
  return map(blend, (v) => v * s);
}

function transposeData(V: Mat): Float64Array {
  const out = new Float64Array(V.rows * V.cols);
  for (let i = 0; i < V.rows; i++) for (let j = 0; j < V.cols; j++) out[j * V.rows + i] = V.data[i * V.cols + j]!;
  return out;
}

export interface HandStep {
  eta: number;
  c: number;
  startEnergy: number;
  energy: number;
  fidelity: number;
  orthogonality: number;
  backtracks: number;
  accepted: boolean;
  Y: Mat;
}

/** A first optimizer step: the proposed point from Y, the gradient g and lr. */
export type FirstStep = (y: number, g: number, lr: number) => number;
/** The plain step of the reference ('fast'): y − lr·g. */
export const plainStep: FirstStep = (y, g, lr) => y - lr * g;
/** Adam's first step (m = (1−β₁)g, v = (1−β₂)g², both bias-corrected): y − lr·g/(|g| + 1e-8) = y − lr·sign(g) up to eps. */
export const adamFirstStep: FirstStep = (y, g, lr) => y - lr * (g / (Math.abs(g) + 1e-8));

/** The reference weighting without rescaling: η = (1−w)/(g0·p·k), c = 4w/d0 from the start. */
export function handStep(Y0: Mat, X0in: Mat, w: number, lr: number, projectFull: boolean, step: FirstStep = plainStep): HandStep {
  const X0 = clamp(X0in);
  const pk = Y0.rows * Y0.cols;
  const diff = map(Y0, (v, i) => v - X0.data[i]!);
  const g0 = Math.max((0.5 * norm2(diff)) / pk, 1e-8);
  const d0 = Math.max(defectOf(Y0), 1e-8);
  const eta = (1 - w) / (g0 * pk);
  const c = (4 * w) / d0;
  const energy = (Y: Mat): number => 0.5 * eta * norm2(map(Y, (v, i) => v - X0.data[i]!)) + 0.25 * c * defectOf(Y);

  const Gf = map(diff, (v) => eta * v); // the correct sign: ∇(½η‖Y − X0‖²)
  const Go = orthoGradient(Y0, c);
  const rgrad = projectFull ? project(Y0, map(Gf, (v, i) => v + Go.data[i]!)) : map(project(Y0, Go), (v, i) => v + Gf.data[i]!);
  const proposed = map(Y0, (v, i) => step(v, rgrad.data[i]!, lr));
  const R = softPolar(proposed, w);

  const best = clamp(Y0);
  const startEnergy = energy(best);
  let T = clamp(R);
  let E = energy(T);
  let alpha = 1;
  let count = 0;
  while (E > startEnergy && count < 20) {
    alpha *= 0.5;
    T = clamp(map(best, (b, i) => b + alpha * (R.data[i]! - b)));
    E = energy(T);
    count++;
    if (E < startEnergy) break;
  }
  const accepted = !(E > startEnergy);
  const Y = accepted ? T : best;
  return {
    eta,
    c,
    startEnergy,
    energy: energy(Y),
    fidelity: 0.5 * eta * norm2(map(Y, (v, i) => v - X0.data[i]!)),
    orthogonality: defectOf(Y),
    backtracks: count,
    accepted,
    Y,
  };
}
