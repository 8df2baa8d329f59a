// The text corpora of ../shared/data/text for the NMF tests, read through the library's own I/O.
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';

import { readLabels, readMatrixMarket, readNpyMatrix } from '../../lib/io/index.js';
import type { CsrMatrix, Matrix } from '../../lib/matrix.js';

/** A dense 2-D .npy file. */
export function readNpy(path: string): Matrix {
  return readNpyMatrix(path);
}

/** A text corpus: TF-IDF (CSR), vocabulary and per-document stratum. */
export function readCorpus(dataDir: string, name: 'austen' | 'fortunes' | 'reuters') {
  const dir = resolve(dataDir, 'text');
  return {
    tfidf: readMatrixMarket(resolve(dir, `${name}_tfidf.mtx.gz`), { format: 'csr' }) as CsrMatrix,
    vocab: readFileSync(resolve(dir, `${name}_vocab.txt`), 'utf8').split('\n').filter((l) => l.length > 0),
    strata: readLabels(resolve(dir, `${name}_docs.csv`), 'stratum'),
  };
}
