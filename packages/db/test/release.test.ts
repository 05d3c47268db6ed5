// Giving leases back early: by lease (a volunteer that paused) and by the Idempotency-Key of a
// lease request whose answer nobody will read (a page that closed while it was in flight).
import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { queryRows } from "../src/db.ts";
import { createTask, createUser, createVolunteer, releaseLeaseRequest, releaseLeases } from "../src/index.ts";
import { leaseChunks, leaseRequest, openTestDb, type TestDb, taskFixture, testBackends } from "../testing/testing.ts";

describe.each(testBackends())("releasing leases on %s", (backend) => {
  let testDb: TestDb;
  let ownerId: string;
  const db = () => testDb.handle.db;

  beforeAll(async () => {
    testDb = await openTestDb(backend);
    ownerId = (await createUser(db(), { email: "release@example.com", passwordHash: "x", firstIsAdmin: false }))!.id;
  });
  afterAll(async () => testDb?.dispose());

  const startTask = async (chunks: number) => {
    await db().execute(sql`UPDATE tasks SET status = 'cancelled' WHERE status = 'running'`);
    return createTask(db(), taskFixture(ownerId, { inputs: { kind: "array", items: Array.from({ length: chunks }, (_, i) => i) } }));
  };
  const volunteer = async (name: string) => (await createVolunteer(db(), { name, userId: null })).id;
  const lease = (volunteerId: string, max: number, idempotencyKey?: string) =>
    leaseChunks(db(), { ...leaseRequest(volunteerId, { max, threads: max }), ...(idempotencyKey ? { idempotencyKey } : {}) });
  const liveLeases = async (volunteerId: string) => (await queryRows<{ n: number }>(db(), sql`SELECT count(*)::int AS n FROM leases WHERE volunteer_id = ${volunteerId} AND NOT reclaimed`))[0]!.n;

  it("gives back what a request already got: its chunks go to the next volunteer", async () => {
    const taskId = await startTask(4);
    const [closing, next] = [await volunteer("closing"), await volunteer("next")];
    expect((await lease(closing, 4, "in-flight")).map((c) => c.index)).toEqual([0, 1, 2, 3]);

    const released = await releaseLeaseRequest(db(), { volunteerId: closing, key: "in-flight", shard: 0 });
    expect(released.map((row) => row.taskId)).toEqual([taskId]);
    expect(await liveLeases(closing)).toBe(0);
    expect((await lease(next, 4)).map((c) => c.index)).toEqual([0, 1, 2, 3]);
    // Nothing left to give back the second time.
    expect(await releaseLeaseRequest(db(), { volunteerId: closing, key: "in-flight", shard: 0 })).toEqual([]);
  });

  it("voids a request that has not arrived yet: it gets no blocks", async () => {
    await startTask(4);
    const [closing, next] = [await volunteer("closing"), await volunteer("next")];
    expect(await releaseLeaseRequest(db(), { volunteerId: closing, key: "late", shard: 0 })).toEqual([]);
    expect(await lease(closing, 4, "late")).toEqual([]);
    expect(await liveLeases(closing)).toBe(0);
    // A request with another key leases as usual; so does another volunteer with the same key.
    expect((await lease(closing, 2, "fresh")).map((c) => c.index)).toEqual([0, 1]);
    expect((await lease(next, 2, "late")).map((c) => c.index)).toEqual([2, 3]);
  });

  it("touches only the caller's leases", async () => {
    await startTask(2);
    const [holder, other] = [await volunteer("holder"), await volunteer("other")];
    const held = await lease(holder, 2, "key");
    expect(await releaseLeaseRequest(db(), { volunteerId: other, key: "key", shard: 0 })).toEqual([]);
    expect(await releaseLeases(db(), { volunteerId: other, leaseRowIds: [held[0]!.leaseRowId], shard: 0 })).toEqual([]);
    expect(await liveLeases(holder)).toBe(1);
    expect(await releaseLeases(db(), { volunteerId: holder, leaseRowIds: [held[0]!.leaseRowId], shard: 0 })).toEqual([held[0]!.leaseRowId]);
    expect(await liveLeases(holder)).toBe(0);
  });
});
