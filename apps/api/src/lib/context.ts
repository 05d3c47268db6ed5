import { type Db, findApiKeyOwner } from "@crowdcompute/db";
import { getAccountState } from "@crowdcompute/db/accounts";
import { OpenAPIHono, type RouteConfig, type RouteHandler } from "@hono/zod-openapi";
import type { Context } from "hono";
import type { AppEnv } from "../env.ts";
import { hashApiKey, isApiKey, isWellFormedApiKey } from "./api-keys.ts";
import type { LeaseIds } from "./lease-ids.ts";
import type { ChangeFeed } from "./live.ts";
import type { MinterCache } from "./minters.ts";
import { forbidden, unauthorized, unprocessable } from "./problem.ts";
import type { ProcessBounds } from "./process-bounds.ts";
import type { TaskNotifier } from "./task-notifier.ts";
import type { StreamTickets } from "./tickets.ts";
import type { Role, TokenClaims, Tokens } from "./tokens.ts";
import type { WorkObserver } from "./work-observer.ts";
import type { WorkWaiters } from "./work-waiters.ts";

/** What every handler may use; built once by `createApp`. */
export interface Deps {
  db: Db;
  env: AppEnv;
  tokens: Tokens;
  leaseIds: LeaseIds;
  tickets: StreamTickets;
  /** Wakes live streams when tasks change (LISTEN/NOTIFY where there is one, else polling). */
  changes: ChangeFeed;
  /** The client's IP address where the runtime knows it (through TRUSTED_PROXIES), for per-IP abuse limits. */
  clientIp: (c: AppContext) => string | null;
  /** Tells live streams (any process) that tasks changed; throttled per task. */
  taskChanged: TaskNotifier;
  /** Tells waiting lease requests (any process) that tasks got work; throttled per task, the first at once. */
  workReady: TaskNotifier;
  /** Lease requests waiting for work (`waitMs`) in this process; null where there is no LISTEN (Workers): they are answered at once. */
  waiters: WorkWaiters | null;
  /** Hears of each lease and results request, for operator metrics. */
  work: WorkObserver;
  /** Whether volunteer tokens' accounts and minting keys still stand, cached for a few seconds. */
  minters: MinterCache;
  /** What this process holds for its callers at once: body bytes, open streams, uploads (lib/process-bounds.ts). */
  bounds: ProcessBounds;
}

export type AppBindings = { Variables: { deps: Deps } };
export type AppContext = Context<AppBindings>;
/** A handler of one route of a `*.routes.ts`, typed by it (as hono-open-api-starter's `*.handlers.ts` are). */
export type AppRouteHandler<R extends RouteConfig> = RouteHandler<R, AppBindings>;

const maxIssuesShown = 20;
const maxIssueChars = 300;
const clip = (text: string) => (text.length > maxIssueChars ? `${text.slice(0, maxIssueChars)}…` : text);

/** A router whose validation failures become 422 problems naming each field. */
export function createRouter() {
  return new OpenAPIHono<AppBindings>({
    defaultHook: (result) => {
      if (!result.success) {
        // Bounded: a body with 20,000 unknown keys would otherwise be answered with all of them.
        const errors = result.error.issues.slice(0, maxIssuesShown).map((issue) => ({
          path: clip(issue.path.join(".") || result.target),
          message: clip(issue.message),
        }));
        const more = result.error.issues.length - errors.length;
        const summary = errors.map((e) => `${e.path}: ${e.message}`).join("; ") + (more > 0 ? `; and ${more} more` : "");
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
export async function authorize(c: AppContext, roles: readonly Role[], beforeAccount?: (claims: TokenClaims) => void): Promise<TokenClaims> {
  const header = c.req.header("authorization");
  if (!header) throw unauthorized("missing Authorization: Bearer <token> header");
  const match = /^Bearer\s+(\S+)$/i.exec(header);
  if (!match) throw unauthorized("Authorization header must be `Bearer <token>`");
  const claims = await verifyCredential(c, match[1]!);
  // A check that needs no query (a stream's place, lib/bounds.ts) refuses before the account's.
  beforeAccount?.(requireRole(claims, roles));
  return requireRole(await checkAccount(c, claims), roles);
}

/**
 * A token (or key) is only as good as what stands behind it. A user's is checked against its
 * account on each request: a suspended account can do nothing, an unapproved one nothing
 * either while REQUIRE_CREATOR_APPROVAL is on, and a demoted admin's older token no longer
 * acts as admin. A volunteer token, on the hot path, is checked against the account it
 * belongs to and the API key it was minted with through a cache of a few seconds
 * (lib/minters.ts): a revoked key ends it (401), a suspended owner stops it (403). An
 * anonymous volunteer's token depends on nothing and costs nothing here.
 */
async function checkAccount(c: AppContext, claims: TokenClaims): Promise<TokenClaims> {
  const { db, env, minters } = c.var.deps;
  if (claims.role === "volunteer") {
    if (!claims.uid && !claims.apiKeyId) return claims;
    const state = await minters.get(db, claims.uid ?? null, claims.apiKeyId ?? null);
    if (state.keyLive === false) throw unauthorized("this volunteer token was minted with an API key that has since been revoked");
    if (state.user === "gone") throw unauthorized("the account this volunteer belongs to no longer exists");
    if (state.user === "suspended") throw forbidden("the account this volunteer belongs to is suspended: ask an admin");
    return claims;
  }
  // A stream ticket issued to a caller that used an API key: good only while the key is.
  if (claims.apiKeyId && !claims.viaApiKey) {
    const state = await minters.get(db, null, claims.apiKeyId);
    if (state.keyLive === false) throw unauthorized("the API key this ticket was issued with has since been revoked");
  }
  const account = await getAccountState(db, claims.sub);
  if (!account) throw unauthorized("this account no longer exists");
  if (account.suspended) throw forbidden("this account is suspended: ask an admin");
  if (env.requireCreatorApproval && account.role === "creator" && !account.approved) {
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
    return { sub: owner.userId, role: "creator", apiKeyId: owner.keyId, viaApiKey: true };
  }
  const claims = await c.var.deps.tokens.verify(credential);
  if ("invalid" in claims) throw unauthorized(claims.invalid);
  return claims;
}

function requireRole(claims: TokenClaims, roles: readonly Role[]): TokenClaims {
  if (!roles.includes(claims.role)) throw forbidden(`this needs a ${roles.join(" or ")} token, not a ${claims.role} token`);
  return claims;
}

/**
 * For Server-Sent Events: browsers' EventSource sends no header, so a stream accepts a
 * short-lived `?ticket=` from `POST /api/tickets` as well as a bearer credential.
 */
export async function authorizeStream(c: AppContext, roles: readonly Role[], ticket: string | undefined, beforeAccount?: (claims: TokenClaims) => void): Promise<TokenClaims> {
  if (ticket === undefined) return authorize(c, roles, beforeAccount);
  const claims = await c.var.deps.tickets.verify(ticket);
  if ("invalid" in claims) throw unauthorized(claims.invalid);
  beforeAccount?.(requireRole(claims, roles));
  return requireRole(await checkAccount(c, claims), roles);
}

export const creatorRoles = ["creator", "admin"] as const satisfies Role[];
export const volunteerRoles = ["volunteer"] as const satisfies Role[];
