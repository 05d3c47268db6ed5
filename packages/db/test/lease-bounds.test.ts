// Bounds on what one volunteer holds (docs/architecture.md, "Bounds on what one volunteer
// holds"), tested with the attack: a hoarding volunteer looping the largest lease requests
// while honest volunteers lease and report, heartbeats that try to keep a block for ever,
// keys in a loop, concurrent heartbeats carrying checkpoints for one lease.
import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { queryRows } from "../src/db.ts";
import { heldChunks } from "../src/dispatch/held.ts";
import { keptPerVolunteer } from "../src/dispatch/request-keys.ts";
import {
  createTask,
  createUser,
  createVolunteer,
  heartbeatLeases,
  type LeaseBounds,
  leaseWithinBounds,
  reclaimExpiredLeases,
  recordChunkLive,
  releaseLeaseRequest,
  releaseLeases,
  submitResults,
} from "../src/index.ts";
import { auditTask } from "../src/reads/audit.ts";
import { leaseRequest, openTestDb, type TestDb, taskFixture, testBackends } from "../testing/testing.ts";

const bounds: LeaseBounds = { perVolunteer: 400, perSource: 600, maxThreads: 64, maxBufferMs: 60_000 };
const attacker = "203.0.113.66";

describe.each(testBackends())("bounds on what one volunteer holds on %s", (backend) => {
  let testDb: TestDb;
  let ownerId: string;
  const db = () => testDb.handle.db;

  beforeAll(async () => {
    testDb = await openTestDb(backend);
    ownerId = (await createUser(db(), { email: "bounds@example.com", passwordHash: "x", firstIsAdmin: false }))!.id;
  });
  afterAll(async () => testDb?.dispose());

  const startTask = async (chunks: number, overrides: Parameters<typeof taskFixture>[1] = {}) => {
    await db().execute(sql`UPDATE tasks SET status = 'cancelled' WHERE status = 'running'`);
    // Who asked for work in earlier tests is not asking now.
    testDb.handle.dispatchCache.askedAt.clear();
    return createTask(db(), taskFixture(ownerId, { inputs: { kind: "array", items: Array.from({ length: chunks }, (_, i) => i) }, ...overrides }));
  };
  const volunteer = async (name: string) => (await createVolunteer(db(), { name, userId: null })).id;
  /** The attack's request: everything, for ten minutes, on 256 threads. */
  const greedy = (volunteerId: string) => leaseRequest(volunteerId, { max: 4096, bufferMs: 600_000, threads: 256, source: attacker, bounds });
  const report = async (volunteerId: string, blocks: { leaseRowId: number; taskId: string; firstIdx: number; n: number }[]) =>
    submitResults(db(), {
      volunteerId,
      shard: 0,
      runs: blocks.map((b) => ({ leaseRowId: b.leaseRowId, taskId: b.taskId, firstIdx: b.firstIdx, offset: 0, count: b.n, resultsJson: JSON.stringify(Array(b.n).fill(1)), cpuMs: b.n })),
      errors: [],
    });

  it("a hoarder looping the largest requests stays under its bounds while honest volunteers get the rest; every chunk is done once", async () => {
    const taskId = await startTask(3000);
    const hoarders = [await volunteer("hoarder 1"), await volunteer("hoarder 2")];
    const honest = [await volunteer("honest 1"), await volunteer("honest 2"), await volunteer("honest 3")];
    let attacking = true;
    let honestDone = 0;
    let peakVolunteer = 0;
    let peakSource = 0;
    let busy = 0;
    const hoarderBlocks = new Map<string, { leaseRowId: number }[]>(hoarders.map((h) => [h, []]));
    const attack = async () => {
      for (let round = 0; round < 15 && attacking; round++) {
        // Eight at once from each identity: one volunteer's requests run one at a time.
        const outcomes = await Promise.all(hoarders.flatMap((h) => Array.from({ length: 8 }, () => leaseWithinBounds(db(), greedy(h)).then((o) => ({ h, o })))));
        for (const { h, o } of outcomes) {
          hoarderBlocks.get(h)!.push(...o.blocks);
          if (o.bounded === "busy") busy += 1;
        }
        for (const h of hoarders) {
          const held = await heldChunks(db(), { volunteerId: h, source: attacker });
          peakVolunteer = Math.max(peakVolunteer, held.volunteer);
          peakSource = Math.max(peakSource, held.source);
        }
      }
    };
    const work = async (v: string, k: number) => {
      for (let idle = 0; idle < 40; ) {
        const { blocks } = await leaseWithinBounds(db(), leaseRequest(v, { max: 64, threads: 4, source: `198.51.100.${k}`, bounds }));
        if (blocks.length === 0) {
          idle += 1;
          await new Promise((resolve) => setTimeout(resolve, 10));
          continue;
        }
        await report(v, blocks);
        honestDone += blocks.reduce((n, b) => n + b.n, 0);
      }
    };
    const honestWork = Promise.all(honest.map(work));
    await attack();
    attacking = false;
    await honestWork;

    expect(peakVolunteer).toBeLessThanOrEqual(bounds.perVolunteer);
    expect(peakSource).toBeLessThanOrEqual(bounds.perSource);
    expect(busy).toBeGreaterThan(0);
    // Honest volunteers got everything the hoarders did not hold.
    const held = (await heldChunks(db(), { volunteerId: hoarders[0]!, source: attacker })).source;
    expect(honestDone).toBe(3000 - held);
    // The hoarders give up; what they held goes to the honest ones, and every chunk is done once.
    for (const h of hoarders) await releaseLeases(db(), { volunteerId: h, leaseRowIds: hoarderBlocks.get(h)!.map((b) => b.leaseRowId), shard: 0 });
    await Promise.all(honest.map(work));
    const audit = await auditTask(db(), taskId);
    expect(audit).toMatchObject({ total: 3000, resultChunks: 3000, overlaps: 0, outOfRange: 0, failedChunks: 0, openChunks: 0, counters: { done: 3000 } });
  });

  it("identities of one source asking at once, alone, stay under the source's bound together", async () => {
    await startTask(20_000);
    const sybils = await Promise.all([1, 2, 3, 4].map((k) => volunteer(`sybil ${k}`)));
    const everything = (v: string) => leaseRequest(v, { max: 4096, threads: 256, source: attacker, bounds });
    for (let round = 0; round < 3; round++) {
      await Promise.all(sybils.flatMap((v) => [leaseWithinBounds(db(), everything(v)), leaseWithinBounds(db(), everything(v))]));
      const held = await heldChunks(db(), { volunteerId: sybils[0]!, source: attacker });
      expect(held.source).toBeLessThanOrEqual(bounds.perSource);
      expect(held.volunteer).toBeLessThanOrEqual(bounds.perVolunteer);
    }
    expect((await heldChunks(db(), { volunteerId: sybils[0]!, source: attacker })).source).toBe(bounds.perSource);
  });

  it("a volunteer holds at most an equal share of a task's open chunks while others ask for work, all of it alone", async () => {
    await startTask(400);
    const others = [await volunteer("a"), await volunteer("b"), await volunteer("c")];
    for (const v of others) expect((await leaseWithinBounds(db(), leaseRequest(v, { max: 1, bounds }))).blocks).toHaveLength(1);
    const hoarder = await volunteer("hoarder");
    const first = await leaseWithinBounds(db(), greedy(hoarder));
    // 400 open chunks among 4 volunteers: 100 each, and no more on asking again.
    expect(first.blocks.reduce((n, b) => n + b.n, 0)).toBe(100);
    expect((await leaseWithinBounds(db(), greedy(hoarder))).blocks).toEqual([]);
    // Once nobody else asks, the rest is the hoarder's to take, up to its own bound.
    testDb.handle.dispatchCache.askedAt.clear();
    // (Without a buffer: a task not yet timed gives 2 chunks a thread to a buffered request.)
    const everything = (v: string) => leaseRequest(v, { max: 4096, threads: 256, source: attacker, bounds });
    const alone = await leaseWithinBounds(db(), everything(hoarder));
    expect(alone.blocks.reduce((n, b) => n + b.n, 0)).toBe(400 - 100 - 3);
    // A small task's last chunks are not split finer than 32 a volunteer.
    await startTask(40);
    for (const v of others) await leaseWithinBounds(db(), leaseRequest(v, { max: 1, bounds }));
    expect((await leaseWithinBounds(db(), everything(hoarder))).blocks.reduce((n, b) => n + b.n, 0)).toBe(32);
  });

  it("clamps the threads a request claims: a block's latest deadline is what its chunks need at 64 threads", async () => {
    await startTask(128, { timeoutMs: 1000 });
    const v = await volunteer("many threads");
    const { blocks } = await leaseWithinBounds(db(), { ...greedy(v), graceMs: 0 });
    expect(blocks.reduce((n, b) => n + b.n, 0)).toBe(128);
    const [row] = await queryRows<{ span: number }>(db(), sql`SELECT extract(epoch FROM latest - created_at)::float8 AS span FROM leases WHERE volunteer_id = ${v}`);
    // 128 chunks on 64 threads (not 256): two rounds of 1 s.
    expect(row!.span).toBeGreaterThan(1.9);
    expect(row!.span).toBeLessThan(2.5);
  });

  it("heartbeats extend a block only up to what its chunks need at the volunteer's threads, then it goes back", async () => {
    await startTask(8, { timeoutMs: 100 });
    const [beater, next] = [await volunteer("beater"), await volunteer("next")];
    const { blocks } = await leaseWithinBounds(db(), leaseRequest(beater, { max: 8, threads: 2, graceMs: 0, bounds }));
    expect(blocks.reduce((n, b) => n + b.n, 0)).toBe(8);
    const ids = blocks.map((b) => b.leaseRowId);
    // 8 chunks on 2 threads: 4 rounds of 100 ms, no grace. Beat every 50 ms for over a second.
    const states: string[] = [];
    const started = Date.now();
    while (Date.now() - started < 1200) {
      const outcome = await heartbeatLeases(db(), { volunteerId: beater, leaseRowIds: ids, graceMs: 0 });
      states.push(outcome.extended.length > 0 ? "extended" : outcome.lost.length > 0 ? "lost" : "cancelled");
      const [row] = await queryRows<{ over: boolean }>(db(), sql`SELECT bool_or(deadline > latest) AS over FROM leases WHERE volunteer_id = ${beater}`);
      expect(row!.over).toBe(false);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    expect(states[0]).toBe("extended");
    expect(states.at(-1)).toBe("lost");
    expect(await reclaimExpiredLeases(db(), 0)).toBeGreaterThan(0);
    testDb.handle.dispatchCache.askedAt.clear();
    const taken = await leaseWithinBounds(db(), leaseRequest(next, { max: 8, bounds }));
    expect(taken.blocks.reduce((n, b) => n + b.n, 0)).toBe(8);
  });

  it("a beat moves a timed task's deadline on, a beat that repeats it writes nothing, and neither passes the latest", async () => {
    const taskId = await startTask(64, { timeoutMs: 60_000 });
    const [timer, beater] = [await volunteer("timer"), await volunteer("timed beater")];
    // Eight results teach the task its (tiny) chunk time: its next deadlines are soon.
    const first = (await leaseWithinBounds(db(), leaseRequest(timer, { max: 8, threads: 4, bounds }))).blocks;
    await report(timer, first);
    testDb.handle.dispatchCache.tasksChanged(); // candidate tasks, kept 100 ms, now say it is timed
    const { blocks } = await leaseWithinBounds(db(), leaseRequest(beater, { max: 4, threads: 1, graceMs: 0, bounds }));
    expect(blocks.map((b) => b.taskId)).toEqual([taskId]);
    const ids = blocks.map((b) => b.leaseRowId);
    const deadline = async () => (await queryRows<{ deadline: string; latest: string }>(db(), sql`SELECT deadline::text, latest::text FROM leases WHERE id = ${ids[0]!}`))[0]!;
    const leased = await deadline();
    expect((await heartbeatLeases(db(), { volunteerId: beater, leaseRowIds: ids, graceMs: 30_000 })).extended).toEqual(ids);
    const beaten = await deadline();
    // now + 60 s + 30 s, where the lease gave now + 60 s and a little.
    expect(Date.parse(beaten.deadline) - Date.parse(leased.deadline)).toBeGreaterThan(25_000);
    expect(Date.parse(beaten.deadline)).toBeLessThanOrEqual(Date.parse(beaten.latest));
    expect((await heartbeatLeases(db(), { volunteerId: beater, leaseRowIds: ids, graceMs: 30_000 })).extended).toEqual(ids);
    expect(await deadline()).toEqual(beaten);
  });

  it("keeps a volunteer's newest lease request keys only: releases and requests with fresh keys in a loop leave a bounded number of rows", async () => {
    await startTask(4);
    const v = await volunteer("fresh keys");
    for (let i = 0; i < 3 * keptPerVolunteer; i++) {
      await releaseLeaseRequest(db(), { volunteerId: v, key: `release-${i}`, shard: 0 });
      await leaseWithinBounds(db(), leaseRequest(v, { max: 1, idempotencyKey: `lease-${i}`, bounds }));
    }
    const [row] = await queryRows<{ n: number }>(db(), sql`SELECT count(*)::int AS n FROM lease_requests WHERE volunteer_id = ${v}`);
    expect(row!.n).toBeLessThanOrEqual(keptPerVolunteer);
    // The newest key still voids a request that arrives after its release.
    await releaseLeaseRequest(db(), { volunteerId: v, key: "closing", shard: 0 });
    expect((await leaseWithinBounds(db(), leaseRequest(v, { max: 1, idempotencyKey: "closing", bounds }))).blocks).toEqual([]);
  });

  it("sixteen concurrent heartbeats carrying checkpoints for one lease all succeed", async () => {
    await startTask(16);
    const v = await volunteer("checkpointer");
    const { blocks } = await leaseWithinBounds(db(), leaseRequest(v, { max: 16, threads: 16, bounds }));
    const block = blocks[0]!;
    const state = JSON.stringify({ text: "é".repeat(2048) });
    const beat = (k: number) =>
      Promise.all([
        heartbeatLeases(db(), { volunteerId: v, leaseRowIds: [block.leaseRowId], graceMs: 30_000 }),
        recordChunkLive(db(), {
          volunteerId: v,
          reports: Array.from({ length: 16 }, (_, offset) => ({ leaseRowId: block.leaseRowId, offset, fraction: k / 16, checkpointJson: state })),
        }),
      ]);
    const outcomes = await Promise.all(Array.from({ length: 16 }, (_, k) => beat(k)));
    for (const [hb] of outcomes) expect(hb.extended).toEqual([block.leaseRowId]);
  });
});
