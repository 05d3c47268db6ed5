// Errors volunteers report, one chunk each: an error counts an attempt, only from the chunk's
// current holder, and fails the chunk at the task's max_attempts. Judged as results are
// (submit-chunks.ts, `judgedItems`).
import { sql } from "drizzle-orm";
import { type Db, preparedRows } from "../db.ts";
import { addToTaskCounters } from "../sql/counters.ts";
import { resultCovers } from "../sql/result-rows.ts";
import { type ChunkError, type ItemRow, judgedItems } from "./submit-chunks.ts";

export type ErrorRow = ItemRow & { status: string | null };

/**
 * An error counts one attempt, only from the chunk's current holder: the block lease that
 * still holds it, or the lease named in its chunk_state row. At `max_attempts` the chunk fails.
 */
export function recordChunkErrors(db: Db, shard: number, errors: ChunkError[]): Promise<ErrorRow[]> {
  const items = errors.map((e) => ({ lease_id: e.leaseRowId, task_id: e.taskId, idx: e.index, kind: e.kind, message: e.message }));
  return preparedRows<ErrorRow>(
    db,
    sql`WITH items AS (
          SELECT * FROM json_to_recordset(${JSON.stringify(items)}::json)
            AS x(lease_id bigint, task_id uuid, idx int, kind text, message text)
        ), ${judgedItems}, counted_errors AS (
          SELECT j.*, j.attempts + 1 AS next_attempts FROM judged j
          WHERE j.reason IS NULL AND j.first_idx IS NOT NULL AND NOT j.already_reported
            AND NOT ${resultCovers(sql`j.task_id`, sql`j.idx`)}
            AND ((NOT j.has_state AND NOT j.reclaimed) OR (j.state_status = 'leased' AND j.state_lease = j.lease_id)
                 OR (j.state_status = 'voting' AND j.copy > 0 AND NOT j.reclaimed))
        ), upserted AS (
          -- A failed copy of a chunk under vote frees its slot; the chunk stays 'voting'.
          INSERT INTO chunk_state (task_id, idx, status, lease_id, attempts, last_error, copies_out)
          SELECT task_id, idx,
                 CASE WHEN next_attempts >= max_attempts THEN 'failed' WHEN state_status = 'voting' THEN 'voting' ELSE 'pending' END,
                 lease_id, next_attempts, jsonb_build_object('kind', kind, 'message', message),
                 CASE WHEN state_status = 'voting' THEN greatest(copies_out - 1, 0) ELSE copies_out END
          FROM counted_errors ORDER BY task_id, idx
          ON CONFLICT (task_id, idx) DO UPDATE
            SET status = excluded.status, attempts = excluded.attempts,
                last_error = excluded.last_error, lease_id = excluded.lease_id, copies_out = excluded.copies_out
          RETURNING task_id, idx, status
        ), failed_counts AS (
          ${addToTaskCounters(["failed"], sql`SELECT task_id, ${shard}, count(*) FROM upserted WHERE status = 'failed' GROUP BY task_id ORDER BY task_id`)}
        ), task_errors AS (
          UPDATE tasks t SET last_error = jsonb_build_object('index', e.idx, 'kind', e.kind, 'message', e.message)
          FROM (SELECT DISTINCT ON (task_id) task_id, idx, kind, message FROM counted_errors ORDER BY task_id, idx DESC) e
          WHERE t.id = e.task_id
        ), live_cleared AS (
          -- A chunk failed for good keeps no checkpoint; one that will be retried keeps it for its next attempt.
          DELETE FROM chunk_live cl USING upserted u WHERE u.status = 'failed' AND cl.task_id = u.task_id AND cl.idx = u.idx
        )
        SELECT j.lease_id, j.task_id, j.idx, j.reason, u.status
        FROM judged j LEFT JOIN upserted u ON u.task_id = j.task_id AND u.idx = j.idx`,
  );
}
