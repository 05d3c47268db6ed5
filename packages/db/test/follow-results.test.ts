// Following results: every decided chunk exactly once, in windows, from any cursor, and
// never a line skipped because a transaction that wrote it committed after a later one.
import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { queryRows } from "../src/db.ts";
import { createTask, createUser, createVolunteer, leaseBlocks, retryFailedChunks, submitResults } from "../src/index.ts";
import { type FollowCursor, type FollowWaits, followFinalChunks, followStart, followWindow, formatFollowCursor, parseFollowCursor } from "../src/reads/follow-results.ts";
import { finalChunksDownload, getTaskForResults, type ResultsFormat, type ResultsTask } from "../src/reads/results.ts";
import { leaseChunks, leaseRef, leaseRequest, openTestDb, submitChunks, type TestDb, taskFixture, testBackends } from "../testing/testing.ts";

/** Waits that never wait long: the tests below follow tasks that are over, or poll. */
const quickWaits = (signal: AbortSignal): FollowWaits => ({
  listen: () => ({ changed: new Promise((resolve) => setTimeout(resolve, 5)), stop: () => {} }),
  sleep: (ms) => new Promise((resolve) => (signal.aborted ? resolve() : setTimeout(resolve, Math.min(ms, 5)))),
});

/** A follow line split into the download line it repeats and its cursor. */
function splitLine(line: string, format: ResultsFormat): { line: string; cursor: string } {
  if (format === "ndjson") {
    const match = /^(.*),"cursor":"(\d+-\d+)"\}$/.exec(line);
    if (!match) throw new Error(`no cursor in ${line}`);
    return { line: `${match[1]}}`, cursor: match[2]! };
  }
  const at = line.lastIndexOf(",");
  return { line: line.slice(0, at), cursor: line.slice(at + 1) };
}

const separator = (format: ResultsFormat) => (format === "ndjson" ? "\n" : "\r\n");
const linesOf = (text: string, format: ResultsFormat) => text.split(separator(format)).filter(Boolean);
const keyOf = (cursor: string) => {
  const parsed = parseFollowCursor(cursor)!;
  return [BigInt(parsed.xid), parsed.index] as const;
};

describe.each(testBackends())("following results on %s", (backend) => {
  let testDb: TestDb;
  let ownerId: string;
  const db = () => testDb.handle.db;

  beforeAll(async () => {
    testDb = await openTestDb(backend);
    ownerId = (await createUser(db(), { email: "follow@example.com", passwordHash: "x", firstIsAdmin: true }))!.id;
  });
  afterAll(async () => testDb?.dispose());

  /** A running task, alone among running tasks (so leases go to it). */
  const onlyTask = async (overrides: Parameters<typeof taskFixture>[1]) => {
    await db().execute(sql`UPDATE tasks SET status = 'cancelled' WHERE status = 'running'`);
    return createTask(db(), taskFixture(ownerId, overrides));
  };

  async function follow(task: ResultsTask, format: ResultsFormat, options: { after?: FollowCursor; budgetBytes?: number; maxRows?: number; maxChunks?: number } = {}) {
    const stop = new AbortController();
    let text = "";
    for await (const part of followFinalChunks(db(), task, format, { ...options, waits: quickWaits(stop.signal), signal: stop.signal })) text += part;
    return linesOf(text, format);
  }

  async function download(task: ResultsTask, format: ResultsFormat) {
    let text = "";
    for await (const part of finalChunksDownload(db(), task, format)) text += part;
    return linesOf(text, format);
  }

  it("follows every block row, single row and failure exactly once, in windows of any size, and resumes from every cursor", async () => {
    const items = Array.from({ length: 60 }, (_, i) => ({ n: i, text: i % 7 === 0 ? 'quote " and, comma' : "" }));
    const taskId = await onlyTask({ maxAttempts: 1, inputs: { kind: "array", items } });
    const volunteer = (await createVolunteer(db(), { name: "v", userId: null })).id;
    // Blocks: every other round reported whole (one row each), the others chunk by chunk
    // with errors among the results (single rows, runs and failures).
    for (let round = 0; ; round++) {
      const blocks = await leaseBlocks(db(), leaseRequest(volunteer, { max: 8, threads: 1 }));
      if (blocks.length === 0) break;
      if (round % 2 === 0) {
        for (const block of blocks) {
          const inputs = JSON.parse(block.inputsJson) as unknown[];
          await submitResults(db(), {
            volunteerId: volunteer,
            shard: 0,
            runs: [
              { leaseRowId: block.leaseRowId, taskId, firstIdx: block.firstIdx, offset: 0, count: inputs.length, resultsJson: JSON.stringify(inputs.map((input) => ({ echo: input }))), cpuMs: 1 },
            ],
            errors: [],
          });
        }
        continue;
      }
      const chunks = blocks.flatMap(({ inputsJson, ...block }) => (JSON.parse(inputsJson) as unknown[]).map((input, o) => ({ ...block, index: block.firstIdx + o, input: JSON.stringify(input) })));
      await submitChunks(db(), {
        volunteerId: volunteer,
        shard: 1,
        results: chunks.filter((c) => c.index % 3 !== 0).map((c) => ({ ...leaseRef(c), result: JSON.stringify({ echo: JSON.parse(c.input) }), cpuMs: 1 })),
        errors: chunks.filter((c) => c.index % 3 === 0).map((c) => ({ ...leaseRef(c), kind: "throw", message: `no ${c.index}`, cpuMs: 1 })),
      });
    }
    const blockRows = await queryRows<{ n: number }>(db(), sql`SELECT n FROM results WHERE task_id = ${taskId} AND n > 1`);
    expect(blockRows.length).toBeGreaterThan(0);
    const failed = await queryRows<{ idx: number }>(db(), sql`SELECT idx FROM chunk_state WHERE task_id = ${taskId} AND status = 'failed'`);
    expect(failed.length).toBeGreaterThan(0);

    const task = (await getTaskForResults(db(), taskId))!;
    for (const format of ["ndjson", "csv"] as const) {
      const reference = (await download(task, format)).filter((line) => !line.startsWith("index,"));
      expect(reference).toHaveLength(60);
      const whole = await follow(task, format);
      for (const windows of [{ budgetBytes: 1 }, { budgetBytes: 300, maxRows: 2, maxChunks: 3 }, { maxRows: 1, maxChunks: 1 }]) {
        expect(await follow(task, format, windows)).toEqual(whole);
      }
      const split = whole.map((line) => splitLine(line, format));
      // The download's lines, each once, in (transaction, index) order.
      expect(split.map((s) => s.line).sort()).toEqual([...reference].sort());
      for (let k = 1; k < split.length; k++) {
        const [xa, ia] = keyOf(split[k - 1]!.cursor);
        const [xb, ib] = keyOf(split[k]!.cursor);
        expect(xa < xb || (xa === xb && ia < ib)).toBe(true);
      }
      // Resuming after any line gives exactly the lines after it.
      for (const k of [0, 1, 7, 8, 9, 30, 58, 59]) {
        const after = parseFollowCursor(split[k]!.cursor)!;
        expect(await follow(task, format, { after, budgetBytes: 500, maxRows: 3 })).toEqual(whole.slice(k + 1));
      }
    }
  });

  it("writes the computed inputs of a range task, and leaves reduce chunks out", async () => {
    const taskId = await onlyTask({
      maxAttempts: 1,
      inputs: { kind: "range", start: -50, end: 50, step: 2, size: 5 },
      hasReduce: true,
      code: "export default (x) => x; export function reduce(r) { return r.length; }",
    });
    const volunteer = (await createVolunteer(db(), { name: "v", userId: null })).id;
    for (;;) {
      const chunks = await leaseChunks(db(), leaseRequest(volunteer, { max: 64, threads: 64 }));
      if (chunks.length === 0) break;
      await submitChunks(db(), { volunteerId: volunteer, shard: 0, results: chunks.map((c) => ({ ...leaseRef(c), result: String(c.index), cpuMs: 1 })), errors: [] });
    }
    const task = (await getTaskForResults(db(), taskId))!;
    const [{ reduce }] = (await queryRows<{ reduce: number }>(db(), sql`SELECT count(*)::int AS reduce FROM results WHERE task_id = ${taskId} AND idx >= ${task.total}`)) as [{ reduce: number }];
    expect(reduce).toBeGreaterThan(0);
    const followed = (await follow(task, "ndjson")).map((line) => splitLine(line, "ndjson").line);
    expect(followed.sort()).toEqual((await download(task, "ndjson")).sort());
  });

  it("stamps a chunk once when it fails, and again only when it fails anew after a retry", async () => {
    const taskId = await onlyTask({ maxAttempts: 1, inputs: { kind: "array", items: [0, 1, 2] } });
    const volunteer = (await createVolunteer(db(), { name: "v", userId: null })).id;
    const failAll = async () => {
      const chunks = await leaseChunks(db(), leaseRequest(volunteer, { max: 8, threads: 8 }));
      await submitChunks(db(), { volunteerId: volunteer, shard: 0, results: [], errors: chunks.map((c) => ({ ...leaseRef(c), kind: "throw", message: "no", cpuMs: 1 })) });
      return chunks.length;
    };
    expect(await failAll()).toBe(3);
    const task = (await getTaskForResults(db(), taskId))!;
    const first = await follow(task, "ndjson");
    expect(first).toHaveLength(3);
    const last = parseFollowCursor(splitLine(first[2]!, "ndjson").cursor)!;
    // Touching a failed row (its error rewritten) does not make it new.
    await db().execute(sql`UPDATE chunk_state SET last_error = '{"kind":"throw","message":"again"}' WHERE task_id = ${taskId}`);
    expect((await followWindow(db(), task, last, "ndjson")).text).toBe("");
    // A retry that fails again is a new decision: followed again after the cursor.
    expect(await retryFailedChunks(db(), taskId)).toBe(3);
    expect(await failAll()).toBe(3);
    const again = await follow(task, "ndjson", { after: last });
    expect(again.map((line) => JSON.parse(line).index).sort()).toEqual([0, 1, 2]);
  });

  it("parses only cursors a line could carry", () => {
    expect(parseFollowCursor("0-0")).toEqual({ xid: "0", index: 0 });
    expect(parseFollowCursor(formatFollowCursor({ xid: "18446744073709551615", index: 2147483647 }))).toEqual({ xid: "18446744073709551615", index: 2147483647 });
    for (const bad of ["", "1", "-1-2", "1--1", "18446744073709551616-0", "1-2147483648", "1-2-3", "a-1", " 1-2"]) expect(parseFollowCursor(bad)).toBeNull();
    expect(followStart).toEqual({ xid: "0", index: -1 });
  });
});

// Concurrency needs two connections at once: a Postgres server (PGlite has one connection, and
// its transactions run one after another), so these run where DATABASE_URL names one.
describe.each(testBackends().filter((backend) => backend === "postgres"))("following results under concurrent transactions on %s", (backend) => {
  let testDb: TestDb;
  let ownerId: string;
  const db = () => testDb.handle.db;

  beforeAll(async () => {
    testDb = await openTestDb(backend);
    ownerId = (await createUser(db(), { email: "follow-concurrent@example.com", passwordHash: "x", firstIsAdmin: true }))!.id;
  });
  afterAll(async () => testDb?.dispose());

  const onlyTask = async (overrides: Parameters<typeof taskFixture>[1]) => {
    await db().execute(sql`UPDATE tasks SET status = 'cancelled' WHERE status = 'running'`);
    return createTask(db(), taskFixture(ownerId, overrides));
  };

  it("does not skip a line whose transaction began first and committed last", async () => {
    const taskId = await onlyTask({ maxAttempts: 1, inputs: { kind: "array", items: [0, 1, 2, 3] } });
    // Two volunteers and two counter shards, so that neither transaction waits on the other's locks.
    const first = (await createVolunteer(db(), { name: "a", userId: null })).id;
    const second = (await createVolunteer(db(), { name: "b", userId: null })).id;
    const chunks = await leaseChunks(db(), leaseRequest(first, { max: 1, threads: 1 }));
    const more = await leaseChunks(db(), leaseRequest(second, { max: 3, threads: 3 }));
    expect(chunks.map((c) => c.index)).toEqual([0]);
    expect(more.map((c) => c.index)).toEqual([1, 2, 3]);
    const report = (cs: typeof chunks, volunteerId: string, shard: number) => ({
      volunteerId,
      shard,
      results: cs.map((c) => ({ ...leaseRef(c), result: String(c.index), cpuMs: 1 })),
      errors: [],
    });
    const task = (await getTaskForResults(db(), taskId))!;

    // Transaction A writes chunk 0 and stays open; B writes chunks 1-3 and commits first.
    let commitA!: () => void;
    let aWrote!: (xid: string) => void;
    const aWroteRow = new Promise<string>((resolve) => (aWrote = resolve));
    const a = db().transaction(async (tx) => {
      await submitChunks(tx, report(chunks, first, 0));
      const [{ xid }] = (await queryRows<{ xid: string }>(tx, sql`SELECT pg_current_xact_id()::text AS xid`)) as [{ xid: string }];
      aWrote(xid);
      await new Promise<void>((resolve) => (commitA = resolve));
    });
    const a_xid = await aWroteRow;
    await submitChunks(db(), report(more, second, 1));
    const [{ b_xid }] = (await queryRows<{ b_xid: string }>(db(), sql`SELECT min(decided_xid)::text AS b_xid FROM results WHERE task_id = ${taskId}`)) as [{ b_xid: string }];
    expect(BigInt(a_xid)).toBeLessThan(BigInt(b_xid));

    // B's rows are committed and visible, but A's transaction is older and still running: a
    // reader that took them now would move its cursor past A's row before it exists.
    const blocked = await followWindow(db(), task, followStart, "ndjson");
    expect(blocked).toMatchObject({ text: "", more: false, unsettled: true, cursor: followStart });
    expect(blocked.horizon).toBeLessThanOrEqual(BigInt(a_xid));

    commitA();
    await a;
    const settled = await followWindow(db(), task, followStart, "ndjson");
    expect(linesOf(settled.text, "ndjson").map((line) => JSON.parse(line).index)).toEqual([0, 1, 2, 3]);
    expect(settled).toMatchObject({ more: false, unsettled: false });
  });

  it("a follow of a finished task waits for its last lines to settle, then ends", async () => {
    const taskId = await onlyTask({ maxAttempts: 1, inputs: { kind: "array", items: [0, 1] } });
    const volunteer = (await createVolunteer(db(), { name: "v", userId: null })).id;
    const chunks = await leaseChunks(db(), leaseRequest(volunteer, { max: 2, threads: 2 }));
    const task = (await getTaskForResults(db(), taskId))!;
    // Another task's transaction, begun first, holds the horizon back while this task ends.
    let release!: () => void;
    let began!: () => void;
    const beganTx = new Promise<void>((resolve) => (began = resolve));
    const other = db().transaction(async (tx) => {
      await tx.execute(sql`SELECT pg_current_xact_id()`);
      began();
      await new Promise<void>((resolve) => (release = resolve));
    });
    await beganTx;
    await submitChunks(db(), { volunteerId: volunteer, shard: 0, results: chunks.map((c) => ({ ...leaseRef(c), result: String(c.index), cpuMs: 1 })), errors: [] });
    const [{ status }] = (await queryRows<{ status: string }>(db(), sql`SELECT status FROM tasks WHERE id = ${taskId}`)) as [{ status: string }];
    expect(status).toBe("done");

    const stop = new AbortController();
    let sleeps = 0;
    const waits: FollowWaits = {
      listen: () => ({ changed: new Promise(() => {}), stop: () => {} }),
      sleep: async () => {
        // The follow polls while the lines are unsettled; let the old transaction end on its third poll.
        sleeps += 1;
        if (sleeps === 3) {
          release();
          await other;
        }
      },
    };
    let text = "";
    for await (const part of followFinalChunks(db(), task, "ndjson", { waits, signal: stop.signal })) text += part;
    expect(sleeps).toBeGreaterThanOrEqual(3);
    expect(
      linesOf(text, "ndjson")
        .map((line) => JSON.parse(line).index)
        .sort(),
    ).toEqual([0, 1]);
  });
});
