import { sql } from "drizzle-orm";
import { hotRows, withRetry, type Db } from "./db.ts";
import { completeFinishedTasks } from "./tasks.ts";
import { recordVotes } from "./votes.ts";

/** A verified lease reference (the API checked the lease id's signature and owner). */
export interface LeaseRef {
  leaseRowId: number;
  taskId: string;
  index: number;
}

export interface ChunkResult extends LeaseRef {
  /** The result as JSON text. */
  result: string;
  cpuMs: number;
}

export interface ChunkError extends LeaseRef {
  kind: string;
  message: string;
  cpuMs: number;
}

export interface SubmitOutcome {
  /** Results counted now; duplicates are accepted but not counted. */
  inserted: number;
  rejected: { ref: LeaseRef; reason: "task-cancelled" | "task-unknown" | "chunk-failed" | "chunk-reissued" }[];
}

/**
 * Records a volunteer's results and errors. Exactly once: a result is an
 * `INSERT … ON CONFLICT DO NOTHING RETURNING`, and only returned rows move the counters.
 * A late result for an expired lease still counts while the chunk is not final.
 */
export async function submitChunks(
  db: Db,
  input: { volunteerId: string; userId?: string | null; shard: number; results: ChunkResult[]; errors: ChunkError[] },
): Promise<SubmitOutcome> {
  const outcome: SubmitOutcome = { inserted: 0, rejected: [] };
  const touched = new Set<string>();
  if (input.results.length > 0) {
    const rows = await withRetry(() => insertResults(db, input.volunteerId, input.shard, input.results));
    const votes: (ChunkResult & { copy: number; firstReport: boolean })[] = [];
    let resultOf: Map<string, ChunkResult> | null = null;
    for (const row of rows) {
      if (row.lease_id === null) {
        outcome.inserted += row.inserted;
        if (row.exhausted) touched.add(row.task_id);
      } else if (row.reason) outcome.rejected.push({ ref: refOf(row), reason: row.reason });
      else {
        resultOf ??= new Map(input.results.map((r) => [`${r.leaseRowId}:${r.index}`, r]));
        const result = resultOf.get(`${row.lease_id}:${row.idx}`)!;
        votes.push({ ...result, copy: row.copy, firstReport: row.first_report });
      }
    }
    if (votes.length > 0) {
      const counted = await withRetry(() => recordVotes(db, { volunteerId: input.volunteerId, userId: input.userId ?? null, shard: input.shard, votes }));
      outcome.inserted += counted.won;
      for (const taskId of counted.finishedChunksOf) touched.add(taskId);
    }
  }
  if (input.errors.length > 0) {
    const rows = await withRetry(() => recordErrors(db, input.shard, input.errors));
    for (const row of rows) {
      if (row.status === "failed") touched.add(row.task_id);
      if (row.reason) outcome.rejected.push({ ref: refOf(row), reason: row.reason });
    }
  }
  await completeFinishedTasks(db, [...touched]);
  return outcome;
}

type Reason = SubmitOutcome["rejected"][number]["reason"];
type ItemRow = { lease_id: string | number; task_id: string; idx: number; reason: Reason | null };

function refOf(row: ItemRow): LeaseRef {
  return { leaseRowId: Number(row.lease_id), taskId: row.task_id, index: row.idx };
}

// Shared by both statements: lock the leases first (reclaim locks them first too, so the
// two never wait on each other in opposite orders), then judge each item.
const judgedItems = sql`
  locked AS (
    SELECT l.id, l.first_idx, l.reported, l.reclaimed, l.copy, l.created_at FROM leases l
    WHERE l.id = ANY (ARRAY(SELECT lease_id FROM items)) ORDER BY l.id FOR UPDATE
  ), judged AS (
    SELECT i.*, l.first_idx, l.reported, l.reclaimed, l.copy, l.created_at AS leased_at,
      t.max_attempts, t.replication, t.timeout_ms, t.total,
      coalesce((l.reported >> (i.idx - l.first_idx)) & 1 = 1, false) AS already_reported,
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
    -- batch is a few rows and would hash-join a scan of every lease.
    UPDATE leases l SET reported = l.reported
      | (SELECT bit_or(1::bigint << (j.idx - j.first_idx)) FROM judged j WHERE j.lease_id = l.id)
    WHERE l.id = ANY (ARRAY(SELECT lease_id FROM judged WHERE first_idx IS NOT NULL))
  )`;

/**
 * Rows only where the API must act, so that a plain batch of 64 costs it a row to read, not
 * 64: one per task (`lease_id` null) with how many results it `inserted` and whether it is
 * `exhausted` (no fresh chunks left, so this submission may have finished it); and one per
 * rejected item (`reason`) or vote (a replicated task's result, for `recordVotes`;
 * `first_report`: this lease had not reported the chunk before and still held it, so a copy
 * slot frees up).
 */
type ResultRow =
  | { lease_id: null; task_id: string; inserted: number; exhausted: boolean }
  | (ItemRow & { lease_id: string | number; copy: number; first_report: boolean });

function insertResults(db: Db, volunteerId: string, shard: number, results: ChunkResult[]): Promise<ResultRow[]> {
  const items = results.map((r) => ({ lease_id: r.leaseRowId, task_id: r.taskId, idx: r.index, result: r.result, cpu_ms: r.cpuMs }));
  return hotRows<ResultRow>(
    db,
    sql`WITH items AS (
          SELECT * FROM json_to_recordset(${JSON.stringify(items)}::json)
            AS x(lease_id bigint, task_id uuid, idx int, result text, cpu_ms int)
        ), ${judgedItems}, inserted AS (
          INSERT INTO results (task_id, idx, result, volunteer_id, cpu_ms)
          SELECT task_id, idx, result, ${volunteerId}, cpu_ms FROM judged WHERE reason IS NULL AND replication = 1
          ORDER BY task_id, idx
          ON CONFLICT DO NOTHING
          RETURNING task_id, idx, cpu_ms
        ), credited AS (
          -- A single copy wins trivially; its credit is still bounded by what the server saw.
          SELECT i.task_id, i.cpu_ms, i.idx < j.total AS own_chunk,
                 least(i.cpu_ms, (extract(epoch FROM now() - j.leased_at) * 1000)::bigint, j.timeout_ms) AS credit
          FROM inserted i JOIN (SELECT DISTINCT ON (task_id, idx) * FROM judged) j ON j.task_id = i.task_id AND j.idx = i.idx
        ), counted AS (
          INSERT INTO task_counters (task_id, shard, done, cpu_ms, credit)
          -- done counts the task's own chunks; its reduce chunks (indexes past total) do not.
          SELECT task_id, ${shard}, count(*) FILTER (WHERE own_chunk), sum(cpu_ms), sum(credit) FROM credited GROUP BY task_id ORDER BY task_id
          ON CONFLICT (task_id, shard) DO UPDATE
            SET done = task_counters.done + excluded.done, cpu_ms = task_counters.cpu_ms + excluded.cpu_ms,
                credit = task_counters.credit + excluded.credit
        ), volunteer_credit AS (
          INSERT INTO volunteer_counters AS vc (volunteer_id, done, cpu_ms, credit, updated_at)
          SELECT ${volunteerId}, count(*), sum(cpu_ms), sum(credit), now() FROM credited HAVING count(*) > 0
          ON CONFLICT (volunteer_id) DO UPDATE
            SET done = vc.done + excluded.done, cpu_ms = vc.cpu_ms + excluded.cpu_ms,
                credit = vc.credit + excluded.credit, updated_at = excluded.updated_at
        ), cleared AS (
          DELETE FROM chunk_state cs USING inserted i WHERE cs.task_id = i.task_id AND cs.idx = i.idx
        )
        SELECT NULL::bigint AS lease_id, t.task_id, NULL::int AS idx, NULL::text AS reason, NULL::int AS copy, NULL::boolean AS first_report,
          (SELECT count(*)::int FROM inserted i WHERE i.task_id = t.task_id) AS inserted,
          -- A scalar probe of the task's own stripes: a NOT EXISTS here was planned as a hash
          -- of every open stripe of every task.
          (SELECT 1 FROM stripes s WHERE s.task_id = t.task_id AND s.next_idx < s.end_idx LIMIT 1) IS NULL AS exhausted
        FROM (SELECT DISTINCT task_id FROM judged) t
        UNION ALL
        SELECT j.lease_id, j.task_id, j.idx, j.reason, coalesce(j.copy, 0)::int,
          (NOT j.already_reported AND NOT coalesce(j.reclaimed, true)), NULL, NULL
        FROM judged j WHERE j.reason IS NOT NULL OR j.replication > 1`,
  );
}

type ErrorRow = ItemRow & { status: string | null };

/**
 * An error counts one attempt, only from the chunk's current holder: the block lease that
 * still holds it, or the lease named in its chunk_state row. At `max_attempts` the chunk fails.
 */
function recordErrors(db: Db, shard: number, errors: ChunkError[]): Promise<ErrorRow[]> {
  const items = errors.map((e) => ({ lease_id: e.leaseRowId, task_id: e.taskId, idx: e.index, kind: e.kind, message: e.message }));
  return hotRows<ErrorRow>(
    db,
    sql`WITH items AS (
          SELECT * FROM json_to_recordset(${JSON.stringify(items)}::json)
            AS x(lease_id bigint, task_id uuid, idx int, kind text, message text)
        ), ${judgedItems}, counted_errors AS (
          SELECT j.*, j.attempts + 1 AS next_attempts FROM judged j
          WHERE j.reason IS NULL AND j.first_idx IS NOT NULL
            AND (j.reported >> (j.idx - j.first_idx)) & 1 = 0
            AND NOT EXISTS (SELECT 1 FROM results r WHERE r.task_id = j.task_id AND r.idx = j.idx)
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
          INSERT INTO task_counters (task_id, shard, failed)
          SELECT task_id, ${shard}, count(*) FROM upserted WHERE status = 'failed' GROUP BY task_id ORDER BY task_id
          ON CONFLICT (task_id, shard) DO UPDATE SET failed = task_counters.failed + excluded.failed
        ), task_errors AS (
          UPDATE tasks t SET last_error = jsonb_build_object('index', e.idx, 'kind', e.kind, 'message', e.message)
          FROM (SELECT DISTINCT ON (task_id) task_id, idx, kind, message FROM counted_errors ORDER BY task_id, idx DESC) e
          WHERE t.id = e.task_id
        )
        SELECT j.lease_id, j.task_id, j.idx, j.reason, u.status
        FROM judged j LEFT JOIN upserted u ON u.task_id = j.task_id AND u.idx = j.idx`,
  );
}
