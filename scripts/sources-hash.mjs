// The hash of the addon's sources (native/**, binding.gyp), shared by the prebuild stamp and its test.
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

export function nativeSourcesHash() {
  const hash = createHash('sha256');
  for (const file of [...files(join(repoRoot, 'native')), join(repoRoot, 'binding.gyp')]) {
    hash.update(relative(repoRoot, file).split('\\').join('/'));
    hash.update('\0');
    hash.update(readFileSync(file));
    hash.update('\0');
  }
  return hash.digest('hex');
}
