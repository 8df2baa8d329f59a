/** The memory limit the fuzz child runs with: small, so that "too large" is reached by modest inputs. */
export const fuzzMemoryLimit = 256 * 1024 * 1024;
