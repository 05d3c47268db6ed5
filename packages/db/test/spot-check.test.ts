// Adaptive replication (docs/architecture.md, "Replication, trust and reduce"): a spot-checked
// task accepts a trusted volunteer's block on one copy but for a `spotCheck` share of blocks;
// probationers' blocks always go to a vote; a trusted volunteer that loses to a vouched side
// loses its trust, and what it decided alone is decided again.
import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { queryRows } from "../src/db.ts";
import { createTask, createUser, createVolunteer, getTaskView } from "../src/index.ts";
import { finalChunksPage, getTaskForResults } from "../src/reads/results.ts";
import type { NewTask } from "../src/tasks/tasks.ts";
import { type LeasedChunk, leaseChunks, leaseRef, leaseRequest, openTestDb, submitChunks, type TestDb, taskFixture, testBackends } from "../testing/testing.ts";

describe.each(testBackends())("spot checks on %s", (backend) => {
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
    return createTask(db(), taskFixture(ownerId, { name: "spot-checked", replication: 2, quorum: 2, ...overrides }));
  };
  const items = (n: number) => ({ kind: "array" as const, items: Array.from({ length: n }, (_, i) => i + 1) });
  type Volunteer = { id: string };
  const volunteer = async (trusted = false): Promise<Volunteer> => ({ id: (await createVolunteer(db(), { name: "v", userId: null, trusted })).id });
  const lease = (v: Volunteer, max: number) => leaseChunks(db(), leaseRequest(v.id, { max, threads: max }));
  const answer = (v: Volunteer, chunks: LeasedChunk[], value: (c: LeasedChunk) => unknown) =>
    submitChunks(db(), { volunteerId: v.id, shard: 0, errors: [], results: chunks.map((c) => ({ ...leaseRef(c), result: JSON.stringify(value(c)), cpuMs: 5 })) });
  const honest = (c: LeasedChunk) => Number(c.input) * 2;
  const lie = (c: LeasedChunk) => -Number(c.input);
  const results = async (taskId: string) => (await finalChunksPage(db(), (await getTaskForResults(db(), taskId))!, -1, 10_000)).map((c) => (c.status === "done" ? JSON.parse(c.result) : c.error.kind));
  const volunteerRow = async (v: Volunteer) => (await queryRows<{ trusted: boolean; banned: boolean }>(db(), sql`SELECT trusted, banned FROM volunteers WHERE id = ${v.id}`))[0]!;

  it("accepts a trusted volunteer's block on its one copy, and always votes on a probationer's", async () => {
    const taskId = await startTask({ inputs: items(8), spotCheck: 1e-6 });
    const trusted = await volunteer(true);
    expect((await answer(trusted, await lease(trusted, 8), honest)).inserted).toBe(8);
    expect((await getTaskView(db(), taskId))!).toMatchObject({
      status: "done",
      spotCheck: 1e-6,
      verification: { copiesReceived: 8, chunksReplicated: 0, disagreements: 0, volunteersBanned: 0 },
    });
    expect(await results(taskId)).toEqual(items(8).items.map((x) => x * 2));

    const other = await startTask({ inputs: items(4), spotCheck: 1e-6 });
    const probationer = await volunteer();
    const firsts = await lease(probationer, 4);
    expect(firsts.map((c) => c.copy)).toEqual([0, 0, 0, 0]);
    const outcome = await answer(probationer, firsts, honest);
    expect(outcome.inserted).toBe(0);
    expect((await getTaskView(db(), other))!.verification).toMatchObject({ copiesReceived: 4, chunksReplicated: 4 });
    const copies = await lease(trusted, 4);
    expect(copies.map((c) => c.copy)).toEqual([1, 1, 1, 1]);
    expect((await answer(trusted, copies, honest)).inserted).toBe(4);
  });

  it("copies every block at spotCheck 1, and about a spotCheck share of trusted blocks below it", async () => {
    const every = await startTask({ inputs: items(6) });
    const trusted = await volunteer(true);
    expect((await answer(trusted, await lease(trusted, 6), honest)).inserted).toBe(0);
    expect((await getTaskView(db(), every))!).toMatchObject({ spotCheck: 1, verification: { chunksReplicated: 6 } });

    // 200 one-chunk blocks at 0.5: the checked ones form a binomial share (σ ≈ 7).
    const half = await startTask({ inputs: items(200), spotCheck: 0.5 });
    for (let i = 0; i < 200; i++) await answer(trusted, await lease(trusted, 1), honest);
    const { verification } = (await getTaskView(db(), half))!;
    expect(verification.copiesReceived).toBe(200);
    expect(verification.chunksReplicated).toBeGreaterThan(65);
    expect(verification.chunksReplicated).toBeLessThan(135);
  });

  it("catches a sleeper: its lies accepted alone are reopened and decided again once a spot check finds it", async () => {
    const taskId = await startTask({ inputs: items(40), spotCheck: 1e-6 });
    const sleeper = await volunteer(true);
    const honestOnes = [await volunteer(true), await volunteer(true), await volunteer()];
    // Trusted, it lies on its first blocks: nothing checks them (a spot-check share of ~0).
    for (let i = 0; i < 5; i++) await answer(sleeper, await lease(sleeper, 4), lie);
    const accepted = (await results(taskId)).filter((r) => r < 0).length;
    expect(accepted).toBe(20);
    // Every block from now on is checked: its next lie goes to a vote and loses to honest copies.
    await db().execute(sql`UPDATE tasks SET spot_check = 0.999999 WHERE id = ${taskId}`);
    await answer(sleeper, await lease(sleeper, 4), lie);
    for (let round = 0; round < 50; round++) {
      let any = false;
      for (const v of [...honestOnes, sleeper]) {
        const chunks = await lease(v, 4);
        if (chunks.length > 0) any = true;
        await answer(v, chunks, v === sleeper ? lie : honest);
      }
      if (!any) break;
    }
    expect(await volunteerRow(sleeper)).toEqual({ trusted: false, banned: true });
    for (const v of honestOnes) expect((await volunteerRow(v)).banned).toBe(false);
    // The 20 lies accepted before are gone: every chunk was decided again, right.
    expect(await results(taskId)).toEqual(items(40).items.map((x) => x * 2));
    expect((await getTaskView(db(), taskId))!).toMatchObject({ status: "done", counts: { done: 40 }, verification: { volunteersBanned: 1 } });
  });
});
