// What volunteers say of chunks while and after computing them (docs/architecture.md,
// "Progress, console and checkpoints"): progress and checkpoints come with heartbeats into
// `chunk_live`, console output with results and errors into `chunk_console`. Neither is on
// the hot path: a heartbeat or report that carries none runs none of these statements, and the
// submit statements clear `chunk_live` by index range (submit-blocks.ts, submit-chunks.ts).
import { sql } from "drizzle-orm";
import { type Db, queryRows, retryOnDeadlockOrSerialization } from "../db.ts";

/** A chunk's latest progress or checkpoint, as a heartbeat carried it, by block offset. */
export interface LiveChunkReport {
  leaseRowId: number;
  offset: number;
  /** 0..1, with an optional message; absent when the chunk only checkpointed. */
  fraction?: number;
  message?: string;
  /** The checkpoint's state as JSON text (the API checked its size and depth). */
  checkpointJson?: string;
}

/**
 * Keeps the latest progress and checkpoint of chunks of the volunteer's leases. Only a chunk
 * its lease still holds counts (a lease not reclaimed, of a running or paused task, that has
 * not reported the chunk): the lease rows are locked FOR SHARE, so a submit that reports the
 * chunk (and deletes its row) runs wholly before or after this, never between the check and
 * the write. Checkpoints are kept only for tasks with one copy per chunk (copies of a
 * replicated chunk must be computed independently) and for the task's own chunks, not reduce
 * chunks. Returns the tasks whose rows changed.
 */
export async function recordChunkLive(db: Db, input: { volunteerId: string; reports: readonly LiveChunkReport[] }): Promise<string[]> {
  if (input.reports.length === 0) return [];
  // Written by hand: a checkpoint goes in as the JSON value it is (the API wrote it with
  // JSON.stringify and checked its size and depth), not as a string to escape again.
  const items = `[${input.reports
    .map(
      (r) =>
        `{"lease_id":${r.leaseRowId},"off":${r.offset},"fraction":${r.fraction ?? "null"},"message":${JSON.stringify(r.message ?? null)},` +
        `"has_checkpoint":${r.checkpointJson !== undefined},"checkpoint":${r.checkpointJson ?? "null"}}`,
    )
    .join(",")}]`;
  const rows = await retryOnDeadlockOrSerialization(() =>
    queryRows<{ task_id: string }>(
      db,
      sql`WITH items AS (
            SELECT * FROM json_to_recordset(${items}::json)
              AS x(lease_id bigint, off int, fraction real, message text, checkpoint json, has_checkpoint boolean)
          ), locked AS (
            SELECT l.id, l.task_id, l.first_idx, l.n, l.reported FROM leases l
            WHERE l.id = ANY (ARRAY(SELECT DISTINCT lease_id FROM items)) AND l.volunteer_id = ${input.volunteerId} AND NOT l.reclaimed
            ORDER BY l.id FOR SHARE
          ), held AS (
            SELECT DISTINCT ON (l.task_id, l.first_idx + i.off) i.lease_id, l.task_id, l.first_idx + i.off AS idx, i.fraction, i.message,
              CASE WHEN i.has_checkpoint AND t.replication = 1 AND l.first_idx + i.off < t.total THEN coalesce(i.checkpoint::text, 'null') END AS checkpoint
            FROM items i
            JOIN locked l ON l.id = i.lease_id
            JOIN tasks t ON t.id = l.task_id AND t.status IN ('running', 'paused')
            WHERE i.off >= 0 AND i.off < l.n AND get_bit(l.reported, i.off) = 0
            ORDER BY l.task_id, l.first_idx + i.off
          )
          INSERT INTO chunk_live AS cl (task_id, idx, lease_id, fraction, message, progress_at, checkpoint, checkpoint_at, checkpoint_lease_id)
          SELECT task_id, idx,
            CASE WHEN fraction IS NOT NULL THEN lease_id END, fraction, CASE WHEN fraction IS NOT NULL THEN message END,
            CASE WHEN fraction IS NOT NULL THEN now() END,
            checkpoint, CASE WHEN checkpoint IS NOT NULL THEN now() END, CASE WHEN checkpoint IS NOT NULL THEN lease_id END
          FROM held WHERE fraction IS NOT NULL OR checkpoint IS NOT NULL
          ORDER BY task_id, idx
          ON CONFLICT (task_id, idx) DO UPDATE SET
            lease_id = CASE WHEN excluded.progress_at IS NULL THEN cl.lease_id ELSE excluded.lease_id END,
            fraction = CASE WHEN excluded.progress_at IS NULL THEN cl.fraction ELSE excluded.fraction END,
            message = CASE WHEN excluded.progress_at IS NULL THEN cl.message ELSE excluded.message END,
            progress_at = coalesce(excluded.progress_at, cl.progress_at),
            checkpoint = coalesce(excluded.checkpoint, cl.checkpoint),
            checkpoint_at = coalesce(excluded.checkpoint_at, cl.checkpoint_at),
            -- whose state a resumed chunk starts from (submit-blocks.ts names its author)
            checkpoint_lease_id = CASE WHEN excluded.checkpoint IS NULL THEN cl.checkpoint_lease_id ELSE excluded.checkpoint_lease_id END
          RETURNING task_id`,
    ),
  );
  return [...new Set(rows.map((row) => row.task_id))];
}

/** A chunk's console output as a report carried it: the chunk's outcome in the same report, and its lines as JSON text. */
export interface ConsoleReport {
  leaseRowId: number;
  taskId: string;
  index: number;
  outcome: "done" | "error";
  /** JSON text of [{level, text}] (the API checked the bounds). */
  linesJson: string;
  truncated: boolean;
}

/**
 * Keeps the console output of chunks whose outcome counted from this volunteer: a result that
 * is the chunk's (its results row, or its vote), or an error its lease was the holder of
 * (chunk_state names the lease). Run after the submit statements, and only for reports that
 * carry console output. A chunk keeps the lines of its latest such attempt. Returns the
 * tasks whose rows changed.
 */
export async function recordChunkConsole(db: Db, input: { volunteerId: string; reports: readonly ConsoleReport[] }): Promise<string[]> {
  if (input.reports.length === 0) return [];
  const items = `[${input.reports
    .map((r) => `{"lease_id":${r.leaseRowId},"task_id":${JSON.stringify(r.taskId)},"idx":${r.index},"outcome":${JSON.stringify(r.outcome)},"truncated":${r.truncated},"lines":${r.linesJson}}`)
    .join(",")}]`;
  const me = input.volunteerId;
  const rows = await retryOnDeadlockOrSerialization(() =>
    queryRows<{ task_id: string }>(
      db,
      sql`WITH items AS (
            SELECT DISTINCT ON (task_id, idx) * FROM json_to_recordset(${items}::json)
              AS x(lease_id bigint, task_id uuid, idx int, outcome text, truncated boolean, lines json)
            ORDER BY task_id, idx
          )
          INSERT INTO chunk_console AS cc (task_id, idx, outcome, volunteer_id, lines, truncated)
          SELECT i.task_id, i.idx, i.outcome, ${me}, i.lines::text, i.truncated FROM items i
          WHERE CASE WHEN i.outcome = 'done' THEN
                  coalesce((SELECT r.idx + r.n > i.idx AND r.volunteer_id = ${me} FROM results r
                            WHERE r.task_id = i.task_id AND r.idx <= i.idx ORDER BY r.idx DESC LIMIT 1), false)
                  OR EXISTS (SELECT 1 FROM votes v WHERE v.task_id = i.task_id AND v.idx = i.idx AND v.volunteer_id = ${me})
                ELSE EXISTS (SELECT 1 FROM chunk_state cs WHERE cs.task_id = i.task_id AND cs.idx = i.idx AND cs.lease_id = i.lease_id
                             AND cs.status IN ('pending', 'failed', 'voting'))
                END
          ORDER BY i.task_id, i.idx
          ON CONFLICT (task_id, idx) DO UPDATE SET
            outcome = excluded.outcome, volunteer_id = excluded.volunteer_id, lines = excluded.lines,
            truncated = excluded.truncated, created_at = now(), decided_xid = pg_current_xact_id()
          RETURNING task_id`,
    ),
  );
  return [...new Set(rows.map((row) => row.task_id))];
}
