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
  /** A volunteer trusted from the start, as an admin's volunteers are. */
  const trustedVolunteer = async (): Promise<Volunteer> => ({ id: (await createVolunteer(db(), { name: "t", userId: null, trusted: true })).id, userId: null });
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
  /** `liar` answers wrong three times, each against the same honest answers (one of them trusted, not as an owner's): enough for a ban. */
  const loseThreeTimes = async (liar: Volunteer, honestOnes: Volunteer[]) => {
    let taskId = "";
    for (let round = 0; round < 3; round++) {
      taskId = await startTask({ inputs: { kind: "array", items: [round] } });
      await answer(liar, await lease(liar), () => "wrong");
      for (const v of honestOnes) await answer(v, await lease(v), honest);
    }
    return taskId; // the task the ban came on
  };
  const results = async (taskId: string) => (await finalChunksPage(db(), (await getTaskForResults(db(), taskId))!, -1, 100)).map((c) => (c.status === "done" ? JSON.parse(c.result) : c.error.kind));

  it("needs agreeing copies from distinct volunteers, and a trusted one among them", async () => {
    const taskId = await startTask();
    const [a, b, c] = [await volunteer(), await volunteer(), await trustedVolunteer()];
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
    // Two fresh identities agreeing are not enough: a third copy is issued, and waits for a trusted volunteer.
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
    // At most replication + maxAttempts = 3 copies of a chunk whose copies disagree.
    const taskId = await startTask({ inputs: { kind: "array", items: [5, 6] }, maxAttempts: 1 });
    const [liar, h1, h2, other] = [await volunteer(), await volunteer(), await volunteer(), await trustedVolunteer()];
    const lies = await lease(liar);
    await answer(liar, lies, () => 666);
    // Chunk 0: two honest copies outvote the liar. Chunk 1: every copy disagrees.
    const c1 = await lease(h1);
    await answer(h1, c1, (c) => (c.index === 0 ? honest(c) : "h1"));
    const c2 = await lease(h2);
    await answer(h2, c2, (c) => (c.index === 0 ? honest(c) : "h2"));
    // Chunk 1 has failed already. Chunk 0's two honest copies are untrusted: they wait for a trusted one.
    expect(await results(taskId)).toEqual(["no-quorum"]);
    const c3 = await lease(other);
    expect(c3.map((x) => x.index)).toEqual([0]);
    await answer(other, c3, honest);
    const view = await getTaskView(db(), taskId);
    expect(await results(taskId)).toEqual([10, "no-quorum"]);
    expect(view!.status).toBe("done");
    expect(view!.counts).toMatchObject({ done: 1, failed: 1 });
    expect(view!.lastError).toMatchObject({ index: 1, kind: "no-quorum" });
    // Seven copies came back for two chunks, both replicated, both with copies that disagreed.
    expect(view!.verification).toEqual({ copiesReceived: 7, chunksReplicated: 2, disagreements: 2, volunteersBanned: 0 });
  });

  it("gives no user two copies, and frees the copy of a volunteer that vanished", async () => {
    const taskId = await startTask({ inputs: { kind: "array", items: [3] }, timeoutMs: 100 });
    const userId = (await createUser(db(), { email: "twice@example.com", passwordHash: "x", firstIsAdmin: false }))!.id;
    const [first, sameUser, gone, second] = [await volunteer(userId), await volunteer(userId), await trustedVolunteer(), await volunteer()];
    await answer(first, await lease(first), honest);
    expect(await lease(sameUser)).toEqual([]);
    // Replication 2: one more copy is planned, and it is out now.
    const held = await lease(gone, 8, 0);
    expect(held).toHaveLength(1);
    expect(await lease(second)).toEqual([]);
    await sleep(250);
    await reclaimExpiredLeases(db(), 0);
    const freed = await lease(second);
    expect(freed.map((x) => x.index)).toEqual([0]);
    // The vanished (trusted) volunteer's late copy still counts, and settles the chunk.
    expect((await answer(gone, held, honest)).inserted).toBe(1);
    expect((await answer(second, freed, honest)).inserted).toBe(0);
    expect(await results(taskId)).toEqual([6]);
  });

  /** Volunteers take turns leasing and answering until nothing is left to lease. */
  const roundRobin = async (crowd: Volunteer[], value: (v: Volunteer, c: LeasedChunk) => unknown, max = 4) => {
    for (let round = 0; round < 200; round++) {
      let any = false;
      for (const v of crowd) {
        const chunks = await lease(v, max);
        if (chunks.length > 0) any = true;
        await answer(v, chunks, (c) => value(v, c));
      }
      if (!any) return;
    }
  };
  const figures = async (crowd: Volunteer[]) =>
    queryRows<{ id: string; trusted: boolean; banned: boolean; wins: number; vouched_wins: number }>(
      db(),
      sql`SELECT id, trusted, banned, wins, vouched_wins FROM volunteers WHERE id IN (SELECT value::uuid FROM json_array_elements_text(${JSON.stringify(crowd.map((v) => v.id))}::json))`,
    );

  it("trusts a probationer after 10 wins shared with 3 vouching volunteers", async () => {
    const vouchers = [await trustedVolunteer(), await trustedVolunteer(), await trustedVolunteer()];
    const probationer = await volunteer();
    await startTask({ inputs: { kind: "array", items: Array.from({ length: 12 }, (_, i) => i) }, replication: 3, quorum: 3 });
    await roundRobin([probationer, ...vouchers], (_, c) => honest(c));
    const [row] = await figures([probationer]);
    expect(row).toMatchObject({ trusted: true, banned: false, wins: 12, vouched_wins: 12 });
  });

  it("never trusts wins shared only with fresh identities or the task owner's own volunteer", async () => {
    // The owner's volunteer decides every chunk of its own task with the four fresh ones, and
    // they agree on all 60 of them: the owner vouches for nobody, so none of them is promoted.
    const crowd = await Promise.all(Array.from({ length: 4 }, () => volunteer()));
    const mine = await volunteer(ownerId);
    const taskId = await startTask({ inputs: { kind: "array", items: Array.from({ length: 60 }, (_, i) => i) } });
    await roundRobin([...crowd, mine], (_, c) => honest(c));
    expect((await getTaskView(db(), taskId))!.counts).toMatchObject({ done: 60 });
    const rows = await figures(crowd);
    expect(rows.reduce((sum, v) => sum + v.wins, 0)).toBeGreaterThanOrEqual(60);
    expect(rows.map((v) => [v.trusted, v.vouched_wins])).toEqual(crowd.map(() => [false, 0]));
  });

  describe.each([3, 5])("%i fresh identities agreeing on a wrong value", (sybilCount) => {
    const total = 20;
    const items = Array.from({ length: total }, (_, i) => i + 1);
    const wrong = (c: LeasedChunk) => -Number(c.input);
    const honestValues = items.map((x) => x * 2);

    it("alone, decide nothing and earn no trust; honest volunteers then decide every chunk", async () => {
      const taskId = await startTask({ inputs: { kind: "array", items } });
      const sybils = await Promise.all(Array.from({ length: sybilCount }, () => volunteer()));
      await roundRobin(sybils, (_, c) => wrong(c));
      expect(await results(taskId)).toEqual([]);
      expect((await getTaskView(db(), taskId))!.status).toBe("running");
      expect((await figures(sybils)).map((v) => v.trusted)).toEqual(sybils.map(() => false));
      // Honest volunteers arrive: one trusted, one on probation. Every chunk ends right.
      const honestOnes = [await trustedVolunteer(), await volunteer()];
      await roundRobin(honestOnes, (_, c) => honest(c));
      expect(await results(taskId)).toEqual(honestValues);
      const after = await figures([...sybils, ...honestOnes]);
      expect(after.filter((v) => sybils.some((s) => s.id === v.id)).every((v) => !v.trusted)).toBe(true);
      expect(after.filter((v) => honestOnes.some((h) => h.id === v.id)).every((v) => !v.banned)).toBe(true);
    });

    it("mixed with honest trusted volunteers, win nothing, earn no trust and get no honest volunteer banned", async () => {
      const taskId = await startTask({ inputs: { kind: "array", items } });
      const sybils = await Promise.all(Array.from({ length: sybilCount }, () => volunteer()));
      const honestOnes = [await trustedVolunteer(), await trustedVolunteer(), await volunteer(), await volunteer()];
      const liar = new Set(sybils.map((v) => v.id));
      // Sybils first in every round, so they are first to every copy.
      await roundRobin([...sybils, ...honestOnes], (v, c) => (liar.has(v.id) ? wrong(c) : honest(c)), 2);
      expect(await results(taskId)).toEqual(honestValues);
      const rows = await figures([...sybils, ...honestOnes]);
      expect(rows.filter((v) => liar.has(v.id)).every((v) => !v.trusted)).toBe(true);
      expect(rows.filter((v) => !liar.has(v.id)).every((v) => !v.banned)).toBe(true);
    });
  });

  it("bans no one for losing to the task owner's own volunteer with fresh identities on its side", async () => {
    const taskId = await startTask({ inputs: { kind: "array", items: [1, 2, 3, 4, 5] } });
    const victim = await volunteer();
    const mine = await volunteer(ownerId);
    const sybil = await volunteer();
    await answer(victim, await lease(victim), honest);
    // The owner may lie to itself on its own task, but that vouches for nothing elsewhere.
    await answer(mine, await lease(mine), () => "owner's lie");
    await answer(sybil, await lease(sybil), () => "owner's lie");
    expect(await results(taskId)).toEqual(["owner's lie", "owner's lie", "owner's lie", "owner's lie", "owner's lie"]);
    const [row] = await figures([victim]);
    expect(row).toMatchObject({ banned: false });
    const [losses] = await queryRows<{ losses: number }>(db(), sql`SELECT losses FROM volunteers WHERE id = ${victim.id}`);
    expect(losses!.losses).toBe(0);
  });

  it("bans a volunteer that keeps losing to trusted results, and reopens what it helped win", async () => {
    // A volunteer that answers one chunk right, with a trusted one: the chunk is decided.
    const fooled = await startTask({ inputs: { kind: "array", items: [7] } });
    const guard = await trustedVolunteer();
    const honestOne = await volunteer();
    const liar = await volunteer();
    await answer(liar, await lease(liar), honest);
    await answer(guard, await lease(guard), honest);
    expect(await results(fooled)).toEqual([14]);

    // It then loses three times against a trusted volunteer and an honest one.
    const lastRound = await loseThreeTimes(liar, [honestOne, guard]);
    expect((await getTaskView(db(), lastRound))!.verification).toEqual({ copiesReceived: 3, chunksReplicated: 1, disagreements: 1, volunteersBanned: 1 });
    const [row] = await queryRows<{ banned: boolean; losses: number }>(db(), sql`SELECT banned, losses FROM volunteers WHERE id = ${liar.id}`);
    expect(row).toEqual({ banned: true, losses: 3 });

    // Its vote no longer counts: the chunk it helped decide lost its quorum and is open again.
    const view = await getTaskView(db(), fooled);
    expect(view!.counts).toMatchObject({ done: 0 });
    expect(view!.status).toBe("running");
    expect(await results(fooled)).toEqual([]);
    await db().execute(sql`UPDATE tasks SET status = 'cancelled' WHERE status = 'running' AND id <> ${fooled}`);
    // A banned volunteer is not told: it may still lease, but its copies do not count.
    expect(await lease(guard)).toEqual([]);
    await answer(honestOne, await lease(honestOne), honest);
    expect(await results(fooled)).toEqual([14]);
    expect((await getTaskView(db(), fooled))!.status).toBe("done");
  });

  it("builds a reduce tree again when a ban reopens a chunk it had read", async () => {
    // A future liar (honest here) decides chunk 0 of a task with a reduce export with the
    // owner's volunteer (trusted on its own task); an honest volunteer and the owner's decide
    // chunk 1 and then reduce the results into the aggregate while a third holds a spare copy
    // of the reduce chunk.
    const code = "export default (x) => x; export const reduce = (r) => r";
    const reduced = await startTask({ inputs: { kind: "array", items: [7, 8] }, hasReduce: true, code, replication: 3, quorum: 2 });
    const liar = await volunteer();
    const [mine, honestOne, late, guard] = [await volunteer(ownerId), await volunteer(), await volunteer(), await trustedVolunteer()];
    const work = (c: LeasedChunk) => (c.entry === "reduce" ? { sum: JSON.parse(c.input) } : honest(c));
    const reduceInputs = (chunks: LeasedChunk[]) => chunks.map((c) => [c.entry, JSON.parse(c.input)]);
    for (const v of [liar, mine, honestOne, mine]) await answer(v, await lease(v, 1), work);
    expect(await results(reduced)).toEqual([14, 16]);
    const first = await lease(mine);
    expect(reduceInputs(first)).toEqual([["reduce", [14, 16]]]);
    await answer(mine, first, work);
    const stale = await lease(late);
    expect(reduceInputs(stale)).toEqual([["reduce", [14, 16]]]);
    await answer(honestOne, await lease(honestOne), work);
    expect((await getTaskView(db(), reduced))!).toMatchObject({ status: "done", aggregate: { state: "done", value: { sum: [14, 16] } } });

    // The liar loses three times against trusted results and is banned: chunk 0 lost its
    // quorum, so the reduce that read it is void, and the aggregate with it.
    await loseThreeTimes(liar, [honestOne, guard]);
    await db().execute(sql`UPDATE tasks SET status = 'cancelled' WHERE status = 'running' AND id <> ${reduced}`);
    expect((await getTaskView(db(), reduced))!).toMatchObject({ status: "running", counts: { done: 1 }, aggregate: { state: "none" } });
    // The copy leased before the ban read the old inputs: it is refused, not counted.
    const refused = await answer(late, stale, work);
    expect(refused.rejected.map((r) => r.reason)).toEqual(["chunk-reissued"]);
    // Nor does it come back when it expires (as one still being written during the ban would).
    await db().execute(sql`UPDATE leases SET reclaimed = false, reported = repeat('0', n)::varbit, deadline = now() - interval '1 second' WHERE id = ${stale[0]!.leaseRowId}`);
    await reclaimExpiredLeases(db(), 0);
    const [reissued] = await queryRows<{ n: number }>(db(), sql`SELECT count(*)::int AS n FROM chunk_state WHERE task_id = ${reduced} AND idx >= 2`);
    expect(reissued!.n).toBe(0);

    // Chunk 0 is decided again (the owner's vote stands; another copy joins it), then the
    // reduce runs again over the new results.
    await answer(honestOne, await lease(honestOne, 1), work);
    expect(await results(reduced)).toEqual([14, 16]);
    for (const v of [mine, honestOne]) {
      const again = await lease(v);
      expect(reduceInputs(again)).toEqual([["reduce", [14, 16]]]);
      await answer(v, again, work);
    }
    expect((await getTaskView(db(), reduced))!).toMatchObject({ status: "done", counts: { done: 2 }, aggregate: { state: "done", value: { sum: [14, 16] } } });
  });

  describe("within a tolerance", () => {
    // A float kernel whose honest results differ in the last bits from one machine to another.
    const kernel = (wobble: number) => (c: LeasedChunk) => ({ n: Number(c.input), sum: Number(c.input) * 0.1 * (1 + wobble) });
    const exact = kernel(0);

    it("finishes with copies that differ in the last bits; the first trusted copy's value wins", async () => {
      const taskId = await startTask({ inputs: { kind: "array", items: [1, 2, 3] }, tolerance: { rel: 1e-9 } });
      const [early, trusted] = [await volunteer(), await trustedVolunteer()];
      await answer(early, await lease(early), kernel(3e-16));
      expect((await answer(trusted, await lease(trusted), exact)).inserted).toBe(3);
      // Agreeing within the tolerance is no disagreement.
      expect((await getTaskView(db(), taskId))!.verification).toEqual({ copiesReceived: 6, chunksReplicated: 3, disagreements: 0, volunteersBanned: 0 });
      expect(await results(taskId)).toEqual([1, 2, 3].map((n) => ({ n, sum: n * 0.1 })));
      expect((await getTaskView(db(), taskId))!).toMatchObject({ status: "done", tolerance: { rel: 1e-9 } });
      // Both copies agreed: both earn credit, and the early one a vouched win.
      const [row] = await figures([early]);
      expect(row).toMatchObject({ wins: 3, vouched_wins: 3 });
    });

    it("lets a copy outside the tolerance lose, and one within it win with the trusted copy", async () => {
      const taskId = await startTask({ inputs: { kind: "array", items: [5] }, tolerance: { abs: 1e-6, rel: 1e-9 } });
      const [far, trusted, near] = [await volunteer(), await trustedVolunteer(), await volunteer()];
      await answer(far, await lease(far), kernel(1e-4));
      await answer(trusted, await lease(trusted), exact);
      expect(await results(taskId)).toEqual([]);
      await answer(near, await lease(near), kernel(1e-8)); // 5e-9 off: within abs
      expect(await results(taskId)).toEqual([{ n: 5, sum: 0.5 }]);
      const [losses] = await queryRows<{ losses: number }>(db(), sql`SELECT losses FROM volunteers WHERE id = ${far.id}`);
      expect(losses!.losses).toBe(1);
    });

    it("keeps a shape or null that differs a disagreement, whatever the tolerance", async () => {
      const taskId = await startTask({ inputs: { kind: "array", items: [1, 2] }, tolerance: { abs: 1e9 } });
      const [odd, trusted] = [await volunteer(), await trustedVolunteer()];
      await answer(odd, await lease(odd), (c) => (c.index === 0 ? { n: 1, sum: null } : { n: 2, sum: 0.2, extra: true }));
      await answer(trusted, await lease(trusted), exact);
      expect(await results(taskId)).toEqual([]);
      const [row] = await queryRows<{ n: number }>(db(), sql`SELECT count(DISTINCT hash)::int AS n FROM votes WHERE task_id = ${taskId} AND idx = 0`);
      expect(row!.n).toBe(2);
    });

    it("agrees exactly without the option, as before", async () => {
      const taskId = await startTask({ inputs: { kind: "array", items: [1] } });
      const [early, trusted] = [await volunteer(), await trustedVolunteer()];
      await answer(early, await lease(early), kernel(3e-16));
      await answer(trusted, await lease(trusted), exact);
      expect(await results(taskId)).toEqual([]);
      expect((await getTaskView(db(), taskId))!).toMatchObject({ status: "running", tolerance: null });
    });
  });

  it("settles every chunk once when copies arrive at the same moment", async () => {
    const total = 40;
    const taskId = await startTask({ inputs: { kind: "array", items: Array.from({ length: total }, (_, i) => i) }, replication: 3, quorum: 2 });
    // Two of six trusted: untrusted agreeing copies wait for theirs.
    const crowd = await Promise.all(Array.from({ length: 6 }, (_, i) => (i < 2 ? trustedVolunteer() : volunteer())));
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
    // Rows never overlap: a block decided whole is one row of n chunks.
    const [row] = await queryRows<{ n: number }>(db(), sql`SELECT sum(n)::int AS n FROM results WHERE task_id = ${taskId}`);
    expect(row!.n).toBe(total);
  });
});
