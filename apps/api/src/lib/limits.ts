// Abuse limits (docs/architecture.md, "Live updates, metrics, limits"): request body sizes,
// and per-account / per-IP counters kept in Postgres so that every API process and Workers
// isolate shares them.
import { hitRateLimit, refundRateLimit } from "@crowdcompute/db";
import type { MiddlewareHandler } from "hono";
import type { AppBindings, AppContext } from "./context.ts";
import { assertJsonWithinLimits, maxBodyDepth } from "./json-limits.ts";
import { ProblemError, tooManyRequests } from "./problem.ts";
import { networkSource } from "./sources.ts";

const KiB = 1024;
const MiB = 1024 * KiB;

/**
 * The largest body each route takes; anything else gets `defaultBodyLimit`. Every body is
 * read whole, within these and the in-flight bounds, before its route runs (`readBodies`) or
 * by its route before it touches the database (`readByRoute`, with `readRequestBody`).
 */
const bodyLimits: { method: string; pattern: RegExp; bytes: number; hint?: string; readByRoute?: boolean }[] = [
  { method: "POST", pattern: /^\/api\/tasks$/, bytes: 64 * MiB },
  // One part of an NDJSON upload (the SDK sends 4 MiB): read whole before its transaction opens.
  { method: "POST", pattern: /^\/api\/tasks\/[^/]+\/inputs$/, bytes: 8 * MiB, hint: "send the rest in another request with ?offset=", readByRoute: true },
  // up to 256 results of at most 1 MiB each would be 256 MiB: a batch is capped lower.
  { method: "POST", pattern: /^\/api\/work\/results$/, bytes: 32 * MiB },
  // up to 16 checkpoints of at most 256 KiB of JSON text each (3 bytes a character at worst).
  { method: "POST", pattern: /^\/api\/work\/heartbeat$/, bytes: 16 * MiB },
];
export const defaultBodyLimit = 256 * KiB;

const describeBytes = (bytes: number) => (bytes >= MiB ? `${bytes / MiB} MiB` : `${bytes / KiB} KiB`);

const limitOf = (method: string, path: string) => bodyLimits.find((l) => l.method === method && l.pattern.test(path));

function bodyLimitFor(method: string, path: string): number {
  return limitOf(method, path)?.bytes ?? defaultBodyLimit;
}

/** The 413 for a body over its route's limit. */
function bodyTooLarge(c: AppContext): ProblemError {
  const limit = limitOf(c.req.method, c.req.path);
  const bytes = limit?.bytes ?? defaultBodyLimit;
  const hint = limit?.hint ? `; ${limit.hint}` : "";
  // The connection closes with the answer: the rest of the body is not read.
  return new ProblemError(413, "Payload too large", `the body of ${c.req.method} ${c.req.path} may be at most ${describeBytes(bytes)} (${bytes} bytes)${hint}`, undefined, { connection: "close" });
}

/** Bodies read as text: JSON (any `+json` type too), NDJSON and plain text. */
const textMediaType = /^(application\/([\w.-]+\+)?json|application\/x-ndjson|text\/[\w.+-]+)$/i;

/** A 408 for a body that stalled or dragged: its connection is closed with the answer. */
function bodyTimedOut(detail: string): ProblemError {
  return new ProblemError(408, "Request timeout", detail, undefined, { connection: "close" });
}

/**
 * Reads every request body whole before any route sees it (docs/architecture.md, "Bounds on
 * what one caller holds"), but those of routes that read their own with `readRequestBody`
 * (an input upload takes its creator's upload slot first). So no route, and no database
 * transaction, ever waits on a client's body. The route then reads the bytes from memory.
 */
export const readBodies: MiddlewareHandler<AppBindings> = async (c, next) => {
  if (c.req.method === "GET" || c.req.method === "HEAD") return next();
  if (limitOf(c.req.method, c.req.path)?.readByRoute) {
    // Refused at once when it says it is too large; read (and counted) by its route.
    if (Number(c.req.header("content-length") ?? 0) > bodyLimitFor(c.req.method, c.req.path)) throw bodyTooLarge(c);
    return next();
  }
  const release = await readRequestBody(c);
  try {
    await next();
  } finally {
    release();
  }
};

/**
 * Reads the request's body whole into memory and puts it back as the request's body: over
 * the route's limit a 413 (by Content-Length before reading, or while counting a chunked
 * body); its bytes held against the process's in-flight total and its source's share from
 * the first byte (429 past the share, 503 past the total, both with Retry-After); a body
 * that sends nothing for `bodyIdleMs`, or is not whole after `bodyTimeoutMs`, is cut with a
 * 408. Returns the function that gives the bytes back: call it once the response is made.
 */
export async function readRequestBody(c: AppContext): Promise<() => void> {
  const maxBytes = bodyLimitFor(c.req.method, c.req.path);
  const declared = c.req.header("content-length");
  const length = declared === undefined ? null : Number(declared);
  if (length !== null && !(Number.isSafeInteger(length) && length >= 0)) throw new ProblemError(400, "Bad request", "Content-Length is not a byte count");
  if (length !== null && length > maxBytes) throw bodyTooLarge(c);
  const raw = c.req.raw;
  // On Node the body is read from the node request (see `readNodeWhole`); reading `raw.body`
  // would make node-server build a web Request and a web stream of it.
  const incoming = nodeIncomingOf(c.env);
  if (length === 0 || (!incoming && !raw.body)) return () => {};
  const { bodies, config } = c.var.deps.bounds;
  const source = networkSource(c);
  let held = 0;
  const release = () => {
    bodies.give(source, held);
    held = 0;
  };
  const take = (bytes: number) => {
    bodies.take(source, held, bytes);
    held += bytes;
  };
  try {
    if (length !== null) take(length);
    const bounds: BodyBounds = {
      maxBytes,
      length,
      idleMs: config.bodyIdleMs,
      timeoutMs: config.bodyTimeoutMs,
      tooLarge: () => bodyTooLarge(c),
      ...(length === null ? { onBytes: take } : {}),
    };
    const bytes = incoming ? await readNodeWhole(incoming, bounds) : await readWhole(raw.body!, bounds);
    const mediaType = (raw.headers.get("content-type") ?? "").split(";")[0]!.trim();
    if (textMediaType.test(mediaType)) {
      // Decoded once, where hono keeps a body it read (c.req.text(), c.req.json() and the
      // validators read it there): no copy of the bytes in a new Request, decoded again.
      (c.req.bodyCache as Record<string, unknown>).text = Promise.resolve(new TextDecoder().decode(bytes));
    } else {
      // A form (lib/multipart-task.ts) or bytes: read from the request itself.
      const headers = new Headers(raw.headers);
      headers.delete("transfer-encoding");
      headers.set("content-length", String(bytes.byteLength));
      c.req.raw = new Request(raw.url, { method: raw.method, headers, body: bytes as Uint8Array<ArrayBuffer> });
    }
    return release;
  } catch (error) {
    release();
    throw error;
  }
}

interface BodyBounds {
  maxBytes: number;
  length: number | null;
  idleMs: number;
  timeoutMs: number;
  tooLarge: () => Error;
  onBytes?: (bytes: number) => void;
}

/** What @hono/node-server passes as the bindings (`c.env`): the node request, its body unread. */
interface NodeIncoming {
  on(event: string, listener: (arg?: unknown) => void): unknown;
  off(event: string, listener: (arg?: unknown) => void): unknown;
  pause(): unknown;
  readonly readableEnded: boolean;
  readonly readableDidRead: boolean;
  readonly destroyed: boolean;
}

function nodeIncomingOf(bindings: unknown): NodeIncoming | undefined {
  const incoming = (bindings as { incoming?: NodeIncoming } | undefined)?.incoming;
  return incoming && typeof incoming.on === "function" && !incoming.readableDidRead ? incoming : undefined;
}

/**
 * Gathers a body's chunks within its bounds and tells when it stalled or dragged; the same for
 * a web stream and a node request. Declared: read straight into one array. Chunked: kept in
 * parts, joined at the end.
 */
function gathering(limits: BodyBounds) {
  const whole = limits.length !== null ? new Uint8Array(limits.length) : null;
  const parts: Uint8Array[] = [];
  let received = 0;
  const started = Date.now();
  let lastRead = started;
  return {
    add(value: Uint8Array): void {
      lastRead = Date.now();
      if (received + value.byteLength > limits.maxBytes || (limits.length !== null && received + value.byteLength > limits.length)) throw limits.tooLarge();
      limits.onBytes?.(value.byteLength);
      if (whole) whole.set(value, received);
      else parts.push(value);
      received += value.byteLength;
    },
    /**
     * Calls `onTimeout` with the 408 once the body sends nothing for `idleMs` or is not whole
     * after `timeoutMs`. One timer for the whole body, rescheduled only when it fires: a
     * per-read timer cost more than the read (a 12 MiB body comes in ~200 reads). Returns its stop.
     */
    watch(onTimeout: (error: Error) => void): () => void {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const check = () => {
        const now = Date.now();
        const idleLeft = lastRead + limits.idleMs - now;
        const totalLeft = started + limits.timeoutMs - now;
        if (idleLeft <= 0 || totalLeft <= 0)
          onTimeout(bodyTimedOut(now - started >= limits.timeoutMs ? `the body did not arrive whole within ${limits.timeoutMs / 1000} s` : `the body sent nothing for ${limits.idleMs / 1000} s`));
        else timer = setTimeout(check, Math.min(idleLeft, totalLeft));
      };
      timer = setTimeout(check, Math.min(limits.idleMs, limits.timeoutMs));
      return () => clearTimeout(timer);
    },
    result(): Uint8Array {
      if (whole) return received === whole.byteLength ? whole : whole.subarray(0, received);
      if (parts.length === 1) return parts[0]!;
      const joined = new Uint8Array(received);
      let at = 0;
      for (const part of parts) {
        joined.set(part, at);
        at += part.byteLength;
      }
      return joined;
    },
  };
}

/** The whole of `body` in one array, within its limits (see `readRequestBody`). */
async function readWhole(body: ReadableStream<Uint8Array>, limits: BodyBounds): Promise<Uint8Array> {
  const reader = body.getReader();
  const into = gathering(limits);
  let stop = () => {};
  const timedOut = new Promise<Error>((resolve) => {
    stop = into.watch(resolve);
  });
  try {
    for (;;) {
      const next = await Promise.race([reader.read(), timedOut]);
      if (next instanceof Error) throw next;
      if (next.done) break;
      into.add(next.value);
    }
  } catch (error) {
    reader.cancel().catch(() => {});
    throw error;
  } finally {
    stop();
  }
  return into.result();
}

/**
 * The same from the node request itself, on Node: no web Request, no web stream of the body
 * (Readable.toWeb's, which its listeners kept until the socket closed: ~1.5 KB a waiting lease
 * request; docs/architecture.md, "Dispatch", waiting volunteers). On a refusal the request is
 * paused and left to node-server, as a cancelled web reader left it.
 */
function readNodeWhole(incoming: NodeIncoming, limits: BodyBounds): Promise<Uint8Array> {
  return new Promise((resolve, reject) => {
    const into = gathering(limits);
    const finish = (error?: unknown) => {
      stop();
      incoming.off("data", onData);
      incoming.off("end", onEnd);
      incoming.off("error", onError);
      incoming.off("close", onClose);
      if (error === undefined) resolve(into.result());
      else {
        incoming.pause();
        reject(error);
      }
    };
    const onData = (chunk: unknown) => {
      try {
        into.add(chunk as Uint8Array);
      } catch (error) {
        finish(error);
      }
    };
    const onEnd = () => finish();
    const onError = (error: unknown) => finish(error ?? new Error("the body failed"));
    const onClose = () => {
      if (!incoming.readableEnded) finish(new Error("Client connection prematurely closed."));
    };
    const stop = into.watch(finish);
    if (incoming.destroyed) return finish(new Error("Client connection prematurely closed."));
    incoming.on("data", onData);
    incoming.on("end", onEnd);
    incoming.on("error", onError);
    incoming.on("close", onClose);
  });
}

// As hono's validator tells a JSON body: `application/json`, or any `+json` type.
const jsonMediaType = /^application\/([\w.-]+\+)?json$/i;

/**
 * Refuses a JSON body nested deeper than `maxBodyDepth` with a 422 naming where, before any
 * route sees it. The body is parsed once: hono keeps it for the route's validator. A body that
 * is not JSON is left to the validator, whose 400 says so. Not for /api/work/* (its routes bound
 * what they store themselves).
 */
export const limitJsonBodies: MiddlewareHandler<AppBindings> = async (c, next) => {
  if (c.req.method === "GET" || c.req.method === "HEAD" || c.req.path.startsWith("/api/work/")) return next();
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

const minute = 60_000;
const hour = 60 * minute;
export const loginWindowMs = 15 * minute;
export const signupWindowMs = hour;
/** The windows of the volunteer minting limits (docs/architecture.md, "Minting volunteers"). */
export const mintHourMs = hour;
export const mintDayMs = 24 * hour;

/** "15 minutes", "1 hour", "24 hours". */
const describeWindow = (ms: number) => (ms % hour === 0 ? (ms === hour ? "1 hour" : `${ms / hour} hours`) : `${ms / minute} minutes`);

/** Counts one hit against `key`; a 429 with Retry-After once more than `limit` in the window. */
export async function spendLimit(c: AppContext, key: string, limit: number, windowMs: number, what: string): Promise<void> {
  const state = await hitRateLimit(c.var.deps.db, key, windowMs);
  if (state.hits > limit) {
    throw tooManyRequests(`too many ${what}: at most ${limit} in ${describeWindow(windowMs)}; try again later`, state.resetInMs);
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
  // A key this process saw past its limit stays past it until its window ends (nothing but a
  // checked success gives a hit back): refused here without a round trip, so that a flood of
  // refused guesses costs no database connection (docs/architecture.md, "Bounds on what one caller holds").
  const { overLimit } = c.var.deps.bounds;
  const now = Date.now();
  for (const { key, limit } of keys) {
    const until = overLimit.get(key);
    if (until !== undefined && until > now) throw tooManyRequests(`too many ${what}: at most ${limit} in ${describeWindow(windowMs)}; try again later`, until - now);
  }
  let refused: { limit: number; resetInMs: number } | null = null;
  for (const { key, limit } of keys) {
    const state = await hitRateLimit(c.var.deps.db, key, windowMs);
    if (state.hits > limit) {
      rememberOverLimit(overLimit, key, now + state.resetInMs);
      if (!refused || state.resetInMs > refused.resetInMs) refused = { limit, resetInMs: state.resetInMs };
    }
  }
  if (refused) throw tooManyRequests(`too many ${what}: at most ${refused.limit} in ${describeWindow(windowMs)}; try again later`, refused.resetInMs);
}

/** At most this many keys are remembered past their limit; the ended ones go first. */
const maxOverLimitKeys = 10_000;

function rememberOverLimit(overLimit: Map<string, number>, key: string, until: number): void {
  if (overLimit.size >= maxOverLimitKeys) {
    const now = Date.now();
    for (const [k, u] of overLimit) if (u <= now) overLimit.delete(k);
    if (overLimit.size >= maxOverLimitKeys) overLimit.clear();
  }
  overLimit.set(key, until);
}

/** Gives back the hits `spendLimits` counted against `keys`. */
export async function refundLimits(c: AppContext, keys: { key: string }[], windowMs: number): Promise<void> {
  for (const { key } of keys) await refundRateLimit(c.var.deps.db, key, windowMs);
}
