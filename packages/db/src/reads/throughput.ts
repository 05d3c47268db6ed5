// A task's throughput over its whole life (docs/architecture.md, "Throughput history"), from
// the results rows it already has: each row is stamped with `created_at` and counts `n`
// chunks, so no statement on the submit path writes anything for the chart. Closed minutes are
// folded into `task_throughput` by the reader, so a long task's history costs a read of its
// minutes plus the rows of the last few minutes, not a scan of every result.
import { sql } from "drizzle-orm";
import { type Db, queryRows } from "../db.ts";

export interface ThroughputHistory {
  /** The width of each bucket, in seconds. */
  bucketSec: number;
  /** Each bucket's start (seconds since the epoch) and the chunks done in it; empty buckets are left out. */
  points: { t: number; done: number }[];
  /** The task's first and latest result (seconds since the epoch); null before any. */
  first: number | null;
  last: number | null;
}

/** Tasks whose results span at most this long are read in buckets of seconds straight from their rows. */
const fineSpanSec = 300;
/** Buckets of seconds, the first that gives at most `maxFinePoints` over the span. */
const fineWidths = [1, 2, 5];
const maxFinePoints = 150;
/** Buckets of minutes for longer tasks, the first that gives at most `maxPoints`. */
const coarseWidthsMin = [1, 2, 5, 10, 15, 30, 60, 120, 360, 720, 1440];
const maxPoints = 360;
/**
 * A minute is folded once it ended this long ago. A results row is stamped with its
 * transaction's start time, so a row may commit a little after its minute ended; submit
 * transactions last well under this.
 */
const settleSec = 120;
const settle = sql.raw(`interval '${settleSec} seconds'`);

/**
 * Chunks done per bucket over the task's life, reduce chunks left out; null when the task
 * does not exist. Writes only `task_throughput` (the closed minutes it folds).
 */
export async function taskThroughput(db: Db, taskId: string): Promise<ThroughputHistory | null> {
  const [task] = await queryRows<{ total: number; first: number | null; last: number | null }>(
    db,
    // First and last by the (task_id, created_at) index: two probes, whatever the task's size.
    sql`SELECT t.total,
          extract(epoch FROM (SELECT min(r.created_at) FROM results r WHERE r.task_id = t.id))::float8 AS first,
          extract(epoch FROM (SELECT max(r.created_at) FROM results r WHERE r.task_id = t.id))::float8 AS last
        FROM tasks t WHERE t.id = ${taskId}`,
  );
  if (!task) return null;
  if (task.first === null || task.last === null) return { bucketSec: 1, points: [], first: null, last: null };
  const first = Number(task.first);
  const last = Number(task.last);
  const span = last - first;
  const total = Number(task.total);
  if (span <= fineSpanSec) {
    const width = fineWidths.find((w) => span / w <= maxFinePoints) ?? fineWidths.at(-1)!;
    const rows = await queryRows<{ t: number | string; done: number | string }>(
      db,
      sql`SELECT (floor(extract(epoch FROM created_at) / ${width}) * ${width})::float8 AS t, sum(n)::int AS done
          FROM results WHERE task_id = ${taskId} AND idx < ${total} GROUP BY 1 ORDER BY 1`,
    );
    return { bucketSec: width, points: rows.map((r) => ({ t: Number(r.t), done: Number(r.done) })), first, last };
  }
  const minutes = await foldedMinutes(db, taskId, total);
  const widthMin = coarseWidthsMin.find((w) => span / (w * 60) <= maxPoints) ?? coarseWidthsMin.at(-1)!;
  const width = widthMin * 60;
  const buckets = new Map<number, number>();
  for (const { t, done } of minutes) {
    const start = Math.floor(t / width) * width;
    buckets.set(start, (buckets.get(start) ?? 0) + done);
  }
  const points = [...buckets].map(([t, done]) => ({ t, done })).sort((a, b) => a.t - b.t);
  return { bucketSec: width, points, first, last };
}

/**
 * The task's chunks done per minute: the minutes folded before, and the rows after them
 * grouped now, in one statement that also folds the newly closed minutes. Two readers
 * folding the same minute write the same figure; the second is ignored.
 */
async function foldedMinutes(db: Db, taskId: string, total: number): Promise<{ t: number; done: number }[]> {
  const rows = await queryRows<{ t: number | string; done: number | string }>(
    db,
    sql`WITH folded AS (
          SELECT coalesce(max(minute) + interval '1 minute', '-infinity'::timestamptz) AS since
          FROM task_throughput WHERE task_id = ${taskId}
        ), fresh AS (
          SELECT date_trunc('minute', r.created_at) AS minute, sum(r.n)::int AS done
          FROM results r, folded f
          WHERE r.task_id = ${taskId} AND r.created_at >= f.since AND r.idx < ${total}
          GROUP BY 1
        ), kept AS (
          INSERT INTO task_throughput (task_id, minute, done)
          SELECT ${taskId}, minute, done FROM fresh
          WHERE minute < date_trunc('minute', now() - ${settle})
          ON CONFLICT DO NOTHING
        )
        SELECT extract(epoch FROM minute)::float8 AS t, done FROM fresh
        UNION ALL
        SELECT extract(epoch FROM tt.minute)::float8, tt.done FROM task_throughput tt, folded f
        WHERE tt.task_id = ${taskId} AND tt.minute < f.since
        ORDER BY 1`,
  );
  return rows.map((r) => ({ t: Number(r.t), done: Number(r.done) }));
}
