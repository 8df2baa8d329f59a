/**
 * Error classes of the public API. Argument problems are standard TypeError/RangeError (thrown by
 * lib/validate.ts before any native work); these two cover what can only happen while a job runs.
 */

/** Thrown (or used to reject a Promise) when a job is cancelled through its AbortSignal. */
export class AbortError extends Error {
  override name = 'AbortError';
  readonly code = 'ABORT_ERR';
  constructor(message = 'The operation was aborted', options?: { cause?: unknown }) {
    super(message, options);
  }
}

/**
 * A numerical failure (non-convergence of a LAPACK routine, a singular system, a non-finite iterate).
 * `best` carries the best iterate found before the failure, where the method has one.
 */
export class NumericalError<Best = unknown> extends Error {
  override name = 'NumericalError';
  readonly best: Best | undefined;
  constructor(message: string, options?: { best?: Best; cause?: unknown }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.best = options?.best;
  }
}

/**
 * A feature needs an optional package that is not installed (the queue: bullmq and ioredis; plots: vega
 * and vega-lite). `packages` are the npm names to install; the message says the command.
 */
export class MissingPackageError extends Error {
  override name = 'MissingPackageError';
  readonly packages: readonly string[];
  constructor(packages: readonly string[], message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.packages = packages;
  }
}
