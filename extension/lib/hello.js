/**
 * Proof that the server on the port is our own ledger (SECURITY.md row 11): before the token
 * is sent anywhere, the extension asks the public `GET /api/v1/hello?nonce=<hex>` and checks
 * the Ed25519 signature over the bytes "consent-ledger/hello/v1:" + nonce (the nonce's hex
 * text, ASCII) with the `server_key` kept at pairing. A server that cannot sign, or signs
 * with another key, is refused: it may be a squatter on the port.
 */

import { fromBase64, randomBytes, toHex, utf8 } from './bytes.js';

export const HELLO_PREFIX = 'consent-ledger/hello/v1:';

export class UntrustedServer extends Error {}

/** A fresh nonce: 32 hex characters (16 random bytes; the contract allows 16 to 64 hex). */
export function makeNonce(crypto = globalThis.crypto) {
  return toHex(randomBytes(16, crypto));
}

/** The bytes the server signs for a hello. */
export function helloMessage(nonce) {
  return utf8(`${HELLO_PREFIX}${nonce}`);
}

/** Parses a base64 Ed25519 public key (32 raw bytes). Throws on anything else. */
export function parseServerKey(b64) {
  let raw;
  try {
    raw = fromBase64(b64);
  } catch {
    throw new UntrustedServer('the server key is not base64');
  }
  if (raw.length !== 32) throw new UntrustedServer('the server key is not a 32-byte Ed25519 key');
  return raw;
}

/**
 * Checks a hello answer `{server_key, signature}` for `nonce` against the key kept at pairing.
 * Resolves true, or throws UntrustedServer saying why.
 */
export async function verifyHello({ serverKey, nonce, answer, subtle = globalThis.crypto.subtle }) {
  if (!answer || typeof answer !== 'object') throw new UntrustedServer('the server sent no hello');
  const pinned = parseServerKey(serverKey);
  if (answer.server_key !== serverKey) {
    throw new UntrustedServer('the server answered with another key than the one paired');
  }
  let signature;
  try {
    signature = fromBase64(answer.signature);
  } catch {
    throw new UntrustedServer('the hello signature is not base64');
  }
  if (signature.length !== 64) throw new UntrustedServer('the hello signature is not 64 bytes');
  let key;
  try {
    key = await subtle.importKey('raw', pinned, { name: 'Ed25519' }, false, ['verify']);
  } catch {
    throw new UntrustedServer('this browser cannot check Ed25519 signatures (needs Chromium 137 or Firefox 129)');
  }
  const ok = await subtle.verify({ name: 'Ed25519' }, key, signature, helloMessage(nonce));
  if (!ok) throw new UntrustedServer('the server could not prove it holds the paired key');
  return true;
}
