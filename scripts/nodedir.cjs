// Where the running Node keeps its C headers, for node-gyp. node-gyp downloads the headers unless
// told where they are, which fails offline; Node installed by a package manager or from the official
// tarball keeps them in <prefix>/include/node. Returns that prefix when its headers are those of the
// running Node, else undefined (node-gyp then downloads them as usual).
'use strict';
const { existsSync, readFileSync } = require('node:fs');
const { dirname, join } = require('node:path');

function localNodedir() {
  const prefix = dirname(dirname(process.execPath));
  const versionHeader = join(prefix, 'include', 'node', 'node_version.h');
  if (!existsSync(versionHeader) || !existsSync(join(prefix, 'include', 'node', 'node_api.h'))) return undefined;
  const text = readFileSync(versionHeader, 'utf8');
  const part = (name) => (new RegExp(`#define NODE_${name}_VERSION (\\d+)`).exec(text) || [])[1];
  const headers = `${part('MAJOR')}.${part('MINOR')}.${part('PATCH')}`;
  return headers === process.versions.node ? prefix : undefined;
}

module.exports = { localNodedir };
