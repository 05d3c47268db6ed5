import { sql } from "drizzle-orm";
import type { Db } from "../db.ts";

// Lessees spread over a task's stripes so that no single row takes every lease; a stripe
// smaller than a few 64-chunk leases would only add rows to scan.
const chunksPerStripe = 1024;
const maxStripesPerRange = 16;

/**
 * Stripes over the chunk indexes [from, to), numbered after the task's existing ones. Used
 * when a task is created or cloned and when NDJSON inputs are appended.
 */
export async function addStripes(tx: Db, taskId: string, from: number, to: number): Promise<void> {
  const count = to - from;
  if (count <= 0) return;
  const stripeCount = Math.max(1, Math.min(maxStripesPerRange, Math.ceil(count / chunksPerStripe)));
  const bounds = Array.from({ length: stripeCount }, (_, i) => [from + Math.floor((i * count) / stripeCount), from + Math.floor(((i + 1) * count) / stripeCount)]);
  await tx.execute(sql`
    INSERT INTO stripes (task_id, stripe, next_idx, end_idx)
    SELECT ${taskId}::uuid,
           (SELECT coalesce(max(stripe), -1) FROM stripes WHERE task_id = ${taskId}) + (ord)::int,
           (b->>0)::int, (b->>1)::int
    FROM json_array_elements(${JSON.stringify(bounds)}::json) WITH ORDINALITY AS t(b, ord)`);
}
