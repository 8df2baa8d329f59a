// Reads the Stratified-NTF and NTF fixtures (test/fixtures) into this project's types, and
// measures the largest relative error of a state against a recorded one.
import type { Matrix } from '../../lib/matrix.js';
import type { StratifiedNtfState } from '../../lib/factorization/stratified-ntf.js';
import type { Tensor } from '../../lib/tensor.js';
import { fxMatrix, fxTensor, loadFixture, relativeError, type FixtureArray } from './shared.js';

export interface FxState {
  v: FixtureArray[][];
  w: FixtureArray[];
  h: FixtureArray[];
}
export interface SntfCase {
  name: string;
  A: FixtureArray[];
  strata_feature_rank: number[];
  topics_rank: number;
  v_scaling: number;
  tol: number;
  reg_type: 'none' | 'tv';
  reg: number;
  init: FxState;
  snapshots: (FxState & { iterations: number; loss: number })[];
  loss_array: FixtureArray;
  first_iteration_stages: (FxState & { stage: string })[];
}

export function sntfCases(): SntfCase[] {
  return loadFixture<{ cases: SntfCase[] }>('stratified_ntf.json').cases;
}

export function strataOf(c: SntfCase): Tensor[] {
  return c.A.map(fxTensor);
}

export function stateOf(s: FxState): StratifiedNtfState {
  return { v: s.v.map((vs) => vs.map(fxMatrix)), w: s.w.map(fxMatrix), h: s.h.map(fxMatrix) };
}

/** Options reproducing a fixture case (its ranks, v_scaling, tol floor, TV setting and initial state). */
export function optionsOf(c: SntfCase, maxIterations: number) {
  return {
    strataRank: c.strata_feature_rank,
    rank: c.topics_rank,
    maxIterations,
    vScaling: c.v_scaling,
    epsilon: c.tol,
    tv: c.reg_type === 'tv' ? { reg: c.reg } : undefined,
    init: stateOf(c.init),
  };
}

/** Largest relative error (to each array's largest entry) over every factor of a state. */
export function stateError(actual: StratifiedNtfState, expected: FxState): number {
  const e = stateOf(expected);
  const pairs: [Matrix, Matrix][] = [
    ...actual.v.flatMap((vs, s) => vs.map((m, t): [Matrix, Matrix] => [m, e.v[s]![t]!])),
    ...actual.w.map((m, s): [Matrix, Matrix] => [m, e.w[s]!]),
    ...actual.h.map((m, t): [Matrix, Matrix] => [m, e.h[t]!]),
  ];
  return Math.max(...pairs.map(([a, b]) => (a.rows === b.rows && a.cols === b.cols ? relativeError(a.data, b.data) : Infinity)));
}

export interface NtfCase {
  name: string;
  tensor: FixtureArray;
  rank: number;
  init: { weights: FixtureArray; factors: FixtureArray[] };
  options: { n_iter_max: number; epsilon: number };
  snapshots: { iterations: number; factors: FixtureArray[]; loss: number }[];
  loss_per_iteration: FixtureArray;
}

export function ntfCase(): NtfCase {
  return loadFixture<{ cases: NtfCase[] }>('ntf.json').cases[0]!;
}
