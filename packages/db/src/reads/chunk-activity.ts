// What creators read of chunks while they run (docs/architecture.md, "Progress, console and
// checkpoints"): the progress of chunks out on leases now, from `chunk_live`, and the console
// output chunks left, from `chunk_console`, in the follow's cursor order. The statements that
// write both are dispatch/chunk-live.ts.
import { sql } from "drizzle-orm";
import { type Db, queryRows } from "../db.ts";
import type { FollowCursor } from "./follow-results.ts";

/** A chunk out on a lease now, with the latest progress its volunteer sent. */
export interface RunningChunk {
  index: number;
  fraction: number;
  message: string | null;
  at: Date;
}

/**
 * The chunks of a task whose volunteers sent progress and still hold them, in index order, at
 * most `limit`. Reads only the task's `chunk_live` rows (chunks that reported progress or a
 * checkpoint and are not final), each checked against its lease by key.
 */
export async function runningChunks(db: Db, taskId: string, limit = 100): Promise<RunningChunk[]> {
  const rows = await queryRows<{ idx: number; fraction: number; message: string | null; at: Date | string }>(
    db,
    sql`SELECT cl.idx, cl.fraction, cl.message, cl.progress_at AS at
        FROM chunk_live cl
        JOIN leases l ON l.id = cl.lease_id
        WHERE cl.task_id = ${taskId} AND cl.fraction IS NOT NULL
          AND NOT l.reclaimed AND l.deadline > now() AND get_bit(l.reported, cl.idx - l.first_idx) = 0
          AND EXISTS (SELECT 1 FROM tasks t WHERE t.id = ${taskId} AND t.status IN ('running', 'paused'))
        ORDER BY cl.idx LIMIT ${limit}`,
  );
  return rows.map((row) => ({ index: row.idx, fraction: Number(row.fraction), message: row.message, at: new Date(row.at) }));
}

/** One chunk's console output as creators read it. */
export interface ChunkConsoleRow {
  index: number;
  outcome: "done" | "error";
  lines: { level: string; text: string }[];
  truncated: boolean;
  at: Date;
}

/**
 * The console output of a task's chunks stored after `cursor`, in the order they were stored,
 * each once: the follow's cursor scheme (follow-results.ts), rows below the snapshot's xmin
 * only. `more` says a full window was read (read again at once).
 */
export async function consoleWindow(
  db: Db,
  taskId: string,
  cursor: FollowCursor,
  maxRows = 200,
): Promise<{ items: (ChunkConsoleRow & { cursor: FollowCursor })[]; cursor: FollowCursor; more: boolean; horizon: bigint; snapshotEnd: bigint }> {
  const x = sql`${cursor.xid}::xid8`;
  const i = sql`${cursor.index}::bigint`;
  const rows = await queryRows<{
    xid: string | null;
    idx: number | null;
    outcome: "done" | "error";
    lines: string;
    truncated: boolean;
    at: Date | string;
    horizon: string;
    snapshot_end: string;
  }>(
    db,
    sql`WITH h AS MATERIALIZED (SELECT pg_snapshot_xmin(s.snap) AS horizon, pg_snapshot_xmax(s.snap) AS snapshot_end FROM (SELECT pg_current_snapshot() AS snap) s)
        SELECT u.*, h.horizon::text AS horizon, h.snapshot_end::text AS snapshot_end FROM h LEFT JOIN (
          (SELECT cc.decided_xid::text AS xid, cc.idx, cc.outcome, cc.lines, cc.truncated, cc.created_at AS at, cc.decided_xid AS x
           FROM chunk_console cc
           WHERE cc.task_id = ${taskId} AND cc.decided_xid = ${x} AND cc.idx > ${i} AND ${x} < (SELECT horizon FROM h)
           ORDER BY cc.idx LIMIT ${maxRows})
          UNION ALL
          (SELECT cc.decided_xid::text, cc.idx, cc.outcome, cc.lines, cc.truncated, cc.created_at, cc.decided_xid
           FROM chunk_console cc
           WHERE cc.task_id = ${taskId} AND cc.decided_xid > ${x} AND cc.decided_xid < (SELECT horizon FROM h)
           ORDER BY cc.decided_xid, cc.idx LIMIT ${maxRows})
          ORDER BY x, idx LIMIT ${maxRows}
        ) u ON true ORDER BY u.x, u.idx`,
  );
  // One row with no chunk when there are none: it still carries the snapshot.
  const found = rows.filter((row) => row.xid !== null);
  const items = found.map((row) => ({
    index: row.idx!,
    outcome: row.outcome,
    lines: JSON.parse(row.lines) as { level: string; text: string }[],
    truncated: row.truncated,
    at: new Date(row.at),
    cursor: { xid: row.xid!, index: row.idx! },
  }));
  const snapshot = rows[0]!;
  return {
    items,
    cursor: items.at(-1)?.cursor ?? cursor,
    more: found.length >= maxRows,
    horizon: BigInt(snapshot.horizon),
    snapshotEnd: BigInt(snapshot.snapshot_end),
  };
}
