#!/usr/bin/env node
// Prints the compiler or linker flags for OpenBLAS + LAPACKE (used by binding.gyp).
//
// Default (a source build, `npm rebuild`): the system shared libraries, found with pkg-config. When
// pkg-config cannot find them, fails with one message that names the Debian packages.
//
// NSA_FLOW_STATIC_BLAS=1 (the prebuild made by scripts/make-prebuild.mjs): link Debian's static
// archives of LAPACKE, OpenBLAS (which carries LAPACK; Debian builds it with DYNAMIC_ARCH, so the
// run-time CPU dispatch is kept) and the two GCC run-time libraries OpenBLAS's Fortran parts call
// (libgfortran, libquadmath) into the addon, so it loads on machines without any of them.
// --exclude-libs hides the archives' symbols: another OpenBLAS in the same process (numpy, another
// addon) never binds to ours, nor ours to it.
'use strict';
const { execFileSync } = require('node:child_process');
const { existsSync } = require('node:fs');
const { join } = require('node:path');

const kind = process.argv[2] === '--libs' ? '--libs' : '--cflags';
const staticBlas = process.env.NSA_FLOW_STATIC_BLAS === '1';

function fail(lines) {
  process.stderr.write(`\nnsa-flow: ${lines.join('\n')}\n\n`);
  process.exit(1);
}

function pkgConfig(args) {
  try {
    return execFileSync('pkg-config', args, { stdio: ['ignore', 'pipe', 'pipe'] }).toString().trim();
  } catch {
    return fail([
      'the system OpenBLAS and LAPACKE development files were not found (pkg-config openblas lapacke).',
      'Possible solutions:',
      '  - Debian/Ubuntu: apt-get install -y libopenblas-dev liblapacke-dev pkg-config',
      '  - then run npm ci (or npm rebuild nsa-flow) again.',
    ]);
  }
}

/** The static archive `name` in the library directory of pkg-config module `module`. */
function archiveOf(module, name) {
  const path = join(pkgConfig(['--variable=libdir', module]), name);
  return existsSync(path) ? path : undefined;
}

/** A GCC run-time archive (libgfortran.a, libquadmath.a) where the compiler looks for it. */
function gccArchive(name) {
  const cxx = process.env.CXX || 'g++';
  try {
    const path = execFileSync(cxx, [`-print-file-name=${name}`], { stdio: ['ignore', 'pipe', 'pipe'] }).toString().trim();
    // Unknown names come back unchanged (no directory).
    return path.includes('/') && existsSync(path) ? path : undefined;
  } catch {
    return undefined;
  }
}

if (kind === '--cflags') {
  process.stdout.write(pkgConfig(['--cflags', 'openblas', 'lapacke']) + '\n');
} else if (!staticBlas) {
  process.stdout.write(pkgConfig(['--libs', 'openblas', 'lapacke']) + '\n');
} else {
  const archives = {
    'liblapacke.a': archiveOf('lapacke', 'liblapacke.a'),
    'libopenblas.a': archiveOf('openblas', 'libopenblas.a'),
    'libgfortran.a': gccArchive('libgfortran.a'),
    'libquadmath.a': gccArchive('libquadmath.a'),
  };
  const missing = Object.keys(archives).filter((k) => archives[k] === undefined);
  if (missing.length > 0) {
    fail([
      `the static libraries ${missing.join(', ')} needed for a self-contained prebuild were not found.`,
      'Debian/Ubuntu: apt-get install -y libopenblas-dev liblapacke-dev libgfortran-12-dev pkg-config',
    ]);
  }
  const group = ['liblapacke.a', 'libopenblas.a', 'libgfortran.a', 'libquadmath.a'].map((k) => archives[k]);
  process.stdout.write(['-Wl,--exclude-libs,ALL', '-Wl,--start-group', ...group, '-Wl,--end-group', '-lm', '-lpthread'].join(' ') + '\n');
}
