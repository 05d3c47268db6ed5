// Creators' API keys: `cc_` + 32 random bytes (base64url). Only the sha256 is
// stored; a key is as strong as its randomness, so a fast hash is enough (no PBKDF2 per
// request).
import { sha256Hex } from "./work-code.ts";

const apiKeyPrefix = "cc_";
const apiKeyPattern = /^cc_[A-Za-z0-9_-]{43}$/;

const base64url = (bytes: Uint8Array) =>
  btoa(String.fromCharCode(...bytes))
    .replaceAll("+", "-")
    .replaceAll("/", "_")
    .replace(/=+$/, "");

/** A fresh key, with what is stored of it: its hash, and a prefix to tell keys apart. */
export async function mintApiKey(): Promise<{ key: string; keyHash: string; prefix: string }> {
  const key = apiKeyPrefix + base64url(crypto.getRandomValues(new Uint8Array(32)));
  return { key, keyHash: await hashApiKey(key), prefix: key.slice(0, 11) };
}

export const hashApiKey = (key: string) => sha256Hex(key);

/** Whether a bearer credential is shaped like an API key (rather than a JWT). */
export const isApiKey = (credential: string) => credential.startsWith(apiKeyPrefix);
export const isWellFormedApiKey = (credential: string) => apiKeyPattern.test(credential);
