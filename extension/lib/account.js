/**
 * The account label of CONTRACT.md section 1: hex of the first 16 bytes of
 * HMAC-SHA256(account_salt, "<provider>:<account id>"), so the extension and the importers
 * agree on a label and the raw id is never stored. Gemini, and any account whose id is not
 * known, is the literal "default" (not hashed).
 */

import { fromHex, toHex, utf8 } from './bytes.js';

export const DEFAULT_ACCOUNT = 'default';
const SALT = /^[0-9a-fA-F]{64}$/;

export async function accountLabel(saltHex, provider, accountId, subtle = globalThis.crypto.subtle) {
  if (provider === 'gemini' || typeof accountId !== 'string' || accountId === '') {
    return DEFAULT_ACCOUNT;
  }
  if (typeof saltHex !== 'string' || !SALT.test(saltHex)) {
    throw new TypeError('account_salt must be 64 hex characters');
  }
  const key = await subtle.importKey('raw', fromHex(saltHex), { name: 'HMAC', hash: 'SHA-256' },
    false, ['sign']);
  const mac = await subtle.sign('HMAC', key, utf8(`${provider}:${accountId}`));
  return toHex(new Uint8Array(mac).slice(0, 16));
}
