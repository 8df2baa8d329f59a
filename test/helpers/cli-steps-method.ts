// A test-only method for the CLI plumbing that the real methods cannot exercise on demand: a run
// that takes as long as asked (for Ctrl-C), reports progress every step, fails numerically at a
// chosen step (exit code 1) and returns trace columns (for plots). It works on a real matrix: its
// result is the input scaled by 1/(steps+1) — so the arrays written are checkable.
// Run as a process: `node --import tsx test/helpers/cli-steps-method.ts <nsa-flow args>`.
import { AbortError, NumericalError } from '../../lib/errors.js';
import type { Matrix } from '../../lib/matrix.js';
import { registerMethod, getMethod } from '../../lib/cli/registry.js';
import { runCli } from '../../lib/cli/main.js';

export function registerStepsMethod(): void {
  if (getMethod('test-steps')) return;
  registerMethod<{ steps: number; stepMs: number; failAt: number; seed: number }, { labels?: string[] }>({
    name: 'test-steps',
    summary: 'test-only: scale a matrix down in steps, with progress',
    optionSpecs: {
      steps: { kind: 'number', integer: true, min: 1, max: 100_000, default: 5, description: 'steps' },
      stepMs: { kind: 'number', min: 0, max: 10_000, default: 1, description: 'milliseconds per step' },
      failAt: { kind: 'number', integer: true, min: 0, default: 0, description: 'step that fails numerically (0: none)' },
      seed: { kind: 'number', integer: true, min: 0, default: 1, description: 'recorded only' },
    },
    inputs: {
      X: { kind: 'matrix', description: 'any matrix' },
      labels: { kind: 'strata', optional: true, description: 'one label per row of X (only counted)' },
    },
    diagnostics: (_, inputs) => (inputs.labels ? { strata: new Set(inputs.labels as string[]).size } : {}),
    async run(inputs, o, { signal, onProgress }) {
      const X = inputs.X as Matrix;
      const fidelity = new Float64Array(o.steps);
      const orthogonality = new Float64Array(o.steps);
      const iteration = new Float64Array(o.steps);
      for (let i = 0; i < o.steps; i++) {
        if (signal?.aborted) throw new AbortError();
        await new Promise((r) => setTimeout(r, o.stepMs));
        if (o.failAt === i + 1) throw new NumericalError(`non-finite energy at step ${i + 1}`);
        iteration[i] = i + 1;
        fidelity[i] = 1 / (i + 1);
        orthogonality[i] = 1 / (i + 1) ** 2;
        onProgress?.({ iteration: i + 1, total: o.steps, energy: fidelity[i]! + orthogonality[i]! });
      }
      const data = X.data.map((v) => v / (o.steps + 1));
      if (inputs.labels && (inputs.labels as string[]).length !== X.rows) {
        throw new RangeError(`Expected ${X.rows} labels (one per row of X) but received ${(inputs.labels as string[]).length}`);
      }
      return { Y: { rows: X.rows, cols: X.cols, data }, iterations: o.steps, stopReason: 'maxIterations', traces: { iteration, fidelity, orthogonality }, settings: { ...o } };
    },
  });
}

if (process.argv[1] && import.meta.url.endsWith(process.argv[1].split('/').pop()!)) {
  registerStepsMethod();
  await runCli(process.argv.slice(2));
}
