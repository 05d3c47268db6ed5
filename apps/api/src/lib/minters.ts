import type { Db } from "@crowdcompute/db";
import { getMinterState, type MinterState } from "@crowdcompute/db/accounts";

/**
 * How long a process trusts what it last read of a volunteer token's account and minting key.
 * A revocation or suspension made through this process is seen at once (`forget`); one made
 * through another API process or Workers isolate, within this long. Five seconds keeps the
 * volunteer hot path (thousands of requests a second, a few hundred distinct owners) at one
 * small query per owner per process every five seconds, and a revoked key's volunteers stop
 * within a few of their own requests.
 */
const minterStateTtlMs = 5_000;
const maxEntries = 10_000;

/**
 * A per-process cache of `getMinterState`, keyed by (user, key). Concurrent misses share one
 * query; a failed query is not kept, so the next request asks again.
 */
export function createMinterCache(ttlMs = minterStateTtlMs) {
  const entries = new Map<string, { readAt: number; state: Promise<MinterState> }>();
  return {
    get(db: Db, userId: string | null, apiKeyId: string | null): Promise<MinterState> {
      const key = `${userId ?? ""}/${apiKeyId ?? ""}`;
      const now = Date.now();
      const cached = entries.get(key);
      if (cached && now - cached.readAt < ttlMs) return cached.state;
      entries.delete(key); // re-inserted last: the Map's order is then oldest first
      if (entries.size >= maxEntries) entries.delete(entries.keys().next().value!);
      const state = getMinterState(db, { userId, apiKeyId });
      entries.set(key, { readAt: now, state });
      state.catch(() => {
        if (entries.get(key)?.state === state) entries.delete(key);
      });
      return state;
    },
    /** After a key is revoked or an account suspended (or restored) here: read again at once. */
    forget(): void {
      entries.clear();
    },
  };
}

export type MinterCache = ReturnType<typeof createMinterCache>;
