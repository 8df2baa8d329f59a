/**
 * Vega and Vega-Lite are optional: only plots need them, so they are imported at the first render
 * and a missing install is one clear error that names the packages to install.
 */
import type * as VegaModule from 'vega';
import type * as VegaLiteModule from 'vega-lite';

import { MissingPackageError } from '../errors.js';
import { describeValue } from '../validate.js';

export interface PlotPackages {
  vega: typeof VegaModule;
  vegaLite: typeof VegaLiteModule;
}

/** The packages plots need, as npm names. */
export const plotPackages = ['vega', 'vega-lite'] as const;
export type PlotPackageName = (typeof plotPackages)[number];

/** Imports one package by name (the default is Node's own `import()`; tests inject a failing one). */
export type PackageImporter = (name: PlotPackageName) => Promise<unknown>;

/** The MissingPackageError of plots: which packages, and the command that installs them. */
function missingPlotPackages(cause: unknown): MissingPackageError {
  const reason = cause instanceof Error ? cause.message.split('\n')[0] : String(cause);
  return new MissingPackageError(
    plotPackages,
    `Plots need the optional packages ${plotPackages.join(' and ')}, which could not be loaded: ` +
      `install them with \`npm install ${plotPackages.join(' ')}\` (${reason})`,
    { cause },
  );
}

// Literal specifiers so that bundlers and tsc see the packages.
const nodeImporter: PackageImporter = (name) => (name === 'vega' ? import('vega') : import('vega-lite'));

let loaded: Promise<PlotPackages> | undefined;

async function importAll(importer: PackageImporter): Promise<PlotPackages> {
  try {
    const [vega, vegaLite] = await Promise.all(plotPackages.map((n) => importer(n)));
    return { vega: vega as typeof VegaModule, vegaLite: vegaLite as typeof VegaLiteModule };
  } catch (err) {
    // What an injected importer throws other than "module not found" is its own failure: passed on as is.
    const code = (err as { code?: unknown } | null | undefined)?.code;
    if (importer !== nodeImporter && code !== 'ERR_MODULE_NOT_FOUND' && code !== 'MODULE_NOT_FOUND') throw err;
    throw missingPlotPackages(err);
  }
}

/**
 * Loads vega and vega-lite, once. With an `importer` the packages are loaded through it and nothing
 * is cached. A failure is a MissingPackageError (not cached either, so installing and retrying works);
 * an injected importer's own failures other than "module not found" pass through unchanged.
 */
export function loadPlotPackages(importer?: PackageImporter): Promise<PlotPackages> {
  if (importer !== undefined) {
    if (typeof importer !== 'function') return Promise.reject(new TypeError(`Expected a function (name) => Promise<module> for importer but received ${describeValue(importer)}`));
    return importAll(importer);
  }
  if (!loaded) {
    loaded = importAll(nodeImporter);
    loaded.catch(() => (loaded = undefined));
  }
  return loaded;
}
