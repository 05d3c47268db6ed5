// What one volunteer, and one anonymous network source, holds now: chunks of its live leases
// not yet reported (docs/architecture.md, "Bounds on what one volunteer holds"). Read once
// before each lease request that has bounds, from two partial indexes of the live leases.
import { sql } from "drizzle-orm";
import { type Db, preparedRows } from "../db.ts";

export interface Held {
  /** Unreported chunks of the volunteer's live leases, in all. */
  volunteer: number;
  /** The same by task. */
  byTask: Map<string, number>;
  /** Unreported chunks of every live lease that went to `source` (0 without one). */
  source: number;
  /** The same by task. */
  sourceByTask: Map<string, number>;
}

// A cancelled or finished task's leases hold nothing anyone could run (one key probe a lease).
const taskLive = sql`EXISTS (SELECT 1 FROM tasks t WHERE t.id = l.task_id AND t.status IN ('running', 'paused'))`;

/**
 * One round trip. A lease whose deadline has passed is not counted: the next sweep takes it
 * back (`reclaimExpiredLeases`), and its volunteer is not held back for it meanwhile.
 */
export async function heldChunks(db: Db, input: { volunteerId: string; source: string | null }): Promise<Held> {
  const rows = await preparedRows<{ of: "volunteer" | "source"; task_id: string; held: number }>(
    db,
    sql`SELECT 'volunteer' AS of, l.task_id, sum(l.n - bit_count(l.reported))::int AS held FROM leases l
        WHERE l.volunteer_id = ${input.volunteerId} AND NOT l.reclaimed AND l.deadline > now() AND ${taskLive}
        GROUP BY l.task_id
        UNION ALL
        SELECT 'source', l.task_id, sum(l.n - bit_count(l.reported))::int FROM leases l
        WHERE l.source = ${input.source ?? ""} AND NOT l.reclaimed AND l.source IS NOT NULL AND l.deadline > now() AND ${taskLive}
        GROUP BY l.task_id`,
  );
  const held: Held = { volunteer: 0, byTask: new Map(), source: 0, sourceByTask: new Map() };
  for (const row of rows) {
    const n = Number(row.held);
    if (row.of === "volunteer") {
      held.byTask.set(row.task_id, n);
      held.volunteer += n;
    } else if (input.source !== null) {
      held.sourceByTask.set(row.task_id, n);
      held.source += n;
    }
  }
  return held;
}
