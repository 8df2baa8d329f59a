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
export { type DataMatrix, isCsr, expectCsr, toCsr, selectRows } from './factorization/sparse.js';
export { type NmfProgress, type StopReason } from './factorization/common.js';
export {
  stratifiedNmf,
  stratifiedNmfSync,
  stratifiedNmfLoss,
  type StratifiedNmfOptions,
  type StratifiedNmfFactors,
  type StratifiedNmfResult,
  type StratifiedNmfSettings,
  type LabelledStratifiedNmfResult,
} from './factorization/stratified-nmf.js';
export { nmf, nmfSync, type NmfOptions, type NmfResult, type NmfSettings, type NmfSolver, type NmfLoss } from './factorization/nmf.js';
