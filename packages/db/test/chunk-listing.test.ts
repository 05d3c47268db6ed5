import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTask, createUser, createVolunteer, getTaskView, reclaimExpiredLeases } from "../src/index.ts";
import { type ChunkListing, type ChunkStatus, listChunks } from "../src/reads/chunk-listing.ts";
import type { NewTask } from "../src/tasks/tasks.ts";
import { type LeasedChunk, leaseChunks, leaseRef, leaseRequest, openTestDb, submitChunks, type TestDb, taskFixture, testBackends } from "../testing/testing.ts";

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe.each(testBackends())("chunk listing on %s", (backend) => {
  let testDb: TestDb;
  let ownerId: string;
  const db = () => testDb.handle.db;

  beforeAll(async () => {
    testDb = await openTestDb(backend);
    ownerId = (await createUser(db(), { email: "lister@example.com", passwordHash: "x", firstIsAdmin: false }))!.id;
  });
  afterAll(async () => testDb?.dispose());

  /** A running task that is the only one volunteers can lease from. */
  const startTask = async (overrides: Partial<NewTask>) => {
    await db().execute(sql`UPDATE tasks SET status = 'cancelled' WHERE status = 'running'`);
    return createTask(db(), taskFixture(ownerId, overrides));
  };
  type Volunteer = { id: string; userId: string | null };
  const volunteer = async (name: string, userId: string | null = null): Promise<Volunteer> => ({ id: (await createVolunteer(db(), { name, userId })).id, userId });
  const lease = (v: Volunteer, max: number, graceMs = 30_000) => leaseChunks(db(), leaseRequest(v.id, { userId: v.userId, max, threads: max, graceMs }));
  const ref = (c: LeasedChunk) => ({ ...leaseRef(c), cpuMs: 3 });
  const report = (v: Volunteer, results: [LeasedChunk, unknown][], errors: [LeasedChunk, string][] = []) =>
    submitChunks(db(), {
      volunteerId: v.id,
      userId: v.userId,
      shard: 0,
      results: results.map(([c, value]) => ({ ...ref(c), result: JSON.stringify(value) })),
      errors: errors.map(([c, message]) => ({ ...ref(c), kind: "throw", message })),
    });
  const page = async (taskId: string, status: ChunkStatus | null, after = -1, limit = 100) => (await listChunks(db(), taskId, { status, after, limit }))!;
  /** Every page of a listing, following the cursor. */
  const allPages = async (taskId: string, status: ChunkStatus | null, limit: number) => {
    const pages: number[][] = [];
    for (let after = -1; ; ) {
      const next = await page(taskId, status, after, limit);
      pages.push(next.items.map((item) => item.index));
      if (next.nextAfter === null) return pages;
      after = next.nextAfter;
    }
  };
  const statuses = (items: ChunkListing[]) => items.map((item) => [item.index, item.status]);

  it("derives each chunk's status from results, chunk_state, leases and stripes, with retries and a failure", async () => {
    const taskId = await startTask({ maxAttempts: 2, timeoutMs: 100 });
    const [first, second, vanishing] = [await volunteer("first"), await volunteer("second"), await volunteer("vanishing")];

    const block = await lease(first, 4);
    expect(block.map((c) => c.index)).toEqual([0, 1, 2, 3]);
    await report(
      first,
      [
        [block[0]!, "zero"],
        [block[2]!, "two"],
      ],
      [[block[1]!, "boom 1"]],
    );
    // The retry of chunk 1 comes first, then a fresh block of one.
    const retry = await lease(second, 2);
    expect(retry.map((c) => c.index)).toEqual([1, 4]);
    expect((await page(taskId, "leased")).items.map((item) => item.index)).toEqual([1, 3, 4]);
    expect((await page(taskId, "pending")).items.map((item) => item.index)).toEqual([5, 6, 7, 8, 9]);

    await report(second, [], [[retry[0]!, "boom 2"]]);
    // A lease that lapsed and waits to be reclaimed: the chunks it did not report are pending again.
    const lapsing = await lease(vanishing, 4, 0);
    expect(lapsing.map((c) => c.index)).toEqual([5, 6, 7, 8]);
    await report(vanishing, [[lapsing[1]!, "six"]]);
    await sleep(250);

    const everything = await page(taskId, null);
    expect(statuses(everything.items)).toEqual([
      [0, "done"],
      [1, "failed"],
      [2, "done"],
      [3, "leased"],
      [4, "leased"],
      [5, "pending"],
      [6, "done"],
      [7, "pending"],
      [8, "pending"],
      [9, "pending"],
    ]);
    expect(everything.nextAfter).toBeNull();
    expect(everything.items[1]).toEqual({
      index: 1,
      input: '{"n":1}',
      status: "failed",
      attempts: 2,
      expiries: 0,
      votes: [],
      copiesNeeded: null,
      waitingFor: null,
      lastError: { kind: "throw", message: "boom 2" },
      progress: null,
      checkpointAt: null,
      console: null,
    });
    expect(everything.items[0]).toMatchObject({ input: '{"n":0}', attempts: null, expiries: null, lastError: null, votes: [] });
    expect(everything.items[7]).toMatchObject({ input: '{"n":7}', attempts: 0, expiries: 0, lastError: null });

    expect((await page(taskId, "failed")).items.map((item) => item.index)).toEqual([1]);
    expect((await page(taskId, "done")).items.map((item) => item.index)).toEqual([0, 2, 6]);
    expect((await page(taskId, "leased")).items.map((item) => item.index)).toEqual([3, 4]);
    expect((await page(taskId, "voting")).items).toEqual([]);

    // Paging: full pages until the last, and each filter pages the same way.
    expect(await allPages(taskId, null, 4)).toEqual([
      [0, 1, 2, 3],
      [4, 5, 6, 7],
      [8, 9],
    ]);
    expect(await allPages(taskId, "pending", 2)).toEqual([
      [5, 7],
      [8, 9],
    ]);
    expect((await page(taskId, "pending", 5, 2)).items.map((item) => item.index)).toEqual([7, 8]);
    expect(await allPages(taskId, "done", 1)).toEqual([[0], [2], [6]]);
    expect(await page(taskId, null, 9)).toEqual({ items: [], nextAfter: null });

    // Once reclaimed, the lapsed chunks are retries with an expiry counted.
    await reclaimExpiredLeases(db(), 0);
    const pending = await page(taskId, "pending");
    expect(pending.items.map((item) => item.index)).toEqual([5, 7, 8, 9]);
    expect(pending.items[0]).toMatchObject({ index: 5, attempts: 0, expiries: 1 });
  });

  it("lists the votes of replicated chunks: who, which hash, whether it agrees", async () => {
    const taskId = await startTask({ replication: 2, quorum: 2, inputs: { kind: "array", items: [10, 20, 30] } });
    const stranger = await volunteer("stranger");
    const owners = await volunteer("owner's own", ownerId); // trusted for its own task
    const firsts = await lease(stranger, 3);
    expect((await getTaskView(db(), taskId))!).toMatchObject({ volunteers: 1, counts: { leased: 3, awaitingCopy: 0 } });
    await report(
      stranger,
      firsts.map((c) => [c, Number(c.input) * 2]),
    );
    // Each chunk has one vote and waits for a volunteer that has not computed it.
    expect((await getTaskView(db(), taskId))!).toMatchObject({ volunteers: 0, counts: { pending: 3, leased: 0, awaitingCopy: 3 } });
    // A copy takes the first copy's block whole; reported with an error in it, it is counted
    // chunk by chunk (block-votes.ts), and the errored chunk's copy slot is free again.
    expect(await lease(owners, 2)).toEqual([]);
    const copies = await lease(owners, 3);
    expect(copies.map((c) => c.index)).toEqual([0, 1, 2]);
    await report(
      owners,
      [
        [copies[0]!, 20],
        [copies[1]!, "disagrees"],
      ],
      [[copies[2]!, "boom"]],
    );

    const { items } = await page(taskId, null);
    expect(statuses(items)).toEqual([
      [0, "done"],
      [1, "voting"],
      [2, "voting"],
    ]);
    const [done, split, waiting] = items as [ChunkListing, ChunkListing, ChunkListing];
    expect(done.votes.map((v) => [v.volunteerName, v.agrees])).toEqual([
      ["stranger", true],
      ["owner's own", true],
    ]);
    expect(done.votes[0]!.hashPrefix).toMatch(/^[0-9a-f]{12}$/);
    expect(done.votes[0]!.hashPrefix).toBe(done.votes[1]!.hashPrefix);
    expect(done.votes.map((v) => v.volunteerId)).toEqual([stranger.id, owners.id]);
    expect(split.votes.map((v) => [v.volunteerName, v.agrees])).toEqual([
      ["stranger", null],
      ["owner's own", null],
    ]);
    expect(split.votes[0]!.hashPrefix).not.toBe(split.votes[1]!.hashPrefix);
    expect(split.votes[0]!.at).toBeInstanceOf(Date);
    expect(waiting.votes).toHaveLength(1);
    // Past the replication: a disagreement asks for one more copy. A chunk with one untrusted
    // vote plans the replication's copies; only a quorum of untrusted votes that agree asks
    // for more, waiting for a trusted one (docs/architecture.md, "Replication, trust and reduce").
    expect([done.copiesNeeded, split.copiesNeeded, waiting.copiesNeeded]).toEqual([null, 3, 2]);
    // What each waits for: one agreeing copy more (one vote on each side, or a single vote).
    expect([done.waitingFor, split.waitingFor, waiting.waitingFor]).toEqual([
      null,
      { reason: "moreCopies", agreeing: 1, moreAgreeing: 1, copiesOut: 0 },
      { reason: "moreCopies", agreeing: 1, moreAgreeing: 1, copiesOut: 0 },
    ]);
    expect((await getTaskView(db(), taskId))!).toMatchObject({ counts: { done: 1, pending: 2, awaitingCopy: 2 }, waiting: { trustedCopy: 0, moreCopies: 2, examined: 2 } });

    expect((await page(taskId, "voting")).items.map((item) => item.index)).toEqual([1, 2]);
    expect(await allPages(taskId, "voting", 1)).toEqual([[1], [2]]);
    expect((await page(taskId, "done")).items.map((item) => item.index)).toEqual([0]);
  });

  it("says what a voting chunk waits for: two fresh volunteers agreeing wait for a trusted copy", async () => {
    const taskId = await startTask({ replication: 2, quorum: 2, inputs: { kind: "array", items: [1, 2] } });
    const first = await volunteer("fresh one");
    const second = await volunteer("fresh two");
    const firsts = await lease(first, 2);
    await report(
      first,
      firsts.map((c) => [c, Number(c.input)]),
    );
    // One copy in: it needs one more agreeing copy, from anyone that has not voted on it.
    expect((await page(taskId, "voting")).items.map((item) => item.waitingFor)).toEqual([
      { reason: "moreCopies", agreeing: 1, moreAgreeing: 1, copiesOut: 0 },
      { reason: "moreCopies", agreeing: 1, moreAgreeing: 1, copiesOut: 0 },
    ]);
    const seconds = await lease(second, 2);
    expect((await page(taskId, "voting")).items.map((item) => item.waitingFor?.copiesOut)).toEqual([1, 1]);
    await report(second, [
      [seconds[0]!, Number(seconds[0]!.input)],
      [seconds[1]!, "disagrees"],
    ]);
    // Two untrusted votes agree on chunk 0: a quorum that cannot decide it without a trusted
    // vote (docs/architecture.md, "Replication, trust and reduce"). Chunk 1 split one to one.
    const [agreed, split] = (await page(taskId, "voting")).items as [ChunkListing, ChunkListing];
    expect(agreed.waitingFor).toEqual({ reason: "trustedCopy", agreeing: 2, moreAgreeing: 1, copiesOut: 0 });
    expect(split.waitingFor).toEqual({ reason: "moreCopies", agreeing: 1, moreAgreeing: 1, copiesOut: 0 });
    expect(split.copiesNeeded).toBe(3);
    // The task view sums it up for the awaiting chunks (no copy out).
    expect((await getTaskView(db(), taskId))!).toMatchObject({ counts: { awaitingCopy: 2 }, waiting: { trustedCopy: 1, moreCopies: 1, examined: 2 } });
  });

  it("pages a million-chunk range without materialising it: inputs derived, fresh chunks cut from stripes", async () => {
    const taskId = await startTask({ inputs: { kind: "range", start: 0, end: 10_000_000, step: 1, size: 10 } });
    const leased = await lease(await volunteer("big"), 64);
    const first = leased[0]!.index;
    expect(leased.map((c) => c.index)).toEqual(Array.from({ length: 64 }, (_, i) => first + i));

    const started = performance.now();
    const around = await page(taskId, "pending", first - 3, 5);
    // The five indexes after the cursor that the block does not hold (the block may start at 0).
    const expected = [first - 2, first - 1, first + 64, first + 65, first + 66, first + 67, first + 68].filter((i) => i >= 0).slice(0, 5);
    expect(around.items.map((item) => item.index)).toEqual(expected);
    expect(around.nextAfter).toBe(expected.at(-1));
    expect(around.items[0]!.input).toBe(JSON.stringify({ start: expected[0]! * 10, end: expected[0]! * 10 + 10, step: 1 }));

    // Across a stripe boundary (16 stripes of 62,500), one that the leased block is not near.
    const boundary = [62_500, 125_000].find((b) => first + 64 < b - 2 || first > b + 2)!;
    expect((await page(taskId, "pending", boundary - 3, 4)).items.map((item) => item.index)).toEqual([boundary - 2, boundary - 1, boundary, boundary + 1]);
    const last = await page(taskId, null, 999_997, 50);
    expect(statuses(last.items)).toEqual([
      [999_998, "pending"],
      [999_999, "pending"],
    ]);
    expect(last.nextAfter).toBeNull();
    const leasedPage = await page(taskId, "leased", -1, 10);
    expect(leasedPage.items.map((item) => item.index)).toEqual(Array.from({ length: 10 }, (_, i) => first + i));
    expect(leasedPage.nextAfter).toBe(first + 9);
    // A generous bound for a loaded 2-core machine; reading all 1M chunks would take seconds.
    expect(performance.now() - started).toBeLessThan(2_000);
  });

  it("answers null for a task that does not exist", async () => {
    expect(await listChunks(db(), "00000000-0000-7000-8000-000000000000", { status: null, after: -1, limit: 10 })).toBeNull();
  });
});
