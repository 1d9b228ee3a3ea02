import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { LedgerServer, Refused, Unreachable, parseServerAddress } from '../lib/server.js';
import { FakeServer } from './helpers.js';

describe('server address', () => {
  it('accepts loopback http with a port, returns the origin', () => {
    assert.equal(parseServerAddress('http://127.0.0.1:8765/'), 'http://127.0.0.1:8765');
    assert.equal(parseServerAddress(' http://localhost:9000 '), 'http://localhost:9000');
  });

  it('refuses anything the extension has no permission for or that is not loopback', () => {
    for (const bad of ['https://127.0.0.1:8765', 'http://example.com:8765', 'http://192.168.1.2:8765',
      'http://[::1]:8765', 'http://127.0.0.1:8765/api', 'http://u:p@127.0.0.1:8765', 'nonsense']) {
      assert.throws(() => parseServerAddress(bad), TypeError, bad);
    }
  });
});

describe('LedgerServer calls (CONTRACT section 2)', () => {
  it('pairs, posts events with the bearer token and JSON, reads a chat, maps 404 to null', async () => {
    const fake = await FakeServer.create();
    const api = new LedgerServer('http://127.0.0.1:8765', { fetch: fake.fetch });
    const paired = await api.pair(fake.code);
    assert.deepEqual(Object.keys(paired).sort(), ['account_salt', 'server_key', 'token']);
    await api.postEvents(paired.token, [{ id: 'event-0001' }]);
    const post = fake.requests.find((r) => r.path === '/api/v1/events');
    assert.equal(post.headers.Authorization, `Bearer ${fake.token}`);
    assert.equal(post.headers['Content-Type'], 'application/json');
    assert.equal(await api.chat(paired.token, 'claude', 'a/b'), null);
    assert.ok(fake.requests.at(-1).path.endsWith('/claude/a%2Fb'));
    const pairCall = fake.requests.find((r) => r.path === '/api/v1/pair');
    assert.equal(pairCall.headers.Authorization, undefined);
  });

  it('tells a stopped server (Unreachable) from a refusal (Refused with status)', async () => {
    const fake = await FakeServer.create();
    const api = new LedgerServer('http://127.0.0.1:8765', { fetch: fake.fetch });
    await assert.rejects(api.pair('WRONG-CODE'), (e) => e instanceof Refused && e.status === 400);
    await assert.rejects(api.postEvents('nope', []), (e) => e instanceof Refused && e.status === 401);
    fake.down = true;
    await assert.rejects(api.hello('00'.repeat(16)), Unreachable);
  });
});
