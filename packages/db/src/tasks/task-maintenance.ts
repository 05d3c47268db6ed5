import type { TaskOptions } from "@crowdcompute/contract";
import { eq, sql } from "drizzle-orm";
import { type Db, queryRows } from "../db.ts";
import { candidateTasksChanged } from "../dispatch/candidates.ts";
import { addStripes } from "../dispatch/stripes.ts";
import { newId } from "../ids.ts";
import { tasks } from "../schema.ts";
import { addToTaskCounters } from "../sql/counters.ts";

// Shard 0 of task_counters takes the corrections; readers sum all shards anyway.
const correctionShard = 0;

/**
 * Gives every failed chunk of a task a fresh set of attempts (after the creator fixed the
 * cause, e.g. raised timeoutMs): failed chunks become pending, the failed counter drops by
 * as many, the task's last error is cleared, and a finished task runs again. Returns how many chunks were reopened, or null
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
            ${addToTaskCounters(["failed"], sql`SELECT ${taskId}, ${correctionShard}, -count(*) FROM reopened HAVING count(*) > 0`)}
          )
          SELECT count(*)::int AS n FROM reopened`,
    );
    const reopened = row?.n ?? 0;
    // The task's last error was one of the chunks reopened (or older): it goes with them, and
    // a chunk that fails again sets it anew, so the task page shows no error the retry fixed.
    if (reopened > 0) await tx.execute(sql`UPDATE tasks SET last_error = NULL WHERE id = ${taskId}`);
    if (reopened > 0 && (task.status === "done" || task.status === "failed")) {
      await tx.execute(sql`UPDATE tasks SET status = 'running', finished_at = NULL WHERE id = ${taskId}`);
    }
    return reopened;
  });
  if (reopened) candidateTasksChanged(db);
  return reopened;
}

/** What a clone may change besides its code: the contract's options; what is left out is copied. */
export type CloneChanges = Partial<TaskOptions> & {
  wasm?: { bytes: Uint8Array; sha256: string };
};

/**
 * A new draft with the same inputs, and the source's options and code unless `changes` and
 * `code` say otherwise: how a creator fixes a bug, or runs the inputs again another way,
 * without uploading them again. Results, failures and counters start empty. Returns the new
 * task's id, or null when the source does not exist. The caller checks the options together
 * (quorum at most the replication) against the source's.
 */
export async function cloneTask(db: Db, input: { taskId: string; ownerId: string; code?: { code: string; codeSha256: string; hasReduce: boolean }; changes?: CloneChanges }): Promise<string | null> {
  const id = newId();
  const c = input.changes ?? {};
  const json = (value: unknown) => (value === undefined ? null : JSON.stringify(value));
  return db.transaction(async (tx) => {
    const [copied] = await queryRows<{ total: number }>(
      tx,
      sql`INSERT INTO tasks (id, owner_id, name, description, code, code_sha256, has_reduce, wasm, wasm_sha256, status, priority,
                             replication, quorum, timeout_ms, memory_mb, max_attempts, max_expiries, requires, tolerance, spot_check, allow_users,
                             input_kind, range, total, input_bytes, sealed)
          SELECT ${id}, ${input.ownerId}, coalesce(${c.name ?? null}::text, name), coalesce(${c.description ?? null}::text, description),
                 coalesce(${input.code?.code ?? null}::text, code), coalesce(${input.code?.codeSha256 ?? null}::text, code_sha256),
                 coalesce(${input.code?.hasReduce ?? null}::boolean, has_reduce),
                 wasm, wasm_sha256, 'draft', coalesce(${c.priority ?? null}::int, priority),
                 coalesce(${c.replication ?? null}::int, replication), coalesce(${c.quorum ?? null}::int, quorum),
                 coalesce(${c.timeoutMs ?? null}::int, timeout_ms), coalesce(${c.memoryMb ?? null}::int, memory_mb), coalesce(${c.maxAttempts ?? null}::int, max_attempts), max_expiries,
                 coalesce(${json(c.requires)}::jsonb, requires),
                 CASE WHEN ${c.tolerance !== undefined} THEN nullif(${json(c.tolerance)}::jsonb, 'null'::jsonb) ELSE tolerance END,
                 coalesce(${c.spotCheck ?? null}::real, spot_check),
                 CASE WHEN ${c.allowUsers !== undefined} THEN ${json(c.allowUsers)}::jsonb ELSE allow_users END,
                 input_kind, range, total, input_bytes, sealed
          FROM tasks WHERE id = ${input.taskId}
          RETURNING total`,
    );
    if (!copied) return null;
    if (c.wasm) await tx.update(tasks).set({ wasm: c.wasm.bytes, wasmSha256: c.wasm.sha256 }).where(eq(tasks.id, id));
    await tx.execute(sql`INSERT INTO chunk_inputs (task_id, idx, input) SELECT ${id}, idx, input FROM chunk_inputs WHERE task_id = ${input.taskId}`);
    await addStripes(tx, id, 0, Number(copied.total));
    return id;
  });
}

/** Deletes a task and everything of it. The hot tables carry no foreign key (see schema.ts), so each is cleared here. */
export async function deleteTask(db: Db, taskId: string): Promise<boolean> {
  return db.transaction(async (tx) => {
    for (const table of ["results", "votes", "block_votes", "block_state", "leases", "chunk_state", "task_counters", "chunk_live", "chunk_console"] as const) {
      await tx.execute(sql`DELETE FROM ${sql.identifier(table)} WHERE task_id = ${taskId}`);
    }
    const deleted = await queryRows<{ id: string }>(tx, sql`DELETE FROM tasks WHERE id = ${taskId} RETURNING id`);
    return deleted.length > 0;
  });
}
