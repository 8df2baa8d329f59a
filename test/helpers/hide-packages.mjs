// Preloaded with `node --import` (e.g. through NODE_OPTIONS) to make packages look uninstalled: the
// packages named in NSA_FLOW_HIDE_PACKAGES (comma-separated) fail to resolve as a missing package would.
import { register } from 'node:module';

const hidden = (process.env.NSA_FLOW_HIDE_PACKAGES ?? '').split(',').filter(Boolean);
register('./hide-packages-hooks.mjs', { parentURL: import.meta.url, data: { hidden } });
