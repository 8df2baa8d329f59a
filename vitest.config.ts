import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Native jobs and benchmarks-in-miniature need more than the 5 s default on a 2-core machine.
    testTimeout: 120_000,
    hookTimeout: 120_000,
    pool: 'forks',
    // One file at a time: the suites measure event-loop lag and memory, and compile the addon once
    // with cmake-js; running them side by side on a 2-core machine would make those checks flaky.
    fileParallelism: false,
    // The leak soak test forces garbage collection before measuring.
    execArgv: ['--expose-gc'],
  },
});
