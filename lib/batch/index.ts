// Batch runs (import from 'nsa-flow/batch'): kept out of the package root. The queue client (the
// optional packages bullmq and ioredis) is loaded only when a queue is first used.
export { runBatch, executeJob, formatSummary, type BatchSummary, type BatchEvent, type JobOutcome, type RunBatchOptions } from './run.js';
export { expandJobs, prepareJobs, jobId, type Job, type JobSpec, type GridSpec, type JobsFile } from './jobs.js';
export {
  enqueueBatch,
  runWorker,
  loadQueuePackages,
  QueueTimeoutError,
  JobRefusedError,
  type EnqueueOptions,
  type WorkerOptions,
  type WorkerEvent,
} from './queue.js';
// The same class as nsa-flow/plot's (one error for every optional package).
export { MissingPackageError } from '../errors.js';
