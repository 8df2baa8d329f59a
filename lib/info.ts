import { readFileSync } from 'node:fs';
import { join } from 'node:path';

import { cudaInfo, type CudaInfo } from './cuda.js';
import { native, packageRoot } from './native.js';
import { getBlasThreads, getConcurrency } from './runtime.js';

export interface Info {
  /** Package version. */
  version: string;
  /** Node-API version the addon was built for, and by which build system. */
  addon: { napiVersion: number; buildSystem: string; compiler: string };
  blas: {
    /** OpenBLAS's configuration string, e.g. "OpenBLAS 0.3.21 DYNAMIC_ARCH NO_AFFINITY Haswell MAX_THREADS=64". */
    config: string;
    /** The CPU kernel OpenBLAS selected at run time. */
    corename: string;
    /** BLAS threads in effect right now (process-global). */
    threads: number;
    /** Threads a job running alone (and sync calls) may use; see setBlasThreads(). */
    maxThreads: number;
  };
  /** Native jobs allowed to run at once; see setConcurrency(). */
  concurrency: number;
  /**
   * The optional CUDA path (docs/cuda.md): whether its addon was built, whether a GPU can be used
   * (else `reason` says why), and the device's name and memory when one answered.
   */
  cuda: CudaInfo;
}

/** What this installation is: versions, BLAS configuration and threads, GPU availability. */
export function info(): Info {
  const pkg = JSON.parse(readFileSync(join(packageRoot, 'package.json'), 'utf8')) as { version: string };
  const b = native().blasInfo();
  const build = native().buildInfo();
  return {
    version: pkg.version,
    addon: { napiVersion: build.napiVersion, buildSystem: build.buildSystem ?? 'unknown', compiler: build.compiler ?? 'unknown' },
    blas: { config: b.config.trim(), corename: b.corename, threads: b.threads, maxThreads: getBlasThreads() },
    concurrency: getConcurrency(),
    cuda: cudaInfo(),
  };
}
