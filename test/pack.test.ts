// The package as a user gets it: `npm pack` (which makes the self-contained prebuild, prepack), then
// `npm install <tarball>` into an empty project with install scripts off, used from ESM, CommonJS and
// the CLI. The prebuild must not need the system OpenBLAS; a source build from the tarball must work
// with no npm configuration (a dependency's .npmrc is never read).
import { spawnSync, type SpawnSyncOptions } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { createRequire } from 'node:module';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

// @ts-expect-error plain ESM helper shared with scripts/make-prebuild.mjs
import { FORBIDDEN_NEEDED, neededLibraries } from '../scripts/make-prebuild.mjs';
// @ts-expect-error plain ESM helper shared with scripts/make-prebuild.mjs
import { nativeSourcesHash } from '../scripts/sources-hash.mjs';
import { repoRoot } from './helpers/shared.js';

const { localNodedir } = createRequire(import.meta.url)('../scripts/nodedir.cjs') as { localNodedir(): string | undefined };

const work = mkdtempSync(join(tmpdir(), 'nsa-flow-pack-'));
const project = join(work, 'project');
const installed = join(project, 'node_modules', 'nsa-flow');
const emptyLibDir = join(work, 'no-libs');
let tarball = '';
const repoFiles = ['package.json', 'package-lock.json'];
const repoBefore = repoFiles.map((f) => readFileSync(join(repoRoot, f), 'utf8'));

/**
 * The environment without what an outer `npm test` exports to its scripts: npm_config_local_prefix
 * (among others) would make a nested `npm install` install into this repository instead of the
 * consumer project.
 */
const cleanEnv = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^(npm_|INIT_CWD$)/i.test(k)));

function sh(cmd: string, args: string[], options: SpawnSyncOptions = {}) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 900_000, ...options });
  return { status: r.status, stdout: String(r.stdout), stderr: String(r.stderr) };
}

/** Runs a script in the consumer project with the library path pointing at an empty folder. */
function runInProject(file: string) {
  return sh(process.execPath, [file], {
    cwd: project,
    // LD_BIND_NOW: every symbol of the addon is resolved at load, so a missing one fails loudly here.
    env: { ...cleanEnv, LD_LIBRARY_PATH: emptyLibDir, LD_BIND_NOW: '1' },
  });
}

// What both module scripts print: two results with exact expected values (see the assertions), the
// addon node-gyp-build picked, and every mapped BLAS/LAPACK/Fortran library of the process.
const probeBody = `
const Y = matrix([[1, 2], [3, 4], [5, 7]]);
const Q = retract(Y, { type: 'polar' });
const maps = readFileSync('/proc/self/maps', 'utf8').split('\\n')
  .map((l) => l.split(/\\s+/)[5]).filter((p) => p && /lib(openblas|lapack|blas|gfortran|quadmath)/.test(p));
console.log(JSON.stringify({
  defect: invariantOrthogonalityDefect(Y),
  defectAfter: invariantOrthogonalityDefect(Q),
  normSquared: Q.data.reduce((s, v) => s + v * v, 0),
  addon: nodeGypBuild.resolve(dirname(require.resolve('nsa-flow/package.json'))),
  blas: info().blas.config,
  maps: [...new Set(maps)],
}));
`;

interface Probe {
  defect: number;
  defectAfter: number;
  normSquared: number;
  addon: string;
  blas: string;
  maps: string[];
}

function expectProbe(r: { status: number | null; stdout: string; stderr: string }, addon: RegExp): void {
  expect(r.status, r.stderr).toBe(0);
  const p = JSON.parse(r.stdout.trim().split('\n').pop()!) as Probe;
  // Y = [1 2; 3 4; 5 7]: S = YᵀY = [35 49; 49 69], defect = 2·49² / tr(S)² = 4802 / 10816.
  expect(Math.abs(p.defect - 4802 / 10816)).toBeLessThan(1e-15);
  // The polar factor has orthogonal columns and keeps ‖Y‖² = tr S = 104.
  expect(p.defectAfter).toBeLessThan(1e-20);
  expect(Math.abs(p.normSquared - 104)).toBeLessThan(1e-12);
  expect(p.addon).toMatch(addon);
  // The linked-in OpenBLAS still picks its kernels for the CPU at run time.
  expect(p.blas).toMatch(/DYNAMIC_ARCH/);
  expect(p.maps).toEqual([]);
}

beforeAll(() => {
  mkdirSync(emptyLibDir);
  mkdirSync(project);
  const pack = sh('npm', ['pack', '--pack-destination', work], { cwd: repoRoot, env: cleanEnv });
  expect(pack.status, pack.stdout + pack.stderr).toBe(0);
  tarball = join(work, readdirSync(work).find((f) => f.endsWith('.tgz'))!);
  writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'consumer', version: '1.0.0', private: true }));
  // --prefer-offline rather than --offline: the dependencies' tarballs come from the npm cache, but
  // resolving their versions needs registry metadata, which `npm ci` does not cache.
  const install = sh('npm', ['install', '--prefix', project, '--prefer-offline', '--ignore-scripts', '--no-audit', '--no-fund', tarball], {
    cwd: project,
    env: cleanEnv,
  });
  expect(install.status, install.stdout + install.stderr).toBe(0);
}, 900_000);

afterAll(() => rmSync(work, { recursive: true, force: true }));

describe('npm pack', () => {
  it('ships the prebuild stamped with the current sources, what a source build needs, and nothing else', () => {
    const files = sh('tar', ['-tzf', tarball]).stdout.split('\n').filter(Boolean);
    for (const f of ['prebuilds/linux-x64/nsa-flow.node', 'prebuilds/SOURCES.sha256', 'binding.gyp', 'scripts/install.cjs', 'scripts/blas-flags.cjs', 'dist/index.js', 'bin/nsa-flow.mjs']) {
      expect(files).toContain(`package/${f}`);
    }
    expect(files.filter((f) => /^package\/(build|test|node_modules|lib)\//.test(f))).toEqual([]);
    expect(readFileSync(join(installed, 'prebuilds', 'SOURCES.sha256'), 'utf8').trim()).toBe(nativeSourcesHash());
  });

  it('installs nsa-flow and its three dependencies only: the queue, plot and progress packages are optional peers', () => {
    const packages = readdirSync(join(project, 'node_modules')).filter((n) => !n.startsWith('.'));
    expect(packages.sort()).toEqual(['csv-parse', 'node-addon-api', 'node-gyp-build', 'nsa-flow']);
  });

  it('the prebuild links no BLAS, LAPACK or Fortran library', () => {
    const needed = neededLibraries(join(installed, 'prebuilds', 'linux-x64', 'nsa-flow.node')) as string[];
    expect(needed.filter((lib) => FORBIDDEN_NEEDED.test(lib))).toEqual([]);
    expect(needed).toContain('libc.so.6');
  });

  it('ESM: import computes with the prebuild, and no system BLAS is mapped into the process', () => {
    writeFileSync(
      join(project, 'probe.mjs'),
      `import { createRequire } from 'node:module';
      import { readFileSync } from 'node:fs';
      import { dirname } from 'node:path';
      import { info, matrix, retract, invariantOrthogonalityDefect, writeNpy } from 'nsa-flow';
      const require = createRequire(import.meta.url);
      const nodeGypBuild = require('node-gyp-build');
      writeNpy('y.npy', matrix([[1, 2], [3, 4], [5, 7]]));
      ${probeBody}`,
    );
    expectProbe(runInProject('probe.mjs'), /node_modules\/nsa-flow\/prebuilds\/linux-x64\/nsa-flow\.node$/);
  });

  it('CommonJS: require() computes the same', () => {
    writeFileSync(
      join(project, 'probe.cjs'),
      `const { readFileSync } = require('node:fs');
      const { dirname } = require('node:path');
      const { info, matrix, retract, invariantOrthogonalityDefect } = require('nsa-flow');
      const nodeGypBuild = require('node-gyp-build');
      ${probeBody}`,
    );
    expectProbe(runInProject('probe.cjs'), /node_modules\/nsa-flow\/prebuilds\/linux-x64\/nsa-flow\.node$/);
  });

  it('the CLI: npx nsa-flow --version, and a retraction of the matrix the ESM script wrote', () => {
    const version = sh('npx', ['nsa-flow', '--version'], { cwd: project, env: cleanEnv });
    expect(version.stderr).toBe('');
    expect(version.stdout.trim()).toBe(JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')).version);
    const solve = sh('npx', ['nsa-flow', 'retract', 'y.npy', '--type', 'polar', '--json'], {
      cwd: project,
      env: { ...cleanEnv, LD_LIBRARY_PATH: emptyLibDir },
    });
    expect(solve.status, solve.stderr).toBe(0);
    const result = JSON.parse(solve.stdout.trim().split('\n').pop()!) as { diagnostics: { defectBefore: number; defectAfter: number; frobeniusNorm: number } };
    expect(Math.abs(result.diagnostics.defectBefore - 4802 / 10816)).toBeLessThan(1e-15);
    expect(result.diagnostics.defectAfter).toBeLessThan(1e-20);
    expect(Math.abs(result.diagnostics.frobeniusNorm - Math.sqrt(104))).toBeLessThan(1e-12);
  });

  it('npm rebuild --build-from-source compiles against the system OpenBLAS with no npm configuration at all', () => {
    // No npm configuration at all (an empty user config): nodedir comes from the package.
    const userconfig = join(work, 'empty-npmrc');
    writeFileSync(userconfig, '');
    const rebuild = sh('npm', ['rebuild', '--prefix', project, 'nsa-flow', '--foreground-scripts'], {
      cwd: project,
      env: { ...cleanEnv, npm_config_userconfig: userconfig, npm_config_build_from_source: 'true', JOBS: String(availableParallelism()) },
    });
    expect(rebuild.status, rebuild.stdout + rebuild.stderr).toBe(0);
    const built = join(installed, 'build', 'Release', 'nsa_flow.node');
    expect(neededLibraries(built)).toContain('libopenblas.so.0');
    // The Node headers came from the running Node's own prefix (scripts/nodedir.cjs), not a download.
    const nodedir = localNodedir();
    expect(nodedir).toBeDefined();
    expect(readFileSync(join(installed, 'build', 'config.gypi'), 'utf8')).toContain(`"nodedir": ${JSON.stringify(nodedir)}`);
    // node-gyp-build now prefers build/Release, which maps the system OpenBLAS.
    const r = sh(process.execPath, ['probe.mjs'], { cwd: project, env: cleanEnv });
    expect(r.status, r.stderr).toBe(0);
    const p = JSON.parse(r.stdout.trim().split('\n').pop()!) as Probe;
    expect(p.addon).toMatch(/node_modules\/nsa-flow\/build\/Release\/nsa_flow\.node$/);
    expect(Math.abs(p.defect - 4802 / 10816)).toBeLessThan(1e-15);
    expect(p.maps.some((m) => /libopenblas/.test(m))).toBe(true);
  }, 900_000);

  it('leaves the repository\'s package.json and lock file as they were', () => {
    expect(repoFiles.map((f) => readFileSync(join(repoRoot, f), 'utf8'))).toEqual(repoBefore);
  });
});
