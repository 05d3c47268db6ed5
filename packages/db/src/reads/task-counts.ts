// SQL fragments for a task's chunk counts, shared by the task view and the operator metrics:
// summed from the sharded counters and the live leases, never by counting chunks.
import { sql } from "drizzle-orm";

/** The chunks of task `t` out on a live lease (a replicated chunk counts once). */
export const leasedChunksOfTask = sql`((SELECT coalesce(sum(l.n - bit_count(l.reported)), 0) FROM leases l
    WHERE l.task_id = t.id AND l.copy = 0 AND NOT l.reclaimed AND l.deadline > now() AND l.first_idx < t.total)
  + (SELECT count(*) FROM chunk_state cs WHERE cs.task_id = t.id AND cs.status = 'voting' AND cs.copies_out > 0)
  + (SELECT coalesce(sum(bs.n), 0) FROM block_state bs WHERE bs.task_id = t.id AND bs.copies_out > 0))`;

/** Joins `c`: task `t`'s done, failed and cpu_ms, summed over its counter shards. */
export const counterTotals = sql`
  LEFT JOIN LATERAL (SELECT sum(done) AS done, sum(failed) AS failed, sum(cpu_ms) AS cpu_ms,
      sum(copies) AS copies, sum(replicated) AS replicated, sum(disagreements) AS disagreements, sum(banned) AS banned
    FROM task_counters WHERE task_id = t.id) c ON true`;

/**
 * Chunks of replicated task `t` with a vote in and no copy out: each waits for a volunteer
 * that has not computed it yet (docs/architecture.md, "Replication, trust and reduce"). A
 * chunk with a copy out counts as leased instead; one with every copy in is decided at once.
 */
export const awaitingCopyOfTask = sql`(CASE WHEN t.replication > 1 AND t.status IN ('running', 'paused') THEN
    (SELECT count(*) FROM chunk_state cs WHERE cs.task_id = t.id AND cs.status = 'voting' AND cs.copies_out = 0 AND cs.idx < t.total)
    -- blocks voted whole (block-votes.ts): one state row a block
    + (SELECT coalesce(sum(bs.n), 0) FROM block_state bs WHERE bs.task_id = t.id AND bs.copies_out = 0)
  ELSE 0 END)`;

/**
 * Volunteers holding a live lease on task `t` with chunks not yet reported. The server knows which chunks are leased, not
 * which of them a volunteer is computing this instant (a block is run a part at a time), so
 * this, beside the leased count, is what it can say about the work under way.
 */
export const volunteersOfTask = sql`(CASE WHEN t.status IN ('running', 'paused') THEN
    (SELECT count(DISTINCT l.volunteer_id) FROM leases l
      WHERE l.task_id = t.id AND NOT l.reclaimed AND l.deadline > now() AND bit_count(l.reported) < l.n)
  ELSE 0 END)`;

/**
 * Once task `t` is finished (done, failed or cancelled): the volunteers that reported a result
 * or an error for any of its chunks, copies included (leases are kept; a lease that reported
 * nothing computed nothing). Null while it can still run: `volunteersOfTask` says who holds it
 * then. One probe of the task's lease rows, on `leases_task_idx`.
 */
export const computedByOfTask = sql`(CASE WHEN t.status IN ('done', 'failed', 'cancelled') THEN
    (SELECT count(DISTINCT l.volunteer_id) FROM leases l WHERE l.task_id = t.id AND bit_count(l.reported) > 0)
  END)`;
