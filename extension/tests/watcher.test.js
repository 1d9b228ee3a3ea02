import assert from 'node:assert/strict';
import { performance } from 'node:perf_hooks';
import { describe, it } from 'node:test';

import { ADAPTERS } from '../adapters/index.js';
import '../content/page-badge.js';
import '../content/watcher.js';
import { FakeWin, fixture, page, settle } from './helpers.js';

const { ChatWatcher } = globalThis.ConsentLedger;
const UUID = '0b6f3c1e-1111-4a2b-9c3d-123456789abc';
const OTHER = '9d8e7f6a-2222-4b3c-8d4e-abcdefabcdef';
const SYNTH_CLAUDE = (n) => `
  <header data-testid="page-header"><button data-testid="chat-title-button"><div class="truncate">Trip plans</div></button></header>
  <nav><div><a href="/chat/${OTHER}">Other chat</a><button id="row-menu">…</button></div></nav>
  <main id="thread">${Array.from({ length: n }, (_, i) => `<div class="turn"><div data-testid="user-message">question ${i}</div></div><div class="font-claude-response">answer ${i}</div>`).join('')}</main>
  <div data-testid="chat-input" contenteditable="true" role="textbox"></div>`;

function setup({ body = SYNTH_CLAUDE(2), url = `https://claude.ai/chat/${UUID}`, provider = 'claude', title = 'Trip plans - Claude', account = null } = {}) {
  const { document } = page(body, { title });
  const win = new FakeWin(url);
  const sent = [];
  let n = 0;
  const watcher = new ChatWatcher({
    adapter: ADAPTERS[provider],
    win,
    doc: document,
    send: async (msg) => { sent.push(msg); return { ok: true, badge: { text: '?', color: '#6B7280', title: 'Asking' }, hidden: false }; },
    fetchJson: account ? async () => account : null,
    now: () => win.now(),
    uuid: () => `00000000-0000-4000-8000-${String(++n).padStart(12, '0')}`,
    MutationObserverImpl: null,
  });
  const of = (type) => sent.filter((m) => m.type === type);
  return { document, win, watcher, sent, of };
}

/** Adds a user message at the end of the thread, as the site does after a send. */
function addUserMessage(document, { where = document.getElementById('thread'), attrs = 'data-testid="user-message"', tag = 'div' } = {}) {
  const el = document.createElement('div');
  el.innerHTML = `<${tag} ${attrs}>new question</${tag}>`; // test scaffolding only, not extension code
  const msg = el.firstElementChild;
  where.appendChild(msg);
  return msg;
}
const enter = (target) => ({ key: 'Enter', shiftKey: false, isComposing: false, target });

describe('ChatWatcher', () => {
  it('reports the page on start: chat id, title, incognito, no problems', async () => {
    const { watcher, of } = setup();
    watcher.start();
    await settle();
    assert.deepEqual(of('cl/page')[0].page, { chat_id: UUID, incognito: false, title: 'Trip plans', url: `https://claude.ai/chat/${UUID}`, problems: [] });
    assert.equal(of('cl/page')[0].provider, 'claude');
  });

  it('records a send: Enter in the message box, then a new user message at the end', async () => {
    const { document, win, watcher, of } = setup();
    watcher.start();
    win.advance(1000);
    watcher.onKeydown(enter(document.querySelector('[data-testid="chat-input"]')));
    const msg = addUserMessage(document);
    watcher.onMutations([{ target: msg.parentNode, addedNodes: [msg] }]);
    await settle();
    const [send] = of('cl/sent');
    assert.equal(of('cl/sent').length, 1);
    assert.deepEqual({ ...send, at: undefined }, { type: 'cl/sent', provider: 'claude', account_id: null, chat_id: UUID, incognito: false,
      title: 'Trip plans', url: `https://claude.ai/chat/${UUID}`, at: undefined });
    assert.equal(send.at, new Date(win.now()).toISOString());
  });

  it('does not take rendering for sending: no intent, older messages loaded above, re-renders', async () => {
    const { document, watcher, of } = setup();
    watcher.start();
    // a chat's history rendering, with nobody typing
    const a = addUserMessage(document);
    watcher.onMutations([{ target: a.parentNode, addedNodes: [a] }]);
    // the user presses Enter, but the new node is older history loaded at the top
    watcher.onKeydown(enter(document.querySelector('[data-testid="chat-input"]')));
    const older = document.createElement('div');
    older.setAttribute('data-testid', 'user-message');
    document.getElementById('thread').prepend(older);
    watcher.onMutations([{ target: older.parentNode, addedNodes: [older] }]);
    // Shift+Enter is a new line, not a send
    watcher.onKeydown({ ...enter(document.querySelector('[data-testid="chat-input"]')), shiftKey: true });
    await settle();
    assert.equal(of('cl/sent').length, 0);
  });

  it('chatgpt: the same message id re-rendered is not a second send', async () => {
    const body = `<main id="thread"><div data-message-author-role="user" data-message-id="m1">q</div></main><div id="prompt-textarea" contenteditable="true"></div>`;
    const { document, watcher, of } = setup({ body, provider: 'chatgpt', url: `https://chatgpt.com/c/${UUID}`, title: 'Primes' });
    watcher.start();
    watcher.onClick({ target: document.getElementById('prompt-textarea') });
    watcher.onKeydown(enter(document.getElementById('prompt-textarea')));
    const again = addUserMessage(document, { attrs: 'data-message-author-role="user" data-message-id="m1"' });
    watcher.onMutations([{ target: again.parentNode, addedNodes: [again] }]);
    await settle();
    assert.equal(of('cl/sent').length, 0);
    const fresh = addUserMessage(document, { attrs: 'data-message-author-role="user" data-message-id="m2"' });
    watcher.onMutations([{ target: fresh.parentNode, addedNodes: [fresh] }]);
    await settle();
    assert.equal(of('cl/sent').length, 1);
    assert.equal(of('cl/sent')[0].chat_id, UUID);
  });

  it("a new chat's first message waits for its id in the URL, and keeps its own time", async () => {
    const { document, win, watcher, of } = setup({ body: SYNTH_CLAUDE(0), url: 'https://claude.ai/new' });
    watcher.start();
    watcher.onKeydown(enter(document.querySelector('[data-testid="chat-input"]')));
    const sentAt = win.now();
    const msg = addUserMessage(document);
    watcher.onMutations([{ target: msg.parentNode, addedNodes: [msg] }]);
    await settle();
    assert.equal(of('cl/sent').length, 0);
    win.advance(1500);
    win.location.href = `https://claude.ai/chat/${UUID}`;
    watcher.onMutations([]);
    await settle();
    assert.equal(of('cl/sent').length, 1);
    assert.equal(of('cl/sent')[0].chat_id, UUID);
    assert.equal(of('cl/sent')[0].at, new Date(sentAt).toISOString());
    assert.equal(of('cl/page').at(-1).page.chat_id, UUID);
  });

  it('a temporary chat whose id never reaches the URL gets temporary-<uuid>, kept for the tab', async () => {
    const body = '<main id="thread"></main><div id="prompt-textarea" contenteditable="true"></div>';
    const { document, win, watcher, of } = setup({ body, provider: 'chatgpt', url: 'https://chatgpt.com/?temporary-chat=true', title: 'ChatGPT' });
    watcher.start();
    for (let i = 0; i < 2; i++) {
      watcher.onKeydown(enter(document.getElementById('prompt-textarea')));
      const msg = addUserMessage(document, { attrs: `data-message-author-role="user" data-message-id="t${i}"` });
      watcher.onMutations([{ target: msg.parentNode, addedNodes: [msg] }]);
      win.advance(5000);
      await settle();
    }
    const sends = of('cl/sent');
    assert.equal(sends.length, 2);
    assert.match(sends[0].chat_id, /^temporary-[0-9a-f-]{36}$/);
    assert.equal(sends[1].chat_id, sends[0].chat_id);
    assert.ok(sends.every((s) => s.incognito === true));
    assert.ok(ADAPTERS.chatgpt.isChatId(sends[0].chat_id));
  });

  it('reads the incognito marker again after other clicks, not after clicks in the message box or on send', async () => {
    const body = `${SYNTH_CLAUDE(2)}<button aria-label="Send message">Send</button><button id="ghost">Incognito</button>`;
    const { document, watcher } = setup({ body });
    const reads = [];
    watcher.adapter = { ...ADAPTERS.claude, incognito: (url, doc) => { reads.push(url); return ADAPTERS.claude.incognito(url, doc); } };
    watcher.start();
    const click = (el) => watcher.onClick({ target: el });
    watcher.currentIncognito();
    const before = reads.length;
    click(document.querySelector('[data-testid="chat-input"]'));
    click(document.querySelector('button[aria-label="Send message"]'));
    watcher.currentIncognito();
    assert.equal(reads.length, before, 'no re-read after clicks on the composer and send');
    click(document.getElementById('ghost'));
    document.body.insertAdjacentHTML('beforeend', '<div data-testid="incognito-chat-label">Incognito chat</div>'); // test scaffolding
    assert.equal(watcher.currentIncognito(), true);
    assert.equal(reads.length, before + 1);
  });

  it('an incognito claude chat stays incognito after its URL changes to /chat/<id>', async () => {
    const { document, win, watcher, of } = setup({ body: SYNTH_CLAUDE(0), url: 'https://claude.ai/new?incognito' });
    watcher.start();
    watcher.onKeydown(enter(document.querySelector('[data-testid="chat-input"]')));
    const msg = addUserMessage(document);
    watcher.onMutations([{ target: msg.parentNode, addedNodes: [msg] }]);
    win.location.href = `https://claude.ai/chat/${UUID}`;
    watcher.onMutations([]);
    await settle();
    assert.equal(of('cl/sent')[0].incognito, true);
    assert.equal(of('cl/page').at(-1).page.incognito, true);
  });

  it('reports feedback on replies', async () => {
    const body = `${SYNTH_CLAUDE(1)}<button aria-label="Give negative feedback"><svg></svg></button>`;
    const { document, watcher, of } = setup({ body });
    watcher.start();
    watcher.onClick({ target: document.querySelector('button[aria-label="Give negative feedback"] svg') });
    await settle();
    assert.deepEqual(of('cl/feedback').map((m) => [m.chat_id, m.rating]), [[UUID, 'down']]);
  });

  it('a delete confirmation refers to the sidebar row whose menu was opened, else the open chat', async () => {
    const body = `${SYNTH_CLAUDE(1)}<div role="dialog"><button id="confirm">Delete</button></div>`;
    const { document, watcher, of } = setup({ body });
    watcher.start();
    watcher.onClick({ target: document.getElementById('row-menu') });
    watcher.onClick({ target: document.getElementById('confirm') });
    watcher.onClick({ target: document.querySelector('[data-testid="chat-title-button"]') });
    watcher.onClick({ target: document.getElementById('confirm') });
    await settle();
    assert.deepEqual(of('cl/deleted').map((m) => m.chat_id), [OTHER, UUID]);
  });

  it('sends the account first, and its id with every observation', async () => {
    const account = { uuid: '4f1c2d3e-0000-4000-8000-123456789abc', email_address: 'me@example.com',
      settings: { grove_enabled: true }, memberships: [{ organization: { capabilities: ['chat', 'claude_max'] } }] };
    const { sent, watcher } = setup({ account });
    watcher.start();
    await settle();
    await settle();
    assert.equal(sent[0].type, 'cl/account');
    assert.deepEqual([sent[0].training, sent[0].plan, sent[0].account_id], [true, 'max', account.uuid]);
    assert.ok(sent.every((m) => m.account_id === account.uuid));
    assert.ok(!JSON.stringify(sent).includes('example.com'));
  });

  it('says so when the adapter finds nothing on a chat page', { skip: !fixture('claude-artifacts.html') }, async () => {
    const { win, watcher, of } = setup({ body: fixture('claude-artifacts.html') });
    watcher.start();
    win.advance(5000);
    await settle();
    const problems = of('cl/page').at(-1).page.problems;
    assert.ok(problems.some((p) => /message box/.test(p)));
    assert.ok(problems.some((p) => /no messages/.test(p)));
  });

  it('costs under 5 ms per observed send on a chat of 500 messages', async (t) => {
    const { document, win, watcher, of } = setup({ body: SYNTH_CLAUDE(500) });
    watcher.start();
    const composer = document.querySelector('[data-testid="chat-input"]');
    const times = [];
    for (let i = 0; i < 20; i++) {
      win.advance(1000);
      const msg = document.createElement('div');
      msg.setAttribute('data-testid', 'user-message');
      const turn = document.createElement('div');
      turn.appendChild(msg);
      const t0 = performance.now();
      watcher.onKeydown(enter(composer));
      document.getElementById('thread').appendChild(turn);
      watcher.onMutations([{ target: turn.parentNode, addedNodes: [turn] }]);
      times.push(performance.now() - t0);
    }
    await settle();
    assert.equal(of('cl/sent').length, 20);
    times.sort((a, b) => a - b);
    const median = times[10];
    t.diagnostic(`median ${median.toFixed(3)} ms, worst ${times[19].toFixed(3)} ms per send (linkedom, slower than a browser)`);
    assert.ok(median < 5, `median ${median.toFixed(3)} ms per send`);
  });

  it('puts the in-page badge after the chat title, as text only, and hides it on request', async () => {
    const { document, watcher } = setup();
    watcher.start();
    await settle();
    const host = document.querySelector('[data-consent-ledger-badge]');
    assert.ok(host, 'badge rendered from the answer to cl/page');
    assert.equal(host.previousElementSibling, document.querySelector('[data-testid="chat-title-button"]'));
    watcher.showBadge({ text: 'T', color: '#B45309', title: '<img src=x onerror=alert(1)>' }, false);
    assert.equal(document.querySelector('img'), null);
    watcher.showBadge({ text: 'T', color: '#B45309', title: 'x' }, true);
    assert.equal(document.querySelector('[data-consent-ledger-badge]'), null);
  });
});

describe('ChatWatcher: the training setting', () => {
  it("re-reads claude's account after a click in its consent prompt, as choice_prompt", async () => {
    const reads = [];
    const answers = [{ uuid: '4f1c2d3e-0000-4000-8000-123456789abc', settings: { grove_enabled: null } },
      { uuid: '4f1c2d3e-0000-4000-8000-123456789abc', settings: { grove_enabled: false } }];
    const body = `${SYNTH_CLAUDE(1)}<div role="dialog"><h2>Help improve Claude</h2><button id="no">Not now</button></div>`;
    const { document } = page(body, { title: 'Claude' });
    const win = new FakeWin(`https://claude.ai/chat/${UUID}`);
    const sent = [];
    const watcher = new ChatWatcher({ adapter: ADAPTERS.claude, win, doc: document, MutationObserverImpl: null, now: () => win.now(),
      send: async (m) => { sent.push(m); return null; }, fetchJson: async (path) => { reads.push(path); return answers[reads.length - 1]; } });
    watcher.start();
    await settle();
    watcher.onClick({ target: document.getElementById('no') });
    win.advance(2000);
    await settle();
    await settle();
    const accounts = sent.filter((m) => m.type === 'cl/account');
    assert.deepEqual(reads, ['/api/account', '/api/account']);
    assert.deepEqual(accounts.map((m) => [m.training, m.source]), [[null, 'settings_page'], [false, 'choice_prompt']]);
  });
});

describe('ChatWatcher: the in-page badge', () => {
  it('is not shown on pages without a chat', async () => {
    const { document, watcher } = setup({ url: 'https://claude.ai/settings/account' });
    watcher.start();
    await settle();
    watcher.showBadge({ text: '!', color: '#B91C1C', title: 'Consent Ledger server not paired' }, false);
    assert.equal(document.querySelector('[data-consent-ledger-badge]'), null);
  });
});
