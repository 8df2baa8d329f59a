#!/usr/bin/env node
// The `nsa-flow` command. In a source checkout (lib/cli/main.ts present and tsx installed) it runs
// the TypeScript sources through tsx, so what runs is always what you see; in an installed package
// (only dist/ shipped) it runs the compiled dist/cli/main.js. NSA_FLOW_USE_DIST=1 forces dist/.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const sources = join(root, 'lib', 'cli', 'main.ts');
const compiled = join(root, 'dist', 'cli', 'main.js');

async function load() {
  if (process.env.NSA_FLOW_USE_DIST !== '1' && existsSync(sources)) {
    try {
      const { register } = await import('tsx/esm/api');
      register();
      return await import(pathToFileURL(sources).href);
    } catch (err) {
      if (err?.code !== 'ERR_MODULE_NOT_FOUND' || !existsSync(compiled)) throw err;
    }
  }
  if (!existsSync(compiled)) {
    process.stderr.write('nsa-flow: dist/cli/main.js is missing; run `npm run build:ts` (or install tsx to run from sources)\n');
    process.exit(1);
  }
  return import(pathToFileURL(compiled).href);
}

const { runCli } = await load();
await runCli(process.argv.slice(2));
