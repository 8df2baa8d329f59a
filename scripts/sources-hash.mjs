// The hash of everything the prebuild is compiled from (native/**, binding.gyp, the BLAS link flags):
// scripts/make-prebuild.mjs stamps the prebuild with it and rebuilds whenever it changes.
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

export const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..');

function files(dir) {
  return readdirSync(dir)
    .sort()
    .flatMap((name) => {
      const path = join(dir, name);
      return statSync(path).isDirectory() ? files(path) : [path];
    });
}

export function nativeSourcesHash(root = repoRoot) {
  const hash = createHash('sha256');
  for (const file of [...files(join(root, 'native')), join(root, 'binding.gyp'), join(root, 'scripts', 'blas-flags.cjs')]) {
    hash.update(relative(root, file).split('\\').join('/'));
    hash.update('\0');
    hash.update(readFileSync(file));
    hash.update('\0');
  }
  return hash.digest('hex');
}
