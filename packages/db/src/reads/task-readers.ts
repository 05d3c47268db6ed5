import { sql } from "drizzle-orm";
import { type Db, queryRows } from "../db.ts";

/**
 * Whether a volunteer may read a task's code, WebAssembly and summary: when it may run the
 * task (running or paused, and the allow-list, if any, names its user; hardware requirements
 * aside), or when it holds a live lease on it (a task paused, finished or cancelled under
 * it). Null when there is no such task. A draft, or another creator's allow-listed task, is
 * not for any volunteer to read.
 */
export async function volunteerMayReadTask(db: Db, input: { taskId: string; volunteerId: string; userId: string | null }): Promise<boolean | null> {
  const [row] = await queryRows<{ may: boolean }>(
    db,
    sql`SELECT (t.status IN ('running', 'paused') AND (t.allow_users IS NULL OR t.allow_users ? ${input.userId ?? ""}))
               OR EXISTS (SELECT 1 FROM leases l WHERE l.task_id = t.id AND l.volunteer_id = ${input.volunteerId}
                          AND NOT l.reclaimed AND l.deadline > now()) AS may
        FROM tasks t WHERE t.id = ${input.taskId}`,
  );
  return row ? row.may : null;
}
