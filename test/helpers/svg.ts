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

/** SVG text with the XML entities Vega writes decoded. */
export const unescapeXml = (s: string): string => s.replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&quot;/g, '"').replace(/&#39;/g, "'").replace(/&amp;/g, '&');

/** One drawn item of a Vega SVG: its data fields (from its aria-label), its position, its panel. */
export interface DrawnItem {
  /** 'point', 'line mark', 'rect mark', 'text mark', 'rule mark' … (Vega's aria-roledescription). */
  kind: string;
  fields: Record<string, string>;
  /** The item's position inside its panel's plot area: a symbol's centre, a rect's or line's first corner. */
  x: number;
  y: number;
  /** The sub-view it is drawn in (concat_N), or -1 in a figure of one view. */
  panel: number;
}

/**
 * Every data item of a Vega SVG, in drawing order. Items are the elements with role="graphics-symbol"
 * and a data aria-label ("x: 5; y: 10; series: s"); the panel is the concat_N of the mark group
 * that holds them.
 */
export function drawnItems(svg: string): DrawnItem[] {
  const items: DrawnItem[] = [];
  let panel = -1;
  for (const [tag] of svg.matchAll(/<[a-zA-Z][^>]*>/g)) {
    const group = /^<g class="mark-\w+ role-mark (?:concat_(\d+)_)?/.exec(tag);
    if (group) {
      panel = group[1] === undefined ? -1 : Number(group[1]);
      continue;
    }
    const kind = /aria-roledescription="([^"]+)"/.exec(tag)?.[1];
    const label = /aria-label="([^"]*)"/.exec(tag)?.[1];
    if (!/role="graphics-symbol"/.test(tag) || kind === undefined || label === undefined || kind === 'title' || kind === 'axis' || kind === 'legend') continue;
    const fields = Object.fromEntries(
      unescapeXml(label)
        .split('; ')
        .map((kv) => [kv.slice(0, kv.indexOf(': ')), kv.slice(kv.indexOf(': ') + 2)]),
    );
    const at = /transform="translate\(([-\d.e]+),([-\d.e]+)\)"/.exec(tag) ?? /\bd="M([-\d.e]+),([-\d.e]+)/.exec(tag);
    items.push({ kind, fields, x: at ? Number(at[1]) : NaN, y: at ? Number(at[2]) : NaN, panel });
  }
  return items;
}

/** The texts of the SVG's <text> elements of one role (axis-title, legend-label, title-text, …), decoded. */
export function roleTexts(svg: string, role: string): string[] {
  const group = new RegExp(`<g class="mark-text role-${role}[^"]*"[^>]*>(.*?)</g>`, 'gs');
  return [...svg.matchAll(group)].flatMap((m) => [...m[1]!.matchAll(/<text[^>]*>([^<]*)<\/text>/g)].map((t) => unescapeXml(t[1]!)));
}
