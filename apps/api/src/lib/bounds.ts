// What one API process holds for its callers at once (docs/architecture.md, "Bounds on what
// one caller holds"): request body bytes being read and parsed, in all and per network
// source, and open follows / event streams / input uploads per creator and per source. Kept
// in the process (each process bounds its own memory): on Node one per server, on Workers one
// per isolate.
import type { AppEnv } from "../env.ts";
import type { AppContext } from "./context.ts";
import { sourceOf } from "./limits.ts";
import { ProblemError, tooManyRequests } from "./problem.ts";

export type BoundsConfig = AppEnv["bounds"];

/** Bodies of at most this many bytes may use the whole in-flight total; larger ones leave `smallBodyReserve` to them. */
const smallBodyBytes = 1024 * 1024;
const smallBodyReserve = 16 * 1024 * 1024;
/** What a refused body or stream is told to wait: by then other bodies have been read. */
const boundsRetryAfterSeconds = 2;

/** A 503 with Retry-After: the process as a whole is busy reading other callers' bodies. */
function serverBusy(detail: string): ProblemError {
  return new ProblemError(503, "Service unavailable", detail, undefined, { "retry-after": String(boundsRetryAfterSeconds), connection: "close" });
}

/** Body bytes held while read and handled: taken up front (Content-Length) or as they arrive. */
export class ByteBudget {
  used = 0;
  readonly bySource = new Map<string, number>();
  readonly total: number;
  readonly perSource: number;

  constructor(total: number, perSource: number) {
    this.total = total;
    this.perSource = perSource;
  }

  /**
   * Takes `bytes` more for a body of `source` that holds `held` so far: 429 past the source's
   * share, 503 past the process's total. A source's only body in flight is bounded by its
   * route's limit alone (a 64 MiB task fits a 16 MiB share); the share bounds what it sends
   * beside it, so that one caller's bodies are read and parsed about one at a time.
   */
  take(source: string, held: number, bytes: number): void {
    const mine = this.bySource.get(source) ?? 0;
    if (mine > held && mine + bytes > this.perSource) {
      throw tooManyRequests(`this address has ${mine} bytes of request bodies being read already; at most ${this.perSource} at once: send it when those are done`, boundsRetryAfterSeconds * 1000);
    }
    const room = held + bytes > smallBodyBytes ? this.total - smallBodyReserve : this.total;
    if (this.used + bytes > room) throw serverBusy(`the server is reading ${this.used} bytes of request bodies already: try again shortly`);
    this.used += bytes;
    this.bySource.set(source, mine + bytes);
  }

  give(source: string, bytes: number): void {
    if (bytes === 0) return;
    this.used -= bytes;
    const left = (this.bySource.get(source) ?? 0) - bytes;
    if (left > 0) this.bySource.set(source, left);
    else this.bySource.delete(source);
  }
}

/** Counted places per key (a creator, a source): `take` gives a release function, or null when full. */
export class Slots {
  readonly held = new Map<string, number>();

  take(key: string, limit: number): (() => void) | null {
    const n = this.held.get(key) ?? 0;
    if (n >= limit) return null;
    this.held.set(key, n + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const left = (this.held.get(key) ?? 1) - 1;
      if (left > 0) this.held.set(key, left);
      else this.held.delete(key);
    };
  }
}

export interface ProcessBounds {
  config: BoundsConfig;
  bodies: ByteBudget;
  streams: Slots;
  uploads: Slots;
  /** Rate-limit keys seen past their limit, and until when (epoch ms): refused without the database (lib/limits.ts). */
  overLimit: Map<string, number>;
}

export function createProcessBounds(config: BoundsConfig): ProcessBounds {
  return { config, bodies: new ByteBudget(config.bodyBytesInFlight, config.bodyBytesPerSource), streams: new Slots(), uploads: new Slots(), overLimit: new Map() };
}

/**
 * The network source a request counts under: the address the runtime saw (the socket's on
 * Node, Cloudflare's on Workers) or, when that is a trusted proxy (TRUSTED_PROXIES), the
 * nearest address in X-Forwarded-For that is not one; as its /64 for IPv6 (`sourceOf`).
 * "unknown" where the runtime knows no address (app.request in tests).
 */
export function networkSource(c: AppContext): string {
  const ip = c.var.deps.clientIp(c);
  return ip === null ? "unknown" : sourceOf(ip);
}

/** `clientIp` of a runtime, seen through the trusted proxies of `env` (see `networkSource`). */
export function throughProxies(clientIp: (c: AppContext) => string | null, trusted: readonly string[]): (c: AppContext) => string | null {
  if (trusted.length === 0) return clientIp;
  const isTrusted = (address: string) =>
    trusted.includes(
      address
        .trim()
        .toLowerCase()
        .replace(/^::ffff:(?=\d+\.\d+\.\d+\.\d+$)/, ""),
    );
  return (c) => {
    const peer = clientIp(c);
    if (peer === null || !isTrusted(peer)) return peer;
    const forwarded = (c.req.header("x-forwarded-for") ?? "")
      .split(",")
      .map((a) => a.trim())
      .filter(Boolean);
    // The proxies append: the right-most address no trusted proxy added is the client's.
    for (let i = forwarded.length - 1; i >= 0; i--) if (!isTrusted(forwarded[i]!)) return forwarded[i]!;
    return peer;
  };
}

/**
 * A place among the creator's (null: an anonymous stream's) and its source's open streams, or
 * a 429: released when the stream ends or its client goes (`releaseWith`).
 */
export function takeStreamSlot(c: AppContext, creatorId: string | null): () => void {
  const { bounds } = c.var.deps;
  const { streamsPerCreator, streamsPerSource } = bounds.config;
  const mine = creatorId === null ? () => {} : bounds.streams.take(`creator:${creatorId}`, streamsPerCreator);
  if (!mine) throw tooManyRequests(`this account has ${streamsPerCreator} follows and event streams open already (the most at once): close one first`, boundsRetryAfterSeconds * 1000);
  const source = bounds.streams.take(`source:${networkSource(c)}`, streamsPerSource);
  if (!source) {
    mine();
    throw tooManyRequests(`this address has ${streamsPerSource} follows and event streams open already (the most at once): close one first`, boundsRetryAfterSeconds * 1000);
  }
  return () => {
    mine();
    source();
  };
}

/** A place among the creator's running input uploads, or a 429. */
export function takeUploadSlot(c: AppContext, creatorId: string): () => void {
  const { bounds } = c.var.deps;
  const release = bounds.uploads.take(creatorId, bounds.config.uploadsPerCreator);
  if (!release)
    throw tooManyRequests(`this account has ${bounds.config.uploadsPerCreator} input uploads running already (the most at once): send parts one after another`, boundsRetryAfterSeconds * 1000);
  return release;
}

/**
 * `response` with a body that calls `release` once it ends, fails or is cancelled by its
 * client (a response without a body releases at once).
 */
export function releaseWith(response: Response, release: () => void): Response {
  if (!response.body) {
    release();
    return response;
  }
  const reader = response.body.getReader();
  const body = new ReadableStream<Uint8Array>({
    async pull(controller) {
      try {
        const { done, value } = await reader.read();
        if (done) {
          release();
          controller.close();
        } else controller.enqueue(value);
      } catch (error) {
        release();
        controller.error(error);
      }
    },
    cancel(reason) {
      release();
      return reader.cancel(reason);
    },
  });
  return new Response(body, response);
}
