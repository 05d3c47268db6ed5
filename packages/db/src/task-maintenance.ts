import { sql } from "drizzle-orm";
import { queryRows, type Db } from "./db.ts";
import { newId } from "./ids.ts";
import { candidateTasksChanged } from "./candidates.ts";
import { addStripes } from "./stripes.ts";

// Shard 0 of task_counters takes the corrections; readers sum all shards anyway.
const correctionShard = 0;

/**
 * Gives every failed chunk of a task a fresh set of attempts (after the creator fixed the
 * cause, e.g. raised timeoutMs): failed chunks become pending, the failed counter drops by
 * as many, and a finished task runs again. Returns how many chunks were reopened, or null
 * when the task is a draft or cancelled.
 */
export async function retryFailedChunks(db: Db, taskId: string): Promise<number | null> {
  const reopened = await db.transaction(async (tx) => {
    const [task] = await queryRows<{ status: string }>(tx, sql`SELECT status FROM tasks WHERE id = ${taskId} FOR UPDATE`);
    if (!task || !["running", "paused", "done", "failed"].includes(task.status)) return null;
    const [row] = await queryRows<{ n: number }>(
      tx,
      sql`WITH reopened AS (
            UPDATE chunk_state SET status = 'pending', attempts = 0, expiries = 0, lease_id = NULL
            WHERE task_id = ${taskId} AND status = 'failed' RETURNING idx
          ), counted AS (
            INSERT INTO task_counters (task_id, shard, failed)
            SELECT ${taskId}, ${correctionShard}, -count(*) FROM reopened HAVING count(*) > 0
            ON CONFLICT (task_id, shard) DO UPDATE SET failed = task_counters.failed + excluded.failed
          )
          SELECT count(*)::int AS n FROM reopened`,
    );
    const reopened = row?.n ?? 0;
    if (reopened > 0 && (task.status === "done" || task.status === "failed")) {
      await tx.execute(sql`UPDATE tasks SET status = 'running', finished_at = NULL WHERE id = ${taskId}`);
    }
    return reopened;
  });
  if (reopened) candidateTasksChanged();
  return reopened;
}

/**
 * A new draft with the same inputs and options, optionally new code: how a creator fixes
 * a bug without uploading the inputs again. Results, failures and counters start empty.
 * Returns the new task's id, or null when the source does not exist.
 */
export async function cloneTask(
  db: Db,
  input: { taskId: string; ownerId: string; code?: { code: string; codeSha256: string; hasReduce: boolean } },
): Promise<string | null> {
  const id = newId();
  return db.transaction(async (tx) => {
    const [copied] = await queryRows<{ total: number }>(
      tx,
      sql`INSERT INTO tasks (id, owner_id, name, description, code, code_sha256, has_reduce, wasm, wasm_sha256, status, priority,
                             replication, quorum, timeout_ms, max_attempts, max_expiries, requires, allow_users,
                             input_kind, range, total, sealed)
          SELECT ${id}, ${input.ownerId}, name, description,
                 coalesce(${input.code?.code ?? null}::text, code), coalesce(${input.code?.codeSha256 ?? null}::text, code_sha256),
                 coalesce(${input.code?.hasReduce ?? null}::boolean, has_reduce),
                 wasm, wasm_sha256, 'draft', priority, replication, quorum, timeout_ms, max_attempts, max_expiries,
                 requires, allow_users, input_kind, range, total, sealed
          FROM tasks WHERE id = ${input.taskId}
          RETURNING total`,
    );
    if (!copied) return null;
    await tx.execute(sql`INSERT INTO chunk_inputs (task_id, idx, input) SELECT ${id}, idx, input FROM chunk_inputs WHERE task_id = ${input.taskId}`);
    await addStripes(tx, id, 0, Number(copied.total));
    return id;
  });
}

/** Deletes a task and everything of it. The hot tables carry no foreign key (see schema.ts), so each is cleared here. */
export async function deleteTask(db: Db, taskId: string): Promise<boolean> {
  return db.transaction(async (tx) => {
    for (const table of ["results", "votes", "leases", "chunk_state", "task_counters"] as const) {
      await tx.execute(sql`DELETE FROM ${sql.identifier(table)} WHERE task_id = ${taskId}`);
    }
    const deleted = await queryRows<{ id: string }>(tx, sql`DELETE FROM tasks WHERE id = ${taskId} RETURNING id`);
    return deleted.length > 0;
  });
}
