import { sql } from "drizzle-orm";
import { type Db, queryRows } from "../db.ts";
import { resultCountIn, resultsIn } from "../sql/result-rows.ts";

// Reduce chunks take at most 256 inputs each, and form a tree over the results
// (docs/architecture.md, "Replication, trust and reduce").
const reduceFanIn = 256;

/**
 * One level of a task's reduce tree. Its chunks are indexes after the task's own chunks
 * (`firstIdx` onwards), so they are leased, retried, replicated and stored exactly as
 * chunks are; chunk i of the level reduces the results of children
 * [childFirstIdx + i·256, …) of the level below.
 */
export interface ReduceLevel {
  level: number;
  firstIdx: number;
  count: number;
  childFirstIdx: number;
  childCount: number;
}

/** The reduce tree over `total` chunks, bottom level first; the last level has one chunk. */
export function reduceLevels(total: number): ReduceLevel[] {
  const levels: ReduceLevel[] = [];
  let childFirstIdx = 0;
  let childCount = total;
  let firstIdx = total;
  for (let level = 1; ; level++) {
    const count = Math.max(1, Math.ceil(childCount / reduceFanIn));
    levels.push({ level, firstIdx, count, childFirstIdx, childCount });
    if (count === 1) return levels;
    childFirstIdx = firstIdx;
    childCount = count;
    firstIdx += count;
  }
}

/** The children of reduce chunk `index`: the index range whose results it reduces. */
function reduceChildren(total: number, index: number): { from: number; to: number } {
  const level = reduceLevels(total).find((l) => index >= l.firstIdx && index < l.firstIdx + l.count);
  if (!level) throw new RangeError(`${index} is not a reduce chunk of a task of ${total} chunks`);
  const from = level.childFirstIdx + (index - level.firstIdx) * reduceFanIn;
  return { from, to: Math.min(from + reduceFanIn, level.childFirstIdx + level.childCount) };
}

/** A reduce chunk's input: its children's results, in index order, as one JSON array text. */
export async function reduceInput(db: Db, taskId: string, total: number, index: number): Promise<string> {
  const { from, to } = reduceChildren(total, index);
  const [row] = await queryRows<{ input: string }>(
    db,
    // Joined as text, never parsed: a result Postgres could not parse must not wedge the task.
    sql`SELECT coalesce('[' || string_agg(x.result, ',' ORDER BY x.idx) || ']', '[]') AS input
        FROM ${resultsIn(sql`${taskId}::uuid`, sql`${from}::int`, sql`${to}::int`)} x`,
  );
  return row?.input ?? "[]";
}

export type ReduceProgress = { state: "pending" } | { state: "done"; value: unknown } | { state: "failed" };

/**
 * Moves a task whose chunks all succeeded up its reduce tree: the first level not yet
 * complete gets its stripe (inserted `ON CONFLICT DO NOTHING`, so whoever sees a level
 * complete may do it), and the top chunk's result becomes the aggregate.
 */
export async function advanceReduce(db: Db, taskId: string, total: number): Promise<ReduceProgress> {
  for (const level of reduceLevels(total)) {
    const end = level.firstIdx + level.count;
    const [row] = await queryRows<{ done: number; failed: number }>(
      db,
      sql`SELECT ${resultCountIn(sql`${taskId}::uuid`, sql`${level.firstIdx}::int`, sql`${end}::int`)} AS done,
                 (SELECT count(*)::int FROM chunk_state WHERE task_id = ${taskId} AND status = 'failed'
                    AND idx >= ${level.firstIdx} AND idx < ${end}) AS failed`,
    );
    if ((row?.failed ?? 0) > 0) return { state: "failed" };
    if ((row?.done ?? 0) < level.count) {
      // Stripe numbers of reduce levels are negative: they never meet the chunks' own.
      await db.execute(sql`
        INSERT INTO stripes (task_id, stripe, next_idx, end_idx)
        VALUES (${taskId}, ${-level.level}, ${level.firstIdx}, ${end})
        ON CONFLICT (task_id, stripe) DO NOTHING`);
      return { state: "pending" };
    }
  }
  const top = reduceLevels(total).at(-1)!;
  const [row] = await queryRows<{ result: string }>(db, sql`SELECT x.result FROM ${resultsIn(sql`${taskId}::uuid`, sql`${top.firstIdx}::int`, sql`${top.firstIdx + 1}::int`)} x`);
  return { state: "done", value: JSON.parse(row!.result) as unknown };
}

/**
 * Throws away the reduce trees of tasks with a `reduce` export whose chunk results changed
 * after reduce chunks may have read them (a ban reopened a quorum): their reduce results,
 * votes, retry states and stripes go, live reduce leases are taken back, and the aggregate
 * is cleared. The tree is issued again, level by level, once every chunk is final again.
 * A reduce lease dated before `reduce_reset_at` is void: its result is refused and its
 * expiry reissues nothing. The time is taken after the deletes, which wait for any lease
 * statement holding a reduce stripe: every lease that could read the old results is older.
 */
export async function resetReduceTrees(tx: Db, taskIds: readonly string[]): Promise<void> {
  for (const taskId of taskIds) {
    const [task] = await queryRows<{ total: number }>(tx, sql`SELECT total FROM tasks WHERE id = ${taskId} AND has_reduce FOR UPDATE`);
    if (!task) continue;
    await tx.execute(sql`
      WITH dropped_results AS (
        DELETE FROM results WHERE task_id = ${taskId} AND idx >= ${task.total}
      ), dropped_votes AS (
        DELETE FROM votes WHERE task_id = ${taskId} AND idx >= ${task.total}
      ), dropped_states AS (
        DELETE FROM chunk_state WHERE task_id = ${taskId} AND idx >= ${task.total}
      ), dropped_stripes AS (
        -- Reduce levels' stripes are the negative ones.
        DELETE FROM stripes WHERE task_id = ${taskId} AND stripe < 0
      )
      UPDATE leases SET reclaimed = true WHERE task_id = ${taskId} AND first_idx >= ${task.total} AND NOT reclaimed`);
    await tx.execute(sql`UPDATE tasks SET reduce_reset_at = clock_timestamp(), aggregate = NULL WHERE id = ${taskId}`);
  }
}
