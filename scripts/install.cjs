#!/usr/bin/env node
// The package's install script. node-gyp-build keeps the prebuild when it loads and otherwise compiles
// the addon from source with node-gyp (against the system OpenBLAS/LAPACKE: scripts/blas-flags.cjs).
// A project .npmrc is never read for a dependency, so the Node headers for that source build are
// located here instead (scripts/nodedir.cjs): the build needs no network and no npm configuration.
'use strict';
const { localNodedir } = require('./nodedir.cjs');

if (!process.env.npm_config_nodedir) {
  const nodedir = localNodedir();
  if (nodedir !== undefined) process.env.npm_config_nodedir = nodedir;
}
require('node-gyp-build/bin.js');
