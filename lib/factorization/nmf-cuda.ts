/**
 * nmfSync's device solve (docs/cuda.md): plain Frobenius multiplicative updates on dense data, the
 * iterations, the loss trace and the tolerance rule on the GPU (one loss scalar per recorded iteration
 * crosses). The CPU addon supplies what the device must match exactly: the starting factors (the CPU's
 * own initialization for the seed: a run of 0 iterations) and, at the final factors, the final loss
 * and the KKT certificate (again a run of 0 iterations, which evaluates exactly what the CPU's loop
 * evaluates after its last iteration).
 */
import { callDevice, checkDeviceMemory, type CudaBinding } from '../cuda.js';
import { float64Bytes } from '../memory.js';
import type { StopReason } from '../solver.js';
import type { RawTrace } from './common.js';

/** The raw options of the CPU's nmf binding that the device solve reads (nmf.ts rawOptions). */
interface RawNmf {
  maxIterations: number;
  lossEvery: number;
  tolerance: number;
  epsilon: number;
  init: string;
  W?: Float64Array;
  H?: Float64Array;
}

type RawResult = RawTrace & { W: Float64Array; H: Float64Array };

/** What nmfSync's device path lacks for these options, or undefined when it has it. */
export function nmfUnsupportedOnDevice(o: {
  solver: string;
  loss: string;
  certificateTolerance: number;
  sparse: boolean;
  missing: { weights?: Float64Array; absent: boolean };
  penalties: Record<string, number>;
}): string | undefined {
  if (o.solver !== 'mu') return `solver '${o.solver}' (the device has 'mu')`;
  if (o.loss !== 'frobenius') return `loss '${o.loss}' (the device has 'frobenius')`;
  if (o.sparse) return 'CSR data (the device takes dense A)';
  if (o.missing.weights || o.missing.absent) return 'missing entries or weights';
  if (Object.values(o.penalties).some((x) => x > 0)) return 'a penalty (l1W, l2W, l1H, l2H)';
  if (o.certificateTolerance > 0) return 'certificateTolerance > 0 (the device has the tolerance rule only)';
  return undefined;
}

/**
 * One seed's solve on the device. `cpu` runs the CPU addon's nmf with the given raw options (nmf.ts
 * wraps its errors); its results with maxIterations 0 are the start and the end of the device run.
 */
export function nmfMuOnDevice<Raw extends RawNmf>(
  binding: CudaBinding,
  A: { rows: number; cols: number; data: Float64Array },
  rank: number,
  raw: Raw,
  cpu: (raw: Raw) => RawResult,
  context: string,
): RawResult {
  const [n, m, r] = [A.rows, A.cols, rank];
  // A and, where the expanded loss cancels, WH; W, H and four n×r / m×r update products; r×r Grams.
  checkDeviceMemory(binding, float64Bytes(2 * n * m + 3 * (n + m) * r + 2 * r * r + 1025), context, `NMF of A (${n}×${m}, rank ${r}) on the GPU`);
  const start = cpu({ ...raw, maxIterations: 0 });
  const t0 = performance.now();
  const d = callDevice(context, () => binding.nmfMu(A.data, start.W, start.H, n, m, r, raw.epsilon, raw.maxIterations, raw.lossEvery, raw.tolerance));
  const elapsed = performance.now() - t0;
  const end = cpu({ ...raw, init: 'given' as const, W: d.W, H: d.H, maxIterations: 0 });
  const concat = (a: Float64Array, last: number) => {
    const out = new Float64Array(a.length + 1);
    out.set(a);
    out[a.length] = last;
    return out;
  };
  const stopReason: StopReason = d.plateau ? 'plateau' : 'maxIterations';
  return {
    W: d.W,
    H: d.H,
    trace: {
      iteration: concat(d.trace.iteration, d.iterations),
      timeMs: concat(d.trace.timeMs, elapsed + end.trace.timeMs[0]!),
      loss: concat(d.trace.loss, end.trace.loss[0]!),
    },
    iterations: d.iterations,
    stopReason,
    certificate: end.certificate,
  };
}
