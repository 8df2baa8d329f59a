#!/usr/bin/env node
// Makes the linux-x64 prebuild that the npm package ships: prebuilds/linux-x64/nsa-flow.node, with
// OpenBLAS, LAPACKE, libgfortran and libquadmath linked in statically (scripts/blas-flags.cjs), so
// `npm install nsa-flow` needs no system BLAS. `npm pack` and `npm publish` run it (prepack).
//
// Prebuilds are made at pack time and never committed. The prebuild is stamped with the hash of its
// sources (prebuilds/SOURCES.sha256, scripts/sources-hash.mjs) and rebuilt whenever they differ, so a
// stale prebuild cannot be packed; an unchanged one is reused. Before the prebuild is accepted it must
// name no BLAS/LAPACK/Fortran library among its dependencies and must load and compute.
//
// The build runs in a temporary copy of the sources, so the developer's build/Release is untouched.
// Elsewhere than linux-x64 nothing is built and any prebuild left over is removed: the package then
// compiles from source on install.
import { spawnSync } from 'node:child_process';
import { copyFileSync, cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

import { nativeSourcesHash, repoRoot } from './sources-hash.mjs';

const require = createRequire(import.meta.url);

export const prebuildDir = (root = repoRoot) => join(root, 'prebuilds', 'linux-x64');
export const prebuildPath = (root = repoRoot) => join(prebuildDir(root), 'nsa-flow.node');
export const stampPath = (root = repoRoot) => join(root, 'prebuilds', 'SOURCES.sha256');

/** Shared libraries the prebuild must not need: the point of linking them in. */
export const FORBIDDEN_NEEDED = /openblas|lapack|blas|gfortran|quadmath/;

/** True when a prebuild exists and was built from the current sources. */
export function prebuildIsCurrent(root = repoRoot) {
  if (!existsSync(prebuildPath(root)) || !existsSync(stampPath(root))) return false;
  return readFileSync(stampPath(root), 'utf8').trim() === nativeSourcesHash(root);
}

/** The DT_NEEDED entries of a shared object (readelf -d). */
export function neededLibraries(file) {
  const r = spawnSync('readelf', ['-d', file], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`readelf -d ${file} failed: ${r.stderr}`);
  return [...r.stdout.matchAll(/\(NEEDED\)\s+Shared library: \[([^\]]+)\]/g)].map((m) => m[1]);
}

function run(cmd, args, options) {
  const r = spawnSync(cmd, args, { stdio: 'inherit', ...options });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (exit ${r.status ?? r.signal})`);
}

function build(root) {
  const work = mkdtempSync(join(tmpdir(), 'nsa-flow-prebuild-'));
  try {
    cpSync(join(root, 'native'), join(work, 'native'), { recursive: true });
    copyFileSync(join(root, 'binding.gyp'), join(work, 'binding.gyp'));
    mkdirSync(join(work, 'scripts'));
    copyFileSync(join(root, 'scripts', 'blas-flags.cjs'), join(work, 'scripts', 'blas-flags.cjs'));
    symlinkSync(join(root, 'node_modules'), join(work, 'node_modules'), 'dir');
    const env = { ...process.env, NSA_FLOW_STATIC_BLAS: '1' };
    if (!env.npm_config_nodedir) {
      const nodedir = require('./nodedir.cjs').localNodedir();
      if (nodedir !== undefined) env.npm_config_nodedir = nodedir;
    }
    const nodeGyp = require.resolve('node-gyp/bin/node-gyp.js', { paths: [root] });
    run(process.execPath, [nodeGyp, 'rebuild', '-j', String(availableParallelism())], { cwd: work, env });
    mkdirSync(prebuildDir(root), { recursive: true });
    const out = prebuildPath(root);
    copyFileSync(join(work, 'build', 'Release', 'nsa_flow.node'), out);
    run('strip', ['--strip-all', out]);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

/** Fails unless the prebuild is self-contained, loads, and computes a known value. */
export function verifyPrebuild(root = repoRoot) {
  const file = prebuildPath(root);
  const bad = neededLibraries(file).filter((lib) => FORBIDDEN_NEEDED.test(lib));
  if (bad.length > 0) throw new Error(`the prebuild still needs ${bad.join(', ')}: it must link them statically`);
  // LD_BIND_NOW: resolve every symbol at load, so one left undefined by the static link fails here
  // and not at its first call. Columns (1,0,0) and (0,1,0) are orthonormal: the defect is exactly 0.
  const script = `const m = { exports: {} }; process.dlopen(m, ${JSON.stringify(file)});
    console.log(m.exports.defect(new Float64Array([1, 0, 0, 1, 0, 0]), 3, 2));`;
  const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', env: { ...process.env, LD_BIND_NOW: '1' } });
  if (r.status !== 0 || r.stdout.trim() !== '0') throw new Error(`the prebuild does not load or compute: ${r.stdout}${r.stderr}`);
}

export function ensurePrebuild(root = repoRoot) {
  if (process.platform !== 'linux' || process.arch !== 'x64') {
    rmSync(join(root, 'prebuilds', 'linux-x64'), { recursive: true, force: true });
    rmSync(stampPath(root), { force: true });
    console.log(`nsa-flow: no prebuild is made on ${process.platform}-${process.arch}; installs compile from source.`);
    return;
  }
  if (prebuildIsCurrent(root)) {
    console.log('nsa-flow: prebuilds/linux-x64/nsa-flow.node is up to date with the sources');
  } else {
    rmSync(stampPath(root), { force: true });
    build(root);
    writeFileSync(stampPath(root), `${nativeSourcesHash(root)}\n`);
  }
  verifyPrebuild(root);
  console.log(`nsa-flow: prebuild ready, ${statSync(prebuildPath(root)).size} bytes, needs ${neededLibraries(prebuildPath(root)).join(', ')}`);
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) ensurePrebuild();
