// Running the CLI in tests: in-process through main() (fast, output captured) or as a process
// through the real launcher bin/nsa-flow.mjs (exit codes, signals).
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { main } from '../../lib/cli/main.js';
import { repoRoot } from './shared.js';

export interface Captured {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `nsa-flow <args>` in this process; `tty` makes stderr look like a terminal. */
export async function runMain(args: string[], options: { tty?: boolean; signal?: AbortSignal; cwd?: string } = {}): Promise<Captured> {
  let stdout = '';
  let stderr = '';
  const tty = options.tty ?? false;
  const code = await main(args, {
    stdout: { write: (s: string) => (stdout += s), isTTY: false },
    stderr: Object.assign({ write: (s: string) => (stderr += s), isTTY: tty, columns: 120 }, tty ? { cursorTo: () => true, clearLine: () => true, moveCursor: () => true } : {}),
    signal: options.signal,
    cwd: options.cwd,
  });
  return { code, stdout, stderr };
}

export const tempDir = (tag: string): string => mkdtempSync(join(tmpdir(), `nsa-flow-${tag}-`));

export const launcher = join(repoRoot, 'bin', 'nsa-flow.mjs');
export const stepsHelper = join(repoRoot, 'test', 'helpers', 'cli-steps-method.ts');

/** Starts a process; `script` is the launcher (default) or the steps helper (run through tsx). */
export function startCli(args: string[], options: { script?: string; env?: NodeJS.ProcessEnv } = {}): ChildProcess {
  const script = options.script ?? launcher;
  const nodeArgs = script.endsWith('.ts') ? ['--import', 'tsx', script] : [script];
  return spawn(process.execPath, [...nodeArgs, ...args], { cwd: repoRoot, env: { ...process.env, ...options.env }, stdio: ['ignore', 'pipe', 'pipe'] });
}

/** Waits for a process started by startCli, collecting its output (killed after timeoutMs). */
export function finished(child: ChildProcess, timeoutMs = 30_000): Promise<Captured> {
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`process did not end within ${timeoutMs} ms; stderr: ${stderr}`));
    }, timeoutMs);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code: code ?? (signal ? 128 : -1), stdout, stderr });
    });
  });
}
