import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { describe, it } from 'node:test';

import { accountLabel } from '../lib/account.js';

const SALT = '00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff';

describe('account label (CONTRACT section 1)', () => {
  it('is the hex of the first 16 bytes of HMAC-SHA256(salt, "<provider>:<id>")', async () => {
    const expected = createHmac('sha256', Buffer.from(SALT, 'hex')).update('claude:4f1c2d3e-0000-4000-8000-123456789abc').digest().subarray(0, 16).toString('hex');
    assert.equal(await accountLabel(SALT, 'claude', '4f1c2d3e-0000-4000-8000-123456789abc'), expected);
    assert.match(expected, /^[0-9a-f]{32}$/);
  });

  it('differs per provider for the same id', async () => {
    assert.notEqual(await accountLabel(SALT, 'claude', 'x'), await accountLabel(SALT, 'chatgpt', 'x'));
  });

  it('is "default" for gemini and for an unknown id, hashed never', async () => {
    assert.equal(await accountLabel(SALT, 'gemini', 'someone'), 'default');
    assert.equal(await accountLabel(SALT, 'claude', null), 'default');
    assert.equal(await accountLabel(SALT, 'chatgpt', ''), 'default');
  });

  it('refuses a salt that is not 32 bytes of hex', async () => {
    await assert.rejects(accountLabel('abcd', 'claude', 'x'), /64 hex/);
  });
});
