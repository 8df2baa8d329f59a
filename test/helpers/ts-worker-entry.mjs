// Entry of a worker_threads Worker that runs a TypeScript module: Node 20 Workers do not apply the
// parent's `--import tsx`, so the Worker registers tsx itself, then imports workerData.module.
import { workerData } from 'node:worker_threads';
import { register } from 'tsx/esm/api';

register();
await import(workerData.module);
