import { errors, jwtVerify, SignJWT } from "jose";

export type Role = "admin" | "creator" | "volunteer";

export interface TokenClaims {
  sub: string;
  role: Role;
  /** For volunteer tokens: the user the volunteer belongs to, if any. */
  uid?: string;
}

const lifetimes: Record<Role, string> = { admin: "24h", creator: "24h", volunteer: "365d" };

/** Signs and checks HS256 JWTs (jose) with the app's secret. */
export function createTokens(secret: string) {
  const key = new TextEncoder().encode(secret);
  return {
    async sign(claims: TokenClaims): Promise<string> {
      const jwt = new SignJWT({ role: claims.role, ...(claims.uid ? { uid: claims.uid } : {}) })
        .setProtectedHeader({ alg: "HS256" })
        .setSubject(claims.sub)
        .setIssuedAt()
        .setExpirationTime(lifetimes[claims.role]);
      return jwt.sign(key);
    },
    /** The claims of a valid token, or a reason it is not. */
    async verify(token: string): Promise<TokenClaims | { invalid: string }> {
      try {
        const { payload } = await jwtVerify(token, key, { algorithms: ["HS256"] });
        const role = payload.role;
        if (typeof payload.sub !== "string" || (role !== "admin" && role !== "creator" && role !== "volunteer")) {
          return { invalid: "token has no subject or role" };
        }
        return { sub: payload.sub, role, ...(typeof payload.uid === "string" ? { uid: payload.uid } : {}) };
      } catch (error) {
        if (error instanceof errors.JWTExpired) return { invalid: "token expired" };
        return { invalid: "token is not valid" };
      }
    },
  };
}

export type Tokens = ReturnType<typeof createTokens>;
