import { OpenAPIHono } from "@hono/zod-openapi";
import { findApiKeyOwner, getAccountState, type Db } from "@crowdcompute/db";
import type { Context } from "hono";
import type { AppEnv } from "../env.ts";
import { hashApiKey, isApiKey, isWellFormedApiKey } from "./api-keys.ts";
import type { LeaseIds } from "./lease-ids.ts";
import type { WorkObserver } from "./metrics.ts";
import type { TaskNotifier } from "./task-notifier.ts";
import type { ChangeFeed } from "./live.ts";
import { forbidden, unauthorized, unprocessable } from "./problem.ts";
import type { StreamTickets } from "./tickets.ts";
import type { Role, TokenClaims, Tokens } from "./tokens.ts";

/** What every handler may use; built once by `createApp`. */
export interface Deps {
  db: Db;
  env: AppEnv;
  tokens: Tokens;
  leaseIds: LeaseIds;
  tickets: StreamTickets;
  /** Wakes live streams when tasks change (LISTEN/NOTIFY where there is one, else polling). */
  changes: ChangeFeed;
  /** The client's IP address where the runtime knows it, for per-IP abuse limits. */
  clientIp: (c: AppContext) => string | null;
  /** Tells live streams (any process) that tasks changed; throttled per task. */
  taskChanged: TaskNotifier;
  /** Hears of each lease and results request, for operator metrics. */
  work: WorkObserver;
}

export type AppBindings = { Variables: { deps: Deps } };
export type AppContext = Context<AppBindings>;

/** A router whose validation failures become 422 problems naming each field. */
export function createRouter() {
  return new OpenAPIHono<AppBindings>({
    defaultHook: (result) => {
      if (!result.success) {
        const errors = result.error.issues.map((issue) => ({
          path: issue.path.join(".") || result.target,
          message: issue.message,
        }));
        const summary = errors.map((e) => `${e.path}: ${e.message}`).join("; ");
        throw unprocessable(`invalid ${result.target}: ${summary}`, errors);
      }
    },
  });
}

/**
 * The caller's claims when its bearer credential is valid and has one of `roles`; else
 * 401/403. The credential is a JWT or a creator's API key (`cc_…`), which acts as its
 * creator with the `creator` role only (an admin's key is not an admin), and carries
 * `apiKeyId` so that routes can refuse what keys may not do.
 */
export async function authorize(c: AppContext, roles: readonly Role[]): Promise<TokenClaims> {
  const header = c.req.header("authorization");
  if (!header) throw unauthorized("missing Authorization: Bearer <token> header");
  const match = /^Bearer\s+(\S+)$/i.exec(header);
  if (!match) throw unauthorized("Authorization header must be `Bearer <token>`");
  const claims = await verifyCredential(c, match[1]!);
  return requireRole(await checkAccount(c, claims), roles);
}

/**
 * A user's token (or key) is only as good as the account behind it, looked up on each
 * request (volunteer tokens are not, to keep the hot path free of it): a suspended account
 * can do nothing, an unapproved one nothing either while REQUIRE_CREATOR_APPROVAL is on,
 * and a demoted admin's older token no longer acts as admin.
 */
async function checkAccount(c: AppContext, claims: TokenClaims): Promise<TokenClaims> {
  if (claims.role === "volunteer") return claims;
  const account = await getAccountState(c.var.deps.db, claims.sub);
  if (!account) throw unauthorized("this account no longer exists");
  if (account.suspended) throw forbidden("this account is suspended: ask an admin");
  if (c.var.deps.env.requireCreatorApproval && account.role === "creator" && !account.approved) {
    throw forbidden("this account waits for an admin's approval");
  }
  if (claims.role === "admin" && account.role !== "admin") return { ...claims, role: "creator" };
  return claims;
}

async function verifyCredential(c: AppContext, credential: string): Promise<TokenClaims> {
  if (isApiKey(credential)) {
    if (!isWellFormedApiKey(credential)) throw unauthorized("API key is not valid");
    const owner = await findApiKeyOwner(c.var.deps.db, await hashApiKey(credential));
    if (!owner) throw unauthorized("API key is not valid or was revoked");
    return { sub: owner.userId, role: "creator", apiKeyId: owner.keyId };
  }
  const claims = await c.var.deps.tokens.verify(credential);
  if ("invalid" in claims) throw unauthorized(claims.invalid);
  return claims;
}

export function requireRole(claims: TokenClaims, roles: readonly Role[]): TokenClaims {
  if (!roles.includes(claims.role)) throw forbidden(`this needs a ${roles.join(" or ")} token, not a ${claims.role} token`);
  return claims;
}

/**
 * For Server-Sent Events: browsers' EventSource sends no header, so a stream accepts a
 * short-lived `?ticket=` from `POST /api/tickets` as well as a bearer credential.
 */
export async function authorizeStream(c: AppContext, roles: readonly Role[], ticket: string | undefined): Promise<TokenClaims> {
  if (ticket === undefined) return authorize(c, roles);
  const claims = await c.var.deps.tickets.verify(ticket);
  if ("invalid" in claims) throw unauthorized(claims.invalid);
  return requireRole(await checkAccount(c, claims), roles);
}

export const creatorRoles = ["creator", "admin"] as const satisfies Role[];
export const volunteerRoles = ["volunteer"] as const satisfies Role[];
