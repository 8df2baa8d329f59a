/**
 * Progress display: a bar with iteration, energy and ETA when the stream is a terminal, one JSON
 * object per line (NDJSON) otherwise, so that programs piping the CLI can follow a run.
 */
import cliProgress from 'cli-progress';

import type { MethodProgress } from './registry.js';

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

/** A terminal progress bar (cli-progress): "retract [=====     ] 40/100 | energy 1.2e-3 | ETA 3s". */
export function barProgress(label: string, stream: Stream): ProgressSink {
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
