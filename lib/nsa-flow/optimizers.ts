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
import { expectMatrix, expectOneOf, expectSameShape, describeValue } from '../validate.js';

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
  const name = expectOneOf(optimizer, 'optimizer', optimizerNames.filter((n) => n !== 'lbfgs'));
  const base = expectOneOf(options.lookaheadBase ?? 'adam', 'options.lookaheadBase', stepOptimizers);
  const x = expectMatrix(x0, 'x0');
  if (!Array.isArray(gradients)) throw new TypeError(`Expected an array of matrices for gradients but received ${describeValue(gradients)}`);
  const n = x.rows * x.cols;
  const T = gradients.length;
  const grads = new Float64Array(T * n);
  gradients.forEach((g, t) => {
    const m = expectMatrix(g, `gradients[${t}]`);
    expectSameShape(x, 'x0', m, `gradients[${t}]`);
    grads.set(m.data, t * n);
  });
  const lrs = Float64Array.from({ length: T }, (_, t) => (typeof lr === 'number' ? lr : lr[t]!));
  for (const v of lrs) {
    if (!(v > 0) || !Number.isFinite(v)) throw new RangeError(`Expected learning rates > 0 for lr but received ${describeValue(v)}`);
  }
  const out = callSync(() => native().optimizerSteps(name, base, x.rows, x.cols, x.data, grads, lrs));
  return Array.from({ length: T }, (_, t) => ({ rows: x.rows, cols: x.cols, data: out.slice(t * n, (t + 1) * n) }));
}
