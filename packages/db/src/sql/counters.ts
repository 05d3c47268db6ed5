// The counters the statements that settle chunks move (docs/architecture.md, The database):
// a task's sharded `task_counters` and each volunteer's `volunteer_counters`, always added
// to, never recomputed, and the CPU time a result is counted and credited for.
import { type SQL, sql } from "drizzle-orm";

/**
 * The `task_counters` shard (0..15) a volunteer's statements add to: stable per volunteer, so
 * that concurrent volunteers update different rows (a UUID's last hex digits spread evenly).
 */
export const counterShardOf = (volunteerId: string) => parseInt(volunteerId.slice(-4), 16) % 16;

/** The columns of `task_counters` a statement adds to. */
export type TaskCounter = "done" | "failed" | "cpu_ms" | "credit" | "copies" | "replicated" | "disagreements" | "banned";

/**
 * An upsert adding `rows` to a task's counters: `rows` is a SELECT of (task_id, shard, then
 * `columns` in order), one row per task and shard, in task order (so that concurrent
 * statements lock counter rows in one order).
 */
export function addToTaskCounters(columns: readonly TaskCounter[], rows: SQL): SQL {
  const names = sql.raw(columns.join(", "));
  const sums = sql.raw(columns.map((c) => `${c} = task_counters.${c} + excluded.${c}`).join(", "));
  return sql`INSERT INTO task_counters (task_id, shard, ${names})
          ${rows}
          ON CONFLICT (task_id, shard) DO UPDATE SET ${sums}`;
}

/** An upsert adding `rows`, a SELECT of (volunteer_id, done, cpu_ms, credit, updated_at), to volunteers' counters. */
export function addToVolunteerCounters(rows: SQL): SQL {
  return sql`INSERT INTO volunteer_counters AS vc (volunteer_id, done, cpu_ms, credit, updated_at)
          ${rows}
          ON CONFLICT (volunteer_id) DO UPDATE
            SET done = vc.done + excluded.done, cpu_ms = vc.cpu_ms + excluded.cpu_ms,
                credit = vc.credit + excluded.credit, updated_at = excluded.updated_at`;
}

/**
 * The CPU time a result is counted and credited for: what the volunteer `claimed`, but no more
 * than the server saw pass since the lease was made (`leasedAt`), nor the task's `timeoutMs`.
 * For a run of `chunks` results reported together, the bounds are per chunk.
 */
export function boundedCpu(claimed: SQL, leasedAt: SQL, timeoutMs: SQL, chunks?: SQL): SQL {
  const seen = sql`greatest(0, (extract(epoch FROM now() - ${leasedAt}) * 1000)::bigint)`;
  return chunks ? sql`least(${claimed}, ${chunks} * ${seen}, ${chunks}::bigint * ${timeoutMs})` : sql`least(${claimed}, ${seen}, ${timeoutMs})`;
}

/**
 * The counter upserts of results that counted: a CTE pair over `credited(task_id, cpu_ms,
 * own_chunk, credit, n)` moving the task's sharded counters and the volunteer's. `done`
 * counts the task's own chunks; its reduce chunks (indexes past total) do not. `copies`, when
 * given, is what each row adds to the task's copies received (a replicated task's block
 * accepted on one copy, docs/architecture.md "Replication, trust and reduce"); `taskCredit`
 * what each adds to the task's credit (a checkpoint's author's share too).
 */
export function countCredited(volunteerId: string, shard: number, chunks: SQL = sql`1`, copies: SQL = sql`0`, taskCredit: SQL = sql`credit`): SQL {
  return sql`counted AS (
          ${addToTaskCounters(
            ["done", "cpu_ms", "credit", "copies"],
            sql`SELECT task_id, ${shard}, coalesce(sum(${chunks}) FILTER (WHERE own_chunk), 0), sum(cpu_ms), sum(${taskCredit}), sum(${copies})
                FROM credited GROUP BY task_id ORDER BY task_id`,
          )}
        ), volunteer_credit AS (
          ${addToVolunteerCounters(sql`SELECT ${volunteerId}, sum(${chunks}), sum(cpu_ms), sum(credit), now() FROM credited HAVING count(*) > 0`)}
        )`;
}
