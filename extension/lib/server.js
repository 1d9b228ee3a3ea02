/**
 * The HTTP calls of CONTRACT.md section 2 that the extension makes, and nothing else. Only
 * the background worker uses this module: content scripts never talk to the server, and the
 * token never leaves the worker.
 */

export const DEFAULT_SERVER = 'http://127.0.0.1:8765';
const TIMEOUT_MS = 10_000;

/** The server could not be reached (refused, timed out, not HTTP). */
export class Unreachable extends Error {}

/** The server answered with an error status; `status` and `body` say what. */
export class Refused extends Error {
  constructor(status, body) {
    super(`HTTP ${status}${body && body.error ? `: ${body.error}` : ''}`);
    this.status = status;
    this.body = body;
  }
}

/**
 * Normalises a server address typed by the user. Only http on 127.0.0.1 or localhost with a
 * port is accepted: those are the only servers the extension has host permission for, and the
 * ledger binds loopback only. Returns the origin (no trailing slash) or throws TypeError.
 */
export function parseServerAddress(text) {
  let u;
  try {
    u = new URL(String(text).trim());
  } catch {
    throw new TypeError('not an address (e.g. http://127.0.0.1:8765)');
  }
  if (u.protocol !== 'http:' || !['127.0.0.1', 'localhost'].includes(u.hostname)) {
    throw new TypeError('the server must be http://127.0.0.1:PORT or http://localhost:PORT');
  }
  if (u.username || u.password || (u.pathname !== '/' && u.pathname !== '') || u.search || u.hash) {
    throw new TypeError('give only the address and port, e.g. http://127.0.0.1:8765');
  }
  return u.origin;
}

export class LedgerServer {
  constructor(origin, { fetch = globalThis.fetch.bind(globalThis), timeoutMs = TIMEOUT_MS } = {}) {
    this.origin = parseServerAddress(origin);
    this.fetch = fetch;
    this.timeoutMs = timeoutMs;
  }

  async call(method, path, { token, body } = {}) {
    const headers = { Accept: 'application/json' };
    if (token) headers.Authorization = `Bearer ${token}`;
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    let res;
    try {
      res = await this.fetch(`${this.origin}${path}`, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        credentials: 'omit',
        cache: 'no-store',
        redirect: 'error',
        signal: AbortSignal.timeout(this.timeoutMs),
      });
    } catch (err) {
      throw new Unreachable(`server not reachable at ${this.origin} (${err && err.name})`);
    }
    let json = null;
    try {
      json = await res.json();
    } catch {
      json = null;
    }
    if (!res.ok) throw new Refused(res.status, json);
    if (json === null || typeof json !== 'object') throw new Refused(res.status, { error: 'answer is not JSON' });
    return json;
  }

  /** POST /api/v1/pair {code} -> {token, account_salt, server_key}, shapes checked. */
  async pair(code) {
    const got = await this.call('POST', '/api/v1/pair', { body: { code } });
    if (typeof got.token !== 'string' || got.token.length < 16
      || typeof got.account_salt !== 'string' || !/^[0-9a-fA-F]{64}$/.test(got.account_salt)
      || typeof got.server_key !== 'string') {
      throw new Refused(200, { error: 'the pairing answer is missing token, account_salt or server_key' });
    }
    return { token: got.token, account_salt: got.account_salt.toLowerCase(), server_key: got.server_key };
  }

  hello(nonce) {
    return this.call('GET', `/api/v1/hello?nonce=${nonce}`);
  }

  postEvents(token, events) {
    return this.call('POST', '/api/v1/events', { token, body: { events } });
  }

  /** The chat's status, or null when the ledger has never seen it (404). */
  async chat(token, provider, chatId) {
    try {
      return await this.call('GET', `/api/v1/chats/${encodeURIComponent(provider)}/${encodeURIComponent(chatId)}`, { token });
    } catch (err) {
      if (err instanceof Refused && err.status === 404) return null;
      throw err;
    }
  }
}
