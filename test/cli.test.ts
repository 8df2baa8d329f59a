// The nsa-flow command line: flags and help generated from the API's OptionSpecs, --out (npy +
// result.json, atomic), progress (TTY bar / NDJSON), exit codes 0/1/2/130, Ctrl-C.
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

import { describe, expect, it } from 'vitest';

import { kebab } from '../lib/cli/flags.js';
import { readMatrix, readNpy } from '../lib/io/index.js';
import type { Matrix } from '../lib/matrix.js';
import { retract, retractOptionSpecs } from '../lib/ortho.js';
import { describeSpec } from '../lib/validate.js';
import { finished, runMain, startCli, stepsHelper, tempDir } from './helpers/cli-run.js';
import { registerStepsMethod } from './helpers/cli-steps-method.js';
import { dataFile } from './helpers/shared.js';

const wine = dataFile('sklearn_small/wine_X.npy'); // 178 × 13, tall: every retraction applies
const allTop = dataFile('leukemia_all/ALL_expr_top1000var.npy'); // 128 × 1000, wide
registerStepsMethod();

describe('help, generated from the option specs', () => {
  it('lists every registered method and command', async () => {
    const r = await runMain(['--help']);
    expect(r.code).toBe(0); // explicit --help is success
    for (const c of ['retract', 'info', 'batch', 'worker', 'plot']) expect(r.stdout).toContain(`  ${c} `);
  });

  it('retract --help shows each retractOptionSpecs entry as a kebab-case flag with its range and default', async () => {
    const r = await runMain(['retract', '--help']);
    expect(r.code).toBe(0);
    for (const [key, spec] of Object.entries(retractOptionSpecs)) {
      const line = r.stdout.split('\n').find((l) => l.trimStart().startsWith(`--${kebab(key)} `));
      expect(line, key).toBeDefined();
      expect(line).toContain(describeSpec(spec)); // the same text the API's error messages use
      expect(line).toContain(`(default ${JSON.stringify(spec.default)})`);
    }
    expect(r.stdout).toContain('--ns-iterations <value>'); // nsIterations ↔ --ns-iterations
    expect(r.stdout).not.toContain('--seed'); // retract is deterministic: no seed offered
  });

  it('no command at all is a usage error (exit 2) that prints the help', async () => {
    const r = await runMain([]);
    expect(r.code).toBe(2);
    expect(r.stdout).toMatch(/Usage: nsa-flow <command>/);
  });
});

describe('retract on a real matrix', () => {
  it('--out writes Y.npy and result.json equal to the API call, atomically', async () => {
    const out = join(tempDir('cli'), 'wine-polar');
    const r = await runMain(['retract', wine, '--type', 'polar', '--polar-method', 'svd', '--out', out]);
    expect(r.code, r.stderr).toBe(0);
    expect(readdirSync(out).sort()).toEqual(['Y.npy', 'result.json']); // one array in the result
    expect(readdirSync(dirname(out))).toEqual(['wine-polar']); // no temporary directory left behind
    const Y = readNpy(join(out, 'Y.npy'));
    expect(Y.shape).toEqual([178, 13]);
    const expected = retract(readMatrix(wine) as Matrix, { type: 'polar', polarMethod: 'svd' });
    let maxDiff = 0;
    for (let i = 0; i < Y.data.length; i++) maxDiff = Math.max(maxDiff, Math.abs(Y.data[i]! - expected.data[i]!));
    expect(maxDiff).toBe(0); // same native call, same inputs: bit-identical
    const json = JSON.parse(readFileSync(join(out, 'result.json'), 'utf8'));
    expect(json.settings).toEqual({ type: 'polar', w: 1, nsIterations: 5, polarMethod: 'svd' }); // defaults filled in
    expect(json.inputs).toEqual({ Y: wine });
    expect(json.arrays.Y).toEqual({ file: 'Y.npy', shape: [178, 13] });
    expect(json.diagnostics.defectAfter).toBeLessThan(1e-12); // polar factor: orthogonal columns
    expect(json.diagnostics.defectBefore).toBeCloseTo(0.027635, 5); // wine's columns are far from orthogonal
    expect(json.timings.runSeconds).toBeGreaterThan(0);
  });

  it('refuses to overwrite --out without --force, replaces it with --force', async () => {
    const out = join(tempDir('cli'), 'o');
    expect((await runMain(['retract', wine, '--out', out])).code).toBe(0);
    const again = await runMain(['retract', wine, '--w', '0.5', '--out', out]);
    expect(again.code).toBe(2);
    expect(again.stderr).toMatch(/Cannot write --out .* it already exists \(add --force to replace it\)/); // refused before the solve
    expect((await runMain(['retract', wine, '--w', '0.5', '--out', out, '--force'])).code).toBe(0);
    expect(JSON.parse(readFileSync(join(out, 'result.json'), 'utf8')).settings.w).toBe(0.5); // replaced
  });

  it('--json prints one JSON result line on stdout', async () => {
    const r = await runMain(['retract', wine, '--json', '--type', 'newtonSchulz', '--ns-iterations', '3']);
    expect(r.code).toBe(0);
    const lines = r.stdout.trim().split('\n').map((l) => JSON.parse(l));
    const result = lines.at(-1);
    expect(result.event).toBe('result');
    expect(result.settings.nsIterations).toBe(3);
    expect(result.arrays.Y.shape).toEqual([178, 13]);
  });
});

describe('bad usage and bad input exit with 2 and name the flag or the file', () => {
  const cases: [string, string[], RegExp][] = [
    ['out-of-range number', ['retract', wine, '--w', '2'], /Expected a finite number in \[0, 1\] for --w but received 2/],
    ['non-integer', ['retract', wine, '--ns-iterations=1.5'], /Expected an integer in \[0, 10000\] for --ns-iterations but received 1\.5/],
    ['not a number', ['retract', wine, '--w', 'half'], /Expected a finite number in \[0, 1\] for --w but received the string "half"/],
    ['bad enum value', ['retract', wine, '--type', 'qr'], /Expected one of 'none', 'polar'.* for --type but received the string "qr"/],
    ['unknown flag', ['retract', wine, '--iterations', '3'], /Unknown option --iterations \(did you mean --ns-iterations\?\)/],
    ['missing value', ['retract', wine, '--w'], /Expected a value after --w/],
    ['missing input', ['retract'], /Missing input Y .* for nsa-flow retract/],
    ['missing file', ['retract', 'no/such.npy'], /Input file not found: no\/such\.npy \(input Y/],
    ['seed on a deterministic method', ['retract', wine, '--seed', '3'], /--seed is not accepted by nsa-flow retract/],
    ['shape the method rejects', ['retract', allTop, '--type', 'polar'], /rows ≥ cols .* 128×1000 \(Y = .*ALL_expr_top1000var\.npy(\.gz)?\)/],
    ['unknown command', ['factorize'], /Unknown command 'factorize'; commands: retract/],
    ['misspelt command', ['retrct', wine], /Unknown command 'retrct' \(did you mean retract\?\)/],
  ];
  for (const [what, args, message] of cases) {
    it(what, async () => {
      const r = await runMain(args);
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(message);
    });
  }

  it('a corrupted .npy file: the FormatError names the file', async () => {
    const bad = join(tempDir('cli'), 'truncated.npy');
    writeFileSync(bad, readFileSync(wine).subarray(0, 1000)); // header intact, data cut short
    const r = await runMain(['retract', bad]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(bad);
    expect(r.stderr).toMatch(/truncat/i);
  });
});

describe('progress, numerical failure and cancellation (the test-steps method)', () => {
  it('NDJSON progress on a non-TTY stderr: one record per step with iteration, total and energy', async () => {
    const r = await runMain(['test-steps', wine, '--steps', '4', '--step-ms', '120']);
    expect(r.code).toBe(0);
    const records = r.stderr.trim().split('\n').map((l) => JSON.parse(l));
    expect(records.map((p) => p.iteration)).toEqual([1, 2, 3, 4]); // steps 120 ms apart, throttle 100 ms
    expect(records[3]).toMatchObject({ event: 'progress', method: 'test-steps', total: 4, energy: 1 / 4 + 1 / 16 });
  });

  it('a progress bar with iteration, energy and ETA on a TTY', async () => {
    const r = await runMain(['test-steps', wine, '--steps', '3', '--step-ms', '20'], { tty: true });
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/test-steps \[=+-*\] 3\/3 \| energy 0\.444444 \| ETA 0s/); // final state: 1/3 + 1/9 = 0.444444
  });

  it('a NumericalError exits with 1', async () => {
    const r = await runMain(['test-steps', wine, '--steps', '5', '--fail-at', '2']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/numerical failure: non-finite energy at step 2/);
  });

  it('--strata-from FILE.csv:COLUMN reads a label column; a wrong column exits 2 naming the file', async () => {
    const labels = dataFile('sklearn_small/wine_labels.csv');
    const r = await runMain(['test-steps', wine, '--strata-from', `${labels}:label_name`, '--json']);
    expect(r.code, r.stderr).toBe(0);
    const result = JSON.parse(r.stdout.trim().split('\n').at(-1)!);
    expect(result.diagnostics.strata).toBe(3); // wine: class_0, class_1, class_2
    expect(result.inputs.labels).toBe(`${labels}:label_name`);
    const bad = await runMain(['test-steps', wine, '--strata-from', `${labels}:cultivar`]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain(labels);
    expect(bad.stderr).toMatch(/cultivar/);
    const noColumn = await runMain(['test-steps', wine, '--strata-from', labels]);
    expect(noColumn.code).toBe(2);
    expect(noColumn.stderr).toMatch(/Expected file\.csv:column for input labels/);
  });

  it('--seed reaches a method that declares a seed', async () => {
    const r = await runMain(['test-steps', wine, '--seed', '42', '--json']);
    expect(JSON.parse(r.stdout.trim().split('\n').at(-1)!).settings.seed).toBe(42);
  });

  it('Ctrl-C (SIGINT) cancels through the AbortSignal: exit 130 and nothing written', async () => {
    const parent = tempDir('sigint');
    const out = join(parent, 'never');
    const child = startCli(['test-steps', wine, '--steps', '1000', '--step-ms', '10', '--out', out], { script: stepsHelper });
    const done = finished(child, 40_000);
    // Wait for the first progress record (the run has started), then interrupt.
    const startedRun = await new Promise<boolean>((resolve) => {
      child.stderr!.on('data', (d: Buffer) => d.toString().includes('"progress"') && resolve(true));
      child.once('exit', () => resolve(false)); // ended before any progress: fail below, do not hang
    });
    child.kill('SIGINT');
    const r = await done;
    expect(startedRun, r.stderr).toBe(true);
    expect(r.code).toBe(130);
    expect(r.stderr).toMatch(/cancelled; nothing was written/);
    expect(existsSync(out)).toBe(false);
    expect(readdirSync(parent)).toEqual([]); // no temporary directory either
  });
});

describe('the launcher bin/nsa-flow.mjs', () => {
  it('runs retract and info as a process with exit code 0, and 2 for bad usage', async () => {
    const ok = await finished(startCli(['retract', wine, '--type', 'cayley']));
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stdout).toMatch(/retract on Y=.*wine_X\.npy/);
    const info = await finished(startCli(['info', '--json']));
    expect(JSON.parse(info.stdout).blas.config).toMatch(/OpenBLAS/);
    const bad = await finished(startCli(['retract', wine, '--w', '-1']));
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/for --w but received -1/);
  });
});
