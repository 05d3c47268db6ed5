import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { queryRows } from "../src/db.ts";
import { createTask, createUser, createVolunteer, getTaskView, reclaimExpiredLeases } from "../src/index.ts";
import { finalChunksPage, getTaskForResults } from "../src/reads/results.ts";
import type { NewTask } from "../src/tasks/tasks.ts";
import { type LeasedChunk, leaseChunks, leaseRef, leaseRequest, openTestDb, submitChunks, type TestDb, taskFixture, testBackends } from "../testing/testing.ts";

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe.each(testBackends())("replication and quorum on %s", (backend) => {
  let testDb: TestDb;
  let ownerId: string;
  const db = () => testDb.handle.db;

  beforeAll(async () => {
    testDb = await openTestDb(backend);
    ownerId = (await createUser(db(), { email: "owner@example.com", passwordHash: "x", firstIsAdmin: false }))!.id;
  });
  afterAll(async () => testDb?.dispose());

  const startTask = async (overrides: Partial<NewTask> = {}) => {
    await db().execute(sql`UPDATE tasks SET status = 'cancelled' WHERE status = 'running'`);
    return createTask(db(), taskFixture(ownerId, { name: "replicated", replication: 2, quorum: 2, inputs: { kind: "array", items: [10, 20] }, ...overrides }));
  };
  type Volunteer = { id: string; userId: string | null };
  const volunteer = async (userId: string | null = null): Promise<Volunteer> => ({ id: (await createVolunteer(db(), { name: "v", userId })).id, userId });
  const lease = (v: Volunteer, max = 8, graceMs = 30_000) => leaseChunks(db(), leaseRequest(v.id, { userId: v.userId, max: max, threads: 8, graceMs }));
  const answer = (v: Volunteer, chunks: LeasedChunk[], value: (c: LeasedChunk) => unknown) =>
    submitChunks(db(), {
      volunteerId: v.id,
      userId: v.userId,
      shard: 0,
      errors: [],
      results: chunks.map((c) => ({ ...leaseRef(c), result: JSON.stringify(value(c)), cpuMs: 5 })),
    });
  const honest = (c: LeasedChunk) => Number(c.input) * 2;
  /** `liar` answers wrong three times, each against the same honest answers (one of them trusted): enough for a ban. */
  const loseThreeTimes = async (liar: Volunteer, honestOnes: Volunteer[]) => {
    for (let round = 0; round < 3; round++) {
      await startTask({ inputs: { kind: "array", items: [round] } });
      await answer(liar, await lease(liar), () => "wrong");
      for (const v of honestOnes) await answer(v, await lease(v), honest);
    }
  };
  const results = async (taskId: string) => (await finalChunksPage(db(), (await getTaskForResults(db(), taskId))!, -1, 100)).map((c) => (c.status === "done" ? JSON.parse(c.result) : c.error.kind));

  it("needs agreeing copies from distinct volunteers, one more while none is trusted", async () => {
    const taskId = await startTask();
    const [a, b, c] = [await volunteer(), await volunteer(), await volunteer()];
    const first = await lease(a);
    expect(first.map((x) => [x.index, x.copy])).toEqual([
      [0, 0],
      [1, 0],
    ]);
    expect((await answer(a, first, honest)).inserted).toBe(0);
    // A voted on both chunks: it gets no copy of them.
    expect(await lease(a)).toEqual([]);
    const second = await lease(b);
    expect(second.map((x) => [x.index, x.copy])).toEqual([
      [0, 1],
      [1, 1],
    ]);
    expect((await answer(b, second, honest)).inserted).toBe(0);
    // Two fresh identities agreeing are not enough: a third copy is issued.
    expect(await lease(b)).toEqual([]);
    const third = await lease(c);
    expect(third.map((x) => x.index)).toEqual([0, 1]);
    expect((await answer(c, third, honest)).inserted).toBe(2);
    const view = await getTaskView(db(), taskId);
    expect(view!.status).toBe("done");
    expect(view!.counts).toMatchObject({ total: 2, done: 2, failed: 0, leased: 0, pending: 0 });
    expect(await results(taskId)).toEqual([20, 40]);
    const credit = await queryRows<{ volunteer_id: string; credit: number }>(
      db(),
      sql`SELECT volunteer_id, credit::int FROM volunteer_counters WHERE volunteer_id IN (${a.id}, ${b.id}, ${c.id}) ORDER BY volunteer_id`,
    );
    expect(credit).toHaveLength(3);
    expect(credit.every((row) => row.credit > 0 && row.credit <= 10)).toBe(true);
  });

  it("settles with the task owner's volunteer, which is trusted for its own task", async () => {
    const taskId = await startTask({ inputs: { kind: "array", items: [1] } });
    const mine = await volunteer(ownerId);
    const stranger = await volunteer();
    await answer(stranger, await lease(stranger), honest);
    expect((await answer(mine, await lease(mine), honest)).inserted).toBe(1);
    expect((await getTaskView(db(), taskId))!.status).toBe("done");
  });

  it("never lets a liar's answer win, and fails a chunk nobody agrees on", async () => {
    // At most replication + maxAttempts = 4 copies of a chunk.
    const taskId = await startTask({ inputs: { kind: "array", items: [5, 6] }, maxAttempts: 2 });
    const [liar, h1, h2, other] = [await volunteer(), await volunteer(), await volunteer(), await volunteer()];
    const lies = await lease(liar);
    await answer(liar, lies, () => 666);
    // Chunk 0: two honest copies outvote the liar. Chunk 1: every copy disagrees.
    const c1 = await lease(h1);
    await answer(h1, c1, (c) => (c.index === 0 ? honest(c) : "h1"));
    const c2 = await lease(h2);
    await answer(h2, c2, (c) => (c.index === 0 ? honest(c) : "h2"));
    // Chunk 1 has failed already: even a fourth, agreeing copy could not make three agree.
    const c3 = await lease(other);
    expect(c3.map((x) => x.index)).toEqual([0]);
    await answer(other, c3, honest);
    const view = await getTaskView(db(), taskId);
    expect(await results(taskId)).toEqual([10, "no-quorum"]);
    expect(view!.status).toBe("done");
    expect(view!.counts).toMatchObject({ done: 1, failed: 1 });
    expect(view!.lastError).toMatchObject({ index: 1, kind: "no-quorum" });
  });

  it("gives no user two copies, and frees the copy of a volunteer that vanished", async () => {
    const taskId = await startTask({ inputs: { kind: "array", items: [3] }, timeoutMs: 100 });
    const userId = (await createUser(db(), { email: "twice@example.com", passwordHash: "x", firstIsAdmin: false }))!.id;
    const [first, sameUser, gone, second, third] = [await volunteer(userId), await volunteer(userId), await volunteer(), await volunteer(), await volunteer()];
    await answer(first, await lease(first), honest);
    expect(await lease(sameUser)).toEqual([]);
    // No one is trusted yet, so three agreeing copies are planned: two more are out now.
    const held = await lease(gone, 8, 0);
    expect(held).toHaveLength(1);
    const kept = await lease(second);
    expect(kept).toHaveLength(1);
    expect(await lease(third)).toEqual([]);
    await sleep(250);
    await reclaimExpiredLeases(db(), 0);
    const freed = await lease(third);
    expect(freed.map((x) => x.index)).toEqual([0]);
    expect((await answer(second, kept, honest)).inserted).toBe(0);
    // The vanished volunteer's late copy still counts, and settles the chunk.
    expect((await answer(gone, held, honest)).inserted).toBe(1);
    expect((await answer(third, freed, honest)).inserted).toBe(0);
    expect(await results(taskId)).toEqual([6]);
  });

  it("trusts a probationer after 10 wins shared with 3 other volunteers", async () => {
    const crowd = await Promise.all(Array.from({ length: 4 }, () => volunteer()));
    await startTask({ inputs: { kind: "array", items: Array.from({ length: 12 }, (_, i) => i) }, replication: 3, quorum: 3 });
    // Round-robin the four volunteers over the chunks until all settle.
    for (let round = 0; round < 20; round++) {
      let any = false;
      for (const v of crowd) {
        const chunks = await lease(v, 4);
        if (chunks.length > 0) any = true;
        await answer(v, chunks, honest);
      }
      if (!any) break;
    }
    const trusted = await queryRows<{ trusted: boolean; wins: number }>(
      db(),
      sql`SELECT trusted, wins FROM volunteers WHERE id IN (${crowd[0]!.id}, ${crowd[1]!.id}, ${crowd[2]!.id}, ${crowd[3]!.id})`,
    );
    expect(trusted.filter((v) => v.wins >= 10).every((v) => v.trusted)).toBe(true);
    expect(trusted.some((v) => v.trusted)).toBe(true);
  });

  it("bans a volunteer that keeps losing to trusted results, and reopens what it helped win", async () => {
    // Three fresh liars agree on a wrong answer: with no trusted vote, three is a quorum.
    const fooled = await startTask({ inputs: { kind: "array", items: [7] } });
    const liars = [await volunteer(), await volunteer(), await volunteer()];
    for (const liar of liars) await answer(liar, await lease(liar), () => "wrong");
    expect(await results(fooled)).toEqual(["wrong"]);

    // The first liar then loses three times against the owner's (trusted) volunteer and an honest one.
    const mine = await volunteer(ownerId);
    const honestOne = await volunteer();
    const [liar] = liars;
    await loseThreeTimes(liar!, [honestOne, mine]);
    const [row] = await queryRows<{ banned: boolean; losses: number }>(db(), sql`SELECT banned, losses FROM volunteers WHERE id = ${liar!.id}`);
    expect(row).toEqual({ banned: true, losses: 3 });

    // Its vote no longer counts: the fooled chunk lost its quorum and is open again.
    const view = await getTaskView(db(), fooled);
    expect(view!.counts).toMatchObject({ done: 0 });
    expect(await results(fooled)).toEqual([]);
    await db().execute(sql`UPDATE tasks SET status = 'cancelled' WHERE status = 'running' AND id <> ${fooled}`);
    // A banned volunteer is not told: it may still lease, but its copies do not count.
    await answer(mine, await lease(mine), honest);
    await answer(honestOne, await lease(honestOne), honest);
    expect(await results(fooled)).toEqual([14]);
    expect((await getTaskView(db(), fooled))!.status).toBe("done");
  });

  it("builds a reduce tree again when a ban reopens a chunk it had read", async () => {
    // Three fresh liars win chunk 0 of a task with a reduce export; two honest volunteers,
    // one of them trusted, decide chunk 1 and then reduce the (wrong) results into the
    // aggregate while a third holds a spare copy of the reduce chunk.
    const code = "export default (x) => x; export const reduce = (r) => r";
    const reduced = await startTask({ inputs: { kind: "array", items: [7, 8] }, hasReduce: true, code, replication: 3, quorum: 2 });
    const liars = [await volunteer(), await volunteer(), await volunteer()];
    const [mine, honestOne, late] = [await volunteer(ownerId), await volunteer(), await volunteer()];
    const work = (lie: boolean) => (c: LeasedChunk) => (c.entry === "reduce" ? { sum: JSON.parse(c.input) } : lie ? "wrong" : honest(c));
    const reduceInputs = (chunks: LeasedChunk[]) => chunks.map((c) => [c.entry, JSON.parse(c.input)]);
    for (const liar of liars) await answer(liar, await lease(liar, 1), work(true));
    for (const v of [mine, honestOne]) await answer(v, await lease(v, 1), work(false));
    expect(await results(reduced)).toEqual(["wrong", 16]);
    const first = await lease(mine);
    expect(reduceInputs(first)).toEqual([["reduce", ["wrong", 16]]]);
    await answer(mine, first, work(false));
    const stale = await lease(late);
    expect(reduceInputs(stale)).toEqual([["reduce", ["wrong", 16]]]);
    await answer(honestOne, await lease(honestOne), work(false));
    expect((await getTaskView(db(), reduced))!).toMatchObject({ status: "done", aggregate: { state: "done", value: { sum: ["wrong", 16] } } });

    // One liar loses three times against trusted results and is banned: chunk 0 lost its
    // quorum, so the reduce that read it is void, and the aggregate with it.
    const [liar] = liars;
    await loseThreeTimes(liar!, [honestOne, mine]);
    await db().execute(sql`UPDATE tasks SET status = 'cancelled' WHERE status = 'running' AND id <> ${reduced}`);
    expect((await getTaskView(db(), reduced))!).toMatchObject({ status: "running", counts: { done: 1 }, aggregate: { state: "none" } });
    // The copy leased before the ban read the old inputs: it is refused, not counted.
    const refused = await answer(late, stale, work(false));
    expect(refused.rejected.map((r) => r.reason)).toEqual(["chunk-reissued"]);
    // Nor does it come back when it expires (as one still being written during the ban would).
    await db().execute(sql`UPDATE leases SET reclaimed = false, reported = repeat('0', n)::varbit, deadline = now() - interval '1 second' WHERE id = ${stale[0]!.leaseRowId}`);
    await reclaimExpiredLeases(db(), 0);
    const [reissued] = await queryRows<{ n: number }>(db(), sql`SELECT count(*)::int AS n FROM chunk_state WHERE task_id = ${reduced} AND idx >= 2`);
    expect(reissued!.n).toBe(0);

    // Chunk 0 is decided again, then the reduce runs again over the new results.
    for (const v of [mine, honestOne]) await answer(v, await lease(v, 1), work(false));
    expect(await results(reduced)).toEqual([14, 16]);
    for (const v of [mine, honestOne]) {
      const again = await lease(v);
      expect(reduceInputs(again)).toEqual([["reduce", [14, 16]]]);
      await answer(v, again, work(false));
    }
    expect((await getTaskView(db(), reduced))!).toMatchObject({ status: "done", counts: { done: 2 }, aggregate: { state: "done", value: { sum: [14, 16] } } });
  });

  it("settles every chunk once when copies arrive at the same moment", async () => {
    const total = 40;
    const taskId = await startTask({ inputs: { kind: "array", items: Array.from({ length: total }, (_, i) => i) }, replication: 3, quorum: 2 });
    const crowd = await Promise.all(Array.from({ length: 6 }, () => volunteer()));
    const work = async (v: Volunteer) => {
      for (let idle = 0; idle < 5; ) {
        const chunks = await lease(v, 8);
        if (chunks.length === 0) {
          idle++;
          await sleep(20);
          continue;
        }
        await answer(v, chunks, honest);
      }
    };
    await Promise.all(crowd.map(work));
    const view = await getTaskView(db(), taskId);
    expect(view!.counts).toMatchObject({ total, done: total, failed: 0 });
    expect(await results(taskId)).toEqual(Array.from({ length: total }, (_, i) => i * 2));
    const [row] = await queryRows<{ n: number }>(db(), sql`SELECT count(*)::int AS n FROM results WHERE task_id = ${taskId}`);
    expect(row!.n).toBe(total);
  });
});
