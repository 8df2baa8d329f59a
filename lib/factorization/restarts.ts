/**
 * Multi-start fits for the NMF family (`restarts: n`): n runs from the seeds seed, seed + 1, …,
 * seed + n − 1, the best by final loss returned with every run's loss. Async runs go through the job
 * runtime together (lib/runtime.ts decides how many run at once and with how many BLAS threads);
 * sync runs run one after another. The seeds, not the order the runs finish in, decide the result,
 * so it is reproducible from `seed`.
 */
import { getConcurrency, type AsyncOptions } from '../runtime.js';
import type { NmfProgress } from './common.js';

/** What a multi-start result reports besides the best run's own fields (present when restarts > 1). */
export interface RestartsSummary {
  /** The seed of each run: options.seed + i. */
  seeds: number[];
  /** Each run's final loss (its penalized objective where the method reports one), in seed order. */
  losses: Float64Array;
  /** Index of the returned run: the smallest loss, the first on ties. */
  best: number;
}

/** The option spec of `restarts` (shared by nmf, stratifiedNmf, ntf and stratifiedNtf). */
export const restartsOptionSpec = {
  kind: 'number',
  integer: true,
  min: 1,
  max: 1024,
  default: 1,
  description: 'runs from the seeds seed, seed+1, …; the one of smallest final loss is returned',
} as const;

/**
 * The float64 values `restarts` runs hold at most at once: `perRun` (data copies, factors and
 * workspaces) for each run the runtime lets run together, and the factors (`result`) of every other
 * run, kept until the best is known.
 */
export function restartsDoubles(restarts: number, perRun: number, result: number): number {
  const together = Math.min(restarts, getConcurrency());
  return together * perRun + (restarts - together) * result;
}

/** The loss a run is ranked by: the penalized objective where reported, else the loss. */
function scoreOf(r: { loss: number; objective?: number }): number {
  return r.objective ?? r.loss;
}

/** The seeds of n restarts from `seed`; refuses a seed range past the exact integers of a double. */
function restartSeeds(seed: number, n: number, context: string, given: boolean): number[] {
  if (n > 1 && given) {
    throw new RangeError(`Expected options.restarts 1 with given factors (options.init) for ${context} but received ${n}: every restart would start from the same factors`);
  }
  if (seed + (n - 1) > Number.MAX_SAFE_INTEGER) {
    throw new RangeError(`Expected options.seed + options.restarts − 1 ≤ ${Number.MAX_SAFE_INTEGER} for ${context} but received seed ${seed} with ${n} restarts`);
  }
  return Array.from({ length: n }, (_, i) => seed + i);
}

function pickBest<R extends { loss: number; objective?: number }>(runs: R[], seeds: number[]): R & { restarts: RestartsSummary } {
  const losses = Float64Array.from(runs, scoreOf);
  let best = 0;
  for (let i = 1; i < runs.length; i++) if (losses[i]! < losses[best]!) best = i;
  return { ...runs[best]!, restarts: { seeds, losses, best } };
}

interface RestartOptions {
  seed: number;
  restarts: number;
}

/** Runs `run(seed)` for every restart on the calling thread; one restart is the plain call. */
export function bestOfSync<R extends { loss: number; objective?: number }>(
  o: RestartOptions,
  given: boolean,
  context: string,
  run: (seed: number) => R,
): R | (R & { restarts: RestartsSummary }) {
  const seeds = restartSeeds(o.seed, o.restarts, context, given);
  if (seeds.length === 1) return run(seeds[0]!);
  return pickBest(seeds.map(run), seeds);
}

/**
 * Starts every restart at once through the job runtime; each run gets its own signal (the caller's,
 * and stopped when another run fails) and reports progress with its `restart` index. The first
 * failure rejects the whole call and cancels the other runs.
 */
export function bestOf<R extends { loss: number; objective?: number }>(
  o: RestartOptions & AsyncOptions<NmfProgress>,
  given: boolean,
  context: string,
  run: (seed: number, options: AsyncOptions<NmfProgress>) => Promise<R>,
): Promise<R | (R & { restarts: RestartsSummary })> {
  let seeds: number[];
  try {
    seeds = restartSeeds(o.seed, o.restarts, context, given);
  } catch (err) {
    return Promise.reject(err);
  }
  if (seeds.length === 1) return run(seeds[0]!, o);
  const stopOthers = new AbortController();
  const signal = o.signal ? AbortSignal.any([o.signal, stopOthers.signal]) : stopOthers.signal;
  const { onProgress } = o;
  const runs = seeds.map((seed, restart) =>
    run(seed, {
      ...o,
      signal,
      onProgress: onProgress && ((p: NmfProgress) => onProgress({ ...p, restart })),
    }).catch((err: unknown) => {
      stopOthers.abort();
      throw err;
    }),
  );
  // The first rejection in seed order is not necessarily the cause: report the first to happen.
  return new Promise((resolve, reject) => {
    runs.forEach((r) => r.catch(reject));
    Promise.all(runs).then((done) => resolve(pickBest(done, seeds)), () => {});
  });
}
