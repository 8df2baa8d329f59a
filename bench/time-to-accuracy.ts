// Time to accuracy (npm run bench:tta [-- --quick] [-- --only <section>] [-- --cpu] [-- --repeats N]): for each method and solver,
// the wall time to reach a relative error within 1 % (and 50, 10, 5 %) of the best any solver reaches,
// and the error reached in fixed times, on a synthetic and a real data set per method; with
// scikit-learn and RcppML installed, the same for them on the same matrices and the ratios.
// Every bench/tta/*.ts except common.ts is a section (bench/tta/common.ts documents the interface).
// --cpu: whole-call fits (ours where a section uses wholeCallCurve, the peers') on CPU time instead of
// wall time; --repeats N: each such fit N times, the median kept (both for a loaded machine).
import { readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { describePeers, newContext, type TtaContext } from './tta/common.js';

interface Section {
  title?: string;
  run(ctx: TtaContext): Promise<void>;
}

const args = process.argv.slice(2);
const quick = args.includes('--quick');
const onlyAt = args.indexOf('--only');
const only = onlyAt >= 0 ? args[onlyAt + 1] : undefined;
const repeatsAt = args.indexOf('--repeats');
const repeats = repeatsAt >= 0 ? Math.max(1, Number.parseInt(args[repeatsAt + 1] ?? '1', 10) || 1) : 1;
const clock = args.includes('--cpu') ? 'cpu' : 'wall';

const dir = join(dirname(fileURLToPath(import.meta.url)), 'tta');
const files = readdirSync(dir)
  .filter((f) => f.endsWith('.ts') && f !== 'common.ts' && !f.endsWith('.d.ts'))
  .filter((f) => only === undefined || f === `${only}.ts`)
  .sort();

const ctx = newContext(quick, clock, repeats);
console.log(
  `time to accuracy, one thread everywhere${quick ? ' (--quick: short runs, indicative only)' : ''}; ` +
    `whole-call fits on ${clock === 'cpu' ? 'process CPU time' : 'wall time'}${repeats > 1 ? ` (median of ${repeats})` : ''}, traces on the solver's wall clock, on a possibly shared machine`,
);
for (const line of describePeers(ctx.peers)) console.log(line);
for (const f of files) {
  const section = (await import(pathToFileURL(join(dir, f)).href)) as Section;
  console.log(`\n# ${section.title ?? f.replace(/\.ts$/, '')} (bench/tta/${f})`);
  await section.run(ctx);
}
