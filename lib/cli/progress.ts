/**
 * Progress display: a bar with iteration, energy and ETA when the stream is a terminal, one JSON
 * object per line (NDJSON) otherwise, so that programs piping the CLI can follow a run.
 *
 * The bar is drawn by the optional package cli-progress, imported only when a bar is about to be
 * drawn; without it the run shows no bar and says so once.
 */
import type * as CliProgress from 'cli-progress';

import type { MethodProgress } from './registry.js';

type CliProgressModule = typeof CliProgress;

/** A "module not found" error, also when a loader wraps it (the original is then its cause). */
function isModuleNotFound(err: unknown): boolean {
  for (let e = err, depth = 0; e !== null && typeof e === 'object' && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    const code = (e as { code?: unknown }).code;
    if (code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND') return true;
  }
  return false;
}

let loading: Promise<CliProgressModule | undefined> | undefined;
let loaded: CliProgressModule | undefined;
let missingNoted = false;

/**
 * Imports cli-progress (once); resolves whether a bar can be drawn. When the package is not installed
 * it writes one note to `stream` (once per process).
 */
export async function loadProgressBar(stream: Stream): Promise<boolean> {
  return (await importBar(stream)) !== undefined;
}

function importBar(stream: Stream): Promise<CliProgressModule | undefined> {
  loading ??= import('cli-progress').then(
    (m) => (loaded = ((m as unknown as { default?: CliProgressModule }).default ?? m) as CliProgressModule),
    (err: unknown) => {
      if (!isModuleNotFound(err)) throw err;
      return undefined;
    },
  );
  return loading.then((m) => {
    if (!m && !missingNoted) {
      missingNoted = true;
      stream.write('nsa-flow: no progress bar: the optional package cli-progress is not installed (npm install cli-progress)\n');
    }
    return m;
  });
}

export interface ProgressSink {
  update(p: MethodProgress): void;
  /** Ends the display (the bar leaves its last state on screen). */
  stop(): void;
}

export interface Stream {
  write(chunk: string): unknown;
  isTTY?: boolean;
  columns?: number;
}

const fmt = (x: number | undefined): string =>
  x === undefined ? '–' : Math.abs(x) >= 1e4 || (Math.abs(x) < 1e-3 && x !== 0) ? x.toExponential(4) : x.toPrecision(6);

/**
 * A terminal progress bar (cli-progress): "retract [=====     ] 40/100 | energy 1.2e-3 | ETA 3s".
 * It draws at once when loadProgressBar has resolved; otherwise it starts the import and draws from
 * the first update after it (an update that comes earlier is kept and drawn then).
 */
export function barProgress(label: string, stream: Stream): ProgressSink {
  if (!loaded) {
    let inner: ProgressSink | undefined;
    let last: MethodProgress | undefined;
    let stopped = false;
    void importBar(stream).then((m) => {
      if (!m || stopped) return;
      inner = drawBar(m, label, stream);
      if (last) inner.update(last);
    });
    return {
      update(p) {
        if (inner) inner.update(p);
        else last = p;
      },
      stop() {
        stopped = true;
        inner?.stop();
      },
    };
  }
  return drawBar(loaded, label, stream);
}

function drawBar(cliProgress: CliProgressModule, label: string, stream: Stream): ProgressSink {
  const bar = new cliProgress.SingleBar(
    {
      stream: stream as unknown as NodeJS.WritableStream,
      format: `${label} [{bar}] {value}/{total} | energy {energy} | ETA {eta_formatted}`,
      barsize: 30,
      hideCursor: true,
      clearOnComplete: false,
      etaBuffer: 20,
      fps: 10,
    },
    cliProgress.Presets.legacy,
  );
  let started = false;
  return {
    update(p) {
      const total = p.total ?? Math.max(p.iteration, 1);
      if (!started) {
        bar.start(total, p.iteration, { energy: fmt(p.energy) });
        started = true;
      } else {
        if (bar.getTotal() !== total) bar.setTotal(total);
        bar.update(p.iteration, { energy: fmt(p.energy) });
      }
    },
    stop() {
      if (started) bar.stop();
    },
  };
}

/** NDJSON progress lines, throttled to one per `intervalMs` (the last one is always written). */
export function ndjsonProgress(fields: Record<string, unknown>, stream: Stream, intervalMs = 100): ProgressSink {
  const t0 = performance.now();
  let last = -Infinity;
  let pending: MethodProgress | undefined;
  const emit = (p: MethodProgress): void => {
    const elapsed = (performance.now() - t0) / 1000;
    stream.write(JSON.stringify({ event: 'progress', ...fields, ...p, elapsedSeconds: Number(elapsed.toFixed(3)) }) + '\n');
    last = performance.now();
    pending = undefined;
  };
  return {
    update(p) {
      if (performance.now() - last >= intervalMs) emit(p);
      else pending = p;
    },
    stop() {
      if (pending) emit(pending);
    },
  };
}
