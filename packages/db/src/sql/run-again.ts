// What undoes a task's end when results it counted fall (a ban's reopened chunks,
// reputation.ts; a voted-whole block's results that no longer stand, block-explode.ts).
import { type SQL, sql } from "drizzle-orm";

/** A CTE body: the done or failed tasks among `taken`'s `task_id`s run again. */
export const runTasksAgain = (taken: SQL): SQL =>
  sql`UPDATE tasks SET status = 'running', finished_at = NULL
          WHERE id IN (SELECT task_id FROM ${taken}) AND status IN ('done', 'failed')`;
