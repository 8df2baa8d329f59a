// Structural checks of the gallery's Vega SVG figures (shared by test/gallery*.test.ts).
import { expect } from 'vitest';

/** The panels of a concatenated Vega SVG: one scope group per sub-view. */
export const panelCount = (svg: string): number => (svg.match(/role-scope concat_\d+_group/g) ?? []).length;
/** The entries of a legend (one per series of a line chart). */
export const legendLabels = (svg: string): number => (svg.match(/role-legend-symbol/g) ?? []).length;

/** A whole SVG document, well nested: every element closed, in order (a truncated or malformed file fails here). */
export function expectSvg(svg: string): void {
  expect(svg.startsWith('<svg')).toBe(true);
  expect(svg.trimEnd().endsWith('</svg>')).toBe(true);
  // Attribute values of Vega's SVG escape '<' and '>', so a tag ends at the first '>'.
  const open: string[] = [];
  for (const [, close, name, selfClosing] of svg.matchAll(/<(\/?)([a-zA-Z][\w:-]*)[^>]*?(\/?)>/g)) {
    if (close) expect(open.pop()).toBe(name);
    else if (!selfClosing) open.push(name!);
  }
  expect(open).toEqual([]);
}
