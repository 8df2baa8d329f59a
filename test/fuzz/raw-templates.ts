// Raw-binding fuzzing by mutation: random garbage stops at a raw function's first argument check, so
// the raw suite first records the calls that the public API makes to the addon on small valid
// problems (templates, one or more per raw function), then replays each with one or two arguments or
// option fields replaced by hostile values: wrong typed-array kinds, NaN, huge sizes, detached or
// shared buffers, getters that detach a buffer the call already read, Proxies.
import fc from 'fast-check';

import { pool, poolSize } from './values.js';

type Api = Record<string, (...args: any[]) => any>;
export interface Template {
  name: string;
  args: unknown[];
}

const m = (rows: number, cols: number, f: (i: number) => number): { rows: number; cols: number; data: Float64Array } => ({
  rows,
  cols,
  data: Float64Array.from({ length: rows * cols }, (_, i) => f(i)),
});
const pos = (i: number): number => 0.1 + ((i * 7919) % 97) / 97;
const t = (shape: number[]): { shape: number[]; data: Float64Array } => ({ shape, data: Float64Array.from({ length: shape.reduce((a, b) => a * b, 1) }, (_, i) => pos(i)) });

/** Small valid calls of the public API, each reaching one or more raw functions. */
export function seedCalls(api: Api): (() => unknown)[] {
  const Y = m(8, 3, pos);
  const X = m(8, 3, (i) => pos(i + 5));
  const A = m(6, 5, pos);
  const csr = api.toCsr ? api.toCsr(m(4, 5, (i) => (i % 3 === 0 ? pos(i) : 0))) : undefined;
  return [
    () => api.invariantOrthogonalityDefect(Y),
    () => api.basicOrthogonality(Y),
    () => api.invariantOrthogonalityDefectGradient(Y),
    () => api.invariantOrthogonalityDefectBatch(t([2, 4, 2])),
    () => api.retract(Y, { type: 'polar' }),
    () => api.retract(Y, { type: 'softPolar', w: 0.5 }),
    () => api.retractAsync(Y, { type: 'newtonSchulz' }),
    () => api.retractBatch(t([2, 4, 2]), { type: 'cayley' }),
    () => api.retractBatchAsync(t([2, 4, 2]), { type: 'polar' }),
    () => api.inverseSqrt(m(2, 2, (i) => (i === 0 || i === 3 ? 2 : 0.5))),
    () => api.procrustes(Y, X),
    () => api.qr(Y),
    () => api.svd(Y),
    () => api.applyNonNegativity(m(3, 2, (i) => i - 2), 'hard'),
    () => api.energy(Y, X, {}),
    () => api.energyGradient(Y, X, {}),
    () => api.retractVjp(Y, X, {}),
    () => api.nsaFlowSync(Y, { X0: X, maxIterations: 3 }),
    () => api.nsaFlowSync(Y, { X0: X, optimizer: 'lbfgsb', maxIterations: 3 }),
    () => api.nsaFlowSync(Y, { X0: X, optimizer: 'asgd', maxIterations: 3 }),
    () => api.nsaFlowFitSync(m(6, 8, pos), 2, { maxIterations: 3 }),
    () => api.nsaFlowFitSync(m(6, 8, (i) => pos(i) - 0.5), 2, { mode: 'signed', maxIterations: 3 }),
    () => api.nsaFlowFit(m(6, 8, pos), 2, { mode: 'anchored', maxIterations: 3 }),
    () => api.nsaFlow(Y, { X0: X, maxIterations: 3 }),
    () => api.estimateLearningRate(Y, X, { strategy: 'armijo' }),
    () => api.optimizerSteps('adam', Y, [X, X], 0.01),
    () => api.nsaFlowExplicitSync(Y, { maxIterations: 3 }),
    () => api.nsaFlowExplicit(Y, { maxIterations: 3 }),
    () => api.nmfSync(A, 2, { maxIterations: 3, seed: 1 }),
    () => api.nmf(A, 2, { maxIterations: 3, seed: 1 }),
    () => (csr ? api.nmfSync(csr, 2, { maxIterations: 3, seed: 1 }) : undefined),
    // Missing values: dense weights (raw `weights`) and CSR's absent entries (raw `missing`).
    () => api.nmfSync(A, 2, { maxIterations: 3, seed: 1, mask: Uint8Array.from(A.data, (_, k) => (k % 3 === 0 ? 1 : 0)) }),
    () => api.nmf(A, 2, { maxIterations: 3, seed: 1, solver: 'mu', mask: Uint8Array.from(A.data, (_, k) => (k % 4 === 1 ? 1 : 0)) }),
    () => (csr ? api.nmfSync(csr, 2, { maxIterations: 3, seed: 1, missing: 'absent' }) : undefined),
    // A mask on CSR data: its list (raw `maskEntries`).
    () => (csr ? api.nmfSync(csr, 2, { maxIterations: 3, seed: 1, mask: { rows: [0, 1], cols: [1, 0] } }) : undefined),
    () => (csr ? api.stratifiedNmfSync([csr, A], 2, { maxIterations: 3, seed: 1, mask: [{ rows: [0], cols: [2] }, null] }) : undefined),
    () => api.stratifiedNmfSync([A, m(4, 5, pos)], 2, { maxIterations: 3, seed: 1, mask: [Uint8Array.from(A.data, (_, k) => (k % 3 === 0 ? 1 : 0)), null] }),
    () => api.ntfSync(t([4, 3, 2]), 2, { maxIterations: 3, seed: 1, mask: Uint8Array.from({ length: 24 }, (_, k) => (k % 5 === 0 ? 1 : 0)) }),
    () => api.stratifiedNtfSync([t([3, 3, 2]), t([2, 3, 2])], 2, { strataRank: 1, maxIterations: 3, seed: 1, mask: [Uint8Array.from({ length: 18 }, (_, k) => (k % 4 === 0 ? 1 : 0)), null] }),
    () => api.stratifiedNmfSync([A, m(4, 5, pos)], 2, { maxIterations: 3, seed: 1 }),
    // L1/L2 penalties (docs/penalties.md): raw l1*/l2* fields.
    () => api.nmfSync(A, 2, { maxIterations: 3, seed: 1, l1W: 0.5, l2H: 0.25 }),
    () => api.stratifiedNmfSync([A, m(4, 5, pos)], 2, { maxIterations: 3, seed: 1, l1V: 0.5, l2W: 0.25, l1H: 0.1 }),
    () => api.stratifiedNmf([A, m(4, 5, pos)], 2, { maxIterations: 3, seed: 1 }),
    // Per-stratum ranks (a list: rank 0 for the second stratum).
    () => api.stratifiedNmfSync([A, m(4, 5, pos)], [2, 0], { maxIterations: 3, seed: 1 }),
    () => {
      const r = api.stratifiedNmfSync([A, m(4, 5, pos)], 2, { maxIterations: 2, seed: 1 });
      return api.stratifiedNmfLoss([A, m(4, 5, pos)], { V: r.V, W: r.W, H: r.H });
    },
    () => api.ntfSync(t([4, 3, 2]), 2, { maxIterations: 3, seed: 1 }),
    () => api.ntf(t([4, 3, 2]), 2, { maxIterations: 3, seed: 1 }),
    () => api.stratifiedNtfSync([t([3, 3, 2]), t([2, 3, 2])], 2, { strataRank: 1, maxIterations: 3, seed: 1 }),
    () => api.stratifiedNtfSync([t([3, 3, 2]), t([2, 3, 2])], 2, { strataRank: 1, maxIterations: 3, seed: 1, solver: 'hals' }),
    () => api.stratifiedNtf([t([3, 3, 2]), t([2, 3, 2])], 2, { strataRank: 1, maxIterations: 3, seed: 1 }),
    () => {
      const strata = [t([3, 3, 2]), t([2, 3, 2])];
      const r = api.stratifiedNtfSync(strata, 2, { strataRank: 1, maxIterations: 2, seed: 1 });
      return api.stratifiedNtfLoss(strata, r, { rank: 2, strataRank: 1 });
    },
    () => api.unfold(t([2, 3, 4]), 1),
    () => api.fold(m(3, 8, pos), 1, [2, 3, 4]),
    () => api.khatriRao([m(3, 2, pos), m(4, 2, pos)]),
    () => api.mttkrp(t([2, 3, 4]), [m(2, 2, pos), m(3, 2, pos), m(4, 2, pos)], 0),
    () => api.cpReconstruct([m(2, 2, pos), m(3, 2, pos), m(4, 2, pos)]),
    () => api.tensorNorm(t([2, 3, 4])),
    () => api.nsaFlowPathSync(Y, { ws: [0.2, 0.8], maxIterations: 3 }),
    () => api.nsaEnergy(Y, { X0: X }),
    () => api.nsaEnergy(Y, { mode: 'data', X: A.cols === 8 ? A : m(6, 8, pos) }),
    () => api.nsaEnergy(m(8, 4, pos), { mode: 'signed', X: m(6, 8, pos) }),
    () => api.nsaEnergy(Y, { mode: 'anchored', anchor: 'target', X0: X }),
    // weights / mask of the fidelity: the certified bindings' options.weights
    () => api.nsaEnergy(Y, { mode: 'data', X: m(6, 8, pos), mask: Uint8Array.from({ length: 48 }, (_, k) => (k % 5 === 0 ? 1 : 0)) }),
    () => api.nsaFlowSync(Y, { X0: X, optimizer: 'spg', maxIterations: 3, weights: m(8, 3, (i) => (i % 4 === 0 ? 0 : pos(i))) }),
    () => api.nsaFlowFitSync(m(6, 8, pos), 2, { maxIterations: 3, mask: Uint8Array.from({ length: 48 }, (_, k) => (k % 7 === 0 ? 1 : 0)) }),
  ];
}

/** Records the raw calls `run` makes, by wrapping every function of the binding object. */
export async function recordTemplates(raw: Record<string, unknown>, seeds: (() => unknown)[]): Promise<{ templates: Template[]; seedFailures: number; seedErrors: string[] }> {
  const templates: Template[] = [];
  const originals = new Map<string, Function>();
  for (const [name, fn] of Object.entries(raw)) {
    if (typeof fn !== 'function' || name === 'createCancelToken' || name === 'cancel') continue;
    originals.set(name, fn);
    raw[name] = function (this: unknown, ...args: unknown[]) {
      templates.push({ name, args: args.map(snapshot) });
      return fn.apply(this, args);
    };
  }
  let seedFailures = 0;
  const seedErrors: string[] = [];
  try {
    for (const [i, seed] of seeds.entries()) {
      try {
        await seed();
      } catch (err) {
        seedFailures++;
        seedErrors.push(`seed ${i}: ${err instanceof Error ? err.message : String(err)}`);
      }
    }
  } finally {
    for (const [name, fn] of originals) raw[name] = fn;
  }
  // The reference kernels of bench/ are not reached through the API: their templates are written here.
  templates.push(
    { name: 'bench.timeGemm', args: [8, 8, 8, 1] },
    { name: 'bench.timeSyrk', args: [8, 4, 1] },
    { name: 'bench.timeCopy', args: [64, 1] },
    { name: 'setBlasThreads', args: [1] },
  );
  // One template per (function, argument count) is enough: mutation supplies the variety.
  const seen = new Set<string>();
  return {
    templates: templates.filter((tp) => {
      const key = `${tp.name}/${tp.args.length}`;
      if (seen.has(key)) return false;
      seen.add(key);
      return true;
    }),
    seedFailures,
    seedErrors,
  };
}

/** A deep copy of plain data (typed arrays, arrays, plain objects); anything else is kept by reference. */
function snapshot(v: unknown): unknown {
  if (ArrayBuffer.isView(v) && !(v instanceof DataView)) return (v as Float64Array).slice();
  if (Array.isArray(v)) return v.map(snapshot);
  if (v !== null && typeof v === 'object' && Object.getPrototypeOf(v) === Object.prototype) {
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, snapshot(x)]));
  }
  return v;
}

/** Where a mutation applies: an argument, or a field of an object argument, or an element of an array argument. */
export interface Mutation {
  arg: number;
  field?: string | number;
  /** Pool index, or a structured change of the value found there. */
  replacement: number | 'nan' | 'huge' | 'negative' | 'zero' | 'float32' | 'int32' | 'shorter' | 'detach' | 'shared' | 'detachingGetter' | 'drop';
}

const structured = ['nan', 'huge', 'negative', 'zero', 'float32', 'int32', 'shorter', 'detach', 'shared', 'detachingGetter', 'drop'] as const;

export function mutationArb(template: Template): fc.Arbitrary<Mutation[]> {
  const one = fc.record({
    arg: fc.nat(Math.max(0, template.args.length - 1)),
    fieldPick: fc.nat(1000),
    useField: fc.boolean(),
    replacement: fc.oneof(fc.nat(poolSize - 1), fc.constantFrom(...structured)),
  });
  return fc.array(one, { minLength: 1, maxLength: 2 }).map((ms) =>
    ms.map(({ arg, fieldPick, useField, replacement }) => {
      const a = template.args[arg];
      let field: string | number | undefined;
      if (useField && Array.isArray(a) && a.length > 0) field = fieldPick % a.length;
      else if (useField && a !== null && typeof a === 'object' && !ArrayBuffer.isView(a)) {
        const keys = Object.keys(a);
        if (keys.length > 0) field = keys[fieldPick % keys.length];
      }
      return { arg, field, replacement };
    }),
  );
}

function changed(value: unknown, how: Mutation['replacement'], victims: ArrayBufferView[]): unknown {
  if (typeof how === 'number') return pool[how]!.make();
  switch (how) {
    case 'nan':
      if (value instanceof Float64Array && value.length > 0) {
        const c = value.slice();
        c[c.length >> 1] = NaN;
        return c;
      }
      return NaN;
    case 'huge':
      return typeof value === 'number' ? 2 ** 31 + 7 : Array.isArray(value) ? value.map(() => 65536) : 1e9;
    case 'negative':
      return typeof value === 'number' ? -value - 1 : value instanceof Int32Array ? Int32Array.from(value, (x) => -x - 1) : -1;
    case 'zero':
      return 0;
    case 'float32':
      return ArrayBuffer.isView(value) ? new Float32Array((value as Float64Array).length) : new Float32Array(4);
    case 'int32':
      return ArrayBuffer.isView(value) ? new Int32Array((value as Float64Array).length) : new Int32Array(4);
    case 'shorter':
      return ArrayBuffer.isView(value) ? (value as Float64Array).slice(0, Math.max(0, (value as Float64Array).length - 1)) : value;
    case 'detach': {
      if (value instanceof Float64Array || value instanceof Int32Array) {
        const c = value.slice();
        structuredClone(c.buffer, { transfer: [c.buffer] });
        return c;
      }
      return value;
    }
    case 'shared': {
      if (value instanceof Float64Array || value instanceof Int32Array) {
        const Ctor = value.constructor as Float64ArrayConstructor;
        const c = new Ctor(new SharedArrayBuffer(value.byteLength));
        c.set(value as Float64Array);
        return c;
      }
      return value;
    }
    case 'detachingGetter': {
      // An object whose every property read first detaches every buffer the call was given.
      const detachAll = (): void => {
        for (const b of victims) if (b.buffer.byteLength > 0 && !(b.buffer instanceof SharedArrayBuffer)) structuredClone(b.buffer, { transfer: [b.buffer] });
      };
      if (value !== null && typeof value === 'object' && !ArrayBuffer.isView(value) && !Array.isArray(value)) {
        const o: Record<string, unknown> = {};
        for (const [k, x] of Object.entries(value)) {
          Object.defineProperty(o, k, { enumerable: true, configurable: true, get: () => (detachAll(), x) });
        }
        return o;
      }
      return new Proxy({}, { get: () => (detachAll(), undefined) });
    }
    case 'drop':
      return undefined;
  }
}

/** The template's arguments, freshly copied, with the mutations applied. */
export function mutate(template: Template, mutations: Mutation[]): unknown[] {
  const args = template.args.map(snapshot);
  const victims: ArrayBufferView[] = [];
  const collect = (v: unknown): void => {
    if (ArrayBuffer.isView(v)) victims.push(v);
    else if (Array.isArray(v)) v.forEach(collect);
    else if (v !== null && typeof v === 'object' && Object.getPrototypeOf(v) === Object.prototype) Object.values(v).forEach(collect);
  };
  args.forEach(collect);
  for (const mu of mutations) {
    const a = args[mu.arg];
    if (mu.field === undefined) args[mu.arg] = changed(a, mu.replacement, victims);
    else if (Array.isArray(a)) a[mu.field as number] = changed(a[mu.field as number], mu.replacement, victims);
    else if (a !== null && typeof a === 'object') {
      const o = a as Record<string, unknown>;
      const key = mu.field as string;
      // An earlier mutation may have made this argument an object of getters (reading one detaches the
      // buffers): replace the field without running its getter, as a data property.
      const own = Object.getOwnPropertyDescriptor(o, key);
      const before = own && 'value' in own ? own.value : own ? undefined : o[key];
      Object.defineProperty(o, key, { value: changed(before, mu.replacement, victims), writable: true, enumerable: true, configurable: true });
    }
  }
  return args;
}

export function describeMutations(template: Template, mutations: Mutation[]): string {
  return mutations
    .map((mu) => `arg ${mu.arg}${mu.field === undefined ? '' : `.${mu.field}`} := ${typeof mu.replacement === 'number' ? pool[mu.replacement]!.label : mu.replacement}`)
    .join('; ');
}
