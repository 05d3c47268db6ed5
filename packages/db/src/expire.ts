import { sql } from "drizzle-orm";
import { queryRows, withRetry, type Db } from "./db.ts";
import { completeFinishedTasks } from "./tasks.ts";

const leasesPerSweep = 256;

/**
 * Takes back leases whose deadline passed: each unreported chunk without a result goes back
 * to pending with one more expiry (a vanished volunteer is not the chunk's fault, so expiries
 * have their own cap, `max_expiries`), or fails once that cap is reached. Called before each
 * lease request: no daemon is needed for correctness. Returns how many leases it reclaimed.
 */
export async function reclaimExpiredLeases(db: Db, shard: number): Promise<number> {
  const rows = await withRetry(() =>
    queryRows<{ reclaimed: number; failed_tasks: string[] | null }>(
      db,
      sql`WITH expired AS (
            SELECT id, task_id, first_idx, n, reported, copy, created_at FROM leases
            WHERE NOT reclaimed AND deadline < now()
            ORDER BY deadline LIMIT ${leasesPerSweep} FOR UPDATE SKIP LOCKED
          ), marked AS (
            UPDATE leases l SET reclaimed = true FROM expired e WHERE l.id = e.id
          ), orphans AS (
            SELECT e.task_id, e.first_idx + o AS idx, e.id AS lease_id, e.copy, e.created_at AS leased_at
            FROM expired e CROSS JOIN LATERAL generate_series(0, e.n - 1) AS o
            WHERE (e.reported >> o) & 1 = 0
          ), candidates AS (
            -- One row per chunk: two expired copies of one chunk under vote free two slots.
            SELECT o.task_id, o.idx, max(o.lease_id) AS lease_id, count(*)::int AS orphaned,
                   coalesce(max(cs.expiries), 0) + 1 AS expiries, coalesce(max(cs.attempts), 0) AS attempts,
                   max(t.max_expiries) AS max_expiries, max(cs.status) AS state_status,
                   coalesce(max(cs.copies_out), 0) AS copies_out, coalesce(max(cs.needed), 0) AS needed
            FROM orphans o
            JOIN tasks t ON t.id = o.task_id AND t.status IN ('running', 'paused')
            LEFT JOIN chunk_state cs ON cs.task_id = o.task_id AND cs.idx = o.idx
            WHERE NOT EXISTS (SELECT 1 FROM results r WHERE r.task_id = o.task_id AND r.idx = o.idx)
              -- a reduce lease from before its tree was thrown away reissues nothing
              AND NOT (o.idx >= t.total AND o.leased_at < t.reduce_reset_at)
              AND (cs.task_id IS NULL OR (cs.status = 'leased' AND cs.lease_id = o.lease_id)
                   -- an extra copy of a chunk under vote: its slot frees up, the vote goes on
                   OR (cs.status = 'voting' AND o.copy > 0))
            GROUP BY o.task_id, o.idx
          ), upserted AS (
            INSERT INTO chunk_state (task_id, idx, status, lease_id, attempts, expiries, copies_out, needed, last_error)
            SELECT task_id, idx,
                   CASE WHEN expiries >= max_expiries THEN 'failed' WHEN state_status = 'voting' THEN 'voting' ELSE 'pending' END,
                   lease_id, attempts, expiries,
                   CASE WHEN state_status = 'voting' THEN greatest(copies_out - orphaned, 0) ELSE copies_out END, needed,
                   CASE WHEN expiries >= max_expiries THEN jsonb_build_object(
                     'kind', 'expired', 'message', 'lease expired ' || expiries || ' times (volunteers vanished)') END
            FROM candidates ORDER BY task_id, idx
            ON CONFLICT (task_id, idx) DO UPDATE
              SET status = excluded.status, expiries = excluded.expiries, copies_out = excluded.copies_out,
                  last_error = coalesce(excluded.last_error, chunk_state.last_error)
              WHERE (chunk_state.status = 'leased' AND chunk_state.lease_id = excluded.lease_id) OR chunk_state.status = 'voting' 
            RETURNING task_id, idx, status, last_error
          ), failed_counts AS (
            INSERT INTO task_counters (task_id, shard, failed)
            SELECT task_id, ${shard}, count(*) FROM upserted WHERE status = 'failed'
            GROUP BY task_id ORDER BY task_id
            ON CONFLICT (task_id, shard) DO UPDATE SET failed = task_counters.failed + excluded.failed
          ), old_lease_requests AS (
            -- Idempotency keys outlive any lease they could return.
            DELETE FROM lease_requests WHERE (volunteer_id, key) IN (
              SELECT volunteer_id, key FROM lease_requests
              WHERE created_at < now() - interval '1 day' LIMIT ${leasesPerSweep})
          ), task_errors AS (
            UPDATE tasks t SET last_error = jsonb_build_object('index', f.idx) || f.last_error
            FROM (SELECT DISTINCT ON (task_id) task_id, idx, last_error FROM upserted
                  WHERE status = 'failed' ORDER BY task_id, idx DESC) f
            WHERE t.id = f.task_id
          )
          SELECT (SELECT count(*)::int FROM expired) AS reclaimed,
                 (SELECT json_agg(DISTINCT task_id) FROM upserted WHERE status = 'failed') AS failed_tasks`,
    ),
  );
  const row = rows[0];
  if (row?.failed_tasks?.length) await completeFinishedTasks(db, row.failed_tasks);
  return row?.reclaimed ?? 0;
}
