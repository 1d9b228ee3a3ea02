/**
 * The background worker's logic, with the browser APIs handed in (so the node tests run it
 * with fakes). It owns the outbox and the server connection; content scripts only report
 * what pages show, and never see the token, the salt or the server.
 *
 * chrome.storage.local: server, settings, outbox, link, accounts, rejected
 * chrome.storage.session (trusted contexts only): tab:<tabId>
 */

import { ADAPTERS } from '../adapters/index.js';
import { DEFAULT_ACCOUNT, accountLabel } from './account.js';
import { badgeForTab } from './badge.js';
import { retryDelay } from './backoff.js';
import { PLANS, buildEvent, ledgerUrl, newEventId } from './events.js';
import { UntrustedServer, makeNonce, parseServerKey, verifyHello } from './hello.js';
import { Outbox } from './outbox.js';
import { classifySender } from './senders.js';
import { DEFAULT_SERVER, LedgerServer, Refused, Unreachable, parseServerAddress } from './server.js';

export const BATCH = 200;
// A verified hello covers only the calls made right after it: another process can take the
// port the moment the server stops, so every delivery and status check proves the key anew
// (SECURITY row 11; a 30 s grace here once sent the token to a port squatter).
const TRUST_MS = 0;
const CLOCK_SKEW_MS = 24 * 3600_000; // an observation's `at` further off than this is replaced by now
const MAX_REJECTED = 50;
const CONTENT_TYPES = new Set(['cl/page', 'cl/sent', 'cl/deleted', 'cl/feedback', 'cl/account']);
const PAGE_TYPES = new Set(['cl/state', 'cl/refresh', 'cl/declare', 'cl/pair', 'cl/unpair', 'cl/settings']);

const tabKey = (tabId) => `tab:${tabId}`;
const clipText = (v, n) => (typeof v === 'string' ? v.slice(0, n) : null);

export class Controller {
  constructor({ local, session, action, tabs, runtimeId, extensionOrigin, fetch, crypto = globalThis.crypto,
    now = () => Date.now(), setTimeout = globalThis.setTimeout.bind(globalThis),
    clearTimeout = globalThis.clearTimeout.bind(globalThis) }) {
    Object.assign(this, { local, session, action, tabs, runtimeId, extensionOrigin, fetch, crypto, now, setTimeout, clearTimeout });
    this.outbox = new Outbox(local);
    this.flushing = null;
    this.retryTimer = null;
    this.trusted = { key: null, until: 0 };
    this.labels = new Map(); // "<provider>:<raw id>" -> label, memory only
  }

  // --- entry points -----------------------------------------------------------------------

  /** Worker start-up (browser start, install, or a wake for an event): resume delivery. */
  async wake() {
    const link = await this.local.get('link', {});
    const wait = (link.nextAttemptAt || 0) - this.now();
    if (wait > 0) this.scheduleRetry(wait);
    else this.flush({ force: true });
  }

  async onMessage(msg, sender) {
    if (!msg || typeof msg !== 'object' || typeof msg.type !== 'string') return { ok: false, error: 'bad message' };
    const from = classifySender(sender, { runtimeId: this.runtimeId, extensionOrigin: this.extensionOrigin });
    if (!from) return { ok: false, error: 'refused' };
    if (CONTENT_TYPES.has(msg.type)) {
      if (from.kind !== 'content' || msg.provider !== from.adapter.provider) return { ok: false, error: 'refused' };
      return this.onObservation(msg, from);
    }
    if (PAGE_TYPES.has(msg.type)) {
      if (from.kind !== 'extension') return { ok: false, error: 'refused' };
      return this.onCommand(msg);
    }
    return { ok: false, error: 'unknown message' };
  }

  /** A tab was closed, or left the providers' pages (the badge is blank there). */
  async forgetTab(tabId) {
    await this.session.remove(tabKey(tabId));
  }

  // --- observations from content scripts ------------------------------------------------

  async onObservation(msg, { adapter, tabId, url }) {
    const provider = adapter.provider;
    const server = await this.local.get('server');
    const account = server ? await this.label(server, provider, msg.account_id) : null;
    const at = this.observedAt(msg.at);
    const events = [];
    const chatOk = (id) => typeof id === 'string' && adapter.isChatId(id);

    switch (msg.type) {
      case 'cl/page': {
        const page = msg.page || {};
        const urlId = adapter.chatIdFromUrl(url);
        let chatId = page.chat_id === null || page.chat_id === undefined ? null : page.chat_id;
        if (chatId !== null && (!chatOk(chatId) || (urlId !== null && chatId !== urlId))) chatId = null;
        const prev = await this.session.get(tabKey(tabId));
        const sameChat = prev && prev.provider === provider && prev.chat_id === chatId;
        const tab = {
          provider,
          chat_id: chatId,
          incognito: page.incognito === true,
          title: clipText(page.title, 300),
          problems: Array.isArray(page.problems) ? page.problems.filter((p) => typeof p === 'string').slice(0, 5).map((p) => p.slice(0, 200)) : [],
          account,
          status: sameChat ? prev.status : undefined,
          statusAt: sameChat ? prev.statusAt : undefined,
        };
        await this.session.set(tabKey(tabId), tab);
        if (chatId && account && !sameChat) {
          events.push(this.event('chat.seen', provider, account, this.now(), {
            chat_id: chatId, title: tab.title || undefined, url: ledgerUrl(url), incognito: tab.incognito,
          }));
        }
        if (events.length) await this.outbox.add(events);
        this.afterChange(tabId);
        const settings = await this.local.get('settings', {});
        return { ok: true, tabId, badge: await this.badgeFor(tabId), hidden: !!settings.hideInPageBadge };
      }
      case 'cl/sent':
        if (!chatOk(msg.chat_id)) return { ok: false, error: 'bad chat id' };
        if (account) {
          events.push(this.event('chat.activity', provider, account, at, {
            chat_id: msg.chat_id, kind: 'chat', incognito: msg.incognito === true,
            title: clipText(msg.title, 1000) || undefined, url: ledgerUrl(url), messages: 1,
          }));
        }
        break;
      case 'cl/deleted':
        if (!chatOk(msg.chat_id)) return { ok: false, error: 'bad chat id' };
        if (account) events.push(this.event('chat.deleted', provider, account, at, { chat_id: msg.chat_id }));
        break;
      case 'cl/feedback':
        if (!chatOk(msg.chat_id) || !['up', 'down'].includes(msg.rating)) return { ok: false, error: 'bad feedback' };
        if (account) events.push(this.event('chat.feedback', provider, account, at, { chat_id: msg.chat_id, rating: msg.rating }));
        break;
      case 'cl/account':
        if (account) events.push(...await this.accountEvents(provider, account, msg, at));
        await this.session.update(tabKey(tabId), (tab) => (tab ? { ...tab, account } : tab));
        break;
      default:
        return { ok: false, error: 'unknown message' };
    }
    if (!server) return { ok: true, recorded: 0, note: 'not paired: nothing is recorded' };
    if (events.length) {
      await this.outbox.add(events);
      this.afterChange(tabId);
    }
    return { ok: true, recorded: events.length };
  }

  /** consent.set / plan.set when the account's setting or plan differs from the last one recorded. */
  async accountEvents(provider, account, msg, at) {
    const events = [];
    const key = `${provider}:${account}`;
    await this.local.update('accounts', (all) => {
      const rec = { provider, account, ...(all[key] || {}) };
      if (typeof msg.training === 'boolean' && (!rec.training || rec.training.value !== msg.training)) {
        const source = msg.source === 'choice_prompt' ? 'choice_prompt' : 'settings_page';
        events.push(this.event('consent.set', provider, account, at, { setting: 'model_training', value: msg.training, source }));
        rec.training = { value: msg.training, source, at: new Date(at).toISOString() };
      }
      if (typeof msg.plan === 'string' && PLANS[provider].includes(msg.plan) && (!rec.plan || rec.plan.plan !== msg.plan)) {
        events.push(this.event('plan.set', provider, account, at, { plan: msg.plan }));
        rec.plan = { plan: msg.plan, source: 'site', at: new Date(at).toISOString() };
      }
      return { ...all, [key]: rec };
    }, {});
    return events;
  }

  observedAt(at) {
    const t = typeof at === 'string' ? Date.parse(at) : NaN;
    const now = this.now();
    return Number.isFinite(t) && Math.abs(now - t) <= CLOCK_SKEW_MS ? t : now;
  }

  event(type, provider, account, at, fields) {
    return buildEvent(type, { provider, account, at, id: newEventId(this.crypto) }, fields);
  }

  async label(server, provider, accountId) {
    if (provider === 'gemini' || typeof accountId !== 'string' || !accountId) return DEFAULT_ACCOUNT;
    const k = `${server.server_key}|${provider}:${accountId}`;
    if (!this.labels.has(k)) this.labels.set(k, await accountLabel(server.account_salt, provider, accountId, this.crypto.subtle));
    return this.labels.get(k);
  }

  /** After new events or a new page: deliver, then ask the server about the tab's chat. */
  afterChange(tabId) {
    this.flush().then(() => this.refreshStatus(tabId)).catch(() => {});
  }

  // --- commands from the popup and the options page -------------------------------------

  async onCommand(msg) {
    switch (msg.type) {
      case 'cl/state':
        return this.state(msg.tabId);
      case 'cl/refresh':
        await this.flush({ force: true });
        if (Number.isInteger(msg.tabId)) await this.refreshStatus(msg.tabId);
        return this.state(msg.tabId);
      case 'cl/declare':
        return this.declare(msg);
      case 'cl/pair':
        return this.pair(msg.server, msg.code);
      case 'cl/unpair':
        await this.local.remove('server');
        await this.setLink({ state: 'unknown', message: 'not paired', failures: 0, nextAttemptAt: 0 });
        return { ok: true };
      case 'cl/settings': {
        const hide = msg.hideInPageBadge === true;
        await this.local.update('settings', (s) => ({ ...s, hideInPageBadge: hide }), {});
        await this.refreshAllBadges();
        return { ok: true };
      }
      default:
        return { ok: false, error: 'unknown command' };
    }
  }

  async state(tabId) {
    const server = await this.local.get('server');
    const link = await this.local.get('link', {});
    const tab = Number.isInteger(tabId) ? await this.session.get(tabKey(tabId)) : undefined;
    const accounts = await this.local.get('accounts', {});
    const adapter = tab ? ADAPTERS[tab.provider] : null;
    return {
      ok: true,
      server: server ? { url: server.url, paired: true, paired_at: server.paired_at, dashboard: `${server.url}/` }
        : { url: DEFAULT_SERVER, paired: false },
      link: { state: link.state || 'unknown', message: link.message || '', lastOkAt: link.lastOkAt || null },
      outbox: await this.outbox.size(),
      rejected: (await this.local.get('rejected', [])).length,
      settings: await this.local.get('settings', {}),
      tab: tab || null,
      site: adapter ? { provider: adapter.provider, name: adapter.name, privacySettingsUrl: adapter.privacySettingsUrl } : null,
      account: tab && tab.account ? accounts[`${tab.provider}:${tab.account}`] || { provider: tab.provider, account: tab.account } : null,
      badge: tab ? await this.badgeFor(tabId) : null,
      plans: adapter ? PLANS[adapter.provider] : [],
    };
  }

  /** The user's own declarations from the popup: training setting, deletion, plan. */
  async declare({ tabId, what, value, plan }) {
    const server = await this.local.get('server');
    if (!server) return { ok: false, error: 'Pair with the Consent Ledger server first (Options).' };
    const tab = Number.isInteger(tabId) ? await this.session.get(tabKey(tabId)) : null;
    if (!tab) return { ok: false, error: 'Open a Claude, ChatGPT or Gemini page first.' };
    const account = tab.account || DEFAULT_ACCOUNT;
    const at = this.now();
    let ev;
    if (what === 'consent' && typeof value === 'boolean') {
      ev = this.event('consent.set', tab.provider, account, at, { setting: 'model_training', value, source: 'user_declared' });
      await this.local.update('accounts', (all) => ({ ...all,
        [`${tab.provider}:${account}`]: { provider: tab.provider, account, ...(all[`${tab.provider}:${account}`] || {}),
          training: { value, source: 'user_declared', at: new Date(at).toISOString() } } }), {});
    } else if (what === 'deletion' && tab.chat_id) {
      ev = this.event('chat.deleted', tab.provider, account, at, { chat_id: tab.chat_id });
    } else if (what === 'plan' && PLANS[tab.provider].includes(plan)) {
      ev = this.event('plan.set', tab.provider, account, at, { plan });
      await this.local.update('accounts', (all) => ({ ...all,
        [`${tab.provider}:${account}`]: { provider: tab.provider, account, ...(all[`${tab.provider}:${account}`] || {}),
          plan: { plan, source: 'user_declared', at: new Date(at).toISOString() } } }), {});
    } else {
      return { ok: false, error: 'Nothing to declare.' };
    }
    await this.outbox.add([ev]);
    await this.flush({ force: true });
    await this.refreshStatus(tabId);
    return this.state(tabId);
  }

  /** Trades a one-time code for {token, account_salt, server_key}, and checks the key at once. */
  async pair(address, code) {
    let origin;
    try {
      origin = parseServerAddress(address || DEFAULT_SERVER);
    } catch (err) {
      return { ok: false, error: err.message };
    }
    const trimmed = typeof code === 'string' ? code.trim() : '';
    if (trimmed.length < 8 || trimmed.length > 128) return { ok: false, error: 'The pairing code is at least 8 characters.' };
    const api = new LedgerServer(origin, { fetch: this.fetch });
    try {
      const got = await api.pair(trimmed);
      parseServerKey(got.server_key);
      const nonce = makeNonce(this.crypto);
      await verifyHello({ serverKey: got.server_key, nonce, answer: await api.hello(nonce), subtle: this.crypto.subtle });
      const old = await this.local.get('server');
      if (old && old.server_key !== got.server_key) await this.local.set('outbox', []); // labels of another ledger
      await this.local.set('server', { url: origin, ...got, paired_at: new Date(this.now()).toISOString() });
      this.trusted = { key: got.server_key, until: this.now() + TRUST_MS };
      await this.setLink({ state: 'ok', message: 'paired', failures: 0, nextAttemptAt: 0, lastOkAt: this.now() });
      this.flush({ force: true });
      return { ok: true };
    } catch (err) {
      return { ok: false, error: describe(err) };
    }
  }

  // --- delivery -------------------------------------------------------------------------

  /**
   * Delivers the outbox. While the server is backing off (a failed attempt set
   * `nextAttemptAt`), new events wait for the retry unless `force` (the popup's refresh,
   * pairing, the retry timer itself). A call during a delivery makes it run once more, so an
   * event queued at the very end of one is not left behind.
   */
  flush({ force = false } = {}) {
    if (this.flushing) {
      this.flushAgain = this.flushAgain || { force };
      return this.flushing;
    }
    this.flushing = (async () => {
      let next = { force };
      while (next) {
        this.flushAgain = null;
        await this.deliver(next).catch(() => {});
        next = this.flushAgain;
      }
    })().finally(() => { this.flushing = null; });
    return this.flushing;
  }

  async deliver({ force }) {
    const server = await this.local.get('server');
    if (!server) return;
    const link = await this.local.get('link', {});
    if (!force && (link.nextAttemptAt || 0) > this.now()) return;
    const api = new LedgerServer(server.url, { fetch: this.fetch });
    let size = BATCH;
    for (;;) {
      const batch = await this.outbox.peek(size);
      if (!batch.length) return;
      try {
        await this.ensureTrusted(server, api);
        await api.postEvents(server.token, batch);
        await this.outbox.remove(batch.map((e) => e.id));
        await this.setLink({ state: 'ok', message: '', failures: 0, nextAttemptAt: 0, lastOkAt: this.now() });
      } catch (err) {
        if (err instanceof Refused && err.status === 400 && Number.isInteger(err.body && err.body.index)
          && batch[err.body.index]) {
          await this.reject(batch[err.body.index], err); // no retry can fix an invalid event
        } else if (err instanceof Refused && err.status === 413 && batch.length > 1) {
          size = Math.max(1, Math.floor(batch.length / 2));
        } else if (err instanceof Refused && err.status === 413) {
          await this.reject(batch[0], err);
        } else {
          await this.failed(err);
          return;
        }
      }
    }
  }

  async ensureTrusted(server, api) {
    if (this.trusted.key === server.server_key && this.trusted.until > this.now()) return;
    this.trusted = { key: null, until: 0 };
    const nonce = makeNonce(this.crypto);
    const answer = await api.hello(nonce);
    await verifyHello({ serverKey: server.server_key, nonce, answer, subtle: this.crypto.subtle });
    this.trusted = { key: server.server_key, until: this.now() + TRUST_MS };
  }

  async reject(event, err) {
    await this.outbox.remove([event.id]);
    await this.local.update('rejected', (list) => [...list, { event, error: describe(err), at: new Date(this.now()).toISOString() }]
      .slice(-MAX_REJECTED), []);
  }

  async failed(err) {
    this.trusted = { key: null, until: 0 };
    const link = await this.local.get('link', {});
    const failures = (link.failures || 0) + 1;
    const delay = retryDelay(failures);
    let state = 'unreachable';
    if (err instanceof UntrustedServer) state = 'untrusted';
    else if (err instanceof Refused && (err.status === 401 || err.status === 403)) state = 'refused';
    await this.setLink({ state, message: describe(err), failures, nextAttemptAt: this.now() + delay });
    this.scheduleRetry(delay);
  }

  scheduleRetry(delay) {
    this.clearTimeout(this.retryTimer);
    this.retryTimer = this.setTimeout(() => { this.retryTimer = null; this.flush({ force: true }); }, delay);
  }

  /** Saves the connection state; when it flips, every tab's badge is recomputed. */
  async setLink(fields) {
    let flipped = false;
    await this.local.update('link', (old) => {
      flipped = old.state !== fields.state;
      return { ...old, ...fields, at: this.now() };
    }, {});
    if (flipped) await this.refreshAllBadges();
  }

  // --- chat status and badges -----------------------------------------------------------

  async refreshStatus(tabId) {
    const tab = await this.session.get(tabKey(tabId));
    const server = await this.local.get('server');
    const link = await this.local.get('link', {});
    const backingOff = (link.nextAttemptAt || 0) > this.now(); // the server is down: wait for the retry
    if (tab && tab.chat_id && server && !backingOff) {
      const api = new LedgerServer(server.url, { fetch: this.fetch });
      try {
        await this.ensureTrusted(server, api);
        const status = await api.chat(server.token, tab.provider, tab.chat_id);
        await this.session.update(tabKey(tabId), (t) => (t && t.chat_id === tab.chat_id
          ? { ...t, status, statusAt: this.now(), statusError: undefined } : t));
        if (link.state !== 'ok') await this.setLink({ state: 'ok', message: '', failures: 0, nextAttemptAt: 0, lastOkAt: this.now() });
      } catch (err) {
        if (err instanceof Refused) {
          // The server is there and trusted but would not say: the chat shows `?` with why,
          // while delivery (which has its own state) goes on.
          const why = `The ledger did not answer about this chat (${err.message})`;
          await this.session.update(tabKey(tabId), (t) => (t && t.chat_id === tab.chat_id ? { ...t, statusError: why } : t));
        } else {
          await this.failed(err);
        }
      }
    }
    await this.showBadge(tabId);
  }

  async badgeFor(tabId) {
    const tab = await this.session.get(tabKey(tabId));
    const server = await this.local.get('server');
    const link = await this.local.get('link', {});
    return badgeForTab(tab, { paired: !!server, state: link.state });
  }

  async showBadge(tabId) {
    const badge = await this.badgeFor(tabId);
    const settings = await this.local.get('settings', {});
    const a = this.action;
    try {
      await a.setBadgeText({ tabId, text: badge.text });
      await a.setBadgeBackgroundColor({ tabId, color: badge.color });
      if (a.setBadgeTextColor) await a.setBadgeTextColor({ tabId, color: '#FFFFFF' });
      await a.setTitle({ tabId, title: badge.title ? `Consent Ledger: ${badge.title}` : 'Consent Ledger' });
    } catch {
      return; // the tab is gone
    }
    if (badge.text) this.tabs.sendMessage(tabId, { type: 'cl/badge', badge, hidden: !!settings.hideInPageBadge }).catch(() => {});
    else this.tabs.sendMessage(tabId, { type: 'cl/badge', badge: null, hidden: true }).catch(() => {});
  }

  async refreshAllBadges() {
    const tabs = await this.session.getAll('tab:');
    await Promise.all(Object.keys(tabs).map((k) => this.showBadge(Number(k.slice(4)))));
  }
}

function describe(err) {
  if (err instanceof Refused && err.status === 401) return 'The server does not know this extension any more: pair again (Options).';
  if (err instanceof Refused && err.status === 403) return 'The server refused this extension (paired from another browser?): pair again.';
  if (err instanceof Refused && err.status === 400) return `The server refused the input: ${(err.body && err.body.error) || 'bad request'}`;
  if (err instanceof Refused && err.status === 429) return 'Too many wrong pairing codes: wait a minute.';
  return err && err.message ? err.message : String(err);
}
