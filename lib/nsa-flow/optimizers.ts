/**
 * The optimizers of the NSA-Flow solvers (SPEC.md §7): torch 1.13 semantics and defaults for the
 * PyTorch ones (float32 state quirks included), torch_optimizer's defaults for the literature ones,
 * Lookahead around any base, L-BFGS with a strong-Wolfe line search (solver only: it needs the energy
 * as a closure), and `fast`, the plain step. The same C++ objects serve every solver; here they can
 * also be driven step by step with given gradients.
 */
import type { Matrix } from '../matrix.js';
import { native } from '../native.js';
import { callSync } from '../runtime.js';
import { NumericalError } from '../errors.js';
import { checkMemory, float64Bytes } from '../memory.js';
import {
  describeValue,
  expectAllocatable,
  expectIntact,
  expectMatrix,
  expectMatrixList,
  expectOneOf,
  expectSameShape,
  maxAbs,
  parseOptions,
  readList,
  type OptionSpecs,
} from '../validate.js';

declare module '../native.js' {
  interface NativeBinding {
    optimizerSteps(
      optimizer: string, lookaheadBase: string, rows: number, cols: number,
      x0: Float64Array, grads: Float64Array, lrs: Float64Array,
    ): Float64Array;
  }
}

/** torch.optim names of the reference, camelCase. */
export const torchOptimizers = [
  'sgd', 'sgdNesterov', 'adam', 'adamw', 'adamax', 'nadam', 'radam', 'rmsprop', 'adagrad', 'asgd', 'rprop', 'lbfgs',
] as const;
/** torch_optimizer's, offered by the reference when that package is installed. */
export const literatureOptimizers = ['lars', 'sgdp', 'adamp', 'yogi', 'adabound', 'qhadam', 'qhm', 'pid', 'lookahead'] as const;
export const optimizerNames = [...torchOptimizers, ...literatureOptimizers, 'fast'] as const;
export type OptimizerName = (typeof optimizerNames)[number];
/** Optimizers that take plain gradient steps (everything but lbfgs), e.g. as Lookahead's base. */
export const stepOptimizers = optimizerNames.filter((n) => n !== 'lbfgs' && n !== 'lookahead') as Exclude<
  OptimizerName,
  'lbfgs' | 'lookahead'
>[];

/**
 * p×k state buffers each optimizer of the shared library keeps (native/kernels/optimizers.cpp), for
 * the memory checks of the solvers. L-BFGS: 6 work vectors, 4 of its line search and a 100-pair history.
 */
const optimizerState: Record<OptimizerName, number> = {
  fast: 0, sgd: 1, sgdNesterov: 1, adam: 2, adamw: 2, adamax: 2, nadam: 2, radam: 2, rmsprop: 1, adagrad: 1,
  asgd: 1, rprop: 2, lars: 1, sgdp: 2, adamp: 3, yogi: 2, adabound: 2, qhadam: 2, qhm: 1, pid: 3,
  lookahead: 1, lbfgs: 6 + 4 + 2 * 100,
};

export function optimizerStateBuffers(optimizer: OptimizerName, lookaheadBase: (typeof stepOptimizers)[number] = 'adam'): number {
  const name = expectOneOf(optimizer, 'optimizer', optimizerNames);
  const base = expectOneOf(lookaheadBase, 'lookaheadBase', stepOptimizers);
  return optimizerState[name] + (name === 'lookahead' ? optimizerState[base] : 0);
}

/**
 * Runs an optimizer from x0 over the given gradients (one step each, at learning rate lrs[t] or a
 * constant lr) and returns the parameter after every step. For tests and custom loops.
 */
export function optimizerSteps(
  optimizer: Exclude<OptimizerName, 'lbfgs'>,
  x0: Matrix,
  gradients: readonly Matrix[],
  lr: number | readonly number[],
  options: { lookaheadBase?: (typeof stepOptimizers)[number] } = {},
): Matrix[] {
  const o = parseOptions<{ lookaheadBase: (typeof stepOptimizers)[number] }>(optimizerStepsSpecs, options, 'optimizerSteps()');
  const name = expectOneOf(optimizer, 'optimizer', optimizerNames.filter((n) => n !== 'lbfgs'));
  const x = expectMatrix(x0, 'x0');
  if (!Array.isArray(gradients)) throw new TypeError(`Expected an array of matrices for gradients but received ${describeValue(gradients)}`);
  const list = expectMatrixList(gradients, 'gradients');
  const n = x.rows * x.cols;
  const T = list.length;
  if (T === 0) throw new RangeError('Expected at least one gradient for gradients but received an empty array');
  // The gradients, the T results and the optimizer's state (at most 3 buffers of x0's shape).
  checkMemory(float64Bytes(2 * T + 4, n), `the ${T} steps of x0 (${x.rows}×${x.cols}) given by gradients`);
  expectAllocatable(T * n, `the ${T} gradients of x0 (${x.rows}×${x.cols})`);
  const grads = new Float64Array(T * n);
  list.forEach((m, t) => {
    expectSameShape(x, 'x0', m, `gradients[${t}]`);
    grads.set(m.data, t * n);
  });
  let lrs: Float64Array;
  if (typeof lr === 'number') {
    lrs = new Float64Array(T).fill(lr);
  } else {
    if (!Array.isArray(lr) && !ArrayBuffer.isView(lr)) {
      throw new TypeError(`Expected a number > 0 or an array of ${T} numbers > 0 (one per gradient) for lr but received ${describeValue(lr)}`);
    }
    const values = readList(lr, 'lr', 'an array of learning rates');
    if (values.length !== T) {
      throw new RangeError(`Expected an array of ${T} learning rates (one per gradient) for lr but received ${describeValue(lr)}`);
    }
    lrs = new Float64Array(T);
    values.forEach((v, t) => {
      if (typeof v !== 'number') throw new TypeError(`Expected a finite number > 0 for lr[${t}] but received ${describeValue(v)}`);
      lrs[t] = v;
    });
  }
  lrs.forEach((v, t) => {
    if (!(v > 0) || !Number.isFinite(v)) {
      throw new RangeError(`Expected learning rates > 0 for lr but received ${describeValue(v)}${typeof lr === 'number' ? '' : ` at [${t}]`}`);
    }
  });
  expectIntact([x.data, n, 'x0.data']);
  // The optimizers keep squares of gradients (and parameters, for weight decay and norms): beyond
  // 1e150 those overflow and the steps would silently stall. Refuse instead.
  const largest = Math.max(maxAbs(grads), maxAbs(x.data));
  if (largest > 1e150) {
    throw new NumericalError(
      `optimizerSteps(): the largest |entry| of x0 and gradients is ${largest.toExponential(3)}: its square overflows a double in the optimizer's state; rescale x0 and the gradients`,
    );
  }
  const out = callSync(() => native().optimizerSteps(name, o.lookaheadBase, x.rows, x.cols, x.data, grads, lrs));
  for (let i = 0; i < out.length; i++) {
    if (!Number.isFinite(out[i]!)) {
      throw new NumericalError(
        `optimizerSteps(): step ${Math.floor(i / n) + 1} of '${name}' produced ${out[i]} from finite input: the optimizer's squared gradients overflow a double; rescale the gradients`,
      );
    }
  }
  return Array.from({ length: T }, (_, t) => ({ rows: x.rows, cols: x.cols, data: out.slice(t * n, (t + 1) * n) }));
}

const optimizerStepsSpecs = {
  lookaheadBase: { kind: 'enum', values: stepOptimizers, default: 'adam', description: "base optimizer of 'lookahead'" },
} as const satisfies OptionSpecs;
