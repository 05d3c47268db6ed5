// Reading `results` in both of its shapes: a row is one chunk (n = 1, its result as JSON
// text) or a block of n consecutive chunks reported whole by the lease that held them (its
// results as one JSON array text). Rows of a task never overlap, and a row holds at most
// `maxRowChunks` chunks, so the row covering an index is the last one starting at or
// before it, and a range is read from at most one row before it.

import { MAX_BLOCK_CHUNKS } from "@crowdcompute/contract/limits";
import { type SQL, sql } from "drizzle-orm";

export const maxRowChunks = MAX_BLOCK_CHUNKS;

/**
 * SQL boolean: a results row of task `taskId` covers chunk `idx`. One backward index probe
 * of the primary key (the row starting nearest at or before idx), whatever the plan.
 */
export const resultCovers = (taskId: SQL, idx: SQL): SQL =>
  sql`coalesce((SELECT r.idx + r.n > ${idx} FROM results r WHERE r.task_id = ${taskId} AND r.idx <= ${idx} ORDER BY r.idx DESC LIMIT 1), false)`;

/**
 * A FROM item: one row per chunk of task `taskId` with a result and `from <= idx < to`,
 * with columns idx, result (JSON text), volunteer_id, hash, created_at, and the row's own
 * n and cpu_ms (row_n, row_cpu_ms). A block row's array is parsed once (json keeps each
 * element's text as stored: the canonical JSON the API wrote).
 */
export function resultsIn(taskId: SQL, from: SQL, to: SQL): SQL {
  return sql`(SELECT r.idx + x.o AS idx, x.result, r.volunteer_id, r.hash, r.created_at, r.n AS row_n, r.cpu_ms AS row_cpu_ms
              FROM results r CROSS JOIN ${chunksOfRow(sql`r`)} x
              WHERE r.task_id = ${taskId} AND r.idx < ${to} AND r.idx > ${from} - ${maxRowChunks}::int AND r.idx + r.n > ${from}
                AND r.idx + x.o >= ${from} AND r.idx + x.o < ${to})`;
}

/** SQL integer: how many chunks of task `taskId` in [from, to) have a result (no array is parsed). */
export const resultCountIn = (taskId: SQL, from: SQL, to: SQL): SQL =>
  sql`(SELECT coalesce(sum(least(r.idx + r.n, ${to}) - greatest(r.idx, ${from})), 0)::int FROM results r
       WHERE r.task_id = ${taskId} AND r.idx < ${to} AND r.idx > ${from} - ${maxRowChunks}::int AND r.idx + r.n > ${from})`;

/**
 * A LATERAL item over results row `r`: its chunks as (o, result), o the offset in the row.
 * Only a block row's array is parsed.
 */
export const chunksOfRow = (r: SQL): SQL =>
  sql`LATERAL (SELECT ${r}.result AS result, 0 AS o WHERE ${r}.n = 1
               UNION ALL
               SELECT e.value::text, (e.ord - 1)::int FROM json_array_elements(CASE WHEN ${r}.n > 1 THEN ${r}.result::json END) WITH ORDINALITY AS e(value, ord)) `;
