import { describe, expect, it } from 'vitest';

import { info, invariantOrthogonalityDefect, matrix } from '../lib/index.js';

describe('addon smoke', () => {
  it('loads and reports OpenBLAS', () => {
    expect(info().blas.config).toMatch(/OpenBLAS/);
  });
  it('computes a defect of an orthogonal matrix as 0', () => {
    // Columns (1,0,0) and (0,1,0) are orthogonal: the defect is exactly 0.
    expect(invariantOrthogonalityDefect(matrix([[1, 0], [0, 1], [0, 0]]))).toBe(0);
  });
});
