// `npm run build:cmake` compiles the same sources with cmake-js: build it into a separate folder and
// check the result loads and computes exactly what the node-gyp build computes.
import { spawnSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { join } from 'node:path';

import { describe, expect, it } from 'vitest';

import { native } from '../lib/native.js';
import { repoRoot } from './helpers/shared.js';

describe('cmake-js build', () => {
  it('builds offline from the same sources and matches the node-gyp build bit for bit', () => {
    const out = join(repoRoot, 'build-cmake-test');
    try {
      const build = spawnSync('npx', ['cmake-js', 'build', '--out', out], { cwd: repoRoot, encoding: 'utf8', timeout: 900_000 });
      expect(build.status, build.stdout + build.stderr).toBe(0);
      const script = `
        const b = require(${JSON.stringify(join(out, 'Release', 'nsa_flow.node'))});
        const r = b.retract(new Float64Array([1, 2, 3, 4, 5, 7]), 0, 3, 2, 'softCayley', 0.5, 5, 'auto');
        console.log(JSON.stringify({ system: b.buildInfo().buildSystem, data: Array.from(r.data) }));
      `;
      const run = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8' });
      const res = JSON.parse(run.stdout) as { system: string; data: number[] };
      expect(res.system).toBe('cmake-js');
      const gyp = native().retract(new Float64Array([1, 2, 3, 4, 5, 7]), 0, 3, 2, 'softCayley', 0.5, 5, 'auto');
      expect(res.data).toEqual(Array.from(gyp.data));
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
    // A full compile: a few minutes on a busy 2-core machine.
  }, 900_000);
});
