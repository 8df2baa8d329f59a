// ntf HALS with missing entries: time to a good answer of its two weighted updates (weightedHals
// 'exact' and 'surrogate', docs/missing-values.md) as the missing share grows. The data: a rank-10
// non-negative CP tensor of 200×100×100 with 1 % multiplicative noise; a mask hides 10–80 % of the
// entries at random. Each update runs 300 iterations from the same start, its loss recorded every
// iteration; printed: the time (the solve's own clock, one thread) to reach best·(1 + δ), best the
// lowest observed loss either update reached, and the exact update's time over the surrogate's.
// This is what weightedHals 'auto' (the surrogate up to 30 % missing) and the exact update's default of
// 3 sweeps were chosen by.
//
//   npm run bench:ntf-weighted-hals [-- --quick]
import { ntfSync, setBlasThreads, type Tensor } from '../lib/index.js';
import { fmt, lcgFill } from './common.js';

const quick = process.argv.includes('--quick');
setBlasThreads(1);

const shape = quick ? [60, 40, 30] : [200, 100, 100];
const rank = 10;
const iterations = quick ? 60 : 300;
const size = shape[0]! * shape[1]! * shape[2]!;

/** Σ_a F₀[i,a]F₁[j,a]F₂[k,a] with U(0,1) factors, times 1 + 0.01·(u − ½). */
function cpTensor(): Tensor {
  const [I, J, K] = shape as [number, number, number];
  const F = shape.map((d, m) => lcgFill(d * rank, 10 + m));
  const data = new Float64Array(size);
  const noise = lcgFill(size, 99);
  for (let i = 0; i < I; i++)
    for (let j = 0; j < J; j++)
      for (let k = 0; k < K; k++) {
        let s = 0;
        for (let a = 0; a < rank; a++) s += F[0]![i * rank + a]! * F[1]![j * rank + a]! * F[2]![k * rank + a]!;
        const p = (i * J + j) * K + k;
        data[p] = s * (1 + 0.01 * (noise[p]! - 0.5));
      }
  return { shape, data };
}

const T = cpTensor();
const levels = [0.5, 0.1, 0.01, 0.001];
const updates = [
  ['surrogate', {}],
  ['exact', {}],
  ['exact, 1 sweep', { innerSweeps: 1 }],
] as const;

console.log(`ntf hals, ${shape.join('×')} rank-${rank} CP + 1 % noise, rank ${rank}, ${iterations} iterations, one thread`);
console.log(`time to best·(1 + δ) (iterations), δ = ${levels.map((d) => `${d * 100} %`).join(', ')}; 'never': not within ${iterations} iterations`);
for (const share of [0.1, 0.2, 0.3, 0.4, 0.5, 0.8]) {
  const u = lcgFill(size, 2);
  const mask = Uint8Array.from(u, (x) => (x < share ? 1 : 0));
  const runs = updates.map(([label, extra]) => {
    const weightedHals = label.startsWith('exact') ? 'exact' : 'surrogate';
    const r = ntfSync(T, rank, { solver: 'hals', weightedHals, ...extra, mask, maxIterations: iterations, lossEvery: 1, seed: 1 });
    return { label, loss: r.traces.loss, ms: r.traces.timeMs, sweeps: r.settings.innerSweeps };
  });
  const best = Math.min(...runs.map((r) => Math.min(...r.loss)));
  const reach = runs.map((r) => levels.map((d) => r.loss.findIndex((x) => x <= best * (1 + d))));
  console.log(`\n${share * 100} % missing`);
  runs.forEach((r, q) => {
    const cells = reach[q]!.map((k) => (k < 0 ? 'never' : `${fmt(r.ms[k]! / 1e3)} s (${k})`).padEnd(16)).join('');
    console.log(`${`${r.label} (innerSweeps ${r.sweeps})`.padEnd(30)}${cells}`);
  });
  const ratio = reach[1]!.map((k, l) => {
    const s = reach[0]![l]!;
    if (k < 0 && s < 0) return '—';
    if (s < 0) return 'surrogate never';
    if (k < 0) return 'exact never';
    return `${fmt(runs[1]!.ms[k]! / runs[0]!.ms[s]!)}×`;
  });
  console.log(`${'exact / surrogate'.padEnd(30)}${ratio.map((x) => x.padEnd(16)).join('')}`);
}
