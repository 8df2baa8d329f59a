// HALS with missing entries in ntf and stratifiedNtf: time to a good answer of the two weighted
// updates (weightedHals 'exact' and 'surrogate', docs/missing-values.md) as the missing share grows.
// ntf: a rank-10 non-negative CP tensor of 200×100×100 with 1 % multiplicative noise; stratifiedNtf:
// 4 strata of 500×40×25 from the model (strata rank 4, 10 topics) with 1 % noise. A mask hides 10–80 %
// of the entries at random. Each update runs a fixed number of iterations from the same start, its
// loss recorded every iteration; printed: the time (the solve's own clock, one thread) to reach
// best·(1 + δ), best the lowest observed loss any update reached, and the exact update's time over
// the surrogate's. This is what weightedHals 'auto' (the surrogate up to 30 % missing in ntf, 12 % in
// stratifiedNtf: AUTO_SURROGATE_MISSING_SHARE) and ntf's exact update's default of 3 sweeps were
// chosen by.
//
//   npm run bench:ntf-weighted-hals [-- --quick] [-- --only ntf|stratifiedNtf]
import { ntfSync, setBlasThreads, stratifiedNtfSync, type Tensor } from '../lib/index.js';
import { fmt, lcgFill } from './common.js';

const quick = process.argv.includes('--quick');
const onlyAt = process.argv.indexOf('--only');
const only = onlyAt >= 0 ? process.argv[onlyAt + 1] ?? '' : '';
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

interface Run {
  label: string;
  loss: Float64Array;
  ms: Float64Array;
}

/** Prints the runs' times to each level, and the exact update (runs[1]) over the surrogate (runs[0]). */
function table(title: string, runs: Run[]): void {
  const best = Math.min(...runs.map((r) => Math.min(...r.loss)));
  const reach = runs.map((r) => levels.map((d) => r.loss.findIndex((x) => x <= best * (1 + d))));
  console.log(`\n${title}`);
  runs.forEach((r, q) => {
    const cells = reach[q]!.map((k) => (k < 0 ? 'never' : `${fmt(r.ms[k]! / 1e3)} s (${k})`).padEnd(16)).join('');
    console.log(`${r.label.padEnd(30)}${cells}`);
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

const levels = [0.5, 0.1, 0.01, 0.001];
const shares = [0.1, 0.2, 0.3, 0.4, 0.5, 0.8];
const hide = (n: number, share: number) => Uint8Array.from(lcgFill(n, 2), (x) => (x < share ? 1 : 0));

if (only === '' || only === 'ntf') {
  const T = cpTensor();
  console.log(`ntf hals, ${shape.join('×')} rank-${rank} CP + 1 % noise, rank ${rank}, ${iterations} iterations, one thread`);
  console.log(`time to best·(1 + δ) (iterations), δ = ${levels.map((d) => `${d * 100} %`).join(', ')}; 'never': not within ${iterations} iterations`);
  const updates = [
    ['surrogate', {}],
    ['exact', {}],
    ['exact, 1 sweep', { innerSweeps: 1 }],
  ] as const;
  for (const share of shares) {
    const mask = hide(size, share);
    const runs = updates.map(([label, extra]): Run => {
      const weightedHals = label.startsWith('exact') ? 'exact' : 'surrogate';
      const r = ntfSync(T, rank, { solver: 'hals', weightedHals, ...extra, mask, maxIterations: iterations, lossEvery: 1, seed: 1 });
      return { label: `${label} (innerSweeps ${r.settings.innerSweeps})`, loss: r.traces.loss, ms: r.traces.timeMs };
    });
    table(`${share * 100} % missing`, runs);
  }
}

if (only === '' || only === 'stratifiedNtf') {
  // 4 strata of n × 40 × 25: B(s) = Σ_a ⊗ v(s)[a] (rank 4, scaled by 0.3) + Σ_b w(s)[b] ⊗ h[b] (10 topics).
  const S = 4, n = quick ? 60 : 500, dims = quick ? [12, 10] : [40, 25], q = 4, topics = 10;
  const F = dims[0]! * dims[1]!;
  const sntfIterations = quick ? 40 : 400;
  const h = dims.map((d, t) => lcgFill(topics * d, 20 + t));
  const strata = Array.from({ length: S }, (_, s): Tensor => {
    const v = dims.map((d, t) => lcgFill(q * d, 30 + 10 * s + t));
    const w = lcgFill(topics * n, 40 + s);
    const noise = lcgFill(n * F, 50 + s);
    const data = new Float64Array(n * F);
    for (let i = 0; i < n; i++)
      for (let f1 = 0; f1 < dims[0]!; f1++)
        for (let f2 = 0; f2 < dims[1]!; f2++) {
          let x = 0;
          for (let a = 0; a < q; a++) x += 0.3 * v[0]![a * dims[0]! + f1]! * v[1]![a * dims[1]! + f2]!;
          for (let b = 0; b < topics; b++) x += w[b * n + i]! * h[0]![b * dims[0]! + f1]! * h[1]![b * dims[1]! + f2]!;
          const k = i * F + f1 * dims[1]! + f2;
          data[k] = x * (1 + 0.01 * (noise[k]! - 0.5));
        }
    return { shape: [n, ...dims], data };
  });
  console.log(`\nstratifiedNtf hals, ${S} strata of ${n}×${dims.join('×')} (strata rank ${q}, ${topics} topics, 1 % noise), rank ${topics}, ${sntfIterations} iterations, one thread`);
  console.log(`time to best·(1 + δ) (iterations), δ = ${levels.map((d) => `${d * 100} %`).join(', ')}; 'never': not within ${sntfIterations} iterations`);
  for (const share of shares) {
    const mask = strata.map((t, s) => hide(t.data.length * (s + 1), share).subarray(t.data.length * s));
    const runs = (['surrogate', 'exact'] as const).map((weightedHals): Run => {
      const r = stratifiedNtfSync(strata, topics, { strataRank: q, solver: 'hals', weightedHals, mask, maxIterations: sntfIterations, lossEvery: 1, seed: 1 });
      return { label: weightedHals, loss: r.traces.loss, ms: r.traces.timeMs };
    });
    table(`${share * 100} % missing`, runs);
  }
}
