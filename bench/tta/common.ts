// Time to accuracy (npm run bench:tta): the measurement loop, the peer runners and the table printer
// that every section of bench/time-to-accuracy.ts shares.
//
// SECTIONS. bench/time-to-accuracy.ts imports every bench/tta/*.ts except this file, in name order,
// and calls its `run(ctx)`. A section is a module exporting
//
//   export const title: string;                          // optional: printed above its tables
//   export async function run(ctx: TtaContext): Promise<void>;
//
// (A section may also run alone, `npx tsx bench/tta/<name>.ts`, by calling run() when it is the main
// module; it may ignore ctx and print its own tables, as stratified-nmf.ts and stratified-ntf.ts do.)
//
// For each problem (one synthetic and one real data set per method) a section builds its curves —
// `Curve`: {label, points: [{seconds, error}]} where error is the relative error ‖A − model‖/‖A‖ of the
// iterate reached after `seconds` of wall time inside the solver — with `traceCurve` (our solvers: one
// run with the loss recorded every iteration; the trace's timestamps are the solver's own clock) or
// `peerCurves` (scikit-learn / RcppML on the same matrix, when installed), then calls
// `ctx.report(problemName, curves)`, which prints the time to each accuracy level, the error reached
// in fixed times, and the ratios of our best solver to each peer. Sections never assert times.
//
// ACCURACY LEVELS. best = the lowest error any curve of the problem reaches; level δ is best·(1 + δ)
// for δ in LEVELS (the level is 1 %). A curve's time to a level is the first time its error
// is at most that level (∞ when it never gets there within its run).
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fmt } from '../common.js';

export interface TracePoint {
  seconds: number;
  error: number;
}

export interface Curve {
  label: string;
  points: TracePoint[];
  /** A peer library (scikit-learn, RcppML): the ratio table compares our solvers with it. */
  peer?: boolean;
  /** Our solver at its default settings: the ratio table has a row of it against each peer. */
  isDefault?: boolean;
}

/** Relative-error excesses over the best error that the tables report (0.01: within 1 % of the best). */
export const LEVELS = [0.5, 0.1, 0.05, 0.01] as const;

export interface TtaContext {
  /** Shorter runs (--quick): fewer iterations; numbers are then only indicative. */
  quick: boolean;
  /**
   * The clock of whole-call fits (ours with wholeCallCurve, the peers'): 'wall' (default) or 'cpu'
   * (--cpu: the process's CPU time, every side single-threaded; steadier on a loaded machine).
   */
  clock: 'wall' | 'cpu';
  /** Whole-call fits of each iteration count are repeated this often (--repeats N) and the median time kept. */
  repeats: number;
  /** The peer programs found on this machine (undefined: not installed; the report says so once). */
  peers: Peers;
  /** A fresh directory for matrices handed to peers (removed at exit). */
  tmpDir: string;
  report(problem: string, curves: Curve[]): void;
}

/** A curve from a solver's trace: timeMs (since the solve started) and the normalized loss. */
export function traceCurve(label: string, traces: { timeMs: ArrayLike<number>; normalizedLoss: ArrayLike<number> }): Curve {
  return { label, points: Array.from(traces.timeMs, (t, k) => ({ seconds: t / 1000, error: traces.normalizedLoss[k]! })) };
}

/** The earliest time at which the curve is at or below `level` (a peer's points are separate fits,
 * whose times need not increase with their iterations on a busy machine: the earliest one counts). */
export function timeToReach(c: Curve, level: number): number {
  let t = Infinity;
  for (const p of c.points) if (p.error <= level) t = Math.min(t, p.seconds);
  return t;
}

/** The lowest error the curve reached within `seconds` (∞ when it has no point that early). */
export function errorWithin(c: Curve, seconds: number): number {
  let best = Infinity;
  for (const p of c.points) if (p.seconds <= seconds) best = Math.min(best, p.error);
  return best;
}

function bestError(c: Curve): number {
  return Math.min(...c.points.map((p) => p.error));
}

function pad(s: string, n: number): string {
  return s.length >= n ? s : s + ' '.repeat(n - s.length);
}

function time(s: number): string {
  return Number.isFinite(s) ? `${fmt(s, 3)} s` : '—';
}

/** Prints the time-to-accuracy table, the error-in-fixed-time table and the ratio table of one problem. */
export function printReport(problem: string, curves: Curve[]): void {
  const best = Math.min(...curves.map(bestError));
  const width = Math.max(...curves.map((c) => c.label.length), 10) + 2;
  console.log(`\n## ${problem}`);
  console.log(`best relative error reached by any solver: ${fmt(best, 6)}`);
  console.log(`time to reach best·(1 + δ):`);
  console.log(pad('solver', width) + LEVELS.map((d) => pad(`δ = ${d * 100} %`, 12)).join('') + 'final error (time)');
  for (const c of curves) {
    const last = c.points[c.points.length - 1]!;
    console.log(
      pad(c.label, width) +
        LEVELS.map((d) => pad(time(timeToReach(c, best * (1 + d))), 12)).join('') +
        `${fmt(bestError(c), 6)} (${time(last.seconds)})`,
    );
  }
  // Fixed times: fractions of the time the fastest curve needs to reach the 1 % level.
  const reference = Math.min(...curves.map((c) => timeToReach(c, best * 1.01)));
  if (Number.isFinite(reference)) {
    const budgets = [0.25, 0.5, 1, 2].map((f) => f * reference);
    console.log(`error reached within a fixed time (multiples of the fastest time to the 1 % level, ${time(reference)}):`);
    console.log(pad('solver', width) + budgets.map((b) => pad(time(b), 12)).join(''));
    for (const c of curves) console.log(pad(c.label, width) + budgets.map((b) => pad(fmt(errorWithin(c, b), 5), 12)).join(''));
  }
  const ours = curves.filter((c) => !c.peer);
  const peers = curves.filter((c) => c.peer);
  if (peers.length === 0 || ours.length === 0) return;
  // Our default solver, and our fastest solver per level, against each peer.
  console.log(`ratios, our time / the peer's time to the same level (< 1: we are faster; 'peer never': only we reach it):`);
  const rowWidth = width + 16;
  console.log(pad('', rowWidth) + LEVELS.map((d) => pad(`δ = ${d * 100} %`, 12)).join(''));
  const defaults = ours.filter((c) => c.isDefault);
  const rows: [string, Curve[]][] = [...(defaults.length ? [['default', defaults] as [string, Curve[]]] : []), ['fastest of ours', ours]];
  for (const p of peers) {
    for (const [which, mine] of rows) {
      const cells = LEVELS.map((d) => {
        const level = best * (1 + d);
        const t = Math.min(...mine.map((c) => timeToReach(c, level)));
        const theirs = timeToReach(p, level);
        if (!Number.isFinite(theirs)) return Number.isFinite(t) ? 'peer never' : '—';
        return Number.isFinite(t) ? fmt(t / theirs, 3) : 'we never';
      });
      console.log(pad(`${which} / ${p.label}`, rowWidth) + cells.map((s) => pad(s, 12)).join(''));
    }
  }
}

// ---- peers -----------------------------------------------------------------------------------------

export interface Peers {
  /** A python3 that imports sklearn and numpy. */
  python?: string;
  /** Rscript with RcppML. */
  rscript?: string;
}

const peerEnv = { ...process.env, OMP_NUM_THREADS: '1', OPENBLAS_NUM_THREADS: '1', MKL_NUM_THREADS: '1' };

function works(cmd: string, args: string[]): boolean {
  try {
    execFileSync(cmd, args, { stdio: 'ignore', env: peerEnv, timeout: 60000 });
    return true;
  } catch {
    return false;
  }
}

/**
 * Finds the peers: NSA_FLOW_PYTHON or python3 (then the system's /usr/bin/python3, where Debian's
 * python3-sklearn lives when another python3 comes first on PATH), and Rscript with RcppML.
 */
export function findPeers(): Peers {
  const peers: Peers = {};
  const pythons = [process.env.NSA_FLOW_PYTHON, 'python3', '/usr/bin/python3'].filter((p): p is string => !!p);
  peers.python = pythons.find((p) => works(p, ['-c', 'import sklearn, numpy']));
  if (works('Rscript', ['-e', 'suppressMessages(library(RcppML))'])) peers.rscript = 'Rscript';
  return peers;
}

export function newContext(quick: boolean, clock: 'wall' | 'cpu' = 'wall', repeats = 1): TtaContext {
  const tmpDir = mkdtempSync(join(tmpdir(), 'nsa-flow-tta-'));
  process.on('exit', () => rmSync(tmpDir, { recursive: true, force: true }));
  return { quick, clock, repeats, peers: findPeers(), tmpDir, report: printReport };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
}

/** Seconds on ctx's clock since `since` (a reading of this function with no argument). */
function clockSeconds(ctx: TtaContext, since = 0): number {
  if (ctx.clock === 'cpu') {
    const u = process.cpuUsage();
    return (u.user + u.system) / 1e6 - since;
  }
  return performance.now() / 1000 - since;
}

/**
 * Our solver timed exactly as the peers are: fitted from scratch at each iteration count of the
 * peers' schedule, each fit timed around the whole call (option checks, copying the data, the
 * initialization, the iterations, the final loss and certificate, building the result), the median
 * of ctx.repeats fits; `fit(k)` runs k iterations and returns the relative error it reached. The
 * schedule ends at maxIterations or after a fit longer than budgetSeconds.
 */
export function wholeCallCurve(ctx: TtaContext, label: string, maxIterations: number, fit: (iterations: number) => number, budgetSeconds = Infinity): Curve {
  const points: TracePoint[] = [];
  for (const k of schedule(maxIterations)) {
    const times: number[] = [];
    let error = NaN;
    for (let rep = 0; rep < ctx.repeats; rep++) {
      const t0 = clockSeconds(ctx);
      error = fit(k);
      times.push(clockSeconds(ctx, t0));
    }
    points.push({ seconds: median(times), error });
    if (median(times) > budgetSeconds) break;
  }
  return { label, points };
}

/** Iteration counts at which a peer is fitted from scratch (each fit timed alone; the seed fixes the path). */
export function schedule(maxIterations: number): number[] {
  const out: number[] = [];
  for (let k = 1; k < maxIterations; k = Math.max(k + 1, Math.round(k * 1.4))) out.push(k);
  out.push(maxIterations);
  return out;
}

const sklearnScript = `
import sys, time, json, numpy as np
from sklearn.decomposition import NMF
import warnings; warnings.filterwarnings('ignore')
path, rows, cols, rank = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
its = [int(x) for x in sys.argv[5].split(',')]
budget = float(sys.argv[6])
clock = time.process_time if sys.argv[7] == 'cpu' else time.perf_counter
repeats = int(sys.argv[8])
A = np.fromfile(path, dtype='<f8').reshape(rows, cols)
norm = np.linalg.norm(A)
out = []
for k in its:
    ts = []
    for rep in range(repeats):
        model = NMF(n_components=rank, solver='cd', init='random', random_state=0, max_iter=k, tol=0)
        t0 = clock(); W = model.fit_transform(A); ts.append(clock() - t0)
    t = float(np.median(ts))
    out.append([t, float(np.linalg.norm(A - W @ model.components_) / norm)])
    if t > budget: break
print(json.dumps(out))
`;

const rcppmlScript = `
args <- commandArgs(trailingOnly = TRUE)
suppressMessages(library(RcppML))
setRcppMLthreads(1)
rows <- as.integer(args[2]); cols <- as.integer(args[3]); rank <- as.integer(args[4])
its <- as.integer(strsplit(args[5], ",")[[1]]); budget <- as.numeric(args[6])
cpu <- args[7] == "cpu"; repeats <- as.integer(args[8])
clock <- function() { p <- proc.time(); if (cpu) p[["user.self"]] + p[["sys.self"]] else p[["elapsed"]] }
con <- file(args[1], "rb"); v <- readBin(con, "double", rows * cols, size = 8, endian = "little"); close(con)
A <- matrix(v, nrow = rows, ncol = cols, byrow = TRUE)
norm <- sqrt(sum(A^2))
out <- character(0)
for (k in its) {
  ts <- numeric(0)
  for (rep in seq_len(repeats)) {
    t0 <- clock()
    m <- RcppML::nmf(A, rank, tol = 1e-300, maxit = k, verbose = FALSE, seed = 1)
    ts <- c(ts, clock() - t0)
  }
  t <- median(ts)
  M <- m$w %*% diag(m$d, rank) %*% m$h
  out <- c(out, sprintf("[%.6f,%.17g]", t, sqrt(sum((A - M)^2)) / norm))
  if (t > budget) break
}
cat("[", paste(out, collapse = ","), "]\\n", sep = "")
`;

/**
 * scikit-learn NMF(solver='cd') and RcppML::nmf on the same dense matrix, one thread each, fitted with
 * increasing iteration counts (each fit timed inside the peer process around the whole fit call, its
 * initialization included, data loading and the error computation excluded; on ctx's clock, the
 * median of ctx.repeats fits); a fit longer than `budgetSeconds` ends the schedule. Peers not
 * installed are skipped.
 */
export function peerCurves(
  ctx: TtaContext,
  A: { rows: number; cols: number; data: Float64Array },
  rank: number,
  maxIterations: number,
  budgetSeconds: number,
): Curve[] {
  const file = join(ctx.tmpDir, `A-${A.rows}x${A.cols}.f64`);
  writeFileSync(file, Buffer.from(A.data.buffer, A.data.byteOffset, A.data.byteLength));
  const its = schedule(maxIterations).join(',');
  const args = [file, String(A.rows), String(A.cols), String(rank), its, String(budgetSeconds), ctx.clock, String(ctx.repeats)];
  const curves: Curve[] = [];
  const parse = (label: string, text: string): Curve => ({
    label,
    peer: true,
    points: (JSON.parse(text) as [number, number][]).map(([seconds, error]) => ({ seconds, error })),
  });
  if (ctx.peers.python) {
    const text = execFileSync(ctx.peers.python, ['-c', sklearnScript, ...args], { env: peerEnv, encoding: 'utf8', maxBuffer: 1 << 24 });
    curves.push(parse('sklearn cd', text));
  }
  if (ctx.peers.rscript) {
    const script = join(ctx.tmpDir, 'rcppml.R');
    writeFileSync(script, rcppmlScript);
    const text = execFileSync(ctx.peers.rscript, [script, ...args], { env: peerEnv, encoding: 'utf8', maxBuffer: 1 << 24 });
    curves.push(parse('RcppML', text));
  }
  return curves;
}

/** One line per absent peer, printed once per run. */
export function describePeers(peers: Peers): string[] {
  const lines: string[] = [];
  if (!peers.python) lines.push('skipped scikit-learn: no python3 with sklearn and numpy (Debian: python3-sklearn; or set NSA_FLOW_PYTHON)');
  if (!peers.rscript) lines.push('skipped RcppML: no Rscript with RcppML (Debian: r-cran-rcppml)');
  return lines;
}
