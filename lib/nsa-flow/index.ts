/** NSA-Flow, exact-gradient mode: energies, the differentiable retraction, optimizers, learning-rate strategies and the solver. */
export * from './options.js';
export * from './energy.js';
export * from './optimizers.js';
export * from './solver.js';
export { nsaFlowFit, nsaFlowFitSync, nsaFlowFitOptionSpecs, fitModes, fitInits, type FitMode, type ResolvedFitMode, type FitInit, type FitConsolidation, type NsaFlowFitOptions, type NsaFlowFitSettings, type NsaFlowFitResult, type NsaFlowFitTraces, type NsaFlowFitProgress } from './fit.js';
