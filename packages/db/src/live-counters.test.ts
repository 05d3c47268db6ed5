// The data behind abuse limits, the leaderboard and live updates: rate-limit windows, the
// per-volunteer counters kept by the results trigger, and NOTIFY reaching a listener.
import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createApiKey, findApiKeyOwner, listApiKeys, revokeApiKey } from "./api-keys.ts";
import { listenTaskChanged, notifyTaskChanged } from "./events.ts";
import { newId } from "./ids.ts";
import { hitRateLimit, peekRateLimits } from "./rate-limits.ts";
import { leaderboard } from "./stats.ts";
import { openTestDb, testBackends, type TestDb } from "./testing.ts";
import { createUser, createVolunteer } from "./users.ts";

describe.each(testBackends())("limits, counters and notifications on %s", (backend) => {
  let testDb: TestDb;
  beforeAll(async () => {
    testDb = await openTestDb(backend);
  });
  afterAll(async () => testDb?.dispose());

  it("counts hits in a fixed window and starts again when it has passed", async () => {
    const db = testDb.handle.db;
    expect((await hitRateLimit(db, "k", 60_000)).hits).toBe(1);
    const second = await hitRateLimit(db, "k", 60_000);
    expect(second.hits).toBe(2);
    expect(second.resetInMs).toBeGreaterThan(0);
    expect(second.resetInMs).toBeLessThanOrEqual(60_000);
    expect((await peekRateLimits(db, ["k", "other"], 60_000)).get("k")?.hits).toBe(2);
    expect((await peekRateLimits(db, ["k", "other"], 60_000)).has("other")).toBe(false);
    // A 50 ms window: once it has passed the count starts from 1, and a peek sees nothing.
    await hitRateLimit(db, "short", 50);
    await hitRateLimit(db, "short", 50);
    await new Promise((resolve) => setTimeout(resolve, 120));
    expect((await peekRateLimits(db, ["short"], 50)).has("short")).toBe(false);
    expect((await hitRateLimit(db, "short", 50)).hits).toBe(1);
  });

  it("moves the volunteer counters once per result actually inserted", async () => {
    const db = testDb.handle.db;
    const user = (await createUser(db, { email: "counted@example.com", passwordHash: "x", firstIsAdmin: false }))!;
    const a = await createVolunteer(db, { name: "a", userId: user.id });
    const b = await createVolunteer(db, { name: "b", userId: user.id });
    const c = await createVolunteer(db, { name: "anonymous", userId: null });
    const task = newId();
    const insert = (rows: [number, string, number][]) =>
      db.execute(sql`INSERT INTO results (task_id, idx, result, volunteer_id, cpu_ms)
        SELECT ${task}::uuid, (r->>0)::int, '1', (r->>1)::uuid, (r->>2)::int FROM json_array_elements(${JSON.stringify(rows)}::json) r
        ON CONFLICT DO NOTHING`);
    await insert([[0, a.id, 5], [1, a.id, 5], [2, b.id, 7], [3, c.id, 1]]);
    await insert([[0, a.id, 5], [2, c.id, 100], [4, c.id, 2]]); // 0 and 2 are duplicates: only 4 counts
    expect(await leaderboard(db, 10)).toEqual([
      { kind: "user", id: user.id, name: "a", chunksDone: 3, cpuMs: 17, credit: 0 },
      { kind: "volunteer", id: c.id, name: "anonymous", chunksDone: 2, cpuMs: 3, credit: 0 },
    ]);
    expect(await leaderboard(db, 1)).toHaveLength(1);
  });

  it("finds live keys by hash only, and forgets revoked ones", async () => {
    const db = testDb.handle.db;
    const user = (await createUser(db, { email: "keys@example.com", passwordHash: "x", firstIsAdmin: false }))!;
    const key = (await createApiKey(db, { userId: user.id, name: "k", prefix: "cc_abc", keyHash: "h1" }))!;
    expect(await findApiKeyOwner(db, "h1")).toEqual({ keyId: key.id, userId: user.id, role: "creator" });
    expect(await findApiKeyOwner(db, "h2")).toBeNull();
    expect(await revokeApiKey(db, { id: key.id, userId: newId() })).toBe(false);
    expect(await revokeApiKey(db, { id: key.id, userId: user.id })).toBe(true);
    expect(await revokeApiKey(db, { id: key.id, userId: user.id })).toBe(false);
    expect(await findApiKeyOwner(db, "h1")).toBeNull();
    expect((await listApiKeys(db, user.id))[0]?.revokedAt).toBeInstanceOf(Date);
  });

  it("delivers task-change notifications to a listener", async () => {
    const db = testDb.handle.db;
    const heard: string[][] = [];
    let resolveHeard: () => void = () => {};
    const arrived = new Promise<void>((resolve) => (resolveHeard = resolve));
    const stop = await listenTaskChanged(db, (ids) => {
      heard.push(ids);
      resolveHeard();
    });
    try {
      const ids = Array.from({ length: 250 }, () => newId()); // more than one payload's worth
      await notifyTaskChanged(db, [...ids, ids[0]!]);
      await arrived;
      while (heard.flat().length < ids.length) await new Promise((resolve) => setTimeout(resolve, 20));
      expect(heard.flat().sort()).toEqual([...ids].sort());
    } finally {
      await stop();
    }
  });
});
