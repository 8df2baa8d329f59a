// How DEFAULT_NTF_INNER_SWEEPS was chosen (docs/performance.md, "Plain NTF: inner sweeps"): ntf HALS
// with 1, 2, 3, 5, 10 and 20 inner sweeps on two synthetic CP tensors and the digits, one thread,
// REPS (default 5) interleaved runs each; median time (and iterations) to best·(1 + δ), best the lowest
// final normalized loss of all runs. npx tsx bench/ntf-inner-sweeps.ts
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ntfSync, readNpy, setBlasThreads, type Tensor } from '../lib/index.js';
import { syntheticCp } from './tta/ntf.js';
setBlasThreads(1);
const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const digits = readNpy(resolve(root, 'data/digits/digits_images.npy.gz'));
const problems: [string, Tensor, number, number][] = [
  ['synthetic 60^3 r8', syntheticCp([60, 60, 60], 8), 8, 300],
  ['digits r10', { shape: digits.shape, data: digits.data }, 10, 400],
  ['synthetic 40x200x30 r20', syntheticCp([40, 200, 30], 20, 0.05), 20, 300],
];
const sweeps = [1, 2, 3, 5, 10, 20];
const reps = Number(process.env.REPS ?? 5);
const med = (a: number[]) => { const s = [...a].sort((x, y) => x - y); return s[Math.floor(s.length / 2)]!; };
for (const [name, T, r, iters] of problems) {
  const runs = new Map<number, { t: Float64Array; l: Float64Array }[]>(sweeps.map((s) => [s, []]));
  for (let k = 0; k < reps; k++) for (const s of k % 2 ? [...sweeps].reverse() : sweeps) {
    const res = ntfSync(T, r, { solver: 'hals', innerSweeps: s, maxIterations: iters, seed: 1 });
    runs.get(s)!.push({ t: res.traces.timeMs, l: res.traces.normalizedLoss });
  }
  let best = Infinity;
  for (const list of runs.values()) for (const x of list) best = Math.min(best, x.l[x.l.length - 1]!);
  console.log(`\n${name}, ${iters} iterations: best ${best.toPrecision(6)}; median ms to best·(1+δ) over ${reps} runs (iterations)`);
  console.log('sweeps  ms/it     δ=50%         δ=10%         δ=5%          δ=1%          δ=0.1%');
  for (const s of sweeps) {
    const cells = [0.5, 0.1, 0.05, 0.01, 0.001].map((d) => {
      const times: number[] = []; const its: number[] = [];
      for (const x of runs.get(s)!) { let i = 0; while (i < x.l.length && x.l[i]! > best * (1 + d)) i++; times.push(i < x.l.length ? x.t[i]! : Infinity); its.push(i); }
      const t = med(times); return Number.isFinite(t) ? `${t.toFixed(1)} (${med(its)})`.padEnd(14) : 'never'.padEnd(14);
    });
    const msIt = med(runs.get(s)!.map((x) => x.t[x.t.length - 1]! / (x.t.length - 1)));
    console.log(`${String(s).padEnd(8)}${msIt.toFixed(3).padEnd(10)}${cells.join('')}`);
  }
}
