// The lease path's per-process caches belong to the database they were made with
// (src/dispatch/dispatcher.ts): two databases in one process, as tests open, share none.
import { describe, expect, it } from "vitest";
import { dispatcherOf } from "../src/db.ts";
import { createPgliteDb } from "../src/pglite.ts";

describe("dispatcher", () => {
  it("is made with each database, found from it, and shared with no other", async () => {
    const a = await createPgliteDb();
    const b = await createPgliteDb();
    try {
      expect(dispatcherOf(a.db)).toBe(a.dispatcher);
      expect(dispatcherOf(b.db)).toBe(b.dispatcher);
      expect(b.dispatcher).not.toBe(a.dispatcher);
      a.dispatcher.tasksChanged();
      a.dispatcher.markedAt.set("creator", Date.now());
      expect(b.dispatcher.generation).toBe(0);
      expect(b.dispatcher.markedAt.size).toBe(0);
      // A transaction keeps nothing: it gets an empty dispatcher of its own.
      await a.db.transaction(async (tx) => {
        expect(dispatcherOf(tx)).not.toBe(a.dispatcher);
      });
    } finally {
      await a.close();
      await b.close();
    }
  });
});
