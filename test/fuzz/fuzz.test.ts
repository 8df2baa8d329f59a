// The property-based fuzz suite in CI: every export of every entry point (nsa-flow, nsa-flow/batch,
// nsa-flow/plot, nsa-flow/cli) and every raw binding function is called with generated hostile and
// valid-looking arguments, each entry point in a child process of its own. Expected: no signal, no
// hang, and every call ends in a result or in one of our error classes (TypeError/RangeError naming the
// argument, AbortError, NumericalError, FormatError, UsageError), with nothing written outside the
// sandbox. `npm run fuzz -- --runs N` runs the same at any size.
import { rmSync } from 'node:fs';

import { afterAll, describe, expect, it } from 'vitest';

import { fuzzMemoryLimit } from './limits.js';
import { entries, runFuzz, summarize } from './run.js';
import { makeSandbox, type Sandbox } from './sandbox.js';

// Cases per function: with ≈180 functions this is a few thousand calls, a few minutes on 2 cores.
const runsPerFunction = Number(process.env.NSA_FLOW_FUZZ_RUNS ?? 16);
const seed = Number(process.env.NSA_FLOW_FUZZ_SEED ?? 20261203);

describe('fuzz: generated calls never crash, hang or escape', () => {
  const sandboxes: Sandbox[] = [];
  afterAll(() => {
    for (const s of sandboxes) rmSync(s.root, { recursive: true, force: true });
  });

  for (const entry of entries) {
    it(`${entry}: ${runsPerFunction} generated calls per function`, async () => {
      const sandbox = await makeSandbox(fuzzMemoryLimit);
      sandboxes.push(sandbox);
      const run = runFuzz(entry, { runs: runsPerFunction, seed, sandbox: sandbox.dir, timeoutMs: 600_000 });
      console.log(summarize(run));
      expect(run.failure, 'the child process died or hung').toBeUndefined();
      expect(run.report!.bad.map((b) => `${b.target}(${b.args}) → ${b.outcome}`)).toEqual([]);
      expect(run.report!.calls).toBeGreaterThanOrEqual(runsPerFunction * run.report!.targets);
      expect(sandbox.escapes().filter((e) => !/^(report|progress)-/.test(e))).toEqual([]);
    }, 660_000);
  }
});
