// Lease requests sized to the volunteer's work buffer: a task's measured mean chunk time
// decides how many chunks fill `bufferMs` of its threads, cut into blocks of at most 4096.

import { MAX_BLOCK_CHUNKS, MAX_LEASE_CHUNKS } from "@crowdcompute/contract/limits";
import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { queryRows } from "../src/db.ts";
import { createTask, createUser, createVolunteer, leaseBlocks } from "../src/index.ts";
import { leaseChunks, leaseRef, leaseRequest, openTestDb, submitChunks, type TestDb, taskFixture, testBackends } from "../testing/testing.ts";

describe.each(testBackends())("lease requests sized to a buffer on %s", (backend) => {
  let testDb: TestDb;
  let ownerId: string;
  const db = () => testDb.handle.db;
  const dbNow = async () => new Date((await queryRows<{ now: Date | string }>(db(), sql`SELECT now() AS now`))[0]!.now).getTime();

  beforeAll(async () => {
    testDb = await openTestDb(backend);
    ownerId = (await createUser(db(), { email: "buffer@example.com", passwordHash: "x", firstIsAdmin: true }))!.id;
  });
  afterAll(async () => testDb?.dispose());

  /** A running task of `total` range chunks, alone among running tasks. */
  const onlyTask = async (total: number) => {
    await db().execute(sql`UPDATE tasks SET status = 'cancelled' WHERE status = 'running'`);
    return createTask(db(), taskFixture(ownerId, { inputs: { kind: "range", start: 0, end: total, step: 1, size: 1 } }));
  };
  // Each process keeps its candidate list (and so a task's figures) for 100 ms.
  const candidatesExpire = () => new Promise((resolve) => setTimeout(resolve, 150));
  const volunteer = async () => (await createVolunteer(db(), { name: "v", userId: null })).id;
  // The server counts no more CPU time than passed since the lease: date the leases back so
  // that the claimed times count in full.
  const ageLeases = () => db().execute(sql`UPDATE leases SET created_at = created_at - interval '1 minute'`);

  it("starts a new task small, then sizes blocks from its mean chunk time", async () => {
    const taskId = await onlyTask(10_000);
    const v = await volunteer();
    // Unmeasured: 2 chunks a thread, whatever the buffer.
    const first = await leaseChunks(db(), leaseRequest(v, { max: 4096, bufferMs: 400, threads: 2 }));
    expect(first).toHaveLength(4);
    // Teach it a mean of 10 ms a chunk: 8 results of 10 ms each (it needs 8 to trust the figure).
    const more = await leaseChunks(db(), leaseRequest(v, { max: 4, threads: 2 }));
    await ageLeases();
    await submitChunks(db(), { volunteerId: v, shard: 0, results: [...first, ...more].map((c) => ({ ...leaseRef(c), result: "1", cpuMs: 10 })), errors: [] });
    await candidatesExpire();
    // 400 ms of 2 threads at 10 ms a chunk: 80 chunks, as one block (one signed id, one row when it comes back).
    const blocks = await leaseBlocks(db(), leaseRequest(v, { max: 4096, bufferMs: 400, threads: 2 }));
    // (Where in the task depends on the volunteer's stripe.)
    const at = blocks[0]!.firstIdx;
    expect(blocks.map((b) => [b.taskId, b.firstIdx, b.n, (JSON.parse(b.inputsJson) as unknown[]).length])).toEqual([[taskId, at, 80, 80]]);
    expect((JSON.parse(blocks[0]!.inputsJson) as unknown[])[79]).toEqual({ start: at + 79, end: at + 80, step: 1 });
    // Half the CPU lent: half as many; `max` still caps the total.
    expect(chunksIn(await leaseBlocks(db(), leaseRequest(v, { max: 4096, bufferMs: 400, threads: 2, cpuPercent: 50 })))).toBe(40);
    expect(chunksIn(await leaseBlocks(db(), leaseRequest(v, { max: 30, bufferMs: 400, threads: 2 })))).toBe(30);
  });

  it("takes a big buffer from several stripes in one request, every block at most 4096 chunks", async () => {
    for (const total of [20_000, 100_000]) {
      await onlyTask(total);
      const v = await volunteer();
      const teach = await leaseChunks(db(), leaseRequest(v, { max: 8, threads: 1 }));
      await submitChunks(db(), { volunteerId: v, shard: 0, results: teach.map((c) => ({ ...leaseRef(c), result: "1", cpuMs: 0 })), errors: [] });
      await candidatesExpire();
      // A mean of 0 ms: the request is capped at 16,384 chunks, more than one stripe holds
      // (16 stripes: 1,250 chunks each at 20k, 6,250 at 100k).
      const blocks = await leaseBlocks(db(), leaseRequest(v, { max: MAX_LEASE_CHUNKS, bufferMs: 4000, threads: 2 }));
      expect(chunksIn(blocks)).toBe(MAX_LEASE_CHUNKS);
      expect(blocks.every((b) => b.n >= 1 && b.n <= MAX_BLOCK_CHUNKS)).toBe(true);
      expect(Math.max(...blocks.map((b) => b.n))).toBe(total === 100_000 ? MAX_BLOCK_CHUNKS : 1250);
      const indexes = blocks.flatMap((b) => Array.from({ length: b.n }, (_, o) => b.firstIdx + o));
      expect(new Set(indexes).size).toBe(MAX_LEASE_CHUNKS);
    }
  });

  it("gives no request more than 8 MiB of inputs by the task's mean input size", async () => {
    await db().execute(sql`UPDATE tasks SET status = 'cancelled' WHERE status = 'running'`);
    const big = "x".repeat(50_000);
    await createTask(db(), taskFixture(ownerId, { inputs: { kind: "array", items: Array.from({ length: 400 }, (_, i) => ({ i, big })) } }));
    const v = await volunteer();
    const chunks = await leaseChunks(db(), leaseRequest(v, { max: 4096 }));
    const meanBytes = JSON.stringify({ i: 100, big }).length;
    expect(chunks.length).toBe(Math.floor((8 * 1024 * 1024) / meanBytes));
    expect(JSON.parse(chunks[7]!.input)).toEqual({ i: chunks[7]!.index, big });
  });

  it("gives a measured task's blocks deadlines from its mean, not timeoutMs per chunk", async () => {
    await onlyTask(1000);
    const v = await volunteer();
    const teach = await leaseChunks(db(), leaseRequest(v, { max: 8, threads: 1 }));
    await ageLeases();
    await submitChunks(db(), { volunteerId: v, shard: 0, results: teach.map((c) => ({ ...leaseRef(c), result: "1", cpuMs: 10 })), errors: [] });
    await candidatesExpire();
    const before = await dbNow();
    // 128 chunks of 10 ms on 1 thread: due in 60 s + 4 × 10 ms × 128 + grace, where
    // timeoutMs per chunk would be 128 minutes.
    const blocks = await leaseBlocks(db(), leaseRequest(v, { max: 128, bufferMs: 60_000, threads: 1, graceMs: 1000 }));
    const after = await dbNow();
    expect(blocks.map((b) => b.n)).toEqual([128]);
    const expected = 60_000 + 40 * 128 + 1000;
    expect(blocks[0]!.deadline.getTime() - before).toBeGreaterThanOrEqual(expected - 1);
    expect(blocks[0]!.deadline.getTime() - after).toBeLessThanOrEqual(expected + 1);
  });
});

const chunksIn = (blocks: { n: number }[]) => blocks.reduce((n, b) => n + b.n, 0);
