// npm run fuzz -- [--runs N] [--seed S] [--entry E] [--only fn1,fn2]: the fuzz suite at any size,
// printing each entry point's outcome counts and every bad outcome. Exits 1 when any call crashed,
// hung or ended in an error that is not ours.
import { rmSync } from 'node:fs';
import { parseArgs } from 'node:util';

import { fuzzMemoryLimit } from './limits.js';
import { entries, runFuzz, summarize, type Entry } from './run.js';
import { makeSandbox } from './sandbox.js';

const { values } = parseArgs({
  options: {
    runs: { type: 'string', default: '200' },
    seed: { type: 'string', default: String(Date.now() % 100000) },
    entry: { type: 'string', multiple: true },
    only: { type: 'string' },
    'timeout-s': { type: 'string', default: '1800' },
  },
});
const chosen = (values.entry ?? [...entries]) as Entry[];
for (const e of chosen) {
  if (!(entries as readonly string[]).includes(e)) {
    console.error(`fuzz: unknown --entry '${e}'; entries are ${entries.join(', ')} (use --only fn1,fn2 to pick functions)`);
    process.exit(2);
  }
}
let failed = false;
console.log(`fuzz: ${values.runs} cases per function, seed ${values.seed}`);
for (const entry of chosen) {
  const sandbox = await makeSandbox(fuzzMemoryLimit);
  const run = runFuzz(entry, { runs: Number(values.runs), seed: Number(values.seed), sandbox: sandbox.dir, timeoutMs: Number(values['timeout-s']) * 1000, only: values.only });
  console.log(summarize(run));
  for (const b of run.report?.bad ?? []) console.log(`  BAD ${b.target}(${b.args}) → ${b.outcome}`);
  const escapes = sandbox.escapes().filter((e) => !/^(report|progress)-/.test(e));
  if (escapes.length) console.log(`  ESCAPED: written beside the sandbox: ${escapes.join(', ')}`);
  failed ||= Boolean(run.failure) || (run.report?.bad.length ?? 1) > 0 || escapes.length > 0;
  rmSync(sandbox.root, { recursive: true, force: true });
}
process.exit(failed ? 1 : 0);
