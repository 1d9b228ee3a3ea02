/**
 * Events of CONTRACT.md section 1, built and checked before they enter the outbox.
 *
 * The server refuses unknown fields and validates every field; checking here too means a
 * bad event is caught where it is made (with the observation that caused it), instead of
 * blocking a whole batch later. Ids are random and made once, when the event is queued, so
 * every retry of a batch carries the same ids and the server stores each event once.
 */

import { randomBytes, toHex } from './bytes.js';

export const PROVIDERS = ['claude', 'chatgpt', 'gemini'];
export const PLANS = {
  claude: ['free', 'pro', 'max', 'team', 'enterprise', 'education', 'gov', 'api'],
  chatgpt: ['free', 'plus', 'pro', 'business', 'team', 'enterprise', 'education', 'api'],
  gemini: ['free', 'pro', 'ultra', 'workspace'],
};
export const CONSENT_SOURCES = ['settings_page', 'choice_prompt', 'user_declared', 'import'];

const ID = /^[A-Za-z0-9_-]{8,64}$/;
const AT = /^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$/;

export class EventError extends Error {
  constructor(field, message) {
    super(`${field}: ${message}`);
    this.field = field;
  }
}

/** A fresh event id: "x" + 32 hex characters of randomness (matches [A-Za-z0-9_-]{8,64}). */
export function newEventId(crypto = globalThis.crypto) {
  return `x${toHex(randomBytes(16, crypto))}`;
}

/** RFC 3339 UTC with milliseconds, e.g. 2025-10-02T09:30:00.123Z. */
export function rfc3339(date) {
  const d = date instanceof Date ? date : new Date(date);
  if (Number.isNaN(d.getTime())) throw new EventError('at', 'not a time');
  return d.toISOString();
}

const str = (min, max) => (v) => (typeof v === 'string' && v.length >= min && v.length <= max
  ? null : `must be a string of ${min} to ${max} characters`);
const oneOf = (...allowed) => (v) => (allowed.includes(v) ? null : `must be one of ${allowed.join(', ')}`);
const bool = (v) => (typeof v === 'boolean' ? null : 'must be true or false');
const planOf = (v, ev) => ((PLANS[ev.provider] || []).includes(v)
  ? null : `is not a ${ev.provider} plan`);
const atCheck = (v) => {
  const m = typeof v === 'string' && AT.exec(v);
  if (!m) return 'must be an RFC 3339 date-time with a zone';
  const [, y, mo, d, h, mi, s] = m.map(Number);
  const probe = new Date(Date.UTC(y, mo - 1, d, h, mi, s));
  if (probe.getUTCFullYear() !== y || probe.getUTCMonth() !== mo - 1 || probe.getUTCDate() !== d
    || h > 23 || mi > 59 || s > 59) return 'is not a real date-time';
  return null;
};

const ENVELOPE = {
  v: [(v) => (v === 1 ? null : 'must be 1'), true],
  id: [(v) => (typeof v === 'string' && ID.test(v) ? null : 'must be 8-64 characters of A-Z a-z 0-9 _ -'), true],
  type: [oneOf('consent.set', 'plan.set', 'chat.activity', 'chat.deleted', 'chat.feedback', 'chat.seen'), true],
  at: [atCheck, true],
  provider: [oneOf(...PROVIDERS), true],
  account: [str(1, 128), false],
};
const chatId = str(1, 200);
const FIELDS = {
  'consent.set': {
    setting: [oneOf('model_training'), true], value: [bool, true],
    source: [oneOf(...CONSENT_SOURCES), true],
  },
  'plan.set': { plan: [planOf, true] },
  'chat.activity': {
    chat_id: [chatId, true], kind: [oneOf('chat', 'code'), true], incognito: [bool, true],
    title: [str(0, 1000), false], url: [str(0, 2000), false],
    messages: [(v) => (Number.isInteger(v) && v >= 1 ? null : 'must be a whole number >= 1'), false],
    plan: [planOf, false],
  },
  'chat.deleted': { chat_id: [chatId, true] },
  'chat.feedback': { chat_id: [chatId, true], rating: [oneOf('up', 'down'), true] },
  'chat.seen': {
    chat_id: [chatId, true], title: [str(0, 1000), false], url: [str(0, 2000), false],
    incognito: [bool, false],
  },
};

/** Throws EventError naming the first bad field; returns the event unchanged when fine. */
export function validateEvent(ev) {
  if (!ev || typeof ev !== 'object' || Array.isArray(ev)) throw new EventError('event', 'must be an object');
  for (const [name, [check, required]] of Object.entries(ENVELOPE)) {
    if (!(name in ev)) {
      if (required) throw new EventError(name, 'is missing');
      continue;
    }
    const problem = check(ev[name], ev);
    if (problem) throw new EventError(name, problem);
  }
  const fields = FIELDS[ev.type];
  for (const [name, [check, required]] of Object.entries(fields)) {
    if (!(name in ev)) {
      if (required) throw new EventError(name, 'is missing');
      continue;
    }
    const problem = check(ev[name], ev);
    if (problem) throw new EventError(name, problem);
  }
  for (const name of Object.keys(ev)) {
    if (!(name in ENVELOPE) && !(name in fields)) throw new EventError(name, 'is not a field of this event');
  }
  return ev;
}

const clip = (text, max) => (typeof text === 'string' ? text.slice(0, max) : undefined);

/**
 * Builds one event. `fields` holds the type's own fields; optional ones that are undefined or
 * null are left out, titles and URLs are clipped to the schema's lengths.
 */
export function buildEvent(type, { provider, account, at, id = newEventId() }, fields = {}) {
  const ev = { v: 1, id, type, at: rfc3339(at), provider, account };
  for (const [name, value] of Object.entries(fields)) {
    if (value === undefined || value === null) continue;
    if (name === 'title') ev.title = clip(value, 1000);
    else if (name === 'url') ev.url = clip(value, 2000);
    else ev[name] = value;
  }
  return validateEvent(ev);
}

/** A chat URL for the ledger: origin and path only, never the query (claude's ?q= holds a prompt). */
export function ledgerUrl(url) {
  try {
    const u = new URL(url);
    return `${u.origin}${u.pathname}`;
  } catch {
    return undefined;
  }
}
