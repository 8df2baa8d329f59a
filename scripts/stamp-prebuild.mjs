#!/usr/bin/env node
// Writes prebuilds/SOURCES.sha256: a hash of every file the addon is compiled from. The test suite
// compares it with the sources, so a committed prebuild can never silently lag behind native/.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { nativeSourcesHash, repoRoot } from './sources-hash.mjs';

writeFileSync(join(repoRoot, 'prebuilds', 'SOURCES.sha256'), `${nativeSourcesHash()}\n`);
console.log(`prebuilds/SOURCES.sha256 = ${nativeSourcesHash()}`);
