import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';

import { EventError, buildEvent, ledgerUrl, newEventId, rfc3339, validateEvent } from '../lib/events.js';
import { REPO } from './helpers.js';

const base = { provider: 'claude', account: 'default', at: Date.UTC(2025, 9, 2, 9, 30) };
const CHAT = '0b6f3c1e-1111-4a2b-9c3d-123456789abc';

describe('events', () => {
  it('makes ids the server accepts, different every time', () => {
    const a = newEventId();
    assert.match(a, /^[A-Za-z0-9_-]{8,64}$/);
    assert.notEqual(a, newEventId());
  });

  it('builds every type with only its own fields', () => {
    const cases = [
      ['consent.set', { setting: 'model_training', value: false, source: 'settings_page' }],
      ['plan.set', { plan: 'pro' }],
      ['chat.activity', { chat_id: CHAT, kind: 'chat', incognito: false, title: 'T', url: 'https://claude.ai/chat/x', messages: 1 }],
      ['chat.deleted', { chat_id: CHAT }],
      ['chat.feedback', { chat_id: CHAT, rating: 'down' }],
      ['chat.seen', { chat_id: CHAT, title: 'T', incognito: true }],
    ];
    for (const [type, fields] of cases) {
      const ev = buildEvent(type, base, fields);
      assert.equal(ev.v, 1);
      assert.equal(ev.type, type);
      assert.equal(ev.at, '2025-10-02T09:30:00.000Z');
      assert.deepEqual(Object.keys(ev).sort(), ['v', 'id', 'type', 'at', 'provider', 'account', ...Object.keys(fields)].sort());
    }
  });

  it('leaves out optional fields that are null or undefined, and clips long titles', () => {
    const ev = buildEvent('chat.activity', base, { chat_id: CHAT, kind: 'chat', incognito: false, title: 'x'.repeat(5000), url: undefined, plan: null });
    assert.equal(ev.title.length, 1000);
    assert.ok(!('url' in ev) && !('plan' in ev));
  });

  it('refuses what the server would refuse, naming the field', () => {
    const bad = [
      [{ ...buildEvent('chat.deleted', base, { chat_id: CHAT }), text: 'hello' }, 'text'],
      [{ ...buildEvent('chat.deleted', base, { chat_id: CHAT }), id: 'short' }, 'id'],
      [{ ...buildEvent('chat.deleted', base, { chat_id: CHAT }), at: '2025-02-30T00:00:00Z' }, 'at'],
      [{ ...buildEvent('chat.deleted', base, { chat_id: CHAT }), at: '2025-02-03T00:00:00' }, 'at'],
      [{ ...buildEvent('chat.deleted', base, { chat_id: CHAT }), provider: 'bard' }, 'provider'],
      [{ ...buildEvent('chat.deleted', base, { chat_id: CHAT }), chat_id: '' }, 'chat_id'],
      [{ ...buildEvent('chat.deleted', base, { chat_id: CHAT }), account: '' }, 'account'],
    ];
    for (const [ev, field] of bad) {
      assert.throws(() => validateEvent(ev), (err) => err instanceof EventError && err.field === field, field);
    }
    assert.throws(() => buildEvent('plan.set', base, { plan: 'plus' }), /plan/); // a chatgpt plan, not claude's
    assert.throws(() => buildEvent('chat.feedback', base, { chat_id: CHAT, rating: 'meh' }), /rating/);
    assert.throws(() => buildEvent('consent.set', base, { setting: 'model_training', value: null, source: 'import' }), /value/);
  });

  it('keeps the query out of URLs (claude puts prompts in ?q=)', () => {
    assert.equal(ledgerUrl('https://claude.ai/new?q=my%20secret#x'), 'https://claude.ai/new');
    assert.equal(ledgerUrl('not a url'), undefined);
    assert.equal(rfc3339(new Date(Date.UTC(2026, 0, 1))), '2026-01-01T00:00:00.000Z');
  });

  it("uses no field the project's own event schema does not list", { skip: !existsSync(join(REPO, 'auditor/schemas/event.schema.json')) }, () => {
    const schema = JSON.parse(readFileSync(join(REPO, 'auditor/schemas/event.schema.json'), 'utf8'));
    const envelope = Object.keys(schema.properties);
    const byType = {};
    for (const rule of schema.allOf) {
      const t = rule.if.properties.type.const;
      if (t) byType[t] = Object.keys(rule.then.properties);
    }
    const samples = {
      'consent.set': { setting: 'model_training', value: true, source: 'user_declared' },
      'plan.set': { plan: 'max' },
      'chat.activity': { chat_id: CHAT, kind: 'chat', incognito: true, title: 't', url: 'u', messages: 2 },
      'chat.deleted': { chat_id: CHAT },
      'chat.feedback': { chat_id: CHAT, rating: 'up' },
      'chat.seen': { chat_id: CHAT, title: 't', url: 'u', incognito: false },
    };
    for (const [type, fields] of Object.entries(samples)) {
      const ev = buildEvent(type, base, fields);
      for (const k of Object.keys(ev)) assert.ok(envelope.includes(k) || byType[type].includes(k), `${type}.${k}`);
    }
  });
});
