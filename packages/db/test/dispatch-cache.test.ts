// The lease path's per-process caches belong to the database they were made with
// (src/dispatch/dispatch-cache.ts): two databases in one process, as tests open, share none.
import { describe, expect, it } from "vitest";
import { dispatchCacheOf } from "../src/dispatch/dispatch-cache.ts";
import { createPgliteDb } from "../src/pglite.ts";

describe("dispatch cache", () => {
  it("is made with each database, found from it, and shared with no other", async () => {
    const a = await createPgliteDb();
    const b = await createPgliteDb();
    try {
      expect(dispatchCacheOf(a.db)).toBe(a.dispatchCache);
      expect(dispatchCacheOf(b.db)).toBe(b.dispatchCache);
      expect(b.dispatchCache).not.toBe(a.dispatchCache);
      a.dispatchCache.tasksChanged();
      a.dispatchCache.markedAt.set("creator", Date.now());
      expect(b.dispatchCache.generation).toBe(0);
      expect(b.dispatchCache.markedAt.size).toBe(0);
      // A transaction keeps nothing: it gets an empty dispatch cache of its own.
      await a.db.transaction(async (tx) => {
        expect(dispatchCacheOf(tx)).not.toBe(a.dispatchCache);
      });
    } finally {
      await a.close();
      await b.close();
    }
  });
});
