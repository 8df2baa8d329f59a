// Generated bad calls of every raw function (in a child process, so a crash is an exit signal): each
// call returns, or throws a TypeError/RangeError whose message names the argument ("Expected … for
// <name> but received …") or the memory it would need ("Not enough memory for …"), never a V8
// internal message such as "Cannot read properties of undefined" or "Invalid typed array length".
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';

import { repoRoot } from './helpers/shared.js';

const callsPerFunction = 300;

describe('generated bad calls of the raw binding', () => {
  it(`${callsPerFunction} argument lists per function: results or named TypeErrors/RangeErrors, no crash`, () => {
    const code = `
const b = require('node-gyp-build')(process.cwd());
b.setMemoryLimit(256 * 2 ** 20);  // generated dimensions must not allocate gigabytes
const pool = [undefined, null, NaN, -1, 0, 1, 2, 3, 2 ** 31, 1e300, Infinity, 'x', 'polar', 'mu', {}, [], [2, 2], true,
  new Float32Array(4), new Float64Array(4), Float64Array.of(1, 2, 3, 4), new Int32Array(3), Symbol('s'), () => 1,
  new Float64Array(new SharedArrayBuffer(32)), { rows: 2, cols: 2, data: Float64Array.of(1, 2, 3, 4) }];
const fns = [];
for (const [k, v] of Object.entries(b)) if (typeof v === 'function' && k !== 'setMemoryLimit' && k !== 'setBlasThreads') fns.push([k, v]);
for (const [k, v] of Object.entries(b.bench)) fns.push(['bench.' + k, v]);
let s = 12345;
const rnd = (n) => { s = (s * 1103515245 + 12345) >>> 0; return s % n; };
const counts = { calls: 0, ok: 0, named: 0 };
const unnamed = [];
for (const [name, f] of fns) {
  for (let i = 0; i < ${callsPerFunction}; i++) {
    const args = Array.from({ length: rnd(11) }, () => pool[rnd(pool.length)]);
    counts.calls++;
    try {
      const r = f(...args);
      if (r && typeof r.then === 'function') r.catch(() => {});
      counts.ok++;
    } catch (e) {
      const cls = e && e.constructor ? e.constructor.name : typeof e;
      const msg = String(e && e.message);
      // (the cancel token's message is the async runtime's: it names what is expected)
      if ((cls === 'TypeError' || cls === 'RangeError') && /^(Expected .* (for|in) \\S|Not enough memory for |Expected a cancel token)/.test(msg)) counts.named++;
      else unnamed.push([name, cls, msg]);
    }
  }
}
process.stdout.write(JSON.stringify({ functions: fns.length, counts, unnamed: unnamed.slice(0, 10) }));`;
    const r = spawnSync(process.execPath, ['-e', code], { cwd: repoRoot, encoding: 'utf8', timeout: 120_000 });
    expect(r.signal, r.stderr).toBeNull();
    expect(r.status, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as { functions: number; counts: { calls: number; ok: number; named: number }; unnamed: unknown[] };
    expect(out.unnamed).toEqual([]);
    // every raw function but the two setters (42 today, bench’s three included) was called
    expect(out.functions).toBeGreaterThanOrEqual(40);
    expect(out.counts.calls).toBe(out.functions * callsPerFunction);
    expect(out.counts.ok + out.counts.named).toBe(out.counts.calls);
  });
});
