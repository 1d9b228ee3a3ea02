/**
 * Byte helpers shared by the background modules: hex and base64 in both directions, on
 * Uint8Array, without Node's Buffer so the same code runs in the service worker and in tests.
 */

const HEX = /^(?:[0-9a-fA-F]{2})*$/;
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

export function toHex(bytes) {
  let out = '';
  for (const b of new Uint8Array(bytes)) out += b.toString(16).padStart(2, '0');
  return out;
}

export function fromHex(text) {
  if (typeof text !== 'string' || !HEX.test(text)) throw new TypeError('not a hex string');
  const out = new Uint8Array(text.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(text.slice(2 * i, 2 * i + 2), 16);
  return out;
}

export function fromBase64(text) {
  if (typeof text !== 'string' || text.length % 4 !== 0 || !BASE64.test(text)) {
    throw new TypeError('not standard base64');
  }
  const bin = atob(text);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

export function toBase64(bytes) {
  let bin = '';
  for (const b of new Uint8Array(bytes)) bin += String.fromCharCode(b);
  return btoa(bin);
}

export function utf8(text) {
  return new TextEncoder().encode(text);
}

/** `n` random bytes from the platform's CSPRNG. */
export function randomBytes(n, crypto = globalThis.crypto) {
  return crypto.getRandomValues(new Uint8Array(n));
}
