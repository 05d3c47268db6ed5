import { sql } from "drizzle-orm";
import { queryRows, type Db } from "./db.ts";
import { rangeChunkInput, type RangeSpec } from "./tasks.ts";

/** One final chunk, in the shape of `GET /api/tasks/:id/results` (JSON texts unparsed). */
export type FinalChunk =
  | { index: number; input: string; status: "done"; result: string }
  | { index: number; input: string; status: "failed"; error: { kind: string; message: string } };

type Row = { idx: number; status: "done" | "failed"; result: string | null; error: { kind: string; message: string } | null; input: string | null };

/**
 * The final chunks of a task after index `after`, in index order: done ones from `results`,
 * failed ones from `chunk_state`. Callers page with the last index they got, so a download
 * of millions of chunks holds one page in memory.
 */
export async function finalChunksPage(
  db: Db,
  task: { id: string; inputKind: string; range: RangeSpec | null; total: number },
  after: number,
  limit: number,
): Promise<FinalChunk[]> {
  const rows = await queryRows<Row>(
    db,
    // Inputs by scalar subquery: an index probe per row in any plan (see lease.ts).
    sql`SELECT f.idx, f.status, f.result, f.error,
               (SELECT ci.input FROM chunk_inputs ci WHERE ci.task_id = ${task.id} AND ci.idx = f.idx) AS input
        FROM (
          (SELECT idx, 'done' AS status, result, NULL::jsonb AS error FROM results
            WHERE task_id = ${task.id} AND idx > ${after} AND idx < ${task.total} ORDER BY idx LIMIT ${limit})
          UNION ALL
          (SELECT idx, 'failed', NULL, last_error FROM chunk_state
            WHERE task_id = ${task.id} AND status = 'failed' AND idx > ${after} AND idx < ${task.total} ORDER BY idx LIMIT ${limit})
        ) f
        ORDER BY f.idx LIMIT ${limit}`,
  );
  return rows.map((row) => {
    const input = task.inputKind === "range" && task.range ? JSON.stringify(rangeChunkInput(task.range, row.idx)) : (row.input ?? "null");
    return row.status === "done"
      ? { index: row.idx, input, status: "done", result: row.result ?? "null" }
      : { index: row.idx, input, status: "failed", error: row.error ?? { kind: "unknown", message: "" } };
  });
}

/** What a results download needs to know of its task. */
export async function getTaskForResults(db: Db, id: string): Promise<{ id: string; inputKind: string; range: RangeSpec | null; total: number } | null> {
  const [row] = await queryRows<{ id: string; input_kind: string; range: RangeSpec | null; total: number }>(
    db,
    sql`SELECT id, input_kind, range, total FROM tasks WHERE id = ${id}`,
  );
  return row ? { id: row.id, inputKind: row.input_kind, range: row.range, total: row.total } : null;
}
