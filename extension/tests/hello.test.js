import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { HELLO_PREFIX, UntrustedServer, makeNonce, verifyHello } from '../lib/hello.js';
import { ed25519 } from './helpers.js';

describe('server identity (hello, SECURITY row 11)', () => {
  it('accepts the paired key signing "consent-ledger/hello/v1:" + nonce', async () => {
    const k = await ed25519();
    const nonce = makeNonce();
    assert.match(nonce, /^[0-9a-f]{32}$/);
    const answer = { server_key: k.publicB64, signature: await k.sign(`${HELLO_PREFIX}${nonce}`) };
    assert.equal(await verifyHello({ serverKey: k.publicB64, nonce, answer }), true);
  });

  it('refuses a squatter: another key, a replayed nonce, a bad or missing signature', async () => {
    const real = await ed25519();
    const fake = await ed25519();
    const nonce = makeNonce();
    const cases = {
      'signed by another key': { server_key: real.publicB64, signature: await fake.sign(`${HELLO_PREFIX}${nonce}`) },
      'presents another key': { server_key: fake.publicB64, signature: await fake.sign(`${HELLO_PREFIX}${nonce}`) },
      'signature of an old nonce': { server_key: real.publicB64, signature: await real.sign(`${HELLO_PREFIX}${makeNonce()}`) },
      'signature without the prefix': { server_key: real.publicB64, signature: await real.sign(nonce) },
      'short signature': { server_key: real.publicB64, signature: 'AAAA' },
      'no signature': { server_key: real.publicB64 },
      'no answer': null,
    };
    for (const [name, answer] of Object.entries(cases)) {
      await assert.rejects(verifyHello({ serverKey: real.publicB64, nonce, answer }), UntrustedServer, name);
    }
  });

  it('refuses a pinned key that is not a 32-byte Ed25519 key', async () => {
    await assert.rejects(verifyHello({ serverKey: 'AAAA', nonce: makeNonce(), answer: { server_key: 'AAAA', signature: 'x' } }), /32-byte/);
  });

  it('says so when the browser has no Ed25519', async () => {
    const k = await ed25519();
    const nonce = makeNonce();
    const answer = { server_key: k.publicB64, signature: await k.sign(`${HELLO_PREFIX}${nonce}`) };
    const subtle = { importKey: async () => { throw new Error('NotSupportedError'); } };
    await assert.rejects(verifyHello({ serverKey: k.publicB64, nonce, answer, subtle }), /cannot check Ed25519/);
  });
});
