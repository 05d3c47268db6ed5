// The data behind abuse limits, the leaderboard and live updates: rate-limit windows, the
// per-volunteer counters kept by the submitting statements, and NOTIFY reaching a listener.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createApiKey, findApiKeyOwner, listApiKeys, revokeApiKey } from "../src/accounts/api-keys.ts";
import { hitRateLimit, peekRateLimits } from "../src/accounts/rate-limits.ts";
import { createUser, createVolunteer, getVolunteerFigures, renameVolunteer, setDisplayName } from "../src/accounts/users.ts";
import { listenTaskChanged, notifyTaskChanged } from "../src/events.ts";
import { newId } from "../src/ids.ts";
import { leaderboard } from "../src/reads/stats.ts";
import { createTask } from "../src/tasks/tasks.ts";
import { type LeasedChunk, leaseChunks, leaseRef, leaseRequest, openTestDb, submitChunks, type TestDb, taskFixture, testBackends } from "../testing/testing.ts";

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
    await createTask(db, taskFixture(user.id, { inputs: { kind: "range", start: 0, end: 5, step: 1, size: 1 } }));
    const lease = (volunteerId: string, max: number) => leaseChunks(db, leaseRequest(volunteerId, { userId: null, max }));
    const submit = (volunteerId: string, chunks: LeasedChunk[], cpuMs: number) =>
      submitChunks(db, { volunteerId, shard: 0, errors: [], results: chunks.map((chunk) => ({ ...leaseRef(chunk), result: "1", cpuMs })) });
    const [ofA, ofB, ofC] = [await lease(a.id, 2), await lease(b.id, 1), await lease(c.id, 2)];
    // Held longer than the claimed CPU time, so that each result's credit is its claim.
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(await submit(a.id, ofA, 5)).toMatchObject({ inserted: 2 });
    expect(await submit(b.id, ofB, 7)).toMatchObject({ inserted: 1 });
    expect(await submit(c.id, ofC.slice(0, 1), 1)).toMatchObject({ inserted: 1 });
    // A repeat of c's first result counts nothing; its second result counts.
    expect(await submit(c.id, ofC, 2)).toMatchObject({ inserted: 1 });
    // An account without a display name shows as its newest volunteer.
    expect(await leaderboard(db, 10)).toEqual([
      { kind: "user", id: user.id, name: "b", chunksDone: 3, cpuMs: 17, credit: 17 },
      { kind: "volunteer", id: c.id, name: "anonymous", chunksDone: 2, cpuMs: 3, credit: 3 },
    ]);
    expect(await leaderboard(db, 1)).toHaveLength(1);

    // Names: a volunteer renames itself; an account's display name stands for all its volunteers.
    expect(await renameVolunteer(db, c.id, "Grace's laptop")).toBe(true);
    expect(await renameVolunteer(db, newId(), "nobody")).toBe(false);
    expect(await setDisplayName(db, user.id, "Ada")).toBe(true);
    expect((await leaderboard(db, 10)).map((entry) => entry.name)).toEqual(["Ada", "Grace's laptop"]);
    expect(await getVolunteerFigures(db, a.id)).toEqual({ id: a.id, name: "a", userId: user.id, shownAs: "Ada", chunksDone: 2, cpuMs: 10, credit: 10 });
    expect(await getVolunteerFigures(db, c.id)).toMatchObject({ name: "Grace's laptop", userId: null, shownAs: "Grace's laptop", chunksDone: 2 });
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
