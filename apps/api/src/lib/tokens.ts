import { SignJWT } from "jose";
import { fromBase64Url, type HmacSha256, macWith, sameBytes } from "./hmac.ts";

export type Role = "admin" | "creator" | "volunteer";

export interface TokenClaims {
  sub: string;
  role: Role;
  /** For volunteer tokens: the user the volunteer belongs to, if any. */
  uid?: string;
  /**
   * The API key the caller authenticated with; for a volunteer token (and a ticket), the key it
   * was minted with, so that revoking the key ends the token too.
   */
  apiKeyId?: string;
  /** This request presented the API key itself (just looked up, so known to be live). Never signed into a token. */
  viaApiKey?: boolean;
}

const verifiedCacheSize = 10_000;

const lifetimes: Record<Role, string> = { admin: "24h", creator: "24h", volunteer: "365d" };

const utf8 = new TextEncoder();
const strictUtf8 = new TextDecoder("utf-8", { fatal: true });

/** The JSON object a base64url part of a JWT holds, or null. */
function jsonObjectOf(part: string): Record<string, unknown> | null {
  const bytes = fromBase64Url(part);
  if (!bytes) return null;
  try {
    const value: unknown = JSON.parse(strictUtf8.decode(bytes));
    return value !== null && typeof value === "object" && !Array.isArray(value) ? (value as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}

/**
 * The claims of a compact HS256 JWT signed with `mac`'s key, "expired", or null for anything
 * else. It checks what jose's `jwtVerify` checks for the tokens `sign` makes (the algorithm,
 * no `crit` or `b64`, the signature, a JSON object of claims, numeric `exp`/`nbf`/`iat`, `nbf`
 * passed, `exp` not), and api/test/tokens.test.ts holds the two to the same verdicts.
 */
async function checkHs256(token: string, mac: (data: Uint8Array<ArrayBuffer>) => Uint8Array | Promise<Uint8Array>): Promise<Record<string, unknown> | "expired" | null> {
  const parts = token.split(".");
  if (parts.length !== 3) return null;
  const [head, body, signature] = parts as [string, string, string];
  const header = jsonObjectOf(head);
  if (header?.alg !== "HS256" || "crit" in header || "b64" in header) return null;
  const given = fromBase64Url(signature);
  if (!given || !sameBytes(await mac(utf8.encode(`${head}.${body}`)), given)) return null;
  const claims = jsonObjectOf(body);
  if (!claims) return null;
  for (const name of ["exp", "nbf", "iat"]) if (claims[name] !== undefined && typeof claims[name] !== "number") return null;
  const now = Math.floor(Date.now() / 1000);
  if (typeof claims.nbf === "number" && claims.nbf > now) return null;
  if (typeof claims.exp === "number" && claims.exp <= now) return "expired";
  return claims;
}

/**
 * Signs HS256 JWTs (jose) with the app's secret, and checks them with `hmac`, a runtime's
 * faster HMAC (lib/hmac.ts): jose checks with a WebCrypto job and a key import each time, ~290 µs
 * of the API's CPU a token, a fifth of it while ten thousand volunteers came at once.
 */
export function createTokens(secret: string, hmac?: HmacSha256) {
  const key = utf8.encode(secret);
  const mac = macWith(key, hmac);
  // A volunteer sends the same token with every request: checking its signature once (a
  // WebCrypto job, 14 % of the API's CPU under bench/polling.bench.ts) is enough until it expires.
  const verified = new Map<string, { claims: TokenClaims; expiresAt: number }>();
  return {
    async sign(claims: TokenClaims): Promise<string> {
      const jwt = new SignJWT({ role: claims.role, ...(claims.uid ? { uid: claims.uid } : {}), ...(claims.apiKeyId ? { akid: claims.apiKeyId } : {}) })
        .setProtectedHeader({ alg: "HS256" })
        .setSubject(claims.sub)
        .setIssuedAt()
        .setExpirationTime(lifetimes[claims.role]);
      return jwt.sign(key);
    },
    /** The claims of a valid token, or a reason it is not. */
    async verify(token: string): Promise<TokenClaims | { invalid: string }> {
      const cached = verified.get(token);
      if (cached && cached.expiresAt > Date.now()) return cached.claims;
      const payload = await checkHs256(token, mac);
      if (payload === "expired") return { invalid: "token expired" };
      if (payload === null) return { invalid: "token is not valid" };
      const role = payload.role;
      if (typeof payload.sub !== "string" || (role !== "admin" && role !== "creator" && role !== "volunteer")) {
        return { invalid: "token has no subject or role" };
      }
      const claims: TokenClaims = {
        sub: payload.sub,
        role,
        ...(typeof payload.uid === "string" ? { uid: payload.uid } : {}),
        ...(typeof payload.akid === "string" ? { apiKeyId: payload.akid } : {}),
      };
      if (verified.size >= verifiedCacheSize) verified.delete(verified.keys().next().value!);
      verified.set(token, { claims, expiresAt: ((payload.exp as number | undefined) ?? 0) * 1000 });
      return claims;
    },
  };
}

export type Tokens = ReturnType<typeof createTokens>;
