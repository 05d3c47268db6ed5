import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { queryRows } from "../src/db.ts";
import { createTask, createUser, createVolunteer, getTaskView, reclaimExpiredLeases } from "../src/index.ts";
import { finalChunksPage, getTaskForResults } from "../src/reads/results.ts";
import { resultsIn } from "../src/sql/result-rows.ts";
import { completeFinishedTasks, type NewTask } from "../src/tasks/tasks.ts";
import { type LeasedChunk, leaseChunks, leaseRef, leaseRequest, openTestDb, submitChunks, type TestDb, taskFixture, testBackends } from "../testing/testing.ts";

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe.each(testBackends())("scheduler on %s", (backend) => {
  let testDb: TestDb;
  let ownerId: string;
  const db = () => testDb.handle.db;

  beforeAll(async () => {
    testDb = await openTestDb(backend);
    const owner = await createUser(db(), { email: "owner@example.com", passwordHash: "x", firstIsAdmin: true });
    ownerId = owner!.id;
  });
  afterAll(async () => testDb?.dispose());

  const newTask = (overrides: Partial<NewTask> = {}): NewTask => taskFixture(ownerId, overrides);
  const volunteer = async () => (await createVolunteer(db(), { name: "v", userId: null })).id;
  const lease = (volunteerId: string, max: number, graceMs = 30_000) => leaseChunks(db(), leaseRequest(volunteerId, { max, graceMs }));
  const ok = (chunk: LeasedChunk, result: unknown) => ({ ...leaseRef(chunk), result: JSON.stringify(result), cpuMs: 5 });
  const cancelOthers = async (keep: string) => db().execute(sql`UPDATE tasks SET status = 'cancelled' WHERE id <> ${keep} AND status = 'running'`);

  it("stops leasing a task paused elsewhere at once, though this process keeps its candidate list for 100 ms", async () => {
    const taskId = await createTask(db(), newTask());
    await cancelOthers(taskId);
    const v = await volunteer();
    expect(await lease(v, 2)).toHaveLength(2);
    // Another API process pauses it: this process's cached list still names the task.
    await db().execute(sql`UPDATE tasks SET status = 'paused' WHERE id = ${taskId}`);
    expect(await lease(v, 2)).toEqual([]);
    // And one started elsewhere is found though the cached list does not name it.
    const other = await createTask(db(), newTask());
    await db().execute(sql`UPDATE tasks SET status = 'draft' WHERE id = ${other}`);
    expect(await lease(v, 2)).toEqual([]);
    await db().execute(sql`UPDATE tasks SET status = 'running' WHERE id = ${other}`);
    expect((await lease(v, 2)).map((c) => c.taskId)).toEqual([other, other]);
  });

  it("leases blocks of consecutive chunks with their inputs and completes the task exactly once", async () => {
    const taskId = await createTask(db(), newTask());
    await cancelOthers(taskId);
    const [a, b] = [await volunteer(), await volunteer()];
    const first = await lease(a, 4);
    const second = await lease(b, 64);
    expect(first.map((c) => c.index)).toEqual([0, 1, 2, 3]);
    expect(second.map((c) => c.index)).toEqual([4, 5, 6, 7, 8, 9]);
    expect(JSON.parse(first[2]!.input)).toEqual({ n: 2 });
    expect(await lease(b, 64)).toEqual([]);

    const view = await getTaskView(db(), taskId);
    expect(view!.counts).toEqual({ total: 10, pending: 0, leased: 10, done: 0, failed: 0, awaitingCopy: 0 });

    const outcome = await submitChunks(db(), { volunteerId: a, shard: 0, results: first.map((c) => ok(c, c.index * 2)), errors: [] });
    expect(outcome).toEqual({ inserted: 4, rejected: [] });
    const again = await submitChunks(db(), { volunteerId: a, shard: 1, results: first.map((c) => ok(c, 999)), errors: [] });
    expect(again.inserted).toBe(0);
    await submitChunks(db(), { volunteerId: b, shard: 2, results: second.map((c) => ok(c, c.index * 2)), errors: [] });

    const done = await getTaskView(db(), taskId);
    expect(done!.status).toBe("done");
    expect(done!.counts).toEqual({ total: 10, pending: 0, leased: 0, done: 10, failed: 0, awaitingCopy: 0 });
    expect(done!.cpuMs).toBe(50);
    const page = await finalChunksPage(db(), (await getTaskForResults(db(), taskId))!, -1, 100);
    expect(page.map((c) => [c.index, c.status === "done" ? JSON.parse(c.result) : null])).toEqual(Array.from({ length: 10 }, (_, i) => [i, i * 2]));
  });

  it("retries an erroring chunk up to maxAttempts, then fails it and still finishes the task", async () => {
    const taskId = await createTask(db(), newTask({ inputs: { kind: "array", items: [1, 2] }, maxAttempts: 2 }));
    await cancelOthers(taskId);
    const v = await volunteer();
    let chunks = await lease(v, 2);
    await submitChunks(db(), {
      volunteerId: v,
      shard: 0,
      results: [ok(chunks[0]!, "fine")],
      errors: [{ leaseRowId: chunks[1]!.leaseRowId, taskId, index: 1, kind: "throw", message: "boom 1", cpuMs: 1 }],
    });
    let view = await getTaskView(db(), taskId);
    expect(view!.lastError).toEqual({ index: 1, kind: "throw", message: "boom 1" });
    expect(view!.status).toBe("running");

    chunks = await lease(v, 2);
    expect(chunks.map((c) => c.index)).toEqual([1]);
    const error = { leaseRowId: chunks[0]!.leaseRowId, taskId, index: 1, kind: "throw", message: "boom 2", cpuMs: 1 };
    await submitChunks(db(), { volunteerId: v, shard: 0, results: [], errors: [error] });
    // A repeat of the same error report is not a third attempt.
    await submitChunks(db(), { volunteerId: v, shard: 0, results: [], errors: [error] });
    view = await getTaskView(db(), taskId);
    expect(view!.counts).toMatchObject({ done: 1, failed: 1, pending: 0 });
    expect(view!.status).toBe("done");
    expect(view!.lastError).toEqual({ index: 1, kind: "throw", message: "boom 2" });
    const page = await finalChunksPage(db(), (await getTaskForResults(db(), taskId))!, -1, 10);
    expect(page[1]).toMatchObject({ index: 1, status: "failed", error: { kind: "throw", message: "boom 2" } });
    // A late result for a failed chunk is refused.
    const late = await submitChunks(db(), { volunteerId: v, shard: 0, results: [ok(chunks[0]!, 1)], errors: [] });
    expect(late.rejected).toMatchObject([{ reason: "chunk-failed" }]);
  });

  it("fails a task whose every chunk fails", async () => {
    const taskId = await createTask(db(), newTask({ inputs: { kind: "array", items: [1] }, maxAttempts: 1 }));
    await cancelOthers(taskId);
    const v = await volunteer();
    const [chunk] = await lease(v, 1);
    await submitChunks(db(), {
      volunteerId: v,
      shard: 0,
      results: [],
      errors: [{ leaseRowId: chunk!.leaseRowId, taskId, index: 0, kind: "timeout", message: "too slow", cpuMs: 1 }],
    });
    expect((await getTaskView(db(), taskId))!.status).toBe("failed");
  });

  it("takes back expired leases lazily and still counts a late result once", async () => {
    const taskId = await createTask(db(), newTask({ timeoutMs: 50, inputs: { kind: "array", items: [0, 1, 2, 3] } }));
    await cancelOthers(taskId);
    const [gone, stays] = [await volunteer(), await volunteer()];
    const abandoned = await lease(gone, 4, 0);
    expect(abandoned).toHaveLength(4);
    // One result arrives before the deadline: that chunk must not be reissued.
    await submitChunks(db(), { volunteerId: gone, shard: 0, results: [ok(abandoned[0]!, "early")], errors: [] });
    expect(await lease(stays, 4, 0)).toEqual([]);
    await sleep(4 * 50 + 50);
    expect(await reclaimExpiredLeases(db(), 0)).toBeGreaterThanOrEqual(1);
    const reissued = await lease(stays, 4, 60_000);
    expect(reissued.map((c) => c.index)).toEqual([1, 2, 3]);

    // The vanished volunteer comes back late with chunk 1: it still counts (not final yet).
    const late = await submitChunks(db(), { volunteerId: gone, shard: 0, results: [ok(abandoned[1]!, "late")], errors: [] });
    expect(late.inserted).toBe(1);
    const rest = await submitChunks(db(), { volunteerId: stays, shard: 1, results: reissued.map((c) => ok(c, "second")), errors: [] });
    expect(rest.inserted).toBe(2);
    const view = await getTaskView(db(), taskId);
    expect(view!.status).toBe("done");
    expect(view!.counts.done).toBe(4);
    const page = await finalChunksPage(db(), (await getTaskForResults(db(), taskId))!, -1, 10);
    expect(page.map((c) => (c.status === "done" ? JSON.parse(c.result) : c.status))).toEqual(["early", "late", "second", "second"]);
  });

  it("derives range inputs without storing a row per chunk", async () => {
    const taskId = await createTask(db(), newTask({ inputs: { kind: "range", start: 10, end: 105, step: 5, size: 4 } }));
    await cancelOthers(taskId);
    const chunks = await lease(await volunteer(), 64);
    expect(chunks.map((c) => JSON.parse(c.input))).toEqual([
      { start: 10, end: 30, step: 5 },
      { start: 30, end: 50, step: 5 },
      { start: 50, end: 70, step: 5 },
      { start: 70, end: 90, step: 5 },
      { start: 90, end: 105, step: 5 },
    ]);
    const [row] = await queryRows<{ n: number }>(db(), sql`SELECT count(*)::int AS n FROM chunk_inputs WHERE task_id = ${taskId}`);
    expect(row!.n).toBe(0);
  });

  it("hands every chunk to exactly one of many concurrent volunteers", async () => {
    const total = 3000;
    const taskId = await createTask(db(), newTask({ inputs: { kind: "array", items: Array.from({ length: total }, (_, i) => i) } }));
    await cancelOthers(taskId);
    const seen = new Map<number, number>();
    const worker = async (shard: number) => {
      const v = await volunteer();
      for (;;) {
        const chunks = await lease(v, 37);
        if (chunks.length === 0) return;
        for (const c of chunks) seen.set(c.index, (seen.get(c.index) ?? 0) + 1);
        await submitChunks(db(), { volunteerId: v, shard, results: chunks.map((c) => ok(c, Number(c.input) + 1)), errors: [] });
      }
    };
    await Promise.all(Array.from({ length: 8 }, (_, i) => worker(i)));
    expect(seen.size).toBe(total);
    expect([...seen.values()].every((n) => n === 1)).toBe(true);
    await completeFinishedTasks(db(), [taskId]);
    const view = await getTaskView(db(), taskId);
    expect(view!.counts).toMatchObject({ total, done: total, failed: 0 });
    expect(view!.status).toBe("done");
    const [row] = await queryRows<{ n: number; ok: number }>(
      db(),
      sql`SELECT count(*)::int AS n, count(*) FILTER (WHERE r.result::int = ci.input::int + 1)::int AS ok
          FROM ${resultsIn(sql`${taskId}::uuid`, sql`0`, sql`${total}::int`)} r JOIN chunk_inputs ci ON ci.task_id = ${taskId} AND ci.idx = r.idx`,
    );
    expect(row).toEqual({ n: total, ok: total });
  });
});
