// The text corpora (data/text, or the optional data folder) for the NMF tests, read through the library's own I/O.
import { readFileSync } from 'node:fs';

import { readLabels, readMatrixMarket, readNpyMatrix } from '../../lib/io/index.js';
import type { CsrMatrix, Matrix } from '../../lib/matrix.js';
import { dataFile } from './shared.js';

/** A dense 2-D .npy file. */
export function readNpy(path: string): Matrix {
  return readNpyMatrix(path);
}

/** A text corpus: TF-IDF (CSR), vocabulary and per-document stratum. */
export function readCorpus(name: 'austen' | 'fortunes' | 'reuters') {
  return {
    tfidf: readMatrixMarket(dataFile(`text/${name}_tfidf.mtx.gz`), { format: 'csr' }) as CsrMatrix,
    vocab: readFileSync(dataFile(`text/${name}_vocab.txt`), 'utf8').split('\n').filter((l) => l.length > 0),
    strata: readLabels(dataFile(`text/${name}_docs.csv`), 'stratum'),
  };
}
