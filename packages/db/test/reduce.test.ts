import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { reduceLevels } from "../src/dispatch/reduce.ts";
import { createTask, createUser, createVolunteer, getTaskView } from "../src/index.ts";
import { finalChunksPage, getTaskForResults } from "../src/reads/results.ts";
import type { NewTask } from "../src/tasks/tasks.ts";
import { type LeasedChunk, leaseChunks, leaseRef, leaseRequest, openTestDb, submitChunks, type TestDb, taskFixture, testBackends } from "../testing/testing.ts";

describe("the reduce tree's shape", () => {
  it("reduces 256 at a time, level by level, up to one chunk", () => {
    expect(reduceLevels(1)).toEqual([{ level: 1, firstIdx: 1, count: 1, childFirstIdx: 0, childCount: 1 }]);
    expect(reduceLevels(600)).toEqual([
      { level: 1, firstIdx: 600, count: 3, childFirstIdx: 0, childCount: 600 },
      { level: 2, firstIdx: 603, count: 1, childFirstIdx: 600, childCount: 3 },
    ]);
    const big = reduceLevels(256 * 256 + 1);
    expect(big.map((l) => l.count)).toEqual([257, 2, 1]);
  });
});

describe.each(testBackends())("reduce on %s", (backend) => {
  let testDb: TestDb;
  let ownerId: string;
  const db = () => testDb.handle.db;

  beforeAll(async () => {
    testDb = await openTestDb(backend);
    ownerId = (await createUser(db(), { email: "reducer@example.com", passwordHash: "x", firstIsAdmin: false }))!.id;
  });
  afterAll(async () => testDb?.dispose());

  const start = async (items: unknown[], overrides: Partial<NewTask> = {}) => {
    await db().execute(sql`UPDATE tasks SET status = 'cancelled' WHERE status = 'running'`);
    return createTask(
      db(),
      taskFixture(ownerId, { name: "sum", code: "export default (x) => x; export const reduce = (r) => r", hasReduce: true, maxAttempts: 1, inputs: { kind: "array", items }, ...overrides }),
    );
  };

  // The "volunteer": squares on work chunks, sums on reduce chunks (what the sandbox would run).
  const compute = (chunk: LeasedChunk): unknown => {
    const input = JSON.parse(chunk.input) as unknown;
    return chunk.entry === "reduce" ? (input as number[]).reduce((a, b) => a + b, 0) : (input as number) ** 2;
  };

  it("runs the reduce chunks after the task's own and stores the aggregate", async () => {
    const items = Array.from({ length: 600 }, (_, i) => i);
    const taskId = await start(items);
    const volunteerId = (await createVolunteer(db(), { name: "v", userId: null })).id;
    const seen = { work: 0, reduce: 0 };
    for (let round = 0; round < 100; round++) {
      const chunks = await leaseChunks(db(), leaseRequest(volunteerId, { max: 64, threads: 4 }));
      if (chunks.length === 0) break;
      for (const chunk of chunks) seen[chunk.entry]++;
      // Reduce chunks come only once every chunk below them is done.
      if (chunks.some((c) => c.entry === "reduce")) expect(seen.work).toBe(600);
      await submitChunks(db(), {
        volunteerId,
        shard: 0,
        errors: [],
        results: chunks.map((c) => ({ ...leaseRef(c), result: JSON.stringify(compute(c)), cpuMs: 1 })),
      });
    }
    expect(seen).toEqual({ work: 600, reduce: 4 });
    const view = await getTaskView(db(), taskId);
    expect(view!.status).toBe("done");
    expect(view!.counts).toMatchObject({ total: 600, done: 600, failed: 0, pending: 0, leased: 0 });
    expect(view!.aggregate).toEqual({ state: "done", value: items.reduce((sum, x) => sum + x * x, 0) });
    // The results download holds the task's own chunks only.
    const page = await finalChunksPage(db(), (await getTaskForResults(db(), taskId))!, -1, 1000);
    expect(page).toHaveLength(600);
  });

  it("reports a failed aggregate without reducing when a chunk failed", async () => {
    const taskId = await start([1, 2]);
    const volunteerId = (await createVolunteer(db(), { name: "v", userId: null })).id;
    const chunks = await leaseChunks(db(), leaseRequest(volunteerId, { max: 64, threads: 4 }));
    await submitChunks(db(), {
      volunteerId,
      shard: 0,
      results: [{ ...leaseRef(chunks[0]!), result: "1", cpuMs: 1 }],
      errors: [{ leaseRowId: chunks[1]!.leaseRowId, taskId, index: 1, kind: "throw", message: "no", cpuMs: 1 }],
    });
    const view = await getTaskView(db(), taskId);
    expect(view!.status).toBe("done");
    expect(view!.aggregate).toEqual({ state: "failed" });
    expect(await leaseChunks(db(), leaseRequest(volunteerId, { max: 64, threads: 4 }))).toEqual([]);
  });
});
