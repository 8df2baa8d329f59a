#!/usr/bin/env node
// Prints the compiler or linker flags for the system OpenBLAS + LAPACKE (used by binding.gyp).
// When pkg-config cannot find them, fails with one message that names the Debian packages.
'use strict';
const { execFileSync } = require('node:child_process');
const kind = process.argv[2] === '--libs' ? '--libs' : '--cflags';
try {
  const out = execFileSync('pkg-config', [kind, 'openblas', 'lapacke'], { stdio: ['ignore', 'pipe', 'pipe'] });
  process.stdout.write(out.toString().trim() + '\n');
} catch {
  process.stderr.write(
    '\nnsa-flow: the system OpenBLAS and LAPACKE development files were not found (pkg-config openblas lapacke).\n' +
      'Possible solutions:\n' +
      '  - Debian/Ubuntu: apt-get install -y libopenblas-dev liblapacke-dev pkg-config\n' +
      '  - then run npm ci (or npm rebuild nsa-flow) again.\n\n',
  );
  process.exit(1);
}
