import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { accountLabel } from '../lib/account.js';
import { Controller } from '../lib/controller.js';
import { validateEvent } from '../lib/events.js';
import { FakeServer, fakeBrowser, stores } from './helpers.js';

const ID = 'abcdefghijklmnopabcdefghijklmnop';
const ORIGIN = `chrome-extension://${ID}/`;
const UUID = '0b6f3c1e-1111-4a2b-9c3d-123456789abc';
const ACCOUNT = '4f1c2d3e-0000-4000-8000-123456789abc';
const content = (url, tabId = 7, extra = {}) => ({ id: ID, url, tab: { id: tabId }, frameId: 0, ...extra });
const extensionPage = { id: ID, url: `${ORIGIN}popup.html` };

async function setup({ paired = true } = {}) {
  const server = await FakeServer.create();
  const s = stores();
  const browser = fakeBrowser();
  const timers = [];
  let clock = Date.UTC(2026, 0, 15, 12);
  const make = () => new Controller({
    local: s.local, session: s.session, action: browser.action, tabs: browser.tabs,
    runtimeId: ID, extensionOrigin: ORIGIN, fetch: server.fetch,
    now: () => clock, setTimeout: (fn, ms) => { timers.push({ fn, ms }); return timers.length; }, clearTimeout: () => {},
  });
  const c = make();
  if (paired) assert.deepEqual(await c.onMessage({ type: 'cl/pair', server: 'http://127.0.0.1:8765', code: server.code }, extensionPage), { ok: true });
  return { c, make, server, s, browser, timers, tick: (ms) => { clock += ms; } };
}

const pageMsg = (chatId, extra = {}) => ({ type: 'cl/page', provider: 'claude', account_id: ACCOUNT,
  page: { chat_id: chatId, incognito: false, title: 'Trip plans', url: `https://claude.ai/chat/${chatId}?q=secret`, problems: [] }, ...extra });

describe('background: who may talk to it (SECURITY row 9)', () => {
  it('refuses other extensions, other sites, frames, a provider claiming to be another, and pages sending commands', async () => {
    const { c, server } = await setup();
    const before = server.requests.length;
    const refused = [
      [pageMsg(UUID), { ...content(`https://claude.ai/chat/${UUID}`), id: 'someone-else' }],
      [pageMsg(UUID), content('https://evil.example/chat')],
      [pageMsg(UUID), content('https://claude.ai.evil.example/')],
      [pageMsg(UUID), content(`https://claude.ai/chat/${UUID}`, 7, { frameId: 3 })],
      [{ ...pageMsg(UUID), provider: 'chatgpt' }, content(`https://claude.ai/chat/${UUID}`)],
      [{ type: 'cl/pair', server: 'http://127.0.0.1:1', code: 'XXXXXXXX' }, content(`https://claude.ai/chat/${UUID}`)],
      [{ type: 'cl/state' }, content(`https://claude.ai/chat/${UUID}`)],
      [pageMsg(UUID), extensionPage],
      [pageMsg(UUID), { id: ID, url: `https://claude.ai/chat/${UUID}` }], // no tab
    ];
    for (const [msg, sender] of refused) {
      assert.deepEqual(await c.onMessage(msg, sender), { ok: false, error: 'refused' }, JSON.stringify(sender));
    }
    assert.equal(server.requests.length, before);
  });

  it('never hands the token, salt or server key to a content script', async () => {
    const { c, server, browser } = await setup();
    const answer = await c.onMessage(pageMsg(UUID), content(`https://claude.ai/chat/${UUID}`));
    await c.flush();
    const seen = JSON.stringify([answer, browser.sent]);
    for (const secret of [server.token, server.salt, server.key.publicB64]) assert.ok(!seen.includes(secret));
  });
});

describe('background: events', () => {
  it('turns observations into valid events with the hashed account label, and delivers them', async () => {
    const { c, server } = await setup();
    const tab = content(`https://claude.ai/chat/${UUID}`);
    await c.onMessage(pageMsg(UUID), tab);
    await c.onMessage({ type: 'cl/sent', provider: 'claude', account_id: ACCOUNT, chat_id: UUID, incognito: false, title: 'Trip plans',
      url: `https://claude.ai/chat/${UUID}`, at: '2026-01-15T11:59:00.000Z' }, tab);
    await c.onMessage({ type: 'cl/feedback', provider: 'claude', account_id: ACCOUNT, chat_id: UUID, rating: 'up' }, tab);
    await c.onMessage({ type: 'cl/deleted', provider: 'claude', account_id: ACCOUNT, chat_id: UUID }, tab);
    await c.flush();
    const events = [...server.events.values()];
    const label = await accountLabel(server.salt, 'claude', ACCOUNT);
    assert.deepEqual(events.map((e) => e.type), ['chat.seen', 'chat.activity', 'chat.feedback', 'chat.deleted']);
    for (const ev of events) {
      validateEvent(ev);
      assert.equal(ev.account, label);
      assert.equal(ev.provider, 'claude');
    }
    assert.equal(events[0].url, `https://claude.ai/chat/${UUID}`); // the ?q= query is dropped
    assert.equal(events[1].at, '2026-01-15T11:59:00.000Z');
    assert.ok(!JSON.stringify(events).includes(ACCOUNT)); // the raw id never leaves
  });

  it('records chat.seen once per chat per tab, not on every page report', async () => {
    const { c, server } = await setup();
    const tab = content(`https://claude.ai/chat/${UUID}`);
    await c.onMessage(pageMsg(UUID), tab);
    await c.onMessage(pageMsg(UUID, { page: { ...pageMsg(UUID).page, title: 'Renamed' } }), tab);
    await c.flush();
    assert.equal([...server.events.values()].filter((e) => e.type === 'chat.seen').length, 1);
  });

  it('refuses a chat id that does not match the page it came from', async () => {
    const { c } = await setup();
    await c.onMessage(pageMsg('9d8e7f6a-2222-4b3c-8d4e-abcdefabcdef'), content(`https://claude.ai/chat/${UUID}`));
    assert.equal((await c.onMessage({ type: 'cl/state', tabId: 7 }, extensionPage)).tab.chat_id, null);
    assert.equal((await c.onMessage({ type: 'cl/sent', provider: 'claude', chat_id: 'x"><script>', incognito: false }, content('https://claude.ai/new'))).ok, false);
  });

  it('account: consent.set and plan.set only when they change; grove_enabled null sends nothing', async () => {
    const { c, server } = await setup();
    const tab = content('https://claude.ai/new');
    const acct = (training, plan) => c.onMessage({ type: 'cl/account', provider: 'claude', account_id: ACCOUNT, training, plan, source: 'settings_page' }, tab);
    await acct(null, null);
    await c.flush();
    assert.equal(server.events.size, 0);
    await acct(true, 'pro');
    await acct(true, 'pro');
    await acct(false, 'pro');
    await c.flush();
    const got = [...server.events.values()].map((e) => [e.type, e.value ?? e.plan, e.source]);
    assert.deepEqual(got, [['consent.set', true, 'settings_page'], ['plan.set', 'pro', undefined], ['consent.set', false, 'settings_page']]);
  });

  it('gemini and unknown accounts are "default"', async () => {
    const { c, server } = await setup();
    await c.onMessage({ type: 'cl/sent', provider: 'gemini', account_id: 'whoever', chat_id: '805e7b06c9459c98', incognito: false },
      content('https://gemini.google.com/app/805e7b06c9459c98'));
    await c.onMessage({ type: 'cl/sent', provider: 'chatgpt', account_id: null, chat_id: UUID, incognito: false }, content(`https://chatgpt.com/c/${UUID}`));
    await c.flush();
    assert.deepEqual([...server.events.values()].map((e) => e.account), ['default', 'default']);
  });

  it('records nothing before pairing, and says so', async () => {
    const { c, s } = await setup({ paired: false });
    const answer = await c.onMessage({ type: 'cl/sent', provider: 'claude', account_id: ACCOUNT, chat_id: UUID, incognito: false }, content(`https://claude.ai/chat/${UUID}`));
    assert.equal(answer.recorded, 0);
    assert.equal((await s.local.get('outbox', [])).length, 0);
  });
});

describe('background: delivery', () => {
  it('keeps events while the server is down, backs off, and sends the same ids once it is back', async () => {
    const ctx = await setup();
    const { c, make, server, s, timers, browser } = ctx;
    server.down = true;
    const tab = content(`https://claude.ai/chat/${UUID}`);
    await c.onMessage(pageMsg(UUID), tab);
    await c.onMessage({ type: 'cl/sent', provider: 'claude', account_id: ACCOUNT, chat_id: UUID, incognito: false }, tab);
    await c.flush();
    const queued = (await s.local.get('outbox')).map((e) => e.id);
    assert.equal(queued.length, 2);
    const link = await s.local.get('link');
    assert.equal(link.state, 'unreachable');
    assert.ok(link.failures >= 1 && link.nextAttemptAt > 0);
    assert.ok(timers.at(-1).ms > 0, 'a retry is scheduled');
    assert.equal(browser.badges.get(7).text, '!');
    assert.equal(browser.badges.get(7).color, '#B91C1C');
    // new events during the back-off wait for the retry: no hammering of a stopped server
    const calls = server.requests.length;
    await c.flush();
    assert.equal(server.requests.length, calls);
    // the browser restarts after a while: a new worker on the same storage resumes on waking
    server.down = false;
    const { tick } = ctx;
    tick(10 * 60_000);
    const again = make();
    await again.wake();
    await again.flushing;
    assert.deepEqual([...server.events.keys()], queued);
    assert.equal((await s.local.get('outbox')).length, 0);
    assert.equal((await s.local.get('link')).state, 'ok');
  });

  it('a retry of a batch the server already stored is harmless (ids are the idempotency keys)', async () => {
    const { c, server, s } = await setup();
    await c.onMessage({ type: 'cl/sent', provider: 'claude', account_id: ACCOUNT, chat_id: UUID, incognito: false }, content(`https://claude.ai/chat/${UUID}`));
    const [ev] = await s.local.get('outbox');
    await c.flush();
    await s.local.set('outbox', [ev]); // as if the answer had been lost
    await c.flush();
    assert.equal(server.events.size, 1);
  });

  it('never sends the token to a server that cannot prove its key', async () => {
    const { c, server, s } = await setup();
    server.impostor = true;
    server.requests.length = 0;
    await c.onMessage({ type: 'cl/sent', provider: 'claude', account_id: ACCOUNT, chat_id: UUID, incognito: false }, content(`https://claude.ai/chat/${UUID}`));
    c.trusted = { key: null, until: 0 };
    await c.flush();
    assert.ok(server.requests.some((r) => r.path === '/api/v1/hello'));
    assert.ok(!server.requests.some((r) => r.headers.Authorization), 'no request carried the token');
    assert.equal((await s.local.get('link')).state, 'untrusted');
    assert.equal((await s.local.get('outbox')).length, 1);
  });

  it('proves the key again before each delivery: a server swapped right after a good hello gets no token', async () => {
    const { c, server } = await setup();
    await c.onMessage({ type: 'cl/sent', provider: 'claude', account_id: ACCOUNT, chat_id: UUID, incognito: false }, content(`https://claude.ai/chat/${UUID}`));
    await c.flush();
    assert.equal(server.events.size, 1); // delivered after a verified hello
    server.impostor = true; // another process took the port at once
    const mark = server.requests.length;
    await c.onMessage({ type: 'cl/feedback', provider: 'claude', account_id: ACCOUNT, chat_id: UUID, rating: 'up' }, content(`https://claude.ai/chat/${UUID}`));
    await c.flush({ force: true });
    assert.ok(!server.requests.slice(mark).some((r) => r.headers.Authorization), 'no request carried the token');
    assert.equal(server.events.size, 1);
  });

  it('drops an event the server calls invalid (400 with its index) and delivers the rest', async () => {
    const { c, server, s } = await setup();
    server.down = true;
    for (let i = 0; i < 3; i++) {
      await c.onMessage({ type: 'cl/feedback', provider: 'claude', account_id: ACCOUNT, chat_id: UUID, rating: 'up' }, content(`https://claude.ai/chat/${UUID}`));
    }
    server.down = false;
    server.refuseIndex = 1;
    await c.flush({ force: true });
    assert.equal(server.events.size, 2);
    assert.equal((await s.local.get('rejected')).length, 1);
    assert.equal((await s.local.get('outbox')).length, 0);
  });

  it('a revoked token (401) shows ! and keeps the events', async () => {
    const { c, server, s, browser } = await setup();
    server.token = 'another-token-entirely-xxxxxxxxxxxx';
    const tab = content(`https://claude.ai/chat/${UUID}`);
    await c.onMessage(pageMsg(UUID), tab);
    await c.flush();
    assert.equal((await s.local.get('link')).state, 'refused');
    assert.equal((await s.local.get('outbox')).length, 1);
    assert.equal(browser.badges.get(7).text, '!');
  });
});

describe('background: pairing, status and badges', () => {
  it('pairs only with a server that signs with the key it hands out', async () => {
    const server = await FakeServer.create();
    server.impostor = true;
    const s = stores();
    const b = fakeBrowser();
    const c = new Controller({ local: s.local, session: s.session, action: b.action, tabs: b.tabs, runtimeId: ID, extensionOrigin: ORIGIN, fetch: server.fetch });
    const answer = await c.onMessage({ type: 'cl/pair', server: 'http://127.0.0.1:8765', code: server.code }, extensionPage);
    assert.equal(answer.ok, false);
    assert.match(answer.error, /could not prove/);
    assert.equal(await s.local.get('server'), undefined);
    assert.equal((await c.onMessage({ type: 'cl/pair', server: 'http://example.com:80', code: server.code }, extensionPage)).ok, false);
    assert.equal((await c.onMessage({ type: 'cl/pair', server: 'http://127.0.0.1:8765', code: 'short' }, extensionPage)).ok, false);
  });

  it('keeps the pairing in storage.local: token, salt and server key', async () => {
    const { s, server } = await setup();
    const kept = await s.local.get('server');
    assert.deepEqual({ ...kept, paired_at: undefined }, { url: 'http://127.0.0.1:8765', token: server.token, account_salt: server.salt,
      server_key: server.key.publicB64, paired_at: undefined });
  });

  it("shows the server's verdict per tab, ? for a chat the ledger has not seen, and pushes it to the page", async () => {
    const { c, server, browser, s } = await setup();
    server.statuses.set(`claude/${UUID}`, { training: 'yes', training_windows: [{ from: '2025-10-02T09:30:00Z', until: null }],
      expires_at: '2030-10-02T09:30:00Z', reasons: ['A2: ...'],
      badge: { text: 'T', color: '#B45309', title: 'May be used for training since 2025-10-02; kept until 2030-10-02' } });
    await c.onMessage(pageMsg(UUID), content(`https://claude.ai/chat/${UUID}`, 7));
    await c.refreshStatus(7);
    assert.deepEqual(browser.badges.get(7), { text: 'T', color: '#B45309', title: 'Consent Ledger: May be used for training since 2025-10-02; kept until 2030-10-02' });
    assert.deepEqual(browser.sent.at(-1), { tabId: 7, msg: { type: 'cl/badge', hidden: false,
      badge: { text: 'T', color: '#B45309', title: 'May be used for training since 2025-10-02; kept until 2030-10-02' } } });
    const other = '9d8e7f6a-2222-4b3c-8d4e-abcdefabcdef';
    await c.onMessage(pageMsg(other), content(`https://claude.ai/chat/${other}`, 8));
    server.events.clear();
    await c.refreshStatus(8);
    assert.equal(browser.badges.get(8).text, '?');
    assert.deepEqual((await s.session.get('tab:7')).status.reasons, ['A2: ...']);
    // hide the in-page badge: the toolbar badge stays, the page is told to hide
    await c.onMessage({ type: 'cl/settings', hideInPageBadge: true }, extensionPage);
    assert.equal(browser.sent.filter((m) => m.tabId === 7).at(-1).msg.hidden, true);
    assert.equal(browser.badges.get(7).text, 'T');
  });

  it('popup declarations: the setting (user_declared), a deletion, the plan', async () => {
    const { c, server } = await setup();
    await c.onMessage(pageMsg(UUID), content(`https://claude.ai/chat/${UUID}`, 7));
    let state = await c.onMessage({ type: 'cl/declare', tabId: 7, what: 'consent', value: false }, extensionPage);
    assert.equal(state.account.training.value, false);
    assert.equal(state.account.training.source, 'user_declared');
    await c.onMessage({ type: 'cl/declare', tabId: 7, what: 'deletion' }, extensionPage);
    state = await c.onMessage({ type: 'cl/declare', tabId: 7, what: 'plan', plan: 'max' }, extensionPage);
    assert.equal(state.account.plan.plan, 'max');
    assert.equal((await c.onMessage({ type: 'cl/declare', tabId: 7, what: 'plan', plan: 'plus' }, extensionPage)).ok, false);
    const got = [...server.events.values()].filter((e) => e.type !== 'chat.seen').map((e) => [e.type, e.source || e.chat_id || e.plan]);
    assert.deepEqual(got, [['consent.set', 'user_declared'], ['chat.deleted', UUID], ['plan.set', 'max']]);
  });

  it('popup state: paired, connection, the tab, the dashboard link', async () => {
    const { c } = await setup();
    await c.onMessage(pageMsg(UUID), content(`https://claude.ai/chat/${UUID}`, 7));
    const state = await c.onMessage({ type: 'cl/state', tabId: 7 }, extensionPage);
    assert.equal(state.server.dashboard, 'http://127.0.0.1:8765/');
    assert.equal(state.server.token, undefined);
    assert.equal(state.tab.chat_id, UUID);
    assert.equal(state.site.provider, 'claude');
    assert.ok(!JSON.stringify(state).includes('t'.repeat(43)));
  });
});

describe('background: a status the server will not give', () => {
  it('shows ? with the reason, and leaves delivery alone (Chromium sends no Origin on GET)', async () => {
    const { c, server, browser, s } = await setup();
    const realFetch = server.fetch;
    server.fetch = async (url, init) => (String(url).includes('/api/v1/chats/')
      ? { ok: false, status: 403, json: async () => ({ error: 'this token was paired from another origin' }) } : realFetch(url, init));
    c.fetch = server.fetch;
    await c.onMessage(pageMsg(UUID), content(`https://claude.ai/chat/${UUID}`, 7));
    await c.flush();
    await c.refreshStatus(7);
    assert.equal(browser.badges.get(7).text, '?');
    assert.match(browser.badges.get(7).title, /did not answer about this chat/);
    assert.equal((await s.local.get('link')).state, 'ok');
    assert.equal(server.events.size, 1);
  });
});

describe('background: flush during a delivery', () => {
  it('an event queued while a batch is on its way goes out in the same run', async () => {
    const { c, server } = await setup();
    const tab = content(`https://claude.ai/chat/${UUID}`);
    const send = (rating) => c.onMessage({ type: 'cl/feedback', provider: 'claude', account_id: ACCOUNT, chat_id: UUID, rating }, tab);
    await send('up');
    const first = c.flush();
    await send('down'); // queued while the first delivery is running
    await c.flush();
    await first;
    await c.flushing;
    assert.deepEqual([...server.events.values()].map((e) => e.rating), ['up', 'down']);
  });
});
