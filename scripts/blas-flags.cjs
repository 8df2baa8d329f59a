#!/usr/bin/env node
// Prints the compiler flags, linker flags or extra sources for OpenBLAS + LAPACKE (used by binding.gyp).
//
// Default (a source build, `npm rebuild`): the system shared libraries, found with pkg-config. When
// pkg-config cannot find them, fails with one message that names the Debian packages.
//
// NSA_FLOW_STATIC_BLAS=1 (the prebuild made by scripts/make-prebuild.mjs): link Debian's static
// archives of LAPACKE and OpenBLAS (which carries LAPACK; Debian builds it with DYNAMIC_ARCH, so the
// run-time CPU dispatch is kept) into the addon, so it loads on machines without them. The one GNU
// Fortran run-time function OpenBLAS's LAPACK calls is compiled in from native/prebuild/ (libgfortran.a
// cannot go into a shared object), so neither libgfortran nor libquadmath is needed either.
// --exclude-libs hides the archives' symbols: another OpenBLAS in the same process (numpy, another
// addon) never binds to ours, nor ours to it.
'use strict';
const { execFileSync } = require('node:child_process');
const { existsSync } = require('node:fs');
const { join } = require('node:path');

const kind = ['--libs', '--sources'].includes(process.argv[2]) ? process.argv[2] : '--cflags';
const staticBlas = process.env.NSA_FLOW_STATIC_BLAS === '1';

function fail(lines) {
  process.stderr.write(`\nnsa-flow: ${lines.join('\n')}\n\n`);
  process.exit(1);
}

function notFound() {
  return fail([
    'the system OpenBLAS and LAPACKE development files were not found (pkg-config openblas lapacke).',
    'Possible solutions:',
    '  - Debian/Ubuntu: apt-get install -y libopenblas-dev liblapacke-dev pkg-config',
    '  - macOS (Homebrew; not tested): brew install openblas pkg-config, and',
    '    export PKG_CONFIG_PATH="$(brew --prefix openblas)/lib/pkgconfig"',
    '  - then run npm ci (or npm rebuild nsa-flow) again.',
  ]);
}

function pkgConfig(args) {
  try {
    return execFileSync('pkg-config', args, { stdio: ['ignore', 'pipe', 'pipe'] }).toString().trim();
  } catch {
    return notFound();
  }
}

function pkgConfigHas(modules) {
  try {
    execFileSync('pkg-config', ['--exists', ...modules], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/**
 * The pkg-config modules to use: openblas and lapacke (Debian), or openblas alone where it carries
 * LAPACKE itself and ships no lapacke.pc (Homebrew's OpenBLAS has lapacke.h beside cblas.h).
 */
function modules() {
  if (pkgConfigHas(['openblas', 'lapacke'])) return ['openblas', 'lapacke'];
  if (pkgConfigHas(['openblas']) && existsSync(join(pkgConfig(['--variable=includedir', 'openblas']), 'lapacke.h'))) return ['openblas'];
  return notFound();
}

/** The static archive `name` in the library directory of pkg-config module `module`. */
function archiveOf(module, name) {
  const path = join(pkgConfig(['--variable=libdir', module]), name);
  return existsSync(path) ? path : undefined;
}

if (kind === '--sources') {
  // Paths relative to binding.gyp.
  process.stdout.write(staticBlas ? 'native/prebuild/fortran_runtime.cpp\n' : '\n');
} else if (kind === '--cflags') {
  process.stdout.write(pkgConfig(['--cflags', ...modules()]) + '\n');
} else if (!staticBlas) {
  process.stdout.write(pkgConfig(['--libs', ...modules()]) + '\n');
} else {
  const archives = {
    'liblapacke.a': archiveOf('lapacke', 'liblapacke.a'),
    'libopenblas.a': archiveOf('openblas', 'libopenblas.a'),
  };
  const missing = Object.keys(archives).filter((k) => archives[k] === undefined);
  if (missing.length > 0) {
    fail([
      `the static libraries ${missing.join(', ')} needed for a self-contained prebuild were not found.`,
      'Debian/Ubuntu: apt-get install -y libopenblas-dev liblapacke-dev pkg-config',
    ]);
  }
  const group = ['liblapacke.a', 'libopenblas.a'].map((k) => archives[k]);
  process.stdout.write(['-Wl,--exclude-libs,ALL', '-Wl,--start-group', ...group, '-Wl,--end-group', '-lm', '-lpthread'].join(' ') + '\n');
}
