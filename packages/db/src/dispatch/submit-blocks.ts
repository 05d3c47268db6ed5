// The hot submit path: a run of consecutive results from the lease that still holds them,
// none reported before, of a task with one copy per chunk, becomes ONE results row (the
// results as a JSON array; one chunk is a plain row). A Postgres-only probe, 16 clients:
// per-chunk rows 22–26k chunks/s at 64 a block, 62–68k/s at 256; one row per block
// 40–52k/s at 64, 170–280k/s at 256 (docs/architecture.md, "Result storage").
//
// Why a run never overlaps another row: the lease row is locked, not reclaimed, and has not
// reported these offsets, so no one else holds them; a chunk held by another lease came back
// to it by expiry (the old lease is reclaimed) or an error (the offset is reported), and such
// a chunk is reissued alone, one lease row a chunk, so its late results meet on the key.
import { type SQL, sql } from "drizzle-orm";
import { type Db, preparedRows } from "../db.ts";
import { addToVolunteerCounters, boundedCpu, countCredited } from "../sql/counters.ts";
import { noneSetIn, runMask } from "../sql/report-masks.ts";
import { exhausted, type RejectionReason, runsJson } from "./submit-chunks.ts";

/**
 * SQL boolean: lease `leaseId` of task row `t` (spot_check, spot_seed) is not among the spot-checked
 * share: a hash of its id and a seed volunteers never see, above `spot_check`.
 */
export const notSpotChecked = (leaseId: SQL, t: SQL) => sql`('x' || substr(md5(${leaseId}::text || ${t}.spot_seed), 1, 8))::bit(32)::bigint / 4294967296.0 >= ${t}.spot_check`;

/** Consecutive results of one lease: element k of `resultsJson` is chunk `firstIdx + offset + k`. */
export interface ResultRun {
  leaseRowId: number;
  taskId: string;
  /** The lease's first chunk index, as its signed id says. */
  firstIdx: number;
  offset: number;
  count: number;
  /** The results as one JSON array text of `count` elements, each (canonical) JSON. */
  resultsJson: string;
  /** CPU time of the run's chunks together, as the volunteer claims it. */
  cpuMs: number;
  /**
   * The caller's hint, from the signed lease id: the run is the whole block (two chunks or more)
   * of a replicated task's lease, so it is tried first as a vote by the block, in one statement
   * (block-vote-whole.ts); the lease is judged there again whatever the hint says.
   */
  wholeReplicatedBlock?: boolean;
}

/**
 * What the caller must act on: per task, results counted and whether it may be finished;
 * per run not stored whole, either a rejection of all of it, a vote by the block
 * (`block_vote`: a replicated block reported whole by the lease that holds it), or else store
 * it chunk by chunk (a late result, a part overlapping an earlier report, other votes).
 */
export type BlockRow =
  | { kind: "task"; task_id: string; item: null; reason: null; inserted: number; exhausted: boolean; block_vote: null }
  | { kind: "run"; task_id: string; item: number; reason: RejectionReason | null; inserted: null; exhausted: null; block_vote: boolean };

export function insertResultRuns(db: Db, volunteerId: string, shard: number, runs: ResultRun[]): Promise<BlockRow[]> {
  const items = runsJson(runs.map((run) => ({ leaseRowId: run.leaseRowId, taskId: run.taskId, first: run.offset, count: run.count, resultsJson: run.resultsJson, cpuMs: run.cpuMs })));
  return preparedRows<BlockRow>(
    db,
    sql`WITH items AS (
          -- "first" is the run's offset in its block here; a block row keeps the array text as
          -- it came, one chunk its element's text.
          SELECT item, lease_id, task_id, first AS off, len, CASE WHEN len = 1 THEN (results -> 0)::text ELSE results::text END AS result, cpu_ms
          FROM json_to_recordset(${items}::json)
            AS x(item int, lease_id bigint, task_id uuid, first int, len int, results json, cpu_ms bigint)
        ), voter AS (
          -- The reporting volunteer as votes see it: trusted (an admin's, or earned), or the task
          -- owner's own on its task, neither banned nor a suspended account's.
          SELECT v.trusted, v.banned, v.user_id, u.suspended_at IS NOT NULL AS suspended
          FROM volunteers v LEFT JOIN users u ON u.id = v.user_id WHERE v.id = ${volunteerId}
        ), locked AS (
          -- Leases by key and in id order, as every statement that takes them (see submit-chunks.ts).
          SELECT l.id, l.task_id, l.first_idx, l.n, l.reported, l.reclaimed, l.copy, l.created_at FROM leases l
          WHERE l.id = ANY (ARRAY(SELECT lease_id FROM items)) ORDER BY l.id FOR UPDATE
        ), judged AS (
          SELECT i.*, l.first_idx + i.off AS idx, l.n AS lease_n, t.total, t.replication, t.timeout_ms,
            l.first_idx + i.off < t.total AS own_chunk,
            CASE WHEN t.id IS NULL OR l.id IS NULL THEN 'task-unknown'
                 WHEN t.status IN ('cancelled', 'draft') THEN 'task-cancelled'
                 -- a reduce chunk leased before its tree was thrown away read inputs that changed since
                 WHEN l.first_idx + i.off >= t.total AND l.created_at < t.reduce_reset_at THEN 'chunk-reissued' END AS reason,
            (l.id IS NOT NULL AND NOT l.reclaimed AND l.copy = 0 AND i.off + i.len <= l.n
              AND ${noneSetIn(sql`l.reported`, sql`i.off`, sql`i.len`)}
              AND (t.replication = 1
                   -- Adaptive replication: a trusted volunteer's first copy of a block is accepted
                   -- alone unless the block is among the spot_check share checked, picked from the
                   -- lease's id and a seed volunteers never see (docs/architecture.md,
                   -- "Replication, trust and reduce"). Probationers' blocks always go to a vote.
                   OR coalesce(t.spot_check < 1 AND NOT vr.banned AND NOT vr.suspended AND (vr.trusted OR coalesce(t.owner_id = vr.user_id, false))
                               AND ${notSpotChecked(sql`l.id`, sql`t`)}, false))) AS whole,
            -- A copy of a replicated block, whole, from the lease that holds it and has reported
            -- none of it: a vote by the block (block-votes.ts), unless accepted alone above.
            (l.id IS NOT NULL AND NOT l.reclaimed AND t.replication > 1 AND l.n >= 2 AND i.off = 0 AND i.len = l.n
              AND ${noneSetIn(sql`l.reported`, sql`0`, sql`l.n`)}) AS block_vote,
            -- What the server saw: no more than len × (lease to now), nor len × timeoutMs.
            ${boundedCpu(sql`i.cpu_ms`, sql`l.created_at`, sql`t.timeout_ms`, sql`i.len`)} AS bounded_cpu
          FROM items i
          LEFT JOIN locked l ON l.id = i.lease_id AND l.task_id = i.task_id
          LEFT JOIN voter vr ON true
          -- The batch's few tasks, probed by key once each (OFFSET 0 keeps it a probe).
          LEFT JOIN (SELECT t.* FROM (SELECT DISTINCT task_id FROM items) d
                     CROSS JOIN LATERAL (SELECT id, owner_id, status, replication, spot_check, spot_seed, timeout_ms, total, reduce_reset_at
                                         FROM tasks WHERE id = d.task_id OFFSET 0) t) t ON t.id = i.task_id
        ), stored AS (
          -- A retry finished from another volunteer's checkpoint (one an earlier lease left: a
          -- reclaimed lease writes none, so it was handed to this one) names that volunteer as
          -- its author, credited the time it ran up to it (docs/architecture.md, "Progress,
          -- console and checkpoints").
          SELECT j.*, cp.author, cp.author_ms FROM judged j
          LEFT JOIN LATERAL (
            SELECT ck.volunteer_id AS author,
                   least(greatest(0, (extract(epoch FROM cl.checkpoint_at - ck.created_at) * 1000)::bigint), j.timeout_ms) AS author_ms
            FROM chunk_live cl JOIN leases ck ON ck.id = cl.checkpoint_lease_id
            WHERE j.len = 1 AND cl.task_id = j.task_id AND cl.idx = j.idx AND cl.checkpoint IS NOT NULL
              AND ck.id < j.lease_id AND ck.volunteer_id <> ${volunteerId}
          ) cp ON true
          WHERE j.reason IS NULL AND j.whole
        ), marked AS (
          UPDATE leases l SET reported = l.reported | m.mask
          FROM (SELECT lease_id, bit_or(${runMask(sql`lease_n`, sql`off`, sql`len`)}) AS mask FROM stored GROUP BY lease_id) m
          WHERE l.id = m.lease_id
        ), inserted AS (
          INSERT INTO results (task_id, idx, n, result, volunteer_id, cpu_ms, checkpoint_by)
          SELECT task_id, idx, len, result, ${volunteerId}, bounded_cpu, author FROM stored ORDER BY task_id, idx
          -- Only a retry's one-chunk row can meet a late copy here (see the top of this file).
          ON CONFLICT DO NOTHING
          RETURNING task_id, idx, n
        ), credited AS (
          -- A single copy wins trivially: its credit is its CPU time as counted. A replicated
          -- task's block accepted on one copy counts its copies received.
          SELECT s.task_id, s.bounded_cpu AS cpu_ms, s.own_chunk, s.bounded_cpu AS credit, s.len AS n, s.replication > 1 AS alone,
                 s.author, coalesce(s.author_ms, 0) AS author_ms
          FROM inserted i JOIN stored s ON s.task_id = i.task_id AND s.idx = i.idx
        ), ${countCredited(volunteerId, shard, sql`n`, sql`CASE WHEN alone THEN n ELSE 0 END`, sql`credit + author_ms`)}, author_credit AS (
          -- the checkpoints' authors: their time, as credit and CPU time (the task's credit has it too)
          ${addToVolunteerCounters(sql`SELECT author, 0, sum(author_ms), sum(author_ms), now() FROM credited WHERE author IS NOT NULL GROUP BY author ORDER BY author`)}
        ), cleared AS (
          -- A retry's state row goes with its result (a longer run has none: see above).
          DELETE FROM chunk_state cs USING inserted i WHERE i.n = 1 AND cs.task_id = i.task_id AND cs.idx = i.idx
        ), live_cleared AS (
          -- Progress and checkpoints of the stored chunks, by index range: one probe of the
          -- primary key a row, which finds nothing for chunks that never sent any.
          DELETE FROM chunk_live cl USING inserted i WHERE cl.task_id = i.task_id AND cl.idx >= i.idx AND cl.idx < i.idx + i.n
        )
        SELECT 'task' AS kind, t.task_id, NULL::int AS item, NULL::text AS reason,
          (SELECT coalesce(sum(i.n), 0)::int FROM inserted i WHERE i.task_id = t.task_id) AS inserted,
          ${exhausted(sql`t.task_id`)} AS exhausted, NULL::boolean AS block_vote
        FROM (SELECT DISTINCT task_id FROM judged) t
        UNION ALL
        SELECT 'run', j.task_id, j.item, j.reason, NULL, NULL, j.block_vote FROM judged j WHERE j.reason IS NOT NULL OR NOT j.whole`,
  );
}
