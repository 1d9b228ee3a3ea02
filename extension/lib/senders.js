/**
 * Who sent a runtime message (SECURITY.md row 9). Observations are accepted only from this
 * extension's own content scripts, in the top frame of a tab on one of the three providers'
 * pages, and only about that provider; commands (pairing, declarations) only from this
 * extension's own pages. Nothing else can talk to the worker: the manifest declares no
 * externally_connectable, and pages have no runtime API.
 */

import { adapterForUrl } from '../adapters/index.js';

/**
 * @returns {{kind: 'content', adapter: object, tabId: number, url: string}
 *          | {kind: 'extension'} | null}
 */
export function classifySender(sender, { runtimeId, extensionOrigin }) {
  if (!sender || !runtimeId || sender.id !== runtimeId || typeof sender.url !== 'string') return null;
  if (extensionOrigin && sender.url.startsWith(extensionOrigin)) return { kind: 'extension' };
  if (!sender.tab || typeof sender.tab.id !== 'number' || sender.tab.id < 0) return null;
  if (sender.frameId !== undefined && sender.frameId !== 0) return null;
  const adapter = adapterForUrl(sender.url);
  if (!adapter) return null;
  return { kind: 'content', adapter, tabId: sender.tab.id, url: sender.url };
}
