import { type SQL, sql } from "drizzle-orm";
import { type Db, queryRows, retryOnDeadlockOrSerialization } from "../db.ts";
import { addToTaskCounters, counterShardOf } from "../sql/counters.ts";
import { resultCovers } from "../sql/result-rows.ts";
import { completeFinishedTasks } from "../tasks/tasks.ts";
import { dispatchCacheOf } from "./dispatch-cache.ts";
import { claimRequestKey } from "./request-keys.ts";

const leasesPerSweep = 256;
// Expired leases are swept by lease requests themselves (no daemon), but not by every one:
// one sweep per process every 250 ms finds what there is, and spares a round trip per request.
const sweepEveryMs = 250;

/**
 * `reclaimExpiredLeases` for a lease request of volunteer `volunteerId` (counters go to its
 * shard), unless this process (`db`'s dispatch cache) swept less than 250 ms ago. Returns how
 * many leases it reclaimed (0 when it did not sweep), so the caller can wake waiting volunteers.
 */
export async function sweepExpiredLeases(db: Db, volunteerId: string): Promise<number> {
  const dispatchCache = dispatchCacheOf(db);
  const now = Date.now();
  if (dispatchCache.lastSweepAt > now - sweepEveryMs) return 0;
  dispatchCache.lastSweepAt = now;
  return reclaimExpiredLeases(db, counterShardOf(volunteerId));
}

/**
 * Takes back leases whose deadline passed: each unreported chunk without a result goes back
 * to pending with one more expiry (a vanished volunteer is not the chunk's fault, so expiries
 * have their own cap, `max_expiries`), or fails once that cap is reached. Called before each
 * lease request: no daemon is needed for correctness. Returns how many leases it reclaimed.
 */
export async function reclaimExpiredLeases(db: Db, shard: number): Promise<number> {
  return takeBack(
    db,
    shard,
    sql`SELECT id, task_id, first_idx, n, reported, copy, created_at FROM leases
        WHERE NOT reclaimed AND deadline < now()
        ORDER BY deadline LIMIT ${leasesPerSweep} FOR UPDATE SKIP LOCKED`,
    1,
  );
}

/**
 * A volunteer gives back whatever the lease request with this Idempotency-Key got, though it
 * never read the answer (its page closed while the request was in flight). The key is claimed
 * first, so a request that has not arrived yet gets no blocks (a repeated key returns only what
 * its first request leased); blocks it already got are taken back as `releaseLeases` does.
 * A request whose lease statement is running at this very moment can still commit blocks after
 * this: those wait for their deadline. The key's row counts toward the volunteer's newest
 * keys (`keptPerVolunteer`), so fresh keys in a loop leave no more rows than that.
 * Returns the blocks taken back and their tasks. Counters go to the volunteer's shard unless `shard` names another.
 */
export async function releaseLeaseRequest(db: Db, input: { volunteerId: string; key: string; shard?: number }): Promise<{ leaseRowId: number; taskId: string }[]> {
  // Claimed as a lease request claims it, so the volunteer's keys stay bounded (request-keys.ts).
  await claimRequestKey(db, input.volunteerId, input.key);
  const released = await queryRows<{ id: string | number; task_id: string }>(
    db,
    sql`SELECT id, task_id FROM leases WHERE volunteer_id = ${input.volunteerId} AND request_key = ${input.key} AND NOT reclaimed`,
  );
  if (released.length === 0) return [];
  await takeBack(
    db,
    input.shard ?? counterShardOf(input.volunteerId),
    sql`SELECT id, task_id, first_idx, n, reported, copy, created_at FROM leases
        WHERE volunteer_id = ${input.volunteerId} AND request_key = ${input.key} AND NOT reclaimed
        ORDER BY id FOR UPDATE`,
    0,
  );
  return released.map((row) => ({ leaseRowId: Number(row.id), taskId: row.task_id }));
}

/**
 * A volunteer gives leases back before their deadline (it paused): their unreported chunks
 * go back to pending at once, counting no expiry (nothing vanished). Leases of another
 * volunteer, or already taken back, are left alone. Returns the lease rows it took back.
 * Counters go to the volunteer's shard unless `shard` names another.
 */
export async function releaseLeases(db: Db, input: { volunteerId: string; leaseRowIds: readonly number[]; shard?: number }): Promise<number[]> {
  if (input.leaseRowIds.length === 0) return [];
  const ids = JSON.stringify([...new Set(input.leaseRowIds)].sort((a, b) => a - b));
  const released = await queryRows<{ id: string | number }>(
    db,
    sql`SELECT id FROM leases WHERE id IN (SELECT value::bigint FROM json_array_elements_text(${ids}::json))
          AND volunteer_id = ${input.volunteerId} AND NOT reclaimed`,
  );
  if (released.length === 0) return [];
  await takeBack(
    db,
    input.shard ?? counterShardOf(input.volunteerId),
    sql`SELECT id, task_id, first_idx, n, reported, copy, created_at FROM leases
        WHERE id IN (SELECT value::bigint FROM json_array_elements_text(${ids}::json))
          AND volunteer_id = ${input.volunteerId} AND NOT reclaimed
        ORDER BY id FOR UPDATE`,
    0,
  );
  return released.map((row) => Number(row.id));
}

/**
 * Takes back the leases `which` selects (and locks): marks them reclaimed and puts each chunk
 * they had not reported, and that has no result, back to pending with `expiriesAdded` more
 * expiries, failing it at the task's cap.
 */
async function takeBack(db: Db, shard: number, which: SQL, expiriesAdded: 0 | 1): Promise<number> {
  const rows = await retryOnDeadlockOrSerialization(() =>
    queryRows<{ reclaimed: number; failed_tasks: string[] | null }>(
      db,
      sql`WITH expired AS (
            ${which}
          ), marked AS (
            UPDATE leases l SET reclaimed = true FROM expired e WHERE l.id = e.id
          ), orphans AS (
            SELECT e.task_id, e.first_idx + o AS idx, e.id AS lease_id, e.copy, e.created_at AS leased_at
            FROM expired e CROSS JOIN LATERAL generate_series(0, e.n - 1) AS o
            WHERE get_bit(e.reported, o) = 0
          ), candidates AS (
            -- One row per chunk: two expired copies of one chunk under vote free two slots.
            SELECT o.task_id, o.idx, max(o.lease_id) AS lease_id, count(*)::int AS orphaned,
                   coalesce(max(cs.expiries), 0) + ${expiriesAdded}::int AS expiries, coalesce(max(cs.attempts), 0) AS attempts,
                   max(t.max_expiries) AS max_expiries, max(cs.status) AS state_status,
                   coalesce(max(cs.copies_out), 0) AS copies_out, coalesce(max(cs.needed), 0) AS needed
            FROM orphans o
            JOIN tasks t ON t.id = o.task_id AND t.status IN ('running', 'paused')
            LEFT JOIN chunk_state cs ON cs.task_id = o.task_id AND cs.idx = o.idx
            WHERE NOT ${resultCovers(sql`o.task_id`, sql`o.idx`)}
              -- a reduce lease from before its tree was thrown away reissues nothing
              AND NOT (o.idx >= t.total AND o.leased_at < t.reduce_reset_at)
              -- an extra copy of a block voted whole has no chunk_state: its slot is block_state's
              AND (cs.task_id IS NOT NULL OR o.copy = 0)
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
          ), block_copies_freed AS (
            -- an extra copy of a block voted whole that reported nothing frees its slot (block-votes.ts)
            UPDATE block_state bs SET copies_out = greatest(bs.copies_out - 1, 0)
            FROM expired e WHERE e.copy > 0 AND position(B'1' in e.reported) = 0
              AND bs.task_id = e.task_id AND bs.first_idx = e.first_idx AND bs.n = e.n
          ), failed_counts AS (
            ${addToTaskCounters(["failed"], sql`SELECT task_id, ${shard}, count(*) FROM upserted WHERE status = 'failed' GROUP BY task_id ORDER BY task_id`)}
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
          ), live_cleared AS (
            -- A chunk that goes back to pending keeps its checkpoint for its next lease.
            DELETE FROM chunk_live cl USING upserted u WHERE u.status = 'failed' AND cl.task_id = u.task_id AND cl.idx = u.idx
          )
          SELECT (SELECT count(*)::int FROM expired) AS reclaimed,
                 (SELECT json_agg(DISTINCT task_id) FROM upserted WHERE status = 'failed') AS failed_tasks`,
    ),
  );
  const row = rows[0];
  if (row?.failed_tasks?.length) await completeFinishedTasks(db, row.failed_tasks);
  // Copies taken back are wanted again: the next lease here looks for them (lease.ts, `noCopiesAt`).
  if ((row?.reclaimed ?? 0) > 0) dispatchCacheOf(db).noCopiesAt.clear();
  return row?.reclaimed ?? 0;
}
