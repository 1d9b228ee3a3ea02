/*
 * Consent Ledger: starts the ChatWatcher on a provider's page. Loaded last, after the site's
 * adapter, page-badge.js and watcher.js (manifest.json lists them per site).
 */
(function (root) {
  'use strict';
  const CL = root.ConsentLedger;
  if (!CL || CL.started) return; // injected twice (e.g. the extension was reloaded): keep the first
  const api = root.browser && root.browser.runtime ? root.browser : root.chrome;
  const adapter = Object.values(CL.adapters).find((a) => a.hosts.includes(root.location.hostname));
  if (!adapter) return;
  CL.started = true;

  // Firefox runs a content script's own fetch with the extension's principal; content.fetch
  // makes the request as the page, like Chromium's content-script fetch does.
  const pageFetch = root.content && typeof root.content.fetch === 'function'
    ? root.content.fetch.bind(root.content) : root.fetch.bind(root);
  const fetchJson = (path) => pageFetch(path, { credentials: 'same-origin', headers: { Accept: 'application/json' } })
    .then((res) => (res.ok ? res.json() : null));

  const watcher = new CL.ChatWatcher({
    adapter,
    win: root,
    doc: root.document,
    send: (msg) => api.runtime.sendMessage(msg),
    fetchJson,
  });

  api.runtime.onMessage.addListener((msg, sender) => {
    if (!sender || sender.id !== api.runtime.id || !msg || msg.type !== 'cl/badge') return undefined;
    watcher.showBadge(msg.badge, msg.hidden);
    return undefined;
  });

  watcher.start();
})(globalThis);
