// PBKDF2-SHA-256 through WebCrypto, so hashing runs on Workers too. 100,000 iterations is
// the most Workers allow in production.
const iterations = 100_000;
const encoder = new TextEncoder();

const toBase64 = (bytes: Uint8Array) => btoa(String.fromCharCode(...bytes));
const fromBase64 = (text: string) => Uint8Array.from(atob(text), (ch) => ch.charCodeAt(0));

async function derive(password: string, salt: Uint8Array<ArrayBuffer>, rounds: number): Promise<Uint8Array> {
  const key = await crypto.subtle.importKey("raw", encoder.encode(password), "PBKDF2", false, ["deriveBits"]);
  const bits = await crypto.subtle.deriveBits({ name: "PBKDF2", hash: "SHA-256", salt, iterations: rounds }, key, 256);
  return new Uint8Array(bits);
}

/** `pbkdf2-sha256$100000$<salt>$<hash>`, both base64. */
export async function hashPassword(password: string): Promise<string> {
  const salt = crypto.getRandomValues(new Uint8Array(16));
  const hash = await derive(password, salt, iterations);
  return `pbkdf2-sha256$${iterations}$${toBase64(salt)}$${toBase64(hash)}`;
}

export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  const [scheme, rounds, salt, hash] = stored.split("$");
  if (scheme !== "pbkdf2-sha256" || !rounds || !salt || !hash) return false;
  const expected = fromBase64(hash);
  const actual = await derive(password, fromBase64(salt), Number(rounds));
  if (actual.length !== expected.length) return false;
  let diff = 0;
  for (let i = 0; i < actual.length; i++) diff |= actual[i]! ^ expected[i]!;
  return diff === 0;
}

// A well-formed hash no password matches: its salt and hash are random per process. Made on
// first use: Workers allow no random values at a module's top level.
let noAccountHash: string | null = null;

/**
 * For a sign-in to an email with no account: the same PBKDF2 work as checking a real
 * password, against a hash nothing matches, so the answer takes as long either way. Always false.
 */
export async function verifyPasswordOfNoAccount(password: string): Promise<false> {
  noAccountHash ??= `pbkdf2-sha256$${iterations}$${toBase64(crypto.getRandomValues(new Uint8Array(16)))}$${toBase64(crypto.getRandomValues(new Uint8Array(32)))}`;
  await verifyPassword(password, noAccountHash);
  return false;
}
