// HMAC-SHA-256 and base64url for what the API signs itself (lease ids, lib/lease-ids.ts) and
// checks (JWTs, lib/tokens.ts): a runtime may pass a faster HMAC than WebCrypto's.

/** HMAC-SHA-256 of `data` under `key`. */
export type HmacSha256 = (key: Uint8Array, data: Uint8Array) => Uint8Array | Promise<Uint8Array>;

/** WebCrypto's, which every runtime has; each call is an asynchronous job (~70 µs of CPU on Node). */
function webCryptoHmac(key: Uint8Array): (data: Uint8Array<ArrayBuffer>) => Promise<Uint8Array> {
  const keyPromise = crypto.subtle.importKey("raw", key as Uint8Array<ArrayBuffer>, { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  return async (data) => new Uint8Array(await crypto.subtle.sign("HMAC", await keyPromise, data));
}

/** The MAC under `key`: with `hmac`, a runtime's faster one (the Node entry passes node:crypto's, ~7 µs); WebCrypto's otherwise. */
export function macWith(key: Uint8Array, hmac?: HmacSha256): (data: Uint8Array<ArrayBuffer>) => Uint8Array | Promise<Uint8Array> {
  return hmac ? (data) => hmac(key, data) : webCryptoHmac(key);
}

/** Equal bytes, compared in time that depends on their length only. */
export function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i]! ^ b[i]!;
  return diff === 0;
}

export const toBase64Url = (bytes: Uint8Array) =>
  btoa(String.fromCharCode(...bytes))
    .replaceAll("+", "-")
    .replaceAll("/", "_")
    .replace(/=+$/, "");

/** The bytes of unpadded base64url `text`, or null when it is not that. */
export function fromBase64Url(text: string): Uint8Array<ArrayBuffer> | null {
  if (!/^[A-Za-z0-9_-]+$/.test(text)) return null;
  try {
    return Uint8Array.from(atob(text.replaceAll("-", "+").replaceAll("_", "/")), (ch) => ch.charCodeAt(0));
  } catch {
    return null;
  }
}
