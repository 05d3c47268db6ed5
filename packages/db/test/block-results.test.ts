// Result storage in blocks: a run of results from the lease that still holds it is one row;
// everything else (an overlap with an earlier report, a late result after expiry, a retry, a
// vote) goes chunk by chunk, and every reader sees both shapes the same way. Exactly once
// holds throughout: the audit finds no overlapping rows and counters equal to the rows.
import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { queryRows } from "../src/db.ts";
import { createTask, createUser, createVolunteer, getTaskView, leaseBlocks, reclaimExpiredLeases, submitResults } from "../src/index.ts";
import { auditTask } from "../src/reads/audit.ts";
import { listChunks } from "../src/reads/chunk-listing.ts";
import { finalChunksDownload, getTaskForResults } from "../src/reads/results.ts";
import { leaseChunks, leaseRef, leaseRequest, openTestDb, submitChunks, type TestDb, taskFixture, testBackends } from "../testing/testing.ts";

describe.each(testBackends())("block results on %s", (backend) => {
  let testDb: TestDb;
  let ownerId: string;
  const db = () => testDb.handle.db;

  beforeAll(async () => {
    testDb = await openTestDb(backend);
    ownerId = (await createUser(db(), { email: "blocks@example.com", passwordHash: "x", firstIsAdmin: true }))!.id;
  });
  afterAll(async () => testDb?.dispose());

  /** A running task of inputs 0..count-1, alone among running tasks. */
  const onlyTask = async (count: number, overrides: Parameters<typeof taskFixture>[1] = {}) => {
    await db().execute(sql`UPDATE tasks SET status = 'cancelled' WHERE status = 'running'`);
    return createTask(db(), taskFixture(ownerId, { inputs: { kind: "array", items: Array.from({ length: count }, (_, i) => i) }, ...overrides }));
  };
  const volunteer = async () => (await createVolunteer(db(), { name: "v", userId: null })).id;
  const rowsOf = (taskId: string) => queryRows<{ idx: number; n: number; result: string }>(db(), sql`SELECT idx, n, result FROM results WHERE task_id = ${taskId} ORDER BY idx`);
  const download = async (taskId: string) => {
    const lines: unknown[] = [];
    for await (const text of finalChunksDownload(db(), (await getTaskForResults(db(), taskId))!, "ndjson")) {
      for (const line of text.split("\n").filter(Boolean)) lines.push(JSON.parse(line));
    }
    return lines;
  };
  const expectConsistent = async (taskId: string) => {
    const audit = await auditTask(db(), taskId);
    expect(audit.overlaps).toBe(0);
    expect(audit.outOfRange).toBe(0);
    expect(audit.counters.done).toBe(audit.resultChunks);
    return audit;
  };

  it("stores a block reported whole as one row, and in parts as a row a part; a part sent again changes nothing", async () => {
    const taskId = await onlyTask(10);
    const v = await volunteer();
    const [block] = await leaseBlocks(db(), leaseRequest(v, { max: 10, threads: 1 }));
    expect(block).toMatchObject({ firstIdx: 0, n: 10 });
    const run = (offset: number, count: number) => ({
      leaseRowId: block!.leaseRowId,
      taskId,
      firstIdx: 0,
      offset,
      count,
      resultsJson: JSON.stringify(Array.from({ length: count }, (_, k) => ({ square: (offset + k) ** 2 }))),
      cpuMs: count,
    });
    expect(await submitResults(db(), { volunteerId: v, shard: 0, runs: [run(0, 4)], errors: [] })).toEqual({ inserted: 4, rejected: [] });
    expect(await submitResults(db(), { volunteerId: v, shard: 1, runs: [run(4, 6)], errors: [] })).toEqual({ inserted: 6, rejected: [] });
    expect((await rowsOf(taskId)).map((r) => [r.idx, r.n])).toEqual([
      [0, 4],
      [4, 6],
    ]);
    // The same chunks again, as a whole and as an overlapping part: accepted, nothing counted.
    expect(await submitResults(db(), { volunteerId: v, shard: 0, runs: [run(0, 10)], errors: [] })).toEqual({ inserted: 0, rejected: [] });
    expect(await submitResults(db(), { volunteerId: v, shard: 0, runs: [run(2, 5)], errors: [] })).toEqual({ inserted: 0, rejected: [] });
    expect((await rowsOf(taskId)).length).toBe(2);
    const view = await getTaskView(db(), taskId);
    expect(view).toMatchObject({ status: "done", counts: { done: 10, failed: 0, pending: 0, leased: 0 } });
    expect(await download(taskId)).toEqual(Array.from({ length: 10 }, (_, i) => ({ index: i, input: i, status: "done", result: { square: i * i } })));
    const listed = await listChunks(db(), taskId, { status: "done", after: 2, limit: 5 });
    expect(listed!.items.map((c) => [c.index, c.status])).toEqual([3, 4, 5, 6, 7].map((i) => [i, "done"]));
    expect((await listChunks(db(), taskId, { status: null, after: -1, limit: 20 }))!.items.every((c) => c.status === "done")).toBe(true);
    await expectConsistent(taskId);
  });

  it("splits a block around a failed chunk, and the chunk's retry is a row of its own", async () => {
    const taskId = await onlyTask(8);
    const v = await volunteer();
    const chunks = await leaseChunks(db(), leaseRequest(v, { max: 8 }));
    const ok = (i: number) => ({ ...leaseRef(chunks[i]!), result: String(i * 10), cpuMs: 1 });
    await submitChunks(db(), {
      volunteerId: v,
      shard: 0,
      results: [0, 1, 2, 4, 5, 6, 7].map(ok),
      errors: [{ ...leaseRef(chunks[3]!), kind: "throw", message: "odd", cpuMs: 1 }],
    });
    expect((await rowsOf(taskId)).map((r) => [r.idx, r.n])).toEqual([
      [0, 3],
      [4, 4],
    ]);
    const [retry] = await leaseChunks(db(), leaseRequest(v, { max: 8 }));
    expect(retry).toMatchObject({ index: 3, n: 1 });
    await submitChunks(db(), { volunteerId: v, shard: 0, results: [{ ...leaseRef(retry!), result: "30", cpuMs: 1 }], errors: [] });
    expect((await rowsOf(taskId)).map((r) => [r.idx, r.n, r.result])).toEqual([
      [0, 3, "[0,10,20]"],
      [3, 1, "30"],
      [4, 4, "[40,50,60,70]"],
    ]);
    expect((await download(taskId)).map((line) => (line as { result: number }).result)).toEqual([0, 10, 20, 30, 40, 50, 60, 70]);
    await expectConsistent(taskId);
  });

  it("counts a late result of an expired block chunk by chunk, once, whoever else computes it", async () => {
    const taskId = await onlyTask(5);
    const late = await volunteer();
    const other = await volunteer();
    const chunks = await leaseChunks(db(), leaseRequest(late, { max: 5 }));
    await db().execute(sql`UPDATE leases SET deadline = now() - interval '1 second' WHERE task_id = ${taskId}`);
    await reclaimExpiredLeases(db(), 0);
    const retries = await leaseChunks(db(), leaseRequest(other, { max: 5 }));
    expect(retries.map((c) => [c.index, c.n])).toEqual([0, 1, 2, 3, 4].map((i) => [i, 1]));
    // The retries of 0 and 1 come back first, then every late result, then the other retries.
    await submitChunks(db(), { volunteerId: other, shard: 1, results: retries.slice(0, 2).map((c) => ({ ...leaseRef(c), result: "1", cpuMs: 1 })), errors: [] });
    const lateOutcome = await submitChunks(db(), { volunteerId: late, shard: 0, results: chunks.map((c) => ({ ...leaseRef(c), result: "1", cpuMs: 1 })), errors: [] });
    expect(lateOutcome.inserted).toBe(3);
    const restOutcome = await submitChunks(db(), { volunteerId: other, shard: 1, results: retries.slice(2).map((c) => ({ ...leaseRef(c), result: "1", cpuMs: 1 })), errors: [] });
    expect(restOutcome.inserted).toBe(0);
    expect((await rowsOf(taskId)).map((r) => r.n)).toEqual([1, 1, 1, 1, 1]);
    expect((await expectConsistent(taskId)).resultChunks).toBe(5);
    const [counted] = await queryRows<{ done: number }>(db(), sql`SELECT sum(done)::int AS done FROM volunteer_counters WHERE volunteer_id IN (${late}, ${other})`);
    expect(counted!.done).toBe(5);
  });

  it("hands out a replicated task's extra copy as the first copy's block whole, and decides a block whose copies agree as one row", async () => {
    const taskId = await onlyTask(6, { replication: 2, quorum: 2 });
    // The owner's volunteers start trusted: two agreeing copies make the quorum.
    const owned = async () => (await createVolunteer(db(), { name: "o", userId: ownerId })).id;
    const [first, second] = [await owned(), await owned()];
    const firstCopies = await leaseBlocks(db(), leaseRequest(first, { max: 6 }));
    expect(firstCopies.map((b) => [b.firstIdx, b.n, b.copy])).toEqual([[0, 6, 0]]);
    expect(await leaseBlocks(db(), leaseRequest(second, { max: 6 }))).toEqual([]); // no second copy before the first comes back
    const results = ["0", "1", "2", "3", "4", "5"];
    const report = (volunteerId: string, block: { leaseRowId: number; firstIdx: number }) =>
      submitResults(db(), {
        volunteerId,
        shard: 0,
        runs: [{ leaseRowId: block.leaseRowId, taskId, firstIdx: block.firstIdx, offset: 0, count: 6, resultsJson: `[${results}]`, cpuMs: 6 }],
        errors: [],
      });
    await report(first, firstCopies[0]!);
    expect(await rowsOf(taskId)).toEqual([]); // votes, not results, until a quorum
    const secondCopies = await leaseBlocks(db(), leaseRequest(second, { max: 6 }));
    expect(secondCopies.map((b) => [b.firstIdx, b.n, b.copy, JSON.parse(b.inputsJson)])).toEqual([[0, 6, 1, [0, 1, 2, 3, 4, 5]]]);
    expect(await leaseBlocks(db(), leaseRequest(first, { max: 6 }))).toEqual([]); // it voted on all six
    expect((await report(second, secondCopies[0]!)).inserted).toBe(6);
    // Votes by the block: one result row, one vote row a copy, none per chunk.
    expect((await rowsOf(taskId)).map((r) => [r.idx, r.n])).toEqual([[0, 6]]);
    expect(Number((await queryRows<{ n: number }>(db(), sql`SELECT count(*) AS n FROM votes WHERE task_id = ${taskId}`))[0]!.n)).toBe(0);
    expect(Number((await queryRows<{ n: number }>(db(), sql`SELECT count(*) AS n FROM block_votes WHERE task_id = ${taskId}`))[0]!.n)).toBe(2);
    expect((await getTaskView(db(), taskId))!.status).toBe("done");
    await expectConsistent(taskId);
  });

  it("counts no more CPU time than the server saw pass, whatever a volunteer claims", async () => {
    const taskId = await onlyTask(4);
    const v = await volunteer();
    const [block] = await leaseBlocks(db(), leaseRequest(v, { max: 4 }));
    const started = Date.now();
    await submitResults(db(), { volunteerId: v, shard: 0, runs: [{ leaseRowId: block!.leaseRowId, taskId, firstIdx: 0, offset: 0, count: 4, resultsJson: "[1,2,3,4]", cpuMs: 1e12 }], errors: [] });
    const view = await getTaskView(db(), taskId);
    // At most 4 chunks × the time since the lease (with a second of slack for the clocks).
    expect(view!.cpuMs).toBeLessThanOrEqual(4 * (Date.now() - started + 1000));
    const audit = await expectConsistent(taskId);
    expect(audit.counters.credit).toBe(view!.cpuMs);
  });
});
