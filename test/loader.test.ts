// Loading the addon: a missing system BLAS/LAPACK library gives one actionable message that names the
// Debian packages, not a raw dlopen error; so does a source build without the development files.
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { describe, expect, it } from 'vitest';

import { explainLoadError } from '../lib/native.js';
import { repoRoot } from './helpers/shared.js';

describe('load errors', () => {
  it('maps a missing libopenblas to the Debian packages', () => {
    const raw = Object.assign(
      new Error('/x/build/Release/nsa_flow.node: libopenblas.so.0: cannot open shared object file: No such file or directory'),
      { code: 'ERR_DLOPEN_FAILED' },
    );
    const e = explainLoadError(raw);
    expect(e.message).toMatch(/needs the system library libopenblas\.so\.0, which is not installed/);
    expect(e.message).toMatch(/apt-get install -y libopenblas0 liblapacke/);
    expect(e.message).toMatch(/libopenblas-dev liblapacke-dev/);
    expect(e.cause).toBe(raw);
  });

  it('maps a missing liblapacke the same way, and explains a missing build', () => {
    const e = explainLoadError(new Error('liblapacke.so.3: cannot open shared object file: No such file or directory'));
    expect(e.message).toMatch(/liblapacke\.so\.3/);
    const nb = explainLoadError(new Error('No native build was found for platform=linux arch=x64 runtime=node abi=115 uv=1 libc=glibc node=20.20.2'));
    expect(nb.message).toMatch(/no compiled addon was found/);
    expect(nb.message).toMatch(/npm rebuild nsa-flow/);
  });

  it('leaves other errors alone', () => {
    const other = new Error('something else');
    expect(explainLoadError(other)).toBe(other);
  });

  it('a real dlopen failure (the addon with its libopenblas dependency renamed) gets the explained message', () => {
    // Copy the built addon and rename its DT_NEEDED entry libopenblas.so.0 → libopenblas.so.9 (same
    // length, so the ELF stays valid): loading it then fails exactly as on a machine without OpenBLAS.
    const dir = mkdtempSync(join(tmpdir(), 'nsa-flow-loader-'));
    try {
      const bytes = readFileSync(join(repoRoot, 'build', 'Release', 'nsa_flow.node'));
      const from = Buffer.from('libopenblas.so.0\0');
      const at = bytes.indexOf(from);
      expect(at).toBeGreaterThan(0);
      Buffer.from('libopenblas.so.9\0').copy(bytes, at);
      const addon = join(dir, 'nsa_flow.node');
      writeFileSync(addon, bytes);
      copyFileSync(join(repoRoot, 'package.json'), join(dir, 'package.json'));
      const script = `
        const { explainLoadError } = await import(${JSON.stringify(join(repoRoot, 'lib', 'native.ts'))});
        try { process.dlopen({ exports: {} }, ${JSON.stringify(addon)}); console.log('loaded?!'); }
        catch (err) { console.log(explainLoadError(err).message); }
      `;
      const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
        cwd: repoRoot,
        encoding: 'utf8',
      });
      expect(r.stdout).toMatch(/needs the system library libopenblas\.so\.9, which is not installed/);
      expect(r.stdout).toMatch(/apt-get install -y libopenblas0 liblapacke/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it.each([
    ['a source build', {}],
    ['the self-contained prebuild', { NSA_FLOW_STATIC_BLAS: '1' }],
  ])('%s without the OpenBLAS/LAPACKE development files stops with one message naming the packages', (_what, extra) => {
    // pkg-config searching only an empty folder finds neither openblas nor lapacke.
    const dir = mkdtempSync(join(tmpdir(), 'nsa-flow-pc-'));
    try {
      mkdirSync(join(dir, 'pc'));
      for (const kind of ['--cflags', '--libs']) {
        const r = spawnSync(process.execPath, [join(repoRoot, 'scripts', 'blas-flags.cjs'), kind], {
          encoding: 'utf8',
          env: { ...process.env, ...extra, PKG_CONFIG_LIBDIR: join(dir, 'pc'), PKG_CONFIG_PATH: '' },
        });
        expect(r.status).toBe(1);
        expect(r.stdout).toBe('');
        expect(r.stderr).toMatch(/nsa-flow: the system OpenBLAS and LAPACKE development files were not found/);
        expect(r.stderr).toMatch(/apt-get install -y libopenblas-dev liblapacke-dev pkg-config/);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('NSA_FLOW_ADDON loads the named build instead of node-gyp-build\'s choice (the sanitizer run uses it)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'nsa-flow-override-'));
    try {
      const addon = join(dir, 'other.node');
      copyFileSync(join(repoRoot, 'build', 'Release', 'nsa_flow.node'), addon);
      const script = `
        const { native } = await import(${JSON.stringify(join(repoRoot, 'lib', 'native.ts'))});
        const d = native().defect(new Float64Array([1, 0, 0, 1, 0, 0]), 3, 2);
        const maps = (await import('node:fs')).readFileSync('/proc/self/maps', 'utf8');
        console.log(JSON.stringify({ d, mapped: maps.includes(${JSON.stringify(addon)}) }));
      `;
      const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
        cwd: repoRoot,
        encoding: 'utf8',
        env: { ...process.env, NSA_FLOW_ADDON: addon },
      });
      expect(r.status, r.stderr).toBe(0);
      // Orthonormal columns: defect 0, computed by the copy (mapped into the process).
      expect(JSON.parse(r.stdout)).toEqual({ d: 0, mapped: true });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
