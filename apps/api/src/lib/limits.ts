// Abuse limits (docs/architecture.md, "Live updates, metrics, limits"): request body sizes,
// and per-account / per-IP counters kept in Postgres so that every API process and Workers
// isolate shares them.
import { hitRateLimit, refundRateLimit } from "@crowdcompute/db";
import type { MiddlewareHandler } from "hono";
import { bodyLimit } from "hono/body-limit";
import type { AppBindings, AppContext } from "./context.ts";
import { assertJsonWithinLimits, maxBodyDepth } from "./json-limits.ts";
import { type ProblemError, payloadTooLarge, tooManyRequests } from "./problem.ts";

const KiB = 1024;
const MiB = 1024 * KiB;

/**
 * The largest body each route takes; anything else gets `defaultBodyLimit`. A `streamed`
 * route counts its body itself as it reads it: here only its Content-Length is checked.
 * (hono's bodyLimit wraps a chunked body in a stream of its own, and behind it a 1M-line
 * NDJSON upload left ~60 MB of spent buffers for the GC: peak RSS 201 MB, not 142.)
 */
const bodyLimits: { method: string; pattern: RegExp; bytes: number; streamed?: boolean; hint?: string }[] = [
  { method: "POST", pattern: /^\/api\/tasks$/, bytes: 64 * MiB },
  { method: "POST", pattern: /^\/api\/tasks\/[^/]+\/inputs$/, bytes: 64 * MiB, streamed: true, hint: "send the rest in another request with ?offset=" },
  // up to 256 results of at most 1 MiB each would be 256 MiB: a batch is capped lower.
  { method: "POST", pattern: /^\/api\/work\/results$/, bytes: 32 * MiB },
  // up to 16 checkpoints of at most 256 KiB of JSON text each (3 bytes a character at worst).
  { method: "POST", pattern: /^\/api\/work\/heartbeat$/, bytes: 16 * MiB },
];
export const defaultBodyLimit = 256 * KiB;

const describeBytes = (bytes: number) => (bytes >= MiB ? `${bytes / MiB} MiB` : `${bytes / KiB} KiB`);

const limitOf = (method: string, path: string) => bodyLimits.find((l) => l.method === method && l.pattern.test(path));

export function bodyLimitFor(method: string, path: string): number {
  return limitOf(method, path)?.bytes ?? defaultBodyLimit;
}

/** The 413 for a body over its route's limit. */
export function bodyTooLarge(c: AppContext): ProblemError {
  const limit = limitOf(c.req.method, c.req.path);
  const bytes = limit?.bytes ?? defaultBodyLimit;
  const hint = limit?.hint ? `; ${limit.hint}` : "";
  return payloadTooLarge(`the body of ${c.req.method} ${c.req.path} may be at most ${describeBytes(bytes)} (${bytes} bytes)${hint}`);
}

/**
 * Refuses bodies over the route's limit with a 413 that names it, by Content-Length before
 * reading and by counting while reading (a chunked body cannot slip past).
 */
export const limitBodies: MiddlewareHandler<AppBindings> = async (c, next) => {
  if (c.req.method === "GET" || c.req.method === "HEAD") return next();
  const limit = limitOf(c.req.method, c.req.path);
  if (limit?.streamed) {
    if (Number(c.req.header("content-length") ?? 0) > limit.bytes) throw bodyTooLarge(c);
    return next();
  }
  const limited = bodyLimit({
    maxSize: limit?.bytes ?? defaultBodyLimit,
    onError: () => {
      throw bodyTooLarge(c);
    },
  });
  return limited(c, next);
};

// As hono's validator tells a JSON body: `application/json`, or any `+json` type.
const jsonMediaType = /^application\/([\w.-]+\+)?json$/i;

/**
 * Refuses a JSON body nested deeper than `maxBodyDepth` with a 422 naming where, before any
 * route sees it. The body is parsed once: hono keeps it for the route's validator. A body that
 * is not JSON is left to the validator, whose 400 says so. Not for /api/work/* (its routes bound
 * what they store themselves) nor for streamed bodies, which must stay unread for their route.
 */
export const limitJsonBodies: MiddlewareHandler<AppBindings> = async (c, next) => {
  if (c.req.method === "GET" || c.req.method === "HEAD" || c.req.path.startsWith("/api/work/")) return next();
  if (limitOf(c.req.method, c.req.path)?.streamed) return next();
  const mediaType = (c.req.header("content-type") ?? "").split(";")[0]!.trim();
  if (!jsonMediaType.test(mediaType)) return next();
  let body: unknown;
  try {
    body = await c.req.json();
  } catch {
    return next();
  }
  assertJsonWithinLimits(body, { maxDepth: maxBodyDepth });
  return next();
};

/**
 * The key a client address counts under: an IPv4 address as it is (an IPv4-mapped IPv6
 * address as its IPv4), an IPv6 address as its /64 prefix, since a single host or customer
 * is usually given a whole /64 and could otherwise take a fresh address for every attempt.
 */
export function sourceOf(ip: string): string {
  const address = ip.trim().toLowerCase().replace(/%.*$/, "");
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(address);
  if (mapped) return mapped[1]!;
  if (!address.includes(":")) return address;
  const groupsOf = (part: string) => (part === "" ? [] : part.split(":").flatMap((g) => (g.includes(".") ? ["0", "0"] : [g])));
  const [head = "", tail] = address.split("::");
  const groups = tail === undefined ? groupsOf(head) : [...groupsOf(head), ...Array<string>(Math.max(0, 8 - groupsOf(head).length - groupsOf(tail).length)).fill("0"), ...groupsOf(tail)];
  if (groups.length !== 8 || groups.some((g) => !/^[0-9a-f]{1,4}$/.test(g))) return address; // not an IPv6 address: counted as given
  return `${groups
    .slice(0, 4)
    .map((g) => parseInt(g, 16).toString(16))
    .join(":")}::/64`;
}

const minute = 60_000;
export const loginWindowMs = 15 * minute;
export const signupWindowMs = 60 * minute;

/** Counts one hit against `key`; a 429 with Retry-After once more than `limit` in the window. */
export async function spendLimit(c: AppContext, key: string, limit: number, windowMs: number, what: string): Promise<void> {
  const state = await hitRateLimit(c.var.deps.db, key, windowMs);
  if (state.hits > limit) {
    throw tooManyRequests(`too many ${what}: at most ${limit} in ${windowMs / minute} minutes; try again later`, state.resetInMs);
  }
}

/**
 * Counts one hit against each of `keys`, then a 429 with Retry-After when any is past its
 * `limit`. Each count is one atomic upsert made *before* the work it guards, so N requests
 * at once are N hits, and only the first `limit` of them get to do the work: counted after
 * the work, all N would have passed the check (issue 25, item 5). Work that turns out not to
 * be a failure gives its hits back with `refundLimits`.
 */
export async function spendLimits(c: AppContext, keys: { key: string; limit: number }[], windowMs: number, what: string): Promise<void> {
  let refused: { limit: number; resetInMs: number } | null = null;
  for (const { key, limit } of keys) {
    const state = await hitRateLimit(c.var.deps.db, key, windowMs);
    if (state.hits > limit && (!refused || state.resetInMs > refused.resetInMs)) refused = { limit, resetInMs: state.resetInMs };
  }
  if (refused) throw tooManyRequests(`too many ${what}: at most ${refused.limit} in ${windowMs / minute} minutes; try again later`, refused.resetInMs);
}

/** Gives back the hits `spendLimits` counted against `keys`. */
export async function refundLimits(c: AppContext, keys: { key: string }[], windowMs: number): Promise<void> {
  for (const { key } of keys) await refundRateLimit(c.var.deps.db, key, windowMs);
}
