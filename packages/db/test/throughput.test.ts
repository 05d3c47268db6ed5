// The throughput history: buckets over a task's whole life from its results rows, closed
// minutes folded into task_throughput once, reduce chunks left out.
import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createUser } from "../src/accounts/users.ts";
import { type Db, queryRows } from "../src/db.ts";
import { newId } from "../src/ids.ts";
import { taskThroughput } from "../src/reads/throughput.ts";
import { deleteTask } from "../src/tasks/task-maintenance.ts";
import { createTask } from "../src/tasks/tasks.ts";
import { openTestDb, type TestDb, taskFixture, testBackends } from "../testing/testing.ts";

/** A results row as the submit path writes it, stamped `secondsAgo` before now. */
async function insertResult(db: Db, taskId: string, idx: number, n: number, secondsAgo: number): Promise<void> {
  await db.execute(sql`INSERT INTO results (task_id, idx, n, result, volunteer_id, cpu_ms, created_at)
    VALUES (${taskId}, ${idx}, ${n}, ${JSON.stringify(Array.from({ length: n }, () => 1))}, ${newId()}, 1,
            now() - make_interval(secs => ${secondsAgo}::float8))`);
}

const foldedMinutes = async (db: Db, taskId: string) => (await queryRows<{ n: number }>(db, sql`SELECT count(*)::int AS n FROM task_throughput WHERE task_id = ${taskId}`))[0]!.n;

describe.each(testBackends())("throughput history on %s", (backend) => {
  let testDb: TestDb;
  let owner: string;
  beforeAll(async () => {
    testDb = await openTestDb(backend);
    owner = (await createUser(testDb.handle.db, { email: "history@example.com", passwordHash: "x", firstIsAdmin: false }))!.id;
  });
  afterAll(async () => testDb?.dispose());

  const newTask = (total: number) => createTask(testDb.handle.db, taskFixture(owner, { inputs: { kind: "range", start: 0, end: total, step: 1, size: 1 } }));

  it("is empty before the first result and null for no task", async () => {
    const db = testDb.handle.db;
    expect(await taskThroughput(db, await newTask(10))).toEqual({ bucketSec: 1, points: [], first: null, last: null });
    expect(await taskThroughput(db, newId())).toBeNull();
  });

  it("reads a short task in buckets of seconds, counting each row's chunks", async () => {
    const db = testDb.handle.db;
    const id = await newTask(100);
    await insertResult(db, id, 0, 64, 40); // a block of 64
    await insertResult(db, id, 64, 1, 40);
    await insertResult(db, id, 65, 10, 10);
    await insertResult(db, id, 100, 1, 5); // a reduce chunk: past total, not the creator's
    const history = (await taskThroughput(db, id))!;
    expect(history.bucketSec).toBe(1);
    expect(history.points.map((p) => p.done)).toEqual([65, 10]);
    expect(history.points[1]!.t - history.points[0]!.t).toBeCloseTo(30, -1);
    expect(history.last! - history.first!).toBeCloseTo(35, -1);
    expect(await foldedMinutes(db, id)).toBe(0);
  });

  it("folds closed minutes of a long task once and keeps reading the open ones from results", async () => {
    const db = testDb.handle.db;
    const id = await newTask(100_000);
    // Three hours of results, one row every ten minutes, and two rows in the last minute.
    for (let k = 0; k < 18; k++) await insertResult(db, id, k * 10, 10, 3 * 3600 - k * 600);
    await insertResult(db, id, 1000, 5, 20);
    await insertResult(db, id, 1005, 5, 10);
    const first = (await taskThroughput(db, id))!;
    const sum = (h: typeof first) => h.points.reduce((s, p) => s + p.done, 0);
    expect(sum(first)).toBe(190);
    // Three hours at most 360 buckets: buckets of one minute.
    expect(first.bucketSec).toBe(60);
    // The 18 closed minutes are folded; the last minute's rows are not (they may still grow).
    expect(await foldedMinutes(db, id)).toBe(18);

    await insertResult(db, id, 1010, 7, 1);
    const again = (await taskThroughput(db, id))!;
    expect(sum(again)).toBe(197);
    expect(again.points.slice(0, 18)).toEqual(first.points.slice(0, 18));
    expect(await foldedMinutes(db, id)).toBe(18);

    // Rows that were folded are read from the table, not from results: removing them from
    // results (as a reopened vote would) leaves the history as it was seen.
    await db.execute(sql`DELETE FROM results WHERE task_id = ${id} AND idx < 10`);
    expect(sum((await taskThroughput(db, id))!)).toBe(197);

    await deleteTask(db, id);
    expect(await foldedMinutes(db, id)).toBe(0);
  });

  it("widens the buckets so that a long life stays a few hundred points", async () => {
    const db = testDb.handle.db;
    const id = await newTask(1000);
    await insertResult(db, id, 0, 1, 3 * 86_400);
    await insertResult(db, id, 1, 1, 60);
    const history = (await taskThroughput(db, id))!;
    expect(history.bucketSec).toBe(15 * 60);
    expect(history.points.map((p) => p.done)).toEqual([1, 1]);
  });
});
