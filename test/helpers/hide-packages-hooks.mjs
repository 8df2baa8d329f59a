// Module resolution hooks for hide-packages.mjs.
let hidden = new Set();

export function initialize(data) {
  hidden = new Set(data.hidden);
}

export async function resolve(specifier, context, next) {
  const name = specifier.startsWith('@') ? specifier.split('/').slice(0, 2).join('/') : specifier.split('/')[0];
  if (hidden.has(name)) {
    throw Object.assign(new Error(`Cannot find package '${name}' imported from ${context.parentURL}`), { code: 'ERR_MODULE_NOT_FOUND' });
  }
  return next(specifier, context);
}
