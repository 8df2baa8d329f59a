export { AbortError, NumericalError } from './errors.js';
export { type Matrix, type CsrMatrix, matrix, matrixFrom, zeros, identity, at, toNested, transpose, frobeniusNorm } from './matrix.js';
export { type Tensor, tensor, tensorFrom } from './tensor.js';
export { info, type Info } from './info.js';
export {
  setBlasThreads,
  getBlasThreads,
  setConcurrency,
  getConcurrency,
  type AsyncOptions,
} from './runtime.js';
export {
  retractionTypes,
  type RetractionType,
  type RetractOptions,
  type BatchProgress,
  invariantOrthogonalityDefect,
  defectFast,
  invariantOrthogonalityDefectGradient,
  basicOrthogonality,
  invariantOrthogonalityDefectBatch,
  invariantOrthogonalityDefectGradientBatch,
  basicOrthogonalityBatch,
  retract,
  retractAsync,
  retractBatch,
  retractBatchAsync,
  inverseSqrt,
  type InverseSqrtOptions,
  procrustes,
  qr,
  svd,
  applyNonNegativity,
  type NonNegativity,
  nonNegativityModes,
} from './ortho.js';
export * from './io/index.js';
export { main as cliMain, registerMethod, getMethod, methodNames, UsageError, type MethodSpec, type InputSpec, type MethodProgress } from './cli/index.js';
export { runBatch, executeJob, formatSummary, type BatchSummary, type BatchEvent, type JobOutcome, type RunBatchOptions } from './batch/run.js';
export { expandJobs, prepareJobs, jobId, type Job, type JobSpec, type GridSpec, type JobsFile } from './batch/jobs.js';
export { enqueueBatch, runWorker, QueueTimeoutError, type EnqueueOptions, type WorkerOptions } from './batch/queue.js';
export { renderSvg, convergencePlot, heatmapPlot, tradeoffPlot, plotResult, type PathCurve } from './plot/index.js';
