// What one API process holds for its callers at once (docs/architecture.md, "Bounds on what
// one caller holds"): request body bytes being read and parsed, in all and per network
// source, and open follows / event streams / input uploads per creator and per source. Kept
// in the process (each process bounds its own memory): on Node one per server, on Workers one
// per isolate. What takes from them for a request is bounds.ts.
import type { AppEnv } from "../env.ts";
import { ProblemError, tooManyRequests } from "./problem.ts";

export type BoundsConfig = AppEnv["bounds"];

/** Bodies of at most this many bytes may use the whole in-flight total; larger ones leave `smallBodyReserve` to them. */
const smallBodyBytes = 1024 * 1024;
const smallBodyReserve = 16 * 1024 * 1024;
/** What a refused body or stream is told to wait: by then other bodies have been read. */
export const boundsRetryAfterSeconds = 2;

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
