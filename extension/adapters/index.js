/**
 * The site adapters as an ES module, for the background worker and the tests. The adapter
 * files themselves are classic scripts (see common.js) that register on globalThis.
 */
import './common.js';
import './claude.js';
import './chatgpt.js';
import './gemini.js';

export const ADAPTERS = globalThis.ConsentLedger.adapters;
export const pageTools = globalThis.ConsentLedger.pageTools;

/** The adapter for a page URL (https, one of the three hosts), or null. */
export function adapterForUrl(url) {
  let u;
  try {
    u = new URL(url);
  } catch {
    return null;
  }
  if (u.protocol !== 'https:' || u.port) return null;
  return Object.values(ADAPTERS).find((a) => a.hosts.includes(u.hostname)) || null;
}
