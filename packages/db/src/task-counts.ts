// SQL fragments for a task's chunk counts, shared by the task view and the operator metrics:
// summed from the sharded counters and the live leases, never by counting chunks.
import { sql } from "drizzle-orm";

/** The chunks of task `t` out on a live lease (a replicated chunk counts once). */
export const leasedChunksOfTask = sql`((SELECT coalesce(sum(l.n - bit_count(l.reported::bit(64))), 0) FROM leases l
    WHERE l.task_id = t.id AND l.copy = 0 AND NOT l.reclaimed AND l.deadline > now() AND l.first_idx < t.total)
  + (SELECT count(*) FROM chunk_state cs WHERE cs.task_id = t.id AND cs.status = 'voting' AND cs.copies_out > 0))`;

/** Joins `c`: task `t`'s done, failed and cpu_ms, summed over its counter shards. */
export const counterTotals = sql`
  LEFT JOIN LATERAL (SELECT sum(done) AS done, sum(failed) AS failed, sum(cpu_ms) AS cpu_ms
    FROM task_counters WHERE task_id = t.id) c ON true`;
