import { sql } from "drizzle-orm";
import { queryRows, type Db } from "./db.ts";
import { addStripes } from "./stripes.ts";
import { completeFinishedTasks } from "./tasks.ts";

const rowsPerInsert = 5000;

export type AppendOutcome =
  | { ok: true; total: number; sealed: boolean }
  | { ok: false; reason: "not-found" | "sealed" | "not-ndjson" | "offset-mismatch" | "bad-line"; total?: number; line?: number; message?: string };

/**
 * Appends NDJSON inputs to a task (DESIGN §4): `offset` must equal the current total, so a
 * retried upload never duplicates; the lines are parsed and inserted in batches as they
 * stream in, so a million-line upload holds one batch in memory. It all happens in one
 * transaction: a bad line or a dropped connection leaves the task as it was.
 */
export async function appendInputs(
  db: Db,
  input: { taskId: string; offset: number; lines: AsyncIterable<string>; seal: boolean },
): Promise<AppendOutcome> {
  const outcome = await db.transaction(async (tx): Promise<AppendOutcome> => {
    const [task] = await queryRows<{ total: number; sealed: boolean; input_kind: string }>(
      tx,
      sql`SELECT total, sealed, input_kind FROM tasks WHERE id = ${input.taskId} FOR UPDATE`,
    );
    if (!task) return { ok: false, reason: "not-found" };
    if (task.input_kind !== "ndjson") return { ok: false, reason: "not-ndjson" };
    if (task.sealed) return { ok: false, reason: "sealed", total: task.total };
    if (task.total !== input.offset) return { ok: false, reason: "offset-mismatch", total: task.total };

    let total = task.total;
    let lineNumber = 0;
    let batch: string[] = [];
    const flush = async () => {
      if (batch.length === 0) return;
      await tx.execute(sql`
        INSERT INTO chunk_inputs (task_id, idx, input)
        SELECT ${input.taskId}::uuid, ${total}::int + (ord - 1)::int, value
        FROM json_array_elements_text(${JSON.stringify(batch)}::json) WITH ORDINALITY AS t(value, ord)`);
      total += batch.length;
      batch = [];
    };
    for await (const line of input.lines) {
      lineNumber++;
      if (line.trim() === "") continue;
      try {
        // Stored re-serialized: compact, and certainly one JSON value.
        batch.push(JSON.stringify(JSON.parse(line)));
      } catch (error) {
        throw new BadLine(lineNumber, (error as Error).message);
      }
      if (batch.length >= rowsPerInsert) await flush();
    }
    await flush();
    await addStripes(tx, input.taskId, task.total, total);
    await tx.execute(sql`UPDATE tasks SET total = ${total}, sealed = ${input.seal} WHERE id = ${input.taskId}`);
    return { ok: true, total, sealed: input.seal };
  }).catch((error: unknown) => {
    if (error instanceof BadLine) return { ok: false as const, reason: "bad-line" as const, line: error.line, message: error.message };
    throw error;
  });
  if (outcome.ok && outcome.sealed) await completeFinishedTasks(db, [input.taskId]);
  return outcome;
}

class BadLine extends Error {
  readonly line: number;
  constructor(line: number, message: string) {
    super(message);
    this.line = line;
  }
}
