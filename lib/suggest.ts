/**
 * "Did you mean …?" for unknown option and flag names: the nearest valid name by edit distance
 * (case-insensitive, ignoring '-' and '_' so that --max-iter finds maxIterations), when it is close
 * enough to be a plausible typo.
 */

function normalize(name: string): string {
  return name.toLowerCase().replace(/[-_]/g, '');
}

/** Levenshtein distance, O(|a|·|b|) with one row. */
export function editDistance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let diagonal = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const above = row[j]!;
      row[j] = Math.min(row[j]! + 1, row[j - 1]! + 1, diagonal + (a[i - 1] === b[j - 1] ? 0 : 1));
      diagonal = above;
    }
  }
  return row[b.length]!;
}

/**
 * The candidate nearest to `name`, or undefined when none is plausible: a prefix of at least 3
 * characters (maxIter → maxIterations), or an edit distance of at most max(1, ⌊len/3⌋).
 */
export function nearestName(name: string, candidates: readonly string[]): string | undefined {
  const n = normalize(name);
  if (n.length === 0) return undefined;
  let best: string | undefined;
  let bestScore = Infinity;
  for (const c of candidates) {
    const m = normalize(c);
    const score = m.startsWith(n) && n.length >= 3 ? 0.5 : editDistance(n, m);
    if (score < bestScore) {
      bestScore = score;
      best = c;
    }
  }
  return bestScore <= Math.max(1, Math.floor(n.length / 3)) ? best : undefined;
}

/** " (did you mean maxIterations?)" or "". */
export function didYouMean(name: string, candidates: readonly string[], format: (c: string) => string = (c) => c): string {
  const hit = nearestName(name, candidates);
  return hit === undefined ? '' : ` (did you mean ${format(hit)}?)`;
}
