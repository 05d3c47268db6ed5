// The per-chunk submit path: results that cannot be stored as a block row (a late result
// after its lease expired, a block reported in overlapping parts, a copy of a replicated
// chunk, which is a vote). Each row of items is one chunk. The common case, a block reported
// whole, is submit-blocks.ts; errors, which share the items' judgement here, submit-errors.ts.
import { type SQL, sql } from "drizzle-orm";
import { type Db, preparedRows } from "../db.ts";
import { boundedCpu, countCredited } from "../sql/counters.ts";
import { isSet, runMask } from "../sql/report-masks.ts";

/** One chunk of a lease, as the API decoded it from a verified lease id. */
export interface ChunkRef {
  leaseRowId: number;
  taskId: string;
  index: number;
}

export interface ChunkResult extends ChunkRef {
  /** The result as (canonical) JSON text. */
  result: string;
  cpuMs: number;
}

export interface ChunkError extends ChunkRef {
  kind: string;
  message: string;
  cpuMs: number;
}

export type RejectionReason = "task-cancelled" | "task-unknown" | "chunk-failed" | "chunk-reissued";

export type ItemRow = { lease_id: string | number; task_id: string; idx: number; reason: RejectionReason | null };

// Shared by both statements: lock the leases first (reclaim and the block statement lock
// them first too, so none waits on another in opposite orders), then judge each item.
export const judgedItems = sql`
  locked AS (
    SELECT l.id, l.first_idx, l.n, l.reported, l.reclaimed, l.copy, l.created_at FROM leases l
    WHERE l.id = ANY (ARRAY(SELECT lease_id FROM items)) ORDER BY l.id FOR UPDATE
  ), judged AS (
    SELECT i.*, l.first_idx, l.n AS lease_n, l.reported, l.reclaimed, l.copy, l.created_at AS leased_at,
      t.max_attempts, t.replication, t.timeout_ms, t.total,
      coalesce(${isSet(sql`l.reported`, sql`i.idx - l.first_idx`)}, false) AS already_reported,
      CASE WHEN t.id IS NULL THEN 'task-unknown'
           WHEN t.status IN ('cancelled', 'draft') THEN 'task-cancelled'
           WHEN cs.status = 'failed' THEN 'chunk-failed'
           -- a reduce chunk leased before its tree was thrown away read inputs that changed since
           WHEN i.idx >= t.total AND l.created_at < t.reduce_reset_at THEN 'chunk-reissued' END AS reason,
      cs.task_id IS NOT NULL AS has_state, cs.status AS state_status, cs.lease_id AS state_lease,
      coalesce(cs.copies_out, 0) AS copies_out,
      coalesce(cs.attempts, 0) AS attempts
    FROM items i
    LEFT JOIN locked l ON l.id = i.lease_id
    -- Probes by key (OFFSET 0 keeps the planner from turning them back into joins, which it
    -- hashes over a scan of the table while its statistics say it is small): the batch's
    -- few tasks once each, its chunks' states once per item.
    LEFT JOIN (SELECT t.* FROM (SELECT DISTINCT task_id FROM items) d
               CROSS JOIN LATERAL (SELECT id, status, max_attempts, replication, timeout_ms, total, reduce_reset_at
                                   FROM tasks WHERE id = d.task_id OFFSET 0) t) t ON t.id = i.task_id
    LEFT JOIN LATERAL (SELECT * FROM chunk_state WHERE task_id = i.task_id AND idx = i.idx OFFSET 0) cs ON true
  ), reported AS (
    -- Leases found by key (= ANY of an array), never by a join: the planner cannot know a
    -- batch is a few rows and would hash-join a scan of every lease. A lease's mask is the OR
    -- of one mask per run of consecutive offsets (the items of a report are one or two runs):
    -- building it bit by bit against the items cost O(n²), 1 s for a block of 4096.
    UPDATE leases l SET reported = l.reported | m.mask
    FROM (SELECT lease_id, bit_or(${runMask(sql`lease_n`, sql`first_off`, sql`len`)}) AS mask
          FROM (SELECT lease_id, lease_n, min(off) AS first_off, count(*) AS len
                FROM (SELECT lease_id, lease_n, off, off - row_number() OVER (PARTITION BY lease_id ORDER BY off) AS run
                      FROM (SELECT DISTINCT lease_id, lease_n, idx - first_idx AS off FROM judged WHERE first_idx IS NOT NULL) d) o
                GROUP BY lease_id, lease_n, run) r
          GROUP BY lease_id) m
    WHERE l.id = ANY (ARRAY(SELECT lease_id FROM judged WHERE first_idx IS NOT NULL)) AND l.id = m.lease_id
  )`;

/**
 * Rows only where the caller must act: one per task (`lease_id` null) with how many results
 * it `inserted` and whether it is `exhausted` (no fresh chunks left, so this submission may
 * have finished it); and one per rejected item (`reason`) or vote (a replicated task's
 * result and its share of CPU time, for `recordVotes`; `first_report`: this lease had not
 * reported the chunk before and still held it, so a copy slot frees up).
 */
export type ChunkResultRow =
  | { lease_id: null; task_id: string; inserted: number; exhausted: boolean }
  | (ItemRow & { lease_id: string | number; copy: number; first_report: boolean; result: string | null; cpu_ms: string | number });

/**
 * Results one chunk each, from runs that could not be stored whole (expanded here, from each
 * run's array text: json keeps every element's text as the API wrote it). A chunk its lease
 * already reported changes nothing (it may sit in a block row, which no key would catch); a
 * late result of an expired lease counts while the chunk has no result (the primary key: such
 * a chunk was reissued one per lease row).
 */
export function insertChunkResults(db: Db, volunteerId: string, shard: number, runs: readonly RunOfResults[]): Promise<ChunkResultRow[]> {
  return preparedRows<ChunkResultRow>(
    db,
    sql`WITH runs AS (
          SELECT * FROM json_to_recordset(${runsJson(runs)}::json)
            AS x(item int, lease_id bigint, task_id uuid, first int, len int, results json, cpu_ms bigint)
        ), items AS (
          SELECT r.lease_id, r.task_id, r.first + (e.ord - 1)::int AS idx, e.value::text AS result, r.cpu_ms / greatest(r.len, 1) AS cpu_ms
          FROM runs r CROSS JOIN LATERAL json_array_elements(r.results) WITH ORDINALITY AS e(value, ord)
        ), ${judgedItems}, inserted AS (
          INSERT INTO results (task_id, idx, result, volunteer_id, cpu_ms)
          SELECT task_id, idx, result, ${volunteerId}, ${boundedCpu(sql`cpu_ms`, sql`leased_at`, sql`timeout_ms`)}
          FROM judged WHERE reason IS NULL AND replication = 1 AND NOT already_reported
          ORDER BY task_id, idx
          ON CONFLICT DO NOTHING
          RETURNING task_id, idx, cpu_ms
        ), credited AS (
          -- A single copy wins trivially; its credit is its CPU time as counted.
          SELECT i.task_id, i.cpu_ms, i.idx < j.total AS own_chunk, i.cpu_ms AS credit
          FROM inserted i JOIN (SELECT DISTINCT ON (task_id, idx) * FROM judged) j ON j.task_id = i.task_id AND j.idx = i.idx
        ), ${countCredited(volunteerId, shard)}, cleared AS (
          DELETE FROM chunk_state cs USING inserted i WHERE cs.task_id = i.task_id AND cs.idx = i.idx
        ), live_cleared AS (
          DELETE FROM chunk_live cl USING inserted i WHERE cl.task_id = i.task_id AND cl.idx = i.idx
        )
        SELECT NULL::bigint AS lease_id, t.task_id, NULL::int AS idx, NULL::text AS reason, NULL::int AS copy, NULL::boolean AS first_report,
          NULL::text AS result, NULL::bigint AS cpu_ms,
          (SELECT count(*)::int FROM inserted i WHERE i.task_id = t.task_id) AS inserted,
          ${exhausted(sql`t.task_id`)} AS exhausted
        FROM (SELECT DISTINCT task_id FROM judged) t
        UNION ALL
        SELECT j.lease_id, j.task_id, j.idx, j.reason, coalesce(j.copy, 0)::int,
          (NOT j.already_reported AND NOT coalesce(j.reclaimed, true)),
          CASE WHEN j.reason IS NULL THEN j.result END, j.cpu_ms, NULL, NULL
        FROM judged j WHERE j.reason IS NOT NULL OR j.replication > 1`,
  );
}

/** Consecutive results of one lease as the statements take them: `resultsJson` is their JSON array text. */
export interface RunOfResults {
  leaseRowId: number;
  taskId: string;
  /** The task index of the run's first result. */
  first: number;
  count: number;
  resultsJson: string;
  cpuMs: number;
}

/**
 * The runs as a JSON array text for json_to_recordset, written by hand: each run's results
 * go in as the array text they are (valid, canonical JSON from the API), not as a string to
 * escape, which copied every result once more.
 */
export function runsJson(runs: readonly RunOfResults[]): string {
  const parts = runs.map(
    (run, item) =>
      `{"item":${item},"lease_id":${run.leaseRowId},"task_id":${JSON.stringify(run.taskId)},"first":${run.first},"len":${run.count},"results":${run.resultsJson},"cpu_ms":${Math.round(run.cpuMs)}}`,
  );
  return `[${parts.join(",")}]`;
}

/**
 * SQL boolean: the task has no fresh chunks left, so a submission may have finished it. A
 * scalar probe of the task's own stripes: a NOT EXISTS here was planned as a hash of every
 * open stripe of every task.
 */
export const exhausted = (taskId: SQL) => sql`(SELECT 1 FROM stripes s WHERE s.task_id = ${taskId} AND s.next_idx < s.end_idx LIMIT 1) IS NULL`;
