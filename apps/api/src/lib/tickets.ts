import { errors, jwtVerify, SignJWT } from "jose";
import type { TokenClaims } from "./tokens.ts";

const ticketLifetimeMs = 60_000;

/**
 * Stream tickets: a 60 s JWT carrying the caller's claims, for `?ticket=` on Server-Sent
 * Events, since EventSource sends no Authorization header. Signed with a key derived from
 * the secret for this one purpose, so a ticket is never accepted as a bearer token, nor a
 * token as a ticket. Stateless: no row, any API process or Workers isolate checks it.
 */
export function createStreamTickets(secret: string) {
  const key = new TextEncoder().encode(`${secret}\u0000stream-ticket`);
  return {
    async issue(claims: TokenClaims): Promise<{ ticket: string; expiresAt: string }> {
      const expiresAt = new Date(Date.now() + ticketLifetimeMs);
      const ticket = await new SignJWT({ role: claims.role, ...(claims.uid ? { uid: claims.uid } : {}), ...(claims.apiKeyId ? { akid: claims.apiKeyId } : {}) })
        .setProtectedHeader({ alg: "HS256" })
        .setSubject(claims.sub)
        .setIssuedAt()
        .setExpirationTime(Math.floor(expiresAt.getTime() / 1000))
        .sign(key);
      return { ticket, expiresAt: expiresAt.toISOString() };
    },
    async verify(ticket: string): Promise<TokenClaims | { invalid: string }> {
      try {
        const { payload } = await jwtVerify(ticket, key, { algorithms: ["HS256"] });
        const role = payload.role;
        if (typeof payload.sub !== "string" || (role !== "admin" && role !== "creator" && role !== "volunteer")) {
          return { invalid: "ticket has no subject or role" };
        }
        return {
          sub: payload.sub,
          role,
          ...(typeof payload.uid === "string" ? { uid: payload.uid } : {}),
          ...(typeof payload.akid === "string" ? { apiKeyId: payload.akid } : {}),
        };
      } catch (error) {
        if (error instanceof errors.JWTExpired) return { invalid: "ticket expired: get a new one from POST /api/tickets" };
        return { invalid: "ticket is not valid" };
      }
    },
  };
}

export type StreamTickets = ReturnType<typeof createStreamTickets>;
