/** Strict number parsing for the text readers (MatrixMarket, CSV). */

// A decimal number (Fortran 'D' exponents allowed), or inf / infinity / nan in any case, with optional sign.
const NUMBER = /^[+-]?(?:(?:\d+\.?\d*|\.\d+)(?:[eEdD][+-]?\d+)?|[iI][nN][fF](?:[iI][nN][iI][tT][yY])?|[nN][aA][nN])$/;
const INTEGER = /^[+-]?\d+$/;

/**
 * Parses a decimal number token strictly: no hex, no empty string, no trailing garbage (unlike Number()).
 * Returns undefined when the token is not a number.
 */
export function parseNumberToken(token: string): number | undefined {
  if (!NUMBER.test(token)) return undefined;
  const c = token.charCodeAt(token.length - 1) | 0x20; // last char, lower-cased
  if (c === 0x66 /* f */ || c === 0x79 /* y */) return token[0] === '-' ? -Infinity : Infinity;
  if (c === 0x6e /* n */) return NaN;
  const v = Number(token);
  return Number.isNaN(v) ? Number(token.replace(/[dD]/, 'e')) : v;
}

/** Parses a decimal integer token strictly; undefined when it is not one (or not a safe integer). */
export function parseIntegerToken(token: string): number | undefined {
  if (!INTEGER.test(token)) return undefined;
  const v = Number(token);
  return Number.isSafeInteger(v) ? v : undefined;
}
