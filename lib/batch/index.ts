// Batch runs (import from 'nsa-flow/batch'): kept out of the package root so that importing
// 'nsa-flow' does not load the queue client.
export { runBatch, executeJob, formatSummary, type BatchSummary, type BatchEvent, type JobOutcome, type RunBatchOptions } from './run.js';
export { expandJobs, prepareJobs, jobId, type Job, type JobSpec, type GridSpec, type JobsFile } from './jobs.js';
export { enqueueBatch, runWorker, QueueTimeoutError, type EnqueueOptions, type WorkerOptions } from './queue.js';
