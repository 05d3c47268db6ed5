import { sql } from "drizzle-orm";
import { hotRows, queryRows, withRetry, type Db } from "./db.ts";
import { candidateTasks, rotateServedCreators, type Candidate } from "./candidates.ts";
import { reduceInput } from "./reduce.ts";
import { rangeChunkInput } from "./tasks.ts";

export interface LeaseRequest {
  volunteerId: string;
  /** The user the volunteer belongs to, for allow-lists. */
  userId: string | null;
  max: number;
  threads: number;
  /**
   * The share of each thread's time the volunteer lets chunks use, 1..100 (default 100): a
   * throttled volunteer takes proportionally longer over a batch, so its deadline does too.
   */
  cpuPercent?: number;
  webgpu: boolean;
  excludeTasks: readonly string[];
  excludeCreators: readonly string[];
  /** Added to every lease deadline (DESIGN §5: 30 s). */
  graceMs: number;
  /** The request's `Idempotency-Key`: a repeat with the same key gets the same leases back. */
  idempotencyKey?: string | null;
}

export interface LeasedChunk {
  leaseRowId: number;
  /** The lease row's block: first index and number of chunks. */
  firstIdx: number;
  n: number;
  taskId: string;
  /** The task's creator (for turn taking). */
  ownerId: string;
  index: number;
  copy: number;
  /** The chunk's input as JSON text. */
  input: string;
  deadline: Date;
  codeSha256: string;
  wasmSha256: string | null;
  /** The task's per-chunk limit, which the volunteer's sandbox enforces. */
  timeoutMs: number;
  /** What the task needs of the volunteer (e.g. WebGPU, so the sandbox offers `ctx.gpu`). */
  requires: { webgpu?: boolean };
  /** Which export runs: `work`, or `reduce` for the reduce chunks past the task's own. */
  entry: "work" | "reduce";
}

/**
 * Hands a volunteer up to `max` chunks, retries first, then fresh blocks cut from a stripe
 * (`FOR UPDATE SKIP LOCKED`, so concurrent lessees never wait on each other). Expired
 * leases are reclaimed by the caller first (`reclaimExpiredLeases`).
 */
export async function leaseChunks(db: Db, request: LeaseRequest): Promise<LeasedChunk[]> {
  if (request.idempotencyKey && !(await claimRequestKey(db, request.volunteerId, request.idempotencyKey))) {
    return leasesOfRequest(db, request.volunteerId, request.idempotencyKey);
  }
  const candidates = await candidateTasks(db, request);
  let leased = await leaseFromCandidates(db, candidates.tasks, request);
  // A cached list may name tasks that have since ended while others started: look again.
  if (leased.length === 0 && candidates.fromCache) leased = await leaseFromCandidates(db, (await candidateTasks(db, request, { fresh: true })).tasks, request);
  const served = new Set(leased.map((chunk) => chunk.ownerId));
  rotateServedCreators(db, request, served);
  const due = [...served].filter((owner) => (markedAt.get(owner) ?? 0) < Date.now() - markEveryMs);
  if (due.length > 0) {
    for (const owner of due) markedAt.set(owner, Date.now());
    await markServed(db, due);
  }
  return leased;
}

async function leaseFromCandidates(db: Db, candidates: Candidate[], request: LeaseRequest): Promise<LeasedChunk[]> {
  const leased: LeasedChunk[] = [];
  for (const task of candidates) {
    const want = request.max - leased.length;
    if (want <= 0) break;
    // Extra copies of replicated chunks first: they hold back a quorum already under way.
    const copies = task.replication > 1 ? await withRetry(() => leaseCopies(db, task, want, request)) : [];
    const blocks = want > copies.length ? [...copies, ...(await withRetry(() => leaseFromTask(db, task, want - copies.length, request)))] : copies;
    for (const block of blocks) {
      const deadline = new Date(block.deadline);
      const inputs = inputsOf(block);
      for (let o = 0; o < block.n; o++) leased.push(await leasedChunk(db, task, block, deadline, block.first_idx + o, inputs[o] ?? null));
    }
  }
  return leased;
}

type TaskOfLease = Pick<Candidate, "id" | "owner_id" | "input_kind" | "range" | "timeout_ms" | "code_sha256" | "wasm_sha256" | "requires" | "total">;

async function leasedChunk(db: Db, task: TaskOfLease, block: LeaseBlockRow, deadline: Date, idx: number, storedInput: string | null): Promise<LeasedChunk> {
  const entry = idx >= task.total ? "reduce" : "work";
  let input = storedInput ?? "null";
  if (entry === "reduce") input = await reduceInput(db, task.id, task.total, idx);
  else if (task.input_kind === "range") input = JSON.stringify(rangeChunkInput(task.range!, idx));
  return {
    leaseRowId: Number(block.lease_id),
    firstIdx: block.first_idx,
    n: block.n,
    taskId: task.id,
    ownerId: task.owner_id,
    index: idx,
    copy: block.copy ?? 0,
    input,
    entry,
    deadline,
    codeSha256: task.code_sha256,
    wasmSha256: task.wasm_sha256,
    timeoutMs: task.timeout_ms,
    requires: task.requires,
  };
}

/** True when this is the first request with the key (it leases); false for a repeat. */
async function claimRequestKey(db: Db, volunteerId: string, key: string): Promise<boolean> {
  const rows = await hotRows<{ claimed: number }>(
    db,
    sql`INSERT INTO lease_requests (volunteer_id, key) VALUES (${volunteerId}, ${key})
        ON CONFLICT (volunteer_id, key) DO NOTHING RETURNING 1 AS claimed`,
  );
  return rows.length > 0;
}

/**
 * The leases an earlier request with this key got, less the chunks reported or taken back
 * since. A repeat that arrives while the first request is still leasing gets what that
 * request has leased so far (usually nothing): its client lost that answer anyway.
 */
async function leasesOfRequest(db: Db, volunteerId: string, key: string): Promise<LeasedChunk[]> {
  const rows = await queryRows<LeaseBlockRow & TaskOfLease & { idx: number; input: string | null }>(
    db,
    sql`SELECT l.id AS lease_id, l.first_idx, l.n, l.first_idx + o AS idx, l.deadline, l.copy,
               t.id, t.owner_id, t.input_kind, t.range, t.timeout_ms, t.code_sha256, t.wasm_sha256, t.requires, t.total,
               (SELECT ci.input FROM chunk_inputs ci WHERE ci.task_id = l.task_id AND ci.idx = l.first_idx + o) AS input
        FROM leases l
        JOIN tasks t ON t.id = l.task_id AND t.status IN ('running', 'paused')
        CROSS JOIN LATERAL generate_series(0, l.n - 1) AS o
        WHERE l.volunteer_id = ${volunteerId} AND l.request_key = ${key}
          AND NOT l.reclaimed AND (l.reported >> o) & 1 = 0
        ORDER BY l.id, idx`,
  );
  const leased: LeasedChunk[] = [];
  for (const row of rows) leased.push(await leasedChunk(db, row, row, new Date(row.deadline), row.idx, row.input));
  return leased;
}

// This process skips marking a creator it marked moments ago: the row would not change
// (markServed's own 100 ms guard), and a round trip per lease request costs throughput.
const markEveryMs = 100;
const markedAt = new Map<string, number>();

/** Moves the creators to the back of the queue; skips rows touched in the last 100 ms. */
async function markServed(db: Db, ownerIds: string[]): Promise<void> {
  await hotRows(
    db,
    sql`
    INSERT INTO creator_turns AS ct (owner_id, last_served_at)
    SELECT value::uuid, clock_timestamp() FROM json_array_elements_text(${JSON.stringify(ownerIds.sort())}::json)
    ON CONFLICT (owner_id) DO UPDATE SET last_served_at = excluded.last_served_at
      WHERE ct.last_served_at < excluded.last_served_at - interval '100 milliseconds'`,
  );
}

/**
 * A lease row granted: its block of chunks and, unless the task is a range, their stored
 * inputs in order, as a JSON array of strings (not text[]: the Workers driver reads no array
 * types), which postgres.js hands over as text and PGlite parsed.
 */
type LeaseBlockRow = { lease_id: string | number; first_idx: number; n: number; deadline: Date | string; copy?: number; inputs?: string | (string | null)[] | null };

const inputsOf = (block: LeaseBlockRow): (string | null)[] =>
  typeof block.inputs === "string" ? (JSON.parse(block.inputs) as (string | null)[]) : (block.inputs ?? []);

/**
 * The stored inputs of a granted block, in index order (null where there is none, as for
 * reduce chunks). Ranges store none: their inputs are computed, so the probes are skipped.
 * A scalar subquery per chunk: one index probe each, whatever plan a prepared statement
 * settles on (a generic plan once hash-joined all 1M inputs of a task: 1 s per lease).
 * Two statement texts, not a parameter: a CASE on a parameter made Postgres plan the lease
 * statement anew for every request (its custom plans looked cheaper than the generic one).
 */
const storedInputs = (task: Candidate, block: ReturnType<typeof sql>) =>
  task.input_kind === "range"
    ? sql`NULL::json`
    : sql`array_to_json(ARRAY(SELECT (SELECT ci.input FROM chunk_inputs ci WHERE ci.task_id = ${task.id} AND ci.idx = ${block}.first_idx + o)
                              FROM generate_series(0, ${block}.n - 1) AS o ORDER BY o))`;

/** The candidate list may be 100 ms old: each lease statement checks the task still runs. */
const stillRunning = (task: Candidate) => sql`EXISTS (SELECT 1 FROM tasks WHERE id = ${task.id} AND status = 'running')`;

const deadlineAfter = (task: Candidate, request: LeaseRequest, n: ReturnType<typeof sql>) =>
  sql`now() + make_interval(secs => (${task.timeout_ms}::bigint * ceil((${n})::numeric / ${request.threads}::int) * 100 / ${request.cpuPercent ?? 100}::int
                                     + ${request.graceMs}::bigint) / 1000.0)`;

/**
 * One round trip: extra copies of chunks whose quorum is under way ('voting'), one-chunk
 * leases, never to a volunteer (or user) that already voted on the chunk or holds a copy.
 */
function leaseCopies(db: Db, task: Candidate, want: number, request: LeaseRequest): Promise<LeaseBlockRow[]> {
  return queryRows<LeaseBlockRow>(
    db,
    sql`WITH picked AS (
          SELECT cs.idx FROM chunk_state cs
          WHERE cs.task_id = ${task.id} AND cs.status = 'voting' AND ${stillRunning(task)}
            AND cs.copies_out + (SELECT count(*) FROM votes v WHERE v.task_id = cs.task_id AND v.idx = cs.idx AND v.counted) < cs.needed
            AND NOT EXISTS (SELECT 1 FROM votes v WHERE v.task_id = cs.task_id AND v.idx = cs.idx
                            AND (v.volunteer_id = ${request.volunteerId} OR v.user_id = ${request.userId}))
            AND NOT EXISTS (SELECT 1 FROM leases l WHERE l.task_id = cs.task_id AND l.first_idx = cs.idx AND l.n = 1
                            AND l.copy > 0 AND l.volunteer_id = ${request.volunteerId} AND NOT l.reclaimed AND l.reported = 0)
          ORDER BY cs.idx LIMIT ${want} FOR UPDATE SKIP LOCKED
        ), copy_leases AS (
          INSERT INTO leases (task_id, volunteer_id, first_idx, n, copy, deadline, request_key)
          SELECT ${task.id}, ${request.volunteerId}, idx, 1, 1, ${deadlineAfter(task, request, sql`(SELECT count(*) FROM picked)`)}, ${request.idempotencyKey ?? null}
          FROM picked ORDER BY idx
          RETURNING id, first_idx, n, deadline
        ), counted AS (
          UPDATE chunk_state cs SET copies_out = cs.copies_out + 1
          FROM picked p WHERE cs.task_id = ${task.id} AND cs.idx = p.idx
        )
        SELECT l.id AS lease_id, l.first_idx, l.n, l.deadline, 1 AS copy, ${storedInputs(task, sql`l`)} AS inputs
        FROM copy_leases l
        ORDER BY l.first_idx`,
  );
}

/**
 * One round trip: pending retries become one-chunk leases, then one block of fresh chunks
 * is cut from the first unlocked stripe (preferring the volunteer's own, so concurrent
 * volunteers start on different rows). The deadline covers the batch: timeoutMs ·
 * ⌈n / threads⌉ · 100 / cpuPercent + grace.
 */
function leaseFromTask(db: Db, task: Candidate, want: number, request: LeaseRequest): Promise<LeaseBlockRow[]> {
  const preferredStripe = stripeHint(request.volunteerId);
  const deadline = (n: ReturnType<typeof sql>) => deadlineAfter(task, request, n);
  return hotRows<LeaseBlockRow>(
    db,
    sql`WITH retry AS (
          SELECT idx FROM chunk_state
          WHERE task_id = ${task.id} AND status = 'pending' AND ${stillRunning(task)}
          ORDER BY idx LIMIT ${want} FOR UPDATE SKIP LOCKED
        ), retry_count AS (
          SELECT count(*)::int AS n FROM retry
        ), retry_leases AS (
          INSERT INTO leases (task_id, volunteer_id, first_idx, n, deadline, request_key)
          SELECT ${task.id}, ${request.volunteerId}, idx, 1, ${deadline(sql`(SELECT n FROM retry_count)`)}, ${request.idempotencyKey ?? null}
          FROM retry ORDER BY idx
          RETURNING id, first_idx, n, deadline
        ), retry_marked AS (
          UPDATE chunk_state cs SET status = 'leased', lease_id = rl.id
          FROM retry_leases rl WHERE cs.task_id = ${task.id} AND cs.idx = rl.first_idx
        ), stripe AS (
          SELECT stripe, next_idx, end_idx FROM stripes
          WHERE task_id = ${task.id} AND next_idx < end_idx AND (SELECT n FROM retry_count) < ${want} AND ${stillRunning(task)}
          ORDER BY stripe < ${preferredStripe}, stripe
          LIMIT 1 FOR UPDATE SKIP LOCKED
        ), advanced AS (
          UPDATE stripes s SET next_idx = least(stripe.end_idx, stripe.next_idx + ${want} - (SELECT n FROM retry_count))
          FROM stripe WHERE s.task_id = ${task.id} AND s.stripe = stripe.stripe
          RETURNING stripe.next_idx AS first_idx, s.next_idx - stripe.next_idx AS n
        ), fresh_lease AS (
          INSERT INTO leases (task_id, volunteer_id, first_idx, n, deadline, request_key)
          SELECT ${task.id}, ${request.volunteerId}, first_idx, n,
                 ${deadline(sql`advanced.n + (SELECT n FROM retry_count)`)}, ${request.idempotencyKey ?? null}
          FROM advanced
          RETURNING id, first_idx, n, deadline
        ), granted AS (
          SELECT * FROM retry_leases UNION ALL SELECT * FROM fresh_lease
        )
        -- One row per lease row, not per chunk: 64 chunks cost the API one row to read.
        SELECT g.id AS lease_id, g.first_idx, g.n, g.deadline, ${storedInputs(task, sql`g`)} AS inputs
        FROM granted g
        ORDER BY g.first_idx`,
  );
}

/** A stable small number per volunteer, to spread volunteers over a task's stripes. */
function stripeHint(volunteerId: string): number {
  let hash = 0;
  for (let i = 0; i < volunteerId.length; i++) hash = (hash * 31 + volunteerId.charCodeAt(i)) | 0;
  return Math.abs(hash) % 16;
}
