import { errors, jwtVerify, SignJWT } from "jose";

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

/** Signs and checks HS256 JWTs (jose) with the app's secret. */
export function createTokens(secret: string) {
  const key = new TextEncoder().encode(secret);
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
      try {
        const { payload } = await jwtVerify(token, key, { algorithms: ["HS256"] });
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
        verified.set(token, { claims, expiresAt: (payload.exp ?? 0) * 1000 });
        return claims;
      } catch (error) {
        if (error instanceof errors.JWTExpired) return { invalid: "token expired" };
        return { invalid: "token is not valid" };
      }
    },
  };
}

export type Tokens = ReturnType<typeof createTokens>;
