// The committed prebuild (prebuilds/linux-x64/nsa-flow.node, made by `npm run prebuildify`) must be
// built from the current sources and load through node-gyp-build when no local build exists.
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { describe, expect, it } from 'vitest';

// @ts-expect-error plain ESM helper shared with scripts/stamp-prebuild.mjs
import { nativeSourcesHash } from '../scripts/sources-hash.mjs';
import { repoRoot } from './helpers/shared.js';

const prebuild = join(repoRoot, 'prebuilds', 'linux-x64', 'nsa-flow.node');

describe('prebuild', () => {
  it('is stamped with the hash of the current native sources (regenerate with npm run prebuildify)', () => {
    const stamp = readFileSync(join(repoRoot, 'prebuilds', 'SOURCES.sha256'), 'utf8').trim();
    expect(stamp).toBe(nativeSourcesHash());
  });

  it('loads through node-gyp-build from a package without build/ and computes', () => {
    expect(existsSync(prebuild)).toBe(true);
    const dir = mkdtempSync(join(tmpdir(), 'nsa-flow-prebuild-'));
    try {
      cpSync(join(repoRoot, 'package.json'), join(dir, 'package.json'));
      cpSync(join(repoRoot, 'prebuilds'), join(dir, 'prebuilds'), { recursive: true });
      const script = `
        const load = require(${JSON.stringify(join(repoRoot, 'node_modules', 'node-gyp-build'))});
        const b = load(${JSON.stringify(dir)});
        console.log(JSON.stringify({ path: load.resolve(${JSON.stringify(dir)}), defect: b.defect(new Float64Array([1, 0, 0, 1, 0, 0]), 3, 2) }));
      `;
      const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8' });
      expect(r.stderr).toBe('');
      const out = JSON.parse(r.stdout) as { path: string; defect: number };
      expect(out.path).toMatch(/prebuilds\/linux-x64\/nsa-flow\.node$/);
      expect(out.defect).toBe(0); // orthogonal columns
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('is stripped (no symbol table)', () => {
    const r = spawnSync('readelf', ['-S', prebuild], { encoding: 'utf8' });
    expect(r.status).toBe(0);
    expect(r.stdout).not.toMatch(/\.symtab/);
  });
});
