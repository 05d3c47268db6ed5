import { sql } from "drizzle-orm";
import { queryRows, withRetry, type Db } from "./db.ts";
import { rangeChunkInput, type RangeSpec } from "./tasks.ts";

export interface LeaseRequest {
  volunteerId: string;
  /** The user the volunteer belongs to, for allow-lists. */
  userId: string | null;
  max: number;
  threads: number;
  webgpu: boolean;
  excludeTasks: readonly string[];
  excludeCreators: readonly string[];
  /** Added to every lease deadline (DESIGN §5: 30 s). */
  graceMs: number;
}

export interface LeasedChunk {
  leaseRowId: number;
  taskId: string;
  index: number;
  copy: number;
  /** The chunk's input as JSON text. */
  input: string;
  deadline: Date;
  codeSha256: string;
  wasmSha256: string | null;
  /** The task's per-chunk limit, which the volunteer's sandbox enforces. */
  timeoutMs: number;
}

type Candidate = {
  id: string;
  input_kind: "array" | "range" | "ndjson";
  range: RangeSpec | null;
  timeout_ms: number;
  code_sha256: string;
  wasm_sha256: string | null;
};

const candidateTasks = 16;

/**
 * Hands a volunteer up to `max` chunks, retries first, then fresh blocks cut from a stripe
 * (`FOR UPDATE SKIP LOCKED`, so concurrent lessees never wait on each other). Expired
 * leases are reclaimed by the caller first (`reclaimExpiredLeases`).
 */
export async function leaseChunks(db: Db, request: LeaseRequest): Promise<LeasedChunk[]> {
  const candidates = await queryRows<Candidate>(
    db,
    sql`SELECT id, input_kind, range, timeout_ms, code_sha256, wasm_sha256 FROM tasks t
        WHERE status = 'running'
          AND (NOT coalesce((requires->>'webgpu')::boolean, false) OR ${request.webgpu})
          AND (allow_users IS NULL OR allow_users ? ${request.userId ?? ""})
          AND id NOT IN (SELECT value::uuid FROM json_array_elements_text(${JSON.stringify(request.excludeTasks)}::json))
          AND owner_id NOT IN (SELECT value::uuid FROM json_array_elements_text(${JSON.stringify(request.excludeCreators)}::json))
        ORDER BY priority DESC, created_at
        LIMIT ${candidateTasks}`,
  );
  const leased: LeasedChunk[] = [];
  for (const task of candidates) {
    const want = request.max - leased.length;
    if (want <= 0) break;
    const rows = await withRetry(() => leaseFromTask(db, task, want, request));
    for (const row of rows) {
      leased.push({
        leaseRowId: Number(row.lease_id),
        taskId: task.id,
        index: row.idx,
        copy: 0,
        input: task.input_kind === "range" ? JSON.stringify(rangeChunkInput(task.range!, row.idx)) : (row.input ?? "null"),
        deadline: new Date(row.deadline),
        codeSha256: task.code_sha256,
        wasmSha256: task.wasm_sha256,
        timeoutMs: task.timeout_ms,
      });
    }
  }
  return leased;
}

type LeaseRow = { lease_id: string | number; idx: number; input: string | null; deadline: Date | string };

/**
 * One round trip: pending retries become one-chunk leases, then one block of fresh chunks
 * is cut from the first unlocked stripe (preferring the volunteer's own, so concurrent
 * volunteers start on different rows). The deadline covers the batch: timeoutMs ·
 * ⌈n / threads⌉ + grace.
 */
function leaseFromTask(db: Db, task: Candidate, want: number, request: LeaseRequest): Promise<LeaseRow[]> {
  const preferredStripe = stripeHint(request.volunteerId);
  const deadline = (n: ReturnType<typeof sql>) =>
    sql`now() + make_interval(secs => (${task.timeout_ms}::bigint * ceil((${n})::numeric / ${request.threads}::int) + ${request.graceMs}::bigint) / 1000.0)`;
  return queryRows<LeaseRow>(
    db,
    sql`WITH retry AS (
          SELECT idx FROM chunk_state
          WHERE task_id = ${task.id} AND status = 'pending'
          ORDER BY idx LIMIT ${want} FOR UPDATE SKIP LOCKED
        ), retry_count AS (
          SELECT count(*)::int AS n FROM retry
        ), retry_leases AS (
          INSERT INTO leases (task_id, volunteer_id, first_idx, n, deadline)
          SELECT ${task.id}, ${request.volunteerId}, idx, 1, ${deadline(sql`(SELECT n FROM retry_count)`)}
          FROM retry ORDER BY idx
          RETURNING id, first_idx, n, deadline
        ), retry_marked AS (
          UPDATE chunk_state cs SET status = 'leased', lease_id = rl.id
          FROM retry_leases rl WHERE cs.task_id = ${task.id} AND cs.idx = rl.first_idx
        ), stripe AS (
          SELECT stripe, next_idx, end_idx FROM stripes
          WHERE task_id = ${task.id} AND next_idx < end_idx AND (SELECT n FROM retry_count) < ${want}
          ORDER BY stripe < ${preferredStripe}, stripe
          LIMIT 1 FOR UPDATE SKIP LOCKED
        ), advanced AS (
          UPDATE stripes s SET next_idx = least(stripe.end_idx, stripe.next_idx + ${want} - (SELECT n FROM retry_count))
          FROM stripe WHERE s.task_id = ${task.id} AND s.stripe = stripe.stripe
          RETURNING stripe.next_idx AS first_idx, s.next_idx - stripe.next_idx AS n
        ), fresh_lease AS (
          INSERT INTO leases (task_id, volunteer_id, first_idx, n, deadline)
          SELECT ${task.id}, ${request.volunteerId}, first_idx, n,
                 ${deadline(sql`advanced.n + (SELECT n FROM retry_count)`)}
          FROM advanced
          RETURNING id, first_idx, n, deadline
        ), granted AS (
          SELECT * FROM retry_leases UNION ALL SELECT * FROM fresh_lease
        )
        SELECT g.id AS lease_id, g.first_idx + o AS idx, ci.input, g.deadline
        FROM granted g
        CROSS JOIN LATERAL generate_series(0, g.n - 1) AS o
        LEFT JOIN chunk_inputs ci ON ci.task_id = ${task.id} AND ci.idx = g.first_idx + o
        ORDER BY idx`,
  );
}

/** A stable small number per volunteer, to spread volunteers over a task's stripes. */
function stripeHint(volunteerId: string): number {
  let hash = 0;
  for (let i = 0; i < volunteerId.length; i++) hash = (hash * 31 + volunteerId.charCodeAt(i)) | 0;
  return Math.abs(hash) % 16;
}
