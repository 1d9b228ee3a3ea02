/**
 * Test helpers: a small DOM (linkedom), the captured provider pages (by path, skipped when
 * absent), a fake window with hand-driven timers, a fake ledger server that signs its hello
 * with a real Ed25519 key, and fakes of the chrome.* APIs the worker uses.
 */

import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseHTML } from 'linkedom';

import { toBase64, utf8 } from '../lib/bytes.js';
import { HELLO_PREFIX } from '../lib/hello.js';
import { MemoryArea, Store } from '../lib/store.js';

export const HERE = dirname(fileURLToPath(import.meta.url));
export const EXTENSION = join(HERE, '..');
export const REPO = join(EXTENSION, '..');
export const FIXTURES = process.env.CONSENT_LEDGER_FIXTURES
  || [join(REPO, '..', 'shared', 'fixtures', 'pages'), '/work/shared/fixtures/pages'].find((p) => existsSync(p));

/** A captured page's HTML, or null when the fixtures folder is not there. */
export function fixture(name) {
  if (!FIXTURES || !existsSync(join(FIXTURES, name))) return null;
  return readFileSync(join(FIXTURES, name), 'utf8');
}

// linkedom's Node#compareDocumentPosition compares tree depths only (wrong for a node in a
// later subtree); browsers follow the DOM spec. Give the test DOM the spec's answer for
// connected nodes, so tests see what a browser would.
{
  const { document } = parseHTML('<html><body></body></html>');

  let proto = document.body;
  while (proto && !Object.prototype.hasOwnProperty.call(proto, 'compareDocumentPosition')) proto = Object.getPrototypeOf(proto);
  const original = proto.compareDocumentPosition;
  const chain = (n) => { const out = []; for (; n; n = n.parentNode) out.unshift(n); return out; };
  proto.compareDocumentPosition = function compareDocumentPosition(other) {
    if (this === other) return 0;
    const a = chain(this);
    const b = chain(other);
    if (a[0] !== b[0]) return original.call(this, other);
    let i = 0;
    while (i < a.length && i < b.length && a[i] === b[i]) i++;
    if (i === a.length) return 4 + 16; // other is inside this: FOLLOWING | CONTAINED_BY
    if (i === b.length) return 2 + 8; // this is inside other: PRECEDING | CONTAINS
    const siblings = [...a[i - 1].childNodes];
    return siblings.indexOf(a[i]) < siblings.indexOf(b[i]) ? 4 : 2;
  };

}

/** A document from a body fragment, wrapped in a page shell with the given <title>. */
export function page(body, { title = '' } = {}) {
  const { document, window } = parseHTML(`<!doctype html><html><head><title>${title}</title></head><body>${body}</body></html>`);
  return { document, window };
}

/** A fake window: location, listeners, and timers that run only when the test says so. */
export class FakeWin {
  constructor(href) {
    this.location = { href };
    this.timers = new Map();
    this.nextId = 1;
    this.clock = 1_760_000_000_000;
    this.listeners = {};
  }

  now() { return this.clock; }

  setTimeout(fn, ms, ...args) {
    const id = this.nextId++;
    this.timers.set(id, { fn, at: this.clock + ms, args });
    return id;
  }

  clearTimeout(id) { this.timers.delete(id); }

  addEventListener(type, fn) { (this.listeners[type] ||= []).push(fn); }

  removeEventListener(type, fn) { this.listeners[type] = (this.listeners[type] || []).filter((f) => f !== fn); }

  /** Moves the clock forward and runs the timers that came due. */
  advance(ms) {
    this.clock += ms;
    for (const [id, t] of [...this.timers].sort((a, b) => a[1].at - b[1].at)) {
      if (t.at <= this.clock && this.timers.has(id)) {
        this.timers.delete(id);
        t.fn(...t.args);
      }
    }
  }
}

/** Lets pending promise callbacks run. */
export const settle = () => new Promise((r) => setImmediate(r));

export async function ed25519() {
  const { subtle } = globalThis.crypto;
  const keys = await subtle.generateKey({ name: 'Ed25519' }, true, ['sign', 'verify']);
  const raw = new Uint8Array(await subtle.exportKey('raw', keys.publicKey));
  return { keys, publicB64: toBase64(raw), sign: async (text) => toBase64(new Uint8Array(await subtle.sign({ name: 'Ed25519' }, keys.privateKey, utf8(text)))) };
}

/**
 * A fake Consent Ledger server behind a fetch function, keeping to CONTRACT.md section 2.
 * `down` makes every call fail like a refused connection; `impostor` signs hellos with
 * another key than the one handed out at pairing.
 */
export class FakeServer {
  static async create() {
    const s = new FakeServer();
    s.key = await ed25519();
    s.other = await ed25519();
    return s;
  }

  constructor() {
    this.requests = [];
    this.events = new Map();
    this.down = false;
    this.impostor = false;
    this.code = 'ABCD2345';
    this.token = 't'.repeat(43);
    this.salt = 'ab'.repeat(32);
    this.statuses = new Map();
    this.refuseIndex = null;
    this.fetch = this.fetch.bind(this);
  }

  async fetch(url, init = {}) {
    const u = new URL(url);
    const headers = init.headers || {};
    this.requests.push({ method: init.method || 'GET', path: u.pathname, search: u.search, headers, body: init.body });
    if (this.down) throw new TypeError('Failed to fetch');
    const json = (status, body) => ({ ok: status >= 200 && status < 300, status, json: async () => body });
    const authed = headers.Authorization === `Bearer ${this.token}`;
    if (u.pathname === '/api/v1/pair' && init.method === 'POST') {
      const { code } = JSON.parse(init.body);
      if (code !== this.code) return json(400, { error: 'bad code', field: 'code', index: null });
      return json(200, { token: this.token, account_salt: this.salt, server_key: this.key.publicB64 });
    }
    if (u.pathname === '/api/v1/hello') {
      const nonce = u.searchParams.get('nonce');
      const signer = this.impostor ? this.other : this.key;
      return json(200, { server_key: this.key.publicB64, signature: await signer.sign(`${HELLO_PREFIX}${nonce}`) });
    }
    if (!authed) return json(401, { error: 'no token' });
    if (u.pathname === '/api/v1/events' && init.method === 'POST') {
      if (headers['Content-Type'] !== 'application/json') return json(415, { error: 'json only' });
      const { events } = JSON.parse(init.body);
      if (this.refuseIndex !== null && events[this.refuseIndex]) {
        const index = this.refuseIndex;
        this.refuseIndex = null;
        return json(400, { error: 'bad', field: 'chat_id', index });
      }
      let stored = 0;
      let duplicates = 0;
      for (const ev of events) {
        if (this.events.has(ev.id)) duplicates += 1;
        else { this.events.set(ev.id, ev); stored += 1; }
      }
      return json(200, { stored, duplicates, head: 'h', checkpoint: { seq: this.events.size, head: 'h', signature: 's' } });
    }
    const chat = /^\/api\/v1\/chats\/([^/]+)\/([^/]+)$/.exec(u.pathname);
    if (chat) {
      const status = this.statuses.get(`${chat[1]}/${decodeURIComponent(chat[2])}`);
      return status ? json(200, status) : json(404, { error: 'not found' });
    }
    return json(404, { error: 'no route' });
  }

  tokenSeenBy(pathPrefix) {
    return this.requests.some((r) => r.path.startsWith(pathPrefix) && r.headers.Authorization);
  }
}

/** Fakes of chrome.action and chrome.tabs that record what the worker did. */
export function fakeBrowser() {
  const badges = new Map();
  const sent = [];
  const set = (tabId, field, value) => badges.set(tabId, { ...(badges.get(tabId) || {}), [field]: value });
  return {
    badges,
    sent,
    action: {
      setBadgeText: async ({ tabId, text }) => set(tabId, 'text', text),
      setBadgeBackgroundColor: async ({ tabId, color }) => set(tabId, 'color', color),
      setBadgeTextColor: async () => {},
      setTitle: async ({ tabId, title }) => set(tabId, 'title', title),
    },
    tabs: { sendMessage: async (tabId, msg) => { sent.push({ tabId, msg }); } },
  };
}

export function stores(local = new MemoryArea(), session = new MemoryArea()) {
  return { localArea: local, sessionArea: session, local: new Store(local), session: new Store(session) };
}
