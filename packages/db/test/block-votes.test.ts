// Votes by the block (docs/architecture.md, "Replication, trust and reduce"): a replicated
// block's copies reported whole are one vote row each, and copies that agree decide the whole
// block as one result row; a block whose copies disagree, or a copy reported in parts or with
// errors, falls back to deciding chunk by chunk. Exactly once, credit for the winning side, the
// trusted-vote rule, bans and tolerance hold as they do per chunk.
import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { queryRows } from "../src/db.ts";
import type { GrantedBlock } from "../src/dispatch/lease-types.ts";
import { createTask, createUser, createVolunteer, getTaskView, leaseBlocks, type ResultRun, reclaimExpiredLeases, submitResults } from "../src/index.ts";
import { auditTask } from "../src/reads/audit.ts";
import { finalChunksPage, getTaskForResults } from "../src/reads/results.ts";
import { leaseRequest, openTestDb, type TestDb, taskFixture, testBackends } from "../testing/testing.ts";

describe.each(testBackends())("votes by the block on %s", (backend) => {
  let testDb: TestDb;
  let ownerId: string;
  const db = () => testDb.handle.db;

  beforeAll(async () => {
    testDb = await openTestDb(backend);
    ownerId = (await createUser(db(), { email: "block-votes@example.com", passwordHash: "x", firstIsAdmin: false }))!.id;
  });
  afterAll(async () => testDb?.dispose());

  const onlyTask = async (count: number, overrides: Parameters<typeof taskFixture>[1] = {}) => {
    await db().execute(sql`UPDATE tasks SET status = 'cancelled' WHERE status = 'running'`);
    return createTask(db(), taskFixture(ownerId, { replication: 2, quorum: 2, inputs: { kind: "array", items: Array.from({ length: count }, (_, i) => i) }, ...overrides }));
  };
  const volunteer = async (trusted = false) => (await createVolunteer(db(), { name: trusted ? "t" : "v", userId: null, trusted })).id;
  const lease = (v: string, max = 6, graceMs = 30_000) => leaseBlocks(db(), leaseRequest(v, { max, threads: 8, graceMs }));
  /** Reports a block: values per offset; an `Error` value is reported as an error of that chunk. */
  const report = (v: string, block: GrantedBlock, values: unknown[]) => {
    const runs: ResultRun[] = [];
    const errors: { leaseRowId: number; taskId: string; index: number; kind: string; message: string; cpuMs: number }[] = [];
    let start = 0;
    const flush = (end: number) => {
      if (end > start) {
        const part = values.slice(start, end);
        // the API's hint, as its signed lease id gives it: a whole block of a replicated lease
        const wholeReplicatedBlock = start === 0 && part.length === block.n;
        runs.push({
          leaseRowId: block.leaseRowId,
          taskId: block.taskId,
          firstIdx: block.firstIdx,
          offset: start,
          count: part.length,
          resultsJson: JSON.stringify(part),
          cpuMs: part.length,
          wholeReplicatedBlock,
        });
      }
    };
    values.forEach((value, offset) => {
      if (value instanceof Error) {
        flush(offset);
        start = offset + 1;
        errors.push({ leaseRowId: block.leaseRowId, taskId: block.taskId, index: block.firstIdx + offset, kind: "throw", message: value.message, cpuMs: 1 });
      }
    });
    flush(values.length);
    return submitResults(db(), { volunteerId: v, shard: 0, runs, errors });
  };
  const doubled = (block: GrantedBlock) => Array.from({ length: block.n }, (_, k) => (block.firstIdx + k) * 2);
  const count = async (table: "votes" | "block_votes" | "block_state" | "chunk_state", taskId: string) =>
    Number((await queryRows<{ n: number }>(db(), sql`SELECT count(*)::int AS n FROM ${sql.identifier(table)} WHERE task_id = ${taskId}`))[0]!.n);
  const rowsOf = (taskId: string) => queryRows<{ idx: number; n: number }>(db(), sql`SELECT idx, n FROM results WHERE task_id = ${taskId} ORDER BY idx`);
  const results = async (taskId: string) => (await finalChunksPage(db(), (await getTaskForResults(db(), taskId))!, -1, 100)).map((c) => (c.status === "done" ? JSON.parse(c.result) : c.error.kind));
  const credit = async (v: string) =>
    Number((await queryRows<{ credit: number }>(db(), sql`SELECT coalesce(sum(credit), 0)::int AS credit FROM volunteer_counters WHERE volunteer_id = ${v}`))[0]!.credit);
  const expectConsistent = async (taskId: string) => {
    const audit = await auditTask(db(), taskId);
    expect(audit.overlaps).toBe(0);
    expect(audit.counters.done).toBe(audit.resultChunks);
  };

  it("decides a block whose copies agree as one row, in a constant number of rows, crediting both copies", async () => {
    const taskId = await onlyTask(6);
    const [a, t] = [await volunteer(), await volunteer(true)];
    const [first] = await lease(a);
    expect(first).toMatchObject({ firstIdx: 0, n: 6, copy: 0 });
    expect((await report(a, first!, doubled(first!))).inserted).toBe(0);
    expect([await count("block_votes", taskId), await count("block_state", taskId), await count("chunk_state", taskId), await count("votes", taskId)]).toEqual([1, 1, 0, 0]);
    expect(await lease(a)).toEqual([]); // it voted on the block
    expect((await getTaskView(db(), taskId))!.counts).toMatchObject({ awaitingCopy: 6, leased: 0 });
    const [copy] = await lease(t);
    expect(copy).toMatchObject({ firstIdx: 0, n: 6, copy: 1 });
    expect((await getTaskView(db(), taskId))!.counts).toMatchObject({ awaitingCopy: 0, leased: 6 });
    expect((await report(t, copy!, doubled(copy!))).inserted).toBe(6);
    expect((await rowsOf(taskId)).map((r) => [r.idx, r.n])).toEqual([[0, 6]]);
    expect([await count("block_votes", taskId), await count("block_state", taskId), await count("chunk_state", taskId), await count("votes", taskId)]).toEqual([2, 0, 0, 0]);
    const view = (await getTaskView(db(), taskId))!;
    expect(view.status).toBe("done");
    expect(view.verification).toEqual({ copiesReceived: 12, chunksReplicated: 6, disagreements: 0, volunteersBanned: 0 });
    expect(await results(taskId)).toEqual([0, 2, 4, 6, 8, 10]);
    expect(await credit(a)).toBeGreaterThan(0);
    expect(await credit(t)).toBeGreaterThan(0);
    await expectConsistent(taskId);
  });

  it("lets untrusted copies that agree wait for a trusted one, which decides the block whole", async () => {
    const taskId = await onlyTask(4);
    const [a, b, t] = [await volunteer(), await volunteer(), await volunteer(true)];
    const [first] = await lease(a);
    await report(a, first!, doubled(first!));
    const [second] = await lease(b);
    expect((await report(b, second!, doubled(second!))).inserted).toBe(0);
    expect(await lease(b)).toEqual([]);
    expect((await getTaskView(db(), taskId))!.waiting).toEqual({ trustedCopy: 4, moreCopies: 0, examined: 4 });
    const [third] = await lease(t);
    expect(third).toMatchObject({ firstIdx: 0, n: 4, copy: 1 });
    expect((await report(t, third!, doubled(third!))).inserted).toBe(4);
    expect((await rowsOf(taskId)).map((r) => [r.idx, r.n])).toEqual([[0, 4]]);
    expect((await getTaskView(db(), taskId))!.verification).toMatchObject({ copiesReceived: 12, chunksReplicated: 4 });
    await expectConsistent(taskId);
  });

  it("falls back to chunk by chunk when one chunk differs: the others are decided, that one wants another copy", async () => {
    const taskId = await onlyTask(5);
    const [t1, liar, t2] = [await volunteer(true), await volunteer(), await volunteer(true)];
    const [first] = await lease(t1);
    await report(t1, first!, doubled(first!));
    const [copy] = await lease(liar);
    const lie = doubled(copy!);
    lie[2] = 999;
    expect((await report(liar, copy!, lie)).inserted).toBe(4);
    expect((await rowsOf(taskId)).map((r) => [r.idx, r.n])).toEqual([
      [0, 1],
      [1, 1],
      [3, 1],
      [4, 1],
    ]);
    expect([await count("block_votes", taskId), await count("block_state", taskId)]).toEqual([0, 0]);
    // Chunk 2 wants a third copy, one chunk, from a volunteer that has not voted on it.
    expect(await lease(liar)).toEqual([]);
    const [third] = await lease(t2);
    expect(third).toMatchObject({ firstIdx: 2, n: 1, copy: 1 });
    expect((await report(t2, third!, [4])).inserted).toBe(1);
    expect(await results(taskId)).toEqual([0, 2, 4, 6, 8]);
    const view = (await getTaskView(db(), taskId))!;
    expect(view.status).toBe("done");
    expect(view.verification).toMatchObject({ copiesReceived: 11, chunksReplicated: 5, disagreements: 1 });
    const losses = await queryRows<{ losses: number }>(db(), sql`SELECT losses FROM volunteers WHERE id = ${liar}`);
    expect(losses[0]!.losses).toBe(1);
    await expectConsistent(taskId);
  });

  it("takes a copy reported in parts, or with an errored chunk, chunk by chunk", async () => {
    const taskId = await onlyTask(4);
    const [t1, t2, t3] = [await volunteer(true), await volunteer(true), await volunteer(true)];
    const [first] = await lease(t1);
    await report(t1, first!, doubled(first!));
    const [copy] = await lease(t2);
    const values: unknown[] = doubled(copy!);
    values[3] = new Error("out of memory");
    expect((await report(t2, copy!, values)).inserted).toBe(3);
    expect((await rowsOf(taskId)).map((r) => [r.idx, r.n])).toEqual([
      [0, 1],
      [1, 1],
      [2, 1],
    ]);
    // The errored copy's slot is free: chunk 3 goes to another volunteer.
    const [again] = await lease(t3);
    expect(again).toMatchObject({ firstIdx: 3, n: 1, copy: 1 });
    expect((await report(t3, again!, [6])).inserted).toBe(1);
    expect((await getTaskView(db(), taskId))!.status).toBe("done");
    expect(await results(taskId)).toEqual([0, 2, 4, 6]);
    await expectConsistent(taskId);
  });

  it("takes a copy reported in two parts chunk by chunk, and gives no copy to another volunteer of a user that voted", async () => {
    const taskId = await onlyTask(4);
    const userId = (await createUser(db(), { email: "two-volunteers@example.com", passwordHash: "x", firstIsAdmin: false }))!.id;
    const mine = async () => (await createVolunteer(db(), { name: "u", userId })).id;
    const [first, sameUser, t] = [await mine(), await mine(), await volunteer(true)];
    const [block] = await leaseBlocks(db(), leaseRequest(first, { userId, max: 6, threads: 8 }));
    const whole = { leaseRowId: block!.leaseRowId, taskId, firstIdx: 0, offset: 0, count: 4, resultsJson: "[0,2,4,6]", cpuMs: 1, wholeReplicatedBlock: true };
    await submitResults(db(), { volunteerId: first, userId, shard: 0, errors: [], runs: [whole] });
    expect(await leaseBlocks(db(), leaseRequest(sameUser, { userId, max: 6, threads: 8 }))).toEqual([]);
    const [copy] = await lease(t);
    expect(copy).toMatchObject({ firstIdx: 0, n: 4, copy: 1 });
    const part = (offset: number, values: number[]) =>
      submitResults(db(), {
        volunteerId: t,
        shard: 0,
        errors: [],
        runs: [{ leaseRowId: copy!.leaseRowId, taskId, firstIdx: 0, offset, count: values.length, resultsJson: JSON.stringify(values), cpuMs: 1 }],
      });
    expect((await part(0, [0, 2])).inserted).toBe(2);
    expect((await part(2, [4, 6])).inserted).toBe(2);
    expect((await rowsOf(taskId)).map((r) => [r.idx, r.n])).toEqual([
      [0, 1],
      [1, 1],
      [2, 1],
      [3, 1],
    ]);
    expect((await getTaskView(db(), taskId))!.verification).toMatchObject({ copiesReceived: 8, chunksReplicated: 4, disagreements: 0 });
    await expectConsistent(taskId);
  });

  it("frees an expired copy's slot without reissuing its chunks as fresh ones", async () => {
    const taskId = await onlyTask(3);
    const [t1, gone, t2] = [await volunteer(true), await volunteer(true), await volunteer(true)];
    const [first] = await lease(t1);
    await report(t1, first!, doubled(first!));
    const [lost] = await lease(gone, 6, -60_000);
    expect(lost).toMatchObject({ firstIdx: 0, n: 3, copy: 1 });
    expect(await lease(t2)).toEqual([]); // the one copy wanted is out
    await reclaimExpiredLeases(db(), 0);
    expect(await count("chunk_state", taskId)).toBe(0);
    const [copy] = await lease(t2);
    expect(copy).toMatchObject({ firstIdx: 0, n: 3, copy: 1 });
    expect((await report(t2, copy!, doubled(copy!))).inserted).toBe(3);
    // The late copy changes nothing.
    expect((await report(gone, lost!, doubled(lost!))).inserted).toBe(0);
    expect((await rowsOf(taskId)).map((r) => [r.idx, r.n])).toEqual([[0, 3]]);
    await expectConsistent(taskId);
  });

  it("reopens a block decided whole when a ban takes away a vote it needed, and decides it again", async () => {
    const taskId = await onlyTask(2);
    const [x, t1, t2, t3] = [await volunteer(), await volunteer(true), await volunteer(true), await volunteer(true)];
    const [first] = await lease(x);
    await report(x, first!, doubled(first!));
    const [copy] = await lease(t1);
    expect((await report(t1, copy!, doubled(copy!))).inserted).toBe(2);
    expect((await getTaskView(db(), taskId))!.status).toBe("done");
    // x then loses three times to trusted votes on one-chunk tasks: banned.
    for (let round = 0; round < 3; round++) {
      await onlyTask(1);
      const [mine] = await lease(x);
      await report(x, mine!, ["wrong"]);
      for (const t of [t1, t2]) {
        const [theirs] = await lease(t);
        await report(t, theirs!, [0]);
      }
    }
    expect((await queryRows<{ banned: boolean }>(db(), sql`SELECT banned FROM volunteers WHERE id = ${x}`))[0]!.banned).toBe(true);
    // The block stood on x's vote and t1's: it is voting again, wanting one more copy.
    const view = (await getTaskView(db(), taskId))!;
    expect(view.status).toBe("running");
    expect(view.counts).toMatchObject({ done: 0 });
    expect(await rowsOf(taskId)).toEqual([]);
    await db().execute(sql`UPDATE tasks SET status = 'cancelled' WHERE status = 'running' AND id <> ${taskId}`);
    expect(await lease(t1)).toEqual([]); // it voted already
    const [again] = await lease(t3);
    expect(again).toMatchObject({ firstIdx: 0, n: 2, copy: 1 });
    expect((await report(t3, again!, doubled(again!))).inserted).toBe(2);
    expect((await getTaskView(db(), taskId))!.status).toBe("done");
    expect(await results(taskId)).toEqual([0, 2]);
    await expectConsistent(taskId);
  });

  it("still accepts a trusted volunteer's first copy alone on a spot-checked task, and votes on a probationer's by the block", async () => {
    const taskId = await onlyTask(6, { spotCheck: 1e-9 });
    const [t, p] = [await volunteer(true), await volunteer()];
    const [alone] = await lease(t, 3);
    expect((await report(t, alone!, doubled(alone!))).inserted).toBe(3);
    const [voted] = await lease(p, 3);
    expect((await report(p, voted!, doubled(voted!))).inserted).toBe(0);
    expect([await count("block_votes", taskId), await count("block_state", taskId)]).toEqual([1, 1]);
    expect((await rowsOf(taskId)).map((r) => [r.idx, r.n])).toEqual([[0, 3]]);
    await expectConsistent(taskId);
  });

  describe("within a tolerance", () => {
    it("decides a block whole with copies that differ in the last bits; the first trusted copy's values win", async () => {
      const taskId = await onlyTask(3, { tolerance: { rel: 1e-9 } });
      const [a, t] = [await volunteer(), await volunteer(true)];
      const [first] = await lease(a);
      await report(a, first!, [0.1 + 0.2, 1, -0]);
      const [copy] = await lease(t);
      expect((await report(t, copy!, [0.3, 1.0000000000001, 0])).inserted).toBe(3);
      expect((await rowsOf(taskId)).map((r) => [r.idx, r.n])).toEqual([[0, 3]]);
      expect(await results(taskId)).toEqual([0.3, 1.0000000000001, 0]);
      await expectConsistent(taskId);
    });

    it("falls back to chunk by chunk when one chunk is outside the tolerance, or has another shape", async () => {
      const taskId = await onlyTask(3, { tolerance: { abs: 0.01 } });
      const [t1, liar, t2] = [await volunteer(true), await volunteer(), await volunteer(true)];
      const [first] = await lease(t1);
      await report(t1, first!, [1, [2, 3], 4]);
      const [copy] = await lease(liar);
      expect((await report(liar, copy!, [1.001, [2, 3, 0], 4.5])).inserted).toBe(1);
      const [third] = await lease(t2);
      expect(third).toMatchObject({ firstIdx: 1, n: 2 });
      expect((await report(t2, third!, [[2, 3.001], 4.001])).inserted).toBe(2);
      expect(await results(taskId)).toEqual([1, [2, 3], 4]);
      await expectConsistent(taskId);
    });
  });
});
