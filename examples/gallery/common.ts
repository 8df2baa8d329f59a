// What the gallery's examples share: reading their few flags, writing a figure, and matching the rows
// of a fitted factor to planted ones. The figures themselves are drawn by nsa-flow/plot.
import { mkdirSync, realpathSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

import { readLabels, readNpy } from '../../lib/index.js';
import type { Matrix } from '../../lib/matrix.js';

/** `--name value` flags; an unknown flag or one without a value is an error (never ignored). */
export function parseFlags(argv: readonly string[], known: readonly string[], where: string): Map<string, string> {
  const flags = new Map<string, string>();
  for (let i = 0; i < argv.length; i += 2) {
    const flag = argv[i]!;
    const name = flag.startsWith('--') ? flag.slice(2) : '';
    if (!known.includes(name)) throw new RangeError(`Expected one of ${known.map((k) => `--${k}`).join(', ')} for the flags of ${where} but received ${JSON.stringify(flag)}`);
    if (i + 1 >= argv.length) throw new RangeError(`Expected a value after ${flag} for ${where}`);
    flags.set(name, argv[i + 1]!);
  }
  return flags;
}

/** A positive integer flag (or its default). */
export function intFlag(flags: Map<string, string>, name: string, fallback: number, min = 1): number {
  const text = flags.get(name);
  if (text === undefined) return fallback;
  const v = Number(text);
  if (!Number.isInteger(v) || v < min) throw new RangeError(`Expected an integer ≥ ${min} for --${name} but received ${JSON.stringify(text)}`);
  return v;
}

/** Writes a figure, creating its folder. */
export function writeFigure(path: string, svg: string): void {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, svg);
}

/**
 * True when the module is the program being run (`npx tsx examples/gallery/x.ts`), not imported; by real
 * path, since Node resolves a main module reached through a symbolic link to its target.
 */
export function isMain(url: string): boolean {
  const main = process.argv[1];
  if (main === undefined) return false;
  try {
    return realpathSync(fileURLToPath(url)) === realpathSync(main);
  } catch {
    return false;
  }
}

/** Rows of a matrix as arrays. */
const rowOf = (m: Matrix, i: number): Float64Array => m.data.subarray(i * m.cols, (i + 1) * m.cols) as Float64Array;

const dot = (a: ArrayLike<number>, b: ArrayLike<number>): number => {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]! * b[i]!;
  return s;
};

/** All permutations of 0…n−1 (n ≤ 8: at most 40 320). */
function permutations(n: number): number[][] {
  if (n === 0) return [[]];
  return permutations(n - 1).flatMap((p) => Array.from({ length: n }, (_, i) => [...p.slice(0, i), n - 1, ...p.slice(i)]));
}

export interface RowMatch {
  /** fitted row matched to planted row i: perm[i]. */
  perm: number[];
  /** The fitted rows, permuted and each scaled by least squares onto its planted row. */
  matched: Matrix;
  /** ‖matched − planted‖ / ‖planted‖. */
  relativeError: number;
  /** The smallest cosine between a planted row and its matched fitted row. */
  minCosine: number;
}

/**
 * Matches the rows of `fitted` to those of `planted` (same shape) up to permutation and positive
 * scaling, as topics are only determined up to both: the permutation maximizing the summed cosines
 * (exhaustive for up to 8 rows, greedy by largest cosine beyond), then each fitted row scaled by the
 * least-squares factor ⟨f, p⟩/‖f‖² onto its planted row.
 */
export function matchRows(fitted: Matrix, planted: Matrix): RowMatch {
  if (fitted.rows !== planted.rows || fitted.cols !== planted.cols) throw new RangeError(`Expected fitted ${fitted.rows}×${fitted.cols} to match planted ${planted.rows}×${planted.cols}`);
  const r = planted.rows;
  const cos = Array.from({ length: r }, (_, i) =>
    Array.from({ length: r }, (_, j) => {
      const p = rowOf(planted, i), f = rowOf(fitted, j);
      const n = Math.sqrt(dot(p, p) * dot(f, f));
      return n > 0 ? dot(p, f) / n : 0;
    }),
  );
  let perm: number[];
  if (r <= 8) {
    let best = -Infinity;
    perm = [];
    for (const p of permutations(r)) {
      const s = p.reduce((a, j, i) => a + cos[i]![j]!, 0);
      if (s > best) [best, perm] = [s, p];
    }
  } else {
    perm = new Array<number>(r).fill(-1);
    const used = new Set<number>();
    const pairs = cos.flatMap((row, i) => row.map((c, j) => [c, i, j] as const)).sort((a, b) => b[0] - a[0]);
    for (const [, i, j] of pairs) {
      if (perm[i] !== -1 || used.has(j)) continue;
      perm[i] = j;
      used.add(j);
    }
  }
  const matched: Matrix = { rows: r, cols: planted.cols, data: new Float64Array(r * planted.cols) };
  let err = 0, norm = 0;
  for (let i = 0; i < r; i++) {
    const f = rowOf(fitted, perm[i]!), p = rowOf(planted, i);
    const ff = dot(f, f);
    const scale = ff > 0 ? dot(f, p) / ff : 0;
    for (let c = 0; c < planted.cols; c++) {
      const v = scale * f[c]!;
      matched.data[i * planted.cols + c] = v;
      err += (v - p[c]!) ** 2;
      norm += p[c]! ** 2;
    }
  }
  return { perm, matched, relativeError: Math.sqrt(err / norm), minCosine: Math.min(...perm.map((j, i) => cos[i]![j]!)) };
}

/**
 * The image stack of --data (N × d₂ × …; default: the repository's digits) with its strata from
 * --strata-from file.csv:column (one label per image; given together with --data): the stack, whether it
 * is the user's, its path, the stratum names in sorted label order and the first `perStratum` image
 * rows of each stratum.
 */
export function readImageStrata(flags: Map<string, string>, perStratum: number) {
  const userData = flags.has('data');
  if (userData !== flags.has('strata-from')) throw new RangeError('Expected --data and --strata-from together (an N × h × w image stack and one stratum label per image)');
  const dataDir = resolve(import.meta.dirname, '..', '..', 'data');
  const imagesPath = flags.get('data') ?? resolve(dataDir, 'digits', 'digits_images.npy.gz');
  const strataRef = flags.get('strata-from') ?? `${resolve(dataDir, 'digits', 'digits_labels.csv')}:label`;
  const colon = strataRef.lastIndexOf(':');
  if (colon <= 0 || colon === strataRef.length - 1) throw new RangeError(`Expected file.csv:column for --strata-from but received ${JSON.stringify(strataRef)}`);
  const all = readNpy(imagesPath);
  if (all.shape.length < 3) throw new RangeError(`Expected an N × d₂ × … image stack in --data but its shape is [${all.shape.join(', ')}]`);
  const labels = readLabels(strataRef.slice(0, colon), strataRef.slice(colon + 1)).map(String);
  if (labels.length !== all.shape[0]) throw new RangeError(`Expected one label per image (${all.shape[0]}) in --strata-from but received ${labels.length}`);
  const names = [...new Set(labels)].sort((a, b) => a.localeCompare(b, 'en', { numeric: true }));
  const picked = names.map((name) => labels.flatMap((l, i) => (l === name ? [i] : [])).slice(0, perStratum));
  return { all, userData, imagesPath, names, picked };
}
