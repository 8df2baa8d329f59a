import { expect } from 'vitest';

/** The error a call throws (for asserting its class and message together); fails when it does not throw. */
export function thrown(fn: () => unknown): Error {
  try {
    fn();
  } catch (err) {
    return err as Error;
  }
  throw new Error('expected the call to throw');
}

/** Asserts that the call throws an instance of `cls` whose message matches `message`. */
export function expectThrows(fn: () => unknown, cls: ErrorConstructor, message: RegExp): void {
  const err = thrown(fn);
  expect(err).toBeInstanceOf(cls);
  expect(err.message).toMatch(message);
}
