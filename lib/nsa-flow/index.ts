/** NSA-Flow, exact-gradient mode: energies, the differentiable retraction, optimizers, learning-rate strategies and the solver. */
export * from './options.js';
export * from './energy.js';
export * from './optimizers.js';
export * from './solver.js';
