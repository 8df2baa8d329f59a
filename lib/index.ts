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
export { unfold, fold, khatriRao, type KhatriRaoOptions, mttkrp, cpReconstruct, tensorNorm } from './tensor-ops.js';
export {
  stratifiedNtf,
  stratifiedNtfSync,
  stratifiedNtfLoss,
  type StratifiedNtfOptions,
  type StratifiedNtfState,
  type StratifiedNtfProgress,
  type StratifiedNtfResult,
  type StratifiedNtfSettings,
} from './factorization/stratified-ntf.js';
export { ntf, ntfSync, type NtfOptions, type NtfSolver, type NtfProgress, type NtfResult, type NtfSettings } from './factorization/ntf.js';
