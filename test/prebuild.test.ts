// The prebuild is made at pack time (scripts/make-prebuild.mjs, run by prepack) and never committed.
// What keeps a stale one out of a package is the stamp check tested here; test/pack.test.ts builds,
// packs and installs the real thing.
import { cpSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterEach, beforeEach, describe, expect, it } from 'vitest';

// @ts-expect-error plain ESM helper
import { neededLibraries, prebuildIsCurrent, prebuildPath, stampPath } from '../scripts/make-prebuild.mjs';
// @ts-expect-error plain ESM helper
import { nativeSourcesHash } from '../scripts/sources-hash.mjs';
import { repoRoot } from './helpers/shared.js';

describe('prebuild staleness', () => {
  let root: string;
  beforeEach(() => {
    // A copy of everything the stamp covers, with a placeholder prebuild file.
    root = mkdtempSync(join(tmpdir(), 'nsa-flow-stamp-'));
    cpSync(join(repoRoot, 'native'), join(root, 'native'), { recursive: true });
    cpSync(join(repoRoot, 'binding.gyp'), join(root, 'binding.gyp'));
    mkdirSync(join(root, 'scripts'));
    cpSync(join(repoRoot, 'scripts', 'blas-flags.cjs'), join(root, 'scripts', 'blas-flags.cjs'));
    mkdirSync(join(root, 'prebuilds', 'linux-x64'), { recursive: true });
    writeFileSync(prebuildPath(root), 'placeholder');
  });
  afterEach(() => rmSync(root, { recursive: true, force: true }));

  it('a prebuild stamped with the hash of the current sources is reused', () => {
    writeFileSync(stampPath(root), `${nativeSourcesHash(root)}\n`);
    expect(prebuildIsCurrent(root)).toBe(true);
  });

  it('an unstamped prebuild, or one without a file, is rebuilt', () => {
    expect(prebuildIsCurrent(root)).toBe(false);
    writeFileSync(stampPath(root), `${nativeSourcesHash(root)}\n`);
    rmSync(prebuildPath(root));
    expect(prebuildIsCurrent(root)).toBe(false);
  });

  it.each([
    ['a kernel source', 'native/kernels/ortho.cpp'],
    ['binding.gyp', 'binding.gyp'],
    ['the static-link flags', 'scripts/blas-flags.cjs'],
    ['the Fortran run-time shim', 'native/prebuild/fortran_runtime.cpp'],
  ])('changing %s makes the stamped prebuild stale', (_what, file) => {
    writeFileSync(stampPath(root), `${nativeSourcesHash(root)}\n`);
    writeFileSync(join(root, file), '// edited\n', { flag: 'a' });
    expect(prebuildIsCurrent(root)).toBe(false);
  });

  it('reads the shared libraries an ELF file needs', () => {
    // The test runner itself: every dynamically linked Node needs libc.
    expect(neededLibraries(process.execPath)).toContain('libc.so.6');
  });
});
