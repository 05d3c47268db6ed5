import { type SQL, sql } from "drizzle-orm";
import { type Db, queryRows } from "../db.ts";
import { chunksOfRow, maxRowChunks, resultCovers, resultsIn } from "../sql/result-rows.ts";
import { type RangeSpec, rangeChunkInput } from "../tasks/tasks.ts";

/** One final chunk, in the shape of `GET /api/tasks/:id/results` (JSON texts unparsed). */
export type FinalChunk = { index: number; input: string; status: "done"; result: string } | { index: number; input: string; status: "failed"; error: { kind: string; message: string } };

/** What reading a task's final chunks needs to know of it. */
export type ResultsTask = { id: string; inputKind: string; range: RangeSpec | null; total: number };

type Row = { idx: number; status: "done" | "failed"; result: string | null; error: { kind: string; message: string } | null; input: string | null };

/**
 * The first `limit` final chunks of a task after index `after`, in index order: done ones
 * from `results`, failed ones from `chunk_state`.
 */
export async function finalChunksPage(db: Db, task: ResultsTask, after: number, limit: number): Promise<FinalChunk[]> {
  const rows = await queryRows<Row>(
    db,
    // Inputs by scalar subquery: an index probe per row in any plan (see lease.ts).
    sql`SELECT f.idx, f.status, f.result, f.error,
               (SELECT ci.input FROM chunk_inputs ci WHERE ci.task_id = ${task.id} AND ci.idx = f.idx) AS input
        FROM (
          -- A page's worth of rows is enough: each holds at least one chunk.
          (SELECT r.idx + x.o AS idx, 'done' AS status, x.result, NULL::jsonb AS error
            FROM (SELECT * FROM results WHERE task_id = ${task.id} AND idx + n > ${after + 1}::int AND idx > ${after}::int - ${maxRowChunks}::int
                    AND idx < ${task.total} ORDER BY idx LIMIT ${limit}) r
            CROSS JOIN ${chunksOfRow(sql`r`)} x
            WHERE r.idx + x.o > ${after} AND r.idx + x.o < ${task.total} ORDER BY 1 LIMIT ${limit})
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

export type ResultsFormat = "ndjson" | "csv";

/**
 * A chunk's input as JSON text: stored, or for a range task `JSON.stringify(rangeChunkInput())`
 * (numeric, so exact for every range of safe integers).
 */
function inputJson(task: ResultsTask): SQL {
  if (task.inputKind !== "range" || !task.range) return sql`w.input`;
  const { start, end, step, size } = task.range;
  const first = sql`(${start}::numeric + w.idx * ${size}::numeric * ${step}::numeric)`;
  return sql`'{"start":' || ${first} || ',"end":' || least(${first} + ${size}::numeric * ${step}::numeric, ${end}::numeric) || ',"step":' || ${step}::numeric || '}'`;
}

/**
 * A failed chunk's error as `JSON.stringify` writes it: every writer stores a flat
 * `{kind, message}`, whose members jsonb renders as JSON but with spaces between them.
 */
const errorJson = sql`CASE jsonb_typeof(w.error)
    WHEN 'object' THEN coalesce((SELECT '{' || string_agg(to_json(e.key)::text || ':' || e.value::text, ',') || '}'
                                 FROM jsonb_each(w.error) e), '{}')
    ELSE coalesce(w.error::text, '{"kind":"unknown","message":""}') END`;

/** RFC 4180: the JSON text quoted, its quotes doubled. */
const csvCell = (json: SQL) => sql`'"' || replace(${json}, '"', '""') || '"'`;

/**
 * One download line of the window row `w`; CSV's input, result and error cells are JSON texts.
 * With `cursor` (SQL text) the line also carries it, as a last NDJSON member `"cursor"` or a
 * last CSV column (docs/architecture.md, Following results).
 */
export function downloadLine(task: ResultsTask, format: ResultsFormat, cursor?: SQL): SQL {
  const input = inputJson(task);
  if (format === "ndjson") {
    const end = cursor ? sql`',"cursor":"' || ${cursor} || E'"}\n'` : sql`E'}\n'`;
    return sql`CASE WHEN w.status = 'done'
            THEN '{"index":' || w.idx || ',"input":' || ${input} || ',"status":"done","result":' || w.result || ${end}
            ELSE '{"index":' || w.idx || ',"input":' || ${input} || ',"status":"failed","error":' || ${errorJson} || ${end} END`;
  }
  const end = cursor ? sql`',' || ${cursor} || E'\r\n'` : sql`E'\r\n'`;
  return sql`CASE WHEN w.status = 'done'
            THEN w.idx || ',done,' || ${csvCell(input)} || ',' || ${csvCell(sql`w.result`)} || ',' || ${end}
            ELSE w.idx || ',failed,' || ${csvCell(input)} || ',,' || ${csvCell(errorJson)} || ${end} END`;
}

/** One query's share of a download: its text, and the last index it covers. */
export type DownloadWindow = { text: string; through: number };

/**
 * The download text of the final chunks with `after < index <= through`, in index order,
 * built by the database as one string: a window of 10,000 chunks costs the API one string,
 * not 10,000 rows of objects that outlive a young-generation GC on their way to the socket
 * (measured: the process grew to 370 MB). It stops after the chunk that takes it past
 * `budgetBytes` (results and inputs may be up to 1 MiB each); `through` then says where.
 * Each query reads at most one window of each table's primary key, however sparse.
 */
export async function finalChunksWindow(db: Db, task: ResultsTask, after: number, through: number, format: ResultsFormat, budgetBytes: number): Promise<DownloadWindow> {
  const last = Math.min(through, task.total - 1);
  if (last <= after) return { text: "", through: last };
  // Range tasks have no input rows: theirs are computed from the index. Stored inputs come
  // by scalar subquery, an index probe per chunk in any plan: as a join, a planner without
  // statistics (this CI's server never gathers them) nested-looped the window's inputs
  // against its results, 16,384² rows per window (100k lines: 28 s instead of 0.3).
  const inputOf = (alias: SQL) => (task.inputKind === "range" ? sql`NULL::text` : sql`(SELECT ci.input FROM chunk_inputs ci WHERE ci.task_id = ${task.id} AND ci.idx = ${alias}.idx)`);
  // Each branch comes in index order (a merge of two primary-key ranges), so the running
  // sum below needs no sort of whole lines.
  const [row] = await queryRows<{ text: string | null; last_taken: number | null; cut: boolean | null }>(
    db,
    sql`WITH f AS (
          (SELECT r.idx, 'done' AS status, r.result, NULL::jsonb AS error, ${inputOf(sql`r`)} AS input
           FROM ${resultsIn(sql`${task.id}::uuid`, sql`${after + 1}::int`, sql`${last + 1}::int`)} r ORDER BY r.idx)
          UNION ALL
          (SELECT s.idx, 'failed', NULL, s.last_error, ${inputOf(sql`s`)}
           FROM chunk_state s
           WHERE s.task_id = ${task.id} AND s.status = 'failed' AND s.idx > ${after} AND s.idx <= ${last} ORDER BY s.idx)
        ), sized AS (
          SELECT *, 64 + coalesce(octet_length(result), 0) + coalesce(octet_length(input), 0) AS bytes FROM f
        ), w AS (
          -- A line is taken while the bytes before it are under the budget.
          SELECT *, sum(bytes) OVER (ORDER BY idx) - bytes < ${budgetBytes} AS taken FROM sized
        )
        SELECT string_agg(${downloadLine(task, format)}, '' ORDER BY w.idx) FILTER (WHERE w.taken) AS text,
               max(w.idx) FILTER (WHERE w.taken) AS last_taken, bool_or(NOT w.taken) AS cut
        FROM w`,
  );
  if (!row?.text) return { text: "", through: last };
  return { text: row.text, through: row.cut ? row.last_taken! : last };
}

/** The lowest index of a final chunk after `after` (below the task's total), or null. */
export async function nextFinalIndex(db: Db, task: ResultsTask, after: number): Promise<number | null> {
  const [row] = await queryRows<{ idx: number | null }>(
    db,
    sql`SELECT least(
          CASE WHEN ${resultCovers(sql`${task.id}::uuid`, sql`${after + 1}::int`)} AND ${after + 1}::int < ${task.total}::int THEN ${after + 1}::int END,
          (SELECT min(idx) FROM results WHERE task_id = ${task.id} AND idx > ${after} AND idx < ${task.total}),
          (SELECT min(idx) FROM chunk_state WHERE task_id = ${task.id} AND status = 'failed' AND idx > ${after} AND idx < ${task.total})
        ) AS idx`,
  );
  return row?.idx ?? null;
}

/**
 * A task's whole download (`GET /api/tasks/:id/results`), as texts of about `budgetBytes`
 * each, one query each: windows are sized from the bytes per index seen so far, and an
 * empty one skips straight to the next final chunk. What it holds at once is one text.
 */
export async function* finalChunksDownload(
  db: Db,
  task: ResultsTask,
  format: ResultsFormat,
  { budgetBytes = 2 * 1024 * 1024, maxWindow = 16_384 }: { budgetBytes?: number; maxWindow?: number } = {},
): AsyncGenerator<string> {
  let after = -1;
  let window = Math.min(1024, maxWindow);
  while (after < task.total - 1) {
    const { text, through } = await finalChunksWindow(db, task, after, after + window, format, budgetBytes);
    if (text.length === 0) {
      const next = await nextFinalIndex(db, task, through);
      if (next === null) return;
      after = next - 1;
      continue;
    }
    const bytesPerIndex = text.length / (through - after);
    window = Math.max(1, Math.min(maxWindow, Math.floor(budgetBytes / bytesPerIndex)));
    after = through;
    yield text;
  }
}

/** What a results download needs to know of its task. */
export async function getTaskForResults(db: Db, id: string): Promise<ResultsTask | null> {
  const [row] = await queryRows<{ id: string; input_kind: string; range: RangeSpec | null; total: number }>(db, sql`SELECT id, input_kind, range, total FROM tasks WHERE id = ${id}`);
  return row ? { id: row.id, inputKind: row.input_kind, range: row.range, total: row.total } : null;
}
