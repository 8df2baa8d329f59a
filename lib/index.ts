export { AbortError, MissingPackageError, NumericalError } from './errors.js';
// The memory limit every call checks its outputs and workspaces against before allocating (see lib/memory.ts).
export { setMemoryLimit, getMemoryLimit } from './memory.js';
export { type Matrix, type CsrMatrix, matrix, matrixFrom, zeros, identity, at, toNested, transpose, frobeniusNorm } from './matrix.js';
export { type Tensor, tensor, tensorFrom } from './tensor.js';
export { info, type Info } from './info.js';
export { DeviceUnavailableError, type CudaInfo, type Device } from './cuda.js';
export {
  setBlasThreads,
  getBlasThreads,
  setConcurrency,
  getConcurrency,
  setSmallJobFlops,
  getSmallJobFlops,
  type AsyncOptions,
} from './runtime.js';
export {
  retractionTypes,
  type RetractionType,
  type RetractOptions,
  type RetractDeviceOptions,
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
export { pca, pcaOptionSpecs, type PcaOptions, type PcaResult } from './pca.js';
export * from './nsa-flow/index.js';
export { nsaEnergy, nsaEnergyOptionSpecs, type NsaEnergyOptions, type NsaEnergyValue } from './nsa-flow/certified.js';
export {
  nsaFlowExplicit,
  nsaFlowExplicitSync,
  defaultWGrid,
  type NsaFlowExplicitOptions,
  type NsaFlowExplicitResult,
} from './nsa-flow-explicit/explicit.js';
export {
  nsaFlowPath,
  nsaFlowPathSync,
  type NsaFlowPathOptions,
  type NsaFlowPathResult,
  type PathPoint,
  type PathProgress,
  selectOnPath,
} from './nsa-flow-explicit/path.js';
export { selectByKnee, selectByScore, kneeScores, type WSelection, type TradeOffPoint, type ExcludedPoint } from './nsa-flow-explicit/auto-w.js';
export { explicitFlowDiagnostics, explainedVariance, type ExplicitFlowDiagnostics } from './nsa-flow-explicit/diagnostics.js';
export type { ExplicitFlowProgress, ExplicitFlowRun, ExplicitFlowSettings, ExplicitFlowTraces } from './nsa-flow-explicit/core.js';
export { selectAuto, sparsityExchangeRates, separationPar } from './nsa-flow-explicit/auto-w.js';
export { unfold, fold, khatriRao, type KhatriRaoOptions, mttkrp, cpReconstruct, tensorNorm } from './tensor-ops.js';
export {
  stratifiedNtf,
  stratifiedNtfSync,
  stratifiedNtfLoss,
  type StratifiedNtfOptions,
  type LegacyStratifiedNtfOptions,
  type StratifiedNtfState,
  type StratifiedNtfProgress,
  type StratifiedNtfResult,
  type StratifiedNtfSettings,
} from './factorization/stratified-ntf.js';
export {
  ntf,
  ntfSync,
  type NtfOptions,
  type NtfSolver,
  type NtfProgress,
  type NtfResult,
  type NtfSettings,
  type WeightedHals,
} from './factorization/ntf.js';
export { type DataMatrix, isCsr, expectCsr, toCsr, selectRows } from './factorization/sparse.js';
export { type NmfProgress, type LossOutcome, type LossTraces } from './factorization/common.js';
export { stopReasons, type StopReason, type SolverOutcome, type SolverTraces, type SolverProgress } from './solver.js';
export {
  stratifiedNmf,
  stratifiedNmfSync,
  stratifiedNmfLoss,
  type StratifiedNmfOptions,
  type StratifiedNmfSolver,
  type StratifiedNmfRank,
  type StratifiedNmfFactors,
  type StratifiedNmfResult,
  type StratifiedNmfSettings,
  type LabelledStratifiedNmfResult,
} from './factorization/stratified-nmf.js';
export { nmf, nmfSync, type NmfOptions, type NmfResult, type NmfSettings, type NmfSolver, type NmfLoss } from './factorization/nmf.js';
export type { FactorPenalties, StratifiedPenalties, PenalizedProgress } from './factorization/penalties.js';
export { type MissingOptions, type MissingMask } from './factorization/missing.js';
export { type RestartsSummary } from './factorization/restarts.js';
export { reconstruct, type ReconstructOptions, type FactorizationResult } from './factorization/reconstruct.js';
export { crossValidateRank, crossValidateRankSync, crossValidateW, crossValidateWSync, type CrossValidateWOptions, type CrossValidateWResult, type WError, type CrossValidateRankOptions, type CrossValidateRankResult, type CrossValidationMethod, type CrossValidationProgress, type RankError, type RankRule } from './factorization/cross-validate.js';
