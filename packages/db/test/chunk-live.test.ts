// Progress, checkpoints and console output (chunk-live.ts): written only for chunks of leases
// the volunteer holds, gone when the chunk is final, a checkpoint handed to the chunk's next
// lease, console kept only from the attempt that counted.
import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { queryRows } from "../src/db.ts";
import { recordChunkConsole } from "../src/dispatch/chunk-live.ts";
import { createTask, createUser, createVolunteer, heartbeatLeases, reclaimExpiredLeases, recordChunkLive, releaseLeases, transitionTask } from "../src/index.ts";
import { consoleWindow, runningChunks } from "../src/reads/chunk-activity.ts";
import { listChunks } from "../src/reads/chunk-listing.ts";
import { followCursorNow, followStart } from "../src/reads/follow-results.ts";
import type { NewTask } from "../src/tasks/tasks.ts";
import { type LeasedChunk, leaseChunks, leaseRef, leaseRequest, openTestDb, submitChunks, type TestDb, taskFixture, testBackends } from "../testing/testing.ts";

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe.each(testBackends())("chunk progress, checkpoints and console on %s", (backend) => {
  let testDb: TestDb;
  let ownerId: string;
  const db = () => testDb.handle.db;

  beforeAll(async () => {
    testDb = await openTestDb(backend);
    ownerId = (await createUser(db(), { email: "live@example.com", passwordHash: "x", firstIsAdmin: false }))!.id;
  });
  afterAll(async () => testDb?.dispose());

  const startTask = async (overrides: Partial<NewTask> = {}) => {
    await db().execute(sql`UPDATE tasks SET status = 'cancelled' WHERE status = 'running'`);
    return createTask(db(), taskFixture(ownerId, overrides));
  };
  const volunteer = async (name: string) => (await createVolunteer(db(), { name, userId: null })).id;
  const lease = (volunteerId: string, max: number, graceMs = 30_000) => leaseChunks(db(), leaseRequest(volunteerId, { max, threads: max, graceMs }));
  const report = (volunteerId: string, results: [LeasedChunk, unknown][], errors: [LeasedChunk, string][] = []) =>
    submitChunks(db(), {
      volunteerId,
      shard: 0,
      results: results.map(([c, value]) => ({ ...leaseRef(c), cpuMs: 1, result: JSON.stringify(value) })),
      errors: errors.map(([c, message]) => ({ ...leaseRef(c), kind: "throw", message, cpuMs: 1 })),
    });
  const progress = (c: LeasedChunk, fraction: number, message?: string) => ({ leaseRowId: c.leaseRowId, offset: c.index - c.firstIdx, fraction, ...(message ? { message } : {}) });
  const checkpoint = (c: LeasedChunk, state: unknown) => ({ leaseRowId: c.leaseRowId, offset: c.index - c.firstIdx, checkpointJson: JSON.stringify(state) });
  const liveRows = async (taskId: string) => (await queryRows<{ idx: number }>(db(), sql`SELECT idx FROM chunk_live WHERE task_id = ${taskId} ORDER BY idx`)).map((row) => row.idx);
  const chunk = async (taskId: string, index: number) => (await listChunks(db(), taskId, { status: null, after: index - 1, limit: 1 }))!.items[0]!;

  it("keeps the latest progress of chunks the volunteer holds, shows it while the lease holds them, and drops it when they are final", async () => {
    const taskId = await startTask();
    const [me, other] = [await volunteer("me"), await volunteer("other")];
    const block = await lease(me, 4);
    expect(block.map((c) => c.index)).toEqual([0, 1, 2, 3]);

    expect(await recordChunkLive(db(), { volunteerId: me, reports: [progress(block[0]!, 0.25, "a quarter"), progress(block[2]!, 0.5)] })).toEqual([taskId]);
    await recordChunkLive(db(), { volunteerId: me, reports: [progress(block[0]!, 0.75, "most")] });
    // Another volunteer cannot write progress for chunks it does not hold.
    expect(await recordChunkLive(db(), { volunteerId: other, reports: [progress(block[1]!, 0.9, "forged")] })).toEqual([]);
    const running = await runningChunks(db(), taskId);
    expect(running.map(({ index, fraction, message }) => ({ index, fraction, message }))).toEqual([
      { index: 0, fraction: 0.75, message: "most" },
      { index: 2, fraction: 0.5, message: null },
    ]);
    expect((await chunk(taskId, 0)).progress).toMatchObject({ fraction: 0.75, message: "most" });
    expect((await chunk(taskId, 1)).progress).toBeNull();

    // The block is reported whole: one row, and its progress rows go by index range.
    await report(
      me,
      block.map((c) => [c, c.index]),
    );
    expect(await liveRows(taskId)).toEqual([]);
    expect(await runningChunks(db(), taskId)).toEqual([]);
    // A heartbeat after the report writes nothing: the chunks are no longer held.
    expect(await recordChunkLive(db(), { volunteerId: me, reports: [progress(block[3]!, 0.5)] })).toEqual([]);
  });

  it("hands a chunk's checkpoint to its next lease after the first one expired, and only then", async () => {
    const taskId = await startTask({ timeoutMs: 100 });
    const [first, second] = [await volunteer("first"), await volunteer("second")];
    const block = await lease(first, 3, 0);
    await recordChunkLive(db(), { volunteerId: first, reports: [{ ...checkpoint(block[1]!, { i: 41, at: "half" }), fraction: 0.5 }, checkpoint(block[2]!, null)] });
    expect((await chunk(taskId, 1)).checkpointAt).toBeInstanceOf(Date);
    // Chunk 0 is reported; 1 and 2 are not, and the lease lapses.
    await report(first, [[block[0]!, 0]]);
    await sleep(150);
    await reclaimExpiredLeases(db(), 0);
    // A lapsed lease's progress is no longer shown; its checkpoint stays for the next lease.
    expect(await runningChunks(db(), taskId)).toEqual([]);
    const retries = await lease(second, 2);
    expect(retries.map((c) => [c.index, c.n, c.checkpointJson])).toEqual([
      [1, 1, '{"i":41,"at":"half"}'],
      [2, 1, "null"],
    ]);
    // A fresh block carries none.
    const fresh = await lease(second, 2);
    expect(fresh.every((c) => c.checkpointJson === null)).toBe(true);
    // The retry's own checkpoint replaces the old one; its result removes it.
    await recordChunkLive(db(), { volunteerId: second, reports: [checkpoint(retries[0]!, { i: 99 })] });
    expect((await queryRows<{ checkpoint: string }>(db(), sql`SELECT checkpoint FROM chunk_live WHERE task_id = ${taskId} AND idx = 1`))[0]!.checkpoint).toBe('{"i":99}');
    await report(second, [
      [retries[0]!, 1],
      [retries[1]!, 2],
    ]);
    expect(await liveRows(taskId)).toEqual([]);
  });

  it("keeps a checkpoint across a failed attempt and a release, and drops it when the chunk fails for good", async () => {
    const taskId = await startTask({ maxAttempts: 2 });
    const me = await volunteer("retrier");
    const [c] = await lease(me, 1);
    await recordChunkLive(db(), { volunteerId: me, reports: [checkpoint(c!, { step: 1 })] });
    await report(me, [], [[c!, "boom"]]);
    const [again] = await lease(me, 1);
    expect([again!.index, again!.checkpointJson]).toEqual([0, '{"step":1}']);
    // Given back (a paused volunteer): the checkpoint waits for the next lease.
    expect(await releaseLeases(db(), { volunteerId: me, leaseRowIds: [again!.leaseRowId], shard: 0 })).toEqual([again!.leaseRowId]);
    const [third] = await lease(me, 1);
    expect([third!.index, third!.checkpointJson]).toEqual([0, '{"step":1}']);
    await report(me, [], [[third!, "boom again"]]);
    expect((await chunk(taskId, 0)).status).toBe("failed");
    expect(await liveRows(taskId)).toEqual([]);
  });

  it("names a checkpoint's author on a result finished from it, and credits each the time it ran", async () => {
    // The attack: a volunteer leases a chunk, sends a lying checkpoint and releases it;
    // an honest one resumes from it. The result is stored, but under the author's answer.
    const taskId = await startTask({ inputs: { kind: "array", items: [100] } });
    const [author, finisher] = [await volunteer("checkpoint author"), await volunteer("finisher")];
    const [held] = await lease(author, 1);
    await db().execute(sql`UPDATE leases SET created_at = created_at - interval '2 seconds' WHERE id = ${held!.leaseRowId}`);
    await recordChunkLive(db(), { volunteerId: author, reports: [checkpoint(held!, { i: 100, sum: 666 })] });
    expect(await releaseLeases(db(), { volunteerId: author, leaseRowIds: [held!.leaseRowId], shard: 0 })).toEqual([held!.leaseRowId]);
    const [resumed] = await lease(finisher, 1);
    expect(resumed!.checkpointJson).toBe('{"i":100,"sum":666}');
    await db().execute(sql`UPDATE leases SET created_at = created_at - interval '1 second' WHERE id = ${resumed!.leaseRowId}`);
    await submitChunks(db(), { volunteerId: finisher, shard: 0, errors: [], results: [{ ...leaseRef(resumed!), cpuMs: 500, result: "666" }] });
    const [row] = await queryRows<{ volunteer_id: string; checkpoint_by: string | null }>(db(), sql`SELECT volunteer_id, checkpoint_by FROM results WHERE task_id = ${taskId}`);
    expect(row).toEqual({ volunteer_id: finisher, checkpoint_by: author });
    // Credit split by the time each ran: the author ~2 s to its checkpoint, the finisher its 500 ms.
    const credit = await queryRows<{ volunteer_id: string; credit: number }>(
      db(),
      sql`SELECT volunteer_id, credit::int FROM volunteer_counters WHERE volunteer_id IN (${author}, ${finisher}) ORDER BY credit`,
    );
    expect(credit.map((c) => c.volunteer_id)).toEqual([finisher, author]);
    expect(credit[0]!.credit).toBe(500);
    expect(credit[1]!.credit).toBeGreaterThanOrEqual(1900);
    expect(credit[1]!.credit).toBeLessThan(3000);
    const [task] = await queryRows<{ credit: number }>(db(), sql`SELECT sum(credit)::int AS credit FROM task_counters WHERE task_id = ${taskId}`);
    expect(task!.credit).toBe(credit[0]!.credit + credit[1]!.credit);

    // A volunteer resuming from its own checkpoint is its own author: nobody else is named.
    const own = await startTask({ inputs: { kind: "array", items: [1] } });
    const [first] = await lease(finisher, 1);
    await recordChunkLive(db(), { volunteerId: finisher, reports: [checkpoint(first!, { i: 1 })] });
    await releaseLeases(db(), { volunteerId: finisher, leaseRowIds: [first!.leaseRowId], shard: 0 });
    const [again] = await lease(finisher, 1);
    expect(again!.checkpointJson).toBe('{"i":1}');
    await report(finisher, [[again!, 1]]);
    const [mine] = await queryRows<{ checkpoint_by: string | null }>(db(), sql`SELECT checkpoint_by FROM results WHERE task_id = ${own}`);
    expect(mine!.checkpoint_by).toBeNull();
  });

  it("keeps no checkpoint for a replicated task (copies must be computed apart) and none for reduce chunks", async () => {
    const taskId = await startTask({ replication: 2, quorum: 2 });
    const me = await volunteer("copier");
    const block = await lease(me, 2);
    await recordChunkLive(db(), { volunteerId: me, reports: [{ ...checkpoint(block[0]!, { x: 1 }), fraction: 0.3 }] });
    const [row] = await queryRows<{ checkpoint: string | null; fraction: number }>(db(), sql`SELECT checkpoint, fraction FROM chunk_live WHERE task_id = ${taskId}`);
    expect(row).toMatchObject({ checkpoint: null });
    expect(Number(row!.fraction)).toBeCloseTo(0.3);
  });

  it("a heartbeat does not need progress rows, and a cancelled task's rows go", async () => {
    const taskId = await startTask();
    const me = await volunteer("canceller");
    const block = await lease(me, 2);
    expect((await heartbeatLeases(db(), { volunteerId: me, leaseRowIds: [block[0]!.leaseRowId], graceMs: 1000 })).extended).toEqual([block[0]!.leaseRowId]);
    await recordChunkLive(db(), { volunteerId: me, reports: [progress(block[0]!, 0.1), checkpoint(block[1]!, [1])] });
    expect(await liveRows(taskId)).toEqual([0, 1]);
    await transitionTask(db(), taskId, "cancel");
    expect(await liveRows(taskId)).toEqual([]);
  });

  it("keeps console output only from the attempt that counted, and follows it in the order it was stored", async () => {
    const taskId = await startTask({ maxAttempts: 3 });
    const [me, other] = [await volunteer("logger"), await volunteer("liar")];
    const from = await followCursorNow(db());
    const block = await lease(me, 3);
    const lines = (text: string) => JSON.stringify([{ level: "log", text }]);
    await report(
      me,
      [
        [block[0]!, 0],
        [block[2]!, 2],
      ],
      [[block[1]!, "boom"]],
    );
    const consoleOf = (c: LeasedChunk, outcome: "done" | "error", text: string, leaseRowId = c.leaseRowId) => ({
      leaseRowId,
      taskId,
      index: c.index,
      outcome,
      linesJson: lines(text),
      truncated: false,
    });
    expect(await recordChunkConsole(db(), { volunteerId: me, reports: [consoleOf(block[0]!, "done", "zero"), consoleOf(block[1]!, "error", "about to throw")] })).toEqual([taskId]);
    // Another volunteer's lines for chunks it did not decide are not kept.
    expect(await recordChunkConsole(db(), { volunteerId: other, reports: [consoleOf(block[2]!, "done", "forged")] })).toEqual([]);
    expect((await chunk(taskId, 0)).console).toMatchObject({ outcome: "done", lines: [{ level: "log", text: "zero" }], truncated: false });
    expect((await chunk(taskId, 1)).console).toMatchObject({ outcome: "error", lines: [{ level: "log", text: "about to throw" }] });
    expect((await chunk(taskId, 2)).console).toBeNull();

    // The retry of chunk 1 succeeds and logs: its lines replace the failed attempt's.
    const [retry] = await lease(me, 1);
    expect(retry!.index).toBe(1);
    await report(me, [[retry!, 1]]);
    await recordChunkConsole(db(), { volunteerId: me, reports: [consoleOf(retry!, "done", "second try")] });

    const seen: [number, string][] = [];
    for (let cursor = from; ; ) {
      const window = await consoleWindow(db(), taskId, cursor, 1);
      for (const item of window.items) seen.push([item.index, item.lines[0]!.text]);
      cursor = window.cursor;
      if (window.items.length === 0) break;
    }
    expect(seen).toEqual([
      [0, "zero"],
      [1, "second try"],
    ]);
    expect((await consoleWindow(db(), taskId, followStart)).items.map((item) => item.index)).toEqual([0, 1]);
  });
});
