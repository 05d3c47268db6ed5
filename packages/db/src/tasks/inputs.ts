import { sql } from "drizzle-orm";
import { type Db, queryRows } from "../db.ts";
import { addStripes } from "../dispatch/stripes.ts";
import { completeFinishedTasks } from "./tasks.ts";

const rowsPerInsert = 5000;
const bytesPerInsert = 4 * 1024 * 1024;
const blank = /^\s*$/;

const parses = (line: string) => parseError(line) === null;

function parseError(line: string): string | null {
  try {
    JSON.parse(line);
    return null;
  } catch (error) {
    return (error as Error).message;
  }
}

export type AppendOutcome =
  | { ok: true; total: number; sealed: boolean }
  | { ok: false; reason: "not-found" | "sealed" | "not-ndjson" | "offset-mismatch" | "bad-line"; total?: number; line?: number; message?: string };

/**
 * Appends NDJSON inputs to a task: `offset` must equal the current total, so a
 * retried upload never duplicates; the lines are inserted in batches, in one transaction: a
 * bad line leaves the task as it was. The API passes the lines of a part it has read whole
 * (at most 8 MiB), so the transaction never waits on a client: one held open by a slow upload
 * would hold a pooled connection, and every follower's horizon, for as long as it liked.
 */
export async function appendInputs(db: Db, input: { taskId: string; offset: number; lines: Iterable<string> | AsyncIterable<string>; seal: boolean }): Promise<AppendOutcome> {
  const outcome = await db
    .transaction(async (tx): Promise<AppendOutcome> => {
      const [task] = await queryRows<{ total: number; sealed: boolean; input_kind: string }>(tx, sql`SELECT total, sealed, input_kind FROM tasks WHERE id = ${input.taskId} FOR UPDATE`);
      if (!task) return { ok: false, reason: "not-found" };
      if (task.input_kind !== "ndjson") return { ok: false, reason: "not-ndjson" };
      if (task.sealed) return { ok: false, reason: "sealed", total: task.total };
      if (task.total !== input.offset) return { ok: false, reason: "offset-mismatch", total: task.total };

      let total = task.total;
      let bytes = 0;
      let lineNumber = 0;
      let batch: string[] = [];
      let batchBytes = 0;
      // Postgres checks each line is JSON (the json type keeps its text as given), so the
      // lines are never parsed here: a million-line upload allocates little but the lines.
      const flush = async () => {
        if (batch.length === 0) return;
        try {
          await queryRows(
            tx,
            sql`INSERT INTO chunk_inputs (task_id, idx, input)
              SELECT ${input.taskId}::uuid, ${total}::int + (ord - 1)::int, btrim(value, ${" \t\r"})::json::text
              FROM string_to_table(${batch.join("\n")}, ${"\n"}) WITH ORDINALITY AS t(value, ord)`,
          );
        } catch (error) {
          // Which line, and why, in the words of a JSON parser (the batch is rolled back anyway).
          const bad = batch.findIndex((line) => !parses(line));
          if (bad >= 0) throw new BadLine(lineNumber - batchLines + lineOfEntry[bad]!, parseError(batch[bad]!) ?? "not JSON");
          throw error;
        }
        total += batch.length;
        bytes += batchBytes;
        batch = [];
        batchBytes = 0;
        batchLines = 0;
        lineOfEntry = [];
      };
      let batchLines = 0;
      let lineOfEntry: number[] = [];
      for await (const line of input.lines) {
        lineNumber++;
        batchLines++;
        if (blank.test(line)) continue;
        lineOfEntry.push(batchLines);
        batch.push(line);
        batchBytes += line.length;
        if (batch.length >= rowsPerInsert || batchBytes >= bytesPerInsert) await flush();
      }
      await flush();
      await addStripes(tx, input.taskId, task.total, total);
      // Bytes counted as UTF-16 units: close enough to cap a block's inputs by their mean size.
      await tx.execute(sql`UPDATE tasks SET total = ${total}, input_bytes = input_bytes + ${bytes}, sealed = ${input.seal} WHERE id = ${input.taskId}`);
      return { ok: true, total, sealed: input.seal };
    })
    .catch((error: unknown) => {
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
