// Runs every gallery example at its full size, in the order of docs/gallery.md, writing the figures
// under docs/figures/ (relative to the current directory): `npm run gallery`.
import { main as optimizers } from './optimizers.js';
import { main as budgets } from './budgets.js';
import { main as snmfSynthetic } from './snmf-synthetic.js';
import { main as snmfText } from './snmf-text.js';
import { main as toyW } from './toy-w.js';
import { main as wTradeoff } from './w-tradeoff.js';
import { main as tvWatermark } from './tv-watermark.js';

const examples: [string, () => Promise<unknown>][] = [
  ['claim 1: NSA-Flow, toy 4 × 3, w = 0.1, 0.5, 0.9 (examples/gallery/toy-w.ts)', () => toyW()],
  ['claim 2: NSA-Flow, every optimizer on a synthetic target and the ALL PCA loadings (examples/gallery/optimizers.ts)', () => optimizers()],
  ['claim 3: NSA-Flow, the sparsity–orthogonality–fidelity curve over w in each mode (examples/gallery/w-tradeoff.ts)', () => wTradeoff()],
  ['claim 4: Stratified-NMF, the synthetic experiment (examples/gallery/snmf-synthetic.ts)', () => snmfSynthetic()],
  ['claim 5: Stratified-NMF on text, the strata\'s top words (examples/gallery/snmf-text.ts)', () => snmfText()],
  ['claim 6: Stratified-NTF, NTF and Stratified-NMF at equal parameter budgets (examples/gallery/budgets.ts)', () => budgets()],
  ['claim 7: Stratified-NTF with total variation, noise and a watermark (examples/gallery/tv-watermark.ts)', () => tvWatermark()],
];
for (const [title, run] of examples) {
  console.log(`\n== ${title}\n`);
  await run();
}
