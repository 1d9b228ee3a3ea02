/**
 * Consent Ledger's background worker (a service worker in Chromium, an event page in
 * Firefox; both load it as an ES module). Only wiring lives here: the logic is in
 * lib/controller.js, which the node tests drive with fakes.
 */

import { adapterForUrl } from './adapters/index.js';
import { Controller } from './lib/controller.js';
import { Store } from './lib/store.js';

const api = globalThis.browser && globalThis.browser.runtime ? globalThis.browser : globalThis.chrome;

// Per-tab state (session) and the pairing (local: token, salt, server key) are for this
// extension's own pages and worker only, never content scripts: by default Chromium lets
// content scripts read storage.local, where the token lives. Said for every browser and
// area that supports it.
for (const area of [api.storage.session, api.storage.local]) {
  try {
    if (area && area.setAccessLevel) area.setAccessLevel({ accessLevel: 'TRUSTED_CONTEXTS' }).catch(() => {});
  } catch {
    // not supported for this area in this browser
  }
}

const controller = new Controller({
  local: new Store(api.storage.local),
  session: new Store(api.storage.session),
  action: api.action,
  tabs: api.tabs,
  runtimeId: api.runtime.id,
  extensionOrigin: api.runtime.getURL(''),
  fetch: (...args) => globalThis.fetch(...args),
});

api.runtime.onMessage.addListener((msg, sender, sendResponse) => {
  controller.onMessage(msg, sender).then(sendResponse, (err) => sendResponse({ ok: false, error: String(err && err.message) }));
  return true; // answer asynchronously
});

// No "tabs" permission: tab.url is only visible on the hosts the extension has permission
// for, so a tab that navigates anywhere else shows up here without a url (or with the local
// server's), and is forgotten; the browser clears a tab's badge on such a navigation itself.
api.tabs.onUpdated.addListener((tabId, change, tab) => {
  if (change.status === 'loading' && !adapterForUrl(tab.url || '')) controller.forgetTab(tabId);
});
api.tabs.onRemoved.addListener((tabId) => controller.forgetTab(tabId));

api.runtime.onStartup.addListener(() => controller.wake());
api.runtime.onInstalled.addListener(() => controller.wake());
controller.wake(); // every wake of the worker (a message, an event) resumes a due delivery
